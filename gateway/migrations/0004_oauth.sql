-- The OAuth 2.0 / OpenID Connect provider and the hosted UI: short-lived single-use records (authorization
-- requests, authorization codes, single sign-on sessions, the scopes of a token family), the pools'
-- domains and their resource servers with custom scopes.
--
-- oauth_records keeps each record under (kind, key_hash); key_hash is the SHA-256 of the secret a client
-- or browser holds (a code, a cookie), or of a public id. used_at and replayed let an authorization code
-- be redeemed once and a second redemption be noticed (RFC 6749 §4.1.2, RFC 9700 §4.2.4).
CREATE TABLE oauth_records (
    kind         TEXT NOT NULL,
    key_hash     TEXT NOT NULL,
    pool_id      TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL,
    username_key TEXT NOT NULL,
    data         TEXT NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    used_at      DOUBLE PRECISION,
    replayed     INTEGER NOT NULL DEFAULT 0 CHECK (replayed IN (0, 1)),
    PRIMARY KEY (kind, key_hash)
);
CREATE INDEX oauth_records_by_pool ON oauth_records (pool_id);
CREATE INDEX oauth_records_by_user ON oauth_records (pool_id, username_key, kind);
CREATE INDEX oauth_records_by_expiry ON oauth_records (expires_at);

-- A domain (a Cognito prefix such as "myapp", or a custom domain such as "auth.example.com") names one
-- pool; the hosted UI and /oauth2 endpoints reached through it serve that pool.
CREATE TABLE user_pool_domains (
    domain     TEXT PRIMARY KEY,
    pool_id    TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    settings   TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX user_pool_domains_by_pool ON user_pool_domains (pool_id, domain);

CREATE TABLE resource_servers (
    pool_id    TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    identifier TEXT NOT NULL,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, identifier)
);

-- SetUICustomization: CSS and a logo for the hosted pages, for the whole pool (client_id 'ALL') or one client.
CREATE TABLE ui_customizations (
    pool_id    TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    css        TEXT,
    image      TEXT,
    image_type TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, client_id)
);
