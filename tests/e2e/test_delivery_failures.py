"""A delivery that fails changes nothing: the code, the temporary password and the status a user already has keep
working, and the user's send budget is not spent on a message that never went.

A real `gatehouse serve` whose mail goes to a real aiosmtpd server and whose texts go to a real SMS gateway (the
aiohttp app of test_delivery.py, made to refuse with ``fail_with``); boto3 over HTTP. Its config allows 2 codes
per user, so that a few failed sends would reach the limit if they were counted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_delivery import SmsGateway
from tests.support import GatehouseServer, MailServer, body_text

PASSWORD = "Correct-horse-1"
LIMIT = 2
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
# The invitation's wording, so that the temporary password can be read back from the message.
INVITE = "user {username} password [{####}]"


@pytest.fixture(scope="module")
def gatehouse(
    tmp_path_factory: pytest.TempPathFactory, mail: MailServer, sms_gateway: SmsGateway
) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("delivery-failures") / "data"
    config = f"""version: 1
server:
  smtp: {{host: 127.0.0.1, port: {mail.port}}}
  sms_webhook: {{url: {sms_gateway.url}, timeout: 5}}
  code_send_limits: {{max_codes: {LIMIT}}}
pools: []
"""
    server = GatehouseServer(data_dir, config=config)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(idp: Any) -> tuple[str, str]:
    """A pool whose users verify their phone number, and a client that does not hide user existence (every code
    is sent while the caller waits, so a failed delivery is the answer)."""
    pool_id = str(
        idp.create_user_pool(
            PoolName="failing",
            AutoVerifiedAttributes=["phone_number"],
            AdminCreateUserConfig={
                "InviteMessageTemplate": {"SMSMessage": INVITE, "EmailMessage": INVITE, "EmailSubject": "Welcome"}
            },
        )["UserPool"]["Id"]
    )
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="LEGACY"
    )
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def refused(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**params)
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def six_digits(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)


def sms_code(sms_gateway: SmsGateway, phone: str, count: int) -> str:
    return six_digits(sms_gateway.wait_for(phone, count=count)[1]["message"])


def invited_password(text: str) -> str:
    match = re.search(r"password \[(.+)\]", text)
    assert match, text
    return match.group(1)


@contextmanager
def sms_down(sms_gateway: SmsGateway) -> Iterator[None]:
    sms_gateway.fail_with = 503
    try:
        yield
    finally:
        sms_gateway.fail_with = None


def confirmed_user(idp: Any, pool_id: str, username: str, phone: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[
            {"Name": "phone_number", "Value": phone},
            {"Name": "phone_number_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def sign_in(public_idp: Any, client_id: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    return dict(
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    )


# --- AdminCreateUser RESEND ----------------------------------------------------------------------------------


def test_a_resend_to_a_medium_without_an_address_is_refused_and_keeps_the_password(
    idp: Any, public_idp: Any, pool: tuple[str, str], mail: MailServer, sms_gateway: SmsGateway
) -> None:
    """RESEND checks the user's addresses as AdminCreateUser does: a user with only an email asked for a text
    (DesiredDeliveryMediums omitted is SMS) is InvalidParameterException, nothing is sent, and the temporary
    password the user holds keeps working."""
    pool_id, client_id = pool
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="frank",
        TemporaryPassword="Temp-pass-123",
        UserAttributes=[{"Name": "email", "Value": "frank@example.com"}],
        DesiredDeliveryMediums=["EMAIL"],
    )
    assert invited_password(body_text(mail.wait_for("frank@example.com"))) == "Temp-pass-123"
    before = idp.admin_get_user(UserPoolId=pool_id, Username="frank")
    texts = len(sms_gateway.received)
    message = "User has no value for the attribute phone_number, so a message could not be sent."
    for mediums in ({}, {"DesiredDeliveryMediums": ["SMS"]}, {"DesiredDeliveryMediums": ["EMAIL", "SMS"]}):
        answer = refused(idp.admin_create_user, UserPoolId=pool_id, Username="frank", MessageAction="RESEND", **mediums)
        assert answer == ("InvalidParameterException", message)
    # A new user asked for the same is refused alike.
    assert refused(
        idp.admin_create_user,
        UserPoolId=pool_id,
        Username="gina",
        UserAttributes=[{"Name": "email", "Value": "gina@example.com"}],
        DesiredDeliveryMediums=["SMS"],
    ) == ("InvalidParameterException", message)
    after = idp.admin_get_user(UserPoolId=pool_id, Username="frank")
    assert after["UserLastModifiedDate"] == before["UserLastModifiedDate"]
    assert sign_in(public_idp, client_id, "frank", "Temp-pass-123")["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    time.sleep(0.3)  # a message would have arrived by now
    assert len(sms_gateway.received) == texts
    assert len(mail.messages_to("frank@example.com")) == 1


def test_an_invitation_by_email_and_sms_whose_text_fails_mails_nothing(
    idp: Any, public_idp: Any, pool: tuple[str, str], mail: MailServer, sms_gateway: SmsGateway
) -> None:
    """DesiredDeliveryMediums EMAIL and SMS: when the text cannot be sent the call fails and stores nothing, so
    no email may have gone out with a password that would never work."""
    pool_id, client_id = pool
    email, phone = "hana@example.com", "+15555550111"
    attributes = [{"Name": "email", "Value": email}, {"Name": "phone_number", "Value": phone}]
    with sms_down(sms_gateway):
        answer = refused(
            idp.admin_create_user,
            UserPoolId=pool_id,
            Username="hana",
            UserAttributes=attributes,
            DesiredDeliveryMediums=["EMAIL", "SMS"],
        )
    assert answer[0] == "CodeDeliveryFailureException"
    assert refused(idp.admin_get_user, UserPoolId=pool_id, Username="hana")[0] == "UserNotFoundException"

    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="hana",
        TemporaryPassword="Temp-pass-123",
        UserAttributes=attributes,
        MessageAction="SUPPRESS",
    )
    with sms_down(sms_gateway):
        answer = refused(
            idp.admin_create_user,
            UserPoolId=pool_id,
            Username="hana",
            MessageAction="RESEND",
            DesiredDeliveryMediums=["EMAIL", "SMS"],
        )
    assert answer[0] == "CodeDeliveryFailureException"
    time.sleep(0.3)  # a message would have arrived by now
    assert mail.messages_to(email) == []
    assert sign_in(public_idp, client_id, "hana", "Temp-pass-123")["ChallengeName"] == "NEW_PASSWORD_REQUIRED"

    # Both delivered, both carry the one new password, which replaces the old.
    idp.admin_create_user(
        UserPoolId=pool_id, Username="hana", MessageAction="RESEND", DesiredDeliveryMediums=["EMAIL", "SMS"]
    )
    mailed = invited_password(body_text(mail.wait_for(email)))
    assert invited_password(sms_gateway.wait_for(phone)[1]["message"]) == mailed
    assert sign_in(public_idp, client_id, "hana", mailed)["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert (
        refused(
            public_idp.initiate_auth,
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "hana", "PASSWORD": "Temp-pass-123"},
        )[0]
        == "NotAuthorizedException"
    )


# --- codes a user asks for ------------------------------------------------------------------------------------


def test_a_failed_reset_code_keeps_the_code_sent_and_spends_no_send(
    idp: Any, public_idp: Any, pool: tuple[str, str], sms_gateway: SmsGateway
) -> None:
    pool_id, client_id = pool
    phone = "+15555550121"
    confirmed_user(idp, pool_id, "ivan", phone)
    public_idp.forgot_password(ClientId=client_id, Username="ivan")
    code = sms_code(sms_gateway, phone, 1)
    with sms_down(sms_gateway):
        for _ in range(LIMIT + 1):  # each fails as a delivery, none as the limit: nothing went, nothing counted
            assert refused(public_idp.forgot_password, ClientId=client_id, Username="ivan")[0] == (
                "CodeDeliveryFailureException"
            )
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="ivan", ConfirmationCode=code, Password="Battery-staple-2"
    )
    assert "AuthenticationResult" in sign_in(public_idp, client_id, "ivan", "Battery-staple-2")
    # One code went before, one now: the limit is reached by codes delivered.
    public_idp.forgot_password(ClientId=client_id, Username="ivan")
    sms_code(sms_gateway, phone, 2)
    assert refused(public_idp.forgot_password, ClientId=client_id, Username="ivan")[0] == "LimitExceededException"
    assert len(sms_gateway.messages_to(phone)) == 2


def test_a_failed_attribute_code_keeps_the_code_sent(
    idp: Any, public_idp: Any, pool: tuple[str, str], sms_gateway: SmsGateway
) -> None:
    pool_id, client_id = pool
    phone = "+15555550131"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="jack",
        UserAttributes=[{"Name": "phone_number", "Value": phone}],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="jack", Password=PASSWORD, Permanent=True)
    access = sign_in(public_idp, client_id, "jack")["AuthenticationResult"]["AccessToken"]
    public_idp.get_user_attribute_verification_code(AccessToken=access, AttributeName="phone_number")
    code = sms_code(sms_gateway, phone, 1)
    with sms_down(sms_gateway):
        for _ in range(LIMIT):
            answer = refused(
                public_idp.get_user_attribute_verification_code, AccessToken=access, AttributeName="phone_number"
            )
            assert answer[0] == "CodeDeliveryFailureException"
    public_idp.verify_user_attribute(AccessToken=access, AttributeName="phone_number", Code=code)
    attributes = {a["Name"]: a["Value"] for a in public_idp.get_user(AccessToken=access)["UserAttributes"]}
    assert attributes["phone_number_verified"] == "true"
    # Only the code delivered counted: one more may be sent.
    public_idp.get_user_attribute_verification_code(AccessToken=access, AttributeName="phone_number")
    sms_code(sms_gateway, phone, 2)


def test_a_failed_confirmation_code_keeps_the_code_sent_and_spends_no_send(
    public_idp: Any, pool: tuple[str, str], sms_gateway: SmsGateway
) -> None:
    _, client_id = pool
    phone = "+15555550141"
    attributes = [{"Name": "phone_number", "Value": phone}]
    public_idp.sign_up(ClientId=client_id, Username="kate", Password=PASSWORD, UserAttributes=attributes)
    code = sms_code(sms_gateway, phone, 1)
    with sms_down(sms_gateway):
        for _ in range(LIMIT + 1):
            answer = refused(public_idp.resend_confirmation_code, ClientId=client_id, Username="kate")
            assert answer[0] == "CodeDeliveryFailureException"
    # The budget is whole: the limit's worth of codes can still be sent, and only then is the next refused.
    for count in range(2, LIMIT + 2):
        public_idp.resend_confirmation_code(ClientId=client_id, Username="kate")
        sms_code(sms_gateway, phone, count)
    assert refused(public_idp.resend_confirmation_code, ClientId=client_id, Username="kate")[0] == (
        "LimitExceededException"
    )
    # Each code sent replaced the one before: the first no longer confirms, the last does.
    assert refused(public_idp.confirm_sign_up, ClientId=client_id, Username="kate", ConfirmationCode=code)[0] == (
        "CodeMismatchException"
    )
    last = sms_code(sms_gateway, phone, LIMIT + 1)
    public_idp.confirm_sign_up(ClientId=client_id, Username="kate", ConfirmationCode=last)


def test_a_failed_confirmation_code_leaves_the_first_code_valid(
    public_idp: Any, pool: tuple[str, str], sms_gateway: SmsGateway
) -> None:
    _, client_id = pool
    phone = "+15555550142"
    attributes = [{"Name": "phone_number", "Value": phone}]
    public_idp.sign_up(ClientId=client_id, Username="kurt", Password=PASSWORD, UserAttributes=attributes)
    code = sms_code(sms_gateway, phone, 1)
    with sms_down(sms_gateway):
        answer = refused(public_idp.resend_confirmation_code, ClientId=client_id, Username="kurt")
    assert answer[0] == "CodeDeliveryFailureException"
    public_idp.confirm_sign_up(ClientId=client_id, Username="kurt", ConfirmationCode=code)


# --- AdminResetUserPassword -----------------------------------------------------------------------------------


def test_an_admin_reset_whose_code_cannot_be_sent_changes_nothing(
    idp: Any, public_idp: Any, pool: tuple[str, str], sms_gateway: SmsGateway
) -> None:
    pool_id, client_id = pool
    phone = "+15555550151"
    confirmed_user(idp, pool_id, "lena", phone)
    tokens = sign_in(public_idp, client_id, "lena")["AuthenticationResult"]
    public_idp.forgot_password(ClientId=client_id, Username="lena")
    code = sms_code(sms_gateway, phone, 1)
    before = idp.admin_get_user(UserPoolId=pool_id, Username="lena")
    with sms_down(sms_gateway):
        answer = refused(idp.admin_reset_user_password, UserPoolId=pool_id, Username="lena")
    assert answer[0] == "CodeDeliveryFailureException"
    after = idp.admin_get_user(UserPoolId=pool_id, Username="lena")
    assert after["UserStatus"] == "CONFIRMED"
    assert after["UserLastModifiedDate"] == before["UserLastModifiedDate"]
    # The password signs in, the refresh token still refreshes, the code sent before still resets.
    assert "AuthenticationResult" in sign_in(public_idp, client_id, "lena")
    refreshed = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]}
    )
    assert "AccessToken" in refreshed["AuthenticationResult"]
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="lena", ConfirmationCode=code, Password="Battery-staple-2"
    )

    # Delivered, the reset goes through: RESET_REQUIRED, the tokens revoked, the new code resets.
    idp.admin_reset_user_password(UserPoolId=pool_id, Username="lena")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="lena")["UserStatus"] == "RESET_REQUIRED"
    assert (
        refused(
            public_idp.initiate_auth,
            ClientId=client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]},
        )[0]
        == "NotAuthorizedException"
    )
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="lena", ConfirmationCode=sms_code(sms_gateway, phone, 2), Password="Third-pass-33"
    )
    assert "AuthenticationResult" in sign_in(public_idp, client_id, "lena", "Third-pass-33")


def test_an_sms_mfa_code_that_cannot_be_sent_spends_no_send(idp: Any, public_idp: Any, sms_gateway: SmsGateway) -> None:
    """Sign-in codes take from the same budget: a text the gateway refuses is given back, so after more failed
    sign-ins than the limit the user still gets a code once the gateway is back."""
    pool_id = idp.create_user_pool(PoolName="failing-mfa")["UserPool"]["Id"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="ON", SmsMfaConfiguration={"SmsAuthenticationMessage": "code {####}"}
    )
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    phone = "+15555550777"
    confirmed_user(idp, pool_id, "mfa-user", phone)
    sign_in = {
        "ClientId": client_id,
        "AuthFlow": "USER_PASSWORD_AUTH",
        "AuthParameters": {"USERNAME": "mfa-user", "PASSWORD": PASSWORD},
    }
    with sms_down(sms_gateway):
        for _ in range(LIMIT + 1):
            assert refused(public_idp.initiate_auth, **sign_in)[0] == "CodeDeliveryFailureException"
    step = public_idp.initiate_auth(**sign_in)
    assert step["ChallengeName"] == "SMS_MFA"
    code = six_digits(sms_gateway.wait_for(phone)[1]["message"])
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="SMS_MFA",
        Session=step["Session"],
        ChallengeResponses={"USERNAME": "mfa-user", "SMS_MFA_CODE": code},
    )
    assert done["AuthenticationResult"]["AccessToken"]


def test_a_new_password_answer_whose_mfa_code_cannot_be_sent_can_be_sent_again(
    idp: Any, public_idp: Any, sms_gateway: SmsGateway
) -> None:
    """NEW_PASSWORD_REQUIRED stores the password, then SMS MFA's code fails to go: the same answer again (as the
    SDKs retry) goes on to SMS_MFA once the gateway is back; another password on that Session is refused."""
    pool_id = idp.create_user_pool(PoolName="failing-new-password")["UserPool"]["Id"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="ON", SmsMfaConfiguration={"SmsAuthenticationMessage": "code {####}"}
    )
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]

    def new_password_step(username: str, phone: str) -> dict[str, Any]:
        """A user with a temporary password, signed in up to NEW_PASSWORD_REQUIRED; that answer, its new password."""
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            TemporaryPassword="Temporary-pass-1",
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "phone_number", "Value": phone},
                {"Name": "phone_number_verified", "Value": "true"},
            ],
        )
        step = public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": "Temporary-pass-1"},
        )
        assert step["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
        return {
            "ClientId": client_id,
            "ChallengeName": "NEW_PASSWORD_REQUIRED",
            "Session": step["Session"],
            "ChallengeResponses": {"USERNAME": username, "NEW_PASSWORD": PASSWORD},
        }

    def sms_answer(step: dict[str, Any], username: str, phone: str) -> dict[str, Any]:
        assert step["ChallengeName"] == "SMS_MFA", step
        code = six_digits(sms_gateway.wait_for(phone)[1]["message"])
        return dict(
            public_idp.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="SMS_MFA",
                Session=step["Session"],
                ChallengeResponses={"USERNAME": username, "SMS_MFA_CODE": code},
            )
        )

    # The same answer again goes on.
    answer = new_password_step("newbie", "+15555550778")
    with sms_down(sms_gateway):
        assert refused(public_idp.respond_to_auth_challenge, **answer)[0] == "CodeDeliveryFailureException"
    again = public_idp.respond_to_auth_challenge(**answer)
    assert sms_answer(again, "newbie", "+15555550778")["AuthenticationResult"]["AccessToken"]

    # Another password on that Session is refused and changes nothing: the one set first is the user's.
    answer = new_password_step("newbie-2", "+15555550780")
    with sms_down(sms_gateway):
        assert refused(public_idp.respond_to_auth_challenge, **answer)[0] == "CodeDeliveryFailureException"
    other = {**answer, "ChallengeResponses": {"USERNAME": "newbie-2", "NEW_PASSWORD": "Another-pass-2"}}
    assert refused(public_idp.respond_to_auth_challenge, **other)[0] == "NotAuthorizedException"
    step = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "newbie-2", "PASSWORD": PASSWORD},
    )
    assert sms_answer(step, "newbie-2", "+15555550780")["AuthenticationResult"]["AccessToken"]


def test_an_sms_otp_that_cannot_be_sent_keeps_the_code_already_sent(
    idp: Any, public_idp: Any, sms_gateway: SmsGateway
) -> None:
    pool_id = idp.create_user_pool(
        PoolName="failing-otp",
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "SMS_OTP"]}},
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    phone = "+15555550779"
    confirmed_user(idp, pool_id, "otp-user", phone)
    sign_in = {
        "ClientId": client_id,
        "AuthFlow": "USER_AUTH",
        "AuthParameters": {"USERNAME": "otp-user", "PREFERRED_CHALLENGE": "SMS_OTP"},
    }
    first = public_idp.initiate_auth(**sign_in)
    assert first["ChallengeName"] == "SMS_OTP"
    match = re.search(r"\b(\d{8})\b", sms_gateway.wait_for(phone)[1]["message"])
    assert match
    with sms_down(sms_gateway):
        assert refused(public_idp.initiate_auth, **sign_in)[0] == "CodeDeliveryFailureException"
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="SMS_OTP",
        Session=first["Session"],
        ChallengeResponses={"USERNAME": "otp-user", "SMS_OTP_CODE": match.group(1)},
    )
    assert done["AuthenticationResult"]["AccessToken"]
