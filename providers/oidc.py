"""Generic OpenID Connect relying party: discovery, the code flow, and ID token validation.

OpenID Connect Core 1.0 §3.1.3.7 (ID token validation): the signature is checked with a key from the issuer's
JWKS, against an allow-list of asymmetric algorithms (never ``none``, never HMAC with a public key);
``iss`` equals the configured issuer exactly, ``aud`` contains our client id (and ``azp`` is ours when there are
several audiences), ``exp`` is in the future, and ``nonce`` equals the one we sent. OpenID Connect Discovery 1.0
§4 fills in endpoints the ProviderDetails leave out, and the discovered ``issuer`` must equal the configured one
(§4.3). Userinfo (§5.3) is read when an attributes URL is known; its ``sub`` must match the ID token's.

Upstream metadata follows the SAML providers' policy (providers.base): the discovery document is read again every
METADATA_REFRESH_SECONDS, and at once (at most every METADATA_RETRY_SECONDS) when an ID token names a key the
JWKS does not hold (the issuer may have moved its jwks_uri); the JWKS is cached for JWKS_CACHE_SECONDS and read
again for an unknown ``kid`` at most every JWKS_REFETCH_SECONDS. Each is fetched by one request at a time per
provider (concurrent sign-ins wait for it and share its result); a fetch that fails keeps what is known.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson
import structlog
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from providers.base import (
    METADATA_REFRESH_SECONDS,
    METADATA_RETRY_SECONDS,
    Identity,
    ProviderConfigError,
    UpstreamError,
    seconds_setting,
)
from providers.oauth2 import OAuth2Connector, check_url, require

__all__ = ["ALLOWED_ALGS", "OIDCConnector", "verify_id_token"]

# Asymmetric JWS algorithms only (RFC 7518 §3.1): a relying party never shares an HMAC key with the IdP here.
ALLOWED_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
CLOCK_SKEW_SECONDS = 60
# An unknown kid triggers one JWKS re-fetch (key rotation), at most this often.
JWKS_REFETCH_SECONDS = seconds_setting("GATEHOUSE_JWKS_RETRY_SECONDS", 5.0)
JWKS_CACHE_SECONDS = 3600.0
# The most keys one ID token is tried against (issuers publish a handful; rotation overlaps two or three).
MAX_CANDIDATE_KEYS = 8
# Endpoints discovery fills in (ProviderDetails -> discovery document member), OIDC Discovery 1.0 §3.
_DISCOVERED = (
    ("authorize_url", "authorization_endpoint"),
    ("token_url", "token_endpoint"),
    ("jwks_uri", "jwks_uri"),
    ("attributes_url", "userinfo_endpoint"),
)
_log = structlog.get_logger("gatehouse.providers.oidc")


# A compact JWS (RFC 7519 §7.2): three segments of base64url, padded or not (some issuers pad, or write the
# base64 alphabet's "+" and "/"). jwcrypto would also skip junk characters inside a segment.
# (An empty signature is still a compact JWS: alg "none", refused for its alg.)
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_+/-]+=*\.[A-Za-z0-9_+/-]+=*\.[A-Za-z0-9_+/-]*=*")


def _b64_json(segment: str) -> Any:
    import base64

    # orjson: a nesting too deep is a decode error (the standard library's parser raises RecursionError).
    return orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def verify_id_token(
    token: str,
    keys: jwk.JWKSet,
    *,
    issuers: frozenset[str],
    client_id: str,
    nonce: str | None,
    now: float | None = None,
) -> dict[str, Any]:
    """Validate an ID token per OIDC Core §3.1.3.7 and return its claims, or raise UpstreamError."""
    if not isinstance(token, str) or len(token) > 16384 or not _COMPACT_JWS.fullmatch(token):
        raise UpstreamError("id_token_malformed")
    try:
        header = _b64_json(token.split(".", 1)[0])
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamError("id_token_malformed") from exc
    if not isinstance(header, dict):
        raise UpstreamError("id_token_malformed")
    alg = header.get("alg")
    if alg not in ALLOWED_ALGS:
        raise UpstreamError("id_token_alg", f"algorithm {str(alg)[:20]!r} is not allowed")
    kid = header.get("kid")
    kty = "EC" if alg.startswith("ES") else "RSA"
    candidates = [k for k in keys["keys"] if (kid is None or k.get("kid") == kid) and k.get("kty") == kty]
    # Each try is a public-key operation on the event loop: a JWKS of thousands of keys (it may be up to
    # MAX_UPSTREAM_BYTES) must not make one callback cost a thousand verifications. An issuer with many keys
    # names the one it used (kid); a kid shared by many keys gets a few tries.
    if kid is None and len(candidates) > MAX_CANDIDATE_KEYS:
        raise UpstreamError("id_token_key", "the token names no key and the issuer has many")
    candidates = candidates[:MAX_CANDIDATE_KEYS]
    if not candidates:
        raise UpstreamError("id_token_key", "no key of the issuer matches the token's kid")
    payload: bytes | None = None
    for key in candidates:
        signed = jws.JWS()
        signed.allowed_algs = sorted(ALLOWED_ALGS)
        try:
            signed.deserialize(token)
            signed.verify(key, alg=alg)
        except (JWException, ValueError, TypeError):
            continue
        payload = signed.payload
        break
    if payload is None:
        raise UpstreamError("id_token_signature", "the signature does not verify with the issuer's keys")
    try:
        claims = orjson.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamError("id_token_malformed") from exc
    if not isinstance(claims, dict):
        raise UpstreamError("id_token_malformed")
    check_claims(claims, issuers=issuers, client_id=client_id, nonce=nonce, now=now)
    return claims


def check_claims(
    claims: Mapping[str, Any], *, issuers: frozenset[str], client_id: str, nonce: str | None, now: float | None = None
) -> None:
    now = time.time() if now is None else now
    if claims.get("iss") not in issuers:
        raise UpstreamError("id_token_iss", "issuer mismatch")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if client_id not in audiences:
        raise UpstreamError("id_token_aud", "audience mismatch")
    # §3.1.3.7 steps 4-5: several audiences need an azp, and an azp present must be our client id.
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise UpstreamError("id_token_aud", "azp mismatch")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp + CLOCK_SKEW_SECONDS < now:
        raise UpstreamError("id_token_expired")
    iat = claims.get("iat")
    if isinstance(iat, int | float) and not isinstance(iat, bool) and iat - CLOCK_SKEW_SECONDS > now:
        raise UpstreamError("id_token_iat", "issued in the future")
    if nonce is not None and claims.get("nonce") != nonce:
        raise UpstreamError("id_token_nonce", "nonce mismatch")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise UpstreamError("id_token_sub")


def _truthy(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


class OIDCConnector(OAuth2Connector):
    """Any OpenID Connect provider (Cognito's ``OIDC`` ProviderType)."""

    provider_type: ClassVar[str] = "OIDC"
    required_keys: ClassVar[tuple[str, ...]] = (
        "client_id",
        "client_secret",
        "authorize_scopes",
        "oidc_issuer",
        "attributes_request_method",
    )
    # The claim that carries group memberships when the IdP sends one.
    groups_claim: ClassVar[str] = "groups"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ProviderDetails as configured: discovery fills in only the endpoints these leave out.
        self._configured = dict(self.details)
        self._keys: jwk.JWKSet | None = None
        self._keys_at = 0.0
        self._keys_tried_at = float("-inf")
        self._keys_lock = asyncio.Lock()
        self._discovery: dict[str, str] | None = None
        self._discovered_at = 0.0
        self._discovery_tried_at = float("-inf")
        self._discovery_lock = asyncio.Lock()

    @classmethod
    def complete_details(cls, details: Mapping[str, str]) -> dict[str, str]:
        completed = super().complete_details(details)
        require(completed, "oidc_issuer")
        # Discovery is read under it and every ID token's iss must equal it: an issuer that is no URL could never
        # sign anyone in, so it is refused when the provider is made, as the other URLs are.
        check_url(completed, "oidc_issuer")
        if "openid" not in completed["authorize_scopes"].replace(",", " ").split():
            raise ProviderConfigError("ProviderDetails authorize_scopes must include openid.")
        completed.setdefault("attributes_url_add_attributes", "false")
        return completed

    def issuers(self) -> frozenset[str]:
        return frozenset({self.details["oidc_issuer"]})

    def _discovers(self) -> bool:
        return not all(self._configured.get(k) for k in ("authorize_url", "token_url", "jwks_uri"))

    async def prepare(self) -> None:
        """OIDC Discovery for the endpoints ProviderDetails leave out; read again when METADATA_REFRESH_SECONDS
        old (a failed refresh keeps the endpoints known)."""
        if not self._discovers():
            return
        due = self._discovery is None or time.monotonic() - self._discovered_at > METADATA_REFRESH_SECONDS
        # A refresh already under way (perhaps waiting on a slow issuer): the endpoints known serve meanwhile.
        busy = self._discovery is not None and self._discovery_lock.locked()
        if due and not busy:
            await self._discover(after_failure=False)

    async def _discover(self, *, after_failure: bool) -> None:
        """Fetch the discovery document, one fetch at a time; a failure raises only when nothing is known."""
        async with self._discovery_lock:
            now = time.monotonic()
            if self._discovery is not None:
                if now - self._discovery_tried_at < METADATA_RETRY_SECONDS:
                    return
                if not after_failure and now - self._discovered_at <= METADATA_REFRESH_SECONDS:
                    return  # another waiter's fetch just did it
            self._discovery_tried_at = now
            try:
                found = await self._fetch_discovery()
            except UpstreamError as error:
                if self._discovery is None:
                    raise
                _log.warning("oidc_discovery_refresh_failed", provider=self.name, reason=error.reason)
                return
            self._discovered_at = time.monotonic()
            if found == self._discovery:
                return
            if self._discovery is not None:
                _log.info("oidc_discovery_changed", provider=self.name)
                if found.get("jwks_uri") != self.details.get("jwks_uri"):
                    self._keys = None  # keys of another JWKS document
            self._discovery = found
            self.details = {**self._configured, **{k: v for k, v in found.items() if not self._configured.get(k)}}

    async def _fetch_discovery(self) -> dict[str, str]:
        issuer = self.details["oidc_issuer"]
        config = await self.fetch_json(
            "GET", issuer.rstrip("/") + "/.well-known/openid-configuration", what="discovery"
        )
        if config.get("issuer") != issuer:
            raise UpstreamError("discovery_issuer", "the discovered issuer differs from oidc_issuer")
        found = {key: config[member] for key, member in _DISCOVERED if isinstance(config.get(member), str)}
        for key, url in found.items():
            try:
                check_url({key: url}, key)
            except ProviderConfigError as exc:
                # As configured endpoints must be: the browser is sent to authorization_endpoint, and a
                # javascript: one would be a script of Gatehouse's origin.
                raise UpstreamError(
                    "discovery_invalid", f"the discovered {key} is not an absolute http(s) URL"
                ) from exc
        merged = {**found, **{k: v for k, v in self._configured.items() if v}}
        if not all(merged.get(k) for k in ("authorize_url", "token_url", "jwks_uri")):
            raise UpstreamError("discovery_incomplete")
        return found

    async def keys(self, *, refresh: bool = False) -> jwk.JWKSet:
        """The issuer's JWKS: cached for JWKS_CACHE_SECONDS; ``refresh`` (an unknown kid) reads it again unless
        it was tried in the last JWKS_REFETCH_SECONDS. One fetch at a time: concurrent callers wait for it and
        use its keys; a failed fetch keeps the keys known."""
        # Fresh, or stale with a fetch already under way: the keys in hand serve meanwhile.
        usable = time.monotonic() - self._keys_at <= JWKS_CACHE_SECONDS or self._keys_lock.locked()
        if self._keys is not None and not refresh and usable:
            return self._keys
        async with self._keys_lock:
            now = time.monotonic()
            if self._keys is not None:
                if not refresh and now - self._keys_at <= JWKS_CACHE_SECONDS:
                    return self._keys  # another caller's fetch just did it
                if now - self._keys_tried_at < JWKS_REFETCH_SECONDS:
                    return self._keys
            self._keys_tried_at = now
            try:
                body = await self.fetch_json("GET", self.details["jwks_uri"], what="jwks")
                try:
                    keys = jwk.JWKSet.from_json(json.dumps(body))
                except (JWException, ValueError, TypeError) as exc:
                    raise UpstreamError("jwks_invalid") from exc
            except UpstreamError as error:
                if self._keys is None:
                    raise
                _log.warning("oidc_jwks_refresh_failed", provider=self.name, reason=error.reason)
                return self._keys
            self._keys, self._keys_at = keys, time.monotonic()
            return keys

    async def verify(self, id_token: str, nonce: str | None) -> dict[str, Any]:
        await self.prepare()
        keys = await self.keys()
        options = {"issuers": self.issuers(), "client_id": self.details["client_id"], "nonce": nonce}
        try:
            return verify_id_token(id_token, keys, **options)  # type: ignore[arg-type]
        except UpstreamError as error:
            if error.reason != "id_token_key":
                raise
        # A kid we do not know: the issuer may have rotated its keys (or moved its JWKS) since we fetched them.
        if self._discovers():
            await self._discover(after_failure=True)
        return verify_id_token(id_token, await self.keys(refresh=True), **options)  # type: ignore[arg-type]

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        url = self.details.get("attributes_url")
        if not url:
            return {}
        method = self.details.get("attributes_request_method", "GET")
        headers = {"Authorization": f"Bearer {access_token}"}
        return await self.fetch_json(method, url, headers=headers, what="userinfo")

    async def complete(
        self, params: Mapping[str, str], *, nonce: str, code_verifier: str, redirect_uri: str
    ) -> Identity:
        # RFC 9207 §2.4: an issuer identified in the authorization response must be the one asked (mix-up
        # defence, RFC 9700 §4.4); a response naming another is refused before its code goes anywhere.
        if "iss" in params and params["iss"] not in self.issuers():
            raise UpstreamError("callback_iss", "the authorization response names another issuer")
        code = self.callback_code(params)
        tokens = await self.exchange_code(code, code_verifier=code_verifier, redirect_uri=redirect_uri)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise UpstreamError("no_id_token", "the token response has no id_token")
        claims = await self.verify(id_token, nonce)
        extra = await self.userinfo(str(tokens["access_token"]))
        if extra:
            if extra.get("sub") != claims["sub"]:
                raise UpstreamError("userinfo_sub", "userinfo is about another subject")
            claims = {**extra, **claims}
        return self.identity(claims)

    def identity(self, claims: Mapping[str, Any]) -> Identity:
        groups = claims.get(self.groups_claim)
        if isinstance(groups, str):
            groups = [groups]
        return Identity(
            provider=self.name,
            provider_type=self.provider_type,
            issuer=str(claims.get("iss")) if claims.get("iss") else None,
            subject=str(claims[self.subject_claim]),
            email=claims.get("email") if isinstance(claims.get("email"), str) else None,
            email_verified=_truthy(claims.get("email_verified")),
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
            claims=claims,
        )
