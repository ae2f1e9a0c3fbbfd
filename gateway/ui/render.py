"""Rendering the hosted pages: Jinja2 templates (autoescaped), security headers, cookies and CSRF tokens.

Every page is sent with ``Content-Security-Policy`` (no scripts, ``frame-ancestors 'none'``; the passkey page
alone may load scripts from this origin, ``script-src 'self'``),
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``. Forms carry a
CSRF token checked by double submission: the same random value in an HttpOnly, SameSite=Lax cookie and in
a hidden field (OWASP's "double submit cookie"); a cross-site form cannot read or set the cookie.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Any

import jinja2
from aiohttp import web

from gateway.settings import Settings

CSRF_COOKIE = "gatehouse_csrf"
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


def csrf_token(request: web.Request) -> str:
    """The browser's CSRF token: the cookie's value, or a new one (set on the response by :func:`page`)."""
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    token: str | None = request.get("gatehouse_new_csrf")
    if token is None:
        token = secrets.token_urlsafe(32)
        request["gatehouse_new_csrf"] = token
    return token


def csrf_ok(request: web.Request, form: Mapping[str, str]) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    given = form.get(CSRF_FIELD) or ""
    return bool(cookie) and hmac.compare_digest(cookie.encode(), given.encode())


def finish(
    request: web.Request, response: web.StreamResponse, settings: Settings, *, scripts: bool = False
) -> web.StreamResponse:
    """Add the security headers and, if one was made for this request, the CSRF cookie. ``scripts``: the page
    loads scripts from this origin (``script-src 'self'``; never inline)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    if scripts:
        response.headers["Content-Security-Policy"] = SECURITY_HEADERS["Content-Security-Policy"].replace(
            "default-src 'none';", "default-src 'none'; script-src 'self';"
        )
    new = request.get("gatehouse_new_csrf")
    if new is not None:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="Lax", secure=secure_cookies(settings), path="/")
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
    values = {"custom_css_url": None, "logo_url": None, **context}
    body = _ENV.get_template(template).render({**values, "csrf": csrf_token(request), "csrf_field": CSRF_FIELD})
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    finish(request, response, settings, scripts=scripts)
    return response


def error_page(request: web.Request, settings: Settings, message: str, *, status: int = 400) -> web.Response:
    return page(request, settings, "error.html", {"message": message, "base": ""}, status=status)


def see_other(request: web.Request, settings: Settings, location: str) -> web.Response:
    """303 See Other: after a form POST the browser GETs the next page (never 307, which would re-POST the
    credentials to wherever the next page is, RFC 9700 §4.12)."""
    response = web.Response(status=303, headers={"Location": location})
    finish(request, response, settings)
    return response


def found(request: web.Request, settings: Settings, location: str) -> web.Response:
    response = web.Response(status=302, headers={"Location": location})
    finish(request, response, settings)
    return response
