"""Rate limits on unsigned calls, against servers started with low limits from their config file: past the
per-client or per-address bucket an unsigned call is refused with TooManyRequestsException (status 400, as
botocore's model gives it) and counted in ``gatehouse_rate_limited``; signed admin calls are never limited;
buckets refill; X-Forwarded-For is believed only from a trusted proxy."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from tests.support import GatehouseServer

TARGET = "AWSCognitoIdentityProviderService."


def limited_config(per_client: str, per_address: str, trusted: str = "[]") -> str:
    return f"""version: 1
server:
  rate_limits:
    per_client: {per_client}
    per_address: {per_address}
    trusted_proxies: {trusted}
pools: []
"""


@pytest.fixture(scope="module")
def per_client_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("rate-client") / "data"
    server = GatehouseServer(data_dir, config=limited_config("{rate: 1, burst: 5}", "{rate: 0}"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def per_address_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("rate-address") / "data"
    config = limited_config("{rate: 0}", "{rate: 2, burst: 4}", "[127.0.0.1/32]")
    server = GatehouseServer(data_dir, config=config)
    server.start()
    yield server
    server.stop()


def raw_call(
    server: GatehouseServer, operation: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """(status, parsed body) of an unsigned call made with plain HTTP."""
    request = urllib.request.Request(
        server.url + "/",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.1", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def rate_limited_count(server: GatehouseServer, limit: str) -> float:
    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "gatehouse_rate_limited":
            total += sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels["limit"] == limit)
    return total


def make_client(server: GatehouseServer) -> tuple[str, str]:
    idp = server.client()
    pool_id = idp.create_user_pool(PoolName="limits")["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )
    return pool_id, client["UserPoolClient"]["ClientId"]


def test_per_client_bucket_refuses_past_its_burst_and_refills(per_client_server: GatehouseServer) -> None:
    server = per_client_server
    pool_id, client_id = make_client(server)
    _, other_client = make_client(server)
    public = server.client(signed=False)
    answers = []
    for _ in range(8):
        try:
            public.initiate_auth(
                ClientId=client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": "nobody", "PASSWORD": "Whatever-1"},
            )
        except ClientError as error:
            answers.append((error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]))
    # The burst of 5 (less the at most one token refilled meanwhile) is answered, the rest is throttled.
    assert answers[:5] == [("UserNotFoundException", 400)] * 5
    assert ("TooManyRequestsException", 400) in answers[5:]
    assert rate_limited_count(server, "client") >= 1

    # Another client has its own bucket, and signed admin calls are never throttled.
    with pytest.raises(ClientError) as other:
        public.initiate_auth(
            ClientId=other_client, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "x", "PASSWORD": "y"}
        )
    assert other.value.response["Error"]["Code"] == "UserNotFoundException"
    idp = server.client()
    for _ in range(10):
        idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)

    # One token a second: after a pause the client is served again.
    time.sleep(2.2)
    status, body = raw_call(
        server,
        "InitiateAuth",
        {"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": {"USERNAME": "a", "PASSWORD": "b"}},
    )
    assert (status, body["__type"]) == (400, "UserNotFoundException")


def test_throttled_call_changes_nothing(per_client_server: GatehouseServer) -> None:
    server = per_client_server
    pool_id, client_id = make_client(server)
    for _ in range(10):
        raw_call(server, "ResendConfirmationCode", {"ClientId": client_id, "Username": "nobody"})
    status, body = raw_call(server, "SignUp", {"ClientId": client_id, "Username": "late", "Password": "Late-pass-1!"})
    assert (status, body["__type"]) == (400, "TooManyRequestsException")
    assert "Traceback" not in json.dumps(body)
    users = server.client().list_users(UserPoolId=pool_id)["Users"]
    assert users == []


def test_per_address_bucket_and_trusted_forwarded_for(per_address_server: GatehouseServer) -> None:
    server = per_address_server

    # The peer (127.0.0.1) is a trusted proxy: each X-Forwarded-For address has its own bucket.
    def call(forwarded: str | None) -> str:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        _, body = raw_call(server, "GetUser", {"AccessToken": "not-a-token"}, headers)
        return str(body["__type"])

    first = [call("198.51.100.7") for _ in range(6)]
    assert first[:4] == ["NotAuthorizedException"] * 4
    assert "TooManyRequestsException" in first[4:]
    # Another client address behind the proxy is not affected...
    assert call("203.0.113.9") == "NotAuthorizedException"
    # ...and the right-most untrusted entry counts, not one the client prepended to the header.
    spoofed = [call("10.9.9.9, 198.51.100.7") for _ in range(2)]
    assert spoofed == ["TooManyRequestsException"] * 2
    # A proxy that adds a header line of its own rather than appending to the client's: the lines are one list
    # (RFC 9110 section 5.3), so the client's own line does not choose its bucket either.
    assert two_forwarded_lines(server, "203.0.113.77", "198.51.100.7") == "TooManyRequestsException"
    assert rate_limited_count(server, "address") >= 3


def two_forwarded_lines(server: GatehouseServer, client_line: str, proxy_line: str) -> str:
    """The ``__type`` of an unsigned GetUser sent with two X-Forwarded-For header lines, in this order."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        body = json.dumps({"AccessToken": "not-a-token"}).encode()
        connection.putrequest("POST", "/")
        connection.putheader("Content-Type", "application/x-amz-json-1.1")
        connection.putheader("X-Amz-Target", TARGET + "GetUser")
        connection.putheader("X-Forwarded-For", client_line)
        connection.putheader("X-Forwarded-For", proxy_line)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        return str(json.loads(connection.getresponse().read())["__type"])
    finally:
        connection.close()


def test_forwarded_for_ignored_from_untrusted_peer(tmp_path: Path) -> None:
    """Without trusted proxies a client cannot escape its bucket by inventing X-Forwarded-For addresses."""
    server = GatehouseServer(tmp_path / "data", config=limited_config("{rate: 0}", "{rate: 1, burst: 3}"))
    server.start()
    try:
        answers = []
        for n in range(6):
            _, body = raw_call(server, "GetUser", {"AccessToken": "x"}, {"X-Forwarded-For": f"192.0.2.{n}"})
            answers.append(body["__type"])
        assert answers[:3] == ["NotAuthorizedException"] * 3
        assert answers[3:].count("TooManyRequestsException") >= 2
    finally:
        server.stop()


def test_invalid_rate_limit_config_is_refused(tmp_path: Path) -> None:
    from gateway.config_file import ConfigError, load_config

    path = tmp_path / "bad.yaml"
    path.write_text(limited_config("{rate: -1}", "{burst: 0}", "[not-an-ip]"))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    text = str(error.value)
    assert "server.rate_limits.per_client.rate" in text
    assert "server.rate_limits.per_address.burst" in text
    assert "server.rate_limits.trusted_proxies[0]" in text and "CIDR" in text


def test_rate_limits_from_the_config_file(tmp_path: Path) -> None:
    from gateway.config_file import load_config, server_settings
    from gateway.services.ratelimit import RateLimitSettings
    from gateway.settings import Settings

    path = tmp_path / "limits.yaml"
    path.write_text(limited_config("{rate: 5, burst: 50}", "{rate: 0}", "[10.0.0.0/8, '2001:db8::/32']"))
    settings = server_settings(load_config(path), Settings())
    assert settings.rate_limits == RateLimitSettings(
        per_client_rate=5, per_client_burst=50, per_address_rate=0, trusted_proxies=("10.0.0.0/8", "2001:db8::/32")
    )
    # Keys left out keep the defaults.
    path.write_text("version: 1\nserver:\n  rate_limits: {per_address: {burst: 7}}\npools: []\n")
    assert server_settings(load_config(path), Settings()).rate_limits == RateLimitSettings(per_address_burst=7)
