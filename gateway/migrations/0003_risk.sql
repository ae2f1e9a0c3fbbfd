-- Threat protection: risk configurations and the auth event history of users (Cognito's advanced security).
--
-- risk_configurations holds SetRiskConfiguration's members as JSON, one row for the pool (client_id '') and
-- one per app client that overrides it. auth_events holds one row per sign-in (and sign-up, password change,
-- forgotten password) of a user of a pool with threat protection on; event_id is a time-ordered UUID (version
-- 7), so newest first is event_id DESC and a page ends at an event_id. The events go with their user.

CREATE TABLE risk_configurations (
    pool_id    TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    config     TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, client_id)
);

CREATE TABLE auth_events (
    pool_id      TEXT NOT NULL,
    username_key TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    event        TEXT NOT NULL,
    PRIMARY KEY (pool_id, event_id),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);
CREATE INDEX auth_events_by_user ON auth_events (pool_id, username_key, event_id);
