"""Hostile and malformed input on the wire, against a real Gatehouse over HTTP.

Raw requests go through ``http.client`` so that nothing on the client side fixes them up; admin requests
are signed with botocore's own SigV4 signer (with the signing time pinned where a test needs a stale or
future signature). Every refusal is checked for its status, ``__type``, content type, for not leaking
Python internals, and -- where it matters -- for leaving the store as it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import json
import socket
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client.parser import text_string_to_metric_families

from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

CONTENT_TYPE = "application/x-amz-json-1.1"
PREFIX = "AWSCognitoIdentityProviderService."
PASSWORD = "Wire-password-1"
# Strings that would betray a Python stack trace or module layout in an error body.
LEAKS = ("Traceback", 'File "', "site-packages", "gateway/", ".py", "aiohttp", "KeyError", "TypeError")


# --- raw HTTP ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def json(self) -> dict[str, Any]:
        decoded = json.loads(self.body)
        assert isinstance(decoded, dict)
        return decoded


def post(url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", "/", body=body, headers=dict(headers))
        response = conn.getresponse()
        return Reply(response.status, response.headers.get("Content-Type", ""), response.read())
    finally:
        conn.close()


def unsigned_headers(operation: str | None) -> dict[str, str]:
    headers = {"Content-Type": CONTENT_TYPE}
    if operation is not None:
        headers["X-Amz-Target"] = PREFIX + operation
    return headers


def call(gatehouse: GatehouseServer, operation: str, params: Any) -> Reply:
    """An unsigned call with a JSON body (any JSON, not only objects)."""
    return post(gatehouse.url, json.dumps(params).encode(), unsigned_headers(operation))


class _SigV4At(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's SigV4 signer with the signing instant fixed instead of taken from the clock."""

    def __init__(self, credentials: Credentials, service: str, region: str, when: datetime) -> None:
        super().__init__(credentials, service, region)
        self._when = when

    def _modify_request_before_signing(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._when.strftime(SIGV4_TIMESTAMP)
        super()._modify_request_before_signing(request)


def signed_headers(
    gatehouse: GatehouseServer,
    operation: str,
    body: bytes,
    *,
    key_id: str = ADMIN_KEY_ID,
    secret: str = ADMIN_SECRET,
    service: str = "cognito-idp",
    when: datetime | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    request = AWSRequest(
        method="POST", url=gatehouse.url + "/", data=body, headers={**unsigned_headers(operation), **(extra or {})}
    )
    signer = _SigV4At(Credentials(key_id, secret), service, REGION, when or datetime.now(UTC))
    signer.add_auth(request)
    return dict(request.headers.items())


def signed_call(gatehouse: GatehouseServer, operation: str, params: Any, **signing: Any) -> Reply:
    body = json.dumps(params).encode()
    return post(gatehouse.url, body, signed_headers(gatehouse, operation, body, **signing))


def assert_error(reply: Reply, status: int, type_name: str) -> str:
    """The reply is an AWS JSON error of this status and ``__type``, with no Python internals; its message."""
    assert reply.status == status, (reply.status, reply.body[:500])
    assert reply.content_type.split(";")[0].strip() == CONTENT_TYPE
    text = reply.body.decode()
    for leak in LEAKS:
        assert leak not in text, text
    body = reply.json()
    assert body["__type"] == type_name, body
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def client_error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    error = exc.value.response["Error"]
    return (
        str(error["Code"]),
        str(error.get("Message", "")),
        int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"]),
    )


def usernames(idp: Any, pool_id: str) -> set[str]:
    names: set[str] = set()
    for page in idp.get_paginator("list_users").paginate(UserPoolId=pool_id):
        names.update(u["Username"] for u in page["Users"])
    return names


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="wire")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="wire-app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="ENABLED",  # an unknown user is NotAuthorizedException
    )
    return str(client["UserPoolClient"]["ClientId"])


@pytest.fixture(scope="module")
def tokens(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> dict[str, Any]:
    """A confirmed user's AuthenticationResult."""
    idp.admin_create_user(UserPoolId=pool_id, Username="token-user", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="token-user", Password=PASSWORD, Permanent=True)
    result = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "token-user", "PASSWORD": PASSWORD},
    )
    return dict(result["AuthenticationResult"])


# --- malformed bodies ----------------------------------------------------------------------------------------


def test_invalid_json_is_a_serialization_exception(gatehouse: GatehouseServer, client_id: str) -> None:
    for body in (b"{not json", b'{"ClientId": ', b"\xff\xfe\x00garbage", b'{"a": 1}}'):
        reply = post(gatehouse.url, body, unsigned_headers("InitiateAuth"))
        assert_error(reply, 400, "SerializationException")


def test_non_object_bodies_are_serialization_exceptions(gatehouse: GatehouseServer, client_id: str) -> None:
    for params in ([{"ClientId": client_id}], [], "a string", 42, None, True):
        assert_error(call(gatehouse, "InitiateAuth", params), 400, "SerializationException")


def test_wrongly_typed_members_are_serialization_exceptions(gatehouse: GatehouseServer, client_id: str) -> None:
    cases: list[dict[str, Any]] = [
        {"ClientId": client_id, "Username": "typed", "Password": PASSWORD, "UserAttributes": "email=a@b.c"},
        {"ClientId": client_id, "Username": 12345, "Password": PASSWORD},
        {"ClientId": ["not", "a", "string"], "Username": "typed", "Password": PASSWORD},
        {"ClientId": client_id, "Username": "typed", "Password": PASSWORD, "UserAttributes": [{"Name": 7}]},
        {"ClientId": client_id, "Username": "typed", "Password": PASSWORD, "ClientMetadata": ["k", "v"]},
    ]
    for params in cases:
        message = assert_error(call(gatehouse, "SignUp", params), 400, "SerializationException")
        assert "12345" not in message
    reply = call(
        gatehouse, "InitiateAuth", {"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": "x"}
    )
    assert "AuthParameters" in assert_error(reply, 400, "SerializationException")


def test_missing_required_member_is_reported_in_aws_words(gatehouse: GatehouseServer) -> None:
    message = assert_error(
        call(gatehouse, "InitiateAuth", {"AuthFlow": "USER_PASSWORD_AUTH"}), 400, "InvalidParameterException"
    )
    assert message == (
        "1 validation error detected: Value null at 'clientId' failed to satisfy constraint: Member must not be null"
    )
    message = assert_error(call(gatehouse, "InitiateAuth", {}), 400, "InvalidParameterException")
    assert message.startswith("2 validation errors detected: ")
    assert "Value null at 'authFlow' failed to satisfy constraint: Member must not be null" in message
    assert "Value null at 'clientId' failed to satisfy constraint: Member must not be null" in message


def test_pattern_length_and_enum_violations(gatehouse: GatehouseServer, client_id: str) -> None:
    # ClientId is a sensitive shape: its value is never echoed.
    message = assert_error(
        call(gatehouse, "InitiateAuth", {"ClientId": "x" * 129, "AuthFlow": "USER_PASSWORD_AUTH"}),
        400,
        "InvalidParameterException",
    )
    assert message == (
        "1 validation error detected: Value at 'clientId' failed to satisfy constraint: "
        "Member must have length less than or equal to 128"
    )
    message = assert_error(
        call(gatehouse, "InitiateAuth", {"ClientId": client_id, "AuthFlow": "NO_SUCH_FLOW"}),
        400,
        "InvalidParameterException",
    )
    assert message.startswith("1 validation error detected: Value 'NO_SUCH_FLOW' at 'authFlow' failed to satisfy")
    assert "Member must satisfy enum value set" in message


def test_admin_validation_errors_echo_non_sensitive_values(gatehouse: GatehouseServer) -> None:
    reply = signed_call(gatehouse, "ListUsers", {"UserPoolId": "bad", "Limit": 100})
    message = assert_error(reply, 400, "InvalidParameterException")
    assert message.startswith("2 validation errors detected: ")
    assert (
        "Value 'bad' at 'userPoolId' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [\\w-]+_[0-9a-zA-Z]+"
    ) in message
    assert (
        "Value '100' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 60"
        in message
    )


def test_password_is_never_echoed(gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str) -> None:
    marker = "LeakMarker"
    cases: list[tuple[str, dict[str, Any], str, bool]] = [
        # (operation, params, expected __type, signed)
        (
            "SignUp",
            {"ClientId": client_id, "Username": "pw1", "Password": f"{marker} with spaces"},
            "InvalidParameterException",
            False,
        ),
        (
            "SignUp",
            {"ClientId": client_id, "Username": "pw2", "Password": marker * 40},
            "InvalidParameterException",
            False,
        ),
        (
            "SignUp",
            {"ClientId": client_id, "Username": "pw3", "Password": marker},
            "InvalidPasswordException",
            False,
        ),
        ("SignUp", {"ClientId": client_id, "Username": "pw4", "Password": 987654321}, "SerializationException", False),
        (
            "InitiateAuth",
            {
                "ClientId": client_id,
                "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": "pw5", "PASSWORD": f"{marker}-Wrong-1"},
            },
            "NotAuthorizedException",
            False,
        ),
        (
            "AdminSetUserPassword",
            {"UserPoolId": pool_id, "Username": "nobody", "Password": f"{marker} x"},
            "InvalidParameterException",
            True,
        ),
        (
            "AdminCreateUser",
            {"UserPoolId": pool_id, "Username": "pw6", "TemporaryPassword": f"{marker}\t1"},
            "InvalidParameterException",
            True,
        ),
    ]
    for operation, params, type_name, signed in cases:
        reply = signed_call(gatehouse, operation, params) if signed else call(gatehouse, operation, params)
        message = assert_error(reply, 400, type_name)
        assert marker not in reply.body.decode(), (operation, message)
        assert "987654321" not in message
        if type_name == "InvalidParameterException" and message.startswith("1 validation error"):
            assert "Value at '" in message  # AWS's form for a sensitive value: no value at all
    assert usernames(idp, pool_id).isdisjoint({"pw1", "pw2", "pw3", "pw4", "pw6"})


def test_unknown_and_missing_operation(gatehouse: GatehouseServer) -> None:
    for headers in (
        unsigned_headers("NoSuchOperation"),
        unsigned_headers(None),
        {"Content-Type": CONTENT_TYPE, "X-Amz-Target": "SomeOtherService.SignUp"},
        {"Content-Type": CONTENT_TYPE, "X-Amz-Target": PREFIX.rstrip(".")},
        {"Content-Type": CONTENT_TYPE, "X-Amz-Target": ""},
    ):
        reply = post(gatehouse.url, b"{}", headers)
        assert_error(reply, 400, "UnknownOperationException")
    # An unknown operation is refused before its signature is looked at or its body parsed.
    reply = post(gatehouse.url, b"{not json", unsigned_headers("NoSuchOperation"))
    assert_error(reply, 400, "UnknownOperationException")


def _post_oversized(url: str, size: int, *, chunked: bool) -> Reply:
    """POST ``size`` bytes of valid-looking JSON; tolerate the server closing before the body is sent."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    filler = b'{"ClientId":"' + b"a" * (size - 16) + b'"}'
    head = (
        f"POST / HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"X-Amz-Target: {PREFIX}InitiateAuth\r\nConnection: close\r\n"
    )
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {len(filler)}\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head.encode())
        step = 64 * 1024
        try:
            for start in range(0, len(filler), step):
                piece = filler[start : start + step]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed early: read what it said
        sock.settimeout(30)
        raw = b""
        try:
            while chunk := sock.recv(65536):
                raw += chunk
        except ConnectionResetError:
            pass
    response = http.client.HTTPResponse(_FakeSocket(raw))  # type: ignore[arg-type]
    response.begin()
    return Reply(response.status, response.headers.get("Content-Type", ""), response.read())


class _FakeSocket:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def test_body_over_one_mebibyte_is_refused_with_413(gatehouse: GatehouseServer) -> None:
    limit = 1024 * 1024
    for chunked in (False, True):
        reply = _post_oversized(gatehouse.url, limit + 1024, chunked=chunked)
        assert_error(reply, 413, "SerializationException")
    # Just under the limit is read whole, however it arrives, and judged on its content (a truncated read
    # would make it invalid JSON).
    for chunked in (False, True):
        reply = _post_oversized(gatehouse.url, limit - 1024, chunked=chunked)
        message = assert_error(reply, 400, "InvalidParameterException")
        assert message.startswith("2 validation errors detected: ")
    with urllib.request.urlopen(f"{gatehouse.url}/health", timeout=5) as response:
        assert response.status == 200


# --- SigV4 on admin operations --------------------------------------------------------------------------------


def test_correctly_signed_raw_request_is_accepted(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> None:
    reply = signed_call(
        gatehouse, "AdminCreateUser", {"UserPoolId": pool_id, "Username": "raw-signed", "MessageAction": "SUPPRESS"}
    )
    assert reply.status == 200, reply.body
    assert reply.json()["User"]["Username"] == "raw-signed"
    assert "raw-signed" in usernames(idp, pool_id)


def test_unsigned_admin_call_is_refused(gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str) -> None:
    before = usernames(idp, pool_id)
    with pytest.raises(ClientError) as exc:
        public_idp.admin_create_user(UserPoolId=pool_id, Username="unsigned-admin", MessageAction="SUPPRESS")
    assert client_error(exc)[0] == "MissingAuthenticationTokenException"
    assert client_error(exc)[2] == 403
    reply = call(gatehouse, "AdminCreateUser", {"UserPoolId": pool_id, "Username": "unsigned-raw"})
    assert assert_error(reply, 403, "MissingAuthenticationTokenException") == "Missing Authentication Token"
    assert usernames(idp, pool_id) == before


def test_unknown_access_key_and_wrong_secret(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> None:
    before = usernames(idp, pool_id)
    stranger = gatehouse.client(key_id="AKIDNOBODYKNOWS", secret=ADMIN_SECRET)
    with pytest.raises(ClientError) as exc:
        stranger.admin_create_user(UserPoolId=pool_id, Username="stranger", MessageAction="SUPPRESS")
    assert client_error(exc)[:1] == ("UnrecognizedClientException",)
    assert client_error(exc)[2] == 403
    forger = gatehouse.client(secret="not-the-secret")
    with pytest.raises(ClientError) as exc:
        forger.admin_create_user(UserPoolId=pool_id, Username="forger", MessageAction="SUPPRESS")
    code, message, status = client_error(exc)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "signature we calculated does not match" in message
    assert ADMIN_SECRET not in message
    assert usernames(idp, pool_id) == before


def test_body_changed_after_signing(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> None:
    before = usernames(idp, pool_id)
    signed_body = json.dumps({"UserPoolId": pool_id, "Username": "meant", "MessageAction": "SUPPRESS"}).encode()
    sent_body = json.dumps({"UserPoolId": pool_id, "Username": "tampered", "MessageAction": "SUPPRESS"}).encode()
    headers = signed_headers(gatehouse, "AdminCreateUser", signed_body)
    assert_error(post(gatehouse.url, sent_body, headers), 403, "InvalidSignatureException")
    # Signing the body's hash in x-amz-content-sha256 does not let the body change either.
    headers = signed_headers(
        gatehouse,
        "AdminCreateUser",
        signed_body,
        extra={"X-Amz-Content-SHA256": hashlib.sha256(signed_body).hexdigest()},
    )
    assert_error(post(gatehouse.url, sent_body, headers), 403, "InvalidSignatureException")
    # ... nor does declaring the tampered body's hash in a header the signature never covered.
    headers = signed_headers(gatehouse, "AdminCreateUser", signed_body)
    headers["X-Amz-Content-SHA256"] = hashlib.sha256(sent_body).hexdigest()
    assert_error(post(gatehouse.url, sent_body, headers), 403, "InvalidSignatureException")
    # A changed operation name (a signed header) is caught the same way.
    headers = signed_headers(gatehouse, "AdminGetUser", signed_body)
    headers["X-Amz-Target"] = PREFIX + "AdminCreateUser"
    assert_error(post(gatehouse.url, signed_body, headers), 403, "InvalidSignatureException")
    assert usernames(idp, pool_id) == before


def test_stale_and_future_signatures(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> None:
    before = usernames(idp, pool_id)
    params = {"UserPoolId": pool_id, "Username": "late", "MessageAction": "SUPPRESS"}
    now = datetime.now(UTC)
    stale = signed_call(gatehouse, "AdminCreateUser", params, when=now - timedelta(minutes=6))
    assert assert_error(stale, 403, "InvalidSignatureException").startswith("Signature expired: ")
    future = signed_call(gatehouse, "AdminCreateUser", params, when=now + timedelta(minutes=6))
    assert assert_error(future, 403, "InvalidSignatureException").startswith("Signature not yet current: ")
    # Within the 5 minutes of allowed clock skew a signature is good.
    skewed = signed_call(
        gatehouse, "AdminGetUser", {"UserPoolId": pool_id, "Username": "late"}, when=now - timedelta(minutes=4)
    )
    assert_error(skewed, 400, "UserNotFoundException")
    assert usernames(idp, pool_id) == before


def test_signature_for_another_service_or_scope(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> None:
    before = usernames(idp, pool_id)
    params = {"UserPoolId": pool_id, "Username": "scoped", "MessageAction": "SUPPRESS"}
    message = assert_error(
        signed_call(gatehouse, "AdminCreateUser", params, service="s3"), 403, "InvalidSignatureException"
    )
    assert message == "Credential should be scoped to correct service: 'cognito-idp'."
    # A garbled Authorization header is incomplete, not a crash.
    body = json.dumps(params).encode()
    headers = signed_headers(gatehouse, "AdminCreateUser", body)
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=broken"
    assert_error(post(gatehouse.url, body, headers), 403, "IncompleteSignatureException")
    headers["Authorization"] = "Bearer some-token"
    assert_error(post(gatehouse.url, body, headers), 403, "IncompleteSignatureException")
    assert usernames(idp, pool_id) == before


def test_signed_admin_call_with_bad_body_changes_nothing(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> None:
    before = usernames(idp, pool_id)
    body = b'{"UserPoolId": "' + pool_id.encode() + b'", "Username": "half'
    assert_error(
        post(gatehouse.url, body, signed_headers(gatehouse, "AdminCreateUser", body)), 400, "SerializationException"
    )
    reply = signed_call(gatehouse, "AdminCreateUser", {"UserPoolId": pool_id})
    assert assert_error(reply, 400, "InvalidParameterException") == (
        "1 validation error detected: Value null at 'username' failed to satisfy constraint: Member must not be null"
    )
    reply = signed_call(
        gatehouse,
        "AdminCreateUser",
        {
            "UserPoolId": pool_id,
            "Username": "bad-attr",
            "UserAttributes": [{"Name": "no_such_attribute", "Value": "x"}],
        },
    )
    assert_error(reply, 400, "InvalidParameterException")
    assert usernames(idp, pool_id) == before


def test_public_operations_work_unsigned(public_idp: Any, idp: Any, pool_id: str, client_id: str) -> None:
    signed_up = public_idp.sign_up(ClientId=client_id, Username="public-user", Password=PASSWORD)
    assert signed_up["UserConfirmed"] is False
    idp.admin_confirm_sign_up(UserPoolId=pool_id, Username="public-user")
    result = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "public-user", "PASSWORD": PASSWORD},
    )
    assert result["AuthenticationResult"]["TokenType"] == "Bearer"
    assert public_idp.get_user(AccessToken=result["AuthenticationResult"]["AccessToken"])["Username"] == "public-user"


# --- token abuse ---------------------------------------------------------------------------------------------


def _forgeries(tokens: dict[str, Any], public_pem: bytes) -> dict[str, str]:
    real = tokens["AccessToken"]
    header_segment, claims_segment, _ = real.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_segment + "=="))
    claims = jwt.decode(real, options={"verify_signature": False})
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_pem = attacker.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    none_header = b64url(json.dumps({"alg": "none", "kid": header["kid"]}).encode())
    hs_header = b64url(json.dumps({"alg": "HS256", "kid": header["kid"]}).encode())
    hs_input = f"{hs_header}.{claims_segment}"
    # The HMAC key an alg-confusion attack would use: the public key, as published.
    hs_signature = b64url(hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest())
    promoted = {**claims, "sub": "00000000-0000-0000-0000-000000000000", "username": "someone-else"}
    promoted_segment = b64url(json.dumps(promoted).encode())
    return {
        "garbage": "garbage-token_value=",
        "three garbage parts": "aaa.bbb.ccc",
        "20 KB": "a" * 10_000 + "." + "b" * 10_000 + ".c",
        "alg none": f"{none_header}.{claims_segment}.",
        "alg none with the real signature": f"{none_header}.{claims_segment}.{real.split('.')[2]}",
        "attacker's RSA key, real kid": jwt.encode(
            claims, attacker_pem, algorithm="RS256", headers={"kid": header["kid"]}
        ),
        "HS256 confusion": f"{hs_input}.{hs_signature}",
        "claims swapped, signature kept": f"{header_segment}.{promoted_segment}.{real.split('.')[2]}",
        "ID token as access token": tokens["IdToken"],
        "refresh token as access token": tokens["RefreshToken"],
    }


def test_forged_and_garbage_access_tokens_are_not_authorized(
    gatehouse: GatehouseServer, public_idp: Any, pool_id: str, tokens: dict[str, Any]
) -> None:
    jwks = jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")
    public_key = jwks.get_signing_key_from_jwt(tokens["AccessToken"]).key
    public_pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for name, forged in _forgeries(tokens, public_pem).items():
        with pytest.raises(ClientError) as exc:
            public_idp.get_user(AccessToken=forged)
        code, message, status = client_error(exc)
        assert (code, status) == ("NotAuthorizedException", 400), (name, code, message)
        reply = call(gatehouse, "GetUser", {"AccessToken": forged})
        assert_error(reply, 400, "NotAuthorizedException")
    # The real token still works: nothing above disturbed it.
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "token-user"


def test_tokens_outside_the_token_alphabet_fail_validation_not_the_server(gatehouse: GatehouseServer) -> None:
    # The empty string and characters outside [A-Za-z0-9-_=.] fail the model's pattern (as on AWS); the
    # token is sensitive, so it is not echoed.
    for token in ("", "not a token!", "<script>alert(1)</script>", "\u00e9\u00e9\u00e9"):
        message = assert_error(call(gatehouse, "GetUser", {"AccessToken": token}), 400, "InvalidParameterException")
        assert message == (
            "1 validation error detected: Value at 'accessToken' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [A-Za-z0-9-_=.]+"
        )
    assert_error(call(gatehouse, "GetUser", {"AccessToken": 12}), 400, "SerializationException")
    assert_error(call(gatehouse, "GetUser", {}), 400, "InvalidParameterException")


# --- concurrency ---------------------------------------------------------------------------------------------


def test_concurrent_sign_ups_for_one_username(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str
) -> None:
    clients = [gatehouse.client(signed=False) for _ in range(20)]
    barrier = threading.Barrier(len(clients))
    outcomes: list[str] = []
    lock = threading.Lock()

    def sign_up(client: Any) -> None:
        barrier.wait()
        try:
            client.sign_up(ClientId=client_id, Username="racer", Password=PASSWORD)
            outcome = "success"
        except ClientError as error:
            outcome = str(error.response["Error"]["Code"])
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=sign_up, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["UsernameExistsException"] * 19 + ["success"]
    listed = idp.list_users(UserPoolId=pool_id, Filter='username = "racer"')["Users"]
    assert [u["Username"] for u in listed] == ["racer"]


def test_concurrent_first_sign_ins_share_one_key_per_token_use(gatehouse: GatehouseServer, idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="first-key")["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="k", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="first", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="first", Password=PASSWORD, Permanent=True)
    clients = [gatehouse.client(signed=False) for _ in range(10)]
    barrier = threading.Barrier(len(clients))
    id_tokens: list[str] = []
    access_tokens: list[str] = []

    def sign_in(client_api: Any) -> None:
        barrier.wait()
        result = client_api.initiate_auth(
            ClientId=client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "first", "PASSWORD": PASSWORD}
        )
        id_tokens.append(result["AuthenticationResult"]["IdToken"])
        access_tokens.append(result["AuthenticationResult"]["AccessToken"])

    threads = [threading.Thread(target=sign_in, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(id_tokens) == 10
    with urllib.request.urlopen(f"{gatehouse.url}/{pool}/.well-known/jwks.json", timeout=10) as response:
        keys = json.load(response)["keys"]
    # As in Cognito, ID and access tokens are signed with different keys: one of each, however many raced.
    assert len(keys) == 2
    id_kids = {jwt.get_unverified_header(t)["kid"] for t in id_tokens}
    access_kids = {jwt.get_unverified_header(t)["kid"] for t in access_tokens}
    assert len(id_kids) == 1 and len(access_kids) == 1 and id_kids != access_kids
    assert id_kids | access_kids == {k["kid"] for k in keys}


# --- metrics and health ----------------------------------------------------------------------------------------


Samples = list[tuple[str, dict[str, str], float]]


def scrape(gatehouse: GatehouseServer) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"{gatehouse.url}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/plain"
        text = response.read().decode()
    samples = [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]
    return text, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in labels.items()))


def test_metrics_count_calls_sign_ins_and_tokens(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="metrics")["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="m", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="m-user", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="m-user", Password=PASSWORD, Permanent=True)

    _, before = scrape(gatehouse)
    for name in ("m1", "m2", "m3"):
        public_idp.sign_up(ClientId=client, Username=name, Password=PASSWORD)
    with pytest.raises(ClientError):
        public_idp.sign_up(ClientId=client, Username="m1", Password=PASSWORD)
    for _ in range(2):
        public_idp.initiate_auth(
            ClientId=client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "m-user", "PASSWORD": PASSWORD}
        )
    with pytest.raises(ClientError):
        public_idp.initiate_auth(
            ClientId=client,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "m-user", "PASSWORD": "Nope-nope-1"},
        )
    for bogus in ("NotAnOperation42", "Bogus$Op", "../../etc"):
        assert_error(call(gatehouse, bogus, {}), 400, "UnknownOperationException")
    text, after = scrape(gatehouse)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    calls = "gatehouse_api_calls_total"
    assert delta(calls, wire="cognito-idp", operation="SignUp", outcome="success") == 3
    assert delta(calls, operation="SignUp", outcome="UsernameExistsException") == 1
    assert delta(calls, operation="InitiateAuth", outcome="success") == 2
    assert delta(calls, operation="InitiateAuth", outcome="NotAuthorizedException") == 1
    assert delta(calls, operation="unknown", outcome="UnknownOperationException") == 3
    flow = {"pool": pool, "client": client, "flow": "USER_PASSWORD_AUTH"}
    assert delta("gatehouse_sign_in_attempts_total", **flow) == 3
    assert delta("gatehouse_sign_in_successes_total", **flow) == 2
    assert delta("gatehouse_sign_in_failures_total", **flow, reason="NotAuthorizedException") == 1
    assert delta("gatehouse_sign_in_failures_total", **flow) == 1
    for token_use in ("id", "access", "refresh"):
        assert delta("gatehouse_tokens_issued_total", pool=pool, token_use=token_use) == 2
    assert delta("gatehouse_sign_ups_total", pool=pool) == 3
    latency = "gatehouse_request_duration_seconds"
    assert delta(f"{latency}_count", wire="cognito-idp", operation="SignUp") == 4
    assert delta(f"{latency}_bucket", operation="SignUp", le="+Inf") == 4
    assert delta(f"{latency}_sum", operation="SignUp") > 0
    assert delta(f"{latency}_bucket", operation="InitiateAuth", le="+Inf") == 3
    # Label values come only from known operation names: the caller's choice of target never becomes one.
    operations = {lab.get("operation") for n, lab, _ in after if n == calls}
    assert "NotAnOperation42" not in text and "Bogus$Op" not in text and "etc" not in operations
    assert operations <= {"unknown"} | set(idp.meta.service_model.operation_names)


def test_health(gatehouse: GatehouseServer) -> None:
    with urllib.request.urlopen(f"{gatehouse.url}/health", timeout=5) as response:
        assert response.status == 200
        assert json.load(response) == {"status": "ok"}


def test_unknown_members_are_dropped_not_stored(gatehouse: GatehouseServer) -> None:
    """Members no input shape defines are ignored, as AWS's deserializers drop them: a pool's or client's nested
    settings keep none of them, and what is described back stays inside the output shapes."""
    created = signed_call(
        gatehouse,
        "CreateUserPool",
        {
            "PoolName": "unknown-members",
            "Policies": {"PasswordPolicy": {"MinimumLength": 10, "Zzz": "x"}, "Extra": {"a": 1}},
            "DeviceConfiguration": {"ChallengeRequiredOnNewDevice": True, "Pad": "y" * 10_000},
            "LambdaConfig": {"Injected": "hello"},
            "NotAMember": True,
        },
    )
    assert created.status == 200, created.body[:300]
    pool_id = created.json()["UserPool"]["Id"]
    client = signed_call(
        gatehouse,
        "CreateUserPoolClient",
        {"UserPoolId": pool_id, "ClientName": "app", "TokenValidityUnits": {"AccessToken": "hours", "Bogus": "days"}},
    )
    assert client.status == 200, client.body[:300]
    # The raw answers (boto3 would drop members its output shapes do not have).
    pool = signed_call(gatehouse, "DescribeUserPool", {"UserPoolId": pool_id}).json()["UserPool"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 10
    assert "Zzz" not in pool["Policies"]["PasswordPolicy"] and "Extra" not in pool["Policies"]
    assert pool["DeviceConfiguration"] == {"ChallengeRequiredOnNewDevice": True}
    assert "Injected" not in pool.get("LambdaConfig", {}) and "NotAMember" not in pool
    client_id = client.json()["UserPoolClient"]["ClientId"]
    described = signed_call(gatehouse, "DescribeUserPoolClient", {"UserPoolId": pool_id, "ClientId": client_id})
    units = described.json()["UserPoolClient"]["TokenValidityUnits"]
    assert "Bogus" not in units and units["AccessToken"] == "hours"
