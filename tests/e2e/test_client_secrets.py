"""App-client secret rotation (AddUserPoolClientSecret, ListUserPoolClientSecrets, DeleteUserPoolClientSecret)
and GetClientToken with the ALLOW_CLIENT_TOKEN_AUTH flow, through boto3 and raw HTTP against a real server.

The spec is botocore's cognito-idp model and Cognito's API reference: "Supports up to 2 active secrets per app
client for zero-downtime credential rotation", "You cannot delete the last remaining secret for an app client",
"The ClientSecretValue is only returned when Amazon Cognito generates the secret", "the response never reveals
the actual secret value"; GetClientToken "provides the same functionality as the OAuth2 client-credentials
grant", for a client with a secret whose only explicit auth flow is ALLOW_CLIENT_TOKEN_AUTH.

The server runs two worker processes: a secret deleted through one must be refused at once by both, on every
path that authenticates a client with its secret (SECRET_HASH, /oauth2/token basic and post, /oauth2/revoke,
RevokeToken, GetTokensFromRefreshToken, GetClientToken).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import boto3
import botocore.session
import jwt
import pytest
import requests
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.test_worker_consistency import Worker
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

PASSWORD = "Correct-horse-1"
API = "https://api.example.com"
READ, WRITE = f"{API}/read", f"{API}/write"
IDP_TARGET = "AWSCognitoIdentityProviderService"
USER_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
M2M = {
    "AllowedOAuthFlowsUserPoolClient": True,
    "AllowedOAuthFlows": ["client_credentials"],
    "AllowedOAuthScopes": [READ, WRITE],
}


# --- helpers -----------------------------------------------------------------------------------------------


def secret_hash(client_id: str, client_secret: str, username: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(*args, **kwargs)
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass
class Rotating:
    pool_id: str
    client_id: str
    first: str  # the secret the client was made with
    username: str


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """Two worker processes on one database: a change made through one must hold in the other at once."""
    server = GatehouseServer(tmp_path_factory.mktemp("client-secrets") / "data", workers=2)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def workers(gatehouse: GatehouseServer) -> Iterator[list[Worker]]:
    """A kept-alive connection to each of the two processes."""
    by_pid: dict[int, Worker] = {}
    others: list[Worker] = []
    for _ in range(64):
        worker = Worker(gatehouse)
        if worker.pid in by_pid:
            others.append(worker)
        else:
            by_pid[worker.pid] = worker
        if len(by_pid) == 2:
            break
    for extra in others:
        extra.connection.close()
    assert len(by_pid) == 2, "the kernel kept every connection on one process"
    yield list(by_pid.values())
    for worker in by_pid.values():
        worker.connection.close()


@pytest.fixture(scope="module")
def unchecked_idp(gatehouse: GatehouseServer) -> Any:
    """An admin client that sends what it is given (boto3 would refuse a too-short secret itself)."""
    return boto3.client(
        "cognito-idp",
        endpoint_url=gatehouse.url,
        region_name=REGION,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=False),
    )


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    pool = str(idp.create_user_pool(PoolName="secrets")["UserPool"]["Id"])
    idp.create_resource_server(
        UserPoolId=pool,
        Identifier=API,
        Name="api",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "Read"}, {"ScopeName": "write", "ScopeDescription": "W"}],
    )
    return pool


def make_user(idp: Any, pool_id: str, username: str) -> str:
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return username


def confidential(idp: Any, pool_id: str, name: str, **extra: Any) -> dict[str, Any]:
    created = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName=name, GenerateSecret=True, **{"ExplicitAuthFlows": USER_FLOWS, **M2M, **extra}
    )
    return dict(created["UserPoolClient"])


def sign_in(public_idp: Any, client_id: str, secret: str, username: str) -> dict[str, Any]:
    answer = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={
            "USERNAME": username,
            "PASSWORD": PASSWORD,
            "SECRET_HASH": secret_hash(client_id, secret, username),
        },
    )
    return dict(answer["AuthenticationResult"])


def token_by_basic(url: str, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        url, data={"grant_type": "client_credentials"}, headers={"Authorization": basic(client_id, secret)}
    )


def token_by_post(url: str, client_id: str, secret: str) -> requests.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    return requests.post(url, data=form)


def unverified(token: str) -> dict[str, Any]:
    claims = jwt.decode(token, options={"verify_signature": False})
    assert isinstance(claims, dict)
    return claims


# --- listing, adding, deleting -----------------------------------------------------------------------------


def test_the_secret_a_client_is_made_with_is_its_first_listed_secret(idp: Any, pool_id: str) -> None:
    client = confidential(idp, pool_id, "first")
    listed = idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client["ClientId"])
    assert "NextToken" not in listed
    [only] = listed["ClientSecrets"]
    # ClientSecretIdType: "<client-id>--<epoch-create-time>".
    assert re.fullmatch(re.escape(client["ClientId"]) + r"--\d+", only["ClientSecretId"])
    assert "ClientSecretValue" not in only
    assert abs(only["ClientSecretCreateDate"].timestamp() - client["CreationDate"].timestamp()) < 1


def test_rotation_end_to_end(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, workers: list[Worker]
) -> None:
    client = confidential(idp, pool_id, "rotating", ExplicitAuthFlows=USER_FLOWS)
    client_id, first = client["ClientId"], client["ClientSecret"]
    username = make_user(idp, pool_id, "rotor")
    token_url = f"{gatehouse.url}/{pool_id}/oauth2/token"
    revoke_url = f"{gatehouse.url}/{pool_id}/oauth2/revoke"

    added = idp.add_user_pool_client_secret(UserPoolId=pool_id, ClientId=client_id)["ClientSecretDescriptor"]
    second = added["ClientSecretValue"]
    assert second != first and re.fullmatch(r"[\w+]{24,64}", second)
    assert re.fullmatch(re.escape(client_id) + r"--\d+", added["ClientSecretId"])
    listed = idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"]
    assert [s["ClientSecretId"] for s in listed][1] == added["ClientSecretId"]
    assert all("ClientSecretValue" not in s for s in listed) and len(listed) == 2
    first_id = listed[0]["ClientSecretId"]
    # DescribeUserPoolClient keeps showing the oldest active secret.
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert described["ClientSecret"] == first

    # Both secrets work on every path, through both processes (which now hold the client in their caches).
    refresh = {}
    for secret in (first, second):
        refresh[secret] = sign_in(public_idp, client_id, secret, username)["RefreshToken"]
        for make in (token_by_basic, token_by_post):
            assert make(token_url, client_id, secret).status_code == 200
        for worker in workers:
            status, _ = worker.call(IDP_TARGET, "InitiateAuth", _password_auth(client_id, secret, username))
            assert status == 200
            status, _, _ = worker.request("POST", f"/{pool_id}/oauth2/token", *_basic_request(client_id, secret))
            assert status == 200
    assert public_idp.get_tokens_from_refresh_token(
        RefreshToken=refresh[second], ClientId=client_id, ClientSecret=first
    )["AuthenticationResult"]["AccessToken"]

    idp.delete_user_pool_client_secret(UserPoolId=pool_id, ClientId=client_id, ClientSecretId=first_id)

    # At once, in both processes, the first secret is refused everywhere and the second still works.
    for worker in workers:
        status, body = worker.call(IDP_TARGET, "InitiateAuth", _password_auth(client_id, first, username))
        assert (status, body["__type"]) == (400, "NotAuthorizedException")
        assert body["message"] == f"Unable to verify secret hash for client {client_id}"
        status, _, raw = worker.request("POST", f"/{pool_id}/oauth2/token", *_basic_request(client_id, first))
        assert (status, json.loads(raw)["error"]) == (401, "invalid_client")
        form = urlencode({"grant_type": "client_credentials", "client_id": client_id, "client_secret": first})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, raw = worker.request("POST", f"/{pool_id}/oauth2/token", form.encode(), headers)
        assert (status, json.loads(raw)["error"]) == (401, "invalid_client")
        form = urlencode({"token": refresh[first], "client_id": client_id, "client_secret": first})
        status, _, raw = worker.request("POST", f"/{pool_id}/oauth2/revoke", form.encode(), headers)
        assert (status, json.loads(raw)["error"]) == (401, "invalid_client")
        status, body = worker.call(
            IDP_TARGET, "RevokeToken", {"Token": refresh[first], "ClientId": client_id, "ClientSecret": first}
        )
        assert (status, body["__type"]) == (401, "UnauthorizedException")
        status, body = worker.call(
            IDP_TARGET,
            "GetTokensFromRefreshToken",
            {"RefreshToken": refresh[first], "ClientId": client_id, "ClientSecret": first},
        )
        assert (status, body["__type"]) == (400, "NotAuthorizedException")
        status, body = worker.call(
            IDP_TARGET,
            "ForgotPassword",
            {"ClientId": client_id, "Username": username, "SecretHash": secret_hash(client_id, first, username)},
        )
        assert (status, body["__type"]) == (400, "NotAuthorizedException")
        status, _ = worker.call(IDP_TARGET, "InitiateAuth", _password_auth(client_id, second, username))
        assert status == 200
        status, _, _ = worker.request("POST", f"/{pool_id}/oauth2/token", *_basic_request(client_id, second))
        assert status == 200
    code, _ = refused(
        public_idp.sign_up,
        ClientId=client_id,
        Username="newcomer",
        Password=PASSWORD,
        SecretHash=secret_hash(client_id, first, "newcomer"),
    )
    assert code == "NotAuthorizedException"
    public_idp.sign_up(
        ClientId=client_id,
        Username="newcomer",
        Password=PASSWORD,
        SecretHash=secret_hash(client_id, second, "newcomer"),
    )
    assert token_by_post(token_url, client_id, second).status_code == 200
    assert token_by_post(token_url, client_id, first).json()["error"] == "invalid_client"
    # The refresh tokens signed in with either secret are the client's: the remaining secret revokes them.
    revoked = requests.post(
        revoke_url, data={"token": refresh[first]}, headers={"Authorization": basic(client_id, second)}
    )
    assert revoked.status_code == 200

    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert described["ClientSecret"] == second
    [left] = idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"]
    assert left["ClientSecretId"] == added["ClientSecretId"]

    # The last secret stays.
    code, message = refused(
        idp.delete_user_pool_client_secret,
        UserPoolId=pool_id,
        ClientId=client_id,
        ClientSecretId=left["ClientSecretId"],
    )
    assert (code, message) == (
        "InvalidParameterException",
        "The last remaining client secret of an app client cannot be deleted.",
    )
    # The deleted one is gone.
    code, message = refused(
        idp.delete_user_pool_client_secret, UserPoolId=pool_id, ClientId=client_id, ClientSecretId=first_id
    )
    assert (code, message) == ("ResourceNotFoundException", f"Client secret {first_id} does not exist.")
    assert sign_in(public_idp, client_id, second, username)["AccessToken"]


def _password_auth(client_id: str, secret: str, username: str) -> dict[str, Any]:
    return {
        "ClientId": client_id,
        "AuthFlow": "USER_PASSWORD_AUTH",
        "AuthParameters": {
            "USERNAME": username,
            "PASSWORD": PASSWORD,
            "SECRET_HASH": secret_hash(client_id, secret, username),
        },
    }


def _basic_request(client_id: str, secret: str) -> tuple[bytes, dict[str, str]]:
    return b"grant_type=client_credentials", {
        "Authorization": basic(client_id, secret),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def test_a_third_secret_is_refused(idp: Any, pool_id: str) -> None:
    client_id = confidential(idp, pool_id, "three")["ClientId"]
    idp.add_user_pool_client_secret(UserPoolId=pool_id, ClientId=client_id)
    before = idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"]
    code, message = refused(idp.add_user_pool_client_secret, UserPoolId=pool_id, ClientId=client_id)
    assert (code, message) == (
        "LimitExceededException",
        "The app client already has the maximum of 2 client secrets. Delete one before adding another.",
    )
    assert idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"] == before


def test_a_secret_of_the_callers_choosing(idp: Any, public_idp: Any, pool_id: str) -> None:
    client = confidential(idp, pool_id, "chosen")
    client_id = client["ClientId"]
    chosen = "my_own+Secret_0123456789abcdef"
    added = idp.add_user_pool_client_secret(UserPoolId=pool_id, ClientId=client_id, ClientSecret=chosen)
    # "For custom secrets that you provide, the ClientSecretValue is not included in the response."
    assert set(added["ClientSecretDescriptor"]) == {"ClientSecretId", "ClientSecretCreateDate"}
    username = make_user(idp, pool_id, "chooser")
    assert sign_in(public_idp, client_id, chosen, username)["AccessToken"]
    assert sign_in(public_idp, client_id, client["ClientSecret"], username)["AccessToken"]
    # The same value again is not a second secret.
    first_id = idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"][0]
    idp.delete_user_pool_client_secret(
        UserPoolId=pool_id, ClientId=client_id, ClientSecretId=first_id["ClientSecretId"]
    )
    code, _ = refused(idp.add_user_pool_client_secret, UserPoolId=pool_id, ClientId=client_id, ClientSecret=chosen)
    assert code == "InvalidParameterException"
    assert len(idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"]) == 1


def test_a_public_client_has_no_secrets_to_manage(idp: Any, pool_id: str) -> None:
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="spa")["UserPoolClient"]["ClientId"]
    message = f"Client {client_id} has no client secret: secrets are managed for confidential clients only."
    for call, extra in (
        (idp.add_user_pool_client_secret, {}),
        (idp.list_user_pool_client_secrets, {}),
        (idp.delete_user_pool_client_secret, {"ClientSecretId": f"{client_id}--1"}),
    ):
        assert refused(call, UserPoolId=pool_id, ClientId=client_id, **extra) == ("InvalidParameterException", message)
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert "ClientSecret" not in described


def test_unknown_pools_clients_and_secrets(idp: Any, pool_id: str) -> None:
    client_id = confidential(idp, pool_id, "known")["ClientId"]
    other_pool = idp.create_user_pool(PoolName="other")["UserPool"]["Id"]
    absent = "1example23456789abcdefghij"
    for pool, client in ((pool_id, absent), (other_pool, client_id), ("us-east-1_Nope12345", client_id)):
        for call in (idp.add_user_pool_client_secret, idp.list_user_pool_client_secrets):
            code, _ = refused(call, UserPoolId=pool, ClientId=client)
            assert code == "ResourceNotFoundException", (pool, client)
        code, _ = refused(
            idp.delete_user_pool_client_secret, UserPoolId=pool, ClientId=client, ClientSecretId=f"{client}--1"
        )
        assert code == "ResourceNotFoundException"
    code, message = refused(
        idp.delete_user_pool_client_secret, UserPoolId=pool_id, ClientId=client_id, ClientSecretId="nonexistent"
    )
    assert (code, message) == ("ResourceNotFoundException", "Client secret nonexistent does not exist.")
    assert len(idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"]) == 1


def test_malformed_input_is_refused_and_changes_nothing(
    gatehouse: GatehouseServer, idp: Any, unchecked_idp: Any, pool_id: str
) -> None:
    client_id = confidential(idp, pool_id, "malformed")["ClientId"]
    for secret in ("short_23_characters_abc", "has-a-dash-which-the-pattern-refuses", "x" * 65, "é" * 30, ""):
        code, message = refused(
            unchecked_idp.add_user_pool_client_secret, UserPoolId=pool_id, ClientId=client_id, ClientSecret=secret
        )
        assert code == "InvalidParameterException", secret
        assert not secret or secret not in message  # a sensitive member's value is never echoed
    for bad in ({"ClientSecret": 42}, {"ClientSecret": ["a" * 30]}, {"ClientId": None}):
        params = {"UserPoolId": pool_id, "ClientId": client_id, **bad}
        response = requests.post(
            gatehouse.url,
            data=json.dumps(params),
            headers=_signed_headers(gatehouse, "AddUserPoolClientSecret", json.dumps(params)),
        )
        assert 400 <= response.status_code < 500, response.text
    code, _ = refused(
        unchecked_idp.delete_user_pool_client_secret, UserPoolId=pool_id, ClientId=client_id, ClientSecretId=""
    )
    assert code == "InvalidParameterException"
    code, _ = refused(
        unchecked_idp.delete_user_pool_client_secret,
        UserPoolId=pool_id,
        ClientId=client_id,
        ClientSecretId="x" * 129,
    )
    assert code == "InvalidParameterException"
    assert len(idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"]) == 1
    # Managing secrets is an administrator's: an unsigned call is refused.
    body = json.dumps({"UserPoolId": pool_id, "ClientId": client_id})
    unsigned = requests.post(
        gatehouse.url,
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{IDP_TARGET}.AddUserPoolClientSecret"},
    )
    assert unsigned.status_code in (400, 403) and unsigned.json()["__type"] == "MissingAuthenticationTokenException"


def _signed_headers(gatehouse: GatehouseServer, operation: str, body: str) -> dict[str, str]:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{IDP_TARGET}.{operation}"}
    request = AWSRequest(method="POST", url=gatehouse.url + "/", data=body, headers=headers)
    SigV4Auth(Credentials(ADMIN_KEY_ID, ADMIN_SECRET), "cognito-idp", REGION).add_auth(request)
    return dict(request.headers.items())


# --- GetClientToken ----------------------------------------------------------------------------------------


def machine(idp: Any, pool_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return confidential(idp, pool_id, name, **{"ExplicitAuthFlows": ["ALLOW_CLIENT_TOKEN_AUTH"], **extra})


def test_botocore_model_and_explicit_auth_flow() -> None:
    """The installed botocore's ExplicitAuthFlowsType may lack ALLOW_CLIENT_TOKEN_AUTH (1.44.8 does): the
    server takes it all the same, since GetClientToken's documentation names it."""
    model = botocore.session.get_session().get_service_model("cognito-idp")
    assert "GetClientToken" in model.operation_names
    flows = model.shape_for("ExplicitAuthFlowsType").enum
    assert "ALLOW_USER_AUTH" in flows


def test_get_client_token_issues_the_client_credentials_token(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str
) -> None:
    client = machine(idp, pool_id, "m2m")
    assert client["ExplicitAuthFlows"] == ["ALLOW_CLIENT_TOKEN_AUTH"]
    client_id, secret = client["ClientId"], client["ClientSecret"]
    result = public_idp.get_client_token(ClientId=client_id, Secret=secret)["ClientAuthenticationResult"]
    assert result["TokenType"] == "Bearer" and result["ExpiresIn"] == 3600
    issuer = f"{gatehouse.url}/{pool_id}"
    jwks = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json")
    key = jwks.get_signing_key_from_jwt(result["AccessToken"])
    claims = jwt.decode(result["AccessToken"], key.key, algorithms=["RS256"], issuer=issuer)
    assert claims["sub"] == client_id and claims["client_id"] == client_id and claims["token_use"] == "access"
    assert claims["scope"].split() == [READ, WRITE]
    # The same token /oauth2/token's client_credentials grant issues: the same claims, the same scopes.
    oauth = token_by_basic(f"{issuer}/oauth2/token", client_id, secret).json()
    reference = unverified(oauth["access_token"])
    assert set(reference) == set(claims) and reference["scope"] == claims["scope"]
    assert oauth["expires_in"] == result["ExpiresIn"]
    # And it is refused where a client_credentials token is refused: there is no user behind it.
    for token in (result["AccessToken"], oauth["access_token"]):
        info = requests.get(f"{issuer}/oauth2/userInfo", headers={"Authorization": f"Bearer {token}"})
        assert info.status_code == 401 or info.status_code == 403
        assert refused(public_idp.get_user, AccessToken=token)[0] == "NotAuthorizedException"

    narrow = public_idp.get_client_token(ClientId=client_id, Secret=secret, Scopes=[READ], ClientMetadata={"a": "b"})
    assert unverified(narrow["ClientAuthenticationResult"]["AccessToken"])["scope"] == READ
    code, message = refused(public_idp.get_client_token, ClientId=client_id, Secret=secret, Scopes=["openid"])
    assert (code, message) == ("InvalidParameterException", "Invalid scope requested: openid")
    code, _ = refused(public_idp.get_client_token, ClientId=client_id, Secret=secret, Scopes=[f"{API}/delete"])
    assert code == "InvalidParameterException"
    # boto3 signs the call when it has credentials (the model does not mark it unsigned): taken all the same.
    assert idp.get_client_token(ClientId=client_id, Secret=secret)["ClientAuthenticationResult"]["AccessToken"]


def test_get_client_token_with_either_secret_of_a_rotation(idp: Any, public_idp: Any, pool_id: str) -> None:
    client = machine(idp, pool_id, "m2m-rotating")
    client_id, first = client["ClientId"], client["ClientSecret"]
    second = idp.add_user_pool_client_secret(UserPoolId=pool_id, ClientId=client_id)["ClientSecretDescriptor"]
    for secret in (first, second["ClientSecretValue"]):
        assert public_idp.get_client_token(ClientId=client_id, Secret=secret)["ClientAuthenticationResult"]
    first_id = idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"][0]
    idp.delete_user_pool_client_secret(
        UserPoolId=pool_id, ClientId=client_id, ClientSecretId=first_id["ClientSecretId"]
    )
    code, message = refused(public_idp.get_client_token, ClientId=client_id, Secret=first)
    assert (code, message) == ("NotAuthorizedException", f"Unable to verify secret for client {client_id}")
    assert public_idp.get_client_token(ClientId=client_id, Secret=second["ClientSecretValue"])


def test_get_client_token_refusals(idp: Any, public_idp: Any, pool_id: str) -> None:
    user_client = confidential(idp, pool_id, "users-only")
    code, message = refused(
        public_idp.get_client_token, ClientId=user_client["ClientId"], Secret=user_client["ClientSecret"]
    )
    assert (code, message) == ("InvalidParameterException", "ALLOW_CLIENT_TOKEN_AUTH flow not enabled for this client")
    client = machine(idp, pool_id, "m2m-refusals")
    code, message = refused(public_idp.get_client_token, ClientId=client["ClientId"], Secret="w" * 51)
    assert (code, message) == ("NotAuthorizedException", f"Unable to verify secret for client {client['ClientId']}")
    # Another client's secret is not this client's.
    code, _ = refused(public_idp.get_client_token, ClientId=client["ClientId"], Secret=user_client["ClientSecret"])
    assert code == "NotAuthorizedException"
    code, message = refused(public_idp.get_client_token, ClientId="1example23456789abcdefghij", Secret="w" * 51)
    assert (code, message) == (
        "ResourceNotFoundException",
        "User pool client 1example23456789abcdefghij does not exist.",
    )
    public = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="public-m2m")["UserPoolClient"]
    code, _ = refused(public_idp.get_client_token, ClientId=public["ClientId"], Secret="w" * 51)
    assert code == "NotAuthorizedException"
    # A client with the flow but no resource-server scopes has nothing to authorize.
    bare = machine(
        idp, pool_id, "m2m-bare", AllowedOAuthFlowsUserPoolClient=False, AllowedOAuthFlows=[], AllowedOAuthScopes=[]
    )
    code, _ = refused(public_idp.get_client_token, ClientId=bare["ClientId"], Secret=bare["ClientSecret"])
    assert code == "InvalidParameterException"
    # The client cannot sign users in.
    code, message = refused(
        public_idp.initiate_auth,
        ClientId=client["ClientId"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "nobody", "PASSWORD": PASSWORD, "SECRET_HASH": "x"},
    )
    assert code == "InvalidParameterException"


def test_get_client_token_malformed_input(gatehouse: GatehouseServer, pool_id: str) -> None:
    unchecked = boto3.client(
        "cognito-idp",
        endpoint_url=gatehouse.url,
        region_name=REGION,
        config=Config(
            retries={"max_attempts": 1, "mode": "standard"},
            parameter_validation=False,
            signature_version=UNSIGNED,
        ),
    )
    for params in (
        {"ClientId": "abc", "Secret": "short"},
        {"ClientId": "abc", "Secret": "has-a-dash-has-a-dash-has-a-dash"},
        {"ClientId": "", "Secret": "w" * 51},
        {"ClientId": "abc", "Secret": "w" * 51, "Scopes": ["x"] * 51},
        {"ClientId": "abc", "Secret": "w" * 51, "Scopes": ["bad scope"]},
    ):
        code, _ = refused(unchecked.get_client_token, **params)
        assert code == "InvalidParameterException", params
    for raw in ('{"ClientId": 1, "Secret": 2}', "[]", '{"ClientId": "abc"}'):
        response = requests.post(
            gatehouse.url,
            data=raw,
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{IDP_TARGET}.GetClientToken"},
        )
        assert 400 <= response.status_code < 500, response.text


def test_the_client_token_flow_is_the_only_flow_of_a_confidential_client(idp: Any, pool_id: str) -> None:
    code, message = refused(
        idp.create_user_pool_client,
        UserPoolId=pool_id,
        ClientName="mixed",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_CLIENT_TOKEN_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )
    assert (code, message) == (
        "InvalidParameterException",
        "ALLOW_CLIENT_TOKEN_AUTH is mutually exclusive with user authentication flows: it must be the only "
        "explicit auth flow of the app client.",
    )
    code, message = refused(
        idp.create_user_pool_client,
        UserPoolId=pool_id,
        ClientName="public",
        ExplicitAuthFlows=["ALLOW_CLIENT_TOKEN_AUTH"],
    )
    assert (code, message) == (
        "InvalidParameterException",
        "ALLOW_CLIENT_TOKEN_AUTH requires an app client with a client secret.",
    )
    names = [c["ClientName"] for c in idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]]
    assert "mixed" not in names and "public" not in names

    # UpdateUserPoolClient: the same rules, and a refused update changes nothing.
    public = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="spa-2")["UserPoolClient"]
    code, _ = refused(
        idp.update_user_pool_client,
        UserPoolId=pool_id,
        ClientId=public["ClientId"],
        ExplicitAuthFlows=["ALLOW_CLIENT_TOKEN_AUTH"],
    )
    assert code == "InvalidParameterException"
    users = confidential(idp, pool_id, "becomes-m2m")
    code, _ = refused(
        idp.update_user_pool_client,
        UserPoolId=pool_id,
        ClientId=users["ClientId"],
        ExplicitAuthFlows=["ALLOW_CLIENT_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"],
        **M2M,
    )
    assert code == "InvalidParameterException"
    after = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=users["ClientId"])["UserPoolClient"]
    assert after["ExplicitAuthFlows"] == USER_FLOWS
    updated = idp.update_user_pool_client(
        UserPoolId=pool_id, ClientId=users["ClientId"], ExplicitAuthFlows=["ALLOW_CLIENT_TOKEN_AUTH"], **M2M
    )["UserPoolClient"]
    assert updated["ExplicitAuthFlows"] == ["ALLOW_CLIENT_TOKEN_AUTH"]
    # The legacy names are user flows too.
    code, _ = refused(
        idp.create_user_pool_client,
        UserPoolId=pool_id,
        ClientName="legacy",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_CLIENT_TOKEN_AUTH", "USER_PASSWORD_AUTH"],
    )
    assert code == "InvalidParameterException"


def test_racing_additions_and_deletions_keep_one_or_two_secrets(gatehouse: GatehouseServer, pool_id: str) -> None:
    """The count is checked against the stored row (a versioned update): concurrent calls, spread over both
    workers, never leave three secrets, nor none."""
    admin = gatehouse.client()
    client_id = confidential(admin, pool_id, "racing")["ClientId"]

    def add(_: int) -> str:
        try:
            gatehouse.client().add_user_pool_client_secret(UserPoolId=pool_id, ClientId=client_id)
            return "ok"
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(add, range(6)))
    assert outcomes == ["LimitExceededException"] * 5 + ["ok"]
    ids = [
        s["ClientSecretId"]
        for s in admin.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"]
    ]
    assert len(ids) == 2

    def delete(secret_id: str) -> str:
        try:
            gatehouse.client().delete_user_pool_client_secret(
                UserPoolId=pool_id, ClientId=client_id, ClientSecretId=secret_id
            )
            return "ok"
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(delete, ids))
    assert outcomes == ["InvalidParameterException", "ok"]
    assert len(admin.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"]) == 1


def test_a_client_made_with_a_secret_of_the_callers_choosing(idp: Any, public_idp: Any, pool_id: str) -> None:
    """CreateUserPoolClient.ClientSecret: "You cannot specify both GenerateSecret as true and provide a
    ClientSecret value." The chosen secret is the client's first, listed and used like a generated one."""
    chosen = "Chosen_at_creation_0123456789"
    before = len(idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"])
    code, message = refused(
        idp.create_user_pool_client, UserPoolId=pool_id, ClientName="both", GenerateSecret=True, ClientSecret=chosen
    )
    assert (code, message) == (
        "InvalidParameterException",
        "Cannot specify both GenerateSecret as true and a ClientSecret value.",
    )
    assert len(idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]) == before
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="chosen-at-creation", ClientSecret=chosen, ExplicitAuthFlows=USER_FLOWS
    )["UserPoolClient"]
    assert client["ClientSecret"] == chosen
    [first] = idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client["ClientId"])["ClientSecrets"]
    assert first["ClientSecretId"].startswith(client["ClientId"] + "--")
    username = make_user(idp, pool_id, "creation-chooser")
    assert sign_in(public_idp, client["ClientId"], chosen, username)["AccessToken"]


def test_the_audit_log_names_secrets_by_id_only(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str
) -> None:
    client = machine(idp, pool_id, "audited")
    added = idp.add_user_pool_client_secret(UserPoolId=pool_id, ClientId=client["ClientId"])["ClientSecretDescriptor"]
    public_idp.get_client_token(ClientId=client["ClientId"], Secret=added["ClientSecretValue"])
    idp.delete_user_pool_client_secret(
        UserPoolId=pool_id, ClientId=client["ClientId"], ClientSecretId=added["ClientSecretId"]
    )
    wanted = ("client_secret.added", "client_secret.deleted", "client_token.issued")
    deadline = time.monotonic() + 10
    while True:
        events = [json.loads(line) for line in gatehouse.log_text().splitlines() if line.startswith("{")]
        mine = [e for e in events if e.get("client") == client["ClientId"] and e.get("event") in wanted]
        if {e["event"] for e in mine} == set(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {e["event"] for e in mine} == set(wanted)
    assert all(e["secret_id"] == added["ClientSecretId"] for e in mine if e["event"].startswith("client_secret."))
    text = gatehouse.log_text()
    assert client["ClientSecret"] not in text and added["ClientSecretValue"] not in text


SECRET_CONFIG = """\
version: 1
pools:
  - id: us-east-1_SecretCfg1
    name: secretcfg
    clients:
      - {id: cfgclient0000000000000001, name: web, secret: "${CFG_CLIENT_SECRET}",
         explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH]}
"""


def test_the_config_file_never_brings_back_a_deleted_secret(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A config file's secret deleted since through DeleteUserPoolClientSecret (a rotation done through the API,
    perhaps because it leaked) is not made the client's only secret again when the unchanged file is applied at
    the next start: the rotated secret keeps working and the deleted one stays refused. A new secret in the
    file still replaces them all."""
    data_dir = tmp_path_factory.mktemp("secretcfg") / "data"
    first = "cfgsecret" + "a" * 30
    pool, client = "us-east-1_SecretCfg1", "cfgclient0000000000000001"

    def start(secret: str) -> GatehouseServer:
        server = GatehouseServer(data_dir, config=SECRET_CONFIG, extra_env={"CFG_CLIENT_SECRET": secret})
        server.start()
        return server

    def active(server: GatehouseServer) -> tuple[list[str], str]:
        admin = server.client()
        listed = admin.list_user_pool_client_secrets(UserPoolId=pool, ClientId=client)["ClientSecrets"]
        described = admin.describe_user_pool_client(UserPoolId=pool, ClientId=client)["UserPoolClient"]
        return [s["ClientSecretId"] for s in listed], described["ClientSecret"]

    server = start(first)
    try:
        admin = server.client()
        ids, shown = active(server)
        assert shown == first and len(ids) == 1
        added = admin.add_user_pool_client_secret(UserPoolId=pool, ClientId=client)["ClientSecretDescriptor"]
        admin.delete_user_pool_client_secret(UserPoolId=pool, ClientId=client, ClientSecretId=ids[0])
    finally:
        server.stop()
    server = start(first)
    try:
        ids, shown = active(server)
        assert (ids, shown) == ([added["ClientSecretId"]], added["ClientSecretValue"])
        assert "config.client_secret_deleted" in server.log_text()
    finally:
        server.stop()
    # Another secret in the file: it replaces every secret the client has.
    server = start("cfgsecret" + "b" * 30)
    try:
        ids, shown = active(server)
        assert shown == "cfgsecret" + "b" * 30 and len(ids) == 1
    finally:
        server.stop()
