"""Config files built to hurt the loader: alias bombs, self-referring aliases, deep nesting, huge files. Each is
refused quickly with one message, never a hang or a stack trace."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.config_file import MAX_CONFIG_BYTES, ConfigError, load_config


def billion_laughs(levels: int) -> str:
    lines = ["version: 1", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join([*lines, "pools: []", ""])


def refused(path: Path) -> str:
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert time.monotonic() - started < 5
    return str(caught.value)


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs(9))  # 10**9 values from 10 lines
    message = refused(path)
    assert "aliases" in message and "1000000" in message


def test_alias_bomb_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs(9))
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "aliases" in result.stderr and "Traceback" not in result.stderr


def test_modest_aliases_still_work(tmp_path: Path) -> None:
    # Anchors are a fair way to share settings; only the blow-up is refused.
    path = tmp_path / "ok.yaml"
    path.write_text(billion_laughs(3).replace("pools: []", "pools: []\nserver: {}"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert "a0" in str(caught.value)  # an unknown top-level key, reported as such: the loader got that far


def test_alias_that_contains_itself(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text("version: 1\npools: &p [*p]\n")
    assert "refers to a mapping or list that contains it" in refused(path)
    path.write_text("version: 1\nserver: &s {log: *s}\npools: []\n")
    assert "contains it" in refused(path)


def test_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("version: 1\npools: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in refused(path)


def test_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as file:
        file.write("version: 1\npools: []\n")
        file.write("# " + "x" * (MAX_CONFIG_BYTES) + "\n")
    assert f"at most {MAX_CONFIG_BYTES} bytes" in refused(path)


def test_empty_secret_is_named_as_such(tmp_path: Path) -> None:
    # An unset-but-defaulted ${VAR:-} must not start a server with an empty admin secret.
    path = tmp_path / "empty.yaml"
    path.write_text(
        "version: 1\npools: []\nserver:\n  admin:\n    access_key_id: AKIDEXAMPLE\n"
        "    secret_access_key: ${ADMIN_SECRET:-}\n"
    )
    assert (
        refused(path)
        == f"{path}: server.admin.secret_access_key: expected a secret that is not empty, got an empty one"
    )
