"""Hostile cases for resource-server scopes in tokens and for pool tags, against a running Gatehouse.

DeleteResourceServer (Cognito API reference): "After you delete a resource server, users can no longer
generate access tokens with scopes that are associated with that resource server" -- through
client_credentials, the authorization endpoint or a refresh of a grant made before. TagResource: "A user pool
can have as many as 50 tags"; the ``aws:`` prefix is AWS's own; an ARN names one account's pool."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, Browser, make_user, pkce_pair, query_of
from tests.support import GatehouseServer


@pytest.fixture(scope="module", autouse=True)
def _plain_http() -> Iterator[None]:
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    yield
    os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def scopes_of(token: str) -> list[str]:
    return str(jwt.decode(token, options={"verify_signature": False})["scope"]).split()


def secret_hash(client: dict[str, Any], username: str) -> str:
    key = client["ClientSecret"].encode()
    return base64.b64encode(hmac.new(key, (username + client["ClientId"]).encode(), hashlib.sha256).digest()).decode()


def api_server(idp: Any, pool_id: str, identifier: str, *names: str) -> None:
    scopes = [{"ScopeName": n, "ScopeDescription": n} for n in names]
    idp.create_resource_server(UserPoolId=pool_id, Identifier=identifier, Name="api", Scopes=scopes)


# --- scopes of resource servers that changed or went away -------------------------------------------------


def test_client_credentials_stop_at_a_deleted_or_dropped_scope(gatehouse: GatehouseServer, idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="m2m")["UserPool"]["Id"]
    api_server(idp, pool_id, "https://api.example.com", "read", "write")
    api_server(idp, pool_id, "reports", "view")
    machine = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="machine",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["https://api.example.com/read", "https://api.example.com/write", "reports/view"],
    )["UserPoolClient"]
    auth = (machine["ClientId"], machine["ClientSecret"])

    def token(**form: str) -> requests.Response:
        data = {"grant_type": "client_credentials", **form}
        return requests.post(f"{gatehouse.url}/oauth2/token", data=data, auth=auth, timeout=10)

    assert scopes_of(token().json()["access_token"]) == [
        "https://api.example.com/read",
        "https://api.example.com/write",
        "reports/view",
    ]

    # UpdateResourceServer takes "write" out of the server's list: no token carries it any more.
    idp.update_resource_server(
        UserPoolId=pool_id,
        Identifier="https://api.example.com",
        Name="api",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "read"}],
    )
    assert scopes_of(token().json()["access_token"]) == ["https://api.example.com/read", "reports/view"]
    asked = token(scope="https://api.example.com/write")
    assert asked.status_code == 400 and asked.json()["error"] == "invalid_scope"

    # DeleteResourceServer: nothing of it is granted; with nothing left, invalid_scope.
    idp.delete_resource_server(UserPoolId=pool_id, Identifier="https://api.example.com")
    assert scopes_of(token().json()["access_token"]) == ["reports/view"]
    idp.delete_resource_server(UserPoolId=pool_id, Identifier="reports")
    empty = token()
    assert empty.status_code == 400 and empty.json()["error"] == "invalid_scope"
    assert "access_token" not in empty.json()

    # A server made again with the same identifier and scope grants it again (the client still lists it).
    api_server(idp, pool_id, "reports", "view")
    assert scopes_of(token().json()["access_token"]) == ["reports/view"]


def test_authorize_and_refresh_stop_at_a_deleted_scope(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="user-scopes")["UserPool"]["Id"]
    api_server(idp, pool_id, "orders", "read", "write")
    web = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "orders/read", "orders/write"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]
    auth = (web["ClientId"], web["ClientSecret"])
    make_user(idp, pool_id, "olive")
    browser = Browser(gatehouse.url)
    verifier, challenge = pkce_pair()
    redirect = browser.sign_in(
        browser.authorize_url(
            web["ClientId"],
            scope="openid orders/read orders/write",
            code_challenge=challenge,
            code_challenge_method="S256",
        ),
        "olive",
    )
    code = query_of(redirect.headers["Location"])["code"]
    granted = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=auth,
        timeout=10,
    ).json()
    assert scopes_of(granted["access_token"]) == ["openid", "orders/read", "orders/write"]

    def refresh(**form: str) -> requests.Response:
        data = {"grant_type": "refresh_token", "refresh_token": granted["refresh_token"], **form}
        return requests.post(f"{gatehouse.url}/oauth2/token", data=data, auth=auth, timeout=10)

    # The grant was made before "write" was dropped; its refresh no longer yields it.
    idp.update_resource_server(
        UserPoolId=pool_id, Identifier="orders", Name="orders", Scopes=[{"ScopeName": "read", "ScopeDescription": "r"}]
    )
    refreshed = refresh()
    assert refreshed.status_code == 200, refreshed.text
    assert scopes_of(refreshed.json()["access_token"]) == ["openid", "orders/read"]
    api_refresh = public_idp.initiate_auth(
        ClientId=web["ClientId"],
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": granted["refresh_token"], "SECRET_HASH": secret_hash(web, "olive")},
    )["AuthenticationResult"]
    assert scopes_of(api_refresh["AccessToken"]) == ["openid", "orders/read"]
    narrowed = refresh(scope="orders/write")  # within the grant, but gone from its server
    assert narrowed.status_code == 400 and narrowed.json()["error"] == "invalid_scope"
    assert scopes_of(refresh(scope="orders/read").json()["access_token"]) == ["orders/read"]

    # The authorization endpoint does not grant it either: asked alone, invalid_scope back to the app.
    refused = browser.get(browser.authorize_url(web["ClientId"], scope="orders/write", state="s1"))
    assert refused.status_code == 302
    answer = query_of(refused.headers["Location"])
    assert answer["error"] == "invalid_scope" and answer["state"] == "s1" and "code" not in answer

    # UpdateUserPoolClient takes a scope away from the client: the client's older grant no longer yields it.
    settings = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=web["ClientId"])["UserPoolClient"]
    idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=web["ClientId"],
        **{k: settings[k] for k in ("AllowedOAuthFlowsUserPoolClient", "AllowedOAuthFlows", "CallbackURLs")},
        SupportedIdentityProviders=["COGNITO"],
        AllowedOAuthScopes=["openid"],
    )
    assert scopes_of(refresh().json()["access_token"]) == ["openid"]
    idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=web["ClientId"],
        **{k: settings[k] for k in ("AllowedOAuthFlowsUserPoolClient", "AllowedOAuthFlows", "CallbackURLs")},
        SupportedIdentityProviders=["COGNITO"],
        AllowedOAuthScopes=["openid", "orders/read"],
    )
    assert scopes_of(refresh().json()["access_token"]) == ["openid", "orders/read"]

    # Deleted altogether: a code issued before is redeemed without it, and a refresh keeps the user's own
    # scopes only.
    verifier, challenge = pkce_pair()
    again = browser.sign_in(
        browser.authorize_url(
            web["ClientId"], scope="openid orders/read", code_challenge=challenge, code_challenge_method="S256"
        ),
        "olive",
    )
    pending = query_of(again.headers["Location"])["code"]
    idp.delete_resource_server(UserPoolId=pool_id, Identifier="orders")
    late = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": pending, "redirect_uri": CALLBACK, "code_verifier": verifier},
        auth=auth,
        timeout=10,
    )
    assert late.status_code == 200, late.text
    assert scopes_of(late.json()["access_token"]) == ["openid"]
    refreshed = refresh()
    assert refreshed.status_code == 200, refreshed.text
    assert scopes_of(refreshed.json()["access_token"]) == ["openid"]
    assert "id_token" in refreshed.json()


# --- tags ---------------------------------------------------------------------------------------------------


def test_tags_reserved_prefix_and_limit(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="tagged", UserPoolTags={"team": "id"})["UserPool"]
    arn, pool_id = pool["Arn"], pool["Id"]

    for key in ("aws:cloudformation:stack-name", "AWS:owner"):
        with pytest.raises(ClientError) as exc:
            idp.tag_resource(ResourceArn=arn, Tags={"fine": "x", key: "1"})
        assert error_code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName="reserved", UserPoolTags={"aws:x": "1"})
    assert error_code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, UserPoolTags={"aws:x": "1"})
    assert error_code(exc) == "InvalidParameterException"
    assert idp.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "id"}
    assert not any(p["Name"] == "reserved" for p in idp.list_user_pools(MaxResults=60)["UserPools"])

    # 50 tags at most, counted after the change: two calls of 30 may not make 60.
    idp.tag_resource(ResourceArn=arn, Tags={f"a{i}": "v" for i in range(29)})
    with pytest.raises(ClientError) as exc:
        idp.tag_resource(ResourceArn=arn, Tags={f"b{i}": "v" for i in range(30)})
    assert error_code(exc) == "InvalidParameterException"
    assert len(idp.list_tags_for_resource(ResourceArn=arn)["Tags"]) == 30
    idp.tag_resource(ResourceArn=arn, Tags={f"b{i}": "v" for i in range(20)})  # exactly 50
    assert len(idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["UserPoolTags"]) == 50
    idp.tag_resource(ResourceArn=arn, Tags={"team": "platform"})  # a new value for a key it has: still 50
    with pytest.raises(ClientError) as exc:
        idp.tag_resource(ResourceArn=arn, Tags={"one-more": "v"})
    assert error_code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, UserPoolTags={f"c{i}": "v" for i in range(51)})
    assert error_code(exc) == "InvalidParameterException"
    tags = idp.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert len(tags) == 50 and tags["team"] == "platform" and "one-more" not in tags
    idp.untag_resource(ResourceArn=arn, TagKeys=["a0"])
    idp.tag_resource(ResourceArn=arn, Tags={"one-more": "v"})
    assert len(idp.list_tags_for_resource(ResourceArn=arn)["Tags"]) == 50


def test_tags_of_another_accounts_or_services_arn(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="mine", UserPoolTags={"team": "id"})["UserPool"]
    arn = pool["Arn"]
    parts = arn.split(":")
    foreign = [
        ":".join([*parts[:4], "999999999999", *parts[5:]]),  # another account
        ":".join([parts[0], parts[1], "s3", *parts[3:]]),  # another service
        ":".join([parts[0], "aws-cn", *parts[2:]]),  # another partition
    ]
    for other in foreign:
        for operation, args in (
            (idp.list_tags_for_resource, {}),
            (idp.tag_resource, {"Tags": {"team": "attacker"}}),
            (idp.untag_resource, {"TagKeys": ["team"]}),
        ):
            with pytest.raises(ClientError) as exc:
                operation(ResourceArn=other, **args)
            assert error_code(exc) == "ResourceNotFoundException", other
    assert idp.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "id"}
