"""What an operator running Gatehouse meets: tools given a data dir that holds no server's store, a stop
while a client is still sending its request, and what the server answers to requests it cannot parse."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import SHUTDOWN_SECONDS
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, TEST_ARGON2_ENV, GatehouseServer, free_port

PASSWORD = "Correct-Horse-9"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``gatehouse ARGS`` with no GATEHOUSE_* variable but ``env``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False, env={**environ, **(env or {})},
    )  # fmt: skip


def assert_refused(result: subprocess.CompletedProcess[str], *words: str, status: int = 1) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == status, output
    assert "Traceback" not in output, output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in output, output


# --- tools on a data dir ------------------------------------------------------------------------------------


def test_keys_rotate_on_a_mistyped_data_dir_is_refused_and_makes_nothing(tmp_path: Path) -> None:
    # A typo must not give the operator a new, empty store (a new secret key and admin credentials) and a
    # "new signing keys" line while the server's own keys stay as they were.
    missing = tmp_path / "gatehuose"
    result = run_cli("keys", "rotate", "--data-dir", str(missing), "identity")
    assert_refused(result, str(missing))
    assert not missing.exists()
    # A directory that exists but holds no database (the data dir's parent, say) is no better.
    empty = tmp_path / "var-lib"
    empty.mkdir()
    result = run_cli("keys", "rotate", "--data-dir", str(empty), "--now", "identity")
    assert_refused(result, str(empty / "gatehouse.db"))
    assert list(empty.iterdir()) == []


# --- stopping -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_client_stalled_in_its_request_body_does_not_hold_a_stop(tmp_path: Path, workers: int) -> None:
    # An orchestrator sends SIGTERM and waits its grace period (Kubernetes: 30 s) before SIGKILL. A client that
    # stopped half-way through its body held aiohttp's default 60 s; requests in flight get a bounded wait.
    server = GatehouseServer(tmp_path / "data", workers=workers)
    server.start()
    assert server.process is not None
    try:
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        stalled.sendall(
            b"POST / HTTP/1.1\r\nHost: gatehouse\r\nContent-Type: application/x-amz-json-1.1\r\n"
            b"X-Amz-Target: AWSCognitoIdentityProviderService.SignUp\r\nContent-Length: 200\r\n\r\n{"
        )
        time.sleep(0.5)  # read and handed to its handler, which waits for the rest of the body
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=SHUTDOWN_SECONDS + 15) == 0
        assert time.monotonic() - started < SHUTDOWN_SECONDS + 5
        with stalled:
            assert stalled.recv(100) == b""  # closed, not left open
    finally:
        server.stop()


def test_a_lone_server_told_twice_to_stop_answers_the_requests_in_flight(tmp_path: Path) -> None:
    # One process (the default), signalled twice: a wrapper that passes a terminal's Ctrl-C on to it, or a
    # supervisor that repeats its SIGTERM. The second signal cut the graceful stop short: requests dropped
    # without an answer, and exit status 1. Production hashing cost, so that the sign-ups are still running.
    server = GatehouseServer(tmp_path / "data", production_argon2=True)
    server.start()
    assert server.process is not None
    try:
        idp = server.client()
        pool_id = idp.create_user_pool(PoolName="stop")["UserPool"]["Id"]
        client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="c")["UserPoolClient"]["ClientId"]
        connections = []
        for number in range(30):
            body = json.dumps({"ClientId": client_id, "Username": f"user{number}", "Password": PASSWORD}).encode()
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=60)
            connection.sendall(
                b"POST / HTTP/1.1\r\nHost: gatehouse\r\nContent-Type: application/x-amz-json-1.1\r\n"
                b"X-Amz-Target: AWSCognitoIdentityProviderService.SignUp\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            connections.append(connection)
        time.sleep(0.3)  # every request read and in flight
        server.process.send_signal(signal.SIGINT)
        time.sleep(0.1)
        server.process.send_signal(signal.SIGINT)
        statuses = [status_of(connection) for connection in connections]
        assert statuses == [b"200"] * 30
        assert server.process.wait(timeout=SHUTDOWN_SECONDS + 15) == 0
    finally:
        server.stop()
    with sqlite3.connect(tmp_path / "data" / "gatehouse.db") as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (30,)


def status_of(connection: socket.socket) -> bytes:
    with connection:
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b" ", 2)[1] if answer else b"(closed)"


@pytest.mark.parametrize("pause", [0.002, 0.0], ids=["every-2ms", "back-to-back"])
@pytest.mark.parametrize("workers", [1, 2])
def test_stop_signals_that_keep_coming_while_the_server_exits_still_end_in_status_0(
    tmp_path: Path, workers: int, pause: float
) -> None:
    # systemd signals every process of the server, and a supervisor may signal again: a signal that arrived while
    # a process was exiting (its handlers gone) killed it, and the parent exited -15, or 1 for a worker "died".
    # Back to back, signals also ran the parent's handler nested in itself (it raised, and the exit that followed
    # was killed by the next signal); that storm failed most runs at two workers.
    server = GatehouseServer(tmp_path / "data", workers=workers)
    server.start()
    assert server.process is not None
    try:
        pids = [server.process.pid, *worker_pids(server.process.pid)]
        assert len(pids) == (1 if workers == 1 else 1 + workers)
        deadline = time.monotonic() + SHUTDOWN_SECONDS + 15
        while server.process.poll() is None and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            time.sleep(pause)
        assert server.process.wait(timeout=1) == 0
    finally:
        server.stop()
    assert '"worker.exited"' not in server.log_text()


def test_workers_of_a_killed_server_stop_and_free_its_port(tmp_path: Path) -> None:
    # SIGKILL (or the OOM killer) on `serve` left its workers serving on the port, unwatched, and the server a
    # supervisor started in its place was refused: "port in use by another program".
    server = GatehouseServer(tmp_path / "data", workers=2)
    server.start()
    assert server.process is not None
    try:
        workers = worker_pids(server.process.pid)
        assert len(workers) == 2
        server.process.kill()
        server.process.wait(timeout=10)
        deadline = time.monotonic() + SHUTDOWN_SECONDS + 5
        while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in workers if alive(pid)] == []
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.stop()
    events = [line for line in server.log_text().splitlines() if '"worker.parent_exited"' in line]
    assert len(events) == 2
    restarted = GatehouseServer(tmp_path / "data", workers=2)
    restarted.port, restarted.url = server.port, server.url
    restarted.start()  # the same port, free again
    restarted.stop()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: the process it was is gone, its port free)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def worker_pids(parent: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in found.split()]


# --- installing ---------------------------------------------------------------------------------------------


def test_every_file_the_server_reads_from_its_packages_is_installed_with_them() -> None:
    # A wheel or `pip install .` (a container image) ships a package's non-Python files only when
    # pyproject.toml's package-data names them: the hosted UI's passkey script was left out, so a server
    # installed that way answered 500 for /static/passkey.js and no passkey sign-in could run. An editable
    # install (the README's quick start) reads the source tree and hid it.
    import fnmatch
    import tomllib

    repo = Path(__file__).resolve().parents[2]
    package_data = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    left_out = []
    for package in ("gateway", "providers"):
        for path in sorted((repo / package).rglob("*")):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            inside = path.relative_to(repo / package).as_posix()
            if not any(fnmatch.fnmatch(inside, pattern) for pattern in package_data.get(package, [])):
                left_out.append(f"{package}/{inside}")
    assert left_out == []


# --- the issuer -----------------------------------------------------------------------------------------------


def test_listening_on_an_ipv6_address_gives_an_issuer_clients_can_fetch(tmp_path: Path) -> None:
    # Without --public-url the issuer is built from --host: `--host ::1` gave "http://::1:PORT", which no URL
    # parser reads as that host and port, so no relying party could fetch the JWKS its discovery named.
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--host", "::1", "--port", str(port),
             "--data-dir", str(tmp_path / "data")],
            stdout=log, stderr=subprocess.STDOUT, env={**environ, **TEST_ARGON2_ENV},
        )  # fmt: skip
    try:
        base = f"http://[::1]:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
        with urllib.request.urlopen(f"{base}/identity/.well-known/openid-configuration", timeout=10) as answer:
            discovery = json.load(answer)
        assert discovery["issuer"] == f"{base}/identity"
        with urllib.request.urlopen(discovery["jwks_uri"], timeout=10) as answer:
            assert json.load(answer)["keys"]
    finally:
        process.terminate()
        process.wait(timeout=SHUTDOWN_SECONDS + 5)


def test_port_0_names_the_port_it_got_in_the_log_and_the_issuer(tmp_path: Path) -> None:
    # `--port 0` lets the kernel choose (a test harness, a sidecar): the log said "port": 0, so nobody could
    # learn where the server listened, and every token's issuer and the discovery's jwks_uri named port 0.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**environ, **TEST_ARGON2_ENV},
    )  # fmt: skip
    assert process.stderr is not None
    try:
        for line in process.stderr:
            if b'"gateway.listening"' in line:
                port = json.loads(line)["port"]
                break
        else:
            raise AssertionError("no gateway.listening event")
        assert port != 0
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=1):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        with urllib.request.urlopen(f"{base}/identity/.well-known/openid-configuration", timeout=10) as answer:
            discovery = json.load(answer)
        assert discovery["issuer"] == f"{base}/identity"
        with urllib.request.urlopen(discovery["jwks_uri"], timeout=10) as answer:
            assert json.load(answer)["keys"]
    finally:
        process.terminate()
        process.wait(timeout=SHUTDOWN_SECONDS + 5)
        process.stderr.close()


# --- requests the server cannot read ----------------------------------------------------------------------------

AWS_JSON = "application/x-amz-json-1.1"
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("path", "headers", "status", "answer"),
    [
        ("/", {"Content-Type": AWS_JSON, "X-Amz-Target": "AWSCognitoIdentityProviderService.SignUp"}, 400,
         b'"__type":"SerializationException"'),
        ("/", {"Content-Type": AWS_JSON, "X-Amz-Target": "AWSCognitoIdentityService.GetId"}, 400,
         b'"__type":"SerializationException"'),
        ("/", {"Content-Type": FORM}, 400, b"<Code>MalformedInput</Code>"),  # STS / IAM's form body, in XML
        ("/oauth2/token", {"Content-Type": FORM}, 400, b'"error":"invalid_request"'),
        ("/gatehouse/verify", {"Content-Type": "application/json"}, 400, b"SerializationException"),
        ("/login", {"Content-Type": FORM}, 403, b"<html"),  # an empty form: no CSRF token
    ],
)  # fmt: skip
@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_a_body_that_is_not_what_its_content_encoding_says_is_a_400_not_a_500(
    gatehouse: GatehouseServer, path: str, headers: dict[str, str], status: int, answer: bytes, encoding: str
) -> None:
    # aiohttp decompresses a gzip or deflate body as it is read, and its error on corrupt data reached no
    # handler's error rendering: a 500 and two error-level events (a server fault) for the client's bad bytes.
    request = urllib.request.Request(
        gatehouse.url + path, data=b"not compressed at all", headers={**headers, "Content-Encoding": encoding}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            got, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        got, body = error.code, error.read()
    assert (got, answer in body.replace(b" ", b"")) == (status, True), body
    errors = [line for line in gatehouse.log_text().splitlines() if '"level":"error"' in line]
    assert errors == []


def _compress(encoding: str, data: bytes) -> bytes:
    if encoding == "br":
        import brotli

        return bytes(brotli.compress(data))
    if encoding == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found,unused-ignore]  # Python 3.14
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]
        return bytes(zstd.compress(data))
    return gzip.compress(data)


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_a_compressed_body_is_read_and_bounded_by_its_decoded_size(gatehouse: GatehouseServer, encoding: str) -> None:
    # Content-Encoding br and zstd (RFC 9110 §8.4.1) are read as gzip is. Without their decoders aiohttp refused
    # such a request before any handler, with a plain-text 400 naming the Python package to install. The
    # server's body limit counts decoded bytes: a small body that inflates past it is a 413 in the wire's form.
    idp = gatehouse.client()
    pool_id = idp.create_user_pool(PoolName=f"encoded-{encoding}")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
    sign_up = {"ClientId": client_id, "Username": f"packed-{encoding}", "Password": "Correct-Horse-9"}
    target = {"Content-Type": AWS_JSON, "X-Amz-Target": "AWSCognitoIdentityProviderService.SignUp"}
    cases = [
        ("/", target, json.dumps(sign_up).encode(), 200, b'"UserConfirmed":false'),
        ("/oauth2/token", {"Content-Type": FORM}, b"grant_type=client_credentials", 401, b'"error":"invalid_client"'),
        ("/", target, b'{"ClientId":"' + b"a" * 2_000_000 + b'"}', 413, b'"__type":"SerializationException"'),
        ("/oauth2/token", {"Content-Type": FORM}, b"grant_type=" + b"a" * 2_000_000, 413, b'"invalid_request"'),
    ]
    for path, headers, data, status, answer in cases:
        packed = _compress(encoding, data)
        assert len(packed) < 100_000
        request = urllib.request.Request(
            gatehouse.url + path, data=packed, headers={**headers, "Content-Encoding": encoding}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                got, body = response.status, response.read()
        except urllib.error.HTTPError as error:
            got, body = error.code, error.read()
        assert (got, answer in body.replace(b" ", b"")) == (status, True), (path, body[:300])
    assert idp.admin_get_user(UserPoolId=pool_id, Username=f"packed-{encoding}")["UserStatus"] == "UNCONFIRMED"


# --- browser apps on another origin ---------------------------------------------------------------------------


class _AppPage(BaseHTTPRequestHandler):
    """A web app's page, served from its own origin (another port: cross-origin to Gatehouse)."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>app</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


SIGN_UP_FROM_THE_APP = """async ([url, clientId]) => {
    // What amazon-cognito-identity-js's Client.request sends (fetch, mode "cors").
    const answer = await fetch(url + "/", {
        method: "POST", mode: "cors", cache: "no-cache",
        headers: {"Content-Type": "application/x-amz-json-1.1",
                  "X-Amz-Target": "AWSCognitoIdentityProviderService.SignUp",
                  "X-Amz-User-Agent": "aws-amplify/6.0 js"},
        body: JSON.stringify({ClientId: clientId, Username: "from-the-browser", Password: "Correct-Horse-9"}),
    });
    return {status: answer.status, body: await answer.json(), requestId: answer.headers.get("x-amzn-RequestId")};
}"""


def test_a_browser_app_on_another_origin_can_call_the_user_pools_api(gatehouse: GatehouseServer, browser: Any) -> None:
    # Amplify JS and amazon-cognito-identity-js call POST / from the app's origin. Without an answer to the
    # CORS preflight (OPTIONS / was a 405) and Access-Control-Allow-Origin, the browser refused every call.
    idp = gatehouse.client()
    pool_id = idp.create_user_pool(PoolName="spa")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="spa")["UserPoolClient"]["ClientId"]
    app = HTTPServer(("127.0.0.1", 0), _AppPage)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://localhost:{app.server_address[1]}/")  # loopback, as Gatehouse: no private-network block
        result = page.evaluate(SIGN_UP_FROM_THE_APP, [gatehouse.url, client_id])
    finally:
        context.close()
        app.shutdown()
        app.server_close()
    assert result["status"] == 200, result
    assert result["body"]["UserConfirmed"] is False
    assert result["requestId"]  # exposed to the app, as Cognito exposes it
    assert idp.admin_get_user(UserPoolId=pool_id, Username="from-the-browser")["Username"] == "from-the-browser"


OIDC_CLIENT_FROM_THE_APP = """async ([url, poolId, clientId]) => {
    // What an OIDC client in the browser (oidc-client-ts, Amplify's redirect sign-in) fetches.
    const discovery = await (await fetch(`${url}/${poolId}/.well-known/openid-configuration`)).json();
    const keys = await (await fetch(discovery.jwks_uri)).json();
    const token = await fetch(discovery.token_endpoint, {
        method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
        body: new URLSearchParams({grant_type: "authorization_code", code: "not-a-code", client_id: clientId,
                                   redirect_uri: "https://app.example/cb", code_verifier: "v".repeat(43)}),
    });
    const userInfo = await fetch(discovery.userinfo_endpoint, {headers: {Authorization: "Bearer not-a-token"}});
    return {issuer: discovery.issuer, keys: keys.keys.length, token: [token.status, (await token.json()).error],
            userInfo: userInfo.status};
}"""


def test_a_browser_oidc_client_on_another_origin_can_read_discovery_keys_and_the_token_endpoint(
    gatehouse: GatehouseServer, browser: Any
) -> None:
    # A single-page app doing the code flow with PKCE reads the discovery document and the JWK Set, and
    # redeems its code at the token endpoint, with fetch from its own origin; Cognito allows any origin there.
    # None of them sent Access-Control-Allow-Origin, and OPTIONS (userInfo's preflight, for its Authorization
    # header) was refused: the browser blocked every step.
    idp = gatehouse.client()
    pool_id = idp.create_user_pool(PoolName="oidc-spa")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"], CallbackURLs=["https://app.example/cb"], SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]  # fmt: skip
    app = HTTPServer(("127.0.0.1", 0), _AppPage)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://localhost:{app.server_address[1]}/")
        result = page.evaluate(OIDC_CLIENT_FROM_THE_APP, [gatehouse.url, pool_id, client_id])
    finally:
        context.close()
        app.shutdown()
        app.server_close()
    assert result["keys"] >= 1
    assert (result["issuer"], result["token"], result["userInfo"]) == (
        f"{gatehouse.url}/{pool_id}",
        [400, "invalid_grant"],
        401,
    )


# --- logs -----------------------------------------------------------------------------------------------------


def test_workers_sharing_a_slow_log_pipe_write_only_whole_json_lines(tmp_path: Path) -> None:
    # A container runtime or systemd reads the workers' shared stderr through a pipe, and falls behind under
    # load. A worker's batch of lines longer than the pipe's atomic write (PIPE_BUF) was split where the pipe
    # filled, and the other worker's lines landed inside one of its lines: two lines that were not JSON.
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    env = {**environ, **TEST_ARGON2_ENV, "GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID,
           "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(tmp_path / "data"), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    output: list[bytes] = []

    def read_slowly() -> None:
        assert process.stdout is not None
        while chunk := process.stdout.read1(1024):
            output.append(chunk)
            time.sleep(0.002)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    server = GatehouseServer(tmp_path / "data")  # only to talk to the one started above
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/health", timeout=1):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        idp = server.client()
        pool_id = idp.create_user_pool(PoolName="logs")["UserPool"]["Id"]
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="c", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]

        def sign_in_failures(number: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Content-Type": "application/x-amz-json-1.1",
                       "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth"}  # fmt: skip
            for attempt in range(40):  # each logs one sign_in.failed event
                user = {"USERNAME": f"nobody-{number}-{attempt}", "PASSWORD": "x"}
                body = json.dumps({"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": user})
                connection.request("POST", "/", body, headers)
                assert connection.getresponse().read()
            connection.close()

        with ThreadPoolExecutor(32) as pool:
            list(pool.map(sign_in_failures, range(32)))
    finally:
        process.terminate()
        process.wait(timeout=SHUTDOWN_SECONDS + 5)
        reader.join(timeout=30)
    lines = b"".join(output).splitlines()
    broken = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            broken.append(line)
    assert broken == []
    assert len([line for line in lines if b'"sign_in.failed"' in line]) == 32 * 40


@pytest.mark.parametrize("url", ["http://[::1", "http://x]/a", "http://[notanip]/a"])
def test_a_verify_question_with_a_url_that_cannot_be_parsed_is_a_400(gatehouse: GatehouseServer, url: str) -> None:
    question = json.dumps({"method": "GET", "url": url, "headers": {"Host": "x"}}).encode()
    request = urllib.request.Request(
        gatehouse.url + "/gatehouse/verify", data=question, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    body = json.loads(refused.value.read())
    assert (refused.value.code, body["__type"]) == (400, "SerializationException"), body
    assert not [line for line in gatehouse.log_text().splitlines() if '"level":"error"' in line]
