"""Gatehouse's throughput benchmark: the hot paths under wrk, next to ceiling probes on the same machine.

    python3 bench/run.py [--seconds 10] [--connections 64] [--workers 1 2]

For each worker count it starts Gatehouse (fresh temp data dir) and bench/ceiling.py with that many processes,
seeds a pool, a client and a confirmed user with boto3, and drives each path with wrk (keep-alive, --latency)
through the Lua scripts in bench/: InitiateAuth USER_PASSWORD_AUTH, InitiateAuth REFRESH_TOKEN_AUTH, GetUser,
SignUp, /oauth2/token (refresh_token, client_credentials), /oauth2/userInfo, the hosted sign-in page and identity
pools' GetId + GetCredentialsForIdentity against Gatehouse, and the same scripts against the ceiling endpoints
right after each Gatehouse run.
USER_SRP_AUTH (both round trips) is driven by bench/srp_load.py, against Gatehouse and the ceiling's /srp probe,
and the authorization code flow (authorize with the SSO cookie, then the exchange) by bench/code_load.py;
USER_PASSWORD_AUTH on a pool with MFA OPTIONAL is compared with the plain pool's, back to back. It also measures
RS256 signatures, Argon2id verifications, the SRP server steps and (bench/sts_verify.py) temporary-credential
SigV4 verifications per second in-process, prints one table with the issue's targets, and writes everything to
bench/results/latest.json. See bench/README.md.

The exit code is 0 whatever the figures say (this is a report, not a gate); 1 if the benchmark could not run;
130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import dataclasses
import datetime
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
# bench/ceiling.py and bench/srp_load.py are imported as modules; gateway from the repository.
for _path in (str(BENCH_DIR), str(REPO_ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
RESULTS_DIR = BENCH_DIR / "results"

ADMIN_KEY_ID = "AKIDGATEHOUSEBENCH"
ADMIN_SECRET = "gatehouse-bench-secret-" + secrets.token_hex(8)
REGION = "us-east-1"
USERNAME = "bench-user"
PASSWORD = "Bench-Passw0rd!"  # meets Cognito's default password policy
TARGET_PREFIX = "AWSCognitoIdentityProviderService."
# The code client's one callback URL (never visited: the load generators read the code off the redirect).
CALLBACK = "https://bench.invalid/callback"
CONTENT_TYPE = "application/x-amz-json-1.1"

P99_OVER_P50_MAX = 3.0
SCALING_MIN = 1.8
SCALING_PATH = "REFRESH_TOKEN_AUTH"
# Above this much CPU used by processes other than the servers and wrk during a run, the report says so.
NOISY_OTHER_CORES = 0.25
# wrk's default is 2 s; a queue of 64 connections in front of Argon2 can approach that on a small machine and
# timed-out requests vanish from wrk's latency figures, so give every request plenty of time instead.
WRK_TIMEOUT = "30s"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class BenchError(RuntimeError):
    """The benchmark itself could not run (as opposed to figures missing a target)."""


@dataclass(frozen=True)
class PathSpec:
    name: str
    script: str | None  # the wrk Lua script; None for the rows another driver measures
    ceiling_endpoint: str | None
    min_ratio: float | None
    # Where the script is sent on Gatehouse (the Cognito JSON wire is POST /).
    gatehouse_endpoint: str = "/"
    # Compared with Gatehouse's own USER_PASSWORD_AUTH on the plain pool instead of a ceiling probe.
    vs_plain_pool: bool = False
    # What measures the row: "wrk" (script), "srp_load" (bench/srp_load.py), "code_load" (bench/code_load.py),
    # or "in_process" (bench/sts_verify.py, once, with an absolute target instead of a ceiling).
    driver: str = "wrk"


SRP_PATH = "USER_SRP_AUTH"
MFA_PATH = "USER_PASSWORD_AUTH_MFA_OPTIONAL"
CODE_PATH = "oauth2/token authorization_code"
LOGIN_PATH = "hosted login page GET"
IDENTITY_PATH = "GetId+GetCredentialsForIdentity"
STS_PATH = "SigV4 temporary credentials"
STS_MIN_PER_SECOND = 5000.0
PATHS: tuple[PathSpec, ...] = (
    PathSpec("REFRESH_TOKEN_AUTH", "initiate_auth_refresh.lua", "/refresh", 0.8),
    PathSpec("GetUser", "get_user.lua", "/getuser", 0.6),
    PathSpec("USER_PASSWORD_AUTH", "initiate_auth_password.lua", "/password", 0.9),
    PathSpec(SRP_PATH, None, "/srp", 0.8, driver="srp_load"),
    PathSpec(MFA_PATH, "initiate_auth_password.lua", None, 0.95, vs_plain_pool=True),
    PathSpec("SignUp", "sign_up.lua", None, None),
    PathSpec(
        "oauth2/token refresh_token",
        "oauth_token_refresh.lua",
        "/token_refresh",
        0.8,
        gatehouse_endpoint="/oauth2/token",
    ),
    PathSpec(
        "oauth2/token client_credentials",
        "oauth_client_credentials.lua",
        "/token_client",
        0.8,
        gatehouse_endpoint="/oauth2/token",
    ),
    PathSpec("oauth2/userInfo", "oauth_userinfo.lua", "/userinfo", None, gatehouse_endpoint="/oauth2/userInfo"),
    # Both steps of the code flow (authorize with the SSO cookie, then the exchange) per iteration; the token
    # endpoints are Target.token_endpoint. Gatehouse's authorize is under the pool's path, as discovery names it.
    PathSpec(CODE_PATH, None, "/authorize", 0.7, gatehouse_endpoint="/{pool}/oauth2/authorize", driver="code_load"),
    # Gatehouse's endpoint is the seeded /{pool}/login?rid=... (Seed.login_path).
    PathSpec(LOGIN_PATH, "hosted_login.lua", "/hello", 0.5, gatehouse_endpoint="/{pool}/login"),
    PathSpec(IDENTITY_PATH, "identity_credentials.lua", "/identity", 0.6),
    PathSpec(STS_PATH, None, None, None, driver="in_process"),
)


# --- wrk ---------------------------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    output: str
    # CPU in cores (CPU seconds per second) during the measured run: the servers under test, wrk, and every
    # other process on the machine (on a shared machine, the noise).
    server_cores: float = 0.0
    wrk_cores: float = 0.0
    irq_cores: float = 0.0
    other_cores: float = 0.0
    rounds: int = 1
    # What drove the run: "wrk", or "srp_load" (bench/srp_load.py, whose CPU then counts as wrk_cores).
    load_generator: str = "wrk"
    # Set when several rounds are combined: the median of the rounds' own figures (each round's CPU over that
    # round's requests; mean cores over median req/s would mix rounds).
    median_cpu_ms_per_request: float | None = None
    median_client_cpu_ms_per_request: float | None = None

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU per answered request: less sensitive to other load on the machine than req/s."""
        if self.median_cpu_ms_per_request is not None:
            return self.median_cpu_ms_per_request
        return 1000.0 * self.server_cores / self.rps if self.rps > 0 else math.inf

    @property
    def client_cpu_ms_per_request(self) -> float:
        """The load generator's CPU per answered request (an SRP client does real arithmetic per sign-in)."""
        if self.median_client_cpu_ms_per_request is not None:
            return self.median_client_cpu_ms_per_request
        return 1000.0 * self.wrk_cores / self.rps if self.rps > 0 else math.inf

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def error_text(self) -> str:
        parts = [f"non-2xx={self.non_2xx}"] if self.non_2xx else []
        parts += [f"{kind}={count}" for kind, count in self.socket_errors.items() if count]
        return " ".join(parts) or "0"


_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _duration_ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise BenchError(f"wrk printed a latency I cannot read: {text!r}")
    return float(match.group(1)) * _TIME_UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """Read wrk's --latency report: requests/sec, the 50% and 99% latencies, non-2xx and socket errors."""

    def need(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"wrk output lacks {pattern!r}:\n{output}")
        return match

    totals = need(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h)")
    non_2xx = re.search(r"^\s*Non-2xx or 3xx responses:\s*(\d+)", output, re.MULTILINE)
    sockets = re.search(
        r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output, re.MULTILINE
    )
    socket_errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    if sockets is not None:
        socket_errors = dict(zip(socket_errors, (int(g) for g in sockets.groups()), strict=True))
    return WrkResult(
        requests=int(totals.group(1)),
        duration_s=_duration_ms(totals.group(2) + totals.group(3)) / 1000.0,
        rps=float(need(r"^Requests/sec:\s*([0-9.]+)").group(1)),
        p50_ms=_duration_ms(need(r"^\s*50%\s+(\S+)").group(1)),
        p99_ms=_duration_ms(need(r"^\s*99%\s+(\S+)").group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors,
        output=output,
    )


def ensure_wrk() -> str:
    """The wrk binary; installs Debian's package if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is not installed: apt-get install -y wrk", flush=True)
    install = ["apt-get", "install", "-y", "wrk"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, timeout=600, check=False).returncode != 0:
        print("apt-get install failed; apt-get update, then again", flush=True)
        subprocess.run(["apt-get", "update"], env=env, timeout=600, check=False)
        subprocess.run(install, env=env, timeout=600, check=False)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is not installed and apt-get could not install it")
    return found


@dataclass(frozen=True)
class WrkSettings:
    binary: str
    seconds: int
    warmup_seconds: int
    connections: int
    threads: int


def run_wrk(settings: WrkSettings, url: str, script: str, env: dict[str, str], *, seconds: int) -> WrkResult:
    # Every wrk invocation gets a run id of its own: its Lua counters start again from 1 (SignUp's usernames).
    env = {**env, "BENCH_RUN_ID": f"{env.get('BENCH_RUN_ID', 'b')}-{secrets.token_hex(3)}"}
    env["BENCH_WRK_THREADS"] = str(settings.threads)
    command = [
        settings.binary,
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(BENCH_DIR / script),
        url,
    ]
    completed = subprocess.run(
        command,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(
            f"wrk failed ({completed.returncode}): {' '.join(command)}\n{completed.stdout}{completed.stderr}"
        )
    return parse_wrk(completed.stdout)


def machine_cpu() -> tuple[float, float]:
    """CPU seconds of the whole machine so far, from /proc/stat: (in processes, in interrupts). The loopback
    traffic's TCP processing runs largely in softirq context, which is not charged to any process."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + steal) / tick, (irq + softirq) / tick


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def drive(
    wrk: WrkSettings, servers: list[Server], server: Server, endpoint: str, script: str, env: dict[str, str]
) -> WrkResult:
    """The measured run, started once every server is idle, with the CPU it took accounted for."""
    for each in servers:
        each.wait_idle()
    (busy_before, irq_before), servers_before = machine_cpu(), sum(x.cpu_seconds() for x in servers)
    wrk_before = children_cpu()
    started = time.monotonic()
    result = run_wrk(wrk, server.url + endpoint, script, env, seconds=wrk.seconds)
    elapsed = time.monotonic() - started
    busy, irq = machine_cpu()
    result.server_cores = (sum(x.cpu_seconds() for x in servers) - servers_before) / elapsed
    result.wrk_cores = (children_cpu() - wrk_before) / elapsed
    result.irq_cores = (irq - irq_before) / elapsed
    result.other_cores = max(0.0, (busy - busy_before) / elapsed - result.server_cores - result.wrk_cores)
    return result


def warm_up(
    wrk: WrkSettings, servers: list[Server], server: Server, endpoint: str, script: str, env: dict[str, str]
) -> None:
    if wrk.warmup_seconds > 0:
        for each in servers:
            each.wait_idle()
        run_wrk(wrk, server.url + endpoint, script, env, seconds=wrk.warmup_seconds)


def combine(results: list[WrkResult]) -> WrkResult:
    """Several rounds of one run as one: the median of each figure, errors added up, CPU averaged."""
    if len(results) == 1:
        return results[0]
    socket_errors = {kind: sum(r.socket_errors.get(kind, 0) for r in results) for kind in results[0].socket_errors}
    return WrkResult(
        requests=sum(r.requests for r in results),
        duration_s=sum(r.duration_s for r in results),
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        non_2xx=sum(r.non_2xx for r in results),
        socket_errors=socket_errors,
        output="\n".join(r.output for r in results),
        server_cores=statistics.fmean(r.server_cores for r in results),
        wrk_cores=statistics.fmean(r.wrk_cores for r in results),
        irq_cores=statistics.fmean(r.irq_cores for r in results),
        other_cores=statistics.fmean(r.other_cores for r in results),
        rounds=len(results),
        load_generator=results[0].load_generator,
        median_cpu_ms_per_request=statistics.median(r.cpu_ms_per_request for r in results),
        median_client_cpu_ms_per_request=statistics.median(r.client_cpu_ms_per_request for r in results),
    )


def progress(path: str, who: str, result: WrkResult) -> None:
    width = max(len(spec.name) for spec in PATHS)
    line = (
        f"   {path:<{width}} {who:<9} {result.rps:9.1f} req/s  p50 {result.p50_ms:8.2f} ms  p99 {result.p99_ms:8.2f} ms"
    )
    line += f"  cores: servers {result.server_cores:.2f} {result.load_generator} {result.wrk_cores:.2f}"
    line += f" irq {result.irq_cores:.2f} other {result.other_cores:.2f}"
    line += f"  server CPU {result.cpu_ms_per_request:.2f} ms/req"
    if result.load_generator != "wrk":
        line += f"  client CPU {result.client_cpu_ms_per_request:.2f} ms/req"
    print(line + f"  errors {result.error_text()}", flush=True)


# --- USER_SRP_AUTH: bench/srp_load.py --------------------------------------------------------------------------


def drive_srp(wrk: WrkSettings, servers: list[Server], url: str, client_id: str, pool_id: str) -> WrkResult:
    """One srp_load run (its warm-up, then the measured seconds), started once every server is idle, with the CPU
    of the measured seconds accounted for as drive() does for wrk. The load generator runs in this process, so
    its CPU is this process's."""
    import srp_load

    config = srp_load.LoadConfig(
        url=url,
        client_id=client_id,
        pool_id=pool_id,
        username=USERNAME,
        password=PASSWORD,
        concurrency=wrk.connections,
        seconds=float(wrk.seconds),
        warmup=float(wrk.warmup_seconds),
        timeout=float(WRK_TIMEOUT.removesuffix("s")),
    )
    return drive_python(
        servers, "srp_load", lambda start, end: srp_load.run_load(config, on_measure_start=start, on_measure_end=end)
    )


def drive_code(wrk: WrkSettings, servers: list[Server], target: Target) -> WrkResult:
    """One code_load run against ``target`` (authorize with its cookie, then the exchange at its token endpoint)."""
    import code_load

    config = code_load_config(target, wrk)
    return drive_python(
        servers, "code_load", lambda start, end: code_load.run_load(config, on_measure_start=start, on_measure_end=end)
    )


def code_load_config(target: Target, wrk: WrkSettings | None = None) -> Any:
    import code_load

    return code_load.FlowConfig(
        authorize_url=target.url,
        token_url=target.server.url + target.token_endpoint,
        client_id=target.client_id,
        redirect_uri=CALLBACK,
        cookie=target.cookie,
        concurrency=wrk.connections if wrk else 1,
        seconds=float(wrk.seconds) if wrk else 1.0,
        warmup=float(wrk.warmup_seconds) if wrk else 0.0,
        timeout=float(WRK_TIMEOUT.removesuffix("s")),
    )


def check_code(target: Target) -> None:
    """One code flow through code_load's own client before a measured run, so a mismatch fails loudly here."""
    import asyncio

    import code_load
    import srp_load

    try:
        asyncio.run(code_load.flow_once(code_load_config(target)))
    except srp_load.SignInError as exc:
        raise BenchError(f"a code flow at {target.url} failed: {exc}") from exc


def drive_python(
    servers: list[Server],
    generator: str,
    start_load: Callable[[Callable[[], None], Callable[[], None]], Coroutine[Any, Any, Any]],
) -> WrkResult:
    """A load generator that runs in this process (srp_load, code_load: each returns srp_load.LoadResult), started
    once every server is idle, with the CPU of its measured seconds accounted for as drive() does for wrk."""
    import asyncio

    for each in servers:
        each.wait_idle()
    marks: dict[str, tuple[float, float, float]] = {}

    def mark(name: str) -> Callable[[], None]:
        def take() -> None:
            busy, irq = machine_cpu()
            marks[name] = (busy, irq, sum(x.cpu_seconds() for x in servers))

        return take

    load = asyncio.run(start_load(mark("start"), mark("end")))
    (busy_before, irq_before, servers_before), (busy, irq, servers_after) = marks["start"], marks["end"]
    http = {kind: count for kind, count in load.errors.items() if kind.startswith("http-")}
    result = WrkResult(
        requests=load.sign_ins,
        duration_s=load.seconds,
        rps=load.sign_ins_per_s,
        p50_ms=load.p50_ms if load.sign_ins else math.inf,
        p99_ms=load.p99_ms if load.sign_ins else math.inf,
        non_2xx=sum(http.values()),
        socket_errors={kind: count for kind, count in load.errors.items() if kind not in http},
        output=json.dumps(load.summary()),
        load_generator=generator,
    )
    result.server_cores = (servers_after - servers_before) / load.seconds
    result.wrk_cores = load.client_cores
    result.irq_cores = (irq - irq_before) / load.seconds
    result.other_cores = max(0.0, (busy - busy_before) / load.seconds - result.server_cores - result.wrk_cores)
    return result


def check_srp(url: str, client_id: str, pool_id: str) -> None:
    """One SRP sign-in through srp_load's own client before a measured run, so a mismatch fails loudly here."""
    import asyncio

    import srp_load

    config = srp_load.LoadConfig(url=url, client_id=client_id, pool_id=pool_id, username=USERNAME, password=PASSWORD)
    try:
        asyncio.run(srp_load.sign_in_once(config))
    except srp_load.SignInError as exc:
        raise BenchError(f"an SRP sign-in at {url} failed: {exc}") from exc


# --- processes ---------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A server process (and the worker processes it forks), started in a session of its own so that stopping
    it reaches every process it made, and Ctrl-C in the terminal reaches only us."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path, port: int) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited early:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer /health within {START_TIMEOUT_S:.0f}s:\n{self.log_text()}")

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process in this server's process group (Linux /proc)."""
        if self.process is None:
            return 0.0
        total_ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            # After "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
            if len(fields) > 12 and int(fields[2]) == self.process.pid:
                total_ticks += int(fields[11]) + int(fields[12])
        return total_ticks / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, *, busy_fraction: float = 0.05, interval: float = 0.25, limit: float = 20.0) -> None:
        """Wait (at most ``limit`` s) until the server stops burning CPU: when wrk stops, requests it had in
        flight (a queue of Argon2 jobs, say) are still being worked off and would steal CPU from the next run."""
        deadline = time.monotonic() + limit
        before = self.cpu_seconds()
        quiet = 0
        while quiet < 2 and time.monotonic() < deadline:
            time.sleep(interval)
            now = self.cpu_seconds()
            quiet = quiet + 1 if now - before < busy_fraction * interval else 0
            before = now

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        if process.poll() is None:
            process.terminate()  # the parent forwards SIGTERM to its workers and waits for them
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        # Any worker left behind is still in the session (= process group) this Popen created.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, 0)
            time.sleep(0.5)
            os.killpg(process.pid, signal.SIGKILL)


def gatehouse_server(workers: int, data_dir: Path, log_dir: Path, database_url: str | None = None) -> Server:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--workers",
        str(workers),
    ]
    # Throughput is the measure here: one address and one app client send thousands of calls a second, which
    # the default rate limits (server.rate_limits) would rightly refuse. Turn them off for the benchmark.
    log_dir.mkdir(parents=True, exist_ok=True)
    config = log_dir / "gatehouse-bench.yaml"
    config.write_text("version: 1\nserver:\n  rate_limits:\n    per_client: {rate: 0}\n    per_address: {rate: 0}\n")
    command += ["--config", str(config)]
    env = {
        **os.environ,
        "GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID,
        "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    if database_url is not None:
        env["GATEHOUSE_DATABASE_URL"] = database_url
    return Server(f"gatehouse (workers={workers})", command, env, log_dir / f"gatehouse-w{workers}.log", port)


def ceiling_server(workers: int, log_dir: Path) -> Server:
    port = free_port()
    command = [
        sys.executable,
        str(BENCH_DIR / "ceiling.py"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return Server(f"ceiling (workers={workers})", command, dict(os.environ), log_dir / f"ceiling-w{workers}.log", port)


# --- seeding -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    pool_id: str
    client_id: str
    access_token: str
    refresh_token: str
    # A second pool with TOTP MFA enabled and OPTIONAL, the same user (who has no MFA), and its client.
    mfa_pool_id: str = ""
    mfa_client_id: str = ""
    # For the /oauth2 paths: a client_credentials client (HTTP Basic value) and an access token with openid.
    machine_basic: str = ""
    openid_access_token: str = ""
    # For the code flow: the code client and the hosted UI's single sign-on cookie ("name=value").
    web_client_id: str = ""
    sso_cookie: str = ""
    # The hosted sign-in page of one stored authorization request: /{UserPoolId}/login?rid=...
    login_path: str = ""
    # For identity pools: the user's ID token, the pool's name as a login provider, the identity pool and the
    # user's identity in it.
    id_token: str = ""
    # A file of distinct ID tokens of that user, one per line, for the identity row (see seed_identity).
    login_provider: str = ""
    identity_pool_id: str = ""
    identity_id: str = ""
    # Files of distinct tokens of that user, one per line, for the rows that present a token (see
    # seed_token_files): ID tokens, access tokens, access tokens with openid; and the code client's refresh token.
    id_tokens_file: str = ""
    access_tokens_file: str = ""
    openid_access_tokens_file: str = ""
    web_refresh_token: str = ""


def _boto3_client(url: str, *, signed: bool) -> Any:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    retries: Any = {"max_attempts": 1, "mode": "standard"}
    config = Config(retries=retries) if signed else Config(retries=retries, signature_version=UNSIGNED)
    return boto3.client(
        "cognito-idp",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=ADMIN_KEY_ID,
        aws_secret_access_key=ADMIN_SECRET,
        config=config,
    )


def _seed_pool(admin: Any, name: str) -> tuple[str, str]:
    """A pool, a public client allowed USER_PASSWORD_AUTH, USER_SRP_AUTH and refresh, and a confirmed user."""
    pool_id = admin.create_user_pool(PoolName=name)["UserPool"]["Id"]
    client_id = admin.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=name,
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    admin.admin_create_user(UserPoolId=pool_id, Username=USERNAME, MessageAction="SUPPRESS")
    admin.admin_set_user_password(UserPoolId=pool_id, Username=USERNAME, Password=PASSWORD, Permanent=True)
    return pool_id, client_id


def seed(url: str) -> Seed:
    """Two pools (plain; TOTP MFA enabled and OPTIONAL), each with a public client and a confirmed user without
    MFA; one sign-in, and each path once by an SDK."""
    from pycognito.aws_srp import AWSSRP

    admin = _boto3_client(url, signed=True)
    public = _boto3_client(url, signed=False)
    pool_id, client_id = _seed_pool(admin, "bench")
    mfa_pool_id, mfa_client_id = _seed_pool(admin, "bench-mfa")
    admin.set_user_pool_mfa_config(
        UserPoolId=mfa_pool_id, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="OPTIONAL"
    )
    signed_in = public.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD}
    )["AuthenticationResult"]
    seeded = Seed(
        pool_id,
        client_id,
        signed_in["AccessToken"],
        signed_in["RefreshToken"],
        mfa_pool_id,
        mfa_client_id,
        id_token=signed_in["IdToken"],
    )
    # Each path once by the SDK, so a broken seed fails here with the server's own words, not as wrk's error count.
    public.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": seeded.refresh_token}
    )
    public.get_user(AccessToken=seeded.access_token)
    # SRP by pycognito itself (boto3 underneath), independent of srp_load's client.
    srp_tokens = AWSSRP(USERNAME, PASSWORD, pool_id, client_id, client=public).authenticate_user()
    if not srp_tokens.get("AuthenticationResult", {}).get("AccessToken"):
        raise BenchError(f"USER_SRP_AUTH by pycognito gave no tokens: {srp_tokens}")
    # A user without MFA in an MFA OPTIONAL pool signs in with the password alone: tokens, no challenge.
    mfa_answer = public.initiate_auth(
        ClientId=mfa_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": USERNAME, "PASSWORD": PASSWORD},
    )
    if "AuthenticationResult" not in mfa_answer:
        raise BenchError(f"the MFA OPTIONAL pool challenged a user without MFA: {mfa_answer.get('ChallengeName')}")
    mfa_config = admin.get_user_pool_mfa_config(UserPoolId=mfa_pool_id)
    if mfa_config.get("MfaConfiguration") != "OPTIONAL" or not mfa_config.get("SoftwareTokenMfaConfiguration", {}).get(
        "Enabled"
    ):
        raise BenchError(f"the MFA pool is not TOTP-enabled and OPTIONAL: {mfa_config}")
    return seed_token_files(url, seed_identity(url, seed_oauth(url, admin, seeded)))


def seed_oauth(url: str, admin: Any, seeded: Seed) -> Seed:
    """A client_credentials client with a resource-server scope, and an openid access token got through the
    hosted UI (authorize, the sign-in form, the code exchange with PKCE), for the /oauth2 paths."""
    import base64
    import hashlib
    import html
    import urllib.parse

    import requests

    admin.create_resource_server(
        UserPoolId=seeded.pool_id,
        Identifier="https://bench.api",
        Name="bench",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "read"}],
    )
    machine = admin.create_user_pool_client(
        UserPoolId=seeded.pool_id,
        ClientName="bench-machine",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["https://bench.api/read"],
    )["UserPoolClient"]
    callback = CALLBACK
    web_client = admin.create_user_pool_client(
        UserPoolId=seeded.pool_id,
        ClientName="bench-web",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"],
        CallbackURLs=[callback],
    )["UserPoolClient"]["ClientId"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    http = requests.Session()
    query = urllib.parse.urlencode(
        {
            "client_id": web_client,
            "response_type": "code",
            "redirect_uri": callback,
            "scope": "openid email",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    login = http.get(f"{url}/oauth2/authorize?{query}", timeout=30)
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', login.text).group(1))  # type: ignore[union-attr]
    csrf = re.search(r'name="_csrf" value="([^"]+)"', login.text).group(1)  # type: ignore[union-attr]
    back = http.post(
        url + action,
        data={"_csrf": csrf, "username": USERNAME, "password": PASSWORD},
        allow_redirects=False,
        timeout=30,
    )
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(back.headers["Location"]).query)["code"][0]
    token = http.post(
        f"{url}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": web_client,
            "code": code,
            "redirect_uri": callback,
            "code_verifier": verifier,
        },
        timeout=30,
    )
    token.raise_for_status()
    basic = base64.b64encode(f"{machine['ClientId']}:{machine['ClientSecret']}".encode()).decode()
    cookie_name = f"gatehouse_sso_{seeded.pool_id}"
    sso = http.cookies.get(cookie_name)
    if not sso:
        raise BenchError(f"the hosted-UI sign-in set no {cookie_name} cookie")
    # A stored authorization request whose sign-in page is rendered for every GET (a browser without a session).
    fresh = requests.get(f"{url}/{seeded.pool_id}/oauth2/authorize?{query}", timeout=30)
    page = urllib.parse.urlsplit(fresh.url)
    if fresh.status_code != 200 or not page.path.endswith("/login") or "<form" not in fresh.text:
        raise BenchError(f"no sign-in page at {fresh.url}: {fresh.status_code} {fresh.text[:300]}")
    seeded = dataclasses.replace(
        seeded,
        machine_basic=basic,
        openid_access_token=token.json()["access_token"],
        web_refresh_token=token.json()["refresh_token"],
        web_client_id=web_client,
        sso_cookie=f"{cookie_name}={sso}",
        login_path=f"{page.path}?{page.query}",
    )
    # Each /oauth2 path once, so a broken seed fails here.
    for method, path, kwargs in (
        (
            "POST",
            "/oauth2/token",
            {
                "data": {
                    "grant_type": "refresh_token",
                    "client_id": seeded.client_id,
                    "refresh_token": seeded.refresh_token,
                }
            },
        ),
        (
            "POST",
            "/oauth2/token",
            {"data": {"grant_type": "client_credentials"}, "headers": {"Authorization": f"Basic {basic}"}},
        ),
        ("GET", "/oauth2/userInfo", {"headers": {"Authorization": f"Bearer {seeded.openid_access_token}"}}),
    ):
        answer = requests.request(method, url + path, timeout=30, **kwargs)  # type: ignore[arg-type]
        if answer.status_code != 200:
            raise BenchError(f"{method} {path} answered {answer.status_code}: {answer.text}")
    return seeded


def seed_identity(url: str, seeded: Seed) -> Seed:
    """An identity pool trusting the plain pool's public client, whose authenticated role's trust policy allows
    its identities (as the Cognito console writes it), and the user's identity in it; then GetId and
    GetCredentialsForIdentity once with boto3, unsigned as an app sends them."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    def client(service: str, *, signed: bool) -> Any:
        retries: Any = {"max_attempts": 1, "mode": "standard"}
        config = Config(retries=retries) if signed else Config(retries=retries, signature_version=UNSIGNED)
        return boto3.client(
            service,
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id=ADMIN_KEY_ID,
            aws_secret_access_key=ADMIN_SECRET,
            config=config,
        )

    # The pool's name as a login provider: its issuer without the scheme.
    provider = f"{url.split('://', 1)[1]}/{seeded.pool_id}"
    identities = client("cognito-identity", signed=True)
    identity_pool_id = identities.create_identity_pool(
        IdentityPoolName="bench",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": provider, "ClientId": seeded.client_id}],
    )["IdentityPoolId"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {"cognito-identity.amazonaws.com:aud": identity_pool_id},
                    "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
                },
            }
        ],
    }
    role = client("iam", signed=True).create_role(
        RoleName="bench-authenticated", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    identities.set_identity_pool_roles(IdentityPoolId=identity_pool_id, Roles={"authenticated": role})
    public = client("cognito-identity", signed=False)
    logins = {provider: seeded.id_token}
    identity_id = public.get_id(IdentityPoolId=identity_pool_id, Logins=logins)["IdentityId"]
    answer = public.get_credentials_for_identity(IdentityId=identity_id, Logins=logins)
    if not answer.get("Credentials", {}).get("SessionToken"):
        raise BenchError(f"GetCredentialsForIdentity gave no credentials: {answer}")
    return dataclasses.replace(
        seeded,
        login_provider=provider,
        identity_pool_id=identity_pool_id,
        identity_id=identity_id,
    )


# How many distinct tokens the rows that present a token (GetUser, oauth2/userInfo, the identity row) cycle
# through. Gatehouse remembers a verified token by its text (4,096 per process) and a checked identity login
# for 2 s; a row that repeated one token would measure those caches, not the signature check each request of a
# real load of many users pays. 12,000 tokens, cycled in order (each wrk thread its own share), come back only
# after the caches have let them go (and, at ~4,000 identity pairs a second, after ~3 s).
DISTINCT_TOKENS = 12_000
# How many sign-ins (sessions, each a token family) the ID and access tokens of those rows come from. Gatehouse
# keeps the token family and user of the sessions it served lately (10,000 per process, each checked against its
# user's change stamp on every call), as a real load's sessions come back again and again; tokens of one session
# only would make that a single entry.
DISTINCT_SESSIONS = 200
_TEMP_FILES: list[str] = []


def distinct_token_count() -> int:
    return int(os.environ.get("BENCH_DISTINCT_TOKENS", DISTINCT_TOKENS))


def distinct_session_count() -> int:
    return max(1, int(os.environ.get("BENCH_DISTINCT_SESSIONS", DISTINCT_SESSIONS)))


def _remove_temp_files() -> None:
    for path in _TEMP_FILES:
        with contextlib.suppress(OSError):
            os.unlink(path)


atexit.register(_remove_temp_files)


def _token_file(tokens: list[str], what: str) -> str:
    if len(set(tokens)) != len(tokens):
        raise BenchError(f"the {what} are not all distinct")
    handle, path = tempfile.mkstemp(prefix=f"gatehouse-bench-{what.replace(' ', '-')}-", suffix=".txt")
    with os.fdopen(handle, "w") as out:
        out.write("\n".join(tokens) + "\n")
    _TEMP_FILES.append(path)
    return path


async def _mint(
    url: str, path: str, bodies: list[bytes], headers: dict[str, str], pick: Callable[[dict[str, Any]], Any]
) -> list[Any]:
    """The answers of one POST per body (sign-ins, or refreshes: each answer has tokens of its own), 32 at a
    time."""
    import aiohttp

    found: list[Any] = []
    remaining = iter(bodies)
    async with aiohttp.ClientSession() as session:

        async def mint() -> None:
            for body in remaining:
                async with session.post(url + path, data=body, headers=headers) as response:
                    answer = await response.json(content_type=None)
                    if response.status != 200:
                        raise BenchError(f"POST {path} for the token rows: {response.status} {answer}")
                    found.append(pick(answer))

        await asyncio.gather(*(mint() for _ in range(32)))
    return found


def seed_token_files(url: str, seeded: Seed) -> Seed:
    """Distinct tokens of the one user for the rows that present one: ID and access tokens by REFRESH_TOKEN_AUTH
    (each refresh has its own ``jti``) from DISTINCT_SESSIONS sign-ins in turn, and access tokens with ``openid``
    from the code client's refresh token at /oauth2/token."""
    count = distinct_token_count()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
    }
    sign_in = json.dumps(
        {
            "ClientId": seeded.client_id,
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": USERNAME, "PASSWORD": PASSWORD},
        }
    ).encode()
    sessions = asyncio.run(
        _mint(
            url,
            "/",
            [sign_in] * (distinct_session_count() - 1),
            headers,
            lambda a: a["AuthenticationResult"]["RefreshToken"],
        )
    )
    refreshes = [
        json.dumps(
            {"ClientId": seeded.client_id, "AuthFlow": "REFRESH_TOKEN_AUTH", "AuthParameters": {"REFRESH_TOKEN": token}}
        ).encode()
        for token in [seeded.refresh_token, *sessions]
    ]
    pairs = asyncio.run(
        _mint(
            url,
            "/",
            [refreshes[i % len(refreshes)] for i in range(count)],
            headers,
            lambda a: (a["AuthenticationResult"]["IdToken"], a["AuthenticationResult"]["AccessToken"]),
        )
    )
    form = urllib.parse.urlencode(
        {"grant_type": "refresh_token", "client_id": seeded.web_client_id, "refresh_token": seeded.web_refresh_token}
    ).encode()
    openid = asyncio.run(
        _mint(
            url,
            "/oauth2/token",
            [form] * count,
            {"Content-Type": "application/x-www-form-urlencoded"},
            lambda a: a["access_token"],
        )
    )
    return dataclasses.replace(
        seeded,
        id_tokens_file=_token_file([p[0] for p in pairs], "id tokens"),
        access_tokens_file=_token_file([p[1] for p in pairs], "access tokens"),
        openid_access_tokens_file=_token_file(openid, "openid access tokens"),
    )


def lua_env(seeded: Seed, run_id: str, endpoint: str, client_id: str | None = None) -> dict[str, str]:
    """What the Lua scripts read. The ceiling probes get the very same requests (they parse and ignore them)."""
    return {
        "BENCH_PATH": endpoint,
        "BENCH_RUN_ID": run_id,
        "BENCH_USERNAME": USERNAME,
        "BENCH_PASSWORD": PASSWORD,
        "BENCH_CLIENT_ID": client_id or seeded.client_id,
        "BENCH_ACCESS_TOKEN": seeded.access_token,
        "BENCH_REFRESH_TOKEN": seeded.refresh_token,
        "BENCH_MACHINE_BASIC": seeded.machine_basic,
        "BENCH_OPENID_ACCESS_TOKEN": seeded.openid_access_token,
        "BENCH_IDENTITY_POOL_ID": seeded.identity_pool_id,
        "BENCH_IDENTITY_ID": seeded.identity_id,
        "BENCH_LOGIN_PROVIDER": seeded.login_provider,
        "BENCH_ID_TOKEN": seeded.id_token,
        "BENCH_ID_TOKENS_FILE": seeded.id_tokens_file,
        "BENCH_ACCESS_TOKENS_FILE": seeded.access_tokens_file,
        "BENCH_OPENID_ACCESS_TOKENS_FILE": seeded.openid_access_tokens_file,
    }


def check_ceiling(server: Server, endpoint: str) -> None:
    request = urllib.request.Request(
        server.url + endpoint,
        data=b"{}",
        method="POST",
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET_PREFIX + "Probe"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            # Every probe answers JSON but the hello-world page.
            if "json" in response.headers.get("Content-Type", ""):
                json.loads(body)
    except (urllib.error.URLError, ValueError) as exc:
        raise BenchError(f"ceiling {endpoint} does not answer: {exc}\n{server.log_text()}") from exc


# --- in-process figures ------------------------------------------------------------------------------------------


def in_process_figures(loop_seconds: float = 2.0) -> dict[str, float]:
    """RS256 signs and verifies per second, Argon2id verifies per second, and SRP's two server steps per second
    (gateway.services.srp: start_srp, verify_password_claim), each on one thread."""
    import ceiling  # bench/ceiling.py: the same key size, message shape and Argon2 parameters
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from gateway.services import srp

    material = ceiling.prepare()
    probe = ceiling.Probe(material)

    def per_second(operation: Any, max_iterations: int) -> float:
        operation()
        count = 0
        started = time.perf_counter()
        deadline = started + loop_seconds
        while count < max_iterations and time.perf_counter() < deadline:
            operation()
            count += 1
        return count / (time.perf_counter() - started)

    def sign() -> None:
        probe.private.sign(probe.access_input, padding.PKCS1v15(), hashes.SHA256())

    def verify() -> None:
        probe.public.verify(probe.token_signature, probe.token_input, padding.PKCS1v15(), hashes.SHA256())

    challenge = srp.start_srp(material.srp_verifier)
    client_a = f"{pow(2, secrets.randbits(256), int(srp.N_HEX, 16)):x}"
    timestamp = srp.format_srp_timestamp(datetime.datetime.now(datetime.UTC))

    def srp_start() -> None:
        srp.start_srp(material.srp_verifier)

    def srp_verify() -> None:
        # A wrong signature costs the same as a right one: the comparison is the last, constant-time step.
        srp.verify_password_claim(
            pool_id=ceiling.SRP_POOL_ID,
            username=ceiling.SRP_USERNAME,
            verifier=material.srp_verifier,
            challenge=challenge,
            srp_a_hex=client_a,
            timestamp=timestamp,
            claim_signature_b64="AAAA",
        )

    return {
        "rs256_sign_per_s": per_second(sign, 1_000_000),
        "rs256_verify_per_s": per_second(verify, 10_000_000),
        "argon2id_verify_per_s": per_second(probe.verify_password, 100_000),
        "srp_start_per_s": per_second(srp_start, 1_000_000),
        "srp_verify_per_s": per_second(srp_verify, 1_000_000),
        "srp_gmpy2": float(srp.HAVE_GMPY2),
        "argon2_memory_kib": float(material.cost.memory_kib),
        "argon2_time_cost": float(material.cost.time_cost),
        "argon2_parallelism": float(material.cost.parallelism),
    }


# --- the run -----------------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    path: str
    workers: int
    gatehouse: WrkResult
    ceiling: WrkResult | None
    # With --rounds > 1: each round's Gatehouse run over the ceiling (or plain) run right after it, by req/s
    # and by CPU per request. Their medians are the row's ratios: a change in the machine's load between
    # rounds moves both runs of a round alike and cancels out, which a ratio of two medians would not do.
    round_ratios: tuple[float, ...] = ()
    round_cpu_ratios: tuple[float, ...] = ()


@dataclass
class Report:
    started: str
    machine: dict[str, Any]
    options: dict[str, Any]
    in_process: dict[str, float] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)


def measure_worker_count(
    workers: int,
    paths: tuple[PathSpec, ...],
    wrk: WrkSettings,
    rounds: int,
    scratch: Path,
    report: Report,
    postgres: Any = None,
) -> None:
    run_id = f"b{secrets.token_hex(4)}w{workers}"
    data_dir = scratch / f"data-w{workers}"
    # --postgres: a fresh database of the throwaway PostgreSQL server for each worker count, as the data dir is.
    database_url = postgres.create_database(run_id) if postgres is not None else None
    with contextlib.ExitStack() as stack:
        gatehouse = gatehouse_server(workers, data_dir, scratch, database_url)
        stack.callback(gatehouse.stop)
        ceiling = ceiling_server(workers, scratch)
        stack.callback(ceiling.stop)
        print(f"\n== workers={workers}: starting gatehouse and the ceiling probes", flush=True)
        gatehouse.start()
        ceiling.start()
        servers = [gatehouse, ceiling]
        seeded = seed(gatehouse.url)
        print(
            f"   seeded pool {seeded.pool_id}, client {seeded.client_id}; MFA OPTIONAL pool {seeded.mfa_pool_id}, "
            f"client {seeded.mfa_client_id}",
            flush=True,
        )
        for spec in paths:
            # Each Gatehouse run is followed at once by its ceiling run (or, for the MFA row, by the plain pool's
            # run), so both see the same machine.
            targets = run_targets(spec, gatehouse, ceiling, seeded)
            for target in targets:
                if spec.driver == "srp_load":
                    check_srp(target.url, target.client_id, target.pool_id)
                elif spec.driver == "code_load":
                    check_code(target)
                elif target.who == "ceiling":
                    check_ceiling(ceiling, target.endpoint)
            if spec.script is not None:
                for target in targets:
                    env = lua_env(seeded, run_id, target.endpoint, target.client_id)
                    warm_up(wrk, servers, target.server, target.endpoint, spec.script, env)
            results: list[list[WrkResult]] = [[] for _ in targets]
            for _ in range(rounds):
                for target, runs in zip(targets, results, strict=True):
                    if spec.driver == "srp_load":
                        # srp_load warms up within each run (its connections and a stay open).
                        runs.append(drive_srp(wrk, servers, target.url, target.client_id, target.pool_id))
                    elif spec.driver == "code_load":
                        runs.append(drive_code(wrk, servers, target))
                    else:
                        assert spec.script is not None
                        env = lua_env(seeded, run_id, target.endpoint, target.client_id)
                        runs.append(drive(wrk, servers, target.server, target.endpoint, spec.script, env))
                    progress(spec.name, target.who, runs[-1])
            combined = [combine(runs) for runs in results]
            report.measurements.append(
                Measurement(
                    spec.name,
                    workers,
                    combined[0],
                    combined[1] if len(combined) > 1 else None,
                    *paired_ratios(results),
                )
            )


def paired_ratios(results: list[list[WrkResult]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per round, Gatehouse over its comparison run: by req/s, and by CPU per request (comparison over
    Gatehouse, as the CPU ratio reads). Empty when a row has one target or one round."""
    if len(results) < 2 or len(results[0]) < 2:
        return (), ()
    pairs = list(zip(results[0], results[1], strict=True))
    by_rps = tuple(g.rps / c.rps for g, c in pairs if c.rps > 0)
    by_cpu = tuple(
        c.cpu_ms_per_request / g.cpu_ms_per_request
        for g, c in pairs
        if 0 < g.cpu_ms_per_request < math.inf and c.cpu_ms_per_request < math.inf
    )
    return by_rps, by_cpu


@dataclass(frozen=True)
class Target:
    """One side of a row: Gatehouse, or what it is compared with (the ceiling probe, or the plain pool)."""

    who: str
    server: Server
    endpoint: str
    client_id: str
    pool_id: str
    # The code flow's second step (its token endpoint on the same server) and the SSO cookie its first sends.
    token_endpoint: str = ""
    cookie: str = ""

    @property
    def url(self) -> str:
        return self.server.url + self.endpoint


def run_targets(spec: PathSpec, gatehouse: Server, ceiling: Server, seeded: Seed) -> list[Target]:
    import ceiling as probe

    if spec.vs_plain_pool:
        return [
            Target("gatehouse", gatehouse, spec.gatehouse_endpoint, seeded.mfa_client_id, seeded.mfa_pool_id),
            Target("plain", gatehouse, spec.gatehouse_endpoint, seeded.client_id, seeded.pool_id),
        ]
    if spec.driver == "code_load":
        assert spec.ceiling_endpoint is not None
        return [
            Target(
                "gatehouse",
                gatehouse,
                spec.gatehouse_endpoint.replace("{pool}", seeded.pool_id),
                seeded.web_client_id,
                seeded.pool_id,
                token_endpoint="/oauth2/token",
                cookie=seeded.sso_cookie,
            ),
            Target(
                "ceiling",
                ceiling,
                spec.ceiling_endpoint,
                seeded.web_client_id,
                seeded.pool_id,
                token_endpoint="/token_code",
                cookie=f"{probe.SSO_COOKIE_NAME}={probe.SSO_COOKIE_VALUE}",
            ),
        ]
    endpoint = seeded.login_path if spec.name == LOGIN_PATH else spec.gatehouse_endpoint
    targets = [Target("gatehouse", gatehouse, endpoint, seeded.client_id, seeded.pool_id)]
    if spec.ceiling_endpoint is not None:
        # The ceiling's SRP probe has a verifier of its own, derived under its own pool id.
        targets.append(Target("ceiling", ceiling, spec.ceiling_endpoint, seeded.client_id, probe.SRP_POOL_ID))
    return targets


# --- the table ---------------------------------------------------------------------------------------------------


@dataclass
class Row:
    path: str
    workers: str
    rps: str
    p50: str
    p99: str
    p99_over_p50: str
    ceiling_rps: str
    ratio: str
    cpu_ratio: str
    target: str
    verdict: str
    errors: str
    passed: bool
    valid: bool
    values: dict[str, float | None]


def judge(measurement: Measurement, spec: PathSpec) -> Row:
    g, c = measurement.gatehouse, measurement.ceiling
    tail = g.p99_ms / g.p50_ms if g.p50_ms > 0 else math.inf
    ratio = g.rps / c.rps if c is not None and c.rps > 0 else None
    # The same comparison by server CPU per answered request, which other load on the machine disturbs far less.
    cpu_ratio = (
        c.cpu_ms_per_request / g.cpu_ms_per_request
        if c is not None and 0 < g.cpu_ms_per_request < math.inf and c.cpu_ms_per_request < math.inf
        else None
    )
    if measurement.round_ratios:
        ratio = statistics.median(measurement.round_ratios)
    if measurement.round_cpu_ratios:
        cpu_ratio = statistics.median(measurement.round_cpu_ratios)
    failed: list[str] = []
    targets: list[str] = []
    if spec.min_ratio is not None:
        targets.append(f">={spec.min_ratio:.2g}x " + ("plain" if spec.vs_plain_pool else "ceil"))
        if ratio is None or ratio < spec.min_ratio:
            failed.append("ratio")
    targets.append(f"p99<={P99_OVER_P50_MAX:.0f}x p50")
    if tail > P99_OVER_P50_MAX:
        failed.append("p99")
    other = "plain" if spec.vs_plain_pool else "ceil"
    errors = g.error_text() if c is None else f"{g.error_text()} / {other} {c.error_text()}"
    valid = g.errors == 0 and (c is None or c.errors == 0)
    verdict = "pass" if not failed else "FAIL(" + ",".join(failed) + ")"
    if not valid:
        verdict = "INVALID:errors"
    return Row(
        path=measurement.path,
        workers=str(measurement.workers),
        rps=f"{g.rps:.1f}",
        p50=f"{g.p50_ms:.2f}",
        p99=f"{g.p99_ms:.2f}",
        p99_over_p50=f"{tail:.2f}",
        ceiling_rps=f"{c.rps:.1f}" if c is not None else "-",
        ratio=f"{ratio:.2f}x" if ratio is not None else "-",
        cpu_ratio=f"{cpu_ratio:.2f}x" if cpu_ratio is not None else "-",
        target="; ".join(targets),
        verdict=verdict,
        errors=errors,
        passed=valid and not failed,
        valid=valid,
        values={
            "rps": g.rps,
            "p50_ms": g.p50_ms,
            "p99_ms": g.p99_ms,
            "p99_over_p50": tail,
            "ceiling_rps": c.rps if c else None,
            "ratio": ratio,
            "cpu_ratio": cpu_ratio,
        },
    )


def scaling_row(report: Report) -> Row | None:
    by_workers = {m.workers: m for m in report.measurements if m.path == SCALING_PATH}
    one, two = by_workers.get(1), by_workers.get(2)
    if one is None or two is None:
        return None
    ratio = two.gatehouse.rps / one.gatehouse.rps if one.gatehouse.rps > 0 else 0.0
    ceiling_ratio = None
    if one.ceiling is not None and two.ceiling is not None and one.ceiling.rps > 0:
        ceiling_ratio = two.ceiling.rps / one.ceiling.rps
    valid = one.gatehouse.errors == 0 and two.gatehouse.errors == 0
    passed = valid and ratio >= SCALING_MIN
    return Row(
        path=f"{SCALING_PATH} scaling",
        workers="2 vs 1",
        rps=f"{two.gatehouse.rps:.1f}/{one.gatehouse.rps:.1f}",
        p50="-",
        p99="-",
        p99_over_p50="-",
        ceiling_rps=f"{ceiling_ratio:.2f}x" if ceiling_ratio is not None else "-",
        ratio=f"{ratio:.2f}x",
        cpu_ratio="-",
        target=f">={SCALING_MIN:.1f}x workers=1",
        verdict=("pass" if passed else "FAIL") if valid else "INVALID:errors",
        errors="0" if valid else "see rows above",
        passed=passed,
        valid=valid,
        values={"ratio": ratio, "ceiling_ratio": ceiling_ratio},
    )


HEADERS = (
    "path",
    "workers",
    "req/s",
    "p50 ms",
    "p99 ms",
    "p99/p50",
    "ceiling/plain req/s",
    "ratio",
    "CPU ratio",
    "target",
    "pass/FAIL",
    "errors (gatehouse / ceiling or plain)",
)


def render(rows: list[Row]) -> str:
    cells = [list(HEADERS)] + [
        [
            r.path,
            r.workers,
            r.rps,
            r.p50,
            r.p99,
            r.p99_over_p50,
            r.ceiling_rps,
            r.ratio,
            r.cpu_ratio,
            r.target,
            r.verdict,
            r.errors,
        ]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": list(os.getloadavg()),
    }
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["wrk"] = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10).stdout.split(
            "\n"
        )[0]
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    return info


@contextlib.contextmanager
def interrupts_unwind() -> Iterator[None]:
    """Ctrl-C and SIGTERM both unwind as KeyboardInterrupt, so the servers are stopped either way (SIGINT too
    when the shell started us with it ignored, as it does for a background job)."""

    def handler(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old_handler in previous.items():
            signal.signal(sig, old_handler)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Gatehouse throughput benchmark (prints figures; not a test).")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured wrk seconds per path (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk keep-alive connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="worker counts to run every path at (default 1 2); workers 1 and 2 always run REFRESH_TOKEN_AUTH",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measured runs per path, Gatehouse and its ceiling alternating; the median is reported (default 1)",
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="discarded wrk seconds before each run (default 1)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json", help="where to write the JSON")
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=[spec.name for spec in PATHS],
        default=[spec.name for spec in PATHS],
        metavar="PATH",
        help="the rows to run (default: all): " + ", ".join(spec.name for spec in PATHS),
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="run Gatehouse on a throwaway local PostgreSQL server instead of SQLite (the postgres extra)",
    )
    args = parser.parse_args(argv)
    if (
        args.seconds <= 0
        or args.rounds < 1
        or args.connections < 1
        or args.threads < 1
        or any(w < 1 for w in args.workers)
    ):
        parser.error("--seconds, --connections, --threads and --workers must be positive")
    if args.connections < args.threads:
        parser.error("wrk needs at least one connection per thread")
    return args


def run(args: argparse.Namespace) -> Report:
    wrk = WrkSettings(
        binary=ensure_wrk(),
        seconds=max(1, math.ceil(args.seconds)),
        warmup_seconds=math.ceil(args.warmup) if args.warmup > 0 else 0,
        connections=args.connections,
        threads=args.threads,
    )
    report = Report(
        started=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        machine=machine_info(),
        options={
            "seconds": wrk.seconds,
            "warmup_seconds": wrk.warmup_seconds,
            "connections": wrk.connections,
            "threads": wrk.threads,
            "workers": args.workers,
            "rounds": args.rounds,
            "wrk_timeout": WRK_TIMEOUT,
            "paths": args.paths,
            "store": "postgresql" if args.postgres else "sqlite",
        },
    )
    print(f"machine: {report.machine}", flush=True)
    print("in-process, one thread, 2 s each: RS256 sign, RS256 verify, Argon2id verify, SRP steps ...", flush=True)
    report.in_process = in_process_figures()
    if STS_PATH in args.paths:
        print(f"in-process, one thread, {wrk.seconds} s: {STS_PATH} (bench/sts_verify.py) ...", flush=True)
        report.in_process["sts_verify_per_s"] = sts_verify_per_second(float(wrk.seconds))
    selected = tuple(spec for spec in PATHS if spec.name in args.paths and spec.driver != "in_process")
    # Workers 1 and 2 are needed for the scaling row, when its path is among those asked for.
    worker_counts = sorted(set(args.workers) | ({1, 2} if SCALING_PATH in args.paths else set()))
    with tempfile.TemporaryDirectory(prefix="gatehouse-bench-") as scratch, contextlib.ExitStack() as stack:
        postgres = None
        if args.postgres:
            # The tests' throwaway PostgreSQL server (Debian's binaries, durability off: tests/postgres_server.py).
            from tests.postgres_server import PostgresServer

            postgres = stack.enter_context(PostgresServer())
            print("store: PostgreSQL (a throwaway local server; its own CPU is the 'other' column)", flush=True)
        for workers in worker_counts:
            paths = selected if workers in args.workers else tuple(p for p in selected if p.name == SCALING_PATH)
            if not paths:
                continue
            measure_worker_count(workers, paths, wrk, args.rounds, Path(scratch), report, postgres)
    return report


def sts_verify_per_second(seconds: float) -> float:
    """bench/sts_verify.py's figure: SigV4 verifications of requests signed with temporary credentials, with the
    role's policy evaluated, per second on one thread (its audit events silenced, as its main() does)."""
    import asyncio
    import logging

    import structlog
    import sts_verify

    # Silenced for the measurement only: the process's own logging (a test run's, say) is left as it was.
    previous = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        return asyncio.run(sts_verify.run(seconds, 1000))
    finally:
        structlog.configure(**previous)


def sts_row(report: Report) -> Row | None:
    rate = report.in_process.get("sts_verify_per_s")
    if rate is None:
        return None
    passed = rate >= STS_MIN_PER_SECOND
    return Row(
        path=STS_PATH,
        workers="in-process",
        rps=f"{rate:.1f}",
        p50="-",
        p99="-",
        p99_over_p50="-",
        ceiling_rps="-",
        ratio="-",
        cpu_ratio="-",
        target=f">={STS_MIN_PER_SECOND:.0f}/s per core",
        verdict="pass" if passed else "FAIL",
        errors="0",
        passed=passed,
        valid=True,
        values={"rps": rate},
    )


def summarise(report: Report) -> tuple[list[Row], str]:
    specs = {spec.name: spec for spec in PATHS}
    order = {spec.name: index for index, spec in enumerate(PATHS)}
    measurements = sorted(report.measurements, key=lambda m: (order[m.path], m.workers))
    rows = [judge(m, specs[m.path]) for m in measurements]
    scaling = scaling_row(report)
    if scaling is not None:
        rows.append(scaling)
    sts = sts_row(report)
    if sts is not None:
        rows.append(sts)
    figures = report.in_process
    lines = [
        "",
        f"in-process, one core: RS256 (2048-bit) sign {figures['rs256_sign_per_s']:.0f}/s, "
        f"verify {figures['rs256_verify_per_s']:.0f}/s; Argon2id verify "
        f"(m={figures['argon2_memory_kib']:.0f} KiB, t={figures['argon2_time_cost']:.0f}, "
        f"p={figures['argon2_parallelism']:.0f}) {figures['argon2id_verify_per_s']:.1f}/s; SRP (3072-bit, "
        f"{'gmpy2' if figures['srp_gmpy2'] else 'Python pow'}) B {figures['srp_start_per_s']:.0f}/s, "
        f"proof check {figures['srp_verify_per_s']:.0f}/s",
        f"wrk: {report.options['threads']} threads, {report.options['connections']} connections, "
        f"{report.options['seconds']} s per run after {report.options['warmup_seconds']} s warm-up, --latency, "
        f"timeout {WRK_TIMEOUT}; machine: {report.machine.get('cpu_count')} CPUs, "
        f"load at start {report.machine['loadavg_at_start'][0]:.2f}",
        "",
        render(rows),
    ]
    runs = [
        (f"{m.path} {who} workers={m.workers}", result)
        for m in report.measurements
        for who, result in (("gatehouse", m.gatehouse), ("plain" if m.path == MFA_PATH else "ceiling", m.ceiling))
        if result is not None
    ]
    noisy = [(label, result.other_cores) for label, result in runs if result.other_cores > NOISY_OTHER_CORES]
    if noisy:
        worst_label, worst_cores = max(noisy, key=lambda item: item[1])
        lines += [
            "",
            f"note: other processes on this machine used more than {NOISY_OTHER_CORES:.2f} cores during "
            f"{len(noisy)} of {len(runs)} runs (worst: {worst_cores:.2f} cores, {worst_label}); those figures carry "
            "that noise (see the per-run 'other' cores above; --rounds 3 takes medians).",
        ]
    for m in measurements:
        if m.gatehouse.load_generator == "wrk" or m.ceiling is None:
            continue
        g, c = m.gatehouse, m.ceiling
        lines += [
            "",
            f"{m.path} workers={m.workers}: the load generator's ({g.load_generator}) own CPU per sign-in or flow "
            f"{g.client_cpu_ms_per_request:.2f}"
            f" ms (gatehouse run) / {c.client_cpu_ms_per_request:.2f} ms (ceiling run), {g.wrk_cores:.2f} / "
            f"{c.wrk_cores:.2f} cores; server CPU per sign-in or flow {g.cpu_ms_per_request:.2f} ms / "
            f"{c.cpu_ms_per_request:.2f} ms (ceiling/gatehouse {c.cpu_ms_per_request / g.cpu_ms_per_request:.2f}x).",
        ]
    invalid = [r for r in rows if not r.valid]
    if invalid:
        banner = "!" * 100
        lines += [
            "",
            banner,
            "!! ERRORS DURING THE RUN: wrk counted non-2xx responses or socket errors on "
            + ", ".join(f"{r.path} (workers={r.workers})" for r in invalid),
            "!! Those figures are MEANINGLESS (errors are cheap to serve). See the server logs / latest.json.",
            banner,
        ]
    return rows, "\n".join(lines)


def write_json(report: Report, rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started": report.started,
        "machine": report.machine,
        "options": report.options,
        "in_process": report.in_process,
        "measurements": [
            {
                **asdict(m),
                "gatehouse_cpu_ms_per_request": m.gatehouse.cpu_ms_per_request,
                "ceiling_cpu_ms_per_request": m.ceiling.cpu_ms_per_request if m.ceiling else None,
                "gatehouse_client_cpu_ms_per_request": m.gatehouse.client_cpu_ms_per_request,
                "ceiling_client_cpu_ms_per_request": m.ceiling.client_cpu_ms_per_request if m.ceiling else None,
            }
            for m in report.measurements
        ],
        "table": [asdict(r) for r in rows],
        "all_valid": all(r.valid for r in rows),
        "all_passed": all(r.passed for r in rows),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with interrupts_unwind():
            report = run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped", file=sys.stderr)
        return 130
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        print(f"\nthe benchmark could not run: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # boto3 errors from seeding, and anything else that stops the run
        print(f"\nthe benchmark could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    rows, text = summarise(report)
    print(text)
    write_json(report, rows, args.output)
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
