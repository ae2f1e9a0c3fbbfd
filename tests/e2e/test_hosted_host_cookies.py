"""Behind an https public URL the hosted pages' cookies are ``__Host-`` cookies (RFC 6265bis §4.1.3.2), and a
cookie of the bare name -- what a sibling host (app.example.com beside auth.example.com) can plant with
``Domain=example.com`` -- is never honoured: it cannot forge the CSRF double submission, fix the browser's SSO
session to another account, or stand for the browser that started a federated sign-in (login CSRF)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.federation_support import Flow, usernames
from tests.e2e.oauth_support import (
    CALLBACK,
    LOGOUT,
    PASSWORD,
    Browser,
    OAuthPool,
    make_pool,
    make_user,
    pkce_pair,
    query_of,
)
from tests.fakes.oauth import FakeGoogle
from tests.support import GatehouseServer

PUBLIC = "https://auth.example.com"


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(data_dir, extra_args=["--public-url", PUBLIC])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any, google: FakeGoogle) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "host-cookies")
    make_user(idp, created.pool_id, "lena")
    make_user(idp, created.pool_id, "mallory")
    idp.create_identity_provider(
        UserPoolId=created.pool_id, ProviderName="Google", ProviderType="Google",
        ProviderDetails=google.provider_details(), AttributeMapping={"email": "email"},
    )  # fmt: skip
    idp.update_user_pool_client(
        UserPoolId=created.pool_id,
        ClientId=created.public_id,
        ClientName="spa",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"],
        CallbackURLs=[CALLBACK],
        LogoutURLs=[LOGOUT],
        SupportedIdentityProviders=["COGNITO", "Google"],
    )
    return created


def _cookie(response: requests.Response, name: str) -> tuple[str, str]:
    """The value and the attributes of the Set-Cookie for ``name``."""
    for header in response.raw.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            value, _, attributes = header[len(name) + 1 :].partition(";")
            return value, attributes
    raise AssertionError(f"no {name} cookie in {response.headers}")


def _login_page(gatehouse: GatehouseServer, pool: OAuthPool) -> requests.Response:
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    answer = browser.get(browser.authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256"))
    assert answer.status_code == 302 and "/login?rid=" in answer.headers["Location"]
    page = browser.get(answer.headers["Location"])
    assert page.status_code == 200
    return page


def _sign_in(gatehouse: GatehouseServer, pool: OAuthPool, username: str) -> str:
    """Sign in on the page (the CSRF token sent back under the cookie's real name); the SSO cookie's value."""
    page = _login_page(gatehouse, pool)
    token, attributes = _cookie(page, "__Host-gatehouse_csrf")
    assert {"Secure", "HttpOnly", "Path=/", "SameSite=Lax"} <= {a.strip() for a in attributes.split(";")}
    assert "domain" not in attributes.lower()
    signed_in = requests.post(
        gatehouse.url + Browser.form_action(page),
        data={**Browser.form_fields(page), "username": username, "password": PASSWORD},
        cookies={"__Host-gatehouse_csrf": token},
        allow_redirects=False,
        timeout=10,
    )
    assert signed_in.status_code == 303 and signed_in.headers["Location"].startswith(CALLBACK)
    sso, attributes = _cookie(signed_in, f"__Host-gatehouse_sso_{pool.pool_id}")
    assert {"Secure", "HttpOnly", "Path=/"} <= {a.strip() for a in attributes.split(";")}
    return sso


def test_a_planted_csrf_cookie_cannot_forge_a_sign_in(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """Login CSRF by cookie tossing: the attacker's sibling host sets gatehouse_csrf=T for the whole site and
    posts its own credentials with _csrf=T. Only the __Host- cookie, which no other host can set, counts."""
    page = _login_page(gatehouse, pool)
    planted = "t" * 43
    forged = requests.post(
        gatehouse.url + Browser.form_action(page),
        data={**Browser.form_fields(page), "_csrf": planted, "username": "mallory", "password": PASSWORD},
        cookies={"gatehouse_csrf": planted},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 403 and forged.headers["Content-Type"].startswith("text/html")
    assert "gatehouse_sso" not in forged.headers.get("Set-Cookie", "")


def test_a_planted_sso_cookie_signs_nobody_in(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """Session fixation by cookie tossing: mallory's own SSO token, planted under the bare name, does not sign
    the victim's browser in as mallory; under the __Host- name (this host's own cookie) it does."""
    token = _sign_in(gatehouse, pool, "mallory")
    _, challenge = pkce_pair()
    url = Browser(gatehouse.url).authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256")
    planted = requests.get(
        gatehouse.url + url, cookies={f"gatehouse_sso_{pool.pool_id}": token}, allow_redirects=False, timeout=10
    )
    assert planted.status_code == 302 and planted.headers["Location"].startswith("/login?rid=")
    own = requests.get(
        gatehouse.url + url, cookies={f"__Host-gatehouse_sso_{pool.pool_id}": token}, allow_redirects=False, timeout=10
    )
    assert own.status_code == 302 and "code" in query_of(own.headers["Location"])


def test_logout_removes_the_host_cookie_as_it_was_set(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """A browser takes the removal of a __Host- cookie only with Secure and Path=/; and the session ends."""
    token = _sign_in(gatehouse, pool, "lena")
    name = f"__Host-gatehouse_sso_{pool.pool_id}"
    out = requests.get(
        f"{gatehouse.url}/logout",
        params={"client_id": pool.public_id, "logout_uri": LOGOUT},
        cookies={name: token},
        allow_redirects=False,
        timeout=10,
    )
    assert out.status_code == 302
    value, attributes = _cookie(out, name)
    assert value in ("", '""')
    parts = {a.strip() for a in attributes.split(";")}
    assert {"Secure", "Path=/", "Max-Age=0"} <= parts
    _, challenge = pkce_pair()
    url = Browser(gatehouse.url).authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256")
    again = requests.get(gatehouse.url + url, cookies={name: token}, allow_redirects=False, timeout=10)
    assert again.status_code == 302 and again.headers["Location"].startswith("/login?rid=")


def test_a_planted_federation_cookie_does_not_bind_a_callback(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, google: FakeGoogle
) -> None:
    """Login CSRF through federation: the attacker starts a Google sign-in with their own account and plants
    their browser id (the bare-named cookie) in the victim's browser, then sends the victim the callback."""
    before = usernames(idp, pool.pool_id)
    google.user = {**google.user, "sub": "attacker-9", "email": "attacker@example.com"}
    attacker = Flow(gatehouse, pool.public_id)
    first = attacker.http.get(attacker.authorize_url(identity_provider="Google"), allow_redirects=False)
    browser_id, attributes = _cookie(first, "__Host-gatehouse_federation")
    assert {"Secure", "HttpOnly", "Path=/", "SameSite=None"} <= {a.strip() for a in attributes.split(";")}
    upstream = attacker.http.get(first.headers["Location"], allow_redirects=False)
    callback = upstream.headers["Location"].replace(PUBLIC, gatehouse.url)
    assert "/oauth2/idpresponse?" in callback
    victim = requests.get(callback, cookies={"gatehouse_federation": browser_id}, allow_redirects=False, timeout=10)
    assert victim.status_code == 400 and "another browser" in victim.text
    assert "gatehouse_sso" not in victim.headers.get("Set-Cookie", "")
    assert usernames(idp, pool.pool_id) == before
    # The browser that started a sign-in (its own __Host- cookie) finishes it (a refused callback's state is
    # used up, so this is a new sign-in).
    first = attacker.http.get(attacker.authorize_url(identity_provider="Google"), allow_redirects=False)
    browser_id, _ = _cookie(first, "__Host-gatehouse_federation")
    upstream = attacker.http.get(first.headers["Location"], allow_redirects=False)
    callback = upstream.headers["Location"].replace(PUBLIC, gatehouse.url)
    own = requests.get(callback, cookies={"__Host-gatehouse_federation": browser_id}, allow_redirects=False, timeout=10)
    assert own.status_code in (302, 303), own.text
    assert own.headers["Location"].startswith(CALLBACK) and "code" in query_of(own.headers["Location"])
