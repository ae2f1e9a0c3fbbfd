"""A small web app that signs its users in through Gatehouse's hosted UI (authorization code + PKCE).

It uses authlib's OAuth client (``AsyncOAuth2Client``) for the protocol and authlib's JOSE to check the ID
token against the pool's JWKS; nothing in it is Gatehouse-specific: point it at a Cognito user pool and it
works the same. Pages: ``/`` (the claims of whoever is signed in), ``/login``, ``/callback``, ``/logout``.

Run it against ``gatehouse serve``:

1. Start Gatehouse: ``gatehouse serve --data-dir .gatehouse`` (listens on http://127.0.0.1:9229, the start of
   its issuers unless ``--public-url`` says otherwise).
2. Create a pool, an app client for this app and a user (boto3, admin credentials from the data dir)::

       import boto3, json
       creds = json.load(open(".gatehouse/admin-credentials.json"))
       idp = boto3.client("cognito-idp", endpoint_url="http://localhost:9229", region_name="us-east-1",
                          aws_access_key_id=creds["access_key_id"],
                          aws_secret_access_key=creds["secret_access_key"])
       pool = idp.create_user_pool(
           PoolName="web-app", AutoVerifiedAttributes=["email"],
           Schema=[{"Name": "email", "Required": True, "Mutable": True}])["UserPool"]["Id"]
       client = idp.create_user_pool_client(
           UserPoolId=pool, ClientName="web-app",
           AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
           AllowedOAuthScopes=["openid", "email", "profile"],
           CallbackURLs=["http://localhost:8000/callback"], LogoutURLs=["http://localhost:8000/"],
           SupportedIdentityProviders=["COGNITO"])["UserPoolClient"]["ClientId"]
       idp.admin_create_user(UserPoolId=pool, Username="kim", MessageAction="SUPPRESS",
                             UserAttributes=[{"Name": "email", "Value": "kim@example.com"},
                                             {"Name": "email_verified", "Value": "true"}])
       idp.admin_set_user_password(UserPoolId=pool, Username="kim", Password="Correct-Horse-9", Permanent=True)
       print(pool, client)

   Sign in as ``kim`` with that password. People can also sign up on the hosted page: it asks for an email
   address (the pool requires one) and, as the pool verifies email (AutoVerifiedAttributes), sends the
   confirmation code there, through the SMTP server Gatehouse's config names, else to
   ``.gatehouse/outbox.jsonl``. (A pool that verifies no attribute sends no code: an administrator confirms
   its sign-ups with AdminConfirmSignUp.)
3. Run this app (its packages: ``pip install -e '.[examples]'``, authlib and httpx among them)::

       GATEHOUSE_ISSUER=http://127.0.0.1:9229/<pool id> CLIENT_ID=<client id> python examples/web_app/app.py

   and open http://localhost:8000/. ``CLIENT_SECRET`` is used when the client has one; ``PORT`` changes the
   port the app listens on (always on 127.0.0.1), ``APP_URL`` the address browsers reach it at (default
   ``http://localhost:<PORT>``; the callback URL is ``APP_URL + "/callback"``, which the client must list).
"""

from __future__ import annotations

import html
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.jose import JsonWebKey, jwt

SESSION_COOKIE = "web_app_session"


@dataclass
class Config:
    issuer: str
    client_id: str
    client_secret: str | None
    app_url: str


@dataclass
class State:
    config: Config
    discovery: dict[str, Any] = field(default_factory=dict)
    # Server-side sessions by cookie value (a real app would keep these in a store shared by its processes).
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)


STATE = web.AppKey("state", State)


def _session(request: web.Request) -> dict[str, Any]:
    return request.app[STATE].sessions.get(request.cookies.get(SESSION_COOKIE, ""), {})


def _new_session(response: web.StreamResponse, state: State, data: dict[str, Any]) -> None:
    key = secrets.token_urlsafe(32)
    state.sessions[key] = data
    response.set_cookie(SESSION_COOKIE, key, httponly=True, samesite="Lax", path="/")


def _client(state: State) -> AsyncOAuth2Client:
    config = state.config
    return AsyncOAuth2Client(
        config.client_id,
        config.client_secret,
        scope="openid email profile",
        redirect_uri=f"{config.app_url}/callback",
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if config.client_secret else "none",
    )


async def index(request: web.Request) -> web.Response:
    claims = _session(request).get("claims")
    if not claims:
        body = '<h1>Web app</h1><p>You are not signed in.</p><p><a href="/login">Sign in</a></p>'
    else:
        pretty = html.escape(json.dumps(claims, indent=2, sort_keys=True))
        body = (
            f"<h1>Hello, {html.escape(str(claims.get('email') or claims.get('cognito:username')))}</h1>"
            f"<pre id='claims'>{pretty}</pre><p><a href='/logout'>Sign out</a></p>"
        )
    return web.Response(text=f"<!doctype html><title>Web app</title>{body}", content_type="text/html")


async def login(request: web.Request) -> web.Response:
    state = request.app[STATE]
    verifier, nonce = generate_token(48), generate_token(20)
    async with _client(state) as client:
        url, oauth_state = client.create_authorization_url(
            state.discovery["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
    response = web.HTTPFound(url)
    _new_session(response, state, {"verifier": verifier, "nonce": nonce, "state": oauth_state})
    return response


async def callback(request: web.Request) -> web.Response:
    state = request.app[STATE]
    pending = _session(request)
    if "error" in request.query:
        raise web.HTTPBadRequest(text=f"Sign-in failed: {request.query['error']}")
    if not pending or request.query.get("state") != pending.get("state"):
        raise web.HTTPBadRequest(text="Unexpected sign-in response (state mismatch).")
    if request.query.get("iss") != state.config.issuer:  # RFC 9207: the response came from our issuer
        raise web.HTTPBadRequest(text="Unexpected issuer.")
    async with _client(state) as client:
        token = await client.fetch_token(
            state.discovery["token_endpoint"],
            authorization_response=str(request.url),
            code_verifier=pending["verifier"],
        )
    async with aiohttp.ClientSession() as http, http.get(state.discovery["jwks_uri"]) as answer:
        keys = JsonWebKey.import_key_set(await answer.json())
    claims = jwt.decode(
        token["id_token"],
        keys,
        claims_options={
            "iss": {"essential": True, "value": state.config.issuer},
            "aud": {"essential": True, "value": state.config.client_id},
            "nonce": {"essential": True, "value": pending["nonce"]},
        },
    )
    claims.validate()
    response = web.HTTPFound("/")
    _new_session(response, state, {"claims": dict(claims), "refresh_token": token.get("refresh_token")})
    return response


async def logout(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
    query = urlencode({"client_id": state.config.client_id, "logout_uri": f"{state.config.app_url}/"})
    response = web.HTTPFound(f"{state.discovery['end_session_endpoint']}?{query}")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def _discover(app: web.Application) -> None:
    state = app[STATE]
    url = f"{state.config.issuer}/.well-known/openid-configuration"
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        answer.raise_for_status()
        state.discovery = await answer.json()


def create_app(config: Config) -> web.Application:
    app = web.Application()
    app[STATE] = State(config)
    app.on_startup.append(_discover)
    app.router.add_get("/", index)
    app.router.add_get("/login", login)
    app.router.add_get("/callback", callback)
    app.router.add_get("/logout", logout)
    return app


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    config = Config(
        issuer=os.environ["GATEHOUSE_ISSUER"].rstrip("/"),
        client_id=os.environ["CLIENT_ID"],
        client_secret=os.environ.get("CLIENT_SECRET") or None,
        app_url=os.environ.get("APP_URL", f"http://localhost:{port}").rstrip("/"),
    )
    if config.issuer.startswith("http://"):
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # local development over plain HTTP only
    web.run_app(create_app(config), host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
