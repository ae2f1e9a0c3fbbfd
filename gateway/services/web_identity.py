"""Validation of the web identity tokens STS's AssumeRoleWithWebIdentity accepts.

Three kinds of issuer, as the STS API Reference ("AssumeRoleWithWebIdentity") and the IAM User Guide
("Create an OpenID Connect (OIDC) identity provider in IAM") describe them:

* Gatehouse's own user pools (``iss`` = ``{public_url}/{UserPoolId}``): signature checked in-process against
  the pool's keys in the store (no HTTP round trip to ourselves).
* Other in-process issuers registered with :meth:`WebIdentityVerifier.register_issuer` -- the identity
  pools service registers its OpenID token issuer here (provider ``cognito-identity.amazonaws.com``).
* Any issuer registered as an IAM OIDC provider (CreateOpenIDConnectProvider or the config file): its JWKS is
  fetched over HTTP -- from the provider's configured ``jwks_url``, else from ``jwks_uri`` in its
  ``/.well-known/openid-configuration`` -- and cached; an unknown ``kid`` refetches (at most once per
  ``refetch_seconds``) so key rotation is picked up. The token's ``aud`` must be one of the provider's
  client ids.

A valid token yields a :class:`VerifiedWebIdentity`: the :class:`~gateway.services.iam.WebIdentity` a trust
policy is evaluated against, plus the session tags and source identity the token asks for
(``https://aws.amazon.com/tags``, ``https://aws.amazon.com/source_identity``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import orjson
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from gateway.errors import (
    ExpiredTokenException,
    IDPCommunicationErrorException,
    InvalidIdentityTokenException,
    NotAuthorizedException,
)
from gateway.services.iam import IamService, WebIdentity, provider_url
from gateway.services.tokens import TokenService, foreign_b64url_decode

__all__ = ["InProcessVerify", "VerifiedWebIdentity", "WebIdentityVerifier"]


# Algorithms an OIDC provider may sign with (RFC 7518 §3.1); "none" and HMAC are never accepted: a shared
# secret could not prove anything to us.
ALLOWED_ALGS: Final = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
TAGS_CLAIM: Final = "https://aws.amazon.com/tags"
SOURCE_IDENTITY_CLAIM: Final = "https://aws.amazon.com/source_identity"
MAX_TOKEN_CHARS: Final = 20000
MAX_DOCUMENT_BYTES: Final = 1024 * 1024
# Clock skew allowed on exp / nbf / iat.
LEEWAY_SECONDS: Final = 60

InProcessVerify = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class VerifiedWebIdentity:
    identity: WebIdentity
    issuer: str
    claims: dict[str, Any]
    principal_tags: dict[str, str] = field(default_factory=dict)
    transitive_tag_keys: tuple[str, ...] = ()
    source_identity: str | None = None


@dataclass
class _CachedKeys:
    keys: jwk.JWKSet
    fetched_at: float


@dataclass(frozen=True)
class _Registered:
    verify: InProcessVerify
    provider: str


def _not_jwt() -> InvalidIdentityTokenException:
    return InvalidIdentityTokenException(
        "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"
    )


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, unverified (only to route it to its issuer's keys)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise _not_jwt()
    parts = token.split(".")
    if len(parts) != 3:
        raise _not_jwt()
    try:
        # A compact JWS (RFC 7519 §7.2) of base64url segments, padded or not (only to route it to its issuer's
        # keys); jwcrypto, which checks the signature next, would also skip junk characters.
        header = orjson.loads(foreign_b64url_decode(parts[0]))
        claims = orjson.loads(foreign_b64url_decode(parts[1]))
        foreign_b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise _not_jwt() from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _not_jwt()
    return header, claims


class WebIdentityVerifier:
    """Checks web identity tokens from Gatehouse's issuers and from registered IAM OIDC providers."""

    def __init__(
        self,
        iam: IamService,
        tokens: TokenService,
        issuer_base: str,
        *,
        jwks_cache_seconds: float = 3600.0,
        refetch_seconds: float = 30.0,
        http_timeout: float = 5.0,
    ) -> None:
        self._iam = iam
        self._tokens = tokens
        self._issuer_prefix = issuer_base.rstrip("/") + "/"
        self._registered: dict[str, _Registered] = {}
        self._jwks: dict[str, _CachedKeys] = {}
        self._jwks_cache_seconds = jwks_cache_seconds
        self._refetch_seconds = refetch_seconds
        self._timeout = aiohttp.ClientTimeout(total=http_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._fetch_lock = asyncio.Lock()

    def register_issuer(self, issuer: str, verify: InProcessVerify, *, provider: str | None = None) -> None:
        """Accept tokens whose ``iss`` is ``issuer``, checked by ``verify`` (which returns the claims or raises
        InvalidIdentityToken / ExpiredTokenException). ``provider`` names it in trust policies (default: the
        issuer without its scheme)."""
        self._registered[issuer.rstrip("/")] = _Registered(verify, provider or provider_url(issuer))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def verify(self, token: str) -> VerifiedWebIdentity:
        """Validate ``token``; raise InvalidIdentityToken, ExpiredTokenException or IDPCommunicationError."""
        header, unverified = _peek(token)
        issuer = unverified.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise InvalidIdentityTokenException("The token has no issuer (iss).")
        issuer = issuer.rstrip("/")
        registered = self._registered.get(issuer)
        provider_record = None
        if registered is not None:
            claims = await registered.verify(token)
            provider = registered.provider
        elif issuer.startswith(self._issuer_prefix) and "/" not in issuer[len(self._issuer_prefix) :]:
            claims = await self._verify_user_pool_token(token, unverified)
            provider = provider_url(issuer)
            provider_record = await self._iam.find_oidc_provider(issuer)
        else:
            provider_record = await self._iam.find_oidc_provider(issuer)
            if provider_record is None:
                raise InvalidIdentityTokenException(f"No OpenIDConnect provider found in your account for {issuer}")
            claims = await self._verify_with_jwks(token, header, provider_record.jwks_url, provider_record.issuer_url)
            provider = provider_record.url
        audience = _audience(claims)
        if provider_record is not None and not set(audience) & set(provider_record.client_ids):
            raise InvalidIdentityTokenException("Incorrect token audience")
        if not audience:
            raise _not_jwt()
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidIdentityTokenException("The token has no subject (sub).")
        amr = claims.get("amr")
        identity = WebIdentity(
            provider=provider,
            subject=subject,
            audience=audience,
            amr=tuple(str(item) for item in amr) if isinstance(amr, list) else (),
        )
        tags, transitive = _session_tags(claims.get(TAGS_CLAIM))
        source = claims.get(SOURCE_IDENTITY_CLAIM)
        return VerifiedWebIdentity(
            identity=identity,
            issuer=issuer,
            claims=claims,
            principal_tags=tags,
            transitive_tag_keys=transitive,
            source_identity=source if isinstance(source, str) else None,
        )

    async def _verify_user_pool_token(self, token: str, unverified: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return await self._tokens.verify_jwt(token)
        except NotAuthorizedException as exc:
            # verify_jwt checks the signature before the expiry, so "expired" means a genuine, expired token.
            if "expired" in exc.message:
                raise _expired(unverified.get("exp")) from exc
            raise InvalidIdentityTokenException("The web identity token's signature could not be verified.") from exc

    async def _verify_with_jwks(
        self, token: str, header: Mapping[str, Any], jwks_url: str | None, issuer_url: str
    ) -> dict[str, Any]:
        if header.get("alg") not in ALLOWED_ALGS:
            raise InvalidIdentityTokenException("The web identity token is signed with an unsupported algorithm.")
        kid = header.get("kid")
        keys = await self._keys(issuer_url, jwks_url, force=False)
        key = _pick_key(keys, kid)
        if key is None:
            keys = await self._keys(issuer_url, jwks_url, force=True)
            key = _pick_key(keys, kid)
        if key is None:
            raise InvalidIdentityTokenException("No signing key of the identity provider matches the token's kid.")
        signed = jws.JWS()
        signed.allowed_algs = ALLOWED_ALGS
        try:
            signed.deserialize(token)
            signed.verify(key)
            claims = orjson.loads(signed.payload)
        except (JWException, ValueError) as exc:
            raise InvalidIdentityTokenException("The web identity token's signature could not be verified.") from exc
        if not isinstance(claims, dict):
            raise _not_jwt()
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise InvalidIdentityTokenException("The token has no expiry (exp).")
        if exp + LEEWAY_SECONDS <= now:
            raise _expired(exp)
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf - LEEWAY_SECONDS > now:
            raise InvalidIdentityTokenException("The token is not valid yet (nbf).")
        if str(claims.get("iss", "")).rstrip("/") != issuer_url.rstrip("/"):
            raise InvalidIdentityTokenException("The token's issuer does not match the provider.")
        return claims

    async def _keys(self, issuer_url: str, jwks_url: str | None, *, force: bool) -> jwk.JWKSet:
        cache_key = jwks_url or issuer_url
        now = time.monotonic()
        cached = self._jwks.get(cache_key)
        if cached is not None:
            fresh = now - cached.fetched_at < self._jwks_cache_seconds
            # An unknown kid refetches, but not more often than refetch_seconds: a token with a made-up kid
            # must not turn every request into a request to the IdP.
            if (fresh and not force) or (force and now - cached.fetched_at < self._refetch_seconds):
                return cached.keys
        async with self._fetch_lock:
            cached = self._jwks.get(cache_key)
            if cached is not None and cached.fetched_at > now:
                return cached.keys
            keys = await self._fetch_keys(issuer_url, jwks_url)
            self._jwks[cache_key] = _CachedKeys(keys, time.monotonic())
            return keys

    async def _fetch_keys(self, issuer_url: str, jwks_url: str | None) -> jwk.JWKSet:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            if jwks_url is None:
                discovery = await self._get_json(issuer_url.rstrip("/") + "/.well-known/openid-configuration")
                found = discovery.get("jwks_uri")
                if not isinstance(found, str):
                    raise ValueError("no jwks_uri")
                jwks_url = found
            document = await self._get_json(jwks_url)
            keys = jwk.JWKSet()
            keys.import_keyset(json.dumps(document))
            return keys
        except (aiohttp.ClientError, TimeoutError, ValueError, JWException) as exc:
            raise IDPCommunicationErrorException(
                "Couldn't retrieve verification key from your identity provider, please reference "
                "AssumeRoleWithWebIdentity documentation for requirements"
            ) from exc

    async def _get_json(self, url: str) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.get(url, allow_redirects=False) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            # A key set or discovery document is a few kilobytes; never buffer an unbounded answer.
            body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError("document too large")
        document = orjson.loads(body)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document


def _pick_key(keys: jwk.JWKSet, kid: object) -> jwk.JWK | None:
    if isinstance(kid, str):
        found = keys.get_key(kid)
        return found if found is not None else None
    # No kid: only unambiguous with a single key.
    members = list(keys["keys"])
    return members[0] if len(members) == 1 else None


def _audience(claims: Mapping[str, Any]) -> tuple[str, ...]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return (aud,)
    if isinstance(aud, list):
        return tuple(item for item in aud if isinstance(item, str))
    return ()


def _expired(exp: object) -> ExpiredTokenException:
    now = int(time.time())
    return ExpiredTokenException(
        f"Token expired: current date/time {now} must be before the expiration date/time {exp}"
    )


def _session_tags(raw: object) -> tuple[dict[str, str], tuple[str, ...]]:
    """Session tags from a web identity token (IAM User Guide, "Passing session tags using
    AssumeRoleWithWebIdentity"): ``principal_tags`` maps a key to a one-element list of its value."""
    if not isinstance(raw, dict):
        return {}, ()
    tags: dict[str, str] = {}
    principal_tags = raw.get("principal_tags")
    if isinstance(principal_tags, dict):
        for key, value in principal_tags.items():
            if isinstance(value, list) and value and isinstance(value[0], str):
                tags[str(key)] = value[0]
            elif isinstance(value, str):
                tags[str(key)] = value
    transitive = raw.get("transitive_tag_keys")
    keys = tuple(str(k) for k in transitive) if isinstance(transitive, list) else ()
    return tags, keys
