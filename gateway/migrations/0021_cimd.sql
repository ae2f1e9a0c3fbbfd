-- Client ID metadata document (CIMD) policies (CreateCIMDPolicy): URL patterns an external OAuth client's https
-- client_id may match, and the one app client whose settings such a client signs in with. client_id has no
-- foreign key: a policy outlives its app client (DescribeCIMDPolicy then omits ClientId, and no client of the
-- policy signs in). url_patterns is a JSON array of 1..5 patterns.
CREATE TABLE cimd_policies (
    id            TEXT PRIMARY KEY,
    pool_id       TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    cache_seconds INTEGER NOT NULL,
    url_patterns  TEXT NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX cimd_policies_by_pool ON cimd_policies (pool_id, id);

-- The metadata documents fetched for a policy, one per URL, kept until expires_at (the document's Cache-Control
-- max-age when it is between a day and a year, else the policy's cache_seconds), shared by every worker process
-- (ListClientMetadataURLs lists them; UpdateClientMetadataURLState refreshes or drops one). document is the
-- checked JSON object as fetched.
CREATE TABLE cimd_documents (
    policy_id  TEXT NOT NULL REFERENCES cimd_policies (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    document   TEXT NOT NULL,
    cached_at  DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (policy_id, url)
);
