-- A deleted app client's tokens stop working: DeleteUserPoolClient revokes every token family of the client in
-- the transaction that deletes it (SqliteStore.delete_client). An index rather than a scan: without it that
-- UPDATE reads every family of the pool (through token_families_by_user) while it holds the database's write
-- lock, during which no one signs in (measured: about 2 s for a million families). The index costs each new
-- family (each sign-in) one more B-tree entry, appended at the end of its client's range: about 10 us measured,
-- against a password check of tens of milliseconds. A client's id is unique across pools (clients.id is the
-- primary key), so the id alone keys it.
CREATE INDEX token_families_by_client ON token_families (client_id);

-- Families of app clients deleted before this version: revoked now, as a deletion does from here on. A family
-- of a client ID metadata document client names its https URL, never an app client, and is left alone.
UPDATE token_families SET revoked = 1
WHERE revoked = 0
    AND client_id NOT LIKE 'https://%'
    AND NOT EXISTS (
        SELECT 1 FROM clients AS c WHERE c.id = token_families.client_id AND c.pool_id = token_families.pool_id
    );
