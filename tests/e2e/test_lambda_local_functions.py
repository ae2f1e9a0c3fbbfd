"""Trigger functions run in Gatehouse's own process: the config file's ``server.lambda.functions`` maps function
ARNs to Python handlers (tests/e2e/trigger_handlers.py), called as the Lambda Python runtime calls them, with the
same events and the same answers to their failures as functions reached through the Lambda API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError

from gateway.cli import EXIT_GRACE_SECONDS
from gateway.config_file import ConfigError, apply_config, load_config
from gateway.services.container import Services
from tests.e2e.oauth_support import PASSWORD
from tests.support import GatehouseServer
from tests.test_config_file import _services

ARN = "arn:aws:lambda:us-east-1:000000000000:function:{}"
FILE_POOL = "us-east-1_Triggers01"


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    config = f"""version: 1
server:
  lambda:
    functions:
      "{ARN.format("pre-token")}": tests.e2e.trigger_handlers:pre_token
      "{ARN.format("pre-auth")}:live": tests.e2e.trigger_handlers:pre_authentication
      "{ARN.format("odd")}": tests.e2e.trigger_handlers:unmarshallable
      "{ARN.format("sleepy")}": tests.e2e.trigger_handlers:sleepy
      "{ARN.format("exits")}": tests.e2e.trigger_handlers:exits
      "{ARN.format("cancels")}": tests.e2e.trigger_handlers:cancels
      "{ARN.format("never")}": tests.e2e.trigger_handlers:never_answers
      "{ARN.format("deep")}": tests.e2e.trigger_handlers:too_deep
pools:
  - id: {FILE_POOL}
    name: from-the-file
    cognito:
      LambdaConfig:
        PreTokenGeneration: "{ARN.format("pre-token")}"
    clients:
      - id: app
        name: app
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
    users:
      - {{username: alice, password: "{PASSWORD}"}}
"""
    server = GatehouseServer(tmp_path_factory.mktemp("gatehouse") / "data", config=config)
    server.start()
    yield server
    server.stop()


def _signed_in_pool(idp: Any, name: str, lambda_config: dict[str, Any]) -> tuple[str, str]:
    pool_id: str = idp.create_user_pool(PoolName=name, LambdaConfig=lambda_config)["UserPool"]["Id"]
    client_id: str = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    for username in ("alice", "blocked"):
        idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return pool_id, client_id


def _sign_in(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    answer = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    result: dict[str, Any] = answer["AuthenticationResult"]
    return result


def test_handlers_customise_and_refuse(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = _signed_in_pool(
        idp,
        "local",
        # A qualified ARN in the pool finds the handler named unqualified, and the other way round.
        {"PreTokenGeneration": ARN.format("pre-token") + ":1", "PreAuthentication": ARN.format("pre-auth")},
    )
    tokens = _sign_in(public_idp, client_id, "alice")
    keys = jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")
    token = tokens["IdToken"]
    claims = jwt.decode(token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], audience=client_id)
    assert claims["handled_by"] == "pre-token" and claims["time_left"] == "True"
    assert claims["source"] == "TokenGeneration_Authentication"

    with pytest.raises(ClientError) as refused:
        _sign_in(public_idp, client_id, "blocked")
    assert refused.value.response["Error"] == {
        "Code": "UserLambdaValidationException",
        "Message": "PreAuthentication failed with error Blocked by the local handler.",
    }


def test_a_pool_of_the_config_file_names_its_functions(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    """The file's pools set LambdaConfig through their ``cognito:`` members, as CreateUserPool takes it."""
    config = idp.describe_user_pool(UserPoolId=FILE_POOL)["UserPool"]["LambdaConfig"]
    assert config["PreTokenGenerationConfig"] == {"LambdaVersion": "V1_0", "LambdaArn": ARN.format("pre-token")}
    token = _sign_in(public_idp, "app", "alice")["IdToken"]
    assert jwt.decode(token, options={"verify_signature": False})["handled_by"] == "pre-token"


def test_what_a_handler_cannot_answer(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    _, odd_client = _signed_in_pool(idp, "localodd", {"PostAuthentication": ARN.format("odd")})
    with pytest.raises(ClientError) as odd:
        _sign_in(public_idp, odd_client, "alice")
    assert odd.value.response["Error"]["Code"] == "UserLambdaValidationException"
    assert odd.value.response["Error"]["Message"].startswith("PostAuthentication failed with error Unable to marshal")

    _, exiting_client = _signed_in_pool(idp, "localexits", {"PostAuthentication": ARN.format("exits")})
    with pytest.raises(ClientError) as exited:
        _sign_in(public_idp, exiting_client, "alice")
    assert exited.value.response["Error"] == {
        "Code": "UserLambdaValidationException",
        "Message": "PostAuthentication failed with error handler gave up.",
    }
    for name, message in (
        ("cancels", "PostAuthentication failed with error handler cancelled itself."),
        ("deep", "PostAuthentication failed with error Unable to marshal response: "),
    ):
        _, client = _signed_in_pool(idp, f"local{name}", {"PostAuthentication": ARN.format(name)})
        with pytest.raises(ClientError) as failed:
            _sign_in(public_idp, client, "alice")
        assert failed.value.response["Error"]["Code"] == "UserLambdaValidationException"
        assert failed.value.response["Error"]["Message"].startswith(message)
    _, never_client = _signed_in_pool(idp, "localnever", {"PostAuthentication": ARN.format("never")})
    started = time.monotonic()
    with pytest.raises(ClientError) as never:
        _sign_in(public_idp, never_client, "alice")
    assert never.value.response["Error"]["Code"] == "UnexpectedLambdaException"
    assert time.monotonic() - started < 5.9
    _, after_client = _signed_in_pool(idp, "after", {})  # the server is still there
    assert _sign_in(public_idp, after_client, "alice")["IdToken"]

    _, slow_client = _signed_in_pool(idp, "localslow", {"PostAuthentication": ARN.format("sleepy")})
    started = time.monotonic()
    with pytest.raises(ClientError) as slow:
        _sign_in(public_idp, slow_client, "alice")
    assert slow.value.response["Error"] == {
        "Code": "UnexpectedLambdaException",
        "Message": "PostAuthentication invocation failed due to error Socket timeout while invoking Lambda function.",
    }
    assert time.monotonic() - started < 5.9

    # A function the file does not name goes to the Lambda API, which this server reaches at AWS's address:
    # with no credentials or no network, the function cannot be invoked, and the caller is told so.
    _, other_client = _signed_in_pool(
        idp, "localother", {"PostAuthentication": "arn:aws:lambda:us-east-1:000000000000:function:elsewhere"}
    )
    with pytest.raises(ClientError) as unreachable:
        _sign_in(public_idp, other_client, "alice")
    assert unreachable.value.response["Error"]["Code"] == "UnexpectedLambdaException"


@pytest.mark.parametrize("handler", ["blocks_for_ever", "never_answers"])
def test_a_handler_that_never_ends_does_not_hold_a_stop(tmp_path: Path, handler: str) -> None:
    """A thread still running a handler is joined at exit, and a coroutine that swallows its cancellation is awaited
    by aiohttp's run_app: either would keep a stopped server's process alive for ever. Once the server has closed,
    the process ends within EXIT_GRACE_SECONDS all the same, with exit status 1 and an error event saying so."""
    config = f"""version: 1
server:
  lambda:
    functions:
      "{ARN.format("stuck")}": tests.e2e.trigger_handlers:{handler}
pools: []
"""
    server = GatehouseServer(tmp_path / "data", config=config)
    server.start()
    try:
        _, client_id = _signed_in_pool(server.client(), "stuck", {"PostAuthentication": ARN.format("stuck")})
        with pytest.raises(ClientError) as stuck:
            _sign_in(server.client(signed=False), client_id, "alice")
        assert stuck.value.response["Error"]["Code"] == "UnexpectedLambdaException"
        assert server.process is not None
        started = time.monotonic()
        server.process.terminate()
        assert server.process.wait(timeout=EXIT_GRACE_SECONDS + 5) == 1
        assert time.monotonic() - started < EXIT_GRACE_SECONDS + 3
    finally:
        server.stop()
    forced = [json.loads(line) for line in server.log_text().splitlines() if "gateway.stop_forced" in line]
    assert len(forced) == 1, server.log_text()[-3000:]
    assert forced[0]["level"] == "error"
    # The thread that holds it is named: the handler's (a coroutine runs on the main thread, which is not listed).
    assert any(name.startswith("lambda-local") for name in forced[0]["threads"]) == (handler == "blocks_for_ever")


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    built = await _services(tmp_path)
    yield built
    await built.messenger.close()
    await built.store.close()


def test_config_check_imports_the_handlers(tmp_path: Path) -> None:
    """``gatehouse config check`` finds a handler that cannot be imported, as a start would."""
    path = tmp_path / "handlers.yaml"
    path.write_text(
        f"""version: 1
server:
  lambda:
    functions:
      "{ARN.format("a")}": tests.e2e.trigger_handlers:pre_token
      "{ARN.format("b")}": tests.e2e.no_such_module:handler
pools: []
"""
    )
    checked = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", str(path)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 1
    assert f"server.lambda.functions.{ARN.format('b')}: could not load the handler" in checked.stderr, checked.stderr
    assert ARN.format("a") not in checked.stderr


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def handler(event, context:\n    return event\n", "SyntaxError"),
        ("import os\nTABLE = os.environ['TRIGGER_TABLE']\nhandler = print\n", "KeyError"),
        ("raise SystemExit(3)\n", "SystemExit"),
    ],
    ids=["syntax-error", "raises-at-import", "exits-at-import"],
)
def test_a_handler_module_that_fails_as_it_is_imported_is_one_line(tmp_path: Path, source: str, reason: str) -> None:
    """A handler's module that does not import (a typo, a setting it reads at import that is not there) was a
    traceback at start and in ``config check`` -- or, for one that calls sys.exit(), a server that exited as it
    said -- where a missing module was one line naming the function."""
    (tmp_path / "site_triggers.py").write_text(source)
    path = tmp_path / "handlers.yaml"
    path.write_text(
        f"""version: 1
server:
  lambda:
    functions:
      "{ARN.format("site")}": site_triggers:handler
pools: []
"""
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", ".")])}
    env.pop("TRIGGER_TABLE", None)
    expected = f"{path}: server.lambda.functions.{ARN.format('site')}: could not load the handler site_triggers:handler"
    for command in (["config", "check", str(path)], ["serve", "--config", str(path), "--data-dir", str(tmp_path / "d"),
                                                      "--port", "0"]):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", *command], capture_output=True, text=True, timeout=60, env=env
        )
        assert done.returncode == 1, done.stderr
        plain = [line for line in done.stderr.splitlines() if not line.startswith("{")]  # serve also logs it
        assert len(plain) == 1 and plain[0].startswith(expected) and reason in plain[0], done.stderr
        assert "Traceback" not in done.stderr


async def test_a_handler_that_cannot_be_loaded_is_a_config_problem(tmp_path: Path, services: Services) -> None:
    path = tmp_path / "lambda.yaml"
    path.write_text(
        f"""version: 1
server:
  lambda:
    functions:
      "{ARN.format("a")}": tests.e2e.trigger_handlers:NOT_CALLABLE
      "{ARN.format("b")}": tests.e2e.no_such_module:handler
pools: []
"""
    )
    with pytest.raises(ConfigError) as caught:
        await apply_config(services, load_config(path, environ={}))
    text = str(caught.value)
    assert "server.lambda.functions" in text and "is not a callable" in text and "cannot import" in text
