"""The PostgreSQL store: one-time codes, challenge sessions, token families and refresh tokens, signing keys, devices
and threat protection.

Each method keeps the promise :class:`gateway.storage.base.Store` states, as the SQLite store's does (its SQL and
row converters are reused where the dialects agree; see :mod:`gateway.storage.postgres._base`)."""

from __future__ import annotations

import asyncpg

from gateway.storage.base import (
    UNSTARTED_IMPORT_JOB_SECONDS,
    AlreadyExists,
    AuthSessionRecord,
    DeviceRecord,
    GroupRecord,
    NotFound,
    Page,
    RefreshTokenRecord,
    SigningKeyRecord,
    TokenFamilyRecord,
    UserRecord,
)
from gateway.storage.postgres._base import Connection, PostgresBase, Row
from gateway.storage.sqlite import (
    _CLIENT_EXISTS,
    _DEVICE_UNIQUE,
    _FAMILY_UNIQUE,
    _FAMILY_WIDTH,
    _FAMILY_WITH_USER,
    _FORGET_DEVICE,
    _GET_DEVICE,
    _INSERT_DEVICE,
    _INSERT_FAMILY,
    _INSERT_REFRESH,
    _INSERT_SESSION,
    _IS_FORGOTTEN_DEVICE,
    _KEY_UNIQUE,
    _LIST_DEVICES,
    _LIVE_SESSIONS,
    _MARK_REPLACED,
    _REFRESH_UNIQUE,
    _REFRESH_WIDTH,
    _REFRESH_WITH_USER,
    _SESSION_ORDER,
    _SESSION_UNIQUE,
    _TAKE_SESSION,
    _TOUCH_FAMILY,
    KEY_COLUMNS,
    _check_limit,
    _device,
    _device_params,
    _dumps,
    _family,
    _family_params,
    _group,
    _loads,
    _page,
    _placeholders,
    _refresh,
    _refresh_params,
    _session,
    _user,
)

# PostgreSQL (before 16) wants a name for a subquery in FROM, which SQLite's statement leaves unnamed.
_GROUPS_SUBQUERY = " ORDER BY m.group_name)) "
assert _GROUPS_SUBQUERY in _REFRESH_WITH_USER
_PG_REFRESH_WITH_USER = _REFRESH_WITH_USER.replace(_GROUPS_SUBQUERY, " ORDER BY m.group_name) AS member_groups) ")


class SignInMixin(PostgresBase):
    async def _check_client(self, conn: Connection, pool_id: str, app_client_id: str | None) -> None:
        """NotFound("client") unless the app client a new token family is issued under is still in its pool, read
        in the family's own transaction (SERIALIZABLE: a client's deletion that commits meanwhile makes one of the
        two fail and run again)."""
        if app_client_id is not None and not await self._fetch(_CLIENT_EXISTS, (app_client_id, pool_id), conn):
            raise NotFound("client")

    # --- one-time codes ---------------------------------------------------------------------------------

    async def consume_code(
        self, pool_id: str, username_key: str, purpose: str, code_hash: str, *, max_attempts: int | None = None
    ) -> bool:
        # The hash is part of the DELETE's WHERE: of concurrent callers, only the one that deletes the row wins
        # (the others wait for its row lock, then find it gone). So is the attempt count: wrong guesses counted
        # after the caller read the code still stop it (the WHERE is checked again on the row's newest version).
        if max_attempts is None:
            rows = await self._fetch(
                "DELETE FROM codes WHERE pool_id = ? AND username_key = ? AND purpose = ? AND code_hash = ? "
                "RETURNING 1",
                (pool_id, username_key, purpose, code_hash),
            )
        else:
            rows = await self._fetch(
                "DELETE FROM codes WHERE pool_id = ? AND username_key = ? AND purpose = ? AND code_hash = ? "
                "AND attempts < ? RETURNING 1",
                (pool_id, username_key, purpose, code_hash, max_attempts),
            )
        return bool(rows)

    async def delete_code(self, pool_id: str, username_key: str, purpose: str) -> None:
        await self._execute(
            "DELETE FROM codes WHERE pool_id = ? AND username_key = ? AND purpose = ?",
            (pool_id, username_key, purpose),
        )

    async def take_code_send(self, pool_id: str, key: str, now: float, expires_at: float, limit: int) -> bool:
        async def take(conn: Connection) -> int:
            await self._execute(
                "DELETE FROM code_sends WHERE pool_id = ? AND username_key = ? AND expires_at <= ?",
                (pool_id, key, now),
                conn,
            )
            # The count and the insert in one SERIALIZABLE transaction: of racers that counted the same rows,
            # one commits and the others run again and count its row.
            return await self._execute(
                "INSERT INTO code_sends (pool_id, username_key, sent_at, expires_at) SELECT ?, ?, ?, ? "
                "WHERE (SELECT COUNT(*) FROM code_sends WHERE pool_id = ? AND username_key = ?) < ?",
                (pool_id, key, now, expires_at, pool_id, key, limit),
                conn,
            )

        try:
            taken = await self._write(take)
        except asyncpg.ForeignKeyViolationError as exc:  # the pool's foreign key: deleted meanwhile
            raise NotFound("pool") from exc
        return taken == 1

    async def return_code_send(self, pool_id: str, key: str, sent_at: float) -> None:
        """One row of those counted at that instant (racers counted at the same one are alike). The table has no
        key: a row is named by its ctid (SQLite: rowid); its rows are never updated, so the ctid holds."""
        await self._execute(
            "DELETE FROM code_sends WHERE ctid = (SELECT ctid FROM code_sends WHERE pool_id = ? AND "
            "username_key = ? AND sent_at = ? LIMIT 1)",
            (pool_id, key, sent_at),
        )

    # --- challenge sessions -----------------------------------------------------------------------------

    async def put_auth_session(self, session: AuthSessionRecord) -> None:
        params = (
            session.session_hash,
            session.pool_id,
            session.client_id,
            session.username_key,
            _dumps(session.state),
            session.expires_at,
        )
        await self._insert_one(_INSERT_SESSION, params, _SESSION_UNIQUE, "pool")

    async def take_auth_session(self, session_hash: str) -> AuthSessionRecord | None:
        # DELETE ... RETURNING: reading and removing are one statement, so a session is taken once, whichever
        # connection or server runs it.
        return await self._fetch_one(_TAKE_SESSION, (session_hash,), _session)

    # --- tokens -----------------------------------------------------------------------------------------

    async def create_token_family(
        self, family: TokenFamilyRecord, refresh: RefreshTokenRecord | None, *, app_client_id: str | None = None
    ) -> None:
        family_params = _family_params(family, app_client_id)
        refresh_params = _refresh_params(refresh) if refresh is not None else None

        async def insert_both(conn: Connection) -> None:
            await self._check_client(conn, family.pool_id, app_client_id)
            await self._insert_one(_INSERT_FAMILY, family_params, _FAMILY_UNIQUE, "pool", conn)
            if refresh_params is not None:
                await self._insert_one(_INSERT_REFRESH, refresh_params, _REFRESH_UNIQUE, "token family", conn)

        await self._write(insert_both)

    async def bind_token_family_device(self, origin_jti: str, device_key: str) -> None:
        await self._execute("UPDATE token_families SET device_key = ? WHERE origin_jti = ?", (device_key, origin_jti))

    async def get_refresh_token_with_user(
        self, token_hash: str
    ) -> tuple[RefreshTokenRecord, TokenFamilyRecord, UserRecord | None, list[GroupRecord]] | None:
        """As the SQLite store's; json_agg of no groups is NULL (SQLite's json_group_array: ``[]``)."""
        rows = await self._fetch(_PG_REFRESH_WITH_USER, (token_hash,))
        if not rows:
            return None
        row: Row = tuple(rows[0])
        token = _refresh(row[:_REFRESH_WIDTH])
        family = _family(row[_REFRESH_WIDTH : _REFRESH_WIDTH + _FAMILY_WIDTH])
        family.device_confirmed = bool(row[_REFRESH_WIDTH + _FAMILY_WIDTH])
        family.device_forgotten = bool(row[_REFRESH_WIDTH + _FAMILY_WIDTH + 1])
        user_row = row[_REFRESH_WIDTH + _FAMILY_WIDTH + 2 : -1]
        user = _user(user_row) if user_row[0] is not None else None
        groups = [_group(g) for g in _loads(row[-1])] if user is not None and row[-1] is not None else []
        return token, family, user, groups

    async def get_token_family_with_user(self, origin_jti: str) -> tuple[TokenFamilyRecord, UserRecord | None] | None:
        rows = await self._fetch(_FAMILY_WITH_USER, (origin_jti,))
        if not rows:
            return None
        row: Row = tuple(rows[0])
        family = _family(row[:_FAMILY_WIDTH])
        user = _user(row[_FAMILY_WIDTH:]) if row[_FAMILY_WIDTH] is not None else None
        return family, user

    async def revoke_user_token_families(self, pool_id: str, username_key: str) -> int:
        """How many families this call revoked (those revoked before are not counted)."""
        return await self._execute(
            "UPDATE token_families SET revoked = 1 WHERE pool_id = ? AND username_key = ? AND revoked = 0",
            (pool_id, username_key),
        )

    async def touch_token_family(
        self, origin_jti: str, last_active_at: float, device_type: str | None, last_ip: str | None
    ) -> None:
        await self._execute(_TOUCH_FAMILY, (last_active_at, device_type, last_ip, origin_jti))

    async def evict_token_sessions(
        self, pool_id: str, username_key: str, keep: int, now: float, spare: str | None = None
    ) -> list[str]:
        """Every session after the first ``keep``: SQLite's ``IS NOT ?`` and ``LIMIT -1`` (no limit) are
        PostgreSQL's ``IS DISTINCT FROM`` and an OFFSET alone. In one SERIALIZABLE transaction, so that two
        sign-ins evicting at once each see the other's work, as SQLite's single writer has them."""
        sql = (
            "UPDATE token_families SET revoked = 1 WHERE origin_jti IN "
            f"(SELECT f.origin_jti {_LIVE_SESSIONS} AND f.origin_jti IS DISTINCT FROM ? {_SESSION_ORDER} OFFSET ?) "
            "RETURNING origin_jti"
        )
        params = (pool_id, username_key, now, now, spare, max(0, keep))

        async def evict(conn: Connection) -> list[str]:
            return [str(row[0]) for row in await self._fetch(sql, params, conn)]

        return await self._write(evict)

    async def rotate_refresh_token(self, old_hash: str, new: RefreshTokenRecord, replaced_at: float) -> bool:
        async def rotate(conn: Connection) -> bool:
            # "replaced_by IS NULL" in the UPDATE is the whole race: of concurrent rotations only the first finds
            # the row still unreplaced (the others wait for its row lock, then run again and change nothing).
            if not await self._fetch(_MARK_REPLACED, (new.token_hash, replaced_at, old_hash), conn):
                return False
            await self._insert_one(_INSERT_REFRESH, _refresh_params(new), _REFRESH_UNIQUE, "token family", conn)
            return True

        return await self._write(rotate)

    async def purge_expired(self, now: float) -> int:
        """Deletes rows with ``expires_at <= now`` (a token is expired at its expiry instant, as JWT ``exp``),
        and the refresh tokens of expired families."""

        async def purge(conn: Connection) -> int:
            purged = await self._execute("DELETE FROM codes WHERE expires_at <= ?", (now,), conn)
            purged += await self._execute("DELETE FROM auth_sessions WHERE expires_at <= ?", (now,), conn)
            # Deleted explicitly rather than by cascade so that they are counted (a command's row count omits
            # cascades).
            purged += await self._execute(
                "DELETE FROM refresh_tokens WHERE expires_at <= ? "
                "OR origin_jti IN (SELECT origin_jti FROM token_families WHERE expires_at <= ?)",
                (now, now),
                conn,
            )
            for table in (
                "token_families",
                "federation_requests",
                "seen_assertions",
                "oauth_records",
                "used_codes",
                "iam_saml_assertions_used",
                "code_sends",
                # An expired metadata document is fetched again on next use: nothing reads it.
                "cimd_documents",
            ):
                purged += await self._execute(f"DELETE FROM {table} WHERE expires_at <= ?", (now,), conn)
            purged += await self._execute(
                "DELETE FROM user_import_chunks WHERE EXISTS (SELECT 1 FROM user_import_jobs AS j "
                "WHERE j.pool_id = user_import_chunks.pool_id AND j.job_id = user_import_chunks.job_id "
                "AND j.status IN ('Expired', 'Succeeded', 'Failed', 'Stopped'))",
                (),
                conn,
            )
            return purged

        return await self._write(purge)

    async def expire_unstarted_import_jobs(self, now: float) -> int:
        return await self._execute(
            "UPDATE user_import_jobs SET status = 'Expired' WHERE status = 'Created' AND created_at + ? < ?",
            (UNSTARTED_IMPORT_JOB_SECONDS, now),
        )

    # --- signing keys -----------------------------------------------------------------------------------

    async def add_signing_key(self, key: SigningKeyRecord) -> None:
        """An active key retires the pool's active key at ``key.created_at`` (the store keeps no clock)."""
        params = (key.pool_id, key.kid, key.private_jwk, key.created_at, int(key.active), key.retired_at, key.token_use)

        async def add(conn: Connection) -> None:
            if key.active:
                # Keys retired earlier keep their retired_at: their publication window must not grow.
                await self._execute(
                    "UPDATE signing_keys SET active = 0, retired_at = ? "
                    "WHERE pool_id = ? AND token_use = ? AND active = 1",
                    (key.created_at, key.pool_id, key.token_use),
                    conn,
                )
            await self._insert_one(
                f"INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ({_placeholders(KEY_COLUMNS)})",
                params,
                _KEY_UNIQUE,
                "pool",
                conn,
            )

        await self._write(add)

    async def delete_signing_key(self, pool_id: str, kid: str) -> None:
        await self._execute("DELETE FROM signing_keys WHERE pool_id = ? AND kid = ?", (pool_id, kid))

    # --- devices ------------------------------------------------------------------------------------------

    async def create_device(self, device: DeviceRecord) -> None:
        async def create(conn: Connection) -> None:
            if await self._fetch(_IS_FORGOTTEN_DEVICE, (device.pool_id, device.device_key), conn):
                raise AlreadyExists("forgotten")
            await self._insert_one(_INSERT_DEVICE, _device_params(device), _DEVICE_UNIQUE, "user", conn)

        await self._write(create)

    async def get_device(self, pool_id: str, device_key: str) -> DeviceRecord | None:
        return await self._fetch_one(_GET_DEVICE, (pool_id, device_key), _device)

    async def list_devices(self, pool_id: str, username_key: str, after: str | None, limit: int) -> Page[DeviceRecord]:
        _check_limit(limit)
        if after is None:
            rows = await self._fetch(_LIST_DEVICES.first, (pool_id, username_key, limit + 1))
        else:
            rows = await self._fetch(_LIST_DEVICES.after, (pool_id, username_key, after, limit + 1))
        return _page(rows, limit, _device, lambda d: d.device_key)

    async def forget_device(self, pool_id: str, device_key: str, forgotten_at: float) -> bool:
        async def forget(conn: Connection) -> bool:
            rows = await self._fetch(
                "DELETE FROM devices WHERE pool_id = ? AND device_key = ? RETURNING username_key",
                (pool_id, device_key),
                conn,
            )
            if not rows:
                return False
            await self._execute(_FORGET_DEVICE, (pool_id, device_key, rows[0][0], forgotten_at), conn)
            return True

        return await self._write(forget)
