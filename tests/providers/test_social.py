"""Google, Facebook, Sign in with Apple and Login with Amazon against fakes that speak their protocols over
real HTTP: what each connector sends, what it reads back, and what it refuses."""

from __future__ import annotations

import json

import pytest

from providers.amazon import AmazonConnector
from providers.apple import AppleConnector
from providers.base import ConnectorContext, ProviderConfigError, UpstreamError
from providers.facebook import FacebookConnector
from providers.google import GoogleConnector
from tests.fakes.oauth import FakeAmazon, FakeApple, FakeFacebook, FakeGoogle, s256
from tests.providers.conftest import CALLBACK, follow_to_callback

VERIFIER = "q" * 64


async def round_trip(connector: object, context: ConnectorContext, nonce: str = "nonce-1") -> dict[str, str]:
    url = await connector.authorization_url(  # type: ignore[attr-defined]
        state="state-1", nonce=nonce, code_challenge=s256(VERIFIER), redirect_uri=CALLBACK
    )
    return await follow_to_callback(context.http, url)


# --- Google -------------------------------------------------------------------------------------------------


async def test_google_sign_in(google: FakeGoogle, context: ConnectorContext) -> None:
    google.id_token_mode = None
    connector = GoogleConnector("Google", GoogleConnector.complete_details(google.provider_details()), context)
    params = await round_trip(connector, context)
    identity = await connector.complete(params, nonce="nonce-1", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert (identity.provider_type, identity.subject) == ("Google", "110169484474386276334")
    assert (identity.email, identity.email_verified, identity.name) == ("ann@gmail.example", True, "Ann Example")
    assert identity.claims["picture"] == "https://lh3.example/ann.png"


async def test_google_refuses_a_token_for_another_client(google: FakeGoogle, context: ConnectorContext) -> None:
    connector = GoogleConnector("Google", GoogleConnector.complete_details(google.provider_details()), context)
    params = await round_trip(connector, context)
    google.id_token_mode = "wrong_aud"
    try:
        with pytest.raises(UpstreamError) as refused:
            await connector.complete(params, nonce="nonce-1", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    finally:
        google.id_token_mode = None
    assert refused.value.reason == "id_token_aud"


def test_google_defaults_are_cognitos() -> None:
    details = GoogleConnector.complete_details({"client_id": "a", "client_secret": "b", "authorize_scopes": "email"})
    assert details["authorize_url"] == "https://accounts.google.com/o/oauth2/v2/auth"
    assert details["jwks_uri"] == "https://www.googleapis.com/oauth2/v3/certs"
    with pytest.raises(ProviderConfigError, match="client_secret"):
        GoogleConnector.complete_details({"client_id": "a", "authorize_scopes": "email"})


# --- Facebook -----------------------------------------------------------------------------------------------


async def test_facebook_sign_in_with_appsecret_proof(facebook: FakeFacebook, context: ConnectorContext) -> None:
    details = FacebookConnector.complete_details(facebook.provider_details())
    connector = FacebookConnector("Facebook", details, context, wanted_claims=["birthday"])
    params = await round_trip(connector, context)
    assert facebook.authorize_requests[-1]["scope"] == "public_profile,email"
    identity = await connector.complete(params, nonce="n", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert (identity.subject, identity.email, identity.name) == ("10158000000000001", "ann@fb.example", "Ann Facebook")
    assert identity.claims["birthday"] == "x"
    assert facebook.me_requests[-1]["fields"] == "id,name,email,birthday"
    assert len(facebook.me_requests[-1]["appsecret_proof"]) == 64


async def test_facebook_with_a_wrong_app_secret_is_refused(facebook: FakeFacebook, context: ConnectorContext) -> None:
    details = FacebookConnector.complete_details({**facebook.provider_details(), "client_secret": "wrong"})
    connector = FacebookConnector("Facebook", details, context)
    params = await round_trip(connector, context)
    with pytest.raises(UpstreamError) as refused:
        await connector.complete(params, nonce="n", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert refused.value.reason == "token_error"


def test_facebook_versioned_defaults() -> None:
    details = FacebookConnector.complete_details(
        {"client_id": "a", "client_secret": "b", "authorize_scopes": "email", "api_version": "v19.0"}
    )
    assert details["authorize_url"] == "https://www.facebook.com/v19.0/dialog/oauth"
    assert details["token_request_method"] == "GET"
    assert details["attributes_url"] == "https://graph.facebook.com/v19.0/me?fields="


# --- Sign in with Apple -------------------------------------------------------------------------------------


async def test_apple_form_post_es256_secret_and_first_login_name(apple: FakeApple, context: ConnectorContext) -> None:
    apple.id_token_mode = None
    connector = AppleConnector("SignInWithApple", AppleConnector.complete_details(apple.provider_details()), context)
    params = await round_trip(connector, context)
    sent = apple.authorize_requests[-1]
    assert sent["response_mode"] == "form_post" and sent["scope"] == "email name" and sent["nonce"] == "nonce-1"
    assert "user" in params  # the first authorization carries the name
    identity = await connector.complete(params, nonce="nonce-1", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert identity.subject == "001234.abcdef.0987" and identity.email_verified is True
    assert (identity.claims["given_name"], identity.claims["family_name"], identity.name) == (
        "Ann",
        "Apple",
        "Ann Apple",
    )
    secret = apple.client_secrets[-1]
    assert secret["header"] == {"alg": "ES256", "kid": apple.key_id}
    assert (secret["claims"]["iss"], secret["claims"]["sub"]) == (apple.team_id, apple.client_id)
    # Later sign-ins carry no name; the connector adds none.
    params = await round_trip(connector, context, nonce="nonce-2")
    assert "user" not in params
    again = await connector.complete(params, nonce="nonce-2", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert "given_name" not in again.claims


async def test_apple_refuses_a_client_secret_signed_with_another_key(
    apple: FakeApple, context: ConnectorContext
) -> None:
    from jwcrypto import jwk

    other = jwk.JWK.generate(kty="EC", crv="P-256").export_to_pem(private_key=True, password=None).decode()
    details = AppleConnector.complete_details({**apple.provider_details(), "private_key": other})
    connector = AppleConnector("SignInWithApple", details, context)
    params = await round_trip(connector, context)
    with pytest.raises(UpstreamError) as refused:
        await connector.complete(params, nonce="nonce-1", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert refused.value.reason == "token_error"


def test_apple_details_validation(apple: FakeApple) -> None:
    with pytest.raises(ProviderConfigError, match="private_key"):
        AppleConnector.complete_details({**apple.provider_details(), "private_key": "not a key"})
    rsa_pem = __import__("tests.fakes.certs", fromlist=["key_and_cert"]).key_and_cert("x")[0]
    with pytest.raises(ProviderConfigError, match="P-256"):
        AppleConnector.complete_details({**apple.provider_details(), "private_key": rsa_pem})
    with pytest.raises(ProviderConfigError, match="team_id"):
        AppleConnector.complete_details({k: v for k, v in apple.provider_details().items() if k != "team_id"})


def test_apple_malformed_user_json_is_ignored() -> None:
    from providers.apple import _first_login_user

    assert _first_login_user("{not json") == {}
    assert _first_login_user(json.dumps({"name": "flat"})) == {}
    assert _first_login_user(json.dumps({"name": {"firstName": "A"}})) == {"given_name": "A", "name": "A"}


# --- Login with Amazon --------------------------------------------------------------------------------------


async def test_amazon_profile(amazon: FakeAmazon, context: ConnectorContext) -> None:
    connector = AmazonConnector("LoginWithAmazon", AmazonConnector.complete_details(amazon.provider_details()), context)
    params = await round_trip(connector, context)
    assert amazon.authorize_requests[-1]["scope"] == "profile postal_code"
    identity = await connector.complete(params, nonce="n", code_verifier=VERIFIER, redirect_uri=CALLBACK)
    assert identity.subject == "amzn1.account.AFAKE0000000000000000000000"
    assert identity.claims["postal_code"] == "98109" and identity.email == "ann@amazon.example"
    assert identity.issuer is None


async def test_amazon_wrong_redirect_uri_is_refused(amazon: FakeAmazon, context: ConnectorContext) -> None:
    connector = AmazonConnector("LoginWithAmazon", AmazonConnector.complete_details(amazon.provider_details()), context)
    params = await round_trip(connector, context)
    with pytest.raises(UpstreamError) as refused:
        await connector.complete(params, nonce="n", code_verifier=VERIFIER, redirect_uri=CALLBACK + "x")
    assert refused.value.reason == "token_error"
