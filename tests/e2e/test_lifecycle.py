"""A user pool's whole life through boto3: pool, client, sign-up by email code, sign-in, tokens, sign-out."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer, MailServer, code_in


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def pool(idp: Any) -> dict[str, Any]:
    created = idp.create_user_pool(
        PoolName="lifecycle",
        AutoVerifiedAttributes=["email"],
        UsernameAttributes=["email"],
        Schema=[{"Name": "tier", "AttributeDataType": "String", "Mutable": True}],
    )
    return dict(created["UserPool"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool: dict[str, Any]) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"],
        PreventUserExistenceErrors="ENABLED",  # an unknown user looks like a wrong password
    )
    return str(client["UserPoolClient"]["ClientId"])


def jwks_client(gatehouse: GatehouseServer, pool_id: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")


def test_pool_is_described_as_created(idp: Any, pool: dict[str, Any]) -> None:
    assert pool["Id"].startswith("us-east-1_")
    assert pool["Arn"].endswith(f":userpool/{pool['Id']}")
    described = idp.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
    assert described["Name"] == "lifecycle"
    assert described["UsernameAttributes"] == ["email"]
    names = {a["Name"] for a in described["SchemaAttributes"]}
    assert {"sub", "email", "custom:tier"} <= names
    assert described["Policies"]["PasswordPolicy"]["MinimumLength"] == 8


def test_sign_up_confirm_sign_in_and_verify_tokens(
    gatehouse: GatehouseServer, mail: MailServer, public_idp: Any, idp: Any, pool: dict[str, Any], client_id: str
) -> None:
    signed_up = public_idp.sign_up(
        ClientId=client_id,
        Username="alice@example.com",
        Password="Correct-horse-1",
        UserAttributes=[{"Name": "custom:tier", "Value": "gold"}, {"Name": "name", "Value": "Alice"}],
    )
    assert signed_up["UserConfirmed"] is False
    assert signed_up["CodeDeliveryDetails"] == {
        "Destination": "a***@e***",
        "DeliveryMedium": "EMAIL",
        "AttributeName": "email",
    }
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "alice@example.com", "PASSWORD": "Correct-horse-1"},
        )
    assert error_code(exc) == "UserNotConfirmedException"

    code = code_in(mail.wait_for("alice@example.com"))
    with pytest.raises(ClientError) as exc:
        public_idp.confirm_sign_up(
            ClientId=client_id,
            Username="alice@example.com",
            ConfirmationCode="000000" if code != "000000" else "111111",
        )
    assert error_code(exc) == "CodeMismatchException"
    public_idp.confirm_sign_up(ClientId=client_id, Username="alice@example.com", ConfirmationCode=code)
    user = idp.admin_get_user(UserPoolId=pool["Id"], Username="alice@example.com")
    assert user["UserStatus"] == "CONFIRMED"
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["email_verified"] == "true"
    assert attributes["sub"] == signed_up["UserSub"]
    assert user["Username"] == signed_up["UserSub"]  # email-as-username pools name users by a UUID

    result = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice@example.com", "PASSWORD": "Correct-horse-1"},
    )["AuthenticationResult"]
    assert result["TokenType"] == "Bearer" and result["ExpiresIn"] == 3600
    issuer = f"{gatehouse.url}/{pool['Id']}"
    keys = jwks_client(gatehouse, pool["Id"])
    id_claims = jwt.decode(
        result["IdToken"],
        keys.get_signing_key_from_jwt(result["IdToken"]).key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=issuer,
    )
    assert id_claims["token_use"] == "id"
    assert id_claims["sub"] == signed_up["UserSub"]
    assert id_claims["cognito:username"] == signed_up["UserSub"]
    assert id_claims["email"] == "alice@example.com" and id_claims["email_verified"] is True
    assert id_claims["custom:tier"] == "gold"
    access = jwt.decode(
        result["AccessToken"],
        keys.get_signing_key_from_jwt(result["AccessToken"]).key,
        algorithms=["RS256"],
        issuer=issuer,
        options={"verify_aud": False},
    )
    assert access["token_use"] == "access" and access["client_id"] == client_id
    assert access["scope"] == "aws.cognito.signin.user.admin"
    assert access["origin_jti"] == id_claims["origin_jti"]

    me = public_idp.get_user(AccessToken=result["AccessToken"])
    assert me["Username"] == signed_up["UserSub"]

    refreshed = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]}
    )["AuthenticationResult"]
    assert "RefreshToken" not in refreshed
    new_access = jwt.decode(refreshed["AccessToken"], options={"verify_signature": False})
    assert new_access["origin_jti"] == access["origin_jti"] and new_access["jti"] != access["jti"]

    public_idp.global_sign_out(AccessToken=result["AccessToken"])
    for token in (result["AccessToken"], refreshed["AccessToken"]):
        with pytest.raises(ClientError) as exc:
            public_idp.get_user(AccessToken=token)
        assert error_code(exc) == "NotAuthorizedException"
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": result["RefreshToken"]}
        )
    assert error_code(exc) == "NotAuthorizedException"


def test_discovery_document_names_the_issuer_and_keys(gatehouse: GatehouseServer, pool: dict[str, Any]) -> None:
    with urllib.request.urlopen(f"{gatehouse.url}/{pool['Id']}/.well-known/openid-configuration") as response:
        document = json.load(response)
    assert document["issuer"] == f"{gatehouse.url}/{pool['Id']}"
    with urllib.request.urlopen(document["jwks_uri"]) as response:
        keys = json.load(response)["keys"]
    assert keys and all(k["kty"] == "RSA" and k["alg"] == "RS256" and "d" not in k for k in keys)


def test_wrong_password_and_unknown_user_look_the_same(public_idp: Any, client_id: str) -> None:
    answers = []
    for username in ("alice@example.com", "nobody@example.com"):
        with pytest.raises(ClientError) as exc:
            public_idp.initiate_auth(
                ClientId=client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": "Wrong-password-1"},
            )
        answers.append((error_code(exc), exc.value.response["Error"]["Message"]))
    assert answers[0] == answers[1] == ("NotAuthorizedException", "Incorrect username or password.")
