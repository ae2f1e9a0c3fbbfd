"""The PostgreSQL store: server-wide metadata, pools, app clients, users and groups.

Each method keeps the promise :class:`gateway.storage.base.Store` states, as the SQLite store's does (its SQL and
row converters are reused where the dialects agree; see :mod:`gateway.storage.postgres._base`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import TypeVar

import asyncpg

from gateway.storage.base import (
    AlreadyExists,
    GroupRecord,
    NotFound,
    Page,
    UserRecord,
    UserSearch,
    VersionConflict,
    user_search_values,
)
from gateway.storage.postgres._base import Connection, Params, PostgresBase, index_text, pg_sql, translate
from gateway.storage.sqlite import (
    _ALIAS_HELD,
    _ALIAS_UNIQUE_COLUMNS,
    _DELETE_ALIAS,
    _DELETE_BATCH,
    _DELETE_CLIENT,
    _DELETE_SEARCH,
    _GET_USER_BY_ALIAS,
    _GROUPS_FOR_USER,
    _INSERT_ALIAS,
    _INSERT_SEARCH,
    _INSERT_USER,
    _LIST_USERS,
    _PUT_SEARCH,
    _REVOKE_CLIENT_FAMILIES,
    _SEARCH_PREFIX,
    _SEARCH_USERS,
    _UPDATE_USER,
    _USER_ALIASES,
    _USER_EXISTS,
    _USER_SEARCH_ROWS,
    _USER_UNIQUE,
    GROUP_COLUMNS,
    USER_COLUMNS,
    _check_limit,
    _check_search,
    _dumps,
    _group,
    _loads,
    _PagedQuery,
    _prefix_upper_bound,
    _qualified,
    _search_position,
    _user,
    _user_params,
)

T = TypeVar("T")


def _search_rows(user: UserRecord) -> dict[str, tuple[str, str]]:
    """The user's search index rows: field -> (value, folded), as index_text() keeps them."""
    return {name: (index_text(value), index_text(value.lower())) for name, value in user_search_values(user).items()}


# The user and the user's groups as one JSON array in list_groups_for_user's order, as the SQLite store's
# _USER_WITH_GROUPS; PostgreSQL (before 16) wants an alias on a subquery in FROM, and json_agg over no rows is NULL
# (SQLite's json_group_array gives "[]"), so the aggregate orders its rows itself and NULL reads as no groups.
_USER_WITH_GROUPS = (
    f"SELECT {_qualified(USER_COLUMNS, 'u')}, "
    f"(SELECT json_agg(json_build_array({_qualified(GROUP_COLUMNS, 'g')}) ORDER BY m.group_name) "
    "FROM group_members AS m JOIN pool_groups AS g ON g.pool_id = m.pool_id AND g.name = m.group_name "
    "WHERE m.pool_id = u.pool_id AND m.username_key = u.username_key) "
    "FROM users AS u WHERE u.pool_id = ? AND u.username_key = ?"
)
# A batch of a pool's rows (SqliteStore.delete_pool's), by primary key: PostgreSQL has no rowid.
_DELETE_POOL_BATCH = {
    "token_families": (
        "DELETE FROM token_families WHERE origin_jti IN "
        "(SELECT origin_jti FROM token_families WHERE pool_id = ? LIMIT ?)"
    ),
    "users": (
        "DELETE FROM users WHERE (pool_id, username_key) IN "
        "(SELECT pool_id, username_key FROM users WHERE pool_id = ? LIMIT ?)"
    ),
}


class UsersMixin(PostgresBase):
    # --- pools ------------------------------------------------------------------------------------------

    async def delete_pool(self, pool_id: str) -> bool:
        """As the SQLite store's: the pool's token families and users first, in batches of one statement each, so
        that no transaction holds a large pool's rows (and the cascade's queue of them) for long; then the pool
        row, whose ON DELETE CASCADE reaches the rest."""
        for table in ("token_families", "users"):
            while await self._execute(_DELETE_POOL_BATCH[table], (pool_id, _DELETE_BATCH)) >= _DELETE_BATCH:
                pass
        return await self._execute("DELETE FROM pools WHERE id = ?", (pool_id,)) > 0

    # --- clients ----------------------------------------------------------------------------------------

    async def delete_client(self, pool_id: str, client_id: str) -> bool:
        """SERIALIZABLE: a token family stored at the same time, whose transaction found the client, either
        commits first (and is revoked here) or fails and is tried again (and finds no client)."""

        async def work(conn: Connection) -> bool:
            if not await self._execute(_DELETE_CLIENT, (pool_id, client_id), conn):
                return False
            await self._execute(_REVOKE_CLIENT_FAMILIES, (client_id, pool_id), conn)
            return True

        return await self._write(work)

    # --- users ------------------------------------------------------------------------------------------

    async def create_user(
        self,
        user: UserRecord,
        *,
        free_aliases: Collection[tuple[str, str]] = (),
        free_usernames: Collection[str] = (),
    ) -> None:
        """SERIALIZABLE: a name checked free here and taken by a transaction at the same time makes one of the two
        fail and run again, when it finds the name taken."""

        async def work(conn: Connection) -> None:
            for attribute, value in free_aliases:
                if await self._fetch(_ALIAS_HELD, (user.pool_id, attribute, index_text(value)), conn):
                    raise AlreadyExists("username")
            await _check_free_usernames(self, conn, user, free_usernames)
            await self._insert_one(_INSERT_USER, _user_params(user), _USER_UNIQUE, "pool", conn)
            for attribute, value in sorted(user.aliases.items()):
                await _insert_alias(self, conn, user.pool_id, attribute, index_text(value), user.username_key)
            rows = [
                (user.pool_id, user.username_key, name, value, folded)
                for name, (value, folded) in _search_rows(user).items()
            ]
            if rows:
                await conn.executemany(pg_sql(_INSERT_SEARCH), rows)

        await self._write(work)

    async def get_user_by_alias(self, pool_id: str, attribute: str, value: str) -> UserRecord | None:
        return await self._fetch_one(_GET_USER_BY_ALIAS, (pool_id, attribute, index_text(value)), _user)

    async def get_user_with_groups(
        self, pool_id: str, username_key: str
    ) -> tuple[UserRecord, list[GroupRecord]] | None:
        rows = await self._fetch(_USER_WITH_GROUPS, (pool_id, username_key))
        if not rows:
            return None
        row = rows[0]
        groups = [] if row[-1] is None else [_group(g) for g in _loads(row[-1])]
        return _user(row[:-1]), groups

    async def update_user(self, user: UserRecord, *, free_usernames: Collection[str] = ()) -> UserRecord:
        """Writes every field but the key (pool_id, username_key); the alias index follows ``user.aliases``.
        SERIALIZABLE, as :meth:`create_user`; an update that meets a concurrent one runs again and then finds
        the version changed (VersionConflict)."""
        key = (user.pool_id, user.username_key)
        row = _user_params(user)
        # The SET list is the insert's column list minus pool_id, username_key and version.
        params = (row[1], *row[3:17], *key, user.version)

        async def work(conn: Connection) -> None:
            await _check_free_usernames(self, conn, user, free_usernames)
            try:
                updated = await self._fetch(_UPDATE_USER, params, conn)
            except asyncpg.IntegrityConstraintViolationError as exc:
                error = translate(exc, _USER_UNIQUE, "pool")
                if error is exc:
                    raise
                raise error from exc
            if not updated:
                exists = await self._fetch(_USER_EXISTS, key, conn)
                raise VersionConflict(user.username_key) if exists else NotFound(user.username_key)
            # Touch only the alias rows that change, so that an unchanged alias is never briefly free.
            stored = {str(attribute): str(value) for attribute, value in await self._fetch(_USER_ALIASES, key, conn)}
            aliases = {attribute: index_text(value) for attribute, value in user.aliases.items()}
            for attribute, value in sorted(stored.items()):
                if aliases.get(attribute) != value:
                    await self._execute(_DELETE_ALIAS, (user.pool_id, attribute, value), conn)
            for attribute, value in sorted(aliases.items()):
                if stored.get(attribute) != value:
                    await _insert_alias(self, conn, user.pool_id, attribute, value, user.username_key)
            # The search index likewise: only the fields that changed are written.
            indexed = {str(name): str(value) for name, value in await self._fetch(_USER_SEARCH_ROWS, key, conn)}
            values = _search_rows(user)
            for name in indexed.keys() - values.keys():
                await self._execute(_DELETE_SEARCH, (*key, name), conn)
            changed = [
                (*key, name, value, folded) for name, (value, folded) in values.items() if indexed.get(name) != value
            ]
            if changed:
                await conn.executemany(pg_sql(_PUT_SEARCH), changed)

        await self._write(work)
        return replace(user, version=user.version + 1)

    async def delete_user(self, pool_id: str, username_key: str) -> bool:
        key = (pool_id, username_key)

        async def work(conn: Connection) -> bool:
            # Aliases and group memberships follow by ON DELETE CASCADE, refresh tokens with their families.
            deleted = await self._execute("DELETE FROM users WHERE pool_id = ? AND username_key = ?", key, conn)
            await self._execute("DELETE FROM codes WHERE pool_id = ? AND username_key = ?", key, conn)
            await self._execute("DELETE FROM auth_sessions WHERE pool_id = ? AND username_key = ?", key, conn)
            await self._execute("DELETE FROM token_families WHERE pool_id = ? AND username_key = ?", key, conn)
            return deleted > 0

        return await self._write(work)

    async def list_users(
        self, pool_id: str, after: str | None, limit: int, *, where: UserSearch | None = None
    ) -> Page[UserRecord]:
        if where is None:
            return await self._list_page(_LIST_USERS, (pool_id,), after, limit, _user, lambda u: u.username_key)
        _check_search(where)
        column = "folded" if where.folded else "value"
        # A prefix is never longer than INDEX_BYTES: index_text() leaves it as it is.
        scope: tuple[str, ...] = (pool_id, where.field, index_text(where.value))
        kind = "equal"
        if where.prefix:
            # The range's bound holds for PostgreSQL too: the columns are COLLATE "C" (code-point order).
            upper = _prefix_upper_bound(where.value)
            scope = scope if upper is None else (*scope, upper)
            position = _search_position(after)
            if after is None or position is not None:
                return await _list_prefix(self, _SEARCH_PREFIX[column, upper is not None], scope, position, limit)
            # A token from before prefix pages were keyed by value (its key is a username_key alone).
            kind = "from" if upper is None else "range"
        query = _SEARCH_USERS[column, kind]
        return await self._list_page(query, scope, after, limit, _user, lambda u: u.username_key)

    async def count_users(self, pool_id: str) -> int:
        rows = await self._fetch("SELECT COUNT(*) FROM users WHERE pool_id = ?", (pool_id,))
        return int(rows[0][0])

    # --- groups -----------------------------------------------------------------------------------------

    async def delete_group(self, pool_id: str, name: str) -> bool:
        return await self._execute("DELETE FROM pool_groups WHERE pool_id = ? AND name = ?", (pool_id, name)) > 0

    async def remove_user_from_group(self, pool_id: str, username_key: str, group: str) -> None:
        await self._execute(
            "DELETE FROM group_members WHERE pool_id = ? AND group_name = ? AND username_key = ?",
            (pool_id, group, username_key),
        )

    async def list_groups_for_user(self, pool_id: str, username_key: str) -> list[GroupRecord]:
        return [_group(row) for row in await self._fetch(_GROUPS_FOR_USER, (pool_id, username_key))]


# Functions rather than methods: the store's other parts have helpers of their own, and a method of the same name
# in two of PostgresStore's bases would be one of them for all.


async def _list_prefix(
    store: PostgresBase, query: _PagedQuery, scope: Params, position: tuple[str, str] | None, limit: int
) -> Page[UserRecord]:
    """One page of a prefix search (_SEARCH_PREFIX), after ``position`` (value, username_key) if given; the next
    page's key is the last row's pair, as JSON."""
    _check_limit(limit)
    if position is None:
        rows = await store._fetch(query.first, (*scope, limit + 1))
    else:
        rows = await store._fetch(query.after, (*scope, *position, limit + 1))
    items = [_user(row) for row in rows[:limit]]
    following = _dumps([rows[limit - 1][-1], items[-1].username_key]) if len(rows) > limit else None
    return Page(items, following)


async def _insert_alias(
    store: PostgresBase, conn: Connection, pool_id: str, attribute: str, value: str, key: str
) -> None:
    # One statement per alias (there are at most a few) so a conflict names its attribute.
    unique: Mapping[str, str] = {_ALIAS_UNIQUE_COLUMNS: f"alias:{attribute}"}
    await store._insert_one(_INSERT_ALIAS, (pool_id, attribute, value, key), unique, "user", conn)


async def _check_free_usernames(
    store: PostgresBase, conn: Connection, user: UserRecord, usernames: Collection[str]
) -> None:
    """AlreadyExists("alias:preferred_username") when a user other than ``user`` has one of ``usernames``."""
    for username_key in usernames:
        if username_key != user.username_key and await store._fetch(_USER_EXISTS, (user.pool_id, username_key), conn):
            raise AlreadyExists("alias:preferred_username")
