-- One-time codes sent to users (SMS and email), counted per user for the per-user send limit
-- (gateway/services/code_limits.py): one row per code sent, kept until the end of the window it counts in
-- (expires_at), so every gateway process sharing the store sees the same count. username_key is the user's key,
-- or a key derived from the name asked for when the user is unknown (so an unknown name is limited alike);
-- hence no foreign key to users. Rows go with their pool.

CREATE TABLE code_sends (
    pool_id      TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    username_key TEXT NOT NULL,
    sent_at      DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL
);
CREATE INDEX code_sends_by_user ON code_sends (pool_id, username_key, expires_at);
CREATE INDEX code_sends_by_expiry ON code_sends (expires_at);
