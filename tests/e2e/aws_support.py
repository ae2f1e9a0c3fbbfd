"""Shared helpers of the identity-pool, IAM and STS tests: the role trust policies the Cognito and IAM consoles
write, and boto3 clients signed with temporary credentials."""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config

from tests.support import REGION

ACCOUNT = "000000000000"


def aws_client(service: str, url: str, key: str, secret: str, token: str | None = None) -> Any:
    """A boto3 client at ``url`` signed with the given (temporary) credentials; one attempt per call."""
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def identity_trust(pool_id: str, amr: str = "authenticated", *, tag_session: bool = False) -> str:
    """A role trust policy as the Cognito console writes it for an identity pool (``amr``: authenticated or
    unauthenticated identities); ``tag_session`` also allows sts:TagSession (principal tags)."""
    action: str | list[str] = "sts:AssumeRoleWithWebIdentity"
    if tag_session:
        action = ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                    "Action": action,
                    "Condition": {
                        "StringEquals": {"cognito-identity.amazonaws.com:aud": pool_id},
                        "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": amr},
                    },
                }
            ],
        }
    )


def oidc_trust(provider: str, audience: str, **extra_conditions: Any) -> str:
    """A role trust policy for the ID tokens of an IAM OIDC provider (``provider``: its URL without the
    scheme) issued to ``audience``."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{provider}"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {f"{provider}:aud": audience, **extra_conditions}},
                }
            ],
        }
    )


def signed_in_user(idp: Any, pool_name: str, username: str, password: str) -> tuple[str, str, str]:
    """A new user pool with an app client and one confirmed user, signed in: (pool id, client id, ID token)."""
    pool_id = str(idp.create_user_pool(PoolName=pool_name)["UserPool"]["Id"])
    client_id = str(
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
    )
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
    id_token = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )["AuthenticationResult"]["IdToken"]
    return pool_id, client_id, str(id_token)
