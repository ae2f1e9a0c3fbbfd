"""TokenService.verify_jwt: what its verified-token memory may and may not remember; and what a deleted app
client leaves of the tokens it issued."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import NotAuthorizedException, ResourceNotFoundException
from gateway.secretbox import SecretBox
from gateway.services.tokens import SigningKeys, TokenService, b64url, sign_jwt
from gateway.storage.sqlite import SqliteStore
from tests.storage.conformance import POOL, make_client, make_pool

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


async def test_the_memory_of_verified_tokens_stays_bounded_and_keeps_the_newest(tokens: TokenService) -> None:
    from gateway.services import tokens as tokens_module

    expiry = int(time.time()) + 600
    texts = [await signed(tokens, sub=f"user-{n}", exp=expiry) for n in range(tokens_module.VERIFIED_CACHE_SIZE + 50)]
    for n, text in enumerate(texts):
        assert (await tokens.verify_jwt(text))["sub"] == f"user-{n}"
    remembered = tokens._verified
    assert len(remembered) == tokens_module.VERIFIED_CACHE_SIZE
    assert texts[0] not in remembered and texts[49] not in remembered
    assert texts[50] in remembered and texts[-1] in remembered
    # A forgotten token is verified again from scratch, and is then the newest one remembered.
    assert (await tokens.verify_jwt(texts[0]))["sub"] == "user-0"
    assert next(reversed(remembered)) == texts[0]


async def test_only_the_canonical_spelling_of_a_token_is_accepted(tokens: TokenService) -> None:
    """RFC 7515 §2: unpadded base64url. Padding, the other alphabet's characters, skipped characters, data after
    the end, or non-zero unused bits in the last character are other spellings of the same bytes: refused."""
    token = await signed(tokens, sub="abc", exp=int(time.time()) + 600)
    header, claims, signature = token.split(".")
    assert (await tokens.verify_jwt(token))["sub"] == "abc"
    last = signature[-1]
    # A 256-byte signature ends in a two-character group: its last character has 4 unused bits.
    assert len(signature) % 4 == 2
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other_bits = sibling[sibling.index(last) + 1]  # same high bits, a non-zero low bit
    variants = [
        f"{header}.{claims}.{signature}==",
        f"{header}.{claims}=.{signature}",
        f"{header}.{claims}.{signature[:-1]}{other_bits}",
        f"{header}.{claims}.{signature.replace('-', '+').replace('_', '/')}",
        f"{header}.{claims}.{signature[:10]} {signature[10:]}",
        f"{header}.{claims}.{signature[:10]}*{signature[10:]}",
    ]
    for variant in variants:
        if variant == token:
            continue
        with pytest.raises(NotAuthorizedException):
            await tokens.verify_jwt(variant)


async def issue(tokens: TokenService, client_id: str) -> str:
    issued = await tokens.issue(
        pool_id=POOL,
        client_id=client_id,
        app_client_id=client_id,
        username="alice",
        username_key="alice",
        sub="sub-alice",
        id_claims={},
        groups=(),
        roles=(),
        preferred_role=None,
        auth_time=int(time.time()),
        access_seconds=600,
        id_seconds=600,
        refresh_seconds=3600,
    )
    return issued.access_token


async def test_a_deleted_clients_tokens_are_revoked_though_remembered_and_it_gets_no_more(
    tokens: TokenService,
) -> None:
    """The verified-token memory keeps signatures, never revocation: a token checked before its client was
    deleted is refused after. A sign-in that read the client before the deletion (as a process's client cache
    may have) gets no tokens after it: the new family is refused where it would be stored."""
    store = tokens._store
    for client_id in ("doomed", "kept"):
        await store.create_client(make_client(client_id))
    doomed, kept = await issue(tokens, "doomed"), await issue(tokens, "kept")
    assert (await tokens.verify_access_token(doomed, required_scope=None)).client_id == "doomed"
    assert await store.delete_client(POOL, "doomed")
    with pytest.raises(NotAuthorizedException) as revoked:
        await tokens.verify_access_token(doomed, required_scope=None)
    assert revoked.value.message == "Access Token has been revoked"
    assert (await tokens.verify_access_token(kept, required_scope=None)).client_id == "kept"
    with pytest.raises(ResourceNotFoundException) as gone:
        await issue(tokens, "doomed")
    assert gone.value.message == "User pool client doomed does not exist."
