"""Cognito's group quotas with a real store: at most 10,000 groups in a pool, and at most 100 groups a user belongs
to, whether added by an administrator or granted by a provider's claim -> group rules at sign-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.errors import LimitExceededException
from gateway.services import rule_groups
from gateway.services.groups import GroupService
from gateway.services.pools import PoolService, PoolView
from gateway.services.quotas import MAX_GROUPS_PER_POOL, MAX_GROUPS_PER_USER
from gateway.storage.base import GroupRecord, UserRecord
from gateway.storage.sqlite import SqliteStore


class World:
    def __init__(self, store: SqliteStore, pool: PoolView) -> None:
        self.store, self.pool, self.groups = store, pool, GroupService(store)

    async def ann(self) -> UserRecord:
        found = await self.store.get_user(self.pool.id, "ann")
        assert found is not None
        return found

    async def names(self) -> set[str]:
        return {g.name for g in await self.store.list_groups_for_user(self.pool.id, "ann")}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store = await SqliteStore.open(":memory:")
    pools = PoolService(store, region="us-east-1", account_id="123456789012")
    pool = await pools.create_pool("quotas", {})
    await store.create_user(UserRecord(pool.id, "ann", "ann", "sub-ann", "CONFIRMED", True, {}, None, 0.0, 0.0))
    yield World(store, pool)
    await store.close()


async def test_a_pool_holds_at_most_10000_groups(world: World) -> None:
    for n in range(MAX_GROUPS_PER_POOL - 1):
        await world.store.create_group(GroupRecord(world.pool.id, f"g{n}", None, None, None, 0.0, 0.0))
    await world.groups.create(world.pool, "last", description=None, role_arn=None, precedence=None)
    with pytest.raises(LimitExceededException) as refused:
        await world.groups.create(world.pool, "one-too-many", description=None, role_arn=None, precedence=None)
    assert refused.value.message == "A user pool can have at most 10000 groups."
    assert await world.store.get_group(world.pool.id, "one-too-many") is None
    assert await world.store.count_groups(world.pool.id) == MAX_GROUPS_PER_POOL
    await world.groups.delete(world.pool, "g0")
    await world.groups.create(world.pool, "one-too-many", description=None, role_arn=None, precedence=None)


async def test_rules_grant_no_group_beyond_the_users_100th(world: World) -> None:
    """A sign-in whose rules would put the user in a 101st group goes on without it; a rule that stopped matching
    gives its group up first, making room for one that now matches."""
    names = [f"g{n:03d}" for n in range(MAX_GROUPS_PER_USER + 1)]
    for name in names:
        await world.store.create_group(GroupRecord(world.pool.id, name, None, None, None, 0.0, 0.0))
    for name in names[:99]:
        await world.groups.add_user(world.pool, await world.ann(), name)
    rules = [{"claim": "groups", "match": "contains", "value": name, "group": name} for name in names[99:]]
    await rule_groups.apply_rules(world.store, world.pool.id, "Corp", rules, {"groups": names[99:]}, await world.ann())
    assert await world.names() == set(names[:100])  # g100, the 101st, was not granted
    assert rule_groups.grants_of(await world.ann()) == {"Corp": {names[99]}}
    with pytest.raises(LimitExceededException):
        await world.groups.add_user(world.pool, await world.ann(), names[100])
    # The claims change: g099's rule no longer matches, g100's does.
    claims = {"groups": [names[100]]}
    await rule_groups.apply_rules(world.store, world.pool.id, "Corp", rules, claims, await world.ann())
    assert await world.names() == set(names[:99]) | {names[100]}
    assert rule_groups.grants_of(await world.ann()) == {"Corp": {names[100]}}
