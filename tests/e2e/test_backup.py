"""``gatehouse backup``: a copy of a running server's SQLite store, taken while sign-ups keep writing to it, that
another server then serves: the users sign in with their passwords, the refresh tokens issued before the backup
still work, and the pool signs with the same keys (sealed with the secret key the backup carries)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from botocore.exceptions import ClientError

from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, GatehouseServer

PASSWORD = "Backed-up-1"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def run_backup(*args: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID,
        "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET,
    }
    for name, value in (env or {}).items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    command = [sys.executable, "-m", "gateway.cli", "backup", *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    # SQLite whatever the run's store: the backup copies a SQLite database (PostgreSQL has its own tools).
    server = GatehouseServer(tmp_path_factory.mktemp("backed-up") / "data", extra_env={"GATEHOUSE_DATABASE_URL": None})
    server.start()
    yield server
    server.stop()


def _pool(idp: Any) -> tuple[str, str]:
    pool_id = str(idp.create_user_pool(PoolName="backed-up")["UserPool"]["Id"])
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def _sign_in(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    result = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return dict(result["AuthenticationResult"])


def test_a_backup_taken_under_writes_serves_as_the_original(gatehouse: GatehouseServer, tmp_path: Path) -> None:
    idp, public_idp = gatehouse.client(), gatehouse.client(signed=False)
    pool_id, client_id = _pool(idp)
    idp.admin_create_user(UserPoolId=pool_id, Username="olga", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="olga", Password=PASSWORD, Permanent=True)
    before = _sign_in(public_idp, client_id, "olga")

    # Sign-ups keep writing while the copy is taken: it is the database as of one moment, whole.
    stop = threading.Event()
    signed_up: list[str] = []

    def sign_ups() -> None:
        writer = gatehouse.client(signed=False)
        while not stop.is_set():
            name = f"busy-{len(signed_up)}"
            writer.sign_up(ClientId=client_id, Username=name, Password=PASSWORD)
            signed_up.append(name)

    thread = threading.Thread(target=sign_ups)
    thread.start()
    try:
        while len(signed_up) < 5:
            stop.wait(0.05)
        backup_dir = tmp_path / "backup"
        done = run_backup("--data-dir", str(gatehouse.data_dir), str(backup_dir))
        at_backup = len(signed_up)
        while len(signed_up) < at_backup + 5:
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert f"to {backup_dir}: gatehouse.db, secret.key" in done.stdout
    assert sorted(p.name for p in backup_dir.iterdir()) == ["gatehouse.db", "secret.key"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in [backup_dir, *backup_dir.iterdir()])
    with sqlite3.connect(backup_dir / "gatehouse.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        copied_users = copy.execute("SELECT count(*) FROM users").fetchone()[0]
    # olga and the sign-ups up to the moment of the copy: between the counts seen before and after it.
    assert 1 + 5 <= copied_users <= 1 + at_backup + 1

    restored = GatehouseServer(backup_dir, extra_env={"GATEHOUSE_DATABASE_URL": None})
    restored.start()
    try:
        public = restored.client(signed=False)
        after = _sign_in(public, client_id, "olga")
        header = jwt.get_unverified_header
        assert header(after["AccessToken"])["kid"] == header(before["AccessToken"])["kid"]
        refreshed = public.initiate_auth(
            ClientId=client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": before["RefreshToken"]},
        )
        assert refreshed["AuthenticationResult"]["AccessToken"]
        keys = requests.get(f"{restored.url}/{pool_id}/.well-known/jwks.json", timeout=10).json()["keys"]
        assert header(before["IdToken"])["kid"] in {key["kid"] for key in keys}
        assert restored.client().admin_get_user(UserPoolId=pool_id, Username="busy-0")["Username"] == "busy-0"
    finally:
        restored.stop()
    # A stopped server's data dir is backed up alike.
    again = run_backup("--data-dir", str(backup_dir), str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(tmp_path / "again" / "gatehouse.db") as copy:
        assert copy.execute("SELECT count(*) FROM users").fetchone()[0] == copied_users


def test_a_backup_never_overwrites_and_names_what_it_cannot_do(gatehouse: GatehouseServer, tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    refused = run_backup("--data-dir", str(gatehouse.data_dir), str(taken))
    assert refused.returncode == 1 and "is not an empty directory" in refused.stderr
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]

    missing = run_backup("--data-dir", str(tmp_path / "nowhere"), str(tmp_path / "b1"))
    assert missing.returncode == 1 and "no data dir" in missing.stderr
    assert not (tmp_path / "b1").exists()

    postgres = run_backup(str(tmp_path / "b2"), env={"GATEHOUSE_DATABASE_URL": "postgresql://db.example/gatehouse"})
    assert postgres.returncode == 1 and "pg_dump" in postgres.stderr

    wrong_key = run_backup(
        "--data-dir", str(gatehouse.data_dir), str(tmp_path / "b3"), env={"GATEHOUSE_SECRET_KEY": "ab" * 32}
    )
    assert wrong_key.returncode == 1 and "does not open the database's secrets" in wrong_key.stderr
    assert not (tmp_path / "b3").exists()  # nothing half-made is left behind


def test_a_key_from_the_environment_is_named_not_copied(gatehouse: GatehouseServer, tmp_path: Path) -> None:
    key = (gatehouse.data_dir / "secret.key").read_text().strip()
    done = run_backup("--data-dir", str(gatehouse.data_dir), str(tmp_path / "b"), env={"GATEHOUSE_SECRET_KEY": key})
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["gatehouse.db"]
    assert "the secret key is not in the backup (GATEHOUSE_SECRET_KEY)" in done.stdout


RESTORE_ID = "0b4f5e2a-6c1d-4e8f-9a3b-7c2d1e0f4a5b"
RECOVERY_CALLS = [
    ("initiate_point_in_time_recovery", {"RestoreTimestamp": 1_700_000_000}),
    ("start_point_in_time_recovery", {"RestoreId": RESTORE_ID}),
    ("describe_point_in_time_recovery", {"RestoreId": RESTORE_ID}),
    ("list_point_in_time_recoveries", {}),
    ("cancel_point_in_time_recovery", {"RestoreId": RESTORE_ID}),
    ("create_user_pool_replica", {"RegionName": "eu-west-1"}),
    ("list_user_pool_replicas", {}),
    ("update_user_pool_replica", {"RegionName": "eu-west-1", "Status": "ACTIVE"}),
    ("delete_user_pool_replica", {"RegionName": "eu-west-1"}),
]


@pytest.mark.parametrize(("method", "params"), RECOVERY_CALLS)
def test_point_in_time_recovery_and_replicas_say_what_to_use_instead(
    gatehouse: GatehouseServer, method: str, params: dict[str, Any]
) -> None:
    idp = gatehouse.client()
    pool_id = idp.create_user_pool(PoolName=f"no-{method}")["UserPool"]["Id"]
    with pytest.raises(idp.exceptions.OperationNotEnabledException) as refused:
        getattr(idp, method)(UserPoolId=pool_id, **params)
    message = refused.value.response["Error"]["Message"]
    assert "gatehouse backup" in message if "recover" in method else "PostgreSQL" in message
    with pytest.raises(idp.exceptions.ResourceNotFoundException):
        getattr(idp, method)(UserPoolId="us-east-1_Nowhere00", **params)
    with pytest.raises(ClientError) as unsigned:
        getattr(gatehouse.client(signed=False), method)(UserPoolId=pool_id, **params)
    assert unsigned.value.response["Error"]["Code"] != "OperationNotEnabledException"
