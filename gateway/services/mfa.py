"""Multi-factor authentication as Cognito offers it: which factors a user has turned on (software tokens, SMS
and email codes), which one a sign-in asks for, and software tokens themselves (TOTP, RFC 6238).

A user's factors live in ``settings["mfa"]`` (see below) and are set with SetUserMFAPreference: TOTP needs a
verified token, SMS_MFA a phone number, EMAIL_OTP an email address, and each the pool's configuration of it.
:meth:`MfaService.due` picks the challenge: the preferred factor, the only one, or SELECT_MFA_TYPE; the SMS and
email codes themselves are :mod:`gateway.services.mfa_codes`.

A user sets up an authenticator app with AssociateSoftwareToken (a fresh base32 secret, shown once, kept
sealed as ``secrets["totp_pending"]``) and proves it with VerifySoftwareToken (the secret becomes
``secrets["totp"]``); SetUserMFAPreference then turns TOTP on for sign-in. What GetUser reports lives in
``settings["mfa"]`` as ``{"preferred": ..., "enabled": [...]}``. Codes are 6 digits on a 30-second step,
accepted one step either side; a step, once accepted, is never accepted again for the user: the last one used
is kept in ``settings["totp_last_step"]`` and moved forward under the store's version check, so two racing
submissions of one code give one success.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

import pyotp
import structlog

from gateway.errors import (
    CodeMismatchException,
    ConcurrentModificationException,
    EnableSoftwareTokenMFAException,
    ExpiredCodeException,
    InvalidParameterException,
    SoftwareTokenMFANotFoundException,
    UserNotFoundException,
)
from gateway.secretbox import SecretBox, SecretBoxError
from gateway.services.pools import PoolView
from gateway.storage.base import NotFound, Store, UserRecord, VersionConflict

log = structlog.get_logger("gateway.mfa")

SOFTWARE_TOKEN_MFA = "SOFTWARE_TOKEN_MFA"
SMS_MFA = "SMS_MFA"
EMAIL_OTP = "EMAIL_OTP"
SELECT_MFA_TYPE = "SELECT_MFA_TYPE"
MFA_SETUP = "MFA_SETUP"
# The order in which factors are offered (MFAS_CAN_CHOOSE) and, when MFA is required and the user turned
# none on, tried: a factor the pool offers and the user can receive.
FACTOR_ORDER = (SMS_MFA, SOFTWARE_TOKEN_MFA, EMAIL_OTP)
# SetUserMFAPreference's member for each factor.
PREFERENCE_MEMBERS = {
    SOFTWARE_TOKEN_MFA: "SoftwareTokenMfaSettings",
    SMS_MFA: "SMSMfaSettings",
    EMAIL_OTP: "EmailMfaSettings",
}
TOTP_STEP_SECONDS = 30
TOTP_DIGITS = 6
TOTP_SECRET_LENGTH = 32
# How many steps either side of the server's own a code may come from (clock drift, typing time).
TOTP_WINDOW = 1


def new_totp_secret() -> str:
    return pyotp.random_base32(length=TOTP_SECRET_LENGTH)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (``now // 30``, one either side) whose code is ``code``, or None."""
    if len(code) != TOTP_DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)
    current = int(now // TOTP_STEP_SECONDS)
    for offset in sorted(range(-TOTP_WINDOW, TOTP_WINDOW + 1), key=abs):
        step = current + offset
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            return step
    return None


def _aad(pool_id: str, user: UserRecord) -> bytes:
    return f"totp|{pool_id}|{user.username_key}".encode()


def mfa_settings(user: UserRecord) -> dict[str, Any]:
    """A copy of ``settings["mfa"]`` with both members present."""
    current = user.settings.get("mfa") or {}
    return {"preferred": current.get("preferred"), "enabled": list(current.get("enabled") or [])}


class MfaService:
    """Software-token MFA of the users of a pool."""

    def __init__(self, store: Store, box: SecretBox) -> None:
        self.store = store
        self.box = box

    # --- reading -----------------------------------------------------------------------------------

    def has_verified_token(self, user: UserRecord) -> bool:
        return isinstance(user.secrets.get("totp"), str)

    def usable(self, pool: PoolView, user: UserRecord, factor: str) -> bool:
        """Whether the pool offers ``factor`` and the user could answer it (a verified token, a phone number,
        an email address)."""
        if factor == SOFTWARE_TOKEN_MFA:
            return pool.software_token_mfa_enabled and self.has_verified_token(user)
        if factor == SMS_MFA:
            return pool.sms_mfa_enabled and bool(user.attributes.get("phone_number"))
        if factor == EMAIL_OTP:
            return pool.email_mfa_enabled and bool(user.attributes.get("email"))
        return False

    def options(self, pool: PoolView, user: UserRecord) -> list[str]:
        """The factors a user may be asked for: those turned on (SetUserMFAPreference) that still work; when
        the pool requires MFA and the user turned none on, every factor the user can receive, as Cognito
        then sends an SMS or email code to users with a phone or address."""
        if pool.mfa_configuration == "OFF":
            return []
        enabled = mfa_settings(user)["enabled"]
        chosen = [f for f in FACTOR_ORDER if f in enabled and self.usable(pool, user, f)]
        if not chosen and pool.mfa_configuration == "ON":
            chosen = [f for f in FACTOR_ORDER if self.usable(pool, user, f)]
        return chosen

    def due(self, pool: PoolView, user: UserRecord) -> str | None:
        """What MFA a user owes at sign-in: one factor's challenge (the preferred one, or the only one),
        SELECT_MFA_TYPE (several, none preferred), MFA_SETUP (MFA is required and the user has no factor
        yet), or None."""
        options = self.options(pool, user)
        if not options:
            return MFA_SETUP if pool.mfa_configuration == "ON" else None
        preferred = mfa_settings(user)["preferred"]
        if preferred in options:
            return str(preferred)
        if len(options) == 1:
            return options[0]
        return SELECT_MFA_TYPE

    def _open(self, pool: PoolView, user: UserRecord, sealed: str) -> str:
        try:
            return self.box.open(sealed, aad=_aad(pool.id, user)).decode()
        except SecretBoxError as exc:
            log.warning("totp.secret_unreadable", pool=pool.id, username=user.username)
            raise CodeMismatchException("Invalid code received for user") from exc

    async def _update(self, pool: PoolView, user: UserRecord, change: Callable[[UserRecord], None]) -> UserRecord:
        """Read-modify-write under the store's version check; ``change`` runs again on the fresh record (as
        many times as users.USER_WRITE_ATTEMPTS allows: many requests may change one user at once)."""
        for _ in range(100):
            change(user)
            user.updated_at = time.time()
            try:
                return await self.store.update_user(user)
            except NotFound:  # deleted while this call ran
                raise UserNotFoundException() from None
            except VersionConflict:
                fresh = await self.store.get_user(pool.id, user.username_key)
                if fresh is None:
                    raise UserNotFoundException() from None
                user = fresh
        raise ConcurrentModificationException()

    # --- setting up ----------------------------------------------------------------------------------

    async def associate(self, pool: PoolView, user: UserRecord) -> str:
        """AssociateSoftwareToken: a new secret, returned once and kept sealed until it is verified."""
        if not pool.software_token_mfa_enabled:
            raise SoftwareTokenMFANotFoundException()
        secret = new_totp_secret()
        sealed = self.box.seal(secret.encode(), aad=_aad(pool.id, user))

        def change(u: UserRecord) -> None:
            u.secrets = {**u.secrets, "totp_pending": sealed}

        await self._update(pool, user, change)
        log.info("totp.associated", pool=pool.id, username=user.username)
        return secret

    async def verify(
        self, pool: PoolView, user: UserRecord, code: str, device_name: str | None, *, enable: bool
    ) -> UserRecord:
        """VerifySoftwareToken: the pending secret becomes the user's software token when ``code`` matches.
        ``enable`` (the MFA_SETUP challenge) also turns TOTP on and makes it the preferred factor."""
        if not pool.software_token_mfa_enabled:
            raise SoftwareTokenMFANotFoundException()
        sealed = user.secrets.get("totp_pending")
        if not isinstance(sealed, str):
            raise InvalidParameterException("No software token to verify: call AssociateSoftwareToken first.")
        step = matching_step(self._open(pool, user, sealed), code, time.time())
        if step is None:
            raise EnableSoftwareTokenMFAException()

        def change(u: UserRecord) -> None:
            if u.secrets.get("totp_pending") != sealed:
                # Another AssociateSoftwareToken replaced the secret meanwhile.
                raise EnableSoftwareTokenMFAException()
            u.secrets = {**{k: v for k, v in u.secrets.items() if k != "totp_pending"}, "totp": sealed}
            u.settings = {**u.settings, "totp_last_step": step}
            if device_name:
                u.settings["totp_device_name"] = device_name
            if enable:
                mfa = mfa_settings(u)
                if SOFTWARE_TOKEN_MFA not in mfa["enabled"]:
                    mfa["enabled"].append(SOFTWARE_TOKEN_MFA)
                mfa["preferred"] = mfa["preferred"] or SOFTWARE_TOKEN_MFA
                u.settings["mfa"] = mfa

        updated = await self._update(pool, user, change)
        log.info("totp.verified", pool=pool.id, username=user.username)
        return updated

    async def set_preference(self, pool: PoolView, user: UserRecord, request: Mapping[str, Any]) -> UserRecord:
        """SetUserMFAPreference / AdminSetUserMFAPreference with SoftwareTokenMfaSettings, SMSMfaSettings and
        EmailMfaSettings: each turns its factor on or off and may make it the preferred one. Turning a factor
        on needs the pool to offer it and the user to be able to receive it (a verified software token, a
        phone number, an email address); while the pool requires MFA none can be turned off."""
        if (request.get("WebAuthnMfaSettings") or {}).get("Enabled"):
            raise InvalidParameterException("WebAuthnMfaSettings: passkey MFA is not available in this user pool.")
        wanted: dict[str, tuple[bool | None, bool | None]] = {}
        for factor, member in PREFERENCE_MEMBERS.items():
            settings = request.get(member)
            if not settings:
                continue
            enabled, preferred = settings.get("Enabled"), settings.get("PreferredMfa")
            if preferred and enabled is False:
                raise InvalidParameterException("An MFA type must be enabled to be preferred.")
            if enabled is False and pool.mfa_configuration == "ON":
                raise InvalidParameterException(f"MFA is required in this user pool: {factor} can't be turned off.")
            wanted[factor] = (enabled, preferred)
        if sum(bool(p) for _, p in wanted.values()) > 1:
            raise InvalidParameterException("Only one MFA type can be preferred.")
        if not wanted:
            return user

        def change(u: UserRecord) -> None:
            mfa = mfa_settings(u)
            for factor, (enabled, preferred) in wanted.items():
                if enabled or preferred:
                    self._check_can_enable(pool, u, factor)
                    if factor not in mfa["enabled"]:
                        mfa["enabled"].append(factor)
                elif enabled is False:
                    mfa["enabled"] = [m for m in mfa["enabled"] if m != factor]
                if preferred:
                    mfa["preferred"] = factor
                elif (preferred is False or enabled is False) and mfa["preferred"] == factor:
                    mfa["preferred"] = None
            # One order whatever the order of the calls, so UserMFASettingList reads the same each time.
            mfa["enabled"] = sorted(mfa["enabled"], key=lambda f: FACTOR_ORDER.index(f) if f in FACTOR_ORDER else 99)
            u.settings = {**u.settings, "mfa": mfa}

        updated = await self._update(pool, user, change)
        log.info("mfa.preference_set", pool=pool.id, username=user.username, settings=mfa_settings(updated))
        return updated

    def _check_can_enable(self, pool: PoolView, user: UserRecord, factor: str) -> None:
        if factor == SOFTWARE_TOKEN_MFA:
            if not pool.software_token_mfa_enabled:
                # As for SMS and email: a factor the pool does not offer would be reported and never asked for.
                raise InvalidParameterException(f"{factor} is not enabled for this user pool.")
            if not self.has_verified_token(user):
                raise InvalidParameterException("User has not verified software token mfa")
            return
        offered = pool.sms_mfa_enabled if factor == SMS_MFA else pool.email_mfa_enabled
        if not offered:
            raise InvalidParameterException(f"{factor} is not enabled for this user pool.")
        if not self.usable(pool, user, factor):
            # Cognito's words when the user has no phone number (SMS) or email address (EMAIL_OTP).
            raise InvalidParameterException(f"User does not have delivery config set to turn on {factor}")

    # --- signing in ----------------------------------------------------------------------------------

    async def consume_code(self, pool: PoolView, user: UserRecord, code: str) -> UserRecord:
        """The SOFTWARE_TOKEN_MFA answer: ``code`` must match the user's secret at a step later than any
        accepted before; that step is then recorded, so the same code cannot sign in twice."""
        sealed = user.secrets.get("totp")
        if not isinstance(sealed, str):
            raise SoftwareTokenMFANotFoundException("Software token MFA is not set up for the user.")
        step = matching_step(self._open(pool, user, sealed), code, time.time())
        if step is None:
            raise CodeMismatchException("Invalid code received for user")

        def change(u: UserRecord) -> None:
            if u.secrets.get("totp") != sealed:
                raise CodeMismatchException("Invalid code received for user")
            last = u.settings.get("totp_last_step")
            if isinstance(last, int) and step <= last:
                raise ExpiredCodeException("Your software token has already been used once.")
            u.settings = {**u.settings, "totp_last_step": step}

        return await self._update(pool, user, change)

    # --- removing -----------------------------------------------------------------------------------

    async def delete_software_token(self, pool: PoolView, user: UserRecord) -> UserRecord:
        """AdminDeleteSoftwareToken: the user's software token goes (the verified secret, a pending one, the
        last accepted step, the device name) and so does TOTP in their MFA settings and preference; other
        factors stay. The user may AssociateSoftwareToken again; a pool that requires MFA asks for
        MFA_SETUP at the next sign-in when nothing else is left."""

        def change(u: UserRecord) -> None:
            u.secrets = {k: v for k, v in u.secrets.items() if k not in ("totp", "totp_pending")}
            settings = {k: v for k, v in u.settings.items() if k not in ("totp_last_step", "totp_device_name")}
            mfa = mfa_settings(u)
            if mfa["enabled"] or mfa["preferred"] or "mfa" in u.settings:
                mfa["enabled"] = [f for f in mfa["enabled"] if f != SOFTWARE_TOKEN_MFA]
                if mfa["preferred"] == SOFTWARE_TOKEN_MFA:
                    mfa["preferred"] = None
                settings["mfa"] = mfa
            u.settings = settings

        updated = await self._update(pool, user, change)
        log.info("totp.deleted", pool=pool.id, username=user.username)
        return updated
