-- Federation: a pool's external identity providers, their identifiers, links of upstream identities to
-- pool users, pending upstream sign-ins, and one-use markers against replayed upstream assertions.
--
-- details holds Cognito's ProviderDetails as JSON with secret values (client_secret, private_key) sealed;
-- settings holds Gatehouse's own per-provider data (claim -> group rules).

CREATE TABLE identity_providers (
    pool_id           TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    provider_type     TEXT NOT NULL,
    details           TEXT NOT NULL,
    attribute_mapping TEXT NOT NULL,
    idp_identifiers   TEXT NOT NULL,
    settings          TEXT NOT NULL,
    created_at        DOUBLE PRECISION NOT NULL,
    updated_at        DOUBLE PRECISION NOT NULL,
    version           INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, name)
);

-- IdpIdentifiers are unique within a pool (GetIdentityProviderByIdentifier names one provider).
CREATE TABLE idp_identifiers (
    pool_id       TEXT NOT NULL,
    identifier    TEXT NOT NULL,
    provider_name TEXT NOT NULL,
    PRIMARY KEY (pool_id, identifier),
    FOREIGN KEY (pool_id, provider_name) REFERENCES identity_providers (pool_id, name) ON DELETE CASCADE
);
CREATE INDEX idp_identifiers_by_provider ON idp_identifiers (pool_id, provider_name);

-- AdminLinkProviderForUser: an upstream identity (provider, attribute, value) that signs in as a pool user.
CREATE TABLE provider_links (
    pool_id         TEXT NOT NULL,
    provider_name   TEXT NOT NULL,
    attribute_name  TEXT NOT NULL,
    attribute_value TEXT NOT NULL,
    username_key    TEXT NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, provider_name, attribute_name, attribute_value),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);
CREATE INDEX provider_links_by_user ON provider_links (pool_id, username_key);

-- An upstream sign-in in flight, keyed by the hash of its state (or SAML RelayState); taken once.
CREATE TABLE federation_requests (
    state_hash    TEXT PRIMARY KEY,
    pool_id       TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    provider_name TEXT NOT NULL,
    data          TEXT NOT NULL,
    expires_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX federation_requests_by_expiry ON federation_requests (expires_at);

-- Seen upstream assertion ids (SAML Assertion IDs, OIDC id_token jtis): a second use is a replay.
CREATE TABLE seen_assertions (
    key        TEXT PRIMARY KEY,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX seen_assertions_by_expiry ON seen_assertions (expires_at);
