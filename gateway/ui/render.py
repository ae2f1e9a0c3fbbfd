"""Rendering the hosted pages: Jinja2 templates (autoescaped), security headers, cookies and CSRF tokens.

Every page is sent with ``Content-Security-Policy`` (no scripts, ``frame-ancestors 'none'``; the passkey page
alone may load scripts from this origin, ``script-src 'self'``),
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``. Forms carry a
CSRF token checked by double submission: the same random value in an HttpOnly, SameSite=Lax cookie and in
a hidden field (OWASP's "double submit cookie"); a cross-site form cannot read or set the cookie.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any

import jinja2
from aiohttp import web
from multidict import CIMultiDict

from gateway.ids import new_opaque_token
from gateway.settings import Settings

CSRF_COOKIE = "gatehouse_csrf"
# Behind an https public URL every cookie of the hosted pages is named with the __Host- prefix (RFC 6265bis
# §4.1.3.2): a browser keeps such a cookie only when this very host set it, Secure, with Path=/ and no Domain.
# An unprefixed cookie can be planted by any sibling host (app.example.com beside a pool's auth.example.com,
# Domain=example.com; "cookie tossing") and would let it forge the CSRF double submission or fix a browser's
# SSO session to the attacker's account. Plain HTTP (development) keeps the bare names: browsers refuse the
# prefix without Secure.
HOST_PREFIX = "__Host-"
CSRF_FIELD = "_csrf"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# The headers of every page, ready to copy into a response (a page's own Content-Type and cookie are added).
_PAGE_HEADERS = CIMultiDict({"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS})
_SCRIPT_CSP = SECURITY_HEADERS["Content-Security-Policy"].replace(
    "default-src 'none';", "default-src 'none'; script-src 'self';"
)
_SCRIPT_PAGE_HEADERS = CIMultiDict({**_PAGE_HEADERS, "Content-Security-Policy": _SCRIPT_CSP})
# What a page is rendered with in place of its CSRF token, to be cut out and replaced by each browser's own
# token (see render_parts): random, so no page text can contain it.
_CSRF_STAND_IN = "csrf" + secrets.token_hex(24)
# What a browser's CSRF cookie must look like to be used: the URL-safe base64 of new_opaque_token. Any other
# value (too short, too long, or bytes that are not even text) is replaced by a new token.
_CSRF_SHAPE = re.compile(r"[A-Za-z0-9_-]{20,100}")

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway.ui", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    # The templates ship inside the package and never change while the server runs: compile each once,
    # instead of checking its file's modification time on every render.
    auto_reload=False,
)


def secure_cookies(settings: Settings) -> bool:
    return settings.issuer_base.startswith("https://")


def cookie_name(name: str, settings: Settings) -> str:
    """A hosted-page cookie's name: ``__Host-`` + ``name`` behind https (see HOST_PREFIX), else ``name``."""
    return f"{HOST_PREFIX}{name}" if secure_cookies(settings) else name


def csrf_token(request: web.Request, settings: Settings | None = None) -> str:
    """The browser's CSRF token: the cookie's value, or a new one (set on the response by :func:`page`)."""
    # The cookies are parsed only when the header names ours: most page views come without it.
    if CSRF_COOKIE in request.headers.get("Cookie", ""):
        existing = request.cookies.get(cookie_name(CSRF_COOKIE, settings or _settings(request)))
        if existing and _CSRF_SHAPE.fullmatch(existing):
            return existing
    token: str | None = request.get("gatehouse_new_csrf")
    if token is None:
        token = new_opaque_token(32)
        request["gatehouse_new_csrf"] = token
    return token


def _settings(request: web.Request) -> Settings:
    from gateway.oauth.wellknown import SERVICES  # here: gateway.oauth builds on this module

    return request.app[SERVICES].settings


def csrf_ok(request: web.Request, form: Mapping[str, str]) -> bool:
    cookie = request.cookies.get(cookie_name(CSRF_COOKIE, _settings(request))) or ""
    given = form.get(CSRF_FIELD) or ""
    # A token is URL-safe base64; a cookie of other text (even undecodable bytes) is no token at all.
    return bool(_CSRF_SHAPE.fullmatch(cookie)) and hmac.compare_digest(
        cookie.encode(), given.encode("utf-8", "surrogatepass")
    )


def finish(
    request: web.Request, response: web.StreamResponse, settings: Settings, *, scripts: bool = False
) -> web.StreamResponse:
    """Add the security headers and, if one was made for this request, the CSRF cookie. ``scripts``: the page
    loads scripts from this origin (``script-src 'self'``; never inline)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    if scripts:
        response.headers["Content-Security-Policy"] = _SCRIPT_CSP
    new = request.get("gatehouse_new_csrf")
    if new is not None:
        response.headers.add("Set-Cookie", _csrf_cookie(new, settings))
    return response


def _csrf_cookie(token: str, settings: Settings) -> str:
    """The CSRF cookie's Set-Cookie value, as ``response.set_cookie`` would write it (RFC 6265 §4.1), without
    building a Morsel per response: the token is URL-safe base64, which needs no quoting."""
    if secure_cookies(settings):
        return f"{HOST_PREFIX}{CSRF_COOKIE}={token}; HttpOnly; Path=/; SameSite=Lax; Secure"
    return f"{CSRF_COOKIE}={token}; HttpOnly; Path=/; SameSite=Lax"


def render_parts(template: str, context: Mapping[str, Any]) -> tuple[bytes, ...]:
    """A page rendered without its CSRF token: the encoded text cut where the token goes. Everything else on a
    page is the same for every browser, so the parts can be kept and joined around each browser's token."""
    values = {"custom_css_url": None, "logo_url": None, "logo_alt": "", **context}
    text = _ENV.get_template(template).render({**values, "csrf": _CSRF_STAND_IN, "csrf_field": CSRF_FIELD})
    return tuple(part.encode() for part in text.split(_CSRF_STAND_IN))


def page_from_parts(
    request: web.Request, settings: Settings, parts: tuple[bytes, ...], *, status: int = 200, scripts: bool = False
) -> web.Response:
    """The page :func:`render_parts` cut, with this browser's CSRF token (escaped, as the template would have
    escaped it: a token from a cookie is the browser's text), the security headers and the CSRF cookie."""
    token = csrf_token(request, settings)
    new = request.get("gatehouse_new_csrf") is not None
    # Made here or taken from a cookie of its shape, the token is URL-safe base64: it needs no escaping.
    value = token.encode()
    # The response copies the headers it is given.
    response = web.Response(
        body=value.join(parts), status=status, headers=_SCRIPT_PAGE_HEADERS if scripts else _PAGE_HEADERS
    )
    if new:
        response.headers.add("Set-Cookie", _csrf_cookie(token, settings))
    return response


def page(
    request: web.Request,
    settings: Settings,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    scripts: bool = False,
) -> web.Response:
    """A rendered page with its CSRF token and the security headers."""
    return page_from_parts(request, settings, render_parts(template, context), status=status, scripts=scripts)


def error_page(request: web.Request, settings: Settings, message: str, *, status: int = 400) -> web.Response:
    return page(request, settings, "error.html", {"message": message, "base": ""}, status=status)


def see_other(request: web.Request, settings: Settings, location: str) -> web.Response:
    """303 See Other: after a form POST the browser GETs the next page (never 307, which would re-POST the
    credentials to wherever the next page is, RFC 9700 §4.12)."""
    return _redirect(request, settings, 303, location)


def found(request: web.Request, settings: Settings, location: str) -> web.Response:
    return _redirect(request, settings, 302, location)


_REDIRECT_HEADERS = CIMultiDict(SECURITY_HEADERS)


def _redirect(request: web.Request, settings: Settings, status: int, location: str) -> web.Response:
    """A redirect with the security headers and, if one was made for this request, the CSRF cookie (what
    :func:`finish` adds, from headers made once)."""
    response = web.Response(status=status, headers=_REDIRECT_HEADERS)  # copied by the response
    response.headers["Location"] = location
    new = request.get("gatehouse_new_csrf")
    if new is not None:
        response.headers.add("Set-Cookie", _csrf_cookie(new, settings))
    return response
