"""Running Gatehouse with wrong input: ``gatehouse serve`` refuses bad options, bad config files, a port that is
taken and a data dir it cannot use with one clear line and a non-zero exit, never a stack trace."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("ops-review") / "data")
    server.start()
    yield server
    server.stop()


def gatehouse(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """``gatehouse ARGS``; a serve that would start is cut off by ``timeout`` (a test failure)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    for word in words:
        assert word in output, output


def test_port_in_use_is_refused_not_shared(running: GatehouseServer, tmp_path: Path) -> None:
    # SO_REUSEPORT would let a second, unrelated server (its own data dir) take half of the first one's
    # connections without a word.
    result = gatehouse("serve", "--port", str(running.port), "--data-dir", str(tmp_path / "other"), timeout=30)
    assert_refused(result, str(running.port), "in use")
    result = gatehouse(
        "serve", "--port", str(running.port), "--data-dir", str(tmp_path / "other2"), "--workers", "2", timeout=30
    )
    assert_refused(result, str(running.port), "in use")


@pytest.mark.parametrize("workers", ["0", "-3", "100000"])
def test_workers_out_of_range(tmp_path: Path, workers: str) -> None:
    assert_refused(gatehouse("serve", "--data-dir", str(tmp_path), "--port", "0", "--workers", workers), "--workers")
    assert not (tmp_path / "gatehouse.db").exists()


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_port_out_of_range(tmp_path: Path, port: str) -> None:
    assert_refused(gatehouse("serve", "--data-dir", str(tmp_path), "--port", port), "--port")


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com", "https://", "example.com:9229"])
def test_public_url_malformed(tmp_path: Path, url: str) -> None:
    assert_refused(gatehouse("serve", "--data-dir", str(tmp_path), "--port", "0", "--public-url", url), "--public-url")
    assert not (tmp_path / "gatehouse.db").exists()


def test_invalid_config_file_is_one_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("version: 1\nserver:\n  port: notanumber\n")
    result = gatehouse("serve", "--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert_refused(result, "bad.yaml", "server.port", "expected a whole number")
    assert not (tmp_path / "d").exists()
    result = gatehouse("keys", "rotate", "--config", str(config), "--data-dir", str(tmp_path / "d"), "identity")
    assert_refused(result, "server.port")


def test_missing_config_file(tmp_path: Path) -> None:
    result = gatehouse("serve", "--config", str(tmp_path / "nope.yaml"), "--data-dir", str(tmp_path / "d"))
    assert_refused(result, "nope.yaml", "cannot read")


def test_data_dir_not_usable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = gatehouse("serve", "--data-dir", str(blocker / "data"), "--port", "0")
    assert_refused(result, str(blocker / "data"))
    result = gatehouse("keys", "rotate", "--data-dir", str(blocker / "data"), "identity")
    assert_refused(result, str(blocker / "data"))


def test_database_not_sqlite(tmp_path: Path) -> None:
    # A corrupted or foreign file where the database should be.
    (tmp_path / "gatehouse.db").write_bytes(b"this is not a database" * 200)
    result = gatehouse("serve", "--data-dir", str(tmp_path), "--port", "0")
    assert_refused(result, "gatehouse.db")


def test_bad_environment_number(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "GATEHOUSE_KEY_CACHE_SECONDS": "soon"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--data-dir", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=20, check=False, env=env,
    )  # fmt: skip
    assert_refused(result, "GATEHOUSE_KEY_CACHE_SECONDS")


def test_workers_from_config_file_share_metrics(tmp_path: Path) -> None:
    # Reading --config imports prometheus_client before serve knows it runs several workers; their values must
    # still go to the multi-process store, so that every scrape sums every worker.
    server = GatehouseServer(tmp_path / "data", config="version: 1\nserver:\n  workers: 2\npools: []\n", workers=2)
    server.start()
    try:
        for _ in range(40):
            with urllib.request.urlopen(urllib.request.Request(f"{server.url}/health"), timeout=10):
                pass
            # a new connection each time, so the kernel spreads them over both workers
        for _ in range(20):
            server.client().list_user_pools(MaxResults=5)
        files = list((tmp_path / "data" / "prometheus").glob("*.db"))
        assert len({f.stem.rsplit("_", 1)[1] for f in files}) == 2
        for _ in range(3):  # whichever worker answers the scrape reports all 20 calls
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
                text = response.read().decode()
            total = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("gatehouse_api_calls_total{") and 'operation="ListUserPools"' in line
            )
            assert total == 20
    finally:
        server.stop()
