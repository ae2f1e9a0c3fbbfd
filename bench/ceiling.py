"""Ceiling probes: the fastest an aiohttp app on this machine can serve each Gatehouse hot path.

A minimal aiohttp app, built like Gatehouse is built (aiohttp's ``web.run_app``, the default asyncio event loop
policy, orjson as Gatehouse's JSON library on its hot paths, N worker processes accepting on one port with
SO_REUSEPORT), whose POST endpoints do only the cryptography each path cannot avoid and answer a fixed small JSON body:

- ``/refresh``: two RSA-2048 PKCS#1 v1.5 SHA-256 signatures (REFRESH_TOKEN_AUTH signs an ID and an access token);
- ``/getuser``: one RS256 signature verification of a fixed token (GetUser checks the access token);
- ``/token_refresh``: a form body read, then two signatures (``/oauth2/token`` with ``grant_type=refresh_token``);
- ``/token_client``: a form body read, then one signature (``grant_type=client_credentials``: an access token only);
- ``/userinfo``: ``GET`` with a bearer token, one verification (``/oauth2/userInfo``);
- ``/authorize`` and ``/token_code``: the authorization code flow of a browser that already holds a single
  sign-on cookie. ``GET /authorize`` hashes the cookie (SHA-256, as Gatehouse keys its sessions by the hash),
  compares it with the one session it knows, draws a random code, keeps the PKCE challenge under it in a dict
  and answers 302 to the redirect URI with the code; ``POST /token_code`` reads the form, takes the code out
  (single use), checks the PKCE S256 verifier (one SHA-256) and makes two signatures (ID and access token);
- ``/hello``: a hello-world ``GET`` handler answering a small fixed HTML page (the hosted sign-in page);
- ``/identity``: identity pools' GetId and GetCredentialsForIdentity, told apart by ``X-Amz-Target``. GetId
  answers a fixed identity id; GetCredentialsForIdentity makes one RS256 verification (the login's ID token)
  and mints credentials as ``gateway.services.credentials`` does: a random ``ASIA`` key id, the secret key
  as an HMAC-SHA256 of it, and the session token as zlib-compressed claims sealed with AES-256-GCM
  (``gateway.secretbox.SecretBox``) bound to the key id;
- ``/password``: one Argon2id verification at Gatehouse's default parameters, in a
  ``ThreadPoolExecutor(max_workers=max(2, cpu_count))`` via ``run_in_executor`` (USER_PASSWORD_AUTH's verify);
- ``/srp``: both requests of an SRP sign-in (USER_SRP_AUTH), told apart by ``X-Amz-Target`` as Gatehouse tells
  them: ``InitiateAuth`` picks b and computes B = (k*v + g^b) mod N for a fixed verifier and answers the
  PASSWORD_VERIFIER challenge (SALT, SRP_B, SECRET_BLOCK, USERNAME, USER_ID_FOR_SRP, Session), keeping b in a
  dict keyed by the SECRET_BLOCK; ``RespondToAuthChallenge`` takes that entry out (single use), checks
  TIMESTAMP's form and age, computes u, S and K and checks PASSWORD_CLAIM_SIGNATURE, then makes two RSA-2048
  signatures (the ID and access tokens) and answers them (with a fixed refresh token). The SRP arithmetic is
  ``gateway.services.srp``'s (``start_srp``, ``verify_password_claim``, gmpy2 when installed), the very
  functions Gatehouse calls, done inline: gmpy2 holds the GIL, so a thread would add a hop and no parallelism.

The Cognito-wire endpoints read and parse the JSON request body (any real handler must); only ``/srp`` uses
it. The ``/oauth2/token`` probes read the form body instead, and ``/userinfo`` has none to read. The key is
generated once by the parent process and parsed once per worker at start, as Gatehouse parses its signing key
once per process.

    python3 bench/ceiling.py --host 127.0.0.1 --port 8081 --workers 2

``GET /health`` answers 200 when the app is serving.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import secrets
import signal
import sys
import time
import zlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

import argon2
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

if TYPE_CHECKING:
    from gateway.services.srp import SrpServerChallenge, SrpVerifier

# Gatehouse's own hash and salt sizes (gateway/services/passwords.py: RFC 9106's 256-bit tag, 128-bit salt).
HASH_LEN = 32
SALT_LEN = 16
PASSWORD = "Bench-Passw0rd!"
# The SRP probe's fixed identity: the load generator derives x from the same pool id, user and password.
SRP_POOL_ID = "us-east-1_CeilingProbe"
SRP_USERNAME = "bench-user"
# Gatehouse's freshness window for TIMESTAMP (gateway/services/auth.py: SRP_TIMESTAMP_SKEW_SECONDS).
SRP_TIMESTAMP_SKEW_SECONDS = 300
TARGET_PREFIX = "AWSCognitoIdentityProviderService."
REFRESH_TOKEN = "r" * 64  # the length of Gatehouse's opaque refresh tokens (48 random bytes, base64url)
CONTENT_TYPE = "application/x-amz-json-1.1"
# What every endpoint answers: small and fixed, serialised with orjson per request.
ANSWER: dict[str, Any] = {"ok": True}
# The single sign-on cookie /authorize accepts (the load generator is given it, as it is given Gatehouse's).
SSO_COOKIE_NAME = "gatehouse_sso_ceiling"
SSO_COOKIE_VALUE = "c" * 43  # the length of Gatehouse's cookie values (32 random bytes, base64url)
IDENTITY_ID = "us-east-1:0f0f0f0f-1111-2222-3333-444444444444"
IDENTITY_TARGET_PREFIX = "AWSCognitoIdentityService."
HELLO = b"<!doctype html><title>hello</title><p>Hello, world.</p>"


@dataclass(frozen=True)
class Argon2Cost:
    memory_kib: int
    time_cost: int
    parallelism: int


def _import_gateway() -> None:
    """Make the repository's gateway package importable when this file is run as a script."""
    repo_root = str(Path(__file__).resolve().parent.parent)
    if repo_root not in sys.path:
        sys.path.insert(0, repo_root)


def gatehouse_argon2_defaults() -> Argon2Cost:
    """Gatehouse's default Argon2id cost, read from its code so the probe follows it if it changes."""
    _import_gateway()
    from gateway.services.passwords import Argon2Params

    params = Argon2Params()
    return Argon2Cost(params.memory_kib, params.time_cost, params.parallelism)


def argon2_hasher(cost: Argon2Cost) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=cost.time_cost,
        memory_cost=cost.memory_kib,
        parallelism=cost.parallelism,
        hash_len=HASH_LEN,
        salt_len=SALT_LEN,
        type=argon2.Type.ID,
    )


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def signing_input(claims: dict[str, Any]) -> bytes:
    """A JWS signing input the size of a Cognito access or ID token's."""
    header = b64url(json.dumps({"kid": "bench", "alg": "RS256"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return header + b"." + payload


def sample_claims(token_use: str) -> dict[str, Any]:
    return {
        "sub": "8f0c3a52-51a4-4b8e-9a3e-4b7c9a1f0e21",
        "iss": "http://127.0.0.1:8080/us-east-1_AbCdEfGhI",
        "client_id": "4k2n5h6j7k8l9m0n1p2q3r4s5t",
        "origin_jti": "2c1f6d9e-7a8b-4c3d-9e0f-1a2b3c4d5e6f",
        "event_id": "3d2e7f0a-8b9c-4d1e-8f2a-3b4c5d6e7f80",
        "token_use": token_use,
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": 1700000000,
        "exp": 1700003600,
        "iat": 1700000000,
        "jti": "4e3f8a1b-9c0d-4e2f-a3b4-c5d6e7f8a9b0",
        "username": "bench-user",
    }


@dataclass(frozen=True)
class Material:
    """What the parent prepares once and every worker inherits."""

    private_pem: bytes
    password_hash: str
    cost: Argon2Cost
    srp_verifier: SrpVerifier


def prepare() -> Material:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cost = gatehouse_argon2_defaults()
    _import_gateway()
    from gateway.services.srp import derive_srp_verifier

    # Derived once, as Gatehouse derives a user's verifier once when the password is set.
    verifier = derive_srp_verifier(SRP_POOL_ID, SRP_USERNAME, PASSWORD)
    return Material(private_pem=pem, password_hash=argon2_hasher(cost).hash(PASSWORD), cost=cost, srp_verifier=verifier)


class Probe:
    """One worker's state: the parsed key, the fixed token, the Argon2 hasher and the executor."""

    def __init__(self, material: Material) -> None:
        # Parsed once per process, as Gatehouse's SigningKeys parses a key once per process.
        self.private = cast(rsa.RSAPrivateKey, serialization.load_pem_private_key(material.private_pem, None))
        self.public = self.private.public_key()
        self.id_input = signing_input(sample_claims("id"))
        self.access_input = signing_input(sample_claims("access"))
        self.token_input = self.access_input
        self.token_signature = self.private.sign(self.token_input, padding.PKCS1v15(), hashes.SHA256())
        self.hasher = argon2_hasher(material.cost)
        self.password_hash = material.password_hash
        self.executor: ThreadPoolExecutor | None = None
        self.srp_verifier = material.srp_verifier
        # SRP_A and the challenge of each open SRP sign-in, by SECRET_BLOCK (Gatehouse files them by it too).
        self.srp_sessions: dict[str, tuple[str, SrpServerChallenge]] = {}
        # The one single sign-on session /authorize knows, by the hash of its cookie; open codes' PKCE challenges.
        self.sso_hash = hashlib.sha256(SSO_COOKIE_VALUE.encode()).hexdigest()
        self.codes: dict[str, str] = {}
        # Temporary credentials, minted as gateway.services.credentials mints them (two sub-keys of one secret).
        _import_gateway()
        from gateway.secretbox import SecretBox

        root = secrets.token_bytes(32)
        self.credential_secret = hmac.new(root, b"secret access keys", hashlib.sha256).digest()
        self.credential_box = SecretBox(hmac.new(root, b"session tokens", hashlib.sha256).digest())

    def verify_password(self) -> bool:
        return self.hasher.verify(self.password_hash, PASSWORD)


PROBE = web.AppKey("probe", Probe)


async def _read_json(request: web.Request) -> None:
    orjson.loads(await request.read())


def _answer() -> web.Response:
    return web.Response(body=orjson.dumps(ANSWER), content_type=CONTENT_TYPE)


async def refresh(request: web.Request) -> web.Response:
    await _read_json(request)
    probe = request.app[PROBE]
    probe.private.sign(probe.id_input, padding.PKCS1v15(), hashes.SHA256())
    probe.private.sign(probe.access_input, padding.PKCS1v15(), hashes.SHA256())
    return _answer()


async def getuser(request: web.Request) -> web.Response:
    await _read_json(request)
    probe = request.app[PROBE]
    probe.public.verify(probe.token_signature, probe.token_input, padding.PKCS1v15(), hashes.SHA256())
    return _answer()


async def password(request: web.Request) -> web.Response:
    await _read_json(request)
    probe = request.app[PROBE]
    ok = await asyncio.get_running_loop().run_in_executor(probe.executor, probe.verify_password)
    if not ok:
        raise web.HTTPInternalServerError(text="argon2 verify failed")
    return _answer()


def _bad_request(message: str) -> web.Response:
    return web.Response(status=400, body=orjson.dumps({"__type": "NotAuthorizedException", "message": message}))


async def srp(request: web.Request) -> web.Response:
    """Both requests of USER_SRP_AUTH: InitiateAuth (B) and RespondToAuthChallenge (the proof, then tokens)."""
    from gateway.services.srp import (
        format_srp_timestamp,
        parse_srp_timestamp,
        start_srp,
        verify_password_claim,
    )

    body = orjson.loads(await request.read())
    probe = request.app[PROBE]
    if request.headers.get("X-Amz-Target") == TARGET_PREFIX + "InitiateAuth":
        srp_a = str(body["AuthParameters"]["SRP_A"])
        challenge = start_srp(probe.srp_verifier)
        probe.srp_sessions[challenge.secret_block] = (srp_a, challenge)
        answer = {
            "ChallengeName": "PASSWORD_VERIFIER",
            "ChallengeParameters": {
                "SALT": challenge.salt_hex,
                "SECRET_BLOCK": challenge.secret_block,
                "SRP_B": challenge.B_hex,
                "USERNAME": SRP_USERNAME,
                "USER_ID_FOR_SRP": SRP_USERNAME,
            },
            "Session": challenge.secret_block,
        }
        return web.Response(body=orjson.dumps(answer), content_type=CONTENT_TYPE)
    responses = body["ChallengeResponses"]
    entry = probe.srp_sessions.pop(str(responses["PASSWORD_CLAIM_SECRET_BLOCK"]), None)
    if entry is None:
        return _bad_request("Invalid session.")
    srp_a, challenge = entry
    timestamp = str(responses["TIMESTAMP"])
    when = parse_srp_timestamp(timestamp)
    if (
        when is None
        or format_srp_timestamp(when) != timestamp
        or abs(when.timestamp() - time.time()) > SRP_TIMESTAMP_SKEW_SECONDS
    ):
        return _bad_request("Incorrect username or password.")
    proven = verify_password_claim(
        pool_id=SRP_POOL_ID,
        username=SRP_USERNAME,
        verifier=probe.srp_verifier,
        challenge=challenge,
        srp_a_hex=srp_a,
        timestamp=timestamp,
        claim_signature_b64=str(responses["PASSWORD_CLAIM_SIGNATURE"]),
    )
    if not proven:
        return _bad_request("Incorrect username or password.")
    id_signature = probe.private.sign(probe.id_input, padding.PKCS1v15(), hashes.SHA256())
    access_signature = probe.private.sign(probe.access_input, padding.PKCS1v15(), hashes.SHA256())
    # The two signed tokens and a fixed refresh token: an answer of the size Gatehouse's is, and one a client
    # can tell from a failure.
    result = {
        "AccessToken": (probe.access_input + b"." + b64url(access_signature)).decode(),
        "ExpiresIn": 3600,
        "IdToken": (probe.id_input + b"." + b64url(id_signature)).decode(),
        "RefreshToken": REFRESH_TOKEN,
        "TokenType": "Bearer",
    }
    return web.Response(body=orjson.dumps({"AuthenticationResult": result}), content_type=CONTENT_TYPE)


async def token_refresh(request: web.Request) -> web.Response:
    await request.post()
    probe = request.app[PROBE]
    probe.private.sign(probe.id_input, padding.PKCS1v15(), hashes.SHA256())
    probe.private.sign(probe.access_input, padding.PKCS1v15(), hashes.SHA256())
    return _answer()


async def token_client(request: web.Request) -> web.Response:
    await request.post()
    probe = request.app[PROBE]
    probe.private.sign(probe.access_input, padding.PKCS1v15(), hashes.SHA256())
    return _answer()


async def userinfo(request: web.Request) -> web.Response:
    probe = request.app[PROBE]
    probe.public.verify(probe.token_signature, probe.token_input, padding.PKCS1v15(), hashes.SHA256())
    return _answer()


async def authorize(request: web.Request) -> web.Response:
    """GET /oauth2/authorize of a browser with a single sign-on session: a code, without a password."""
    probe = request.app[PROBE]
    query = request.query
    cookie = request.cookies.get(SSO_COOKIE_NAME, "")
    if not hmac.compare_digest(hashlib.sha256(cookie.encode()).hexdigest(), probe.sso_hash):
        return web.Response(status=400, text="no session")
    code = secrets.token_urlsafe(32)
    probe.codes[code] = query["code_challenge"]
    location = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
    return web.Response(status=302, headers={"Location": location})


async def token_code(request: web.Request) -> web.Response:
    """POST /oauth2/token grant_type=authorization_code: the code taken out, PKCE S256 checked, two tokens."""
    form = await request.post()
    probe = request.app[PROBE]
    challenge = probe.codes.pop(str(form.get("code", "")), None)
    verifier = str(form.get("code_verifier", ""))
    if challenge is None or b64url(hashlib.sha256(verifier.encode()).digest()).decode() != challenge:
        return web.Response(status=400, body=orjson.dumps({"error": "invalid_grant"}), content_type="application/json")
    id_signature = probe.private.sign(probe.id_input, padding.PKCS1v15(), hashes.SHA256())
    access_signature = probe.private.sign(probe.access_input, padding.PKCS1v15(), hashes.SHA256())
    answer = {
        "id_token": (probe.id_input + b"." + b64url(id_signature)).decode(),
        "access_token": (probe.access_input + b"." + b64url(access_signature)).decode(),
        "refresh_token": REFRESH_TOKEN,
        "expires_in": 3600,
        "token_type": "Bearer",
    }
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


async def hello(_request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="text/html")


async def identity(request: web.Request) -> web.Response:
    """Identity pools: GetId (a fixed identity) and GetCredentialsForIdentity (one verification, one mint)."""
    await _read_json(request)
    probe = request.app[PROBE]
    if request.headers.get("X-Amz-Target") != IDENTITY_TARGET_PREFIX + "GetCredentialsForIdentity":
        return web.Response(body=orjson.dumps({"IdentityId": IDENTITY_ID}), content_type=CONTENT_TYPE)
    probe.public.verify(probe.token_signature, probe.token_input, padding.PKCS1v15(), hashes.SHA256())
    now = int(time.time())
    access_key_id = "ASIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
    claims = {
        "v": 1,
        "arn": "arn:aws:iam::000000000000:role/bench-authenticated",
        "rid": "AROAABCDEFGHIJKLMNOPQ",
        "sn": "CognitoIdentityCredentials",
        "iat": now,
        "exp": now + 3600,
        "iid": IDENTITY_ID,
        "wi": {
            "cognito-identity.amazonaws.com:sub": IDENTITY_ID,
            "cognito-identity.amazonaws.com:aud": "us-east-1:11111111-2222-3333-4444-555555555555",
            "cognito-identity.amazonaws.com:amr": ["authenticated", "127.0.0.1/us-east-1_AbCdEfGhI"],
        },
    }
    token = probe.credential_box.seal(zlib.compress(orjson.dumps(claims), 9), aad=access_key_id.encode())
    secret = base64.b64encode(hmac.digest(probe.credential_secret, access_key_id.encode(), "sha256")).decode()[:40]
    answer = {
        "IdentityId": IDENTITY_ID,
        "Credentials": {
            "AccessKeyId": access_key_id,
            "SecretKey": secret,
            "SessionToken": token,
            "Expiration": now + 3600,
        },
    }
    return web.Response(body=orjson.dumps(answer), content_type=CONTENT_TYPE)


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(material: Material) -> web.Application:
    app = web.Application()
    app[PROBE] = Probe(material)

    async def executor_ctx(app: web.Application) -> AsyncIterator[None]:
        # As gateway/app.py builds its executor for CPU-heavy work.
        executor = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="ceiling-cpu")
        app[PROBE].executor = executor
        try:
            yield
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(executor_ctx)
    app.router.add_post("/refresh", refresh)
    app.router.add_post("/getuser", getuser)
    app.router.add_post("/password", password)
    app.router.add_post("/srp", srp)
    app.router.add_post("/token_refresh", token_refresh)
    app.router.add_post("/token_client", token_client)
    app.router.add_get("/userinfo", userinfo)
    app.router.add_post("/userinfo", userinfo)  # the start-up check POSTs; userInfo answers both
    app.router.add_get("/authorize", authorize)
    app.router.add_post("/token_code", token_code)
    app.router.add_get("/hello", hello)
    app.router.add_post("/hello", hello)  # the start-up check POSTs
    app.router.add_post("/identity", identity)
    app.router.add_get("/health", health)
    return app


def run_worker(material: Material, host: str, port: int) -> None:
    # As gateway/cli.py runs each worker: the default event loop policy, reuse_port=True, no access log.
    web.run_app(create_app(material), host=host, port=port, print=None, access_log=None, reuse_port=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    material = prepare()
    if args.workers <= 1:
        run_worker(material, args.host, args.port)
        return 0
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=run_worker, args=(material, args.host, args.port), daemon=False)
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.start()

    def stop(_signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid:
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for worker in workers:
        worker.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
