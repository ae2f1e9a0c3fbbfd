"""The config file's ``front_door:`` section (gateway/config_front_door.py): what a mistaken app is told, by the
key it names, when the file is loaded (``gatehouse config check`` and ``gatehouse serve`` alike)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config_file import ConfigError, load_config

POOL = """\
version: 1
server:
  public_url: https://auth.example.com
pools:
  - id: us-east-1_Front01
    name: front
    clients:
      - id: wikiclient00000000000001
        name: wiki
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid]
        callback_urls: ["https://wiki.example.com/_gatehouse/callback"]
      - id: implicitclient0000000001
        name: implicit
        allowed_oauth_flows: [implicit]
        allowed_oauth_scopes: [email]
        callback_urls: ["https://other.example.com/"]
front_door:
  apps:
"""
WIKI = "    - {name: wiki, url: %s, user_pool: us-east-1_Front01, client_id: wikiclient00000000000001}\n"


def problems(tmp_path: Path, apps: str) -> str:
    path = tmp_path / "gatehouse.yaml"
    path.write_text(POOL + apps)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    return str(caught.value)


def test_the_default_port_is_left_out_as_browsers_leave_it_out(tmp_path: Path) -> None:
    """https://wiki.example.com:443 is found by ``Host: wiki.example.com`` (RFC 9110 §4.2.2, §7.2)."""
    path = tmp_path / "gatehouse.yaml"
    path.write_text(POOL + WIKI % "https://WIKI.example.com:443/")
    config = load_config(path, environ={})
    assert config.front_door is not None
    app = config.front_door.apps[0].to_app()
    assert app.url == "https://wiki.example.com" and app.host == "wiki.example.com"
    assert app.callback_uri == "https://wiki.example.com/_gatehouse/callback"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://wiki.example.com:0", "front_door.apps[0].url: expected a port number from 1 to 65535"),
        ("https://wiki.example.com:99999", "front_door.apps[0].url: expected a port number from 1 to 65535"),
        ("https://wiki.example.com/wiki", "front_door.apps[0].url: expected an origin"),
        ("wiki.example.com", "front_door.apps[0].url: expected an http:// or https:// URL with a host"),
    ],
)
def test_a_url_that_is_not_an_origin(tmp_path: Path, url: str, message: str) -> None:
    assert message in problems(tmp_path, WIKI % url)


def test_an_upstream_with_a_port_out_of_range(tmp_path: Path) -> None:
    apps = WIKI.replace("}", ", upstream: 'http://127.0.0.1:70000'}") % "https://wiki.example.com"
    assert "front_door.apps[0].upstream: expected a port number from 1 to 65535" in problems(tmp_path, apps)


def test_duplicates_clients_and_hosts_are_named_by_their_key(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        WIKI % "https://wiki.example.com"
        + WIKI % "https://wiki.example.com:443"
        + "    - {name: other, url: https://auth.example.com, user_pool: us-east-1_Front01,"
        " client_id: implicitclient0000000001, colour: blue}\n",
    )
    assert "front_door.apps[2].colour: unknown key; expected one of name, url, user_pool" in text
    # Checks across apps once each app is well formed (https://wiki.example.com:443 is the same host).
    text = problems(tmp_path, WIKI % "https://wiki.example.com" + WIKI % "https://wiki.example.com:443")
    assert "front_door.apps[1].name: expected a value not already given by front_door.apps[0]" in text
    assert "front_door.apps[1].url: expected a value not already given by front_door.apps[0]" in text


def test_a_client_not_set_up_for_the_front_door(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        "    - {name: other, url: https://other.example.com, user_pool: us-east-1_Front01,"
        " client_id: implicitclient0000000001}\n"
        "    - {name: nope, url: https://nope.example.com, user_pool: us-east-1_Front01, client_id: nope}\n",
    )
    assert (
        "front_door.apps[0].client_id: expected a client with allowed_oauth_flows: [code], the openid scope, "
        "the callback URL https://other.example.com/_gatehouse/callback"
    ) in text
    assert "front_door.apps[1].client_id: expected a client of pool us-east-1_Front01" in text


def test_an_upstream_on_gatehouse_own_host(tmp_path: Path) -> None:
    apps = WIKI.replace("}", ", upstream: 'http://127.0.0.1:8080'}") % "https://auth.example.com:443"
    assert "front_door.apps[0].url: expected a host other than server.public_url's" in problems(tmp_path, apps)


def test_an_upstream_on_gatehouse_own_host_named_with_its_default_port(tmp_path: Path) -> None:
    """server.public_url with :443 and a path names the same host as the app's url without them."""
    path = tmp_path / "gatehouse.yaml"
    text = POOL.replace("public_url: https://auth.example.com", "public_url: https://AUTH.example.com:443/idp")
    path.write_text(text + WIKI.replace("}", ", upstream: 'http://127.0.0.1:8080'}") % "https://auth.example.com")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert "front_door.apps[0].url: expected a host other than server.public_url's" in str(caught.value)


def test_config_check_names_the_key_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "gatehouse.yaml"
    path.write_text(POOL + WIKI % "https://wiki.example.com:99999")
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "config", "check", str(path)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0
    assert "front_door.apps[0].url: expected a port number from 1 to 65535" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("hooks/", "expected a path starting with /"),
        ("/hooks/%2e%2e/", "expected printable ASCII without spaces, %, ?, #, ;"),
        ("/a b", "expected printable ASCII without spaces"),
        ("/hooks;x/", "expected printable ASCII without spaces"),
        ("/hooks/../admin", "a path without . or .. segments"),
        ("/hooks/.../", "a path without . or .. segments"),
        ("/", "'/' would make every path public"),
        ("/_gatehouse/callback", "the front door's own endpoints are under /_gatehouse/"),
    ],
)
def test_a_public_path_that_could_be_read_two_ways(tmp_path: Path, entry: str, message: str) -> None:
    apps = (WIKI % "https://wiki.example.com").replace("}", f", public_paths: [{entry!r}]}}")
    text = problems(tmp_path, apps)
    assert f"front_door.apps[0].public_paths: {entry!r}" in text and message in text


def test_bearer_clients_are_client_ids(tmp_path: Path) -> None:
    apps = (WIKI % "https://wiki.example.com").replace("}", ", bearer_clients: ['ok_client+1', 'not a client']}")
    text = problems(tmp_path, apps)
    assert "front_door.apps[0].bearer_clients: 'not a client': expected an app client id" in text
    assert "'ok_client+1': expected" not in text


def test_serve_refuses_an_upstream_on_the_host_of_its_own_pages(tmp_path: Path) -> None:
    """Without server.public_url, Gatehouse's pages are on its listen address: an app proxied there would take the
    hosted sign-in page too, and every sign-in would loop back to itself. `gatehouse serve` says so and stops."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path / "gatehouse.yaml"
    apps = WIKI.replace("}", ", upstream: 'http://127.0.0.1:8080'}") % f"http://127.0.0.1:{port}"
    path.write_text("version: 1\nfront_door:\n  apps:\n" + apps)  # the pool and client: made through the API
    load_config(path, environ={})  # the file alone names no address of Gatehouse's to compare with
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path), "--port", str(port),
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        f"gatehouse serve: front_door app wiki: its url http://127.0.0.1:{port} is the host of Gatehouse's own "
        f"pages (http://127.0.0.1:{port})"
    ) in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made
