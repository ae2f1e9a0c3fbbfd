"""Hostile cases on the user-pool wire: who may read and write which attribute, what a verification code
proves, attribute value checks and list parameters. Real server, real boto3; each refused call is checked
to have changed nothing.

Spec: the Cognito API reference (UserPoolClientType.ReadAttributes/WriteAttributes, SchemaAttributeType,
VerifyUserAttribute, ListUsers) and botocore's cognito-idp model for the error types.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from email.message import Message
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer, MailServer, code_in

PASSWORD = "Perm-pass-123"
TEMPORARY = "Temp-pass-123"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        str(response["Error"]["Code"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
        str(response["Error"].get("Message", "")),
    )


def attributes_of(response: dict[str, Any]) -> dict[str, str]:
    items = response.get("UserAttributes", response.get("Attributes", []))
    return {a["Name"]: a["Value"] for a in items}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def pool(idp: Any) -> str:
    """A pool with typed custom attributes and no auto-verification (codes only on request)."""
    return str(
        idp.create_user_pool(
            PoolName="hostile",
            Schema=[
                {
                    "Name": "level",
                    "AttributeDataType": "Number",
                    "NumberAttributeConstraints": {"MinValue": "1", "MaxValue": "10"},
                },
                {"Name": "internal", "AttributeDataType": "String", "DeveloperOnlyAttribute": True},
                {"Name": "tier", "AttributeDataType": "String"},
            ],
        )["UserPool"]["Id"]
    )


def make_client(idp: Any, pool_id: str, **settings: Any) -> str:
    created = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName=unique("app"), ExplicitAuthFlows=FLOWS, **settings
    )
    return str(created["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, attributes: dict[str, str], *, permanent: bool = True) -> str:
    username = unique("user")
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
        TemporaryPassword=TEMPORARY,
        MessageAction="SUPPRESS",
    )
    if permanent:
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return username


def sign_in(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    result = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return dict(result["AuthenticationResult"])


def stored(idp: Any, pool_id: str, username: str) -> dict[str, str]:
    return attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username=username))


# --- verification codes ------------------------------------------------------------------------------------------


def test_a_verification_refused_for_a_taken_alias_keeps_its_code(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """VerifyUserAttribute of an address another user holds as an alias is AliasExistsException, and a failed
    call changes nothing: the code is not used up, and verifies the address once its holder has let it go."""
    pool_id = idp.create_user_pool(PoolName="alias-verify", AliasAttributes=["email"])["UserPool"]["Id"]
    client_id = make_client(idp, pool_id)
    taken = f"{unique('taken')}@example.com"
    holder = make_user(idp, pool_id, {"email": taken, "email_verified": "true"})
    username = make_user(idp, pool_id, {"email": f"{unique('own')}@example.com", "email_verified": "true"})
    token = sign_in(public_idp, client_id, username)["AccessToken"]
    public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "email", "Value": taken}])
    public_idp.get_user_attribute_verification_code(AccessToken=token, AttributeName="email")
    code = code_in(mail.wait_for(taken))
    with pytest.raises(ClientError) as exc:
        public_idp.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code)
    assert error_of(exc)[:2] == ("AliasExistsException", 400)
    assert stored(idp, pool_id, username).get("email_verified") != "true"
    moved = [{"Name": "email", "Value": f"{unique('moved')}@example.com"}]
    idp.admin_update_user_attributes(UserPoolId=pool_id, Username=holder, UserAttributes=moved)
    public_idp.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code)
    after = stored(idp, pool_id, username)
    assert (after["email"], after["email_verified"]) == (taken, "true")


def test_attribute_code_does_not_verify_a_value_it_was_not_sent_to(
    idp: Any, public_idp: Any, mail: MailServer, pool: str
) -> None:
    """A code proves control of the address it was sent to. Getting a code at one's own address, then
    switching the email to someone else's, must not let that code mark the other address verified."""
    client_id = make_client(idp, pool)
    own, victim = f"{unique('own')}@example.com", f"{unique('victim')}@example.com"
    username = make_user(idp, pool, {"email": own})
    token = sign_in(public_idp, client_id, username)["AccessToken"]
    public_idp.get_user_attribute_verification_code(AccessToken=token, AttributeName="email")
    code = code_in(mail.wait_for(own))
    public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "email", "Value": victim}])
    assert mail.messages_to(victim) == []  # the pool does not auto-verify: no code went to the new address

    with pytest.raises(ClientError) as exc:
        public_idp.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code)
    assert error_of(exc)[:2] == ("CodeMismatchException", 400)
    after = stored(idp, pool, username)
    assert after["email"] == victim and after.get("email_verified") != "true"

    # A code sent to the new address verifies it.
    public_idp.get_user_attribute_verification_code(AccessToken=token, AttributeName="email")
    public_idp.verify_user_attribute(AccessToken=token, AttributeName="email", Code=code_in(mail.wait_for(victim)))
    assert stored(idp, pool, username)["email_verified"] == "true"


def test_held_attribute_updates_need_auto_verification(idp: Any) -> None:
    """A change can wait for its verification only where a code is sent for it: Cognito answers
    "All attributes in AttributesRequireVerificationBeforeUpdate must exist in AutoVerifiedAttributes"."""
    held = {"AttributesRequireVerificationBeforeUpdate": ["email"]}
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName=unique("held"), UserAttributeUpdateSettings=held)
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    pool_id = idp.create_user_pool(PoolName=unique("held"), AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    for auto_verified in ([], ["phone_number"]):
        with pytest.raises(ClientError) as exc:
            idp.update_user_pool(
                UserPoolId=pool_id, AutoVerifiedAttributes=auto_verified, UserAttributeUpdateSettings=held
            )
        assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["AutoVerifiedAttributes"] == ["email"]
    assert not (described.get("UserAttributeUpdateSettings") or {}).get("AttributesRequireVerificationBeforeUpdate")
    idp.update_user_pool(UserPoolId=pool_id, AutoVerifiedAttributes=["email"], UserAttributeUpdateSettings=held)
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["UserAttributeUpdateSettings"] == held


# --- read and write permissions of the app client --------------------------------------------------------------


def test_get_user_returns_only_the_clients_read_attributes(idp: Any, public_idp: Any, pool: str) -> None:
    """ReadAttributes: "their access token authorizes them to read their own attribute value for any
    attribute in this list" -- GetUser through a client answers no more than that list (and sub)."""
    limited = make_client(idp, pool, ReadAttributes=["email", "custom:tier"])
    everything = make_client(idp, pool)
    username = make_user(
        idp,
        pool,
        {"email": f"{unique('r')}@example.com", "name": "Secret Name", "custom:tier": "gold", "custom:internal": "x"},
    )
    limited_view = attributes_of(public_idp.get_user(AccessToken=sign_in(public_idp, limited, username)["AccessToken"]))
    assert set(limited_view) == {"sub", "email", "custom:tier"}
    full_view = attributes_of(public_idp.get_user(AccessToken=sign_in(public_idp, everything, username)["AccessToken"]))
    assert {"sub", "email", "name", "custom:tier", "custom:internal"} <= set(full_view)
    assert full_view["sub"] == limited_view["sub"]


def test_get_user_through_a_deleted_client_reads_nothing(idp: Any, public_idp: Any, pool: str) -> None:
    """Once its app client is gone, an access token no longer has a client whose ReadAttributes could allow
    anything: deleting the client revoked the tokens it issued, and GetUser answers as for any revoked token."""
    client_id = make_client(idp, pool, ReadAttributes=["email"])
    username = make_user(idp, pool, {"email": f"{unique('gone')}@example.com"})
    token = sign_in(public_idp, client_id, username)["AccessToken"]
    assert set(attributes_of(public_idp.get_user(AccessToken=token))) == {"sub", "email"}
    idp.delete_user_pool_client(UserPoolId=pool, ClientId=client_id)
    with pytest.raises(ClientError) as exc:
        public_idp.get_user(AccessToken=token)
    assert error_of(exc) == ("NotAuthorizedException", 400, "Access Token has been revoked")


def test_user_cannot_delete_what_they_cannot_write(idp: Any, public_idp: Any, pool: str) -> None:
    """DeleteUserAttributes is a write: developer-only attributes, attributes outside the client's
    WriteAttributes and the verification flags stay out of a user's reach; an administrator still may."""
    writer = make_client(idp, pool, WriteAttributes=["name", "custom:tier"])
    open_client = make_client(idp, pool)
    attributes = {
        "email": f"{unique('d')}@example.com",
        "email_verified": "true",
        "name": "N",
        "nickname": "nick",
        "custom:tier": "gold",
        "custom:internal": "keep",
    }
    username = make_user(idp, pool, attributes)
    limited_token = sign_in(public_idp, writer, username)["AccessToken"]
    open_token = sign_in(public_idp, open_client, username)["AccessToken"]
    before = stored(idp, pool, username)

    refused = [
        (open_token, ["custom:internal"], "InvalidParameterException"),
        (limited_token, ["nickname"], "NotAuthorizedException"),
        (limited_token, ["name", "nickname"], "NotAuthorizedException"),
        (open_token, ["email_verified"], "InvalidParameterException"),
    ]
    for token, names, expected in refused:
        with pytest.raises(ClientError) as exc:
            public_idp.delete_user_attributes(AccessToken=token, UserAttributeNames=names)
        assert error_of(exc)[:2] == (expected, 400), names
    assert stored(idp, pool, username) == before

    public_idp.delete_user_attributes(AccessToken=limited_token, UserAttributeNames=["custom:tier"])
    idp.admin_delete_user_attributes(UserPoolId=pool, Username=username, UserAttributeNames=["custom:internal"])
    after = stored(idp, pool, username)
    assert "custom:tier" not in after and "custom:internal" not in after and after["nickname"] == "nick"


def test_user_cannot_forge_identities(idp: Any, public_idp: Any, gatehouse: GatehouseServer, pool: str) -> None:
    """`identities` records federated sign-ins and becomes the ID token's `identities` claim: a user may not
    write it, neither at sign-up nor afterwards."""
    client_id = make_client(idp, pool)
    forged = json.dumps(
        [{"userId": "1", "providerName": "Google", "providerType": "Google", "primary": True, "dateCreated": 1}]
    )
    username = make_user(idp, pool, {"name": "N"})
    token = sign_in(public_idp, client_id, username)["AccessToken"]
    with pytest.raises(ClientError) as exc:
        public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "identities", "Value": forged}])
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert "identities" not in stored(idp, pool, username)
    id_token = sign_in(public_idp, client_id, username)["IdToken"]
    assert "identities" not in jwt.decode(id_token, options={"verify_signature": False})

    newcomer = unique("newcomer")
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(
            ClientId=client_id,
            Username=newcomer,
            Password=PASSWORD,
            UserAttributes=[{"Name": "identities", "Value": forged}],
        )
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool, Username=newcomer)
    assert error_of(exc)[0] == "UserNotFoundException"


def test_new_password_challenge_obeys_write_attributes(idp: Any, public_idp: Any, pool: str) -> None:
    """Attributes given with NEW_PASSWORD_REQUIRED are the user's own writes: outside the client's
    WriteAttributes they are refused, before the password changes."""
    client_id = make_client(idp, pool, WriteAttributes=["name"])
    username = make_user(idp, pool, {"name": "N"}, permanent=False)

    def challenge() -> str:
        started = public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": TEMPORARY},
        )
        assert started["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
        return str(started["Session"])

    for name, expected in (("nickname", "NotAuthorizedException"), ("email_verified", "InvalidParameterException")):
        with pytest.raises(ClientError) as exc:
            public_idp.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="NEW_PASSWORD_REQUIRED",
                Session=challenge(),
                ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": PASSWORD, f"userAttributes.{name}": "true"},
            )
        assert error_of(exc)[:2] == (expected, 400), name
        user = idp.admin_get_user(UserPoolId=pool, Username=username)
        assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD" and name not in attributes_of(user)

    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge(),
        ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": PASSWORD, "userAttributes.name": "New Name"},
    )
    assert done["AuthenticationResult"]["AccessToken"]
    assert stored(idp, pool, username)["name"] == "New Name"


@pytest.fixture(scope="module")
def alias_pool(idp: Any) -> tuple[str, str]:
    pool_id = str(
        idp.create_user_pool(PoolName="aliases", AliasAttributes=["email"], AutoVerifiedAttributes=["email"])[
            "UserPool"
        ]["Id"]
    )
    return pool_id, make_client(idp, pool_id)


def test_confirm_sign_up_alias_conflict_keeps_the_code(
    idp: Any, public_idp: Any, mail: MailServer, alias_pool: tuple[str, str]
) -> None:
    """ConfirmSignUp ForceAliasCreation: "If this parameter is set to False, the API will throw an
    AliasExistsException error" -- and the app then repeats the call with True. The refused call changes
    nothing (the code included), so that repeat, with the same code, goes through."""
    pool_id, client_id = alias_pool
    shared = f"{unique('shared')}@example.com"
    holder = make_user(idp, pool_id, {"email": shared, "email_verified": "true"})
    taker = unique("taker")
    public_idp.sign_up(
        ClientId=client_id,
        Username=taker,
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": shared.upper()}],
    )
    code = code_in(mail.wait_for(shared.upper()))

    with pytest.raises(ClientError) as exc:
        public_idp.confirm_sign_up(ClientId=client_id, Username=taker, ConfirmationCode=code)
    assert error_of(exc) == ("AliasExistsException", 400, "An account with the given email already exists.")
    assert idp.admin_get_user(UserPoolId=pool_id, Username=taker)["UserStatus"] == "UNCONFIRMED"
    assert stored(idp, pool_id, holder)["email_verified"] == "true"
    assert sign_in(public_idp, client_id, shared)["AccessToken"]  # the alias still names the holder

    public_idp.confirm_sign_up(ClientId=client_id, Username=taker, ConfirmationCode=code, ForceAliasCreation=True)
    assert idp.admin_get_user(UserPoolId=pool_id, Username=taker)["UserStatus"] == "CONFIRMED"
    assert stored(idp, pool_id, holder)["email_verified"] == "false"
    id_token = sign_in(public_idp, client_id, shared)["IdToken"]
    assert jwt.decode(id_token, options={"verify_signature": False})["cognito:username"] == taker
    with pytest.raises(ClientError) as exc:
        public_idp.confirm_sign_up(ClientId=client_id, Username=taker, ConfirmationCode=code)
    assert error_of(exc)[0] == "NotAuthorizedException"


def test_username_cannot_be_a_phone_number_in_a_phone_alias_pool(idp: Any, public_idp: Any) -> None:
    """ "If phone number is selected as an alias, a username that matches a valid phone number pattern won't be
    accepted" (User pool attributes, aliases): such a username would shadow another user's phone alias."""
    pool_id = idp.create_user_pool(PoolName="phones", AliasAttributes=["phone_number"])["UserPool"]["Id"]
    client_id = make_client(idp, pool_id)
    holder = make_user(idp, pool_id, {"phone_number": "+15555550142", "phone_number_verified": "true"})
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(ClientId=client_id, Username="+15555550142", Password=PASSWORD)
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(UserPoolId=pool_id, Username="+15555550143", MessageAction="SUPPRESS")
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert [u["Username"] for u in idp.list_users(UserPoolId=pool_id)["Users"]] == [holder]
    id_token = sign_in(public_idp, client_id, "+15555550142")["IdToken"]
    assert jwt.decode(id_token, options={"verify_signature": False})["cognito:username"] == holder


def test_force_alias_creation_does_not_take_a_preferred_username(idp: Any) -> None:
    """ForceAliasCreation migrates "the phone number or email address" alias only. A preferred_username stays
    with its holder (AliasExistsException for the newcomer), and the holder is left whole and updatable."""
    pool_id = idp.create_user_pool(PoolName="nicknames", AliasAttributes=["preferred_username", "email"])["UserPool"][
        "Id"
    ]
    holder = make_user(idp, pool_id, {"preferred_username": "boss"})
    before = stored(idp, pool_id, holder)
    newcomer = unique("newcomer")
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=newcomer,
            UserAttributes=[{"Name": "preferred_username", "Value": "Boss"}],
            MessageAction="SUPPRESS",
            ForceAliasCreation=True,
        )
    assert error_of(exc) == (
        "AliasExistsException",
        400,
        "An account with the given preferred_username already exists.",
    )
    assert stored(idp, pool_id, holder) == before
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username=holder, UserAttributes=[{"Name": "name", "Value": "H"}]
    )
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username=newcomer)
    assert error_of(exc)[0] == "UserNotFoundException"


def test_boolean_attribute_values_are_stored_in_lower_case(
    idp: Any, public_idp: Any, alias_pool: tuple[str, str]
) -> None:
    """A Boolean is "true" or "false" whatever case it was sent in; "True" must not be kept as a value that
    reads as unverified everywhere Gatehouse checks the flag (aliases, account recovery)."""
    pool_id, client_id = alias_pool
    address = f"{unique('flag')}@example.com"
    username = make_user(idp, pool_id, {"email": address})
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username=username, UserAttributes=[{"Name": "email_verified", "Value": "True"}]
    )
    assert stored(idp, pool_id, username)["email_verified"] == "true"
    id_token = sign_in(public_idp, client_id, address)["IdToken"]  # the verified email is now an alias
    assert jwt.decode(id_token, options={"verify_signature": False})["cognito:username"] == username


def test_users_own_attribute_updates_cannot_send_codes_without_end(
    idp: Any, public_idp: Any, mail: MailServer, alias_pool: tuple[str, str]
) -> None:
    """Each change of an auto-verified email sends a code to the new address, which the user picks: the
    sends count against the per-user code budget (5 per 15 minutes by default), and past it the update is
    refused before anything changes. An administrator's update is not limited."""
    pool_id, client_id = alias_pool
    username = make_user(idp, pool_id, {"email": f"{unique('start')}@example.com"})
    token = sign_in(public_idp, client_id, username)["AccessToken"]
    targets = [f"{unique('flood')}@example.com" for _ in range(6)]
    for target in targets[:5]:
        public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "email", "Value": target}])
        mail.wait_for(target)
    with pytest.raises(ClientError) as exc:
        public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "email", "Value": targets[5]}])
    assert error_of(exc)[:2] == ("TooManyRequestsException", 400)
    assert stored(idp, pool_id, username)["email"] == targets[4]
    # Other attributes still change; an administrator's change of the email still goes through.
    public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "name", "Value": "Still Here"}])
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username=username, UserAttributes=[{"Name": "email", "Value": targets[5]}]
    )
    assert stored(idp, pool_id, username)["email"] == targets[5]
    mail.wait_for(targets[5])
    assert len(mail.messages_to(targets[5])) == 1  # only the administrator's change sent one


# --- attribute values --------------------------------------------------------------------------------------------


# (An empty value is no number to refuse: it deletes the attribute, test_self_service_edges.py.)
@pytest.mark.parametrize("value", ["nan", "NaN", "Infinity", "-inf", "1_0", " 5", "5 ", "\u0665", "0x5", "11", "0"])
def test_number_attribute_refuses_what_is_not_a_number_in_range(idp: Any, pool: str, value: str) -> None:
    """A Number attribute holds a number within Min/MaxValue; NaN in particular compares false to both
    bounds and must not slip past them."""
    username = make_user(idp, pool, {"custom:level": "5"})
    with pytest.raises(ClientError) as exc:
        idp.admin_update_user_attributes(
            UserPoolId=pool, Username=username, UserAttributes=[{"Name": "custom:level", "Value": value}]
        )
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert stored(idp, pool, username)["custom:level"] == "5"


@pytest.mark.parametrize("value", ["1", "10", "7.5", "+3", "1e1"])
def test_number_attribute_accepts_numbers_in_range(idp: Any, pool: str, value: str) -> None:
    username = make_user(idp, pool, {"custom:level": "5"})
    idp.admin_update_user_attributes(
        UserPoolId=pool, Username=username, UserAttributes=[{"Name": "custom:level", "Value": value}]
    )
    assert stored(idp, pool, username)["custom:level"] == value


def test_required_attribute_cannot_be_emptied(idp: Any, public_idp: Any) -> None:
    """A required attribute may not be taken away -- deleted, or overwritten with an empty value -- by the
    user or by an administrator."""
    pool_id = idp.create_user_pool(
        PoolName="required", Schema=[{"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True}]
    )["UserPool"]["Id"]
    client_id = make_client(idp, pool_id)
    username = make_user(idp, pool_id, {"name": "Kept"})
    token = sign_in(public_idp, client_id, username)["AccessToken"]
    calls: list[Callable[[], Any]] = [
        lambda: idp.admin_update_user_attributes(
            UserPoolId=pool_id, Username=username, UserAttributes=[{"Name": "name", "Value": ""}]
        ),
        lambda: public_idp.update_user_attributes(AccessToken=token, UserAttributes=[{"Name": "name", "Value": ""}]),
        lambda: public_idp.delete_user_attributes(AccessToken=token, UserAttributeNames=["name"]),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    assert stored(idp, pool_id, username)["name"] == "Kept"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("email", "someone@example.com\n"),
        ("phone_number", "+15555550100\n"),
        ("phone_number", "+1\u0665\u0665\u0665\u0665\u0665\u0665\u0665"),  # Arabic-Indic digits
    ],
)
def test_email_and_phone_formats_are_whole_value(idp: Any, public_idp: Any, pool: str, name: str, value: str) -> None:
    """An address with a trailing newline is a different alias than the address (so it dodges uniqueness) while
    mail still reaches the address; E.164 is "+" and ASCII digits only."""
    client_id = make_client(idp, pool)
    username = unique("format")
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool,
            Username=username,
            UserAttributes=[{"Name": name, "Value": value}],
            MessageAction="SUPPRESS",
        )
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(
            ClientId=client_id, Username=username, Password=PASSWORD, UserAttributes=[{"Name": name, "Value": value}]
        )
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool, Username=username)
    assert error_of(exc)[0] == "UserNotFoundException"


def html_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no HTML part")


def test_username_is_no_markup_in_the_html_of_a_code_email(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """A SignUp username (UsernameType allows < > " = /) filled into the pool's HTML template must arrive as
    text, not as a link or markup in a mail sent from the pool's own address."""
    pool_id = idp.create_user_pool(
        PoolName="templates",
        AutoVerifiedAttributes=["email"],
        VerificationMessageTemplate={
            "DefaultEmailOption": "CONFIRM_WITH_CODE",
            "EmailMessage": "<p>Hello {username}, your code is <b>{####}</b>.</p>",
            "EmailSubject": "Welcome",
        },
    )["UserPool"]["Id"]
    client_id = make_client(idp, pool_id)
    address = f"{unique('markup')}@example.com"
    username = '<a/href="https://evil.example/">Verify</a>'
    public_idp.sign_up(
        ClientId=client_id, Username=username, Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": address}]
    )
    message = mail.wait_for(address)
    html = html_part(message)
    assert "<a" not in html and "&lt;a/href=&quot;https://evil.example/&quot;&gt;Verify&lt;/a&gt;" in html
    assert html.startswith("<p>Hello ") and "<b>" in html  # the administrator's own markup stays
    code = code_in(message)
    assert f"<b>{code}</b>" in html
    public_idp.confirm_sign_up(ClientId=client_id, Username=username, ConfirmationCode=code)


# --- lists -------------------------------------------------------------------------------------------------------


def test_list_users_attributes_to_get_must_name_schema_attributes(idp: Any, pool: str) -> None:
    make_user(idp, pool, {"name": "N"})
    with pytest.raises(ClientError) as exc:
        idp.list_users(UserPoolId=pool, AttributesToGet=["name", "no_such_attribute"])
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    listed = idp.list_users(UserPoolId=pool, AttributesToGet=["name"])["Users"]
    assert listed and all(set(attributes_of(u)) <= {"name"} for u in listed)


def test_list_users_filter_unescapes_quotes_and_backslashes(idp: Any) -> None:
    """ListUsers Filter: "Quotation marks within the filter string must be escaped using the backslash" --
    and a backslash escapes itself, so a value may hold or end in one."""
    pool_id = idp.create_user_pool(PoolName="filters")["UserPool"]["Id"]
    quoted = make_user(idp, pool_id, {"name": 'say "hi"'})
    slashed = make_user(idp, pool_id, {"name": "back\\slash"})

    def found(expression: str) -> set[str]:
        return {u["Username"] for u in idp.list_users(UserPoolId=pool_id, Filter=expression)["Users"]}

    assert found('name = "say \\"hi\\""') == {quoted}
    assert found('name = "back\\\\slash"') == {slashed}
    assert found('name ^= "back\\\\"') == {slashed}
    assert found('name = "say \\"hi"') == set()


def test_list_users_username_filter_follows_the_pools_case_sensitivity(idp: Any) -> None:
    """ListUsers: "username (case-sensitive)". In a case-sensitive pool "Bob" and "bob" are two users and the
    filter tells them apart; in a case-insensitive pool the username matches in any case, as at sign-in."""
    strict = idp.create_user_pool(PoolName="strict", UsernameConfiguration={"CaseSensitive": True})["UserPool"]["Id"]
    upper, lower = make_named(idp, strict, "Bob"), make_named(idp, strict, "bob")

    def found(pool_id: str, expression: str) -> set[str]:
        return {u["Username"] for u in idp.list_users(UserPoolId=pool_id, Filter=expression)["Users"]}

    assert found(strict, 'username = "Bob"') == {upper}
    assert found(strict, 'username = "bob"') == {lower}
    assert found(strict, 'username ^= "B"') == {upper}
    relaxed = idp.create_user_pool(PoolName="relaxed", UsernameConfiguration={"CaseSensitive": False})["UserPool"]["Id"]
    alice = make_named(idp, relaxed, "Alice")
    assert found(relaxed, 'username = "aLICE"') == {alice}


def test_attribute_values_of_the_longest_length_are_kept_and_found(idp: Any) -> None:
    """SchemaAttributeType: a string attribute holds up to 2,048 characters -- of any script, four bytes of UTF-8
    each at most. A name and a preferred_username (an alias) that long, of characters no compressor shortens, are
    stored and read back whole, found by a ListUsers prefix filter, and the alias stays unique (on PostgreSQL
    too, whose index entries hold 2.7 kB)."""
    pool_id = idp.create_user_pool(PoolName="long-values", AliasAttributes=["preferred_username"])["UserPool"]["Id"]
    # CJK ideographs of Extension B (U+20000...), in an order with no repeats: 8 kB of UTF-8 each.
    name = "".join(chr(0x20000 + (index * 7919) % 0xA000) for index in range(2048))
    nickname = "".join(chr(0x20000 + (index * 104_729 + 17) % 0xA000) for index in range(2048))
    alice = make_user(idp, pool_id, {"name": name, "preferred_username": nickname}, permanent=False)
    assert stored(idp, pool_id, alice) == {**stored(idp, pool_id, alice), "name": name, "preferred_username": nickname}
    found = idp.list_users(UserPoolId=pool_id, Filter=f'name ^= "{name[:200]}"')["Users"]
    assert [u["Username"] for u in found] == [alice]
    with pytest.raises(ClientError) as exc:
        make_user(idp, pool_id, {"preferred_username": nickname}, permanent=False)
    assert error_of(exc)[:2] == ("AliasExistsException", 400)
    bob = make_user(idp, pool_id, {"preferred_username": nickname[:-1]}, permanent=False)
    assert stored(idp, pool_id, bob)["preferred_username"] == nickname[:-1]


def test_a_nul_character_in_a_searchable_attribute_is_kept_or_refused_never_a_fault(idp: Any) -> None:
    """JSON carries U+0000 ("\\u0000") and AttributeType's Value has no pattern refusing it. SQLite keeps it;
    PostgreSQL's text cannot hold it, and refuses it (README) as InvalidParameterException -- never an internal
    error -- with no user written."""
    pool_id = idp.create_user_pool(PoolName="nul-values")["UserPool"]["Id"]
    username = unique("nul")
    attributes = [{"Name": "name", "Value": "a\x00b"}]
    if os.environ.get("GATEHOUSE_TEST_POSTGRES") == "1":
        with pytest.raises(ClientError) as exc:
            idp.admin_create_user(UserPoolId=pool_id, Username=username, UserAttributes=attributes)
        assert error_of(exc)[:2] == ("InvalidParameterException", 400)
        assert idp.list_users(UserPoolId=pool_id)["Users"] == []
    else:
        idp.admin_create_user(UserPoolId=pool_id, Username=username, UserAttributes=attributes)
        assert stored(idp, pool_id, username)["name"] == "a\x00b"


def make_named(idp: Any, pool_id: str, username: str) -> str:
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    return username


@pytest.mark.parametrize("token", ["!!!", "a b", "YQ", "Y*Q="])
def test_made_up_pagination_token_is_refused(idp: Any, pool: str, token: str) -> None:
    """A token Gatehouse did not write is InvalidParameterException, not silently the first page."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_users", {"PaginationToken": token}),
        ("list_groups", {"NextToken": token}),
        ("list_user_pool_clients", {"NextToken": token}),
    ]
    for operation, members in calls:
        with pytest.raises(ClientError) as exc:
            getattr(idp, operation)(UserPoolId=pool, **members)
        assert error_of(exc)[:2] == ("InvalidParameterException", 400), operation


# --- passwords ---------------------------------------------------------------------------------------------------


def test_confirm_forgot_password_is_no_oracle_for_the_current_password(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    """With PasswordHistorySize set, ConfirmForgotPassword judged the history before the code: anyone with a
    username could learn whether a guess was the current password (PasswordHistoryPolicyViolationException)
    without a code, and without using up code attempts. The code must be judged first."""
    pool_id = idp.create_user_pool(
        PoolName="history", Policies={"PasswordPolicy": {"MinimumLength": 8, "PasswordHistorySize": 3}}
    )["UserPool"]["Id"]
    client_id = make_client(idp, pool_id)
    address = f"{unique('h')}@example.com"
    username = make_user(idp, pool_id, {"email": address, "email_verified": "true"})

    for guess in ("Not-the-password-1", PASSWORD):
        with pytest.raises(ClientError) as exc:
            public_idp.confirm_forgot_password(
                ClientId=client_id, Username=username, ConfirmationCode="123456", Password=guess
            )
        # No code was requested: Cognito's ExpiredCodeException, the same answer whatever the guess.
        assert error_of(exc)[:2] == ("ExpiredCodeException", 400), guess
    sign_in(public_idp, client_id, username)  # the password did not change

    public_idp.forgot_password(ClientId=client_id, Username=username)
    code = code_in(mail.wait_for(address))
    with pytest.raises(ClientError) as exc:
        public_idp.confirm_forgot_password(
            ClientId=client_id, Username=username, ConfirmationCode=code, Password=PASSWORD
        )
    assert error_of(exc)[:2] == ("PasswordHistoryPolicyViolationException", 400)
    # Refusing the password did not use up the code.
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username=username, ConfirmationCode=code, Password="A-new-password-9"
    )
    with pytest.raises(ClientError) as exc:
        sign_in(public_idp, client_id, username)
    assert error_of(exc)[0] == "NotAuthorizedException"


def test_change_password_limits_guesses_of_the_previous_password(idp: Any, public_idp: Any, pool: str) -> None:
    """ChangePassword's PreviousPassword is a password guess made with an access token (a stolen one, say):
    after five wrong ones Cognito answers LimitExceededException "Attempt limit exceeded, please try after
    some time." -- then even the right password is not checked. A new password set another way clears it."""
    client_id = make_client(idp, pool)
    username = make_user(idp, pool, {"name": "N"})
    token = sign_in(public_idp, client_id, username)["AccessToken"]
    # A refused new password after a right previous one is no wrong guess.
    for _ in range(6):
        with pytest.raises(ClientError) as exc:
            public_idp.change_password(AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword="short")
        assert error_of(exc)[0] == "InvalidPasswordException"
    for attempt in range(5):
        with pytest.raises(ClientError) as exc:
            public_idp.change_password(
                AccessToken=token, PreviousPassword=f"Wrong-guess-{attempt}", ProposedPassword="Another-pass-77"
            )
        assert error_of(exc)[:2] == ("NotAuthorizedException", 400)
    with pytest.raises(ClientError) as exc:
        public_idp.change_password(AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword="Another-pass-77")
    assert error_of(exc) == ("LimitExceededException", 400, "Attempt limit exceeded, please try after some time.")
    sign_in(public_idp, client_id, username)  # the password is unchanged

    idp.admin_set_user_password(UserPoolId=pool, Username=username, Password=PASSWORD, Permanent=True)
    public_idp.change_password(AccessToken=token, PreviousPassword=PASSWORD, ProposedPassword="Another-pass-77")
    with pytest.raises(ClientError) as exc:
        sign_in(public_idp, client_id, username)
    assert error_of(exc)[0] == "NotAuthorizedException"
