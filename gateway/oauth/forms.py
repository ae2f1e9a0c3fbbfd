"""Reading a posted HTML form, for every browser-facing endpoint (OAuth, hosted pages, IdP callbacks)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import MultiDict

from gateway.oauth.wellknown import SERVICES
from gateway.ui.render import error_page

# What a browser is shown for a form past the server's body limit (the hosted pages' _guard says the same).
FORM_TOO_LARGE = "That form is too large to send. Go back, shorten what you entered, and try again."

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def read_form(request: web.Request) -> MultiDict[str]:
    """The text fields of a POST's form body (url-encoded or multipart; files are dropped).

    A body that is not the form its Content-Type claims (a multipart body without its boundary, bytes that are
    not in its charset, a charset no codec has) reads as an empty form: the endpoint then answers as it does
    for missing parameters, its own clear error, rather than letting aiohttp's parser fail the request with a
    500.
    """
    try:
        form = await request.post()
    except (ValueError, LookupError):  # UnicodeDecodeError included; LookupError: an unknown charset
        return MultiDict()
    return MultiDict((key, value) for key, value in form.items() if isinstance(value, str))


def page_for_oversized_forms(handler: Handler) -> Handler:
    """``handler`` (a browser-facing POST), answering a body past the server's limit (``client_max_size``) or
    with more fields than aiohttp reads -- aiohttp's HTTPRequestEntityTooLarge, a plain-text 413 -- with the
    hosted error page and its headers (413), as every other refused form is answered. Registered for POST
    routes only: a GET never reads a body."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return error_page(request, request.app[SERVICES].settings, FORM_TOO_LARGE, status=413)

    return wrapped
