"""The AWS JSON 1.1 protocol on ``POST /``: one handler for every service that speaks it.

A request names its operation in ``X-Amz-Target: <TargetPrefix>.<Operation>``; the body is a JSON object
checked against botocore's service model; operations the model marks as signed need a valid SigV4
signature: from the admin credentials, which may do anything, or from temporary credentials Gatehouse issued
(STS, identity pools), which may do what their role's policies allow, as on AWS ("Amazon Cognito evaluates
Identity and Access Management (IAM) policies in requests for this API operation"). Errors are rendered here,
and only here, as ``{"__type": ..., "message": ...}`` with the error's status, so handlers never build error
bodies.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson
import structlog
from aiohttp import web

from gateway.api.model import ServiceModel
from gateway.api.sigv4 import SignedRequest, SigV4Identity, verify_sigv4
from gateway.errors import (
    ExpiredTokenException,
    GatehouseError,
    InternalErrorException,
    RequestEntityTooLarge,
    ResourceNotFoundException,
    SerializationException,
    SessionAccessDeniedException,
    UnknownOperationException,
    UnrecognizedClientException,
)
from gateway.ids import RequestIds
from gateway.logging import bind_call, unbind_call
from gateway.services.container import Services
from gateway.services.credentials import CallerContext, ExpiredSecurityToken, security_token
from gateway.services.policy import ContextValue
from gateway.storage.base import NotFound

log = structlog.get_logger("gateway.api")

CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass(slots=True)
class Call:
    """One API call as a handler sees it (slots, not frozen: made on every request, and a frozen dataclass
    sets each field through ``object.__setattr__``, which costs more than twice as much)."""

    services: Services
    operation: str
    params: dict[str, Any]
    identity: SigV4Identity | None
    source_ip: str | None
    request_id: str
    # The caller's User-Agent (a user session's DeviceType is described from it).
    user_agent: str | None = None
    # Who signed with temporary credentials (their policies allowed the call); None for the admin keys.
    caller: CallerContext | None = None


Handler = Callable[[Call], Awaitable[dict[str, Any]]]
# The ARNs a call acts on, for a temporary-credential session's policy check (every one must be allowed).
ResourcesOf = Callable[[Services, str, Mapping[str, Any]], Awaitable[Sequence[str]]]
# The IAM roles a call hands to the service to assume later (iam:PassRole's resources) and the service's principal.
RolesPassed = Callable[[str, Mapping[str, Any]], Sequence[str]]
# The tags of the resource an ARN names ({} for "*" or one not found): its aws:ResourceTag/<key> condition keys.
TagsOf = Callable[[Services, str], Awaitable[Mapping[str, str]]]


@dataclass(frozen=True)
class JsonService:
    """A service on the AWS JSON wire: its model, its operations, and the signing service name."""

    model: ServiceModel
    operations: Mapping[str, Handler]
    wire: str
    signing_name: str
    request_ids: RequestIds = field(default_factory=RequestIds)
    session_resources: ResourcesOf | None = None
    resource_tags: TagsOf | None = None
    passed_roles: RolesPassed | None = None
    # iam:PassedToService of the roles it is handed (the service principal that will assume them).
    passed_to: str = ""


# Any web page may call the AWS wires with fetch(), as it may call Cognito's endpoints: the AWS SDKs for
# JavaScript (Amplify, amazon-cognito-identity-js) run in browsers. Never with credentials: these wires read no
# cookie, so a page gets nothing it could not get with the tokens or keys it already holds. The headers the
# SDKs read are exposed to them. The preflight (OPTIONS /) is gateway/oauth/cors.py's.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "x-amzn-RequestId, x-amzn-ErrorType, x-amzn-ErrorMessage, Date",
}


def json_response(body: Mapping[str, Any], status: int = 200, request_id: str | None = None) -> web.Response:
    headers = {"x-amzn-RequestId": request_id, **CORS_HEADERS} if request_id else CORS_HEADERS
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type=CONTENT_TYPE,
        headers=headers,
    )


def error_response(error: GatehouseError, request_id: str) -> web.Response:
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error.type_name, **CORS_HEADERS}
    answer = error.to_json()
    try:
        body = orjson.dumps(answer)
    except TypeError:
        # A message that quotes a header of undecodable bytes (aiohttp gives them as lone surrogates, which
        # JSON text cannot hold): quoted with each such byte as U+FFFD instead.
        body = orjson.dumps(
            {k: v.encode("utf-8", "replace").decode() if isinstance(v, str) else v for k, v in answer.items()}
        )
    return web.Response(
        body=body,
        status=error.status,
        content_type=CONTENT_TYPE,
        headers=headers,
    )


def signed_request(request: web.Request, body: bytes) -> SignedRequest:
    headers: dict[str, str] = {}
    for key, value in request.headers.items():
        lower = key.lower()
        headers[lower] = f"{headers[lower]},{value}" if lower in headers else value
    # Path and query exactly as on the wire: the signer encoded them, and sigv4 decodes them once. aiohttp's
    # query_string is already decoded, and decoding it again would change what a '%25' escape stands for.
    path, _, query = request.raw_path.partition("?")
    return SignedRequest(
        method=request.method,
        path=path,
        query_string=query,
        headers=headers,
        body=body,
    )


def _carries_signature(request: web.Request) -> bool:
    """Whether a request came signed (SigV4 in the Authorization header, or presigned in the query)."""
    return "Authorization" in request.headers or "X-Amz-Signature" in request.query


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refused past ``limit`` bytes (the app's client_max_size is the same limit; aiohttp
    checks it as the body arrives, chunked bodies included), or as a SerializationException when it is not
    what its Content-Encoding says (corrupt gzip or deflate): aiohttp's error there was a 500."""
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise RequestEntityTooLarge() from exc
    except web.RequestPayloadError as exc:
        raise SerializationException("The request body cannot be decoded with its Content-Encoding.") from exc


def is_temporary(signed: SignedRequest) -> bool:
    """Whether the request carries a session token, in a header or (presigned) in the query, however its name
    is percent-encoded there (the query is taken as sent)."""
    if any(name.lower() == "x-amz-security-token" for name in signed.headers):
        return True
    return any(unquote(part.partition("=")[0]) == "X-Amz-Security-Token" for part in signed.query_string.split("&"))


def request_keys(ctx: CallerContext, source_ip: str | None) -> dict[str, ContextValue]:
    """The condition keys a call to Gatehouse's own API carries about itself, as AWS's calls do ("AWS global
    condition context keys"): the Region it was signed for and the caller's address."""
    keys: dict[str, ContextValue] = {"aws:RequestedRegion": ctx.region}
    if source_ip:
        keys["aws:SourceIp"] = source_ip
    return keys


# The members that carry tags on Cognito's tag and pool operations: maps of tags a call sets (TagResource's Tags,
# CreateUserPool's UserPoolTags ...) and UntagResource's list of keys.
_TAG_MAPS = ("Tags", "UserPoolTags", "IdentityPoolTags")


def request_tag_keys(params: Mapping[str, Any]) -> dict[str, ContextValue]:
    """``aws:RequestTag/<key>`` and ``aws:TagKeys`` of a call that sets or removes tags, as the Service Authorization
    Reference gives them for Cognito's TagResource, UntagResource, CreateUserPool and CreateIdentityPool: a Deny
    naming them holds (a missing key would make its condition false, and the Deny fall away)."""
    keys: dict[str, ContextValue] = {}
    tag_keys: list[str] = []
    for member in _TAG_MAPS:
        tags = params.get(member)
        if isinstance(tags, dict):
            for key, value in tags.items():
                if isinstance(key, str) and isinstance(value, str):
                    keys[f"aws:RequestTag/{key}"] = value
                    tag_keys.append(key)
    removed = params.get("TagKeys")
    if isinstance(removed, list):
        tag_keys.extend(key for key in removed if isinstance(key, str))
    if tag_keys:
        keys["aws:TagKeys"] = tag_keys
    return keys


def refuse_guest(caller: CallerContext, action: str, resource: str) -> None:
    """A guest's session (an identity pool's unauthenticated identity) makes none of Gatehouse's own signed calls,
    whatever its role allows: AWS's scope-down of such sessions allows none of them (CallerContext.guest)."""
    if caller.guest:
        raise SessionAccessDeniedException(
            f"User: {caller.assumed_role_arn} is not authorized to perform: {action} on resource: {resource} "
            f"because no session policy allows the {action} action"
        )


async def authorize_session(
    service: JsonService,
    services: Services,
    caller: CallerContext,
    operation: str,
    params: Mapping[str, Any],
    source_ip: str | None,
) -> None:
    """Refuse a temporary-credential call that the session's role (and session policy) does not allow on every
    resource it acts on: IAM's evaluation, action ``<service>:<Operation>``."""
    action = f"{service.signing_name}:{operation}"
    # Only the members the handler will see name the resource: an unknown member (a UserPoolId on TagResource, an
    # IdentityPoolId on DescribeIdentity) is dropped by validation, so the check must not be made against it while
    # the call acts on what the known members name.
    known = service.model.input_members(operation)
    named = {key: value for key, value in params.items() if key in known}
    resources = await service.session_resources(services, operation, named) if service.session_resources else ["*"]
    refuse_guest(caller, action, resources[0])
    keys = {**request_keys(caller, source_ip), **request_tag_keys(named)}
    for resource in resources:
        resource_keys = keys
        if service.resource_tags is not None and resource != "*":
            # The pool's own tags, for aws:ResourceTag/<key> ("you can constrain permissions for user pools based
            # on specific tags or tag values", TagResource).
            tags = await service.resource_tags(services, resource)
            resource_keys = {**keys, **{f"aws:ResourceTag/{key}": value for key, value in tags.items()}}
        if not services.credentials.is_allowed(caller, action, resource, resource_keys):
            raise SessionAccessDeniedException(
                f"User: {caller.assumed_role_arn} is not authorized to perform: {action} on resource: {resource} "
                f"because no identity-based policy allows the {action} action"
            )
    # A role the call hands the service to assume for others (an identity pool's roles, a group's RoleArn) needs
    # iam:PassRole on it, AWS's dependent action for these operations ("Grant a user permissions to pass a role to
    # an AWS service", IAM User Guide): else a session could give its pools a role stronger than its own.
    passed = service.passed_roles(operation, named) if service.passed_roles else ()
    pass_keys = {**keys, "iam:PassedToService": service.passed_to}
    for role_arn in passed:
        if not services.credentials.is_allowed(caller, "iam:PassRole", role_arn, pass_keys):
            raise SessionAccessDeniedException(
                f"User: {caller.assumed_role_arn} is not authorized to perform: iam:PassRole on resource: {role_arn} "
                "because no identity-based policy allows the iam:PassRole action"
            )


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body or body.isspace():  # isspace() is strip()'s test without the copy of the body
        return {}
    try:
        params = orjson.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationException("Request body is not valid JSON.") from exc
    if not isinstance(params, dict):
        raise SerializationException("Request body must be a JSON object.")
    return params


async def handle(
    service: JsonService, services: Services, request: web.Request, target: str, body: bytes
) -> web.Response:
    """Run one JSON-protocol call and render its answer."""
    request_id = service.request_ids.next()
    operation = target.partition(".")[2]
    bound = bind_call(request_id, operation)
    started = time.perf_counter()
    outcome = "success"
    # Only known operation names become metric labels: the target header is the caller's to choose.
    label = operation if operation in service.operations else "unknown"
    try:
        if not service.model.has_operation(operation) or operation not in service.operations:
            raise UnknownOperationException(f"Operation {operation or target} is not supported.")
        identity = None
        caller = None
        if service.model.requires_signature(operation) or (
            service.model.signature_optional(operation) and _carries_signature(request)
        ):
            signed = signed_request(request, body)
            # A regional service: signed for the server's region (AWS: "Credential should be scoped to a valid
            # region").
            regions = (services.settings.region,)
            if is_temporary(signed):
                try:
                    caller = await services.credentials.verify_signed(
                        signed, expected_service=service.signing_name, regions=regions
                    )
                except ExpiredSecurityToken as expired:
                    # The JSON wires' name for it (the query wires' is ExpiredToken).
                    raise ExpiredTokenException(expired.message) from expired
                identity = SigV4Identity(caller.access_key_id, caller.region, caller.service, security_token(signed))
            else:
                identity = verify_sigv4(
                    signed, services.admin_credentials.get, expected_service=service.signing_name, regions=regions
                )
                if identity.security_token is not None:
                    # A long-term key sent with a session token is refused, as AWS refuses it (and as the query
                    # wire does).
                    raise UnrecognizedClientException()
        params = parse_json_object(body)
        source_ip = services.rate_limits.address_of(request.remote, request.headers)
        if identity is None:
            # Unsigned calls are throttled before any work, a malformed one included.
            services.rate_limits.check(operation, params, source_ip)
        if caller is not None:
            # Before the input is checked, as AWS authorizes first: a session learns nothing of a call it may
            # not make.
            await authorize_session(service, services, caller, operation, params, source_ip)
        service.model.validate_input(operation, params)
        call = Call(
            services=services,
            operation=operation,
            params=params,
            identity=identity,
            source_ip=source_ip,
            request_id=request_id,
            user_agent=request.headers.get("User-Agent"),
            caller=caller,
        )
        result = await service.operations[operation](call)
        return json_response(result, request_id=request_id)
    except GatehouseError as error:
        outcome = error.type_name
        if error.status >= 500:
            log.error("api.error", error=error.type_name, message=error.message)
        return error_response(error, request_id)
    except NotFound as missing:
        # A write whose parent row (a user pool, app client, user ...) was deleted by another request, on any
        # process, after this one read it: the request is about something that no longer exists, which
        # every pool-scoped operation's model answers with ResourceNotFoundException -- not a 500.
        gone = ResourceNotFoundException("The resource was deleted while the request was being processed.")
        outcome = gone.type_name
        log.info("api.deleted_meanwhile", missing=str(missing))
        return error_response(gone, request_id)
    except Exception:
        # Never a stack trace on the wire; the log keeps it for the operator.
        outcome = "InternalErrorException"
        log.exception("api.unhandled")
        return error_response(InternalErrorException(), request_id)
    finally:
        elapsed = time.perf_counter() - started
        metrics = services.metrics
        metrics.call_finished(service.wire, label, outcome, elapsed)
        unbind_call(bound)
