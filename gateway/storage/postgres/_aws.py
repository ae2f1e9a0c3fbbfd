"""The PostgreSQL store: IAM roles and OIDC providers, identity pools, other issuers' signing keys, user import jobs
and client ID metadata documents.

Each method keeps the promise :class:`gateway.storage.base.Store` states, as the SQLite store's does (its SQL and
row converters are reused where the dialects agree; see :mod:`gateway.storage.postgres._base`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import asyncpg

from gateway.storage.base import (
    AlreadyExists,
    CimdPolicyRecord,
    IdentityLogin,
    IdentityPoolRecord,
    IdentityRecord,
    NotFound,
    Page,
    SigningKeyRecord,
    UserImportJobRecord,
    VersionConflict,
)
from gateway.storage.postgres._base import Connection, PostgresBase, pg_sql
from gateway.storage.sqlite import (
    _IDENTITY_IN_POOL,
    _IDENTITY_UNIQUE,
    _IMPORT_JOB_FIELDS,
    _INSERT_IDENTITY,
    _LOGIN_OWNER,
    _OPEN_IDENTITY_IN_POOL,
    _PUT_ROLE_POLICY,
    _UPDATE_ID_POOL,
    _USE_ASSERTION,
    CIMD_POLICY_COLUMNS,
    IDENTITY_COLUMNS,
    IMPORT_JOB_COLUMNS,
    ISSUER_KEY_COLUMNS,
    _cimd_policy,
    _dumps,
    _identity,
    _identity_params,
    _import_job,
    _paged,
    _placeholders,
    _qualified,
)

T = TypeVar("T")

# An identity and its logins in one row, as the SQLite store reads it, but: json_agg over no rows is NULL where
# SQLite's json_group_array is '[]', and PostgreSQL keeps an aggregate's order only when the aggregate names it
# (SQLite's ordered subquery also lacks the alias PostgreSQL before 16 requires).
_IDENTITY_SELECT = (
    f"SELECT {_qualified(IDENTITY_COLUMNS, 'i')}, COALESCE((SELECT json_agg(json_build_array(l.provider, l.subject) "
    "ORDER BY l.provider, l.subject) FROM identity_logins AS l WHERE l.identity_id = i.id), '[]') FROM identities AS i"
)
_GET_IDENTITY = _IDENTITY_SELECT + " WHERE i.id = ?"
_FIND_IDENTITY = (
    _IDENTITY_SELECT + " WHERE i.id = (SELECT identity_id FROM identity_logins "
    "WHERE pool_id = ? AND provider = ? AND subject = ?)"
)
_LIST_IDENTITIES = _paged(_IDENTITY_SELECT, "i.pool_id = ?", "i.id")
_LIST_ENABLED_IDENTITIES = _paged(_IDENTITY_SELECT, "i.pool_id = ? AND i.disabled = 0", "i.id")

# The SQLite store's _link and _touch_identity hold these inline and run them on an aiosqlite connection: the same
# statements, for an asyncpg one.
_LINK_LOGIN = (
    "INSERT INTO identity_logins (pool_id, provider, subject, identity_id, created_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (pool_id, provider, subject) DO NOTHING"
)
_TOUCH_IDENTITY = (
    "UPDATE identities SET updated_at = ?, disabled = CASE WHEN EXISTS "
    "(SELECT 1 FROM identity_logins WHERE identity_id = ?) THEN disabled ELSE 1 END WHERE id = ?"
)
_DELETE_CHUNKS_OF_UPLOAD = "DELETE FROM user_import_chunks WHERE pool_id = ? AND job_id = ? AND upload_id = ?"


async def _link(conn: Connection, pool_id: str, identity_id: str, logins: list[IdentityLogin], now: float) -> None:
    """Link logins not linked yet (the caller checked none belongs to another identity, and that the identity is
    not inaccessible)."""
    for login in logins:
        await conn.execute(pg_sql(_LINK_LOGIN), pool_id, login.provider, login.subject, identity_id, now)
    if logins:
        await conn.execute(pg_sql("UPDATE identities SET updated_at = ? WHERE id = ?"), now, identity_id)


async def _touch_identity(conn: Connection, identity_id: str, now: float) -> None:
    """After logins were unlinked: disabled once none is left."""
    await conn.execute(pg_sql(_TOUCH_IDENTITY), now, identity_id, identity_id)


async def _read_identity(conn: Connection, identity_id: str) -> IdentityRecord:
    """The identity as the transaction on ``conn`` left it (it exists)."""
    return _identity(await conn.fetchrow(pg_sql(_GET_IDENTITY), identity_id))


class AwsMixin(PostgresBase):
    # --- IAM roles and OIDC providers ---------------------------------------------------------------------

    async def delete_role(self, name_key: str) -> bool:
        return bool(await self._execute("DELETE FROM iam_roles WHERE name_key = ?", (name_key,)))

    async def put_role_policy(self, name_key: str, policy_name: str, document: str) -> None:
        await self._insert_one(_PUT_ROLE_POLICY, (name_key, policy_name, document), {}, "role")

    async def delete_role_policy(self, name_key: str, policy_name: str) -> bool:
        changed = await self._execute(
            "DELETE FROM iam_role_policies WHERE role_name_key = ? AND policy_name = ?", (name_key, policy_name)
        )
        return bool(changed)

    async def delete_oidc_provider(self, url: str) -> bool:
        return bool(await self._execute("DELETE FROM iam_oidc_providers WHERE url = ?", (url,)))

    async def delete_saml_provider(self, name: str) -> bool:
        return bool(await self._execute("DELETE FROM iam_saml_providers WHERE name = ?", (name,)))

    async def use_saml_assertion(self, assertion_key: str, expires_at: float, now: float) -> bool:
        """One statement: a new key inserts; a key whose marker has expired is taken over; a live one is left alone
        and RETURNING yields nothing. Of concurrent callers, PostgreSQL makes the later wait for the earlier's row
        and evaluates the condition on it, so one wins."""
        return bool(await self._fetch(_USE_ASSERTION, (assertion_key, expires_at, now)))

    # --- identity pools -----------------------------------------------------------------------------------

    async def update_identity_pool(self, pool: IdentityPoolRecord) -> IdentityPoolRecord:
        params = (pool.name, _dumps(pool.settings), pool.created_at, pool.updated_at, pool.id, pool.version)

        async def work(conn: Connection) -> bool:
            if await self._fetch(_UPDATE_ID_POOL, params, conn):
                return True
            if await self._fetch("SELECT 1 FROM identity_pools WHERE id = ?", (pool.id,), conn):
                raise VersionConflict(pool.id)
            raise NotFound(pool.id)

        await self._write(work)
        return replace(pool, version=pool.version + 1)

    async def delete_identity_pool(self, pool_id: str) -> bool:
        return bool(await self._execute("DELETE FROM identity_pools WHERE id = ?", (pool_id,)))

    async def get_identity(self, identity_id: str) -> IdentityRecord | None:
        return await self._fetch_one(_GET_IDENTITY, (identity_id,), _identity)

    async def find_identity_by_login(self, pool_id: str, login: IdentityLogin) -> IdentityRecord | None:
        return await self._fetch_one(_FIND_IDENTITY, (pool_id, login.provider, login.subject), _identity)

    async def resolve_identity(self, new: IdentityRecord) -> IdentityRecord:
        async def work(conn: Connection) -> IdentityRecord:
            owners: set[str] = set()
            for login in new.logins:
                rows = await self._fetch(_LOGIN_OWNER, (new.pool_id, login.provider, login.subject), conn)
                owners.update(str(row[0]) for row in rows)
            if len(owners) > 1:
                raise AlreadyExists("login")
            if owners:
                identity_id = owners.pop()
                await _link(conn, new.pool_id, identity_id, new.logins, new.updated_at)
            else:
                identity_id = new.id
                await self._insert_one(_INSERT_IDENTITY, _identity_params(new), _IDENTITY_UNIQUE, "pool", conn)
                await _link(conn, new.pool_id, identity_id, new.logins, new.created_at)
            return await _read_identity(conn, identity_id)

        return await self._write(work)

    async def link_logins(
        self, pool_id: str, identity_id: str, logins: list[IdentityLogin], now: float
    ) -> IdentityRecord:
        async def work(conn: Connection) -> IdentityRecord:
            if not await self._fetch(_OPEN_IDENTITY_IN_POOL, (identity_id, pool_id), conn):
                raise NotFound("identity")
            for login in logins:
                rows = await self._fetch(_LOGIN_OWNER, (pool_id, login.provider, login.subject), conn)
                if rows and rows[0][0] != identity_id:
                    raise AlreadyExists("login")
            await _link(conn, pool_id, identity_id, logins, now)
            return await _read_identity(conn, identity_id)

        return await self._write(work)

    async def unlink_logins(
        self, pool_id: str, identity_id: str, logins: list[IdentityLogin], now: float
    ) -> IdentityRecord:
        async def work(conn: Connection) -> IdentityRecord:
            if not await self._fetch(_IDENTITY_IN_POOL, (identity_id, pool_id), conn):
                raise NotFound("identity")
            for login in logins:
                await self._execute(
                    "DELETE FROM identity_logins WHERE pool_id = ? AND provider = ? AND subject = ? "
                    "AND identity_id = ?",
                    (pool_id, login.provider, login.subject, identity_id),
                    conn,
                )
            await _touch_identity(conn, identity_id, now)
            return await _read_identity(conn, identity_id)

        return await self._write(work)

    async def move_logins(
        self, pool_id: str, logins: list[IdentityLogin], identity_id: str, now: float
    ) -> IdentityRecord:
        async def work(conn: Connection) -> IdentityRecord:
            if not await self._fetch(_OPEN_IDENTITY_IN_POOL, (identity_id, pool_id), conn):
                raise NotFound("identity")
            previous: set[str] = set()
            for login in logins:
                rows = await self._fetch(_LOGIN_OWNER, (pool_id, login.provider, login.subject), conn)
                if rows and rows[0][0] != identity_id:
                    previous.add(str(rows[0][0]))
                    await self._execute(
                        "DELETE FROM identity_logins WHERE pool_id = ? AND provider = ? AND subject = ?",
                        (pool_id, login.provider, login.subject),
                        conn,
                    )
            for other in sorted(previous):
                await _touch_identity(conn, other, now)
            await _link(conn, pool_id, identity_id, logins, now)
            return await _read_identity(conn, identity_id)

        return await self._write(work)

    async def delete_identities(self, identity_ids: list[str]) -> list[str]:
        async def work(conn: Connection) -> list[str]:
            deleted: list[str] = []
            for identity_id in identity_ids:
                if await self._execute("DELETE FROM identities WHERE id = ?", (identity_id,), conn):
                    deleted.append(identity_id)
            return deleted

        return await self._write(work)

    async def list_identities(
        self, pool_id: str, after: str | None, limit: int, *, hide_disabled: bool = False
    ) -> Page[IdentityRecord]:
        query = _LIST_ENABLED_IDENTITIES if hide_disabled else _LIST_IDENTITIES
        return await self._list_page(query, (pool_id,), after, limit, _identity, lambda i: i.id)

    # --- signing keys of other issuers --------------------------------------------------------------------

    async def add_issuer_signing_key(self, key: SigningKeyRecord) -> None:
        params = (key.pool_id, key.kid, key.private_jwk, key.created_at, int(key.active), key.retired_at, key.token_use)

        async def work(conn: Connection) -> None:
            if key.active:
                await self._execute(
                    "UPDATE issuer_signing_keys SET active = 0, retired_at = ? "
                    "WHERE key_set = ? AND token_use = ? AND active = 1",
                    (key.created_at, key.pool_id, key.token_use),
                    conn,
                )
            await self._insert_one(
                f"INSERT INTO issuer_signing_keys ({ISSUER_KEY_COLUMNS}) VALUES ({_placeholders(ISSUER_KEY_COLUMNS)})",
                params,
                {"issuer_signing_keys.key_set, issuer_signing_keys.kid": "id"},
                "key set",
                conn,
            )

        await self._write(work)

    async def delete_issuer_signing_key(self, key_set: str, kid: str) -> None:
        await self._execute("DELETE FROM issuer_signing_keys WHERE key_set = ? AND kid = ?", (key_set, kid))

    # --- user import jobs -------------------------------------------------------------------------------

    async def update_user_import_job(
        self, pool_id: str, job_id: str, *, statuses: Collection[str], changes: Mapping[str, Any]
    ) -> UserImportJobRecord | None:
        columns = [_IMPORT_JOB_FIELDS[name] for name in changes]  # KeyError for a field that cannot change
        if not statuses:
            return None
        # No change: the job as it is, if its status is one of these (a no-op SET keeps it one statement).
        sets = ", ".join(f"{column} = ?" for column in columns) or "status = status"
        marks = ", ".join("?" for _ in statuses)
        sql = (
            f"UPDATE user_import_jobs SET {sets} WHERE pool_id = ? AND job_id = ? AND status IN ({marks}) "
            f"RETURNING {IMPORT_JOB_COLUMNS}"
        )
        try:
            rows = await self._fetch(sql, (*changes.values(), pool_id, job_id, *statuses))
        except asyncpg.UniqueViolationError as exc:
            raise AlreadyExists("running") from exc  # the one-running-job-per-pool index
        return _import_job(rows[0]) if rows else None

    async def finish_user_import_upload(self, pool_id: str, job_id: str, upload_id: str, size: int, now: float) -> bool:
        async def work(conn: Connection) -> bool:
            before = await self._fetch(
                "SELECT upload_id FROM user_import_jobs WHERE pool_id = ? AND job_id = ?", (pool_id, job_id), conn
            )
            taken = await self._fetch(
                "UPDATE user_import_jobs SET upload_id = ?, upload_bytes = ? "
                "WHERE pool_id = ? AND job_id = ? AND status = 'Created' AND url_expires_at > ? RETURNING 1",
                (upload_id, size, pool_id, job_id, now),
                conn,
            )
            # The job's file is now this upload (the one it replaces goes), or it was refused (this one goes).
            # An upload still in progress keeps its parts: it may finish and replace this one in turn.
            dropped = upload_id if not taken else (before[0][0] if before else None)
            if dropped is not None and (dropped != upload_id or not taken):
                await self._execute(_DELETE_CHUNKS_OF_UPLOAD, (pool_id, job_id, dropped), conn)
            return bool(taken)

        return await self._write(work)

    async def drop_user_import_upload(self, pool_id: str, job_id: str, upload_id: str | None) -> None:
        if upload_id is None:
            await self._execute("DELETE FROM user_import_chunks WHERE pool_id = ? AND job_id = ?", (pool_id, job_id))
        else:
            await self._execute(_DELETE_CHUNKS_OF_UPLOAD, (pool_id, job_id, upload_id))

    # --- client ID metadata documents (CIMD) -----------------------------------------------------------------

    async def update_cimd_policy(self, record: CimdPolicyRecord) -> CimdPolicyRecord | None:
        r = record
        return await self._fetch_one(
            "UPDATE cimd_policies SET client_id = ?, name = ?, cache_seconds = ?, url_patterns = ?, updated_at = ? "
            f"WHERE pool_id = ? AND id = ? RETURNING {CIMD_POLICY_COLUMNS}",
            (r.client_id, r.name, r.cache_seconds, _dumps(r.url_patterns), r.updated_at, r.pool_id, r.policy_id),
            _cimd_policy,
        )

    async def delete_cimd_policy(self, pool_id: str, policy_id: str) -> bool:
        return bool(await self._execute("DELETE FROM cimd_policies WHERE pool_id = ? AND id = ?", (pool_id, policy_id)))

    async def delete_cimd_documents(self, policy_id: str, url: str | None = None) -> int:
        # The rows' count from the command status, rather than RETURNING them all.
        if url is None:
            return await self._execute("DELETE FROM cimd_documents WHERE policy_id = ?", (policy_id,))
        return await self._execute("DELETE FROM cimd_documents WHERE policy_id = ? AND url = ?", (policy_id, url))
