"""User sessions through boto3 and the hosted pages: the session configuration of a pool and of an app client,
ListUserSessions / AdminListUserSessions across clients (token sessions and the hosted UI's SSO sessions),
RevokeUserSession / AdminRevokeUserSession, MaxPerUser, and tracking turned off.

The spec is the API reference of the eight operations (botocore's model: shapes, defaults, errors) and the
developer guide's "Managing user sessions"; where Cognito documents no error for a case, the choice is
gateway/services/sessions.py's and is asserted here.
"""

from __future__ import annotations

import re
import time
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, Browser, OAuthPool, make_pool, pkce_pair, query_of
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, REGION, GatehouseServer

PASSWORD = "Correct-Horse-9"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
SESSION_ID = re.compile(r"^(tkn|sso)[a-z0-9]{25}$")
NOT_ENABLED = "Session tracking is not enabled for this user pool."
NOT_FOUND = "Session not found."
ADMIN_SCOPES = "openid email aws.cognito.signin.user.admin"


# --- helpers -----------------------------------------------------------------------------------------------


def error_of(call: Any, **params: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**params)
    error = exc.value.response["Error"]
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] < 500
    return str(error["Code"]), str(error["Message"])


def make_user(idp: Any, pool_id: str, username: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def api_client(idp: Any, pool_id: str, name: str) -> str:
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName=name, ExplicitAuthFlows=FLOWS)
    return str(client["UserPoolClient"]["ClientId"])


def sign_in(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    response = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return dict(response["AuthenticationResult"])


def refresh(public_idp: Any, client_id: str, refresh_token: str) -> dict[str, Any]:
    response = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
    )
    return dict(response["AuthenticationResult"])


def sessions_of(public_idp: Any, access_token: str) -> list[dict[str, Any]]:
    return list(public_idp.list_user_sessions(AccessToken=access_token)["Sessions"])


def track(idp: Any, pool_id: str, max_per_user: int = 20) -> None:
    idp.set_user_pool_session_configuration(
        UserPoolId=pool_id, UserSessionTracking="ENABLED", TokenSession={"MaxPerUser": max_per_user}
    )


def unchecked(gatehouse: GatehouseServer, *, signed: bool = True) -> Any:
    """A boto3 client that sends what it is given: botocore's own checks off, so the server's are tested."""
    options: dict[str, Any] = {"retries": {"max_attempts": 1, "mode": "standard"}, "parameter_validation": False}
    if not signed:
        from botocore import UNSIGNED

        options["signature_version"] = UNSIGNED
    return boto3.client(
        "cognito-idp",
        endpoint_url=gatehouse.url,
        region_name=REGION,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
        config=Config(**options),
    )


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    made = str(idp.create_user_pool(PoolName="sessions")["UserPool"]["Id"])
    track(idp, made)
    return made


@pytest.fixture(scope="module")
def clients(idp: Any, pool_id: str) -> tuple[str, str]:
    return api_client(idp, pool_id, "phone"), api_client(idp, pool_id, "laptop")


# --- configuration -----------------------------------------------------------------------------------------


def test_pool_configuration_defaults_and_full_replacement(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="session-config")["UserPool"]["Id"]
    got = idp.get_user_pool_session_configuration(UserPoolId=pool)
    assert got["UserSessionTracking"] == "DISABLED"
    assert got["TokenSession"] == {"MaxPerUser": 20}
    assert got["UserPoolId"] == pool
    answer = idp.set_user_pool_session_configuration(
        UserPoolId=pool, UserSessionTracking="ENABLED", TokenSession={"MaxPerUser": 7}
    )
    assert (answer["UserPoolId"], answer["UserSessionTracking"], answer["TokenSession"]) == (
        pool,
        "ENABLED",
        {"MaxPerUser": 7},
    )
    got = idp.get_user_pool_session_configuration(UserPoolId=pool)
    assert (got["UserSessionTracking"], got["TokenSession"]) == ("ENABLED", {"MaxPerUser": 7})
    # UpdateUserPool resets what it is not sent, but the session configuration is not one of its members.
    idp.update_user_pool(UserPoolId=pool)
    assert idp.get_user_pool_session_configuration(UserPoolId=pool)["TokenSession"] == {"MaxPerUser": 7}
    described = idp.describe_user_pool(UserPoolId=pool)["UserPool"]
    assert "UserSessionConfiguration" not in described and "ClientSessionConfigurations" not in described
    assert error_of(idp.get_user_pool_session_configuration, UserPoolId="us-east-1_nothere")[0] == (
        "ResourceNotFoundException"
    )


def test_client_configuration(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="client-session-config")["UserPool"]["Id"]
    client = api_client(idp, pool, "app")
    got = idp.get_user_pool_client_session_configuration(UserPoolId=pool, ClientId=client)
    assert (got["UserPoolId"], got["ClientId"], got["SSOSession"]) == (pool, client, {"MaxValidityMinutes": 60})
    # "session tracking must be enabled for the user pool"
    assert error_of(
        idp.set_user_pool_client_session_configuration,
        UserPoolId=pool,
        ClientId=client,
        SSOSession={"MaxValidityMinutes": 5},
    ) == ("OperationNotEnabledException", NOT_ENABLED)
    track(idp, pool)
    answer = idp.set_user_pool_client_session_configuration(
        UserPoolId=pool, ClientId=client, SSOSession={"MaxValidityMinutes": 0}
    )
    assert answer["SSOSession"] == {"MaxValidityMinutes": 0}
    got = idp.get_user_pool_client_session_configuration(UserPoolId=pool, ClientId=client)
    assert got["SSOSession"] == {"MaxValidityMinutes": 0}
    # Turning tracking off keeps the client's setting, dormant.
    idp.set_user_pool_session_configuration(
        UserPoolId=pool, UserSessionTracking="DISABLED", TokenSession={"MaxPerUser": 20}
    )
    got = idp.get_user_pool_client_session_configuration(UserPoolId=pool, ClientId=client)
    assert got["SSOSession"] == {"MaxValidityMinutes": 0}
    assert error_of(idp.get_user_pool_client_session_configuration, UserPoolId=pool, ClientId="nothere1")[0] == (
        "ResourceNotFoundException"
    )
    other = idp.create_user_pool(PoolName="other-pool")["UserPool"]["Id"]
    assert error_of(idp.get_user_pool_client_session_configuration, UserPoolId=other, ClientId=client)[0] == (
        "ResourceNotFoundException"
    )


def test_lite_pools_have_no_session_management(idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="lite", UserPoolTier="LITE")["UserPool"]["Id"]
    code, _ = error_of(
        idp.set_user_pool_session_configuration,
        UserPoolId=pool,
        UserSessionTracking="ENABLED",
        TokenSession={"MaxPerUser": 5},
    )
    assert code == "FeatureUnavailableInTierException"
    assert idp.get_user_pool_session_configuration(UserPoolId=pool)["UserSessionTracking"] == "DISABLED"


def test_configuration_needs_a_signature(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> None:
    anonymous = gatehouse.client(signed=False)
    for call, params in (
        (anonymous.get_user_pool_session_configuration, {"UserPoolId": pool_id}),
        (
            anonymous.set_user_pool_session_configuration,
            {"UserPoolId": pool_id, "UserSessionTracking": "DISABLED", "TokenSession": {"MaxPerUser": 1}},
        ),
        (anonymous.admin_list_user_sessions, {"UserPoolId": pool_id, "Username": "anyone"}),
    ):
        assert error_of(call, **params)[0] == "MissingAuthenticationTokenException"
    assert idp.get_user_pool_session_configuration(UserPoolId=pool_id)["UserSessionTracking"] == "ENABLED"


# --- listing -----------------------------------------------------------------------------------------------


def test_list_across_two_clients(idp: Any, public_idp: Any, pool_id: str, clients: tuple[str, str]) -> None:
    phone, laptop = clients
    make_user(idp, pool_id, "lister")
    before = time.time()
    on_phone = sign_in(public_idp, phone, "lister")
    on_laptop = sign_in(public_idp, laptop, "lister")
    listed = sessions_of(public_idp, on_phone["AccessToken"])
    assert sorted(s["ClientId"] for s in listed) == sorted([phone, laptop])
    for session in listed:
        assert SESSION_ID.match(session["SessionId"]) and session["SessionType"] == "TOKEN"
        assert session["SessionId"].startswith("tkn")
        assert session["CreateDate"].timestamp() >= before - 1
        assert session["LastActiveDate"] >= session["CreateDate"]
        assert session["LastIPAddress"] == "127.0.0.1"
        assert session["DeviceType"].startswith("Boto3 on ")
        assert "OriginSessionId" not in session and "LastLocation" not in session
        # The id names the session without telling its refresh token or origin_jti.
        assert session["SessionId"] not in (on_phone["RefreshToken"], on_laptop["RefreshToken"])
    current = [s for s in listed if s["IsCurrentSession"]]
    assert [s["ClientId"] for s in current] == [phone]
    # From the laptop's token the other one is current; the ids are the same.
    from_laptop = sessions_of(public_idp, on_laptop["AccessToken"])
    assert {s["SessionId"] for s in from_laptop} == {s["SessionId"] for s in listed}
    assert [s["ClientId"] for s in from_laptop if s["IsCurrentSession"]] == [laptop]
    # A refresh keeps the session (same id) and moves its LastActiveDate.
    laptop_id = next(s["SessionId"] for s in listed if s["ClientId"] == laptop)
    time.sleep(1.1)
    refreshed = refresh(public_idp, laptop, on_laptop["RefreshToken"])
    again = {s["SessionId"]: s for s in sessions_of(public_idp, refreshed["AccessToken"])}
    assert set(again) == {s["SessionId"] for s in listed}
    assert again[laptop_id]["IsCurrentSession"]
    assert again[laptop_id]["LastActiveDate"] > again[laptop_id]["CreateDate"]


def test_a_sign_in_through_a_challenge_starts_one_session(
    idp: Any, public_idp: Any, pool_id: str, clients: tuple[str, str]
) -> None:
    phone, _ = clients
    idp.admin_create_user(
        UserPoolId=pool_id, Username="newcomer", TemporaryPassword="Temporary-Pass-1", MessageAction="SUPPRESS"
    )
    started = public_idp.initiate_auth(
        ClientId=phone,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "newcomer", "PASSWORD": "Temporary-Pass-1"},
        UserContextData={"IpAddress": "192.0.2.1"},
    )
    assert started["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    answered = public_idp.respond_to_auth_challenge(
        ClientId=phone,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=started["Session"],
        ChallengeResponses={"USERNAME": "newcomer", "NEW_PASSWORD": PASSWORD},
    )
    tokens = answered["AuthenticationResult"]
    (listed,) = sessions_of(public_idp, tokens["AccessToken"])
    assert listed["IsCurrentSession"] and listed["ClientId"] == phone


def test_admin_list(idp: Any, public_idp: Any, pool_id: str, clients: tuple[str, str]) -> None:
    phone, laptop = clients
    make_user(idp, pool_id, "admin-listed")
    sign_in(public_idp, phone, "admin-listed")
    sign_in(public_idp, laptop, "admin-listed")
    listed = idp.admin_list_user_sessions(UserPoolId=pool_id, Username="admin-listed")["Sessions"]
    assert len(listed) == 2 and not any(s["IsCurrentSession"] for s in listed)
    assert "NextToken" not in idp.admin_list_user_sessions(UserPoolId=pool_id, Username="admin-listed")
    assert error_of(idp.admin_list_user_sessions, UserPoolId=pool_id, Username="nobody")[0] == "UserNotFoundException"
    # A user with no session has an empty list.
    make_user(idp, pool_id, "never-signed-in")
    assert idp.admin_list_user_sessions(UserPoolId=pool_id, Username="never-signed-in")["Sessions"] == []


def test_signed_out_and_revoked_sessions_are_not_listed(
    idp: Any, public_idp: Any, pool_id: str, clients: tuple[str, str]
) -> None:
    phone, laptop = clients
    make_user(idp, pool_id, "revoker")
    first = sign_in(public_idp, phone, "revoker")
    second = sign_in(public_idp, laptop, "revoker")
    public_idp.revoke_token(ClientId=laptop, Token=second["RefreshToken"])
    assert [s["ClientId"] for s in sessions_of(public_idp, first["AccessToken"])] == [phone]
    idp.admin_user_global_sign_out(UserPoolId=pool_id, Username="revoker")
    assert idp.admin_list_user_sessions(UserPoolId=pool_id, Username="revoker")["Sessions"] == []


def test_a_deleted_clients_sessions_are_not_listed(
    idp: Any, public_idp: Any, pool_id: str, clients: tuple[str, str]
) -> None:
    """A token session of an app client deleted since is over: its refresh token is refused with the client,
    and the lists no longer show it."""
    phone, _laptop = clients
    doomed = api_client(idp, pool_id, "doomed-tablet")
    make_user(idp, pool_id, "outlived")
    kept = sign_in(public_idp, phone, "outlived")
    gone = sign_in(public_idp, doomed, "outlived")
    assert sorted(s["ClientId"] for s in sessions_of(public_idp, kept["AccessToken"])) == sorted([phone, doomed])
    idp.delete_user_pool_client(UserPoolId=pool_id, ClientId=doomed)
    assert [s["ClientId"] for s in sessions_of(public_idp, kept["AccessToken"])] == [phone]
    listed = idp.admin_list_user_sessions(UserPoolId=pool_id, Username="outlived")["Sessions"]
    assert [s["ClientId"] for s in listed] == [phone]
    refused = error_of(
        public_idp.initiate_auth,
        ClientId=doomed,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": gone["RefreshToken"]},
    )
    assert refused[0] == "ResourceNotFoundException"


# --- revoking ----------------------------------------------------------------------------------------------


def test_revoke_another_session(idp: Any, public_idp: Any, pool_id: str, clients: tuple[str, str]) -> None:
    phone, laptop = clients
    make_user(idp, pool_id, "loser")
    on_phone = sign_in(public_idp, phone, "loser")
    on_laptop = sign_in(public_idp, laptop, "loser")
    laptop_id = next(
        s["SessionId"] for s in sessions_of(public_idp, on_phone["AccessToken"]) if s["ClientId"] == laptop
    )
    public_idp.revoke_user_session(AccessToken=on_phone["AccessToken"], SessionId=laptop_id)
    # At once: the laptop's access token and refresh token are refused...
    assert error_of(public_idp.get_user, AccessToken=on_laptop["AccessToken"]) == (
        "NotAuthorizedException",
        "Access Token has been revoked",
    )
    assert error_of(
        public_idp.initiate_auth,
        ClientId=laptop,
        AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": on_laptop["RefreshToken"]},
    ) == ("NotAuthorizedException", "Refresh Token has been revoked")
    # ...the caller's own tokens still work, and the session is gone from the list.
    assert public_idp.get_user(AccessToken=on_phone["AccessToken"])["Username"] == "loser"
    refresh(public_idp, phone, on_phone["RefreshToken"])
    assert [s["ClientId"] for s in sessions_of(public_idp, on_phone["AccessToken"])] == [phone]
    # Revoked once: not found the second time.
    assert error_of(public_idp.revoke_user_session, AccessToken=on_phone["AccessToken"], SessionId=laptop_id) == (
        "ResourceNotFoundException",
        NOT_FOUND,
    )


def test_the_current_session_cannot_be_revoked(
    public_idp: Any, idp: Any, pool_id: str, clients: tuple[str, str]
) -> None:
    phone, _ = clients
    make_user(idp, pool_id, "self-revoker")
    tokens = sign_in(public_idp, phone, "self-revoker")
    (own,) = sessions_of(public_idp, tokens["AccessToken"])
    assert error_of(public_idp.revoke_user_session, AccessToken=tokens["AccessToken"], SessionId=own["SessionId"]) == (
        "InvalidParameterException",
        "The current session can't be revoked.",
    )
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "self-revoker"
    # An administrator can.
    idp.admin_revoke_user_session(UserPoolId=pool_id, Username="self-revoker", SessionId=own["SessionId"])
    assert error_of(public_idp.get_user, AccessToken=tokens["AccessToken"])[0] == "NotAuthorizedException"


def test_unknown_and_other_users_sessions(idp: Any, public_idp: Any, pool_id: str, clients: tuple[str, str]) -> None:
    phone, laptop = clients
    make_user(idp, pool_id, "alice")
    make_user(idp, pool_id, "mallory")
    alice = sign_in(public_idp, phone, "alice")
    mallory = sign_in(public_idp, laptop, "mallory")
    (alices,) = sessions_of(public_idp, alice["AccessToken"])
    unknown = error_of(public_idp.revoke_user_session, AccessToken=mallory["AccessToken"], SessionId="tkn" + "a" * 25)
    foreign = error_of(
        public_idp.revoke_user_session, AccessToken=mallory["AccessToken"], SessionId=alices["SessionId"]
    )
    # The same answer: another user's session id is not told apart from one that names nothing.
    assert unknown == foreign == ("ResourceNotFoundException", NOT_FOUND)
    assert error_of(public_idp.revoke_user_session, AccessToken=mallory["AccessToken"], SessionId="sso" + "0" * 25) == (
        "ResourceNotFoundException",
        NOT_FOUND,
    )
    assert public_idp.get_user(AccessToken=alice["AccessToken"])["Username"] == "alice"
    # The admin call's Username must be the session's user.
    assert error_of(
        idp.admin_revoke_user_session, UserPoolId=pool_id, Username="mallory", SessionId=alices["SessionId"]
    ) == ("ResourceNotFoundException", NOT_FOUND)
    assert public_idp.get_user(AccessToken=alice["AccessToken"])["Username"] == "alice"
    idp.admin_revoke_user_session(
        UserPoolId=pool_id, Username="alice", SessionId=alices["SessionId"], RevokeAssociatedSessions="NONE"
    )
    assert error_of(public_idp.get_user, AccessToken=alice["AccessToken"])[0] == "NotAuthorizedException"
    assert (
        error_of(idp.admin_revoke_user_session, UserPoolId=pool_id, Username="nobody", SessionId=alices["SessionId"])[0]
        == "UserNotFoundException"
    )


# --- MaxPerUser --------------------------------------------------------------------------------------------


def test_max_per_user_evicts_the_least_recently_used(idp: Any, public_idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="max-sessions")["UserPool"]["Id"]
    client = api_client(idp, pool, "app")
    track(idp, pool, max_per_user=2)
    make_user(idp, pool, "busy")
    first = sign_in(public_idp, client, "busy")
    time.sleep(1.1)
    second = sign_in(public_idp, client, "busy")
    time.sleep(1.1)
    # The first is used again: now the second is the least recently used.
    first = {**first, **refresh(public_idp, client, first["RefreshToken"])}
    time.sleep(1.1)
    third = sign_in(public_idp, client, "busy")
    listed = idp.admin_list_user_sessions(UserPoolId=pool, Username="busy")["Sessions"]
    assert len(listed) == 2
    assert error_of(public_idp.get_user, AccessToken=second["AccessToken"]) == (
        "NotAuthorizedException",
        "Access Token has been revoked",
    )
    assert public_idp.get_user(AccessToken=first["AccessToken"])["Username"] == "busy"
    assert public_idp.get_user(AccessToken=third["AccessToken"])["Username"] == "busy"
    # Lowering the limit evicts nothing until the next sign-in, which brings the user back within it.
    track(idp, pool, max_per_user=1)
    assert len(idp.admin_list_user_sessions(UserPoolId=pool, Username="busy")["Sessions"]) == 2
    fourth = sign_in(public_idp, client, "busy")
    (only,) = sessions_of(public_idp, fourth["AccessToken"])
    assert only["IsCurrentSession"]
    assert error_of(public_idp.get_user, AccessToken=third["AccessToken"])[0] == "NotAuthorizedException"


def test_max_per_user_holds_under_concurrent_sign_ins(idp: Any, public_idp: Any) -> None:
    """Many sign-ins of one user at once: the user never ends up with more than MaxPerUser sessions, and each
    sign-in's own tokens are among those kept unless later ones evicted them."""
    from concurrent.futures import ThreadPoolExecutor

    pool = idp.create_user_pool(PoolName="racing-sessions")["UserPool"]["Id"]
    client = api_client(idp, pool, "app")
    track(idp, pool, max_per_user=2)
    make_user(idp, pool, "swarm")
    with ThreadPoolExecutor(max_workers=12) as workers:
        issued = list(workers.map(lambda _: sign_in(public_idp, client, "swarm"), range(12)))
    listed = idp.admin_list_user_sessions(UserPoolId=pool, Username="swarm")["Sessions"]
    assert len(listed) <= 2, len(listed)
    alive = 0
    for tokens in issued:
        try:
            public_idp.get_user(AccessToken=tokens["AccessToken"])
            alive += 1
        except ClientError:
            pass
    assert alive == len(listed)


def test_without_tracking_nothing_is_evicted(idp: Any, public_idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="untracked")["UserPool"]["Id"]
    client = api_client(idp, pool, "app")
    idp.set_user_pool_session_configuration(
        UserPoolId=pool, UserSessionTracking="DISABLED", TokenSession={"MaxPerUser": 1}
    )
    make_user(idp, pool, "free")
    tokens = [sign_in(public_idp, client, "free") for _ in range(3)]
    for issued in tokens:
        assert public_idp.get_user(AccessToken=issued["AccessToken"])["Username"] == "free"


# --- tracking off ------------------------------------------------------------------------------------------


def test_tracking_off_answers_operation_not_enabled(idp: Any, public_idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="no-tracking")["UserPool"]["Id"]
    client = api_client(idp, pool, "app")
    make_user(idp, pool, "quiet")
    tokens = sign_in(public_idp, client, "quiet")
    expected = ("OperationNotEnabledException", NOT_ENABLED)
    assert error_of(public_idp.list_user_sessions, AccessToken=tokens["AccessToken"]) == expected
    assert error_of(idp.admin_list_user_sessions, UserPoolId=pool, Username="quiet") == expected
    assert (
        error_of(public_idp.revoke_user_session, AccessToken=tokens["AccessToken"], SessionId="tkn" + "b" * 25)
        == expected
    )
    assert (
        error_of(idp.admin_revoke_user_session, UserPoolId=pool, Username="quiet", SessionId="tkn" + "b" * 25)
        == expected
    )
    # Turned on later: the session that started before is listed (Gatehouse keeps every token family).
    track(idp, pool)
    (listed,) = sessions_of(public_idp, tokens["AccessToken"])
    assert listed["IsCurrentSession"] and "DeviceType" not in listed


# --- SSO sessions of the hosted UI -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hosted(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    made = make_pool(idp, gatehouse.url, "hosted-sessions")
    track(idp, made.pool_id)
    return made


def redeem(gatehouse: GatehouseServer, pool: OAuthPool, done: requests.Response) -> dict[str, Any]:
    assert done.status_code in (302, 303) and done.headers["Location"].startswith(CALLBACK), done.text
    answer = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": query_of(done.headers["Location"])["code"]}
        | {"redirect_uri": CALLBACK},
        auth=(pool.secret_id, pool.secret),
        headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_sso_sessions_are_listed_and_linked(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, hosted: OAuthPool
) -> None:
    make_user(idp, hosted.pool_id, "browser-user")
    browser = Browser(gatehouse.url)
    browser.http.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
    done = browser.sign_in(browser.authorize_url(hosted.secret_id, scope=ADMIN_SCOPES), "browser-user")
    tokens = redeem(gatehouse, hosted, done)
    listed = {s["SessionType"]: s for s in sessions_of(public_idp, tokens["access_token"])}
    assert set(listed) == {"TOKEN", "SSO"}
    sso, token = listed["SSO"], listed["TOKEN"]
    assert SESSION_ID.match(sso["SessionId"]) and sso["SessionId"].startswith("sso")
    assert sso["ClientId"] == hosted.secret_id and not sso["IsCurrentSession"]
    assert sso["DeviceType"] == "Firefox on Linux" and sso["LastIPAddress"] == "127.0.0.1"
    assert "OriginSessionId" not in sso
    assert token["OriginSessionId"] == sso["SessionId"] and token["IsCurrentSession"]
    assert token["DeviceType"] == "Chrome on Windows"
    # A second client signs in silently through the same SSO session: its token session names it too.
    again = browser.sign_in(browser.authorize_url(hosted.secret_id, scope=ADMIN_SCOPES), "browser-user")
    second = redeem(gatehouse, hosted, again)
    origins = [s.get("OriginSessionId") for s in sessions_of(public_idp, second["access_token"])]
    assert origins.count(sso["SessionId"]) == 2
    # Revoking the SSO session (from a session of the API) with LINKED ends both token sessions and the cookie.
    api = api_client(idp, hosted.pool_id, "api")
    from_api = sign_in(public_idp, api, "browser-user")
    public_idp.revoke_user_session(
        AccessToken=from_api["AccessToken"], SessionId=sso["SessionId"], RevokeAssociatedSessions="LINKED"
    )
    for issued in (tokens, second):
        assert error_of(public_idp.get_user, AccessToken=issued["access_token"])[0] == "NotAuthorizedException"
    assert [s["ClientId"] for s in sessions_of(public_idp, from_api["AccessToken"])] == [api]
    page = browser.follow(browser.get(browser.authorize_url(hosted.secret_id, scope=ADMIN_SCOPES)))
    assert page.status_code == 200 and "Sign in" in page.text


def test_revoking_a_token_session_with_linked_ends_its_sso_session(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, hosted: OAuthPool
) -> None:
    make_user(idp, hosted.pool_id, "linked-user")
    browser = Browser(gatehouse.url)
    done = browser.sign_in(browser.authorize_url(hosted.secret_id, scope=ADMIN_SCOPES), "linked-user")
    from_browser = redeem(gatehouse, hosted, done)
    from_api = sign_in(public_idp, api_client(idp, hosted.pool_id, "api2"), "linked-user")
    token = next(s for s in sessions_of(public_idp, from_api["AccessToken"]) if "OriginSessionId" in s)
    # The SSO session that token session came through includes... nothing current: allowed.
    public_idp.revoke_user_session(
        AccessToken=from_api["AccessToken"], SessionId=token["SessionId"], RevokeAssociatedSessions="LINKED"
    )
    assert error_of(public_idp.get_user, AccessToken=from_browser["access_token"])[0] == "NotAuthorizedException"
    assert [s["SessionType"] for s in sessions_of(public_idp, from_api["AccessToken"])] == ["TOKEN"]
    page = browser.follow(browser.get(browser.authorize_url(hosted.secret_id, scope=ADMIN_SCOPES)))
    assert page.status_code == 200 and "Sign in" in page.text


def test_linked_revocation_that_reaches_the_current_session_is_refused(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, hosted: OAuthPool
) -> None:
    make_user(idp, hosted.pool_id, "careful")
    browser = Browser(gatehouse.url)
    done = browser.sign_in(browser.authorize_url(hosted.secret_id, scope=ADMIN_SCOPES), "careful")
    tokens = redeem(gatehouse, hosted, done)
    sso = next(s for s in sessions_of(public_idp, tokens["access_token"]) if s["SessionType"] == "SSO")
    assert error_of(
        public_idp.revoke_user_session,
        AccessToken=tokens["access_token"],
        SessionId=sso["SessionId"],
        RevokeAssociatedSessions="LINKED",
    ) == ("InvalidParameterException", "The current session can't be revoked.")
    assert len(sessions_of(public_idp, tokens["access_token"])) == 2
    # NONE revokes the SSO session alone: the caller's token session goes on.
    public_idp.revoke_user_session(AccessToken=tokens["access_token"], SessionId=sso["SessionId"])
    assert [s["SessionType"] for s in sessions_of(public_idp, tokens["access_token"])] == ["TOKEN"]


def test_client_sso_validity_zero_always_signs_in_again(
    gatehouse: GatehouseServer, idp: Any, hosted: OAuthPool
) -> None:
    make_user(idp, hosted.pool_id, "reauth")
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    public_url = browser.authorize_url(
        hosted.public_id, scope="openid", code_challenge=challenge, code_challenge_method="S256"
    )
    done = browser.sign_in(browser.authorize_url(hosted.secret_id, scope="openid"), "reauth")
    assert done.status_code in (302, 303) and "code=" in done.headers["Location"]
    # The session is reused by a client with the default validity...
    silent = browser.get(browser.authorize_url(hosted.secret_id, scope="openid"))
    assert silent.status_code == 302 and "code=" in silent.headers["Location"]
    # ...and never by one whose MaxValidityMinutes is 0 (the record and its cookie stay, for the others).
    idp.set_user_pool_client_session_configuration(
        UserPoolId=hosted.pool_id, ClientId=hosted.secret_id, SSOSession={"MaxValidityMinutes": 0}
    )
    try:
        page = browser.follow(browser.get(browser.authorize_url(hosted.secret_id, scope="openid")))
        assert page.status_code == 200 and "Sign in" in page.text
        # Silently (prompt=none) the session is not enough either: login_required, no code.
        quiet = browser.get(browser.authorize_url(hosted.secret_id, scope="openid", prompt="none"))
        assert quiet.status_code == 302 and query_of(quiet.headers["Location"]).get("error") == "login_required"
        silent = browser.get(public_url)
        assert silent.status_code == 302 and "code=" in silent.headers["Location"]
    finally:
        idp.set_user_pool_client_session_configuration(
            UserPoolId=hosted.pool_id, ClientId=hosted.secret_id, SSOSession={"MaxValidityMinutes": 60}
        )


# --- malformed input ---------------------------------------------------------------------------------------


def test_malformed_input_is_refused_never_a_server_error(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, clients: tuple[str, str]
) -> None:
    admin = unchecked(gatehouse)
    public = unchecked(gatehouse, signed=False)
    make_user(idp, pool_id, "fuzzed")
    tokens = sign_in(public_idp, clients[0], "fuzzed")
    access = tokens["AccessToken"]
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (admin.set_user_pool_session_configuration, {"UserPoolId": pool_id}, "InvalidParameterException"),
        (
            admin.set_user_pool_session_configuration,
            {"UserPoolId": pool_id, "UserSessionTracking": "MAYBE", "TokenSession": {"MaxPerUser": 5}},
            "InvalidParameterException",
        ),
        (
            admin.set_user_pool_session_configuration,
            {"UserPoolId": pool_id, "UserSessionTracking": "ENABLED", "TokenSession": {"MaxPerUser": 0}},
            "InvalidParameterException",
        ),
        (
            admin.set_user_pool_session_configuration,
            {"UserPoolId": pool_id, "UserSessionTracking": "ENABLED", "TokenSession": {"MaxPerUser": 101}},
            "InvalidParameterException",
        ),
        (
            admin.set_user_pool_session_configuration,
            {"UserPoolId": pool_id, "UserSessionTracking": "ENABLED", "TokenSession": {}},
            "InvalidParameterException",
        ),
        (
            admin.set_user_pool_session_configuration,
            {"UserPoolId": pool_id, "UserSessionTracking": "ENABLED", "TokenSession": {"MaxPerUser": "many"}},
            # A member of the wrong JSON type, as the AWS JSON wire answers it.
            "SerializationException",
        ),
        (
            admin.set_user_pool_client_session_configuration,
            {"UserPoolId": pool_id, "ClientId": clients[0], "SSOSession": {"MaxValidityMinutes": 129601}},
            "InvalidParameterException",
        ),
        (
            admin.set_user_pool_client_session_configuration,
            {"UserPoolId": pool_id, "ClientId": clients[0], "SSOSession": {"MaxValidityMinutes": -1}},
            "InvalidParameterException",
        ),
        (admin.get_user_pool_session_configuration, {"UserPoolId": "not a pool"}, "InvalidParameterException"),
        (public.list_user_sessions, {"AccessToken": "not-a-token"}, "NotAuthorizedException"),
        (public.list_user_sessions, {"AccessToken": access, "NextToken": "garbage"}, "InvalidParameterException"),
        (public.list_user_sessions, {"AccessToken": access, "NextToken": ""}, "InvalidParameterException"),
        (public.list_user_sessions, {}, "InvalidParameterException"),
        (public.revoke_user_session, {"AccessToken": access, "SessionId": "tkn123"}, "InvalidParameterException"),
        (
            public.revoke_user_session,
            {"AccessToken": access, "SessionId": "TKN" + "A" * 25},
            "InvalidParameterException",
        ),
        (
            public.revoke_user_session,
            {"AccessToken": access, "SessionId": "abc" + "a" * 25},
            "InvalidParameterException",
        ),
        (
            public.revoke_user_session,
            {"AccessToken": access, "SessionId": "tkn" + "a" * 25, "RevokeAssociatedSessions": "ALL"},
            "InvalidParameterException",
        ),
        (public.revoke_user_session, {"AccessToken": access, "SessionId": 12}, "SerializationException"),
        (
            admin.admin_revoke_user_session,
            {"UserPoolId": pool_id, "Username": "fuzzed"},
            "InvalidParameterException",
        ),
        (
            admin.admin_list_user_sessions,
            {"UserPoolId": pool_id, "Username": "fuzzed", "NextToken": "x" * 200},
            "InvalidParameterException",
        ),
    ]
    for call, params, expected in cases:
        code, _ = error_of(call, **params)
        assert code == expected, (call, params, code)
    # Nothing changed: the configuration and the session are as they were.
    got = idp.get_user_pool_session_configuration(UserPoolId=pool_id)
    assert (got["UserSessionTracking"], got["TokenSession"]) == ("ENABLED", {"MaxPerUser": 20})
    assert public_idp.get_user(AccessToken=access)["Username"] == "fuzzed"
    assert len(sessions_of(public_idp, access)) == 1
