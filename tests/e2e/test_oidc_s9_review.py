"""The OpenID Provider as relying parties and browser apps meet it, against a real server.

userInfo's claims: ``address`` a JSON object (OpenID Connect Core §5.1.1), as in the ID token; which claims each
granted scope releases, as Cognito documents its userInfo endpoint ("openid" alone: every attribute the app
client can read; "profile": the profile claims and custom attributes; "email", "phone": their two claims each;
``aws.cognito.signin.user.admin``: no effect on what is returned).
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests

from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, query_of
from tests.support import GatehouseServer

ADMIN = "aws.cognito.signin.user.admin"
SCOPES = ["openid", "email", "phone", "profile", ADMIN]
ATTRIBUTES = {
    "email": "olivia@example.com",
    "email_verified": "true",
    "phone_number": "+15555550100",
    "phone_number_verified": "false",
    "name": "Olivia Oidc",
    "address": "1 Main St, Springfield",
    "custom:tier": "gold",
}


class Pool:
    def __init__(self, pool_id: str, client_id: str, secret: str, issuer: str) -> None:
        self.pool_id = pool_id
        self.client_id = client_id
        self.secret = secret
        self.issuer = issuer


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> Pool:
    pool_id = idp.create_user_pool(
        PoolName="oidc-review",
        Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}],
    )["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=SCOPES,
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="olivia",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in ATTRIBUTES.items()],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="olivia", Password=PASSWORD, Permanent=True)
    return Pool(pool_id, client["ClientId"], client["ClientSecret"], f"{gatehouse.url}/{pool_id}")


def tokens_for(gatehouse: GatehouseServer, pool: Pool, scope: str, **params: str) -> dict[str, Any]:
    """Sign in on the hosted page with ``scope`` and redeem the code (client_secret_basic)."""
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.client_id, scope=scope, **params), "olivia")
    assert back.status_code in (302, 303), back.text
    code = query_of(back.headers["Location"])["code"]
    response = requests.post(
        f"{pool.issuer}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=(pool.client_id, pool.secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def userinfo(pool: Pool, access_token: str) -> dict[str, Any]:
    response = requests.get(
        f"{pool.issuer}/oauth2/userInfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_userinfo_answers_address_as_a_json_object_like_the_id_token(gatehouse: GatehouseServer, pool: Pool) -> None:
    """OpenID Connect Core §5.1.1: ``address`` is a JSON object; the attribute's text is its ``formatted``
    member, in userInfo as in the ID token (an RP that reads ``address.formatted`` must not meet a string)."""
    tokens = tokens_for(gatehouse, pool, "openid profile")
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert id_claims["address"] == {"formatted": ATTRIBUTES["address"]}
    info = userinfo(pool, tokens["access_token"])
    assert info["address"] == {"formatted": ATTRIBUTES["address"]}


def test_openid_alone_releases_every_readable_attribute(gatehouse: GatehouseServer, pool: Pool) -> None:
    """Cognito: an access token with only ``openid`` gets "all user attributes that the app client can read"
    from userInfo, booleans as booleans."""
    info = userinfo(pool, tokens_for(gatehouse, pool, "openid")["access_token"])
    assert info["email"] == ATTRIBUTES["email"] and info["email_verified"] is True
    assert info["phone_number"] == ATTRIBUTES["phone_number"] and info["phone_number_verified"] is False
    assert info["name"] == ATTRIBUTES["name"] and info["custom:tier"] == "gold"
    assert info["address"] == {"formatted": ATTRIBUTES["address"]}
    assert info["username"] == "olivia" and info["sub"]


def test_each_scope_releases_its_claims_and_the_admin_scope_adds_none(gatehouse: GatehouseServer, pool: Pool) -> None:
    """Cognito: "openid email" adds email and email_verified, "openid phone" phone_number and
    phone_number_verified, "openid profile" the profile claims and custom attributes; the reserved
    ``aws.cognito.signin.user.admin`` scope "has no effect on the data returned"."""
    email = userinfo(pool, tokens_for(gatehouse, pool, f"openid email {ADMIN}")["access_token"])
    assert email["email"] == ATTRIBUTES["email"] and email["email_verified"] is True
    assert not {"phone_number", "name", "custom:tier", "address"} & set(email)
    phone = userinfo(pool, tokens_for(gatehouse, pool, "openid phone")["access_token"])
    assert phone["phone_number"] == ATTRIBUTES["phone_number"] and phone["phone_number_verified"] is False
    assert not {"email", "name", "custom:tier"} & set(phone)
    profile = userinfo(pool, tokens_for(gatehouse, pool, "openid profile")["access_token"])
    assert profile["name"] == ATTRIBUTES["name"] and profile["custom:tier"] == "gold"
    assert not {"email", "phone_number"} & set(profile)
