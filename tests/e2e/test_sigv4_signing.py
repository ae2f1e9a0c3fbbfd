"""SigV4 on the AWS wires, against a real Gatehouse, with requests signed by botocore's own signer.

* Every ``x-amz-*`` header of a request is signed (IAM User Guide, "Create a signed AWS API request"): a
  signature that leaves X-Amz-Target out would let a signed DescribeUserPool (presigned, or signed in the
  Authorization header) be replayed as DeleteUserPool; the same on cognito-identity and the query wire.
* An HTTP ``Date`` naming an instant outside years 1000-9999 (in UTC) is a malformed date, not a 500, on the
  JSON wire, the query wire and ``/gatehouse/verify``.
* A session token is one exact text: changing the unused low bits of its last base64 character fails
  authentication, as any other change does.
* The admin keys sent with an ``X-Amz-Security-Token`` are refused on the JSON wires, as on the query wire.
* The query string is percent-decoded once: botocore's signature over ``?v=%2541`` verifies.
"""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.aws_support import ACCOUNT, aws_client
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

IDP = "AWSCognitoIdentityProviderService"
IDENTITY = "AWSCognitoIdentityService"
JSON_TYPE = "application/x-amz-json-1.1"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
ROOT_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
)
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
FAR_DATES = ["Fri, 31 Dec 9999 23:59:59 -2359", "Mon, 01 Jan 0999 00:00:00 GMT"]


class _PresignKeepingBody(SigV4QueryAuth):  # type: ignore[misc]  # botocore is untyped
    """botocore's presigner, but the JSON body stays the body (signed as its SHA-256), as a client presigning a
    POST sends it; botocore itself would move the body's members into the query string."""

    def _modify_request_before_signing(self, request: AWSRequest) -> None:
        body, request.data = request.data, ""
        super()._modify_request_before_signing(request)
        request.data = body


def _sign(
    server: GatehouseServer,
    body: str,
    headers: dict[str, str],
    *,
    service: str = "cognito-idp",
    query: str = "",
    presign: bool = False,
    credentials: Credentials | None = None,
) -> AWSRequest:
    """A POST to ``/`` signed by botocore (in the Authorization header, or presigned in the query)."""
    request = AWSRequest(method="POST", url=f"{server.url}/{'?' + query if query else ''}", data=body, headers=headers)
    creds = credentials or Credentials(ADMIN_KEY_ID, ADMIN_SECRET)
    signer = _PresignKeepingBody(creds, service, REGION, expires=300) if presign else SigV4Auth(creds, service, REGION)
    signer.add_auth(request)
    return request


def _send(request: AWSRequest, extra: dict[str, str] | None = None) -> tuple[int, str]:
    """Send the signed request as it is, plus ``extra`` headers the signature does not cover."""
    parts = urlsplit(request.url)
    headers = {name: str(value) for name, value in request.headers.items()}
    headers.update(extra or {})
    body = request.data.encode() if isinstance(request.data, str) else request.data
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("POST", f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}", body, headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _raw(server: GatehouseServer, headers: dict[str, str], body: bytes, path: str = "/") -> tuple[int, str]:
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _pool_exists(idp: Any, pool_id: str) -> bool:
    try:
        idp.describe_user_pool(UserPoolId=pool_id)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "ResourceNotFoundException"
        return False
    return True


@pytest.fixture(scope="module")
def session_credentials(gatehouse: GatehouseServer) -> dict[str, Any]:
    iam = gatehouse.client("iam")
    iam.create_role(RoleName="sigv4-role", AssumeRolePolicyDocument=ROOT_TRUST)
    iam.put_role_policy(
        RoleName="sigv4-role",
        PolicyName="read",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]}
        ),
    )
    sts = gatehouse.client("sts")
    # A token whose length is a multiple of 4 has no unused bits; its claims compress to varying lengths.
    for attempt in range(40):
        creds: dict[str, Any] = sts.assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/sigv4-role", RoleSessionName=f"s{attempt}"
        )["Credentials"]
        if len(creds["SessionToken"]) % 4:
            return creds
    raise AssertionError("every session token's length was a multiple of 4")


# --- every x-amz-* header is signed ---------------------------------------------------------------------------


def test_presigned_describe_user_pool_cannot_be_replayed_as_delete(gatehouse: GatehouseServer, idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="presign-victim")["UserPool"]["Id"]
    presigned = _sign(gatehouse, json.dumps({"UserPoolId": pool}), {}, presign=True)
    assert "X-Amz-SignedHeaders=host&" in presigned.url
    target = {"Content-Type": JSON_TYPE}

    status, body = _send(presigned, {**target, "X-Amz-Target": f"{IDP}.DeleteUserPool"})
    assert (status, json.loads(body)["__type"]) == (403, "IncompleteSignatureException"), body
    assert "x-amz-target" in json.loads(body)["message"]
    assert _pool_exists(idp, pool)
    # Not even the operation it was meant for: the target it names is not covered by the signature.
    status, body = _send(presigned, {**target, "X-Amz-Target": f"{IDP}.DescribeUserPool"})
    assert (status, json.loads(body)["__type"]) == (403, "IncompleteSignatureException"), body

    # Presigned with the target among the signed headers, as botocore presigns a request that has it: accepted.
    signed_target = _sign(
        gatehouse, json.dumps({"UserPoolId": pool}), {**target, "X-Amz-Target": f"{IDP}.DescribeUserPool"}, presign=True
    )
    assert "x-amz-target" in signed_target.url
    status, body = _send(signed_target)
    assert status == 200, body
    assert json.loads(body)["UserPool"]["Id"] == pool


def test_header_signed_request_without_target_cannot_name_one(gatehouse: GatehouseServer, idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="header-victim")["UserPool"]["Id"]
    request = _sign(gatehouse, json.dumps({"UserPoolId": pool}), {"Content-Type": JSON_TYPE})
    assert "x-amz-target" not in request.headers["Authorization"]
    status, body = _send(request, {"X-Amz-Target": f"{IDP}.DeleteUserPool"})
    assert (status, json.loads(body)["__type"]) == (403, "IncompleteSignatureException"), body
    assert _pool_exists(idp, pool)


def test_presigned_describe_identity_pool_cannot_be_replayed_as_delete(gatehouse: GatehouseServer) -> None:
    identity = gatehouse.client("cognito-identity")
    pool = identity.create_identity_pool(IdentityPoolName="victim", AllowUnauthenticatedIdentities=True)
    pool_id = pool["IdentityPoolId"]
    presigned = _sign(gatehouse, json.dumps({"IdentityPoolId": pool_id}), {}, service="cognito-identity", presign=True)
    status, body = _send(presigned, {"Content-Type": JSON_TYPE, "X-Amz-Target": f"{IDENTITY}.DeleteIdentityPool"})
    assert (status, json.loads(body)["__type"]) == (403, "IncompleteSignatureException"), body
    assert identity.describe_identity_pool(IdentityPoolId=pool_id)["IdentityPoolId"] == pool_id


def test_unsigned_amz_header_is_refused_on_the_query_wire(gatehouse: GatehouseServer) -> None:
    request = _sign(gatehouse, "Action=ListRoles&Version=2010-05-08", {"Content-Type": FORM_TYPE}, service="iam")
    status, body = _send(request)
    assert status == 200, body
    status, body = _send(request, {"X-Amz-Meta-Note": "added in transit"})
    assert status == 403 and "<Code>IncompleteSignature</Code>" in body, body
    assert "x-amz-meta-note" in body


# --- the HTTP Date header -------------------------------------------------------------------------------------


@pytest.mark.parametrize("date", FAR_DATES)
def test_date_outside_four_digit_years_is_a_malformed_date(gatehouse: GatehouseServer, date: str) -> None:
    host = urlsplit(gatehouse.url).netloc
    auth = (
        f"AWS4-HMAC-SHA256 Credential={ADMIN_KEY_ID}/20261129/{REGION}/{{service}}/aws4_request, "
        f"SignedHeaders=date;host, Signature={'0' * 64}"
    )
    status, body = _raw(
        gatehouse,
        {
            "Host": host,
            "X-Amz-Target": f"{IDP}.ListUserPools",
            "Content-Type": JSON_TYPE,
            "Date": date,
            "Authorization": auth.format(service="cognito-idp"),
        },
        b'{"MaxResults": 5}',
    )
    assert (status, json.loads(body)["__type"]) == (403, "IncompleteSignatureException"), body
    assert "Date must be an HTTP date" in json.loads(body)["message"]

    status, body = _raw(
        gatehouse,
        {"Host": host, "Content-Type": FORM_TYPE, "Date": date, "Authorization": auth.format(service="iam")},
        b"Action=ListRoles&Version=2010-05-08",
    )
    assert status == 403 and "<Code>IncompleteSignature</Code>" in body, body

    question = {
        "method": "GET",
        "url": "https://files.example/a.jpg",
        "headers": {
            "Host": "files.example",
            "Date": date,
            "X-Amz-Security-Token": "AAAA",
            "Authorization": auth.format(service="s3").replace(ADMIN_KEY_ID, "ASIAAAAAAAAAAAAAAAAA"),
        },
    }
    verify_headers = {"Host": host, "Content-Type": "application/json"}
    status, body = _raw(gatehouse, verify_headers, json.dumps(question).encode(), "/gatehouse/verify")
    assert (status, json.loads(body)["__type"]) == (403, "IncompleteSignatureException"), body


# --- session tokens -------------------------------------------------------------------------------------------


def test_session_token_with_other_unused_bits_is_refused(
    gatehouse: GatehouseServer, session_credentials: dict[str, Any]
) -> None:
    creds = session_credentials
    token = creds["SessionToken"]
    sts = aws_client("sts", gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], token)
    assert ":assumed-role/sigv4-role/" in sts.get_caller_identity()["Arn"]
    unused = 4 if len(token) % 4 == 2 else 2  # the low bits of the last character no byte holds
    last = BASE64URL.index(token[-1])
    for low in range(1, 2**unused):
        altered = token[:-1] + BASE64URL[last ^ low]
        client = aws_client("sts", gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], altered)
        with pytest.raises(ClientError) as refused:
            client.get_caller_identity()
        assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


# --- admin keys with a session token --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "call"),
    [
        ("cognito-idp", lambda client: client.list_user_pools(MaxResults=5)),
        ("cognito-identity", lambda client: client.list_identity_pools(MaxResults=5)),
    ],
)
def test_admin_keys_with_a_session_token_are_refused_on_json_wires(
    gatehouse: GatehouseServer, service: str, call: Any
) -> None:
    call(gatehouse.client(service))  # the same keys without a token
    client = aws_client(service, gatehouse.url, ADMIN_KEY_ID, ADMIN_SECRET, "not-a-session-token")
    with pytest.raises(ClientError) as refused:
        call(client)
    error = refused.value.response["Error"]
    assert error["Code"] == "UnrecognizedClientException"
    assert error["Message"] == "The security token included in the request is invalid."
    # As the query wire answers the same request.
    with pytest.raises(ClientError) as refused:
        aws_client("iam", gatehouse.url, ADMIN_KEY_ID, ADMIN_SECRET, "not-a-session-token").list_roles()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


# --- the query string is decoded once -------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["v=%2541", "v=100%25", "v=a%252Fb"])
def test_signature_over_percent_escaped_query_verifies(gatehouse: GatehouseServer, query: str) -> None:
    request = _sign(
        gatehouse,
        json.dumps({"MaxResults": 5}),
        {"Content-Type": JSON_TYPE, "X-Amz-Target": f"{IDP}.ListUserPools"},
        query=query,
    )
    status, body = _send(request)
    assert status == 200 and "UserPools" in json.loads(body), body

    form = _sign(
        gatehouse, "Action=ListRoles&Version=2010-05-08", {"Content-Type": FORM_TYPE}, service="iam", query=query
    )
    status, body = _send(form)
    assert status == 200 and "<ListRolesResult>" in body, body


def test_a_session_token_named_with_escapes_in_the_query_is_still_a_session_token(gatehouse: GatehouseServer) -> None:
    """The query is taken as sent: ``X-Amz-Security%2DToken`` names the session token as plainly as the bare
    name, so the admin keys signing with it are refused as with any session token."""
    for name in ("X-Amz-Security-Token", "X-Amz-Security%2DToken"):
        request = _sign(
            gatehouse,
            "Action=ListRoles&Version=2010-05-08",
            {"Content-Type": FORM_TYPE},
            service="iam",
            query=f"{name}=not-a-session-token",
        )
        status, body = _send(request)
        assert status == 403 and "<Code>InvalidClientTokenId</Code>" in body, (name, body)
