"""The sign-in examples (examples/totp_sign_in.py, examples/srp_sign_in.py) run unchanged, as subprocesses,
against a real server; their output shows each step happened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, GatehouseServer

REPO = Path(__file__).resolve().parents[2]


def run_example(server: GatehouseServer, name: str) -> str:
    env = {**os.environ, "GATEHOUSE_URL": server.url, "GATEHOUSE_DATA_DIR": str(server.data_dir)}
    env |= {"GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID, "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET}
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / name)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_totp_example_signs_in_with_an_authenticator_code(gatehouse: GatehouseServer) -> None:
    out = run_example(gatehouse, "totp_sign_in.py")
    lines = out.splitlines()
    assert any(line.startswith("authenticator URI: otpauth://totp/") for line in lines), out
    assert "VerifySoftwareToken: SUCCESS" in lines, out
    assert "MFA settings: ['SOFTWARE_TOKEN_MFA'] preferred SOFTWARE_TOKEN_MFA" in lines, out
    assert "challenge: SOFTWARE_TOKEN_MFA" in lines, out
    assert any(line.startswith("signed in with TOTP as totp-") for line in lines), out


def test_srp_example_signs_in_and_refuses_a_wrong_password(gatehouse: GatehouseServer) -> None:
    out = run_example(gatehouse, "srp_sign_in.py")
    assert "'token_use': 'id'" in out and "SRP sign-in verified:" in out, out
    assert "wrong password refused: NotAuthorizedException" in out, out


def test_examples_fail_loudly_with_wrong_admin_credentials(gatehouse: GatehouseServer, tmp_path: Path) -> None:
    """Without credentials in the environment the example reads the data dir's file; a wrong one is refused."""
    fake_dir = tmp_path / "data"
    fake_dir.mkdir()
    (fake_dir / "admin-credentials.json").write_text('{"access_key_id": "AKIAWRONG", "secret_access_key": "x"}')
    env = {**os.environ, "GATEHOUSE_URL": gatehouse.url, "GATEHOUSE_DATA_DIR": str(fake_dir)}
    env.pop("GATEHOUSE_ADMIN_ACCESS_KEY_ID", None)
    env.pop("GATEHOUSE_ADMIN_SECRET_ACCESS_KEY", None)
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "srp_sign_in.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SRP sign-in verified" not in result.stdout
    assert "botocore.exceptions.ClientError" in result.stderr, result.stderr
    assert "CreateUserPool" in result.stderr, result.stderr
