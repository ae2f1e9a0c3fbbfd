"""Reading a posted HTML form, for every browser-facing endpoint (OAuth, hosted pages, IdP callbacks)."""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDict


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
