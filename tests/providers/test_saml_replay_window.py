"""The SAML connector remembers an assertion id against replay for as long as the assertion could still be
accepted: the bearer SubjectConfirmationData's NotOnOrAfter may outlast the Conditions' (SAML Profiles
§4.1.4.5: the SP must keep the assertion's ID until the NotOnOrAfter of the bearer confirmation)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gateway.storage.sqlite import SqliteStore
from providers.base import ConnectorContext
from providers.saml import SAMLConnector
from tests.fakes.saml import FakeSamlIdP
from tests.providers.conftest import ACS_URL, SP_ENTITY_ID


@pytest.fixture(scope="module")
def idp(sp_keys: tuple[str, str]) -> Iterator[FakeSamlIdP]:
    with FakeSamlIdP(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, sp_cert_pem=sp_keys[1]) as server:
        yield server


async def test_the_replay_marker_lasts_as_long_as_the_bearer_confirmation(
    idp: FakeSamlIdP, context: ConnectorContext, store: SqliteStore
) -> None:
    remembered: list[tuple[str, float]] = []

    async def mark_once(key: str, expires_at: float) -> bool:
        remembered.append((key, expires_at))
        return await store.mark_assertion_seen(key, expires_at)

    recording = ConnectorContext(
        http=context.http,
        executor=context.executor,
        mark_once=mark_once,
        sp_entity_id=context.sp_entity_id,
        sp_key_pem=context.sp_key_pem,
        sp_cert_pem=context.sp_cert_pem,
    )
    details = SAMLConnector.complete_details({"MetadataFile": idp.metadata_xml(), "IDPInit": "true"})
    connector = SAMLConnector("Corp", details, recording)
    response = idp.response(None, lifetime=120, bearer_lifetime=7200)
    identity = await connector.complete(response, expected_request_id=None, acs_url=ACS_URL)
    assert identity.subject == "ann@corp.example"
    ((_, expires_at),) = remembered
    assert expires_at >= time.time() + 7000
