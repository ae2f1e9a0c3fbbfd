"""Claim -> group rules managed through the Cognito API with an unmodified boto3 client: the Gatehouse-specific
ProviderDetails key ``gatehouse_group_rules`` (a JSON list) on CreateIdentityProvider / UpdateIdentityProvider,
described back, applied at sign-in through a fake OIDC provider, changed by UpdateIdentityProvider -- and the
memberships an administrator made by hand never taken away by a rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.federation_support import Flow, corp_details, granted_groups, verified_id_token, without_provider_groups
from tests.e2e.oauth_support import CALLBACK, query_of
from tests.fakes.oauth import FakeOIDC
from tests.support import GatehouseServer

ADMIN_ROLE = "arn:aws:iam::000000000000:role/CorpAdmins"
USERNAME = "Corp_emp-42"


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC(client_id="corp-client", client_secret="corp-secret") as server:
        yield server


def rules_json(*rules: dict[str, str]) -> str:
    return json.dumps(list(rules))


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    pool = str(idp.create_user_pool(PoolName="rules-api")["UserPool"]["Id"])
    idp.create_group(UserPoolId=pool, GroupName="admins", RoleArn=ADMIN_ROLE, Precedence=0)
    idp.create_group(UserPoolId=pool, GroupName="engineers")
    idp.create_group(UserPoolId=pool, GroupName="auditors")
    return pool


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, corp: FakeOIDC) -> str:
    rules = rules_json(
        {"claim": "groups", "match": "equals", "value": "corp-admins", "group": "admins"},
        {"claim": "groups", "match": "starts-with", "value": "eng-", "group": "engineers"},
    )
    created = idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC",
        ProviderDetails=corp_details(corp, gatehouse_group_rules=rules),
        AttributeMapping={"email": "email"}, IdpIdentifiers=["corp.example"],
    )  # fmt: skip
    assert json.loads(created["IdentityProvider"]["ProviderDetails"]["gatehouse_group_rules"]) == json.loads(rules)
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK], SupportedIdentityProviders=["Corp"],
    )  # fmt: skip
    return str(client["UserPoolClient"]["ClientId"])


def sign_in(gatehouse: GatehouseServer, pool_id: str, client_id: str) -> dict[str, Any]:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="Corp", scope="openid email"))
    assert response.status_code == 303, response.text
    tokens = flow.tokens(query_of(response.headers["Location"])["code"])
    return without_provider_groups(verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"]), pool_id)


def member_of(idp: Any, pool_id: str) -> list[str]:
    return granted_groups(idp.admin_list_groups_for_user(UserPoolId=pool_id, Username=USERNAME)["Groups"], pool_id)


def set_rules(idp: Any, pool_id: str, *rules: dict[str, str]) -> None:
    idp.update_identity_provider(
        UserPoolId=pool_id, ProviderName="Corp", ProviderDetails={"gatehouse_group_rules": rules_json(*rules)}
    )


def test_rules_are_described_like_the_provider_details(idp: Any, pool_id: str, client_id: str) -> None:
    described = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Corp")["IdentityProvider"]
    by_identifier = idp.get_identity_provider_by_identifier(UserPoolId=pool_id, IdpIdentifier="corp.example")
    details = described["ProviderDetails"]
    assert json.loads(details["gatehouse_group_rules"]) == [
        {"claim": "groups", "match": "equals", "value": "corp-admins", "group": "admins"},
        {"claim": "groups", "match": "starts-with", "value": "eng-", "group": "engineers"},
    ]
    assert (
        by_identifier["IdentityProvider"]["ProviderDetails"]["gatehouse_group_rules"]
        == details["gatehouse_group_rules"]
    )
    assert details["client_id"] == "corp-client" and "gatehouse_link_by_verified_email" not in details
    # A describe -> update round trip of every described key changes nothing.
    idp.update_identity_provider(UserPoolId=pool_id, ProviderName="Corp", ProviderDetails=details)
    again = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Corp")["IdentityProvider"]
    assert again["ProviderDetails"]["gatehouse_group_rules"] == details["gatehouse_group_rules"]


def test_rules_follow_the_api_and_spare_hand_made_memberships(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    corp.user = {"sub": "emp-42", "email": "emp42@corp.example", "groups": ["corp-admins"]}
    claims = sign_in(gatehouse, pool_id, client_id)
    assert claims["cognito:username"] == USERNAME and claims["cognito:groups"] == ["admins"]
    assert claims["cognito:roles"] == [ADMIN_ROLE] and claims["cognito:preferred_role"] == ADMIN_ROLE

    # By hand: engineers (a group a rule names, but that rule does not match this user) and auditors.
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=USERNAME, GroupName="engineers")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=USERNAME, GroupName="auditors")
    claims = sign_in(gatehouse, pool_id, client_id)
    assert sorted(claims["cognito:groups"]) == ["admins", "auditors", "engineers"]

    # The admins rule is gone: the membership it granted goes; the hand-made ones stay, even where a new rule
    # now names and matches them (auditors).
    auditors = {"claim": "groups", "match": "regex", "value": "^corp-(admins|audit)$", "group": "auditors"}
    set_rules(idp, pool_id, auditors)
    claims = sign_in(gatehouse, pool_id, client_id)
    assert sorted(claims["cognito:groups"]) == ["auditors", "engineers"] and "cognito:roles" not in claims
    assert "cognito:preferred_role" not in claims

    # Taken out by hand, auditors comes back from the rule -- now as the rule's own.
    idp.admin_remove_user_from_group(UserPoolId=pool_id, Username=USERNAME, GroupName="auditors")
    assert member_of(idp, pool_id) == ["engineers"]
    sign_in(gatehouse, pool_id, client_id)
    assert member_of(idp, pool_id) == ["auditors", "engineers"]

    # Rules that grant admins again; then an administrator adds admins by hand, which makes it hand-made.
    set_rules(idp, pool_id, auditors, {"claim": "groups", "match": "contains", "value": "admins", "group": "admins"})
    claims = sign_in(gatehouse, pool_id, client_id)
    assert sorted(claims["cognito:groups"]) == ["admins", "auditors", "engineers"]
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=USERNAME, GroupName="admins")

    # No rules at all: what the rules granted (auditors) goes; admins (now by hand) and engineers stay.
    set_rules(idp, pool_id)
    described = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Corp")["IdentityProvider"]
    assert "gatehouse_group_rules" not in described["ProviderDetails"]
    claims = sign_in(gatehouse, pool_id, client_id)
    assert sorted(claims["cognito:groups"]) == ["admins", "engineers"]
    assert claims["cognito:preferred_role"] == ADMIN_ROLE
    assert member_of(idp, pool_id) == ["admins", "engineers"]


def test_upstream_change_removes_only_rule_granted_groups(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    set_rules(idp, pool_id, {"claim": "groups", "match": "starts-with", "value": "eng-", "group": "engineers"})
    corp.user = {"sub": "emp-77", "email": "emp77@corp.example", "groups": ["eng-web"]}
    assert sign_in(gatehouse, pool_id, client_id)["cognito:groups"] == ["engineers"]
    corp.user = {"sub": "emp-77", "email": "emp77@corp.example", "groups": ["sales"]}
    claims = sign_in(gatehouse, pool_id, client_id)
    assert "cognito:groups" not in claims
    assert (
        granted_groups(idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="Corp_emp-77")["Groups"], pool_id)
        == []
    )


BAD_RULES = [
    ("[{", "must be a JSON list of rules"),
    ('{"claim": "groups"}', "must be a list"),
    (rules_json({"claim": "groups", "match": "fuzzy", "value": "x", "group": "admins"}), "match must be one of"),
    (rules_json({"claim": "groups", "match": "regex", "value": "(unclosed", "group": "admins"}), "not a valid regex"),
    (rules_json({"claim": "groups", "value": "x", "group": "nosuch"}), "group nosuch does not exist"),
    (rules_json({"claim": "groups", "value": "x"}), "needs non-empty claim, value and group"),
    (json.dumps([{"claim": "groups", "value": "x", "group": "admins", "role": "y"}]), "claim, match, value and group"),
    (rules_json({"claim": "groups", "value": "x" * 1025, "group": "admins"}), "at most 256, 1024 and 128"),
    (json.dumps([{"claim": "groups", "value": "x", "group": "admins"}] * 101), "at most 100 rules"),
]


@pytest.mark.parametrize(("value", "message"), BAD_RULES)
def test_invalid_rules_are_refused_on_create_and_update(
    idp: Any, pool_id: str, client_id: str, corp: FakeOIDC, value: str, message: str
) -> None:
    before = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Corp")["IdentityProvider"]
    with pytest.raises(ClientError) as refused:
        idp.update_identity_provider(
            UserPoolId=pool_id, ProviderName="Corp", ProviderDetails={"gatehouse_group_rules": value}
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParameterException" and message in error["Message"], error
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    after = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Corp")["IdentityProvider"]
    assert after == before

    with pytest.raises(ClientError) as refused:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Corp2", ProviderType="OIDC",
            ProviderDetails=corp_details(corp, gatehouse_group_rules=value),
        )  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    names = {p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=pool_id)["Providers"]}
    assert names == {"Corp"}


@pytest.mark.parametrize(
    ("details", "message"),
    [
        ({"gatehouse_nope": "1"}, "Unknown Gatehouse ProviderDetails key gatehouse_nope"),
        ({"gatehouse_link_by_verified_email": "yes"}, "must be true or false"),
        # This pool does not sign in with email, so "the native user with this email" is not one user.
        ({"gatehouse_link_by_verified_email": "true"}, "signs in with email"),
    ],
)
def test_other_gatehouse_keys_are_checked(idp: Any, pool_id: str, client_id: str, details: Any, message: str) -> None:
    before = idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Corp")["IdentityProvider"]
    with pytest.raises(ClientError) as refused:
        idp.update_identity_provider(UserPoolId=pool_id, ProviderName="Corp", ProviderDetails=details)
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParameterException" and message in error["Message"], error
    assert idp.describe_identity_provider(UserPoolId=pool_id, ProviderName="Corp")["IdentityProvider"] == before
