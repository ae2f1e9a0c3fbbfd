"""preferred_username as a sign-in alias: a name chosen freely, so it may not stand for anyone else.

Cognito's rules ("User pool attributes", aliases; the alias sign-in settings): alias values are unique in a
pool; "If you select preferred_username as an alias, your user can provide the value only when they confirm an
account. They can't provide the value during registration" (SignUp answers "Preferred username cannot be
provided for unconfirmed account, since user pool is configured for preferred username alias.") -- so a pool
cannot require it either. And a freely chosen name does not take what another user's sign-in name is: not
another user's username, nor another user's verified email address or phone number.

Of the same kind: an invitation template must carry {username} ("Your custom message must contain the
{username} and {####} placeholders"), and an upstream profile's mapped values obey the pool's schema as the
API's writes do.

Real server, real boto3 clients (and a fake OIDC provider for federation); every refused call leaves the store
as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.e2e.federation_support import Flow, corp_details
from tests.e2e.oauth_support import CALLBACK, query_of
from tests.fakes.oauth import FakeOIDC
from tests.support import GatehouseServer, MailServer

PASSWORD = "Alias-pass-123!"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        str(response["Error"]["Code"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
        str(response["Error"]["Message"]),
    )


def attributes_of(idp: Any, pool_id: str, username: str) -> dict[str, str]:
    user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}


def make_user(idp: Any, pool_id: str, username: str, attributes: dict[str, str]) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def signed_in_as(public_idp: Any, client_id: str, name: str) -> str:
    """The username in the ID token of a password sign-in with ``name``."""
    result = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": name, "PASSWORD": PASSWORD}
    )["AuthenticationResult"]
    return str(jwt.decode(result["IdToken"], options={"verify_signature": False})["cognito:username"])


@pytest.fixture(scope="module")
def alias_pool(idp: Any) -> tuple[str, str]:
    """preferred_username first among the aliases, then a verified email or phone number."""
    pool_id = idp.create_user_pool(
        PoolName="nickname-aliases",
        AliasAttributes=["preferred_username", "email", "phone_number"],
        AutoVerifiedAttributes=["email"],
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    return str(pool_id), str(client_id)


# --- Not at sign-up ---------------------------------------------------------------------------------------------


def test_sign_up_cannot_give_a_preferred_username_alias(public_idp: Any, idp: Any, alias_pool: tuple[str, str]) -> None:
    """An unconfirmed account would hold the alias: anyone could sign up (never confirming) to keep a name from
    everyone else. Refused with Cognito's words, and no user is made; without the preferred_username the same
    sign-up goes through."""
    pool_id, client_id = alias_pool
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(
            ClientId=client_id,
            Username="squatter",
            Password=PASSWORD,
            UserAttributes=[{"Name": "preferred_username", "Value": "ceo"}],
        )
    assert error_of(exc) == (
        "InvalidParameterException",
        400,
        "Preferred username cannot be provided for unconfirmed account, since user pool is configured for "
        "preferred username alias.",
    )
    with pytest.raises(ClientError) as missing:
        idp.admin_get_user(UserPoolId=pool_id, Username="squatter")
    assert error_of(missing)[0] == "UserNotFoundException"
    with pytest.raises(ClientError) as missing:
        idp.admin_get_user(UserPoolId=pool_id, Username="ceo")
    assert error_of(missing)[0] == "UserNotFoundException"

    public_idp.sign_up(ClientId=client_id, Username="squatter", Password=PASSWORD)
    assert "preferred_username" not in attributes_of(idp, pool_id, "squatter")


def test_sign_up_gives_a_preferred_username_where_it_is_no_alias(public_idp: Any, idp: Any) -> None:
    """Where preferred_username is only an attribute, sign-up may carry it."""
    pool_id = idp.create_user_pool(PoolName="nickname-attribute")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    public_idp.sign_up(
        ClientId=client_id,
        Username="named",
        Password=PASSWORD,
        UserAttributes=[{"Name": "preferred_username", "Value": "nick"}],
    )
    assert attributes_of(idp, pool_id, "named")["preferred_username"] == "nick"


def test_a_pool_cannot_require_a_preferred_username_alias(idp: Any) -> None:
    """Required at sign-up, yet not to be given at sign-up: no one could sign up. No pool is made; either one
    alone is fine."""
    schema = [{"Name": "preferred_username", "AttributeDataType": "String", "Required": True}]
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName="impossible-nickname", AliasAttributes=["preferred_username"], Schema=schema)
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    names = [p["Name"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]]
    assert "impossible-nickname" not in names
    idp.create_user_pool(PoolName="required-nickname", Schema=schema)
    idp.create_user_pool(PoolName="alias-nickname", AliasAttributes=["preferred_username"])


# --- Not another user's sign-in name ----------------------------------------------------------------------------


def test_a_preferred_username_does_not_stand_for_another_users_verified_email_or_phone(
    idp: Any, public_idp: Any, alias_pool: tuple[str, str], mail: MailServer
) -> None:
    """mallory names herself alice's email address (in other case) and bob's phone number. alice's verified
    address and bob's verified phone still sign alice and bob in, AdminGetUser finds them, and a reset code
    asked for with alice's address goes to alice -- not to mallory's account."""
    pool_id, client_id = alias_pool
    make_user(idp, pool_id, "alice", {"email": "alice@example.com", "email_verified": "true"})
    make_user(idp, pool_id, "bob", {"phone_number": "+15555550123", "phone_number_verified": "true"})
    make_user(idp, pool_id, "mallory", {"email": "mallory@example.com", "email_verified": "true"})
    for value in ("ALICE@example.com", "+15555550123"):
        try:
            idp.admin_update_user_attributes(
                UserPoolId=pool_id, Username="mallory", UserAttributes=[{"Name": "preferred_username", "Value": value}]
            )
        except ClientError as exc:  # refusing the name outright keeps it from alice and bob as well
            assert exc.response["Error"]["Code"] in ("AliasExistsException", "InvalidParameterException")

    assert signed_in_as(public_idp, client_id, "alice@example.com") == "alice"
    assert signed_in_as(public_idp, client_id, "+15555550123") == "bob"
    assert idp.admin_get_user(UserPoolId=pool_id, Username="alice@example.com")["Username"] == "alice"
    assert idp.admin_get_user(UserPoolId=pool_id, Username="+15555550123")["Username"] == "bob"

    delivery = public_idp.forgot_password(ClientId=client_id, Username="alice@example.com")["CodeDeliveryDetails"]
    assert delivery["AttributeName"] == "email"
    mail.wait_for("alice@example.com")
    assert mail.messages_to("mallory@example.com") == []


def test_a_preferred_username_cannot_be_another_users_username(
    idp: Any, public_idp: Any, alias_pool: tuple[str, str]
) -> None:
    """carol's username is her sign-in name; dave cannot take it as his preferred_username, neither by an
    administrator's update, nor by his own UpdateUserAttributes, nor at AdminCreateUser. Nothing changes; dave
    may take his own username, or a name no one has."""
    pool_id, client_id = alias_pool
    make_user(idp, pool_id, "carol", {})
    make_user(idp, pool_id, "dave", {"preferred_username": "davey"})
    expected = ("AliasExistsException", 400, "An account with the given preferred_username already exists.")

    with pytest.raises(ClientError) as exc:
        idp.admin_update_user_attributes(
            UserPoolId=pool_id, Username="dave", UserAttributes=[{"Name": "preferred_username", "Value": "Carol"}]
        )
    assert error_of(exc) == expected

    token = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "dave", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["AccessToken"]
    with pytest.raises(ClientError) as exc:
        public_idp.update_user_attributes(
            AccessToken=token, UserAttributes=[{"Name": "preferred_username", "Value": "carol"}]
        )
    assert error_of(exc) == expected
    assert attributes_of(idp, pool_id, "dave")["preferred_username"] == "davey"

    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username="erin",
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "preferred_username", "Value": "carol"}],
        )
    assert error_of(exc) == expected
    with pytest.raises(ClientError) as missing:
        idp.admin_get_user(UserPoolId=pool_id, Username="erin")
    assert error_of(missing)[0] == "UserNotFoundException"

    public_idp.update_user_attributes(
        AccessToken=token, UserAttributes=[{"Name": "preferred_username", "Value": "dave"}]
    )
    public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "preferred_username", "Value": "dj"}])
    assert signed_in_as(public_idp, client_id, "dj") == "dave"
    assert signed_in_as(public_idp, client_id, "carol") == "carol"


def test_a_new_password_answer_cannot_take_another_users_username_as_preferred_username(
    idp: Any, public_idp: Any, alias_pool: tuple[str, str]
) -> None:
    """The NEW_PASSWORD_REQUIRED answer may carry attributes; one naming another user's username as the
    preferred_username is refused before the password changes: the user is still to choose one."""
    pool_id, client_id = alias_pool
    make_user(idp, pool_id, "henry", {})
    temporary = "Temporary-pass-1!"
    idp.admin_create_user(UserPoolId=pool_id, Username="gina", TemporaryPassword=temporary, MessageAction="SUPPRESS")
    challenge = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "gina", "PASSWORD": temporary}
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="NEW_PASSWORD_REQUIRED",
            Session=challenge["Session"],
            ChallengeResponses={
                "USERNAME": "gina",
                "NEW_PASSWORD": PASSWORD,
                "userAttributes.preferred_username": "henry",
            },
        )
    assert error_of(exc)[:2] == ("AliasExistsException", 400)
    gina = idp.admin_get_user(UserPoolId=pool_id, Username="gina")
    assert gina["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert "preferred_username" not in {a["Name"] for a in gina["UserAttributes"]}
    assert signed_in_as(public_idp, client_id, "henry") == "henry"


def test_a_new_username_cannot_be_another_users_preferred_username(
    idp: Any, public_idp: Any, alias_pool: tuple[str, str]
) -> None:
    """frank signs in as "boss". A new user named boss (or Boss: preferred usernames compare without case)
    would take that name from him -- SignUp and AdminCreateUser refuse it as a taken username, and "boss" still
    signs frank in."""
    pool_id, client_id = alias_pool
    make_user(idp, pool_id, "frank", {"preferred_username": "boss"})

    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(UserPoolId=pool_id, Username="boss", MessageAction="SUPPRESS")
    assert error_of(exc)[:2] == ("UsernameExistsException", 400)
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(ClientId=client_id, Username="Boss", Password=PASSWORD)
    assert error_of(exc)[:2] == ("UsernameExistsException", 400)

    assert idp.admin_get_user(UserPoolId=pool_id, Username="boss")["Username"] == "frank"
    assert signed_in_as(public_idp, client_id, "boss") == "frank"
    public_idp.sign_up(ClientId=client_id, Username="bossy", Password=PASSWORD)


# --- The invitation names the user -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        {"EmailMessage": "Your temporary password is {####}.", "EmailSubject": "Welcome"},
        {"SMSMessage": "Your temporary password is {####}."},
    ],
)
def test_an_invitation_template_must_carry_the_username(idp: Any, template: dict[str, str]) -> None:
    """ "Your custom message must contain the {username} and {####} placeholders" (customizing user invitation
    messages): without {username} an invited user is never told the name to sign in with. Refused on
    CreateUserPool (no pool) and UpdateUserPool (the pool unchanged), as the config file refuses it; a template
    with both placeholders is taken."""
    name = f"invite-{'-'.join(template)}".lower()
    config = {"AllowAdminCreateUserOnly": True, "InviteMessageTemplate": template}
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName=name, AdminCreateUserConfig=config)
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert name not in [p["Name"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]]

    pool_id = idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
    before = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["AdminCreateUserConfig"]
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, AdminCreateUserConfig=config)
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["AdminCreateUserConfig"] == before

    fixed = {k: (v + " Your username is {username}." if k != "EmailSubject" else v) for k, v in template.items()}
    idp.update_user_pool(
        UserPoolId=pool_id, AdminCreateUserConfig={"AllowAdminCreateUserOnly": True, "InviteMessageTemplate": fixed}
    )
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["AdminCreateUserConfig"]
    assert described["InviteMessageTemplate"] == fixed


# --- Federated attributes obey the schema too ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        yield server


def test_mapped_upstream_values_the_schema_refuses_are_left_out(
    gatehouse: GatehouseServer, idp: Any, corp: FakeOIDC
) -> None:
    """An upstream profile is written through the AttributeMapping; a value the pool's schema refuses from
    SignUp or AdminUpdateUserAttributes -- a birthdate that is no date, a Number that is no number, a Boolean
    that is neither true nor false, an email or phone number not in their form -- is left out of the federated
    user (as a value too long already is), never stored to reach tokens and applications as if valid. The
    valid values beside them are kept."""
    pool_id = idp.create_user_pool(
        PoolName="federated-values",
        Schema=[
            {"Name": "level", "AttributeDataType": "Number", "NumberAttributeConstraints": {"MinValue": "1"}},
            {"Name": "member", "AttributeDataType": "Boolean"},
        ],
    )["UserPool"]["Id"]
    idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Corp",
        ProviderType="OIDC",
        ProviderDetails=corp_details(corp),
        AttributeMapping={
            "email": "email",
            "phone_number": "phone",
            "birthdate": "birthdate",
            "custom:level": "level",
            "custom:member": "member",
            "name": "name",
        },
    )
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="spa",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["Corp"],
    )["UserPoolClient"]["ClientId"]

    def sign_in() -> dict[str, str]:
        flow = Flow(gatehouse, client_id)
        response = flow.run(flow.authorize_url(identity_provider="Corp"))
        assert response.status_code in (302, 303), response.text
        return query_of(response.headers["Location"])

    corp.user = {
        "sub": "odd-1",
        "email": "not an address",
        "phone": "call me",
        "birthdate": "yesterday",
        "level": "lots",
        "member": "perhaps",
        "name": "Odd One",
    }
    assert "code" in sign_in()
    stored = attributes_of(idp, pool_id, "Corp_odd-1")
    for name in ("email", "phone_number", "birthdate", "custom:level", "custom:member"):
        assert name not in stored, name
    assert stored["name"] == "Odd One"

    corp.user = {
        "sub": "fine-1",
        "email": "fine@corp.example",
        "phone": "+15555550188",
        "birthdate": "1990-01-31",
        "level": "3",
        "member": "true",
        "name": "Fine One",
    }
    assert "code" in sign_in()
    stored = attributes_of(idp, pool_id, "Corp_fine-1")
    assert (stored["email"], stored["phone_number"], stored["birthdate"]) == (
        "fine@corp.example",
        "+15555550188",
        "1990-01-31",
    )
    assert (stored["custom:level"], stored["custom:member"]) == ("3", "true")
