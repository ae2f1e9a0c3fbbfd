"""The AWS query protocol on ``POST /``: the wire of IAM and STS.

A request is a form-encoded body (``application/x-www-form-urlencoded``) with ``Action=<Operation>``,
``Version=<apiVersion>`` and the input's members flattened into dotted names as botocore's
``QuerySerializer`` writes them (``Tags.member.1.Key``, ``Map.entry.1.key``). The answer is XML in the
service's namespace::

    <CreateRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
      <CreateRoleResult>...</CreateRoleResult>
      <ResponseMetadata><RequestId>...</RequestId></ResponseMetadata>
    </CreateRoleResponse>

and an error is ``<ErrorResponse><Error><Type>Sender</Type><Code>...</Code><Message>...</Message></Error>
<RequestId>...</RequestId></ErrorResponse>`` with the error's HTTP status (the ``error`` traits of botocore's
model). Everything operation-specific comes from botocore's ``iam`` and ``sts`` service models: the input
shape the form is read with (then checked by :mod:`gateway.api.model`'s validator), the output shape the XML
is written from, which operations are unsigned.

Routing: a request for ``POST /`` with a form body and no ``X-Amz-Target`` comes here. The service is the
SigV4 credential scope's (``.../iam/aws4_request`` or ``.../sts/...``); an unsigned request (STS's
AssumeRoleWithWebIdentity) is routed by its ``Version`` or, failing that, by which service has the Action.

Signed operations accept the admin credentials, or temporary credentials from Gatehouse's STS (with
``X-Amz-Security-Token``); a session may call an IAM operation only if its policies allow ``iam:<Action>``.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

import botocore.loaders
import botocore.model
import structlog
from aiohttp import web

from gateway.api.awsjson import CORS_HEADERS, TagsOf, is_temporary, read_body, request_keys, signed_request
from gateway.api.model import ServiceModel
from gateway.api.sigv4 import SignedRequest, verify_sigv4
from gateway.errors import (
    AccessDeniedException,
    GatehouseError,
    InternalErrorException,
    InvalidActionException,
    InvalidParameterException,
    UnrecognizedClientException,
    ValidationError,
)
from gateway.logging import bind_call, unbind_call
from gateway.services.container import Services
from gateway.services.credentials import CallerContext
from gateway.services.policy import ContextValue

log = structlog.get_logger("gateway.api")

FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
# More form fields than this are refused before parsing them all (IAM's largest inputs use a few hundred).
_MAX_FIELDS: Final = 2000
XML_CONTENT_TYPE: Final = "text/xml"
# Where AWS's global endpoints (IAM, STS's sts.amazonaws.com) take their signatures from.
GLOBAL_REGION: Final = "us-east-1"

# Errors of the shared tree whose query-protocol code differs from their JSON ``__type``.
_QUERY_CODES: Final = {
    "InvalidParameterException": "ValidationError",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "IncompleteSignatureException": "IncompleteSignature",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "InternalErrorException": "InternalFailure",
    "SerializationException": "MalformedInput",
    "UnknownOperationException": "InvalidAction",
}


@dataclass(frozen=True)
class QueryCall:
    """One query-protocol call as a handler sees it."""

    services: Services
    operation: str
    params: dict[str, Any]
    # The admin access key id, or None; for a call signed with temporary credentials, ``caller`` says who.
    admin_key_id: str | None
    caller: CallerContext | None
    source_ip: str | None
    request_id: str


QueryHandler = Callable[[QueryCall], Awaitable[dict[str, Any]]]
# For a session's IAM calls: the resource an operation acts on, from its parameters.
ResourceOf = Callable[[Services, str, Mapping[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class QueryService:
    name: str  # botocore's service name and the SigV4 signing name: "iam", "sts"
    operations: Mapping[str, QueryHandler]
    # Operations a temporary-credential session may call when its policies allow "<name>:<Action>" (IAM);
    # STS's GetCallerIdentity needs no permission (AWS: "no permissions are required").
    session_resource: ResourceOf | None = None
    # The tags of the resource an ARN names, for a session's aws:ResourceTag/<key> ({} for "*" or none found).
    resource_tags: TagsOf | None = None
    open_to_sessions: frozenset[str] = frozenset()
    # The region a global endpoint is signed for (IAM; STS's global endpoint), accepted besides the server's own.
    global_region: str | None = None

    def signing_regions(self, region: str) -> tuple[str, ...]:
        """The regions a request's credential scope may name when the server runs in ``region``."""
        return (region,) if self.global_region is None else (region, self.global_region)

    @property
    def model(self) -> ServiceModel:
        return ServiceModel.load(self.name)

    @property
    def shapes(self) -> botocore.model.ServiceModel:
        return _botocore_model(self.name)

    @property
    def namespace(self) -> str:
        return str(self.shapes.metadata["xmlNamespace"])

    @property
    def version(self) -> str:
        return str(self.shapes.api_version)


@functools.cache
def _botocore_model(name: str) -> botocore.model.ServiceModel:
    raw = botocore.loaders.Loader().load_service_model(name, "service-2")
    return botocore.model.ServiceModel(raw, service_name=name)


def is_query_request(request: web.Request) -> bool:
    """A POST of the query protocol: a form, and no JSON target (``GET /`` is always the query protocol)."""
    return request.content_type == FORM_CONTENT_TYPE and "X-Amz-Target" not in request.headers


# --- reading the form ----------------------------------------------------------------------------------


def parse_form(body: bytes) -> list[tuple[str, str]]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("The request body is not UTF-8.") from exc
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=_MAX_FIELDS)
    except ValueError as exc:  # more fields than any operation's input could use
        raise ValidationError(f"The request has more than {_MAX_FIELDS} parameters.") from exc


def _tree(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        if key in ("Action", "Version"):
            continue
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None or child == "" else {"": child}
                node[part] = child
            node = child
        last = parts[-1]
        if isinstance(node.get(last), dict):
            node[last][""] = value
        else:
            node[last] = value
    return root


# A number's text in a form: an optionally signed integer, or a decimal with an optional exponent (ASCII only).
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _path(parent: str, name: str) -> str:
    lowered = name[:1].lower() + name[1:]
    return f"{parent}.{lowered}" if parent else lowered


def _convert(shape: botocore.model.Shape, node: Any, where: str) -> Any:
    """The form's value(s) for one shape, as the JSON validator expects them (numbers, booleans, lists...)."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(node, dict):
            raise ValidationError(f"Value at '{where}' failed to satisfy constraint: Member must be a structure")
        out: dict[str, Any] = {}
        for member_name, member in shape.members.items():
            wire = member.serialization.get("name", member_name)
            if wire in node:
                out[member_name] = _convert(member, node[wire], _path(where, member_name))
        return out
    if kind == "list":
        if node == "":
            return []
        if not isinstance(node, dict):
            raise ValidationError(f"Value at '{where}' failed to satisfy constraint: Member must be a list")
        items = node if shape.serialization.get("flattened") else node.get("member", {})
        if not isinstance(items, dict):
            return []
        return [_convert(shape.member, items[index], where) for index in _indexes(items, where)]
    if kind == "map":
        if node == "":
            return {}
        entries = node.get("entry", {}) if isinstance(node, dict) else {}
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        result: dict[str, Any] = {}
        for index in _indexes(entries, where):
            entry = entries[index]
            if isinstance(entry, dict) and key_name in entry and value_name in entry:
                result[str(entry[key_name])] = _convert(shape.value, entry[value_name], where)
        return result
    if isinstance(node, dict):
        node = node.get("", "")
    text = str(node)
    if kind in ("integer", "long", "float", "double"):
        # Only ASCII digits as botocore writes them: Python's int() and float() also take surrounding white space,
        # "_" separators, other scripts' digits, "nan" and "inf", none of which is a number on the wire.
        pattern = _INTEGER if kind in ("integer", "long") else _DECIMAL
        if pattern.fullmatch(text) is None:
            raise ValidationError(f"Value '{text}' at '{where}' failed to satisfy constraint: Member must be a number")
        try:
            return int(text) if kind in ("integer", "long") else float(text)
        except ValueError as exc:  # an integer of more digits than Python converts
            raise ValidationError(
                f"Value '{text}' at '{where}' failed to satisfy constraint: Member must be a number"
            ) from exc
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValidationError(f"Value '{text}' at '{where}' failed to satisfy constraint: Member must be a boolean")
        return text.lower() == "true"
    return text


def _indexes(items: Mapping[str, Any], where: str) -> list[str]:
    try:
        ordered = sorted(items, key=int)
    except ValueError as exc:
        raise ValidationError(f"Value at '{where}' failed to satisfy constraint: list indexes must be numbers") from exc
    return ordered


def read_params(service: QueryService, operation: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The operation's input from the form, typed and checked against the model (ValidationError)."""
    shape = service.shapes.operation_model(operation).input_shape
    params: dict[str, Any] = _convert(shape, _tree(pairs), "") if shape is not None else {}
    try:
        service.model.validate_input(operation, params)
    except InvalidParameterException as exc:
        raise ValidationError(exc.message) from exc
    return params


# --- writing XML -----------------------------------------------------------------------------------------


def _timestamp(value: Any) -> str:
    moment = value.astimezone(UTC) if isinstance(value, datetime) else datetime.fromtimestamp(float(value), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# What XML 1.0 cannot carry at all, escaped or not (XML 1.0 section 2.2, "Char"): C0 controls but tab, newline
# and carriage return; lone surrogates; U+FFFE and U+FFFF.
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    """Character data for an answer: escaped, and with what XML cannot carry (an error message echoing the input,
    a token's claim) replaced by U+FFFD, so the document stays well-formed."""
    return escape(_NOT_XML_CHAR.sub("\ufffd", value))


def _xml(shape: botocore.model.Shape, value: Any, out: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        for member_name, member in shape.members.items():
            if member_name not in value or value[member_name] is None:
                continue
            wire = member.serialization.get("name", member_name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                for item in value[member_name]:
                    out.append(f"<{wire}>")
                    _xml(member.member, item, out)
                    out.append(f"</{wire}>")
                continue
            out.append(f"<{wire}>")
            _xml(member, value[member_name], out)
            out.append(f"</{wire}>")
    elif kind == "list":
        name = shape.member.serialization.get("name", "member")
        for item in value:
            out.append(f"<{name}>")
            _xml(shape.member, item, out)
            out.append(f"</{name}>")
    elif kind == "map":
        for key, item in value.items():
            out.append("<entry><key>" + _text(str(key)) + "</key><value>")
            _xml(shape.value, item, out)
            out.append("</value></entry>")
    elif kind == "timestamp":
        out.append(_timestamp(value))
    elif kind == "boolean":
        out.append("true" if value else "false")
    else:
        out.append(_text(str(value)))


def xml_response(service: QueryService, operation: str, result: Mapping[str, Any], request_id: str) -> web.Response:
    op = service.shapes.operation_model(operation)
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<{operation}Response xmlns="{service.namespace}">']
    if op.output_shape is not None:
        wrapper = op.output_shape.serialization.get("resultWrapper", f"{operation}Result")
        parts.append(f"<{wrapper}>")
        _xml(op.output_shape, result, parts)
        parts.append(f"</{wrapper}>")
    parts.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{operation}Response>")
    return web.Response(
        body="".join(parts).encode("utf-8"),
        content_type=XML_CONTENT_TYPE,
        charset="utf-8",
        headers={"x-amzn-RequestId": request_id, **CORS_HEADERS},
    )


def error_code(error: GatehouseError) -> str:
    return _QUERY_CODES.get(error.type_name, error.type_name)


def error_response(error: GatehouseError, request_id: str, namespace: str) -> web.Response:
    fault = "Receiver" if error.status >= 500 else "Sender"
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="{namespace}"><Error><Type>{fault}</Type>'
        f"<Code>{_text(error_code(error))}</Code><Message>{_text(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return web.Response(
        body=body.encode("utf-8", "replace"),  # "replace": a message may quote a header's undecodable bytes
        status=error.status,
        content_type=XML_CONTENT_TYPE,
        charset="utf-8",
        headers={"x-amzn-RequestId": request_id, **CORS_HEADERS},
    )


# --- routing and authentication --------------------------------------------------------------------------


def _signing_service(signed: SignedRequest) -> str | None:
    """The service of the SigV4 credential scope (``AKID/date/region/<service>/aws4_request``), if any."""
    credential: str | None = None
    for name, value in signed.headers.items():
        if name.lower() == "authorization":
            for part in value.replace(",", " ").split():
                if part.startswith("Credential="):
                    credential = part[len("Credential=") :]
    if credential is None:
        for key, value in parse_qsl(signed.query_string):
            if key == "X-Amz-Credential":
                credential = value
    if credential is None:
        return None
    pieces = credential.split("/")
    return pieces[3] if len(pieces) == 5 else None


def route(
    services_by_name: Mapping[str, QueryService], signed: SignedRequest, action: str, version: str
) -> QueryService:
    scoped = _signing_service(signed)
    if scoped is not None and scoped in services_by_name:
        return services_by_name[scoped]
    for service in services_by_name.values():
        if version and version == service.version:
            return service
    for service in services_by_name.values():
        if action in service.operations:
            return service
    raise InvalidActionException(f"Could not find operation {action or '(none)'}.")


def _request_tags(params: Mapping[str, Any]) -> dict[str, ContextValue]:
    """``aws:RequestTag/<key>`` and ``aws:TagKeys`` of an IAM call that sets tags (``Tags``: a list of Key/Value)
    or removes them (``TagKeys``), as IAM gives them for CreateRole, TagRole, UntagRole and the providers' own."""
    keys: dict[str, ContextValue] = {}
    tag_keys: list[str] = []
    for tag in params.get("Tags") or ():
        if isinstance(tag, Mapping) and isinstance(tag.get("Key"), str) and isinstance(tag.get("Value"), str):
            keys[f"aws:RequestTag/{tag['Key']}"] = tag["Value"]
            tag_keys.append(tag["Key"])
    tag_keys.extend(key for key in params.get("TagKeys") or () if isinstance(key, str))
    if tag_keys:
        keys["aws:TagKeys"] = tag_keys
    return keys


async def authenticate(
    services: Services,
    service: QueryService,
    operation: str,
    params: Mapping[str, Any],
    signed: SignedRequest,
    source_ip: str | None = None,
) -> tuple[str | None, CallerContext | None]:
    """Admin credentials, or a temporary-credential session allowed to make this call (``source_ip``: the
    caller's address, ``aws:SourceIp`` of the session's policy check)."""
    if is_temporary(signed):
        regions = service.signing_regions(services.settings.region)
        ctx = await services.credentials.verify_signed(signed, expected_service=service.name, regions=regions)
        if operation in service.open_to_sessions:
            return None, ctx
        resource = await service.session_resource(services, operation, params) if service.session_resource else "*"
        if ctx.guest:
            action = f"{service.name}:{operation}"
            raise AccessDeniedException(
                f"User: {ctx.assumed_role_arn} is not authorized to perform: {action} on resource: {resource} "
                f"because no session policy allows the {action} action"
            )
        keys = {**request_keys(ctx, source_ip), **_request_tags(params)}
        if service.resource_tags is not None and resource != "*":
            # A role's or provider's own tags (IAM User Guide, "Controlling access to IAM resources": a Deny on
            # aws:ResourceTag/<key> holds only if the key is there to test).
            tags = await service.resource_tags(services, resource)
            keys.update({f"aws:ResourceTag/{key}": value for key, value in tags.items()})
        allowed = services.credentials.is_allowed(ctx, f"{service.name}:{operation}", resource, keys)
        if not allowed:
            raise AccessDeniedException(
                f"User: {ctx.assumed_role_arn} is not authorized to perform: {service.name}:{operation} "
                f"on resource: {resource} because no identity-based policy allows the "
                f"{service.name}:{operation} action"
            )
        return None, ctx
    identity = verify_sigv4(
        signed,
        services.admin_credentials.get,
        expected_service=service.name,
        regions=service.signing_regions(services.settings.region),
    )
    if identity.security_token is not None:
        # A long-term key sent with a session token: refused, as AWS refuses it.
        raise UnrecognizedClientException()
    return identity.access_key_id, None


def _scoped_namespace(services_by_name: Mapping[str, QueryService], request: web.Request) -> str:
    """The XML namespace of an answer given before the body is read: the signing scope's service's, else the
    first service's."""
    scoped = _signing_service(signed_request(request, b""))
    service = services_by_name.get(scoped or "") or next(iter(services_by_name.values()))
    return service.namespace


async def handle(
    services_by_name: Mapping[str, QueryService], services: Services, request: web.Request, max_body_bytes: int
) -> web.Response:
    """Read and run one query-protocol call and render its answer: even a body refused unread (too large, or
    not what its Content-Encoding says) is answered in the protocol's XML, which is all botocore can parse."""
    request_id = str(uuid.uuid4())
    started = time.perf_counter()
    namespace = _scoped_namespace(services_by_name, request)
    outcome = "success"
    label = "unknown"
    wire = "query"
    bound: contextvars.Token[tuple[str, str] | None] | None = None
    try:
        body = await read_body(request, max_body_bytes)
        signed = signed_request(request, body)
        # A GET carries the parameters in its URL, as AWS's query APIs take them too: a presigned URL (say
        # GetCallerIdentity's, which a service opens to learn who handed it over) is a GET; a POST's are its form.
        pairs = parse_form(signed.query_string.encode() if request.method == "GET" else body)
        fields = dict(pairs)
        action = fields.get("Action", "")
        version = fields.get("Version", "")
        service = route(services_by_name, signed, action, version)
        namespace, wire = service.namespace, service.name
        # As AWS: an operation is found by its name and the API version it is asked of; a request of another
        # version (or none) asks for an operation this service does not have.
        if action not in service.operations or not service.model.has_operation(action) or version != service.version:
            raise InvalidActionException(
                f"Could not find operation {action or '(none)'} for version {version or 'NO_VERSION_SPECIFIED'}"
            )
        label = action
        bound = bind_call(request_id, action)
        params = read_params(service, action, pairs)
        admin_key_id: str | None = None
        caller: CallerContext | None = None
        # aws:SourceIp: through a trusted proxy, the address it forwards (as the JSON wires take it).
        source_ip = services.rate_limits.address_of(request.remote, request.headers)
        if service.model.requires_signature(action):
            admin_key_id, caller = await authenticate(services, service, action, params, signed, source_ip)
        call = QueryCall(
            services=services,
            operation=action,
            params=params,
            admin_key_id=admin_key_id,
            caller=caller,
            source_ip=source_ip,
            request_id=request_id,
        )
        result = await service.operations[action](call)
        return xml_response(service, action, result, request_id)
    except GatehouseError as error:
        outcome = error_code(error)
        if error.status >= 500:
            log.error("api.error", error=outcome, message=error.message)
        return error_response(error, request_id, namespace)
    except Exception:
        outcome = "InternalFailure"
        log.exception("api.unhandled")
        return error_response(InternalErrorException(), request_id, namespace)
    finally:
        services.metrics.call_finished(wire, label, outcome, time.perf_counter() - started)
        if bound is not None:
            unbind_call(bound)
