"""Hostile cases on user-pool administration: what UpdateUserPool and UpdateUserPoolClient may change, and the
attribute settings a pool and its clients accept. Real server, real boto3 (and SigV4-signed raw JSON for
members botocore's model does not let boto3 send); each refused call is checked to have changed nothing.

Spec: the Cognito API reference (UpdateUserPool, UpdateUserPoolClient, UserPoolClientType.WriteAttributes,
SchemaAttributeType), the developer guide's "Updating user pool and app client configuration" (settings fixed at
creation) and botocore's cognito-idp model for the error types.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer, MailServer

PASSWORD = "Hostile-pass-123"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        str(response["Error"]["Code"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
        str(response["Error"].get("Message", "")),
    )


def signed_call(gatehouse: GatehouseServer, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """An admin call with a JSON body as written, signed with the admin credentials (SigV4)."""
    data = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
    }
    request = AWSRequest(method="POST", url=gatehouse.url + "/", data=data, headers=headers)
    SigV4Auth(Credentials(ADMIN_KEY_ID, ADMIN_SECRET), "cognito-idp", REGION).add_auth(request)
    sent = urllib.request.Request(gatehouse.url + "/", data=data, headers=dict(request.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:
            return response.status, dict(json.loads(response.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        return exc.code, dict(json.loads(exc.read() or b"{}"))


def described_pool(idp: Any, pool_id: str) -> dict[str, Any]:
    described = dict(idp.describe_user_pool(UserPoolId=pool_id)["UserPool"])
    for volatile in ("LastModifiedDate", "EstimatedNumberOfUsers"):
        described.pop(volatile, None)
    return described


def described_client(idp: Any, pool_id: str, client_id: str) -> dict[str, Any]:
    return dict(idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"])


# --- UpdateUserPool: settings fixed at creation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "members",
    [
        {"UsernameAttributes": ["email"]},
        {"AliasAttributes": ["email", "preferred_username"]},
        {"UsernameConfiguration": {"CaseSensitive": False}},
        {"Schema": [{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": False}]},
    ],
)
def test_update_user_pool_cannot_change_how_users_are_named(
    idp: Any, gatehouse: GatehouseServer, members: dict[str, Any]
) -> None:
    """UpdateUserPool has no UsernameAttributes, AliasAttributes, UsernameConfiguration or Schema member: Cognito
    fixes them at creation ("Settings you can't change"). Sent anyway in the JSON, they are ignored like any
    unknown member -- never written, which would rename every existing user's sign-in."""
    pool_id = idp.create_user_pool(PoolName="named-by-username")["UserPool"]["Id"]
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="Plain-Name",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "plain@example.com"}],
    )
    before = described_pool(idp, pool_id)

    status, _ = signed_call(gatehouse, "UpdateUserPool", {"UserPoolId": pool_id, **members})

    assert status == 200
    after = described_pool(idp, pool_id)
    for member in ("UsernameAttributes", "AliasAttributes", "UsernameConfiguration", "SchemaAttributes"):
        assert after.get(member) == before.get(member)
    # Users are still named as the pool was created: a plain (case-sensitive) username, no email alias.
    assert idp.admin_get_user(UserPoolId=pool_id, Username="Plain-Name")["Username"] == "Plain-Name"
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username="plain-name")
    assert error_of(exc)[:2] == ("UserNotFoundException", 400)
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username="plain@example.com")
    assert error_of(exc)[:2] == ("UserNotFoundException", 400)
    idp.admin_create_user(UserPoolId=pool_id, Username="another-plain-name", MessageAction="SUPPRESS")


def test_update_user_pool_keeps_an_email_username_pool_as_it_was(idp: Any, gatehouse: GatehouseServer) -> None:
    """The other way round: a pool whose users sign in with their email cannot be turned into an alias pool."""
    pool_id = idp.create_user_pool(PoolName="named-by-email", UsernameAttributes=["email"])["UserPool"]["Id"]
    before = described_pool(idp, pool_id)
    status, _ = signed_call(
        gatehouse,
        "UpdateUserPool",
        {"UserPoolId": pool_id, "AliasAttributes": ["preferred_username"], "UsernameAttributes": []},
    )
    assert status == 200
    after = described_pool(idp, pool_id)
    assert after["UsernameAttributes"] == before["UsernameAttributes"] == ["email"]
    assert "AliasAttributes" not in after
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(UserPoolId=pool_id, Username="not-an-address", MessageAction="SUPPRESS")
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)


# --- UpdateUserPoolClient: the client secret -----------------------------------------------------------------------


def test_update_user_pool_client_cannot_set_or_replace_the_secret(idp: Any, gatehouse: GatehouseServer) -> None:
    """A client's secret is fixed at creation (GenerateSecret is a CreateUserPoolClient member only): an update
    carrying GenerateSecret or ClientSecret neither gives a public client a secret nor replaces one. Members
    left out return to their defaults, as the API reference warns."""
    pool_id = idp.create_user_pool(PoolName="client-secret")["UserPool"]["Id"]
    public = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="public")["UserPoolClient"]["ClientId"]
    confidential = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="confidential",
        GenerateSecret=True,
        ExplicitAuthFlows=FLOWS,
        AccessTokenValidity=2,
    )["UserPoolClient"]
    for client_id in (public, confidential["ClientId"]):
        status, _ = signed_call(
            gatehouse,
            "UpdateUserPoolClient",
            {
                "UserPoolId": pool_id,
                "ClientId": client_id,
                "GenerateSecret": True,
                "ClientSecret": "a-secret-the-caller-chose-0123456789",
            },
        )
        assert status == 200
    assert "ClientSecret" not in described_client(idp, pool_id, public)
    after = described_client(idp, pool_id, confidential["ClientId"])
    assert after["ClientSecret"] == confidential["ClientSecret"]
    # Left out of the update: back to the defaults.
    assert after["AccessTokenValidity"] == 60
    assert after["ExplicitAuthFlows"] == ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_CUSTOM_AUTH"]


# --- WriteAttributes ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def required_pool(idp: Any) -> str:
    """A pool whose users must give a name and an email address."""
    return str(
        idp.create_user_pool(
            PoolName="required-attrs",
            Schema=[
                {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
                {"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True},
                {"Name": "tier", "AttributeDataType": "String"},
            ],
        )["UserPool"]["Id"]
    )


@pytest.mark.parametrize(
    "write_attributes",
    [
        ["name"],  # email is required but not writable
        ["custom:tier"],
        ["email", "name", "sub"],  # nobody writes sub
    ],
)
def test_write_attributes_must_let_users_give_required_attributes(
    idp: Any, required_pool: str, write_attributes: list[str]
) -> None:
    """A client whose WriteAttributes leave out a required attribute could sign nobody up (SignUp must carry
    every required attribute, and the client may not write it), and `sub` is written by nobody: Cognito
    refuses both, "Invalid write attributes specified while creating a client" (or updating)."""
    before = {c["ClientId"] for c in idp.list_user_pool_clients(UserPoolId=required_pool)["UserPoolClients"]}
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool_client(UserPoolId=required_pool, ClientName="narrow", WriteAttributes=write_attributes)
    code, status, message = error_of(exc)
    assert (code, status) == ("InvalidParameterException", 400)
    assert "write attributes" in message and "creating" in message
    after = {c["ClientId"] for c in idp.list_user_pool_clients(UserPoolId=required_pool)["UserPoolClients"]}
    assert after == before

    client_id = idp.create_user_pool_client(
        UserPoolId=required_pool, ClientName="wide", WriteAttributes=["email", "name", "custom:tier"]
    )["UserPoolClient"]["ClientId"]
    kept = described_client(idp, required_pool, client_id)
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool_client(
            UserPoolId=required_pool, ClientId=client_id, ClientName="renamed", WriteAttributes=write_attributes
        )
    code, status, message = error_of(exc)
    assert (code, status) == ("InvalidParameterException", 400)
    assert "write attributes" in message and "updating" in message
    assert described_client(idp, required_pool, client_id) == kept


def test_a_client_writing_the_required_attributes_signs_users_up(idp: Any, public_idp: Any, required_pool: str) -> None:
    """The accepted case: WriteAttributes naming every required attribute (or none given, every standard
    attribute writable) lets a user sign up with them."""
    listed = idp.create_user_pool_client(
        UserPoolId=required_pool, ClientName="listed", WriteAttributes=["email", "name"], ExplicitAuthFlows=FLOWS
    )["UserPoolClient"]
    assert listed["WriteAttributes"] == ["email", "name"]
    default = idp.create_user_pool_client(UserPoolId=required_pool, ClientName="default", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]
    assert "WriteAttributes" not in default
    for number, client in enumerate((listed, default)):
        public_idp.sign_up(
            ClientId=client["ClientId"],
            Username=f"signer-{number}",
            Password=PASSWORD,
            UserAttributes=[
                {"Name": "email", "Value": f"signer-{number}@example.com"},
                {"Name": "name", "Value": "Signer"},
            ],
        )
        user = idp.admin_get_user(UserPoolId=required_pool, Username=f"signer-{number}")
        assert user["UserStatus"] == "UNCONFIRMED"


# --- token validity units ----------------------------------------------------------------------------------------


def test_a_token_validity_sent_without_its_unit_is_in_the_apis_default_unit(
    idp: Any, public_idp: Any, required_pool: str
) -> None:
    """ "The default time unit for AccessTokenValidity in an API request is hours" (IdTokenValidity too, days for
    RefreshTokenValidity; TokenValidityUnitsType). AccessTokenValidity=2 is two hours, not two minutes -- which
    would be under the five-minute floor -- and 25 is over the one-day ceiling. Left out, a token lives one hour,
    described as 60 minutes."""
    created = idp.create_user_pool_client(
        UserPoolId=required_pool,
        ClientName="unitless",
        ExplicitAuthFlows=FLOWS,
        AccessTokenValidity=2,
        IdTokenValidity=3,
        RefreshTokenValidity=1,
    )["UserPoolClient"]
    assert (created["AccessTokenValidity"], created["IdTokenValidity"], created["RefreshTokenValidity"]) == (2, 3, 1)
    assert created["TokenValidityUnits"] == {"AccessToken": "hours", "IdToken": "hours", "RefreshToken": "days"}
    idp.admin_create_user(
        UserPoolId=required_pool,
        Username="timed",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "timed@example.com"}, {"Name": "name", "Value": "Timed"}],
    )
    idp.admin_set_user_password(UserPoolId=required_pool, Username="timed", Password=PASSWORD, Permanent=True)
    result = public_idp.initiate_auth(
        ClientId=created["ClientId"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "timed", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]
    assert result["ExpiresIn"] == 2 * 3600

    # Only the unit of a value sent defaults to hours; the others keep their defaults.
    updated = idp.update_user_pool_client(
        UserPoolId=required_pool, ClientId=created["ClientId"], ExplicitAuthFlows=FLOWS, IdTokenValidity=5
    )["UserPoolClient"]
    assert (updated["AccessTokenValidity"], updated["IdTokenValidity"], updated["RefreshTokenValidity"]) == (60, 5, 30)
    assert updated["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "hours", "RefreshToken": "days"}

    kept = described_client(idp, required_pool, created["ClientId"])
    for too_long in ({"AccessTokenValidity": 25}, {"IdTokenValidity": 48}, {"RefreshTokenValidity": 3651}):
        with pytest.raises(ClientError) as exc:
            idp.update_user_pool_client(UserPoolId=required_pool, ClientId=created["ClientId"], **too_long)
        assert error_of(exc)[:2] == ("InvalidParameterException", 400), too_long
    assert described_client(idp, required_pool, created["ClientId"]) == kept


# --- Mutable=false -----------------------------------------------------------------------------------------------


def test_an_immutable_attribute_is_set_once_then_refused_to_everyone(idp: Any, public_idp: Any) -> None:
    """SchemaAttributeType.Mutable false: "the attribute value can only be set up on sign-up or administrator
    creation of users" (AddCustomAttributes). Afterwards neither AdminUpdateUserAttributes nor
    AdminDeleteUserAttributes may touch it, nor the user in the NEW_PASSWORD_REQUIRED challenge -- which is
    refused before the password changes."""
    pool_id = idp.create_user_pool(
        PoolName="immutable",
        Schema=[{"Name": "tenant", "AttributeDataType": "String", "Mutable": False}],
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    temporary = "Temporary-pass-1"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="tenant-user",
        TemporaryPassword=temporary,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "custom:tenant", "Value": "acme"}],
    )
    unset = "no-tenant-yet"
    idp.admin_create_user(UserPoolId=pool_id, Username=unset, MessageAction="SUPPRESS")

    admin_calls: list[Callable[[], Any]] = [
        lambda: idp.admin_update_user_attributes(
            UserPoolId=pool_id, Username="tenant-user", UserAttributes=[{"Name": "custom:tenant", "Value": "other"}]
        ),
        lambda: idp.admin_delete_user_attributes(
            UserPoolId=pool_id, Username="tenant-user", UserAttributeNames=["custom:tenant"]
        ),
        # Not set at creation: it cannot be set afterwards either.
        lambda: idp.admin_update_user_attributes(
            UserPoolId=pool_id, Username=unset, UserAttributes=[{"Name": "custom:tenant", "Value": "late"}]
        ),
    ]
    for call in admin_calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc)[:2] == ("InvalidParameterException", 400)

    challenge = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "tenant-user", "PASSWORD": temporary},
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=challenge["Session"],
            ChallengeResponses={
                "USERNAME": "tenant-user",
                "NEW_PASSWORD": PASSWORD,
                "userAttributes.custom:tenant": "evil",
            },
        )
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)

    user = idp.admin_get_user(UserPoolId=pool_id, Username="tenant-user")
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["custom:tenant"] == "acme"
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    late = idp.admin_get_user(UserPoolId=pool_id, Username=unset)
    assert "custom:tenant" not in {a["Name"] for a in late["UserAttributes"]}


# --- AccountRecoverySetting: admin_only ----------------------------------------------------------------------------


def test_admin_only_recovery_is_not_combined_with_a_self_service_option(idp: Any) -> None:
    """ "The admin_only option prevents self-service account recovery" (RecoveryOptionType): listed beside
    verified_email or verified_phone_number it would be skipped for the next option, so a pool cannot be
    created or updated with both."""
    mixed = {"RecoveryMechanisms": [{"Priority": 1, "Name": "admin_only"}, {"Priority": 2, "Name": "verified_email"}]}
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName="mixed-recovery", AccountRecoverySetting=mixed)
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert "mixed-recovery" not in {p["Name"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]}

    alone = {"RecoveryMechanisms": [{"Priority": 1, "Name": "admin_only"}]}
    pool_id = idp.create_user_pool(PoolName="admin-recovery", AccountRecoverySetting=alone)["UserPool"]["Id"]
    before = described_pool(idp, pool_id)
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, AccountRecoverySetting=mixed)
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert described_pool(idp, pool_id) == before


def test_admin_only_recovery_sends_no_reset_code(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """With admin_only, ForgotPassword sends nothing, even to a user with a verified email address, and
    AdminResetUserPassword is refused ("your user pool must have self-service account recovery configured. Use
    AdminSetUserPassword if you manage passwords as an administrator"): the user could never finish the reset.
    Under PreventUserExistenceErrors every name, a user's or not, a disabled user's too, gets one answer."""
    pool_id = idp.create_user_pool(
        PoolName="admin-only-reset",
        AccountRecoverySetting={"RecoveryMechanisms": [{"Priority": 1, "Name": "admin_only"}]},
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    address = "forgetful@example.com"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="forgetful",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": address}, {"Name": "email_verified", "Value": "true"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="forgetful", Password=PASSWORD, Permanent=True)

    with pytest.raises(ClientError) as exc:
        public_idp.forgot_password(ClientId=client_id, Username="forgetful")
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as exc:
        public_idp.forgot_password(ClientId=client_id, Username="nobody-here")
    assert error_of(exc)[0] == "UserNotFoundException"  # without PreventUserExistenceErrors, as Cognito
    with pytest.raises(ClientError) as exc:
        idp.admin_reset_user_password(UserPoolId=pool_id, Username="forgetful")
    assert error_of(exc)[:2] == ("OperationNotEnabledException", 400)
    assert "AdminSetUserPassword" in error_of(exc)[2]
    assert idp.admin_get_user(UserPoolId=pool_id, Username="forgetful")["UserStatus"] == "CONFIRMED"
    login = {"USERNAME": "forgetful", "PASSWORD": PASSWORD}
    public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=login)  # unchanged

    guarded = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="guarded", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="ENABLED"
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="switched-off", MessageAction="SUPPRESS")
    idp.admin_disable_user(UserPoolId=pool_id, Username="switched-off")
    answers = set()
    for name in ("forgetful", "switched-off", "nobody-here", address):
        with pytest.raises(ClientError) as exc:
            public_idp.forgot_password(ClientId=guarded, Username=name)
        answers.add(error_of(exc))
    assert len(answers) == 1, answers
    # The administrator sets the password; nothing was ever mailed.
    idp.admin_set_user_password(UserPoolId=pool_id, Username="forgetful", Password=PASSWORD, Permanent=True)
    assert mail.messages_to(address) == []


# --- AccountRecoverySetting: the MFA channel ---------------------------------------------------------------------


def sms_sent_to(gatehouse: GatehouseServer, phone: str) -> int:
    """Text messages written to the server's outbox (no SMS sender configured) for ``phone``."""
    outbox = gatehouse.data_dir / "outbox.jsonl"
    if not outbox.exists():
        return 0
    return sum(1 for line in outbox.read_text().splitlines() if json.loads(line).get("to") == phone)


def test_the_sms_mfa_phone_is_no_recovery_channel(
    idp: Any, public_idp: Any, gatehouse: GatehouseServer, mail: MailServer
) -> None:
    """AccountRecoverySettingType: "With this setting, SMS doesn't qualify for a valid password recovery
    mechanism if the user also has SMS multi-factor authentication (MFA) activated." Else whoever holds the
    phone both resets the password and answers the second factor. The reset code goes to the next option (a
    verified email), or nowhere."""
    pool_id = idp.create_user_pool(
        PoolName="recovery-vs-mfa",
        AccountRecoverySetting={
            "RecoveryMechanisms": [
                {"Priority": 1, "Name": "verified_phone_number"},
                {"Priority": 2, "Name": "verified_email"},
            ]
        },
    )["UserPool"]["Id"]
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SmsMfaConfiguration={"SmsAuthenticationMessage": "{####}"}
    )
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]

    def make(username: str, phone: str, email: str | None, sms_mfa: bool) -> None:
        attributes = [{"Name": "phone_number", "Value": phone}, {"Name": "phone_number_verified", "Value": "true"}]
        if email is not None:
            attributes += [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}]
        idp.admin_create_user(
            UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS", UserAttributes=attributes
        )
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
        if sms_mfa:
            idp.admin_set_user_mfa_preference(
                UserPoolId=pool_id, Username=username, SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
            )

    make("no-mfa", "+15555550101", "no-mfa@example.com", sms_mfa=False)
    make("sms-mfa", "+15555550102", "sms-mfa@example.com", sms_mfa=True)
    make("sms-only", "+15555550103", None, sms_mfa=True)

    # Without SMS MFA the phone comes first, as configured.
    sent = public_idp.forgot_password(ClientId=client_id, Username="no-mfa")["CodeDeliveryDetails"]
    assert sent["DeliveryMedium"] == "SMS" and sms_sent_to(gatehouse, "+15555550101") == 1

    sent = public_idp.forgot_password(ClientId=client_id, Username="sms-mfa")["CodeDeliveryDetails"]
    assert sent["DeliveryMedium"] == "EMAIL"
    mail.wait_for("sms-mfa@example.com")
    assert sms_sent_to(gatehouse, "+15555550102") == 0

    with pytest.raises(ClientError) as exc:
        public_idp.forgot_password(ClientId=client_id, Username="sms-only")
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert sms_sent_to(gatehouse, "+15555550103") == 0
    assert idp.admin_get_user(UserPoolId=pool_id, Username="sms-only")["UserStatus"] == "CONFIRMED"


# --- verified flags ------------------------------------------------------------------------------------------------


def test_a_verified_flag_needs_its_attribute(idp: Any) -> None:
    """AdminCreateUser: "You must provide a value for email when you want to set email_verified to true"
    (phone_number alike); AdminUpdateUserAttributes marks an address verified only where the user has one."""
    pool_id = idp.create_user_pool(PoolName="verified-flags")["UserPool"]["Id"]
    for flag in ("email_verified", "phone_number_verified"):
        with pytest.raises(ClientError) as exc:
            idp.admin_create_user(
                UserPoolId=pool_id,
                Username=f"bare-{flag}",
                MessageAction="SUPPRESS",
                UserAttributes=[{"Name": flag, "Value": "true"}],
            )
        assert error_of(exc)[:2] == ("InvalidParameterException", 400)
        with pytest.raises(ClientError) as exc:
            idp.admin_get_user(UserPoolId=pool_id, Username=f"bare-{flag}")
        assert error_of(exc)[0] == "UserNotFoundException"

    idp.admin_create_user(UserPoolId=pool_id, Username="plain", MessageAction="SUPPRESS")
    for flag in ("email_verified", "phone_number_verified"):
        with pytest.raises(ClientError) as exc:
            idp.admin_update_user_attributes(
                UserPoolId=pool_id, Username="plain", UserAttributes=[{"Name": flag, "Value": "true"}]
            )
        assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert {a["Name"] for a in idp.admin_get_user(UserPoolId=pool_id, Username="plain")["UserAttributes"]} == {"sub"}

    # With the value, in the same call or already stored, the flag is taken.
    idp.admin_update_user_attributes(
        UserPoolId=pool_id,
        Username="plain",
        UserAttributes=[{"Name": "email", "Value": "plain@example.com"}, {"Name": "email_verified", "Value": "true"}],
    )
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username="plain", UserAttributes=[{"Name": "phone_number", "Value": "+15555550199"}]
    )
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username="plain", UserAttributes=[{"Name": "phone_number_verified", "Value": "true"}]
    )
    stored = {a["Name"]: a["Value"] for a in idp.admin_get_user(UserPoolId=pool_id, Username="plain")["UserAttributes"]}
    assert stored["email_verified"] == "true" and stored["phone_number_verified"] == "true"


# --- ExplicitAuthFlows ---------------------------------------------------------------------------------------------


def test_an_empty_explicit_auth_flows_list_is_described_as_the_flows_it_allows(idp: Any, public_idp: Any) -> None:
    """An app client given no flows ("If you don't specify a value for ExplicitAuthFlows, your app client
    supports ALLOW_REFRESH_TOKEN_AUTH, ALLOW_USER_SRP_AUTH, and ALLOW_CUSTOM_AUTH") -- an empty list included --
    signs users in with SRP, so Describe must not report that it allows nothing."""
    pool_id = idp.create_user_pool(PoolName="no-flows")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="empty", ExplicitAuthFlows=[])["UserPoolClient"]
    defaults = ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_CUSTOM_AUTH"]
    assert client["ExplicitAuthFlows"] == defaults
    updated = idp.update_user_pool_client(UserPoolId=pool_id, ClientId=client["ClientId"], ExplicitAuthFlows=[])
    assert updated["UserPoolClient"]["ExplicitAuthFlows"] == defaults
    assert described_client(idp, pool_id, client["ClientId"])["ExplicitAuthFlows"] == defaults

    idp.admin_create_user(UserPoolId=pool_id, Username="srp-user", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="srp-user", Password=PASSWORD, Permanent=True)
    started = public_idp.initiate_auth(
        ClientId=client["ClientId"], AuthFlow="USER_SRP_AUTH", AuthParameters={"USERNAME": "srp-user", "SRP_A": "abc1"}
    )
    assert started["ChallengeName"] == "PASSWORD_VERIFIER"
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(
            ClientId=client["ClientId"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "srp-user", "PASSWORD": PASSWORD},
        )
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)


# --- concurrent changes to one pool ----------------------------------------------------------------------------

WRITERS = 12
ROUNDS = 4


def test_concurrent_admin_writes_to_one_pool_all_go_through(gatehouse: GatehouseServer, idp: Any) -> None:
    """Many administrators changing one pool at once (TagResource, AddCustomAttributes): each change is made on
    the pool as stored, and a write that loses the version check to another is made again, so every call
    succeeds and none is lost. Neither operation's model lists ConcurrentModificationException."""
    pool_id = idp.create_user_pool(PoolName="busy-pool")["UserPool"]["Id"]
    arn = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Arn"]
    clients = [gatehouse.client() for _ in range(WRITERS)]

    def write(index: int, round_: int) -> str:
        client = clients[index]
        try:
            if index % 2:
                attribute = {"Name": f"r{round_}w{index}", "AttributeDataType": "String"}
                client.add_custom_attributes(UserPoolId=pool_id, CustomAttributes=[attribute])
            else:
                client.tag_resource(ResourceArn=arn, Tags={f"r{round_}w{index}": "set"})
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "OK"

    answers: list[str] = []
    for round_ in range(ROUNDS):
        start = threading.Barrier(WRITERS)

        def at_once(index: int, round_: int = round_, start: threading.Barrier = start) -> str:
            start.wait()
            return write(index, round_)

        with ThreadPoolExecutor(WRITERS) as executor:
            answers.extend(executor.map(at_once, range(WRITERS)))

    assert answers == ["OK"] * (WRITERS * ROUNDS)
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    written = {f"r{r}w{i}" for r in range(ROUNDS) for i in range(WRITERS)}
    attributes = {a["Name"].removeprefix("custom:") for a in described["SchemaAttributes"] if "custom:" in a["Name"]}
    assert attributes == {name for name in written if int(name.split("w")[1]) % 2}
    assert set(described["UserPoolTags"]) == {name for name in written if not int(name.split("w")[1]) % 2}


# --- UpdateUserPool: the feature plan and what the pool keeps ---------------------------------------------------


def test_a_lower_plan_is_refused_while_the_pool_tracks_sessions(idp: Any) -> None:
    """Session tracking is in the Essentials and Plus plans only (SetUserPoolSessionConfiguration answers
    FeatureUnavailableInTierException on Lite), and UpdateUserPool keeps it: moving the pool to Lite while it
    tracks sessions is refused with that error, changing nothing, until tracking is turned off."""
    pool_id = idp.create_user_pool(PoolName="tracked", UserPoolTier="ESSENTIALS")["UserPool"]["Id"]
    idp.set_user_pool_session_configuration(
        UserPoolId=pool_id, UserSessionTracking="ENABLED", TokenSession={"MaxPerUser": 5}
    )
    before = described_pool(idp, pool_id)

    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, UserPoolTier="LITE")

    code, status, message = error_of(exc)
    assert (code, status) == ("FeatureUnavailableInTierException", 400)
    assert "SetUserPoolSessionConfiguration" in message and "LITE" in message
    assert described_pool(idp, pool_id) == before
    tracking = idp.get_user_pool_session_configuration(UserPoolId=pool_id)
    assert tracking["UserSessionTracking"] == "ENABLED"

    # Plus has session tracking too; with tracking off, Lite is taken.
    idp.update_user_pool(UserPoolId=pool_id, UserPoolTier="PLUS")
    idp.set_user_pool_session_configuration(
        UserPoolId=pool_id, UserSessionTracking="DISABLED", TokenSession={"MaxPerUser": 5}
    )
    idp.update_user_pool(UserPoolId=pool_id, UserPoolTier="LITE")
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["UserPoolTier"] == "LITE"


BUCKET = "arn:aws:s3:::pool-admin-logs"


def test_a_lower_plan_is_refused_while_the_pool_exports_user_activity(idp: Any) -> None:
    """The userAuthEvents log export is a Plus feature (SetLogDeliveryConfiguration refuses it on another plan),
    and UpdateUserPool keeps it: leaving Plus while it is configured is refused, until it is removed."""
    pool_id = idp.create_user_pool(PoolName="exported", UserPoolTier="PLUS")["UserPool"]["Id"]
    activity = {"LogLevel": "INFO", "EventSource": "userAuthEvents", "S3Configuration": {"BucketArn": BUCKET}}
    idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[activity])
    before = described_pool(idp, pool_id)

    for tier in ("ESSENTIALS", "LITE"):
        with pytest.raises(ClientError) as exc:
            idp.update_user_pool(UserPoolId=pool_id, UserPoolTier=tier)
        code, status, message = error_of(exc)
        assert (code, status) == ("FeatureUnavailableInTierException", 400)
        assert "userAuthEvents" in message and "SetLogDeliveryConfiguration" in message
    assert described_pool(idp, pool_id) == before
    configured = idp.get_log_delivery_configuration(UserPoolId=pool_id)["LogDeliveryConfiguration"]
    assert configured["LogConfigurations"] == [activity]

    idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[])
    idp.update_user_pool(UserPoolId=pool_id, UserPoolTier="ESSENTIALS")
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["UserPoolTier"] == "ESSENTIALS"


# --- UserPoolType members for features Gatehouse does not have --------------------------------------------------

# What Gatehouse does, in each member's own terms: a pool's issuer on this server (ORIGINAL), no KMS key of the
# caller's, no dynamic client registration, no acr claim to rename.
WHAT_GATEHOUSE_DOES: dict[str, Any] = {
    "IssuerConfiguration": {"Type": "ORIGINAL"},
    "KeyConfiguration": {"KeyType": "AWS_OWNED_KEY"},
    "DcrConfiguration": {"EnableStatus": "Disabled"},
    "AcrConfiguration": {},
}


@pytest.mark.parametrize(
    "members",
    [
        {"IssuerConfiguration": {"Type": "UPDATED"}},
        {"KeyConfiguration": {"KeyType": "CUSTOMER_MANAGED_KEY"}},
        {"KeyConfiguration": {"KeyType": "AWS_OWNED_KEY", "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k1"}},
        {"DcrConfiguration": {"EnableStatus": "Enabled"}},
        {"DcrConfiguration": {"OpenDcrEnabled": True}},  # "an omitted EnableStatus turns [it] on"
        {"AcrConfiguration": {"Level2": {"AcrValue": "urn:example:mfa"}}},
    ],
)
def test_features_gatehouse_does_not_have_are_refused(
    idp: Any, gatehouse: GatehouseServer, members: dict[str, Any]
) -> None:
    """CreateUserPool and UpdateUserPool refuse an updated issuer, a customer KMS key, dynamic client
    registration and custom ACR names with InvalidParameterException naming the member, rather than answering
    200 and dropping them; a refused update changes nothing."""
    (member,) = members
    status, body = signed_call(gatehouse, "CreateUserPool", {"PoolName": "unsupported", **members})
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    assert member in body["message"] and "not supported by Gatehouse" in body["message"]

    pool_id = idp.create_user_pool(PoolName="supported")["UserPool"]["Id"]
    before = described_pool(idp, pool_id)
    status, body = signed_call(gatehouse, "UpdateUserPool", {"UserPoolId": pool_id, **members})
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    assert member in body["message"]
    assert described_pool(idp, pool_id) == before


def test_what_gatehouse_does_is_taken_described_and_kept(idp: Any, gatehouse: GatehouseServer) -> None:
    """The values that describe Gatehouse are taken, described back by DescribeUserPool, and kept by an
    UpdateUserPool that leaves them out ("If you omit this parameter, Amazon Cognito keeps the existing
    configuration", DcrConfiguration)."""
    status, body = signed_call(gatehouse, "CreateUserPool", {"PoolName": "as-it-is", **WHAT_GATEHOUSE_DOES})
    assert status == 200
    pool_id = body["UserPool"]["Id"]
    assert {k: body["UserPool"].get(k) for k in WHAT_GATEHOUSE_DOES} == WHAT_GATEHOUSE_DOES

    idp.update_user_pool(UserPoolId=pool_id, DeletionProtection="INACTIVE")
    described = described_pool(idp, pool_id)
    assert {k: described.get(k) for k in WHAT_GATEHOUSE_DOES} == WHAT_GATEHOUSE_DOES

    status, _ = signed_call(gatehouse, "UpdateUserPool", {"UserPoolId": pool_id, **WHAT_GATEHOUSE_DOES})
    assert status == 200
    assert described_pool(idp, pool_id) == described
