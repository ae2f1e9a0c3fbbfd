"""Hostile and standards cases of STS, IAM trust policies, identity pools and the verify endpoint, against a real
Gatehouse.

* S3's SigV4 flavour through ``POST /gatehouse/verify``: boto3's presigned S3 URLs (payload ``UNSIGNED-PAYLOAD``,
  path not normalised and encoded once) and S3 requests signed in the header with an unsigned payload, while
  every other service still needs a signed body.
* ``X-Amz-Expires`` outside 1..604800, a session token or an access key id taken from other credentials, Host
  left out of SignedHeaders, presigned URLs repeating their auth parameters.
* The verify endpoint's caller context may describe the request, never the principal: federated identity
  keys and ``aws:SourceIdentity`` come only from the session.
* Role chaining: a chained session lasts at most one hour (IAM User Guide, "Role chaining").
* Trust policies: ``NotPrincipal`` with ``Allow`` is refused (IAM User Guide, "NotPrincipal").
* AssumeRoleWithSAML: a refused call does not use up the assertion; RoleSessionName is ASCII; session tags
  within STS's limits; signature-wrapped Responses are refused.
* Source identity needs ``sts:SetSourceIdentity`` (IAM User Guide, "Monitor and control actions taken with
  assumed roles").
* Identity pools: a provider's role mapping reads its own token's claims.
* A session's IAM calls creating providers are authorised against the new provider's ARN.
* Wildcard policy matching costs linear time in a hostile resource.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore import UNSIGNED
from botocore.auth import S3SigV4Auth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.aws_support import ACCOUNT, aws_client
from tests.oidc_fake import FakeOidcProvider
from tests.saml_idp_fake import FakeAwsSamlIdP, aws_attributes
from tests.support import REGION, GatehouseServer

FILES = "files.example"
ROOT_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
)
PHOTOS_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::photos/*"},
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::home/${cognito-identity.amazonaws.com:sub}/*",
            },
            {
                "Effect": "Allow",
                "Action": "s3:DeleteObject",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceIdentity": "ops-admin"}},
            },
        ],
    }
)


# --- helpers -----------------------------------------------------------------------------------------------


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def verify(gatehouse: GatehouseServer, question: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        gatehouse.url + "/gatehouse/verify",
        data=json.dumps(question).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def botocore_credentials(creds: dict[str, Any]) -> Credentials:
    return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def s3_client(creds: dict[str, Any]) -> Any:
    """boto3's S3 client for a made-up endpoint: only used to presign, which needs no network."""
    return boto3.client(
        "s3",
        endpoint_url=f"https://{FILES}",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def header_signed(
    creds: dict[str, Any],
    method: str,
    url: str,
    body: bytes = b"",
    *,
    service: str = "s3",
    sign_payload: bool = True,
) -> dict[str, Any]:
    """A verify question for a request signed in the Authorization header by botocore's S3 signer (service
    ``s3``) or its generic one."""
    request = AWSRequest(method=method, url=url, data=body)
    if service == "s3":
        request.context["client_config"] = Config(s3={"payload_signing_enabled": sign_payload})
        S3SigV4Auth(botocore_credentials(creds), "s3", REGION).add_auth(request)
    else:
        SigV4Auth(botocore_credentials(creds), service, REGION).add_auth(request)
    headers = {"Host": FILES, **dict(request.headers.items())}
    return {"method": method, "url": url, "headers": headers, "body": base64.b64encode(body).decode()}


def presigned_question(url: str, **ask: Any) -> dict[str, Any]:
    return {"method": "GET", "url": url, "headers": {"Host": FILES}, **ask}


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin_sts(gatehouse: GatehouseServer) -> Any:
    return gatehouse.client("sts")


@pytest.fixture(scope="module")
def files_role(iam: Any) -> str:
    arn = str(iam.create_role(RoleName="files", AssumeRolePolicyDocument=ROOT_TRUST)["Role"]["Arn"])
    iam.put_role_policy(RoleName="files", PolicyName="photos", PolicyDocument=PHOTOS_POLICY)
    return arn


@pytest.fixture(scope="module")
def creds(admin_sts: Any, files_role: str) -> dict[str, Any]:
    return dict(admin_sts.assume_role(RoleArn=files_role, RoleSessionName="files-1")["Credentials"])


# --- S3's flavour of SigV4 through the verify endpoint --------------------------------------------------------


def test_boto3_presigned_s3_url_verifies(gatehouse: GatehouseServer, creds: dict[str, Any]) -> None:
    """S3 presigned URLs sign ``UNSIGNED-PAYLOAD`` without sending it, and their path exactly as sent (S3 does
    not normalise or double-encode it): "Authenticating Requests: Using Query Parameters", Amazon S3 API."""
    key = "albums/2024 summer/a+b ü.jpg"
    url = s3_client(creds).generate_presigned_url("get_object", Params={"Bucket": "photos", "Key": key}, ExpiresIn=600)
    status, answer = verify(
        gatehouse,
        presigned_question(url, service="s3", action="s3:GetObject", resource=f"arn:aws:s3:::photos/{key}"),
    )
    assert status == 200, answer
    assert answer["Allowed"] is True
    assert answer["Principal"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/files/files-1"
    assert answer["Principal"]["Service"] == "s3"

    # Another object under the same signature: refused.
    other = url.replace(quote("a+b", safe=""), "c")
    assert other != url
    status, answer = verify(gatehouse, presigned_question(other, service="s3"))
    assert (status, answer["__type"]) == (403, "SignatureDoesNotMatch")
    # The same signature asked about for another service: refused.
    status, answer = verify(gatehouse, presigned_question(url, service="sqs"))
    assert (status, answer["__type"]) == (403, "SignatureDoesNotMatch")


def test_s3_header_signed_requests_verify_with_and_without_payload_signing(
    gatehouse: GatehouseServer, creds: dict[str, Any]
) -> None:
    url = f"https://{FILES}/photos/{quote('new file.txt')}"
    for sign_payload in (True, False):
        question = header_signed(creds, "PUT", url, b"hello", sign_payload=sign_payload)
        status, answer = verify(
            gatehouse, {**question, "service": "s3", "action": "s3:PutObject", "resource": "arn:aws:s3:::photos/x"}
        )
        assert status == 200, (sign_payload, answer)
        assert answer["Allowed"] is True
    # A signed payload still binds the body.
    question = header_signed(creds, "PUT", url, b"hello", sign_payload=True)
    status, answer = verify(gatehouse, {**question, "body": "Z29vZGJ5ZQ=="})
    assert (status, answer["__type"]) == (403, "SignatureDoesNotMatch")


def test_boto3_s3_upload_with_a_trailing_checksum_verifies(gatehouse: GatehouseServer, creds: dict[str, Any]) -> None:
    """boto3's PutObject over https sends the body aws-chunked with a CRC32 trailer and signs
    ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` in its place (S3's unsigned streaming upload): a service protected by
    Gatehouse credentials verifies it as S3 does. Any other service claiming it is refused."""
    sent: dict[str, Any] = {}

    def capture(request: Any, **_: Any) -> AWSResponse:
        sent["request"] = request
        return AWSResponse(request.url, 200, {}, _EmptyRaw())

    client = s3_client(creds)
    client.meta.events.register("before-send.s3.PutObject", capture)
    client.put_object(Bucket="photos", Key="upload.txt", Body=b"hello")
    request = sent["request"]
    headers = {name: value.decode() if isinstance(value, bytes) else value for name, value in request.headers.items()}
    assert headers["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    body = request.body.read()
    question = {
        "method": "PUT",
        "url": request.url,
        "headers": {"Host": FILES, **headers},
        "body": base64.b64encode(body).decode(),
        "service": "s3",
        "action": "s3:PutObject",
        "resource": "arn:aws:s3:::photos/upload.txt",
    }
    status, answer = verify(gatehouse, question)
    assert status == 200 and answer["Allowed"] is True, answer
    # The same claim for another service's request is refused.
    request = AWSRequest(
        method="POST",
        url=f"https://{FILES}/",
        data=b"Action=DeleteQueue",
        headers={"X-Amz-Content-SHA256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
    )
    SigV4Auth(botocore_credentials(creds), "sqs", REGION).add_auth(request)
    other = {"method": "POST", "url": f"https://{FILES}/", "headers": {"Host": FILES, **dict(request.headers.items())},
             "body": base64.b64encode(b"Action=DeleteQueue").decode()}  # fmt: skip
    status, answer = verify(gatehouse, other)
    assert (status, answer["__type"]) == (403, "SignatureDoesNotMatch")


class _EmptyRaw:
    """The raw body of a made-up HTTP answer (no network: the request is only captured)."""

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        return iter([b""])


def test_unsigned_payload_is_only_for_s3(gatehouse: GatehouseServer, creds: dict[str, Any]) -> None:
    """Only S3 lets a client leave the body out of the signature; any other service's request claiming
    ``UNSIGNED-PAYLOAD`` is refused, whoever verifies it."""
    request = AWSRequest(
        method="POST",
        url=f"https://{FILES}/",
        data=b"Action=DeleteQueue",
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
    )
    SigV4Auth(botocore_credentials(creds), "sqs", REGION).add_auth(request)
    headers = {"Host": FILES, **dict(request.headers.items())}
    question = {
        "method": "POST",
        "url": f"https://{FILES}/",
        "headers": headers,
        "body": base64.b64encode(b"x").decode(),
    }
    status, answer = verify(gatehouse, question)
    assert (status, answer["__type"]) == (403, "SignatureDoesNotMatch")
    # ... and a request to Gatehouse's own STS signed that way too.
    sts_request = AWSRequest(
        method="POST",
        url=gatehouse.url + "/",
        data=b"Action=GetCallerIdentity&Version=2011-06-15",
        headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", "Content-Type": "application/x-www-form-urlencoded"},
    )
    SigV4Auth(botocore_credentials(creds), "sts", REGION).add_auth(sts_request)
    prepared = sts_request.prepare()
    http = urllib.request.Request(
        prepared.url, data=b"Action=GetCallerIdentity&Version=2011-06-15", headers=dict(prepared.headers.items())
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(http, timeout=5)
    assert refused.value.code == 403


@pytest.mark.parametrize("expires", [0, 604801])
def test_presigned_url_expiry_outside_one_second_to_seven_days_is_refused(
    gatehouse: GatehouseServer, creds: dict[str, Any], expires: int
) -> None:
    request = AWSRequest(method="GET", url=f"https://{FILES}/photos/a.jpg")
    SigV4QueryAuth(botocore_credentials(creds), "execute-api", REGION, expires=expires).add_auth(request)
    status, answer = verify(gatehouse, presigned_question(request.url))
    assert (status, answer["__type"]) == (403, "IncompleteSignatureException")
    assert "X-Amz-Expires" in answer["message"]


def test_session_token_or_key_id_of_other_credentials(
    gatehouse: GatehouseServer, admin_sts: Any, files_role: str, creds: dict[str, Any]
) -> None:
    other = admin_sts.assume_role(RoleArn=files_role, RoleSessionName="files-2")["Credentials"]
    url = f"https://{FILES}/photos/a.jpg"
    swapped = header_signed({**creds, "SessionToken": other["SessionToken"]}, "GET", url)
    status, answer = verify(gatehouse, swapped)
    assert (status, answer["__type"]) == (403, "InvalidClientTokenId")
    key = creds["AccessKeyId"]
    altered = key[:-1] + ("A" if key[-1] != "A" else "B")
    status, answer = verify(gatehouse, header_signed({**creds, "AccessKeyId": altered}, "GET", url))
    assert (status, answer["__type"]) == (403, "InvalidClientTokenId")


class _HostUnsigned(SigV4Auth):
    """botocore's signer, leaving Host out of SignedHeaders (as a client that wants its signature to be good
    for any endpoint would)."""

    def headers_to_sign(self, request: AWSRequest) -> Any:
        headers = super().headers_to_sign(request)
        del headers["host"]
        return headers


def test_signature_without_host_or_with_repeated_auth_parameters_is_refused(
    gatehouse: GatehouseServer, admin_sts: Any, files_role: str, creds: dict[str, Any]
) -> None:
    url = f"https://{FILES}/photos/a.jpg"
    request = AWSRequest(method="GET", url=url)
    _HostUnsigned(botocore_credentials(creds), "execute-api", REGION).add_auth(request)
    assert "host" not in request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]
    question = {"method": "GET", "url": url, "headers": {"Host": FILES, **dict(request.headers.items())}}
    status, answer = verify(gatehouse, question)
    assert (status, answer["__type"]) == (403, "IncompleteSignatureException")

    # A presigned URL naming a second credential, signature or session token: which one was meant is ambiguous.
    other = admin_sts.assume_role(RoleArn=files_role, RoleSessionName="files-3")["Credentials"]
    presign = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(botocore_credentials(creds), "execute-api", REGION, expires=300).add_auth(presign)
    good = presign.url
    assert verify(gatehouse, presigned_question(good))[0] == 200
    for extra in (
        f"X-Amz-Security-Token={quote(other['SessionToken'], safe='')}",
        f"X-Amz-Credential={quote(other['AccessKeyId'], safe='')}%2F20250101%2Fus-east-1%2Fexecute-api%2Faws4_request",
        "X-Amz-Signature=" + "0" * 64,
    ):
        status, answer = verify(gatehouse, presigned_question(f"{good}&{extra}"))
        assert (status, answer["__type"]) == (403, "IncompleteSignatureException"), extra


# --- the caller's context describes the request, not the principal -------------------------------------------


def test_caller_context_cannot_claim_principal_keys(gatehouse: GatehouseServer, creds: dict[str, Any]) -> None:
    """A session assumed with AssumeRole has no web identity and no source identity: a service passing such keys
    in ``context`` (perhaps copied from its own client's request) must not make them the session's."""
    url = f"https://{FILES}/home/x"
    hijack = {
        "cognito-identity.amazonaws.com:sub": "us-east-1:victim",
        "Cognito-Identity.amazonaws.com:SUB": "us-east-1:victim",
    }
    for key, value in hijack.items():
        question = {
            **header_signed(creds, "GET", url),
            "action": "s3:GetObject",
            "resource": "arn:aws:s3:::home/us-east-1:victim/photo.jpg",
            "context": {key: value},
        }
        status, answer = verify(gatehouse, question)
        assert status == 200 and answer["Allowed"] is False, key
    question = {
        **header_signed(creds, "GET", url),
        "action": "s3:DeleteObject",
        "resource": "arn:aws:s3:::photos/a.jpg",
        "context": {"aws:SourceIdentity": "ops-admin"},
    }
    status, answer = verify(gatehouse, question)
    assert status == 200 and answer["Allowed"] is False
    # Request keys still count.
    question = {
        **header_signed(creds, "GET", url),
        "action": "s3:GetObject",
        "resource": "arn:aws:s3:::photos/a.jpg",
        "context": {"aws:SourceIp": "203.0.113.9", "s3:prefix": "a"},
    }
    status, answer = verify(gatehouse, question)
    assert status == 200 and answer["Allowed"] is True


# --- role chaining ---------------------------------------------------------------------------------------------


def test_role_chaining_is_limited_to_one_hour(gatehouse: GatehouseServer, iam: Any, creds: dict[str, Any]) -> None:
    """IAM User Guide, "Role chaining": a chained session lasts at most one hour, whatever the role's
    MaxSessionDuration; asking for more fails."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/files"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    target = iam.create_role(
        RoleName="long-chain", AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=43200
    )["Role"]["Arn"]
    session_sts = aws_client(
        "sts", gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )
    with pytest.raises(ClientError) as too_long:
        session_sts.assume_role(RoleArn=target, RoleSessionName="chained", DurationSeconds=7200)
    assert error_of(too_long) == ("ValidationError", 400)
    assert "1 hour" in too_long.value.response["Error"]["Message"]
    chained = session_sts.assume_role(RoleArn=target, RoleSessionName="chained", DurationSeconds=3600)
    assert chained["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/long-chain/chained"
    # The root (admin) credentials are not a chain: the role's own maximum applies.
    root_trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    iam.update_assume_role_policy(RoleName="long-chain", PolicyDocument=root_trust)
    direct = gatehouse.client("sts").assume_role(RoleArn=target, RoleSessionName="direct", DurationSeconds=7200)
    assert direct["Credentials"]["AccessKeyId"].startswith("ASIA")


# --- trust policies: NotPrincipal ------------------------------------------------------------------------------


def test_trust_policy_with_not_principal_and_allow_is_refused(iam: Any) -> None:
    """IAM User Guide, "NotPrincipal": it must be used with "Effect":"Deny"; an Allow with NotPrincipal would let
    every principal but the named ones (any web identity, any SAML user) assume the role."""
    everyone_but = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/nobody"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                }
            ],
        }
    )
    with pytest.raises(ClientError) as refused:
        iam.create_role(RoleName="open-door", AssumeRolePolicyDocument=everyone_but)
    assert error_of(refused) == ("MalformedPolicyDocument", 400)
    with pytest.raises(ClientError) as missing:
        iam.get_role(RoleName="open-door")
    assert error_of(missing) == ("NoSuchEntity", 404)
    iam.create_role(RoleName="closed-door", AssumeRolePolicyDocument=ROOT_TRUST)
    with pytest.raises(ClientError) as not_updated:
        iam.update_assume_role_policy(RoleName="closed-door", PolicyDocument=everyone_but)
    assert error_of(not_updated) == ("MalformedPolicyDocument", 400)
    stored = iam.get_role(RoleName="closed-door")["Role"]["AssumeRolePolicyDocument"]
    assert "NotPrincipal" not in json.dumps(stored)


# --- AssumeRoleWithSAML: a refused call leaves the assertion usable ---------------------------------------------


@pytest.fixture(scope="module")
def saml_setup(gatehouse: GatehouseServer, iam: Any) -> dict[str, Any]:
    idp = FakeAwsSamlIdP()
    provider_arn = iam.create_saml_provider(Name="corp-idp", SAMLMetadataDocument=idp.metadata_xml())["SAMLProviderArn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
            }
        ],
    }
    role_arn = iam.create_role(RoleName="saml-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return {"idp": idp, "provider_arn": provider_arn, "role_arn": role_arn}


def test_refused_saml_exchange_does_not_use_up_the_assertion(
    gatehouse: GatehouseServer, sts: Any, saml_setup: dict[str, Any]
) -> None:
    idp: FakeAwsSamlIdP = saml_setup["idp"]
    assertion = idp.response(aws_attributes(saml_setup["role_arn"], saml_setup["provider_arn"], session="ann"))
    # A role the assertion does not offer: AccessDenied ...
    with pytest.raises(ClientError) as denied:
        sts.assume_role_with_saml(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/files",
            PrincipalArn=saml_setup["provider_arn"],
            SAMLAssertion=assertion,
        )
    assert error_of(denied) == ("AccessDenied", 403)
    # ... and a duration the role does not allow: ValidationError (server-side checks only).
    unchecked = boto3.client(
        "sts",
        endpoint_url=gatehouse.url,
        region_name=REGION,
        config=Config(signature_version=UNSIGNED, parameter_validation=False, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as too_long:
        unchecked.assume_role_with_saml(
            RoleArn=saml_setup["role_arn"],
            PrincipalArn=saml_setup["provider_arn"],
            SAMLAssertion=assertion,
            DurationSeconds=7200,
        )
    assert error_of(too_long) == ("ValidationError", 400)
    # Neither refusal used the assertion up: its holder still exchanges it, once.
    answer = sts.assume_role_with_saml(
        RoleArn=saml_setup["role_arn"], PrincipalArn=saml_setup["provider_arn"], SAMLAssertion=assertion
    )
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/saml-role/ann"
    with pytest.raises(ClientError) as replayed:
        sts.assume_role_with_saml(
            RoleArn=saml_setup["role_arn"], PrincipalArn=saml_setup["provider_arn"], SAMLAssertion=assertion
        )
    assert error_of(replayed) == ("InvalidIdentityToken", 400)


def test_saml_session_name_and_session_tags_beyond_sts_limits(
    gatehouse: GatehouseServer, sts: Any, saml_setup: dict[str, Any]
) -> None:
    """RoleSessionName is ``[\\w+=,.@-]{2,64}`` with Java's ASCII ``\\w`` (a look-alike Cyrillic U+0430 is no "a");
    session tags are at most 50, keys up to 128 and values up to 256 characters, and a session whose packed tags
    do not fit is refused (PackedPolicyTooLarge) rather than handed credentials no request can use."""
    idp: FakeAwsSamlIdP = saml_setup["idp"]
    role_arn, provider_arn = saml_setup["role_arn"], saml_setup["provider_arn"]

    def exchange(assertion: str) -> dict[str, Any]:
        return dict(sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=assertion))

    look_alike = idp.response(aws_attributes(role_arn, provider_arn, session="\u0430dmin"))
    with pytest.raises(ClientError) as bad_name:
        exchange(look_alike)
    assert error_of(bad_name) == ("InvalidIdentityToken", 400)

    many = {f"PrincipalTag:t{i}": ["v"] for i in range(51)}
    with pytest.raises(ClientError) as too_many:
        exchange(idp.response(aws_attributes(role_arn, provider_arn, **many)))
    assert error_of(too_many) == ("ValidationError", 400)
    long_value = {"PrincipalTag:team": ["x" * 257]}
    with pytest.raises(ClientError) as too_long:
        exchange(idp.response(aws_attributes(role_arn, provider_arn, **long_value)))
    assert error_of(too_long) == ("ValidationError", 400)

    # Fifty tags at their longest, of text that does not compress: more than a session token can carry.
    def noise(length: int) -> str:
        return secrets.token_urlsafe(length)[:length]

    widest = {f"PrincipalTag:{noise(120)}": [noise(256)] for _ in range(50)}
    with pytest.raises(ClientError) as too_big:
        exchange(idp.response(aws_attributes(role_arn, provider_arn, **widest)))
    assert error_of(too_big) == ("PackedPolicyTooLarge", 400)

    # A few tags: credentials that work.
    fine = idp.response(aws_attributes(role_arn, provider_arn, session="bea", **{"PrincipalTag:team": ["media"]}))
    creds = exchange(fine)["Credentials"]
    me = aws_client("sts", gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert me.get_caller_identity()["Arn"].endswith(":assumed-role/saml-role/bea")


# --- identity pools: a role mapping reads the claims of its own provider's token -------------------------------


def _user_pool(idp: Any, gatehouse: GatehouseServer, name: str) -> tuple[str, str, str]:
    """A user pool with an app client and one user: (pool id, client id, login key)."""
    pool_id = str(idp.create_user_pool(PoolName=name)["UserPool"]["Id"])
    client_id = str(
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
    )
    idp.admin_create_user(UserPoolId=pool_id, Username="kim", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="kim", Password="Correct-horse-1", Permanent=True)
    return pool_id, client_id, f"127.0.0.1:{gatehouse.port}/{pool_id}"


def _id_token(idp: Any, pool_id: str, client_id: str) -> str:
    return str(
        idp.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "kim", "PASSWORD": "Correct-horse-1"},
        )["AuthenticationResult"]["IdToken"]
    )


def test_role_mapping_reads_its_own_providers_token(gatehouse: GatehouseServer, idp: Any, iam: Any) -> None:
    """Role-based access control (Cognito developer guide): a provider's RoleMappings entry chooses the role
    from *that provider's* token. An identity signed in with two user pools must not have the Token mapping of
    one pool read the ``cognito:preferred_role`` another pool put in its own token."""
    first, second = sorted(
        (_user_pool(idp, gatehouse, "mapping-a"), _user_pool(idp, gatehouse, "mapping-b")), key=lambda p: p[2]
    )
    ci = gatehouse.client("cognito-identity")
    pool_id = ci.create_identity_pool(
        IdentityPoolName="two-pools",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": key, "ClientId": client} for _, client, key in (first, second)],
    )["IdentityPoolId"]
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": pool_id}},
                }
            ],
        }
    )
    default_role = iam.create_role(RoleName="two-pools-default", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    admin_role = iam.create_role(RoleName="two-pools-admin", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    # The first pool makes kim an admin in its own tokens; its entry has no mapping (its logins get the default
    # role). The second pool's entry maps by token, and denies when its token names no role.
    idp.create_group(GroupName="admins", UserPoolId=first[0], RoleArn=admin_role, Precedence=1)
    idp.admin_add_user_to_group(UserPoolId=first[0], Username="kim", GroupName="admins")
    ci.set_identity_pool_roles(
        IdentityPoolId=pool_id,
        Roles={"authenticated": default_role},
        RoleMappings={f"{second[2]}:{second[1]}": {"Type": "Token", "AmbiguousRoleResolution": "Deny"}},
    )
    public = gatehouse.client("cognito-identity", signed=False)
    first_login = {first[2]: _id_token(idp, first[0], first[1])}
    assert claims_of(first_login[first[2]])["cognito:preferred_role"] == admin_role
    identity_id = public.get_id(IdentityPoolId=pool_id, Logins=first_login)["IdentityId"]
    alone = public.get_credentials_for_identity(IdentityId=identity_id, Logins=first_login)["Credentials"]
    assert _role_of(gatehouse, alone) == default_role

    both = {**first_login, second[2]: _id_token(idp, second[0], second[1])}
    with pytest.raises(ClientError) as denied:
        public.get_credentials_for_identity(IdentityId=identity_id, Logins=both)
    assert error_of(denied) == ("NotAuthorizedException", 400)
    with pytest.raises(ClientError) as not_admin:
        public.get_credentials_for_identity(IdentityId=identity_id, Logins=both, CustomRoleArn=admin_role)
    assert error_of(not_admin) == ("NotAuthorizedException", 400)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert isinstance(decoded, dict)
    return decoded


def _role_of(gatehouse: GatehouseServer, creds: dict[str, Any]) -> str:
    me = aws_client("sts", gatehouse.url, creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])
    arn = str(me.get_caller_identity()["Arn"])  # arn:aws:sts::<account>:assumed-role/<role>/<session>
    return f"arn:aws:iam::{ACCOUNT}:role/{arn.split('/')[1]}"


# --- AssumeRoleWithSAML: XML signature wrapping ----------------------------------------------------------------

_SAML_NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "saml": "urn:oasis:names:tc:SAML:2.0:assertion"}


def _wrapped(genuine: str, variant: str) -> str:
    """:func:`_wrapped_with_prefixes`, leaving ElementTree's process-wide prefix registry as it found it (other
    tests in this process serialize SAML with ElementTree too)."""
    import xml.etree.ElementTree as ET

    registry = ET._namespace_map  # ElementTree's own registry, which register_namespace() changes for everyone
    saved = dict(registry)
    try:
        return _wrapped_with_prefixes(genuine, variant)
    finally:
        registry.clear()
        registry.update(saved)


def _wrapped_with_prefixes(genuine: str, variant: str) -> str:
    """A signature-wrapping forgery (XSW, Somorovsky et al. 2012) of a genuine signed Response: an evil copy of
    its assertion, naming another subject and session, placed where a careless verifier reads it while the
    signed original stays somewhere the signature check still finds it."""
    import copy
    import xml.etree.ElementTree as ET

    for prefix, uri in _SAML_NS.items():
        ET.register_namespace(prefix, uri)
    ET.register_namespace("ds", "http://www.w3.org/2000/09/xmldsig#")
    root = ET.fromstring(base64.b64decode(genuine))
    original = root.find("saml:Assertion", _SAML_NS)
    assert original is not None
    evil = copy.deepcopy(original)
    evil.set("ID", "_evil" + secrets.token_hex(8))
    for signature in evil.findall("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        evil.remove(signature)
    text = ET.tostring(evil, encoding="unicode").replace("ann@corp.example", "root@corp.example")
    evil = ET.fromstring(text.replace(">ann<", ">mallory<"))
    index = list(root).index(original)
    if variant == "evil-first":  # XSW3: the evil assertion before the signed one
        root.insert(index, evil)
    elif variant == "original-inside-evil":  # XSW4: the signed assertion moved inside the evil one
        root.remove(original)
        evil.append(original)
        root.insert(index, evil)
    elif variant == "original-in-extensions":  # XSW: the signed assertion hidden in an Extensions element
        root.remove(original)
        extensions = ET.Element("{urn:oasis:names:tc:SAML:2.0:protocol}Extensions")
        extensions.append(original)
        root.insert(1, extensions)
        root.insert(index + 1, evil)
    return base64.b64encode(ET.tostring(root)).decode()


@pytest.mark.parametrize("variant", ["evil-first", "original-inside-evil", "original-in-extensions"])
def test_signature_wrapped_saml_assertion_is_refused(sts: Any, saml_setup: dict[str, Any], variant: str) -> None:
    idp: FakeAwsSamlIdP = saml_setup["idp"]
    role_arn, provider_arn = saml_setup["role_arn"], saml_setup["provider_arn"]
    genuine = idp.response(aws_attributes(role_arn, provider_arn, session="ann"))
    forged = _wrapped(genuine, variant)
    try:
        answer = sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=forged)
    except ClientError as refused:
        assert refused.response["Error"]["Code"] == "InvalidIdentityToken", variant
        assert refused.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        return
    # Accepted only if what was read is the signed original, never the evil copy.
    assert answer["Subject"] == "ann@corp.example", variant
    assert answer["AssumedRoleUser"]["Arn"].endswith("/ann"), variant


# --- IAM calls made with a session: the resource is the provider being created ---------------------------------


def test_session_policy_resource_of_created_providers(gatehouse: GatehouseServer, iam: Any, admin_sts: Any) -> None:
    """IAM's resource for CreateOpenIDConnectProvider and CreateSAMLProvider is the new provider's ARN (Service
    Authorization Reference, IAM: resource types oidc-provider / saml-provider), so that a Deny naming one
    provider holds even next to an Allow on "*"."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["iam:CreateOpenIDConnectProvider", "iam:CreateSAMLProvider"],
                "Resource": "*",
            },
            {
                "Effect": "Deny",
                "Action": "iam:CreateOpenIDConnectProvider",
                "Resource": f"arn:aws:iam::{ACCOUNT}:oidc-provider/evil.example*",
            },
            {
                "Effect": "Deny",
                "Action": "iam:CreateSAMLProvider",
                "Resource": f"arn:aws:iam::{ACCOUNT}:saml-provider/evil-*",
            },
        ],
    }
    iam.create_role(RoleName="provider-admin", AssumeRolePolicyDocument=ROOT_TRUST)
    iam.put_role_policy(RoleName="provider-admin", PolicyName="providers", PolicyDocument=json.dumps(policy))
    creds = admin_sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/provider-admin", RoleSessionName="pa")[
        "Credentials"
    ]
    session_iam = aws_client(
        "iam", gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )
    with pytest.raises(ClientError) as denied:
        session_iam.create_open_id_connect_provider(Url="https://evil.example/issuer", ClientIDList=["x"])
    assert error_of(denied) == ("AccessDenied", 403)
    assert not any(
        "evil.example" in p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    )
    metadata = FakeAwsSamlIdP(entity_id="https://evil.example/saml").metadata_xml()
    with pytest.raises(ClientError) as denied_saml:
        session_iam.create_saml_provider(Name="evil-idp", SAMLMetadataDocument=metadata)
    assert error_of(denied_saml) == ("AccessDenied", 403)
    assert not any("evil-idp" in p["Arn"] for p in iam.list_saml_providers()["SAMLProviderList"])
    # Providers the Deny does not name: created.
    made = session_iam.create_open_id_connect_provider(Url="https://good.example/issuer", ClientIDList=["x"])
    assert made["OpenIDConnectProviderArn"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/good.example/issuer"
    assert session_iam.create_saml_provider(Name="good-idp", SAMLMetadataDocument=metadata)["SAMLProviderArn"]


# --- policy evaluation cost is bounded by the request, not exponential in it -----------------------------------


def test_wildcard_resource_against_a_hostile_key_answers_promptly(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    """An S3 key of many ``/`` against ``photos/*/*/*/*/*.jpg`` used to make one verify call backtrack for
    minutes on the event loop; every other request waited."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::photos/*/*/*/*/*.jpg"}],
    }
    iam.create_role(RoleName="globs", AssumeRolePolicyDocument=ROOT_TRUST)
    iam.put_role_policy(RoleName="globs", PolicyName="jpg", PolicyDocument=json.dumps(policy))
    creds = admin_sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/globs", RoleSessionName="globs")["Credentials"]
    question = header_signed(creds, "GET", f"https://{FILES}/photos/a.jpg")
    key = "a/" * 500 + "x.png"
    started = time.perf_counter()
    status, answer = verify(gatehouse, {**question, "action": "s3:GetObject", "resource": f"arn:aws:s3:::photos/{key}"})
    assert (status, answer["Allowed"]) == (200, False)
    status, answer = verify(
        gatehouse, {**question, "action": "s3:GetObject", "resource": "arn:aws:s3:::photos/a/b/c/d/e.jpg"}
    )
    assert (status, answer["Allowed"]) == (200, True)
    assert time.perf_counter() - started < 5


# --- source identity: only where the trust policy allows sts:SetSourceIdentity ---------------------------------


def _trust(principal: dict[str, Any], actions: list[str], condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": actions}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_source_identity_needs_set_source_identity_in_the_trust_policy(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any, saml_setup: dict[str, Any]
) -> None:
    """IAM User Guide, "Monitor and control actions taken with assumed roles": to set a source identity the role
    trust policy must allow ``sts:SetSourceIdentity`` (with ``sts:SourceIdentity`` in the request), else the
    AssumeRole* call fails; in a role chain the caller's own policy must allow it too. Without that gate anyone
    who may assume a role could claim any source identity -- and a policy keyed on aws:SourceIdentity with it."""
    root = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    plain = iam.create_role(RoleName="no-source", AssumeRolePolicyDocument=_trust(root, ["sts:AssumeRole"]))["Role"]
    with pytest.raises(ClientError) as denied:
        admin_sts.assume_role(RoleArn=plain["Arn"], RoleSessionName="s1", SourceIdentity="ops-admin")
    assert error_of(denied) == ("AccessDenied", 403)
    assert admin_sts.assume_role(RoleArn=plain["Arn"], RoleSessionName="s1")["Credentials"]

    only_corp = iam.create_role(
        RoleName="corp-source",
        AssumeRolePolicyDocument=_trust(
            root, ["sts:AssumeRole", "sts:SetSourceIdentity"], {"StringLike": {"sts:SourceIdentity": "*@corp.example"}}
        ),
    )["Role"]
    with pytest.raises(ClientError) as not_corp:
        admin_sts.assume_role(RoleArn=only_corp["Arn"], RoleSessionName="s1", SourceIdentity="ops-admin")
    assert error_of(not_corp) == ("AccessDenied", 403)
    answer = admin_sts.assume_role(RoleArn=only_corp["Arn"], RoleSessionName="s1", SourceIdentity="kim@corp.example")
    assert answer["SourceIdentity"] == "kim@corp.example"
    creds = answer["Credentials"]

    # A chained session carries its source identity on: the next role's trust and the session's own policy must
    # both allow sts:SetSourceIdentity.
    chained_trust = _trust({"AWS": only_corp["Arn"]}, ["sts:AssumeRole"])
    target = iam.create_role(RoleName="chain-target", AssumeRolePolicyDocument=chained_trust)["Role"]["Arn"]
    session_sts = aws_client(
        "sts", gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )
    with pytest.raises(ClientError) as chain_denied:
        session_sts.assume_role(RoleArn=target, RoleSessionName="s2")
    assert error_of(chain_denied) == ("AccessDenied", 403)
    iam.update_assume_role_policy(
        RoleName="chain-target",
        PolicyDocument=_trust({"AWS": only_corp["Arn"]}, ["sts:AssumeRole", "sts:SetSourceIdentity"]),
    )
    with pytest.raises(ClientError) as caller_denied:  # the session's own policy does not allow it yet
        session_sts.assume_role(RoleArn=target, RoleSessionName="s2")
    assert error_of(caller_denied) == ("AccessDenied", 403)
    own = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:SetSourceIdentity", "Resource": target}],
    }
    iam.put_role_policy(RoleName="corp-source", PolicyName="chain", PolicyDocument=json.dumps(own))
    chained = session_sts.assume_role(RoleArn=target, RoleSessionName="s2")
    me = aws_client(
        "sts",
        gatehouse.url,
        chained["Credentials"]["AccessKeyId"],
        chained["Credentials"]["SecretAccessKey"],
        chained["Credentials"]["SessionToken"],
    ).get_caller_identity()
    assert me["Arn"].endswith(":assumed-role/chain-target/s2")

    # SAML: the IdP's SourceIdentity attribute needs the same permission, and the same character set.
    idp: FakeAwsSamlIdP = saml_setup["idp"]
    role_arn, provider_arn = saml_setup["role_arn"], saml_setup["provider_arn"]
    with_source = idp.response(aws_attributes(role_arn, provider_arn, SourceIdentity=["kim@corp.example"]))
    sts = gatehouse.client("sts", signed=False)
    with pytest.raises(ClientError) as saml_denied:
        sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=with_source)
    assert error_of(saml_denied) == ("AccessDenied", 403)
    saml_trust = _trust(
        {"Federated": provider_arn}, ["sts:AssumeRoleWithSAML", "sts:TagSession", "sts:SetSourceIdentity"]
    )
    iam.update_assume_role_policy(RoleName="saml-role", PolicyDocument=saml_trust)
    answer = sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=with_source)
    assert answer["SourceIdentity"] == "kim@corp.example"
    for bad in ("aws:admin", "has space", "x", "k" * 65):
        forged = idp.response(aws_attributes(role_arn, provider_arn, SourceIdentity=[bad]))
        with pytest.raises(ClientError) as bad_source:
            sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=forged)
        assert error_of(bad_source) == ("InvalidIdentityToken", 400), bad


def test_web_identity_source_identity_claim(iam: Any, sts: Any) -> None:
    """The ``https://aws.amazon.com/source_identity`` claim of a web identity token: the same gate and form."""
    oidc = FakeOidcProvider()
    oidc.start()
    try:
        provider = oidc.issuer.split("://", 1)[1]
        iam.create_open_id_connect_provider(Url=oidc.issuer, ClientIDList=["ext-app"], ThumbprintList=["0" * 40])
        federated = {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}"}
        condition = {"StringEquals": {f"{provider}:aud": "ext-app"}}
        role_arn = iam.create_role(
            RoleName="web-source",
            AssumeRolePolicyDocument=_trust(federated, ["sts:AssumeRoleWithWebIdentity"], condition),
        )["Role"]["Arn"]
        claim = "https://aws.amazon.com/source_identity"
        with pytest.raises(ClientError) as denied:
            sts.assume_role_with_web_identity(
                RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=oidc.token(**{claim: "kim"})
            )
        assert error_of(denied) == ("AccessDenied", 403)
        assert sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=oidc.token())
        iam.update_assume_role_policy(
            RoleName="web-source",
            PolicyDocument=_trust(federated, ["sts:AssumeRoleWithWebIdentity", "sts:SetSourceIdentity"], condition),
        )
        answer = sts.assume_role_with_web_identity(
            RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=oidc.token(**{claim: "kim"})
        )
        assert answer["SourceIdentity"] == "kim"
        with pytest.raises(ClientError) as malformed:
            sts.assume_role_with_web_identity(
                RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=oidc.token(**{claim: "aws:kim"})
            )
        assert error_of(malformed) == ("InvalidIdentityToken", 400)
    finally:
        oidc.stop()


# --- trust policy condition keys of the STS request itself --------------------------------------------------------


def test_trust_policy_sees_external_id_and_role_session_name(
    iam: Any, admin_sts: Any, sts: Any, saml_setup: dict[str, Any]
) -> None:
    """``sts:ExternalId`` (AssumeRole) and ``sts:RoleSessionName`` (every AssumeRole* call) are keys of the request
    a trust policy may test (IAM User Guide, "IAM and AWS STS condition context keys"). Without them the
    confused-deputy pattern (an ExternalId condition) could never be met, and a negated condition on the session
    name (``StringNotEquals``) always held."""
    root = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    deputy = iam.create_role(
        RoleName="deputy",
        AssumeRolePolicyDocument=_trust(root, ["sts:AssumeRole"], {"StringEquals": {"sts:ExternalId": "Example987"}}),
    )["Role"]["Arn"]
    assert admin_sts.assume_role(RoleArn=deputy, RoleSessionName="s1", ExternalId="Example987")["Credentials"]
    for wrong in ({"ExternalId": "Other"}, {}):
        with pytest.raises(ClientError) as denied:
            admin_sts.assume_role(RoleArn=deputy, RoleSessionName="s1", **wrong)
        assert error_of(denied) == ("AccessDenied", 403), wrong

    not_admin = iam.create_role(
        RoleName="not-admin-sessions",
        AssumeRolePolicyDocument=_trust(
            root, ["sts:AssumeRole"], {"StringNotEquals": {"sts:RoleSessionName": "admin"}}
        ),
    )["Role"]["Arn"]
    with pytest.raises(ClientError) as named_admin:
        admin_sts.assume_role(RoleArn=not_admin, RoleSessionName="admin")
    assert error_of(named_admin) == ("AccessDenied", 403)
    assert admin_sts.assume_role(RoleArn=not_admin, RoleSessionName="ops")["Credentials"]

    idp: FakeAwsSamlIdP = saml_setup["idp"]
    provider_arn = saml_setup["provider_arn"]
    only_ann = iam.create_role(
        RoleName="saml-only-ann",
        AssumeRolePolicyDocument=_trust(
            {"Federated": provider_arn}, ["sts:AssumeRoleWithSAML"], {"StringEquals": {"sts:RoleSessionName": "ann"}}
        ),
    )["Role"]["Arn"]
    for session, expected in (("bob", ("AccessDenied", 403)), ("ann", None)):
        assertion = idp.response(aws_attributes(only_ann, provider_arn, session=session))
        if expected is None:
            answer = sts.assume_role_with_saml(RoleArn=only_ann, PrincipalArn=provider_arn, SAMLAssertion=assertion)
            assert answer["AssumedRoleUser"]["Arn"].endswith("/saml-only-ann/ann")
        else:
            with pytest.raises(ClientError) as refused:
                sts.assume_role_with_saml(RoleArn=only_ann, PrincipalArn=provider_arn, SAMLAssertion=assertion)
            assert error_of(refused) == expected


def test_stored_trust_policy_that_no_longer_parses_trusts_no_one(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    """A trust policy stored before a stricter check (NotPrincipal with Allow, now refused) is not evaluated as
    written and does not break the call: the role trusts no one until its policy is rewritten."""
    iam.create_role(RoleName="legacy-trust", AssumeRolePolicyDocument=ROOT_TRUST)
    legacy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:AssumeRole"}
            ],
        }
    )
    with sqlite3.connect(gatehouse.data_dir / "gatehouse.db") as db:
        db.execute("UPDATE iam_roles SET assume_role_policy = ? WHERE name_key = 'legacy-trust'", (legacy,))
    with pytest.raises(ClientError) as denied:
        admin_sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/legacy-trust", RoleSessionName="s1")
    assert error_of(denied) == ("AccessDenied", 403)
    assert iam.get_role(RoleName="legacy-trust")["Role"]["RoleName"] == "legacy-trust"
    iam.update_assume_role_policy(RoleName="legacy-trust", PolicyDocument=ROOT_TRUST)
    assert admin_sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/legacy-trust", RoleSessionName="s1")
