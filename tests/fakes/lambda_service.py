"""A stand-in for the AWS Lambda service's Invoke API: a real HTTP server whose "functions" are Python callables.

Gatehouse runs user-pool Lambda triggers through botocore's ``lambda`` client (``Invoke`` with an
``endpoint_url`` override and static credentials), so the fake answers what that client sends, on the real REST
path ``POST /2015-03-31/functions/{FunctionName}/invocations`` (botocore's model, ``lambda/2015-03-31``), and
answers as the service does: the function's result as the body, ``X-Amz-Function-Error: Unhandled`` with the
runtime's error document when the function raised, and modelled errors (``x-amzn-ErrorType`` plus a JSON body)
for a bad signature, an unknown function, a payload that is not JSON.

Every request's SigV4 signature is checked by recomputing it with botocore's own signer (``SigV4Auth``) over
the request as received, so a client that signs wrongly (other secret, other region, other service) fails here
as it would against AWS. Every request is recorded, rejected ones too, so a test can also assert that a
function was *not* run.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.server import ThreadedApp

__all__ = ["ACCOUNT_ID", "FakeLambda", "Handler", "Invocation", "RawResponse"]

ACCOUNT_ID: Final = "123456789012"
INVOKE_PATH: Final = "/2015-03-31/functions/{function_name}/invocations"
LATEST: Final = "$LATEST"
# Lambda's limit on a synchronous invocation's request payload (Lambda quotas: 6 MB each way).
MAX_SYNC_PAYLOAD: Final = 6 * 1024 * 1024
# AWS refuses a signed request whose X-Amz-Date is further than this from its own clock.
MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
_AMZ_DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_INVOCATION_TYPES: Final = frozenset({"RequestResponse", "Event", "DryRun"})
# What a function name may be (botocore's NamespacedFunctionName pattern, groups named): a plain name, a partial
# ARN ``123456789012:function:name`` or a full ARN, each optionally ``:qualifier`` (a version or an alias).
_FUNCTION_NAME_RE: Final = re.compile(
    r"(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?"
    r"(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?"
)
_AUTH_RE: Final = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]+)\s*"
)

# A function: (event, context) -> result, as a Python Lambda handler is called. The event is the decoded JSON
# payload (usually a dict); the context is a plain dict (function_name, aws_request_id, invoked_function_arn,
# function_version, client_context).
Handler = Callable[[Any, dict[str, Any]], Any]


@dataclass(frozen=True)
class RawResponse:
    """A handler's result sent as these bytes, unencoded: to make a function answer what is not JSON."""

    body: bytes


@dataclass(frozen=True)
class Invocation:
    """One request to the Invoke path, as received and as answered."""

    function_name: str | None  # the plain name the request resolved to; None when FunctionName did not parse
    requested: str  # FunctionName as sent (URL-decoded): a name, a partial or a full ARN
    qualifier: str | None  # from FunctionName's ``:suffix`` or the Qualifier query parameter
    event: Any  # the decoded payload; None when the request did not get as far as decoding it
    invocation_type: str | None  # X-Amz-Invocation-Type as sent; None when omitted (botocore then sends none)
    log_type: str | None
    client_context: str | None  # the X-Amz-Client-Context header as sent (base64 JSON)
    signature_valid: bool
    delivered: bool  # whether the handler was called with ``event``
    status: int  # the HTTP status answered
    function_error: str | None  # the X-Amz-Function-Error answered, if any
    request_id: str
    at: float  # time.time() on arrival


class _Rejected(Exception):
    """An error response of the Lambda API: status, x-amzn-ErrorType and a JSON body."""

    def __init__(self, status: int, error_type: str, body: dict[str, str]) -> None:
        super().__init__(error_type)
        self.status = status
        self.error_type = error_type
        self.body = body


def _user_error(status: int, error_type: str, message: str, *, key: str = "message") -> _Rejected:
    # Lambda's modelled errors carry {"Type": "User", "message"|"Message": ...}; the member's case is the model's
    # (ResourceNotFoundException has "Message", InvalidRequestContentException "message"). botocore reads either.
    return _Rejected(status, error_type, {"Type": "User", key: message})


def _auth_error(error_type: str, message: str) -> _Rejected:
    # Authentication failures come from AWS's front door, not from Lambda: 403 and only {"message": ...}.
    return _Rejected(403, error_type, {"message": message})


class FakeLambda(ThreadedApp):
    """The Lambda Invoke API on 127.0.0.1, running registered Python handlers. Use as a context manager, or
    :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        *,
        access_key_id: str = "AKIDLAMBDATEST",
        secret_access_key: str = "lambda-test-secret",
        region: str = "us-east-1",
    ) -> None:
        super().__init__()
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.region = region
        self.invocations: list[Invocation] = []
        self._functions: dict[str, Handler] = {}
        # Handlers run in worker threads and tests read the records from theirs: one lock for both.
        self._lock = threading.Lock()
        # Event (asynchronous) invocations run after their 202; held here so they are not garbage-collected.
        self._background: set[asyncio.Task[None]] = set()

    # -- the test's side ---------------------------------------------------------------------------------------

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{name}"

    def server_config(self) -> str:
        """The config file's ``server.lambda`` (two-space indented, under ``server:``) that sends Gatehouse's
        trigger invocations here, signed with the credentials this service knows."""
        return (
            "  lambda:\n"
            f"    endpoint_url: {self.url}\n"
            f"    access_key_id: {self.access_key_id}\n"
            f"    secret_access_key: {self.secret_access_key}\n"
        )

    def add(self, name: str, handler: Handler) -> str:
        """Register (or replace) the function ``name``; returns its ARN, what a pool's LambdaConfig names."""
        if not _FUNCTION_NAME_RE.fullmatch(name) or ":" in name:
            raise ValueError(f"not a plain Lambda function name: {name!r}")
        with self._lock:
            self._functions[name] = handler
        return self.arn(name)

    def remove(self, name: str) -> None:
        with self._lock:
            self._functions.pop(name, None)

    def events(self, name: str) -> list[Any]:
        """The events the function ``name`` was called with, oldest first."""
        with self._lock:
            return [i.event for i in self.invocations if i.function_name == name and i.delivered]

    def clear(self) -> None:
        """Forget the recorded invocations (the registered functions stay)."""
        with self._lock:
            self.invocations.clear()

    # -- the service -------------------------------------------------------------------------------------------

    def build(self) -> web.Application:
        # aiohttp's default 1 MiB body limit would answer a large payload itself; Lambda's own limit is checked
        # below, so the server takes a little more than it.
        app = web.Application(client_max_size=MAX_SYNC_PAYLOAD + 1024 * 1024)
        app.router.add_post(INVOKE_PATH, self._invoke)
        return app

    async def _invoke(self, request: web.Request) -> web.StreamResponse:
        arrived = time.time()
        request_id = str(uuid.uuid4())
        body = await request.read()
        # The path segment as sent: botocore percent-encodes the whole FunctionName (':' as %3A). aiohttp's
        # match_info decoding has changed between versions, so the raw path is decoded here.
        raw_segment = request.raw_path.split("?", 1)[0].split("/")[3]
        requested = unquote(raw_segment)
        record: dict[str, Any] = {
            "function_name": None,
            "requested": requested,
            "qualifier": None,
            "event": None,
            "invocation_type": request.headers.get("X-Amz-Invocation-Type"),
            "log_type": request.headers.get("X-Amz-Log-Type"),
            "client_context": request.headers.get("X-Amz-Client-Context"),
            "signature_valid": False,
            "delivered": False,
            "function_error": None,
            "request_id": request_id,
            "at": arrived,
        }
        parsed = _FUNCTION_NAME_RE.fullmatch(requested)
        if parsed:
            record["function_name"] = parsed["name"]
        try:
            self._verify_signature(request, body)
            record["signature_valid"] = True
            response = await self._dispatch(request, body, parsed, record)
        except _Rejected as rejected:
            response = web.json_response(
                rejected.body, status=rejected.status, headers={"x-amzn-ErrorType": rejected.error_type}
            )
        response.headers["x-amzn-RequestId"] = request_id
        with self._lock:
            self.invocations.append(Invocation(status=response.status, **record))
        return response

    async def _dispatch(
        self, request: web.Request, body: bytes, parsed: re.Match[str] | None, record: dict[str, Any]
    ) -> web.StreamResponse:
        requested: str = record["requested"]
        if parsed is None or len(requested) > 256:
            raise _user_error(
                400,
                "ValidationException",
                f"1 validation error detected: Value '{requested}' at 'functionName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?...",
            )
        qualifier = parsed["qualifier"]
        query_qualifier = request.query.get("Qualifier")
        if qualifier and query_qualifier and qualifier != query_qualifier:
            raise _user_error(
                400,
                "InvalidParameterValueException",
                "The derived qualifier from the function name does not match the specified qualifier.",
            )
        qualifier = qualifier or query_qualifier
        record["qualifier"] = qualifier
        name = parsed["name"]
        invoked_arn = self.arn(name) + (f":{qualifier}" if qualifier else "")

        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type not in _INVOCATION_TYPES:
            raise _user_error(
                400,
                "ValidationException",
                f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed to satisfy "
                "constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]",
            )
        if len(body) > MAX_SYNC_PAYLOAD:
            raise _user_error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation",
            )

        with self._lock:
            handler = self._functions.get(name)
        # An ARN naming another account or region names another function, one that does not exist here.
        elsewhere = (parsed["account"] or ACCOUNT_ID) != ACCOUNT_ID or (parsed["region"] or self.region) != self.region
        if handler is None or elsewhere:
            shown = invoked_arn
            if elsewhere:
                region, account = parsed["region"] or self.region, parsed["account"] or ACCOUNT_ID
                shown = f"arn:aws:lambda:{region}:{account}:function:{name}" + (f":{qualifier}" if qualifier else "")
            raise _user_error(404, "ResourceNotFoundException", f"Function not found: {shown}", key="Message")

        try:
            # An empty payload is an empty event, as the AWS CLI's invoke without --payload shows.
            event = json.loads(body) if body.strip() else {}
        except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8
            raise _user_error(
                400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
            ) from None
        record["event"] = event
        client_context = _decode_client_context(record["client_context"])

        if invocation_type == "DryRun":  # permissions checked, nothing run
            return web.Response(status=204)

        context: dict[str, Any] = {
            "function_name": name,
            "aws_request_id": record["request_id"],
            "invoked_function_arn": invoked_arn,
            "function_version": LATEST,
            "client_context": client_context,
        }
        record["delivered"] = True
        if invocation_type == "Event":  # queued: 202 now, the function runs after
            task = asyncio.create_task(self._run_detached(handler, event, context))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return web.Response(status=202)

        # A worker thread, so that a slow handler (time.sleep) holds up neither this loop nor other invocations.
        payload, function_error = await asyncio.to_thread(_run, handler, event, context)
        record["function_error"] = function_error
        headers = {"X-Amz-Executed-Version": LATEST}
        if function_error:
            headers["X-Amz-Function-Error"] = function_error
        if record["log_type"] == "Tail":
            headers["X-Amz-Log-Result"] = _tail_log(record["request_id"])
        return web.Response(body=payload, status=200, headers=headers, content_type="application/json")

    @staticmethod
    async def _run_detached(handler: Handler, event: Any, context: dict[str, Any]) -> None:
        await asyncio.to_thread(_run, handler, event, context)

    def _verify_signature(self, request: web.Request, body: bytes) -> None:
        """Recompute the request's SigV4 signature with botocore's signer; raise :class:`_Rejected` if it differs."""
        authorization = request.headers.get("Authorization")
        if authorization is None:
            raise _auth_error("MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _AUTH_RE.fullmatch(authorization)
        if match is None:
            raise _auth_error(
                "IncompleteSignatureException",
                f"Authorization header requires 'Credential', 'SignedHeaders' "
                f"and 'Signature' parameters. Authorization={authorization}",
            )
        parts = match["credential"].split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise _auth_error("IncompleteSignatureException", f"Credential is malformed: {match['credential']}")
        key_id, day, region, service, _ = parts
        if key_id != self.access_key_id or "X-Amz-Security-Token" in request.headers:
            raise _auth_error("UnrecognizedClientException", "The security token included in the request is invalid.")
        amz_date = request.headers.get("X-Amz-Date", "")
        try:
            signed_at = datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _auth_error(
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            ) from None
        now = datetime.now(UTC)
        if abs(now - signed_at) > MAX_CLOCK_SKEW:
            raise _auth_error(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than "
                f"{(now - MAX_CLOCK_SKEW).strftime(_AMZ_DATE_FORMAT)} "
                f"({now.strftime(_AMZ_DATE_FORMAT)} - 5 min.)",
            )
        if day != amz_date[:8]:
            raise _auth_error(
                "InvalidSignatureException",
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
            )
        if region != self.region:
            raise _auth_error(
                "InvalidSignatureException", f"Credential should be scoped to a valid region, not '{region}'."
            )
        if service != "lambda":
            raise _auth_error("InvalidSignatureException", "Credential should be scoped to correct service: 'lambda'.")
        content_sha256 = request.headers.get("X-Amz-Content-SHA256")
        if content_sha256 not in (None, "UNSIGNED-PAYLOAD", hashlib.sha256(body).hexdigest()):
            raise _auth_error(
                "InvalidSignatureException",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )

        # The request rebuilt from what was received: the raw path and query (botocore encodes the path again
        # when it signs, as it did on the client), only the headers the client signed, the body as bytes. The URL
        # is http://, as the client's was, so the signer hashes the body rather than taking UNSIGNED-PAYLOAD.
        signed_names = match["signed"].split(";")
        rebuilt = AWSRequest(method=request.method, url=f"http://{request.host}{request.raw_path}", data=body)
        for name in signed_names:
            for value in request.headers.getall(name, ()):
                rebuilt.headers[name] = value  # HTTPHeaders: assignment appends, so repeated headers stay
        rebuilt.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(self.access_key_id, self.secret_access_key), "lambda", self.region)
        # The signer computes SignedHeaders itself from the headers it is given; it must come out as the client's
        # (a header it would not sign, or one missing here, means the signature cannot match).
        same_headers = signer.signed_headers(signer.headers_to_sign(rebuilt)) == match["signed"]
        expected = signer.signature(signer.string_to_sign(rebuilt, signer.canonical_request(rebuilt)), rebuilt)
        if not same_headers or not hmac.compare_digest(expected, match["signature"]):
            raise _auth_error(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS "
                "Secret Access Key and signing method. Consult the service documentation for details.",
            )


def _run(handler: Handler, event: Any, context: dict[str, Any]) -> tuple[bytes, str | None]:
    """Call ``handler`` as the Python runtime does: its result as JSON, or the runtime's error document."""
    try:
        result = handler(event, context)
    except Exception as exc:
        return _error_document(str(exc), type(exc).__name__), "Unhandled"
    if isinstance(result, RawResponse):
        return result.body, None
    try:
        return json.dumps(result).encode(), None
    except (TypeError, ValueError) as exc:
        # What the Python runtime answers for a result json cannot encode.
        return _error_document(f"Unable to marshal response: {exc}", "Runtime.MarshalError"), "Unhandled"


def _error_document(message: str, error_type: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode()


def _decode_client_context(header: str | None) -> Any:
    if header is None:
        return None
    try:
        return json.loads(base64.b64decode(header, validate=True))
    except (binascii.Error, ValueError):
        raise _user_error(
            400, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object."
        ) from None


def _tail_log(request_id: str) -> str:
    # LogType=Tail: the last 4 KB of the execution log, base64; the fake's log is the runtime's three lines.
    log = (
        f"START RequestId: {request_id} Version: {LATEST}\n"
        f"END RequestId: {request_id}\n"
        f"REPORT RequestId: {request_id}\tDuration: 1.00 ms\tBilled Duration: 1 ms\n"
    )
    return base64.b64encode(log.encode()).decode()
