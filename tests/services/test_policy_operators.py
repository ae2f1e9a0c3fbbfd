"""Policy evaluation cases: ``...IfExists`` with a set operator, ``NotPrincipal`` only with
``Deny`` (IAM User Guide, "IAM JSON policy elements: Condition operators" and "NotPrincipal")."""

from __future__ import annotations

import json
import time

import pytest

from gateway.services.policy import Decision, PolicyError, Request, parse_policy


def _allow_if(condition: dict[str, object]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": condition}],
        }
    )


@pytest.mark.parametrize("qualifier", ["ForAnyValue", "ForAllValues"])
def test_if_exists_with_a_set_operator_is_true_when_the_key_is_missing(qualifier: str) -> None:
    policy = parse_policy(_allow_if({f"{qualifier}:StringEqualsIfExists": {"aws:TagKeys": ["team", "owner"]}}))
    assert policy.evaluate(Request("s3:PutObject")) is Decision.ALLOW
    assert policy.evaluate(Request("s3:PutObject", context={"aws:TagKeys": []})) is Decision.ALLOW
    # Present: judged as the set operator says.
    assert policy.evaluate(Request("s3:PutObject", context={"aws:TagKeys": ["team"]})) is Decision.ALLOW
    assert policy.evaluate(Request("s3:PutObject", context={"aws:TagKeys": ["cost"]})) is Decision.NOT_APPLICABLE


def test_for_any_value_without_if_exists_is_false_when_the_key_is_missing() -> None:
    policy = parse_policy(_allow_if({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}))
    assert policy.evaluate(Request("s3:PutObject")) is Decision.NOT_APPLICABLE
    assert policy.evaluate(Request("s3:PutObject", context={"aws:TagKeys": []})) is Decision.NOT_APPLICABLE


@pytest.mark.parametrize("resource_policy", [True, False])
def test_not_principal_with_allow_is_malformed(resource_policy: bool) -> None:
    statement: dict[str, object] = {
        "Effect": "Allow",
        "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    if not resource_policy:
        statement["Resource"] = "*"
    with pytest.raises(PolicyError, match=r"(?i)principal"):
        parse_policy(json.dumps({"Version": "2012-10-17", "Statement": [statement]}), resource_policy=resource_policy)


def test_not_principal_with_deny_still_excludes_the_named_principal() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
                    {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:AssumeRole"},
                ],
            }
        ),
        resource_policy=True,
    )
    assert policy.evaluate(Request("sts:AssumeRole", principal={"AWS": ["arn:aws:iam::1:root"]})) is Decision.ALLOW
    assert policy.evaluate(Request("sts:AssumeRole", principal={"AWS": ["arn:aws:iam::2:root"]})) is Decision.DENY
    assert policy.evaluate(Request("sts:AssumeRole", principal={"Federated": ["x.example"]})) is Decision.DENY


def test_many_wildcards_against_a_long_resource_take_linear_time() -> None:
    """A pattern with several ``*`` against a long value that fails late: with one backtracking regular expression
    this took minutes (the value is the caller's, e.g. an S3 key); now a pass over the value per piece."""
    policy = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::photos/*/*/*/*/*/*.jpg",
                        "Condition": {"StringLike": {"s3:prefix": "*a*a*a*a*a*b"}},
                    }
                ],
            }
        )
    )
    miss = "arn:aws:s3:::photos/" + "a/" * 4000 + "x.png"
    hit = "arn:aws:s3:::photos/" + "a/" * 4000 + "x.jpg"
    started = time.perf_counter()
    assert policy.evaluate(Request("s3:GetObject", miss, {"s3:prefix": "ab"})) is Decision.NOT_APPLICABLE
    assert policy.evaluate(Request("s3:GetObject", hit, {"s3:prefix": "a" * 4000 + "c"})) is Decision.NOT_APPLICABLE
    assert policy.evaluate(Request("s3:GetObject", hit, {"s3:prefix": "a" * 4000 + "b"})) is Decision.ALLOW
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("a*", "a", True),
        ("*a", "a", True),
        ("a*a", "a", False),  # the two ends may not share a character
        ("a*a", "aa", True),
        ("*ab*ba*", "aba", False),
        ("*ab*ba*", "abba", True),
        ("?*?", "x", False),
        ("?*?", "xy", True),
        ("a**b", "ab", True),
        ("x/*/y", "x//y", True),
        ("x/*/y", "x/y", False),
        ("*", "", True),
        ("", "", True),
        ("a?c", "a\nc", True),
    ],
)
def test_wildcard_edges(pattern: str, value: str, matches: bool) -> None:
    policy = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"StringLike": {"k": pattern}}}
                ],
            }
        )
    )
    verdict = policy.evaluate(Request("s3:GetObject", context={"k": value}))
    assert (verdict is Decision.ALLOW) is matches
