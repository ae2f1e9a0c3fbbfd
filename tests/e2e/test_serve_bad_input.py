"""Running Gatehouse with wrong input: ``gatehouse serve`` refuses bad options, bad config files, a port that is
taken and a data dir it cannot use with one clear line and a non-zero exit, never a stack trace."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP

from tests.support import GatehouseServer, MailServer, code_in, free_port


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
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


def test_port_in_use_is_refused_not_shared(gatehouse: GatehouseServer, tmp_path: Path) -> None:
    # SO_REUSEPORT would let a second, unrelated server (its own data dir) take half of the first one's
    # connections without a word.
    result = run_cli("serve", "--port", str(gatehouse.port), "--data-dir", str(tmp_path / "other"), timeout=30)
    assert_refused(result, str(gatehouse.port), "in use")
    result = run_cli(
        "serve", "--port", str(gatehouse.port), "--data-dir", str(tmp_path / "other2"), "--workers", "2", timeout=30
    )
    assert_refused(result, str(gatehouse.port), "in use")


@pytest.mark.parametrize("workers", ["0", "-3", "100000"])
def test_workers_out_of_range(tmp_path: Path, workers: str) -> None:
    assert_refused(run_cli("serve", "--data-dir", str(tmp_path), "--port", "0", "--workers", workers), "--workers")
    assert not (tmp_path / "gatehouse.db").exists()


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_port_out_of_range(tmp_path: Path, port: str) -> None:
    assert_refused(run_cli("serve", "--data-dir", str(tmp_path), "--port", port), "--port")


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com", "https://", "example.com:9229"])
def test_public_url_malformed(tmp_path: Path, url: str) -> None:
    assert_refused(run_cli("serve", "--data-dir", str(tmp_path), "--port", "0", "--public-url", url), "--public-url")
    assert not (tmp_path / "gatehouse.db").exists()


def test_invalid_config_file_is_one_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("version: 1\nserver:\n  port: notanumber\n")
    result = run_cli("serve", "--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert_refused(result, "bad.yaml", "server.port", "expected a whole number")
    assert not (tmp_path / "d").exists()
    result = run_cli("keys", "rotate", "--config", str(config), "--data-dir", str(tmp_path / "d"), "identity")
    assert_refused(result, "server.port")


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("serve", "--config", str(tmp_path / "nope.yaml"), "--data-dir", str(tmp_path / "d"))
    assert_refused(result, "nope.yaml", "cannot read")


def test_data_dir_not_usable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run_cli("serve", "--data-dir", str(blocker / "data"), "--port", "0")
    assert_refused(result, str(blocker / "data"))
    result = run_cli("keys", "rotate", "--data-dir", str(blocker / "data"), "identity")
    assert_refused(result, str(blocker / "data"))


def test_database_not_sqlite(tmp_path: Path) -> None:
    # A corrupted or foreign file where the database should be.
    (tmp_path / "gatehouse.db").write_bytes(b"this is not a database" * 200)
    result = run_cli("serve", "--data-dir", str(tmp_path), "--port", "0")
    assert_refused(result, "gatehouse.db")


def serve_with_env(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--data-dir", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=20, check=False, env={**environ, **env},
    )  # fmt: skip


def test_bad_environment_number(tmp_path: Path) -> None:
    assert_refused(serve_with_env(tmp_path, GATEHOUSE_KEY_CACHE_SECONDS="soon"), "GATEHOUSE_KEY_CACHE_SECONDS")
    assert_refused(serve_with_env(tmp_path, GATEHOUSE_OAUTH_CODE_SECONDS="nan"), "GATEHOUSE_OAUTH_CODE_SECONDS")
    # A code that lives 0 s has expired when the sign-in hands it to the app: no OAuth sign-in could finish.
    zero = serve_with_env(tmp_path / "zero", GATEHOUSE_OAUTH_CODE_SECONDS="0")
    assert_refused(zero, "GATEHOUSE_OAUTH_CODE_SECONDS: expected a number of seconds above 0")
    assert not (tmp_path / "zero").exists()


@pytest.mark.parametrize("key", ["abcd", "zz" * 32, "ab" * 33])
def test_bad_secret_key_is_named_not_shown(tmp_path: Path, key: str) -> None:
    result = serve_with_env(tmp_path, GATEHOUSE_SECRET_KEY=key)
    assert_refused(result, "GATEHOUSE_SECRET_KEY", "64 hexadecimal digits")
    assert key not in result.stderr
    (tmp_path / "secret.key").write_text("ab" * 16)  # a truncated key file
    assert_refused(serve_with_env(tmp_path), "secret.key", "64 hexadecimal digits")


@pytest.mark.parametrize(
    ("key_id", "secret", "named"),
    [
        ("AKIDEXAMPLE\n", "a-secret-to-hide", "GATEHOUSE_ADMIN_ACCESS_KEY_ID"),
        ("AKID EXAMPLE", "a-secret-to-hide", "GATEHOUSE_ADMIN_ACCESS_KEY_ID"),
        ("AKID/EXAMPLE", "a-secret-to-hide", "GATEHOUSE_ADMIN_ACCESS_KEY_ID"),
        ("AKIDEXAMPLE", "a-secret-to-hide\n", "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY"),
        ("AKIDEXAMPLE", " a-secret-to-hide", "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY"),
    ],
)
def test_admin_credentials_no_client_could_sign_with(tmp_path: Path, key_id: str, secret: str, named: str) -> None:
    # A secret file mounted as a variable ends with a newline: the server took it as it was, said nothing, and
    # every admin call was refused (botocore cannot even send a header with the newline in it).
    result = serve_with_env(
        tmp_path / "data", GATEHOUSE_ADMIN_ACCESS_KEY_ID=key_id, GATEHOUSE_ADMIN_SECRET_ACCESS_KEY=secret
    )
    assert_refused(result, f"gatehouse serve: {named}: expected")
    assert len(result.stderr.splitlines()) == 1 and "a-secret-to-hide" not in result.stderr, result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("given", ["GATEHOUSE_ADMIN_ACCESS_KEY_ID", "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY"])
def test_half_set_admin_credentials(tmp_path: Path, given: str) -> None:
    result = serve_with_env(tmp_path, **{given: "only-this-one-is-set"})
    assert_refused(result, given, "set both")
    assert "only-this-one-is-set" not in result.stderr
    assert not (tmp_path / "admin-credentials.json").exists()


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
        files = list((tmp_path / "data" / "prometheus").glob("*/*.db"))
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


def secret_hash(username: str, client_id: str, client_secret: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def test_logs_record_every_decision_and_no_secret(gatehouse: GatehouseServer, mail: MailServer) -> None:
    idp, public = gatehouse.client(), gatehouse.client(signed=False)
    pool_id = idp.create_user_pool(PoolName="log-check", AutoVerifiedAttributes=["email"], MfaConfiguration="OPTIONAL")[
        "UserPool"
    ]["Id"]
    app = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="log-app",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]
    client_id, client_secret = app["ClientId"], app["ClientSecret"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="OPTIONAL"
    )
    user, email = "logged-user", "logged-user@example.com"
    password, wrong, new_password = "Secret-Pass-word-41", "Wrong-Pass-word-42", "Newer-Pass-word-43"
    digest = secret_hash(user, client_id, client_secret)
    public.sign_up(
        ClientId=client_id, SecretHash=digest, Username=user, Password=password,
        UserAttributes=[{"Name": "email", "Value": email}],
    )  # fmt: skip
    sign_up_code = code_in(mail.wait_for(email))
    with pytest.raises(ClientError):
        public.confirm_sign_up(ClientId=client_id, SecretHash=digest, Username=user, ConfirmationCode="000000")
    public.confirm_sign_up(ClientId=client_id, SecretHash=digest, Username=user, ConfirmationCode=sign_up_code)
    with pytest.raises(ClientError):
        public.initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user, "PASSWORD": wrong, "SECRET_HASH": digest},
        )  # fmt: skip
    tokens = public.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user, "PASSWORD": password, "SECRET_HASH": digest},
    )["AuthenticationResult"]  # fmt: skip
    srp = AWSSRP(
        username=user, password=password, pool_id=pool_id, client_id=client_id, client=public,
        client_secret=client_secret,
    )  # fmt: skip
    srp_a = format(srp.large_a_value, "x")
    srp_tokens = srp.authenticate_user()["AuthenticationResult"]
    refreshed = public.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"], "SECRET_HASH": digest},
    )["AuthenticationResult"]  # fmt: skip
    totp_secret = public.associate_software_token(AccessToken=tokens["AccessToken"])["SecretCode"]
    public.forgot_password(ClientId=client_id, SecretHash=digest, Username=user)
    reset_code = code_in(mail.wait_for(email, count=2))
    with pytest.raises(ClientError):
        public.confirm_forgot_password(
            ClientId=client_id, SecretHash=digest, Username=user, ConfirmationCode="111111", Password=new_password
        )
    public.confirm_forgot_password(
        ClientId=client_id, SecretHash=digest, Username=user, ConfirmationCode=reset_code, Password=new_password
    )
    log = gatehouse.log_text()
    secrets = {
        "password": password, "wrong password": wrong, "new password": new_password,
        "sign-up code": sign_up_code, "reset code": reset_code, "client secret": client_secret,
        "secret hash": digest, "TOTP secret": totp_secret, "SRP A": srp_a[:64],
    }  # fmt: skip
    for name, result in (("password", tokens), ("srp", srp_tokens), ("refreshed", refreshed)):
        for kind in ("AccessToken", "IdToken", "RefreshToken"):
            if kind in result:
                secrets[f"{name} {kind} signature"] = result[kind].rsplit(".", 1)[-1][:40]
                secrets[f"{name} {kind}"] = result[kind][:60] if kind == "RefreshToken" else result[kind]
    leaked = [name for name, value in secrets.items() if value in log]
    assert leaked == []
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    failures = [e for e in events if e.get("event") == "sign_in.failed" and e.get("client") == client_id]
    assert [e["reason"] for e in failures] and all(e["reason"] for e in failures)
    steps = [e for e in events if e.get("event") == "sign_in.step" and e.get("client") == client_id]
    assert len([e for e in steps if e["outcome"] == "tokens"]) >= 3  # password, SRP, refresh


def test_database_from_a_newer_gatehouse_is_refused_at_start(tmp_path: Path) -> None:
    server = GatehouseServer(tmp_path)  # makes and migrates the database
    server.start()
    server.stop()
    with sqlite3.connect(tmp_path / "gatehouse.db") as db:
        db.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)")
    result = run_cli("serve", "--data-dir", str(tmp_path), "--port", "0")
    assert_refused(result, "gatehouse.db", "9999")


def test_database_made_by_the_first_migration_only_is_upgraded(tmp_path: Path) -> None:
    # A database as the first release left it, with a pool in it: serve migrates it and keeps the pool.
    from gateway.storage.sqlite import load_migrations, split_statements

    first = load_migrations()[0]
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "gatehouse.db") as db:
        for statement in split_statements(first.sql):
            db.execute(statement)
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)")
        db.execute("INSERT INTO schema_migrations VALUES (1, 0)")
    server = GatehouseServer(data)
    server.start()
    try:
        idp = server.client()
        pool_id = idp.create_user_pool(PoolName="old-db")["UserPool"]["Id"]
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="c", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        idp.admin_create_user(UserPoolId=pool_id, Username="old", MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username="old", Password="Old-db-pass-1", Permanent=True)
        result = server.client(signed=False).initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "old", "PASSWORD": "Old-db-pass-1"},
        )  # fmt: skip
        assert "AccessToken" in result["AuthenticationResult"]
    finally:
        server.stop()
    with sqlite3.connect(data / "gatehouse.db") as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [m.version for m in load_migrations()]
    # Starting again on the migrated file changes nothing and serves the same pool.
    server = GatehouseServer(data)
    server.start()
    try:
        assert server.client().describe_user_pool(UserPoolId=pool_id)["UserPool"]["Name"] == "old-db"
    finally:
        server.stop()


def test_two_servers_on_one_data_dir_keep_their_own_metrics(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = GatehouseServer(data, workers=2)
    first.start()
    try:
        for _ in range(7):
            first.client().list_user_pools(MaxResults=5)
        second = GatehouseServer(data, workers=2)
        second.start()
        try:
            for _ in range(3):
                second.client().list_user_pools(MaxResults=5)
            for server, expected in ((first, 7), (second, 3)):
                for _ in range(3):
                    assert list_user_pools_calls(server) == expected
        finally:
            second.stop()
        assert list_user_pools_calls(first) == 7
    finally:
        first.stop()
    assert list((data / "prometheus").iterdir()) == []  # each removed its own on the way out


def list_user_pools_calls(server: GatehouseServer) -> float:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gatehouse_api_calls_total{") and 'operation="ListUserPools"' in line
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_config_that_cannot_be_applied_stops_the_server(tmp_path: Path, workers: str) -> None:
    # Valid on its own (config check passes) but not for this store: the pool exists with a setting Cognito
    # fixes at creation. The server must exit non-zero with the reason, not hang or keep running half-started.
    pool = "version: 1\npools:\n  - id: us-east-1_Fixedattr\n    name: fixed\n    username_attributes: {}\n"
    first, changed = tmp_path / "first.yaml", tmp_path / "changed.yaml"
    first.write_text(pool.format("[email]"))
    changed.write_text(pool.format("[]"))
    assert run_cli("config", "check", str(changed)).returncode == 0
    data = tmp_path / "data"
    server = GatehouseServer(data, config=first.read_text())
    server.start()
    server.stop()
    port = str(free_port())
    result = run_cli("serve", "--config", str(changed), "--data-dir", str(data), "--port", port, "--workers", workers)
    assert_refused(result, "changed.yaml", "pools[0].username_attributes", "cannot change once the pool exists")


def test_any_port_with_several_workers_is_refused(tmp_path: Path) -> None:
    result = run_cli("serve", "--data-dir", str(tmp_path), "--port", "0", "--workers", "2")
    assert_refused(result, "--workers", "fixed --port")


def test_database_files_are_private(gatehouse: GatehouseServer) -> None:
    # They hold password hashes and users' attributes; secret.key and the outbox are private already.
    gatehouse.client().create_user_pool(PoolName="private-files")
    data = Path(gatehouse.data_dir)
    files = [data / name for name in ("gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm", "secret.key")]
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in files if path.exists()}
    assert "gatehouse.db" in modes and "gatehouse.db-wal" in modes
    assert set(modes.values()) == {"0o600"}, modes
