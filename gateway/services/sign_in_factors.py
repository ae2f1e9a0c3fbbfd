"""The steps of a sign-in after the password: MFA by SMS, email or TOTP, choosing among them, and devices.

Once the first factor is proven (:meth:`AuthService.after_first_factor`), :func:`second_factor` decides, as
Cognito does ("Adding MFA to a user pool", "Working with user devices"):

1. a *remembered* device named by DEVICE_KEY, in a pool whose DeviceConfiguration lets remembered devices
   skip MFA (``ChallengeRequiredOnNewDevice``), goes straight to ``DEVICE_SRP_AUTH`` (should the device stop
   skipping MFA before it has proven itself, the MFA challenge follows the proof);
2. otherwise MFA, when the pool's MfaConfiguration asks for it (ON: always; OPTIONAL: when the user turned a
   factor on): the preferred factor's challenge (``SMS_MFA`` or ``EMAIL_OTP`` with a code sent now, or
   ``SOFTWARE_TOKEN_MFA``), the only factor's, or ``SELECT_MFA_TYPE`` listing ``MFAS_CAN_CHOOSE`` when there
   are several and none is preferred (answered with ``ANSWER``); ``MFA_SETUP`` when MFA is required and the
   user has none, listing every factor the pool enables (set-up by email: gateway/services/mfa_setup.py);
3. then :func:`finish`: a known device proves itself (``DEVICE_SRP_AUTH`` then ``DEVICE_PASSWORD_VERIFIER``,
   SRP with the device's secret); otherwise tokens, with ``NewDeviceMetadata`` when the pool tracks devices.

A wrong SMS or email code counts as a failed sign-in towards the lockout, as a wrong password does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import structlog

from gateway.errors import (
    CodeMismatchException,
    InvalidParameterException,
    InvalidUserPoolConfigurationException,
    NotAuthorizedException,
    ResourceNotFoundException,
)
from gateway.services.auth import (
    SRP_TIMESTAMP_SKEW_SECONDS,
    AuthContext,
    AuthResult,
    AuthService,
    _challenged_user,
    _required,
    _srp_a,
    challenge,
)
from gateway.services.devices import DEVICE_NOT_FOUND
from gateway.services.mfa import (
    EMAIL_OTP,
    FACTOR_ORDER,
    MFA_SETUP,
    SELECT_MFA_TYPE,
    SMS_MFA,
    mfa_settings,
)
from gateway.services.mfa_codes import ANSWER_MEMBERS
from gateway.services.srp import (
    SrpServerChallenge,
    format_srp_timestamp,
    parse_srp_timestamp,
    start_srp,
    verify_device_claim,
)
from gateway.services.triggers import TOKEN_GENERATION_DEVICE
from gateway.storage.base import DeviceRecord, UserRecord

log = structlog.get_logger("gateway.auth")

DEVICE_SRP_AUTH = "DEVICE_SRP_AUTH"
DEVICE_PASSWORD_VERIFIER = "DEVICE_PASSWORD_VERIFIER"
# In a device challenge's state: the proof stands in for MFA (the device was remembered at the password step).
INSTEAD_OF_MFA = "instead_of_mfa"


def _json_list(items: list[str]) -> str:
    # Cognito's compact form: ["SMS_MFA","SOFTWARE_TOKEN_MFA"].
    return json.dumps(items, separators=(",", ":"))


# --- deciding ----------------------------------------------------------------------------------------------


def risk_factors(service: AuthService, ctx: AuthContext, user: UserRecord) -> list[str]:
    """The second factors threat protection can ask this user for (MFA_IF_CONFIGURED / MFA_REQUIRED): the
    user's preferred one first, then every factor the pool offers that the user can answer."""
    usable = [f for f in FACTOR_ORDER if service.mfa.usable(ctx.pool, user, f)]
    preferred = mfa_settings(user)["preferred"]
    return sorted(usable, key=lambda f: f != preferred)


async def second_factor(
    service: AuthService,
    ctx: AuthContext,
    user: UserRecord,
    *,
    auth_time: int,
    device_key: str | None,
    risk_mfa: bool = False,
) -> AuthResult:
    """What a user whose password is proven still owes: a device proof, an MFA challenge, or nothing.
    ``risk_mfa``: threat protection asks for a second factor even where the pool's MFA settings would not."""
    device = await service.devices.for_sign_in(ctx.pool, user, device_key)
    if device is not None and service.devices.skips_mfa(ctx.pool, device) and not risk_mfa:
        # The failure count stays until the device has proven itself (DEVICE_PASSWORD_VERIFIER): its key is no
        # secret, and clearing here would let wrong MFA codes be tried without end between password sign-ins.
        return await _device_challenge(service, ctx, user, device, auth_time=auth_time, instead_of_mfa=True)
    due = mfa_due(service, ctx, user, risk_mfa=risk_mfa)
    if due is None:
        return await finish(service, ctx, user, auth_time=auth_time, device=device)
    return await mfa_challenge(
        service, ctx, user, due, auth_time=auth_time, device_key=device.device_key if device else None
    )


def mfa_due(service: AuthService, ctx: AuthContext, user: UserRecord, *, risk_mfa: bool = False) -> str | None:
    """The MFA challenge the user owes (see the module docstring), or None."""
    due = service.mfa.due(ctx.pool, user)
    if due is None and risk_mfa:
        factors = risk_factors(service, ctx, user)
        if factors:
            due = factors[0]
    if due == MFA_SETUP and not mfa_setup.setup_factors(ctx.pool):
        raise InvalidUserPoolConfigurationException("MFA is required but no MFA factor is enabled.")
    return due


async def named_device(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> str | None:
    """The device a PASSWORD_VERIFIER answer names (DEVICE_KEY there, or at InitiateAuth), checked to be the
    user's. An unknown one is refused with ResourceNotFoundException and dropped from the challenge, which
    stays open: amazon-cognito-identity-js then forgets the key and answers again without it."""
    device_key = responses.get("DEVICE_KEY") or state.get("device_key")
    if not device_key:
        return None
    if state.get("decoy"):
        # An unknown user's challenge (PreventUserExistenceErrors) has no devices: its answer naming one is refused
        # as a user's naming a device not theirs is, or the two answers would tell users from unknown names.
        if service.devices.tracking(ctx.pool):
            state.pop("device_key", None)
            raise ResourceNotFoundException(DEVICE_NOT_FOUND)
        return None
    owner = await service.store.get_user(ctx.pool.id, str(state["key"]))
    if owner is not None:
        try:
            await service.devices.for_sign_in(ctx.pool, owner, device_key)
        except ResourceNotFoundException:
            state.pop("device_key", None)
            raise
    return str(device_key)


async def mfa_challenge(
    service: AuthService, ctx: AuthContext, user: UserRecord, due: str, *, auth_time: int, device_key: str | None
) -> AuthResult:
    """Issue the challenge ``due``; for SMS_MFA and EMAIL_OTP the code is sent now."""
    state: dict[str, Any] = {
        "challenge": due,
        "auth_time": auth_time,
        "username": user.username,
        "key": user.username_key,
    }
    if device_key:
        state["device_key"] = device_key
    parameters: dict[str, str] = {}
    if due == MFA_SETUP:
        # Every factor the pool enables (gateway/services/mfa_setup.py says how each is set up).
        parameters = {"MFAS_CAN_SETUP": _json_list(mfa_setup.setup_factors(ctx.pool)), "USER_ID_FOR_SRP": user.username}
    elif due == SELECT_MFA_TYPE:
        options = service.mfa.options(ctx.pool, user)
        state["options"] = options
        parameters = {"MFAS_CAN_CHOOSE": _json_list(options), "USER_ID_FOR_SRP": user.username}
    elif due in (SMS_MFA, EMAIL_OTP):
        sent = await service.mfa_codes.send(ctx.pool, user, due)
        state.update(sent.state)
        parameters = sent.parameters
    session = await service.new_session(ctx, user, state)
    return AuthResult(challenge_name=due, challenge_parameters=parameters, session=session, username=user.username)


async def finish(
    service: AuthService,
    ctx: AuthContext,
    user: UserRecord,
    *,
    auth_time: int,
    device: DeviceRecord | None = None,
    device_key: str | None = None,
) -> AuthResult:
    """Every factor is proven: a known device still proves itself; otherwise tokens (and NewDeviceMetadata
    for a new device when the pool tracks devices)."""
    user = await service.clear_lockout(ctx, user)
    if device is None and device_key and service.devices.tracking(ctx.pool):
        # Named at the password step; if it was forgotten since, this is a new device like any other.
        device = await service.devices.find(ctx.pool, user, device_key)
    if device is not None:
        return await _device_challenge(service, ctx, user, device, auth_time=auth_time)
    if service.devices.tracking(ctx.pool):
        metadata = service.devices.new_metadata(ctx.pool, user)
        result = await service.issue_tokens(
            ctx, user, auth_time=auth_time, device_key=metadata["DeviceKey"], new_device=True
        )
        return dataclasses.replace(result, new_device=metadata)
    return await service.issue_tokens(ctx, user, auth_time=auth_time)


async def _device_challenge(
    service: AuthService,
    ctx: AuthContext,
    user: UserRecord,
    device: DeviceRecord,
    *,
    auth_time: int,
    instead_of_mfa: bool = False,
) -> AuthResult:
    """DEVICE_SRP_AUTH for ``device``; ``instead_of_mfa``: the proof stands in for the MFA step, which is owed
    after all should the device no longer skip it by the time it is proven (_device_password_verifier)."""
    state: dict[str, Any] = {
        "challenge": DEVICE_SRP_AUTH,
        "auth_time": auth_time,
        "username": user.username,
        "key": user.username_key,
        "device_key": device.device_key,
    }
    if instead_of_mfa:
        state[INSTEAD_OF_MFA] = True
    # After an answer (an MFA code, a new password), the challenge goes on under the Session just answered:
    # amazon-cognito-identity-js answers DEVICE_SRP_AUTH after an MFA code with the Session it sent the code with
    # (CognitoUser.sendMFACode keeps no new one). That Session was used up as it was taken;
    # now it names only this step.
    session = await service.new_session(ctx, user, state, token=ctx.answered_session)
    return AuthResult(challenge_name=DEVICE_SRP_AUTH, challenge_parameters={}, session=session, username=user.username)


# --- SMS and email codes; choosing a factor ---------------------------------------------------------------


async def _code_challenge(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str], factor: str
) -> AuthResult:
    user = await _challenged_user(service, ctx, state, responses)
    code = _required(responses, ANSWER_MEMBERS[factor])
    service.check_lockout(ctx, user)
    try:
        service.mfa_codes.check(ctx.pool, user, factor, state, code)
    except CodeMismatchException:
        await service.record_failure(ctx, user)
        raise
    # The code was right: this challenge is over whatever follows.
    state["spent"] = True
    service.check_user_can_sign_in(user)
    if factor == EMAIL_OTP and state.get(mfa_setup.SETUP_EMAIL):
        # MFA_SETUP by email: the address is proven; email MFA becomes the user's factor.
        user = await mfa_setup.complete_email_setup(service, ctx, user, str(state[mfa_setup.SETUP_EMAIL]))
    return await finish(
        service,
        ctx,
        user,
        auth_time=int(state.get("auth_time", time.time())),
        device_key=state.get("device_key") or None,
    )


@challenge(SMS_MFA)
async def _sms_mfa(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """SMS_MFA_CODE: the code sent to the user's phone number for this challenge."""
    return await _code_challenge(service, ctx, state, responses, SMS_MFA)


@challenge(EMAIL_OTP)
async def _email_otp(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """EMAIL_OTP_CODE: the code sent to the user's email address for this challenge."""
    return await _code_challenge(service, ctx, state, responses, EMAIL_OTP)


@challenge(SELECT_MFA_TYPE)
async def _select_mfa_type(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """ANSWER: one of MFAS_CAN_CHOOSE; the chosen factor's challenge follows (an SMS or email code is sent)."""
    user = await _challenged_user(service, ctx, state, responses)
    answer = _required(responses, "ANSWER")
    options = [str(o) for o in state.get("options") or []]
    if answer not in options:
        raise InvalidParameterException(f"Invalid ANSWER: choose one of {', '.join(options)}.")
    if not service.mfa.usable(ctx.pool, user, answer):
        raise InvalidParameterException(f"{answer} is no longer available for this user.")
    state["spent"] = True
    return await mfa_challenge(
        service,
        ctx,
        user,
        answer,
        auth_time=int(state.get("auth_time", time.time())),
        device_key=state.get("device_key") or None,
    )


# --- device SRP: DEVICE_SRP_AUTH, answered by DEVICE_PASSWORD_VERIFIER ----------------------------------------


def _srp_b_aad(pool_id: str, device_key: str, secret_block: str) -> bytes:
    return f"device-srp-b|{pool_id}|{device_key}|{secret_block}".encode()


def _check_device_key(state: dict[str, Any], responses: Mapping[str, str]) -> str:
    device_key = _required(responses, "DEVICE_KEY")
    if not hmac.compare_digest(device_key.encode(), str(state.get("device_key", "")).encode()):
        raise NotAuthorizedException("Invalid device key given.")
    return device_key


@challenge(DEVICE_SRP_AUTH)
async def _device_srp_auth(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """The client's SRP_A for its device; the server's B, SALT and SECRET_BLOCK out (DEVICE_PASSWORD_VERIFIER)."""
    user = await _challenged_user(service, ctx, state, responses)
    device_key = _check_device_key(state, responses)
    srp_a = _srp_a(responses)
    device = await service.devices.get(ctx.pool, user, device_key)
    verifier = service.devices.verifier(ctx.pool, device)
    if verifier is None:
        raise NotAuthorizedException("Invalid device key given.")
    srp = await asyncio.get_running_loop().run_in_executor(None, start_srp, verifier)
    next_state = {
        "challenge": DEVICE_PASSWORD_VERIFIER,
        "auth_time": state.get("auth_time"),
        "username": user.username,
        "key": user.username_key,
        "device_key": device_key,
        "srp_a": srp_a,
        "srp_b": srp.B_hex,
        "b": service.box.seal(srp.b_hex.encode(), aad=_srp_b_aad(ctx.pool.id, device_key, srp.secret_block)),
        "salt": srp.salt_hex,
        "secret_block": srp.secret_block,
    }
    if state.get(INSTEAD_OF_MFA):
        next_state[INSTEAD_OF_MFA] = True
    state["spent"] = True
    # As with PASSWORD_VERIFIER, the SECRET_BLOCK is the Session: some clients answer with it and no Session.
    session = await service.new_session(ctx, user, next_state, token=srp.secret_block)
    return AuthResult(
        challenge_name=DEVICE_PASSWORD_VERIFIER,
        challenge_parameters={
            "DEVICE_KEY": device_key,
            "SALT": srp.salt_hex,
            "SECRET_BLOCK": srp.secret_block,
            "SRP_B": srp.B_hex,
            "USERNAME": user.username,
        },
        session=session,
        username=user.username,
    )


@challenge(DEVICE_PASSWORD_VERIFIER, session_in="PASSWORD_CLAIM_SECRET_BLOCK")
async def _device_password_verifier(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """The client's proof that it holds the device's secret; single use. Tokens carry ``device_key``."""
    user = await _challenged_user(service, ctx, state, responses)
    device_key = _check_device_key(state, responses)
    secret_block = _required(responses, "PASSWORD_CLAIM_SECRET_BLOCK")
    signature = _required(responses, "PASSWORD_CLAIM_SIGNATURE")
    timestamp = _required(responses, "TIMESTAMP")
    if not hmac.compare_digest(secret_block.encode(), str(state["secret_block"]).encode()):
        raise NotAuthorizedException("Incorrect username or password.")
    when = parse_srp_timestamp(timestamp)
    if (
        when is None
        or format_srp_timestamp(when) != timestamp
        or abs(when.timestamp() - time.time()) > SRP_TIMESTAMP_SKEW_SECONDS
    ):
        raise NotAuthorizedException("Incorrect username or password.")
    state["spent"] = True
    device = await service.devices.get(ctx.pool, user, device_key)
    verifier = service.devices.verifier(ctx.pool, device)
    b_hex = service.box.open(
        str(state["b"]), aad=_srp_b_aad(ctx.pool.id, device_key, str(state["secret_block"]))
    ).decode()
    srp = SrpServerChallenge(
        b_hex=b_hex, B_hex=str(state["srp_b"]), salt_hex=str(state["salt"]), secret_block=str(state["secret_block"])
    )
    proven = verifier is not None and await asyncio.get_running_loop().run_in_executor(
        None,
        functools.partial(
            verify_device_claim,
            device_group_key=service.devices.group_key(ctx.pool, user),
            device_key=device_key,
            verifier=verifier,
            challenge=srp,
            srp_a_hex=str(state["srp_a"]),
            timestamp=timestamp,
            claim_signature_b64=signature,
        ),
    )
    if not proven:
        log.info("device.proof_failed", pool=ctx.pool.id, username=user.username, device_key=device_key)
        raise NotAuthorizedException("Incorrect username or password.")
    service.check_user_can_sign_in(user)
    auth_time = int(state.get("auth_time") or time.time())
    if state.get(INSTEAD_OF_MFA) and not service.devices.skips_mfa(ctx.pool, device):
        # The device stood in for MFA when the password was proven, and no longer does (UpdateDeviceStatus
        # not_remembered, or ChallengeRequiredOnNewDevice turned off, while the proof was under way): the second
        # factor is owed after all. The device proves itself again after it, as any device that does not skip
        # MFA does (finish), and only then is the failure count reset.
        due = mfa_due(service, ctx, user)
        if due is not None:
            log.info("device.no_longer_skips_mfa", pool=ctx.pool.id, username=user.username, device_key=device_key)
            return await mfa_challenge(service, ctx, user, due, auth_time=auth_time, device_key=device_key)
    # Every factor is proven now: a successful sign-in resets the failure count (see second_factor).
    user = await service.clear_lockout(ctx, user)
    await service.devices.signed_in(device, ctx.source_ip)
    ctx = dataclasses.replace(ctx, token_source=TOKEN_GENERATION_DEVICE)
    return await service.issue_tokens(ctx, user, auth_time=auth_time, device_key=device_key)


# Setting up email MFA inside MFA_SETUP (registers its MFA_SETUP handler over auth.py's on import).
from gateway.services import mfa_setup  # noqa: E402
