"""Hostile and malformed requests against the authorization and token endpoints, after the OpenID
conformance suite's Basic OP negative tests and RFC 9700: redirect-URI games, open redirects, code replay
(sequential and 20 at once), PKCE downgrade / plain / missing, a code presented by another client or with
another redirect URI or verifier (which uses it up when its own client sends it), expired codes, missing CSRF
tokens, repeated parameters. Every refusal is the right OAuth error or an HTML page, never a redirect to an
unregistered URI and never a 500."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.e2e.oauth_support import CALLBACK, Browser, OAuthPool, make_pool, make_user, pkce_pair, query_of
from tests.support import GatehouseServer

CODE_SECONDS = 3


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """A server whose authorization codes live a few seconds, so expiry can be tested."""
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(data_dir, extra_env={"GATEHOUSE_OAUTH_CODE_SECONDS": str(CODE_SECONDS)})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "attacks")
    make_user(idp, created.pool_id, "alice")
    return created


def _code(gatehouse: GatehouseServer, pool: OAuthPool, client_id: str, **params: str) -> str:
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(client_id, **params), "alice")
    assert back.status_code == 303, back.text
    return query_of(back.headers["Location"])["code"]


def _redeem(gatehouse: GatehouseServer, pool: OAuthPool, code: str, **extra: str) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, **extra}
    return requests.post(f"{gatehouse.url}/oauth2/token", data=data, auth=(pool.secret_id, pool.secret), timeout=20)


def _userinfo(gatehouse: GatehouseServer, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(f"{gatehouse.url}/oauth2/userInfo", headers=headers, timeout=10).status_code


@pytest.mark.parametrize(
    "redirect_uri",
    [
        CALLBACK + "/extra",  # extra path
        CALLBACK + "x",  # suffix
        CALLBACK[:-1],  # prefix
        CALLBACK.replace("callback", "CALLBACK"),  # case
        CALLBACK.replace("https://", "http://"),  # scheme downgrade
        CALLBACK + "?next=https://evil.example",  # extra parameter
        CALLBACK + "#frag",
        "https://app.example.com.evil.example/callback",
        "https://evil.example/callback",  # open redirect
        "https://app.example.com@evil.example/callback",
        "//evil.example/callback",
        "",
    ],
)
def test_redirect_uri_games_get_a_page_never_a_redirect(
    gatehouse: GatehouseServer, pool: OAuthPool, redirect_uri: str
) -> None:
    _, challenge = pkce_pair()
    query = {
        "client_id": pool.public_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
    }
    response = requests.get(f"{gatehouse.url}/oauth2/authorize?{urlencode(query)}", allow_redirects=False, timeout=10)
    assert response.status_code == 400 and "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "redirect_uri" in response.text and "Traceback" not in response.text
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_unknown_or_missing_client_gets_a_page(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    for client_id in ("nosuchclient", "", "x" * 500):
        query = urlencode({"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK})
        response = requests.get(f"{gatehouse.url}/oauth2/authorize?{query}", allow_redirects=False, timeout=10)
        assert response.status_code == 400 and "Location" not in response.headers
        assert "client_id" in response.text
    # A client reached through another pool's path.
    other = requests.get(
        f"{gatehouse.url}/us-east-1_Nope12345/oauth2/authorize?client_id={pool.public_id}",
        allow_redirects=False,
        timeout=10,
    )
    assert other.status_code == 400 and "Location" not in other.headers


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, "invalid_request"),  # public client without PKCE
        ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "a" * 43}, "invalid_request"),  # would default to plain
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"code_challenge_method": "S256"}, "invalid_request"),
        ({"response_type": "token"}, "unauthorized_client"),
        ({"response_type": "id_token"}, "unsupported_response_type"),
        ({"response_type": ""}, "invalid_request"),
        ({"scope": "phone"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        (
            {"identity_provider": "Google", "code_challenge": "a" * 43, "code_challenge_method": "S256"},
            "invalid_request",
        ),
        ({"max_age": "-1"}, "invalid_request"),
    ],
)
def test_bad_authorization_requests_redirect_with_an_error(
    gatehouse: GatehouseServer, pool: OAuthPool, params: dict[str, str], error: str
) -> None:
    query = {"client_id": pool.public_id, "response_type": "code", "redirect_uri": CALLBACK, "state": "st", **params}
    response = requests.get(f"{gatehouse.url}/oauth2/authorize?{urlencode(query)}", allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(CALLBACK)
    got = query_of(location.replace("#", "?", 1)) if "#" in location else query_of(location)
    assert got["error"] == error and got["state"] == "st" and got["iss"] == pool.issuer
    if "identity_provider" in params:
        # The pool has no provider named Google (federation: tests/e2e/test_federation_flow.py).
        assert got["error_description"] == "The identity provider does not exist in this user pool."


def test_repeated_parameters_are_refused(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    _, challenge = pkce_pair()
    query = urlencode(
        [
            ("client_id", pool.public_id),
            ("response_type", "code"),
            ("redirect_uri", CALLBACK),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("state", "a"),
            ("state", "b"),
        ]
    )
    response = requests.get(f"{gatehouse.url}/oauth2/authorize?{query}", allow_redirects=False, timeout=10)
    assert response.status_code == 302 and query_of(response.headers["Location"])["error"] == "invalid_request"
    twice = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data=[("grant_type", "authorization_code"), ("code", "a"), ("code", "b")],
        auth=(pool.secret_id, pool.secret),
        timeout=10,
    )
    assert twice.status_code == 400 and twice.json()["error"] == "invalid_request"


def test_a_replayed_code_fails_and_revokes_what_it_issued(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    code = _code(gatehouse, pool, pool.secret_id)
    first = _redeem(gatehouse, pool, code)
    assert first.status_code == 200
    tokens = first.json()
    assert _userinfo(gatehouse, tokens["access_token"]) == 200
    second = _redeem(gatehouse, pool, code)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert _userinfo(gatehouse, tokens["access_token"]) == 401
    refresh = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(pool.secret_id, pool.secret),
        timeout=10,
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_twenty_concurrent_redemptions_yield_one_success(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    code = _code(gatehouse, pool, pool.secret_id)
    with ThreadPoolExecutor(max_workers=20) as pool_of_threads:
        responses = list(pool_of_threads.map(lambda _: _redeem(gatehouse, pool, code), range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 19
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code == 400)
    # The replays revoked the one success's tokens.
    winner = next(r for r in responses if r.status_code == 200).json()
    assert _userinfo(gatehouse, winner["access_token"]) == 401


def _public_code(gatehouse: GatehouseServer, pool: OAuthPool) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    return _code(gatehouse, pool, pool.public_id, code_challenge=challenge, code_challenge_method="S256"), verifier


def _redeem_public(gatehouse: GatehouseServer, pool: OAuthPool, code: str, **extra: str) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code, "client_id": pool.public_id, **extra}
    return requests.post(f"{gatehouse.url}/oauth2/token", data=data, timeout=10)


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param({"redirect_uri": CALLBACK}, id="no-verifier"),
        pytest.param({"redirect_uri": CALLBACK, "code_verifier": "guess"}, id="another-verifier"),
        pytest.param({"redirect_uri": CALLBACK, "code_verifier": "short"}, id="malformed-verifier"),
        pytest.param({"redirect_uri": "http://localhost:8080/cb", "code_verifier": "right"}, id="another-uri"),
        # (No redirect_uri where the request sent one is invalid_request and burns nothing: test_oidc_edges.)
    ],
)
def test_a_failed_redemption_by_the_codes_client_burns_the_code(
    gatehouse: GatehouseServer, pool: OAuthPool, wrong: dict[str, str]
) -> None:
    """RFC 9700 §2.1.1 / §4.8: a stolen code cannot be retried with guessed verifiers."""
    code, verifier = _public_code(gatehouse, pool)
    guessed = pkce_pair()[0]
    extra = {k: {"right": verifier, "guess": guessed}.get(v, v) for k, v in wrong.items()}
    refused = _redeem_public(gatehouse, pool, code, **extra)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", extra
    # The right verifier and redirect URI come too late: the code is used up, and no tokens are issued.
    late = _redeem_public(gatehouse, pool, code, redirect_uri=CALLBACK, code_verifier=verifier)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    assert "access_token" not in late.json()


def test_a_confidential_clients_code_is_burnt_by_a_wrong_redirect_uri(
    gatehouse: GatehouseServer, pool: OAuthPool
) -> None:
    code = _code(gatehouse, pool, pool.secret_id)
    refused = _redeem(gatehouse, pool, code, redirect_uri="http://localhost:8080/cb")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    late = _redeem(gatehouse, pool, code)
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_another_clients_attempt_does_not_burn_the_code(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """Only the code's own (authenticated) client can use it up: another application presenting it, with or
    without the right verifier, and a caller failing client authentication leave it to its client."""
    code, verifier = _public_code(gatehouse, pool)
    # Another client (the confidential one) presenting the public client's code, with every binding right.
    stolen = _redeem(gatehouse, pool, code, code_verifier=verifier)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    wrong_too = _redeem(gatehouse, pool, code, code_verifier=pkce_pair()[0], redirect_uri="http://localhost:8080/cb")
    assert wrong_too.status_code == 400 and wrong_too.json()["error"] == "invalid_grant"
    # A caller that fails client authentication as that confidential client never reaches the code.
    forged = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": "x" * 43},
        auth=(pool.secret_id, "not-the-secret"),
        timeout=10,
    )
    assert forged.status_code in (400, 401) and forged.json()["error"] == "invalid_client"
    ok = _redeem_public(gatehouse, pool, code, redirect_uri=CALLBACK, code_verifier=verifier)
    assert ok.status_code == 200 and ok.json()["access_token"]


@pytest.mark.parametrize(
    "late",
    [
        pytest.param({"redirect_uri": CALLBACK, "code_verifier": "guess"}, id="wrong-verifier"),
        pytest.param({"redirect_uri": "http://localhost:8080/cb", "code_verifier": "right"}, id="wrong-uri"),
        pytest.param({"redirect_uri": CALLBACK, "code_verifier": "right", "client": "other"}, id="other-client"),
    ],
)
def test_a_redeemed_code_presented_again_in_any_form_revokes_what_it_issued(
    gatehouse: GatehouseServer, pool: OAuthPool, late: dict[str, str]
) -> None:
    """RFC 9700 §4.2.4: after a redemption, the code presented again -- with a wrong verifier or redirect URI
    (which would burn an unused code) or by another client -- is refused as used, and the first redemption's
    tokens are revoked."""
    code, verifier = _public_code(gatehouse, pool)
    first = _redeem_public(gatehouse, pool, code, redirect_uri=CALLBACK, code_verifier=verifier)
    assert first.status_code == 200
    tokens = first.json()
    assert _userinfo(gatehouse, tokens["access_token"]) == 200
    extra = {k: {"right": verifier, "guess": pkce_pair()[0]}.get(v, v) for k, v in late.items() if k != "client"}
    if late.get("client") == "other":
        again = _redeem(gatehouse, pool, code, **extra)
    else:
        again = _redeem_public(gatehouse, pool, code, **extra)
    assert again.status_code == 400 and again.json() == {
        "error": "invalid_grant",
        "error_description": "The authorization code has already been used.",
    }
    assert _userinfo(gatehouse, tokens["access_token"]) == 401
    refresh = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": pool.public_id},
        timeout=10,
    )
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"


def test_a_burnt_code_is_refused_as_used_and_stays_burnt(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    code, verifier = _public_code(gatehouse, pool)
    burnt = _redeem_public(gatehouse, pool, code, redirect_uri=CALLBACK, code_verifier=pkce_pair()[0])
    assert burnt.json() == {
        "error": "invalid_grant",
        "error_description": "code_verifier does not match the code_challenge.",
    }
    for _ in range(2):
        late = _redeem_public(gatehouse, pool, code, redirect_uri=CALLBACK, code_verifier=verifier)
        assert late.status_code == 400 and late.json() == {
            "error": "invalid_grant",
            "error_description": "The authorization code has already been used.",
        }


def test_a_confidential_code_survives_a_caller_without_the_secret(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    code = _code(gatehouse, pool, pool.secret_id)
    for auth in ((pool.secret_id, "wrong"), (pool.public_id, "")):
        response = requests.post(
            f"{gatehouse.url}/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": "http://localhost:8080/cb"},
            auth=auth,
            timeout=10,
        )
        assert response.status_code in (400, 401), response.text
        assert response.json()["error"] in ("invalid_client", "invalid_grant")
    ok = _redeem(gatehouse, pool, code)
    assert ok.status_code == 200 and ok.json()["access_token"]


def test_pkce_downgrade_a_verifier_for_a_code_without_challenge(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    code = _code(gatehouse, pool, pool.secret_id)  # confidential: PKCE optional, none sent
    refused = _redeem(gatehouse, pool, code, code_verifier=pkce_pair()[0])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # A downgrade attempt is a failed redemption like any other: the code is used up.
    assert _redeem(gatehouse, pool, code).json()["error"] == "invalid_grant"


def test_expired_code(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    code = _code(gatehouse, pool, pool.secret_id)
    time.sleep(CODE_SECONDS + 0.5)
    expired = _redeem(gatehouse, pool, code)
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"
    assert "expired" in expired.json()["error_description"]


def test_made_up_codes_and_malformed_bodies(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    for code in ("", "nope", "x" * 5000, "x" * 20_000, "' OR 1=1 --"):
        response = _redeem(gatehouse, pool, code)
        assert response.status_code == 400 and response.json()["error"] in ("invalid_grant", "invalid_request")
    as_json = requests.post(
        f"{gatehouse.url}/oauth2/token", json={"grant_type": "client_credentials"}, auth=(pool.secret_id, pool.secret)
    )
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    bad_basic = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": "x"},
        headers={"Authorization": "Basic !!!notbase64"},
    )
    assert bad_basic.status_code == 401 and bad_basic.json()["error"] == "invalid_client"


def test_tampered_and_foreign_codes_are_refused_and_burn_nothing(
    gatehouse: GatehouseServer, pool: OAuthPool, idp: Any
) -> None:
    """A code is sealed (AES-GCM): one changed character, a cut or an extension makes it no code at all, and
    a code of another pool is not one of this pool's. None of them uses up the real code."""
    code = _code(gatehouse, pool, pool.secret_id)
    middle = len(code) // 2
    flipped = code[:middle] + ("A" if code[middle] != "A" else "B") + code[middle + 1 :]
    for forged in (flipped, code[:-1], code + "A", code[:40], code.upper()):
        refused = _redeem(gatehouse, pool, forged)
        assert refused.status_code == 400, refused.text
        assert refused.json() == {"error": "invalid_grant", "error_description": "Invalid authorization code."}
    other = make_pool(idp, gatehouse.url, "attacks-other")
    stranger = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=(other.secret_id, other.secret),
        timeout=20,
    )
    assert stranger.status_code == 400 and stranger.json()["error"] == "invalid_grant"
    redeemed = _redeem(gatehouse, pool, code)
    assert redeemed.status_code == 200, redeemed.text
    assert _userinfo(gatehouse, redeemed.json()["access_token"]) == 200


def test_login_form_without_csrf_token_is_refused(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    page = browser.follow(
        browser.get(browser.authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256"))
    )
    assert page.status_code == 200
    action = browser.form_action(page)
    for fields in ({}, {"_csrf": "forged-token-that-does-not-match-the-cookie"}):
        refused = browser.post(action, {"username": "alice", "password": "Correct-Horse-9", **fields})
        assert refused.status_code == 403 and "Location" not in refused.headers
    # A cross-site form: the right-looking field but no cookie.
    stranger = requests.post(
        f"{gatehouse.url}{action}",
        data={"username": "alice", "password": "Correct-Horse-9", **browser.form_fields(page)},
        allow_redirects=False,
        timeout=10,
    )
    assert stranger.status_code == 403
    # With the token, the same browser signs in (303, never 307).
    ok = browser.submit(page, {"username": "alice", "password": "Correct-Horse-9"})
    assert ok.status_code == 303 and ok.headers["Location"].startswith(CALLBACK)


def test_wrong_password_is_said_plainly(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    url = browser.authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256")
    for username in ("alice", "nobody-here"):
        page = browser.sign_in(url, username, "wrong-password-1A!")
        assert page.status_code == 400 and "Incorrect username or password." in page.text
        assert "Traceback" not in page.text
    gone = browser.get("/login?rid=made-up-request")
    assert gone.status_code == 400 and "expired" in gone.text
