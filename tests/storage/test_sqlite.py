"""The SQLite backend: the conformance suite, then what only SQLite has.

The suite runs on a file database (what ``gatehouse serve`` uses, WAL and all) and on ``:memory:``. The
SQLite-only tests cover the migrations and the multi-process promise: ``gatehouse serve --workers N``
shares one file between processes, so the invariants must hold between connections, not just between
coroutines sharing one (which the store's own lock already serialises). Two store instances on one file
stand in for two processes; one test also uses real processes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import textwrap
import threading
import time
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.services.change_stamp import ChangeStamps
from gateway.storage import sqlite as sqlite_backend
from gateway.storage.base import AlreadyExists, NotFound, OAuthRecord, Store, UserSearch, VersionConflict
from gateway.storage.sqlite import (
    FAMILY_CACHE_BYTES,
    KeptRows,
    Migration,
    SqliteStore,
    load_migrations,
    split_statements,
    text_bytes,
)
from tests.storage.conformance import (
    POOL,
    T0,
    StoreConformance,
    make_client,
    make_code,
    make_family,
    make_group,
    make_pool,
    make_refresh,
    make_session,
    make_user,
    outcomes,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


class TestSqliteConformance(StoreConformance):
    @pytest.fixture(params=["file", "memory"])
    async def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
        path = tmp_path / "gatehouse.db" if request.param == "file" else ":memory:"
        store = await SqliteStore.open(path)
        yield store
        await store.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "gatehouse.db"


@pytest.fixture
async def two_stores(db_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """Two connections to one file, as two worker processes would have, with one pool in it."""
    first = await SqliteStore.open(db_path)
    second = await SqliteStore.open(db_path)
    await first.create_pool(make_pool())
    yield first, second
    await first.close()
    await second.close()


def _pragma(path: Path, name: str) -> object:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


def _migration_rows(path: Path) -> list[tuple[int, float]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall()


def _tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# --- connection settings --------------------------------------------------------------------------------


async def test_open_configures_the_connection(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    try:
        db = store._db
        settings = {}
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "journal_size_limit"):
            rows = list(await db.execute_fetchall(f"PRAGMA {name}"))
            settings[name] = rows[0][0]
        limit = sqlite_backend.WAL_SIZE_LIMIT_BYTES
        assert settings == {
            "journal_mode": "wal",
            "synchronous": 1,
            "foreign_keys": 1,
            "busy_timeout": 10_000,
            "journal_size_limit": limit,
        }
        # The event-loop writer restarts the WAL as often as the main connection: it keeps the limit too.
        assert store._writer is not None
        assert store._writer.execute("PRAGMA journal_size_limit").fetchone()[0] == limit
    finally:
        await store.close()
    assert _pragma(db_path, "journal_mode") == "wal"  # WAL is a property of the file, seen by every process


async def test_close_is_idempotent(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    await store.close()
    await store.close()


# --- migrations -----------------------------------------------------------------------------------------


def test_migrations_are_packaged_and_numbered() -> None:
    migrations = load_migrations()
    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions)) and versions[0] == 1
    assert migrations[0].name == "0001_initial.sql"
    assert all(split_statements(m.sql) for m in migrations)


def test_split_statements_respects_strings_comments_and_triggers() -> None:
    script = textwrap.dedent(
        """\
        -- a header; with a semicolon
        CREATE TABLE t (a TEXT DEFAULT 'x;y');  -- trailing; comment
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN
            UPDATE t SET a = 'z;' WHERE a = new.a;
            DELETE FROM t WHERE a = 'q';
        END;
        /* a block; comment */ INSERT INTO t (a) VALUES ('1');
        -- a footer
        """
    )
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[0].startswith("-- a header") and statements[0].endswith("-- trailing; comment")
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with closing(sqlite3.connect(":memory:")) as db:
        for statement in statements:
            db.execute(statement)
        assert db.execute("SELECT a FROM t").fetchall() == [("z;",)]
    with pytest.raises(ValueError):
        split_statements("CREATE TABLE t (a TEXT)")


async def test_migrations_are_applied_once_and_reopening_is_a_no_op(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    await store.create_pool(make_pool())
    await store.close()
    applied = _migration_rows(db_path)
    assert [version for version, _ in applied] == [m.version for m in load_migrations()]
    tables = _tables(db_path)
    assert {"schema_migrations", "pools", "users", "user_aliases", "refresh_tokens"} <= tables

    store = await SqliteStore.open(db_path)
    try:
        assert await store.get_pool(POOL) == make_pool()
    finally:
        await store.close()
    assert _migration_rows(db_path) == applied  # same rows, same applied_at
    assert _tables(db_path) == tables


async def test_processes_opening_a_new_file_at_once_migrate_it_once(db_path: Path) -> None:
    stores = await asyncio.gather(*(SqliteStore.open(db_path) for _ in range(6)))
    try:
        await stores[0].create_pool(make_pool())
        assert all([await s.get_pool(POOL) for s in stores])
    finally:
        for store in stores:
            await store.close()
    assert [version for version, _ in _migration_rows(db_path)] == [m.version for m in load_migrations()]


async def test_a_failing_migration_leaves_no_trace(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Migration(
        load_migrations()[-1].version + 1, "broken.sql", "CREATE TABLE extra (x TEXT);\nSELECT no_such_fn();"
    )
    real = load_migrations()
    monkeypatch.setattr(sqlite_backend, "load_migrations", lambda: [*real, broken])
    with pytest.raises(sqlite3.OperationalError):
        await SqliteStore.open(db_path)
    # One transaction for the whole run: not even the good migrations stayed.
    assert "extra" not in _tables(db_path)
    assert "pools" not in _tables(db_path)

    monkeypatch.setattr(sqlite_backend, "load_migrations", lambda: real)
    store = await SqliteStore.open(db_path)
    await store.close()
    assert "pools" in _tables(db_path)


async def test_challenge_sessions_in_flight_survive_the_clustered_table_migration(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0016 rebuilds auth_sessions as one WITHOUT ROWID b-tree; a session stored before it is still taken
    once after it."""
    real = load_migrations()
    before = [m for m in real if m.version < 16]
    monkeypatch.setattr(sqlite_backend, "load_migrations", lambda: before)
    store = await SqliteStore.open(db_path)
    await store.create_pool(make_pool())
    await store.put_auth_session(make_session("in-flight", "alice"))
    await store.close()

    monkeypatch.setattr(sqlite_backend, "load_migrations", lambda: real)
    store = await SqliteStore.open(db_path)
    try:
        with closing(sqlite3.connect(db_path)) as db:
            (ddl,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'auth_sessions'").fetchone()
            indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'auth_sessions'")}
        assert "WITHOUT ROWID" in ddl and "auth_sessions_by_user" in indexes
        taken = await store.take_auth_session("in-flight")
        assert taken is not None and taken.username_key == "alice" and taken.state["srp_b"] == "abc123"
        assert await store.take_auth_session("in-flight") is None
    finally:
        await store.close()


async def test_families_of_clients_deleted_before_0026_are_revoked_by_it(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0026 indexes token families by their app client (a client ID metadata document client's found through its
    CIMD policy's cached document) and revokes those whose app client was deleted before deletions revoked them;
    a live client's stay, and so does a metadata document client's whose app client is unknown."""
    real = load_migrations()
    monkeypatch.setattr(sqlite_backend, "load_migrations", lambda: [m for m in real if m.version < 26])
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        for client_id in ("kept", "deleted"):
            await store.create_client(make_client(client_id))
    finally:
        await store.close()
    with closing(sqlite3.connect(db_path)) as db, db:
        # Families as Gatehouse stored them before 0026 (it has the columns up to 0025's), then a deletion as it
        # made it then: the client's row alone.
        families = [
            ("of-kept", "kept"),
            ("of-deleted", "deleted"),
            ("of-url", "https://a.example/c"),
            ("of-tool-kept", "https://tools.example/kept"),
            ("of-tool-deleted", "https://tools.example/deleted"),
        ]
        for jti, client_id in families:
            db.execute(
                "INSERT INTO token_families (origin_jti, pool_id, client_id, username_key, auth_time, created_at, "
                "expires_at) VALUES (?, ?, ?, 'alice', 0, 0, ?)",
                (jti, POOL, client_id, time.time() + 3600),
            )
        for app_client in ("kept", "deleted"):
            db.execute(
                "INSERT INTO cimd_policies (id, pool_id, client_id, name, cache_seconds, url_patterns, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, 3600, ?, 0, 0)",
                (f"policy-{app_client}", POOL, app_client, app_client, '["https://tools.example/*"]'),
            )
            db.execute(
                "INSERT INTO cimd_documents (policy_id, url, document, cached_at, expires_at) "
                "VALUES (?, ?, '{}', 0, ?)",
                (f"policy-{app_client}", f"https://tools.example/{app_client}", time.time() + 3600),
            )
        db.execute("DELETE FROM clients WHERE id = 'deleted'")

    monkeypatch.setattr(sqlite_backend, "load_migrations", lambda: real)
    store = await SqliteStore.open(db_path)
    try:
        for jti, revoked in [
            ("of-kept", False),
            ("of-deleted", True),
            ("of-url", False),
            ("of-tool-kept", False),
            ("of-tool-deleted", True),
        ]:
            family = await store.get_token_family(jti)
            assert family is not None and family.revoked is revoked, jti
        with closing(sqlite3.connect(db_path)) as db:
            app_clients = dict(db.execute("SELECT origin_jti, app_client_id FROM token_families").fetchall())
        assert app_clients == {
            "of-kept": None,
            "of-deleted": None,
            "of-url": None,
            "of-tool-kept": "kept",
            "of-tool-deleted": "deleted",
        }
        # The kept tool's family now goes with its app client.
        assert await store.delete_client(POOL, "kept") is True
        tool = await store.get_token_family("of-tool-kept")
        assert tool is not None and tool.revoked
        with closing(sqlite3.connect(db_path)) as db:
            plan = db.execute("EXPLAIN QUERY PLAN " + sqlite_backend._REVOKE_CLIENT_FAMILIES, ("kept", POOL)).fetchall()
        assert "token_families_by_app_client" in str(plan)
    finally:
        await store.close()


async def test_a_database_from_a_newer_gatehouse_is_refused(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    await store.close()
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)")
    with pytest.raises(RuntimeError, match="9999"):
        await SqliteStore.open(db_path)


# --- SQLite's own behaviour -----------------------------------------------------------------------------


async def test_missing_parents_raise_not_found_and_write_nothing(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    try:
        with pytest.raises(NotFound):
            await store.put_code(make_code("alice"))
        await store.create_pool(make_pool())
        await store.create_group(make_group("admins"))
        with pytest.raises(NotFound):
            await store.add_user_to_group(POOL, "nobody", "admins")
        # A refresh token naming another family: the family insert before it is rolled back too.
        family = make_family("jti-1", "alice")
        stray = make_refresh("rt-1", make_family("jti-elsewhere", "alice"))
        with pytest.raises(NotFound):
            await store.create_token_family(family, stray)
        assert await store.get_token_family("jti-1") is None
    finally:
        await store.close()


async def test_a_failed_write_leaves_no_transaction_open(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice", aliases={"email": "a@example.com"}))
        with pytest.raises(AlreadyExists):
            await store.create_user(make_user("bob", aliases={"email": "a@example.com"}))
        assert not store._db.in_transaction
        await store.create_user(make_user("bob"))
    finally:
        await store.close()


async def test_writers_wait_for_another_processs_write_lock(
    db_path: Path, two_stores: tuple[SqliteStore, SqliteStore]
) -> None:
    """The busy timeout: a write blocked by another connection's transaction waits, it does not fail."""
    first, _ = two_stores
    held = threading.Event()
    release = threading.Event()

    def hold_write_lock() -> None:
        with closing(sqlite3.connect(db_path, isolation_level=None)) as raw:
            raw.execute("BEGIN IMMEDIATE")
            held.set()
            release.wait(5)
            raw.execute("COMMIT")

    holder = threading.Thread(target=hold_write_lock)
    holder.start()
    try:
        assert await asyncio.to_thread(held.wait, 5)
        create = asyncio.create_task(first.create_user(make_user("alice")))
        await asyncio.sleep(0.3)
        assert not create.done()  # waiting on the lock, not failed
        release.set()
        await asyncio.wait_for(create, 5)
    finally:
        release.set()
        await asyncio.to_thread(holder.join)
    assert await first.get_user(POOL, "alice") is not None


# --- two connections, one file --------------------------------------------------------------------------


async def test_two_instances_racing_create_user_make_one_user(two_stores: tuple[SqliteStore, SqliteStore]) -> None:
    first, second = two_stores
    calls = [(first, second)[i % 2].create_user(make_user("alice", aliases={"email": f"{i}@x"})) for i in range(10)]
    results = await outcomes(calls)
    assert results.count(None) == 1
    assert all(isinstance(r, AlreadyExists) and r.key == "username" for r in results if r is not None)
    assert await first.count_users(POOL) == await second.count_users(POOL) == 1
    winner = await second.get_user(POOL, "alice")
    assert winner is not None
    # Only the winner's alias exists: the losers' transactions wrote nothing.
    found = [await first.get_user_by_alias(POOL, "email", f"{i}@x") for i in range(10)]
    assert [u for u in found if u is not None] == [winner]


async def test_two_instances_racing_one_alias_make_one_user(two_stores: tuple[SqliteStore, SqliteStore]) -> None:
    first, second = two_stores
    calls = [(first, second)[i % 2].create_user(make_user(f"u{i}", aliases={"email": "same@x"})) for i in range(10)]
    results = await outcomes(calls)
    assert results.count(None) == 1
    assert all(isinstance(r, AlreadyExists) and r.key == "alias:email" for r in results if r is not None)
    assert await first.count_users(POOL) == 1


async def test_two_instances_racing_rotation_have_one_winner(two_stores: tuple[SqliteStore, SqliteStore]) -> None:
    first, second = two_stores
    family = make_family("jti-1", "alice")
    await first.create_token_family(family, make_refresh("rt-0", family))
    candidates = [make_refresh(f"rt-{i}", family) for i in range(1, 21)]
    results = await outcomes(
        [(first, second)[i % 2].rotate_refresh_token("rt-0", c, T0) for i, c in enumerate(candidates)]
    )
    assert results.count(True) == 1
    assert results.count(False) == len(candidates) - 1
    stored = [await second.get_refresh_token(c.token_hash) for c in candidates]
    assert [t for t in stored if t is not None] == [candidates[results.index(True)]]


async def test_two_instances_racing_code_and_version(two_stores: tuple[SqliteStore, SqliteStore]) -> None:
    first, second = two_stores
    await first.put_code(make_code("alice"))
    consumed = await outcomes(
        [(first, second)[i % 2].consume_code(POOL, "alice", "signup", "hash-1") for i in range(10)]
    )
    assert consumed.count(True) == 1
    updates = await outcomes([(first, second)[i % 2].update_pool(make_pool(name=f"n{i}")) for i in range(10)])
    assert sum(not isinstance(r, BaseException) for r in updates) == 1
    assert sum(isinstance(r, VersionConflict) for r in updates) == 9


# --- real processes -------------------------------------------------------------------------------------

_WORKER = """
import asyncio, sys, time
from gateway.storage.sqlite import SqliteStore
from tests.storage.conformance import make_family, make_refresh, make_user

async def main(path: str, worker: int, start: float) -> None:
    store = await SqliteStore.open(path)
    family = make_family("jti-1", "alice")
    await asyncio.sleep(max(0.0, start - time.time()))
    results = await asyncio.gather(
        *(store.create_user(make_user("alice")) for _ in range(5)),
        *(store.rotate_refresh_token("rt-0", make_refresh(f"rt-{worker}-{i}", family), 1.0) for i in range(5)),
        return_exceptions=True,
    )
    await store.close()
    users = sum(r is None for r in results[:5])
    rotations = sum(r is True for r in results[5:])
    print(users, rotations)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


async def test_worker_processes_racing_on_one_file(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    await store.create_pool(make_pool())
    family = make_family("jti-1", "alice")
    await store.create_token_family(family, make_refresh("rt-0", family))
    start = time.time() + 1.5  # every worker imported and connected before the race starts
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            str(db_path),
            str(n),
            str(start),
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for n in range(4)
    ]
    users = rotations = 0
    for worker in workers:
        out, err = await asyncio.wait_for(worker.communicate(), 60)
        assert worker.returncode == 0, err.decode()
        won_users, won_rotations = map(int, out.split())
        users += won_users
        rotations += won_rotations
    try:
        assert (users, rotations) == (1, 1)
        assert await store.count_users(POOL) == 1
        old = await store.get_refresh_token("rt-0")
        assert old is not None and old.replaced_by is not None
        assert await store.get_refresh_token(old.replaced_by) is not None
    finally:
        await store.close()


# --- the event-loop writer (challenge sessions, token families) ----------------------------------------------


async def test_a_session_is_taken_once_across_connections(two_stores: tuple[SqliteStore, SqliteStore]) -> None:
    first, second = two_stores
    await first.create_user(make_user("alice"))
    hashes = [f"race-{i}" for i in range(40)]
    for session_hash in hashes:
        await first.put_auth_session(make_session(session_hash, "alice"))
    for session_hash in hashes:
        # Both "processes" answer the same challenge at once: one gets the session, the other nothing.
        taken = await asyncio.gather(
            first.take_auth_session(session_hash),
            second.take_auth_session(session_hash),
            first.take_auth_session(session_hash),
            second.take_auth_session(session_hash),
        )
        assert sum(record is not None for record in taken) == 1
    assert await first.take_auth_session(hashes[0]) is None


async def test_hot_writes_wait_for_another_processs_write_off_the_event_loop(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        with closing(sqlite3.connect(db_path, isolation_level=None)) as other:
            other.execute("PRAGMA busy_timeout = 5000")
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            other.execute("UPDATE users SET status = 'CONFIRMED' WHERE username_key = 'alice'")
            put = asyncio.create_task(store.put_auth_session(make_session("held", "alice")))
            started = time.monotonic()
            ticks = 0
            while time.monotonic() - started < 0.3:
                await asyncio.sleep(0.01)
                ticks += 1
            # The write waits (on aiosqlite's thread), and the event loop kept running meanwhile.
            assert not put.done()
            assert ticks >= 10
            other.execute("COMMIT")
            await asyncio.wait_for(put, 10)
        taken = await store.take_auth_session("held")
        assert taken is not None and taken.username_key == "alice"
        assert await store.take_auth_session("held") is None
    finally:
        await store.close()


async def test_a_failed_family_insert_leaves_nothing(db_path: Path) -> None:
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        first = make_family("family-1", "alice")
        await store.create_token_family(first, make_refresh("refresh-1", first))
        second = make_family("family-2", "alice")
        with pytest.raises(AlreadyExists):
            # The refresh token's hash is taken: the family inserted just before it is rolled back with it.
            await store.create_token_family(second, make_refresh("refresh-1", second))
        assert await store.get_token_family("family-2") is None
        with pytest.raises(NotFound):
            orphan = make_family("family-3", "alice", pool_id="us-east-1_Missing")
            await store.create_token_family(orphan, make_refresh("refresh-3", orphan))
        assert await store.get_token_family("family-3") is None
        assert await store.get_refresh_token("refresh-3") is None
        # And the writer is usable afterwards.
        third = make_family("family-4", "alice")
        await store.create_token_family(third, make_refresh("refresh-4", third))
        assert (await store.get_refresh_token("refresh-4")) is not None
    finally:
        await store.close()


async def test_event_loop_writes_keep_the_wal_bounded(db_path: Path) -> None:
    """The event-loop writer never checkpoints itself; the store checkpoints on aiosqlite's thread every
    WAL_CHECKPOINT_EVERY of its commits, so the WAL stops growing."""
    every = sqlite_backend.WAL_CHECKPOINT_EVERY
    wal = db_path.with_name(db_path.name + "-wal")
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        early_size = 0
        for i in range(4 * every):
            await store.put_auth_session(make_session(f"s-{i}", "alice"))
            if i % 10 == 0:
                await asyncio.sleep(0)  # as a server's event loop does between requests
            if i == every - 10:
                early_size = wal.stat().st_size
        await asyncio.sleep(0.2)
        assert early_size > 0
        assert wal.stat().st_size < 2 * early_size
        assert await store.take_auth_session(f"s-{4 * every - 1}") is not None
    finally:
        await store.close()


async def test_oauth_records_are_written_on_the_loop_or_wait_for_another_processs_lock(db_path: Path) -> None:
    """put_oauth_record: written at once on the event-loop writer; while another process holds the write
    lock, queued on aiosqlite's thread (the event loop keeps running), then written; a taken key is refused
    either way."""
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        await store.put_oauth_record(OAuthRecord("code", "k1", POOL, "client-1", "alice", {"n": 1}, T0 + 300))
        assert await store.oauth_record_expiry("code", "k1") == T0 + 300
        with closing(sqlite3.connect(db_path, isolation_level=None)) as other:
            other.execute("PRAGMA busy_timeout = 5000")
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            put = asyncio.create_task(
                store.put_oauth_record(OAuthRecord("code", "k2", POOL, "client-1", "alice", {}, T0 + 300))
            )
            started = time.monotonic()
            ticks = 0
            while time.monotonic() - started < 0.3:
                await asyncio.sleep(0.01)
                ticks += 1
            assert not put.done() and ticks >= 10
            other.execute("COMMIT")
            await asyncio.wait_for(put, 10)
        assert await store.get_oauth_record("code", "k2") is not None
        with pytest.raises(AlreadyExists):
            await store.put_oauth_record(OAuthRecord("code", "k1", POOL, "client-1", "bob", {}, T0 + 300))
        record = await store.get_oauth_record("code", "k1")
        assert record is not None and record.username_key == "alice" and record.data == {"n": 1}
    finally:
        await store.close()


def _delete_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def test_health_reports_a_database_file_deleted_or_replaced(db_path: Path) -> None:
    # Writes to a deleted file go to its old inode and vanish at restart: /health must say so.
    store = await SqliteStore.open(db_path)
    try:
        assert await store.health_problem() is None
        _delete_database(db_path)
        problem = await store.health_problem()
        assert problem is not None and "deleted or replaced" in problem and str(db_path) in problem
        # A new file at the same path is not the one this store writes to either.
        with closing(sqlite3.connect(db_path)) as fresh:
            fresh.execute("CREATE TABLE t (x)")
        problem = await store.health_problem()
        assert problem is not None and "deleted or replaced" in problem
    finally:
        await store.close()
    assert await store.health_problem() == "the store is closed"


def _as_before_0020(db_path: Path) -> None:
    """Make the database what it was before 0020: no ListUsers index, and 0020 not applied."""
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("DROP TABLE user_search")
        db.execute("DELETE FROM schema_migrations WHERE version = 20")


async def test_users_stored_before_the_search_index_are_found_by_it(db_path: Path) -> None:
    """0020 adds ListUsers' search index; its backfill indexes the users already there (folded by str.lower,
    more than a thousand of them, so in several batches)."""
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        for n in range(1203):
            await store.create_user(make_user(f"user{n:04d}", attributes={"email": f"User{n:04d}@Example.com"}))
        await store.create_user(make_user("émile", attributes={"email": "ÉMILE@example.com"}))
    finally:
        await store.close()
    _as_before_0020(db_path)

    store = await SqliteStore.open(db_path)
    try:
        for email, key in [("user1202@example.com", "user1202"), ("user0000@example.com", "user0000")]:
            page = await store.list_users(POOL, None, 60, where=UserSearch("email", email, folded=True))
            assert [u.username_key for u in page.items] == [key]
        page = await store.list_users(POOL, None, 60, where=UserSearch("email", "émile@example.com", folded=True))
        assert [u.username_key for u in page.items] == ["émile"]
    finally:
        await store.close()
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT COUNT(DISTINCT username_key) FROM user_search").fetchone()[0] == 1204


_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT COUNT(*) FROM users").fetchone()
print("open", flush=True)
time.sleep(60)
"""


async def test_a_schema_upgrade_waits_until_no_other_process_has_the_file_open(db_path: Path) -> None:
    """An older Gatehouse still serving a database checked its schema when it opened it: were the file upgraded
    under it, it would go on writing users without the ListUsers index 0020 keeps. The upgrade is refused while
    another process has the file open, and goes through once it has closed it."""
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        await store.create_user(make_user("ada", attributes={"email": "ada@example.com"}))
    finally:
        await store.close()
    _as_before_0020(db_path)
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLDER, str(db_path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"open\n"
        with pytest.raises(
            RuntimeError, match=rf"migrations \[20\]\) but other processes have it open \(pid {holder.pid}\)"
        ):
            await SqliteStore.open(db_path)
        assert 20 not in [version for version, _ in _migration_rows(db_path)]
    finally:
        holder.kill()
        await holder.wait()
    store = await SqliteStore.open(db_path)
    try:
        page = await store.list_users(POOL, None, 60, where=UserSearch("email", "ada@example.com", folded=True))
        assert [u.username_key for u in page.items] == ["ada"]
    finally:
        await store.close()


async def test_clients_stored_before_rotation_keep_their_one_secret(db_path: Path) -> None:
    """0022 adds the clients' rotated secrets; a client stored before it reads back unchanged (no list: its
    one secret is the ``secret`` column), and can be rotated afterwards."""
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        await store.create_client(make_client("old", secret="s" * 51))
    finally:
        await store.close()
    # As the database was before 0022: no secrets column, and 0022 not applied (SQLite >= 3.35 drops columns).
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("ALTER TABLE clients DROP COLUMN secrets")
        db.execute("DELETE FROM schema_migrations WHERE version = 22")

    store = await SqliteStore.open(db_path)
    try:
        client = await store.get_client("old")
        assert client is not None and client.secret == "s" * 51 and client.secrets is None
        rotated = [
            {"id": "old--1", "value": "s" * 51, "created": 1.0},
            {"id": "old--2", "value": "t" * 51, "created": 2.0},
        ]
        await store.update_client(replace(client, secrets=rotated))
        again = await store.get_client("old")
        assert again is not None and again.secrets == rotated
    finally:
        await store.close()


# --- the reader's snapshot: one read transaction per turn of the event loop ------------------------------


def _revoke_elsewhere(path: Path, origin_jti: str) -> None:
    """Another process's commit, made at once: the family revoked through a connection of its own that tells
    the users' change stamps, as every connection of a Gatehouse store does."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        changes = sqlite_backend._UserChanges(ChangeStamps.beside(path))
        changes.install(other)
        other.execute("UPDATE token_families SET revoked = 1 WHERE origin_jti = ?", (origin_jti,))
        changes.settle(other)


async def _store_with_family(path: Path) -> SqliteStore:
    store = await SqliteStore.open(path)
    try:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        family = make_family("family-1", "alice")
        await store.create_token_family(family, make_refresh("refresh-1", family))
    except BaseException:
        await store.close()  # an open store's aiosqlite thread would keep the test run from exiting
        raise
    return store


async def test_the_reader_sees_another_processs_commit_from_the_next_turn_on(db_path: Path) -> None:
    store = await _store_with_family(db_path)
    try:
        found = await store.get_token_family_with_user("family-1")
        assert found is not None and not found[0].revoked
        _revoke_elsewhere(db_path, "family-1")
        await asyncio.sleep(0)  # the next turn of the loop: a request that could know of the commit
        found = await store.get_token_family_with_user("family-1")
        assert found is not None and found[0].revoked
    finally:
        await store.close()


async def test_a_write_on_the_event_loop_ends_the_turns_snapshot(db_path: Path) -> None:
    """Within one turn, a read after this process's own write on the event loop sees that write (and all
    else committed by then)."""
    store = await _store_with_family(db_path)
    try:
        await asyncio.sleep(0)
        turned: list[int] = []
        asyncio.get_running_loop().call_soon(turned.append, 1)
        assert await store.get_token_family_with_user("family-2") is None  # the turn's snapshot begins
        _revoke_elsewhere(db_path, "family-1")
        second = make_family("family-2", "alice")
        await store.create_token_family(second, make_refresh("refresh-2", second))
        assert turned == [], "the write suspended: this test no longer checks a write within one turn"
        mine = await store.get_token_family_with_user("family-2")
        assert mine is not None
        theirs = await store.get_token_family_with_user("family-1")
        assert theirs is not None and theirs[0].revoked
    finally:
        await store.close()


def test_a_snapshot_left_by_a_stopped_loop_is_not_read_from_another(db_path: Path) -> None:
    first_loop = asyncio.new_event_loop()
    store = first_loop.run_until_complete(_store_with_family(db_path))
    try:

        async def read_then_stop() -> None:
            assert await store.get_token_family_with_user("family-1") is not None
            first_loop.stop()  # the loop stops at the end of this turn: the snapshot's end never runs

        first_loop.run_until_complete(read_then_stop())
        _revoke_elsewhere(db_path, "family-1")
        second_loop = asyncio.new_event_loop()
        try:
            found = second_loop.run_until_complete(store.get_token_family_with_user("family-1"))
        finally:
            second_loop.close()
        assert found is not None and found[0].revoked
    finally:
        # The first loop's last turn left the snapshot's end and run_until_complete's own stop() queued: one
        # run_forever() runs both and returns, then the store closes on that loop.
        first_loop.run_forever()
        first_loop.run_until_complete(store.close())
        first_loop.close()


# --- sessions kept in memory, and the users' change stamps -------------------------------------------------


async def _session_of(store: SqliteStore, origin_jti: str) -> tuple[bool, bool | None, dict[str, str] | None]:
    """What a token check learns of a session: revoked, the user enabled (None: gone), the user's attributes."""
    found = await store.get_token_family_with_user(origin_jti)
    assert found is not None
    family, user = found
    return family.revoked, None if user is None else user.enabled, None if user is None else user.attributes


async def test_a_kept_session_serves_fresh_records_each_time(db_path: Path) -> None:
    store = await _store_with_family(db_path)
    try:
        first = await store.get_token_family_with_user("family-1")
        assert first is not None and first[1] is not None
        first[1].attributes["email"] = "changed-by-a-caller@example.com"
        first[0].revoked = True
        again = await store.get_token_family_with_user("family-1")
        assert again is not None and again[1] is not None
        assert again[1].attributes["email"] == "alice@example.com" and not again[0].revoked
        assert again[1] is not first[1]
    finally:
        await store.close()


def test_kept_rows_are_bounded_by_count_and_by_bytes() -> None:
    kept: KeptRows[str, str] = KeptRows(entries=3, budget=100)
    for key in "abc":
        kept.put(key, key.upper(), 10)
    kept.put("d", "D", 10)  # a fourth: the oldest goes
    assert [kept.get(k) for k in "abcd"] == [None, "B", "C", "D"] and kept.bytes == 30
    kept.put("e", "E", 85)  # within the count once one goes, within the bytes once another goes too
    assert [kept.get(k) for k in "bcde"] == [None, None, "D", "E"] and kept.bytes == 95
    kept.put("e", "E2", 40)  # put again: its old size no longer counts
    assert kept.get("e") == "E2" and kept.bytes == 50 and len(kept) == 2
    kept.put("huge", "H", 101)  # larger than the whole budget: not kept, and nothing let go for it
    assert kept.get("huge") is None and kept.get("d") == "D" and kept.bytes == 50
    assert text_bytes(("abc", b"de", 7, None)) == 5 + 4 * 16


async def test_sessions_of_a_user_with_large_attributes_are_kept_within_the_byte_budget(db_path: Path) -> None:
    """Every session keeps its own copy of the user's row: a user who wrote long attributes and signed in many
    times must not make the process keep them all."""
    store = await SqliteStore.open(db_path)
    try:
        await store.create_pool(make_pool())
        big = {f"custom:a{n}": "x" * 2048 for n in range(25)}  # ~51 KB of attributes
        await store.create_user(make_user("bulky", attributes=big))
        sessions = FAMILY_CACHE_BYTES // 51_000 + 200
        for n in range(sessions):
            family = make_family(f"f-{n}", "bulky")
            await store.create_token_family(family, make_refresh(f"r-{n}", family))
        for n in range(sessions):
            found = await store.get_token_family_with_user(f"f-{n}")
            assert found is not None and found[1] is not None and found[1].attributes == big
        assert 0 < store._families.bytes <= FAMILY_CACHE_BYTES
        assert len(store._families) < sessions
        last = await store.get_token_family_with_user(f"f-{sessions - 1}")  # the newest is kept, and right
        assert last is not None and last[1] is not None and last[1].attributes == big
    finally:
        await store.close()


async def test_every_change_by_another_process_reaches_a_kept_session(db_path: Path) -> None:
    """Each kind of write a second store (another worker) makes is seen by the first one's next read, through
    the aiosqlite thread and the event-loop writer alike, foreign-key cascades included."""
    store = await _store_with_family(db_path)
    other = await SqliteStore.open(db_path)
    try:
        for name in ("bob", "carol", "dave"):
            await store.create_user(make_user(name))
            family = make_family(f"family-{name}", name)
            await store.create_token_family(family, make_refresh(f"refresh-{name}", family))
        sessions = ("family-1", "family-bob", "family-carol", "family-dave")
        for origin in sessions:  # kept now
            assert await _session_of(store, origin) == (False, True, (await _session_of(store, origin))[2])

        assert await other.revoke_token_family("family-1")
        assert (await _session_of(store, "family-1"))[0] is True

        user = await other.get_user(POOL, "bob")
        assert user is not None
        await other.update_user(replace(user, enabled=False, attributes={**user.attributes, "name": "Bob"}))
        _, enabled, attributes = await _session_of(store, "family-bob")
        assert enabled is False and attributes is not None and attributes["name"] == "Bob"

        assert await other.revoke_user_token_families(POOL, "carol") == 1
        assert (await _session_of(store, "family-carol"))[0] is True

        assert await other.delete_user(POOL, "dave")
        assert await store.get_token_family_with_user("family-dave") is None  # its families went with it

        assert await other.delete_pool(POOL)  # every user and family, by cascade
        for origin in sessions:
            assert await store.get_token_family_with_user(origin) is None
    finally:
        await other.close()
        await store.close()


async def test_a_change_in_another_os_process_reaches_a_kept_session(db_path: Path) -> None:
    store = await _store_with_family(db_path)
    try:
        assert (await _session_of(store, "family-1"))[0] is False
        script = textwrap.dedent(
            """
            import asyncio, sys
            from gateway.storage.sqlite import SqliteStore

            async def main():
                store = await SqliteStore.open(sys.argv[1])
                try:
                    assert await store.revoke_token_family("family-1")
                finally:
                    await store.close()

            asyncio.run(main())
            """
        )
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(db_path))
        assert await process.wait() == 0
        assert (await _session_of(store, "family-1"))[0] is True
    finally:
        await store.close()


async def test_the_change_triggers_are_the_connections_own(db_path: Path) -> None:
    """The triggers that tell of changed users are TEMP ones: the file's schema has none, and a program that
    opens it with plain sqlite3 writes users as before."""
    store = await _store_with_family(db_path)
    try:
        await store.get_token_family_with_user("family-1")
        with closing(sqlite3.connect(db_path)) as plain:
            assert plain.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == []
            plain.execute("UPDATE users SET enabled = 1 WHERE username_key = 'alice'")
            plain.commit()
    finally:
        await store.close()


async def test_a_session_read_from_a_snapshot_older_than_its_change_is_not_kept(db_path: Path) -> None:
    """A row read from the turn's snapshot, begun before another process committed a change to its user, is
    read again once the user's stamp tells of the change: kept as it was, it would stay stale under the new
    stamp for good."""
    store = await _store_with_family(db_path)
    try:
        second = make_family("family-2", "alice")
        await store.create_token_family(second, make_refresh("refresh-2", second))
        assert await store.get_token_family_with_user("family-2") is not None  # alice's stamp, seen
        await asyncio.sleep(0)
        assert await store.get_user(POOL, "alice") is not None  # the turn's snapshot begins
        _revoke_elsewhere(db_path, "family-1")  # within the same turn
        found = await store.get_token_family_with_user("family-1")
        assert found is not None and found[0].revoked
        await asyncio.sleep(0)
        found = await store.get_token_family_with_user("family-1")
        assert found is not None and found[0].revoked
    finally:
        await store.close()


async def test_every_change_to_a_users_groups_reaches_the_kept_groups(db_path: Path) -> None:
    """A user's groups are kept like the sessions: a membership added or removed, a group's precedence or role
    changed, a group deleted (its memberships go by cascade) -- by another worker -- are seen at the next read."""
    store = await _store_with_family(db_path)
    other = await SqliteStore.open(db_path)
    try:
        await store.create_user(make_user("bob"))
        for name in ("admins", "staff"):
            await store.create_group(make_group(name))
        await store.add_user_to_group(POOL, "alice", "staff")
        await store.add_user_to_group(POOL, "bob", "staff")

        async def groups_of(username: str) -> list[tuple[str, int | None, str | None]]:
            return [(g.name, g.precedence, g.role_arn) for g in await store.list_groups_for_user(POOL, username)]

        assert await groups_of("alice") == [("staff", None, None)]
        assert await groups_of("bob") == [("staff", None, None)]
        (await store.list_groups_for_user(POOL, "alice"))[0].precedence = 99  # a caller's own copy
        assert await groups_of("alice") == [("staff", None, None)]

        await other.add_user_to_group(POOL, "alice", "admins")
        assert await groups_of("alice") == [("admins", None, None), ("staff", None, None)]

        role = "arn:aws:iam::123456789012:role/staff"
        await other.update_group(make_group("staff", precedence=3, role_arn=role))
        assert await groups_of("alice") == [("admins", None, None), ("staff", 3, role)]
        assert await groups_of("bob") == [("staff", 3, role)]

        await other.remove_user_from_group(POOL, "alice", "admins")
        assert await groups_of("alice") == [("staff", 3, role)]

        assert await other.delete_group(POOL, "staff")
        assert await groups_of("alice") == [] and await groups_of("bob") == []
    finally:
        await other.close()
        await store.close()
