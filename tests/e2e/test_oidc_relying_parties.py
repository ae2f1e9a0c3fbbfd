"""The OpenID Provider as relying parties and browser apps meet it, against a real server.

userInfo's claims: ``address`` a JSON object (OpenID Connect Core §5.1.1), as in the ID token; which claims each
granted scope releases, as Cognito documents its userInfo endpoint ("openid" alone: every attribute the app
client can read; "profile": the profile claims and custom attributes; "email", "phone": their two claims each;
``aws.cognito.signin.user.admin``: no effect on what is returned).

At ``/logout`` (discovery's ``end_session_endpoint``), an expired ID token is still a good ``id_token_hint``
(OpenID Connect RP-Initiated Logout 1.0 §2): relying parties send the one they kept, often hours old. And
``post_logout_redirect_uri`` is optional there: a hint alone ends the session and shows a signed-out page.

An ``updated_at`` no 64-bit integer holds (the attribute is a Number bounded only below) does not make every
sign-in of its user fail: it stays text in the claims.

``/oauth2/revoke`` for an app client with token revocation turned off answers as Cognito documents: HTTP 400
``invalid_request``.

An ``id_token_hint`` at the authorization endpoint (OpenID Connect Core §3.1.2.1) names the user the client
expects: the browser's single sign-on session answers for that user only.

Browser apps: Cognito's token endpoint answers ``Access-Control-Allow-Origin: *`` so a single-page app (a public
client with PKCE) can redeem its code cross-origin; the endpoints such an app calls next (userInfo with its
bearer token, which needs a CORS preflight, revocation at sign-out) and the discovery document and JWKS its OIDC
library reads first answer it the same way. None of them reads a cookie, so no credentials are ever allowed.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
import requests

from gateway.secretbox import SecretBox
from tests.e2e.oauth_support import CALLBACK, LOGOUT, PASSWORD, Browser, query_of
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
        PoolName="oidc-rp",
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
        LogoutURLs=[LOGOUT],
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


def tokens_for(
    gatehouse: GatehouseServer, pool: Pool, scope: str, *, username: str = "olivia", browser: Browser | None = None
) -> dict[str, Any]:
    """Sign in on the hosted page with ``scope`` and redeem the code (client_secret_basic)."""
    browser = browser or Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.client_id, scope=scope), username)
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


APP_ORIGIN = "https://spa.example.com"


def test_a_browser_app_may_call_the_token_userinfo_and_revocation_endpoints_cross_origin(
    gatehouse: GatehouseServer, pool: Pool
) -> None:
    """What fetch() in a single-page app on another origin needs: the preflight of a request with an
    Authorization header answered with the method and header allowed, and every answer (errors included, so
    the app can read ``error``) carrying ``Access-Control-Allow-Origin``; never ``...-Allow-Credentials``."""
    origin = {"Origin": APP_ORIGIN}
    for path, method, headers in (
        ("/oauth2/userInfo", "GET", "authorization"),
        ("/oauth2/token", "POST", "authorization, content-type"),
        ("/oauth2/revoke", "POST", "content-type"),
    ):
        for prefix in ("", f"/{pool.pool_id}"):
            preflight = requests.options(
                f"{gatehouse.url}{prefix}{path}",
                headers={**origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
                timeout=10,
            )
            assert preflight.status_code in (200, 204), (path, preflight.status_code, preflight.text)
            assert preflight.headers["Access-Control-Allow-Origin"] == "*"
            assert method in preflight.headers["Access-Control-Allow-Methods"]
            allowed = {h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
            assert {h.strip() for h in headers.split(",")} <= allowed
            assert "Access-Control-Allow-Credentials" not in preflight.headers
    tokens = tokens_for(gatehouse, pool, "openid email")
    info = requests.get(
        f"{pool.issuer}/oauth2/userInfo",
        headers={**origin, "Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert info.status_code == 200 and info.headers["Access-Control-Allow-Origin"] == "*"
    refused = requests.get(
        f"{pool.issuer}/oauth2/userInfo", headers={**origin, "Authorization": "Bearer x"}, timeout=10
    )
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "*"
    # The challenge is the error a script has to read (RFC 6750 §3): exposed to it.
    assert "www-authenticate" in refused.headers["Access-Control-Expose-Headers"].lower()
    bad_grant = requests.post(
        f"{pool.issuer}/oauth2/token",
        data={"grant_type": "authorization_code", "code": "nope", "redirect_uri": CALLBACK, "client_id": "x"},
        headers=origin,
        timeout=10,
    )
    assert bad_grant.status_code in (400, 401) and bad_grant.headers["Access-Control-Allow-Origin"] == "*"
    revoked = requests.post(
        f"{pool.issuer}/oauth2/revoke",
        data={"token": tokens["refresh_token"]},
        auth=(pool.client_id, pool.secret),
        headers=origin,
        timeout=10,
    )
    assert revoked.status_code == 200 and revoked.headers["Access-Control-Allow-Origin"] == "*"


def test_a_browser_app_may_read_discovery_and_the_jwks_cross_origin(gatehouse: GatehouseServer, pool: Pool) -> None:
    """oidc-client-ts and the like read the discovery document and the JWKS from the browser first."""
    for path in ("/.well-known/openid-configuration", "/.well-known/jwks.json"):
        answer = requests.get(f"{pool.issuer}{path}", headers={"Origin": APP_ORIGIN}, timeout=10)
        assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in answer.headers


def test_an_id_token_hint_for_another_user_is_not_answered_from_the_session(
    gatehouse: GatehouseServer, pool: Pool, idp: Any
) -> None:
    """A relying party renewing silently (``prompt=none``) sends the ID token of the user it signed in. When
    the browser's hosted-UI session is someone else's (the other user signed in since), OpenID Connect Core
    §3.1.2.1 says to answer ``login_required``, not a code for that other user; without ``prompt=none`` the
    sign-in page is shown. A hint naming the session's own user is answered from the session."""
    idp.admin_create_user(UserPoolId=pool.pool_id, Username="peter", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool.pool_id, Username="peter", Password=PASSWORD, Permanent=True)
    peter_id_token = tokens_for(gatehouse, pool, "openid", username="peter")["id_token"]
    browser = Browser(gatehouse.url)
    olivia_id_token = tokens_for(gatehouse, pool, "openid", browser=browser)["id_token"]  # the session: olivia

    silent = browser.get(
        browser.authorize_url(pool.client_id, scope="openid", prompt="none", state="s1", id_token_hint=peter_id_token)
    )
    assert silent.status_code == 302
    answer = query_of(silent.headers["Location"])
    assert answer.get("error") == "login_required" and "code" not in answer and answer["state"] == "s1"
    shown = browser.get(browser.authorize_url(pool.client_id, scope="openid", id_token_hint=peter_id_token))
    assert shown.status_code == 302 and "/login?" in shown.headers["Location"]

    own = browser.get(
        browser.authorize_url(pool.client_id, scope="openid", prompt="none", id_token_hint=olivia_id_token)
    )
    assert own.status_code == 302 and "code" in query_of(own.headers["Location"])


def forged(gatehouse: GatehouseServer, pool_id: str, claims: dict[str, Any]) -> str:
    """A token signed with the pool's real ID-token key (read from the data dir, as only the operator could):
    an ID token of the pool with the lifetime the test needs."""
    box = SecretBox(bytes.fromhex((gatehouse.data_dir / "secret.key").read_text().strip()))
    with sqlite3.connect(gatehouse.data_dir / "gatehouse.db") as db:
        kid, sealed = db.execute(
            "SELECT kid, private_jwk FROM signing_keys WHERE pool_id = ? AND token_use = 'id' AND active = 1",
            (pool_id,),
        ).fetchone()
    key = jwt.algorithms.RSAAlgorithm.from_jwk(box.open(sealed, aad=kid.encode()).decode())
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


def test_logout_takes_an_expired_id_token_as_the_hint_naming_the_client(gatehouse: GatehouseServer, pool: Pool) -> None:
    """RP-Initiated Logout 1.0 §2: "The OP SHOULD accept ID Tokens when the RP identified by the ID Token's aud
    claim ... had a recent session at the OP, even when the exp time has passed." A relying party that names
    itself only by the hint (Spring Security's logout handler sends id_token_hint and post_logout_redirect_uri)
    logs its user out with the ID token it kept, long expired by then. A hint with a signature that is not the
    pool's is still refused."""
    claims = jwt.decode(tokens_for(gatehouse, pool, "openid")["id_token"], options={"verify_signature": False})
    now = int(time.time())
    expired = forged(gatehouse, pool.pool_id, {**claims, "iat": now - 7200, "exp": now - 3600})
    browser = Browser(gatehouse.url)
    out = browser.get(
        f"/{pool.pool_id}/logout?"
        + urlencode({"id_token_hint": expired, "post_logout_redirect_uri": LOGOUT, "state": "bye"})
    )
    assert out.status_code == 302, out.text
    assert out.headers["Location"] == f"{LOGOUT}?state=bye"
    header, payload, signature = expired.split(".")
    refused = browser.get(
        f"/{pool.pool_id}/logout?"
        + urlencode({"id_token_hint": f"{header}.{payload}.{signature[::-1]}", "post_logout_redirect_uri": LOGOUT})
    )
    assert refused.status_code == 400 and "Location" not in refused.headers


def test_revocation_turned_off_for_the_client_is_invalid_request(
    gatehouse: GatehouseServer, pool: Pool, idp: Any
) -> None:
    """Cognito's revocation endpoint: "If the token isn't present in the request or if the feature is
    disabled for the app client, you receive an HTTP 400 and error invalid_request." (unsupported_token_type
    is its answer for a token type it does not revoke, which would send a client looking for another type.)"""
    client = idp.create_user_pool_client(
        UserPoolId=pool.pool_id, ClientName="no-revocation", GenerateSecret=True, EnableTokenRevocation=False
    )["UserPoolClient"]
    answer = requests.post(
        f"{pool.issuer}/oauth2/revoke",
        data={"token": "a-refresh-token"},
        auth=(client["ClientId"], client["ClientSecret"]),
        timeout=10,
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request", answer.text


def test_an_updated_at_past_64_bits_does_not_break_sign_in(gatehouse: GatehouseServer, pool: Pool, idp: Any) -> None:
    """updated_at is a Number attribute with only a minimum (0), so the API stores 10**23; the ID token and
    userInfo carry it as a number where a signed 64-bit integer holds it (OpenID Connect Core §5.1), and as
    its text otherwise, rather than failing every sign-in of the user with a 500."""
    idp.admin_create_user(
        UserPoolId=pool.pool_id,
        Username="una",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "updated_at", "Value": "100000000000000000000000"}],
    )
    idp.admin_set_user_password(UserPoolId=pool.pool_id, Username="una", Password=PASSWORD, Permanent=True)
    tokens = tokens_for(gatehouse, pool, "openid profile", username="una")
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert id_claims["updated_at"] == "100000000000000000000000"
    assert userinfo(pool, tokens["access_token"])["updated_at"] == "100000000000000000000000"
    idp.admin_update_user_attributes(
        UserPoolId=pool.pool_id, Username="una", UserAttributes=[{"Name": "updated_at", "Value": "1700000000"}]
    )
    tokens = tokens_for(gatehouse, pool, "openid profile", username="una")
    assert userinfo(pool, tokens["access_token"])["updated_at"] == 1700000000


def test_logout_with_only_an_id_token_hint_ends_the_session(gatehouse: GatehouseServer, pool: Pool) -> None:
    """RP-Initiated Logout 1.0 §2: ``post_logout_redirect_uri`` is OPTIONAL (oidc-client-ts's and Spring's
    sign-out send none unless one is configured). A request with a valid ``id_token_hint`` and nowhere to go
    next ends the hosted-UI session and says so; it must not leave the user signed in behind an error page,
    where the next authorization request would sign them in again without a password."""
    browser = Browser(gatehouse.url)
    id_token = tokens_for(gatehouse, pool, "openid", browser=browser)["id_token"]
    silent = browser.get(browser.authorize_url(pool.client_id, scope="openid", prompt="none"))
    assert "code" in query_of(silent.headers["Location"])  # signed in at the hosted UI

    out = browser.get(f"/{pool.pool_id}/logout?{urlencode({'id_token_hint': id_token})}")
    assert out.status_code == 200 and "signed out" in out.text.lower(), out.text
    silent = browser.get(browser.authorize_url(pool.client_id, scope="openid", prompt="none"))
    assert query_of(silent.headers["Location"]).get("error") == "login_required"
    # A hint that is no ID token of the pool is still refused, and ends nothing.
    assert browser.get(f"/{pool.pool_id}/logout?{urlencode({'id_token_hint': 'garbage'})}").status_code == 400
