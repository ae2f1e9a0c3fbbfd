"""bench/run.py's rows together: the real seeding (the SRP and MFA pools and the /oauth2 clients) against a real
Gatehouse started as the benchmark starts it, each row's targets (which server, endpoint, client), one short wrk
run of each row's script against each target without errors, and the ceiling's /oauth2 probes."""

from __future__ import annotations

import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import ceiling  # noqa: E402
import run  # noqa: E402


@dataclass
class Bench:
    gatehouse: run.Server
    ceiling: run.Server
    seeded: run.Seed
    wrk: run.WrkSettings


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-test-") as scratch:
        gatehouse = run.gatehouse_server(1, Path(scratch) / "data", Path(scratch))
        probe = run.ceiling_server(1, Path(scratch))
        try:
            gatehouse.start()
            probe.start()
            seeded = run.seed(gatehouse.url)
            wrk = run.WrkSettings(binary=run.ensure_wrk(), seconds=1, warmup_seconds=0, connections=2, threads=1)
            yield Bench(gatehouse, probe, seeded, wrk)
        finally:
            probe.stop()
            gatehouse.stop()


def _spec(name: str) -> run.PathSpec:
    return next(spec for spec in run.PATHS if spec.name == name)


def test_every_row_has_one_name_and_a_way_to_be_driven() -> None:
    names = [spec.name for spec in run.PATHS]
    assert len(names) == len(set(names))
    assert {
        "REFRESH_TOKEN_AUTH",
        "GetUser",
        "USER_PASSWORD_AUTH",
        run.SRP_PATH,
        run.MFA_PATH,
        "SignUp",
        "oauth2/token refresh_token",
        "oauth2/token client_credentials",
        "oauth2/userInfo",
    } == set(names)
    for spec in run.PATHS:
        if spec.script is None:
            assert spec.name == run.SRP_PATH
        else:
            assert (BENCH / spec.script).is_file()
        # A row is compared with a ceiling or with the plain pool, never both.
        assert not (spec.vs_plain_pool and spec.ceiling_endpoint is not None)


def test_paths_option_takes_every_row_name_including_those_with_spaces() -> None:
    names = [spec.name for spec in run.PATHS]
    assert run.parse_args(["--paths", *names]).paths == names
    assert run.parse_args(["--paths", "oauth2/token client_credentials"]).paths == ["oauth2/token client_credentials"]
    with pytest.raises(SystemExit):
        run.parse_args(["--paths", "oauth2/token"])


def test_seed_makes_the_mfa_pool_and_the_oauth_clients(bench: Bench) -> None:
    seeded = bench.seeded
    assert seeded.mfa_pool_id and seeded.mfa_pool_id != seeded.pool_id
    assert seeded.mfa_client_id and seeded.mfa_client_id != seeded.client_id
    assert seeded.machine_basic and seeded.openid_access_token and seeded.refresh_token
    # The openid token is the hosted UI's, not the one signed in on the Cognito wire.
    assert seeded.openid_access_token != seeded.access_token


def test_targets_carry_each_rows_endpoint_and_client(bench: Bench) -> None:
    seeded = bench.seeded
    targets = {spec.name: run.run_targets(spec, bench.gatehouse, bench.ceiling, seeded) for spec in run.PATHS}
    assert [(t.who, t.endpoint) for t in targets["oauth2/token refresh_token"]] == [
        ("gatehouse", "/oauth2/token"),
        ("ceiling", "/token_refresh"),
    ]
    assert [(t.who, t.endpoint) for t in targets["oauth2/token client_credentials"]] == [
        ("gatehouse", "/oauth2/token"),
        ("ceiling", "/token_client"),
    ]
    assert [(t.who, t.url) for t in targets["oauth2/userInfo"]] == [
        ("gatehouse", bench.gatehouse.url + "/oauth2/userInfo"),
        ("ceiling", bench.ceiling.url + "/userinfo"),
    ]
    mfa = targets[run.MFA_PATH]
    assert [(t.who, t.server, t.endpoint, t.client_id, t.pool_id) for t in mfa] == [
        ("gatehouse", bench.gatehouse, "/", seeded.mfa_client_id, seeded.mfa_pool_id),
        ("plain", bench.gatehouse, "/", seeded.client_id, seeded.pool_id),
    ]
    srp = targets[run.SRP_PATH]
    assert [(t.who, t.endpoint, t.pool_id) for t in srp] == [
        ("gatehouse", "/", seeded.pool_id),
        ("ceiling", "/srp", ceiling.SRP_POOL_ID),
    ]
    assert [(t.who, t.endpoint) for t in targets["SignUp"]] == [("gatehouse", "/")]


@pytest.mark.parametrize("name", [spec.name for spec in run.PATHS if spec.script is not None])
def test_each_wrk_row_runs_without_errors_on_every_target(bench: Bench, name: str) -> None:
    spec = _spec(name)
    assert spec.script is not None
    for target in run.run_targets(spec, bench.gatehouse, bench.ceiling, bench.seeded):
        env = run.lua_env(bench.seeded, "t", target.endpoint, target.client_id)
        result = run.run_wrk(bench.wrk, target.url, spec.script, env, seconds=1)
        assert result.requests > 0, (target.who, result.output)
        assert result.errors == 0, (target.who, result.output)


def test_srp_row_signs_in_on_both_targets(bench: Bench) -> None:
    for target in run.run_targets(_spec(run.SRP_PATH), bench.gatehouse, bench.ceiling, bench.seeded):
        run.check_srp(target.url, target.client_id, target.pool_id)


def test_oauth_rows_refuse_what_their_scripts_would_not_send(bench: Bench) -> None:
    """The wrk runs above count only 2xx as success; here the same endpoints refuse a wrong credential, so a
    row cannot pass on answers that ignore its request."""
    url = bench.gatehouse.url
    wrong_basic = urllib.request.Request(
        url + "/oauth2/token",
        data=b"grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic bm9uZTpub25l"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong_basic, timeout=30)
    assert refused.value.code in (400, 401)
    wrong_bearer = urllib.request.Request(url + "/oauth2/userInfo", headers={"Authorization": "Bearer not-a-token"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong_bearer, timeout=30)
    assert refused.value.code == 401


def test_oauth_rows_are_judged_on_the_tail_only() -> None:
    spec = _spec("oauth2/userInfo")
    fast = run.WrkResult(
        requests=50, duration_s=1.0, rps=50.0, p50_ms=10.0, p99_ms=20.0, non_2xx=0, socket_errors={}, output=""
    )
    slow_ceiling = run.WrkResult(
        requests=100, duration_s=1.0, rps=100.0, p50_ms=5.0, p99_ms=6.0, non_2xx=0, socket_errors={}, output=""
    )
    row = run.judge(run.Measurement(spec.name, 1, fast, slow_ceiling), spec)
    # Half the ceiling is shown, not judged; the tail (2x) is within the target.
    assert (row.ratio, row.verdict) == ("0.50x", "pass")
    assert "ceil" not in row.target
