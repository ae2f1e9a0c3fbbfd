-- Gatehouse's PostgreSQL schema, as SQLite's migrations 0001-0027 leave it (gateway/migrations): the same tables,
-- columns and indexes, so that both stores read and write rows alike. Types as SQLite's affinities map: INTEGER
-- BIGINT, TEXT with the "C" collation (keys sort by code point whatever the database's locale), DOUBLE PRECISION.
-- A later SQLite migration that changes the schema gets its PostgreSQL counterpart here, under the next number.

CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL
);

CREATE TABLE pools (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    settings   TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    version    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE clients (
    id         TEXT COLLATE "C" PRIMARY KEY,
    pool_id    TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    name       TEXT COLLATE "C" NOT NULL,
    secret     TEXT COLLATE "C",
    settings   TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    version    BIGINT NOT NULL DEFAULT 0
, secrets TEXT COLLATE "C");

CREATE INDEX clients_by_pool ON clients (pool_id, id);

CREATE TABLE users (
    pool_id                       TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    username_key                  TEXT COLLATE "C" NOT NULL,
    username                      TEXT COLLATE "C" NOT NULL,
    sub                           TEXT COLLATE "C" NOT NULL,
    status                        TEXT COLLATE "C" NOT NULL,
    enabled                       BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    attributes                    TEXT COLLATE "C" NOT NULL,
    password_hash                 TEXT COLLATE "C",
    created_at                    DOUBLE PRECISION NOT NULL,
    updated_at                    DOUBLE PRECISION NOT NULL,
    password_updated_at           DOUBLE PRECISION,
    temporary_password_expires_at DOUBLE PRECISION,
    tokens_valid_after            DOUBLE PRECISION NOT NULL DEFAULT 0,
    aliases                       TEXT COLLATE "C" NOT NULL,
    secrets                       TEXT COLLATE "C" NOT NULL,
    password_history              TEXT COLLATE "C" NOT NULL,
    settings                      TEXT COLLATE "C" NOT NULL,
    version                       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, username_key)
);

CREATE UNIQUE INDEX users_by_sub ON users (pool_id, sub);

CREATE TABLE user_aliases (
    pool_id      TEXT COLLATE "C" NOT NULL,
    attribute    TEXT COLLATE "C" NOT NULL,
    value        TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pool_id, attribute, value),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX user_aliases_by_user ON user_aliases (pool_id, username_key);

CREATE TABLE pool_groups (
    pool_id     TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    name        TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C",
    role_arn    TEXT COLLATE "C",
    precedence  BIGINT,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, name)
);

CREATE TABLE group_members (
    pool_id      TEXT COLLATE "C" NOT NULL,
    group_name   TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pool_id, group_name, username_key),
    FOREIGN KEY (pool_id, group_name) REFERENCES pool_groups (pool_id, name) ON DELETE CASCADE,
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX group_members_by_user ON group_members (pool_id, username_key, group_name);

CREATE TABLE codes (
    pool_id      TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    username_key TEXT COLLATE "C" NOT NULL,
    purpose      TEXT COLLATE "C" NOT NULL,
    code_hash    TEXT COLLATE "C" NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    data         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pool_id, username_key, purpose)
);

CREATE INDEX codes_by_expiry ON codes (expires_at);

CREATE TABLE token_families (
    origin_jti   TEXT COLLATE "C" PRIMARY KEY,
    pool_id      TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id    TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    auth_time    DOUBLE PRECISION NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    revoked      BIGINT NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1))
, scopes TEXT COLLATE "C", last_active_at DOUBLE PRECISION, device_type TEXT COLLATE "C", last_ip TEXT COLLATE "C", sso_key_hash TEXT COLLATE "C", app_client_id TEXT COLLATE "C", device_key TEXT COLLATE "C");

CREATE INDEX token_families_by_user ON token_families (pool_id, username_key);

CREATE INDEX token_families_by_expiry ON token_families (expires_at);

CREATE TABLE refresh_tokens (
    token_hash   TEXT COLLATE "C" PRIMARY KEY,
    origin_jti   TEXT COLLATE "C" NOT NULL REFERENCES token_families (origin_jti) ON DELETE CASCADE,
    pool_id      TEXT COLLATE "C" NOT NULL,
    client_id    TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    replaced_by  TEXT COLLATE "C",
    replaced_at  DOUBLE PRECISION,
    data         TEXT COLLATE "C" NOT NULL
);

CREATE INDEX refresh_tokens_by_family ON refresh_tokens (origin_jti);

CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

CREATE TABLE signing_keys (
    pool_id     TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    kid         TEXT COLLATE "C" NOT NULL,
    private_jwk TEXT COLLATE "C" NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    active      BIGINT NOT NULL CHECK (active IN (0, 1)),
    retired_at  DOUBLE PRECISION,
    token_use   TEXT COLLATE "C" NOT NULL DEFAULT 'id' CHECK (token_use IN ('id', 'access')),
    PRIMARY KEY (pool_id, kid)
);

CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (pool_id, token_use) WHERE active = 1;

CREATE TABLE devices (
    pool_id               TEXT COLLATE "C" NOT NULL,
    device_key            TEXT COLLATE "C" NOT NULL,
    username_key          TEXT COLLATE "C" NOT NULL,
    name                  TEXT COLLATE "C",
    remembered            BIGINT NOT NULL CHECK (remembered IN (0, 1)),
    verifier              TEXT COLLATE "C" NOT NULL,
    created_at            DOUBLE PRECISION NOT NULL,
    updated_at            DOUBLE PRECISION NOT NULL,
    last_authenticated_at DOUBLE PRECISION,
    last_ip               TEXT COLLATE "C",
    PRIMARY KEY (pool_id, device_key),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX devices_by_user ON devices (pool_id, username_key, device_key);

CREATE TABLE risk_configurations (
    pool_id    TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id  TEXT COLLATE "C" NOT NULL,
    config     TEXT COLLATE "C" NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, client_id)
);

CREATE TABLE auth_events (
    pool_id      TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    event_id     TEXT COLLATE "C" NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    event        TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pool_id, event_id),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX auth_events_by_user ON auth_events (pool_id, username_key, event_id);

CREATE TABLE oauth_records (
    kind         TEXT COLLATE "C" NOT NULL,
    key_hash     TEXT COLLATE "C" NOT NULL,
    pool_id      TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id    TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    data         TEXT COLLATE "C" NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    used_at      DOUBLE PRECISION,
    replayed     BIGINT NOT NULL DEFAULT 0 CHECK (replayed IN (0, 1)),
    PRIMARY KEY (kind, key_hash)
);

CREATE INDEX oauth_records_by_pool ON oauth_records (pool_id);

CREATE INDEX oauth_records_by_user ON oauth_records (pool_id, username_key, kind);

CREATE INDEX oauth_records_by_expiry ON oauth_records (expires_at);

CREATE TABLE user_pool_domains (
    domain     TEXT COLLATE "C" PRIMARY KEY,
    pool_id    TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    settings   TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX user_pool_domains_by_pool ON user_pool_domains (pool_id, domain);

CREATE TABLE resource_servers (
    pool_id    TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    identifier TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    scopes     TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, identifier)
);

CREATE TABLE ui_customizations (
    pool_id    TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id  TEXT COLLATE "C" NOT NULL,
    css        TEXT COLLATE "C",
    image      TEXT COLLATE "C",
    image_type TEXT COLLATE "C",
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, client_id)
);

CREATE TABLE identity_pools (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT COLLATE "C" NOT NULL,
    settings   TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    version    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE identities (
    id         TEXT COLLATE "C" PRIMARY KEY,
    pool_id    TEXT COLLATE "C" NOT NULL REFERENCES identity_pools (id) ON DELETE CASCADE,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    disabled   BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
);

CREATE INDEX identities_by_pool ON identities (pool_id, id);

CREATE TABLE identity_logins (
    pool_id     TEXT COLLATE "C" NOT NULL,
    provider    TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    identity_id TEXT COLLATE "C" NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    created_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, provider, subject)
);

CREATE INDEX identity_logins_by_identity ON identity_logins (identity_id, provider, subject);

CREATE TABLE issuer_signing_keys (
    key_set     TEXT COLLATE "C" NOT NULL,
    kid         TEXT COLLATE "C" NOT NULL,
    private_jwk TEXT COLLATE "C" NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    active      BIGINT NOT NULL CHECK (active IN (0, 1)),
    retired_at  DOUBLE PRECISION,
    token_use   TEXT COLLATE "C" NOT NULL DEFAULT 'id',
    PRIMARY KEY (key_set, kid)
);

CREATE UNIQUE INDEX issuer_signing_keys_one_active ON issuer_signing_keys (key_set, token_use) WHERE active = 1;

CREATE TABLE iam_roles (
    name_key             TEXT COLLATE "C" PRIMARY KEY,
    name                 TEXT COLLATE "C" NOT NULL,
    role_id              TEXT COLLATE "C" NOT NULL UNIQUE,
    path                 TEXT COLLATE "C" NOT NULL,
    assume_role_policy   TEXT COLLATE "C" NOT NULL,
    description          TEXT COLLATE "C",
    max_session_duration BIGINT NOT NULL,
    tags                 TEXT COLLATE "C" NOT NULL,
    created_at           DOUBLE PRECISION NOT NULL
);

CREATE TABLE iam_role_policies (
    role_name_key TEXT COLLATE "C" NOT NULL REFERENCES iam_roles (name_key) ON DELETE CASCADE,
    policy_name   TEXT COLLATE "C" NOT NULL,
    document      TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (role_name_key, policy_name)
);

CREATE TABLE iam_oidc_providers (
    url        TEXT COLLATE "C" PRIMARY KEY,
    issuer_url TEXT COLLATE "C" NOT NULL,
    client_ids TEXT COLLATE "C" NOT NULL,
    thumbprints TEXT COLLATE "C" NOT NULL,
    tags       TEXT COLLATE "C" NOT NULL,
    jwks_url   TEXT COLLATE "C",
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE iam_saml_providers (
    name       TEXT COLLATE "C" PRIMARY KEY,
    metadata   TEXT COLLATE "C" NOT NULL,
    tags       TEXT COLLATE "C" NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE iam_saml_assertions_used (
    assertion_key TEXT COLLATE "C" PRIMARY KEY,
    expires_at    DOUBLE PRECISION NOT NULL
);

CREATE INDEX iam_saml_assertions_used_expiry ON iam_saml_assertions_used (expires_at);

CREATE TABLE identity_providers (
    pool_id           TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    name              TEXT COLLATE "C" NOT NULL,
    provider_type     TEXT COLLATE "C" NOT NULL,
    details           TEXT COLLATE "C" NOT NULL,
    attribute_mapping TEXT COLLATE "C" NOT NULL,
    idp_identifiers   TEXT COLLATE "C" NOT NULL,
    settings          TEXT COLLATE "C" NOT NULL,
    created_at        DOUBLE PRECISION NOT NULL,
    updated_at        DOUBLE PRECISION NOT NULL,
    version           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, name)
);

CREATE TABLE idp_identifiers (
    pool_id       TEXT COLLATE "C" NOT NULL,
    identifier    TEXT COLLATE "C" NOT NULL,
    provider_name TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pool_id, identifier),
    FOREIGN KEY (pool_id, provider_name) REFERENCES identity_providers (pool_id, name) ON DELETE CASCADE
);

CREATE INDEX idp_identifiers_by_provider ON idp_identifiers (pool_id, provider_name);

CREATE TABLE provider_links (
    pool_id         TEXT COLLATE "C" NOT NULL,
    provider_name   TEXT COLLATE "C" NOT NULL,
    attribute_name  TEXT COLLATE "C" NOT NULL,
    attribute_value TEXT COLLATE "C" NOT NULL,
    username_key    TEXT COLLATE "C" NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, provider_name, attribute_name, attribute_value),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX provider_links_by_user ON provider_links (pool_id, username_key);

CREATE TABLE federation_requests (
    state_hash    TEXT COLLATE "C" PRIMARY KEY,
    pool_id       TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    provider_name TEXT COLLATE "C" NOT NULL,
    data          TEXT COLLATE "C" NOT NULL,
    expires_at    DOUBLE PRECISION NOT NULL
);

CREATE INDEX federation_requests_by_expiry ON federation_requests (expires_at);

CREATE TABLE seen_assertions (
    key        TEXT COLLATE "C" PRIMARY KEY,
    expires_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX seen_assertions_by_expiry ON seen_assertions (expires_at);

CREATE TABLE webauthn_credentials (
    pool_id         TEXT COLLATE "C" NOT NULL,
    credential_id   TEXT COLLATE "C" NOT NULL,
    username_key    TEXT COLLATE "C" NOT NULL,
    public_key      TEXT COLLATE "C" NOT NULL,
    sign_count      BIGINT NOT NULL DEFAULT 0,
    friendly_name   TEXT COLLATE "C" NOT NULL,
    relying_party   TEXT COLLATE "C" NOT NULL,
    attachment      TEXT COLLATE "C",
    transports      TEXT COLLATE "C" NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, credential_id),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX webauthn_credentials_by_user ON webauthn_credentials (pool_id, username_key, created_at);

CREATE TABLE code_sends (
    pool_id      TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    username_key TEXT COLLATE "C" NOT NULL,
    sent_at      DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL
);

CREATE INDEX code_sends_by_user ON code_sends (pool_id, username_key, expires_at);

CREATE INDEX code_sends_by_expiry ON code_sends (expires_at);

CREATE TABLE managed_login_brandings (
    id                          TEXT COLLATE "C" PRIMARY KEY,
    pool_id                     TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id                   TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES clients (id) ON DELETE CASCADE,
    use_cognito_provided_values BIGINT NOT NULL CHECK (use_cognito_provided_values IN (0, 1)),
    settings                    TEXT COLLATE "C",
    assets                      TEXT COLLATE "C" NOT NULL,
    created_at                  DOUBLE PRECISION NOT NULL,
    updated_at                  DOUBLE PRECISION NOT NULL,
    version                     BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX managed_login_brandings_by_pool ON managed_login_brandings (pool_id, id);

CREATE TABLE IF NOT EXISTS "auth_sessions" (
    session_hash TEXT COLLATE "C" PRIMARY KEY,
    pool_id      TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id    TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    state        TEXT COLLATE "C" NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL
);

CREATE INDEX auth_sessions_by_user ON auth_sessions (pool_id, username_key);

CREATE TABLE used_codes (
    code_hash  TEXT COLLATE "C" PRIMARY KEY,
    origin_jti TEXT COLLATE "C",
    expires_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE forgotten_devices (
    pool_id      TEXT COLLATE "C" NOT NULL,
    device_key   TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    forgotten_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, device_key),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX forgotten_devices_by_user ON forgotten_devices (pool_id, username_key);

CREATE TABLE user_search (
    pool_id      TEXT COLLATE "C" NOT NULL,
    username_key TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    value        TEXT COLLATE "C" NOT NULL,
    folded       TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (pool_id, username_key, name),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);

CREATE INDEX user_search_by_value ON user_search (pool_id, name, value, username_key);

CREATE INDEX user_search_by_folded ON user_search (pool_id, name, folded, username_key);

CREATE TABLE cimd_policies (
    id            TEXT COLLATE "C" PRIMARY KEY,
    pool_id       TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id     TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    cache_seconds BIGINT NOT NULL,
    url_patterns  TEXT COLLATE "C" NOT NULL,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);

CREATE INDEX cimd_policies_by_pool ON cimd_policies (pool_id, id);

CREATE TABLE cimd_documents (
    policy_id  TEXT COLLATE "C" NOT NULL REFERENCES cimd_policies (id) ON DELETE CASCADE,
    url        TEXT COLLATE "C" NOT NULL,
    document   TEXT COLLATE "C" NOT NULL,
    cached_at  DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (policy_id, url)
);

CREATE TABLE user_import_jobs (
    pool_id            TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    job_id             TEXT COLLATE "C" NOT NULL,
    list_key           TEXT COLLATE "C" NOT NULL,
    job_name           TEXT COLLATE "C" NOT NULL,
    role_arn           TEXT COLLATE "C" NOT NULL,
    hashing_algorithm  TEXT COLLATE "C",
    status             TEXT COLLATE "C" NOT NULL,
    created_at         DOUBLE PRECISION NOT NULL,
    url_expires_at     DOUBLE PRECISION NOT NULL,
    started_at         DOUBLE PRECISION,
    completed_at       DOUBLE PRECISION,
    imported_users     BIGINT NOT NULL DEFAULT 0,
    skipped_users      BIGINT NOT NULL DEFAULT 0,
    failed_users       BIGINT NOT NULL DEFAULT 0,
    completion_message TEXT COLLATE "C",
    upload_id          TEXT COLLATE "C",
    upload_bytes       BIGINT NOT NULL DEFAULT 0,
    heartbeat_at       DOUBLE PRECISION,
    PRIMARY KEY (pool_id, job_id)
);

CREATE UNIQUE INDEX user_import_jobs_by_list_key ON user_import_jobs (pool_id, list_key);

CREATE UNIQUE INDEX user_import_jobs_one_running ON user_import_jobs (pool_id)
    WHERE status IN ('Pending', 'InProgress', 'Stopping');

CREATE TABLE user_import_chunks (
    pool_id   TEXT COLLATE "C" NOT NULL,
    job_id    TEXT COLLATE "C" NOT NULL,
    upload_id TEXT COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (pool_id, job_id, upload_id, seq),
    FOREIGN KEY (pool_id, job_id) REFERENCES user_import_jobs (pool_id, job_id) ON DELETE CASCADE
);

CREATE TABLE terms (
    id          TEXT COLLATE "C" PRIMARY KEY,
    pool_id     TEXT COLLATE "C" NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id   TEXT COLLATE "C" NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name        TEXT COLLATE "C" NOT NULL CHECK (name IN ('terms-of-use', 'privacy-policy')),
    source      TEXT COLLATE "C" NOT NULL,
    enforcement TEXT COLLATE "C" NOT NULL,
    links       TEXT COLLATE "C" NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    UNIQUE (client_id, name)
);

CREATE INDEX terms_by_pool ON terms (pool_id, id);

CREATE INDEX token_families_by_app_client ON token_families (COALESCE(app_client_id, client_id));
