"""bench/run.py's rows together: the real seeding (the SRP and MFA pools, the /oauth2 clients, the hosted sign-in
page, the identity pool) against a real Gatehouse started as the benchmark starts it, each row's targets (which
server, endpoint, client), one short run of each row (wrk, srp_load, code_load) against each target without
errors, the ceiling's probes, and the in-process temporary-credentials row."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import ceiling  # noqa: E402
import code_load  # noqa: E402
import run  # noqa: E402

DISTINCT_TOKENS = 40


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
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("BENCH_DISTINCT_TOKENS", str(DISTINCT_TOKENS))  # a few suffice here
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
        run.CODE_PATH,
        run.LOGIN_PATH,
        run.IDENTITY_PATH,
        run.STS_PATH,
    } == set(names)
    drivers = {spec.name: spec.driver for spec in run.PATHS if spec.driver != "wrk"}
    assert drivers == {
        run.SRP_PATH: "srp_load",
        run.CODE_PATH: "code_load",
        run.STS_PATH: "in_process",
    }
    for spec in run.PATHS:
        if spec.driver == "wrk":
            assert spec.script is not None and (BENCH / spec.script).is_file()
        else:
            assert spec.script is None
        # A row is compared with a ceiling or with the plain pool, never both.
        assert not (spec.vs_plain_pool and spec.ceiling_endpoint is not None)


def test_paths_option_takes_every_row_name_including_those_with_spaces() -> None:
    names = [spec.name for spec in run.PATHS]
    assert run.parse_args(["--paths", *names]).paths == names
    new = [run.CODE_PATH, run.LOGIN_PATH, run.IDENTITY_PATH, run.STS_PATH]
    assert run.parse_args(["--paths", *new]).paths == new
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
    code = targets[run.CODE_PATH]
    assert [(t.who, t.endpoint, t.token_endpoint, t.client_id) for t in code] == [
        ("gatehouse", f"/{seeded.pool_id}/oauth2/authorize", "/oauth2/token", seeded.web_client_id),
        ("ceiling", "/authorize", "/token_code", seeded.web_client_id),
    ]
    assert code[0].cookie == seeded.sso_cookie
    assert code[1].cookie == f"{ceiling.SSO_COOKIE_NAME}={ceiling.SSO_COOKIE_VALUE}"
    assert [(t.who, t.endpoint) for t in targets[run.LOGIN_PATH]] == [
        ("gatehouse", seeded.login_path),
        ("ceiling", "/hello"),
    ]
    assert [(t.who, t.endpoint) for t in targets[run.IDENTITY_PATH]] == [("gatehouse", "/"), ("ceiling", "/identity")]


@pytest.mark.parametrize("name", [spec.name for spec in run.PATHS if spec.driver == "wrk"])
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


def test_seed_makes_the_code_client_the_sign_in_page_and_the_identity_pool(bench: Bench) -> None:
    seeded = bench.seeded
    assert seeded.web_client_id and seeded.sso_cookie.startswith(f"gatehouse_sso_{seeded.pool_id}=")
    assert seeded.login_path.startswith(f"/{seeded.pool_id}/login?rid=")
    # The page renders again and again for one request id (what wrk's fixed URL needs), with its form.
    for _ in range(3):
        with urllib.request.urlopen(bench.gatehouse.url + seeded.login_path, timeout=30) as page:
            assert page.status == 200
            assert '<form method="post"' in page.read().decode()
    assert seeded.identity_pool_id.startswith("us-east-1:") and seeded.identity_id.startswith("us-east-1:")
    assert seeded.login_provider == f"127.0.0.1:{bench.gatehouse.port}/{seeded.pool_id}"
    # The identity row's tokens: distinct ID tokens of the one user, each a login GetId answers the identity for.
    tokens = _tokens(seeded.id_tokens_file, "id", "aws.cognito.signin.user.admin")
    for token in (tokens[0], tokens[-1]):
        status, answer = _identity_call(
            bench.gatehouse.url + "/",
            "GetId",
            {"IdentityPoolId": seeded.identity_pool_id, "Logins": {seeded.login_provider: token}},
        )
        assert (status, answer["IdentityId"]) == (200, seeded.identity_id)
    # GetUser's and userInfo's: distinct access tokens, the latter with openid (the code client's).
    _tokens(seeded.access_tokens_file, "access", "aws.cognito.signin.user.admin")
    _tokens(seeded.openid_access_tokens_file, "access", "openid email")


def _tokens(path: str, token_use: str, scope: str) -> list[str]:
    tokens = Path(path).read_text().split()
    assert len(tokens) == len(set(tokens)) == DISTINCT_TOKENS
    for token in (tokens[0], tokens[-1]):
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert (
            claims["token_use"] == token_use and claims.get("username", claims.get("cognito:username")) == run.USERNAME
        )
        if token_use == "access":
            assert claims["scope"] == scope
    return tokens


def _identity_call(url: str, operation: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": run.CONTENT_TYPE, "X-Amz-Target": "AWSCognitoIdentityService." + operation},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_identity_row_answers_credentials_on_both_targets_and_gatehouse_refuses_a_forged_login(bench: Bench) -> None:
    seeded = bench.seeded
    logins = {seeded.login_provider: seeded.id_token}
    for url in (bench.gatehouse.url + "/", bench.ceiling.url + "/identity"):
        status, answer = _identity_call(url, "GetId", {"IdentityPoolId": seeded.identity_pool_id, "Logins": logins})
        assert status == 200 and answer["IdentityId"]
        status, answer = _identity_call(
            url, "GetCredentialsForIdentity", {"IdentityId": seeded.identity_id, "Logins": logins}
        )
        credentials = answer["Credentials"]
        assert status == 200 and isinstance(credentials, dict)
        assert str(credentials["AccessKeyId"]).startswith("ASIA") and len(str(credentials["SecretKey"])) == 40
    header, payload, signature = seeded.id_token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    status, answer = _identity_call(
        bench.gatehouse.url + "/",
        "GetCredentialsForIdentity",
        {"IdentityId": seeded.identity_id, "Logins": {seeded.login_provider: forged}},
    )
    assert (status, answer["__type"]) == (400, "NotAuthorizedException")


def test_code_flow_row_runs_without_errors_on_both_targets(bench: Bench) -> None:
    for target in run.run_targets(_spec(run.CODE_PATH), bench.gatehouse, bench.ceiling, bench.seeded):
        run.check_code(target)
        config = run.code_load_config(target, bench.wrk)
        result = asyncio.run(code_load.run_load(config))
        assert result.sign_ins > 0, (target.who, result.summary())
        assert result.errors == {}, (target.who, result.summary())


def test_code_flow_codes_are_single_use_and_need_the_session(bench: Bench) -> None:
    """A replayed code or a wrong PKCE verifier is refused on both sides, and Gatehouse gives no code to a browser
    without the session cookie: the flow cannot pass on answers that ignore its request."""
    for target in run.run_targets(_spec(run.CODE_PATH), bench.gatehouse, bench.ceiling, bench.seeded):
        verifier, challenge = code_load.pkce_pair()
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": target.client_id,
                "redirect_uri": run.CALLBACK,
                "scope": "openid email",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        location = _redirect(target.url + "?" + query, target.cookie)
        assert location.startswith(run.CALLBACK), (target.who, location)
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
        token_url = target.server.url + target.token_endpoint
        form = {
            "grant_type": "authorization_code",
            "client_id": target.client_id,
            "code": code,
            "redirect_uri": run.CALLBACK,
        }
        assert _post_form(token_url, {**form, "code_verifier": "wrong-" + verifier})[0] == 400
        # A fresh code: redeemed once with the right verifier, then refused.
        location = _redirect(target.url + "?" + query, target.cookie)
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]
        assert _post_form(token_url, {**form, "code": code, "code_verifier": verifier})[0] == 200
        assert _post_form(token_url, {**form, "code": code, "code_verifier": verifier})[0] == 400
    gatehouse = run.run_targets(_spec(run.CODE_PATH), bench.gatehouse, bench.ceiling, bench.seeded)[0]
    _, challenge = code_load.pkce_pair()
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": gatehouse.client_id,
            "redirect_uri": run.CALLBACK,
            "scope": "openid email",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    assert "/login?" in _redirect(gatehouse.url + "?" + query, "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _redirect(url: str, cookie: str) -> str:
    """Where a GET answers 302 to, without following it."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(request, timeout=30)
    assert answer.value.code == 302
    return str(answer.value.headers["Location"])


def _post_form(url: str, form: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_temporary_credentials_row_is_measured_in_process_and_judged_against_5000_per_second() -> None:
    rate = run.sts_verify_per_second(0.5)
    assert rate > 0
    report = run.Report(started="", machine={}, options={}, in_process={"sts_verify_per_s": rate})
    row = run.sts_row(report)
    assert row is not None and row.path == run.STS_PATH and row.valid
    assert row.verdict == ("pass" if rate >= 5000 else "FAIL")
    for figure, verdict in ((5000.0, "pass"), (4999.0, "FAIL")):
        judged = run.sts_row(run.Report(started="", machine={}, options={}, in_process={"sts_verify_per_s": figure}))
        assert judged is not None and judged.verdict == verdict and judged.target == ">=5000/s per core"
    assert run.sts_row(run.Report(started="", machine={}, options={})) is None


def test_oauth_token_rows_and_the_new_rows_carry_the_issues_ratio_targets() -> None:
    targets = {spec.name: spec.min_ratio for spec in run.PATHS}
    assert targets["oauth2/token refresh_token"] == 0.8
    assert targets["oauth2/token client_credentials"] == 0.8
    assert targets[run.CODE_PATH] == 0.7
    assert targets[run.LOGIN_PATH] == 0.5
    assert targets[run.IDENTITY_PATH] == 0.6
    spec = _spec("oauth2/token client_credentials")
    ceiling_run = run.WrkResult(
        requests=100, duration_s=1.0, rps=100.0, p50_ms=5.0, p99_ms=6.0, non_2xx=0, socket_errors={}, output=""
    )
    for rps, verdict in ((80.0, "pass"), (79.0, "FAIL(ratio)")):
        gatehouse_run = run.WrkResult(
            requests=int(rps), duration_s=1.0, rps=rps, p50_ms=5.0, p99_ms=6.0, non_2xx=0, socket_errors={}, output=""
        )
        row = run.judge(run.Measurement(spec.name, 1, gatehouse_run, ceiling_run), spec)
        assert row.verdict == verdict and ">=0.8x ceil" in row.target


def test_userinfo_row_is_judged_on_the_tail_only() -> None:
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
