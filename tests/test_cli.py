"""The ``gatehouse`` command's options: a wrong ``--port``, ``--workers`` or ``--public-url`` is one line on
stderr and exit status 1 (README, "serve checks its options ..."), as the same value in the config file is; and
``keys rotate`` offers only the options it uses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``gatehouse ARGS`` (``env``: further environment variables); a serve that would start is cut off by the
    timeout (a test failure)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True, text=True, timeout=20, check=False, cwd=cwd, env={**os.environ, **(env or {})},
    )  # fmt: skip


def assert_one_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--workers", "0", "expected 1 to 256, got 0"),
        ("--workers", "257", "expected 1 to 256, got 257"),
        ("--workers", "-3", "expected 1 to 256, got -3"),
        ("--workers", "two", "expected a whole number from 1 to 256, got 'two'"),
        ("--port", "70000", "expected 0 to 65535, got 70000"),
        ("--port", "-1", "expected 0 to 65535, got -1"),
        ("--port", "http", "expected a whole number from 0 to 65535, got 'http'"),
        ("--port", "\u0663", "expected a whole number from 0 to 65535, got '\u0663'"),  # ARABIC-INDIC DIGIT THREE
        ("--port", "80_80", "expected a whole number from 0 to 65535, got '80_80'"),
        ("--workers", " 2", "expected a whole number from 1 to 256, got ' 2'"),
        ("--public-url", "http://[::1", "expected a host name, an IPv4 address or an IPv6 address in brackets"),
        ("--public-url", "http://[example.com]", "expected a host name, an IPv4 address or an IPv6 address"),
        ("--public-url", "notaurl", "expected an http:// or https:// URL"),
        ("--public-url", "ftp://example.com", "expected an http:// or https:// URL"),
        ("--public-url", "http://x.example/?q=1", "expected no query (?) or fragment (#)"),
        ("--public-url", "http://x.example/#top", "expected no query (?) or fragment (#)"),
        ("--public-url", "http://u:p@x.example", "expected no user name or password"),
    ],
)
def test_a_wrong_option_value_is_one_line_and_exit_status_1(
    tmp_path: Path, option: str, value: str, expected: str
) -> None:
    data = tmp_path / "data"
    port = [] if option == "--port" else ["--port", "9"]  # a fixed port: --workers above 1 needs one
    line = assert_one_line(run_cli("serve", "--data-dir", str(data), *port, option, value, cwd=tmp_path), expected)
    assert line.startswith(f"gatehouse serve: {option}: "), line
    assert not data.exists()  # refused before anything is made


@pytest.mark.parametrize(
    ("setting", "option", "value"),
    [("workers", "--workers", "0"), ("port", "--port", "70000"), ("public_url", "--public-url", "notaurl")],
)
def test_an_option_is_refused_as_the_same_value_in_the_config_file_is(
    tmp_path: Path, setting: str, option: str, value: str
) -> None:
    config = tmp_path / "gatehouse.yaml"
    config.write_text(f"version: 1\nserver:\n  {setting}: {value}\npools: []\n")
    from_file = run_cli("serve", "--config", str(config), "--data-dir", str(tmp_path / "a"), cwd=tmp_path)
    assert_one_line(from_file, setting)
    from_option = run_cli("serve", "--data-dir", str(tmp_path / "b"), option, value, cwd=tmp_path)
    assert_one_line(from_option, option)


def test_keys_rotate_offers_only_the_options_it_uses(tmp_path: Path) -> None:
    result = run_cli("keys", "rotate", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "listen" not in result.stdout
    for option in ("--host", "--port", "--public-url", "--workers"):
        assert option not in result.stdout, result.stdout
    for option in ("--config PATH", "--data-dir DIR", "--now", "--retire-old", "POOL_ID"):
        assert option in result.stdout, result.stdout


def test_config_check_help_matches_the_readme_synopsis(tmp_path: Path) -> None:
    result = run_cli("config", "check", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert " ".join(result.stdout.split("\n\n")[0].split()) == "usage: gatehouse config check [-h] FILE"
    assert "FILE        the YAML config file to validate" in result.stdout


def test_serve_help_matches_the_readme_synopsis(tmp_path: Path) -> None:
    result = run_cli("serve", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    usage = " ".join(result.stdout.split("\n\n")[0].split())
    assert usage == (
        "usage: gatehouse serve [-h] [--config PATH] [--host HOST] [--port PORT] [--data-dir DIR] "
        "[--public-url URL] [--workers N]"
    )


def test_a_data_dir_whose_change_stamps_cannot_be_mapped_is_one_line(tmp_path: Path) -> None:
    """Every worker maps ``gatehouse.db-stamps`` beside the database once the database has opened; a data dir
    where it cannot (here a directory stands in its place; a read-only file system left with a crashed server's
    WAL is the same) is refused before serving, not a traceback and a process that never exits."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "gatehouse.db-stamps").mkdir()
    line = assert_one_line(
        run_cli("serve", "--data-dir", str(data), "--port", "0", cwd=tmp_path), "cannot use data dir"
    )
    assert "Is a directory" in line, line


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GATEHOUSE_METADATA_REFRESH_SECONDS", "6h"),
        ("GATEHOUSE_METADATA_RETRY_SECONDS", "five"),
        ("GATEHOUSE_JWKS_RETRY_SECONDS", "1s"),
        ("GATEHOUSE_METADATA_REFRESH_SECONDS", "-60"),
        ("GATEHOUSE_JWKS_RETRY_SECONDS", "nan"),
    ],
)
def test_a_wrong_identity_provider_timing_is_one_line_and_exit_status_1(tmp_path: Path, name: str, value: str) -> None:
    """The identity providers' timings are read when their modules are imported: a value that is not a number
    was a traceback before any option was looked at; one below 0 or nan was taken, and metadata never
    refreshed (or was fetched again on every sign-in)."""
    data = tmp_path / "data"
    result = run_cli("serve", "--data-dir", str(data), "--port", "0", cwd=tmp_path, env={name: value})
    line = assert_one_line(result, f"gatehouse serve: {name}: expected a number of seconds", repr(value))
    assert "Traceback" not in line
    assert not data.exists()


def unprivileged(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``gatehouse ARGS`` as a process that file permissions hold for: as root, without its capabilities
    (util-linux's setpriv), which otherwise read and write any file whatever its mode."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root reads any file, and setpriv is not installed to run without that power")
        prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "gateway.cli", *args],
        capture_output=True, text=True, timeout=20, check=False, cwd=cwd,
    )  # fmt: skip


def test_a_metrics_folder_serve_may_not_read_is_one_line(tmp_path: Path) -> None:
    """``--workers`` above 1 clears the metrics folders of servers no longer running: one it may not list (made by
    another user, or a root shell) was a traceback."""
    data = tmp_path / "data"
    (data / "prometheus").mkdir(parents=True, mode=0o700)
    (data / "prometheus").chmod(0)
    try:
        port = str(free_port())  # above 1023: a process without its capabilities may not listen below
        result = unprivileged("serve", "--data-dir", str(data), "--port", port, "--workers", "2", cwd=tmp_path)
    finally:
        (data / "prometheus").chmod(0o700)
    line = assert_one_line(result, f"gatehouse serve: cannot use data dir {data}: ", "Permission denied")
    assert str(data / "prometheus") in line, line


def test_a_secret_key_serve_may_not_read_is_named(tmp_path: Path) -> None:
    """The data dir holds several files: the one that could not be read is named."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    key = data / "secret.key"
    key.write_text("00" * 32)
    key.chmod(0)
    line = assert_one_line(unprivileged("serve", "--data-dir", str(data), "--port", "0", cwd=tmp_path))
    assert line == f"gatehouse serve: cannot use data dir {data}: {key}: Permission denied", line
