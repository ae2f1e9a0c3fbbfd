"""Cross-origin access (the Fetch standard's CORS protocol) for the endpoints a browser app calls with fetch():
the token, userInfo and revocation endpoints, and a pool's discovery document and JWKS.

Cognito's token endpoint answers ``Access-Control-Allow-Origin: *`` so that a single-page app, a public client
with PKCE, can redeem its code from another origin; the app then calls userInfo with its bearer token (a
request that needs a preflight) and revokes its refresh token at sign-out, and its OIDC library reads the
discovery document and the JWKS first. Every origin is allowed, and never with credentials: none of these
endpoints reads a cookie, so a page of any origin gets nothing it could not get with the tokens it already holds.
The authorization endpoint and the hosted pages are navigations, not fetches, and get none of this.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_ALLOW_ORIGIN = "Access-Control-Allow-Origin"
# The challenge of a refused bearer token (RFC 6750 §3) is what a script reads to know why.
_ANSWER_HEADERS = {_ALLOW_ORIGIN: "*", "Access-Control-Expose-Headers": "WWW-Authenticate"}
# What a preflight may ask to send: header names (RFC 9110 §5.1 tokens), comma-separated, within reason.
_REQUEST_HEADERS = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*")
_MAX_REQUEST_HEADERS = 1024
_DEFAULT_HEADERS = "Authorization, Content-Type"
# How long a browser may keep a preflight's answer (browsers cap it: Chromium at 2 hours).
_MAX_AGE = "7200"


def allow_any_origin(handler: Handler) -> Handler:
    """``handler`` whose every answer, errors included (a script must read ``error``), any origin may read."""

    async def cross_origin(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(_ANSWER_HEADERS)
            raise
        response.headers.update(_ANSWER_HEADERS)
        return response

    return cross_origin


def preflight(methods: str) -> Handler:
    """The answer to a CORS preflight (``OPTIONS``) for an endpoint taking ``methods``: the headers asked for
    are allowed (with a wildcard origin and no credentials, an extra header gives a page nothing), else the
    two these endpoints read."""

    async def answer(request: web.Request) -> web.StreamResponse:
        asked = request.headers.get("Access-Control-Request-Headers", "").strip()
        fits = len(asked) <= _MAX_REQUEST_HEADERS and _REQUEST_HEADERS.fullmatch(asked) is not None
        headers = {
            _ALLOW_ORIGIN: "*",
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Allow-Headers": asked if fits else _DEFAULT_HEADERS,
            "Access-Control-Max-Age": _MAX_AGE,
        }
        return web.Response(status=204, headers=headers)

    return answer
