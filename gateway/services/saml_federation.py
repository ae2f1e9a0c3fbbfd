"""SAML 2.0 assertions for STS's AssumeRoleWithSAML, checked against an IAM SAML provider's metadata.

The behaviour is AWS's ("Configure SAML assertions for the authentication response" and "AssumeRoleWithSAML"
in the IAM and STS references). The IdP posts a signed SAML Response meant for AWS: Audience
``urn:amazon:webservices``, Destination and SubjectConfirmation Recipient ``https://signin.aws.amazon.com/saml``
(so IdPs configured for AWS work unchanged), and the attributes

* ``https://aws.amazon.com/SAML/Attributes/Role`` -- ``<role ARN>,<SAML provider ARN>`` pairs (either order);
* ``https://aws.amazon.com/SAML/Attributes/RoleSessionName`` -- required;
* ``https://aws.amazon.com/SAML/Attributes/SessionDuration`` -- optional, seconds;
* ``https://aws.amazon.com/SAML/Attributes/PrincipalTag:<key>`` and ``.../SourceIdentity`` -- optional.

The Response is verified with pysaml2 (which runs xmlsec1): it holds exactly one assertion, which the subject,
attributes and one-use ID are all read from; the Response or its assertion signed by a key of the provider's
metadata, each signature checked against the element its Reference names (no signature wrapping), the Audience,
Destination, Recipient and time conditions. XML is parsed with defusedxml first (no DTDs or entities). pysaml2
blocks (xmlsec1 is a subprocess), so verification runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import hashlib
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from defusedxml import ElementTree as SafeElementTree

from gateway.errors import ExpiredTokenException, InvalidIdentityTokenException, InvalidInputException

__all__ = ["AWS_SAML_ENDPOINT", "AWS_SAML_ENTITY_ID", "SamlAssertion", "SamlVerifier", "check_metadata"]

AWS_SAML_ENTITY_ID: Final = "urn:amazon:webservices"
AWS_SAML_ENDPOINT: Final = "https://signin.aws.amazon.com/saml"
ATTRIBUTE_PREFIX: Final = "https://aws.amazon.com/SAML/Attributes/"
ROLE_ATTRIBUTE: Final = ATTRIBUTE_PREFIX + "Role"
SESSION_NAME_ATTRIBUTE: Final = ATTRIBUTE_PREFIX + "RoleSessionName"
SESSION_DURATION_ATTRIBUTE: Final = ATTRIBUTE_PREFIX + "SessionDuration"
SOURCE_IDENTITY_ATTRIBUTE: Final = ATTRIBUTE_PREFIX + "SourceIdentity"
PRINCIPAL_TAG_PREFIX: Final = ATTRIBUTE_PREFIX + "PrincipalTag:"
TRANSITIVE_TAG_KEYS_ATTRIBUTE: Final = ATTRIBUTE_PREFIX + "TransitiveTagKeys"
CLOCK_SKEW_SECONDS: Final = 60
MAX_RESPONSE_CHARS: Final = 100_000  # STS's limit on SAMLAssertion (base64)
XMLSEC_BINARY: Final = os.environ.get("GATEHOUSE_XMLSEC1", "/usr/bin/xmlsec1")
_MD: Final = "{urn:oasis:names:tc:SAML:2.0:metadata}"
_SAML: Final = "{urn:oasis:names:tc:SAML:2.0:assertion}"
_DS: Final = "{http://www.w3.org/2000/09/xmldsig#}"
_ONE_ASSERTION: Final = "The SAML response must hold exactly one assertion."
_SUBJECT_TYPES: Final = {
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent": "persistent",
    "urn:oasis:names:tc:SAML:2.0:nameid-format:transient": "transient",
}


def check_metadata(document: str) -> str:
    """The IdP entity id of a SAML metadata document; InvalidInput unless it describes an IdP with a signing
    certificate (what CreateSAMLProvider requires)."""
    try:
        root = SafeElementTree.fromstring(document.encode("utf-8"))
    except Exception as exc:  # defusedxml raises ParseError and its own refusals (DTDs, entities)
        raise InvalidInputException("Could not parse metadata") from exc
    entity = root if root.tag == f"{_MD}EntityDescriptor" else root.find(f"{_MD}EntityDescriptor")
    if entity is None or not entity.get("entityID"):
        raise InvalidInputException("Could not parse metadata: no EntityDescriptor with an entityID")
    idp = entity.find(f"{_MD}IDPSSODescriptor")
    if idp is None or idp.find(f".//{_DS}X509Certificate") is None:
        raise InvalidInputException("Could not parse metadata: no IDPSSODescriptor with a signing certificate")
    return str(entity.get("entityID"))


@dataclass(frozen=True)
class SamlAssertion:
    """What a verified SAML Response says, in the terms STS uses."""

    issuer: str
    subject: str
    subject_type: str  # "persistent", "transient", or the NameID format as sent
    assertion_id: str
    not_on_or_after: float
    attributes: dict[str, list[str]]

    def role_pairs(self) -> list[tuple[str, str]]:
        """(role ARN, provider ARN) from the Role attribute, in whichever order each value lists them."""
        pairs = []
        for value in self.attributes.get(ROLE_ATTRIBUTE, []):
            parts = [part.strip() for part in value.split(",")]
            if len(parts) != 2:
                continue
            first, second = parts
            pairs.append((first, second) if ":role/" in first else (second, first))
        return pairs

    def single(self, name: str) -> str | None:
        values = self.attributes.get(name)
        return values[0] if values else None

    def principal_tags(self) -> dict[str, str]:
        return {
            name[len(PRINCIPAL_TAG_PREFIX) :]: values[0]
            for name, values in self.attributes.items()
            if name.startswith(PRINCIPAL_TAG_PREFIX) and values
        }

    def transitive_tag_keys(self) -> list[str]:
        """The TransitiveTagKeys attribute's values: which principal tags pass on in a role chain."""
        return list(self.attributes.get(TRANSITIVE_TAG_KEYS_ATTRIBUTE, []))


class SamlVerifier:
    """Verifies SAML Responses against IAM SAML providers' metadata (one pysaml2 client per provider version)."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, float], Any] = {}
        self._lock = threading.Lock()

    def _client(self, name: str, updated_at: float, metadata: str) -> Any:
        # pysaml2 is imported on first use: it is heavy, and most deployments never see a SAML assertion.
        from saml2 import BINDING_HTTP_POST
        from saml2.client import Saml2Client
        from saml2.config import SPConfig

        key = (name, updated_at)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                config = SPConfig()
                config.load(
                    {
                        "entityid": AWS_SAML_ENTITY_ID,
                        "xmlsec_binary": XMLSEC_BINARY,
                        "metadata": {"inline": [metadata]},
                        "allow_unknown_attributes": True,
                        "service": {
                            "sp": {
                                "endpoints": {"assertion_consumer_service": [(AWS_SAML_ENDPOINT, BINDING_HTTP_POST)]},
                                # IdP-initiated: AWS never sent a request, so there is no InResponseTo to match.
                                "allow_unsolicited": True,
                                "want_response_signed": False,
                                "want_assertions_signed": False,
                                "want_assertions_or_response_signed": True,
                            }
                        },
                        # Accept clock skew on NotBefore / NotOnOrAfter.
                        "accepted_time_diff": CLOCK_SKEW_SECONDS,
                    }
                )
                client = Saml2Client(config=config)
                # A provider's older versions are dropped: their metadata may hold a retired certificate.
                for old in [k for k in self._clients if k[0] == name]:
                    del self._clients[old]
                self._clients[key] = client
            return client

    async def verify(self, name: str, updated_at: float, metadata: str, saml_response: str) -> SamlAssertion:
        """Check a base64 SAML Response; InvalidIdentityToken if it is not valid, ExpiredTokenException if it
        has expired."""
        if not isinstance(saml_response, str) or len(saml_response) > MAX_RESPONSE_CHARS:
            raise InvalidIdentityTokenException("The SAML assertion is too long.")
        try:
            xml = base64.b64decode(saml_response, validate=False)
            parsed = SafeElementTree.fromstring(xml)  # refuse DTDs and entity tricks before pysaml2 parses anything
        except (binascii.Error, ValueError) as exc:
            raise InvalidIdentityTokenException("The SAML assertion is not base64.") from exc
        except Exception as exc:  # defusedxml's ParseError and its refusals of DTDs and entities
            raise InvalidIdentityTokenException("The SAML assertion is not well-formed XML.") from exc
        # Before pysaml2 reads it: it lets several assertions through (one plain and the rest encrypted, or ones
        # it cannot decrypt), each checked alone, and reports a mix of them (the first one's content, the last
        # one's NameID) -- another user's genuine assertion could ride along with the sender's own.
        if _assertion_count(parsed) != 1:
            raise InvalidIdentityTokenException(_ONE_ASSERTION)
        try:
            return await asyncio.to_thread(self._verify, name, updated_at, metadata, saml_response)
        except InvalidIdentityTokenException:
            # pysaml2 reports a lapsed NotOnOrAfter as just "Condition not OK"; say "expired" when that is why
            # (read from the unverified XML, so a forged assertion learns only what it says itself).
            expiry = _stated_expiry(parsed)
            if expiry is not None and expiry + CLOCK_SKEW_SECONDS <= time.time():
                raise ExpiredTokenException("The SAML assertion has expired.") from None
            raise

    def _verify(self, name: str, updated_at: float, metadata: str, saml_response: str) -> SamlAssertion:
        from saml2 import BINDING_HTTP_POST
        from saml2.validate import ResponseLifetimeExceed

        client = self._client(name, updated_at, metadata)
        try:
            response = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST)
        except ResponseLifetimeExceed as exc:
            raise ExpiredTokenException("The SAML assertion has expired.") from exc
        except Exception as exc:  # pysaml2 raises many unrelated classes for a response it refuses
            raise InvalidIdentityTokenException(f"The SAML assertion is not valid: {type(exc).__name__}") from exc
        if response is None or response.assertion is None:
            raise InvalidIdentityTokenException("The SAML response holds no assertion.")
        if len(response.assertions) != 1:  # one EncryptedAssertion may still hold several
            raise InvalidIdentityTokenException(_ONE_ASSERTION)
        assertion = response.assertion
        # pysaml2 checks the Recipient only when given conversation info; checked here in any case (SAML
        # Profiles §4.1.4.2: a bearer assertion's Recipient is where it may be presented).
        confirmations = assertion.subject.subject_confirmation if assertion.subject is not None else []
        recipients = [c.subject_confirmation_data.recipient for c in confirmations if c.subject_confirmation_data]
        if not recipients or any(recipient != AWS_SAML_ENDPOINT for recipient in recipients):
            raise InvalidIdentityTokenException("The SAML assertion's Recipient is not " + AWS_SAML_ENDPOINT)
        destination = response.response.destination
        if destination is not None and destination != AWS_SAML_ENDPOINT:
            raise InvalidIdentityTokenException("The SAML response's Destination is not " + AWS_SAML_ENDPOINT)
        # The checked assertion's own subject (pysaml2's response.name_id is whichever assertion it read last).
        name_id = assertion.subject.name_id if assertion.subject is not None else None
        if name_id is None and assertion.subject is not None and assertion.subject.encrypted_id is not None:
            # An EncryptedID, which pysaml2 decrypts into response.name_id: the one assertion's own (checked above).
            name_id = response.name_id
        if name_id is None or not name_id.text:
            raise InvalidIdentityTokenException("The SAML assertion has no subject NameID.")
        # The signed assertion's Issuer names the IdP (SAML:iss, the NameQualifier); the Response's, which may be
        # unsigned when only the assertion is, must not say otherwise.
        issuer = (assertion.issuer.text or "").strip() if assertion.issuer is not None else ""
        stated = response.issuer()
        if not issuer or (stated and str(stated).strip() != issuer):
            raise InvalidIdentityTokenException("The SAML response's Issuer is not its assertion's.")
        expiry = _not_on_or_after(assertion)
        return SamlAssertion(
            issuer=issuer,
            subject=str(name_id.text).strip(),
            subject_type=_SUBJECT_TYPES.get(str(name_id.format or ""), str(name_id.format or "unspecified")),
            assertion_id=str(assertion.id),
            not_on_or_after=expiry,
            attributes=_attributes(assertion),
        )


def _assertion_count(root: Any) -> int:
    """A Response's Assertion and EncryptedAssertion children: AWS takes the one assertion the IdP issued for the
    sign-in (SAML Profiles §4.1.4.2, Web Browser SSO, which AWS's SAML federation follows)."""
    return len(root.findall(f"{_SAML}Assertion")) + len(root.findall(f"{_SAML}EncryptedAssertion"))


def _not_on_or_after(assertion: Any) -> float:
    """The assertion's end of validity: the Conditions' NotOnOrAfter, else the SubjectConfirmationData's."""
    from saml2 import time_util

    candidates = []
    if assertion.conditions is not None and assertion.conditions.not_on_or_after:
        candidates.append(assertion.conditions.not_on_or_after)
    for confirmation in assertion.subject.subject_confirmation if assertion.subject is not None else []:
        data = confirmation.subject_confirmation_data
        if data is not None and data.not_on_or_after:
            candidates.append(data.not_on_or_after)
    if not candidates:
        raise InvalidIdentityTokenException("The SAML assertion has no NotOnOrAfter.")
    return float(min(calendar.timegm(time_util.str_to_time(value)) for value in candidates))


def _stated_expiry(root: Any) -> float | None:
    """The earliest Conditions NotOnOrAfter the XML states (unverified), or None."""
    found = []
    for conditions in root.iter(f"{_SAML}Conditions"):
        value = conditions.get("NotOnOrAfter")
        if value:
            try:
                found.append(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
            except ValueError:
                continue
    return min(found) if found else None


def _attributes(assertion: Any) -> dict[str, list[str]]:
    """Attributes by their Name as sent (not pysaml2's friendly names), values as text."""
    found: dict[str, list[str]] = {}
    for statement in assertion.attribute_statement or []:
        for attribute in statement.attribute or []:
            values = [str(value.text).strip() for value in attribute.attribute_value or [] if value.text is not None]
            found.setdefault(str(attribute.name), []).extend(values)
    return found


def name_qualifier(issuer: str, account_id: str, provider_name: str) -> str:
    """STS's NameQualifier: BASE64(SHA1(issuer + account id + "/" + provider name))."""
    digest = hashlib.sha1(f"{issuer}{account_id}/{provider_name}".encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def saml_context_keys(
    assertion: SamlAssertion, *, account_id: str, provider_name: str
) -> Mapping[str, str | list[str]]:
    """The condition keys AWS sets for SAML federation ("Available keys for SAML-based AWS STS federation")."""
    return {
        "SAML:aud": AWS_SAML_ENDPOINT,
        "SAML:iss": assertion.issuer,
        "SAML:sub": assertion.subject,
        "SAML:sub_type": assertion.subject_type,
        "SAML:namequalifier": name_qualifier(assertion.issuer, account_id, provider_name),
        "SAML:doc": f"{account_id}/{provider_name}",
    }
