"""STS over the AWS query protocol against a real Gatehouse: AssumeRoleWithWebIdentity with tokens from a
Gatehouse user pool and from an external OIDC provider (a real HTTP server publishing its JWKS), the credentials
it returns used to sign GetCallerIdentity, botocore's web-identity credential provider end to end, the
verify endpoint, and the refusals: bad tokens, untrusted roles, forged signatures, tampered, expired and
revoked credentials."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.e2e.aws_support import ACCOUNT, aws_client, oidc_trust
from tests.oidc_fake import FakeOidcProvider
from tests.support import REGION, GatehouseServer, free_port

PASSWORD = "Correct-horse-1"


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oidc() -> Iterator[FakeOidcProvider]:
    provider = FakeOidcProvider()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def pool(idp: Any, gatehouse: GatehouseServer) -> dict[str, str]:
    pool_id = idp.create_user_pool(PoolName="sts")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    for username in ("alice", "bob"):
        idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    provider = f"127.0.0.1:{gatehouse.port}/{pool_id}"
    return {"pool_id": pool_id, "client_id": client_id, "provider": provider}


def id_token(public_idp: Any, pool: dict[str, str], username: str = "alice") -> str:
    result = public_idp.initiate_auth(
        ClientId=pool["client_id"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    return str(result["IdToken"])


HOME_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/chain-allowed"},
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": "arn:aws:s3:::home/${PROVIDER:sub}/*",
        },
        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::home/*/readonly/*"},
    ],
}


@pytest.fixture(scope="module")
def role(iam: Any, pool: dict[str, str]) -> dict[str, Any]:
    created = iam.create_role(
        RoleName="app-users",
        AssumeRolePolicyDocument=oidc_trust(pool["provider"], pool["client_id"]),
        MaxSessionDuration=7200,
    )["Role"]
    policy = json.dumps(HOME_POLICY).replace("PROVIDER", pool["provider"])
    iam.put_role_policy(RoleName="app-users", PolicyName="home", PolicyDocument=policy)
    return dict(created)


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def session_client(gatehouse: GatehouseServer, service: str, creds: dict[str, Any]) -> Any:
    return aws_client(service, gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


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


def signed_question(creds: dict[str, Any], url: str, **ask: Any) -> dict[str, Any]:
    request = AWSRequest(method="GET", url=url)
    credentials = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    SigV4Auth(credentials, "s3", REGION).add_auth(request)
    headers = {"Host": url.split("/")[2], **dict(request.headers.items())}
    return {"method": "GET", "url": url, "headers": headers, "body": "", **ask}


# --- AssumeRoleWithWebIdentity with a Gatehouse user pool token ----------------------------------------------


def test_assume_role_with_user_pool_id_token(
    gatehouse: GatehouseServer, sts: Any, public_idp: Any, pool: dict[str, str], role: dict[str, Any]
) -> None:
    token = id_token(public_idp, pool)
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    answer = sts.assume_role_with_web_identity(
        RoleArn=role["Arn"], RoleSessionName="alice-session", WebIdentityToken=token, DurationSeconds=1800
    )
    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["SecretAccessKey"]) == 40
    remaining = creds["Expiration"].timestamp() - time.time()
    assert 1700 < remaining <= 1800
    assert answer["SubjectFromWebIdentityToken"] == sub
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app-users/alice-session"
    assert answer["AssumedRoleUser"]["AssumedRoleId"] == f"{role['RoleId']}:alice-session"
    assert answer["Audience"] == pool["client_id"]
    assert answer["Provider"] == f"{gatehouse.url}/{pool['pool_id']}"

    # The credentials sign GetCallerIdentity (SigV4 with X-Amz-Security-Token).
    me = session_client(gatehouse, "sts", creds).get_caller_identity()
    assert (me["Account"], me["Arn"]) == (ACCOUNT, answer["AssumedRoleUser"]["Arn"])
    assert me["UserId"] == f"{role['RoleId']}:alice-session"

    # The verify endpoint: who is it, and may they do this?
    own = f"arn:aws:s3:::home/{sub}/photo.jpg"
    status, result = verify(
        gatehouse, signed_question(creds, "https://files.example/photo.jpg", action="s3:GetObject", resource=own)
    )
    assert status == 200 and result["Allowed"] is True
    assert result["Principal"]["Arn"] == answer["AssumedRoleUser"]["Arn"]
    assert result["Principal"]["IdentityId"] == sub
    other = "arn:aws:s3:::home/someone-else/photo.jpg"
    status, result = verify(
        gatehouse, signed_question(creds, "https://files.example/x", action="s3:GetObject", resource=other)
    )
    assert status == 200 and result["Allowed"] is False
    readonly = f"arn:aws:s3:::home/{sub}/readonly/a"
    status, result = verify(
        gatehouse, signed_question(creds, "https://files.example/x", action="s3:PutObject", resource=readonly)
    )
    assert status == 200 and result["Allowed"] is False  # the explicit deny wins


def test_botocore_web_identity_provider(
    gatehouse: GatehouseServer,
    public_idp: Any,
    pool: dict[str, str],
    role: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ENDPOINT_URL_STS: botocore's own credential chain."""
    token_file = tmp_path / "token"
    token_file.write_text(id_token(public_idp, pool, "bob"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ROLE_ARN", role["Arn"])
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "from-botocore")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", gatehouse.url)
    session = boto3.Session(region_name=REGION)
    credentials = session.get_credentials()
    assert credentials is not None and credentials.method == "assume-role-with-web-identity"
    me = session.client("sts").get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app-users/from-botocore"


# --- refusals of AssumeRoleWithWebIdentity -------------------------------------------------------------------


def test_untrusted_role_and_unknown_role_are_access_denied(
    iam: Any, sts: Any, public_idp: Any, pool: dict[str, str]
) -> None:
    token = id_token(public_idp, pool)
    iam.create_role(RoleName="other-app", AssumeRolePolicyDocument=oidc_trust(pool["provider"], "some-other-client"))
    for arn in (f"arn:aws:iam::{ACCOUNT}:role/other-app", f"arn:aws:iam::{ACCOUNT}:role/no-such-role"):
        with pytest.raises(ClientError) as denied:
            sts.assume_role_with_web_identity(RoleArn=arn, RoleSessionName="s1", WebIdentityToken=token)
        assert error_of(denied) == ("AccessDenied", 403)
    # A condition on sub: only bob may assume it.
    bob_sub = jwt.decode(id_token(public_idp, pool, "bob"), options={"verify_signature": False})["sub"]
    iam.create_role(
        RoleName="bob-only",
        AssumeRolePolicyDocument=oidc_trust(
            pool["provider"], pool["client_id"], **{f"{pool['provider']}:sub": bob_sub}
        ),
    )
    with pytest.raises(ClientError) as not_bob:
        sts.assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/bob-only", RoleSessionName="s1", WebIdentityToken=token
        )
    assert error_of(not_bob) == ("AccessDenied", 403)
    assert sts.assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/bob-only",
        RoleSessionName="s1",
        WebIdentityToken=id_token(public_idp, pool, "bob"),
    )["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_bad_tokens(sts: Any, public_idp: Any, pool: dict[str, str], role: dict[str, Any]) -> None:
    token = id_token(public_idp, pool)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    cases = {
        "not a jwt": "InvalidIdentityToken",
        f"{header}.{forged_payload}.{signature}": "InvalidIdentityToken",  # tampered
        jwt.encode({"iss": "https://unknown.example", "sub": "x", "aud": "y", "exp": 9999999999}, "k" * 32): (
            "InvalidIdentityToken"
        ),
    }
    for bad, code in cases.items():
        with pytest.raises(ClientError) as refused:
            sts.assume_role_with_web_identity(RoleArn=role["Arn"], RoleSessionName="s1", WebIdentityToken=bad)
        assert error_of(refused) == (code, 400), bad


def test_duration_and_session_policy_checks(
    gatehouse: GatehouseServer, public_idp: Any, pool: dict[str, str], role: dict[str, Any]
) -> None:
    # Without botocore's own parameter checks, so that the server's are what answers.
    sts = boto3.client(
        "sts",
        endpoint_url=gatehouse.url,
        region_name=REGION,
        config=Config(signature_version=UNSIGNED, parameter_validation=False, retries={"max_attempts": 1}),
    )
    token = id_token(public_idp, pool)
    with pytest.raises(ClientError) as too_long:
        sts.assume_role_with_web_identity(
            RoleArn=role["Arn"], RoleSessionName="s1", WebIdentityToken=token, DurationSeconds=7201
        )
    assert error_of(too_long) == ("ValidationError", 400)
    assert "MaxSessionDuration" in too_long.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as too_short:
        sts.assume_role_with_web_identity(
            RoleArn=role["Arn"], RoleSessionName="s1", WebIdentityToken=token, DurationSeconds=60
        )
    assert error_of(too_short) == ("ValidationError", 400)
    with pytest.raises(ClientError) as malformed:
        sts.assume_role_with_web_identity(
            RoleArn=role["Arn"], RoleSessionName="s1", WebIdentityToken=token, Policy="{nope"
        )
    assert error_of(malformed) == ("MalformedPolicyDocument", 400)
    with pytest.raises(ClientError) as bad_name:
        sts.assume_role_with_web_identity(RoleArn=role["Arn"], RoleSessionName="no spaces", WebIdentityToken=token)
    assert error_of(bad_name) == ("ValidationError", 400)


def test_session_policy_narrows_the_role(
    gatehouse: GatehouseServer, sts: Any, public_idp: Any, pool: dict[str, str], role: dict[str, Any]
) -> None:
    token = id_token(public_idp, pool)
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    read_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    answer = sts.assume_role_with_web_identity(
        RoleArn=role["Arn"], RoleSessionName="narrow", WebIdentityToken=token, Policy=json.dumps(read_only)
    )
    assert 0 < answer["PackedPolicySize"] <= 100
    creds = answer["Credentials"]
    own = f"arn:aws:s3:::home/{sub}/a"
    _, get = verify(gatehouse, signed_question(creds, "https://f.example/a", action="s3:GetObject", resource=own))
    _, put = verify(gatehouse, signed_question(creds, "https://f.example/a", action="s3:PutObject", resource=own))
    assert (get["Allowed"], put["Allowed"]) == (True, False)


# --- an external OIDC provider registered in IAM ---------------------------------------------------------------


def test_external_oidc_provider(iam: Any, sts: Any, oidc: FakeOidcProvider) -> None:
    provider = oidc.issuer.split("://", 1)[1]
    role_arn = iam.create_role(
        RoleName="external",
        AssumeRolePolicyDocument=oidc_trust(provider, "ext-app", **{f"{provider}:sub": "ext-user-1"}),
    )["Role"]["Arn"]
    # Not registered yet: no provider for the issuer.
    with pytest.raises(ClientError) as unregistered:
        sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=oidc.token())
    assert error_of(unregistered) == ("InvalidIdentityToken", 400)
    assert "No OpenIDConnect provider" in unregistered.value.response["Error"]["Message"]

    iam.create_open_id_connect_provider(Url=oidc.issuer, ClientIDList=["ext-app"], ThumbprintList=["0" * 40])
    answer = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=oidc.token())
    assert answer["SubjectFromWebIdentityToken"] == "ext-user-1"
    assert answer["Provider"] == oidc.issuer and answer["Audience"] == "ext-app"
    fetched = oidc.jwks_requests
    sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="s2", WebIdentityToken=oidc.token())
    assert oidc.jwks_requests == fetched  # the JWKS is cached

    refusals = {
        "aud not a client id": (oidc.token(aud="other-app"), "InvalidIdentityToken"),
        "expired": (oidc.token(exp=int(time.time()) - 3600), "ExpiredTokenException"),
        "signed by another key": (
            oidc.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "InvalidIdentityToken",
        ),
    }
    for name, (token, code) in refusals.items():
        with pytest.raises(ClientError) as refused:
            sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=token)
        assert error_of(refused) == (code, 400), name
    with pytest.raises(ClientError) as wrong_sub:
        sts.assume_role_with_web_identity(
            RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=oidc.token(sub="ext-user-2")
        )
    assert error_of(wrong_sub) == ("AccessDenied", 403)


# --- using the credentials: forged, tampered, revoked ----------------------------------------------------------


def test_forged_tampered_and_revoked_credentials(
    gatehouse: GatehouseServer, iam: Any, sts: Any, public_idp: Any, pool: dict[str, str]
) -> None:
    policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    )
    iam.create_role(RoleName="short-lived", AssumeRolePolicyDocument=oidc_trust(pool["provider"], pool["client_id"]))
    iam.put_role_policy(RoleName="short-lived", PolicyName="all-s3", PolicyDocument=policy)
    creds = sts.assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/short-lived",
        RoleSessionName="s1",
        WebIdentityToken=id_token(public_idp, pool),
    )["Credentials"]
    assert session_client(gatehouse, "sts", creds).get_caller_identity()["Account"] == ACCOUNT

    forged = session_client(gatehouse, "sts", {**creds, "SecretAccessKey": "x" * 40})
    with pytest.raises(ClientError) as bad_signature:
        forged.get_caller_identity()
    assert error_of(bad_signature) == ("SignatureDoesNotMatch", 403)

    token = creds["SessionToken"]
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    tampered = session_client(gatehouse, "sts", {**creds, "SessionToken": flipped})
    with pytest.raises(ClientError) as bad_token:
        tampered.get_caller_identity()
    assert error_of(bad_token) == ("InvalidClientTokenId", 403)

    # A session may call IAM only where its policy allows (it allows s3 only).
    with pytest.raises(ClientError) as no_iam:
        session_client(gatehouse, "iam", creds).list_roles()
    assert error_of(no_iam) == ("AccessDenied", 403)

    status, answer = verify(gatehouse, signed_question({**creds, "SessionToken": flipped}, "https://f.example/a"))
    assert (status, answer["__type"]) == (403, "InvalidClientTokenId")

    # Revoked: deleting the role refuses its sessions at once.
    iam.delete_role_policy(RoleName="short-lived", PolicyName="all-s3")
    iam.delete_role(RoleName="short-lived")
    with pytest.raises(ClientError) as revoked:
        session_client(gatehouse, "sts", creds).get_caller_identity()
    assert error_of(revoked) == ("InvalidClientTokenId", 403)
    status, answer = verify(gatehouse, signed_question(creds, "https://f.example/a", action="s3:GetObject"))
    assert (status, answer["__type"]) == (403, "InvalidClientTokenId")


def test_verify_endpoint_refuses_malformed_questions(gatehouse: GatehouseServer) -> None:
    status, answer = verify(gatehouse, {"method": "GET"})
    assert (status, answer["__type"]) == (400, "SerializationException")
    status, answer = verify(gatehouse, {"method": "GET", "url": "https://x.example/", "headers": {}})
    assert (status, answer["__type"]) == (403, "MissingAuthenticationTokenException")


def test_admin_get_caller_identity_and_assume_role(gatehouse: GatehouseServer, iam: Any) -> None:
    admin_sts = gatehouse.client("sts")
    me = admin_sts.get_caller_identity()
    assert (me["Account"], me["Arn"]) == (ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = iam.create_role(RoleName="ops", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    answer = admin_sts.assume_role(RoleArn=arn, RoleSessionName="ops-1")
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/ops-1"
    unsigned = boto3.client(
        "sts", endpoint_url=gatehouse.url, region_name=REGION, config=Config(signature_version=UNSIGNED)
    )
    with pytest.raises(ClientError) as missing:
        unsigned.assume_role(RoleArn=arn, RoleSessionName="xx")
    assert error_of(missing) == ("MissingAuthenticationToken", 403)


def test_role_chaining(
    gatehouse: GatehouseServer, iam: Any, sts: Any, public_idp: Any, pool: dict[str, str], role: dict[str, Any]
) -> None:
    """A web-identity session assumes a second role: allowed when the second role's trust names the first
    role, or names the account and the session's own policy allows sts:AssumeRole on it."""
    creds = sts.assume_role_with_web_identity(
        RoleArn=role["Arn"], RoleSessionName="first", WebIdentityToken=id_token(public_idp, pool)
    )["Credentials"]
    session_sts = session_client(gatehouse, "sts", creds)

    def trust(principal: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
            }
        )

    named = iam.create_role(RoleName="chain-named", AssumeRolePolicyDocument=trust(role["Arn"]))["Role"]["Arn"]
    answer = session_sts.assume_role(RoleArn=named, RoleSessionName="second")
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/chain-named/second"
    second = session_client(gatehouse, "sts", answer["Credentials"]).get_caller_identity()
    assert second["Arn"] == answer["AssumedRoleUser"]["Arn"]

    account_only = iam.create_role(
        RoleName="chain-account", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root")
    )["Role"]["Arn"]
    with pytest.raises(ClientError) as denied:
        session_sts.assume_role(RoleArn=account_only, RoleSessionName="second")
    assert error_of(denied) == ("AccessDenied", 403)  # app-users' policy does not allow sts:AssumeRole
    allowed = iam.create_role(RoleName="chain-allowed", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root"))[
        "Role"
    ]["Arn"]
    assert session_sts.assume_role(RoleArn=allowed, RoleSessionName="third")["Credentials"]["AccessKeyId"]
    stranger = iam.create_role(RoleName="chain-none", AssumeRolePolicyDocument=trust("arn:aws:iam::111111111111:root"))
    with pytest.raises(ClientError) as refused:
        session_sts.assume_role(RoleArn=stranger["Role"]["Arn"], RoleSessionName="second")
    assert error_of(refused) == ("AccessDenied", 403)


def test_role_chaining_keeps_the_sessions_denies_and_session_policy(
    gatehouse: GatehouseServer, iam: Any, sts: Any, public_idp: Any, pool: dict[str, str]
) -> None:
    """A trust policy naming the calling role (or its session) grants AssumeRole without the session's own
    policies allowing it, but not past them: an explicit Deny in the role's policies or in the session policy
    refuses it ("Policy evaluation logic": an explicit deny in any policy overrides any allow), and a session
    policy limits it unless the trust policy names the session itself ("Session policies", IAM User Guide)."""
    iam.create_role(RoleName="chain-src", AssumeRolePolicyDocument=oidc_trust(pool["provider"], pool["client_id"]))
    allow = {"Effect": "Allow", "Action": ["sts:AssumeRole", "files:*"], "Resource": "*"}

    def document(*statements: dict[str, Any]) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})

    iam.put_role_policy(RoleName="chain-src", PolicyName="own", PolicyDocument=document(allow))
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/chain-src/scoped"

    def trusting(name: str, principal: str) -> str:
        statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=document(statement))["Role"]["Arn"])

    by_role = trusting("chain-by-role", f"arn:aws:iam::{ACCOUNT}:role/chain-src")
    by_session = trusting("chain-by-session", session_arn)
    token = id_token(public_idp, pool)

    def outcomes(session_policy: dict[str, Any] | None) -> tuple[str, str]:
        extra = {"Policy": json.dumps(session_policy)} if session_policy else {}
        creds = sts.assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/chain-src", RoleSessionName="scoped", WebIdentityToken=token, **extra
        )["Credentials"]
        session_sts = session_client(gatehouse, "sts", creds)
        answers = []
        for target in (by_role, by_session):
            try:
                session_sts.assume_role(RoleArn=target, RoleSessionName="next")
                answers.append("allowed")
            except ClientError as exc:
                answers.append(str(exc.response["Error"]["Code"]))
        return answers[0], answers[1]

    only_files = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "files:Get", "Resource": "*"}]}
    deny = {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"}
    denying = {"Version": "2012-10-17", "Statement": [allow, deny]}
    assert outcomes(None) == ("allowed", "allowed")
    assert outcomes(only_files) == ("AccessDenied", "allowed")  # limits the role's grant, not the session's
    assert outcomes(denying) == ("AccessDenied", "AccessDenied")
    iam.put_role_policy(RoleName="chain-src", PolicyName="deny", PolicyDocument=document(deny))
    assert outcomes(None) == ("AccessDenied", "AccessDenied")


def test_role_chaining_honours_a_trust_deny_naming_the_caller_any_way(
    gatehouse: GatehouseServer, iam: Any, sts: Any, public_idp: Any, pool: dict[str, str]
) -> None:
    """One caller is its session, its role and its account at once: a trust policy's Deny naming any of them
    refuses the call whichever of them its Allow names ("Policy evaluation logic": an explicit deny wins; the
    NotPrincipal docs list all three names to exempt one session)."""
    iam.create_role(RoleName="deny-src", AssumeRolePolicyDocument=oidc_trust(pool["provider"], pool["client_id"]))
    own = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
    iam.put_role_policy(
        RoleName="deny-src", PolicyName="own", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [own]})
    )
    creds = sts.assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/deny-src",
        RoleSessionName="mallory",
        WebIdentityToken=id_token(public_idp, pool),
    )["Credentials"]
    session_sts = session_client(gatehouse, "sts", creds)
    names = {
        "session": f"arn:aws:sts::{ACCOUNT}:assumed-role/deny-src/mallory",
        "role": f"arn:aws:iam::{ACCOUNT}:role/deny-src",
        "account": f"arn:aws:iam::{ACCOUNT}:root",
    }

    def outcome(allowed: str, denied: str | None) -> str:
        statements = [{"Effect": "Allow", "Principal": {"AWS": names[allowed]}, "Action": "sts:AssumeRole"}]
        if denied is not None:
            statements.append({"Effect": "Deny", "Principal": {"AWS": names[denied]}, "Action": "sts:AssumeRole"})
        name = f"deny-tgt-{allowed}-{denied}"
        trust = json.dumps({"Version": "2012-10-17", "Statement": statements})
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        try:
            session_sts.assume_role(RoleArn=arn, RoleSessionName="next")
            return "allowed"
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    for allowed in names:
        assert outcome(allowed, None) == "allowed", allowed
        for denied in names:
            assert outcome(allowed, denied) == "AccessDenied", (allowed, denied)


def test_unreachable_identity_provider(iam: Any, sts: Any) -> None:
    issuer = f"http://127.0.0.1:{free_port()}/gone"  # nothing listens there
    provider = issuer.split("://", 1)[1]
    iam.create_open_id_connect_provider(Url=issuer, ClientIDList=["app"])
    role_arn = iam.create_role(RoleName="gone-users", AssumeRolePolicyDocument=oidc_trust(provider, "app"))["Role"][
        "Arn"
    ]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    token = jwt.encode(
        {"iss": issuer, "sub": "u", "aud": "app", "iat": now, "exp": now + 300},
        key,
        algorithm="RS256",
        headers={"kid": "k"},
    )
    with pytest.raises(ClientError) as unreachable:
        sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=token)
    assert error_of(unreachable) == ("IDPCommunicationError", 400)


# --- the query protocol by GET: a presigned GetCallerIdentity URL ---------------------------------------------


def test_a_presigned_get_caller_identity_url_names_its_signer(
    gatehouse: GatehouseServer, sts: Any, public_idp: Any, pool: dict[str, str], role: dict[str, Any]
) -> None:
    """A client hands a service a presigned GetCallerIdentity URL (botocore's generate_presigned_url); the service
    opens it with a GET and learns who signed it, as AWS STS answers such a URL. Tampered, expired and unsigned
    URLs get the query protocol's XML errors. (HttpMethod="GET", as `aws eks get-token` makes such a URL.)"""
    creds = sts.assume_role_with_web_identity(
        RoleArn=role["Arn"], RoleSessionName="presigned", WebIdentityToken=id_token(public_idp, pool)
    )["Credentials"]
    url = session_client(gatehouse, "sts", creds).generate_presigned_url(
        "get_caller_identity", ExpiresIn=60, HttpMethod="GET"
    )
    assert "Action=GetCallerIdentity" in url and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    assert f"<Arn>arn:aws:sts::{ACCOUNT}:assumed-role/app-users/presigned</Arn>" in text
    assert f"<UserId>{role['RoleId']}:presigned</UserId>" in text

    def refused(target: str) -> tuple[int, str]:
        try:
            urllib.request.urlopen(target, timeout=5)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        raise AssertionError(f"{target} was answered")

    # Another action under the same signature, a changed signature, no signature at all.
    status, body = refused(url.replace("Action=GetCallerIdentity", "Action=GetSessionToken"))
    assert status in (400, 403) and "<ErrorResponse" in body
    signature = url.rsplit("X-Amz-Signature=", 1)[1][:64]
    status, body = refused(url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:]))
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in body
    status, body = refused(f"{gatehouse.url}/?Action=GetCallerIdentity&Version=2011-06-15")
    assert status in (400, 403) and "<Code>MissingAuthenticationToken</Code>" in body
    # A GET naming no operation is the query protocol's InvalidAction, in XML.
    status, body = refused(f"{gatehouse.url}/")
    assert status == 400 and "<Code>InvalidAction</Code>" in body
