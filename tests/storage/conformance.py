"""The Store conformance suite: the promises of ``gateway/storage/base.py``, checked against any backend.

Every backend runs this same suite, as in Dex's ``storage/conformance``: a backend's own test module is a
factory and nothing else (plus tests of what only that backend has, such as migrations). To run it, subclass
:class:`StoreConformance` and provide a ``store`` fixture that yields a fresh, empty, open store and closes
it afterwards::

    # tests/storage/test_postgres.py
    from collections.abc import AsyncIterator

    import pytest

    from gateway.storage.base import Store
    from gateway.storage.postgres import PostgresStore
    from tests.storage.conformance import StoreConformance


    class TestPostgresConformance(StoreConformance):
        @pytest.fixture
        async def store(self) -> AsyncIterator[Store]:
            store = await PostgresStore.open(EMPTY_DATABASE_DSN)
            yield store
            await store.close()

pytest collects the inherited test methods under the subclass's name. ``StoreConformance`` is not named
``Test*`` and this module is not ``test_*.py``, so nothing here runs on its own.

What is checked is only what ``base.py`` states, plus the few points it leaves open that every backend
must still answer alike (each marked "pinned" below): key order is by code point (PostgreSQL: ``COLLATE
"C"``), look-ups by key are exact (case folding is the services' job), revoking reports whether this call
revoked, a retired signing key's ``retired_at`` is the new key's ``created_at``, update_group of a missing
group raises NotFound as the versioned updates do, and creating a user inside a missing pool raises
NotFound rather than leaking the driver's integrity error. Values as long as Cognito allows (2,048 characters of
four bytes in an alias or a searchable attribute) are kept, unique and found in every backend, whatever its
index's entry limit; a record expiring at ``now`` is expired at ``now``; a timestamp reads back as a float.

The concurrency tests fire N calls at one store with ``asyncio.gather``. Against one store instance they
prove the invariant holds however a backend interleaves calls on its connection; backends that several
processes share also race two instances in their own test module.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from gateway.storage.base import (
    UNSTARTED_IMPORT_JOB_SECONDS,
    AlreadyExists,
    AuthEventRecord,
    AuthSessionRecord,
    CimdDocumentRecord,
    CimdPolicyRecord,
    ClientRecord,
    CodeRecord,
    DeviceRecord,
    DomainRecord,
    FederationRequestRecord,
    GroupRecord,
    IdentityLogin,
    IdentityPoolRecord,
    IdentityProviderRecord,
    IdentityRecord,
    ManagedLoginBrandingRecord,
    NotFound,
    OAuthRecord,
    OidcProviderRecord,
    PoolRecord,
    ProviderLinkRecord,
    RefreshTokenRecord,
    ResourceServerRecord,
    RiskConfigurationRecord,
    RoleRecord,
    SamlProviderRecord,
    SigningKeyRecord,
    Store,
    TermsRecord,
    TokenFamilyRecord,
    UICustomizationRecord,
    UsedCodeRecord,
    UserImportJobRecord,
    UserRecord,
    UserSearch,
    VersionConflict,
    WebAuthnCredentialRecord,
)

__all__ = [
    "ID_POOL",
    "POOL",
    "T0",
    "StoreConformance",
    "make_client",
    "make_code",
    "make_device",
    "make_family",
    "make_group",
    "make_identity",
    "make_identity_pool",
    "make_pool",
    "make_refresh",
    "make_session",
    "make_signing_key",
    "make_user",
    "outcomes",
    "unrepeated",
]

T = TypeVar("T")

T0 = 1_700_000_000.0
POOL = "us-east-1_Conform01"
OTHER_POOL = "us-east-1_Conform02"
RACERS = 20


# --- record builders ------------------------------------------------------------------------------------


def make_pool(pool_id: str = POOL, **changes: Any) -> PoolRecord:
    settings = {"Policies": {"PasswordPolicy": {"MinimumLength": 8}}, "Schema": [{"Name": "email"}]}
    return replace(PoolRecord(pool_id, f"pool {pool_id}", settings, T0, T0), **changes)


def make_client(client_id: str, pool_id: str = POOL, **changes: Any) -> ClientRecord:
    settings = {"ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH"], "RefreshTokenValidity": 30}
    return replace(ClientRecord(pool_id, client_id, f"client {client_id}", None, settings, T0, T0), **changes)


def make_user(username: str, pool_id: str = POOL, **changes: Any) -> UserRecord:
    """A user whose username_key is ``username`` as given; aliases are none unless passed."""
    record = UserRecord(
        pool_id=pool_id,
        username=username,
        username_key=username,
        sub=str(uuid.uuid4()),
        status="CONFIRMED",
        enabled=True,
        attributes={"email": f"{username}@example.com", "name": f"Ünïcode {username}"},
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        created_at=T0,
        updated_at=T0,
    )
    return replace(record, **changes)


def make_group(name: str, pool_id: str = POOL, **changes: Any) -> GroupRecord:
    return replace(GroupRecord(pool_id, name, f"the {name} group", None, None, T0, T0), **changes)


def make_code(username_key: str, purpose: str = "signup", pool_id: str = POOL, **changes: Any) -> CodeRecord:
    return replace(CodeRecord(pool_id, username_key, purpose, "hash-1", T0 + 3600), **changes)


def make_session(session_hash: str, username_key: str, pool_id: str = POOL, **changes: Any) -> AuthSessionRecord:
    state = {"challenge": "PASSWORD_VERIFIER", "srp_b": "abc123"}
    return replace(AuthSessionRecord(session_hash, pool_id, "client-1", username_key, state, T0 + 180), **changes)


def make_family(origin_jti: str, username_key: str, pool_id: str = POOL, **changes: Any) -> TokenFamilyRecord:
    family = TokenFamilyRecord(origin_jti, pool_id, "client-1", username_key, T0, T0, T0 + 30 * 86400)
    return replace(family, **changes)


def make_refresh(token_hash: str, family: TokenFamilyRecord, **changes: Any) -> RefreshTokenRecord:
    token = RefreshTokenRecord(
        token_hash,
        family.origin_jti,
        family.pool_id,
        family.client_id,
        family.username_key,
        T0,
        family.expires_at,
        data={"device_key": "us-east-1_dev"},
    )
    return replace(token, **changes)


def make_signing_key(kid: str, created_at: float, pool_id: str = POOL, active: bool = True) -> SigningKeyRecord:
    return SigningKeyRecord(pool_id, kid, f"sealed-jwk-{kid}", created_at, active)


ID_POOL = "us-east-1:0a0b0c0d-0000-4000-8000-000000000001"


def make_identity_pool(pool_id: str = ID_POOL, **changes: Any) -> IdentityPoolRecord:
    settings = {"AllowUnauthenticatedIdentities": False, "IdentityPoolTags": {"team": "ünï"}}
    return replace(IdentityPoolRecord(pool_id, f"identity pool {pool_id[-4:]}", settings, T0, T0), **changes)


def make_identity(identity_id: str, logins: list[IdentityLogin], pool_id: str = ID_POOL) -> IdentityRecord:
    return IdentityRecord(pool_id, identity_id, T0, T0, False, list(logins))


def make_device(device_key: str, username_key: str, pool_id: str = POOL, **changes: Any) -> DeviceRecord:
    device = DeviceRecord(pool_id, device_key, username_key, "phone", False, "sealed-verifier", T0, T0)
    return replace(device, **changes)


def unrepeated(count: int, first: int, seed: int, span: int = 0xA000) -> str:
    """``count`` characters from U+``first`` .. ``first + span``, in an order with no repeats a compressor could
    use (a linear congruential walk): text as long in a store's index as it is in UTF-8."""
    state, chars = seed, []
    for _ in range(count):
        state = (state * 1_103_515_245 + 12_345) % 2**31
        chars.append(chr(first + (state >> 8) % span))
    return "".join(chars)


async def outcomes(calls: Sequence[Awaitable[T]]) -> list[T | BaseException]:
    """Run ``calls`` concurrently; each result or the exception it raised."""
    return await asyncio.gather(*calls, return_exceptions=True)


async def _family_with_token(store: Store, origin_jti: str, username_key: str, pool_id: str = POOL) -> str:
    family = make_family(origin_jti, username_key, pool_id)
    token_hash = f"rt-{origin_jti}"
    await store.create_token_family(family, make_refresh(token_hash, family))
    return token_hash


# --- the suite ------------------------------------------------------------------------------------------


class StoreConformance:
    """Subclass as ``Test<Backend>...`` and provide an async ``store`` fixture yielding a fresh empty store."""

    async def test_an_open_store_is_healthy(self, store: Store) -> None:
        assert await store.health_problem() is None

    # --- server-wide metadata -----------------------------------------------------------------------

    async def test_meta_missing_key_is_none(self, store: Store) -> None:
        assert await store.get_meta("admin_access_key_id") is None

    async def test_put_meta_if_absent_first_writer_wins(self, store: Store) -> None:
        assert await store.put_meta_if_absent("box_key_id", "first") == "first"
        assert await store.put_meta_if_absent("box_key_id", "second") == "first"
        assert await store.get_meta("box_key_id") == "first"

    async def test_put_meta_if_absent_concurrent_writers_agree(self, store: Store) -> None:
        results = await outcomes([store.put_meta_if_absent("k", f"v{i}") for i in range(RACERS)])
        stored = await store.get_meta("k")
        assert stored in {f"v{i}" for i in range(RACERS)}
        assert results == [stored] * RACERS

    # --- pools ----------------------------------------------------------------------------------------

    async def test_pool_round_trip(self, store: Store) -> None:
        pool = make_pool()
        await store.create_pool(pool)
        assert await store.get_pool(POOL) == pool
        assert await store.get_pool("us-east-1_Missing") is None

    async def test_create_pool_with_taken_id_raises_and_keeps_the_first(self, store: Store) -> None:
        await store.create_pool(make_pool())
        with pytest.raises(AlreadyExists) as raised:
            await store.create_pool(make_pool(name="impostor"))
        assert raised.value.key == "id"
        stored = await store.get_pool(POOL)
        assert stored is not None and stored.name == f"pool {POOL}"

    async def test_update_pool_writes_and_bumps_version(self, store: Store) -> None:
        await store.create_pool(make_pool())
        changed = make_pool(name="renamed", settings={"MfaConfiguration": "ON"}, updated_at=T0 + 5)
        updated = await store.update_pool(changed)
        assert updated == replace(changed, version=1)
        assert await store.get_pool(POOL) == updated
        assert (await store.update_pool(updated)).version == 2

    async def test_update_pool_with_stale_version_conflicts(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.update_pool(make_pool(name="first"))
        with pytest.raises(VersionConflict):
            await store.update_pool(make_pool(name="stale"))
        stored = await store.get_pool(POOL)
        assert stored is not None and (stored.name, stored.version) == ("first", 1)

    async def test_update_missing_pool_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.update_pool(make_pool())

    async def test_concurrent_updates_of_one_version_have_one_winner(self, store: Store) -> None:
        await store.create_pool(make_pool())
        results = await outcomes([store.update_pool(make_pool(name=f"n{i}")) for i in range(RACERS)])
        winners = [r for r in results if isinstance(r, PoolRecord)]
        assert len(winners) == 1
        assert sum(isinstance(r, VersionConflict) for r in results) == RACERS - 1
        assert await store.get_pool(POOL) == winners[0]

    async def test_delete_pool(self, store: Store) -> None:
        await store.create_pool(make_pool())
        assert await store.delete_pool(POOL) is True
        assert await store.get_pool(POOL) is None
        assert await store.delete_pool(POOL) is False

    async def test_list_pools_pages_in_id_order(self, store: Store) -> None:
        ids = ["eu-west-1_b", "us-east-1_A", "us-east-1_a", "ap-south-1_z", "us-east-1_B"]
        for pool_id in ids:
            await store.create_pool(make_pool(pool_id))
        seen: list[str] = []
        after: str | None = None
        for _ in range(len(ids)):
            page = await store.list_pools(after, 2)
            assert len(page.items) <= 2
            seen += [p.id for p in page.items]
            if page.next_token is None:
                break
            assert page.next_token == page.items[-1].id
            after = page.next_token
        assert seen == sorted(ids)  # pinned: code-point order ("B" < "a")

    async def test_list_full_last_page_has_no_next_token(self, store: Store) -> None:
        for pool_id in ["p1", "p2", "p3", "p4"]:
            await store.create_pool(make_pool(pool_id))
        first = await store.list_pools(None, 2)
        assert first.next_token == "p2"
        second = await store.list_pools(first.next_token, 2)
        assert [p.id for p in second.items] == ["p3", "p4"]
        assert second.next_token is None
        assert await store.list_pools(None, 10) == (await store.list_pools(None, 4))

    async def test_list_pools_when_empty(self, store: Store) -> None:
        page = await store.list_pools(None, 10)
        assert (page.items, page.next_token) == ([], None)

    async def test_delete_pool_deletes_everything_in_it(self, store: Store) -> None:
        for pool_id in (POOL, OTHER_POOL):
            await store.create_pool(make_pool(pool_id))
            await store.create_client(make_client(f"client-{pool_id}", pool_id))
            await store.create_user(make_user("alice", pool_id, aliases={"email": "alice@example.com"}))
            await store.create_group(make_group("admins", pool_id))
            await store.add_user_to_group(pool_id, "alice", "admins")
            await store.put_code(make_code("alice", pool_id=pool_id))
            await store.put_auth_session(make_session(f"s-{pool_id}", "alice", pool_id))
            await _family_with_token(store, f"jti-{pool_id}", "alice", pool_id)
            await store.add_signing_key(make_signing_key(f"kid-{pool_id}", T0, pool_id))

        assert await store.delete_pool(POOL) is True

        assert await store.get_client(f"client-{POOL}") is None
        assert (await store.list_clients(POOL, None, 10)).items == []
        assert await store.get_user(POOL, "alice") is None
        assert await store.get_user_by_alias(POOL, "email", "alice@example.com") is None
        assert await store.count_users(POOL) == 0
        assert await store.get_group(POOL, "admins") is None
        assert await store.list_groups_for_user(POOL, "alice") == []
        assert await store.get_code(POOL, "alice", "signup") is None
        assert await store.take_auth_session(f"s-{POOL}") is None
        assert await store.get_token_family(f"jti-{POOL}") is None
        assert await store.get_refresh_token(f"rt-jti-{POOL}") is None
        assert await store.list_signing_keys(POOL) == []

        # The other pool keeps all of its own.
        assert await store.get_client(f"client-{OTHER_POOL}") is not None
        assert await store.get_user_by_alias(OTHER_POOL, "email", "alice@example.com") is not None
        assert [g.name for g in await store.list_groups_for_user(OTHER_POOL, "alice")] == ["admins"]
        assert await store.get_code(OTHER_POOL, "alice", "signup") is not None
        assert await store.take_auth_session(f"s-{OTHER_POOL}") is not None
        assert await store.get_refresh_token(f"rt-jti-{OTHER_POOL}") is not None
        assert len(await store.list_signing_keys(OTHER_POOL)) == 1

    # --- clients --------------------------------------------------------------------------------------

    async def test_client_round_trip(self, store: Store) -> None:
        await store.create_pool(make_pool())
        public = make_client("public")
        confidential = make_client("confidential", secret="s3cr3t")
        await store.create_client(public)
        await store.create_client(confidential)
        assert await store.get_client("public") == public
        assert await store.get_client("confidential") == confidential
        assert await store.get_client("missing") is None

    async def test_client_secrets_round_trip(self, store: Store) -> None:
        """A rotated client's secrets (AddUserPoolClientSecret) are kept with it, created and updated alike."""
        await store.create_pool(make_pool())
        first = {"id": "rotated--1000", "value": "a" * 51, "created": 1.0}
        second = {"id": "rotated--2000", "value": "b" * 51, "created": 2.0}
        rotated = make_client("rotated", secret="a" * 51, secrets=[first])
        await store.create_client(rotated)
        assert await store.get_client("rotated") == rotated
        updated = await store.update_client(replace(rotated, secrets=[first, second]))
        assert await store.get_client("rotated") == updated and updated.secrets == [first, second]
        cleared = await store.update_client(replace(updated, secret="b" * 51, secrets=[second]))
        assert await store.get_client("rotated") == cleared
        [listed] = (await store.list_clients(POOL, None, 10)).items
        assert listed == cleared

    async def test_create_client_with_taken_id_raises(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        await store.create_client(make_client("c1"))
        with pytest.raises(AlreadyExists) as raised:
            await store.create_client(make_client("c1", OTHER_POOL))  # client ids are server-wide
        assert raised.value.key == "id"
        stored = await store.get_client("c1")
        assert stored is not None and stored.pool_id == POOL

    async def test_update_client_is_version_checked(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_client(make_client("c1"))
        updated = await store.update_client(make_client("c1", secret="new", settings={"AllowedOAuthFlows": []}))
        assert updated.version == 1
        assert await store.get_client("c1") == updated
        with pytest.raises(VersionConflict):
            await store.update_client(make_client("c1", name="stale"))
        with pytest.raises(NotFound):
            await store.update_client(make_client("missing"))
        assert await store.get_client("c1") == updated

    async def test_delete_client(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_client(make_client("c1"))
        assert await store.delete_client(OTHER_POOL, "c1") is False  # not that pool's client
        assert await store.get_client("c1") is not None
        assert await store.delete_client(POOL, "c1") is True
        assert await store.get_client("c1") is None
        assert await store.delete_client(POOL, "c1") is False

    async def test_list_clients_pages_within_the_pool(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        ids = [f"client{i:02d}" for i in range(7)]
        for client_id in reversed(ids):
            await store.create_client(make_client(client_id))
        await store.create_client(make_client("client00-other", OTHER_POOL))
        pages = [await store.list_clients(POOL, None, 3)]
        while pages[-1].next_token is not None:
            pages.append(await store.list_clients(POOL, pages[-1].next_token, 3))
        assert [len(p.items) for p in pages] == [3, 3, 1]
        assert [c.id for p in pages for c in p.items] == ids

    # --- users ----------------------------------------------------------------------------------------

    async def test_user_round_trip_keeps_every_field(self, store: Store) -> None:
        await store.create_pool(make_pool())
        user = make_user(
            "Alice",
            username_key="alice",
            status="FORCE_CHANGE_PASSWORD",
            enabled=False,
            password_hash=None,
            password_updated_at=T0 + 1.5,
            temporary_password_expires_at=T0 + 7 * 86400,
            tokens_valid_after=T0 + 0.25,
            aliases={"email": "alice@example.com", "phone_number": "+15555550100"},
            secrets={"srp": {"salt": "00ff", "verifier": "abcd"}, "totp": None},
            password_history=["$argon2id$old2", "$argon2id$old1"],
            settings={"mfa": ["SOFTWARE_TOKEN_MFA"], "failed_attempts": 2},
        )
        await store.create_user(user)
        assert await store.get_user(POOL, "alice") == user
        assert await store.get_user_by_sub(POOL, user.sub) == user
        assert await store.get_user_by_alias(POOL, "email", "alice@example.com") == user
        assert await store.get_user_by_alias(POOL, "phone_number", "+15555550100") == user

    async def test_user_look_ups_are_exact(self, store: Store) -> None:
        """Pinned: keys compare exactly; case-insensitive pools lower-case username_key themselves."""
        await store.create_pool(make_pool())
        user = make_user("alice", aliases={"email": "alice@example.com"})
        await store.create_user(user)
        assert await store.get_user(POOL, "Alice") is None
        assert await store.get_user(OTHER_POOL, "alice") is None
        assert await store.get_user_by_sub(POOL, user.sub.upper()) is None
        assert await store.get_user_by_sub(POOL, str(uuid.uuid4())) is None
        assert await store.get_user_by_alias(POOL, "email", "ALICE@example.com") is None
        assert await store.get_user_by_alias(POOL, "phone_number", "alice@example.com") is None

    async def test_records_are_copies(self, store: Store) -> None:
        await store.create_pool(make_pool())
        user = make_user("alice", aliases={"email": "alice@example.com"})
        await store.create_user(user)
        user.attributes["name"] = "changed after create"
        read = await store.get_user(POOL, "alice")
        assert read is not None and read.attributes["name"] == "Ünïcode alice"
        read.attributes["name"] = "changed after read"
        again = await store.get_user(POOL, "alice")
        assert again is not None and again.attributes["name"] == "Ünïcode alice"

    async def test_same_username_and_alias_in_two_pools(self, store: Store) -> None:
        for pool_id in (POOL, OTHER_POOL):
            await store.create_pool(make_pool(pool_id))
            await store.create_user(make_user("alice", pool_id, aliases={"email": "a@example.com"}))
        for pool_id in (POOL, OTHER_POOL):
            found = await store.get_user_by_alias(pool_id, "email", "a@example.com")
            assert found is not None and found.pool_id == pool_id

    async def test_create_user_in_missing_pool_writes_nothing(self, store: Store) -> None:
        """Pinned."""
        with pytest.raises(NotFound):
            await store.create_user(make_user("alice"))
        assert await store.get_user(POOL, "alice") is None

    async def test_create_user_with_taken_username_writes_nothing(self, store: Store) -> None:
        await store.create_pool(make_pool())
        first = make_user("alice", aliases={"email": "alice@example.com"})
        await store.create_user(first)
        second = make_user("alice", aliases={"email": "other@example.com", "phone_number": "+15555550101"})
        with pytest.raises(AlreadyExists) as raised:
            await store.create_user(second)
        assert raised.value.key == "username"
        assert await store.get_user(POOL, "alice") == first
        assert await store.get_user_by_sub(POOL, second.sub) is None
        assert await store.get_user_by_alias(POOL, "email", "other@example.com") is None
        assert await store.get_user_by_alias(POOL, "phone_number", "+15555550101") is None
        assert await store.count_users(POOL) == 1

    async def test_create_user_with_taken_alias_writes_nothing(self, store: Store) -> None:
        await store.create_pool(make_pool())
        first = make_user("alice", aliases={"email": "shared@example.com"})
        await store.create_user(first)
        # Both aliases of the newcomer sort on either side of the taken one: none of them may stay behind.
        second = make_user(
            "bob",
            aliases={"email": "shared@example.com", "phone_number": "+15555550102", "address": "x"},
        )
        with pytest.raises(AlreadyExists) as raised:
            await store.create_user(second)
        assert raised.value.key == "alias:email"
        assert await store.get_user(POOL, "bob") is None
        assert await store.get_user_by_sub(POOL, second.sub) is None
        assert await store.get_user_by_alias(POOL, "phone_number", "+15555550102") is None
        assert await store.get_user_by_alias(POOL, "address", "x") is None
        assert await store.get_user_by_alias(POOL, "email", "shared@example.com") == first
        assert await store.get_user(POOL, "alice") == first
        assert await store.count_users(POOL) == 1
        # And the failed attempt left nothing that blocks bob with other aliases.
        await store.create_user(replace(second, aliases={"phone_number": "+15555550102"}))

    async def test_update_user_writes_and_bumps_version(self, store: Store) -> None:
        await store.create_pool(make_pool())
        user = make_user("alice")
        await store.create_user(user)
        changed = replace(
            user,
            status="RESET_REQUIRED",
            enabled=False,
            attributes={"email": "alice@example.com", "email_verified": "true"},
            password_hash="$argon2id$new",
            password_history=["$argon2id$old"],
            secrets={"totp": "sealed"},
            settings={"mfa_preferred": "SOFTWARE_TOKEN_MFA"},
            tokens_valid_after=T0 + 10,
            updated_at=T0 + 10,
        )
        updated = await store.update_user(changed)
        assert updated == replace(changed, version=1)
        assert await store.get_user(POOL, "alice") == updated
        assert (await store.update_user(updated)).version == 2

    async def test_update_user_moving_an_alias_frees_the_old_value(self, store: Store) -> None:
        await store.create_pool(make_pool())
        alice = make_user("alice", aliases={"email": "old@example.com", "phone_number": "+15555550103"})
        await store.create_user(alice)
        moved = await store.update_user(replace(alice, aliases={"email": "new@example.com"}))
        assert await store.get_user_by_alias(POOL, "email", "old@example.com") is None
        assert await store.get_user_by_alias(POOL, "phone_number", "+15555550103") is None
        assert await store.get_user_by_alias(POOL, "email", "new@example.com") == moved
        # The freed values can be taken by someone else.
        bob = make_user("bob", aliases={"email": "old@example.com", "phone_number": "+15555550103"})
        await store.create_user(bob)
        assert await store.get_user_by_alias(POOL, "email", "old@example.com") == bob

    async def test_update_user_to_a_taken_alias_writes_nothing(self, store: Store) -> None:
        await store.create_pool(make_pool())
        alice = make_user("alice", aliases={"email": "alice@example.com"})
        bob = make_user("bob", aliases={"email": "bob@example.com"})
        await store.create_user(alice)
        await store.create_user(bob)
        attempt = replace(
            alice,
            status="ARCHIVED",
            aliases={"email": "bob@example.com", "phone_number": "+15555550104"},
        )
        with pytest.raises(AlreadyExists) as raised:
            await store.update_user(attempt)
        assert raised.value.key == "alias:email"
        assert await store.get_user(POOL, "alice") == alice  # version, status and aliases untouched
        assert await store.get_user_by_alias(POOL, "email", "alice@example.com") == alice
        assert await store.get_user_by_alias(POOL, "email", "bob@example.com") == bob
        assert await store.get_user_by_alias(POOL, "phone_number", "+15555550104") is None

    async def test_update_user_swapping_aliases_between_attributes(self, store: Store) -> None:
        await store.create_pool(make_pool())
        alice = make_user("alice", aliases={"email": "a@example.com", "preferred_username": "ally"})
        await store.create_user(alice)
        swapped = await store.update_user(replace(alice, aliases={"email": "b@example.com", "preferred_username": "a"}))
        assert await store.get_user_by_alias(POOL, "preferred_username", "a") == swapped
        assert await store.get_user_by_alias(POOL, "preferred_username", "ally") is None
        assert await store.get_user_by_alias(POOL, "email", "b@example.com") == swapped

    async def test_update_user_with_stale_version_or_missing_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        alice = make_user("alice", aliases={"email": "alice@example.com"})
        await store.create_user(alice)
        current = await store.update_user(replace(alice, status="UNCONFIRMED"))
        with pytest.raises(VersionConflict):
            await store.update_user(replace(alice, aliases={"email": "stale@example.com"}))
        assert await store.get_user(POOL, "alice") == current
        assert await store.get_user_by_alias(POOL, "email", "stale@example.com") is None
        with pytest.raises(NotFound):
            await store.update_user(make_user("nobody"))
        assert await store.get_user(POOL, "nobody") is None

    async def test_concurrent_user_updates_of_one_version_have_one_winner(self, store: Store) -> None:
        await store.create_pool(make_pool())
        alice = make_user("alice")
        await store.create_user(alice)
        results = await outcomes(
            [store.update_user(replace(alice, aliases={"email": f"a{i}@example.com"})) for i in range(RACERS)]
        )
        winners = [r for r in results if isinstance(r, UserRecord)]
        assert len(winners) == 1
        assert sum(isinstance(r, VersionConflict) for r in results) == RACERS - 1
        assert await store.get_user(POOL, "alice") == winners[0]
        found = [await store.get_user_by_alias(POOL, "email", f"a{i}@example.com") for i in range(RACERS)]
        assert [u for u in found if u is not None] == winners

    async def test_delete_user_frees_username_and_aliases(self, store: Store) -> None:
        await store.create_pool(make_pool())
        alice = make_user("alice", aliases={"email": "alice@example.com"})
        await store.create_user(alice)
        assert await store.delete_user(POOL, "alice") is True
        assert await store.get_user(POOL, "alice") is None
        assert await store.get_user_by_sub(POOL, alice.sub) is None
        assert await store.get_user_by_alias(POOL, "email", "alice@example.com") is None
        assert await store.delete_user(POOL, "alice") is False
        await store.create_user(make_user("alice", aliases={"email": "alice@example.com"}))

    async def test_delete_user_drops_everything_of_that_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_group(make_group("admins"))
        for name in ("alice", "bob"):
            await store.create_user(make_user(name))
            await store.add_user_to_group(POOL, name, "admins")
            await store.put_code(make_code(name, "signup"))
            await store.put_code(make_code(name, "reset"))
            await store.put_auth_session(make_session(f"session-{name}", name))
            await _family_with_token(store, f"jti-{name}-1", name)
            await _family_with_token(store, f"jti-{name}-2", name)

        assert await store.delete_user(POOL, "alice") is True

        assert await store.list_groups_for_user(POOL, "alice") == []
        members = await store.list_users_in_group(POOL, "admins", None, 10)
        assert [u.username_key for u in members.items] == ["bob"]
        assert await store.get_code(POOL, "alice", "signup") is None
        assert await store.get_code(POOL, "alice", "reset") is None
        assert await store.take_auth_session("session-alice") is None
        for n in (1, 2):
            assert await store.get_token_family(f"jti-alice-{n}") is None
            assert await store.get_refresh_token(f"rt-jti-alice-{n}") is None
        # Bob keeps his.
        assert await store.get_group(POOL, "admins") is not None
        assert await store.get_code(POOL, "bob", "reset") is not None
        assert await store.take_auth_session("session-bob") is not None
        assert await store.get_token_family("jti-bob-2") is not None
        assert await store.get_refresh_token("rt-jti-bob-2") is not None

    async def test_list_users_pages_in_username_key_order(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        keys = ["carol", "Bob", "alice", "dave", "Zed", "erin", "ållan"]
        for key in keys:
            await store.create_user(make_user(key))
        await store.create_user(make_user("aaron", OTHER_POOL))
        seen: list[str] = []
        page = await store.list_users(POOL, None, 3)
        seen += [u.username_key for u in page.items]
        while page.next_token is not None:
            assert page.next_token == page.items[-1].username_key
            page = await store.list_users(POOL, page.next_token, 3)
            seen += [u.username_key for u in page.items]
        assert seen == sorted(keys)  # pinned: code-point order
        assert await store.count_users(POOL) == len(keys)
        assert await store.count_users(OTHER_POOL) == 1
        assert await store.count_users("us-east-1_Empty") == 0

    async def test_list_users_where_finds_by_the_search_index(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        for key in ["carol", "bob", "alice", "dave", "erin"]:
            await store.create_user(make_user(key, attributes={"email": f"{key.upper()}@Example.com"}))
        await store.create_user(make_user("mallory", OTHER_POOL, attributes={"email": "ALICE@Example.com"}))
        await store.create_user(make_user("émile", attributes={"email": "ÉMILE@EXAMPLE.COM", "name": "Émile"}))

        async def keys(where: UserSearch, limit: int = 60) -> list[str]:
            seen: list[str] = []
            page = await store.list_users(POOL, None, limit, where=where)
            seen += [u.username_key for u in page.items]
            while page.next_token is not None:
                page = await store.list_users(POOL, page.next_token, limit, where=where)
                seen += [u.username_key for u in page.items]
            return seen

        assert await keys(UserSearch("email", "alice@example.com", folded=True)) == ["alice"]  # not the other pool's
        assert await keys(UserSearch("email", "alice@example.com")) == []  # as given, case counts
        assert await keys(UserSearch("email", "ALICE@Example.com")) == ["alice"]
        # Folded by str.lower, not SQL's ASCII-only lower(): É is é.
        assert await keys(UserSearch("email", "émile@example.com", folded=True)) == ["émile"]
        assert await keys(UserSearch("email", "", prefix=True, folded=True), limit=2) == sorted(
            ["alice", "bob", "carol", "dave", "erin", "émile"]
        )
        assert await keys(UserSearch("username", "c", prefix=True)) == ["carol"]
        assert await keys(UserSearch("status", "Enabled"), limit=4) == sorted(
            ["alice", "bob", "carol", "dave", "erin", "émile"]
        )
        assert await keys(UserSearch("cognito:user_status", "CONFIRMED", prefix=True), limit=5) == sorted(
            ["alice", "bob", "carol", "dave", "erin", "émile"]
        )
        sub = (await store.get_user(POOL, "dave")).sub  # type: ignore[union-attr]
        assert await keys(UserSearch("sub", sub)) == ["dave"]
        # A user without the attribute is not found by it.
        assert await keys(UserSearch("name", "", prefix=True)) == ["émile"]
        assert await keys(UserSearch("name", "É", prefix=True)) == ["émile"]

    async def test_list_users_where_follows_updates_and_deletes(self, store: Store) -> None:
        await store.create_pool(make_pool())
        alice = make_user("alice", attributes={"email": "old@example.com", "given_name": "Alice"})
        await store.create_user(alice)
        await store.create_user(make_user("bob", attributes={"email": "bob@example.com"}))
        alice = await store.get_user(POOL, "alice")  # type: ignore[assignment]
        updated = await store.update_user(
            replace(alice, attributes={"email": "new@example.com"}, enabled=False, status="RESET_REQUIRED")
        )

        async def found(where: UserSearch) -> list[str]:
            return [u.username_key for u in (await store.list_users(POOL, None, 60, where=where)).items]

        assert await found(UserSearch("email", "old@example.com")) == []
        assert await found(UserSearch("email", "new@example.com")) == ["alice"]
        assert await found(UserSearch("given_name", "Alice")) == []  # the attribute went
        assert await found(UserSearch("status", "Disabled")) == ["alice"]
        assert await found(UserSearch("cognito:user_status", "reset_required", folded=True)) == ["alice"]
        assert await found(UserSearch("status", "Enabled")) == ["bob"]
        # An update that changes no searchable field leaves the index as it was.
        await store.update_user(replace(updated, password_hash="$argon2id$other"))
        assert await found(UserSearch("email", "new@example.com")) == ["alice"]
        assert await store.delete_user(POOL, "alice") is True
        assert await found(UserSearch("email", "new@example.com")) == []
        assert await found(UserSearch("email", "", prefix=True)) == ["bob"]

    async def test_list_users_where_prefix_bounds_are_exact(self, store: Store) -> None:
        # A prefix is a range of the index: what starts with it, nothing past it, at the edges of Unicode too.
        await store.create_pool(make_pool())
        top = "\U0010ffff"
        values = {
            "u1": "ab",
            "u2": "ab" + top,
            "u3": "ac",
            "u4": top,
            "u5": top + "x",
            "u6": "a\ud7ff",
            "u7": "a\ue000",
        }
        for key, value in values.items():
            await store.create_user(make_user(key, attributes={"family_name": value}))

        async def found(prefix: str) -> list[str]:
            where = UserSearch("family_name", prefix, prefix=True)
            return [u.username_key for u in (await store.list_users(POOL, None, 60, where=where)).items]

        for prefix in ["a", "ab", "ab" + top, top, top + "x", "a\ud7ff", "a\ue000", "", "b"]:
            expected = sorted(key for key, value in values.items() if value.startswith(prefix))
            assert sorted(await found(prefix)) == expected, prefix

    async def test_list_users_where_prefix_pages_in_value_order_without_gaps(self, store: Store) -> None:
        # Pages of a prefix walk the index: by value, then username_key (equal values too), each user once.
        await store.create_pool(make_pool())
        values = {f"u{i:03}": f"Fam{(i * 7) % 13}" for i in range(60)}
        values["v000"] = "Other"
        for key, value in values.items():
            await store.create_user(make_user(key, attributes={"family_name": value}))
        where = UserSearch("family_name", "Fam", prefix=True)
        seen: list[str] = []
        after: str | None = None
        while True:
            page = await store.list_users(POOL, after, 7, where=where)
            seen.extend(u.username_key for u in page.items)
            assert len(page.items) <= 7
            if page.next_token is None:
                break
            after = page.next_token
        expected = sorted((v, k) for k, v in values.items() if v.startswith("Fam"))
        assert seen == [k for _, k in expected]

    async def test_concurrent_creates_of_one_username_have_one_winner(self, store: Store) -> None:
        await store.create_pool(make_pool())
        results = await outcomes([store.create_user(make_user("alice")) for _ in range(RACERS)])
        assert results.count(None) == 1
        losers = [r for r in results if r is not None]
        assert len(losers) == RACERS - 1
        assert all(isinstance(r, AlreadyExists) and r.key == "username" for r in losers)
        assert await store.count_users(POOL) == 1

    async def test_concurrent_creates_with_one_alias_have_one_winner(self, store: Store) -> None:
        await store.create_pool(make_pool())
        users = [make_user(f"user{i}", aliases={"email": "same@example.com"}) for i in range(RACERS)]
        results = await outcomes([store.create_user(u) for u in users])
        assert results.count(None) == 1
        assert all(isinstance(r, AlreadyExists) and r.key == "alias:email" for r in results if r is not None)
        assert await store.count_users(POOL) == 1
        winner = users[results.index(None)]
        assert await store.get_user_by_alias(POOL, "email", "same@example.com") == winner

    async def test_create_and_update_user_keep_usernames_and_nicknames_apart(self, store: Store) -> None:
        await store.create_pool(make_pool())
        nick = {"preferred_username": "bob"}
        await store.create_user(make_user("carol", aliases=nick))
        with pytest.raises(AlreadyExists) as taken:  # "bob" is carol's nickname: no one may be named so
            await store.create_user(make_user("bob"), free_aliases=[("preferred_username", "bob")])
        assert taken.value.key == "username"
        await store.create_user(make_user("dave"))
        with pytest.raises(AlreadyExists) as taken:  # "dave" is a username: no one may be nicknamed so
            await store.create_user(make_user("erin", aliases={"preferred_username": "dave"}), free_usernames=["dave"])
        assert taken.value.key == "alias:preferred_username"
        assert await store.get_user(POOL, "bob") is None and await store.get_user(POOL, "erin") is None
        dave = await store.get_user(POOL, "dave")
        assert dave is not None
        with pytest.raises(AlreadyExists) as taken:
            await store.update_user(replace(dave, aliases={"preferred_username": "carol"}), free_usernames=["carol"])
        assert taken.value.key == "alias:preferred_username"
        assert await store.get_user(POOL, "dave") == dave  # nothing written
        # A user's own username is no conflict.
        updated = await store.update_user(
            replace(dave, aliases={"preferred_username": "dave"}), free_usernames=["dave"]
        )
        assert await store.get_user_by_alias(POOL, "preferred_username", "dave") == updated

    async def test_concurrent_username_and_nickname_of_one_name_have_one_winner(self, store: Store) -> None:
        await store.create_pool(make_pool())
        results = await outcomes(
            [
                store.create_user(make_user(f"nick{i}", aliases={"preferred_username": "x"}), free_usernames=["x"])
                if i % 2
                else store.create_user(make_user("x"), free_aliases=[("preferred_username", "x")])
                for i in range(RACERS)
            ]
        )
        assert results.count(None) == 1
        assert all(isinstance(r, AlreadyExists) for r in results if r is not None)
        assert await store.count_users(POOL) == 1

    # --- the longest values Cognito accepts ----------------------------------------------------------

    async def test_attribute_values_of_the_longest_length_are_indexed_and_found(self, store: Store) -> None:
        """A string attribute holds up to 2,048 characters (StringAttributeConstraints' MaxLength), and a
        character up to four bytes of UTF-8: 8 kB in an alias (email, preferred_username) and in the search
        index (name, ...). Such values are stored, unique, found by alias and by ListUsers' filters as short ones
        are; two that differ only in their last character are two values."""
        await store.create_pool(make_pool())
        long_name = unrepeated(2047, 0x20000, 1) + "a"  # CJK ideographs (four bytes each), compressed by nothing
        nick = unrepeated(2047, 0x20000, 2) + "n"
        email = unrepeated(2000, 0x430, 3, span=32) + "@example.com"  # Cyrillic small letters: two bytes each
        alice = make_user(
            "alice",
            attributes={"name": long_name, "email": email, "preferred_username": nick},
            aliases={"email": email, "preferred_username": nick},
        )
        await store.create_user(alice)
        assert await store.get_user(POOL, "alice") == alice
        assert await store.get_user_by_alias(POOL, "preferred_username", nick) == alice
        assert await store.get_user_by_alias(POOL, "email", email) == alice
        # One character less or different at the end is another value.
        assert await store.get_user_by_alias(POOL, "preferred_username", nick[:-1]) is None
        assert await store.get_user_by_alias(POOL, "preferred_username", nick[:-1] + "m") is None
        with pytest.raises(AlreadyExists) as taken:
            await store.create_user(make_user("bob", aliases={"preferred_username": nick}))
        assert taken.value.key == "alias:preferred_username"
        with pytest.raises(AlreadyExists) as taken:
            await store.create_user(make_user("bob"), free_aliases=[("email", email)])
        assert taken.value.key == "username"
        bob_nick = nick[:-1] + "m"
        bob = make_user("bob", attributes={"name": long_name[:-1] + "b"}, aliases={"preferred_username": bob_nick})
        await store.create_user(bob)
        assert await store.get_user_by_alias(POOL, "preferred_username", bob_nick) == bob

        async def found(where: UserSearch) -> list[str]:
            return [u.username_key for u in (await store.list_users(POOL, None, 10, where=where)).items]

        assert await found(UserSearch("name", long_name)) == ["alice"]
        assert await found(UserSearch("name", long_name[:-1])) == []
        assert await found(UserSearch("name", long_name[:-1] + "b")) == ["bob"]
        # The longest prefix a filter holds (256 characters), as given and lower-cased. (Two values alike in their
        # first MAX_PREFIX_BYTES bytes come in either order, each once.)
        assert sorted(await found(UserSearch("name", long_name[:256], prefix=True))) == ["alice", "bob"]
        assert await found(UserSearch("email", email[:256], prefix=True, folded=True)) == ["alice"]
        assert await found(UserSearch("email", email, folded=True)) == ["alice"]
        # Paged one by one, the prefix walk misses and repeats no one.
        first = await store.list_users(POOL, None, 1, where=UserSearch("name", long_name[:256], prefix=True))
        assert len(first.items) == 1 and first.next_token is not None
        rest = await store.list_users(POOL, first.next_token, 1, where=UserSearch("name", long_name[:256], prefix=True))
        assert len(rest.items) == 1 and rest.next_token is None
        assert sorted(u.username_key for u in first.items + rest.items) == ["alice", "bob"]

        # An update that moves the long alias frees it; one that keeps it keeps it taken.
        current = await store.get_user(POOL, "alice")
        assert current is not None
        moved = await store.update_user(
            replace(current, attributes={**current.attributes, "name": "short"}, aliases={"email": email})
        )
        assert await store.get_user_by_alias(POOL, "email", email) == moved
        assert await store.get_user_by_alias(POOL, "preferred_username", nick) is None
        assert await found(UserSearch("name", long_name)) == []
        assert await found(UserSearch("name", "short")) == ["alice"]
        carol = make_user("carol", aliases={"preferred_username": nick})
        await store.create_user(carol)
        assert await store.get_user_by_alias(POOL, "preferred_username", nick) == carol
        with pytest.raises(AlreadyExists):
            await store.update_user(replace(bob, aliases={"preferred_username": nick}))
        assert await store.get_user(POOL, "bob") == bob
        assert await store.delete_user(POOL, "alice") is True
        await store.create_user(make_user("dave", aliases={"email": email}))
        assert (await store.get_user_by_alias(POOL, "email", email) or bob).username_key == "dave"

    async def test_a_prefix_longer_than_a_filter_can_hold_is_refused(self, store: Store) -> None:
        """ListUsers' Filter is at most 256 characters, so a prefix at most 1,024 bytes of UTF-8 (lower-casing
        never makes a character longer than four bytes): a longer one is a caller's error in every store."""
        await store.create_pool(make_pool())
        name = unrepeated(300, 0x20000, 4)
        await store.create_user(make_user("alice", attributes={"name": name}))
        longest = UserSearch("name", name[:256], prefix=True)
        assert [u.username_key for u in (await store.list_users(POOL, None, 10, where=longest)).items] == ["alice"]
        with pytest.raises(ValueError):
            await store.list_users(POOL, None, 10, where=UserSearch("name", name[:257], prefix=True))

    # --- groups ---------------------------------------------------------------------------------------

    async def test_group_round_trip_and_taken_name(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        group = make_group("admins", role_arn="arn:aws:iam::123456789012:role/Admin", precedence=1)
        await store.create_group(group)
        await store.create_group(make_group("admins", OTHER_POOL))
        assert await store.get_group(POOL, "admins") == group
        assert await store.get_group(POOL, "missing") is None
        with pytest.raises(AlreadyExists) as raised:
            await store.create_group(make_group("admins", description="impostor"))
        assert raised.value.key == "name"
        assert await store.get_group(POOL, "admins") == group

    async def test_update_group(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_group(make_group("admins"))
        changed = make_group("admins", description=None, role_arn="arn:aws:iam::1:role/R", precedence=7)
        await store.update_group(changed)
        assert await store.get_group(POOL, "admins") == changed
        with pytest.raises(NotFound):  # pinned
            await store.update_group(make_group("missing"))
        assert await store.get_group(POOL, "missing") is None

    async def test_delete_group_drops_its_memberships(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_group(make_group("admins"))
        await store.create_group(make_group("readers"))
        await store.add_user_to_group(POOL, "alice", "admins")
        await store.add_user_to_group(POOL, "alice", "readers")
        assert await store.delete_group(POOL, "admins") is True
        assert await store.delete_group(POOL, "admins") is False
        assert [g.name for g in await store.list_groups_for_user(POOL, "alice")] == ["readers"]
        # Re-creating the group does not bring old members back.
        await store.create_group(make_group("admins"))
        assert (await store.list_users_in_group(POOL, "admins", None, 10)).items == []

    async def test_list_groups_pages_in_name_order(self, store: Store) -> None:
        await store.create_pool(make_pool())
        names = ["writers", "Admins", "readers", "auditors", "ops"]
        for name in names:
            await store.create_group(make_group(name))
        first = await store.list_groups(POOL, None, 3)
        assert first.next_token == first.items[-1].name
        rest = await store.list_groups(POOL, first.next_token, 3)
        assert rest.next_token is None
        assert [g.name for g in first.items + rest.items] == sorted(names)
        assert await store.count_groups(POOL) == len(names)
        assert await store.count_groups("us-east-1_Other") == 0
        await store.delete_group(POOL, "ops")
        assert await store.count_groups(POOL) == len(names) - 1

    async def test_group_membership(self, store: Store) -> None:
        await store.create_pool(make_pool())
        for name in ("readers", "admins", "writers"):
            await store.create_group(make_group(name))
        for key in ("carol", "alice", "bob", "dave"):
            await store.create_user(make_user(key))
            await store.add_user_to_group(POOL, key, "readers")
        await store.add_user_to_group(POOL, "alice", "writers")
        await store.add_user_to_group(POOL, "alice", "admins")
        await store.add_user_to_group(POOL, "alice", "admins")  # idempotent

        groups = await store.list_groups_for_user(POOL, "alice")
        assert [g.name for g in groups] == ["admins", "readers", "writers"]
        assert groups[0] == await store.get_group(POOL, "admins")
        assert await store.list_groups_for_user(POOL, "nobody") == []

        first = await store.list_users_in_group(POOL, "readers", None, 3)
        assert [u.username_key for u in first.items] == ["alice", "bob", "carol"]
        assert first.items[0] == await store.get_user(POOL, "alice")
        assert first.next_token == "carol"
        rest = await store.list_users_in_group(POOL, "readers", first.next_token, 3)
        assert ([u.username_key for u in rest.items], rest.next_token) == (["dave"], None)
        admins = await store.list_users_in_group(POOL, "admins", None, 10)
        assert [u.username_key for u in admins.items] == ["alice"]

        await store.remove_user_from_group(POOL, "alice", "admins")
        await store.remove_user_from_group(POOL, "alice", "admins")  # removing a non-member is no error
        assert [g.name for g in await store.list_groups_for_user(POOL, "alice")] == ["readers", "writers"]
        assert (await store.list_users_in_group(POOL, "admins", None, 10)).items == []

    # --- one-time codes -------------------------------------------------------------------------------

    async def test_code_round_trip_and_replacement(self, store: Store) -> None:
        await store.create_pool(make_pool())
        code = make_code("alice", "reset", data={"delivery": "EMAIL"})
        await store.put_code(code)
        assert await store.get_code(POOL, "alice", "reset") == code
        assert await store.get_code(POOL, "alice", "signup") is None
        assert await store.count_code_attempt(POOL, "alice", "reset") == 1
        newer = make_code("alice", "reset", code_hash="hash-2", expires_at=T0 + 7200, data={})
        await store.put_code(newer)
        assert await store.get_code(POOL, "alice", "reset") == newer  # attempts start again from the record's
        assert await store.consume_code(POOL, "alice", "reset", "hash-1") is False  # the old code is dead

    async def test_consume_code(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.put_code(make_code("alice", "signup"))
        await store.put_code(make_code("alice", "verify_email"))
        assert await store.consume_code(POOL, "alice", "signup", "wrong") is False
        assert await store.get_code(POOL, "alice", "signup") is not None
        assert await store.consume_code(POOL, "alice", "signup", "hash-1") is True
        assert await store.consume_code(POOL, "alice", "signup", "hash-1") is False
        assert await store.get_code(POOL, "alice", "signup") is None
        assert await store.get_code(POOL, "alice", "verify_email") is not None  # per purpose
        assert await store.consume_code(POOL, "bob", "signup", "hash-1") is False

    async def test_concurrent_consumers_of_one_code_have_one_winner(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.put_code(make_code("alice"))
        results = await outcomes([store.consume_code(POOL, "alice", "signup", "hash-1") for _ in range(RACERS)])
        assert results.count(True) == 1
        assert results.count(False) == RACERS - 1

    async def test_consume_code_below_the_attempt_limit_only(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.put_code(make_code("alice"))
        assert await store.count_code_attempt(POOL, "alice", "signup") == 1
        assert await store.count_code_attempt(POOL, "alice", "signup") == 2
        assert await store.consume_code(POOL, "alice", "signup", "hash-1", max_attempts=2) is False
        assert await store.get_code(POOL, "alice", "signup") is not None  # refused: the code stays, counted
        assert await store.consume_code(POOL, "alice", "signup", "hash-1", max_attempts=3) is True
        assert await store.get_code(POOL, "alice", "signup") is None

    async def test_concurrent_guesses_and_a_limited_consumer(self, store: Store) -> None:
        # A right answer racing wrong ones wins only if fewer than the limit were counted before it.
        await store.create_pool(make_pool())
        await store.put_code(make_code("alice", attempts=4))
        calls: list[Awaitable[object]] = [store.count_code_attempt(POOL, "alice", "signup") for _ in range(RACERS)]
        calls.append(store.consume_code(POOL, "alice", "signup", "hash-1", max_attempts=5))
        results = await outcomes(calls)
        counts, consumed = results[:-1], results[-1]
        if consumed is True:  # it came first: every count found no code
            assert counts == [0] * RACERS
            assert await store.get_code(POOL, "alice", "signup") is None
        else:
            assert consumed is False
            stored = await store.get_code(POOL, "alice", "signup")
            assert stored is not None and stored.attempts == 4 + RACERS

    async def test_count_code_attempt(self, store: Store) -> None:
        await store.create_pool(make_pool())
        assert await store.count_code_attempt(POOL, "alice", "signup") == 0
        assert await store.get_code(POOL, "alice", "signup") is None  # counting creates nothing
        await store.put_code(make_code("alice"))
        assert await store.count_code_attempt(POOL, "alice", "signup") == 1
        assert await store.count_code_attempt(POOL, "alice", "signup") == 2
        results = await outcomes([store.count_code_attempt(POOL, "alice", "signup") for _ in range(RACERS)])
        assert sorted(r for r in results if isinstance(r, int)) == list(range(3, RACERS + 3))
        stored = await store.get_code(POOL, "alice", "signup")
        assert stored is not None and stored.attempts == RACERS + 2

    async def test_delete_code(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.put_code(make_code("alice"))
        await store.delete_code(POOL, "alice", "signup")
        assert await store.get_code(POOL, "alice", "signup") is None
        await store.delete_code(POOL, "alice", "signup")  # deleting nothing is no error

    async def test_take_code_send_counts_up_to_the_limit_per_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        for _ in range(3):
            assert await store.take_code_send(POOL, "alice", T0, T0 + 900, 3) is True
        assert await store.take_code_send(POOL, "alice", T0 + 1, T0 + 901, 3) is False
        assert await store.take_code_send(POOL, "alice", T0 + 2, T0 + 902, 3) is False  # refusals count nothing
        assert await store.take_code_send(POOL, "bob", T0 + 2, T0 + 902, 3) is True  # per user
        # The first three expire at T0 + 900: then the user may be sent codes again.
        assert await store.take_code_send(POOL, "alice", T0 + 899, T0 + 1799, 3) is False
        assert await store.take_code_send(POOL, "alice", T0 + 900, T0 + 1800, 3) is True
        assert await store.take_code_send(POOL, "alice", T0 + 901, T0 + 1801, 1) is False  # the new one counts
        assert await store.purge_expired(T0 + 10_000) >= 2

    async def test_return_code_send_uncounts_one_send(self, store: Store) -> None:
        await store.create_pool(make_pool())
        assert await store.take_code_send(POOL, "alice", T0, T0 + 900, 2) is True
        assert await store.take_code_send(POOL, "alice", T0 + 1, T0 + 901, 2) is True
        assert await store.take_code_send(POOL, "alice", T0 + 2, T0 + 902, 2) is False
        await store.return_code_send(POOL, "alice", T0 + 1)
        assert await store.take_code_send(POOL, "alice", T0 + 3, T0 + 903, 2) is True  # the slot came back
        assert await store.take_code_send(POOL, "alice", T0 + 4, T0 + 904, 2) is False
        await store.return_code_send(POOL, "alice", T0 + 99)  # nothing counted then: no error, nothing changed
        await store.return_code_send(POOL, "bob", T0)
        assert await store.take_code_send(POOL, "alice", T0 + 5, T0 + 905, 2) is False

    async def test_delete_pool_removes_a_pool_of_many_users_and_nothing_else(self, store: Store) -> None:
        # More users than one of the SQLite store's delete batches (2,000), each with search rows and an alias.
        await store.create_pool(make_pool())
        await store.create_pool(make_pool("us-east-1_Other"))
        for index in range(2_003):
            await store.create_user(make_user(f"user{index:05}", attributes={"email": f"u{index}@example.com"}))
        await store.create_user(make_user("keeper", pool_id="us-east-1_Other"))
        assert await store.delete_pool(POOL) is True
        assert await store.get_pool(POOL) is None
        assert await store.count_users(POOL) == 0
        assert await store.get_user(POOL, "user00001") is None
        assert (await store.list_users(POOL, None, 10)).items == []
        assert await store.get_user("us-east-1_Other", "keeper") is not None
        assert await store.delete_pool(POOL) is False

    async def test_take_code_send_in_a_missing_pool_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            await store.take_code_send(POOL, "alice", T0, T0 + 900, 3)

    async def test_take_code_send_racers_never_exceed_the_limit(self, store: Store) -> None:
        await store.create_pool(make_pool())
        results = await outcomes([store.take_code_send(POOL, "alice", T0, T0 + 60, 5) for _ in range(RACERS)])
        assert results.count(True) == 5
        assert results.count(False) == RACERS - 5

    # --- challenge sessions ---------------------------------------------------------------------------

    async def test_take_auth_session_returns_it_once(self, store: Store) -> None:
        await store.create_pool(make_pool())
        session = make_session("session-1", "alice")
        await store.put_auth_session(session)
        assert await store.take_auth_session("session-1") == session
        assert await store.take_auth_session("session-1") is None
        assert await store.take_auth_session("never") is None

    async def test_concurrent_takers_of_one_session_have_one_winner(self, store: Store) -> None:
        await store.create_pool(make_pool())
        session = make_session("session-1", "alice")
        await store.put_auth_session(session)
        results = await outcomes([store.take_auth_session("session-1") for _ in range(RACERS)])
        assert results.count(None) == RACERS - 1
        assert [r for r in results if r is not None] == [session]

    # --- tokens ---------------------------------------------------------------------------------------

    async def test_token_family_round_trip(self, store: Store) -> None:
        await store.create_pool(make_pool())
        family = make_family("jti-1", "alice")
        token = make_refresh("rt-1", family)
        await store.create_token_family(family, token)
        await store.create_token_family(make_family("jti-2", "alice"), None)
        assert await store.get_token_family("jti-1") == family
        assert await store.get_refresh_token("rt-1") == token
        assert await store.get_token_family("jti-2") == make_family("jti-2", "alice")
        assert await store.get_token_family("missing") is None
        assert await store.get_refresh_token("missing") is None
        with pytest.raises(AlreadyExists):
            await store.create_token_family(make_family("jti-1", "bob"), make_refresh("rt-other", family))
        assert await store.get_token_family("jti-1") == family
        assert await store.get_refresh_token("rt-other") is None

    async def test_token_sessions_listed_touched_and_evicted(self, store: Store) -> None:
        await store.create_pool(make_pool())
        now = T0 + 10
        # Three sessions of alice, created a second apart; one without a refresh token (not a session), one
        # revoked, one expired, and bob's.
        for n in range(3):
            family = make_family(
                f"s-{n}", "alice", created_at=T0 + n, device_type="Chrome on Linux", last_ip="10.0.0.1"
            )
            await store.create_token_family(family, make_refresh(f"rt-s-{n}", family))
        await store.create_token_family(make_family("no-refresh", "alice", created_at=T0 + 5), None)
        revoked = make_family("revoked", "alice", created_at=T0 + 6)
        await store.create_token_family(revoked, make_refresh("rt-revoked", revoked))
        await store.revoke_token_family("revoked")
        expired = make_family("expired", "alice", created_at=T0 + 7, expires_at=now)
        await store.create_token_family(expired, make_refresh("rt-expired", expired, expires_at=now))
        bobs = make_family("bobs", "bob", created_at=T0 + 8)
        await store.create_token_family(bobs, make_refresh("rt-bobs", bobs))
        listed = await store.list_token_sessions(POOL, "alice", now)
        assert [f.origin_jti for f in listed] == ["s-2", "s-1", "s-0"]
        assert (listed[0].device_type, listed[0].last_ip, listed[0].last_active_at) == (
            "Chrome on Linux",
            "10.0.0.1",
            None,
        )
        # A refresh makes s-0 the most recently active, with its new device and address.
        await store.touch_token_family("s-0", T0 + 9, "Firefox on Windows", "10.0.0.2")
        listed = await store.list_token_sessions(POOL, "alice", now)
        assert [f.origin_jti for f in listed] == ["s-0", "s-2", "s-1"]
        assert (listed[0].device_type, listed[0].last_ip, listed[0].last_active_at) == (
            "Firefox on Windows",
            "10.0.0.2",
            T0 + 9,
        )
        # Keep two: the least recently used (s-1) is revoked; bob's are not touched.
        assert await store.evict_token_sessions(POOL, "alice", 2, now) == ["s-1"]
        assert (await store.get_token_family("s-1")).revoked  # type: ignore[union-attr]
        assert [f.origin_jti for f in await store.list_token_sessions(POOL, "alice", now)] == ["s-0", "s-2"]
        assert await store.evict_token_sessions(POOL, "alice", 2, now) == []
        # The spared family (a sign-in's own, just started) is neither evicted nor counted.
        assert await store.evict_token_sessions(POOL, "alice", 0, now, spare="s-2") == ["s-0"]
        assert await store.evict_token_sessions(POOL, "alice", 0, now) == ["s-2"]
        assert [f.origin_jti for f in await store.list_token_sessions(POOL, "bob", now)] == ["bobs"]

    async def test_oauth_records_of_a_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        alice = OAuthRecord("sso", "a1", POOL, "", "alice", {"created_at": T0}, T0 + 300)
        await store.put_oauth_record(alice)
        await store.put_oauth_record(OAuthRecord("sso", "b1", POOL, "", "bob", {}, T0 + 300))
        await store.put_oauth_record(OAuthRecord("authorize", "a2", POOL, "c", "alice", {}, T0 + 300))
        assert await store.list_oauth_records(POOL, "alice", "sso") == [alice]
        assert await store.list_oauth_records(POOL, "carol", "sso") == []

    async def test_token_family_with_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_token_family(make_family("jti-a", "alice"), None)
        await store.create_token_family(make_family("jti-ghost", "ghost"), None)
        found = await store.get_token_family_with_user("jti-a")
        assert found is not None
        family, user = found
        assert family == make_family("jti-a", "alice")
        assert user is not None and user.username_key == "alice" and user == await store.get_user(POOL, "alice")
        # A family whose user is gone still answers (so the caller can refuse the token), with no user.
        assert await store.get_token_family_with_user("jti-ghost") == (make_family("jti-ghost", "ghost"), None)
        assert await store.get_token_family_with_user("missing") is None

    async def test_user_with_groups(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        await store.create_user(make_user("alice"))
        await store.create_user(make_user("bob"))
        await store.create_user(make_user("alice", OTHER_POOL))
        assert await store.get_user_with_groups(POOL, "alice") == (await store.get_user(POOL, "alice"), [])
        for name in ("zeta", "alpha"):
            await store.create_group(make_group(name, role_arn=f"arn:aws:iam::123456789012:role/{name}", precedence=3))
            await store.add_user_to_group(POOL, "alice", name)
        await store.create_group(make_group("other", OTHER_POOL))
        await store.add_user_to_group(OTHER_POOL, "alice", "other")
        found = await store.get_user_with_groups(POOL, "alice")
        assert found is not None
        assert found[0] == await store.get_user(POOL, "alice")
        assert found[1] == await store.list_groups_for_user(POOL, "alice")
        assert [g.name for g in found[1]] == ["alpha", "zeta"]
        # Only the user's own groups, in the user's own pool.
        assert await store.get_user_with_groups(POOL, "bob") == (await store.get_user(POOL, "bob"), [])
        other = await store.get_user_with_groups(OTHER_POOL, "alice")
        assert other is not None and [g.name for g in other[1]] == ["other"]
        assert await store.get_user_with_groups(POOL, "nobody") is None
        assert await store.get_user_with_groups("us-east-1_missing", "alice") is None

    async def test_refresh_token_with_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        family = make_family("jti-r", "alice")
        token = make_refresh("rt-r", family)
        await store.create_token_family(family, token)
        await store.create_group(make_group("zeta"))
        await store.create_group(make_group("alpha"))
        await store.add_user_to_group(POOL, "alice", "zeta")
        await store.add_user_to_group(POOL, "alice", "alpha")
        found = await store.get_refresh_token_with_user("rt-r")
        assert found is not None
        assert found[:2] == (token, family)
        assert found[2] == await store.get_user(POOL, "alice")
        assert found[3] == await store.list_groups_for_user(POOL, "alice")
        assert [g.name for g in found[3]] == ["alpha", "zeta"]
        await store.delete_user(POOL, "alice")
        # Deleting the user drops its tokens too; a token of a user who is gone is simply not found.
        assert await store.get_refresh_token_with_user("rt-r") is None
        ghost = make_family("jti-g", "ghost")
        await store.create_token_family(ghost, make_refresh("rt-g", ghost))
        assert await store.get_refresh_token_with_user("rt-g") == (make_refresh("rt-g", ghost), ghost, None, [])
        assert await store.get_refresh_token_with_user("missing") is None

    async def test_revoke_token_family(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await _family_with_token(store, "jti-1", "alice")
        await _family_with_token(store, "jti-2", "alice")
        assert await store.revoke_token_family("jti-1") is True
        revoked = await store.get_token_family("jti-1")
        assert revoked is not None and revoked.revoked
        other = await store.get_token_family("jti-2")
        assert other is not None and not other.revoked
        assert await store.revoke_token_family("jti-1") is False  # pinned: already revoked
        assert await store.revoke_token_family("missing") is False
        assert await store.get_refresh_token("rt-jti-1") is not None  # kept, so that its reuse is recognised

    async def test_revoke_user_token_families(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        for jti in ("a1", "a2", "a3"):
            await _family_with_token(store, jti, "alice")
        await _family_with_token(store, "b1", "bob")
        await _family_with_token(store, "other-a1", "alice", OTHER_POOL)
        await store.revoke_token_family("a3")
        assert await store.revoke_user_token_families(POOL, "alice") == 2  # pinned: a3 was revoked already
        for jti, revoked in [("a1", True), ("a2", True), ("a3", True), ("b1", False), ("other-a1", False)]:
            family = await store.get_token_family(jti)
            assert family is not None and family.revoked is revoked
        assert await store.revoke_user_token_families(POOL, "alice") == 0
        assert await store.revoke_user_token_families(POOL, "nobody") == 0

    async def test_deleting_a_client_revokes_its_families(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        for client_id, pool_id in [("client-1", POOL), ("client-2", POOL), ("other-1", OTHER_POOL)]:
            await store.create_client(make_client(client_id, pool_id))
        await _family_with_token(store, "c1-alice", "alice")
        await _family_with_token(store, "c1-bob", "bob")
        await store.create_token_family(make_family("c2-alice", "alice", client_id="client-2"), None)
        await store.create_token_family(make_family("other-alice", "alice", OTHER_POOL, client_id="other-1"), None)
        # Client ID metadata document clients' families, named by their URLs, signed in under an app client.
        tool = "https://tools.example/client.json"
        await store.create_token_family(make_family("c1-tool", "alice", client_id=tool), None, app_client_id="client-1")
        await store.create_token_family(make_family("c2-tool", "bob", client_id=tool), None, app_client_id="client-2")
        assert await store.delete_client(OTHER_POOL, "client-1") is False  # not that pool's client: nothing revoked
        untouched = await store.get_token_family("c1-alice")
        assert untouched is not None and not untouched.revoked
        assert await store.delete_client(POOL, "client-1") is True
        for jti, revoked in [
            ("c1-alice", True),
            ("c1-bob", True),
            ("c1-tool", True),
            ("c2-alice", False),
            ("c2-tool", False),
            ("other-alice", False),
        ]:
            family = await store.get_token_family(jti)
            assert family is not None and family.revoked is revoked
        assert await store.get_refresh_token("rt-c1-alice") is not None  # kept, as a revoked family's are
        assert await store.delete_client(POOL, "client-1") is False

    async def test_a_family_is_stored_only_while_its_app_client_exists(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        await store.create_client(make_client("client-1"))
        await store.create_client(make_client("other-1", OTHER_POOL))
        family = make_family("jti-1", "alice")
        await store.create_token_family(family, make_refresh("rt-1", family), app_client_id="client-1")
        # A client ID metadata document client's family names its URL and is checked by its app client.
        url = make_family("jti-url", "alice", client_id="https://app.example/client.json")
        await store.create_token_family(url, None, app_client_id="client-1")
        for app_client_id in ("missing", "other-1"):  # gone, or another pool's
            late = make_family(f"jti-{app_client_id}", "alice")
            with pytest.raises(NotFound):
                await store.create_token_family(
                    late, make_refresh(f"rt-{app_client_id}", late), app_client_id=app_client_id
                )
            assert await store.get_token_family(late.origin_jti) is None
            assert await store.get_refresh_token(f"rt-{app_client_id}") is None
        await store.delete_client(POOL, "client-1")
        late = make_family("jti-2", "alice")
        with pytest.raises(NotFound):
            await store.create_token_family(late, None, app_client_id="client-1")
        with pytest.raises(NotFound):
            await store.start_code_family("code-1", late, make_refresh("rt-2", late), app_client_id="client-1")
        assert await store.get_token_family("jti-2") is None and await store.get_refresh_token("rt-2") is None
        # The code is not used up by the refusal (nothing was stored); without the check it starts the family.
        assert await store.start_code_family("code-1", late, None) is True

    async def test_rotate_refresh_token(self, store: Store) -> None:
        await store.create_pool(make_pool())
        family = make_family("jti-1", "alice")
        await store.create_token_family(family, make_refresh("rt-1", family))
        successor = make_refresh("rt-2", family, created_at=T0 + 60, data={})
        assert await store.rotate_refresh_token("rt-1", successor, T0 + 60) is True
        old = await store.get_refresh_token("rt-1")
        assert old is not None and (old.replaced_by, old.replaced_at) == ("rt-2", T0 + 60)
        assert await store.get_refresh_token("rt-2") == successor
        # The old token cannot be rotated again: the second caller writes nothing.
        assert await store.rotate_refresh_token("rt-1", make_refresh("rt-3", family), T0 + 61) is False
        assert await store.get_refresh_token("rt-3") is None
        old_again = await store.get_refresh_token("rt-1")
        assert old_again == old
        # Nor can a token that does not exist.
        assert await store.rotate_refresh_token("missing", make_refresh("rt-4", family), T0 + 62) is False
        assert await store.get_refresh_token("rt-4") is None
        # The successor rotates in its turn.
        assert await store.rotate_refresh_token("rt-2", make_refresh("rt-5", family), T0 + 63) is True

    async def test_concurrent_rotations_of_one_token_have_one_winner(self, store: Store) -> None:
        await store.create_pool(make_pool())
        family = make_family("jti-1", "alice")
        await store.create_token_family(family, make_refresh("rt-0", family))
        candidates = [make_refresh(f"rt-new-{i}", family) for i in range(RACERS)]
        results = await outcomes([store.rotate_refresh_token("rt-0", c, T0 + 1) for c in candidates])
        assert results.count(True) == 1
        assert results.count(False) == RACERS - 1
        stored = [await store.get_refresh_token(c.token_hash) for c in candidates]
        successors = [t for t in stored if t is not None]
        assert len(successors) == 1
        assert successors[0] == candidates[results.index(True)]
        old = await store.get_refresh_token("rt-0")
        assert old is not None and old.replaced_by == successors[0].token_hash

    async def test_purge_expired(self, store: Store) -> None:
        await store.create_pool(make_pool())
        now = T0 + 1000
        await store.put_code(make_code("alice", "signup", expires_at=now - 1))
        await store.put_code(make_code("alice", "reset", expires_at=now + 1))
        await store.put_auth_session(make_session("s-old", "alice", expires_at=now - 1))
        await store.put_auth_session(make_session("s-new", "alice", expires_at=now + 1))
        old_family = make_family("jti-old", "alice", expires_at=now - 1)
        await store.create_token_family(old_family, make_refresh("rt-old", old_family))
        live_family = make_family("jti-live", "alice", expires_at=now + 86400)
        await store.create_token_family(live_family, make_refresh("rt-live-expired", live_family, expires_at=now - 1))
        await store.rotate_refresh_token("rt-live-expired", make_refresh("rt-live", live_family), now - 2)

        # code, session, family, and two refresh tokens (the expired family's, the expired live one)
        assert await store.purge_expired(now) == 5

        assert await store.get_code(POOL, "alice", "signup") is None
        assert await store.get_code(POOL, "alice", "reset") is not None
        assert await store.take_auth_session("s-old") is None
        assert await store.take_auth_session("s-new") is not None
        assert await store.get_token_family("jti-old") is None
        assert await store.get_refresh_token("rt-old") is None
        assert await store.get_refresh_token("rt-live-expired") is None
        assert await store.get_token_family("jti-live") is not None
        assert await store.get_refresh_token("rt-live") is not None
        assert await store.purge_expired(now) == 0

    async def test_purge_expires_unstarted_import_jobs_and_drops_ended_jobs_files(self, store: Store) -> None:
        await store.create_pool(make_pool())
        now = T0 + UNSTARTED_IMPORT_JOB_SECONDS + 1
        await store.create_user_import_job(make_import_job("import-old"))
        await store.create_user_import_job(make_import_job("import-new", created_at=now - 10))
        await store.create_user_import_job(make_import_job("import-done", status="Succeeded"))
        for job in ("import-old", "import-new", "import-done"):
            await store.add_user_import_chunk(POOL, job, "u1", 0, b"cognito:username\nalice\n")
        # Never looked at again: the day-old unstarted job expires (counted once however many callers race),
        # and its file goes with the ended job's.
        expired = await asyncio.gather(*(store.expire_unstarted_import_jobs(now) for _ in range(4)))
        assert sorted(expired) == [0, 0, 0, 1]
        assert await store.purge_expired(now) == 2
        old = await store.get_user_import_job(POOL, "import-old")
        assert old is not None and old.status == "Expired"
        assert await store.read_user_import_chunk(POOL, "import-old", "u1", 0) is None
        assert await store.read_user_import_chunk(POOL, "import-done", "u1", 0) is None
        new = await store.get_user_import_job(POOL, "import-new")
        assert new is not None and new.status == "Created"
        assert await store.read_user_import_chunk(POOL, "import-new", "u1", 0) is not None
        assert await store.purge_expired(now) == 0

    # --- signing keys ---------------------------------------------------------------------------------

    async def test_signing_key_rotation(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        await store.add_signing_key(make_signing_key("k1", T0 + 1))
        await store.add_signing_key(make_signing_key("other", T0, OTHER_POOL))
        await store.add_signing_key(make_signing_key("k2", T0 + 2))
        # An inactive key (published ahead of use) retires nobody.
        await store.add_signing_key(make_signing_key("k3", T0 + 3, active=False))
        keys = {k.kid: k for k in await store.list_signing_keys(POOL)}
        assert (keys["k1"].active, keys["k1"].retired_at) == (False, T0 + 2)  # pinned: the new key's created_at
        assert (keys["k2"].active, keys["k2"].retired_at) == (True, None)
        assert (keys["k3"].active, keys["k3"].retired_at) == (False, None)

        await store.add_signing_key(make_signing_key("k4", T0 + 4))
        keys_now = await store.list_signing_keys(POOL)
        assert [k.kid for k in keys_now] == ["k4", "k3", "k2", "k1"]  # newest first
        by_kid = {k.kid: k for k in keys_now}
        assert [k.kid for k in keys_now if k.active] == ["k4"]
        assert by_kid["k2"].retired_at == T0 + 4
        assert by_kid["k1"].retired_at == T0 + 2  # retired keys keep their retirement time
        assert by_kid["k4"] == make_signing_key("k4", T0 + 4)
        assert [(k.kid, k.active) for k in await store.list_signing_keys(OTHER_POOL)] == [("other", True)]

        with pytest.raises(AlreadyExists):
            await store.add_signing_key(make_signing_key("k4", T0 + 5))
        assert [k.kid for k in await store.list_signing_keys(POOL) if k.active] == ["k4"]

        await store.delete_signing_key(POOL, "k1")
        await store.delete_signing_key(POOL, "k1")
        assert [k.kid for k in await store.list_signing_keys(POOL)] == ["k4", "k3", "k2"]
        assert await store.list_signing_keys("us-east-1_Empty") == []

    async def test_signing_keys_are_active_per_token_use(self, store: Store) -> None:
        await store.create_pool(make_pool())
        id_key = make_signing_key("id-1", T0)
        access_key = replace(make_signing_key("access-1", T0 + 1), token_use="access")
        await store.add_signing_key(id_key)
        await store.add_signing_key(access_key)
        # An access key retires nothing of the ID tokens' keys, and the other way round.
        assert {(k.kid, k.token_use, k.active) for k in await store.list_signing_keys(POOL)} == {
            ("id-1", "id", True),
            ("access-1", "access", True),
        }
        await store.add_signing_key(replace(make_signing_key("access-2", T0 + 2), token_use="access"))
        keys = {k.kid: k for k in await store.list_signing_keys(POOL)}
        assert (keys["access-1"].active, keys["access-1"].retired_at) == (False, T0 + 2)
        assert (keys["id-1"].active, keys["access-2"].active) == (True, True)

    # --- IAM roles and OIDC providers -----------------------------------------------------------------

    async def test_roles_with_inline_policies(self, store: Store) -> None:
        def role(name: str, role_id: str) -> RoleRecord:
            return RoleRecord(
                name=name,
                name_key=name.lower(),
                role_id=role_id,
                path="/app/",
                assume_role_policy='{"Statement": []}',
                description="d",
                max_session_duration=3600,
                tags={"team": "a"},
                created_at=T0,
            )

        await store.create_role(role("Reader", "AROA1"))
        with pytest.raises(AlreadyExists) as by_name:
            await store.create_role(role("READER", "AROA2"))
        assert by_name.value.key == "name"
        with pytest.raises(AlreadyExists) as by_id:
            await store.create_role(role("Other", "AROA1"))
        assert by_id.value.key == "id"

        assert await store.get_role("reader") == role("Reader", "AROA1")
        assert await store.get_role("Reader") is None  # look-ups are exact; folding is the service's job
        await store.put_role_policy("reader", "p1", '{"v": 1}')
        await store.put_role_policy("reader", "p2", '{"v": 2}')
        await store.put_role_policy("reader", "p1", '{"v": 3}')  # replaces
        found = await store.get_role("reader")
        assert found is not None and found.policies == {"p1": '{"v": 3}', "p2": '{"v": 2}'}
        with pytest.raises(NotFound):
            await store.put_role_policy("nobody", "p1", "{}")

        updated = replace(role("Reader", "AROA1"), assume_role_policy='{"x": 1}', max_session_duration=7200)
        await store.update_role(updated)
        found = await store.get_role("reader")
        assert found is not None and (found.assume_role_policy, found.max_session_duration) == ('{"x": 1}', 7200)
        assert found.policies == {"p1": '{"v": 3}', "p2": '{"v": 2}'}  # untouched by update_role
        with pytest.raises(NotFound):
            await store.update_role(role("Ghost", "AROA9"))

        for index in range(3):
            await store.create_role(role(f"r{index}", f"AROAR{index}"))
        first = await store.list_roles(None, 2)
        assert [r.name_key for r in first.items] == ["r0", "r1"] and first.next_token == "r1"
        second = await store.list_roles(first.next_token, 2)
        assert [r.name_key for r in second.items] == ["r2", "reader"] and second.next_token is None
        assert second.items[1].policies == {"p1": '{"v": 3}', "p2": '{"v": 2}'}

        assert await store.delete_role_policy("reader", "p2") is True
        assert await store.delete_role_policy("reader", "p2") is False
        assert await store.delete_role("reader") is True
        assert await store.delete_role("reader") is False
        assert await store.get_role("reader") is None
        # Its inline policies went with it: a new role of that name starts without any.
        await store.create_role(role("Reader", "AROA3"))
        found = await store.get_role("reader")
        assert found is not None and found.policies == {}

    async def test_oidc_providers(self, store: Store) -> None:
        record = OidcProviderRecord(
            url="idp.example.com/tenant",
            issuer_url="https://idp.example.com/tenant",
            client_ids=["a", "b"],
            thumbprints=["0" * 40],
            tags={"k": "v"},
            created_at=T0,
        )
        await store.create_oidc_provider(record)
        with pytest.raises(AlreadyExists) as exists:
            await store.create_oidc_provider(record)
        assert exists.value.key == "url"
        assert await store.get_oidc_provider("idp.example.com/tenant") == record
        assert await store.get_oidc_provider("idp.example.com") is None
        changed = replace(record, client_ids=["c"], jwks_url="http://keys.example/jwks")
        await store.update_oidc_provider(changed)
        assert await store.get_oidc_provider("idp.example.com/tenant") == changed
        with pytest.raises(NotFound):
            await store.update_oidc_provider(replace(record, url="nowhere"))
        await store.create_oidc_provider(replace(record, url="a.example"))
        assert [p.url for p in await store.list_oidc_providers()] == ["a.example", "idp.example.com/tenant"]
        assert await store.delete_oidc_provider("a.example") is True
        assert await store.delete_oidc_provider("a.example") is False
        assert [p.url for p in await store.list_oidc_providers()] == ["idp.example.com/tenant"]

    async def test_saml_providers(self, store: Store) -> None:
        from gateway.storage.base import SamlProviderRecord

        record = SamlProviderRecord(name="corp", metadata="<md/>", tags={"k": "v"}, created_at=T0, updated_at=T0)
        await store.create_saml_provider(record)
        with pytest.raises(AlreadyExists) as exists:
            await store.create_saml_provider(record)
        assert exists.value.key == "name"
        assert await store.get_saml_provider("corp") == record
        assert await store.get_saml_provider("CORP") is None
        changed = replace(record, metadata="<md2/>", updated_at=T0 + 1)
        await store.update_saml_provider(changed)
        assert await store.get_saml_provider("corp") == changed
        with pytest.raises(NotFound):
            await store.update_saml_provider(replace(record, name="ghost"))
        await store.create_saml_provider(replace(record, name="another"))
        assert [p.name for p in await store.list_saml_providers()] == ["another", "corp"]
        assert await store.delete_saml_provider("another") is True
        assert await store.delete_saml_provider("another") is False

    async def test_saml_assertions_are_used_once(self, store: Store) -> None:
        assert await store.use_saml_assertion("a1", T0 + 10, T0) is True
        assert await store.use_saml_assertion("a1", T0 + 10, T0 + 1) is False
        assert await store.use_saml_assertion("a2", T0 + 10, T0) is True
        # Once its marker has expired the key is free again (the assertion itself has expired by then).
        assert await store.use_saml_assertion("a1", T0 + 30, T0 + 10) is True
        assert await store.use_saml_assertion("a1", T0 + 30, T0 + 11) is False
        # Concurrent uses of one key: exactly one wins.
        results = await asyncio.gather(*(store.use_saml_assertion("race", T0 + 10, T0) for _ in range(8)))
        assert sorted(results) == [False] * 7 + [True]
        assert await store.purge_expired(T0 + 31) >= 2
        assert await store.use_saml_assertion("a2", T0 + 50, T0 + 31) is True

    # --- identity pools -------------------------------------------------------------------------------

    async def test_identity_pool_round_trip_update_list_delete(self, store: Store) -> None:
        pool = make_identity_pool()
        await store.create_identity_pool(pool)
        assert await store.get_identity_pool(ID_POOL) == pool
        assert await store.get_identity_pool("us-east-1:00000000-0000-0000-0000-000000000000") is None
        with pytest.raises(AlreadyExists) as raised:
            await store.create_identity_pool(make_identity_pool(name="impostor"))
        assert raised.value.key == "id"
        updated = await store.update_identity_pool(replace(pool, name="renamed", settings={"AllowClassicFlow": True}))
        assert updated.version == 1 and await store.get_identity_pool(ID_POOL) == updated
        with pytest.raises(VersionConflict):
            await store.update_identity_pool(replace(pool, name="stale"))
        with pytest.raises(NotFound):
            await store.update_identity_pool(make_identity_pool("us-east-1:ffffffff-0000-0000-0000-000000000000"))
        others = [f"us-east-1:{i}0000000-0000-0000-0000-000000000000" for i in range(1, 4)]
        for other in others:
            await store.create_identity_pool(make_identity_pool(other))
        first = await store.list_identity_pools(None, 2)
        second = await store.list_identity_pools(first.next_token, 2)
        assert [p.id for p in first.items + second.items] == sorted([ID_POOL, *others])
        assert second.next_token is None
        assert await store.delete_identity_pool(ID_POOL) is True
        assert await store.get_identity_pool(ID_POOL) is None
        assert await store.delete_identity_pool(ID_POOL) is False

    async def test_resolve_identity_maps_one_login_to_one_identity(self, store: Store) -> None:
        await store.create_identity_pool(make_identity_pool())
        alice = IdentityLogin("idp.example/pool", "alice")
        first = await store.resolve_identity(make_identity("us-east-1:a1", [alice]))
        assert (first.id, first.logins, first.disabled) == ("us-east-1:a1", [alice], False)
        again = await store.resolve_identity(make_identity("us-east-1:a2", [alice]))
        assert again.id == "us-east-1:a1"
        assert await store.get_identity("us-east-1:a2") is None
        found = await store.find_identity_by_login(ID_POOL, alice)
        assert found is not None and found.id == "us-east-1:a1"
        assert await store.find_identity_by_login(ID_POOL, IdentityLogin("idp.example/pool", "bob")) is None

    async def test_resolve_identity_links_new_logins_and_refuses_two_owners(self, store: Store) -> None:
        await store.create_identity_pool(make_identity_pool())
        alice, google, bob = (IdentityLogin("p", "alice"), IdentityLogin("g", "123"), IdentityLogin("p", "bob"))
        await store.resolve_identity(make_identity("us-east-1:a1", [alice]))
        linked = await store.resolve_identity(make_identity("us-east-1:x", [alice, google]))
        assert linked.id == "us-east-1:a1" and linked.logins == [google, alice]  # ordered by provider
        await store.resolve_identity(make_identity("us-east-1:b1", [bob]))
        with pytest.raises(AlreadyExists) as raised:
            await store.resolve_identity(make_identity("us-east-1:y", [alice, bob]))
        assert raised.value.key == "login"
        assert await store.get_identity("us-east-1:y") is None
        b1 = await store.get_identity("us-east-1:b1")
        assert b1 is not None and b1.logins == [bob]

    async def test_resolve_identity_concurrent_first_logins_agree(self, store: Store) -> None:
        await store.create_identity_pool(make_identity_pool())
        login = IdentityLogin("p", "carol")
        results = await outcomes(
            [store.resolve_identity(make_identity(f"us-east-1:c{i}", [login])) for i in range(RACERS)]
        )
        ids = {r.id for r in results if isinstance(r, IdentityRecord)}
        assert len(ids) == 1
        assert len((await store.list_identities(ID_POOL, None, 60)).items) == 1

    async def test_guests_are_separate_identities(self, store: Store) -> None:
        await store.create_identity_pool(make_identity_pool())
        a = await store.resolve_identity(make_identity("us-east-1:g1", []))
        b = await store.resolve_identity(make_identity("us-east-1:g2", []))
        assert (a.id, b.id) == ("us-east-1:g1", "us-east-1:g2") and a.logins == []
        with pytest.raises(NotFound):
            await store.resolve_identity(make_identity("us-east-1:g3", [], pool_id="us-east-1:missing"))

    async def test_link_unlink_and_disable(self, store: Store) -> None:
        await store.create_identity_pool(make_identity_pool())
        alice, google, bob = (IdentityLogin("p", "alice"), IdentityLogin("g", "1"), IdentityLogin("p", "bob"))
        await store.resolve_identity(make_identity("us-east-1:a1", [alice]))
        await store.resolve_identity(make_identity("us-east-1:b1", [bob]))
        linked = await store.link_logins(ID_POOL, "us-east-1:a1", [google], T0 + 5)
        assert linked.logins == [google, alice] and linked.updated_at == T0 + 5
        with pytest.raises(AlreadyExists):
            await store.link_logins(ID_POOL, "us-east-1:a1", [bob], T0 + 6)
        with pytest.raises(NotFound):
            await store.link_logins(ID_POOL, "us-east-1:nobody", [IdentityLogin("p", "z")], T0)
        with pytest.raises(NotFound):
            await store.link_logins("us-east-1:other", "us-east-1:a1", [IdentityLogin("p", "z")], T0)
        after = await store.unlink_logins(ID_POOL, "us-east-1:a1", [google, bob], T0 + 7)
        assert after.logins == [alice] and after.disabled is False
        b1 = await store.get_identity("us-east-1:b1")
        assert b1 is not None and b1.logins == [bob]  # another identity's login is not unlinked
        emptied = await store.unlink_logins(ID_POOL, "us-east-1:a1", [alice], T0 + 8)
        assert emptied.logins == [] and emptied.disabled is True
        assert [i.id for i in (await store.list_identities(ID_POOL, None, 60, hide_disabled=True)).items] == [
            "us-east-1:b1"
        ]
        # Inaccessible for good: neither linking nor moving logins to it reopens it, and nothing is written.
        with pytest.raises(NotFound):
            await store.link_logins(ID_POOL, "us-east-1:a1", [alice], T0 + 9)
        with pytest.raises(NotFound):
            await store.move_logins(ID_POOL, [bob], "us-east-1:a1", T0 + 9)
        closed = await store.get_identity("us-east-1:a1")
        assert closed is not None and closed.disabled and closed.logins == [] and closed.updated_at == T0 + 8
        b1 = await store.get_identity("us-east-1:b1")
        assert b1 is not None and b1.logins == [bob]

    async def test_move_login_and_delete_identities(self, store: Store) -> None:
        await store.create_identity_pool(make_identity_pool())
        dev1, dev2 = IdentityLogin("dev", "u1"), IdentityLogin("dev", "u2")
        await store.resolve_identity(make_identity("us-east-1:d1", [dev1]))
        await store.resolve_identity(make_identity("us-east-1:d2", [dev2]))
        moved = await store.move_logins(ID_POOL, [dev1], "us-east-1:d2", T0 + 3)
        assert moved.logins == [dev1, dev2]
        source = await store.get_identity("us-east-1:d1")
        assert source is not None and source.logins == [] and source.disabled
        with pytest.raises(NotFound):
            await store.move_logins(ID_POOL, [dev1], "us-east-1:gone", T0)
        assert await store.delete_identities(["us-east-1:d1", "us-east-1:gone"]) == ["us-east-1:d1"]
        assert await store.get_identity("us-east-1:d1") is None
        await store.delete_identity_pool(ID_POOL)
        assert await store.get_identity("us-east-1:d2") is None
        assert await store.find_identity_by_login(ID_POOL, dev2) is None

    async def test_list_identities_pages_in_id_order(self, store: Store) -> None:
        await store.create_identity_pool(make_identity_pool())
        ids = [f"us-east-1:{n}" for n in ("c", "a", "d", "b", "e")]
        for identity_id in ids:
            await store.resolve_identity(make_identity(identity_id, [IdentityLogin("p", identity_id)]))
        seen: list[str] = []
        after: str | None = None
        while True:
            page = await store.list_identities(ID_POOL, after, 2)
            seen += [i.id for i in page.items]
            assert all(i.logins for i in page.items)
            if page.next_token is None:
                break
            after = page.next_token
        assert seen == sorted(ids)

    async def test_issuer_signing_keys(self, store: Store) -> None:
        await store.add_issuer_signing_key(make_signing_key("k1", T0, pool_id="identity"))
        await store.add_issuer_signing_key(make_signing_key("k2", T0 + 2, pool_id="identity"))
        await store.add_issuer_signing_key(make_signing_key("x1", T0, pool_id="other"))
        keys = await store.list_issuer_signing_keys("identity")
        assert [(k.kid, k.active, k.retired_at) for k in keys] == [("k2", True, None), ("k1", False, T0 + 2)]
        with pytest.raises(AlreadyExists):
            await store.add_issuer_signing_key(make_signing_key("k2", T0 + 3, pool_id="identity"))
        await store.delete_issuer_signing_key("identity", "k1")
        assert [k.kid for k in await store.list_issuer_signing_keys("identity")] == ["k2"]
        assert [k.kid for k in await store.list_issuer_signing_keys("other")] == ["x1"]
        assert await store.list_signing_keys("identity") == []

    # --- the OAuth 2.0 provider's records -----------------------------------------------------------

    async def test_oauth_record_with_its_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        alice = OAuthRecord("sso", "s1", POOL, "client-1", "alice", {"auth_time": 1}, T0 + 300)
        gone = OAuthRecord("sso", "s2", POOL, "client-1", "ghost", {}, T0 + 300)
        await store.put_oauth_record(alice)
        await store.put_oauth_record(gone)
        assert await store.get_oauth_record_with_user("sso", "s1") == (alice, await store.get_user(POOL, "alice"))
        assert await store.get_oauth_record_with_user("sso", "s2") == (gone, None)
        assert await store.get_oauth_record_with_user("sso", "missing") is None
        assert await store.get_oauth_record_with_user("code", "s1") is None

    async def test_timestamps_returned_by_an_update_are_floats_as_read(self, store: Store) -> None:
        """A record an update returns is the record a read returns, timestamps floats (base.py's types) even when
        whole seconds: SQLite keeps a whole-number REAL as an integer on disk, and hands it back so from an
        UPDATE's RETURNING."""

        def seconds(*values: float | None) -> list[str]:
            return [type(value).__name__ for value in values]

        await store.create_pool(make_pool())
        await store.put_oauth_record(OAuthRecord("code", "h-1", POOL, "client-1", "alice", {}, T0 + 60))
        for moment in (T0 + 1, T0 + 2):  # the first use, then a replay
            used = await store.use_oauth_record("code", "h-1", moment)
            assert used is not None
            assert seconds(used[0].expires_at, used[0].used_at) == ["float", "float"]
        await store.create_user_import_job(make_import_job("job-1", started_at=T0, heartbeat_at=T0))
        job = await store.update_user_import_job(POOL, "job-1", statuses=["Created"], changes={"completed_at": T0})
        assert job is not None and job == await store.get_user_import_job(POOL, "job-1")
        times = (job.created_at, job.url_expires_at, job.started_at, job.completed_at, job.heartbeat_at)
        assert seconds(*times) == ["float"] * 5
        await store.create_cimd_policy(make_cimd_policy("policy-1"))
        policy = await store.get_cimd_policy(POOL, "policy-1")
        assert policy is not None
        updated = await store.update_cimd_policy(replace(policy, name="renamed", updated_at=T0 + 5))
        assert updated is not None and seconds(updated.created_at, updated.updated_at) == ["float", "float"]

    async def test_oauth_records_get_take_and_use_once(self, store: Store) -> None:
        await store.create_pool(make_pool())
        record = OAuthRecord("code", "h1", POOL, "client-1", "alice", {"scopes": ["openid"]}, T0 + 300)
        await store.put_oauth_record(record)
        with pytest.raises(AlreadyExists):
            await store.put_oauth_record(record)
        with pytest.raises(NotFound):
            await store.put_oauth_record(replace(record, key_hash="h2", pool_id="us-east-1_Missing"))
        assert await store.get_oauth_record("code", "h1") == record
        assert await store.get_oauth_record("sso", "h1") is None  # the kind is part of the key
        assert await store.oauth_record_expiry("code", "h1") == T0 + 300
        assert await store.oauth_record_expiry("sso", "h1") is None

        results = await outcomes([store.use_oauth_record("code", "h1", T0 + i) for i in range(RACERS)])
        firsts = [r for r in results if isinstance(r, tuple) and r[1]]
        assert len(firsts) == 1 and all(isinstance(r, tuple) for r in results)
        stored = await store.get_oauth_record("code", "h1")
        assert stored is not None and stored.replayed and stored.used_at == firsts[0][0].used_at
        assert await store.use_oauth_record("code", "missing", T0) is None

        taken = await outcomes([store.take_oauth_record("code", "h1") for _ in range(RACERS)])
        assert len([t for t in taken if isinstance(t, OAuthRecord)]) == 1
        assert await store.get_oauth_record("code", "h1") is None
        assert await store.oauth_record_expiry("code", "h1") is None

    async def test_code_burnt_once_and_purged_after_its_expiry(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        # Concurrent burns of one code: exactly one stores the marker.
        results = await outcomes([store.burn_code(UsedCodeRecord("c1", None, T0 + 300)) for _ in range(RACERS)])
        assert all(isinstance(r, bool) for r in results)
        assert results.count(True) == 1
        assert await store.get_used_code("c1") == UsedCodeRecord("c1", None, T0 + 300)
        assert await store.get_used_code("missing") is None
        # A burnt code starts no family afterwards.
        assert await store.start_code_family("c1", make_family("fam-1", "alice"), None) is False
        assert await store.get_token_family("fam-1") is None
        # Markers go with the purge once their code has expired; one whose code is still good stays.
        assert await store.burn_code(UsedCodeRecord("c2", None, T0 + 600)) is True
        assert await store.purge_expired(T0 + 301) >= 1
        assert await store.get_used_code("c1") is None
        assert await store.get_used_code("c2") == UsedCodeRecord("c2", None, T0 + 600)

    async def test_code_family_started_once_and_never_after_a_marker(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        # Concurrent redemptions of one code name one family: exactly one starts it, with its refresh token.
        racers = []
        for i in range(RACERS):
            family = make_family("fam-1", "alice", scopes=["openid"])
            racers.append(store.start_code_family("c1", family, make_refresh(f"r-{i}", family)))
        results = await outcomes(racers)
        assert all(isinstance(r, bool) for r in results)
        firsts = [i for i, r in enumerate(results) if r is True]
        assert len(firsts) == 1
        assert await store.get_token_family("fam-1") == make_family("fam-1", "alice", scopes=["openid"])
        for i in range(RACERS):
            found = await store.get_refresh_token(f"r-{i}")
            assert (found is not None) == (i == firsts[0])
        # No marker row is written: the family is the code's marker.
        assert await store.get_used_code("c1") is None

        # A code burnt by a failed redemption starts nothing afterwards.
        assert await store.burn_code(UsedCodeRecord("c2", None, T0 + 300)) is True
        assert await store.start_code_family("c2", make_family("fam-2", "alice"), None) is False
        assert await store.get_token_family("fam-2") is None
        # A revoked family still uses its code up.
        assert await store.start_code_family("c3", make_family("fam-3", "alice"), None) is True
        assert await store.revoke_token_family("fam-3") is True
        assert await store.start_code_family("c3", make_family("fam-3", "alice"), None) is False

        # A failure inside the transaction leaves the code unused and nothing stored.
        with pytest.raises(NotFound):
            await store.start_code_family("c4", make_family("fam-4", "alice", pool_id="us-east-1_Missing"), None)
        assert await store.get_token_family("fam-4") is None
        family = make_family("fam-5", "alice")
        taken = make_refresh(f"r-{firsts[0]}", family)  # the winner's refresh token above: its hash is taken
        with pytest.raises(AlreadyExists):
            await store.start_code_family("c5", family, taken)
        assert await store.get_token_family("fam-5") is None
        assert await store.start_code_family("c5", family, make_refresh("r-5", family)) is True

    async def test_oauth_records_of_a_user_are_deleted_by_kind_and_purged(self, store: Store) -> None:
        await store.create_pool(make_pool())
        for i, (kind, user) in enumerate([("sso", "alice"), ("sso", "alice"), ("sso", "bob"), ("code", "alice")]):
            await store.put_oauth_record(OAuthRecord(kind, f"k{i}", POOL, "c", user, {}, T0 + 10 * i))
        assert await store.delete_oauth_records(POOL, "alice", "sso") == 2
        assert await store.get_oauth_record("sso", "k2") is not None
        assert await store.get_oauth_record("code", "k3") is not None
        assert await store.purge_expired(T0 + 25) >= 1  # k2 (expires T0+20) goes, k3 (T0+30) stays
        assert await store.get_oauth_record("sso", "k2") is None
        assert await store.get_oauth_record("code", "k3") is not None

    async def test_domains_are_unique_and_belong_to_a_pool(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        domain = DomainRecord("myapp", POOL, {}, T0)
        await store.create_domain(domain)
        await store.create_domain(DomainRecord("auth.example.com", POOL, {"CertificateArn": "arn:x"}, T0))
        with pytest.raises(AlreadyExists) as taken:
            await store.create_domain(DomainRecord("myapp", OTHER_POOL, {}, T0))
        assert taken.value.key == "domain"
        with pytest.raises(NotFound):
            await store.create_domain(DomainRecord("nopool", "us-east-1_Missing", {}, T0))
        assert await store.get_domain("myapp") == domain
        assert await store.get_domain("MYAPP") is None  # pinned: exact look-up
        assert [d.domain for d in await store.list_pool_domains(POOL)] == ["auth.example.com", "myapp"]
        await store.update_domain(DomainRecord("auth.example.com", POOL, {"CertificateArn": "arn:y"}, T0))
        updated = await store.get_domain("auth.example.com")
        assert updated is not None and updated.settings == {"CertificateArn": "arn:y"}
        with pytest.raises(NotFound):
            await store.update_domain(DomainRecord("nothere", POOL, {}, T0))
        assert await store.delete_domain("myapp") is True
        assert await store.delete_domain("myapp") is False
        await store.delete_pool(POOL)
        assert await store.get_domain("auth.example.com") is None

    async def test_resource_servers_crud_and_pages(self, store: Store) -> None:
        await store.create_pool(make_pool())
        scopes = [{"ScopeName": "read", "ScopeDescription": "Read"}]
        for identifier in ("https://api.b", "https://api.a", "https://api.c"):
            await store.create_resource_server(ResourceServerRecord(POOL, identifier, "api", scopes, T0, T0))
        with pytest.raises(AlreadyExists) as taken:
            await store.create_resource_server(ResourceServerRecord(POOL, "https://api.a", "x", [], T0, T0))
        assert taken.value.key == "identifier"
        first = await store.list_resource_servers(POOL, None, 2)
        assert [r.identifier for r in first.items] == ["https://api.a", "https://api.b"]
        assert first.next_token == "https://api.b"
        rest = await store.list_resource_servers(POOL, first.next_token, 2)
        assert [r.identifier for r in rest.items] == ["https://api.c"] and rest.next_token is None
        await store.update_resource_server(ResourceServerRecord(POOL, "https://api.a", "renamed", [], T0, T0 + 1))
        got = await store.get_resource_server(POOL, "https://api.a")
        assert got is not None and (got.name, got.scopes, got.updated_at) == ("renamed", [], T0 + 1)
        with pytest.raises(NotFound):
            await store.update_resource_server(ResourceServerRecord(POOL, "https://none", "x", [], T0, T0))
        assert await store.delete_resource_server(POOL, "https://api.a") is True
        assert await store.delete_resource_server(POOL, "https://api.a") is False
        assert await store.get_resource_server(POOL, "https://api.a") is None

    async def test_ui_customizations_upsert_per_pool_and_client(self, store: Store) -> None:
        await store.create_pool(make_pool())
        pool_wide = UICustomizationRecord(POOL, "ALL", ".banner{}", None, None, T0, T0)
        await store.put_ui_customization(pool_wide)
        await store.put_ui_customization(UICustomizationRecord(POOL, "client-1", None, "aGk=", "image/png", T0, T0))
        assert await store.get_ui_customization(POOL, "ALL") == pool_wide
        await store.put_ui_customization(
            UICustomizationRecord(POOL, "ALL", ".x{}", "aGk=", "image/png", T0 + 5, T0 + 5)
        )
        replaced = await store.get_ui_customization(POOL, "ALL")
        assert replaced is not None and (replaced.css, replaced.image) == (".x{}", "aGk=")
        assert (replaced.created_at, replaced.updated_at) == (T0, T0 + 5)  # the first creation time is kept
        with pytest.raises(NotFound):
            await store.put_ui_customization(UICustomizationRecord("us-east-1_Missing", "ALL", "", None, None, T0, T0))
        assert await store.delete_ui_customization(POOL, "client-1") is True
        assert await store.delete_ui_customization(POOL, "client-1") is False
        assert await store.get_ui_customization(POOL, "client-1") is None

    # --- passkeys -------------------------------------------------------------------------------------

    @staticmethod
    def _passkey(credential_id: str, username_key: str, created_at: float = T0) -> WebAuthnCredentialRecord:
        return WebAuthnCredentialRecord(
            POOL,
            credential_id,
            username_key,
            "pQECAyYgASFY",
            0,
            "My key",
            "example.com",
            "platform",
            ["internal"],
            created_at,
        )

    async def test_webauthn_credentials_round_trip_and_belong_to_their_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("ana"))
        await store.create_user(make_user("bo"))
        first, second = self._passkey("cred-B", "ana", T0), self._passkey("cred-A", "ana", T0 + 1)
        await store.add_webauthn_credential(first)
        await store.add_webauthn_credential(second)
        await store.add_webauthn_credential(self._passkey("cred-C", "bo"))
        assert await store.get_webauthn_credential(POOL, "cred-B") == first
        assert await store.get_webauthn_credential(POOL, "cred-b") is None  # pinned: exact look-up
        assert await store.get_webauthn_credential(OTHER_POOL, "cred-B") is None
        assert await store.list_webauthn_credentials(POOL, "ana") == [first, second]  # oldest first
        with pytest.raises(AlreadyExists) as raised:
            await store.add_webauthn_credential(self._passkey("cred-B", "bo"))
        assert raised.value.key == "id"
        with pytest.raises(NotFound):
            await store.add_webauthn_credential(self._passkey("cred-D", "nobody"))
        # Another user cannot delete it; its owner can, once.
        assert not await store.delete_webauthn_credential(POOL, "bo", "cred-B")
        assert await store.delete_webauthn_credential(POOL, "ana", "cred-B")
        assert not await store.delete_webauthn_credential(POOL, "ana", "cred-B")
        assert [c.credential_id for c in await store.list_webauthn_credentials(POOL, "ana")] == ["cred-A"]
        # Deleting the user takes their passkeys.
        await store.delete_user(POOL, "ana")
        assert await store.get_webauthn_credential(POOL, "cred-A") is None
        assert [c.credential_id for c in await store.list_webauthn_credentials(POOL, "bo")] == ["cred-C"]

    async def test_webauthn_sign_count_moves_once_under_racing_writers(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("ana"))
        await store.add_webauthn_credential(self._passkey("cred", "ana"))
        results = await outcomes([store.update_webauthn_sign_count(POOL, "cred", 0, 5) for _ in range(RACERS)])
        assert results.count(True) == 1 and results.count(False) == RACERS - 1
        assert not await store.update_webauthn_sign_count(POOL, "cred", 0, 6)
        assert await store.update_webauthn_sign_count(POOL, "cred", 5, 6)
        stored = await store.get_webauthn_credential(POOL, "cred")
        assert stored is not None and stored.sign_count == 6

    # --- devices --------------------------------------------------------------------------------------

    async def test_device_round_trip_and_update(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        device = make_device("us-east-1_0d1e", "alice")
        await store.create_device(device)
        assert await store.get_device(POOL, "us-east-1_0d1e") == device
        assert await store.get_device(POOL, "us-east-1_ffff") is None
        changed = replace(
            device, name="laptop", remembered=True, updated_at=T0 + 5, last_authenticated_at=T0 + 5, last_ip="::1"
        )
        await store.update_device(changed)
        assert await store.get_device(POOL, "us-east-1_0d1e") == changed
        with pytest.raises(NotFound):
            await store.update_device(make_device("us-east-1_ffff", "alice"))

    async def test_touch_device_and_set_device_remembered_write_only_their_fields(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        device = make_device("us-east-1_0d1e", "alice", last_ip="10.0.0.1")
        await store.create_device(device)
        assert await store.touch_device(POOL, "us-east-1_0d1e", T0 + 5, "::1") is True
        touched = replace(device, last_authenticated_at=T0 + 5, last_ip="::1")
        assert await store.get_device(POOL, "us-east-1_0d1e") == touched
        assert await store.touch_device(POOL, "us-east-1_0d1e", T0 + 6, None) is True  # the address stays
        touched = replace(touched, last_authenticated_at=T0 + 6)
        assert await store.get_device(POOL, "us-east-1_0d1e") == touched
        assert await store.set_device_remembered(POOL, "us-east-1_0d1e", True, T0 + 7) is True
        assert await store.get_device(POOL, "us-east-1_0d1e") == replace(touched, remembered=True, updated_at=T0 + 7)
        assert await store.touch_device(POOL, "us-east-1_ffff", T0, None) is False
        assert await store.set_device_remembered(POOL, "us-east-1_ffff", True, T0) is False
        assert await store.get_device(POOL, "us-east-1_ffff") is None

    async def test_concurrent_touches_keep_a_status_set_meanwhile(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_device(make_device("us-east-1_0d1e", "alice", remembered=True))
        calls: list[Awaitable[bool]] = [
            store.touch_device(POOL, "us-east-1_0d1e", T0 + i, "::1") for i in range(RACERS)
        ]
        calls.insert(RACERS // 2, store.set_device_remembered(POOL, "us-east-1_0d1e", False, T0 + 1))
        assert await outcomes(calls) == [True] * (RACERS + 1)
        stored = await store.get_device(POOL, "us-east-1_0d1e")
        assert stored is not None and stored.remembered is False

    async def test_device_keys_are_unique_and_need_a_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_user(make_user("bob"))
        await store.create_device(make_device("us-east-1_0a", "alice"))
        with pytest.raises(AlreadyExists) as taken:
            await store.create_device(make_device("us-east-1_0a", "bob"))
        assert taken.value.key == "device_key"
        assert (await store.get_device(POOL, "us-east-1_0a")) == make_device("us-east-1_0a", "alice")
        with pytest.raises(NotFound):
            await store.create_device(make_device("us-east-1_0b", "nobody"))
        assert await store.get_device(POOL, "us-east-1_0b") is None

    async def test_concurrent_creates_of_one_device_key_give_one(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        results = await outcomes(
            [store.create_device(make_device("us-east-1_0c", "alice", name=f"n{i}")) for i in range(RACERS)]
        )
        assert sum(r is None for r in results) == 1
        assert all(r is None or isinstance(r, AlreadyExists) for r in results)

    async def test_list_devices_pages_one_users_devices_in_key_order(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_user(make_user("bob"))
        for key in ("us-east-1_03", "us-east-1_01", "us-east-1_02"):
            await store.create_device(make_device(key, "alice"))
        await store.create_device(make_device("us-east-1_00", "bob"))
        first = await store.list_devices(POOL, "alice", None, 2)
        assert [d.device_key for d in first.items] == ["us-east-1_01", "us-east-1_02"]
        assert first.next_token == "us-east-1_02"
        second = await store.list_devices(POOL, "alice", first.next_token, 2)
        assert [d.device_key for d in second.items] == ["us-east-1_03"] and second.next_token is None
        assert (await store.list_devices(POOL, "carol", None, 10)).items == []

    async def test_delete_device_and_deleting_the_user_drops_devices(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_user(make_user("bob"))
        await store.create_device(make_device("us-east-1_a1", "alice"))
        await store.create_device(make_device("us-east-1_a2", "alice"))
        await store.create_device(make_device("us-east-1_b1", "bob"))
        assert await store.delete_device(POOL, "us-east-1_a1") is True
        assert await store.delete_device(POOL, "us-east-1_a1") is False
        assert await store.delete_user(POOL, "alice") is True
        assert await store.get_device(POOL, "us-east-1_a2") is None
        assert (await store.list_devices(POOL, "alice", None, 10)).items == []
        assert await store.get_device(POOL, "us-east-1_b1") is not None
        assert await store.delete_pool(POOL) is True
        assert await store.get_device(POOL, "us-east-1_b1") is None

    async def test_a_forgotten_device_key_is_never_taken_again(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_user(make_user("bob"))
        await store.create_device(make_device("us-east-1_f1", "alice"))
        await store.create_device(make_device("us-east-1_f2", "alice"))
        assert await store.forget_device(POOL, "us-east-1_f1", T0 + 1) is True
        assert await store.get_device(POOL, "us-east-1_f1") is None
        assert [d.device_key for d in (await store.list_devices(POOL, "alice", None, 10)).items] == ["us-east-1_f2"]
        for owner in ("alice", "bob"):
            with pytest.raises(AlreadyExists) as forgotten:
                await store.create_device(make_device("us-east-1_f1", owner))
            assert forgotten.value.key == "forgotten"
        assert await store.get_device(POOL, "us-east-1_f1") is None
        # Nothing to forget: nothing written, and the key stays free.
        assert await store.forget_device(POOL, "us-east-1_f1", T0 + 2) is False
        assert await store.forget_device(POOL, "us-east-1_f9", T0 + 2) is False
        await store.create_device(make_device("us-east-1_f9", "alice"))
        # The forgotten keys go with their user.
        assert await store.delete_user(POOL, "alice") is True
        await store.create_user(make_user("alice"))
        await store.create_device(make_device("us-east-1_f1", "alice"))
        assert await store.get_device(POOL, "us-east-1_f1") == make_device("us-east-1_f1", "alice")

    async def test_a_family_keeps_its_device_and_a_refresh_reads_whether_it_is_confirmed(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_user(make_user("bob"))
        await store.create_device(make_device("us-east-1_d1", "alice"))
        await store.create_device(make_device("us-east-1_b1", "bob"))
        # Written with the family, or bound afterwards; read back by every family read.
        written = make_family("jti-written", "alice", device_key="us-east-1_d1")
        await store.create_token_family(written, make_refresh("rt-jti-written", written))
        assert await store.get_token_family("jti-written") == written
        for origin, key in (("jti-bound", "us-east-1_d1"), ("jti-new", "us-east-1_new"), ("jti-bobs", "us-east-1_b1")):
            family = make_family(origin, "alice")
            await store.create_token_family(family, make_refresh(f"rt-{origin}", family))
            await store.bind_token_family_device(origin, key)
        assert (await store.get_token_family("jti-bound")).device_key == "us-east-1_d1"  # type: ignore[union-attr]
        found = await store.get_token_family_with_user("jti-new")
        assert found is not None and found[0].device_key == "us-east-1_new"
        plain = make_family("jti-plain", "alice")
        await store.create_token_family(plain, make_refresh("rt-jti-plain", plain))
        # device_confirmed: the key names one of the family's user's devices (never another user's).
        confirmed = {}
        for origin in ("jti-written", "jti-bound", "jti-new", "jti-bobs", "jti-plain"):
            read = await store.get_refresh_token_with_user(f"rt-{origin}")
            assert read is not None
            confirmed[origin] = read[1].device_confirmed
        assert confirmed == {
            "jti-written": True,
            "jti-bound": True,
            "jti-new": False,
            "jti-bobs": False,
            "jti-plain": False,
        }
        assert (await store.get_token_family("jti-written")).device_confirmed is False  # type: ignore[union-attr]
        # Binding an unknown family writes nothing and is no error.
        await store.bind_token_family_device("jti-missing", "us-east-1_d1")
        assert await store.get_token_family("jti-missing") is None

    async def test_a_refresh_reads_that_its_familys_device_was_forgotten(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_device(make_device("us-east-1_d1", "alice"))
        await store.create_device(make_device("us-east-1_d2", "alice"))
        families = {"jti-d1": "us-east-1_d1", "jti-d2": "us-east-1_d2", "jti-none": None}
        for origin, key in families.items():
            family = make_family(origin, "alice", device_key=key)
            await store.create_token_family(family, make_refresh(f"rt-{origin}", family))
        assert await store.forget_device(POOL, "us-east-1_d1", T0 + 1) is True
        # A family bound once its device was forgotten (a sign-in that ran alongside the forget) reads it too.
        late = make_family("jti-late", "alice")
        await store.create_token_family(late, make_refresh("rt-jti-late", late))
        await store.bind_token_family_device("jti-late", "us-east-1_d1")
        read = {}
        for origin in ("jti-d1", "jti-late", "jti-d2", "jti-none"):
            found = await store.get_refresh_token_with_user(f"rt-{origin}")
            assert found is not None
            read[origin] = (found[1].device_confirmed, found[1].device_forgotten)
        assert read == {
            "jti-d1": (False, True),
            "jti-late": (False, True),
            "jti-d2": (True, False),
            "jti-none": (False, False),
        }
        # The families themselves stay, unrevoked (their access tokens live out their time), but are no longer
        # among the user's token sessions, and are not counted towards a limit on them.
        assert (await store.get_token_family("jti-d1")).revoked is False  # type: ignore[union-attr]
        sessions = await store.list_token_sessions(POOL, "alice", T0 + 2)
        assert sorted(f.origin_jti for f in sessions) == ["jti-d2", "jti-none"]
        assert await store.evict_token_sessions(POOL, "alice", 2, T0 + 2) == []

    # --- threat protection ------------------------------------------------------------------------------

    async def test_risk_configuration_per_pool_and_client(self, store: Store) -> None:
        await store.create_pool(make_pool())
        assert await store.get_risk_configuration(POOL, None) is None
        pool_level = RiskConfigurationRecord(POOL, None, {"RiskExceptionConfiguration": {"BlockedIPRangeList": []}}, T0)
        await store.put_risk_configuration(pool_level)
        client_level = RiskConfigurationRecord(POOL, "web", {"CompromisedCredentialsRiskConfiguration": {}}, T0 + 1)
        await store.put_risk_configuration(client_level)
        assert await store.get_risk_configuration(POOL, None) == pool_level
        assert await store.get_risk_configuration(POOL, "web") == client_level
        assert await store.get_risk_configuration(POOL, "other") is None
        replaced = replace(pool_level, config={"A": [1, "ü"]}, updated_at=T0 + 2)
        await store.put_risk_configuration(replaced)
        assert await store.get_risk_configuration(POOL, None) == replaced
        with pytest.raises(NotFound):
            await store.put_risk_configuration(RiskConfigurationRecord("us-east-1_Missing", None, {}, T0))
        await store.delete_pool(POOL)
        assert await store.get_risk_configuration(POOL, "web") is None

    async def test_auth_events_page_newest_first_and_go_with_their_user(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_user(make_user("bob"))
        events = [
            AuthEventRecord(POOL, "alice", f"0000-{i:04d}", T0 + i, {"EventType": "SignIn", "n": i}) for i in range(5)
        ]
        for event in events:
            await store.add_auth_event(event)
        await store.add_auth_event(AuthEventRecord(POOL, "bob", "0000-9999", T0, {"EventType": "SignUp"}))
        with pytest.raises(AlreadyExists):
            await store.add_auth_event(events[0])
        with pytest.raises(NotFound):
            await store.add_auth_event(AuthEventRecord(POOL, "nobody", "0001-0000", T0, {}))
        first = await store.list_auth_events(POOL, "alice", None, 2)
        assert [e.event_id for e in first.items] == ["0000-0004", "0000-0003"]
        assert first.items[0] == events[4]
        second = await store.list_auth_events(POOL, "alice", first.next_token, 2)
        assert [e.event_id for e in second.items] == ["0000-0002", "0000-0001"]
        last = await store.list_auth_events(POOL, "alice", second.next_token, 2)
        assert [e.event_id for e in last.items] == ["0000-0000"] and last.next_token is None

        changed = replace(events[1], event={**events[1].event, "EventFeedback": {"FeedbackValue": "Invalid"}})
        assert await store.update_auth_event(changed) is True
        assert await store.get_auth_event(POOL, "0000-0001") == changed
        assert await store.update_auth_event(replace(changed, event_id="0000-7777")) is False
        assert await store.get_auth_event(POOL, "0000-7777") is None

        await store.delete_user(POOL, "alice")
        assert (await store.list_auth_events(POOL, "alice", None, 10)).items == []
        assert await store.get_auth_event(POOL, "0000-0001") is None
        assert [e.event_id for e in (await store.list_auth_events(POOL, "bob", None, 10)).items] == ["0000-9999"]

    # --- federation: identity providers, links, upstream requests, replay markers --------------------------

    async def test_identity_provider_round_trip_and_identifier_lookup(self, store: Store) -> None:
        await store.create_pool(make_pool())
        provider = make_identity_provider("Corp", idp_identifiers=["corp.example", "Corp-1"])
        await store.create_identity_provider(provider)
        assert await store.get_identity_provider(POOL, "Corp") == provider
        assert await store.get_identity_provider(POOL, "corp") is None  # pinned: names are exact
        assert await store.get_identity_provider_by_identifier(POOL, "corp.example") == provider
        assert await store.get_identity_provider_by_identifier(POOL, "nope") is None
        assert await store.get_identity_provider(OTHER_POOL, "Corp") is None

    async def test_identity_provider_unique_name_and_identifiers(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_identity_provider(make_identity_provider("Corp", idp_identifiers=["corp.example"]))
        with pytest.raises(AlreadyExists) as taken:
            await store.create_identity_provider(make_identity_provider("Corp"))
        assert taken.value.key == "name"
        with pytest.raises(AlreadyExists) as clash:
            await store.create_identity_provider(make_identity_provider("Other", idp_identifiers=["corp.example"]))
        assert clash.value.key == "identifier"
        # The failed create wrote nothing.
        assert await store.get_identity_provider(POOL, "Other") is None
        with pytest.raises(NotFound):
            await store.create_identity_provider(make_identity_provider("Corp", pool_id="us-east-1_Missing"))

    async def test_update_identity_provider_rewrites_identifiers_and_checks_version(self, store: Store) -> None:
        await store.create_pool(make_pool())
        provider = make_identity_provider("Corp", idp_identifiers=["a.example"])
        await store.create_identity_provider(provider)
        await store.create_identity_provider(make_identity_provider("Other", idp_identifiers=["b.example"]))
        updated = await store.update_identity_provider(
            replace(provider, idp_identifiers=["c.example"], details={"client_id": "x"}, updated_at=T0 + 5)
        )
        assert updated.version == provider.version + 1
        assert await store.get_identity_provider_by_identifier(POOL, "a.example") is None
        assert (await store.get_identity_provider_by_identifier(POOL, "c.example")) == updated
        with pytest.raises(VersionConflict):
            await store.update_identity_provider(replace(provider, updated_at=T0 + 6))
        with pytest.raises(AlreadyExists) as clash:
            await store.update_identity_provider(replace(updated, idp_identifiers=["b.example"]))
        assert clash.value.key == "identifier"
        assert await store.get_identity_provider(POOL, "Corp") == updated
        with pytest.raises(NotFound):
            await store.update_identity_provider(make_identity_provider("Ghost"))

    async def test_list_and_delete_identity_providers(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        for name in ("Zed", "Alpha", "Mid"):
            await store.create_identity_provider(make_identity_provider(name, idp_identifiers=[f"{name}.id"]))
        first = await store.list_identity_providers(POOL, None, 2)
        assert [p.name for p in first.items] == ["Alpha", "Mid"]
        second = await store.list_identity_providers(POOL, first.next_token, 2)
        assert ([p.name for p in second.items], second.next_token) == (["Zed"], None)
        await store.put_provider_link(ProviderLinkRecord(POOL, "Mid", "Cognito_Subject", "123", "alice", T0))
        assert await store.delete_identity_provider(POOL, "Mid") is True
        assert await store.delete_identity_provider(POOL, "Mid") is False
        assert await store.get_identity_provider_by_identifier(POOL, "Mid.id") is None
        assert await store.get_provider_link(POOL, "Mid", "Cognito_Subject", "123") is None

    async def test_provider_links(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_user(make_user("bob"))
        link = ProviderLinkRecord(POOL, "Google", "Cognito_Subject", "1001", "alice", T0)
        await store.put_provider_link(link)
        await store.put_provider_link(ProviderLinkRecord(POOL, "Corp", "email", "a@corp.example", "alice", T0))
        with pytest.raises(AlreadyExists) as taken:
            await store.put_provider_link(replace(link, username_key="bob"))
        assert taken.value.key == "link"
        with pytest.raises(NotFound):
            await store.put_provider_link(replace(link, attribute_value="2002", username_key="ghost"))
        assert await store.get_provider_link(POOL, "Google", "Cognito_Subject", "1001") == link
        assert [x.provider_name for x in await store.list_provider_links(POOL, "alice")] == ["Corp", "Google"]
        assert await store.list_provider_links(POOL, "bob") == []
        assert await store.delete_provider_link(POOL, "Google", "Cognito_Subject", "1001") == link
        assert await store.delete_provider_link(POOL, "Google", "Cognito_Subject", "1001") is None
        # Deleting the user drops its links.
        await store.delete_user(POOL, "alice")
        assert await store.get_provider_link(POOL, "Corp", "email", "a@corp.example") is None

    async def test_federation_request_is_taken_once(self, store: Store) -> None:
        await store.create_pool(make_pool())
        request = FederationRequestRecord("state-hash-1", POOL, "Google", {"nonce": "n-1"}, T0 + 600)
        await store.put_federation_request(request)
        with pytest.raises(AlreadyExists):
            await store.put_federation_request(request)
        results = await outcomes([store.take_federation_request("state-hash-1") for _ in range(RACERS)])
        assert [r for r in results if r is not None] == [request]
        assert await store.take_federation_request("state-hash-1") is None

    async def test_assertion_marker_has_one_first_use(self, store: Store) -> None:
        results = await outcomes([store.mark_assertion_seen("saml:_abc", T0 + 300) for _ in range(RACERS)])
        assert results.count(True) == 1
        assert results.count(False) == RACERS - 1
        assert await store.mark_assertion_seen("saml:_other", T0 + 300) is True

    async def test_a_long_assertion_id_is_marked_once(self, store: Store) -> None:
        """A SAML assertion's ID is the IdP's to choose: a marker of any length has one first use, and another
        differing only at its end is another marker."""
        key = "saml:sp:" + unrepeated(3000, 0x20000, 6)
        assert await store.mark_assertion_seen(key, T0 + 60) is True
        assert await store.mark_assertion_seen(key, T0 + 60) is False
        assert await store.mark_assertion_seen(key[:-1] + "x", T0 + 60) is True
        assert await store.purge_expired(T0 + 60) == 2
        assert await store.mark_assertion_seen(key, T0 + 120) is True

    async def test_purge_drops_expired_federation_rows(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.put_federation_request(FederationRequestRecord("old", POOL, "Google", {}, T0))
        await store.put_federation_request(FederationRequestRecord("new", POOL, "Google", {}, T0 + 1000))
        await store.mark_assertion_seen("old-assertion", T0)
        assert await store.purge_expired(T0 + 1) >= 2
        assert await store.take_federation_request("old") is None
        assert await store.take_federation_request("new") is not None
        assert await store.mark_assertion_seen("old-assertion", T0 + 500) is True

    # --- terms documents ------------------------------------------------------------------------------

    async def test_terms_round_trip_one_of_each_name_per_client(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        await store.create_client(make_client("client-2"))
        terms = make_terms("t-1", "client-1", links={"cognito:default": "https://example.com/terms"})
        privacy = make_terms("t-2", "client-1", name="privacy-policy")
        await store.create_terms(terms)
        await store.create_terms(privacy)
        assert await store.get_terms(POOL, "t-1") == terms
        assert await store.get_terms(OTHER_POOL, "t-1") is None  # pinned: within its pool
        assert await store.get_terms_by_client(POOL, "client-1", "privacy-policy") == privacy
        assert await store.get_terms_by_client(POOL, "client-2", "terms-of-use") is None
        assert sorted(t.terms_id for t in await store.list_client_terms(POOL, "client-1")) == ["t-1", "t-2"]
        assert await store.list_client_terms(POOL, "client-2") == []
        with pytest.raises(AlreadyExists) as named:
            await store.create_terms(make_terms("t-3", "client-1"))
        assert named.value.args[0] == "name"
        with pytest.raises(AlreadyExists) as taken:
            await store.create_terms(make_terms("t-1", "client-2"))
        assert taken.value.args[0] == "id"
        with pytest.raises(NotFound) as missing:
            await store.create_terms(make_terms("t-4", "no-such-client"))
        assert missing.value.args[0] == "client"
        assert await store.get_terms(POOL, "t-3") is None and await store.get_terms(POOL, "t-4") is None

    async def test_terms_list_in_id_order_by_page(self, store: Store) -> None:
        await store.create_pool(make_pool())
        for number in range(5):
            await store.create_client(make_client(f"client-{number}"))
            await store.create_terms(make_terms(f"t-{4 - number}", f"client-{number}"))
        first = await store.list_terms(POOL, None, 2)
        assert [t.terms_id for t in first] == ["t-0", "t-1"]
        rest = await store.list_terms(POOL, first[-1].terms_id, 10)
        assert [t.terms_id for t in rest] == ["t-2", "t-3", "t-4"]
        assert await store.list_terms(POOL, "t-4", 10) == []
        assert await store.list_terms(OTHER_POOL, None, 10) == []

    async def test_every_listing_refuses_a_limit_below_one(self, store: Store) -> None:
        """A page of no rows, or of "no limit" (SQLite's LIMIT -1), is a caller's error in every listing alike."""
        await store.create_pool(make_pool())
        listings: list[Callable[[int], Awaitable[Any]]] = [
            lambda limit: store.list_pools(None, limit),
            lambda limit: store.list_clients(POOL, None, limit),
            lambda limit: store.list_users(POOL, None, limit),
            lambda limit: store.list_users(POOL, None, limit, where=UserSearch("username", "a", prefix=True)),
            lambda limit: store.list_groups(POOL, None, limit),
            lambda limit: store.list_users_in_group(POOL, "admins", None, limit),
            lambda limit: store.list_resource_servers(POOL, None, limit),
            lambda limit: store.list_devices(POOL, "alice", None, limit),
            lambda limit: store.list_auth_events(POOL, "alice", None, limit),
            lambda limit: store.list_roles(None, limit),
            lambda limit: store.list_identity_pools(None, limit),
            lambda limit: store.list_identities(ID_POOL, None, limit),
            lambda limit: store.list_identity_providers(POOL, None, limit),
            lambda limit: store.list_terms(POOL, None, limit),
            lambda limit: store.list_user_import_jobs(POOL, None, limit),
            lambda limit: store.list_cimd_policies(POOL, None, limit),
            lambda limit: store.list_cimd_documents("policy-1", None, limit),
        ]
        for listing in listings:
            for limit in (0, -1):
                with pytest.raises(ValueError):
                    await listing(limit)

    async def test_terms_update_and_delete(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        terms = make_terms("t-1", "client-1")
        await store.create_terms(terms)
        await store.create_terms(make_terms("t-2", "client-1", name="privacy-policy"))
        changed = replace(
            terms, enforcement="NONE", links={"cognito:english": "https://example.com/en"}, updated_at=T0 + 5
        )
        await store.update_terms(changed)
        assert await store.get_terms(POOL, "t-1") == changed
        # The client's other document already has that name: refused, and nothing changes.
        with pytest.raises(AlreadyExists) as named:
            await store.update_terms(replace(changed, name="privacy-policy", updated_at=T0 + 6))
        assert named.value.args[0] == "name"
        assert await store.get_terms(POOL, "t-1") == changed
        assert await store.delete_terms(OTHER_POOL, "t-1") is False
        assert await store.delete_terms(POOL, "t-1") is True
        assert await store.delete_terms(POOL, "t-1") is False
        with pytest.raises(NotFound) as gone:
            await store.update_terms(changed)
        assert gone.value.args[0] == "terms"

    async def test_terms_go_with_their_client_and_pool(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        await store.create_client(make_client("client-2"))
        await store.create_terms(make_terms("t-1", "client-1"))
        await store.create_terms(make_terms("t-2", "client-2"))
        assert await store.delete_client(POOL, "client-1")
        assert await store.get_terms(POOL, "t-1") is None
        assert [t.terms_id for t in await store.list_terms(POOL, None, 10)] == ["t-2"]
        assert await store.delete_pool(POOL)
        assert await store.get_terms(POOL, "t-2") is None

    # --- managed login branding -----------------------------------------------------------------------

    async def test_managed_login_branding_round_trip_one_per_client(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        await store.create_client(make_client("client-2"))
        logo = {"Category": "FORM_LOGO", "ColorMode": "LIGHT", "Extension": "PNG", "Bytes": "aGk="}
        record = make_branding("b-1", "client-1", settings={"components": {"form": {"borderRadius": 8}}}, assets=[logo])
        await store.create_managed_login_branding(record)
        assert await store.get_managed_login_branding(POOL, "b-1") == record
        assert await store.get_managed_login_branding_by_client(POOL, "client-1") == record
        assert await store.get_managed_login_branding(OTHER_POOL, "b-1") is None  # pinned: within its pool
        assert await store.get_managed_login_branding_by_client(POOL, "client-2") is None
        with pytest.raises(AlreadyExists) as exists:
            await store.create_managed_login_branding(make_branding("b-2", "client-1"))
        assert exists.value.args[0] == "client"
        with pytest.raises(AlreadyExists) as taken:
            await store.create_managed_login_branding(make_branding("b-1", "client-2"))
        assert taken.value.args[0] == "id"
        with pytest.raises(NotFound):
            await store.create_managed_login_branding(make_branding("b-3", "no-such-client"))
        assert await store.get_managed_login_branding_by_client(POOL, "client-2") is None

    async def test_managed_login_branding_update_and_delete(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        record = make_branding("b-1", "client-1", settings={"a": 1})
        await store.create_managed_login_branding(record)
        changed = replace(record, use_cognito_provided_values=True, settings=None, assets=[], updated_at=T0 + 9)
        written = await store.update_managed_login_branding(changed)
        assert written == replace(changed, version=record.version + 1)
        assert await store.get_managed_login_branding(POOL, "b-1") == written
        # A write based on the version before is refused, and changes nothing.
        with pytest.raises(VersionConflict):
            await store.update_managed_login_branding(replace(changed, settings={"lost": True}))
        assert await store.get_managed_login_branding(POOL, "b-1") == written
        with pytest.raises(NotFound):
            await store.update_managed_login_branding(make_branding("b-missing", "client-1"))
        assert await store.delete_managed_login_branding(OTHER_POOL, "b-1") is False
        assert await store.delete_managed_login_branding(POOL, "b-1") is True
        assert await store.delete_managed_login_branding(POOL, "b-1") is False
        assert await store.get_managed_login_branding(POOL, "b-1") is None
        # The client may have a new style once its old one is gone.
        await store.create_managed_login_branding(make_branding("b-2", "client-1"))

    async def test_concurrent_managed_login_branding_updates_one_wins(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        record = make_branding("b-1", "client-1")
        await store.create_managed_login_branding(record)
        results = await asyncio.gather(
            *(store.update_managed_login_branding(replace(record, settings={"n": n})) for n in range(5)),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, ManagedLoginBrandingRecord)]
        assert len(winners) == 1 and all(isinstance(r, VersionConflict) for r in results if r not in winners)
        assert await store.get_managed_login_branding(POOL, "b-1") == winners[0]

    async def test_managed_login_branding_goes_with_its_client_and_pool(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        await store.create_client(make_client("client-2"))
        await store.create_managed_login_branding(make_branding("b-1", "client-1"))
        await store.create_managed_login_branding(make_branding("b-2", "client-2"))
        assert await store.delete_client(POOL, "client-1") is True
        assert await store.get_managed_login_branding(POOL, "b-1") is None
        assert await store.get_managed_login_branding(POOL, "b-2") is not None
        assert await store.delete_pool(POOL) is True
        assert await store.get_managed_login_branding(POOL, "b-2") is None

    # --- user import jobs -------------------------------------------------------------------------------

    async def test_user_import_job_round_trip_and_listing(self, store: Store) -> None:
        await store.create_pool(make_pool())
        jobs = [make_import_job(f"import-{n}", created_at=T0 + n) for n in range(3)]
        for job in jobs:
            await store.create_user_import_job(job)
        assert await store.get_user_import_job(POOL, "import-1") == jobs[1]
        assert await store.get_user_import_job(OTHER_POOL, "import-1") is None
        first = await store.list_user_import_jobs(POOL, None, 2)
        assert first.items == jobs[:2] and first.next_token == jobs[1].list_key
        second = await store.list_user_import_jobs(POOL, first.next_token, 2)
        assert second.items == jobs[2:] and second.next_token is None
        with pytest.raises(AlreadyExists):
            await store.create_user_import_job(jobs[0])
        with pytest.raises(NotFound):
            await store.create_user_import_job(make_import_job("import-x", pool_id=OTHER_POOL))

    async def test_update_user_import_job_is_guarded_by_status(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user_import_job(make_import_job("import-1"))
        assert (
            await store.update_user_import_job(POOL, "import-1", statuses=["Pending"], changes={"status": "x"}) is None
        )
        started = await store.update_user_import_job(
            POOL, "import-1", statuses=["Created"], changes={"status": "Pending", "started_at": T0 + 1}
        )
        assert started is not None and (started.status, started.started_at) == ("Pending", T0 + 1)
        assert await store.get_user_import_job(POOL, "import-1") == started
        assert await store.update_user_import_job(POOL, "missing", statuses=["Created"], changes={}) is None

    async def test_one_user_import_job_runs_per_pool(self, store: Store) -> None:
        await store.create_pool(make_pool())
        for n in range(RACERS):
            await store.create_user_import_job(make_import_job(f"import-{n}", created_at=T0 + n))
        results = await outcomes(
            [
                store.update_user_import_job(POOL, f"import-{n}", statuses=["Created"], changes={"status": "Pending"})
                for n in range(RACERS)
            ]
        )
        winners = [r for r in results if isinstance(r, UserImportJobRecord)]
        refused = [r for r in results if not isinstance(r, UserImportJobRecord)]
        assert len(winners) == 1 and all(isinstance(r, AlreadyExists) and r.key == "running" for r in refused)

    async def test_user_import_upload_replaces_the_file_whole(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user_import_job(make_import_job("import-1"))
        for upload, parts in (("u1", [b"a1", b"a2"]), ("u2", [b"b1"])):
            for seq, data in enumerate(parts):
                await store.add_user_import_chunk(POOL, "import-1", upload, seq, data)
            assert await store.finish_user_import_upload(POOL, "import-1", upload, 4, T0) is True
        job = await store.get_user_import_job(POOL, "import-1")
        assert job is not None and (job.upload_id, job.upload_bytes) == ("u2", 4)
        assert await store.read_user_import_chunk(POOL, "import-1", "u2", 0) == b"b1"
        assert await store.read_user_import_chunk(POOL, "import-1", "u2", 1) is None
        assert await store.read_user_import_chunk(POOL, "import-1", "u1", 0) is None
        # An upload in progress keeps its parts while another finishes, and replaces it when it finishes.
        await store.add_user_import_chunk(POOL, "import-1", "slow", 0, b"s1")
        await store.add_user_import_chunk(POOL, "import-1", "fast", 0, b"f1")
        assert await store.finish_user_import_upload(POOL, "import-1", "fast", 2, T0) is True
        assert await store.read_user_import_chunk(POOL, "import-1", "u2", 0) is None
        assert await store.read_user_import_chunk(POOL, "import-1", "slow", 0) == b"s1"
        await store.add_user_import_chunk(POOL, "import-1", "slow", 1, b"s2")
        assert await store.finish_user_import_upload(POOL, "import-1", "slow", 4, T0) is True
        assert await store.read_user_import_chunk(POOL, "import-1", "fast", 0) is None
        assert await store.read_user_import_chunk(POOL, "import-1", "slow", 1) == b"s2"
        # Past the URL's expiry, or once the job started, an upload is refused and leaves nothing.
        await store.add_user_import_chunk(POOL, "import-1", "u3", 0, b"late")
        assert await store.finish_user_import_upload(POOL, "import-1", "u3", 4, T0 + 7200) is False
        assert await store.read_user_import_chunk(POOL, "import-1", "u3", 0) is None
        await store.drop_user_import_upload(POOL, "import-1", None)
        assert await store.read_user_import_chunk(POOL, "import-1", "slow", 0) is None
        with pytest.raises(NotFound):
            await store.add_user_import_chunk(POOL, "import-missing", "u1", 0, b"x")

    async def test_user_import_jobs_go_with_their_pool(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_user_import_job(make_import_job("import-1"))
        await store.add_user_import_chunk(POOL, "import-1", "u1", 0, b"data")
        assert await store.delete_pool(POOL) is True
        assert await store.get_user_import_job(POOL, "import-1") is None
        assert await store.read_user_import_chunk(POOL, "import-1", "u1", 0) is None

    # --- client ID metadata documents (CIMD) ---------------------------------------------------------------

    async def test_cimd_policies_round_trip_and_page(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_pool(make_pool(OTHER_POOL))
        records = [make_cimd_policy(f"p{i}") for i in range(3)]
        for record in records:
            await store.create_cimd_policy(record)
        await store.create_cimd_policy(make_cimd_policy("q0", OTHER_POOL))
        assert await store.get_cimd_policy(POOL, "p1") == records[1]
        assert await store.get_cimd_policy(OTHER_POOL, "p1") is None  # pinned: within its pool
        with pytest.raises(AlreadyExists):
            await store.create_cimd_policy(make_cimd_policy("p0"))
        with pytest.raises(NotFound):
            await store.create_cimd_policy(make_cimd_policy("z0", "us-east-1_NoSuchPool"))
        first = await store.list_cimd_policies(POOL, None, 2)
        assert [p.policy_id for p in first.items] == ["p0", "p1"] and first.next_token == "p1"
        rest = await store.list_cimd_policies(POOL, first.next_token, 2)
        assert [p.policy_id for p in rest.items] == ["p2"] and rest.next_token is None
        assert [p.policy_id for p in await store.cimd_policies_for_matching(POOL)] == ["p0", "p1", "p2"]
        assert [p.policy_id for p in await store.cimd_policies_for_matching(None)] == ["p0", "p1", "p2", "q0"]
        changed = replace(records[0], name="renamed", url_patterns=["https://x.example.com/*"], updated_at=T0 + 5)
        assert await store.update_cimd_policy(changed) == changed
        assert await store.get_cimd_policy(POOL, "p0") == changed
        assert await store.update_cimd_policy(replace(changed, pool_id=OTHER_POOL)) is None
        assert await store.delete_cimd_policy(OTHER_POOL, "p0") is False
        assert await store.delete_cimd_policy(POOL, "p0") is True
        assert await store.get_cimd_policy(POOL, "p0") is None

    async def test_cimd_documents_cache(self, store: Store) -> None:
        await store.create_pool(make_pool())
        await store.create_cimd_policy(make_cimd_policy("p0"))
        one = CimdDocumentRecord("p0", "https://a.example.com/c", {"client_id": "https://a.example.com/c"}, T0, T0 + 9)
        two = CimdDocumentRecord("p0", "https://b.example.com/c", {"client_id": "https://b.example.com/c"}, T0, T0 + 9)
        await store.put_cimd_document(one)
        await store.put_cimd_document(two)
        newer = replace(one, document={"client_id": one.url, "client_name": "n"}, cached_at=T0 + 1, expires_at=T0 + 99)
        await store.put_cimd_document(newer)  # a refresh replaces
        assert await store.get_cimd_document("p0", one.url) == newer
        page = await store.list_cimd_documents("p0", None, 1)
        assert page.items == [newer] and page.next_token == one.url
        assert (await store.list_cimd_documents("p0", page.next_token, 1)).items == [two]
        with pytest.raises(NotFound):
            await store.put_cimd_document(replace(one, policy_id="nosuchpolicy"))
        assert await store.delete_cimd_documents("p0", one.url) == 1
        assert await store.delete_cimd_documents("p0", one.url) == 0
        assert await store.get_cimd_document("p0", one.url) is None
        await store.put_cimd_document(one)
        assert await store.delete_cimd_documents("p0") == 2
        await store.put_cimd_document(one)
        assert await store.delete_pool(POOL) is True  # the pool's policies and their documents go with it
        assert await store.get_cimd_document("p0", one.url) is None

    async def test_expired_cimd_documents_are_purged(self, store: Store) -> None:
        """A document past its expiry is fetched again on next use, so it is purged like other expired rows:
        URLs a wildcard admits are many, and each one fetched once must not stay in the store for good."""
        await store.create_pool(make_pool())
        await store.create_cimd_policy(make_cimd_policy("p0"))
        old = CimdDocumentRecord("p0", "https://a.example.com/c", {"client_id": "https://a.example.com/c"}, T0, T0 + 9)
        new = CimdDocumentRecord("p0", "https://b.example.com/c", {"client_id": "https://b.example.com/c"}, T0, T0 + 99)
        await store.put_cimd_document(old)
        await store.put_cimd_document(new)
        assert await store.purge_expired(T0 + 9) >= 1
        assert await store.get_cimd_document("p0", old.url) is None
        assert await store.get_cimd_document("p0", new.url) == new

    # --- what every backend answers alike: conflicts, expiry at the instant, races -------------------

    async def test_each_taken_key_and_missing_parent_names_itself(self, store: Store) -> None:
        """The AlreadyExists key and the NotFound name each create raises (services tell them apart: a taken
        username from a taken alias, a client gone from a pool gone), for the second writer of a key and for a
        record whose parent does not exist. None of those writes leaves a row."""
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        await store.create_user(make_user("alice", aliases={"email": "alice@example.com"}))
        await store.create_identity_pool(make_identity_pool())
        link = ProviderLinkRecord(POOL, "Google", "Cognito_Subject", "g-1", "alice", T0)
        event = AuthEventRecord(POOL, "alice", "event-1", T0, {})
        role = RoleRecord("Admin", "admin", "AROA1", "/", "{}", None, 3600, {}, T0)
        oidc = OidcProviderRecord("issuer.example", "https://issuer.example", [], [], {}, T0)
        # (key, create, what is created first (None: made above), what then finds the key taken)
        creates: list[tuple[str, Callable[[Any], Awaitable[Any]], Any, Any]] = [
            ("id", store.create_pool, None, make_pool()),
            ("id", store.create_client, None, make_client("client-1")),
            ("username", store.create_user, None, make_user("alice")),
            ("alias:email", store.create_user, None, make_user("bob", aliases={"email": "alice@example.com"})),
            ("name", store.create_group, make_group("admins"), make_group("admins")),
            ("domain", store.create_domain, DomainRecord("auth-1", POOL, {}, T0), DomainRecord("auth-1", POOL, {}, T0)),
            (
                "identifier",
                store.create_resource_server,
                ResourceServerRecord(POOL, "api", "api", [], T0, T0),
                ResourceServerRecord(POOL, "api", "other", [], T0, T0),
            ),
            ("id", store.add_signing_key, make_signing_key("kid-1", T0), make_signing_key("kid-1", T0 + 1)),
            (
                "id",
                store.add_issuer_signing_key,
                make_signing_key("kid-1", T0, pool_id="key-set"),
                make_signing_key("kid-1", T0, pool_id="key-set"),
            ),
            (
                "id",
                store.put_oauth_record,
                OAuthRecord("code", "h-1", POOL, "client-1", "alice", {}, T0),
                OAuthRecord("code", "h-1", POOL, "client-2", "bob", {}, T0),
            ),
            ("id", store.add_webauthn_credential, self._passkey("cred-1", "alice"), self._passkey("cred-1", "alice")),
            ("device_key", store.create_device, make_device("device-1", "alice"), make_device("device-1", "alice")),
            ("id", store.add_auth_event, event, event),
            (
                "name",
                store.create_identity_provider,
                make_identity_provider("Google"),
                make_identity_provider("Google"),
            ),
            ("link", store.put_provider_link, link, replace(link, created_at=T0 + 1)),
            (
                "id",
                store.put_federation_request,
                FederationRequestRecord("state-1", POOL, "Google", {}, T0),
                FederationRequestRecord("state-1", POOL, "Other", {}, T0),
            ),
            ("name", store.create_terms, make_terms("terms-1", "client-1"), make_terms("terms-2", "client-1")),
            (
                "client",
                store.create_managed_login_branding,
                make_branding("branding-1", "client-1"),
                make_branding("branding-2", "client-1"),
            ),
            ("id", store.create_user_import_job, make_import_job("job-1"), make_import_job("job-1")),
            ("id", store.create_cimd_policy, make_cimd_policy("policy-1"), make_cimd_policy("policy-1")),
            ("name", store.create_role, role, replace(role, role_id="AROA2")),
            ("id", store.create_role, None, replace(role, name="Other", name_key="other")),
            ("url", store.create_oidc_provider, oidc, oidc),
            (
                "name",
                store.create_saml_provider,
                SamlProviderRecord("Idp", "<md/>", {}, T0, T0),
                SamlProviderRecord("Idp", "<x/>", {}, T0, T0),
            ),
            ("id", store.create_identity_pool, None, make_identity_pool()),
        ]
        for key, create, first, second in creates:
            if first is not None:
                await create(first)
            with pytest.raises(AlreadyExists) as taken:
                await create(second)
            assert (create.__name__, taken.value.key) == (create.__name__, key)
        assert await store.get_terms(POOL, "terms-2") is None
        assert await store.get_managed_login_branding(POOL, "branding-2") is None
        assert await store.get_user(POOL, "bob") is None
        assert await store.get_role("other") is None

        missing: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("pool", lambda: store.create_client(make_client("client-9", pool_id=OTHER_POOL))),
            ("pool", lambda: store.create_group(make_group("admins", pool_id=OTHER_POOL))),
            ("pool", lambda: store.create_user(make_user("alice", pool_id=OTHER_POOL))),
            ("pool", lambda: store.create_domain(DomainRecord("auth-9", OTHER_POOL, {}, T0))),
            ("pool", lambda: store.add_signing_key(make_signing_key("kid-9", T0, pool_id=OTHER_POOL))),
            ("pool", lambda: store.put_oauth_record(OAuthRecord("code", "h-9", OTHER_POOL, "c", "alice", {}, T0))),
            ("pool", lambda: store.put_auth_session(make_session("s-9", "alice", pool_id=OTHER_POOL))),
            ("pool", lambda: store.put_code(make_code("alice", pool_id=OTHER_POOL))),
            ("pool", lambda: store.create_token_family(make_family("jti-9", "alice", pool_id=OTHER_POOL), None)),
            ("client", lambda: store.create_token_family(make_family("jti-9", "alice"), None, app_client_id="gone")),
            ("user", lambda: store.add_webauthn_credential(self._passkey("cred-9", "nobody"))),
            ("user", lambda: store.create_device(make_device("device-9", "nobody"))),
            ("user", lambda: store.add_auth_event(replace(event, event_id="event-9", username_key="nobody"))),
            ("user", lambda: store.put_provider_link(replace(link, attribute_value="g-9", username_key="nobody"))),
            ("client", lambda: store.create_terms(make_terms("terms-9", "gone"))),
            ("client", lambda: store.create_managed_login_branding(make_branding("branding-9", "gone"))),
            ("pool", lambda: store.create_user_import_job(make_import_job("job-9", pool_id=OTHER_POOL))),
            ("job", lambda: store.add_user_import_chunk(POOL, "gone", "upload-1", 0, b"x")),
            (
                "policy",
                lambda: store.put_cimd_document(CimdDocumentRecord("gone", "https://c.example.com/c", {}, T0, T0)),
            ),
            ("role", lambda: store.put_role_policy("gone", "policy", "{}")),
            ("pool", lambda: store.resolve_identity(make_identity("identity-9", [], pool_id="us-east-1:gone"))),
        ]
        for name, call in missing:
            with pytest.raises(NotFound) as gone:
                await call()
            assert str(gone.value) == name
        assert await store.get_token_family("jti-9") is None
        assert await store.get_identity("identity-9") is None

    async def test_every_expiring_record_is_gone_at_its_expiry_instant(self, store: Store) -> None:
        """expires_at is the first instant a record no longer counts: purge_expired(now) drops what expires at
        ``now`` exactly, and keeps what expires a moment after; a single-use marker expiring at ``now`` no
        longer refuses its key."""
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        now = T0 + 1000
        for at, suffix in ((now, "due"), (now + 0.001, "kept")):
            await store.put_code(make_code("alice", f"purpose-{suffix}", expires_at=at))
            await store.put_auth_session(make_session(f"s-{suffix}", "alice", expires_at=at))
            family = make_family(f"jti-{suffix}", "alice", expires_at=at)
            await store.create_token_family(family, make_refresh(f"rt-{suffix}", family, expires_at=at))
            await store.put_oauth_record(OAuthRecord("code", f"h-{suffix}", POOL, "client-1", "alice", {}, at))
            assert await store.burn_code(UsedCodeRecord(f"used-{suffix}", None, at)) is True
            await store.put_federation_request(FederationRequestRecord(f"state-{suffix}", POOL, "Google", {}, at))
            assert await store.mark_assertion_seen(f"assertion-{suffix}", at) is True
            assert await store.use_saml_assertion(f"saml-{suffix}", at, T0) is True
        # A SAML assertion marker expiring now no longer refuses its key; one expiring after still does.
        assert await store.use_saml_assertion("saml-due", now + 60, now) is True
        assert await store.use_saml_assertion("saml-kept", now + 60, now) is False
        assert await store.purge_expired(now) >= 8
        assert await store.get_code(POOL, "alice", "purpose-due") is None
        assert await store.get_code(POOL, "alice", "purpose-kept") is not None
        assert await store.take_auth_session("s-due") is None
        assert await store.take_auth_session("s-kept") is not None
        assert await store.get_token_family("jti-due") is None and await store.get_refresh_token("rt-due") is None
        assert await store.get_token_family("jti-kept") is not None
        assert await store.get_refresh_token("rt-kept") is not None
        assert await store.oauth_record_expiry("code", "h-due") is None
        assert await store.oauth_record_expiry("code", "h-kept") == now + 0.001
        assert await store.get_used_code("used-due") is None
        assert await store.get_used_code("used-kept") is not None
        assert await store.take_federation_request("state-due") is None
        assert await store.take_federation_request("state-kept") is not None
        assert await store.mark_assertion_seen("assertion-due", now + 60) is True
        assert await store.mark_assertion_seen("assertion-kept", now + 60) is False
        assert await store.burn_code(UsedCodeRecord("used-due", None, now + 60)) is True
        assert await store.burn_code(UsedCodeRecord("used-kept", None, now + 60)) is False

    async def test_concurrent_versioned_updates_of_clients_and_providers_have_one_winner(self, store: Store) -> None:
        """update_client, update_identity_pool and update_identity_provider compare and set as update_pool does:
        of racers holding one version, one writes and the others get VersionConflict."""
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        await store.create_identity_pool(make_identity_pool())
        await store.create_identity_provider(make_identity_provider("Google", idp_identifiers=["g"]))
        client = await store.get_client("client-1")
        identity_pool = await store.get_identity_pool(ID_POOL)
        provider = await store.get_identity_provider(POOL, "Google")
        assert client is not None and identity_pool is not None and provider is not None
        races: list[tuple[Any, list[Any], Any]] = [
            (store.update_client, [replace(client, name=f"n{i}") for i in range(RACERS)], store.get_client("client-1")),
            (
                store.update_identity_pool,
                [replace(identity_pool, name=f"n{i}") for i in range(RACERS)],
                store.get_identity_pool(ID_POOL),
            ),
            (
                store.update_identity_provider,
                [replace(provider, idp_identifiers=[f"id-{i}"]) for i in range(RACERS)],
                store.get_identity_provider(POOL, "Google"),
            ),
        ]
        for update, records, read in races:
            results = await outcomes([update(record) for record in records])
            winners = [r for r in results if not isinstance(r, BaseException)]
            assert len(winners) == 1, results
            assert all(isinstance(r, VersionConflict) for r in results if isinstance(r, BaseException))
            assert await read == winners[0] and winners[0].version == 1
        # The losers' identifiers were never taken: each is free for another provider.
        won = (await store.get_identity_provider(POOL, "Google") or provider).idp_identifiers
        lost = next(f"id-{i}" for i in range(RACERS) if [f"id-{i}"] != won)
        await store.create_identity_provider(make_identity_provider("Other", idp_identifiers=[lost]))

    async def test_racing_creates_of_one_key_have_one_winner_with_the_key_named(self, store: Store) -> None:
        """Of racers creating one unique thing (a client's terms document of one name, a client's branding style,
        a link of one upstream identity, a domain, a forgotten device key), exactly one succeeds; each other gets
        the AlreadyExists its key names, or False."""
        await store.create_pool(make_pool())
        await store.create_client(make_client("client-1"))
        await store.create_user(make_user("alice"))
        await store.create_device(make_device("device-1", "alice"))
        races: list[tuple[str, list[Awaitable[Any]]]] = [
            ("name", [store.create_terms(make_terms(f"terms-{i}", "client-1")) for i in range(RACERS)]),
            (
                "client",
                [store.create_managed_login_branding(make_branding(f"b-{i}", "client-1")) for i in range(RACERS)],
            ),
            (
                "link",
                [
                    store.put_provider_link(
                        ProviderLinkRecord(POOL, "Google", "Cognito_Subject", "g-1", "alice", T0 + i)
                    )
                    for i in range(RACERS)
                ],
            ),
            ("domain", [store.create_domain(DomainRecord("auth-1", POOL, {"n": i}, T0)) for i in range(RACERS)]),
        ]
        for key, calls in races:
            results = await outcomes(calls)
            assert results.count(None) == 1, (key, results)
            assert {r.key for r in results if isinstance(r, AlreadyExists)} == {key}
            assert len([r for r in results if isinstance(r, AlreadyExists)]) == RACERS - 1
        assert len(await store.list_client_terms(POOL, "client-1")) == 1
        forgotten = await outcomes([store.forget_device(POOL, "device-1", T0 + i) for i in range(RACERS)])
        assert forgotten.count(True) == 1 and forgotten.count(False) == RACERS - 1
        revived = await outcomes([store.create_device(make_device("device-1", "alice")) for _ in range(RACERS)])
        assert all(isinstance(r, AlreadyExists) and r.key == "forgotten" for r in revived)
        assert await store.get_device(POOL, "device-1") is None

    async def test_one_login_linked_by_racers_to_many_identities_goes_to_one(self, store: Store) -> None:
        """link_logins of one login to different identities at once: one links it, the others get
        AlreadyExists("login") and write nothing; find_identity_by_login names the one."""
        await store.create_identity_pool(make_identity_pool())
        for i in range(RACERS):
            await store.resolve_identity(make_identity(f"identity-{i:02}", [IdentityLogin("own", f"s-{i}")]))
        shared = IdentityLogin("accounts.google.com", "g-1")
        results = await outcomes([store.link_logins(ID_POOL, f"identity-{i:02}", [shared], T0) for i in range(RACERS)])
        winners = [r for r in results if isinstance(r, IdentityRecord)]
        assert len(winners) == 1
        assert all(isinstance(r, AlreadyExists) and r.key == "login" for r in results if r not in winners)
        owner = await store.find_identity_by_login(ID_POOL, shared)
        assert owner is not None and owner.id == winners[0].id and shared in owner.logins
        for i in range(RACERS):
            identity = await store.get_identity(f"identity-{i:02}")
            assert identity is not None
            assert (shared in identity.logins) == (identity.id == owner.id)

    async def test_a_family_racing_its_clients_deletion_is_refused_or_revoked(self, store: Store) -> None:
        """create_token_family(app_client_id=...) racing delete_client: every family either was refused
        (NotFound("client")) or is stored revoked; none stored after the deletion is live."""
        await store.create_pool(make_pool())
        await store.create_user(make_user("alice"))
        await store.create_client(make_client("client-2"))
        families = [make_family(f"jti-{i:02}", "alice", client_id="client-2") for i in range(RACERS)]
        calls: list[Awaitable[Any]] = [
            store.create_token_family(f, make_refresh(f"rt-{f.origin_jti}", f), app_client_id="client-2")
            for f in families
        ]
        calls.insert(RACERS // 2, store.delete_client(POOL, "client-2"))
        results = await outcomes(calls)
        assert True in results  # the deletion
        for family, result in zip(families, [r for r in results if r is not True], strict=True):
            stored = await store.get_token_family(family.origin_jti)
            if isinstance(result, NotFound):
                assert str(result) == "client" and stored is None
            else:
                assert result is None and stored is not None and stored.revoked


def make_identity_provider(name: str, pool_id: str = POOL, **changes: Any) -> IdentityProviderRecord:
    record = IdentityProviderRecord(
        pool_id=pool_id,
        name=name,
        provider_type="OIDC",
        details={"client_id": "abc", "client_secret": "sealed-secret", "oidc_issuer": "https://idp.example"},
        attribute_mapping={"email": "email", "username": "sub"},
        idp_identifiers=[],
        created_at=T0,
        updated_at=T0,
        settings={"group_rules": [{"claim": "groups", "match": "equals", "value": "a", "group": "A"}]},
    )
    return replace(record, **changes)


def make_terms(terms_id: str, client_id: str, pool_id: str = POOL, **changes: Any) -> TermsRecord:
    record = TermsRecord(pool_id, terms_id, client_id, "terms-of-use", "LINK", "NONE", {}, T0, T0)
    return replace(record, **changes)


def make_branding(branding_id: str, client_id: str, pool_id: str = POOL, **changes: Any) -> ManagedLoginBrandingRecord:
    record = ManagedLoginBrandingRecord(pool_id, branding_id, client_id, False, None, [], T0, T0)
    return replace(record, **changes)


def make_import_job(job_id: str, pool_id: str = POOL, **changes: Any) -> UserImportJobRecord:
    created = changes.pop("created_at", T0)
    record = UserImportJobRecord(
        pool_id=pool_id,
        job_id=job_id,
        list_key=f"{created:017.6f}-{job_id}",
        name="job",
        role_arn="arn:aws:iam::111111111111:role/Import",
        status="Created",
        created_at=created,
        url_expires_at=T0 + 3600,
    )
    return replace(record, **changes)


def make_cimd_policy(policy_id: str, pool_id: str = POOL, **changes: Any) -> CimdPolicyRecord:
    record = CimdPolicyRecord(
        pool_id, policy_id, "client-1", f"policy {policy_id}", 86400, ["https://*.example.com/c"], T0, T0
    )
    return replace(record, **changes)
