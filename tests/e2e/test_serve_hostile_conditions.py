"""Operating Gatehouse under hostile or careless conditions: a data dir that lost its secret key or holds
another one, a data dir others could write, settings in the environment that make no sense, and a stop signal
that arrives twice (Ctrl-C on a terminal, systemd's KillMode=control-group): each gets one clear line and a
non-zero exit, or a graceful stop, and never a silently new key, a traceback or a process that hangs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import GatehouseServer, free_port

PASSWORD = "Correct-Horse-9"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``gatehouse ARGS`` with no GATEHOUSE_* variable but ``env``; a serve that would start (or hang) is cut
    off by ``timeout``, a test failure."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False, env={**environ, **(env or {})},
    )  # fmt: skip


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output, output
    for word in words:
        assert word in output, output


def secret_hash(secret: str, username: str, client_id: str) -> str:
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# --- the secret key and the database it sealed ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A data dir whose database holds sealed secrets (a pool's signing keys, a client secret), its server
    stopped: each test moves its secret.key away or replaces it, and puts it back."""
    data = tmp_path_factory.mktemp("sealed") / "data"
    server = GatehouseServer(data)
    server.start()
    try:
        idp = server.client()
        pool_id = idp.create_user_pool(PoolName="sealed")["UserPool"]["Id"]
        client = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="c",
            GenerateSecret=True,
            ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"],
        )["UserPoolClient"]
        idp.admin_create_user(UserPoolId=pool_id, Username="ana", MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username="ana", Password=PASSWORD, Permanent=True)
        sign_in(server, pool_id, client)  # the pool's signing keys are made and sealed
    finally:
        server.stop()
    key = (data / "secret.key").read_text()
    yield {"data": data, "pool_id": pool_id, "client": client, "key": key}


def sign_in(server: GatehouseServer, pool_id: str, client: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = server.client().admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client["ClientId"],
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={
            "USERNAME": "ana",
            "PASSWORD": PASSWORD,
            "SECRET_HASH": secret_hash(client["ClientSecret"], "ana", client["ClientId"]),
        },
    )["AuthenticationResult"]
    return result


def database_bytes(data: Path) -> bytes:
    with sqlite3.connect(data / "gatehouse.db") as db:
        return "\n".join(db.iterdump()).encode()


def test_a_lost_secret_key_is_not_replaced_by_a_new_one(sealed: dict[str, Any]) -> None:
    # A new key would start a server whose every sealed secret (signing keys, client secrets) fails to open:
    # 500s on every sign-in, and the old key, if found later, no longer on disk to put back.
    data: Path = sealed["data"]
    before = database_bytes(data)
    (data / "secret.key").unlink()
    try:
        for command in (["serve", "--port", "0"], ["keys", "rotate", sealed["pool_id"]]):
            result = run_cli(*command, "--data-dir", str(data))
            assert_refused(result, "secret.key", "gatehouse.db")
            assert not (data / "secret.key").exists()
        assert database_bytes(data) == before
    finally:
        (data / "secret.key").write_text(sealed["key"])


def test_another_secret_key_for_the_database_is_refused(sealed: dict[str, Any]) -> None:
    data: Path = sealed["data"]
    before = database_bytes(data)
    other = os.urandom(32).hex()
    (data / "secret.key").write_text(other)
    try:
        result = run_cli("serve", "--data-dir", str(data), "--port", "0")
        assert_refused(result, "secret.key", "gatehouse.db")
        assert other not in result.stderr
        result = run_cli("keys", "rotate", "--data-dir", str(data), sealed["pool_id"])
        assert_refused(result, "secret.key")
        assert database_bytes(data) == before
    finally:
        (data / "secret.key").write_text(sealed["key"])
    # The environment's key is checked the same way, and names itself.
    result = run_cli("serve", "--data-dir", str(data), "--port", "0", env={"GATEHOUSE_SECRET_KEY": other})
    assert_refused(result, "GATEHOUSE_SECRET_KEY")
    assert other not in result.stderr + result.stdout
    assert (data / "secret.key").read_text() == sealed["key"]
    assert database_bytes(data) == before


def test_the_right_key_from_the_environment_opens_the_database(sealed: dict[str, Any]) -> None:
    # The way out the refusals point to: the same key, from the file or from GATEHOUSE_SECRET_KEY.
    data: Path = sealed["data"]
    (data / "secret.key").unlink()
    server = GatehouseServer(data, extra_env={"GATEHOUSE_SECRET_KEY": sealed["key"]})
    try:
        server.start()
        tokens = sign_in(server, sealed["pool_id"], sealed["client"])
        assert tokens["AccessToken"].count(".") == 2
        assert not (data / "secret.key").exists()  # the environment's key is never written down
    finally:
        server.stop()
        (data / "secret.key").write_text(sealed["key"])


# --- the data dir's permissions ---------------------------------------------------------------------------


def test_a_new_data_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    # The data dir holds secret.key, admin-credentials.json and the database: in a directory others may write,
    # anyone on the machine could replace them (their own admin credentials, their own key).
    data = tmp_path / "several" / "workers"
    data.parent.mkdir()
    server = GatehouseServer(data, workers=2)  # the metrics folder is made inside the data dir first
    old = os.umask(0)
    try:
        server.start()
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
    finally:
        server.stop()
    data = tmp_path / "one" / "worker"
    data.parent.mkdir()
    # Without admin credentials in the environment, so that the server writes admin-credentials.json.
    no_admin_env = {"GATEHOUSE_ADMIN_ACCESS_KEY_ID": "", "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ""}
    server = GatehouseServer(data, extra_env=no_admin_env)
    old = os.umask(0)
    try:
        server.start()
    finally:
        os.umask(old)
    server.stop()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("secret.key", "admin-credentials.json", "gatehouse.db"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name


def test_a_data_dir_others_may_write_is_warned_about(tmp_path: Path) -> None:
    # Refusing it would break containers whose volumes are made world-writable (Kubernetes' emptyDir), so
    # the operator is told, once, at start.
    data = tmp_path / "data"
    server = GatehouseServer(data)  # the database that `keys rotate` needs
    server.start()
    server.stop()
    data.chmod(0o777)
    result = run_cli("keys", "rotate", "--data-dir", str(data), "identity")
    assert result.returncode == 0, result.stderr
    warnings = [json.loads(line) for line in result.stderr.splitlines() if "data_dir.not_private" in line]
    assert len(warnings) == 1, result.stderr
    assert warnings[0]["path"] == str(data) and warnings[0]["mode"] == "0o777"
    data.chmod(0o700)
    result = run_cli("keys", "rotate", "--data-dir", str(data), "identity")
    assert result.returncode == 0 and "data_dir.not_private" not in result.stderr, result.stderr


# --- settings from the environment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEHOUSE_SOCIAL_ENDPOINTS", "{not json"),
        ("GATEHOUSE_SOCIAL_ENDPOINTS", "[]"),
        ("GATEHOUSE_SOCIAL_ENDPOINTS", '{"myspace": {}}'),
        ("GATEHOUSE_SLOW_CALLBACK_SECONDS", "soon"),
        ("GATEHOUSE_SLOW_CALLBACK_SECONDS", "0"),
        ("GATEHOUSE_LOG_FORMAT", "xml"),
    ],
)
def test_a_bad_environment_setting_is_one_line_not_a_hang(tmp_path: Path, name: str, value: str) -> None:
    # Before, these failed inside the server after the database was opened: a traceback, and for the social
    # endpoints a process that never exited nor served (the store's thread kept it alive).
    result = run_cli("serve", "--data-dir", str(tmp_path), "--port", str(free_port()), env={name: value}, timeout=20)
    assert_refused(result, name)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# --- stopping ---------------------------------------------------------------------------------------------


def worker_pids(parent: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False).stdout
    return [int(pid) for pid in found.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_stop_signal_that_reaches_the_workers_twice_still_stops_gracefully(tmp_path: Path) -> None:
    # systemd (KillMode=control-group) and a terminal's Ctrl-C signal every process of the server at once, and
    # the parent passes the signal on: each worker is told twice. The second must not cut short the graceful
    # stop the first began: requests in flight are answered, and the server exits 0.
    # Production hashing cost, so that the sign-ups below are still running when the signals come.
    server = GatehouseServer(tmp_path / "data", workers=2, production_argon2=True)
    server.start()
    assert server.process is not None
    try:
        idp = server.client()
        pool_id = idp.create_user_pool(PoolName="stop")["UserPool"]["Id"]
        client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="c")["UserPoolClient"]["ClientId"]
        workers = worker_pids(server.process.pid)
        assert len(workers) == 2
        connections = []
        for number in range(40):  # each sign-up hashes a password: together they keep both workers busy
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
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        time.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)  # passed on to the workers, already stopping
        statuses = []
        for connection in connections:
            with connection:
                answer = b""
                while b"\r\n" not in answer:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                statuses.append(answer.split(b" ", 2)[1] if answer else b"(closed)")
        assert statuses == [b"200"] * 40
        assert server.process.wait(timeout=30) == 0
        assert not [pid for pid in workers if alive(pid)]
    finally:
        server.stop()
    with sqlite3.connect(tmp_path / "data" / "gatehouse.db") as db:
        assert db.execute("SELECT count(*) FROM users").fetchone() == (40,)


def start_with_sighup(server: GatehouseServer, disposition: Any) -> None:
    """Start ``server`` with SIGHUP's disposition set as given, whatever this test run's is: a server inherits it,
    and a run started under nohup (SIGHUP ignored) would otherwise start every server ignoring it."""
    before = signal.signal(signal.SIGHUP, disposition)
    try:
        server.start()
    finally:
        signal.signal(signal.SIGHUP, before)


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGKILL, -signal.SIGKILL), (signal.SIGTERM, 0), (signal.SIGHUP, 0)],
    ids=["killed", "stopped-alone-by-SIGTERM", "stopped-alone-by-SIGHUP"],
)
def test_a_worker_that_dies_stops_the_server_and_says_why(tmp_path: Path, signum: int, exit_code: int) -> None:
    # A server missing a worker would serve with part of its capacity and no sign of it; it exits instead, for
    # its supervisor to restart, and the log says which worker died and how. A worker stopped gracefully by a
    # signal sent to it alone exits 0: the server went on with one worker fewer, and not a word in the log.
    server = GatehouseServer(tmp_path / "data", workers=2)
    start_with_sighup(server, signal.SIG_DFL)
    assert server.process is not None
    try:
        workers = worker_pids(server.process.pid)
        assert len(workers) == 2
        os.kill(workers[0], signum)
        assert server.process.wait(timeout=30) == 1
        time.sleep(0.2)
        assert not [pid for pid in workers if alive(pid)]
    finally:
        server.stop()
    events = [json.loads(line) for line in server.log_text().splitlines() if '"worker.exited"' in line]
    assert [(e["pid"], e["exit_code"], e["level"]) for e in events] == [(workers[0], exit_code, "error")]


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_stops_the_server_gracefully(tmp_path: Path, workers: int) -> None:
    # A terminal that hangs up sends SIGHUP, and so may a supervisor's reload. Its default action killed every
    # process outright (status 129, no orderly close of the store, requests in flight dropped); Gatehouse reads
    # its config when it starts, so the signal stops it as SIGTERM does, and a restart reads the new config.
    server = GatehouseServer(tmp_path / "data", workers=workers)
    start_with_sighup(server, signal.SIG_DFL)
    assert server.process is not None
    try:
        pids = worker_pids(server.process.pid) if workers > 1 else [server.process.pid]
        assert len(pids) == workers
        os.kill(server.process.pid, signal.SIGHUP)
        assert server.process.wait(timeout=30) == 0
        assert not [pid for pid in pids if alive(pid)]
    finally:
        server.stop()
    log = server.log_text()
    assert "Traceback" not in log and '"worker.exited"' not in log, log
    stopping = [json.loads(line) for line in log.splitlines() if '"gateway.stopping"' in line]
    assert [event["signal"] for event in stopping] == ["SIGHUP"] * workers
    assert not list((tmp_path / "data" / "prometheus").glob("*"))  # a stop, with its clean-up


def test_a_server_started_with_sighup_ignored_keeps_serving_through_it(tmp_path: Path) -> None:
    # nohup: the server is to outlive the terminal it was started from.
    server = GatehouseServer(tmp_path / "data", workers=2)
    start_with_sighup(server, signal.SIG_IGN)  # as nohup starts it
    assert server.process is not None
    try:
        for pid in [server.process.pid, *worker_pids(server.process.pid)]:
            os.kill(pid, signal.SIGHUP)
        time.sleep(1)
        assert server.process.poll() is None
        assert len(worker_pids(server.process.pid)) == 2
        with urllib.request.urlopen(f"{server.url}/health", timeout=10) as response:
            assert response.status == 200
    finally:
        server.stop()
    assert server.process.returncode == 0


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://id.example.com/?tenant=1", "no query"),
        ("https://id.example.com#top", "no query (?) or fragment"),
        ("https://id.example.com?", "no query"),
        ("https://admin:hunter2@id.example.com", "no user name or password"),
        ("https://id.example.com:99999", "port number"),
    ],
)
def test_public_url_must_be_an_issuer(tmp_path: Path, url: str, reason: str) -> None:
    # It starts every token's iss, which has no query or fragment (OpenID Connect Discovery 1.0 §3, RFC 8414
    # §2); a relying party comparing iss, or building the discovery URL from it, would fail on such a one.
    result = run_cli("serve", "--public-url", url, "--data-dir", str(tmp_path / "data"), "--port", "0")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "--public-url" in output and reason in output, output
    assert not (tmp_path / "data").exists()
    config = tmp_path / "server.yaml"
    config.write_text(f'version: 1\nserver:\n  public_url: "{url}"\npools: []\n')
    assert_refused(run_cli("config", "check", str(config)), "server.public_url", reason)


def test_public_url_with_a_port_and_a_path_is_the_issuer(tmp_path: Path) -> None:
    url = "https://id.example.com:8443/auth"
    server = GatehouseServer(tmp_path / "data", extra_args=["--public-url", url + "/"])
    server.start()
    try:
        pool_id = server.client().create_user_pool(PoolName="issuer")["UserPool"]["Id"]
        with urllib.request.urlopen(f"{server.url}/{pool_id}/.well-known/openid-configuration") as response:
            assert json.load(response)["issuer"] == f"{url}/{pool_id}"
    finally:
        server.stop()


@pytest.mark.parametrize(
    "content",
    ["not-json-hunter2", "{}", '["hunter2"]', '{"access_key_id": "GHADMIN", "secret_access_key": 12345}', ""],
)
def test_a_damaged_admin_credentials_file_is_named(tmp_path: Path, content: str) -> None:
    # Was a traceback (KeyError, TypeError) or a complaint about secret.key, which was fine.
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "admin-credentials.json").write_text(content)
    result = run_cli("serve", "--data-dir", str(data), "--port", "0")
    assert_refused(result, "admin-credentials.json", "access_key_id")
    assert "secret.key" not in result.stderr and "hunter2" not in result.stderr and "12345" not in result.stderr
    assert (data / "admin-credentials.json").read_text() == content
    assert not (data / "gatehouse.db").exists()
