-- Challenge sessions (SRP's B, an MFA step...) are written and taken once per sign-in step: keep them in one
-- b-tree keyed by the session hash (WITHOUT ROWID) instead of a rowid table plus the key's own index, and drop
-- the expiry index (sessions live minutes; the periodic purge scans this small table). Each session write
-- then touches two b-trees instead of four. Sessions in flight are copied over.
CREATE TABLE auth_sessions_clustered (
    session_hash TEXT PRIMARY KEY,
    pool_id      TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL,
    username_key TEXT NOT NULL,
    state        TEXT NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL
) WITHOUT ROWID;
INSERT INTO auth_sessions_clustered (session_hash, pool_id, client_id, username_key, state, expires_at)
    SELECT session_hash, pool_id, client_id, username_key, state, expires_at FROM auth_sessions;
DROP TABLE auth_sessions;
ALTER TABLE auth_sessions_clustered RENAME TO auth_sessions;
CREATE INDEX auth_sessions_by_user ON auth_sessions (pool_id, username_key);
