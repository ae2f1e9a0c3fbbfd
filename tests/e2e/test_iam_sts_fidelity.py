"""STS session tags, IAM size quotas and the SigV4 credential scope's region, against a real Gatehouse.

* Session tags need ``sts:TagSession`` in the role's trust policy (IAM User Guide, "Passing session tags in AWS
  STS", "Permissions required to add session tags"), and AssumeRole names that action when it refuses.
  Transitive tags (``TransitiveTagKeys``, the web identity token's ``transitive_tag_keys``) pass on to every
  chained session, cannot be overridden there, and the chained call needs ``sts:TagSession`` for them too
  (STS API Reference, AssumeRole ``Tags`` and ``TransitiveTagKeys``).
* IAM quotas (IAM User Guide, "IAM and AWS STS quotas"): a role trust policy of at most 2,048 characters, a
  role's inline policies of at most 10,240 characters together, white space not counted; a refused call leaves
  the role as it was.
* A request signed by Gatehouse's own APIs must be scoped to the server's region (IAM and STS: also
  ``us-east-1``, where AWS's global endpoints are signed): "Credential should be scoped to a valid region".

This module's server runs with ``region: eu-west-1``, so that the configured region and us-east-1 differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.aws_support import ACCOUNT, aws_client
from tests.oidc_fake import FakeOidcProvider
from tests.saml_idp_fake import FakeAwsSamlIdP, aws_attributes
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, GatehouseServer

SERVER_REGION = "eu-west-1"
ROOT = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
TAGS_CLAIM = "https://aws.amazon.com/tags"


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("fidelity") / "data"
    server = GatehouseServer(data_dir, config=f"version: 1\nserver:\n  region: {SERVER_REGION}\npools: []\n")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def iam(gatehouse: GatehouseServer) -> Any:
    return gatehouse.client("iam")  # signed for us-east-1, as IAM's global endpoint is


@pytest.fixture(scope="module")
def admin_sts(gatehouse: GatehouseServer) -> Any:
    return gatehouse.client("sts")


@pytest.fixture(scope="module")
def oidc() -> Iterator[FakeOidcProvider]:
    provider = FakeOidcProvider()
    provider.start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def oidc_federated(iam: Any, oidc: FakeOidcProvider) -> dict[str, Any]:
    """The fake OIDC provider registered in IAM: its trust-policy principal and an ``aud`` condition."""
    provider = oidc.issuer.split("://", 1)[1]
    iam.create_open_id_connect_provider(Url=oidc.issuer, ClientIDList=["ext-app"], ThumbprintList=["0" * 40])
    return {
        "principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}"},
        "condition": {"StringEquals": {f"{provider}:aud": "ext-app"}},
    }


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


def trust(principal: dict[str, Any], actions: list[str], condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": actions}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def session_client(gatehouse: GatehouseServer, service: str, creds: dict[str, Any], region: str | None = None) -> Any:
    client = aws_client(service, gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    if region is None:
        return client
    return signed_client(
        gatehouse, service, region, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]
    )


def signed_client(
    gatehouse: GatehouseServer, service: str, region: str, key: str, secret: str, token: str | None = None
) -> Any:
    """A boto3 client signing for ``region`` (tests.support's clients sign for us-east-1)."""
    return boto3.client(
        service,
        endpoint_url=gatehouse.url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def principal_of(gatehouse: GatehouseServer, creds: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    """What ``/gatehouse/verify`` says of a request signed with ``creds`` (an S3 GET signed for ``region``)."""
    principal: dict[str, Any] = verified(gatehouse, creds, region)["Principal"]
    return principal


def verified(gatehouse: GatehouseServer, creds: dict[str, Any], region: str = "us-east-1", **ask: Any) -> Any:
    """``/gatehouse/verify``'s whole answer for an S3 GET signed with ``creds`` (``ask``: action, resource...)."""
    url = "https://files.example/bucket/key"
    request = AWSRequest(method="GET", url=url, data=b"")
    SigV4Auth(
        Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]), "s3", region
    ).add_auth(request)
    headers = {"Host": "files.example", **dict(request.headers.items())}
    question = {"method": "GET", "url": url, "headers": headers, "body": "", **ask}
    http = urllib.request.Request(
        gatehouse.url + "/gatehouse/verify",
        data=json.dumps(question).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(http, timeout=5) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise AssertionError(f"verify refused: {error.code} {error.read()!r}") from error
    return answer


def tags(**pairs: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in pairs.items()]


# --- session tags ---------------------------------------------------------------------------------------------


def test_assume_role_tags_need_tag_session_and_the_refusal_names_it(iam: Any, admin_sts: Any) -> None:
    arn = iam.create_role(RoleName="tagless", AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole"]))["Role"]["Arn"]
    with pytest.raises(ClientError) as denied:
        admin_sts.assume_role(RoleArn=arn, RoleSessionName="s1", Tags=tags(team="red"))
    assert error_of(denied) == (
        "AccessDenied",
        403,
        f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: sts:TagSession on resource: {arn}",
    )
    # Without tags the same call is fine; with sts:TagSession in the trust policy the tagged one is too.
    assert admin_sts.assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    iam.update_assume_role_policy(RoleName="tagless", PolicyDocument=trust(ROOT, ["sts:AssumeRole", "sts:TagSession"]))
    assert admin_sts.assume_role(RoleArn=arn, RoleSessionName="s1", Tags=tags(team="red"))["Credentials"]


def test_transitive_tag_keys_must_name_tags_of_the_request(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    arn = iam.create_role(
        RoleName="transitive-check", AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole", "sts:TagSession"])
    )["Role"]["Arn"]
    with pytest.raises(ClientError) as not_a_tag:
        admin_sts.assume_role(RoleArn=arn, RoleSessionName="s1", Tags=tags(team="red"), TransitiveTagKeys=["cost"])
    assert error_of(not_a_tag) == (
        "InvalidParameterValue",
        400,
        "The specified transitive tag key must be included in the requested tags.",
    )
    with pytest.raises(ClientError) as no_tags:
        admin_sts.assume_role(RoleArn=arn, RoleSessionName="s1", TransitiveTagKeys=["team"])
    assert error_of(no_tags)[:2] == ("InvalidParameterValue", 400)
    # Tag keys are case-insensitive: two keys differing only in case are one key given twice.
    with pytest.raises(ClientError) as duplicate:
        admin_sts.assume_role(RoleArn=arn, RoleSessionName="s1", Tags=tags(team="red", Team="blue"))
    assert error_of(duplicate) == (
        "InvalidParameterValue",
        400,
        "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
    )
    # A transitive key matches its tag whatever its case.
    creds = admin_sts.assume_role(RoleArn=arn, RoleSessionName="s1", Tags=tags(team="red"), TransitiveTagKeys=["TEAM"])[
        "Credentials"
    ]
    assert principal_of(gatehouse, creds)["PrincipalTags"] == {"team": "red"}


def test_transitive_tags_pass_on_in_a_role_chain(gatehouse: GatehouseServer, iam: Any, admin_sts: Any) -> None:
    first = iam.create_role(
        RoleName="chain-first", AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole", "sts:TagSession"])
    )["Role"]["Arn"]
    second = iam.create_role(
        RoleName="chain-second", AssumeRolePolicyDocument=trust({"AWS": first}, ["sts:AssumeRole"])
    )["Role"]["Arn"]
    third = iam.create_role(
        RoleName="chain-third", AssumeRolePolicyDocument=trust({"AWS": second}, ["sts:AssumeRole", "sts:TagSession"])
    )["Role"]["Arn"]
    creds = admin_sts.assume_role(
        RoleArn=first, RoleSessionName="one", Tags=tags(team="red", cost="c1"), TransitiveTagKeys=["team"]
    )["Credentials"]
    assert principal_of(gatehouse, creds)["PrincipalTags"] == {"team": "red", "cost": "c1"}
    first_sts = session_client(gatehouse, "sts", creds)

    # The incoming transitive tag is a session tag of the chained session: the next trust policy must allow
    # sts:TagSession, and the refusal says so.
    with pytest.raises(ClientError) as denied:
        first_sts.assume_role(RoleArn=second, RoleSessionName="two")
    assert error_of(denied) == (
        "AccessDenied",
        403,
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/chain-first/one is not authorized to perform: sts:TagSession "
        f"on resource: {second}",
    )
    iam.update_assume_role_policy(
        RoleName="chain-second",
        PolicyDocument=trust(
            {"AWS": first}, ["sts:AssumeRole", "sts:TagSession"], {"StringEquals": {"aws:RequestTag/team": "red"}}
        ),
    )
    # A transitive tag cannot be overridden down the chain, in any case of its key.
    for key in ("team", "TEAM"):
        with pytest.raises(ClientError) as overridden:
            first_sts.assume_role(RoleArn=second, RoleSessionName="two", Tags=[{"Key": key, "Value": "blue"}])
        assert error_of(overridden) == (
            "InvalidParameterValue",
            400,
            "One of the specified transitive tag keys can't be set because it conflicts with a transitive tag key "
            "from the calling session.",
        )
    # Only the transitive tag is carried; new tags join it (and may be transitive themselves).
    chained = first_sts.assume_role(
        RoleArn=second, RoleSessionName="two", Tags=tags(project="p9"), TransitiveTagKeys=["project"]
    )["Credentials"]
    assert principal_of(gatehouse, chained)["PrincipalTags"] == {"team": "red", "project": "p9"}
    # Transitive stays transitive: the third session still carries both.
    third_creds = session_client(gatehouse, "sts", chained).assume_role(RoleArn=third, RoleSessionName="three")[
        "Credentials"
    ]
    assert principal_of(gatehouse, third_creds)["PrincipalTags"] == {"team": "red", "project": "p9"}
    # A session without transitive tags passes none on (the first hop's "cost" never travelled).
    plain = admin_sts.assume_role(RoleArn=first, RoleSessionName="plain", Tags=tags(team="red"))["Credentials"]
    iam.update_assume_role_policy(RoleName="chain-second", PolicyDocument=trust({"AWS": first}, ["sts:AssumeRole"]))
    untagged = session_client(gatehouse, "sts", plain).assume_role(RoleArn=second, RoleSessionName="two")
    assert principal_of(gatehouse, untagged["Credentials"])["PrincipalTags"] == {}


def test_web_identity_transitive_tags_pass_on(
    gatehouse: GatehouseServer, iam: Any, oidc: FakeOidcProvider, oidc_federated: dict[str, Any]
) -> None:
    federated, condition = oidc_federated["principal"], oidc_federated["condition"]
    web_role = iam.create_role(
        RoleName="web-tags", AssumeRolePolicyDocument=trust(federated, ["sts:AssumeRoleWithWebIdentity"], condition)
    )["Role"]["Arn"]
    target = iam.create_role(
        RoleName="web-next", AssumeRolePolicyDocument=trust({"AWS": web_role}, ["sts:AssumeRole", "sts:TagSession"])
    )["Role"]["Arn"]
    claim = {TAGS_CLAIM: {"principal_tags": {"team": ["red"], "cost": ["c1"]}, "transitive_tag_keys": ["team"]}}
    sts = gatehouse.client("sts", signed=False)
    with pytest.raises(ClientError) as denied:  # tags in the token need sts:TagSession too
        sts.assume_role_with_web_identity(RoleArn=web_role, RoleSessionName="web", WebIdentityToken=oidc.token(**claim))
    assert error_of(denied)[:2] == ("AccessDenied", 403)
    iam.update_assume_role_policy(
        RoleName="web-tags",
        PolicyDocument=trust(federated, ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"], condition),
    )
    creds = sts.assume_role_with_web_identity(
        RoleArn=web_role, RoleSessionName="web", WebIdentityToken=oidc.token(**claim)
    )["Credentials"]
    assert principal_of(gatehouse, creds)["PrincipalTags"] == {"team": "red", "cost": "c1"}
    web_sts = session_client(gatehouse, "sts", creds)
    with pytest.raises(ClientError) as overridden:
        web_sts.assume_role(RoleArn=target, RoleSessionName="next", Tags=tags(Team="blue"))
    assert error_of(overridden)[:2] == ("InvalidParameterValue", 400)
    chained = web_sts.assume_role(RoleArn=target, RoleSessionName="next")["Credentials"]
    assert principal_of(gatehouse, chained)["PrincipalTags"] == {"team": "red"}


def test_saml_transitive_tags_pass_on(gatehouse: GatehouseServer, iam: Any) -> None:
    """The assertion's ``TransitiveTagKeys`` attribute marks which ``PrincipalTag:*`` attributes pass on."""
    idp = FakeAwsSamlIdP()
    provider = iam.create_saml_provider(Name="fidelity-corp", SAMLMetadataDocument=idp.metadata_xml())[
        "SAMLProviderArn"
    ]
    federated = {"Federated": provider}
    saml_role = iam.create_role(
        RoleName="saml-tags", AssumeRolePolicyDocument=trust(federated, ["sts:AssumeRoleWithSAML"])
    )["Role"]["Arn"]
    target = iam.create_role(
        RoleName="saml-next", AssumeRolePolicyDocument=trust({"AWS": saml_role}, ["sts:AssumeRole", "sts:TagSession"])
    )["Role"]["Arn"]
    attributes = aws_attributes(
        saml_role,
        provider,
        **{"PrincipalTag:team": ["red"], "PrincipalTag:cost": ["c1"], "TransitiveTagKeys": ["Team"]},
    )
    sts = gatehouse.client("sts", signed=False)
    with pytest.raises(ClientError) as denied:  # the assertion's tags need sts:TagSession
        sts.assume_role_with_saml(RoleArn=saml_role, PrincipalArn=provider, SAMLAssertion=idp.response(attributes))
    assert error_of(denied)[:2] == ("AccessDenied", 403)
    iam.update_assume_role_policy(
        RoleName="saml-tags", PolicyDocument=trust(federated, ["sts:AssumeRoleWithSAML", "sts:TagSession"])
    )
    creds = sts.assume_role_with_saml(RoleArn=saml_role, PrincipalArn=provider, SAMLAssertion=idp.response(attributes))[
        "Credentials"
    ]
    assert principal_of(gatehouse, creds)["PrincipalTags"] == {"team": "red", "cost": "c1"}
    chained = session_client(gatehouse, "sts", creds).assume_role(RoleArn=target, RoleSessionName="next")
    assert principal_of(gatehouse, chained["Credentials"])["PrincipalTags"] == {"team": "red"}


def test_role_tags_are_principal_tags_unless_a_session_tag_overrides_them(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    """IAM User Guide, "Passing session tags in AWS STS": a session's principal tags are its session tags, its
    incoming transitive tags and the tags of its role; a session tag overrides a role tag of the same key, in
    any case."""
    arn = iam.create_role(
        RoleName="tagged-role",
        AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole", "sts:TagSession"]),
        Tags=tags(team="red", dept="ops"),
    )["Role"]["Arn"]
    read_when_red = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::bucket/*",
                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "red"}},
            }
        ],
    }
    iam.put_role_policy(RoleName="tagged-role", PolicyName="abac", PolicyDocument=json.dumps(read_when_red))
    ask = {"action": "s3:GetObject", "resource": "arn:aws:s3:::bucket/key"}
    plain = admin_sts.assume_role(RoleArn=arn, RoleSessionName="plain")["Credentials"]
    answer = verified(gatehouse, plain, **ask)
    assert answer["Principal"]["PrincipalTags"] == {"team": "red", "dept": "ops"}
    assert answer["Allowed"] is True
    blue = admin_sts.assume_role(RoleArn=arn, RoleSessionName="blue", Tags=tags(Team="blue"))["Credentials"]
    answer = verified(gatehouse, blue, **ask)
    assert answer["Principal"]["PrincipalTags"] == {"Team": "blue", "dept": "ops"}
    assert answer["Allowed"] is False


def test_chained_trust_policy_sees_the_callers_principal_tags(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    """A trust policy may test the calling session's ``aws:PrincipalTag/*`` (session and role tags alike): the
    usual ABAC gate on role chaining."""
    source = iam.create_role(
        RoleName="abac-source", AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole", "sts:TagSession"])
    )["Role"]["Arn"]
    gated = iam.create_role(
        RoleName="abac-gated",
        AssumeRolePolicyDocument=trust(
            {"AWS": source}, ["sts:AssumeRole"], {"StringEquals": {"aws:PrincipalTag/team": "red"}}
        ),
    )["Role"]["Arn"]
    red = admin_sts.assume_role(RoleArn=source, RoleSessionName="red", Tags=tags(team="red"))["Credentials"]
    blue = admin_sts.assume_role(RoleArn=source, RoleSessionName="blue", Tags=tags(team="blue"))["Credentials"]
    assert session_client(gatehouse, "sts", red).assume_role(RoleArn=gated, RoleSessionName="in")["Credentials"]
    with pytest.raises(ClientError) as denied:
        session_client(gatehouse, "sts", blue).assume_role(RoleArn=gated, RoleSessionName="in")
    assert error_of(denied)[:2] == ("AccessDenied", 403)


# --- XML 1.0 answers ---------------------------------------------------------------------------------------------


def test_query_answers_stay_well_formed_xml_with_control_characters(
    gatehouse: GatehouseServer, iam: Any, oidc: FakeOidcProvider, oidc_federated: dict[str, Any]
) -> None:
    """XML 1.0 has no way to write most C0 control characters, escaped or not: an error message echoing the
    input, or an answer carrying a token's claim, must still be a document boto3 can parse."""
    document = trust(ROOT, ["sts:AssumeRole"], {"StringEquals": {"sts:ExternalId": "a-b"}}).replace("a-b", "a\x01b")
    with pytest.raises(ClientError) as refused:
        iam.create_role(RoleName="control-chars", AssumeRolePolicyDocument=document)
    assert error_of(refused)[:2] == ("ValidationError", 400)
    with pytest.raises(ClientError) as absent:
        iam.get_role(RoleName="control-chars")
    assert error_of(absent)[0] == "NoSuchEntity"

    role = iam.create_role(
        RoleName="web-control",
        AssumeRolePolicyDocument=trust(
            oidc_federated["principal"], ["sts:AssumeRoleWithWebIdentity"], oidc_federated["condition"]
        ),
    )["Role"]["Arn"]
    sts = gatehouse.client("sts", signed=False)
    answer = sts.assume_role_with_web_identity(
        RoleArn=role, RoleSessionName="ctl", WebIdentityToken=oidc.token(sub="user\u0001\u001f-7")
    )
    assert answer["SubjectFromWebIdentityToken"].startswith("user") and answer["Credentials"]["AccessKeyId"]


# --- IAM quotas -------------------------------------------------------------------------------------------------


def padded_trust(characters: int, *, spaces: int = 0) -> str:
    """A valid trust policy of exactly ``characters`` characters that are not white space, plus ``spaces``."""
    base = trust(ROOT, ["sts:AssumeRole"], {"StringEquals": {"sts:ExternalId": ""}})
    compact = "".join(base.split())
    pad = characters - len(compact)
    assert pad > 0
    document = base.replace('"sts:ExternalId": ""', f'"sts:ExternalId": "{"x" * pad}"')
    assert len("".join(document.split())) == characters
    return document + " " * spaces


def padded_policy(characters: int, *, spaces: int = 0) -> str:
    """A valid identity policy of exactly ``characters`` characters that are not white space, plus ``spaces``."""
    base = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": ""}]}
    )
    compact = "".join(base.split())
    pad = characters - len(compact)
    document = base.replace('"Resource": ""', f'"Resource": "arn:aws:s3:::{"x" * (pad - 13)}"')
    assert len("".join(document.split())) == characters
    return document + "\n" * spaces


def test_trust_policy_size_quota(iam: Any) -> None:
    with pytest.raises(ClientError) as too_long:
        iam.create_role(RoleName="big-trust", AssumeRolePolicyDocument=padded_trust(2049))
    assert error_of(too_long) == ("LimitExceeded", 409, "Cannot exceed quota for ACLSizePerRole: 2048")
    with pytest.raises(ClientError) as absent:
        iam.get_role(RoleName="big-trust")
    assert error_of(absent)[0] == "NoSuchEntity"

    # White space is not counted: 2,048 characters and a lot of spaces are within the quota.
    at_quota = padded_trust(2048, spaces=500)
    iam.create_role(RoleName="big-trust", AssumeRolePolicyDocument=at_quota)
    with pytest.raises(ClientError) as update:
        iam.update_assume_role_policy(RoleName="big-trust", PolicyDocument=padded_trust(2049))
    assert error_of(update) == ("LimitExceeded", 409, "Cannot exceed quota for ACLSizePerRole: 2048")
    stored = iam.get_role(RoleName="big-trust")["Role"]["AssumeRolePolicyDocument"]
    assert stored == json.loads(at_quota)  # unchanged by the refused update


def test_inline_role_policies_size_quota(iam: Any) -> None:
    iam.create_role(RoleName="big-inline", AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole"]))
    # 6,000 + 4,240 = 10,240 characters that are not white space, plus plenty that is: accepted.
    iam.put_role_policy(RoleName="big-inline", PolicyName="a", PolicyDocument=padded_policy(6000, spaces=3000))
    iam.put_role_policy(RoleName="big-inline", PolicyName="b", PolicyDocument=padded_policy(4240, spaces=3000))
    with pytest.raises(ClientError) as over:
        iam.put_role_policy(RoleName="big-inline", PolicyName="c", PolicyDocument=padded_policy(200))
    assert error_of(over) == ("LimitExceeded", 409, "Maximum policy size of 10240 bytes exceeded for role big-inline")
    # Replacing a policy counts its new size in place of its old one.
    with pytest.raises(ClientError) as grown:
        iam.put_role_policy(RoleName="big-inline", PolicyName="b", PolicyDocument=padded_policy(4241))
    assert error_of(grown)[:2] == ("LimitExceeded", 409)
    assert sorted(iam.list_role_policies(RoleName="big-inline")["PolicyNames"]) == ["a", "b"]
    kept = iam.get_role_policy(RoleName="big-inline", PolicyName="b")["PolicyDocument"]
    assert kept == json.loads(padded_policy(4240))
    iam.put_role_policy(RoleName="big-inline", PolicyName="b", PolicyDocument=padded_policy(4000))
    iam.put_role_policy(RoleName="big-inline", PolicyName="c", PolicyDocument=padded_policy(240))


# --- the credential scope's region --------------------------------------------------------------------------------


def admin(gatehouse: GatehouseServer, service: str, region: str) -> Any:
    return signed_client(gatehouse, service, region, ADMIN_KEY_ID, ADMIN_SECRET)


def test_json_services_need_the_servers_region(gatehouse: GatehouseServer) -> None:
    idp = admin(gatehouse, "cognito-idp", SERVER_REGION)
    before = idp.list_user_pools(MaxResults=60)["UserPools"]
    for region in ("us-east-1", "ap-south-1"):
        other = admin(gatehouse, "cognito-idp", region)
        with pytest.raises(ClientError) as refused:
            other.create_user_pool(PoolName="elsewhere")
        assert error_of(refused) == (
            "InvalidSignatureException",
            403,
            f"Credential should be scoped to a valid region, not '{region}'.",
        )
        with pytest.raises(ClientError) as identity_refused:
            admin(gatehouse, "cognito-identity", region).list_identity_pools(MaxResults=10)
        assert error_of(identity_refused)[:2] == ("InvalidSignatureException", 403)
    assert idp.list_user_pools(MaxResults=60)["UserPools"] == before
    assert admin(gatehouse, "cognito-identity", SERVER_REGION).list_identity_pools(MaxResults=10)["IdentityPools"] == []


def test_iam_and_sts_take_the_servers_region_and_us_east_1(gatehouse: GatehouseServer, iam: Any) -> None:
    assert admin(gatehouse, "iam", SERVER_REGION).list_roles()["Roles"] is not None
    other_iam = admin(gatehouse, "iam", "ap-south-1")
    with pytest.raises(ClientError) as refused:
        other_iam.create_role(RoleName="elsewhere", AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole"]))
    assert error_of(refused) == (
        "SignatureDoesNotMatch",
        403,
        "Credential should be scoped to a valid region, not 'ap-south-1'.",
    )
    with pytest.raises(ClientError) as absent:
        iam.get_role(RoleName="elsewhere")
    assert error_of(absent)[0] == "NoSuchEntity"

    for region in ("us-east-1", SERVER_REGION):
        assert admin(gatehouse, "sts", region).get_caller_identity()["Account"] == ACCOUNT
    with pytest.raises(ClientError) as sts_refused:
        admin(gatehouse, "sts", "ap-south-1").get_caller_identity()
    assert error_of(sts_refused)[:2] == ("SignatureDoesNotMatch", 403)


def test_sessions_calling_gatehouse_apis_are_held_to_the_region_but_verify_is_not(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    arn = iam.create_role(RoleName="region-session", AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole"]))["Role"][
        "Arn"
    ]
    creds = admin_sts.assume_role(RoleArn=arn, RoleSessionName="rs")["Credentials"]
    for region in ("us-east-1", SERVER_REGION):
        me = session_client(gatehouse, "sts", creds, region).get_caller_identity()
        assert me["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/region-session/rs"
    with pytest.raises(ClientError) as refused:
        session_client(gatehouse, "sts", creds, "ap-south-1").get_caller_identity()
    assert error_of(refused) == (
        "SignatureDoesNotMatch",
        403,
        "Credential should be scoped to a valid region, not 'ap-south-1'.",
    )
    # The verify endpoint checks requests meant for other services, in whatever region they are signed for.
    assert principal_of(gatehouse, creds, region="ap-south-1")["Region"] == "ap-south-1"


def test_region_check_does_not_hide_a_bad_signature(gatehouse: GatehouseServer) -> None:
    """A request in the right region with a wrong secret is still refused for its signature."""
    wrong = signed_client(gatehouse, "iam", "us-east-1", ADMIN_KEY_ID, "not-the-secret")
    with pytest.raises(ClientError) as refused:
        wrong.list_roles()
    assert error_of(refused)[:2] == ("SignatureDoesNotMatch", 403)
    assert "region" not in error_of(refused)[2]


# --- the config file (last: it restarts the module's server) --------------------------------------------------------


def config_with_role(policies: dict[str, str]) -> str:
    role = {
        "name": "declared-big",
        "trust_policy": trust(ROOT, ["sts:AssumeRole"]),
        "policies": {name: json.loads(document) for name, document in policies.items()},
    }
    return f"version: 1\nserver:\n  region: {SERVER_REGION}\npools: []\niam:\n  roles: [{json.dumps(role)}]\n"


def test_config_file_swapping_large_inline_policies(gatehouse: GatehouseServer) -> None:
    """A file that replaces one large inline policy by another stays within the 10,240-character quota at
    every step: the policy it drops goes before the one it adds comes."""
    assert gatehouse.config_path is not None
    for policies in ({"first": padded_policy(6000)}, {"second": padded_policy(6000)}):
        gatehouse.stop()
        gatehouse.config_path.write_text(config_with_role(policies))
        gatehouse.start()
        iam = signed_client(gatehouse, "iam", "us-east-1", ADMIN_KEY_ID, ADMIN_SECRET)
        assert iam.list_role_policies(RoleName="declared-big")["PolicyNames"] == list(policies)


def test_config_check_applies_the_size_quotas(tmp_path: Path) -> None:
    """``gatehouse config check`` refuses a file that ``serve`` could not apply: a trust policy or a role's inline
    policies beyond IAM's quotas (white space not counted)."""
    cases = {
        "trust": {"name": "r", "trust_policy": json.loads(padded_trust(2049))},
        "inline": {
            "name": "r",
            "trust_policy": json.loads(trust(ROOT, ["sts:AssumeRole"])),
            "policies": {"a": json.loads(padded_policy(6000)), "b": json.loads(padded_policy(4241))},
        },
    }
    for name, role in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"version: 1\npools: []\niam:\n  roles: [{json.dumps(role)}]\n")
        result = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "config", "check", str(path)], capture_output=True, text=True
        )
        assert result.returncode == 1, (name, result.stdout)
        assert "iam.roles[0]" in result.stderr and "quota" in result.stderr, result.stderr
    within = tmp_path / "within.yaml"
    role = {
        "name": "r",
        "trust_policy": json.loads(padded_trust(2048)),
        "policies": {"a": json.loads(padded_policy(10240))},
    }
    within.write_text(f"version: 1\npools: []\niam:\n  roles: [{json.dumps(role)}]\n")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", str(within)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
