"""A fake external OpenID provider: a real HTTP server publishing a discovery document and a JWKS, and
minting RS256 ID tokens with its own key (PyJWT), for the STS tests."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.json_http import JsonServer


class FakeOidcProvider:
    """Issuer ``http://127.0.0.1:<port>/tenant``; keys at ``/tenant/jwks.json`` (named by discovery) and at
    ``/keys/other.json`` (named by nothing: only a configured jwks_url finds it). ``discovery=False``
    answers 404 for the discovery document."""

    def __init__(self, *, discovery: bool = True) -> None:
        self.discovery = discovery
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.jwks_requests = 0
        self._http = JsonServer(self._answer)
        self.port = self._http.port
        self.issuer = f"http://127.0.0.1:{self.port}/tenant"
        self.other_jwks_url = f"http://127.0.0.1:{self.port}/keys/other.json"

    def _answer(self, path: str) -> tuple[int, dict[str, Any] | None]:
        if path == "/tenant/.well-known/openid-configuration" and self.discovery:
            return 200, {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/jwks.json"}
        if path in ("/tenant/jwks.json", "/keys/other.json"):
            self.jwks_requests += 1
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
            return 200, {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}]}
        return 404, None

    @property
    def name(self) -> str:
        """The provider's name in logins and IAM: its issuer without the scheme."""
        return self.issuer.split("://", 1)[1]

    def start(self) -> None:
        self._http.start()

    def stop(self) -> None:
        self._http.stop()

    def token(self, *, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "sub": "ext-user-1", "aud": "ext-app", "iat": now, "exp": now + 600, **claims}
        return jwt.encode(body, key or self.key, algorithm="RS256", headers={"kid": self.kid})
