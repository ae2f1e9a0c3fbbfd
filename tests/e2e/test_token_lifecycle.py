"""Token lifecycles under attack: refresh token rotation and its grace period, revocation, global sign-out and
signing key retirement, against one real two-worker server.

The spec is Cognito's developer guide ("Refresh tokens" with rotation, "Ending user sessions with token
revocation", "Signing out"), the API reference of GetTokensFromRefreshToken, RevokeToken, GlobalSignOut and
RefreshTokenRotationType, RFC 7009 and RFC 9700 §4.14 (refresh token protection).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, Browser, make_pool, pkce_pair, query_of
from tests.e2e.oauth_support import make_user as oauth_make_user
from tests.support import GatehouseServer

PASSWORD = "Correct-horse-1"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
# Each worker re-reads a client's settings after this long (gateway/services/pools.py CACHE_SECONDS).
CLIENT_CACHE_SECONDS = 2.0


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """Two workers, so that what one worker revokes or rotates must hold in the other one too; signing keys
    are re-read from the store after a second."""
    server = GatehouseServer(
        tmp_path_factory.mktemp("lifecycle") / "data", workers=2, extra_env={"GATEHOUSE_KEY_CACHE_SECONDS": "1"}
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="lifecycle")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def make_user(idp: Any, pool_id: str) -> Callable[[str], str]:
    def make(username: str) -> str:
        idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
        return username

    return make


def new_client(idp: Any, pool_id: str, name: str, **extra: Any) -> str:
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName=name, ExplicitAuthFlows=FLOWS, **extra)
    return str(client["UserPoolClient"]["ClientId"])


def sign_in(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    response = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return dict(response["AuthenticationResult"])


def refresh_auth(public_idp: Any, client_id: str, refresh_token: str) -> dict[str, Any]:
    response = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
    )
    return dict(response["AuthenticationResult"])


def get_tokens(public_idp: Any, client_id: str, refresh_token: str) -> dict[str, Any]:
    response = public_idp.get_tokens_from_refresh_token(ClientId=client_id, RefreshToken=refresh_token)
    return dict(response["AuthenticationResult"])


def error_of(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call()
    return str(exc.value.response["Error"]["Code"]), int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def claims_of(token: str) -> dict[str, Any]:
    claims = jwt.decode(token, options={"verify_signature": False})
    assert isinstance(claims, dict)
    return claims


def header_of(token: str) -> dict[str, Any]:
    return dict(jwt.get_unverified_header(token))


def live(public_idp: Any, access_token: str, tries: int = 6) -> list[bool]:
    """Whether GetUser accepts the access token, asked several times (new connections: both workers answer)."""
    answers = []
    for _ in range(tries):
        try:
            public_idp.get_user(AccessToken=access_token)
            answers.append(True)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "NotAuthorizedException"
            answers.append(False)
    return answers


# --- rotation ----------------------------------------------------------------------------------------------


def test_a_rotated_out_token_stays_dead_when_the_client_stops_rotating(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    """RefreshTokenRotationType: with no grace period "a successful request immediately invalidates the
    submitted refresh token". Turning rotation off later must not bring the rotated-out token back through
    REFRESH_TOKEN_AUTH or GetTokensFromRefreshToken (RFC 9700 §4.14.2: its reuse is a sign of theft)."""
    rotation = {"Feature": "ENABLED", "RetryGracePeriodSeconds": 0}
    cid = new_client(idp, pool_id, "rotating-then-not", RefreshTokenRotation=rotation)
    username = make_user("rhea")
    first = sign_in(public_idp, cid, username)
    second = get_tokens(public_idp, cid, first["RefreshToken"])
    assert second["RefreshToken"] != first["RefreshToken"]

    idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=cid,
        ExplicitAuthFlows=FLOWS,
        RefreshTokenRotation={"Feature": "DISABLED", "RetryGracePeriodSeconds": 0},
    )
    time.sleep(CLIENT_CACHE_SECONDS + 0.5)

    assert error_of(lambda: refresh_auth(public_idp, cid, first["RefreshToken"])) == ("NotAuthorizedException", 400)
    assert error_of(lambda: get_tokens(public_idp, cid, first["RefreshToken"]))[0] in (
        "NotAuthorizedException",
        "RefreshTokenReuseException",
    )
    # The reuse ended the family, as it does while the client rotates.
    assert error_of(lambda: refresh_auth(public_idp, cid, second["RefreshToken"]))[0] == "NotAuthorizedException"
    assert not any(live(public_idp, second["AccessToken"]))


def test_a_rotated_out_token_within_its_grace_period_after_rotation_is_switched_off_issues_no_refresh_token(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    """Within the grace period a retry with the rotated-out token is honoured (RetryGracePeriodSeconds); once
    the client no longer rotates, that retry must not leak a refresh token, nor end the family."""
    cid = new_client(
        idp, pool_id, "grace-then-off", RefreshTokenRotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 60}
    )
    username = make_user("gwen")
    first = sign_in(public_idp, cid, username)
    second = get_tokens(public_idp, cid, first["RefreshToken"])
    idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=cid,
        ExplicitAuthFlows=FLOWS,
        RefreshTokenRotation={"Feature": "DISABLED", "RetryGracePeriodSeconds": 60},
    )
    time.sleep(CLIENT_CACHE_SECONDS + 0.5)

    retried = refresh_auth(public_idp, cid, first["RefreshToken"])
    assert "RefreshToken" not in retried
    assert claims_of(retried["AccessToken"])["origin_jti"] == claims_of(second["AccessToken"])["origin_jti"]
    assert all(live(public_idp, second["AccessToken"], tries=2))
    assert "RefreshToken" not in refresh_auth(public_idp, cid, second["RefreshToken"])


def test_refresh_token_of_one_client_is_refused_by_another_with_rotation_and_not_consumed(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    rotation = {"Feature": "ENABLED", "RetryGracePeriodSeconds": 0}
    owner = new_client(idp, pool_id, "owner", RefreshTokenRotation=rotation)
    thief = new_client(idp, pool_id, "thief", RefreshTokenRotation=rotation)
    other_pool = str(idp.create_user_pool(PoolName="elsewhere")["UserPool"]["Id"])
    stranger = new_client(idp, other_pool, "stranger", RefreshTokenRotation=rotation)
    tokens = sign_in(public_idp, owner, make_user("olga"))
    for cid in (thief, stranger):
        assert error_of(lambda: get_tokens(public_idp, cid, tokens["RefreshToken"])) == (  # noqa: B023
            "NotAuthorizedException",
            400,
        )
    # The refused attempts neither rotated the token nor ended its family.
    assert get_tokens(public_idp, owner, tokens["RefreshToken"])["RefreshToken"] != tokens["RefreshToken"]


# --- revocation --------------------------------------------------------------------------------------------


def test_revocation_holds_in_every_worker_at_once(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    cid = new_client(idp, pool_id, "revoking", AllowedOAuthFlowsUserPoolClient=False)
    username = make_user("wanda")
    tokens = sign_in(public_idp, cid, username)
    refreshed = refresh_auth(public_idp, cid, tokens["RefreshToken"])
    # Both workers have seen (and cached the signature of) both access tokens.
    assert all(live(public_idp, tokens["AccessToken"])) and all(live(public_idp, refreshed["AccessToken"]))

    public_idp.revoke_token(Token=tokens["RefreshToken"], ClientId=cid)
    for access in (tokens["AccessToken"], refreshed["AccessToken"]):
        assert not any(live(public_idp, access))
        for _ in range(4):
            answer = requests.get(
                f"{gatehouse.url}/{pool_id}/oauth2/userInfo",
                headers={"Authorization": f"Bearer {access}", "Connection": "close"},
                timeout=10,
            )
            assert answer.status_code == 401, answer.text
    assert error_of(lambda: refresh_auth(public_idp, cid, tokens["RefreshToken"]))[0] == "NotAuthorizedException"


def test_revoke_token_refuses_when_revocation_is_off_and_changes_nothing(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    cid = new_client(idp, pool_id, "no-revocation", EnableTokenRevocation=False)
    tokens = sign_in(public_idp, cid, make_user("nils"))
    assert error_of(lambda: public_idp.revoke_token(Token=tokens["RefreshToken"], ClientId=cid)) == (
        "UnsupportedOperationException",
        400,
    )
    assert all(live(public_idp, tokens["AccessToken"], tries=2))
    assert refresh_auth(public_idp, cid, tokens["RefreshToken"])["AccessToken"]


# --- global sign-out ---------------------------------------------------------------------------------------


def test_global_sign_out_ends_earlier_sessions_and_spares_one_started_in_the_same_second(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    cid = new_client(idp, pool_id, "sign-out")
    username = make_user("gina")
    before = sign_in(public_idp, cid, username)
    public_idp.global_sign_out(AccessToken=before["AccessToken"])
    after = sign_in(public_idp, cid, username)  # most likely within the same second as the sign-out

    assert not any(live(public_idp, before["AccessToken"]))
    assert error_of(lambda: refresh_auth(public_idp, cid, before["RefreshToken"]))[0] == "NotAuthorizedException"
    assert all(live(public_idp, after["AccessToken"]))
    refreshed = refresh_auth(public_idp, cid, after["RefreshToken"])
    assert all(live(public_idp, refreshed["AccessToken"], tries=2))

    idp.admin_user_global_sign_out(UserPoolId=pool_id, Username=username)
    assert not any(live(public_idp, after["AccessToken"]))
    assert not any(live(public_idp, refreshed["AccessToken"]))
    assert error_of(lambda: refresh_auth(public_idp, cid, after["RefreshToken"]))[0] == "NotAuthorizedException"


# --- deleted clients and pools -----------------------------------------------------------------------------


def refused_everywhere(public_idp: Any, access_token: str) -> dict[str, tuple[str, str]]:
    """What each access-token-authorised operation answers the token with: (error code, message), or
    ("ok", "") for an operation that accepted it."""
    calls: dict[str, Callable[[], Any]] = {
        "GetUser": lambda: public_idp.get_user(AccessToken=access_token),
        "UpdateUserAttributes": lambda: public_idp.update_user_attributes(
            AccessToken=access_token, UserAttributes=[{"Name": "name", "Value": "Mallory"}]
        ),
        "ChangePassword": lambda: public_idp.change_password(
            AccessToken=access_token, PreviousPassword=PASSWORD, ProposedPassword="Another-horse-2"
        ),
        "ListDevices": lambda: public_idp.list_devices(AccessToken=access_token),
        "GlobalSignOut": lambda: public_idp.global_sign_out(AccessToken=access_token),
        "DeleteUser": lambda: public_idp.delete_user(AccessToken=access_token),
    }
    answers = {}
    for name, call in calls.items():
        try:
            call()
            answers[name] = ("ok", "")
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400, (name, exc.response)
            answers[name] = (str(exc.response["Error"]["Code"]), str(exc.response["Error"]["Message"]))
    return answers


def user_info(gatehouse: GatehouseServer, pool_id: str, access_token: str) -> requests.Response:
    return requests.get(
        f"{gatehouse.url}/{pool_id}/oauth2/userInfo",
        headers={"Authorization": f"Bearer {access_token}", "Connection": "close"},
        timeout=10,
    )


def code_flow_tokens(
    gatehouse: GatehouseServer, pool: Any, client_id: str, username: str, scope: str
) -> dict[str, Any]:
    """Tokens from a hosted UI sign-in through ``client_id`` (the pool's confidential client, or its public
    client with PKCE)."""
    verifier, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    url = browser.authorize_url(client_id, scope=scope, code_challenge=challenge, code_challenge_method="S256")
    back = browser.sign_in(url, username)
    form = {"grant_type": "authorization_code", "code": query_of(back.headers["Location"])["code"]}
    form |= {"client_id": client_id, "redirect_uri": CALLBACK, "code_verifier": verifier}
    auth = (pool.secret_id, pool.secret) if client_id == pool.secret_id else None
    answer = requests.post(f"{pool.issuer}/oauth2/token", data=form, auth=auth, timeout=10)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def test_deleting_a_client_revokes_every_token_it_issued_in_every_worker(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    """Once an app client is deleted nothing it issued works: GetUser and every other access-token-authorised
    operation refuse its access tokens as revoked ones, in both workers at once although both verified (and
    remember) them before, and its refresh tokens are refused with the client. The same user's tokens from
    another client are untouched -- none of the refused calls changed anything."""
    doomed = new_client(idp, pool_id, "doomed")
    kept = new_client(idp, pool_id, "kept")
    username = make_user("delia")
    gone = sign_in(public_idp, doomed, username)
    refreshed = refresh_auth(public_idp, doomed, gone["RefreshToken"])
    other = sign_in(public_idp, kept, username)
    for access in (gone["AccessToken"], refreshed["AccessToken"], other["AccessToken"]):
        assert all(live(public_idp, access))

    idp.delete_user_pool_client(UserPoolId=pool_id, ClientId=doomed)
    revoked = ("NotAuthorizedException", "Access Token has been revoked")
    for access in (gone["AccessToken"], refreshed["AccessToken"]):
        assert not any(live(public_idp, access))
        answers = refused_everywhere(public_idp, access)
        assert answers == dict.fromkeys(answers, revoked)
    assert error_of(lambda: refresh_auth(public_idp, doomed, gone["RefreshToken"])) == (
        "ResourceNotFoundException",
        400,
    )

    assert all(live(public_idp, other["AccessToken"]))
    user = public_idp.get_user(AccessToken=other["AccessToken"])
    assert user["Username"] == username
    assert "Mallory" not in {a["Value"] for a in user["UserAttributes"]}
    assert all(live(public_idp, refresh_auth(public_idp, kept, other["RefreshToken"])["AccessToken"], tries=2))
    assert sign_in(public_idp, kept, username)["AccessToken"]  # the password is the one it was


def test_a_deleted_clients_access_tokens_are_refused_at_user_info(gatehouse: GatehouseServer, idp: Any) -> None:
    """/oauth2/userInfo refuses an access token of a deleted app client as RFC 6750 §3.1 has it (401,
    invalid_token, in the Bearer challenge too), in every worker; the user's token from another client of the
    pool is still answered. The deleted client's refresh token is refused at the token endpoint."""
    pool = make_pool(idp, gatehouse.url, "deleted-oauth-client")
    oauth_make_user(idp, pool.pool_id, "uma")
    gone = code_flow_tokens(gatehouse, pool, pool.secret_id, "uma", "openid email")
    kept = code_flow_tokens(gatehouse, pool, pool.public_id, "uma", "openid email")
    for tokens in (gone, kept):
        for _ in range(4):
            answer = user_info(gatehouse, pool.pool_id, tokens["access_token"])
            assert answer.status_code == 200 and answer.json()["username"] == "uma", answer.text

    idp.delete_user_pool_client(UserPoolId=pool.pool_id, ClientId=pool.secret_id)
    for _ in range(4):
        answer = user_info(gatehouse, pool.pool_id, gone["access_token"])
        assert (answer.status_code, answer.json()["error"]) == (401, "invalid_token"), answer.text
        assert answer.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
        answer = user_info(gatehouse, pool.pool_id, kept["access_token"])
        assert answer.status_code == 200 and answer.json()["email"] == "uma@example.com", answer.text
    form = {"grant_type": "refresh_token", "refresh_token": gone["refresh_token"]}
    answer = requests.post(f"{pool.issuer}/oauth2/token", data=form, auth=(pool.secret_id, pool.secret), timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client"), answer.text


def test_a_deleted_pools_tokens_are_refused_and_never_a_server_error(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    """DeleteUserPool takes the pool's clients, tokens and signing keys with it: its access tokens are no
    longer ours anywhere (NotAuthorizedException on the API, invalid_token at userInfo), in every worker."""
    pool = make_pool(idp, gatehouse.url, "deleted-pool")
    oauth_make_user(idp, pool.pool_id, "pia")
    tokens = code_flow_tokens(gatehouse, pool, pool.secret_id, "pia", "openid aws.cognito.signin.user.admin")
    assert all(live(public_idp, tokens["access_token"]))
    idp.delete_user_pool(UserPoolId=pool.pool_id)
    for _ in range(4):
        code, message = refused_everywhere(public_idp, tokens["access_token"])["GetUser"]
        assert code == "NotAuthorizedException", message
        for path in (f"/{pool.pool_id}/oauth2/userInfo", "/oauth2/userInfo"):
            answer = requests.get(
                gatehouse.url + path,
                headers={"Authorization": f"Bearer {tokens['access_token']}", "Connection": "close"},
                timeout=10,
            )
            assert (answer.status_code, answer.json()["error"]) == (401, "invalid_token"), (path, answer.text)


# --- signing keys ------------------------------------------------------------------------------------------


def _jwks_kids(gatehouse: GatehouseServer, pool_id: str) -> set[str]:
    answer = requests.get(
        f"{gatehouse.url}/{pool_id}/.well-known/jwks.json", headers={"Connection": "close"}, timeout=10
    )
    assert answer.status_code == 200
    return {key["kid"] for key in answer.json()["keys"]}


def test_a_key_retired_longer_than_any_token_lives_is_unpublished_and_refused(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, make_user: Callable[[str], str]
) -> None:
    """A retired key signs nothing new; it is published (and trusted) only while tokens it signed can still
    be unexpired, a day at most (access and ID tokens live at most a day). Past that, a token carrying its
    kid, whatever its exp claims, is not one of ours."""
    pool = str(idp.create_user_pool(PoolName="keys")["UserPool"]["Id"])
    cid = new_client(idp, pool, "keys")
    idp.admin_create_user(UserPoolId=pool, Username="kim", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="kim", Password=PASSWORD, Permanent=True)
    old = sign_in(public_idp, cid, "kim")
    unseen = sign_in(public_idp, cid, "kim")  # presented to no worker before the key is dropped
    old_kids = {header_of(old["AccessToken"])["kid"], header_of(old["IdToken"])["kid"]}
    assert old_kids <= _jwks_kids(gatehouse, pool)

    database = Path(gatehouse.data_dir) / "gatehouse.db"
    rotated = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", "rotate", "--data-dir", str(gatehouse.data_dir), pool],
        capture_output=True,
        text=True,
        env={**os.environ, **gatehouse.extra_env},
        timeout=60,
    )
    assert rotated.returncode == 0, rotated.stderr
    time.sleep(1.5)  # both workers' key caches run out
    assert all(live(public_idp, old["AccessToken"]))  # retired a moment ago: its tokens still count
    assert old_kids <= _jwks_kids(gatehouse, pool)

    # Two days pass for the retired keys (the store's clock, moved back rather than waited for).
    with sqlite3.connect(database) as db:
        moved = db.execute(
            "UPDATE signing_keys SET retired_at = retired_at - 2 * 86400 WHERE pool_id = ? AND active = 0", (pool,)
        ).rowcount
    assert moved == 2
    time.sleep(1.5)
    assert not old_kids & _jwks_kids(gatehouse, pool)
    assert header_of(unseen["AccessToken"])["kid"] in old_kids
    assert not any(live(public_idp, unseen["AccessToken"]))
    new = sign_in(public_idp, cid, "kim")
    assert not {header_of(new["AccessToken"])["kid"], header_of(new["IdToken"])["kid"]} & old_kids
    assert all(live(public_idp, new["AccessToken"]))


# --- lifetimes and token types -----------------------------------------------------------------------------


def test_rotation_does_not_extend_the_refresh_token_lifetime(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    """Developer guide, "Refresh token rotation": "The new refresh token is valid for the remaining duration
    of the original refresh token." A sign-in ends when its first refresh token would have, however often it
    is rotated."""
    rotation = {"Feature": "ENABLED", "RetryGracePeriodSeconds": 0}
    cid = new_client(idp, pool_id, "bounded-rotation", RefreshTokenRotation=rotation)
    first = sign_in(public_idp, cid, make_user("bea"))
    # The sign-in is near its end: its refresh token has three seconds left (the store's clock, moved
    # rather than waited for).
    with sqlite3.connect(Path(gatehouse.data_dir) / "gatehouse.db") as db:
        db.execute(
            "UPDATE refresh_tokens SET expires_at = ? WHERE token_hash = ?",
            (time.time() + 3, hashlib.sha256(first["RefreshToken"].encode()).hexdigest()),
        )
    second = get_tokens(public_idp, cid, first["RefreshToken"])
    third = get_tokens(public_idp, cid, second["RefreshToken"])
    time.sleep(3.5)
    assert error_of(lambda: get_tokens(public_idp, cid, third["RefreshToken"])) == ("NotAuthorizedException", 400)


def test_revoke_token_refuses_an_access_or_id_token_rather_than_pretending(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    """RevokeToken takes "the refresh token that you want to revoke"; an ID or access token is a token type
    it does not revoke (UnsupportedTokenTypeException, RFC 7009 §2.2.1's unsupported_token_type), not an
    unknown token to be answered with success while the session lives on."""
    cid = new_client(idp, pool_id, "wrong-token")
    tokens = sign_in(public_idp, cid, make_user("tara"))
    for token in (tokens["AccessToken"], tokens["IdToken"]):
        assert error_of(lambda: public_idp.revoke_token(Token=token, ClientId=cid)) == (  # noqa: B023
            "UnsupportedTokenTypeException",
            400,
        )
    assert all(live(public_idp, tokens["AccessToken"], tries=2))
    public_idp.revoke_token(Token=tokens["RefreshToken"], ClientId=cid)
    assert not any(live(public_idp, tokens["AccessToken"], tries=2))


def test_without_grace_racing_refreshes_get_one_successor_between_them(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    """RetryGracePeriodSeconds 0: "a successful request immediately invalidates the submitted refresh token".
    Of several requests racing with one token (a thief's and the app's), one wins; the others are reuse, so
    none of them may walk away with the successor (RFC 9700 §4.14.2)."""
    cid = new_client(
        idp, pool_id, "racing-no-grace", RefreshTokenRotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 0}
    )
    first = sign_in(public_idp, cid, make_user("rory"))
    callers = 16
    clients = [gatehouse.client(signed=False) for _ in range(callers)]
    start = threading.Barrier(callers)

    def refresh(client: Any) -> str:
        start.wait(timeout=10)
        try:
            return str(get_tokens(client, cid, first["RefreshToken"])["RefreshToken"])
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    with ThreadPoolExecutor(max_workers=callers) as executor:
        answers = list(executor.map(refresh, clients))
    successors = [a for a in answers if a not in ("RefreshTokenReuseException", "NotAuthorizedException")]
    assert len(successors) == 1, answers


def test_an_authorization_code_from_before_a_global_sign_out_is_refused(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    """AdminUserGlobalSignOut "revokes all of the target user's refresh, ID, and access tokens", as the hosted
    UI's session is ended with it here: a code handed out before it (an attacker's, still in flight) must not
    start a new session after it (RFC 6749 §10.5: a code is a one-time credential of that sign-in)."""
    pool = make_pool(idp, gatehouse.url, "codes-and-sign-out")
    oauth_make_user(idp, pool.pool_id, "cody")
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id, scope="openid"), "cody")
    code = query_of(back.headers["Location"])["code"]
    time.sleep(1.1)  # the sign-out falls in a later second than the code
    idp.admin_user_global_sign_out(UserPoolId=pool.pool_id, Username="cody")

    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    answer = requests.post(f"{pool.issuer}/oauth2/token", data=form, auth=(pool.secret_id, pool.secret), timeout=10)
    assert (answer.status_code, answer.json().get("error")) == (400, "invalid_grant"), answer.text

    # A sign-in after the sign-out gets a code that works.
    fresh = Browser(gatehouse.url)
    back = fresh.sign_in(fresh.authorize_url(pool.secret_id, scope="openid"), "cody")
    form["code"] = query_of(back.headers["Location"])["code"]
    answer = requests.post(f"{pool.issuer}/oauth2/token", data=form, auth=(pool.secret_id, pool.secret), timeout=10)
    assert answer.status_code == 200, answer.text


def test_an_authorization_code_from_before_a_password_reset_is_refused(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    """AdminResetUserPassword ends the user's sessions here (its token families are revoked, and a sign-in
    answers PasswordResetRequiredException until the password is changed): a code handed out before it is
    no way around that."""
    pool = make_pool(idp, gatehouse.url, "codes-and-reset")
    oauth_make_user(idp, pool.pool_id, "rene")
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id, scope="openid"), "rene")
    code = query_of(back.headers["Location"])["code"]
    idp.admin_reset_user_password(UserPoolId=pool.pool_id, Username="rene")
    assert idp.admin_get_user(UserPoolId=pool.pool_id, Username="rene")["UserStatus"] == "RESET_REQUIRED"

    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    answer = requests.post(f"{pool.issuer}/oauth2/token", data=form, auth=(pool.secret_id, pool.secret), timeout=10)
    assert (answer.status_code, answer.json().get("error")) == (400, "invalid_grant"), answer.text


def test_a_refresh_through_the_api_keeps_the_scopes_of_the_hosted_sign_in(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    """A refresh token keeps the scopes it was granted with (RFC 6749 §6: never wider). One from a hosted UI
    sign-in that did not ask for aws.cognito.signin.user.admin must not yield an access token with it when
    refreshed through GetTokensFromRefreshToken or REFRESH_TOKEN_AUTH, which would open the user API
    (GetUser, UpdateUserAttributes, ChangePassword, ...) to an app the user never granted it."""
    pool = make_pool(idp, gatehouse.url, "scopes-through-the-api")
    oauth_make_user(idp, pool.pool_id, "sami")
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id, scope="openid email"), "sami")
    form = {"grant_type": "authorization_code", "code": query_of(back.headers["Location"])["code"]}
    form["redirect_uri"] = CALLBACK
    answer = requests.post(f"{pool.issuer}/oauth2/token", data=form, auth=(pool.secret_id, pool.secret), timeout=10)
    assert answer.status_code == 200, answer.text
    granted = answer.json()
    assert claims_of(granted["access_token"])["scope"] == "openid email"
    assert error_of(lambda: public_idp.get_user(AccessToken=granted["access_token"]))[0] == "NotAuthorizedException"

    refreshed = public_idp.get_tokens_from_refresh_token(
        ClientId=pool.secret_id, ClientSecret=pool.secret, RefreshToken=granted["refresh_token"]
    )["AuthenticationResult"]
    assert claims_of(refreshed["AccessToken"])["scope"] == "openid email"
    assert error_of(lambda: public_idp.get_user(AccessToken=refreshed["AccessToken"]))[0] == "NotAuthorizedException"
    # The same through REFRESH_TOKEN_AUTH, with a token of the public client (PKCE; it does not rotate).
    verifier, challenge = pkce_pair()
    spa = Browser(gatehouse.url)
    url = spa.authorize_url(pool.public_id, scope="openid", code_challenge=challenge, code_challenge_method="S256")
    back = spa.sign_in(url, "sami")
    form = {
        "grant_type": "authorization_code",
        "client_id": pool.public_id,
        "code": query_of(back.headers["Location"])["code"],
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    answer = requests.post(f"{pool.issuer}/oauth2/token", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    again = refresh_auth(public_idp, pool.public_id, answer.json()["refresh_token"])
    assert claims_of(again["AccessToken"])["scope"] == "openid"
    assert error_of(lambda: public_idp.get_user(AccessToken=again["AccessToken"]))[0] == "NotAuthorizedException"


def test_a_refresh_token_validity_of_zero_is_the_default_of_thirty_days(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    """CreateUserPoolClient: "You can't set RefreshTokenValidity to 0. If you do, Amazon Cognito overrides the
    value with the default value of 30 days." (botocore's model allows 0.)"""
    cid = new_client(idp, pool_id, "zero-refresh", RefreshTokenValidity=0, TokenValidityUnits={"RefreshToken": "hours"})
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=cid)["UserPoolClient"]
    assert (described["RefreshTokenValidity"], described["TokenValidityUnits"]["RefreshToken"]) == (30, "days")
    idp.update_user_pool_client(UserPoolId=pool_id, ClientId=cid, ExplicitAuthFlows=FLOWS, RefreshTokenValidity=0)
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=cid)["UserPoolClient"]
    assert (described["RefreshTokenValidity"], described["TokenValidityUnits"]["RefreshToken"]) == (30, "days")
    tokens = sign_in(public_idp, cid, make_user("zoe"))
    assert refresh_auth(public_idp, cid, tokens["RefreshToken"])["AccessToken"]


def test_a_users_changes_hold_in_every_worker_that_kept_the_session(
    idp: Any, public_idp: Any, pool_id: str, make_user: Callable[[str], str]
) -> None:
    """Each worker keeps a session's token family, user and groups once it has served them; a change made through
    either worker holds in both from the next call."""
    cid = new_client(idp, pool_id, "kept-sessions", AllowedOAuthFlowsUserPoolClient=False)
    username = make_user("kepler")
    access = sign_in(public_idp, cid, username)["AccessToken"]

    def given_names() -> set[str]:
        seen = set()
        for _ in range(6):  # new connections: both workers answer
            for attribute in public_idp.get_user(AccessToken=access)["UserAttributes"]:
                if attribute["Name"] == "given_name":
                    seen.add(attribute["Value"])
        return seen

    def groups() -> set[tuple[str, ...]]:
        listed = (idp.admin_list_groups_for_user(UserPoolId=pool_id, Username=username) for _ in range(6))
        return {tuple(g["GroupName"] for g in answer["Groups"]) for answer in listed}

    name = [{"Name": "given_name", "Value": "Before"}]
    idp.admin_update_user_attributes(UserPoolId=pool_id, Username=username, UserAttributes=name)
    assert given_names() == {"Before"} and groups() == {()}  # both workers keep them now
    name = [{"Name": "given_name", "Value": "After"}]
    idp.admin_update_user_attributes(UserPoolId=pool_id, Username=username, UserAttributes=name)
    assert given_names() == {"After"}
    idp.create_group(GroupName="kept", UserPoolId=pool_id, Precedence=1)
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName="kept")
    assert groups() == {("kept",)}
    idp.delete_group(GroupName="kept", UserPoolId=pool_id)
    assert groups() == {()}
    idp.admin_disable_user(UserPoolId=pool_id, Username=username)
    assert not any(live(public_idp, access))
