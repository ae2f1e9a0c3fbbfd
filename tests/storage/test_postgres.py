"""The PostgreSQL backend: the conformance suite on a real PostgreSQL server (tests/postgres_server.py), one
fresh database per test, copied from a template the store migrated once; then what only PostgreSQL has."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer, postgres_binaries
from tests.storage.conformance import StoreConformance

pytest.importorskip("asyncpg", reason="the postgres extra (asyncpg) is not installed")
pytestmark = pytest.mark.skipif(
    postgres_binaries() is None, reason="PostgreSQL is not installed (scripts/test.sh installs Debian's postgresql)"
)

from gateway.storage.base import IdentityLogin, ProviderLinkRecord, Store  # noqa: E402
from gateway.storage.postgres import PostgresStore  # noqa: E402
from tests.storage.conformance import (  # noqa: E402
    ID_POOL,
    T0,
    make_identity,
    make_identity_pool,
    make_user,
)

TEMPLATE = "gatehouse_template"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        server.create_database(TEMPLATE)
        yield server


@pytest.fixture(scope="module")
def migrated(postgres: PostgresServer) -> str:
    """The template database, with the schema applied once by the store itself."""
    import asyncio

    async def migrate() -> None:
        store = await PostgresStore.open(postgres.dsn_for(TEMPLATE), min_size=1, max_size=1)
        await store.close()

    asyncio.run(migrate())
    return TEMPLATE


class TestPostgresConformance(StoreConformance):
    @pytest.fixture
    async def store(self, postgres: PostgresServer, migrated: str) -> AsyncIterator[Store]:
        dsn = postgres.create_database(f"t{next(_numbers)}", template=migrated)
        store = await PostgresStore.open(dsn, min_size=1, max_size=10)
        yield store
        await store.close()


# --- what only PostgreSQL has ---------------------------------------------------------------------------------


async def test_text_with_a_nul_character_finds_nothing_and_is_not_stored(
    postgres: PostgresServer, migrated: str
) -> None:
    """PostgreSQL's text holds no NUL (SQLite's does): a look-up by such a key finds nothing, as no stored key can
    hold one; a write naming such text, even only to find its row, is an invalid parameter, never the driver's
    error."""
    from gateway.errors import InvalidParameterException
    from tests.storage.conformance import POOL, make_group, make_pool

    store = await PostgresStore.open(postgres.create_database(f"t{next(_numbers)}", template=migrated))
    try:
        await store.create_pool(make_pool())
        assert await store.get_pool("us-east-1_\x00") is None
        assert await store.get_user(POOL, "a\x00b") is None
        with pytest.raises(InvalidParameterException):
            await store.delete_group(POOL, "no\x00group")
        with pytest.raises(InvalidParameterException):
            await store.create_group(make_group("writers", description="line\x00break"))
        assert (await store.list_groups(POOL, None, 10)).items == []
        # Inside a write's transaction too: a searchable attribute (written by its own statement), a look-up
        # before an insert (which the failed statement aborted).
        with pytest.raises(InvalidParameterException):
            await store.create_user(make_user("alice", attributes={"name": "a\x00b"}))
        assert await store.get_user(POOL, "alice") is None
        await store.create_user(make_user("bob"))
        bob = await store.get_user(POOL, "bob")
        assert bob is not None
        with pytest.raises(InvalidParameterException):
            await store.update_user(replace(bob, attributes={"name": "a\x00b"}))
        assert await store.get_user(POOL, "bob") == bob
        await store.create_identity_pool(make_identity_pool())
        with pytest.raises(InvalidParameterException):
            await store.resolve_identity(make_identity("identity-1", [IdentityLogin("accounts.google.com", "a\x00")]))
        assert await store.get_identity("identity-1") is None
    finally:
        await store.close()


async def test_a_value_too_long_for_an_index_is_an_invalid_parameter(postgres: PostgresServer, migrated: str) -> None:
    """An index entry holds 2,704 bytes at most. The alias and search indexes keep long values short (the
    conformance suite stores Cognito's longest); a value a caller makes longer in another index (a linked
    provider's attribute value, up to 131,072 characters in AdminLinkProviderForUser; an identity's login) is
    refused as an invalid parameter, never the driver's error, and nothing of the write is stored."""
    from gateway.errors import InvalidParameterException
    from tests.storage.conformance import POOL, make_pool, unrepeated

    store = await PostgresStore.open(postgres.create_database(f"t{next(_numbers)}", template=migrated))
    long_value = unrepeated(4000, 0x20000, 5)
    try:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        link = ProviderLinkRecord(POOL, "Google", "Cognito_Subject", long_value, "alice", T0)
        with pytest.raises(InvalidParameterException):
            await store.put_provider_link(link)
        assert await store.list_provider_links(POOL, "alice") == []
        await store.create_identity_pool(make_identity_pool())
        with pytest.raises(InvalidParameterException):
            await store.resolve_identity(make_identity("identity-1", [IdentityLogin("login.example", long_value)]))
        assert await store.get_identity("identity-1") is None
        assert (await store.list_identities(ID_POOL, None, 10)).items == []
    finally:
        await store.close()


async def test_a_connection_left_in_a_transaction_is_rolled_back_before_reuse(
    postgres: PostgresServer, migrated: str
) -> None:
    """The pool's reset undoes only an open transaction (asyncpg's own reset query, a round trip with every
    release, is not sent): what the transaction wrote is gone, and the next user of the connection is outside
    any transaction."""
    store = await PostgresStore.open(
        postgres.create_database(f"t{next(_numbers)}", template=migrated), min_size=1, max_size=1
    )
    try:
        pool = store._pool
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute("INSERT INTO meta (key, value) VALUES ('left', 'open')")
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
        assert await store.get_meta("left") is None
    finally:
        await store.close()


async def test_the_pool_size_bounds_a_processs_connections(
    postgres: PostgresServer, migrated: str, tmp_path: Path
) -> None:
    """``server.database_pool_size``: however many statements a process runs at once, it holds at most that many
    connections to the database (every process of every server shares its max_connections)."""
    import asyncio

    import asyncpg

    from gateway.settings import Secret, Settings
    from gateway.storage.opening import open_store

    name = f"t{next(_numbers)}"
    dsn = postgres.create_database(name, template=migrated)
    store = await open_store(Settings(data_dir=tmp_path, database_url=Secret(dsn), database_pool_size=3))
    observer = await asyncpg.connect(postgres.dsn_for("postgres"))
    seen: list[int] = []
    try:
        assert isinstance(store, PostgresStore)
        sleeps = [asyncio.ensure_future(store._fetch("SELECT pg_sleep(0.3)", ())) for _ in range(8)]
        while not all(sleep.done() for sleep in sleeps):
            seen.append(await observer.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name))
            await asyncio.sleep(0.05)
        await asyncio.gather(*sleeps)
    finally:
        await observer.close()
        await store.close()
    assert max(seen) == 3, seen


async def test_long_alias_and_search_values_written_before_their_index_keys_are_found(
    postgres: PostgresServer,
) -> None:
    """Migration 0002: values longer than the indexes keep whole (index_text), written whole by a store of schema
    version 1 (short enough, or compressible enough, for the B-tree), are rewritten as the store now looks them
    up: found by alias and by filter, still unique, and a prefix walk still finds them."""
    import asyncpg

    from gateway.storage.base import AlreadyExists, UserSearch
    from gateway.storage.postgres._base import INDEX_BYTES, index_text, load_migrations, pg_sql
    from gateway.storage.sqlite import _INSERT_USER, _user_params
    from tests.storage.conformance import make_pool, make_user

    dsn = postgres.create_database(f"t{next(_numbers)}")
    conn = await asyncpg.connect(dsn)
    try:
        version, initial = load_migrations()[0]
        await conn.execute(initial)
        await conn.execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        await conn.execute("INSERT INTO schema_migrations VALUES ($1, 0)", version)
    finally:
        await conn.close()
    # 1,413 bytes, repetitive enough for the B-tree to take whole; byte 1,024 is inside a character.
    email = "a" + "д" * 700 + "@example.com"
    assert len(email.encode()) > INDEX_BYTES and len(email[:512].encode()) == INDEX_BYTES - 1
    name = "Ä" + "д" * 600  # its folded form differs; byte 1,024 is inside a character
    assertion = "ab" + "\U0001f600" * 300  # byte 1,024 is the third of a four-byte character
    store = await PostgresStore.open(dsn)
    try:
        await store.create_pool(make_pool())
    finally:
        await store.close()
    # As version 1 wrote a user: every value whole.
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM schema_migrations WHERE version > 1")
        user = make_user("alice", attributes={"email": email}, aliases={"email": email})
        await conn.execute(pg_sql(_INSERT_USER), *_user_params(user))
        await conn.execute("INSERT INTO user_aliases VALUES ($1, 'email', $2, 'alice')", user.pool_id, email)
        await conn.execute("INSERT INTO user_search VALUES ($1, 'alice', 'email', $2, $2)", user.pool_id, email)
        await conn.execute(
            "INSERT INTO user_search VALUES ($1, 'alice', 'name', $2, $3)", user.pool_id, name, name.lower()
        )
        await conn.execute("INSERT INTO seen_assertions VALUES ($1, $2)", assertion, T0 + 60)
    finally:
        await conn.close()
    store = await PostgresStore.open(dsn)
    try:
        assert await store._fetch("SELECT value FROM user_aliases", ()) == [(index_text(email),)]
        rows = await store._fetch(
            "SELECT name, value, folded FROM user_search WHERE name <> 'username' ORDER BY name", ()
        )
        assert [tuple(r) for r in rows] == [
            ("email", index_text(email), index_text(email)),
            ("name", index_text(name), index_text(name.lower())),
        ]
        assert await store.mark_assertion_seen(assertion, T0 + 60) is False
        for search in (UserSearch("name", name), UserSearch("name", name.lower(), folded=True)):
            assert [u.username_key for u in (await store.list_users(user.pool_id, None, 10, where=search)).items] == [
                "alice"
            ]
        assert await store.get_user_by_alias(user.pool_id, "email", email) == user
        with pytest.raises(AlreadyExists):
            await store.create_user(make_user("bob", aliases={"email": email}))
        found = await store.list_users(user.pool_id, None, 10, where=UserSearch("email", email, folded=True))
        assert [u.username_key for u in found.items] == ["alice"]
        prefix = await store.list_users(user.pool_id, None, 10, where=UserSearch("email", "aд", prefix=True))
        assert [u.username_key for u in prefix.items] == ["alice"]
    finally:
        await store.close()
