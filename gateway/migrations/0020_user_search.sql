-- Gatehouse schema: ListUsers' Filter by an index.
--
-- One row per searchable field of a user (storage/base.py SEARCHABLE_USER_FIELDS: username, the status,
-- the enabled state, sub and the filterable standard attributes), as given and lower-cased, so that
-- `email = "..."` or `family_name ^= "..."` is an index look-up rather than a read of the whole pool. The
-- rows are written with their user (create_user, update_user) and die with it. Existing users are indexed
-- when this migration is applied (storage/sqlite.py, _BACKFILLS). Same column rules as 0001.

CREATE TABLE user_search (
    pool_id      TEXT NOT NULL,
    username_key TEXT NOT NULL,
    name         TEXT NOT NULL,
    value        TEXT NOT NULL,
    folded       TEXT NOT NULL,
    PRIMARY KEY (pool_id, username_key, name),
    FOREIGN KEY (pool_id, username_key) REFERENCES users (pool_id, username_key) ON DELETE CASCADE
);
CREATE INDEX user_search_by_value ON user_search (pool_id, name, value, username_key);
CREATE INDEX user_search_by_folded ON user_search (pool_id, name, folded, username_key);
