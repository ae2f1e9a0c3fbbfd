"""The audit log: JSON lines on stderr with the request id bound for the request, stdlib lines included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.oauth_support import PASSWORD
from tests.support import GatehouseServer

SCRIPT = """
import logging, pathlib, structlog
from gateway.logging import configure_logging, get_logger
configure_logging(json=True, level="info")
log = get_logger("gateway.test")
log.debug("hidden")
structlog.contextvars.bind_contextvars(request_id="req-1")
log.info("sign_in.step", pool="us-east-1_X", path=pathlib.Path("/tmp/x"))
structlog.contextvars.unbind_contextvars("request_id")
from gateway.logging import bind_call, unbind_call
bound = bind_call("req-2", "GetUser")
log.info("api.error", error="X")
unbind_call(bound)
logging.getLogger("aiohttp.access").warning("GET %s", "/health")
try:
    raise ValueError("boom")
except ValueError:
    log.exception("api.unhandled")
"""


def run_script() -> list[dict[str, object]]:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30, check=True)
    return [json.loads(line) for line in done.stderr.splitlines() if line.strip()]


def test_events_are_json_lines_with_request_context() -> None:
    events = run_script()
    names = [e["event"] for e in events]
    assert names == ["sign_in.step", "api.error", "GET /health", "api.unhandled"]  # debug is filtered at info
    step = events[0]
    assert step["request_id"] == "req-1" and step["pool"] == "us-east-1_X" and step["level"] == "info"
    assert step["path"] == "/tmp/x"  # values JSON cannot carry are written as text
    assert str(step["timestamp"]).endswith("Z")
    call = events[1]  # the API call bound by a wire
    assert (call["request_id"], call["operation"], call["error"]) == ("req-2", "GetUser", "X")
    assert "request_id" not in events[2] and "operation" not in events[2]  # unbound again
    assert events[2]["logger"] == "aiohttp.access"
    assert "ValueError: boom" in str(events[3]["exception"])


LOOP_SCRIPT = """
import asyncio, os
from gateway.logging import configure_logging, get_logger
configure_logging(json=True, level="info")
log = get_logger("gateway.test")

def marker(name):
    os.write(2, ('{"event": "%s"}\\n' % name).encode())  # straight to the file descriptor, unbuffered

async def main():
    log.info("first")
    log.info("second")
    marker("before-next-iteration")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    marker("after-next-iteration")
    log.info("last")  # still buffered when the loop ends: flushed on the way out

asyncio.run(main())
log.info("outside-the-loop")
marker("end")
"""


def test_events_in_the_loop_are_flushed_together_at_the_next_iteration() -> None:
    done = subprocess.run([sys.executable, "-c", LOOP_SCRIPT], capture_output=True, text=True, timeout=30, check=True)
    names = [json.loads(line)["event"] for line in done.stderr.splitlines() if line.strip()]
    # Events logged in one iteration wait in the buffer (the marker, written past it, comes first), are all
    # out one iteration later, and nothing is lost when the loop ends; outside a loop each is flushed at once.
    assert names == [
        "before-next-iteration",
        "first",
        "second",
        "after-next-iteration",
        "last",
        "outside-the-loop",
        "end",
    ]


FLOOR_SCRIPT = """
import logging
from gateway.logging import configure_logging, get_logger
configure_logging(json=True, level="debug")
get_logger("gateway.test").debug("own.debug")
logging.getLogger("gateway.loop_watch").debug("own.stdlib.debug")
logging.getLogger("aiosqlite").debug("executing INSERT ... ('$argon2id$v=19$...',)")
logging.getLogger("aiosqlite").info("library.info")
logging.getLogger("saml2.response").info("Subject NameID: ann@corp.example")
logging.getLogger("saml2.response").error("Failed to verify signature on '<ns0:Assertion ...>'")
logging.getLogger("saml2.response").critical("saml2.critical")
"""


def test_debug_level_is_gatehouse_s_own_libraries_keep_to_info() -> None:
    # aiosqlite's debug records carry every statement's parameters; pysaml2 logs whole assertions and subjects.
    done = subprocess.run([sys.executable, "-c", FLOOR_SCRIPT], capture_output=True, text=True, timeout=30, check=True)
    names = [json.loads(line)["event"] for line in done.stderr.splitlines() if line.strip()]
    assert names == ["own.debug", "own.stdlib.debug", "library.info", "saml2.critical"]


NAMES_SCRIPT = """
import logging, structlog
from gateway.logging import bind_call, configure_logging, get_logger
configure_logging(json={json}, level="info")
structlog.get_logger("gateway.first").info("one")
get_logger("gateway.second").info("two")
structlog.get_logger("gateway.first").info("three", logger="caller-chosen")  # a key the caller set wins
bound = bind_call("req-9", "")  # an HTTP request: an id, no operation
structlog.get_logger().info("four")
logging.getLogger("gateway.loop_watch").warning("five")
"""


def test_every_event_names_its_logger_and_http_requests_no_operation() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NAMES_SCRIPT.format(json=True)], capture_output=True, text=True, timeout=30, check=True
    )
    events = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert [(e["event"], e.get("logger")) for e in events] == [
        ("one", "gateway.first"),
        ("two", "gateway.second"),
        ("three", "caller-chosen"),
        ("four", None),  # a logger asked for without a name has none to give
        ("five", "gateway.loop_watch"),
    ]
    assert [e.get("request_id") for e in events] == [None, None, None, "req-9", "req-9"]
    assert all("operation" not in e for e in events)


def test_console_lines_name_their_logger_too() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NAMES_SCRIPT.format(json=False)], capture_output=True, text=True, timeout=30, check=True
    )
    lines = done.stderr.splitlines()
    assert len(lines) == 5
    assert "gateway.first" in lines[0] and "gateway.second" in lines[1] and "gateway.loop_watch" in lines[4]


def test_every_route_but_the_aws_wires_binds_a_request_id(tmp_path: Path) -> None:
    # A route added without with_request_id would log events no support engineer could tie to a request.
    from gateway.app import create_app
    from gateway.logging import binds_request_id
    from gateway.settings import Settings

    app = create_app(Settings(data_dir=tmp_path))
    routes = [(r.method, r.resource.canonical if r.resource else "", r.handler) for r in app.router.routes()]
    assert len(routes) > 40
    unbound = [(method, path) for method, path, handler in routes if not binds_request_id(handler)]
    assert unbound == [("POST", "/"), ("GET", "/")]  # the AWS wires (the query wire also by GET)


def test_a_python_warning_in_a_running_server_is_one_json_line(tmp_path: Path) -> None:
    """A warning (``warnings.warn``) raised while serving, here by an in-process trigger function, went to stderr
    as Python prints it: two lines of plain text among the JSON ones, which a log shipper parsing JSON drops or
    chokes on. It is logged as an event of the ``py.warnings`` logger, one JSON line like any other."""
    arn = "arn:aws:lambda:us-east-1:000000000000:function:warns"
    config = f"""version: 1
server:
  lambda:
    functions:
      "{arn}": tests.e2e.trigger_handlers:warns
pools:
  - id: us-east-1_Warnings01
    name: warnings
    cognito:
      LambdaConfig:
        PreTokenGeneration: "{arn}"
    clients:
      - id: app
        name: app
        explicit_auth_flows: [ALLOW_USER_PASSWORD_AUTH, ALLOW_REFRESH_TOKEN_AUTH]
    users:
      - {{username: alice, password: "{PASSWORD}"}}
"""
    server = GatehouseServer(tmp_path / "data", config=config)
    server.start()
    try:
        idp = server.client()
        client_id = idp.list_user_pool_clients(UserPoolId="us-east-1_Warnings01")["UserPoolClients"][0]["ClientId"]
        answer = server.client(signed=False).initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD},
        )
        assert "IdToken" in answer["AuthenticationResult"]
    finally:
        server.stop()
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line one JSON object
    warned = [e for e in events if e.get("logger") == "py.warnings"]
    assert len(warned) == 1 and "this trigger's library is out of date" in warned[0]["event"], lines
    assert warned[0]["level"] == "warning"
