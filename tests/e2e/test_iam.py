"""IAM over the AWS query protocol: boto3's ``iam`` client against a real Gatehouse."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer

ACCOUNT = "000000000000"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Federated": "cognito-identity.amazonaws.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": "us-east-1:pool"}},
        }
    ],
}
READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_role_lifecycle(iam: Any) -> None:
    created = iam.create_role(
        RoleName="Photos",
        Path="/app/",
        AssumeRolePolicyDocument=json.dumps(TRUST),
        Description="photo readers",
        MaxSessionDuration=7200,
        Tags=[{"Key": "team", "Value": "media"}],
    )["Role"]
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/app/Photos"
    assert created["RoleId"].startswith("AROA")
    assert created["AssumeRolePolicyDocument"] == TRUST  # botocore decodes IAM's URL-encoded documents
    assert created["Tags"] == [{"Key": "team", "Value": "media"}]

    role = iam.get_role(RoleName="Photos")["Role"]
    assert (role["RoleName"], role["Path"], role["MaxSessionDuration"]) == ("Photos", "/app/", 7200)
    assert role["Description"] == "photo readers"
    assert role["CreateDate"].year >= 2024
    assert iam.get_role(RoleName="photos")["Role"]["RoleId"] == created["RoleId"]  # names ignore case

    iam.put_role_policy(RoleName="Photos", PolicyName="read", PolicyDocument=json.dumps(READ))
    iam.put_role_policy(RoleName="Photos", PolicyName="again", PolicyDocument=json.dumps(READ))
    assert iam.list_role_policies(RoleName="Photos")["PolicyNames"] == ["again", "read"]
    got = iam.get_role_policy(RoleName="Photos", PolicyName="read")
    assert (got["RoleName"], got["PolicyName"], got["PolicyDocument"]) == ("Photos", "read", READ)

    with pytest.raises(ClientError) as conflict:
        iam.delete_role(RoleName="Photos")
    assert error_of(conflict) == ("DeleteConflict", 409)
    iam.delete_role_policy(RoleName="Photos", PolicyName="read")
    iam.delete_role_policy(RoleName="Photos", PolicyName="again")
    iam.delete_role(RoleName="Photos")
    with pytest.raises(iam.exceptions.NoSuchEntityException) as gone:
        iam.get_role(RoleName="Photos")
    assert error_of(gone) == ("NoSuchEntity", 404)


def test_list_roles_pages_and_path_prefix(iam: Any) -> None:
    for index in range(5):
        iam.create_role(
            RoleName=f"list-{index}", Path="/listed/" if index % 2 else "/", AssumeRolePolicyDocument=json.dumps(TRUST)
        )
    first = iam.list_roles(MaxItems=2)
    assert first["IsTruncated"] is True and len(first["Roles"]) == 2
    names: list[str] = []
    for page in iam.get_paginator("list_roles").paginate(PaginationConfig={"PageSize": 2}):
        names += [r["RoleName"] for r in page["Roles"]]
    assert [n for n in names if n.startswith("list-")] == [f"list-{i}" for i in range(5)]
    listed = iam.list_roles(PathPrefix="/listed/")["Roles"]
    assert sorted(r["RoleName"] for r in listed) == ["list-1", "list-3"]
    # A page that ends with the last matching role says there are no more, though other roles follow it.
    pages = [
        ([r["RoleName"] for r in page["Roles"]], page["IsTruncated"])
        for page in iam.get_paginator("list_roles").paginate(PathPrefix="/listed/", PaginationConfig={"PageSize": 1})
    ]
    assert pages == [(["list-1"], True), (["list-3"], False)]
    last = iam.list_roles(PathPrefix="/listed/", MaxItems=2)
    assert last["IsTruncated"] is False and "Marker" not in last


def test_errors(iam: Any) -> None:
    iam.create_role(RoleName="Dup", AssumeRolePolicyDocument=json.dumps(TRUST))
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException) as dup:
        iam.create_role(RoleName="DUP", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert error_of(dup) == ("EntityAlreadyExists", 409)
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.create_role(RoleName="Bad", AssumeRolePolicyDocument="{not json")
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.put_role_policy(RoleName="Dup", PolicyName="p", PolicyDocument='{"Statement": {"Effect": "Allow"}}')
    with pytest.raises(ClientError) as invalid:
        iam.create_role(RoleName="has space", AssumeRolePolicyDocument=json.dumps(TRUST))
    code, status = error_of(invalid)
    assert (code, status) == ("ValidationError", 400)
    assert "roleName" in invalid.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as too_long:
        iam.create_role(RoleName="Long", AssumeRolePolicyDocument=json.dumps(TRUST), MaxSessionDuration=50000)
    assert error_of(too_long) == ("ValidationError", 400)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role_policy(RoleName="Dup", PolicyName="missing")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.put_role_policy(RoleName="Missing", PolicyName="p", PolicyDocument=json.dumps(READ))
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.delete_role(RoleName="Missing")
    assert iam.list_roles(PathPrefix="/none/")["Roles"] == []


def test_oidc_providers(iam: Any) -> None:
    arn = iam.create_open_id_connect_provider(
        Url="https://idp.example.com/tenant",
        ClientIDList=["app-1", "app-2"],
        ThumbprintList=["a" * 40],
        Tags=[{"Key": "k", "Value": "v"}],
    )["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example.com/tenant"
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert (got["Url"], got["ClientIDList"], got["ThumbprintList"]) == (
        "idp.example.com/tenant",
        ["app-1", "app-2"],
        ["a" * 40],
    )
    assert got["Tags"] == [{"Key": "k", "Value": "v"}]
    assert {"Arn": arn} in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_open_id_connect_provider(Url="https://idp.example.com/tenant", ClientIDList=["x"])
    with pytest.raises(iam.exceptions.InvalidInputException):
        iam.create_open_id_connect_provider(Url="ftp://idp.example.com", ClientIDList=["x"])
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


def test_hostile_list_indexes_and_types(gatehouse: GatehouseServer) -> None:
    """Form fields botocore would never send: a non-numeric list index, a non-numeric integer."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION

    def signed_post(body: str) -> tuple[int, str]:
        request = AWSRequest(
            method="POST",
            url=gatehouse.url + "/",
            data=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        SigV4Auth(Credentials(ADMIN_KEY_ID, ADMIN_SECRET), "iam", REGION).add_auth(request)
        prepared = request.prepare()
        http = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers.items()))
        try:
            with urllib.request.urlopen(http, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    trust = urllib.parse.quote(json.dumps(TRUST))
    base = f"Action=CreateRole&Version=2010-05-08&RoleName=Hostile&AssumeRolePolicyDocument={trust}"
    status, text = signed_post(base + "&Tags.member.x.Key=a&Tags.member.x.Value=b")
    assert status == 400 and "<Code>ValidationError</Code>" in text
    status, text = signed_post(base + "&MaxSessionDuration=lots")
    assert status == 400 and "<Code>ValidationError</Code>" in text
    status, text = signed_post("Action=ListRoles&Version=2010-05-08&MaxItems=0")
    assert status == 400 and "<Code>ValidationError</Code>" in text
    status, _ = signed_post("Action=GetRole&Version=2010-05-08&RoleName=Hostile")
    assert status == 404  # nothing was created


def test_unsigned_and_forged_calls_are_refused(gatehouse: GatehouseServer) -> None:
    unsigned = gatehouse.client("iam", signed=False)
    with pytest.raises(ClientError) as missing:
        unsigned.list_roles()
    assert error_of(missing) == ("MissingAuthenticationToken", 403)
    forged = gatehouse.client("iam", secret="not-the-secret")
    with pytest.raises(ClientError) as bad:
        forged.create_role(RoleName="Forged", AssumeRolePolicyDocument=json.dumps(TRUST))
    assert error_of(bad) == ("SignatureDoesNotMatch", 403)
    stranger = gatehouse.client("iam", key_id="AKIDUNKNOWN")
    with pytest.raises(ClientError) as unknown:
        stranger.list_roles()
    assert error_of(unknown) == ("InvalidClientTokenId", 403)
    # Nothing was created by the refused calls.
    with pytest.raises(ClientError):
        gatehouse.client("iam").get_role(RoleName="Forged")


def post_form(gatehouse: GatehouseServer, body: bytes) -> tuple[int, str]:
    """An unsigned query-protocol request: the status and the body."""
    request = urllib.request.Request(
        gatehouse.url + "/", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_malformed_query_requests(gatehouse: GatehouseServer) -> None:
    def post(body: bytes) -> tuple[int, str]:
        return post_form(gatehouse, body)

    status, text = post(b"Action=NoSuchThing&Version=2010-05-08")
    assert status == 400 and "<Code>InvalidAction</Code>" in text and "<ErrorResponse" in text
    status, text = post(b"Action=ListRoles&Version=2010-05-08")
    assert status == 403 and "<Code>MissingAuthenticationToken</Code>" in text
    status, text = post(b"\xff\xfe")
    assert status == 400 and "<Code>" in text
    status, text = post(b"&".join(b"a%d=1" % i for i in range(3000)) + b"&Action=ListRoles&Version=2010-05-08")
    assert status == 400 and "<Code>ValidationError</Code>" in text


def test_an_operation_is_found_only_in_the_version_it_is_asked_of(gatehouse: GatehouseServer) -> None:
    """As AWS's query services: Action names an operation of one API version; a request of another version, or
    of none, asks for an operation the service does not have."""

    def post(body: bytes) -> tuple[int, str]:
        return post_form(gatehouse, body)

    status, text = post(b"Action=AssumeRoleWithWebIdentity&RoleArn=arn:aws:iam::000000000000:role/x")
    assert status == 400 and "<Code>InvalidAction</Code>" in text
    assert "for version NO_VERSION_SPECIFIED" in text
    status, text = post(b"Action=AssumeRoleWithWebIdentity&Version=1999-01-01&RoleArn=arn:aws:iam::000000000000:role/x")
    assert status == 400 and "<Code>InvalidAction</Code>" in text and "for version 1999-01-01" in text
    # IAM's version names no STS operation.
    status, text = post(b"Action=AssumeRoleWithWebIdentity&Version=2010-05-08")
    assert status == 400 and "<Code>InvalidAction</Code>" in text


def test_a_refused_body_is_answered_in_the_query_protocol(gatehouse: GatehouseServer, iam: Any) -> None:
    """A body too large to read, or not what its Content-Encoding says, is answered in XML as every other
    error of IAM and STS is: botocore can read the error instead of failing to parse a JSON one."""
    with pytest.raises(ClientError) as too_large:
        iam.create_role(RoleName="Huge", AssumeRolePolicyDocument="x" * (1024 * 1024 + 10))
    assert error_of(too_large)[1] == 413
    assert too_large.value.response["Error"]["Code"] == "MalformedInput"
    request = urllib.request.Request(
        gatehouse.url + "/",
        data=b"not gzip at all",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip"},
    )
    with pytest.raises(urllib.error.HTTPError) as corrupt:
        urllib.request.urlopen(request, timeout=5)
    text = corrupt.value.read().decode()
    assert corrupt.value.code == 400 and "<ErrorResponse" in text and "<Code>MalformedInput</Code>" in text
    with pytest.raises(ClientError):
        iam.get_role(RoleName="Huge")  # nothing was created


def test_update_trust_tags_and_provider_client_ids(iam: Any) -> None:
    iam.create_role(RoleName="Changing", AssumeRolePolicyDocument=json.dumps(TRUST), Tags=[{"Key": "a", "Value": "1"}])
    new_trust = json.loads(json.dumps(TRUST))
    new_trust["Statement"][0]["Condition"]["StringEquals"]["cognito-identity.amazonaws.com:aud"] = "us-east-1:other"
    iam.update_assume_role_policy(RoleName="Changing", PolicyDocument=json.dumps(new_trust))
    iam.update_role(RoleName="Changing", Description="now described", MaxSessionDuration=10800)
    role = iam.get_role(RoleName="Changing")["Role"]
    assert role["AssumeRolePolicyDocument"] == new_trust
    assert (role["Description"], role["MaxSessionDuration"]) == ("now described", 10800)
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.update_assume_role_policy(RoleName="Changing", PolicyDocument='{"Statement": "no"}')
    assert iam.get_role(RoleName="Changing")["Role"]["AssumeRolePolicyDocument"] == new_trust  # unchanged

    iam.tag_role(RoleName="Changing", Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "3"}])
    assert iam.list_role_tags(RoleName="Changing")["Tags"] == [{"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}]
    iam.untag_role(RoleName="Changing", TagKeys=["a", "missing"])
    assert iam.list_role_tags(RoleName="Changing")["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.tag_role(RoleName="Missing", Tags=[{"Key": "b", "Value": "2"}])
    # The aws: prefix, in any case, is AWS's own: a role's tags become its sessions' aws:PrincipalTag/<key>.
    for key in ("aws:team", "AWS:PrincipalArn"):
        with pytest.raises(iam.exceptions.InvalidInputException):
            iam.tag_role(RoleName="Changing", Tags=[{"Key": key, "Value": "x"}])
        with pytest.raises(iam.exceptions.InvalidInputException):
            iam.create_role(
                RoleName="Reserved", AssumeRolePolicyDocument=json.dumps(TRUST), Tags=[{"Key": key, "Value": "x"}]
            )
    assert iam.list_role_tags(RoleName="Changing")["Tags"] == [{"Key": "b", "Value": "2"}]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="Reserved")

    arn = iam.create_open_id_connect_provider(Url="https://changing.example.com", ClientIDList=["one"])[
        "OpenIDConnectProviderArn"
    ]
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="two")
    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="two")  # idempotent
    iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="one")
    iam.update_open_id_connect_provider_thumbprint(OpenIDConnectProviderArn=arn, ThumbprintList=["b" * 40])
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert (got["ClientIDList"], got["ThumbprintList"]) == (["two"], ["b" * 40])


def test_trust_policies_name_no_resource_and_only_sts_actions(iam: Any) -> None:
    """IAM refuses a trust policy with a Resource (the role itself is the resource) or with actions of another
    service than STS, in CreateRole and UpdateAssumeRolePolicy alike, and nothing changes."""

    def trust_with(**changes: Any) -> str:
        statement = {**TRUST["Statement"][0], **changes}  # type: ignore[index]
        return json.dumps({"Version": "2012-10-17", "Statement": [statement]})

    refused = {
        trust_with(Resource="*"): "Has prohibited field Resource",
        trust_with(NotResource="arn:aws:s3:::b"): "Has prohibited field NotResource",
        trust_with(Action=["sts:AssumeRoleWithWebIdentity", "s3:GetObject"]): (
            "AssumeRole policy may only specify STS AssumeRole actions."
        ),
        trust_with(Action="iam:*"): "AssumeRole policy may only specify STS AssumeRole actions.",
    }
    for document, message in refused.items():
        with pytest.raises(ClientError) as raised:
            iam.create_role(RoleName="Prohibited", AssumeRolePolicyDocument=document)
        assert error_of(raised) == ("MalformedPolicyDocument", 400)
        assert raised.value.response["Error"]["Message"] == message
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName="Prohibited")

    # STS actions of every kind (and wildcards of them) are a trust policy's own.
    fine = trust_with(Action=["sts:AssumeRoleWithWebIdentity", "sts:TagSession", "STS:SetSourceIdentity"])
    iam.create_role(RoleName="TrustsSts", AssumeRolePolicyDocument=fine)
    for document, message in refused.items():
        with pytest.raises(ClientError) as raised:
            iam.update_assume_role_policy(RoleName="TrustsSts", PolicyDocument=document)
        assert raised.value.response["Error"]["Message"] == message
    assert iam.get_role(RoleName="TrustsSts")["Role"]["AssumeRolePolicyDocument"] == json.loads(fine)
    iam.update_assume_role_policy(RoleName="TrustsSts", PolicyDocument=trust_with(Action="sts:*"))
