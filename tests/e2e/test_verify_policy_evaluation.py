"""IAM policy evaluation as a service sees it through ``POST /gatehouse/verify``, judged against the IAM User Guide.

* "IAM JSON policy elements: Condition operators": ``ArnEquals`` and ``ArnLike`` are one operator ("Case-sensitive
  matching of the ARN. Each of the six colon-delimited components of the ARN is checked separately and each can
  include multi-character match wildcards (*) or single-character match wildcards (?)"), and so are
  ``ArnNotEquals`` and ``ArnNotLike``.
* A condition that cannot be evaluated -- a request value that is no number, date, IP address or ARN for its
  operator, or a policy variable with no value -- matches nothing, also under a negated operator ("If AWS cannot
  resolve a variable this might cause the entire statement to be invalid", "IAM policy elements: Variables and
  tags"); so does a ``NotResource`` naming such a variable. A variable's value is text, whatever characters it
  holds.
* The verify endpoint's caller context describes the request, never the principal: the condition keys of any web
  identity provider are the session's alone, whatever the provider's host name looks like.
* A trust policy naming a principal with a wildcard inside it is refused, as IAM refuses it.
* Calls to Gatehouse's own IAM and STS carry ``aws:SourceIp`` (and, with temporary credentials,
  ``aws:RequestedRegion``) into the session's policy check and the trust check.
* A role session's ``aws:PrincipalArn`` is its role's ARN in a trust check too, as in its own policy checks.
* CreateRole with a ``PermissionsBoundary``: Gatehouse has no managed policies for a boundary to name, so the call
  is refused rather than the boundary dropped.

Real server, boto3 for IAM and STS, requests signed by botocore's own SigV4 signer and asked about over HTTP.
"""

from __future__ import annotations

import base64
import json
import secrets
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.aws_support import ACCOUNT, identity_trust
from tests.support import REGION, GatehouseServer

SERVICE_URL = "https://files.example/photos/a.jpg"
ROOT_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)


# --- helpers -----------------------------------------------------------------------------------------------


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = excinfo.value.response
    return (
        str(response["Error"]["Code"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
        str(response["Error"]["Message"]),
    )


def statement(**fields: Any) -> dict[str, Any]:
    resource = {} if "NotResource" in fields else {"Resource": "*"}
    return {"Effect": "Allow", "Action": "s3:GetObject", **resource, **fields}


def session(iam: Any, sts: Any, statements: list[dict[str, Any]], tags: dict[str, str] | None = None) -> Credentials:
    """Credentials of a new role whose one inline policy holds ``statements`` (session ``tags`` passed)."""
    name = "policy-" + secrets.token_hex(4)
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)["Role"]["Arn"]
    document = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(document))
    extra: dict[str, Any] = {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="probe", **extra)["Credentials"]
    return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def verify(gatehouse: GatehouseServer, creds: Credentials, **ask: Any) -> tuple[int, dict[str, Any]]:
    """Ask the verify endpoint about a GET signed with ``creds`` (botocore's signer, service ``s3``)."""
    signed = AWSRequest(method="GET", url=SERVICE_URL)
    SigV4Auth(creds, "s3", REGION).add_auth(signed)
    question = {
        "method": "GET",
        "url": SERVICE_URL,
        "headers": {"Host": "files.example", **dict(signed.headers.items())},
        "body": base64.b64encode(b"").decode(),
        **ask,
    }
    request = urllib.request.Request(
        gatehouse.url + "/gatehouse/verify",
        data=json.dumps(question).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def allowed(
    gatehouse: GatehouseServer,
    creds: Credentials,
    context: dict[str, Any] | None = None,
    *,
    action: str = "s3:GetObject",
    resource: str = "arn:aws:s3:::photos/a.jpg",
) -> bool:
    status, answer = verify(gatehouse, creds, action=action, resource=resource, context=context or {})
    assert status == 200, answer
    return bool(answer["Allowed"])


@pytest.fixture(scope="module")
def admin_sts(gatehouse: GatehouseServer) -> Any:
    return gatehouse.client("sts")


# --- ARN operators ------------------------------------------------------------------------------------------


def test_arn_equals_takes_wildcards_in_each_segment_as_arn_like_does(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    creds = session(
        iam,
        admin_sts,
        [
            statement(Condition={"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:*:{ACCOUNT}:uploads-?"}}),
            statement(Action="s3:PutObject", Condition={"ArnNotEquals": {"aws:SourceArn": "arn:aws:sns:*:*:*"}}),
        ],
    )
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:uploads-1"
    assert allowed(gatehouse, creds, {"aws:SourceArn": topic})
    # Each segment on its own: a wildcard never spans a colon, ? is one character, the rest is case-sensitive.
    assert not allowed(gatehouse, creds, {"aws:SourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:uploads-12"})
    assert not allowed(gatehouse, creds, {"aws:SourceArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:Uploads-1"})
    assert not allowed(gatehouse, creds, {"aws:SourceArn": f"arn:aws:sns:{REGION}:1:{ACCOUNT}:uploads-1"})
    # ArnNotEquals is the negation of the same match.
    assert not allowed(gatehouse, creds, {"aws:SourceArn": topic}, action="s3:PutObject")
    assert allowed(gatehouse, creds, {"aws:SourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"}, action="s3:PutObject")


# --- conditions that cannot be evaluated ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "good", "bad"),
    [
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, "203.0.113.7", "not-an-address"),
        ({"NumericNotEquals": {"s3:max-keys": "10"}}, "20", "twenty"),
        ({"NumericLessThan": {"s3:max-keys": "1000"}}, "20", "-inf"),
        ({"NumericLessThanEquals": {"s3:max-keys": "1000"}}, "20", " 20"),
        ({"DateNotEquals": {"s3:object-lock-retain-until-date": "2030-01-01T00:00:00Z"}}, "2031-01-01", "soon"),
        ({"ArnNotLike": {"aws:SourceArn": "arn:aws:sns:*:*:blocked"}}, f"arn:aws:sns:{REGION}:1:t", "topic/t"),
    ],
)
def test_a_value_the_operator_cannot_read_matches_nothing(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any, condition: dict[str, Any], good: str, bad: str
) -> None:
    """Negated operators are true for a key the request lacks, but a value present that is no IP address, number,
    date or ARN cannot be compared, so the condition does not hold (and never grants)."""
    creds = session(iam, admin_sts, [statement(Condition=condition)])
    [key] = next(iter(condition.values()))
    assert allowed(gatehouse, creds, {key: good})
    assert allowed(gatehouse, creds) is ("Not" in next(iter(condition)))
    assert not allowed(gatehouse, creds, {key: bad})


def test_a_variable_with_no_value_matches_nothing_also_under_a_negated_operator(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    creds = session(
        iam,
        admin_sts,
        [
            # Anyone but the owner named by the session's own tag may read: a session without the tag is no one.
            statement(Condition={"StringNotEquals": {"aws:ResourceTag/owner": "${aws:PrincipalTag/owner}"}}),
            statement(Action="s3:ListBucket", NotResource="arn:aws:s3:::private-${aws:PrincipalTag/team}"),
        ],
    )
    tagged = session(
        iam,
        admin_sts,
        [
            statement(Condition={"StringNotEquals": {"aws:ResourceTag/owner": "${aws:PrincipalTag/owner}"}}),
            statement(Action="s3:ListBucket", NotResource="arn:aws:s3:::private-${aws:PrincipalTag/team}"),
        ],
        tags={"owner": "ann", "team": "blue"},
    )
    assert allowed(gatehouse, tagged, {"aws:ResourceTag/owner": "bob"})
    assert not allowed(gatehouse, tagged, {"aws:ResourceTag/owner": "ann"})
    assert allowed(gatehouse, tagged, action="s3:ListBucket", resource="arn:aws:s3:::shared")
    assert not allowed(gatehouse, tagged, action="s3:ListBucket", resource="arn:aws:s3:::private-blue")

    assert not allowed(gatehouse, creds, {"aws:ResourceTag/owner": "bob"})
    assert not allowed(gatehouse, creds, action="s3:ListBucket", resource="arn:aws:s3:::shared")
    assert not allowed(gatehouse, creds, action="s3:ListBucket", resource="arn:aws:s3:::private-blue")


def test_a_substituted_value_is_text_whatever_characters_it_holds(
    gatehouse: GatehouseServer, iam: Any, ci: Any, public_ci: Any
) -> None:
    """A policy variable's value is matched as the text it is ("IAM policy elements: Variables and tags"): a
    session tag cannot change the pattern around it, nor equal another team's name. The tags here come from a
    developer provider's PrincipalTags (any characters, up to 256)."""
    developer = "login.policy.app"
    pool_id = ci.create_identity_pool(
        IdentityPoolName="policy variables", AllowUnauthenticatedIdentities=False, DeveloperProviderName=developer
    )["IdentityPoolId"]
    role = iam.create_role(
        RoleName="policy-variables", AssumeRolePolicyDocument=identity_trust(pool_id, developer, tag_session=True)
    )["Role"]
    document = {
        "Version": "2012-10-17",
        "Statement": [
            statement(Condition={"StringEquals": {"s3:prefix": "${aws:PrincipalTag/team}"}}),
            statement(Action="s3:PutObject", Resource="arn:aws:s3:::files/${aws:PrincipalTag/team}/*"),
        ],
    }
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="p", PolicyDocument=json.dumps(document))
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role["Arn"]})

    def tagged(user: str, team: str) -> Credentials:
        token = ci.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool_id, Logins={developer: user}, PrincipalTags={"team": team}
        )
        creds = public_ci.get_credentials_for_identity(
            IdentityId=token["IdentityId"], Logins={"cognito-identity.amazonaws.com": token["Token"]}
        )["Credentials"]
        return Credentials(creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])

    finance = tagged("ann", "finance")
    assert allowed(gatehouse, finance, {"s3:prefix": "finance"})
    assert allowed(gatehouse, finance, action="s3:PutObject", resource="arn:aws:s3:::files/finance/q3.csv")
    for number, team in enumerate(("fin\ue000ance", "finance\ue000", "\ue000finance", "\ue000*")):
        other = tagged(f"user-{number}", team)
        assert allowed(gatehouse, other, {"s3:prefix": team})
        assert not allowed(gatehouse, other, {"s3:prefix": "finance"}), repr(team)
        assert not allowed(gatehouse, other, action="s3:PutObject", resource="arn:aws:s3:::files/finance/q3.csv")
        assert allowed(gatehouse, other, action="s3:PutObject", resource=f"arn:aws:s3:::files/{team}/q3.csv")


# --- the caller's context describes the request -------------------------------------------------------------


def test_caller_context_cannot_claim_keys_of_a_provider_named_without_a_dot_or_port(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    """A web identity's condition keys are ``<provider>:<claim>``, the provider its issuer without the scheme:
    ``keycloak/realms/corp`` for ``https://keycloak/realms/corp`` (a host name with no dot, as on a container
    network). Only the session says them; a service's context for the request cannot add them."""
    creds = session(
        iam,
        admin_sts,
        [
            statement(Condition={"StringEquals": {"keycloak/realms/corp:sub": "admin"}}),
            statement(Condition={"StringEquals": {"keycloak:sub": "admin"}}),
            statement(Condition={"StringEquals": {"keycloak:email": "admin@corp.example"}}),
            statement(Action="s3:PutObject", Condition={"StringEquals": {"s3:ExistingObjectTag/team": "blue"}}),
        ],
    )
    for key in ("keycloak/realms/corp:sub", "KeyCloak/realms/corp:SUB", "idp:8443/realms/corp:sub", "keycloak:sub"):
        assert not allowed(gatehouse, creds, {key: "admin"}), key
    # A bare host as the whole issuer (https://keycloak): its keys read like a service's, but its claims do not.
    assert not allowed(gatehouse, creds, {"keycloak:email": "admin@corp.example"})
    # A service's own keys, a slash after the service prefix included, still describe the request.
    assert allowed(gatehouse, creds, {"s3:ExistingObjectTag/team": "blue"}, action="s3:PutObject")


# --- trust policies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"},
        {"AWS": ["arn:aws:iam::*:root"]},
        {"Federated": "cognito-identity.*.amazonaws.com"},
        {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/idp.example/realms/?"},
    ],
)
def test_a_wildcard_within_a_principal_is_refused(iam: Any, principal: dict[str, Any]) -> None:
    """IAM User Guide, "Principal": "You cannot use a wildcard to match part of a principal name or ARN" -- only
    ``"*"`` alone. IAM refuses such a trust policy (MalformedPolicyDocument, "Invalid principal in policy")."""
    document = json.loads(ROOT_TRUST)
    document["Statement"][0]["Principal"] = principal
    name = "policy-trust-" + secrets.token_hex(4)
    with pytest.raises(ClientError) as refused:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))
    code, status, message = error_of(refused)
    assert (code, status) == ("MalformedPolicyDocument", 400)
    assert message.startswith("Invalid principal in policy")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)
    with pytest.raises(ClientError) as not_updated:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(document))
    assert error_of(not_updated)[:2] == ("MalformedPolicyDocument", 400)
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == json.loads(ROOT_TRUST)
    # "*" alone is every principal, and stays allowed.
    document["Statement"][0]["Principal"] = {"AWS": "*"}
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(document))


# --- Gatehouse's own API: the request's keys -----------------------------------------------------------------


def test_gatehouse_api_calls_made_with_a_session_carry_the_source_ip_and_region(
    gatehouse: GatehouseServer, iam: Any, admin_sts: Any
) -> None:
    """A call to Gatehouse's IAM or STS with temporary credentials is authorised against the request's
    ``aws:SourceIp`` and ``aws:RequestedRegion`` ("AWS global condition context keys"), as AWS's own are: a policy
    limiting a role to an address range works the same on both."""
    target = iam.create_role(RoleName="policy-chained", AssumeRolePolicyDocument=ROOT_TRUST)["Role"]["Arn"]
    loopback = {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}
    elsewhere = {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    creds = session(
        iam,
        admin_sts,
        [
            {"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*", "Condition": loopback},
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": target,
                "Condition": {**loopback, "StringEquals": {"aws:RequestedRegion": REGION}},
            },
            # The usual guard: nothing from outside the office's range (here, one the caller is not in).
            {"Effect": "Deny", "Action": "iam:ListRoleTags", "Resource": "*", "Condition": elsewhere},
        ],
    )
    signed_with = {"key_id": creds.access_key, "secret": creds.secret_key, "aws_session_token": creds.token}
    session_iam = gatehouse.client("iam", **signed_with)
    session_sts = gatehouse.client("sts", **signed_with)
    assert any(role["Arn"] == target for role in session_iam.list_roles()["Roles"])
    chained = session_sts.assume_role(RoleArn=target, RoleSessionName="chained")
    assert chained["AssumedRoleUser"]["Arn"].endswith(":assumed-role/policy-chained/chained")
    with pytest.raises(ClientError) as denied:
        session_iam.list_role_tags(RoleName="policy-chained")
    assert error_of(denied)[:2] == ("AccessDenied", 403)


def test_a_trust_policy_can_name_the_callers_address(gatehouse: GatehouseServer, iam: Any, admin_sts: Any) -> None:
    """``aws:SourceIp`` in a trust policy: AssumeRole from the named range only."""

    def trusting(name: str, cidr: str) -> str:
        document = json.loads(ROOT_TRUST)
        document["Statement"][0]["Condition"] = {"IpAddress": {"aws:SourceIp": cidr}}
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))["Role"]["Arn"])

    near = trusting("policy-near", "127.0.0.0/8")
    far = trusting("policy-far", "192.0.2.0/24")
    assert admin_sts.assume_role(RoleArn=near, RoleSessionName="near")["Credentials"]["AccessKeyId"]
    with pytest.raises(ClientError) as refused:
        admin_sts.assume_role(RoleArn=far, RoleSessionName="far")
    assert error_of(refused)[:2] == ("AccessDenied", 403)


def test_a_chained_sessions_principal_arn_is_its_roles(gatehouse: GatehouseServer, iam: Any, admin_sts: Any) -> None:
    """ "AWS global condition context keys", aws:PrincipalArn: for a role session the key holds the role's ARN
    (``arn:aws:iam::<account>:role/<name>``), not the session's -- so a trust policy may admit every role whose name
    matches a pattern, the account named as Principal."""
    document = json.loads(ROOT_TRUST)
    document["Statement"][0]["Condition"] = {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/ci-*"}}
    target = iam.create_role(RoleName="policy-deploy", AssumeRolePolicyDocument=json.dumps(document))["Role"]["Arn"]
    may_assume = [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": target}]

    def session_of(name: str) -> Any:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=ROOT_TRUST)["Role"]["Arn"]
        iam.put_role_policy(
            RoleName=name, PolicyName="p", PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": may_assume})
        )
        creds = admin_sts.assume_role(RoleArn=arn, RoleSessionName="build")["Credentials"]
        return gatehouse.client(
            "sts", key_id=creds["AccessKeyId"], secret=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"]
        )

    chained = session_of("ci-runner").assume_role(RoleArn=target, RoleSessionName="deploy")
    assert chained["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/policy-deploy/deploy"
    with pytest.raises(ClientError) as refused:
        session_of("policy-other").assume_role(RoleArn=target, RoleSessionName="deploy")
    assert error_of(refused)[:2] == ("AccessDenied", 403)


# --- permissions boundaries ----------------------------------------------------------------------------------


def test_create_role_with_a_permissions_boundary_is_refused_not_ignored(iam: Any) -> None:
    """A boundary names a managed policy; Gatehouse has none, so the role cannot be limited by it as asked."""
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/boundary"
    with pytest.raises(ClientError) as refused:
        iam.create_role(RoleName="bounded", AssumeRolePolicyDocument=ROOT_TRUST, PermissionsBoundary=boundary)
    code, status, message = error_of(refused)
    assert (code, status) == ("NoSuchEntity", 404)
    assert boundary in message
    with pytest.raises(ClientError) as missing:
        iam.get_role(RoleName="bounded")
    assert error_of(missing)[0] == "NoSuchEntity"
