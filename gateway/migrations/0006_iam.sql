-- IAM roles, their inline policies and IAM OpenID Connect providers (the STS and IAM wires).
--
-- A role is keyed by its lower-cased name: IAM role names are unique case-insensitively ("you cannot
-- create roles named both Role1 and role1"). role_id (AROA...) is the role's unique id; temporary
-- credentials carry it, so credentials of a deleted role stay refused even after a new role takes the name.
-- An OIDC provider is keyed by its URL without the scheme, the form its ARN and condition keys use.

CREATE TABLE iam_roles (
    name_key             TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    role_id              TEXT NOT NULL UNIQUE,
    path                 TEXT NOT NULL,
    assume_role_policy   TEXT NOT NULL,
    description          TEXT,
    max_session_duration INTEGER NOT NULL,
    tags                 TEXT NOT NULL,
    created_at           DOUBLE PRECISION NOT NULL
);

CREATE TABLE iam_role_policies (
    role_name_key TEXT NOT NULL REFERENCES iam_roles (name_key) ON DELETE CASCADE,
    policy_name   TEXT NOT NULL,
    document      TEXT NOT NULL,
    PRIMARY KEY (role_name_key, policy_name)
);

CREATE TABLE iam_oidc_providers (
    url        TEXT PRIMARY KEY,
    issuer_url TEXT NOT NULL,
    client_ids TEXT NOT NULL,
    thumbprints TEXT NOT NULL,
    tags       TEXT NOT NULL,
    jwks_url   TEXT,
    created_at DOUBLE PRECISION NOT NULL
);

-- IAM SAML providers (AssumeRoleWithSAML): the IdP's metadata document, keyed by the provider's name.
CREATE TABLE iam_saml_providers (
    name       TEXT PRIMARY KEY,
    metadata   TEXT NOT NULL,
    tags       TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

-- SAML assertions already exchanged for credentials: an assertion is accepted once (until it expires).
CREATE TABLE iam_saml_assertions_used (
    assertion_key TEXT PRIMARY KEY,
    expires_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX iam_saml_assertions_used_expiry ON iam_saml_assertions_used (expires_at);
