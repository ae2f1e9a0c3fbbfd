"""Trust checks of GetCredentialsForIdentity, remembered only where they cannot differ: what a trust policy
reads (``Policy.context_keys_read``), and ``PoolTrust`` answering exactly what the full check answers -- per
identity when the policy reads ``sub``, per second when it reads the time, afresh when the policy changes,
never remembered with session tags."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.services.iam import COGNITO_IDENTITY_PROVIDER, IamService, Role, WebIdentity
from gateway.services.identity_credentials import TRUST_VERDICTS, PoolTrust
from gateway.services.policy import parse_policy
from gateway.storage.sqlite import SqliteStore

ACCOUNT = "123456789012"
AUD = f"{COGNITO_IDENTITY_PROVIDER}:aud"
AMR = f"{COGNITO_IDENTITY_PROVIDER}:amr"
SUB = f"{COGNITO_IDENTITY_PROVIDER}:sub"
AUTHENTICATED = ("authenticated", "example.com/us-east-1_Pool", "example.com/us-east-1_Pool:CognitoSignIn:u")


def trust(*conditions: dict[str, Any], action: str = "sts:AssumeRoleWithWebIdentity") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": COGNITO_IDENTITY_PROVIDER},
                    "Action": [action, "sts:TagSession"],
                    "Condition": condition,
                }
                for condition in conditions
            ],
        }
    )


def console_trust(pool_id: str, amr: str = "authenticated") -> str:
    """What the Cognito console writes for an identity pool's role."""
    return trust({"StringEquals": {AUD: pool_id}, "ForAnyValue:StringLike": {AMR: amr}})


@pytest.fixture
async def iam() -> AsyncIterator[IamService]:
    store = await SqliteStore.open(":memory:")
    yield IamService(store, account_id=ACCOUNT)
    await store.close()


class Checks:
    """PoolTrust in front of IamService.trust_allows, counting the full checks it makes."""

    def __init__(self, iam: IamService, size: int = TRUST_VERDICTS) -> None:
        self.iam = iam
        self.trust = PoolTrust(size)
        self.full = 0

    def allows(self, role: Role, pool_id: str, identity_id: str, amr: tuple[str, ...], tags: dict[str, str]) -> bool:
        identity = WebIdentity(COGNITO_IDENTITY_PROVIDER, identity_id, (pool_id,), amr)

        def decide() -> bool:
            self.full += 1
            return self.iam.trust_allows(role, identity, request_tags=tags or None)

        remembered = self.trust.allows(role, pool_id, amr, tags, decide)
        assert remembered is self.iam.trust_allows(role, identity, request_tags=tags or None)
        return remembered


def test_what_a_policy_reads() -> None:
    policy = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::b/${aws:PrincipalTag/Team}/${ aws:username , 'nobody'}/${*}",
                        "Condition": {"StringLike": {"S3:Prefix": "${Cognito-Identity.amazonaws.com:sub}/*"}},
                    }
                ],
            }
        )
    )
    assert policy.context_keys_read == {
        "aws:principaltag/team",
        "aws:username",
        "s3:prefix",
        "cognito-identity.amazonaws.com:sub",
    }
    assert parse_policy(console_trust("p"), resource_policy=True).context_keys_read == {AUD, AMR}


async def test_a_console_trust_policy_is_checked_once_per_pool_and_sign_in_kind(iam: IamService) -> None:
    role = await iam.create_role("console", console_trust("pool-a"))
    checks = Checks(iam)
    assert checks.allows(role, "pool-a", "id-1", AUTHENTICATED, {})
    assert checks.allows(role, "pool-a", "id-2", AUTHENTICATED, {})
    assert checks.full == 1
    # Another pool, another sign-in kind: checked (and refused) on their own.
    assert not checks.allows(role, "pool-b", "id-1", AUTHENTICATED, {})
    assert not checks.allows(role, "pool-a", "id-3", ("unauthenticated",), {})
    assert not checks.allows(role, "pool-a", "id-3", (), {})
    assert checks.full == 4
    assert not checks.allows(role, "pool-b", "id-9", AUTHENTICATED, {})
    assert checks.full == 4


async def test_a_changed_trust_policy_is_checked_afresh(iam: IamService) -> None:
    role = await iam.create_role("changing", console_trust("pool-a"))
    checks = Checks(iam)
    assert checks.allows(role, "pool-a", "id-1", AUTHENTICATED, {})
    await iam.update_role("changing", assume_role_policy=console_trust("pool-a", amr="unauthenticated"))
    changed = await iam.get_role("changing")
    assert not checks.allows(changed, "pool-a", "id-1", AUTHENTICATED, {})
    await iam.update_role("changing", assume_role_policy=console_trust("pool-a"))
    assert checks.allows(await iam.get_role("changing"), "pool-a", "id-1", AUTHENTICATED, {})


async def test_a_policy_reading_the_identity_or_the_time_is_checked_every_time(iam: IamService) -> None:
    per_identity = await iam.create_role("per-identity", trust({"StringEquals": {AUD: "pool-a", SUB: "id-1"}}))
    timed = await iam.create_role(
        "timed", trust({"StringEquals": {AUD: "pool-a"}, "DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}})
    )
    checks = Checks(iam)
    assert checks.allows(per_identity, "pool-a", "id-1", AUTHENTICATED, {})
    assert not checks.allows(per_identity, "pool-a", "id-2", AUTHENTICATED, {})
    assert checks.allows(per_identity, "pool-a", "id-1", AUTHENTICATED, {})
    assert not checks.allows(timed, "pool-a", "id-1", AUTHENTICATED, {})
    assert not checks.allows(timed, "pool-a", "id-1", AUTHENTICATED, {})
    assert checks.full == 5


async def test_session_tags_are_checked_every_time(iam: IamService) -> None:
    no_tagging = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": COGNITO_IDENTITY_PROVIDER},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {AUD: "pool-a"}},
                }
            ],
        }
    )
    role = await iam.create_role("no-tagging", no_tagging)
    checks = Checks(iam)
    assert checks.allows(role, "pool-a", "id-1", AUTHENTICATED, {})
    # Tags need sts:TagSession, which this policy does not allow: refused, though the same call without tags
    # was allowed (and remembered).
    assert not checks.allows(role, "pool-a", "id-1", AUTHENTICATED, {"team": "a"})
    assert not checks.allows(role, "pool-a", "id-1", AUTHENTICATED, {"team": "a"})
    assert checks.full == 3


async def test_remembered_verdicts_are_bounded(iam: IamService) -> None:
    role = await iam.create_role("bounded", console_trust("pool-7"))
    checks = Checks(iam, size=4)
    for _ in range(2):
        for n in range(10):
            assert checks.allows(role, f"pool-{n}", "id", AUTHENTICATED, {}) is (n == 7)
            assert len(checks.trust._verdicts) <= 4
