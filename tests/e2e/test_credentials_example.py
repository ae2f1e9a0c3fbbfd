"""The example file service (examples/credentials_service) protecting its routes with Gatehouse's verify
endpoint, called by its example client signing with botocore's SigV4Auth and credentials from Gatehouse STS."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
from botocore.credentials import Credentials

from tests.e2e.aws_support import oidc_trust
from tests.support import GatehouseServer, free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "credentials_service"
ACCOUNT = "000000000000"
PASSWORD = "Correct-horse-1"


def load_client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("credentials_example_client", EXAMPLE / "client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def files_service(gatehouse: GatehouseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("files") / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "service.py"), "--gatehouse", gatehouse.url, "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/whoami", timeout=1)
        except urllib.error.HTTPError:
            break  # up (and refusing the unsigned request)
        except OSError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def setup(idp: Any, public_idp: Any, gatehouse: GatehouseServer) -> dict[str, Any]:
    pool_id = idp.create_user_pool(PoolName="files")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="files",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="alice", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="alice", Password=PASSWORD, Permanent=True)
    provider = f"127.0.0.1:{gatehouse.port}/{pool_id}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "files:*", "Resource": "arn:aws:files:::${" + provider + ":sub}/*"},
            {"Effect": "Allow", "Action": "files:GetFile", "Resource": "arn:aws:files:::public/*"},
        ],
    }
    iam = gatehouse.client("iam")
    role_arn = iam.create_role(RoleName="file-users", AssumeRolePolicyDocument=oidc_trust(provider, client_id))["Role"][
        "Arn"
    ]
    iam.put_role_policy(RoleName="file-users", PolicyName="own-files", PolicyDocument=json.dumps(policy))
    token = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["IdToken"]
    sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    return {"role_arn": role_arn, "token": token, "sub": sub}


def test_signed_client_against_the_example_service(
    gatehouse: GatehouseServer, files_service: str, setup: dict[str, Any]
) -> None:
    client = load_client()
    credentials = client.credentials_for(gatehouse.url, setup["role_arn"], setup["token"], "files-session")
    sub = setup["sub"]

    status, body = client.call(credentials, "GET", f"{files_service}/whoami")
    assert status == 200
    assert json.loads(body)["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/file-users/files-session"

    status, body = client.call(credentials, "PUT", f"{files_service}/files/{sub}/hello.txt", b"hello")
    assert status == 200, body
    status, body = client.call(credentials, "GET", f"{files_service}/files/{sub}/hello.txt")
    assert (status, body) == (200, b"hello")

    # Another user's folder: the role's policy does not allow it.
    status, body = client.call(credentials, "PUT", f"{files_service}/files/someone-else/x.txt", b"x")
    assert status == 403 and json.loads(body)["__type"] == "AccessDenied"
    # The public folder is readable, not writable.
    assert client.call(credentials, "GET", f"{files_service}/files/public/none.txt")[0] == 404
    assert client.call(credentials, "PUT", f"{files_service}/files/public/x.txt", b"x")[0] == 403

    # A forged secret, and no signature at all.
    forged = Credentials(credentials.access_key, "x" * 40, credentials.token)
    status, body = client.call(forged, "GET", f"{files_service}/whoami")
    assert status == 401 and json.loads(body)["__type"] == "SignatureDoesNotMatch"
    try:
        urllib.request.urlopen(f"{files_service}/whoami", timeout=5)
        raise AssertionError("an unsigned request was served")
    except urllib.error.HTTPError as error:
        assert error.code == 401
