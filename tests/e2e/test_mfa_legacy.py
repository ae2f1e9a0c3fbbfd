"""The legacy MFA settings through boto3 against a real server: SetUserSettings and AdminSetUserSettings with
MFAOptions turn SMS (and email) MFA on and off as SetUserMFAPreference would, GetUser and AdminGetUser report
MFAOptions, a sign-in then asks for the SMS code, and malformed or refused settings change nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.mfa_support import sms_code
from tests.e2e.test_mfa_sms_email import answer, make_pool, make_user, sign_in, tokens_of
from tests.support import GatehouseServer

SMS = {"DeliveryMedium": "SMS", "AttributeName": "phone_number"}
EMAIL = {"DeliveryMedium": "EMAIL", "AttributeName": "email"}


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def pool(idp: Any) -> tuple[str, str]:
    return make_pool(
        idp,
        "legacy-optional",
        "OPTIONAL",
        SmsMfaConfiguration={"SmsAuthenticationMessage": "Legacy code {####}"},
        EmailMfaConfiguration={"Subject": "Code", "Message": "Code {####}"},
    )


def test_admin_set_user_settings_turns_sms_mfa_on_and_off(idp: Any, pool: tuple[str, str]) -> None:
    pool_id, _ = pool
    make_user(idp, pool_id, "legacy-admin", phone_number="+15550100001", email="legacy-admin@example.com")
    assert "MFAOptions" not in idp.admin_get_user(UserPoolId=pool_id, Username="legacy-admin")

    idp.admin_set_user_settings(UserPoolId=pool_id, Username="legacy-admin", MFAOptions=[SMS])
    user = idp.admin_get_user(UserPoolId=pool_id, Username="legacy-admin")
    assert user["MFAOptions"] == [SMS]
    assert user["UserMFASettingList"] == ["SMS_MFA"]

    idp.admin_set_user_settings(UserPoolId=pool_id, Username="legacy-admin", MFAOptions=[SMS, EMAIL])
    user = idp.admin_get_user(UserPoolId=pool_id, Username="legacy-admin")
    assert user["MFAOptions"] == [SMS, EMAIL]
    assert user["UserMFASettingList"] == ["SMS_MFA", "EMAIL_OTP"]
    # ListUsers' UserType carries them too.
    listed = idp.list_users(UserPoolId=pool_id, Filter='username = "legacy-admin"')["Users"]
    assert [u["MFAOptions"] for u in listed] == [[SMS, EMAIL]]

    idp.admin_set_user_settings(UserPoolId=pool_id, Username="legacy-admin", MFAOptions=[])
    user = idp.admin_get_user(UserPoolId=pool_id, Username="legacy-admin")
    assert "MFAOptions" not in user and not user.get("UserMFASettingList")


def test_set_user_settings_then_sign_in_asks_for_the_sms_code(
    idp: Any, public_idp: Any, gatehouse: GatehouseServer, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    phone = "+15550100002"
    make_user(idp, pool_id, "legacy-self", phone_number=phone)
    tokens = tokens_of(sign_in(public_idp, client_id, "legacy-self"))

    public_idp.set_user_settings(AccessToken=tokens["AccessToken"], MFAOptions=[SMS])
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["MFAOptions"] == [SMS]

    challenge = sign_in(public_idp, client_id, "legacy-self")
    assert challenge["ChallengeName"] == "SMS_MFA"
    code = sms_code(gatehouse, phone, 1)
    tokens_of(answer(public_idp, client_id, "SMS_MFA", challenge["Session"], "legacy-self", SMS_MFA_CODE=code))


@pytest.mark.parametrize(
    "options",
    [
        [{"DeliveryMedium": "SMS", "AttributeName": "email"}],
        [{"DeliveryMedium": "EMAIL", "AttributeName": "phone_number"}],
        [{"AttributeName": "phone_number"}],
        [{"DeliveryMedium": "SMS", "AttributeName": "custom:phone"}],
    ],
)
def test_malformed_options_are_refused_and_change_nothing(
    idp: Any, pool: tuple[str, str], options: list[dict[str, str]]
) -> None:
    pool_id, _ = pool
    username = f"legacy-bad-{abs(hash(str(options))) % 10_000}"
    make_user(idp, pool_id, username, phone_number="+15550100003", email=f"{username}@example.com")
    with pytest.raises(ClientError) as exc:
        idp.admin_set_user_settings(UserPoolId=pool_id, Username=username, MFAOptions=options)
    assert code_of(exc) == "InvalidParameterException"
    assert "MFAOptions" not in idp.admin_get_user(UserPoolId=pool_id, Username=username)


def test_sms_without_a_phone_number_is_refused(idp: Any, pool: tuple[str, str]) -> None:
    pool_id, _ = pool
    make_user(idp, pool_id, "legacy-nophone", email="legacy-nophone@example.com")
    with pytest.raises(ClientError) as exc:
        idp.admin_set_user_settings(UserPoolId=pool_id, Username="legacy-nophone", MFAOptions=[SMS])
    assert code_of(exc) == "InvalidParameterException"
    assert "MFAOptions" not in idp.admin_get_user(UserPoolId=pool_id, Username="legacy-nophone")


def test_a_pool_without_sms_mfa_refuses_it(idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="legacy-off")["UserPool"]["Id"]
    make_user(idp, pool_id, "legacy-off-user", phone_number="+15550100004")
    with pytest.raises(ClientError) as exc:
        idp.admin_set_user_settings(UserPoolId=pool_id, Username="legacy-off-user", MFAOptions=[SMS])
    assert code_of(exc) == "InvalidParameterException"


def test_required_mfa_keeps_the_factor_on(idp: Any) -> None:
    pool_id, _ = make_pool(idp, "legacy-on", "ON", SmsMfaConfiguration={"SmsAuthenticationMessage": "{####}"})
    make_user(idp, pool_id, "legacy-on-user", phone_number="+15550100005")
    idp.admin_set_user_settings(UserPoolId=pool_id, Username="legacy-on-user", MFAOptions=[SMS])
    with pytest.raises(ClientError) as exc:
        idp.admin_set_user_settings(UserPoolId=pool_id, Username="legacy-on-user", MFAOptions=[])
    assert code_of(exc) == "InvalidParameterException"
    assert idp.admin_get_user(UserPoolId=pool_id, Username="legacy-on-user")["MFAOptions"] == [SMS]


def test_hostile_callers(idp: Any, public_idp: Any, pool: tuple[str, str]) -> None:
    pool_id, _ = pool
    with pytest.raises(ClientError) as exc:
        public_idp.set_user_settings(AccessToken="not-a-token", MFAOptions=[SMS])
    assert code_of(exc) == "NotAuthorizedException"
    with pytest.raises(ClientError) as exc:
        idp.admin_set_user_settings(UserPoolId=pool_id, Username="nobody-here", MFAOptions=[SMS])
    assert code_of(exc) == "UserNotFoundException"
    # The admin operation needs the admin's signature.
    with pytest.raises(ClientError) as exc:
        public_idp.admin_set_user_settings(UserPoolId=pool_id, Username="legacy-admin", MFAOptions=[SMS])
    assert code_of(exc) in {"NotAuthorizedException", "AccessDeniedException", "MissingAuthenticationTokenException"}
