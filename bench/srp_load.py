"""Load generator for Cognito's SRP sign-in (USER_SRP_AUTH answered by PASSWORD_VERIFIER), which wrk's Lua cannot
drive (3072-bit integers).

One process, one asyncio loop, ``--concurrency`` sign-in loops (64 by default), each with a keep-alive connection
of its own (an aiohttp ``ClientSession`` whose connector holds one connection): a sign-in's two requests always go
over the same connection, so they reach the same worker process of a server that forks workers (the ceiling
probe keeps its SRP sessions in process memory, as any single-process server could). Each sign-in is:

1. ``InitiateAuth`` with ``AuthFlow=USER_SRP_AUTH`` and ``AuthParameters={USERNAME, SRP_A}``; the answer must be
   the ``PASSWORD_VERIFIER`` challenge with ``SALT``, ``SRP_B``, ``SECRET_BLOCK`` and ``USER_ID_FOR_SRP``;
2. ``RespondToAuthChallenge`` with ``PASSWORD_CLAIM_SECRET_BLOCK``, ``PASSWORD_CLAIM_SIGNATURE`` and ``TIMESTAMP``;
   the answer must hold an ``AuthenticationResult`` with an ``AccessToken``.

The client's SRP arithmetic is pycognito's (``pycognito/aws_srp.py``: ``pad_hex``, ``calculate_u``,
``compute_hkdf``, the x derivation and the claim message), with the one modular exponentiation done by gmpy2 when
it is installed (Python's ``pow`` otherwise). What a client may legitimately reuse is reused: each loop keeps one
secret ``a`` (256 bits, as RFC 5054 asks of an ephemeral) and ``A = g^a mod N`` for its connection, and x and
``k*g^x`` are computed once per (salt, user). The server still does all its work on every sign-in: its b, B, u
and S are new each time. What is left per sign-in on this side is one exponentiation with a ~512-bit exponent,
a few hashes and two HTTP requests; its CPU time per sign-in is measured and reported, because on a small machine
it is taken from the servers.

    python3 bench/srp_load.py --url http://127.0.0.1:8080/ --client-id ID --pool-id us-east-1_X \\
        --username bench-user --password 'Bench-Passw0rd!' --seconds 10

It prints one JSON document: sign-ins per second, p50/p99 of the whole two-round-trip sign-in, errors by kind
(with a few samples), and this process's CPU use. ``bench/run.py`` imports :func:`run_load` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import hashlib
import hmac
import json
import math
import resource
import secrets
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
import orjson
from pycognito.aws_srp import AWSSRP, G_HEX, N_HEX, calculate_u, compute_hkdf, hash_sha256, hex_hash, pad_hex

try:
    import gmpy2  # type: ignore[import-untyped, import-not-found, unused-ignore]

    def powmod(base: int, exponent: int, modulus: int) -> int:
        return int(gmpy2.powmod(base, exponent, modulus))

    POWMOD_IMPL = "gmpy2"
except ImportError:  # correct without gmpy2, only slower (and then the client takes more CPU per sign-in)

    def powmod(base: int, exponent: int, modulus: int) -> int:
        return pow(base, exponent, modulus)

    POWMOD_IMPL = "python"

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
CONTENT_TYPE = "application/x-amz-json-1.1"
BIG_N = int(N_HEX, 16)
G = int(G_HEX, 16)
# k = H(pad(N) | pad(g)), as pycognito's AWSSRP computes it.
K = int(hex_hash(pad_hex(BIG_N) + pad_hex(G)), 16)
SMALL_A_BITS = 256
MAX_ERROR_SAMPLES = 5


class SignInError(Exception):
    """One sign-in failed; ``kind`` is how it is counted."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True)
class LoadConfig:
    url: str  # where both requests are POSTed (Gatehouse: its root; the ceiling: its /srp endpoint)
    client_id: str
    pool_id: str
    username: str
    password: str
    concurrency: int = 64
    seconds: float = 10.0
    warmup: float = 1.0
    timeout: float = 30.0


@dataclass
class LoadResult:
    sign_ins: int
    seconds: float
    sign_ins_per_s: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    error_samples: list[str]
    client_cpu_s: float
    client_cores: float
    client_cpu_ms_per_sign_in: float
    concurrency: int
    powmod: str = POWMOD_IMPL
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> dict[str, Any]:
        document = asdict(self)
        del document["latencies_ms"]
        return document


class SrpClient:
    """The client half of one connection's sign-ins: a fixed a and A, x cached per (salt, user)."""

    def __init__(self, pool_id: str, password: str) -> None:
        self.pool_name = pool_id.split("_")[1]  # as pycognito and the JS client take it
        self.password = password
        while True:
            self.small_a = secrets.randbits(SMALL_A_BITS)
            self.big_a = powmod(G, self.small_a, BIG_N)
            if self.small_a and self.big_a % BIG_N:
                break
        self.srp_a_hex = f"{self.big_a:x}"  # unpadded, as pycognito's get_auth_params sends it
        self._x_cache: dict[tuple[str, str], tuple[int, int]] = {}

    def _x_and_kv(self, salt_hex: str, user_id: str) -> tuple[int, int]:
        """x = H(pad(salt) | H(poolName | user | ":" | password)) and k*g^x mod N (pycognito's derivation)."""
        cached = self._x_cache.get((salt_hex, user_id))
        if cached is None:
            identity = hash_sha256(f"{self.pool_name}{user_id}:{self.password}".encode())
            x = int(hex_hash(pad_hex(salt_hex) + identity), 16)
            cached = (x, K * powmod(G, x, BIG_N) % BIG_N)
            self._x_cache[(salt_hex, user_id)] = cached
        return cached

    def claim(self, parameters: dict[str, str], now: datetime.datetime) -> dict[str, str]:
        """ChallengeResponses for a PASSWORD_VERIFIER challenge (pycognito's process_challenge, minus pow)."""
        try:
            user_id = parameters["USER_ID_FOR_SRP"]
            salt_hex = parameters["SALT"]
            big_b = int(parameters["SRP_B"], 16)
            secret_block = parameters["SECRET_BLOCK"]
        except (KeyError, ValueError) as exc:
            raise SignInError("bad-challenge", f"PASSWORD_VERIFIER parameters: {exc!r}") from exc
        if big_b % BIG_N == 0:
            raise SignInError("bad-challenge", "SRP_B % N == 0")
        u = calculate_u(self.big_a, big_b)
        if u == 0:
            raise SignInError("bad-challenge", "u == 0")
        x, kv = self._x_and_kv(salt_hex, user_id)
        s = powmod((big_b - kv) % BIG_N, self.small_a + u * x, BIG_N)
        key = compute_hkdf(bytes.fromhex(pad_hex(s)), bytes.fromhex(pad_hex(u)))
        timestamp = AWSSRP.get_cognito_formatted_timestamp(now)
        message = self.pool_name.encode() + user_id.encode() + base64.b64decode(secret_block) + timestamp.encode()
        signature = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
        return {
            "USERNAME": parameters.get("USERNAME", user_id),
            "PASSWORD_CLAIM_SECRET_BLOCK": secret_block,
            "PASSWORD_CLAIM_SIGNATURE": signature,
            "TIMESTAMP": timestamp,
        }


def _headers(operation: str) -> dict[str, str]:
    return {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET_PREFIX + operation}


INITIATE_HEADERS = _headers("InitiateAuth")
RESPOND_HEADERS = _headers("RespondToAuthChallenge")


async def _post(session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    try:
        async with session.post(url, data=body, headers=headers) as response:
            payload = await response.read()
            status = response.status
    except TimeoutError as exc:
        raise SignInError("timeout", repr(exc)) from exc
    except aiohttp.ClientError as exc:
        raise SignInError("socket", repr(exc)) from exc
    if status != 200:
        raise SignInError(f"http-{status}", payload[:300].decode(errors="replace"))
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise SignInError("bad-json", payload[:300].decode(errors="replace")) from exc
    if not isinstance(document, dict):
        raise SignInError("bad-json", payload[:300].decode(errors="replace"))
    return document


async def sign_in(session: aiohttp.ClientSession, config: LoadConfig, client: SrpClient, initiate: bytes) -> None:
    """One whole SRP sign-in over ``session``'s connection; raises SignInError if it does not end in tokens."""
    challenge = await _post(session, config.url, INITIATE_HEADERS, initiate)
    if challenge.get("ChallengeName") != "PASSWORD_VERIFIER":
        raise SignInError("bad-challenge", json.dumps(challenge)[:300])
    responses = client.claim(challenge.get("ChallengeParameters") or {}, datetime.datetime.now(datetime.UTC))
    answer: dict[str, Any] = {
        "ClientId": config.client_id,
        "ChallengeName": "PASSWORD_VERIFIER",
        "ChallengeResponses": responses,
    }
    if challenge.get("Session"):
        answer["Session"] = challenge["Session"]
    result = await _post(session, config.url, RESPOND_HEADERS, orjson.dumps(answer))
    tokens = result.get("AuthenticationResult")
    if not isinstance(tokens, dict) or not tokens.get("AccessToken"):
        raise SignInError("no-tokens", json.dumps(result)[:300])


async def sign_in_once(config: LoadConfig) -> None:
    """One sign-in on a fresh connection (a check before a measured run); raises SignInError if it fails."""
    client = SrpClient(config.pool_id, config.password)
    initiate = _initiate_body(config, client)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.timeout)) as session:
        await sign_in(session, config, client, initiate)


def _initiate_body(config: LoadConfig, client: SrpClient) -> bytes:
    """The InitiateAuth body: the same for every sign-in of one connection (its A is fixed)."""
    return orjson.dumps(
        {
            "AuthFlow": "USER_SRP_AUTH",
            "ClientId": config.client_id,
            "AuthParameters": {"USERNAME": config.username, "SRP_A": client.srp_a_hex},
        }
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (as wrk's --latency reports them)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Window:
    """The measured seconds: only sign-ins that complete inside them count (as wrk counts responses)."""

    def __init__(self) -> None:
        self.open = False
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.samples: list[str] = []

    def record(self, started: float, ended: float, error: SignInError | None) -> None:
        if not self.open:
            return
        if error is None:
            self.latencies.append((ended - started) * 1000.0)
            return
        self.errors[error.kind] += 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(str(error))


async def _loop(config: LoadConfig, window: _Window, stop: asyncio.Event) -> None:
    client = SrpClient(config.pool_id, config.password)
    initiate = _initiate_body(config, client)
    # One keep-alive connection per loop: both requests of a sign-in reach the same server process.
    connector = aiohttp.TCPConnector(limit=1, force_close=False)
    timeout = aiohttp.ClientTimeout(total=config.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await repeat(lambda: sign_in(session, config, client, initiate), window, stop)


async def repeat(attempt: Callable[[], Awaitable[None]], window: _Window, stop: asyncio.Event) -> None:
    """Run ``attempt`` until ``stop``, recording each one's latency or failure in ``window``."""
    while not stop.is_set():
        started = time.perf_counter()
        error: SignInError | None = None
        try:
            await attempt()
        except SignInError as exc:
            error = exc
        window.record(started, time.perf_counter(), error)
        if error is not None and error.kind in ("socket", "timeout"):
            await asyncio.sleep(0.05)  # do not spin on a server that is gone


async def run_load(
    config: LoadConfig,
    *,
    on_measure_start: Callable[[], None] | None = None,
    on_measure_end: Callable[[], None] | None = None,
) -> LoadResult:
    """Drive ``config.concurrency`` sign-in loops for ``config.warmup`` discarded seconds, then ``config.seconds``
    measured ones. The callbacks run at the edges of the measured seconds (run.py samples server CPU there)."""
    return await measure(
        lambda window, stop: _loop(config, window, stop),
        concurrency=config.concurrency,
        warmup=config.warmup,
        seconds=config.seconds,
        on_measure_start=on_measure_start,
        on_measure_end=on_measure_end,
    )


async def measure(
    make_loop: Callable[[_Window, asyncio.Event], Coroutine[Any, Any, None]],
    *,
    concurrency: int,
    warmup: float,
    seconds: float,
    on_measure_start: Callable[[], None] | None = None,
    on_measure_end: Callable[[], None] | None = None,
    powmod: str = POWMOD_IMPL,
) -> LoadResult:
    """``concurrency`` loops from ``make_loop``: ``warmup`` discarded seconds, then ``seconds`` measured ones
    (the callbacks run at their edges); what completed inside the measured seconds is the result."""
    window = _Window()
    stop = asyncio.Event()
    loops = [asyncio.create_task(make_loop(window, stop)) for _ in range(concurrency)]
    try:
        if warmup > 0:
            await asyncio.sleep(warmup)
        if on_measure_start is not None:
            on_measure_start()
        cpu_before = own_cpu_seconds()
        started = time.perf_counter()
        window.open = True
        await asyncio.sleep(seconds)
        window.open = False
        elapsed = time.perf_counter() - started
        cpu = own_cpu_seconds() - cpu_before
        if on_measure_end is not None:
            on_measure_end()
    finally:
        stop.set()
        for task in loops:
            task.cancel()
        # A loop that died of something unexpected says so here rather than vanishing.
        outcomes = await asyncio.gather(*loops, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome
    latencies = sorted(window.latencies)
    count = len(latencies)
    return LoadResult(
        sign_ins=count,
        seconds=elapsed,
        sign_ins_per_s=count / elapsed,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        errors=dict(window.errors),
        error_samples=window.samples,
        client_cpu_s=cpu,
        client_cores=cpu / elapsed,
        client_cpu_ms_per_sign_in=1000.0 * cpu / count if count else math.inf,
        concurrency=concurrency,
        powmod=powmod,
        latencies_ms=latencies,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="where to POST both requests")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--pool-id", required=True, help="the pool id whose second part enters x and the claim")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    args = parse_load_options(parser, argv)
    config = LoadConfig(
        url=args.url,
        client_id=args.client_id,
        pool_id=args.pool_id,
        username=args.username,
        password=args.password,
        concurrency=args.concurrency,
        seconds=args.seconds,
        warmup=args.warmup,
    )
    return print_load(run_load(config))


def parse_load_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The load generators' shared options (--concurrency, --seconds, --warmup) added and checked."""
    parser.add_argument("--concurrency", type=int, default=64, help="loops, one connection each (64)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="discarded seconds before (1)")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--concurrency and --seconds must be positive, --warmup not negative")
    return args


def print_load(load: Coroutine[Any, Any, LoadResult]) -> int:
    """Run a load and print its summary as JSON; 130 when interrupted."""
    with contextlib.suppress(KeyboardInterrupt):
        result = asyncio.run(load)
        print(json.dumps(result.summary(), indent=2))
        return 0
    return 130


if __name__ == "__main__":
    sys.exit(main())
