"""Remembered devices through boto3 against a real server: NewDeviceMetadata, ConfirmDevice with an SRP verifier
made by the client, remembered / not_remembered, the DEVICE_SRP_AUTH / DEVICE_PASSWORD_VERIFIER proof (computed
here with pycognito's client-side SRP math) that lets a remembered device skip MFA, the ``device_key`` claim,
refresh with DEVICE_KEY, the Get/List/Forget operations and their admin forms, and hostile requests.

The acceptance check is the last test: amazon-cognito-identity-js signs in with SMS MFA, remembers the device,
signs out, and signs in again without being asked for MFA.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import time
from typing import Any

import pyotp
import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP, generate_hash_device, long_to_hex

from tests.e2e.mfa_support import outbox_sms, run_node, sms_code
from tests.support import GatehouseServer

PASSWORD = "Device-password-1"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
SMS_CONFIG = {"SmsAuthenticationMessage": "Your code is {####}"}
OPT_IN = {"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": True}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def claims_of(jwt: str) -> dict[str, Any]:
    payload = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def make_pool(idp: Any, name: str, devices: dict[str, bool] | None, mfa: str = "OPTIONAL") -> tuple[str, str]:
    extra = {"DeviceConfiguration": devices} if devices is not None else {}
    pool_id = str(idp.create_user_pool(PoolName=name, **extra)["UserPool"]["Id"])
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration=mfa, SmsMfaConfiguration=SMS_CONFIG)
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str, phone: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "phone_number", "Value": phone}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username=username, SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
    )


def password_sign_in(public_idp: Any, client_id: str, username: str, device_key: str | None = None) -> dict[str, Any]:
    parameters = {"USERNAME": username, "PASSWORD": PASSWORD}
    if device_key:
        parameters["DEVICE_KEY"] = device_key
    return dict(public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=parameters))


def answer_sms(
    server: GatehouseServer, public_idp: Any, client_id: str, step: dict[str, Any], username: str, phone: str
) -> dict[str, Any]:
    assert step["ChallengeName"] == "SMS_MFA", step
    code = sms_code(server, phone, len(outbox_sms(server, phone)))
    return dict(
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SMS_MFA",
            Session=step["Session"],
            ChallengeResponses={"USERNAME": username, "SMS_MFA_CODE": code},
        )
    )


class Device:
    """What a client keeps of a confirmed device: its key, group key and random secret."""

    def __init__(self, key: str, group_key: str, password: str) -> None:
        self.key, self.group_key, self.password = key, group_key, password


def confirm(public_idp: Any, result: dict[str, Any], name: str = "laptop") -> tuple[Device, bool]:
    metadata = result["AuthenticationResult"]["NewDeviceMetadata"]
    password, verifier_config = generate_hash_device(metadata["DeviceGroupKey"], metadata["DeviceKey"])
    confirmed = public_idp.confirm_device(
        AccessToken=result["AuthenticationResult"]["AccessToken"],
        DeviceKey=metadata["DeviceKey"],
        DeviceSecretVerifierConfig=verifier_config,
        DeviceName=name,
    )
    return Device(metadata["DeviceKey"], metadata["DeviceGroupKey"], password), bool(
        confirmed["UserConfirmationNecessary"]
    )


def device_srp(public_idp: Any, pool_id: str, client_id: str, username: str, device: Device) -> AWSSRP:
    """pycognito's client side of the device's SRP, with the device's key, group and secret."""
    return AWSSRP(
        username=username,
        password="unused",
        pool_id=pool_id,
        client_id=client_id,
        client=public_idp,
        device_key=device.key,
        device_group_key=device.group_key,
        device_password=device.password,
    )


def send_srp_a(public_idp: Any, client_id: str, session: str, username: str, device: Device, srp: AWSSRP) -> Any:
    """Answer DEVICE_SRP_AUTH with the device's key and SRP_A: the DEVICE_PASSWORD_VERIFIER challenge."""
    return public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="DEVICE_SRP_AUTH",
        Session=session,
        ChallengeResponses={"USERNAME": username, "DEVICE_KEY": device.key, "SRP_A": long_to_hex(srp.large_a_value)},
    )


def device_proof(
    public_idp: Any, pool_id: str, client_id: str, step: dict[str, Any], username: str, device: Device
) -> dict[str, Any]:
    """Answer DEVICE_SRP_AUTH and DEVICE_PASSWORD_VERIFIER with the device's secret (pycognito's SRP math)."""
    assert step["ChallengeName"] == "DEVICE_SRP_AUTH", step
    srp = device_srp(public_idp, pool_id, client_id, username, device)
    challenge = send_srp_a(public_idp, client_id, step["Session"], username, device, srp)
    assert challenge["ChallengeName"] == "DEVICE_PASSWORD_VERIFIER"
    assert set(challenge["ChallengeParameters"]) >= {"SRP_B", "SALT", "SECRET_BLOCK"}
    return dict(
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="DEVICE_PASSWORD_VERIFIER",
            Session=challenge["Session"],
            ChallengeResponses=srp.process_device_challenge(challenge["ChallengeParameters"]),
        )
    )


def attributes(device: dict[str, Any]) -> dict[str, str]:
    return {a["Name"]: a["Value"] for a in device["DeviceAttributes"]}


# --- the main path -------------------------------------------------------------------------------------------


def test_remembered_device_skips_mfa(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "devices", OPT_IN)
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["DeviceConfiguration"] == OPT_IN
    phone = "+15555550200"
    make_user(idp, pool_id, "dora", phone)

    # A new device: MFA, then tokens with NewDeviceMetadata, and an access token naming the device.
    first = answer_sms(gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, "dora"), "dora", phone)
    metadata = first["AuthenticationResult"]["NewDeviceMetadata"]
    assert re.fullmatch(
        r"us-east-1_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", metadata["DeviceKey"]
    )
    assert re.fullmatch(r"-[A-Za-z0-9]{9}", metadata["DeviceGroupKey"])
    assert claims_of(first["AuthenticationResult"]["AccessToken"])["device_key"] == metadata["DeviceKey"]
    access = first["AuthenticationResult"]["AccessToken"]
    # Not a device until it is confirmed.
    assert public_idp.list_devices(AccessToken=access)["Devices"] == []

    device, necessary = confirm(public_idp, first)
    assert necessary is True  # DeviceOnlyRememberedOnUserPrompt: the user decides
    listed = public_idp.list_devices(AccessToken=access)["Devices"]
    assert [d["DeviceKey"] for d in listed] == [device.key]
    assert attributes(listed[0])["dev:device_remembered_status"] == "not_remembered"
    assert attributes(listed[0])["device_name"] == "laptop"

    # Confirmed but not remembered: MFA is still asked, then the device proves itself.
    step = password_sign_in(public_idp, client_id, "dora", device.key)
    assert step["ChallengeName"] == "SMS_MFA"
    proved_step = answer_sms(gatehouse, public_idp, client_id, step, "dora", phone)
    assert proved_step["ChallengeName"] == "DEVICE_SRP_AUTH"
    result = device_proof(public_idp, pool_id, client_id, proved_step, "dora", device)
    assert "NewDeviceMetadata" not in result["AuthenticationResult"]
    assert claims_of(result["AuthenticationResult"]["AccessToken"])["device_key"] == device.key

    # Remembered: the password and the device proof are enough, and no code is sent.
    public_idp.update_device_status(AccessToken=access, DeviceKey=device.key, DeviceRememberedStatus="remembered")
    got = public_idp.get_device(AccessToken=access, DeviceKey=device.key)["Device"]
    assert attributes(got)["dev:device_remembered_status"] == "remembered"
    sent = len(outbox_sms(gatehouse, phone))
    step = password_sign_in(public_idp, client_id, "dora", device.key)
    assert step["ChallengeName"] == "DEVICE_SRP_AUTH" and step["ChallengeParameters"] == {}
    result = device_proof(public_idp, pool_id, client_id, step, "dora", device)
    tokens = result["AuthenticationResult"]
    assert claims_of(tokens["AccessToken"])["device_key"] == device.key
    assert len(outbox_sms(gatehouse, phone)) == sent
    assert "DeviceLastAuthenticatedDate" in public_idp.get_device(AccessToken=access, DeviceKey=device.key)["Device"]

    # The SRP password flow with the device key (in the answer, as the JS client sends it) skips MFA too.
    srp = AWSSRP(username="dora", password=PASSWORD, pool_id=pool_id, client_id=client_id, client=public_idp)
    started = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=srp.get_auth_params()
    )
    responses = srp.process_challenge(started["ChallengeParameters"], srp.get_auth_params())
    verified = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="PASSWORD_VERIFIER",
        Session=started["Session"],
        ChallengeResponses={**responses, "DEVICE_KEY": device.key},
    )
    assert verified["ChallengeName"] == "DEVICE_SRP_AUTH"
    device_proof(public_idp, pool_id, client_id, verified, "dora", device)

    # A refresh naming the device keeps it in the access token; another key is refused.
    refreshed = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"], "DEVICE_KEY": device.key},
    )
    assert claims_of(refreshed["AuthenticationResult"]["AccessToken"])["device_key"] == device.key
    with pytest.raises(ClientError) as unknown_refresh:
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"], "DEVICE_KEY": "us-east-1_" + "0" * 8},
        )
    assert error_of(unknown_refresh)[0] == "ResourceNotFoundException"

    # The admin view.
    assert (
        idp.admin_get_device(UserPoolId=pool_id, Username="dora", DeviceKey=device.key)["Device"]["DeviceKey"]
        == device.key
    )
    assert [d["DeviceKey"] for d in idp.admin_list_devices(UserPoolId=pool_id, Username="dora")["Devices"]] == [
        device.key
    ]

    # Forgotten: the key is unknown again, and the user is asked for MFA and gets a new device.
    public_idp.forget_device(AccessToken=access, DeviceKey=device.key)
    assert public_idp.list_devices(AccessToken=access)["Devices"] == []
    with pytest.raises(ClientError) as forgotten:
        password_sign_in(public_idp, client_id, "dora", device.key)
    assert error_of(forgotten) == ("ResourceNotFoundException", "Device does not exist.")
    again = answer_sms(gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, "dora"), "dora", phone)
    assert again["AuthenticationResult"]["NewDeviceMetadata"]["DeviceKey"] != device.key


def test_always_remembered_devices_and_admin_operations(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(
        idp, "devices-always", {"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": False}
    )
    phone = "+15555550201"
    make_user(idp, pool_id, "abe", phone)
    devices = []
    for name in ("phone", "tablet", "desktop"):
        result = answer_sms(
            gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, "abe"), "abe", phone
        )
        device, necessary = confirm(public_idp, result, name)
        assert necessary is False
        devices.append(device)
    keys = sorted(d.key for d in devices)
    page = idp.admin_list_devices(UserPoolId=pool_id, Username="abe", Limit=2)
    assert len(page["Devices"]) == 2 and page["PaginationToken"]
    rest = idp.admin_list_devices(UserPoolId=pool_id, Username="abe", Limit=2, PaginationToken=page["PaginationToken"])
    assert sorted(d["DeviceKey"] for d in page["Devices"] + rest["Devices"]) == keys and "PaginationToken" not in rest
    assert all(attributes(d)["dev:device_remembered_status"] == "remembered" for d in page["Devices"])

    # Remembered at once: straight to the device proof.
    step = password_sign_in(public_idp, client_id, "abe", devices[0].key)
    assert step["ChallengeName"] == "DEVICE_SRP_AUTH"
    device_proof(public_idp, pool_id, client_id, step, "abe", devices[0])

    # An administrator un-remembers one (MFA again) and forgets another.
    idp.admin_update_device_status(
        UserPoolId=pool_id, Username="abe", DeviceKey=devices[0].key, DeviceRememberedStatus="not_remembered"
    )
    assert password_sign_in(public_idp, client_id, "abe", devices[0].key)["ChallengeName"] == "SMS_MFA"
    idp.admin_forget_device(UserPoolId=pool_id, Username="abe", DeviceKey=devices[1].key)
    with pytest.raises(ClientError) as gone:
        idp.admin_get_device(UserPoolId=pool_id, Username="abe", DeviceKey=devices[1].key)
    assert error_of(gone)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as twice:
        idp.admin_forget_device(UserPoolId=pool_id, Username="abe", DeviceKey=devices[1].key)
    assert error_of(twice)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as bad_status:
        idp.admin_update_device_status(
            UserPoolId=pool_id, Username="abe", DeviceKey=devices[2].key, DeviceRememberedStatus="forever"
        )
    assert error_of(bad_status)[0] == "InvalidParameterException"
    assert len(idp.admin_list_devices(UserPoolId=pool_id, Username="abe")["Devices"]) == 2

    # A client that rotates refresh tokens: GetTokensFromRefreshToken with the DeviceKey keeps it in the token.
    rotating = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="rotating",
        ExplicitAuthFlows=FLOWS,
        RefreshTokenRotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 0},
    )["UserPoolClient"]["ClientId"]
    step = password_sign_in(public_idp, rotating, "abe", devices[2].key)
    tokens = device_proof(public_idp, pool_id, rotating, step, "abe", devices[2])["AuthenticationResult"]
    renewed = public_idp.get_tokens_from_refresh_token(
        ClientId=rotating, RefreshToken=tokens["RefreshToken"], DeviceKey=devices[2].key
    )
    assert claims_of(renewed["AuthenticationResult"]["AccessToken"])["device_key"] == devices[2].key
    with pytest.raises(ClientError) as forgotten_key:
        public_idp.get_tokens_from_refresh_token(
            ClientId=rotating, RefreshToken=renewed["AuthenticationResult"]["RefreshToken"], DeviceKey=devices[1].key
        )
    assert error_of(forgotten_key)[0] == "ResourceNotFoundException"

    # Deleting the user deletes the devices.
    idp.admin_delete_user(UserPoolId=pool_id, Username="abe")
    make_user(idp, pool_id, "abe", phone)
    assert idp.admin_list_devices(UserPoolId=pool_id, Username="abe")["Devices"] == []


def test_remembered_devices_still_get_mfa_unless_the_pool_lets_them_skip_it(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    # ChallengeRequiredOnNewDevice false: devices are tracked and remembered, but MFA is asked every time.
    pool_id, client_id = make_pool(
        idp, "devices-no-skip", {"ChallengeRequiredOnNewDevice": False, "DeviceOnlyRememberedOnUserPrompt": False}
    )
    phone = "+15555550250"
    make_user(idp, pool_id, "moe", phone)
    first = answer_sms(gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, "moe"), "moe", phone)
    device, necessary = confirm(public_idp, first)
    assert necessary is False
    step = password_sign_in(public_idp, client_id, "moe", device.key)
    assert step["ChallengeName"] == "SMS_MFA"
    after_mfa = answer_sms(gatehouse, public_idp, client_id, step, "moe", phone)
    result = device_proof(public_idp, pool_id, client_id, after_mfa, "moe", device)
    assert claims_of(result["AuthenticationResult"]["AccessToken"])["device_key"] == device.key


# --- hostile requests ---------------------------------------------------------------------------------------------


def test_hostile_device_requests(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "devices-hostile", OPT_IN)
    make_user(idp, pool_id, "hana", "+15555550210")
    make_user(idp, pool_id, "ivan", "+15555550211")
    hana = answer_sms(
        gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, "hana"), "hana", "+15555550210"
    )
    ivan = answer_sms(
        gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, "ivan"), "ivan", "+15555550211"
    )
    hana_access = hana["AuthenticationResult"]["AccessToken"]
    ivan_key = ivan["AuthenticationResult"]["NewDeviceMetadata"]["DeviceKey"]
    _, config = generate_hash_device("-group", ivan_key)

    # Hana cannot confirm Ivan's device with her token, nor a made-up key.
    for key in (ivan_key, "us-east-1_00000000-0000-4000-8000-000000000000"):
        with pytest.raises(ClientError) as not_hers:
            public_idp.confirm_device(AccessToken=hana_access, DeviceKey=key, DeviceSecretVerifierConfig=config)
        assert error_of(not_hers)[0] == "ResourceNotFoundException"
    # A verifier that is not base64, or missing.
    hana_key = hana["AuthenticationResult"]["NewDeviceMetadata"]["DeviceKey"]
    with pytest.raises(ClientError) as not_base64:
        public_idp.confirm_device(
            AccessToken=hana_access,
            DeviceKey=hana_key,
            DeviceSecretVerifierConfig={"PasswordVerifier": "not base64!", "Salt": "AAAA"},
        )
    assert error_of(not_base64)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as no_verifier:
        public_idp.confirm_device(AccessToken=hana_access, DeviceKey=hana_key)
    assert error_of(no_verifier)[0] == "InvalidParameterException"
    assert public_idp.list_devices(AccessToken=hana_access)["Devices"] == []

    device, _ = confirm(public_idp, hana)
    with pytest.raises(ClientError) as again:
        confirm(public_idp, hana)
    assert error_of(again)[0] == "DeviceKeyExistsException"
    ivan_device, _ = confirm(public_idp, ivan)
    public_idp.update_device_status(AccessToken=hana_access, DeviceKey=device.key, DeviceRememberedStatus="remembered")

    # Another user's device is not found, whoever asks and however.
    ivan_access = ivan["AuthenticationResult"]["AccessToken"]
    for call in (
        lambda: public_idp.get_device(AccessToken=ivan_access, DeviceKey=device.key),
        lambda: public_idp.forget_device(AccessToken=ivan_access, DeviceKey=device.key),
        lambda: public_idp.update_device_status(
            AccessToken=ivan_access, DeviceKey=device.key, DeviceRememberedStatus="not_remembered"
        ),
        lambda: idp.admin_get_device(UserPoolId=pool_id, Username="ivan", DeviceKey=device.key),
        lambda: password_sign_in(public_idp, client_id, "ivan", device.key),
    ):
        with pytest.raises(ClientError) as foreign:
            call()
        assert error_of(foreign)[0] == "ResourceNotFoundException"
    assert (
        attributes(public_idp.get_device(AccessToken=hana_access, DeviceKey=device.key)["Device"])[
            "dev:device_remembered_status"
        ]
        == "remembered"
    )
    for admin_call in (
        lambda: idp.admin_list_devices(UserPoolId=pool_id, Username="nobody"),
        lambda: idp.admin_get_device(UserPoolId=pool_id, Username="nobody", DeviceKey=device.key),
    ):
        with pytest.raises(ClientError) as unknown_user:
            admin_call()
        assert error_of(unknown_user)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as no_token:
        public_idp.get_device(DeviceKey=device.key)
    assert error_of(no_token)[0] == "InvalidParameterException"

    # The wrong device secret fails the proof and ends the challenge; so does another device's key.
    step = password_sign_in(public_idp, client_id, "hana", device.key)
    impostor = Device(device.key, device.group_key, "not-the-device-secret")
    with pytest.raises(ClientError) as wrong_secret:
        device_proof(public_idp, pool_id, client_id, step, "hana", impostor)
    assert error_of(wrong_secret)[0] == "NotAuthorizedException"
    step = password_sign_in(public_idp, client_id, "hana", device.key)
    with pytest.raises(ClientError) as other_key:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="DEVICE_SRP_AUTH",
            Session=step["Session"],
            ChallengeResponses={"USERNAME": "hana", "DEVICE_KEY": ivan_device.key, "SRP_A": "0a"},
        )
    assert error_of(other_key)[0] == "NotAuthorizedException"
    # A replayed device proof is refused.
    step = password_sign_in(public_idp, client_id, "hana", device.key)
    srp = device_srp(public_idp, pool_id, client_id, "hana", device)
    challenge = send_srp_a(public_idp, client_id, step["Session"], "hana", device, srp)
    proof = srp.process_device_challenge(challenge["ChallengeParameters"])
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="DEVICE_PASSWORD_VERIFIER",
        Session=challenge["Session"],
        ChallengeResponses=proof,
    )
    assert done["AuthenticationResult"]["AccessToken"]
    with pytest.raises(ClientError) as replayed:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="DEVICE_PASSWORD_VERIFIER",
            Session=challenge["Session"],
            ChallengeResponses=proof,
        )
    assert error_of(replayed)[0] == "NotAuthorizedException"


def test_a_device_key_tells_no_user_from_an_unknown_name(idp: Any, public_idp: Any) -> None:
    """Under PreventUserExistenceErrors an SRP answer naming a device the user does not have is refused as
    "Device does not exist." whether or not the name is a user's (an unknown name's decoy challenge has no
    devices), and the answer again without the key is the same wrong-password refusal for both."""
    pool_id = idp.create_user_pool(PoolName="device-decoy", DeviceConfiguration=OPT_IN)["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="ENABLED"
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="known", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="known", Password=PASSWORD, Permanent=True)

    def answers(name: str) -> list[tuple[str, str]]:
        srp = AWSSRP(
            username=name, password="Wrong-password-1", pool_id=pool_id, client_id=client_id, client=public_idp
        )
        parameters = {
            "USERNAME": name,
            "SRP_A": long_to_hex(srp.large_a_value),
            "DEVICE_KEY": f"{pool_id}-not-a-device",
        }
        started = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=parameters)
        claim = srp.process_challenge(started["ChallengeParameters"], {"USERNAME": name})
        seen = []
        for _ in range(2):  # as amazon-cognito-identity-js does: the key dropped, the same challenge answered again
            with pytest.raises(ClientError) as refused:
                public_idp.respond_to_auth_challenge(
                    ClientId=client_id,
                    ChallengeName="PASSWORD_VERIFIER",
                    ChallengeResponses=claim,
                    Session=started["Session"],
                )
            seen.append(error_of(refused))
        return seen

    expected = [
        ("ResourceNotFoundException", "Device does not exist."),
        ("NotAuthorizedException", "Incorrect username or password."),
    ]
    assert answers("known") == expected
    assert answers("nobody-at-all") == expected


def test_pools_without_device_tracking(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "no-devices", None)
    make_user(idp, pool_id, "nils", "+15555550220")
    result = answer_sms(
        gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, "nils"), "nils", "+15555550220"
    )
    assert "NewDeviceMetadata" not in result["AuthenticationResult"]
    access = result["AuthenticationResult"]["AccessToken"]
    assert "device_key" not in claims_of(access)
    _, config = generate_hash_device("-group", "us-east-1_00000000-0000-4000-8000-000000000000")
    with pytest.raises(ClientError) as off:
        public_idp.confirm_device(
            AccessToken=access,
            DeviceKey="us-east-1_00000000-0000-4000-8000-000000000000",
            DeviceSecretVerifierConfig=config,
        )
    assert error_of(off)[0] == "InvalidUserPoolConfigurationException"
    # A DEVICE_KEY is ignored where devices are not tracked.
    step = password_sign_in(public_idp, client_id, "nils", "us-east-1_00000000-0000-4000-8000-000000000000")
    assert step["ChallengeName"] == "SMS_MFA"


# --- amazon-cognito-identity-js: the acceptance check -----------------------------------------------------------

# The start of both scripts: the request, and the pool over a memory storage shared by every sign-in of the
# script, so the device key, group key and secret survive a sign-out.
_JS_POOL = r"""
const AmazonCognitoIdentity = require('amazon-cognito-identity-js');
const p = JSON.parse(process.argv[2]);
const data = {};
const storage = {
  setItem: (k, v) => { data[k] = String(v); return data[k]; },
  getItem: (k) => (Object.prototype.hasOwnProperty.call(data, k) ? data[k] : null),
  removeItem: (k) => { delete data[k]; },
  clear: () => { for (const k of Object.keys(data)) delete data[k]; },
};
const pool = new AmazonCognitoIdentity.CognitoUserPool({
  UserPoolId: p.poolId, ClientId: p.clientId, endpoint: p.endpoint, Storage: storage,
});
"""

# Sign-in with SMS MFA, the code read from Gatehouse's outbox.
_JS_SMS_SIGN_IN = (
    _JS_POOL
    + r"""
const fs = require('fs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let smsSeen = 0;  // SMS challenges so far, in every sign-in of this script

async function smsCode(count) {
  for (let i = 0; i < 200; i++) {
    if (fs.existsSync(p.outbox)) {
      const texts = fs.readFileSync(p.outbox, 'utf8').split('\n').filter(Boolean).map(JSON.parse)
        .filter((m) => m.kind === 'sms' && m.to === p.phone).map((m) => m.text);
      if (texts.length >= count) return texts[count - 1].match(/\b(\d{6})\b/)[1];
    }
    await sleep(50);
  }
  throw new Error('no SMS');
}

function signIn(events) {
  const user = new AmazonCognitoIdentity.CognitoUser({ Username: p.username, Pool: pool, Storage: storage });
  const details = new AmazonCognitoIdentity.AuthenticationDetails({ Username: p.username, Password: p.password });
  return new Promise((resolve, reject) => {
    const callbacks = {
      onSuccess: (session, userConfirmationNecessary) => resolve({ user, session, userConfirmationNecessary }),
      onFailure: (err) => reject(err),
      mfaRequired: (name, params) => {
        events.push({ challenge: name, params });
        smsSeen += 1;
        smsCode(p.smsBefore + smsSeen)
          .then((code) => user.sendMFACode(code, callbacks, 'SMS_MFA'), reject);
      },
      totpRequired: (name) => { events.push({ challenge: name }); reject(new Error('unexpected TOTP')); },
      selectMFAType: (name) => { events.push({ challenge: name }); reject(new Error('unexpected SELECT_MFA_TYPE')); },
      newPasswordRequired: () => reject(new Error('unexpected NEW_PASSWORD_REQUIRED')),
    };
    user.authenticateUser(details, callbacks);
  });
}
"""
)

_JS_REMEMBER = (
    _JS_SMS_SIGN_IN
    + r"""
(async () => {
  const first = [];
  const one = await signIn(first);
  const deviceKey = one.session.getAccessToken().decodePayload().device_key;
  await new Promise((resolve, reject) => one.user.setDeviceStatusRemembered({
    onSuccess: resolve, onFailure: reject,
  }));
  await new Promise((resolve) => one.user.signOut(resolve));
  const second = [];
  const two = await signIn(second);
  // The device is forgotten on the server (forgetSpecificDevice leaves the client's copy of the keys): the
  // next sign-in names a device that no longer exists, is refused, retries without it, and is asked for MFA.
  await new Promise((resolve, reject) => two.user.forgetSpecificDevice(deviceKey, {
    onSuccess: resolve, onFailure: reject,
  }));
  await new Promise((resolve) => two.user.signOut(resolve));
  const third = [];
  const three = await signIn(third);
  process.stdout.write(JSON.stringify({
    third: third.map((e) => e.challenge),
    thirdDeviceKey: three.session.getAccessToken().decodePayload().device_key,
    ok: true,
    first: first.map((e) => e.challenge),
    firstParams: first.map((e) => e.params),
    userConfirmationNecessary: one.userConfirmationNecessary === true,
    deviceKey,
    second: second.map((e) => e.challenge),
    secondDeviceKey: two.session.getAccessToken().decodePayload().device_key,
    secondValid: two.session.isValid(),
  }));
})().catch((err) => process.stdout.write(JSON.stringify({ ok: false, code: err.code, message: err.message })));
"""
)


def _js_sms_user(
    gatehouse: GatehouseServer, idp: Any, pool_name: str, username: str, phone: str
) -> tuple[str, dict[str, Any]]:
    """An opt-in device pool with SMS MFA and its user; the pool id, and what the _JS_SMS_SIGN_IN scripts take."""
    pool_id, client_id = make_pool(idp, pool_name, OPT_IN)
    make_user(idp, pool_id, username, phone)
    return pool_id, {
        "endpoint": gatehouse.url,
        "poolId": pool_id,
        "clientId": client_id,
        "username": username,
        "password": PASSWORD,
        "phone": phone,
        "outbox": str(gatehouse.data_dir / "outbox.jsonl"),
        "smsBefore": len(outbox_sms(gatehouse, phone)),
    }


def test_amazon_cognito_identity_js_remembers_the_device_and_skips_mfa(
    tmp_path: pathlib.Path, gatehouse: GatehouseServer, idp: Any
) -> None:
    pool_id, request = _js_sms_user(gatehouse, idp, "devices-js", "jules", "+15555550230")
    phone = request["phone"]
    result = run_node(tmp_path, _JS_REMEMBER, request, name="remember.js", timeout=120)
    assert result["ok"] is True, result
    # First sign-in: SMS MFA, then the device is confirmed (the user is asked, so it starts not remembered).
    assert result["first"] == ["SMS_MFA"]
    assert result["firstParams"][0]["CODE_DELIVERY_DESTINATION"] == "+*******0230"
    assert result["userConfirmationNecessary"] is True
    assert re.fullmatch(r"us-east-1_[0-9a-f-]{36}", result["deviceKey"])
    # Second sign-in after signing out: no MFA at all, and the tokens name the remembered device.
    assert result["second"] == []
    assert result["secondDeviceKey"] == result["deviceKey"] and result["secondValid"] is True
    # Third sign-in, after the device was forgotten: MFA again, and a new device.
    assert result["third"] == ["SMS_MFA"]
    assert result["thirdDeviceKey"] != result["deviceKey"]
    assert len(outbox_sms(gatehouse, phone)) == request["smsBefore"] + 2
    listed = idp.admin_list_devices(UserPoolId=pool_id, Username="jules")["Devices"]
    assert [d["DeviceKey"] for d in listed] == [result["thirdDeviceKey"]]
    assert attributes(listed[0])["dev:device_remembered_status"] == "not_remembered"


_JS_NOT_REMEMBERED = (
    _JS_SMS_SIGN_IN
    + r"""
(async () => {
  const first = [];
  const one = await signIn(first);
  await new Promise((resolve) => one.user.signOut(resolve));
  const second = [];
  const two = await signIn(second);
  process.stdout.write(JSON.stringify({
    ok: true,
    first: first.map((e) => e.challenge),
    deviceKey: one.session.getAccessToken().decodePayload().device_key,
    second: second.map((e) => e.challenge),
    secondDeviceKey: two.session.getAccessToken().decodePayload().device_key,
  }));
})().catch((err) => process.stdout.write(JSON.stringify({ ok: false, code: err.code, message: err.message })));
"""
)


def test_amazon_cognito_identity_js_signs_in_again_on_a_device_it_did_not_remember(
    tmp_path: pathlib.Path, gatehouse: GatehouseServer, idp: Any
) -> None:
    """The device is confirmed but the user was not asked to remember it: the next sign-in owes SMS MFA, and
    after the code DEVICE_SRP_AUTH, which CognitoUser.sendMFACode answers with the Session it sent the code
    with (it keeps no new one)."""
    pool_id, request = _js_sms_user(gatehouse, idp, "devices-js-kept", "kim", "+15555550231")
    result = run_node(tmp_path, _JS_NOT_REMEMBERED, request, name="not_remembered.js", timeout=120)
    assert result["ok"] is True, result
    assert result["first"] == ["SMS_MFA"] and result["second"] == ["SMS_MFA"]
    # The same device both times: the second sign-in proved it after the code.
    assert result["secondDeviceKey"] == result["deviceKey"]
    listed = idp.admin_list_devices(UserPoolId=pool_id, Username="kim")["Devices"]
    assert [d["DeviceKey"] for d in listed] == [result["deviceKey"]]
    assert attributes(listed[0])["dev:device_remembered_status"] == "not_remembered"


_JS_SELECT_TOTP = (
    _JS_POOL
    + r"""

function signIn(events) {
  const user = new AmazonCognitoIdentity.CognitoUser({ Username: p.username, Pool: pool, Storage: storage });
  const details = new AmazonCognitoIdentity.AuthenticationDetails({ Username: p.username, Password: p.password });
  return new Promise((resolve, reject) => {
    const callbacks = {
      onSuccess: (session, userConfirmationNecessary) => resolve({ user, session, userConfirmationNecessary }),
      onFailure: (err) => reject(err),
      selectMFAType: (name, params) => {
        events.push({ challenge: name, params });
        user.sendMFASelectionAnswer('SOFTWARE_TOKEN_MFA', callbacks);
      },
      totpRequired: (name) => {
        events.push({ challenge: name });
        user.sendMFACode(p.totp, callbacks, 'SOFTWARE_TOKEN_MFA');
      },
      mfaRequired: (name) => { events.push({ challenge: name }); reject(new Error('unexpected SMS_MFA')); },
    };
    user.authenticateUser(details, callbacks);
  });
}

(async () => {
  const first = [];
  const one = await signIn(first);
  await new Promise((resolve) => one.user.signOut(resolve));
  const second = [];
  const two = await signIn(second);
  process.stdout.write(JSON.stringify({
    ok: true,
    first: first.map((e) => e.challenge),
    choices: first[0] && first[0].params ? first[0].params.MFAS_CAN_CHOOSE : null,
    userConfirmationNecessary: one.userConfirmationNecessary === true,
    deviceKey: one.session.getAccessToken().decodePayload().device_key,
    second: second.map((e) => e.challenge),
    secondDeviceKey: two.session.getAccessToken().decodePayload().device_key,
  }));
})().catch((err) => process.stdout.write(JSON.stringify({ ok: false, code: err.code, message: err.message })));
"""
)


def test_amazon_cognito_identity_js_chooses_totp_and_an_always_remembered_device_skips_it(
    tmp_path: pathlib.Path, gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    pool_id, client_id = make_pool(
        idp, "devices-js-totp", {"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": False}
    )
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True})
    make_user(idp, pool_id, "tess", "+15555550240")
    # Turn TOTP on too (SMS is on already, neither preferred): the client must choose.
    first = answer_sms(
        gatehouse, public_idp, client_id, password_sign_in(public_idp, client_id, "tess"), "tess", "+15555550240"
    )
    access = first["AuthenticationResult"]["AccessToken"]
    secret = public_idp.associate_software_token(AccessToken=access)["SecretCode"]
    into = time.time() % 30
    if into > 20:
        time.sleep(30 - into + 0.2)
    step = int(time.time() // 30)
    public_idp.verify_software_token(AccessToken=access, UserCode=pyotp.TOTP(secret).generate_otp(step - 1))
    public_idp.set_user_mfa_preference(
        AccessToken=access,
        SMSMfaSettings={"Enabled": True, "PreferredMfa": False},
        SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": False},
    )
    sent = len(outbox_sms(gatehouse, "+15555550240"))
    request = {
        "endpoint": gatehouse.url,
        "poolId": pool_id,
        "clientId": client_id,
        "username": "tess",
        "password": PASSWORD,
        "totp": pyotp.TOTP(secret).generate_otp(step),
    }
    result = run_node(tmp_path, _JS_SELECT_TOTP, request, name="remember.js", timeout=120)
    assert result["ok"] is True, result
    assert result["first"] == ["SELECT_MFA_TYPE", "SOFTWARE_TOKEN_MFA"]
    assert result["choices"] == '["SMS_MFA","SOFTWARE_TOKEN_MFA"]'
    # Remembered at once (no user prompt), so the second sign-in asks for nothing.
    assert result["userConfirmationNecessary"] is False
    assert result["second"] == [] and result["secondDeviceKey"] == result["deviceKey"]
    assert len(outbox_sms(gatehouse, "+15555550240")) == sent


def test_an_answer_naming_another_challenge_leaves_the_session_to_its_own(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    """An answer whose ChallengeName is not the Session's (a repeated answer to an earlier step, whose Session
    the device step goes on under) is refused and leaves the Session for the answer it is for."""
    pool_id, client_id = make_pool(idp, "devices-mismatch", OPT_IN)
    phone = "+15555550232"
    make_user(idp, pool_id, "lee", phone)
    step = password_sign_in(public_idp, client_id, "lee")
    assert step["ChallengeName"] == "SMS_MFA"
    with pytest.raises(ClientError) as wrong:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SOFTWARE_TOKEN_MFA",
            Session=step["Session"],
            ChallengeResponses={"USERNAME": "lee", "SOFTWARE_TOKEN_MFA_CODE": "123456"},
        )
    assert error_of(wrong)[0] == "InvalidParameterException"
    done = answer_sms(gatehouse, public_idp, client_id, step, "lee", phone)
    assert done["AuthenticationResult"]["AccessToken"]
