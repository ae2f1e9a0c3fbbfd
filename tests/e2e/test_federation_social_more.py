"""Facebook Login and Login with Amazon end to end over HTTP: ``/oauth2/authorize?identity_provider=X`` -> the
fake upstream (real code flow; Facebook's GET code exchange and Graph API ``/me`` with ``appsecret_proof``,
Amazon's ``/auth/o2/token`` and ``/user/profile``) -> ``/oauth2/idpresponse`` -> a code -> tokens ->
``/oauth2/userInfo``. And the refusals: a Graph API that rejects the token, a profile without ``user_id``."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.e2e.federation_support import Flow, usernames, verified_id_token
from tests.e2e.oauth_support import query_of
from tests.fakes.oauth import FakeAmazon, FakeFacebook
from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="social-more")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, facebook: FakeFacebook, amazon: FakeAmazon) -> str:
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Facebook", ProviderType="Facebook",
        ProviderDetails=facebook.provider_details(),
        AttributeMapping={"email": "email", "name": "name", "birthdate": "birthday"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="LoginWithAmazon", ProviderType="LoginWithAmazon",
        ProviderDetails=amazon.provider_details(),
        AttributeMapping={"email": "email", "name": "name", "address": "postal_code"},
    )  # fmt: skip
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=["https://app.example.com/callback"],
        SupportedIdentityProviders=["COGNITO", "Facebook", "LoginWithAmazon"],
    )  # fmt: skip
    return str(client["UserPoolClient"]["ClientId"])


def userinfo(gatehouse: GatehouseServer, access_token: str) -> dict[str, Any]:
    reply = requests.get(
        f"{gatehouse.url}/oauth2/userInfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_facebook_end_to_end(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, facebook: FakeFacebook
) -> None:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="Facebook"))
    assert response.status_code == 303, response.text
    answer = query_of(response.headers["Location"])
    assert answer["state"] == "app-state-1"
    sent = facebook.authorize_requests[-1]
    assert sent["redirect_uri"] == f"{gatehouse.url}/oauth2/idpresponse"
    assert sent["scope"] == "public_profile,email"  # Facebook separates scopes with commas
    # The code was exchanged with a GET, and /me was read with the app secret proof and the mapped fields.
    assert facebook.token_requests[-1]["client_secret"] == facebook.client_secret
    me = facebook.me_requests[-1]
    assert set(me["fields"].split(",")) >= {"id", "email", "name", "birthday"} and me["appsecret_proof"]
    tokens = flow.tokens(answer["code"])
    claims = verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"])
    username = "Facebook_10158000000000001"
    assert claims["cognito:username"] == username
    assert claims["email"] == "ann@fb.example" and claims["name"] == "Ann Facebook"
    (identity,) = claims["identities"]
    assert (identity["providerName"], identity["providerType"], identity["userId"]) == (
        "Facebook", "Facebook", "10158000000000001",
    )  # fmt: skip
    info = userinfo(gatehouse, tokens["access_token"])
    assert info["username"] == username and info["email"] == "ann@fb.example"
    # The fake's birthday "x" is no OIDC birthdate (YYYY-MM-DD): the schema refuses it, so it is left out.
    assert "birthdate" not in info
    assert idp.admin_get_user(UserPoolId=pool_id, Username=username)["UserStatus"] == "EXTERNAL_PROVIDER"


def test_login_with_amazon_end_to_end(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, amazon: FakeAmazon
) -> None:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="LoginWithAmazon"))
    assert response.status_code == 303, response.text
    answer = query_of(response.headers["Location"])
    assert amazon.authorize_requests[-1]["scope"] == "profile postal_code"
    tokens = flow.tokens(answer["code"])
    claims = verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"])
    username = "LoginWithAmazon_amzn1.account.AFAKE0000000000000000000000"
    assert claims["cognito:username"] == username
    assert claims["email"] == "ann@amazon.example" and claims["name"] == "Ann Amazon"
    (identity,) = claims["identities"]
    assert identity["providerType"] == "LoginWithAmazon"
    assert identity["userId"] == "amzn1.account.AFAKE0000000000000000000000"
    info = userinfo(gatehouse, tokens["access_token"])
    assert info["username"] == username and info["email"] == "ann@amazon.example"
    assert info["address"] == {"formatted": "98109"}  # OpenID Connect Core §5.1.1: an object
    user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
    assert user["UserStatus"] == "EXTERNAL_PROVIDER"


def test_second_sign_in_updates_the_same_user(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, amazon: FakeAmazon
) -> None:
    """Cognito re-applies the attribute mapping on every federated sign-in, to the one linked user."""
    amazon.user = {**amazon.user, "name": "Ann A. Amazon"}
    before = usernames(idp, pool_id)
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="LoginWithAmazon"))
    claims = verified_id_token(
        gatehouse, pool_id, client_id, flow.tokens(query_of(response.headers["Location"])["code"])["id_token"]
    )
    assert claims["name"] == "Ann A. Amazon"
    assert usernames(idp, pool_id) == before


def test_facebook_rejecting_the_proof_is_an_error_redirect_and_no_user(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, facebook: FakeFacebook
) -> None:
    before = usernames(idp, pool_id)
    facebook.user = {**facebook.user, "id": "10158000000000099"}
    secret = facebook.client_secret
    facebook.client_secret = "rotated-secret"  # the app secret changed at Facebook: codes are refused too
    try:
        flow = Flow(gatehouse, client_id)
        response = flow.run(flow.authorize_url(identity_provider="Facebook"))
    finally:
        facebook.client_secret = secret
    assert response.status_code == 303
    answer = query_of(response.headers["Location"])
    assert answer["error"] == "invalid_request" and "code" not in answer and answer["state"] == "app-state-1"
    assert usernames(idp, pool_id) == before


def test_amazon_profile_without_user_id_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, amazon: FakeAmazon
) -> None:
    before = usernames(idp, pool_id)
    saved = amazon.user
    amazon.user = {"name": "Nobody", "email": "nobody@amazon.example"}
    try:
        flow = Flow(gatehouse, client_id)
        response = flow.run(flow.authorize_url(identity_provider="LoginWithAmazon"))
    finally:
        amazon.user = saved
    assert response.status_code == 303
    answer = query_of(response.headers["Location"])
    assert answer["error"] == "invalid_request" and "code" not in answer
    assert usernames(idp, pool_id) == before


def test_replayed_callback_is_refused(gatehouse: GatehouseServer, client_id: str, facebook: FakeFacebook) -> None:
    flow = Flow(gatehouse, client_id)
    first = flow.http.get(flow.authorize_url(identity_provider="Facebook"), allow_redirects=False)
    upstream = flow.http.get(first.headers["Location"], allow_redirects=False)
    callback = upstream.headers["Location"]
    assert flow.http.get(callback, allow_redirects=False).status_code == 303
    again = flow.http.get(callback, allow_redirects=False)
    assert again.status_code == 400 and "text/html" in again.headers["Content-Type"]
    assert "Traceback" not in again.text
