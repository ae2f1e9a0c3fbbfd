"""The helpers the hot paths lean on: the short-lived per-process cache, random ids from the shared buffer of
OS random bytes (unique, well-formed, never shared with a forked child), IAM unique ids, and a role read
through the cache."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.ids import new_jti, random_bytes, random_uuid
from gateway.services.iam import ROLE_CACHE_SECONDS, IamService, new_unique_id
from gateway.services.short_cache import ShortCache
from gateway.storage.sqlite import SqliteStore

ACCOUNT = "123456789012"
ALLOW_ALL = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}


def trust(audience: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": audience}},
                }
            ],
        }
    )


async def test_short_cache_expires_bounds_and_clears() -> None:
    cache: ShortCache[str, int] = ShortCache(0.2, size=2)
    assert cache.get("a") is None
    cache.put("a", 1)
    cache.put("b", 2)
    assert (cache.get("a"), cache.get("b")) == (1, 2)
    cache.put("c", 3)  # full: the oldest entry goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)
    cache.drop("b")
    assert cache.get("b") is None
    await asyncio.sleep(0.25)
    assert cache.get("c") is None  # too old
    cache.put("d", 4)
    cache.clear()
    assert cache.get("d") is None


def test_short_cache_put_again_makes_an_entry_the_newest() -> None:
    cache: ShortCache[str, int] = ShortCache(60, size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 10)  # refreshed: now "b" is the oldest
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (10, None, 3)
    for n in range(1000):  # churn far past the bound keeps exactly the newest entries
        cache.put(f"k{n}", n)
    assert (cache.get("k998"), cache.get("k999"), cache.get("k997")) == (998, 999, None)


def test_random_uuids_are_version_4_and_unique() -> None:
    seen = set()
    for _ in range(20000):
        text = random_uuid()
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 20000
    assert uuid.UUID(new_jti()).version == 4
    # Bytes are handed out once: two draws never repeat each other.
    assert random_bytes(32) != random_bytes(32)
    assert len(random_bytes(5000)) == 5000  # more than the buffer holds at once


def _child_ids(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put([random_uuid() for _ in range(50)])


def test_a_forked_child_never_repeats_the_parents_random_bytes() -> None:
    random_uuid()  # the parent's buffer now holds bytes not yet handed out
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    from_child = queue.get(timeout=30)
    child.join(timeout=30)
    from_parent = [random_uuid() for _ in range(50)]
    assert not set(from_child) & set(from_parent)


def test_iam_unique_ids_use_the_whole_alphabet() -> None:
    ids = [new_unique_id("ASIA") for _ in range(2000)]
    assert all(re.fullmatch(r"ASIA[A-Z2-7]{17}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    letters = set("".join(i[4:] for i in ids))
    assert letters == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")


@pytest.fixture
async def store() -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(":memory:")
    yield opened
    await opened.close()


async def test_a_cached_role_sees_this_process_writes_at_once(store: SqliteStore) -> None:
    iam = IamService(store, account_id=ACCOUNT)
    role = await iam.create_role("cached", trust("pool-a"))
    found = await iam.find_role_by_arn(role.arn, cached=True)
    assert found is not None and found.assume_role_policy == trust("pool-a")
    await iam.update_role("cached", assume_role_policy=trust("pool-b"))
    found = await iam.find_role_by_arn(role.arn, cached=True)
    assert found is not None and found.assume_role_policy == trust("pool-b")
    await iam.put_role_policy("cached", "p", json.dumps({"Version": "2012-10-17", "Statement": [ALLOW_ALL]}))
    found = await iam.find_role_by_arn(role.arn, cached=True)
    assert found is not None and "p" in found.policy_documents
    await iam.delete_role_policy("cached", "p")
    await iam.delete_role("cached")
    assert await iam.find_role_by_arn(role.arn, cached=True) is None
    # Made again: a new unique id, seen at once.
    again = await iam.create_role("cached", trust("pool-a"))
    found = await iam.find_role_by_arn(role.arn, cached=True)
    assert found is not None and found.role_id == again.role_id != role.role_id


async def test_a_cached_role_sees_another_process_writes_within_the_cache_time(store: SqliteStore) -> None:
    here = IamService(store, account_id=ACCOUNT)
    elsewhere = IamService(store, account_id=ACCOUNT)  # another process's service on the same store
    role = await here.create_role("shared", trust("pool-a"))
    cached = await here.find_role_by_arn(role.arn, cached=True)
    assert cached is not None and cached.assume_role_policy == trust("pool-a")
    await elsewhere.update_role("shared", assume_role_policy=trust("pool-b"))
    # The cached read may still answer what it read (for at most ROLE_CACHE_SECONDS) ...
    meanwhile = await here.find_role_by_arn(role.arn, cached=True)
    assert meanwhile is not None and meanwhile.assume_role_policy in (trust("pool-a"), trust("pool-b"))
    await asyncio.sleep(ROLE_CACHE_SECONDS + 0.1)
    # ... and then reads again.
    fresh = await here.find_role_by_arn(role.arn, cached=True)
    assert fresh is not None and fresh.assume_role_policy == trust("pool-b")
    # Uncached reads (STS, the verification of signed requests) always read the store.
    await elsewhere.delete_role("shared")
    assert await here.find_role_by_arn(role.arn) is None
