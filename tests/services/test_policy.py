"""The IAM policy language and evaluation, case by case from the IAM User Guide's documented examples
("Policy evaluation logic", "Condition operators", "Multivalued context keys", "Policy variables",
"Session policies", "Example policies" for Cognito identities and S3 home folders)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.services.policy import Decision, PolicyError, Request, evaluate, is_allowed, parse_policy


def policy(*statements: dict[str, Any], version: str | None = "2012-10-17") -> Any:
    document: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        document["Version"] = version
    return parse_policy(json.dumps(document))


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(p: Any, action: str, resource: str = "*", **context: Any) -> Decision:
    return p.evaluate(Request(action=action, resource=resource, context=context))  # type: ignore[no-any-return]


# --- Action, NotAction and wildcards -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("s3:GetObject", "s3:GetObject", True),
        ("s3:GetObject", "s3:getobject", True),  # actions are case-insensitive
        ("S3:GETOBJECT", "s3:GetObject", True),
        ("s3:Get*", "s3:GetObjectAcl", True),
        ("s3:Get*", "s3:PutObject", False),
        ("s3:*", "s3:ListBucket", True),
        ("s3:*", "dynamodb:GetItem", False),
        ("*", "anything:AtAll", True),
        ("iam:*AccessKey*", "iam:CreateAccessKey", True),
        ("iam:*AccessKey*", "iam:ListAccessKeys", True),
        ("ec2:Describe?nstances", "ec2:DescribeInstances", True),
        ("ec2:Describe?nstances", "ec2:DescribeXXnstances", False),
        ("s3:GetObject", "s3:GetObjectVersion", False),  # no implicit prefix match
    ],
)
def test_action_patterns(pattern: str, action: str, expected: bool) -> None:
    p = policy(allow(pattern))
    assert (decide(p, action) is Decision.ALLOW) is expected


def test_action_list_is_any_of() -> None:
    p = policy(allow(["s3:GetObject", "s3:PutObject"]))
    assert decide(p, "s3:PutObject") is Decision.ALLOW
    assert decide(p, "s3:DeleteObject") is Decision.NOT_APPLICABLE


def test_not_action_allows_everything_else() -> None:
    # "NotAction with Allow": everything except IAM.
    p = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert decide(p, "s3:GetObject") is Decision.ALLOW
    assert decide(p, "iam:CreateUser") is Decision.NOT_APPLICABLE


def test_not_action_with_deny_denies_all_but_listed() -> None:
    p = policy(allow("*"), {"Effect": "Deny", "NotAction": ["sts:GetCallerIdentity", "s3:List*"], "Resource": "*"})
    assert decide(p, "s3:ListBucket") is Decision.ALLOW
    assert decide(p, "sts:GetCallerIdentity") is Decision.ALLOW
    assert decide(p, "s3:PutObject") is Decision.DENY


# --- Resource and NotResource ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b/c.txt", True),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket", False),
        ("arn:aws:s3:::bucket/*", "arn:aws:s3:::BUCKET/x", False),  # resources are case-sensitive
        ("arn:aws:s3:::bucket/file?.txt", "arn:aws:s3:::bucket/file1.txt", True),
        ("arn:aws:s3:::bucket/file?.txt", "arn:aws:s3:::bucket/file12.txt", False),
        ("arn:aws:dynamodb:*:123456789012:table/Books", "arn:aws:dynamodb:eu-west-1:123456789012:table/Books", True),
        ("*", "arn:aws:anything", True),
        ("arn:aws:s3:::a.b", "arn:aws:s3:::aXb", False),  # '.' is literal
    ],
)
def test_resource_patterns(pattern: str, resource: str, expected: bool) -> None:
    p = policy(allow("s3:*", pattern))
    assert (decide(p, "s3:GetObject", resource) is Decision.ALLOW) is expected


def test_not_resource() -> None:
    p = policy({"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"})
    assert decide(p, "s3:GetObject", "arn:aws:s3:::public/x") is Decision.ALLOW
    assert decide(p, "s3:GetObject", "arn:aws:s3:::secret/x") is Decision.NOT_APPLICABLE


# --- evaluation logic ------------------------------------------------------------------------------------


def test_default_is_implicit_deny() -> None:
    p = policy(allow("s3:GetObject"))
    assert decide(p, "s3:PutObject") is Decision.NOT_APPLICABLE
    assert not is_allowed([p], Request("s3:PutObject"))


def test_explicit_deny_overrides_allow_in_same_policy() -> None:
    p = policy(allow("s3:*"), deny("s3:DeleteObject"))
    assert decide(p, "s3:DeleteObject") is Decision.DENY
    assert decide(p, "s3:GetObject") is Decision.ALLOW


def test_explicit_deny_overrides_allow_across_policies() -> None:
    allows = policy(allow("*"))
    denies = policy(deny("dynamodb:*"))
    assert evaluate([allows, denies], Request("dynamodb:PutItem")) is Decision.DENY
    assert not is_allowed([allows, denies], Request("dynamodb:PutItem"))
    assert is_allowed([allows, denies], Request("s3:GetObject"))


def test_statement_order_does_not_matter() -> None:
    first = policy(deny("s3:*"), allow("s3:*"))
    second = policy(allow("s3:*"), deny("s3:*"))
    assert decide(first, "s3:GetObject") is decide(second, "s3:GetObject") is Decision.DENY


def test_session_policy_intersects_with_identity_policy() -> None:
    # "Session policies": the role allows s3 and dynamodb; the session policy only s3 and ec2.
    identity = [policy(allow(["s3:*", "dynamodb:*"]))]
    session = [policy(allow(["s3:*", "ec2:*"]))]
    assert is_allowed(identity, Request("s3:GetObject"), session)
    assert not is_allowed(identity, Request("dynamodb:GetItem"), session)  # not in the session policy
    assert not is_allowed(identity, Request("ec2:RunInstances"), session)  # not in the identity policy


def test_session_policy_cannot_grant_and_its_deny_wins() -> None:
    identity = [policy(allow("s3:*"))]
    session = [policy(allow("*"), deny("s3:DeleteObject"))]
    assert not is_allowed(identity, Request("iam:CreateRole"), session)
    assert not is_allowed(identity, Request("s3:DeleteObject"), session)
    assert is_allowed(identity, Request("s3:GetObject"), session)


def test_no_identity_policies_allow_nothing() -> None:
    assert not is_allowed([], Request("s3:GetObject"))
    assert not is_allowed([], Request("s3:GetObject"), [policy(allow("*"))])


# --- conditions: strings ---------------------------------------------------------------------------------


def test_string_equals_values_are_ored_keys_are_anded() -> None:
    p = policy(
        allow(
            "s3:*",
            Condition={"StringEquals": {"aws:PrincipalTag/team": ["red", "blue"], "aws:RequestedRegion": "eu-west-1"}},
        )
    )
    ok = {"aws:PrincipalTag/team": "blue", "aws:RequestedRegion": "eu-west-1"}
    assert decide(p, "s3:Get", **ok) is Decision.ALLOW
    assert decide(p, "s3:Get", **{**ok, "aws:RequestedRegion": "us-east-1"}) is Decision.NOT_APPLICABLE
    assert decide(p, "s3:Get", **{**ok, "aws:PrincipalTag/team": "green"}) is Decision.NOT_APPLICABLE


def test_operators_in_one_block_are_anded() -> None:
    p = policy(
        allow(
            "s3:*",
            Condition={"StringLike": {"s3:prefix": "home/*"}, "Bool": {"aws:SecureTransport": "true"}},
        )
    )
    assert decide(p, "s3:List", **{"s3:prefix": "home/x", "aws:SecureTransport": True}) is Decision.ALLOW
    assert decide(p, "s3:List", **{"s3:prefix": "home/x", "aws:SecureTransport": False}) is Decision.NOT_APPLICABLE


def test_condition_keys_are_case_insensitive_values_are_not() -> None:
    p = policy(allow("s3:*", Condition={"StringEquals": {"AWS:PrincipalTag/Team": "Red"}}))
    assert decide(p, "s3:Get", **{"aws:principaltag/team": "Red"}) is Decision.ALLOW
    assert decide(p, "s3:Get", **{"aws:principaltag/team": "red"}) is Decision.NOT_APPLICABLE


def test_operator_names_are_case_insensitive() -> None:
    p = policy(allow("s3:*", Condition={"stringequals": {"k:a": "x"}}))
    assert decide(p, "s3:Get", **{"k:a": "x"}) is Decision.ALLOW


def test_string_not_equals() -> None:
    p = policy(deny("s3:*", Condition={"StringNotEquals": {"aws:PrincipalTag/dept": "finance"}}))
    assert decide(p, "s3:Get", **{"aws:PrincipalTag/dept": "hr"}) is Decision.DENY
    assert decide(p, "s3:Get", **{"aws:PrincipalTag/dept": "finance"}) is Decision.NOT_APPLICABLE
    # Negated operator with the key absent: true, so principals without the tag are denied too.
    assert decide(p, "s3:Get") is Decision.DENY


def test_string_equals_ignore_case() -> None:
    p = policy(allow("s3:*", Condition={"StringEqualsIgnoreCase": {"aws:PrincipalTag/dept": "Finance"}}))
    assert decide(p, "s3:Get", **{"aws:PrincipalTag/dept": "FINANCE"}) is Decision.ALLOW
    q = policy(allow("s3:*", Condition={"StringNotEqualsIgnoreCase": {"aws:PrincipalTag/dept": "Finance"}}))
    assert decide(q, "s3:Get", **{"aws:PrincipalTag/dept": "finance"}) is Decision.NOT_APPLICABLE
    assert decide(q, "s3:Get", **{"aws:PrincipalTag/dept": "sales"}) is Decision.ALLOW


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("home/*", "home/alice/x", True),
        ("home/*", "other/alice", False),
        ("a?c", "abc", True),
        ("a?c", "abbc", False),
        ("*", "", True),
        ("exact", "EXACT", False),
    ],
)
def test_string_like(pattern: str, value: str, expected: bool) -> None:
    p = policy(allow("s3:*", Condition={"StringLike": {"s3:prefix": pattern}}))
    assert (decide(p, "s3:List", **{"s3:prefix": value}) is Decision.ALLOW) is expected
    q = policy(allow("s3:*", Condition={"StringNotLike": {"s3:prefix": pattern}}))
    assert (decide(q, "s3:List", **{"s3:prefix": value}) is Decision.ALLOW) is (not expected)


def test_missing_key_makes_a_positive_condition_false() -> None:
    p = policy(allow("s3:*", Condition={"StringEquals": {"aws:PrincipalTag/team": "red"}}))
    assert decide(p, "s3:Get") is Decision.NOT_APPLICABLE


def test_if_exists() -> None:
    # "...IfExists": "if the key is present, check it; if not, the condition is true".
    p = policy(allow("ec2:*", Condition={"StringEqualsIfExists": {"ec2:InstanceType": ["t2.micro", "t2.small"]}}))
    assert decide(p, "ec2:RunInstances", **{"ec2:InstanceType": "t2.micro"}) is Decision.ALLOW
    assert decide(p, "ec2:RunInstances", **{"ec2:InstanceType": "m5.large"}) is Decision.NOT_APPLICABLE
    assert decide(p, "ec2:DescribeInstances") is Decision.ALLOW


# --- conditions: numbers, dates, booleans, IPs, ARNs, Null ---------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("NumericEquals", "10", True),
        ("NumericEquals", "10.0", True),
        ("NumericEquals", "11", False),
        ("NumericNotEquals", "11", True),
        ("NumericLessThan", "9", True),
        ("NumericLessThan", "10", False),
        ("NumericLessThanEquals", "10", True),
        ("NumericGreaterThan", "11", True),
        ("NumericGreaterThan", "10", False),
        ("NumericGreaterThanEquals", "10", True),
        ("NumericEquals", "ten", False),  # not a number: no match
    ],
)
def test_numeric_operators(operator: str, value: str, expected: bool) -> None:
    p = policy(allow("s3:*", Condition={operator: {"s3:max-keys": "10"}}))
    assert (decide(p, "s3:List", **{"s3:max-keys": value}) is Decision.ALLOW) is expected


@pytest.mark.parametrize(
    ("operator", "now", "expected"),
    [
        ("DateLessThan", "2030-01-01T00:00:00Z", True),
        ("DateLessThan", "2031-06-30T00:00:00Z", False),
        ("DateGreaterThan", "2031-06-30T00:00:00Z", True),
        ("DateGreaterThan", "2030-01-01T00:00:00Z", False),
        ("DateEquals", "2031-01-01T00:00:00+00:00", True),
        ("DateNotEquals", "2031-01-01T00:00:01Z", True),
        ("DateLessThanEquals", "2031-01-01T00:00:00Z", True),
        ("DateGreaterThanEquals", "2031-01-01T00:00:00Z", True),
        ("DateLessThan", "1924991999", True),  # epoch seconds are accepted too
    ],
)
def test_date_operators(operator: str, now: str, expected: bool) -> None:
    p = policy(allow("s3:*", Condition={operator: {"aws:CurrentTime": "2031-01-01T00:00:00Z"}}))
    assert (decide(p, "s3:Get", **{"aws:CurrentTime": now}) is Decision.ALLOW) is expected


def test_bool() -> None:
    # "Deny requests not sent over TLS" (aws:SecureTransport false).
    p = policy(allow("s3:*"), deny("s3:*", Condition={"Bool": {"aws:SecureTransport": "false"}}))
    assert decide(p, "s3:Get", **{"aws:SecureTransport": "false"}) is Decision.DENY
    assert decide(p, "s3:Get", **{"aws:SecureTransport": True}) is Decision.ALLOW
    assert decide(p, "s3:Get", **{"aws:SecureTransport": "TRUE"}) is Decision.ALLOW
    mfa = policy(allow("ec2:*", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    assert decide(mfa, "ec2:Stop", **{"aws:MultiFactorAuthPresent": "false"}) is Decision.NOT_APPLICABLE
    assert decide(mfa, "ec2:Stop") is Decision.NOT_APPLICABLE


def test_ip_address_and_not_ip_address() -> None:
    # "Denies access to AWS based on the source IP".
    p = policy(allow("*"), deny("*", Condition={"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}}))
    assert decide(p, "s3:Get", **{"aws:SourceIp": "192.0.2.17"}) is Decision.ALLOW
    assert decide(p, "s3:Get", **{"aws:SourceIp": "198.51.100.1"}) is Decision.DENY
    q = policy(allow("*", Condition={"IpAddress": {"aws:SourceIp": ["2001:db8::/32", "10.0.0.1/32"]}}))
    assert decide(q, "s3:Get", **{"aws:SourceIp": "2001:db8::1"}) is Decision.ALLOW
    assert decide(q, "s3:Get", **{"aws:SourceIp": "10.0.0.1"}) is Decision.ALLOW
    assert decide(q, "s3:Get", **{"aws:SourceIp": "10.0.0.2"}) is Decision.NOT_APPLICABLE
    assert decide(q, "s3:Get", **{"aws:SourceIp": "not-an-ip"}) is Decision.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("operator", "pattern", "value", "expected"),
    [
        ("ArnEquals", "arn:aws:sns:us-east-1:123456789012:topic", "arn:aws:sns:us-east-1:123456789012:topic", True),
        # ArnEquals takes the same wildcards as ArnLike ("Condition operators", ARN).
        ("ArnEquals", "arn:aws:sns:us-east-1:123456789012:*", "arn:aws:sns:us-east-1:123456789012:topic", True),
        ("ArnEquals", "arn:aws:sns:us-east-1:*", "arn:aws:sns:us-east-1:123456789012:topic", False),
        ("ArnLike", "arn:aws:sns:*:123456789012:*", "arn:aws:sns:eu-west-1:123456789012:topic", True),
        ("ArnLike", "arn:aws:sns:*:123456789012:*", "arn:aws:sns:eu-west-1:999999999999:topic", False),
        ("ArnLike", "arn:aws:iam::*:role/app-*", "arn:aws:iam::123456789012:role/app-reader", True),
        ("ArnLike", "arn:aws:iam::*:role/app-*", "not-an-arn", False),
        ("ArnNotLike", "arn:aws:iam::*:role/app-*", "arn:aws:iam::123456789012:role/admin", True),
        ("ArnNotEquals", "arn:aws:sns:us-east-1:1:t", "arn:aws:sns:us-east-1:1:t", False),
        # A value that is no ARN cannot be compared: the negated operators do not hold either.
        ("ArnNotLike", "arn:aws:iam::*:role/app-*", "not-an-arn", False),
    ],
)
def test_arn_operators(operator: str, pattern: str, value: str, expected: bool) -> None:
    p = policy(allow("sns:*", Condition={operator: {"aws:SourceArn": pattern}}))
    assert (decide(p, "sns:Publish", **{"aws:SourceArn": value}) is Decision.ALLOW) is expected


def test_null() -> None:
    # "Null": true means the key must be absent, false that it must be present.
    absent = policy(allow("ec2:*", Condition={"Null": {"aws:TokenIssueTime": "true"}}))
    assert decide(absent, "ec2:Run") is Decision.ALLOW
    assert decide(absent, "ec2:Run", **{"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}) is Decision.NOT_APPLICABLE
    present = policy(allow("ec2:*", Condition={"Null": {"aws:TokenIssueTime": "false"}}))
    assert decide(present, "ec2:Run", **{"aws:TokenIssueTime": "2024-01-01T00:00:00Z"}) is Decision.ALLOW
    assert decide(present, "ec2:Run") is Decision.NOT_APPLICABLE


def test_binary_equals() -> None:
    p = policy(allow("s3:*", Condition={"BinaryEquals": {"k:blob": "QmluYXJ5VmFsdWU="}}))
    assert decide(p, "s3:Get", **{"k:blob": "QmluYXJ5VmFsdWU="}) is Decision.ALLOW
    assert decide(p, "s3:Get", **{"k:blob": "T3RoZXI="}) is Decision.NOT_APPLICABLE


# --- set operators ---------------------------------------------------------------------------------------


def test_for_any_value() -> None:
    # The Cognito identity pool trust policy's amr test.
    p = policy(
        allow("sts:*", Condition={"ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"}})
    )
    amr = "cognito-identity.amazonaws.com:amr"
    assert (
        decide(p, "sts:Assume", **{amr: ["authenticated", "cognito-idp.us-east-1.amazonaws.com/pool"]})
        is Decision.ALLOW
    )
    assert decide(p, "sts:Assume", **{amr: ["unauthenticated"]}) is Decision.NOT_APPLICABLE
    assert decide(p, "sts:Assume", **{amr: []}) is Decision.NOT_APPLICABLE  # empty set: false
    assert decide(p, "sts:Assume") is Decision.NOT_APPLICABLE  # absent: false


def test_for_all_values() -> None:
    # "ForAllValues": every requested tag key must be in the allowed list; no keys at all passes.
    p = policy(allow("ec2:CreateTags", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}))
    assert decide(p, "ec2:CreateTags", **{"aws:TagKeys": ["env"]}) is Decision.ALLOW
    assert decide(p, "ec2:CreateTags", **{"aws:TagKeys": ["env", "team"]}) is Decision.ALLOW
    assert decide(p, "ec2:CreateTags", **{"aws:TagKeys": ["env", "cost"]}) is Decision.NOT_APPLICABLE
    assert decide(p, "ec2:CreateTags", **{"aws:TagKeys": []}) is Decision.ALLOW
    assert decide(p, "ec2:CreateTags") is Decision.ALLOW


def test_for_all_values_negated_and_for_any_value_negated() -> None:
    none_forbidden = policy(allow("ec2:*", Condition={"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}}))
    assert decide(none_forbidden, "ec2:T", **{"aws:TagKeys": ["a", "b"]}) is Decision.ALLOW
    assert decide(none_forbidden, "ec2:T", **{"aws:TagKeys": ["a", "secret"]}) is Decision.NOT_APPLICABLE
    some_other = policy(allow("ec2:*", Condition={"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["secret"]}}))
    assert decide(some_other, "ec2:T", **{"aws:TagKeys": ["secret", "a"]}) is Decision.ALLOW
    assert decide(some_other, "ec2:T", **{"aws:TagKeys": ["secret"]}) is Decision.NOT_APPLICABLE


def test_single_valued_operator_on_a_list_matches_any_member() -> None:
    p = policy(allow("s3:*", Condition={"StringEquals": {"k:groups": "admins"}}))
    assert decide(p, "s3:Get", **{"k:groups": ["users", "admins"]}) is Decision.ALLOW
    q = policy(deny("s3:*", Condition={"StringNotEquals": {"k:groups": "admins"}}))
    assert decide(q, "s3:Get", **{"k:groups": ["users", "admins"]}) is Decision.NOT_APPLICABLE


# --- policy variables ------------------------------------------------------------------------------------


def test_cognito_identity_home_folder() -> None:
    # The guide's "Amazon S3: Allows Amazon Cognito users to access objects in their bucket".
    p = policy(
        allow(
            ["s3:GetObject", "s3:PutObject"],
            ["arn:aws:s3:::bucket/cognito/app/${cognito-identity.amazonaws.com:sub}/*"],
        )
    )
    sub = "us-east-1:1111-2222"
    own = f"arn:aws:s3:::bucket/cognito/app/{sub}/photo.jpg"
    other = "arn:aws:s3:::bucket/cognito/app/us-east-1:9999/photo.jpg"
    assert decide(p, "s3:GetObject", own, **{"cognito-identity.amazonaws.com:sub": sub}) is Decision.ALLOW
    assert decide(p, "s3:GetObject", other, **{"cognito-identity.amazonaws.com:sub": sub}) is Decision.NOT_APPLICABLE
    # No sub in the request: the variable cannot resolve, the statement does not apply.
    assert decide(p, "s3:GetObject", own) is Decision.NOT_APPLICABLE


def test_principal_tag_variable_in_resource_and_condition() -> None:
    p = policy(
        allow("s3:*", "arn:aws:s3:::${aws:PrincipalTag/team}-data/*"),
        allow("dynamodb:*", "*", Condition={"StringEquals": {"dynamodb:LeadingKeys": "${aws:PrincipalTag/team}"}}),
    )
    ctx = {"aws:PrincipalTag/team": "red"}
    assert decide(p, "s3:GetObject", "arn:aws:s3:::red-data/x", **ctx) is Decision.ALLOW
    assert decide(p, "s3:GetObject", "arn:aws:s3:::blue-data/x", **ctx) is Decision.NOT_APPLICABLE
    assert decide(p, "dynamodb:GetItem", **ctx, **{"dynamodb:LeadingKeys": "red"}) is Decision.ALLOW
    assert decide(p, "dynamodb:GetItem", **ctx, **{"dynamodb:LeadingKeys": "blue"}) is Decision.NOT_APPLICABLE


def test_username_variable() -> None:
    p = policy(allow("iam:*AccessKey*", "arn:aws:iam::123456789012:user/${aws:username}"))
    assert (
        decide(p, "iam:CreateAccessKey", "arn:aws:iam::123456789012:user/alice", **{"aws:username": "alice"})
        is Decision.ALLOW
    )
    assert (
        decide(p, "iam:CreateAccessKey", "arn:aws:iam::123456789012:user/bob", **{"aws:username": "alice"})
        is Decision.NOT_APPLICABLE
    )


def test_variables_only_in_version_2012() -> None:
    # Without Version 2012-10-17, ${...} is literal text.
    old = policy(allow("s3:*", "arn:aws:s3:::b/${aws:username}/*"), version=None)
    assert decide(old, "s3:Get", "arn:aws:s3:::b/alice/x", **{"aws:username": "alice"}) is Decision.NOT_APPLICABLE
    assert decide(old, "s3:Get", "arn:aws:s3:::b/${aws:username}/x", **{"aws:username": "alice"}) is Decision.ALLOW


def test_substituted_wildcards_are_literal() -> None:
    # A username of "*" must not turn a per-user resource into a wildcard.
    p = policy(allow("s3:*", "arn:aws:s3:::b/${aws:username}/*"))
    assert decide(p, "s3:Get", "arn:aws:s3:::b/alice/x", **{"aws:username": "*"}) is Decision.NOT_APPLICABLE
    assert decide(p, "s3:Get", "arn:aws:s3:::b/*/x", **{"aws:username": "*"}) is Decision.ALLOW


def test_special_character_variables() -> None:
    p = policy(allow("s3:*", "arn:aws:s3:::b/${*}literal"))
    assert decide(p, "s3:Get", "arn:aws:s3:::b/*literal") is Decision.ALLOW
    assert decide(p, "s3:Get", "arn:aws:s3:::b/xliteral") is Decision.NOT_APPLICABLE


def test_variable_default_value() -> None:
    p = policy(allow("s3:*", "arn:aws:s3:::b/${aws:PrincipalTag/team, 'shared'}/*"))
    assert decide(p, "s3:Get", "arn:aws:s3:::b/shared/x") is Decision.ALLOW
    assert decide(p, "s3:Get", "arn:aws:s3:::b/red/x", **{"aws:PrincipalTag/team": "red"}) is Decision.ALLOW


def test_variables_not_substituted_in_numeric_conditions() -> None:
    p = policy(allow("s3:*", Condition={"NumericEquals": {"k:n": "${k:m}"}}))
    assert decide(p, "s3:Get", **{"k:n": "1", "k:m": "1"}) is Decision.NOT_APPLICABLE


# --- trust policies (Principal) --------------------------------------------------------------------------


def test_trust_policy_principal_and_conditions() -> None:
    trust = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": {
                    "Effect": "Allow",
                    "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {"cognito-identity.amazonaws.com:aud": "us-east-1:pool"},
                        "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
                    },
                },
            }
        ),
        resource_policy=True,
    )
    good = {
        "cognito-identity.amazonaws.com:aud": "us-east-1:pool",
        "cognito-identity.amazonaws.com:amr": ["authenticated"],
    }
    cognito = {"Federated": ["cognito-identity.amazonaws.com"]}
    other = {"Federated": ["accounts.google.com"]}

    def verdict(principal: Any, context: Any) -> Decision:
        return trust.evaluate(Request("sts:AssumeRoleWithWebIdentity", "arn:aws:iam::1:role/r", context, principal))

    assert verdict(cognito, good) is Decision.ALLOW
    assert verdict(other, good) is Decision.NOT_APPLICABLE
    assert (
        verdict(cognito, {**good, "cognito-identity.amazonaws.com:aud": "us-east-1:other"}) is Decision.NOT_APPLICABLE
    )
    assert (
        verdict(cognito, {**good, "cognito-identity.amazonaws.com:amr": ["unauthenticated"]}) is Decision.NOT_APPLICABLE
    )
    assert trust.evaluate(Request("sts:AssumeRole", "*", good, cognito)) is Decision.NOT_APPLICABLE


def test_principal_star_and_not_principal() -> None:
    anyone = parse_policy(
        '{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}}', resource_policy=True
    )
    assert anyone.evaluate(Request("sts:AssumeRole", principal={"AWS": ["arn:aws:iam::1:root"]})) is Decision.ALLOW
    everyone_but = parse_policy(
        '{"Statement": {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Action": "*"}}',
        resource_policy=True,
    )
    assert (
        everyone_but.evaluate(Request("s3:Get", principal={"AWS": ["arn:aws:iam::1:root"]})) is Decision.NOT_APPLICABLE
    )
    assert everyone_but.evaluate(Request("s3:Get", principal={"AWS": ["arn:aws:iam::2:root"]})) is Decision.DENY


# --- malformed documents ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", "invalid Json"),
        ("[]", "invalid Json"),
        ('{"Version": "2012-10-17"}', "missing Statement"),
        ('{"Version": "2099-01-01", "Statement": []}', "valid version"),
        ('{"Statement": []}', "non-empty"),
        ('{"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}', "Effect"),
        ('{"Statement": [{"Effect": "Allow", "Resource": "*"}]}', "actions"),
        ('{"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}]}', "actions"),
        ('{"Statement": [{"Effect": "Allow", "Action": "*"}]}', "resources"),
        ('{"Statement": [{"Effect": "Allow", "Action": "GetObject", "Resource": "*"}]}', "vendor"),
        ('{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}]}', "principal"),
        (
            '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", '
            '"Condition": {"StringSorta": {"a": "b"}}}]}',
            "Condition type",
        ),
        (
            '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", '
            '"Condition": {"StringEquals": {"a": {"x": 1}}}}]}',
            "condition values",
        ),
        (
            '{"Statement": [{"Sid": "a", "Effect": "Allow", "Action": "*", "Resource": "*"}, '
            '{"Sid": "a", "Effect": "Deny", "Action": "*", "Resource": "*"}]}',
            "unique",
        ),
        ('{"Statement": [{"Sid": "no-dashes", "Effect": "Allow", "Action": "*", "Resource": "*"}]}', "alpha-numeric"),
        ('{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Extra": 1}]}', "unknown field"),
        ('{"Statement": [], "Statement": []}', "invalid Json"),
        # NaN and Infinity are Python's extensions, not JSON (RFC 8259 §6).
        (
            '{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", '
            '"Condition": {"NumericLessThan": {"s3:max-keys": NaN}}}]}',
            "invalid Json",
        ),
        ('{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}], "Id": Infinity}', "invalid Json"),
        ('{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}], "Id": -Infinity}', "invalid Json"),
    ],
)
def test_malformed_documents(document: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(document)


def test_trust_policy_needs_principal() -> None:
    with pytest.raises(PolicyError, match="Principal"):
        parse_policy('{"Statement": {"Effect": "Allow", "Action": "sts:AssumeRole"}}', resource_policy=True)
    with pytest.raises(PolicyError, match="principal"):
        parse_policy(
            '{"Statement": {"Effect": "Allow", "Principal": {"Robot": "x"}, "Action": "sts:AssumeRole"}}',
            resource_policy=True,
        )


def test_single_statement_object_and_2008_version() -> None:
    p = parse_policy('{"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}')
    assert decide(p, "s3:Get") is Decision.ALLOW
