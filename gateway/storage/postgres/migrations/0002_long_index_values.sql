-- The alias and search indexes hold a value longer than 1,024 bytes of UTF-8 as index_text() in
-- gateway/storage/postgres/_base.py has it: its first 1,024 bytes, cut before a character they would split, then
-- U+FFFF and the SHA-256 of the whole, in hex (PostgreSQL's B-tree refuses an entry above 2,704 bytes). Rows
-- written before hold such values whole (those short enough, or compressible enough, to be indexed); they are
-- rewritten so, that look-ups find them. Plain statements (no function, which would need the TEMP or CREATE
-- privilege): the cut backs off past at most three continuation bytes (10xxxxxx), a character being four bytes at
-- most. No SQLite counterpart: SQLite's indexes keep values of any length whole.

UPDATE user_aliases AS a
SET value = convert_from(substring(k.b FROM 1 FOR k.n), 'UTF8') || U&'\FFFF' || encode(sha256(k.b), 'hex')
FROM (
    SELECT id, b, CASE
        WHEN get_byte(b, 1024) & 192 <> 128 THEN 1024
        WHEN get_byte(b, 1023) & 192 <> 128 THEN 1023
        WHEN get_byte(b, 1022) & 192 <> 128 THEN 1022
        ELSE 1021
    END AS n
    FROM (SELECT ctid AS id, convert_to(value, 'UTF8') AS b FROM user_aliases WHERE octet_length(value) > 1024) AS s
) AS k
WHERE a.ctid = k.id;

UPDATE user_search AS u
SET value = convert_from(substring(k.b FROM 1 FOR k.n), 'UTF8') || U&'\FFFF' || encode(sha256(k.b), 'hex')
FROM (
    SELECT id, b, CASE
        WHEN get_byte(b, 1024) & 192 <> 128 THEN 1024
        WHEN get_byte(b, 1023) & 192 <> 128 THEN 1023
        WHEN get_byte(b, 1022) & 192 <> 128 THEN 1022
        ELSE 1021
    END AS n
    FROM (SELECT ctid AS id, convert_to(value, 'UTF8') AS b FROM user_search WHERE octet_length(value) > 1024) AS s
) AS k
WHERE u.ctid = k.id;

UPDATE user_search AS u
SET folded = convert_from(substring(k.b FROM 1 FOR k.n), 'UTF8') || U&'\FFFF' || encode(sha256(k.b), 'hex')
FROM (
    SELECT id, b, CASE
        WHEN get_byte(b, 1024) & 192 <> 128 THEN 1024
        WHEN get_byte(b, 1023) & 192 <> 128 THEN 1023
        WHEN get_byte(b, 1022) & 192 <> 128 THEN 1022
        ELSE 1021
    END AS n
    FROM (SELECT ctid AS id, convert_to(folded, 'UTF8') AS b FROM user_search WHERE octet_length(folded) > 1024) AS s
) AS k
WHERE u.ctid = k.id;

UPDATE seen_assertions AS m
SET key = convert_from(substring(k.b FROM 1 FOR k.n), 'UTF8') || U&'\FFFF' || encode(sha256(k.b), 'hex')
FROM (
    SELECT id, b, CASE
        WHEN get_byte(b, 1024) & 192 <> 128 THEN 1024
        WHEN get_byte(b, 1023) & 192 <> 128 THEN 1023
        WHEN get_byte(b, 1022) & 192 <> 128 THEN 1022
        ELSE 1021
    END AS n
    FROM (SELECT ctid AS id, convert_to(key, 'UTF8') AS b FROM seen_assertions WHERE octet_length(key) > 1024) AS s
) AS k
WHERE m.ctid = k.id;
