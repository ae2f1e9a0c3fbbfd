-- Identity pools (Cognito Federated Identities): pools, identities, the logins linked to them, and the
-- signing keys of token issuers that are not user pools (the identity service's own OpenID tokens).
--
-- Same conventions as 0001: TEXT, INTEGER and DOUBLE PRECISION only, JSON as TEXT, booleans as 0/1.

CREATE TABLE identity_pools (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    version    INTEGER NOT NULL DEFAULT 0
);

-- Identity ids are unique server-wide (DescribeIdentity takes no pool id), as in Cognito.
CREATE TABLE identities (
    id         TEXT PRIMARY KEY,
    pool_id    TEXT NOT NULL REFERENCES identity_pools (id) ON DELETE CASCADE,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);
CREATE INDEX identities_by_pool ON identities (pool_id, id);

-- One row per linked login. The primary key is the invariant that makes identity ids stable: a login
-- (provider, subject) belongs to at most one identity of a pool.
CREATE TABLE identity_logins (
    pool_id     TEXT NOT NULL,
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    identity_id TEXT NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    created_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, provider, subject)
);
CREATE INDEX identity_logins_by_identity ON identity_logins (identity_id, provider, subject);

-- Signing keys of an issuer named by key_set (not a user pool, so no foreign key to pools).
CREATE TABLE issuer_signing_keys (
    key_set     TEXT NOT NULL,
    kid         TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    retired_at  DOUBLE PRECISION,
    token_use   TEXT NOT NULL DEFAULT 'id',
    PRIMARY KEY (key_set, kid)
);
CREATE UNIQUE INDEX issuer_signing_keys_one_active ON issuer_signing_keys (key_set, token_use) WHERE active = 1;
