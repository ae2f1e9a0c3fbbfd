"""Blocking calls stay off the event loop, proven: the federated callback paths (OIDC with discovery, JWKS and
an RS256 ID token; SAML with a signed AuthnRequest, metadata and an encrypted, signed assertion through
xmlsec1, and SAML single logout) run against a Gatehouse whose loop is in asyncio debug mode with a 100 ms
slow-callback threshold (``GATEHOUSE_SLOW_CALLBACK_SECONDS``). asyncio logs ``Executing <Handle ...> took N
seconds`` for any callback that held the loop longer; the test fails if the server's log shows one during the
flows.

A positive control shows the detector works: a handler that blocks with ``time.sleep`` on a loop set up by the
same watch is reported.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.loop_watch import ENV, loop_watch_ctx
from tests.e2e.federation_support import Flow, corp_details, saml_idp_for, verified_id_token
from tests.e2e.oauth_support import LOGOUT, query_of
from tests.fakes.oauth import FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.support import GatehouseServer

# Wall-clock time, on a shared machine: a step of a few tens of milliseconds (SAML's XML work, a garbage
# collection) plus the moment the OS gives the core to another process once reached 59 ms in a full-suite run.
# The watch is for what holds the loop noticeably (a synchronous upstream fetch, a sleep, xmlsec1 runs done on
# the loop); below its threshold it cannot tell a short blocking call from CPU work anyway.
THRESHOLD = "0.1"
SLOW = re.compile(r"Executing .*? took \d+\.\d+ seconds")


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(
        tmp_path_factory.mktemp("loop") / "data", extra_env={"PYTHONASYNCIODEBUG": "1", ENV: THRESHOLD}
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        server.user = {"sub": "emp-7", "email": "emp7@corp.example"}
        yield server


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="loop-watch")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[FakeSamlIdP]:
    with saml_idp_for(gatehouse, idp, pool_id, encrypt=True) as server:
        yield server


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, corp: FakeOIDC, saml_idp: FakeSamlIdP) -> str:
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC",
        ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="CorpSAML", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256",
                         "EncryptedResponses": "true", "IDPSignout": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    return str(
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email"], CallbackURLs=["https://app.example.com/callback"],
            LogoutURLs=[LOGOUT], SupportedIdentityProviders=["Corp", "CorpSAML"],
        )["UserPoolClient"]["ClientId"]
    )  # fmt: skip


def log_text(server: GatehouseServer) -> str:
    return server.log_text()


def test_the_watch_is_on(gatehouse: GatehouseServer) -> None:
    assert "loop_watch.enabled" in log_text(gatehouse)


def test_oidc_and_saml_flows_never_hold_the_loop(gatehouse: GatehouseServer, pool_id: str, client_id: str) -> None:
    start = len(log_text(gatehouse))
    names = {"Corp": "Corp_emp-7", "CorpSAML": "CorpSAML_ann@corp.example"}
    for _ in range(3):  # first sign-ins (discovery, metadata, user creation) and repeat ones
        for provider, username in names.items():
            flow = Flow(gatehouse, client_id)
            response = flow.run(flow.authorize_url(identity_provider=provider, scope="openid email"))
            assert response.status_code == 303, response.text
            tokens = flow.tokens(query_of(response.headers["Location"])["code"])
            claims = verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"])
            assert claims["cognito:username"] == username
            if provider == "CorpSAML":
                # Single logout too: a signed LogoutRequest out, the IdP's signed LogoutResponse verified.
                query = urlencode({"client_id": client_id, "logout_uri": LOGOUT})
                to_idp = flow.http.get(f"{gatehouse.url}/logout?{query}", allow_redirects=False)
                back = flow.http.get(to_idp.headers["Location"], allow_redirects=False)
                done = flow.http.get(back.headers["Location"], allow_redirects=False)
                assert done.headers["Location"] == LOGOUT
    during = log_text(gatehouse)[start:]
    assert not SLOW.findall(during), "\n".join(SLOW.findall(during))


async def test_the_watch_reports_a_blocking_handler(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Positive control: the same watch flags a handler that sleeps on the loop for 0.2 s."""
    monkeypatch.setenv(ENV, THRESHOLD)

    async def blocking(request: web.Request) -> web.Response:
        time.sleep(0.2)  # noqa: ASYNC251 -- deliberately on the loop
        return web.Response(text="done")

    app = web.Application()
    app.cleanup_ctx.append(loop_watch_ctx)
    app.router.add_get("/", blocking)
    loop = asyncio.get_running_loop()
    debug, duration = loop.get_debug(), loop.slow_callback_duration
    try:
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            async with TestClient(TestServer(app)) as client:
                assert loop.get_debug() and loop.slow_callback_duration == float(THRESHOLD)
                assert (await client.get("/")).status == 200
                await asyncio.sleep(0)
        assert any(SLOW.search(record.getMessage()) for record in caplog.records)
    finally:
        loop.set_debug(debug)
        loop.slow_callback_duration = duration


def test_a_bad_threshold_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.loop_watch import threshold_from_env

    for bad in ("0", "-1", "600"):
        monkeypatch.setenv(ENV, bad)
        with pytest.raises(ValueError):
            threshold_from_env()
    monkeypatch.setenv(ENV, "abc")
    with pytest.raises(ValueError):
        threshold_from_env()
    monkeypatch.delenv(ENV)
    assert threshold_from_env() is None
