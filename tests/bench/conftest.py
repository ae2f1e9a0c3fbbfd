"""The benchmark tests' Gatehouse: load generators send far more unsigned calls from one address than the
default rate limits (server.rate_limits) allow, as bench/run.py's server does, so this one turns them off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import GatehouseServer, MailServer, smtp_config


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    config = smtp_config(mail).replace(
        "server:\n", "server:\n  rate_limits:\n    per_client: {rate: 0}\n    per_address: {rate: 0}\n", 1
    )
    server = GatehouseServer(data_dir, config=config)
    server.start()
    yield server
    server.stop()
