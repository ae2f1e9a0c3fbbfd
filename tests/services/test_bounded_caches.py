"""The per-process caches of the hosted pages' UI customizations and of the risk configurations stay bounded:
an entry per pool and client ever read must not outlive them (a server that creates and deletes pools all day,
as CI does, grew without end). Real services over a small in-memory stand-in for the two store reads they make."""

from __future__ import annotations

import secrets
from typing import Any

from gateway.metrics import Metrics
from gateway.secretbox import SecretBox
from gateway.services.domains import PAGE_CACHE_SIZE, DomainService
from gateway.services.risk import CONFIG_CACHE_SIZE, RiskService
from gateway.services.tokens import SigningKeys
from gateway.storage.base import RiskConfigurationRecord


class _Store:
    """The two reads the caches front: nothing customized, one pool with a risk configuration."""

    def __init__(self) -> None:
        self.reads = 0

    async def get_ui_customization(self, pool_id: str, client_id: str) -> None:
        self.reads += 1

    async def get_risk_configuration(self, pool_id: str, client_id: str | None) -> RiskConfigurationRecord | None:
        self.reads += 1
        if pool_id == "us-east-1_kept" and client_id is None:
            return RiskConfigurationRecord(pool_id, None, {"AccountTakeoverRiskConfiguration": {}}, 1.0)
        return None


class _Pools:
    async def get_pool(self, pool_id: str) -> Any:
        return object()


async def test_page_customizations_keep_at_most_their_bound() -> None:
    store = _Store()
    domains = DomainService(store, _Pools())  # type: ignore[arg-type]
    for n in range(PAGE_CACHE_SIZE + 500):
        assert await domains.page_customization(f"us-east-1_pool{n}", "client") is None
    assert len(domains._page_customizations) == PAGE_CACHE_SIZE
    # Still a cache: a page shown again within its lifetime reads nothing.
    reads = store.reads
    assert await domains.page_customization(f"us-east-1_pool{PAGE_CACHE_SIZE + 499}", "client") is None
    assert store.reads == reads


async def test_risk_configurations_keep_at_most_their_bound() -> None:
    store = _Store()
    risk = RiskService(store, _Pools(), None, Metrics())  # type: ignore[arg-type]
    for n in range(CONFIG_CACHE_SIZE + 500):
        assert await risk.effective(f"us-east-1_pool{n}", None) == ({}, None)
    assert len(risk._configs) == CONFIG_CACHE_SIZE
    config, updated = await risk.effective("us-east-1_kept", "a-client")
    assert config == {"AccountTakeoverRiskConfiguration": {}} and updated == 1.0
    reads = store.reads
    assert (await risk.effective("us-east-1_kept", "a-client"))[1] == 1.0
    assert store.reads == reads


class _NoKeys:
    """A key store that holds no pool's keys: what every pool a forged token's issuer makes up finds."""

    def __init__(self) -> None:
        self.reads = 0

    async def list_signing_keys(self, pool_id: str) -> list[Any]:
        self.reads += 1
        return []


async def test_pools_without_keys_leave_nothing_in_the_key_cache() -> None:
    """A token's issuer names its pool before the signature is checked: a key set is kept only for a pool that
    has keys, so tokens naming pools by the thousand (each refused) leave the cache as it was."""
    store = _NoKeys()
    keys = SigningKeys(store, SecretBox(secrets.token_bytes(32)))  # type: ignore[arg-type]
    for n in range(2000):
        assert await keys.key_for(f"us-east-1_forged{n}", "kid") is None
    assert keys._cache == {} and keys._reading == {}
    assert store.reads == 4000  # each looked for twice (the held set, then a forced read), every time
