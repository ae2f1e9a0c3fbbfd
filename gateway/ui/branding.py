"""The hosted pages' side of managed login branding: the logo a client's branding style names, and the URL
the pages show it by (``/ui/{UserPoolId}/branding/{ManagedLoginBrandingId}/logo``)."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from gateway.oauth.wellknown import SERVICES
from gateway.services.branding import CONTENT_TYPES, logo_asset
from gateway.services.container import Services

# An SVG is a document: served so that nothing in it runs or loads, whatever way it is opened.
_LOGO_HEADERS = {
    "Cache-Control": "public, max-age=300",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}


async def branding_logo_url(services: Services, pool_id: str, client_id: str, base: str) -> str | None:
    """The logo of the client's branding style, or None when it has no style or no logo in it."""
    record = await services.branding.find_for_client(pool_id, client_id)
    if record is None or logo_asset(record) is None:
        return None
    return f"{base}/ui/{pool_id}/branding/{record.branding_id}/logo?v={int(record.updated_at * 1000)}"


async def branding_logo(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    record = await store.get_managed_login_branding(request.match_info["ui_pool"], request.match_info["branding_id"])
    asset = logo_asset(record) if record is not None else None
    if asset is None:
        raise web.HTTPNotFound()
    try:
        data = base64.b64decode(str(asset["Bytes"]), validate=True)
    except (binascii.Error, ValueError):
        raise web.HTTPNotFound() from None
    content_type = CONTENT_TYPES.get(str(asset.get("Extension")), "application/octet-stream")
    return web.Response(body=data, content_type=content_type, headers=_LOGO_HEADERS)
