"""Tokens of the public login providers an identity pool's SupportedLoginProviders names.

What Cognito checks for each (developer guide, "Identity pools third-party identity providers"):

* ``accounts.google.com`` and ``appleid.apple.com``: an OpenID Connect ID token, RS256, checked against the
  provider's JWKS -- issuer, ``aud`` = the app id the pool configures, expiry.
* ``www.amazon.com`` (Login with Amazon): an access token, checked at the provider's token-info endpoint,
  whose ``aud`` must be the configured app id; the user is its ``user_id``.
* ``graph.facebook.com``: an access token, checked with the Graph API: the app it was issued to
  (``GET /app``) must be the configured app id; the user is ``GET /me``'s ``id``.

Every endpoint defaults to the provider's real one and can be replaced with ``GATEHOUSE_SOCIAL_ENDPOINTS``, a
JSON object such as ``{"accounts.google.com": {"jwks_uri": "http://127.0.0.1:9000/certs"}}`` -- for local
development, CI, or a proxy. A configured app id may list several ids separated by semicolons (the model's
pattern for it allows ``;``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from gateway.errors import ExternalServiceException, NotAuthorizedException
from gateway.services.tokens import foreign_b64url_decode

DEFAULT_ENDPOINTS: Final[dict[str, dict[str, str]]] = {
    "accounts.google.com": {
        "issuer": "https://accounts.google.com",
        "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
    },
    "appleid.apple.com": {"issuer": "https://appleid.apple.com", "jwks_uri": "https://appleid.apple.com/auth/keys"},
    "www.amazon.com": {"tokeninfo": "https://api.amazon.com/auth/o2/tokeninfo"},
    "graph.facebook.com": {"graph": "https://graph.facebook.com"},
}
# Google has issued ID tokens with and without the scheme in ``iss``.
_ISSUER_ALIASES: Final = {"https://accounts.google.com": ("accounts.google.com",)}
JWKS_CACHE_SECONDS: Final = 3600.0
# An unknown ``kid`` refetches the JWKS, at most this often (a made-up kid must not hammer the provider).
REFETCH_SECONDS: Final = 30.0
HTTP_TIMEOUT_SECONDS: Final = 5.0
LEEWAY_SECONDS: Final = 60


def endpoints_from_json(text: str | None) -> dict[str, dict[str, str]]:
    """The default endpoints with ``GATEHOUSE_SOCIAL_ENDPOINTS``'s replacements applied."""
    merged = {name: dict(values) for name, values in DEFAULT_ENDPOINTS.items()}
    if not text:
        return merged
    given = json.loads(text)
    if not isinstance(given, dict):
        raise ValueError("GATEHOUSE_SOCIAL_ENDPOINTS must be a JSON object")
    for name, values in given.items():
        if name not in merged or not isinstance(values, dict):
            raise ValueError(f"GATEHOUSE_SOCIAL_ENDPOINTS: unknown provider or bad entry {name!r}")
        merged[name].update({str(k): str(v) for k, v in values.items()})
    return merged


@dataclass(frozen=True)
class SocialLogin:
    subject: str
    claims: dict[str, Any] = field(default_factory=dict)


def _invalid(reason: str) -> NotAuthorizedException:
    return NotAuthorizedException(f"Invalid login token. {reason}")


class SocialLogins:
    """Checks public providers' login tokens."""

    def __init__(self, endpoints: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self._endpoints = {k: dict(v) for k, v in (endpoints or DEFAULT_ENDPOINTS).items()}
        self._jwks: dict[str, tuple[jwk.JWKSet, float]] = {}
        self._lock = asyncio.Lock()

    def supports(self, provider: str) -> bool:
        return provider in self._endpoints

    async def verify(self, provider: str, token: str, app_ids: str) -> SocialLogin:
        """The user a token speaks for, after every check; raises NotAuthorizedException (a bad token) or
        ExternalServiceException (the provider could not be asked)."""
        allowed = {app.strip() for app in app_ids.split(";") if app.strip()}
        endpoints = self._endpoints.get(provider)
        if endpoints is None:
            raise NotAuthorizedException("Token is not from a supported provider of this identity pool.")
        if "jwks_uri" in endpoints:
            return await self._verify_id_token(endpoints, token, allowed)
        if "tokeninfo" in endpoints:
            info = await self._get_json(endpoints["tokeninfo"], {"access_token": token})
            if info.get("aud") not in allowed:
                raise _invalid("Incorrect token audience.")
            user = info.get("user_id")
            if not isinstance(user, str) or not user:
                raise _invalid("The provider did not name a user.")
            return SocialLogin(user, {"sub": user, "aud": info["aud"]})
        graph = endpoints["graph"].rstrip("/")
        app = await self._get_json(f"{graph}/app", {"access_token": token})
        if str(app.get("id")) not in allowed:
            raise _invalid("Incorrect token audience.")
        me = await self._get_json(f"{graph}/me", {"access_token": token, "fields": "id"})
        user = me.get("id")
        if not isinstance(user, str | int) or not str(user):
            raise _invalid("The provider did not name a user.")
        return SocialLogin(str(user), {"sub": str(user), "aud": str(app["id"])})

    async def _verify_id_token(self, endpoints: Mapping[str, str], token: str, allowed: set[str]) -> SocialLogin:
        signed = jws.JWS()
        signed.allowed_algs = ["RS256"]
        try:
            # A compact JWS (RFC 7519 §7.2) of base64url segments, padded or not: jwcrypto would also take the
            # JSON serialization, and skip junk characters inside a segment.
            if token.count(".") != 2:
                raise ValueError("not a compact JWS")
            for part in token.split("."):
                foreign_b64url_decode(part)
            signed.deserialize(token)
            header = signed.jose_header
        except (JWException, ValueError) as exc:
            raise _invalid("Not a valid OpenId Connect identity token.") from exc
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            raise _invalid("Not a valid OpenId Connect identity token.")
        kid = header.get("kid")
        key = await self._key(endpoints["jwks_uri"], kid, refetch=False)
        if key is None:
            key = await self._key(endpoints["jwks_uri"], kid, refetch=True)
        if key is None:
            raise _invalid("Token signature invalid.")
        try:
            signed.verify(key)
            claims = orjson.loads(signed.payload)
        except (JWException, ValueError) as exc:
            raise _invalid("Token signature invalid.") from exc
        if not isinstance(claims, dict):
            raise _invalid("Not a valid OpenId Connect identity token.")
        issuer = endpoints["issuer"]
        if claims.get("iss") not in (issuer, *_ISSUER_ALIASES.get(issuer, ())):
            raise _invalid("Issuer doesn't match providerName")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or exp + LEEWAY_SECONDS <= time.time():
            raise _invalid("Token expired.")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not allowed & {str(a) for a in audiences}:
            raise _invalid("Incorrect token audience.")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _invalid("Not a valid OpenId Connect identity token.")
        return SocialLogin(sub, claims)

    async def _key(self, url: str, kid: object, *, refetch: bool) -> jwk.JWK | None:
        max_age = REFETCH_SECONDS if refetch else JWKS_CACHE_SECONDS
        cached = self._jwks.get(url)
        if cached is None or time.monotonic() - cached[1] >= max_age:
            async with self._lock:
                cached = self._jwks.get(url)
                if cached is None or time.monotonic() - cached[1] >= max_age:
                    keys = jwk.JWKSet()
                    try:
                        keys.import_keyset(json.dumps(await self._get_json(url, {})))
                    except (JWException, ValueError) as exc:
                        raise ExternalServiceException("The login provider's keys could not be read.") from exc
                    cached = (keys, time.monotonic())
                    self._jwks[url] = cached
        if not isinstance(kid, str):
            return None
        found = cached[0].get_key(kid)
        return found if found is not None else None

    async def _get_json(self, url: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET a JSON object. A 4xx from the provider means it refused the token; anything else that goes
        wrong means it could not be asked."""
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECONDS)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, params=params, allow_redirects=False) as response,
            ):
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ExternalServiceException("The login provider could not be reached.") from exc
        if 400 <= status < 500:
            raise _invalid("The login provider refused the token.")
        if status != 200:
            raise ExternalServiceException("The login provider could not check the token.")
        try:
            document = orjson.loads(body)
        except ValueError as exc:
            raise ExternalServiceException("The login provider's answer is not JSON.") from exc
        if not isinstance(document, dict):
            raise ExternalServiceException("The login provider's answer is not a JSON object.")
        return document
