"""Load generator for the OAuth 2.0 authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636), which wrk cannot
drive: every exchange needs a code of its own (a code is single use).

One process, one asyncio loop, ``--concurrency`` loops (64 by default), each with a keep-alive connection of its
own (so both steps of a flow reach the same worker of a server that forks workers; the ceiling probe keeps its
codes in process memory). Each flow is what a browser holding the hosted UI's single sign-on cookie
(``gatehouse_sso_{UserPoolId}``) and its app do:

1. ``GET {authorize}?response_type=code&client_id&redirect_uri&scope&state&code_challenge&code_challenge_method=S256``
   with the cookie; the answer must be a 302 to the redirect URI carrying ``code`` (no password is asked);
2. ``POST {token}`` with ``grant_type=authorization_code``, ``client_id``, ``code``, ``redirect_uri`` and
   ``code_verifier``; the answer must be 200 with an ``access_token`` and an ``id_token``.

A fresh PKCE verifier and state are drawn per flow. Rate and latency are of whole flows (both round trips), as
bench/srp_load.py reports whole sign-ins: one flow is one code exchange.

    python3 bench/code_load.py --authorize-url http://127.0.0.1:8080/us-east-1_X/oauth2/authorize \\
        --token-url http://127.0.0.1:8080/oauth2/token --client-id ID --redirect-uri https://app/cb \\
        --cookie 'gatehouse_sso_us-east-1_X=...' --seconds 10

It prints one JSON document as srp_load does; ``bench/run.py`` imports :func:`run_load` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import orjson
from srp_load import LoadResult, SignInError, _Window, measure, parse_load_options, print_load, repeat

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass(frozen=True)
class FlowConfig:
    authorize_url: str
    token_url: str
    client_id: str
    redirect_uri: str
    cookie: str  # "name=value", sent as the Cookie header
    scope: str = "openid email"
    concurrency: int = 64
    seconds: float = 10.0
    warmup: float = 1.0
    timeout: float = 30.0


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636 §4.1, §4.2)."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def flow(session: aiohttp.ClientSession, config: FlowConfig) -> None:
    """One authorize (with the session cookie) and one code exchange; raises SignInError unless both succeed."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": config.redirect_uri,
            "scope": config.scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    try:
        async with session.get(
            f"{config.authorize_url}?{query}", headers={"Cookie": config.cookie}, allow_redirects=False
        ) as response:
            status, location, payload = response.status, response.headers.get("Location", ""), await response.read()
        if status != 302:
            raise SignInError(f"http-{status}", "authorize: " + payload[:300].decode(errors="replace"))
        parameters = parse_qs(urlsplit(location).query)
        if not location.startswith(config.redirect_uri) or parameters.get("state") != [state]:
            raise SignInError("bad-redirect", location[:300])
        code = parameters.get("code", [""])[0]
        if not code:
            raise SignInError("no-code", location[:300])
        form = {
            "grant_type": "authorization_code",
            "client_id": config.client_id,
            "code": code,
            "redirect_uri": config.redirect_uri,
            "code_verifier": verifier,
        }
        async with session.post(config.token_url, data=urlencode(form), headers=FORM) as response:
            status, payload = response.status, await response.read()
    except TimeoutError as exc:
        raise SignInError("timeout", repr(exc)) from exc
    except aiohttp.ClientError as exc:
        raise SignInError("socket", repr(exc)) from exc
    if status != 200:
        raise SignInError(f"http-{status}", "token: " + payload[:300].decode(errors="replace"))
    try:
        tokens = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise SignInError("bad-json", payload[:300].decode(errors="replace")) from exc
    if not isinstance(tokens, dict) or not tokens.get("access_token") or not tokens.get("id_token"):
        raise SignInError("no-tokens", payload[:300].decode(errors="replace"))


async def flow_once(config: FlowConfig) -> None:
    """One flow on a fresh connection (a check before a measured run); raises SignInError if it fails."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.timeout)) as session:
        await flow(session, config)


async def _loop(config: FlowConfig, window: _Window, stop: asyncio.Event) -> None:
    connector = aiohttp.TCPConnector(limit=1, force_close=False)
    # The cookie goes in a header of its own: no jar, so nothing the server sets is sent back.
    jar = aiohttp.DummyCookieJar()
    timeout = aiohttp.ClientTimeout(total=config.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, cookie_jar=jar) as session:
        await repeat(lambda: flow(session, config), window, stop)


async def run_load(
    config: FlowConfig,
    *,
    on_measure_start: Callable[[], None] | None = None,
    on_measure_end: Callable[[], None] | None = None,
) -> LoadResult:
    """``config.concurrency`` flow loops: ``config.warmup`` discarded seconds, then ``config.seconds`` measured
    ones (the callbacks run at their edges). ``LoadResult.sign_ins`` counts completed flows."""
    return await measure(
        lambda window, stop: _loop(config, window, stop),
        concurrency=config.concurrency,
        warmup=config.warmup,
        seconds=config.seconds,
        on_measure_start=on_measure_start,
        on_measure_end=on_measure_end,
        powmod="-",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authorize-url", required=True)
    parser.add_argument("--token-url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--cookie", required=True, help="the single sign-on cookie as name=value")
    args = parse_load_options(parser, argv)
    config = FlowConfig(
        authorize_url=args.authorize_url,
        token_url=args.token_url,
        client_id=args.client_id,
        redirect_uri=args.redirect_uri,
        cookie=args.cookie,
        concurrency=args.concurrency,
        seconds=args.seconds,
        warmup=args.warmup,
    )
    return print_load(run_load(config))


if __name__ == "__main__":
    sys.exit(main())
