"""Fake upstream OAuth 2.0 / OpenID Connect providers that speak the real protocol with real signatures.

* :class:`FakeOIDC` -- a generic OpenID Connect provider with discovery, JWKS, userinfo, PKCE checks and ID
  tokens signed with its own RSA key; ``id_token_mode`` makes it answer with hostile tokens (another key,
  ``alg: none``, HS256 keyed with the public key, wrong ``aud`` / ``iss``, expired, wrong nonce).
* :class:`FakeGoogle` -- the same at Google's paths and issuer layout.
* :class:`FakeApple` -- form_post answers, the first-login ``user`` JSON, and verification of the ES256 client
  secret JWT against the key registered for the team.
* :class:`FakeFacebook` -- dialog/oauth, a GET code exchange, and the Graph API ``/me`` checking
  ``appsecret_proof``.
* :class:`FakeAmazon` -- Login with Amazon's ``/ap/oa``, token and ``/user/profile``.

Each records what it was asked (``authorize_requests``, ``token_requests``) so tests can assert on the wire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jwcrypto import jwk, jws, jwt

from tests.fakes.server import ThreadedApp


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode()).digest())


class FakeOAuth(ThreadedApp):
    """Shared machinery: one auto-consenting user, codes, PKCE and client checks."""

    authorize_path = "/authorize"
    token_path = "/token"
    token_method = "POST"

    def __init__(self, *, client_id: str = "fake-client", client_secret: str = "fake-secret") -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.user: dict[str, Any] = {"sub": "1001", "email": "ann@example.com", "email_verified": True, "name": "Ann"}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        # When true, the person "declines" at the consent screen: the answer is error=access_denied.
        self.decline = False

    def routes(self, app: web.Application) -> None:
        app.router.add_get(self.authorize_path, self.authorize)
        app.router.add_route(self.token_method, self.token_path, self.token)

    def build(self) -> web.Application:
        app = web.Application()
        self.routes(app)
        return app

    # --- authorization endpoint ------------------------------------------------------------------------

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        self.authorize_requests.append(params)
        if params.get("client_id") != self.client_id or params.get("response_type") != "code":
            return web.json_response({"error": "invalid_request"}, status=400)
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return web.json_response({"error": "invalid_request", "error_description": "PKCE required"}, status=400)
        if self.decline:
            return self.answer(params["redirect_uri"], {"error": "access_denied", "state": params.get("state", "")})
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**params, "user": dict(self.user)}
        return self.answer(params["redirect_uri"], {"code": code, "state": params.get("state", "")})

    def answer(self, redirect_uri: str, values: dict[str, str]) -> web.StreamResponse:
        raise web.HTTPFound(redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(values))

    # --- token endpoint ----------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else dict(request.query)
        params = {k: str(v) for k, v in form.items()}
        self.token_requests.append(params)
        error = self.check_client(request, params)
        if error:
            return web.json_response({"error": "invalid_client", "error_description": error}, status=401)
        grant = self.codes.pop(params.get("code", ""), None)  # one use
        if grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        if params.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant", "error_description": "redirect_uri"}, status=400)
        if s256(params.get("code_verifier", "")) != grant["code_challenge"]:
            return web.json_response({"error": "invalid_grant", "error_description": "PKCE"}, status=400)
        access_token = secrets.token_urlsafe(24)
        self.access_tokens[access_token] = grant
        return web.json_response(self.token_response(access_token, grant))

    def check_client(self, request: web.Request, params: dict[str, str]) -> str | None:
        if params.get("client_id") != self.client_id or params.get("client_secret") != self.client_secret:
            return "bad client credentials"
        return None

    def token_response(self, access_token: str, grant: dict[str, Any]) -> dict[str, Any]:
        return {"access_token": access_token, "token_type": "Bearer", "expires_in": 3600}

    def bearer(self, request: web.Request) -> dict[str, Any] | None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else request.query.get("access_token", "")
        return self.access_tokens.get(token)


class FakeOIDC(FakeOAuth):
    """A generic OpenID Connect provider (Core + Discovery)."""

    jwks_path = "/jwks"
    userinfo_path = "/userinfo"
    issuer_path = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key = jwk.JWK.generate(kty="RSA", size=2048, kid="fake-key-1")
        self.other_key = jwk.JWK.generate(kty="RSA", size=2048, kid="fake-key-1")
        self.id_token_mode: str | None = None
        self.userinfo_extra: dict[str, Any] = {}
        self.userinfo_sub: str | None = None

    @property
    def issuer(self) -> str:
        return self.url + self.issuer_path

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get(self.issuer_path + "/.well-known/openid-configuration", self.discovery)
        app.router.add_get(self.jwks_path, self.jwks)
        app.router.add_route("*", self.userinfo_path, self.userinfo)

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.url + self.authorize_path,
                "token_endpoint": self.url + self.token_path,
                "jwks_uri": self.url + self.jwks_path,
                "userinfo_endpoint": self.url + self.userinfo_path,
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def jwks(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [json.loads(self.key.export_public())]})

    async def userinfo(self, request: web.Request) -> web.Response:
        grant = self.bearer(request)
        if grant is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        user = grant["user"]
        return web.json_response({**user, **self.userinfo_extra, "sub": self.userinfo_sub or user["sub"]})

    def id_claims(self, grant: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 600,
            **grant["user"],
        }
        if "nonce" in grant:
            claims["nonce"] = grant["nonce"]
        mode = self.id_token_mode
        if mode == "wrong_aud":
            claims["aud"] = "someone-else"
        elif mode == "wrong_iss":
            claims["iss"] = "https://evil.example"
        elif mode == "expired":
            claims["exp"], claims["iat"] = now - 3600, now - 7200
        elif mode == "nonce":
            claims["nonce"] = "not-the-nonce"
        return claims

    def sign(self, claims: dict[str, Any]) -> str:
        mode = self.id_token_mode
        if mode == "alg_none":
            header = b64url(json.dumps({"alg": "none", "kid": "fake-key-1"}).encode())
            return header + "." + b64url(json.dumps(claims).encode()) + "."
        if mode == "hs256_public_key":
            # The classic confusion attack: HMAC keyed with the RSA public key the verifier holds.
            secret = jwk.JWK(kty="oct", k=b64url(self.key.export_to_pem()))
            signed = jws.JWS(json.dumps(claims).encode())
            signed.allowed_algs = ["HS256"]
            signed.add_signature(secret, alg="HS256", protected={"alg": "HS256", "kid": "fake-key-1"})
            return str(signed.serialize(compact=True))
        key = self.other_key if mode == "other_key" else self.key
        token = jwt.JWT(header={"alg": "RS256", "kid": key.kid}, claims=claims)
        token.make_signed_token(key)
        return str(token.serialize())

    def token_response(self, access_token: str, grant: dict[str, Any]) -> dict[str, Any]:
        body = super().token_response(access_token, grant)
        if "openid" in grant.get("scope", "").split() or self.always_id_token:
            body["id_token"] = self.sign(self.id_claims(grant))
        return body

    always_id_token = False


class FakeGoogle(FakeOIDC):
    authorize_path = "/o/oauth2/v2/auth"
    token_path = "/oauth2/v4/token"
    jwks_path = "/oauth2/v3/certs"
    userinfo_path = "/v1/people/me"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user = {
            "sub": "110169484474386276334",
            "email": "ann@gmail.example",
            "email_verified": True,
            "name": "Ann Example",
            "given_name": "Ann",
            "family_name": "Example",
            "picture": "https://lh3.example/ann.png",
        }

    def provider_details(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "authorize_scopes": "openid email profile",
            "authorize_url": self.url + self.authorize_path,
            "token_url": self.url + self.token_path,
            "jwks_uri": self.url + self.jwks_path,
            "oidc_issuer": self.issuer,
        }


class FakeApple(FakeOIDC):
    """Sign in with Apple: form_post, first-login ``user``, and the ES256 client-secret JWT checked."""

    authorize_path = "/auth/authorize"
    token_path = "/auth/token"
    jwks_path = "/auth/keys"
    always_id_token = True

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("client_id", "com.example.gatehouse")
        super().__init__(**kwargs)
        self.team_id = "TEAM123456"
        self.key_id = "KEY1234567"
        self.signing_key = jwk.JWK.generate(kty="EC", crv="P-256")
        self.user = {"sub": "001234.abcdef.0987", "email": "x7@privaterelay.example", "email_verified": "true"}
        self.first_login_names: set[str] = set()
        self.client_secrets: list[dict[str, Any]] = []

    def private_key_pem(self) -> str:
        return self.signing_key.export_to_pem(private_key=True, password=None).decode()

    def provider_details(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "team_id": self.team_id,
            "key_id": self.key_id,
            "private_key": self.private_key_pem(),
            "authorize_scopes": "email name",
            "authorize_url": self.url + self.authorize_path,
            "token_url": self.url + self.token_path,
            "jwks_uri": self.url + self.jwks_path,
            "oidc_issuer": self.issuer,
        }

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("response_mode") != "form_post":
            return web.json_response({"error": "invalid_request", "error_description": "form_post"}, status=400)
        return await super().authorize(request)

    def answer(self, redirect_uri: str, values: dict[str, str]) -> web.StreamResponse:
        sub = self.user["sub"]
        if sub not in self.first_login_names:
            # Apple sends the name once, on the very first authorization of the app.
            self.first_login_names.add(sub)
            values = {**values, "user": json.dumps({"name": {"firstName": "Ann", "lastName": "Apple"}})}
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in values.items()
        )
        page = (
            f'<html><body onload="document.forms[0].submit()"><form method="post" action="{html.escape(redirect_uri)}">'
            f"{inputs}</form></body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    def check_client(self, request: web.Request, params: dict[str, str]) -> str | None:
        if params.get("client_id") != self.client_id:
            return "unknown client"
        secret = params.get("client_secret", "")
        try:
            token = jwt.JWT(jwt=secret, key=self.signing_key, algs=["ES256"])
            header = json.loads(token.header)
            claims = json.loads(token.claims)
        except Exception as exc:  # any failure to verify is a refused client, whatever jwcrypto raised
            return f"client secret does not verify: {type(exc).__name__}"
        self.client_secrets.append({"header": header, "claims": claims})
        now = time.time()
        if header.get("kid") != self.key_id or header.get("alg") != "ES256":
            return "wrong kid"
        if claims.get("iss") != self.team_id or claims.get("sub") != self.client_id:
            return "wrong iss/sub"
        if claims.get("aud") != self.issuer:
            return "wrong aud"
        if not (claims.get("iat", now + 1) <= now + 5 < claims.get("exp", 0) <= now + 15777000):
            return "bad lifetime"
        return None


class FakeFacebook(FakeOAuth):
    """Facebook Login and the Graph API /me."""

    version = "v17.0"
    token_method = "GET"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.authorize_path = f"/{self.version}/dialog/oauth"
        self.token_path = f"/{self.version}/oauth/access_token"
        self.user = {"id": "10158000000000001", "name": "Ann Facebook", "email": "ann@fb.example", "birthday": "x"}
        self.me_requests: list[dict[str, str]] = []

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get(f"/{self.version}/me", self.me)

    def provider_details(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "authorize_scopes": "public_profile,email",
            "api_version": self.version,
            "authorize_url": self.url + self.authorize_path,
            "token_url": self.url + self.token_path,
            "attributes_url": f"{self.url}/{self.version}/me?fields=",
        }

    async def me(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        self.me_requests.append(params)
        grant = self.access_tokens.get(params.get("access_token", ""))
        if grant is None:
            return web.json_response({"error": {"message": "Invalid OAuth access token.", "code": 190}}, status=400)
        proof = hmac.new(self.client_secret.encode(), params["access_token"].encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(proof, params.get("appsecret_proof", "")):
            return web.json_response({"error": {"message": "Invalid appsecret_proof", "code": 100}}, status=400)
        fields = params.get("fields", "id").split(",")
        return web.json_response({k: v for k, v in grant["user"].items() if k in fields})


class FakeAmazon(FakeOAuth):
    """Login with Amazon."""

    authorize_path = "/ap/oa"
    token_path = "/auth/o2/token"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("client_id", "amzn1.application-oa2-client.fake")
        super().__init__(**kwargs)
        self.user = {
            "user_id": "amzn1.account.AFAKE0000000000000000000000",
            "name": "Ann Amazon",
            "email": "ann@amazon.example",
            "postal_code": "98109",
        }

    def routes(self, app: web.Application) -> None:
        super().routes(app)
        app.router.add_get("/user/profile", self.profile)

    def provider_details(self) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "authorize_scopes": "profile postal_code",
            "authorize_url": self.url + self.authorize_path,
            "token_url": self.url + self.token_path,
            "attributes_url": self.url + "/user/profile",
        }

    async def profile(self, request: web.Request) -> web.Response:
        grant = self.bearer(request)
        if grant is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(grant["user"])
