"""AssumeRoleWithSAML against a real Gatehouse: an IdP configured for AWS (pysaml2's own IdP, signing with
xmlsec1) registered as an IAM SAML provider, its signed Responses exchanged for credentials, and the refusals:
a forged or re-signed Response, another audience or recipient, an expired one, a replayed one, a Role
attribute that does not name the role, and a trust policy that does not match."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.aws_support import aws_client
from tests.saml_idp_fake import FakeAwsSamlIdP, aws_attributes, tamper
from tests.support import GatehouseServer

ACCOUNT = "000000000000"


@pytest.fixture(scope="module")
def saml_idp() -> FakeAwsSamlIdP:
    return FakeAwsSamlIdP()


@pytest.fixture(scope="module")
def setup(gatehouse: GatehouseServer, saml_idp: FakeAwsSamlIdP) -> dict[str, str]:
    iam = gatehouse.client("iam")
    provider_arn = iam.create_saml_provider(Name="corp", SAMLMetadataDocument=saml_idp.metadata_xml())[
        "SAMLProviderArn"
    ]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml", "SAML:iss": saml_idp.entity_id}
                },
            }
        ],
    }
    role_arn = iam.create_role(RoleName="corp-engineers", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::${aws:PrincipalTag/team}/*"}],
    }
    iam.put_role_policy(RoleName="corp-engineers", PolicyName="team", PolicyDocument=json.dumps(policy))
    return {"provider_arn": provider_arn, "role_arn": role_arn}


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def assume(sts: Any, setup: dict[str, str], assertion: str, **extra: Any) -> dict[str, Any]:
    return dict(
        sts.assume_role_with_saml(
            RoleArn=setup["role_arn"], PrincipalArn=setup["provider_arn"], SAMLAssertion=assertion, **extra
        )
    )


def _response_issuer(saml_response: str, issuer: str) -> str:
    """The Response with its own (first, unsigned) Issuer changed; the signed assertion's stays."""
    xml = base64.b64decode(saml_response).decode()
    changed = re.sub(r"(<(?:\w+:)?Issuer[^>]*>)[^<]*(</)", rf"\g<1>{issuer}\g<2>", xml, count=1)
    assert changed != xml
    return base64.b64encode(changed.encode()).decode()


def test_saml_provider_management(gatehouse: GatehouseServer, saml_idp: FakeAwsSamlIdP, setup: dict[str, str]) -> None:
    iam = gatehouse.client("iam")
    got = iam.get_saml_provider(SAMLProviderArn=setup["provider_arn"])
    assert saml_idp.entity_id in got["SAMLMetadataDocument"]
    assert {p["Arn"] for p in iam.list_saml_providers()["SAMLProviderList"]} >= {setup["provider_arn"]}
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_saml_provider(Name="corp", SAMLMetadataDocument=saml_idp.metadata_xml())
    for bad in ("<not-xml", '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>'):
        with pytest.raises(iam.exceptions.InvalidInputException):
            iam.create_saml_provider(Name="bad", SAMLMetadataDocument=bad.ljust(1000))
    dtd = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'
    with pytest.raises(iam.exceptions.InvalidInputException):
        iam.create_saml_provider(Name="dtd", SAMLMetadataDocument=dtd.ljust(1000))
    other = iam.create_saml_provider(Name="temporary", SAMLMetadataDocument=saml_idp.metadata_xml())["SAMLProviderArn"]
    iam.delete_saml_provider(SAMLProviderArn=other)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_saml_provider(SAMLProviderArn=other)


def test_assume_role_with_saml(
    gatehouse: GatehouseServer, sts: Any, saml_idp: FakeAwsSamlIdP, setup: dict[str, str]
) -> None:
    assertion = saml_idp.response(
        aws_attributes(setup["role_arn"], setup["provider_arn"], session="ann", **{"PrincipalTag:team": ["media"]})
    )
    answer = assume(sts, setup, assertion, DurationSeconds=1800)
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/corp-engineers/ann"
    assert (answer["Subject"], answer["SubjectType"], answer["Issuer"]) == (
        "ann@corp.example",
        "persistent",
        saml_idp.entity_id,
    )
    assert answer["Audience"] == "https://signin.aws.amazon.com/saml" and answer["NameQualifier"]
    creds = answer["Credentials"]
    session = aws_client("sts", gatehouse.url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert session.get_caller_identity()["Arn"] == answer["AssumedRoleUser"]["Arn"]

    # The same Response again: refused (one exchange per assertion).
    with pytest.raises(ClientError) as replayed:
        assume(sts, setup, assertion)
    assert error_of(replayed) == ("InvalidIdentityToken", 400)

    # The role ARN and provider ARN may be listed in either order; the IdP's SessionDuration caps the session.
    reordered = {
        "https://aws.amazon.com/SAML/Attributes/Role": [f"{setup['provider_arn']},{setup['role_arn']}"],
        "https://aws.amazon.com/SAML/Attributes/RoleSessionName": ["ann2"],
        "https://aws.amazon.com/SAML/Attributes/SessionDuration": ["900"],
    }
    answer = assume(sts, setup, saml_idp.response(reordered))
    remaining = answer["Credentials"]["Expiration"].timestamp() - time.time()
    assert 800 < remaining <= 900


def test_refused_assertions(sts: Any, saml_idp: FakeAwsSamlIdP, setup: dict[str, str]) -> None:
    attributes = aws_attributes(setup["role_arn"], setup["provider_arn"])
    impostor = FakeAwsSamlIdP(entity_id=saml_idp.entity_id)  # same name, another key
    cases = {
        "signed by another key": (saml_idp.response(attributes, signer=impostor), "InvalidIdentityToken"),
        "changed after signing": (
            tamper(saml_idp.response(attributes), "ann@corp.example", "root@corp.example"),
            "InvalidIdentityToken",
        ),
        "unsigned": (saml_idp.response(attributes, sign_assertion=False), "InvalidIdentityToken"),
        "another audience": (saml_idp.response(attributes, audience="urn:someone:else"), "InvalidIdentityToken"),
        "another recipient": (
            saml_idp.response(attributes, recipient="https://evil.example/acs"),
            "InvalidIdentityToken",
        ),
        "another destination": (
            saml_idp.response(attributes, destination="https://evil.example/acs"),
            "InvalidIdentityToken",
        ),
        "expired": (saml_idp.response(attributes, lifetime=-600), "ExpiredTokenException"),
        "no session name": (
            saml_idp.response(
                {
                    "https://aws.amazon.com/SAML/Attributes/Role": attributes[
                        "https://aws.amazon.com/SAML/Attributes/Role"
                    ]
                }
            ),
            "InvalidIdentityToken",
        ),
        # The Response's Issuer is not signed when only the assertion is: it must not name another IdP.
        "another Response Issuer": (
            _response_issuer(saml_idp.response(attributes), "https://evil.example/saml"),
            "InvalidIdentityToken",
        ),
        "not base64 XML": ("bm90IHhtbA==", "InvalidIdentityToken"),
        "external entity": (
            base64.b64encode(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>').decode(),
            "InvalidIdentityToken",
        ),
    }
    for name, (assertion, code) in cases.items():
        with pytest.raises(ClientError) as refused:
            assume(sts, setup, assertion)
        assert error_of(refused) == (code, 400), name

    # The Role attribute names another role: AccessDenied, as is a trust policy the assertion does not meet.
    other_role = f"arn:aws:iam::{ACCOUNT}:role/someone-else"
    with pytest.raises(ClientError) as not_named:
        assume(sts, setup, saml_idp.response(aws_attributes(other_role, setup["provider_arn"])))
    assert error_of(not_named) == ("AccessDenied", 403)
    other_issuer = FakeAwsSamlIdP(entity_id="https://other.corp.example/saml")
    with pytest.raises(ClientError) as wrong_provider:
        assume(sts, setup, other_issuer.response(attributes))  # not this provider's key either
    assert error_of(wrong_provider) == ("InvalidIdentityToken", 400)
    with pytest.raises(ClientError) as unknown_provider:
        sts.assume_role_with_saml(
            RoleArn=setup["role_arn"],
            PrincipalArn=f"arn:aws:iam::{ACCOUNT}:saml-provider/nope",
            SAMLAssertion=saml_idp.response(attributes),
        )
    assert error_of(unknown_provider) == ("InvalidIdentityToken", 400)
