"""``POST /gatehouse/verify``: who signed this request with Gatehouse temporary credentials, and may they do X?

For services that receive requests signed with credentials from Gatehouse's STS (or identity pools) and are
not written in Python (Python services call :meth:`gateway.services.credentials.CredentialService.verify_request`
directly). The service forwards the request it received, as received, and asks about one action::

    POST /gatehouse/verify
    Content-Type: application/json

    {"method": "GET", "url": "https://files.example.com/photos/a.jpg", "headers": {"Host": "...",
     "X-Amz-Date": "...", "X-Amz-Security-Token": "...", "Authorization": "AWS4-HMAC-SHA256 ..."},
     "body": "<base64 of the body>", "service": "s3",
     "action": "s3:GetObject", "resource": "arn:aws:s3:::photos/a.jpg", "context": {"aws:SourceIp": "..."}}

Answer (200) when the signature and the credentials are good::

    {"Principal": {"Account", "Arn", "UserId", "RoleArn", "RoleSessionName", "IdentityId", "SourceIdentity",
                   "PrincipalTags", "AccessKeyId", "IssuedAt", "Expiration", "Region", "Service"},
     "Allowed": true}          # only when "action" was asked; "resource" defaults to "*"

Otherwise 403 (400 for a malformed question) with ``{"__type": ..., "message": ...}``: ``SignatureDoesNotMatch``
(InvalidSignatureException), ``InvalidClientTokenId`` (UnrecognizedClientException: unknown, altered or revoked
credentials), ``ExpiredToken``. The endpoint needs no credentials of its own: the signed request is the
credential, and the answer tells the service only about the request's own signer.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import urlsplit

import orjson
import structlog
from aiohttp import web

from gateway.api.awsjson import read_body
from gateway.errors import GatehouseError, InternalErrorException, SerializationException
from gateway.oauth.wellknown import SERVICES
from gateway.services.policy import ContextValue

log = structlog.get_logger("gateway.verify")


def _error(error: GatehouseError) -> web.Response:
    code = {"InvalidSignatureException": "SignatureDoesNotMatch", "UnrecognizedClientException": "InvalidClientTokenId"}
    body = {"__type": code.get(error.type_name, error.type_name), "message": error.message}
    return web.Response(body=orjson.dumps(body), status=error.status, content_type="application/json")


def _question(raw: Any) -> tuple[str, str, dict[str, str], bytes, str | None, str | None, str, dict[str, ContextValue]]:
    if not isinstance(raw, dict):
        raise SerializationException("The body must be a JSON object.")
    method, url, headers = raw.get("method"), raw.get("url"), raw.get("headers")
    if not isinstance(method, str) or not isinstance(url, str) or not isinstance(headers, dict):
        raise SerializationException("'method' and 'url' (strings) and 'headers' (an object) are required.")
    try:
        urlsplit(url)  # what the signature check reads the path and query from
    except ValueError as exc:  # a host in brackets that is no IPv6 address, an unclosed bracket
        raise SerializationException("'url' is not a valid URL.") from exc
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise SerializationException("'headers' must map names to strings.")
    encoded = raw.get("body", "")
    try:
        body = base64.b64decode(encoded, validate=True) if encoded else b""
    except (binascii.Error, TypeError) as exc:
        raise SerializationException("'body' must be base64.") from exc
    service, action = raw.get("service"), raw.get("action")
    resource = raw.get("resource", "*")
    context = raw.get("context", {})
    if service is not None and not isinstance(service, str):
        raise SerializationException("'service' must be a string.")
    if action is not None and not isinstance(action, str):
        raise SerializationException("'action' must be a string.")
    if not isinstance(resource, str) or not isinstance(context, dict):
        raise SerializationException("'resource' must be a string and 'context' an object.")
    for value in context.values():
        if not isinstance(value, str | int | float | bool) and not (
            isinstance(value, list) and all(isinstance(item, str) for item in value)
        ):
            raise SerializationException("'context' values must be strings, numbers, booleans or lists of strings.")
    return method, url, headers, body, service, action, resource, context


async def verify_handler(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        raw_body = await read_body(request, services.settings.max_body_bytes)
        try:
            raw = orjson.loads(raw_body)
        except orjson.JSONDecodeError as exc:
            raise SerializationException("The body is not JSON.") from exc
        method, url, headers, body, service, action, resource, context = _question(raw)
        ctx = await services.credentials.verify_request(method, url, headers, body, expected_service=service)
        answer: dict[str, Any] = {"Principal": ctx.describe()}
        if action is not None:
            answer["Allowed"] = services.credentials.is_allowed(ctx, action, resource, context)
        # An authentication (and authorization) decision, written down as CloudTrail would: who (the assumed
        # role and its key id, never the secret or the session token), for what, and the answer.
        log.info(
            "verify.answered",
            arn=ctx.assumed_role_arn,
            access_key_id=ctx.access_key_id,
            service=service,
            action=action,
            allowed=answer.get("Allowed"),
        )
        return web.json_response(answer, dumps=lambda v: orjson.dumps(v).decode())
    except GatehouseError as error:
        log.info("verify.refused", error=error.type_name)
        return _error(error)
    except Exception:
        log.exception("verify.unhandled")
        return _error(InternalErrorException())
