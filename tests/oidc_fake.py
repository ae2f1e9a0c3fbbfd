"""A fake external OpenID provider: a real HTTP server publishing a discovery document and a JWKS, and
minting RS256 ID tokens with its own key (PyJWT), for the STS tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import free_port


class FakeOidcProvider:
    """Issuer ``http://127.0.0.1:<port>/tenant``; keys at ``/tenant/jwks.json`` (named by discovery) and at
    ``/keys/other.json`` (named by nothing: only a configured jwks_url finds it). ``discovery=False``
    answers 404 for the discovery document."""

    def __init__(self, *, discovery: bool = True) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/tenant"
        self.other_jwks_url = f"http://127.0.0.1:{self.port}/keys/other.json"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.jwks_requests = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body: dict[str, Any]
                if self.path == "/tenant/.well-known/openid-configuration" and discovery:
                    body = {"issuer": provider.issuer, "jwks_uri": f"{provider.issuer}/jwks.json"}
                elif self.path in ("/tenant/jwks.json", "/keys/other.json"):
                    provider.jwks_requests += 1
                    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider.key.public_key()))
                    body = {"keys": [{**public, "kid": provider.kid, "alg": "RS256", "use": "sig"}]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def name(self) -> str:
        """The provider's name in logins and IAM: its issuer without the scheme."""
        return self.issuer.split("://", 1)[1]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def token(self, *, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "sub": "ext-user-1", "aud": "ext-app", "iat": now, "exp": now + 600, **claims}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": self.kid})
