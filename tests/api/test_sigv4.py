"""SigV4 verification against requests signed by botocore's own signer (and AWS's published examples).

Requests are signed at the real current time (botocore's ``SigV4Auth.add_auth`` always stamps
``get_current_datetime()``, overwriting any ``request.context['timestamp']``); tests that need a precise
clock read the X-Amz-Date the signer chose and pass ``now`` relative to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials

from gateway.api.sigv4 import SignedRequest, SigV4Identity, has_signature, verify_sigv4
from gateway.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

ACCESS_KEY = "AKIDGATEHOUSETEST01"
SECRET = "gH7+tQ/2xVwZ9sLkP4mNbR8cYdE1fA0uJ3oI6eWq"
REGION = "us-east-1"
SERVICE = "cognito-idp"
ENDPOINT = "http://localhost:8080"
TOKEN = "FwoGZXIvYXdzEXAMPLE//////////wEaDExampleSessionToken+/="


def lookup(access_key_id: str) -> str | None:
    return {ACCESS_KEY: SECRET}.get(access_key_id)


def sign(
    request: AWSRequest,
    *,
    token: str | None = None,
    secret: str = SECRET,
    service: str = SERVICE,
) -> SignedRequest:
    SigV4Auth(Credentials(ACCESS_KEY, secret, token), service, REGION).add_auth(request)
    return to_signed(request.prepare())


def presign(request: AWSRequest, *, token: str | None = None, expires: int = 900) -> SignedRequest:
    SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET, token), "sts", REGION, expires=expires).add_auth(request)
    return to_signed(request.prepare())


def to_signed(prepared: AWSPreparedRequest) -> SignedRequest:
    """What the server sees: the URL split into raw path and query, the headers the client sent (plus
    the Host header that the HTTP client, not botocore, adds), the body as bytes."""
    url = urlsplit(prepared.url)
    headers = {
        name: value.decode("utf-8") if isinstance(value, bytes) else str(value)
        for name, value in prepared.headers.items()
    }
    if not any(name.lower() == "host" for name in headers):
        headers["Host"] = url.netloc
    body = prepared.body
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode("utf-8")
    return SignedRequest(
        method=prepared.method,
        path=url.path or "/",
        query_string=url.query,
        headers=headers,
        body=body,
    )


def replace(request: SignedRequest, **changes: Any) -> SignedRequest:
    return dataclasses.replace(request, **changes)


def with_header(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    headers = {k: v for k, v in request.headers.items() if k.lower() != name.lower()}
    if value is not None:
        headers[name] = value
    return replace(request, headers=headers)


def header(request: SignedRequest, name: str) -> str:
    return next(v for k, v in request.headers.items() if k.lower() == name.lower())


def signed_at(request: SignedRequest) -> datetime:
    return datetime.strptime(header(request, "X-Amz-Date"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def cognito_post(target: str = "AdminCreateUser", body: dict[str, Any] | None = None) -> AWSRequest:
    payload = body or {
        "UserPoolId": "us-east-1_Ab12Cd34E",
        "Username": "jürgen",
        "UserAttributes": [{"Name": "email", "Value": "j+test@example.com"}],
        "MessageAction": "SUPPRESS",
    }
    return AWSRequest(
        method="POST",
        url=f"{ENDPOINT}/",
        headers={
            "X-Amz-Target": f"AWSCognitoIdentityProviderService.{target}",
            "Content-Type": "application/x-amz-json-1.1",
            "User-Agent": "Boto3/1.34 test",
        },
        data=json.dumps(payload).encode("utf-8"),
    )


def fmt(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


# --- requests that verify --------------------------------------------------------------------------------


def test_request_from_a_real_boto3_cognito_idp_client_verifies() -> None:
    class Captured(Exception):
        pass

    captured: list[AWSPreparedRequest] = []

    def capture(request: AWSPreparedRequest, **_: Any) -> None:
        captured.append(request)
        raise Captured

    client = boto3.client(
        "cognito-idp",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN,
    )
    client.meta.events.register("before-send.cognito-idp.*", capture)
    with pytest.raises(Captured):
        client.admin_get_user(UserPoolId="us-east-1_Ab12Cd34E", Username="jürgen o'neil")

    request = to_signed(captured[0])
    assert header(request, "X-Amz-Target") == "AWSCognitoIdentityProviderService.AdminGetUser"
    identity = verify_sigv4(request, lookup, expected_service="cognito-idp")
    assert identity == SigV4Identity(ACCESS_KEY, REGION, SERVICE, TOKEN)


def test_json_post_verifies() -> None:
    request = sign(cognito_post())
    assert has_signature(request)
    assert verify_sigv4(request, lookup, expected_service=SERVICE) == SigV4Identity(ACCESS_KEY, REGION, SERVICE, None)


def test_json_post_with_session_token_returns_the_token() -> None:
    request = sign(cognito_post(), token=TOKEN)
    identity = verify_sigv4(request, lookup)
    assert identity.security_token == TOKEN
    assert identity.access_key_id == ACCESS_KEY


def test_headers_are_looked_up_case_insensitively() -> None:
    request = sign(cognito_post())
    upper = replace(request, headers={k.upper(): v for k, v in request.headers.items()})
    assert verify_sigv4(upper, lookup).access_key_id == ACCESS_KEY


def test_unsigned_headers_may_change() -> None:
    request = sign(cognito_post())
    changed = with_header(request, "User-Agent", "something-else/2.0")
    changed = with_header(changed, "X-Forwarded-For", "203.0.113.7")
    assert verify_sigv4(changed, lookup).access_key_id == ACCESS_KEY


def test_repeated_header_with_runs_of_spaces_verifies() -> None:
    aws_request = cognito_post()
    # HTTPHeaders is an email.message.Message: assigning again appends a second value, and botocore signs
    # both ("first value with spaces,second"). Its prepare() then keeps only the last one, so the wire
    # form is rebuilt here from the signed headers: two header lines, which the server's HTTP parser
    # strips and the caller joins with ','.
    aws_request.headers["X-Amz-Meta-Note"] = "  first   value  with  spaces "
    aws_request.headers["X-Amz-Meta-Note"] = "second"
    request = sign(aws_request)
    assert "x-amz-meta-note" in header(request, "Authorization")
    joined = ",".join(v.strip() for v in aws_request.headers.get_all("X-Amz-Meta-Note"))
    assert joined == "first   value  with  spaces,second"
    request = with_header(request, "X-Amz-Meta-Note", joined)
    assert verify_sigv4(request, lookup).access_key_id == ACCESS_KEY
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(with_header(request, "X-Amz-Meta-Note", "second"), lookup)


def test_get_with_spaces_unicode_and_repeated_keys_in_params_verifies() -> None:
    # Params go on the wire form-encoded (space -> '+') but are signed RFC 3986-encoded (space -> '%20').
    aws_request = AWSRequest(
        method="GET",
        url=f"{ENDPOINT}/us-east-1_Ab12Cd34E/lookup",
        params=[
            ("name", "two words"),
            ("tag", "ünïcødé ✓"),
            ("tag", "1+1=2"),
            ("tag", "a&b/c~d*e"),
            ("empty", ""),
            ("Zeta", "upper-case key sorts first"),
        ],
    )
    request = sign(aws_request)
    assert "+" in request.query_string
    assert verify_sigv4(request, lookup).access_key_id == ACCESS_KEY


def test_get_with_query_already_in_the_url_verifies() -> None:
    query = "q=a%20b&q=%E2%9C%93&lang=de&q=%2B&flag="
    request = sign(AWSRequest(method="GET", url=f"{ENDPOINT}/search?{query}"))
    assert request.query_string == query
    assert verify_sigv4(request, lookup).access_key_id == ACCESS_KEY


def test_path_with_special_characters_verifies() -> None:
    # As a REST serializer puts it on the wire: segments percent-encoded once, sub-delims left alone,
    # plus dot segments and a doubled slash that only the canonical form removes.
    path = "/pools/us-east-1_Ab12/users/j%C3%BCrgen%20o%27neil/!$&'()*+,;=:@~/./a//b/../c%2Fd/%25/"
    request = sign(AWSRequest(method="DELETE", url=f"{ENDPOINT}{path}"))
    assert request.path == path
    assert verify_sigv4(request, lookup).access_key_id == ACCESS_KEY


def test_date_header_instead_of_x_amz_date_verifies() -> None:
    aws_request = cognito_post()
    aws_request.headers["Date"] = "Thu, 01 Jan 2026 00:00:00 GMT"  # botocore re-stamps it at signing
    request = sign(aws_request)
    assert not any(k.lower() == "x-amz-date" for k in request.headers)
    assert verify_sigv4(request, lookup).access_key_id == ACCESS_KEY


def test_aws_published_example_get_vanilla() -> None:
    # aws-sig-v4-test-suite "get-vanilla": an answer computed by AWS, not by botocore or by us.
    request = SignedRequest(
        method="GET",
        path="/",
        query_string="",
        headers={
            "Host": "example.amazonaws.com",
            "X-Amz-Date": "20150830T123600Z",
            "Authorization": "AWS4-HMAC-SHA256 "
            "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        body=b"",
    )
    identity = verify_sigv4(
        request,
        {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}.get,
        now=datetime(2015, 8, 30, 12, 36, tzinfo=UTC),
    )
    assert identity == SigV4Identity("AKIDEXAMPLE", "us-east-1", "service", None)


def test_presigned_url_verifies() -> None:
    aws_request = AWSRequest(
        method="GET",
        url=f"{ENDPOINT}/",
        params={"Action": "GetCallerIdentity", "Version": "2011-06-15"},
    )
    request = presign(aws_request, token=TOKEN)
    assert "Authorization" not in request.headers
    assert "X-Amz-Signature=" in request.query_string
    assert has_signature(request)
    assert verify_sigv4(request, lookup, expected_service="sts") == SigV4Identity(ACCESS_KEY, REGION, "sts", TOKEN)


def test_presigned_url_is_valid_until_it_expires() -> None:
    request = presign(AWSRequest(method="GET", url=f"{ENDPOINT}/?Action=GetCallerIdentity"), expires=900)
    issued = _presigned_at(request)
    assert verify_sigv4(request, lookup, now=issued + timedelta(seconds=900)).service == "sts"
    with pytest.raises(InvalidSignatureException) as excinfo:
        verify_sigv4(request, lookup, now=issued + timedelta(seconds=901))
    assert excinfo.value.message.startswith("Signature expired")


def test_presigned_url_with_changed_query_fails() -> None:
    request = presign(AWSRequest(method="GET", url=f"{ENDPOINT}/?Action=GetCallerIdentity"))
    tampered = replace(request, query_string=request.query_string.replace("GetCallerIdentity", "AssumeRole"))
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(tampered, lookup)


def test_presigned_url_without_signature_is_incomplete() -> None:
    request = presign(AWSRequest(method="GET", url=f"{ENDPOINT}/?Action=GetCallerIdentity"))
    stripped = "&".join(p for p in request.query_string.split("&") if not p.startswith("X-Amz-Signature="))
    unsigned = replace(request, query_string=stripped)
    assert not has_signature(unsigned)
    with pytest.raises(IncompleteSignatureException, match="X-Amz-Signature"):
        verify_sigv4(unsigned, lookup)


def _presigned_at(request: SignedRequest) -> datetime:
    date = next(p.split("=", 1)[1] for p in request.query_string.split("&") if p.startswith("X-Amz-Date="))
    return datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


# --- tampering ------------------------------------------------------------------------------------------


def test_changed_body_fails() -> None:
    request = sign(cognito_post())
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(replace(request, body=request.body.replace(b"SUPPRESS", b"RESEND")), lookup)


def test_changed_signed_header_fails() -> None:
    request = sign(cognito_post("AdminGetUser"))
    tampered = with_header(request, "X-Amz-Target", "AWSCognitoIdentityProviderService.AdminDeleteUser")
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(tampered, lookup)


@pytest.mark.parametrize("name", ["X-Amz-Target", "X-Amz-Security-Token", "X-Amz-Meta-Note"])
def test_unsigned_amz_header_is_incomplete(name: str) -> None:
    # Signed without the header, then sent with it: whatever it says was never signed.
    aws_request = cognito_post("AdminGetUser")
    del aws_request.headers["X-Amz-Target"]
    request = with_header(sign(aws_request), name, "AWSCognitoIdentityProviderService.AdminDeleteUser")
    with pytest.raises(IncompleteSignatureException) as excinfo:
        verify_sigv4(request, lookup)
    assert f"SignedHeaders must include {name.lower()}" in excinfo.value.message


def test_unsigned_amz_header_on_presigned_url_is_incomplete() -> None:
    request = presign(AWSRequest(method="GET", url=f"{ENDPOINT}/?Action=GetCallerIdentity&Version=2011-06-15"))
    verify_sigv4(request, lookup, now=_presigned_at(request))
    with pytest.raises(IncompleteSignatureException, match="SignedHeaders must include x-amz-target"):
        verify_sigv4(with_header(request, "X-Amz-Target", "x.y"), lookup, now=_presigned_at(request))


def test_cloudfront_request_id_need_not_be_signed() -> None:
    # CloudFront adds X-Amz-Cf-Id to what it forwards, after the client signed the request.
    request = sign(cognito_post())
    verify_sigv4(with_header(request, "X-Amz-Cf-Id", "Xn5Yq4abc=="), lookup)


def test_changed_host_fails() -> None:
    request = sign(cognito_post())
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(with_header(request, "Host", "evil.example:8080"), lookup)


def test_changed_path_fails() -> None:
    request = sign(AWSRequest(method="GET", url=f"{ENDPOINT}/us-east-1_Ab12/users/alice"))
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(replace(request, path="/us-east-1_Ab12/users/mallory"), lookup)


def test_changed_method_fails() -> None:
    request = sign(AWSRequest(method="GET", url=f"{ENDPOINT}/us-east-1_Ab12/users/alice"))
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(replace(request, method="DELETE"), lookup)


def test_changed_query_fails() -> None:
    request = sign(AWSRequest(method="GET", url=f"{ENDPOINT}/", params=[("user", "alice"), ("limit", "1")]))
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(replace(request, query_string=request.query_string.replace("alice", "admin")), lookup)
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(replace(request, query_string=request.query_string + "&extra=1"), lookup)


def test_wrong_secret_fails() -> None:
    request = sign(cognito_post(), secret="not-the-secret-the-server-knows")
    with pytest.raises(InvalidSignatureException):
        verify_sigv4(request, lookup)


def test_unknown_access_key_is_unrecognized() -> None:
    request = sign(cognito_post())
    with pytest.raises(UnrecognizedClientException) as excinfo:
        verify_sigv4(request, lambda _: None)
    assert excinfo.value.message == "The security token included in the request is invalid."


def test_no_signature_at_all_is_missing_token() -> None:
    request = with_header(sign(cognito_post()), "Authorization", None)
    assert not has_signature(request)
    with pytest.raises(MissingAuthenticationTokenException) as excinfo:
        verify_sigv4(request, lookup)
    assert excinfo.value.message == "Missing Authentication Token"


def test_header_and_presigned_query_together_are_refused() -> None:
    request = sign(cognito_post())
    both = replace(request, query_string="X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00")
    with pytest.raises(IncompleteSignatureException, match="Only one auth mechanism"):
        verify_sigv4(both, lookup)


_AUTH = (
    "AWS4-HMAC-SHA256 Credential={akid}/{date}/us-east-1/cognito-idp/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={sig}"
)


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        ("Bearer eyJhbGciOiJSUzI1NiJ9.secret-token", "requires the 'AWS4-HMAC-SHA256' algorithm"),
        ("AWS4-HMAC-SHA1 Credential=x, SignedHeaders=host, Signature=00", "requires the 'AWS4-HMAC-SHA256'"),
        ("", "requires the 'AWS4-HMAC-SHA256' algorithm"),
        ("AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature=00", "requires 'Credential' parameter"),
        (_AUTH.split(", Signature")[0], "requires 'Signature' parameter"),
        (
            "AWS4-HMAC-SHA256 Credential={akid}/{date}/us-east-1/cognito-idp/aws4_request, Signature={sig}",
            "requires 'SignedHeaders' parameter",
        ),
        (_AUTH.replace("Signature=", "Signature"), "missing equal-sign"),
        (_AUTH.replace("/aws4_request", ""), "exactly 5 slash-delimited elements"),
        (_AUTH.replace("/us-east-1/", "//"), "exactly 5 slash-delimited elements"),
        (_AUTH.replace("aws4_request", "aws5_request"), "valid terminator: 'aws4_request', not 'aws5"),
        (_AUTH.replace("content-type;host;", "content-type;"), "'Host' or ':authority' must be a"),
    ],
)
def test_garbled_authorization_header_is_incomplete(authorization: str, expected: str) -> None:
    request = sign(cognito_post())
    real = header(request, "Authorization")
    sig = real.rsplit("Signature=", 1)[1]
    value = authorization.format(akid=ACCESS_KEY, date=header(request, "X-Amz-Date")[:8], sig=sig)
    with pytest.raises(IncompleteSignatureException) as excinfo:
        verify_sigv4(with_header(request, "Authorization", value), lookup)
    assert expected in excinfo.value.message
    assert SECRET not in excinfo.value.message
    assert "secret-token" not in excinfo.value.message


def test_missing_date_header_is_incomplete() -> None:
    request = with_header(sign(cognito_post()), "X-Amz-Date", None)
    with pytest.raises(IncompleteSignatureException) as excinfo:
        verify_sigv4(request, lookup)
    assert "requires existence of either a 'X-Amz-Date' or a 'Date' header" in excinfo.value.message
    assert excinfo.value.message.endswith(f"Authorization={header(request, 'Authorization')}")


def test_malformed_x_amz_date_is_incomplete() -> None:
    request = with_header(sign(cognito_post()), "X-Amz-Date", "2026-01-01T00:00:00Z")
    with pytest.raises(IncompleteSignatureException, match="ISO-8601 'basic format'"):
        verify_sigv4(request, lookup)


@pytest.mark.parametrize(
    "date",
    [
        "Fri, 31 Dec 9999 23:59:59 -2359",  # in UTC, past the year 9999
        "Mon, 01 Jan 0999 00:00:00 GMT",  # a year of three digits
    ],
)
def test_http_date_outside_four_digit_years_is_incomplete(date: str) -> None:
    request = with_header(with_header(sign(cognito_post()), "X-Amz-Date", None), "Date", date)
    with pytest.raises(IncompleteSignatureException, match="Date must be an HTTP date"):
        verify_sigv4(request, lookup)


# --- time, scope, payload hash ----------------------------------------------------------------------------


def test_signature_six_minutes_old_has_expired() -> None:
    request = sign(cognito_post())
    at = signed_at(request)
    now = at + timedelta(minutes=6)
    with pytest.raises(InvalidSignatureException) as excinfo:
        verify_sigv4(request, lookup, now=now)
    assert excinfo.value.message == (
        f"Signature expired: {fmt(at)} is now earlier than {fmt(now - timedelta(minutes=5))} ({fmt(now)} - 5 min.)"
    )


def test_signature_six_minutes_in_the_future_is_not_yet_current() -> None:
    request = sign(cognito_post())
    at = signed_at(request)
    now = at - timedelta(minutes=6)
    with pytest.raises(InvalidSignatureException) as excinfo:
        verify_sigv4(request, lookup, now=now)
    assert excinfo.value.message == (
        f"Signature not yet current: {fmt(at)} is still later than {fmt(now + timedelta(minutes=5))} "
        f"({fmt(now)} + 5 min.)"
    )


def test_skew_within_the_window_is_accepted() -> None:
    request = sign(cognito_post())
    at = signed_at(request)
    for offset in (timedelta(minutes=-4), timedelta(minutes=4), timedelta(minutes=5), timedelta(minutes=-5)):
        assert verify_sigv4(request, lookup, now=at + offset).access_key_id == ACCESS_KEY


def test_exact_expiry_message_for_a_fixed_time() -> None:
    # The brief's example, on a request whose X-Amz-Date is rewritten: the time check comes before the
    # signature is recomputed, so the (now invalid) signature does not matter here.
    request = sign(cognito_post())
    auth = header(request, "Authorization")
    auth = auth.replace(f"/{header(request, 'X-Amz-Date')[:8]}/", "/20260101/")
    request = with_header(with_header(request, "X-Amz-Date", "20260101T000000Z"), "Authorization", auth)
    with pytest.raises(InvalidSignatureException) as excinfo:
        verify_sigv4(request, lookup, now=datetime(2026, 1, 1, 0, 10, tzinfo=UTC))
    assert excinfo.value.message == (
        "Signature expired: 20260101T000000Z is now earlier than 20260101T000500Z (20260101T001000Z - 5 min.)"
    )


def test_wrong_service_scope_is_refused() -> None:
    request = sign(cognito_post(), service="sts")
    assert verify_sigv4(request, lookup).service == "sts"
    with pytest.raises(InvalidSignatureException) as excinfo:
        verify_sigv4(request, lookup, expected_service="cognito-idp")
    assert excinfo.value.message == "Credential should be scoped to correct service: 'cognito-idp'."


def test_scope_date_must_match_x_amz_date() -> None:
    request = sign(cognito_post())
    at = signed_at(request)
    moved = with_header(request, "X-Amz-Date", fmt(at + timedelta(days=1)))
    with pytest.raises(InvalidSignatureException, match="Date in Credential scope does not match"):
        verify_sigv4(moved, lookup, now=at)


def test_content_sha256_header_must_match_body() -> None:
    aws_request = cognito_post()
    aws_request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(aws_request.data).hexdigest()
    request = sign(aws_request)
    assert verify_sigv4(request, lookup).access_key_id == ACCESS_KEY
    with pytest.raises(InvalidSignatureException, match="x-amz-content-sha256"):
        verify_sigv4(replace(request, body=b'{"UserPoolId": "other"}'), lookup)


def test_content_sha256_header_that_lies_about_the_body_fails() -> None:
    aws_request = cognito_post()
    aws_request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(b"something else").hexdigest()
    request = sign(aws_request)  # signed over the header's (false) hash
    with pytest.raises(InvalidSignatureException, match="x-amz-content-sha256"):
        verify_sigv4(request, lookup)


def test_unsigned_payload_is_refused_unless_allowed() -> None:
    aws_request = cognito_post()
    aws_request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
    request = sign(aws_request)
    with pytest.raises(InvalidSignatureException, match="UNSIGNED-PAYLOAD"):
        verify_sigv4(replace(request, body=b"anything"), lookup)
    # Where a caller opts in, the body is outside the signature.
    allowed = verify_sigv4(replace(request, body=b"anything"), lookup, allow_unsigned_payload=True)
    assert allowed.access_key_id == ACCESS_KEY
