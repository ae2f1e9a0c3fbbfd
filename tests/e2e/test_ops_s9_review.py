"""What an operator running Gatehouse meets: tools given a data dir that holds no server's store, a stop
while a client is still sending its request, and what the server answers to requests it cannot parse."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import GatehouseServer


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
    from gateway.cli import SHUTDOWN_SECONDS

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
