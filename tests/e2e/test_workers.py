"""``gatehouse serve --workers 2``: two processes on one port (SO_REUSEPORT) sharing one store.

A whole flow runs through the pair with many connections, so both processes answer: sign-ins, refreshes and
GetUser all succeed whichever process a request lands on, every token verifies against the one JWKS, the
metrics a scrape shows are the sum over both processes, and the server stops cleanly.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.oauth_support import CALLBACK, Browser, make_pool, make_user, query_of
from tests.support import GatehouseServer

PASSWORD = "Workers-password-1"
SIGN_INS = 30
CODES = 12
CONTENT_TYPE = "application/x-amz-json-1.1"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("workers") / "data", workers=2)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def setup(cluster: GatehouseServer) -> dict[str, str]:
    idp = cluster.client()
    pool_id = idp.create_user_pool(PoolName="workers")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="workers-app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="worker-user",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "worker@example.com"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="worker-user", Password=PASSWORD, Permanent=True)
    return {"pool_id": pool_id, "client_id": client_id}


def json_call(server: GatehouseServer, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    """One unsigned call on a new connection (so that requests spread over the processes)."""
    request = urllib.request.Request(
        server.url + "/",
        data=json.dumps(params).encode(),
        headers={
            "Content-Type": CONTENT_TYPE,
            "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
            "Connection": "close",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        body = json.load(response)
    assert isinstance(body, dict)
    return body


def in_threads(count: int, work: Callable[[int], Any], *, threads: int = 6) -> list[Any]:
    """Run ``work(i)`` for i in range(count) on a few threads; results in order, exceptions re-raised."""
    results: list[Any] = [None] * count
    errors: list[BaseException] = []
    cursor = iter(range(count))
    lock = threading.Lock()

    def run() -> None:
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            try:
                results[index] = work(index)
            except BaseException as error:  # handed back to the test thread
                errors.append(error)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    if errors:
        raise errors[0]
    return results


def scrape(server: GatehouseServer) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return [(s.name, dict(s.labels), float(s.value)) for f in text_string_to_metric_families(text) for s in f.samples]


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and all(lab.get(k) == w for k, w in labels.items()))


def worker_pids(server: GatehouseServer) -> set[int]:
    """The processes that recorded metrics: prometheus_client's multi-process files are named by pid."""
    directory = Path(server.data_dir) / "prometheus"
    return {int(p.stem.rsplit("_", 1)[1]) for p in directory.glob("*/*.db")}


def test_full_flow_through_two_workers(cluster: GatehouseServer, setup: dict[str, str]) -> None:
    pool_id, client_id = setup["pool_id"], setup["client_id"]
    before = scrape(cluster)
    auth_before = total(before, "gatehouse_api_calls_total", operation="InitiateAuth")

    def sign_in(_: int) -> dict[str, Any]:
        result = json_call(
            cluster,
            "InitiateAuth",
            {
                "ClientId": client_id,
                "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": "worker-user", "PASSWORD": PASSWORD},
            },
        )
        return dict(result["AuthenticationResult"])

    sessions = in_threads(SIGN_INS, sign_in)

    def refresh(index: int) -> dict[str, Any]:
        result = json_call(
            cluster,
            "InitiateAuth",
            {
                "ClientId": client_id,
                "AuthFlow": "REFRESH_TOKEN_AUTH",
                "AuthParameters": {"REFRESH_TOKEN": sessions[index]["RefreshToken"]},
            },
        )
        return dict(result["AuthenticationResult"])

    refreshed = in_threads(SIGN_INS, refresh)

    def get_user(index: int) -> str:
        token = (sessions if index % 2 else refreshed)[index]["AccessToken"]
        return str(json_call(cluster, "GetUser", {"AccessToken": token})["Username"])

    assert in_threads(SIGN_INS, get_user) == ["worker-user"] * SIGN_INS
    # boto3 (one kept-alive connection) sees the same server.
    public = cluster.client(signed=False)
    assert public.get_user(AccessToken=refreshed[0]["AccessToken"])["Username"] == "worker-user"

    # Keys live in the store: one JWKS verifies every ID token, whichever process signed it.
    with urllib.request.urlopen(f"{cluster.url}/{pool_id}/.well-known/jwks.json", timeout=10) as response:
        jwks = jwt.PyJWKSet.from_dict(json.load(response))
    by_kid = {key.key_id: key for key in jwks.keys}
    # Two processes racing to make a new pool's first key make at most one each (never one per request).
    assert 1 <= len(by_kid) <= 2
    issuer = f"{cluster.url}/{pool_id}"
    subs = set()
    for result in [*sessions, *refreshed]:
        for token_name in ("IdToken", "AccessToken"):
            token = result[token_name]
            kid = jwt.get_unverified_header(token)["kid"]
            assert kid in by_kid
            claims = jwt.decode(
                token,
                by_kid[kid].key,
                algorithms=["RS256"],
                issuer=issuer,
                audience=client_id if token_name == "IdToken" else None,
                options={"verify_aud": token_name == "IdToken"},
            )
            subs.add(claims["sub"])
    assert len(subs) == 1
    assert all("RefreshToken" not in r for r in refreshed)

    # Both processes answered, and /metrics sums over them (any process may answer the scrape).
    assert len(worker_pids(cluster)) == 2
    expected = auth_before + 2 * SIGN_INS
    for _ in range(6):
        after = scrape(cluster)
        assert total(after, "gatehouse_api_calls_total", operation="InitiateAuth") == expected
        assert total(after, "gatehouse_api_calls_total", operation="InitiateAuth", outcome="success") == expected
        assert total(after, "gatehouse_api_calls_total", operation="GetUser", outcome="success") == SIGN_INS + 1
        flow = {"pool": pool_id, "client": client_id, "flow": "USER_PASSWORD_AUTH"}
        assert total(after, "gatehouse_sign_in_successes_total", **flow) == SIGN_INS
        assert total(after, "gatehouse_tokens_issued_total", pool=pool_id, token_use="id") == 2 * SIGN_INS
        assert total(after, "gatehouse_tokens_issued_total", pool=pool_id, token_use="refresh") == SIGN_INS


def test_admin_calls_and_health_from_either_process(cluster: GatehouseServer, setup: dict[str, str]) -> None:
    idp = cluster.client()
    created = in_threads(
        10,
        lambda i: cluster.client().admin_create_user(
            UserPoolId=setup["pool_id"], Username=f"bulk-{i}", MessageAction="SUPPRESS"
        )["User"]["Username"],
    )
    assert sorted(created) == sorted(f"bulk-{i}" for i in range(10))
    names = {
        u["Username"]
        for page in idp.get_paginator("list_users").paginate(UserPoolId=setup["pool_id"])
        for u in page["Users"]
    }
    assert names == {"worker-user"} | {f"bulk-{i}" for i in range(10)}
    for _ in range(10):
        request = urllib.request.Request(f"{cluster.url}/health", headers={"Connection": "close"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200


def test_codes_issued_by_one_process_are_redeemed_once_by_either(cluster: GatehouseServer) -> None:
    """Authorization codes are sealed with a key every process derives from the data directory's, and used up
    in the shared store: a code from either process redeems on either, once."""
    idp = cluster.client()
    oauth = make_pool(idp, cluster.url, "workers-oauth")
    make_user(idp, oauth.pool_id, "carol")
    browser = Browser(cluster.url)
    codes = []
    for _ in range(CODES):
        browser.http.close()  # a new connection for each authorization: they land on both processes
        back = browser.sign_in(browser.authorize_url(oauth.secret_id, scope="openid"), "carol")
        assert back.status_code in (302, 303), back.text
        codes.append(query_of(back.headers["Location"])["code"])

    def redeem(code: str) -> requests.Response:
        return requests.post(
            f"{cluster.url}/oauth2/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
            auth=(oauth.secret_id, oauth.secret),
            headers={"Connection": "close"},
            timeout=20,
        )

    first = in_threads(CODES, lambda i: redeem(codes[i]))
    assert [r.status_code for r in first] == [200] * CODES, [r.text for r in first if r.status_code != 200]
    again = in_threads(CODES, lambda i: redeem(codes[i]))
    assert {r.json()["error"] for r in again} == {"invalid_grant"}
    assert len(worker_pids(cluster)) == 2


def test_server_stops_cleanly(cluster: GatehouseServer, setup: dict[str, str]) -> None:
    pids = worker_pids(cluster)
    assert len(pids) == 2
    assert cluster.process is not None
    cluster.stop()
    assert cluster.process.returncode == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    log = cluster.log_path.read_text()
    assert "Traceback" not in log
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{cluster.url}/health", timeout=2)
