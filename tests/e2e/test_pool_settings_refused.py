"""Pool settings that cannot work are refused when they are set, as Cognito refuses them, and a refused call
changes nothing: MFA that no factor can satisfy, first factors without the password, schemas that contradict
the standard attributes, birthdates that are no dates, tokens that outlive their refresh token. And the
recovery channel of a pool with no AccountRecoverySetting is Cognito's legacy one (SMS before email).

Real server, real boto3. Spec: the Cognito API reference (UpdateUserPool, SetUserPoolMfaConfig,
SignInPolicyType, SchemaAttributeType, AccountRecoverySettingType, the app client's token expiration), OpenID
Connect Core 1.0 §5.1 (birthdate) and botocore's cognito-idp model for the error types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.config_file import ConfigError, load_config
from tests.support import GatehouseServer, MailServer

PASSWORD = "Settings-pass-123"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
SMS_CONFIGURATION = {"SnsCallerArn": "arn:aws:iam::123456789012:role/sms", "ExternalId": "gatehouse"}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


def described_pool(idp: Any, pool_id: str) -> dict[str, Any]:
    described = dict(idp.describe_user_pool(UserPoolId=pool_id)["UserPool"])
    for volatile in ("LastModifiedDate", "EstimatedNumberOfUsers"):
        described.pop(volatile, None)
    return described


def pool_names(idp: Any) -> list[str]:
    return [str(p["Name"]) for p in idp.list_user_pools(MaxResults=60)["UserPools"]]


def new_pool(idp: Any, name: str, **members: Any) -> str:
    return str(idp.create_user_pool(PoolName=name, **members)["UserPool"]["Id"])


def new_client(idp: Any, pool_id: str, **members: Any) -> str:
    return str(
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS, **members)[
            "UserPoolClient"
        ]["ClientId"]
    )


# --- MFA: a mode needs a factor ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ON", "OPTIONAL"])
def test_update_user_pool_refuses_mfa_without_a_factor(idp: Any, mode: str) -> None:
    """UpdateUserPool with MfaConfiguration ON or OPTIONAL and no factor enabled (none by SetUserPoolMfaConfig,
    no SmsConfiguration given) would leave sign-in failing with InvalidUserPoolConfigurationException (ON) or
    users unable to turn MFA on (OPTIONAL): Cognito refuses it, and the pool keeps MFA off."""
    pool_id = new_pool(idp, f"mfa-update-{mode.lower()}")
    before = described_pool(idp, pool_id)
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, MfaConfiguration=mode)
    assert error_of(exc) == ("InvalidParameterException", 400)
    assert described_pool(idp, pool_id) == before
    assert idp.get_user_pool_mfa_config(UserPoolId=pool_id)["MfaConfiguration"] == "OFF"

    # Once SetUserPoolMfaConfig has enabled a factor, UpdateUserPool may ask for MFA.
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    idp.update_user_pool(UserPoolId=pool_id, MfaConfiguration=mode)
    config = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    assert (config["MfaConfiguration"], config["SoftwareTokenMfaConfiguration"]) == (mode, {"Enabled": True})


def test_update_user_pool_with_an_sms_configuration_turns_sms_mfa_on(idp: Any) -> None:
    """UpdateUserPool with MFA and an SmsConfiguration is how SMS MFA is turned on without SetUserPoolMfaConfig:
    the factor is then offered (GetUserPoolMfaConfig names it), so the mode is one users can satisfy."""
    pool_id = new_pool(idp, "mfa-update-sms")
    idp.update_user_pool(
        UserPoolId=pool_id,
        MfaConfiguration="ON",
        SmsConfiguration=SMS_CONFIGURATION,
        SmsAuthenticationMessage="Your code is {####}",
    )
    config = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    assert config["MfaConfiguration"] == "ON"
    assert config["SmsMfaConfiguration"]["SmsAuthenticationMessage"] == "Your code is {####}"
    assert config["SmsMfaConfiguration"]["SmsConfiguration"] == SMS_CONFIGURATION
    # CreateUserPool likewise.
    created = new_pool(idp, "mfa-create-sms", MfaConfiguration="OPTIONAL", SmsConfiguration=SMS_CONFIGURATION)
    config = idp.get_user_pool_mfa_config(UserPoolId=created)
    assert config["MfaConfiguration"] == "OPTIONAL"
    assert config["SmsMfaConfiguration"] == {"SmsConfiguration": SMS_CONFIGURATION}
    assert "SmsMfaConfiguration" not in described_pool(idp, created)


def test_set_user_pool_mfa_config_refuses_optional_mfa_without_a_factor(idp: Any) -> None:
    """SetUserPoolMfaConfig: "can't disable all MFAs with a required or optional configuration" -- OPTIONAL with
    no factor, or the last factor turned off while OPTIONAL, is refused as ON is."""
    pool_id = new_pool(idp, "mfa-optional-nothing")
    with pytest.raises(ClientError) as exc:
        idp.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration="OPTIONAL")
    assert error_of(exc) == ("InvalidParameterException", 400)
    assert idp.get_user_pool_mfa_config(UserPoolId=pool_id)["MfaConfiguration"] == "OFF"

    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    with pytest.raises(ClientError) as last:
        idp.set_user_pool_mfa_config(UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": False})
    assert error_of(last) == ("InvalidParameterException", 400)
    config = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    assert (config["MfaConfiguration"], config["SoftwareTokenMfaConfiguration"]) == ("OPTIONAL", {"Enabled": True})
    # Turning MFA off and the factor with it is fine.
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OFF", SoftwareTokenMfaConfiguration={"Enabled": False}
    )
    assert idp.get_user_pool_mfa_config(UserPoolId=pool_id)["MfaConfiguration"] == "OFF"


# --- SignInPolicy: the password stays a first factor ---------------------------------------------------------


@pytest.mark.parametrize(
    "factors",
    [["EMAIL_OTP"], ["WEB_AUTHN", "SMS_OTP"], ["PASSWORD", "SOFTWARE_TOKEN"], ["PASSWORD", "EMAIL_OTP", "EMAIL_OTP"]],
)
def test_first_factors_must_include_the_password(idp: Any, factors: list[str]) -> None:
    """AllowedFirstAuthFactors must name PASSWORD (choice-based sign-in adds factors beside it), each factor
    once, and never SOFTWARE_TOKEN ("not currently supported as a first auth factor"). Refused on
    CreateUserPool (no pool made) and on UpdateUserPool (the pool unchanged)."""
    policies = {"SignInPolicy": {"AllowedFirstAuthFactors": factors}}
    name = f"factors-{'-'.join(f.lower() for f in factors)}"
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName=name, Policies=policies)
    assert error_of(exc) == ("InvalidParameterException", 400)
    assert name not in pool_names(idp)

    pool_id = new_pool(idp, f"{name}-update")
    before = described_pool(idp, pool_id)
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, Policies=policies)
    assert error_of(exc) == ("InvalidParameterException", 400)
    assert described_pool(idp, pool_id) == before
    assert before["Policies"]["SignInPolicy"] == {"AllowedFirstAuthFactors": ["PASSWORD"]}


# --- Schema: the standard attributes keep their nature --------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        [{"Name": "email", "AttributeDataType": "Number"}],
        [{"Name": "email_verified", "AttributeDataType": "String"}],
        [{"Name": "updated_at", "AttributeDataType": "DateTime"}],
        [{"Name": "email", "Required": True}, {"Name": "email", "Required": False}],
        [{"Name": "email_verified", "AttributeDataType": "Boolean", "Required": True}],
        [{"Name": "phone_number", "AttributeDataType": "Boolean"}],
        [{"Name": "identities", "AttributeDataType": "String", "Required": True}],
    ],
)
def test_a_schema_cannot_contradict_the_standard_attributes(idp: Any, schema: list[dict[str, Any]]) -> None:
    """A standard attribute keeps its data type; it is described once; and the attributes Cognito sets itself
    (email_verified, identities; phone_number_verified is longer than the model lets a schema name) cannot be
    required -- no one gives them at sign-up, so a pool requiring one could sign nobody up. No pool is made."""
    name = f"schema-{schema[0]['Name']}-{len(schema)}-{schema[0].get('AttributeDataType', 'x')}"
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName=name, Schema=schema)
    assert error_of(exc) == ("InvalidParameterException", 400)
    assert name not in pool_names(idp)


def test_a_standard_attribute_restated_as_it_is_is_accepted(idp: Any) -> None:
    """The standard entries as DescribeUserPool gives them (what templates copy back) are accepted, sub too."""
    pool_id = new_pool(
        idp,
        "schema-restated",
        Schema=[
            {"Name": "sub", "AttributeDataType": "String", "Mutable": False, "Required": True},
            {"Name": "email", "AttributeDataType": "String", "Required": True},
            {"Name": "email_verified", "AttributeDataType": "Boolean", "Required": False},
        ],
    )
    attributes = {a["Name"]: a for a in described_pool(idp, pool_id)["SchemaAttributes"]}
    assert attributes["email"]["Required"] is True and attributes["email_verified"]["Required"] is False
    assert attributes["sub"]["Required"] is True and attributes["sub"]["Mutable"] is False


# --- birthdate: a date ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def birthdate_pool(idp: Any) -> tuple[str, str]:
    pool_id = new_pool(idp, "birthdates")
    return pool_id, new_client(idp, pool_id)


# The last: fullwidth digits, which str.isdigit and Unicode \d take for digits.
NOT_DATES = ["1990/01/31", "31-01-1990", "1990-13-01", "1990-02-30", "1990-1-031", "\uff11\uff19\uff19\uff10-01-31"]


@pytest.mark.parametrize("value", NOT_DATES)
def test_a_birthdate_that_is_no_date_is_refused(
    idp: Any, public_idp: Any, birthdate_pool: tuple[str, str], value: str
) -> None:
    """OIDC Core §5.1: birthdate is "ISO 8601 YYYY-MM-DD format"; Cognito's schema gives it ten
    characters. Anything else is refused at sign-up, by an administrator and on update, and nothing is stored."""
    pool_id, client_id = birthdate_pool
    username = f"born-{abs(hash(value)) % 100000}"
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(
            ClientId=client_id,
            Username=username,
            Password=PASSWORD,
            UserAttributes=[{"Name": "birthdate", "Value": value}],
        )
    assert error_of(exc) == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "birthdate", "Value": value}],
        )
    assert error_of(exc) == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as missing:
        idp.admin_get_user(UserPoolId=pool_id, Username=username)
    assert error_of(missing)[0] == "UserNotFoundException"

    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "birthdate", "Value": "1990-01-31"}],
    )
    with pytest.raises(ClientError) as exc:
        idp.admin_update_user_attributes(
            UserPoolId=pool_id, Username=username, UserAttributes=[{"Name": "birthdate", "Value": value}]
        )
    assert error_of(exc) == ("InvalidParameterException", 400)
    stored = idp.admin_get_user(UserPoolId=pool_id, Username=username)["UserAttributes"]
    assert {a["Name"]: a["Value"] for a in stored}["birthdate"] == "1990-01-31"
    idp.admin_delete_user(UserPoolId=pool_id, Username=username)


@pytest.mark.parametrize("value", ["1990-01-31", "2000-02-29", "0000-02-29", "0000-12-24"])
def test_a_birthdate_in_oidc_form_is_accepted(public_idp: Any, birthdate_pool: tuple[str, str], value: str) -> None:
    """YYYY-MM-DD, with the year 0000 when the user withholds it (OIDC Core §5.1)."""
    _, client_id = birthdate_pool
    public_idp.sign_up(
        ClientId=client_id,
        Username=f"dated-{value}",
        Password=PASSWORD,
        UserAttributes=[{"Name": "birthdate", "Value": value}],
    )


# --- Token lifetimes: none outlives the refresh token --------------------------------------------------------


@pytest.mark.parametrize("token", ["AccessToken", "IdToken"])
def test_a_token_cannot_outlive_the_refresh_token(idp: Any, token: str) -> None:
    """ID and access token expiration "cannot be greater than refresh token expiration": a refresh token of an
    hour with tokens of a day is refused on CreateUserPoolClient (no client made) and UpdateUserPoolClient
    (the client unchanged); the same lifetimes are fine."""
    pool_id = new_pool(idp, f"lifetimes-{token.lower()}")
    longer = {
        f"{token}Validity": 1,
        "RefreshTokenValidity": 60,
        "TokenValidityUnits": {token: "days", "RefreshToken": "minutes"},
    }
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName="outlived", **longer)
    assert error_of(exc) == ("InvalidParameterException", 400)
    assert idp.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"] == []

    client_id = new_client(idp, pool_id)
    before = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, ExplicitAuthFlows=FLOWS, **longer)
    assert error_of(exc) == ("InvalidParameterException", 400)
    assert idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"] == before

    equal = {
        f"{token}Validity": 60,
        "RefreshTokenValidity": 60,
        "TokenValidityUnits": {token: "minutes", "RefreshToken": "minutes"},
    }
    updated = idp.update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, ExplicitAuthFlows=FLOWS, **equal)
    assert updated["UserPoolClient"]["RefreshTokenValidity"] == 60


# --- Account recovery without a setting: SMS first -----------------------------------------------------------


def test_without_a_recovery_setting_the_reset_code_goes_by_sms_first(
    idp: Any, public_idp: Any, gatehouse: GatehouseServer, mail: MailServer
) -> None:
    """AccountRecoverySettingType: "In the absence of this setting, Amazon Cognito uses the legacy behavior to
    determine the recovery method where SMS is preferred through email." A user with a verified phone and a
    verified email gets the code by SMS; one with only a verified email gets it by email."""
    pool_id = new_pool(idp, "legacy-recovery")
    assert "AccountRecoverySetting" not in described_pool(idp, pool_id)
    client_id = new_client(idp, pool_id)

    def make(username: str, attributes: dict[str, str]) -> None:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
        )
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)

    both = {
        "email": "both@example.com",
        "email_verified": "true",
        "phone_number": "+15555550177",
        "phone_number_verified": "true",
    }
    make("both", both)
    make("mail-only", {"email": "mail-only@example.com", "email_verified": "true"})

    delivery = public_idp.forgot_password(ClientId=client_id, Username="both")["CodeDeliveryDetails"]
    assert (delivery["DeliveryMedium"], delivery["AttributeName"]) == ("SMS", "phone_number")
    delivery = public_idp.forgot_password(ClientId=client_id, Username="mail-only")["CodeDeliveryDetails"]
    assert (delivery["DeliveryMedium"], delivery["AttributeName"]) == ("EMAIL", "email")
    mail.wait_for("mail-only@example.com")
    assert mail.messages_to("both@example.com") == []


# --- The config file names the same mistakes before anything is applied ---------------------------------------

CONFIG_POOL = """\
version: 1
pools:
  - id: us-east-1_Settings1
    name: settings
"""


@pytest.mark.parametrize(
    ("extra", "where", "expected"),
    [
        ("    mfa: {mode: OPTIONAL}\n", "pools[0].mfa", "at least one factor"),
        ("    sign_in: {first_factors: [EMAIL_OTP, WEB_AUTHN]}\n", "pools[0].sign_in.first_factors", "PASSWORD"),
        (
            "    clients:\n      - {id: app1, name: app, access_token_validity: 1d, refresh_token_validity: 60m}\n",
            "pools[0].clients[0].access_token_validity",
            "at most refresh_token_validity",
        ),
        (
            "    clients:\n      - {id: app1, name: app, id_token_validity: 2h, refresh_token_validity: 1h}\n",
            "pools[0].clients[0].id_token_validity",
            "at most refresh_token_validity",
        ),
    ],
)
def test_the_config_file_names_settings_that_cannot_work(tmp_path: Path, extra: str, where: str, expected: str) -> None:
    """What the API refuses, a config file is told at load time, with the key to fix."""
    path = tmp_path / "gatehouse.yaml"
    path.write_text(CONFIG_POOL + extra)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert f"{where}:" in message and expected in message, message
