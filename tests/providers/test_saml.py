"""The SAML connector against pysaml2's own IdP over real HTTP: signed AuthnRequests on both bindings,
signed and encrypted assertions; and every hostile Response refused (unsigned, signature stripped, signature
wrapping, XXE, replay, wrong Audience / Recipient / Destination / InResponseTo, expired or early conditions,
another IdP's signature, unsolicited)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from providers.base import ConnectorContext, UpstreamError
from providers.saml import SAMLConnector
from tests.fakes.saml import FakeSamlIdP, assertion_id, decode, encode
from tests.providers.conftest import ACS_URL, SP_ENTITY_ID, form_fields


@pytest.fixture(scope="module")
def idp(sp_keys: tuple[str, str]) -> Iterator[FakeSamlIdP]:
    with FakeSamlIdP(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, sp_cert_pem=sp_keys[1]) as server:
        yield server


def saml(idp: FakeSamlIdP, context: ConnectorContext, **details: str) -> SAMLConnector:
    settings = {"MetadataFile": idp.metadata_xml(), "RequestSigningAlgorithm": "rsa-sha256", **details}
    return SAMLConnector("Corp", SAMLConnector.complete_details(settings), context)


async def login(idp: FakeSamlIdP, connector: SAMLConnector, context: ConnectorContext) -> tuple[str, dict[str, str]]:
    request = await connector.authn_request(relay_state="relay-1", acs_url=ACS_URL)
    if request.binding == "redirect":
        async with context.http.get(request.url) as response:
            page = await response.text()
    else:
        async with context.http.post(request.url, data=dict(request.form)) as response:
            page = await response.text()
    return request.request_id, form_fields(page)


async def test_redirect_binding_signed_request_and_attributes(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    connector = saml(idp, context)
    request_id, form = await login(idp, connector, context)
    assert form["RelayState"] == "relay-1"
    seen = idp.authn_requests[-1]
    assert seen["id"] == request_id and seen["signed"] and seen["issuer"] == SP_ENTITY_ID and seen["acs"] == ACS_URL
    identity = await connector.complete(form["SAMLResponse"], expected_request_id=request_id, acs_url=ACS_URL)
    assert (identity.provider_type, identity.subject, identity.issuer) == ("SAML", "ann@corp.example", idp.entity_id)
    assert identity.email == "ann@corp.example" and identity.name == "Ann Corp"
    assert identity.groups == ("engineering", "corp-admins")
    assert identity.claims["NameIDFormat"].endswith("persistent")


async def test_post_binding(sp_keys: tuple[str, str], context: ConnectorContext) -> None:
    with FakeSamlIdP(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, sp_cert_pem=sp_keys[1], post_only=True) as post_idp:
        connector = saml(post_idp, context)
        request = await connector.authn_request(relay_state="relay-2", acs_url=ACS_URL)
        assert request.binding == "post" and request.form["RelayState"] == "relay-2"
        request_id, form = await login(post_idp, connector, context)
        assert post_idp.authn_requests[-1]["signed"]
        identity = await connector.complete(form["SAMLResponse"], expected_request_id=request_id, acs_url=ACS_URL)
        assert identity.subject == "ann@corp.example"


async def test_encrypted_assertions(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    connector = saml(idp, context, EncryptedResponses="true")
    idp.encrypt = True
    try:
        request_id, form = await login(idp, connector, context)
    finally:
        idp.encrypt = False
    assert "EncryptedAssertion" in decode(form["SAMLResponse"])
    identity = await connector.complete(form["SAMLResponse"], expected_request_id=request_id, acs_url=ACS_URL)
    assert identity.email == "ann@corp.example"
    # A plaintext assertion is refused when the provider asks for encrypted ones.
    with pytest.raises(UpstreamError) as plain:
        await connector.complete(idp.response("id-plain"), expected_request_id="id-plain", acs_url=ACS_URL)
    assert plain.value.reason == "saml_not_encrypted"


async def test_replayed_assertion_is_refused(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    connector = saml(idp, context)
    response = idp.response("id-replay")
    await connector.complete(response, expected_request_id="id-replay", acs_url=ACS_URL)
    with pytest.raises(UpstreamError) as replay:
        await connector.complete(response, expected_request_id="id-replay", acs_url=ACS_URL)
    assert replay.value.reason == "saml_replay"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        # pysaml2 refuses these itself (its checks come first); ours stand behind them.
        pytest.param({"audience": "urn:someone:else"}, "saml_invalid: Exception", id="wrong-audience"),
        pytest.param({"recipient": "https://evil.example/acs"}, "saml_recipient", id="wrong-recipient"),
        pytest.param({"destination": "https://evil.example/acs"}, "saml_destination", id="wrong-destination"),
        pytest.param({"lifetime": -120}, "saml_invalid: VerificationError", id="expired"),
        pytest.param({"not_before_offset": 600}, "saml_invalid: VerificationError", id="not-yet-valid"),
        pytest.param({"sign_assertion": False}, "saml_invalid: SignatureError", id="unsigned"),
    ],
)
async def test_hostile_responses_are_refused(
    idp: FakeSamlIdP, context: ConnectorContext, options: dict[str, object], reason: str
) -> None:
    connector = saml(idp, context)
    response = idp.response("id-hostile", **options)
    with pytest.raises(UpstreamError) as refused:
        await connector.complete(response, expected_request_id="id-hostile", acs_url=ACS_URL)
    assert str(refused.value) == reason


async def test_wrong_in_response_to_is_refused(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    connector = saml(idp, context)
    response = idp.response("id-of-another-request")
    with pytest.raises(UpstreamError):
        await connector.complete(response, expected_request_id="id-mine", acs_url=ACS_URL)


async def test_signature_stripped_is_refused(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    connector = saml(idp, context)
    xml = idp.response_xml("id-strip")
    stripped = re.sub(r"<([\w.-]+):Signature\b.*?</\1:Signature>", "", xml, flags=re.DOTALL)
    assert "Signature" not in stripped
    with pytest.raises(UpstreamError):
        await connector.complete(encode(stripped), expected_request_id="id-strip", acs_url=ACS_URL)


async def test_tampered_signed_assertion_is_refused(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    connector = saml(idp, context)
    xml = idp.response_xml("id-tamper")
    tampered = xml.replace("ann@corp.example</", "boss@corp.example</")
    assert tampered != xml
    with pytest.raises(UpstreamError):
        await connector.complete(encode(tampered), expected_request_id="id-tamper", acs_url=ACS_URL)


async def test_signature_wrapping_is_refused(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    """XSW: an unsigned forged assertion placed before the genuine signed one (and, second variant, the
    genuine one hidden inside the forgery) -- the signature verifies, but not over what would be read."""
    connector = saml(idp, context)
    xml = idp.response_xml("id-xsw")
    genuine_id = assertion_id(xml)
    match = re.search(r"<([\w.-]+):Assertion .*</\1:Assertion>", xml, flags=re.DOTALL)
    assert match
    genuine = match.group(0)
    forged = re.sub(r"<([\w.-]+):Signature\b.*?</\1:Signature>", "", genuine, flags=re.DOTALL)
    forged = forged.replace(genuine_id, "id-forged").replace("ann@corp.example", "boss@corp.example")
    first = xml.replace(genuine, forged + genuine)
    with pytest.raises(UpstreamError):
        await connector.complete(encode(first), expected_request_id="id-xsw", acs_url=ACS_URL)
    tag = re.match(r"<([\w.-]+):Assertion", genuine)
    assert tag
    inner = forged.replace(
        f"</{tag.group(1)}:Assertion>",
        f"<{tag.group(1)}:Advice>{genuine}</{tag.group(1)}:Advice></{tag.group(1)}:Assertion>",
    )
    second = xml.replace(genuine, inner)
    with pytest.raises(UpstreamError):
        await connector.complete(encode(second), expected_request_id="id-xsw", acs_url=ACS_URL)


async def test_xxe_is_refused(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    connector = saml(idp, context)
    xml = idp.response_xml("id-xxe")
    body = xml.split("?>", 1)[1] if xml.startswith("<?xml") else xml
    evil = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]>' + body.replace(
        "ann@corp.example</", "&x;</", 1
    )
    with pytest.raises(UpstreamError) as refused:
        await connector.complete(encode(evil), expected_request_id="id-xxe", acs_url=ACS_URL)
    assert refused.value.reason == "saml_malformed"


async def test_another_idps_signature_is_refused(
    sp_keys: tuple[str, str], idp: FakeSamlIdP, context: ConnectorContext
) -> None:
    connector = saml(idp, context)
    impostor = FakeSamlIdP(sp_entity_id=SP_ENTITY_ID, acs_url=ACS_URL, sp_cert_pem=sp_keys[1])
    # The impostor claims to be the real IdP but signs with its own key.
    impostor.server.config.entityid = idp.entity_id
    xml = impostor.response_xml("id-impostor").replace(impostor.entity_id, idp.entity_id)
    with pytest.raises(UpstreamError):
        await connector.complete(encode(xml), expected_request_id="id-impostor", acs_url=ACS_URL)


async def test_unsolicited_only_with_idp_init(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    with pytest.raises(UpstreamError) as refused:
        await saml(idp, context).complete(idp.response(None), expected_request_id=None, acs_url=ACS_URL)
    assert refused.value.reason == "saml_unsolicited"
    identity = await saml(idp, context, IDPInit="true").complete(
        idp.response(None), expected_request_id=None, acs_url=ACS_URL
    )
    assert identity.subject == "ann@corp.example"


async def test_garbage_is_refused(idp: FakeSamlIdP, context: ConnectorContext) -> None:
    connector = saml(idp, context)
    for junk in ("", "!!!", encode("<not-saml/>"), encode("x" * 10)):
        with pytest.raises(UpstreamError):
            await connector.complete(junk, expected_request_id="id-junk", acs_url=ACS_URL)
