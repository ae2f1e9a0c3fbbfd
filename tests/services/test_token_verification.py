"""TokenService.verify_jwt: what its verified-token memory may and may not remember."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import NotAuthorizedException
from gateway.secretbox import SecretBox
from gateway.services.tokens import SigningKeys, TokenService, b64url, sign_jwt
from gateway.storage.sqlite import SqliteStore
from tests.storage.conformance import POOL, make_pool

ISSUER_BASE = "http://gatehouse.test"


@pytest.fixture
async def tokens(tmp_path: Path) -> AsyncIterator[TokenService]:
    store = await SqliteStore.open(tmp_path / "store.db")
    try:
        await store.create_pool(make_pool())
        yield TokenService(store, SigningKeys(store, SecretBox(os.urandom(32))), ISSUER_BASE)
    finally:
        await store.close()


async def signed(tokens: TokenService, **claims: object) -> str:
    key = await tokens.keys.active_key(POOL, "access")
    return sign_jwt(key, {"iss": f"{ISSUER_BASE}/{POOL}", "token_use": "access", **claims})


async def test_a_token_verified_twice_gives_the_same_claims_and_callers_cannot_change_them(
    tokens: TokenService,
) -> None:
    token = await signed(tokens, sub="abc", exp=int(time.time()) + 600)
    first = await tokens.verify_jwt(token)
    first["sub"] = "someone-else"
    second = await tokens.verify_jwt(token)
    assert second["sub"] == "abc"
    assert second == {**first, "sub": "abc"}


async def test_a_remembered_token_still_expires(tokens: TokenService) -> None:
    expiry = int(time.time()) + 2  # at least a second of validity for the first check
    token = await signed(tokens, sub="abc", exp=expiry)
    await tokens.verify_jwt(token)
    await asyncio.sleep(expiry - time.time() + 0.1)
    with pytest.raises(NotAuthorizedException, match="expired"):
        await tokens.verify_jwt(token)


async def test_a_remembered_token_is_still_bound_to_its_pool(tokens: TokenService) -> None:
    token = await signed(tokens, sub="abc", exp=int(time.time()) + 600)
    await tokens.verify_jwt(token, pool_id=POOL)
    with pytest.raises(NotAuthorizedException):
        await tokens.verify_jwt(token, pool_id="us-east-1_Another01")


async def test_a_tampered_copy_of_a_remembered_token_is_refused(tokens: TokenService) -> None:
    token = await signed(tokens, sub="abc", exp=int(time.time()) + 600)
    await tokens.verify_jwt(token)
    header, _claims, signature = token.split(".")
    forged_claims = b64url(f'{{"iss":"{ISSUER_BASE}/{POOL}","sub":"admin","exp":{int(time.time()) + 600}}}'.encode())
    with pytest.raises(NotAuthorizedException):
        await tokens.verify_jwt(f"{header}.{forged_claims}.{signature}")
