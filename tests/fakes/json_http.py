"""A stand-in JSON service on a loopback port (the standard library's threaded HTTP server): every GET is
answered by a function of the request path, so a fake provider is only what it answers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support import free_port

# What a GET of a path answers: a status and a JSON body (None: the status alone, no body).
Answer = Callable[[str], tuple[int, dict[str, Any] | None]]


class JsonServer:
    """Serve ``answer`` on 127.0.0.1 between :meth:`start` and :meth:`stop`."""

    def __init__(self, answer: Answer) -> None:
        self.port = free_port()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = answer(self.path)
                self.send_response(status)
                if body is None:
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
