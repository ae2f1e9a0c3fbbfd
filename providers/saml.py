"""SAML 2.0 service provider (Web Browser SSO profile) on pysaml2.

What Cognito's SAML ProviderDetails mean here: ``MetadataFile`` (inline XML) or ``MetadataURL`` (fetched) name
the IdP; ``RequestSigningAlgorithm: rsa-sha256`` signs our AuthnRequests (HTTP-Redirect binding: the query
signature of SAML Bindings §3.4.4.1; HTTP-POST: an enveloped XML signature); ``EncryptedResponses: true``
publishes our encryption certificate and refuses plaintext assertions; ``IDPInit: true`` admits IdP-initiated
responses (no InResponseTo); ``IDPSignout`` is recorded.

Checks on every Response (SAML Core §2, Profiles §4.1.4.3), by pysaml2 and then again here on the parsed result:
the Response holds exactly one assertion, plain or encrypted (Profiles §4.1.4.2), which is what every check, the
attributes, the NameID and the one-use marker are taken from; the assertion is signed by a key in the IdP's
metadata (a signature on the Response alone is not enough when it does not cover the assertion; pysaml2 verifies
each signature against the node its Reference names, which is what defeats signature wrapping); the Response's and
the assertion's Issuer are the IdP the metadata names first; the Response's Destination and (at least one) bearer
SubjectConfirmation's Recipient are our ACS URL; every AudienceRestriction names our entity id; InResponseTo is the
request we sent; the Conditions' NotBefore / NotOnOrAfter hold (60 s of clock skew); and the assertion's ID has not
been seen before (the store's one-use marker, shared by every process). XML is parsed with defusedxml (no DTDs, no
entities).

pysaml2 shells out to xmlsec1 and parses XML synchronously; every call to it runs in the executor.

Metadata from ``MetadataURL`` is read again every ``METADATA_REFRESH_SECONDS``, or sooner when its
``validUntil`` (SAML Metadata §2.3.1) comes first (Cognito refreshes it every 6 hours or before it expires), and
at once -- at most every ``METADATA_RETRY_SECONDS`` -- when a Response does not verify with what is known, as when
the IdP rolls its signing certificate. One refresh at a time per provider; others wait for it. A fetch that
fails, or whose metadata does not parse, names no IdP, has expired (validUntil) or holds no unexpired signing
certificate, keeps the old metadata (and is logged). Each process keeps its own copy: N workers read the URL at
most N times per interval.

Cognito's "Things to know about SAML IdPs": the signing certificate in the metadata must not be expired when the
provider is configured, and no signing certificate may be longer than 4096 characters; CreateIdentityProvider /
UpdateIdentityProvider refuse such a MetadataFile (InvalidParameterException).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import datetime
import os
import tempfile
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import structlog
from cryptography import x509
from defusedxml import ElementTree as SafeElementTree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, time_util
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED, NameID
from saml2.samlp import STATUS_SUCCESS
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from providers.base import (
    METADATA_REFRESH_SECONDS,
    METADATA_RETRY_SECONDS,
    UPSTREAM_TIMEOUT,
    Identity,
    ProviderConfigError,
    SamlConnector,
    SamlRequest,
    UpstreamError,
)
from providers.oauth2 import check_url

if TYPE_CHECKING:
    # saml2.client and saml2.sigver build pysaml2's XML schema validators at import (most of a second of CPU):
    # they are imported where a SAML provider is first used, not by every process that starts.
    from saml2.client import Saml2Client

__all__ = ["LogoutRequestInfo", "SAMLConnector", "cognito_sp_entity_id", "slo_url"]

XMLSEC_BINARY = os.environ.get("GATEHOUSE_XMLSEC1", "/usr/bin/xmlsec1")
CLOCK_SKEW_SECONDS = 60
# How old an IdP-initiated LogoutRequest may be (by its IssueInstant) and still be taken: its ID is remembered
# for as long, so a replay is refused whether or not the IdP set a NotOnOrAfter.
LOGOUT_REQUEST_SECONDS = 600
MAX_SAML_RESPONSE_BYTES = 512 * 1024
# Cognito's one RequestSigningAlgorithm: requests are never signed with SHA-1 (a configured "rsa-sha1" is refused).
_SIG_ALGS = {"rsa-sha256": SIG_RSA_SHA256}
Binding = Literal["redirect", "post"]
_BINDINGS = {"redirect": BINDING_HTTP_REDIRECT, "post": BINDING_HTTP_POST}
_BOOLEAN_KEYS = ("IDPInit", "IDPSignout", "EncryptedResponses")
# What the metadata's endpoints fill in (Describe shows them): read from the metadata, never taken as given.
_ENDPOINT_KEYS = ("SSORedirectBindingURI", "SSOPostBindingURI", "SLORedirectBindingURI", "SLOPostBindingURI")
# Cognito: "Each signing certificate must not be longer than 4,096 characters."
MAX_SIGNING_CERTIFICATE_CHARS = 4096
# pysaml2 clients kept per provider, one per ACS URL (Gatehouse's own and each pool domain's, as addressed): the
# least recently used goes first, so requests naming a domain with one port after another cannot grow the cache.
MAX_CLIENTS = 16
_log = structlog.get_logger("gatehouse.providers.saml")


def cognito_sp_entity_id(pool_id: str) -> str:
    """Cognito's SP entity id for a pool, which IdPs are configured with."""
    return f"urn:amazon:cognito:sp:{pool_id}"


def slo_url(acs_url: str) -> str:
    """Our single logout endpoint (``/saml2/logout``), beside the ACS (``/saml2/idpresponse``)."""
    return acs_url.rsplit("/saml2/idpresponse", 1)[0] + "/saml2/logout"


@dataclass(frozen=True)
class LogoutRequestInfo:
    """A verified IdP-initiated LogoutRequest: whom it signs out, and where our answer goes."""

    issuer: str
    name_id: str
    session_indexes: tuple[str, ...]
    # The signed LogoutResponse: in the URL (HTTP-Redirect binding), or, when the IdP's SingleLogoutService
    # takes HTTP-POST only, in ``response_form``, which the browser posts to ``response_url``.
    response_url: str
    response_form: Mapping[str, str] | None = None


def _flag(details: Mapping[str, str], key: str) -> bool:
    return details.get(key, "false").lower() == "true"


class SAMLConnector(SamlConnector):
    provider_type: ClassVar[str] = "SAML"

    @classmethod
    def complete_details(cls, details: Mapping[str, str]) -> dict[str, str]:
        completed = {k: v for k, v in details.items() if v is not None and k not in _ENDPOINT_KEYS}
        has_file, has_url = bool(completed.get("MetadataFile")), bool(completed.get("MetadataURL"))
        if has_file == has_url:
            raise ProviderConfigError("ProviderDetails needs exactly one of MetadataFile and MetadataURL.")
        check_url(completed, "MetadataURL")
        for key in _BOOLEAN_KEYS:
            if key in completed and completed[key].lower() not in ("true", "false"):
                raise ProviderConfigError(f"ProviderDetails {key} must be true or false.")
            if key in completed:
                completed[key] = completed[key].lower()
        algorithm = completed.get("RequestSigningAlgorithm")
        if algorithm is not None and algorithm not in _SIG_ALGS:
            raise ProviderConfigError("ProviderDetails RequestSigningAlgorithm must be rsa-sha256.")
        if has_file:
            endpoints = idp_endpoints(completed["MetadataFile"])
            check_signing_certificates(completed["MetadataFile"], every=True)
            completed.update(endpoints)
        return completed

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[tuple[str, str], Saml2Client] = {}
        self._lock = threading.Lock()
        self._workdir: str | None = None
        self._metadata: str | None = self.details.get("MetadataFile")
        # MetadataURL: when the metadata in hand was last fetched, and when a fetch was last tried (monotonic).
        self._fetched_at = 0.0
        self._refresh_due = 0.0
        self._tried_at = float("-inf")
        self._refreshing = asyncio.Lock()

    # --- configuration --------------------------------------------------------------------------------------

    async def _metadata_xml(self) -> str:
        """The IdP's metadata: the MetadataFile, or MetadataURL's as last fetched (read again when it is older
        than METADATA_REFRESH_SECONDS; a failed refresh keeps it)."""
        due = self._metadata is None or time.monotonic() > self._refresh_due
        # A due refresh already under way (perhaps waiting on a slow IdP): the metadata in hand serves meanwhile.
        busy = self._metadata is not None and self._refreshing.locked()
        if "MetadataURL" in self.details and due and not busy:
            await self._refresh(after_failure=False)
        if self._metadata is None:
            raise UpstreamError("metadata_unreachable", "no metadata")
        return self._metadata

    async def _refresh(self, *, after_failure: bool) -> bool:
        """Fetch MetadataURL again, one fetch at a time (waiters reuse its result); True if the metadata changed.

        ``after_failure``: a Response did not verify; fetched only if no fetch was tried in the last
        METADATA_RETRY_SECONDS. Without metadata in hand a failure raises; with it, the old metadata stays."""
        if "MetadataURL" not in self.details:
            return False
        async with self._refreshing:
            now = time.monotonic()
            if self._metadata is not None:
                # Tried lately (a failed fetch too: a hanging or broken IdP is not asked on every sign-in).
                if now - self._tried_at < METADATA_RETRY_SECONDS:
                    return False
                if not after_failure and now <= self._refresh_due:
                    return False  # another waiter's fetch just did it
            self._tried_at = now
            try:
                fetched = await self._fetch_metadata()
                valid_until = await self.context.run_blocking(_check_fetched, fetched)
            except UpstreamError as error:
                if self._metadata is None:
                    raise
                _log.warning(
                    "saml_metadata_refresh_failed", provider=self.name, reason=error.reason, detail=error.detail
                )
                return False
            self._fetched_at = time.monotonic()
            lifetime = METADATA_REFRESH_SECONDS
            if valid_until is not None:
                # Read again before it expires -- but never more often than the retry interval.
                lifetime = min(lifetime, max(valid_until - time.time(), METADATA_RETRY_SECONDS))
            self._refresh_due = self._fetched_at + lifetime
            if fetched == self._metadata:
                return False
            if self._metadata is not None:
                _log.info("saml_metadata_changed", provider=self.name)
            with self._lock:
                self._metadata = fetched
                self._clients.clear()  # clients of the old metadata may hold a retired certificate
            return True

    async def _fetch_metadata(self) -> str:
        url = self.details["MetadataURL"]
        try:
            # Bounded like every upstream request: a hanging IdP must not hold the sign-in for minutes.
            async with self.context.http.get(url, allow_redirects=False, timeout=UPSTREAM_TIMEOUT) as response:
                raw = await response.content.read(MAX_SAML_RESPONSE_BYTES + 1)
                status = response.status
        except Exception as exc:  # aiohttp's and the OS's errors alike: the IdP is unreachable
            raise UpstreamError("metadata_unreachable", type(exc).__name__) from exc
        if status != 200 or len(raw) > MAX_SAML_RESPONSE_BYTES:
            raise UpstreamError("metadata_unreachable", f"HTTP {status}")
        return raw.decode("utf-8", "replace")

    def _key_files(self) -> tuple[str, str]:
        if self.context.sp_key_pem is None or self.context.sp_cert_pem is None:
            raise UpstreamError("sp_key_missing", "no SAML SP key pair is configured")
        if self._workdir is None:
            # pysaml2 and xmlsec1 read keys from files; private to this process and user.
            self._workdir = tempfile.mkdtemp(prefix="gatehouse-saml-")
            for name, text in (("sp.key", self.context.sp_key_pem), ("sp.crt", self.context.sp_cert_pem)):
                fd = os.open(os.path.join(self._workdir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(text)
        return os.path.join(self._workdir, "sp.key"), os.path.join(self._workdir, "sp.crt")

    def _client(self, metadata: str, acs_url: str) -> Saml2Client:
        """One pysaml2 client per ACS URL and metadata (built in the executor: it parses metadata and keys); at
        most MAX_CLIENTS are kept."""
        with self._lock:
            client = self._clients.pop((acs_url, metadata), None)
            if client is not None:
                self._clients[(acs_url, metadata)] = client  # the most recently used, last
                return client
            key_file, cert_file = self._key_files()
            encrypted = _flag(self.details, "EncryptedResponses")
            config: dict[str, Any] = {
                "entityid": self.context.sp_entity_id,
                "xmlsec_binary": XMLSEC_BINARY,
                "key_file": key_file,
                "cert_file": cert_file,
                "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
                "metadata": {"inline": [metadata]},
                "accepted_time_diff": CLOCK_SKEW_SECONDS,
                "allow_unknown_attributes": True,
                "service": {
                    "sp": {
                        "endpoints": {
                            "assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)],
                            "single_logout_service": [
                                (slo_url(acs_url), BINDING_HTTP_REDIRECT),
                                (slo_url(acs_url), BINDING_HTTP_POST),
                            ],
                        },
                        "authn_requests_signed": "RequestSigningAlgorithm" in self.details,
                        "want_assertions_signed": True,
                        "want_response_signed": False,
                        "want_assertions_or_response_signed": True,
                        "allow_unsolicited": _flag(self.details, "IDPInit"),
                        "name_id_format": NAMEID_FORMAT_UNSPECIFIED,
                        "name_id_format_allow_create": True,
                        "requested_attribute_name_format": None,
                    }
                },
            }
            if encrypted:
                config["service"]["sp"]["want_assertions_encrypted"] = True
            from saml2.client import Saml2Client
            from saml2.config import SPConfig

            sp_config = SPConfig()
            try:
                sp_config.load(config)
            except Exception as exc:  # pysaml2 raises bare exceptions for unusable metadata
                raise UpstreamError("metadata_invalid", type(exc).__name__) from exc
            client = Saml2Client(config=sp_config)
            if not client.metadata.identity_providers():
                raise UpstreamError("metadata_invalid", "the metadata names no IdP")
            while len(self._clients) >= MAX_CLIENTS:
                del self._clients[next(iter(self._clients))]
            self._clients[(acs_url, metadata)] = client
            return client

    def _idp_entity_id(self, client: Saml2Client) -> str:
        return str(client.metadata.identity_providers()[0])

    async def idp_entity_id(self, *, acs_url: str) -> str:
        """The IdP's entity ID, as its metadata names it."""
        metadata = await self._metadata_xml()
        return await self.context.run_blocking(lambda: self._idp_entity_id(self._client(metadata, acs_url)))

    # --- AuthnRequest ------------------------------------------------------------------------------------

    async def authn_request(self, *, relay_state: str, acs_url: str, force_authn: bool = False) -> SamlRequest:
        metadata = await self._metadata_xml()
        return await self.context.run_blocking(self._authn_request, metadata, relay_state, acs_url, force_authn)

    def _authn_request(self, metadata: str, relay_state: str, acs_url: str, force_authn: bool) -> SamlRequest:
        client = self._client(metadata, acs_url)
        idp = self._idp_entity_id(client)
        # rsa-sha256 whenever signing is asked for (a provider stored before "rsa-sha1" was refused included).
        sign_alg = SIG_RSA_SHA256 if "RequestSigningAlgorithm" in self.details else None
        # Prefer HTTP-Redirect (Cognito's choice); HTTP-POST when that is all the IdP offers.
        binding: Literal["redirect", "post"] = "redirect"
        try:
            destination = client.sso_location(idp, BINDING_HTTP_REDIRECT)
        except Exception:  # pysaml2 raises a bare Exception when the binding is not offered
            destination = client.sso_location(idp, BINDING_HTTP_POST)
            binding = "post"
        if binding == "redirect":
            request_id, request = client.create_authn_request(
                destination,
                binding=BINDING_HTTP_POST,
                sign=False,
                nameid_format=NAMEID_FORMAT_UNSPECIFIED,
                force_authn=force_authn or None,
            )
            info = client.apply_binding(
                BINDING_HTTP_REDIRECT,
                str(request),
                destination,
                relay_state,
                sign=sign_alg is not None,
                sigalg=sign_alg,
            )
            location = dict(info["headers"])["Location"]
            return SamlRequest(request_id=str(request_id), binding="redirect", url=str(location))
        request_id, request = client.create_authn_request(
            destination,
            binding=BINDING_HTTP_POST,
            sign=sign_alg is not None,
            sign_alg=sign_alg,
            digest_alg=DIGEST_SHA256,
            nameid_format=NAMEID_FORMAT_UNSPECIFIED,
            force_authn=force_authn or None,
        )
        encoded = base64.b64encode(str(request).encode()).decode()
        return SamlRequest(
            request_id=str(request_id),
            binding="post",
            url=str(destination),
            form={"SAMLRequest": encoded, "RelayState": relay_state},
        )

    # --- Response ----------------------------------------------------------------------------------------

    async def complete(self, saml_response: str, *, expected_request_id: str | None, acs_url: str) -> Identity:
        if not isinstance(saml_response, str) or not saml_response or len(saml_response) > MAX_SAML_RESPONSE_BYTES:
            raise UpstreamError("saml_malformed", "no SAMLResponse")
        if expected_request_id is None and not _flag(self.details, "IDPInit"):
            raise UpstreamError("saml_unsolicited", "IdP-initiated sign-in is not enabled")
        metadata = await self._metadata_xml()
        try:
            identity, assertion_id, expires_at = await self.context.run_blocking(
                self._verify, metadata, saml_response, expected_request_id, acs_url
            )
        except UpstreamError as error:
            # pysaml2 refused it (a signature by a key the metadata does not hold, among others): the IdP may
            # have rolled its certificate. Verified once more only if the metadata read again is different.
            if error.reason != "saml_invalid" or not await self._refresh(after_failure=True):
                raise
            metadata = await self._metadata_xml()
            identity, assertion_id, expires_at = await self.context.run_blocking(
                self._verify, metadata, saml_response, expected_request_id, acs_url
            )
        if not await self.context.mark_once(f"saml:{self.context.sp_entity_id}:{assertion_id}", expires_at):
            raise UpstreamError("saml_replay", "the assertion was used before")
        return identity

    def _verify(
        self, metadata: str, saml_response: str, expected_request_id: str | None, acs_url: str
    ) -> tuple[Identity, str, float]:
        try:
            xml = base64.b64decode(saml_response, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise UpstreamError("saml_malformed", "not base64") from exc
        try:
            # defusedxml refuses DTDs, entity declarations and external references before pysaml2 sees it.
            root = SafeElementTree.fromstring(xml, forbid_dtd=True)
        except Exception as exc:  # defusedxml's DTDForbidden / EntitiesForbidden and ParseError alike
            raise UpstreamError("saml_malformed", type(exc).__name__) from exc
        # Before pysaml2 reads it: it lets one plain and several encrypted assertions through, each checked alone,
        # and reports a mix of them (the first one's content, the last one's NameID).
        if _assertion_count(root) != 1:
            raise UpstreamError("saml_assertion_count", "the response must hold exactly one assertion")
        client = self._client(metadata, acs_url)
        outstanding = {expected_request_id: acs_url} if expected_request_id else {}
        try:
            response = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST, outstanding=outstanding)
        except Exception as exc:  # pysaml2 signals every refusal (signature, time, status ...) by raising
            raise UpstreamError("saml_invalid", type(exc).__name__) from exc
        if response is None:
            raise UpstreamError("saml_invalid", "the response did not verify")
        plain = root.find(f"{_SAML}Assertion") is not None
        if _flag(self.details, "EncryptedResponses") and (plain or root.find(f"{_SAML}EncryptedAssertion") is None):
            raise UpstreamError("saml_not_encrypted", "the assertion was not encrypted")
        self._check(response, expected_request_id, acs_url, self._idp_entity_id(client))
        # One EncryptedAssertion may still decrypt to several: what pysaml2 read counts as well.
        if len(response.assertions) != 1:
            raise UpstreamError("saml_assertion_count", "the response must hold exactly one assertion")
        assertion = response.assertion
        # The checked assertion's own subject (pysaml2's response.name_id is whichever assertion it read last).
        name_id = assertion.subject.name_id if assertion.subject is not None else None
        if name_id is None and assertion.subject is not None and assertion.subject.encrypted_id is not None:
            # An EncryptedID, which pysaml2 decrypts into response.name_id: the one assertion's own (checked above).
            name_id = response.name_id
        if name_id is None or not (name_id.text or "").strip():
            raise UpstreamError("saml_invalid", "no NameID")
        attributes = _attributes(assertion)
        claims: dict[str, Any] = {**attributes, "NameID": name_id.text.strip()}
        if name_id.format:
            claims["NameIDFormat"] = name_id.format
        session_index = _session_index(assertion)
        if session_index:
            # Single logout names the IdP session it ends (SAML Profiles §4.4.4.1).
            claims["SessionIndex"] = session_index
        # The signed assertion's Issuer (checked above to be the IdP): the Response's may be absent when the
        # Response itself is not signed (SAML Core §3.2.2, Profiles §4.1.4.2), and pysaml2 then reports "".
        issuer = (assertion.issuer.text or "").strip()
        conditions = assertion.conditions
        expires_at = _epoch(conditions.not_on_or_after) if conditions is not None and conditions.not_on_or_after else 0
        # The id is remembered for as long as any part of the assertion would still be accepted: the bearer
        # confirmation's NotOnOrAfter may outlast the Conditions' (or stand alone).
        for confirmation in assertion.subject.subject_confirmation if assertion.subject is not None else []:
            data = confirmation.subject_confirmation_data
            if data is not None and data.not_on_or_after:
                expires_at = max(expires_at, _epoch(data.not_on_or_after))
        expires_at = max(expires_at, _now() + 300) + CLOCK_SKEW_SECONDS
        email = _first(
            attributes, "email", "mail", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
        )
        name = _first(attributes, "name", "displayName", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
        groups = attributes.get("groups") or attributes.get("http://schemas.xmlsoap.org/claims/Group") or []
        identity = Identity(
            provider=self.name,
            provider_type=self.provider_type,
            issuer=issuer,
            subject=name_id.text.strip(),
            email=email,
            name=name,
            groups=tuple(groups if isinstance(groups, list) else [groups]),
            claims=claims,
        )
        return identity, str(assertion.id), float(expires_at)

    def _check(self, response: Any, expected_request_id: str | None, acs_url: str, idp: str) -> None:
        """What pysaml2 lets pass that Web Browser SSO requires (defence in depth on its parsed result)."""
        message = response.response
        if message.destination is not None and message.destination != acs_url:
            raise UpstreamError("saml_destination")
        if message.signature is not None and message.destination is None:
            # SAML Bindings §3.5.5.2: a signed Response sent by POST must carry its Destination.
            raise UpstreamError("saml_destination")
        if expected_request_id is not None and message.in_response_to != expected_request_id:
            raise UpstreamError("saml_in_response_to")
        if expected_request_id is None and message.in_response_to:
            raise UpstreamError("saml_in_response_to")
        assertion = response.assertion
        if assertion is None or (assertion.signature is None and message.signature is None):
            raise UpstreamError("saml_unsigned")
        # Profiles §4.1.4.2: the Issuers are the IdP this provider names. pysaml2 checks the signature with the
        # keys of whichever entity the assertion's Issuer names in the metadata, and metadata may name several
        # IdPs (an EntitiesDescriptor): another of them must not sign in users of this provider.
        if message.issuer is not None and (message.issuer.text or "").strip() != idp:
            raise UpstreamError("saml_issuer")
        if assertion.issuer is None or (assertion.issuer.text or "").strip() != idp:
            raise UpstreamError("saml_issuer")
        conditions = assertion.conditions
        # SAML Core §2.5.1.4: the audiences of one AudienceRestriction are alternatives, but several
        # AudienceRestrictions each hold: we must be named in every one (and Profiles §4.1.4.2 wants at least one).
        restrictions = conditions.audience_restriction if conditions is not None else []
        if not restrictions or any(
            self.context.sp_entity_id not in [(a.text or "").strip() for a in restriction.audience]
            for restriction in restrictions
        ):
            raise UpstreamError("saml_audience")
        now = _now()
        if conditions is not None:
            if conditions.not_before and _epoch(conditions.not_before) - CLOCK_SKEW_SECONDS > now:
                raise UpstreamError("saml_not_yet_valid")
            if conditions.not_on_or_after and _epoch(conditions.not_on_or_after) + CLOCK_SKEW_SECONDS <= now:
                raise UpstreamError("saml_expired")
        bearer = [
            sc.subject_confirmation_data
            for sc in (assertion.subject.subject_confirmation if assertion.subject is not None else [])
            if sc.method == "urn:oasis:names:tc:SAML:2.0:cm:bearer" and sc.subject_confirmation_data is not None
        ]
        # Profiles §4.1.4.2: at least one bearer confirmation must be for us (others may name other SPs).
        refusal: UpstreamError | None = UpstreamError("saml_subject_confirmation")
        for data in bearer:
            refusal = _bearer_refusal(data, acs_url, expected_request_id, now)
            if refusal is None:
                break
        if refusal is not None:
            raise refusal

    # --- single logout (SAML Profiles §4.4, HTTP-Redirect binding) -------------------------------------------

    async def logout_request(
        self,
        *,
        name_id: str,
        name_id_format: str | None,
        session_index: str | None,
        relay_state: str,
        acs_url: str,
    ) -> SamlRequest | None:
        """A signed LogoutRequest for the IdP's SingleLogoutService (None when its metadata names none)."""
        metadata = await self._metadata_xml()
        return await self.context.run_blocking(
            self._logout_request, metadata, name_id, name_id_format, session_index, relay_state, acs_url
        )

    def _logout_request(
        self,
        metadata: str,
        name_id: str,
        name_id_format: str | None,
        session_index: str | None,
        relay_state: str,
        acs_url: str,
    ) -> SamlRequest | None:
        client = self._client(metadata, acs_url)
        idp = self._idp_entity_id(client)
        try:
            destination = client.metadata.single_logout_service(idp, BINDING_HTTP_REDIRECT, "idpsso")[0]["location"]
        except Exception:  # pysaml2 raises bare exceptions when the IdP offers no such endpoint
            return None
        request_id, request = client.create_logout_request(
            destination,
            idp,
            name_id=NameID(text=name_id, format=name_id_format),
            session_indexes=[session_index] if session_index else None,
            sign=False,
            expire=time_util.in_a_while(minutes=5),
        )
        # SAML Profiles §4.4.3.1: the request must be authenticated; the redirect binding signs the query.
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT, str(request), destination, relay_state, sign=True, sigalg=SIG_RSA_SHA256
        )
        return SamlRequest(request_id=str(request_id), binding="redirect", url=str(dict(info["headers"])["Location"]))

    def _signed_logout_message(
        self, metadata: str, params: dict[str, str], field: str, binding: Binding, acs_url: str
    ) -> tuple[Saml2Client, str, Any]:
        """A logout message the IdP sent (``field``: SAMLRequest or SAMLResponse), signed by it and parsed by
        pysaml2: (our client, the IdP's entity ID, what pysaml2 parsed); raises UpstreamError otherwise."""
        client = self._client(metadata, acs_url)
        idp = self._idp_entity_id(client)
        _require_signed(client, idp, params, field, binding)
        parse = client.parse_logout_request_response if field == "SAMLResponse" else client.parse_logout_request
        try:
            parsed = parse(params[field], _BINDINGS[binding])
        except Exception as exc:  # pysaml2 signals every refusal by raising
            raise UpstreamError("saml_logout_invalid", type(exc).__name__) from exc
        if parsed is None:
            raise UpstreamError("saml_logout_invalid")
        return client, idp, parsed

    async def check_logout_response(
        self, params: Mapping[str, str], *, binding: Binding, expected_request_id: str, acs_url: str
    ) -> None:
        """The IdP's LogoutResponse to our request (HTTP-POST, as Cognito asks of IdPs, or HTTP-Redirect):
        signed by the IdP, in response to it, and successful; raises UpstreamError otherwise."""
        metadata = await self._metadata_xml()
        await self.context.run_blocking(
            self._check_logout_response, metadata, dict(params), binding, expected_request_id, acs_url
        )

    def _check_logout_response(
        self, metadata: str, params: dict[str, str], binding: Binding, expected_request_id: str, acs_url: str
    ) -> None:
        _, idp, response = self._signed_logout_message(metadata, params, "SAMLResponse", binding, acs_url)
        message = response.response
        if message.in_response_to != expected_request_id:
            raise UpstreamError("saml_in_response_to")
        if message.issuer is None or (message.issuer.text or "").strip() != idp:
            raise UpstreamError("saml_logout_issuer")
        if message.destination is not None and message.destination != slo_url(acs_url):
            raise UpstreamError("saml_destination")
        if message.status is None or message.status.status_code.value != STATUS_SUCCESS:
            raise UpstreamError("saml_logout_failed", "the IdP did not sign the user out")

    async def handle_logout_request(
        self, params: Mapping[str, str], *, binding: Binding, acs_url: str
    ) -> LogoutRequestInfo:
        """An IdP-initiated LogoutRequest: verified, with our signed success answer (HTTP-Redirect). Each is
        taken once: its ID is remembered (by issuer) until it could no longer be taken anyway, and a request
        seen before is refused (SAML Core §3.7.3.1 has the recipient process a request once; Profiles §4.4.4.1
        asks for the same protection as for any message), as are requests too old to be remembered. Once in
        all: not once per pool, since every pool trusting the issuer may be asked to take the same request."""
        metadata = await self._metadata_xml()
        info, request_id, expires_at = await self.context.run_blocking(
            self._handle_logout_request, metadata, dict(params), binding, acs_url
        )
        # Keyed by the IdP alone: a request another pool (same IdP) has taken is a replay here too.
        key = f"saml-logout:{info.issuer}:{request_id}"
        if not await self.context.mark_once(key, expires_at):
            raise UpstreamError("saml_replay", "the LogoutRequest was used before")
        return info

    def _handle_logout_request(
        self, metadata: str, params: dict[str, str], binding: Binding, acs_url: str
    ) -> tuple[LogoutRequestInfo, str, float]:
        """The verified request, its ID, and until when that ID must be remembered."""
        client, idp, parsed = self._signed_logout_message(metadata, params, "SAMLRequest", binding, acs_url)
        message = parsed.message
        issuer = (message.issuer.text or "").strip() if message.issuer is not None else ""
        if issuer != idp:
            raise UpstreamError("saml_logout_issuer")
        if message.destination is not None and message.destination != slo_url(acs_url):
            raise UpstreamError("saml_destination")
        if not message.id:
            raise UpstreamError("saml_logout_invalid", "no ID")
        now = _now()
        try:
            issued = _epoch(message.issue_instant)
            until = _epoch(message.not_on_or_after) if message.not_on_or_after else None
        except (AttributeError, TypeError, ValueError) as exc:  # pysaml2's str_to_time on a malformed instant
            raise UpstreamError("saml_logout_invalid", "bad IssueInstant or NotOnOrAfter") from exc
        if until is not None and until + CLOCK_SKEW_SECONDS <= now:
            raise UpstreamError("saml_expired")
        if issued - CLOCK_SKEW_SECONDS > now or issued + LOGOUT_REQUEST_SECONDS + CLOCK_SKEW_SECONDS <= now:
            raise UpstreamError("saml_expired", "IssueInstant out of range")
        # Past either bound the request is refused above, so its ID need not be kept longer.
        expires_at = issued + LOGOUT_REQUEST_SECONDS
        if until is not None:
            expires_at = min(expires_at, until)
        expires_at += CLOCK_SKEW_SECONDS
        if message.name_id is None or not (message.name_id.text or "").strip():
            raise UpstreamError("saml_logout_invalid", "no NameID")
        indexes = tuple((si.text or "").strip() for si in message.session_index or [] if si.text)
        name_id = message.name_id.text.strip()
        relay_state = params.get("RelayState", "")
        answer_binding, destination = _logout_endpoint(client, idp)
        location = str(destination.get("response_location") or destination["location"])
        if answer_binding == BINDING_HTTP_POST:
            # SAML Bindings §3.5.5.2: by POST the LogoutResponse carries an enveloped signature and its Destination.
            signed = client.create_logout_response(
                message, [BINDING_HTTP_POST], sign=True, sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256
            )
            form = {"SAMLResponse": base64.b64encode(str(signed).encode()).decode()}
            if relay_state:
                form["RelayState"] = relay_state
            return LogoutRequestInfo(issuer, name_id, indexes, location, form), str(message.id), expires_at
        response = client.create_logout_response(message, [BINDING_HTTP_REDIRECT], sign=False)
        info = client.apply_binding(
            BINDING_HTTP_REDIRECT, str(response), location, relay_state, response=True, sign=True, sigalg=SIG_RSA_SHA256
        )
        verified = LogoutRequestInfo(issuer, name_id, indexes, str(dict(info["headers"])["Location"]))
        return verified, str(message.id), expires_at

    async def sp_metadata(self, *, acs_url: str) -> str:
        from saml2.metadata import entity_descriptor

        metadata = await self._metadata_xml()

        def build() -> str:
            client = self._client(metadata, acs_url)
            return str(entity_descriptor(client.config))

        return await self.context.run_blocking(build)


# A LogoutRequest read before it is verified is a small message: anything larger (or inflating to more) is not one.
_MAX_LOGOUT_REQUEST_BYTES = 64 * 1024


def logout_request_parties(params: Mapping[str, str], binding: Binding) -> tuple[str | None, str | None]:
    """The Issuer and the NameID's SPNameQualifier of an IdP's LogoutRequest, read *before* it is verified, and
    only to find which IdP's keys are to verify it: the IdP that says it sent it, and the SP (a pool's entity ID,
    SAML Core §2.2.2) whose NameID it names. (None, None) for anything that is not such a message."""
    raw = params.get("SAMLRequest", "")
    if not raw or len(raw) > 2 * _MAX_LOGOUT_REQUEST_BYTES:
        return None, None
    try:
        data = base64.b64decode(raw)
        if binding == "redirect":  # SAML Bindings §3.4.4.1: DEFLATE (RFC 1951), then base64
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            data = inflater.decompress(data, _MAX_LOGOUT_REQUEST_BYTES)
            if inflater.unconsumed_tail:
                return None, None
        root = SafeElementTree.fromstring(data, forbid_dtd=True)
    except Exception:  # binascii, zlib and XML errors, and defusedxml's refusals alike
        return None, None
    issuer = root.find(f"{_SAML}Issuer")
    name_id = root.find(f"{_SAML}NameID")
    qualifier = name_id.get("SPNameQualifier") if name_id is not None else None
    return ((issuer.text or "").strip() if issuer is not None else None), qualifier


def _require_signed(client: Saml2Client, idp: str, params: Mapping[str, str], kind: str, binding: Binding) -> None:
    """A logout message signed by one of the IdP's signing keys from its metadata; unsigned ones are refused
    (anyone could send them). HTTP-Redirect: the query signature (SAML Bindings §3.4.4.1); HTTP-POST: an
    enveloped XML signature on the message itself (§3.5.5.2)."""
    if not params.get(kind):
        raise UpstreamError("saml_logout_invalid")
    if len(params[kind]) > MAX_SAML_RESPONSE_BYTES:
        raise UpstreamError("saml_malformed")
    if binding == "post":
        try:
            xml = base64.b64decode(params[kind], validate=False)
            root = SafeElementTree.fromstring(xml, forbid_dtd=True)
        except Exception as exc:  # bad base64, not XML, or defusedxml's refusals
            raise UpstreamError("saml_malformed", type(exc).__name__) from exc
        if root.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is None:
            raise UpstreamError("saml_logout_unsigned")
        check = (
            client.sec.correctly_signed_logout_response
            if kind == "SAMLResponse"
            else client.sec.correctly_signed_logout_request
        )
        try:
            check(xml.decode(), must=True)
        except Exception as exc:  # pysaml2's SignatureError and xmlsec1 failures alike
            raise UpstreamError("saml_logout_signature", type(exc).__name__) from exc
        return
    if not params.get("Signature") or not params.get("SigAlg"):
        raise UpstreamError("saml_logout_unsigned")
    message = {k: params[k] for k in (kind, "RelayState", "SigAlg", "Signature") if k in params}
    from saml2.sigver import verify_redirect_signature

    try:
        certs = client.metadata.certs(idp, "idpsso", "signing")
        verified = any(verify_redirect_signature(message, client.sec.sec_backend, cert) for _, cert in certs)
    except Exception as exc:  # unsupported algorithm, bad base64, a key that does not load
        raise UpstreamError("saml_logout_signature", type(exc).__name__) from exc
    if not verified:
        raise UpstreamError("saml_logout_signature")


def _logout_endpoint(client: Saml2Client, idp: str) -> tuple[str, Mapping[str, Any]]:
    """Where the IdP takes our LogoutResponse: its SingleLogoutService by HTTP-Redirect, else by HTTP-POST (SAML
    Profiles §4.4.3.5: either binding). UpstreamError when its metadata names neither."""
    for binding in (BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        try:
            found = client.metadata.single_logout_service(idp, binding, "idpsso")
        except Exception:  # pysaml2 raises bare exceptions when the IdP offers no such endpoint
            continue
        if found:
            return binding, found[0]
    raise UpstreamError("saml_logout_no_endpoint", "the IdP's metadata names no SingleLogoutService")


def _bearer_refusal(data: Any, acs_url: str, expected_request_id: str | None, now: float) -> UpstreamError | None:
    """Why a bearer SubjectConfirmationData does not confirm the subject to us (None: it does)."""
    if data.recipient != acs_url:
        return UpstreamError("saml_recipient")
    if not data.not_on_or_after:
        # Profiles §4.1.4.2: bearer SubjectConfirmationData MUST bound the delivery window.
        return UpstreamError("saml_subject_confirmation", "no NotOnOrAfter")
    if data.in_response_to not in (None, expected_request_id):
        # Another request's (or, unsolicited, any request's: Profiles §4.1.4.2 binds such an assertion to the
        # request it answers, whose one-use state and browser an unsolicited Response would skip).
        return UpstreamError("saml_in_response_to")
    if _epoch(data.not_on_or_after) + CLOCK_SKEW_SECONDS <= now:
        return UpstreamError("saml_expired")
    return None


def _session_index(assertion: Any) -> str | None:
    for statement in assertion.authn_statement or []:
        if statement.session_index:
            return str(statement.session_index)
    return None


def _now() -> float:
    return float(calendar.timegm(time_util.time_in_a_while().timetuple()))


def _epoch(instant: str) -> float:
    return float(calendar.timegm(time_util.str_to_time(instant)))


def _attributes(assertion: Any) -> dict[str, Any]:
    """The assertion's attributes by their Name as sent (Cognito's AttributeMapping names them so); one value
    as a string, several as a list."""
    found: dict[str, Any] = {}
    for statement in assertion.attribute_statement or []:
        for attribute in statement.attribute or []:
            values = [str(v.text).strip() for v in attribute.attribute_value or [] if v.text is not None]
            if not attribute.name or not values:
                continue
            found[attribute.name] = values[0] if len(values) == 1 else values
            if attribute.friendly_name and attribute.friendly_name not in found:
                found[attribute.friendly_name] = found[attribute.name]
    return found


def _first(attributes: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value:
            return value
    return None


_MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
_SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"


def _assertion_count(root: Any) -> int:
    """How many assertions a Response (parsed XML) carries: its Assertion and EncryptedAssertion children.

    Web Browser SSO signs in with one bearer assertion (SAML Profiles §4.1.4.2), as does Cognito; a Response with
    more is refused whole, whatever they say, since a genuine (even used) assertion of another user could ride
    along with the sender's own."""
    return len(root.findall(f"{_SAML}Assertion")) + len(root.findall(f"{_SAML}EncryptedAssertion"))


def idp_endpoints(metadata: str) -> dict[str, str]:
    """SSORedirectBindingURI / SLORedirectBindingURI (what Cognito's Describe shows) from IdP metadata;
    refuses metadata that is not an IdP's (parsed with defusedxml)."""
    try:
        root = SafeElementTree.fromstring(metadata.encode(), forbid_dtd=True)
    except Exception as exc:  # ParseError and defusedxml's refusals alike
        raise ProviderConfigError("ProviderDetails MetadataFile is not well-formed SAML metadata.") from exc
    descriptors = root.findall(f".//{_MD}IDPSSODescriptor")
    if not descriptors:
        raise ProviderConfigError("ProviderDetails MetadataFile describes no IdP (no IDPSSODescriptor).")
    for descriptor in descriptors:
        for element in ("SingleSignOnService", "SingleLogoutService"):
            for service in descriptor.findall(f"{_MD}{element}"):
                for attribute in ("Location", "ResponseLocation"):
                    # The browser is sent (or posts a form) to these: a javascript: or data: URL would run on
                    # Gatehouse's origin, where every pool's pages live. Only absolute http(s) URLs are taken.
                    if attribute in service.attrib and not _is_web_url(service.attrib[attribute]):
                        raise ProviderConfigError(
                            f"The SAML metadata's {element} {attribute} must be an absolute http(s) URL."
                        )
    found: dict[str, str] = {}
    for element, key in (("SingleSignOnService", "SSO"), ("SingleLogoutService", "SLO")):
        for service in descriptors[0].findall(f"{_MD}{element}"):
            binding = service.get("Binding", "")
            if binding == BINDING_HTTP_REDIRECT:
                found[f"{key}RedirectBindingURI"] = service.get("Location", "")
            elif binding == BINDING_HTTP_POST:
                found.setdefault(f"{key}PostBindingURI", service.get("Location", ""))
    if "SSORedirectBindingURI" not in found and "SSOPostBindingURI" not in found:
        raise ProviderConfigError("ProviderDetails MetadataFile names no SingleSignOnService.")
    return found


def _is_web_url(value: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace (what check_url asks of configured URLs)."""
    try:
        check_url({"url": value}, "url")
    except ProviderConfigError:
        return False
    return True


_DS = "{http://www.w3.org/2000/09/xmldsig#}"


def check_signing_certificates(metadata: str, *, every: bool, now: float | None = None) -> None:
    """The IdP's signing certificates (KeyDescriptor use="signing" or without use) must not have expired:
    ``every`` one of them (configuration, as Cognito requires), or at least one (a refresh: an IdP rolling its
    key may still list the old one). None may be longer than 4096 characters. Raises ProviderConfigError."""
    try:
        root = SafeElementTree.fromstring(metadata.encode(), forbid_dtd=True)
    except Exception as exc:  # ParseError and defusedxml's refusals alike
        raise ProviderConfigError("ProviderDetails MetadataFile is not well-formed SAML metadata.") from exc
    bodies = [
        "".join((element.text or "").split())
        for descriptor in root.findall(f".//{_MD}IDPSSODescriptor")
        for key in descriptor.findall(f"{_MD}KeyDescriptor")
        if key.get("use") in (None, "signing")
        for element in key.findall(f".//{_DS}X509Certificate")
    ]
    if not bodies:
        raise ProviderConfigError("The SAML metadata holds no signing certificate for the IdP.")
    moment = datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.UTC)
    valid = 0
    for body in bodies:
        if len(body) > MAX_SIGNING_CERTIFICATE_CHARS:
            raise ProviderConfigError("A signing certificate in the SAML metadata is longer than 4096 characters.")
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode(body, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ProviderConfigError("A signing certificate in the SAML metadata is not X.509.") from exc
        if certificate.not_valid_after_utc <= moment:
            if every:
                raise ProviderConfigError("The signing certificate in the SAML metadata has expired.")
            continue
        valid += 1
    if not valid:
        raise ProviderConfigError("Every signing certificate in the SAML metadata has expired.")


def _check_fetched(metadata: str) -> float | None:
    """Whether metadata read from MetadataURL may replace what is known (in the executor: XML and X.509 parsing);
    its root's ``validUntil`` as epoch seconds, if it has one."""
    try:
        idp_endpoints(metadata)
        check_signing_certificates(metadata, every=False)
    except ProviderConfigError as exc:
        raise UpstreamError("metadata_invalid", str(exc)) from exc
    valid_until = SafeElementTree.fromstring(metadata.encode(), forbid_dtd=True).get("validUntil")
    if not valid_until:
        return None
    try:
        expires = _epoch(valid_until)
    except (ValueError, TypeError, AttributeError) as exc:  # pysaml2's parser fails each way on a bad dateTime
        raise UpstreamError("metadata_invalid", "validUntil is not a dateTime") from exc
    if expires <= time.time():
        raise UpstreamError("metadata_invalid", "the metadata has expired (validUntil)")
    return expires
