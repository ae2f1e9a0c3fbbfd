"""The lockout, against a running Gatehouse: exact for attempts one after another, whichever flow they use.
Five wrong passwords (or SRP proofs) then the right one is refused, four then the right one signs in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP

from tests.support import GatehouseServer

PASSWORD = "Correct-horse-battery-1"
WRONG = "Wrong-password-1"
INCORRECT = ("NotAuthorizedException", "Incorrect username or password.")
LOCKED = ("NotAuthorizedException", "Password attempts exceeded")
# How long the test holds the database's write lock: well past any answer that does not wait for it.
LOCK_SECONDS = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("timing") / "data"
    gatehouse = GatehouseServer(data_dir)
    gatehouse.start()
    yield gatehouse
    gatehouse.stop()


@pytest.fixture(scope="module")
def pool(server: GatehouseServer) -> tuple[str, str]:
    idp = server.client()
    pool_id = str(idp.create_user_pool(PoolName="timing")["UserPool"]["Id"])
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"],
        PreventUserExistenceErrors="ENABLED",
    )
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def new_user(server: GatehouseServer, pool_id: str, username: str) -> str:
    idp = server.client()
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return username


def password_answer(server: GatehouseServer, client_id: str, username: str, password: str) -> tuple[str, str]:
    """("ok", "") for tokens, else the error's code and message."""
    try:
        server.client(signed=False).initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except ClientError as exc:
        return str(exc.response["Error"]["Code"]), str(exc.response["Error"].get("Message", ""))
    return "ok", ""


def srp_answer(server: GatehouseServer, pool_id: str, client_id: str, username: str, password: str) -> tuple[str, str]:
    public = server.client(signed=False)
    srp = AWSSRP(username=username, password=password, pool_id=pool_id, client_id=client_id, client=public)
    try:
        srp.authenticate_user()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"]), str(exc.response["Error"].get("Message", ""))
    return "ok", ""


@pytest.mark.parametrize("flow", ["password", "srp"])
def test_the_lockout_is_exact_for_attempts_one_after_another(
    server: GatehouseServer, pool: tuple[str, str], flow: str
) -> None:
    """Each failure is written before its answer: the fifth failure in a row locks out at once, the fourth does
    not."""
    pool_id, client_id = pool

    def attempt(username: str, password: str) -> tuple[str, str]:
        if flow == "srp":
            return srp_answer(server, pool_id, client_id, username, password)
        return password_answer(server, client_id, username, password)

    four = new_user(server, pool_id, f"four-{flow}")
    five = new_user(server, pool_id, f"five-{flow}")
    for _ in range(4):
        assert attempt(four, WRONG) == INCORRECT
        assert attempt(five, WRONG) == INCORRECT
    assert attempt(five, WRONG) == INCORRECT
    locked_at = time.monotonic()
    assert attempt(five, PASSWORD) == LOCKED
    assert time.monotonic() - locked_at < 1.0, "the check above must run inside the 1 s lockout"
    assert attempt(four, PASSWORD) == ("ok", "")
