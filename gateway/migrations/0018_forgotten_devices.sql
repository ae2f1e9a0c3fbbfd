-- Gatehouse schema: the keys of forgotten devices (ForgetDevice / AdminForgetDevice).
--
-- A device key is handed out with one sign-in's tokens and confirmed with them (ConfirmDevice). Once the
-- device is forgotten its key must stay unknown: the access token that names it lives on, and ConfirmDevice
-- with it must answer ResourceNotFoundException rather than register the device again. The keys live and
-- die with their user. Same column rules as 0001: TEXT, INTEGER, DOUBLE PRECISION only.

CREATE TABLE forgotten_devices (
    pool_id      TEXT NOT NULL,
    device_key   TEXT NOT NULL,
    username_key TEXT NOT NULL,
    forgotten_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (pool_id, device_key),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);
-- Serves the cascade from users.
CREATE INDEX forgotten_devices_by_user ON forgotten_devices (pool_id, username_key);
