"""The federation broker with a real store and fake upstream IdPs over HTTP: state handling, Cognito's user
naming and ``identities``, AttributeMapping on every sign-in, links to native users, claim -> group rules, and
nothing stored when the upstream's answer is refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from gateway.errors import NotAuthorizedException, UpstreamIdentityError
from gateway.secretbox import SecretBox
from gateway.services.federation import EXTERNAL_PROVIDER, FederationCallbackError, FederationService
from gateway.services.identity_providers import IdentityProviderService
from gateway.services.pools import PoolService, PoolView
from gateway.storage.base import GroupRecord, UserRecord
from gateway.storage.sqlite import SqliteStore
from tests.fakes.oauth import FakeGoogle, FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.providers.conftest import form_fields

PUBLIC_URL = "http://127.0.0.1:1"


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        yield server


class Broker:
    def __init__(
        self, store: SqliteStore, pool: PoolView, idps: IdentityProviderService, fed: FederationService
    ) -> None:
        self.store, self.pool, self.idps, self.fed = store, pool, idps, fed

    async def users(self) -> list[UserRecord]:
        return (await self.store.list_users(self.pool.id, None, 60)).items

    async def groups_of(self, user: UserRecord) -> list[str]:
        """The user's groups but the one Cognito makes for each provider's users (``<UserPoolId>_<ProviderName>``,
        which every user a provider created is in; :meth:`all_groups_of` has it)."""
        return [g for g in await self.all_groups_of(user) if not g.startswith(f"{self.pool.id}_")]

    async def all_groups_of(self, user: UserRecord) -> list[str]:
        return [g.name for g in await self.store.list_groups_for_user(self.pool.id, user.username_key)]


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    store = await SqliteStore.open(":memory:")
    box = SecretBox(SecretBox.generate_key())
    pools = PoolService(store, region="us-east-1", account_id="123456789012")
    pool = await pools.create_pool(
        "fed", {"Schema": [{"Name": "tier", "AttributeDataType": "String", "Mutable": True}]}
    )
    for name in ("admins", "engineers", "contractors"):
        await store.create_group(GroupRecord(pool.id, name, None, None, None, 0.0, 0.0))
    idps = IdentityProviderService(store, pools, box)
    fed = FederationService(store, pools, idps, box, public_url=PUBLIC_URL)
    yield Broker(store, pool, idps, fed)
    await fed.close()
    await store.close()


async def browser(url: str, method: str = "GET", form: dict[str, str] | None = None) -> dict[str, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, data=form, allow_redirects=False) as response,
    ):
        if response.status in (301, 302, 303):
            return dict(parse_qsl(urlsplit(response.headers["Location"]).query))
        return form_fields(await response.text())


async def sign_in_google(broker: Broker) -> tuple[object, dict[str, str]]:
    redirect = await broker.fed.begin(broker.pool.id, "Google", resume={"request_id": "req-1"})
    params = await browser(redirect.url)
    return await broker.fed.complete_redirect(params), params


async def add_google(broker: Broker, google: FakeGoogle, **extra: object) -> None:
    await broker.idps.create(
        broker.pool.id,
        "Google",
        "Google",
        google.provider_details(),
        {"email": "email", "email_verified": "email_verified", "name": "name", "custom:tier": "hd"},
        **extra,  # type: ignore[arg-type]
    )


async def test_first_sign_in_creates_the_external_user(broker: Broker, google: FakeGoogle) -> None:
    await add_google(broker, google)
    google.user["hd"] = "gold"
    result, params = await sign_in_google(broker)
    assert result.resume == {"request_id": "req-1"}  # type: ignore[attr-defined]
    user = result.user  # type: ignore[attr-defined]
    assert user.username == "Google_110169484474386276334" and user.status == EXTERNAL_PROVIDER
    assert user.password_hash is None
    assert user.attributes["email"] == "ann@gmail.example" and user.attributes["email_verified"] == "true"
    assert user.attributes["custom:tier"] == "gold"
    identities = json.loads(user.attributes["identities"])
    assert identities == [
        {
            "userId": "110169484474386276334",
            "providerName": "Google",
            "providerType": "Google",
            "issuer": None,  # Cognito's: null for OIDC and social providers, the entity ID for SAML
            "primary": True,
            "dateCreated": identities[0]["dateCreated"],
        }
    ]
    # The state answers one callback only.
    with pytest.raises(UpstreamIdentityError) as replay:
        await broker.fed.complete_redirect(params)
    assert replay.value.reason == "state_unknown"
    # Mapping is applied on every sign-in; the same user comes back.
    google.user["hd"] = "platinum"
    again, _ = await sign_in_google(broker)
    assert again.user.sub == user.sub and again.user.attributes["custom:tier"] == "platinum"  # type: ignore[attr-defined]
    assert len(await broker.users()) == 1
    google.user.pop("hd")


@pytest.mark.parametrize("state", [None, "", "made-up-state"])
async def test_bad_or_missing_state_is_refused_and_nothing_stored(
    broker: Broker, google: FakeGoogle, state: str | None
) -> None:
    await add_google(broker, google)
    redirect = await broker.fed.begin(broker.pool.id, "Google", resume={})
    params = await browser(redirect.url)
    params.pop("state")
    if state is not None:
        params["state"] = state
    with pytest.raises(UpstreamIdentityError):
        await broker.fed.complete_redirect(params)
    assert await broker.users() == []


@pytest.mark.parametrize("mode", ["other_key", "alg_none", "wrong_aud", "wrong_iss", "expired", "nonce"])
async def test_refused_id_token_stores_nothing(broker: Broker, google: FakeGoogle, mode: str) -> None:
    await add_google(broker, google)
    redirect = await broker.fed.begin(broker.pool.id, "Google", resume={})
    params = await browser(redirect.url)
    google.id_token_mode = mode
    try:
        with pytest.raises(FederationCallbackError) as refused:
            await broker.fed.complete_redirect(params)
    finally:
        google.id_token_mode = None
    error = refused.value.error
    assert isinstance(error, UpstreamIdentityError) and error.reason.startswith("id_token_")
    assert isinstance(error, NotAuthorizedException)
    assert refused.value.resume == {}
    assert await broker.users() == []


async def test_link_lands_google_login_on_the_native_user(broker: Broker, google: FakeGoogle) -> None:
    await add_google(broker, google)
    native = UserRecord(
        pool_id=broker.pool.id,
        username="ann",
        username_key="ann",
        sub="native-sub",
        status="CONFIRMED",
        enabled=True,
        attributes={"email": "ann@native.example"},
        password_hash="x",
        created_at=0.0,
        updated_at=0.0,
    )
    await broker.store.create_user(native)
    await broker.fed.link(
        broker.pool.id,
        {"ProviderName": "Cognito", "ProviderAttributeValue": "ann"},
        {
            "ProviderName": "Google",
            "ProviderAttributeName": "Cognito_Subject",
            "ProviderAttributeValue": google.user["sub"],
        },
    )
    result, _ = await sign_in_google(broker)
    user = result.user  # type: ignore[attr-defined]
    assert (user.username, user.sub) == ("ann", "native-sub")
    # A linked native user keeps its own attributes; its identities now hold the Google one.
    assert user.attributes["email"] == "ann@native.example"
    assert json.loads(user.attributes["identities"])[0]["providerName"] == "Google"
    assert [u.username for u in await broker.users()] == ["ann"]


async def test_disabled_external_user_cannot_sign_in(broker: Broker, google: FakeGoogle) -> None:
    await add_google(broker, google)
    await sign_in_google(broker)
    await broker.fed.disable(
        broker.pool.id,
        {
            "ProviderName": "Google",
            "ProviderAttributeName": "Cognito_Subject",
            "ProviderAttributeValue": google.user["sub"],
        },
    )
    with pytest.raises(FederationCallbackError) as refused:
        await sign_in_google(broker)
    assert isinstance(refused.value.error, NotAuthorizedException)
    assert refused.value.error.message == "User is disabled."
    assert refused.value.resume == {"request_id": "req-1"}


async def test_group_rules_follow_upstream_memberships(broker: Broker, corp: FakeOIDC) -> None:
    details = {
        "client_id": corp.client_id,
        "client_secret": corp.client_secret,
        "authorize_scopes": "openid email",
        "oidc_issuer": corp.issuer,
        "attributes_request_method": "GET",
    }
    rules = [
        {"claim": "groups", "match": "equals", "value": "corp-admins", "group": "admins"},
        {"claim": "groups", "match": "starts-with", "value": "eng-", "group": "engineers"},
        {"claim": "email", "match": "regex", "value": r"@contractor\.example$", "group": "contractors"},
        {"claim": "department", "match": "contains", "value": "ops", "group": "missing-group"},
    ]
    await broker.idps.create(broker.pool.id, "Corp", "OIDC", details, {"email": "email"}, group_rules=rules)

    async def sign_in() -> UserRecord:
        redirect = await broker.fed.begin(broker.pool.id, "Corp", resume={})
        return (await broker.fed.complete_redirect(await browser(redirect.url))).user

    corp.user = {
        "sub": "u-7",
        "email": "x@contractor.example",
        "groups": ["corp-admins", "eng-backend"],
        "department": "devops",
    }
    user = await sign_in()
    assert user.username == "Corp_u-7"
    assert sorted(await broker.groups_of(user)) == ["admins", "contractors", "engineers"]
    # The provider's own group, made with the first user it brought, beside the mapped ones.
    assert f"{broker.pool.id}_Corp" in await broker.all_groups_of(user)
    # Upstream memberships changed: the pool follows, and a group no rule names is left alone.
    await broker.store.add_user_to_group(broker.pool.id, user.username_key, "engineers")
    corp.user = {"sub": "u-7", "email": "x@corp.example", "groups": ["eng-frontend"]}
    user = await sign_in()
    assert sorted(await broker.groups_of(user)) == ["engineers"]
    corp.user = {"sub": "u-7", "email": "x@corp.example", "groups": []}
    assert await broker.groups_of(await sign_in()) == []


async def test_saml_round_trip_through_the_broker(broker: Broker) -> None:
    pool_id = broker.pool.id
    cert = (await broker.fed.sp_key_pair(pool_id))["cert"]
    acs = broker.fed.acs_url
    with FakeSamlIdP(sp_entity_id=f"urn:amazon:cognito:sp:{pool_id}", acs_url=acs, sp_cert_pem=cert) as idp:
        await broker.idps.create(
            pool_id,
            "CorpSAML",
            "SAML",
            {"MetadataURL": idp.url + "/metadata", "RequestSigningAlgorithm": "rsa-sha256"},
            {"email": "email", "name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"},
            group_rules=[{"claim": "groups", "match": "equals", "value": "corp-admins", "group": "admins"}],
        )
        redirect = await broker.fed.begin(pool_id, "CorpSAML", resume={"request_id": "r-9"})
        assert redirect.method == "GET" and redirect.url.startswith(idp.url + "/sso/redirect?")
        form = await browser(redirect.url)
        result = await broker.fed.complete_saml(form)
        assert result.resume == {"request_id": "r-9"}
        assert result.user.username == "CorpSAML_ann@corp.example"
        assert result.user.attributes["name"] == "Ann Corp"
        assert await broker.groups_of(result.user) == ["admins"]
        with pytest.raises(UpstreamIdentityError):
            await broker.fed.complete_saml(form)  # the RelayState answered once
        # The SAML callback does not accept a redirect provider's state, and the other way round.
        redirect = await broker.fed.begin(pool_id, "CorpSAML", resume={})
        form = await browser(redirect.url)
        with pytest.raises(FederationCallbackError) as wrong:
            await broker.fed.complete_redirect({"state": form["RelayState"], "code": "x"})
        assert isinstance(wrong.value.error, UpstreamIdentityError) and wrong.value.error.reason == "wrong_callback"


async def test_callback_from_another_browser_is_refused(broker: Broker, google: FakeGoogle) -> None:
    await add_google(broker, google)
    redirect = await broker.fed.begin(broker.pool.id, "Google", resume={}, browser="browser-of-the-victim-123")
    params = await browser(redirect.url)
    with pytest.raises(UpstreamIdentityError) as refused:
        await broker.fed.complete_redirect(params, browser="browser-of-the-attacker-9")
    assert refused.value.reason == "browser_mismatch"
    assert await broker.users() == []
    redirect = await broker.fed.begin(broker.pool.id, "Google", resume={}, browser="browser-of-the-victim-123")
    params = await browser(redirect.url)
    with pytest.raises(UpstreamIdentityError):
        await broker.fed.complete_redirect(params)  # no cookie at all
    redirect = await broker.fed.begin(broker.pool.id, "Google", resume={}, browser="browser-of-the-victim-123")
    result = await broker.fed.complete_redirect(await browser(redirect.url), browser="browser-of-the-victim-123")
    assert result.user.username.startswith("Google_")
