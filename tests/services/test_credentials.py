"""Roles, trust checks, minting and verifying temporary credentials, on a real (in-memory) store, with requests
signed by botocore's own SigV4 signer."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.api.sigv4 import SignedRequest
from gateway.errors import (
    DeleteConflictException,
    EntityAlreadyExistsException,
    InvalidSignatureException,
    MalformedPolicyDocumentException,
    NoSuchEntityException,
    PackedPolicyTooLargeException,
    UnrecognizedClientException,
    ValidationError,
)
from gateway.secretbox import SecretBox
from gateway.services.credentials import CredentialService, ExpiredSecurityToken, TemporaryCredentials
from gateway.services.iam import COGNITO_IDENTITY_PROVIDER, IamService, WebIdentity
from gateway.storage.sqlite import SqliteStore

ACCOUNT = "123456789012"
POOL = "us-east-1:0000-identity-pool"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {"cognito-identity.amazonaws.com:aud": POOL},
                    "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
                },
            }
        ],
    }
)
HOME = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": "arn:aws:s3:::photos/${cognito-identity.amazonaws.com:sub}/*",
            },
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::photos"},
            {"Effect": "Deny", "Action": "s3:ListBucket", "Resource": "*", "Condition": {"Bool": {"k:evil": "true"}}},
        ],
    }
)
URL = "https://files.example.com/photos/x.jpg?versionId=3"


@pytest.fixture
async def services() -> AsyncIterator[tuple[IamService, CredentialService]]:
    store = await SqliteStore.open(":memory:")
    iam = IamService(store, account_id=ACCOUNT)
    yield iam, CredentialService(iam, SecretBox.generate_key(), account_id=ACCOUNT)
    await store.close()


def identity(sub: str = "us-east-1:sub-1", amr: tuple[str, ...] = ("authenticated", "gatehouse")) -> WebIdentity:
    return WebIdentity(provider=COGNITO_IDENTITY_PROVIDER, subject=sub, audience=(POOL,), amr=amr)


def sign(creds: TemporaryCredentials | Any, method: str = "GET", url: str = URL, body: bytes = b"") -> dict[str, str]:
    request = AWSRequest(method=method, url=url, data=body)
    token = getattr(creds, "session_token", None)
    SigV4Auth(Credentials(creds.access_key_id, creds.secret_access_key, token), "s3", "us-east-1").add_auth(request)
    # botocore signs the Host it derives from the URL; on the wire it is a header like any other.
    return {"Host": urlsplit(url).netloc, **dict(request.headers.items())}


async def test_role_lifecycle(services: tuple[IamService, CredentialService]) -> None:
    iam, _ = services
    role = await iam.create_role("Photos", TRUST, path="/app/", tags={"team": "a"})
    assert role.arn == f"arn:aws:iam::{ACCOUNT}:role/app/Photos"
    assert role.role_id.startswith("AROA") and len(role.role_id) == 21
    with pytest.raises(EntityAlreadyExistsException):
        await iam.create_role("photos", TRUST)  # names are unique case-insensitively
    with pytest.raises(MalformedPolicyDocumentException):
        await iam.create_role("Bad", '{"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole"}}')
    assert (await iam.get_role("PHOTOS")).arn == role.arn
    assert await iam.find_role_by_arn(role.arn) == role
    assert await iam.find_role_by_arn(f"arn:aws:iam::{ACCOUNT}:role/Photos") is None  # wrong path
    assert await iam.find_role_by_arn("arn:aws:iam::999999999999:role/app/Photos") is None  # other account
    await iam.put_role_policy("Photos", "home", HOME)
    with pytest.raises(MalformedPolicyDocumentException):
        await iam.put_role_policy("Photos", "bad", '{"Statement": []}')
    with pytest.raises(DeleteConflictException):
        await iam.delete_role("Photos")
    await iam.delete_role_policy("Photos", "home")
    await iam.delete_role("Photos")
    with pytest.raises(NoSuchEntityException):
        await iam.get_role("Photos")


async def test_trust_policy_against_web_identity(services: tuple[IamService, CredentialService]) -> None:
    iam, _ = services
    role = await iam.create_role("Photos", TRUST)
    assert iam.trust_allows(role, identity())
    assert not iam.trust_allows(role, identity(amr=("unauthenticated",)))
    wrong_pool = WebIdentity(
        provider=COGNITO_IDENTITY_PROVIDER, subject="s", audience=("us-east-1:other",), amr=("authenticated",)
    )
    assert not iam.trust_allows(role, wrong_pool)
    other_provider = WebIdentity(provider="idp.example.com", subject="s", audience=(POOL,), amr=("authenticated",))
    assert not iam.trust_allows(role, other_provider)
    assert iam.trust_allows(role, identity(), request_tags={"team": "a"})  # the trust also allows sts:TagSession
    no_tags = await iam.create_role(
        "NoTags",
        TRUST.replace('["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]', '"sts:AssumeRoleWithWebIdentity"'),
    )
    assert iam.trust_allows(no_tags, identity())
    assert not iam.trust_allows(no_tags, identity(), request_tags={"team": "a"})


async def test_mint_verify_and_authorise(services: tuple[IamService, CredentialService]) -> None:
    iam, credentials = services
    role = await iam.create_role("Photos", TRUST, max_session_duration=7200)
    await iam.put_role_policy("Photos", "home", HOME)
    creds = await credentials.mint(
        role,
        session_name="CognitoIdentityCredentials",
        identity_id="us-east-1:sub-1",
        principal_tags={"team": "a"},
        duration_seconds=3600,
        web_identity=identity(),
    )
    assert creds.access_key_id.startswith("ASIA") and len(creds.access_key_id) == 20
    assert len(creds.secret_access_key) == 40
    assert creds.assumed_role_arn == f"arn:aws:sts::{ACCOUNT}:assumed-role/Photos/CognitoIdentityCredentials"
    assert abs(creds.expiration.timestamp() - (time.time() + 3600)) < 5
    assert credentials.secret_for(creds.access_key_id) == creds.secret_access_key

    ctx = await credentials.verify_request("GET", URL, sign(creds), b"")
    assert (ctx.role_arn, ctx.identity_id, ctx.principal_tags) == (role.arn, "us-east-1:sub-1", {"team": "a"})
    assert ctx.user_id == f"{role.role_id}:CognitoIdentityCredentials"
    assert ctx.service == "s3"
    own = "arn:aws:s3:::photos/us-east-1:sub-1/x.jpg"
    assert credentials.is_allowed(ctx, "s3:GetObject", own)
    assert not credentials.is_allowed(ctx, "s3:GetObject", "arn:aws:s3:::photos/us-east-1:sub-2/x.jpg")
    assert not credentials.is_allowed(ctx, "s3:DeleteObject", own)
    assert credentials.is_allowed(ctx, "s3:ListBucket", "arn:aws:s3:::photos")
    assert not credentials.is_allowed(ctx, "s3:ListBucket", "arn:aws:s3:::photos", {"k:evil": "true"})
    # A caller cannot pass principal keys of its own.
    forged = {"cognito-identity.amazonaws.com:sub": "x", "aws:PrincipalTag/team": "b"}
    assert not credentials.is_allowed(ctx, "s3:GetObject", "arn:aws:s3:::photos/x/y", forged)
    assert credentials.request_context(ctx, forged)["aws:PrincipalTag/team"] == "a"


async def test_session_policy_narrows(services: tuple[IamService, CredentialService]) -> None:
    iam, credentials = services
    role = await iam.create_role("Photos", TRUST)
    await iam.put_role_policy("Photos", "home", HOME)
    read_only = json.dumps(
        {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}}
    )
    creds = await credentials.mint(role, session_name="s", session_policy=read_only, web_identity=identity())
    assert creds.packed_policy_size is not None and 0 < creds.packed_policy_size <= 100
    ctx = await credentials.verify_request("GET", URL, sign(creds), b"")
    own = "arn:aws:s3:::photos/us-east-1:sub-1/x.jpg"
    assert credentials.is_allowed(ctx, "s3:GetObject", own)
    assert not credentials.is_allowed(ctx, "s3:PutObject", own)  # the role allows it, the session does not
    assert not credentials.is_allowed(ctx, "s3:GetBucketAcl", "arn:aws:s3:::photos")  # the session allows, role not
    with pytest.raises(MalformedPolicyDocumentException):
        await credentials.mint(role, session_name="s", session_policy="{nope")
    with pytest.raises(PackedPolicyTooLargeException):
        big = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:Get*", "Resource": f"arn:aws:s3:::b{i:04}"} for i in range(60)
            ],
        }
        await credentials.mint(role, session_name="s", session_policy=json.dumps(big))


async def test_duration_bounds(services: tuple[IamService, CredentialService]) -> None:
    iam, credentials = services
    role = await iam.create_role("Photos", TRUST)  # MaxSessionDuration 3600
    with pytest.raises(ValidationError, match="MaxSessionDuration"):
        await credentials.mint(role, session_name="s", duration_seconds=3601)
    with pytest.raises(ValidationError, match="greater than or equal to 900"):
        await credentials.mint(role, session_name="s", duration_seconds=899)
    with pytest.raises(ValidationError, match="does not exist"):
        await credentials.mint(f"arn:aws:iam::{ACCOUNT}:role/Nobody", session_name="s")
    assert (await credentials.mint(role.arn, session_name="s", duration_seconds=900)).access_key_id


async def test_refused_credentials(services: tuple[IamService, CredentialService]) -> None:
    iam, _ = services
    credentials_key = SecretBox.generate_key()
    credentials = CredentialService(iam, credentials_key, account_id=ACCOUNT)
    role = await iam.create_role("Photos", TRUST)
    creds = await credentials.mint(role, session_name="s", web_identity=identity())
    headers = sign(creds)

    # A forged signature (wrong secret).
    class Forged:
        access_key_id = creds.access_key_id
        secret_access_key = "x" * 40
        session_token = creds.session_token

    with pytest.raises(InvalidSignatureException):
        await credentials.verify_request("GET", URL, sign(Forged()), b"")
    # A changed request (signed for another URL).
    with pytest.raises(InvalidSignatureException):
        await credentials.verify_request("GET", URL.replace("x.jpg", "y.jpg"), headers, b"")
    # A tampered session token: one character changed.
    tampered = creds.session_token[:-5] + ("A" if creds.session_token[-5] != "A" else "B") + creds.session_token[-4:]

    class Tampered:
        access_key_id = creds.access_key_id
        secret_access_key = creds.secret_access_key
        session_token = tampered

    with pytest.raises(UnrecognizedClientException):
        await credentials.verify_request("GET", URL, sign(Tampered()), b"")
    # Another session's token with this key id.
    other = await credentials.mint(role, session_name="t")

    class Swapped:
        access_key_id = creds.access_key_id
        secret_access_key = creds.secret_access_key
        session_token = other.session_token

    with pytest.raises(UnrecognizedClientException):
        await credentials.verify_request("GET", URL, sign(Swapped()), b"")
    # No session token at all.
    with pytest.raises(UnrecognizedClientException):
        await credentials.verify_request(
            "GET",
            URL,
            sign(
                type(
                    "NoToken", (), {"access_key_id": creds.access_key_id, "secret_access_key": creds.secret_access_key}
                )()
            ),
            b"",
        )
    # Expired: verified at a time past the expiry (the signature itself is checked against that time too).
    # (A verifier allowing an hour of clock skew, so that the signature is still current then.)
    lenient = CredentialService(iam, credentials_key, account_id=ACCOUNT, max_skew_seconds=3600)
    expired = await lenient.mint(role, session_name="s", duration_seconds=900)
    signed = SignedRequest("GET", "/photos/x.jpg", "versionId=3", sign(expired), b"")
    with pytest.raises(ExpiredSecurityToken):
        await lenient.verify_signed(signed, now=time.time() + 901)
    await lenient.verify_signed(signed, now=time.time() + 60)
    # Revoked: the role is deleted, then created again under the same name (a new unique id).
    await credentials.verify_request("GET", URL, headers, b"")
    await iam.delete_role("Photos")
    with pytest.raises(UnrecognizedClientException):
        await credentials.verify_request("GET", URL, headers, b"")
    await iam.create_role("Photos", TRUST)
    with pytest.raises(UnrecognizedClientException):
        await credentials.verify_request("GET", URL, headers, b"")


async def test_other_key_cannot_open_tokens(services: tuple[IamService, CredentialService]) -> None:
    iam, credentials = services
    role = await iam.create_role("Photos", TRUST)
    creds = await credentials.mint(role, session_name="s")
    elsewhere = CredentialService(iam, SecretBox.generate_key(), account_id=ACCOUNT)
    with pytest.raises(UnrecognizedClientException):
        elsewhere.open_session_token(creds.access_key_id, creds.session_token)
    with pytest.raises((InvalidSignatureException, UnrecognizedClientException)):
        await elsewhere.verify_request("GET", URL, sign(creds), b"")


async def test_presigned_url_with_temporary_credentials(services: tuple[IamService, CredentialService]) -> None:
    from botocore.auth import S3SigV4QueryAuth

    iam, credentials = services
    role = await iam.create_role("Photos", TRUST)
    creds = await credentials.mint(role, session_name="presign", web_identity=identity())
    request = AWSRequest(method="GET", url=URL)
    # botocore presigns S3 URLs with its S3 signer (payload UNSIGNED-PAYLOAD, path as sent), as every AWS SDK does.
    S3SigV4QueryAuth(
        Credentials(creds.access_key_id, creds.secret_access_key, creds.session_token), "s3", "us-east-1", expires=60
    ).add_auth(request)
    ctx = await credentials.verify_request("GET", request.url, {"Host": "files.example.com"}, b"")
    assert ctx.session_name == "presign"
    with pytest.raises(InvalidSignatureException):
        await credentials.verify_request(
            "GET", request.url.replace("versionId=3", "versionId=4"), {"Host": "files.example.com"}, b""
        )


async def test_revoking_older_sessions_with_a_token_issue_time_deny(
    services: tuple[IamService, CredentialService],
) -> None:
    """IAM's documented way to revoke a role's active sessions: a Deny on aws:TokenIssueTime before now."""
    iam, credentials = services
    role = await iam.create_role("Photos", TRUST)
    await iam.put_role_policy("Photos", "home", HOME)
    old = await credentials.mint(role, session_name="old", web_identity=identity())
    cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    revoke = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
        },
    }
    own = "arn:aws:s3:::photos/us-east-1:sub-1/x.jpg"
    before = await credentials.verify_request("GET", URL, sign(old), b"")
    assert credentials.is_allowed(before, "s3:GetObject", own)
    await iam.put_role_policy("Photos", "AWSRevokeOlderSessions", json.dumps(revoke))
    after = await credentials.verify_request("GET", URL, sign(old), b"")
    assert not credentials.is_allowed(after, "s3:GetObject", own)
