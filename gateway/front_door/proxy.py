"""The reverse proxy Gatehouse runs itself for an app with an ``upstream``: every request to the app's host is
checked (:func:`gateway.front_door.endpoints.check`) and, when the session lets it through, forwarded to the
upstream with the identity headers, as a proxy in front would forward it (RFC 9110 §7.6: the hop-by-hop fields
and those ``Connection`` names are not forwarded; ``X-Forwarded-For``, ``-Host`` and ``-Proto``, ``X-Real-IP`` and
RFC 7239's ``Forwarded`` are set).

What a browser sends in the identity headers' names, or in those of a proxy's (X-Forwarded-*, Forwarded,
X-Real-IP, X-Original-URL), is dropped, also spelt with underscores (one name to CGI and WSGI servers), so an
upstream can trust them; so is the front door's own session cookie, which the app has no use for. Bodies stream
both ways. Without a session, a GET or HEAD goes to the sign-in and comes back; another method gets 401. A
WebSocket (RFC 6455) is relayed message by message once the session lets its handshake through; another Upgrade
is not forwarded. With a path in ``upstream``, a request path that could resolve to beside it is refused (400).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway.front_door import endpoints
from gateway.logging import with_request_id
from gateway.oauth.wellknown import SERVICES
from gateway.services.front_door import FrontDoorApp, FrontDoorRefusal

log = structlog.get_logger("gateway.front_door")

# RFC 9110 §7.6.1 (and the fields older proxies treat so).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# What a browser says of itself or of the request that apps may take as a proxy's word: RFC 7239's Forwarded
# (read before X-Forwarded-* by Spring and others), X-Real-IP (set anew below), and the path overrides that IIS,
# Symfony and Zend honoured (X-Original-URL, X-Rewrite-URL), which would have the app serve another path than the
# one checked (a public path's request served as /admin). X-Forwarded-* and X-Gatehouse-* go by their prefix.
_PROXY_FIELDS = frozenset({"forwarded", "x-real-ip", "x-original-url", "x-rewrite-url"})
_UPSTREAM = web.AppKey("front_door_upstream", aiohttp.ClientSession)
_CHUNK = 64 * 1024


def _hop_by_hop(listed: str) -> frozenset[str]:
    return HOP_BY_HOP | {name.strip().lower() for name in listed.split(",") if name.strip()}


def _without_cookies(header: str, app: FrontDoorApp) -> str:
    """The Cookie header without the front door's own cookies (the session's, and every sign-in's)."""
    kept = []
    for part in header.split(";"):
        name = part.strip().split("=", 1)[0].strip()
        if name != app.session_cookie and not name.startswith(app.sign_in_cookie_prefix):
            kept.append(part)
    return ";".join(kept).strip()


def upstream_headers(
    request: web.Request, app: FrontDoorApp, identity: dict[str, str], client_address: str
) -> CIMultiDict[str]:
    """The headers the upstream is sent. ``client_address``: the browser's address (behind trusted proxies,
    the one they forwarded)."""
    dropped = _hop_by_hop(request.headers.get("Connection", ""))
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        lower = name.lower()
        # As CGI and WSGI servers read a name: "_" is "-" to them (X_Gatehouse_Groups is HTTP_X_GATEHOUSE_GROUPS).
        read_as = lower.replace("_", "-")
        if (
            lower in dropped
            or read_as in _PROXY_FIELDS
            or lower == "host"
            or read_as.startswith(("x-gatehouse-", "x-forwarded-"))
        ):
            continue
        if lower == "cookie":
            value = _without_cookies(value, app)
            if not value:
                continue
        headers.add(name, value)
    headers.update(identity)
    proto = "https" if app.secure else "http"
    headers["X-Forwarded-For"] = client_address
    headers["X-Forwarded-Host"] = app.host
    headers["X-Forwarded-Proto"] = proto
    headers["X-Real-IP"] = client_address
    headers["Forwarded"] = forwarded(client_address, app.host, proto)
    return headers


def forwarded(client_address: str, host: str, proto: str) -> str:
    """RFC 7239's Forwarded element for the request: the client (``unknown`` when not known, §6.2; an IPv6
    address bracketed and quoted, §6), the host it asked for and the scheme; a value that is no token quoted (§4)."""
    node = f"[{client_address}]" if ":" in client_address else client_address or "unknown"
    return ";".join(
        f"{name}={_token_or_quoted(value)}" for name, value in (("for", node), ("host", host), ("proto", proto))
    )


_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _token_or_quoted(value: str) -> str:
    if value and all(c in _TCHAR for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(_CHUNK):
        yield chunk


def leaves_prefix(raw_path: str) -> bool:
    """Whether a server could read ``raw_path``, after an upstream's path prefix, as a path outside it: a dot
    segment (``..``, ``%2e%2e``; Tomcat's ``..;x``; ``.. `` and ``...``, which Windows reads as ``..`` and ``.``), an
    encoded ``/`` or ``\\`` or a ``\\``, an encoded ``%`` (read by a server that decodes twice), or bytes that are not
    UTF-8 (overlong dots, to an old decoder)."""
    lowered = raw_path.lower()
    if any(part in lowered for part in ("%2f", "%5c", "%25", "\\")):
        return True
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        return True
    return any(segment and not segment.split(";", 1)[0].strip(". ") for segment in path.split("/"))


async def forward(request: web.Request) -> web.StreamResponse:
    app = request.config_dict[endpoints.BOUND_APP]
    services = request.config_dict[SERVICES]
    assert app.upstream is not None
    if urlsplit(app.upstream).path and leaves_prefix(request.rel_url.raw_path):
        # The upstream's prefix scopes the app (another may be served beside it): a path its server could resolve
        # to beside the prefix is not sent at all.
        return endpoints.message_page("Bad request", "This address cannot be served.", status=400)
    identity: dict[str, str] = {}
    if app.is_public(request.rel_url.raw_path):
        services.metrics.inc(services.metrics.front_door_requests, app=app.name, outcome="public")
    else:
        try:
            identity = (await endpoints.check(request, app)).headers()
        except FrontDoorRefusal as refusal:
            if refusal.bearer:
                return endpoints.bearer_refused(refusal)
            if refusal.status == 403:
                return endpoints.forbidden_page(app)
            if request.method in ("GET", "HEAD"):
                location = endpoints.start_url(app, request.rel_url.raw_path_qs)
                return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
            return web.Response(status=401, text="Sign-in required.", headers={"Cache-Control": "no-store"})
    client_address = services.rate_limits.address_of(request.remote, request.headers) or ""
    session = request.config_dict[_UPSTREAM]
    url = URL(app.upstream.rstrip("/") + request.rel_url.raw_path_qs, encoded=True)
    headers = upstream_headers(request, app, identity, client_address)
    if _is_websocket(request):
        return await _forward_websocket(request, app, session, url, headers)
    response: web.StreamResponse | None = None
    try:
        async with session.request(
            request.method,
            url,
            headers=headers,
            data=_body(request) if request.body_exists else None,
            allow_redirects=False,
        ) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason)
            dropped = _hop_by_hop(answer.headers.get("Connection", ""))
            for name, value in answer.headers.items():
                if name.lower() not in dropped and name.lower() != "content-length":
                    response.headers.add(name, value)
            if answer.content_length is not None:
                # The body as the upstream sent it (auto_decompress is off): its own length, encoded or not.
                response.content_length = answer.content_length
            await response.prepare(request)
            async for chunk in answer.content.iter_chunked(_CHUNK):
                await response.write(chunk)
            await response.write_eof()
            return response
    except (aiohttp.ClientError, TimeoutError, ConnectionResetError) as exc:
        log.warning("front_door.upstream_failed", app=app.name, error=type(exc).__name__, detail=str(exc)[:200])
        if response is not None and response.prepared:
            # The status line is sent: cutting the connection is the only way left to say the body is not whole.
            if request.transport is not None:
                request.transport.close()
            return response
        return endpoints.message_page("Bad gateway", "The app did not answer. Please try again later.", status=502)


def _is_websocket(request: web.Request) -> bool:
    """An opening handshake (RFC 6455 §4.1): a GET asking to upgrade its connection to the WebSocket protocol."""
    connection = {token.strip().lower() for token in request.headers.get("Connection", "").split(",")}
    return (
        request.method == "GET"
        and "upgrade" in connection
        and request.headers.get("Upgrade", "").lower() == "websocket"
    )


# The handshake's own fields: aiohttp's client makes the upstream handshake's anew.
_HANDSHAKE_FIELDS = frozenset(
    {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol"}
)


async def _forward_websocket(
    request: web.Request, app: FrontDoorApp, session: aiohttp.ClientSession, url: URL, headers: CIMultiDict[str]
) -> web.StreamResponse:
    """Relay a WebSocket: the upstream's handshake first (so the browser is offered the subprotocol the upstream
    chose, RFC 6455 §4.2.2), then every message each way until either side closes, with its close code."""
    protocols = tuple(
        p.strip() for p in ",".join(request.headers.getall("Sec-WebSocket-Protocol", ())).split(",") if p.strip()
    )
    for name in list(headers):
        if name.lower() in _HANDSHAKE_FIELDS:
            del headers[name]
    target = url.with_scheme("wss" if url.scheme == "https" else "ws")
    try:
        upstream = await session.ws_connect(target, headers=headers, protocols=protocols, autoping=False)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("front_door.upstream_failed", app=app.name, error=type(exc).__name__, detail=str(exc)[:200])
        return endpoints.message_page("Bad gateway", "The app did not answer. Please try again later.", status=502)
    browser = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (), autoping=False)
    async with upstream:
        await browser.prepare(request)

        async def relay(source: Any, sink: Any) -> None:
            async for message in source:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await sink.send_str(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                elif message.type == aiohttp.WSMsgType.PING:
                    await sink.ping(message.data)
                elif message.type == aiohttp.WSMsgType.PONG:
                    await sink.pong(message.data)
            # The source closed (or failed): close the other side with its code (1011 if it gave none).
            await sink.close(code=source.close_code or aiohttp.WSCloseCode.INTERNAL_ERROR)

        relays = [asyncio.create_task(relay(browser, upstream)), asyncio.create_task(relay(upstream, browser))]
        try:
            await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in relays:
                task.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
            await browser.close()
    return browser


def proxy_app(app: FrontDoorApp) -> web.Application:
    """The sub-application served on ``app``'s host: the front door's endpoints, everything else forwarded."""
    sub = web.Application()
    sub[endpoints.BOUND_APP] = app
    endpoints.add_routes(sub, checks=False)

    async def upstream_session(sub: web.Application) -> AsyncIterator[None]:
        # Bodies passed through as they come (no decompression), no cookie jar (the browser keeps its cookies).
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=300)
        async with aiohttp.ClientSession(
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout
        ) as session:
            sub[_UPSTREAM] = session
            yield

    sub.cleanup_ctx.append(upstream_session)
    sub.router.add_route("*", "/{tail:.*}", with_request_id(forward))
    return sub


def add_proxies(parent: web.Application, apps: tuple[FrontDoorApp, ...]) -> None:
    """Serve each app that has an ``upstream`` on its own host (matched before any of Gatehouse's routes)."""
    for app in apps:
        if app.upstream is not None:
            parent.add_domain(app.host, proxy_app(app))
