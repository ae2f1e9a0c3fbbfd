"""A SAML 2.0 IdP for tests: pysaml2's own ``saml2.server.Server`` behind a real HTTP port.

It reads our AuthnRequests (HTTP-Redirect or HTTP-POST binding; signatures checked against the SP certificate
it was given), and answers with a Response posted back to the ACS URL through an auto-submitting form, as a
browser would carry it. :meth:`FakeSamlIdP.response` builds Responses directly with every knob a hostile test
needs (wrong Audience / Recipient / Destination / InResponseTo, expired conditions, unsigned, encrypted ...);
whatever it changes is changed before the IdP signs, so the signature is genuine and only the content is wrong.
"""

from __future__ import annotations

import base64
import html
import os
import re
import tempfile
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, samlp
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import (
    NAME_FORMAT_UNSPECIFIED,
    NAMEID_FORMAT_PERSISTENT,
    Attribute,
    AttributeStatement,
    AttributeValue,
    NameID,
)
from saml2.server import Server
from saml2.sigver import pre_encrypt_assertion, pre_signature_part
from saml2.time_util import instant
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from tests.fakes.certs import cert_body, key_and_cert
from tests.fakes.server import ThreadedApp

XMLSEC = "/usr/bin/xmlsec1"
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
RESPONSE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"


def slo_of(acs_url: str) -> str:
    """The SP's single logout endpoint beside its ACS (Gatehouse's ``/saml2/logout``)."""
    return acs_url.rsplit("/saml2/idpresponse", 1)[0] + "/saml2/logout"


def sp_metadata(entity_id: str, acs_url: str, cert_pem: str) -> str:
    """Minimal SP metadata: the ACS, and the SP's certificate for signing and encryption."""
    cert = cert_body(cert_pem)
    key_info = (
        '<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>'
        f"{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
    )
    return (
        '<?xml version="1.0"?>'
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}">'
        '<md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'<md:KeyDescriptor use="signing">{key_info}</md:KeyDescriptor>'
        f'<md:KeyDescriptor use="encryption">{key_info}</md:KeyDescriptor>'
        f'<md:SingleLogoutService Binding="{BINDING_HTTP_REDIRECT}" Location="{slo_of(acs_url)}"/>'
        f'<md:SingleLogoutService Binding="{BINDING_HTTP_POST}" Location="{slo_of(acs_url)}"/>'
        f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="{acs_url}" index="0"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


class FakeSamlIdP(ThreadedApp):
    def __init__(self, *, sp_entity_id: str, acs_url: str, sp_cert_pem: str, post_only: bool = False) -> None:
        super().__init__()
        self.sp_entity_id = sp_entity_id
        self.acs_url = acs_url
        self.sp_cert_pem = sp_cert_pem
        self.entity_id = self.url + "/metadata"
        self.key_pem, self.cert_pem = key_and_cert("fake-saml-idp")
        self.user: dict[str, Any] = {
            "name_id": "ann@corp.example",
            "attributes": {
                "email": ["ann@corp.example"],
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": ["Ann Corp"],
                "groups": ["engineering", "corp-admins"],
            },
        }
        self.authn_requests: list[dict[str, Any]] = []
        self.logout_requests: list[dict[str, Any]] = []
        # Single logout: "Success", or another SAML status code the IdP answers LogoutRequests with.
        self.logout_status: str | None = None
        # How the LogoutResponse goes back: "redirect" (query-signed) or "post" (XML-signed, auto-posted form).
        self.logout_binding = "redirect"
        self.encrypt = False
        # More of :meth:`response_xml`'s knobs for the Responses the SSO endpoints answer with.
        self.response_options: dict[str, Any] = {}
        self._dir = tempfile.mkdtemp(prefix="fake-idp-")
        for name, text in (("idp.key", self.key_pem), ("idp.crt", self.cert_pem)):
            with open(os.path.join(self._dir, name), "w") as handle:
                handle.write(text)
        sso = [(f"{self.url}/sso/post", BINDING_HTTP_POST)]
        if not post_only:
            sso.insert(0, (f"{self.url}/sso/redirect", BINDING_HTTP_REDIRECT))
        config = IdPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "xmlsec_binary": XMLSEC,
                "key_file": os.path.join(self._dir, "idp.key"),
                "cert_file": os.path.join(self._dir, "idp.crt"),
                "metadata": {"inline": [sp_metadata(sp_entity_id, acs_url, sp_cert_pem)]},
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": sso,
                            "single_logout_service": [(f"{self.url}/slo", BINDING_HTTP_REDIRECT)],
                        },
                        "want_authn_requests_signed": True,
                        "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": "unspecified"}},
                    }
                },
                "allow_unknown_attributes": True,
            }
        )
        self.server = Server(config=config)

    def metadata_xml(self) -> str:
        return str(entity_descriptor(self.server.config))

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metadata", self.metadata)
        app.router.add_get("/sso/redirect", self.sso_redirect)
        app.router.add_post("/sso/post", self.sso_post)
        app.router.add_get("/slo", self.slo)
        return app

    async def slo(self, request: web.Request) -> web.Response:
        """The SP's LogoutRequest (signature checked against the SP certificate); answered with a signed
        LogoutResponse back to the SP's SingleLogoutService."""
        query = request.query
        try:
            parsed = self.server.parse_logout_request(
                query.get("SAMLRequest", ""),
                BINDING_HTTP_REDIRECT,
                relay_state=query.get("RelayState"),
                sigalg=query.get("SigAlg"),
                signature=query.get("Signature"),
            )
        except Exception as exc:  # pysaml2 refuses a bad or badly signed request by raising
            return web.Response(text=f"refused: {type(exc).__name__}", status=400)
        message = parsed.message
        self.logout_requests.append(
            {
                "id": message.id,
                "name_id": message.name_id.text if message.name_id is not None else None,
                "session_index": [si.text for si in message.session_index or []],
                "issuer": message.issuer.text if message.issuer is not None else None,
                "signed": "Signature" in query,
            }
        )
        status = None
        if self.logout_status is not None:
            from saml2.samlp import Status, StatusCode

            status = Status(status_code=StatusCode(value=self.logout_status))
        if self.logout_binding == "post":
            signed = self.server.create_logout_response(
                message, [BINDING_HTTP_POST], status=status, sign=True, sign_alg=SIG_RSA_SHA256,
                digest_alg=DIGEST_SHA256,
            )  # fmt: skip
            encoded = base64.b64encode(str(signed).encode()).decode()
            page = (
                f'<html><body onload="document.forms[0].submit()"><form method="post" '
                f'action="{html.escape(slo_of(self.acs_url))}">'
                f'<input type="hidden" name="SAMLResponse" value="{html.escape(encoded)}">'
                f'<input type="hidden" name="RelayState" value="{html.escape(query.get("RelayState", ""))}">'
                "</form></body></html>"
            )
            return web.Response(text=page, content_type="text/html")
        response = self.server.create_logout_response(message, [BINDING_HTTP_REDIRECT], status=status, sign=False)
        info = self.server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(response),
            slo_of(self.acs_url),
            query.get("RelayState", ""),
            response=True,
            sign=True,
            sigalg=SIG_RSA_SHA256,
        )
        raise web.HTTPFound(dict(info["headers"])["Location"])

    def logout_request_url(self, name_id: str, session_index: str | None, *, sign: bool = True) -> str:
        """An IdP-initiated LogoutRequest to the SP, HTTP-Redirect binding (query-signed unless ``sign`` is
        false)."""
        from saml2.time_util import in_a_while

        _, request = self.server.create_logout_request(
            slo_of(self.acs_url),
            self.sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id),
            session_indexes=[session_index] if session_index else None,
            sign=False,
            expire=in_a_while(minutes=5),
        )
        info = self.server.apply_binding(
            BINDING_HTTP_REDIRECT,
            str(request),
            slo_of(self.acs_url),
            "idp-relay",
            sign=sign,
            sigalg=SIG_RSA_SHA256 if sign else None,
        )
        return str(dict(info["headers"])["Location"])

    async def metadata(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metadata_xml(), content_type="application/samlmetadata+xml")

    async def sso_redirect(self, request: web.Request) -> web.Response:
        query = request.query
        parsed = self.server.parse_authn_request(
            query.get("SAMLRequest", ""),
            BINDING_HTTP_REDIRECT,
            relay_state=query.get("RelayState"),
            sigalg=query.get("SigAlg"),
            signature=query.get("Signature"),
        )
        return self._answer(parsed, query.get("RelayState", ""), signed_query="Signature" in query)

    async def sso_post(self, request: web.Request) -> web.Response:
        form = await request.post()
        parsed = self.server.parse_authn_request(str(form.get("SAMLRequest", "")), BINDING_HTTP_POST)
        return self._answer(parsed, str(form.get("RelayState", "")), signed_query=False)

    def _answer(self, parsed: Any, relay_state: str, *, signed_query: bool) -> web.Response:
        message = parsed.message
        self.authn_requests.append(
            {
                "id": message.id,
                "acs": message.assertion_consumer_service_url,
                "issuer": message.issuer.text if message.issuer is not None else None,
                "signed": signed_query or message.signature is not None,
                "relay_state": relay_state,
                "force_authn": message.force_authn,
            }
        )
        saml_response = self.response(message.id, encrypt=self.encrypt, **self.response_options)
        return web.Response(text=self.post_form(saml_response, relay_state), content_type="text/html")

    def post_form(self, saml_response: str, relay_state: str) -> str:
        return (
            f'<html><body onload="document.forms[0].submit()"><form method="post" action="{html.escape(self.acs_url)}">'
            f'<input type="hidden" name="SAMLResponse" value="{html.escape(saml_response)}">'
            f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">'
            "</form></body></html>"
        )

    # --- building Responses -----------------------------------------------------------------------------

    def response_xml(
        self,
        in_response_to: str | None,
        *,
        destination: str | None = None,
        audience: str | None = None,
        recipient: str | None = None,
        name_id: str | None = None,
        lifetime: int = 300,
        not_before_offset: int = -60,
        sign_assertion: bool = True,
        sign_response: bool = False,
        encrypt: bool = False,
        attributes: dict[str, list[str]] | None = None,
        conditions_expiry: bool = True,
        bearer_lifetime: int | None = None,
        edit: Callable[[Any, Any], None] | None = None,
    ) -> str:
        """A Response as XML text, changed as asked before it is signed (and encrypted). ``bearer_lifetime``
        sets the SubjectConfirmationData's NotOnOrAfter apart from the Conditions' (0: left out), and
        ``conditions_expiry`` false leaves the Conditions' NotOnOrAfter out. ``edit(response, assertion)`` changes
        pysaml2's objects in any other way, still before signing."""
        destination = self.acs_url if destination is None else destination
        xml = self.server.create_authn_response(
            identity={},
            in_response_to=in_response_to,
            destination=destination,
            sp_entity_id=self.sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id or self.user["name_id"]),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_response=False,
            sign_assertion=False,
        )
        response = samlp.response_from_string(str(xml))
        assertion = response.assertion[0] if isinstance(response.assertion, list) else response.assertion
        values = attributes if attributes is not None else self.user["attributes"]
        assertion.attribute_statement = [
            AttributeStatement(
                attribute=[
                    Attribute(
                        name=name,
                        name_format=NAME_FORMAT_UNSPECIFIED,
                        attribute_value=[AttributeValue(text=value) for value in given],
                    )
                    for name, given in values.items()
                ]
            )
        ]
        now = time.time()
        conditions = assertion.conditions
        conditions.not_before = instant(time_stamp=int(now + not_before_offset))
        conditions.not_on_or_after = instant(time_stamp=int(now + lifetime)) if conditions_expiry else None
        if audience is not None:
            conditions.audience_restriction[0].audience[0].text = audience
        for confirmation in assertion.subject.subject_confirmation:
            data = confirmation.subject_confirmation_data
            bearer = lifetime if bearer_lifetime is None else bearer_lifetime
            data.not_on_or_after = instant(time_stamp=int(now + bearer)) if bearer else None
            if recipient is not None:
                data.recipient = recipient
            if in_response_to is None:
                data.in_response_to = None
        if destination == "":
            response.destination = None
        if in_response_to is None:
            response.in_response_to = None
        if edit is not None:
            edit(response, assertion)
        if sign_assertion:
            assertion.signature = pre_signature_part(
                assertion.id, self.server.sec.my_cert, 1, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
            )
        if sign_response and not encrypt:
            response.signature = pre_signature_part(
                response.id, self.server.sec.my_cert, 2, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
            )
        if encrypt:
            # As pysaml2's IdP does it: the assertion moves into EncryptedAssertion with its namespaces declared
            # on itself, so that once decrypted alone it still parses.
            tag = assertion._to_element_tree().tag
            text = pre_encrypt_assertion(
                response
            ).get_xml_string_with_self_contained_assertion_within_encrypted_assertion(tag)
        else:
            text = str(response)
        if sign_assertion:
            text = self.server.sec.sign_statement(text, ASSERTION, node_id=assertion.id)
        if encrypt:
            encrypted = self.server._encrypt_assertion(self.sp_cert_pem, self.sp_entity_id, text)
            text = str(encrypted)
        if sign_response and not encrypt:
            text = self.server.sec.sign_statement(text, RESPONSE, node_id=response.id)
        return text

    def response(self, in_response_to: str | None, **options: Any) -> str:
        """A base64 SAMLResponse, as the HTTP-POST binding carries it."""
        return base64.b64encode(self.response_xml(in_response_to, **options).encode()).decode()


def encode(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def decode(saml_response: str) -> str:
    return base64.b64decode(saml_response).decode()


def assertion_id(xml: str) -> str:
    match = re.search(r"<(?:\w+:)?Assertion[^>]*\sID=\"([^\"]+)\"", xml)
    assert match, xml[:500]
    return match.group(1)


__all__ = ["FakeSamlIdP", "assertion_id", "decode", "encode", "sp_metadata"]
