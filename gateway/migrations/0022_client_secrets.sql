-- Gatehouse schema: an app client's secrets for rotation (AddUserPoolClientSecret, ListUserPoolClientSecrets,
-- DeleteUserPoolClientSecret).
--
-- Cognito keeps up to two active secrets per confidential client, each with an id and a creation date. They
-- are kept on the client's row, as a JSON list of {"id", "value", "created"}, so that reading a client (which
-- every sign-in does) stays one indexed read, and a rotation is one versioned update of that row: two racing
-- additions cannot leave three secrets. NULL (every client made before this migration, and every client
-- never rotated) means the one secret in `secret`, whose id follows from the client's creation time. When the
-- list is set, `secret` holds its first (oldest) value: what DescribeUserPoolClient shows as ClientSecret.
-- Same column rules as 0001.

ALTER TABLE clients ADD COLUMN secrets TEXT;
