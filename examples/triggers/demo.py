"""Lambda triggers with an unmodified boto3: a pool whose PreSignUp and PreTokenGeneration functions are the
handlers in examples/triggers/handlers.py.

Start Gatehouse with them (see README.md here), install the examples' packages (``pip install -e '.[examples]'``),
then:

    GATEHOUSE_URL=http://localhost:9229 python examples/triggers/demo.py

Admin credentials come from GATEHOUSE_ADMIN_ACCESS_KEY_ID / GATEHOUSE_ADMIN_SECRET_ACCESS_KEY, or from the
data dir's admin-credentials.json (GATEHOUSE_DATA_DIR, default .gatehouse).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import boto3
import jwt  # PyJWT: any JWT library works
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

URL = os.environ.get("GATEHOUSE_URL", "http://localhost:9229")
DATA_DIR = Path(os.environ.get("GATEHOUSE_DATA_DIR", ".gatehouse"))
FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:{}"
PASSWORD = "Correct-Horse-9"


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
    public = boto3.client(
        "cognito-idp",
        endpoint_url=URL,
        region_name="us-east-1",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
        config=Config(signature_version=UNSIGNED),
    )
    pool_id = admin.create_user_pool(
        PoolName=f"triggers-{uuid.uuid4().hex[:8]}",
        UsernameAttributes=["email"],
        LambdaConfig={
            "PreSignUp": FUNCTION.format("pre-sign-up"),
            "PreTokenGenerationConfig": {"LambdaVersion": "V2_0", "LambdaArn": FUNCTION.format("claims")},
        },
    )["UserPool"]["Id"]
    client_id = admin.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="demo",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    print(f"pool {pool_id} client {client_id}")

    try:
        public.sign_up(ClientId=client_id, Username="mallory@elsewhere.example", Password=PASSWORD)
    except ClientError as exc:
        error = exc.response["Error"]
        print(f"sign-up refused: {error['Code']}: {error['Message']}")

    email = f"alice-{uuid.uuid4().hex[:6]}@example.com"
    signed_up = public.sign_up(ClientId=client_id, Username=email, Password=PASSWORD)
    print(f"sign-up of {email}: confirmed={signed_up['UserConfirmed']}")

    tokens = public.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD}
    )["AuthenticationResult"]
    keys = jwt.PyJWKClient(f"{URL}/{pool_id}/.well-known/jwks.json")
    for name in ("IdToken", "AccessToken"):
        token = tokens[name]
        claims = jwt.decode(
            token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], options={"verify_aud": False}
        )
        extra = {k: claims[k] for k in ("tenant", "roles") if k in claims}
        print(f"{name} verified, claims from the function: {extra}")


if __name__ == "__main__":
    main()
