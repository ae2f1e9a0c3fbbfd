-- Authorization codes are sealed: the code itself carries its authorization request's bindings (client,
-- redirect URI, PKCE challenge, nonce, scopes, user), encrypted and authenticated with a key of the data
-- directory, so issuing one writes nothing. Redeeming one leaves this marker, in the same transaction as the
-- token family it starts: a code is redeemed once across every worker process (RFC 6749 §4.1.2), and a
-- replay finds the family to revoke (RFC 9700 §4.2.4). origin_jti is NULL for a code used up by a failed
-- redemption. Markers outlive their code's lifetime only until the periodic purge.
CREATE TABLE used_codes (
    code_hash  TEXT PRIMARY KEY,
    origin_jti TEXT,
    expires_at DOUBLE PRECISION NOT NULL
) WITHOUT ROWID;

-- The scopes an OAuth grant gave a token family (a refresh grants the same), kept with the family instead of
-- in a record of their own; NULL for families of the Cognito API's sign-ins.
ALTER TABLE token_families ADD COLUMN scopes TEXT;
