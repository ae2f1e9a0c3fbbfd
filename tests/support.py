"""Test support: a real Gatehouse server process, a real SMTP server, real clients.

``GatehouseServer`` starts ``python -m gateway.cli serve`` on a free loopback port with its own data dir and
admin credentials, and waits for ``/health``; tests talk to it over HTTP with boto3 like any user would.
``MailServer`` is aiosmtpd on a free port; Gatehouse is configured to deliver to it.
"""

from __future__ import annotations

import asyncio
import email
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import boto3
from aiosmtpd.controller import Controller
from botocore.config import Config

ADMIN_KEY_ID = "AKIDGATEHOUSETEST"
ADMIN_SECRET = "gatehouse-test-secret-key"
REGION = "us-east-1"
# The Argon2id cost of test servers (gateway/cli.py reads it): the smallest RFC 9106 allows with one pass, as
# tests/services/test_passwords.py uses. A server that a test times or whose hashes it reads is started with
# production_argon2=True (or a config that sets server.argon2). Set in the environment of pytest, they win.
TEST_ARGON2_ENV = {"GATEHOUSE_ARGON2_MEMORY_KIB": "1024", "GATEHOUSE_ARGON2_TIME_COST": "1"}


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now, for a server that binds it a moment later. Under pytest-xdist each worker takes only
    ports of its own share, so two workers never pick the same one in between. The share is by ``port // 2``:
    Linux gives bind() and connect() ports of opposite parities, and a server port of connect()'s parity could
    be taken by any client's outgoing connection before the server binds it. A port once handed out is never
    handed out again in this process: a fixture that picks several ports before starting their servers would
    otherwise be offered a released one twice, and two servers would race for it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    tried: list[socket.socket] = []  # held open until a port is chosen, so that the OS offers others
    try:
        while True:
            sock = socket.socket()
            tried.append(sock)
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port // 2 % workers == worker % workers and port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port
    finally:
        for sock in tried:
            sock.close()


def unreachable_smtp_config() -> str:
    """A config file whose SMTP server is a port nothing listens on (bound and released): every email fails."""
    return f"""version: 1
server:
  smtp:
    host: 127.0.0.1
    port: {free_port()}
    timeout: 5
pools: []
"""


@dataclass
class _Collector:
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    delay: float = 0.0  # seconds before a message is accepted, as a busy mail server takes

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content)
        with self.cond:
            self.messages.append((list(envelope.rcpt_tos), message))
            self.cond.notify_all()
        return "250 Message accepted for delivery"


class MailServer:
    """A real SMTP server collecting what Gatehouse sends."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.port = free_port()
        self._collector = _Collector(delay=delay)
        self._controller = Controller(self._collector, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def messages_to(self, address: str) -> list[Message]:
        with self._collector.cond:
            return [m for rcpts, m in self._collector.messages if address in rcpts]

    def wait_for(self, address: str, *, count: int = 1, timeout: float = 10.0) -> Message:
        """The ``count``-th message delivered to ``address``."""
        deadline = time.monotonic() + timeout
        with self._collector.cond:
            while True:
                found = [m for rcpts, m in self._collector.messages if address in rcpts]
                if len(found) >= count:
                    return found[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no message #{count} for {address} within {timeout}s")
                self._collector.cond.wait(remaining)


def body_text(message: Message) -> str:
    if message.is_multipart():
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode()
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def code_in(message: Message) -> str:
    match = re.search(r"\b(\d{6})\b", body_text(message))
    assert match, body_text(message)
    return match.group(1)


# GATEHOUSE_TEST_POSTGRES=1: every server the tests start stores into a database of its own on one PostgreSQL
# server per test process (tests/postgres_server.py), instead of its SQLite file: the whole suite, or any module,
# run against the PostgreSQL store. A server given GATEHOUSE_DATABASE_URL itself keeps it.
_postgres: Any = None
_postgres_databases = iter(range(1, 1_000_000))
_postgres_by_data_dir: dict[Path, str] = {}


def _postgres_env(data_dir: Path) -> dict[str, str]:
    """The database of the servers of ``data_dir`` (a server started again on it, by a new instance too, finds its
    data as it would in the data dir's SQLite file)."""
    global _postgres
    if os.environ.get("GATEHOUSE_TEST_POSTGRES") != "1":
        return {}
    if _postgres is None:
        import atexit

        from tests.postgres_server import PostgresServer

        _postgres = PostgresServer().start()
        atexit.register(_postgres.stop)
    database = _postgres_by_data_dir.get(data_dir)
    if database is None:
        database = _postgres_by_data_dir[data_dir] = _postgres.create_database(f"gatehouse{next(_postgres_databases)}")
    return {"GATEHOUSE_DATABASE_URL": database}


class GatehouseServer:
    """``gatehouse serve`` in a subprocess."""

    def __init__(
        self,
        data_dir: Path,
        *,
        config: str | None = None,
        workers: int = 1,
        extra_env: dict[str, str | None] | None = None,
        extra_args: list[str] | None = None,
        production_argon2: bool = False,
    ) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path: Path | None = None
        if config is not None:
            self.config_path = data_dir.parent / f"{data_dir.name}-config.yaml"
            self.config_path.write_text(config)
        self.workers = workers
        self.extra_env = extra_env or {}
        self.extra_args = list(extra_args or [])  # further `gatehouse serve` options, e.g. ["--public-url", URL]
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        # Production hashing cost only where a test measures or reads it; elsewhere every password costs
        # microseconds instead of tens of milliseconds.
        self.production_argon2 = production_argon2 or (config is not None and "argon2:" in config)
        # One database for the server's life (restarts included), when the tests run on PostgreSQL.
        self._postgres_env = {} if "GATEHOUSE_DATABASE_URL" in (extra_env or {}) else _postgres_env(data_dir)

    def start(self, *, healthy: bool = True) -> None:
        """Start the server and wait until /health answers 200 (``healthy=False``: until it answers 503
        "unavailable", a server that started but says it cannot keep writes)."""
        command = [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--workers",
            str(self.workers),
        ]
        if self.config_path is not None:
            command += ["--config", str(self.config_path)]
        command += self.extra_args
        env = {
            **os.environ,
            **self._postgres_env,
            "GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID,
            "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET,
            **({} if self.production_argon2 else {k: os.environ.get(k, v) for k, v in TEST_ARGON2_ENV.items()}),
        }
        # extra_env: a value sets the variable, None removes it from the server's environment.
        for name, value in self.extra_env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gatehouse exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200 and healthy:
                        return
            except urllib.error.HTTPError as answer:
                if not healthy and answer.code == 503 and b'"unavailable"' in answer.read():
                    return
                time.sleep(0.1)
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gatehouse did not become healthy:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def log_text(self) -> str:
        """The server's log up to now. Its lines reach the file one event-loop iteration after the response
        that caused them (gateway/logging.py batches writes), so a /health round trip, which the loop can
        only serve after that iteration, comes first. With several workers, read it after stop()."""
        if self.process is not None and self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=10):
                    pass
            except urllib.error.HTTPError:
                pass  # an unhealthy server (503) still answered after that iteration
        return self.log_path.read_text(errors="replace")

    def client(self, service: str = "cognito-idp", *, signed: bool = True, **kwargs: Any) -> Any:
        """A boto3 client pointed at this server (admin credentials unless ``signed`` is false)."""
        config = Config(retries={"max_attempts": 1, "mode": "standard"})
        if not signed:
            from botocore import UNSIGNED

            config = Config(retries={"max_attempts": 1, "mode": "standard"}, signature_version=UNSIGNED)
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=kwargs.pop("key_id", ADMIN_KEY_ID),
            aws_secret_access_key=kwargs.pop("secret", ADMIN_SECRET),
            config=config,
            **kwargs,
        )


def smtp_config(mail: MailServer) -> str:
    return f"""version: 1
server:
  smtp:
    host: 127.0.0.1
    port: {mail.port}
pools: []
"""


def user_attributes(idp: Any, pool_id: str, username: str) -> dict[str, str]:
    """AdminGetUser's attributes as a dict."""
    user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}
