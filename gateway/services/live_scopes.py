"""Custom scopes that still exist: a resource server's scope is ``{Identifier}/{ScopeName}``.

DeleteResourceServer (Cognito API reference): "After you delete a resource server, users can no longer
generate access tokens with scopes that are associated with that resource server." The same holds for a scope
that UpdateResourceServer took out of a server's list. An app client's AllowedOAuthScopes and a token
family's granted scopes are not rewritten when that happens, so every place that signs an access token from
them keeps only the custom scopes that still exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.storage.base import Store


def has_custom(scopes: Iterable[str]) -> bool:
    """Whether any scope is a resource server's (only those carry a ``/``: standard ones never do)."""
    return any("/" in s for s in scopes)


async def live_scopes(store: Store, pool_id: str, scopes: Iterable[str]) -> list[str]:
    """``scopes`` in their order, less the custom ones whose resource server or scope name is gone.

    A scope name may not contain ``/`` (ResourceServerScopeNameType) while an identifier may, so the
    identifier is everything before the last ``/``. One store read per distinct identifier, none when
    there is no custom scope."""
    wanted = list(scopes)
    if not has_custom(wanted):
        return wanted
    known: dict[str, set[str]] = {}
    result: list[str] = []
    for scope in wanted:
        if "/" not in scope:
            result.append(scope)
            continue
        identifier, _, name = scope.rpartition("/")
        if identifier not in known:
            server = await store.get_resource_server(pool_id, identifier)
            known[identifier] = {s["ScopeName"] for s in server.scopes} if server is not None else set()
        if name in known[identifier]:
            result.append(scope)
    return result
