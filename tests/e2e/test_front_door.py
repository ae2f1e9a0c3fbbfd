"""The front door (docs/front-door.md) with Gatehouse as the app's reverse proxy (``upstream``) and the
forward-auth endpoints a proxy in front asks, over real HTTP: a browser-like client with a cookie jar signs in
on the hosted UI and is let through to a real upstream app (tests/fakes/echo_app.py), which is told who the user
is, and handed the session's tokens (``pass_tokens``); what ends the sign-in (sign-out, GlobalSignOut, a disabled
user, a group taken away) ends the session; a script's access token stands in for a session (``bearer_clients``);
its public paths reach the app without a session, and paths that servers could read another way do not.

The app is served on ``localhost:<port>`` and Gatehouse's own pages on ``127.0.0.1:<port>``: one server, two
hosts, as an app's host and the sign-in host are two in a deployment."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import yaml

from tests.e2e.front_door_support import Visitor, seen_headers
from tests.fakes.echo_app import EchoApp
from tests.support import GatehouseServer

POOL = "us-east-1_FrontDoor1"
CLIENT = "frontdoorapp000000000001"
CLI_CLIENT = "frontdoorcli000000000001"
OTHER_CLIENT = "frontdoorother0000000001"
# Listed in bearer_clients as well: a script's client the tests delete, a machine client (client_credentials), and
# a client of another pool of the same server.
DELETED_CLIENT = "frontdoorcli000000000002"
MACHINE_CLIENT = "frontdoormachine00000001"
MACHINE_SECRET = "front-door-machine-secret-01"
POOL_2 = "us-east-1_FrontDoor2"
POOL_2_CLIENT = "frontdoorpool2cli0000001"
PASSWORD = "Front-door-pass-1"


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoApp]:
    with EchoApp() as app:
        yield app


def front_door_config(app_url: str, upstream_url: str) -> str:
    return f"""
version: 1
pools:
  - id: {POOL}
    name: front-door
    groups:
      - name: staff
      - name: visitors
    users:
      - username: alice
        password: {PASSWORD}
        attributes: {{email: alice@example.com, email_verified: "true"}}
        groups: [staff]
      - username: bob
        password: {PASSWORD}
        attributes: {{email: bob@example.com}}
        groups: [visitors]
      - username: carol
        password: {PASSWORD}
        groups: [staff]
    clients:
      - id: {CLIENT}
        name: wiki
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid, email]
        callback_urls: ["{app_url}/_gatehouse/callback"]
        logout_urls: ["{app_url}/"]
      - id: {CLI_CLIENT}
        name: wiki-cli
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
      - id: {OTHER_CLIENT}
        name: other-app
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
      - id: {DELETED_CLIENT}
        name: wiki-cli-2
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
      - id: {MACHINE_CLIENT}
        name: machine
        secret: {MACHINE_SECRET}
  - id: {POOL_2}
    name: front-door-2
    users:
      - username: alice
        password: {PASSWORD}
    clients:
      - id: {POOL_2_CLIENT}
        name: pool-2-cli
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH]
front_door:
  apps:
    - name: wiki
      url: {app_url}
      user_pool: {POOL}
      client_id: {CLIENT}
      allowed_groups: [staff]
      upstream: {upstream_url}
      pass_tokens: true
      public_paths: [/hooks/, /healthz]
      bearer_clients: [{CLI_CLIENT}, {DELETED_CLIENT}, {MACHINE_CLIENT}, {POOL_2_CLIENT}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: EchoApp) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("front-door") / "data"
    gatehouse = GatehouseServer(data_dir, config="version: 1\n")
    assert gatehouse.config_path is not None
    gatehouse.config_path.write_text(front_door_config(f"http://localhost:{gatehouse.port}", upstream.url))
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


def test_a_browser_signs_in_and_reaches_the_app_as_the_user(server: GatehouseServer, upstream: EchoApp) -> None:
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    first = visitor.get("/docs/page?x=1")
    assert first.status_code == 302
    assert first.headers["Location"] == f"{visitor.app}/_gatehouse/start?rd=/docs/page%3Fx%3D1"
    answer = visitor.sign_in("/docs/page?x=1", "alice")
    assert answer.url == f"{visitor.app}/docs/page?x=1"
    body = answer.json()
    assert body["path_qs"] == "/docs/page?x=1"
    headers = seen_headers(answer)
    assert headers["x-gatehouse-username"] == "alice"
    assert headers["x-gatehouse-email"] == "alice@example.com"
    assert headers["x-gatehouse-groups"] == "staff"
    assert headers["x-gatehouse-pool"] == POOL
    assert headers["x-forwarded-host"] == f"localhost:{server.port}"
    assert headers["x-forwarded-proto"] == "http"
    # The front door's own cookie is not the app's business.
    assert "gatehouse-session" not in headers.get("cookie", "")
    # Later requests go straight through, the upstream's own answer and cookies passed back.
    again = visitor.get("/api/items")
    assert again.status_code == 200 and again.headers["X-Upstream"] == "echo"
    assert "app_cookie=from-upstream" in again.headers["Set-Cookie"]
    # Nor are the cookies of sign-ins under way in other tabs; the app's own cookies pass, in their order.
    session = next(c.value for c in visitor.http.cookies if c.name == "gatehouse-session")
    pending = "gatehouse-sign-in-AAAAAAAAAAAAAAAA=pending"
    mixed = visitor.get("/api/items", headers={"Cookie": f"a=1; {pending}; gatehouse-session={session}; b=2"})
    assert mixed.status_code == 200 and seen_headers(mixed)["cookie"] == "a=1; b=2"
    info = visitor.get("/_gatehouse/userinfo").json()
    assert info["username"] == "alice" and info["groups"] == ["staff"] and info["email"] == "alice@example.com"


def verified(server: GatehouseServer, token: str, token_use: str) -> dict[str, Any]:
    """A token's claims, its signature checked against the pool's JWKS."""
    keys = jwt.PyJWKClient(f"{server.url}/{POOL}/.well-known/jwks.json")
    claims = jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"],
                        issuer=f"{server.url}/{POOL}", options={"verify_aud": False})  # fmt: skip
    assert claims["token_use"] == token_use
    return dict(claims)


def test_the_app_is_handed_the_sessions_tokens(server: GatehouseServer) -> None:
    idp = server.client()
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    headers = seen_headers(visitor.sign_in("/", "alice"))
    id_claims = verified(server, headers["x-gatehouse-id-token"], "id")
    access_claims = verified(server, headers["x-gatehouse-access-token"], "access")
    assert id_claims["aud"] == CLIENT and access_claims["client_id"] == CLIENT
    assert id_claims["sub"] == access_claims["sub"] == headers["x-gatehouse-sub"]
    assert id_claims["cognito:username"] == "alice" and id_claims["email"] == "alice@example.com"
    assert id_claims["cognito:groups"] == access_claims["cognito:groups"] == ["staff"]
    # The sign-in's own family and scopes: the front door asked for openid alone.
    assert id_claims["origin_jti"] == access_claims["origin_jti"]
    assert access_claims["scope"] == "openid"
    # A token the pool's userInfo endpoint takes, as any of the client's access tokens.
    info = requests.get(f"{server.url}/{POOL}/oauth2/userInfo", timeout=10,
                        headers={"Authorization": f"Bearer {headers['x-gatehouse-access-token']}"})  # fmt: skip
    assert info.status_code == 200 and info.json()["sub"] == id_claims["sub"]
    # Kept for the next requests of the session, not made anew for each.
    again = seen_headers(visitor.get("/next"))
    assert again["x-gatehouse-id-token"] == headers["x-gatehouse-id-token"]
    # Made anew once the user has changed: the tokens say what the user is now.
    idp.admin_add_user_to_group(UserPoolId=POOL, Username="alice", GroupName="visitors")
    try:
        changed = seen_headers(visitor.get("/next"))
        assert verified(server, changed["x-gatehouse-id-token"], "id")["cognito:groups"] == ["staff", "visitors"]
        assert verified(server, changed["x-gatehouse-access-token"], "access")["origin_jti"] == id_claims["origin_jti"]
    finally:
        idp.admin_remove_user_from_group(UserPoolId=POOL, Username="alice", GroupName="visitors")
    # A proxy in front is handed them too; a page's script is not.
    cookies = {c.name: str(c.value) for c in visitor.http.cookies if c.name == "gatehouse-session"}
    asked = requests.get(f"{server.url}/_gatehouse/auth-request?app=wiki", cookies=cookies, timeout=10)
    assert asked.status_code == 200
    assert verified(server, asked.headers["X-Gatehouse-Id-Token"], "id")["cognito:groups"] == ["staff"]
    info_page = visitor.get("/_gatehouse/userinfo")
    assert info_page.status_code == 200 and "token" not in info_page.text.lower()
    # Once the session ends, so does every token it was handed: revoked with its family.
    visitor.get("/_gatehouse/sign_out")
    revoked = requests.get(f"{server.url}/{POOL}/oauth2/userInfo", timeout=10,
                           headers={"Authorization": f"Bearer {headers['x-gatehouse-access-token']}"})  # fmt: skip
    assert revoked.status_code == 401


def test_a_page_cannot_read_the_tokens(server: GatehouseServer, upstream: EchoApp) -> None:
    """A page's script on the app's host can fetch the front door's endpoints there: the checks a proxy in front
    asks, whose answer holds the tokens, are not served on the host of an app Gatehouse proxies itself."""
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    before = len(upstream.requests)
    for path in ("/_gatehouse/forward-auth", "/_gatehouse/auth-request", "/_gatehouse/auth-request?app=wiki"):
        answer = visitor.get(path, headers={"X-Forwarded-Uri": "/", "X-Forwarded-Method": "GET"})
        assert answer.status_code == 404, path
        assert not [name for name in answer.headers if name.lower().startswith("x-gatehouse-")], path
    assert len(upstream.requests) == before
    # nginx's second question (its @front_door location) is answered to the browser: never with the tokens.
    cookies = {c.name: str(c.value) for c in visitor.http.cookies if c.name == "gatehouse-session"}
    again = requests.get(f"{server.url}/_gatehouse/forward-auth?after=auth-request&app=wiki", cookies=cookies,
                         timeout=10, allow_redirects=False)  # fmt: skip
    assert again.status_code == 200 and again.headers["X-Gatehouse-Username"] == "alice"
    assert "X-Gatehouse-Id-Token" not in again.headers and "X-Gatehouse-Access-Token" not in again.headers


def test_a_sign_out_ends_the_tokens_every_worker_keeps(tmp_path: Path, upstream: EchoApp) -> None:
    """``gatehouse serve --workers 2``: each process keeps a session's tokens for itself, but every request reads
    the session in the shared store before they are handed on, so a sign-out on one worker ends them on all."""
    gatehouse = GatehouseServer(tmp_path / "data", config="version: 1\n", workers=2)
    assert gatehouse.config_path is not None
    app = f"http://localhost:{gatehouse.port}"
    gatehouse.config_path.write_text(front_door_config(app, upstream.url))
    gatehouse.start()
    try:
        visitor = Visitor(app, PASSWORD)
        visitor.sign_in("/", "alice")
        cookies = {c.name: str(c.value) for c in visitor.http.cookies if c.name == "gatehouse-session"}

        def on_a_new_connection() -> requests.Response:
            # The kernel spreads new connections over the workers (SO_REUSEPORT).
            return requests.get(f"{app}/x", cookies=cookies, headers={"Connection": "close"}, timeout=10,
                                allow_redirects=False)  # fmt: skip

        kept = {seen_headers(on_a_new_connection())["x-gatehouse-id-token"] for _ in range(16)}
        assert len(kept) == 2  # one pair made and kept by each worker
        visitor.get("/_gatehouse/sign_out")
        assert [on_a_new_connection().status_code for _ in range(16)] == [302] * 16
    finally:
        gatehouse.stop()


def raw_get(
    server: GatehouseServer, target: str, headers: Sequence[tuple[str, str]] = (), host: str | None = None
) -> tuple[int, bytes]:
    """A request whose target and headers are sent as written (no client library normalizing dot segments or
    escapes, or joining a header given twice), to the app's host unless ``host`` names another."""
    connection = http.client.HTTPConnection("localhost", server.port, timeout=10)
    try:
        connection.putrequest("GET", target, skip_accept_encoding=True, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_public_paths_reach_the_app_without_a_session(server: GatehouseServer, upstream: EchoApp) -> None:
    app = f"http://localhost:{server.port}"
    forged = {"X-Gatehouse-Username": "root", "X-Gatehouse-Groups": "staff"}
    health = requests.get(f"{app}/healthz?probe=1", headers=forged, timeout=10, allow_redirects=False)
    assert health.json()["path_qs"] == "/healthz?probe=1"
    assert not [name for name in seen_headers(health) if name.startswith("x-gatehouse-")]
    hook = requests.post(f"{app}/hooks/build/42", data=b"payload", timeout=10, allow_redirects=False)
    assert hook.json()["method"] == "POST" and hook.json()["body_head"] == "payload"
    # A signed-in browser is told nothing there either: public paths carry no identity.
    visitor = Visitor(app, PASSWORD)
    visitor.sign_in("/", "alice")
    assert not [name for name in seen_headers(visitor.get("/hooks/x")) if name.startswith("x-gatehouse-")]
    # Only what is listed: /healthz itself, and what is under /hooks/.
    for path in ("/healthz/x", "/healthzx", "/hooks", "/hooksx/a", "/HOOKS/a"):
        assert requests.get(app + path, timeout=10, allow_redirects=False).status_code == 302, path


@pytest.mark.parametrize(
    "target",
    [
        "/hooks/../admin",
        "/hooks/./../admin",
        "/hooks//../admin",
        "/hooks/%2e%2e/admin",
        "/hooks/%2E%2E/admin",
        "/hooks/.%2e/admin",
        "/hooks/..%2fadmin",
        "/hooks/..%2Fadmin",
        "/hooks/..;/admin",
        "/hooks/%3b/../admin",
        "/hooks\\..\\admin",
        "/hooks/..%5cadmin",
        "/hooks/%c0%ae%c0%ae/admin",
        "/hooks/%ef%bc%8e%ef%bc%8e/admin",
        "/hooks/%00/../admin",
        # Encoded once more (a server or framework that decodes twice), and what Windows reads as ".." or ".":
        # a segment of dots and spaces, its trailing ones dropped.
        "/hooks/%252e%252e/admin",
        "/hooks/%252E%252E%252Fadmin",
        "/hooks/x/%2500",
        "/hooks/..%20/admin",
        "/hooks/.%20/admin",
        "/hooks/.../admin",
        "/hooks/x/....",
        # Absolute-form (RFC 9112 §3.2.2): its authority names the host (here not the app's: a 404).
        "http://localhost/hooks/../admin",
        "http://evil.example/hooks/%2e%2e/admin",
        "http://localhost/hooks/x",
    ],
)
def test_a_public_path_read_another_way_needs_a_session(
    server: GatehouseServer, upstream: EchoApp, target: str
) -> None:
    """Dot segments, encoded separators and dots, Tomcat's path parameters, overlong UTF-8 and full-width dots,
    double encoding (which Spring Security's StrictHttpFirewall refuses for the same reason), Windows' dots:
    a path some server could take for another is not public, and never reaches the app without a session. An
    absolute-form target names its host itself, and as an X-Forwarded-Uri is no path at all."""
    before = len(upstream.requests)
    status, _ = raw_get(server, target)
    assert status in ((302, 400) if target.startswith("/") else (404,)), (target, status)
    assert len(upstream.requests) == before
    # Asked by a proxy in front about the same request: sign in first.
    forwarded = {"X-Forwarded-Host": f"localhost:{server.port}", "X-Forwarded-Uri": target, "X-Forwarded-Method": "GET"}
    asked = requests.get(f"{server.url}/_gatehouse/forward-auth", headers=forwarded, timeout=10, allow_redirects=False)
    assert asked.status_code == 302 and "X-Gatehouse-Username" not in asked.headers


def test_forward_auth_lets_public_paths_through(server: GatehouseServer) -> None:
    forwarded = {"X-Forwarded-Host": f"localhost:{server.port}", "X-Forwarded-Uri": "/hooks/build?x=1",
                 "X-Forwarded-Method": "POST", "X-Gatehouse-Username": "root"}  # fmt: skip
    for url in (f"{server.url}/_gatehouse/forward-auth", f"{server.url}/_gatehouse/auth-request?app=wiki"):
        allowed = requests.get(url, headers=forwarded, timeout=10, allow_redirects=False)
        assert allowed.status_code == 200
        assert not [name for name in allowed.headers if name.lower().startswith("x-gatehouse-")]
    private = requests.get(f"{server.url}/_gatehouse/forward-auth", timeout=10, allow_redirects=False,
                           headers={**forwarded, "X-Forwarded-Uri": "/wiki/hooks/build"})  # fmt: skip
    assert private.status_code == 401
    # Sent twice (a proxy that adds its own after the browser's), whichever comes first: not public.
    for uris in (("/hooks/build", "/admin"), ("/admin", "/hooks/build")):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.putrequest("GET", "/_gatehouse/auth-request?app=wiki")
            for uri in uris:
                connection.putheader("X-Forwarded-Uri", uri)
            connection.endheaders()
            assert connection.getresponse().status == 401, uris
        finally:
            connection.close()


def access_token(server: GatehouseServer, client_id: str, username: str) -> str:
    answer = server.client(signed=False).initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return str(answer["AuthenticationResult"]["AccessToken"])


def test_an_access_token_stands_in_for_a_session(server: GatehouseServer, upstream: EchoApp) -> None:
    """A script calls the app's API with ``Authorization: Bearer`` (RFC 6750 §2.1) and an access token of a client
    the app names: let through as the token's user; anything else is a 401 or 403 with the challenge, never a
    sign-in page."""
    app = f"http://localhost:{server.port}"
    token = access_token(server, CLI_CLIENT, "alice")
    for scheme in ("Bearer", "bearer"):
        sent = {"Authorization": f"{scheme} {token}", "X-Gatehouse-Username": "root"}
        answer = requests.post(f"{app}/api/items", data=b"{}", headers=sent, timeout=10, allow_redirects=False)
        headers = seen_headers(answer)
        assert headers["x-gatehouse-username"] == "alice" and headers["x-gatehouse-groups"] == "staff"
        assert headers["authorization"] == f"{scheme} {token}"  # the app may check it too
    forwarded = {"X-Forwarded-Host": f"localhost:{server.port}", "X-Forwarded-Uri": "/api/items",
                 "X-Forwarded-Method": "POST", "Authorization": f"Bearer {token}"}  # fmt: skip
    asked = requests.get(f"{server.url}/_gatehouse/forward-auth", headers=forwarded, timeout=10, allow_redirects=False)
    assert asked.status_code == 200 and asked.headers["X-Gatehouse-Username"] == "alice"

    def refused(value: str, method: str = "GET") -> requests.Response:
        before = len(upstream.requests)
        answer = requests.request(method, f"{app}/api/items", headers={"Authorization": value}, timeout=10,
                                  allow_redirects=False)  # fmt: skip
        assert len(upstream.requests) == before
        return answer

    # Another client's token, an ID token, a tampered one, garbage: 401 with RFC 6750's challenge, even for a GET.
    other = access_token(server, OTHER_CLIENT, "alice")
    id_token = server.client(signed=False).initiate_auth(
        ClientId=CLI_CLIENT, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["IdToken"]
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for value in (f"Bearer {other}", f"Bearer {id_token}", f"Bearer {tampered}", "Bearer not-a-token"):
        answer = refused(value)
        assert answer.status_code == 401, value
        assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # A user outside the allowed groups: 403 insufficient_scope, no page.
    bob = refused(f"Bearer {access_token(server, CLI_CLIENT, 'bob')}", "POST")
    assert bob.status_code == 403 and bob.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    # What ends a sign-in's tokens ends what they open: signed out everywhere, the token is refused at once.
    signed_out = access_token(server, CLI_CLIENT, "alice")
    assert seen_headers(requests.get(f"{app}/x", headers={"Authorization": f"Bearer {signed_out}"}, timeout=10))
    server.client(signed=False).global_sign_out(AccessToken=signed_out)
    assert refused(f"Bearer {signed_out}").status_code == 401
    # Basic credentials or no token at all are no bearer request: a GET is sent to sign in as ever.
    basic = requests.get(f"{app}/x", headers={"Authorization": "Basic YTpi"}, timeout=10, allow_redirects=False)
    assert basic.status_code == 302 and "/_gatehouse/start" in basic.headers["Location"]


def bearer_counts(server: GatehouseServer) -> dict[str, float]:
    """gatehouse_front_door_requests_total of the app, by outcome."""
    prefix = 'gatehouse_front_door_requests_total{app="wiki",outcome="'
    rows = requests.get(f"{server.url}/metrics", timeout=10).text.splitlines()
    return {row[len(prefix) :].split('"')[0]: float(row.rsplit(" ", 1)[1]) for row in rows if row.startswith(prefix)}


def test_a_bearer_token_decides_whatever_else_the_request_sends(server: GatehouseServer, upstream: EchoApp) -> None:
    """The token, not a session cookie beside it, is what a bearer request is judged by: the app is never told one
    user while handed another's token. Authorization sent twice is malformed (400 invalid_request): the app, handed
    both, could read another token than the one checked. A token in the query (RFC 6750 §2.3) is not taken."""
    app = f"http://localhost:{server.port}"
    alice, bob = access_token(server, CLI_CLIENT, "alice"), access_token(server, CLI_CLIENT, "bob")
    visitor = Visitor(app, PASSWORD)
    visitor.sign_in("/", "alice")
    session = next(str(c.value) for c in visitor.http.cookies if c.name == "gatehouse-session")
    before, counted = len(upstream.requests), bearer_counts(server)
    # alice's session with bob's token: bob's request, refused (bob is not staff), not alice's with bob's token.
    mixed = requests.get(f"{app}/x", headers={"Authorization": f"Bearer {bob}"}, cookies={"gatehouse-session": session},
                         timeout=10, allow_redirects=False)  # fmt: skip
    assert mixed.status_code == 403 and mixed.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    # A stale cookie in a script's jar does not turn its call into a sign-in redirect.
    stale = requests.get(f"{app}/x", headers={"Authorization": f"Bearer {alice}"},
                         cookies={"gatehouse-session": "stale"}, timeout=10, allow_redirects=False)  # fmt: skip
    headers = seen_headers(stale)
    assert headers["x-gatehouse-username"] == "alice" and "gatehouse-session" not in headers.get("cookie", "")
    # pass_tokens hands a bearer request nothing more, session or not.
    assert "x-gatehouse-id-token" not in headers and "x-gatehouse-access-token" not in headers
    # A public path is public for a bearer request too: no identity.
    public = requests.get(f"{app}/healthz", headers={"Authorization": f"Bearer {alice}"}, timeout=10)
    assert not [name for name in seen_headers(public) if name.startswith("x-gatehouse-")]
    assert len(upstream.requests) == before + 2
    info = requests.get(f"{app}/_gatehouse/userinfo", headers={"Authorization": f"Bearer {bob}"}, timeout=10)
    assert info.status_code == 403 and info.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
    for first, second in ((alice, bob), (alice, alice), (alice, "x")):
        status, body = raw_get(
            server, "/x", [("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")]
        )
        assert status == 400 and b"Malformed" in body
    forwarded = [("X-Forwarded-Host", f"localhost:{server.port}"), ("X-Forwarded-Uri", "/x"),
                 ("Authorization", f"Bearer {alice}"), ("Authorization", f"Bearer {bob}")]  # fmt: skip
    # nginx takes no 400 from auth_request: a 401 there, and @front_door's question gets the 400.
    assert raw_get(server, "/_gatehouse/auth-request?app=wiki", forwarded, host=f"127.0.0.1:{server.port}")[0] == 401
    assert raw_get(server, "/_gatehouse/forward-auth", forwarded, host=f"127.0.0.1:{server.port}")[0] == 400
    # RFC 6750 §2.3's query parameter is not taken: a GET is sent to sign in, as without a token.
    query = requests.get(f"{app}/x?access_token={alice}", timeout=10, allow_redirects=False)
    assert query.status_code == 302 and "/_gatehouse/start" in query.headers["Location"]
    assert len(upstream.requests) == before + 2
    # Counted under the outcomes there were: no label of their own.
    counts = bearer_counts(server)
    assert counts["allowed"] - counted["allowed"] == 1 and counts["forbidden"] - counted["forbidden"] == 2
    assert counts["unauthenticated"] - counted["unauthenticated"] == 3 + 1 + 1 + 1


def test_a_bearer_token_the_app_would_read_is_the_one_judged(server: GatehouseServer, upstream: EchoApp) -> None:
    """Apps read Authorization more loosely than RFC 6750's ``Bearer 1*SP token``: Django REST framework and
    Flask-HTTPAuth split it at any whitespace (latin-1 text, as WSGI hands it over, so a no-break space byte is
    one too). Whatever such an app would take for a bearer token is the token the request is judged by; so alice's
    session beside bob's token, however spaced, is never let through as alice with bob's token."""
    alice = access_token(server, CLI_CLIENT, "alice")
    bob = access_token(server, CLI_CLIENT, "bob")
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    session = next(str(c.value) for c in visitor.http.cookies if c.name == "gatehouse-session")
    before = len(upstream.requests)
    for value in (f"Bearer\t{bob}", f"bEaReR \t {bob}", f"\xa0Bearer\xa0{bob}", f"Bearer\x85{bob}"):
        status, body = raw_get(server, "/x", [("Authorization", value), ("Cookie", f"gatehouse-session={session}")])
        assert status == 403 and b"Not allowed" in body, (value, status, body[:200])
        # The same as a proxy in front asks about it.
        forwarded = [("X-Forwarded-Host", f"localhost:{server.port}"), ("X-Forwarded-Uri", "/x"),
                     ("Authorization", value), ("Cookie", f"gatehouse-session={session}")]  # fmt: skip
        asked = raw_get(server, "/_gatehouse/forward-auth", forwarded, host=f"127.0.0.1:{server.port}")
        assert asked[0] == 403, (value, asked)
    # "Bearer" with two tokens is no one token to judge: malformed, whatever session comes with it.
    for value in (f"Bearer {alice} {bob}", f"Bearer\t{alice}\t{bob}"):
        status, body = raw_get(server, "/x", [("Authorization", value), ("Cookie", f"gatehouse-session={session}")])
        assert status == 400 and b"Malformed" in body, (value, status, body[:200])
    # Bytes that are not a token at all (nor UTF-8): refused as a token, never a 500.
    status, _ = raw_get(server, "/x", [("Authorization", "Bearer \xe9\xff.\x80")])
    assert status == 401
    assert len(upstream.requests) == before
    # "Bearer" with no token at all is no token an app could read: the session decides.
    assert seen_headers(visitor.get("/x", headers={"Authorization": "Bearer "}))["x-gatehouse-username"] == "alice"
    # Spaced as apps read it, a good token still goes through as its user.
    status, body = raw_get(server, "/x", [("Authorization", f"Bearer\t{alice}")])
    assert status == 200 and b"x-gatehouse-username" in body.lower()


def test_tokens_not_of_a_listed_clients_sign_in_are_refused(server: GatehouseServer, upstream: EchoApp) -> None:
    """A listed client's name on a token is not enough: a token derived by token exchange (RFC 8693) from another
    client's sign-in, or bound to another audience, a client_credentials token, a token of another pool, forged
    headers: 401 invalid_token, never let through."""
    app = f"http://localhost:{server.port}"
    idp, public = server.client(), server.client(signed=False)
    flows = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    idp.update_user_pool_client(UserPoolId=POOL, ClientId=CLI_CLIENT,
                                ExplicitAuthFlows=[*flows, "ALLOW_TOKEN_EXCHANGE_IMPERSONATION"])  # fmt: skip
    try:
        own, other = access_token(server, CLI_CLIENT, "alice"), access_token(server, OTHER_CLIENT, "alice")

        def derived(subject: str, **kwargs: Any) -> str:
            answer = public.get_derived_token(ClientId=CLI_CLIENT, SubjectToken=subject,
                                              SubjectTokenType="ACCESS_TOKEN", RequestedTokenType="ACCESS_TOKEN",
                                              **kwargs)  # fmt: skip
            return str(answer["IssuedToken"])

        # The client's own sign-in, narrowed by an exchange and bound to no other audience: still the script's.
        for token in (derived(own), derived(own, Audiences=[CLI_CLIENT])):
            assert seen_headers(requests.get(f"{app}/x", headers={"Authorization": f"Bearer {token}"}, timeout=10))
        # The same exchange at the token endpoint (RFC 8693 §2.1), bound to another service.
        exchanged = requests.post(f"{server.url}/oauth2/token", timeout=10, data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "client_id": CLI_CLIENT,
            "subject_token": own, "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "audience": "https://billing.example.com"})  # fmt: skip
        assert exchanged.status_code == 200, exchanged.text
        refused = [derived(other), derived(own, Audiences=["https://billing.example.com"]),
                   exchanged.json()["access_token"]]  # fmt: skip
    finally:
        idp.update_user_pool_client(UserPoolId=POOL, ClientId=CLI_CLIENT, ExplicitAuthFlows=flows)
    # A machine's token names no user (and no sign-in): not taken though its client is listed.
    api = "https://api.front-door.example"
    idp.create_resource_server(UserPoolId=POOL, Identifier=api, Name="api",
                               Scopes=[{"ScopeName": "read", "ScopeDescription": "read"}])  # fmt: skip
    idp.update_user_pool_client(UserPoolId=POOL, ClientId=MACHINE_CLIENT, AllowedOAuthFlowsUserPoolClient=True,
                                AllowedOAuthFlows=["client_credentials"],
                                AllowedOAuthScopes=[f"{api}/read"])  # fmt: skip
    machine = requests.post(f"{server.url}/oauth2/token", data={"grant_type": "client_credentials"},
                            auth=(MACHINE_CLIENT, MACHINE_SECRET), timeout=10)  # fmt: skip
    assert machine.status_code == 200, machine.text
    # Another pool's token of a listed client, and its key's kid on this pool's claims.
    elsewhere = public.initiate_auth(ClientId=POOL_2_CLIENT, AuthFlow="USER_PASSWORD_AUTH",
                                     AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD})  # fmt: skip
    elsewhere_token = str(elsewhere["AuthenticationResult"]["AccessToken"])
    claims = jwt.decode(own, options={"verify_signature": False})
    spliced = ".".join((elsewhere_token.split(".")[0], own.split(".")[1], elsewhere_token.split(".")[2]))
    none = jwt.encode(claims, None, algorithm="none")
    # HS256 keyed with the published JWKS (PyJWT itself refuses to sign so: hence by hand).
    jwks = requests.get(f"{server.url}/{POOL}/.well-known/jwks.json", timeout=10).content
    signing_input = jwt.encode(claims, None, algorithm="none").split(".")[1]
    signing_input = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}').decode() + "." + signing_input
    mac = hmac.new(jwks, signing_input.encode(), hashlib.sha256).digest()
    hs256 = signing_input + "." + jwt.utils.base64url_encode(mac).decode()
    refused += [machine.json()["access_token"], elsewhere_token, spliced, none, hs256]
    before = len(upstream.requests)
    for token in refused:
        answer = requests.get(f"{app}/x", headers={"Authorization": f"Bearer {token}"}, timeout=10,
                              allow_redirects=False)  # fmt: skip
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert len(upstream.requests) == before


def test_what_ends_a_sign_in_ends_its_bearer_tokens(server: GatehouseServer) -> None:
    """RevokeToken of the refresh token, a disabled user, a user deleted and made again under the same name, a
    deleted client: the token is refused at the next request."""
    app = f"http://localhost:{server.port}"
    idp, public = server.client(), server.client(signed=False)

    def sign_in(client_id: str) -> dict[str, str]:
        answer = public.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                      AuthParameters={"USERNAME": "carol", "PASSWORD": PASSWORD})  # fmt: skip
        return dict(answer["AuthenticationResult"])

    def status(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return requests.get(f"{app}/x", headers=headers, timeout=10, allow_redirects=False).status_code

    revoked, disabled, deleted, of_deleted_client = (sign_in(c) for c in (CLI_CLIENT,) * 3 + (DELETED_CLIENT,))
    assert {status(t["AccessToken"]) for t in (revoked, disabled, deleted, of_deleted_client)} == {200}
    public.revoke_token(Token=revoked["RefreshToken"], ClientId=CLI_CLIENT)
    assert status(revoked["AccessToken"]) == 401
    idp.delete_user_pool_client(UserPoolId=POOL, ClientId=DELETED_CLIENT)
    assert status(of_deleted_client["AccessToken"]) == 401
    idp.admin_disable_user(UserPoolId=POOL, Username="carol")
    assert status(disabled["AccessToken"]) == 401
    idp.admin_enable_user(UserPoolId=POOL, Username="carol")
    assert status(sign_in(CLI_CLIENT)["AccessToken"]) == 200
    idp.admin_delete_user(UserPoolId=POOL, Username="carol")
    idp.admin_create_user(UserPoolId=POOL, Username="carol", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=POOL, Username="carol", Password=PASSWORD, Permanent=True)
    idp.admin_add_user_to_group(UserPoolId=POOL, Username="carol", GroupName="staff")
    assert status(deleted["AccessToken"]) == 401
    assert status(sign_in(CLI_CLIENT)["AccessToken"]) == 200


def test_identity_headers_a_browser_sends_are_dropped(server: GatehouseServer) -> None:
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    forged = {"X-Gatehouse-Username": "root", "X-Gatehouse-Groups": "admins", "X-Gatehouse-Extra": "1",
              "X-Forwarded-Host": "evil.example", "X-Gatehouse-Id-Token": "forged"}  # fmt: skip
    headers = seen_headers(visitor.get("/", headers=forged))
    assert headers["x-gatehouse-username"] == "alice"
    assert headers["x-gatehouse-groups"] == "staff"
    assert headers["x-gatehouse-id-token"] != "forged"
    assert "x-gatehouse-extra" not in headers
    assert headers["x-forwarded-host"] == f"localhost:{server.port}"


def test_bodies_stream_both_ways(server: GatehouseServer) -> None:
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    payload = b"y" * (3 * 1024 * 1024)  # beyond Gatehouse's own 1 MiB request limit: the proxy streams it
    posted = visitor.http.post(visitor.app + "/upload", data=payload, allow_redirects=False, timeout=20)
    assert posted.status_code == 200 and posted.json()["body_length"] == len(payload)
    big = visitor.get("/big?bytes=5000000")
    assert big.status_code == 200 and len(big.content) == 5_000_000
    # Redirects are the browser's to follow, compressed bodies are passed as they are.
    redirect = visitor.get("/redirect")
    assert redirect.status_code == 302 and redirect.headers["Location"] == "/elsewhere"
    zipped = visitor.get("/gzip")
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.text == "compressed hello" * 10


def test_websockets_are_relayed_with_the_identity(server: GatehouseServer) -> None:
    """RFC 6455 through the proxy: the upstream's subprotocol, the identity headers on its handshake, messages
    both ways, and the upstream's close code back to the browser; without a session no WebSocket opens."""
    import asyncio

    import aiohttp

    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    cookie = next(c.value for c in visitor.http.cookies if c.name == "gatehouse-session")

    async def talk() -> tuple[Any, ...]:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(
                f"http://localhost:{server.port}/ws", protocols=("chat",),
                headers={"Cookie": f"gatehouse-session={cookie}", "X-Gatehouse-Username": "root"},
            ) as ws:  # fmt: skip
                hello = await ws.receive_json()
                await ws.send_str("hi")
                text = await ws.receive_str()
                await ws.send_bytes(b"abc")
                binary = await ws.receive_bytes()
                await ws.send_str("close")
                closed = await ws.receive()
                protocol = ws.protocol
            try:
                await http.ws_connect(f"http://localhost:{server.port}/ws")
                refused: Any = None
            except aiohttp.WSServerHandshakeError as exc:
                refused = exc.status
        return hello, text, binary, closed.type, ws.close_code, protocol, refused

    hello, text, binary, closed, code, protocol, refused = asyncio.run(talk())
    assert hello["headers"]["X-Gatehouse-Username"] == "alice"
    assert (text, binary, protocol) == ("echo:hi", b"cba", "chat")
    assert closed == aiohttp.WSMsgType.CLOSE and code == 4001
    # (aiohttp's client follows the 302 to the sign-in page, which is no handshake either.)
    assert isinstance(refused, int) and refused != 101


def test_without_a_session_other_methods_get_401(server: GatehouseServer, upstream: EchoApp) -> None:
    before = len(upstream.requests)
    answer = requests.post(f"http://localhost:{server.port}/api/items", data=b"{}", timeout=10, allow_redirects=False)
    assert answer.status_code == 401
    assert len(upstream.requests) == before


def test_a_user_outside_the_allowed_groups_is_refused(server: GatehouseServer, upstream: EchoApp) -> None:
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    before = len(upstream.requests)
    answer = visitor.sign_in("/", "bob")
    assert answer.status_code == 403 and "only for members of: staff" in answer.text
    assert len(upstream.requests) == before
    # A page's script is told why, in JSON, as docs/front-door.md says.
    info = visitor.get("/_gatehouse/userinfo")
    assert info.status_code == 403 and info.json() == {"error": "forbidden"}
    # Once in the group, the same session gets in: the groups are read on every request.
    idp = server.client()
    idp.admin_add_user_to_group(UserPoolId=POOL, Username="bob", GroupName="staff")
    try:
        assert seen_headers(visitor.get("/"))["x-gatehouse-groups"] in ("staff,visitors", "visitors,staff")
    finally:
        idp.admin_remove_user_from_group(UserPoolId=POOL, Username="bob", GroupName="staff")
    assert visitor.get("/").status_code == 403


def test_a_group_name_with_a_comma_stays_one_group(server: GatehouseServer) -> None:
    """Cognito allows commas in group names: X-Gatehouse-Groups percent-encodes them (and "%", and characters
    beyond ASCII), so the list splits back into the user's groups."""
    from urllib.parse import unquote

    idp = server.client()
    for name in ("ops,eng", "équipe-100%"):
        idp.create_group(UserPoolId=POOL, GroupName=name)
        idp.admin_add_user_to_group(UserPoolId=POOL, Username="alice", GroupName=name)
    try:
        visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
        visitor.sign_in("/", "alice")
        listed = seen_headers(visitor.get("/"))["x-gatehouse-groups"]
        assert sorted(unquote(item) for item in listed.split(",")) == ["ops,eng", "staff", "équipe-100%"]
        assert "ops%2Ceng" in listed and "%C3%A9quipe-100%25" in listed
    finally:
        for name in ("ops,eng", "équipe-100%"):
            idp.delete_group(UserPoolId=POOL, GroupName=name)


def test_signing_out_ends_the_session_and_its_tokens(server: GatehouseServer) -> None:
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    out = visitor.get("/_gatehouse/sign_out")
    assert out.status_code == 302
    location = out.headers["Location"]
    # The app's root is a sign-out URL of the client: the hosted UI's session ends too.
    assert location.startswith(f"{server.url}/{POOL}/logout?")
    assert parse_qs(urlsplit(location).query)["logout_uri"] == [f"{visitor.app}/"]
    # Back at the app, which sends the browser to sign in, and the hosted UI asks for the password again.
    again = visitor.follow(out)
    assert again.status_code == 200 and "Sign in" in again.text and f"/{POOL}/login" in again.url
    # A copy of the old cookie no longer opens anything: its token family is revoked.
    replay = Visitor(f"http://localhost:{server.port}", PASSWORD)
    session = visitor.sign_in("/", "alice")
    assert session.status_code == 200
    cookie = next(c.value for c in visitor.http.cookies if c.name == "gatehouse-session")
    visitor.get("/_gatehouse/sign_out")
    replay.http.cookies.set("gatehouse-session", cookie)
    assert replay.get("/").status_code == 302


def test_an_email_the_user_has_not_verified_is_not_the_apps_to_trust(server: GatehouseServer) -> None:
    """A user may set their own email attribute to anyone's (UpdateUserAttributes: it stays unverified until the code
    sent there comes back). Apps key accounts on X-Gatehouse-Email (Grafana's auth proxy, for one), so only a verified
    address is passed on, in the headers and in userinfo, as oauth2-proxy refuses unverified ones by default."""
    idp = server.client()
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    assert seen_headers(visitor.get("/"))["x-gatehouse-email"] == "alice@example.com"
    token = access_token(server, CLI_CLIENT, "alice")
    try:
        server.client(signed=False).update_user_attributes(
            AccessToken=token, UserAttributes=[{"Name": "email", "Value": "ceo@example.com"}]
        )
        user = idp.admin_get_user(UserPoolId=POOL, Username="alice")
        attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
        assert attributes["email"] == "ceo@example.com" and attributes["email_verified"] == "false"
        headers = seen_headers(visitor.get("/"))
        assert headers["x-gatehouse-username"] == "alice" and headers.get("x-gatehouse-email", "") == ""
        assert visitor.get("/_gatehouse/userinfo").json()["email"] is None
        bearer = seen_headers(requests.get(f"http://localhost:{server.port}/x", timeout=10,
                                           headers={"Authorization": f"Bearer {token}"}))  # fmt: skip
        assert bearer.get("x-gatehouse-email", "") == ""
        forwarded = requests.get(f"{server.url}/_gatehouse/auth-request?app=wiki", timeout=10,
                                 cookies={c.name: str(c.value) for c in visitor.http.cookies})  # fmt: skip
        assert forwarded.status_code == 200 and forwarded.headers["X-Gatehouse-Email"] == ""
    finally:
        idp.admin_update_user_attributes(UserPoolId=POOL, Username="alice", UserAttributes=[
            {"Name": "email", "Value": "alice@example.com"}, {"Name": "email_verified", "Value": "true"}])  # fmt: skip
    assert seen_headers(visitor.get("/"))["x-gatehouse-email"] == "alice@example.com"


def test_another_site_cannot_sign_the_user_out(server: GatehouseServer) -> None:
    """A page of another site, or of a sibling subdomain (same-site, so SameSite=Lax lets the cookie come along even
    with an image), sending the browser to /_gatehouse/sign_out: the user is asked first, the session kept. The
    browser says where the request comes from in Sec-Fetch-Site (Fetch Metadata), or Origin for a POST; and that it
    only fetches ahead in Sec-Purpose (or Purpose)."""
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    elsewhere = [
        ("GET", {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}),
        ("GET", {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "image"}),
        ("POST", {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}),
        ("POST", {"Origin": "http://evil.example"}),
        ("POST", {"Origin": "null"}),
        # The app's own link fetched ahead of a click (speculation rules, link prefetch): not the user's choice yet.
        ("GET", {"Sec-Fetch-Site": "same-origin", "Sec-Purpose": "prefetch;prerender"}),
        ("GET", {"Sec-Fetch-Site": "same-origin", "Sec-Purpose": "prefetch"}),
        ("GET", {"Purpose": "prefetch"}),
    ]
    for method, headers in elsewhere:
        answer = visitor.http.request(method, f"{visitor.app}/_gatehouse/sign_out", headers=headers,
                                      allow_redirects=False, timeout=10)  # fmt: skip
        assert answer.status_code == 200 and 'href="/_gatehouse/sign_out"' in answer.text, (method, headers)
        assert "Set-Cookie" not in answer.headers, (method, headers)
        assert seen_headers(visitor.get("/still"))["x-gatehouse-username"] == "alice", (method, headers)
    # The app's own page (same origin), a typed address (none), a POST from the app's origin: signed out.
    for method, headers in (("GET", {"Sec-Fetch-Site": "same-origin"}), ("GET", {"Sec-Fetch-Site": "none"}),
                            ("POST", {"Origin": visitor.app, "Sec-Fetch-Site": "same-origin"})):  # fmt: skip
        answer = visitor.http.request(method, f"{visitor.app}/_gatehouse/sign_out", headers=headers,
                                      allow_redirects=False, timeout=10)  # fmt: skip
        assert answer.status_code in (302, 303), (method, headers)
        assert visitor.get("/still").status_code == 302, (method, headers)
        visitor.follow(answer)  # through the hosted UI's /logout, whose session ends too
        visitor.sign_in("/", "alice")


def test_global_sign_out_and_disabling_the_user_end_sessions(server: GatehouseServer) -> None:
    idp = server.client()
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    assert visitor.get("/").status_code == 200
    idp.admin_user_global_sign_out(UserPoolId=POOL, Username="alice")
    assert visitor.get("/").status_code == 302
    visitor.sign_in("/", "alice")
    idp.admin_disable_user(UserPoolId=POOL, Username="alice")
    try:
        assert visitor.get("/").status_code == 302
    finally:
        idp.admin_enable_user(UserPoolId=POOL, Username="alice")


def test_forward_auth_answers_a_proxy_in_front(server: GatehouseServer) -> None:
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    cookies = {c.name: str(c.value) for c in visitor.http.cookies if c.name == "gatehouse-session"}
    forwarded = {"X-Forwarded-Host": f"localhost:{server.port}", "X-Forwarded-Uri": "/wiki/a?b=c",
                 "X-Forwarded-Method": "GET", "X-Forwarded-Proto": "http"}  # fmt: skip
    # Asked at Gatehouse's own host, as nginx and Traefik ask it; the app by the forwarded host or ?app=.
    for url in (f"{server.url}/_gatehouse/forward-auth", f"{server.url}/_gatehouse/auth-request?app=wiki"):
        allowed = requests.get(url, headers=forwarded, cookies=cookies, timeout=10, allow_redirects=False)
        assert allowed.status_code == 200
        assert allowed.headers["X-Gatehouse-Username"] == "alice"
    anonymous = requests.get(f"{server.url}/_gatehouse/forward-auth", headers=forwarded, timeout=10,
                             allow_redirects=False)  # fmt: skip
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"] == f"{visitor.app}/_gatehouse/start?rd=/wiki/a%3Fb%3Dc"
    posted = requests.get(f"{server.url}/_gatehouse/forward-auth", timeout=10, allow_redirects=False,
                          headers={**forwarded, "X-Forwarded-Method": "POST"})  # fmt: skip
    assert posted.status_code == 401
    nginx = requests.get(f"{server.url}/_gatehouse/auth-request?app=wiki", timeout=10, allow_redirects=False)
    assert nginx.status_code == 401
    unknown = requests.get(f"{server.url}/_gatehouse/auth-request?app=nope", timeout=10, allow_redirects=False)
    assert unknown.status_code == 403


REPO = Path(__file__).resolve().parents[2]


def proxy_set_ups(answered: set[str]) -> dict[str, tuple[set[str], str]]:
    """Each proxy set-up the documents give (docs/front-door.md, examples/front_door/): the identity headers it
    hands the app from the check's answer (lower case; of ``answered``, those a Traefik regex matches), and its whole
    text (comments name the token headers)."""
    doc = (REPO / "docs" / "front-door.md").read_text()
    example = (REPO / "examples" / "front_door" / "README.md").read_text()
    set_ups: dict[str, tuple[set[str], str]] = {}
    for source, text in (("docs/front-door.md", doc), ("examples/front_door/README.md", example)):
        for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
            if "auth_request " in block:
                names = re.findall(r"^\s*proxy_set_header (X-Gatehouse-[\w-]+)", block, re.MULTILINE)
                set_ups[f"{source}: nginx"] = ({n.lower() for n in names}, block)
            elif "forwardAuth:" in block:
                middleware = yaml.safe_load(block)["http"]["middlewares"]["gatehouse"]["forwardAuth"]
                # authResponseHeadersRegex: a Go regexp matched against the header names (this one Python's too).
                pattern = re.compile(middleware.get("authResponseHeadersRegex", "(?!)"))
                listed = {n.lower() for n in middleware.get("authResponseHeaders", ())}
                matched = {n for n in answered if pattern.search("-".join(p.title() for p in n.split("-")))}
                set_ups[f"{source}: Traefik"] = (listed | matched, block)
            elif "forward_auth " in block:
                copied = re.search(r"^\s*copy_headers (.+)$", block, re.MULTILINE)
                assert copied is not None, block
                set_ups[f"{source}: Caddy"] = ({n.lower() for n in copied.group(1).split()}, block)
    conf = (REPO / "examples" / "front_door" / "nginx.conf").read_text()
    names = re.findall(r"^\s*proxy_set_header (X-Gatehouse-[\w-]+)", conf, re.MULTILINE)
    set_ups["examples/front_door/nginx.conf"] = ({n.lower() for n in names}, conf)
    return set_ups


def test_every_documented_proxy_set_up_hands_the_app_every_header_of_the_check(server: GatehouseServer) -> None:
    """nginx and Traefik replace only the headers they are told to copy from the check's answer and pass on what
    the browser sent under any other name: a set-up that leaves one of the check's headers out lets a browser
    choose that header's value. Each set-up the documents give copies every identity header a real check
    answers, and the token headers (pass_tokens) too or names them where it says how to add them."""
    visitor = Visitor(f"http://localhost:{server.port}", PASSWORD)
    visitor.sign_in("/", "alice")
    cookies = {c.name: str(c.value) for c in visitor.http.cookies if c.name == "gatehouse-session"}
    asked = requests.get(f"{server.url}/_gatehouse/auth-request?app=wiki", cookies=cookies, timeout=10)
    assert asked.status_code == 200
    answered = {name.lower() for name in asked.headers if name.lower().startswith("x-gatehouse-")}
    tokens = {"x-gatehouse-id-token", "x-gatehouse-access-token"}
    assert tokens < answered and "x-gatehouse-pool" in answered
    set_ups = proxy_set_ups(answered)
    assert len(set_ups) == 6, sorted(set_ups)
    for where, (copied, text) in set_ups.items():
        assert answered - tokens <= copied, (where, sorted(answered - tokens - copied))
        for name in tokens:
            assert name in copied or name in text.lower(), (where, name)


def test_metrics_count_the_front_door(server: GatehouseServer) -> None:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    assert 'gatehouse_front_door_requests_total{app="wiki",outcome="allowed"}' in text
    assert 'gatehouse_front_door_sign_ins_total{app="wiki",outcome="signed_in"}' in text
