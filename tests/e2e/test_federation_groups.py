"""Claim -> group rules end to end: a provider declared in the config file with group rules, a fake OIDC
provider whose ``groups`` claim changes between sign-ins, and the ``cognito:groups`` / ``cognito:roles`` of
the tokens following it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.federation_support import Flow, granted_groups, verified_id_token, without_provider_groups
from tests.e2e.oauth_support import CALLBACK, query_of
from tests.fakes.oauth import FakeOIDC
from tests.support import GatehouseServer

POOL = "us-east-1_FedGroups1"
ADMIN_ROLE = "arn:aws:iam::000000000000:role/Admins"


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC(client_id="corp-client", client_secret="corp-secret") as server:
        yield server


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, corp: FakeOIDC) -> Iterator[GatehouseServer]:
    config = f"""\
version: 1
pools:
  - id: {POOL}
    name: groups
    groups:
      - {{name: admins, role_arn: "{ADMIN_ROLE}", precedence: 0}}
      - {{name: engineers}}
    clients:
      - id: spa
        name: spa
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid, email]
        callback_urls: ["{CALLBACK}"]
        supported_identity_providers: [Corp]
    identity_providers:
      - name: Corp
        type: OIDC
        details: {{client_id: corp-client, authorize_scopes: openid email, oidc_issuer: "{corp.issuer}",
                  attributes_request_method: GET}}
        client_secret: "${{CORP_SECRET}}"
        attribute_mapping: {{email: email}}
        group_rules:
          - {{claim: groups, match: equals, value: corp-admins, group: admins}}
          - {{claim: groups, match: starts-with, value: eng-, group: engineers}}
"""
    data_dir: Path = tmp_path_factory.mktemp("fedgroups") / "data"
    server = GatehouseServer(data_dir, config=config, extra_env={"CORP_SECRET": "corp-secret"})
    server.start()
    yield server
    server.stop()


def sign_in(gatehouse: GatehouseServer) -> dict[str, Any]:
    flow = Flow(gatehouse, "spa")
    response = flow.run(flow.authorize_url(identity_provider="Corp", scope="openid email"))
    assert response.status_code == 303, response.text
    tokens = flow.tokens(query_of(response.headers["Location"])["code"])
    return without_provider_groups(verified_id_token(gatehouse, POOL, "spa", tokens["id_token"]), POOL)


def test_groups_follow_the_upstream(gatehouse: GatehouseServer, corp: FakeOIDC) -> None:
    corp.user = {"sub": "emp-9", "email": "emp9@corp.example", "groups": ["corp-admins", "eng-platform"]}
    claims = sign_in(gatehouse)
    assert claims["cognito:username"] == "corp_emp-9"
    assert sorted(claims["cognito:groups"]) == ["admins", "engineers"]
    assert claims["cognito:roles"] == [ADMIN_ROLE] and claims["cognito:preferred_role"] == ADMIN_ROLE
    corp.user = {"sub": "emp-9", "email": "emp9@corp.example", "groups": ["eng-web"]}
    claims = sign_in(gatehouse)
    assert claims["cognito:groups"] == ["engineers"] and "cognito:roles" not in claims
    listed = gatehouse.client().admin_list_groups_for_user(UserPoolId=POOL, Username="Corp_emp-9")["Groups"]
    assert granted_groups(listed, POOL) == ["engineers"]


def test_config_rules_are_described_as_the_api_sets_them(gatehouse: GatehouseServer) -> None:
    """The file's group_rules and the API's gatehouse_group_rules are the same stored data."""
    idp = gatehouse.client()
    described = idp.describe_identity_provider(UserPoolId=POOL, ProviderName="Corp")["IdentityProvider"]
    details = described["ProviderDetails"]
    assert json.loads(details["gatehouse_group_rules"]) == [
        {"claim": "groups", "match": "equals", "value": "corp-admins", "group": "admins"},
        {"claim": "groups", "match": "starts-with", "value": "eng-", "group": "engineers"},
    ]
    # Sent back through the API unchanged, the rules stay what the file says.
    idp.update_identity_provider(UserPoolId=POOL, ProviderName="Corp", ProviderDetails=details)
    again = idp.describe_identity_provider(UserPoolId=POOL, ProviderName="Corp")["IdentityProvider"]
    assert again["ProviderDetails"]["gatehouse_group_rules"] == details["gatehouse_group_rules"]
