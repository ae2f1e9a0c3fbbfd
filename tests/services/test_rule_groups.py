"""Rule-granted group memberships with a real store: two providers granting the same group to one (linked) user,
a deleted provider's grants, and hand-made memberships left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.secretbox import SecretBox
from gateway.services import rule_groups
from gateway.services.groups import GroupService
from gateway.services.identity_providers import IdentityProviderService
from gateway.services.pools import PoolService, PoolView
from gateway.storage.base import GroupRecord, UserRecord
from gateway.storage.sqlite import SqliteStore

OIDC = {
    "client_id": "c",
    "client_secret": "s",
    "authorize_scopes": "openid",
    "oidc_issuer": "https://idp.example",
    "attributes_request_method": "GET",
    "authorize_url": "https://idp.example/a",
    "token_url": "https://idp.example/t",
    "jwks_uri": "https://idp.example/k",
}
ADMINS = [{"claim": "groups", "match": "equals", "value": "admins", "group": "admins"}]


class World:
    def __init__(self, store: SqliteStore, pool: PoolView, idps: IdentityProviderService) -> None:
        self.store, self.pool, self.idps = store, pool, idps

    async def user(self) -> UserRecord:
        found = await self.store.get_user(self.pool.id, "ann")
        assert found is not None
        return found

    async def groups(self) -> list[str]:
        return sorted(g.name for g in await self.store.list_groups_for_user(self.pool.id, "ann"))

    async def apply(self, provider: str, rules: list[dict[str, str]], groups: list[str]) -> None:
        await rule_groups.apply_rules(self.store, self.pool.id, provider, rules, {"groups": groups}, await self.user())


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store = await SqliteStore.open(":memory:")
    box = SecretBox(SecretBox.generate_key())
    pools = PoolService(store, region="us-east-1", account_id="123456789012")
    pool = await pools.create_pool("rules", {})
    for name in ("admins", "staff"):
        await store.create_group(GroupRecord(pool.id, name, None, None, None, 0.0, 0.0))
    await store.create_user(
        UserRecord(pool.id, "ann", "ann", "sub-ann", "CONFIRMED", True, {}, None, 0.0, 0.0)  # a linked native user
    )
    idps = IdentityProviderService(store, pools, box)
    for name in ("CorpA", "CorpB"):
        await idps.create(pool.id, name, "OIDC", OIDC)
    yield World(store, pool, idps)
    await store.close()


async def test_a_group_two_providers_grant_stays_while_one_still_does(world: World) -> None:
    await world.apply("CorpA", ADMINS, ["admins"])
    await world.apply("CorpB", ADMINS, ["admins"])
    assert await world.groups() == ["admins"]
    assert rule_groups.grants_of(await world.user()) == {"CorpA": {"admins"}, "CorpB": {"admins"}}
    await world.apply("CorpA", ADMINS, [])  # CorpA no longer says so; CorpB still does
    assert await world.groups() == ["admins"]
    await world.apply("CorpB", ADMINS, [])
    assert await world.groups() == []
    assert rule_groups.grants_of(await world.user()) == {}


async def test_a_deleted_providers_grants_no_longer_hold_a_group(world: World) -> None:
    await world.apply("CorpA", ADMINS, ["admins"])
    await world.apply("CorpB", ADMINS, ["admins"])
    await world.idps.delete(world.pool.id, "CorpB")
    await world.apply("CorpA", ADMINS, [])
    assert await world.groups() == []
    assert rule_groups.grants_of(await world.user()) == {}


async def test_hand_made_memberships_are_never_taken(world: World) -> None:
    groups = GroupService(world.store)
    await groups.add_user(world.pool, await world.user(), "staff")
    staff = [{"claim": "groups", "match": "equals", "value": "staff", "group": "staff"}]
    await world.apply("CorpA", staff, ["staff"])  # matches a group held by hand: it stays hand-made
    assert rule_groups.grants_of(await world.user()) == {}
    await world.apply("CorpA", staff, [])
    assert await world.groups() == ["staff"]
    # Granted by a rule, then added by hand: from then on it is hand-made.
    await world.apply("CorpA", ADMINS, ["admins"])
    await groups.add_user(world.pool, await world.user(), "admins")
    assert rule_groups.grants_of(await world.user()) == {}
    await world.apply("CorpA", [], [])
    assert await world.groups() == ["admins", "staff"]
