"""Sign-in with an authenticator app (TOTP, RFC 6238) through an unmodified boto3.

Start Gatehouse (see README), install the examples' packages (``pip install -e '.[examples]'``), then:

    GATEHOUSE_URL=http://localhost:9229 python examples/totp_sign_in.py

It makes a pool whose MFA is OPTIONAL with software tokens, a user, and then does what an app does for that
user: AssociateSoftwareToken (the secret an authenticator app would scan from a QR code), VerifySoftwareToken
with the first code, SetUserMFAPreference to make TOTP the user's second factor, and a sign-in that answers
the SOFTWARE_TOKEN_MFA challenge. pyotp stands in for the authenticator app. Admin credentials come from
GATEHOUSE_ADMIN_ACCESS_KEY_ID / GATEHOUSE_ADMIN_SECRET_ACCESS_KEY, or from the data dir's
admin-credentials.json (GATEHOUSE_DATA_DIR, default .gatehouse).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pyotp

URL = os.environ.get("GATEHOUSE_URL", "http://localhost:9229")
DATA_DIR = Path(os.environ.get("GATEHOUSE_DATA_DIR", ".gatehouse"))
PASSWORD = "Totp-example-1"


def admin_credentials() -> tuple[str, str]:
    key_id = os.environ.get("GATEHOUSE_ADMIN_ACCESS_KEY_ID")
    secret = os.environ.get("GATEHOUSE_ADMIN_SECRET_ACCESS_KEY")
    if key_id and secret:
        return key_id, secret
    creds = json.loads((DATA_DIR / "admin-credentials.json").read_text())
    return creds["access_key_id"], creds["secret_access_key"]


def fresh_code(totp: pyotp.TOTP, after: str | None = None) -> str:
    """The authenticator's current code; a code is accepted once, so wait for the next step when the last
    one used is still showing."""
    code = totp.now()
    while code == after:
        time.sleep(1)
        code = totp.now()
    return code


def main() -> None:
    key_id, secret = admin_credentials()
    admin = boto3.client(
        "cognito-idp", endpoint_url=URL, region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=secret
    )
    pool = admin.create_user_pool(PoolName="totp-example")["UserPool"]
    admin.set_user_pool_mfa_config(
        UserPoolId=pool["Id"], MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    client = admin.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="totp-app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]
    username = f"totp-{uuid.uuid4().hex[:8]}"
    admin.admin_create_user(UserPoolId=pool["Id"], Username=username, MessageAction="SUPPRESS")
    admin.admin_set_user_password(UserPoolId=pool["Id"], Username=username, Password=PASSWORD, Permanent=True)
    print("pool", pool["Id"], "client", client["ClientId"], "user", username)

    # The app's side: no AWS credentials at all.
    app = boto3.client(
        "cognito-idp", endpoint_url=URL, region_name="us-east-1", aws_access_key_id="-", aws_secret_access_key="-"
    )

    def sign_in() -> dict[str, Any]:
        return app.initiate_auth(
            ClientId=client["ClientId"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )

    access_token = sign_in()["AuthenticationResult"]["AccessToken"]
    secret_code = app.associate_software_token(AccessToken=access_token)["SecretCode"]
    totp = pyotp.TOTP(secret_code)
    print("authenticator URI:", totp.provisioning_uri(name=username, issuer_name="Gatehouse example"))
    first = fresh_code(totp)
    status = app.verify_software_token(AccessToken=access_token, UserCode=first, FriendlyDeviceName="phone")
    print("VerifySoftwareToken:", status["Status"])
    app.set_user_mfa_preference(
        AccessToken=access_token, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    settings = app.get_user(AccessToken=access_token)
    print("MFA settings:", settings.get("UserMFASettingList"), "preferred", settings.get("PreferredMfaSetting"))

    challenge = sign_in()
    print("challenge:", challenge["ChallengeName"])
    tokens = app.respond_to_auth_challenge(
        ClientId=client["ClientId"],
        ChallengeName="SOFTWARE_TOKEN_MFA",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": fresh_code(totp, after=first)},
    )["AuthenticationResult"]
    user = app.get_user(AccessToken=tokens["AccessToken"])
    print("signed in with TOTP as", user["Username"])


if __name__ == "__main__":
    main()
