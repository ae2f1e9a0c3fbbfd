"""Passkeys: WebAuthn registration and assertion for a user pool, on py_webauthn.

The relying party follows W3C Web Authentication (Level 3) as Cognito applies it:

- StartWebAuthnRegistration hands out ``PublicKeyCredentialCreationOptions`` (a discoverable credential, the
  pool's user verification, the user's existing passkeys excluded); the challenge is kept, hashed, as the
  user's one pending registration (the store's one-time codes: single use, expires).
  CompleteWebAuthnRegistration verifies the attestation ('none' and 'packed', and the other formats py_webauthn
  knows) against that challenge, the relying party ID and the allowed origins, and stores the credential.
- The WEB_AUTHN sign-in challenge hands out ``PublicKeyCredentialRequestOptions``; the assertion must answer
  that challenge (once), come from an allowed origin for the relying party ID, carry a signature counter
  beyond the one stored (moved forward with a compare-and-set, so a replayed assertion signs in at most once)
  and, when it names a user handle, the user's.

The relying party ID is the pool's ``WebAuthnConfiguration.RelyingPartyId`` (SetUserPoolMfaConfig) or else
the host of the server's public URL. The allowed origins are the public URL's origin and, for a configured
relying party ID, ``https://<RelyingPartyId>``. The WebAuthn user handle is the user's ``sub``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gateway.errors import (
    InvalidParameterException,
    LimitExceededException,
    ResourceNotFoundException,
    WebAuthnChallengeNotFoundException,
    WebAuthnConfigurationMissingException,
    WebAuthnCredentialNotSupportedException,
    WebAuthnNotEnabledException,
    WebAuthnOriginNotAllowedException,
    WebAuthnRelyingPartyMismatchException,
)
from gateway.storage.base import AlreadyExists, CodeRecord, NotFound, Store, UserRecord, WebAuthnCredentialRecord

if TYPE_CHECKING:
    # Only for annotations: pools.py imports this module (SetUserPoolMfaConfig's WebAuthnConfiguration).
    from gateway.services.pools import PoolView

log = structlog.get_logger("gateway.webauthn")

WEB_AUTHN = "WEB_AUTHN"
REGISTRATION_PURPOSE = "webauthn_registration"
# How long a registration or sign-in ceremony may take (the browser's timeout, and the pending challenge's life).
CEREMONY_SECONDS = 300
# Cognito's quota of passkeys per user.
MAX_CREDENTIALS_PER_USER = 20
USER_VERIFICATION = ("required", "preferred")
FACTOR_CONFIGURATIONS = ("SINGLE_FACTOR", "MULTI_FACTOR_WITH_USER_VERIFICATION")
# A host name (RFC 1123 labels); a relying party ID is a domain, never a URL or an address with a port.
_HOST = re.compile(r"(?=.{1,127}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_IP_ADDRESS = re.compile(r"[0-9.]+")
_MAX_CREDENTIAL_JSON = 64 * 1024
# What py_webauthn (and cbor2, cryptography under it) raise, besides its own WebAuthnException, on parts of the
# caller's making that it reads without checking their shape: a COSE key missing a member or of the wrong
# types, a point off its curve, authenticator data cut short.
_MALFORMED: tuple[type[Exception], ...] = (ValueError, TypeError, KeyError, IndexError, AttributeError)
_REFUSED: tuple[type[Exception], ...] = (WebAuthnException, *_MALFORMED)


def webauthn_configuration(request: Mapping[str, Any]) -> dict[str, Any]:
    """SetUserPoolMfaConfig's WebAuthnConfiguration, checked; what the pool keeps."""
    config: dict[str, Any] = {}
    rp_id = request.get("RelyingPartyId")
    if rp_id is not None:
        if not isinstance(rp_id, str) or not _HOST.fullmatch(rp_id):
            raise InvalidParameterException("WebAuthnConfiguration.RelyingPartyId must be a domain name.")
        config["RelyingPartyId"] = rp_id
    verification = request.get("UserVerification")
    if verification is not None:
        if verification not in USER_VERIFICATION:
            raise InvalidParameterException("WebAuthnConfiguration.UserVerification must be required or preferred.")
        config["UserVerification"] = verification
    factor = request.get("FactorConfiguration")
    if factor is not None:
        if factor not in FACTOR_CONFIGURATIONS:
            raise InvalidParameterException(f"Invalid WebAuthnConfiguration.FactorConfiguration: {factor}")
        config["FactorConfiguration"] = factor
    return config


def webauthn_settings(pool: PoolView) -> dict[str, Any]:
    """The pool's WebAuthnConfiguration as GetUserPoolMfaConfig reports it (defaults filled in)."""
    stored = dict(pool.settings.get("WebAuthnConfiguration") or {})
    stored.setdefault("UserVerification", "preferred")
    stored.setdefault("FactorConfiguration", "SINGLE_FACTOR")
    return stored


def allowed_first_factors(pool: PoolView) -> list[str]:
    """SignInPolicy.AllowedFirstAuthFactors (PASSWORD when the pool names none)."""
    policy = (pool.settings.get("Policies") or {}).get("SignInPolicy") or {}
    return list(policy.get("AllowedFirstAuthFactors") or ["PASSWORD"])


def user_handle(user: UserRecord) -> bytes:
    return user.sub.encode()


class PasskeyRejected(Exception):
    """An assertion that does not sign the user in (the reason is logged, never sent)."""


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origins: list[str]
    user_verification: str


class PasskeyService:
    """The passkeys of a pool's users."""

    def __init__(self, store: Store, public_base: str) -> None:
        self.store = store
        parts = urlsplit(public_base)
        self._public_origin = f"{parts.scheme}://{parts.netloc}"
        self._public_host = parts.hostname or "localhost"

    # --- configuration -------------------------------------------------------------------------------

    def relying_party(self, pool: PoolView) -> RelyingParty:
        settings = webauthn_settings(pool)
        configured = settings.get("RelyingPartyId")
        origins = [self._public_origin]
        if configured and configured != self._public_host:
            origins.append(f"https://{configured}")
        return RelyingParty(
            id=str(configured or self._public_host), origins=origins, user_verification=settings["UserVerification"]
        )

    def check_enabled(self, pool: PoolView) -> None:
        if WEB_AUTHN not in allowed_first_factors(pool):
            raise WebAuthnNotEnabledException("Passkeys are not enabled for this user pool.")
        if not _HOST.fullmatch(self.relying_party(pool).id) or _IP_ADDRESS.fullmatch(self.relying_party(pool).id):
            # Browsers take only a domain as relying party ID: an address such as 127.0.0.1 will not do.
            raise WebAuthnConfigurationMissingException(
                "Passkeys need a relying party ID: set WebAuthnConfiguration.RelyingPartyId "
                "(SetUserPoolMfaConfig) or give the server a public URL with a domain name."
            )

    # --- registration --------------------------------------------------------------------------------

    async def start_registration(self, pool: PoolView, user: UserRecord) -> dict[str, Any]:
        """StartWebAuthnRegistration: creation options; their challenge becomes the pending registration."""
        self.check_enabled(pool)
        rp = self.relying_party(pool)
        existing = await self.store.list_webauthn_credentials(pool.id, user.username_key)
        if len(existing) >= MAX_CREDENTIALS_PER_USER:
            raise LimitExceededException("The user has the maximum number of passkeys.")
        challenge = secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=rp.id,
            rp_name=pool.name,
            user_name=user.username,
            user_id=user_handle(user),
            user_display_name=user.attributes.get("email") or user.username,
            challenge=challenge,
            timeout=CEREMONY_SECONDS * 1000,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                require_resident_key=True,
                user_verification=UserVerificationRequirement(rp.user_verification),
            ),
            exclude_credentials=[_descriptor(c) for c in existing],
        )
        await self.store.put_code(
            CodeRecord(
                pool_id=pool.id,
                username_key=user.username_key,
                purpose=REGISTRATION_PURPOSE,
                code_hash=hashlib.sha256(challenge).hexdigest(),
                expires_at=time.time() + CEREMONY_SECONDS,
                data={"challenge": bytes_to_base64url(challenge), "rp_id": rp.id},
            )
        )
        created: dict[str, Any] = json.loads(options_to_json(options))
        return created

    async def complete_registration(
        self, pool: PoolView, user: UserRecord, credential: Any
    ) -> WebAuthnCredentialRecord:
        """CompleteWebAuthnRegistration: the attestation checked against the pending challenge (used up
        whatever the outcome), then the credential stored."""
        self.check_enabled(pool)
        parsed = _parse(credential, parse_registration_credential_json)
        pending = await self.store.get_code(pool.id, user.username_key, REGISTRATION_PURPOSE)
        if pending is None or pending.expires_at < time.time():
            raise WebAuthnChallengeNotFoundException("No passkey registration is pending; start one first.")
        if not await self.store.consume_code(pool.id, user.username_key, REGISTRATION_PURPOSE, pending.code_hash):
            raise WebAuthnChallengeNotFoundException("No passkey registration is pending; start one first.")
        rp = self.relying_party(pool)
        if pending.data.get("rp_id") != rp.id:
            raise WebAuthnRelyingPartyMismatchException("The relying party changed since the registration began.")
        challenge = _b64(str(pending.data["challenge"]))
        try:
            verified = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: verify_registration_response(
                    credential=parsed,
                    expected_challenge=challenge,
                    expected_rp_id=rp.id,
                    expected_origin=rp.origins,
                    require_user_verification=rp.user_verification == "required",
                ),
            )
            # A "none" attestation proves nothing about the key it carries: the key is read now (a point on its
            # curve, every member present) so that none is stored that no assertion could ever be checked with.
            decoded_public_key_to_cryptography(decode_credential_public_key(verified.credential_public_key))
        except WebAuthnException as exc:
            log.info("webauthn.registration_refused", pool=pool.id, username=user.username, reason=str(exc))
            raise _registration_error(str(exc)) from exc
        except _MALFORMED as exc:  # parts py_webauthn reads without checking their shape first
            log.info("webauthn.registration_refused", pool=pool.id, username=user.username, reason=repr(exc))
            raise InvalidParameterException("The passkey registration could not be verified.") from exc
        record = WebAuthnCredentialRecord(
            pool_id=pool.id,
            credential_id=bytes_to_base64url(verified.credential_id),
            username_key=user.username_key,
            public_key=bytes_to_base64url(verified.credential_public_key),
            sign_count=verified.sign_count,
            friendly_name=_friendly_name(verified.aaguid),
            relying_party=rp.id,
            attachment=parsed.authenticator_attachment.value if parsed.authenticator_attachment else None,
            transports=[t.value for t in parsed.response.transports or []],
            created_at=time.time(),
        )
        try:
            await self.store.add_webauthn_credential(record)
        except AlreadyExists as exc:
            raise InvalidParameterException("This passkey is already registered.") from exc
        except NotFound as exc:
            raise ResourceNotFoundException("User does not exist.") from exc
        log.info(
            "webauthn.registered",
            pool=pool.id,
            username=user.username,
            credential=record.credential_id,
            fmt=str(getattr(verified.fmt, "value", verified.fmt)),
        )
        return record

    # --- managing ------------------------------------------------------------------------------------

    async def list_credentials(self, pool: PoolView, user: UserRecord) -> list[WebAuthnCredentialRecord]:
        return await self.store.list_webauthn_credentials(pool.id, user.username_key)

    async def delete_credential(self, pool: PoolView, user: UserRecord, credential_id: str) -> None:
        if not await self.store.delete_webauthn_credential(pool.id, user.username_key, credential_id):
            raise ResourceNotFoundException("The passkey does not exist.")
        log.info("webauthn.deleted", pool=pool.id, username=user.username, credential=credential_id)

    @staticmethod
    def description(record: WebAuthnCredentialRecord) -> dict[str, Any]:
        """A WebAuthnCredentialDescription."""
        described: dict[str, Any] = {
            "CredentialId": record.credential_id,
            "FriendlyCredentialName": record.friendly_name,
            "RelyingPartyId": record.relying_party,
            "AuthenticatorTransports": list(record.transports),
            "CreatedAt": record.created_at,
        }
        if record.attachment:
            described["AuthenticatorAttachment"] = record.attachment
        return described

    # --- signing in ----------------------------------------------------------------------------------

    def request_options(self, pool: PoolView, credentials: Sequence[WebAuthnCredentialRecord], challenge: bytes) -> str:
        """CREDENTIAL_REQUEST_OPTIONS: PublicKeyCredentialRequestOptions as JSON (base64url binary members)."""
        rp = self.relying_party(pool)
        options = generate_authentication_options(
            rp_id=rp.id,
            challenge=challenge,
            timeout=CEREMONY_SECONDS * 1000,
            allow_credentials=[_descriptor(c) for c in credentials],
            user_verification=UserVerificationRequirement(rp.user_verification),
        )
        return options_to_json(options)

    async def verify_assertion(
        self, pool: PoolView, user: UserRecord, credential_json: str, challenge: bytes
    ) -> tuple[WebAuthnCredentialRecord, bool]:
        """The WEB_AUTHN answer: the passkey used and whether the authenticator verified the user.
        Raises PasskeyRejected."""
        if len(credential_json) > _MAX_CREDENTIAL_JSON:
            raise PasskeyRejected("credential too large")
        try:
            parsed = parse_authentication_credential_json(credential_json)
        except _REFUSED as exc:
            raise PasskeyRejected(f"malformed credential: {exc}") from exc
        stored = await self.store.get_webauthn_credential(pool.id, parsed.id)
        if stored is None or stored.username_key != user.username_key:
            raise PasskeyRejected("unknown credential")
        handle = parsed.response.user_handle
        if handle and handle != user_handle(user):
            raise PasskeyRejected("user handle does not match")
        rp = self.relying_party(pool)
        if stored.relying_party != rp.id:
            raise PasskeyRejected("credential registered for another relying party")
        try:
            verified = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: verify_authentication_response(
                    credential=parsed,
                    expected_challenge=challenge,
                    expected_rp_id=rp.id,
                    expected_origin=rp.origins,
                    credential_public_key=_b64(stored.public_key),
                    credential_current_sign_count=stored.sign_count,
                    require_user_verification=rp.user_verification == "required",
                ),
            )
        except _REFUSED as exc:
            raise PasskeyRejected(str(exc) or repr(exc)) from exc
        # Authenticators that keep no counter send 0 every time; otherwise the counter must move forward, once.
        if (verified.new_sign_count or stored.sign_count) and not await self.store.update_webauthn_sign_count(
            pool.id, stored.credential_id, stored.sign_count, verified.new_sign_count
        ):
            raise PasskeyRejected("signature counter already used")
        return stored, verified.user_verified


def _descriptor(record: WebAuthnCredentialRecord) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in record.transports if t in _TRANSPORTS]
    return PublicKeyCredentialDescriptor(id=_b64(record.credential_id), transports=transports or None)


_TRANSPORTS = {t.value for t in AuthenticatorTransport}


def _b64(value: str) -> bytes:
    return base64url_to_bytes(value)


def _parse(credential: Any, parser: Any) -> RegistrationCredential:
    """The registration credential as the client sent it (a JSON object, or a JSON string of one)."""
    if isinstance(credential, dict):
        credential = json.dumps(credential)
    if not isinstance(credential, str) or len(credential) > _MAX_CREDENTIAL_JSON:
        raise InvalidParameterException("Credential must be the PublicKeyCredential's JSON.")
    try:
        parsed: RegistrationCredential = parser(credential)
    except _REFUSED as exc:
        raise InvalidParameterException("Credential is not a valid PublicKeyCredential.") from exc
    return parsed


def _registration_error(reason: str) -> Exception:
    """py_webauthn's refusal as the error Cognito's model names for it."""
    if "origin" in reason:
        return WebAuthnOriginNotAllowedException("The passkey was registered from an origin that is not allowed.")
    if "RP ID" in reason:
        return WebAuthnRelyingPartyMismatchException("The passkey is for another relying party.")
    if "challenge" in reason:
        return WebAuthnChallengeNotFoundException("The passkey does not answer the pending registration.")
    if "Unsupported" in reason or "alg" in reason:
        return WebAuthnCredentialNotSupportedException("This kind of passkey is not supported.")
    return InvalidParameterException("The passkey registration could not be verified.")


def _friendly_name(aaguid: str) -> str:
    # No metadata service is consulted: the authenticator model is named by its AAGUID when it gives one.
    if aaguid and aaguid.strip("0-"):
        return f"Passkey ({aaguid})"
    return "Passkey"


__all__ = [
    "REGISTRATION_PURPOSE",
    "WEB_AUTHN",
    "PasskeyRejected",
    "PasskeyService",
    "allowed_first_factors",
    "webauthn_configuration",
    "webauthn_settings",
]
