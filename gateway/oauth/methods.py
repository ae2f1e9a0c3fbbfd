"""The answer to a method an OAuth endpoint or hosted page does not take: 405 with ``Allow`` (RFC 9110
§15.5.6), in the endpoint's own kind -- the JSON error of RFC 6749 §5.2 for the token, userInfo and revocation
endpoints, the hosted error page for everything a browser opens -- rather than aiohttp's plain text.

Added once every route is (:func:`add_method_fallbacks`), as each resource's last route, for any method: the
methods the resource takes are matched first, so their requests cost nothing more.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import Resource

from gateway.logging import with_request_id
from gateway.oauth.wellknown import SERVICES
from gateway.ui.render import error_page

POOL_PREFIX = "/{pool_id}"
_JSON_PATHS = frozenset({"/oauth2/token", "/oauth2/userInfo", "/oauth2/revoke"})
_PAGE_PATHS = frozenset(
    {
        "/oauth2/authorize",
        "/logout",
        "/oauth2/idpresponse",
        "/saml2/idpresponse",
        "/saml2/logout",
        "/login",
        "/login/challenge",
        "/login/sso",
        "/signup",
        "/confirm",
        "/forgotPassword",
        "/confirmForgotPassword",
        "/gatehouse/feedback",
    }
)
_PAGE_MESSAGE = "This page cannot be opened that way. Go back to the application and try again."


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json_not_allowed(allow: str) -> Handler:
    async def not_allowed(request: web.Request) -> web.StreamResponse:
        from gateway.oauth.endpoints import json_response  # here: that module builds on this one's imports

        body = {"error": "invalid_request", "error_description": "This endpoint does not take that method."}
        return json_response(body, status=405, headers={"Allow": allow})

    return not_allowed


def _page_not_allowed(allow: str) -> Handler:
    async def not_allowed(request: web.Request) -> web.StreamResponse:
        response = error_page(request, request.app[SERVICES].settings, _PAGE_MESSAGE, status=405)
        response.headers["Allow"] = allow
        return response

    return not_allowed


def add_method_fallbacks(router: web.UrlDispatcher) -> None:
    """Give each OAuth endpoint and hosted page (at Cognito's path and under ``/{UserPoolId}``) a last route
    for any other method. Call after every route is added and before :func:`gateway.routing.index_pool_routes`.
    A path's routes may sit in more than one resource (routes of a path added apart): the fallback goes to the
    last of them, which the router tries last, and names the methods of all of them."""
    by_path: dict[str, list[Resource]] = {}
    for resource in router.resources():
        if isinstance(resource, Resource):
            by_path.setdefault(resource.canonical, []).append(resource)
    for canonical, resources in by_path.items():
        path = canonical[len(POOL_PREFIX) :] if canonical.startswith(POOL_PREFIX + "/") else canonical
        make = _json_not_allowed if path in _JSON_PATHS else _page_not_allowed if path in _PAGE_PATHS else None
        if make is None:
            continue
        methods = {route.method for resource in resources for route in resource} - {hdrs.METH_ANY}
        resources[-1].add_route(hdrs.METH_ANY, with_request_id(make(", ".join(sorted(methods)))))
