-- Gatehouse schema, version 1.
--
-- Applied by gateway/storage/sqlite.py inside one BEGIN IMMEDIATE transaction and recorded in
-- schema_migrations. Written to stay close to PostgreSQL (which gets its own migrations): only TEXT,
-- INTEGER and DOUBLE PRECISION columns (never REAL, which is a 4-byte float in PostgreSQL and would round
-- epoch seconds to minutes), JSON kept as TEXT, booleans as INTEGER 0/1, composite natural keys.
-- "groups" is avoided as a table name: GROUPS is a keyword in SQLite's window-frame syntax.
--
-- Every look-up the store makes is served by a primary key or an index below; every foreign key's child
-- columns are indexed so ON DELETE CASCADE does not scan.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE pools (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    version    INTEGER NOT NULL DEFAULT 0
);

-- Client ids are unique server-wide (get_client takes no pool id), as in Cognito.
CREATE TABLE clients (
    id         TEXT PRIMARY KEY,
    pool_id    TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    secret     TEXT,
    settings   TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    version    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX clients_by_pool ON clients (pool_id, id);

-- aliases is a copy of the user's rows in user_aliases, kept on the user row so that get_user is one
-- indexed read; user_aliases is what enforces uniqueness. Both are written in the same transaction.
CREATE TABLE users (
    pool_id                       TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    username_key                  TEXT NOT NULL,
    username                      TEXT NOT NULL,
    sub                           TEXT NOT NULL,
    status                        TEXT NOT NULL,
    enabled                       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    attributes                    TEXT NOT NULL,
    password_hash                 TEXT,
    created_at                    DOUBLE PRECISION NOT NULL,
    updated_at                    DOUBLE PRECISION NOT NULL,
    password_updated_at           DOUBLE PRECISION,
    temporary_password_expires_at DOUBLE PRECISION,
    tokens_valid_after            DOUBLE PRECISION NOT NULL DEFAULT 0,
    aliases                       TEXT NOT NULL,
    secrets                       TEXT NOT NULL,
    password_history              TEXT NOT NULL,
    settings                      TEXT NOT NULL,
    version                       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, username_key)
);
CREATE UNIQUE INDEX users_by_sub ON users (pool_id, sub);

CREATE TABLE user_aliases (
    pool_id      TEXT NOT NULL,
    attribute    TEXT NOT NULL,
    value        TEXT NOT NULL,
    username_key TEXT NOT NULL,
    PRIMARY KEY (pool_id, attribute, value),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);
CREATE INDEX user_aliases_by_user ON user_aliases (pool_id, username_key);

CREATE TABLE pool_groups (
    pool_id     TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    role_arn    TEXT,
    precedence  INTEGER,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, name)
);

-- The primary key serves list_users_in_group; the second index serves list_groups_for_user and the
-- cascade from users.
CREATE TABLE group_members (
    pool_id      TEXT NOT NULL,
    group_name   TEXT NOT NULL,
    username_key TEXT NOT NULL,
    PRIMARY KEY (pool_id, group_name, username_key),
    FOREIGN KEY (pool_id, group_name) REFERENCES pool_groups (pool_id, name) ON DELETE CASCADE,
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);
CREATE INDEX group_members_by_user ON group_members (pool_id, username_key, group_name);

-- Codes, challenge sessions and token families name a user by username_key without a foreign key to
-- users: a session may exist for a user that does not (Cognito's PreventUserExistenceErrors answers an
-- unknown user with a real-looking challenge), and token families may belong to no user at all
-- (client credentials). delete_user removes them explicitly.
CREATE TABLE codes (
    pool_id      TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    username_key TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    code_hash    TEXT NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    data         TEXT NOT NULL,
    PRIMARY KEY (pool_id, username_key, purpose)
);
CREATE INDEX codes_by_expiry ON codes (expires_at);

CREATE TABLE auth_sessions (
    session_hash TEXT PRIMARY KEY,
    pool_id      TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL,
    username_key TEXT NOT NULL,
    state        TEXT NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX auth_sessions_by_user ON auth_sessions (pool_id, username_key);
CREATE INDEX auth_sessions_by_expiry ON auth_sessions (expires_at);

CREATE TABLE token_families (
    origin_jti   TEXT PRIMARY KEY,
    pool_id      TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL,
    username_key TEXT NOT NULL,
    auth_time    DOUBLE PRECISION NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
);
CREATE INDEX token_families_by_user ON token_families (pool_id, username_key);
CREATE INDEX token_families_by_expiry ON token_families (expires_at);

-- A refresh token lives and dies with its family: revoking or deleting the family is one row.
CREATE TABLE refresh_tokens (
    token_hash   TEXT PRIMARY KEY,
    origin_jti   TEXT NOT NULL REFERENCES token_families (origin_jti) ON DELETE CASCADE,
    pool_id      TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    username_key TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    replaced_by  TEXT,
    replaced_at  DOUBLE PRECISION,
    data         TEXT NOT NULL
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (origin_jti);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    pool_id     TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    kid         TEXT NOT NULL,
    private_jwk TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    active      INTEGER NOT NULL CHECK (active IN (0, 1)),
    retired_at  DOUBLE PRECISION,
    token_use   TEXT NOT NULL DEFAULT 'id' CHECK (token_use IN ('id', 'access')),
    PRIMARY KEY (pool_id, kid)
);
-- At most one active key per pool and token use, whatever the writers do (partial indexes exist in
-- PostgreSQL too).
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (pool_id, token_use) WHERE active = 1;
