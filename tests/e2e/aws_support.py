"""Shared helpers of the identity-pool, IAM and STS tests: the role trust policies the Cognito and IAM consoles
write, and boto3 clients signed with temporary credentials."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.support import REGION, free_port

ACCOUNT = "000000000000"


@contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """A local stand-in for AWS's APIs (moto's server) on a free port, for as long as the block runs: its URL."""
    executable = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(executable).exists():
        pytest.skip("moto[server] is not installed")
    port = free_port()
    with (log_dir / "moto.log").open("wb") as log:
        process = subprocess.Popen(
            [executable, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(url + "/moto-api/", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


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
