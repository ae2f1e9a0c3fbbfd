"""Administering users through boto3 against a running Gatehouse: AdminCreateUser and the invitation,
the NEW_PASSWORD_REQUIRED challenge, the Admin* user operations, ListUsers, aliases, email usernames and
case sensitivity. The spec is Cognito's documented behaviour (botocore's cognito-idp model)."""

from __future__ import annotations

import concurrent.futures
import json
import re
import uuid
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.support import MailServer, body_text, code_in

PASSWORD = "Correct-horse-battery-1"
NEW_PASSWORD = "Brand-new-password-22"
TEMPORARY = "Temporary-pass-333"
MIN_LENGTH = 14
COGNITO_SYMBOLS = set("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ")
AUTH_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


# --- helpers ---------------------------------------------------------------------------------------------


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def attributes_of(user: dict[str, Any]) -> dict[str, str]:
    items = user.get("UserAttributes", user.get("Attributes", []))
    return {a["Name"]: a["Value"] for a in items}


def make_client(idp: Any, pool_id: str, **settings: Any) -> str:
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=AUTH_FLOWS, **settings)
    return str(client["UserPoolClient"]["ClientId"])


def admin_sign_in(
    idp: Any, pool_id: str, client_id: str, username: str, password: str, flow: str = "ADMIN_USER_PASSWORD_AUTH"
) -> dict[str, Any]:
    return dict(
        idp.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow=flow,
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    )


def admin_sign_in_error(idp: Any, pool_id: str, client_id: str, username: str, password: str) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        admin_sign_in(idp, pool_id, client_id, username, password)
    return error_of(exc)


def create_confirmed(
    idp: Any, pool_id: str, username: str, attributes: dict[str, str] | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    """A CONFIRMED user with a permanent password, made without sending any message."""
    created = idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        TemporaryPassword=TEMPORARY,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in (attributes or {}).items()],
    )["User"]
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
    return dict(created)


def temporary_password_in(text: str) -> str:
    match = re.search(r"temporary password is (\S+)\.\s*$", text)
    assert match, text
    return match.group(1)


def unverified_claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def flush_mail(idp: Any, mail: MailServer, pool_id: str) -> None:
    """Send one invitation and wait for it: every message from earlier requests has arrived by then."""
    tag = uuid.uuid4().hex[:10]
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=f"sentinel-{tag}",
        UserAttributes=[{"Name": "email", "Value": f"sentinel-{tag}@example.com"}],
        DesiredDeliveryMediums=["EMAIL"],
    )
    mail.wait_for(f"sentinel-{tag}@example.com")


# --- pools ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    created = idp.create_user_pool(
        PoolName="admin-users",
        AutoVerifiedAttributes=["email"],
        Policies={
            "PasswordPolicy": {
                "MinimumLength": MIN_LENGTH,
                "RequireUppercase": True,
                "RequireLowercase": True,
                "RequireNumbers": True,
                "RequireSymbols": True,
            }
        },
        Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}],
        UsernameConfiguration={"CaseSensitive": False},  # the case tests below sign in as ALICE, Alice, alice
    )
    return str(created["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    # Enumeration-resistant answers: an unknown user gets "Incorrect username or password."
    return make_client(idp, pool_id, PreventUserExistenceErrors="ENABLED")


# --- AdminCreateUser and the invitation --------------------------------------------------------------------


def test_create_user_with_temporary_password_and_suppress_sends_nothing(
    idp: Any, mail: MailServer, pool_id: str, client_id: str
) -> None:
    created = idp.admin_create_user(
        UserPoolId=pool_id,
        Username="quiet",
        TemporaryPassword=TEMPORARY,
        MessageAction="SUPPRESS",
        DesiredDeliveryMediums=["EMAIL"],
        UserAttributes=[{"Name": "email", "Value": "quiet@example.com"}, {"Name": "custom:tier", "Value": "gold"}],
    )["User"]
    assert created["Username"] == "quiet"
    assert created["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert created["Enabled"] is True
    attributes = attributes_of(created)
    assert attributes["email"] == "quiet@example.com" and attributes["custom:tier"] == "gold"
    assert uuid.UUID(attributes["sub"])

    challenge = admin_sign_in(idp, pool_id, client_id, "quiet", TEMPORARY)
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"

    flush_mail(idp, mail, pool_id)
    assert mail.messages_to("quiet@example.com") == []


def test_temporary_password_must_satisfy_the_policy(idp: Any, pool_id: str) -> None:
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool_id, Username="weak", TemporaryPassword="Short-1", MessageAction="SUPPRESS"
        )
    assert error_of(exc) == (
        "InvalidPasswordException",
        "Password did not conform with policy: Password not long enough",
    )
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username="weak")
    assert error_of(exc)[0] == "UserNotFoundException"


def test_invitation_email_then_new_password_challenge(idp: Any, mail: MailServer, pool_id: str, client_id: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="invitee",
        UserAttributes=[{"Name": "email", "Value": "invitee@example.com"}, {"Name": "name", "Value": "Ivy"}],
        DesiredDeliveryMediums=["EMAIL"],
    )
    message = mail.wait_for("invitee@example.com")
    text = body_text(message)
    assert "invitee" in text
    temporary = temporary_password_in(text)
    assert len(temporary) >= MIN_LENGTH
    assert any(c.isupper() for c in temporary) and any(c.islower() for c in temporary)
    assert any(c.isdigit() for c in temporary) and set(temporary) & COGNITO_SYMBOLS
    assert idp.admin_get_user(UserPoolId=pool_id, Username="invitee")["UserStatus"] == "FORCE_CHANGE_PASSWORD"

    challenge = admin_sign_in(idp, pool_id, client_id, "invitee", temporary)
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert "AuthenticationResult" not in challenge
    session = challenge["Session"]
    parameters = challenge["ChallengeParameters"]
    assert parameters["USER_ID_FOR_SRP"] == "invitee"
    user_attributes = json.loads(parameters["userAttributes"])
    assert user_attributes["email"] == "invitee@example.com" and user_attributes["name"] == "Ivy"
    assert json.loads(parameters["requiredAttributes"]) == []

    # A new password that breaks the policy is refused, and the same session may try again.
    with pytest.raises(ClientError) as exc:
        idp.admin_respond_to_auth_challenge(
            UserPoolId=pool_id,
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=session,
            ChallengeResponses={"USERNAME": "invitee", "NEW_PASSWORD": "lowercase-only-password"},
        )
    code, text = error_of(exc)
    assert code == "InvalidPasswordException"
    assert text.startswith("Password did not conform with policy")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="invitee")["UserStatus"] == "FORCE_CHANGE_PASSWORD"

    answered = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=session,
        ChallengeResponses={"USERNAME": "invitee", "NEW_PASSWORD": NEW_PASSWORD},
    )
    result = answered["AuthenticationResult"]
    assert {"AccessToken", "IdToken", "RefreshToken"} <= set(result)
    assert unverified_claims(result["IdToken"])["cognito:username"] == "invitee"
    assert idp.admin_get_user(UserPoolId=pool_id, Username="invitee")["UserStatus"] == "CONFIRMED"

    # The session answered once; replaying it is refused.
    with pytest.raises(ClientError) as exc:
        idp.admin_respond_to_auth_challenge(
            UserPoolId=pool_id,
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=session,
            ChallengeResponses={"USERNAME": "invitee", "NEW_PASSWORD": "Another-new-password-3"},
        )
    assert error_of(exc) == ("NotAuthorizedException", "Invalid session for the user, session is expired.")

    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "invitee", NEW_PASSWORD)
    assert admin_sign_in_error(idp, pool_id, client_id, "invitee", temporary) == (
        "NotAuthorizedException",
        "Incorrect username or password.",
    )


def test_legacy_admin_no_srp_auth_name_and_garbage_session(idp: Any, pool_id: str, client_id: str) -> None:
    idp.admin_create_user(UserPoolId=pool_id, Username="legacy", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
    challenge = admin_sign_in(idp, pool_id, client_id, "legacy", TEMPORARY, flow="ADMIN_NO_SRP_AUTH")
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert challenge["ChallengeParameters"]["USER_ID_FOR_SRP"] == "legacy"

    with pytest.raises(ClientError) as exc:
        idp.admin_respond_to_auth_challenge(
            UserPoolId=pool_id,
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session="not-a-session-" + "x" * 40,
            ChallengeResponses={"USERNAME": "legacy", "NEW_PASSWORD": NEW_PASSWORD},
        )
    assert error_of(exc)[0] == "NotAuthorizedException"
    assert idp.admin_get_user(UserPoolId=pool_id, Username="legacy")["UserStatus"] == "FORCE_CHANGE_PASSWORD"

    answered = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "legacy", "NEW_PASSWORD": NEW_PASSWORD},
    )
    assert "AccessToken" in answered["AuthenticationResult"]
    assert idp.admin_get_user(UserPoolId=pool_id, Username="legacy")["UserStatus"] == "CONFIRMED"


def test_public_sign_in_answers_the_new_password_challenge(
    idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    idp.admin_create_user(UserPoolId=pool_id, Username="public", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
    challenge = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "public", "PASSWORD": TEMPORARY},
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert challenge["ChallengeParameters"]["USER_ID_FOR_SRP"] == "public"
    answered = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "public", "NEW_PASSWORD": NEW_PASSWORD},
    )
    result = answered["AuthenticationResult"]
    assert public_idp.get_user(AccessToken=result["AccessToken"])["Username"] == "public"
    assert idp.admin_get_user(UserPoolId=pool_id, Username="public")["UserStatus"] == "CONFIRMED"
    signed_in = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "public", "PASSWORD": NEW_PASSWORD},
    )
    assert "AccessToken" in signed_in["AuthenticationResult"]


def test_resend_invitation_replaces_the_temporary_password(
    idp: Any, mail: MailServer, pool_id: str, client_id: str
) -> None:
    address = "resend@example.com"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="resend",
        UserAttributes=[{"Name": "email", "Value": address}],
        DesiredDeliveryMediums=["EMAIL"],
    )
    first = temporary_password_in(body_text(mail.wait_for(address)))
    resent = idp.admin_create_user(
        UserPoolId=pool_id, Username="resend", MessageAction="RESEND", DesiredDeliveryMediums=["EMAIL"]
    )["User"]
    assert resent["Username"] == "resend" and resent["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    second_text = body_text(mail.wait_for(address, count=2))
    assert "resend" in second_text
    second = temporary_password_in(second_text)
    assert second != first

    assert admin_sign_in_error(idp, pool_id, client_id, "resend", first)[0] == "NotAuthorizedException"
    assert admin_sign_in(idp, pool_id, client_id, "resend", second)["ChallengeName"] == "NEW_PASSWORD_REQUIRED"

    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool_id, Username="nobody-here", MessageAction="RESEND", DesiredDeliveryMediums=["EMAIL"]
        )
    assert error_of(exc)[0] == "UserNotFoundException"


def test_resend_to_a_confirmed_user_is_refused(idp: Any, pool_id: str) -> None:
    create_confirmed(idp, pool_id, "settled", {"email": "settled@example.com"})
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool_id, Username="settled", MessageAction="RESEND", DesiredDeliveryMediums=["EMAIL"]
        )
    assert error_of(exc)[0] == "UnsupportedUserStateException"


def test_duplicate_username_is_refused(idp: Any, pool_id: str) -> None:
    idp.admin_create_user(UserPoolId=pool_id, Username="twin", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
    for name in ("twin", "TWIN"):  # usernames are case-insensitive in this pool
        with pytest.raises(ClientError) as exc:
            idp.admin_create_user(
                UserPoolId=pool_id, Username=name, TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS"
            )
        assert error_of(exc) == ("UsernameExistsException", "User account already exists")


def test_invitation_by_email_needs_an_email(idp: Any, pool_id: str) -> None:
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(UserPoolId=pool_id, Username="mailless", DesiredDeliveryMediums=["EMAIL"])
    assert error_of(exc)[0] == "InvalidParameterException"


# --- AdminGetUser, AdminDeleteUser, attributes -----------------------------------------------------------------


def test_admin_get_user_and_delete_user(idp: Any, pool_id: str, client_id: str) -> None:
    created = create_confirmed(idp, pool_id, "doomed", {"email": "doomed@example.com", "email_verified": "true"})
    got = idp.admin_get_user(UserPoolId=pool_id, Username="doomed")
    assert got["Username"] == "doomed"
    assert got["Enabled"] is True and got["UserStatus"] == "CONFIRMED"
    attributes = attributes_of(got)
    assert attributes["sub"] == attributes_of(created)["sub"]
    assert attributes["email"] == "doomed@example.com" and attributes["email_verified"] == "true"
    assert got["UserCreateDate"] <= got["UserLastModifiedDate"]

    idp.admin_delete_user(UserPoolId=pool_id, Username="doomed")
    for call in (idp.admin_get_user, idp.admin_delete_user):
        with pytest.raises(ClientError) as exc:
            call(UserPoolId=pool_id, Username="doomed")
        assert error_of(exc) == ("UserNotFoundException", "User does not exist.")
    assert admin_sign_in_error(idp, pool_id, client_id, "doomed", PASSWORD) == (
        "NotAuthorizedException",
        "Incorrect username or password.",
    )


def test_concurrent_deletions_of_one_user_succeed_once(idp: Any, pool_id: str) -> None:
    """Ten AdminDeleteUser calls for one user at once: one deletes it, the others are told it does not exist (each
    finds the user, then deletes; only one can have deleted it)."""
    for round_ in range(3):
        create_confirmed(idp, pool_id, f"raced-{round_}", {})
        name = f"raced-{round_}"
        with concurrent.futures.ThreadPoolExecutor(10) as threads:
            calls = [threads.submit(idp.admin_delete_user, UserPoolId=pool_id, Username=name) for _ in range(10)]
        outcomes = []
        for call in calls:
            try:
                call.result()
                outcomes.append("deleted")
            except ClientError as exc:
                outcomes.append(str(exc.response["Error"]["Code"]))
        assert sorted(outcomes) == ["UserNotFoundException"] * 9 + ["deleted"]


def test_unknown_pool_is_resource_not_found(idp: Any) -> None:
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId="us-east-1_doesNotExist", Username="anyone")
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_admin_changing_email_unverifies_it_and_mails_a_code(
    idp: Any, public_idp: Any, mail: MailServer, pool_id: str, client_id: str
) -> None:
    create_confirmed(idp, pool_id, "mover", {"email": "mover-old@example.com", "email_verified": "true"})
    idp.admin_update_user_attributes(
        UserPoolId=pool_id,
        Username="mover",
        UserAttributes=[
            {"Name": "email", "Value": "mover-new@example.com"},
            {"Name": "custom:tier", "Value": "silver"},
        ],
    )
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="mover"))
    assert attributes["email"] == "mover-new@example.com"
    assert attributes["email_verified"] == "false"
    assert attributes["custom:tier"] == "silver"
    code = code_in(mail.wait_for("mover-new@example.com"))

    tokens = admin_sign_in(idp, pool_id, client_id, "mover", PASSWORD)["AuthenticationResult"]
    public_idp.verify_user_attribute(AccessToken=tokens["AccessToken"], AttributeName="email", Code=code)
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="mover"))
    assert attributes["email_verified"] == "true"


def test_admin_setting_email_verified_sends_no_code(idp: Any, mail: MailServer, pool_id: str) -> None:
    create_confirmed(idp, pool_id, "trusted", {"email": "trusted-old@example.com", "email_verified": "true"})
    idp.admin_update_user_attributes(
        UserPoolId=pool_id,
        Username="trusted",
        UserAttributes=[
            {"Name": "email", "Value": "trusted-new@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="trusted"))
    assert attributes["email"] == "trusted-new@example.com"
    assert attributes["email_verified"] == "true"
    flush_mail(idp, mail, pool_id)
    assert mail.messages_to("trusted-new@example.com") == []
    assert mail.messages_to("trusted-old@example.com") == []


def test_admin_delete_user_attributes(idp: Any, pool_id: str) -> None:
    create_confirmed(
        idp,
        pool_id,
        "trimmed",
        {"email": "trimmed@example.com", "name": "Trim", "custom:tier": "bronze", "given_name": "T"},
    )
    idp.admin_delete_user_attributes(UserPoolId=pool_id, Username="trimmed", UserAttributeNames=["name", "custom:tier"])
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="trimmed"))
    assert "name" not in attributes and "custom:tier" not in attributes
    assert attributes["given_name"] == "T" and attributes["email"] == "trimmed@example.com"

    with pytest.raises(ClientError) as exc:
        idp.admin_delete_user_attributes(
            UserPoolId=pool_id, Username="trimmed", UserAttributeNames=["custom:not_in_schema"]
        )
    assert error_of(exc)[0] == "InvalidParameterException"


# --- enabling, disabling, confirming ------------------------------------------------------------------------


def test_disable_refuses_sign_in_and_existing_tokens_enable_restores(
    idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    create_confirmed(idp, pool_id, "paused")
    tokens = admin_sign_in(idp, pool_id, client_id, "paused", PASSWORD)["AuthenticationResult"]
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "paused"

    idp.admin_disable_user(UserPoolId=pool_id, Username="paused")
    got = idp.admin_get_user(UserPoolId=pool_id, Username="paused")
    assert got["Enabled"] is False and got["UserStatus"] == "CONFIRMED"
    assert admin_sign_in_error(idp, pool_id, client_id, "paused", PASSWORD) == (
        "NotAuthorizedException",
        "User is disabled.",
    )
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "paused", "PASSWORD": PASSWORD},
        )
    assert error_of(exc) == ("NotAuthorizedException", "User is disabled.")
    with pytest.raises(ClientError) as exc:
        public_idp.get_user(AccessToken=tokens["AccessToken"])
    assert error_of(exc)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]},
        )
    assert error_of(exc)[0] == "NotAuthorizedException"

    idp.admin_enable_user(UserPoolId=pool_id, Username="paused")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="paused")["Enabled"] is True
    fresh = admin_sign_in(idp, pool_id, client_id, "paused", PASSWORD)["AuthenticationResult"]
    assert public_idp.get_user(AccessToken=fresh["AccessToken"])["Username"] == "paused"
    with pytest.raises(ClientError) as exc:  # tokens revoked by the disable stay revoked
        public_idp.get_user(AccessToken=tokens["AccessToken"])
    assert error_of(exc)[0] == "NotAuthorizedException"


def test_admin_confirm_sign_up(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    signed_up = public_idp.sign_up(
        ClientId=client_id,
        Username="joiner",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "joiner@example.com"}],
    )
    assert signed_up["UserConfirmed"] is False
    assert idp.admin_get_user(UserPoolId=pool_id, Username="joiner")["UserStatus"] == "UNCONFIRMED"
    assert admin_sign_in_error(idp, pool_id, client_id, "joiner", PASSWORD) == (
        "UserNotConfirmedException",
        "User is not confirmed.",
    )

    idp.admin_confirm_sign_up(UserPoolId=pool_id, Username="joiner")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="joiner")["UserStatus"] == "CONFIRMED"
    assert "AccessToken" in admin_sign_in(idp, pool_id, client_id, "joiner", PASSWORD)["AuthenticationResult"]

    with pytest.raises(ClientError) as exc:
        idp.admin_confirm_sign_up(UserPoolId=pool_id, Username="joiner")
    assert error_of(exc) == ("NotAuthorizedException", "User cannot be confirmed. Current status is CONFIRMED")
    with pytest.raises(ClientError) as exc:
        idp.admin_confirm_sign_up(UserPoolId=pool_id, Username="never-signed-up")
    assert error_of(exc)[0] == "UserNotFoundException"


# --- passwords -----------------------------------------------------------------------------------------------


def test_admin_set_user_password_permanent(idp: Any, pool_id: str, client_id: str) -> None:
    idp.admin_create_user(UserPoolId=pool_id, Username="fixed", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="fixed", Password=PASSWORD, Permanent=True)
    assert idp.admin_get_user(UserPoolId=pool_id, Username="fixed")["UserStatus"] == "CONFIRMED"
    result = admin_sign_in(idp, pool_id, client_id, "fixed", PASSWORD)
    assert "ChallengeName" not in result and "IdToken" in result["AuthenticationResult"]
    assert admin_sign_in_error(idp, pool_id, client_id, "fixed", TEMPORARY)[0] == "NotAuthorizedException"

    with pytest.raises(ClientError) as exc:
        idp.admin_set_user_password(UserPoolId=pool_id, Username="fixed", Password="nodigits-nocaps!", Permanent=True)
    code, message = error_of(exc)
    assert code == "InvalidPasswordException" and message.startswith("Password did not conform with policy")
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "fixed", PASSWORD)


def test_admin_set_user_password_temporary(idp: Any, pool_id: str, client_id: str) -> None:
    create_confirmed(idp, pool_id, "rotated")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="rotated", Password=TEMPORARY, Permanent=False)
    assert idp.admin_get_user(UserPoolId=pool_id, Username="rotated")["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert admin_sign_in_error(idp, pool_id, client_id, "rotated", PASSWORD)[0] == "NotAuthorizedException"
    challenge = admin_sign_in(idp, pool_id, client_id, "rotated", TEMPORARY)
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "rotated", "NEW_PASSWORD": NEW_PASSWORD},
    )
    assert idp.admin_get_user(UserPoolId=pool_id, Username="rotated")["UserStatus"] == "CONFIRMED"


def test_admin_reset_user_password_and_confirm_forgot_password(
    idp: Any, public_idp: Any, mail: MailServer, pool_id: str, client_id: str
) -> None:
    address = "forgetful@example.com"
    create_confirmed(idp, pool_id, "forgetful", {"email": address, "email_verified": "true"})
    idp.admin_reset_user_password(UserPoolId=pool_id, Username="forgetful")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="forgetful")["UserStatus"] == "RESET_REQUIRED"
    code = code_in(mail.wait_for(address))

    assert admin_sign_in_error(idp, pool_id, client_id, "forgetful", PASSWORD) == (
        "PasswordResetRequiredException",
        "Password reset required for the user",
    )
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "forgetful", "PASSWORD": PASSWORD},
        )
    assert error_of(exc)[0] == "PasswordResetRequiredException"

    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(ClientError) as exc:
        public_idp.confirm_forgot_password(
            ClientId=client_id, Username="forgetful", ConfirmationCode=wrong, Password=NEW_PASSWORD
        )
    assert error_of(exc)[0] == "CodeMismatchException"
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="forgetful", ConfirmationCode=code, Password=NEW_PASSWORD
    )
    assert idp.admin_get_user(UserPoolId=pool_id, Username="forgetful")["UserStatus"] == "CONFIRMED"
    assert "AccessToken" in admin_sign_in(idp, pool_id, client_id, "forgetful", NEW_PASSWORD)["AuthenticationResult"]
    assert admin_sign_in_error(idp, pool_id, client_id, "forgetful", PASSWORD)[0] == "NotAuthorizedException"


def test_admin_user_global_sign_out_revokes_every_token(
    idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    create_confirmed(idp, pool_id, "roamer")
    first = admin_sign_in(idp, pool_id, client_id, "roamer", PASSWORD)["AuthenticationResult"]
    second = admin_sign_in(idp, pool_id, client_id, "roamer", PASSWORD)["AuthenticationResult"]
    refreshed = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": first["RefreshToken"]}
    )["AuthenticationResult"]

    idp.admin_user_global_sign_out(UserPoolId=pool_id, Username="roamer")
    for token in (first["AccessToken"], second["AccessToken"], refreshed["AccessToken"]):
        with pytest.raises(ClientError) as exc:
            public_idp.get_user(AccessToken=token)
        assert error_of(exc) == ("NotAuthorizedException", "Access Token has been revoked")
    for refresh_token in (first["RefreshToken"], second["RefreshToken"]):
        with pytest.raises(ClientError) as exc:
            public_idp.initiate_auth(
                ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
            )
        assert error_of(exc)[0] == "NotAuthorizedException"

    again = admin_sign_in(idp, pool_id, client_id, "roamer", PASSWORD)["AuthenticationResult"]
    assert public_idp.get_user(AccessToken=again["AccessToken"])["Username"] == "roamer"


# --- ListUsers -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def list_pool_id(idp: Any) -> str:
    """Seven users: lister0..lister6; 0-2 CONFIRMED, 3-6 FORCE_CHANGE_PASSWORD; lister5 disabled;
    0-3 have team-N@example.com emails, 4-6 solo-N@example.org."""
    pool = str(idp.create_user_pool(PoolName="listing")["UserPool"]["Id"])
    for i in range(7):
        email = f"team-{i}@example.com" if i < 4 else f"solo-{i}@example.org"
        attributes = {"email": email, "given_name": f"Lister{i}"}
        if i < 3:
            create_confirmed(idp, pool, f"lister{i}", attributes)
        else:
            idp.admin_create_user(
                UserPoolId=pool,
                Username=f"lister{i}",
                TemporaryPassword=TEMPORARY,
                MessageAction="SUPPRESS",
                UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
            )
    idp.admin_disable_user(UserPoolId=pool, Username="lister5")
    return pool


ALL_LISTERS = {f"lister{i}" for i in range(7)}


def listed(idp: Any, pool_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    return list(idp.list_users(UserPoolId=pool_id, **kwargs)["Users"])


def names(users: list[dict[str, Any]]) -> set[str]:
    return {u["Username"] for u in users}


def test_list_users_without_filter(idp: Any, list_pool_id: str) -> None:
    users = listed(idp, list_pool_id)
    assert names(users) == ALL_LISTERS
    by_name = {u["Username"]: u for u in users}
    assert by_name["lister0"]["UserStatus"] == "CONFIRMED"
    assert by_name["lister4"]["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert by_name["lister5"]["Enabled"] is False and by_name["lister6"]["Enabled"] is True
    assert attributes_of(by_name["lister2"])["email"] == "team-2@example.com"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('email = "team-2@example.com"', {"lister2"}),
        ('email ^= "team-"', {"lister0", "lister1", "lister2", "lister3"}),
        ('email ^= "solo"', {"lister4", "lister5", "lister6"}),
        ('username = "lister3"', {"lister3"}),
        ('username ^= "lister"', ALL_LISTERS),
        ('given_name = "Lister6"', {"lister6"}),
        ('cognito:user_status = "CONFIRMED"', {"lister0", "lister1", "lister2"}),
        ('cognito:user_status = "FORCE_CHANGE_PASSWORD"', {"lister3", "lister4", "lister5", "lister6"}),
        ('cognito:user_status = "confirmed"', {"lister0", "lister1", "lister2"}),  # documented case-insensitive
        ('status = "Disabled"', {"lister5"}),
        ('status = "Enabled"', ALL_LISTERS - {"lister5"}),
        ('email = "nobody@example.com"', set()),
    ],
)
def test_list_users_filters(idp: Any, list_pool_id: str, expression: str, expected: set[str]) -> None:
    assert names(listed(idp, list_pool_id, Filter=expression)) == expected


def test_list_users_sub_filter(idp: Any, list_pool_id: str) -> None:
    sub = attributes_of(idp.admin_get_user(UserPoolId=list_pool_id, Username="lister4"))["sub"]
    assert names(listed(idp, list_pool_id, Filter=f'sub = "{sub}"')) == {"lister4"}


@pytest.mark.parametrize(
    "expression", ["email = team-2@example.com", 'email ~ "x"', 'custom:tier = "gold"', "nonsense"]
)
def test_list_users_bad_filter(idp: Any, list_pool_id: str, expression: str) -> None:
    with pytest.raises(ClientError) as exc:
        idp.list_users(UserPoolId=list_pool_id, Filter=expression)
    assert error_of(exc)[0] == "InvalidParameterException"


def test_list_users_attributes_to_get(idp: Any, list_pool_id: str) -> None:
    users = listed(idp, list_pool_id, AttributesToGet=["email"])
    assert len(users) == 7
    for user in users:
        assert [a["Name"] for a in user["Attributes"]] == ["email"]


def test_list_users_pages_with_limit(idp: Any, list_pool_id: str) -> None:
    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Limit": 3}
        if token:
            kwargs["PaginationToken"] = token
        page = idp.list_users(UserPoolId=list_pool_id, **kwargs)
        pages += 1
        assert len(page["Users"]) <= 3
        seen += [u["Username"] for u in page["Users"]]
        token = page.get("PaginationToken")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert sorted(seen) == sorted(ALL_LISTERS)


def test_list_users_paginator(idp: Any, list_pool_id: str) -> None:
    paginator = idp.get_paginator("list_users")
    pages = list(paginator.paginate(UserPoolId=list_pool_id, PaginationConfig={"PageSize": 2}))
    assert len(pages) == 4
    seen = [u["Username"] for page in pages for u in page["Users"]]
    assert sorted(seen) == sorted(ALL_LISTERS)
    filtered = paginator.paginate(
        UserPoolId=list_pool_id, Filter='email ^= "team-"', PaginationConfig={"PageSize": 1}
    ).build_full_result()
    assert names(filtered["Users"]) == {"lister0", "lister1", "lister2", "lister3"}


# --- aliases ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alias_pool(idp: Any) -> tuple[str, str]:
    pool = str(
        idp.create_user_pool(
            PoolName="aliases", AliasAttributes=["email", "preferred_username"], AutoVerifiedAttributes=["email"]
        )["UserPool"]["Id"]
    )
    # Enumeration-resistant answers: an unverified email is "Incorrect username or password."
    return pool, make_client(idp, pool, PreventUserExistenceErrors="ENABLED")


def test_sign_in_with_verified_email_or_preferred_username(idp: Any, alias_pool: tuple[str, str]) -> None:
    pool, client = alias_pool
    create_confirmed(
        idp,
        pool,
        "carol",
        {"email": "carol@alias.example", "email_verified": "true", "preferred_username": "caz"},
    )
    for name in ("carol", "carol@alias.example", "CAROL@alias.example", "caz"):
        result = admin_sign_in(idp, pool, client, name, PASSWORD)["AuthenticationResult"]
        assert unverified_claims(result["IdToken"])["cognito:username"] == "carol", name
    assert idp.admin_get_user(UserPoolId=pool, Username="carol@alias.example")["Username"] == "carol"
    assert idp.admin_get_user(UserPoolId=pool, Username="caz")["Username"] == "carol"


def test_unverified_email_is_not_an_alias(idp: Any, alias_pool: tuple[str, str]) -> None:
    pool, client = alias_pool
    create_confirmed(idp, pool, "dave", {"email": "dave@alias.example"})
    assert admin_sign_in_error(idp, pool, client, "dave@alias.example", PASSWORD) == (
        "NotAuthorizedException",
        "Incorrect username or password.",
    )
    assert "AuthenticationResult" in admin_sign_in(idp, pool, client, "dave", PASSWORD)

    # Once verified (by an admin here), the email signs in.
    idp.admin_update_user_attributes(
        UserPoolId=pool, Username="dave", UserAttributes=[{"Name": "email_verified", "Value": "true"}]
    )
    assert "AuthenticationResult" in admin_sign_in(idp, pool, client, "dave@alias.example", PASSWORD)


def test_a_verified_email_belongs_to_one_user(idp: Any, alias_pool: tuple[str, str]) -> None:
    pool, _ = alias_pool
    create_confirmed(idp, pool, "erin", {"email": "erin@alias.example", "email_verified": "true"})
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool,
            Username="erin2",
            TemporaryPassword=TEMPORARY,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": "erin@alias.example"},
                {"Name": "email_verified", "Value": "true"},
            ],
        )
    assert error_of(exc)[0] == "AliasExistsException"

    # The same email unverified is no alias, so a second user may have it...
    create_confirmed(idp, pool, "erin3", {"email": "erin@alias.example"})
    # ...but cannot have it verified while erin holds it.
    with pytest.raises(ClientError) as exc:
        idp.admin_update_user_attributes(
            UserPoolId=pool, Username="erin3", UserAttributes=[{"Name": "email_verified", "Value": "true"}]
        )
    assert error_of(exc)[0] == "AliasExistsException"
    assert attributes_of(idp.admin_get_user(UserPoolId=pool, Username="erin3")).get("email_verified") != "true"
    assert idp.admin_get_user(UserPoolId=pool, Username="erin@alias.example")["Username"] == "erin"


def test_preferred_username_is_unique(idp: Any, alias_pool: tuple[str, str]) -> None:
    pool, _ = alias_pool
    create_confirmed(idp, pool, "fay", {"preferred_username": "fancy"})
    with pytest.raises(ClientError) as exc:
        create_confirmed(idp, pool, "fay2", {"preferred_username": "fancy"})
    assert error_of(exc)[0] == "AliasExistsException"


def test_force_alias_creation_moves_the_alias(idp: Any, alias_pool: tuple[str, str]) -> None:
    pool, client = alias_pool
    create_confirmed(idp, pool, "gus", {"email": "gus@alias.example", "email_verified": "true"})
    idp.admin_create_user(
        UserPoolId=pool,
        Username="hank",
        TemporaryPassword=TEMPORARY,
        MessageAction="SUPPRESS",
        ForceAliasCreation=True,
        UserAttributes=[{"Name": "email", "Value": "gus@alias.example"}, {"Name": "email_verified", "Value": "true"}],
    )
    challenge = admin_sign_in(idp, pool, client, "gus@alias.example", TEMPORARY)
    assert challenge["ChallengeParameters"]["USER_ID_FOR_SRP"] == "hank"
    assert attributes_of(idp.admin_get_user(UserPoolId=pool, Username="gus"))["email_verified"] == "false"
    assert admin_sign_in_error(idp, pool, client, "gus@alias.example", PASSWORD)[0] == "NotAuthorizedException"


def test_username_cannot_be_an_email_in_an_email_alias_pool(idp: Any, alias_pool: tuple[str, str]) -> None:
    pool, _ = alias_pool
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool, Username="ivan@alias.example", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS"
        )
    assert error_of(exc) == (
        "InvalidParameterException",
        "Username cannot be of email format, since user pool is configured for email alias.",
    )


# --- email as username ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def email_pool(idp: Any) -> tuple[str, str]:
    pool = str(idp.create_user_pool(PoolName="email-names", UsernameAttributes=["email"])["UserPool"]["Id"])
    return pool, make_client(idp, pool)


def test_email_username_pool_names_users_by_uuid(idp: Any, email_pool: tuple[str, str]) -> None:
    pool, client = email_pool
    created = idp.admin_create_user(
        UserPoolId=pool, Username="frank@example.com", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS"
    )["User"]
    username = created["Username"]
    assert str(uuid.UUID(username)) == username
    assert attributes_of(created)["sub"] == username  # the generated username is the user's sub
    assert attributes_of(created)["email"] == "frank@example.com"
    for name in ("frank@example.com", "Frank@Example.com", username):
        assert idp.admin_get_user(UserPoolId=pool, Username=name)["Username"] == username

    challenge = admin_sign_in(idp, pool, client, "frank@example.com", TEMPORARY)
    assert challenge["ChallengeParameters"]["USER_ID_FOR_SRP"] == username
    answered = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool,
        ClientId=client,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "frank@example.com", "NEW_PASSWORD": NEW_PASSWORD},
    )
    claims = unverified_claims(answered["AuthenticationResult"]["IdToken"])
    assert claims["cognito:username"] == username and claims["email"] == "frank@example.com"
    result = admin_sign_in(idp, pool, client, "frank@example.com", NEW_PASSWORD)["AuthenticationResult"]
    assert unverified_claims(result["AccessToken"])["username"] == username


def test_email_username_pool_refuses_duplicates_and_non_emails(idp: Any, email_pool: tuple[str, str]) -> None:
    pool, _ = email_pool
    idp.admin_create_user(
        UserPoolId=pool, Username="gina@example.com", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS"
    )
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool, Username="gina@example.com", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS"
        )
    assert error_of(exc)[0] == "UsernameExistsException"
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(UserPoolId=pool, Username="gina", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
    assert error_of(exc) == ("InvalidParameterException", "Username should be an email.")


# --- case sensitivity ------------------------------------------------------------------------------------


def test_case_insensitive_pool_matches_any_case(idp: Any, pool_id: str, client_id: str) -> None:
    create_confirmed(idp, pool_id, "alice")
    for name in ("ALICE", "Alice", "alice"):
        result = admin_sign_in(idp, pool_id, client_id, name, PASSWORD)["AuthenticationResult"]
        assert unverified_claims(result["IdToken"])["cognito:username"] == "alice"
    assert idp.admin_get_user(UserPoolId=pool_id, Username="ALICE")["Username"] == "alice"


def test_case_sensitive_pool_keeps_usernames_apart(idp: Any) -> None:
    pool = str(
        idp.create_user_pool(PoolName="case-sensitive", UsernameConfiguration={"CaseSensitive": True})["UserPool"]["Id"]
    )
    client = make_client(idp, pool, PreventUserExistenceErrors="ENABLED")
    upper = create_confirmed(idp, pool, "Bob", password=PASSWORD)
    lower = create_confirmed(idp, pool, "bob", password=NEW_PASSWORD)
    assert attributes_of(upper)["sub"] != attributes_of(lower)["sub"]
    assert idp.admin_get_user(UserPoolId=pool, Username="Bob")["Username"] == "Bob"
    assert idp.admin_get_user(UserPoolId=pool, Username="bob")["Username"] == "bob"
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool, Username="BOB")
    assert error_of(exc)[0] == "UserNotFoundException"

    assert (
        unverified_claims(admin_sign_in(idp, pool, client, "Bob", PASSWORD)["AuthenticationResult"]["IdToken"])[
            "cognito:username"
        ]
        == "Bob"
    )
    assert admin_sign_in_error(idp, pool, client, "Bob", NEW_PASSWORD)[0] == "NotAuthorizedException"
    assert admin_sign_in_error(idp, pool, client, "BOB", PASSWORD)[0] == "NotAuthorizedException"


# --- temporary password validity ------------------------------------------------------------------------


def test_temporary_password_validity_of_zero_means_the_default(idp: Any) -> None:
    """PasswordPolicyType: "If you submit a value of 0, Amazon Cognito treats it as a null value and sets
    TemporaryPasswordValidityDays to its default value" (7)."""
    pool = str(
        idp.create_user_pool(
            PoolName="zero-days", Policies={"PasswordPolicy": {"MinimumLength": 8, "TemporaryPasswordValidityDays": 0}}
        )["UserPool"]["Id"]
    )
    policy = idp.describe_user_pool(UserPoolId=pool)["UserPool"]["Policies"]["PasswordPolicy"]
    assert policy["TemporaryPasswordValidityDays"] == 7
    client = make_client(idp, pool)
    idp.admin_create_user(UserPoolId=pool, Username="fresh", TemporaryPassword=TEMPORARY, MessageAction="SUPPRESS")
    assert admin_sign_in(idp, pool, client, "fresh", TEMPORARY)["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
