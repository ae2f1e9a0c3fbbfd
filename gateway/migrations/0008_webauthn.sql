-- Passkeys (WebAuthn credentials) registered by users: StartWebAuthnRegistration / CompleteWebAuthnRegistration.
--
-- A credential id is unique within a pool (the WEB_AUTHN challenge finds the credential by the id the
-- authenticator returns). The public key is the COSE key as registered, base64url; sign_count is the last
-- signature counter seen, moved forward only by a compare-and-set (update_webauthn_sign_count). The rows go
-- with their user (ON DELETE CASCADE) and with the pool through the user.

CREATE TABLE webauthn_credentials (
    pool_id         TEXT NOT NULL,
    credential_id   TEXT NOT NULL,
    username_key    TEXT NOT NULL,
    public_key      TEXT NOT NULL,
    sign_count      INTEGER NOT NULL DEFAULT 0,
    friendly_name   TEXT NOT NULL,
    relying_party   TEXT NOT NULL,
    attachment      TEXT,
    transports      TEXT NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, credential_id),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);
CREATE INDEX webauthn_credentials_by_user ON webauthn_credentials (pool_id, username_key, created_at);
