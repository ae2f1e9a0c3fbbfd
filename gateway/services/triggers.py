"""User pool Lambda triggers: Cognito's trigger events, sent to the functions a pool's ``LambdaConfig`` names.

"Customizing user pool workflows with Lambda triggers" (Cognito developer guide): at fixed points of its
workflows Cognito invokes the function set for that trigger synchronously, with an event of the common shape
(``version``, ``triggerSource``, ``region``, ``userPoolId``, ``userName``, ``callerContext``, ``request``,
``response``), and reads the ``response`` of the event the function returns. It waits at most 5 seconds.

Gatehouse invokes the functions through the AWS Lambda ``Invoke`` API (``RequestResponse``), so they can run in
AWS Lambda itself, or anywhere that speaks the same API: a Lambda emulator, or the Lambda runtime interface
emulator of a function's container image. Where the calls go is the config file's ``server.lambda``
(``endpoint_url``, ``region``, credentials); without it, AWS's own endpoint for the function's region, with the
AWS credentials of the environment (botocore's usual chain). ``server.lambda.functions`` may instead name a Python
handler for a function ARN (``"package.module:handler"``), run in Gatehouse's own process as the Lambda Python
runtime would run it (:class:`LocalFunctions`): for development, tests, and deployments without Lambda.

What the caller of the API sees when a trigger goes wrong, as Cognito answers it:

- the function raised: ``UserLambdaValidationException``, ``<Trigger> failed with error <its message>.``;
- it could not be invoked (refused, unknown, unreachable) or did not answer in time:
  ``UnexpectedLambdaException``, ``<Trigger> invocation failed due to error <reason>.``;
- it answered something that is not the event (not a JSON object, or a ``response`` that is not one):
  ``InvalidLambdaResponseException``, ``Unrecognizable lambda output``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson
import structlog

from gateway.errors import (
    InvalidLambdaResponseException,
    UnexpectedLambdaException,
    UserLambdaValidationException,
)

if TYPE_CHECKING:
    from gateway.metrics import Metrics
    from gateway.services.custom_sender import CodeEncryption
    from gateway.services.pools import PoolView
    from gateway.settings import Secret

__all__ = [
    "TRIGGER_SECONDS",
    "AwsLambdaInvoker",
    "LambdaFunctionError",
    "LambdaInvokeError",
    "LambdaInvoker",
    "LambdaSettings",
    "LocalFunctions",
    "TokenCustomization",
    "TriggerService",
    "trigger_event",
]

log = structlog.get_logger("gateway.triggers")

# "Amazon Cognito invokes Lambda functions synchronously ... the function must respond within 5 seconds."
TRIGGER_SECONDS: Final = 5.0
# callerContext.awsSdkVersion for a call that did not come through an SDK Cognito recognised.
SDK_UNKNOWN: Final = "aws-sdk-unknown-unknown"
CLIENT_NOT_APPLICABLE: Final = "CLIENT_ID_NOT_APPLICABLE"
# Cognito's words for a function that did not answer in time.
TIMEOUT_REASON: Final = "Socket timeout while invoking Lambda function"
# The pre token generation trigger's sources: what the tokens are issued for.
TOKEN_GENERATION_AUTHENTICATION: Final = "TokenGeneration_Authentication"
TOKEN_GENERATION_NEW_PASSWORD: Final = "TokenGeneration_NewPasswordChallenge"
TOKEN_GENERATION_DEVICE: Final = "TokenGeneration_AuthenticateDevice"
TOKEN_GENERATION_REFRESH: Final = "TokenGeneration_RefreshTokens"
TOKEN_GENERATION_HOSTED: Final = "TokenGeneration_HostedAuth"
TOKEN_GENERATION_CLIENT_CREDENTIALS: Final = "TokenGeneration_ClientCredentials"
POST_CONFIRMATION_SIGN_UP: Final = "PostConfirmation_ConfirmSignUp"
POST_CONFIRMATION_FORGOT_PASSWORD: Final = "PostConfirmation_ConfirmForgotPassword"
USER_MIGRATION_AUTHENTICATION: Final = "UserMigration_Authentication"
USER_MIGRATION_FORGOT_PASSWORD: Final = "UserMigration_ForgotPassword"
_HANDLER_SPEC = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_FUNCTION_ARN = re.compile(r"^arn:[\w+=/,.@-]+:lambda:([a-z0-9-]+):\d{12}:function:[\w-]+(:[\w$-]+)?$")


class LambdaInvokeError(Exception):
    """The function could not be invoked: the reason is the Lambda API's error code (or what failed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LambdaFunctionError(Exception):
    """The function ran and raised: its ``errorMessage``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LambdaInvoker(Protocol):
    """Invokes a function by its ARN with a JSON payload and returns what it answered (bytes)."""

    async def invoke(self, function_arn: str, payload: bytes) -> bytes: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class LambdaSettings:
    """Where trigger functions are invoked (config file ``server.lambda``); None fields: botocore's defaults."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: Secret | None = None
    # The most invocations waiting on the Lambda API at once, per process (each holds a thread).
    max_concurrency: int = 32


class AwsEndpoint(Protocol):
    """Where an AWS API is called and with which credentials (None: botocore's defaults)."""

    @property
    def endpoint_url(self) -> str | None: ...
    @property
    def access_key_id(self) -> str | None: ...
    @property
    def secret_access_key(self) -> Secret | None: ...


def botocore_client(
    service: str,
    region: str,
    endpoint: AwsEndpoint,
    *,
    attempts: int,
    connect_timeout: float,
    read_timeout: float,
    max_pool_connections: int,
) -> Any:
    """A botocore client of ``service`` in ``region`` at ``endpoint`` (SigV4 with its credentials, or the
    environment's), with its own timeouts and connection pool, made once and used from worker threads."""
    import botocore.session
    from botocore.config import Config

    secret = endpoint.secret_access_key.reveal() if endpoint.secret_access_key is not None else None
    return botocore.session.get_session().create_client(
        service,
        region_name=region,
        endpoint_url=endpoint.endpoint_url,
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=secret,
        config=Config(
            retries={"max_attempts": attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
        ),
    )


class AwsLambdaInvoker:
    """The Lambda ``Invoke`` API through botocore (SigV4, retries off: a trigger has 5 seconds), one client per
    region, in threads of its own so that slow functions never hold the threads others use."""

    def __init__(self, settings: LambdaSettings, *, timeout_seconds: float = TRIGGER_SECONDS) -> None:
        self.settings = settings
        self.timeout_seconds = timeout_seconds
        self._clients: dict[str, Any] = {}
        self._executor = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="lambda")

    def __repr__(self) -> str:
        return f"AwsLambdaInvoker({self.settings.endpoint_url or 'AWS'!r})"

    def _client(self, region: str) -> Any:
        client = self._clients.get(region)
        if client is None:
            client = self._clients[region] = botocore_client(
                "lambda",
                region,
                self.settings,
                attempts=1,
                connect_timeout=min(2.0, self.timeout_seconds),
                read_timeout=self.timeout_seconds,
                max_pool_connections=self.settings.max_concurrency,
            )
        return client

    def _invoke_now(self, function_arn: str, payload: bytes) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        match = _FUNCTION_ARN.match(function_arn)
        region = self.settings.region or (match.group(1) if match else "us-east-1")
        try:
            answer = self._client(region).invoke(
                FunctionName=function_arn, InvocationType="RequestResponse", Payload=payload
            )
            body: bytes = answer["Payload"].read()
        except ClientError as exc:
            raise LambdaInvokeError(str(exc.response.get("Error", {}).get("Code") or "ClientError")) from exc
        except BotoCoreError as exc:
            raise LambdaInvokeError(type(exc).__name__) from exc
        if answer.get("FunctionError"):
            raise LambdaFunctionError(_error_message(body))
        return body

    async def invoke(self, function_arn: str, payload: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await loop.run_in_executor(self._executor, self._invoke_now, function_arn, payload)
        except TimeoutError as exc:
            raise LambdaInvokeError(TIMEOUT_REASON) from exc

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class LambdaContext:
    """The context object a Python handler gets, with the Lambda Python runtime's members that make sense here."""

    def __init__(self, function_arn: str, deadline: float) -> None:
        self.invoked_function_arn = function_arn
        self.function_name = function_arn.rsplit(":function:", 1)[-1].split(":", 1)[0]
        self.function_version = "$LATEST"
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = "128"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "gatehouse"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunctions:
    """Trigger functions that are Python handlers in Gatehouse's own process (config file
    ``server.lambda.functions``): ``handler(event, context)`` as the Lambda Python runtime calls it, a plain function
    in a worker thread (it may block), an ``async`` one on the event loop. The event is a copy of Cognito's (JSON
    in, JSON out, as over the wire); what the handler returns must be JSON, as the runtime's answer is. Within the
    same 5 seconds; a handler still running then is left to finish, its answer unused."""

    def __init__(
        self,
        handlers: Mapping[str, Callable[..., Any]],
        *,
        timeout_seconds: float = TRIGGER_SECONDS,
        max_concurrency: int = 32,
    ) -> None:
        self.handlers = {_unqualified(arn): handler for arn, handler in handlers.items()}
        self.timeout_seconds = timeout_seconds
        # Threads of their own: a handler that hangs past its 5 seconds keeps its thread, and must never hold one
        # that password hashing or SRP (the loop's default executor) is waiting for.
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="lambda-local")
        # Coroutines given up at their deadline, held until they end (a task nobody holds may be collected).
        self._abandoned: set[asyncio.Future[Any]] = set()

    def handles(self, function_arn: str) -> bool:
        return _unqualified(function_arn) in self.handlers

    async def invoke(self, function_arn: str, payload: bytes) -> bytes:
        handler = self.handlers[_unqualified(function_arn)]
        context = LambdaContext(function_arn, time.monotonic() + self.timeout_seconds)
        event = json.loads(payload)
        running: asyncio.Future[Any]
        if inspect.iscoroutinefunction(handler):
            # A task of its own, given up at the deadline: a coroutine that ignores its cancellation must not hold
            # the request past the 5 seconds.
            running = asyncio.ensure_future(_as_function(handler(event, context)))
        else:
            loop = asyncio.get_running_loop()
            running = loop.run_in_executor(self._executor, _call_as_function, handler, event, context)
        done, _ = await asyncio.wait({running}, timeout=self.timeout_seconds)
        if not done:
            running.cancel()
            self._abandoned.add(running)
            running.add_done_callback(self._abandoned.discard)
            raise LambdaInvokeError(TIMEOUT_REASON)
        result = running.result()  # LambdaFunctionError when the handler raised
        try:
            return json.dumps(result, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise LambdaFunctionError(f"Unable to marshal response: {exc}") from exc

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _call_as_function(handler: Callable[..., Any], event: Any, context: LambdaContext) -> Any:
    """``handler(event, context)`` in a worker thread, its every exception its own error (LambdaFunctionError, as
    the runtime reports errorMessage): a SystemExit, a CancelledError or a StopIteration it raises ends that
    invocation, and nothing but a result or that error crosses back to the event loop."""
    try:
        return handler(event, context)
    except BaseException as exc:
        raise LambdaFunctionError(str(exc)) from None


async def _as_function(running: Coroutine[Any, Any, Any]) -> Any:
    """An ``async`` handler's coroutine, its every exception its own error, as :func:`_call_as_function` does."""
    try:
        return await running
    except BaseException as exc:
        task = asyncio.current_task()
        if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
            raise  # given up at the deadline (or the server stopping): not the handler's own error
        raise LambdaFunctionError(str(exc)) from None


def _unqualified(function_arn: str) -> str:
    """A function ARN without its version or alias (``...:function:name:qualifier``)."""
    head, marker, tail = function_arn.partition(":function:")
    return head + marker + tail.split(":", 1)[0] if marker else function_arn


def load_handler(spec: str) -> Callable[..., Any]:
    """``"package.module:function"``, imported: a Lambda-style handler. ValueError when it cannot be."""
    if not _HANDLER_SPEC.fullmatch(spec):
        raise ValueError(f"expected package.module:function, not {spec!r}")
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name} ({exc})") from exc
    except (Exception, SystemExit) as exc:
        # The module's own code failed as it ran (a SyntaxError, a setting it reads at import, sys.exit()): the
        # same config problem, said in one line, not a traceback at start (or a server that exits as it asked).
        raise ValueError(f"cannot import {module_name} ({type(exc).__name__}: {exc})") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"{spec} is not a callable")
    return function  # type: ignore[no-any-return]


def _json_int(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**64:
        raise ValueError("an integer beyond 64 bits")
    return value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(body: bytes) -> Any:
    """A function's answer as JSON (RFC 8259): no NaN or Infinity, and no integer beyond 64 bits, which no token
    could carry as it was sent (ValueError); nesting past the interpreter's limit is RecursionError."""
    return json.loads(body, parse_int=_json_int, parse_constant=_not_json)


def _error_message(body: bytes) -> str:
    """A function error's ``errorMessage`` (the Lambda runtimes' error document), else the text itself."""
    try:
        document = read_json(body)
    except (ValueError, RecursionError):
        return body.decode("utf-8", "replace")[:1024]
    if isinstance(document, Mapping) and isinstance(document.get("errorMessage"), str):
        return str(document["errorMessage"])
    return body.decode("utf-8", "replace")[:1024]


def trigger_event(
    pool: PoolView,
    trigger_source: str,
    username: str | None,
    request: Mapping[str, Any],
    *,
    client_id: str | None = None,
    response: Mapping[str, Any] | None = None,
    version: str = "1",
) -> dict[str, Any]:
    """An event of the common shape ("User pool Lambda trigger common parameters")."""
    return {
        "version": version,
        "triggerSource": trigger_source,
        "region": pool.id.split("_", 1)[0],
        "userPoolId": pool.id,
        "userName": username,
        "callerContext": {"awsSdkVersion": SDK_UNKNOWN, "clientId": client_id or CLIENT_NOT_APPLICABLE},
        "request": dict(request),
        "response": dict(response or {}),
    }


def user_attributes(attributes: Mapping[str, str], *, sub: str, status: str) -> dict[str, str]:
    """``request.userAttributes`` as Cognito sends them: every attribute, with ``sub`` and the user's status."""
    found = {"sub": sub, **{k: v for k, v in attributes.items() if k != "sub"}}
    found["cognito:user_status"] = status
    return found


# --- pre token generation ------------------------------------------------------------------------------------

# Claims a function may neither add, override nor suppress (the "Claims and scopes reference" of the pre token
# generation page): the token's meaning rests on them. Cognito leaves them as they are whatever the response says.
_FIXED_CLAIMS: Final = frozenset(
    {
        "acr",
        "amr",
        "at_hash",
        "aud",
        "auth_time",
        "azp",
        "client_id",
        "device_key",
        "event_id",
        "exp",
        "iat",
        "identities",
        "iss",
        "jti",
        "nbf",
        "nonce",
        "origin_jti",
        # The access token's scopes change only through scopesToAdd and scopesToSuppress (each a scope without
        # spaces): set whole, ``scope`` could be any JSON value, or smuggle in scopes nobody checked.
        "scope",
        "sub",
        "token_use",
        "username",
        "version",
    }
)
# Group claims change through groupOverrideDetails only; suppressing cognito:groups suppresses all three.
_GROUP_CLAIMS: Final = frozenset({"cognito:groups", "cognito:roles", "cognito:preferred_role"})
# ID token claims that take no object or array ("you can populate complex objects to the values of claims except
# for phone_number_verified, email_verified, updated_at, and address").
_SIMPLE_ID_CLAIMS: Final = frozenset({"phone_number_verified", "email_verified", "updated_at", "address"})


def _settable(name: object) -> bool:
    """Whether a function may add or override the claim ``name``: no fixed claim, no ``cognito:`` claim (groups
    have their own override), no developer-only ``dev:`` attribute (which may only be suppressed)."""
    return (
        isinstance(name, str) and bool(name) and name not in _FIXED_CLAIMS and not name.startswith(("cognito:", "dev:"))
    )


@dataclass
class TokenCustomization:
    """What a pre token generation function asked for, checked: claims to set and to drop in each token, the
    groups, roles and preferred role to write instead of the user's, and scopes to add and remove."""

    id_set: dict[str, Any] = field(default_factory=dict)
    id_drop: set[str] = field(default_factory=set)
    access_set: dict[str, Any] = field(default_factory=dict)
    access_drop: set[str] = field(default_factory=set)
    access_aud: Any = None
    # Whether the response had a groupOverrideDetails (then groups, roles and preferred_role replace the user's).
    groups_replaced: bool = False
    groups: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    preferred_role: str | None = None
    scopes_add: list[str] = field(default_factory=list)
    scopes_drop: set[str] = field(default_factory=set)

    def apply_id(self, claims: dict[str, Any]) -> None:
        self._apply_groups(claims, id_token=True)
        claims.update(self.id_set)
        self._drop(claims, self.id_drop, id_token=True)

    def apply_access(self, claims: dict[str, Any], client_id: str) -> None:
        self._apply_groups(claims, id_token=False)
        if self.scopes_add or self.scopes_drop:
            scopes = [s for s in str(claims.get("scope") or "").split() if s not in self.scopes_drop]
            scopes += [s for s in dict.fromkeys(self.scopes_add) if s not in scopes and s not in self.scopes_drop]
            if scopes:
                claims["scope"] = " ".join(scopes)
            else:
                claims.pop("scope", None)
        claims.update(self.access_set)
        if self.access_aud == client_id:
            # "You can add an aud claim to access tokens, but its value must match the app client ID."
            claims["aud"] = client_id
        self._drop(claims, self.access_drop, id_token=False)

    @staticmethod
    def _drop(claims: dict[str, Any], names: set[str], *, id_token: bool) -> None:
        # "If your function both suppresses and replaces a claim value, then Amazon Cognito suppresses the claim."
        for name in names:
            claims.pop(name, None)
        if "cognito:groups" in names and id_token:
            # "To suppress the cognito:preferred_role and cognito:roles claims, add cognito:groups".
            claims.pop("cognito:roles", None)
            claims.pop("cognito:preferred_role", None)

    def _apply_groups(self, claims: dict[str, Any], *, id_token: bool) -> None:
        if not self.groups_replaced:
            return
        # The response's groupOverrideDetails replaces the user's groups, roles and preferred role whole: what it
        # leaves out, the tokens leave out.
        for name, value in (
            ("cognito:groups", self.groups),
            ("cognito:roles", self.roles if id_token else []),
            ("cognito:preferred_role", self.preferred_role if id_token else None),
        ):
            claims.pop(name, None)
            if value:
                claims[name] = list(value) if isinstance(value, list) else value


def _invalid() -> InvalidLambdaResponseException:
    return InvalidLambdaResponseException("Unrecognizable lambda output")


def _string_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid()
    return list(value)


def _claims_to_set(value: Any, *, structured: bool, id_token: bool) -> dict[str, Any]:
    """``claimsToAddOrOverride``: V1 takes plain values (text, numbers, booleans), V2 and V3 JSON objects and
    arrays too, but for the ID token's few claims that have a fixed form. Claims a function may not set are left
    out, as Cognito leaves them."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _invalid()
    found: dict[str, Any] = {}
    for name, claim in value.items():
        if not _settable(name):
            continue
        if isinstance(claim, Mapping | list) and (not structured or (id_token and name in _SIMPLE_ID_CLAIMS)):
            raise _invalid()
        try:
            orjson.dumps(claim)  # what the token is written with: it takes no deeper nesting than it reads
        except TypeError:
            raise _invalid() from None
        found[name] = claim
    return found


def _claims_to_drop(value: Any) -> set[str]:
    """``claimsToSuppress``: any claim a function may set, ``dev:`` attributes, and ``cognito:groups``."""
    return {
        name for name in _string_list(value) if _settable(name) or name.startswith("dev:") or name == "cognito:groups"
    }


def _group_override(details: Mapping[str, Any], customization: TokenCustomization) -> None:
    """groupOverrideDetails, when the response has the key ("If you provide an empty or null object in the
    response, then Amazon Cognito suppresses the groups")."""
    if "groupOverrideDetails" not in details:
        return
    override = details["groupOverrideDetails"]
    if override is None:
        override = {}
    if not isinstance(override, Mapping):
        raise _invalid()
    customization.groups_replaced = True
    customization.groups = _string_list(override.get("groupsToOverride"))
    customization.roles = _string_list(override.get("iamRolesToOverride"))
    preferred = override.get("preferredRole")
    if preferred is not None and not isinstance(preferred, str):
        raise _invalid()
    customization.preferred_role = preferred or None


def token_customization(response: Mapping[str, Any], *, version: str) -> TokenCustomization:
    """A pre token generation response, checked (InvalidLambdaResponseException when it is malformed)."""
    found = TokenCustomization()
    if version == "1":
        details = response.get("claimsOverrideDetails")
        if details is None:
            return found
        if not isinstance(details, Mapping):
            raise _invalid()
        found.id_set = _claims_to_set(details.get("claimsToAddOrOverride"), structured=False, id_token=True)
        found.id_drop = _claims_to_drop(details.get("claimsToSuppress"))
        _group_override(details, found)
        return found
    details = response.get("claimsAndScopeOverrideDetails")
    if details is None or details == []:  # (Cognito's own test event has an empty list there)
        return found
    if not isinstance(details, Mapping):
        raise _invalid()
    id_part, access_part = details.get("idTokenGeneration"), details.get("accessTokenGeneration")
    for part in (id_part, access_part):
        if part is not None and not isinstance(part, Mapping):
            raise _invalid()
    if id_part:
        found.id_set = _claims_to_set(id_part.get("claimsToAddOrOverride"), structured=True, id_token=True)
        found.id_drop = _claims_to_drop(id_part.get("claimsToSuppress"))
    if access_part:
        added = access_part.get("claimsToAddOrOverride")
        found.access_set = _claims_to_set(added, structured=True, id_token=False)
        if isinstance(added, Mapping):
            found.access_aud = added.get("aud")
        found.access_drop = _claims_to_drop(access_part.get("claimsToSuppress"))
        # "You can't add scope values that contain one or more blank-space characters."
        scopes = _string_list(access_part.get("scopesToAdd"))
        if any(not s or any(c.isspace() for c in s) for s in scopes):
            raise _invalid()
        found.scopes_add = scopes
        found.scopes_drop = set(_string_list(access_part.get("scopesToSuppress")))
    _group_override(details, found)
    return found


# --- user migration --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    """A UserMigration function's answer: the user to create."""

    attributes: dict[str, str]
    reset_required: bool
    force_alias_creation: bool
    sms_mfa: bool


def migration(response: Mapping[str, Any]) -> Migration:
    """The UserMigration response, checked: ``userAttributes`` (required, text values), ``finalUserStatus``
    (CONFIRMED or RESET_REQUIRED), ``messageAction`` (SUPPRESS, or RESEND where Cognito would send its welcome
    message), ``desiredDeliveryMediums``, ``forceAliasCreation``, ``enableSMSMFA``."""
    attributes = response.get("userAttributes")
    if not isinstance(attributes, Mapping) or not attributes:
        raise _invalid()
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()):
        raise _invalid()
    status = response.get("finalUserStatus")
    if status not in (None, "CONFIRMED", "RESET_REQUIRED"):
        raise _invalid()
    if response.get("messageAction") not in (None, "SUPPRESS", "RESEND"):
        raise _invalid()
    mediums = response.get("desiredDeliveryMediums")
    if mediums is not None and not (isinstance(mediums, list) and set(mediums) <= {"EMAIL", "SMS"}):
        raise _invalid()
    for flag in ("forceAliasCreation", "enableSMSMFA"):
        if response.get(flag) not in (None, True, False):
            raise _invalid()
    return Migration(
        attributes={k: v for k, v in attributes.items() if k not in ("sub", "cognito:user_status")},
        reset_required=status == "RESET_REQUIRED",
        force_alias_creation=response.get("forceAliasCreation") is True,
        sms_mfa=response.get("enableSMSMFA") is True,
    )


def _response_of(answer: bytes) -> dict[str, Any] | None:
    """The ``response`` of the event a function answered ({} when it is null or left out); None when the answer is
    no event: not JSON a token could carry, not an object, or a ``response`` that is not one."""
    try:
        returned = read_json(answer)
    except (ValueError, RecursionError):
        return None
    if not isinstance(returned, Mapping):
        return None
    response = returned.get("response")
    if response is None:
        return {}
    return dict(response) if isinstance(response, Mapping) else None


# --- the service ---------------------------------------------------------------------------------------------


class TriggerService:
    """Looks up a pool's trigger functions and invokes them."""

    def __init__(
        self,
        invoker: LambdaInvoker | None,
        local: LocalFunctions | None = None,
        metrics: Metrics | None = None,
        code_encryption: CodeEncryption | None = None,
    ) -> None:
        self.invoker = invoker
        self.metrics = metrics
        # Functions that are Python handlers in this process (config file server.lambda.functions).
        self.local = local
        # Seals the codes the custom sender triggers are given (custom_sender.py).
        self.code_encryption = code_encryption

    @staticmethod
    def function(pool: PoolView, trigger: str) -> str | None:
        """The ARN of the function set for ``trigger`` (a LambdaConfig member), or None."""
        config = pool.settings.get("LambdaConfig") or {}
        if trigger == "PreTokenGeneration":
            versioned = config.get("PreTokenGenerationConfig") or {}
            arn = versioned.get("LambdaArn") or config.get("PreTokenGeneration")
        else:
            arn = config.get(trigger)
            if isinstance(arn, Mapping):  # a versioned member ({LambdaVersion, LambdaArn}: InboundFederation)
                arn = arn.get("LambdaArn")
        return arn if isinstance(arn, str) and arn else None

    @staticmethod
    def pre_token_version(pool: PoolView) -> str:
        """The pre token generation event's version: "1", "2" or "3" (PreTokenGenerationConfig.LambdaVersion)."""
        versioned = (pool.settings.get("LambdaConfig") or {}).get("PreTokenGenerationConfig") or {}
        return {"V2_0": "2", "V3_0": "3"}.get(str(versioned.get("LambdaVersion") or "V1_0"), "1")

    async def invoke(
        self, pool: PoolView, trigger: str, event: dict[str, Any], *, answer_read: bool = True
    ) -> dict[str, Any]:
        """Invoke the pool's ``trigger`` function with ``event``; its ``response`` (an object). The caller
        checks that the pool has one (:meth:`function`). ``answer_read=False``: a trigger whose answer Cognito does
        not read (the custom senders), {} whatever it returned."""
        arn = self.function(pool, trigger)
        assert arn is not None
        fields = {"pool": pool.id, "trigger": event.get("triggerSource"), "function": arn}
        if self.invoker is None:  # pragma: no cover - the container always sets one
            raise UnexpectedLambdaException(f"{trigger} invocation failed due to error NoInvoker.")
        payload = json.dumps(event, separators=(",", ":")).encode()
        invoker: LambdaInvoker | LocalFunctions = self.invoker
        if self.local is not None and self.local.handles(arn):
            invoker = self.local
        started = time.monotonic()
        outcome = "unreadable_output"
        try:
            try:
                answer = await invoker.invoke(arn, payload)
            except LambdaFunctionError as exc:
                outcome = "function_error"
                log.info("trigger.refused", error=exc.message[:256], **fields)
                raise UserLambdaValidationException(f"{trigger} failed with error {exc.message}.") from exc
            except LambdaInvokeError as exc:
                outcome = "invoke_error"
                log.warning("trigger.invoke_failed", reason=exc.reason, **fields)
                raise UnexpectedLambdaException(f"{trigger} invocation failed due to error {exc.reason}.") from exc
            response = _response_of(answer) if answer_read else {}
            if response is None:
                log.warning("trigger.unrecognizable_output", **fields)
                raise _invalid()
            outcome = "answered"
        finally:
            if self.metrics is not None:
                self.metrics.trigger_finished(pool.id, trigger, outcome, time.monotonic() - started)
        log.debug("trigger.invoked", **fields)
        return response

    # --- the triggers -----------------------------------------------------------------------------------

    async def pre_authentication(
        self,
        pool: PoolView,
        *,
        client_id: str,
        username: str,
        attributes: Mapping[str, str] | None,
        validation_data: Mapping[str, str] | None = None,
        user_not_found: bool = False,
    ) -> None:
        """PreAuthentication_Authentication: before the password (or other first factor) is checked; the
        function may refuse the sign-in by raising."""
        if self.function(pool, "PreAuthentication") is None:
            return
        request: dict[str, Any] = {
            "userAttributes": dict(attributes or {}),
            "validationData": dict(validation_data or {}),
        }
        if user_not_found:
            request["userNotFound"] = True
        event = trigger_event(pool, "PreAuthentication_Authentication", username, request, client_id=client_id)
        await self.invoke(pool, "PreAuthentication", event)

    async def post_authentication(
        self,
        pool: PoolView,
        *,
        client_id: str,
        username: str,
        attributes: Mapping[str, str],
        new_device_used: bool,
        client_metadata: Mapping[str, str] | None = None,
    ) -> None:
        """PostAuthentication_Authentication: once every factor is proven, before the tokens go out."""
        if self.function(pool, "PostAuthentication") is None:
            return
        request = {
            "userAttributes": dict(attributes),
            "newDeviceUsed": new_device_used,
            "clientMetadata": dict(client_metadata or {}),
        }
        event = trigger_event(pool, "PostAuthentication_Authentication", username, request, client_id=client_id)
        await self.invoke(pool, "PostAuthentication", event)

    async def post_confirmation(
        self,
        pool: PoolView,
        trigger_source: str,
        *,
        client_id: str | None,
        username: str,
        attributes: Mapping[str, str],
        client_metadata: Mapping[str, str] | None = None,
    ) -> None:
        """PostConfirmation_ConfirmSignUp / PostConfirmation_ConfirmForgotPassword: after the change is stored
        (a function that raises fails the call, and the user stays confirmed, as with Cognito)."""
        if self.function(pool, "PostConfirmation") is None:
            return
        request = {"userAttributes": dict(attributes), "clientMetadata": dict(client_metadata or {})}
        event = trigger_event(pool, trigger_source, username, request, client_id=client_id)
        await self.invoke(pool, "PostConfirmation", event)

    async def user_migration(
        self,
        pool: PoolView,
        trigger_source: str,
        *,
        client_id: str,
        username: str,
        password: str | None,
        validation_data: Mapping[str, str] | None = None,
        client_metadata: Mapping[str, str] | None = None,
    ) -> Migration | None:
        """UserMigration_Authentication (a password sign-in of a name that is no user: ``password`` is the one
        given) or UserMigration_ForgotPassword (no password): the user the function answers with, or None when
        the pool has no such function or the function does not know the user (it raised). A function that
        cannot be reached is UnexpectedLambdaException; a malformed answer InvalidLambdaResponseException."""
        if self.function(pool, "UserMigration") is None:
            return None
        request: dict[str, Any] = {
            "validationData": dict(validation_data or {}),
            "clientMetadata": dict(client_metadata or {}),
        }
        if password is not None:
            request["password"] = password
        event = trigger_event(
            pool,
            trigger_source,
            username,
            request,
            client_id=client_id,
            response={
                "userAttributes": None,
                "finalUserStatus": None,
                "messageAction": None,
                "desiredDeliveryMediums": None,
                "forceAliasCreation": None,
                "enableSMSMFA": None,
            },
        )
        try:
            answered = await self.invoke(pool, "UserMigration", event)
        except UserLambdaValidationException:
            # The function does not know the name (or the password): the caller answers as for any unknown name.
            return None
        return migration(answered)

    async def pre_token_generation(
        self,
        pool: PoolView,
        trigger_source: str,
        *,
        client_id: str,
        username: str | None,
        attributes: Mapping[str, str],
        groups: Sequence[str],
        roles: Sequence[str],
        preferred_role: str | None,
        scopes: Sequence[str],
        client_metadata: Mapping[str, str] | None = None,
    ) -> TokenCustomization | None:
        """The pre token generation event for the tokens about to be signed, and what its function asked for;
        None when the pool has no such function."""
        if self.function(pool, "PreTokenGeneration") is None:
            return None
        version = self.pre_token_version(pool)
        request: dict[str, Any] = {
            "userAttributes": dict(attributes),
            "groupConfiguration": {
                "groupsToOverride": list(groups),
                "iamRolesToOverride": list(roles),
                "preferredRole": preferred_role,
            },
            "clientMetadata": dict(client_metadata or {}),
        }
        if version != "1":
            request["scopes"] = list(scopes)
            response: dict[str, Any] = {"claimsAndScopeOverrideDetails": None}
        else:
            response = {"claimsOverrideDetails": None}
        event = trigger_event(
            pool, trigger_source, username, request, client_id=client_id, response=response, version=version
        )
        answered = await self.invoke(pool, "PreTokenGeneration", event)
        return token_customization(answered, version=version)
