-- The alias and search indexes hold a value longer than 1,024 bytes of UTF-8 as index_text() in
-- gateway/storage/postgres/_users.py has it (its first 1,024 bytes, cut at a character, then U+FFFF and the
-- SHA-256 of the whole, in hex): PostgreSQL's B-tree refuses an entry above 2,704 bytes. Rows written before hold
-- such values whole (those short enough, or compressible enough, to be indexed); they are rewritten so, that
-- look-ups find them. No SQLite counterpart: SQLite's indexes keep values of any length whole.

CREATE FUNCTION pg_temp.gatehouse_index_text(v TEXT) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    b BYTEA := convert_to(v, 'UTF8');
    n INTEGER := 1024;
BEGIN
    IF octet_length(b) <= 1024 THEN
        RETURN v;
    END IF;
    -- Byte n (from 0) is the first one left out: while it continues a character, that character is left out.
    WHILE n > 0 AND (get_byte(b, n) & 192) = 128 LOOP
        n := n - 1;
    END LOOP;
    RETURN convert_from(substring(b FROM 1 FOR n), 'UTF8') || U&'\FFFF' || encode(sha256(b), 'hex');
END
$$;

UPDATE user_aliases SET value = pg_temp.gatehouse_index_text(value) WHERE octet_length(value) > 1024;

UPDATE user_search
SET value = pg_temp.gatehouse_index_text(value), folded = pg_temp.gatehouse_index_text(folded)
WHERE octet_length(value) > 1024 OR octet_length(folded) > 1024;

DROP FUNCTION pg_temp.gatehouse_index_text(TEXT);
