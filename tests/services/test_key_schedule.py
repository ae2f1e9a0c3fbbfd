"""SigningKeys' schedule: a rotated key is published at once and signs from its start time, chosen per request
from the keys a process holds (no store read on the signing or verifying path); a dropped key stops vouching for
the tokens a process remembers as verified."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import NotAuthorizedException
from gateway.secretbox import SecretBox
from gateway.services.tokens import SigningKeys, TokenService, sign_jwt
from gateway.storage.base import SigningKeyRecord
from gateway.storage.sqlite import SqliteStore
from tests.storage.conformance import POOL, make_pool

ISSUER_BASE = "http://gatehouse.test"
BOX = SecretBox(os.urandom(32))


class CountingStore(SqliteStore):
    """The real SQLite store, counting key-set reads (what the hot paths must not do per request)."""

    key_reads = 0

    async def list_signing_keys(self, pool_id: str) -> list[SigningKeyRecord]:
        self.key_reads += 1
        return await super().list_signing_keys(pool_id)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    opened = await CountingStore.open(tmp_path / "store.db")
    assert isinstance(opened, CountingStore)
    try:
        await opened.create_pool(make_pool())
        yield opened
    finally:
        await opened.close()


async def test_a_scheduled_key_is_published_at_once_and_signs_from_its_time(store: CountingStore) -> None:
    keys = SigningKeys(store, BOX, cache_seconds=60, jwks_max_age=300)
    assert keys.publish_seconds == 360
    old_id, old_access = await keys.active_keys(POOL)
    starts = time.time() + 0.6
    new = await keys.rotate(POOL, starts_at=starts)
    published = {key["kid"] for key in (await keys.jwks(POOL))["keys"]}
    assert {old_id.kid, old_access.kid, *new} <= published
    reads = store.key_reads
    seen = []
    while time.time() < starts + 0.3:
        id_key, access_key = await keys.active_keys(POOL)
        seen.append((time.time(), id_key.kid, access_key.kid))
        await asyncio.sleep(0.05)
    assert store.key_reads == reads  # the switch is made from the keys held, without a store read
    assert all((i, a) == (old_id.kid, old_access.kid) for at, i, a in seen if at < starts - 0.05)
    assert all({i, a} == set(new) for at, i, a in seen if at > starts + 0.05)
    # Another process with a cold cache chooses the same way.
    other = SigningKeys(store, BOX)
    assert {k.kid for k in await other.active_keys(POOL)} == set(new)


async def test_retire_old_is_only_for_an_immediate_switch(store: CountingStore) -> None:
    keys = SigningKeys(store, BOX)
    await keys.active_keys(POOL)
    before = await store.list_signing_keys(POOL)
    with pytest.raises(ValueError):
        await keys.rotate(POOL, starts_at=time.time() + 10, retire_old=True)
    assert await store.list_signing_keys(POOL) == before


async def test_a_dropped_key_stops_vouching_for_remembered_tokens(store: CountingStore) -> None:
    tokens = TokenService(store, SigningKeys(store, BOX, cache_seconds=0.3), ISSUER_BASE)
    key = await tokens.keys.active_key(POOL, "access")
    claims = {"iss": f"{ISSUER_BASE}/{POOL}", "token_use": "access", "exp": int(time.time()) + 600}
    token = sign_jwt(key, claims)
    assert (await tokens.verify_jwt(token))["exp"] == claims["exp"]
    reads = store.key_reads
    for _ in range(50):
        await tokens.verify_jwt(token)  # remembered: no store read while the key set is fresh
    assert store.key_reads == reads
    # Another process (the CLI) rotates with --now --retire-old.
    await SigningKeys(store, BOX).rotate(POOL, retire_old=True)
    await asyncio.sleep(0.35)
    with pytest.raises(NotAuthorizedException):
        await tokens.verify_jwt(token)
    assert token not in tokens._verified
    with pytest.raises(NotAuthorizedException):
        await tokens.verify_jwt(token)  # and not from scratch either


async def test_a_burst_on_a_cold_key_set_reads_it_once(store: CountingStore) -> None:
    """A process that has just started (or whose key set is due) and gets many tokens at once reads and parses
    the pool's keys once between them, not once per request; a request cancelled meanwhile leaves the others'
    read alone."""
    signer = SigningKeys(store, BOX)
    key = await signer.active_key(POOL, "access")
    now = int(time.time())
    tokens = [
        sign_jwt(key, {"iss": f"{ISSUER_BASE}/{POOL}", "token_use": "access", "exp": now + 600, "jti": str(n)})
        for n in range(40)
    ]
    cold = TokenService(store, SigningKeys(store, BOX), ISSUER_BASE)
    reads = store.key_reads
    waiting = [asyncio.ensure_future(cold.verify_jwt(token)) for token in tokens]
    await asyncio.sleep(0)  # every request has asked for the key set
    waiting[0].cancel()
    results = await asyncio.gather(*waiting[1:])
    assert [claims["jti"] for claims in results] == [str(n) for n in range(1, 40)]
    assert store.key_reads == reads + 1
    assert waiting[0].cancelled()

    # A rotation of this process does not take a read begun before it: its new keys sign at once.
    new = await cold.keys.rotate(POOL, retire_old=True)
    assert {k.kid for k in await cold.keys.active_keys(POOL)} == set(new)
