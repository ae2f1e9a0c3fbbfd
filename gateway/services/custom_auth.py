"""Custom authentication: the CUSTOM_AUTH flow and its CUSTOM_CHALLENGE, run by the pool's challenge triggers.

"Custom authentication challenge Lambda triggers" (Cognito developer guide): InitiateAuth / AdminInitiateAuth
with ``AuthFlow=CUSTOM_AUTH`` and a ``USERNAME`` invoke the pool's ``DefineAuthChallenge`` function with the
challenges answered so far (``session``, empty at first). Its ``response`` decides:

- ``failAuthentication``: the sign-in fails (``NotAuthorizedException``, "Incorrect username or password.");
- ``issueTokens``: the user has proven enough; the sign-in goes on as any other whose first factor is proven
  (a new password owed, MFA where the pool asks for it, devices, then tokens);
- ``challengeName: CUSTOM_CHALLENGE``: ``CreateAuthChallenge`` makes the question. Its
  ``publicChallengeParameters`` (plus ``USERNAME``) go to the client as ``ChallengeParameters``; its
  ``privateChallengeParameters`` and ``challengeMetadata`` stay with the Session, server-side.

RespondToAuthChallenge / AdminRespondToAuthChallenge ``CUSTOM_CHALLENGE`` with ``ANSWER`` invokes
``VerifyAuthChallengeResponse`` with the private parameters and the answer (``challengeAnswer``); its
``answerCorrect`` is appended to the session as ``{challengeName, challengeResult, challengeMetadata}`` and
``DefineAuthChallenge`` decides again. Each round hands out a new Session; an answered one is spent.

Where the documentation is silent, Gatehouse:

- with ``CHALLENGE_NAME=SRP_A`` and ``SRP_A`` (the password first, as amazon-cognito-identity-js and Amplify's
  ``CUSTOM_WITH_SRP`` start), hands DefineAuthChallenge the session ``[{challengeName: SRP_A, challengeResult:
  true}]``; when it answers ``PASSWORD_VERIFIER`` the client gets SRP's PASSWORD_VERIFIER challenge, and a proven
  password is appended as ``{challengeName: PASSWORD_VERIFIER, challengeResult: true}`` before DefineAuthChallenge
  decides again. A wrong password fails the sign-in at once, as in USER_SRP_AUTH (and counts towards lockout);
- refuses a disabled, unconfirmed or reset-required user at InitiateAuth, before any function makes a
  challenge (which might send a code), and checks again before tokens; where the client prevents user existence
  errors such a user is instead taken through the challenges as an unknown name is (``userNotFound``), so that
  its status is never told before anything is proven;
- bounds a sign-in to :data:`MAX_CUSTOM_CHALLENGES` custom challenges: a function that asks for more fails
  the sign-in as ``failAuthentication`` does;
- sends ``clientMetadata`` from RespondToAuthChallenge only (InitiateAuth's ``ClientMetadata`` "doesn't pass"
  to the define and create auth challenge triggers, botocore's model says), and ``userNotFound`` when the client
  prevents user existence errors ("populated when PreventUserExistenceErrors is set to ENABLED").

An unknown name, when the client prevents user existence errors, goes through the functions like a user
(``userNotFound: true``, no attributes) and is announced under the name a user would be; it can never get
tokens: ``issueTokens`` is answered "Incorrect username or password.". Without that setting it is
``UserNotFoundException`` at once. A function's output that is not of the documented shape is
``InvalidLambdaResponseException`` ("Unrecognizable lambda output").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import structlog

from gateway.errors import (
    GatehouseError,
    InvalidLambdaResponseException,
    InvalidParameterException,
    NotAuthorizedException,
)
from gateway.services.auth import (
    CUSTOM_SIGN_IN,
    AuthContext,
    AuthResult,
    AuthService,
    _decoy_user_id,
    _incorrect,
    _required,
    _srp_a,
    challenge,
    flow,
    password_verifier_challenge,
)
from gateway.services.triggers import TriggerService, trigger_event, user_attributes
from gateway.services.users import check_secret_hash
from gateway.storage.base import UserRecord

log = structlog.get_logger("gateway.auth")

CUSTOM_CHALLENGE: Final = "CUSTOM_CHALLENGE"
SRP_A: Final = "SRP_A"
PASSWORD_VERIFIER: Final = "PASSWORD_VERIFIER"
DEFINE: Final = "DefineAuthChallenge"
CREATE: Final = "CreateAuthChallenge"
VERIFY: Final = "VerifyAuthChallengeResponse"
# Cognito's answer for a pool without the function a step needs.
NOT_CONFIGURED: Final = "Custom auth lambda trigger is not configured for the user pool."
# Custom challenges one sign-in may be asked (the documentation names no bound): each round hands out a new
# Session, so without one a function that never decides would keep a sign-in open without end.
MAX_CUSTOM_CHALLENGES: Final = 8


def _unrecognizable() -> InvalidLambdaResponseException:
    return InvalidLambdaResponseException("Unrecognizable lambda output")


def _flag(response: Mapping[str, Any], name: str) -> bool:
    value = response.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _unrecognizable()
    return value


def _optional_text(response: Mapping[str, Any], name: str) -> str | None:
    value = response.get(name)
    if value is not None and not isinstance(value, str):
        raise _unrecognizable()
    return value or None


def _text_map(response: Mapping[str, Any], name: str) -> dict[str, str]:
    value = response.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise _unrecognizable()
    return dict(value)


def _triggers(service: AuthService, ctx: AuthContext, trigger: str) -> TriggerService:
    """The trigger service, when the pool has a function for ``trigger``."""
    if service.triggers is None or service.triggers.function(ctx.pool, trigger) is None:
        raise InvalidParameterException(NOT_CONFIGURED)
    return service.triggers


class _SignIn:
    """Who a custom sign-in is for (None: an unknown name, under PreventUserExistenceErrors), and the request
    members every challenge trigger's event shares."""

    def __init__(self, ctx: AuthContext, user: UserRecord | None, given: str, *, answering: bool) -> None:
        self.ctx = ctx
        self.user = user
        self.given = given
        self.answering = answering

    @property
    def username(self) -> str:
        return self.user.username if self.user is not None else self.given

    def request(self, **members: Any) -> dict[str, Any]:
        user = self.user
        found: dict[str, Any] = {
            "userAttributes": user_attributes(user.attributes, sub=user.sub, status=user.status) if user else {},
            **members,
            # InitiateAuth's ClientMetadata is not passed to these triggers; a challenge answer's is.
            "clientMetadata": dict(self.ctx.client_metadata) if self.answering else {},
        }
        if self.ctx.client.prevent_user_existence_errors:
            found["userNotFound"] = user is None
        return found

    async def invoke(self, service: AuthService, trigger: str, source: str, request: dict[str, Any]) -> dict[str, Any]:
        triggers = _triggers(service, self.ctx, trigger)
        event = trigger_event(self.ctx.pool, source, self.username, request, client_id=self.ctx.client.id)
        return await triggers.invoke(self.ctx.pool, trigger, event)


async def _define(
    service: AuthService,
    sign_in: _SignIn,
    results: list[dict[str, Any]],
    *,
    announced: str,
    device_key: str | None,
    srp_a: str | None = None,
) -> AuthResult:
    """Ask DefineAuthChallenge what comes next, and do it: fail, go on to tokens, or issue a challenge (a custom
    one, or SRP's PASSWORD_VERIFIER right after an SRP_A start, whose ``srp_a`` is given)."""
    ctx, user = sign_in.ctx, sign_in.user
    response = await sign_in.invoke(
        service, DEFINE, "DefineAuthChallenge_Authentication", sign_in.request(session=results)
    )
    name = _optional_text(response, "challengeName")
    issue, fail = _flag(response, "issueTokens"), _flag(response, "failAuthentication")
    if fail:
        log.info("custom_auth.failed", pool=ctx.pool.id, client=ctx.client.id, rounds=len(results))
        raise _incorrect()
    if issue:
        if user is None:
            raise service.unknown_user_error(ctx)  # a decoy never signs in, whatever the function says
        # Disabled (or reset) while the challenges were answered: the answers are no way around that.
        service.check_user_can_sign_in(user)
        return await service.after_first_factor(ctx, user, auth_time=int(time.time()), device_key=device_key)
    if name == PASSWORD_VERIFIER and srp_a is not None:
        progress = {"results": results, "given": sign_in.given, "announced": announced}
        return await password_verifier_challenge(
            service, ctx, user, sign_in.given, srp_a, device_key, {CUSTOM_SIGN_IN: progress}
        )
    if name != CUSTOM_CHALLENGE:
        # Nothing decided, or a challenge Gatehouse cannot issue here (the SRP and MFA ones follow SRP_A only).
        log.warning("custom_auth.undecided", pool=ctx.pool.id, client=ctx.client.id, challenge=name)
        raise _unrecognizable()
    if sum(1 for r in results if r.get("challengeName") == CUSTOM_CHALLENGE) >= MAX_CUSTOM_CHALLENGES:
        log.warning("custom_auth.too_many_challenges", pool=ctx.pool.id, client=ctx.client.id, rounds=len(results))
        raise _incorrect()
    created = await sign_in.invoke(
        service,
        CREATE,
        "CreateAuthChallenge_Authentication",
        sign_in.request(challengeName=CUSTOM_CHALLENGE, session=results),
    )
    public = _text_map(created, "publicChallengeParameters")
    private = _text_map(created, "privateChallengeParameters")
    metadata = _optional_text(created, "challengeMetadata")
    key = user.username_key if user is not None else ctx.pool.username_key(sign_in.given)
    state: dict[str, Any] = {
        "challenge": CUSTOM_CHALLENGE,
        "key": key,
        "given": sign_in.given,
        "username": announced,
        "decoy": user is None,
        "results": results,
        "private": private,
        "metadata": metadata,
    }
    if device_key:
        state["device_key"] = device_key
    session = await service.new_session(ctx, user, state, username_key=key)
    return AuthResult(
        challenge_name=CUSTOM_CHALLENGE,
        # The name the answer is to give (a user's own, where the client typed an alias): Cognito's wins.
        challenge_parameters={**public, "USERNAME": announced},
        session=session,
        username=user.username if user is not None else None,
    )


@flow("CUSTOM_AUTH")
async def _custom_auth_flow(service: AuthService, ctx: AuthContext, parameters: Mapping[str, str]) -> AuthResult:
    """InitiateAuth CUSTOM_AUTH: PreAuthentication, then the first DefineAuthChallenge (session ``[]``)."""
    _triggers(service, ctx, DEFINE)  # Cognito's configuration error comes before any name is looked up
    username = _required(parameters, "USERNAME")
    start = parameters.get("CHALLENGE_NAME")
    if start and start not in (CUSTOM_CHALLENGE, SRP_A):
        raise InvalidParameterException(f"Invalid CHALLENGE_NAME: {start}")
    srp_a = _srp_a(parameters) if start == SRP_A else None
    user = await service.user_for_password_sign_in(ctx, username)
    if user is None:
        check_secret_hash(ctx.client, username, parameters.get("SECRET_HASH"))
        if not ctx.client.prevent_user_existence_errors:
            raise service.unknown_user_error(ctx)
        await service.pre_authentication(ctx, username, None)
        announced = _decoy_user_id(service, ctx, username)
    else:
        check_secret_hash(ctx.client, user.username, parameters.get("SECRET_HASH"), usernames=(username,))
        await service.pre_authentication(ctx, username, user)
        announced = user.username
        try:
            service.check_user_can_sign_in(user)
        except GatehouseError:
            if not ctx.client.prevent_user_existence_errors:
                raise
            # A disabled, unconfirmed or reset-required user, where the client hides who exists: answered as an
            # unknown name is (its functions are told userNotFound, and it never signs in), not with its status.
            user = None
    sign_in = _SignIn(ctx, user, username, answering=False)
    results = [_result(SRP_A, True)] if srp_a is not None else []
    return await _define(
        service, sign_in, results, announced=announced, device_key=parameters.get("DEVICE_KEY") or None, srp_a=srp_a
    )


async def after_password(
    service: AuthService, ctx: AuthContext, user: UserRecord, state: Mapping[str, Any], device_key: str | None
) -> AuthResult:
    """A custom sign-in's password, proven by SRP's PASSWORD_VERIFIER: DefineAuthChallenge decides what follows."""
    progress = state[CUSTOM_SIGN_IN]
    results = [*list(progress.get("results") or []), _result(PASSWORD_VERIFIER, True)]
    sign_in = _SignIn(ctx, user, str(progress["given"]), answering=True)
    return await _define(service, sign_in, results, announced=str(progress["announced"]), device_key=device_key)


def _result(name: str, correct: bool, metadata: str | None = None) -> dict[str, Any]:
    """One entry of the ``session`` list the define function reads (ChallengeResultType)."""
    return {"challengeName": name, "challengeResult": correct, "challengeMetadata": metadata}


@challenge(CUSTOM_CHALLENGE)
async def _custom_challenge(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """The answer to a custom challenge: VerifyAuthChallengeResponse judges it, DefineAuthChallenge decides
    what follows. Once the answer has gone to the function, the Session is spent."""
    answer = _required(responses, "ANSWER")
    given, first, announced = responses.get("USERNAME"), str(state["given"]), str(state["username"])
    pool = ctx.pool
    user = None
    if not state.get("decoy"):
        found = await service.store.get_user_with_groups(pool.id, str(state["key"]))
        if found is None:
            raise NotAuthorizedException("Invalid session for the user.")
        user = found[0]
        ctx.groups[user.username_key] = found[1]
    if given:
        known = (pool.username_key(first), pool.username_key(announced), str(state["key"]))
        if pool.username_key(given) not in known and (user is None or given not in user.attributes.values()):
            raise NotAuthorizedException("Invalid session for the user.")
    check_secret_hash(
        ctx.client, user.username if user else first, responses.get("SECRET_HASH"), usernames=(given or first,)
    )
    sign_in = _SignIn(ctx, user, first, answering=True)
    _triggers(service, ctx, VERIFY)
    state["spent"] = True
    private = state.get("private")
    verified = await sign_in.invoke(
        service,
        VERIFY,
        # (One table of the documentation says VerifyAuthChallenge_Authentication; its trigger-source table, and
        # the events Cognito sends, say this.)
        "VerifyAuthChallengeResponse_Authentication",
        sign_in.request(privateChallengeParameters=dict(private or {}), challengeAnswer=answer),
    )
    correct = _flag(verified, "answerCorrect")
    results = [*list(state.get("results") or []), _result(CUSTOM_CHALLENGE, correct, state.get("metadata"))]
    log.info("custom_auth.answered", pool=pool.id, client=ctx.client.id, correct=correct, rounds=len(results))
    device_key = state.get("device_key")
    return await _define(
        service, sign_in, results, announced=announced, device_key=str(device_key) if device_key else None
    )


__all__ = ["CUSTOM_CHALLENGE", "MAX_CUSTOM_CHALLENGES"]
