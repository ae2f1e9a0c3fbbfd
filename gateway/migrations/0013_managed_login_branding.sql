-- Managed login branding (CreateManagedLoginBranding): one style per app client, kept as data. settings is
-- the style's JSON document (NULL when none was given); assets is a JSON array of Cognito's AssetType
-- objects, each image as base64 in "Bytes". A style goes with its client and its pool (ON DELETE CASCADE).
-- version makes UpdateManagedLoginBranding's read-merge-write safe against a concurrent update.
CREATE TABLE managed_login_brandings (
    id                          TEXT PRIMARY KEY,
    pool_id                     TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id                   TEXT NOT NULL UNIQUE REFERENCES clients (id) ON DELETE CASCADE,
    use_cognito_provided_values INTEGER NOT NULL CHECK (use_cognito_provided_values IN (0, 1)),
    settings                    TEXT,
    assets                      TEXT NOT NULL,
    created_at                  DOUBLE PRECISION NOT NULL,
    updated_at                  DOUBLE PRECISION NOT NULL,
    version                     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX managed_login_brandings_by_pool ON managed_login_brandings (pool_id, id);
