"""Passthrough roles: Gatehouse decides who may assume the role, a real AWS STS API (moto's server, started
locally) mints the credentials, and those credentials work against that AWS endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.e2e.aws_support import aws_client, moto_server, oidc_trust
from tests.support import REGION, GatehouseServer

MOTO_ACCOUNT = "123456789012"
MOTO_KEY = "AKIAGATEHOUSEMOTO01"
MOTO_SECRET = "moto-secret-key"
PASSWORD = "Correct-horse-1"


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture(scope="module")
def gatehouse_aws(tmp_path_factory: pytest.TempPathFactory, moto_url: str) -> Iterator[GatehouseServer]:
    config = f"""version: 1
iam:
  aws:
    sts_endpoint_url: {moto_url}
    region: {REGION}
    access_key_id: {MOTO_KEY}
    secret_access_key: "${{MOTO_SECRET}}"
"""
    data_dir: Path = tmp_path_factory.mktemp("passthrough") / "data"
    server = GatehouseServer(data_dir, config=config, extra_env={"MOTO_SECRET": MOTO_SECRET})
    server.start()
    yield server
    server.stop()


def test_passthrough_role_gets_aws_credentials(gatehouse_aws: GatehouseServer, moto_url: str) -> None:
    # The AWS side: a role in "AWS" (moto) that Gatehouse's AWS principal may assume.
    aws_iam = aws_client("iam", moto_url, MOTO_KEY, MOTO_SECRET)
    aws_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{MOTO_ACCOUNT}:root"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
    aws_role_arn = aws_iam.create_role(RoleName="real-readers", AssumeRolePolicyDocument=json.dumps(aws_trust))["Role"][
        "Arn"
    ]

    # The Gatehouse side: a pool whose ID tokens may assume a role standing for the AWS one.
    idp = gatehouse_aws.client()
    pool_id = idp.create_user_pool(PoolName="aws")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="carol", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="carol", Password=PASSWORD, Permanent=True)
    provider = f"127.0.0.1:{gatehouse_aws.port}/{pool_id}"
    iam = gatehouse_aws.client("iam")
    role_arn = iam.create_role(
        RoleName="readers",
        AssumeRolePolicyDocument=oidc_trust(provider, client_id),
        Tags=[{"Key": "gatehouse:aws-role-arn", "Value": aws_role_arn}],
    )["Role"]["Arn"]
    token = gatehouse_aws.client(signed=False).initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "carol", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["IdToken"]

    sts = gatehouse_aws.client("sts", signed=False)
    answer = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="carol-aws", WebIdentityToken=token)
    creds = answer["Credentials"]
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/real-readers/carol-aws"

    # They are AWS's credentials: the AWS endpoint knows who they are.
    me = aws_client("sts", moto_url, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert me.get_caller_identity()["Arn"] == f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/real-readers/carol-aws"

    # Gatehouse's trust policy still decides: a token of another client is refused before AWS is asked.
    other_client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="other",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    other_token = gatehouse_aws.client(signed=False).initiate_auth(
        ClientId=other_client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "carol", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["IdToken"]
    with pytest.raises(ClientError) as denied:
        sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="carol-aws", WebIdentityToken=other_token)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
