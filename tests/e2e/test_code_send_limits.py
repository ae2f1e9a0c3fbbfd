"""The per-user limit on one-time codes sent, through boto3 against a real two-worker server whose config
allows 3 codes per user per hour: ForgotPassword, ResendConfirmationCode and GetUserAttributeVerificationCode
answer LimitExceededException past it (and send nothing), SMS MFA sign-in answers TooManyRequestsException,
the code already sent still works, other users are untouched, and an unknown name is limited like a known one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.mfa_support import confirmed_user
from tests.support import GatehouseServer, MailServer, code_in

PASSWORD = "Limited-Pass-1"
LIMIT = 3
MESSAGE = "Attempt limit exceeded, please try after some time."


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("code-limits") / "data"
    config = f"""version: 1
server:
  smtp: {{host: 127.0.0.1, port: {mail.port}}}
  code_send_limits: {{max_codes: {LIMIT}, window_seconds: 3600}}
pools: []
"""
    server = GatehouseServer(data_dir, config=config, workers=2)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(idp: Any) -> tuple[str, str]:
    pool_id = idp.create_user_pool(PoolName="limited", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SmsMfaConfiguration={"SmsAuthenticationMessage": "{####}"}
    )
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="ENABLED",
    )["UserPoolClient"]
    return pool_id, client["ClientId"]


def make_user(idp: Any, pool_id: str, username: str, **attributes: str) -> None:
    confirmed_user(idp, pool_id, username, PASSWORD, **attributes)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def sms_count(server: GatehouseServer, phone: str) -> int:
    path = server.data_dir / "outbox.jsonl"
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if json.loads(line).get("to") == phone)


def test_forgot_password_past_the_limit(idp: Any, public_idp: Any, mail: MailServer, pool: tuple[str, str]) -> None:
    pool_id, client_id = pool
    address = "forgetful@example.com"
    make_user(idp, pool_id, "forgetful", email=address, email_verified="true")
    for _ in range(LIMIT):
        public_idp.forgot_password(ClientId=client_id, Username="forgetful")
    last_code = code_in(mail.wait_for(address, count=LIMIT))
    with pytest.raises(ClientError) as exc:
        public_idp.forgot_password(ClientId=client_id, Username="forgetful")
    assert error_of(exc) == ("LimitExceededException", MESSAGE, 400)
    assert len(mail.messages_to(address)) == LIMIT  # nothing more was sent
    # The last code sent still resets the password.
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="forgetful", ConfirmationCode=last_code, Password="Reset-Pass-123"
    )
    public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "forgetful", "PASSWORD": "Reset-Pass-123"},
    )
    # Another user has a budget of their own.
    make_user(idp, pool_id, "bystander", email="bystander@example.com", email_verified="true")
    public_idp.forgot_password(ClientId=client_id, Username="bystander")


def test_an_unknown_name_is_limited_like_a_known_one(public_idp: Any, pool: tuple[str, str]) -> None:
    _, client_id = pool
    for _ in range(LIMIT):
        delivery = public_idp.forgot_password(ClientId=client_id, Username="nobody-here")["CodeDeliveryDetails"]
        assert delivery["DeliveryMedium"] == "EMAIL"
    with pytest.raises(ClientError) as exc:
        public_idp.forgot_password(ClientId=client_id, Username="nobody-here")
    assert error_of(exc) == ("LimitExceededException", MESSAGE, 400)


def test_resend_confirmation_code_past_the_limit(public_idp: Any, mail: MailServer, pool: tuple[str, str]) -> None:
    _, client_id = pool
    address = "newcomer@example.com"
    public_idp.sign_up(
        ClientId=client_id,
        Username="newcomer",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": address}],
    )
    for _ in range(LIMIT):
        public_idp.resend_confirmation_code(ClientId=client_id, Username="newcomer")
    with pytest.raises(ClientError) as exc:
        public_idp.resend_confirmation_code(ClientId=client_id, Username="newcomer")
    assert error_of(exc) == ("LimitExceededException", MESSAGE, 400)
    assert len(mail.messages_to(address)) == LIMIT + 1  # the sign-up's own code, then three resent
    code = code_in(mail.wait_for(address, count=LIMIT + 1))
    public_idp.confirm_sign_up(ClientId=client_id, Username="newcomer", ConfirmationCode=code)


def test_codes_of_every_kind_share_one_budget(
    idp: Any, public_idp: Any, mail: MailServer, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    address = "mixer@example.com"
    make_user(idp, pool_id, "mixer", email=address, email_verified="true")
    token = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "mixer", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["AccessToken"]
    public_idp.forgot_password(ClientId=client_id, Username="mixer")
    public_idp.forgot_password(ClientId=client_id, Username="mixer")
    public_idp.get_user_attribute_verification_code(AccessToken=token, AttributeName="email")
    with pytest.raises(ClientError) as exc:
        public_idp.get_user_attribute_verification_code(AccessToken=token, AttributeName="email")
    assert error_of(exc) == ("LimitExceededException", MESSAGE, 400)
    with pytest.raises(ClientError) as exc:
        public_idp.forgot_password(ClientId=client_id, Username="mixer")
    assert error_of(exc)[0] == "LimitExceededException"
    assert len(mail.messages_to(address)) == LIMIT


def test_sms_mfa_sign_in_past_the_limit(
    idp: Any, public_idp: Any, gatehouse: GatehouseServer, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    phone = "+15550109999"
    make_user(idp, pool_id, "texter", phone_number=phone)
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username="texter", SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    params = {"USERNAME": "texter", "PASSWORD": PASSWORD}
    for _ in range(LIMIT):
        challenge = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params)
        assert challenge["ChallengeName"] == "SMS_MFA"
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params)
    assert error_of(exc) == ("TooManyRequestsException", MESSAGE, 400)
    assert sms_count(gatehouse, phone) == LIMIT


def test_passwordless_codes_past_the_limit_known_or_unknown(idp: Any, public_idp: Any, mail: MailServer) -> None:
    pool_id = idp.create_user_pool(
        PoolName="limited-otp", Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}}
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="ENABLED",
    )["UserPoolClient"]["ClientId"]
    make_user(idp, pool_id, "otter", email="otter@example.com", email_verified="true")
    # An unknown name shaped like an address is always offered that address's code, as a real user found by it.
    for name in ("otter", "unknown-otter@example.com"):
        params = {"USERNAME": name, "PREFERRED_CHALLENGE": "EMAIL_OTP"}
        for _ in range(LIMIT):
            challenge = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters=params)
            assert challenge["ChallengeName"] == "EMAIL_OTP"
        with pytest.raises(ClientError) as exc:
            public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters=params)
        assert error_of(exc) == ("TooManyRequestsException", MESSAGE, 400)
    assert len(mail.messages_to("otter@example.com")) == LIMIT
