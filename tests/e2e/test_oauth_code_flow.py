"""The authorization code flow end to end with real clients: authlib's OAuth2Session (code + PKCE), PyJWT
verifying the ID token against the pool's JWKS, userInfo, refresh (with rotation), revocation, single sign-on
across two clients, prompt handling, logout, client_credentials with resource-server scopes, implicit flow."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from tests.e2e.oauth_support import (
    CALLBACK,
    LOGOUT,
    Browser,
    OAuthPool,
    fragment_of,
    make_pool,
    make_user,
    pkce_pair,
    query_of,
)
from tests.support import GatehouseServer


@pytest.fixture(scope="module", autouse=True)
def _plain_http_for_authlib() -> Iterator[None]:
    # The test server listens on plain HTTP on loopback; authlib refuses that unless told.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    yield
    os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "code-flow")
    for name in ("alice", "bob", "carol"):
        make_user(idp, created.pool_id, name)
    return created


@pytest.fixture(scope="module")
def discovery(gatehouse: GatehouseServer, pool: OAuthPool) -> dict[str, Any]:
    document: dict[str, Any] = requests.get(f"{pool.issuer}/.well-known/openid-configuration", timeout=10).json()
    return document


def _hash_half(token: str) -> str:
    digest = hashlib.sha256(token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _verify_id_token(discovery: dict[str, Any], token: str, audience: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=audience, issuer=discovery["issuer"]
    )
    return claims


def test_discovery_names_endpoints_that_work(discovery: dict[str, Any], pool: OAuthPool) -> None:
    assert discovery["issuer"] == pool.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(discovery["grant_types_supported"])
    assert {"client_secret_basic", "client_secret_post"} <= set(discovery["token_endpoint_auth_methods_supported"])
    assert "openid" in discovery["scopes_supported"] and "nonce" in discovery["claims_supported"]
    # Each endpoint answers (an error for an empty request, but never a 404 or 405).
    assert requests.get(discovery["authorization_endpoint"], timeout=10).status_code == 400
    assert requests.post(discovery["token_endpoint"], data={}, timeout=10).status_code == 400
    assert requests.get(discovery["userinfo_endpoint"], timeout=10).status_code == 401
    assert requests.post(discovery["revocation_endpoint"], data={}, timeout=10).status_code == 400
    assert requests.get(discovery["end_session_endpoint"], timeout=10).status_code == 400
    assert requests.get(discovery["jwks_uri"], timeout=10).json()["keys"]


def test_authlib_code_flow_with_pkce_and_id_token(
    gatehouse: GatehouseServer, pool: OAuthPool, discovery: dict[str, Any]
) -> None:
    client = OAuth2Session(
        pool.public_id,
        scope="openid email",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier, _ = pkce_pair()
    nonce = "n-" + os.urandom(8).hex()
    url, state = client.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    started = int(time.time())
    back = Browser(gatehouse.url).sign_in(url, "alice")
    assert back.status_code == 303
    callback = back.headers["Location"]
    params = query_of(callback)
    assert params["state"] == state and params["iss"] == pool.issuer  # RFC 9207
    token = client.fetch_token(discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600 and token["refresh_token"]
    claims = _verify_id_token(discovery, token["id_token"], pool.public_id)
    assert claims["nonce"] == nonce
    assert claims["at_hash"] == _hash_half(token["access_token"])
    assert started - 2 <= claims["auth_time"] <= int(time.time()) + 1
    assert claims["cognito:username"] == "alice" and claims["email"] == "alice@example.com"
    access = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert access["scope"] == "openid email" and access["client_id"] == pool.public_id

    info = client.get(discovery["userinfo_endpoint"]).json()
    assert client.post(discovery["userinfo_endpoint"]).json() == info  # POST too (OpenID Connect Core §5.3.1)
    assert info["sub"] == claims["sub"] and info["email"] == "alice@example.com" and info["email_verified"] is True
    assert "name" not in info  # no profile scope


def test_scopes_are_filtered_to_the_clients_and_profile_releases_name(
    gatehouse: GatehouseServer, pool: OAuthPool, discovery: dict[str, Any]
) -> None:
    browser = Browser(gatehouse.url)
    verifier, challenge = pkce_pair()
    url = browser.authorize_url(
        pool.public_id,
        scope="openid profile phone aws.cognito.signin.user.admin https://other/api",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    code = query_of(browser.sign_in(url, "bob").headers["Location"])["code"]
    body = requests.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "client_id": pool.public_id,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        timeout=10,
    ).json()
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert access["scope"] == "openid profile"  # phone, admin and the unknown scope are not the client's
    assert body["scope"] == "openid profile"  # RFC 6749 §5.1: REQUIRED when fewer were granted than asked for
    info = requests.get(
        discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10
    ).json()
    assert info["name"] == "Name of bob" and "email" not in info


def _confidential_code(gatehouse: GatehouseServer, pool: OAuthPool, username: str, scope: str) -> str:
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id, scope=scope), username)
    return query_of(back.headers["Location"])["code"]


def _refresh(discovery: dict[str, Any], pool: OAuthPool, refresh_token: str, **extra: str) -> requests.Response:
    """A refresh_token grant by the confidential client (client_secret_basic); ``scope`` and the like in extra."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return requests.post(discovery["token_endpoint"], data=data, auth=(pool.secret_id, pool.secret), timeout=10)


def test_confidential_client_refresh_rotation_and_revocation(
    gatehouse: GatehouseServer, pool: OAuthPool, discovery: dict[str, Any]
) -> None:
    client = OAuth2Session(pool.secret_id, pool.secret, scope="openid email", redirect_uri=CALLBACK)
    code = _confidential_code(gatehouse, pool, "carol", "openid email")
    token = client.fetch_token(discovery["token_endpoint"], grant_type="authorization_code", code=code)
    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(discovery["token_endpoint"], refresh_token=first_refresh)
    assert refreshed["refresh_token"] != first_refresh  # the client rotates refresh tokens
    access = jwt.decode(refreshed["access_token"], options={"verify_signature": False})
    assert access["scope"] == "openid email"  # the grant's scopes survive the refresh
    claims = _verify_id_token(discovery, refreshed["id_token"], pool.secret_id)
    assert claims["cognito:username"] == "carol"
    # A narrower scope may be asked for (RFC 6749 §6), never a wider one.
    narrower = client.refresh_token(
        discovery["token_endpoint"], refresh_token=refreshed["refresh_token"], scope="openid"
    )
    assert jwt.decode(narrower["access_token"], options={"verify_signature": False})["scope"] == "openid"
    assert narrower["scope"] == "openid" and refreshed["scope"] == "openid email"
    wider = _refresh(discovery, pool, narrower["refresh_token"], scope="openid phone")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    # email comes with openid only, as at the authorization endpoint: alone it is no scope to narrow to.
    email_only = _refresh(discovery, pool, narrower["refresh_token"], scope="email")
    assert email_only.status_code == 400 and email_only.json()["error"] == "invalid_scope"
    # The rotated-out token is refused now (no grace period) and the family is revoked (RFC 9700 §4.14.2).
    reuse = _refresh(discovery, pool, first_refresh)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    info = requests.get(
        discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {refreshed['access_token']}"}, timeout=10
    )
    assert info.status_code == 401 and 'error="invalid_token"' in info.headers["WWW-Authenticate"]


def test_a_family_from_before_families_kept_scopes_refreshes_with_its_grant_record(
    gatehouse: GatehouseServer, pool: OAuthPool, discovery: dict[str, Any]
) -> None:
    """Upgrade path: a token family started before migration 0017 has no scopes of its own; its scopes are in a
    ``grant`` record, and a refresh still grants exactly those."""
    client = OAuth2Session(pool.secret_id, pool.secret, scope="openid email", redirect_uri=CALLBACK)
    code = _confidential_code(gatehouse, pool, "carol", "openid email")
    token = client.fetch_token(discovery["token_endpoint"], grant_type="authorization_code", code=code)
    origin_jti = jwt.decode(token["access_token"], options={"verify_signature": False})["origin_jti"]
    with closing(sqlite3.connect(gatehouse.data_dir / "gatehouse.db", timeout=10)) as db, db:
        # What the older Gatehouse stored: no scopes on the family, a grant record keyed by its origin_jti.
        assert db.execute("UPDATE token_families SET scopes = NULL WHERE origin_jti = ?", (origin_jti,)).rowcount == 1
        db.execute(
            "INSERT INTO oauth_records (kind, key_hash, pool_id, client_id, username_key, data, expires_at) "
            "VALUES ('grant', ?, ?, ?, 'carol', '{\"scopes\": [\"openid\"]}', ?)",
            (origin_jti, pool.pool_id, pool.secret_id, time.time() + 3600),
        )
    answer = _refresh(discovery, pool, token["refresh_token"])  # no scope: the grant's
    assert answer.status_code == 200, answer.text
    refreshed = answer.json()
    assert jwt.decode(refreshed["access_token"], options={"verify_signature": False})["scope"] == "openid"
    wider = _refresh(discovery, pool, refreshed["refresh_token"], scope="openid email")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


def test_revoke_ends_the_refresh_token_and_its_access_tokens(
    gatehouse: GatehouseServer, pool: OAuthPool, discovery: dict[str, Any]
) -> None:
    code = _confidential_code(gatehouse, pool, "alice", "openid")
    body = requests.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": pool.secret_id,
            "client_secret": pool.secret,  # client_secret_post
        },
        timeout=10,
    ).json()
    # Another client may not revoke it (RFC 7009 §2.1).
    other = requests.post(
        discovery["revocation_endpoint"],
        data={"token": body["refresh_token"], "client_id": pool.public_id},
        timeout=10,
    )
    assert other.status_code == 400 and other.json()["error"] == "unauthorized_client"
    assert requests.get(
        discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10
    ).ok
    revoked = requests.post(
        discovery["revocation_endpoint"],
        data={"token": body["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(pool.secret_id, pool.secret),
        timeout=10,
    )
    assert revoked.status_code == 200
    # Unknown tokens are not an error (RFC 7009 §2.2).
    unknown = requests.post(
        discovery["revocation_endpoint"], data={"token": "not-a-token"}, auth=(pool.secret_id, pool.secret), timeout=10
    )
    assert unknown.status_code == 200
    again = _refresh(discovery, pool, body["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    info = requests.get(
        discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=10
    )
    assert info.status_code == 401


def test_client_authentication_failures(gatehouse: GatehouseServer, pool: OAuthPool, discovery: dict[str, Any]) -> None:
    code = _confidential_code(gatehouse, pool, "bob", "openid")
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    wrong = requests.post(discovery["token_endpoint"], data=base, auth=(pool.secret_id, "wrong"), timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")
    assert wrong.headers["Cache-Control"] == "no-store"
    missing = requests.post(discovery["token_endpoint"], data={**base, "client_id": pool.secret_id}, timeout=10)
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"
    both = requests.post(
        discovery["token_endpoint"],
        data={**base, "client_secret": pool.secret},
        auth=(pool.secret_id, pool.secret),
        timeout=10,
    )
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    unsupported = requests.post(
        discovery["token_endpoint"], data={"grant_type": "password"}, auth=(pool.secret_id, pool.secret), timeout=10
    )
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"
    # None of that used the code up.
    ok = requests.post(discovery["token_endpoint"], data=base, auth=(pool.secret_id, pool.secret), timeout=10)
    assert ok.status_code == 200 and ok.json()["id_token"]


def test_single_sign_on_prompt_and_logout(
    gatehouse: GatehouseServer, pool: OAuthPool, discovery: dict[str, Any]
) -> None:
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    pkce = {"code_challenge": challenge, "code_challenge_method": "S256"}
    # prompt=none without a session: login_required, back at the client with state and iss.
    none = browser.get(browser.authorize_url(pool.public_id, prompt="none", state="s0", **pkce))
    assert none.status_code == 302
    assert query_of(none.headers["Location"]) == {"error": "login_required", "state": "s0", "iss": pool.issuer} | {
        "error_description": query_of(none.headers["Location"])["error_description"]
    }
    first = browser.sign_in(browser.authorize_url(pool.public_id, **pkce), "alice")
    assert "code" in query_of(first.headers["Location"])
    sso_cookie = next(c for c in browser.http.cookies if c.name.startswith("gatehouse_sso_"))
    assert sso_cookie.has_nonstandard_attr("HttpOnly") and sso_cookie.path == "/"
    # The other client of the pool: no password asked.
    second = browser.get(browser.authorize_url(pool.secret_id, prompt="none", state="s2"))
    assert second.status_code == 302 and query_of(second.headers["Location"])["state"] == "s2"
    assert "code" in query_of(second.headers["Location"])
    # prompt=login asks again even with the session.
    again = browser.follow(browser.get(browser.authorize_url(pool.secret_id, prompt="login")))
    assert again.status_code == 200 and 'name="password"' in again.text
    # An unregistered logout URI is refused with a page, and the session survives it.
    bad = browser.get(f"/logout?{urlencode({'client_id': pool.public_id, 'logout_uri': 'https://evil.example/'})}")
    assert bad.status_code == 400 and "text/html" in bad.headers["Content-Type"] and "Location" not in bad.headers
    assert browser.get(browser.authorize_url(pool.secret_id, prompt="none")).headers["Location"].count("code=") == 1
    out = browser.get(f"/logout?{urlencode({'client_id': pool.public_id, 'logout_uri': LOGOUT})}")
    assert out.status_code == 302 and out.headers["Location"] == LOGOUT
    after = browser.get(browser.authorize_url(pool.secret_id, prompt="none"))
    assert query_of(after.headers["Location"])["error"] == "login_required"
    # The redirect_uri + response_type form signs out and starts a new sign-in.
    relogin = browser.get(
        "/logout?" + urlencode({"client_id": pool.secret_id, "redirect_uri": CALLBACK, "response_type": "code"})
    )
    assert relogin.status_code == 302 and "/oauth2/authorize?" in relogin.headers["Location"]
    assert browser.follow(relogin).status_code == 200


def test_client_credentials_with_resource_server_scopes(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, discovery: dict[str, Any]
) -> None:
    idp.create_resource_server(
        UserPoolId=pool.pool_id,
        Identifier="https://api.example.com",
        Name="api",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "Read"}, {"ScopeName": "write", "ScopeDescription": "W"}],
    )
    machine = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="machine",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["https://api.example.com/read", "https://api.example.com/write"],
    )["UserPoolClient"]
    auth = (machine["ClientId"], machine["ClientSecret"])
    client = OAuth2Session(machine["ClientId"], machine["ClientSecret"], scope="https://api.example.com/read")
    token = client.fetch_token(discovery["token_endpoint"], grant_type="client_credentials")
    assert "id_token" not in token and "refresh_token" not in token
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token["access_token"])
    claims = jwt.decode(token["access_token"], key.key, algorithms=["RS256"], issuer=pool.issuer)
    assert claims["scope"] == "https://api.example.com/read" and claims["sub"] == machine["ClientId"]
    assert claims["token_use"] == "access" and "username" not in claims
    all_scopes = requests.post(discovery["token_endpoint"], data={"grant_type": "client_credentials"}, auth=auth)
    assert jwt.decode(all_scopes.json()["access_token"], options={"verify_signature": False})["scope"].split() == [
        "https://api.example.com/read",
        "https://api.example.com/write",
    ]
    assert all_scopes.json()["scope"] == "https://api.example.com/read https://api.example.com/write"
    wider = requests.post(
        discovery["token_endpoint"], data={"grant_type": "client_credentials", "scope": "openid"}, auth=auth
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    # No user behind it: userInfo refuses the token.
    info = requests.get(discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {token['access_token']}"})
    assert info.status_code in (401, 403)
    # A code-flow client may not use client_credentials.
    refused = requests.post(
        discovery["token_endpoint"], data={"grant_type": "client_credentials"}, auth=(pool.secret_id, pool.secret)
    )
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"


def test_implicit_flow_only_when_enabled(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    browser = Browser(gatehouse.url)
    refused = browser.get(browser.authorize_url(pool.secret_id, response_type="token", state="x"))
    assert refused.status_code == 302
    assert fragment_of(refused.headers["Location"])["error"] == "unauthorized_client"
    implicit = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="implicit",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["implicit"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
    )["UserPoolClient"]
    back = browser.sign_in(browser.authorize_url(implicit["ClientId"], response_type="token", state="i1"), "alice")
    params = fragment_of(back.headers["Location"])
    assert params["state"] == "i1" and params["token_type"] == "Bearer" and params["iss"] == pool.issuer
    assert "refresh_token" not in params and params["access_token"] and params["id_token"]


def test_authlib_reports_an_error_for_a_used_code(
    gatehouse: GatehouseServer, pool: OAuthPool, discovery: dict[str, Any]
) -> None:
    client = OAuth2Session(pool.secret_id, pool.secret, redirect_uri=CALLBACK)
    code = _confidential_code(gatehouse, pool, "bob", "openid")
    client.fetch_token(discovery["token_endpoint"], grant_type="authorization_code", code=code)
    with pytest.raises(OAuthError) as raised:
        client.fetch_token(discovery["token_endpoint"], grant_type="authorization_code", code=code)
    assert raised.value.error == "invalid_grant"


def test_authorize_by_post_with_identity_provider_cognito(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    form = {
        "client_id": pool.public_id,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "identity_provider": "COGNITO",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "posted",
    }
    started = browser.post("/oauth2/authorize", form)
    assert started.status_code == 302 and "/login?rid=" in started.headers["Location"]
    back = browser.submit(browser.follow(started), {"username": "alice", "password": "Correct-Horse-9"})
    assert back.status_code == 303 and query_of(back.headers["Location"])["state"] == "posted"
    # Cognito's hosted UI link (/login with the OAuth parameters) starts at the authorization endpoint.
    cognito_style = browser.get("/login?" + urlencode({k: v for k, v in form.items() if k != "identity_provider"}))
    assert cognito_style.status_code == 302 and "/oauth2/authorize?" in cognito_style.headers["Location"]


def test_max_age_asks_again_after_the_session_is_older(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    browser = Browser(gatehouse.url)
    first = browser.sign_in(browser.authorize_url(pool.secret_id), "bob")
    assert first.status_code == 303
    recent = browser.get(browser.authorize_url(pool.secret_id, max_age="3600", prompt="none"))
    assert "code" in query_of(recent.headers["Location"])
    time.sleep(1.1)
    too_old = browser.get(browser.authorize_url(pool.secret_id, max_age="0", prompt="none", state="m"))
    assert query_of(too_old.headers["Location"])["error"] == "login_required"
    asked = browser.follow(browser.get(browser.authorize_url(pool.secret_id, max_age="0")))
    assert asked.status_code == 200 and 'name="password"' in asked.text
