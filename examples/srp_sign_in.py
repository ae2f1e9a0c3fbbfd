"""Secure Remote Password sign-in (USER_SRP_AUTH) with pycognito's ``AWSSRP``, unmodified, against Gatehouse.

Start Gatehouse (see README), install the examples' packages (``pip install -e '.[examples]'``), then:

    GATEHOUSE_URL=http://localhost:9229 python examples/srp_sign_in.py

SRP proves the password without sending it: the client sends SRP_A, Gatehouse answers PASSWORD_VERIFIER with
its SRP_B and salt, and the client's PASSWORD_CLAIM_SIGNATURE proves it knows the password. pycognito does the
client's half over a boto3 client pointed at Gatehouse. Admin credentials come from
GATEHOUSE_ADMIN_ACCESS_KEY_ID / GATEHOUSE_ADMIN_SECRET_ACCESS_KEY, or from the data dir's
admin-credentials.json (GATEHOUSE_DATA_DIR, default .gatehouse).
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from pathlib import Path

import boto3
import jwt  # PyJWT, to check the ID token against the pool's JWKS
from pycognito.aws_srp import AWSSRP

URL = os.environ.get("GATEHOUSE_URL", "http://localhost:9229")
DATA_DIR = Path(os.environ.get("GATEHOUSE_DATA_DIR", ".gatehouse"))
PASSWORD = "Srp-example-pass-1"


def admin_credentials() -> tuple[str, str]:
    key_id = os.environ.get("GATEHOUSE_ADMIN_ACCESS_KEY_ID")
    secret = os.environ.get("GATEHOUSE_ADMIN_SECRET_ACCESS_KEY")
    if key_id and secret:
        return key_id, secret
    creds = json.loads((DATA_DIR / "admin-credentials.json").read_text())
    return creds["access_key_id"], creds["secret_access_key"]


def main() -> None:
    key_id, secret = admin_credentials()
    admin = boto3.client(
        "cognito-idp", endpoint_url=URL, region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=secret
    )
    pool = admin.create_user_pool(PoolName="srp-example")["UserPool"]
    client = admin.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="srp-app", ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"]
    )["UserPoolClient"]
    username = f"srp-{uuid.uuid4().hex[:8]}"
    admin.admin_create_user(UserPoolId=pool["Id"], Username=username, MessageAction="SUPPRESS")
    admin.admin_set_user_password(UserPoolId=pool["Id"], Username=username, Password=PASSWORD, Permanent=True)
    print("pool", pool["Id"], "client", client["ClientId"], "user", username)

    app = boto3.client(
        "cognito-idp", endpoint_url=URL, region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-"
    )
    srp = AWSSRP(username=username, password=PASSWORD, pool_id=pool["Id"], client_id=client["ClientId"], client=app)
    tokens = srp.authenticate_user()["AuthenticationResult"]

    # The issuer is the server's public URL plus the pool id, which need not be the address used here
    # (localhost vs 127.0.0.1, or a proxy's https name): take it from the pool's OpenID discovery document.
    pool_url = f"{URL}/{pool['Id']}"
    with urllib.request.urlopen(f"{pool_url}/.well-known/openid-configuration") as response:
        issuer = json.load(response)["issuer"]
    jwks = jwt.PyJWKClient(f"{pool_url}/.well-known/jwks.json")
    claims = jwt.decode(
        tokens["IdToken"],
        jwks.get_signing_key_from_jwt(tokens["IdToken"]).key,
        algorithms=["RS256"],
        audience=client["ClientId"],
        issuer=issuer,
    )
    print("SRP sign-in verified:", {k: claims[k] for k in ("cognito:username", "token_use")})

    try:
        AWSSRP(
            username=username, password="Wrong-password-1", pool_id=pool["Id"], client_id=client["ClientId"], client=app
        ).authenticate_user()
    except app.exceptions.NotAuthorizedException as exc:
        print("wrong password refused:", exc.response["Error"]["Code"])
    else:
        raise SystemExit("a wrong password signed in")


if __name__ == "__main__":
    main()
