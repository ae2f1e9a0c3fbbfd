"""An app with no sign-in of its own, behind Gatehouse's front door (examples/front_door/README.md).

nginx (nginx.conf beside this file) lets a request through only once Gatehouse has signed the browser in, and
tells this app who the user is in request headers: ``X-Gatehouse-Username``, ``X-Gatehouse-Email``,
``X-Gatehouse-Groups`` (comma-separated, each name percent-decoded), ``X-Gatehouse-Sub`` and
``X-Gatehouse-Pool``. The app trusts them because only nginx can reach it (it listens on 127.0.0.1) and nginx
sets them itself, whatever a browser sends.

Run it: ``python examples/front_door/app.py`` (listens on http://127.0.0.1:8000; ``PORT`` changes the port), then
open http://localhost:8080/ (nginx), not this port.
"""

from __future__ import annotations

import os
from html import escape
from urllib.parse import unquote

from aiohttp import web


async def hello(request: web.Request) -> web.Response:
    username = request.headers.get("X-Gatehouse-Username", "")
    if not username:
        # Only a request that did not come through nginx has no user: this app is not meant to be reached so.
        return web.Response(status=403, text="Open this app through nginx: http://localhost:8080/\n")
    # Comma-separated; a comma, "%" or a character beyond ASCII inside a name is percent-encoded (UTF-8).
    groups = [unquote(g) for g in request.headers.get("X-Gatehouse-Groups", "").split(",") if g]
    email = request.headers.get("X-Gatehouse-Email", "")
    items = "".join(f"<li>{escape(group)}</li>" for group in groups) or "<li>(none)</li>"
    page = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Hello, {escape(username)}</title></head>
<body>
  <h1>Hello, {escape(username)}!</h1>
  <p>Your email address: {escape(email) or "(none)"}</p>
  <p>Your groups:</p>
  <ul>{items}</ul>
  <p><a href="/_gatehouse/sign_out">Sign out</a></p>
</body>
</html>
"""
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
