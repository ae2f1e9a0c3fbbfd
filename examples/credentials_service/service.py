"""A small file service whose routes are protected by Gatehouse temporary credentials.

Callers sign their requests with AWS Signature Version 4 (service name ``files``) using credentials from
Gatehouse's STS or identity pools. For each request this service asks Gatehouse's verify endpoint
(``POST /gatehouse/verify``) who signed it and whether that caller may perform the route's action on the
route's resource; the role's policies decide. Nothing here knows about users, tokens or keys.

    python examples/credentials_service/service.py --gatehouse http://localhost:9229 --port 8081

Routes (action, resource):

    GET  /whoami                  -- (none: any valid signature)
    GET  /files/{owner}/{name}    -- files:GetFile  arn:aws:files:::{owner}/{name}
    PUT  /files/{owner}/{name}    -- files:PutFile  arn:aws:files:::{owner}/{name}
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

GATEHOUSE = web.AppKey("gatehouse", str)
HTTP = web.AppKey("http", aiohttp.ClientSession)
FILES = web.AppKey("files", dict)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _action(request: web.Request) -> tuple[str | None, str]:
    """The action and resource a route needs, from its method and path."""
    info = request.match_info
    if request.path.startswith("/files/"):
        verb = "GetFile" if request.method == "GET" else "PutFile"
        return f"files:{verb}", f"arn:aws:files:::{info['owner']}/{info['name']}"
    return None, "*"


@web.middleware
async def require_signature(request: web.Request, handler: Handler) -> web.StreamResponse:
    body = await request.read()
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    action, resource = _action(request)
    question: dict[str, Any] = {
        "method": request.method,
        # The URL as the client sent it (scheme and Host as received, path and query still encoded).
        "url": f"{request.scheme}://{request.host}{request.raw_path}",
        "headers": headers,
        "body": base64.b64encode(body).decode(),
        "service": "files",
        "resource": resource,
        "context": {"aws:SourceIp": request.remote or ""},
    }
    if action is not None:
        question["action"] = action
    async with request.app[HTTP].post(f"{request.app[GATEHOUSE]}/gatehouse/verify", json=question) as answer:
        verdict = await answer.json()
        if answer.status != 200:
            # Not signed, forged, expired or revoked: Gatehouse says which.
            return web.json_response(verdict, status=401 if answer.status == 403 else answer.status)
    if action is not None and not verdict.get("Allowed"):
        return web.json_response(
            {"__type": "AccessDenied", "message": f"{verdict['Principal']['Arn']} may not {action} on {resource}"},
            status=403,
        )
    request["principal"] = verdict["Principal"]
    return await handler(request)


async def whoami(request: web.Request) -> web.Response:
    return web.json_response(request["principal"])


async def get_file(request: web.Request) -> web.Response:
    key = (request.match_info["owner"], request.match_info["name"])
    if key not in request.app[FILES]:
        return web.json_response({"__type": "NotFound"}, status=404)
    return web.Response(body=request.app[FILES][key])


async def put_file(request: web.Request) -> web.Response:
    key = (request.match_info["owner"], request.match_info["name"])
    request.app[FILES][key] = await request.read()
    return web.json_response({"stored": "/".join(key), "by": request["principal"]["Arn"]})


def create_app(gatehouse_url: str) -> web.Application:
    app = web.Application(middlewares=[require_signature])
    app[GATEHOUSE] = gatehouse_url.rstrip("/")
    app[FILES] = {}

    async def http_session(app: web.Application) -> Any:
        app[HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        yield
        await app[HTTP].close()

    app.cleanup_ctx.append(http_session)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/files/{owner}/{name}", get_file)
    app.router.add_put("/files/{owner}/{name}", put_file)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gatehouse", default="http://localhost:9229")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    web.run_app(create_app(args.gatehouse), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
