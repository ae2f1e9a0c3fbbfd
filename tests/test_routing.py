"""gateway.routing: routes under /{UserPoolId}/ found by one look-up resolve exactly as aiohttp's walk over
them, in the order they were added, resolves them (the same handler and match info, or the same 404/405)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_urldispatcher import MatchInfoError

from gateway.app import create_app
from gateway.routing import PoolRoutes, _under_root
from gateway.settings import Settings


def _app() -> web.Application:
    return create_app(Settings())


def _walk(app: web.Application, request: web.Request) -> tuple[object, dict[str, str] | None, set[str]]:
    """What the router's walk over the "/" candidates found before the look-up existed: the first resource,
    in the order added, that matches (its handler and match info), and the methods the others allow."""
    allowed: set[str] = set()
    for resource in app.router.resources():
        if not _under_root(resource):
            continue
        found = resource._match(request.rel_url.path_safe) if hasattr(resource, "_match") else None
        if found is None:
            continue
        routes = {route.method: route for route in resource}
        route = routes.get(request.method, routes.get("*"))
        allowed |= set(routes)
        if route is not None:
            return route.handler, found, allowed
    return None, None, allowed


POOL_PATHS = [
    "/us-east-1_AbC123xYz/{rest}",
    "/a%2Fb/{rest}",
    "/a%25b/{rest}",
    "/x{{y}}/{rest}",
]
ODD_PATHS = ["/p/unknown", "/p/login/", "/p/", "/p", "/p/ui/a/b/logo", "/p/ui/a/b/custom.css", "/p/oauth2/", "/"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
async def test_pool_paths_resolve_as_the_walk_would(method: str) -> None:
    app = _app()
    fast = [r for r in app.router._resource_index["/"] if isinstance(r, PoolRoutes)]
    assert len(fast) == 1 and len(fast[0]) > 10  # the look-up is in place, in front of the walk
    rests = [r.canonical.removeprefix("/{pool_id}/") for r in app.router.resources() if "{pool_id}/" in r.canonical]
    paths = [p.format(rest=rest) for p in POOL_PATHS for rest in rests if "{" not in rest] + ODD_PATHS
    for path in paths:
        request = make_mocked_request(method, path, app=app)
        match = await app.router.resolve(request)
        handler, info, allowed = _walk(app, request)
        if handler is not None:
            assert not isinstance(match, MatchInfoError), path
            assert match.handler is handler and dict(match) == info, path
        elif allowed:
            assert isinstance(match, MatchInfoError) and match.http_exception.status == 405, path
            assert set(match.http_exception.allowed_methods) >= allowed, path
        else:
            assert isinstance(match, MatchInfoError), path
            assert match.http_exception.status in (404, 405), path
