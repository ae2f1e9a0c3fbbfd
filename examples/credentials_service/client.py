"""A client of the example file service: Gatehouse credentials from STS, requests signed with botocore.

It imports boto3: ``pip install -e '.[examples]'``.

    GATEHOUSE_URL=http://localhost:9229 FILES_URL=http://localhost:8081 \
    ROLE_ARN=arn:aws:iam::000000000000:role/file-users \
    CLIENT_ID=... USERNAME=alice PASSWORD=... python examples/credentials_service/client.py

1. Sign in to a Gatehouse user pool (USER_PASSWORD_AUTH) for an ID token.
2. AssumeRoleWithWebIdentity with that token: temporary credentials for ROLE_ARN.
3. Sign each request to the file service with SigV4 (service ``files``) and those credentials.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

REGION = "us-east-1"


def credentials_for(gatehouse_url: str, role_arn: str, id_token: str, session_name: str) -> Credentials:
    sts = boto3.client("sts", endpoint_url=gatehouse_url, region_name=REGION, config=Config(signature_version=UNSIGNED))
    answer = sts.assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName=session_name, WebIdentityToken=id_token
    )["Credentials"]
    return Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["SessionToken"])


def call(credentials: Credentials, method: str, url: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send one request signed with SigV4 (X-Amz-Security-Token included) and return (status, body)."""
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(credentials, "files", REGION).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(url, data=body or None, method=method, headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(http, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def main() -> None:
    gatehouse = os.environ.get("GATEHOUSE_URL", "http://localhost:9229")
    files = os.environ.get("FILES_URL", "http://localhost:8081")
    idp: Any = boto3.client(
        "cognito-idp", endpoint_url=gatehouse, region_name=REGION, config=Config(signature_version=UNSIGNED)
    )
    tokens = idp.initiate_auth(
        ClientId=os.environ["CLIENT_ID"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": os.environ["USERNAME"], "PASSWORD": os.environ["PASSWORD"]},
    )["AuthenticationResult"]
    credentials = credentials_for(gatehouse, os.environ["ROLE_ARN"], tokens["IdToken"], "example-client")
    print("whoami:", call(credentials, "GET", f"{files}/whoami"))
    sub = os.environ.get("SUB", "")
    print("put own:", call(credentials, "PUT", f"{files}/files/{sub}/hello.txt", b"hello"))
    print("get own:", call(credentials, "GET", f"{files}/files/{sub}/hello.txt"))
    print("get someone else's:", call(credentials, "GET", f"{files}/files/someone-else/hello.txt"))


if __name__ == "__main__":
    main()
