"""The SAML connector keeps one pysaml2 client per ACS URL (Gatehouse's own and each pool domain's, as the
browser addressed it), and at most MAX_CLIENTS of them: Hosts naming a domain with ever other ports cannot grow
what a process holds, and an ACS whose client went first still signs in (its client is built again)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from providers.base import ConnectorContext
from providers.saml import MAX_CLIENTS, SAMLConnector
from tests.fakes.saml import FakeSamlIdP
from tests.providers.conftest import SP_ENTITY_ID, form_fields

FIRST_ACS = "https://sso.corp-login.test:1/saml2/idpresponse"


@pytest.fixture(scope="module")
def idp(sp_keys: tuple[str, str]) -> Iterator[FakeSamlIdP]:
    with FakeSamlIdP(sp_entity_id=SP_ENTITY_ID, acs_url=FIRST_ACS, sp_cert_pem=sp_keys[1]) as server:
        yield server


async def test_clients_per_acs_url_are_bounded(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    settings = {"MetadataFile": idp.metadata_xml(), "RequestSigningAlgorithm": "rsa-sha256"}
    connector = SAMLConnector("Corp", SAMLConnector.complete_details(settings), context)
    first = await connector.authn_request(relay_state="relay-first", acs_url=FIRST_ACS)
    for port in range(2, MAX_CLIENTS + 6):
        acs_url = f"https://sso.corp-login.test:{port}/saml2/idpresponse"
        await connector.authn_request(relay_state=f"relay-{port}", acs_url=acs_url)
        assert len(connector._clients) <= MAX_CLIENTS
    assert all(acs != FIRST_ACS for acs, _ in connector._clients)
    async with context.http.get(first.url) as response:
        form = form_fields(await response.text())
    assert idp.authn_requests[0]["acs"] == FIRST_ACS
    identity = await connector.complete(form["SAMLResponse"], expected_request_id=first.request_id, acs_url=FIRST_ACS)
    assert identity.subject == "ann@corp.example"
