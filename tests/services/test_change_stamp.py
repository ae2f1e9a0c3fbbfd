"""Change stamps (gateway/services/change_stamp.py): shared through a file by every process of a store, and
the ShortCache that follows them."""

from __future__ import annotations

import multiprocessing
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.services.change_stamp import IDENTITIES, KEYS, SETTINGS, SLOT_COUNT, USER_SLOTS, ChangeStamps, user_slot
from gateway.services.identity_pools import IdentityPoolService, LoginNames
from gateway.services.pools import PoolService
from gateway.services.short_cache import ShortCache
from gateway.storage.base import IdentityPoolRecord, PoolRecord
from gateway.storage.sqlite import SqliteStore

ACCOUNT = "123456789012"
FILE_SIZE = 8 * (SLOT_COUNT + USER_SLOTS)  # the settings slots, then the users'


def _bump(path: str) -> None:
    ChangeStamps(Path(path)).bump(IDENTITIES)


def _bump_user(path: str) -> None:
    ChangeStamps(Path(path)).bump(user_slot("us-east-1_pool", "alice"))


def test_a_bump_in_another_process_is_seen(tmp_path: Path) -> None:
    stamps = ChangeStamps.beside(tmp_path / "gatehouse.db")
    assert (tmp_path / "gatehouse.db-stamps").stat().st_size == FILE_SIZE
    settings, identities = stamps.read(SETTINGS), stamps.read(IDENTITIES)
    process = multiprocessing.get_context("spawn").Process(target=_bump, args=(str(tmp_path / "gatehouse.db-stamps"),))
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0
    assert stamps.read(IDENTITIES) != identities
    assert stamps.read(SETTINGS) == settings  # slots are independent
    # A second mapping of the same file (a worker started later) reads the same values.
    assert ChangeStamps.beside(tmp_path / "gatehouse.db").read(IDENTITIES) == stamps.read(IDENTITIES)


def test_process_local_stamps_for_a_database_in_memory() -> None:
    stamps = ChangeStamps.beside(":memory:")
    before = stamps.read()
    stamps.bump()
    assert stamps.read() != before
    assert ChangeStamps.beside(":memory:").read() == 0  # nothing shared


def test_short_cache_follows_the_stamp(tmp_path: Path) -> None:
    stamps = ChangeStamps(tmp_path / "stamps")
    other = ChangeStamps(tmp_path / "stamps")  # another process's mapping
    cache: ShortCache[str, int] = ShortCache(60, stamps=stamps)
    cache.put("a", 1)
    assert cache.get("a") == 1
    other.bump()
    assert cache.get("a") is None  # stale at once, though young
    # A record read while the stamp moved is not kept: it may be the one from before the change.
    assert cache.get("b") is None
    other.bump()
    cache.put("b", 2)
    assert cache.get("b") is None
    cache.put("b", 3)
    assert cache.get("b") == 3
    # Another slot moving leaves the entries alone.
    other.bump(IDENTITIES)
    assert cache.get("b") == 3


def test_a_stamps_file_of_an_earlier_release_grows_its_keys_slot(tmp_path: Path) -> None:
    """A data dir whose stamps file has two slots (SETTINGS, IDENTITIES): the KEYS slot and the users' are added,
    the others kept."""
    path = tmp_path / "gatehouse.db-stamps"
    path.write_bytes(bytes(range(16)))
    stamps = ChangeStamps(path)
    assert path.stat().st_size == FILE_SIZE
    assert stamps.read(SETTINGS) == int.from_bytes(bytes(range(8)), "little") and stamps.read(KEYS) == 0
    stamps.bump(KEYS)
    assert ChangeStamps(path).read(KEYS) == stamps.read(KEYS) != 0


def test_a_read_overtaken_by_a_change_is_not_kept_though_another_call_saw_the_change(tmp_path: Path) -> None:
    """Two calls of one process: the first misses and reads the store; meanwhile a change is committed and
    stamped (here or in another process) and the second call already meets the new stamp. The first call's
    record, read before the change, must not be kept under the new stamp (a deleted role or identity would be
    served for the cache's lifetime)."""
    stamps = ChangeStamps(tmp_path / "stamps")
    other = ChangeStamps(tmp_path / "stamps")
    cache: ShortCache[str, str] = ShortCache(60, stamps=stamps)
    assert cache.get("role") is None
    read_under = cache.stamp()  # the first call, before its store read (which returns the old record)
    other.bump()  # the role is deleted and the change stamped
    assert cache.get("other-role") is None  # the second call meets the new stamp
    cache.put("role", "the deleted role", read_under)
    assert cache.get("role") is None
    # A record read under the current stamp is kept.
    read_under = cache.stamp()
    cache.put("role", "read after the change", read_under)
    assert cache.get("role") == "read after the change"


class _OvertakenStore:
    """A store whose identity pool writes another process overtakes: right after one commits (before the writer
    has resumed), ``then`` runs -- another process's write of the same pool."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.then: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def update_identity_pool(self, record: IdentityPoolRecord) -> IdentityPoolRecord:
        written = await self._store.update_identity_pool(record)
        then, self.then = self.then, None
        if then is not None:
            await then()
        return written


async def test_an_identity_pool_write_overtaken_by_another_process_is_not_cached(tmp_path: Path) -> None:
    """Two processes set an identity pool's roles one right after the other: the first, resuming after the
    second has committed and stamped its write, must not keep its own (older) view as current -- it would hand
    out the roles the second write replaced."""
    store = await SqliteStore.open(str(tmp_path / "gatehouse.db"))
    try:
        overtaken = _OvertakenStore(store)
        services = []
        for backing in (overtaken, store):
            pools = PoolService(backing, region="us-east-1", account_id=ACCOUNT)  # type: ignore[arg-type]
            service = IdentityPoolService(
                backing,  # type: ignore[arg-type]
                pools,
                LoginNames("localhost"),
                region="us-east-1",
                account_id=ACCOUNT,
            )
            service.stamps = ChangeStamps.beside(tmp_path / "gatehouse.db")
            services.append(service)
        first, second = services
        pool_id = (await first.create({"IdentityPoolName": "raced", "AllowUnauthenticatedIdentities": True})).id
        old, new = (f"arn:aws:iam::{ACCOUNT}:role/{name}" for name in ("old", "new"))

        async def second_process_writes() -> None:
            await second.set_roles(pool_id, {"unauthenticated": new}, None)

        overtaken.then = second_process_writes
        await first.set_roles(pool_id, {"unauthenticated": old}, None)
        assert (await second.get(pool_id)).roles == {"unauthenticated": new}  # what the store holds
        assert (await first.get(pool_id)).roles == {"unauthenticated": new}
    finally:
        await store.close()


async def test_news_of_a_change_ends_the_stores_read_snapshot(tmp_path: Path) -> None:
    """The reads of one turn of the event loop share a snapshot; a stamp read in that turn may announce a commit
    made after the snapshot began. Reading a stamp this process has not seen ends the snapshot, so the store read
    that follows (to cache a record under that stamp) sees the change, not the record from before it."""
    database = tmp_path / "gatehouse.db"
    store = await SqliteStore.open(database)
    other = await SqliteStore.open(database)  # another worker process's connections
    stamps = ChangeStamps.beside(database)
    stamps.on_news = store.end_read_snapshot
    try:
        stamps.read()
        await other.create_pool(
            PoolRecord(id="us-east-1_Stamp01", name="a", settings={}, created_at=0.0, updated_at=0.0)
        )
        assert await store.get_pool("us-east-1_Stamp01") is not None  # this turn's snapshot begins with the pool
        await other.delete_pool("us-east-1_Stamp01")
        ChangeStamps.beside(database).bump()  # the other worker's news, after its commit
        stamps.read()
        assert await store.get_pool("us-east-1_Stamp01") is None
    finally:
        await store.close()
        await other.close()


def test_a_users_slot_is_the_same_in_every_process(tmp_path: Path) -> None:
    """A user's slot is a hash every process computes alike (Python's own ``hash`` of a string differs from
    process to process): a bump for a user in one is read for that user in another, and no other slot moves."""
    slot = user_slot("us-east-1_pool", "alice")
    assert SLOT_COUNT <= slot < SLOT_COUNT + USER_SLOTS
    assert user_slot("us-east-1_pool", "bob") != slot and user_slot("us-east-1_other", "alice") != slot
    stamps = ChangeStamps.beside(tmp_path / "gatehouse.db")
    before = [stamps.read(s) for s in range(SLOT_COUNT + USER_SLOTS)]
    process = multiprocessing.get_context("spawn").Process(
        target=_bump_user, args=(str(tmp_path / "gatehouse.db-stamps"),)
    )
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0
    after = [stamps.read(s) for s in range(SLOT_COUNT + USER_SLOTS)]
    assert [s for s in range(len(after)) if after[s] != before[s]] == [slot]


def test_read_news_tells_a_change_once_and_ends_the_snapshot(tmp_path: Path) -> None:
    stamps = ChangeStamps(tmp_path / "stamps")
    other = ChangeStamps(tmp_path / "stamps")
    ended: list[int] = []
    stamps.on_news = lambda: ended.append(1)
    slot = user_slot("us-east-1_pool", "alice")
    first, _ = stamps.read_news(slot)
    ended.clear()
    other.bump(slot)
    stamp, news = stamps.read_news(slot)
    assert news and stamp != first and ended == [1]
    assert stamps.read_news(slot) == (stamp, False) and ended == [1]
