"""The admin and read operations of the user pools API, member by member, against a running Gatehouse.

The spec: botocore's cognito-idp service model (the shapes on the wire), Cognito's API reference (the defaults
it applies and the members it reports), and what infrastructure tools that run against Cognito send and read
back (Terraform's ``token_validity_units`` block without validity values, for one).

Real server, real boto3 clients; the tokens are read as any verifier would read them.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import generate_hash_device

PASSWORD = "Admin-check-123!"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="admin-members")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def username(idp: Any, pool_id: str) -> str:
    idp.admin_create_user(UserPoolId=pool_id, Username="ada", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="ada", Password=PASSWORD, Permanent=True)
    return "ada"


def sign_in(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    return dict(
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
    )


# --- Token validity units without validity values ---------------------------------------------------------------


@pytest.mark.parametrize("unit", ["days", "hours", "minutes", "seconds"])
def test_token_validity_units_alone_keep_the_default_lifetimes(
    idp: Any, public_idp: Any, pool_id: str, username: str, unit: str
) -> None:
    """TokenValidityUnits names the unit "for the value that you set in the AccessTokenValidity parameter"; with no
    value set the lifetimes stay Cognito's defaults (an hour for ID and access tokens, 30 days for the refresh
    token), whatever the unit. Terraform's ``token_validity_units`` block sends units alone, and Cognito takes them
    (hours, days, ...): Gatehouse refused them as 60 days (or hours) of access token, or made 30 minutes of refresh
    token. Now the client is made, described with the units given, and its tokens last the default lifetimes."""
    units = {"AccessToken": unit, "IdToken": unit, "RefreshToken": unit}
    created = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName=f"units-{unit}", ExplicitAuthFlows=FLOWS, TokenValidityUnits=units
    )["UserPoolClient"]
    assert created["TokenValidityUnits"] == units
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=created["ClientId"])["UserPoolClient"]
    assert described["TokenValidityUnits"] == units
    result = sign_in(public_idp, created["ClientId"], username)
    assert result["ExpiresIn"] == 3600
    for token in ("AccessToken", "IdToken"):
        claims = claims_of(result[token])
        assert claims["exp"] - claims["iat"] == 3600
    # The refresh token still works (and was not made for 30 minutes or 30 seconds).
    refreshed = public_idp.initiate_auth(
        ClientId=created["ClientId"],
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]},
    )["AuthenticationResult"]
    assert refreshed["ExpiresIn"] == 3600


def test_a_token_validity_unit_alone_on_update_keeps_the_default_lifetime(
    idp: Any, public_idp: Any, pool_id: str, username: str
) -> None:
    """The same on UpdateUserPoolClient: one unit given alone (``access_token = "days"``) leaves an hour's access
    token, and the value given beside another unit is read in that unit."""
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="unit-update", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    updated = idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=client_id,
        ExplicitAuthFlows=FLOWS,
        IdTokenValidity=2,
        TokenValidityUnits={"AccessToken": "days", "IdToken": "hours"},
    )["UserPoolClient"]
    assert updated["TokenValidityUnits"]["AccessToken"] == "days"
    assert (updated["IdTokenValidity"], updated["TokenValidityUnits"]["IdToken"]) == (2, "hours")
    result = sign_in(public_idp, client_id, username)
    access, identity = claims_of(result["AccessToken"]), claims_of(result["IdToken"])
    assert access["exp"] - access["iat"] == 3600
    assert identity["exp"] - identity["iat"] == 7200


# --- Device attributes -----------------------------------------------------------------------------------------


def test_devices_name_the_last_address_used_as_cognito_does(idp: Any, public_idp: Any) -> None:
    """A device's DeviceAttributes carry the source address of its last sign-in as ``last_ip_used`` (GetDevice,
    AdminListDevices in Cognito's API reference); apps and Amplify's ``fetchDevices`` read that name. Gatehouse
    answered ``last_ip``, so the address never showed; now every device read names it as Cognito does."""
    pool_id = idp.create_user_pool(
        PoolName="admin-devices",
        DeviceConfiguration={"ChallengeRequiredOnNewDevice": False, "DeviceOnlyRememberedOnUserPrompt": False},
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="dev", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="dev", Password=PASSWORD, Permanent=True)
    result = sign_in(public_idp, client_id, "dev")
    metadata = result["NewDeviceMetadata"]
    _, verifier = generate_hash_device(metadata["DeviceGroupKey"], metadata["DeviceKey"])
    public_idp.confirm_device(
        AccessToken=result["AccessToken"],
        DeviceKey=metadata["DeviceKey"],
        DeviceSecretVerifierConfig=verifier,
        DeviceName="laptop",
    )
    reads = [
        public_idp.get_device(AccessToken=result["AccessToken"], DeviceKey=metadata["DeviceKey"])["Device"],
        public_idp.list_devices(AccessToken=result["AccessToken"])["Devices"][0],
        idp.admin_get_device(UserPoolId=pool_id, Username="dev", DeviceKey=metadata["DeviceKey"])["Device"],
        idp.admin_list_devices(UserPoolId=pool_id, Username="dev")["Devices"][0],
    ]
    for device in reads:
        attributes = {a["Name"]: a["Value"] for a in device["DeviceAttributes"]}
        assert attributes["last_ip_used"] == "127.0.0.1", device
        assert "last_ip" not in attributes
        assert attributes["device_name"] == "laptop"


# --- Deleting a pool that serves a domain ------------------------------------------------------------------------


def test_a_pool_with_a_domain_is_not_deleted_until_the_domain_is(idp: Any) -> None:
    """Cognito refuses DeleteUserPool while the pool has a domain: InvalidParameterException "User pool cannot be
    deleted. It has a domain configured that should be deleted first." (what Terraform's and aws-nuke's users
    meet). Gatehouse deleted the pool and its hosted-UI domain with it. Now the pool, its domain and its clients
    stay until DeleteUserPoolDomain has run; then DeleteUserPool goes through."""
    pool_id = idp.create_user_pool(PoolName="admin-domain")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
    idp.create_user_pool_domain(UserPoolId=pool_id, Domain="admin-kept")
    with pytest.raises(ClientError) as exc:
        idp.delete_user_pool(UserPoolId=pool_id)
    assert error_of(exc) == (
        "InvalidParameterException",
        "User pool cannot be deleted. It has a domain configured that should be deleted first.",
    )
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Domain"] == "admin-kept"
    assert idp.describe_user_pool_domain(Domain="admin-kept")["DomainDescription"]["UserPoolId"] == pool_id
    assert idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]["ClientName"]

    idp.delete_user_pool_domain(UserPoolId=pool_id, Domain="admin-kept")
    idp.delete_user_pool(UserPoolId=pool_id)
    with pytest.raises(ClientError) as exc:
        idp.describe_user_pool(UserPoolId=pool_id)
    assert error_of(exc)[0] == "ResourceNotFoundException"


# --- A domain's managed login version ------------------------------------------------------------------------------


def test_a_domain_reports_the_managed_login_version_it_was_given(idp: Any) -> None:
    """CreateUserPoolDomain and UpdateUserPoolDomain take ManagedLoginVersion (1: hosted UI classic, 2: managed
    login), which both answer and DescribeUserPoolDomain reports. Gatehouse answered 1 whatever was asked, so a
    Terraform ``managed_login_version = 2`` never stopped planning a change. Now the version is kept as set (the
    pages served are the same), 1 when none is given, and a version that is neither is refused."""
    pool_id = idp.create_user_pool(PoolName="admin-login-version")["UserPool"]["Id"]
    created = idp.create_user_pool_domain(UserPoolId=pool_id, Domain="admin-v2", ManagedLoginVersion=2)
    assert created["ManagedLoginVersion"] == 2
    assert idp.describe_user_pool_domain(Domain="admin-v2")["DomainDescription"]["ManagedLoginVersion"] == 2
    updated = idp.update_user_pool_domain(UserPoolId=pool_id, Domain="admin-v2", ManagedLoginVersion=1)
    assert updated["ManagedLoginVersion"] == 1
    assert idp.describe_user_pool_domain(Domain="admin-v2")["DomainDescription"]["ManagedLoginVersion"] == 1
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool_domain(UserPoolId=pool_id, Domain="admin-v2", ManagedLoginVersion=3)
    assert error_of(exc)[0] == "InvalidParameterException"
    assert idp.describe_user_pool_domain(Domain="admin-v2")["DomainDescription"]["ManagedLoginVersion"] == 1

    other = idp.create_user_pool(PoolName="admin-login-default")["UserPool"]["Id"]
    assert idp.create_user_pool_domain(UserPoolId=other, Domain="admin-v1")["ManagedLoginVersion"] == 1
    assert idp.describe_user_pool_domain(Domain="admin-v1")["DomainDescription"]["ManagedLoginVersion"] == 1


# --- UI customization of a client that does not exist -------------------------------------------------------------


def test_get_ui_customization_of_an_unknown_client_is_not_found(idp: Any) -> None:
    """GetUICustomization names a ClientId that must be one of the pool's app clients (SetUICustomization refuses
    an unknown one with ResourceNotFoundException). Gatehouse answered the pool's customization under the made-up
    client's name; now it is ResourceNotFoundException, and a real client still gets the pool's CSS."""
    pool_id = idp.create_user_pool(PoolName="admin-ui")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
    other_pool = idp.create_user_pool(PoolName="admin-ui-other")["UserPool"]["Id"]
    foreign = idp.create_user_pool_client(UserPoolId=other_pool, ClientName="app")["UserPoolClient"]["ClientId"]
    css = ".banner-customizable {background-color: black;}"
    idp.create_user_pool_domain(UserPoolId=pool_id, Domain="admin-ui")  # SetUICustomization needs one
    idp.set_ui_customization(UserPoolId=pool_id, CSS=css)
    for unknown in ("ghostclient0000000000000", foreign):
        with pytest.raises(ClientError) as exc:
            idp.get_ui_customization(UserPoolId=pool_id, ClientId=unknown)
        assert error_of(exc) == ("ResourceNotFoundException", f"User pool client {unknown} does not exist.")
    mine = idp.get_ui_customization(UserPoolId=pool_id, ClientId=client_id)["UICustomization"]
    assert (mine["ClientId"], mine["CSS"]) == (client_id, css)


# --- Admin operations name a user by their sub ------------------------------------------------------------------


@pytest.mark.parametrize("aliases", [[], ["email"]], ids=["plain", "email-alias"])
def test_admin_operations_find_a_user_by_sub_in_any_pool(idp: Any, aliases: list[str]) -> None:
    """The Admin* operations' Username "can be any of their alias attributes. If username isn't an alias attribute
    in your user pool, this value must be the sub of a local user" (AdminGetUser): back ends keep the ``sub`` of
    the ID token and call AdminGetUser, AdminUpdateUserAttributes, AdminAddUserToGroup ... with it. Gatehouse
    found a user by sub only in pools whose usernames are emails or phone numbers (UserNotFoundException
    elsewhere). Now every admin look-up takes the sub, and answers with the user's own username."""
    pool_id = idp.create_user_pool(PoolName=f"admin-sub-{len(aliases)}", AliasAttributes=aliases)["UserPool"]["Id"]
    created = idp.admin_create_user(
        UserPoolId=pool_id,
        Username="sol",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "sol@example.com"}, {"Name": "email_verified", "Value": "true"}],
    )["User"]
    sub = {a["Name"]: a["Value"] for a in created["Attributes"]}["sub"]
    idp.create_group(UserPoolId=pool_id, GroupName="staff")

    assert idp.admin_get_user(UserPoolId=pool_id, Username=sub)["Username"] == "sol"
    idp.admin_update_user_attributes(UserPoolId=pool_id, Username=sub, UserAttributes=[{"Name": "name", "Value": "S"}])
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=sub, GroupName="staff")
    assert [g["GroupName"] for g in idp.admin_list_groups_for_user(UserPoolId=pool_id, Username=sub)["Groups"]] == [
        "staff"
    ]
    idp.admin_disable_user(UserPoolId=pool_id, Username=sub)
    user = idp.admin_get_user(UserPoolId=pool_id, Username="sol")
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["name"] == "S"
    assert user["Enabled"] is False
    idp.admin_delete_user(UserPoolId=pool_id, Username=sub)
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username="sol")
    assert error_of(exc)[0] == "UserNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username=sub)
    assert error_of(exc) == ("UserNotFoundException", "User does not exist.")


@pytest.mark.parametrize("domain", ["a b", "UPPER", "-bad-", "ab\x00cd", "x..example.com"])
def test_describing_a_value_that_is_no_domain_is_refused(idp: Any, domain: str) -> None:
    """Neither a prefix nor a host name: InvalidParameterException, where a domain no pool has (of either form)
    is an empty description."""
    with pytest.raises(ClientError) as exc:
        idp.describe_user_pool_domain(Domain=domain)
    assert error_of(exc)[0] == "InvalidParameterException"
    assert idp.describe_user_pool_domain(Domain="no-pool-has-this")["DomainDescription"] == {}
    assert idp.describe_user_pool_domain(Domain="auth.no-pool.example.com")["DomainDescription"] == {}


@pytest.mark.parametrize("domain", [" padded-prefix", "padded-prefix ", "auth.padded.example.com "])
def test_a_domain_with_spaces_is_refused_and_not_created(idp: Any, domain: str) -> None:
    pool_id = idp.create_user_pool(PoolName="admin-padded")["UserPool"]["Id"]
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool_domain(UserPoolId=pool_id, Domain=domain)
    assert error_of(exc)[0] == "InvalidParameterException"
    assert "Domain" not in idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert idp.describe_user_pool_domain(Domain=domain.strip())["DomainDescription"] == {}
    idp.delete_user_pool(UserPoolId=pool_id)
