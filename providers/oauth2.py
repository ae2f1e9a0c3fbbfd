"""What every OAuth 2.0 based connector shares: the authorization request, the code exchange, JSON fetches.

RFC 6749 §4.1 (authorization code grant), RFC 7636 (PKCE, S256 only), OAuth 2.0 Form Post Response Mode.
Upstream answers are read with a size cap and a timeout, and every failure becomes an
:class:`~providers.base.UpstreamError` -- an IdP that is down or hostile never surfaces as a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

import aiohttp

from providers.base import (
    MAX_UPSTREAM_BYTES,
    UPSTREAM_TIMEOUT,
    ProviderConfigError,
    RedirectConnector,
    UpstreamError,
)

__all__ = ["OAuth2Connector", "check_url", "require"]


def require(details: Mapping[str, str], *keys: str) -> None:
    for key in keys:
        value = details.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ProviderConfigError(f"ProviderDetails {key} is required.")


def check_url(details: Mapping[str, str], key: str) -> None:
    value = details.get(key)
    if value is None:
        return
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # an unclosed "[" host, for one
        raise ProviderConfigError(f"ProviderDetails {key} must be an absolute http(s) URL.") from exc
    if parts.scheme not in ("https", "http") or not parts.netloc or any(c.isspace() for c in value):
        raise ProviderConfigError(f"ProviderDetails {key} must be an absolute http(s) URL.")


def with_query(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


class OAuth2Connector(RedirectConnector):
    """An authorization-code client of one upstream. Subclasses say how the identity is read."""

    # Keys that hold upstream URLs; each may be overridden in ProviderDetails.
    url_keys: ClassVar[tuple[str, ...]] = ("authorize_url", "token_url", "attributes_url", "jwks_uri")
    # Cognito's per-provider defaults, filled in by complete_details.
    defaults: ClassVar[dict[str, str]] = {}
    required_keys: ClassVar[tuple[str, ...]] = ("client_id", "client_secret", "authorize_scopes")
    scope_separator: ClassVar[str] = " "

    @classmethod
    def complete_details(cls, details: Mapping[str, str]) -> dict[str, str]:
        completed = {**cls.defaults, **{k: v for k, v in details.items() if v is not None}}
        require(completed, *cls.required_keys)
        for key in cls.url_keys:
            check_url(completed, key)
        method = completed.get("token_request_method")
        if method is not None and method not in ("GET", "POST"):
            raise ProviderConfigError("ProviderDetails token_request_method must be GET or POST.")
        method = completed.get("attributes_request_method")
        if method is not None and method not in ("GET", "POST"):
            raise ProviderConfigError("ProviderDetails attributes_request_method must be GET or POST.")
        return completed

    # --- the authorization request ------------------------------------------------------------------------

    def scopes(self) -> list[str]:
        raw = self.details.get("authorize_scopes", "")
        return [s for s in raw.replace(",", " ").split() if s]

    def extra_authorize_params(self) -> dict[str, str]:
        return {}

    async def authorization_url(self, *, state: str, nonce: str, code_challenge: str, redirect_uri: str) -> str:
        await self.prepare()
        params = {
            "response_type": "code",
            "client_id": self.details["client_id"],
            "redirect_uri": redirect_uri,
            "scope": self.scope_separator.join(self.scopes()),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if "openid" in self.scopes():
            params["nonce"] = nonce
        params.update(self.extra_authorize_params())
        return with_query(self.details["authorize_url"], params)

    async def prepare(self) -> None:
        """Anything to learn before the first request (OIDC discovery)."""

    # --- the callback --------------------------------------------------------------------------------------

    @staticmethod
    def callback_code(params: Mapping[str, str]) -> str:
        if "error" in params:
            raise UpstreamError("upstream_error", str(params.get("error"))[:100])
        code = params.get("code")
        if not isinstance(code, str) or not code or len(code) > 4096:
            raise UpstreamError("no_code", "the callback carries no authorization code")
        return code

    def client_secret(self) -> str:
        return self.details.get("client_secret", "")

    async def exchange_code(self, code: str, *, code_verifier: str, redirect_uri: str) -> dict[str, Any]:
        """RFC 6749 §4.1.3 with the client's credentials in the body (client_secret_post) and the PKCE verifier."""
        await self.prepare()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": self.details["client_id"],
            "client_secret": self.client_secret(),
            "code_verifier": code_verifier,
        }
        if self.details.get("token_request_method") == "GET":
            body = await self.fetch_json("GET", with_query(self.details["token_url"], form), what="token")
        else:
            body = await self.fetch_json("POST", self.details["token_url"], data=form, what="token")
        if "error" in body:
            raise UpstreamError("token_error", str(body.get("error"))[:100])
        if not isinstance(body.get("access_token"), str):
            raise UpstreamError("token_error", "no access_token in the token response")
        # RFC 6749 §7.1: an access token of a type the client does not understand MUST NOT be used; ours are
        # presented as Bearer tokens (RFC 6750, whose §4 makes the type name case-insensitive). A response that
        # leaves token_type out is read as Bearer, as the providers that omit it mean.
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise UpstreamError("token_type", "the access token is not a Bearer token")
        return body

    async def fetch_json(
        self,
        method: str,
        url: str,
        *,
        what: str,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One upstream JSON request, capped in size and time; any failure is an UpstreamError."""
        try:
            async with self.context.http.request(
                method, url, data=data, headers=headers, timeout=UPSTREAM_TIMEOUT, allow_redirects=False
            ) as response:
                raw = await response.content.read(MAX_UPSTREAM_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(f"{what}_unreachable", type(exc).__name__) from exc
        if len(raw) > MAX_UPSTREAM_BYTES:
            raise UpstreamError(f"{what}_too_large")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise UpstreamError(f"{what}_not_json", f"HTTP {status}") from exc
        if not isinstance(body, dict):
            raise UpstreamError(f"{what}_not_json", "not a JSON object")
        if status >= 400 and "error" not in body:
            raise UpstreamError(f"{what}_failed", f"HTTP {status}")
        return body
