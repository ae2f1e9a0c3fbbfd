"""One look-up instead of a walk for the routes under ``/{UserPoolId}/...``.

Every OAuth endpoint and hosted page is also served under the pool's path (``/{pool_id}/oauth2/authorize``,
``/{pool_id}/login``, ...): about twenty routes whose first segment is a variable, so aiohttp's router files
them all under ``/`` and tries their patterns one by one, in the order they were added, for every such
request. :func:`index_pool_routes` puts one resource in front of them that finds the route by the rest of the
path (``oauth2/authorize``, ``login``) in a dict and lets that route's own resource match the request, so the
result (its match info, its allowed methods, a 405) is exactly what the walk would have found.
"""

from __future__ import annotations

import re

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import (
    AbstractResource,
    DynamicResource,
    ResourceRoute,
    UrlDispatcher,
    UrlMappingMatchInfo,
    _InfoDict,
)
from yarl import URL

POOL_PREFIX = "/{pool_id}/"

_Resolve = tuple[UrlMappingMatchInfo | None, set[str]]


class PoolRoutes(AbstractResource):
    """The ``/{pool_id}/<fixed rest>`` routes, by their fixed rest."""

    def __init__(self, by_rest: dict[str, DynamicResource]) -> None:
        super().__init__()
        self._by_rest = by_rest
        # Each rest's routes by method and the methods it allows, read at the first request (routes are all
        # added by then: the router is frozen when the app starts).
        self._routes: dict[str, tuple[dict[str, ResourceRoute], set[str]]] | None = None

    def _route_table(self) -> dict[str, tuple[dict[str, ResourceRoute], set[str]]]:
        table = {}
        for rest, resource in self._by_rest.items():
            routes = {route.method: route for route in resource if isinstance(route, ResourceRoute)}
            table[rest] = (routes, set(routes))
        return table

    @property
    def canonical(self) -> str:
        return POOL_PREFIX + "{rest}"

    def url_for(self, **kwargs: str) -> URL:
        raise NotImplementedError("each route builds its own URLs")

    async def resolve(self, request: web.Request) -> _Resolve:
        path = request.rel_url.path_safe
        # "/<pool>/<rest>": the rest after the second slash.
        slash = path.find("/", 1)
        if slash <= 1:
            return None, set()
        rest = path[slash + 1 :]
        table = self._routes if self._routes is not None else self._route_table()
        self._routes = table
        found = table.get(rest)
        if found is None:
            return None, set()
        pool_id = path[1:slash]
        if "{" in pool_id or "}" in pool_id:
            # Not a {pool_id} aiohttp would match ([^{}/]+): its own resource says so.
            return await self._by_rest[rest].resolve(request)
        routes, allowed = found
        route = routes.get(request.method) or routes.get(hdrs.METH_ANY)
        if route is None:
            return None, allowed
        # The variable as DynamicResource decodes it from the path (only %2F and %25 are left encoded).
        if "%" in pool_id:
            pool_id = pool_id.replace("%2F", "/").replace("%25", "%")
        return UrlMappingMatchInfo({"pool_id": pool_id}, route), allowed

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError("not for sub-applications")

    def get_info(self) -> _InfoDict:
        return {"formatter": self.canonical}

    def raw_match(self, path: str) -> bool:
        return False

    def __len__(self) -> int:
        return len(self._by_rest)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(())


def _under_root(resource: AbstractResource) -> bool:
    """Whether aiohttp's router files ``resource`` under ``/`` (its index key: the canonical path up to the
    segment holding the first variable)."""
    canonical = resource.canonical
    if "{" in canonical:
        canonical = canonical.partition("{")[0].rpartition("/")[0]
    return (canonical.rstrip("/") or "/") == "/"


def index_pool_routes(router: UrlDispatcher) -> None:
    """Route ``/{pool_id}/<rest>`` requests by ``<rest>`` in one dict look-up (see the module's docstring).

    A route is taken only when no route added before it could match its paths (which would have won the
    walk), so the order routes were added in still decides as before."""
    root = [r for r in router.resources() if _under_root(r)]
    by_rest: dict[str, DynamicResource] = {}
    earlier_patterns: list[re.Pattern[str]] = []
    for resource in root:
        canonical = resource.canonical
        rest = canonical.removeprefix(POOL_PREFIX)
        fixed = canonical.startswith(POOL_PREFIX) and "{" not in rest
        if (
            isinstance(resource, DynamicResource)
            and fixed
            and rest not in by_rest
            and not any(p.fullmatch(f"/p/{rest}") for p in earlier_patterns)
        ):
            by_rest[rest] = resource
            continue
        pattern = resource.get_info().get("pattern")
        if pattern is not None:
            earlier_patterns.append(pattern)
    if not by_rest:
        return
    for resource in by_rest.values():
        router.unindex_resource(resource)
    fast = PoolRoutes(by_rest)
    # First among the "/" candidates: the walk tries them in order.
    others = [r for r in root if r not in by_rest.values()]
    for resource in others:
        router.unindex_resource(resource)
    router.index_resource(fast)
    for resource in others:
        router.index_resource(resource)
