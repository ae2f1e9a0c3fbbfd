"""Federation fidelity under attack, end to end against a real server and real upstreams.

SAML: every XML signature wrapping shape of "On Breaking SAML" (Somorovsky et al., 2012) built from a
genuinely signed Response of pysaml2's IdP -- an unsigned Assertion before or after the signed one, ID
collisions, the signed Assertion moved into Extensions or into the Signature's Object -- is refused or read
only from the element the signature covers, and never makes the wrapped user; so is an encrypted assertion
anyone could make with the SP's public certificate. An assertion signed by another IdP of aggregate metadata,
one whose second AudienceRestriction names someone else, one without an AuthnStatement, and a non-Success
Response are refused; one bearer confirmation for us among several is enough, a certificate rollover in the
metadata is followed, and a multi-valued attribute is stored as Cognito stores it (``[a, b]``).

OpenID Connect / OAuth 2.0: upstream key rotation (one JWKS re-fetch for an unknown kid, rate-limited), issuers
matched exactly, userinfo by POST, string booleans, an access token that is not a Bearer token never used
(RFC 6749 §7.1), an injected upstream code refused by its nonce (RFC 9700 §4.5), and subjects too long for a
user name refused. Every refusal is an OAuth error redirect and leaves the store without the user.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from aiohttp import web
from jwcrypto import jwk, jwt
from saml2.saml import Audience, AudienceRestriction, SubjectConfirmation, SubjectConfirmationData
from saml2.samlp import STATUS_RESPONDER, Status, StatusCode

from tests.e2e.federation_support import Flow, corp_details, saml_idp_for, usernames
from tests.e2e.oauth_support import CALLBACK, pkce_pair, query_of
from tests.fakes.certs import cert_body, key_and_cert
from tests.fakes.oauth import FakeFacebook, FakeOIDC, s256
from tests.fakes.saml import FakeSamlIdP, encode
from tests.support import GatehouseServer, user_attributes

SIGNATURE = re.compile(r"<ns2:Signature\b.*?</ns2:Signature>", re.S)
ASSERTION = re.compile(r"<ns1:Assertion\b.*?</ns1:Assertion>", re.S)


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    schema = [
        {"Name": "groups", "AttributeDataType": "String", "Mutable": True},
        {"Name": "email", "AttributeDataType": "String", "Mutable": True, "Required": True},
    ]
    return str(idp.create_user_pool(PoolName="federation-fidelity", Schema=schema)["UserPool"]["Id"])


@pytest.fixture(scope="module")
def saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[FakeSamlIdP]:
    with saml_idp_for(gatehouse, idp, pool_id) as server:
        yield server


class RotatingOIDC(FakeOIDC):
    """An OpenID Connect provider that counts JWKS fetches, answers with a configurable ``token_type``, and
    records how userinfo was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.jwks_fetches = 0
        self.token_type = "Bearer"
        self.userinfo_methods: list[str] = []
        self.unpublished: jwk.JWK | None = None  # signs ID tokens with a key the JWKS does not hold
        self.enforce_pkce = True  # false: an upstream that ignores PKCE, as some OAuth 2.0 providers do
        self.claims_override: dict[str, Any] = {}  # changed ID token claims

    async def token(self, request: web.Request) -> web.Response:
        if not self.enforce_pkce:
            verifier = str((await request.post()).get("code_verifier", ""))
            for grant in self.codes.values():
                grant["code_challenge"] = s256(verifier)
        return await super().token(request)

    async def jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        return await super().jwks(request)

    async def userinfo(self, request: web.Request) -> web.Response:
        self.userinfo_methods.append(request.method)
        return await super().userinfo(request)

    def token_response(self, access_token: str, grant: dict[str, Any]) -> dict[str, Any]:
        return {**super().token_response(access_token, grant), "token_type": self.token_type}

    def id_claims(self, grant: dict[str, Any]) -> dict[str, Any]:
        return {**super().id_claims(grant), **self.claims_override}

    def sign(self, claims: dict[str, Any]) -> str:
        if self.unpublished is None:
            return super().sign(claims)
        token = jwt.JWT(header={"alg": "RS256", "kid": self.unpublished.kid}, claims=claims)
        token.make_signed_token(self.unpublished)
        return str(token.serialize())


@pytest.fixture(scope="module")
def corp() -> Iterator[RotatingOIDC]:
    with RotatingOIDC() as server:
        server.user = {"sub": "emp-1", "email": "emp@corp.example", "email_verified": "true"}
        yield server


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, saml_idp: FakeSamlIdP, corp: RotatingOIDC, facebook: FakeFacebook) -> str:
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Facebook", ProviderType="Facebook",
        ProviderDetails=facebook.provider_details(), AttributeMapping={"email": "email", "name": "name"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC",
        ProviderDetails=corp_details(corp, attributes_request_method="POST"),
        AttributeMapping={"email": "email", "email_verified": "email_verified"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Portal", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "IDPInit": "true"},
        AttributeMapping={
            "email": "email",
            "name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
            "custom:groups": "groups",
        },
    )  # fmt: skip
    # The IdP's metadata during a certificate rollover: the retiring certificate first, the one it signs with
    # second (SAML Metadata §2.4.1.1: several KeyDescriptors, any of which may sign).
    _, retiring = key_and_cert("retiring-saml-idp")
    metadata = saml_idp.metadata_xml()
    first = metadata.find("<ns0:KeyDescriptor")
    assert first > 0, metadata[:800]
    key_descriptor = (
        '<ns0:KeyDescriptor use="signing"><ns2:KeyInfo>'
        f"<ns2:X509Data><ns2:X509Certificate>{cert_body(retiring)}</ns2:X509Certificate></ns2:X509Data>"
        "</ns2:KeyInfo></ns0:KeyDescriptor>"
    )
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Rotated", ProviderType="SAML",
        ProviderDetails={"MetadataFile": metadata[:first] + key_descriptor + metadata[first:], "IDPInit": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["Portal", "Rotated", "Corp", "Facebook"],
    )  # fmt: skip
    return str(client["UserPoolClient"]["ClientId"])


def post_unsolicited(
    gatehouse: GatehouseServer, client_id: str, saml_response: str, provider: str = "Portal"
) -> dict[str, str]:
    """An IdP-initiated Response to the ACS (authorization parameters in RelayState): the client's answer."""
    relay = urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
         "identity_provider": provider, "scope": "openid email",
         "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    )  # fmt: skip
    response = requests.post(
        f"{gatehouse.url}/saml2/idpresponse",
        data={"SAMLResponse": saml_response, "RelayState": relay},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303, response.text
    return query_of(response.headers["Location"])


def evil_copy(assertion: str, *, new_id: bool = True) -> str:
    """The signed assertion's text with its signature dropped and its subject changed to the attacker's."""
    evil = SIGNATURE.sub("", assertion, count=1).replace("ann@corp.example", "mallory@evil.example")
    return re.sub(r' ID="([^"]+)"', ' ID="id-evil-assertion"', evil, count=1) if new_id else evil


def wrapped(xml: str, shape: str) -> str:
    """XSW shapes built around the genuinely signed assertion in ``xml``."""
    signed = ASSERTION.search(xml)
    assert signed is not None
    original = signed.group(0)
    head, tail = xml[: signed.start()], xml[signed.end() :]
    if shape == "evil-before":
        return head + evil_copy(original) + original + tail
    if shape == "evil-after":
        return head + original + evil_copy(original) + tail
    if shape == "same-id-before":
        return head + evil_copy(original, new_id=False) + original + tail
    if shape == "same-id-after":
        return head + original + evil_copy(original, new_id=False) + tail
    if shape == "original-in-extensions":
        extensions = f"<ns0:Extensions>{original}</ns0:Extensions>"
        issuer_end = head.index("</ns1:Issuer>") + len("</ns1:Issuer>")
        return head[:issuer_end] + extensions + head[issuer_end:] + evil_copy(original) + tail
    if shape == "original-in-extensions-same-id":
        extensions = f"<ns0:Extensions>{original}</ns0:Extensions>"
        issuer_end = head.index("</ns1:Issuer>") + len("</ns1:Issuer>")
        return head[:issuer_end] + extensions + head[issuer_end:] + evil_copy(original, new_id=False) + tail
    if shape == "original-in-signature-object":
        # XSW8: the evil assertion carries the genuine Signature, whose Object holds the original (signature
        # removed, which is exactly what the enveloped transform digests).
        signature = SIGNATURE.search(original)
        assert signature is not None
        bare = SIGNATURE.sub("", original, count=1)
        moved = signature.group(0).replace("</ns2:Signature>", f"<ns2:Object>{bare}</ns2:Object></ns2:Signature>")
        evil = evil_copy(original)
        issuer_end = evil.index("</ns1:Issuer>") + len("</ns1:Issuer>")
        return head + evil[:issuer_end] + moved + evil[issuer_end:] + tail
    if shape == "evil-wraps-original-in-object-same-id":
        signature = SIGNATURE.search(original)
        assert signature is not None
        bare = SIGNATURE.sub("", original, count=1)
        moved = signature.group(0).replace("</ns2:Signature>", f"<ns2:Object>{bare}</ns2:Object></ns2:Signature>")
        evil = evil_copy(original, new_id=False)
        issuer_end = evil.index("</ns1:Issuer>") + len("</ns1:Issuer>")
        return head + evil[:issuer_end] + moved + evil[issuer_end:] + tail
    raise AssertionError(shape)


def test_the_untouched_response_signs_in_its_subject(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """The control for the wrapping cases: the same signed Response, unchanged, is accepted."""
    assert "code" in post_unsolicited(gatehouse, client_id, saml_idp.response(None))
    assert "Portal_ann@corp.example" in usernames(idp, pool_id)


SHAPES = [
    "evil-before",
    "evil-after",
    "same-id-before",
    "same-id-after",
    "original-in-extensions",
    "original-in-extensions-same-id",
    "original-in-signature-object",
    "evil-wraps-original-in-object-same-id",
]


@pytest.mark.parametrize("shape", SHAPES)
def test_signature_wrapping_never_signs_in_the_wrapped_subject(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP, shape: str
) -> None:
    xml = saml_idp.response_xml(None)
    attack = wrapped(xml, shape)
    assert attack != xml and "mallory@evil.example" in attack
    answer = post_unsolicited(gatehouse, client_id, encode(attack))
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert not any("mallory" in name for name in usernames(idp, pool_id))


def test_every_audience_restriction_must_name_us(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """SAML Core §2.5.1.4: several AudienceRestrictions each hold; an assertion also restricted to another
    audience is not for us."""

    def edit(response: Any, assertion: Any) -> None:
        assertion.conditions.audience_restriction.append(AudienceRestriction(audience=[Audience(text="urn:other")]))

    xml = saml_idp.response_xml(None, name_id="two-audiences@corp.example", edit=edit)
    answer = post_unsolicited(gatehouse, client_id, encode(xml))
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert "Portal_two-audiences@corp.example" not in usernames(idp, pool_id)


def test_one_valid_bearer_confirmation_among_several_is_enough(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """Profiles §4.1.4.2: at least one bearer SubjectConfirmation must name our ACS; others may name other SPs."""

    def edit(response: Any, assertion: Any) -> None:
        ours = assertion.subject.subject_confirmation[0]
        other = SubjectConfirmation(
            method=ours.method,
            subject_confirmation_data=SubjectConfirmationData(
                recipient="https://other.example/acs", not_on_or_after=ours.subject_confirmation_data.not_on_or_after
            ),
        )
        assertion.subject.subject_confirmation.insert(0, other)

    xml = saml_idp.response_xml(None, name_id="two-confirmations@corp.example", edit=edit)
    answer = post_unsolicited(gatehouse, client_id, encode(xml))
    assert "code" in answer
    assert "Portal_two-confirmations@corp.example" in usernames(idp, pool_id)


def test_a_response_that_is_not_success_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """SAML Core §3.2.2.2: a Response whose top-level status is not Success signs no one in, whatever it holds."""

    def edit(response: Any, assertion: Any) -> None:
        response.status = Status(status_code=StatusCode(value=STATUS_RESPONDER))

    xml = saml_idp.response_xml(None, name_id="failed@corp.example", edit=edit, sign_response=True)
    answer = post_unsolicited(gatehouse, client_id, encode(xml))
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert "Portal_failed@corp.example" not in usernames(idp, pool_id)


def test_a_certificate_rollover_in_metadata(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """Cognito: with several signing certificates in the metadata, an assertion matching any of them is valid."""
    xml = saml_idp.response_xml(None, name_id="rollover@corp.example")
    answer = post_unsolicited(gatehouse, client_id, encode(xml), provider="Rotated")
    assert "code" in answer
    assert "Rotated_rollover@corp.example" in usernames(idp, pool_id)


def test_an_assertion_from_another_idp_of_aggregate_metadata_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """Metadata may be an EntitiesDescriptor naming several IdPs; the provider is the first IdP, and an
    assertion another of them signed (about any NameID it likes) is not that provider's user."""
    with saml_idp_for(gatehouse, idp, pool_id) as other:
        aggregate = (
            '<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
            + saml_idp.metadata_xml().split("?>", 1)[-1]
            + other.metadata_xml().split("?>", 1)[-1]
            + "</md:EntitiesDescriptor>"
        )
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Aggregate", ProviderType="SAML",
            ProviderDetails={"MetadataFile": aggregate, "IDPInit": "true"}, AttributeMapping={"email": "email"},
        )  # fmt: skip
        idp.update_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id, AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=["Portal", "Rotated", "Corp", "Facebook", "Aggregate"],
        )  # fmt: skip
        genuine = post_unsolicited(
            gatehouse, client_id, saml_idp.response(None, name_id="agg@corp.example"), "Aggregate"
        )
        assert "code" in genuine
        forged = post_unsolicited(gatehouse, client_id, other.response(None, name_id="boss@corp.example"), "Aggregate")
        assert "code" not in forged and forged["error"] == "invalid_request"
        assert "Aggregate_boss@corp.example" not in usernames(idp, pool_id)


@pytest.mark.parametrize("shape", ["encrypted-unsigned", "plain-before-encrypted", "plain-after-encrypted"])
def test_encrypted_assertions_are_no_way_around_the_signature(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP, shape: str
) -> None:
    """Anyone can encrypt to the SP's published certificate: an encrypted assertion is as untrusted as a plain
    one until its own signature verifies, and a plain unsigned one beside a genuine encrypted one is no
    way in either."""
    if shape == "encrypted-unsigned":
        attack = saml_idp.response_xml(None, name_id="mallory@evil.example", encrypt=True, sign_assertion=False)
    else:
        genuine = saml_idp.response_xml(None, encrypt=True)
        plain = ASSERTION.search(saml_idp.response_xml(None))
        assert plain is not None
        evil = evil_copy(plain.group(0))
        if shape == "plain-before-encrypted":
            attack = genuine.replace("<ns1:EncryptedAssertion>", evil + "<ns1:EncryptedAssertion>", 1)
        else:
            attack = genuine.replace("</ns1:EncryptedAssertion>", "</ns1:EncryptedAssertion>" + evil, 1)
        assert attack != genuine
    answer = post_unsolicited(gatehouse, client_id, encode(attack))
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert not any("mallory" in name for name in usernames(idp, pool_id))


def corp_sign_in(gatehouse: GatehouseServer, client_id: str) -> dict[str, str]:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="Corp"))
    assert response.status_code in (302, 303), response.text
    return query_of(response.headers["Location"])


def test_upstream_key_rotation_is_followed_and_unknown_keys_do_not_flood_the_jwks(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: RotatingOIDC
) -> None:
    """OIDC Core §10.1.1: a signer rotates by publishing a new key in its JWKS; a kid we have not seen makes
    us fetch the JWKS again (at most every few seconds), and a kid the JWKS does not hold is refused."""
    corp.user = {**corp.user, "sub": "rotation-1"}
    assert "code" in corp_sign_in(gatehouse, client_id)
    time.sleep(5.5)  # past the re-fetch interval
    corp.key = jwk.JWK.generate(kty="RSA", size=2048, kid="fake-key-2")
    before = corp.jwks_fetches
    assert "code" in corp_sign_in(gatehouse, client_id)
    assert corp.jwks_fetches == before + 1
    corp.unpublished = jwk.JWK.generate(kty="RSA", size=2048, kid="never-published")
    try:
        corp.user = {**corp.user, "sub": "rotation-ghost"}
        for _ in range(3):
            answer = corp_sign_in(gatehouse, client_id)
            assert "code" not in answer and answer["error"] == "invalid_request"
    finally:
        corp.unpublished = None
    assert corp.jwks_fetches <= before + 2
    assert "Corp_rotation-ghost" not in usernames(idp, pool_id)


def test_userinfo_is_asked_as_configured_and_string_booleans_are_read(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: RotatingOIDC
) -> None:
    """attributes_request_method POST reaches userinfo by POST (OIDC Core §5.3.1 allows both); an
    ``email_verified`` sent as the string "true" maps to the pool's "true"."""
    corp.user = {**corp.user, "sub": "post-userinfo", "email": "post@corp.example", "email_verified": "true"}
    corp.userinfo_methods.clear()
    assert "code" in corp_sign_in(gatehouse, client_id)
    assert corp.userinfo_methods == ["POST"]
    mapped = user_attributes(idp, pool_id, "Corp_post-userinfo")
    assert mapped["email"] == "post@corp.example" and mapped["email_verified"] == "true"


def test_an_access_token_of_another_type_is_not_used_as_a_bearer_token(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: RotatingOIDC
) -> None:
    """RFC 6749 §7.1: the client MUST NOT use an access token whose type it does not understand; Gatehouse
    speaks only Bearer (RFC 6750, whose §4 makes the name case-insensitive)."""
    corp.user = {**corp.user, "sub": "dpop-1"}
    corp.userinfo_methods.clear()
    corp.token_type = "DPoP"
    try:
        answer = corp_sign_in(gatehouse, client_id)
    finally:
        corp.token_type = "Bearer"
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert corp.userinfo_methods == [] and "Corp_dpop-1" not in usernames(idp, pool_id)
    corp.token_type = "bearer"
    try:
        assert "code" in corp_sign_in(gatehouse, client_id)
    finally:
        corp.token_type = "Bearer"


def test_a_saml_attribute_with_several_values_is_stored_as_cognito_writes_it(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """Cognito writes a multi-valued SAML attribute into one user pool attribute as ``[value1, value2]``
    (what applications reading e.g. ``custom:groups`` parse); one value stays as it is."""
    several = {"email": ["multi@corp.example"], "groups": ["engineering", "corp-admins"]}
    xml = saml_idp.response_xml(None, name_id="multi@corp.example", attributes=several)
    assert "code" in post_unsolicited(gatehouse, client_id, encode(xml))
    assert user_attributes(idp, pool_id, "Portal_multi@corp.example")["custom:groups"] == "[engineering, corp-admins]"
    one = {"email": ["single@corp.example"], "groups": ["engineering"]}
    xml = saml_idp.response_xml(None, name_id="single@corp.example", attributes=one)
    assert "code" in post_unsolicited(gatehouse, client_id, encode(xml))
    assert user_attributes(idp, pool_id, "Portal_single@corp.example")["custom:groups"] == "engineering"


def test_a_subject_too_long_for_a_user_name_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP, corp: RotatingOIDC
) -> None:
    """A federated user is named ProviderName_subject, and botocore's UsernameType allows 128 characters: a
    longer name would make a user no API call (AdminGetUser, AdminDeleteUser ...) could address."""
    before = usernames(idp, pool_id)
    long_name_id = "x" * 200 + "@corp.example"
    answer = post_unsolicited(gatehouse, client_id, saml_idp.response(None, name_id=long_name_id))
    assert "code" not in answer and answer["error"] == "invalid_request"
    corp.user = {**corp.user, "sub": "s" * 200}
    answer = corp_sign_in(gatehouse, client_id)
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert usernames(idp, pool_id) == before
    fits = "y" * (128 - len("Portal_"))
    assert "code" in post_unsolicited(gatehouse, client_id, saml_idp.response(None, name_id=fits))
    assert idp.admin_get_user(UserPoolId=pool_id, Username=f"Portal_{fits}")["Username"] == f"Portal_{fits}"


def test_an_assertion_without_an_authn_statement_signs_no_one_in(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """Profiles §4.1.4.2: the assertion that signs a user in carries an AuthnStatement; a signed assertion of
    attributes alone (as an attribute authority issues) is no proof that anyone authenticated."""

    def edit(response: Any, assertion: Any) -> None:
        assertion.authn_statement = []

    xml = saml_idp.response_xml(None, name_id="no-authn@corp.example", edit=edit)
    answer = post_unsolicited(gatehouse, client_id, encode(xml))
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert "Portal_no-authn@corp.example" not in usernames(idp, pool_id)


def test_an_injected_authorization_code_is_refused_by_its_nonce(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: RotatingOIDC
) -> None:
    """RFC 9700 §4.5 (code injection): an attacker's upstream code, put into the victim's callback, is
    refused even by an upstream that does not enforce PKCE, because the ID token it yields carries the
    attacker's nonce, not the one of the victim's request (OIDC Core §3.1.3.7 step 11)."""
    stolen: list[str] = []

    def keep_code(location: str) -> str:
        stolen.append(query_of(location)["code"])
        return location.replace("code=", "code=spent-", 1)  # the attacker never redeems it

    corp.enforce_pkce = False
    try:
        corp.user = {**corp.user, "sub": "attacker-1"}
        attacker = Flow(gatehouse, client_id)
        attacker.run(attacker.authorize_url(identity_provider="Corp"), tamper=keep_code)
        assert stolen
        corp.user = {**corp.user, "sub": "victim-1"}
        victim = Flow(gatehouse, client_id)
        response = victim.run(
            victim.authorize_url(identity_provider="Corp"),
            tamper=lambda location: re.sub(r"code=[^&]+", f"code={stolen[0]}", location),
        )
    finally:
        corp.enforce_pkce = True
    assert response.status_code in (302, 303), response.text
    answer = query_of(response.headers["Location"])
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert "Corp_attacker-1" not in usernames(idp, pool_id)


@pytest.mark.parametrize("issuer", ["{issuer}/", "{issuer}/.", "{upper}"])
def test_an_id_token_issuer_must_match_exactly(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: RotatingOIDC, issuer: str
) -> None:
    """OIDC Core §3.1.3.7 step 2: the ``iss`` claim MUST exactly match the issuer; a trailing slash, a dot
    segment or another case is another issuer (no URL normalisation)."""
    corp.user = {**corp.user, "sub": "issuer-variant"}
    corp.claims_override = {"iss": issuer.format(issuer=corp.issuer, upper=corp.issuer.upper())}
    try:
        answer = corp_sign_in(gatehouse, client_id)
    finally:
        corp.claims_override = {}
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert "Corp_issuer-variant" not in usernames(idp, pool_id)


def test_a_new_federated_user_without_a_required_attribute_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """Cognito: "a mapping must be present for each user pool attribute your user pool requires"; a first
    sign-in whose assertion lacks one (email is required here) makes no user."""
    xml = saml_idp.response_xml(None, name_id="no-email@corp.example", attributes={"groups": ["engineering"]})
    answer = post_unsolicited(gatehouse, client_id, encode(xml))
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert "email: The attribute is required" in answer["error_description"]
    assert "Portal_no-email@corp.example" not in usernames(idp, pool_id)


@pytest.mark.parametrize(
    "profile",
    [
        pytest.param({"name": "No Id", "email": "noid@fb.example"}, id="no-id"),
        pytest.param({"id": 10158000000000077, "name": "Numeric", "email": "num@fb.example"}, id="numeric-id"),
        pytest.param({"id": "", "name": "Empty", "email": "empty@fb.example"}, id="empty-id"),
        pytest.param({"id": "fb-no-email", "name": "Declined Email"}, id="no-email-but-required"),
    ],
)
def test_odd_facebook_profiles_make_no_user(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, facebook: FakeFacebook, profile: dict[str, Any]
) -> None:
    """The Graph API's app-scoped ``id`` (a string) names the user; a profile without one is refused, and one
    without the email the pool requires (the person declined the email permission) makes no user either."""
    before = usernames(idp, pool_id)
    facebook.user = profile
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="Facebook"))
    assert response.status_code in (302, 303), response.text
    answer = query_of(response.headers["Location"])
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert usernames(idp, pool_id) == before
