"""IAM tag rules on every tagged resource, and numbers on the query wire, against a real Gatehouse.

* At most 50 tags per role, OIDC provider or SAML provider: a request that would exceed it fails entirely
  (TagOpenIDConnectProvider: "If you exceed the allowed maximum number of tags, the entire request fails"); no
  key may begin with ``aws:``, in any case (IAM User Guide, "Rules for tagging in IAM and AWS STS").
* A key given twice in one request is refused (InvalidInput). A role's tag keys ignore case, their case
  preserved ("you cannot have separate Department and department tag keys"); identity providers' keys do not.
* An integer member of a query-protocol form is ASCII digits with an optional sign: nothing else Python's
  ``int()`` takes (white space, ``_``, other scripts' digits) is a number.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import botocore.model
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from gateway.api.awsquery import _convert
from gateway.errors import ValidationError
from tests.e2e.aws_support import ACCOUNT
from tests.saml_idp_fake import FakeAwsSamlIdP
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, GatehouseServer

ROOT_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def tag_list(prefix: str, count: int) -> list[dict[str, str]]:
    return [{"Key": f"{prefix}{index}", "Value": "v"} for index in range(count)]


def oidc_tags(iam: Any, arn: str) -> dict[str, str]:
    tags = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn).get("Tags", [])
    return {tag["Key"]: tag["Value"] for tag in tags}


# --- OIDC and SAML providers: the quota and the reserved prefix ----------------------------------------------


def test_tagging_an_oidc_provider_beyond_50_tags_fails_entirely(iam: Any) -> None:
    arn = iam.create_open_id_connect_provider(Url="https://quota.example", ThumbprintList=["a" * 40])[
        "OpenIDConnectProviderArn"
    ]
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=tag_list("a", 50))
    with pytest.raises(ClientError) as over:
        iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=tag_list("b", 1))
    assert error_of(over) == ("LimitExceeded", 409)
    assert len(oidc_tags(iam, arn)) == 50
    # Overwriting a tag it has already is within the quota.
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[{"Key": "a0", "Value": "w"}])
    assert oidc_tags(iam, arn)["a0"] == "w"

    with pytest.raises(ClientError) as too_many:
        iam.create_open_id_connect_provider(
            Url="https://quota.example/created", ThumbprintList=["a" * 40], Tags=tag_list("c", 51)
        )
    assert error_of(too_many)[0] in ("LimitExceeded", "ValidationError")
    listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert all(not provider["Arn"].endswith("/created") for provider in listed)


@pytest.mark.parametrize("key", ["aws:team", "AWS:team", "Aws:team"])
def test_identity_provider_tag_keys_may_not_begin_with_aws(iam: Any, key: str) -> None:
    url = f"https://reserved-{key.encode().hex()}.example"
    arn = iam.create_open_id_connect_provider(Url=url, ThumbprintList=["a" * 40])["OpenIDConnectProviderArn"]
    with pytest.raises(ClientError) as tagged:
        iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[{"Key": key, "Value": "v"}])
    assert error_of(tagged) == ("InvalidInput", 400)
    assert oidc_tags(iam, arn) == {}

    with pytest.raises(ClientError) as created:
        iam.create_open_id_connect_provider(
            Url=url + "/other", ThumbprintList=["a" * 40], Tags=[{"Key": key, "Value": "v"}]
        )
    assert error_of(created) == ("InvalidInput", 400)

    name = f"reserved-{key.encode().hex()}"
    with pytest.raises(ClientError) as saml:
        iam.create_saml_provider(
            Name=name, SAMLMetadataDocument=FakeAwsSamlIdP().metadata_xml(), Tags=[{"Key": key, "Value": "v"}]
        )
    assert error_of(saml) == ("InvalidInput", 400)
    assert all(not p["Arn"].endswith(f"/{name}") for p in iam.list_saml_providers()["SAMLProviderList"])


def test_a_saml_provider_takes_at_most_50_tags(iam: Any) -> None:
    metadata = FakeAwsSamlIdP().metadata_xml()
    with pytest.raises(ClientError) as too_many:
        iam.create_saml_provider(Name="many-tags", SAMLMetadataDocument=metadata, Tags=tag_list("t", 51))
    assert error_of(too_many)[0] in ("LimitExceeded", "ValidationError")
    arn = iam.create_saml_provider(Name="fifty-tags", SAMLMetadataDocument=metadata, Tags=tag_list("t", 50))[
        "SAMLProviderArn"
    ]
    assert len(iam.get_saml_provider(SAMLProviderArn=arn)["Tags"]) == 50


# --- duplicate keys and case ----------------------------------------------------------------------------------


def test_a_tag_key_given_twice_in_one_request_is_refused(iam: Any) -> None:
    iam.create_role(RoleName="twice", AssumeRolePolicyDocument=ROOT_TRUST, Tags=[{"Key": "team", "Value": "a"}])
    twice = [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}]
    with pytest.raises(ClientError) as role:
        iam.tag_role(RoleName="twice", Tags=twice)
    assert error_of(role) == ("InvalidInput", 400)
    with pytest.raises(ClientError) as created:
        iam.create_role(RoleName="twice-created", AssumeRolePolicyDocument=ROOT_TRUST, Tags=twice)
    assert error_of(created) == ("InvalidInput", 400)
    # A role's keys ignore case: two keys that differ only in case are the same key twice.
    with pytest.raises(ClientError) as cased:
        iam.tag_role(RoleName="twice", Tags=[{"Key": "Dept", "Value": "1"}, {"Key": "dept", "Value": "2"}])
    assert error_of(cased) == ("InvalidInput", 400)
    assert iam.list_role_tags(RoleName="twice")["Tags"] == [{"Key": "team", "Value": "a"}]

    arn = iam.create_open_id_connect_provider(Url="https://twice.example", ThumbprintList=["a" * 40])[
        "OpenIDConnectProviderArn"
    ]
    with pytest.raises(ClientError) as provider:
        iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=twice)
    assert error_of(provider) == ("InvalidInput", 400)
    assert oidc_tags(iam, arn) == {}


def test_role_tag_keys_ignore_case_and_provider_tag_keys_do_not(iam: Any) -> None:
    iam.create_role(
        RoleName="cased", AssumeRolePolicyDocument=ROOT_TRUST, Tags=[{"Key": "Department", "Value": "finance"}]
    )
    iam.tag_role(RoleName="cased", Tags=[{"Key": "department", "Value": "hr"}])
    assert iam.list_role_tags(RoleName="cased")["Tags"] == [{"Key": "department", "Value": "hr"}]
    assert iam.get_role(RoleName="cased")["Role"]["Tags"] == [{"Key": "department", "Value": "hr"}]
    iam.untag_role(RoleName="cased", TagKeys=["DEPARTMENT"])
    assert iam.list_role_tags(RoleName="cased")["Tags"] == []

    arn = iam.create_open_id_connect_provider(
        Url="https://cased.example", ThumbprintList=["a" * 40], Tags=[{"Key": "Costcenter", "Value": "1234"}]
    )["OpenIDConnectProviderArn"]
    iam.tag_open_id_connect_provider(OpenIDConnectProviderArn=arn, Tags=[{"Key": "costcenter", "Value": "5678"}])
    assert oidc_tags(iam, arn) == {"Costcenter": "1234", "costcenter": "5678"}


# --- numbers on the query wire ---------------------------------------------------------------------------------


def signed_query(gatehouse: GatehouseServer, service: str, fields: list[tuple[str, str]]) -> tuple[int, str]:
    """A form signed with the admin credentials for ``service``, sent as given (boto3 writes numbers itself)."""
    body = urllib.parse.urlencode(fields).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    request = AWSRequest(method="POST", url=gatehouse.url + "/", data=body, headers=headers)
    SigV4Auth(Credentials(ADMIN_KEY_ID, ADMIN_SECRET), service, "us-east-1").add_auth(request)
    http = urllib.request.Request(gatehouse.url + "/", data=body, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(http, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


NOT_NUMBERS = [" 900 ", "900 ", "9_00", "\u0669\u0660\u0660", "\uff19\uff10\uff10", "0x384", "900.0", "", "+", "abc"]


LIST_ROLES = [("Action", "ListRoles"), ("Version", "2010-05-08")]


@pytest.fixture(scope="module")
def assume_role_form(iam: Any) -> list[tuple[str, str]]:
    """An AssumeRole form, but for its DurationSeconds, of a role the admin credentials may assume."""
    arn = iam.create_role(RoleName="numbers", AssumeRolePolicyDocument=ROOT_TRUST)["Role"]["Arn"]
    return [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", arn), ("RoleSessionName", "numbers")]


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_query_integers_are_ascii_digits(
    gatehouse: GatehouseServer, assume_role_form: list[tuple[str, str]], text: str
) -> None:
    status, body = signed_query(gatehouse, "sts", [*assume_role_form, ("DurationSeconds", text)])
    assert (status, "<Code>ValidationError</Code>" in body) == (400, True), body
    status, body = signed_query(gatehouse, "iam", [*LIST_ROLES, ("MaxItems", text)])
    assert (status, "<Code>ValidationError</Code>" in body) == (400, True), body
    # The same calls with numbers as botocore writes them, and a sign.
    status, body = signed_query(gatehouse, "sts", [*assume_role_form, ("DurationSeconds", "900")])
    assert status == 200 and "<Expiration>" in body, body
    status, body = signed_query(gatehouse, "iam", [*LIST_ROLES, ("MaxItems", "+5")])
    assert status == 200, body


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", " 1.5", "1_0.5", "\u0661.5", "1.5e", "e5"])
def test_query_decimals_are_ascii_decimals(text: str) -> None:
    """No IAM or STS input has a float member; a model that has one reads only decimals from the form."""
    shape = botocore.model.Shape("Ratio", {"type": "double"})
    with pytest.raises(ValidationError):
        _convert(shape, text, "ratio")
    decimals = ("1.5", "-2", ".5", "1e-05", "+3.")
    assert [_convert(shape, good, "ratio") for good in decimals] == [1.5, -2.0, 0.5, 1e-05, 3.0]
