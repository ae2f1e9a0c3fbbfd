"""Reading a posted HTML form, for every browser-facing endpoint (OAuth, hosted pages, IdP callbacks)."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDict

from gateway.oauth.wellknown import SERVICES
from gateway.ui.render import error_page

# What a browser is shown for a form past the server's body limit (the hosted pages' _page_error says the same).
FORM_TOO_LARGE = "That form is too large to send. Go back, shorten what you entered, and try again."


async def read_form(request: web.Request) -> MultiDict[str]:
    """The text fields of a POST's form body (url-encoded or multipart; files are dropped).

    A body that is not the form its Content-Type claims (a multipart body without its boundary, bytes that are
    not in its charset, a charset no codec has, or not what its Content-Encoding says) reads as an empty form:
    the endpoint then answers as it does for missing parameters, its own clear error, rather than letting
    aiohttp's parser fail the request with a 500.
    """
    try:
        form = await request.post()
    except (ValueError, LookupError, web.RequestPayloadError):  # ValueError: UnicodeDecodeError too;
        return MultiDict()  # LookupError: an unknown charset; RequestPayloadError: corrupt gzip or deflate
    return MultiDict((key, value) for key, value in form.items() if isinstance(value, str))


def oversized_form_page(request: web.Request, exc: Exception) -> web.Response | None:
    """For a browser-facing POST (``with_request_id(handler, oversized_form_page)``): a body past the server's
    limit (``client_max_size``) or with more fields than aiohttp reads -- aiohttp's HTTPRequestEntityTooLarge,
    a plain-text 413 -- answered with the hosted error page and its headers (413), as every other refused form
    is answered."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return error_page(request, request.app[SERVICES].settings, FORM_TOO_LARGE, status=413)
    return None
