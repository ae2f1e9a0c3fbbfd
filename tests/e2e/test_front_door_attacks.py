"""The front door (docs/front-door.md) against what a hostile browser or a careless deployment sends: redirects
that would leave the app's host, forged, replayed or malformed callbacks (RFC 6749 §4.1.2, §3.1; RFC 9207),
session cookies tampered with or taken to another app, requests that a proxy must not pass on as they are
(RFC 9110 §7.6), an upstream that is down or cuts its answer short, and identity headers with text beyond ASCII.

Three apps on one server, told apart by the Host header as a proxy in front would route them: ``wiki`` on
``localhost:<port>`` and ``notes`` on ``notes.localhost:<port>`` (both forwarded to a real upstream,
tests/fakes/echo_app.py, notes under the upstream's ``/notes``), ``down``, whose upstream nothing listens on, and
``gone``, whose client is deleted. Gatehouse's own pages are on ``127.0.0.1:<port>``."""

from __future__ import annotations

import http.client
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import Browser
from tests.fakes.echo_app import EchoApp
from tests.support import GatehouseServer, free_port

POOL = "us-east-1_FrontDoor2"
PASSWORD = "Front-door-pass-1"
CLIENTS = {"wiki": "wikiclient00000000000001", "notes": "notesclient0000000000001", "down": "downclient00000000000001",
           "gone": "goneclient00000000000001"}  # fmt: skip


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoApp]:
    with EchoApp() as app:
        yield app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: EchoApp) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("front-door-attacks") / "data"
    gatehouse = GatehouseServer(data_dir, config="version: 1\n")
    port = gatehouse.port
    urls = {"wiki": f"http://localhost:{port}", "notes": f"http://notes.localhost:{port}",
            "down": f"http://down.localhost:{port}", "gone": f"http://gone.localhost:{port}"}  # fmt: skip
    upstreams = {"wiki": upstream.url, "notes": f"{upstream.url}/notes", "down": f"http://127.0.0.1:{free_port()}",
                 "gone": upstream.url}  # fmt: skip
    clients = "\n".join(
        f"      - {{id: {CLIENTS[name]}, name: {name}, allowed_oauth_flows: [code], allowed_oauth_scopes: [openid],"
        f' callback_urls: ["{urls[name]}/_gatehouse/callback"]}}'
        for name in CLIENTS
    )
    apps = "\n".join(
        f'    - {{name: {name}, url: "{urls[name]}", user_pool: {POOL}, client_id: {CLIENTS[name]},'
        f' upstream: "{upstreams[name]}"}}'
        for name in CLIENTS
    )
    assert gatehouse.config_path is not None
    gatehouse.config_path.write_text(f"""
version: 1
pools:
  - id: {POOL}
    name: front-door-attacks
    groups: [{{name: staff}}]
    users:
      - username: alice
        password: {PASSWORD}
        attributes: {{email: alice@example.com, email_verified: "true"}}
        groups: [staff]
      - username: "jösé"
        password: {PASSWORD}
        attributes: {{email: "jösé@example.com", email_verified: "true"}}
    clients:
{clients}
front_door:
  apps:
{apps}
""")
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


def app_url(server: GatehouseServer, name: str) -> str:
    prefix = "" if name == "wiki" else f"{name}."
    return f"http://{prefix}localhost:{server.port}"


def at(server: GatehouseServer, method: str, url: str, **kwargs: Any) -> requests.Response:
    """``url`` asked of Gatehouse's address with ``url``'s host in the Host header, as a proxy routes it."""
    parts = urlsplit(url)
    headers = {"Host": parts.netloc, **kwargs.pop("headers", {})}
    target = f"{server.url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return requests.request(method, target, headers=headers, allow_redirects=False, timeout=15, **kwargs)


def raw(server: GatehouseServer, data: bytes, *, timeout: float = 10) -> bytes:
    """What Gatehouse answers to ``data`` sent as it is on a new connection (read until it closes)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def set_cookie(response: requests.Response, name: str) -> str | None:
    match = re.search(rf"(?:^|, ){re.escape(name)}=([^;]*)", response.headers.get("Set-Cookie", ""))
    return match.group(1) if match and match.group(1) else None


def sign_in_cookie(response: requests.Response) -> dict[str, str]:
    """The sign-in cookie a /start answer sets, as {name: value}: named by the sign-in's state."""
    found = re.findall(r"(?:^|, )(gatehouse-sign-in-[A-Za-z0-9_-]{16})=([^;]+)", response.headers.get("Set-Cookie", ""))
    assert len(found) == 1, response.headers.get("Set-Cookie")
    return dict(found)


def callback_for(
    server: GatehouseServer, name: str, *, user: str = "alice", rd: str = "/"
) -> tuple[str, dict[str, str]]:
    """Start a sign-in for app ``name`` (``rd`` as it is in the query) and sign in on the hosted UI: the
    callback URL the browser is sent to and the sign-in cookie it holds ({name: value})."""
    start = at(server, "GET", f"{app_url(server, name)}/_gatehouse/start?rd={rd}")
    assert start.status_code == 302, start.text
    sign_in = sign_in_cookie(start)
    hosted = requests.Session()
    page = hosted.get(start.headers["Location"], timeout=10)
    fields = {**Browser.form_fields(page), "username": user, "password": PASSWORD}
    action = Browser.form_action(page)
    base = urlsplit(page.url)
    target = action if "://" in action else f"{base.scheme}://{base.netloc}{action}"
    answer = hosted.post(target, data=fields, allow_redirects=False, timeout=10)
    while answer.headers.get("Location", "").startswith(server.url):
        answer = hosted.get(answer.headers["Location"], allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text[:500]
    return answer.headers["Location"], sign_in


def finish(server: GatehouseServer, callback: str, sign_in: dict[str, str]) -> requests.Response:
    return at(server, "GET", callback, cookies=sign_in)


def session_for(server: GatehouseServer, name: str, *, user: str = "alice") -> str:
    done = finish(server, *callback_for(server, name, user=user))
    cookie = set_cookie(done, "gatehouse-session")
    assert done.status_code == 302 and cookie is not None, done.text[:500]
    return cookie


def get_as(server: GatehouseServer, name: str, path: str, cookie: str, **kwargs: Any) -> requests.Response:
    return at(server, "GET", app_url(server, name) + path, cookies={"gatehouse-session": cookie}, **kwargs)


@pytest.fixture(scope="module")
def alice(server: GatehouseServer) -> str:
    return session_for(server, "wiki")


# --- where the browser is sent ---------------------------------------------------------------------------

OTHER_HOSTS = ["//evil.example/x", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
               "http://evil.example/", "javascript:alert(1)", "evil.example", ""]  # fmt: skip


@pytest.mark.parametrize("uri", OTHER_HOSTS)
def test_forward_auth_sends_the_browser_back_only_to_the_app_host(server: GatehouseServer, uri: str) -> None:
    """X-Forwarded-Uri is where to come back to after signing in: another host is the app's root instead."""
    answer = requests.get(f"{server.url}/_gatehouse/forward-auth", allow_redirects=False, timeout=10,
                          headers={"X-Forwarded-Host": f"localhost:{server.port}", "X-Forwarded-Uri": uri})  # fmt: skip
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{app_url(server, 'wiki')}/_gatehouse/start?rd=/"


@pytest.mark.parametrize("rd", ["//evil.example", "/\\evil.example", "/%2F%2Fevil.example", "%2F%2Fevil.example",
                                "/%5Cevil.example", "/%09/evil.example", "https://evil.example"])  # fmt: skip
def test_rd_that_names_another_host_lands_on_the_app_root(server: GatehouseServer, rd: str) -> None:
    """The ``rd`` of /_gatehouse/start (here as it is in the query, decoded once) is a path or nothing."""
    done = finish(server, *callback_for(server, "wiki", rd=rd))
    assert done.status_code == 302 and done.headers["Location"] == "/"


FORWARD_AUTH = (
    b"GET /_gatehouse/forward-auth HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Host: localhost:%d\r\n"
    b"X-Forwarded-Uri: %s\r\nConnection: close\r\n\r\n"
)


def test_a_path_beyond_ascii_comes_back_percent_encoded(server: GatehouseServer) -> None:
    """A Location is a URI reference (RFC 9110 §10.2.2): UTF-8, percent-encoded, as the browser asked for it."""
    done = finish(server, *callback_for(server, "wiki", rd=quote("/café/ü?q=ß", safe="/")))
    assert done.status_code == 302
    assert done.headers["Location"] == "/caf%C3%A9/%C3%BC?q=%C3%9F"
    forwarded = raw(server, FORWARD_AUTH % (server.port, b"/caf\xc3\xa9"))
    assert forwarded.startswith(b"HTTP/1.1 302 ")
    assert b"/_gatehouse/start?rd=/caf%25C3%25A9\r\n" in forwarded


def test_a_forwarded_uri_that_is_not_utf8_is_the_app_root_not_a_500(server: GatehouseServer) -> None:
    forwarded = raw(server, FORWARD_AUTH % (server.port, b"/caf\xe9"))
    assert forwarded.startswith(b"HTTP/1.1 302 "), forwarded[:300]
    assert b"/_gatehouse/start?rd=/\r\n" in forwarded


# --- the callback ----------------------------------------------------------------------------------------


def test_a_callback_without_iss_is_refused(server: GatehouseServer) -> None:
    """Gatehouse's authorization endpoint always sends iss (authorization_response_iss_parameter_supported):
    an answer without it is not its own (RFC 9207 §2.4)."""
    callback, sign_in = callback_for(server, "wiki")
    query = parse_qs(urlsplit(callback).query)
    stripped = f"{app_url(server, 'wiki')}/_gatehouse/callback?code={query['code'][0]}&state={query['state'][0]}"
    answer = finish(server, stripped, sign_in)
    assert answer.status_code == 400 and "another issuer" in answer.text
    assert set_cookie(answer, "gatehouse-session") is None


@pytest.mark.parametrize("repeated", ["code=forged", "state=forged", "iss=http://evil.example/pool"])
def test_a_callback_with_a_repeated_parameter_is_refused(server: GatehouseServer, repeated: str) -> None:
    """RFC 6749 §3.1: a parameter given twice is an answer not to guess at, whichever copy comes first."""
    callback, sign_in = callback_for(server, "wiki")
    for url in (f"{callback}&{repeated}", callback.replace("?", f"?{repeated}&", 1)):
        answer = finish(server, url, sign_in)
        assert answer.status_code == 400, (url, answer.headers.get("Location"))
        assert set_cookie(answer, "gatehouse-session") is None


def test_a_replayed_callback_gives_no_session_and_ends_the_first(server: GatehouseServer) -> None:
    """A code is used once; its reuse revokes what it gave (RFC 6749 §4.1.2), the session with it."""
    callback, sign_in = callback_for(server, "wiki")
    first = finish(server, callback, sign_in)
    cookie = set_cookie(first, "gatehouse-session")
    assert first.status_code == 302 and cookie is not None
    replay = finish(server, callback, sign_in)
    assert replay.status_code == 400 and set_cookie(replay, "gatehouse-session") is None
    assert get_as(server, "wiki", "/", cookie).status_code == 302


def test_forged_and_foreign_callbacks_are_refused(server: GatehouseServer) -> None:
    wiki = app_url(server, "wiki")
    callback, sign_in = callback_for(server, "wiki")
    query = {name: values[0] for name, values in parse_qs(urlsplit(callback).query).items()}
    # Another sign-in's state and code, with this browser's sign-in cookie (RFC 6749 §10.12).
    other, _ = callback_for(server, "wiki")
    # A code of another app's client, with this sign-in's state and issuer.
    foreign, _ = callback_for(server, "notes")
    foreign_code = parse_qs(urlsplit(foreign).query)["code"][0]
    cases = {
        "another sign-in's state": (other, sign_in),
        "no sign-in cookie": (callback, {}),
        "a garbled sign-in cookie": (callback, {k: v[:-4] + "AAAA" for k, v in sign_in.items()}),
        "another client's code": (f"{wiki}/_gatehouse/callback?code={foreign_code}&state={query['state']}"
                                  f"&iss={quote(query['iss'], safe='')}", sign_in),
        "another pool's issuer": (callback.replace(quote(POOL), "us-east-1_Other000"), sign_in),
        "the IdP's error": (f"{wiki}/_gatehouse/callback?error=%3Cb%3Ebad%3C/b%3E&state={query['state']}"
                            f"&iss={quote(query['iss'], safe='')}", sign_in),
        "no code": (f"{wiki}/_gatehouse/callback?state={query['state']}&iss={quote(query['iss'], safe='')}", sign_in),
    }  # fmt: skip
    for case, (url, cookie) in cases.items():
        answer = at(server, "GET", url, cookies=cookie)
        assert answer.status_code == 400, (case, answer.status_code, answer.text[:300])
        assert set_cookie(answer, "gatehouse-session") is None, case
        assert "<b>" not in answer.text, case
    # The sign-in is still the browser's to finish: none of the above used its code.
    assert finish(server, callback, sign_in).status_code == 302


# --- session cookies -------------------------------------------------------------------------------------


def test_only_an_intact_session_cookie_of_this_app_opens_it(server: GatehouseServer, alice: str) -> None:
    assert get_as(server, "wiki", "/", alice).status_code == 200
    _, sign_in = callback_for(server, "wiki")
    notes = session_for(server, "notes")
    assert get_as(server, "notes", "/", notes).status_code == 200
    refused = {
        "another app's session": notes,
        "a sign-in cookie": next(iter(sign_in.values())),
        "truncated": alice[: len(alice) // 2],
        "one character changed": alice[:-6] + ("B" if alice[-6] != "B" else "C") + alice[-5:],
        "oversized": alice * 30,
        "not base64": "%%%;;",
    }
    for case, cookie in refused.items():
        answer = get_as(server, "wiki", "/secret", cookie)
        assert answer.status_code == 302, (case, answer.status_code)
        assert answer.headers["Location"].endswith("/_gatehouse/start?rd=/secret"), case
    # The same on the endpoints a proxy in front asks, for the cookie of another app.
    forwarded = {"X-Forwarded-Host": f"notes.localhost:{server.port}"}
    auth = requests.get(f"{server.url}/_gatehouse/auth-request", headers=forwarded,
                        cookies={"gatehouse-session": alice}, timeout=10)  # fmt: skip
    assert auth.status_code == 401


def test_a_query_naming_another_app_opens_nothing_on_this_host(server: GatehouseServer, alice: str) -> None:
    """Caddy's forward_auth (``uri /_gatehouse/forward-auth``) keeps the browser's query on the check it asks, its
    rewrite setting the path alone: ``?app=notes`` on a request to the wiki is the browser's word, and must not
    have the check judge it by notes' sessions (a user of notes let through to the wiki as such)."""
    notes = session_for(server, "notes")
    wiki_host, notes_host = f"localhost:{server.port}", f"notes.localhost:{server.port}"

    def asked(endpoint: str, query: str, host: str | None) -> requests.Response:
        headers = {"X-Forwarded-Uri": f"/x?{query}", "X-Forwarded-Method": "GET"}
        if host is not None:
            headers["X-Forwarded-Host"] = host
        return requests.get(f"{server.url}/_gatehouse/{endpoint}?{query}", headers=headers,
                            cookies={"gatehouse-session": notes}, allow_redirects=False, timeout=10)  # fmt: skip

    # Caddy picks the site by the host's name alone, so the browser chooses the port (and the case) that Caddy
    # passes on in X-Forwarded-Host: the wiki's host however written.
    wiki_hosts = [wiki_host, "localhost", "localhost:1", f"LOCALHOST.:{server.port}", "localhost.", "Localhost:80"]
    for endpoint in ("forward-auth", "auth-request"):
        for query, host in [*(("app=notes", host) for host in wiki_hosts), ("app=notes&app=wiki", wiki_host),
                            ("app=wiki&app=notes", notes_host), ("app=notes&app=notes", notes_host)]:  # fmt: skip
            answer = asked(endpoint, query, host)
            assert answer.status_code in (403, 404), (endpoint, query, answer.status_code)
            assert not [name for name in answer.headers if name.lower().startswith("x-gatehouse-")], (endpoint, query)
        # The query names the app where the host agrees or names none (nginx's set-up asks from its own address).
        for host in (notes_host, None, f"elsewhere.example:{server.port}"):
            answer = asked(endpoint, "app=notes", host)
            assert answer.status_code == 200 and answer.headers["X-Gatehouse-Username"] == "alice", (endpoint, host)
    # X-Forwarded-Host naming two hosts (on two lines, or as a list: a proxy that adds the host it was asked for to
    # the browser's own) is no one host to go by.
    for forwarded in ([("X-Forwarded-Host", notes_host), ("X-Forwarded-Host", wiki_host)],
                      [("X-Forwarded-Host", f"{notes_host}, {wiki_host}")]):  # fmt: skip
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            connection.putrequest("GET", "/_gatehouse/forward-auth")
            for name, value in [*forwarded, ("Cookie", f"gatehouse-session={notes}"), ("X-Forwarded-Uri", "/x")]:
                connection.putheader(name, value)
            connection.endheaders()
            answer = connection.getresponse()
            assert answer.status == 404 and answer.getheader("X-Gatehouse-Username") is None, forwarded
        finally:
            connection.close()
    # The same host named twice is that host.
    same = requests.get(f"{server.url}/_gatehouse/forward-auth", cookies={"gatehouse-session": notes}, timeout=10,
                        headers={"X-Forwarded-Host": f"{notes_host}, {notes_host.upper()}"})  # fmt: skip
    assert same.status_code == 200 and same.headers["X-Gatehouse-Username"] == "alice"
    # The same on the browser's endpoints of the wiki's host.
    info = at(
        server, "GET", f"{app_url(server, 'wiki')}/_gatehouse/userinfo?app=wiki", cookies={"gatehouse-session": alice}
    )
    assert info.status_code == 200 and info.json()["username"] == "alice"
    info = requests.get(f"{server.url}/_gatehouse/userinfo?app=notes", headers={"X-Forwarded-Host": wiki_host},
                        cookies={"gatehouse-session": notes}, timeout=10)  # fmt: skip
    assert info.status_code == 404


def test_a_deleted_user_or_app_client_ends_the_session(server: GatehouseServer) -> None:
    idp = server.client()
    idp.admin_create_user(UserPoolId=POOL, Username="carol", TemporaryPassword=PASSWORD, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=POOL, Username="carol", Password=PASSWORD, Permanent=True)
    carol = session_for(server, "wiki", user="carol")
    assert get_as(server, "wiki", "/", carol).status_code == 200
    idp.admin_delete_user(UserPoolId=POOL, Username="carol")
    assert get_as(server, "wiki", "/", carol).status_code == 302
    gone = session_for(server, "gone")
    assert get_as(server, "gone", "/", gone).status_code == 200
    idp.delete_user_pool_client(UserPoolId=POOL, ClientId=CLIENTS["gone"])
    assert get_as(server, "gone", "/", gone).status_code == 302
    # Starting again leads to the hosted UI, which says the client is gone; never a 500.
    start = at(server, "GET", f"{app_url(server, 'gone')}/_gatehouse/start")
    assert start.status_code == 302
    assert requests.get(start.headers["Location"], timeout=10).status_code in (400, 404)


def test_a_user_made_to_reset_the_password_has_no_session(server: GatehouseServer) -> None:
    """Threat protection that finds the password among leaked ones sets the user to RESET_REQUIRED at the next
    sign-in attempt (the attacker's, say), without revoking anything: no refresh of the user's sign-ins works any
    more (PasswordResetRequiredException), and nor does a session, which lasts only as long as a refresh would."""
    idp = server.client()
    leaked = "Password1"  # in zxcvbn's list of the most common leaked passwords

    def hosted_sign_in() -> tuple[requests.Response, requests.Response]:
        start = at(server, "GET", f"{app_url(server, 'wiki')}/_gatehouse/start")
        hosted = requests.Session()
        page = hosted.get(start.headers["Location"], timeout=10)
        fields = {**Browser.form_fields(page), "username": "dave", "password": leaked}
        answer = hosted.post(f"{server.url}{Browser.form_action(page)}", data=fields, allow_redirects=False,
                             timeout=10)  # fmt: skip
        while answer.headers.get("Location", "").startswith(server.url):
            answer = hosted.get(answer.headers["Location"], allow_redirects=False, timeout=10)
        return start, answer

    policy = idp.describe_user_pool(UserPoolId=POOL)["UserPool"]["Policies"]
    idp.update_user_pool(UserPoolId=POOL, Policies={"PasswordPolicy": {"MinimumLength": 8}},
                         UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"})  # fmt: skip
    try:
        idp.admin_create_user(UserPoolId=POOL, Username="dave", MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=POOL, Username="dave", Password=leaked, Permanent=True)
        start, answer = hosted_sign_in()
        done = finish(server, answer.headers["Location"], sign_in_cookie(start))
        dave = set_cookie(done, "gatehouse-session")
        assert dave is not None and get_as(server, "wiki", "/", dave).status_code == 200
        idp.set_risk_configuration(UserPoolId=POOL, CompromisedCredentialsRiskConfiguration={
            "EventFilter": ["SIGN_IN"], "Actions": {"EventAction": "BLOCK"}})  # fmt: skip
        # Someone signs in with the leaked password: blocked, and dave must reset it.
        _, blocked = hosted_sign_in()
        assert not blocked.headers.get("Location", "").startswith(app_url(server, "wiki")), blocked.text[:300]
        assert idp.admin_get_user(UserPoolId=POOL, Username="dave")["UserStatus"] == "RESET_REQUIRED"
        assert get_as(server, "wiki", "/", dave).status_code == 302
        assert get_as(server, "wiki", "/_gatehouse/userinfo", dave).status_code == 401
        asked = requests.get(f"{server.url}/_gatehouse/forward-auth?app=wiki", cookies={"gatehouse-session": dave},
                             allow_redirects=False, timeout=10)  # fmt: skip
        assert asked.status_code == 302
    finally:
        idp.set_risk_configuration(UserPoolId=POOL)
        idp.update_user_pool(UserPoolId=POOL, Policies=policy, UserPoolAddOns={"AdvancedSecurityMode": "OFF"})


# --- the proxy -------------------------------------------------------------------------------------------


def request_bytes(server: GatehouseServer, cookie: str, line: bytes, *headers: bytes) -> bytes:
    head = [line, b"Host: localhost:%d" % server.port, b"Cookie: gatehouse-session=" + cookie.encode(), *headers]
    if not any(h.lower().startswith(b"connection:") for h in headers):
        head.append(b"Connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n"


@pytest.mark.parametrize("path", ["/a%2Fb", "/a/%2e%2e/b", "/a/../b", "/a%00b", "//evil.example/x", "/a;b?x=%20&y",
                                  "/%2e%2e/%2e%2e/etc/passwd"])  # fmt: skip
def test_paths_are_forwarded_unchanged(server: GatehouseServer, alice: str, path: str) -> None:
    answer = raw(server, request_bytes(server, alice, b"GET " + path.encode() + b" HTTP/1.1"))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert f'"path_qs": "{path}"'.encode() in answer


@pytest.mark.parametrize("path", ["/../admin", "/./../admin", "/x/../../admin", "/%2e%2e/admin", "/%2E./admin",
                                  "/..%2fadmin", "/..;/admin", "/..%3b/admin", "/..\\admin", "/..%5cadmin",
                                  "/%252e%252e/admin", "/.. /admin".replace(" ", "%20"), "/.../admin"])  # fmt: skip
def test_a_path_cannot_leave_the_upstreams_prefix(server: GatehouseServer, upstream: EchoApp, path: str) -> None:
    """notes' upstream is the echo app's /notes: a signed-in user of notes must not reach what the upstream's
    server serves beside it (/admin) by a path it resolves (dot segments, encoded, Tomcat's ``..;``, Windows' ``\\``
    and ``..%20``, a second decoding)."""
    notes = session_for(server, "notes")
    before = len(upstream.requests)
    answer = raw(server, request_bytes(server, notes, b"GET " + path.encode() + b" HTTP/1.1").replace(
        b"Host: localhost:", b"Host: notes.localhost:"))  # fmt: skip
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert len(upstream.requests) == before
    # What stays under the prefix goes through as it is.
    fine = raw(server, request_bytes(server, notes, b"GET /a/b.c/d..e?x=/../ HTTP/1.1").replace(
        b"Host: localhost:", b"Host: notes.localhost:"))  # fmt: skip
    assert _echoed(fine)["path_qs"] == "/notes/a/b.c/d..e?x=/../"


def test_hop_by_hop_and_listed_headers_are_not_forwarded(server: GatehouseServer, alice: str) -> None:
    answer = raw(server, request_bytes(server, alice, b"GET /hop HTTP/1.1",
                                       b"Connection: close, X-Gatehouse-Username, X-Custom", b"X-Custom: 1",
                                       b"X-Gatehouse-Username: root", b"Keep-Alive: timeout=5", b"TE: trailers",
                                       b"Proxy-Authorization: Basic eDp5"))  # fmt: skip
    seen = {name.lower(): value for name, value in _echoed(answer)["headers"]}
    assert seen["x-gatehouse-username"] == "alice"
    for name in ("x-custom", "keep-alive", "te", "proxy-authorization"):
        assert name not in seen, name
    assert seen.get("connection", "").lower() in ("", "keep-alive", "close")


def test_what_the_browser_says_of_the_client_and_the_url_is_not_forwarded(server: GatehouseServer, alice: str) -> None:
    """The upstream hears from Gatehouse alone who the client is and what it asked for: RFC 7239's Forwarded (read
    before X-Forwarded-* by Spring's ForwardedHeaderFilter, Django's and Rails' proxies when trusted) and X-Real-IP
    are Gatehouse's own, not the browser's; X-Original-URL and X-Rewrite-URL (which IIS, Symfony and Zend took for
    the request's path) do not pass: the path the front door judged is the one the app serves."""
    answer = raw(server, request_bytes(server, alice, b"GET /who HTTP/1.1",
                                       b"Forwarded: for=10.0.0.1;host=admin.internal;proto=https",
                                       b"Forwarded: for=10.0.0.2", b"X-Real-IP: 10.0.0.1", b"x-real-ip: 10.0.0.3",
                                       b"X-Original-URL: /admin", b"X-Rewrite-URL: /admin"))  # fmt: skip
    headers = _echoed(answer)["headers"]
    seen = {name.lower(): value for name, value in headers}
    assert [value for name, value in headers if name.lower() == "forwarded"] == [
        f'for=127.0.0.1;host="localhost:{server.port}";proto=http'
    ]
    assert [value for name, value in headers if name.lower() == "x-real-ip"] == ["127.0.0.1"]
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert "x-original-url" not in seen and "x-rewrite-url" not in seen


def test_identity_headers_spelt_with_underscores_are_dropped(server: GatehouseServer, alice: str) -> None:
    """CGI and the WSGI servers that follow it (wsgiref, gunicorn before 22, PHP) read ``X_Gatehouse_Groups`` as
    ``X-Gatehouse-Groups`` (both HTTP_X_GATEHOUSE_GROUPS), joining the two with a comma: a browser's underscore
    spelling would add its own groups to the user's. Dropped, as the dashed names are; so are a proxy's fields
    spelt so."""
    answer = raw(server, request_bytes(server, alice, b"GET /underscores HTTP/1.1", b"X_Gatehouse_Groups: admins",
                                       b"x_gatehouse_username: root", b"X-Gatehouse_Sub: forged",
                                       b"X_Forwarded_For: 10.6.6.6", b"X_Forwarded_Host: admin.internal",
                                       b"X_Real_IP: 10.6.6.6", b"X_Original_URL: /admin"))  # fmt: skip
    headers = _echoed(answer)["headers"]
    names = {name.lower().replace("_", "-") for name, _ in headers}
    assert [value for name, value in headers if name.lower().replace("_", "-") == "x-gatehouse-groups"] == ["staff"]
    assert [value for name, value in headers if name.lower().replace("_", "-") == "x-gatehouse-username"] == ["alice"]
    assert not [name for name, _ in headers if "_" in name], headers
    assert "x-original-url" not in names


def _echoed(answer: bytes) -> dict[str, Any]:
    import json

    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    body = answer.split(b"\r\n\r\n", 1)[1]
    return dict(json.loads(body))


def test_a_smuggling_attempt_is_refused(server: GatehouseServer, alice: str, upstream: EchoApp) -> None:
    before = len(upstream.requests)
    head = request_bytes(server, alice, b"POST /s HTTP/1.1", b"Content-Length: 4", b"Transfer-Encoding: chunked")
    answer = raw(server, head + b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
    assert answer.split(b" ", 2)[1] == b"400"
    assert not any(r["path_qs"] == "/smuggled" for r in upstream.requests[before:])


def test_an_upgrade_to_another_protocol_is_not_forwarded_as_one(server: GatehouseServer, alice: str) -> None:
    """Only a WebSocket handshake is relayed as one: another Upgrade (h2c, say) reaches the upstream as a plain
    request without its hop-by-hop fields."""
    answer = raw(server, request_bytes(server, alice, b"GET /h2c HTTP/1.1", b"Connection: Upgrade, close",
                                       b"Upgrade: h2c"))  # fmt: skip
    assert not answer.startswith(b"HTTP/1.1 101")
    seen = {name.lower() for name, _ in _echoed(answer)["headers"]}
    assert "upgrade" not in seen


def test_a_websocket_handshake_without_a_session_opens_nothing(server: GatehouseServer, upstream: EchoApp) -> None:
    before = len(upstream.requests)
    host = app_url(server, "wiki").split("://")[1]
    handshake = (
        f"GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    answer = raw(server, handshake.encode())
    assert answer.startswith(b"HTTP/1.1 302 ")
    assert len(upstream.requests) == before


def test_head_and_an_upstream_that_fails(server: GatehouseServer, alice: str) -> None:
    head = raw(server, request_bytes(server, alice, b"HEAD /head HTTP/1.1"))
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    # An upstream that cuts its body short: the browser sees the connection cut, not a body taken as whole.
    truncated = raw(server, request_bytes(server, alice, b"GET /truncated HTTP/1.1"))
    assert truncated.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 1000" in truncated
    assert len(truncated.split(b"\r\n\r\n", 1)[1]) < 1000
    # An upstream nobody listens on: a 502 page at once.
    down = session_for(server, "down")
    answer = get_as(server, "down", "/", down)
    assert answer.status_code == 502 and "did not answer" in answer.text


def test_the_host_is_matched_as_browsers_send_it(server: GatehouseServer, alice: str) -> None:
    upper = get_as(server, "wiki", "/case", alice, headers={"Host": f"LOCALHOST:{server.port}"})
    assert upper.status_code == 200 and upper.json()["path_qs"] == "/case"
    # A trailing dot is another name to a browser (and its cookies): not the app, and not a 500.
    dotted = get_as(server, "wiki", "/dot", alice, headers={"Host": f"localhost.:{server.port}"})
    assert dotted.status_code == 404
    start = at(server, "GET", f"http://localhost.:{server.port}/_gatehouse/start")
    assert start.status_code == 404


# --- identity headers ------------------------------------------------------------------------------------


def test_identity_beyond_ascii_reaches_the_app_as_utf8(server: GatehouseServer) -> None:
    """Header values are bytes (RFC 9110 §5.5): a name beyond ASCII is sent as its UTF-8, on both paths."""
    cookie = session_for(server, "wiki", user="jösé")
    seen = {name.lower(): value for name, value in get_as(server, "wiki", "/", cookie).json()["headers"]}
    assert seen["x-gatehouse-username"] == "jösé" and seen["x-gatehouse-email"] == "jösé@example.com"
    auth = requests.get(f"{server.url}/_gatehouse/auth-request?app=wiki", cookies={"gatehouse-session": cookie},
                        timeout=10)  # fmt: skip
    assert auth.status_code == 200
    # requests reads header bytes as latin-1 (as WSGI does): the app decodes them as UTF-8.
    assert auth.headers["X-Gatehouse-Username"].encode("latin-1").decode() == "jösé"


def test_an_attribute_cannot_hold_a_line_break(server: GatehouseServer) -> None:
    idp = server.client()
    for value in ("a\r\nX-Gatehouse-Groups: admins@example.com", "a\nb@example.com"):
        with pytest.raises(ClientError) as refused:
            idp.admin_update_user_attributes(UserPoolId=POOL, Username="alice",
                                             UserAttributes=[{"Name": "email", "Value": value}])  # fmt: skip
        assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


# --- Gatehouse's own host --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["start?rd=/x", "callback?code=x&state=y", "sign_out", "userinfo", "forward-auth",
                                  "start?app=", "start?app=nope", "nope"])  # fmt: skip
def test_endpoints_for_no_app_are_404_pages(server: GatehouseServer, path: str) -> None:
    for method in ("GET", "HEAD", "POST"):
        answer = requests.request(method, f"{server.url}/_gatehouse/{path}", allow_redirects=False, timeout=10)
        assert answer.status_code in (404, 405), (method, answer.status_code)


# --- several sign-ins at once ------------------------------------------------------------------------------


def test_sign_ins_begun_in_several_tabs_each_finish(server: GatehouseServer) -> None:
    """Tabs opened together (a restored browser session) each begin a sign-in: each has its own cookie, so every
    callback finishes, in whatever order, with the browser sending all of them."""
    first_callback, first = callback_for(server, "wiki")
    second_callback, second = callback_for(server, "wiki")
    assert first.keys() != second.keys()
    jar = {**first, **second}
    for callback in (second_callback, first_callback):
        done = finish(server, callback, jar)
        assert done.status_code == 302, done.text[:300]
        assert set_cookie(done, "gatehouse-session") is not None
        # The finished sign-in's cookie is cleared, the other one left alone.
        state = parse_qs(urlsplit(callback).query)["state"][0]
        cleared = re.findall(r"(?:^|, )(gatehouse-sign-in-[\w-]+)=;", done.headers["Set-Cookie"])
        assert cleared == [f"gatehouse-sign-in-{state[:16]}"]


def test_a_new_sign_in_clears_stale_and_surplus_sign_in_cookies(server: GatehouseServer) -> None:
    """A page that sends its visitors to sign in again and again must not grow the Cookie header without end:
    /start clears unreadable sign-in cookies and keeps only the newest three besides its own."""
    wiki = app_url(server, "wiki")
    held: dict[str, str] = {}
    for _ in range(5):
        start = at(server, "GET", f"{wiki}/_gatehouse/start", cookies=held)
        assert start.status_code == 302
        for name in re.findall(r"(?:^|, )(gatehouse-sign-in-[\w-]+)=;", start.headers["Set-Cookie"]):
            held.pop(name)
        held.update(sign_in_cookie(start))
        time.sleep(1.1)  # the sign-ins' expiries differ by a second or more: which is oldest is well defined
    assert len(held) == 4
    forged = {"gatehouse-sign-in-AAAAAAAAAAAAAAAA": "not-sealed", **held}
    start = at(server, "GET", f"{wiki}/_gatehouse/start", cookies=forged)
    cleared = set(re.findall(r"(?:^|, )(gatehouse-sign-in-[\w-]+)=;", start.headers["Set-Cookie"]))
    oldest = next(iter(held))
    assert cleared == {"gatehouse-sign-in-AAAAAAAAAAAAAAAA", oldest}
