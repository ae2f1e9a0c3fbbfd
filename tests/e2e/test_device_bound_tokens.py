"""A sign-in's tokens belong to its device, through boto3 against a real server.

"With device tracking, these tokens are linked to a single device. If a refresh token is used on any other
device, the call fails. ... the ForgetDevice API can be used to forget that specific device, and as a result,
all future calls to revalidate that device's refresh tokens will fail" (AWS Mobile blog, "Tracking and
Remembering Devices Using Amazon Cognito Your User Pools"); GetTokensFromRefreshToken's DeviceKey: "You must
provide the confirmed device key in this request if device remembering is enabled in your user pool."

And a device that stood in for MFA at the password step but is no longer remembered when it has proven itself
(UpdateDeviceStatus in between) does not skip the second factor.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.mfa_support import outbox_sms
from tests.e2e.test_devices import (
    Device,
    answer_sms,
    claims_of,
    confirm,
    device_proof,
    error_of,
    make_pool,
    make_user,
    password_sign_in,
)
from tests.support import GatehouseServer

ALWAYS = {"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": False}
INVALID = ("NotAuthorizedException", "Invalid Refresh Token")


def refresh(public_idp: Any, client_id: str, token: str, device_key: str | None = None) -> dict[str, Any]:
    parameters = {"REFRESH_TOKEN": token}
    if device_key:
        parameters["DEVICE_KEY"] = device_key
    result = public_idp.initiate_auth(ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters=parameters)
    return dict(result["AuthenticationResult"])


def refused(public_idp: Any, client_id: str, token: str, device_key: str | None = None) -> tuple[str, str]:
    with pytest.raises(ClientError) as error:
        refresh(public_idp, client_id, token, device_key)
    return error_of(error)


def new_device(
    gatehouse: GatehouseServer, public_idp: Any, client_id: str, username: str, phone: str, name: str
) -> tuple[Device, dict[str, Any]]:
    """A sign-in from a new device (SMS MFA), the device confirmed: the device and that sign-in's tokens."""
    signed_in = answer_sms(
        gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, username), username, phone
    )
    device, _ = confirm(public_idp, signed_in, name)
    return device, dict(signed_in["AuthenticationResult"])


def test_a_refresh_token_is_bound_to_its_device(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "bound-tokens", ALWAYS)
    phone = "+15555550401"
    make_user(idp, pool_id, "bea", phone)
    phone_device, _ = new_device(gatehouse, public_idp, client_id, "bea", phone, "phone")
    laptop, laptop_first = new_device(gatehouse, public_idp, client_id, "bea", phone, "laptop")
    step = password_sign_in(public_idp, client_id, "bea", phone_device.key)
    tokens = device_proof(public_idp, pool_id, client_id, step, "bea", phone_device)["AuthenticationResult"]

    # Its own device: the access token names it.
    renewed = refresh(public_idp, client_id, tokens["RefreshToken"], phone_device.key)
    assert claims_of(renewed["AccessToken"])["device_key"] == phone_device.key
    # The user's other device, or none, is refused.
    assert refused(public_idp, client_id, tokens["RefreshToken"], laptop.key) == INVALID
    assert refused(public_idp, client_id, tokens["RefreshToken"]) == INVALID
    with pytest.raises(ClientError) as without_key:
        public_idp.get_tokens_from_refresh_token(ClientId=client_id, RefreshToken=tokens["RefreshToken"])
    assert error_of(without_key) == INVALID
    # A key that is no device of the user's is not found, as before.
    assert refused(public_idp, client_id, tokens["RefreshToken"], "us-east-1_" + "0" * 8)[0] == (
        "ResourceNotFoundException"
    )
    # The sign-in that handed out a new device key: bound to it once it is confirmed.
    assert refused(public_idp, client_id, laptop_first["RefreshToken"]) == INVALID
    assert refused(public_idp, client_id, laptop_first["RefreshToken"], phone_device.key) == INVALID
    assert claims_of(refresh(public_idp, client_id, laptop_first["RefreshToken"], laptop.key)["AccessToken"])[
        "device_key"
    ] == (laptop.key)


def test_a_new_device_never_confirmed_refreshes_without_a_key(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    """An app that ignores NewDeviceMetadata refreshes as it always did; it cannot borrow another device."""
    pool_id, client_id = make_pool(idp, "unconfirmed-device", ALWAYS)
    phone = "+15555550402"
    make_user(idp, pool_id, "cal", phone)
    confirmed, _ = new_device(gatehouse, public_idp, client_id, "cal", phone, "phone")
    ignored = answer_sms(gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, "cal"), "cal", phone)
    token = ignored["AuthenticationResult"]["RefreshToken"]
    renewed = refresh(public_idp, client_id, token)
    assert "device_key" not in claims_of(renewed["AccessToken"])
    assert refused(public_idp, client_id, token, confirmed.key) == INVALID


def test_forgetting_a_device_ends_its_refresh_tokens(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    """The probe's case: a stolen phone is forgotten from the user's laptop; its refresh token is dead, whatever
    device it names, and cannot be turned into a token for the laptop (which could forget the laptop)."""
    pool_id, client_id = make_pool(idp, "forget-ends-tokens", ALWAYS)
    phone = "+15555550403"
    make_user(idp, pool_id, "dee", phone)
    stolen, _ = new_device(gatehouse, public_idp, client_id, "dee", phone, "phone")
    step = password_sign_in(public_idp, client_id, "dee", stolen.key)
    thief = device_proof(public_idp, pool_id, client_id, step, "dee", stolen)["AuthenticationResult"]
    laptop, laptop_tokens = new_device(gatehouse, public_idp, client_id, "dee", phone, "laptop")

    public_idp.forget_device(AccessToken=laptop_tokens["AccessToken"], DeviceKey=stolen.key)
    assert refused(public_idp, client_id, thief["RefreshToken"]) == INVALID
    assert refused(public_idp, client_id, thief["RefreshToken"], laptop.key) == INVALID
    # Naming the forgotten device itself: answered as for an unknown device.
    assert refused(public_idp, client_id, thief["RefreshToken"], stolen.key) == (
        "ResourceNotFoundException",
        "Device does not exist.",
    )
    # The laptop's own session goes on.
    assert refresh(public_idp, client_id, laptop_tokens["RefreshToken"], laptop.key)["AccessToken"]
    assert [d["DeviceKey"] for d in idp.admin_list_devices(UserPoolId=pool_id, Username="dee")["Devices"]] == [
        laptop.key
    ]


def test_admin_forget_device_ends_its_rotating_refresh_tokens(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    pool_id, _ = make_pool(idp, "admin-forget-ends-tokens", ALWAYS)
    rotating = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="rotating",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        RefreshTokenRotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 0},
    )["UserPoolClient"]["ClientId"]
    phone = "+15555550404"
    make_user(idp, pool_id, "eli", phone)
    device, _ = new_device(gatehouse, public_idp, rotating, "eli", phone, "tablet")
    step = password_sign_in(public_idp, rotating, "eli", device.key)
    tokens = device_proof(public_idp, pool_id, rotating, step, "eli", device)["AuthenticationResult"]
    renewed = public_idp.get_tokens_from_refresh_token(
        ClientId=rotating, RefreshToken=tokens["RefreshToken"], DeviceKey=device.key
    )["AuthenticationResult"]

    idp.admin_forget_device(UserPoolId=pool_id, Username="eli", DeviceKey=device.key)
    with pytest.raises(ClientError) as ended:
        public_idp.get_tokens_from_refresh_token(ClientId=rotating, RefreshToken=renewed["RefreshToken"])
    assert error_of(ended) == INVALID
    # The access token lives out its time, as the one a ConfirmDevice of the forgotten key would present.
    assert public_idp.get_user(AccessToken=renewed["AccessToken"])["Username"] == "eli"


def test_a_device_no_longer_remembered_before_its_proof_still_owes_mfa(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    pool_id, client_id = make_pool(idp, "unremembered-mid-sign-in", ALWAYS, mfa="ON")
    phone = "+15555550405"
    make_user(idp, pool_id, "vic", phone)
    device, _ = new_device(gatehouse, public_idp, client_id, "vic", phone, "laptop")
    step = password_sign_in(public_idp, client_id, "vic", device.key)
    assert step["ChallengeName"] == "DEVICE_SRP_AUTH"  # remembered: the device stands in for MFA
    idp.admin_update_device_status(
        UserPoolId=pool_id, Username="vic", DeviceKey=device.key, DeviceRememberedStatus="not_remembered"
    )
    sent = len(outbox_sms(gatehouse, phone))

    proven = device_proof(public_idp, pool_id, client_id, step, "vic", device)
    assert "AuthenticationResult" not in proven
    assert proven["ChallengeName"] == "SMS_MFA"
    assert len(outbox_sms(gatehouse, phone)) == sent + 1
    # The code, then the device proves itself again (as for any device that does not skip MFA), then tokens.
    after_mfa = answer_sms(gatehouse, public_idp, client_id, proven, "vic", phone)
    assert after_mfa["ChallengeName"] == "DEVICE_SRP_AUTH"
    result = device_proof(public_idp, pool_id, client_id, after_mfa, "vic", device)
    assert claims_of(result["AuthenticationResult"]["AccessToken"])["device_key"] == device.key

    # Remembered again: the proof alone is enough, and no code is sent.
    idp.admin_update_device_status(
        UserPoolId=pool_id, Username="vic", DeviceKey=device.key, DeviceRememberedStatus="remembered"
    )
    sent = len(outbox_sms(gatehouse, phone))
    step = password_sign_in(public_idp, client_id, "vic", device.key)
    assert "AuthenticationResult" in device_proof(public_idp, pool_id, client_id, step, "vic", device)
    assert len(outbox_sms(gatehouse, phone)) == sent
