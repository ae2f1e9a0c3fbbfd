"""AWS Amplify JS v6 (``aws-amplify/auth``) against Gatehouse, unchanged but for its endpoint options.

Amplify is configured with ``Auth.Cognito.userPoolEndpoint`` and ``identityPoolEndpoint`` set to the Gatehouse
server (also when the rest comes from an amplify_outputs.json, which has no endpoint fields); nothing else
differs from a configuration for AWS. One node process per test (tests/e2e/js/amplify_driver.js) keeps
Amplify's state across calls, as a browser tab would; the test reads the mailed codes from a real SMTP server,
computes TOTP codes with pyotp, checks ID tokens against the pool's JWKS, and checks with boto3 and
``POST /gatehouse/verify`` what Amplify's calls did. Covered: sign-up (with auto sign-in, resent codes),
confirmation, USER_SRP_AUTH sign-in (Amplify's default), USER_PASSWORD_AUTH and USER_AUTH, session and token
refresh, attributes (an email change with its code), password change, deleteUser, sign-out (local: RevokeToken;
global) revoking the tokens, TOTP set-up while signing in and after, email MFA, SMS MFA chosen among several
factors, passwordless email codes, remembered devices standing in for MFA, NEW_PASSWORD_REQUIRED, password
reset, a wrong password, hidden user existence, secret clients, and identity pool credentials for guests and
signed-in users. Hostile answers (wrong codes and passwords, a replayed TOTP code, forged credentials) get
Cognito's errors and change nothing.
"""

from __future__ import annotations

import json
import pathlib
import re
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pyotp
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.aws_support import ACCOUNT, aws_client, identity_trust
from tests.e2e.mfa_support import sms_code
from tests.e2e.node_driver import NodeDriver, js_modules
from tests.support import REGION, GatehouseServer, MailServer, body_text, code_in, user_attributes

DRIVER = pathlib.Path(__file__).resolve().parent / "js" / "amplify_driver.js"
PASSWORD = "Correct-horse-1"
NEW_PASSWORD = "Battery-staple-2"


class Amplify(NodeDriver):
    """One node process running Amplify; :meth:`call` sends one aws-amplify/auth call and returns its answer."""

    def __init__(self, tmp_path: pathlib.Path) -> None:
        super().__init__(DRIVER, js_modules("aws-amplify"), tmp_path / "amplify-stderr.txt", timeout=60)

    def call(self, op: str, request: Any = None) -> dict[str, Any]:
        return self.request({"op": op, "input": request})

    def ok(self, op: str, request: Any = None) -> Any:
        """The result of a call that must succeed."""
        answer = self.call(op, request)
        assert answer["ok"] is True, (op, answer)
        return answer["result"]


@pytest.fixture
def amplify(tmp_path: pathlib.Path) -> Iterator[Amplify]:
    driver = Amplify(tmp_path)
    yield driver
    driver.close()


def configure(amplify: Amplify, gatehouse: GatehouseServer, pool_id: str, client_id: str, **cognito: Any) -> None:
    """Amplify's configuration for AWS, with the user pool endpoint pointed at Gatehouse."""
    settings = {"userPoolId": pool_id, "userPoolClientId": client_id, "userPoolEndpoint": gatehouse.url, **cognito}
    amplify.ok("configure", {"Auth": {"Cognito": settings}})


def make_pool(idp: Any, name: str, **settings: Any) -> tuple[str, str]:
    """A pool that verifies email addresses, with a public app client (no secret, as Amplify's must be)."""
    pool_id = str(idp.create_user_pool(PoolName=name, AutoVerifiedAttributes=["email"], **settings)["UserPool"]["Id"])
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="web", ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str, email: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def verified_id_token(gatehouse: GatehouseServer, pool_id: str, client_id: str, token: str) -> dict[str, Any]:
    keys = jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")
    return dict(
        jwt.decode(
            token,
            keys.get_signing_key_from_jwt(token).key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=f"{gatehouse.url}/{pool_id}",
        )
    )


def test_sign_up_confirm_sign_in_attributes_and_global_sign_out(
    amplify: Amplify, gatehouse: GatehouseServer, mail: MailServer, idp: Any, public_idp: Any
) -> None:
    pool_id, client_id = make_pool(idp, "amplify-web")
    configure(amplify, gatehouse, pool_id, client_id)
    email = "ada@amplify.example"

    signed_up = amplify.ok(
        "signUp", {"username": "ada", "password": PASSWORD, "options": {"userAttributes": {"email": email}}}
    )
    assert signed_up["isSignUpComplete"] is False
    assert signed_up["nextStep"]["signUpStep"] == "CONFIRM_SIGN_UP"
    assert signed_up["nextStep"]["codeDeliveryDetails"]["deliveryMedium"] == "EMAIL"
    assert signed_up["nextStep"]["codeDeliveryDetails"]["attributeName"] == "email"
    code = code_in(mail.wait_for(email))

    # Hostile: a wrong code is refused with Cognito's error and leaves the user unconfirmed.
    wrong = "000000" if code != "000000" else "111111"
    refused = amplify.call("confirmSignUp", {"username": "ada", "confirmationCode": wrong})
    assert (refused["ok"], refused["name"]) == (False, "CodeMismatchException")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="ada")["UserStatus"] == "UNCONFIRMED"
    # Signing in before confirming: Cognito's UserNotConfirmedException, which Amplify turns into a next step.
    early = amplify.ok("signIn", {"username": "ada", "password": PASSWORD})
    assert early == {"isSignedIn": False, "nextStep": {"signInStep": "CONFIRM_SIGN_UP"}}

    confirmed = amplify.ok("confirmSignUp", {"username": "ada", "confirmationCode": code})
    assert confirmed["isSignUpComplete"] is True and confirmed["nextStep"]["signUpStep"] == "DONE"
    assert idp.admin_get_user(UserPoolId=pool_id, Username="ada")["UserStatus"] == "CONFIRMED"

    signed_in = amplify.ok("signIn", {"username": "ada", "password": PASSWORD})
    assert signed_in == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}

    session = amplify.ok("fetchAuthSession")
    claims = verified_id_token(gatehouse, pool_id, client_id, session["tokens"]["idToken"]["token"])
    assert claims["token_use"] == "id" and claims["cognito:username"] == "ada"
    assert claims["email"] == email and claims["email_verified"] is True
    assert claims["sub"] == signed_up["userId"] == session["userSub"]
    access_token = session["tokens"]["accessToken"]["token"]
    assert public_idp.get_user(AccessToken=access_token)["Username"] == "ada"

    assert amplify.ok("getCurrentUser") == {
        "username": "ada",
        "userId": claims["sub"],
        "signInDetails": {"loginId": "ada", "authFlowType": "USER_SRP_AUTH"},
    }
    fetched = amplify.ok("fetchUserAttributes")
    assert fetched == {"email": email, "email_verified": "true", "sub": claims["sub"]}

    updated = amplify.ok("updateUserAttributes", {"userAttributes": {"name": "Ada Lovelace"}})
    assert updated == {"name": {"isUpdated": True, "nextStep": {"updateAttributeStep": "DONE"}}}
    assert user_attributes(idp, pool_id, "ada")["name"] == "Ada Lovelace"

    # Global sign-out revokes the tokens at Gatehouse, not just in Amplify's storage.
    refresh_token = amplify.ok("storedRefreshToken", {"clientId": client_id})
    amplify.ok("signOut", {"global": True})
    with pytest.raises(ClientError) as revoked:
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
        )
    assert revoked.value.response["Error"]["Code"] == "NotAuthorizedException"
    with pytest.raises(ClientError) as revoked:
        public_idp.get_user(AccessToken=access_token)
    assert revoked.value.response["Error"]["Code"] == "NotAuthorizedException"
    assert revoked.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert amplify.ok("fetchAuthSession")["tokens"] is None
    after = amplify.call("getCurrentUser")
    assert (after["ok"], after["name"]) == (False, "UserUnAuthenticatedException")


def test_wrong_password_surfaces_cognitos_error(amplify: Amplify, gatehouse: GatehouseServer, idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "amplify-wrong")
    make_user(idp, pool_id, "bob", "bob@amplify.example")
    configure(amplify, gatehouse, pool_id, client_id)

    refused = amplify.call("signIn", {"username": "bob", "password": "Not-the-password-1"})
    assert refused == {"ok": False, "name": "NotAuthorizedException", "message": "Incorrect username or password."}
    assert amplify.ok("fetchAuthSession")["tokens"] is None
    # The right password still works: the failure changed nothing that matters for the next attempt.
    assert amplify.ok("signIn", {"username": "bob", "password": PASSWORD})["isSignedIn"] is True
    amplify.ok("signOut")

    # A client that hides user existence: an unknown user gets the SRP challenge and then the same refusal.
    idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=client_id,
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="ENABLED",
    )
    for username in ("bob", "nobody"):
        refused = amplify.call("signIn", {"username": username, "password": "Not-the-password-1"})
        assert refused == {"ok": False, "name": "NotAuthorizedException", "message": "Incorrect username or password."}


def code_at(secret: str, step: int) -> str:
    return str(pyotp.TOTP(secret).generate_otp(step))


def settled_step() -> int:
    """The current 30 s step, after waiting out the end of one, so its neighbours' codes stay valid meanwhile."""
    into = time.time() % 30
    if into > 20:
        time.sleep(30 - into + 0.2)
    return int(time.time() // 30)


def test_totp_set_up_while_signing_in_then_a_code_at_the_next(
    amplify: Amplify, gatehouse: GatehouseServer, idp: Any
) -> None:
    pool_id, client_id = make_pool(idp, "amplify-totp")
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="ON", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    make_user(idp, pool_id, "cy", "cy@amplify.example")
    configure(amplify, gatehouse, pool_id, client_id)

    first = amplify.ok("signIn", {"username": "cy", "password": PASSWORD})
    assert first["isSignedIn"] is False
    assert first["nextStep"]["signInStep"] == "CONTINUE_SIGN_IN_WITH_TOTP_SETUP"
    secret = first["nextStep"]["totpSetupDetails"]["sharedSecret"]
    step = settled_step()

    # Hostile: a wrong code does not enrol the authenticator.
    valid = {code_at(secret, s) for s in range(step - 2, step + 3)}
    wrong = next(c for c in ("123456", "654321", "000001") if c not in valid)
    refused = amplify.call("confirmSignIn", {"challengeResponse": wrong})
    assert refused == {
        "ok": False,
        "name": "EnableSoftwareTokenMFAException",
        "message": "Code mismatch and fail enable Software Token MFA",
    }
    assert idp.admin_get_user(UserPoolId=pool_id, Username="cy").get("UserMFASettingList", []) == []
    assert amplify.ok("fetchAuthSession")["tokens"] is None

    # Amplify's sign-in restarts from the password after a refused set-up code.
    again = amplify.ok("signIn", {"username": "cy", "password": PASSWORD})
    assert again["nextStep"]["signInStep"] == "CONTINUE_SIGN_IN_WITH_TOTP_SETUP"
    secret = again["nextStep"]["totpSetupDetails"]["sharedSecret"]
    done = amplify.ok("confirmSignIn", {"challengeResponse": code_at(secret, step)})
    assert done == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}
    assert idp.admin_get_user(UserPoolId=pool_id, Username="cy")["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]
    session = amplify.ok("fetchAuthSession")
    assert (
        verified_id_token(gatehouse, pool_id, client_id, session["tokens"]["idToken"]["token"])["cognito:username"]
        == "cy"
    )
    amplify.ok("signOut")

    challenged = amplify.ok("signIn", {"username": "cy", "password": PASSWORD})
    assert challenged == {"isSignedIn": False, "nextStep": {"signInStep": "CONFIRM_SIGN_IN_WITH_TOTP_CODE"}}
    # The code that verified the authenticator is spent (Cognito refuses a code twice).
    replayed = amplify.call("confirmSignIn", {"challengeResponse": code_at(secret, step)})
    assert (replayed["ok"], replayed["name"]) == (False, "ExpiredCodeException")
    challenged = amplify.ok("signIn", {"username": "cy", "password": PASSWORD})
    assert challenged["nextStep"]["signInStep"] == "CONFIRM_SIGN_IN_WITH_TOTP_CODE"
    done = amplify.ok("confirmSignIn", {"challengeResponse": code_at(secret, step + 1)})
    assert done == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}
    assert amplify.ok("getCurrentUser")["username"] == "cy"


def test_reset_password_with_the_mailed_code(
    amplify: Amplify, gatehouse: GatehouseServer, mail: MailServer, idp: Any
) -> None:
    pool_id, client_id = make_pool(idp, "amplify-reset")
    email = "dee@amplify.example"
    make_user(idp, pool_id, "dee", email)
    configure(amplify, gatehouse, pool_id, client_id)

    started = amplify.ok("resetPassword", {"username": "dee"})
    assert started["isPasswordReset"] is False
    assert started["nextStep"]["resetPasswordStep"] == "CONFIRM_RESET_PASSWORD_WITH_CODE"
    assert started["nextStep"]["codeDeliveryDetails"]["deliveryMedium"] == "EMAIL"
    code = code_in(mail.wait_for(email))

    # Hostile: a wrong code is refused and the old password still works.
    wrong = "000000" if code != "000000" else "111111"
    refused = amplify.call(
        "confirmResetPassword", {"username": "dee", "confirmationCode": wrong, "newPassword": NEW_PASSWORD}
    )
    assert (refused["ok"], refused["name"]) == (False, "CodeMismatchException")
    assert amplify.ok("signIn", {"username": "dee", "password": PASSWORD})["isSignedIn"] is True
    amplify.ok("signOut")

    amplify.ok("confirmResetPassword", {"username": "dee", "confirmationCode": code, "newPassword": NEW_PASSWORD})
    old = amplify.call("signIn", {"username": "dee", "password": PASSWORD})
    assert (old["ok"], old["name"]) == (False, "NotAuthorizedException")
    assert amplify.ok("signIn", {"username": "dee", "password": NEW_PASSWORD})["isSignedIn"] is True
    # The code is spent: Cognito's ExpiredCodeException ("please request a code again").
    amplify.ok("signOut")
    reused = amplify.call(
        "confirmResetPassword", {"username": "dee", "confirmationCode": code, "newPassword": PASSWORD}
    )
    assert (reused["ok"], reused["name"]) == (False, "ExpiredCodeException")
    assert amplify.ok("signIn", {"username": "dee", "password": NEW_PASSWORD})["isSignedIn"] is True


def verify(gatehouse: GatehouseServer, credentials: dict[str, Any], *, secret: str | None = None) -> requests.Response:
    """Ask Gatehouse's verifier about a request signed with ``credentials``, as a service receiving it would."""
    url = "https://files.example/amplify/photo.jpg"
    signed = AWSRequest(method="GET", url=url, data=b"")
    key = Credentials(credentials["accessKeyId"], secret or credentials["secretAccessKey"], credentials["sessionToken"])
    SigV4Auth(key, "s3", REGION).add_auth(signed)
    headers = {"Host": "files.example", **dict(signed.headers.items())}
    question: dict[str, Any] = {"method": "GET", "url": url, "headers": headers, "body": "", "action": "s3:GetObject"}
    return requests.post(f"{gatehouse.url}/gatehouse/verify", json=question, timeout=10)


def test_identity_pool_credentials_for_guests_and_signed_in_users(
    amplify: Amplify, gatehouse: GatehouseServer, idp: Any
) -> None:
    pool_id, client_id = make_pool(idp, "amplify-identity")
    make_user(idp, pool_id, "eve", "eve@amplify.example")
    make_user(idp, pool_id, "zed", "zed@amplify.example")
    ci = gatehouse.client("cognito-identity")
    iam = gatehouse.client("iam")
    # The identity pool names the user pool as AWS does (as a pool moved from AWS would); Amplify's Logins key is
    # the ID token's issuer without its scheme (127.0.0.1:<port>/<pool>), and Gatehouse's pool answers to both.
    identity_pool_id = ci.create_identity_pool(
        IdentityPoolName="amplify",
        AllowUnauthenticatedIdentities=True,
        CognitoIdentityProviders=[
            {"ProviderName": f"cognito-idp.{REGION}.amazonaws.com/{pool_id}", "ClientId": client_id}
        ],
    )["IdentityPoolId"]
    roles = {}
    for kind in ("authenticated", "unauthenticated"):
        name = f"amplify-{kind}"
        roles[kind] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=identity_trust(identity_pool_id, kind))[
            "Role"
        ]["Arn"]
    read = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    iam.put_role_policy(RoleName="amplify-authenticated", PolicyName="read", PolicyDocument=json.dumps(read))
    ci.set_identity_pool_roles(IdentityPoolId=identity_pool_id, Roles=roles)
    # Configured as an Amplify Gen 2 app is, from amplify_outputs.json, plus the endpoints.
    outputs = {
        "version": "1.3",
        "auth": {
            "aws_region": REGION,
            "user_pool_id": pool_id,
            "user_pool_client_id": client_id,
            "identity_pool_id": identity_pool_id,
            "unauthenticated_identities_enabled": True,
        },
    }
    amplify.ok("configureFromOutputs", {"outputs": outputs, "endpoint": gatehouse.url})

    guest = amplify.ok("fetchAuthSession")
    assert guest["tokens"] is None and guest["identityId"].startswith(f"{REGION}:")
    answer = verify(gatehouse, guest["credentials"])
    assert answer.status_code == 200, answer.text
    principal = answer.json()["Principal"]
    assert principal["RoleArn"] == roles["unauthenticated"] and principal["IdentityId"] == guest["identityId"]
    assert answer.json()["Allowed"] is False  # the guest role has no policy

    amplify.ok("signIn", {"username": "eve", "password": PASSWORD})
    signed_in = amplify.ok("fetchAuthSession")
    # Amplify asks for credentials for its guest identity with the user's login: as in Cognito, the guest
    # identity becomes the user's.
    assert signed_in["identityId"] == guest["identityId"]
    assert signed_in["tokens"] is not None and signed_in["credentials"]["sessionToken"]
    answer = verify(gatehouse, signed_in["credentials"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["Principal"]["RoleArn"] == roles["authenticated"]
    assert answer.json()["Principal"]["IdentityId"] == signed_in["identityId"]
    assert answer.json()["Allowed"] is True
    sts = aws_client(
        "sts",
        gatehouse.url,
        signed_in["credentials"]["accessKeyId"],
        signed_in["credentials"]["secretAccessKey"],
        signed_in["credentials"]["sessionToken"],
    )
    assert sts.get_caller_identity()["Arn"] == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/amplify-authenticated/CognitoIdentityCredentials"
    )
    # The user pool named as the identity pool lists it (here AWS's form), as AWS shows it.
    assert ci.describe_identity(IdentityId=signed_in["identityId"])["Logins"] == [
        f"cognito-idp.{REGION}.amazonaws.com/{pool_id}"
    ]

    # Hostile: the same credentials with a forged secret are refused by the verifier.
    forged = verify(gatehouse, signed_in["credentials"], secret="x" * 40)
    assert forged.status_code == 403 and forged.json()["__type"] == "SignatureDoesNotMatch"

    # Another user on the same browser after sign-out gets an identity of their own, never eve's.
    amplify.ok("signOut")
    after = amplify.ok("fetchAuthSession")
    assert after["tokens"] is None and after["identityId"] != signed_in["identityId"]
    amplify.ok("signIn", {"username": "zed", "password": PASSWORD})
    other = amplify.ok("fetchAuthSession")
    assert other["identityId"] not in {signed_in["identityId"], None}
    answer = verify(gatehouse, other["credentials"])
    assert answer.status_code == 200 and answer.json()["Principal"]["IdentityId"] == other["identityId"]


def test_auto_sign_in_after_confirmation_and_token_refresh(
    amplify: Amplify, gatehouse: GatehouseServer, mail: MailServer, idp: Any, public_idp: Any
) -> None:
    pool_id, client_id = make_pool(idp, "amplify-auto")
    configure(amplify, gatehouse, pool_id, client_id)
    email = "fay@amplify.example"
    signed_up = amplify.ok(
        "signUp",
        {"username": "fay", "password": PASSWORD, "options": {"userAttributes": {"email": email}, "autoSignIn": True}},
    )
    assert signed_up["nextStep"]["signUpStep"] == "CONFIRM_SIGN_UP"
    confirmed = amplify.ok("confirmSignUp", {"username": "fay", "confirmationCode": code_in(mail.wait_for(email))})
    assert confirmed["nextStep"]["signUpStep"] == "COMPLETE_AUTO_SIGN_IN"
    assert amplify.ok("autoSignIn") == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}

    first = amplify.ok("fetchAuthSession")
    time.sleep(1.1)  # a new iat, so the refreshed tokens differ from the first
    refreshed = amplify.ok("fetchAuthSession", {"forceRefresh": True})
    assert refreshed["tokens"]["accessToken"]["token"] != first["tokens"]["accessToken"]["token"]
    claims = verified_id_token(gatehouse, pool_id, client_id, refreshed["tokens"]["idToken"]["token"])
    assert claims["sub"] == first["userSub"] and claims["iat"] > first["tokens"]["idToken"]["payload"]["iat"]
    assert public_idp.get_user(AccessToken=refreshed["tokens"]["accessToken"]["token"])["Username"] == "fay"

    # A plain sign-out revokes the refresh token (RevokeToken) and the access tokens issued from it.
    refresh_token = amplify.ok("storedRefreshToken", {"clientId": client_id})
    assert public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
    )["AuthenticationResult"]["AccessToken"]
    amplify.ok("signOut")
    with pytest.raises(ClientError) as revoked:
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
        )
    assert revoked.value.response["Error"]["Code"] == "NotAuthorizedException"
    with pytest.raises(ClientError) as revoked:
        public_idp.get_user(AccessToken=refreshed["tokens"]["accessToken"]["token"])
    assert revoked.value.response["Error"]["Code"] == "NotAuthorizedException"
    assert amplify.ok("storedRefreshToken", {"clientId": client_id}) is None


def test_optional_totp_set_up_after_signing_in(amplify: Amplify, gatehouse: GatehouseServer, idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "amplify-optional")
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    make_user(idp, pool_id, "gus", "gus@amplify.example")
    configure(amplify, gatehouse, pool_id, client_id)

    assert amplify.ok("signIn", {"username": "gus", "password": PASSWORD})["isSignedIn"] is True
    assert amplify.ok("fetchMFAPreference") == {}
    secret = amplify.ok("setUpTOTP")["sharedSecret"]
    step = settled_step()
    refused = amplify.call("verifyTOTPSetup", {"code": "000000" if code_at(secret, step) != "000000" else "111111"})
    assert (refused["ok"], refused["name"]) == (False, "EnableSoftwareTokenMFAException")
    amplify.ok("verifyTOTPSetup", {"code": code_at(secret, step)})
    amplify.ok("updateMFAPreference", {"totp": "PREFERRED"})
    assert amplify.ok("fetchMFAPreference") == {"enabled": ["TOTP"], "preferred": "TOTP"}
    amplify.ok("signOut")

    challenged = amplify.ok("signIn", {"username": "gus", "password": PASSWORD})
    assert challenged["nextStep"]["signInStep"] == "CONFIRM_SIGN_IN_WITH_TOTP_CODE"
    done = amplify.ok("confirmSignIn", {"challengeResponse": code_at(secret, step + 1)})
    assert done["isSignedIn"] is True


def test_remembered_device_skips_mfa_with_device_srp(amplify: Amplify, gatehouse: GatehouseServer, idp: Any) -> None:
    pool_id, client_id = make_pool(
        idp,
        "amplify-devices",
        DeviceConfiguration={"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": True},
    )
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    make_user(idp, pool_id, "hal", "hal@amplify.example")
    configure(amplify, gatehouse, pool_id, client_id)

    assert amplify.ok("signIn", {"username": "hal", "password": PASSWORD})["isSignedIn"] is True
    devices = idp.admin_list_devices(UserPoolId=pool_id, Username="hal")["Devices"]
    assert len(devices) == 1  # Amplify confirmed the new device itself (ConfirmDevice with its SRP verifier)
    device_key = devices[0]["DeviceKey"]
    amplify.ok("rememberDevice")
    assert [d["id"] for d in amplify.ok("fetchDevices")] == [device_key]
    remembered = idp.admin_get_device(UserPoolId=pool_id, Username="hal", DeviceKey=device_key)["Device"]
    assert {a["Name"]: a["Value"] for a in remembered["DeviceAttributes"]}["device_status"] == "valid"
    secret = amplify.ok("setUpTOTP")["sharedSecret"]
    step = settled_step()
    amplify.ok("verifyTOTPSetup", {"code": code_at(secret, step)})
    amplify.ok("updateMFAPreference", {"totp": "PREFERRED"})
    amplify.ok("signOut")

    # The remembered device proves itself (DEVICE_SRP_AUTH, DEVICE_PASSWORD_VERIFIER) instead of a TOTP code.
    assert amplify.ok("signIn", {"username": "hal", "password": PASSWORD}) == {
        "isSignedIn": True,
        "nextStep": {"signInStep": "DONE"},
    }
    session = amplify.ok("fetchAuthSession")
    assert session["tokens"]["accessToken"]["payload"]["device_key"] == device_key
    assert [d["DeviceKey"] for d in idp.admin_list_devices(UserPoolId=pool_id, Username="hal")["Devices"]] == [
        device_key
    ]

    # Once forgotten, the device no longer stands in for the second factor.
    amplify.ok("forgetDevice")
    assert idp.admin_list_devices(UserPoolId=pool_id, Username="hal")["Devices"] == []
    amplify.ok("signOut")
    challenged = amplify.ok("signIn", {"username": "hal", "password": PASSWORD})
    assert challenged["nextStep"]["signInStep"] == "CONFIRM_SIGN_IN_WITH_TOTP_CODE"


def test_other_sign_in_flows(amplify: Amplify, gatehouse: GatehouseServer, idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "amplify-flows")
    idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=client_id,
        ExplicitAuthFlows=[
            "ALLOW_USER_SRP_AUTH",
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_USER_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH",
        ],
    )
    make_user(idp, pool_id, "ivy", "ivy@amplify.example")
    configure(amplify, gatehouse, pool_id, client_id)

    for flow in ("USER_PASSWORD_AUTH", "USER_AUTH"):
        options: dict[str, Any] = {"authFlowType": flow}
        if flow == "USER_AUTH":
            options["preferredChallenge"] = "PASSWORD_SRP"
        signed_in = amplify.ok("signIn", {"username": "ivy", "password": PASSWORD, "options": options})
        assert signed_in == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}, flow
        assert amplify.ok("getCurrentUser")["signInDetails"]["authFlowType"] == flow
        amplify.ok("signOut")

    # A flow the app client does not allow is refused with Cognito's error.
    idp.update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"])
    refused = amplify.call(
        "signIn", {"username": "ivy", "password": PASSWORD, "options": {"authFlowType": "USER_PASSWORD_AUTH"}}
    )
    assert (refused["ok"], refused["name"]) == (False, "InvalidParameterException")
    # An unknown user, on a client that does not hide user existence: Cognito's UserNotFoundException.
    unknown = amplify.call("signIn", {"username": "nobody", "password": PASSWORD})
    assert unknown == {"ok": False, "name": "UserNotFoundException", "message": "User does not exist."}


def test_temporary_password_changed_while_signing_in(
    amplify: Amplify, gatehouse: GatehouseServer, mail: MailServer, idp: Any
) -> None:
    pool_id, client_id = make_pool(idp, "amplify-invited")
    email = "jo@amplify.example"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="jo",
        TemporaryPassword="Temporary-pass-1",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
    )
    configure(amplify, gatehouse, pool_id, client_id)

    first = amplify.ok("signIn", {"username": "jo", "password": "Temporary-pass-1"})
    assert first["nextStep"]["signInStep"] == "CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED"
    # Hostile: a new password the pool's policy refuses leaves the user as invited.
    weak = amplify.call("confirmSignIn", {"challengeResponse": "short"})
    assert (weak["ok"], weak["name"]) == (False, "InvalidPasswordException")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="jo")["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    again = amplify.ok("signIn", {"username": "jo", "password": "Temporary-pass-1"})
    assert again["nextStep"]["signInStep"] == "CONFIRM_SIGN_IN_WITH_NEW_PASSWORD_REQUIRED"
    done = amplify.ok("confirmSignIn", {"challengeResponse": PASSWORD})
    assert done == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}
    assert idp.admin_get_user(UserPoolId=pool_id, Username="jo")["UserStatus"] == "CONFIRMED"

    # updatePassword (ChangePassword): the wrong old password is refused, the right one changes it.
    wrong = amplify.call("updatePassword", {"oldPassword": "Not-the-password-1", "newPassword": NEW_PASSWORD})
    assert (wrong["ok"], wrong["name"]) == (False, "NotAuthorizedException")
    amplify.ok("updatePassword", {"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD})

    # A new email address waits for its code (CONFIRM_ATTRIBUTE_WITH_CODE); the old one stays until then.
    changed = amplify.ok("updateUserAttributes", {"userAttributes": {"email": "jo@new.example"}})
    assert changed["email"]["isUpdated"] is False
    assert changed["email"]["nextStep"]["updateAttributeStep"] == "CONFIRM_ATTRIBUTE_WITH_CODE"
    assert changed["email"]["nextStep"]["codeDeliveryDetails"]["deliveryMedium"] == "EMAIL"
    code = code_in(mail.wait_for("jo@new.example"))
    refused = amplify.call(
        "confirmUserAttribute",
        {"userAttributeKey": "email", "confirmationCode": "000000" if code != "000000" else "111111"},
    )
    assert (refused["ok"], refused["name"]) == (False, "CodeMismatchException")
    amplify.ok("confirmUserAttribute", {"userAttributeKey": "email", "confirmationCode": code})
    assert amplify.ok("fetchUserAttributes")["email"] == "jo@new.example"
    assert user_attributes(idp, pool_id, "jo")["email_verified"] == "true"

    amplify.ok("deleteUser")
    with pytest.raises(ClientError) as gone:
        idp.admin_get_user(UserPoolId=pool_id, Username="jo")
    assert gone.value.response["Error"]["Code"] == "UserNotFoundException"
    assert amplify.ok("fetchAuthSession")["tokens"] is None


def test_email_codes_as_second_factor_and_as_passwordless_sign_in(
    amplify: Amplify, gatehouse: GatehouseServer, mail: MailServer, idp: Any
) -> None:
    pool_id = str(
        idp.create_user_pool(
            PoolName="amplify-email-codes",
            AutoVerifiedAttributes=["email"],
            Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}},
        )["UserPool"]["Id"]
    )
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="OPTIONAL",
        EmailMfaConfiguration={"Subject": "Sign-in code", "Message": "Use {####} to sign in."},
    )
    client_id = str(
        idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="web",
            ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
    )
    email = "kit@amplify.example"
    make_user(idp, pool_id, "kit", email)
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username="kit", EmailMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    configure(amplify, gatehouse, pool_id, client_id)

    challenged = amplify.ok("signIn", {"username": "kit", "password": PASSWORD})
    assert challenged["nextStep"]["signInStep"] == "CONFIRM_SIGN_IN_WITH_EMAIL_CODE"
    assert challenged["nextStep"]["codeDeliveryDetails"]["deliveryMedium"] == "EMAIL"
    code = code_in(mail.wait_for(email))
    wrong = amplify.call("confirmSignIn", {"challengeResponse": "000000" if code != "000000" else "111111"})
    assert (wrong["ok"], wrong["name"]) == (False, "CodeMismatchException")
    assert amplify.ok("fetchAuthSession")["tokens"] is None
    # Cognito keeps the session open after a wrong code: the right one still signs in.
    done = amplify.ok("confirmSignIn", {"challengeResponse": code})
    assert done == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}
    amplify.ok("signOut")

    # Choice-based sign-in (USER_AUTH) with an emailed code and no password, for a user without MFA.
    other = "lee@amplify.example"
    make_user(idp, pool_id, "lee", other)
    options = {"authFlowType": "USER_AUTH", "preferredChallenge": "EMAIL_OTP"}
    challenged = amplify.ok("signIn", {"username": "lee", "options": options})
    assert challenged["nextStep"]["signInStep"] == "CONFIRM_SIGN_IN_WITH_EMAIL_CODE"
    # Cognito's passwordless email codes have eight digits.
    match = re.search(r"\b(\d{8})\b", body_text(mail.wait_for(other)))
    assert match is not None
    wrong = amplify.call("confirmSignIn", {"challengeResponse": "0" * 8 if match.group(1) != "0" * 8 else "1" * 8})
    assert (wrong["ok"], wrong["name"]) == (False, "CodeMismatchException")
    done = amplify.ok("confirmSignIn", {"challengeResponse": match.group(1)})
    assert done == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}
    session = amplify.ok("fetchAuthSession")
    claims = verified_id_token(gatehouse, pool_id, client_id, session["tokens"]["idToken"]["token"])
    assert (claims["cognito:username"], claims["email"]) == ("lee", other)
    assert amplify.ok("getCurrentUser")["signInDetails"]["authFlowType"] == "USER_AUTH"


def test_auto_sign_in_after_a_passwordless_sign_up(
    amplify: Amplify, gatehouse: GatehouseServer, mail: MailServer, idp: Any
) -> None:
    """signUp without a password and with autoSignIn over USER_AUTH, confirmSignUp with the mailed code, then
    autoSignIn: Amplify hands ConfirmSignUp's Session to InitiateAuth, and the user is signed in without a second
    code, as with Cognito."""
    pool_id = str(
        idp.create_user_pool(
            PoolName="amplify-auto-sign-in",
            AutoVerifiedAttributes=["email"],
            Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}},
        )["UserPool"]["Id"]
    )
    client_id = str(
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="web", ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
        )["UserPoolClient"]["ClientId"]
    )
    configure(amplify, gatehouse, pool_id, client_id)
    email = "auto-ada@amplify.example"
    options = {"userAttributes": {"email": email}, "autoSignIn": {"authFlowType": "USER_AUTH"}}
    signed_up = amplify.ok("signUp", {"username": "ada", "options": options})
    assert signed_up["nextStep"]["signUpStep"] == "CONFIRM_SIGN_UP"
    confirmed = amplify.ok("confirmSignUp", {"username": "ada", "confirmationCode": code_in(mail.wait_for(email))})
    assert confirmed["nextStep"]["signUpStep"] == "COMPLETE_AUTO_SIGN_IN"
    assert amplify.ok("autoSignIn") == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}
    session = amplify.ok("fetchAuthSession")
    claims = verified_id_token(gatehouse, pool_id, client_id, session["tokens"]["idToken"]["token"])
    assert (claims["cognito:username"], claims["email_verified"]) == ("ada", True)
    assert len(mail.messages_to(email)) == 1  # the confirmation code only


def test_a_client_with_a_secret_is_refused_and_codes_can_be_resent(
    amplify: Amplify, gatehouse: GatehouseServer, mail: MailServer, idp: Any
) -> None:
    """Amplify never sends SECRET_HASH: an app client with a secret refuses it exactly as Cognito does, so a
    deployment gives Amplify apps a public client."""
    pool_id, _ = make_pool(idp, "amplify-secret")
    make_user(idp, pool_id, "max", "max@amplify.example")
    secret_client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="server", GenerateSecret=True, ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"]
    )["UserPoolClient"]["ClientId"]
    configure(amplify, gatehouse, pool_id, secret_client)
    refused = amplify.call("signIn", {"username": "max", "password": PASSWORD})
    assert refused == {
        "ok": False,
        "name": "NotAuthorizedException",
        "message": f"Client {secret_client} is configured with secret but SECRET_HASH was not received",
    }
    signed_up = amplify.call("signUp", {"username": "nat", "password": PASSWORD})
    assert (signed_up["ok"], signed_up["name"]) == (False, "NotAuthorizedException")
    assert [u["Username"] for u in idp.list_users(UserPoolId=pool_id)["Users"]] == ["max"]

    # resendSignUpCode (ResendConfirmationCode) on a public client: a second code, which confirms the user.
    pool_two, client_id = make_pool(idp, "amplify-resend")
    configure(amplify, gatehouse, pool_two, client_id)
    email = "ora@amplify.example"
    amplify.ok("signUp", {"username": "ora", "password": PASSWORD, "options": {"userAttributes": {"email": email}}})
    mail.wait_for(email)
    assert idp.admin_get_user(UserPoolId=pool_two, Username="ora")["UserStatus"] == "UNCONFIRMED"
    resent = amplify.ok("resendSignUpCode", {"username": "ora"})
    assert resent["deliveryMedium"] == "EMAIL" and resent["attributeName"] == "email"
    second = code_in(mail.wait_for(email, count=2))
    assert amplify.ok("confirmSignUp", {"username": "ora", "confirmationCode": second})["isSignUpComplete"] is True
    assert idp.admin_get_user(UserPoolId=pool_two, Username="ora")["UserStatus"] == "CONFIRMED"


def test_sms_mfa_chosen_among_several_factors(amplify: Amplify, gatehouse: GatehouseServer, idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "amplify-sms")
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="OPTIONAL",
        SmsMfaConfiguration={"SmsAuthenticationMessage": "Your sign-in code is {####}"},
        SoftwareTokenMfaConfiguration={"Enabled": True},
    )
    phone = "+15550100123"
    make_user(idp, pool_id, "pia", "pia@amplify.example")
    idp.admin_update_user_attributes(
        UserPoolId=pool_id,
        Username="pia",
        UserAttributes=[{"Name": "phone_number", "Value": phone}, {"Name": "phone_number_verified", "Value": "true"}],
    )
    configure(amplify, gatehouse, pool_id, client_id)
    assert amplify.ok("signIn", {"username": "pia", "password": PASSWORD})["isSignedIn"] is True
    secret = amplify.ok("setUpTOTP")["sharedSecret"]
    step = settled_step()
    amplify.ok("verifyTOTPSetup", {"code": code_at(secret, step)})
    # Both factors on, neither preferred: Cognito's SELECT_MFA_TYPE.
    amplify.ok("updateMFAPreference", {"sms": "ENABLED", "totp": "ENABLED"})
    assert amplify.ok("fetchMFAPreference") == {"enabled": ["SMS", "TOTP"]}
    amplify.ok("signOut")

    chooser = amplify.ok("signIn", {"username": "pia", "password": PASSWORD})
    assert chooser["nextStep"]["signInStep"] == "CONTINUE_SIGN_IN_WITH_MFA_SELECTION"
    assert sorted(chooser["nextStep"]["allowedMFATypes"]) == ["SMS", "TOTP"]
    texted = amplify.ok("confirmSignIn", {"challengeResponse": "SMS"})
    assert texted["nextStep"]["signInStep"] == "CONFIRM_SIGN_IN_WITH_SMS_CODE"
    assert texted["nextStep"]["codeDeliveryDetails"]["deliveryMedium"] == "SMS"
    code = sms_code(gatehouse, phone, 1)
    wrong = amplify.call("confirmSignIn", {"challengeResponse": "000000" if code != "000000" else "111111"})
    assert (wrong["ok"], wrong["name"]) == (False, "CodeMismatchException")
    done = amplify.ok("confirmSignIn", {"challengeResponse": code})
    assert done == {"isSignedIn": True, "nextStep": {"signInStep": "DONE"}}
    assert amplify.ok("getCurrentUser")["username"] == "pia"
