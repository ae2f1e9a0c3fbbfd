"""A pool's domain serves that pool only, against a real server: a ``/{UserPoolId}`` path naming another pool
is refused there at every endpoint (a Cognito domain belongs to exactly one pool); the server's own host names
no pool also when its Host carries the default port or a final dot (RFC 9110 §4.2.3, RFC 1034 §3.1); and an
absolute-form request target is routed by its authority, not by the Host header (RFC 9112 §3.2.2)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.e2e.oauth_support import CALLBACK, LOGOUT, Browser, OAuthPool, make_pool, make_user, pkce_pair, query_of
from tests.support import GatehouseServer

CERTIFICATE = {"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/routing"}
CUSTOM_A = "login.routing-a.example"
CUSTOM_B = "login.routing-b.example"
PREFIX_A = "routing-a.auth.us-east-1.amazoncognito.com"
PUBLIC = "https://id.example.com"


def _with_domains(idp: Any, pool: OAuthPool, prefix: str, custom: str) -> OAuthPool:
    idp.create_user_pool_domain(UserPoolId=pool.pool_id, Domain=prefix)
    idp.create_user_pool_domain(UserPoolId=pool.pool_id, Domain=custom, CustomDomainConfig=CERTIFICATE)
    return pool


@pytest.fixture(scope="module")
def pool_a(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "routing-a")
    make_user(idp, created.pool_id, "alice")
    return _with_domains(idp, created, "routing-a", CUSTOM_A)


@pytest.fixture(scope="module")
def pool_b(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "routing-b")
    make_user(idp, created.pool_id, "bob")
    return _with_domains(idp, created, "routing-b", CUSTOM_B)


def _authorize_query(client_id: str) -> str:
    _, challenge = pkce_pair()
    return urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": CALLBACK,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )


def _raw(
    port: int, method: str, target: str, headers: dict[str, str], body: str | None = None
) -> tuple[http.client.HTTPResponse, str]:
    """A request with the target exactly as given (origin- or absolute-form) and the Host given."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, target, body=body, headers=headers)
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response, text


def _tokens(gatehouse: GatehouseServer, pool: OAuthPool, username: str) -> dict[str, Any]:
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id, prefix=f"/{pool.pool_id}"), username)
    assert back.status_code == 303, back.text
    data = {"grant_type": "authorization_code", "code": query_of(back.headers["Location"])["code"]}
    response = requests.post(
        f"{pool.issuer}/oauth2/token",
        data={**data, "redirect_uri": CALLBACK},
        auth=(pool.secret_id, pool.secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- a pool's domain, another pool's path ----------------------------------------------------------------------


def test_authorize_on_a_pool_domain_refuses_another_pools_path(
    gatehouse: GatehouseServer, pool_a: OAuthPool, pool_b: OAuthPool
) -> None:
    """``/{B}/oauth2/authorize`` on A's custom or prefix domain is an error page, never B's sign-in; on the
    server's own host and on B's domain it is B's."""
    target = f"/{pool_b.pool_id}/oauth2/authorize?{_authorize_query(pool_b.public_id)}"
    for host in (CUSTOM_A, PREFIX_A, CUSTOM_A.upper() + ".:80"):
        response, _ = _raw(gatehouse.port, "GET", target, {"Host": host})
        assert response.status == 400 and response.getheader("Location") is None, host
    for host in (f"127.0.0.1:{gatehouse.port}", CUSTOM_B):
        response, _ = _raw(gatehouse.port, "GET", target, {"Host": host})
        assert response.status == 302, host
        assert str(response.getheader("Location")).startswith(f"/{pool_b.pool_id}/login?rid="), host


def test_hosted_pages_on_a_pool_domain_refuse_another_pools_path(
    gatehouse: GatehouseServer, pool_a: OAuthPool, pool_b: OAuthPool
) -> None:
    """B's login page and its sign-in POST are not served on A's domain: no password form, SSO cookie or code
    of B's there. The same POST on the server's own host signs in."""
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    login = browser.follow(
        browser.get(
            browser.authorize_url(
                pool_b.public_id, prefix=f"/{pool_b.pool_id}", code_challenge=challenge, code_challenge_method="S256"
            )
        )
    )
    assert login.status_code == 200 and "Sign in" in login.text, login.text
    action = browser.form_action(login)
    page, text = _raw(gatehouse.port, "GET", action, {"Host": CUSTOM_A})
    assert page.status == 400 and "_csrf" not in text
    # The form as the browser would post it, with its CSRF cookie (which the browser keeps for either host).
    body = urlencode({**browser.form_fields(login), "username": "bob", "password": "Correct-Horse-9"})
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"gatehouse_csrf={browser.http.cookies['gatehouse_csrf']}",
    }
    refused, text = _raw(gatehouse.port, "POST", action, {**headers, "Host": CUSTOM_A}, body)
    assert refused.status == 400 and refused.getheader("Location") is None, text
    assert not any("gatehouse_sso_" in cookie for cookie in refused.headers.get_all("Set-Cookie") or [])
    signed_in, _ = _raw(gatehouse.port, "POST", action, {**headers, "Host": f"127.0.0.1:{gatehouse.port}"}, body)
    assert signed_in.status == 303 and str(signed_in.getheader("Location")).startswith(CALLBACK + "?code=")


def test_json_endpoints_on_a_pool_domain_refuse_another_pools_path(
    gatehouse: GatehouseServer, pool_a: OAuthPool, pool_b: OAuthPool
) -> None:
    """On A's domain, ``/{B}/oauth2/token`` and ``/{B}/oauth2/revoke`` answer B's client invalid_client (RFC 6749
    §5.2, RFC 7009 §2.2.1) and ``/{B}/oauth2/userInfo`` B's access token invalid_token (RFC 6750 §3.1), as they
    answer a client or token of another pool; at B's domain all three still serve B."""
    tokens = _tokens(gatehouse, pool_b, "bob")
    auth = (pool_b.secret_id, pool_b.secret)
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    base = f"{gatehouse.url}/{pool_b.pool_id}/oauth2"
    for host in (CUSTOM_A, PREFIX_A):
        token = requests.post(f"{base}/token", data=refresh, auth=auth, headers={"Host": host}, timeout=10)
        assert token.status_code == 401 and token.json()["error"] == "invalid_client", (host, token.text)
        assert token.headers["WWW-Authenticate"].startswith("Basic")
        bearer = {"Authorization": f"Bearer {tokens['access_token']}", "Host": host}
        info = requests.get(f"{base}/userInfo", headers=bearer, timeout=10)
        assert info.status_code == 401 and info.json()["error"] == "invalid_token", (host, info.text)
        assert 'error="invalid_token"' in info.headers["WWW-Authenticate"]
        revoke = requests.post(
            f"{base}/revoke", data={"token": tokens["refresh_token"]}, auth=auth, headers={"Host": host}, timeout=10
        )
        assert revoke.status_code == 401 and revoke.json()["error"] == "invalid_client", (host, revoke.text)
    # Nothing was revoked, and B's domain serves B at the same paths.
    bearer = {"Authorization": f"Bearer {tokens['access_token']}", "Host": CUSTOM_B}
    assert requests.get(f"{base}/userInfo", headers=bearer, timeout=10).json()["username"] == "bob"
    fresh = requests.post(f"{base}/token", data=refresh, auth=auth, headers={"Host": CUSTOM_B}, timeout=10)
    assert fresh.status_code == 200, fresh.text


def test_logout_on_a_pool_domain_refuses_another_pools_path(
    gatehouse: GatehouseServer, pool_a: OAuthPool, pool_b: OAuthPool
) -> None:
    target = f"/{pool_b.pool_id}/logout?{urlencode({'client_id': pool_b.public_id, 'logout_uri': LOGOUT})}"
    response, _ = _raw(gatehouse.port, "GET", target, {"Host": CUSTOM_A})
    assert response.status == 400 and response.getheader("Location") is None
    response, _ = _raw(gatehouse.port, "GET", target, {"Host": CUSTOM_B})
    assert response.status == 302 and response.getheader("Location") == LOGOUT


# --- absolute-form targets (RFC 9112 §3.2.2) --------------------------------------------------------------------


def test_an_absolute_form_target_is_routed_by_its_authority(
    gatehouse: GatehouseServer, pool_a: OAuthPool, pool_b: OAuthPool
) -> None:
    """The target's authority names the domain, whatever the Host header says: B's client is refused at a
    target on A's domain sent with the server's Host, and served at a target on the server sent with A's Host."""
    own = f"127.0.0.1:{gatehouse.port}"
    query = _authorize_query(pool_b.public_id)
    response, _ = _raw(gatehouse.port, "GET", f"http://{CUSTOM_A}/oauth2/authorize?{query}", {"Host": own})
    assert response.status == 400 and response.getheader("Location") is None
    response, _ = _raw(gatehouse.port, "GET", f"http://{own}/oauth2/authorize?{query}", {"Host": CUSTOM_A})
    assert response.status == 302 and str(response.getheader("Location")).startswith("/login?rid=")
    form = {"grant_type": "authorization_code", "code": "x", "redirect_uri": CALLBACK}
    body = urlencode({**form, "client_id": pool_b.secret_id, "client_secret": pool_b.secret})
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for target, host, status, error in (
        (f"http://{CUSTOM_A}/oauth2/token", own, 401, "invalid_client"),
        (f"http://{own}/oauth2/token", CUSTOM_A, 400, "invalid_grant"),
    ):
        response, text = _raw(gatehouse.port, "POST", target, {**headers, "Host": host}, body)
        assert response.status == status and json.loads(text)["error"] == error, (target, text)


# --- the server's own host, however spelt --------------------------------------------------------------------


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """A server behind https://id.example.com, with a pool whose prefix domain is that host's first label."""
    data_dir: Path = tmp_path_factory.mktemp("gatehouse-public") / "data"
    server = GatehouseServer(data_dir, extra_args=["--public-url", PUBLIC])
    server.start()
    yield server
    server.stop()


def test_the_servers_own_host_with_its_default_port_or_a_final_dot_names_no_pool(public: GatehouseServer) -> None:
    """``id.example.com:443`` and ``id.example.com.`` are the server's own host, as ``id.example.com`` is: not
    the prefix domain ``id``; the server serves every pool's clients there. ``id.auth....`` is that domain."""
    idp = public.client()
    prefix_pool = idp.create_user_pool(PoolName="own-host-id")["UserPool"]["Id"]
    idp.create_user_pool_domain(UserPoolId=prefix_pool, Domain="id")
    other = make_pool(idp, PUBLIC, "own-host-other")
    query = _authorize_query(other.public_id)
    for host in ("id.example.com", "id.example.com:443", "id.example.com.", "ID.Example.COM.:443"):
        response, _ = _raw(public.port, "GET", f"/oauth2/authorize?{query}", {"Host": host})
        assert response.status == 302 and str(response.getheader("Location")).startswith("/login?rid="), host
        token = requests.post(
            f"{public.url}/oauth2/token",
            data={"grant_type": "authorization_code", "code": "x", "redirect_uri": CALLBACK},
            auth=(other.secret_id, other.secret),
            headers={"Host": host},
            timeout=10,
        )
        assert token.status_code == 400 and token.json()["error"] == "invalid_grant", (host, token.text)
    response, _ = _raw(
        public.port, "GET", f"/oauth2/authorize?{query}", {"Host": "id.auth.us-east-1.amazoncognito.com"}
    )
    assert response.status == 400 and response.getheader("Location") is None
