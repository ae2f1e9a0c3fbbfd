"""The front door (docs/front-door.md) behind a real nginx, as examples/front_door/ sets it up: Debian's nginx
runs the example's own nginx.conf (only its three addresses changed) in front of an upstream app
(tests/fakes/echo_app.py), asking Gatehouse with ``auth_request`` about every request. Gatehouse runs the
example's gatehouse.yaml with the app's URL made nginx's and two more users. A browser-like client with a cookie
jar, and headless Chromium, sign in on the hosted UI and reach the app, which is told who the user is; what the
browser sends in the identity headers' names never reaches the app; sign-out and GlobalSignOut end the session.
The shorter nginx block docs/front-door.md shows is run too, as a reader would copy it.

The app is ``localhost:<nginx port>``; Gatehouse's own pages are ``127.0.0.1:<Gatehouse port>``: two hosts, as
an app's host and the sign-in host are two in a deployment."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
import yaml

from tests.e2e.front_door_support import Visitor, other_session, seen_headers
from tests.fakes.echo_app import EchoApp
from tests.fakes.server import ThreadedApp
from tests.support import GatehouseServer, free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "front_door"
NGINX = "/usr/sbin/nginx"
# The example's addresses (examples/front_door/README.md), each replaced by a free port here.
EXAMPLE_APP_URL = "http://localhost:8080"
EXAMPLE_LISTEN = "listen 127.0.0.1:8080;"
EXAMPLE_GATEHOUSE = "server 127.0.0.1:9229;"
EXAMPLE_UPSTREAM = "server 127.0.0.1:8000;"

POOL = "us-east-1_FrontDoor"
PASSWORD = "Front-door-Example-1"  # alice's in the example; the other users get the same
OTHER_CLIENT = "otherexample0000000000001"
CLI_CLIENT = "cliexample000000000000001"  # a script's client, in the app's bearer_clients
IDENTITY = ("X-Gatehouse-Sub", "X-Gatehouse-Username", "X-Gatehouse-Email", "X-Gatehouse-Groups", "X-Gatehouse-Pool")

pytestmark = pytest.mark.skipif(
    not os.path.exists(NGINX), reason=f"nginx is not installed at {NGINX} (scripts/test.sh installs Debian's nginx)"
)


@pytest.fixture(scope="module")
def nginx_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoApp]:
    with EchoApp() as app:
        yield app


def gatehouse_config(app_url: str) -> str:
    """The example's gatehouse.yaml with the app at ``app_url``, public paths, the session's tokens and a script's
    client whose access tokens stand in for a session; two users
    more: bob, outside the allowed group, and carol, in it but without an email address; and a second app,
    ``other``, that bob may enter, on another host of the same nginx port, with a public path of its own."""
    config = yaml.safe_load((EXAMPLE / "gatehouse.yaml").read_text())
    (pool,) = config["pools"]
    (client,) = pool["clients"]
    (app,) = config["front_door"]["apps"]
    assert pool["id"] == POOL and app["url"] == EXAMPLE_APP_URL
    assert client["callback_urls"] == [f"{EXAMPLE_APP_URL}/_gatehouse/callback"]
    assert client["logout_urls"] == [f"{EXAMPLE_APP_URL}/"]
    app["url"] = app_url
    app["public_paths"] = ["/hooks/", "/healthz"]
    app["pass_tokens"] = True
    app["bearer_clients"] = [CLI_CLIENT]
    pool["clients"].append({"id": CLI_CLIENT, "name": "cli", "explicit_auth_flows": ["ALLOW_USER_PASSWORD_AUTH"]})
    client["callback_urls"] = [f"{app_url}/_gatehouse/callback"]
    client["logout_urls"] = [f"{app_url}/"]
    other_url = app_url.replace("://localhost:", "://other.localhost:")
    pool["clients"].append(
        {"id": OTHER_CLIENT, "name": "other", "allowed_oauth_flows": ["code"], "allowed_oauth_scopes": ["openid"],
         "callback_urls": [f"{other_url}/_gatehouse/callback"]}
    )  # fmt: skip
    config["front_door"]["apps"].append(
        {"name": "other", "url": other_url, "user_pool": POOL, "client_id": OTHER_CLIENT,
         "allowed_groups": ["visitors"], "public_paths": ["/admin/"]}
    )  # fmt: skip
    pool["groups"].append({"name": "visitors"})
    pool["users"] += [
        {"username": "bob", "password": PASSWORD, "attributes": {"email": "bob@example.com"}, "groups": ["visitors"]},
        {"username": "carol", "password": PASSWORD, "groups": ["staff"]},
    ]
    return yaml.safe_dump(config, sort_keys=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, nginx_port: int) -> Iterator[GatehouseServer]:
    data_dir = tmp_path_factory.mktemp("front-door-nginx") / "data"
    gatehouse = GatehouseServer(data_dir, config=gatehouse_config(f"http://localhost:{nginx_port}"))
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


def nginx_config(listen_port: int, gatehouse_port: int, upstream_port: int) -> str:
    """The example's nginx.conf with its three addresses replaced, and nothing else."""
    text = (EXAMPLE / "nginx.conf").read_text()
    for old, new in (
        (EXAMPLE_LISTEN, f"listen 127.0.0.1:{listen_port};"),
        (EXAMPLE_GATEHOUSE, f"server 127.0.0.1:{gatehouse_port};"),
        (EXAMPLE_UPSTREAM, f"server 127.0.0.1:{upstream_port};"),
    ):
        assert text.count(old) == 1, f"the example's nginx.conf has no single {old!r}"
        text = text.replace(old, new)
    return text


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, nginx_port: int, server: GatehouseServer, upstream: EchoApp
) -> Iterator[str]:
    """The example's nginx; the app's URL as browsers use it."""
    with running_nginx(
        tmp_path_factory.mktemp("nginx"), nginx_config(nginx_port, server.port, upstream.port), nginx_port
    ):
        yield f"http://localhost:{nginx_port}"


@contextlib.contextmanager
def running_nginx(prefix: Path, config: str, port: int) -> Iterator[None]:
    """nginx in the foreground with ``config``, everything it writes (pid, logs, temporary files) under
    ``prefix``, until the block ends."""
    conf = prefix / "nginx.conf"
    conf.write_text(config)
    error_log = prefix / "error.log"
    # Run as root, nginx would start its workers as "nobody", who cannot enter pytest's private temp directory.
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    command = [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(error_log), "-g", directives]
    with (prefix / "stdout.log").open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                log = (prefix / "stdout.log").read_text() + (error_log.read_text() if error_log.exists() else "")
                raise RuntimeError(f"nginx did not start:\n{log}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sub_of(server: GatehouseServer, username: str, pool_id: str = POOL) -> str:
    user = server.client().admin_get_user(UserPoolId=pool_id, Username=username)
    return str(next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub"))


def test_the_example_config_passes_config_check() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", "examples/front_door/gatehouse.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "examples/front_door/gatehouse.yaml: OK (1 pools)" in result.stdout, result.stdout


def test_a_visitor_signs_in_through_nginx_and_the_app_is_told_who_they_are(
    nginx: str, server: GatehouseServer, upstream: EchoApp
) -> None:
    visitor = Visitor(nginx, PASSWORD)
    before = len(upstream.requests)
    first = visitor.get("/docs/page?x=1&y=2")
    # Every part of the query comes back after the sign-in (Gatehouse encodes it; nginx could not).
    assert first.status_code == 302
    assert first.headers["Location"] == f"{nginx}/_gatehouse/start?rd=/docs/page%3Fx%3D1%26y%3D2"
    assert len(upstream.requests) == before  # the app saw nothing of it
    start = visitor.get(first.headers["Location"])
    assert start.status_code == 302 and start.headers["Location"].startswith(f"{server.url}/{POOL}/oauth2/authorize?")
    # The sign-in cookie is set on the app's host, through nginx (the standard library's cookie jar names a
    # host without a dot so).
    signing_in = [c.domain for c in visitor.http.cookies if c.name.startswith("gatehouse-sign-in-")]
    assert signing_in == ["localhost.local"]

    answer = visitor.sign_in("/docs/page?x=1&y=2", "alice")
    assert answer.url == f"{nginx}/docs/page?x=1&y=2"
    assert answer.json()["path_qs"] == "/docs/page?x=1&y=2"
    headers = seen_headers(answer)
    assert headers["x-gatehouse-username"] == "alice"
    assert headers["x-gatehouse-email"] == "alice@example.com"
    assert headers["x-gatehouse-groups"] == "staff"
    assert headers["x-gatehouse-pool"] == POOL
    assert headers["x-gatehouse-sub"] == sub_of(server, "alice")
    assert headers["host"] == f"localhost:{urlsplit(nginx).port}"
    assert headers["x-forwarded-proto"] == "http"
    # Later requests go straight through, with the app's own answer and cookies.
    again = visitor.get("/api/items")
    assert seen_headers(again)["x-gatehouse-username"] == "alice"
    assert "app_cookie=from-upstream" in again.headers["Set-Cookie"]
    info = visitor.get("/_gatehouse/userinfo").json()
    assert info["username"] == "alice" and info["groups"] == ["staff"] and info["sub"] == sub_of(server, "alice")


def test_identity_headers_a_browser_sends_never_reach_the_app(
    nginx: str, server: GatehouseServer, upstream: EchoApp
) -> None:
    forged = {
        "X-Gatehouse-Sub": "00000000-0000-0000-0000-000000000000",
        "X-Gatehouse-Username": "root",
        "X-Gatehouse-Email": "root@example.com",
        "X-Gatehouse-Groups": "admins",
        "X-Gatehouse-Pool": "us-east-1_Other",
        "X-Forwarded-Host": "evil.example",
    }
    # Without a session, forged headers open nothing.
    before = len(upstream.requests)
    assert Visitor(nginx, PASSWORD).get("/", headers=forged).status_code == 302
    assert len(upstream.requests) == before

    alice = Visitor(nginx, PASSWORD)
    alice.sign_in("/", "alice")
    headers = seen_headers(alice.get("/", headers=forged))
    assert headers["x-gatehouse-sub"] == sub_of(server, "alice")
    assert headers["x-gatehouse-username"] == "alice"
    assert headers["x-gatehouse-email"] == "alice@example.com"
    assert headers["x-gatehouse-groups"] == "staff"
    assert headers["x-gatehouse-pool"] == POOL
    # Gatehouse found the app by the host nginx set, not by the browser's X-Forwarded-Host.
    assert headers["host"] == f"localhost:{urlsplit(nginx).port}"
    # Spelt with underscores (one name with the dashed one to CGI and WSGI servers): nginx drops such names
    # (underscores_in_headers off, its default, which the example keeps).
    underscored = seen_headers(alice.get("/", headers={"X_Gatehouse_Groups": "admins", "X_Gatehouse_Sub": "forged"}))
    assert not [name for name in underscored if "_" in name] and underscored["x-gatehouse-groups"] == "staff"

    # carol has no email address: nginx sends the app no X-Gatehouse-Email at all, not the browser's.
    carol = Visitor(nginx, PASSWORD)
    carol.sign_in("/", "carol")
    answer = carol.get("/", headers=forged)
    headers = seen_headers(answer)
    assert headers["x-gatehouse-username"] == "carol"
    assert "x-gatehouse-email" not in headers
    for name in IDENTITY:
        values = [v for k, v in answer.json()["headers"] if k.lower() == name.lower()]
        assert len(values) <= 1 and forged[name] not in values, (name, values)


def test_without_a_session_other_methods_get_401_and_the_check_is_not_reachable(nginx: str, upstream: EchoApp) -> None:
    before = len(upstream.requests)
    posted = requests.post(f"{nginx}/api/items", data=b'{"a": 1}', timeout=10, allow_redirects=False)
    assert posted.status_code == 401 and "Sign-in required" in posted.text
    head = requests.head(f"{nginx}/docs", timeout=10, allow_redirects=False)
    assert head.status_code == 302 and head.headers["Location"].endswith("/_gatehouse/start?rd=/docs")
    # The subrequest's location is nginx's own: a browser asking for it is told there is nothing there.
    assert requests.get(f"{nginx}/_gatehouse/auth-request", timeout=10).status_code == 404
    assert len(upstream.requests) == before


def raw_status(nginx: str, target: str, headers: Sequence[tuple[str, str]] = ()) -> int:
    """nginx's status for a GET of ``target`` sent as written (no client library normalizing it), with
    ``headers`` (a Host among them replaces the app's)."""
    parts = urlsplit(nginx)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    try:
        named_host = any(name.lower() == "host" for name, _ in headers)
        connection.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        if not named_host:
            connection.putheader("Host", parts.netloc)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


# Targets whose path some server reads as another than Gatehouse would (dot segments, plain or encoded, an encoded
# slash, Tomcat's path parameters, a slash nginx merges, NUL), and one longer than nginx takes.
READ_ANOTHER_WAY = ["/hooks/../admin", "/hooks/%2e%2e/admin", "/hooks/x/..%2f..%2fadmin", "/hooks/..%2fadmin",
                    "/hooks/..;/admin", "//hooks/x", "/hooks/%00/x", "/hooks/x#/../../admin",
                    "/hooks/" + "a" * 9000]  # fmt: skip


def test_public_paths_reach_the_app_only_as_nginx_forwards_them(nginx: str, upstream: EchoApp) -> None:
    """The example asks Gatehouse about $request_uri, the target nginx hands the app as it is: a public path is let
    through, a target some server could read as another path is not, and neither is one the browser names in its
    own X-Forwarded-Uri (which nginx would pass to the check unless it set that header itself)."""
    before = len(upstream.requests)
    forged = {"X-Gatehouse-Username": "root", "X-Gatehouse-Id-Token": "forged", "X-Gatehouse-Access-Token": "forged"}
    hook = requests.post(f"{nginx}/hooks/build/42?x=1", data=b"payload", headers=forged, timeout=10)
    assert hook.json()["path_qs"] == "/hooks/build/42?x=1" and hook.json()["body_head"] == "payload"
    # Public paths carry no identity, nor anything the browser sent under its names.
    assert not [name for name in seen_headers(hook) if name.startswith("x-gatehouse-")]
    assert requests.get(f"{nginx}/healthz", timeout=10).json()["path_qs"] == "/healthz"
    assert len(upstream.requests) == before + 2
    for uri in ("/hooks/x", "/healthz"):
        assert raw_status(nginx, "/admin", [("X-Forwarded-Uri", uri)]) == 302, uri
        assert raw_status(nginx, "/admin", [("X-Forwarded-Uri", uri), ("X-Forwarded-Uri", uri)]) == 302, uri
    for target in READ_ANOTHER_WAY:
        assert raw_status(nginx, target) in (302, 400, 414), target[:40]
    assert len(upstream.requests) == before + 2


def test_a_host_naming_another_app_opens_nothing_here(nginx: str, server: GatehouseServer, upstream: EchoApp) -> None:
    """The example's server block is nginx's default for its port, so it also gets requests naming the host of
    another app of the same Gatehouse. Its check names its own app: that app's sessions (bob may enter ``other``,
    not this one) and public paths open nothing here; and as the host contradicts the name, the browser is told
    that no app is served there (a 404 page), not sent to sign in to this one."""
    other = f"other.localhost:{urlsplit(nginx).port}"
    bob = other_session(server, other, "bob", PASSWORD)
    asked = requests.get(f"{server.url}/_gatehouse/auth-request?app=other", cookies={"gatehouse-session": bob},
                         timeout=10)  # fmt: skip
    assert asked.status_code == 200 and asked.headers["X-Gatehouse-Username"] == "bob"
    before = len(upstream.requests)
    assert raw_status(nginx, "/", [("Host", other), ("Cookie", f"gatehouse-session={bob}")]) == 404
    assert raw_status(nginx, "/admin/x", [("Host", other)]) == 404
    assert len(upstream.requests) == before


def test_the_app_is_handed_the_tokens_and_a_page_cannot_read_them(nginx: str, server: GatehouseServer) -> None:
    visitor = Visitor(nginx, PASSWORD)
    visitor.sign_in("/", "alice")
    forged = {"X-Gatehouse-Id-Token": "forged", "X-Gatehouse-Access-Token": "forged"}
    headers = seen_headers(visitor.get("/", headers=forged))
    keys = jwt.PyJWKClient(f"{server.url}/{POOL}/.well-known/jwks.json")
    for name, token_use in (("x-gatehouse-id-token", "id"), ("x-gatehouse-access-token", "access")):
        token = headers[name]
        claims = jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"],
                            issuer=f"{server.url}/{POOL}", options={"verify_aud": False})  # fmt: skip
        assert claims["token_use"] == token_use and claims["sub"] == headers["x-gatehouse-sub"]
    # What a page's script can fetch on the app's host: never the tokens (nor the check that holds them).
    for path in ("/_gatehouse/forward-auth", "/_gatehouse/auth-request"):
        answer = visitor.get(path)
        assert answer.status_code == 404, path
        assert not [name for name in answer.headers if name.lower().startswith("x-gatehouse-")], path
    info = visitor.get("/_gatehouse/userinfo")
    assert info.json()["username"] == "alice" and "token" not in info.text.lower()


def _refused_count(server: GatehouseServer) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    line = 'gatehouse_front_door_requests_total{app="hello",outcome="unauthenticated"} '
    return sum(float(row.removeprefix(line)) for row in text.splitlines() if row.startswith(line))


def test_a_request_nginx_asks_about_twice_is_counted_once(nginx: str, server: GatehouseServer) -> None:
    """nginx asks auth_request, then (its 401 sent to @front_door) forward-auth for the browser's answer: one
    request of the browser, one in gatehouse_front_door_requests_total."""
    before = _refused_count(server)
    for path in ("/a", "/b", "/c"):
        assert requests.get(f"{nginx}{path}", timeout=10, allow_redirects=False).status_code == 302
    assert _refused_count(server) == before + 3


def test_a_scripts_access_token_through_nginx(nginx: str, server: GatehouseServer, upstream: EchoApp) -> None:
    """bearer_clients behind nginx: the subrequest sees the Authorization header; a refusal reaches the script as
    RFC 6750's answer through @front_door (its challenge once, never a redirect to sign in), counted once."""
    public = server.client(signed=False)

    def token(username: str) -> str:
        answer = public.initiate_auth(ClientId=CLI_CLIENT, AuthFlow="USER_PASSWORD_AUTH",
                                      AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})  # fmt: skip
        return str(answer["AuthenticationResult"]["AccessToken"])

    alice = token("alice")
    answer = requests.post(f"{nginx}/api/items", data=b"{}", headers={"Authorization": f"Bearer {alice}"}, timeout=10)
    headers = seen_headers(answer)
    assert headers["x-gatehouse-username"] == "alice" and headers["authorization"] == f"Bearer {alice}"
    assert "x-gatehouse-access-token" not in headers
    before, counted = len(upstream.requests), _refused_count(server)
    for value, method, status, error in (
        ("Bearer not-a-token", "GET", 401, "invalid_token"),
        (f"Bearer {token('bob')}", "GET", 403, "insufficient_scope"),
        ("Bearer not-a-token", "POST", 401, "invalid_token"),
    ):
        refused = requests.request(method, f"{nginx}/docs", headers={"Authorization": value}, timeout=10,
                                   allow_redirects=False)  # fmt: skip
        assert refused.status_code == status and "Location" not in refused.headers, (method, value[:20])
        assert refused.raw.headers.getlist("WWW-Authenticate") == [f'Bearer error="{error}"']
    # Authorization twice: refused (by nginx itself or by Gatehouse), never let through.
    twice = [("Authorization", f"Bearer {alice}"), ("Authorization", "Bearer other")]
    assert raw_status(nginx, "/docs", twice) == 400
    assert len(upstream.requests) == before
    assert _refused_count(server) - counted in (2, 3)  # the 400 too, unless nginx refused it before asking


def test_a_user_outside_the_allowed_groups_gets_403(nginx: str, server: GatehouseServer, upstream: EchoApp) -> None:
    visitor = Visitor(nginx, PASSWORD)
    before = len(upstream.requests)
    refused = visitor.sign_in("/", "bob")
    assert refused.status_code == 403 and "only for members of: staff" in refused.text
    assert refused.url == f"{nginx}/"
    assert len(upstream.requests) == before
    # The groups are read on every request: once in staff, the same session gets in.
    idp = server.client()
    idp.admin_add_user_to_group(UserPoolId=POOL, Username="bob", GroupName="staff")
    try:
        assert seen_headers(visitor.get("/"))["x-gatehouse-groups"] in ("staff,visitors", "visitors,staff")
    finally:
        idp.admin_remove_user_from_group(UserPoolId=POOL, Username="bob", GroupName="staff")
    assert visitor.get("/").status_code == 403


def test_signing_out_on_the_app_host_ends_the_session(nginx: str, server: GatehouseServer) -> None:
    visitor = Visitor(nginx, PASSWORD)
    visitor.sign_in("/", "alice")
    cookie = next(str(c.value) for c in visitor.http.cookies if c.name == "gatehouse-session")
    out = visitor.get("/_gatehouse/sign_out")
    assert out.status_code == 302
    location = out.headers["Location"]
    # The app's root is a sign-out URL of the example's client: the hosted UI's session ends too.
    assert location.startswith(f"{server.url}/{POOL}/logout?")
    assert parse_qs(urlsplit(location).query)["logout_uri"] == [f"{nginx}/"]
    assert not [c for c in visitor.http.cookies if c.name == "gatehouse-session"]
    # Back at the app, the next request is sent to sign in, and the hosted UI asks for the password again.
    again = visitor.follow(out)
    assert again.status_code == 200 and "Sign in" in again.text and f"/{POOL}/login" in again.url
    # A copy of the old cookie opens nothing any more.
    replay = Visitor(nginx, PASSWORD)
    replay.http.cookies.set("gatehouse-session", cookie)
    assert replay.get("/").status_code == 302


def test_global_sign_out_ends_the_session(nginx: str, server: GatehouseServer) -> None:
    visitor = Visitor(nginx, PASSWORD)
    visitor.sign_in("/", "alice")
    assert seen_headers(visitor.get("/"))["x-gatehouse-username"] == "alice"
    server.client().admin_user_global_sign_out(UserPoolId=POOL, Username="alice")
    ended = visitor.get("/")
    assert ended.status_code == 302 and ended.headers["Location"] == f"{nginx}/_gatehouse/start?rd=/"
    assert visitor.get("/_gatehouse/userinfo").status_code == 401
    # Signing in again opens a new session.
    assert seen_headers(visitor.sign_in("/", "alice"))["x-gatehouse-username"] == "alice"


def test_chromium_signs_in_through_nginx(nginx: str, server: GatehouseServer, browser: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{nginx}/reports?year=2026&q=all")
        # Sent to the hosted sign-in page, on Gatehouse's own host.
        assert page.url.startswith(f"{server.url}/{POOL}/login"), page.url
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{nginx}/reports?year=2026&q=all")
        echo = json.loads(page.inner_text("body"))
        assert echo["path_qs"] == "/reports?year=2026&q=all"
        headers = {name.lower(): value for name, value in echo["headers"]}
        assert headers["x-gatehouse-username"] == "alice"
        assert headers["x-gatehouse-email"] == "alice@example.com"
        assert headers["x-gatehouse-groups"] == "staff"
        assert headers["x-gatehouse-sub"] == sub_of(server, "alice")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["gatehouse-session"]["domain"] == "localhost" and cookies["gatehouse-session"]["httpOnly"]
    finally:
        context.close()


def test_another_site_sending_chromium_to_sign_out_only_asks(nginx: str, server: GatehouseServer, browser: Any) -> None:
    """Chromium sent to /_gatehouse/sign_out by another site's page (Gatehouse's own host, 127.0.0.1, is another
    site than localhost) says so (Sec-Fetch-Site: cross-site): the user is asked, and signed out by the page's link."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{nginx}/first")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{nginx}/first")
        page.goto(f"{server.url}/health")
        page.evaluate("target => { location.href = target }", f"{nginx}/_gatehouse/sign_out")
        page.wait_for_url(f"{nginx}/_gatehouse/sign_out")
        assert page.get_by_role("heading").inner_text() == "Sign out?"
        page.goto(f"{nginx}/still")
        assert json.loads(page.inner_text("body"))["path_qs"] == "/still"
        # The page's own link is the app's: signed out, through the hosted UI's /logout, back to sign in.
        page.goto(f"{server.url}/health")
        page.evaluate("target => { location.href = target }", f"{nginx}/_gatehouse/sign_out")
        page.wait_for_url(f"{nginx}/_gatehouse/sign_out")
        page.get_by_role("link", name="Sign out").click()
        page.wait_for_url(f"{server.url}/{POOL}/login**")
        page.goto(f"{nginx}/after")
        assert page.url.startswith(f"{server.url}/{POOL}/login"), page.url
    finally:
        context.close()


class ExampleApp(ThreadedApp):
    """examples/front_door/app.py, served as its ``__main__`` serves it."""

    def build(self) -> Any:
        spec = importlib.util.spec_from_file_location("front_door_example_app", EXAMPLE / "app.py")
        assert spec is not None and spec.loader is not None
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
        return example.make_app()


def test_the_example_app_greets_the_user_nginx_names() -> None:
    with ExampleApp() as app:
        # As the front door writes the groups "staff", "R&D, Europe" and "Équipe" (docs/front-door.md).
        headers = {"X-Gatehouse-Username": "<alice>", "X-Gatehouse-Groups": "staff,R&D%2C Europe,%C3%89quipe"}
        page = requests.get(f"{app.url}/", headers=headers, timeout=10)
        assert page.status_code == 200
        assert "Hello, &lt;alice&gt;!" in page.text
        assert "<li>staff</li><li>R&amp;D, Europe</li><li>Équipe</li>" in page.text, page.text
        assert 'href="/_gatehouse/sign_out"' in page.text
        assert requests.get(f"{app.url}/", timeout=10).status_code == 403


def docs_nginx_config(listen_port: int, gatehouse_port: int, upstream_port: int) -> str:
    """The server block docs/front-door.md shows ("Behind nginx"), as a reader would put it in an nginx.conf: in an
    http { } of its own, served over plain HTTP on ``listen_port``, Gatehouse and the app at their ports."""
    doc = (REPO / "docs" / "front-door.md").read_text()
    (block,) = re.findall(r"^```nginx\n(.*?)^```", doc, re.MULTILINE | re.DOTALL)
    for old, new in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{listen_port};"),
        ("server_name wiki.example.com;", "server_name localhost;"),
        ("http://127.0.0.1:9229", f"http://127.0.0.1:{gatehouse_port}"),
        ("http://127.0.0.1:8080", f"http://127.0.0.1:{upstream_port}"),
    ):
        assert old in block, f"docs/front-door.md's nginx block has no {old!r}"
        block = block.replace(old, new)
    temp = " ".join(f"{kind}_temp_path {kind}_temp;" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"pid nginx.pid;\nevents {{}}\nhttp {{\n    access_log access.log;\n    {temp}\n{block}}}\n"


def test_the_nginx_block_of_the_docs_signs_in_and_out(tmp_path: Path, upstream: EchoApp) -> None:
    """docs/front-door.md's own nginx block, with Gatehouse on its default issuer (the listen address, which the
    block's proxy_pass names): the hosted sign-in page and /logout stay on Gatehouse's host (nginx's default
    proxy_redirect would move them onto the app's, where every request asks to sign in again: a loop), the app is
    told who the user is under every identity header's name, and sign-out ends the session."""
    port = free_port()
    app_url = f"http://localhost:{port}"
    config = f"""version: 1
pools:
  - id: us-east-1_Example01
    name: example
    groups: [{{name: staff}}]
    users:
      - {{username: alice, password: {PASSWORD}, groups: [staff],
         attributes: {{email: alice@example.com, email_verified: "true"}}}}
    clients:
      - id: wikiapp00000000000000001
        name: wiki
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid]
        callback_urls: ["{app_url}/_gatehouse/callback"]
        logout_urls: ["{app_url}/"]
front_door:
  apps:
    - {{name: wiki, url: "{app_url}", user_pool: us-east-1_Example01, client_id: wikiapp00000000000000001,
        allowed_groups: [staff]}}
"""
    gatehouse = GatehouseServer(tmp_path / "data", config=config)
    gatehouse.start()
    try:
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        with running_nginx(prefix, docs_nginx_config(port, gatehouse.port, upstream.port), port):
            visitor = Visitor(app_url, PASSWORD)
            answer = visitor.sign_in("/docs?a=1&b=2", "alice")
            assert answer.url == f"{app_url}/docs?a=1&b=2"
            sent = {"X-Gatehouse-Pool": "us-east-1_Other", "X-Gatehouse-Username": "root"}
            headers = seen_headers(visitor.get("/next", headers=sent))
            assert {name: headers[name.lower()] for name in IDENTITY} == {
                "X-Gatehouse-Sub": sub_of(gatehouse, "alice", "us-east-1_Example01"),
                "X-Gatehouse-Username": "alice",
                "X-Gatehouse-Email": "alice@example.com",
                "X-Gatehouse-Groups": "staff",
                "X-Gatehouse-Pool": "us-east-1_Example01",
            }
            signed_out = visitor.get("/_gatehouse/sign_out")
            assert signed_out.status_code == 302
            assert signed_out.headers["Location"].startswith(f"{gatehouse.url}/us-east-1_Example01/logout?")
            assert visitor.get("/next").status_code == 302
    finally:
        gatehouse.stop()
