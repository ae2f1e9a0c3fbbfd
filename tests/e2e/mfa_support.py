"""Shared helpers of the challenge tests: codes the server texted (its outbox file), and running
amazon-cognito-identity-js (or another npm client) under node with a JSON request."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import GatehouseServer

REPO = pathlib.Path(__file__).resolve().parents[2]


def outbox_sms(server: GatehouseServer, phone: str) -> list[str]:
    """The texts of the SMS messages the server wrote to its outbox file for ``phone``, oldest first."""
    path = server.data_dir / "outbox.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [str(m["text"]) for m in lines if m["kind"] == "sms" and m["to"] == phone]


def sms_code(server: GatehouseServer, phone: str, count: int) -> str:
    """The code in the ``count``-th SMS the server sent to ``phone``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        texts = outbox_sms(server, phone)
        if len(texts) >= count:
            match = re.search(r"\b(\d{6})\b", texts[count - 1])
            assert match, texts[count - 1]
            return match.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no SMS #{count} for {phone}")


def cognito_js_modules() -> pathlib.Path:
    """The node_modules folder that holds amazon-cognito-identity-js (fails the test if there is none)."""
    js_dir = pathlib.Path(os.environ.get("GATEHOUSE_COGNITO_JS_DIR") or REPO / ".cache" / "js")
    if not (js_dir / "node_modules" / "amazon-cognito-identity-js").is_dir():
        pytest.fail(
            f"amazon-cognito-identity-js is not installed in {js_dir}: run scripts/test.sh, or "
            "`npm install --no-save amazon-cognito-identity-js@6` there and set GATEHOUSE_COGNITO_JS_DIR"
        )
    return js_dir / "node_modules"


def run_node(
    tmp_path: pathlib.Path,
    script: str,
    request: dict[str, Any],
    *,
    modules: Callable[[], pathlib.Path] = cognito_js_modules,
    name: str = "script.js",
    timeout: float = 60,
) -> dict[str, Any]:
    """Run ``script`` under node with ``request`` as its JSON argument and the packages of ``modules()``;
    the JSON it prints is the result. Skips the test where node is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/test.sh installs it)")
    node_path = modules()
    path = tmp_path / name
    path.write_text(script)
    out = subprocess.run(
        [node, str(path), json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NODE_PATH": str(node_path)},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def confirmed_user(idp: Any, pool_id: str, username: str, password: str, **attributes: str) -> None:
    """A user made by an admin (no invitation sent) with ``attributes`` and a permanent password."""
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
