"""The Argon2id cost from the environment (GATEHOUSE_ARGON2_MEMORY_KIB, _TIME_COST, _PARALLELISM), which test
servers use so that thousands of password hashes cost microseconds each (tests/support.py TEST_ARGON2_ENV).

A real `gatehouse serve`: its stored hashes carry the parameters they were made with (the PHC string format),
so the SQLite file shows which cost the server used. Malformed values are refused before anything is created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_operations import confirmed_user, error_of, password_hash, pool_with_client, sign_in, tokens_of
from tests.support import TEST_ARGON2_ENV, GatehouseServer


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """A test server with the default test cost (no config, no production_argon2)."""
    server = GatehouseServer(tmp_path_factory.mktemp("argon2-env") / "data")
    server.start()
    yield server
    server.stop()


def test_a_test_server_hashes_at_the_test_cost(gatehouse: GatehouseServer) -> None:
    idp: Any = gatehouse.client()
    pool_id, client_id = pool_with_client(idp, "argon2-test-cost")
    confirmed_user(idp, pool_id, "ann")
    memory = os.environ.get("GATEHOUSE_ARGON2_MEMORY_KIB", TEST_ARGON2_ENV["GATEHOUSE_ARGON2_MEMORY_KIB"])
    passes = os.environ.get("GATEHOUSE_ARGON2_TIME_COST", TEST_ARGON2_ENV["GATEHOUSE_ARGON2_TIME_COST"])
    assert password_hash(gatehouse, pool_id, "ann").startswith(f"$argon2id$v=19$m={memory},t={passes},p=1$")
    public_idp = gatehouse.client(signed=False)
    assert "AccessToken" in tokens_of(public_idp, client_id, "ann")
    with pytest.raises(ClientError) as exc:
        sign_in(public_idp, client_id, "ann", "Wrong-password-1")
    assert error_of(exc)[0] == "NotAuthorizedException"


def test_the_environment_overrides_the_config_file(tmp_path: Path) -> None:
    config = "version: 1\nserver:\n  argon2:\n    memory_kib: 4096\n    time_cost: 3\npools: []\n"
    server = GatehouseServer(
        tmp_path / "data",
        config=config,
        extra_env={
            "GATEHOUSE_ARGON2_MEMORY_KIB": "2048",
            "GATEHOUSE_ARGON2_TIME_COST": "",
            "GATEHOUSE_ARGON2_PARALLELISM": "2",
        },
    )
    server.start()
    try:
        idp = server.client()
        pool_id, client_id = pool_with_client(idp, "argon2-env-wins")
        confirmed_user(idp, pool_id, "bob")
        # The environment's memory and lanes, the file's passes (an empty variable is no setting).
        assert password_hash(server, pool_id, "bob").startswith("$argon2id$v=19$m=2048,t=3,p=2$")
        assert "AccessToken" in tokens_of(server.client(signed=False), client_id, "bob")
    finally:
        server.stop()


def serve_with(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--data-dir", str(tmp_path / "data"), "--port", "0"],
        capture_output=True, text=True, timeout=20, check=False, env={**environ, **env},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"GATEHOUSE_ARGON2_MEMORY_KIB": "lots"}, ["GATEHOUSE_ARGON2_MEMORY_KIB", "whole number"]),
        ({"GATEHOUSE_ARGON2_MEMORY_KIB": "7"}, ["GATEHOUSE_ARGON2_MEMORY_KIB", "at least 8"]),
        ({"GATEHOUSE_ARGON2_TIME_COST": "0"}, ["GATEHOUSE_ARGON2_TIME_COST", "at least 1"]),
        ({"GATEHOUSE_ARGON2_TIME_COST": "1.5"}, ["GATEHOUSE_ARGON2_TIME_COST", "whole number"]),
        ({"GATEHOUSE_ARGON2_PARALLELISM": "-1"}, ["GATEHOUSE_ARGON2_PARALLELISM", "at least 1"]),
        # RFC 9106 §3.1: at least 8 KiB of memory per lane.
        ({"GATEHOUSE_ARGON2_MEMORY_KIB": "16", "GATEHOUSE_ARGON2_PARALLELISM": "4"}, ["8 KiB per lane"]),
    ],
)
def test_a_malformed_cost_is_refused_before_anything_is_created(
    tmp_path: Path, env: dict[str, str], words: list[str]
) -> None:
    result = serve_with(tmp_path, **env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    for word in words:
        assert word in output, output
    assert not (tmp_path / "data").exists()
