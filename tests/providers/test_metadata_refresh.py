"""Upstream metadata fetched one request at a time per provider, and the signing-certificate rules for SAML
metadata (Cognito: not expired when configured; at most 4096 characters), against real fakes over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp import web

from providers.base import ConnectorContext, ProviderConfigError
from providers.oidc import OIDCConnector
from providers.saml import SAMLConnector, check_signing_certificates
from tests.e2e.test_provider_metadata import expired_cert_pem
from tests.fakes.certs import cert_body, key_and_cert
from tests.fakes.oauth import FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.providers.conftest import ACS_URL, SP_ENTITY_ID


class CountingOIDC(FakeOIDC):
    def __init__(self) -> None:
        super().__init__()
        self.jwks_fetches = 0
        self.discovery_fetches = 0

    async def discovery(self, request: web.Request) -> web.Response:
        self.discovery_fetches += 1
        await asyncio.sleep(0.2)
        return await super().discovery(request)

    async def jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        await asyncio.sleep(0.2)
        return await super().jwks(request)


class CountingSamlIdP(FakeSamlIdP):
    def __init__(self) -> None:
        super().__init__(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, sp_cert_pem=key_and_cert("sp")[1])
        self.metadata_fetches = 0

    async def metadata(self, request: web.Request) -> web.Response:
        self.metadata_fetches += 1
        await asyncio.sleep(0.2)
        return await super().metadata(request)


@pytest.fixture
def oidc() -> Iterator[CountingOIDC]:
    with CountingOIDC() as server:
        yield server


@pytest.fixture
def saml() -> Iterator[CountingSamlIdP]:
    with CountingSamlIdP() as server:
        yield server


async def test_concurrent_first_uses_discover_and_fetch_the_jwks_once(
    oidc: CountingOIDC, context: ConnectorContext
) -> None:
    details = OIDCConnector.complete_details(
        {
            "client_id": oidc.client_id,
            "client_secret": oidc.client_secret,
            "authorize_scopes": "openid",
            "oidc_issuer": oidc.issuer,
            "attributes_request_method": "GET",
        }
    )
    connector = OIDCConnector("Corp", details, context)
    await asyncio.gather(*(connector.prepare() for _ in range(10)))
    assert oidc.discovery_fetches == 1
    key_sets = await asyncio.gather(*(connector.keys(refresh=True) for _ in range(10)))
    assert oidc.jwks_fetches == 1
    assert all(keys is key_sets[0] for keys in key_sets)


async def test_concurrent_first_uses_fetch_saml_metadata_once(saml: CountingSamlIdP, context: ConnectorContext) -> None:
    details = SAMLConnector.complete_details({"MetadataURL": f"{saml.url}/metadata"})
    connector = SAMLConnector("Corp", details, context)
    documents = await asyncio.gather(*(connector.sp_metadata(acs_url=ACS_URL) for _ in range(10)))
    assert saml.metadata_fetches == 1
    assert len(set(documents)) == 1


def test_signing_certificate_rules() -> None:
    fake = FakeSamlIdP(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, sp_cert_pem=key_and_cert("sp")[1])
    good = fake.metadata_xml()
    check_signing_certificates(good, every=True)
    body = cert_body(fake.cert_pem)
    expired_body = cert_body(expired_cert_pem("old"))
    # An IdP rolling its key lists the new certificate beside the old, expired one: usable (a refresh takes
    # it), but not as configuration (Cognito: the signing certificate must not be expired).
    descriptor = good.split("<ns0:KeyDescriptor", 1)[1].split("</ns0:KeyDescriptor>", 1)[0]
    old_descriptor = "<ns0:KeyDescriptor" + descriptor.replace(body, expired_body) + "</ns0:KeyDescriptor>"
    both = good.replace("<ns0:KeyDescriptor", old_descriptor + "<ns0:KeyDescriptor", 1)
    assert both.count(expired_body) == 1 and both.count(body) == 1
    check_signing_certificates(both, every=False)
    with pytest.raises(ProviderConfigError, match="expired"):
        check_signing_certificates(both, every=True)
    only_expired = good.replace(body, expired_body)
    with pytest.raises(ProviderConfigError, match="expired"):
        check_signing_certificates(only_expired, every=True)
    with pytest.raises(ProviderConfigError, match="expired"):
        check_signing_certificates(only_expired, every=False)
    with pytest.raises(ProviderConfigError, match="4096"):
        check_signing_certificates(good.replace(body, "A" * 4097), every=True)
    with pytest.raises(ProviderConfigError, match=r"X\.509"):
        check_signing_certificates(good.replace(body, "AAAA"), every=True)
    with pytest.raises(ProviderConfigError, match="no signing certificate"):
        check_signing_certificates(good.replace("X509Certificate", "X509Nothing"), every=True)
