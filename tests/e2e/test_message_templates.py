"""The pool's message templates as Cognito's model and guides define them, end to end: invitation templates must
carry the temporary password, passwordless sign-in codes are worded by the authentication templates (not the
verification template), the SMS authentication message is one setting whether DescribeUserPool or
GetUserPoolMfaConfig reports it, and a verification template carries one email message, that of its
DefaultEmailOption.

One real `gatehouse serve` for the module: email through a real aiosmtpd server, SMS into the server's outbox
file.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer, MailServer, body_text, unreachable_smtp_config

PASSWORD = "Correct-horse-battery-1"
SMS_CONFIGURATION = {"SnsCallerArn": "arn:aws:iam::123456789012:role/sms", "ExternalId": "gatehouse"}
PASSWORDLESS = {"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP", "SMS_OTP"]}}
FLOWS = ["ALLOW_USER_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
VERIFICATION = {
    "SmsMessage": "VERIFY-SMS {####}",
    "EmailMessage": "VERIFY-EMAIL {####}",
    "EmailSubject": "VERIFY-SUBJECT",
}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def outbox_texts(server: GatehouseServer, phone: str) -> list[str]:
    path = server.data_dir / "outbox.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [str(m["text"]) for m in lines if m["to"] == phone]


def texted(server: GatehouseServer, phone: str, count: int) -> str:
    """The ``count``-th SMS the server sent to ``phone``."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        texts = outbox_texts(server, phone)
        if len(texts) >= count:
            return texts[count - 1]
        time.sleep(0.05)
    raise AssertionError(f"no SMS #{count} for {phone}")


def digits(text: str, count: int) -> str:
    match = re.search(rf"\b(\d{{{count}}})\b", text)
    assert match, text
    return match.group(1)


def new_pool(idp: Any, **members: Any) -> str:
    return str(idp.create_user_pool(PoolName="templates", **members)["UserPool"]["Id"])


def new_client(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return str(client["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str, *, email: str | None = None, phone: str | None = None) -> None:
    attributes = []
    if email:
        attributes += [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
    if phone:
        attributes += [{"Name": "phone_number", "Value": phone}, {"Name": "phone_number_verified", "Value": "true"}]
    idp.admin_create_user(UserPoolId=pool_id, Username=username, UserAttributes=attributes, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def user_auth(public_idp: Any, client_id: str, username: str, challenge: str) -> dict[str, Any]:
    parameters = {"USERNAME": username, "PREFERRED_CHALLENGE": challenge}
    answer = dict(public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters=parameters))
    assert answer["ChallengeName"] == challenge
    return answer


def answer_code(public_idp: Any, client_id: str, challenge: dict[str, Any], member: str, code: str) -> None:
    """Answer ``challenge`` with ``code`` and check that real tokens come back."""
    answer = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName=challenge["ChallengeName"],
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": challenge["ChallengeParameters"].get("USERNAME", ""), member: code},
    )
    assert public_idp.get_user(AccessToken=answer["AuthenticationResult"]["AccessToken"])["Username"]


# --- invitations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        {"EmailMessage": "Hello {username}, welcome aboard."},
        {"SMSMessage": "Hello {username}, welcome."},
        {"EmailMessage": "Your temporary password is {####}."},
    ],
)
def test_an_invitation_template_without_both_placeholders_is_refused(idp: Any, template: dict[str, str]) -> None:
    member = next(iter(template))
    before = len(idp.list_user_pools(MaxResults=60)["UserPools"])
    with pytest.raises(ClientError) as exc:
        new_pool(idp, AdminCreateUserConfig={"InviteMessageTemplate": template})
    assert error_of(exc) == (
        "InvalidParameterException",
        f"InviteMessageTemplate.{member} must contain the {{username}} and {{####}} placeholders.",
    )
    assert len(idp.list_user_pools(MaxResults=60)["UserPools"]) == before

    pool_id = new_pool(idp)
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, AdminCreateUserConfig={"InviteMessageTemplate": template})
    assert error_of(exc)[0] == "InvalidParameterException"
    stored = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["AdminCreateUserConfig"]
    assert "InviteMessageTemplate" not in stored


def test_an_invitation_carries_the_temporary_password(idp: Any, mail: MailServer) -> None:
    template = {"EmailSubject": "Welcome", "EmailMessage": "User {username}, password {####}."}
    pool_id = new_pool(idp, AdminCreateUserConfig={"InviteMessageTemplate": template})
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="invited",
        UserAttributes=[{"Name": "email", "Value": "invited@example.com"}],
        DesiredDeliveryMediums=["EMAIL"],
        TemporaryPassword="Temporary-pass-1",
    )
    assert body_text(mail.wait_for("invited@example.com")).strip() == "User invited, password Temporary-pass-1."


# --- passwordless sign-in codes ----------------------------------------------------------------------------


def test_an_sms_otp_is_worded_by_the_sms_authentication_message(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    pool_id = new_pool(
        idp, Policies=PASSWORDLESS, SmsAuthenticationMessage="SMS-AUTH {####}", VerificationMessageTemplate=VERIFICATION
    )
    client_id = new_client(idp, pool_id)
    make_user(idp, pool_id, "texted", phone="+15555550141")
    challenge = user_auth(public_idp, client_id, "texted", "SMS_OTP")
    text = texted(gatehouse, "+15555550141", 1)
    assert re.fullmatch(r"SMS-AUTH \d{8}", text), text
    answer_code(public_idp, client_id, challenge, "SMS_OTP_CODE", digits(text, 8))


def test_an_sms_otp_takes_the_message_set_up_for_sms_mfa(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id = new_pool(idp, Policies=PASSWORDLESS, VerificationMessageTemplate=VERIFICATION)
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="OFF",
        SmsMfaConfiguration={"SmsAuthenticationMessage": "MFA-SMS {####}", "SmsConfiguration": SMS_CONFIGURATION},
    )
    client_id = new_client(idp, pool_id)
    make_user(idp, pool_id, "texted-mfa", phone="+15555550142")
    user_auth(public_idp, client_id, "texted-mfa", "SMS_OTP")
    assert re.fullmatch(r"MFA-SMS \d{8}", texted(gatehouse, "+15555550142", 1))


def test_an_email_otp_is_worded_by_the_email_mfa_configuration(idp: Any, public_idp: Any, mail: MailServer) -> None:
    pool_id = new_pool(idp, Policies=PASSWORDLESS, VerificationMessageTemplate=VERIFICATION)
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="OFF",
        EmailMfaConfiguration={"Subject": "MFA-SUBJECT", "Message": "MFA-EMAIL {####}"},
    )
    client_id = new_client(idp, pool_id)
    make_user(idp, pool_id, "mailed", email="mailed@example.com")
    challenge = user_auth(public_idp, client_id, "mailed", "EMAIL_OTP")
    message = mail.wait_for("mailed@example.com")
    assert message["Subject"] == "MFA-SUBJECT"
    text = body_text(message).strip()
    assert re.fullmatch(r"MFA-EMAIL \d{8}", text), text
    answer_code(public_idp, client_id, challenge, "EMAIL_OTP_CODE", digits(text, 8))


def test_an_email_otp_without_an_email_mfa_configuration_has_the_sign_in_code_wording(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    pool_id = new_pool(idp, Policies=PASSWORDLESS, VerificationMessageTemplate=VERIFICATION)
    client_id = new_client(idp, pool_id)
    make_user(idp, pool_id, "mailed-default", email="mailed-default@example.com")
    user_auth(public_idp, client_id, "mailed-default", "EMAIL_OTP")
    message = mail.wait_for("mailed-default@example.com")
    assert message["Subject"] == "Your sign-in code"
    text = body_text(message).strip()
    assert re.fullmatch(r"Your sign-in code is \d{8}\.", text), text


@pytest.fixture(scope="module")
def mailless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """A Gatehouse whose SMTP server is down: every email fails."""
    data_dir: Path = tmp_path_factory.mktemp("mailless") / "data"
    server = GatehouseServer(data_dir, config=unreachable_smtp_config())
    server.start()
    yield server
    server.stop()


def test_an_email_otp_that_cannot_be_delivered_fails_the_sign_in(mailless: GatehouseServer) -> None:
    idp, public_idp = mailless.client(), mailless.client(signed=False)
    pool_id = new_pool(idp, Policies=PASSWORDLESS)
    client_id = new_client(idp, pool_id)
    make_user(idp, pool_id, "undelivered", email="undelivered@example.com")
    with pytest.raises(ClientError) as exc:
        user_auth(public_idp, client_id, "undelivered", "EMAIL_OTP")
    assert error_of(exc)[0] == "CodeDeliveryFailureException"


# --- the SMS authentication message: one setting -----------------------------------------------------------


def reported_messages(idp: Any, pool_id: str) -> tuple[str | None, str | None]:
    """The SMS authentication message as DescribeUserPool and as GetUserPoolMfaConfig report it."""
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"].get("SmsAuthenticationMessage")
    factor = idp.get_user_pool_mfa_config(UserPoolId=pool_id).get("SmsMfaConfiguration") or {}
    return described, factor.get("SmsAuthenticationMessage")


def test_the_sms_authentication_message_is_one_setting(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    members: dict[str, Any] = {"Policies": PASSWORDLESS, "SmsConfiguration": SMS_CONFIGURATION}
    pool_id = new_pool(idp, SmsAuthenticationMessage="A-MESSAGE {####}", **members)
    client_id = new_client(idp, pool_id)
    make_user(idp, pool_id, "otp", phone="+15555550143")
    make_user(idp, pool_id, "mfa", phone="+15555550144")
    sent: dict[str, int] = {"+15555550143": 0, "+15555550144": 0}

    def sent_texts() -> tuple[str, str]:
        """An SMS_OTP code texted to one user and an SMS_MFA code to the other."""
        user_auth(public_idp, client_id, "otp", "SMS_OTP")
        challenge = public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "mfa", "PASSWORD": PASSWORD}
        )
        assert challenge["ChallengeName"] == "SMS_MFA"
        for phone in sent:
            sent[phone] += 1
        return texted(gatehouse, "+15555550143", sent["+15555550143"]), texted(
            gatehouse, "+15555550144", sent["+15555550144"]
        )

    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="OPTIONAL",
        SmsMfaConfiguration={"SmsAuthenticationMessage": "B-MESSAGE {####}", "SmsConfiguration": SMS_CONFIGURATION},
    )
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username="mfa", SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    assert reported_messages(idp, pool_id) == ("B-MESSAGE {####}", "B-MESSAGE {####}")
    otp, mfa = sent_texts()
    assert re.fullmatch(r"B-MESSAGE \d{8}", otp) and re.fullmatch(r"B-MESSAGE \d{6}", mfa), (otp, mfa)

    idp.update_user_pool(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SmsAuthenticationMessage="C-MESSAGE {####}", **members
    )
    assert reported_messages(idp, pool_id) == ("C-MESSAGE {####}", "C-MESSAGE {####}")
    otp, mfa = sent_texts()
    assert re.fullmatch(r"C-MESSAGE \d{8}", otp) and re.fullmatch(r"C-MESSAGE \d{6}", mfa), (otp, mfa)

    # Left out of UpdateUserPool, the message returns to its default under both names.
    idp.update_user_pool(UserPoolId=pool_id, MfaConfiguration="OPTIONAL", **members)
    assert reported_messages(idp, pool_id) == (None, None)
    otp, mfa = sent_texts()
    assert otp.startswith("Your authentication code is ") and mfa.startswith("Your authentication code is ")

    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        SmsMfaConfiguration={"SmsAuthenticationMessage": "D-MESSAGE {####}", "SmsConfiguration": SMS_CONFIGURATION},
    )
    assert reported_messages(idp, pool_id) == ("D-MESSAGE {####}", "D-MESSAGE {####}")
    # Left out of SetUserPoolMfaConfig's SmsMfaConfiguration, the default too ("If this parameter isn't provided,
    # your user pool sends a default message", SmsMfaConfigType).
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, SmsMfaConfiguration={"SmsConfiguration": SMS_CONFIGURATION})
    assert reported_messages(idp, pool_id) == (None, None)


def test_create_user_pool_with_sms_mfa_reports_one_message(idp: Any) -> None:
    pool_id = new_pool(
        idp,
        MfaConfiguration="OPTIONAL",
        SmsConfiguration=SMS_CONFIGURATION,
        SmsAuthenticationMessage="CREATED {####}",
    )
    assert reported_messages(idp, pool_id) == ("CREATED {####}", "CREATED {####}")


# --- the verification template's email message -------------------------------------------------------------


@pytest.mark.parametrize("option", ["CONFIRM_WITH_CODE", "CONFIRM_WITH_LINK"])
def test_a_verification_template_with_both_email_messages_is_refused(idp: Any, option: str) -> None:
    # "When you supply both parameters with either choice, Amazon Cognito returns an error" (CreateUserPool,
    # UpdateUserPool: VerificationMessageTemplate).
    template = {
        "DefaultEmailOption": option,
        "EmailMessage": "Your code is {####}",
        "EmailMessageByLink": "Click {##Verify Email##}",
    }
    before = len(idp.list_user_pools(MaxResults=60)["UserPools"])
    with pytest.raises(ClientError) as exc:
        new_pool(idp, VerificationMessageTemplate=template)
    code, message = error_of(exc)
    assert code == "InvalidParameterException" and "EmailMessageByLink" in message
    assert len(idp.list_user_pools(MaxResults=60)["UserPools"]) == before

    pool_id = new_pool(idp)
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, VerificationMessageTemplate=template)
    assert error_of(exc)[0] == "InvalidParameterException"
    stored = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["VerificationMessageTemplate"]
    assert stored == {"DefaultEmailOption": "CONFIRM_WITH_CODE"}


@pytest.mark.parametrize(
    "template",
    [
        {"DefaultEmailOption": "CONFIRM_WITH_CODE", "EmailMessage": "Your code is {####}"},
        {"DefaultEmailOption": "CONFIRM_WITH_LINK", "EmailMessageByLink": "Click {##Verify Email##}"},
    ],
)
def test_a_verification_template_with_one_email_message_is_kept(idp: Any, template: dict[str, str]) -> None:
    pool_id = new_pool(idp, VerificationMessageTemplate=template)
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["VerificationMessageTemplate"] == template


CONFIGURED_POOL = "us-east-1_Messages01"


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    """A Gatehouse whose config file declares a pool with SMS MFA and its message."""
    data_dir: Path = tmp_path_factory.mktemp("configured") / "data"
    config = f"""version: 1
server:
  smtp: {{host: 127.0.0.1, port: {mail.port}}}
pools:
  - id: {CONFIGURED_POOL}
    name: messages
    mfa:
      mode: OPTIONAL
      sms: {{message: "FILE-SMS {{####}}"}}
"""
    server = GatehouseServer(data_dir, config=config)
    server.start()
    yield server
    server.stop()


def test_a_pool_from_the_config_file_reports_its_sms_message_and_is_not_rewritten_at_restart(
    configured: GatehouseServer,
) -> None:
    idp = configured.client()
    assert reported_messages(idp, CONFIGURED_POOL) == ("FILE-SMS {####}", "FILE-SMS {####}")
    before = idp.describe_user_pool(UserPoolId=CONFIGURED_POOL)["UserPool"]
    configured.stop()
    configured.start()
    idp = configured.client()
    after = idp.describe_user_pool(UserPoolId=CONFIGURED_POOL)["UserPool"]
    assert after["LastModifiedDate"] == before["LastModifiedDate"]
    assert after == before
