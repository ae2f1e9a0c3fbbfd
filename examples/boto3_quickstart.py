"""Gatehouse quick start with an unmodified boto3.

Start Gatehouse (see README), install the examples' packages (``pip install -e '.[examples]'``), then:

    GATEHOUSE_URL=http://localhost:9229 python examples/boto3_quickstart.py

Admin credentials come from GATEHOUSE_ADMIN_ACCESS_KEY_ID / GATEHOUSE_ADMIN_SECRET_ACCESS_KEY, or from the
data dir's admin-credentials.json (GATEHOUSE_DATA_DIR, default .gatehouse). The confirmation code is read from
the data dir's outbox, where the embedded default delivers email when no SMTP server is configured.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import jwt  # PyJWT: any JWT library works; nothing here is Gatehouse-specific

URL = os.environ.get("GATEHOUSE_URL", "http://localhost:9229")
DATA_DIR = Path(os.environ.get("GATEHOUSE_DATA_DIR", ".gatehouse"))


def admin_credentials() -> tuple[str, str]:
    key_id = os.environ.get("GATEHOUSE_ADMIN_ACCESS_KEY_ID")
    secret = os.environ.get("GATEHOUSE_ADMIN_SECRET_ACCESS_KEY")
    if key_id and secret:
        return key_id, secret
    creds = json.loads((DATA_DIR / "admin-credentials.json").read_text())
    return creds["access_key_id"], creds["secret_access_key"]


def read_code(address: str, timeout: float = 10.0) -> str:
    """The newest code mailed to ``address``, from the outbox file."""
    outbox = DATA_DIR / "outbox.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if outbox.exists():
            for line in reversed(outbox.read_text().splitlines()):
                message = json.loads(line)
                if message.get("to") == address and (match := re.search(r"\b\d{6}\b", message.get("text", ""))):
                    return match.group(0)
        time.sleep(0.2)
    raise SystemExit(f"no code for {address} in {outbox}; is an SMTP server configured instead?")


def main() -> None:
    key_id, secret = admin_credentials()
    admin = boto3.client(
        "cognito-idp",
        endpoint_url=URL,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    pool = admin.create_user_pool(
        PoolName="quickstart", UsernameAttributes=["email"], AutoVerifiedAttributes=["email"]
    )["UserPool"]
    client = admin.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName="quickstart-app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]
    print("pool", pool["Id"], "client", client["ClientId"])

    # The app's side: a client with no credentials at all, as in a browser or phone.
    app = boto3.client(
        "cognito-idp",
        endpoint_url=URL,
        region_name="us-east-1",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
    )
    email = f"user-{uuid.uuid4().hex[:8]}@example.com"
    signed_up = app.sign_up(ClientId=client["ClientId"], Username=email, Password="Quick-start-1")
    print("signed up", signed_up["UserSub"], "code sent to", signed_up["CodeDeliveryDetails"]["Destination"])
    app.confirm_sign_up(ClientId=client["ClientId"], Username=email, ConfirmationCode=read_code(email))

    tokens = app.initiate_auth(
        ClientId=client["ClientId"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": "Quick-start-1"},
    )["AuthenticationResult"]

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
    print("ID token verified:", {k: claims[k] for k in ("sub", "email", "email_verified", "token_use")})
    print("GetUser:", app.get_user(AccessToken=tokens["AccessToken"])["UserAttributes"])


if __name__ == "__main__":
    main()
