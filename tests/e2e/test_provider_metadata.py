"""Upstream metadata that changes: SAML MetadataURL refresh, expired IdP certificates, OIDC JWKS and discovery.

End to end against a real ``gatehouse serve`` and real upstreams (pysaml2's IdP, the fake OpenID provider), with
the refresh intervals shortened through the environment:

* An IdP that rolls its signing certificate through its metadata keeps signing users in without a restart: a
  Response that does not verify makes Gatehouse read MetadataURL again (Cognito refreshes URL metadata
  automatically). Forged Responses cannot make it hammer the IdP: at most one read per retry interval, however
  many arrive at once. A read that fails, or returns unparsable metadata or metadata with only expired
  certificates, keeps the old metadata. Metadata is also read again when older than the refresh interval.
* CreateIdentityProvider / UpdateIdentityProvider refuse metadata whose signing certificate has expired
  (Cognito: "the signing certificate in the SAML provider metadata must not be expired"), and change nothing.
* OIDC: concurrent sign-ins with a rotated ``kid`` fetch the JWKS once; unknown keys re-read it at most once per
  interval; a moved ``jwks_uri`` is picked up from discovery; a failing discovery keeps the known endpoints.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from botocore.exceptions import ClientError
from jwcrypto import jwk, jwt
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.server import Server
from saml2.time_util import instant

from tests.e2e.federation_support import corp_details, federated_sign_in, usernames
from tests.e2e.oauth_support import CALLBACK
from tests.fakes.certs import cert_body, key_and_cert
from tests.fakes.oauth import FakeOIDC
from tests.fakes.saml import XMLSEC, FakeSamlIdP, sp_metadata
from tests.support import GatehouseServer

REFRESH_SECONDS = 6.0
RETRY_SECONDS = 2.0
JWKS_RETRY_SECONDS = 1.0


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(
        data_dir,
        extra_env={
            "GATEHOUSE_METADATA_REFRESH_SECONDS": str(REFRESH_SECONDS),
            "GATEHOUSE_METADATA_RETRY_SECONDS": str(RETRY_SECONDS),
            "GATEHOUSE_JWKS_RETRY_SECONDS": str(JWKS_RETRY_SECONDS),
        },
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="provider-metadata")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK], SupportedIdentityProviders=["COGNITO"],
    )  # fmt: skip
    return str(client["UserPoolClient"]["ClientId"])


def support(idp: Any, pool_id: str, client_id: str, name: str) -> None:
    """Add a provider to the client's SupportedIdentityProviders."""
    current = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    idp.update_user_pool_client(
        UserPoolId=pool_id, ClientId=client_id, AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=[*current["SupportedIdentityProviders"], name],
    )  # fmt: skip


def at_once(count: int, action: Callable[[], dict[str, str]]) -> list[dict[str, str]]:
    """``action`` from ``count`` threads released together."""
    barrier = threading.Barrier(count)
    results: list[dict[str, str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(action())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def expired_cert_pem(common_name: str) -> str:
    return key_and_cert(common_name, valid_from=datetime.timedelta(days=-400), valid_until=datetime.timedelta(days=-1))[
        1
    ]


# --- SAML ------------------------------------------------------------------------------------------------------


class RollingSamlIdP(FakeSamlIdP):
    """pysaml2's IdP that can roll its signing key (and publish it in its metadata), have its metadata URL fail
    or serve junk, and sign Responses with a key that is not in its metadata (a forger's)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata_fetches = 0
        # "ok", "error" (HTTP 500), "garbage" (not XML), "expired" (only an expired signing certificate),
        # "stale" (validUntil has passed)
        self.metadata_mode = "ok"
        self.valid_for: float | None = None  # validUntil this many seconds from each fetch
        self.forging = False
        self.forger = self.server_with(*key_and_cert("forger"))

    def server_with(self, key_pem: str, cert_pem: str) -> Server:
        """An IdP Server like FakeSamlIdP's, signing with this key pair."""
        directory = tempfile.mkdtemp(prefix="rolling-idp-")
        for name, text in (("idp.key", key_pem), ("idp.crt", cert_pem)):
            with open(os.path.join(directory, name), "w") as handle:
                handle.write(text)
        config = IdPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": XMLSEC,
                "key_file": os.path.join(directory, "idp.key"),
                "cert_file": os.path.join(directory, "idp.crt"),
                "metadata": {"inline": [sp_metadata(self.sp_entity_id, self.acs_url, self.sp_cert_pem)]},
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                (f"{self.url}/sso/redirect", BINDING_HTTP_REDIRECT),
                                (f"{self.url}/sso/post", BINDING_HTTP_POST),
                            ],
                            "single_logout_service": [(f"{self.url}/slo", BINDING_HTTP_REDIRECT)],
                        },
                        "want_authn_requests_signed": True,
                        "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": "unspecified"}},
                    }
                },
                "allow_unknown_attributes": True,
            }
        )
        return Server(config=config)

    def roll(self) -> None:
        """A new signing key pair, published in the metadata from now on (the old one is dropped)."""
        self.key_pem, self.cert_pem = key_and_cert("fake-saml-idp-rolled")
        self.server = self.server_with(self.key_pem, self.cert_pem)

    async def metadata(self, request: web.Request) -> web.Response:
        self.metadata_fetches += 1
        if self.metadata_mode == "error":
            return web.Response(status=500, text="down for maintenance")
        if self.metadata_mode == "garbage":
            return web.Response(text="<html><body>Sign in</body>", content_type="text/html")
        text = self.metadata_xml()
        if self.metadata_mode == "expired":
            text = text.replace(cert_body(self.cert_pem), cert_body(expired_cert_pem("expired")))
        valid_for = -60 if self.metadata_mode == "stale" else self.valid_for
        if valid_for is not None:
            until = instant(time_stamp=int(time.time() + valid_for))
            text = text.replace(" entityID=", f' validUntil="{until}" entityID=', 1)
        return web.Response(text=text, content_type="application/samlmetadata+xml")

    def response(self, in_response_to: str | None, **options: Any) -> str:
        if not self.forging:
            return super().response(in_response_to, **options)
        genuine, self.server = self.server, self.forger
        try:
            return super().response(in_response_to, **options)
        finally:
            self.server = genuine


@pytest.fixture()
def rolling(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[RollingSamlIdP]:
    certificate = idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"]
    with RollingSamlIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{pool_id}",
        acs_url=f"{gatehouse.url}/saml2/idpresponse",
        sp_cert_pem=f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n",
    ) as server:
        yield server


def saml_provider(idp: Any, pool_id: str, client_id: str, name: str, fake: FakeSamlIdP) -> None:
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName=name, ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{fake.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    support(idp, pool_id, client_id, name)


def test_a_rolled_signing_certificate_is_picked_up_without_a_restart(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rolling: RollingSamlIdP
) -> None:
    saml_provider(idp, pool_id, client_id, "Rolling", rolling)
    rolling.user["name_id"] = "roll-1@corp.example"
    assert "code" in federated_sign_in(gatehouse, client_id, "Rolling")
    assert rolling.metadata_fetches == 1
    rolling.roll()
    time.sleep(RETRY_SECONDS + 0.2)
    answer = federated_sign_in(gatehouse, client_id, "Rolling")
    assert "code" in answer, answer
    assert rolling.metadata_fetches == 2
    # The old key is gone with the old metadata: a Response it signs is refused now.
    rolling.forger = rolling.server_with(*key_and_cert("old-key-again"))
    rolling.forging = True
    assert "code" not in federated_sign_in(gatehouse, client_id, "Rolling")


def test_forged_responses_do_not_make_gatehouse_hammer_the_idp(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rolling: RollingSamlIdP
) -> None:
    saml_provider(idp, pool_id, client_id, "Forged", rolling)
    rolling.user["name_id"] = "genuine-1@corp.example"
    assert "code" in federated_sign_in(gatehouse, client_id, "Forged")
    time.sleep(RETRY_SECONDS + 0.2)
    before_users, before_fetches = usernames(idp, pool_id), rolling.metadata_fetches
    rolling.forging = True
    rolling.user["name_id"] = "forged-1@corp.example"
    started = time.monotonic()
    answers = at_once(6, lambda: federated_sign_in(gatehouse, client_id, "Forged"))
    took = time.monotonic() - started
    assert all("code" not in answer and answer.get("error") for answer in answers), answers
    # One read for the whole burst (two if the burst outlasted the retry interval), never one per Response.
    assert 1 <= rolling.metadata_fetches - before_fetches <= 1 + int(took // RETRY_SECONDS)
    assert usernames(idp, pool_id) == before_users
    # And the genuine IdP still signs users in.
    rolling.forging = False
    rolling.user["name_id"] = "genuine-2@corp.example"
    assert "code" in federated_sign_in(gatehouse, client_id, "Forged")


@pytest.mark.parametrize("mode", ["garbage", "error", "expired", "stale"])
def test_a_failed_refresh_keeps_the_old_metadata(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rolling: RollingSamlIdP, mode: str
) -> None:
    name = f"Kept{mode.capitalize()}"
    saml_provider(idp, pool_id, client_id, name, rolling)
    rolling.user["name_id"] = f"kept-{mode}@corp.example"
    assert "code" in federated_sign_in(gatehouse, client_id, name)
    rolling.metadata_mode = mode
    time.sleep(RETRY_SECONDS + 0.2)
    rolling.forging = True
    before = rolling.metadata_fetches
    assert "code" not in federated_sign_in(gatehouse, client_id, name)
    assert rolling.metadata_fetches == before + 1  # it was read, and refused
    rolling.forging = False
    answer = federated_sign_in(gatehouse, client_id, name)
    assert "code" in answer, answer
    assert rolling.metadata_fetches == before + 1


def test_metadata_is_read_again_when_it_is_old(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rolling: RollingSamlIdP
) -> None:
    saml_provider(idp, pool_id, client_id, "Periodic", rolling)
    rolling.user["name_id"] = "periodic@corp.example"
    assert "code" in federated_sign_in(gatehouse, client_id, "Periodic")
    assert "code" in federated_sign_in(gatehouse, client_id, "Periodic")
    assert rolling.metadata_fetches == 1
    time.sleep(REFRESH_SECONDS + 0.5)
    assert "code" in federated_sign_in(gatehouse, client_id, "Periodic")
    assert rolling.metadata_fetches == 2


def test_metadata_is_read_again_before_its_valid_until(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rolling: RollingSamlIdP
) -> None:
    """SAML Metadata §2.3.1: metadata is not to be used after its validUntil; Cognito refreshes URL metadata
    "before the metadata expires" when that comes before its regular interval."""
    rolling.valid_for = 3.0
    saml_provider(idp, pool_id, client_id, "ValidUntil", rolling)
    rolling.user["name_id"] = "valid-until@corp.example"
    assert "code" in federated_sign_in(gatehouse, client_id, "ValidUntil")
    assert rolling.metadata_fetches == 1
    time.sleep(3.3)  # past validUntil, well before the regular refresh interval
    assert "code" in federated_sign_in(gatehouse, client_id, "ValidUntil")
    assert rolling.metadata_fetches == 2


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_an_expired_signing_certificate_is_refused_at_create_and_update(
    gatehouse: GatehouseServer, idp: Any, pool_id: str
) -> None:
    sp_cert = key_and_cert("sp")[1]
    fake = FakeSamlIdP(sp_entity_id="urn:sp", acs_url=f"{gatehouse.url}/saml2/idpresponse", sp_cert_pem=sp_cert)
    good = fake.metadata_xml()
    expired = good.replace(cert_body(fake.cert_pem), cert_body(expired_cert_pem("expired-idp")))
    assert expired != good
    with pytest.raises(ClientError) as exc:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Expired", ProviderType="SAML", ProviderDetails={"MetadataFile": expired}
        )
    assert error_of(exc) == ("InvalidParameterException", 400)
    assert "expired" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Expired")
    assert error_of(missing)[0] == "ResourceNotFoundException"

    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Valid", ProviderType="SAML", ProviderDetails={"MetadataFile": good}
    )
    with pytest.raises(ClientError) as exc:
        idp.update_identity_provider(
            UserPoolId=pool_id, ProviderName="Valid", ProviderDetails={"MetadataFile": expired}
        )
    assert error_of(exc) == ("InvalidParameterException", 400)
    stored = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Valid")["IdentityProvider"]
    assert stored["ProviderDetails"]["MetadataFile"] == good

    # A signing certificate longer than Cognito's 4096 characters is refused too.
    huge = good.replace(cert_body(fake.cert_pem), "A" * 4100)
    with pytest.raises(ClientError) as exc:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Huge", ProviderType="SAML", ProviderDetails={"MetadataFile": huge}
        )
    assert error_of(exc) == ("InvalidParameterException", 400)


# --- OIDC ------------------------------------------------------------------------------------------------------


class RotatingOIDC(FakeOIDC):
    """An OpenID provider whose JWKS answers slowly (so concurrent fetches overlap), whose keys rotate, whose
    jwks_uri can move, and whose discovery document can fail. Counts what it is asked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        # None, or how discovery fails: "error" (HTTP 503), "issuer" (names another issuer), "junk" (not JSON)
        self.discovery_fails: str | None = None
        self.jwks_path_now = "/jwks"
        self.moved_keys: list[jwk.JWK] = []
        self.signing_key: jwk.JWK | None = None  # signs ID tokens when set (a key the JWKS may not hold)

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/jwks2", self.jwks2)

    async def discovery(self, request: web.Request) -> web.Response:
        self.discovery_fetches += 1
        if self.discovery_fails == "error":
            return web.Response(status=503, text="unavailable")
        if self.discovery_fails == "junk":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        document = json.loads((await super().discovery(request)).text or "{}")
        document["jwks_uri"] = self.url + self.jwks_path_now
        if self.discovery_fails == "issuer":
            document["issuer"] = "https://evil.example"
            document["jwks_uri"] = "https://evil.example/jwks"
        return web.json_response(document)

    async def jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        await asyncio.sleep(0.5)
        return await super().jwks(request)

    async def jwks2(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        return web.json_response({"keys": [json.loads(k.export_public()) for k in self.moved_keys]})

    def sign(self, claims: dict[str, Any]) -> str:
        if self.signing_key is None:
            return super().sign(claims)
        token = jwt.JWT(header={"alg": "RS256", "kid": self.signing_key.kid}, claims=claims)
        token.make_signed_token(self.signing_key)
        return str(token.serialize())


@pytest.fixture()
def rotating() -> Iterator[RotatingOIDC]:
    with RotatingOIDC() as server:
        yield server


def oidc_provider(idp: Any, pool_id: str, client_id: str, name: str, fake: FakeOIDC) -> None:
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName=name, ProviderType="OIDC", ProviderDetails=corp_details(fake),
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    support(idp, pool_id, client_id, name)


def test_concurrent_sign_ins_with_a_rotated_kid_fetch_the_jwks_once(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rotating: RotatingOIDC
) -> None:
    oidc_provider(idp, pool_id, client_id, "Rotating", rotating)
    rotating.user = {**rotating.user, "sub": "rot-1"}
    assert "code" in federated_sign_in(gatehouse, client_id, "Rotating")
    assert rotating.jwks_fetches == 1
    rotating.key = jwk.JWK.generate(kty="RSA", size=2048, kid="fake-key-2")
    time.sleep(JWKS_RETRY_SECONDS + 0.2)
    answers = at_once(6, lambda: federated_sign_in(gatehouse, client_id, "Rotating"))
    assert all("code" in answer for answer in answers), answers
    assert rotating.jwks_fetches == 2


def test_unknown_keys_refetch_the_jwks_at_most_once_per_interval(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rotating: RotatingOIDC
) -> None:
    oidc_provider(idp, pool_id, client_id, "Unknown", rotating)
    rotating.user = {**rotating.user, "sub": "unknown-1"}
    assert "code" in federated_sign_in(gatehouse, client_id, "Unknown")
    time.sleep(JWKS_RETRY_SECONDS + 0.2)
    before_users, before = usernames(idp, pool_id), rotating.jwks_fetches
    rotating.signing_key = jwk.JWK.generate(kty="RSA", size=2048, kid="nobody-knows")
    rotating.user = {**rotating.user, "sub": "unknown-2"}
    started = time.monotonic()
    answers = [federated_sign_in(gatehouse, client_id, "Unknown") for _ in range(4)]
    took = time.monotonic() - started
    assert all("code" not in answer and answer.get("error") for answer in answers), answers
    assert 1 <= rotating.jwks_fetches - before <= 1 + int(took // JWKS_RETRY_SECONDS)
    assert usernames(idp, pool_id) == before_users


def test_a_moved_jwks_uri_is_picked_up_from_discovery(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rotating: RotatingOIDC
) -> None:
    oidc_provider(idp, pool_id, client_id, "Moving", rotating)
    rotating.user = {**rotating.user, "sub": "moving-1"}
    assert "code" in federated_sign_in(gatehouse, client_id, "Moving")
    assert rotating.discovery_fetches == 1
    # The issuer publishes a new key at a new JWKS URL; the old URL keeps the old key only.
    new_key = jwk.JWK.generate(kty="RSA", size=2048, kid="moved-key")
    rotating.moved_keys = [new_key]
    rotating.jwks_path_now = "/jwks2"
    rotating.signing_key = new_key
    time.sleep(RETRY_SECONDS + 0.2)
    answer = federated_sign_in(gatehouse, client_id, "Moving")
    assert "code" in answer, answer
    assert rotating.discovery_fetches == 2


@pytest.mark.parametrize("failure", ["error", "issuer", "junk"])
def test_a_failing_discovery_keeps_the_known_endpoints(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rotating: RotatingOIDC, failure: str
) -> None:
    """A discovery document that cannot be read, or that names another issuer (OIDC Discovery §4.3), does not
    replace the endpoints known from the last good one."""
    name = f"Flaky{failure.capitalize()}"
    oidc_provider(idp, pool_id, client_id, name, rotating)
    rotating.user = {**rotating.user, "sub": f"flaky-{failure}"}
    assert "code" in federated_sign_in(gatehouse, client_id, name)
    rotating.discovery_fails = failure
    time.sleep(REFRESH_SECONDS + 0.5)
    answer = federated_sign_in(gatehouse, client_id, name)
    assert "code" in answer, answer
    assert rotating.discovery_fetches == 2  # read again when old, refused, the known endpoints kept
    # Not asked again on every sign-in while it is down.
    assert "code" in federated_sign_in(gatehouse, client_id, name)
    assert rotating.discovery_fetches == 2


def test_a_provider_whose_discovery_never_worked_is_an_error_not_a_500(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, rotating: RotatingOIDC
) -> None:
    rotating.discovery_fails = "error"
    oidc_provider(idp, pool_id, client_id, "Down", rotating)
    answer = federated_sign_in(gatehouse, client_id, "Down")
    assert "code" not in answer and answer.get("error"), answer
