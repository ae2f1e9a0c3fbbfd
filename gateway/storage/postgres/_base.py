"""The PostgreSQL store's plumbing: the connection pool, the schema's migrations, statements and transactions.

Statements are written as the SQLite store writes them (``?`` placeholders, SQLite's JSON aggregates) and turned
into PostgreSQL's by :func:`pg_sql`, once each: the two stores share one schema and one set of row converters
(the SQLite store's, imported from :mod:`gateway.storage.sqlite`), so a statement reads the same in both.

Isolation: SQLite runs one write transaction at a time, so a read-then-write inside one is atomic there. Here a
transaction that reads before it writes runs at SERIALIZABLE (:meth:`PostgresBase._write`) and is run again when
PostgreSQL reports a serialization failure or a deadlock, which gives the same guarantee between any number of
servers. Single statements run on their own (autocommit), atomic by themselves.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from typing import Any, Self, TypeAlias, TypeVar

import asyncpg
import structlog

# A write of text PostgreSQL cannot store is refused as every wire refuses an invalid parameter.
from gateway.errors import InvalidParameterException
from gateway.services.change_stamp import SLOT_COUNT
from gateway.storage.base import MAX_PREFIX_BYTES, AlreadyExists, NotFound, VersionConflict
from gateway.storage.sqlite import SharedQueries

log = structlog.get_logger("gateway.storage")

T = TypeVar("T")
# asyncpg has no type information: its records and connections are Any to mypy.
Row: TypeAlias = Any
Params = Sequence[Any]
Connection: TypeAlias = Any

# How often a SERIALIZABLE transaction is tried before its failure is the caller's.
_TRIES = 20
# Held while migrations run, so that servers started together apply them once (any constant of our own).
_MIGRATION_LOCK = 0x6761746568
_CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
)
# The NOTIFY channel of the change stamps (gateway/services/change_stamp.py).
CHANGES_CHANNEL = "gatehouse_changes"
_PLACEHOLDER = re.compile(r"\?")
# SQLite's JSON functions and their PostgreSQL counterparts (both answer JSON text to the driver).
_FUNCTIONS = (
    (re.compile(r"\bjson_group_array\("), "json_agg("),
    (re.compile(r"\bjson_group_object\("), "json_object_agg("),
    (re.compile(r"\bjson_array\("), "json_build_array("),
)


@functools.lru_cache(maxsize=2048)
def pg_sql(sql: str) -> str:
    """``sql`` in PostgreSQL's dialect: ``?`` placeholders numbered ``$1``, ``$2``... in order, SQLite's JSON
    aggregates renamed. The statements this store runs hold no ``?`` inside a string literal."""
    counter = iter(range(1, 10_000))
    text = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)
    for pattern, replacement in _FUNCTIONS:
        text = pattern.sub(replacement, text)
    return text


def translate(exc: asyncpg.IntegrityConstraintViolationError, unique: Mapping[str, str], parent: str) -> Exception:
    """The store error for a constraint failure, or ``exc`` itself when it is not one we expect. ``unique`` maps
    the violated columns, written as SQLite names them ("table.column, table.column"), to the AlreadyExists key;
    a foreign key that finds no parent is NotFound(``parent``)."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        # detail: 'Key (pool_id, name)=(...) already exists.'
        match = re.match(r"Key \(([^)]*)\)=", exc.detail or "")
        if match is not None:
            columns = ", ".join(f"{exc.table_name}.{c.strip()}" for c in match.group(1).split(","))
            key = unique.get(columns)
            if key is not None:
                return AlreadyExists(key)
    elif isinstance(exc, asyncpg.ForeignKeyViolationError):
        return NotFound(parent)
    unexpected: Exception = exc
    return unexpected


# PostgreSQL's text holds no NUL character (SQLite's does): a parameter with one fails the statement.
_NOT_TEXT = (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError)
# program_limit_exceeded itself (its subclasses are statements too complex, which no input makes): an index entry
# above the B-tree's 2,704 bytes. The indexes index_text() serves keep long values short (below); a
# value that a caller may make longer than that in another index is refused as too long to store.
_TOO_LONG_STATE = "54000"


def _no_such_text(sql: str, exc: Exception, in_transaction: bool = False) -> list[Row]:
    """A statement given text PostgreSQL cannot hold: a query by itself finds nothing (no stored key holds such a
    character); a write is refused as the invalid parameter it is, as is a query inside a write's transaction
    (which the failed statement has aborted)."""
    if not in_transaction and sql.lstrip().upper().startswith("SELECT"):
        return []
    raise InvalidParameterException("Text with a NUL character cannot be stored.") from exc


def _refusal(exc: Exception) -> InvalidParameterException | None:
    """The invalid parameter a write's failure is (text PostgreSQL cannot hold, or cannot index), else None."""
    if isinstance(exc, _NOT_TEXT):
        return InvalidParameterException("Text with a NUL character cannot be stored.")
    if isinstance(exc, asyncpg.ProgramLimitExceededError) and exc.sqlstate == _TOO_LONG_STATE:
        return InvalidParameterException("A value is too long to be stored.")
    return None


# PostgreSQL's B-tree refuses an entry above 2,704 bytes (a third of a page, after compression, which text of many
# different characters escapes); SQLite's has no such limit. An alias or a searchable attribute holds up to 2,048
# characters (Cognito's MaxLength), 8 kB of UTF-8. So the alias and search indexes (user_aliases.value,
# user_search.value and .folded; migration 0002 rewrote the rows written before) and the SAML replay markers
# (seen_assertions.key, which holds an IdP's assertion ID) hold a longer value as index_text() has it: its first
# INDEX_BYTES bytes, U+FFFF and the SHA-256 of the whole. Equal values have equal keys and different ones
# different keys (no value of INDEX_BYTES or fewer holds U+FFFF and a digest after them), and a prefix of at most
# INDEX_BYTES (every prefix list_users takes: MAX_PREFIX_BYTES) starts the key as it starts the value. Only values
# sharing their first INDEX_BYTES bytes are ordered by digest among themselves.
INDEX_BYTES = MAX_PREFIX_BYTES
_LONG_VALUE = "\uffff"


def index_text(value: str) -> str:
    """``value`` as the indexes above hold it (itself unless longer than INDEX_BYTES of UTF-8)."""
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= INDEX_BYTES:
        return value
    head = encoded[:INDEX_BYTES].decode("utf-8", "ignore")  # a character the cut splits is left out whole
    return head + _LONG_VALUE + hashlib.sha256(encoded).hexdigest()


def _status_count(status: str) -> int:
    """The row count of a command status ("UPDATE 3", "DELETE 0", "INSERT 0 1")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def _reset(conn: Connection) -> None:
    """What a connection needs before it goes back to the pool. asyncpg's default sends a reset query with every
    release (a round trip that doubled a one-read request's), undoing session state this store never sets (it runs
    no SET, LISTENs on a connection of its own and takes advisory locks per transaction only). Only a transaction
    left open, by a statement cancelled inside one, is undone."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def load_migrations() -> list[tuple[int, str]]:
    """The schema's migrations, (version, SQL), in order."""
    found = []
    for entry in resources.files("gateway.storage.postgres").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: Connection) -> None:
    """Apply the migrations the database lacks, in one transaction under an advisory lock (servers started
    together wait for the first, then find nothing to do). PostgreSQL's DDL is transactional: a failing
    migration leaves no trace."""
    migrations = load_migrations()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(_CREATE_MIGRATIONS_TABLE)
        applied = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        unknown = applied - {version for version, _ in migrations}
        if unknown:
            raise RuntimeError(f"database has schema versions this Gatehouse does not know: {sorted(unknown)}")
        for version, sql in migrations:
            if version in applied:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", version, time.time()
            )


class PostgresBase(SharedQueries):
    """What every part of the PostgreSQL store builds on. Create the store with :meth:`open`."""

    def __init__(self, pool: Any, dsn: str = "") -> None:
        self._pool = pool
        self._dsn = dsn
        self._closed = False
        self._listener: Connection | None = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._announcements: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, dsn: str, *, min_size: int = 2, max_size: int = 10) -> Self:
        """Connect (a pool of ``min_size`` to ``max_size`` connections) and bring the schema up to date."""
        pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, reset=_reset)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, dsn)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._reconnecting is not None:
                self._reconnecting.cancel()
            if self._announcements:
                await asyncio.gather(*self._announcements, return_exceptions=True)
            if self._listener is not None:
                await self._listener.close()
            await self._pool.close()

    # --- changes other servers must know of at once (gateway/services/change_stamp.py) -------------------

    async def listen_for_changes(self, on_change: Callable[[int], None]) -> None:
        """Call ``on_change(slot)`` for each change any server announces (:meth:`announce_change`), on a
        connection of its own that LISTENs (PostgreSQL's NOTIFY is delivered to every listening session). When
        that connection is lost (the database restarted), it is made again, and every slot counts as changed:
        what was announced meanwhile was not heard."""

        def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload.isdigit():
                on_change(int(payload))

        async def connect() -> None:
            self._listener = await asyncpg.connect(self._dsn)
            await self._listener.add_listener(CHANGES_CHANNEL, heard)
            self._listener.add_termination_listener(lost)

        async def reconnect() -> None:
            delay = 0.5
            while not self._closed:
                try:
                    await connect()
                except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                    log.warning("store.change_listener_lost", error=str(exc), retry_seconds=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
                for slot in range(SLOT_COUNT):
                    on_change(slot)
                log.info("store.change_listener_restored")
                return

        def lost(_conn: Any) -> None:
            if not self._closed:
                self._reconnecting = asyncio.get_running_loop().create_task(reconnect())

        await connect()

    def announce_change(self, slot: int) -> None:
        """NOTIFY every listening server of a change of ``slot`` (after it was committed). Called where the
        change is stamped, which does not wait: the notification is sent by a task of its own."""
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(self._notify(slot))
        self._announcements.add(task)
        task.add_done_callback(self._announcements.discard)

    async def _notify(self, slot: int) -> None:
        try:
            await self._pool.execute("SELECT pg_notify($1, $2)", CHANGES_CHANNEL, str(slot))
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            # The other servers' caches then age out as they would without the notice (a couple of seconds).
            log.warning("store.change_notice_failed", error=str(exc))

    async def health_problem(self, min_free_bytes: int = 0) -> str | None:
        """None when the database answers; else what is wrong. (Free space is the database server's own
        concern: ``min_free_bytes`` is for stores on this machine's disk.)"""
        if self._closed:
            return "the store is closed"
        try:
            await self._pool.fetchval("SELECT 1 FROM schema_migrations LIMIT 1")
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            return f"the database does not answer: {exc}"
        return None

    # --- statements ---------------------------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Params, conn: Connection | None = None) -> list[Row]:
        """One statement's rows: on ``conn`` (inside its transaction) or on a pooled connection by itself."""
        try:
            return list(await (conn or self._pool).fetch(pg_sql(sql), *params))
        except _NOT_TEXT as exc:
            return _no_such_text(sql, exc, conn is not None)
        except asyncpg.ProgramLimitExceededError as exc:
            raise _refusal(exc) or exc from exc

    async def _versioned_update(self, update: str, params: Params, exists: str, key: Params, name: str) -> None:
        """A compare-and-set UPDATE (its WHERE clause checks the record's version); when it changed no row,
        ``exists`` (a SELECT by ``key``) tells which error to raise: VersionConflict, or NotFound. (Concurrent
        updates of one version: each UPDATE waits for the row, then checks the version the winner wrote.)"""
        if await self._fetch(update, params):
            return
        found = await self._fetch(exists, key)
        raise VersionConflict(name) if found else NotFound(name)

    async def _fetch_one(
        self, sql: str, params: Params, convert: Callable[[Row], T], conn: Connection | None = None
    ) -> T | None:
        rows = await self._fetch(sql, params, conn)
        return convert(rows[0]) if rows else None

    async def _execute(self, sql: str, params: Params, conn: Connection | None = None) -> int:
        """Run one statement; the number of rows it changed."""
        try:
            return _status_count(await (conn or self._pool).execute(pg_sql(sql), *params))
        except _NOT_TEXT as exc:
            return len(_no_such_text(sql, exc, conn is not None))
        except asyncpg.ProgramLimitExceededError as exc:
            raise _refusal(exc) or exc from exc

    async def _insert_one(
        self, sql: str, params: Params, unique: Mapping[str, str], parent: str, conn: Connection | None = None
    ) -> None:
        """An INSERT whose constraint failures are the store's errors (:func:`translate`)."""
        try:
            await (conn or self._pool).execute(pg_sql(sql), *params)
        except _NOT_TEXT as exc:
            _no_such_text(sql, exc)
        except asyncpg.ProgramLimitExceededError as exc:
            raise _refusal(exc) or exc from exc
        except asyncpg.IntegrityConstraintViolationError as exc:
            error = translate(exc, unique, parent)
            if error is exc:
                raise
            raise error from exc

    async def _write(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """``work`` in one SERIALIZABLE transaction, run again from the start when PostgreSQL cannot serialize it
        with others (``work`` must do nothing but its statements, which a failed try leaves undone)."""
        for attempt in range(_TRIES):
            try:
                async with self._pool.acquire() as conn, conn.transaction(isolation="serializable"):
                    return await work(conn)
            except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
                if attempt == _TRIES - 1:
                    raise
                # A short, growing, jittered pause: the transaction it met is most likely about to commit.
                await asyncio.sleep(0.001 * (attempt + 1) * (1 + (time.monotonic_ns() % 7) / 7))
            except (*_NOT_TEXT, asyncpg.ProgramLimitExceededError) as exc:
                # A statement run on ``conn`` itself (executemany), not through the helpers above.
                raise _refusal(exc) or exc from exc
        raise AssertionError("unreachable")
