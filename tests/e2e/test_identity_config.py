"""Identity pools declared in the config file: created with their fixed ids at start, kept at restarts,
updated when the file changes, usable end to end; bad entries refused at load with their key path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from gateway.config_file import ConfigError, load_config
from tests.e2e.aws_support import aws_client
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

POOL_ID = "us-east-1_Config01"
CLIENT_ID = "configapp0000000000000001"
IDENTITY_POOL = "us-east-1:0c0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
PASSWORD = "Config-password-1"


def config(name: str = "declared identities") -> str:
    trust = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                    "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
                    "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": IDENTITY_POOL}},
                }
            ],
        }
    )
    return f"""version: 1
pools:
  - id: {POOL_ID}
    name: config
    clients:
      - id: {CLIENT_ID}
        name: app
        explicit_auth_flows: [ALLOW_ADMIN_USER_PASSWORD_AUTH]
    groups:
      - {{name: editors, role_arn: "arn:aws:iam::000000000000:role/config-editors", precedence: 1}}
    users:
      - {{username: erin, password: "{PASSWORD}", groups: [editors]}}
iam:
  roles:
    - {{name: config-users, trust_policy: '{trust}'}}
    - {{name: config-editors, trust_policy: '{trust}'}}
identity_pools:
  - id: "{IDENTITY_POOL}"
    name: {name}
    allow_unauthenticated: false
    developer_provider_name: login.config.app
    cognito_identity_providers:
      - {{user_pool: {POOL_ID}, client_id: {CLIENT_ID}, server_side_token_check: true}}
    roles: {{authenticated: "arn:aws:iam::000000000000:role/config-users"}}
    role_mappings:
      "cognito-idp.{REGION}.amazonaws.com/{POOL_ID}:{CLIENT_ID}":
        {{Type: Token, AmbiguousRoleResolution: AuthenticatedRole}}
    principal_tags:
      "cognito-idp.{REGION}.amazonaws.com/{POOL_ID}": {{use_defaults: true}}
    tags: {{team: config}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    # Two worker processes apply the file at once at every start: a create that loses the race must not fail.
    # Signing keys are trusted from cache for 1 s (not 60 s), so a rotation shows at once.
    gatehouse = GatehouseServer(
        tmp_path_factory.mktemp("identity-config") / "data",
        config=config(),
        workers=2,
        extra_env={"GATEHOUSE_KEY_CACHE_SECONDS": "1"},
    )
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


def credentials_arn(gatehouse: GatehouseServer) -> str:
    idp = gatehouse.client()
    token = idp.admin_initiate_auth(
        UserPoolId=POOL_ID,
        ClientId=CLIENT_ID,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "erin", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["IdToken"]
    public = gatehouse.client("cognito-identity", signed=False)
    logins = {f"cognito-idp.{REGION}.amazonaws.com/{POOL_ID}": token}
    identity = public.get_id(IdentityPoolId=IDENTITY_POOL, Logins=logins)["IdentityId"]
    credentials = public.get_credentials_for_identity(IdentityId=identity, Logins=logins)["Credentials"]
    sts = aws_client(
        "sts", gatehouse.url, credentials["AccessKeyId"], credentials["SecretKey"], credentials["SessionToken"]
    )
    return str(sts.get_caller_identity()["Arn"])


def test_declared_pool_exists_with_its_id_and_works(server: GatehouseServer) -> None:
    ci = server.client("cognito-identity")
    pool = ci.describe_identity_pool(IdentityPoolId=IDENTITY_POOL)
    assert pool["IdentityPoolName"] == "declared identities"
    assert pool["DeveloperProviderName"] == "login.config.app" and pool["IdentityPoolTags"] == {"team": "config"}
    assert pool["CognitoIdentityProviders"] == [
        {
            "ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{POOL_ID}",
            "ClientId": CLIENT_ID,
            "ServerSideTokenCheck": True,
        }
    ]
    roles = ci.get_identity_pool_roles(IdentityPoolId=IDENTITY_POOL)
    assert roles["Roles"] == {"authenticated": "arn:aws:iam::000000000000:role/config-users"}
    tags = ci.get_principal_tag_attribute_map(
        IdentityPoolId=IDENTITY_POOL, IdentityProviderName=f"cognito-idp.{REGION}.amazonaws.com/{POOL_ID}"
    )
    assert tags["UseDefaults"] is True
    # Token role mapping: erin's group role is her preferred role.
    assert credentials_arn(server).endswith("/config-editors/CognitoIdentityCredentials")


def test_restart_keeps_and_a_changed_file_updates(server: GatehouseServer) -> None:
    ci = server.client("cognito-identity")

    def described() -> dict[str, Any]:
        answer = dict(ci.describe_identity_pool(IdentityPoolId=IDENTITY_POOL))
        answer.pop("ResponseMetadata")
        return answer

    before = described()
    server.stop()
    server.start()
    assert described() == before
    assert server.config_path is not None
    server.config_path.write_text(config(name="renamed identities"))
    server.stop()
    server.start()
    assert ci.describe_identity_pool(IdentityPoolId=IDENTITY_POOL)["IdentityPoolName"] == "renamed identities"
    assert len(ci.list_identity_pools(MaxResults=60)["IdentityPools"]) == 1


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda text: text.replace(f'id: "{IDENTITY_POOL}"', 'id: "not an id"'), "identity_pools[0].id"),
        (lambda text: text.replace("name: declared identities", "name: bad/name"), "identity_pools[0]"),
        (lambda text: text.replace("Type: Token", "Type: Guess"), "identity_pools[0]"),
        (lambda text: text.replace("allow_unauthenticated: false", "allow_guests: false"), "identity_pools[0]"),
    ],
)
def test_bad_entries_are_refused_at_load(tmp_path: Path, change: Any, where: str) -> None:
    path = tmp_path / "gatehouse.yaml"
    path.write_text(change(config()))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert any(problem.where.startswith(where) for problem in caught.value.problems), caught.value.problems


def test_keys_rotate_identity_while_the_server_runs(server: GatehouseServer) -> None:
    ci = server.client("cognito-identity")
    public = server.client("cognito-identity", signed=False)

    def developer_token() -> dict[str, Any]:
        answer = ci.get_open_id_token_for_developer_identity(
            IdentityPoolId=IDENTITY_POOL, Logins={"login.config.app": "rotating-user"}
        )
        return dict(answer)

    def published() -> set[str]:
        with urllib.request.urlopen(f"{server.url}/identity/.well-known/jwks.json", timeout=10) as response:
            return {key["kid"] for key in json.load(response)["keys"]}

    first = developer_token()
    old_kid = jwt.get_unverified_header(first["Token"])["kid"]
    rotated = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "keys",
            "rotate",
            "--now",
            "--data-dir",
            str(server.data_dir),
            "identity",
        ],
        env={
            **os.environ,
            "GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID,
            "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rotated.returncode == 0, rotated.stderr
    deadline = time.monotonic() + 15
    new_kid = old_kid
    while new_kid == old_kid and time.monotonic() < deadline:
        time.sleep(0.25)
        new_kid = jwt.get_unverified_header(developer_token()["Token"])["kid"]
    assert new_kid != old_kid and new_kid in rotated.stdout
    assert {old_kid, new_kid} <= published()
    # The token signed before the rotation still proves its identity.
    proof = {"cognito-identity.amazonaws.com": first["Token"]}
    answer = public.get_credentials_for_identity(IdentityId=first["IdentityId"], Logins=proof)
    assert answer["IdentityId"] == first["IdentityId"]
