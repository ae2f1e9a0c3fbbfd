"""User pool groups through boto3 against a running Gatehouse: CreateGroup ... ListUsersInGroup, and the
cognito:groups / cognito:roles / cognito:preferred_role claims of tokens, verified against the pool's JWKS."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer

PASSWORD = "Correct-horse-battery-1"
ROLE_ADMIN = "arn:aws:iam::123456789012:role/admins"
ROLE_EDITOR = "arn:aws:iam::123456789012:role/editors"
ROLE_VIEWER = "arn:aws:iam::123456789012:role/viewers"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="groups")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )
    return str(client["UserPoolClient"]["ClientId"])


@pytest.fixture(scope="module")
def keys(gatehouse: GatehouseServer, pool_id: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")


def make_user(idp: Any, pool_id: str, username: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id, Username=username, TemporaryPassword="Temporary-pass-1", MessageAction="SUPPRESS"
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def sign_in(idp: Any, pool_id: str, client_id: str, username: str) -> dict[str, Any]:
    return dict(
        idp.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
    )


def verified_claims(
    gatehouse: GatehouseServer, keys: jwt.PyJWKClient, pool_id: str, client_id: str, tokens: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ID token's and the access token's claims, each signature checked against the pool's JWKS."""
    issuer = f"{gatehouse.url}/{pool_id}"
    id_claims = jwt.decode(
        tokens["IdToken"],
        keys.get_signing_key_from_jwt(tokens["IdToken"]).key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=issuer,
    )
    access_claims = jwt.decode(
        tokens["AccessToken"],
        keys.get_signing_key_from_jwt(tokens["AccessToken"]).key,
        algorithms=["RS256"],
        issuer=issuer,
        options={"verify_aud": False},
    )
    assert id_claims["token_use"] == "id" and access_claims["token_use"] == "access"
    assert access_claims["client_id"] == client_id
    return dict(id_claims), dict(access_claims)


def group_names(groups: list[dict[str, Any]]) -> list[str]:
    return [g["GroupName"] for g in groups]


# --- groups themselves -----------------------------------------------------------------------------------


def test_create_and_get_group(idp: Any, pool_id: str) -> None:
    created = idp.create_group(
        UserPoolId=pool_id, GroupName="staff", Description="Everyone on staff", RoleArn=ROLE_VIEWER, Precedence=10
    )["Group"]
    assert created["GroupName"] == "staff" and created["UserPoolId"] == pool_id
    assert created["Description"] == "Everyone on staff"
    assert created["RoleArn"] == ROLE_VIEWER and created["Precedence"] == 10
    assert created["CreationDate"] == created["LastModifiedDate"]

    got = idp.get_group(UserPoolId=pool_id, GroupName="staff")["Group"]
    assert {k: got[k] for k in ("GroupName", "Description", "RoleArn", "Precedence", "UserPoolId")} == {
        "GroupName": "staff",
        "Description": "Everyone on staff",
        "RoleArn": ROLE_VIEWER,
        "Precedence": 10,
        "UserPoolId": pool_id,
    }

    bare = idp.create_group(UserPoolId=pool_id, GroupName="bare")["Group"]
    assert "RoleArn" not in bare and "Precedence" not in bare and "Description" not in bare


def test_duplicate_group_and_unknown_group(idp: Any, pool_id: str) -> None:
    idp.create_group(UserPoolId=pool_id, GroupName="unique")
    with pytest.raises(ClientError) as exc:
        idp.create_group(UserPoolId=pool_id, GroupName="unique", Precedence=1)
    assert error_of(exc) == ("GroupExistsException", "A group with the name already exists.")
    for call in (idp.get_group, idp.delete_group):
        with pytest.raises(ClientError) as exc:
            call(UserPoolId=pool_id, GroupName="no-such-group")
        assert error_of(exc) == ("ResourceNotFoundException", "Group not found.")
    with pytest.raises(ClientError) as exc:
        idp.update_group(UserPoolId=pool_id, GroupName="no-such-group", Description="x")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.create_group(UserPoolId="us-east-1_doesNotExist", GroupName="unique")
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_update_group_changes_only_the_given_members(idp: Any, pool_id: str) -> None:
    idp.create_group(UserPoolId=pool_id, GroupName="mutable", Description="before", RoleArn=ROLE_VIEWER, Precedence=3)
    updated = idp.update_group(UserPoolId=pool_id, GroupName="mutable", Description="after")["Group"]
    assert (updated["Description"], updated["RoleArn"], updated["Precedence"]) == ("after", ROLE_VIEWER, 3)
    assert updated["LastModifiedDate"] >= updated["CreationDate"]

    idp.update_group(UserPoolId=pool_id, GroupName="mutable", Precedence=7)
    idp.update_group(UserPoolId=pool_id, GroupName="mutable", RoleArn=ROLE_EDITOR)
    got = idp.get_group(UserPoolId=pool_id, GroupName="mutable")["Group"]
    assert (got["Description"], got["RoleArn"], got["Precedence"]) == ("after", ROLE_EDITOR, 7)


def test_delete_group(idp: Any, pool_id: str) -> None:
    idp.create_group(UserPoolId=pool_id, GroupName="ephemeral")
    make_user(idp, pool_id, "temp-member")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="temp-member", GroupName="ephemeral")
    idp.delete_group(UserPoolId=pool_id, GroupName="ephemeral")
    with pytest.raises(ClientError) as exc:
        idp.get_group(UserPoolId=pool_id, GroupName="ephemeral")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    assert idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="temp-member")["Groups"] == []
    # The name is free again, with no members.
    idp.create_group(UserPoolId=pool_id, GroupName="ephemeral")
    assert idp.list_users_in_group(UserPoolId=pool_id, GroupName="ephemeral")["Users"] == []


def test_list_groups_pages(idp: Any) -> None:
    pool = str(idp.create_user_pool(PoolName="many-groups")["UserPool"]["Id"])
    expected = {f"team-{i}" for i in range(5)}
    for name in sorted(expected):
        idp.create_group(UserPoolId=pool, GroupName=name, Precedence=int(name[-1]))
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"Limit": 2}
        if token:
            kwargs["NextToken"] = token
        page = idp.list_groups(UserPoolId=pool, **kwargs)
        pages += 1
        assert len(page["Groups"]) <= 2
        seen += group_names(page["Groups"])
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert sorted(seen) == sorted(expected)
    full = idp.get_paginator("list_groups").paginate(UserPoolId=pool, PaginationConfig={"PageSize": 3})
    assert sorted(group_names(full.build_full_result()["Groups"])) == sorted(expected)
    assert sorted(group_names(idp.list_groups(UserPoolId=pool)["Groups"])) == sorted(expected)


# --- membership ------------------------------------------------------------------------------------------------


def test_add_list_and_remove_members(idp: Any, pool_id: str) -> None:
    idp.create_group(UserPoolId=pool_id, GroupName="club", Precedence=4)
    idp.create_group(UserPoolId=pool_id, GroupName="society")
    members = [f"member-{i}" for i in range(5)]
    for name in members:
        make_user(idp, pool_id, name)
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=name, GroupName="club")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="member-0", GroupName="society")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="member-0", GroupName="club")  # again: no change

    groups = idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="member-0")["Groups"]
    assert sorted(group_names(groups)) == ["club", "society"]
    club = next(g for g in groups if g["GroupName"] == "club")
    assert club["Precedence"] == 4 and club["UserPoolId"] == pool_id
    first = idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="member-0", Limit=1)
    assert len(first["Groups"]) == 1 and first["NextToken"]
    second = idp.admin_list_groups_for_user(
        UserPoolId=pool_id, Username="member-0", Limit=1, NextToken=first["NextToken"]
    )
    assert len(second["Groups"]) == 1 and "NextToken" not in second
    assert sorted(group_names(first["Groups"] + second["Groups"])) == ["club", "society"]

    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"Limit": 2}
        if token:
            kwargs["NextToken"] = token
        page = idp.list_users_in_group(UserPoolId=pool_id, GroupName="club", **kwargs)
        pages += 1
        assert len(page["Users"]) <= 2
        seen += [u["Username"] for u in page["Users"]]
        assert all(u["UserStatus"] == "CONFIRMED" and u["Enabled"] for u in page["Users"])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3 and sorted(seen) == members
    paginated = idp.get_paginator("list_users_in_group").paginate(
        UserPoolId=pool_id, GroupName="club", PaginationConfig={"PageSize": 4}
    )
    assert sorted(u["Username"] for u in paginated.build_full_result()["Users"]) == members

    idp.admin_remove_user_from_group(UserPoolId=pool_id, Username="member-0", GroupName="club")
    assert group_names(idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="member-0")["Groups"]) == ["society"]
    remaining = idp.list_users_in_group(UserPoolId=pool_id, GroupName="club")["Users"]
    assert sorted(u["Username"] for u in remaining) == members[1:]


def test_membership_errors(idp: Any, pool_id: str) -> None:
    idp.create_group(UserPoolId=pool_id, GroupName="guarded")
    make_user(idp, pool_id, "outsider")
    with pytest.raises(ClientError) as exc:
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username="outsider", GroupName="no-such-group")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username="no-such-user", GroupName="guarded")
    assert error_of(exc)[0] == "UserNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.admin_remove_user_from_group(UserPoolId=pool_id, Username="outsider", GroupName="no-such-group")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.list_users_in_group(UserPoolId=pool_id, GroupName="no-such-group")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="no-such-user")
    assert error_of(exc)[0] == "UserNotFoundException"
    # Removing someone who is not a member is not an error.
    idp.admin_remove_user_from_group(UserPoolId=pool_id, Username="outsider", GroupName="guarded")
    assert idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="outsider")["Groups"] == []


def test_a_user_belongs_to_at_most_100_groups(idp: Any) -> None:
    """Cognito's quota: "Maximum number of groups that each user can belong to: 100". The 101st is refused and
    changes nothing; adding a group the user is in already stays idempotent; leaving one makes room."""
    pool = str(idp.create_user_pool(PoolName="group-quota")["UserPool"]["Id"])
    make_user(idp, pool, "joiner")
    names = [f"g{n:03d}" for n in range(101)]
    for name in names:
        idp.create_group(UserPoolId=pool, GroupName=name)
    for name in names[:100]:
        idp.admin_add_user_to_group(UserPoolId=pool, Username="joiner", GroupName=name)
    with pytest.raises(ClientError) as exc:
        idp.admin_add_user_to_group(UserPoolId=pool, Username="joiner", GroupName=names[100])
    assert error_of(exc) == ("LimitExceededException", "A user can belong to at most 100 groups.")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert idp.list_users_in_group(UserPoolId=pool, GroupName=names[100])["Users"] == []
    listed = idp.get_paginator("admin_list_groups_for_user").paginate(UserPoolId=pool, Username="joiner")
    assert group_names(listed.build_full_result()["Groups"]) == sorted(names[:100])
    idp.admin_add_user_to_group(UserPoolId=pool, Username="joiner", GroupName=names[0])  # a member already
    idp.admin_remove_user_from_group(UserPoolId=pool, Username="joiner", GroupName=names[0])
    idp.admin_add_user_to_group(UserPoolId=pool, Username="joiner", GroupName=names[100])
    assert [u["Username"] for u in idp.list_users_in_group(UserPoolId=pool, GroupName=names[100])["Users"]] == [
        "joiner"
    ]


def test_deleting_a_user_removes_their_memberships(idp: Any, pool_id: str) -> None:
    idp.create_group(UserPoolId=pool_id, GroupName="alumni")
    make_user(idp, pool_id, "leaver")
    make_user(idp, pool_id, "stayer")
    for name in ("leaver", "stayer"):
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username=name, GroupName="alumni")
    idp.admin_delete_user(UserPoolId=pool_id, Username="leaver")
    users = idp.list_users_in_group(UserPoolId=pool_id, GroupName="alumni")["Users"]
    assert [u["Username"] for u in users] == ["stayer"]


# --- groups in tokens ------------------------------------------------------------------------------------------


def test_tokens_carry_groups_roles_and_preferred_role(
    gatehouse: GatehouseServer, idp: Any, keys: jwt.PyJWKClient, pool_id: str, client_id: str
) -> None:
    idp.create_group(UserPoolId=pool_id, GroupName="admins", RoleArn=ROLE_ADMIN, Precedence=1)
    idp.create_group(UserPoolId=pool_id, GroupName="editors", RoleArn=ROLE_EDITOR, Precedence=5)
    idp.create_group(UserPoolId=pool_id, GroupName="readers")
    make_user(idp, pool_id, "grace")
    make_user(idp, pool_id, "nobody-special")
    for group in ("editors", "admins", "readers"):
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username="grace", GroupName=group)

    tokens = sign_in(idp, pool_id, client_id, "grace")
    id_claims, access_claims = verified_claims(gatehouse, keys, pool_id, client_id, tokens)
    assert sorted(id_claims["cognito:groups"]) == ["admins", "editors", "readers"]
    assert sorted(access_claims["cognito:groups"]) == ["admins", "editors", "readers"]
    assert sorted(id_claims["cognito:roles"]) == sorted([ROLE_ADMIN, ROLE_EDITOR])
    assert id_claims["cognito:preferred_role"] == ROLE_ADMIN
    assert id_claims["cognito:username"] == "grace"

    # No groups, no group claims.
    plain_id, plain_access = verified_claims(
        gatehouse, keys, pool_id, client_id, sign_in(idp, pool_id, client_id, "nobody-special")
    )
    for claims in (plain_id, plain_access):
        assert not {"cognito:groups", "cognito:roles", "cognito:preferred_role"} & set(claims)

    # Deleting the group with the lowest precedence removes it from the next tokens, refreshed ones too.
    idp.delete_group(UserPoolId=pool_id, GroupName="admins")
    refreshed = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]},
    )["AuthenticationResult"]
    for fresh in (refreshed, sign_in(idp, pool_id, client_id, "grace")):
        id_claims, access_claims = verified_claims(gatehouse, keys, pool_id, client_id, fresh)
        assert sorted(id_claims["cognito:groups"]) == ["editors", "readers"]
        assert sorted(access_claims["cognito:groups"]) == ["editors", "readers"]
        assert id_claims["cognito:roles"] == [ROLE_EDITOR]
        assert id_claims["cognito:preferred_role"] == ROLE_EDITOR

    # Removing the user from a group, and changing a group's role, show in the next tokens.
    idp.admin_remove_user_from_group(UserPoolId=pool_id, Username="grace", GroupName="readers")
    idp.update_group(UserPoolId=pool_id, GroupName="editors", RoleArn=ROLE_VIEWER)
    id_claims, access_claims = verified_claims(
        gatehouse, keys, pool_id, client_id, sign_in(idp, pool_id, client_id, "grace")
    )
    assert id_claims["cognito:groups"] == ["editors"] and access_claims["cognito:groups"] == ["editors"]
    assert id_claims["cognito:roles"] == [ROLE_VIEWER]
    assert id_claims["cognito:preferred_role"] == ROLE_VIEWER


def test_preferred_role_with_tied_precedence(
    gatehouse: GatehouseServer, idp: Any, keys: jwt.PyJWKClient, pool_id: str, client_id: str
) -> None:
    """CreateGroup's Precedence: with equal precedence and different roles there is no preferred role;
    with equal precedence and the same role, that role is preferred."""
    idp.create_group(UserPoolId=pool_id, GroupName="tie-a", RoleArn=ROLE_ADMIN, Precedence=2)
    idp.create_group(UserPoolId=pool_id, GroupName="tie-b", RoleArn=ROLE_EDITOR, Precedence=2)
    idp.create_group(UserPoolId=pool_id, GroupName="tie-c", RoleArn=ROLE_ADMIN, Precedence=2)
    idp.create_group(UserPoolId=pool_id, GroupName="tie-low", RoleArn=ROLE_VIEWER, Precedence=9)
    make_user(idp, pool_id, "tied")
    make_user(idp, pool_id, "same-role")
    for group in ("tie-a", "tie-b", "tie-low"):
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username="tied", GroupName=group)
    for group in ("tie-a", "tie-c", "tie-low"):
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username="same-role", GroupName=group)

    id_claims, _ = verified_claims(gatehouse, keys, pool_id, client_id, sign_in(idp, pool_id, client_id, "tied"))
    assert sorted(id_claims["cognito:roles"]) == sorted([ROLE_ADMIN, ROLE_EDITOR, ROLE_VIEWER])
    assert "cognito:preferred_role" not in id_claims

    id_claims, _ = verified_claims(gatehouse, keys, pool_id, client_id, sign_in(idp, pool_id, client_id, "same-role"))
    assert sorted(id_claims["cognito:roles"]) == sorted([ROLE_ADMIN, ROLE_VIEWER])
    assert id_claims["cognito:preferred_role"] == ROLE_ADMIN


def test_group_with_precedence_beats_group_without(
    gatehouse: GatehouseServer, idp: Any, keys: jwt.PyJWKClient, pool_id: str, client_id: str
) -> None:
    """Groups with lower Precedence values take precedence over groups with higher or null Precedence."""
    idp.create_group(UserPoolId=pool_id, GroupName="unranked", RoleArn=ROLE_ADMIN)
    idp.create_group(UserPoolId=pool_id, GroupName="ranked", RoleArn=ROLE_EDITOR, Precedence=100)
    make_user(idp, pool_id, "ranker")
    for group in ("unranked", "ranked"):
        idp.admin_add_user_to_group(UserPoolId=pool_id, Username="ranker", GroupName=group)
    id_claims, _ = verified_claims(gatehouse, keys, pool_id, client_id, sign_in(idp, pool_id, client_id, "ranker"))
    assert sorted(id_claims["cognito:roles"]) == sorted([ROLE_ADMIN, ROLE_EDITOR])
    assert id_claims["cognito:preferred_role"] == ROLE_EDITOR
