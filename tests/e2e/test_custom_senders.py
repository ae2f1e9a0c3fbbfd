"""The custom sender triggers, end to end: a pool's CustomEmailSender and CustomSMSSender functions (tests/fakes/
lambda_service.py, a real HTTP Lambda service) are given the codes and temporary passwords Gatehouse would send,
encrypted with the AWS Encryption SDK under the pool's KMS key in a real KMS API (moto's server). Each function
here decrypts its code as Cognito's developer guide shows (the Encryption SDK's ``decrypt`` with a KMS master key
of that key) and the test uses the code: a sign-up is confirmed, a password reset, a temporary password and an
MFA sign-in go through. Nothing goes to the mail server or the SMS gateway meanwhile."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import aws_encryption_sdk
import pytest
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.key_providers.kms import KMSMasterKey, KMSMasterKeyConfig
from botocore.exceptions import ClientError

from tests.e2e.aws_support import aws_client, moto_server
from tests.e2e.mfa_support import confirmed_user
from tests.e2e.test_delivery import SmsGateway
from tests.fakes.lambda_service import FakeLambda
from tests.support import GatehouseServer, MailServer

PASSWORD = "Custom-sender-1"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
KMS_KEY_ID = "AKIDKMSTEST"
KMS_SECRET = "kms-test-secret"


class Sender:
    """A custom sender function: decrypts each code it is given, as a function behind Cognito does, and keeps it
    with the event."""

    def __init__(self, kms_url: str, key_arn: str) -> None:
        self.key_arn = key_arn
        self.kms = aws_client("kms", kms_url, KMS_KEY_ID, KMS_SECRET)
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        # Cognito's Python example: REQUIRE_ENCRYPT_ALLOW_DECRYPT, a KMS master key of the pool's key; the SDK's
        # default policy, which takes only messages with key commitment, reads the same code.
        key = KMSMasterKey(config=KMSMasterKeyConfig(key_id=self.key_arn, client=self.kms))
        message = base64.b64decode(event["request"]["code"])
        codes = set()
        for policy in (
            CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT,
            CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
        ):
            client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=policy)
            plaintext, _ = client.decrypt(source=message, key_provider=key)
            codes.add(plaintext.decode())
        (code,) = codes
        with self._lock:
            self.sent.append((code, event))

    def last(self, trigger_source: str) -> tuple[str, dict[str, Any]]:
        with self._lock:
            found = [(code, event) for code, event in self.sent if event["triggerSource"] == trigger_source]
        assert found, [event["triggerSource"] for _, event in self.sent]
        return found[-1]


@pytest.fixture(scope="module")
def kms_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("kms")) as url:
        yield url


@pytest.fixture(scope="module")
def key_arn(kms_url: str) -> str:
    return str(aws_client("kms", kms_url, KMS_KEY_ID, KMS_SECRET).create_key()["KeyMetadata"]["Arn"])


@pytest.fixture(scope="module")
def gatehouse(
    tmp_path_factory: pytest.TempPathFactory,
    mail: MailServer,
    functions: FakeLambda,
    sms_gateway: SmsGateway,
    kms_url: str,
) -> Iterator[GatehouseServer]:
    config = f"""version: 1
server:
  smtp:
    host: 127.0.0.1
    port: {mail.port}
  sms_webhook: {{url: {sms_gateway.url}, timeout: 5}}
  kms:
    endpoint_url: {kms_url}
    access_key_id: {KMS_KEY_ID}
    secret_access_key: "${{KMS_SECRET}}"
{functions.server_config()}pools: []
"""
    server = GatehouseServer(
        tmp_path_factory.mktemp("gatehouse") / "data", config=config, extra_env={"KMS_SECRET": KMS_SECRET}
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def sender(functions: FakeLambda, kms_url: str, key_arn: str) -> Sender:
    return Sender(kms_url, key_arn)


def _pool(idp: Any, name: str, lambda_config: dict[str, Any], **settings: Any) -> tuple[str, str]:
    pool_id = str(idp.create_user_pool(PoolName=name, LambdaConfig=lambda_config, **settings)["UserPool"]["Id"])
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def _senders(functions: FakeLambda, name: str, sender: Sender, key_arn: str, *media: str) -> dict[str, Any]:
    arn = functions.add(name, sender)
    config: dict[str, Any] = {"KMSKeyID": key_arn}
    for member in media:
        config[member] = {"LambdaVersion": "V1_0", "LambdaArn": arn}
    return config


def _sign_up(public_idp: Any, client_id: str, username: str, **extra: Any) -> None:
    email = [{"Name": "email", "Value": f"{username}@example.com"}]
    public_idp.sign_up(ClientId=client_id, Username=username, Password=PASSWORD, UserAttributes=email, **extra)


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


# --- the codes reach the function, and work -------------------------------------------------------------------


def test_sign_up_and_password_reset_codes_go_to_the_email_sender(
    idp: Any, public_idp: Any, functions: FakeLambda, sender: Sender, key_arn: str, mail: MailServer
) -> None:
    config = _senders(functions, "email-sender", sender, key_arn, "CustomEmailSender")
    pool_id, client_id = _pool(idp, "email-sender", config, AutoVerifiedAttributes=["email"])
    _sign_up(public_idp, client_id, "ines", ClientMetadata={"campaign": "spring"})
    code, event = sender.last("CustomEmailSender_SignUp")
    assert event["version"] == "1" and event["userPoolId"] == pool_id and event["userName"] == "ines"
    assert event["callerContext"]["clientId"] == client_id
    request = event["request"]
    assert request["type"] == "customEmailSenderRequestV1"
    assert request["clientMetadata"] == {"campaign": "spring"}
    assert request["userAttributes"]["email"] == "ines@example.com"
    assert request["userAttributes"]["cognito:user_status"] == "UNCONFIRMED"
    assert code.isdigit() and request["code"] != code  # never in plain text

    public_idp.resend_confirmation_code(ClientId=client_id, Username="ines")
    resent, _ = sender.last("CustomEmailSender_ResendCode")
    public_idp.confirm_sign_up(ClientId=client_id, Username="ines", ConfirmationCode=resent)
    assert idp.admin_get_user(UserPoolId=pool_id, Username="ines")["UserStatus"] == "CONFIRMED"

    public_idp.forgot_password(ClientId=client_id, Username="ines")
    reset, _ = sender.last("CustomEmailSender_ForgotPassword")
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="ines", ConfirmationCode=reset, Password="Custom-sender-2"
    )
    signed_in = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ines", "PASSWORD": "Custom-sender-2"},
    )
    assert signed_in["AuthenticationResult"]["AccessToken"]
    assert mail.messages_to("ines@example.com") == []


def test_a_changed_email_is_verified_with_the_code_the_function_was_given(
    idp: Any, public_idp: Any, functions: FakeLambda, sender: Sender, key_arn: str, mail: MailServer
) -> None:
    config = _senders(functions, "attr-sender", sender, key_arn, "CustomEmailSender")
    pool_id, client_id = _pool(idp, "attr-sender", config, AutoVerifiedAttributes=["email"])
    confirmed_user(idp, pool_id, "jon", PASSWORD, email="jon@example.com")
    access = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "jon", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["AccessToken"]
    public_idp.update_user_attributes(
        AccessToken=access, UserAttributes=[{"Name": "email", "Value": "jon.new@example.com"}]
    )
    code, event = sender.last("CustomEmailSender_UpdateUserAttribute")
    assert event["request"]["userAttributes"]["email"] == "jon.new@example.com"  # where the code must go
    public_idp.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
    attributes = {
        a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=pool_id, Username="jon")["UserAttributes"]
    }
    assert attributes["email"] == "jon.new@example.com" and attributes["email_verified"] == "true"

    public_idp.get_user_attribute_verification_code(AccessToken=access, AttributeName="email")
    assert sender.last("CustomEmailSender_VerifyUserAttribute")[0].isdigit()
    assert mail.messages_to("jon.new@example.com") == []


def test_an_invitation_and_an_sms_mfa_code_go_to_the_sms_sender(
    idp: Any,
    public_idp: Any,
    functions: FakeLambda,
    sender: Sender,
    key_arn: str,
    mail: MailServer,
    sms_gateway: SmsGateway,
) -> None:
    config = _senders(functions, "sms-sender", sender, key_arn, "CustomSMSSender")
    pool_id, client_id = _pool(idp, "sms-sender", config)
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="ON",
        SmsMfaConfiguration={"SmsAuthenticationMessage": "Your code is {####}"},
    )
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="kai",
        UserAttributes=[
            {"Name": "phone_number", "Value": "+15550100"},
            {"Name": "phone_number_verified", "Value": "true"},
            {"Name": "email", "Value": "kai@example.com"},
        ],
        DesiredDeliveryMediums=["SMS"],
    )
    temporary, event = sender.last("CustomSMSSender_AdminCreateUser")
    assert event["request"]["type"] == "customSMSSenderRequestV1"
    assert event["request"]["userAttributes"]["phone_number"] == "+15550100"
    challenge = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "kai", "PASSWORD": temporary}
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    mfa = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "kai", "NEW_PASSWORD": PASSWORD},
    )
    assert mfa["ChallengeName"] == "SMS_MFA"
    code, _ = sender.last("CustomSMSSender_Authentication")
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="SMS_MFA",
        Session=mfa["Session"],
        ChallengeResponses={"USERNAME": "kai", "SMS_MFA_CODE": code},
    )
    assert done["AuthenticationResult"]["AccessToken"]
    assert [body for _, body in sms_gateway.received if body.get("to") == "+15550100"] == []
    assert mail.messages_to("kai@example.com") == []


def test_a_medium_without_a_sender_is_still_sent_by_gatehouse(
    idp: Any, public_idp: Any, functions: FakeLambda, sender: Sender, key_arn: str, mail: MailServer
) -> None:
    config = _senders(functions, "sms-only", sender, key_arn, "CustomSMSSender")
    _, client_id = _pool(idp, "sms-only", config, AutoVerifiedAttributes=["email"])
    _sign_up(public_idp, client_id, "lea")
    assert mail.wait_for("lea@example.com")
    assert sender.sent == []


# --- failures ---------------------------------------------------------------------------------------------------


def test_a_sender_that_fails_fails_the_call_and_the_old_code_keeps_working(
    idp: Any, public_idp: Any, functions: FakeLambda, sender: Sender, key_arn: str
) -> None:
    config = _senders(functions, "flaky-sender", sender, key_arn, "CustomEmailSender")
    pool_id, client_id = _pool(idp, "flaky-sender", config, AutoVerifiedAttributes=["email"])
    confirmed_user(idp, pool_id, "max", PASSWORD, email="max@example.com", email_verified="true")
    public_idp.forgot_password(ClientId=client_id, Username="max")
    first, _ = sender.last("CustomEmailSender_ForgotPassword")

    def down(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("provider down")

    functions.add("flaky-sender", down)
    with pytest.raises(ClientError) as failed:
        public_idp.forgot_password(ClientId=client_id, Username="max")
    assert _error(failed) == ("UserLambdaValidationException", "CustomEmailSender failed with error provider down.")
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="max", ConfirmationCode=first, Password="Custom-sender-3"
    )


def test_a_key_kms_does_not_have_sends_nothing(
    idp: Any, public_idp: Any, functions: FakeLambda, sender: Sender, key_arn: str
) -> None:
    missing = key_arn.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    config = _senders(functions, "keyless-sender", sender, missing, "CustomEmailSender")
    _, client_id = _pool(idp, "keyless-sender", config, AutoVerifiedAttributes=["email"])
    with pytest.raises(ClientError) as failed:
        _sign_up(public_idp, client_id, "ned")
    assert _error(failed)[0] == "CodeDeliveryFailureException"
    assert sender.sent == []


def test_a_sender_needs_a_kms_key(idp: Any, functions: FakeLambda, sender: Sender, key_arn: str) -> None:
    arn = functions.add("unkeyed", sender)
    with pytest.raises(ClientError) as unkeyed:
        _pool(idp, "unkeyed", {"CustomEmailSender": {"LambdaVersion": "V1_0", "LambdaArn": arn}})
    assert _error(unkeyed) == (
        "InvalidParameterException",
        "CustomEmailSender needs a KMSKeyID to encrypt the codes it is sent.",
    )
    with pytest.raises(ClientError) as not_a_key:
        _pool(
            idp,
            "not-a-key",
            {"CustomSMSSender": {"LambdaVersion": "V1_0", "LambdaArn": arn}, "KMSKeyID": arn},
        )
    assert _error(not_a_key)[0] == "InvalidParameterException"
    pool_id, _ = _pool(idp, "keyed", _senders(functions, "keyed", sender, key_arn, "CustomEmailSender"))
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"]
    assert described["KMSKeyID"] == key_arn
    assert described["CustomEmailSender"] == {"LambdaVersion": "V1_0", "LambdaArn": functions.arn("keyed")}
