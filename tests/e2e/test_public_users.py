"""The public (unsigned) user API through boto3, as an app would call it.

SignUp, ConfirmSignUp, ResendConfirmationCode, ForgotPassword, ConfirmForgotPassword, ChangePassword,
UpdateUserAttributes, VerifyUserAttribute, GetUserAttributeVerificationCode, DeleteUserAttributes, DeleteUser and
GetUser, against a real Gatehouse delivering its codes to a real SMTP server. Cognito's API reference of each
operation and "Managing user existence error responses" are the spec.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import GatehouseServer, MailServer, code_in

PASSWORD = "Correct-horse-1"
NEW_PASSWORD = "Battery-staple-2"
THIRD_PASSWORD = "Tr0ub4dor-&-3"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
POLICY = "Password did not conform with policy: "


# --- helpers -----------------------------------------------------------------------------------------------


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def error_message(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Message"])


def secret_hash(client_id: str, client_secret: str, username: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def other_code(code: str) -> str:
    """A six-digit code that is certainly not ``code``."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def attributes_of(response: dict[str, Any]) -> dict[str, str]:
    items = response.get("UserAttributes") or response.get("Attributes") or []
    return {a["Name"]: a["Value"] for a in items}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(segment: str) -> dict[str, Any]:
    decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    assert isinstance(decoded, dict)
    return decoded


def flip_char(segment: str, index: int) -> str:
    """``segment`` with one base64url character changed (never the last one, whose low bits may be padding)."""
    assert 0 <= index < len(segment) - 1
    replacement = "A" if segment[index] != "A" else "B"
    return segment[:index] + replacement + segment[index + 1 :]


def sign_in(public_idp: Any, client_id: str, username: str, password: str, **auth: str) -> dict[str, Any]:
    response = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password, **auth},
    )
    return dict(response["AuthenticationResult"])


def sign_in_error(public_idp: Any, client_id: str, username: str, password: str) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        sign_in(public_idp, client_id, username, password)
    return error_code(exc), error_message(exc)


def next_code(mail: MailServer, address: str, action: Callable[[], Any]) -> tuple[Any, str]:
    """Run ``action`` and return its result and the code it mailed to ``address``."""
    before = len(mail.messages_to(address))
    result = action()
    return result, code_in(mail.wait_for(address, count=before + 1))


def sign_up_confirmed(
    public_idp: Any,
    mail: MailServer,
    client_id: str,
    username: str,
    *,
    password: str = PASSWORD,
    attributes: list[dict[str, str]] | None = None,
) -> str:
    """A user signed up and confirmed by the code mailed to ``{username}@example.com``; returns the sub."""
    email = f"{username}@example.com"
    user_attributes = [{"Name": "email", "Value": email}, *(attributes or [])]
    signed_up, code = next_code(
        mail,
        email,
        lambda: public_idp.sign_up(
            ClientId=client_id, Username=username, Password=password, UserAttributes=user_attributes
        ),
    )
    public_idp.confirm_sign_up(ClientId=client_id, Username=username, ConfirmationCode=code)
    return str(signed_up["UserSub"])


def assert_no_user(idp: Any, pool_id: str, username: str) -> None:
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username=username)
    assert error_code(exc) == "UserNotFoundException"


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool(idp: Any) -> dict[str, Any]:
    """Usernames as given (case-insensitive), email auto-verified, one immutable and one mutable custom
    attribute."""
    created = idp.create_user_pool(
        PoolName="public-users",
        AutoVerifiedAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
        Schema=[
            {"Name": "employee_id", "AttributeDataType": "String", "Mutable": False},
            {"Name": "tier", "AttributeDataType": "String", "Mutable": True},
        ],
    )
    return dict(created["UserPool"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool: dict[str, Any]) -> str:
    """An enumeration-resistant client (PreventUserExistenceErrors ENABLED)."""
    client = idp.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="app", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="ENABLED"
    )
    return str(client["UserPoolClient"]["ClientId"])


@pytest.fixture(scope="module")
def unverified_pool(idp: Any) -> tuple[str, str]:
    """A pool with no AutoVerifiedAttributes, and its client: (pool id, client id)."""
    pool_id = str(idp.create_user_pool(PoolName="no-auto-verify")["UserPool"]["Id"])
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


# --- SignUp ------------------------------------------------------------------------------------------------


def test_sign_up_with_client_secret_requires_the_right_secret_hash(
    idp: Any, public_idp: Any, pool: dict[str, Any]
) -> None:
    client = idp.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="confidential", GenerateSecret=True, ExplicitAuthFlows=FLOWS
    )["UserPoolClient"]
    cid, secret = client["ClientId"], client["ClientSecret"]
    request = {
        "ClientId": cid,
        "Username": "sam",
        "Password": PASSWORD,
        "UserAttributes": [{"Name": "email", "Value": "sam@example.com"}],
    }

    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(**request)
    assert error_code(exc) == "NotAuthorizedException"
    assert error_message(exc) == f"Client {cid} is configured with secret but SECRET_HASH was not received"
    assert_no_user(idp, pool["Id"], "sam")

    for wrong in (secret_hash(cid, secret, "someone-else"), secret_hash(cid, "not-the-secret", "sam")):
        with pytest.raises(ClientError) as exc:
            public_idp.sign_up(**request, SecretHash=wrong)
        assert error_code(exc) == "NotAuthorizedException"
        assert error_message(exc) == f"Unable to verify secret hash for client {cid}"
    assert_no_user(idp, pool["Id"], "sam")

    signed_up = public_idp.sign_up(**request, SecretHash=secret_hash(cid, secret, "sam"))
    assert signed_up["UserConfirmed"] is False
    user = idp.admin_get_user(UserPoolId=pool["Id"], Username="sam")
    assert user["UserStatus"] == "UNCONFIRMED"
    assert attributes_of(user)["sub"] == signed_up["UserSub"]


def test_sign_up_is_refused_when_only_admins_create_users(idp: Any, public_idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="admin-only", AdminCreateUserConfig={"AllowAdminCreateUserOnly": True})[
        "UserPool"
    ]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(ClientId=cid, Username="walk-in", Password=PASSWORD)
    assert error_code(exc) == "NotAuthorizedException"
    assert_no_user(idp, pool_id, "walk-in")


def test_sign_up_without_a_required_attribute_is_refused(idp: Any, public_idp: Any) -> None:
    pool_id = idp.create_user_pool(
        PoolName="name-required",
        Schema=[{"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True}],
    )["UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(ClientId=cid, Username="nameless", Password=PASSWORD)
    assert error_code(exc) == "InvalidParameterException"
    assert error_message(exc) == "Attributes did not conform to the schema: name: The attribute is required"
    assert_no_user(idp, pool_id, "nameless")

    public_idp.sign_up(
        ClientId=cid, Username="nameless", Password=PASSWORD, UserAttributes=[{"Name": "name", "Value": "Named"}]
    )
    assert attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="nameless"))["name"] == "Named"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("Ab1!xyz", "Password not long enough"),
        ("lower-case-1", "Password must have uppercase characters"),
        ("UPPER-CASE-1", "Password must have lowercase characters"),
        ("No-digits-here", "Password must have numeric characters"),
        ("NoSymbols1234", "Password must have symbol characters"),
    ],
)
def test_sign_up_reports_each_password_policy_failure(
    idp: Any, public_idp: Any, pool: dict[str, Any], client_id: str, password: str, reason: str
) -> None:
    username = "weak-" + reason.split()[-2].lower()
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(ClientId=client_id, Username=username, Password=password)
    assert error_code(exc) == "InvalidPasswordException"
    assert error_message(exc) == POLICY + reason
    assert_no_user(idp, pool["Id"], username)


def test_sign_up_with_a_taken_username_is_refused(
    idp: Any, public_idp: Any, pool: dict[str, Any], client_id: str
) -> None:
    first = public_idp.sign_up(ClientId=client_id, Username="dupe", Password=PASSWORD)
    for username in ("dupe", "DUPE"):  # usernames are case-insensitive in this pool
        with pytest.raises(ClientError) as exc:
            public_idp.sign_up(ClientId=client_id, Username=username, Password=NEW_PASSWORD)
        assert error_code(exc) == "UsernameExistsException"
        assert error_message(exc) == "User already exists"
    user = idp.admin_get_user(UserPoolId=pool["Id"], Username="dupe")
    assert attributes_of(user)["sub"] == first["UserSub"]
    assert user["Username"] == "dupe"


def test_sign_up_in_a_pool_without_auto_verification_sends_nothing(
    idp: Any, public_idp: Any, mail: MailServer, unverified_pool: tuple[str, str]
) -> None:
    pool_id, cid = unverified_pool
    signed_up = public_idp.sign_up(
        ClientId=cid,
        Username="quiet",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "quiet@example.com"}],
    )
    assert signed_up["UserConfirmed"] is False
    assert "CodeDeliveryDetails" not in signed_up
    assert mail.messages_to("quiet@example.com") == []
    user = idp.admin_get_user(UserPoolId=pool_id, Username="quiet")
    assert user["UserStatus"] == "UNCONFIRMED"
    assert "email_verified" not in attributes_of(user) or attributes_of(user)["email_verified"] == "false"


def test_sign_up_accepts_validation_data_and_client_metadata(
    idp: Any, public_idp: Any, mail: MailServer, pool: dict[str, Any], client_id: str
) -> None:
    signed_up = public_idp.sign_up(
        ClientId=client_id,
        Username="meta",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "meta@example.com"}, {"Name": "custom:tier", "Value": "gold"}],
        ValidationData=[{"Name": "invite", "Value": "XYZ-123"}],
        ClientMetadata={"campaign": "spring", "source": "e2e"},
    )
    assert signed_up["UserConfirmed"] is False
    assert signed_up["CodeDeliveryDetails"] == {
        "Destination": "m***@e***",
        "DeliveryMedium": "EMAIL",
        "AttributeName": "email",
    }
    code_in(mail.wait_for("meta@example.com"))
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool["Id"], Username="meta"))
    # Validation data is for the pre sign-up trigger, never stored as attributes.
    assert "invite" not in attributes and "custom:invite" not in attributes
    assert attributes["custom:tier"] == "gold"


# --- ConfirmSignUp -----------------------------------------------------------------------------------------


def test_confirm_sign_up_verifies_the_email_and_codes_are_single_use(
    idp: Any, public_idp: Any, mail: MailServer, pool: dict[str, Any], client_id: str
) -> None:
    _, code = next_code(
        mail,
        "cora@example.com",
        lambda: public_idp.sign_up(
            ClientId=client_id,
            Username="cora",
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": "cora@example.com"}],
        ),
    )
    with pytest.raises(ClientError) as exc:
        public_idp.confirm_sign_up(ClientId=client_id, Username="cora", ConfirmationCode=other_code(code))
    assert error_code(exc) == "CodeMismatchException"
    assert idp.admin_get_user(UserPoolId=pool["Id"], Username="cora")["UserStatus"] == "UNCONFIRMED"

    assert public_idp.confirm_sign_up(ClientId=client_id, Username="cora", ConfirmationCode=code)
    user = idp.admin_get_user(UserPoolId=pool["Id"], Username="cora")
    assert user["UserStatus"] == "CONFIRMED"
    assert attributes_of(user)["email_verified"] == "true"

    with pytest.raises(ClientError) as exc:
        public_idp.confirm_sign_up(ClientId=client_id, Username="cora", ConfirmationCode=code)
    assert error_code(exc) == "NotAuthorizedException"
    assert error_message(exc) == "User cannot be confirmed. Current status is CONFIRMED"
    assert sign_in(public_idp, client_id, "cora", PASSWORD)["AccessToken"]


def test_confirm_sign_up_locks_after_five_wrong_codes_until_a_new_code_is_sent(
    idp: Any, public_idp: Any, mail: MailServer, pool: dict[str, Any], client_id: str
) -> None:
    address = "lena@example.com"
    _, code = next_code(
        mail,
        address,
        lambda: public_idp.sign_up(
            ClientId=client_id, Username="lena", Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": address}]
        ),
    )
    wrong = other_code(code)
    for _ in range(4):
        with pytest.raises(ClientError) as exc:
            public_idp.confirm_sign_up(ClientId=client_id, Username="lena", ConfirmationCode=wrong)
        assert error_code(exc) == "CodeMismatchException"
    with pytest.raises(ClientError) as exc:
        public_idp.confirm_sign_up(ClientId=client_id, Username="lena", ConfirmationCode=wrong)
    assert error_code(exc) in ("CodeMismatchException", "LimitExceededException")

    # Five wrong guesses burn the code: even the right one is refused now.
    with pytest.raises(ClientError) as exc:
        public_idp.confirm_sign_up(ClientId=client_id, Username="lena", ConfirmationCode=code)
    assert error_code(exc) == "LimitExceededException"
    assert error_message(exc) == "Attempt limit exceeded, please try after some time."
    assert idp.admin_get_user(UserPoolId=pool["Id"], Username="lena")["UserStatus"] == "UNCONFIRMED"

    new_code = code
    while new_code == code:  # a fresh random code could, once in a million, repeat the old one
        resent, new_code = next_code(
            mail, address, lambda: public_idp.resend_confirmation_code(ClientId=client_id, Username="lena")
        )
        assert resent["CodeDeliveryDetails"] == {
            "Destination": "l***@e***",
            "DeliveryMedium": "EMAIL",
            "AttributeName": "email",
        }
    with pytest.raises(ClientError) as exc:
        public_idp.confirm_sign_up(ClientId=client_id, Username="lena", ConfirmationCode=code)
    assert error_code(exc) == "CodeMismatchException"
    public_idp.confirm_sign_up(ClientId=client_id, Username="lena", ConfirmationCode=new_code)
    user = idp.admin_get_user(UserPoolId=pool["Id"], Username="lena")
    assert user["UserStatus"] == "CONFIRMED"
    assert attributes_of(user)["email_verified"] == "true"


# --- PreventUserExistenceErrors ------------------------------------------------------------------------------


def test_unknown_users_are_not_revealed_when_enabled(
    public_idp: Any, mail: MailServer, pool: dict[str, Any], client_id: str, idp: Any
) -> None:
    assert (
        idp.describe_user_pool_client(UserPoolId=pool["Id"], ClientId=client_id)["UserPoolClient"][
            "PreventUserExistenceErrors"
        ]
        == "ENABLED"
    )
    sign_up_confirmed(public_idp, mail, client_id, "known")
    wrong_password = sign_in_error(public_idp, client_id, "known", "Wrong-password-1")
    unknown_user = sign_in_error(public_idp, client_id, "ghost", "Wrong-password-1")
    assert wrong_password == unknown_user == ("NotAuthorizedException", "Incorrect username or password.")

    forgot = public_idp.forgot_password(ClientId=client_id, Username="ghost@example.com")
    assert forgot["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    assert forgot["CodeDeliveryDetails"]["AttributeName"] == "email"
    assert forgot["CodeDeliveryDetails"]["Destination"]
    assert mail.messages_to("ghost@example.com") == []


def test_legacy_client_reports_unknown_users(
    idp: Any, public_idp: Any, mail: MailServer, pool: dict[str, Any], client_id: str
) -> None:
    legacy = idp.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="legacy", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="LEGACY"
    )["UserPoolClient"]["ClientId"]
    sign_up_confirmed(public_idp, mail, client_id, "present")
    assert sign_in_error(public_idp, legacy, "present", "Wrong-password-1") == (
        "NotAuthorizedException",
        "Incorrect username or password.",
    )
    assert sign_in_error(public_idp, legacy, "absent", "Wrong-password-1")[0] == "UserNotFoundException"
    with pytest.raises(ClientError) as exc:
        public_idp.forgot_password(ClientId=legacy, Username="absent")
    assert error_code(exc) == "UserNotFoundException"


# --- ForgotPassword / ConfirmForgotPassword -----------------------------------------------------------------


def test_forgot_password_resets_the_password_with_the_mailed_code(
    public_idp: Any, mail: MailServer, client_id: str
) -> None:
    sign_up_confirmed(public_idp, mail, client_id, "fiona")
    forgot, code = next_code(
        mail, "fiona@example.com", lambda: public_idp.forgot_password(ClientId=client_id, Username="fiona")
    )
    assert forgot["CodeDeliveryDetails"] == {
        "Destination": "f***@e***",
        "DeliveryMedium": "EMAIL",
        "AttributeName": "email",
    }

    def confirm(code: str, password: str) -> Any:
        return public_idp.confirm_forgot_password(
            ClientId=client_id, Username="fiona", ConfirmationCode=code, Password=password
        )

    with pytest.raises(ClientError) as exc:
        confirm(other_code(code), NEW_PASSWORD)
    assert error_code(exc) == "CodeMismatchException"
    with pytest.raises(ClientError) as exc:
        confirm(code, "short")
    assert error_code(exc) == "InvalidPasswordException"
    assert error_message(exc) == POLICY + "Password not long enough"
    # Neither failure changed the password.
    assert sign_in(public_idp, client_id, "fiona", PASSWORD)["AccessToken"]

    confirm(code, NEW_PASSWORD)  # the code survived the refused password
    assert sign_in(public_idp, client_id, "fiona", NEW_PASSWORD)["AccessToken"]
    assert sign_in_error(public_idp, client_id, "fiona", PASSWORD) == (
        "NotAuthorizedException",
        "Incorrect username or password.",
    )

    with pytest.raises(ClientError) as exc:
        confirm(code, THIRD_PASSWORD)
    assert error_code(exc) == "CodeMismatchException"
    assert sign_in(public_idp, client_id, "fiona", NEW_PASSWORD)["AccessToken"]
    assert sign_in_error(public_idp, client_id, "fiona", THIRD_PASSWORD)[0] == "NotAuthorizedException"


def test_forgot_password_needs_a_verified_email(
    idp: Any, public_idp: Any, mail: MailServer, unverified_pool: tuple[str, str]
) -> None:
    pool_id, cid = unverified_pool
    public_idp.sign_up(
        ClientId=cid,
        Username="unver",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "unver@example.com"}],
    )
    idp.admin_confirm_sign_up(UserPoolId=pool_id, Username="unver")
    with pytest.raises(ClientError) as exc:
        public_idp.forgot_password(ClientId=cid, Username="unver")
    assert error_code(exc) == "InvalidParameterException"
    assert error_message(exc) == (
        "Cannot reset password for the user as there is no registered/verified email or phone_number"
    )
    assert mail.messages_to("unver@example.com") == []


# --- password history ----------------------------------------------------------------------------------------


def test_password_history_refuses_the_current_and_previous_password(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    pool_id = idp.create_user_pool(
        PoolName="history",
        AutoVerifiedAttributes=["email"],
        Policies={"PasswordPolicy": {"MinimumLength": 8, "PasswordHistorySize": 2}},
    )["UserPool"]["Id"]
    cid = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)["UserPoolClient"][
        "ClientId"
    ]
    p1, p2, p3 = "First-pass-1", "Second-pass-2", "Third-pass-3"
    sign_up_confirmed(public_idp, mail, cid, "hank", password=p1)
    token = sign_in(public_idp, cid, "hank", p1)["AccessToken"]

    def change(previous: str, proposed: str) -> Any:
        return public_idp.change_password(AccessToken=token, PreviousPassword=previous, ProposedPassword=proposed)

    with pytest.raises(ClientError) as exc:
        change(p1, p1)
    assert error_code(exc) == "PasswordHistoryPolicyViolationException"
    change(p1, p2)
    for reused in (p1, p2):  # the previous and the current one
        with pytest.raises(ClientError) as exc:
            change(p2, reused)
        assert error_code(exc) == "PasswordHistoryPolicyViolationException"
    change(p2, p3)  # history now holds p3 (current) and p2

    _, code = next_code(mail, "hank@example.com", lambda: public_idp.forgot_password(ClientId=cid, Username="hank"))
    for reused in (p3, p2):
        with pytest.raises(ClientError) as exc:
            public_idp.confirm_forgot_password(ClientId=cid, Username="hank", ConfirmationCode=code, Password=reused)
        assert error_code(exc) == "PasswordHistoryPolicyViolationException"
    public_idp.confirm_forgot_password(ClientId=cid, Username="hank", ConfirmationCode=code, Password=p1)
    assert sign_in(public_idp, cid, "hank", p1)["AccessToken"]
    assert sign_in_error(public_idp, cid, "hank", p3)[0] == "NotAuthorizedException"


# --- ChangePassword ----------------------------------------------------------------------------------------


def test_change_password_with_the_access_token(public_idp: Any, mail: MailServer, client_id: str) -> None:
    sign_up_confirmed(public_idp, mail, client_id, "carl")
    token = sign_in(public_idp, client_id, "carl", PASSWORD)["AccessToken"]
    with pytest.raises(ClientError) as exc:
        public_idp.change_password(
            AccessToken=token, PreviousPassword="Not-my-password-1", ProposedPassword=NEW_PASSWORD
        )
    assert error_code(exc) == "NotAuthorizedException"
    assert error_message(exc) == "Incorrect username or password."
    with pytest.raises(ClientError) as exc:
        public_idp.change_password(AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword="nouppercase-1")
    assert error_code(exc) == "InvalidPasswordException"
    assert error_message(exc) == POLICY + "Password must have uppercase characters"
    assert sign_in(public_idp, client_id, "carl", PASSWORD)["AccessToken"]

    public_idp.change_password(AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword=NEW_PASSWORD)
    assert sign_in(public_idp, client_id, "carl", NEW_PASSWORD)["AccessToken"]
    assert sign_in_error(public_idp, client_id, "carl", PASSWORD) == (
        "NotAuthorizedException",
        "Incorrect username or password.",
    )


# --- attributes ----------------------------------------------------------------------------------------------


def test_changing_email_needs_verification_of_the_new_address(
    public_idp: Any, mail: MailServer, client_id: str
) -> None:
    sign_up_confirmed(public_idp, mail, client_id, "uma", attributes=[{"Name": "name", "Value": "Uma"}])
    token = sign_in(public_idp, client_id, "uma", PASSWORD)["AccessToken"]
    old_count = len(mail.messages_to("uma@example.com"))

    updated, first_code = next_code(
        mail,
        "uma.new@example.com",
        lambda: public_idp.update_user_attributes(
            AccessToken=token,
            UserAttributes=[{"Name": "email", "Value": "uma.new@example.com"}, {"Name": "name", "Value": "Uma N"}],
        ),
    )
    assert updated["CodeDeliveryDetailsList"] == [
        {"Destination": "u***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    ]
    assert len(mail.messages_to("uma@example.com")) == old_count
    attributes = attributes_of(public_idp.get_user(AccessToken=token))
    assert attributes["email"] == "uma.new@example.com"
    assert attributes["email_verified"] == "false"
    assert attributes["name"] == "Uma N"

    second_code = first_code
    while second_code == first_code:
        resent, second_code = next_code(
            mail,
            "uma.new@example.com",
            lambda: public_idp.get_user_attribute_verification_code(AccessToken=token, AttributeName="email"),
        )
        assert resent["CodeDeliveryDetails"] == {
            "Destination": "u***@e***",
            "DeliveryMedium": "EMAIL",
            "AttributeName": "email",
        }
    for wrong in (other_code(second_code) if other_code(second_code) != first_code else "000000", first_code):
        with pytest.raises(ClientError) as exc:
            public_idp.verify_user_attribute(AccessToken=token, AttributeName="email", Code=wrong)
        assert error_code(exc) == "CodeMismatchException"
    assert attributes_of(public_idp.get_user(AccessToken=token))["email_verified"] == "false"

    public_idp.verify_user_attribute(AccessToken=token, AttributeName="email", Code=second_code)
    attributes = attributes_of(public_idp.get_user(AccessToken=token))
    assert attributes["email"] == "uma.new@example.com"
    assert attributes["email_verified"] == "true"


def test_attribute_writes_are_limited_by_client_and_schema(
    idp: Any, public_idp: Any, mail: MailServer, pool: dict[str, Any], client_id: str
) -> None:
    sign_up_confirmed(
        public_idp,
        mail,
        client_id,
        "wendy",
        attributes=[{"Name": "custom:employee_id", "Value": "E-1"}, {"Name": "name", "Value": "Wendy"}],
    )
    restricted = idp.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName="restricted",
        ExplicitAuthFlows=FLOWS,
        WriteAttributes=["email", "name"],
    )["UserPoolClient"]["ClientId"]
    restricted_token = sign_in(public_idp, restricted, "wendy", PASSWORD)["AccessToken"]
    with pytest.raises(ClientError) as exc:
        public_idp.update_user_attributes(
            AccessToken=restricted_token, UserAttributes=[{"Name": "family_name", "Value": "Smith"}]
        )
    assert error_code(exc) == "NotAuthorizedException"
    public_idp.update_user_attributes(AccessToken=restricted_token, UserAttributes=[{"Name": "name", "Value": "W."}])

    token = sign_in(public_idp, client_id, "wendy", PASSWORD)["AccessToken"]
    for name, value in (("custom:employee_id", "E-2"), ("custom:unknown", "x"), ("no_such_attribute", "x")):
        with pytest.raises(ClientError) as exc:
            public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": name, "Value": value}])
        assert error_code(exc) == "InvalidParameterException", name
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool["Id"], Username="wendy"))
    assert attributes["custom:employee_id"] == "E-1"
    assert attributes["name"] == "W."
    assert "family_name" not in attributes and "custom:unknown" not in attributes

    public_idp.delete_user_attributes(AccessToken=token, UserAttributeNames=["name"])
    assert "name" not in attributes_of(public_idp.get_user(AccessToken=token))
    with pytest.raises(ClientError) as exc:
        public_idp.delete_user_attributes(AccessToken=token, UserAttributeNames=["custom:unknown"])
    assert error_code(exc) == "InvalidParameterException"


def test_delete_user_removes_the_user_and_refuses_the_token(
    idp: Any, public_idp: Any, mail: MailServer, pool: dict[str, Any], client_id: str
) -> None:
    sign_up_confirmed(public_idp, mail, client_id, "dora")
    tokens = sign_in(public_idp, client_id, "dora", PASSWORD)
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "dora"
    public_idp.delete_user(AccessToken=tokens["AccessToken"])

    with pytest.raises(ClientError) as exc:
        public_idp.get_user(AccessToken=tokens["AccessToken"])
    assert error_code(exc) == "NotAuthorizedException"
    with pytest.raises(ClientError) as exc:
        public_idp.delete_user(AccessToken=tokens["AccessToken"])
    assert error_code(exc) == "NotAuthorizedException"
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]}
        )
    assert error_code(exc) == "NotAuthorizedException"
    assert_no_user(idp, pool["Id"], "dora")
    assert sign_in_error(public_idp, client_id, "dora", PASSWORD) == (
        "NotAuthorizedException",
        "Incorrect username or password.",
    )


# --- forged and misused tokens ----------------------------------------------------------------------------


def test_get_user_refuses_tampered_forged_and_misused_tokens(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, mail: MailServer, pool: dict[str, Any], client_id: str
) -> None:
    sub = sign_up_confirmed(public_idp, mail, client_id, "tess")
    tokens = sign_in(public_idp, client_id, "tess", PASSWORD)
    access = tokens["AccessToken"]
    header, payload, signature = access.split(".")
    claims = b64url_json(payload)
    assert public_idp.get_user(AccessToken=access)["Username"] == "tess"

    other_user = sign_up_confirmed(public_idp, mail, client_id, "tess-other")
    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    none_header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": b64url_json(header)["kid"]}).encode())
    candidates = {
        "payload char flipped": f"{header}.{flip_char(payload, len(payload) // 2)}.{signature}",
        "signature char flipped": f"{header}.{payload}.{flip_char(signature, len(signature) // 2)}",
        "claims rewritten": f"{header}.{b64url(json.dumps({**claims, 'sub': other_user}).encode())}.{signature}",
        "expiry extended": f"{header}.{b64url(json.dumps({**claims, 'exp': claims['exp'] + 86400}).encode())}"
        f".{signature}",
        "alg none, no signature": f"{none_header}.{payload}.",
        "alg none, old signature": f"{none_header}.{payload}.{signature}",
        "signed with a foreign key": jwt.encode(
            claims, forged_key, algorithm="RS256", headers={"kid": b64url_json(header)["kid"]}
        ),
        "id token": tokens["IdToken"],
        "not a jwt": "not-a-token",
    }
    for name, token in candidates.items():
        with pytest.raises(ClientError) as exc:
            public_idp.get_user(AccessToken=token)
        assert error_code(exc) == "NotAuthorizedException", name

    # Another pool's user of the same name: its own token speaks for it alone, and relabelling that token as
    # this pool's is caught.
    other_pool = idp.create_user_pool(PoolName="elsewhere", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    other_client = idp.create_user_pool_client(UserPoolId=other_pool, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    elsewhere = public_idp.sign_up(ClientId=other_client, Username="tess", Password=PASSWORD)["UserSub"]
    idp.admin_confirm_sign_up(UserPoolId=other_pool, Username="tess")
    foreign = sign_in(public_idp, other_client, "tess", PASSWORD)["AccessToken"]
    me = public_idp.get_user(AccessToken=foreign)
    assert attributes_of(me)["sub"] == elsewhere != sub

    f_header, f_payload, f_signature = foreign.split(".")
    relabelled = {**b64url_json(f_payload), "iss": f"{gatehouse.url}/{pool['Id']}", "sub": sub}
    with pytest.raises(ClientError) as exc:
        public_idp.get_user(AccessToken=f"{f_header}.{b64url(json.dumps(relabelled).encode())}.{f_signature}")
    assert error_code(exc) == "NotAuthorizedException"
    # A verifier of this pool does not know the other pool's key at all.
    with pytest.raises(jwt.PyJWKClientError):
        jwt.PyJWKClient(f"{gatehouse.url}/{pool['Id']}/.well-known/jwks.json").get_signing_key_from_jwt(foreign)

    # The genuine token still works after all that.
    assert public_idp.get_user(AccessToken=access)["Username"] == "tess"
