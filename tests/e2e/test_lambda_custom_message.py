"""The custom message trigger, end to end: a pool's CustomMessage function (tests/fakes/lambda_service.py, a real
HTTP Lambda service checking SigV4) words the codes and invitations Gatehouse sends, which arrive at a real SMTP
server (and a real SMS gateway). Each test reads the message the user got, uses the code in it, and checks the
event the function received; a function that fails, or answers what cannot be sent, fails the call and changes
nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.test_delivery import SmsGateway
from tests.fakes.lambda_service import FakeLambda
from tests.support import GatehouseServer, MailServer, body_text, code_in

PASSWORD = "Custom-message-1"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
DEVELOPER = {"EmailSendingAccount": "DEVELOPER", "From": "Acme <no-reply@acme.example>"}


@pytest.fixture(scope="module")
def gatehouse(
    tmp_path_factory: pytest.TempPathFactory, mail: MailServer, functions: FakeLambda, sms_gateway: SmsGateway
) -> Iterator[GatehouseServer]:
    config = f"""version: 1
server:
  smtp:
    host: 127.0.0.1
    port: {mail.port}
  sms_webhook: {{url: {sms_gateway.url}, timeout: 5}}
{functions.server_config()}pools: []
"""
    server = GatehouseServer(tmp_path_factory.mktemp("gatehouse") / "data", config=config)
    server.start()
    yield server
    server.stop()


def _pool(idp: Any, name: str, arn: str, **settings: Any) -> tuple[str, str]:
    settings.setdefault("EmailConfiguration", DEVELOPER)
    settings.setdefault("AutoVerifiedAttributes", ["email"])
    pool_id = str(
        idp.create_user_pool(PoolName=name, LambdaConfig={"CustomMessage": arn}, **settings)["UserPool"]["Id"]
    )
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="LEGACY"
    )
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def _sign_up(public_idp: Any, client_id: str, username: str, email: str, **extra: Any) -> dict[str, Any]:
    return dict(
        public_idp.sign_up(
            ClientId=client_id,
            Username=username,
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": username.title()}],
            **extra,
        )
    )


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def _status(idp: Any, pool_id: str, username: str) -> str:
    return str(idp.admin_get_user(UserPoolId=pool_id, Username=username)["UserStatus"])


def worded(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """A function that words every message by its trigger, with the user's name and the placeholders it is
    given (as the developer guide advises: the request's values, not hard-coded ones)."""
    request = event["request"]
    name = request["userAttributes"].get("name", "there")
    code = request["codeParameter"]
    kind = event["triggerSource"].removeprefix("CustomMessage_")
    if request["usernameParameter"]:
        code = f"{request['usernameParameter']} / {code}"
    event["response"]["emailSubject"] = f"Acme {kind} for {name}"
    event["response"]["emailMessage"] = f"<p>Hello {name},</p><p>{kind}: {code}</p>"
    event["response"]["smsMessage"] = f"Acme {kind}: {code}"
    return event


# --- the messages and their codes ----------------------------------------------------------------------------


def test_sign_up_code_worded_by_the_function(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    arn = functions.add("cm-sign-up", worded)
    pool_id, client_id = _pool(idp, "cm-sign-up", arn)

    _sign_up(public_idp, client_id, "dana", "dana@acme.example", ClientMetadata={"campaign": "spring"})
    message = mail.wait_for("dana@acme.example")
    assert message["Subject"] == "Acme SignUp for Dana"
    assert message["From"] == "Acme <no-reply@acme.example>"
    code = code_in(message)
    assert body_text(message).strip() == f"<p>Hello Dana,</p><p>SignUp: {code}</p>"

    (event,) = functions.events("cm-sign-up")
    assert event["triggerSource"] == "CustomMessage_SignUp"
    assert event["userPoolId"] == pool_id and event["userName"] == "dana"
    assert event["callerContext"]["clientId"] == client_id
    request = event["request"]
    assert request["codeParameter"] == "{####}"
    assert request["usernameParameter"] is None and request["linkParameter"] is None
    assert request["clientMetadata"] == {"campaign": "spring"}
    attributes = request["userAttributes"]
    assert attributes["email"] == "dana@acme.example" and attributes["name"] == "Dana"
    assert attributes["cognito:user_status"] == "UNCONFIRMED" and attributes["sub"]

    # A resent code is its own trigger source, and the code in either message is the user's code.
    public_idp.resend_confirmation_code(ClientId=client_id, Username="dana")
    resent = mail.wait_for("dana@acme.example", count=2)
    assert resent["Subject"] == "Acme ResendCode for Dana"
    assert functions.events("cm-sign-up")[-1]["triggerSource"] == "CustomMessage_ResendCode"
    public_idp.confirm_sign_up(ClientId=client_id, Username="dana", ConfirmationCode=code_in(resent))
    assert _status(idp, pool_id, "dana") == "CONFIRMED"


def test_invitation_worded_by_the_function(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    arn = functions.add("cm-invite", worded)
    pool_id, client_id = _pool(idp, "cm-invite", arn)

    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="erin",
        UserAttributes=[{"Name": "email", "Value": "erin@acme.example"}, {"Name": "name", "Value": "Erin"}],
        DesiredDeliveryMediums=["EMAIL"],
        ClientMetadata={"team": "ops"},
    )
    message = mail.wait_for("erin@acme.example")
    assert message["Subject"] == "Acme AdminCreateUser for Erin"
    found = re.fullmatch(r"<p>Hello Erin,</p><p>AdminCreateUser: erin / (\S+)</p>", body_text(message).strip())
    assert found, body_text(message)
    temporary = found.group(1)
    answer = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "erin", "PASSWORD": temporary}
    )
    assert answer["ChallengeName"] == "NEW_PASSWORD_REQUIRED"

    (event,) = functions.events("cm-invite")
    assert event["triggerSource"] == "CustomMessage_AdminCreateUser"
    assert event["request"]["usernameParameter"] == "{username}"
    assert event["request"]["codeParameter"] == "{####}"
    assert event["request"]["clientMetadata"] == {"team": "ops"}
    assert event["request"]["userAttributes"]["cognito:user_status"] == "FORCE_CHANGE_PASSWORD"

    # An invitation must name the user: a message without {username} is refused, and no user is left behind.
    def no_username(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["emailMessage"] = f"Your password: {event['request']['codeParameter']}"
        return event

    functions.add("cm-invite", no_username)
    with pytest.raises(ClientError) as refused:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username="finn",
            UserAttributes=[{"Name": "email", "Value": "finn@acme.example"}],
            DesiredDeliveryMediums=["EMAIL"],
        )
    assert _error(refused) == ("InvalidLambdaResponseException", "Unrecognizable lambda output")
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.admin_get_user(UserPoolId=pool_id, Username="finn")
    assert mail.messages_to("finn@acme.example") == []


def test_forgot_password_and_admin_reset_worded_by_the_function(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    arn = functions.add("cm-forgot", worded)
    pool_id, client_id = _pool(idp, "cm-forgot", arn)
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="gail",
        UserAttributes=[
            {"Name": "email", "Value": "gail@acme.example"},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": "Gail"},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="gail", Password=PASSWORD, Permanent=True)

    public_idp.forgot_password(ClientId=client_id, Username="gail", ClientMetadata={"flow": "forgot"})
    message = mail.wait_for("gail@acme.example")
    assert message["Subject"] == "Acme ForgotPassword for Gail"
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="gail", ConfirmationCode=code_in(message), Password="Brand-new-pass-2"
    )
    signed_in = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "gail", "PASSWORD": "Brand-new-pass-2"},
    )
    assert signed_in["AuthenticationResult"]["AccessToken"]

    idp.admin_reset_user_password(UserPoolId=pool_id, Username="gail", ClientMetadata={"flow": "admin"})
    reset = mail.wait_for("gail@acme.example", count=2)
    assert reset["Subject"] == "Acme ForgotPassword for Gail"
    sources = [e["triggerSource"] for e in functions.events("cm-forgot")]
    assert sources == ["CustomMessage_ForgotPassword", "CustomMessage_ForgotPassword"]
    assert functions.events("cm-forgot")[0]["request"]["userAttributes"]["cognito:user_status"] == "CONFIRMED"
    # Each call's ClientMetadata, and the app client where the call names one.
    forgot, admin_reset = functions.events("cm-forgot")
    assert (
        forgot["request"]["clientMetadata"] == {"flow": "forgot"} and forgot["callerContext"]["clientId"] == client_id
    )
    assert admin_reset["request"]["clientMetadata"] == {"flow": "admin"}
    assert admin_reset["callerContext"]["clientId"] == "CLIENT_ID_NOT_APPLICABLE"


def test_attribute_codes_worded_by_the_function(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    arn = functions.add("cm-attribute", worded)
    pool_id, client_id = _pool(idp, "cm-attribute", arn)
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="hank",
        UserAttributes=[{"Name": "email", "Value": "hank@acme.example"}, {"Name": "name", "Value": "Hank"}],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="hank", Password=PASSWORD, Permanent=True)
    token = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "hank", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["AccessToken"]

    public_idp.update_user_attributes(
        AccessToken=token,
        UserAttributes=[{"Name": "email", "Value": "hank.new@acme.example"}],
        ClientMetadata={"screen": "profile"},
    )
    updated = mail.wait_for("hank.new@acme.example")
    assert updated["Subject"] == "Acme UpdateUserAttribute for Hank"
    public_idp.get_user_attribute_verification_code(
        AccessToken=token, AttributeName="email", ClientMetadata={"screen": "verify"}
    )
    verify = mail.wait_for("hank.new@acme.example", count=2)
    assert verify["Subject"] == "Acme VerifyUserAttribute for Hank"
    public_idp.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code_in(verify))
    attributes = {
        a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=pool_id, Username="hank")["UserAttributes"]
    }
    assert attributes["email"] == "hank.new@acme.example" and attributes["email_verified"] == "true"
    sources = [e["triggerSource"] for e in functions.events("cm-attribute")]
    assert sources == ["CustomMessage_UpdateUserAttribute", "CustomMessage_VerifyUserAttribute"]
    for event, screen in zip(functions.events("cm-attribute"), ("profile", "verify"), strict=True):
        assert event["request"]["clientMetadata"] == {"screen": screen}
        assert event["callerContext"]["clientId"] == client_id


def test_email_mfa_code_worded_by_the_function(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    arn = functions.add("cm-mfa", worded)
    pool_id, client_id = _pool(idp, "cm-mfa", arn)
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="OPTIONAL",
        EmailMfaConfiguration={"Subject": "Sign-in code", "Message": "Use {####} to sign in."},
    )
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="ivy",
        UserAttributes=[
            {"Name": "email", "Value": "ivy@acme.example"},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": "Ivy"},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="ivy", Password=PASSWORD, Permanent=True)
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username="ivy", EmailMfaSettings={"Enabled": True, "PreferredMfa": True}
    )

    challenge = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "ivy", "PASSWORD": PASSWORD}
    )
    assert challenge["ChallengeName"] == "EMAIL_OTP"
    message = mail.wait_for("ivy@acme.example")
    assert message["Subject"] == "Acme Authentication for Ivy"
    result = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="EMAIL_OTP",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "ivy", "EMAIL_OTP_CODE": code_in(message)},
    )
    assert result["AuthenticationResult"]["AccessToken"]
    (event,) = functions.events("cm-mfa")
    assert event["triggerSource"] == "CustomMessage_Authentication"
    assert event["request"]["userAttributes"]["cognito:user_status"] == "CONFIRMED"


def test_the_pools_own_message_when_the_function_leaves_the_response(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    arn = functions.add("cm-unchanged", lambda event, context: event)
    _, client_id = _pool(
        idp,
        "cm-unchanged",
        arn,
        VerificationMessageTemplate={"EmailSubject": "Pool subject", "EmailMessage": "Pool code {####}"},
    )
    _sign_up(public_idp, client_id, "jack", "jack@acme.example")
    message = mail.wait_for("jack@acme.example")
    assert message["Subject"] == "Pool subject"
    assert body_text(message).strip() == f"Pool code {code_in(message)}"
    (event,) = functions.events("cm-unchanged")
    # What the function was given, and gave back: a response whose every part is null.
    assert event["response"] == {"smsMessage": None, "emailMessage": None, "emailSubject": None}


# --- what the function may not do ----------------------------------------------------------------------------


def test_a_failing_function_fails_the_call_and_the_previous_code_still_works(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    arn = functions.add("cm-failing", worded)
    pool_id, client_id = _pool(idp, "cm-failing", arn)
    # A client that does not hide user existence: the resend is sent while the caller waits.
    plain = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="plain", ExplicitAuthFlows=FLOWS)
    plain_id = plain["UserPoolClient"]["ClientId"]
    _sign_up(public_idp, client_id, "kate", "kate@acme.example")
    first = code_in(mail.wait_for("kate@acme.example"))

    def failing(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("Templates are offline")

    functions.add("cm-failing", failing)
    with pytest.raises(ClientError) as refused:
        public_idp.resend_confirmation_code(ClientId=plain_id, Username="kate")
    assert _error(refused) == (
        "UserLambdaValidationException",
        "CustomMessage failed with error Templates are offline.",
    )
    assert len(mail.messages_to("kate@acme.example")) == 1

    # A sign-up whose code cannot be worded does not happen: the name stays free for a retry.
    with pytest.raises(ClientError) as sign_up_refused:
        _sign_up(public_idp, client_id, "liam", "liam@acme.example")
    assert _error(sign_up_refused)[0] == "UserLambdaValidationException"
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.admin_get_user(UserPoolId=pool_id, Username="liam")

    public_idp.confirm_sign_up(ClientId=client_id, Username="kate", ConfirmationCode=first)
    assert _status(idp, pool_id, "kate") == "CONFIRMED"


def test_a_message_without_the_code_is_refused(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    def no_code(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["emailMessage"] = "Welcome aboard!"
        return event

    arn = functions.add("cm-no-code", no_code)
    pool_id, client_id = _pool(idp, "cm-no-code", arn)
    with pytest.raises(ClientError) as refused:
        _sign_up(public_idp, client_id, "mona", "mona@acme.example")
    assert _error(refused) == ("InvalidLambdaResponseException", "Unrecognizable lambda output")
    assert mail.messages_to("mona@acme.example") == []
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.admin_get_user(UserPoolId=pool_id, Username="mona")

    def not_text(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["emailMessage"] = ["{####}"]
        return event

    functions.add("cm-no-code", not_text)
    with pytest.raises(ClientError) as malformed:
        _sign_up(public_idp, client_id, "mona", "mona@acme.example")
    assert _error(malformed) == ("InvalidLambdaResponseException", "Unrecognizable lambda output")


def test_sms_worded_by_the_function_within_its_limit(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, sms_gateway: SmsGateway
) -> None:
    def sms_only(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["smsMessage"] = f"Acme: {event['request']['codeParameter']} is your code"
        return event

    arn = functions.add("cm-sms", sms_only)
    # A pool that sends with Cognito's own account (the default): SMS wording is the function's to give.
    _, client_id = _pool(
        idp, "cm-sms", arn, EmailConfiguration={"EmailSendingAccount": "COGNITO_DEFAULT"},
        AutoVerifiedAttributes=["phone_number"],
    )  # fmt: skip
    public_idp.sign_up(
        ClientId=client_id,
        Username="nora",
        Password=PASSWORD,
        UserAttributes=[{"Name": "phone_number", "Value": "+15555550142"}],
    )
    _, body = sms_gateway.wait_for("+15555550142")
    found = re.fullmatch(r"Acme: (\d{6}) is your code", body["message"])
    assert found, body
    public_idp.confirm_sign_up(ClientId=client_id, Username="nora", ConfirmationCode=found.group(1))

    # An SMS longer than 140 characters is refused.
    def long_sms(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["smsMessage"] = "x" * 140 + event["request"]["codeParameter"]
        return event

    functions.add("cm-sms", long_sms)
    with pytest.raises(ClientError) as too_long:
        public_idp.sign_up(
            ClientId=client_id,
            Username="olga",
            Password=PASSWORD,
            UserAttributes=[{"Name": "phone_number", "Value": "+15555550143"}],
        )
    assert _error(too_long) == ("InvalidLambdaResponseException", "Unrecognizable lambda output")

    assert sms_gateway.messages_to("+15555550143") == []
