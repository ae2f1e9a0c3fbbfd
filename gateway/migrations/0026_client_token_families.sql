-- A deleted app client's tokens stop working: DeleteUserPoolClient revokes every token family of the client in
-- the transaction that deletes it (SqliteStore.delete_client). An index rather than a scan: without it that
-- UPDATE reads every family of the pool (through token_families_by_user) while it holds the database's write
-- lock, during which no one signs in (measured: about 2 s for a million families). The index costs each new
-- family (each sign-in) one more B-tree entry, appended at the end of its client's range: about 7 us measured
-- per code redemption. A client's id is unique across pools (clients.id is the primary key), so the id alone
-- keys it.
--
-- The family of a client ID metadata document client has the document's URL as its client_id (its tokens'
-- client_id and aud); app_client_id names the app client its CIMD policy signed it in under, which its deletion
-- revokes too. NULL for every other family (the app client is client_id itself), so the index keys each family
-- by COALESCE(app_client_id, client_id): the expression the revoking UPDATE uses.
ALTER TABLE token_families ADD COLUMN app_client_id TEXT;

-- The live families of metadata document clients from before this version: their app client is the one of the
-- pool's CIMD policy that fetched their URL's document (the latest, should two policies admit one URL). A family
-- whose document is no longer kept stays without one: its app client's deletion does not reach it.
UPDATE token_families SET app_client_id = (
    SELECT p.client_id FROM cimd_documents AS d JOIN cimd_policies AS p ON p.id = d.policy_id
    WHERE d.url = token_families.client_id AND p.pool_id = token_families.pool_id
    ORDER BY d.cached_at DESC LIMIT 1
)
WHERE revoked = 0 AND client_id LIKE 'https://%';

CREATE INDEX token_families_by_app_client ON token_families (COALESCE(app_client_id, client_id));

-- Families of app clients deleted before this version: revoked now, as a deletion does from here on (the
-- metadata document clients' too, where their app client is known).
UPDATE token_families SET revoked = 1
WHERE revoked = 0
    AND NOT (client_id LIKE 'https://%' AND app_client_id IS NULL)
    AND NOT EXISTS (
        SELECT 1 FROM clients AS c
        WHERE c.id = COALESCE(token_families.app_client_id, token_families.client_id)
            AND c.pool_id = token_families.pool_id
    );
