"""bench/srp_load.py (the USER_SRP_AUTH load generator) against a real Gatehouse and the real ceiling probe
(bench/ceiling.py's /srp), and the parts of bench/run.py that choose and judge its rows."""

from __future__ import annotations

import asyncio
import datetime
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import GatehouseServer, free_port

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import ceiling  # noqa: E402
import run  # noqa: E402
import srp_load  # noqa: E402

PASSWORD = ceiling.PASSWORD


class Ceiling:
    def __init__(self, workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(BENCH / "ceiling.py"), "--port", str(self.port), "--workers", str(workers)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(log.read_text())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)
        self._log.close()


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ceiling]:
    """The ceiling with two workers: a sign-in's two requests must reach the same one (its sessions are in
    process memory), which srp_load guarantees by sending both over one connection."""
    server = Ceiling(2, tmp_path_factory.mktemp("ceiling") / "ceiling.log")
    yield server
    server.stop()


def ceiling_config(probe: Ceiling, **overrides: Any) -> srp_load.LoadConfig:
    settings: dict[str, Any] = {
        "url": probe.url + "/srp",
        "client_id": "unused",
        "pool_id": ceiling.SRP_POOL_ID,
        "username": ceiling.SRP_USERNAME,
        "password": PASSWORD,
        **overrides,
    }
    return srp_load.LoadConfig(**settings)


@pytest.fixture(scope="module")
def srp_pool(idp: Any) -> tuple[str, str]:
    pool_id = idp.create_user_pool(PoolName="bench-srp")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="bench", ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    for username in ("load-user", "wrong-password-user"):
        idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return pool_id, client_id


def gatehouse_config(
    gatehouse: GatehouseServer, srp_pool: tuple[str, str], username: str, **overrides: Any
) -> srp_load.LoadConfig:
    pool_id, client_id = srp_pool
    settings: dict[str, Any] = {
        "url": gatehouse.url + "/",
        "client_id": client_id,
        "pool_id": pool_id,
        "username": username,
        "password": PASSWORD,
        **overrides,
    }
    return srp_load.LoadConfig(**settings)


# --- against Gatehouse -----------------------------------------------------------------------------------


def test_load_against_gatehouse_signs_in_without_errors(
    gatehouse: GatehouseServer, srp_pool: tuple[str, str], idp: Any
) -> None:
    config = gatehouse_config(gatehouse, srp_pool, "load-user", concurrency=4, seconds=1.5, warmup=0.3)
    result = asyncio.run(srp_load.run_load(config))
    assert result.errors == {}, result.error_samples
    assert result.sign_ins > 0
    assert result.sign_ins_per_s == pytest.approx(result.sign_ins / result.seconds)
    assert 0 < result.p50_ms <= result.p99_ms
    assert 0 < result.client_cpu_ms_per_sign_in < 1000
    user = idp.admin_get_user(UserPoolId=srp_pool[0], Username="load-user")
    assert user["UserStatus"] == "CONFIRMED"


def test_wrong_password_is_counted_as_errors_never_as_sign_ins(
    gatehouse: GatehouseServer, srp_pool: tuple[str, str]
) -> None:
    config = gatehouse_config(
        gatehouse, srp_pool, "wrong-password-user", password="Not-the-passw0rd!", concurrency=2, seconds=1, warmup=0
    )
    result = asyncio.run(srp_load.run_load(config))
    assert result.sign_ins == 0
    assert set(result.errors) == {"http-400"}
    assert result.errors["http-400"] > 0
    assert all("NotAuthorizedException" in sample for sample in result.error_samples)
    with pytest.raises(srp_load.SignInError) as failed:
        asyncio.run(srp_load.sign_in_once(config))
    assert failed.value.kind == "http-400"


def test_a_client_not_allowed_srp_fails_at_the_first_request(
    gatehouse: GatehouseServer, srp_pool: tuple[str, str], idp: Any
) -> None:
    client_id = idp.create_user_pool_client(
        UserPoolId=srp_pool[0], ClientName="password-only", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    config = gatehouse_config(gatehouse, srp_pool, "load-user", client_id=client_id)
    with pytest.raises(srp_load.SignInError) as failed:
        asyncio.run(srp_load.sign_in_once(config))
    assert failed.value.kind == "http-400"
    assert "InvalidParameterException" in str(failed.value)


# --- against the ceiling probe ---------------------------------------------------------------------------


def test_load_against_the_two_worker_ceiling_has_no_errors(probe: Ceiling) -> None:
    result = asyncio.run(srp_load.run_load(ceiling_config(probe, concurrency=8, seconds=1.5, warmup=0.3)))
    assert result.errors == {}, result.error_samples
    assert result.sign_ins > 0


def test_ceiling_refuses_a_proof_made_for_another_pool(probe: Ceiling) -> None:
    # x covers the pool name: a client that derives it from the wrong pool proves nothing.
    with pytest.raises(srp_load.SignInError) as failed:
        asyncio.run(srp_load.sign_in_once(ceiling_config(probe, pool_id="us-east-1_SomewhereElse")))
    assert failed.value.kind == "http-400"


async def _initiate_and_answer_twice(probe: Ceiling, timestamp_shift: datetime.timedelta) -> list[int]:
    client = srp_load.SrpClient(ceiling.SRP_POOL_ID, PASSWORD)
    config = ceiling_config(probe)
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        async with session.post(
            config.url, data=srp_load._initiate_body(config, client), headers=srp_load.INITIATE_HEADERS
        ) as response:
            challenge = await response.json(content_type=None)
        now = datetime.datetime.now(datetime.UTC) + timestamp_shift
        answer = {
            "ChallengeName": "PASSWORD_VERIFIER",
            "ChallengeResponses": client.claim(challenge["ChallengeParameters"], now),
        }
        for _ in range(2):
            async with session.post(config.url, json=answer, headers=srp_load.RESPOND_HEADERS) as response:
                statuses.append(response.status)
    return statuses


def test_ceiling_challenge_is_single_use(probe: Ceiling) -> None:
    assert asyncio.run(_initiate_and_answer_twice(probe, datetime.timedelta(0))) == [200, 400]


def test_ceiling_refuses_a_stale_timestamp(probe: Ceiling) -> None:
    assert asyncio.run(_initiate_and_answer_twice(probe, datetime.timedelta(minutes=-10))) == [400, 400]


# --- bench/run.py's choices --------------------------------------------------------------------------------


def test_paths_option_selects_rows_and_refuses_unknown_names() -> None:
    args = run.parse_args(["--paths", "USER_SRP_AUTH", "USER_PASSWORD_AUTH_MFA_OPTIONAL"])
    assert args.paths == ["USER_SRP_AUTH", "USER_PASSWORD_AUTH_MFA_OPTIONAL"]
    assert run.parse_args([]).paths == [spec.name for spec in run.PATHS]
    with pytest.raises(SystemExit):
        run.parse_args(["--paths", "USER_SRP"])


def _result(rps: float, server_cores: float, errors: int = 0) -> run.WrkResult:
    return run.WrkResult(
        requests=int(rps * 5),
        duration_s=5.0,
        rps=rps,
        p50_ms=100.0,
        p99_ms=200.0,
        non_2xx=errors,
        socket_errors={},
        output="",
        server_cores=server_cores,
    )


def test_mfa_row_is_judged_against_the_plain_pool() -> None:
    spec = next(spec for spec in run.PATHS if spec.name == run.MFA_PATH)
    passing = run.judge(run.Measurement(run.MFA_PATH, 1, _result(96.0, 1.0), _result(100.0, 1.0)), spec)
    assert (passing.verdict, passing.ratio, passing.cpu_ratio) == ("pass", "0.96x", "0.96x")
    assert ">=0.95x plain" in passing.target
    failing = run.judge(run.Measurement(run.MFA_PATH, 1, _result(90.0, 1.0), _result(100.0, 1.0)), spec)
    assert failing.verdict == "FAIL(ratio)"
    invalid = run.judge(run.Measurement(run.MFA_PATH, 1, _result(99.0, 1.0, errors=3), _result(100.0, 1.0)), spec)
    assert invalid.verdict == "INVALID:errors"


def test_combined_rounds_take_the_median_cpu_per_request() -> None:
    combined = run.combine([_result(100.0, 1.0), _result(50.0, 1.0), _result(200.0, 1.0)])
    # Per round: 10, 20 and 5 ms per request; the median is 10, not mean cores over median req/s.
    assert combined.cpu_ms_per_request == pytest.approx(10.0)
    assert combined.rps == 100.0


def test_rounds_are_judged_by_the_median_of_each_rounds_ratio() -> None:
    # The machine got busier in round 2 (both runs slower) and quieter in round 3: each round's ratio is what
    # the row says (0.50, 0.50, 0.60 -> 0.50), not the median req/s over the median ceiling (90 / 150 = 0.60).
    spec = next(spec for spec in run.PATHS if spec.name == "GetUser")
    gatehouse = [_result(100.0, 1.0), _result(50.0, 1.0), _result(90.0, 1.0)]
    ceiling = [_result(200.0, 1.0), _result(100.0, 1.0), _result(150.0, 1.0)]
    by_rps, by_cpu = run.paired_ratios([gatehouse, ceiling])
    assert by_rps == pytest.approx((0.5, 0.5, 0.6))
    assert by_cpu == pytest.approx((0.5, 0.5, 0.6))
    measurement = run.Measurement(spec.name, 1, run.combine(gatehouse), run.combine(ceiling), by_rps, by_cpu)
    row = run.judge(measurement, spec)
    assert (row.ratio, row.cpu_ratio, row.verdict) == ("0.50x", "0.50x", "FAIL(ratio)")
    assert row.values["ratio"] == pytest.approx(0.5)
    # One round, or a row without a comparison run, has no pairs: the plain ratio stands.
    assert run.paired_ratios([gatehouse[:1], ceiling[:1]]) == ((), ())
    assert run.paired_ratios([gatehouse]) == ((), ())
