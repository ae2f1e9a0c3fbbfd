"""``GET /health`` as an orchestrator reads it: 200 while the server can keep what it is given, 503 with the
reason when its database file is gone (writes would land in a deleted inode and vanish at restart)."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import GatehouseServer


def get_health(server: GatehouseServer) -> tuple[int, dict[str, str]]:
    try:
        with urllib.request.urlopen(f"{server.url}/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_health_turns_503_when_the_database_file_is_deleted(tmp_path: Path) -> None:
    server = GatehouseServer(tmp_path / "data")
    server.start()
    try:
        assert get_health(server) == (200, {"status": "ok"})
        admin = server.client()
        pool_id = admin.create_user_pool(PoolName="health")["UserPool"]["Id"]
        assert get_health(server) == (200, {"status": "ok"})

        database = tmp_path / "data" / "gatehouse.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        status, body = get_health(server)
        assert status == 503
        assert body["status"] == "unavailable"
        assert "deleted or replaced" in body["reason"] and str(database) in body["reason"]
        assert "health.store_unavailable" in server.log_text()
        # The process itself still answers the API (reads come from the open file); only health says it must go.
        assert admin.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Id"] == pool_id
    finally:
        server.stop()


def test_health_turns_503_when_the_disk_keeps_less_free_space_than_asked(tmp_path: Path) -> None:
    """A full disk fails every write ("database or disk is full") while reads still answer: /health says so from
    the data directory's free space. Here the server is asked to keep more free space than any disk has."""
    free = shutil.disk_usage(tmp_path).free
    server = GatehouseServer(tmp_path / "data", extra_env={"GATEHOUSE_MIN_FREE_BYTES": str(free * 4 + 1)})
    server.start(healthy=False)
    try:
        status, body = get_health(server)
        assert status == 503 and body["status"] == "unavailable"
        assert "is full" in body["reason"] and str(tmp_path / "data") in body["reason"]
    finally:
        server.stop()
