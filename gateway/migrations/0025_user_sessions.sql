-- Cognito's user sessions (ListUserSessions, RevokeUserSession and their Admin versions): a token session is a
-- token family with a refresh token; these columns keep what a session's description reports (the most
-- recent activity, the device and the address it came from) and the hosted-UI session (the SHA-256 of its
-- cookie, the key of its oauth_records row) that a family redeemed through the code flow originated from.
-- The session's id is derived from the family's origin_jti with a server key (gateway/services/sessions.py),
-- so it is not stored.
ALTER TABLE token_families ADD COLUMN last_active_at DOUBLE PRECISION;
ALTER TABLE token_families ADD COLUMN device_type TEXT;
ALTER TABLE token_families ADD COLUMN last_ip TEXT;
ALTER TABLE token_families ADD COLUMN sso_key_hash TEXT;
