"""Setting up MFA while signing in: the ``MFA_SETUP`` challenge's choices beyond an authenticator app.

When a pool's MfaConfiguration is ON and a user has no factor they can answer, the sign-in returns
``MFA_SETUP`` with ``MFAS_CAN_SETUP`` listing every factor the pool enables, in Cognito's order
(``["SMS_MFA","SOFTWARE_TOKEN_MFA","EMAIL_OTP"]``). What the client can do with each (botocore's model,
InitiateAuth ``ChallengeName``; Amplify's ``confirmSignIn`` for ``CONTINUE_SIGN_IN_WITH_EMAIL_SETUP``):

- ``SOFTWARE_TOKEN_MFA``: AssociateSoftwareToken and VerifySoftwareToken with the Session, then
  RespondToAuthChallenge ``MFA_SETUP`` with the Session VerifySoftwareToken returned (gateway/services/auth.py).
- ``EMAIL_OTP``: RespondToAuthChallenge ``MFA_SETUP`` with ``{"USERNAME": ..., "EMAIL": address}``. A code goes
  to that address and the answer is an ``EMAIL_OTP`` challenge (``EMAIL_OTP_CODE``). A right code proves the
  address: it becomes the user's verified ``email`` and email MFA is turned on and preferred, so the next
  sign-in asks for ``EMAIL_OTP``. A user who already has an address may only name that one (a password alone
  must not move the second factor to another mailbox).
- ``SMS_MFA``: Cognito documents no answer inside the challenge: collect a ``phone_number`` for the user (an
  administrator's AdminUpdateUserAttributes) and start the sign-in again, which then sends an SMS code. An
  answer naming a ``PHONE_NUMBER`` is refused with that advice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import structlog

from gateway.errors import AliasExistsException, InvalidParameterException, NotAuthorizedException
from gateway.services.auth import CHALLENGES, AuthContext, AuthResult, AuthService, _challenged_user, challenge
from gateway.services.mfa import EMAIL_OTP, FACTOR_ORDER, MFA_SETUP, SMS_MFA, SOFTWARE_TOKEN_MFA
from gateway.services.pools import PoolView
from gateway.services.schema import validate_attribute_values
from gateway.storage.base import UserRecord

log = structlog.get_logger("gateway.auth")

# The state key of an EMAIL_OTP challenge that sets email MFA up: the address the code went to.
SETUP_EMAIL = "setup_email"
_MAX_EMAIL_LENGTH = 256


def setup_factors(pool: PoolView) -> list[str]:
    """``MFAS_CAN_SETUP``: every factor the pool enables, in Cognito's order."""
    offered = {
        SMS_MFA: pool.sms_mfa_enabled,
        SOFTWARE_TOKEN_MFA: pool.software_token_mfa_enabled,
        EMAIL_OTP: pool.email_mfa_enabled,
    }
    return [f for f in FACTOR_ORDER if offered[f]]


# The authenticator-app ending of MFA_SETUP, registered by gateway/services/auth.py (imported first).
_TOTP_SETUP = CHALLENGES[MFA_SETUP]


@challenge(MFA_SETUP)
async def _mfa_setup(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """MFA_SETUP's answer: ``EMAIL`` starts email MFA set-up, ``PHONE_NUMBER`` is refused with Cognito's
    advice, and anything else is the end of authenticator-app set-up."""
    factors = setup_factors(ctx.pool)
    if "EMAIL" in responses:
        return await _start_email_setup(service, ctx, state, responses, factors)
    if "PHONE_NUMBER" in responses:
        await _challenged_user(service, ctx, state, responses)
        if SMS_MFA not in factors:
            raise InvalidParameterException("SMS_MFA is not enabled for this user pool.")
        raise InvalidParameterException(
            "SMS MFA can't be set up in this challenge: add a phone_number to the user, then sign in again."
        )
    if SOFTWARE_TOKEN_MFA not in factors:
        await _challenged_user(service, ctx, state, responses)
        raise InvalidParameterException(
            f"Choose an MFA type to set up from MFAS_CAN_SETUP: {', '.join(factors)}; for EMAIL_OTP answer with EMAIL."
        )
    return await _TOTP_SETUP(service, ctx, state, responses)


async def _start_email_setup(
    service: AuthService,
    ctx: AuthContext,
    state: dict[str, Any],
    responses: Mapping[str, str],
    factors: list[str],
) -> AuthResult:
    """Send a code to the address named, and ask for it (EMAIL_OTP)."""
    user = await _challenged_user(service, ctx, state, responses)
    if EMAIL_OTP not in factors:
        raise InvalidParameterException("EMAIL_OTP is not enabled for this user pool.")
    address = str(responses.get("EMAIL") or "").strip()
    if not address or len(address) > _MAX_EMAIL_LENGTH:
        raise InvalidParameterException("Invalid email address format.")
    validate_attribute_values(ctx.pool.schema, {"email": address}, creating=False, admin=True)
    current = user.attributes.get("email")
    if current and current.lower() != address.lower():
        raise InvalidParameterException("Set up email MFA with the email address the user already has.")
    await _check_address_free(service, ctx.pool, user, address)
    service.check_lockout(ctx, user)
    service.check_user_can_sign_in(user)
    sent = await service.mfa_codes.send(ctx.pool, user, EMAIL_OTP, destination=address)
    next_state: dict[str, Any] = {
        "challenge": EMAIL_OTP,
        "auth_time": state.get("auth_time") or int(time.time()),
        "username": user.username,
        "key": user.username_key,
        SETUP_EMAIL: address,
        **sent.state,
    }
    if state.get("device_key"):
        next_state["device_key"] = state["device_key"]
    session = await service.new_session(ctx, user, next_state)
    log.info("mfa_setup.email_code_sent", pool=ctx.pool.id, client=ctx.client.id, username=user.username)
    return AuthResult(
        challenge_name=EMAIL_OTP, challenge_parameters=sent.parameters, session=session, username=user.username
    )


async def _check_address_free(service: AuthService, pool: PoolView, user: UserRecord, address: str) -> None:
    """Where email is a sign-in alias, a verified address belongs to one user only (AliasExistsException,
    as AdminUpdateUserAttributes answers); checked before any code is sent."""
    if "email" not in pool.alias_attributes and "email" not in pool.username_attributes:
        return
    other = await service.store.get_user_by_alias(pool.id, "email", address.lower())
    if other is not None and other.username_key != user.username_key:
        raise AliasExistsException()


async def complete_email_setup(service: AuthService, ctx: AuthContext, user: UserRecord, address: str) -> UserRecord:
    """The code sent to ``address`` was right: the address is the user's, verified, and email MFA is turned on
    and preferred (so the next sign-in asks for EMAIL_OTP)."""
    current = user.attributes.get("email")
    if current and current.lower() != address.lower():
        # Changed by an administrator since the code was sent: the proof is for another address.
        raise NotAuthorizedException("Invalid session for the user.")
    await service.users.update_attributes(ctx.pool, user, {"email": address, "email_verified": "true"}, admin=True)
    user = await service.users.get_by_key(ctx.pool.id, user.username_key)
    user = await service.mfa.set_preference(
        ctx.pool, user, {"EmailMfaSettings": {"Enabled": True, "PreferredMfa": True}}
    )
    log.info("mfa_setup.email_enabled", pool=ctx.pool.id, client=ctx.client.id, username=user.username)
    return user
