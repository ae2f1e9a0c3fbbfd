"""Sign-in codes sent by SMS (``SMS_MFA``) and email (``EMAIL_OTP``), as Cognito's MFA sends them.

When a sign-in owes one of these factors, a fresh random six-digit code goes to the user's ``phone_number`` or
``email`` through the messenger (the SMS webhook or outbox, SMTP), worded by the pool's SmsMfaConfiguration
``SmsAuthenticationMessage`` or EmailMfaConfiguration ``Message``/``Subject`` (``{####}`` is the code). Those
word the passwordless first factors' codes too (SMS_OTP, EMAIL_OTP: gateway/services/passwordless.py), through
:func:`send_sign_in_code`. The challenge tells the client where the code went, masked as Cognito masks it
(``CODE_DELIVERY_DESTINATION`` ``+*******0100`` or ``a***@e***``, ``CODE_DELIVERY_DELIVERY_MEDIUM`` ``SMS`` or
``EMAIL``).

Only a keyed hash of the code is kept, in the challenge's server-side session, bound to the pool, the user and
that session (a per-challenge nonce), so a code answers only the sign-in it was sent for. Single use follows
from the session: the store hands a session to exactly one response (``take_auth_session``). Cognito's SMS
MFA codes are valid for 3 minutes; email codes here for 5.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.errors import (
    CodeMismatchException,
    ExpiredCodeException,
    GatehouseError,
    InvalidParameterException,
)
from gateway.ids import new_code
from gateway.services.custom_message import AUTHENTICATION, CustomMessage, MessageTrigger, custom_message
from gateway.services.custom_sender import has_custom_sender, send_by_function
from gateway.services.messaging import email_parts, render_template
from gateway.services.mfa import EMAIL_OTP, SMS_MFA
from gateway.services.pools import PoolView
from gateway.services.users import UserService, mask_email, mask_phone
from gateway.storage.base import UserRecord

log = structlog.get_logger("gateway.mfa_codes")

CODE_SECONDS = {SMS_MFA: 180, EMAIL_OTP: 300}
# The answer's member for each factor (RespondToAuthChallenge ChallengeResponses).
ANSWER_MEMBERS = {SMS_MFA: "SMS_MFA_CODE", EMAIL_OTP: "EMAIL_OTP_CODE"}
DEFAULT_SMS_MESSAGE = "Your authentication code is {####}. "
DEFAULT_EMAIL_SUBJECT = "Your sign-in code"
DEFAULT_EMAIL_MESSAGE = "Your sign-in code is {####}. "
_MEDIUM = {SMS_MFA: "SMS", EMAIL_OTP: "EMAIL"}
_ATTRIBUTE = {SMS_MFA: "phone_number", EMAIL_OTP: "email"}


def sign_in_message(
    pool: PoolView, medium: str, code: str, username: str, custom: CustomMessage | None = None
) -> tuple[str, str, str | None]:
    """The subject, text and HTML part (None for an SMS) of a sign-in code sent by ``medium`` (SMS or EMAIL):
    the SMS with the pool's SMS authentication message ("the SMS message that your user pool sends to users in
    SMS OTP and MFA authentication", CreateUserPool), the email with EmailMfaConfiguration's Message and
    Subject ("codes for MFA and sign-in with email OTPs", EmailMfaConfigType), or Cognito's defaults. What the
    pool's CustomMessage function answered (``custom``) takes the place of each."""
    custom = custom or CustomMessage()
    if medium == "SMS":
        template = custom.sms or pool.sms_authentication_message or DEFAULT_SMS_MESSAGE
        return "", render_template(template, code=code, username=username), None
    config = pool.settings.get("EmailMfaConfiguration") or {}
    template = custom.email or config.get("Message") or DEFAULT_EMAIL_MESSAGE
    text, html = email_parts(template, code=code, username=username)
    return str(custom.subject or config.get("Subject") or DEFAULT_EMAIL_SUBJECT), text, html


async def send_sign_in_code(
    users: UserService, pool: PoolView, user: UserRecord, medium: str, destination: str, code: str, purpose: str
) -> None:
    """Send a sign-in ``code`` to ``destination`` by ``medium`` (SMS or EMAIL), worded by
    :func:`sign_in_message` and the pool's CustomMessage function (CustomMessage_Authentication: "To send MFA
    code during authentication"); raises CodeDeliveryFailureException when it cannot be delivered, the
    trigger's errors when the function fails (custom_message.py)."""
    if users.triggers is not None and has_custom_sender(users.triggers, pool, medium):
        await send_by_function(users.triggers, pool, user, MessageTrigger(AUTHENTICATION), medium, code, destination)
        users.count_code_sent(pool, medium, purpose)
        return
    custom = await custom_message(users.triggers, pool, user, MessageTrigger(AUTHENTICATION), mediums=(medium,))
    subject, text, html = sign_in_message(pool, medium, code, user.username, custom)
    await users.send_text(pool, medium, destination, text, subject=subject, purpose=purpose, html=html)


@dataclass(frozen=True)
class SentCode:
    """What the challenge keeps (``state``) and shows (``parameters``) of a code just sent."""

    state: dict[str, Any]
    parameters: dict[str, str]


class MfaCodes:
    """Sends and checks SMS and email sign-in codes."""

    def __init__(self, users: UserService, secret: bytes) -> None:
        self._users = users
        # Its own key, derived from the server-wide secret, so a stolen database does not give codes away.
        self._key = hmac.new(secret, b"gatehouse/mfa-code/v1", hashlib.sha256).digest()

    def _hash(self, pool_id: str, username_key: str, factor: str, nonce: str, code: str) -> str:
        message = f"{pool_id}|{username_key}|{factor}|{nonce}|{code}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    @staticmethod
    def delivery_parameters(factor: str, destination: str) -> dict[str, str]:
        masked = mask_phone(destination) if factor == SMS_MFA else mask_email(destination)
        return {"CODE_DELIVERY_DELIVERY_MEDIUM": _MEDIUM[factor], "CODE_DELIVERY_DESTINATION": masked}

    async def send(self, pool: PoolView, user: UserRecord, factor: str, *, destination: str | None = None) -> SentCode:
        """Send a new code for ``factor`` (SMS_MFA or EMAIL_OTP) to the user; to ``destination`` instead of
        the user's own address while the user sets email MFA up (MFA_SETUP, gateway/services/mfa_setup.py)."""
        destination = destination or user.attributes.get(_ATTRIBUTE[factor])
        if not destination:
            raise InvalidParameterException(f"User does not have delivery config set to turn on {factor}")
        purpose = f"mfa:{factor.lower()}"
        ticket = await self._users.limit_code_send(pool, user.username_key, purpose)
        code = new_code()
        nonce = secrets.token_urlsafe(16)
        try:
            await send_sign_in_code(self._users, pool, user, _MEDIUM[factor], destination, code, purpose)
        except GatehouseError:
            # Not delivered (CodeDeliveryFailureException) or refused by the pool's CustomMessage function: a code
            # never sent costs nothing.
            await self._users.give_back_code_send(pool, user.username_key, ticket)
            raise
        log.info("mfa_code.sent", pool=pool.id, username=user.username, factor=factor)
        return SentCode(
            state={
                "code_hash": self._hash(pool.id, user.username_key, factor, nonce, code),
                "code_nonce": nonce,
                "code_expires_at": time.time() + CODE_SECONDS[factor],
            },
            parameters=self.delivery_parameters(factor, destination),
        )

    def check(self, pool: PoolView, user: UserRecord, factor: str, state: dict[str, Any], code: str) -> None:
        """The answer to an SMS_MFA or EMAIL_OTP challenge: the code sent for this very challenge, in time.
        An expired code ends the challenge (it is marked spent); a wrong one may be tried again."""
        expected = state.get("code_hash")
        nonce = state.get("code_nonce")
        if not isinstance(expected, str) or not isinstance(nonce, str):
            raise CodeMismatchException("Invalid code received for user")
        if float(state.get("code_expires_at") or 0) < time.time():
            state["spent"] = True
            raise ExpiredCodeException("Your code has expired, please sign in again.")
        if not (len(code) <= 16 and code.isascii() and code.isdigit()):
            raise CodeMismatchException("Invalid code received for user")
        given = self._hash(pool.id, user.username_key, factor, nonce, code)
        if not hmac.compare_digest(given, expected):
            raise CodeMismatchException("Invalid code received for user")
