"""Choice-based sign-in: the USER_AUTH flow, SELECT_CHALLENGE, and the passwordless first factors.

Cognito's "choice-based authentication" (InitiateAuth / AdminInitiateAuth with ``AuthFlow=USER_AUTH``): the
client names a ``USERNAME`` and, optionally, a ``PREFERRED_CHALLENGE``. When the preferred challenge is one the
user can take it starts at once; otherwise the answer is ``SELECT_CHALLENGE`` with ``AvailableChallenges``, and
the client answers ``ANSWER=<challenge>`` plus that challenge's parameters:

=============  ======================================================================================
PASSWORD       ``PASSWORD``: checked as USER_PASSWORD_AUTH checks it
PASSWORD_SRP   ``SRP_A``: the PASSWORD_VERIFIER challenge of USER_SRP_AUTH follows
EMAIL_OTP      a one-time code is emailed; answered with ``EMAIL_OTP_CODE``
SMS_OTP        a one-time code is texted; answered with ``SMS_OTP_CODE``
WEB_AUTHN      ``CREDENTIAL_REQUEST_OPTIONS`` go out; answered with the assertion as ``CREDENTIAL``
=============  ======================================================================================

What a user may choose is the pool's ``SignInPolicy.AllowedFirstAuthFactors`` (PASSWORD covers PASSWORD and
PASSWORD_SRP) narrowed to what the user has: a password, a verified email, a verified phone number, a passkey.
One-time codes are eight digits, worded as MFA codes are (the pool's SmsAuthenticationMessage, EmailMfaConfiguration
``Message``/``Subject``: gateway/services/mfa_codes.py), kept only as a keyed hash in the store's one-time codes
(bound to the challenge that sent them), used once, expiring with the challenge session; a wrong code counts
towards the lockout as a wrong password does. An unknown user, when the client prevents user existence errors, is
offered a selection of the pool's factors, the same at every try as a user's are, is shown the destination
ForgotPassword shows it, and fails at the answer, as SRP's decoy challenges do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

import structlog

from gateway.errors import (
    CodeDeliveryFailureException,
    CodeMismatchException,
    ExpiredCodeException,
    GatehouseError,
    InvalidParameterException,
    NotAuthorizedException,
)
from gateway.ids import new_code, new_opaque_token, sha256_hex
from gateway.services import sign_in_factors
from gateway.services.auth import CHALLENGES, FLOWS, AuthContext, AuthResult, AuthService, challenge, flow
from gateway.services.code_limits import unknown_user_key
from gateway.services.mfa import mfa_settings
from gateway.services.mfa_codes import send_sign_in_code
from gateway.services.passwords import PasswordHasher
from gateway.services.pools import PoolView
from gateway.services.risk import OFF, security_mode
from gateway.services.users import FORCE_CHANGE_PASSWORD, UserService, check_secret_hash, mask_email, mask_phone
from gateway.services.webauthn import WEB_AUTHN, PasskeyRejected, PasskeyService, allowed_first_factors
from gateway.storage.base import CodeRecord, Store, UserRecord

log = structlog.get_logger("gateway.passwordless")

SELECT_CHALLENGE = "SELECT_CHALLENGE"
EMAIL_OTP = "EMAIL_OTP"
SMS_OTP = "SMS_OTP"
# The challenges of choice-based sign-in, in the order they are offered.
FIRST_FACTOR_CHALLENGES = ("PASSWORD", "PASSWORD_SRP", EMAIL_OTP, SMS_OTP, WEB_AUTHN)
# The AllowedFirstAuthFactors value that enables each challenge.
_FACTOR_OF = {"PASSWORD": "PASSWORD", "PASSWORD_SRP": "PASSWORD", EMAIL_OTP: EMAIL_OTP, SMS_OTP: SMS_OTP}
_FACTOR_OF[WEB_AUTHN] = WEB_AUTHN
# Where each one-time-code challenge sends its code, and the answer that carries it back.
_OTP_ATTRIBUTE = {EMAIL_OTP: "email", SMS_OTP: "phone_number"}
_OTP_ANSWER = {EMAIL_OTP: "EMAIL_OTP_CODE", SMS_OTP: "SMS_OTP_CODE"}
OTP_DIGITS = 8


def passwordless_sign_up(pool: PoolView) -> bool:
    """Whether SignUp may come without a Password: the pool lets users sign in with a one-time code (a passkey
    alone would not do, as registering one needs a signed-in user)."""
    return bool({EMAIL_OTP, SMS_OTP} & set(allowed_first_factors(pool)))


def _required(parameters: Mapping[str, str], name: str) -> str:
    value = parameters.get(name)
    if not value or not isinstance(value, str):
        raise InvalidParameterException(f"Missing required parameter {name}")
    return value


def _owes_mfa(pool: PoolView, user: UserRecord) -> bool:
    """Whether ``user`` signs in with MFA: the pool requires it, or allows it and the user activated a factor."""
    if pool.mfa_configuration == "ON":
        return True
    return pool.mfa_configuration == "OPTIONAL" and bool(mfa_settings(user)["enabled"])


def _invalid_session() -> NotAuthorizedException:
    return NotAuthorizedException("Invalid session for the user.")


class PasswordlessService:
    """What the USER_AUTH challenges need beyond the sign-in engine: codes, their delivery, passkeys."""

    def __init__(
        self, store: Store, users: UserService, hasher: PasswordHasher, passkeys: PasskeyService, code_key: bytes
    ) -> None:
        self.store = store
        self.users = users
        self.hasher = hasher
        self.passkeys = passkeys
        self._code_key = code_key

    async def available(self, pool: PoolView, user: UserRecord | None) -> list[str]:
        """The challenges ``user`` may choose; for None, those a user of the pool might have (an unknown name is
        offered a selection of them: :func:`_choices`)."""
        allowed = set(allowed_first_factors(pool))
        offered = [c for c in FIRST_FACTOR_CHALLENGES if _FACTOR_OF[c] in allowed]
        if (pool.mfa_configuration == "ON") if user is None else _owes_mfa(pool, user):
            # "Passwordless authentication flows aren't compatible with required multi-factor authentication (MFA)
            # in your user pool. If MFA is optional in your user pool, users who have activated MFA can't sign in
            # with a passwordless first factor" (Authentication flows, passwordless sign-in). A passkey that counts
            # as MFA (MULTI_FACTOR_WITH_USER_VERIFICATION) is the exception: it satisfies MFA by itself.
            passkey_is_mfa = (pool.settings.get("WebAuthnConfiguration") or {}).get(
                "FactorConfiguration"
            ) == "MULTI_FACTOR_WITH_USER_VERIFICATION"
            offered = [c for c in offered if c in ("PASSWORD", "PASSWORD_SRP") or (c == WEB_AUTHN and passkey_is_mfa)]
        if user is None:
            return offered
        has_passkey = WEB_AUTHN in offered and bool(
            await self.store.list_webauthn_credentials(pool.id, user.username_key)
        )
        usable = {
            "PASSWORD": user.password_hash is not None,
            "PASSWORD_SRP": isinstance(user.secrets.get("srp"), str),
            EMAIL_OTP: bool(user.attributes.get("email")) and user.attributes.get("email_verified") == "true",
            SMS_OTP: bool(user.attributes.get("phone_number"))
            and user.attributes.get("phone_number_verified") == "true",
            WEB_AUTHN: has_passkey,
        }
        return [c for c in offered if usable[c]]

    async def configured_factors(self, pool: PoolView, user: UserRecord) -> list[str]:
        """GetUserAuthFactors' ConfiguredUserAuthFactors: the AuthFactorType of each challenge the user may
        choose in USER_AUTH sign-in."""
        return list(dict.fromkeys(_FACTOR_OF[c] for c in await self.available(pool, user)))

    # --- one-time codes ----------------------------------------------------------------------------------

    def _code_hash(self, pool_id: str, key: str, purpose: str, nonce: str, code: str) -> str:
        # Keyed, and bound to the challenge (nonce) that sent it: a code answers that challenge only.
        message = f"sign-in|{pool_id}|{key}|{purpose}|{nonce}|{code}".encode()
        return hmac.new(self._code_key, message, hashlib.sha256).hexdigest()

    async def send_code(self, ctx: AuthContext, user: UserRecord, name: str, nonce: str) -> None:
        attribute = _OTP_ATTRIBUTE[name]
        code = new_code(OTP_DIGITS)
        purpose = f"sign_in:{name}"
        ticket = await self.users.limit_code_send(ctx.pool, user.username_key, purpose)
        # Worded as SMS and email MFA codes are: the pool's SMS authentication message and EmailMfaConfiguration
        # ("codes for MFA and sign-in with email OTPs", EmailMfaConfigType), not the verification template.
        medium = "EMAIL" if name == EMAIL_OTP else "SMS"
        try:
            await send_sign_in_code(self.users, ctx.pool, user, medium, user.attributes[attribute], code, purpose)
        except CodeDeliveryFailureException:
            log.warning("code.delivery_failed", pool=ctx.pool.id, username=user.username, purpose=purpose)
            await self.users.give_back_code_send(ctx.pool, user.username_key, ticket)  # never sent: costs nothing
            raise
        except GatehouseError:  # the pool's CustomMessage function failed or answered what cannot be sent
            await self.users.give_back_code_send(ctx.pool, user.username_key, ticket)
            raise
        # Stored once sent: a send that fails leaves the code of a sign-in already under way (one per purpose) as it
        # was. The code answers only the challenge ``nonce`` names, which is not handed out before this returns.
        await self.store.put_code(
            CodeRecord(
                pool_id=ctx.pool.id,
                username_key=user.username_key,
                purpose=purpose,
                code_hash=self._code_hash(ctx.pool.id, user.username_key, purpose, nonce, code),
                expires_at=time.time() + ctx.client.auth_session_seconds,
                data={"nonce": nonce},
            )
        )

    async def check_code(self, ctx: AuthContext, user: UserRecord, name: str, nonce: str, code: str) -> None:
        """Consume the code ``name`` sent for the challenge ``nonce``; exactly one correct answer wins."""
        purpose = f"sign_in:{name}"
        record = await self.store.get_code(ctx.pool.id, user.username_key, purpose)
        if record is None:
            raise ExpiredCodeException("The code has expired.")
        if record.data.get("nonce") != nonce:
            # A later challenge sent a newer code: nothing answers this one. Said as a wrong code is, the
            # answer an unknown name's decoy challenge gives: "replaced" would tell that a user asked again.
            raise CodeMismatchException("Invalid code received for user")
        if record.expires_at < time.time():
            await self.store.delete_code(ctx.pool.id, user.username_key, purpose)
            raise ExpiredCodeException("The code has expired.")
        expected = self._code_hash(ctx.pool.id, user.username_key, purpose, nonce, code)
        if not hmac.compare_digest(expected, record.code_hash):
            raise CodeMismatchException("Invalid code received for user")
        if not await self.store.consume_code(ctx.pool.id, user.username_key, purpose, expected):
            raise ExpiredCodeException("The code has already been used.")


def _decoy_choices(service: AuthService, pool: PoolView, given: str, offered: list[str]) -> list[str]:
    """What an unknown name may choose: "For choice-based authentication requests, Amazon Cognito responds with a
    random selection from the challenge types that the user pool allows" (Managing user existence error
    responses). Chosen as a user's list is made, so that nothing in it tells the name is no user's: from
    ``offered`` (the pool's factors a user could have, see :meth:`PasswordlessService.available`), PASSWORD with
    PASSWORD_SRP as a password gives both, the one-time codes of the addresses the name stands for
    (UserService.decoy_addresses: the medium a simulated delivery names agrees), each other factor in or out by a
    bit of an HMAC of the name under the server's decoy secret, so the name is offered the same list at every
    try, as a user is."""
    message = f"gatehouse/choice/decoy|{pool.id}|{pool.username_key(given)}".encode(errors="surrogatepass")
    bits = int.from_bytes(hmac.new(service.fake_srp_secret, message, hashlib.sha256).digest()[:8], "big")
    # The one-time codes of the addresses the name stands for, as a simulated delivery names them too.
    addresses = _passwordless(service).users.decoy_addresses(pool, given)
    own = {EMAIL_OTP: "email" in addresses, SMS_OTP: "phone_number" in addresses}
    drawn = {c for i, c in enumerate(FIRST_FACTOR_CHALLENGES) if (bits >> i) & 1 and c not in own}
    chosen = [c for c in offered if _FACTOR_OF[c] == "PASSWORD" or own.get(c) or c in drawn]
    if chosen or not offered:
        return chosen
    # Where the pool allows no password, a user signed up with some other factor: the name keeps one of them.
    return [offered[(bits >> 8) % len(offered)]]


async def _choices(service: AuthService, ctx: AuthContext, user: UserRecord | None, given: str) -> list[str]:
    """The challenges offered for the name ``given``: the user's (None: an unknown name's, :func:`_decoy_choices`)."""
    available = await _passwordless(service).available(ctx.pool, user)
    return available if user is not None else _decoy_choices(service, ctx.pool, given, available)


def _passwordless(service: AuthService) -> PasswordlessService:
    if service.passwordless is None:
        raise InvalidParameterException("Choice-based sign-in is not available.")
    return service.passwordless


async def _begin(
    service: AuthService,
    ctx: AuthContext,
    user: UserRecord | None,
    given: str,
    name: str,
    parameters: Mapping[str, str],
) -> AuthResult:
    """Start (or, for PASSWORD, complete) the first factor ``name``, already known to be available."""
    helper = _passwordless(service)
    if name == "PASSWORD":
        password = _required(parameters, "PASSWORD")
        if user is None:
            await service.hasher.dummy_verify(password)
            await service.decoy_failure(ctx, ctx.pool.username_key(given))
            raise service.unknown_user_error(ctx)
        await service.verify_password(ctx, user, password)
        return await service.after_first_factor(ctx, user, device_key=parameters.get("DEVICE_KEY") or None)
    if name == "PASSWORD_SRP":
        srp_parameters = {"USERNAME": given, "SRP_A": _required(parameters, "SRP_A")}
        for member in ("SECRET_HASH", "DEVICE_KEY"):
            if parameters.get(member):
                srp_parameters[member] = parameters[member]
        return await FLOWS["USER_SRP_AUTH"](service, ctx, srp_parameters)
    key = user.username_key if user is not None else ctx.pool.username_key(given)
    if user is not None:
        # No codes are sent, and no passkey ceremony starts, for a user who is locked out.
        service.check_lockout(ctx, user)
    state: dict[str, Any] = {"challenge": name, "key": key, "given": given, "decoy": user is None, "first_factor": True}
    if parameters.get("DEVICE_KEY"):
        # "Add DEVICE_KEY if you want to bypass multi-factor authentication with a remembered device" (every flow).
        state["device_key"] = parameters["DEVICE_KEY"]
    if name in _OTP_ATTRIBUTE:
        nonce = new_opaque_token(16)
        state["nonce"] = nonce
        if user is not None:
            destination = user.attributes[_OTP_ATTRIBUTE[name]]
            if user.enabled:
                await helper.send_code(ctx, user, name, nonce)
            else:
                # A disabled user cannot sign in: no code goes out (anyone may ask), yet the answer looks the
                # same, and any code is then refused as a wrong one (see _one_time_code).
                await helper.users.limit_code_send(ctx.pool, user.username_key, f"sign_in:{name}")
            masked = mask_email(destination) if name == EMAIL_OTP else mask_phone(destination)
        else:
            # The name asked for is limited as a user would be, so the limit does not tell it is unknown.
            await helper.users.limit_code_send(ctx.pool, unknown_user_key(given), f"sign_in:{name}")
            # The destination this name gets wherever a code would go (ForgotPassword too).
            masked = helper.users.simulated_destination(ctx.pool, given, _OTP_ATTRIBUTE[name])
        session = await service.new_session(ctx, user, state, username_key=key)
        log.info("sign_in.code_sent", pool=ctx.pool.id, client=ctx.client.id, challenge=name, decoy=user is None)
        return AuthResult(
            challenge_name=name,
            challenge_parameters={
                "CODE_DELIVERY_DELIVERY_MEDIUM": "EMAIL" if name == EMAIL_OTP else "SMS",
                "CODE_DELIVERY_DESTINATION": masked,
            },
            session=session,
            username=user.username if user is not None else None,
        )
    # WEB_AUTHN
    webauthn_challenge = secrets.token_bytes(32)
    credentials = await helper.store.list_webauthn_credentials(ctx.pool.id, key) if user is not None else []
    state["webauthn_challenge"] = webauthn_challenge.hex()
    session = await service.new_session(ctx, user, state, username_key=key)
    options = helper.passkeys.request_options(ctx.pool, credentials, webauthn_challenge)
    return AuthResult(
        challenge_name=WEB_AUTHN,
        challenge_parameters={"CREDENTIAL_REQUEST_OPTIONS": options},
        session=session,
        username=user.username if user is not None else None,
    )


# The state of the Session ConfirmSignUp hands out: no challenge of that name exists, so it answers no
# RespondToAuthChallenge; only InitiateAuth USER_AUTH takes it (_sign_in_after_sign_up).
SIGN_UP_CONFIRMED = "SIGN_UP_CONFIRMED"
_OTP_OF_ATTRIBUTE = {attribute: name for name, attribute in _OTP_ATTRIBUTE.items()}


async def sign_up_session(service: AuthService, ctx: AuthContext, user: UserRecord, verified: str | None) -> str | None:
    """ConfirmSignUp's Session: "Users who sign up and confirm their user accounts with email or SMS message OTPs
    can automatically sign in with the passwordless factor that matches their confirmation message" (Authentication
    flows, passwordless sign-in). Given when the code verified an address whose one-time-code factor the pool
    allows; good for one InitiateAuth USER_AUTH from the same client within its auth session validity."""
    factor = _OTP_OF_ATTRIBUTE.get(verified or "")
    if factor is None or service.passwordless is None or factor not in allowed_first_factors(ctx.pool):
        return None
    return await service.new_session(ctx, user, {"challenge": SIGN_UP_CONFIRMED, "factor": factor})


async def _sign_in_after_sign_up(service: AuthService, ctx: AuthContext, session: str) -> AuthResult:
    """InitiateAuth USER_AUTH with ConfirmSignUp's Session: "Amazon Cognito assumes the SMS or email message
    one-time verification password from ConfirmSignUp as the primary authentication factor. You're not required
    to submit this code a second time" (InitiateAuthRequest.Session); the AuthParameters are ignored. The user
    must still be eligible for that factor (and signs in as any other sign-in goes on: MFA, threat protection)."""
    record = await service.store.take_auth_session(sha256_hex(session))
    if (
        record is None
        or record.expires_at < time.time()
        or record.client_id != ctx.client.id
        or record.pool_id != ctx.pool.id
        or record.state.get("challenge") != SIGN_UP_CONFIRMED
    ):
        raise _invalid_session()
    user = await service.store.get_user(ctx.pool.id, record.username_key)
    if user is None or str(record.state.get("factor")) not in await _passwordless(service).available(ctx.pool, user):
        raise _invalid_session()
    service.check_lockout(ctx, user)
    service.check_user_can_sign_in(user)
    log.info("sign_in.after_sign_up", pool=ctx.pool.id, client=ctx.client.id, username=user.username)
    return await service.after_first_factor(ctx, user)


@flow("USER_AUTH")
async def _user_auth(service: AuthService, ctx: AuthContext, parameters: Mapping[str, str]) -> AuthResult:
    """InitiateAuth USER_AUTH: the preferred challenge when the user can take it, else SELECT_CHALLENGE; with
    ConfirmSignUp's Session, the sign-in that the confirmation code already proved."""
    if ctx.session:
        return await _sign_in_after_sign_up(service, ctx, ctx.session)
    _passwordless(service)  # refused before any name is looked up where choice-based sign-in is not available
    username = _required(parameters, "USERNAME")
    preferred = parameters.get("PREFERRED_CHALLENGE")
    if preferred is not None and preferred not in FIRST_FACTOR_CHALLENGES:
        raise InvalidParameterException(f"Invalid PREFERRED_CHALLENGE: {preferred}")
    user = await service.users.find(ctx.pool, username)
    if user is None:
        check_secret_hash(ctx.client, username, parameters.get("SECRET_HASH"))
        if not ctx.client.prevent_user_existence_errors:
            raise service.unknown_user_error(ctx)
    else:
        check_secret_hash(ctx.client, user.username, parameters.get("SECRET_HASH"), usernames=(username,))
    # The pool's PreAuthentication function, before any factor is offered (or a code sent).
    await service.pre_authentication(ctx, username, user)
    available = await _choices(service, ctx, user, username)
    if not available:
        raise NotAuthorizedException("The user has no sign-in method that this user pool allows.")
    if preferred in available:
        return await _begin(service, ctx, user, username, preferred, parameters)
    key = user.username_key if user is not None else ctx.pool.username_key(username)
    state = {
        "challenge": SELECT_CHALLENGE,
        "key": key,
        "given": username,
        "decoy": user is None,
        "available": available,
    }
    if parameters.get("DEVICE_KEY"):
        state["device_key"] = parameters["DEVICE_KEY"]
    session = await service.new_session(ctx, user, state, username_key=key)
    return AuthResult(
        challenge_name=SELECT_CHALLENGE,
        challenge_parameters={},
        session=session,
        available_challenges=available,
        username=user.username if user is not None else None,
    )


async def _session_user(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> UserRecord | None:
    """The user a choice-based challenge belongs to (None for a decoy), checked against the answer's USERNAME
    and SECRET_HASH: a Session answers for the user it was issued to only."""
    given, first = responses.get("USERNAME"), str(state["given"])
    pool = ctx.pool
    user = None if state.get("decoy") else await service.store.get_user(pool.id, str(state["key"]))
    if not state.get("decoy") and user is None:
        raise _invalid_session()
    if given:
        known = (pool.username_key(first), str(state["key"]))
        if pool.username_key(given) not in known and (user is None or given not in user.attributes.values()):
            raise _invalid_session()
    check_secret_hash(
        ctx.client, user.username if user else first, responses.get("SECRET_HASH"), usernames=(given or first,)
    )
    return user


@challenge(SELECT_CHALLENGE)
async def _select_challenge(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    answer = _required(responses, "ANSWER")
    if answer not in state.get("available", []):
        raise InvalidParameterException(f"{answer} is not an available challenge for this user.")
    user = await _session_user(service, ctx, state, responses)
    if answer not in await _choices(service, ctx, user, str(state["given"])):
        # Judged again now: an address changed (so unverified) since the Session was issued gets no code (an
        # unknown name's choices are judged alike, and are what they were).
        raise InvalidParameterException(f"{answer} is not an available challenge for this user.")
    # The choice is made: this Session is spent whatever the chosen challenge answers.
    state["spent"] = True
    if state.get("device_key") and not responses.get("DEVICE_KEY"):
        responses = {**responses, "DEVICE_KEY": str(state["device_key"])}  # named at InitiateAuth
    return await _begin(service, ctx, user, str(state["given"]), answer, responses)


async def _one_time_code(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str], name: str
) -> AuthResult:
    code = _required(responses, _OTP_ANSWER[name])
    user = await _session_user(service, ctx, state, responses)
    if user is None or not user.enabled:
        await service.decoy_failure(ctx, str(state["key"]))  # the read a real user's failure makes
        raise CodeMismatchException("Invalid code received for user")
    service.check_lockout(ctx, user)
    try:
        await _passwordless(service).check_code(ctx, user, name, str(state["nonce"]), code)
    except CodeMismatchException:
        await service.record_failure(ctx, user)
        raise
    service.check_user_can_sign_in(user)
    return await service.after_first_factor(ctx, user, device_key=state.get("device_key"))


# Cognito names email MFA's challenge EMAIL_OTP too: a second factor's EMAIL_OTP (registered by the MFA
# module, which the sign-in engine imports first) keeps its own handler; this one answers the first factor's.
_MFA_EMAIL_OTP = CHALLENGES.get(EMAIL_OTP)


@challenge(EMAIL_OTP)
async def _email_otp(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    if not state.get("first_factor") and _MFA_EMAIL_OTP is not None:
        return await _MFA_EMAIL_OTP(service, ctx, state, responses)
    return await _one_time_code(service, ctx, state, responses, EMAIL_OTP)


@challenge(SMS_OTP)
async def _sms_otp(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    return await _one_time_code(service, ctx, state, responses, SMS_OTP)


@challenge(WEB_AUTHN)
async def _web_authn(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """The passkey's assertion. Any answer uses the challenge up; a refused one counts as a failed sign-in."""
    credential = _required(responses, "CREDENTIAL")
    user = await _session_user(service, ctx, state, responses)
    state["spent"] = True
    refused = NotAuthorizedException("The passkey could not be verified.")
    if user is None:
        await service.decoy_failure(ctx, str(state["key"]))  # the read a real user's failure makes
        raise refused
    service.check_lockout(ctx, user)
    helper = _passwordless(service)
    try:
        record, user_verified = await helper.passkeys.verify_assertion(
            ctx.pool, user, credential, bytes.fromhex(str(state["webauthn_challenge"]))
        )
    except PasskeyRejected as exc:
        log.info(
            "sign_in.passkey_refused", pool=ctx.pool.id, client=ctx.client.id, username=user.username, reason=str(exc)
        )
        await service.record_failure(ctx, user)
        raise refused from exc
    service.check_user_can_sign_in(user)
    log.info("sign_in.passkey", pool=ctx.pool.id, username=user.username, credential=record.credential_id)
    multi_factor = (ctx.pool.settings.get("WebAuthnConfiguration") or {}).get("FactorConfiguration")
    device_key = state.get("device_key")
    if multi_factor == "MULTI_FACTOR_WITH_USER_VERIFICATION" and user_verified and user.status != FORCE_CHANGE_PASSWORD:
        # A passkey with user verification is possession and inherence at once: no further MFA is owed. It is a
        # sign-in like any other all the same: threat protection assesses it (its MFA actions are met by the
        # passkey; BLOCK still blocks), and the device is proven or handed a new key (NewDeviceMetadata: "a
        # device key in the response to any sign-in that doesn't already include device information").
        if security_mode(ctx.pool) != OFF:
            await service.risk.assess_sign_in(ctx, user, True)
        return await sign_in_factors.finish(service, ctx, user, auth_time=int(time.time()), device_key=device_key)
    return await service.after_first_factor(ctx, user, device_key=device_key)


__all__ = [
    "EMAIL_OTP",
    "FIRST_FACTOR_CHALLENGES",
    "SELECT_CHALLENGE",
    "SMS_OTP",
    "PasswordlessService",
    "passwordless_sign_up",
    "sign_up_session",
]
