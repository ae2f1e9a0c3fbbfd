-- Terms documents (CreateTerms): an app client's terms of use and privacy policy, each a map of managed login
-- language (cognito:default, cognito:english, ...) to a link, shown on the hosted sign-up page. One document of
-- each name per client (TermsExistsException); a document goes with its client and its pool (ON DELETE CASCADE).
CREATE TABLE terms (
    id          TEXT PRIMARY KEY,
    pool_id     TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name        TEXT NOT NULL CHECK (name IN ('terms-of-use', 'privacy-policy')),
    source      TEXT NOT NULL,
    enforcement TEXT NOT NULL,
    links       TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    UNIQUE (client_id, name)
);
CREATE INDEX terms_by_pool ON terms (pool_id, id);
