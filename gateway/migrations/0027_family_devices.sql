-- Gatehouse schema: the device a token family's sign-in came from (device tracking).
--
-- "With device tracking, these tokens are linked to a single device. If a refresh token is used on any other
-- device, the call fails" (AWS Mobile blog, "Tracking and Remembering Devices Using Amazon Cognito Your User
-- Pools"). A refresh reads the key with the family, and with it whether the key is a confirmed device of the
-- user (devices) or was forgotten (forgotten_devices, migration 0018): both primary-key probes, so the column
-- needs no index of its own. NULL for a family with no device, and for every family from before this version,
-- which refresh as they did. Same column rules as 0001: TEXT, INTEGER, DOUBLE PRECISION only.
ALTER TABLE token_families ADD COLUMN device_key TEXT;
