"""The pool and app-client admin API through boto3, against a real Gatehouse.

Settings are checked both ways: that Describe gives back what Create and Update were told, and -- where a
setting has an effect a caller can see -- that the running pool behaves accordingly.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer

PASSWORD = "Pools-password-1"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def schema_of(described: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["Name"]: a for a in described["SchemaAttributes"]}


FULL_POOL: dict[str, Any] = {
    "PoolName": "everything",
    "Policies": {
        "PasswordPolicy": {
            "MinimumLength": 12,
            "RequireUppercase": True,
            "RequireLowercase": True,
            "RequireNumbers": True,
            "RequireSymbols": False,
            "PasswordHistorySize": 5,
            "TemporaryPasswordValidityDays": 3,
        }
    },
    "Schema": [
        {
            "Name": "tier",
            "AttributeDataType": "String",
            "Mutable": True,
            "StringAttributeConstraints": {"MinLength": "2", "MaxLength": "8"},
        },
        {
            "Name": "level",
            "AttributeDataType": "Number",
            "Mutable": True,
            "NumberAttributeConstraints": {"MinValue": "1", "MaxValue": "10"},
        },
        {"Name": "joined", "AttributeDataType": "DateTime", "Mutable": False},
        {"Name": "beta", "AttributeDataType": "Boolean", "Mutable": True},
        {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
    ],
    "UsernameAttributes": ["email"],
    "UsernameConfiguration": {"CaseSensitive": False},
    "AutoVerifiedAttributes": ["email"],
    "VerificationMessageTemplate": {
        "DefaultEmailOption": "CONFIRM_WITH_CODE",
        "EmailMessage": "Your code is {####}",
        "EmailSubject": "Your code",
    },
    "AdminCreateUserConfig": {
        "AllowAdminCreateUserOnly": True,
        "InviteMessageTemplate": {"EmailMessage": "Hello {username}, use {####}", "EmailSubject": "Welcome"},
    },
    "AccountRecoverySetting": {"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]},
    "DeletionProtection": "ACTIVE",
    "UserAttributeUpdateSettings": {"AttributesRequireVerificationBeforeUpdate": ["email"]},
    "UserPoolTags": {"team": "identity", "env": "test"},
}


# Cognito's policy for a pool created without one.
DEFAULT_POLICY: dict[str, Any] = {
    "MinimumLength": 8,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
    "TemporaryPasswordValidityDays": 7,
}


@pytest.fixture(scope="module")
def full_pool(idp: Any) -> dict[str, Any]:
    return dict(idp.create_user_pool(**FULL_POOL)["UserPool"])


# --- pools ---------------------------------------------------------------------------------------------------


def test_create_returns_and_describe_keeps_every_setting(idp: Any, full_pool: dict[str, Any]) -> None:
    for described in (full_pool, idp.describe_user_pool(UserPoolId=full_pool["Id"])["UserPool"]):
        assert described["Name"] == "everything"
        policy = described["Policies"]["PasswordPolicy"]
        assert policy["MinimumLength"] == 12 and policy["RequireSymbols"] is False
        assert policy["PasswordHistorySize"] == 5 and policy["TemporaryPasswordValidityDays"] == 3
        assert described["UsernameAttributes"] == ["email"]
        assert "AliasAttributes" not in described
        assert described["UsernameConfiguration"] == {"CaseSensitive": False}
        assert described["AutoVerifiedAttributes"] == ["email"]
        assert described["VerificationMessageTemplate"]["EmailMessage"] == "Your code is {####}"
        assert described["VerificationMessageTemplate"]["EmailSubject"] == "Your code"
        assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
        assert described["AdminCreateUserConfig"]["InviteMessageTemplate"]["EmailSubject"] == "Welcome"
        assert described["AccountRecoverySetting"] == FULL_POOL["AccountRecoverySetting"]
        assert described["DeletionProtection"] == "ACTIVE"
        assert described["UserAttributeUpdateSettings"] == {"AttributesRequireVerificationBeforeUpdate": ["email"]}
        assert described["UserPoolTags"] == {"team": "identity", "env": "test"}
        assert described["Arn"] == f"arn:aws:cognito-idp:us-east-1:000000000000:userpool/{described['Id']}"

        schema = schema_of(described)
        standard = {
            "sub",
            "name",
            "given_name",
            "family_name",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
            "address",
            "birthdate",
            "updated_at",
            "preferred_username",
        }
        assert standard <= set(schema)
        assert schema["sub"]["Required"] is True and schema["sub"]["Mutable"] is False
        assert schema["email"]["Required"] is True
        assert schema["custom:tier"]["AttributeDataType"] == "String"
        assert schema["custom:tier"]["StringAttributeConstraints"] == {"MinLength": "2", "MaxLength": "8"}
        assert schema["custom:level"]["AttributeDataType"] == "Number"
        assert schema["custom:level"]["NumberAttributeConstraints"] == {"MinValue": "1", "MaxValue": "10"}
        assert schema["custom:joined"]["AttributeDataType"] == "DateTime"
        assert schema["custom:joined"]["Mutable"] is False
        assert schema["custom:beta"]["AttributeDataType"] == "Boolean"
        assert {n for n in schema if n.startswith("custom:")} == {
            "custom:tier",
            "custom:level",
            "custom:joined",
            "custom:beta",
        }


def test_the_pool_enforces_its_settings(idp: Any, gatehouse: GatehouseServer, full_pool: dict[str, Any]) -> None:
    pool_id = full_pool["Id"]
    clients = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="enforce")["UserPoolClient"]
    public = gatehouse.client(signed=False)
    with pytest.raises(ClientError) as exc:
        public.sign_up(ClientId=clients["ClientId"], Username="self@example.com", Password="Long-enough-pw1")
    assert error_of(exc) == ("NotAuthorizedException", "SignUp is not permitted for this user pool")

    def create(email: str, **attributes: str) -> None:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=email,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": email},
                *({"Name": k, "Value": v} for k, v in attributes.items()),
            ],
        )

    for bad in (
        {"custom:level": "11"},
        {"custom:level": "0"},
        {"custom:level": "many"},
        {"custom:tier": "x"},
        {"custom:tier": "ninechars"},
        {"custom:beta": "maybe"},
        {"custom:joined": "yesterday"},
        {"custom:nope": "1"},
    ):
        with pytest.raises(ClientError) as exc:
            create("bad@example.com", **bad)
        assert error_of(exc)[0] == "InvalidParameterException", bad
    create("Good@Example.com", **{"custom:level": "10", "custom:tier": "gold", "custom:beta": "true"})
    user = idp.admin_get_user(UserPoolId=pool_id, Username="good@example.com")  # case-insensitive pool
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["custom:level"] == "10" and attributes["custom:tier"] == "gold"
    with pytest.raises(ClientError) as exc:
        idp.admin_set_user_password(
            UserPoolId=pool_id, Username="good@example.com", Password="Short-pw1", Permanent=True
        )
    assert error_of(exc)[0] == "InvalidPasswordException"
    # RequireSymbols is off in this pool: twelve characters of letters and digits will do.
    idp.admin_set_user_password(
        UserPoolId=pool_id, Username="good@example.com", Password="Nosymbolsneeded1", Permanent=True
    )
    assert idp.admin_get_user(UserPoolId=pool_id, Username="good@example.com")["UserStatus"] == "CONFIRMED"


def test_username_and_alias_attributes_are_exclusive(idp: Any) -> None:
    before = {p["Name"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]}
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName="both", UsernameAttributes=["email"], AliasAttributes=["phone_number"])
    assert error_of(exc)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName="bad-alias", AliasAttributes=["nickname"])
    assert error_of(exc)[0] == "InvalidParameterException"
    assert {p["Name"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]} == before
    alias_pool = idp.create_user_pool(PoolName="aliases", AliasAttributes=["email", "preferred_username"])["UserPool"]
    assert alias_pool["AliasAttributes"] == ["email", "preferred_username"]
    assert "UsernameAttributes" not in alias_pool


def test_a_pool_without_username_configuration_is_case_sensitive(idp: Any) -> None:
    """UsernameConfigurationType.CaseSensitive: true is "the default value"."""
    created = idp.create_user_pool(PoolName="default-case")["UserPool"]
    pool_id = created["Id"]
    for described in (created, idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]):
        assert described["UsernameConfiguration"] == {"CaseSensitive": True}
    idp.admin_create_user(UserPoolId=pool_id, Username="Carol", MessageAction="SUPPRESS")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="Carol")["Username"] == "Carol"
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username="carol")
    assert error_of(exc)[0] == "UserNotFoundException"
    # "carol" is another user name, not a duplicate of "Carol".
    idp.admin_create_user(UserPoolId=pool_id, Username="carol", MessageAction="SUPPRESS")
    assert idp.admin_get_user(UserPoolId=pool_id, Username="carol")["Username"] == "carol"


def test_password_policy_defaults(idp: Any) -> None:
    """No PasswordPolicy: Cognito's default policy. A PasswordPolicy given in part: the members left out take
    the API's defaults (booleans false, MinimumLength 8, TemporaryPasswordValidityDays 7)."""
    default = idp.create_user_pool(PoolName="default-policy")["UserPool"]["Policies"]["PasswordPolicy"]
    assert {k: default[k] for k in DEFAULT_POLICY} == DEFAULT_POLICY
    pool_id = idp.create_user_pool(PoolName="partial-policy", Policies={"PasswordPolicy": {"MinimumLength": 10}})[
        "UserPool"
    ]["Id"]
    policy = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Policies"]["PasswordPolicy"]
    assert {k: policy[k] for k in DEFAULT_POLICY} == {
        "MinimumLength": 10,
        "RequireUppercase": False,
        "RequireLowercase": False,
        "RequireNumbers": False,
        "RequireSymbols": False,
        "TemporaryPasswordValidityDays": 7,
    }
    idp.admin_create_user(UserPoolId=pool_id, Username="lax", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="lax", Password="alllowercase", Permanent=True)
    assert idp.admin_get_user(UserPoolId=pool_id, Username="lax")["UserStatus"] == "CONFIRMED"
    with pytest.raises(ClientError) as exc:
        idp.admin_set_user_password(UserPoolId=pool_id, Username="lax", Password="ninechars", Permanent=True)
    assert error_of(exc) == (
        "InvalidPasswordException",
        "Password did not conform with policy: Password not long enough",
    )
    # UpdateUserPool fills a partial policy the same way.
    idp.update_user_pool(UserPoolId=pool_id, Policies={"PasswordPolicy": {"RequireNumbers": True}})
    policy = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Policies"]["PasswordPolicy"]
    assert {k: policy[k] for k in DEFAULT_POLICY} == {
        "MinimumLength": 8,
        "RequireUppercase": False,
        "RequireLowercase": False,
        "RequireNumbers": True,
        "RequireSymbols": False,
        "TemporaryPasswordValidityDays": 7,
    }
    idp.admin_set_user_password(UserPoolId=pool_id, Username="lax", Password="lowercase8", Permanent=True)


def test_update_user_pool(idp: Any) -> None:
    pool_id = idp.create_user_pool(
        PoolName="updatable",
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        AccountRecoverySetting={"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]},
        UserPoolTags={"keep": "me"},
    )["UserPool"]["Id"]
    idp.update_user_pool(
        UserPoolId=pool_id,
        Policies={
            "PasswordPolicy": {"MinimumLength": 16, "PasswordHistorySize": 3, "TemporaryPasswordValidityDays": 1}
        },
        AutoVerifiedAttributes=["email"],
        VerificationMessageTemplate={"DefaultEmailOption": "CONFIRM_WITH_CODE", "EmailMessage": "New code {####}"},
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
        DeletionProtection="ACTIVE",
        UserAttributeUpdateSettings={"AttributesRequireVerificationBeforeUpdate": ["email"]},
        UserPoolTags={"keep": "me", "added": "yes"},
    )
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    policy = described["Policies"]["PasswordPolicy"]
    assert (policy["MinimumLength"], policy["PasswordHistorySize"], policy["TemporaryPasswordValidityDays"]) == (
        16,
        3,
        1,
    )
    assert described["VerificationMessageTemplate"]["EmailMessage"] == "New code {####}"
    assert described["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert described["DeletionProtection"] == "ACTIVE"
    assert described["UserAttributeUpdateSettings"] == {"AttributesRequireVerificationBeforeUpdate": ["email"]}
    assert described["UserPoolTags"] == {"keep": "me", "added": "yes"}
    # Fixed at creation: UpdateUserPool cannot change how users are named.
    assert described["UsernameAttributes"] == ["email"]
    # Members not given return to their defaults, as Cognito documents for UpdateUserPool.
    assert "AccountRecoverySetting" not in described
    assert described["LastModifiedDate"] >= described["CreationDate"]
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, Policies={"PasswordPolicy": {"MinimumLength": 100}})
    assert error_of(exc)[0] == "InvalidParameterException"
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Policies"]["PasswordPolicy"]["MinimumLength"] == 16
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId="us-east-1_Nowhere00")
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_add_custom_attributes(idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="grows")["UserPool"]["Id"]
    idp.add_custom_attributes(
        UserPoolId=pool_id,
        CustomAttributes=[
            {"Name": "plan", "AttributeDataType": "String", "StringAttributeConstraints": {"MaxLength": "16"}},
            {"Name": "seats", "AttributeDataType": "Number", "NumberAttributeConstraints": {"MinValue": "0"}},
        ],
    )
    schema = schema_of(idp.describe_user_pool(UserPoolId=pool_id)["UserPool"])
    assert schema["custom:plan"]["StringAttributeConstraints"]["MaxLength"] == "16"
    assert schema["custom:seats"]["NumberAttributeConstraints"] == {"MinValue": "0"}
    for duplicate in ("plan", "custom:plan"):
        with pytest.raises(ClientError) as exc:
            idp.add_custom_attributes(
                UserPoolId=pool_id, CustomAttributes=[{"Name": duplicate, "AttributeDataType": "String"}]
            )
        assert error_of(exc)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        idp.add_custom_attributes(
            UserPoolId=pool_id,
            CustomAttributes=[
                {"Name": "twin", "AttributeDataType": "String"},
                {"Name": "twin", "AttributeDataType": "Number"},
            ],
        )
    assert error_of(exc)[0] == "InvalidParameterException"
    after = schema_of(idp.describe_user_pool(UserPoolId=pool_id)["UserPool"])
    assert "custom:twin" not in after and after["custom:plan"]["AttributeDataType"] == "String"
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="seated",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "custom:plan", "Value": "pro"}, {"Name": "custom:seats", "Value": "4"}],
    )


def test_list_user_pools_pages(idp: Any) -> None:
    created = {idp.create_user_pool(PoolName=f"paged-{i}")["UserPool"]["Id"] for i in range(5)}
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"MaxResults": 2}
        if token:
            kwargs["NextToken"] = token
        page = idp.list_user_pools(**kwargs)
        pages += 1
        assert len(page["UserPools"]) <= 2
        seen.extend(p["Id"] for p in page["UserPools"])
        token = page.get("NextToken")
        if not token:
            break
        assert len(page["UserPools"]) == 2
    assert created <= set(seen)
    assert len(seen) == len(set(seen))
    assert pages == (len(seen) + 1) // 2
    every = [p["Id"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]]
    assert sorted(seen) == sorted(every)
    paginated = [
        p["Id"] for page in idp.get_paginator("list_user_pools").paginate(MaxResults=2) for p in page["UserPools"]
    ]
    assert paginated == seen
    names = {p["Id"]: p["Name"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]}
    assert {names[i] for i in created} == {f"paged-{i}" for i in range(5)}
    with pytest.raises(ClientError) as exc:
        idp.list_user_pools(MaxResults=2, NextToken="%%%not-a-token%%%")
    assert error_of(exc)[0] == "InvalidParameterException"


def test_deletion_protection(idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="protected", DeletionProtection="ACTIVE")["UserPool"]["Id"]
    with pytest.raises(ClientError) as exc:
        idp.delete_user_pool(UserPoolId=pool_id)
    assert error_of(exc)[0] == "InvalidParameterException"
    assert "deletion protection" in error_of(exc)[1].lower()
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["Id"] == pool_id
    idp.update_user_pool(UserPoolId=pool_id, DeletionProtection="INACTIVE")
    idp.delete_user_pool(UserPoolId=pool_id)
    with pytest.raises(ClientError) as exc:
        idp.describe_user_pool(UserPoolId=pool_id)
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.delete_user_pool(UserPoolId=pool_id)
    assert error_of(exc)[0] == "ResourceNotFoundException"
    assert pool_id not in {p["Id"] for p in idp.list_user_pools(MaxResults=60)["UserPools"]}


def test_tags(idp: Any, full_pool: dict[str, Any]) -> None:
    arn = full_pool["Arn"]
    assert idp.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "identity", "env": "test"}
    idp.tag_resource(ResourceArn=arn, Tags={"env": "prod", "owner": "alice"})
    assert idp.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "identity", "env": "prod", "owner": "alice"}
    idp.untag_resource(ResourceArn=arn, TagKeys=["team", "not-there"])
    assert idp.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"env": "prod", "owner": "alice"}
    assert idp.describe_user_pool(UserPoolId=full_pool["Id"])["UserPool"]["UserPoolTags"] == {
        "env": "prod",
        "owner": "alice",
    }
    missing = arn.rsplit("/", 1)[0] + "/us-east-1_Nowhere00"
    with pytest.raises(ClientError) as exc:
        idp.tag_resource(ResourceArn=missing, Tags={"a": "b"})
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.list_tags_for_resource(ResourceArn="arn:aws:cognito-idp:us-east-1:000000000000:notapool/x")
    assert error_of(exc)[0] == "InvalidParameterException"


# --- clients -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_pool(idp: Any) -> str:
    return str(
        idp.create_user_pool(
            PoolName="apps",
            Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}],
        )["UserPool"]["Id"]
    )


@pytest.fixture(scope="module")
def app_user(idp: Any, app_pool: str) -> str:
    idp.admin_create_user(
        UserPoolId=app_pool,
        Username="app-user",
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": "app-user@example.com"},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": "App User"},
            {"Name": "given_name", "Value": "App"},
            {"Name": "custom:tier", "Value": "gold"},
        ],
    )
    idp.admin_set_user_password(UserPoolId=app_pool, Username="app-user", Password=PASSWORD, Permanent=True)
    return "app-user"


PASSWORD_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def sign_in(public: Any, client_id: str, username: str = "app-user") -> dict[str, Any]:
    return dict(
        public.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
    )


def test_client_secret_is_generated_and_described(idp: Any, app_pool: str) -> None:
    created = idp.create_user_pool_client(UserPoolId=app_pool, ClientName="confidential", GenerateSecret=True)
    client = created["UserPoolClient"]
    assert len(client["ClientSecret"]) >= 40
    described = idp.describe_user_pool_client(UserPoolId=app_pool, ClientId=client["ClientId"])["UserPoolClient"]
    assert described["ClientSecret"] == client["ClientSecret"]
    listed = idp.list_user_pool_clients(UserPoolId=app_pool, MaxResults=60)["UserPoolClients"]
    entry = next(c for c in listed if c["ClientId"] == client["ClientId"])
    assert entry == {"ClientId": client["ClientId"], "UserPoolId": app_pool, "ClientName": "confidential"}
    public_client = idp.create_user_pool_client(UserPoolId=app_pool, ClientName="public")["UserPoolClient"]
    assert "ClientSecret" not in public_client
    assert public_client["ExplicitAuthFlows"] == [
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_CUSTOM_AUTH",
    ]


def test_explicit_auth_flows(idp: Any, gatehouse: GatehouseServer, app_pool: str, app_user: str) -> None:
    for flows in (
        ["ALLOW_USER_PASSWORD_AUTH", "USER_PASSWORD_AUTH"],
        ["ADMIN_NO_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    ):
        with pytest.raises(ClientError) as exc:
            idp.create_user_pool_client(UserPoolId=app_pool, ClientName="mixed", ExplicitAuthFlows=flows)
        assert error_of(exc)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool_client(UserPoolId=app_pool, ClientName="unknown", ExplicitAuthFlows=["ALLOW_MAGIC"])
    assert error_of(exc)[0] == "InvalidParameterException"
    assert "mixed" not in {c["ClientName"] for c in idp.list_user_pool_clients(UserPoolId=app_pool)["UserPoolClients"]}

    srp_only = idp.create_user_pool_client(
        UserPoolId=app_pool,
        ClientName="srp-only",
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    public = gatehouse.client(signed=False)
    with pytest.raises(ClientError) as exc:
        sign_in(public, srp_only)
    assert error_of(exc)[0] == "InvalidParameterException"
    legacy = idp.create_user_pool_client(
        UserPoolId=app_pool, ClientName="legacy", ExplicitAuthFlows=["USER_PASSWORD_AUTH"]
    )["UserPoolClient"]
    assert legacy["ExplicitAuthFlows"] == ["USER_PASSWORD_AUTH"]
    result = sign_in(public, legacy["ClientId"])
    # A legacy client may always refresh.
    refreshed = public.initiate_auth(
        ClientId=legacy["ClientId"],
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]},
    )
    assert "AccessToken" in refreshed["AuthenticationResult"]


def test_token_validities_and_units(idp: Any, gatehouse: GatehouseServer, app_pool: str, app_user: str) -> None:
    out_of_range: list[dict[str, Any]] = [
        {"AccessTokenValidity": 25, "TokenValidityUnits": {"AccessToken": "hours"}},
        {"AccessTokenValidity": 4, "TokenValidityUnits": {"AccessToken": "minutes"}},
        {"IdTokenValidity": 2, "TokenValidityUnits": {"IdToken": "days"}},
        {"IdTokenValidity": 200, "TokenValidityUnits": {"IdToken": "seconds"}},
        {"RefreshTokenValidity": 3651, "TokenValidityUnits": {"RefreshToken": "days"}},
        {"RefreshTokenValidity": 59, "TokenValidityUnits": {"RefreshToken": "minutes"}},
        {"AccessTokenValidity": 90000},  # model range: at most 86400
    ]
    for settings in out_of_range:
        with pytest.raises(ClientError) as exc:
            idp.create_user_pool_client(UserPoolId=app_pool, ClientName="bad-validity", **settings)
        assert error_of(exc)[0] == "InvalidParameterException", settings
    created = idp.create_user_pool_client(
        UserPoolId=app_pool,
        ClientName="validity",
        ExplicitAuthFlows=PASSWORD_FLOWS,
        AccessTokenValidity=2,
        IdTokenValidity=600,
        RefreshTokenValidity=12,
        TokenValidityUnits={"AccessToken": "hours", "IdToken": "seconds", "RefreshToken": "hours"},
    )["UserPoolClient"]
    assert (created["AccessTokenValidity"], created["IdTokenValidity"], created["RefreshTokenValidity"]) == (2, 600, 12)
    assert created["TokenValidityUnits"] == {"AccessToken": "hours", "IdToken": "seconds", "RefreshToken": "hours"}
    result = sign_in(gatehouse.client(signed=False), created["ClientId"])
    assert result["ExpiresIn"] == 7200
    access = jwt.decode(result["AccessToken"], options={"verify_signature": False})
    identity = jwt.decode(result["IdToken"], options={"verify_signature": False})
    assert access["exp"] - access["iat"] == 7200
    assert identity["exp"] - identity["iat"] == 600
    defaults = idp.create_user_pool_client(UserPoolId=app_pool, ClientName="defaults")["UserPoolClient"]
    assert (defaults["AccessTokenValidity"], defaults["IdTokenValidity"], defaults["RefreshTokenValidity"]) == (
        60,
        60,
        30,
    )
    assert defaults["TokenValidityUnits"] == {"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"}


def test_read_and_write_attributes_must_exist(idp: Any, app_pool: str) -> None:
    for key in ("ReadAttributes", "WriteAttributes"):
        with pytest.raises(ClientError) as exc:
            idp.create_user_pool_client(UserPoolId=app_pool, ClientName="attrs", **{key: ["email", "custom:nope"]})
        assert error_of(exc)[0] == "InvalidParameterException"
    client = idp.create_user_pool_client(
        UserPoolId=app_pool, ClientName="attrs", ReadAttributes=["email", "custom:tier"], WriteAttributes=["name"]
    )["UserPoolClient"]
    assert client["ReadAttributes"] == ["email", "custom:tier"] and client["WriteAttributes"] == ["name"]


def test_read_attributes_limit_id_token_claims(
    idp: Any, gatehouse: GatehouseServer, app_pool: str, app_user: str
) -> None:
    public = gatehouse.client(signed=False)
    limited = idp.create_user_pool_client(
        UserPoolId=app_pool,
        ClientName="limited",
        ExplicitAuthFlows=PASSWORD_FLOWS,
        ReadAttributes=["email", "email_verified", "custom:tier"],
    )["UserPoolClient"]["ClientId"]
    everything = idp.create_user_pool_client(
        UserPoolId=app_pool, ClientName="everything", ExplicitAuthFlows=PASSWORD_FLOWS
    )["UserPoolClient"]["ClientId"]
    keys = jwt.PyJWKClient(f"{gatehouse.url}/{app_pool}/.well-known/jwks.json")

    def id_claims(client_id: str) -> dict[str, Any]:
        token = sign_in(public, client_id)["IdToken"]
        return dict(
            jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience=client_id)
        )

    claims = id_claims(limited)
    assert claims["email"] == "app-user@example.com" and claims["email_verified"] is True
    assert claims["custom:tier"] == "gold"
    assert "name" not in claims and "given_name" not in claims
    assert claims["cognito:username"] == "app-user" and claims["token_use"] == "id" and claims["sub"]
    full = id_claims(everything)
    assert full["name"] == "App User" and full["given_name"] == "App" and full["custom:tier"] == "gold"
    # GetUser through that client reads the same attributes (ReadAttributes: "their access token authorizes
    # them to read their own attribute value for any attribute in this list"), and sub.
    me = public.get_user(AccessToken=sign_in(public, limited)["AccessToken"])
    assert {a["Name"] for a in me["UserAttributes"]} == {"sub", "email", "email_verified", "custom:tier"}


def test_prevent_user_existence_errors(idp: Any, gatehouse: GatehouseServer, app_pool: str, app_user: str) -> None:
    public = gatehouse.client(signed=False)
    answers: dict[str, tuple[str, str]] = {}
    for setting in ("ENABLED", "LEGACY"):
        client_id = idp.create_user_pool_client(
            UserPoolId=app_pool,
            ClientName=f"existence-{setting}",
            ExplicitAuthFlows=PASSWORD_FLOWS,
            PreventUserExistenceErrors=setting,
        )["UserPoolClient"]["ClientId"]
        described = idp.describe_user_pool_client(UserPoolId=app_pool, ClientId=client_id)["UserPoolClient"]
        assert described["PreventUserExistenceErrors"] == setting
        with pytest.raises(ClientError) as exc:
            sign_in(public, client_id, username="ghost")
        answers[setting] = error_of(exc)
    assert answers["ENABLED"] == ("NotAuthorizedException", "Incorrect username or password.")
    assert answers["LEGACY"][0] == "UserNotFoundException"


def test_prevent_user_existence_errors_defaults_to_legacy(
    idp: Any, gatehouse: GatehouseServer, app_pool: str, app_user: str
) -> None:
    """CreateUserPoolClient's PreventUserExistenceErrors: "Defaults to LEGACY." """
    client = idp.create_user_pool_client(
        UserPoolId=app_pool, ClientName="existence-default", ExplicitAuthFlows=PASSWORD_FLOWS
    )["UserPoolClient"]
    assert client["PreventUserExistenceErrors"] == "LEGACY"
    described = idp.describe_user_pool_client(UserPoolId=app_pool, ClientId=client["ClientId"])["UserPoolClient"]
    assert described["PreventUserExistenceErrors"] == "LEGACY"
    with pytest.raises(ClientError) as exc:
        sign_in(gatehouse.client(signed=False), client["ClientId"], username="ghost")
    assert error_of(exc)[0] == "UserNotFoundException"


def test_token_revocation_setting(idp: Any, gatehouse: GatehouseServer, app_pool: str, app_user: str) -> None:
    public = gatehouse.client(signed=False)
    off = idp.create_user_pool_client(
        UserPoolId=app_pool, ClientName="no-revoke", ExplicitAuthFlows=PASSWORD_FLOWS, EnableTokenRevocation=False
    )["UserPoolClient"]
    assert off["EnableTokenRevocation"] is False
    with pytest.raises(ClientError) as exc:
        public.revoke_token(Token=sign_in(public, off["ClientId"])["RefreshToken"], ClientId=off["ClientId"])
    assert error_of(exc)[0] == "UnsupportedOperationException"
    on = idp.create_user_pool_client(UserPoolId=app_pool, ClientName="revoke", ExplicitAuthFlows=PASSWORD_FLOWS)
    on_id = on["UserPoolClient"]["ClientId"]
    assert on["UserPoolClient"]["EnableTokenRevocation"] is True
    result = sign_in(public, on_id)
    public.revoke_token(Token=result["RefreshToken"], ClientId=on_id)
    with pytest.raises(ClientError) as exc:
        public.initiate_auth(
            ClientId=on_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]}
        )
    assert error_of(exc)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as exc:
        public.get_user(AccessToken=result["AccessToken"])
    assert error_of(exc)[0] == "NotAuthorizedException"


def test_refresh_token_rotation(idp: Any, gatehouse: GatehouseServer, app_pool: str, app_user: str) -> None:
    public = gatehouse.client(signed=False)
    client = idp.create_user_pool_client(
        UserPoolId=app_pool,
        ClientName="rotating",
        ExplicitAuthFlows=PASSWORD_FLOWS,
        RefreshTokenRotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 0},
    )["UserPoolClient"]
    assert client["RefreshTokenRotation"] == {"Feature": "ENABLED", "RetryGracePeriodSeconds": 0}
    first = sign_in(public, client["ClientId"])["RefreshToken"]
    with pytest.raises(ClientError) as exc:
        public.initiate_auth(
            ClientId=client["ClientId"], AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": first}
        )
    assert error_of(exc)[0] == "InvalidParameterException"
    rotated = public.get_tokens_from_refresh_token(RefreshToken=first, ClientId=client["ClientId"])
    second = rotated["AuthenticationResult"]["RefreshToken"]
    assert second != first and rotated["AuthenticationResult"]["AccessToken"]
    third = public.get_tokens_from_refresh_token(RefreshToken=second, ClientId=client["ClientId"])
    assert third["AuthenticationResult"]["RefreshToken"] not in (first, second)
    with pytest.raises(ClientError) as exc:
        public.get_tokens_from_refresh_token(RefreshToken=first, ClientId=client["ClientId"])
    assert error_of(exc)[0] == "RefreshTokenReuseException"
    # Reuse revokes the whole family: the latest refresh token is dead too.
    with pytest.raises(ClientError) as exc:
        public.get_tokens_from_refresh_token(
            RefreshToken=third["AuthenticationResult"]["RefreshToken"], ClientId=client["ClientId"]
        )
    assert error_of(exc)[0] == "NotAuthorizedException"


def test_describe_update_list_and_delete_clients(idp: Any, gatehouse: GatehouseServer) -> None:
    pool_id = idp.create_user_pool(PoolName="client-crud")["UserPool"]["Id"]
    idp.admin_create_user(UserPoolId=pool_id, Username="crud-user", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="crud-user", Password=PASSWORD, Permanent=True)
    ids = [
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName=f"c{i}", ExplicitAuthFlows=PASSWORD_FLOWS)[
            "UserPoolClient"
        ]["ClientId"]
        for i in range(5)
    ]
    seen: list[str] = []
    kwargs: dict[str, Any] = {"UserPoolId": pool_id, "MaxResults": 2}
    while True:
        page = idp.list_user_pool_clients(**kwargs)
        assert len(page["UserPoolClients"]) <= 2
        seen.extend(c["ClientId"] for c in page["UserPoolClients"])
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    paginated = [
        c["ClientId"]
        for page in idp.get_paginator("list_user_pool_clients").paginate(UserPoolId=pool_id, MaxResults=2)
        for c in page["UserPoolClients"]
    ]
    assert paginated == seen

    target = ids[0]
    updated = idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=target,
        ClientName="renamed",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        AccessTokenValidity=30,
        TokenValidityUnits={"AccessToken": "minutes"},
    )["UserPoolClient"]
    assert updated["ClientName"] == "renamed" and updated["AccessTokenValidity"] == 30
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=target)["UserPoolClient"]
    assert described["ClientName"] == "renamed" and described["AccessTokenValidity"] == 30
    assert described["LastModifiedDate"] >= described["CreationDate"]
    public = gatehouse.client(signed=False)
    assert sign_in(public, target, username="crud-user")["ExpiresIn"] == 1800
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool_client(
            UserPoolId=pool_id, ClientId=target, IdTokenValidity=1, TokenValidityUnits={"IdToken": "minutes"}
        )
    assert error_of(exc)[0] == "InvalidParameterException"
    assert (
        idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=target)["UserPoolClient"]["ClientName"] == "renamed"
    )

    # A client belongs to one pool: naming it under another is "not found".
    other_pool = idp.create_user_pool(PoolName="client-crud-other")["UserPool"]["Id"]
    with pytest.raises(ClientError) as exc:
        idp.describe_user_pool_client(UserPoolId=other_pool, ClientId=target)
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        idp.delete_user_pool_client(UserPoolId=other_pool, ClientId=target)
    assert error_of(exc)[0] == "ResourceNotFoundException"

    tokens = sign_in(public, target, username="crud-user")
    idp.delete_user_pool_client(UserPoolId=pool_id, ClientId=target)
    with pytest.raises(ClientError) as exc:
        idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=target)
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        sign_in(public, target, username="crud-user")
    assert error_of(exc)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        public.initiate_auth(
            ClientId=target, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]}
        )
    assert error_of(exc)[0] == "ResourceNotFoundException"
    remaining = {
        c["ClientId"] for c in idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    }
    assert remaining == set(ids[1:])
