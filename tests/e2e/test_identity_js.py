"""The AWS SDK for JavaScript's identity pool credentials provider against Gatehouse.

``fromCognitoIdentityPool`` (``@aws-sdk/credential-provider-cognito-identity``, what Amplify and browser apps
use) runs unmodified in node, pointed at Gatehouse: it calls GetId and GetCredentialsForIdentity itself, and
the credentials it returns are then used with boto3's STS client.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.aws_support import aws_client, identity_trust, signed_in_user
from tests.e2e.mfa_support import run_node
from tests.support import REGION, GatehouseServer

REPO = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = pathlib.Path("node_modules") / "@aws-sdk" / "credential-provider-cognito-identity"
PASSWORD = "Correct-horse-1"

_JS: str = r"""
const { fromCognitoIdentityPool } = require("@aws-sdk/credential-provider-cognito-identity");
const { CognitoIdentityClient } = require("@aws-sdk/client-cognito-identity");
const p = JSON.parse(process.argv[2]);
const client = new CognitoIdentityClient({
  region: p.region,
  endpoint: p.endpoint,
  // Unsigned operations only: the SDK must not need AWS credentials of its own.
  credentials: { accessKeyId: "unused", secretAccessKey: "unused" },
});
const options = { client, identityPoolId: p.identityPoolId };
if (p.logins) options.logins = p.logins;
if (p.customRoleArn) options.customRoleArn = p.customRoleArn;
fromCognitoIdentityPool(options)()
  .then((c) => console.log(JSON.stringify({
    ok: true, identityId: c.identityId, accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken, expiration: c.expiration && c.expiration.toISOString() })))
  .catch((e) => console.log(JSON.stringify({ ok: false, name: e.name, message: e.message })));
"""


def js_dir() -> pathlib.Path:
    candidates = [os.environ.get("GATEHOUSE_COGNITO_JS_DIR"), str(REPO / ".cache" / "js")]
    for candidate in candidates:
        if candidate and (pathlib.Path(candidate) / PACKAGE).is_dir():
            return pathlib.Path(candidate)
    pytest.fail(
        "@aws-sdk/credential-provider-cognito-identity is not installed: run scripts/test.sh, or `npm install "
        "--no-save @aws-sdk/credential-provider-cognito-identity@3 @aws-sdk/client-cognito-identity@3` in .cache/js"
    )


def run_js(tmp_path: pathlib.Path, **request: Any) -> dict[str, Any]:
    request = {"region": REGION, **request}
    return run_node(tmp_path, _JS, request, modules=lambda: js_dir() / "node_modules", name="identity_pool.js")


def caller_arn(gatehouse: GatehouseServer, result: dict[str, Any]) -> str:
    sts = aws_client("sts", gatehouse.url, result["accessKeyId"], result["secretAccessKey"], result["sessionToken"])
    return str(sts.get_caller_identity()["Arn"])


def test_js_sdk_gets_credentials_for_guests_and_signed_in_users(
    tmp_path: pathlib.Path, gatehouse: GatehouseServer, idp: Any
) -> None:
    ci = gatehouse.client("cognito-identity")
    iam = gatehouse.client("iam")
    user_pool, client_id, id_token = signed_in_user(idp, "js-identity", "web-user", PASSWORD)
    pool_id = ci.create_identity_pool(
        IdentityPoolName="js sdk",
        AllowUnauthenticatedIdentities=True,
        CognitoIdentityProviders=[{"ProviderName": f"127.0.0.1:{gatehouse.port}/{user_pool}", "ClientId": client_id}],
    )["IdentityPoolId"]
    roles = {
        kind: iam.create_role(RoleName=f"js-{kind}", AssumeRolePolicyDocument=identity_trust(pool_id, kind))["Role"][
            "Arn"
        ]
        for kind in ("authenticated", "unauthenticated")
    }
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles=roles)

    guest = run_js(tmp_path, endpoint=gatehouse.url, identityPoolId=pool_id)
    assert guest["ok"] is True, guest
    assert guest["identityId"].startswith(f"{REGION}:") and guest["expiration"]
    assert caller_arn(gatehouse, guest).endswith("/js-unauthenticated/CognitoIdentityCredentials")

    # The key Amplify builds for a user pool is AWS's name for it; Gatehouse's pool answers to it.
    aws_key = f"cognito-idp.{REGION}.amazonaws.com/{user_pool}"
    signed_in = run_js(tmp_path, endpoint=gatehouse.url, identityPoolId=pool_id, logins={aws_key: id_token})
    assert signed_in["ok"] is True, signed_in
    assert caller_arn(gatehouse, signed_in).endswith("/js-authenticated/CognitoIdentityCredentials")
    again = run_js(tmp_path, endpoint=gatehouse.url, identityPoolId=pool_id, logins={aws_key: id_token})
    assert again["identityId"] == signed_in["identityId"] != guest["identityId"]

    refused = run_js(tmp_path, endpoint=gatehouse.url, identityPoolId=pool_id, logins={aws_key: id_token + "x"})
    assert (refused["ok"], refused["name"]) == (False, "NotAuthorizedException")
    with pytest.raises(ClientError):
        caller_arn(gatehouse, {**signed_in, "sessionToken": signed_in["sessionToken"][:-2] + "xx"})
