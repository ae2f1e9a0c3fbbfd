-- Gatehouse schema: remembered devices (Cognito's device tracking).
--
-- A row is written by ConfirmDevice: the device key announced in NewDeviceMetadata, the user it belongs to,
-- and the sealed SRP verifier (salt, v) the client derived from its device secret. Devices live and die with
-- their user (and so with their pool). Same column rules as 0001: TEXT, INTEGER, DOUBLE PRECISION only.

CREATE TABLE devices (
    pool_id               TEXT NOT NULL,
    device_key            TEXT NOT NULL,
    username_key          TEXT NOT NULL,
    name                  TEXT,
    remembered            INTEGER NOT NULL CHECK (remembered IN (0, 1)),
    verifier              TEXT NOT NULL,
    created_at            DOUBLE PRECISION NOT NULL,
    updated_at            DOUBLE PRECISION NOT NULL,
    last_authenticated_at DOUBLE PRECISION,
    last_ip               TEXT,
    PRIMARY KEY (pool_id, device_key),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);
-- Serves list_devices (a user's devices in key order) and the cascade from users.
CREATE INDEX devices_by_user ON devices (pool_id, username_key, device_key);
