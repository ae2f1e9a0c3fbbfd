"""An app behind the front door: answers every request with what it was sent (method, path, headers, body) as
JSON, so a test sees exactly what Gatehouse or a proxy forwarded. ``/big`` answers ``?bytes=N`` bytes, streamed;
``/redirect`` answers a 302 to ``/elsewhere``; ``/gzip`` answers a gzip-encoded body; ``/truncated`` promises
1000 bytes, sends 100 and closes the connection."""

from __future__ import annotations

import gzip
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedApp


class EchoApp(ThreadedApp):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict[str, Any]] = []

    def build(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/big", self._big)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/gzip", self._gzip)
        app.router.add_get("/truncated", self._truncated)
        app.router.add_get("/ws", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        return app

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        seen = {
            "method": request.method,
            "path_qs": request.rel_url.raw_path_qs,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_length": len(body),
            "body_head": body[:64].decode("latin-1"),
        }
        self.requests.append(seen)
        response = web.json_response(seen, headers={"X-Upstream": "echo"})
        response.set_cookie("app_cookie", "from-upstream")
        return response

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        """A WebSocket (subprotocol "chat" if asked): first the identity headers it was opened with, then each
        message back; "close" closes with code 4001."""
        self.requests.append({"method": "WEBSOCKET", "path_qs": request.rel_url.raw_path_qs})
        ws = web.WebSocketResponse(protocols=("chat",))
        await ws.prepare(request)
        await ws.send_json(
            {"headers": {k: v for k, v in request.headers.items() if k.lower().startswith("x-gatehouse-")}}
        )
        async for message in ws:
            if message.type == web.WSMsgType.TEXT and message.data == "close":
                await ws.close(code=4001, message=b"bye")
            elif message.type == web.WSMsgType.TEXT:
                await ws.send_str("echo:" + message.data)
            elif message.type == web.WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    async def _big(self, request: web.Request) -> web.StreamResponse:
        size = int(request.query.get("bytes", "0"))
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        sent = 0
        while sent < size:
            chunk = min(65536, size - sent)
            await response.write(b"x" * chunk)
            sent += chunk
        await response.write_eof()
        return response

    async def _redirect(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    async def _gzip(self, request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(b"compressed hello" * 10),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        )

    async def _truncated(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = 1000
        await response.prepare(request)
        await response.write(b"z" * 100)
        assert request.transport is not None
        request.transport.close()
        return response
