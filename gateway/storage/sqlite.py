"""The SQLite backend of the Store protocol (``gateway/storage/base.py``), on aiosqlite.

SQLite is the single-machine default, and ``gatehouse serve --workers N`` runs several processes on one
database file, so correctness never rests on process memory:

* WAL journal (readers never block the writer), ``synchronous=NORMAL``, foreign keys on, and a 10 s busy
  timeout so that writers from other processes queue instead of failing.
* Every write of more than one statement runs in ``BEGIN IMMEDIATE ... COMMIT``: the write lock is taken
  up front, because a deferred transaction that reads first and then upgrades can fail with SQLITE_BUSY
  without waiting. A single statement is atomic by itself and runs in autocommit mode.
* Invariants are enforced by SQL, never by reading first and writing after: unique indexes (usernames,
  subs, aliases, one active signing key), ``UPDATE ... WHERE version = ?`` (optimistic versions), and
  guarded UPDATE/DELETE statements whose affected rows say who won (refresh-token rotation, one-time codes,
  challenge sessions). Affected rows are read with ``RETURNING`` where only a handful of rows can match:
  that is the statement and its result in one trip to aiosqlite's thread instead of two.

Three connections per store. The main one is aiosqlite's: it runs every call on one thread, in order, and a
transaction there is several such calls, so an asyncio.Lock (the store lock) keeps other coroutines'
statements out of an open transaction. Indexed reads run on a read-only connection on the event loop, and the
small writes every sign-in makes on a writing connection on the event loop (``_fetch`` and
``_write_transaction``): both finish without yielding, see only committed rows, and fall back to the main
connection when SQLite says it is busy.

The schema is ``gateway/migrations/NNNN_<name>.sql``, applied in order by :meth:`SqliteStore.open` and
recorded in ``schema_migrations``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from importlib import resources
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import aiosqlite
import orjson

from gateway.services.change_stamp import ChangeStamps, user_slot
from gateway.storage.base import (
    MAX_PREFIX_BYTES,
    UNSTARTED_IMPORT_JOB_SECONDS,
    AlreadyExists,
    AuthEventRecord,
    AuthSessionRecord,
    CimdDocumentRecord,
    CimdPolicyRecord,
    ClientRecord,
    CodeRecord,
    DeviceRecord,
    DomainRecord,
    FederationRequestRecord,
    GroupRecord,
    IdentityLogin,
    IdentityPoolRecord,
    IdentityProviderRecord,
    IdentityRecord,
    ManagedLoginBrandingRecord,
    NotFound,
    OAuthRecord,
    OidcProviderRecord,
    Page,
    PoolRecord,
    ProviderLinkRecord,
    RefreshTokenRecord,
    ResourceServerRecord,
    RiskConfigurationRecord,
    RoleRecord,
    SamlProviderRecord,
    SigningKeyRecord,
    Store,
    TermsRecord,
    TokenFamilyRecord,
    UICustomizationRecord,
    UsedCodeRecord,
    UserImportJobRecord,
    UserRecord,
    UserSearch,
    VersionConflict,
    WebAuthnCredentialRecord,
    search_values,
    user_search_values,
)

__all__ = ["BUSY_TIMEOUT_MS", "Migration", "SqliteStore", "load_migrations", "split_statements"]

BUSY_TIMEOUT_MS = 10_000

T = TypeVar("T")
Params = Sequence[Any]
# Rows are plain tuples at run time (no row_factory); aiosqlite's stubs call them sqlite3.Row.
Row = sqlite3.Row


# --- migrations -----------------------------------------------------------------------------------------

_MIGRATION_FILE = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")

_CREATE_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at DOUBLE PRECISION NOT NULL
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The package's ``gateway/migrations/NNNN_<name>.sql`` files, in version order."""
    folder = resources.files("gateway").joinpath("migrations")
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match is not None:
            found.append(Migration(int(match[1]), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    # Numbers only ascend and never repeat; gaps are allowed (features are numbered as they are planned).
    if not versions or versions[0] != 1 or len(set(versions)) != len(versions):
        raise RuntimeError(f"migrations must be numbered from 0001, each number once; found {versions}")
    return found


def split_statements(script: str) -> list[str]:
    """Split an SQL script into statements.

    ``executescript`` cannot be used: Python's sqlite3 commits any open transaction before running a script,
    and a migration must run inside the transaction that checked it was not applied yet.
    ``sqlite3.complete_statement`` knows about strings, comments and trigger bodies, so a ``;`` inside
    them does not split.
    """
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    leftover = [line for line in pending.splitlines() if line.strip() and not line.strip().startswith("--")]
    if leftover:
        raise ValueError(f"incomplete SQL statement at the end of the script: {pending.strip()!r}")
    return statements


# Rows of a pool's largest tables deleted per transaction when the pool goes (SqliteStore.delete_pool). Measured
# on a pool of 100,000 users: one transaction took 8 s and held every other write that long; batches of 1,000
# took 30 s in all (each commit pays its share of checkpointing), other writes waiting at most 0.44 s; of 2,000,
# 25 s and 0.62 s; of 5,000, 16 s and 1 s.
_DELETE_BATCH = 2000


def _search_position(key: str | None) -> tuple[str, str] | None:
    """A prefix search's page key (_list_prefix's JSON pair of value and username_key), or None for another."""
    if not key or not key.startswith("["):
        return None
    try:
        pair = _loads(key)
    except ValueError:
        return None
    if isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair):
        return pair[0], pair[1]
    return None


def _prefix_upper_bound(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (SQLite compares text by code point,
    as UTF-8 bytes): ``prefix`` with its last character below U+10FFFF raised by one and the rest cut. None when
    there is none (an empty prefix, or one of U+10FFFF only), where ``>= prefix`` alone is exact."""
    for index in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[index])
        if code < 0x10FFFF:
            # No text holds a surrogate: the next character after U+D7FF that can be stored is U+E000.
            following = code + 1 if not 0xD800 <= code + 1 <= 0xDFFF else 0xE000
            return prefix[:index] + chr(following)
    return None


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _open_reader(path: str | os.PathLike[str]) -> sqlite3.Connection | None:
    """A second, read-only connection for the hot reads (none for an in-memory database, which a second
    connection could not see)."""
    name = os.fspath(path)
    if name == ":memory:" or name.startswith("file::memory:") or "mode=memory" in name:
        return None
    reader = sqlite3.connect(name, isolation_level=None, check_same_thread=False, cached_statements=256)
    # A short wait only: the event loop runs these reads, and a busy read falls back to the writer's thread.
    reader.execute("PRAGMA busy_timeout = 50")
    reader.execute("PRAGMA query_only = ON")
    return reader


# SQLite's answers when another connection holds the write lock (or a checkpoint holds the WAL index): with
# busy_timeout 0 they come at once and nothing was written, so the statement can be run again elsewhere.
_BUSY_ERRORS = frozenset({"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED"})
# Commits on the event-loop writer between two passive checkpoints run on aiosqlite's thread (the writer's own
# automatic checkpoint is off: it would copy the WAL into the database and fsync on the event loop).
WAL_CHECKPOINT_EVERY = 500
# What a WAL file may keep of its size once SQLite restarts it from the beginning (PRAGMA journal_size_limit):
# a burst of writes that outruns the checkpoints grows it, and without a limit the file keeps that size for good.
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
# How long after finding SQLite's write lock taken by someone else (another process) event-loop writes keep
# queueing in order on the store lock (see SqliteStore._behind_a_waiting_write).
CONTENDED_SECONDS = 0.05


def _open_writer(path: str | os.PathLike[str]) -> sqlite3.Connection | None:
    """A second writing connection for the hot single-row writes, run on the event loop (see
    :meth:`SqliteStore._write_transaction`); none for an in-memory database, which it could not see."""
    name = os.fspath(path)
    if name == ":memory:" or name.startswith("file::memory:") or "mode=memory" in name:
        return None
    writer = sqlite3.connect(name, isolation_level=None, check_same_thread=False, cached_statements=256)
    # Never wait on the event loop: when another process is writing, the write goes to aiosqlite's thread,
    # which waits there (BUSY_TIMEOUT_MS).
    writer.execute("PRAGMA busy_timeout = 0")
    # Per-connection settings, as the main connection has them: no fsync per commit in WAL mode (the same
    # durability as every other write), and foreign keys enforced.
    writer.execute("PRAGMA synchronous = NORMAL")
    writer.execute("PRAGMA foreign_keys = ON")
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
    return writer


async def _migrate(db: aiosqlite.Connection, path: str) -> None:
    """Apply the migrations this database lacks, all in one BEGIN IMMEDIATE transaction.

    The write lock is held from the check to the commit, so when several processes open a new database at
    once the first applies everything and the others, waiting on the busy timeout, find nothing to do.
    SQLite's DDL is transactional: a failing migration leaves no trace.

    A database in use is not upgraded: an older Gatehouse still serving it checked the schema when it opened
    the file, and would go on writing as that schema was, unaware of the new one -- users it writes would be
    missing from the ListUsers index 0020 keeps, say, for good. So when an existing schema has migrations
    to apply while another process has the file open, the upgrade is refused until they have stopped.
    """
    migrations = load_migrations()
    await db.execute_fetchall("BEGIN IMMEDIATE")
    try:
        await db.execute_fetchall(_CREATE_MIGRATIONS_TABLE)
        applied = {row[0] for row in await db.execute_fetchall("SELECT version FROM schema_migrations")}
        unknown = applied - {migration.version for migration in migrations}
        if unknown:
            # A newer Gatehouse migrated this file; running older code on it could corrupt it.
            raise RuntimeError(f"database has schema versions this Gatehouse does not know: {sorted(unknown)}")
        pending = [m.version for m in migrations if m.version not in applied]
        others = _other_processes_using(path) if applied and pending else set()
        if others:
            raise RuntimeError(
                f"its schema needs upgrading (migrations {pending}) but other processes have it open (pid "
                f"{', '.join(str(pid) for pid in sorted(others))}): stop every Gatehouse using it, then start this one"
            )
        for migration in migrations:
            if migration.version in applied:
                continue
            for statement in split_statements(migration.sql):
                await db.execute_fetchall(statement)
            backfill = _BACKFILLS.get(migration.version)
            if backfill is not None:
                await backfill(db)
            await db.execute_fetchall(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (migration.version, time.time()),
            )
        await db.commit()
    except BaseException:
        await db.rollback()
        raise


# SQLite's unix VFS holds a shared lock on this byte of the WAL-index file (``<db>-shm``) for as long as a
# connection has the database open in WAL mode (the "DMS" lock, at UNIX_SHM_BASE 120 plus its 8 locks).
_SHM_OPEN_BYTE = 128


def _other_processes_using(path: str) -> set[int]:
    """The other processes that have the database at ``path`` open, from the kernel's table of file locks
    (Linux's /proc/locks; elsewhere none are found). The -shm file itself is never opened here: closing a
    descriptor of it would drop this process's own SQLite locks on it (POSIX advisory locks are per process)."""
    try:
        shm = os.stat(path + "-shm")
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:
        return set()
    # "1: POSIX  ADVISORY  READ 2231 fe:00:2146933 128 128": pid, device (hex major:minor) and inode, range.
    file_id = f"{os.major(shm.st_dev):02x}:{os.minor(shm.st_dev):02x}:{shm.st_ino}"
    others: set[int] = set()
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a request blocked behind a lock, listed under it
            continue
        try:
            at = fields.index(file_id)
            pid, start, end = int(fields[at - 1]), int(fields[at + 1]), fields[at + 2]
        except (ValueError, IndexError):
            continue
        covers = start <= _SHM_OPEN_BYTE and (end == "EOF" or int(end) >= _SHM_OPEN_BYTE)
        if covers and pid != os.getpid():  # 0: a process of another PID namespace
            others.add(pid)
    return others


async def _backfill_user_search(db: aiosqlite.Connection) -> None:
    """Index the users a database already holds when 0020_user_search is applied (in its transaction), a
    thousand at a time: the folded forms are Python's ``str.lower``, which SQL's ASCII-only lower() is not."""
    after: tuple[str, str] = ("", "")
    while True:
        rows = await db.execute_fetchall(
            "SELECT pool_id, username_key, username, sub, status, enabled, attributes FROM users "
            "WHERE (pool_id, username_key) > (?, ?) ORDER BY pool_id, username_key LIMIT 1000",
            after,
        )
        if not rows:
            return
        batch = [
            (row[0], row[1], name, value, value.lower())
            for row in rows
            for name, value in search_values(row[2], row[4], bool(row[5]), row[3], _loads(row[6])).items()
        ]
        await db.executemany(_INSERT_SEARCH, batch)
        last = list(rows)[-1]
        after = (str(last[0]), str(last[1]))


# Work a migration needs beyond its SQL, run right after it in the same transaction, by version.
_BACKFILLS: dict[int, Callable[[aiosqlite.Connection], Awaitable[None]]] = {20: _backfill_user_search}


async def _enable_wal(db: aiosqlite.Connection) -> None:
    """Switch the file to WAL (a no-op once any process has: the mode is stored in the file).

    The switch needs the file to itself, and when several processes open a new file at once SQLite may
    answer SQLITE_BUSY at once rather than through the busy handler (the connections would otherwise wait on
    each other), so the switch is retried here within the same budget as the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            await db.execute_fetchall("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorname != "SQLITE_BUSY" or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.01)


# --- rows and records -----------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    # orjson: every user read decodes several JSON columns, and it is several times faster than json.
    return orjson.dumps(value).decode()


_loads = orjson.loads

POOL_COLUMNS = "id, name, settings, created_at, updated_at, version"
CLIENT_COLUMNS = "pool_id, id, name, secret, settings, created_at, updated_at, version, secrets"
USER_COLUMNS = (
    "pool_id, username, username_key, sub, status, enabled, attributes, password_hash, created_at, "
    "updated_at, password_updated_at, temporary_password_expires_at, tokens_valid_after, aliases, secrets, "
    "password_history, settings, version"
)
GROUP_COLUMNS = "pool_id, name, description, role_arn, precedence, created_at, updated_at"
CODE_COLUMNS = "pool_id, username_key, purpose, code_hash, expires_at, attempts, data"
SESSION_COLUMNS = "session_hash, pool_id, client_id, username_key, state, expires_at"
FAMILY_COLUMNS = (
    "origin_jti, pool_id, client_id, username_key, auth_time, created_at, expires_at, revoked, scopes, device_key"
)
# Written with every family, read only when a user's sessions are listed (migration 0025).
FAMILY_SESSION_COLUMNS = "last_active_at, device_type, last_ip, sso_key_hash"
REFRESH_COLUMNS = (
    "token_hash, origin_jti, pool_id, client_id, username_key, created_at, expires_at, replaced_by, replaced_at, data"
)
KEY_COLUMNS = "pool_id, kid, private_jwk, created_at, active, retired_at, token_use"


def _qualified(columns: str, table: str) -> str:
    return ", ".join(f"{table}.{column.strip()}" for column in columns.split(","))


def _placeholders(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(","))


def _pool_params(p: PoolRecord) -> Params:
    return (p.id, p.name, _dumps(p.settings), p.created_at, p.updated_at, p.version)


def _pool(r: Row) -> PoolRecord:
    return PoolRecord(r[0], r[1], _loads(r[2]), r[3], r[4], r[5])


def _client_params(c: ClientRecord) -> Params:
    secrets = None if c.secrets is None else _dumps(c.secrets)
    return (c.pool_id, c.id, c.name, c.secret, _dumps(c.settings), c.created_at, c.updated_at, c.version, secrets)


def _client(r: Row) -> ClientRecord:
    return ClientRecord(r[0], r[1], r[2], r[3], _loads(r[4]), r[5], r[6], r[7], None if r[8] is None else _loads(r[8]))


def _user_params(u: UserRecord) -> Params:
    return (
        u.pool_id,
        u.username,
        u.username_key,
        u.sub,
        u.status,
        int(u.enabled),
        _dumps(u.attributes),
        u.password_hash,
        u.created_at,
        u.updated_at,
        u.password_updated_at,
        u.temporary_password_expires_at,
        u.tokens_valid_after,
        _dumps(u.aliases),
        _dumps(u.secrets),
        _dumps(u.password_history),
        _dumps(u.settings),
        u.version,
    )


def _user(r: Row) -> UserRecord:
    # Positional, in UserRecord's field order (every sign-in reads a user; keywords cost a third more).
    return UserRecord(
        r[0],  # pool_id
        r[1],  # username
        r[2],  # username_key
        r[3],  # sub
        r[4],  # status
        bool(r[5]),  # enabled
        _loads(r[6]),  # attributes
        r[7],  # password_hash
        r[8],  # created_at
        r[9],  # updated_at
        r[10],  # password_updated_at
        r[11],  # temporary_password_expires_at
        r[12],  # tokens_valid_after
        _loads(r[13]),  # aliases
        _loads(r[14]),  # secrets
        _loads(r[15]),  # password_history
        _loads(r[16]),  # settings
        r[17],  # version
    )


def _group_params(g: GroupRecord) -> Params:
    return (g.pool_id, g.name, g.description, g.role_arn, g.precedence, g.created_at, g.updated_at)


def _group(r: Row) -> GroupRecord:
    return GroupRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6])


def _code(r: Row) -> CodeRecord:
    return CodeRecord(r[0], r[1], r[2], r[3], r[4], r[5], _loads(r[6]))


def _session(r: Row) -> AuthSessionRecord:
    return AuthSessionRecord(r[0], r[1], r[2], r[3], _loads(r[4]), r[5])


def _family_params(f: TokenFamilyRecord, app_client_id: str | None) -> Params:
    """:data:`_INSERT_FAMILY`'s parameters: the family's, then the app client behind it when that is not its
    ``client_id`` (a client ID metadata document client's family; migration 0026)."""
    return (
        f.origin_jti,
        f.pool_id,
        f.client_id,
        f.username_key,
        f.auth_time,
        f.created_at,
        f.expires_at,
        int(f.revoked),
        None if f.scopes is None else _dumps(f.scopes),
        f.device_key,
        f.last_active_at,
        f.device_type,
        f.last_ip,
        f.sso_key_hash,
        app_client_id if app_client_id != f.client_id else None,
    )


def _family(r: Row) -> TokenFamilyRecord:
    scopes = None if r[8] is None else _loads(r[8])
    return TokenFamilyRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), scopes, device_key=r[9])


def _session_family(r: Row) -> TokenFamilyRecord:
    """A family read with its session columns (FAMILY_COLUMNS, then FAMILY_SESSION_COLUMNS)."""
    family = _family(r)
    family.last_active_at, family.device_type, family.last_ip, family.sso_key_hash = r[10], r[11], r[12], r[13]
    return family


def _refresh_params(t: RefreshTokenRecord) -> Params:
    return (
        t.token_hash,
        t.origin_jti,
        t.pool_id,
        t.client_id,
        t.username_key,
        t.created_at,
        t.expires_at,
        t.replaced_by,
        t.replaced_at,
        _dumps(t.data),
    )


def _refresh(r: Row) -> RefreshTokenRecord:
    return RefreshTokenRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], _loads(r[9]))


def _key(r: Row) -> SigningKeyRecord:
    return SigningKeyRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6])


# --- SQL ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _PagedQuery:
    """A listing as two statements, first page and later pages, rather than one with ``(? IS NULL OR k > ?)``:
    SQLite cannot turn that OR into an index range, and every page would scan from the start."""

    first: str
    after: str


def _paged(select: str, where: str, key: str) -> _PagedQuery:
    first_where = f" WHERE {where}" if where else ""
    after_where = f" WHERE {where} AND {key} > ?" if where else f" WHERE {key} > ?"
    tail = f" ORDER BY {key} LIMIT ?"
    return _PagedQuery(select + first_where + tail, select + after_where + tail)


_INSERT_POOL = f"INSERT INTO pools ({POOL_COLUMNS}) VALUES ({_placeholders(POOL_COLUMNS)})"
_GET_POOL = f"SELECT {POOL_COLUMNS} FROM pools WHERE id = ?"
_UPDATE_POOL = (
    "UPDATE pools SET name = ?, settings = ?, created_at = ?, updated_at = ?, version = version + 1 "
    "WHERE id = ? AND version = ? RETURNING version"
)
_LIST_POOLS = _paged(f"SELECT {POOL_COLUMNS} FROM pools", "", "id")

_INSERT_CLIENT = f"INSERT INTO clients ({CLIENT_COLUMNS}) VALUES ({_placeholders(CLIENT_COLUMNS)})"
_GET_CLIENT = f"SELECT {CLIENT_COLUMNS} FROM clients WHERE id = ?"
_UPDATE_CLIENT = (
    "UPDATE clients SET name = ?, secret = ?, settings = ?, created_at = ?, updated_at = ?, secrets = ?, "
    "version = version + 1 WHERE pool_id = ? AND id = ? AND version = ? RETURNING version"
)
_LIST_CLIENTS = _paged(f"SELECT {CLIENT_COLUMNS} FROM clients", "pool_id = ?", "id")

_INSERT_USER = f"INSERT INTO users ({USER_COLUMNS}) VALUES ({_placeholders(USER_COLUMNS)})"
_GET_USER = f"SELECT {USER_COLUMNS} FROM users WHERE pool_id = ? AND username_key = ?"
_FAMILY_WIDTH = len(FAMILY_COLUMNS.split(","))
_REFRESH_WIDTH = len(REFRESH_COLUMNS.split(","))
# A refresh token always has its family (a foreign key); the user may be gone. After the family, what became of
# its device (TokenFamilyRecord.device_confirmed, device_forgotten): primary-key probes of devices and
# forgotten_devices (migration 0018), and none at all for a family without a device.
_REFRESH_WITH_USER = (
    f"SELECT {_qualified(REFRESH_COLUMNS, 'r')}, {_qualified(FAMILY_COLUMNS, 'f')}, "
    "f.device_key IS NOT NULL AND EXISTS (SELECT 1 FROM devices AS d "
    "WHERE d.pool_id = f.pool_id AND d.device_key = f.device_key AND d.username_key = f.username_key), "
    "f.device_key IS NOT NULL AND EXISTS (SELECT 1 FROM forgotten_devices AS d "
    "WHERE d.pool_id = f.pool_id AND d.device_key = f.device_key), "
    f"{_qualified(USER_COLUMNS, 'u')}, "
    # The groups as one JSON array of rows (PostgreSQL: json_agg), in list_groups_for_user's order.
    f"(SELECT json_group_array(json_array({GROUP_COLUMNS})) FROM ("
    f"SELECT {_qualified(GROUP_COLUMNS, 'g')} FROM group_members AS m "
    "JOIN pool_groups AS g ON g.pool_id = m.pool_id AND g.name = m.group_name "
    "WHERE m.pool_id = f.pool_id AND m.username_key = f.username_key ORDER BY m.group_name)) "
    "FROM refresh_tokens AS r JOIN token_families AS f ON f.origin_jti = r.origin_jti "
    "LEFT JOIN users AS u ON u.pool_id = f.pool_id AND u.username_key = f.username_key WHERE r.token_hash = ?"
)
_FAMILY_WITH_USER = (
    f"SELECT {_qualified(FAMILY_COLUMNS, 'f')}, {_qualified(USER_COLUMNS, 'u')} FROM token_families AS f "
    "LEFT JOIN users AS u ON u.pool_id = f.pool_id AND u.username_key = f.username_key WHERE f.origin_jti = ?"
)
_GET_USER_BY_SUB = f"SELECT {USER_COLUMNS} FROM users WHERE pool_id = ? AND sub = ?"
_GET_USER_BY_ALIAS = (
    f"SELECT {_qualified(USER_COLUMNS, 'u')} FROM user_aliases AS a "
    "JOIN users AS u ON u.pool_id = a.pool_id AND u.username_key = a.username_key "
    "WHERE a.pool_id = ? AND a.attribute = ? AND a.value = ?"
)
_UPDATE_USER = (
    "UPDATE users SET username = ?, sub = ?, status = ?, enabled = ?, attributes = ?, password_hash = ?, "
    "created_at = ?, updated_at = ?, password_updated_at = ?, temporary_password_expires_at = ?, "
    "tokens_valid_after = ?, aliases = ?, secrets = ?, password_history = ?, settings = ?, "
    "version = version + 1 WHERE pool_id = ? AND username_key = ? AND version = ? RETURNING version"
)
_USER_EXISTS = "SELECT 1 FROM users WHERE pool_id = ? AND username_key = ?"
_ALIAS_HELD = "SELECT 1 FROM user_aliases WHERE pool_id = ? AND attribute = ? AND value = ?"
_LIST_USERS = _paged(f"SELECT {USER_COLUMNS} FROM users", "pool_id = ?", "username_key")
_INSERT_ALIAS = "INSERT INTO user_aliases (pool_id, attribute, value, username_key) VALUES (?, ?, ?, ?)"
_INSERT_SEARCH = "INSERT INTO user_search (pool_id, username_key, name, value, folded) VALUES (?, ?, ?, ?, ?)"
_PUT_SEARCH = (
    _INSERT_SEARCH + " ON CONFLICT (pool_id, username_key, name) DO UPDATE SET value = excluded.value, "
    "folded = excluded.folded"
)
_USER_SEARCH_ROWS = "SELECT name, value FROM user_search WHERE pool_id = ? AND username_key = ?"
_DELETE_SEARCH = "DELETE FROM user_search WHERE pool_id = ? AND username_key = ? AND name = ?"
_SEARCH_SELECT = (
    f"SELECT {_qualified(USER_COLUMNS, 'u')} FROM user_search AS s "
    "JOIN users AS u ON u.pool_id = s.pool_id AND u.username_key = s.username_key"
)
# By column (value as given, or folded) and kind (= or ^=); a prefix is a range [prefix, upper) of the index.
_SEARCH_USERS = {
    (column, kind): _paged(
        _SEARCH_SELECT,
        f"s.pool_id = ? AND s.name = ? AND s.{column} "
        + {"equal": "= ?", "range": ">= ? AND s.{0} < ?", "from": ">= ?"}[kind].format(column),
        "s.username_key",
    )
    for column in ("value", "folded")
    for kind in ("equal", "range", "from")
}
# A prefix (^=) is walked in the index's own order, (value, username_key), and paged by that pair: ordered by
# username_key alone, each page would sort every match (or scan the rest of the pool after the first page).
# The value comes last in the row (_user reads the user's columns by position before it).
_SEARCH_PREFIX = {
    (column, bounded): _PagedQuery(
        f"{_SEARCH_SELECT.replace(' FROM ', f', s.{column} FROM ', 1)} WHERE s.pool_id = ? AND s.name = ? AND "
        f"s.{column} >= ?{f' AND s.{column} < ?' if bounded else ''} ORDER BY s.{column}, s.username_key LIMIT ?",
        f"{_SEARCH_SELECT.replace(' FROM ', f', s.{column} FROM ', 1)} WHERE s.pool_id = ? AND s.name = ? AND "
        f"s.{column} >= ?{f' AND s.{column} < ?' if bounded else ''} AND (s.{column}, s.username_key) > (?, ?) "
        f"ORDER BY s.{column}, s.username_key LIMIT ?",
    )
    for column in ("value", "folded")
    for bounded in (True, False)
}
_USER_ALIASES = "SELECT attribute, value FROM user_aliases WHERE pool_id = ? AND username_key = ?"
_DELETE_ALIAS = "DELETE FROM user_aliases WHERE pool_id = ? AND attribute = ? AND value = ?"

_INSERT_GROUP = f"INSERT INTO pool_groups ({GROUP_COLUMNS}) VALUES ({_placeholders(GROUP_COLUMNS)})"
_GET_GROUP = f"SELECT {GROUP_COLUMNS} FROM pool_groups WHERE pool_id = ? AND name = ?"
_UPDATE_GROUP = (
    "UPDATE pool_groups SET description = ?, role_arn = ?, precedence = ?, created_at = ?, updated_at = ? "
    "WHERE pool_id = ? AND name = ? RETURNING 1"
)
_LIST_GROUPS = _paged(f"SELECT {GROUP_COLUMNS} FROM pool_groups", "pool_id = ?", "name")
_GROUPS_FOR_USER = (
    f"SELECT {_qualified(GROUP_COLUMNS, 'g')} FROM group_members AS m "
    "JOIN pool_groups AS g ON g.pool_id = m.pool_id AND g.name = m.group_name "
    "WHERE m.pool_id = ? AND m.username_key = ? ORDER BY m.group_name"
)
# The user and, as _REFRESH_WITH_USER does, the groups as one JSON array in list_groups_for_user's order.
_USER_WITH_GROUPS = (
    f"SELECT {_qualified(USER_COLUMNS, 'u')}, "
    f"(SELECT json_group_array(json_array({GROUP_COLUMNS})) FROM ("
    f"SELECT {_qualified(GROUP_COLUMNS, 'g')} FROM group_members AS m "
    "JOIN pool_groups AS g ON g.pool_id = m.pool_id AND g.name = m.group_name "
    "WHERE m.pool_id = u.pool_id AND m.username_key = u.username_key ORDER BY m.group_name)) "
    "FROM users AS u WHERE u.pool_id = ? AND u.username_key = ?"
)
_USERS_IN_GROUP = _paged(
    f"SELECT {_qualified(USER_COLUMNS, 'u')} FROM group_members AS m "
    "JOIN users AS u ON u.pool_id = m.pool_id AND u.username_key = m.username_key",
    "m.pool_id = ? AND m.group_name = ?",
    "m.username_key",
)

_PUT_CODE = (
    f"INSERT INTO codes ({CODE_COLUMNS}) VALUES ({_placeholders(CODE_COLUMNS)}) "
    "ON CONFLICT (pool_id, username_key, purpose) DO UPDATE SET code_hash = excluded.code_hash, "
    "expires_at = excluded.expires_at, attempts = excluded.attempts, data = excluded.data"
)
_GET_CODE = f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = ? AND username_key = ? AND purpose = ?"

_DELETE_CLIENT = "DELETE FROM clients WHERE pool_id = ? AND id = ? RETURNING 1"
# Through token_families_by_app_client (migration 0026), whose expression this must repeat to use it.
_REVOKE_CLIENT_FAMILIES = (
    "UPDATE token_families SET revoked = 1 WHERE COALESCE(app_client_id, client_id) = ? AND pool_id = ? AND revoked = 0"
)
_CLIENT_EXISTS = "SELECT 1 FROM clients WHERE id = ? AND pool_id = ?"
_INSERT_FAMILY = (
    f"INSERT INTO token_families ({FAMILY_COLUMNS}, {FAMILY_SESSION_COLUMNS}, app_client_id) "
    f"VALUES ({_placeholders(FAMILY_COLUMNS)}, {_placeholders(FAMILY_SESSION_COLUMNS)}, ?)"
)
# A user's token sessions: families with a refresh token, live, most recently active first (the user index).
_LIVE_SESSIONS = (
    "FROM token_families AS f WHERE f.pool_id = ? AND f.username_key = ? AND f.revoked = 0 AND f.expires_at > ? "
    "AND EXISTS (SELECT 1 FROM refresh_tokens AS r WHERE r.origin_jti = f.origin_jti AND r.expires_at > ?) "
    # A family bound to a forgotten device refreshes no more (migration 0027): no longer a session.
    "AND NOT EXISTS (SELECT 1 FROM forgotten_devices AS d WHERE d.pool_id = f.pool_id AND d.device_key = f.device_key)"
)
_TOUCH_FAMILY = "UPDATE token_families SET last_active_at = ?, device_type = ?, last_ip = ? WHERE origin_jti = ?"
_SESSION_ORDER = "ORDER BY COALESCE(f.last_active_at, f.created_at) DESC, f.created_at DESC, f.origin_jti"
_INSERT_REFRESH = f"INSERT INTO refresh_tokens ({REFRESH_COLUMNS}) VALUES ({_placeholders(REFRESH_COLUMNS)})"
_INSERT_SESSION = f"INSERT INTO auth_sessions ({SESSION_COLUMNS}) VALUES ({_placeholders(SESSION_COLUMNS)})"
_TAKE_SESSION = f"DELETE FROM auth_sessions WHERE session_hash = ? RETURNING {SESSION_COLUMNS}"
_MARK_REPLACED = (
    "UPDATE refresh_tokens SET replaced_by = ?, replaced_at = ? "
    "WHERE token_hash = ? AND replaced_by IS NULL RETURNING 1"
)

# The columns of each unique constraint, as SQLite names them in "UNIQUE constraint failed: <columns>",
# mapped to the key AlreadyExists reports.
_POOL_UNIQUE = {"pools.id": "id"}
_CLIENT_UNIQUE = {"clients.id": "id"}
_USER_UNIQUE = {"users.pool_id, users.username_key": "username", "users.pool_id, users.sub": "sub"}
_ALIAS_UNIQUE_COLUMNS = "user_aliases.pool_id, user_aliases.attribute, user_aliases.value"
_GROUP_UNIQUE = {"pool_groups.pool_id, pool_groups.name": "name"}
_SESSION_UNIQUE = {"auth_sessions.session_hash": "id"}
_FAMILY_UNIQUE = {"token_families.origin_jti": "id"}
_REFRESH_UNIQUE = {"refresh_tokens.token_hash": "id"}
_KEY_UNIQUE = {"signing_keys.pool_id, signing_keys.kid": "id"}
_WEBAUTHN_UNIQUE = {"webauthn_credentials.pool_id, webauthn_credentials.credential_id": "id"}
WEBAUTHN_COLUMNS = (
    "pool_id, credential_id, username_key, public_key, sign_count, friendly_name, relying_party, attachment, "
    "transports, created_at"
)


def _webauthn(r: Row) -> WebAuthnCredentialRecord:
    return WebAuthnCredentialRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], _loads(r[8]), r[9])


_UNIQUE_ERRORS = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})


def _translate(exc: sqlite3.IntegrityError, unique: Mapping[str, str], parent: str) -> Exception:
    """The store error for a constraint failure, or ``exc`` itself when it is not one we expect."""
    if exc.sqlite_errorname in _UNIQUE_ERRORS:
        key = unique.get(str(exc).partition("constraint failed: ")[2])
        if key is not None:
            return AlreadyExists(key)
    elif exc.sqlite_errorname == "SQLITE_CONSTRAINT_FOREIGNKEY":
        # Creating something inside a pool, user or group that does not exist.
        return NotFound(parent)
    return exc


async def _insert(db: aiosqlite.Connection, sql: str, params: Params, unique: Mapping[str, str], parent: str) -> None:
    try:
        await db.execute_fetchall(sql, params)
    except sqlite3.IntegrityError as exc:
        error = _translate(exc, unique, parent)
        if error is exc:
            raise
        raise error from exc


def _commit_or_roll_back(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Finish the transaction ``conn`` has begun: ``work`` then ``COMMIT``, or ``ROLLBACK`` if either fails."""
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _check_client(conn: sqlite3.Connection, pool_id: str, app_client_id: str | None) -> None:
    """NotFound("client") unless the app client a new token family is issued under is still in its pool: read in
    the family's own write transaction, so a family is either stored before the client's deletion commits (and
    revoked by it) or refused after (one primary-key read)."""
    if app_client_id is not None and not conn.execute(_CLIENT_EXISTS, (app_client_id, pool_id)).fetchall():
        raise NotFound("client")


def _insert_sync(conn: sqlite3.Connection, sql: str, params: Params, unique: Mapping[str, str], parent: str) -> None:
    """:func:`_insert` on the writer's own thread (inside :meth:`SqliteStore._write_transaction`)."""
    try:
        conn.execute(sql, params)
    except sqlite3.IntegrityError as exc:
        error = _translate(exc, unique, parent)
        if error is exc:
            raise
        raise error from exc


async def _check_free_usernames(db: aiosqlite.Connection, user: UserRecord, usernames: Collection[str]) -> None:
    """AlreadyExists("alias:preferred_username") when a user other than ``user`` has one of ``usernames``."""
    for username_key in usernames:
        if username_key != user.username_key and await db.execute_fetchall(_USER_EXISTS, (user.pool_id, username_key)):
            raise AlreadyExists("alias:preferred_username")


async def _affected(db: aiosqlite.Connection, sql: str, params: Params) -> int:
    """Rows changed by a statement that may touch many (``RETURNING`` would ship them all back)."""
    async with db.execute(sql, params) as cursor:
        return cursor.rowcount


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


def _check_search(where: UserSearch) -> None:
    """A prefix no longer than MAX_PREFIX_BYTES (the PostgreSQL store's index keeps no more of a value whole)."""
    if where.prefix and len(where.value.encode("utf-8", "surrogatepass")) > MAX_PREFIX_BYTES:
        raise ValueError(f"a prefix of at most {MAX_PREFIX_BYTES} bytes of UTF-8 is searched for")


def _page(rows: Sequence[Row], limit: int, convert: Callable[[Row], T], key: Callable[[T], str]) -> Page[T]:
    """Rows were fetched with LIMIT limit + 1: a row beyond the page means there is a next one."""
    items = [convert(row) for row in rows[:limit]]
    return Page(items, key(items[-1]) if len(rows) > limit else None)


# --- IAM rows (migration 0006) --------------------------------------------------------------------------

ROLE_COLUMNS = "name_key, name, role_id, path, assume_role_policy, description, max_session_duration, tags, created_at"
OIDC_COLUMNS = "url, issuer_url, client_ids, thumbprints, tags, jwks_url, created_at"
# The role and all its inline policies in one read (a JSON object of name -> document).
_ROLE_SELECT = (
    f"SELECT {_qualified(ROLE_COLUMNS, 'r')}, "
    "(SELECT json_group_object(p.policy_name, p.document) FROM iam_role_policies AS p "
    "WHERE p.role_name_key = r.name_key) FROM iam_roles AS r"
)
_GET_ROLE = _ROLE_SELECT + " WHERE r.name_key = ?"
_LIST_ROLES = _paged(_ROLE_SELECT, "", "r.name_key")
_INSERT_ROLE = f"INSERT INTO iam_roles ({ROLE_COLUMNS}) VALUES ({_placeholders(ROLE_COLUMNS)})"
_UPDATE_ROLE = (
    "UPDATE iam_roles SET name = ?, role_id = ?, path = ?, assume_role_policy = ?, description = ?, "
    "max_session_duration = ?, tags = ?, created_at = ? WHERE name_key = ? RETURNING 1"
)
_PUT_ROLE_POLICY = (
    "INSERT INTO iam_role_policies (role_name_key, policy_name, document) VALUES (?, ?, ?) "
    "ON CONFLICT (role_name_key, policy_name) DO UPDATE SET document = excluded.document"
)
_INSERT_OIDC = f"INSERT INTO iam_oidc_providers ({OIDC_COLUMNS}) VALUES ({_placeholders(OIDC_COLUMNS)})"
_UPDATE_OIDC = (
    "UPDATE iam_oidc_providers SET issuer_url = ?, client_ids = ?, thumbprints = ?, tags = ?, jwks_url = ?, "
    "created_at = ? WHERE url = ? RETURNING 1"
)
_ROLE_UNIQUE = {"iam_roles.name_key": "name", "iam_roles.role_id": "id"}
_OIDC_UNIQUE = {"iam_oidc_providers.url": "url"}


def _role_params(r: RoleRecord) -> Params:
    return (
        r.name_key,
        r.name,
        r.role_id,
        r.path,
        r.assume_role_policy,
        r.description,
        r.max_session_duration,
        _dumps(r.tags),
        r.created_at,
    )


def _role(r: Row) -> RoleRecord:
    return RoleRecord(
        name=r[1],
        name_key=r[0],
        role_id=r[2],
        path=r[3],
        assume_role_policy=r[4],
        description=r[5],
        max_session_duration=r[6],
        tags=_loads(r[7]),
        created_at=r[8],
        policies=_loads(r[9]) if r[9] else {},
    )


def _oidc_params(p: OidcProviderRecord) -> Params:
    return (
        p.url,
        p.issuer_url,
        _dumps(p.client_ids),
        _dumps(p.thumbprints),
        _dumps(p.tags),
        p.jwks_url,
        p.created_at,
    )


def _oidc(r: Row) -> OidcProviderRecord:
    return OidcProviderRecord(
        url=r[0],
        issuer_url=r[1],
        client_ids=_loads(r[2]),
        thumbprints=_loads(r[3]),
        tags=_loads(r[4]),
        jwks_url=r[5],
        created_at=r[6],
    )


SAML_COLUMNS = "name, metadata, tags, created_at, updated_at"
_INSERT_SAML = f"INSERT INTO iam_saml_providers ({SAML_COLUMNS}) VALUES ({_placeholders(SAML_COLUMNS)})"
_UPDATE_SAML = "UPDATE iam_saml_providers SET metadata = ?, tags = ?, updated_at = ? WHERE name = ? RETURNING 1"
_SAML_UNIQUE = {"iam_saml_providers.name": "name"}
_USE_ASSERTION = (
    "INSERT INTO iam_saml_assertions_used (assertion_key, expires_at) VALUES (?, ?) "
    "ON CONFLICT (assertion_key) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE iam_saml_assertions_used.expires_at <= ? RETURNING 1"
)


def _saml(r: Row) -> SamlProviderRecord:
    return SamlProviderRecord(name=r[0], metadata=r[1], tags=_loads(r[2]), created_at=r[3], updated_at=r[4])


OAUTH_COLUMNS = "kind, key_hash, pool_id, client_id, username_key, data, expires_at, used_at, replayed"
DOMAIN_COLUMNS = "domain, pool_id, settings, created_at"
SERVER_COLUMNS = "pool_id, identifier, name, scopes, created_at, updated_at"
_INSERT_OAUTH = f"INSERT INTO oauth_records ({OAUTH_COLUMNS}) VALUES ({_placeholders(OAUTH_COLUMNS)})"
_OAUTH_UNIQUE = {"oauth_records.kind, oauth_records.key_hash": "id"}
_LIST_SERVERS = _paged(f"SELECT {SERVER_COLUMNS} FROM resource_servers", "pool_id = ?", "identifier")


UI_COLUMNS = "pool_id, client_id, css, image, image_type, created_at, updated_at"


def _ui(r: Row) -> UICustomizationRecord:
    return UICustomizationRecord(r[0], r[1], r[2], r[3], r[4], r[5], r[6])


def _seconds(value: float | None) -> float | None:
    """A timestamp column as a float. SQLite keeps a whole-number REAL as an integer on disk, and an UPDATE's
    RETURNING hands it back so (a SELECT converts it): float() makes the record the same whichever read it."""
    return None if value is None else float(value)


def _oauth(r: Row) -> OAuthRecord:
    return OAuthRecord(r[0], r[1], r[2], r[3], r[4], _loads(r[5]), float(r[6]), _seconds(r[7]), bool(r[8]))


def _oauth_params(record: OAuthRecord) -> Params:
    return (
        record.kind,
        record.key_hash,
        record.pool_id,
        record.client_id,
        record.username_key,
        _dumps(record.data),
        record.expires_at,
        record.used_at,
        int(record.replayed),
    )


# ON CONFLICT DO NOTHING decides a race: writers are serialised, and only the first inserts (RETURNING a row).
_OAUTH_WIDTH = len(OAUTH_COLUMNS.split(","))
_OAUTH_WITH_USER = (
    f"SELECT {_qualified(OAUTH_COLUMNS, 'o')}, {_qualified(USER_COLUMNS, 'u')} FROM oauth_records AS o "
    "LEFT JOIN users AS u ON u.pool_id = o.pool_id AND u.username_key = o.username_key "
    "WHERE o.kind = ? AND o.key_hash = ?"
)
_INSERT_USED_CODE = (
    "INSERT INTO used_codes (code_hash, origin_jti, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (code_hash) DO NOTHING RETURNING 1"
)
# A sealed code's redemption without a marker row (start_code_family): the family's key is the marker.
_CODE_MARKED = "SELECT 1 FROM used_codes WHERE code_hash = ?"
_INSERT_FAMILY_ONCE = _INSERT_FAMILY + " ON CONFLICT (origin_jti) DO NOTHING RETURNING 1"


def _domain(r: Row) -> DomainRecord:
    return DomainRecord(r[0], r[1], _loads(r[2]), r[3])


def _server(r: Row) -> ResourceServerRecord:
    return ResourceServerRecord(r[0], r[1], r[2], _loads(r[3]), r[4], r[5])


# --- devices --------------------------------------------------------------------------------------------

DEVICE_COLUMNS = (
    "pool_id, device_key, username_key, name, remembered, verifier, created_at, updated_at, "
    "last_authenticated_at, last_ip"
)
_DEVICE_UNIQUE = {"devices.pool_id, devices.device_key": "device_key"}
_INSERT_DEVICE = f"INSERT INTO devices ({DEVICE_COLUMNS}) VALUES ({_placeholders(DEVICE_COLUMNS)})"
_GET_DEVICE = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE pool_id = ? AND device_key = ?"
_UPDATE_DEVICE = (
    "UPDATE devices SET name = ?, remembered = ?, updated_at = ?, last_authenticated_at = ?, last_ip = ? "
    "WHERE pool_id = ? AND device_key = ? RETURNING 1"
)
# Migration 0018: the keys of forgotten devices, never confirmed again.
_IS_FORGOTTEN_DEVICE = "SELECT 1 FROM forgotten_devices WHERE pool_id = ? AND device_key = ?"
_FORGET_DEVICE = (
    "INSERT INTO forgotten_devices (pool_id, device_key, username_key, forgotten_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (pool_id, device_key) DO NOTHING"
)
_LIST_DEVICES = _paged(f"SELECT {DEVICE_COLUMNS} FROM devices", "pool_id = ? AND username_key = ?", "device_key")


def _family_with_user(row: Row) -> tuple[TokenFamilyRecord, UserRecord | None]:
    family = _family(cast(Row, row[:_FAMILY_WIDTH]))
    return family, (_user(cast(Row, row[_FAMILY_WIDTH:])) if row[_FAMILY_WIDTH] is not None else None)


def _device_params(d: DeviceRecord) -> Params:
    return (
        d.pool_id,
        d.device_key,
        d.username_key,
        d.name,
        int(d.remembered),
        d.verifier,
        d.created_at,
        d.updated_at,
        d.last_authenticated_at,
        d.last_ip,
    )


def _device(r: Row) -> DeviceRecord:
    return DeviceRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], r[9])


# --- users' change stamps ----------------------------------------------------------------------------------

# How many sessions' token family and user a process keeps (see SqliteStore.get_token_family_with_user), and
# how many users' groups (list_groups_for_user): the rows as read, a few kilobytes each as a rule. And how many
# bytes of text they may hold in all: a user may write attributes of up to 2,048 characters each, and sign in
# thousands of times (every session keeps its own copy of the user's row), and may be in 100 groups.
FAMILY_CACHE_SIZE = 10_000
FAMILY_CACHE_BYTES = 64 * 1024 * 1024
GROUPS_CACHE_SIZE = 10_000
GROUPS_CACHE_BYTES = 16 * 1024 * 1024
# What a kept entry costs beyond its text (the tuple, the row, a dictionary slot), counted per column.
_KEPT_COLUMN_BYTES = 16

K = TypeVar("K")
V = TypeVar("V")


def text_bytes(row: Sequence[Any]) -> int:
    """About what a row read from the store holds in memory: its text (and blob) columns, plus a little a column."""
    return sum(len(v) for v in row if isinstance(v, (str, bytes))) + _KEPT_COLUMN_BYTES * len(row)


class KeptRows(Generic[K, V]):
    """Rows kept in memory, the oldest let go first, at most ``entries`` of them and ``budget`` bytes in all (as
    :func:`text_bytes` counts them when they are put)."""

    def __init__(self, entries: int, budget: int) -> None:
        self.entries = entries
        self.budget = budget
        self.bytes = 0
        self._kept: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: K) -> V | None:
        kept = self._kept.get(key)
        return None if kept is None else kept[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Keep ``value`` (of ``size`` bytes) under ``key``; one larger than the whole budget is not kept."""
        old = self._kept.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        if size > self.budget:
            return
        while self._kept and (len(self._kept) >= self.entries or self.bytes + size > self.budget):
            self.bytes -= self._kept.popitem(last=False)[1][1]
        self._kept[key] = (value, size)
        self.bytes += size


# What tells a writing connection which users its statements changed: every write to a user, every change to one
# of a user's token families (a revocation, a purge) or group memberships, and every change to a group (for each
# of its members), row by row, whatever statement made it -- foreign-key cascades included. TEMP triggers: they
# live on the connection that made them, so the schema (and any other program opening the file) never sees them.
_USER_TRIGGERS = (
    "CREATE TEMP TRIGGER gatehouse_user_inserted AFTER INSERT ON main.users "
    "BEGIN SELECT gatehouse_user_changed(NEW.pool_id, NEW.username_key); END",
    "CREATE TEMP TRIGGER gatehouse_user_updated AFTER UPDATE ON main.users "
    "BEGIN SELECT gatehouse_user_changed(OLD.pool_id, OLD.username_key), "
    "gatehouse_user_changed(NEW.pool_id, NEW.username_key); END",
    "CREATE TEMP TRIGGER gatehouse_user_deleted AFTER DELETE ON main.users "
    "BEGIN SELECT gatehouse_user_changed(OLD.pool_id, OLD.username_key); END",
    "CREATE TEMP TRIGGER gatehouse_family_updated AFTER UPDATE ON main.token_families "
    "BEGIN SELECT gatehouse_user_changed(OLD.pool_id, OLD.username_key); END",
    "CREATE TEMP TRIGGER gatehouse_family_deleted AFTER DELETE ON main.token_families "
    "BEGIN SELECT gatehouse_user_changed(OLD.pool_id, OLD.username_key); END",
    "CREATE TEMP TRIGGER gatehouse_member_added AFTER INSERT ON main.group_members "
    "BEGIN SELECT gatehouse_user_changed(NEW.pool_id, NEW.username_key); END",
    "CREATE TEMP TRIGGER gatehouse_member_updated AFTER UPDATE ON main.group_members "
    "BEGIN SELECT gatehouse_user_changed(OLD.pool_id, OLD.username_key), "
    "gatehouse_user_changed(NEW.pool_id, NEW.username_key); END",
    "CREATE TEMP TRIGGER gatehouse_member_removed AFTER DELETE ON main.group_members "
    "BEGIN SELECT gatehouse_user_changed(OLD.pool_id, OLD.username_key); END",
    # A group's precedence or role changes what its members' tokens say (a deleted group's memberships go by
    # cascade, each told above).
    "CREATE TEMP TRIGGER gatehouse_group_updated AFTER UPDATE ON main.pool_groups "
    "BEGIN SELECT gatehouse_user_changed(pool_id, username_key) FROM main.group_members "
    "WHERE pool_id = OLD.pool_id AND group_name = OLD.name; END",
)


class _UserChanges:
    """The users one connection's writes changed, stamped (gateway/services/change_stamp.py) once committed.

    Only once no transaction is open: a stamp bumped before the commit would let another process read the old
    row after seeing the new stamp, and keep it under that stamp for good."""

    def __init__(self, stamps: ChangeStamps) -> None:
        self._stamps = stamps
        self._slots: set[int] = set()

    def install(self, conn: sqlite3.Connection) -> None:
        """Make ``conn`` tell this of its changes (in the connection's own thread)."""
        conn.create_function("gatehouse_user_changed", 2, self._changed)
        for trigger in _USER_TRIGGERS:
            conn.execute(trigger)

    def _changed(self, pool_id: object, username_key: object) -> None:
        self._slots.add(user_slot(str(pool_id), str(username_key)))

    def settle(self, conn: sqlite3.Connection) -> None:
        """After each use of ``conn``: stamp what it committed (a rolled-back change costs a read, no more)."""
        if not self._slots:
            return
        try:
            committing = not conn.in_transaction
        except sqlite3.ProgrammingError:  # closed: whatever was open was rolled back
            committing = True
        if committing:
            slots, self._slots = self._slots, set()
            for slot in slots:
                self._stamps.bump(slot)


class _Connection(aiosqlite.Connection):
    """aiosqlite's connection, whose every function run in its thread is followed there by ``after`` (when set):
    all of them, transactions and single statements alike, pass through ``_execute`` (aiosqlite 0.20-0.22, the
    versions pyproject.toml allows; tests/storage/test_sqlite.py fails if a write through it goes untold)."""

    after: Callable[[sqlite3.Connection], None] | None = None

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        after = self.after
        if after is None:
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        conn = self._conn

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                after(conn)

        return await super()._execute(run)  # type: ignore[no-untyped-call]


# --- the store ------------------------------------------------------------------------------------------


class SharedQueries:
    """The Store methods whose SQL both backends run as written, one statement each through ``_fetch``,
    ``_insert_one``, ``_versioned_update`` or ``_list_page`` (the PostgreSQL store translates the placeholders,
    gateway/storage/postgres/_base.py): SqliteStore and PostgresStore inherit them, so each is written once. A
    method whose statement, or whose way of running it, differs between the two is each store's own."""

    async def _fetch(self, sql: str, params: Params) -> list[Any]:
        raise NotImplementedError

    async def _fetch_one(self, sql: str, params: Params, convert: Callable[[Any], T]) -> T | None:
        raise NotImplementedError

    async def _insert_one(self, sql: str, params: Params, unique: Mapping[str, str], parent: str) -> None:
        raise NotImplementedError

    async def _versioned_update(self, update: str, params: Params, exists: str, key: Params, name: str) -> None:
        raise NotImplementedError

    async def _list_page(
        self,
        query: _PagedQuery,
        scope: Params,
        after: str | None,
        limit: int,
        convert: Callable[[Row], T],
        key: Callable[[T], str],
    ) -> Page[T]:
        """One page of a keyset-paginated listing: ``scope`` fills the query's own parameters, then the
        rows come from the start or after the key ``after``, ``limit`` of them."""
        _check_limit(limit)
        if after is None:
            rows = await self._fetch(query.first, (*scope, limit + 1))
        else:
            rows = await self._fetch(query.after, (*scope, after, limit + 1))
        return _page(rows, limit, convert, key)

    # --- server-wide metadata ---------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        rows = await self._fetch("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def put_meta_if_absent(self, key: str, value: str) -> str:
        # The no-op DO UPDATE makes RETURNING yield the stored value whoever wrote it: one atomic statement.
        rows = await self._fetch(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = meta.value RETURNING value",
            (key, value),
        )
        return str(rows[0][0])

    # --- pools ------------------------------------------------------------------------------------------

    async def create_pool(self, pool: PoolRecord) -> None:
        await self._insert_one(_INSERT_POOL, _pool_params(pool), _POOL_UNIQUE, "pool")

    async def get_pool(self, pool_id: str) -> PoolRecord | None:
        return await self._fetch_one(_GET_POOL, (pool_id,), _pool)

    async def list_pools(self, after: str | None, limit: int) -> Page[PoolRecord]:
        return await self._list_page(_LIST_POOLS, (), after, limit, _pool, lambda p: p.id)

    async def update_pool(self, pool: PoolRecord) -> PoolRecord:
        params = (pool.name, _dumps(pool.settings), pool.created_at, pool.updated_at, pool.id, pool.version)
        await self._versioned_update(_UPDATE_POOL, params, "SELECT 1 FROM pools WHERE id = ?", (pool.id,), pool.id)
        return replace(pool, version=pool.version + 1)

    # --- clients ----------------------------------------------------------------------------------------

    async def create_client(self, client: ClientRecord) -> None:
        await self._insert_one(_INSERT_CLIENT, _client_params(client), _CLIENT_UNIQUE, "pool")

    async def get_client(self, client_id: str) -> ClientRecord | None:
        return await self._fetch_one(_GET_CLIENT, (client_id,), _client)

    async def list_clients(self, pool_id: str, after: str | None, limit: int) -> Page[ClientRecord]:
        return await self._list_page(_LIST_CLIENTS, (pool_id,), after, limit, _client, lambda c: c.id)

    async def update_client(self, client: ClientRecord) -> ClientRecord:
        params = (
            client.name,
            client.secret,
            _dumps(client.settings),
            client.created_at,
            client.updated_at,
            None if client.secrets is None else _dumps(client.secrets),
            client.pool_id,
            client.id,
            client.version,
        )
        exists = "SELECT 1 FROM clients WHERE pool_id = ? AND id = ?"
        await self._versioned_update(_UPDATE_CLIENT, params, exists, (client.pool_id, client.id), client.id)
        return replace(client, version=client.version + 1)

    # --- users ------------------------------------------------------------------------------------------

    async def get_user(self, pool_id: str, username_key: str) -> UserRecord | None:
        return await self._fetch_one(_GET_USER, (pool_id, username_key), _user)

    async def get_user_by_sub(self, pool_id: str, sub: str) -> UserRecord | None:
        return await self._fetch_one(_GET_USER_BY_SUB, (pool_id, sub), _user)

    async def get_user_by_alias(self, pool_id: str, attribute: str, value: str) -> UserRecord | None:
        return await self._fetch_one(_GET_USER_BY_ALIAS, (pool_id, attribute, value), _user)

    # --- groups -----------------------------------------------------------------------------------------

    async def create_group(self, group: GroupRecord) -> None:
        await self._insert_one(_INSERT_GROUP, _group_params(group), _GROUP_UNIQUE, "pool")

    async def get_group(self, pool_id: str, name: str) -> GroupRecord | None:
        return await self._fetch_one(_GET_GROUP, (pool_id, name), _group)

    async def update_group(self, group: GroupRecord) -> None:
        params = (
            group.description,
            group.role_arn,
            group.precedence,
            group.created_at,
            group.updated_at,
            group.pool_id,
            group.name,
        )
        if not await self._fetch(_UPDATE_GROUP, params):
            raise NotFound(group.name)

    async def list_groups(self, pool_id: str, after: str | None, limit: int) -> Page[GroupRecord]:
        return await self._list_page(_LIST_GROUPS, (pool_id,), after, limit, _group, lambda g: g.name)

    async def count_groups(self, pool_id: str) -> int:
        rows = await self._fetch("SELECT COUNT(*) FROM pool_groups WHERE pool_id = ?", (pool_id,))
        return int(rows[0][0])

    async def add_user_to_group(self, pool_id: str, username_key: str, group: str) -> None:
        await self._insert_one(
            "INSERT INTO group_members (pool_id, group_name, username_key) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (pool_id, group, username_key),
            {},
            "user or group",
        )

    async def list_users_in_group(self, pool_id: str, group: str, after: str | None, limit: int) -> Page[UserRecord]:
        return await self._list_page(_USERS_IN_GROUP, (pool_id, group), after, limit, _user, lambda u: u.username_key)

    # --- one-time codes ---------------------------------------------------------------------------------

    async def put_code(self, code: CodeRecord) -> None:
        params = (
            code.pool_id,
            code.username_key,
            code.purpose,
            code.code_hash,
            code.expires_at,
            code.attempts,
            _dumps(code.data),
        )
        await self._insert_one(_PUT_CODE, params, {}, "pool")

    async def get_code(self, pool_id: str, username_key: str, purpose: str) -> CodeRecord | None:
        return await self._fetch_one(_GET_CODE, (pool_id, username_key, purpose), _code)

    async def count_code_attempt(self, pool_id: str, username_key: str, purpose: str) -> int:
        rows = await self._fetch(
            "UPDATE codes SET attempts = attempts + 1 WHERE pool_id = ? AND username_key = ? AND purpose = ? "
            "RETURNING attempts",
            (pool_id, username_key, purpose),
        )
        return int(rows[0][0]) if rows else 0

    # --- tokens -----------------------------------------------------------------------------------------

    async def get_token_family(self, origin_jti: str) -> TokenFamilyRecord | None:
        return await self._fetch_one(
            f"SELECT {FAMILY_COLUMNS} FROM token_families WHERE origin_jti = ?", (origin_jti,), _family
        )

    async def revoke_token_family(self, origin_jti: str) -> bool:
        """True if this call revoked the family; False if it is unknown or was revoked already."""
        rows = await self._fetch(
            "UPDATE token_families SET revoked = 1 WHERE origin_jti = ? AND revoked = 0 RETURNING 1", (origin_jti,)
        )
        return bool(rows)

    async def list_token_sessions(self, pool_id: str, username_key: str, now: float) -> list[TokenFamilyRecord]:
        rows = await self._fetch(
            f"SELECT {_qualified(FAMILY_COLUMNS, 'f')}, {_qualified(FAMILY_SESSION_COLUMNS, 'f')} {_LIVE_SESSIONS} "
            f"{_SESSION_ORDER}",
            (pool_id, username_key, now, now),
        )
        return [_session_family(row) for row in rows]

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenRecord | None:
        return await self._fetch_one(
            f"SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = ?", (token_hash,), _refresh
        )

    # --- signing keys -----------------------------------------------------------------------------------

    async def list_signing_keys(self, pool_id: str) -> list[SigningKeyRecord]:
        rows = await self._fetch(
            f"SELECT {KEY_COLUMNS} FROM signing_keys WHERE pool_id = ? ORDER BY created_at DESC, kid DESC",
            (pool_id,),
        )
        return [_key(row) for row in rows]

    # --- IAM roles and OIDC providers ---------------------------------------------------------------------

    async def create_role(self, role: RoleRecord) -> None:
        await self._insert_one(_INSERT_ROLE, _role_params(role), _ROLE_UNIQUE, "role")

    async def get_role(self, name_key: str) -> RoleRecord | None:
        return await self._fetch_one(_GET_ROLE, (name_key,), _role)

    async def update_role(self, role: RoleRecord) -> None:
        params = (*_role_params(role)[1:], role.name_key)
        if not await self._fetch(_UPDATE_ROLE, params):
            raise NotFound(role.name_key)

    async def list_roles(self, after: str | None, limit: int) -> Page[RoleRecord]:
        return await self._list_page(_LIST_ROLES, (), after, limit, _role, lambda r: r.name_key)

    async def create_oidc_provider(self, provider: OidcProviderRecord) -> None:
        await self._insert_one(_INSERT_OIDC, _oidc_params(provider), _OIDC_UNIQUE, "provider")

    async def get_oidc_provider(self, url: str) -> OidcProviderRecord | None:
        return await self._fetch_one(f"SELECT {OIDC_COLUMNS} FROM iam_oidc_providers WHERE url = ?", (url,), _oidc)

    async def update_oidc_provider(self, provider: OidcProviderRecord) -> None:
        params = (*_oidc_params(provider)[1:], provider.url)
        if not await self._fetch(_UPDATE_OIDC, params):
            raise NotFound(provider.url)

    async def list_oidc_providers(self) -> list[OidcProviderRecord]:
        rows = await self._fetch(f"SELECT {OIDC_COLUMNS} FROM iam_oidc_providers ORDER BY url", ())
        return [_oidc(row) for row in rows]

    async def create_saml_provider(self, provider: SamlProviderRecord) -> None:
        params = (provider.name, provider.metadata, _dumps(provider.tags), provider.created_at, provider.updated_at)
        await self._insert_one(_INSERT_SAML, params, _SAML_UNIQUE, "provider")

    async def get_saml_provider(self, name: str) -> SamlProviderRecord | None:
        return await self._fetch_one(f"SELECT {SAML_COLUMNS} FROM iam_saml_providers WHERE name = ?", (name,), _saml)

    async def update_saml_provider(self, provider: SamlProviderRecord) -> None:
        params = (provider.metadata, _dumps(provider.tags), provider.updated_at, provider.name)
        if not await self._fetch(_UPDATE_SAML, params):
            raise NotFound(provider.name)

    async def list_saml_providers(self) -> list[SamlProviderRecord]:
        rows = await self._fetch(f"SELECT {SAML_COLUMNS} FROM iam_saml_providers ORDER BY name", ())
        return [_saml(row) for row in rows]

    # --- identity pools -----------------------------------------------------------------------------------

    async def create_identity_pool(self, pool: IdentityPoolRecord) -> None:
        await self._insert_one(_INSERT_ID_POOL, _id_pool_params(pool), _ID_POOL_UNIQUE, "identity pool")

    async def get_identity_pool(self, pool_id: str) -> IdentityPoolRecord | None:
        return await self._fetch_one(f"SELECT {ID_POOL_COLUMNS} FROM identity_pools WHERE id = ?", (pool_id,), _id_pool)

    async def list_identity_pools(self, after: str | None, limit: int) -> Page[IdentityPoolRecord]:
        return await self._list_page(_LIST_ID_POOLS, (), after, limit, _id_pool, lambda p: p.id)

    # --- signing keys of other issuers --------------------------------------------------------------------

    async def list_issuer_signing_keys(self, key_set: str) -> list[SigningKeyRecord]:
        rows = await self._fetch(
            f"SELECT {ISSUER_KEY_COLUMNS} FROM issuer_signing_keys WHERE key_set = ? "
            "ORDER BY created_at DESC, kid DESC",
            (key_set,),
        )
        return [_key(row) for row in rows]

    # --- the OAuth 2.0 provider's records ---------------------------------------------------------------

    async def use_oauth_record(self, kind: str, key_hash: str, now: float) -> tuple[OAuthRecord, bool] | None:
        # "used_at IS NULL" in the UPDATE decides the race: SQLite runs one writer at a time, and in PostgreSQL a
        # concurrent UPDATE waits for the row's lock, then checks the condition again on the committed row; either
        # way only the first finds it.
        first = await self._fetch_one(
            f"UPDATE oauth_records SET used_at = ? WHERE kind = ? AND key_hash = ? AND used_at IS NULL "
            f"RETURNING {OAUTH_COLUMNS}",
            (now, kind, key_hash),
            _oauth,
        )
        if first is not None:
            return first, True
        later = await self._fetch_one(
            f"UPDATE oauth_records SET replayed = 1 WHERE kind = ? AND key_hash = ? RETURNING {OAUTH_COLUMNS}",
            (kind, key_hash),
            _oauth,
        )
        return (later, False) if later is not None else None

    async def get_oauth_record(self, kind: str, key_hash: str) -> OAuthRecord | None:
        return await self._fetch_one(
            f"SELECT {OAUTH_COLUMNS} FROM oauth_records WHERE kind = ? AND key_hash = ?", (kind, key_hash), _oauth
        )

    async def get_oauth_record_with_user(
        self, kind: str, key_hash: str
    ) -> tuple[OAuthRecord, UserRecord | None] | None:
        rows = await self._fetch(_OAUTH_WITH_USER, (kind, key_hash))
        if not rows:
            return None
        row = rows[0]
        user_row = row[_OAUTH_WIDTH:]
        return _oauth(cast(Row, row[:_OAUTH_WIDTH])), _user(cast(Row, user_row)) if user_row[0] is not None else None

    async def take_oauth_record(self, kind: str, key_hash: str) -> OAuthRecord | None:
        return await self._fetch_one(
            f"DELETE FROM oauth_records WHERE kind = ? AND key_hash = ? RETURNING {OAUTH_COLUMNS}",
            (kind, key_hash),
            _oauth,
        )

    async def get_used_code(self, code_hash: str) -> UsedCodeRecord | None:
        return await self._fetch_one(
            "SELECT code_hash, origin_jti, expires_at FROM used_codes WHERE code_hash = ?",
            (code_hash,),
            lambda r: UsedCodeRecord(r[0], r[1], r[2]),
        )

    async def oauth_record_expiry(self, kind: str, key_hash: str) -> float | None:
        rows = await self._fetch(
            "SELECT expires_at FROM oauth_records WHERE kind = ? AND key_hash = ?", (kind, key_hash)
        )
        return float(rows[0][0]) if rows else None

    async def list_oauth_records(self, pool_id: str, username_key: str, kind: str) -> list[OAuthRecord]:
        rows = await self._fetch(
            f"SELECT {OAUTH_COLUMNS} FROM oauth_records WHERE pool_id = ? AND username_key = ? AND kind = ?",
            (pool_id, username_key, kind),
        )
        return [_oauth(row) for row in rows]

    async def delete_oauth_records(self, pool_id: str, username_key: str, kind: str) -> int:
        rows = await self._fetch(
            "DELETE FROM oauth_records WHERE pool_id = ? AND username_key = ? AND kind = ? RETURNING 1",
            (pool_id, username_key, kind),
        )
        return len(rows)

    # --- user pool domains ------------------------------------------------------------------------------

    async def create_domain(self, domain: DomainRecord) -> None:
        params = (domain.domain, domain.pool_id, _dumps(domain.settings), domain.created_at)
        await self._insert_one(
            f"INSERT INTO user_pool_domains ({DOMAIN_COLUMNS}) VALUES ({_placeholders(DOMAIN_COLUMNS)})",
            params,
            {"user_pool_domains.domain": "domain"},
            "pool",
        )

    async def get_domain(self, domain: str) -> DomainRecord | None:
        return await self._fetch_one(
            f"SELECT {DOMAIN_COLUMNS} FROM user_pool_domains WHERE domain = ?", (domain,), _domain
        )

    async def list_pool_domains(self, pool_id: str) -> list[DomainRecord]:
        rows = await self._fetch(
            f"SELECT {DOMAIN_COLUMNS} FROM user_pool_domains WHERE pool_id = ? ORDER BY domain", (pool_id,)
        )
        return [_domain(row) for row in rows]

    async def update_domain(self, domain: DomainRecord) -> None:
        rows = await self._fetch(
            "UPDATE user_pool_domains SET settings = ? WHERE domain = ? RETURNING 1",
            (_dumps(domain.settings), domain.domain),
        )
        if not rows:
            raise NotFound("domain")

    async def delete_domain(self, domain: str) -> bool:
        return bool(await self._fetch("DELETE FROM user_pool_domains WHERE domain = ? RETURNING 1", (domain,)))

    # --- resource servers -------------------------------------------------------------------------------

    async def create_resource_server(self, server: ResourceServerRecord) -> None:
        params = (
            server.pool_id,
            server.identifier,
            server.name,
            _dumps(server.scopes),
            server.created_at,
            server.updated_at,
        )
        await self._insert_one(
            f"INSERT INTO resource_servers ({SERVER_COLUMNS}) VALUES ({_placeholders(SERVER_COLUMNS)})",
            params,
            {"resource_servers.pool_id, resource_servers.identifier": "identifier"},
            "pool",
        )

    async def get_resource_server(self, pool_id: str, identifier: str) -> ResourceServerRecord | None:
        return await self._fetch_one(
            f"SELECT {SERVER_COLUMNS} FROM resource_servers WHERE pool_id = ? AND identifier = ?",
            (pool_id, identifier),
            _server,
        )

    async def update_resource_server(self, server: ResourceServerRecord) -> None:
        rows = await self._fetch(
            "UPDATE resource_servers SET name = ?, scopes = ?, updated_at = ? "
            "WHERE pool_id = ? AND identifier = ? RETURNING 1",
            (server.name, _dumps(server.scopes), server.updated_at, server.pool_id, server.identifier),
        )
        if not rows:
            raise NotFound("resource server")

    async def delete_resource_server(self, pool_id: str, identifier: str) -> bool:
        return bool(
            await self._fetch(
                "DELETE FROM resource_servers WHERE pool_id = ? AND identifier = ? RETURNING 1", (pool_id, identifier)
            )
        )

    async def list_resource_servers(self, pool_id: str, after: str | None, limit: int) -> Page[ResourceServerRecord]:
        return await self._list_page(_LIST_SERVERS, (pool_id,), after, limit, _server, lambda r: r.identifier)

    # --- hosted UI customization ------------------------------------------------------------------------

    async def put_ui_customization(self, record: UICustomizationRecord) -> None:
        params = (
            record.pool_id,
            record.client_id,
            record.css,
            record.image,
            record.image_type,
            record.created_at,
            record.updated_at,
        )
        await self._insert_one(
            f"INSERT INTO ui_customizations ({UI_COLUMNS}) VALUES ({_placeholders(UI_COLUMNS)}) "
            "ON CONFLICT (pool_id, client_id) DO UPDATE SET css = excluded.css, image = excluded.image, "
            "image_type = excluded.image_type, updated_at = excluded.updated_at",
            params,
            {},
            "pool",
        )

    async def get_ui_customization(self, pool_id: str, client_id: str) -> UICustomizationRecord | None:
        return await self._fetch_one(
            f"SELECT {UI_COLUMNS} FROM ui_customizations WHERE pool_id = ? AND client_id = ?",
            (pool_id, client_id),
            _ui,
        )

    async def delete_ui_customization(self, pool_id: str, client_id: str) -> bool:
        return bool(
            await self._fetch(
                "DELETE FROM ui_customizations WHERE pool_id = ? AND client_id = ? RETURNING 1", (pool_id, client_id)
            )
        )

    # --- passkeys -----------------------------------------------------------------------------------------

    async def add_webauthn_credential(self, credential: WebAuthnCredentialRecord) -> None:
        c = credential
        params = (
            c.pool_id,
            c.credential_id,
            c.username_key,
            c.public_key,
            c.sign_count,
            c.friendly_name,
            c.relying_party,
            c.attachment,
            _dumps(c.transports),
            c.created_at,
        )
        await self._insert_one(
            f"INSERT INTO webauthn_credentials ({WEBAUTHN_COLUMNS}) VALUES ({_placeholders(WEBAUTHN_COLUMNS)})",
            params,
            _WEBAUTHN_UNIQUE,
            "user",
        )

    async def get_webauthn_credential(self, pool_id: str, credential_id: str) -> WebAuthnCredentialRecord | None:
        return await self._fetch_one(
            f"SELECT {WEBAUTHN_COLUMNS} FROM webauthn_credentials WHERE pool_id = ? AND credential_id = ?",
            (pool_id, credential_id),
            _webauthn,
        )

    async def list_webauthn_credentials(self, pool_id: str, username_key: str) -> list[WebAuthnCredentialRecord]:
        rows = await self._fetch(
            f"SELECT {WEBAUTHN_COLUMNS} FROM webauthn_credentials WHERE pool_id = ? AND username_key = ? "
            "ORDER BY created_at, credential_id",
            (pool_id, username_key),
        )
        return [_webauthn(row) for row in rows]

    async def delete_webauthn_credential(self, pool_id: str, username_key: str, credential_id: str) -> bool:
        rows = await self._fetch(
            "DELETE FROM webauthn_credentials WHERE pool_id = ? AND username_key = ? AND credential_id = ? RETURNING 1",
            (pool_id, username_key, credential_id),
        )
        return bool(rows)

    # --- devices ------------------------------------------------------------------------------------------

    async def update_device(self, device: DeviceRecord) -> None:
        params = (
            device.name,
            int(device.remembered),
            device.updated_at,
            device.last_authenticated_at,
            device.last_ip,
            device.pool_id,
            device.device_key,
        )
        if not await self._fetch(_UPDATE_DEVICE, params):
            raise NotFound(device.device_key)

    async def delete_device(self, pool_id: str, device_key: str) -> bool:
        rows = await self._fetch(
            "DELETE FROM devices WHERE pool_id = ? AND device_key = ? RETURNING 1", (pool_id, device_key)
        )
        return bool(rows)

    async def touch_device(self, pool_id: str, device_key: str, authenticated_at: float, last_ip: str | None) -> bool:
        rows = await self._fetch(
            "UPDATE devices SET last_authenticated_at = ?, last_ip = COALESCE(?, last_ip) "
            "WHERE pool_id = ? AND device_key = ? RETURNING 1",
            (authenticated_at, last_ip, pool_id, device_key),
        )
        return bool(rows)

    async def set_device_remembered(self, pool_id: str, device_key: str, remembered: bool, updated_at: float) -> bool:
        rows = await self._fetch(
            "UPDATE devices SET remembered = ?, updated_at = ? WHERE pool_id = ? AND device_key = ? RETURNING 1",
            (int(remembered), updated_at, pool_id, device_key),
        )
        return bool(rows)

    # --- threat protection ------------------------------------------------------------------------------

    async def put_risk_configuration(self, record: RiskConfigurationRecord) -> None:
        await self._insert_one(
            "INSERT INTO risk_configurations (pool_id, client_id, config, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (pool_id, client_id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
            (record.pool_id, record.client_id or "", _dumps(record.config), record.updated_at),
            {},
            "pool",
        )

    async def get_risk_configuration(self, pool_id: str, client_id: str | None) -> RiskConfigurationRecord | None:
        rows = await self._fetch(
            "SELECT config, updated_at FROM risk_configurations WHERE pool_id = ? AND client_id = ?",
            (pool_id, client_id or ""),
        )
        if not rows:
            return None
        return RiskConfigurationRecord(pool_id, client_id or None, _loads(rows[0][0]), rows[0][1])

    async def add_auth_event(self, event: AuthEventRecord) -> None:
        await self._insert_one(
            "INSERT INTO auth_events (pool_id, username_key, event_id, created_at, event) VALUES (?, ?, ?, ?, ?)",
            (event.pool_id, event.username_key, event.event_id, event.created_at, _dumps(event.event)),
            _AUTH_EVENT_UNIQUE,
            "user",
        )

    async def get_auth_event(self, pool_id: str, event_id: str) -> AuthEventRecord | None:
        return await self._fetch_one(
            f"SELECT {_AUTH_EVENT_COLUMNS} FROM auth_events WHERE pool_id = ? AND event_id = ?",
            (pool_id, event_id),
            _auth_event,
        )

    async def update_auth_event(self, event: AuthEventRecord) -> bool:
        return bool(
            await self._fetch(
                "UPDATE auth_events SET created_at = ?, event = ? WHERE pool_id = ? AND event_id = ? RETURNING 1",
                (event.created_at, _dumps(event.event), event.pool_id, event.event_id),
            )
        )

    async def list_auth_events(
        self, pool_id: str, username_key: str, before: str | None, limit: int
    ) -> Page[AuthEventRecord]:
        _check_limit(limit)
        select = f"SELECT {_AUTH_EVENT_COLUMNS} FROM auth_events WHERE pool_id = ? AND username_key = ?"
        if before is None:
            rows = await self._fetch(select + " ORDER BY event_id DESC LIMIT ?", (pool_id, username_key, limit + 1))
        else:
            rows = await self._fetch(
                select + " AND event_id < ? ORDER BY event_id DESC LIMIT ?", (pool_id, username_key, before, limit + 1)
            )
        return _page(rows, limit, _auth_event, lambda e: e.event_id)

    # --- federation -------------------------------------------------------------------------------------

    async def get_identity_provider(self, pool_id: str, name: str) -> IdentityProviderRecord | None:
        return await self._fetch_one(
            f"SELECT {IDP_COLUMNS} FROM identity_providers WHERE pool_id = ? AND name = ?", (pool_id, name), _idp
        )

    async def get_identity_provider_by_identifier(self, pool_id: str, identifier: str) -> IdentityProviderRecord | None:
        return await self._fetch_one(
            f"SELECT {_qualified(IDP_COLUMNS, 'p')} FROM idp_identifiers i JOIN identity_providers p "
            "ON p.pool_id = i.pool_id AND p.name = i.provider_name WHERE i.pool_id = ? AND i.identifier = ?",
            (pool_id, identifier),
            _idp,
        )

    async def list_identity_providers(
        self, pool_id: str, after: str | None, limit: int
    ) -> Page[IdentityProviderRecord]:
        return await self._list_page(_LIST_IDPS, (pool_id,), after, limit, _idp, lambda p: p.name)

    async def put_provider_link(self, link: ProviderLinkRecord) -> None:
        await self._insert_one(
            f"INSERT INTO provider_links ({LINK_COLUMNS}) VALUES ({_placeholders(LINK_COLUMNS)})",
            (
                link.pool_id,
                link.provider_name,
                link.attribute_name,
                link.attribute_value,
                link.username_key,
                link.created_at,
            ),
            _LINK_UNIQUE,
            "user",
        )

    async def get_provider_link(
        self, pool_id: str, provider_name: str, attribute_name: str, attribute_value: str
    ) -> ProviderLinkRecord | None:
        return await self._fetch_one(
            f"SELECT {LINK_COLUMNS} FROM provider_links WHERE pool_id = ? AND provider_name = ? "
            "AND attribute_name = ? AND attribute_value = ?",
            (pool_id, provider_name, attribute_name, attribute_value),
            _provider_link,
        )

    async def list_provider_links(self, pool_id: str, username_key: str) -> list[ProviderLinkRecord]:
        rows = await self._fetch(
            f"SELECT {LINK_COLUMNS} FROM provider_links WHERE pool_id = ? AND username_key = ? "
            "ORDER BY provider_name, attribute_name, attribute_value",
            (pool_id, username_key),
        )
        return [_provider_link(row) for row in rows]

    async def delete_provider_link(
        self, pool_id: str, provider_name: str, attribute_name: str, attribute_value: str
    ) -> ProviderLinkRecord | None:
        return await self._fetch_one(
            "DELETE FROM provider_links WHERE pool_id = ? AND provider_name = ? AND attribute_name = ? "
            f"AND attribute_value = ? RETURNING {LINK_COLUMNS}",
            (pool_id, provider_name, attribute_name, attribute_value),
            _provider_link,
        )

    async def put_federation_request(self, request: FederationRequestRecord) -> None:
        await self._insert_one(
            "INSERT INTO federation_requests (state_hash, pool_id, provider_name, data, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (request.state_hash, request.pool_id, request.provider_name, _dumps(request.data), request.expires_at),
            {"federation_requests.state_hash": "id"},
            "pool",
        )

    async def take_federation_request(self, state_hash: str) -> FederationRequestRecord | None:
        return await self._fetch_one(
            "DELETE FROM federation_requests WHERE state_hash = ? "
            "RETURNING state_hash, pool_id, provider_name, data, expires_at",
            (state_hash,),
            lambda r: FederationRequestRecord(r[0], r[1], r[2], _loads(r[3]), r[4]),
        )

    async def mark_assertion_seen(self, key: str, expires_at: float) -> bool:
        rows = await self._fetch(
            "INSERT INTO seen_assertions (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING 1",
            (key, expires_at),
        )
        return bool(rows)

    # --- managed login branding ---------------------------------------------------------------------------

    async def create_managed_login_branding(self, record: ManagedLoginBrandingRecord) -> None:
        r = record
        params = (
            r.branding_id,
            r.pool_id,
            r.client_id,
            int(r.use_cognito_provided_values),
            None if r.settings is None else _dumps(r.settings),
            _dumps(r.assets),
            r.created_at,
            r.updated_at,
            r.version,
        )
        await self._insert_one(_INSERT_BRANDING, params, _BRANDING_UNIQUE, "client")

    async def get_managed_login_branding(self, pool_id: str, branding_id: str) -> ManagedLoginBrandingRecord | None:
        return await self._fetch_one(
            f"SELECT {BRANDING_COLUMNS} FROM managed_login_brandings WHERE pool_id = ? AND id = ?",
            (pool_id, branding_id),
            _branding,
        )

    async def get_managed_login_branding_by_client(
        self, pool_id: str, client_id: str
    ) -> ManagedLoginBrandingRecord | None:
        return await self._fetch_one(
            f"SELECT {BRANDING_COLUMNS} FROM managed_login_brandings WHERE pool_id = ? AND client_id = ?",
            (pool_id, client_id),
            _branding,
        )

    async def delete_managed_login_branding(self, pool_id: str, branding_id: str) -> bool:
        return bool(
            await self._fetch(
                "DELETE FROM managed_login_brandings WHERE pool_id = ? AND id = ? RETURNING 1", (pool_id, branding_id)
            )
        )

    # --- terms documents -----------------------------------------------------------------------------------

    async def create_terms(self, record: TermsRecord) -> None:
        await self._insert_one(_INSERT_TERMS, _terms_params(record), _TERMS_UNIQUE, "client")

    async def get_terms(self, pool_id: str, terms_id: str) -> TermsRecord | None:
        return await self._fetch_one(
            f"SELECT {TERMS_COLUMNS} FROM terms WHERE pool_id = ? AND id = ?", (pool_id, terms_id), _terms
        )

    async def get_terms_by_client(self, pool_id: str, client_id: str, name: str) -> TermsRecord | None:
        return await self._fetch_one(
            f"SELECT {TERMS_COLUMNS} FROM terms WHERE pool_id = ? AND client_id = ? AND name = ?",
            (pool_id, client_id, name),
            _terms,
        )

    async def list_terms(self, pool_id: str, after_id: str | None, limit: int) -> list[TermsRecord]:
        _check_limit(limit)  # SQLite reads a negative LIMIT as none, PostgreSQL refuses it
        rows = await self._fetch(
            f"SELECT {TERMS_COLUMNS} FROM terms WHERE pool_id = ? AND id > ? ORDER BY id LIMIT ?",
            (pool_id, after_id or "", limit),
        )
        return [_terms(r) for r in rows]

    async def list_client_terms(self, pool_id: str, client_id: str) -> list[TermsRecord]:
        rows = await self._fetch(
            f"SELECT {TERMS_COLUMNS} FROM terms WHERE pool_id = ? AND client_id = ? ORDER BY name",
            (pool_id, client_id),
        )
        return [_terms(r) for r in rows]

    async def delete_terms(self, pool_id: str, terms_id: str) -> bool:
        return bool(
            await self._fetch("DELETE FROM terms WHERE pool_id = ? AND id = ? RETURNING 1", (pool_id, terms_id))
        )

    # --- user import jobs -------------------------------------------------------------------------------

    async def create_user_import_job(self, job: UserImportJobRecord) -> None:
        await self._insert_one(
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
        return await self._list_page(_LIST_IMPORT_JOBS, (pool_id,), after, limit, _import_job, lambda j: j.list_key)

    async def add_user_import_chunk(self, pool_id: str, job_id: str, upload_id: str, seq: int, data: bytes) -> None:
        await self._insert_one(
            "INSERT INTO user_import_chunks (pool_id, job_id, upload_id, seq, data) VALUES (?, ?, ?, ?, ?)",
            (pool_id, job_id, upload_id, seq, data),
            {},
            "job",
        )

    async def read_user_import_chunk(self, pool_id: str, job_id: str, upload_id: str, seq: int) -> bytes | None:
        rows = await self._fetch(
            "SELECT data FROM user_import_chunks WHERE pool_id = ? AND job_id = ? AND upload_id = ? AND seq = ?",
            (pool_id, job_id, upload_id, seq),
        )
        return bytes(rows[0][0]) if rows else None

    # --- client ID metadata documents (CIMD) -----------------------------------------------------------------

    async def create_cimd_policy(self, record: CimdPolicyRecord) -> None:
        await self._insert_one(_INSERT_CIMD_POLICY, _cimd_policy_params(record), _CIMD_POLICY_UNIQUE, "pool")

    async def get_cimd_policy(self, pool_id: str, policy_id: str) -> CimdPolicyRecord | None:
        return await self._fetch_one(
            f"SELECT {CIMD_POLICY_COLUMNS} FROM cimd_policies WHERE pool_id = ? AND id = ?",
            (pool_id, policy_id),
            _cimd_policy,
        )

    async def list_cimd_policies(self, pool_id: str, after: str | None, limit: int) -> Page[CimdPolicyRecord]:
        return await self._list_page(_LIST_CIMD_POLICIES, (pool_id,), after, limit, _cimd_policy, lambda p: p.policy_id)

    async def cimd_policies_for_matching(self, pool_id: str | None) -> list[CimdPolicyRecord]:
        if pool_id is None:
            rows = await self._fetch(f"SELECT {CIMD_POLICY_COLUMNS} FROM cimd_policies ORDER BY pool_id, id", ())
        else:
            rows = await self._fetch(
                f"SELECT {CIMD_POLICY_COLUMNS} FROM cimd_policies WHERE pool_id = ? ORDER BY id", (pool_id,)
            )
        return [_cimd_policy(r) for r in rows]

    async def put_cimd_document(self, record: CimdDocumentRecord) -> None:
        r = record
        await self._insert_one(
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
        return await self._list_page(_LIST_CIMD_DOCUMENTS, (policy_id,), after, limit, _cimd_document, lambda d: d.url)


class SqliteStore(SharedQueries):
    """:class:`~gateway.storage.base.Store` on one SQLite file (or ``":memory:"``). Create with :meth:`open`."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        reader: sqlite3.Connection | None = None,
        writer: sqlite3.Connection | None = None,
    ) -> None:
        self._db = db
        self._reader = reader
        self._lock = asyncio.Lock()
        self._closed = False
        self._writer = writer
        # The loop whose current turn the reader's read snapshot belongs to, if one is open (see _read_now).
        self._snapshot_loop: asyncio.AbstractEventLoop | None = None
        self._writes_since_checkpoint = 0
        self._checkpoint: asyncio.Task[None] | None = None
        # Until when event-loop writes queue on the store lock: another process took SQLite's lock lately.
        self._contended_until = 0.0
        # The file this store opened, by device and inode: a file deleted or replaced under a running
        # server keeps taking writes into the old inode, which vanish at restart. Health checks compare.
        self._path: str | None = None
        self._identity: tuple[int, int] | None = None
        # Users' change stamps, and the sessions read lately: origin_jti -> (the user's slot, its stamp when
        # read, the row). See get_token_family_with_user. None: nothing kept (a store opened without a file).
        self._user_stamps: ChangeStamps | None = None
        self._loop_changes: _UserChanges | None = None
        self._families: KeptRows[str, tuple[int, int, Row]] = KeptRows(FAMILY_CACHE_SIZE, FAMILY_CACHE_BYTES)
        # Users' groups read lately: (pool_id, username_key) -> (the user's stamp when read, the rows).
        self._groups: KeptRows[tuple[str, str], tuple[int, list[Row]]] = KeptRows(GROUPS_CACHE_SIZE, GROUPS_CACHE_BYTES)

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SqliteStore:
        """Connect, configure the connection and bring the schema up to date."""
        # isolation_level=None: Python's sqlite3 must not open transactions on its own; we issue BEGIN
        # IMMEDIATE ourselves. Every statement here is a constant string, so the statement cache holds
        # each prepared once for the life of the connection.
        name = os.fspath(path)
        db = _Connection(lambda: sqlite3.connect(name, isolation_level=None, cached_statements=256), iter_chunk_size=64)
        await db
        try:
            await db.execute_fetchall(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await _enable_wal(db)
            await db.execute_fetchall("PRAGMA synchronous = NORMAL")
            await db.execute_fetchall("PRAGMA foreign_keys = ON")
            await db.execute_fetchall(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            await _migrate(db, os.fspath(path))
        except BaseException:
            await db.close()
            raise
        store = cls(db, _open_reader(path), _open_writer(path))
        if store._reader is not None:
            store._path = os.fspath(path)
            store._identity = _file_identity(store._path)
            try:
                await store._watch_users(db, ChangeStamps.beside(store._path))
            except BaseException:
                await store.close()
                raise
        return store

    async def _watch_users(self, db: _Connection, stamps: ChangeStamps) -> None:
        """Stamp every change to a user, or to a user's token families or groups, from both writing connections,
        in the file every process of this database maps; and keep what was read lately of sessions and groups
        (get_token_family_with_user, list_groups_for_user)."""
        stamps.on_news = self._end_snapshot
        in_thread = _UserChanges(stamps)
        await db._execute(in_thread.install, db._conn)
        db.after = in_thread.settle
        if self._writer is not None:
            self._loop_changes = _UserChanges(stamps)
            self._loop_changes.install(self._writer)
        self._user_stamps = stamps

    async def health_problem(self, min_free_bytes: int = 0) -> str | None:
        if self._closed:
            return "the store is closed"
        if self._path is not None and _file_identity(self._path) != self._identity:
            return f"the database file {self._path} was deleted or replaced while the server runs"
        if self._path is not None and min_free_bytes:
            # A full disk fails every write ("database or disk is full") while reads still answer.
            directory = os.path.dirname(self._path) or "."
            try:
                found = os.statvfs(directory)
            except OSError as exc:
                return f"the data directory {directory} cannot be examined: {exc.strerror or exc}"
            free = found.f_bavail * found.f_frsize
            if free < min_free_bytes:
                return f"the disk of {directory} is full: {free} bytes free, {min_free_bytes} needed"
        try:
            await self._fetch("SELECT 1 FROM schema_migrations LIMIT 1", ())
        except sqlite3.Error as exc:
            return f"the database does not answer: {exc}"
        return None

    async def close(self) -> None:
        async with self._lock:
            if not self._closed:
                self._closed = True
                await self._db.close()
                if self._reader is not None:
                    self._end_snapshot()
                    # None from now on: a snapshot's end still queued on the loop then has nothing to do.
                    reader, self._reader = self._reader, None
                    reader.close()
                if self._writer is not None:
                    self._writer.close()

    # --- plumbing ---------------------------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Params) -> list[Row]:
        """One statement in autocommit mode: atomic by itself, kept out of other coroutines' transactions.

        A SELECT runs on the reader connection, in this thread: an indexed read in WAL mode takes a few
        microseconds and never waits for writers, so it costs less than the hand-off to aiosqlite's thread
        and the lock (which made every read queue behind every other). The reader sees only committed rows.
        """
        if self._reader is not None and sql.startswith("SELECT"):
            rows = self._read_now(sql, params)
            if rows is not None:
                return rows
        return await self._fetch_waiting(sql, params)

    async def _fetch_waiting(self, sql: str, params: Params) -> list[Row]:
        """The statement on aiosqlite's connection, in its thread, in turn behind the store lock."""
        async with self._lock:
            return list(await self._db.execute_fetchall(sql, params))

    def _read_now(self, sql: str, params: Params) -> list[Row] | None:
        """A SELECT on the reader connection, in this thread; None when there is no reader or it is busy (a
        checkpoint or recovery holds the WAL index): then :meth:`_fetch_waiting`. The hottest reads call the
        two themselves, which spares them a coroutine.

        The reads of one turn of the event loop share one read transaction: in WAL mode each transaction
        takes and drops a lock on the shared-memory index (two ``fcntl`` calls, as much as the read itself),
        and a loaded server answers a few dozen requests a turn. The snapshot is as fresh as one taken per
        read for every caller: it begins after the turn's events were taken in, so it holds every write a
        request of this turn can know of (another process's answers came before its request did; a write of
        aiosqlite's thread wakes its caller a turn later), and a write of this process on the event loop
        ends it (:meth:`_on_loop_writer`), so a request reads what it wrote. It ends first thing next turn.
        """
        reader = self._reader
        if reader is None:
            return None
        try:
            loop = self._snapshot_loop
            # None open, or one left by a loop that stopped before its next turn (tests, commands). Not
            # asyncio.get_running_loop() on every read: in Python 3.11 it makes a getpid() system call.
            if loop is None or not loop.is_running():
                self._end_snapshot()
                reader.execute("BEGIN")  # deferred: the snapshot is taken by the first read
                self._snapshot_loop = loop = asyncio.get_running_loop()
                loop.call_soon(self._end_snapshot)
            return reader.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            self._end_snapshot()
            return None

    def end_read_snapshot(self) -> None:
        """Let the next read see every commit made so far: a change stamp read since the turn's snapshot began
        may announce a commit the snapshot does not hold (gateway/services/change_stamp.py)."""
        self._end_snapshot()

    def _end_snapshot(self) -> None:
        """End the reader's read transaction, so the next read sees every commit. (Checked on the connection,
        not only by the flag: a transaction left open, however, would make every later BEGIN fail.)"""
        self._snapshot_loop = None
        reader = self._reader
        if reader is not None and reader.in_transaction:
            reader.execute("ROLLBACK")  # a read transaction: nothing to keep

    async def _versioned_update(self, update: str, params: Params, exists: str, key: Params, name: str) -> None:
        """A compare-and-set UPDATE (its WHERE clause checks the record's version); when it changed no row,
        ``exists`` (a SELECT by ``key``) tells which error to raise: VersionConflict, or NotFound."""
        async with self._lock:
            if await self._db.execute_fetchall(update, params):
                return
            found = await self._db.execute_fetchall(exists, key)
        raise VersionConflict(name) if found else NotFound(name)

    async def _fetch_one(self, sql: str, params: Params, convert: Callable[[Row], T]) -> T | None:
        rows = await self._fetch(sql, params)
        return convert(rows[0]) if rows else None

    async def _insert_one(self, sql: str, params: Params, unique: Mapping[str, str], parent: str) -> None:
        async with self._lock:
            await _insert(self._db, sql, params, unique, parent)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (cancellation included)."""
        async with self._lock:
            try:
                # BEGIN inside the try: if the caller is cancelled while BEGIN waits for the lock, aiosqlite's
                # thread still runs it, and the ROLLBACK queued behind it must close that transaction.
                await self._db.execute_fetchall("BEGIN IMMEDIATE")
                yield self._db
                await self._db.commit()
            except BaseException:
                await self._db.rollback()
                raise

    async def _write_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work`` inside ``BEGIN IMMEDIATE`` ... ``COMMIT``, for the small writes every sign-in makes (a
        challenge session stored and taken, a token family and its refresh token).

        It runs on the event loop, on a writing connection of its own that never waits: such a write takes
        tens of microseconds, less than handing it to aiosqlite's thread and back (two wake-ups, and the GIL
        passed back and forth). When anything else holds SQLite's write lock (another process, or this one's
        main connection in a transaction of its own), ``BEGIN`` fails at once and the same transaction runs on
        aiosqlite's thread instead, behind the store lock, where waiting is harmless. ``work`` must not await.

        The fast path takes no store lock: it never yields, so no other coroutine can use the writer while it
        runs, and SQLite's own lock keeps it out of the main connection's transactions. Taking the store lock
        here made every write queue behind every slow one: asyncio.Lock hands itself to its waiters in order,
        one per turn of the event loop, and a newcomer that finds waiters queues behind them even while the lock
        is free, so one checkpoint (~10 ms on aiosqlite's thread) left a queue that never drained under load --
        every later write then cost a suspension and a wake-up (measured: ~8% of the code flow's throughput).
        Only a running checkpoint is waited for (:meth:`_checkpoint_finished`), and a write that found SQLite busy
        and waits on aiosqlite's thread (:meth:`_behind_a_waiting_write`).
        """
        if self._checkpoint is not None:
            await self._checkpoint_finished()
        if not self._behind_a_waiting_write():
            done, result = self._transaction_on_loop(work)
            if done:
                return cast(T, result)
        async with self._lock:
            # Its turn: SQLite's lock may be free again by now.
            done, result = self._transaction_on_loop(work)
            if done:
                return cast(T, result)

            # aiosqlite's own connection, used only from its thread (where this runs), as its methods do.
            def run() -> T:
                conn: sqlite3.Connection = self._db._conn
                conn.execute("BEGIN IMMEDIATE")
                return _commit_or_roll_back(conn, work)

            # Queued as one function: a cancelled caller cannot leave the transaction half done.
            queued: T = await self._db._execute(run)  # type: ignore[no-untyped-call]
            return queued

    async def _insert_on_loop(self, sql: str, params: Params, unique: Mapping[str, str], parent: str) -> None:
        """One INSERT, atomic by itself (autocommit), on the event-loop writer as :meth:`_write_transaction`
        runs its work: for the rows every authorization makes (a code, a stored request, a session). When
        another process holds the write lock the INSERT fails at once, having written nothing, and runs on
        aiosqlite's thread instead, where waiting is harmless. Like the transactions, it takes the store lock only
        on that path."""
        if self._checkpoint is not None:
            await self._checkpoint_finished()
        if not self._behind_a_waiting_write() and self._insert_on_loop_now(sql, params, unique, parent):
            return
        async with self._lock:
            if not self._insert_on_loop_now(sql, params, unique, parent):
                await _insert(self._db, sql, params, unique, parent)

    def _behind_a_waiting_write(self) -> bool:
        """Whether event-loop writes should queue in order on the store lock: while it is held (by a write
        waiting on aiosqlite's thread for SQLite's lock, or a transaction of the main connection), and for
        CONTENDED_SECONDS after SQLite's lock was last found taken by another process. Otherwise they would take
        SQLite's lock from under the waiting write each time it is free: its busy handler sleeps longer and
        longer between tries (up to 100 ms), and it waited hundreds of milliseconds (measured with two workers on
        the code flow: p99 ~250 ms; ~100 ms with this, ~85 ms when every write took the lock, at ~5% less
        throughput). A lone process never finds SQLite's lock taken by another, and never queues."""
        return self._lock.locked() or time.monotonic() < self._contended_until

    def _on_loop_writer(self, write: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """``write`` on the event-loop writer, if SQLite's write lock is free: (True, its result); (False, None)
        when another connection holds it (``write`` failed at once, having written nothing) or there is no such
        writer."""
        writer = self._writer
        if writer is None:
            return False, None
        try:
            result = write(writer)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorname not in _BUSY_ERRORS:
                raise
            self._contended_until = time.monotonic() + CONTENDED_SECONDS
            return False, None
        finally:
            if self._loop_changes is not None:
                self._loop_changes.settle(writer)
        self._end_snapshot()  # this turn's later reads see this write
        self._after_loop_write()
        return True, result

    def _transaction_on_loop(self, work: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """``work`` in a transaction of the event-loop writer (:meth:`_on_loop_writer`)."""

        def begin_then_work(writer: sqlite3.Connection) -> T:
            writer.execute("BEGIN IMMEDIATE")  # busy here: nothing begun
            return _commit_or_roll_back(writer, work)

        return self._on_loop_writer(begin_then_work)

    def _insert_on_loop_now(self, sql: str, params: Params, unique: Mapping[str, str], parent: str) -> bool:
        """The INSERT on the event-loop writer (:meth:`_on_loop_writer`): whether it was made."""
        return self._on_loop_writer(lambda writer: _insert_sync(writer, sql, params, unique, parent))[0]

    def _after_loop_write(self) -> None:
        """Every WAL_CHECKPOINT_EVERY commits of the event-loop writer, a passive checkpoint on aiosqlite's
        thread keeps the WAL file from growing (that writer's automatic checkpoint is off)."""
        self._writes_since_checkpoint += 1
        if self._writes_since_checkpoint < WAL_CHECKPOINT_EVERY or self._checkpoint is not None:
            return
        self._writes_since_checkpoint = 0
        self._checkpoint = asyncio.get_running_loop().create_task(self._run_checkpoint())

    async def _checkpoint_finished(self) -> None:
        """Wait while a checkpoint runs. A passive checkpoint copies the WAL as it was when it began; writes
        made meanwhile would be left in it, and SQLite restarts the WAL from its beginning only once all of it
        has been copied, so under a steady load it would never restart and would grow without bound. Every
        waiting writer wakes at once when it ends (a task's callbacks run in one turn of the loop, unlike a
        lock's hand-over from waiter to waiter), and the first to commit restarts the WAL. Cancelling a writer
        here does not cancel the checkpoint."""
        while (checkpoint := self._checkpoint) is not None:
            await asyncio.wait((checkpoint,))

    async def _run_checkpoint(self) -> None:
        try:
            async with self._lock:
                if not self._closed:
                    await self._db.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # a checkpoint that could not run now is retried after the next round of writes
        finally:
            self._checkpoint = None

    # --- pools ------------------------------------------------------------------------------------------

    async def delete_pool(self, pool_id: str) -> bool:
        # The pool's token families and users first, with what hangs off them (refresh tokens; aliases, search
        # rows, group memberships...: a dozen rows a user), in short transactions of _DELETE_BATCH: one cascade
        # over a large pool held the write lock for seconds (8 s for 100,000 users), stalling every other pool's
        # writes here and failing other processes' past the busy timeout. Then the pool row, whose ON DELETE
        # CASCADE reaches the rest (and whatever was added meanwhile).
        for table in ("token_families", "users"):
            while True:
                async with self._transaction() as db:
                    deleted = list(
                        await db.execute_fetchall(
                            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE pool_id = ? LIMIT ?) "
                            "RETURNING 1",
                            (pool_id, _DELETE_BATCH),
                        )
                    )
                if len(deleted) < _DELETE_BATCH:
                    break
        return bool(await self._fetch("DELETE FROM pools WHERE id = ? RETURNING 1", (pool_id,)))

    # --- clients ----------------------------------------------------------------------------------------

    async def delete_client(self, pool_id: str, client_id: str) -> bool:
        async with self._transaction() as db:
            if not await db.execute_fetchall(_DELETE_CLIENT, (pool_id, client_id)):
                return False
            # One UPDATE through token_families_by_app_client (migration 0026 says why an index and not a scan); a
            # family stored after this commits is refused by its own insert (_CLIENT_EXISTS).
            await db.execute_fetchall(_REVOKE_CLIENT_FAMILIES, (client_id, pool_id))
        return True

    # --- users ------------------------------------------------------------------------------------------

    @staticmethod
    async def _insert_alias(db: aiosqlite.Connection, pool_id: str, attribute: str, value: str, key: str) -> None:
        # One statement per alias (there are at most a few) so a conflict names its attribute.
        unique = {_ALIAS_UNIQUE_COLUMNS: f"alias:{attribute}"}
        await _insert(db, _INSERT_ALIAS, (pool_id, attribute, value, key), unique, "user")

    async def create_user(
        self,
        user: UserRecord,
        *,
        free_aliases: Collection[tuple[str, str]] = (),
        free_usernames: Collection[str] = (),
    ) -> None:
        async with self._transaction() as db:
            # Inside BEGIN IMMEDIATE: no other writer can take a checked name between the check and the insert.
            for attribute, value in free_aliases:
                if await db.execute_fetchall(_ALIAS_HELD, (user.pool_id, attribute, value)):
                    raise AlreadyExists("username")
            await _check_free_usernames(db, user, free_usernames)
            await _insert(db, _INSERT_USER, _user_params(user), _USER_UNIQUE, "pool")
            for attribute, value in sorted(user.aliases.items()):
                await self._insert_alias(db, user.pool_id, attribute, value, user.username_key)
            await db.executemany(
                _INSERT_SEARCH,
                [
                    (user.pool_id, user.username_key, name, value, value.lower())
                    for name, value in user_search_values(user).items()
                ],
            )

    async def get_user_with_groups(
        self, pool_id: str, username_key: str
    ) -> tuple[UserRecord, list[GroupRecord]] | None:
        rows = await self._fetch(_USER_WITH_GROUPS, (pool_id, username_key))
        if not rows:
            return None
        row = rows[0]
        return _user(cast(Row, row[:-1])), [_group(cast(Row, tuple(g))) for g in _loads(row[-1])]

    async def update_user(self, user: UserRecord, *, free_usernames: Collection[str] = ()) -> UserRecord:
        """Writes every field but the key (pool_id, username_key); the alias index follows ``user.aliases``."""
        key = (user.pool_id, user.username_key)
        row = _user_params(user)
        # The SET list is the insert's column list minus pool_id, username_key and version.
        params = (row[1], *row[3:17], *key, user.version)
        async with self._transaction() as db:
            await _check_free_usernames(db, user, free_usernames)
            try:
                updated = await db.execute_fetchall(_UPDATE_USER, params)
            except sqlite3.IntegrityError as exc:
                error = _translate(exc, _USER_UNIQUE, "pool")
                if error is exc:
                    raise
                raise error from exc
            if not updated:
                exists = await db.execute_fetchall(_USER_EXISTS, key)
                raise VersionConflict(user.username_key) if exists else NotFound(user.username_key)
            # Touch only the alias rows that change, so that an unchanged alias is never briefly free.
            stored = {str(attribute): str(value) for attribute, value in await db.execute_fetchall(_USER_ALIASES, key)}
            for attribute, value in sorted(stored.items()):
                if user.aliases.get(attribute) != value:
                    await db.execute_fetchall(_DELETE_ALIAS, (user.pool_id, attribute, value))
            for attribute, value in sorted(user.aliases.items()):
                if stored.get(attribute) != value:
                    await self._insert_alias(db, user.pool_id, attribute, value, user.username_key)
            # The search index likewise: only the fields that changed are written.
            indexed = {str(name): str(value) for name, value in await db.execute_fetchall(_USER_SEARCH_ROWS, key)}
            values = user_search_values(user)
            for name in indexed.keys() - values.keys():
                await db.execute_fetchall(_DELETE_SEARCH, (*key, name))
            changed = [
                (*key, name, value, value.lower()) for name, value in values.items() if indexed.get(name) != value
            ]
            if changed:
                await db.executemany(_PUT_SEARCH, changed)
        return replace(user, version=user.version + 1)

    async def delete_user(self, pool_id: str, username_key: str) -> bool:
        key = (pool_id, username_key)
        async with self._transaction() as db:
            # Aliases and group memberships follow by ON DELETE CASCADE, refresh tokens with their families.
            deleted = await db.execute_fetchall(
                "DELETE FROM users WHERE pool_id = ? AND username_key = ? RETURNING 1", key
            )
            await db.execute_fetchall("DELETE FROM codes WHERE pool_id = ? AND username_key = ?", key)
            await db.execute_fetchall("DELETE FROM auth_sessions WHERE pool_id = ? AND username_key = ?", key)
            await db.execute_fetchall("DELETE FROM token_families WHERE pool_id = ? AND username_key = ?", key)
        return bool(deleted)

    async def list_users(
        self, pool_id: str, after: str | None, limit: int, *, where: UserSearch | None = None
    ) -> Page[UserRecord]:
        if where is None:
            return await self._list_page(_LIST_USERS, (pool_id,), after, limit, _user, lambda u: u.username_key)
        _check_search(where)
        column = "folded" if where.folded else "value"
        scope: tuple[str, ...] = (pool_id, where.field, where.value)
        kind = "equal"
        if where.prefix:
            upper = _prefix_upper_bound(where.value)
            scope = scope if upper is None else (*scope, upper)
            position = _search_position(after)
            if after is None or position is not None:
                return await self._list_prefix(_SEARCH_PREFIX[column, upper is not None], scope, position, limit)
            # A token from before prefix pages were keyed by value (its key is a username_key alone).
            kind = "from" if upper is None else "range"
        return await self._list_page(_SEARCH_USERS[column, kind], scope, after, limit, _user, lambda u: u.username_key)

    async def _list_prefix(
        self, query: _PagedQuery, scope: Params, position: tuple[str, str] | None, limit: int
    ) -> Page[UserRecord]:
        """One page of a prefix search (_SEARCH_PREFIX), after ``position`` (value, username_key) if given; the
        next page's key is the last row's pair, as JSON."""
        _check_limit(limit)
        if position is None:
            rows = await self._fetch(query.first, (*scope, limit + 1))
        else:
            rows = await self._fetch(query.after, (*scope, *position, limit + 1))
        items = [_user(row) for row in rows[:limit]]
        following = _dumps([rows[limit - 1][-1], items[-1].username_key]) if len(rows) > limit else None
        return Page(items, following)

    async def count_users(self, pool_id: str) -> int:
        # On aiosqlite's thread, not the event loop's reader: counting walks the pool's whole index, time every
        # other request of the process would wait; SQLite lets go of the GIL meanwhile (measured at 100,000 users:
        # the loop stood still up to 7.2 ms a count on its reader, 0.2 ms at most this way).
        rows = await self._fetch_waiting("SELECT COUNT(*) FROM users WHERE pool_id = ?", (pool_id,))
        return int(rows[0][0])

    # --- groups -----------------------------------------------------------------------------------------

    async def delete_group(self, pool_id: str, name: str) -> bool:
        rows = await self._fetch("DELETE FROM pool_groups WHERE pool_id = ? AND name = ? RETURNING 1", (pool_id, name))
        return bool(rows)

    async def remove_user_from_group(self, pool_id: str, username_key: str, group: str) -> None:
        await self._fetch(
            "DELETE FROM group_members WHERE pool_id = ? AND group_name = ? AND username_key = ?",
            (pool_id, group, username_key),
        )

    async def list_groups_for_user(self, pool_id: str, username_key: str) -> list[GroupRecord]:
        """The user's groups, by name. Kept like the sessions' rows (get_token_family_with_user): the front door
        asks on every request, and every token a sign-in or refresh mints names them."""
        key = (pool_id, username_key)
        stamps = self._user_stamps
        if stamps is None:
            return [_group(row) for row in await self._fetch(_GROUPS_FOR_USER, key)]
        # Read before the rows: a stamp that is news ends the read snapshot, so the rows read next hold the change.
        stamp = stamps.read(user_slot(pool_id, username_key))
        kept = self._groups.get(key)
        if kept is not None and kept[0] == stamp:
            rows = kept[1]
        else:
            rows = await self._fetch(_GROUPS_FOR_USER, key)
            self._groups.put(key, (stamp, rows), sum(text_bytes(row) for row in rows) + _KEPT_COLUMN_BYTES)
        return [_group(row) for row in rows]

    # --- one-time codes ---------------------------------------------------------------------------------

    async def consume_code(
        self, pool_id: str, username_key: str, purpose: str, code_hash: str, *, max_attempts: int | None = None
    ) -> bool:
        # The hash is part of the DELETE's WHERE: of concurrent callers, only the one that deletes the row wins.
        # So is the attempt count: wrong guesses counted after the caller read the code still stop it.
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
        await self._fetch(
            "DELETE FROM codes WHERE pool_id = ? AND username_key = ? AND purpose = ?",
            (pool_id, username_key, purpose),
        )

    async def take_code_send(self, pool_id: str, key: str, now: float, expires_at: float, limit: int) -> bool:
        async with self._transaction() as db:
            await _affected(
                db,
                "DELETE FROM code_sends WHERE pool_id = ? AND username_key = ? AND expires_at <= ?",
                (pool_id, key, now),
            )
            # One statement: the count and the insert see the same rows (and BEGIN IMMEDIATE holds the lock).
            try:
                taken = await _affected(
                    db,
                    "INSERT INTO code_sends (pool_id, username_key, sent_at, expires_at) SELECT ?, ?, ?, ? "
                    "WHERE (SELECT COUNT(*) FROM code_sends WHERE pool_id = ? AND username_key = ?) < ?",
                    (pool_id, key, now, expires_at, pool_id, key, limit),
                )
            except sqlite3.IntegrityError as exc:  # the pool's foreign key: deleted meanwhile
                raise NotFound("pool") from exc
            return taken == 1

    async def return_code_send(self, pool_id: str, key: str, sent_at: float) -> None:
        # One row of those counted at that instant (racers counted at the same one are alike).
        await self._fetch(
            "DELETE FROM code_sends WHERE rowid = (SELECT rowid FROM code_sends WHERE pool_id = ? AND "
            "username_key = ? AND sent_at = ? LIMIT 1) RETURNING 1",
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

        def insert(conn: sqlite3.Connection) -> None:
            _insert_sync(conn, _INSERT_SESSION, params, _SESSION_UNIQUE, "pool")

        await self._write_transaction(insert)

    async def take_auth_session(self, session_hash: str) -> AuthSessionRecord | None:
        # DELETE ... RETURNING: reading and removing are one statement, so a session is taken once, whichever
        # connection or process runs it.
        def take(conn: sqlite3.Connection) -> list[Row]:
            return conn.execute(_TAKE_SESSION, (session_hash,)).fetchall()

        rows = await self._write_transaction(take)
        return _session(rows[0]) if rows else None

    # --- tokens -----------------------------------------------------------------------------------------

    async def create_token_family(
        self, family: TokenFamilyRecord, refresh: RefreshTokenRecord | None, *, app_client_id: str | None = None
    ) -> None:
        family_params = _family_params(family, app_client_id)
        refresh_params = _refresh_params(refresh) if refresh is not None else None

        def insert_both(conn: sqlite3.Connection) -> None:
            _check_client(conn, family.pool_id, app_client_id)
            _insert_sync(conn, _INSERT_FAMILY, family_params, _FAMILY_UNIQUE, "pool")
            if refresh_params is not None:
                _insert_sync(conn, _INSERT_REFRESH, refresh_params, _REFRESH_UNIQUE, "token family")

        # Every sign-in that issues tokens comes through here: one transaction.
        await self._write_transaction(insert_both)

    async def bind_token_family_device(self, origin_jti: str, device_key: str) -> None:
        params = (device_key, origin_jti)

        def bind(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE token_families SET device_key = ? WHERE origin_jti = ?", params)

        # A single-row write after each sign-in with a device, as create_token_family's: the event loop's writer.
        await self._write_transaction(bind)

    async def get_refresh_token_with_user(
        self, token_hash: str
    ) -> tuple[RefreshTokenRecord, TokenFamilyRecord, UserRecord | None, list[GroupRecord]] | None:
        rows = await self._fetch(_REFRESH_WITH_USER, (token_hash,))
        if not rows:
            return None
        row = rows[0]
        token = _refresh(cast(Row, row[:_REFRESH_WIDTH]))
        family = _family(cast(Row, row[_REFRESH_WIDTH : _REFRESH_WIDTH + _FAMILY_WIDTH]))
        family.device_confirmed = bool(row[_REFRESH_WIDTH + _FAMILY_WIDTH])
        family.device_forgotten = bool(row[_REFRESH_WIDTH + _FAMILY_WIDTH + 1])
        user_row = row[_REFRESH_WIDTH + _FAMILY_WIDTH + 2 : -1]
        user = _user(cast(Row, user_row)) if user_row[0] is not None else None
        groups = [_group(cast(Row, tuple(g))) for g in _loads(row[-1])] if user is not None else []
        return token, family, user, groups

    async def get_token_family_with_user(self, origin_jti: str) -> tuple[TokenFamilyRecord, UserRecord | None] | None:
        """The family and its user: every token-authorised call reads them, to refuse revoked tokens.

        A session's calls read the same row again and again, so the rows read lately are kept in memory, each
        with the stamp its user's slot had (gateway/services/change_stamp.py); every change to the user or to
        the user's families, by any process, changes that stamp once committed, and the row is read again.
        Records are built anew from the row for every caller, which may change them as it likes."""
        stamps = self._user_stamps
        if stamps is not None:
            kept = self._families.get(origin_jti)
            if kept is not None and stamps.read(kept[0]) == kept[1]:
                return _family_with_user(kept[2])
        row = await self._family_with_user_row(origin_jti)
        if row is None:
            return None
        if stamps is not None:
            slot = user_slot(row[1], row[3])  # the family's pool_id and username_key
            stamp, news = stamps.read_news(slot)
            if news:
                # A change this process had not seen: the row may come from a snapshot older than it (the
                # snapshot ended when the stamp was read), so it is read again before being kept.
                row = await self._family_with_user_row(origin_jti)
                if row is None:
                    return None
            self._families.put(origin_jti, (slot, stamp, row), text_bytes(row))
        return _family_with_user(row)

    async def _family_with_user_row(self, origin_jti: str) -> Row | None:
        key = (origin_jti,)
        rows = self._read_now(_FAMILY_WITH_USER, key)
        if rows is None:
            rows = await self._fetch_waiting(_FAMILY_WITH_USER, key)
        return rows[0] if rows else None

    async def revoke_user_token_families(self, pool_id: str, username_key: str) -> int:
        """How many families this call revoked (those revoked before are not counted)."""
        rows = await self._fetch(
            "UPDATE token_families SET revoked = 1 WHERE pool_id = ? AND username_key = ? AND revoked = 0 RETURNING 1",
            (pool_id, username_key),
        )
        return len(rows)

    async def touch_token_family(
        self, origin_jti: str, last_active_at: float, device_type: str | None, last_ip: str | None
    ) -> None:
        params = (last_active_at, device_type, last_ip, origin_jti)

        def touch(conn: sqlite3.Connection) -> None:
            conn.execute(_TOUCH_FAMILY, params)

        # A single-row write on the refresh path of a pool that tracks sessions: the event loop's writer.
        await self._write_transaction(touch)

    async def evict_token_sessions(
        self, pool_id: str, username_key: str, keep: int, now: float, spare: str | None = None
    ) -> list[str]:
        # LIMIT -1 is SQLite's "no limit": every session after the first ``keep``. One statement: SQLite
        # serialises writers, so two sign-ins evicting at once each see the other's work.
        rows = await self._fetch(
            "UPDATE token_families SET revoked = 1 WHERE origin_jti IN "
            f"(SELECT f.origin_jti {_LIVE_SESSIONS} AND f.origin_jti IS NOT ? {_SESSION_ORDER} LIMIT -1 OFFSET ?) "
            "RETURNING origin_jti",
            (pool_id, username_key, now, now, spare, max(0, keep)),
        )
        return [str(row[0]) for row in rows]

    async def rotate_refresh_token(self, old_hash: str, new: RefreshTokenRecord, replaced_at: float) -> bool:
        async with self._transaction() as db:
            # "replaced_by IS NULL" in the UPDATE is the whole race: SQLite serialises writers, and only the
            # first finds the row still unreplaced. The others change nothing and insert nothing.
            if not await db.execute_fetchall(_MARK_REPLACED, (new.token_hash, replaced_at, old_hash)):
                return False
            await _insert(db, _INSERT_REFRESH, _refresh_params(new), _REFRESH_UNIQUE, "token family")
        return True

    async def purge_expired(self, now: float) -> int:
        """Deletes rows with ``expires_at <= now`` (a token is expired at its expiry instant, as JWT ``exp``),
        and the refresh tokens of expired families."""
        async with self._transaction() as db:
            purged = await _affected(db, "DELETE FROM codes WHERE expires_at <= ?", (now,))
            purged += await _affected(db, "DELETE FROM auth_sessions WHERE expires_at <= ?", (now,))
            # Deleted explicitly rather than by cascade so that they are counted (changes() omits cascades).
            purged += await _affected(
                db,
                "DELETE FROM refresh_tokens WHERE expires_at <= ? "
                "OR origin_jti IN (SELECT origin_jti FROM token_families WHERE expires_at <= ?)",
                (now, now),
            )
            purged += await _affected(db, "DELETE FROM token_families WHERE expires_at <= ?", (now,))
            purged += await _affected(db, "DELETE FROM federation_requests WHERE expires_at <= ?", (now,))
            purged += await _affected(db, "DELETE FROM seen_assertions WHERE expires_at <= ?", (now,))
            purged += await _affected(db, "DELETE FROM oauth_records WHERE expires_at <= ?", (now,))
            purged += await _affected(db, "DELETE FROM used_codes WHERE expires_at <= ?", (now,))
            purged += await _affected(db, "DELETE FROM iam_saml_assertions_used WHERE expires_at <= ?", (now,))
            purged += await _affected(db, "DELETE FROM code_sends WHERE expires_at <= ?", (now,))
            # An expired metadata document is fetched again on next use: nothing reads it (no index: the table
            # holds one row per URL a policy admitted, few beside the tables above).
            purged += await _affected(db, "DELETE FROM cimd_documents WHERE expires_at <= ?", (now,))
            purged += await _affected(
                db,
                "DELETE FROM user_import_chunks WHERE EXISTS (SELECT 1 FROM user_import_jobs AS j "
                "WHERE j.pool_id = user_import_chunks.pool_id AND j.job_id = user_import_chunks.job_id "
                "AND j.status IN ('Expired', 'Succeeded', 'Failed', 'Stopped'))",
                (),
            )
        return purged

    async def expire_unstarted_import_jobs(self, now: float) -> int:
        rows = await self._fetch(
            "UPDATE user_import_jobs SET status = 'Expired' WHERE status = 'Created' AND created_at + ? < ? "
            "RETURNING 1",
            (UNSTARTED_IMPORT_JOB_SECONDS, now),
        )
        return len(rows)

    # --- signing keys -----------------------------------------------------------------------------------

    async def add_signing_key(self, key: SigningKeyRecord) -> None:
        """An active key retires the pool's active key at ``key.created_at`` (the store keeps no clock)."""
        params = (key.pool_id, key.kid, key.private_jwk, key.created_at, int(key.active), key.retired_at, key.token_use)
        async with self._transaction() as db:
            if key.active:
                # Keys retired earlier keep their retired_at: their publication window must not grow.
                await db.execute_fetchall(
                    "UPDATE signing_keys SET active = 0, retired_at = ? "
                    "WHERE pool_id = ? AND token_use = ? AND active = 1",
                    (key.created_at, key.pool_id, key.token_use),
                )
            await _insert(
                db,
                f"INSERT INTO signing_keys ({KEY_COLUMNS}) VALUES ({_placeholders(KEY_COLUMNS)})",
                params,
                _KEY_UNIQUE,
                "pool",
            )

    async def delete_signing_key(self, pool_id: str, kid: str) -> None:
        await self._fetch("DELETE FROM signing_keys WHERE pool_id = ? AND kid = ?", (pool_id, kid))

    # --- IAM roles and OIDC providers ---------------------------------------------------------------------

    async def delete_role(self, name_key: str) -> bool:
        return bool(await self._fetch("DELETE FROM iam_roles WHERE name_key = ? RETURNING 1", (name_key,)))

    async def put_role_policy(self, name_key: str, policy_name: str, document: str) -> None:
        async with self._lock:
            await _insert(self._db, _PUT_ROLE_POLICY, (name_key, policy_name, document), {}, "role")

    async def delete_role_policy(self, name_key: str, policy_name: str) -> bool:
        rows = await self._fetch(
            "DELETE FROM iam_role_policies WHERE role_name_key = ? AND policy_name = ? RETURNING 1",
            (name_key, policy_name),
        )
        return bool(rows)

    async def delete_oidc_provider(self, url: str) -> bool:
        return bool(await self._fetch("DELETE FROM iam_oidc_providers WHERE url = ? RETURNING 1", (url,)))

    async def delete_saml_provider(self, name: str) -> bool:
        return bool(await self._fetch("DELETE FROM iam_saml_providers WHERE name = ? RETURNING 1", (name,)))

    async def use_saml_assertion(self, assertion_key: str, expires_at: float, now: float) -> bool:
        # One statement: a new key inserts; a key whose marker has expired is taken over; a live one is left
        # alone and RETURNING yields nothing. SQLite serialises writers, so one caller wins.
        rows = await self._fetch(_USE_ASSERTION, (assertion_key, expires_at, now))
        return bool(rows)

    # --- identity pools -----------------------------------------------------------------------------------

    async def update_identity_pool(self, pool: IdentityPoolRecord) -> IdentityPoolRecord:
        params = (pool.name, _dumps(pool.settings), pool.created_at, pool.updated_at, pool.id, pool.version)
        exists = "SELECT 1 FROM identity_pools WHERE id = ?"
        await self._versioned_update(_UPDATE_ID_POOL, params, exists, (pool.id,), pool.id)
        return replace(pool, version=pool.version + 1)

    async def delete_identity_pool(self, pool_id: str) -> bool:
        return bool(await self._fetch("DELETE FROM identity_pools WHERE id = ? RETURNING 1", (pool_id,)))

    async def get_identity(self, identity_id: str) -> IdentityRecord | None:
        rows = await self._fetch(_GET_IDENTITY, (identity_id,))
        return _identity(rows[0]) if rows else None

    async def find_identity_by_login(self, pool_id: str, login: IdentityLogin) -> IdentityRecord | None:
        rows = await self._fetch(_FIND_IDENTITY, (pool_id, login.provider, login.subject))
        return _identity(rows[0]) if rows else None

    async def resolve_identity(self, new: IdentityRecord) -> IdentityRecord:
        async with self._transaction() as db:
            owners: set[str] = set()
            for login in new.logins:
                rows = await db.execute_fetchall(_LOGIN_OWNER, (new.pool_id, login.provider, login.subject))
                owners.update(str(row[0]) for row in rows)
            if len(owners) > 1:
                raise AlreadyExists("login")
            if owners:
                identity_id = owners.pop()
                await _link(db, new.pool_id, identity_id, new.logins, new.updated_at)
            else:
                identity_id = new.id
                await _insert(db, _INSERT_IDENTITY, _identity_params(new), _IDENTITY_UNIQUE, "pool")
                await _link(db, new.pool_id, identity_id, new.logins, new.created_at)
            rows = list(await db.execute_fetchall(_GET_IDENTITY, (identity_id,)))
        return _identity(rows[0])

    async def link_logins(
        self, pool_id: str, identity_id: str, logins: list[IdentityLogin], now: float
    ) -> IdentityRecord:
        async with self._transaction() as db:
            if not await db.execute_fetchall(_OPEN_IDENTITY_IN_POOL, (identity_id, pool_id)):
                raise NotFound("identity")
            for login in logins:
                rows = list(await db.execute_fetchall(_LOGIN_OWNER, (pool_id, login.provider, login.subject)))
                if rows and rows[0][0] != identity_id:
                    raise AlreadyExists("login")
            await _link(db, pool_id, identity_id, logins, now)
            rows = list(await db.execute_fetchall(_GET_IDENTITY, (identity_id,)))
        return _identity(rows[0])

    async def unlink_logins(
        self, pool_id: str, identity_id: str, logins: list[IdentityLogin], now: float
    ) -> IdentityRecord:
        async with self._transaction() as db:
            if not await db.execute_fetchall(_IDENTITY_IN_POOL, (identity_id, pool_id)):
                raise NotFound("identity")
            for login in logins:
                await db.execute_fetchall(
                    "DELETE FROM identity_logins WHERE pool_id = ? AND provider = ? AND subject = ? "
                    "AND identity_id = ?",
                    (pool_id, login.provider, login.subject, identity_id),
                )
            await _touch_identity(db, identity_id, now)
            rows = list(await db.execute_fetchall(_GET_IDENTITY, (identity_id,)))
        return _identity(rows[0])

    async def move_logins(
        self, pool_id: str, logins: list[IdentityLogin], identity_id: str, now: float
    ) -> IdentityRecord:
        async with self._transaction() as db:
            if not await db.execute_fetchall(_OPEN_IDENTITY_IN_POOL, (identity_id, pool_id)):
                raise NotFound("identity")
            previous: set[str] = set()
            for login in logins:
                rows = list(await db.execute_fetchall(_LOGIN_OWNER, (pool_id, login.provider, login.subject)))
                if rows and rows[0][0] != identity_id:
                    previous.add(str(rows[0][0]))
                    await db.execute_fetchall(
                        "DELETE FROM identity_logins WHERE pool_id = ? AND provider = ? AND subject = ?",
                        (pool_id, login.provider, login.subject),
                    )
            for other in sorted(previous):
                await _touch_identity(db, other, now)
            await _link(db, pool_id, identity_id, logins, now)
            rows = list(await db.execute_fetchall(_GET_IDENTITY, (identity_id,)))
        return _identity(rows[0])

    async def delete_identities(self, identity_ids: list[str]) -> list[str]:
        deleted: list[str] = []
        async with self._transaction() as db:
            for identity_id in identity_ids:
                if await db.execute_fetchall("DELETE FROM identities WHERE id = ? RETURNING 1", (identity_id,)):
                    deleted.append(identity_id)
        return deleted

    async def list_identities(
        self, pool_id: str, after: str | None, limit: int, *, hide_disabled: bool = False
    ) -> Page[IdentityRecord]:
        query = _LIST_ENABLED_IDENTITIES if hide_disabled else _LIST_IDENTITIES
        return await self._list_page(query, (pool_id,), after, limit, _identity, lambda i: i.id)

    # --- signing keys of other issuers --------------------------------------------------------------------

    async def add_issuer_signing_key(self, key: SigningKeyRecord) -> None:
        params = (key.pool_id, key.kid, key.private_jwk, key.created_at, int(key.active), key.retired_at, key.token_use)
        async with self._transaction() as db:
            if key.active:
                await db.execute_fetchall(
                    "UPDATE issuer_signing_keys SET active = 0, retired_at = ? "
                    "WHERE key_set = ? AND token_use = ? AND active = 1",
                    (key.created_at, key.pool_id, key.token_use),
                )
            await _insert(
                db,
                f"INSERT INTO issuer_signing_keys ({ISSUER_KEY_COLUMNS}) VALUES ({_placeholders(ISSUER_KEY_COLUMNS)})",
                params,
                {"issuer_signing_keys.key_set, issuer_signing_keys.kid": "id"},
                "key set",
            )

    async def delete_issuer_signing_key(self, key_set: str, kid: str) -> None:
        await self._fetch("DELETE FROM issuer_signing_keys WHERE key_set = ? AND kid = ?", (key_set, kid))

    # --- the OAuth 2.0 provider's records ---------------------------------------------------------------

    async def put_oauth_record(self, record: OAuthRecord) -> None:
        await self._insert_on_loop(_INSERT_OAUTH, _oauth_params(record), _OAUTH_UNIQUE, "pool")

    async def burn_code(self, used: UsedCodeRecord) -> bool:
        def burn(conn: sqlite3.Connection) -> bool:
            # The marker's primary key decides: of concurrent burns exactly one inserts it.
            return bool(conn.execute(_INSERT_USED_CODE, (used.code_hash, used.origin_jti, used.expires_at)).fetchall())

        return await self._write_transaction(burn)

    async def start_code_family(
        self,
        code_hash: str,
        family: TokenFamilyRecord,
        refresh: RefreshTokenRecord | None,
        *,
        app_client_id: str | None = None,
    ) -> bool:
        def start(conn: sqlite3.Connection) -> bool:
            # A marker (a burnt code) uses the code up; otherwise the family's primary
            # key decides: of concurrent redemptions exactly one inserts it.
            if conn.execute(_CODE_MARKED, (code_hash,)).fetchall():
                return False
            _check_client(conn, family.pool_id, app_client_id)
            if not conn.execute(_INSERT_FAMILY_ONCE, _family_params(family, app_client_id)).fetchall():
                return False
            if refresh is not None:
                conn.execute(_INSERT_REFRESH, _refresh_params(refresh))
            return True

        try:
            return await self._write_transaction(start)
        except sqlite3.IntegrityError as exc:
            error = _translate(exc, _REFRESH_UNIQUE, "pool")
            if error is exc:
                raise
            raise error from exc

    # --- passkeys -----------------------------------------------------------------------------------------

    async def update_webauthn_sign_count(self, pool_id: str, credential_id: str, seen: int, new: int) -> bool:
        rows = await self._fetch(
            "UPDATE webauthn_credentials SET sign_count = ? WHERE pool_id = ? AND credential_id = ? "
            "AND sign_count = ? RETURNING 1",
            (new, pool_id, credential_id, seen),
        )
        return bool(rows)

    # --- devices ------------------------------------------------------------------------------------------

    async def create_device(self, device: DeviceRecord) -> None:
        async with self._transaction() as db:
            if await db.execute_fetchall(_IS_FORGOTTEN_DEVICE, (device.pool_id, device.device_key)):
                raise AlreadyExists("forgotten")
            await _insert(db, _INSERT_DEVICE, _device_params(device), _DEVICE_UNIQUE, "user")

    async def get_device(self, pool_id: str, device_key: str) -> DeviceRecord | None:
        rows = await self._fetch(_GET_DEVICE, (pool_id, device_key))
        return _device(rows[0]) if rows else None

    async def list_devices(self, pool_id: str, username_key: str, after: str | None, limit: int) -> Page[DeviceRecord]:
        scope = (pool_id, username_key)
        return await self._list_page(_LIST_DEVICES, scope, after, limit, _device, lambda d: d.device_key)

    async def forget_device(self, pool_id: str, device_key: str, forgotten_at: float) -> bool:
        async with self._transaction() as db:
            rows = list(
                await db.execute_fetchall(
                    "DELETE FROM devices WHERE pool_id = ? AND device_key = ? RETURNING username_key",
                    (pool_id, device_key),
                )
            )
            if not rows:
                return False
            await db.execute_fetchall(_FORGET_DEVICE, (pool_id, device_key, rows[0][0], forgotten_at))
            return True

    # --- federation -------------------------------------------------------------------------------------

    async def create_identity_provider(self, provider: IdentityProviderRecord) -> None:
        async with self._transaction() as db:
            await _insert(db, _INSERT_IDP, _idp_params(provider), _IDP_UNIQUE, "pool")
            for identifier in provider.idp_identifiers:
                await _insert(
                    db,
                    _INSERT_IDP_IDENTIFIER,
                    (provider.pool_id, identifier, provider.name),
                    _IDENTIFIER_UNIQUE,
                    "pool",
                )

    async def update_identity_provider(self, provider: IdentityProviderRecord) -> IdentityProviderRecord:
        key = (provider.pool_id, provider.name)
        params = (
            provider.provider_type,
            _dumps(provider.details),
            _dumps(provider.attribute_mapping),
            _dumps(provider.idp_identifiers),
            _dumps(provider.settings),
            provider.created_at,
            provider.updated_at,
            *key,
            provider.version,
        )
        async with self._transaction() as db:
            updated = await db.execute_fetchall(
                "UPDATE identity_providers SET provider_type = ?, details = ?, attribute_mapping = ?, "
                "idp_identifiers = ?, settings = ?, created_at = ?, updated_at = ?, version = version + 1 "
                "WHERE pool_id = ? AND name = ? AND version = ? RETURNING 1",
                params,
            )
            if not updated:
                exists = await db.execute_fetchall(
                    "SELECT 1 FROM identity_providers WHERE pool_id = ? AND name = ?", key
                )
                raise VersionConflict(provider.name) if exists else NotFound(provider.name)
            await db.execute_fetchall("DELETE FROM idp_identifiers WHERE pool_id = ? AND provider_name = ?", key)
            for identifier in provider.idp_identifiers:
                await _insert(
                    db,
                    _INSERT_IDP_IDENTIFIER,
                    (provider.pool_id, identifier, provider.name),
                    _IDENTIFIER_UNIQUE,
                    "pool",
                )
        return replace(provider, version=provider.version + 1)

    async def delete_identity_provider(self, pool_id: str, name: str) -> bool:
        async with self._transaction() as db:
            # Identifiers follow by ON DELETE CASCADE; links name the provider without a foreign key.
            deleted = await db.execute_fetchall(
                "DELETE FROM identity_providers WHERE pool_id = ? AND name = ? RETURNING 1", (pool_id, name)
            )
            await db.execute_fetchall(
                "DELETE FROM provider_links WHERE pool_id = ? AND provider_name = ?", (pool_id, name)
            )
        return bool(deleted)

    # --- managed login branding ---------------------------------------------------------------------------

    async def update_managed_login_branding(self, record: ManagedLoginBrandingRecord) -> ManagedLoginBrandingRecord:
        r = record
        params = (
            int(r.use_cognito_provided_values),
            None if r.settings is None else _dumps(r.settings),
            _dumps(r.assets),
            r.updated_at,
            r.pool_id,
            r.branding_id,
            r.version,
        )
        async with self._lock:
            if await self._db.execute_fetchall(_UPDATE_BRANDING, params):
                return replace(r, version=r.version + 1)
            # Only to choose the error: the version check itself was the UPDATE's WHERE clause.
            exists = await self._db.execute_fetchall(
                "SELECT 1 FROM managed_login_brandings WHERE pool_id = ? AND id = ?", (r.pool_id, r.branding_id)
            )
        raise VersionConflict(r.branding_id) if exists else NotFound("branding")

    # --- terms documents -----------------------------------------------------------------------------------

    async def update_terms(self, record: TermsRecord) -> None:
        r = record
        params = (r.name, r.source, r.enforcement, _dumps(r.links), r.updated_at, r.pool_id, r.terms_id)
        async with self._lock:
            try:
                updated = await self._db.execute_fetchall(_UPDATE_TERMS, params)
            except sqlite3.IntegrityError as exc:
                error = _translate(exc, _TERMS_UNIQUE, "terms")
                if error is exc:
                    raise
                raise error from exc
        if not updated:
            raise NotFound("terms")

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
        except sqlite3.IntegrityError as exc:
            if exc.sqlite_errorname in _UNIQUE_ERRORS:
                raise AlreadyExists("running") from exc  # the one-running-job-per-pool index
            raise
        return _import_job(rows[0]) if rows else None

    async def finish_user_import_upload(self, pool_id: str, job_id: str, upload_id: str, size: int, now: float) -> bool:
        async with self._transaction() as db:
            before = list(
                await db.execute_fetchall(
                    "SELECT upload_id FROM user_import_jobs WHERE pool_id = ? AND job_id = ?", (pool_id, job_id)
                )
            )
            taken = await db.execute_fetchall(
                "UPDATE user_import_jobs SET upload_id = ?, upload_bytes = ? "
                "WHERE pool_id = ? AND job_id = ? AND status = 'Created' AND url_expires_at > ? RETURNING 1",
                (upload_id, size, pool_id, job_id, now),
            )
            # The job's file is now this upload (the one it replaces goes), or it was refused (this one goes).
            # An upload still in progress keeps its parts: it may finish and replace this one in turn.
            dropped = upload_id if not taken else (before[0][0] if before else None)
            if dropped is not None and (dropped != upload_id or not taken):
                await db.execute_fetchall(
                    "DELETE FROM user_import_chunks WHERE pool_id = ? AND job_id = ? AND upload_id = ?",
                    (pool_id, job_id, dropped),
                )
        return bool(taken)

    async def drop_user_import_upload(self, pool_id: str, job_id: str, upload_id: str | None) -> None:
        if upload_id is None:
            await self._fetch("DELETE FROM user_import_chunks WHERE pool_id = ? AND job_id = ?", (pool_id, job_id))
        else:
            await self._fetch(
                "DELETE FROM user_import_chunks WHERE pool_id = ? AND job_id = ? AND upload_id = ?",
                (pool_id, job_id, upload_id),
            )

    # --- client ID metadata documents (CIMD) -----------------------------------------------------------------

    async def update_cimd_policy(self, record: CimdPolicyRecord) -> CimdPolicyRecord | None:
        r = record
        rows = await self._fetch(
            "UPDATE cimd_policies SET client_id = ?, name = ?, cache_seconds = ?, url_patterns = ?, updated_at = ? "
            f"WHERE pool_id = ? AND id = ? RETURNING {CIMD_POLICY_COLUMNS}",
            (r.client_id, r.name, r.cache_seconds, _dumps(r.url_patterns), r.updated_at, r.pool_id, r.policy_id),
        )
        return _cimd_policy(rows[0]) if rows else None

    async def delete_cimd_policy(self, pool_id: str, policy_id: str) -> bool:
        return bool(
            await self._fetch(
                "DELETE FROM cimd_policies WHERE pool_id = ? AND id = ? RETURNING 1", (pool_id, policy_id)
            )
        )

    async def delete_cimd_documents(self, policy_id: str, url: str | None = None) -> int:
        if url is None:
            rows = await self._fetch("DELETE FROM cimd_documents WHERE policy_id = ? RETURNING 1", (policy_id,))
        else:
            rows = await self._fetch(
                "DELETE FROM cimd_documents WHERE policy_id = ? AND url = ? RETURNING 1", (policy_id, url)
            )
        return len(rows)


# --- user import jobs: SQL and rows ---------------------------------------------------------------------

IMPORT_JOB_COLUMNS = (
    "pool_id, job_id, list_key, job_name, role_arn, hashing_algorithm, status, created_at, url_expires_at, "
    "started_at, completed_at, imported_users, skipped_users, failed_users, completion_message, upload_id, "
    "upload_bytes, heartbeat_at"
)
# The record's fields that update_user_import_job may write, and their columns.
_IMPORT_JOB_FIELDS = {
    "status": "status",
    "started_at": "started_at",
    "completed_at": "completed_at",
    "imported_users": "imported_users",
    "skipped_users": "skipped_users",
    "failed_users": "failed_users",
    "completion_message": "completion_message",
    "upload_id": "upload_id",
    "upload_bytes": "upload_bytes",
    "heartbeat_at": "heartbeat_at",
}
_LIST_IMPORT_JOBS = _paged(f"SELECT {IMPORT_JOB_COLUMNS} FROM user_import_jobs", "pool_id = ?", "list_key")


def _import_job_params(j: UserImportJobRecord) -> Params:
    return (
        j.pool_id,
        j.job_id,
        j.list_key,
        j.name,
        j.role_arn,
        j.hashing_algorithm,
        j.status,
        j.created_at,
        j.url_expires_at,
        j.started_at,
        j.completed_at,
        j.imported_users,
        j.skipped_users,
        j.failed_users,
        j.completion_message,
        j.upload_id,
        j.upload_bytes,
        j.heartbeat_at,
    )


def _import_job(r: Row) -> UserImportJobRecord:
    return UserImportJobRecord(
        pool_id=r[0],
        job_id=r[1],
        list_key=r[2],
        name=r[3],
        role_arn=r[4],
        hashing_algorithm=r[5],
        status=r[6],
        created_at=float(r[7]),
        url_expires_at=float(r[8]),
        started_at=_seconds(r[9]),
        completed_at=_seconds(r[10]),
        imported_users=r[11],
        skipped_users=r[12],
        failed_users=r[13],
        completion_message=r[14],
        upload_id=r[15],
        upload_bytes=r[16],
        heartbeat_at=_seconds(r[17]),
    )


# --- identity pools: SQL and rows -------------------------------------------------------------------------

ID_POOL_COLUMNS = "id, name, settings, created_at, updated_at, version"
IDENTITY_COLUMNS = "pool_id, id, created_at, updated_at, disabled"
ISSUER_KEY_COLUMNS = "key_set, kid, private_jwk, created_at, active, retired_at, token_use"
_INSERT_ID_POOL = f"INSERT INTO identity_pools ({ID_POOL_COLUMNS}) VALUES ({_placeholders(ID_POOL_COLUMNS)})"
_UPDATE_ID_POOL = (
    "UPDATE identity_pools SET name = ?, settings = ?, created_at = ?, updated_at = ?, version = version + 1 "
    "WHERE id = ? AND version = ? RETURNING version"
)
_LIST_ID_POOLS = _paged(f"SELECT {ID_POOL_COLUMNS} FROM identity_pools", "", "id")
_ID_POOL_UNIQUE = {"identity_pools.id": "id"}
_IDENTITY_UNIQUE = {"identities.id": "id"}
# An identity and its logins in one row: the logins as one JSON array, ordered.
_IDENTITY_SELECT = (
    f"SELECT {_qualified(IDENTITY_COLUMNS, 'i')}, (SELECT json_group_array(json_array(provider, subject)) FROM "
    "(SELECT l.provider, l.subject FROM identity_logins AS l WHERE l.identity_id = i.id "
    "ORDER BY l.provider, l.subject)) FROM identities AS i"
)
_GET_IDENTITY = _IDENTITY_SELECT + " WHERE i.id = ?"
_FIND_IDENTITY = (
    _IDENTITY_SELECT + " WHERE i.id = (SELECT identity_id FROM identity_logins "
    "WHERE pool_id = ? AND provider = ? AND subject = ?)"
)
_LIST_IDENTITIES = _paged(_IDENTITY_SELECT, "i.pool_id = ?", "i.id")
_LIST_ENABLED_IDENTITIES = _paged(_IDENTITY_SELECT, "i.pool_id = ? AND i.disabled = 0", "i.id")
_INSERT_IDENTITY = "INSERT INTO identities (pool_id, id, created_at, updated_at, disabled) VALUES (?, ?, ?, ?, ?)"
_IDENTITY_IN_POOL = "SELECT 1 FROM identities WHERE id = ? AND pool_id = ?"
# An identity whose last login was unlinked is inaccessible for good (UnlinkIdentity): never linked to again.
_OPEN_IDENTITY_IN_POOL = "SELECT 1 FROM identities WHERE id = ? AND pool_id = ? AND disabled = 0"
_LOGIN_OWNER = "SELECT identity_id FROM identity_logins WHERE pool_id = ? AND provider = ? AND subject = ?"


def _id_pool_params(p: IdentityPoolRecord) -> Params:
    return (p.id, p.name, _dumps(p.settings), p.created_at, p.updated_at, p.version)


def _id_pool(r: Row) -> IdentityPoolRecord:
    return IdentityPoolRecord(r[0], r[1], _loads(r[2]), r[3], r[4], r[5])


def _identity_params(i: IdentityRecord) -> Params:
    return (i.pool_id, i.id, i.created_at, i.updated_at, int(i.disabled))


def _identity(r: Row) -> IdentityRecord:
    logins = [IdentityLogin(str(p), str(s)) for p, s in _loads(r[5])]
    return IdentityRecord(r[0], r[1], r[2], r[3], bool(r[4]), logins)


async def _link(
    db: aiosqlite.Connection, pool_id: str, identity_id: str, logins: list[IdentityLogin], now: float
) -> None:
    """Link logins not linked yet (the caller checked none belongs to another identity, and that the identity is
    not inaccessible)."""
    for login in logins:
        await db.execute_fetchall(
            "INSERT INTO identity_logins (pool_id, provider, subject, identity_id, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (pool_id, provider, subject) DO NOTHING",
            (pool_id, login.provider, login.subject, identity_id, now),
        )
    if logins:
        await db.execute_fetchall("UPDATE identities SET updated_at = ? WHERE id = ?", (now, identity_id))


async def _touch_identity(db: aiosqlite.Connection, identity_id: str, now: float) -> None:
    """After logins were unlinked: disabled once none is left."""
    await db.execute_fetchall(
        "UPDATE identities SET updated_at = ?, disabled = CASE WHEN EXISTS "
        "(SELECT 1 FROM identity_logins WHERE identity_id = ?) THEN disabled ELSE 1 END WHERE id = ?",
        (now, identity_id, identity_id),
    )


_AUTH_EVENT_COLUMNS = "pool_id, username_key, event_id, created_at, event"
_AUTH_EVENT_UNIQUE = {"auth_events.pool_id, auth_events.event_id": "id"}


def _auth_event(r: Row) -> AuthEventRecord:
    return AuthEventRecord(r[0], r[1], r[2], r[3], _loads(r[4]))


IDP_COLUMNS = (
    "pool_id, name, provider_type, details, attribute_mapping, idp_identifiers, settings, created_at, updated_at, "
    "version"
)
LINK_COLUMNS = "pool_id, provider_name, attribute_name, attribute_value, username_key, created_at"
_INSERT_IDP = f"INSERT INTO identity_providers ({IDP_COLUMNS}) VALUES ({_placeholders(IDP_COLUMNS)})"
_INSERT_IDP_IDENTIFIER = "INSERT INTO idp_identifiers (pool_id, identifier, provider_name) VALUES (?, ?, ?)"
_IDP_UNIQUE = {"identity_providers.pool_id, identity_providers.name": "name"}
_IDENTIFIER_UNIQUE = {"idp_identifiers.pool_id, idp_identifiers.identifier": "identifier"}
_LINK_UNIQUE = {
    "provider_links.pool_id, provider_links.provider_name, provider_links.attribute_name, "
    "provider_links.attribute_value": "link"
}
_LIST_IDPS = _paged(f"SELECT {IDP_COLUMNS} FROM identity_providers", "pool_id = ?", "name")


def _idp_params(p: IdentityProviderRecord) -> Params:
    return (
        p.pool_id,
        p.name,
        p.provider_type,
        _dumps(p.details),
        _dumps(p.attribute_mapping),
        _dumps(p.idp_identifiers),
        _dumps(p.settings),
        p.created_at,
        p.updated_at,
        p.version,
    )


def _idp(r: Row) -> IdentityProviderRecord:
    return IdentityProviderRecord(
        pool_id=r[0],
        name=r[1],
        provider_type=r[2],
        details=_loads(r[3]),
        attribute_mapping=_loads(r[4]),
        idp_identifiers=_loads(r[5]),
        settings=_loads(r[6]),
        created_at=r[7],
        updated_at=r[8],
        version=r[9],
    )


def _provider_link(r: Row) -> ProviderLinkRecord:
    return ProviderLinkRecord(*r)


# --- managed login branding: SQL and rows (migration 0013) ---------------------------------------------------

BRANDING_COLUMNS = (
    "id, pool_id, client_id, use_cognito_provided_values, settings, assets, created_at, updated_at, version"
)
_INSERT_BRANDING = (
    f"INSERT INTO managed_login_brandings ({BRANDING_COLUMNS}) VALUES ({_placeholders(BRANDING_COLUMNS)})"
)
_UPDATE_BRANDING = (
    "UPDATE managed_login_brandings SET use_cognito_provided_values = ?, settings = ?, assets = ?, updated_at = ?, "
    "version = version + 1 WHERE pool_id = ? AND id = ? AND version = ? RETURNING 1"
)
_BRANDING_UNIQUE = {"managed_login_brandings.id": "id", "managed_login_brandings.client_id": "client"}


def _branding(r: Row) -> ManagedLoginBrandingRecord:
    return ManagedLoginBrandingRecord(
        pool_id=r[1],
        branding_id=r[0],
        client_id=r[2],
        use_cognito_provided_values=bool(r[3]),
        settings=None if r[4] is None else _loads(r[4]),
        assets=_loads(r[5]),
        created_at=r[6],
        updated_at=r[7],
        version=r[8],
    )


# --- terms documents: SQL and rows (migration 0024) ----------------------------------------------------------

TERMS_COLUMNS = "id, pool_id, client_id, name, source, enforcement, links, created_at, updated_at"
_INSERT_TERMS = f"INSERT INTO terms ({TERMS_COLUMNS}) VALUES ({_placeholders(TERMS_COLUMNS)})"
_UPDATE_TERMS = (
    "UPDATE terms SET name = ?, source = ?, enforcement = ?, links = ?, updated_at = ? "
    "WHERE pool_id = ? AND id = ? RETURNING 1"
)
# UNIQUE (client_id, name): SQLite names both columns in its message.
_TERMS_UNIQUE = {"terms.id": "id", "terms.client_id, terms.name": "name"}


def _terms_params(r: TermsRecord) -> Params:
    return (
        r.terms_id,
        r.pool_id,
        r.client_id,
        r.name,
        r.source,
        r.enforcement,
        _dumps(r.links),
        r.created_at,
        r.updated_at,
    )


def _terms(r: Row) -> TermsRecord:
    return TermsRecord(
        pool_id=r[1],
        terms_id=r[0],
        client_id=r[2],
        name=r[3],
        source=r[4],
        enforcement=r[5],
        links=_loads(r[6]),
        created_at=r[7],
        updated_at=r[8],
    )


# --- client ID metadata documents: SQL and rows (migration 0021) -------------------------------------------------

CIMD_POLICY_COLUMNS = "id, pool_id, client_id, name, cache_seconds, url_patterns, created_at, updated_at"
CIMD_DOCUMENT_COLUMNS = "policy_id, url, document, cached_at, expires_at"
_INSERT_CIMD_POLICY = f"INSERT INTO cimd_policies ({CIMD_POLICY_COLUMNS}) VALUES ({_placeholders(CIMD_POLICY_COLUMNS)})"
_LIST_CIMD_POLICIES = _paged(f"SELECT {CIMD_POLICY_COLUMNS} FROM cimd_policies", "pool_id = ?", "id")
_LIST_CIMD_DOCUMENTS = _paged(f"SELECT {CIMD_DOCUMENT_COLUMNS} FROM cimd_documents", "policy_id = ?", "url")
_CIMD_POLICY_UNIQUE = {"cimd_policies.id": "id"}


def _cimd_policy_params(r: CimdPolicyRecord) -> Params:
    return (
        r.policy_id,
        r.pool_id,
        r.client_id,
        r.name,
        r.cache_seconds,
        _dumps(r.url_patterns),
        r.created_at,
        r.updated_at,
    )


def _cimd_policy(r: Row) -> CimdPolicyRecord:
    return CimdPolicyRecord(
        policy_id=r[0],
        pool_id=r[1],
        client_id=r[2],
        name=r[3],
        cache_seconds=int(r[4]),
        url_patterns=list(_loads(r[5])),
        created_at=float(r[6]),
        updated_at=float(r[7]),
    )


def _cimd_document(r: Row) -> CimdDocumentRecord:
    return CimdDocumentRecord(policy_id=r[0], url=r[1], document=_loads(r[2]), cached_at=r[3], expires_at=r[4])


if TYPE_CHECKING:
    # mypy proves here that SqliteStore satisfies the Store protocol, method by method.
    def _is_a_store(store: SqliteStore) -> Store:
        return store
