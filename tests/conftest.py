from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.lambda_service import FakeLambda
from tests.fakes.oauth import FakeAmazon, FakeApple, FakeFacebook, FakeGoogle
from tests.support import GatehouseServer, MailServer, smtp_config

# Every `gatehouse serve` and CLI run the tests start is a new Python process that imports Gatehouse's modules.
# Where PYTHONDONTWRITEBYTECODE is set, none of them finds a compiled module and each compiles Gatehouse's source
# again: seconds of every server start. Their bytecode goes instead to a cache of its own outside the source tree
# (PYTHONPYCACHEPREFIX), which each process reads and the first one writes.
if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "gatehouse-test-pycache")


@pytest.fixture(scope="module")
def functions() -> Iterator[FakeLambda]:
    """A Lambda service (its Invoke API) for the module's trigger functions: ``functions.add(name, handler)``."""
    with FakeLambda() as fake:
        yield fake


@pytest.fixture(scope="module")
def sms_gateway() -> Iterator[Any]:
    """An SMS gateway (tests/e2e/test_delivery.py's SmsGateway) recording what Gatehouse's webhook sends it."""
    from tests.e2e.test_delivery import SmsGateway

    gateway = SmsGateway()
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    server = MailServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    """One Gatehouse per test module, delivering mail to the module's SMTP server."""
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(data_dir, config=smtp_config(mail))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def idp(gatehouse: GatehouseServer) -> Any:
    """boto3 cognito-idp client with the admin credentials."""
    return gatehouse.client()


@pytest.fixture(scope="module")
def public_idp(gatehouse: GatehouseServer) -> Any:
    """boto3 cognito-idp client that signs nothing, as an app in a browser or phone would be."""
    return gatehouse.client(signed=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (one browser per module; a fresh context per test)."""
    from tests.browser import launch_chromium

    with launch_chromium() as chromium:
        yield chromium


# --- Fake social upstreams (one per module; tests that need another set-up define their own) ----------------


@pytest.fixture(scope="module")
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as server:
        yield server


@pytest.fixture(scope="module")
def apple() -> Iterator[FakeApple]:
    with FakeApple() as server:
        yield server


@pytest.fixture(scope="module")
def facebook() -> Iterator[FakeFacebook]:
    with FakeFacebook() as server:
        yield server


@pytest.fixture(scope="module")
def amazon() -> Iterator[FakeAmazon]:
    with FakeAmazon() as server:
        yield server


# --- clients of the other AWS services Gatehouse speaks -------------------------------------------------------


@pytest.fixture(scope="module")
def ci(gatehouse: GatehouseServer) -> Any:
    """boto3 cognito-identity client with the admin credentials."""
    return gatehouse.client("cognito-identity")


@pytest.fixture(scope="module")
def public_ci(gatehouse: GatehouseServer) -> Any:
    """cognito-identity client that signs nothing (GetId, GetCredentialsForIdentity as an app sends them)."""
    return gatehouse.client("cognito-identity", signed=False)


@pytest.fixture(scope="module")
def iam(gatehouse: GatehouseServer) -> Any:
    return gatehouse.client("iam")


@pytest.fixture(scope="module")
def sts(gatehouse: GatehouseServer) -> Any:
    """The STS client an app uses for AssumeRoleWithWebIdentity: it signs nothing."""
    return gatehouse.client("sts", signed=False)
