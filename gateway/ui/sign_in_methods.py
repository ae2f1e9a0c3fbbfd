"""What the hosted login page offers besides a password, and how each challenge's form reads.

The pool's ``SignInPolicy.AllowedFirstAuthFactors`` decides the extra buttons on /login: WEB_AUTHN ("Sign in
with a passkey", only when the server has a relying party ID a browser accepts: a domain, not an address),
EMAIL_OTP and SMS_OTP ("Email me a sign-in code", "Text me a sign-in code"). Each starts Cognito's USER_AUTH
flow with that ``PREFERRED_CHALLENGE``. The first factor chosen is carried from form to form sealed
(AES-GCM, bound to the authorization request and username) so that the ``amr`` of the resulting tokens
(RFC 8176) names what was really used and cannot be edited in the page.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from gateway.errors import GatehouseError
from gateway.secretbox import SecretBoxError
from gateway.services.pools import PoolView
from gateway.services.webauthn import WEB_AUTHN, allowed_first_factors

if TYPE_CHECKING:
    from gateway.services.container import Services

# The first factors the login page can start, in the order of their buttons.
FIRST_FACTORS = (WEB_AUTHN, "EMAIL_OTP", "SMS_OTP")
METHOD_LABELS = {
    WEB_AUTHN: "Sign in with a passkey",
    "EMAIL_OTP": "Email me a sign-in code",
    "SMS_OTP": "Text me a sign-in code",
}
# Challenges answered with a code sent now, and the ChallengeResponses member that carries it.
ANSWER_FIELD = {"SMS_MFA": "SMS_MFA_CODE", "EMAIL_OTP": "EMAIL_OTP_CODE", "SMS_OTP": "SMS_OTP_CODE"}
CODE_CHALLENGES = frozenset(ANSWER_FIELD)
# SELECT_MFA_TYPE's options (MFAS_CAN_CHOOSE), as a person reads them.
CHOICE_LABELS = {
    "SOFTWARE_TOKEN_MFA": "Authenticator app",
    "SMS_MFA": "Text message (SMS)",
    "EMAIL_OTP": "Email",
}
# RFC 8176 method references: of each first factor, and of each MFA challenge after it.
_FIRST_AMR = {WEB_AUTHN: ("hwk", "user"), "EMAIL_OTP": ("otp",), "SMS_OTP": ("sms",)}
_MFA_AMR = {"SOFTWARE_TOKEN_MFA": "otp", "MFA_SETUP": "otp", "SMS_MFA": "sms", "EMAIL_OTP": "otp"}


def first_factor_methods(services: Services, pool: PoolView) -> list[str]:
    """The extra sign-in methods of ``pool`` (challenge names), in button order."""
    allowed = allowed_first_factors(pool)
    methods: list[str] = []
    for name in FIRST_FACTORS:
        if name not in allowed:
            continue
        if name == WEB_AUTHN:
            helper = services.auth.passwordless
            if helper is None:
                continue
            try:
                helper.passkeys.check_enabled(pool)
            except GatehouseError:  # no usable relying party ID: a browser would refuse the ceremony
                continue
        methods.append(name)
    return methods


def method_buttons(methods: list[str]) -> list[dict[str, str]]:
    return [{"value": m, "label": METHOD_LABELS[m]} for m in methods]


def code_intro(name: str, destination: str) -> tuple[str, str]:
    """The heading and the line above the code field of an SMS_MFA, EMAIL_OTP or SMS_OTP page."""
    where = f" to {destination}" if destination else ""
    if name in ("SMS_MFA", "SMS_OTP"):
        return "Enter the code we texted you", f"We sent a code by text message{where}. Enter it to sign in."
    return "Enter the code we emailed you", f"We sent a code by email{where}. Enter it to sign in."


def parse_choices(raw: str) -> list[str]:
    """MFAS_CAN_CHOOSE (a JSON list), keeping only the factors this page knows how to name."""
    try:
        values = json.loads(raw or "[]")
    except (ValueError, RecursionError):  # the browser's text: thousands of nested brackets exhaust the parser
        return []
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, str) and v in CHOICE_LABELS]


def _aad(rid: str, username: str) -> bytes:
    return f"hosted-ui:first-factor|{rid}|{username}".encode()


def seal_factor(services: Services, rid: str, username: str, method: str) -> str:
    return services.box.seal(method.encode(), aad=_aad(rid, username))


def open_factor(services: Services, rid: str, username: str, sealed: str | None) -> str | None:
    """The first factor a form's sealed ``factor`` field names, or None (absent, altered, or another's)."""
    if not sealed or len(sealed) > 512:
        return None
    try:
        method = services.box.open(sealed, aad=_aad(rid, username)).decode()
    except (SecretBoxError, UnicodeDecodeError):
        return None
    return method if method in _FIRST_AMR else None


def amr_after(method: str, final_challenge: str | None) -> tuple[str, ...]:
    """The ``amr`` of a sign-in that began with ``method`` and ended by answering ``final_challenge``."""
    amr = _FIRST_AMR[method]
    if final_challenge is None or final_challenge == method or final_challenge not in _MFA_AMR:
        return amr
    return (*amr, _MFA_AMR[final_challenge], "mfa")
