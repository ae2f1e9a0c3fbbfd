"""Behind an HTTPS public URL (a TLS-terminating proxy in front): the hosted UI's cookies are Secure, HttpOnly
and SameSite=Lax, and the discovery document names the public endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.oauth_support import PASSWORD, Browser, OAuthPool, make_pool, make_user, pkce_pair
from tests.support import GatehouseServer

PUBLIC = "https://id.example.com"


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(data_dir, extra_args=["--public-url", PUBLIC])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "public-url")
    make_user(idp, created.pool_id, "lena")
    return created


def test_discovery_names_the_public_endpoints(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    document = requests.get(f"{gatehouse.url}/{pool.pool_id}/.well-known/openid-configuration", timeout=10).json()
    assert document["issuer"] == f"{PUBLIC}/{pool.pool_id}"
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "revocation_endpoint"):
        assert document[name].startswith(f"{PUBLIC}/{pool.pool_id}/oauth2/")
    assert document["end_session_endpoint"] == f"{PUBLIC}/{pool.pool_id}/logout"


def test_cookies_are_secure_httponly_and_lax(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    page = browser.follow(
        browser.get(browser.authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256"))
    )
    csrf_cookie = page.headers["Set-Cookie"]
    assert csrf_cookie.startswith("__Host-gatehouse_csrf=")  # only this host may set it (RFC 6265bis §4.1.3.2)
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in csrf_cookie
    # requests keeps Secure cookies from plain HTTP: send the token back by hand, as the proxy's browser would.
    token = csrf_cookie.split("__Host-gatehouse_csrf=", 1)[1].split(";", 1)[0]
    signed_in = browser.http.post(
        gatehouse.url + browser.form_action(page),
        data={**browser.form_fields(page), "username": "lena", "password": PASSWORD},
        cookies={"__Host-gatehouse_csrf": token},
        allow_redirects=False,
        timeout=10,
    )
    assert signed_in.status_code == 303
    sso = signed_in.headers["Set-Cookie"]
    assert sso.startswith(f"__Host-gatehouse_sso_{pool.pool_id}=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Max-Age=3600"):
        assert attribute in sso
    assert signed_in.headers["Location"].split("iss=", 1)[1].startswith("https%3A%2F%2Fid.example.com")
