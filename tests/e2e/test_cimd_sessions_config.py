"""CIMD policies and session tracking declared in the config file, applied at start by two workers at once and
made to follow the file on the next starts: a policy created with its fixed id, changed in place, deleted when
no longer declared (with any made through the API); the pool's and a client's session settings. The CIMD
document fetches an external client causes are counted in gatehouse_cimd_document_fetches_total by outcome."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.oauth_support import CALLBACK
from tests.e2e.test_cimd import DocumentServer, _make_tls
from tests.support import GatehouseServer

POOL = "us-east-1_CimdFile1"
APP = "cimdfileapp000000000001"
OTHER = "cimdfileother00000000001"


def config_for(docs_url: str, *, changed: bool = False) -> str:
    oauth = f"""        callback_urls: ["{CALLBACK}"]
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid, email]
        supported_identity_providers: [COGNITO]"""
    if not changed:
        sessions = "session_tracking: {enabled: true, max_token_sessions_per_user: 4}"
        minutes = 30
        policies = f"""      - id: partners
        name: partners
        client: {APP}
        url_patterns: ["{docs_url}/clients/*"]
        cache_duration: 7d
      - id: tools
        name: tools
        client: {APP}
        url_patterns: ["{docs_url}/tools/*"]"""
    else:
        sessions = "session_tracking: {enabled: true, max_token_sessions_per_user: 6}"
        minutes = 0
        policies = f"""      - id: partners
        name: partner apps
        client: {OTHER}
        url_patterns: ["{docs_url}/clients/*", "{docs_url}/partners/*/client.json"]
        cache_duration: 30 days"""
    return f"""version: 1
pools:
  - id: {POOL}
    name: cimd-file
    {sessions}
    clients:
      - id: {APP}
        name: app
{oauth}
        sso_session_max_minutes: {minutes}
      - id: {OTHER}
        name: other
{oauth}
    cimd_policies:
{policies}
"""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return _make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def docs(tls: tuple[Path, Path, Path]) -> Iterator[DocumentServer]:
    server = DocumentServer(tls[1], tls[2])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tls: tuple[Path, Path, Path], docs: DocumentServer
) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("cimd-config") / "data"
    # Two worker processes apply the file at once: a create that loses the race must not fail the start.
    gatehouse = GatehouseServer(
        data_dir,
        config=config_for(docs.url),
        workers=2,
        extra_env={"SSL_CERT_FILE": str(tls[0]), "SSL_CERT_DIR": None, "GATEHOUSE_CIMD_PRIVATE_ADDRESSES": "1"},
    )
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


def fetches(server: GatehouseServer) -> dict[str, float]:
    """gatehouse_cimd_document_fetches_total by outcome, summed over the workers."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gatehouse_cimd_document_fetches_total":
                found[sample.labels["outcome"]] = found.get(sample.labels["outcome"], 0.0) + sample.value
    return found


def authorize(server: GatehouseServer, client_id: str) -> requests.Response:
    query = {"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, "scope": "openid"}
    return requests.get(f"{server.url}/{POOL}/oauth2/authorize", params=query, allow_redirects=False, timeout=15)


def restart(server: GatehouseServer, config: str) -> Any:
    server.stop()
    assert server.config_path is not None
    server.config_path.write_text(config)
    server.start()
    return server.client()


def test_declared_policies_and_sessions_follow_the_file(server: GatehouseServer, docs: DocumentServer) -> None:
    idp = server.client()
    partners = idp.describe_cimd_policy(UserPoolId=POOL, CIMDPolicyId="partners")["CIMDPolicy"]
    assert (partners["PolicyName"], partners["ClientId"], partners["CacheDuration"]) == ("partners", APP, 7 * 86400)
    assert partners["URLPatterns"] == [f"{docs.url}/clients/*"]
    tools = idp.describe_cimd_policy(UserPoolId=POOL, CIMDPolicyId="tools")["CIMDPolicy"]
    assert tools["CacheDuration"] == 86400  # Cognito's default
    assert idp.get_user_pool_session_configuration(UserPoolId=POOL)["UserSessionTracking"] == "ENABLED"
    assert idp.get_user_pool_session_configuration(UserPoolId=POOL)["TokenSession"] == {"MaxPerUser": 4}
    client = idp.get_user_pool_client_session_configuration(UserPoolId=POOL, ClientId=APP)
    assert client["SSOSession"] == {"MaxValidityMinutes": 30}

    # An external client whose document the declared policy admits signs in through the hosted pages.
    before = fetches(server)
    good = docs.document("/clients/good")
    assert authorize(server, good).status_code in (200, 302)
    huge = docs.url + "/clients/huge"
    docs.serve("/clients/huge", {"client_id": huge, "redirect_uris": [CALLBACK], "pad": "x" * 6000})
    assert authorize(server, huge).status_code == 400
    docs.serve("/clients/gone", b"{}", status=404)
    assert authorize(server, docs.url + "/clients/gone").status_code == 400
    after = fetches(server)
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    assert {k: v for k, v in delta.items() if v} == {"fetched": 1, "refused_size": 1, "refused_status": 1}

    # A policy made through the API is not the file's: the next start deletes it. The same file writes nothing.
    made = idp.create_cimd_policy(UserPoolId=POOL, ClientId=OTHER, PolicyName="api", URLPatterns=[f"{docs.url}/api/*"])[
        "CIMDPolicy"
    ]
    idp = restart(server, config_for(docs.url))
    again = idp.describe_cimd_policy(UserPoolId=POOL, CIMDPolicyId="partners")["CIMDPolicy"]
    assert again == partners
    with pytest.raises(idp.exceptions.ResourceNotFoundException):
        idp.describe_cimd_policy(UserPoolId=POOL, CIMDPolicyId=made["CIMDPolicyId"])

    idp = restart(server, config_for(docs.url, changed=True))
    changed = idp.describe_cimd_policy(UserPoolId=POOL, CIMDPolicyId="partners")["CIMDPolicy"]
    assert changed["CreationDate"] == partners["CreationDate"]  # changed in place, not made again
    assert (changed["PolicyName"], changed["ClientId"], changed["CacheDuration"]) == (
        "partner apps",
        OTHER,
        30 * 86400,
    )
    assert changed["URLPatterns"] == [f"{docs.url}/clients/*", f"{docs.url}/partners/*/client.json"]
    with pytest.raises(idp.exceptions.ResourceNotFoundException):
        idp.describe_cimd_policy(UserPoolId=POOL, CIMDPolicyId="tools")
    listed = idp.list_cimd_policies(UserPoolId=POOL)["CIMDPolicies"]
    assert [p["CIMDPolicyId"] for p in listed] == ["partners"]
    assert idp.get_user_pool_session_configuration(UserPoolId=POOL)["TokenSession"] == {"MaxPerUser": 6}
    client = idp.get_user_pool_client_session_configuration(UserPoolId=POOL, ClientId=APP)
    assert client["SSOSession"] == {"MaxValidityMinutes": 0}
