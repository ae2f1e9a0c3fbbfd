"""What the single-page-app modules share (tests/e2e/test_amplify_redirect.py, tests/e2e/test_oidc_client_ts.py): a
client library bundled by esbuild into an app, and the app's origin, a local HTTP server of its page."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.node_driver import js_modules
from tests.support import free_port


def spa_modules(package: str) -> pathlib.Path:
    """The node_modules folder with ``package`` and esbuild, after checking for Chromium and node: skips the module
    where one is missing (before any server starts)."""
    from tests.browser import chromium_path

    try:
        chromium_path()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    if shutil.which("node") is None:
        pytest.skip("node is not installed (scripts/test.sh installs it)")
    modules = js_modules(package, "esbuild")
    if not (modules / ".bin" / "esbuild").exists():
        pytest.skip(f"esbuild's command is not in {modules / '.bin'}: run scripts/test.sh")
    return modules


def bundle(app_js: str, directory: pathlib.Path, modules: pathlib.Path) -> bytes:
    """``app_js`` (an ES module importing from ``modules``) bundled by esbuild into one file."""
    (directory / "app.js").write_text(app_js)
    bundled = subprocess.run(
        [str(modules / ".bin" / "esbuild"), "app.js", "--bundle", "--format=esm", "--outfile=bundle.js"],
        cwd=directory,
        env={**os.environ, "NODE_PATH": str(modules)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bundled.returncode == 0, bundled.stderr
    return (directory / "bundle.js").read_bytes()


class AppServer:
    """The single-page app's origin: ``page`` at every path but ``/app.js``, the bundle, with ``{settings}`` in it
    replaced by :attr:`settings` as JSON. It answers at ``http://localhost:<port>`` (:attr:`url`) and at
    ``http://127.0.0.1:<port>`` (:attr:`other_url`): a second app of another origin, of the same site as a
    Gatehouse on 127.0.0.1 (RFC 6265bis: the site is the scheme and host, not the port)."""

    def __init__(self, page: str, bundled: bytes) -> None:
        self.settings: dict[str, Any] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/app.js":
                    body, kind = bundled, "text/javascript"
                else:
                    body, kind = page.replace("{settings}", json.dumps(server.settings)).encode(), "text/html"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        port = self._server.server_address[1]
        self.url = f"http://localhost:{port}"
        self.other_url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def refresh_refused(public_idp: Any, client_id: str, refresh_token: str) -> bool:
    """Whether REFRESH_TOKEN_AUTH refuses ``refresh_token`` (NotAuthorizedException: revoked, or never issued)."""
    try:
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
        )
    except ClientError as exc:
        return bool(exc.response["Error"]["Code"] == "NotAuthorizedException")
    return False
