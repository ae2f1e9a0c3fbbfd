"""User self-service flows against Cognito's documented edge cases.

* Passwordless and MFA ("Authentication flows", passwordless sign-in): "Passwordless authentication flows aren't
  compatible with required multi-factor authentication (MFA) in your user pool. If MFA is optional in your user
  pool, users who have activated MFA can't sign in with a passwordless first factor. Users who don't have an MFA
  preference in an MFA-optional user pool can sign in with passwordless factors."
* PreventUserExistenceErrors ("Managing user existence error responses"): ForgotPassword answers a user who
  "isn't found, is deactivated, or doesn't have a verified delivery mechanism" with "a simulated delivery medium
  ... determined by the input user name format and verification settings of the user pool";
  ConfirmForgotPassword "returns the CodeMismatchException error for users that don't exist or are disabled.
  If a code isn't requested when using ForgotPassword, Amazon Cognito returns the ExpiredCodeException error"
  (the latter only where it tells nothing about existence).
* ChangePassword's PreviousPassword: "If the user has no password and only signs in with passwordless
  authentication options, you can omit this parameter."
* A user in FORCE_CHANGE_PASSWORD: ForgotPassword and AdminResetUserPassword answer NotAuthorizedException "User
  password cannot be reset in the current state." (Cognito's answer, as reported by users of the Amplify
  libraries and confirmed by their maintainers); AdminResetUserPassword of a disabled user is refused ("User is
  disabled.") and changes nothing.
* Automatic sign-in: ConfirmSignUp's Session ("A session identifier that you can use to immediately sign in the
  confirmed user") taken by InitiateAuth USER_AUTH.
* Sign-up codes: "If a user provides both an email address and a phone number ... Amazon Cognito sends a
  verification code only to the phone number."
* AdminSetUserPassword: "When you set a password, the federated user's status changes from EXTERNAL_PROVIDER to
  CONFIRMED."
* (Admin)UpdateUserAttributes: "To delete an attribute from the user, submit the attribute in your API request
  with a blank value."

Real server, real boto3 clients, mail read from the module's SMTP server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.e2e.federation_support import Flow, corp_details
from tests.e2e.mfa_support import sms_code
from tests.e2e.oauth_support import CALLBACK, query_of
from tests.fakes.oauth import FakeOIDC
from tests.support import GatehouseServer, MailServer, body_text

PASSWORD = "Flows-pass-123!"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def make_user(idp: Any, pool_id: str, username: str, attributes: dict[str, str]) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def sign_in_code(mail: MailServer, address: str, count: int) -> str:
    """The eight-digit passwordless code of the ``count``-th message to ``address``."""
    match = re.search(r"\b(\d{8})\b", body_text(mail.wait_for(address, count=count)))
    assert match is not None
    return match.group(1)


# --- Passwordless and MFA ----------------------------------------------------------------------------------------


def _otp_pool(idp: Any, name: str, mfa: str) -> tuple[str, str]:
    pool_id = idp.create_user_pool(
        PoolName=name, Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}}
    )["UserPool"]["Id"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration=mfa,
        EmailMfaConfiguration={"Subject": "Sign-in code", "Message": "Use {####} to sign in."},
    )
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    return str(pool_id), str(client_id)


def test_a_user_with_mfa_is_not_offered_a_passwordless_first_factor(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    """Without MFA an emailed code signs the user in; once the user activates email MFA the code is no first
    factor for them (no code is sent, the choice is the password), and the password is followed by the MFA
    code -- never two emailed codes in a row, as a passwordless code and email MFA would be."""
    pool_id, client_id = _otp_pool(idp, "otp-and-mfa", "OPTIONAL")
    address = "otto@example.com"
    make_user(idp, pool_id, "otto", {"email": address, "email_verified": "true"})

    def user_auth(**parameters: str) -> dict[str, Any]:
        return dict(
            public_idp.initiate_auth(
                ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters={"USERNAME": "otto", **parameters}
            )
        )

    challenge = user_auth(PREFERRED_CHALLENGE="EMAIL_OTP")
    assert challenge["ChallengeName"] == "EMAIL_OTP"
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="EMAIL_OTP",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "otto", "EMAIL_OTP_CODE": sign_in_code(mail, address, 1)},
    )
    token = done["AuthenticationResult"]["AccessToken"]
    assert public_idp.get_user_auth_factors(AccessToken=token)["ConfiguredUserAuthFactors"] == ["PASSWORD", "EMAIL_OTP"]

    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username="otto", EmailMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    select = user_auth(PREFERRED_CHALLENGE="EMAIL_OTP")
    assert select["ChallengeName"] == "SELECT_CHALLENGE"
    assert select["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP"]
    assert len(mail.messages_to(address)) == 1  # no code went out
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SELECT_CHALLENGE",
            Session=select["Session"],
            ChallengeResponses={"USERNAME": "otto", "ANSWER": "EMAIL_OTP"},
        )
    assert error_of(exc)[0] == "InvalidParameterException"
    assert len(mail.messages_to(address)) == 1
    assert public_idp.get_user_auth_factors(AccessToken=token)["ConfiguredUserAuthFactors"] == ["PASSWORD"]

    # The password, then email MFA's six-digit code.
    mfa = user_auth(PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD)
    assert mfa["ChallengeName"] == "EMAIL_OTP"
    code = re.search(r"\b(\d{6})\b", body_text(mail.wait_for(address, count=2)))
    assert code is not None
    signed_in = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="EMAIL_OTP",
        Session=mfa["Session"],
        ChallengeResponses={"USERNAME": "otto", "EMAIL_OTP_CODE": code.group(1)},
    )
    assert "AccessToken" in signed_in["AuthenticationResult"]


def test_a_pool_that_requires_mfa_offers_no_passwordless_first_factor(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    """With MFA required, no user signs in with an emailed code first, MFA set up or not."""
    pool_id, client_id = _otp_pool(idp, "otp-mfa-required", "ON")
    address = "rhea@example.com"
    make_user(idp, pool_id, "rhea", {"email": address, "email_verified": "true"})
    parameters = {"USERNAME": "rhea", "PREFERRED_CHALLENGE": "EMAIL_OTP"}
    select = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters=parameters)
    assert select["ChallengeName"] == "SELECT_CHALLENGE"
    assert select["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP"]
    assert mail.messages_to(address) == []


# --- PreventUserExistenceErrors: what ForgotPassword and ResendConfirmationCode tell ------------------------------


def _existence_pool(idp: Any, name: str, verified: str) -> tuple[str, str, str]:
    """A pool that verifies ``verified``, a client hiding user existence and a LEGACY one."""
    pool_id = idp.create_user_pool(PoolName=name, AutoVerifiedAttributes=[verified])["UserPool"]["Id"]
    flows = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    hiding, legacy = (
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName=client, ExplicitAuthFlows=flows, PreventUserExistenceErrors=setting
        )["UserPoolClient"]["ClientId"]
        for client, setting in (("hiding", "ENABLED"), ("legacy", "LEGACY"))
    )
    return str(pool_id), str(hiding), str(legacy)


def test_forgot_password_answers_a_disabled_or_unreachable_user_as_an_unknown_one(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    """ "When a user isn't found, is deactivated, or doesn't have a verified delivery mechanism to recover their
    password, Amazon Cognito returns CodeDeliveryDetails with a simulated delivery medium"; ConfirmForgotPassword
    "returns the CodeMismatchException error for users that don't exist or are disabled". Nothing is sent, the
    answer is the same at every try, and a code mailed before the user was disabled sets no password. A LEGACY
    client still hears why."""
    pool_id, hiding, legacy = _existence_pool(idp, "reset-existence", "email")
    make_user(idp, pool_id, "dora", {"email": "dora@example.com", "email_verified": "true"})
    make_user(idp, pool_id, "una", {"email": "una@example.com"})  # not verified: no way to send a reset code

    def forgot(client_id: str, name: str) -> Any:
        return public_idp.forgot_password(ClientId=client_id, Username=name)["CodeDeliveryDetails"]

    forgot(hiding, "dora")
    code = re.search(r"\b(\d{6})\b", body_text(mail.wait_for("dora@example.com")))
    assert code is not None
    idp.admin_disable_user(UserPoolId=pool_id, Username="dora")
    for name in ("dora", "una", "ghost"):
        delivery = forgot(hiding, name)
        assert (delivery["DeliveryMedium"], delivery["AttributeName"]) == ("EMAIL", "email")
        assert re.fullmatch(r"[a-z]\*\*\*@[a-z]\*\*\*", delivery["Destination"])
        assert forgot(hiding, name) == delivery
    assert len(mail.messages_to("dora@example.com")) == 1
    assert mail.messages_to("una@example.com") == []

    new_password = "Flows-pass-456!"
    for name, given in (("dora", code.group(1)), ("ghost", code.group(1))):
        with pytest.raises(ClientError) as exc:
            public_idp.confirm_forgot_password(
                ClientId=hiding, Username=name, ConfirmationCode=given, Password=new_password
            )
        assert error_of(exc) == ("CodeMismatchException", "Invalid verification code provided, please try again.")
    with pytest.raises(ClientError) as exc:
        public_idp.confirm_forgot_password(
            ClientId=legacy, Username="dora", ConfirmationCode=code.group(1), Password=new_password
        )
    assert error_of(exc) == ("NotAuthorizedException", "User is disabled.")
    idp.admin_enable_user(UserPoolId=pool_id, Username="dora")
    signed_in = public_idp.initiate_auth(
        ClientId=legacy, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "dora", "PASSWORD": PASSWORD}
    )
    assert "AccessToken" in signed_in["AuthenticationResult"]  # the old password, unchanged

    idp.admin_disable_user(UserPoolId=pool_id, Username="dora")
    with pytest.raises(ClientError) as exc:
        forgot(legacy, "dora")
    assert error_of(exc) == ("NotAuthorizedException", "User is disabled.")
    with pytest.raises(ClientError) as exc:
        forgot(legacy, "una")
    assert error_of(exc) == (
        "InvalidParameterException",
        "Cannot reset password for the user as there is no registered/verified email or phone_number",
    )


def test_a_simulated_delivery_is_shaped_like_the_pools_real_ones(idp: Any, public_idp: Any) -> None:
    """In a pool that verifies phone numbers a known user's code goes by SMS: an unknown name's simulated delivery
    is an SMS too (a masked number of the same shape), not an email that would tell it apart, and a name that is
    a phone number is its own simulated destination; an email address as the name gets an SMS as well, as a
    user of this pool would. In a pool that verifies email addresses, the other way round."""
    pool_id, hiding, _ = _existence_pool(idp, "phone-existence", "phone_number")
    make_user(idp, pool_id, "pia", {"phone_number": "+15550101111", "phone_number_verified": "true"})
    public_idp.sign_up(
        ClientId=hiding,
        Username="quin",
        Password=PASSWORD,
        UserAttributes=[{"Name": "phone_number", "Value": "+15550102222"}],
    )
    known = public_idp.forgot_password(ClientId=hiding, Username="pia")["CodeDeliveryDetails"]
    assert known == {"Destination": "+*******1111", "DeliveryMedium": "SMS", "AttributeName": "phone_number"}
    known = public_idp.resend_confirmation_code(ClientId=hiding, Username="quin")["CodeDeliveryDetails"]
    assert known == {"Destination": "+*******2222", "DeliveryMedium": "SMS", "AttributeName": "phone_number"}

    for call in (public_idp.forgot_password, public_idp.resend_confirmation_code):
        unknown = call(ClientId=hiding, Username="nobody")["CodeDeliveryDetails"]
        assert (unknown["DeliveryMedium"], unknown["AttributeName"]) == ("SMS", "phone_number")
        assert re.fullmatch(r"\+\*{7}\d{4}", unknown["Destination"])
        assert call(ClientId=hiding, Username="nobody")["CodeDeliveryDetails"] == unknown
        as_phone = call(ClientId=hiding, Username="+15550109876")["CodeDeliveryDetails"]
        assert as_phone == {"Destination": "+*******9876", "DeliveryMedium": "SMS", "AttributeName": "phone_number"}
        as_email = call(ClientId=hiding, Username="nemo@example.org")["CodeDeliveryDetails"]
        assert (as_email["DeliveryMedium"], as_email["AttributeName"]) == ("SMS", "phone_number")
        assert re.fullmatch(r"\+\*{7}\d{4}", as_email["Destination"])

    _, email_client, _ = _existence_pool(idp, "email-existence", "email")
    for call in (public_idp.forgot_password, public_idp.resend_confirmation_code):
        as_email = call(ClientId=email_client, Username="nemo@example.org")["CodeDeliveryDetails"]
        assert as_email == {"Destination": "n***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
        as_phone = call(ClientId=email_client, Username="+15550109876")["CodeDeliveryDetails"]
        assert (as_phone["DeliveryMedium"], as_phone["AttributeName"]) == ("EMAIL", "email")
        assert re.fullmatch(r"[a-z]\*\*\*@[a-z]\*\*\*", as_phone["Destination"])


# --- ChangePassword for a user without a password -----------------------------------------------------------------


def test_a_passwordless_user_sets_a_first_password_with_change_password(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    """ChangePasswordRequest.PreviousPassword: "Required if the user has a password. If the user has no password
    and only signs in with passwordless authentication options, you can omit this parameter" ("Users who don't
    have a password can submit ChangePassword API requests without the PreviousPassword parameter"). The new
    password obeys the pool's policy, and once set it is required as PreviousPassword."""
    pool_id = idp.create_user_pool(
        PoolName="passwordless-first-password",
        AutoVerifiedAttributes=["email"],
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}},
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    address = "pat@example.com"
    public_idp.sign_up(ClientId=client_id, Username="pat", UserAttributes=[{"Name": "email", "Value": address}])
    confirmation = re.search(r"\b(\d{6})\b", body_text(mail.wait_for(address)))
    assert confirmation is not None
    public_idp.confirm_sign_up(ClientId=client_id, Username="pat", ConfirmationCode=confirmation.group(1))
    challenge = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters={"USERNAME": "pat", "PREFERRED_CHALLENGE": "EMAIL_OTP"}
    )
    token = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="EMAIL_OTP",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "pat", "EMAIL_OTP_CODE": sign_in_code(mail, address, 2)},
    )["AuthenticationResult"]["AccessToken"]

    with pytest.raises(ClientError) as exc:
        public_idp.change_password(AccessToken=token, ProposedPassword="short")
    assert error_of(exc)[0] == "InvalidPasswordException"
    public_idp.change_password(AccessToken=token, ProposedPassword=PASSWORD)
    signed_in = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "pat", "PASSWORD": PASSWORD}
    )
    assert "AccessToken" in signed_in["AuthenticationResult"]

    # Now the user has a password: without it, no change.
    with pytest.raises(ClientError) as exc:
        public_idp.change_password(AccessToken=token, ProposedPassword="Flows-pass-789!")
    assert error_of(exc)[0] == "InvalidParameterException"
    public_idp.change_password(AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword="Flows-pass-789!")


# --- A user with a temporary password ----------------------------------------------------------------------------


def test_an_invited_user_cannot_reset_the_temporary_password(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """Cognito refuses ForgotPassword and AdminResetUserPassword for a user in FORCE_CHANGE_PASSWORD with
    NotAuthorizedException "User password cannot be reset in the current state." (the way in is the temporary
    password, or a new invitation): no reset code is sent and the temporary password keeps working. Behind a
    client hiding user existence, ForgotPassword answers with a simulated delivery and sends nothing. Once the
    user has chosen a password, both work."""
    pool_id, hiding, legacy = _existence_pool(idp, "invited-reset", "email")
    address = "ivy@example.com"
    temporary = "Temp-pass-123!"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="ivy",
        TemporaryPassword=temporary,
        DesiredDeliveryMediums=["EMAIL"],
        UserAttributes=[{"Name": "email", "Value": address}, {"Name": "email_verified", "Value": "true"}],
    )
    mail.wait_for(address)  # the invitation

    cannot = ("NotAuthorizedException", "User password cannot be reset in the current state.")
    with pytest.raises(ClientError) as exc:
        public_idp.forgot_password(ClientId=legacy, Username="ivy")
    assert error_of(exc) == cannot
    with pytest.raises(ClientError) as exc:
        idp.admin_reset_user_password(UserPoolId=pool_id, Username="ivy")
    assert error_of(exc) == cannot
    simulated = public_idp.forgot_password(ClientId=hiding, Username="ivy")["CodeDeliveryDetails"]
    assert simulated == public_idp.forgot_password(ClientId=hiding, Username="ivy")["CodeDeliveryDetails"]
    assert (simulated["DeliveryMedium"], simulated["AttributeName"]) == ("EMAIL", "email")
    assert len(mail.messages_to(address)) == 1
    assert idp.admin_get_user(UserPoolId=pool_id, Username="ivy")["UserStatus"] == "FORCE_CHANGE_PASSWORD"

    challenge = public_idp.initiate_auth(
        ClientId=legacy, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "ivy", "PASSWORD": temporary}
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    public_idp.respond_to_auth_challenge(
        ClientId=legacy,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "ivy", "NEW_PASSWORD": PASSWORD},
    )
    delivery = public_idp.forgot_password(ClientId=legacy, Username="ivy")["CodeDeliveryDetails"]
    assert delivery == {"Destination": "i***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    assert len(mail.messages_to(address)) == 2
    idp.admin_reset_user_password(UserPoolId=pool_id, Username="ivy")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="ivy")["UserStatus"] == "RESET_REQUIRED"


def test_admin_reset_of_a_disabled_user_changes_nothing(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """AdminResetUserPassword of a disabled user is refused ("User is disabled.": enable the user first), and the
    refused call leaves the user as they were: still CONFIRMED, not RESET_REQUIRED, no code sent, the password
    working once the user is enabled again."""
    pool_id, _, legacy = _existence_pool(idp, "reset-disabled", "email")
    address = "dex@example.com"
    make_user(idp, pool_id, "dex", {"email": address, "email_verified": "true"})
    idp.admin_disable_user(UserPoolId=pool_id, Username="dex")
    with pytest.raises(ClientError) as exc:
        idp.admin_reset_user_password(UserPoolId=pool_id, Username="dex")
    assert error_of(exc) == ("NotAuthorizedException", "User is disabled.")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="dex")["UserStatus"] == "CONFIRMED"
    assert mail.messages_to(address) == []
    idp.admin_enable_user(UserPoolId=pool_id, Username="dex")
    signed_in = public_idp.initiate_auth(
        ClientId=legacy, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "dex", "PASSWORD": PASSWORD}
    )
    assert "AccessToken" in signed_in["AuthenticationResult"]


# --- UpdateUserAttributes: a blank value deletes ------------------------------------------------------------------


def test_a_blank_value_deletes_the_attribute(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """UpdateUserAttributes and AdminUpdateUserAttributes: "To delete an attribute from the user, submit the
    attribute in your API request with a blank value" ("For custom attributes, you must add a custom: prefix").
    The attribute is gone (not kept as an empty string in
    GetUser, AdminGetUser and the ID token); an email so deleted takes its verification flag and its sign-in alias
    with it, and no code is mailed for it. A required attribute cannot be deleted."""
    pool_id = idp.create_user_pool(
        PoolName="blank-deletes",
        AliasAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        Schema=[
            {"Name": "family_name", "AttributeDataType": "String", "Required": True, "Mutable": True},
            {"Name": "level", "AttributeDataType": "Number", "NumberAttributeConstraints": {"MinValue": "1"}},
        ],
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    address = "bea@example.com"
    make_user(
        idp,
        pool_id,
        "bea",
        {
            "email": address,
            "email_verified": "true",
            "given_name": "Bea",
            "nickname": "B",
            "family_name": "Bo",
            "custom:level": "3",
        },
    )

    def sign_in(name: str) -> dict[str, Any]:
        return dict(
            public_idp.initiate_auth(
                ClientId=client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": name, "PASSWORD": PASSWORD},
            )["AuthenticationResult"]
        )

    token = sign_in(address)["AccessToken"]

    def names() -> set[str]:
        return {a["Name"] for a in public_idp.get_user(AccessToken=token)["UserAttributes"]}

    public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "given_name", "Value": ""}])
    assert "given_name" not in names()
    idp.admin_update_user_attributes(
        UserPoolId=pool_id,
        Username="bea",
        UserAttributes=[{"Name": "nickname", "Value": ""}, {"Name": "custom:level", "Value": ""}],
    )
    admin_view = idp.admin_get_user(UserPoolId=pool_id, Username="bea")["UserAttributes"]
    assert {"given_name", "nickname", "custom:level"}.isdisjoint(a["Name"] for a in admin_view)

    answer = public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "email", "Value": ""}])
    assert answer["CodeDeliveryDetailsList"] == []
    assert {"email", "email_verified"}.isdisjoint(names())
    assert mail.messages_to(address) == []
    with pytest.raises(ClientError) as exc:
        sign_in(address)
    assert error_of(exc)[0] == "UserNotFoundException"
    claims = jwt.decode(sign_in("bea")["IdToken"], options={"verify_signature": False})
    assert {"email", "email_verified", "given_name", "nickname"}.isdisjoint(claims)

    with pytest.raises(ClientError) as exc:  # a value is still checked: a Number below its minimum is refused
        idp.admin_update_user_attributes(
            UserPoolId=pool_id, Username="bea", UserAttributes=[{"Name": "custom:level", "Value": "0"}]
        )
    assert error_of(exc)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "family_name", "Value": ""}])
    assert error_of(exc)[0] == "InvalidParameterException"
    assert "family_name" in names()


# --- Sign-up codes: the phone number first ------------------------------------------------------------------------


def test_a_sign_up_with_both_addresses_is_confirmed_by_sms(
    idp: Any, public_idp: Any, mail: MailServer, gatehouse: GatehouseServer
) -> None:
    """ "If a user provides both an email address and a phone number, and your app provides both contact methods in
    the SignUp request, Amazon Cognito sends a verification code only to the phone number" ("Signing up and
    confirming user accounts"; the console's "Send SMS message if phone number is available, otherwise send email
    message"). The code confirms the user and verifies the phone number; the email address stays unverified. A
    user who gives only an email address gets the code by email."""
    pool_id = idp.create_user_pool(PoolName="sms-first", AutoVerifiedAttributes=["email", "phone_number"])["UserPool"][
        "Id"
    ]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
    phone, address = "+15550104444", "sol@example.com"
    signed_up = public_idp.sign_up(
        ClientId=client_id,
        Username="sol",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": address}, {"Name": "phone_number", "Value": phone}],
    )
    assert signed_up["CodeDeliveryDetails"] == {
        "Destination": "+*******4444",
        "DeliveryMedium": "SMS",
        "AttributeName": "phone_number",
    }
    resent = public_idp.resend_confirmation_code(ClientId=client_id, Username="sol")["CodeDeliveryDetails"]
    assert resent == signed_up["CodeDeliveryDetails"]
    assert mail.messages_to(address) == []
    public_idp.confirm_sign_up(ClientId=client_id, Username="sol", ConfirmationCode=sms_code(gatehouse, phone, 2))
    user = idp.admin_get_user(UserPoolId=pool_id, Username="sol")
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert user["UserStatus"] == "CONFIRMED"
    assert (attributes["phone_number_verified"], attributes["email_verified"]) == ("true", "false")

    only_email = public_idp.sign_up(
        ClientId=client_id,
        Username="tam",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "tam@example.com"}],
    )
    assert only_email["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"


# --- AdminSetUserPassword on a federated profile ------------------------------------------------------------------


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        yield server


def test_a_password_set_on_a_federated_user_confirms_the_profile(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, corp: FakeOIDC
) -> None:
    """AdminSetUserPassword: "When you set a password, the federated user's status changes from EXTERNAL_PROVIDER
    to CONFIRMED. A user in this state can sign in as a federated user, and initiate authentication flows in the
    API like a linked native user." The profile stays the federated one (a sign-in through the provider still
    lands on it)."""
    pool_id = idp.create_user_pool(PoolName="federated-password")["UserPool"]["Id"]
    idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Corp",
        ProviderType="OIDC",
        ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email"},
    )
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="spa",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["Corp", "COGNITO"],
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]

    def federated_sign_in() -> dict[str, str]:
        flow = Flow(gatehouse, client_id)
        response = flow.run(flow.authorize_url(identity_provider="Corp"))
        assert response.status_code in (302, 303), response.text
        return query_of(response.headers["Location"])

    corp.user = {"sub": "fed-1", "email": "fed@corp.example"}
    assert "code" in federated_sign_in()
    assert idp.admin_get_user(UserPoolId=pool_id, Username="Corp_fed-1")["UserStatus"] == "EXTERNAL_PROVIDER"

    idp.admin_set_user_password(UserPoolId=pool_id, Username="Corp_fed-1", Password=PASSWORD, Permanent=True)
    assert idp.admin_get_user(UserPoolId=pool_id, Username="Corp_fed-1")["UserStatus"] == "CONFIRMED"
    signed_in = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "Corp_fed-1", "PASSWORD": PASSWORD},
    )
    assert "AccessToken" in signed_in["AuthenticationResult"]
    assert "code" in federated_sign_in()
    users = idp.list_users(UserPoolId=pool_id)["Users"]
    assert [(u["Username"], u["UserStatus"]) for u in users] == [("Corp_fed-1", "CONFIRMED")]


# --- Signing in straight after ConfirmSignUp ----------------------------------------------------------------------


def test_confirm_sign_up_hands_a_session_that_signs_in_once(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """ "Users who sign up and confirm their user accounts with email or SMS message OTPs can automatically sign in
    with the passwordless factor that matches their confirmation message": ConfirmSignUp answers a Session ("A
    session identifier that you can use to immediately sign in the confirmed user"), and InitiateAuth USER_AUTH
    with it answers AuthenticationResult with no further challenge, the code not asked for a second time
    (Amplify's autoSignIn does exactly this). The Session signs in once, for its own client, and only a user
    eligible for the emailed code; where the pool has no such factor, no Session is given."""
    pool_id = idp.create_user_pool(
        PoolName="auto-sign-in",
        AutoVerifiedAttributes=["email"],
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}},
    )["UserPool"]["Id"]
    flows = ["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    client_id, other_client = (
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName=name, ExplicitAuthFlows=flows)["UserPoolClient"][
            "ClientId"
        ]
        for name in ("app", "other")
    )

    def sign_up_and_confirm(name: str) -> str:
        address = f"{name}@example.com"
        public_idp.sign_up(ClientId=client_id, Username=name, UserAttributes=[{"Name": "email", "Value": address}])
        code = re.search(r"\b(\d{6})\b", body_text(mail.wait_for(address)))
        assert code is not None
        confirmed = public_idp.confirm_sign_up(ClientId=client_id, Username=name, ConfirmationCode=code.group(1))
        return str(confirmed["Session"])

    def user_auth(client: str, name: str, session: str) -> dict[str, Any]:
        parameters = {"USERNAME": name, "PREFERRED_CHALLENGE": "EMAIL_OTP"}
        return dict(
            public_idp.initiate_auth(ClientId=client, AuthFlow="USER_AUTH", AuthParameters=parameters, Session=session)
        )

    session = sign_up_and_confirm("una")
    signed_in = user_auth(client_id, "una", session)
    claims = jwt.decode(signed_in["AuthenticationResult"]["IdToken"], options={"verify_signature": False})
    assert (claims["cognito:username"], claims["email_verified"]) == ("una", True)
    assert len(mail.messages_to("una@example.com")) == 1  # no second code
    with pytest.raises(ClientError) as exc:  # once only
        user_auth(client_id, "una", session)
    assert error_of(exc)[0] == "NotAuthorizedException"

    with pytest.raises(ClientError) as exc:  # another client's Session is no way in
        user_auth(other_client, "vic", sign_up_and_confirm("vic"))
    assert error_of(exc)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as exc:
        user_auth(client_id, "una", "not-a-session-from-confirm-sign-up")
    assert error_of(exc)[0] == "NotAuthorizedException"

    # A pool without passwordless sign-in hands no Session.
    plain_pool = idp.create_user_pool(PoolName="no-auto-sign-in", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    plain_client = idp.create_user_pool_client(UserPoolId=plain_pool, ClientName="app")["UserPoolClient"]["ClientId"]
    public_idp.sign_up(
        ClientId=plain_client,
        Username="wes",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "wes@example.com"}],
    )
    code = re.search(r"\b(\d{6})\b", body_text(mail.wait_for("wes@example.com")))
    assert code is not None
    confirmed = public_idp.confirm_sign_up(ClientId=plain_client, Username="wes", ConfirmationCode=code.group(1))
    assert "Session" not in confirmed


# --- ConfirmForgotPassword without a code -------------------------------------------------------------------------


def test_confirm_forgot_password_without_a_code_asks_for_a_new_one(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """ "If a code isn't requested when using ForgotPassword, Amazon Cognito returns the ExpiredCodeException
    error" ("Invalid code provided, please request a code again."): so for a user who asked for none, or whose
    code is used. Behind a client hiding user existence the answer stays the wrong-code one an unknown name gets,
    so that it does not tell the two apart."""
    pool_id, hiding, legacy = _existence_pool(idp, "reset-no-code", "email")
    address = "nia@example.com"
    make_user(idp, pool_id, "nia", {"email": address, "email_verified": "true"})
    expired = ("ExpiredCodeException", "Invalid code provided, please request a code again.")
    mismatch = ("CodeMismatchException", "Invalid verification code provided, please try again.")

    def confirm(client_id: str, name: str, code: str, password: str = "Flows-pass-456!") -> Any:
        return public_idp.confirm_forgot_password(
            ClientId=client_id, Username=name, ConfirmationCode=code, Password=password
        )

    with pytest.raises(ClientError) as exc:
        confirm(legacy, "nia", "123456")
    assert error_of(exc) == expired
    for name in ("nia", "nobody"):
        with pytest.raises(ClientError) as exc:
            confirm(hiding, name, "123456")
        assert error_of(exc) == mismatch

    public_idp.forgot_password(ClientId=legacy, Username="nia")
    code = re.search(r"\b(\d{6})\b", body_text(mail.wait_for(address)))
    assert code is not None
    confirm(legacy, "nia", code.group(1))
    with pytest.raises(ClientError) as exc:  # used up
        confirm(legacy, "nia", code.group(1), "Flows-pass-789!")
    assert error_of(exc) == expired
