"""User-pool wire fidelity, against a real server with boto3: a forgotten device stays forgotten, a failed
AdminCreateUser with ForceAliasCreation leaves the alias with its holder, list limits as the model gives them
(0 is the default page), and pagination tokens that only page the list they came from.

Spec: the Cognito API reference (ConfirmDevice, ForgetDevice, AdminForgetDevice: ResourceNotFoundException for
a device that does not exist; AdminCreateUser ForceAliasCreation; the List* operations' Limit / MaxResults and
their tokens: "present in an additional API request with the same parameters"), botocore's cognito-idp model
(QueryLimitType 0..60, PoolQueryLimitType 1..60, ListResourceServersLimitType 1..50).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiosmtpd.controller import Controller
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.test_devices import PASSWORD, confirm, password_sign_in
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer, free_port

FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
ALWAYS_REMEMBERED = {"ChallengeRequiredOnNewDevice": False, "DeviceOnlyRememberedOnUserPrompt": False}


# --- a real SMTP server that can be told to refuse ------------------------------------------------------------


class _Handler:
    def __init__(self) -> None:
        self.refuse = False
        self.accepted: list[list[str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.refuse:
                return "554 5.7.1 Message rejected"
            self.accepted.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class RefusingMail:
    """aiosmtpd on a loopback port; ``handler.refuse`` makes it reject every message (554)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _Handler()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)


@pytest.fixture(scope="module")
def smtp() -> Iterator[RefusingMail]:
    mail = RefusingMail()
    mail._controller.start()
    yield mail
    mail._controller.stop()


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, smtp: RefusingMail) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("fidelity") / "data"
    config = f"version: 1\nserver:\n  smtp:\n    host: 127.0.0.1\n    port: {smtp.port}\npools: []\n"
    server = GatehouseServer(data_dir, config=config)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def raw_idp(gatehouse: GatehouseServer) -> Any:
    """Admin client that sends what it is given: the server, not botocore, must check ranges."""
    return boto3.client(
        "cognito-idp",
        endpoint_url=gatehouse.url,
        region_name=REGION,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=False),
    )


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        str(response["Error"]["Code"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
        str(response["Error"].get("Message", "")),
    )


def refused(call: Any, **params: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as exc:
        call(**params)
    return error_of(exc)


def attributes_of(response: dict[str, Any]) -> dict[str, str]:
    items = response.get("UserAttributes", response.get("Attributes", []))
    return {a["Name"]: a["Value"] for a in items}


def claims_of(jwt: str) -> dict[str, Any]:
    import json

    payload = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def permanent_user(idp: Any, pool_id: str, username: str, **attributes: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


# --- 1. devices ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def device_pool(idp: Any) -> tuple[str, str]:
    pool_id = str(idp.create_user_pool(PoolName="devices", DeviceConfiguration=ALWAYS_REMEMBERED)["UserPool"]["Id"])
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def test_a_forgotten_device_cannot_be_confirmed_again(idp: Any, public_idp: Any, device_pool: tuple[str, str]) -> None:
    """ForgetDevice: the device is gone. ConfirmDevice with the same key and the still-valid access token must
    answer ResourceNotFoundException (the device does not exist), not bring the device back."""
    pool_id, client_id = device_pool
    permanent_user(idp, pool_id, "forgetful")
    signed_in = password_sign_in(public_idp, client_id, "forgetful")
    access = signed_in["AuthenticationResult"]["AccessToken"]
    refresh = signed_in["AuthenticationResult"]["RefreshToken"]
    device, necessary = confirm(public_idp, signed_in)
    assert necessary is False
    assert [d["DeviceKey"] for d in public_idp.list_devices(AccessToken=access)["Devices"]] == [device.key]

    public_idp.forget_device(AccessToken=access, DeviceKey=device.key)

    metadata = signed_in["AuthenticationResult"]["NewDeviceMetadata"]
    from pycognito.aws_srp import generate_hash_device

    _, verifier_config = generate_hash_device(metadata["DeviceGroupKey"], metadata["DeviceKey"])
    again = refused(
        public_idp.confirm_device, AccessToken=access, DeviceKey=device.key, DeviceSecretVerifierConfig=verifier_config
    )
    assert again[:2] == ("ResourceNotFoundException", 400), again
    # It stays gone, for every operation that names it.
    assert public_idp.list_devices(AccessToken=access)["Devices"] == []
    assert idp.admin_list_devices(UserPoolId=pool_id, Username="forgetful")["Devices"] == []
    for call, params in (
        (public_idp.get_device, {"AccessToken": access}),
        (public_idp.forget_device, {"AccessToken": access}),
        (public_idp.update_device_status, {"AccessToken": access, "DeviceRememberedStatus": "remembered"}),
        (idp.admin_get_device, {"UserPoolId": pool_id, "Username": "forgetful"}),
        (idp.admin_forget_device, {"UserPoolId": pool_id, "Username": "forgetful"}),
        (
            idp.admin_update_device_status,
            {"UserPoolId": pool_id, "Username": "forgetful", "DeviceRememberedStatus": "remembered"},
        ),
    ):
        assert refused(call, DeviceKey=device.key, **params)[:2] == ("ResourceNotFoundException", 400), call
    # A sign-in or a refresh that names it is answered as for an unknown device.
    with pytest.raises(ClientError) as named:
        password_sign_in(public_idp, client_id, "forgetful", device_key=device.key)
    assert error_of(named)[:2] == ("ResourceNotFoundException", 400)
    with pytest.raises(ClientError) as refreshed:
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": refresh, "DEVICE_KEY": device.key},
        )
    assert error_of(refreshed)[:2] == ("ResourceNotFoundException", 400)
    assert idp.admin_list_devices(UserPoolId=pool_id, Username="forgetful")["Devices"] == []

    # The user is not stuck: a new sign-in gets a new device, which can be confirmed.
    fresh = password_sign_in(public_idp, client_id, "forgetful")
    other, _ = confirm(public_idp, fresh, name="phone")
    assert other.key != device.key
    fresh_access = fresh["AuthenticationResult"]["AccessToken"]
    assert [d["DeviceKey"] for d in public_idp.list_devices(AccessToken=fresh_access)["Devices"]] == [other.key]


def test_a_device_forgotten_by_an_admin_cannot_be_confirmed_again(
    idp: Any, public_idp: Any, device_pool: tuple[str, str]
) -> None:
    pool_id, client_id = device_pool
    permanent_user(idp, pool_id, "managed")
    signed_in = password_sign_in(public_idp, client_id, "managed")
    access = signed_in["AuthenticationResult"]["AccessToken"]
    device, _ = confirm(public_idp, signed_in)
    idp.admin_forget_device(UserPoolId=pool_id, Username="managed", DeviceKey=device.key)
    with pytest.raises(ClientError) as again:
        confirm(public_idp, signed_in)
    assert error_of(again)[:2] == ("ResourceNotFoundException", 400)
    assert public_idp.list_devices(AccessToken=access)["Devices"] == []
    assert claims_of(access)["device_key"] == device.key  # the token still names it; the device is gone


# --- 2. ForceAliasCreation and a failed invitation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def alias_pool(idp: Any) -> tuple[str, str]:
    pool_id = str(
        idp.create_user_pool(PoolName="aliases", AliasAttributes=["email", "preferred_username"])["UserPool"]["Id"]
    )
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def signs_in_as(public_idp: Any, client_id: str, alias: str, password: str = PASSWORD) -> str:
    result = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": alias, "PASSWORD": password}
    )
    return str(claims_of(result["AuthenticationResult"]["AccessToken"])["username"])


def test_force_alias_creation_with_an_undeliverable_invitation_changes_nothing(
    idp: Any, public_idp: Any, alias_pool: tuple[str, str], smtp: RefusingMail
) -> None:
    """AdminCreateUser with ForceAliasCreation moves a verified email alias to the new user -- but a call that
    fails (CodeDeliveryFailureException: the invitation could not be sent) must leave the holder its alias."""
    pool_id, client_id = alias_pool
    permanent_user(idp, pool_id, "holder", email="shared@example.com", email_verified="true")
    before = idp.admin_get_user(UserPoolId=pool_id, Username="holder")
    assert signs_in_as(public_idp, client_id, "shared@example.com") == "holder"

    smtp.handler.refuse = True
    try:
        failed = refused(
            idp.admin_create_user,
            UserPoolId=pool_id,
            Username="newcomer",
            UserAttributes=[
                {"Name": "email", "Value": "shared@example.com"},
                {"Name": "email_verified", "Value": "true"},
            ],
            DesiredDeliveryMediums=["EMAIL"],
            ForceAliasCreation=True,
        )
    finally:
        smtp.handler.refuse = False
    assert failed[:2] == ("CodeDeliveryFailureException", 400), failed
    assert refused(idp.admin_get_user, UserPoolId=pool_id, Username="newcomer")[0] == "UserNotFoundException"
    after = idp.admin_get_user(UserPoolId=pool_id, Username="holder")
    assert attributes_of(after) == attributes_of(before)
    assert after["UserLastModifiedDate"] == before["UserLastModifiedDate"]
    assert signs_in_as(public_idp, client_id, "shared@example.com") == "holder"

    # Delivered, the same call moves the alias: the holder keeps the address, unverified.
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="newcomer",
        TemporaryPassword="Temp-pass-123",
        UserAttributes=[{"Name": "email", "Value": "shared@example.com"}, {"Name": "email_verified", "Value": "true"}],
        DesiredDeliveryMediums=["EMAIL"],
        ForceAliasCreation=True,
    )
    assert ["shared@example.com"] in smtp.handler.accepted
    holder = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="holder"))
    assert holder["email"] == "shared@example.com" and holder["email_verified"] == "false"
    step = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "shared@example.com", "PASSWORD": "Temp-pass-123"},
    )
    assert step["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert step["ChallengeParameters"]["USER_ID_FOR_SRP"] == "newcomer"


def test_force_alias_creation_refused_for_another_alias_changes_nothing(
    idp: Any, public_idp: Any, alias_pool: tuple[str, str]
) -> None:
    """ForceAliasCreation migrates email and phone only; a preferred_username held by someone else fails the
    call with AliasExistsException -- after which the email alias must still be its holder's."""
    pool_id, client_id = alias_pool
    permanent_user(idp, pool_id, "mail-holder", email="taken@example.com", email_verified="true")
    permanent_user(idp, pool_id, "nick-holder", preferred_username="nick")
    before = idp.admin_get_user(UserPoolId=pool_id, Username="mail-holder")
    failed = refused(
        idp.admin_create_user,
        UserPoolId=pool_id,
        Username="grabber",
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": "taken@example.com"},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "preferred_username", "Value": "nick"},
        ],
        ForceAliasCreation=True,
    )
    assert failed[:2] == ("AliasExistsException", 400), failed
    assert refused(idp.admin_get_user, UserPoolId=pool_id, Username="grabber")[0] == "UserNotFoundException"
    after = idp.admin_get_user(UserPoolId=pool_id, Username="mail-holder")
    assert attributes_of(after) == attributes_of(before)
    assert after["UserLastModifiedDate"] == before["UserLastModifiedDate"]
    assert signs_in_as(public_idp, client_id, "taken@example.com") == "mail-holder"
    assert signs_in_as(public_idp, client_id, "nick") == "nick-holder"


# --- 3. limits ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listed(idp: Any, public_idp: Any) -> dict[str, Any]:
    """Two pools with five users each, three groups, a user in all three, devices, providers, servers, clients,
    auth events: every list has more than one entry."""
    pools = []
    for name in ("list-a", "list-b"):
        pool_id = str(
            idp.create_user_pool(
                PoolName=name,
                DeviceConfiguration=ALWAYS_REMEMBERED,
                UserPoolAddOns={"AdvancedSecurityMode": "AUDIT"},
            )["UserPool"]["Id"]
        )
        pools.append(pool_id)
        for i in range(5):
            permanent_user(idp, pool_id, f"user-{i}", email=f"user-{i}@{name}.example")
        for group in ("g1", "g2", "g3"):
            idp.create_group(UserPoolId=pool_id, GroupName=group)
            for i in range(4):
                idp.admin_add_user_to_group(UserPoolId=pool_id, Username=f"user-{i}", GroupName=group)
        for provider in ("Google", "Facebook", "LoginWithAmazon"):
            idp.create_identity_provider(
                UserPoolId=pool_id,
                ProviderName=provider,
                ProviderType=provider,
                ProviderDetails={"client_id": "id", "client_secret": "secret", "authorize_scopes": "email"},
            )
        for identifier in ("https://one", "https://two", "https://three"):
            idp.create_resource_server(UserPoolId=pool_id, Identifier=identifier, Name=identifier[8:])
    clients = []
    for name in ("c1", "c2", "c3"):
        created = idp.create_user_pool_client(UserPoolId=pools[0], ClientName=name, ExplicitAuthFlows=FLOWS)
        clients.append(str(created["UserPoolClient"]["ClientId"]))
    for pool_id in pools[1:]:
        for name in ("d1", "d2", "d3"):
            idp.create_user_pool_client(UserPoolId=pool_id, ClientName=name)
    # Three devices (and three sign-in events) for user-0 of pool A.
    access = ""
    for _ in range(3):
        signed_in = password_sign_in(public_idp, clients[0], "user-0")
        confirm(public_idp, signed_in)
        access = signed_in["AuthenticationResult"]["AccessToken"]
    return {"a": pools[0], "b": pools[1], "access": access}


def test_limit_zero_is_the_default_page(idp: Any, listed: dict[str, Any]) -> None:
    """QueryLimitType (and ListProvidersLimitType) allow 0: it is answered as no Limit at all, never as a
    one-entry page (which made a paginator with Limit 0 take one round trip per entry)."""
    a = listed["a"]
    cases: list[tuple[Any, dict[str, Any], str, str]] = [
        (idp.list_users, {"UserPoolId": a}, "Limit", "Users"),
        (idp.list_users_in_group, {"UserPoolId": a, "GroupName": "g1"}, "Limit", "Users"),
        (idp.list_groups, {"UserPoolId": a}, "Limit", "Groups"),
        (idp.admin_list_groups_for_user, {"UserPoolId": a, "Username": "user-0"}, "Limit", "Groups"),
        (idp.admin_list_devices, {"UserPoolId": a, "Username": "user-0"}, "Limit", "Devices"),
        (idp.list_identity_providers, {"UserPoolId": a}, "MaxResults", "Providers"),
        (idp.admin_list_user_auth_events, {"UserPoolId": a, "Username": "user-0"}, "MaxResults", "AuthEvents"),
    ]
    for call, params, limit, key in cases:
        whole = call(**params)
        zero = call(**params, **{limit: 0})
        assert len(whole[key]) >= 3, (call, whole)
        assert zero[key] == whole[key], call
        assert "NextToken" not in zero and "PaginationToken" not in zero, call


def test_limits_out_of_the_models_range_are_invalid(raw_idp: Any, listed: dict[str, Any]) -> None:
    a = listed["a"]
    cases: list[tuple[Any, dict[str, Any], str, int]] = [
        (raw_idp.list_users, {"UserPoolId": a}, "Limit", 61),
        (raw_idp.list_users, {"UserPoolId": a}, "Limit", -1),
        (raw_idp.list_users_in_group, {"UserPoolId": a, "GroupName": "g1"}, "Limit", 61),
        (raw_idp.list_groups, {"UserPoolId": a}, "Limit", 61),
        (raw_idp.list_user_pools, {}, "MaxResults", 0),
        (raw_idp.list_user_pools, {}, "MaxResults", 61),
        (raw_idp.list_user_pool_clients, {"UserPoolId": a}, "MaxResults", 0),
        (raw_idp.list_resource_servers, {"UserPoolId": a}, "MaxResults", 0),
        (raw_idp.list_resource_servers, {"UserPoolId": a}, "MaxResults", 51),
        (raw_idp.list_identity_providers, {"UserPoolId": a}, "MaxResults", 61),
        (raw_idp.admin_list_devices, {"UserPoolId": a, "Username": "user-0"}, "Limit", 61),
        (raw_idp.admin_list_groups_for_user, {"UserPoolId": a, "Username": "user-0"}, "Limit", 61),
        (raw_idp.admin_list_user_auth_events, {"UserPoolId": a, "Username": "user-0"}, "MaxResults", 61),
    ]
    for call, params, limit, value in cases:
        code, status, message = refused(call, **params, **{limit: value})
        assert (code, status) == ("InvalidParameterException", 400), (call, value, message)
        assert "failed to satisfy constraint" in message


# --- 4. pagination tokens -----------------------------------------------------------------------------------------


def all_pages(call: Any, params: dict[str, Any], token: str, key: str, name: str) -> list[str]:
    """Every entry of a list, two at a time, following the list's own tokens."""
    seen: list[str] = []
    extra: dict[str, Any] = {}
    while True:
        page = call(**params, **extra)
        seen += [item[name] for item in page[key]]
        if token not in page:
            return seen
        extra = {token: page[token]}


def test_pagination_tokens_page_only_their_own_list(idp: Any, public_idp: Any, listed: dict[str, Any]) -> None:
    """A token is "an identifier that you can present in an additional API request with the same parameters":
    one from another pool, group, filter, user or operation is an InvalidParameterException, as is one that
    was altered; the genuine tokens still page through every entry once."""
    a, b = listed["a"], listed["b"]
    lists: list[tuple[Any, dict[str, Any], str, str, str, dict[str, Any]]] = [
        # call, its parameters, token member, item list, item name, the same list elsewhere
        (idp.list_users, {"UserPoolId": a}, "PaginationToken", "Users", "Username", {"UserPoolId": b}),
        (
            idp.list_users,
            {"UserPoolId": a, "Filter": 'email ^= "user"'},
            "PaginationToken",
            "Users",
            "Username",
            {"UserPoolId": a},
        ),
        (
            idp.list_users_in_group,
            {"UserPoolId": a, "GroupName": "g1"},
            "NextToken",
            "Users",
            "Username",
            {"UserPoolId": a, "GroupName": "g2"},
        ),
        (idp.list_groups, {"UserPoolId": a}, "NextToken", "Groups", "GroupName", {"UserPoolId": b}),
        (
            idp.admin_list_groups_for_user,
            {"UserPoolId": a, "Username": "user-0"},
            "NextToken",
            "Groups",
            "GroupName",
            {"UserPoolId": a, "Username": "user-1"},
        ),
        (
            idp.list_user_pool_clients,
            {"UserPoolId": a},
            "NextToken",
            "UserPoolClients",
            "ClientName",
            {"UserPoolId": b},
        ),
        (idp.list_identity_providers, {"UserPoolId": a}, "NextToken", "Providers", "ProviderName", {"UserPoolId": b}),
        (idp.list_resource_servers, {"UserPoolId": a}, "NextToken", "ResourceServers", "Identifier", {"UserPoolId": b}),
        (
            idp.admin_list_devices,
            {"UserPoolId": a, "Username": "user-0"},
            "PaginationToken",
            "Devices",
            "DeviceKey",
            {"UserPoolId": a, "Username": "user-1"},
        ),
    ]
    for call, params, token_name, key, name, elsewhere in lists:
        limit = "MaxResults" if call in (idp.list_user_pool_clients, idp.list_identity_providers) else "Limit"
        if call == idp.list_resource_servers:
            limit = "MaxResults"
        first = call(**params, **{limit: 2})
        token = first[token_name]
        whole = [item[name] for item in call(**params)[key]]
        assert len(whole) >= 3, call
        assert all_pages(call, {**params, limit: 2}, token_name, key, name) == whole, call

        other = refused(call, **elsewhere, **{limit: 2, token_name: token})
        assert other[:2] == ("InvalidParameterException", 400), (call, elsewhere, other)
        flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
        assert refused(call, **params, **{token_name: flipped})[:2] == ("InvalidParameterException", 400), call
        assert refused(call, **params, **{token_name: token[:-4]})[:2] == ("InvalidParameterException", 400), call

    # Across operations: a ListUsers token is no ListGroups or ListUsersInGroup token of the same pool.
    users_token = idp.list_users(UserPoolId=a, Limit=2)["PaginationToken"]
    assert refused(idp.list_groups, UserPoolId=a, NextToken=users_token)[0] == "InvalidParameterException"
    assert (
        refused(idp.list_users_in_group, UserPoolId=a, GroupName="g1", NextToken=users_token)[0]
        == "InvalidParameterException"
    )
    # The device list through the user's own access token pages the same way, and takes only its own tokens.
    access = listed["access"]
    mine = public_idp.list_devices(AccessToken=access, Limit=2)
    rest = public_idp.list_devices(AccessToken=access, Limit=2, PaginationToken=mine["PaginationToken"])
    assert len(mine["Devices"]) + len(rest["Devices"]) == 3
    admin_token = idp.admin_list_devices(UserPoolId=a, Username="user-1", Limit=1).get("PaginationToken")
    assert admin_token is None  # user-1 has no devices
    pools_page = idp.list_user_pools(MaxResults=1)
    assert (
        refused(public_idp.list_devices, AccessToken=access, PaginationToken=pools_page["NextToken"])[0]
        == "InvalidParameterException"
    )


def test_an_undeliverable_resent_invitation_keeps_the_temporary_password(
    idp: Any, public_idp: Any, alias_pool: tuple[str, str], smtp: RefusingMail
) -> None:
    """MessageAction RESEND makes a new temporary password and sends it. When it cannot be sent the call fails
    (CodeDeliveryFailureException), and the password the user already has must still be the one that works."""
    pool_id, client_id = alias_pool
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="invitee",
        TemporaryPassword="First-temp-123",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "invitee@example.com"}],
    )
    before = idp.admin_get_user(UserPoolId=pool_id, Username="invitee")
    smtp.handler.refuse = True
    try:
        failed = refused(
            idp.admin_create_user,
            UserPoolId=pool_id,
            Username="invitee",
            MessageAction="RESEND",
            DesiredDeliveryMediums=["EMAIL"],
        )
    finally:
        smtp.handler.refuse = False
    assert failed[:2] == ("CodeDeliveryFailureException", 400), failed
    after = idp.admin_get_user(UserPoolId=pool_id, Username="invitee")
    assert after["UserLastModifiedDate"] == before["UserLastModifiedDate"]
    step = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "invitee", "PASSWORD": "First-temp-123"},
    )
    assert step["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    # Delivered, the resend replaces it.
    idp.admin_create_user(
        UserPoolId=pool_id, Username="invitee", MessageAction="RESEND", DesiredDeliveryMediums=["EMAIL"]
    )
    assert ["invitee@example.com"] in smtp.handler.accepted
    with pytest.raises(ClientError) as old:
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "invitee", "PASSWORD": "First-temp-123"},
        )
    assert error_of(old)[:2] == ("NotAuthorizedException", 400)


# --- the identity pools' lists: the same rule ------------------------------------------------------------------


def test_identity_pool_tokens_page_only_their_own_list(gatehouse: GatehouseServer) -> None:
    ci = gatehouse.client("cognito-identity")
    public = gatehouse.client("cognito-identity", signed=False)
    developer = "login.fidelity.example"
    pools = [
        ci.create_identity_pool(
            IdentityPoolName=f"paging{n}", AllowUnauthenticatedIdentities=True, DeveloperProviderName=developer
        )["IdentityPoolId"]
        for n in range(3)
    ]
    a, b = pools[0], pools[1]
    for pool in (a, b):
        for _ in range(3):
            public.get_id(IdentityPoolId=pool)

    def refused(**params: Any) -> str:
        with pytest.raises(ClientError) as caught:
            ci.list_identities(**params)
        return str(caught.value.response["Error"]["Code"])

    first = ci.list_identities(IdentityPoolId=a, MaxResults=2)
    token = first["NextToken"]
    rest = ci.list_identities(IdentityPoolId=a, MaxResults=2, NextToken=token)
    paged = [i["IdentityId"] for i in first["Identities"] + rest["Identities"]]
    whole = [i["IdentityId"] for i in ci.list_identities(IdentityPoolId=a, MaxResults=60)["Identities"]]
    assert sorted(paged) == sorted(whole) and len(whole) == 3 and "NextToken" not in rest
    # Another pool, another HideDisabled, altered, and a ListIdentityPools token: refused, not read as a position.
    assert refused(IdentityPoolId=b, MaxResults=2, NextToken=token) == "InvalidParameterException"
    assert refused(IdentityPoolId=a, MaxResults=2, NextToken=token, HideDisabled=True) == "InvalidParameterException"
    altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert refused(IdentityPoolId=a, MaxResults=2, NextToken=altered) == "InvalidParameterException"
    pools_token = ci.list_identity_pools(MaxResults=1)["NextToken"]
    assert refused(IdentityPoolId=a, MaxResults=2, NextToken=pools_token) == "InvalidParameterException"
    with pytest.raises(ClientError) as caught:
        ci.list_identity_pools(MaxResults=1, NextToken=token)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"

    # LookupDeveloperIdentity: a token pages one identity's developer user identifiers.
    identities = []
    for n in range(2):
        first_login = ci.get_open_id_token_for_developer_identity(IdentityPoolId=a, Logins={developer: f"dev-{n}-a"})
        ci.get_open_id_token_for_developer_identity(
            IdentityPoolId=a, IdentityId=first_login["IdentityId"], Logins={developer: f"dev-{n}-b"}
        )
        identities.append(first_login["IdentityId"])
    page = ci.lookup_developer_identity(IdentityPoolId=a, IdentityId=identities[0], MaxResults=1)
    assert page["DeveloperUserIdentifierList"] == ["dev-0-a"]
    rest = ci.lookup_developer_identity(
        IdentityPoolId=a, IdentityId=identities[0], MaxResults=1, NextToken=page["NextToken"]
    )
    assert rest["DeveloperUserIdentifierList"] == ["dev-0-b"]
    with pytest.raises(ClientError) as caught:
        ci.lookup_developer_identity(
            IdentityPoolId=a, IdentityId=identities[1], MaxResults=1, NextToken=page["NextToken"]
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
