"""Signing in: the authentication flows and the challenge state machine behind them.

InitiateAuth / AdminInitiateAuth start a flow; while the user owes an answer the flow returns a challenge
(ChallengeName, ChallengeParameters and an opaque Session), and RespondToAuthChallenge /
AdminRespondToAuthChallenge carry the answer back. Each flow and each challenge is a small handler
registered by name, so SRP, MFA, devices, custom auth and passkeys plug in without touching the engine.
After the password (or its equivalent) is proven, :meth:`AuthService.after_first_factor` decides what the
user still owes (a new password now; MFA next) and otherwise issues tokens.

The Session is a random value whose hash keys the server-side state in the store, so any gateway process can
answer the next step; a session answers one response only, and expires with the client's
AuthSessionValidity (3 minutes by default), as Cognito's do. A Session from AdminInitiateAuth is answered through
AdminRespondToAuthChallenge only (botocore's model: "Send this session identifier, unmodified, to the next
AdminRespondToAuthChallenge request"): the public RespondToAuthChallenge refuses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from gateway.errors import (
    CodeMismatchException,
    GatehouseError,
    InvalidParameterException,
    NotAuthorizedException,
    PasswordResetRequiredException,
    RefreshTokenReuseException,
    UnsupportedTokenTypeException,
    UsernameExistsException,
    UserNotConfirmedException,
    UserNotFoundException,
)
from gateway.ids import new_opaque_token, sha256_hex
from gateway.metrics import Metrics
from gateway.secretbox import SecretBox, SecretBoxError
from gateway.services.cimd import app_client_id
from gateway.services.devices import DeviceService
from gateway.services.live_scopes import has_custom, live_scopes
from gateway.services.mfa import SOFTWARE_TOKEN_MFA, MfaService
from gateway.services.mfa_codes import MfaCodes
from gateway.services.passwords import PasswordHasher
from gateway.services.pools import ClientView, PoolService, PoolView
from gateway.services.risk import OFF, RiskService, security_mode
from gateway.services.schema import required_attributes, validate_attribute_values
from gateway.services.srp import (
    N_HEX,
    SrpServerChallenge,
    SrpVerifier,
    fake_srp_challenge,
    fake_srp_verifier,
    format_srp_timestamp,
    parse_srp_timestamp,
    start_srp,
    verify_password_claim,
)
from gateway.services.tokens import ADMIN_SCOPE, IssuedTokens, TokenService
from gateway.services.triggers import (
    TOKEN_GENERATION_AUTHENTICATION,
    TOKEN_GENERATION_NEW_PASSWORD,
    TOKEN_GENERATION_REFRESH,
    USER_MIGRATION_AUTHENTICATION,
    TriggerService,
    user_attributes,
)
from gateway.services.users import (
    CONFIRMED,
    FORCE_CHANGE_PASSWORD,
    RESET_REQUIRED,
    UNCONFIRMED,
    UserService,
    check_secret_hash,
)
from gateway.storage.base import (
    AuthSessionRecord,
    GroupRecord,
    NotFound,
    RefreshTokenRecord,
    Store,
    TokenFamilyRecord,
    UserRecord,
    VersionConflict,
)

if TYPE_CHECKING:
    from gateway.services.passwordless import PasswordlessService
    from gateway.services.sessions import SessionService

log = structlog.get_logger("gateway.auth")


def _seconds_claim(value: str) -> int | str:
    """``updated_at`` as OpenID Connect Core §5.1 has it, a JSON number of seconds. A value no signed 64-bit
    integer holds (the Number attribute is bounded only below) stays the attribute's text: the tokens' JSON
    writer (orjson) takes no larger integer, and the user's tokens must still be signed."""
    try:
        number = int(value) if value.isdigit() else int(float(value))
    except (ValueError, OverflowError):  # "", or a value the schema let through that is no number
        return value
    return number if -(2**63) <= number < 2**63 else value


# Attributes never put in an ID token.
# ``identities`` is in the ID token (federated and linked users), shaped by tokens.identities_claim.
_NOT_IN_ID_TOKEN = {"sub"}
# Which ExplicitAuthFlows (new ALLOW_ names and the legacy ones) enable each flow.
FLOW_PERMISSIONS: dict[str, set[str]] = {
    "USER_PASSWORD_AUTH": {"ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"},
    "ADMIN_USER_PASSWORD_AUTH": {"ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"},
    "ADMIN_NO_SRP_AUTH": {"ALLOW_ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"},
    "REFRESH_TOKEN_AUTH": {"ALLOW_REFRESH_TOKEN_AUTH"},
    "REFRESH_TOKEN": {"ALLOW_REFRESH_TOKEN_AUTH"},
    "USER_SRP_AUTH": {"ALLOW_USER_SRP_AUTH"},
    "CUSTOM_AUTH": {"ALLOW_CUSTOM_AUTH", "CUSTOM_AUTH_FLOW_ONLY"},
    "USER_AUTH": {"ALLOW_USER_AUTH"},
}
# Legacy clients (no ALLOW_ values) could always refresh and use SRP.
_LEGACY_IMPLIED = {"REFRESH_TOKEN_AUTH", "REFRESH_TOKEN", "USER_SRP_AUTH"}
ADMIN_ONLY_FLOWS = {"ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"}
PUBLIC_ONLY_FLOWS = {"USER_PASSWORD_AUTH"}
MAX_CHALLENGE_FAILURES = 5
# The session-state member marking a flow started through the admin API (AdminInitiateAuth): its challenges are
# answered through AdminRespondToAuthChallenge only.
ADMIN_SESSION = "admin"
# Cognito's lockout after failed sign-ins ("Lockout behavior for failed sign-in attempts"): after five failed
# attempts the user is locked out for 2**(n-5) seconds (n failures so far: 1 s, then doubling) up to about
# 15 minutes; the counter resets after a successful sign-in, or when no attempt failed for 15 minutes.
LOCKOUT_FREE_FAILURES = 5
LOCKOUT_MAX_SECONDS = 900.0
LOCKOUT_RESET_SECONDS = 900.0
LOCKED_OUT_MESSAGE = "Password attempts exceeded"
# The metrics reason of a refusal during a lockout (others are labelled by their error type).
LOCKED_OUT_REASON = "PasswordAttemptsExceeded"
# Tries of the read-modify-write of the lockout state when concurrent writes keep winning the version check.
LOCKOUT_WRITE_ATTEMPTS = 32


def lockout_seconds(failures: int) -> float:
    """How long ``failures`` failed sign-ins in a row lock the user out (0 before the sixth attempt)."""
    if failures < LOCKOUT_FREE_FAILURES:
        return 0.0
    return min(2.0 ** min(failures - LOCKOUT_FREE_FAILURES, 16), LOCKOUT_MAX_SECONDS)


def current_lockout(user: UserRecord, now: float) -> dict[str, Any] | None:
    """The user's failed-sign-in record (settings["lockout"]), unless it has lapsed (15 quiet minutes)."""
    state = user.settings.get("lockout")
    if not isinstance(state, dict):
        return None
    if now - float(state.get("last_failure") or 0) > LOCKOUT_RESET_SECONDS:
        return None
    return state


def _failure_reason(exc: GatehouseError) -> str:
    if isinstance(exc, NotAuthorizedException) and exc.message == LOCKED_OUT_MESSAGE:
        return LOCKED_OUT_REASON
    return exc.type_name


@dataclass(frozen=True)
class AuthContext:
    """Who is asking: the pool and client, whether through the admin (signed) API, and request facts."""

    pool: PoolView
    client: ClientView
    admin: bool
    client_metadata: Mapping[str, str] = field(default_factory=dict)
    source_ip: str | None = None
    # The caller's User-Agent: the device a user session's description names (gateway/services/sessions.py).
    user_agent: str | None = None
    # ContextData (admin API) or UserContextData (public API), for threat protection.
    context_data: Mapping[str, Any] | None = None
    # What threat protection learnt during this request (see gateway/services/risk.py); empty when it is off.
    signals: dict[str, Any] = field(default_factory=dict, compare=False)
    # Groups read with a user during this request, by username_key: the tokens issued at its end use them.
    groups: dict[str, list[GroupRecord]] = field(default_factory=dict, compare=False)
    # InitiateAuth's Session: for USER_AUTH, the one ConfirmSignUp handed out (gateway/services/passwordless.py).
    session: str | None = None
    # RespondToAuthChallenge's Session, once taken: the device challenge that may follow an answer goes on under
    # the same string (see sign_in_factors._device_challenge).
    answered_session: str | None = None
    # Whether tokens issued here start a user session (gateway/services/sessions.py). Not for the hosted pages:
    # their engine's tokens are revoked unseen, and the code grant starts the session.
    starts_session: bool = True
    # The pre token generation trigger's source for tokens issued at the end of this sign-in.
    token_source: str = TOKEN_GENERATION_AUTHENTICATION


@dataclass(frozen=True)
class AuthResult:
    """Either tokens or the next challenge. ``to_json`` gives InitiateAuth's response shape."""

    tokens: IssuedTokens | None = None
    challenge_name: str | None = None
    challenge_parameters: dict[str, str] = field(default_factory=dict)
    session: str | None = None
    include_refresh: bool = True
    # Who signed in (for the audit event); never sent on the wire.
    username: str | None = None
    # SELECT_CHALLENGE's choices (choice-based sign-in, gateway/services/passwordless.py).
    available_challenges: list[str] | None = None
    # NewDeviceMetadata (DeviceKey, DeviceGroupKey) when the pool tracks devices and this one is new.
    new_device: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        if self.tokens is not None:
            result: dict[str, Any] = {
                "AccessToken": self.tokens.access_token,
                "ExpiresIn": self.tokens.expires_in,
                "TokenType": "Bearer",
                "IdToken": self.tokens.id_token,
            }
            if self.tokens.refresh_token and self.include_refresh:
                result["RefreshToken"] = self.tokens.refresh_token
            if self.new_device is not None:
                result["NewDeviceMetadata"] = dict(self.new_device)
            return {"ChallengeParameters": {}, "AuthenticationResult": result}
        answer: dict[str, Any] = {
            "ChallengeName": self.challenge_name,
            "Session": self.session,
            "ChallengeParameters": self.challenge_parameters,
        }
        if self.available_challenges is not None:
            answer["AvailableChallenges"] = list(self.available_challenges)
        return answer


FlowHandler = Callable[["AuthService", AuthContext, Mapping[str, str]], Awaitable[AuthResult]]
ChallengeHandler = Callable[["AuthService", AuthContext, dict[str, Any], Mapping[str, str]], Awaitable[AuthResult]]

FLOWS: dict[str, FlowHandler] = {}
CHALLENGES: dict[str, ChallengeHandler] = {}
# Challenges whose answer may come without a Session: the named response carries the session token instead
# (Cognito sends no Session with PASSWORD_VERIFIER; its SECRET_BLOCK is the handle, and clients answer with it).
SESSION_IN_RESPONSE: dict[str, str] = {}


def flow(*names: str) -> Callable[[FlowHandler], FlowHandler]:
    def register(handler: FlowHandler) -> FlowHandler:
        for name in names:
            FLOWS[name] = handler
        return handler

    return register


def challenge(name: str, *, session_in: str | None = None) -> Callable[[ChallengeHandler], ChallengeHandler]:
    def register(handler: ChallengeHandler) -> ChallengeHandler:
        CHALLENGES[name] = handler
        if session_in is not None:
            SESSION_IN_RESPONSE[name] = session_in
        return handler

    return register


class AuthService:
    """The sign-in engine."""

    def __init__(
        self,
        store: Store,
        pools: PoolService,
        users: UserService,
        tokens: TokenService,
        hasher: PasswordHasher,
        box: SecretBox,
        metrics: Metrics,
        *,
        fake_srp_secret: bytes | None = None,
        risk: RiskService | None = None,
    ) -> None:
        self.store = store
        self.pools = pools
        self.users = users
        self.tokens = tokens
        self.hasher = hasher
        self.box = box
        self.metrics = metrics
        self.mfa = MfaService(store, box)
        # Choice-based sign-in (USER_AUTH), set by the service container.
        self.passwordless: PasswordlessService | None = None
        # The pool's Lambda triggers (gateway/services/triggers.py), set by the service container.
        self.triggers: TriggerService | None = None
        # User sessions (MaxPerUser, a session's activity), set by the service container.
        self.sessions: SessionService | None = None
        self.risk = risk or RiskService(store, pools, None, metrics)
        # Keys the decoy SRP challenges of unknown users; shared by every process (the app derives it from the
        # master key) so that an unknown name gets the same SALT whichever process answers.
        self.fake_srp_secret = fake_srp_secret if fake_srp_secret is not None else secrets.token_bytes(32)
        self.devices = DeviceService(store, box, self.fake_srp_secret)
        self.mfa_codes = MfaCodes(users, self.fake_srp_secret)

    # --- entry points ----------------------------------------------------------------------------------

    async def initiate(self, ctx: AuthContext, flow_name: str, parameters: Mapping[str, str]) -> AuthResult:
        handler = FLOWS.get(flow_name)
        if handler is None:
            raise InvalidParameterException(f"Unsupported auth flow: {flow_name}")
        if ctx.admin and flow_name in PUBLIC_ONLY_FLOWS:
            raise InvalidParameterException(f"Initiate Auth method not supported: {flow_name} for admin API.")
        if not ctx.admin and flow_name in ADMIN_ONLY_FLOWS:
            raise InvalidParameterException(f"Initiate Auth method not supported.: {flow_name}")
        self._check_flow_enabled(ctx.client, flow_name)
        # A CIMD client counts under its policy's app client: its id is a URL of the caller's choosing, and
        # metric labels must stay a bounded set.
        labels = {"pool": ctx.pool.id, "client": app_client_id(ctx.client), "flow": flow_name}
        self.metrics.sign_in_counters(labels["pool"], labels["client"], flow_name)[0].inc()
        try:
            if security_mode(ctx.pool) != OFF:  # (risk.screen's own first test, without the call)
                await self.risk.screen(ctx, parameters.get("USERNAME"), self.users.find)
            result = await handler(self, ctx, parameters)
        except GatehouseError as exc:
            reason = _failure_reason(exc)
            self.metrics.inc(self.metrics.sign_in_failures, **labels, reason=reason)
            log.info("sign_in.failed", reason=reason, detail=exc.message, **labels)
            raise
        self._record_step(result, labels)
        return result

    async def respond(
        self, ctx: AuthContext, challenge_name: str, responses: Mapping[str, str], session: str | None
    ) -> AuthResult:
        handler = CHALLENGES.get(challenge_name)
        if handler is None:
            raise InvalidParameterException(f"Invalid challenge name: {challenge_name}")
        if not session and challenge_name in SESSION_IN_RESPONSE:
            session = responses.get(SESSION_IN_RESPONSE[challenge_name])
        if not session or not isinstance(session, str):
            raise InvalidParameterException("Missing required parameter Session")
        record = await self.store.take_auth_session(sha256_hex(session))
        if record is None or record.expires_at < time.time():
            raise NotAuthorizedException("Invalid session for the user, session is expired.")
        if record.client_id != ctx.client.id or record.pool_id != ctx.pool.id:
            raise NotAuthorizedException("Invalid session for the user.")
        state = record.state
        if state.get(ADMIN_SESSION) and not ctx.admin:
            # Started by AdminInitiateAuth: a trusted, signed server's flow (which may have skipped what only
            # such a server may skip, e.g. SECRET_HASH), never finished through the public API.
            raise NotAuthorizedException("Invalid session for the user.")
        if state.get("challenge") != challenge_name:
            # Taken to be read, but not this answer's: it stays for the answer it is for (a repeated or late answer
            # to an earlier step, whose Session the next step may go on under, must not end that step).
            await self.store.put_auth_session(record)
            raise InvalidParameterException("Invalid challenge name or session for the user.")
        ctx = dataclasses.replace(ctx, answered_session=session)
        labels = {"pool": ctx.pool.id, "client": app_client_id(ctx.client), "flow": f"challenge:{challenge_name}"}
        # An answer to a live challenge is an attempt of its flow, as InitiateAuth counts its own: successes
        # and failures are then counted against it.
        self.metrics.sign_in_counters(labels["pool"], labels["client"], labels["flow"])[0].inc()
        self.risk.resume(ctx, state)
        try:
            if security_mode(ctx.pool) != OFF:  # (risk.screen_answer's own first test, without the call)
                await self.risk.screen_answer(ctx)
            result = await handler(self, ctx, state, responses)
        except GatehouseError as exc:
            reason = _failure_reason(exc)
            self.metrics.inc(self.metrics.sign_in_failures, **labels, reason=reason)
            log.info("sign_in.challenge_failed", reason=reason, detail=exc.message, **labels)
            # A wrong answer leaves the session usable for a few more tries, as Cognito's does; the
            # count is kept with it so a session cannot be used to guess without limit. A handler marks the
            # state "spent" once the answer was checked against a one-time secret (SRP's b): never again.
            failures = int(state.get("failures", 0)) + 1
            if (
                failures < MAX_CHALLENGE_FAILURES
                and not isinstance(exc, NotAuthorizedException)
                and not state.get("spent")
            ):
                record.state = {**state, "failures": failures}
                await self.store.put_auth_session(record)
            raise
        self._record_step(result, labels)
        return result

    def _record_step(self, result: AuthResult, labels: dict[str, str]) -> None:
        """The audit event and metrics of one successful sign-in step (tokens or the next challenge)."""
        if result.tokens is not None:
            self.metrics.sign_in_counters(labels["pool"], labels["client"], labels["flow"])[1].inc()
        # log.bind().info is what log.info resolves to through structlog's lazy proxy, without the failed
        # attribute look-up and __getattr__ call on the way (this runs for every sign-in step).
        log.bind().info(
            "sign_in.step",
            outcome="tokens" if result.tokens else result.challenge_name,
            username=result.username,
            origin_jti=result.tokens.origin_jti if result.tokens else None,
            **labels,
        )

    def _check_flow_enabled(self, client: ClientView, flow_name: str) -> None:
        flows, legacy = client.auth_flows
        if not flows.isdisjoint(FLOW_PERMISSIONS.get(flow_name, ())):
            return
        if legacy and flow_name in _LEGACY_IMPLIED:
            return
        if flow_name in ("USER_PASSWORD_AUTH",):
            raise InvalidParameterException("USER_PASSWORD_AUTH flow not enabled for this client")
        raise InvalidParameterException("Auth flow not enabled for this client")

    # --- steps shared by flows and challenges ------------------------------------------------------------

    async def new_session(
        self,
        ctx: AuthContext,
        user: UserRecord | None,
        state: dict[str, Any],
        *,
        token: str | None = None,
        username_key: str = "",
    ) -> str:
        """Store ``state`` for the next step; returns the Session (``token`` if given, e.g. SRP's SECRET_BLOCK).
        ``user`` is None for a decoy challenge, which is then filed under ``username_key``."""
        session = token or new_opaque_token(96)
        if ctx.admin:
            state[ADMIN_SESSION] = True  # see respond()
        await self.risk.challenge_issued(ctx, user, state)
        await self.store.put_auth_session(
            AuthSessionRecord(
                session_hash=sha256_hex(session),
                pool_id=ctx.pool.id,
                client_id=ctx.client.id,
                username_key=user.username_key if user is not None else username_key,
                state=state,
                expires_at=time.time() + ctx.client.auth_session_seconds,
            )
        )
        return session

    async def user_for_password_sign_in(self, ctx: AuthContext, username: str) -> UserRecord | None:
        """Resolve the username; an unknown one is reported only after equal work (timing). The user's groups
        come in the same read and are kept with the request for the tokens it may issue."""
        found = await self.users.find_with_groups(ctx.pool, username)
        if found is None:
            return None
        user, groups = found
        if groups is not None:
            ctx.groups[user.username_key] = groups
        return user

    def unknown_user_error(self, ctx: AuthContext) -> GatehouseError:
        if ctx.client.prevent_user_existence_errors:
            return NotAuthorizedException("Incorrect username or password.")
        return UserNotFoundException("User does not exist.")

    async def verify_password(self, ctx: AuthContext, user: UserRecord, password: str) -> None:
        """The first factor by password, with the checks Cognito makes around it, in Cognito's order. A
        locked-out user is refused before the password is looked at; a wrong password counts a failure."""
        self.check_lockout(ctx, user)
        if (
            user.password_hash is None
            and user.status == RESET_REQUIRED
            and not ctx.client.prevent_user_existence_errors
        ):
            # A user imported from a CSV file has no password: "The first time each imported user signs in and
            # enters any password" Cognito answers PasswordResetRequiredException, or NotAuthorizedException under
            # PreventUserExistenceErrors ("Requiring imported users to reset their passwords"), which the wrong
            # password path below answers.
            raise PasswordResetRequiredException()
        if user.password_hash is None or not await self.hasher.verify(user.password_hash, password):
            await self.record_failure(ctx, user)
            raise NotAuthorizedException("Incorrect username or password.")
        # The hash takes a while, off the loop: failures racing this attempt (a burst of guesses sent at once,
        # on any process) may have started a lockout meanwhile. Judged as if it came after them, the attempt is
        # refused as a locked-out one, right password or wrong (as record_failure does): otherwise a burst of
        # guesses would all be judged, and the one right guess told apart from the others.
        fresh = await self.store.get_user(ctx.pool.id, user.username_key)
        if fresh is None:
            raise self.unknown_user_error(ctx)
        self.check_lockout(ctx, fresh)
        await self.risk.check_sign_in_password(ctx, user, password)
        if self.hasher.needs_rehash(user.password_hash):
            await self._rehash(ctx, user, password)
        self.check_user_can_sign_in(user)

    # --- lockout after failed sign-ins ----------------------------------------------------------------------
    #
    # The state is the user record's settings["lockout"] = {"failures", "last_failure", "locked_until"}, written
    # with the store's version check (and retried), before the answer, so failures racing in from several
    # processes all count and each attempt is judged after the ones before it. Only known users are counted: an
    # unknown name never locks out and always gets "Incorrect username or password." (keeping state for any name
    # typed would let anyone fill the store), after a read where a real user's failure is written
    # (decoy_failure). As with Cognito, the "Password attempts exceeded" answer does tell that a name is a real
    # user once it has been locked out, even with PreventUserExistenceErrors; the lockout itself is what limits
    # guessing there.

    def check_lockout(self, ctx: AuthContext, user: UserRecord) -> None:
        """Refuse a sign-in attempt during a lockout, without checking the password."""
        now = time.time()
        state = current_lockout(user, now)
        if state is None or float(state.get("locked_until") or 0) <= now:
            return
        log.info(
            "sign_in.locked_out",
            pool=ctx.pool.id,
            client=ctx.client.id,
            username=user.username,
            failures=state.get("failures"),
            locked_until=state.get("locked_until"),
        )
        raise NotAuthorizedException(LOCKED_OUT_MESSAGE)

    async def record_failure(self, ctx: AuthContext, user: UserRecord) -> None:
        """Count one failed sign-in (a wrong password, SRP proof or MFA code); from the fifth on, lock out.
        When failures racing this one locked the user out since ``user`` was read, the attempt falls in that
        lockout: refused as :meth:`check_lockout` refuses it, uncounted, so that every attempt of a burst sent
        at once gets the answer it would have got one after another (and a right guess does not stand out)."""
        await self.risk.sign_in_failed(ctx, user)
        for attempt in range(LOCKOUT_WRITE_ATTEMPTS):
            now = time.time()
            state = current_lockout(user, now) or {}
            if attempt and float(state.get("locked_until") or 0) > now:
                raise NotAuthorizedException(LOCKED_OUT_MESSAGE)
            failures = int(state.get("failures") or 0) + 1
            seconds = lockout_seconds(failures)
            lockout = {"failures": failures, "last_failure": now, "locked_until": now + seconds}
            try:
                await self.store.update_user(dataclasses.replace(user, settings={**user.settings, "lockout": lockout}))
            except NotFound:
                return  # deleted meanwhile: nothing left to lock out
            except VersionConflict:
                fresh = await self.store.get_user(ctx.pool.id, user.username_key)
                if fresh is None:
                    return
                user = fresh
                continue
            if seconds:
                log.info(
                    "sign_in.lockout_started",
                    pool=ctx.pool.id,
                    client=ctx.client.id,
                    username=user.username,
                    failures=failures,
                    seconds=seconds,
                )
            return
        log.warning("sign_in.failure_not_counted", pool=ctx.pool.id, client=ctx.client.id, username=user.username)

    async def decoy_failure(self, ctx: AuthContext, username_key: str) -> None:
        """For an unknown name (or a decoy challenge), a store read where a real user's failure is written: some
        of the same work before the same answer, "Incorrect username or password.", and nothing counted."""
        await self.store.get_user(ctx.pool.id, username_key)

    async def clear_lockout(self, ctx: AuthContext, user: UserRecord) -> UserRecord:
        """A successful sign-in resets the failure count."""
        for _ in range(LOCKOUT_WRITE_ATTEMPTS):
            if "lockout" not in user.settings:
                return user
            settings = {k: v for k, v in user.settings.items() if k != "lockout"}
            try:
                return await self.store.update_user(dataclasses.replace(user, settings=settings))
            except NotFound:
                raise self.unknown_user_error(ctx) from None  # deleted while signing in
            except VersionConflict:
                fresh = await self.store.get_user(ctx.pool.id, user.username_key)
                if fresh is None:
                    return user
                user = fresh
        return user

    async def migrate_on_sign_in(self, ctx: AuthContext, username: str, password: str) -> UserRecord | None:
        """A password sign-in of a name that is no user: the pool's UserMigration function may vouch for the name
        and password (UserMigration_Authentication), and the user it answers with is created with that password
        and signs in. None when there is no function or it does not know the name."""
        if self.triggers is None or self.triggers.function(ctx.pool, "UserMigration") is None:
            return None
        answer = await self.triggers.user_migration(
            ctx.pool,
            USER_MIGRATION_AUTHENTICATION,
            client_id=ctx.client.id,
            username=username,
            password=password,
            # "InitiateAuth and AdminInitiateAuth pass ClientMetadata ... as validationData" to this trigger.
            validation_data=ctx.client_metadata,
        )
        if answer is None:
            return None
        try:
            return await self.users.migrate_user(
                ctx.pool,
                username=username,
                password=password,
                attributes=dict(answer.attributes),
                reset_required=answer.reset_required,
                force_alias_creation=answer.force_alias_creation,
                sms_mfa=answer.sms_mfa,
            )
        except UsernameExistsException:
            # Another sign-in of the same name migrated it meanwhile: that user is the one signing in.
            return await self.user_for_password_sign_in(ctx, username)

    async def pre_authentication(self, ctx: AuthContext, username: str, user: UserRecord | None) -> None:
        """The pool's PreAuthentication function, before the first factor is checked: it may refuse the sign-in.
        For a name that is no user it runs only when the client prevents user existence errors (``userNotFound``),
        where the answer must not tell the two apart; otherwise the caller is told the user does not exist."""
        if self.triggers is None or self.triggers.function(ctx.pool, "PreAuthentication") is None:
            return
        if user is None and not ctx.client.prevent_user_existence_errors:
            return
        await self.triggers.pre_authentication(
            ctx.pool,
            client_id=ctx.client.id,
            username=user.username if user is not None else username,
            attributes=user_attributes(user.attributes, sub=user.sub, status=user.status) if user else None,
            validation_data=ctx.client_metadata,
            user_not_found=user is None,
        )

    def check_user_can_sign_in(self, user: UserRecord) -> None:
        if not user.enabled:
            raise NotAuthorizedException("User is disabled.")
        if user.status == UNCONFIRMED:
            raise UserNotConfirmedException()
        if user.status == RESET_REQUIRED:
            raise PasswordResetRequiredException()
        if (
            user.status == FORCE_CHANGE_PASSWORD
            and user.temporary_password_expires_at is not None
            and user.temporary_password_expires_at < time.time()
        ):
            raise NotAuthorizedException("Temporary password has expired and must be reset by an administrator.")

    async def _rehash(self, ctx: AuthContext, user: UserRecord, password: str) -> None:
        """Argon2 parameters changed since this hash was made: upgrade it now that we know the password."""
        new_hash = await self.hasher.hash(password)
        user.password_hash = new_hash
        try:
            await self.store.update_user(user)
            user.version += 1
        except GatehouseError:
            raise
        except Exception as exc:
            log.info("password.rehash_skipped", pool=ctx.pool.id, username=user.username, reason=type(exc).__name__)
        else:
            log.info("password.rehashed", pool=ctx.pool.id, username=user.username)

    async def after_first_factor(
        self, ctx: AuthContext, user: UserRecord, *, auth_time: int | None = None, device_key: str | None = None
    ) -> AuthResult:
        """What a user owes once their password is proven: a new password, then MFA (or the proof of a
        remembered device, ``device_key``); else tokens."""
        auth_time = auth_time or int(time.time())
        if user.status == FORCE_CHANGE_PASSWORD:
            attributes = {
                k: v for k, v in user.attributes.items() if k not in ("email_verified", "phone_number_verified")
            }
            missing = [a for a in required_attributes(ctx.pool.schema) if not user.attributes.get(a)]
            state = {"challenge": "NEW_PASSWORD_REQUIRED", "auth_time": auth_time, "username": user.username}
            if device_key:
                state["device_key"] = device_key
            session = await self.new_session(ctx, user, state)
            return AuthResult(
                challenge_name="NEW_PASSWORD_REQUIRED",
                challenge_parameters={
                    "USER_ID_FOR_SRP": user.username,
                    "requiredAttributes": json.dumps([f"userAttributes.{a}" for a in missing]),
                    "userAttributes": json.dumps(attributes),
                },
                session=session,
                username=user.username,
            )
        # Threat protection first: a blocked sign-in stops here, whatever device or factor it could offer. (When
        # it is off there is nothing to assess, nor factors to work out for it.)
        risk_mfa = security_mode(ctx.pool) != OFF and await self.risk.assess_sign_in(
            ctx, user, bool(sign_in_factors.risk_factors(self, ctx, user))
        )
        return await sign_in_factors.second_factor(
            self, ctx, user, auth_time=auth_time, device_key=device_key, risk_mfa=risk_mfa
        )

    # --- MFA set-up inside a sign-in (the MFA_SETUP challenge's Session) ---------------------------------

    async def _setup_session(self, session: str) -> tuple[AuthContext, UserRecord, AuthSessionRecord]:
        """The sign-in an MFA_SETUP Session belongs to. The Session is taken (single use); the caller hands
        out a new one, or puts this one back after a wrong code."""
        record = await self.store.take_auth_session(sha256_hex(session))
        if record is None or record.expires_at < time.time():
            raise NotAuthorizedException("Invalid session for the user, session is expired.")
        if record.state.get("challenge") != "MFA_SETUP":
            await self.store.put_auth_session(record)
            raise NotAuthorizedException("Invalid session for the user.")
        pool = await self.pools.get_pool(record.pool_id)
        client = await self.pools.find_client(record.client_id)
        user = await self.store.get_user(pool.id, record.username_key)
        if user is None:
            raise NotAuthorizedException("Invalid session for the user.")
        # The set-up calls are public whoever started the sign-in; the Session it continues with keeps its origin.
        return AuthContext(pool=pool, client=client, admin=bool(record.state.get(ADMIN_SESSION))), user, record

    async def associate_in_setup(self, session: str) -> tuple[str, str]:
        """AssociateSoftwareToken with an MFA_SETUP Session: the secret, and the Session for the next step."""
        ctx, user, record = await self._setup_session(session)
        secret = await self.mfa.associate(ctx.pool, user)
        return secret, await self.new_session(ctx, user, {**record.state, "verified": False})

    async def verify_in_setup(self, session: str, code: str, device_name: str | None) -> str:
        """VerifySoftwareToken with an MFA_SETUP Session: TOTP becomes the user's factor, and the Session
        returned completes the sign-in (RespondToAuthChallenge MFA_SETUP). A wrong code leaves the Session
        usable for a few more tries, as a wrong challenge answer does."""
        ctx, user, record = await self._setup_session(session)
        try:
            await self.mfa.verify(ctx.pool, user, code, device_name, enable=True)
        except GatehouseError:
            failures = int(record.state.get("failures", 0)) + 1
            if failures < MAX_CHALLENGE_FAILURES:
                record.state = {**record.state, "failures": failures}
                await self.store.put_auth_session(record)
            raise
        return await self.new_session(ctx, user, {**record.state, "verified": True})

    async def groups_and_roles(
        self, pool_id: str, user: UserRecord, groups: list[GroupRecord] | None = None
    ) -> tuple[list[str], list[str], str | None]:
        """``cognito:groups``, ``cognito:roles`` and ``cognito:preferred_role`` (the role of the group with the
        lowest precedence; none when several share it, as Cognito documents). ``groups`` when the caller has
        read them already."""
        if groups is None:
            groups = await self.store.list_groups_for_user(pool_id, user.username_key)
        if not groups:
            return [], [], None
        names = [g.name for g in groups]
        with_roles = [g for g in groups if g.role_arn]
        roles = list(dict.fromkeys(g.role_arn for g in with_roles if g.role_arn))
        preferred = None
        ranked = sorted((g for g in with_roles if g.precedence is not None), key=lambda g: g.precedence or 0)
        if ranked:
            best = ranked[0].precedence
            tied = [g for g in ranked if g.precedence == best]
            if len({g.role_arn for g in tied}) == 1:
                preferred = tied[0].role_arn
        elif len(roles) == 1:
            preferred = roles[0]
        return names, roles, preferred

    def id_claims(self, ctx: AuthContext, user: UserRecord) -> dict[str, Any]:
        """The user's attributes as ID token claims, limited to the client's ReadAttributes."""
        readable = ctx.client.settings.get("ReadAttributes")
        claims: dict[str, Any] = {}
        for name, value in user.attributes.items():
            if name in _NOT_IN_ID_TOKEN or (readable and name not in readable):
                continue
            if name in ("email_verified", "phone_number_verified"):
                claims[name] = value == "true"
            elif name == "updated_at":
                claims[name] = _seconds_claim(value)
            else:
                claims[name] = value
        return claims

    async def issue_tokens(
        self,
        ctx: AuthContext,
        user: UserRecord,
        *,
        auth_time: int,
        origin_jti: str | None = None,
        groups: list[GroupRecord] | None = None,
        device_key: str | None = None,
        scopes: tuple[str, ...] | None = None,
        scopes_in_id_token: bool = False,
        new_device: bool = False,
    ) -> AuthResult:
        """ID, access and (for a new family) refresh tokens. ``scopes_in_id_token``: the ID token names the
        scopes in ``scope``, as a refresh narrower than its sign-in grants them; an ID token without that claim
        stands for its sign-in's scopes wherever it is exchanged (token_exchange)."""
        if groups is None:
            groups = ctx.groups.get(user.username_key)
        group_names, roles, preferred = await self.groups_and_roles(ctx.pool.id, user, groups)
        if ctx.signals:  # threat protection is on and recorded this sign-in (risk.sign_in_passed's own test)
            await self.risk.sign_in_passed(ctx, user)
        client = ctx.client
        customization = None
        if self.triggers is not None and ctx.pool.settings.get("LambdaConfig"):  # (no pool's triggers: no work)
            attributes = user_attributes(user.attributes, sub=user.sub, status=user.status)
            if origin_jti is None:
                # Every factor is proven (a refresh is no sign-in): the function may still refuse it.
                await self.triggers.post_authentication(
                    ctx.pool,
                    client_id=client.id,
                    username=user.username,
                    attributes=attributes,
                    new_device_used=new_device,
                    # InitiateAuth's ClientMetadata goes to "Pre signup, Pre authentication, User migration" only
                    # (its API reference); a challenge answer's goes here.
                    client_metadata=ctx.client_metadata if ctx.answered_session is not None else None,
                )
            if ctx.starts_session or origin_jti is not None:
                # (The hosted pages' own sign-in issues tokens nobody sees: their code grant runs the trigger.)
                customization = await self.triggers.pre_token_generation(
                    ctx.pool,
                    TOKEN_GENERATION_REFRESH if origin_jti is not None else ctx.token_source,
                    client_id=client.id,
                    username=user.username,
                    attributes=attributes,
                    groups=group_names,
                    roles=roles,
                    preferred_role=preferred,
                    scopes=scopes if scopes is not None else (ADMIN_SCOPE,),
                    # "Amazon Cognito doesn't include data from the ClientMetadata parameter in AdminInitiateAuth
                    # and InitiateAuth": only a challenge answer's reaches this trigger.
                    client_metadata=ctx.client_metadata if ctx.answered_session is not None else None,
                )
        facts = None
        if origin_jti is None and ctx.starts_session and self.sessions is not None and self.sessions.tracking(ctx.pool):
            # A new token session: where it came from (room is made for it once it exists, below).
            facts = self.sessions.facts(ctx.user_agent, ctx.source_ip)
        tokens = await self.tokens.issue(
            pool_id=ctx.pool.id,
            client_id=client.id,
            app_client_id=app_client_id(client),
            username=user.username,
            username_key=user.username_key,
            sub=user.sub,
            id_claims=(
                {**self.id_claims(ctx, user), "scope": " ".join(scopes)}
                if scopes_in_id_token and scopes is not None
                else self.id_claims(ctx, user)
            ),
            groups=group_names,
            roles=roles,
            preferred_role=preferred,
            auth_time=auth_time,
            access_seconds=client.token_seconds("AccessToken"),
            id_seconds=client.token_seconds("IdToken"),
            refresh_seconds=client.token_seconds("RefreshToken"),
            origin_jti=origin_jti,
            # The device a sign-in or refresh came from (Cognito's access token claim).
            extra_access_claims={"device_key": device_key} if device_key else None,
            scopes=scopes if scopes is not None else (ADMIN_SCOPE,),
            session_facts=facts,
            customization=customization,
        )
        if origin_jti is None and device_key:
            # A sign-in with a device (its proof, or the NewDeviceMetadata key it is handed): the new family's
            # refresh tokens are that device's (see _refresh_device).
            await self.store.bind_token_family_device(tokens.origin_jti, device_key)
        if facts is not None and self.sessions is not None and tokens.refresh_token:
            # Within MaxPerUser, the new session spared.
            await self.sessions.make_room(ctx.pool, user.username_key, tokens.origin_jti)
        issued = self.metrics.token_counters(ctx.pool.id)
        issued[0].inc()
        issued[1].inc()
        if tokens.refresh_token:
            issued[2].inc()
        log.bind().debug(  # as in _record_step
            "tokens.issued", pool=ctx.pool.id, client=client.id, username=user.username, origin_jti=tokens.origin_jti
        )
        return AuthResult(tokens=tokens, username=user.username)

    # --- refresh ---------------------------------------------------------------------------------------

    async def refresh_screened(
        self,
        ctx: AuthContext,
        refresh_token: str,
        *,
        device_key: str | None = None,
        scopes: tuple[str, ...] | None = None,
    ) -> AuthResult:
        """A refresh that does not come through InitiateAuth (GetTokensFromRefreshToken, /oauth2/token's
        refresh_token grant), screened as InitiateAuth screens every flow: an address in the pool's
        BlockedIPRangeList is refused ("overrides the risk decision and always blocks authentication requests",
        RiskExceptionConfigurationType)."""
        if security_mode(ctx.pool) != OFF:  # (risk.screen's own first test, without the call)
            await self.risk.screen(ctx, None, self.users.find)
        return await self.refresh(ctx, refresh_token, device_key=device_key, scopes=scopes)

    async def refresh(
        self,
        ctx: AuthContext,
        refresh_token: str,
        *,
        rotate: bool | None = None,
        device_key: str | None = None,
        scopes: tuple[str, ...] | None = None,
    ) -> AuthResult:
        """REFRESH_TOKEN_AUTH and GetTokensFromRefreshToken.

        New ID and access tokens in the same token family. When the client rotates refresh tokens, a new
        refresh token replaces the presented one; the old one is still honoured for the client's
        RetryGracePeriodSeconds and then yields the same successor (so two racing refreshes end with one
        token), and after that its reuse is refused."""
        if not isinstance(refresh_token, str) or not refresh_token or len(refresh_token) > 4096:
            raise NotAuthorizedException("Invalid Refresh Token")
        found = await self.store.get_refresh_token_with_user(sha256_hex(refresh_token))
        now = time.time()
        if found is None or found[0].client_id != ctx.client.id or found[0].pool_id != ctx.pool.id:
            raise NotAuthorizedException("Invalid Refresh Token")
        record, family, user, groups = found
        if record.expires_at < now:
            raise NotAuthorizedException("Refresh Token has expired")
        if family.revoked:
            raise NotAuthorizedException("Refresh Token has been revoked")
        if user is None:
            raise NotAuthorizedException("Invalid Refresh Token")
        if not user.enabled:
            raise NotAuthorizedException("User is disabled.")
        if user.status == RESET_REQUIRED:
            raise PasswordResetRequiredException()
        device_key = (
            await self._refresh_device(ctx, user, family, device_key) if self.devices.tracking(ctx.pool) else None
        )
        if scopes is None and family.scopes is not None:
            # A family from an OAuth grant keeps that grant's scopes whichever way it is refreshed (RFC 6749
            # §6): an API refresh must not widen them to aws.cognito.signin.user.admin.
            scopes = tuple(family.scopes)
        if scopes is not None and family.scopes is not None:
            # UpdateUserPoolClient took a scope away from the client: the client's older grants no longer yield
            # it either (a filter over the client's settings in memory; no store read).
            allowed = ctx.client.settings.get("AllowedOAuthScopes") or ()
            scopes = tuple(s for s in scopes if s in allowed)
        if scopes is not None and has_custom(scopes):
            # DeleteResourceServer: a refresh no longer yields the scopes of a deleted resource server (or one
            # it dropped). Only families granted custom scopes pay for the look-up.
            scopes = tuple(await live_scopes(self.pools, ctx.pool.id, scopes))
        rotation_enabled, grace = ctx.client.rotation
        explicit = rotate is not None
        if rotate is None:
            rotate = rotation_enabled
        new_refresh: str | None = None
        if rotate:
            new_refresh = await self._rotate(ctx, record, now, grace)
        elif record.replaced_by is not None and not _within_grace(record, now, grace):
            # Rotated out while the client rotated, presented after its grace period (through
            # REFRESH_TOKEN_AUTH, or once the client stopped rotating): as much a reuse as in _rotate.
            await self._reused(ctx, record)
            if explicit:
                raise NotAuthorizedException("Refresh Token has been revoked")  # InitiateAuth has no reuse error
            raise RefreshTokenReuseException()
        result = await self.issue_tokens(
            ctx,
            user,
            auth_time=int(family.auth_time),
            origin_jti=record.origin_jti,
            groups=groups,
            device_key=device_key,
            scopes=scopes,
            # Narrower than the sign-in (RFC 6749 §6, a scope taken from the client, a resource server gone):
            # the ID token says so, so exchanging it cannot win back what the refresh left out.
            scopes_in_id_token=scopes is not None and family.scopes is not None and scopes != tuple(family.scopes),
        )
        assert result.tokens is not None
        if self.sessions is not None and self.sessions.tracking(ctx.pool):
            # The session's LastActiveDate, DeviceType and LastIPAddress (a pool that tracks sessions only).
            await self.sessions.refreshed(ctx.pool, record.origin_jti, ctx.user_agent, ctx.source_ip)
        if result.tokens.refresh_token == new_refresh:
            # No rotation (the tokens of an existing family carry no refresh token): the answer as it is.
            return result
        tokens = IssuedTokens(
            id_token=result.tokens.id_token,
            access_token=result.tokens.access_token,
            refresh_token=new_refresh,
            expires_in=result.tokens.expires_in,
            origin_jti=result.tokens.origin_jti,
        )
        return AuthResult(tokens=tokens, username=user.username)

    async def _refresh_device(
        self, ctx: AuthContext, user: UserRecord, family: TokenFamilyRecord, device_key: str | None
    ) -> str | None:
        """The device a refresh comes from (DEVICE_KEY), in a pool that tracks devices. "With device tracking,
        these tokens are linked to a single device. If a refresh token is used on any other device, the call
        fails" (AWS Mobile blog, "Tracking and Remembering Devices Using Amazon Cognito Your User Pools"): a
        family signed in with a device refuses another device's key, and no key once that device is confirmed
        (GetTokensFromRefreshToken's DeviceKey: "You must provide the confirmed device key in this request if
        device remembering is enabled"). A family whose new device was never confirmed (the app ignored
        NewDeviceMetadata) refreshes without one; a family with no device (or from before migration 0027) may
        name any of the user's devices. Once the device is forgotten, its families refresh no more: "all future
        calls to revalidate that device's refresh tokens will fail" (the same blog post on ForgetDevice)."""
        bound = family.device_key
        if not device_key:
            if bound is not None and (family.device_confirmed or family.device_forgotten):
                raise NotAuthorizedException("Invalid Refresh Token")
            return None
        if device_key == bound and family.device_confirmed:
            return device_key  # the user's confirmed device, read with the family: no look-up
        # Not the user's device (unknown, or forgotten: the family's own then too): ResourceNotFoundException.
        await self.devices.get(ctx.pool, user, device_key)
        if bound is not None and device_key != bound:
            raise NotAuthorizedException("Invalid Refresh Token")
        return device_key

    async def _rotate(self, ctx: AuthContext, record: RefreshTokenRecord, now: float, grace: int) -> str:
        if record.replaced_by is None:
            token = new_opaque_token()
            successor = RefreshTokenRecord(
                token_hash=sha256_hex(token),
                origin_jti=record.origin_jti,
                pool_id=record.pool_id,
                client_id=record.client_id,
                username_key=record.username_key,
                created_at=now,
                # "The new refresh token is valid for the remaining duration of the original refresh token"
                # (developer guide, "Refresh token rotation"): rotation never extends a sign-in.
                expires_at=record.expires_at,
                data={"sealed": self.box.seal(token.encode(), aad=record.token_hash.encode())},
            )
            if await self.store.rotate_refresh_token(record.token_hash, successor, now):
                self.metrics.inc(self.metrics.tokens_issued, pool=ctx.pool.id, token_use="refresh")
                return token
            fresh = await self.store.get_refresh_token(record.token_hash)
            if fresh is None or fresh.replaced_by is None:
                raise NotAuthorizedException("Invalid Refresh Token")
            record = fresh
        # Already rotated: within the grace period the caller gets the same successor.
        if _within_grace(record, now, grace) and record.replaced_by:
            successor_record = await self.store.get_refresh_token(record.replaced_by)
            if successor_record is not None and "sealed" in successor_record.data:
                try:
                    return self.box.open(successor_record.data["sealed"], aad=record.token_hash.encode()).decode()
                except SecretBoxError:
                    pass
        await self._reused(ctx, record)
        raise RefreshTokenReuseException()

    async def _reused(self, ctx: AuthContext, record: RefreshTokenRecord) -> None:
        """Reuse of a rotated token after its grace period: treat the family as compromised (RFC 9700
        §4.14.2)."""
        await self.store.revoke_token_family(record.origin_jti)
        log.warning("refresh_token.reused", pool=ctx.pool.id, client=ctx.client.id, origin_jti=record.origin_jti)

    async def revoke(self, client: ClientView, refresh_token: str) -> None:
        """RevokeToken (RFC 7009 semantics: an unknown token is not an error)."""
        if not client.token_revocation_enabled:
            from gateway.errors import UnsupportedOperationException

            raise UnsupportedOperationException("Token revocation is not enabled for this app client.")
        if refresh_token.count(".") == 2:
            # An ID or access token (a JWS; refresh tokens are opaque): RevokeToken takes refresh tokens only,
            # and answering as for an unknown token would tell the caller a session had ended that had not.
            raise UnsupportedTokenTypeException("Only refresh tokens can be revoked.")
        record = await self.store.get_refresh_token(sha256_hex(refresh_token))
        if record is None:
            return
        if record.client_id != client.id:
            from gateway.errors import UnauthorizedException

            raise UnauthorizedException("The token was not issued to this client.")
        await self.store.revoke_token_family(record.origin_jti)
        log.info("token.revoked", pool=client.pool_id, client=client.id, origin_jti=record.origin_jti)


def _within_grace(record: RefreshTokenRecord, now: float, grace: int) -> bool:
    """Whether a rotated-out refresh token is still honoured (RefreshTokenRotationType's
    RetryGracePeriodSeconds). Without a grace period, never: a request that read its clock before a racing
    one stored the rotation (``now`` < ``replaced_at``) is no retry but a second use of the token."""
    return grace > 0 and record.replaced_at is not None and now - record.replaced_at <= grace


# --- flows -------------------------------------------------------------------------------------------------


def _required(parameters: Mapping[str, str], name: str) -> str:
    value = parameters.get(name)
    if not value:
        raise InvalidParameterException(f"Missing required parameter {name}")
    return value


@flow("USER_PASSWORD_AUTH", "ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH")
async def _password_flow(service: AuthService, ctx: AuthContext, parameters: Mapping[str, str]) -> AuthResult:
    username = _required(parameters, "USERNAME")
    password = _required(parameters, "PASSWORD")
    user = await service.user_for_password_sign_in(ctx, username)
    if user is None:
        check_secret_hash(ctx.client, username, parameters.get("SECRET_HASH"))
        user = await service.migrate_on_sign_in(ctx, username, password)
    if user is None:
        await service.pre_authentication(ctx, username, None)
        await service.hasher.dummy_verify(password)
        await service.decoy_failure(ctx, ctx.pool.username_key(username))
        raise service.unknown_user_error(ctx)
    check_secret_hash(ctx.client, user.username, parameters.get("SECRET_HASH"), usernames=(username,))
    await service.pre_authentication(ctx, username, user)
    await service.verify_password(ctx, user, password)
    return await service.after_first_factor(ctx, user, device_key=parameters.get("DEVICE_KEY"))


@flow("REFRESH_TOKEN_AUTH", "REFRESH_TOKEN")
async def _refresh_flow(service: AuthService, ctx: AuthContext, parameters: Mapping[str, str]) -> AuthResult:
    token = _required(parameters, "REFRESH_TOKEN")
    if ctx.client.rotation[0]:
        # "You can't authenticate with REFRESH_TOKEN_AUTH in app clients with refresh token rotation enabled."
        raise InvalidParameterException(
            "REFRESH_TOKEN_AUTH is not available for app clients with refresh token rotation enabled; "
            "use GetTokensFromRefreshToken."
        )
    if ctx.client.secret is not None:
        # Cognito checks SECRET_HASH on refresh against the user's name (for a username-attribute pool, the
        # sub); accept either the username or the sub as the hashed name.
        record = await service.store.get_refresh_token(sha256_hex(token))
        user = await service.store.get_user(ctx.pool.id, record.username_key) if record else None
        names = (user.username, user.sub) if user else ()
        check_secret_hash(ctx.client, names[0] if names else "", parameters.get("SECRET_HASH"), usernames=names)
    return await service.refresh(ctx, token, rotate=False, device_key=parameters.get("DEVICE_KEY"))


# --- SRP: USER_SRP_AUTH, answered by PASSWORD_VERIFIER ---------------------------------------------------------

_SRP_N = int(N_HEX, 16)
# A is below N, i.e. at most 768 hex digits; allow leading zeros, refuse anything longer before int() parses it.
_SRP_A_MAX_HEX_DIGITS = 1024
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# How far the client's TIMESTAMP may be from the server's clock, either way.
SRP_TIMESTAMP_SKEW_SECONDS = 300
# _SRP_INLINE: the SRP exponentiations run on the event loop, not in the thread pool. GMP's modexp through
# gmpy2 (its default context, allow_release_gil=False) and CPython's own pow() both hold the GIL for the whole
# exponentiation, so in a worker thread they stop the event loop just the same, and run no more in parallel;
# the hand-off to the thread and back only added CPU (two per sign-in, with GIL contention on each wake-up).
# Several cores are used by running several worker processes (`serve --workers N`).


def _incorrect() -> NotAuthorizedException:
    return NotAuthorizedException("Incorrect username or password.")


def _srp_a(parameters: Mapping[str, str]) -> str:
    """SRP_A as sent (hex); refused when it is not hex, absurdly long, or A % N == 0 (RFC 5054 §2.5.4)."""
    value = _required(parameters, "SRP_A")
    if len(value) > _SRP_A_MAX_HEX_DIGITS or not _HEX_DIGITS.fullmatch(value):
        raise InvalidParameterException("SRP_A must be a hexadecimal number.")
    big_a = int(value, 16)
    if big_a % _SRP_N == 0 or big_a >= _SRP_N:
        raise InvalidParameterException("Invalid SRP_A value.")
    return value


def _srp_verifier(service: AuthService, ctx: AuthContext, user: UserRecord) -> SrpVerifier | None:
    """The user's sealed (salt, v), or None when there is none (e.g. a user imported without one)."""
    sealed = user.secrets.get("srp")
    if not isinstance(sealed, str):
        return None
    try:
        data = json.loads(service.box.open(sealed, aad=f"srp|{ctx.pool.id}|{user.username}".encode()))
        return SrpVerifier(salt_hex=str(data["salt"]), verifier_hex=str(data["verifier"]))
    except (SecretBoxError, ValueError, KeyError, TypeError):
        log.warning("srp.verifier_unreadable", pool=ctx.pool.id, username=user.username)
        return None


def _decoy_user_id(service: AuthService, ctx: AuthContext, given: str) -> str:
    """USER_ID_FOR_SRP for a name that matches no user. Where a real user would be announced under another
    name than the one typed (an email or phone in a pool that signs in with them: the username is a UUID),
    announce a stable UUID derived from the name, so that the answer does not tell the two apart."""
    pool = ctx.pool
    by_alias = bool(pool.username_attributes) or (
        ("@" in given and "email" in pool.alias_attributes)
        or (given.startswith("+") and "phone_number" in pool.alias_attributes)
    )
    if not by_alias or _UUID.fullmatch(given):
        return given
    message = f"gatehouse/srp/decoy-user|{pool.id}|{pool.username_key(given)}".encode(errors="surrogatepass")
    digest = hmac.new(service.fake_srp_secret, message, hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _srp_b_aad(pool_id: str, secret_block: str) -> bytes:
    return f"srp-b|{pool_id}|{secret_block}".encode()


@flow("USER_SRP_AUTH")
async def _srp_flow(service: AuthService, ctx: AuthContext, parameters: Mapping[str, str]) -> AuthResult:
    """The first half of SRP sign-in: the client's A in, the server's B, salt and SECRET_BLOCK out.

    Nothing about the password is decided here: a wrong one, a disabled or unconfirmed user all fail at the
    PASSWORD_VERIFIER answer, as with Cognito. An unknown user (or one without a verifier) gets a decoy
    challenge when the client prevents user existence errors, and UserNotFoundException otherwise.
    A DEVICE_KEY is kept for the answer (which may name it too)."""
    username = _required(parameters, "USERNAME")
    srp_a = _srp_a(parameters)
    user = await service.users.find(ctx.pool, username)
    if user is None:
        check_secret_hash(ctx.client, username, parameters.get("SECRET_HASH"))
        if not ctx.client.prevent_user_existence_errors:
            raise service.unknown_user_error(ctx)
        await service.pre_authentication(ctx, username, None)
    else:
        check_secret_hash(ctx.client, user.username, parameters.get("SECRET_HASH"), usernames=(username,))
        await service.pre_authentication(ctx, username, user)
    return await password_verifier_challenge(service, ctx, user, username, srp_a, parameters.get("DEVICE_KEY"))


async def password_verifier_challenge(
    service: AuthService,
    ctx: AuthContext,
    user: UserRecord | None,
    username: str,
    srp_a: str,
    device_key: str | None,
    extra_state: Mapping[str, Any] | None = None,
) -> AuthResult:
    """SRP's PASSWORD_VERIFIER challenge for ``user`` (None: an unknown name the client hides, answered with a
    decoy), as ``username`` was given: B, the salt and the SECRET_BLOCK. ``extra_state`` goes with the Session to
    the answer (a custom sign-in's progress, gateway/services/custom_auth.py)."""
    verifier: SrpVerifier | None = None
    if user is not None:
        verifier = _srp_verifier(service, ctx, user)
        if verifier is None:
            if not ctx.client.prevent_user_existence_errors:
                if user.status == RESET_REQUIRED and user.password_hash is None:
                    # Imported from a CSV file, with no password yet: as verify_password answers it.
                    raise PasswordResetRequiredException()
                log.warning("srp.no_verifier", pool=ctx.pool.id, client=ctx.client.id, username=user.username)
                raise _incorrect()
            log.warning("srp.no_verifier", pool=ctx.pool.id, client=ctx.client.id, username=user.username)
    # B is computed on the event loop (see _SRP_INLINE): one ~1.5 ms exponentiation that holds the GIL.
    if user is not None and verifier is not None:
        key, user_id = user.username_key, user.username
        srp = start_srp(verifier)
    else:
        key = user.username_key if user is not None else ctx.pool.username_key(username)
        user_id = user.username if user is not None else _decoy_user_id(service, ctx, username)
        srp = fake_srp_challenge(ctx.pool.id, key, service.fake_srp_secret)
    state: dict[str, Any] = {
        **(extra_state or {}),
        "challenge": "PASSWORD_VERIFIER",
        "username": user_id,  # the USER_ID_FOR_SRP announced, which the client's proof is bound to
        "given": username,
        "key": key,
        "decoy": verifier is None,
        "srp_a": srp_a,
        "srp_b": srp.B_hex,
        "b": service.box.seal(srp.b_hex.encode(), aad=_srp_b_aad(ctx.pool.id, srp.secret_block)),
        "salt": srp.salt_hex,
        "secret_block": srp.secret_block,
    }
    if device_key:
        state["device_key"] = device_key
    # Cognito's clients answer with the SECRET_BLOCK and, some of them, no Session: the block is the handle.
    session = await service.new_session(ctx, user, state, token=srp.secret_block, username_key=key)
    return AuthResult(
        challenge_name="PASSWORD_VERIFIER",
        challenge_parameters={
            "SALT": srp.salt_hex,
            "SECRET_BLOCK": srp.secret_block,
            "SRP_B": srp.B_hex,
            "USERNAME": user_id,
            "USER_ID_FOR_SRP": user_id,
        },
        session=session,
        username=user.username if user is not None and verifier is not None else None,
    )


# --- challenges ------------------------------------------------------------------------------------------


@challenge("NEW_PASSWORD_REQUIRED")
async def _new_password(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    user = await service.users.find(ctx.pool, str(state["username"]))
    if user is None:
        raise NotAuthorizedException("Invalid session for the user.")
    given = responses.get("USERNAME")
    if given and ctx.pool.username_key(given) != user.username_key and given not in user.attributes.values():
        raise NotAuthorizedException("Invalid session for the user.")
    check_secret_hash(ctx.client, user.username, responses.get("SECRET_HASH"), usernames=(given or "",))
    password = _required(responses, "NEW_PASSWORD")
    attributes = {k.removeprefix("userAttributes."): v for k, v in responses.items() if k.startswith("userAttributes.")}
    missing = [a for a in required_attributes(ctx.pool.schema) if not (attributes.get(a) or user.attributes.get(a))]
    if missing:
        raise InvalidParameterException("Invalid attributes given, " + ", ".join(f"{a} is missing" for a in missing))
    if attributes:
        validate_attribute_values(ctx.pool.schema, attributes, creating=False, admin=False)
        service.users.check_user_may_write(ctx.client, attributes)  # before the password changes
    if state.get(_PASSWORD_SET):
        # An earlier answer set this password, and the step after it failed (an MFA code that could not be sent,
        # or the send limit: TooManyRequestsException, which the SDKs retry on their own). The same answer again
        # goes on from there; another password is refused.
        if user.password_hash is None or not await service.hasher.verify(user.password_hash, password):
            raise NotAuthorizedException("Invalid session for the user.")
        service.check_user_can_sign_in(user)
        ctx = dataclasses.replace(ctx, token_source=TOKEN_GENERATION_NEW_PASSWORD)
        return await service.after_first_factor(
            ctx, user, auth_time=int(state.get("auth_time", time.time())), device_key=state.get("device_key")
        )
    if user.status != FORCE_CHANGE_PASSWORD:
        raise NotAuthorizedException("Invalid session for the user.")
    # Disabled (or the temporary password expired) since InitiateAuth: the Session is no way around that.
    service.check_user_can_sign_in(user)
    if attributes:
        # An alias another user holds is refused before the password changes: a failed answer changes nothing.
        await service.users.check_attribute_aliases_free(ctx.pool, user, attributes)
    user = await service.users.set_password(ctx.pool, user, password, permanent=True)
    if attributes:
        await service.users.update_attributes(ctx.pool, user, attributes, admin=False, client=ctx.client)
        user = await service.users.get_by_key(ctx.pool.id, user.username_key)
    if user.status != CONFIRMED:
        raise NotAuthorizedException("Invalid session for the user.")
    # Kept with the session should the next step fail (respond() puts the state back for another try).
    state[_PASSWORD_SET] = True
    ctx = dataclasses.replace(ctx, token_source=TOKEN_GENERATION_NEW_PASSWORD)
    return await service.after_first_factor(
        ctx, user, auth_time=int(state.get("auth_time", time.time())), device_key=state.get("device_key")
    )


# NEW_PASSWORD_REQUIRED's state once the new password is stored (see _new_password).
_PASSWORD_SET = "password_set"


async def _challenged_user(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> UserRecord:
    """The user an MFA challenge was issued to, checked against the answer's USERNAME and SECRET_HASH."""
    user = await service.store.get_user(ctx.pool.id, str(state["key"]))
    if user is None:
        raise NotAuthorizedException("Invalid session for the user.")
    given = responses.get("USERNAME")
    if given and ctx.pool.username_key(given) != user.username_key and given not in user.attributes.values():
        raise NotAuthorizedException("Invalid session for the user.")
    check_secret_hash(ctx.client, user.username, responses.get("SECRET_HASH"), usernames=(given or "",))
    return user


@challenge(SOFTWARE_TOKEN_MFA)
async def _software_token_mfa(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """The code from the user's authenticator app; a wrong one leaves the session usable for a few tries, and
    counts as a failed sign-in towards the lockout, as a wrong password does."""
    user = await _challenged_user(service, ctx, state, responses)
    code = _required(responses, "SOFTWARE_TOKEN_MFA_CODE")
    service.check_lockout(ctx, user)
    try:
        user = await service.mfa.consume_code(ctx.pool, user, code)
    except CodeMismatchException:
        await service.record_failure(ctx, user)
        raise
    service.check_user_can_sign_in(user)
    return await sign_in_factors.finish(
        service, ctx, user, auth_time=int(state.get("auth_time", time.time())), device_key=state.get("device_key")
    )


@challenge("MFA_SETUP")
async def _mfa_setup(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """The end of MFA set-up during sign-in: the Session VerifySoftwareToken returned carries the proof."""
    user = await _challenged_user(service, ctx, state, responses)
    if not state.get("verified") or not service.mfa.has_verified_token(user):
        raise InvalidParameterException(
            "Software token MFA is not set up: call AssociateSoftwareToken and VerifySoftwareToken with the Session."
        )
    service.check_user_can_sign_in(user)
    return await sign_in_factors.finish(
        service, ctx, user, auth_time=int(state.get("auth_time", time.time())), device_key=state.get("device_key")
    )


@challenge("PASSWORD_VERIFIER", session_in="PASSWORD_CLAIM_SECRET_BLOCK")
async def _password_verifier(
    service: AuthService, ctx: AuthContext, state: dict[str, Any], responses: Mapping[str, str]
) -> AuthResult:
    """The client's proof that it knows the password behind the verifier; single use, like the challenge."""
    given = _required(responses, "USERNAME")
    secret_block = _required(responses, "PASSWORD_CLAIM_SECRET_BLOCK")
    signature = _required(responses, "PASSWORD_CLAIM_SIGNATURE")
    timestamp = _required(responses, "TIMESTAMP")
    announced, first = str(state["username"]), str(state["given"])
    check_secret_hash(ctx.client, announced, responses.get("SECRET_HASH"), usernames=(first,))
    pool = ctx.pool
    if pool.username_key(given) not in (pool.username_key(announced), pool.username_key(first)):
        raise _incorrect()
    if not hmac.compare_digest(secret_block.encode(), str(state["secret_block"]).encode()):
        raise _incorrect()
    # The exact form the clients send ("Tue Nov 3 21:05:02 UTC 2026"); Cognito refuses a zero-padded day or
    # a wrong weekday the same way as a wrong password.
    when = parse_srp_timestamp(timestamp)
    if (
        when is None
        or format_srp_timestamp(when) != timestamp
        or abs(when.timestamp() - time.time()) > SRP_TIMESTAMP_SKEW_SECONDS
    ):
        raise _incorrect()
    # Checked before the one-time b is used, so that the client can answer again without an unknown device.
    device_key = await sign_in_factors.named_device(service, ctx, state, responses)
    # From here the one-time b has been used: whatever happens, this challenge is over.
    state["spent"] = True
    try:
        b_hex = service.box.open(str(state["b"]), aad=_srp_b_aad(pool.id, str(state["secret_block"]))).decode()
    except SecretBoxError as exc:
        raise _incorrect() from exc
    srp = SrpServerChallenge(
        b_hex=b_hex, B_hex=str(state["srp_b"]), salt_hex=str(state["salt"]), secret_block=str(state["secret_block"])
    )
    # For a decoy too: the same work. The user's groups come in the same read, for the tokens.
    found = await service.store.get_user_with_groups(pool.id, str(state["key"]))
    user = found[0] if found is not None else None
    if found is not None:
        ctx.groups[found[0].username_key] = found[1]
    verifier = _srp_verifier(service, ctx, user) if user is not None and not state.get("decoy") else None
    if verifier is None:
        # A decoy (or a user gone since): the same work against a verifier no password matches.
        user = None
        verifier = fake_srp_verifier(pool.id, str(state["key"]), service.fake_srp_secret)
    elif user is not None:
        service.check_lockout(ctx, user)
    # Inline, as start_srp is (see _SRP_INLINE).
    proven = verify_password_claim(
        pool_id=pool.id,
        username=announced,
        verifier=verifier,
        challenge=srp,
        srp_a_hex=str(state["srp_a"]),
        timestamp=timestamp,
        claim_signature_b64=signature,
    )
    if not proven or user is None:
        if user is not None:
            await service.record_failure(ctx, user)
        else:
            await service.decoy_failure(ctx, str(state["key"]))
        raise _incorrect()
    service.check_user_can_sign_in(user)
    if state.get(CUSTOM_SIGN_IN) is not None:
        # The password step of a custom sign-in (CUSTOM_AUTH with SRP_A): its define function decides what follows.
        from gateway.services import custom_auth

        return await custom_auth.after_password(service, ctx, user, state, device_key)
    return await service.after_first_factor(ctx, user, device_key=device_key)


# A PASSWORD_VERIFIER Session's state member holding the custom sign-in it belongs to (custom_auth.py).
CUSTOM_SIGN_IN = "custom"


# SMS and email MFA, choosing a factor, and remembered devices (sign_in_factors), and CUSTOM_AUTH with its
# CUSTOM_CHALLENGE, run by the pool's challenge triggers (custom_auth): their handlers register themselves on import.
from gateway.services import custom_auth, sign_in_factors  # noqa: E402, F401
