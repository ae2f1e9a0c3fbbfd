"""What the rate limiter keeps in memory, against running servers: the keys of its buckets are the caller's to
choose, so they are bounded in size as the buckets are in number. A ``ClientId`` that no app client can have
(botocore's ClientIdType: 1 to 128 of ``[\\w+]``) is never kept, however long or however many; an
``X-Forwarded-For`` entry with an IPv6 zone (any length) is no address; and a call refused by its address's
bucket takes nothing from its client's."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.e2e.oauth_support import CALLBACK, make_pool
from tests.e2e.test_rate_limits import raw_call
from tests.support import GatehouseServer

TARGET = "AWSCognitoIdentityProviderService."
# Each long ClientId is this many bytes, and this many of them are sent: 80 MiB a server would keep.
LONG_CLIENT_ID_BYTES = 256 * 1024
LONG_CLIENT_IDS = 320


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """A server with the default limits (per address: burst 1000), one process, so that its RSS is the
    limiter's."""
    server = GatehouseServer(tmp_path_factory.mktemp("limits") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """Buckets of one or two tokens that do not refill within a test; the peer is a trusted proxy, so each
    X-Forwarded-For address has its own bucket."""
    data_dir: Path = tmp_path_factory.mktemp("limits-tight") / "data"
    config = """version: 1
server:
  rate_limits:
    per_client: {rate: 0.001, burst: 2}
    per_address: {rate: 0.001, burst: 1}
    trusted_proxies: [127.0.0.1/32]
pools: []
"""
    server = GatehouseServer(data_dir, config=config)
    server.start()
    yield server
    server.stop()


def rss_kib(server: GatehouseServer) -> int:
    assert server.process is not None
    with open(f"/proc/{server.process.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def sign_in_body(client_id: str) -> dict[str, Any]:
    parameters = {"USERNAME": "x", "PASSWORD": "y"}
    return {"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": parameters}


def test_long_client_ids_are_not_kept(default_server: GatehouseServer) -> None:
    server = default_server
    pad = "A" * LONG_CLIENT_ID_BYTES
    headers = {"X-Amz-Target": TARGET + "InitiateAuth", "Content-Type": "application/x-amz-json-1.1"}
    answers: dict[tuple[int, str], int] = {}
    with requests.Session() as session:

        def send(count: int, first: int) -> None:
            for i in range(first, first + count):
                body = json.dumps(sign_in_body(f"{i}-{pad}"))
                response = session.post(server.url + "/", data=body, headers=headers, timeout=10)
                key = (response.status_code, str(response.json().get("__type")))
                answers[key] = answers.get(key, 0) + 1

        send(20, 0)  # the buffers a long body needs, allocated once
        time.sleep(0.5)
        before = rss_kib(server)
        send(LONG_CLIENT_IDS, 20)
        time.sleep(0.5)
        after = rss_kib(server)
    # Each is refused by its validation, none by a rate limit (the default burst is 1000 per address).
    assert answers == {(400, "InvalidParameterException"): 20 + LONG_CLIENT_IDS}, answers
    kept_mib = (after - before) / 1024
    # Kept, they would be 80 MiB; not kept, the process grows by what its allocator holds on to at most.
    assert kept_mib < 20, f"RSS grew by {kept_mib:.0f} MiB over {LONG_CLIENT_IDS} long ClientIds"


def test_a_call_refused_by_its_address_takes_nothing_from_its_client(tight_server: GatehouseServer) -> None:
    server = tight_server
    client_id = "a1b2c3d4e5f6g7h8i9j0k1l2m3"  # a ClientIdType no app client has
    first = {"X-Forwarded-For": "198.51.100.1"}
    assert raw_call(server, "InitiateAuth", sign_in_body(client_id), first)[1]["__type"] == (
        "ResourceNotFoundException"
    )
    # The address's one token is gone: refused there, before the client's bucket is looked at.
    status, body = raw_call(server, "InitiateAuth", sign_in_body(client_id), first)
    assert (status, body["__type"], body["message"]) == (
        400,
        "TooManyRequestsException",
        "Rate exceeded for this source address.",
    )
    # So the client still has the second of its two tokens, for a call from another address.
    other = {"X-Forwarded-For": "198.51.100.2"}
    assert raw_call(server, "InitiateAuth", sign_in_body(client_id), other)[1]["__type"] == (
        "ResourceNotFoundException"
    )


def test_a_forwarded_address_with_a_zone_is_not_an_address(tight_server: GatehouseServer) -> None:
    """``fe80::1%<zone>`` parses as an IPv6 address with a zone of any length: believed, every such entry
    would be a bucket of its own (a key of up to a header's length) and a way around the address limit."""
    server = tight_server
    answers = []
    for i in range(4):
        zone = f"{i}" + "z" * 4000
        forwarded = {"X-Forwarded-For": f"fe80::1%{zone}"}
        status, body = raw_call(server, "GetUser", {"AccessToken": "not-a-token"}, forwarded)
        answers.append((status, body["__type"]))
    # The peer's own address counts instead (one token): the first is judged, the others refused.
    assert answers[0] == (400, "NotAuthorizedException")
    assert answers[1:] == [(400, "TooManyRequestsException")] * 3


def test_authorization_requests_are_kept_within_the_limits(tight_server: GatehouseServer) -> None:
    """Each /oauth2/authorize that shows the sign-in page keeps its request in the store for an hour: within the
    address's and the client's buckets, as the unsigned API and the hosted forms are, else anyone could fill the
    store with requests no one signs in to. Past them the client is told temporarily_unavailable (RFC 6749
    §4.1.2.1), and nothing is kept."""
    admin = tight_server.client()
    pool = make_pool(admin, tight_server.url, "authorize-limits")

    def authorize(address: str, client_id: str) -> requests.Response:
        query = {"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, "state": "s-1"}
        if client_id == pool.public_id:
            query |= {"code_challenge": "c" * 43, "code_challenge_method": "S256"}  # PKCE: a public client
        return requests.get(
            f"{tight_server.url}/{pool.pool_id}/oauth2/authorize",
            params=query,
            headers={"X-Forwarded-For": address},
            allow_redirects=False,
            timeout=10,
        )

    kept = authorize("198.51.100.7", pool.secret_id)
    assert kept.status_code == 302 and "/login?rid=" in kept.headers["Location"]
    # The same address again: its bucket (one token) is empty.
    busy = authorize("198.51.100.7", pool.secret_id)
    assert busy.status_code == 302
    answer = parse_qs(urlsplit(busy.headers["Location"]).query)
    assert busy.headers["Location"].startswith(CALLBACK)
    assert answer["error"] == ["temporarily_unavailable"] and answer["state"] == ["s-1"]
    # Other addresses, one client: its bucket (two tokens) holds one more.
    assert "/login?rid=" in authorize("198.51.100.8", pool.secret_id).headers["Location"]
    assert "error=temporarily_unavailable" in authorize("198.51.100.9", pool.secret_id).headers["Location"]
    # Another client of the pool has its own.
    assert "/login?rid=" in authorize("198.51.100.10", pool.public_id).headers["Location"]
    # Exactly the three requests that were let through are kept.
    database = sqlite3.connect(f"file:{tight_server.data_dir / 'gatehouse.db'}?mode=ro", uri=True)
    try:
        assert database.execute("SELECT count(*) FROM oauth_records WHERE kind = 'authorize'").fetchone() == (3,)
    finally:
        database.close()
