"""Two Gatehouse servers on two data dirs sharing one PostgreSQL database, as two machines behind a load balancer
share it (one public URL, one secret key, the database's URL in ``GATEHOUSE_DATABASE_URL``): what one server
writes the other serves at once, single use holds across them, and a change one server's caches would keep for a
couple of seconds reaches the other at once (the change stamps' NOTIFY)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.services.pools import CACHE_SECONDS
from tests.postgres_server import PostgresServer, postgres_binaries
from tests.support import GatehouseServer

pytest.importorskip("asyncpg", reason="the postgres extra (asyncpg) is not installed")
pytestmark = pytest.mark.skipif(
    postgres_binaries() is None, reason="PostgreSQL is not installed (scripts/test.sh installs Debian's postgresql)"
)

PUBLIC_URL = "http://gatehouse.test"
PASSWORD = "Shared-db-pass-1"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="module")
def shared_env(postgres: PostgresServer) -> dict[str, str | None]:
    database = postgres.create_database("gatehouse")
    return {"GATEHOUSE_DATABASE_URL": database, "GATEHOUSE_SECRET_KEY": secrets.token_hex(32)}


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, shared_env: dict[str, str | None]
) -> Iterator[tuple[GatehouseServer, GatehouseServer]]:
    started: list[GatehouseServer] = []
    try:
        for name in ("a", "b"):
            server = GatehouseServer(
                tmp_path_factory.mktemp(f"node-{name}") / "data",
                extra_env=shared_env,
                extra_args=["--public-url", PUBLIC_URL],
            )
            server.start()
            started.append(server)
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def make_pool(idp: Any, name: str) -> tuple[str, str]:
    pool = idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="alice", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="alice", Password=PASSWORD, Permanent=True)
    return pool, client


def sign_in(idp: Any, client: str) -> dict[str, Any]:
    answer = idp.initiate_auth(
        ClientId=client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD}
    )
    return dict(answer["AuthenticationResult"])


def refused_by_b_before_its_cache_expires(attempt: Callable[[], Any], cached_at: float) -> ClientError:
    """The refusal of ``attempt`` on the other server once the change notice has reached it: asked again while
    the notice travels (a few milliseconds, more on a loaded machine), but only until shortly before that server's
    cached copy, read after ``cached_at``, would expire (CACHE_SECONDS): until then nothing but the notice makes
    it read the changed record again."""
    while True:
        try:
            attempt()
        except ClientError as refused:
            return refused
        assert time.monotonic() < cached_at + CACHE_SECONDS - 0.2, "the other server never heard of the change"
        time.sleep(0.02)


def test_what_one_server_writes_the_other_serves(servers: tuple[GatehouseServer, GatehouseServer]) -> None:
    a, b = servers
    pool, client = make_pool(a.client(), "shared")
    tokens = sign_in(b.client(signed=False), client)
    # A token one server signed is verified by the other (one issuer, the keys in the database).
    user = a.client(signed=False).get_user(AccessToken=tokens["AccessToken"])
    assert user["Username"] == "alice"
    refreshed = a.client(signed=False).initiate_auth(
        ClientId=client, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]}
    )["AuthenticationResult"]
    assert b.client(signed=False).get_user(AccessToken=refreshed["AccessToken"])["Username"] == "alice"
    assert {p["Id"] for p in b.client().list_user_pools(MaxResults=60)["UserPools"]} >= {pool}
    # Signing out on one server ends the tokens everywhere.
    b.client(signed=False).global_sign_out(AccessToken=refreshed["AccessToken"])
    with pytest.raises(ClientError) as refused:
        a.client(signed=False).get_user(AccessToken=refreshed["AccessToken"])
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"


def test_a_narrowed_client_is_narrowed_on_the_other_server_at_once(
    servers: tuple[GatehouseServer, GatehouseServer],
) -> None:
    a, b = servers
    pool, client = make_pool(a.client(), "narrowed-client")
    cached_at = time.monotonic()
    sign_in(b.client(signed=False), client)  # b has the client in its cache now
    a.client().update_user_pool_client(
        UserPoolId=pool, ClientId=client, ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )
    refused = refused_by_b_before_its_cache_expires(lambda: sign_in(b.client(signed=False), client), cached_at)
    assert refused.response["Error"]["Code"] == "InvalidParameterException"
    # A deleted client: refused by the store itself, whatever a cache holds.
    a.client().delete_user_pool_client(UserPoolId=pool, ClientId=client)
    with pytest.raises(ClientError) as gone:
        sign_in(b.client(signed=False), client)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_the_servers_carry_on_after_the_database_restarts(
    servers: tuple[GatehouseServer, GatehouseServer], postgres: PostgresServer
) -> None:
    """Every connection cut (a restart, a fail-over): the servers connect again, and hear of changes again."""
    a, b = servers
    pool, client = make_pool(a.client(), "restarted")
    sign_in(b.client(signed=False), client)
    postgres.restart()
    # The pools' connections are made again as they are needed; the first requests may meet a dead one.
    deadline = time.monotonic() + 20
    while True:
        try:
            tokens = sign_in(b.client(signed=False), client)
            a.client(signed=False).get_user(AccessToken=tokens["AccessToken"])
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # b listens again (it retries 0.5 s after the loss, then 1, 2, 4 ... s later while the database is still
    # down, and says so once it is back): a change made on a reaches it at once, while b holds the client in
    # its cache.
    deadline = time.monotonic() + 30
    while "store.change_listener_restored" not in b.log_text():
        assert time.monotonic() < deadline, b.log_text()[-2000:]
        time.sleep(0.1)
    cached_at = time.monotonic()
    sign_in(b.client(signed=False), client)
    a.client().update_user_pool_client(UserPoolId=pool, ClientId=client, ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"])
    refused = refused_by_b_before_its_cache_expires(lambda: sign_in(b.client(signed=False), client), cached_at)
    assert refused.response["Error"]["Code"] == "InvalidParameterException"


def test_a_refresh_token_rotates_once_across_servers(servers: tuple[GatehouseServer, GatehouseServer]) -> None:
    a, b = servers
    idp = a.client()
    pool = idp.create_user_pool(PoolName="rotation")["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool,
        ClientName="rotating",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        RefreshTokenRotation={"Feature": "ENABLED", "RetryGracePeriodSeconds": 0},
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool, Username="alice", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool, Username="alice", Password=PASSWORD, Permanent=True)
    tokens = sign_in(b.client(signed=False), client)
    first = a.client(signed=False).get_tokens_from_refresh_token(RefreshToken=tokens["RefreshToken"], ClientId=client)
    assert first["AuthenticationResult"]["RefreshToken"] != tokens["RefreshToken"]
    with pytest.raises(ClientError) as replayed:
        b.client(signed=False).get_tokens_from_refresh_token(RefreshToken=tokens["RefreshToken"], ClientId=client)
    assert replayed.value.response["Error"]["Code"] == "RefreshTokenReuseException"


def test_keys_rotated_with_the_command_are_retired_on_every_server_at_once(
    tmp_path: Path, servers: tuple[GatehouseServer, GatehouseServer], shared_env: dict[str, str | None]
) -> None:
    """``gatehouse keys rotate --now --retire-old`` run on a third machine (its own data dir, the same database and
    key): the servers refuse the retired key's tokens at once, though each had verified one and cached its key."""
    import os

    a, b = servers
    pool, client = make_pool(a.client(), "rotated-keys")
    tokens = sign_in(a.client(signed=False), client)
    for server in servers:
        server.client(signed=False).get_user(AccessToken=tokens["AccessToken"])
    env = {**os.environ, **{k: v for k, v in shared_env.items() if v is not None}}
    rotated = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", "rotate", "--data-dir", str(tmp_path / "data"), "--now",
         "--retire-old", pool],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    for server in servers:
        with pytest.raises(ClientError) as refused:
            server.client(signed=False).get_user(AccessToken=tokens["AccessToken"])
        assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    # New sign-ins are signed with the new keys, verified by both.
    fresh = sign_in(b.client(signed=False), client)
    assert a.client(signed=False).get_user(AccessToken=fresh["AccessToken"])["Username"] == "alice"


def test_a_server_without_the_secret_key_is_refused(
    tmp_path: Path, servers: tuple[GatehouseServer, GatehouseServer], shared_env: dict[str, str | None]
) -> None:
    """The database holds secrets sealed with the shared key: a server given none would make a key of its own
    that opens none of them."""
    env = {**shared_env, "GATEHOUSE_SECRET_KEY": None}
    server = GatehouseServer(tmp_path / "data", extra_env=env)
    with pytest.raises(RuntimeError) as failed:
        server.start()
    server.stop()
    assert "holds secrets sealed with that key" in str(failed.value)
    assert "postgresql://" not in str(failed.value)  # the URL (which may hold a password) is never printed


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root:secret@db/gatehouse", "expected a PostgreSQL URL"),
        # The driver could not read these: a traceback, before any connection was tried.
        ("postgresql://root:secret@db:fivefour/gatehouse", "expected a port number from 1 to 65535 after each host"),
        ("postgresql://root:secret@db:99999/gatehouse", "expected a port number from 1 to 65535 after each host"),
        ("postgresql://root:secret@db1:5432,db2:x/gatehouse", "expected a port number from 1 to 65535 after each host"),
        ("postgresql://root:secret@[::1/gatehouse", "expected an IPv6 address in brackets ([::1]:5432) after the @"),
    ],
)
def test_a_url_that_is_not_postgresql_is_a_clear_error(tmp_path: Path, url: str, expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--data-dir", str(tmp_path / "data")],
        env={"PATH": "/usr/bin:/bin", "GATEHOUSE_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"gatehouse serve: GATEHOUSE_DATABASE_URL: {expected}")
    assert len(done.stderr.splitlines()) == 1 and "secret" not in done.stderr, done.stderr
    assert not (tmp_path / "data").exists()


def test_a_database_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    from tests.support import free_port

    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--data-dir", str(tmp_path / "data")],
        env={"PATH": "/usr/bin:/bin", "GATEHOUSE_DATABASE_URL": f"postgresql://gh:pw-secret@127.0.0.1:{free_port()}/x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("gatehouse serve: cannot open the PostgreSQL database (the database URL): ")
    assert "pw-secret" not in done.stderr and "Traceback" not in done.stderr
