"""The admin read and list operations and the token claim shapes, against a running Gatehouse.

The spec: botocore's cognito-idp service model (shapes and types on the wire), Cognito's "Understanding the
identity (ID) token", and OpenID Connect Core 1.0 §5.1 (standard claims and their JSON types).
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest

PASSWORD = "Passw0rd!Passw0rd"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def attributes_of(answer: dict[str, Any]) -> dict[str, str]:
    return {a["Name"]: a["Value"] for a in answer.get("UserAttributes", answer.get("Attributes", []))}


def wire_body(idp: Any, operation: str, **params: Any) -> str:
    """The raw JSON Gatehouse answered ``operation`` with (before botocore parses it)."""
    seen: dict[str, str] = {}

    def grab(http_response: Any, **_: Any) -> None:
        seen["body"] = http_response.content.decode()

    idp.meta.events.register("after-call.cognito-idp", grab)
    try:
        getattr(idp, operation)(**params)
    finally:
        idp.meta.events.unregister("after-call.cognito-idp", grab)
    return seen["body"]


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    created = idp.create_user_pool(
        PoolName="reads-claims",
        Schema=[
            {"Name": "age", "AttributeDataType": "Number", "Mutable": True},
            {"Name": "vip", "AttributeDataType": "Boolean", "Mutable": True},
        ],
    )
    return str(created["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    created = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="reads", ExplicitAuthFlows=FLOWS)
    return str(created["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str, attributes: dict[str, str]) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def sign_in(idp: Any, pool_id: str, client_id: str, username: str) -> dict[str, Any]:
    answer = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
    )
    return dict(answer["AuthenticationResult"])


# --- ID token claim shapes ----------------------------------------------------------------------------------


def test_address_is_an_oidc_address_object_in_the_id_token_and_a_string_attribute_elsewhere(
    idp: Any, pool_id: str, client_id: str
) -> None:
    """OpenID Connect Core §5.1: ``address`` is a JSON object (§5.1.1); Cognito keeps the attribute as one
    string and puts it in the ID token as that object's ``formatted`` member. The attribute itself stays a
    string in AdminGetUser and GetUser."""
    make_user(idp, pool_id, "addressed", {"address": "1 Main St\nSpringfield"})
    tokens = sign_in(idp, pool_id, client_id, "addressed")
    assert claims_of(tokens["IdToken"])["address"] == {"formatted": "1 Main St\nSpringfield"}
    refreshed = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]},
    )["AuthenticationResult"]
    assert claims_of(refreshed["IdToken"])["address"] == {"formatted": "1 Main St\nSpringfield"}
    assert "address" not in claims_of(tokens["AccessToken"])
    admin_view = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="addressed"))
    own_view = attributes_of(idp.get_user(AccessToken=tokens["AccessToken"]))
    assert admin_view["address"] == own_view["address"] == "1 Main St\nSpringfield"


def test_typed_attributes_keep_their_documented_claim_types(idp: Any, pool_id: str, client_id: str) -> None:
    """The ID token: ``email_verified`` a JSON boolean, ``updated_at`` a JSON number (OIDC Core §5.1), custom
    Number and Boolean attributes strings (Cognito: custom attribute values are strings); ``iat``, ``exp`` and
    ``auth_time`` integers; ``cognito:groups`` left out for a user in no group."""
    make_user(
        idp,
        pool_id,
        "typed",
        {
            "email": "typed@example.com",
            "email_verified": "true",
            "updated_at": "1700000000",
            "custom:age": "42",
            "custom:vip": "true",
        },
    )
    tokens = sign_in(idp, pool_id, client_id, "typed")
    claims = claims_of(tokens["IdToken"])
    assert claims["email_verified"] is True
    assert claims["updated_at"] == 1700000000 and isinstance(claims["updated_at"], int)
    assert claims["custom:age"] == "42" and claims["custom:vip"] == "true"
    for name in ("iat", "exp", "auth_time"):
        assert isinstance(claims[name], int) and not isinstance(claims[name], bool)
    assert "cognito:groups" not in claims and "cognito:groups" not in claims_of(tokens["AccessToken"])


# --- wire types ---------------------------------------------------------------------------------------------


def _numbers_and_booleans(body: str, dates: tuple[str, ...], flags: tuple[str, ...]) -> None:
    """Every member named in ``dates`` is a JSON number (the awsJson protocol's timestamps are epoch seconds,
    not ISO strings, which boto3 would parse alike but the JS and Go SDKs refuse) and every one in ``flags`` a
    JSON boolean, wherever it occurs in the answer."""
    seen: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in dates:
                    assert isinstance(item, int | float) and not isinstance(item, bool), (key, item)
                    seen.append(key)
                elif key in flags:
                    assert isinstance(item, bool), (key, item)
                    seen.append(key)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(json.loads(body))
    assert seen, body


def test_read_answers_carry_dates_as_epoch_numbers_and_flags_as_booleans(
    idp: Any, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "wired", {"email": "wired@example.com"})
    idp.create_group(UserPoolId=pool_id, GroupName="wired-group", Precedence=3)
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="wired", GroupName="wired-group")
    user_dates = ("UserCreateDate", "UserLastModifiedDate")
    dates = ("CreationDate", "LastModifiedDate")
    for operation, params, wanted, flags in (
        ("admin_get_user", {"UserPoolId": pool_id, "Username": "wired"}, user_dates, ("Enabled",)),
        ("list_users", {"UserPoolId": pool_id, "Filter": 'username = "wired"'}, user_dates, ("Enabled",)),
        ("list_users_in_group", {"UserPoolId": pool_id, "GroupName": "wired-group"}, user_dates, ("Enabled",)),
        ("list_groups", {"UserPoolId": pool_id}, dates, ()),
        ("admin_list_groups_for_user", {"UserPoolId": pool_id, "Username": "wired"}, dates, ()),
        ("list_user_pools", {"MaxResults": 60}, dates, ()),
        ("describe_user_pool", {"UserPoolId": pool_id}, dates, ("Mutable", "Required", "DeveloperOnlyAttribute")),
        (
            "describe_user_pool_client",
            {"UserPoolId": pool_id, "ClientId": client_id},
            dates,
            ("AllowedOAuthFlowsUserPoolClient", "EnableTokenRevocation"),
        ),
    ):
        _numbers_and_booleans(wire_body(idp, operation, **params), wanted, flags)


# --- paging -------------------------------------------------------------------------------------------------


def test_a_users_groups_page_on_from_where_the_last_page_ended_when_memberships_change_in_between(
    idp: Any, pool_id: str
) -> None:
    """AdminListGroupsForUser's NextToken "returns the next set of items after the current list": leaving a
    group already listed must not make the next page skip a group that was never shown (an administrator
    auditing a user's groups would miss a membership)."""
    make_user(idp, pool_id, "member", {})
    names = [f"audit-{i}" for i in range(5)]
    for name in names:
        idp.create_group(UserPoolId=pool_id, GroupName=name)
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username="member", GroupName=name)
    first = idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="member", Limit=2)
    shown = [g["GroupName"] for g in first["Groups"]]
    assert shown == names[:2]
    idp.admin_remove_user_from_group(UserPoolId=pool_id, Username="member", GroupName=names[0])
    token: str | None = first["NextToken"]
    while token:
        page = idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="member", Limit=2, NextToken=token)
        shown += [g["GroupName"] for g in page["Groups"]]
        token = page.get("NextToken")
    assert shown == names  # each group exactly once, none skipped
    # A group joined before the position already passed is not listed again; one after it is.
    idp.create_group(UserPoolId=pool_id, GroupName="audit-9")
    first = idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="member", Limit=2)
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="member", GroupName="audit-9")
    rest = idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="member", NextToken=first["NextToken"])
    assert [g["GroupName"] for g in first["Groups"] + rest["Groups"]] == [*names[1:], "audit-9"]
    assert "NextToken" not in rest


def test_a_filtered_user_list_pages_on_from_its_position_while_users_come_and_go(idp: Any, pool_id: str) -> None:
    """ListUsers' PaginationToken continues "the next set of items after the current list" under the same
    Filter: a user removed before the position is not shifted onto, a user added after it is listed once, a
    user outside the filter never appears, and no user is listed twice."""
    for i in range(6):
        make_user(idp, pool_id, f"pager-{i}", {"email": f"pager-{i}@paging.example"})
    make_user(idp, pool_id, "pager-x", {"email": "other@elsewhere.example"})
    where = 'email ^= "pager-"'
    first = idp.list_users(UserPoolId=pool_id, Filter=where, Limit=2)
    shown = [u["Username"] for u in first["Users"]]
    assert shown == ["pager-0", "pager-1"]
    idp.admin_delete_user(UserPoolId=pool_id, Username="pager-0")
    idp.admin_delete_user(UserPoolId=pool_id, Username="pager-3")
    make_user(idp, pool_id, "pager-5a", {"email": "pager-5a@paging.example"})
    token: str | None = first["PaginationToken"]
    while token:
        page = idp.list_users(UserPoolId=pool_id, Filter=where, Limit=2, PaginationToken=token)
        shown += [u["Username"] for u in page["Users"]]
        token = page.get("PaginationToken")
    assert shown == ["pager-0", "pager-1", "pager-2", "pager-4", "pager-5", "pager-5a"]


# --- attributes a sign-up records ---------------------------------------------------------------------------


def test_a_sign_up_records_its_email_and_phone_as_unverified_and_the_id_token_says_so(
    idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    """A user who signs up with an email address and a phone number has ``email_verified`` and
    ``phone_number_verified`` set to "false" (what Cognito's AdminGetUser shows after SignUp); the ID token then
    carries ``email_verified: false`` as a JSON boolean rather than leaving the claim out. A sign-up without a
    phone number gets no ``phone_number_verified``. An administrator's confirmation verifies neither."""
    public_idp.sign_up(
        ClientId=client_id,
        Username="signed-up",
        Password=PASSWORD,
        UserAttributes=[
            {"Name": "email", "Value": "signed-up@example.com"},
            {"Name": "phone_number", "Value": "+15555550199"},
        ],
    )
    before = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="signed-up"))
    assert before["email_verified"] == "false" and before["phone_number_verified"] == "false"
    listed = idp.list_users(UserPoolId=pool_id, Filter='username = "signed-up"')["Users"]
    assert attributes_of(listed[0])["email_verified"] == "false"
    idp.admin_confirm_sign_up(UserPoolId=pool_id, Username="signed-up")
    claims = claims_of(sign_in(idp, pool_id, client_id, "signed-up")["IdToken"])
    assert claims["email_verified"] is False and claims["phone_number_verified"] is False

    public_idp.sign_up(
        ClientId=client_id,
        Username="email-only",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "email-only@example.com"}],
    )
    only = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="email-only"))
    assert only["email_verified"] == "false" and "phone_number_verified" not in only
