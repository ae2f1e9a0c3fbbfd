"""The sign-in engine's challenges under hostile answers, against one real server: a failed answer changes
nothing in the store, and a Session answers only for the challenge, user, pool and client it was issued to."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pyotp
import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_devices import claims_of, confirm, device_proof
from tests.support import MailServer, body_text

PASSWORD = "Correct-Horse-9"
TEMPORARY = "Temp-Pass-123"
FLOWS = [
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_SRP_AUTH",
]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def new_pool(idp: Any, **settings: Any) -> tuple[str, str]:
    pool_id = idp.create_user_pool(PoolName=f"fidelity-{uuid.uuid4().hex[:6]}", **settings)["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    return pool_id, client_id


def password_step(public_idp: Any, client_id: str, username: str, password: str) -> dict[str, Any]:
    return dict(
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    )


# --- NEW_PASSWORD_REQUIRED ----------------------------------------------------------------------------------


def test_new_password_with_an_alias_held_by_another_user_changes_nothing(idp: Any, public_idp: Any) -> None:
    """A NEW_PASSWORD_REQUIRED answer whose userAttributes take a preferred_username another user holds fails
    with AliasExistsException (RespondToAuthChallenge's model lists it) -- and, failing, must leave the user as
    it was: still FORCE_CHANGE_PASSWORD with the temporary password, not CONFIRMED with a new password that a
    refused answer set."""
    pool_id, client_id = new_pool(idp, AliasAttributes=["preferred_username"])
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="alice",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "preferred_username", "Value": "ally"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="alice", Password=PASSWORD, Permanent=True)
    idp.admin_create_user(UserPoolId=pool_id, Username="bob", MessageAction="SUPPRESS", TemporaryPassword=TEMPORARY)
    step = password_step(public_idp, client_id, "bob", TEMPORARY)
    assert step["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(ClientError) as error:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=step["Session"],
            ChallengeResponses={
                "USERNAME": "bob",
                "NEW_PASSWORD": "New-Pass-1234",
                "userAttributes.preferred_username": "ALLY",
            },
        )
    assert error_of(error)[0] == "AliasExistsException"
    user = idp.admin_get_user(UserPoolId=pool_id, Username="bob")
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert "preferred_username" not in {a["Name"] for a in user["UserAttributes"]}
    with pytest.raises(ClientError) as error:
        password_step(public_idp, client_id, "bob", "New-Pass-1234")
    assert error_of(error) == ("NotAuthorizedException", "Incorrect username or password.")
    # The temporary password still leads to the challenge, which a free name then completes.
    step = password_step(public_idp, client_id, "bob", TEMPORARY)
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=step["Session"],
        ChallengeResponses={
            "USERNAME": "bob",
            "NEW_PASSWORD": "New-Pass-1234",
            "userAttributes.preferred_username": "bobby",
        },
    )
    assert "AccessToken" in done["AuthenticationResult"]
    assert idp.admin_get_user(UserPoolId=pool_id, Username="bob")["UserStatus"] == "CONFIRMED"
    # alice keeps her name.
    assert "AccessToken" in password_step(public_idp, client_id, "ally", PASSWORD)["AuthenticationResult"]


def test_a_user_disabled_during_new_password_required_gets_no_tokens(idp: Any, public_idp: Any) -> None:
    """AdminDisableUser "deactivates a user and revokes all access tokens"; a NEW_PASSWORD_REQUIRED Session
    issued before it (valid for the client's AuthSessionValidity, up to 15 minutes) must not then yield tokens,
    nor set the password: the answer is refused as any sign-in of a disabled user ("User is disabled.")."""
    pool_id, client_id = new_pool(idp)
    idp.admin_create_user(UserPoolId=pool_id, Username="dora", MessageAction="SUPPRESS", TemporaryPassword=TEMPORARY)
    step = password_step(public_idp, client_id, "dora", TEMPORARY)
    assert step["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    idp.admin_disable_user(UserPoolId=pool_id, Username="dora")
    with pytest.raises(ClientError) as error:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=step["Session"],
            ChallengeResponses={"USERNAME": "dora", "NEW_PASSWORD": "New-Pass-1234"},
        )
    assert error_of(error) == ("NotAuthorizedException", "User is disabled.")
    user = idp.admin_get_user(UserPoolId=pool_id, Username="dora")
    assert (user["UserStatus"], user["Enabled"]) == ("FORCE_CHANGE_PASSWORD", False)
    # Enabled again, the temporary password (not the refused new one) is what signs in.
    idp.admin_enable_user(UserPoolId=pool_id, Username="dora")
    with pytest.raises(ClientError) as error:
        password_step(public_idp, client_id, "dora", "New-Pass-1234")
    assert error_of(error) == ("NotAuthorizedException", "Incorrect username or password.")
    assert password_step(public_idp, client_id, "dora", TEMPORARY)["ChallengeName"] == "NEW_PASSWORD_REQUIRED"


# --- choice-based sign-in ------------------------------------------------------------------------------------


def test_select_challenge_sends_no_code_to_an_address_unverified_since(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    """EMAIL_OTP signs in "users with a verified email address" only (developer guide, "Choice-based
    authentication"): a SELECT_CHALLENGE Session listing EMAIL_OTP, issued while the address was verified, must
    not send the code to an address that replaced it since and nobody has proven -- a mistyped one reaches a
    stranger, who could then sign in as the user. The choice is judged on the user as they are now."""
    pool_id = idp.create_user_pool(
        PoolName=f"choice-{uuid.uuid4().hex[:6]}",
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}},
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    victim, typo = f"vic-{uuid.uuid4().hex[:6]}@example.com", f"vic-{uuid.uuid4().hex[:6]}@example.net"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="vic",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": victim}, {"Name": "email_verified", "Value": "true"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="vic", Password=PASSWORD, Permanent=True)
    token = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_AUTH",
        AuthParameters={"USERNAME": "vic", "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["AccessToken"]

    step = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters={"USERNAME": "vic"})
    assert step["ChallengeName"] == "SELECT_CHALLENGE" and "EMAIL_OTP" in step["AvailableChallenges"]
    public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "email", "Value": typo}])
    with pytest.raises(ClientError) as error:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SELECT_CHALLENGE",
            Session=step["Session"],
            ChallengeResponses={"USERNAME": "vic", "ANSWER": "EMAIL_OTP"},
        )
    assert error_of(error)[0] == "InvalidParameterException"
    time.sleep(0.5)  # a code, had one gone out, would be in the mailbox by now
    assert mail.messages_to(typo) == [] and mail.messages_to(victim) == []
    # A new USER_AUTH no longer offers EMAIL_OTP at all; the password still signs in.
    step = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters={"USERNAME": "vic"})
    assert step["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP"]


# --- custom authentication ---------------------------------------------------------------------------------


def test_custom_auth_without_its_triggers_is_cognitos_configuration_error(idp: Any, public_idp: Any) -> None:
    """ALLOW_CUSTOM_AUTH is in ExplicitAuthFlows' default, so clients do try CUSTOM_AUTH; with no
    DefineAuthChallenge trigger Cognito answers "Custom auth lambda trigger is not configured for the user
    pool." (InvalidParameterException) -- the words SDKs and apps match on -- whatever the user, known or not,
    and no CUSTOM_CHALLENGE answer gets anywhere."""
    pool_id = idp.create_user_pool(PoolName=f"custom-{uuid.uuid4().hex[:6]}")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="cleo", MessageAction="SUPPRESS")
    for username in ("cleo", "nobody"):
        with pytest.raises(ClientError) as error:
            public_idp.initiate_auth(ClientId=client_id, AuthFlow="CUSTOM_AUTH", AuthParameters={"USERNAME": username})
        assert error_of(error) == (
            "InvalidParameterException",
            "Custom auth lambda trigger is not configured for the user pool.",
        )
    with pytest.raises(ClientError) as error:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="CUSTOM_CHALLENGE",
            Session="x" * 40,
            ChallengeResponses={"USERNAME": "cleo", "ANSWER": "42"},
        )
    # CUSTOM_CHALLENGE is a challenge Gatehouse answers: a Session it never handed out is refused as any is.
    assert error_of(error)[0] == "NotAuthorizedException"
    # A client that does not allow the flow says so first.
    other = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="strict", ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    with pytest.raises(ClientError) as error:
        public_idp.initiate_auth(ClientId=other, AuthFlow="CUSTOM_AUTH", AuthParameters={"USERNAME": "cleo"})
    assert error_of(error) == ("InvalidParameterException", "Auth flow not enabled for this client")


def test_no_sign_in_code_is_sent_to_a_disabled_user(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """A disabled user cannot sign in (AdminDisableUser), so USER_AUTH -- which anyone may start with just a
    username -- must not mail them sign-in codes; the challenge still looks like anyone's (no status told), and
    every code is refused as a wrong one. Enabled again, the user gets a code and signs in with it."""
    pool_id = idp.create_user_pool(
        PoolName=f"choice-{uuid.uuid4().hex[:6]}",
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}},
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    address = f"dis-{uuid.uuid4().hex[:6]}@example.com"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="dis",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": address}, {"Name": "email_verified", "Value": "true"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="dis", Password=PASSWORD, Permanent=True)
    idp.admin_disable_user(UserPoolId=pool_id, Username="dis")

    def start() -> dict[str, Any]:
        return dict(
            public_idp.initiate_auth(
                ClientId=client_id,
                AuthFlow="USER_AUTH",
                AuthParameters={"USERNAME": "dis", "PREFERRED_CHALLENGE": "EMAIL_OTP"},
            )
        )

    step = start()
    assert step["ChallengeName"] == "EMAIL_OTP"
    assert step["ChallengeParameters"]["CODE_DELIVERY_DESTINATION"].startswith("d***@")
    for guess in ("12345678", "87654321"):
        with pytest.raises(ClientError) as error:
            public_idp.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="EMAIL_OTP",
                Session=step["Session"],
                ChallengeResponses={"USERNAME": "dis", "EMAIL_OTP_CODE": guess},
            )
        assert error_of(error) == ("CodeMismatchException", "Invalid code received for user")
    time.sleep(0.5)
    assert mail.messages_to(address) == []

    idp.admin_enable_user(UserPoolId=pool_id, Username="dis")
    step = start()
    code = re.findall(r"\b\d{8}\b", body_text(mail.wait_for(address)))[0]
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="EMAIL_OTP",
        Session=step["Session"],
        ChallengeResponses={"USERNAME": "dis", "EMAIL_OTP_CODE": code},
    )
    assert "AccessToken" in done["AuthenticationResult"]


def test_user_auth_honours_a_remembered_device(idp: Any, public_idp: Any) -> None:
    """InitiateAuth's AuthParameters: "Add DEVICE_KEY if you want to bypass multi-factor authentication with a
    remembered device" -- for USER_AUTH as for the other flows. A USER_AUTH sign-in naming the user's remembered
    device proves the device (DEVICE_SRP_AUTH) instead of the TOTP code, whether the factor was preferred at
    InitiateAuth or chosen from SELECT_CHALLENGE; without it, or before the device proof, no tokens."""
    pool_id = idp.create_user_pool(
        PoolName=f"choice-dev-{uuid.uuid4().hex[:6]}",
        DeviceConfiguration={"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": False},
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD"]}},
    )["UserPool"]["Id"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="remy", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="remy", Password=PASSWORD, Permanent=True)

    def user_auth(**parameters: str) -> dict[str, Any]:
        return dict(
            public_idp.initiate_auth(
                ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters={"USERNAME": "remy", **parameters}
            )
        )

    # The first sign-in is from a new device, which the client confirms (remembered at once); then TOTP goes on.
    first = user_auth(PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD)
    device, _ = confirm(public_idp, first)
    token = first["AuthenticationResult"]["AccessToken"]
    secret = public_idp.associate_software_token(AccessToken=token)["SecretCode"]
    public_idp.verify_software_token(AccessToken=token, UserCode=pyotp.TOTP(secret).now())
    public_idp.set_user_mfa_preference(
        AccessToken=token, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    assert user_auth(PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD)["ChallengeName"] == "SOFTWARE_TOKEN_MFA"

    # Preferred at once, with the device: its proof instead of the code.
    step = user_auth(PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD, DEVICE_KEY=device.key)
    done = device_proof(public_idp, pool_id, client_id, step, "remy", device)["AuthenticationResult"]
    assert "NewDeviceMetadata" not in done
    assert claims_of(done["AccessToken"])["device_key"] == device.key

    # Chosen from SELECT_CHALLENGE, the device named at InitiateAuth.
    select = user_auth(DEVICE_KEY=device.key)
    assert select["ChallengeName"] == "SELECT_CHALLENGE"
    step = dict(
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SELECT_CHALLENGE",
            Session=select["Session"],
            ChallengeResponses={"USERNAME": "remy", "ANSWER": "PASSWORD", "PASSWORD": PASSWORD},
        )
    )
    assert "AccessToken" in device_proof(public_idp, pool_id, client_id, step, "remy", device)["AuthenticationResult"]

    # A key that is no device of this user is refused, as USER_PASSWORD_AUTH refuses it.
    with pytest.raises(ClientError) as error:
        user_auth(PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD, DEVICE_KEY="us-east-1_" + str(uuid.uuid4()))
    assert error_of(error)[0] == "ResourceNotFoundException"
