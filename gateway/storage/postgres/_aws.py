"""The PostgreSQL store: IAM roles and OIDC providers, identity pools, other issuers' signing keys, user import jobs
and client ID metadata documents.

Each method keeps the promise :class:`gateway.storage.base.Store` states, as the SQLite store's does (its SQL and
row converters are reused where the dialects agree; see :mod:`gateway.storage.postgres._base`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Any, TypeVar

import asyncpg

from gateway.storage.base import (
    AlreadyExists,
    CimdDocumentRecord,
    CimdPolicyRecord,
    IdentityLogin,
    IdentityPoolRecord,
    IdentityRecord,
    NotFound,
    OidcProviderRecord,
    Page,
    RoleRecord,
    SamlProviderRecord,
    SigningKeyRecord,
    UserImportJobRecord,
    VersionConflict,
)
from gateway.storage.postgres._base import Connection, Params, PostgresBase, Row, pg_sql
from gateway.storage.sqlite import (
    _CIMD_POLICY_UNIQUE,
    _GET_ROLE,
    _ID_POOL_UNIQUE,
    _IDENTITY_IN_POOL,
    _IDENTITY_UNIQUE,
    _IMPORT_JOB_FIELDS,
    _INSERT_CIMD_POLICY,
    _INSERT_ID_POOL,
    _INSERT_IDENTITY,
    _INSERT_OIDC,
    _INSERT_ROLE,
    _INSERT_SAML,
    _LIST_CIMD_DOCUMENTS,
    _LIST_CIMD_POLICIES,
    _LIST_ID_POOLS,
    _LIST_IMPORT_JOBS,
    _LIST_ROLES,
    _LOGIN_OWNER,
    _OIDC_UNIQUE,
    _OPEN_IDENTITY_IN_POOL,
    _PUT_ROLE_POLICY,
    _ROLE_UNIQUE,
    _SAML_UNIQUE,
    _UPDATE_ID_POOL,
    _UPDATE_OIDC,
    _UPDATE_ROLE,
    _UPDATE_SAML,
    _USE_ASSERTION,
    CIMD_DOCUMENT_COLUMNS,
    CIMD_POLICY_COLUMNS,
    ID_POOL_COLUMNS,
    IDENTITY_COLUMNS,
    IMPORT_JOB_COLUMNS,
    ISSUER_KEY_COLUMNS,
    OIDC_COLUMNS,
    SAML_COLUMNS,
    _check_limit,
    _cimd_document,
    _cimd_policy,
    _cimd_policy_params,
    _dumps,
    _id_pool,
    _id_pool_params,
    _identity,
    _identity_params,
    _import_job,
    _import_job_params,
    _key,
    _oidc,
    _oidc_params,
    _page,
    _paged,
    _PagedQuery,
    _placeholders,
    _qualified,
    _role,
    _role_params,
    _saml,
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


async def _list_page(
    store: PostgresBase,
    query: _PagedQuery,
    scope: Params,
    after: str | None,
    limit: int,
    convert: Callable[[Row], T],
    key: Callable[[T], str],
) -> Page[T]:
    """One page of a keyset-paginated listing (as the SQLite store's ``_list_page``)."""
    _check_limit(limit)
    if after is None:
        rows = await store._fetch(query.first, (*scope, limit + 1))
    else:
        rows = await store._fetch(query.after, (*scope, after, limit + 1))
    return _page(rows, limit, convert, key)


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

    async def create_role(self, role: RoleRecord) -> None:
        await self._insert(_INSERT_ROLE, _role_params(role), _ROLE_UNIQUE, "role")

    async def get_role(self, name_key: str) -> RoleRecord | None:
        return await self._fetch_one(_GET_ROLE, (name_key,), _role)

    async def update_role(self, role: RoleRecord) -> None:
        params = (*_role_params(role)[1:], role.name_key)
        if not await self._fetch(_UPDATE_ROLE, params):
            raise NotFound(role.name_key)

    async def delete_role(self, name_key: str) -> bool:
        return bool(await self._execute("DELETE FROM iam_roles WHERE name_key = ?", (name_key,)))

    async def list_roles(self, after: str | None, limit: int) -> Page[RoleRecord]:
        return await _list_page(self, _LIST_ROLES, (), after, limit, _role, lambda r: r.name_key)

    async def put_role_policy(self, name_key: str, policy_name: str, document: str) -> None:
        await self._insert(_PUT_ROLE_POLICY, (name_key, policy_name, document), {}, "role")

    async def delete_role_policy(self, name_key: str, policy_name: str) -> bool:
        changed = await self._execute(
            "DELETE FROM iam_role_policies WHERE role_name_key = ? AND policy_name = ?", (name_key, policy_name)
        )
        return bool(changed)

    async def create_oidc_provider(self, provider: OidcProviderRecord) -> None:
        await self._insert(_INSERT_OIDC, _oidc_params(provider), _OIDC_UNIQUE, "provider")

    async def get_oidc_provider(self, url: str) -> OidcProviderRecord | None:
        return await self._fetch_one(f"SELECT {OIDC_COLUMNS} FROM iam_oidc_providers WHERE url = ?", (url,), _oidc)

    async def update_oidc_provider(self, provider: OidcProviderRecord) -> None:
        params = (*_oidc_params(provider)[1:], provider.url)
        if not await self._fetch(_UPDATE_OIDC, params):
            raise NotFound(provider.url)

    async def delete_oidc_provider(self, url: str) -> bool:
        return bool(await self._execute("DELETE FROM iam_oidc_providers WHERE url = ?", (url,)))

    async def list_oidc_providers(self) -> list[OidcProviderRecord]:
        rows = await self._fetch(f"SELECT {OIDC_COLUMNS} FROM iam_oidc_providers ORDER BY url", ())
        return [_oidc(row) for row in rows]

    async def create_saml_provider(self, provider: SamlProviderRecord) -> None:
        params = (provider.name, provider.metadata, _dumps(provider.tags), provider.created_at, provider.updated_at)
        await self._insert(_INSERT_SAML, params, _SAML_UNIQUE, "provider")

    async def get_saml_provider(self, name: str) -> SamlProviderRecord | None:
        return await self._fetch_one(f"SELECT {SAML_COLUMNS} FROM iam_saml_providers WHERE name = ?", (name,), _saml)

    async def update_saml_provider(self, provider: SamlProviderRecord) -> None:
        params = (provider.metadata, _dumps(provider.tags), provider.updated_at, provider.name)
        if not await self._fetch(_UPDATE_SAML, params):
            raise NotFound(provider.name)

    async def delete_saml_provider(self, name: str) -> bool:
        return bool(await self._execute("DELETE FROM iam_saml_providers WHERE name = ?", (name,)))

    async def list_saml_providers(self) -> list[SamlProviderRecord]:
        rows = await self._fetch(f"SELECT {SAML_COLUMNS} FROM iam_saml_providers ORDER BY name", ())
        return [_saml(row) for row in rows]

    async def use_saml_assertion(self, assertion_key: str, expires_at: float, now: float) -> bool:
        """One statement: a new key inserts; a key whose marker has expired is taken over; a live one is left alone
        and RETURNING yields nothing. Of concurrent callers, PostgreSQL makes the later wait for the earlier's row
        and evaluates the condition on it, so one wins."""
        return bool(await self._fetch(_USE_ASSERTION, (assertion_key, expires_at, now)))

    # --- identity pools -----------------------------------------------------------------------------------

    async def create_identity_pool(self, pool: IdentityPoolRecord) -> None:
        await self._insert(_INSERT_ID_POOL, _id_pool_params(pool), _ID_POOL_UNIQUE, "identity pool")

    async def get_identity_pool(self, pool_id: str) -> IdentityPoolRecord | None:
        return await self._fetch_one(f"SELECT {ID_POOL_COLUMNS} FROM identity_pools WHERE id = ?", (pool_id,), _id_pool)

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

    async def list_identity_pools(self, after: str | None, limit: int) -> Page[IdentityPoolRecord]:
        return await _list_page(self, _LIST_ID_POOLS, (), after, limit, _id_pool, lambda p: p.id)

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
                await self._insert(_INSERT_IDENTITY, _identity_params(new), _IDENTITY_UNIQUE, "pool", conn)
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
        return await _list_page(self, query, (pool_id,), after, limit, _identity, lambda i: i.id)

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
            await self._insert(
                f"INSERT INTO issuer_signing_keys ({ISSUER_KEY_COLUMNS}) VALUES ({_placeholders(ISSUER_KEY_COLUMNS)})",
                params,
                {"issuer_signing_keys.key_set, issuer_signing_keys.kid": "id"},
                "key set",
                conn,
            )

        await self._write(work)

    async def list_issuer_signing_keys(self, key_set: str) -> list[SigningKeyRecord]:
        rows = await self._fetch(
            f"SELECT {ISSUER_KEY_COLUMNS} FROM issuer_signing_keys WHERE key_set = ? "
            "ORDER BY created_at DESC, kid DESC",
            (key_set,),
        )
        return [_key(row) for row in rows]

    async def delete_issuer_signing_key(self, key_set: str, kid: str) -> None:
        await self._execute("DELETE FROM issuer_signing_keys WHERE key_set = ? AND kid = ?", (key_set, kid))

    # --- user import jobs -------------------------------------------------------------------------------

    async def create_user_import_job(self, job: UserImportJobRecord) -> None:
        await self._insert(
            f"INSERT INTO user_import_jobs ({IMPORT_JOB_COLUMNS}) VALUES ({_placeholders(IMPORT_JOB_COLUMNS)})",
            _import_job_params(job),
            {
                "user_import_jobs.pool_id, user_import_jobs.job_id": "id",
                "user_import_jobs.pool_id, user_import_jobs.list_key": "id",
            },
            "pool",
        )

    async def get_user_import_job(self, pool_id: str, job_id: str) -> UserImportJobRecord | None:
        return await self._fetch_one(
            f"SELECT {IMPORT_JOB_COLUMNS} FROM user_import_jobs WHERE pool_id = ? AND job_id = ?",
            (pool_id, job_id),
            _import_job,
        )

    async def list_user_import_jobs(self, pool_id: str, after: str | None, limit: int) -> Page[UserImportJobRecord]:
        return await _list_page(self, _LIST_IMPORT_JOBS, (pool_id,), after, limit, _import_job, lambda j: j.list_key)

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

    async def add_user_import_chunk(self, pool_id: str, job_id: str, upload_id: str, seq: int, data: bytes) -> None:
        await self._insert(
            "INSERT INTO user_import_chunks (pool_id, job_id, upload_id, seq, data) VALUES (?, ?, ?, ?, ?)",
            (pool_id, job_id, upload_id, seq, data),
            {},
            "job",
        )

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

    async def read_user_import_chunk(self, pool_id: str, job_id: str, upload_id: str, seq: int) -> bytes | None:
        rows = await self._fetch(
            "SELECT data FROM user_import_chunks WHERE pool_id = ? AND job_id = ? AND upload_id = ? AND seq = ?",
            (pool_id, job_id, upload_id, seq),
        )
        return bytes(rows[0][0]) if rows else None

    # --- client ID metadata documents (CIMD) -----------------------------------------------------------------

    async def create_cimd_policy(self, record: CimdPolicyRecord) -> None:
        await self._insert(_INSERT_CIMD_POLICY, _cimd_policy_params(record), _CIMD_POLICY_UNIQUE, "pool")

    async def get_cimd_policy(self, pool_id: str, policy_id: str) -> CimdPolicyRecord | None:
        return await self._fetch_one(
            f"SELECT {CIMD_POLICY_COLUMNS} FROM cimd_policies WHERE pool_id = ? AND id = ?",
            (pool_id, policy_id),
            _cimd_policy,
        )

    async def list_cimd_policies(self, pool_id: str, after: str | None, limit: int) -> Page[CimdPolicyRecord]:
        return await _list_page(
            self, _LIST_CIMD_POLICIES, (pool_id,), after, limit, _cimd_policy, lambda p: p.policy_id
        )

    async def cimd_policies_for_matching(self, pool_id: str | None) -> list[CimdPolicyRecord]:
        if pool_id is None:
            rows = await self._fetch(f"SELECT {CIMD_POLICY_COLUMNS} FROM cimd_policies ORDER BY pool_id, id", ())
        else:
            rows = await self._fetch(
                f"SELECT {CIMD_POLICY_COLUMNS} FROM cimd_policies WHERE pool_id = ? ORDER BY id", (pool_id,)
            )
        return [_cimd_policy(r) for r in rows]

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

    async def put_cimd_document(self, record: CimdDocumentRecord) -> None:
        r = record
        await self._insert(
            f"INSERT INTO cimd_documents ({CIMD_DOCUMENT_COLUMNS}) VALUES ({_placeholders(CIMD_DOCUMENT_COLUMNS)}) "
            "ON CONFLICT (policy_id, url) DO UPDATE SET document = excluded.document, "
            "cached_at = excluded.cached_at, expires_at = excluded.expires_at",
            (r.policy_id, r.url, _dumps(r.document), r.cached_at, r.expires_at),
            {},
            "policy",
        )

    async def get_cimd_document(self, policy_id: str, url: str) -> CimdDocumentRecord | None:
        return await self._fetch_one(
            f"SELECT {CIMD_DOCUMENT_COLUMNS} FROM cimd_documents WHERE policy_id = ? AND url = ?",
            (policy_id, url),
            _cimd_document,
        )

    async def list_cimd_documents(self, policy_id: str, after: str | None, limit: int) -> Page[CimdDocumentRecord]:
        return await _list_page(self, _LIST_CIMD_DOCUMENTS, (policy_id,), after, limit, _cimd_document, lambda d: d.url)

    async def delete_cimd_documents(self, policy_id: str, url: str | None = None) -> int:
        # The rows' count from the command status, rather than RETURNING them all.
        if url is None:
            return await self._execute("DELETE FROM cimd_documents WHERE policy_id = ?", (policy_id,))
        return await self._execute("DELETE FROM cimd_documents WHERE policy_id = ? AND url = ?", (policy_id, url))
