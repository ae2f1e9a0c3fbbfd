"""Custom scopes that still exist: a resource server's scope is ``{Identifier}/{ScopeName}``.

DeleteResourceServer (Cognito API reference): "After you delete a resource server, users can no longer
generate access tokens with scopes that are associated with that resource server." The same holds for a scope
that UpdateResourceServer took out of a server's list. An app client's AllowedOAuthScopes and a token
family's granted scopes are not rewritten when that happens, so every place that signs an access token from
them keeps only the custom scopes that still exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.services.pools import PoolService


def has_custom(scopes: Iterable[str]) -> bool:
    """Whether any scope is a resource server's (only those carry a ``/``: standard ones never do)."""
    return any("/" in s for s in scopes)


async def live_scopes(pools: PoolService, pool_id: str, scopes: Iterable[str]) -> list[str]:
    """``scopes`` in their order, less the custom ones whose resource server or scope name is gone.

    A scope name may not contain ``/`` (ResourceServerScopeNameType) while an identifier may, so the
    identifier is everything before the last ``/``. Each server's scopes come from the pools' short cache,
    which every resource-server write makes stale in every process at once (its change stamp)."""
    wanted = list(scopes)
    if not has_custom(wanted):
        return wanted
    known: dict[str, frozenset[str]] = {}
    result: list[str] = []
    for scope in wanted:
        if "/" not in scope:
            result.append(scope)
            continue
        identifier, _, name = scope.rpartition("/")
        if identifier not in known:
            known[identifier] = await pools.resource_scope_names(pool_id, identifier) or frozenset()
        if name in known[identifier]:
            result.append(scope)
    return result
