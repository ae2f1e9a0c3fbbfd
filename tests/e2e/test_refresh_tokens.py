"""Refresh tokens through boto3: REFRESH_TOKEN_AUTH, RevokeToken, GetTokensFromRefreshToken with and without
rotation (and its retry grace period, under concurrency), and token lifetimes.

The spec is Cognito's: the API reference of InitiateAuth, RevokeToken and GetTokensFromRefreshToken, the
developer guide's "Using the refresh token" and "Understanding the ... token" pages, and RFC 7009 for revocation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer

PASSWORD = "Correct-horse-1"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


# --- helpers -----------------------------------------------------------------------------------------------


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def error_message(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Message"])


def secret_hash(client_id: str, client_secret: str, username: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def unverified(token: str) -> dict[str, Any]:
    claims = jwt.decode(token, options={"verify_signature": False})
    assert isinstance(claims, dict)
    return claims


def sign_in(public_idp: Any, client_id: str, username: str, **auth: str) -> dict[str, Any]:
    response = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD, **auth},
    )
    return dict(response["AuthenticationResult"])


def refresh_auth(public_idp: Any, client_id: str, refresh_token: str) -> dict[str, Any]:
    response = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
    )
    return dict(response["AuthenticationResult"])


def refresh_error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call()
    return error_code(exc), error_message(exc)


def get_user_error(public_idp: Any, access_token: str) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        public_idp.get_user(AccessToken=access_token)
    return error_code(exc), error_message(exc)


class Verifier:
    """Checks tokens the way an app's backend would: signature against the pool's JWKS, issuer, audience."""

    def __init__(self, gatehouse: GatehouseServer, pool_id: str) -> None:
        self.issuer = f"{gatehouse.url}/{pool_id}"
        self.keys = jwt.PyJWKClient(f"{self.issuer}/.well-known/jwks.json")

    def id_token(self, token: str, client_id: str) -> dict[str, Any]:
        claims = jwt.decode(
            token,
            self.keys.get_signing_key_from_jwt(token).key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=self.issuer,
        )
        assert claims["token_use"] == "id"
        return dict(claims)

    def access_token(self, token: str, client_id: str) -> dict[str, Any]:
        claims = jwt.decode(
            token,
            self.keys.get_signing_key_from_jwt(token).key,
            algorithms=["RS256"],
            issuer=self.issuer,
            options={"verify_aud": False},
        )
        assert claims["token_use"] == "access" and claims["client_id"] == client_id
        return dict(claims)


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="refresh")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return str(client["UserPoolClient"]["ClientId"])


@pytest.fixture(scope="module")
def verifier(gatehouse: GatehouseServer, pool_id: str) -> Verifier:
    return Verifier(gatehouse, pool_id)


@pytest.fixture(scope="module")
def make_user(idp: Any, pool_id: str) -> Callable[[str], str]:
    """A confirmed user with PASSWORD, made through the admin API; returns the username."""

    def make(username: str) -> str:
        idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
        return username

    return make


def rotating_client(idp: Any, pool_id: str, grace: int, **extra: Any) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=f"rotating-{grace}",
        ExplicitAuthFlows=FLOWS,
        RefreshTokenRotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": grace},
        **extra,
    )["UserPoolClient"]
    assert client["RefreshTokenRotation"] == {"Feature": "ENABLED", "RetryGracePeriodSeconds": grace}
    return str(client["ClientId"])


# --- REFRESH_TOKEN_AUTH ------------------------------------------------------------------------------------


def test_refresh_token_auth_issues_new_tokens_of_the_same_family(
    public_idp: Any, client_id: str, make_user: Callable[[str], str], verifier: Verifier
) -> None:
    username = make_user("rita")
    first = sign_in(public_idp, client_id, username)
    first_id = verifier.id_token(first["IdToken"], client_id)
    first_access = verifier.access_token(first["AccessToken"], client_id)
    time.sleep(1.1)  # so that a re-stamped auth_time would show

    refreshed = refresh_auth(public_idp, client_id, first["RefreshToken"])
    assert "RefreshToken" not in refreshed
    assert refreshed["TokenType"] == "Bearer" and refreshed["ExpiresIn"] == 3600
    new_id = verifier.id_token(refreshed["IdToken"], client_id)
    new_access = verifier.access_token(refreshed["AccessToken"], client_id)
    assert new_id["origin_jti"] == new_access["origin_jti"] == first_id["origin_jti"] == first_access["origin_jti"]
    assert len({new_id["jti"], new_access["jti"], first_id["jti"], first_access["jti"]}) == 4
    assert new_id["iat"] > first_id["iat"]
    assert new_id["auth_time"] == new_access["auth_time"] == first_id["auth_time"] == first_access["auth_time"]
    assert new_id["sub"] == first_id["sub"] and new_id["cognito:username"] == username

    # Without rotation the refresh token stays good, and both generations of access tokens work.
    again = refresh_auth(public_idp, client_id, first["RefreshToken"])
    assert unverified(again["AccessToken"])["origin_jti"] == first_id["origin_jti"]
    for access in (first["AccessToken"], refreshed["AccessToken"], again["AccessToken"]):
        assert public_idp.get_user(AccessToken=access)["Username"] == username


def test_refresh_token_auth_refuses_garbage_and_other_clients(
    idp: Any, public_idp: Any, pool_id: str, client_id: str, make_user: Callable[[str], str]
) -> None:
    username = make_user("gary")
    tokens = sign_in(public_idp, client_id, username)
    other = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    for cid, token in (
        (client_id, "not-a-refresh-token"),
        (client_id, tokens["AccessToken"]),
        (other, tokens["RefreshToken"]),
    ):
        with pytest.raises(ClientError) as exc:
            refresh_auth(public_idp, cid, token)
        assert error_code(exc) == "NotAuthorizedException"
    assert refresh_auth(public_idp, client_id, tokens["RefreshToken"])["AccessToken"]


# --- RevokeToken -------------------------------------------------------------------------------------------


def test_revoke_token_ends_one_family_and_no_other(
    public_idp: Any, client_id: str, make_user: Callable[[str], str]
) -> None:
    username = make_user("vera")
    laptop = sign_in(public_idp, client_id, username)
    phone = sign_in(public_idp, client_id, username)
    laptop_refreshed = refresh_auth(public_idp, client_id, laptop["RefreshToken"])
    assert unverified(laptop["AccessToken"])["origin_jti"] != unverified(phone["AccessToken"])["origin_jti"]

    assert public_idp.revoke_token(Token=laptop["RefreshToken"], ClientId=client_id) is not None
    assert refresh_error(lambda: refresh_auth(public_idp, client_id, laptop["RefreshToken"]))[0] == (
        "NotAuthorizedException"
    )
    for access in (laptop["AccessToken"], laptop_refreshed["AccessToken"]):
        assert get_user_error(public_idp, access) == ("NotAuthorizedException", "Access Token has been revoked")

    # The user's other session is untouched.
    assert public_idp.get_user(AccessToken=phone["AccessToken"])["Username"] == username
    assert refresh_auth(public_idp, client_id, phone["RefreshToken"])["AccessToken"]

    # RFC 7009 §2.2: revoking a token that is already revoked, or was never issued, is not an error.
    public_idp.revoke_token(Token=laptop["RefreshToken"], ClientId=client_id)
    public_idp.revoke_token(Token="never-issued-" + "x" * 40, ClientId=client_id)
    assert public_idp.get_user(AccessToken=phone["AccessToken"])["Username"] == username


def test_revoke_token_with_a_client_secret_needs_the_secret(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="confidential", GenerateSecret=True, ExplicitAuthFlows=FLOWS
    )["UserPoolClient"]
    cid, secret = client["ClientId"], client["ClientSecret"]
    username = make_user("cecil")
    tokens = sign_in(public_idp, cid, username, SECRET_HASH=secret_hash(cid, secret, username))

    for given in ({}, {"ClientSecret": "x" * 51}):
        with pytest.raises(ClientError) as exc:
            public_idp.revoke_token(Token=tokens["RefreshToken"], ClientId=cid, **given)
        # RevokeToken's errors in the service model: a bad client credential is UnauthorizedException.
        assert error_code(exc) == "UnauthorizedException"
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == username

    public_idp.revoke_token(Token=tokens["RefreshToken"], ClientId=cid, ClientSecret=secret)
    assert get_user_error(public_idp, tokens["AccessToken"]) == (
        "NotAuthorizedException",
        "Access Token has been revoked",
    )


def test_revoke_token_of_another_client_is_refused(
    idp: Any, public_idp: Any, pool_id: str, client_id: str, make_user: Callable[[str], str]
) -> None:
    other = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="other-app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    username = make_user("otto")
    tokens = sign_in(public_idp, client_id, username)
    with pytest.raises(ClientError) as exc:
        public_idp.revoke_token(Token=tokens["RefreshToken"], ClientId=other)
    assert error_code(exc) == "UnauthorizedException"
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == username
    assert refresh_auth(public_idp, client_id, tokens["RefreshToken"])["AccessToken"]


# --- GetTokensFromRefreshToken -----------------------------------------------------------------------------


def test_rotation_returns_the_same_successor_within_the_grace_period(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str], verifier: Verifier
) -> None:
    cid = rotating_client(idp, pool_id, grace=1)
    username = make_user("rosa")
    first = sign_in(public_idp, cid, username)
    origin = unverified(first["AccessToken"])["origin_jti"]

    rotated = public_idp.get_tokens_from_refresh_token(RefreshToken=first["RefreshToken"], ClientId=cid)[
        "AuthenticationResult"
    ]
    successor = rotated["RefreshToken"]
    assert successor and successor != first["RefreshToken"]
    assert verifier.access_token(rotated["AccessToken"], cid)["origin_jti"] == origin
    assert verifier.id_token(rotated["IdToken"], cid)["origin_jti"] == origin

    retried = public_idp.get_tokens_from_refresh_token(RefreshToken=first["RefreshToken"], ClientId=cid)[
        "AuthenticationResult"
    ]
    assert retried["RefreshToken"] == successor
    assert unverified(retried["AccessToken"])["origin_jti"] == origin

    time.sleep(1.6)  # past the one-second grace period
    with pytest.raises(ClientError) as exc:
        public_idp.get_tokens_from_refresh_token(RefreshToken=first["RefreshToken"], ClientId=cid)
    assert error_code(exc) == "RefreshTokenReuseException"
    # Reuse means the family is compromised: its newest refresh token and its access tokens are dead too.
    assert (
        refresh_error(lambda: public_idp.get_tokens_from_refresh_token(RefreshToken=successor, ClientId=cid))[0]
        == "NotAuthorizedException"
    )
    for access in (first["AccessToken"], rotated["AccessToken"], retried["AccessToken"]):
        assert get_user_error(public_idp, access)[0] == "NotAuthorizedException"


def test_rotation_without_grace_refuses_any_reuse_and_spares_other_sessions(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    cid = rotating_client(idp, pool_id, grace=0)
    username = make_user("zeno")
    first = sign_in(public_idp, cid, username)
    bystander = sign_in(public_idp, cid, username)

    def rotate(token: str) -> dict[str, Any]:
        return dict(public_idp.get_tokens_from_refresh_token(RefreshToken=token, ClientId=cid)["AuthenticationResult"])

    second = rotate(first["RefreshToken"])
    third = rotate(second["RefreshToken"])
    assert len({first["RefreshToken"], second["RefreshToken"], third["RefreshToken"]}) == 3
    assert public_idp.get_user(AccessToken=third["AccessToken"])["Username"] == username

    with pytest.raises(ClientError) as exc:
        rotate(first["RefreshToken"])
    assert error_code(exc) == "RefreshTokenReuseException"
    assert refresh_error(lambda: rotate(third["RefreshToken"]))[0] == "NotAuthorizedException"
    assert get_user_error(public_idp, third["AccessToken"])[0] == "NotAuthorizedException"

    assert public_idp.get_user(AccessToken=bystander["AccessToken"])["Username"] == username
    assert rotate(bystander["RefreshToken"])["RefreshToken"]


def test_concurrent_refreshes_within_the_grace_period_share_one_successor(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    cid = rotating_client(idp, pool_id, grace=10)
    username = make_user("cora")
    first = sign_in(public_idp, cid, username)
    origin = unverified(first["AccessToken"])["origin_jti"]
    callers = 10
    clients = [gatehouse.client(signed=False) for _ in range(callers)]  # boto3 clients are not shared by threads
    start = threading.Barrier(callers)

    def refresh(client: Any) -> dict[str, Any]:
        start.wait(timeout=10)
        response = client.get_tokens_from_refresh_token(RefreshToken=first["RefreshToken"], ClientId=cid)
        return dict(response["AuthenticationResult"])

    with ThreadPoolExecutor(max_workers=callers) as pool:
        results = list(pool.map(refresh, clients))

    successors = {r["RefreshToken"] for r in results}
    assert len(successors) == 1, successors
    (successor,) = successors
    assert successor != first["RefreshToken"]
    assert {unverified(r["AccessToken"])["origin_jti"] for r in results} == {origin}
    assert len({unverified(r["AccessToken"])["jti"] for r in results}) == callers

    # One successor only: it rotates on, while the original, still in its grace period, keeps naming it.
    onward = public_idp.get_tokens_from_refresh_token(RefreshToken=successor, ClientId=cid)["AuthenticationResult"]
    assert onward["RefreshToken"] not in (successor, first["RefreshToken"])
    retried = public_idp.get_tokens_from_refresh_token(RefreshToken=first["RefreshToken"], ClientId=cid)
    assert retried["AuthenticationResult"]["RefreshToken"] == successor


def test_without_rotation_get_tokens_from_refresh_token_keeps_the_refresh_token(
    public_idp: Any, client_id: str, make_user: Callable[[str], str], verifier: Verifier
) -> None:
    username = make_user("nora")
    first = sign_in(public_idp, client_id, username)
    origin = unverified(first["AccessToken"])["origin_jti"]
    for _ in range(2):
        result = public_idp.get_tokens_from_refresh_token(RefreshToken=first["RefreshToken"], ClientId=client_id)[
            "AuthenticationResult"
        ]
        assert "RefreshToken" not in result
        assert verifier.access_token(result["AccessToken"], client_id)["origin_jti"] == origin
        assert verifier.id_token(result["IdToken"], client_id)["origin_jti"] == origin
        assert public_idp.get_user(AccessToken=result["AccessToken"])["Username"] == username


def test_get_tokens_from_refresh_token_with_a_client_secret_needs_the_secret(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="confidential-rotating",
        GenerateSecret=True,
        ExplicitAuthFlows=FLOWS,
        RefreshTokenRotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 0},
    )["UserPoolClient"]
    cid, secret = client["ClientId"], client["ClientSecret"]
    username = make_user("sid")
    tokens = sign_in(public_idp, cid, username, SECRET_HASH=secret_hash(cid, secret, username))
    for given in ({}, {"ClientSecret": "y" * 51}):
        with pytest.raises(ClientError) as exc:
            public_idp.get_tokens_from_refresh_token(RefreshToken=tokens["RefreshToken"], ClientId=cid, **given)
        assert error_code(exc) == "NotAuthorizedException"
    # The refused calls did not consume the token.
    result = public_idp.get_tokens_from_refresh_token(
        RefreshToken=tokens["RefreshToken"], ClientId=cid, ClientSecret=secret
    )["AuthenticationResult"]
    assert result["RefreshToken"] != tokens["RefreshToken"]


# --- token lifetimes ---------------------------------------------------------------------------------------


def test_token_lifetimes_follow_the_client_settings(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str], verifier: Verifier
) -> None:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="short-lived",
        ExplicitAuthFlows=FLOWS,
        AccessTokenValidity=5,
        IdTokenValidity=2,
        RefreshTokenValidity=1,
        TokenValidityUnits={"AccessToken": "minutes", "IdToken": "hours", "RefreshToken": "days"},
    )["UserPoolClient"]
    cid = client["ClientId"]
    assert client["AccessTokenValidity"] == 5 and client["TokenValidityUnits"]["AccessToken"] == "minutes"
    username = make_user("tina")
    for result in (tokens := sign_in(public_idp, cid, username), refresh_auth(public_idp, cid, tokens["RefreshToken"])):
        assert result["ExpiresIn"] == 300
        access = verifier.access_token(result["AccessToken"], cid)
        assert access["exp"] - access["iat"] == 300
        id_claims = verifier.id_token(result["IdToken"], cid)
        assert id_claims["exp"] - id_claims["iat"] == 7200


@pytest.mark.parametrize(
    "validity",
    [
        {"AccessTokenValidity": 2, "TokenValidityUnits": {"AccessToken": "days"}},
        {"AccessTokenValidity": 4, "TokenValidityUnits": {"AccessToken": "minutes"}},
        {"IdTokenValidity": 25, "TokenValidityUnits": {"IdToken": "hours"}},
        {"RefreshTokenValidity": 59, "TokenValidityUnits": {"RefreshToken": "minutes"}},
        {"RefreshTokenValidity": 3651, "TokenValidityUnits": {"RefreshToken": "days"}},
    ],
)
def test_token_validity_out_of_range_is_refused(idp: Any, pool_id: str, validity: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName="invalid", **validity)
    assert error_code(exc) == "InvalidParameterException"
