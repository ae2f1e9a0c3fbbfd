"""Pagination tokens of the user-pool wire: opaque, and good only for the list that handed them out.

Cognito's tokens are "an identifier that you can present in an additional API request with the same
parameters" (ListUsers, ListGroups, ...); a token presented elsewhere is refused ("Paging marker ... is invalid
for request", InvalidParameterException). Here a token is the store's position in the list (a key or an
offset) sealed with the server's SecretBox (AES-GCM), the operation and what it lists (pool, group, user,
filter) bound in as associated data: a token from another pool, group, filter, user or operation, or one
altered on the way, does not open and is answered with InvalidParameterException -- never read as a position
in a list it was not made for. Sealed values are url-safe base64, within the models' ``[\\S]+`` tokens.
"""

from __future__ import annotations

import json

from gateway.api.awsjson import Call
from gateway.errors import InvalidParameterException
from gateway.secretbox import SecretBoxError

__all__ = ["page_key", "page_offset", "page_token"]

INVALID_TOKEN = "Invalid pagination token."
_DOMAIN = b"gatehouse/page-token/v1|"


def _aad(call: Call, scope: tuple[str, ...]) -> bytes:
    # JSON keeps the parts apart: ("a|b", "c") and ("a", "b|c") bind differently.
    return _DOMAIN + json.dumps([call.operation, *scope]).encode()


def page_token(call: Call, key: str | None, *scope: str) -> str | None:
    """The token for the next page after store position ``key`` of this call's list (``scope``)."""
    if key is None:
        return None
    return call.services.box.seal(key.encode(), aad=_aad(call, scope))


def page_key(call: Call, token: str | None, *scope: str) -> str | None:
    """The store position a token of this very list stands for; InvalidParameterException for any other."""
    if token is None:
        return None
    try:
        return call.services.box.open(token, aad=_aad(call, scope)).decode()
    except (SecretBoxError, UnicodeDecodeError) as exc:
        raise InvalidParameterException(INVALID_TOKEN) from exc


def page_offset(call: Call, token: str | None, *scope: str) -> int:
    """A token that stands for a position in a list the handler holds whole (a user's groups): 0 without one."""
    key = page_key(call, token, *scope)
    if key is None:
        return 0
    if not (key.isascii() and key.isdigit() and len(key) <= 9):
        raise InvalidParameterException(INVALID_TOKEN)
    return int(key)
