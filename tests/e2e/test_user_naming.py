"""How a pool's users are named, against a running Gatehouse over boto3: a ``sub`` names its own user in the
Admin* operations whatever other names are spelled like it (AdminGetUser: "If username isn't an alias attribute
in your user pool, this value must be the sub of a local user"); in a pool that signs in with email or phone
number the name given is that attribute, checked as the attribute is, and stays one user's
(ForceAliasCreation moves no username); a failed UpdateUserAttributes changes nothing; and a masked email
destination does not tell by its letter case a user's address from an unknown name (PreventUserExistenceErrors).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer, MailServer, code_in, unreachable_smtp_config

PASSWORD = "Correct-horse-battery-1"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def new_pool(idp: Any, **settings: Any) -> tuple[str, str]:
    """A pool and a client that prevents user existence errors."""
    pool_id = str(idp.create_user_pool(PoolName=f"names-{uuid.uuid4().hex[:8]}", **settings)["UserPool"]["Id"])
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="ENABLED"
    )
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str, attributes: dict[str, str] | None = None, **extra: Any) -> str:
    """A confirmed user with PASSWORD; its username (generated where users sign in with email or phone)."""
    listed = [{"Name": k, "Value": v} for k, v in (attributes or {}).items()]
    created = idp.admin_create_user(
        UserPoolId=pool_id, Username=username, UserAttributes=listed, MessageAction="SUPPRESS", **extra
    )
    name = str(created["User"]["Username"])
    idp.admin_set_user_password(UserPoolId=pool_id, Username=name, Password=PASSWORD, Permanent=True)
    return name


def attributes_of(response: dict[str, Any]) -> dict[str, str]:
    items = response.get("UserAttributes") or response.get("Attributes") or []
    return {a["Name"]: a["Value"] for a in items}


def sub_of(idp: Any, pool_id: str, username: str) -> str:
    return attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username=username))["sub"]


def access_token(public_idp: Any, client_id: str, username: str) -> str:
    answer = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return str(answer["AuthenticationResult"]["AccessToken"])


# --- 1. a sub names its own user ---------------------------------------------------------------------------


def test_a_username_spelled_as_another_users_sub_is_refused(idp: Any, public_idp: Any) -> None:
    """Subs are in every ID token a user shows around: a new username equal to one (in any letter case) would
    answer for that user wherever a back end names users by sub (AdminGetUser, AdminAddUserToGroup ...)."""
    pool_id, client_id = new_pool(idp, UsernameConfiguration={"CaseSensitive": False})
    make_user(idp, pool_id, "victim")
    victim_sub = sub_of(idp, pool_id, "victim")

    for name in (victim_sub, victim_sub.upper()):
        with pytest.raises(ClientError) as exc:
            public_idp.sign_up(ClientId=client_id, Username=name, Password=PASSWORD)
        assert error_of(exc)[0] == "UsernameExistsException"
        with pytest.raises(ClientError) as exc:
            idp.admin_create_user(UserPoolId=pool_id, Username=name, MessageAction="SUPPRESS")
        assert error_of(exc) == ("UsernameExistsException", "User account already exists")
    assert idp.admin_get_user(UserPoolId=pool_id, Username=victim_sub)["Username"] == "victim"
    assert [u["Username"] for u in idp.list_users(UserPoolId=pool_id)["Users"]] == ["victim"]

    # A UUID that is no one's sub is a username like any other.
    own = str(uuid.uuid4())
    public_idp.sign_up(ClientId=client_id, Username=own, Password=PASSWORD)
    assert idp.admin_get_user(UserPoolId=pool_id, Username=own)["Username"] == own


def test_a_preferred_username_spelled_as_another_users_sub_is_refused(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = new_pool(idp, AliasAttributes=["preferred_username"])
    make_user(idp, pool_id, "victim")
    make_user(idp, pool_id, "mallory")
    victim_sub, mallory_sub = sub_of(idp, pool_id, "victim"), sub_of(idp, pool_id, "mallory")
    token = access_token(public_idp, client_id, "mallory")

    for value in (victim_sub, victim_sub.upper()):
        with pytest.raises(ClientError) as exc:
            public_idp.update_user_attributes(
                AccessToken=token, UserAttributes=[{"Name": "preferred_username", "Value": value}]
            )
        assert error_of(exc) == ("AliasExistsException", "An account with the given preferred_username already exists.")
        with pytest.raises(ClientError) as exc:
            idp.admin_create_user(
                UserPoolId=pool_id,
                Username="eve",
                MessageAction="SUPPRESS",
                UserAttributes=[{"Name": "preferred_username", "Value": value}],
            )
        assert error_of(exc)[0] == "AliasExistsException"
    assert idp.admin_get_user(UserPoolId=pool_id, Username=victim_sub)["Username"] == "victim"

    # A user's own sub is no one else's.
    public_idp.update_user_attributes(
        AccessToken=token, UserAttributes=[{"Name": "preferred_username", "Value": mallory_sub}]
    )
    assert idp.admin_get_user(UserPoolId=pool_id, Username=mallory_sub)["Username"] == "mallory"


def test_a_sub_names_its_user_before_a_username_spelled_like_it(idp: Any, gatehouse: GatehouseServer) -> None:
    """A username equal to another user's sub may be stored already (written before such names were refused):
    the sub still names its own user, in every Admin* operation; the other user is named by their own sub."""
    pool_id, _ = new_pool(idp, UsernameConfiguration={"CaseSensitive": False})
    shadow = str(uuid.uuid4())
    make_user(idp, pool_id, shadow)
    make_user(idp, pool_id, "victim")
    with sqlite3.connect(gatehouse.data_dir / "gatehouse.db", timeout=10) as db:
        db.execute("UPDATE users SET sub = ? WHERE pool_id = ? AND username_key = 'victim'", (shadow, pool_id))
    db.close()

    for name in (shadow, shadow.upper()):
        assert idp.admin_get_user(UserPoolId=pool_id, Username=name)["Username"] == "victim"
    idp.create_group(UserPoolId=pool_id, GroupName="admins")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=shadow, GroupName="admins")
    members = idp.list_users_in_group(UserPoolId=pool_id, GroupName="admins")["Users"]
    assert [u["Username"] for u in members] == ["victim"]
    shadow_user = next(u for u in idp.list_users(UserPoolId=pool_id)["Users"] if u["Username"] == shadow)
    assert idp.admin_get_user(UserPoolId=pool_id, Username=attributes_of(shadow_user)["sub"])["Username"] == shadow


# --- 2. ForceAliasCreation moves no username ----------------------------------------------------------------


def test_force_alias_creation_leaves_a_username_attribute_with_its_holder(idp: Any) -> None:
    """Where users sign in with email or phone number, the email is a username: ForceAliasCreation answers as
    without it, and the holder keeps it (and can still change their attributes)."""
    pool_id, _ = new_pool(
        idp, UsernameAttributes=["email", "phone_number"], UsernameConfiguration={"CaseSensitive": False}
    )
    alice = make_user(idp, pool_id, "alice@example.com", {"email_verified": "true"})
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username="+15555550999",
            MessageAction="SUPPRESS",
            ForceAliasCreation=True,
            UserAttributes=[
                {"Name": "email", "Value": "alice@example.com"},
                {"Name": "email_verified", "Value": "true"},
            ],
        )
    assert error_of(exc) == ("UsernameExistsException", "An account with the given email already exists.")

    listed = idp.list_users(UserPoolId=pool_id, Filter='email = "alice@example.com"')["Users"]
    assert [u["Username"] for u in listed] == [alice]
    assert attributes_of(listed[0])["email_verified"] == "true"
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username=alice, UserAttributes=[{"Name": "given_name", "Value": "Alice"}]
    )
    assert idp.admin_get_user(UserPoolId=pool_id, Username="alice@example.com")["Username"] == alice
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username="+15555550999")
    assert error_of(exc)[0] == "UserNotFoundException"


# --- 4 and 6. a name that must be an email or a phone number -----------------------------------------------


def test_a_username_that_must_be_an_email_is_checked_as_the_email_attribute_is(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = new_pool(idp, UsernameAttributes=["email"])
    for name in ("a@", "@b", "a@b.c,d@e.f", "<eve@example.com>", "bob", "+15555550100"):
        with pytest.raises(ClientError) as exc:
            public_idp.sign_up(ClientId=client_id, Username=name, Password=PASSWORD)
        assert error_of(exc) == ("InvalidParameterException", "Username should be an email."), name
        with pytest.raises(ClientError) as exc:
            idp.admin_create_user(UserPoolId=pool_id, Username=name, MessageAction="SUPPRESS")
        assert error_of(exc) == ("InvalidParameterException", "Username should be an email."), name

    mismatch = "User email should be empty or same as username, since username attribute is email."
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(
            ClientId=client_id,
            Username="f@example.com",
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": "g@example.com"}],
        )
    assert error_of(exc) == ("InvalidParameterException", mismatch)
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username="f@example.com",
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": "g@example.com"}],
        )
    assert error_of(exc) == ("InvalidParameterException", mismatch)
    assert idp.list_users(UserPoolId=pool_id)["Users"] == []

    # The same address (in any case) is no conflict, and is kept as the attribute gave it.
    created = public_idp.sign_up(
        ClientId=client_id,
        Username="F@example.com",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "f@example.com"}],
    )
    user = idp.admin_get_user(UserPoolId=pool_id, Username="f@example.com")
    assert user["Username"] == created["UserSub"] and attributes_of(user)["email"] == "f@example.com"


def test_a_username_that_must_be_a_phone_number_is_checked_and_named(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = new_pool(idp, UsernameAttributes=["phone_number"])
    for name in ("+abc", "+1", "+1-555-555-0101", "15555550102", "x@example.com"):
        with pytest.raises(ClientError) as exc:
            idp.admin_create_user(UserPoolId=pool_id, Username=name, MessageAction="SUPPRESS")
        assert error_of(exc) == ("InvalidParameterException", "Username should be a phone number."), name
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(
            ClientId=client_id,
            Username="+15555550100",
            Password=PASSWORD,
            UserAttributes=[{"Name": "phone_number", "Value": "+15555550101"}],
        )
    assert error_of(exc) == (
        "InvalidParameterException",
        "User phone_number should be empty or same as username, since username attribute is phone_number.",
    )

    make_user(idp, pool_id, "+15555550100")
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(ClientId=client_id, Username="+15555550100", Password=PASSWORD)
    assert error_of(exc) == ("UsernameExistsException", "An account with the given phone_number already exists.")

    both, _ = new_pool(idp, UsernameAttributes=["email", "phone_number"])
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(UserPoolId=both, Username="+x@y", MessageAction="SUPPRESS")
    assert error_of(exc) == ("InvalidParameterException", "Username should be either an email or a phone number.")


# --- 5. a masked destination does not tell a user from a stranger by letter case -----------------------------


def test_masked_email_destinations_do_not_differ_by_letter_case(idp: Any, public_idp: Any, mail: MailServer) -> None:
    pool_id, client_id = new_pool(
        idp,
        AutoVerifiedAttributes=["email"],
        UsernameAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
    )
    make_user(idp, pool_id, "alice@example.com", {"email_verified": "true"})
    make_user(idp, pool_id, "Carol@Example.com", {"email_verified": "true"})

    def destination(name: str) -> str:
        return str(public_idp.forgot_password(ClientId=client_id, Username=name)["CodeDeliveryDetails"]["Destination"])

    assert destination("ALICE@EXAMPLE.COM") == "a***@e***"  # a user's address
    assert destination("BOB@EXAMPLE.COM") == "b***@e***"  # no one's: as a user's address would be masked
    assert destination("Bob@Example.com") == "b***@e***"
    assert destination("carol@example.com") == "c***@e***"  # stored with capitals, masked as any other
    assert code_in(mail.wait_for("Carol@Example.com"))

    _, resent_client = new_pool(
        idp,
        AutoVerifiedAttributes=["email"],
        UsernameAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
    )
    public_idp.sign_up(ClientId=resent_client, Username="Dora@Example.com", Password=PASSWORD)
    for name in ("DORA@EXAMPLE.COM", "EVE@EXAMPLE.COM"):
        details = public_idp.resend_confirmation_code(ClientId=resent_client, Username=name)["CodeDeliveryDetails"]
        assert details["Destination"] == f"{name[0].lower()}***@e***"


# --- 3. a failed UpdateUserAttributes changes nothing ---------------------------------------------------------


@pytest.fixture(scope="module")
def unreachable_smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("smtp-down") / "data", config=unreachable_smtp_config())
    server.start()
    yield server
    server.stop()


def test_an_email_change_whose_code_cannot_be_mailed(unreachable_smtp_server: GatehouseServer) -> None:
    """UpdateUserAttributes answers CodeDeliveryFailureException and changes nothing (the verified address is
    still the user's, and still signs them in); AdminUpdateUserAttributes, whose model has no such error, makes
    the administrator's change and logs the failed delivery."""
    idp, public_idp = unreachable_smtp_server.client(), unreachable_smtp_server.client(signed=False)
    pool_id, client_id = new_pool(idp, AliasAttributes=["email"], AutoVerifiedAttributes=["email"])
    make_user(idp, pool_id, "alice", {"email": "alice@example.com", "email_verified": "true"})
    token = access_token(public_idp, client_id, "alice")

    with pytest.raises(ClientError) as exc:
        public_idp.update_user_attributes(
            AccessToken=token, UserAttributes=[{"Name": "email", "Value": "new@example.com"}]
        )
    assert error_of(exc)[0] == "CodeDeliveryFailureException"
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="alice"))
    assert attributes["email"] == "alice@example.com" and attributes["email_verified"] == "true"
    assert access_token(public_idp, client_id, "alice@example.com")

    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username="alice", UserAttributes=[{"Name": "email", "Value": "admin-set@example.com"}]
    )
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="alice"))
    assert attributes["email"] == "admin-set@example.com" and attributes["email_verified"] == "false"
    assert "code.delivery_failed" in unreachable_smtp_server.log_text()
