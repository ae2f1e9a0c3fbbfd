"""The OpenID Provider's edges, against a real server.

Revocation (RFC 7009 §2.2.1): an ID token is ``unsupported_token_type`` and revokes nothing; only refresh and
access tokens end a token family. An ID token is handed to parties that must not sign its user out everywhere.

The implicit response names the granted scopes (RFC 6749 §4.2.2: ``scope`` is REQUIRED when fewer were granted
than asked for).

The end_session_endpoint (``/logout``) takes POST as well as GET (RP-Initiated Logout 1.0 §2), and asks the
user before ending the session when nothing shows the request comes from the signed-in user's application
(no ``id_token_hint``, or one naming someone else): otherwise any page could sign its visitors out. Cognito's
own forms (``logout_uri``; ``redirect_uri`` + ``response_type``) still sign out at once.

A single-valued authorization parameter sent twice (``response_mode``, ``ui_locales``, ...) is
``invalid_request`` (RFC 6749 §3.1).

An authorization request that sent no ``redirect_uri`` (the client's DefaultRedirectURI answered it) is
redeemed without one (RFC 6749 §4.1.3); one that sent it must send it again, and leaving it out is
``invalid_request`` without using the code up.

The discovery document and the JWKS answer a CORS preflight.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import pytest
import requests

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


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    made = make_pool(idp, gatehouse.url, "oidc-edges")
    make_user(idp, made.pool_id, "alice")
    make_user(idp, made.pool_id, "bob")
    return made


def _sign_in(gatehouse: GatehouseServer, pool: OAuthPool, user: str = "alice") -> tuple[Browser, dict[str, Any]]:
    """A browser signed in to the hosted UI as ``user``, and the public client's tokens from that sign-in."""
    browser = Browser(gatehouse.url)
    verifier, challenge = pkce_pair()
    url = browser.authorize_url(
        pool.public_id,
        prefix=f"/{pool.pool_id}",
        scope="openid email",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    back = browser.sign_in(url, user)
    code = query_of(back.headers["Location"])["code"]
    tokens = requests.post(
        f"{pool.issuer}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": pool.public_id,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    return browser, tokens.json()


def _signed_in(browser: Browser, pool: OAuthPool) -> bool:
    """Whether the browser's hosted-UI session still answers a silent authorization request."""
    _, challenge = pkce_pair()
    url = browser.authorize_url(
        pool.public_id,
        prefix=f"/{pool.pool_id}",
        scope="openid",
        code_challenge=challenge,
        code_challenge_method="S256",
        prompt="none",
    )
    answer = query_of(browser.get(url).headers["Location"])
    assert "code" in answer or answer.get("error") == "login_required", answer
    return "code" in answer


# --- revocation ---------------------------------------------------------------------------------------------


def test_an_id_token_revokes_nothing(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """A public client is authenticated by its client_id alone, which an ID token names (aud): whoever the ID
    token was shown to could otherwise end its user's sessions. RFC 7009 §2.2.1's unsupported_token_type, as the
    RevokeToken API refuses it; the refresh and access tokens keep working. An access token still revokes."""
    _, tokens = _sign_in(gatehouse, pool)
    aud = jwt.decode(tokens["id_token"], options={"verify_signature": False})["aud"]
    refused = requests.post(
        f"{pool.issuer}/oauth2/revoke", data={"token": tokens["id_token"], "client_id": aud}, timeout=10
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "unsupported_token_type"
    info = requests.get(
        f"{pool.issuer}/oauth2/userInfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    )
    assert info.status_code == 200, info.text
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": pool.public_id}
    refreshed = requests.post(f"{pool.issuer}/oauth2/token", data=refresh, timeout=10)
    assert refreshed.status_code == 200, refreshed.text

    revoked = requests.post(
        f"{pool.issuer}/oauth2/revoke", data={"token": tokens["access_token"], "client_id": pool.public_id}, timeout=10
    )
    assert revoked.status_code == 200, revoked.text
    assert requests.post(f"{pool.issuer}/oauth2/token", data=refresh, timeout=10).status_code == 400


# --- the implicit response's scope --------------------------------------------------------------------------


def test_the_implicit_response_names_the_granted_scopes(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    client = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="implicit",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["implicit"],
        AllowedOAuthScopes=["openid", "email"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]
    browser = Browser(gatehouse.url)
    url = browser.authorize_url(
        client, prefix=f"/{pool.pool_id}", response_type="token", scope="openid email phone other/scope", state="s"
    )
    answer = fragment_of(browser.sign_in(url, "alice").headers["Location"])
    assert answer["scope"] == "openid email", answer
    assert jwt.decode(answer["access_token"], options={"verify_signature": False})["scope"] == "openid email"


# --- the end_session_endpoint -------------------------------------------------------------------------------


def test_logout_takes_post(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """RP-Initiated Logout 1.0 §2: "OPs MUST support the use of the HTTP GET and POST methods at the Logout
    Endpoint". A hint naming the signed-in user ends the session at once."""
    browser, tokens = _sign_in(gatehouse, pool)
    form = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGOUT, "state": "bye"}
    out = browser.post(f"/{pool.pool_id}/logout", form)
    assert out.status_code == 302, out.text
    assert out.headers["Location"] == f"{LOGOUT}?state=bye"
    assert not _signed_in(browser, pool)


def test_a_post_to_logout_without_the_cookie_comes_back_as_a_get(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """An app on another site that POSTs its sign-out form sends no SameSite=Lax session cookie with it: the
    endpoint sends the browser back to itself as a GET (303), which carries the cookie, and the session ends
    there. (tests/e2e/test_oauth_browser.py shows it in Chromium.)"""
    browser, tokens = _sign_in(gatehouse, pool)
    form = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": LOGOUT, "state": "bye"}
    bounced = requests.post(f"{pool.issuer}/logout", data=form, allow_redirects=False, timeout=10)
    assert bounced.status_code == 303, bounced.text
    location = bounced.headers["Location"]
    assert urlsplit(location).path == f"/{pool.pool_id}/logout" and query_of(location) == form
    assert _signed_in(browser, pool)  # nothing ended yet: no session was in sight
    out = browser.get(location)
    assert out.status_code == 302 and out.headers["Location"] == f"{LOGOUT}?state=bye"
    assert not _signed_in(browser, pool)


def test_a_cookieless_post_to_logout_too_long_for_a_url_is_answered_as_it_is(
    gatehouse: GatehouseServer, pool: OAuthPool
) -> None:
    """Parameters that would not fit in a request line the server reads are not sent back in one: the POST is
    answered where it is, as a browser without a session is (the way out, and no cookie)."""
    form = {"post_logout_redirect_uri": LOGOUT, "state": "bye", "client_id": pool.public_id, "padding": "x" * 80_000}
    out = requests.post(f"{pool.issuer}/logout", data=form, allow_redirects=False, timeout=10)
    assert out.status_code == 302, out.text
    assert out.headers["Location"] == f"{LOGOUT}?state=bye"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_without_a_hint_asks_first(gatehouse: GatehouseServer, pool: OAuthPool, method: str) -> None:
    """§2: "the OP MUST ask the End-User this question if an id_token_hint was not provided". Any page can send
    a browser to the logout endpoint with a client_id; the user is asked on a page of ours (CSRF token, no
    framing) and only "Sign out" ends the session, then the browser goes back with its state."""
    browser, _ = _sign_in(gatehouse, pool)
    query = {"client_id": pool.public_id, "post_logout_redirect_uri": LOGOUT, "state": "s-1"}
    if method == "GET":
        asked = browser.get(f"/{pool.pool_id}/logout?{urlencode(query)}")
    else:
        asked = browser.post(f"/{pool.pool_id}/logout", query)
    assert asked.status_code == 200, asked.text
    assert "Sign out?" in asked.text and "Location" not in asked.headers
    assert "frame-ancestors 'none'" in asked.headers["Content-Security-Policy"]
    assert _signed_in(browser, pool)
    out = browser.submit(asked, {"sign_out": "yes"})
    assert out.status_code == 302, out.text
    assert out.headers["Location"] == f"{LOGOUT}?state=s-1"
    assert not _signed_in(browser, pool)


def test_logout_with_another_users_hint_asks_first(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """§2: the question is asked too "if the supplied ID Token does not belong to the current OP session":
    bob's ID token does not sign alice out unasked. "Stay signed in" sends the browser back, session kept."""
    _, bob = _sign_in(gatehouse, pool, "bob")
    browser, _ = _sign_in(gatehouse, pool, "alice")
    query = {"id_token_hint": bob["id_token"], "post_logout_redirect_uri": LOGOUT, "state": "s-2"}
    asked = browser.get(f"/{pool.pool_id}/logout?{urlencode(query)}")
    assert asked.status_code == 200 and "Sign out?" in asked.text, asked.text
    assert _signed_in(browser, pool)
    kept = browser.submit(asked, {"sign_out": "no"})
    assert kept.status_code == 302 and kept.headers["Location"] == f"{LOGOUT}?state=s-2"
    assert _signed_in(browser, pool)
    # With the hint alone (nowhere to go next), the answers end on pages.
    asked = browser.get(f"/{pool.pool_id}/logout?{urlencode({'id_token_hint': bob['id_token']})}")
    assert asked.status_code == 200 and "Sign out?" in asked.text, asked.text
    kept = browser.submit(asked, {"sign_out": "no"})
    assert kept.status_code == 200 and "still signed in" in kept.text
    assert _signed_in(browser, pool)
    out = browser.submit(asked, {"sign_out": "yes"})
    assert out.status_code == 200 and "You have signed out" in out.text, out.text
    assert not _signed_in(browser, pool)


def test_a_forged_answer_signs_nobody_out(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """The answer is taken only from the question's own form (double-submit CSRF token): another site's form
    posting ``sign_out=yes`` is refused."""
    browser, _ = _sign_in(gatehouse, pool)
    form = {"client_id": pool.public_id, "post_logout_redirect_uri": LOGOUT, "sign_out": "yes", "_csrf": "x" * 43}
    refused = browser.post(f"/{pool.pool_id}/logout", form)
    assert refused.status_code == 403 and "Location" not in refused.headers
    assert _signed_in(browser, pool)


def test_cognitos_logout_forms_and_a_sessionless_browser_are_not_asked(
    gatehouse: GatehouseServer, pool: OAuthPool
) -> None:
    """Cognito signs out at once at ``logout_uri`` and at ``redirect_uri`` + ``response_type``; a browser with no
    session has nothing to be asked about."""
    browser, _ = _sign_in(gatehouse, pool)
    out = browser.get(f"/{pool.pool_id}/logout?{urlencode({'client_id': pool.public_id, 'logout_uri': LOGOUT})}")
    assert out.status_code == 302 and out.headers["Location"] == LOGOUT
    assert not _signed_in(browser, pool)
    query = {"client_id": pool.public_id, "post_logout_redirect_uri": LOGOUT, "state": "s-3"}
    out = browser.get(f"/{pool.pool_id}/logout?{urlencode(query)}")
    assert out.status_code == 302 and out.headers["Location"] == f"{LOGOUT}?state=s-3"


# --- repeated parameters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "repeated",
    [
        [("response_mode", "query"), ("response_mode", "fragment")],
        [("ui_locales", "en"), ("ui_locales", "fr")],
        [("acr_values", "a"), ("acr_values", "b")],
    ],
)
def test_a_repeated_authorization_parameter_is_invalid_request(
    gatehouse: GatehouseServer, pool: OAuthPool, repeated: list[tuple[str, str]]
) -> None:
    """RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once"; taking the first
    would answer another request than the one the client (or a proxy in between) read."""
    _, challenge = pkce_pair()
    query = [
        ("client_id", pool.public_id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "s"),
        *repeated,
    ]
    answer = requests.get(
        f"{pool.issuer}/oauth2/authorize?{urlencode(query)}", allow_redirects=False, timeout=10
    ).headers["Location"]
    error = {**query_of(answer), **fragment_of(answer)}
    assert error["error"] == "invalid_request" and repeated[0][0] in error["error_description"], answer


# --- DefaultRedirectURI at the token endpoint ---------------------------------------------------------------


@pytest.fixture(scope="module")
def default_client(idp: Any, pool: OAuthPool) -> tuple[str, str]:
    client = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="default-redirect",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
        DefaultRedirectURI=CALLBACK,
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]
    return client["ClientId"], client["ClientSecret"]


def _code(gatehouse: GatehouseServer, pool: OAuthPool, client_id: str, **params: str) -> str:
    browser = Browser(gatehouse.url)
    query = {"client_id": client_id, "response_type": "code", "scope": "openid", **params}
    back = browser.sign_in(f"/{pool.pool_id}/oauth2/authorize?{urlencode(query)}", "alice")
    return query_of(back.headers["Location"])["code"]


def _redeem(pool: OAuthPool, client: tuple[str, str], code: str, **params: str) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, **params}
    return requests.post(f"{pool.issuer}/oauth2/token", data=data, auth=client, timeout=10)


def test_a_code_for_the_default_redirect_uri_is_redeemed_without_one(
    gatehouse: GatehouseServer, pool: OAuthPool, default_client: tuple[str, str]
) -> None:
    """RFC 6749 §4.1.3: redirect_uri is REQUIRED at the token endpoint "if the "redirect_uri" parameter was
    included in the authorization request". Given there all the same, it must be the one used."""
    redeemed = _redeem(pool, default_client, _code(gatehouse, pool, default_client[0]))
    assert redeemed.status_code == 200, redeemed.text
    redeemed = _redeem(pool, default_client, _code(gatehouse, pool, default_client[0]), redirect_uri=CALLBACK)
    assert redeemed.status_code == 200, redeemed.text
    code = _code(gatehouse, pool, default_client[0])
    wrong = _redeem(pool, default_client, code, redirect_uri=CALLBACK + "/other")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant", wrong.text
    # A wrong one uses the code up, as before.
    assert _redeem(pool, default_client, code).json()["error"] == "invalid_grant"


def test_a_missing_redirect_uri_that_was_sent_is_invalid_request(
    gatehouse: GatehouseServer, pool: OAuthPool, default_client: tuple[str, str]
) -> None:
    """The authorization request sent redirect_uri: the token request must too. A missing parameter is
    invalid_request and does not use the code up (it guesses nothing)."""
    code = _code(gatehouse, pool, default_client[0], redirect_uri=CALLBACK)
    missing = _redeem(pool, default_client, code)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request", missing.text
    redeemed = _redeem(pool, default_client, code, redirect_uri=CALLBACK)
    assert redeemed.status_code == 200, redeemed.text


# --- CORS -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [".well-known/openid-configuration", ".well-known/jwks.json"])
def test_discovery_and_jwks_answer_a_preflight(pool: OAuthPool, path: str) -> None:
    answer = requests.options(
        f"{pool.issuer}/{path}",
        headers={
            "Origin": "https://spa.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-requested-with",
        },
        timeout=10,
    )
    assert answer.status_code == 204, answer.text
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in answer.headers["Access-Control-Allow-Methods"]
    assert answer.headers["Access-Control-Allow-Headers"] == "x-requested-with"
