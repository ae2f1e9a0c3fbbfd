"""Races between concurrent requests, against a real ``gatehouse serve --workers 2`` on one SQLite store.

Each test fires many requests at once (``asyncio.gather`` over aiohttp, a fresh connection each, so both worker
processes take part) and checks an invariant that a sequential client could never break:

* one-time codes (ConfirmSignUp, ConfirmForgotPassword, VerifyUserAttribute) allow MAX_CODE_ATTEMPTS wrong
  guesses: a right code racing a burst of wrong ones must not be accepted once the wrong ones used the limit up.
* a username and another user's preferred_username alias are one sign-in name: written at once (a new user
  named N, another user's preferred_username set to N), exactly one of the two calls succeeds.
* the lockout after five failed sign-ins holds for guesses sent at once: a burst of wrong passwords and the
  right one is judged as if one after another, so past the fifth failure every guess, the right one included,
  gets "Password attempts exceeded" (the right one does not sign in, nor stand out).
* many changes to one user at once (a user's own UpdateUserAttributes, SetUserMFAPreference, ChangePassword)
  all go through, none lost, and never answer ConcurrentModificationException, which these operations'
  models do not have.
* a device's remembered status set while the device signs in (DEVICE_PASSWORD_VERIFIER answers in flight) is
  kept: a device its user stopped remembering must not be remembered again by a sign-in's own write.
* a user deleted (or a user pool deleted) while other requests about it are in flight: those answer a modelled
  error (UserNotFoundException, ResourceNotFoundException, ...), never a 500, and the deletion holds.
* one authorization code redeemed at once through both processes yields one set of tokens.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, Browser, make_user, query_of
from tests.e2e.oauth_support import make_pool as make_oauth_pool
from tests.e2e.test_devices import confirm, device_srp, send_srp_a
from tests.support import GatehouseServer, MailServer, code_in

PASSWORD = "Races-Pass-1"
IDP = "AWSCognitoIdentityProviderService"
MAX_CODE_ATTEMPTS = 5  # gateway/services/users.py
ROUNDS = 4
BURST = 30


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("races") / "data"
    # The per-user code send limit is not what these tests are about: set high enough for their rounds.
    config = f"""version: 1
server:
  smtp: {{host: 127.0.0.1, port: {mail.port}}}
  code_send_limits: {{max_codes: 100, window_seconds: 60}}
pools: []
"""
    # Production hashing cost: a burst of password guesses is in flight together only while each takes its tens
    # of milliseconds, as real sign-ins do (at the tests' cheap cost the first answers would be back before the
    # last guesses were read).
    server = GatehouseServer(data_dir, config=config, workers=2, production_argon2=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(idp: Any) -> tuple[str, str]:
    pool_id = idp.create_user_pool(
        PoolName="races", AutoVerifiedAttributes=["email"], AliasAttributes=["email", "preferred_username"]
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return pool_id, client_id


async def _call(session: aiohttp.ClientSession, url: str, operation: str, params: dict[str, Any]) -> tuple[int, str]:
    """One unsigned JSON call: its status and ``__type`` ("ok" for a success)."""
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{IDP}.{operation}"}
    async with session.post(url + "/", data=json.dumps(params), headers=headers) as response:
        body = await response.json(content_type=None)
        return response.status, str(body.get("__type", "ok"))


def _burst(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, str]]:
    """All ``calls`` at once, each on its own connection (so the kernel spreads them over the workers)."""

    async def run() -> list[tuple[int, str]]:
        connector = aiohttp.TCPConnector(limit=len(calls), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            return list(await asyncio.gather(*(_call(session, url, op, params) for op, params in calls)))

    return asyncio.run(run())


def _other_codes(code: str, count: int) -> list[str]:
    return [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, count + 1)]


def _race_right_code_against_wrong_ones(
    url: str, operation: str, params: dict[str, Any], field: str, code: str
) -> tuple[list[tuple[int, str]], tuple[int, str]]:
    """MAX_CODE_ATTEMPTS - 1 wrong guesses one by one, then BURST wrong ones and the right one at once."""
    wrong = _other_codes(code, BURST)
    for guess in wrong[: MAX_CODE_ATTEMPTS - 1]:
        assert _burst(url, [(operation, {**params, field: guess})]) == [(400, "CodeMismatchException")]
    answers = _burst(
        url, [(operation, {**params, field: guess}) for guess in wrong] + [(operation, {**params, field: code})]
    )
    return answers[:-1], answers[-1]


def _check_one_more_guess_only(wrong: list[tuple[int, str]], right: tuple[int, str]) -> bool:
    """With one attempt left, either the right code came first (and no wrong guess was counted before it:
    none hit the limit) or a wrong one did and the right code is refused. True when the right code won."""
    for status, kind in wrong:
        assert status == 400 and kind in ("CodeMismatchException", "ExpiredCodeException", "LimitExceededException")
    limited = sum(kind == "LimitExceededException" for _, kind in wrong)
    if right == (200, "ok"):
        assert limited == 0, f"accepted after {limited} racing wrong guesses reached the attempt limit"
        return True
    assert right == (400, "LimitExceededException")
    assert limited >= 1
    return False


def test_confirm_sign_up_code_guesses_racing_the_right_one_stay_limited(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    for round_ in range(ROUNDS):
        username = f"signup-{round_}"
        address = f"{username}@example.com"
        status, _ = _burst(
            gatehouse.url,
            [
                (
                    "SignUp",
                    {
                        "ClientId": client_id,
                        "Username": username,
                        "Password": PASSWORD,
                        "UserAttributes": [{"Name": "email", "Value": address}],
                    },
                )
            ],
        )[0]
        assert status == 200
        code = code_in(mail.wait_for(address))
        params = {"ClientId": client_id, "Username": username}
        wrong, right = _race_right_code_against_wrong_ones(
            gatehouse.url, "ConfirmSignUp", params, "ConfirmationCode", code
        )
        confirmed = _check_one_more_guess_only(wrong, right)
        user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
        assert user["UserStatus"] == ("CONFIRMED" if confirmed else "UNCONFIRMED")


def test_confirm_forgot_password_guesses_racing_the_right_one_stay_limited(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    new_password = "Races-New-2"
    for round_ in range(ROUNDS):
        username = f"forgot-{round_}"
        address = f"{username}@example.com"
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": address}, {"Name": "email_verified", "Value": "true"}],
        )
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
        assert _burst(gatehouse.url, [("ForgotPassword", {"ClientId": client_id, "Username": username})])[0][0] == 200
        code = code_in(mail.wait_for(address))
        params = {"ClientId": client_id, "Username": username, "Password": new_password}
        wrong, right = _race_right_code_against_wrong_ones(
            gatehouse.url, "ConfirmForgotPassword", params, "ConfirmationCode", code
        )
        reset = _check_one_more_guess_only(wrong, right)
        sign_in = {
            "ClientId": client_id,
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": username, "PASSWORD": new_password if reset else PASSWORD},
        }
        assert _burst(gatehouse.url, [("InitiateAuth", sign_in)]) == [(200, "ok")]


def test_verify_user_attribute_guesses_racing_the_right_one_stay_limited(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    for round_ in range(ROUNDS):
        username = f"verify-{round_}"
        address = f"{username}@example.com"
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": address}],
        )
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
        token = gatehouse.client(signed=False).initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]["AccessToken"]
        asked = _burst(
            gatehouse.url, [("GetUserAttributeVerificationCode", {"AccessToken": token, "AttributeName": "email"})]
        )
        assert asked == [(200, "ok")]
        code = code_in(mail.wait_for(address))
        params = {"AccessToken": token, "AttributeName": "email"}
        wrong, right = _race_right_code_against_wrong_ones(gatehouse.url, "VerifyUserAttribute", params, "Code", code)
        verified = _check_one_more_guess_only(wrong, right)
        attributes = idp.admin_get_user(UserPoolId=pool_id, Username=username)["UserAttributes"]
        flag = {a["Name"]: a["Value"] for a in attributes}.get("email_verified", "false")
        assert flag == ("true" if verified else "false")


def _at_once(*calls: Callable[[], object]) -> list[str]:
    """Run ``calls`` in threads released together; each one's outcome, "ok" or the error code."""
    barrier = threading.Barrier(len(calls))
    outcomes = [""] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
            outcomes[index] = "ok"
        except ClientError as error:
            outcomes[index] = str(error.response["Error"]["Code"])

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _sign_in_name_holders(idp: Any, pool_id: str, name: str) -> list[str]:
    """The users who have ``name`` as their username or as their preferred_username."""
    holders = []
    for user in idp.list_users(UserPoolId=pool_id)["Users"]:
        attributes = {a["Name"]: a["Value"] for a in user["Attributes"]}
        if name in (user["Username"], attributes.get("preferred_username")):
            holders.append(user["Username"])
    return holders


def test_a_new_username_and_a_nickname_set_at_once_do_not_both_win(
    gatehouse: GatehouseServer, idp: Any, pool: tuple[str, str]
) -> None:
    pool_id, _ = pool
    idp.admin_create_user(UserPoolId=pool_id, Username="nick-holder", MessageAction="SUPPRESS")
    clients = [gatehouse.client(), gatehouse.client()]
    for round_ in range(8):
        name = f"nickname-{round_}"
        outcomes = _at_once(
            partial(
                clients[0].admin_update_user_attributes,
                UserPoolId=pool_id,
                Username="nick-holder",
                UserAttributes=[{"Name": "preferred_username", "Value": name}],
            ),
            partial(clients[1].admin_create_user, UserPoolId=pool_id, Username=name, MessageAction="SUPPRESS"),
        )
        assert sorted(outcomes) in (["AliasExistsException", "ok"], ["UsernameExistsException", "ok"]), outcomes
        assert len(_sign_in_name_holders(idp, pool_id, name)) == 1


def test_two_new_users_one_named_as_the_other_nicknamed_do_not_both_win(
    gatehouse: GatehouseServer, idp: Any, pool: tuple[str, str]
) -> None:
    pool_id, _ = pool
    clients = [gatehouse.client(), gatehouse.client()]
    for round_ in range(8):
        name = f"twin-{round_}"
        outcomes = _at_once(
            partial(
                clients[0].admin_create_user,
                UserPoolId=pool_id,
                Username=f"other-{round_}",
                MessageAction="SUPPRESS",
                UserAttributes=[{"Name": "preferred_username", "Value": name}],
            ),
            partial(clients[1].admin_create_user, UserPoolId=pool_id, Username=name, MessageAction="SUPPRESS"),
        )
        assert sorted(outcomes) in (["AliasExistsException", "ok"], ["UsernameExistsException", "ok"]), outcomes
        assert len(_sign_in_name_holders(idp, pool_id, name)) == 1


LOCKED = "Password attempts exceeded"
INCORRECT = "Incorrect username or password."


async def _sign_in_answer(session: aiohttp.ClientSession, url: str, params: dict[str, Any]) -> tuple[int, str]:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{IDP}.InitiateAuth"}
    async with session.post(url + "/", data=json.dumps(params), headers=headers) as response:
        body = await response.json(content_type=None)
        return response.status, str(body.get("message") if "__type" in body else "ok")


def test_a_burst_of_password_guesses_is_held_by_the_lockout(
    gatehouse: GatehouseServer, idp: Any, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    for round_ in range(3):
        username = f"guessed-{round_}"
        idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
        guesses = [f"Wrong-guess-{i}-Aa" for i in range(BURST)] + [PASSWORD]

        async def run(username: str = username, guesses: list[str] = guesses) -> list[tuple[int, str]]:
            connector = aiohttp.TCPConnector(limit=len(guesses), force_close=True)
            async with aiohttp.ClientSession(connector=connector) as session:
                calls = [
                    _sign_in_answer(
                        session,
                        gatehouse.url,
                        {
                            "ClientId": client_id,
                            "AuthFlow": "USER_PASSWORD_AUTH",
                            "AuthParameters": {"USERNAME": username, "PASSWORD": guess},
                        },
                    )
                    for guess in guesses
                ]
                return list(await asyncio.gather(*calls))

        answers = asyncio.run(run())
        wrong, right = answers[:-1], answers[-1]
        assert {status for status, _ in answers} == {400}
        assert {message for _, message in wrong} <= {INCORRECT, LOCKED}
        judged = sum(message == INCORRECT for _, message in wrong)
        # Five failures lock out for 1 s, each further one (once the lockout is over) for twice as long: a burst
        # that takes a few seconds has a handful of guesses judged, not all of them.
        assert 5 <= judged <= 9, judged
        assert right == (400, LOCKED)


MAX_CHANGE_PASSWORD_FAILURES = 5  # gateway/services/users.py
# Standard attributes a user may write (OIDC standard claims): one each, so that every write must survive.
STANDARD = [
    "given_name", "family_name", "middle_name", "nickname", "profile", "picture", "website", "gender",
    "birthdate", "zoneinfo", "locale", "address", "name",
]  # fmt: skip


def _access_token(gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, username: str) -> str:
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    token = gatehouse.client(signed=False).initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["AccessToken"]
    assert isinstance(token, str)
    return token


def test_many_changes_to_one_user_at_once_all_go_through(
    gatehouse: GatehouseServer, idp: Any, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    token = _access_token(gatehouse, idp, pool_id, client_id, "busy")
    values = {name: f"{name}-value" for name in STANDARD}
    values["birthdate"] = "1990-01-02"
    values["gender"] = "other"
    calls: list[tuple[str, dict[str, Any]]] = [
        ("UpdateUserAttributes", {"AccessToken": token, "UserAttributes": [{"Name": name, "Value": value}]})
        for name, value in values.items()
    ] * 2
    calls += [("SetUserMFAPreference", {"AccessToken": token, "EmailMfaSettings": {"Enabled": False}})] * 10
    answers = _burst(gatehouse.url, calls)
    assert answers == [(200, "ok")] * len(calls)
    stored = idp.admin_get_user(UserPoolId=pool_id, Username="busy")["UserAttributes"]
    assert {a["Name"]: a["Value"] for a in stored if a["Name"] in values} == values


def test_a_burst_of_change_password_guesses_is_limited_not_refused_otherwise(
    gatehouse: GatehouseServer, idp: Any, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    token = _access_token(gatehouse, idp, pool_id, client_id, "changer")
    calls = [
        (
            "ChangePassword",
            {"AccessToken": token, "PreviousPassword": f"Wrong-guess-{i}-Aa", "ProposedPassword": "Races-New-Pass-3"},
        )
        for i in range(BURST)
    ]
    answers = _burst(gatehouse.url, calls)
    assert sorted(answers) == sorted(
        [(400, "NotAuthorizedException")] * MAX_CHANGE_PASSWORD_FAILURES
        + [(400, "LimitExceededException")] * (BURST - MAX_CHANGE_PASSWORD_FAILURES)
    )


DEVICE_PROOFS = 12


def _device_status(idp: Any, pool_id: str, username: str, device_key: str) -> str:
    device = idp.admin_get_device(UserPoolId=pool_id, Username=username, DeviceKey=device_key)["Device"]
    return str({a["Name"]: a["Value"] for a in device["DeviceAttributes"]}["dev:device_remembered_status"])


def test_a_device_status_set_during_device_sign_ins_is_kept(gatehouse: GatehouseServer, idp: Any) -> None:
    pool_id = idp.create_user_pool(
        PoolName="races-devices",
        DeviceConfiguration={"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": True},
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="roamer", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="roamer", Password=PASSWORD, Permanent=True)
    public = gatehouse.client(signed=False)
    first = public.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "roamer", "PASSWORD": PASSWORD}
    )
    device, _ = confirm(public, first)
    for round_ in range(8):
        before, target = ("remembered", "not_remembered") if round_ % 2 == 0 else ("not_remembered", "remembered")
        idp.admin_update_device_status(
            UserPoolId=pool_id, Username="roamer", DeviceKey=device.key, DeviceRememberedStatus=before
        )
        # Device sign-ins brought up to their last step: the proof, ready to send.
        proofs = []
        for _ in range(DEVICE_PROOFS):
            client = gatehouse.client(signed=False)
            step = client.initiate_auth(
                ClientId=client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": "roamer", "PASSWORD": PASSWORD, "DEVICE_KEY": device.key},
            )
            assert step["ChallengeName"] == "DEVICE_SRP_AUTH"
            srp = device_srp(client, pool_id, client_id, "roamer", device)
            challenge = send_srp_a(client, client_id, step["Session"], "roamer", device, srp)
            proofs.append(
                partial(
                    client.respond_to_auth_challenge,
                    ClientId=client_id,
                    ChallengeName="DEVICE_PASSWORD_VERIFIER",
                    Session=challenge["Session"],
                    ChallengeResponses=srp.process_device_challenge(challenge["ChallengeParameters"]),
                )
            )
        admin = gatehouse.client()
        change = partial(
            admin.admin_update_device_status,
            UserPoolId=pool_id,
            Username="roamer",
            DeviceKey=device.key,
            DeviceRememberedStatus=target,
        )
        outcomes = _at_once(*proofs[: DEVICE_PROOFS // 2], change, *proofs[DEVICE_PROOFS // 2 :])
        assert outcomes == ["ok"] * (DEVICE_PROOFS + 1)
        assert _device_status(idp, pool_id, "roamer", device.key) == target, f"round {round_}"


def _mixed_burst(
    url: str, calls: list[tuple[str, dict[str, Any]]], admin_calls: list[Callable[[], object]], at: int
) -> tuple[list[tuple[int, str]], list[str]]:
    """Unsigned ``calls`` and signed ``admin_calls`` (boto3, in threads) all at once; the admin calls are
    started among the others from position ``at``."""

    def admin(call: Callable[[], object]) -> str:
        try:
            call()
        except ClientError as error:
            return f"{error.response['ResponseMetadata']['HTTPStatusCode']} {error.response['Error']['Code']}"
        return "ok"

    async def run() -> tuple[list[tuple[int, str]], list[str]]:
        loop = asyncio.get_running_loop()
        connector = aiohttp.TCPConnector(limit=len(calls), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            wire = [asyncio.ensure_future(_call(session, url, op, params)) for op, params in calls[:at]]
            signed = [loop.run_in_executor(None, admin, call) for call in admin_calls]
            wire += [asyncio.ensure_future(_call(session, url, op, params)) for op, params in calls[at:]]
            return list(await asyncio.gather(*wire)), list(await asyncio.gather(*signed))

    return asyncio.run(run())


def test_requests_about_a_user_being_deleted_get_modelled_errors(
    gatehouse: GatehouseServer, idp: Any, pool: tuple[str, str]
) -> None:
    pool_id, client_id = pool
    for round_ in range(4):
        username = f"doomed-{round_}"
        token = _access_token(gatehouse, idp, pool_id, client_id, username)
        calls: list[tuple[str, dict[str, Any]]] = []
        for i in range(4):
            for password in ("Wrong-guess-Aa1", PASSWORD):
                calls.append(
                    (
                        "InitiateAuth",
                        {
                            "ClientId": client_id,
                            "AuthFlow": "USER_PASSWORD_AUTH",
                            "AuthParameters": {"USERNAME": username, "PASSWORD": password},
                        },
                    )
                )
            calls.append(
                ("UpdateUserAttributes", {"AccessToken": token, "UserAttributes": [{"Name": "name", "Value": f"{i}"}]})
            )
            calls.append(
                (
                    "ChangePassword",
                    {"AccessToken": token, "PreviousPassword": "Wrong-guess-Aa1", "ProposedPassword": "Races-New-3a"},
                )
            )
            calls.append(("SetUserMFAPreference", {"AccessToken": token, "EmailMfaSettings": {"Enabled": False}}))
        admin = [gatehouse.client() for _ in range(5)]
        admin_calls: list[Callable[[], object]] = [
            partial(admin[0].admin_delete_user, UserPoolId=pool_id, Username=username),
            partial(admin[1].admin_disable_user, UserPoolId=pool_id, Username=username),
            partial(admin[2].admin_user_global_sign_out, UserPoolId=pool_id, Username=username),
            partial(
                admin[3].admin_update_user_attributes,
                UserPoolId=pool_id,
                Username=username,
                UserAttributes=[{"Name": "name", "Value": "admin"}],
            ),
            partial(admin[4].admin_reset_user_password, UserPoolId=pool_id, Username=username),
        ]
        answers, admin_answers = _mixed_burst(gatehouse.url, calls, admin_calls, at=4 + round_ * 3)
        assert admin_answers[0] == "ok"
        assert {a for a in admin_answers[1:4] if a != "ok"} <= {"400 UserNotFoundException"}, admin_answers
        # AdminResetUserPassword of a user the racing AdminDisableUser disabled first: "User is disabled."
        assert admin_answers[4] in ("ok", "400 UserNotFoundException", "400 NotAuthorizedException"), admin_answers
        for status, kind in answers:
            assert status < 500, answers
            assert kind in (
                "ok",
                "NotAuthorizedException",
                "UserNotFoundException",
                "LimitExceededException",
                "PasswordResetRequiredException",
            ), answers
        with pytest.raises(ClientError) as gone:
            idp.admin_get_user(UserPoolId=pool_id, Username=username)
        assert gone.value.response["Error"]["Code"] == "UserNotFoundException"


def _racing_a_deletion(
    url: str, calls: list[tuple[str, dict[str, Any]]], delete: Callable[[], object], delay: float
) -> list[tuple[int, str]]:
    """Start all ``calls``, then after ``delay`` (so that it lands while they are at different steps) run
    ``delete``; the calls' answers."""

    async def run() -> list[tuple[int, str]]:
        connector = aiohttp.TCPConnector(limit=len(calls), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            wire = [asyncio.ensure_future(_call(session, url, op, params)) for op, params in calls]
            await asyncio.sleep(delay)
            await asyncio.get_running_loop().run_in_executor(None, delete)
            return list(await asyncio.gather(*wire))

    return asyncio.run(run())


def test_requests_racing_the_deletion_of_their_pool_get_modelled_errors(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer
) -> None:
    for round_ in range(5):
        pool_id = idp.create_user_pool(PoolName=f"races-doomed-{round_}", AutoVerifiedAttributes=["email"])["UserPool"][
            "Id"
        ]
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"]
        )["UserPoolClient"]["ClientId"]
        for i in range(4):
            idp.admin_create_user(
                UserPoolId=pool_id,
                Username=f"member-{i}",
                MessageAction="SUPPRESS",
                UserAttributes=[
                    {"Name": "email", "Value": f"member-{round_}-{i}@example.com"},
                    {"Name": "email_verified", "Value": "true"},
                ],
            )
            idp.admin_set_user_password(UserPoolId=pool_id, Username=f"member-{i}", Password=PASSWORD, Permanent=True)
        calls: list[tuple[str, dict[str, Any]]] = [
            ("SignUp", {"ClientId": client_id, "Username": f"late-{i}", "Password": PASSWORD}) for i in range(6)
        ]
        for i in range(12):  # right and wrong passwords: tokens issued, failures counted
            parameters = {"USERNAME": f"member-{i % 4}", "PASSWORD": PASSWORD if i % 2 else "Wrong-guess-Aa1"}
            calls.append(
                (
                    "InitiateAuth",
                    {"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": parameters},
                )
            )
        calls += [("ForgotPassword", {"ClientId": client_id, "Username": f"member-{i}"}) for i in range(4)]
        calls += [
            (
                "InitiateAuth",
                {
                    "ClientId": client_id,
                    "AuthFlow": "USER_SRP_AUTH",
                    "AuthParameters": {"USERNAME": f"member-{i}", "SRP_A": "ab" * 192},
                },
            )
            for i in range(4)
        ]
        admin = gatehouse.client()
        answers = _racing_a_deletion(
            gatehouse.url, calls, partial(admin.delete_user_pool, UserPoolId=pool_id), 0.02 * round_
        )
        for status, kind in answers:
            assert status < 500, answers
            assert kind in (
                "ok",
                "NotAuthorizedException",
                "UserNotFoundException",
                "ResourceNotFoundException",
            ), answers
        with pytest.raises(ClientError) as gone:
            idp.describe_user_pool(UserPoolId=pool_id)
        assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_one_authorization_code_redeemed_through_both_processes_gives_one_set_of_tokens(
    gatehouse: GatehouseServer, idp: Any
) -> None:
    oauth = make_oauth_pool(idp, gatehouse.url, "races-oauth")
    make_user(idp, oauth.pool_id, "alice")
    credentials = base64.b64encode(f"{oauth.secret_id}:{oauth.secret}".encode()).decode()
    for _ in range(3):
        browser = Browser(gatehouse.url)
        back = browser.sign_in(browser.authorize_url(oauth.secret_id), "alice")
        assert back.status_code == 303, back.text
        code = query_of(back.headers["Location"])["code"]

        async def redeem(session: aiohttp.ClientSession, code: str = code) -> tuple[int, str]:
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
            headers = {"Authorization": f"Basic {credentials}"}
            async with session.post(f"{gatehouse.url}/oauth2/token", data=form, headers=headers) as response:
                body = await response.json(content_type=None)
                return response.status, str(body.get("error", "ok"))

        async def run(redeem: Callable[[aiohttp.ClientSession], Any] = redeem) -> list[tuple[int, str]]:
            connector = aiohttp.TCPConnector(limit=BURST, force_close=True)
            async with aiohttp.ClientSession(connector=connector) as session:
                return list(await asyncio.gather(*(redeem(session) for _ in range(BURST))))

        answers = asyncio.run(run())
        assert sorted(answers) == [(200, "ok")] + [(400, "invalid_grant")] * (BURST - 1)
