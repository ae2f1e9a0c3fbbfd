"""Operating Gatehouse, end to end: the quick start example, `gatehouse keys rotate` against a running server,
password hashes upgraded at sign-in after the Argon2 cost is raised, temporary passwords that expired,
`gatehouse config check`, and `--public-url` as the token issuer.

Every server is a real `gatehouse serve` process; the state of the world (an old hash, an old temporary password)
is set up through the API or, where only time would produce it, in the SQLite file the server uses.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, GatehouseServer

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "Correct-horse-1"
AUTH_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
DEFAULT_ARGON2 = "$argon2id$v=19$m=19456,t=2,p=1$"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def gatehouse_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``gatehouse <args>`` in a subprocess, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return dict(json.load(response))


def jwks_kids(server: GatehouseServer, pool_id: str) -> set[str]:
    return {key["kid"] for key in get_json(f"{server.url}/{pool_id}/.well-known/jwks.json")["keys"]}


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def pool_with_client(idp: Any, name: str, **pool_args: Any) -> tuple[str, str]:
    pool_id = str(idp.create_user_pool(PoolName=name, **pool_args)["UserPool"]["Id"])
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=AUTH_FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def confirmed_user(idp: Any, pool_id: str, username: str, password: str = PASSWORD) -> None:
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)


def sign_in(public_idp: Any, client_id: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": password}
    )
    return dict(response)


def tokens_of(public_idp: Any, client_id: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    return dict(sign_in(public_idp, client_id, username, password)["AuthenticationResult"])


def database(server: GatehouseServer, *, readonly: bool = True) -> sqlite3.Connection:
    """The server's own SQLite file, opened beside the running server (SQLite serves two processes)."""
    path = server.data_dir / "gatehouse.db"
    assert path.exists()
    return sqlite3.connect(f"file:{path}?mode={'ro' if readonly else 'rw'}", uri=True, timeout=10)


def password_hash(server: GatehouseServer, pool_id: str, username: str) -> str:
    with database(server) as db:
        rows = db.execute(
            "SELECT password_hash FROM users WHERE pool_id = ? AND username = ?", (pool_id, username)
        ).fetchall()
    db.close()
    assert len(rows) == 1
    return str(rows[0][0])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """The embedded default (no SMTP: the outbox), trusting its cached signing keys for 1 s instead of 60 s."""
    gatehouse = GatehouseServer(
        tmp_path_factory.mktemp("operations") / "data", extra_env={"GATEHOUSE_KEY_CACHE_SECONDS": "1"}
    )
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


# --- the quick start ------------------------------------------------------------------------------------


def test_quickstart_example_runs_against_a_real_server(server: GatehouseServer) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "boto3_quickstart.py")],
        cwd=REPO,
        env={
            **os.environ,
            "GATEHOUSE_URL": server.url,
            "GATEHOUSE_DATA_DIR": str(server.data_dir),
            "GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID,
            "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    verified = [line for line in result.stdout.splitlines() if line.startswith("ID token verified:")]
    assert len(verified) == 1, result.stdout
    assert "'token_use': 'id'" in verified[0] and "'email_verified': True" in verified[0]
    assert "GetUser:" in result.stdout


# --- keys rotate ----------------------------------------------------------------------------------------


def test_keys_rotate_while_the_server_runs(server: GatehouseServer) -> None:
    idp, public_idp = server.client(), server.client(signed=False)
    pool_id, client_id = pool_with_client(idp, "rotation")
    confirmed_user(idp, pool_id, "ivy")
    first = tokens_of(public_idp, client_id, "ivy")
    before = jwks_kids(server, pool_id)
    old_kids = {kid_of(first["IdToken"]), kid_of(first["AccessToken"])}
    assert old_kids <= before

    rotated = gatehouse_cli(
        "keys", "rotate", "--now", "--data-dir", str(server.data_dir), pool_id,
        env={"GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID, "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET},
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    assert pool_id in rotated.stdout

    # --now: the running server starts signing with the new key(s) once its key cache (1 s here) runs out.
    deadline = time.monotonic() + 15
    while True:
        second = tokens_of(public_idp, client_id, "ivy")
        new_kids = {kid_of(second["IdToken"]), kid_of(second["AccessToken"])}
        if not new_kids & before or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert not new_kids & before, f"still signing with {new_kids & before} after the rotation"
    for kid in new_kids:
        assert kid in rotated.stdout  # the keys the command reported are the ones now in use
    after = jwks_kids(server, pool_id)
    assert before | new_kids <= after  # the old keys stay published beside the new ones

    # Tokens issued before the rotation still work and still verify against the published keys.
    assert public_idp.get_user(AccessToken=first["AccessToken"])["Username"] == "ivy"
    keys = jwt.PyJWKClient(f"{server.url}/{pool_id}/.well-known/jwks.json", cache_keys=False)
    issuer = f"{server.url}/{pool_id}"
    for tokens in (first, second):
        id_claims = jwt.decode(
            tokens["IdToken"],
            keys.get_signing_key_from_jwt(tokens["IdToken"]).key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=issuer,
        )
        assert id_claims["cognito:username"] == "ivy"
        access_claims = jwt.decode(
            tokens["AccessToken"],
            keys.get_signing_key_from_jwt(tokens["AccessToken"]).key,
            algorithms=["RS256"],
            issuer=issuer,
            options={"verify_aud": False},
        )
        assert access_claims["client_id"] == client_id and access_claims["username"] == "ivy"
    assert public_idp.get_user(AccessToken=second["AccessToken"])["Username"] == "ivy"


def test_keys_rotate_refuses_an_unknown_pool(server: GatehouseServer) -> None:
    result = gatehouse_cli(
        "keys", "rotate", "--data-dir", str(server.data_dir), "us-east-1_Nope0000",
        env={"GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID, "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET},
    )  # fmt: skip
    # One line, named by its command as every other refusal of `gatehouse keys rotate` is.
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "gatehouse keys rotate: no user pool us-east-1_Nope0000\n"


# --- temporary passwords that expired --------------------------------------------------------------------


def test_expired_temporary_password_must_be_reset_by_an_admin(server: GatehouseServer) -> None:
    idp, public_idp = server.client(), server.client(signed=False)
    pool_id, client_id = pool_with_client(idp, "temporary")
    idp.admin_create_user(
        UserPoolId=pool_id, Username="jack", TemporaryPassword="Temporary-pass-1", MessageAction="SUPPRESS"
    )
    assert sign_in(public_idp, client_id, "jack", "Temporary-pass-1")["ChallengeName"] == "NEW_PASSWORD_REQUIRED"

    # A password issued long ago: its expiry is in the past.
    with database(server, readonly=False) as db:
        cursor = db.execute(
            "UPDATE users SET temporary_password_expires_at = ? WHERE pool_id = ? AND username = ?",
            (time.time() - 3600, pool_id, "jack"),
        )
        assert cursor.rowcount == 1
    db.close()

    with pytest.raises(ClientError) as exc:
        sign_in(public_idp, client_id, "jack", "Temporary-pass-1")
    assert error_of(exc) == (
        "NotAuthorizedException",
        "Temporary password has expired and must be reset by an administrator.",
    )
    assert idp.admin_get_user(UserPoolId=pool_id, Username="jack")["UserStatus"] == "FORCE_CHANGE_PASSWORD"

    idp.admin_set_user_password(UserPoolId=pool_id, Username="jack", Password="Temporary-pass-2", Permanent=False)
    with pytest.raises(ClientError) as exc:
        sign_in(public_idp, client_id, "jack", "Temporary-pass-1")
    assert error_of(exc)[0] == "NotAuthorizedException"
    challenge = sign_in(public_idp, client_id, "jack", "Temporary-pass-2")
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    answered = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "jack", "NEW_PASSWORD": "Permanent-pass-3"},
    )
    assert "AccessToken" in answered["AuthenticationResult"]
    assert idp.admin_get_user(UserPoolId=pool_id, Username="jack")["UserStatus"] == "CONFIRMED"
    assert "AuthenticationResult" in sign_in(public_idp, client_id, "jack", "Permanent-pass-3")


# --- password hashes upgraded at sign-in -----------------------------------------------------------------


def test_password_hash_is_upgraded_when_the_argon2_cost_is_raised(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    cheap = GatehouseServer(
        data_dir,
        config="""version: 1
server:
  argon2:
    memory_kib: 8192
    time_cost: 1
pools: []
""",
    )
    cheap.start()
    try:
        idp = cheap.client()
        pool_id, client_id = pool_with_client(idp, "rehash")
        confirmed_user(idp, pool_id, "kate")
        old_hash = password_hash(cheap, pool_id, "kate")
        assert old_hash.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    finally:
        cheap.stop()

    default = GatehouseServer(data_dir, production_argon2=True)  # the same database, the default cost
    default.start()
    try:
        public_idp = default.client(signed=False)
        assert "AccessToken" in tokens_of(public_idp, client_id, "kate")
        new_hash = password_hash(default, pool_id, "kate")
        assert new_hash.startswith(DEFAULT_ARGON2) and new_hash != old_hash
        assert "AccessToken" in tokens_of(public_idp, client_id, "kate")
        assert password_hash(default, pool_id, "kate") == new_hash  # upgraded once, not at every sign-in
        with pytest.raises(ClientError) as exc:
            sign_in(public_idp, client_id, "kate", "Wrong-password-1")
        assert error_of(exc)[0] == "NotAuthorizedException"
    finally:
        default.stop()


# --- config check ---------------------------------------------------------------------------------------

EXAMPLE_SECRETS = {
    "WEB_CLIENT_SECRET": "web-client-secret-for-tests",
    "GATEHOUSE_ADMIN_SECRET": "admin-secret-for-tests",
    "SMTP_PASSWORD": "smtp-password-for-tests",
    "SMS_WEBHOOK_TOKEN": "sms-token-for-tests",
    "LAMBDA_SECRET_ACCESS_KEY": "lambda-secret-for-tests",
    "KMS_SECRET_ACCESS_KEY": "kms-secret-for-tests",
}


def test_config_check_accepts_the_documented_example() -> None:
    result = gatehouse_cli("config", "check", "config/gatehouse.example.yaml", env=EXAMPLE_SECRETS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "config/gatehouse.example.yaml: OK (1 pools)"


def test_config_check_names_the_file_and_key_of_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "gatehouse.yaml"
    path.write_text("""version: 1
server:
  prot: 9229
pools:
  - id: us-east-1_Typo01
    name: typo
    clients:
      - {id: typoclient, name: web, explict_auth_flows: [ALLOW_USER_SRP_AUTH]}
""")
    result = gatehouse_cli("config", "check", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert f"{path}: server.prot: unknown key (did you mean 'port'?)" in lines
    assert f"{path}: pools[0].clients[0].explict_auth_flows: unknown key (did you mean 'explicit_auth_flows'?)" in lines
    assert len(lines) == 2 and result.stdout == ""


def test_config_check_names_a_missing_secret_without_showing_the_others() -> None:
    env = {k: v for k, v in EXAMPLE_SECRETS.items() if k != "WEB_CLIENT_SECRET"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", "config/gatehouse.example.yaml"],
        cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if k != "WEB_CLIENT_SECRET"}, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "config/gatehouse.example.yaml: pools[0].clients[1].secret:" in result.stderr
    assert "WEB_CLIENT_SECRET" in result.stderr
    for secret in env.values():
        assert secret not in result.stderr + result.stdout


# --- public URL -----------------------------------------------------------------------------------------


def test_public_url_is_the_issuer(tmp_path: Path) -> None:
    public_url = "http://id.example.test:8443"
    gatehouse = GatehouseServer(tmp_path / "data", extra_args=["--public-url", public_url])
    gatehouse.start()
    try:
        idp, public_idp = gatehouse.client(), gatehouse.client(signed=False)
        pool_id, client_id = pool_with_client(idp, "public")
        confirmed_user(idp, pool_id, "liam")
        issuer = f"{public_url}/{pool_id}"

        discovery = get_json(f"{gatehouse.url}/{pool_id}/.well-known/openid-configuration")
        assert discovery["issuer"] == issuer
        assert discovery["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
        # The endpoints live under the issuer: the pool is in the path (docs/oauth.md).
        assert discovery["token_endpoint"] == f"{issuer}/oauth2/token"

        tokens = tokens_of(public_idp, client_id, "liam")
        # The keys are fetched from where this test reaches the server; the issuer is the public one.
        keys = jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")
        id_claims = jwt.decode(
            tokens["IdToken"],
            keys.get_signing_key_from_jwt(tokens["IdToken"]).key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=issuer,
        )
        assert id_claims["iss"] == issuer
        access_claims = jwt.decode(
            tokens["AccessToken"],
            keys.get_signing_key_from_jwt(tokens["AccessToken"]).key,
            algorithms=["RS256"],
            issuer=issuer,
            options={"verify_aud": False},
        )
        assert access_claims["iss"] == issuer
        assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "liam"
    finally:
        gatehouse.stop()
