"""The generic OIDC connector against a fake OpenID provider over real HTTP: discovery, the code flow with
PKCE, ID token validation, userinfo; and every hostile answer refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from jwcrypto import jwk

from providers.base import ConnectorContext, ProviderConfigError, UpstreamError
from providers.oidc import OIDCConnector, verify_id_token
from tests.fakes.oauth import FakeOIDC, s256
from tests.providers.conftest import CALLBACK, follow_to_callback

VERIFIER = "v" * 43


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        yield server


@pytest.fixture
def connector(fake: FakeOIDC, context: ConnectorContext) -> OIDCConnector:
    fake.id_token_mode = None
    fake.userinfo_sub = None
    details = OIDCConnector.complete_details(
        {
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "authorize_scopes": "openid email profile",
            "oidc_issuer": fake.issuer,
            "attributes_request_method": "GET",
        }
    )
    return OIDCConnector("Corp", details, context)


async def sign_in(connector: OIDCConnector, context: ConnectorContext, *, nonce: str = "n-1") -> dict[str, str]:
    url = await connector.authorization_url(
        state="st-1", nonce=nonce, code_challenge=s256(VERIFIER), redirect_uri=CALLBACK
    )
    return await follow_to_callback(context.http, url)


async def test_discovery_code_flow_and_userinfo(
    fake: FakeOIDC, connector: OIDCConnector, context: ConnectorContext
) -> None:
    fake.userinfo_extra = {"groups": ["eng", "admins"], "custom_tier": "gold"}
    params = await sign_in(connector, context)
    assert params["state"] == "st-1"
    sent = fake.authorize_requests[-1]
    assert sent["nonce"] == "n-1" and sent["code_challenge_method"] == "S256"
    assert sent["redirect_uri"] == CALLBACK and sent["scope"] == "openid email profile"
    identity = await connector.complete(params, nonce="n-1", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert (identity.provider, identity.provider_type, identity.issuer) == ("Corp", "OIDC", fake.issuer)
    assert (identity.subject, identity.email, identity.email_verified) == ("1001", "ann@example.com", True)
    assert identity.groups == ("eng", "admins")
    assert identity.claims["custom_tier"] == "gold"
    assert fake.token_requests[-1]["code_verifier"] == VERIFIER
    fake.userinfo_extra = {}


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("other_key", "id_token_signature"),
        ("alg_none", "id_token_alg"),
        ("hs256_public_key", "id_token_alg"),
        ("wrong_aud", "id_token_aud"),
        ("wrong_iss", "id_token_iss"),
        ("expired", "id_token_expired"),
        ("nonce", "id_token_nonce"),
    ],
)
async def test_hostile_id_tokens_are_refused(
    fake: FakeOIDC, connector: OIDCConnector, context: ConnectorContext, mode: str, reason: str
) -> None:
    params = await sign_in(connector, context)
    fake.id_token_mode = mode
    with pytest.raises(UpstreamError) as refused:
        await connector.complete(params, nonce="n-1", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert refused.value.reason == reason


async def test_nonce_of_another_sign_in_is_refused(connector: OIDCConnector, context: ConnectorContext) -> None:
    params = await sign_in(connector, context, nonce="first")
    with pytest.raises(UpstreamError) as refused:
        await connector.complete(params, nonce="second", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert refused.value.reason == "id_token_nonce"


async def test_wrong_pkce_verifier_and_replayed_code_are_refused(
    connector: OIDCConnector, context: ConnectorContext
) -> None:
    params = await sign_in(connector, context)
    with pytest.raises(UpstreamError) as wrong:
        await connector.complete(params, nonce="n-1", code_verifier="w" * 43, redirect_uri=CALLBACK)
    assert wrong.value.reason == "token_error"
    params = await sign_in(connector, context)
    await connector.complete(params, nonce="n-1", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    with pytest.raises(UpstreamError) as replay:
        await connector.complete(params, nonce="n-1", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert replay.value.reason == "token_error"


async def test_userinfo_about_another_subject_is_refused(
    fake: FakeOIDC, connector: OIDCConnector, context: ConnectorContext
) -> None:
    params = await sign_in(connector, context)
    fake.userinfo_sub = "someone-else"
    with pytest.raises(UpstreamError) as refused:
        await connector.complete(params, nonce="n-1", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert refused.value.reason == "userinfo_sub"


async def test_error_and_missing_code_callbacks(connector: OIDCConnector) -> None:
    with pytest.raises(UpstreamError) as denied:
        await connector.complete(
            {"error": "access_denied", "state": "x"}, nonce="n", code_verifier=VERIFIER, redirect_uri=CALLBACK
        )
    assert denied.value.reason == "upstream_error"
    with pytest.raises(UpstreamError) as empty:
        await connector.complete({"state": "x"}, nonce="n", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert empty.value.reason == "no_code"


async def test_discovered_issuer_must_match(fake: FakeOIDC, context: ConnectorContext) -> None:
    details = OIDCConnector.complete_details(
        {
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "authorize_scopes": "openid",
            "oidc_issuer": fake.issuer + "/",  # discovery answers with the issuer without the slash
            "attributes_request_method": "GET",
        }
    )
    with pytest.raises(UpstreamError) as refused:
        await OIDCConnector("Corp", details, context).authorization_url(
            state="s", nonce="n", code_challenge="c", redirect_uri=CALLBACK
        )
    assert refused.value.reason == "discovery_issuer"


async def test_unreachable_upstream_is_an_upstream_error(context: ConnectorContext) -> None:
    details = OIDCConnector.complete_details(
        {
            "client_id": "a",
            "client_secret": "b",
            "authorize_scopes": "openid",
            "oidc_issuer": "http://127.0.0.1:9",
            "attributes_request_method": "GET",
        }
    )
    with pytest.raises(UpstreamError) as refused:
        await OIDCConnector("Corp", details, context).authorization_url(
            state="s", nonce="n", code_challenge="c", redirect_uri=CALLBACK
        )
    assert refused.value.reason == "discovery_unreachable"


def test_details_validation() -> None:
    with pytest.raises(ProviderConfigError, match="oidc_issuer"):
        OIDCConnector.complete_details(
            {"client_id": "a", "client_secret": "b", "authorize_scopes": "openid", "attributes_request_method": "GET"}
        )
    with pytest.raises(ProviderConfigError, match="jwks_uri"):
        OIDCConnector.complete_details(
            {
                "client_id": "a",
                "client_secret": "b",
                "authorize_scopes": "openid",
                "attributes_request_method": "GET",
                "oidc_issuer": "https://x",
                "jwks_uri": "ftp://x/keys",
            }
        )


def test_verify_id_token_rejects_symmetric_keys_in_the_set() -> None:
    secret = jwk.JWK.generate(kty="oct", size=256, kid="k")
    from jwcrypto import jwt

    token = jwt.JWT(header={"alg": "HS256", "kid": "k"}, claims={"iss": "i", "aud": "a", "sub": "s", "exp": 2**40})
    token.make_signed_token(secret)
    keys = jwk.JWKSet()
    keys.add(secret)
    with pytest.raises(UpstreamError) as refused:
        verify_id_token(token.serialize(), keys, issuers=frozenset({"i"}), client_id="a", nonce=None)
    assert refused.value.reason == "id_token_alg"
    # Even a token claiming RS256 finds no usable key among symmetric ones.
    header = json.dumps({"alg": "RS256", "kid": "k"}).encode()
    import base64

    forged = base64.urlsafe_b64encode(header).rstrip(b"=").decode() + "." + token.serialize().split(".", 1)[1]
    with pytest.raises(UpstreamError) as no_key:
        verify_id_token(forged, keys, issuers=frozenset({"i"}), client_id="a", nonce=None)
    assert no_key.value.reason == "id_token_key"
