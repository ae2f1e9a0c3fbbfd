"""The hosted sign-in page as a browser GETs it again and again: each browser gets its own CSRF token in the
page and its cookie (the rest of the page is rendered once per stored request), a used-up request shows the
expired page and never the form again, and changes to the pool are seen on the next GET."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import requests

from tests.e2e.oauth_support import CALLBACK, Browser, OAuthPool, make_pool, make_user, pkce_pair
from tests.support import GatehouseServer

_CSRF = re.compile(r'name="_csrf" value="([^"]*)"')


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "login-page")
    make_user(idp, created.pool_id, "alice")
    return created


def _login_url(gatehouse: GatehouseServer, pool: OAuthPool) -> str:
    """A stored authorization request's sign-in page (a browser without a session is sent there)."""
    _, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    url = browser.authorize_url(
        pool.public_id,
        prefix=f"/{pool.pool_id}",
        scope="openid email",
        state="s1",
        code_challenge=challenge,
        code_challenge_method="S256",
        login_hint="alice@example.com",
    )
    answer = browser.get(url)
    assert answer.status_code == 302 and "/login?rid=" in answer.headers["Location"]
    return gatehouse.url + answer.headers["Location"]


def _token(page: requests.Response) -> str:
    match = _CSRF.search(page.text)
    assert match, page.text
    return html.unescape(match.group(1))


def test_every_browser_gets_its_own_csrf_token(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    url = _login_url(gatehouse, pool)
    pages = [requests.get(url, timeout=10) for _ in range(3)]
    tokens = [_token(page) for page in pages]
    assert len(set(tokens)) == 3  # three browsers without a cookie: three tokens
    for page, token in zip(pages, tokens, strict=True):
        assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert page.cookies.get("gatehouse_csrf") == token  # the cookie the form's field must match
        assert "HttpOnly" in page.headers["Set-Cookie"] and "SameSite=Lax" in page.headers["Set-Cookie"]
        assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert 'value="alice@example.com"' in page.text  # the request's login_hint
    # The pages differ only in the token.
    assert pages[0].text.replace(tokens[0], "") == pages[1].text.replace(tokens[1], "")

    # A browser with a token keeps it, and is not sent a new cookie.
    again = requests.get(url, cookies={"gatehouse_csrf": tokens[0]}, timeout=10)
    assert _token(again) == tokens[0] and "Set-Cookie" not in again.headers

    # A cookie of the browser's own making that is not a token's shape is never used, or shown: the browser
    # is given a new token.
    hostile = "ab&<script>alert(1)</script>cd"
    shown = requests.get(url, cookies={"gatehouse_csrf": hostile}, timeout=10)
    assert shown.status_code == 200 and "<script>" not in shown.text and "alert(1)" not in shown.text
    replaced = _token(shown)
    assert replaced not in (hostile, *tokens) and shown.cookies.get("gatehouse_csrf") == replaced


def test_a_used_up_request_shows_the_expired_page(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    url = _login_url(gatehouse, pool)
    browser = Browser(gatehouse.url)
    for _ in range(2):  # the page as this process has it cached
        page = browser.get(url)
        assert page.status_code == 200 and "<form" in page.text
    back = browser.submit(page, {"username": "alice", "password": "Correct-Horse-9"})
    assert back.status_code in (302, 303) and back.headers["Location"].startswith(CALLBACK)
    # The sign-in used the stored request up: its page is gone, for this browser and any other.
    for client in (browser.http, requests.Session()):
        gone = client.get(url, allow_redirects=False, timeout=10)
        assert gone.status_code == 400 and "expired" in gone.text and "<form" not in gone.text
    # And its form cannot be used again.
    replay = requests.Session()
    fresh = replay.get(url, timeout=10)
    assert fresh.status_code == 400


def test_a_changed_pool_is_seen_on_the_next_get(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    url = _login_url(gatehouse, pool)
    assert "Sign up" in requests.get(url, timeout=10).text
    idp.update_user_pool(UserPoolId=pool.pool_id, AdminCreateUserConfig={"AllowAdminCreateUserOnly": True})
    try:
        assert "Sign up" not in requests.get(url, timeout=10).text
    finally:
        idp.update_user_pool(UserPoolId=pool.pool_id, AdminCreateUserConfig={"AllowAdminCreateUserOnly": False})
    assert "Sign up" in requests.get(url, timeout=10).text


def test_an_unknown_or_missing_request_id_is_an_error_page(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    for query in ("?rid=not-a-stored-request", "?rid=", "", "?rid=" + "x" * 300):
        page = requests.get(f"{gatehouse.url}/{pool.pool_id}/login{query}", timeout=10)
        assert page.status_code == 400 and "<form" not in page.text, query
