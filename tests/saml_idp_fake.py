"""A SAML 2.0 IdP configured for AWS (as corporate IdPs are for AWS's console federation), for the
AssumeRoleWithSAML tests: pysaml2's own ``Server`` signs Responses with a self-signed key (xmlsec1).

:meth:`FakeAwsSamlIdP.response` builds a Response with every knob a hostile test needs; whatever it changes is
changed before the IdP signs, so the signature is genuine and only the content is wrong.
"""

from __future__ import annotations

import base64
import datetime
import os
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, Attribute, AttributeStatement, AttributeValue, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part
from saml2.time_util import instant
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

XMLSEC = "/usr/bin/xmlsec1"
AWS_ENTITY = "urn:amazon:webservices"
AWS_ACS = "https://signin.aws.amazon.com/saml"
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
RESPONSE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"
AWS_SP_METADATA = (
    '<?xml version="1.0"?>'
    f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{AWS_ENTITY}">'
    '<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
    f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="{AWS_ACS}" index="1"/>'
    "</md:SPSSODescriptor></md:EntityDescriptor>"
)


def key_and_cert(common_name: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


class FakeAwsSamlIdP:
    def __init__(self, entity_id: str = "https://idp.corp.example/saml") -> None:
        self.entity_id = entity_id
        self.key_pem, self.cert_pem = key_and_cert("fake-aws-saml-idp")
        self._dir = tempfile.mkdtemp(prefix="fake-aws-idp-")
        for name, text in (("idp.key", self.key_pem), ("idp.crt", self.cert_pem)):
            with open(os.path.join(self._dir, name), "w") as handle:
                handle.write(text)
        config = IdPConfig()
        config.load(
            {
                "entityid": entity_id,
                "xmlsec_binary": XMLSEC,
                "key_file": os.path.join(self._dir, "idp.key"),
                "cert_file": os.path.join(self._dir, "idp.crt"),
                "metadata": {"inline": [AWS_SP_METADATA]},
                "service": {
                    "idp": {
                        "endpoints": {"single_sign_on_service": [(f"{entity_id}/sso", BINDING_HTTP_REDIRECT)]},
                        "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
                    }
                },
                "allow_unknown_attributes": True,
            }
        )
        self.server = Server(config=config)

    def metadata_xml(self) -> str:
        return str(entity_descriptor(self.server.config))

    def response(
        self,
        attributes: dict[str, list[str]],
        *,
        subject: str = "ann@corp.example",
        audience: str = AWS_ENTITY,
        recipient: str = AWS_ACS,
        destination: str = AWS_ACS,
        lifetime: int = 300,
        sign_assertion: bool = True,
        sign_response: bool = False,
        signer: FakeAwsSamlIdP | None = None,
    ) -> str:
        """A base64 SAML Response as an IdP posts it to AWS; ``signer`` signs with another IdP's key."""
        xml = self.server.create_authn_response(
            identity={},
            in_response_to=None,
            destination=destination,
            sp_entity_id=AWS_ENTITY,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=subject),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_response=False,
            sign_assertion=False,
        )
        response = samlp.response_from_string(str(xml))
        assertion = response.assertion[0] if isinstance(response.assertion, list) else response.assertion
        assertion.attribute_statement = [
            AttributeStatement(
                attribute=[
                    Attribute(
                        name=name,
                        name_format=NAME_FORMAT_URI,
                        attribute_value=[AttributeValue(text=value) for value in values],
                    )
                    for name, values in attributes.items()
                ]
            )
        ]
        now = time.time()
        assertion.conditions.not_before = instant(time_stamp=int(now - 60))
        assertion.conditions.not_on_or_after = instant(time_stamp=int(now + lifetime))
        assertion.conditions.audience_restriction[0].audience[0].text = audience
        for confirmation in assertion.subject.subject_confirmation:
            data = confirmation.subject_confirmation_data
            data.not_on_or_after = instant(time_stamp=int(now + lifetime))
            data.recipient = recipient
            data.in_response_to = None
        response.in_response_to = None
        sec = (signer or self).server.sec
        if sign_assertion:
            assertion.signature = pre_signature_part(
                assertion.id, sec.my_cert, 1, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
            )
        if sign_response:
            response.signature = pre_signature_part(
                response.id, sec.my_cert, 2, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
            )
        text = str(response)
        if sign_assertion:
            text = sec.sign_statement(text, ASSERTION, node_id=assertion.id)
        if sign_response:
            text = sec.sign_statement(text, RESPONSE, node_id=response.id)
        return base64.b64encode(text.encode()).decode()


def tamper(saml_response: str, old: str, new: str) -> str:
    """Change the signed XML after signing (a forged attribute): the signature no longer matches."""
    xml = base64.b64decode(saml_response).decode()
    assert old in xml
    return base64.b64encode(xml.replace(old, new).encode()).decode()


def aws_attributes(role_arn: str, provider_arn: str, session: str = "ann", **extra: list[str]) -> dict[str, list[str]]:
    attributes: dict[str, list[str]] = {
        "https://aws.amazon.com/SAML/Attributes/Role": [f"{role_arn},{provider_arn}"],
        "https://aws.amazon.com/SAML/Attributes/RoleSessionName": [session],
    }
    attributes.update({f"https://aws.amazon.com/SAML/Attributes/{k}": v for k, v in extra.items()})
    return attributes


__all__ = ["AWS_ACS", "AWS_ENTITY", "FakeAwsSamlIdP", "aws_attributes", "tamper"]
