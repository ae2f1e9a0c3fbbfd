"""oidc-client-ts v3 in a single-page app signing in through a pool's discovery document, in Debian's Chromium.

The app (a page of ``http://localhost:<port>``, oidc-client-ts bundled by esbuild, nothing of it changed) gives
its ``UserManager`` only the pool's issuer as ``authority`` and the client's settings, as a generic OpenID Connect
relying party is configured: every endpoint comes from ``/{poolId}/.well-known/openid-configuration``. Gatehouse
answers on ``http://127.0.0.1:<port>``, another origin and another site, and no request is intercepted
(Playwright's ``context.route`` would answer CORS preflights itself and hide Gatehouse's): the browser follows
every redirect and enforces CORS on each fetch. Covered: ``signinRedirect`` (authorization code with PKCE, a
nonce) to the hosted sign-in page and ``signinRedirectCallback`` on the app, the code redeemed cross-origin, the
ID token checked here against the pool's JWKS (the library checks only its state, nonce and subject: signature,
``iss``, ``aud`` and ``at_hash`` are checked by this test), the profile merged with ``/oauth2/userInfo`` (a
preflighted cross-origin call); ``signinSilent`` by the refresh token grant (same subject, same ``auth_time``);
``revokeTokens`` at the discovery document's ``revocation_endpoint`` (RFC 7009), after which the refresh token
is refused to the library, to the token endpoint and to InitiateAuth, and the access token to userInfo;
``signoutRedirect`` at the ``end_session_endpoint`` (OpenID Connect RP-Initiated Logout 1.0: an
``id_token_hint`` naming the session's user, so no question is asked, ``post_logout_redirect_uri`` one of the
client's LogoutURLs, ``state`` passed back and checked by ``signoutRedirectCallback``), after which a sign-in
asks for the password again. Hostile: a callback with a
tampered state (refused by the library, the code never presented: its own PKCE verifier still redeems it), and
an ID token whose nonce is not the one the library kept (refused, nothing kept). ``signinSilent`` without a
refresh token (a hidden iframe with ``prompt=none``, answered by a redirect, never a framed page): signed in by
the session for an app of Gatehouse's own site, ``login_required`` at once for one of another site (the session
cookie is SameSite=Lax); and ``signoutRedirect`` with no ID token to show (``client_id``), which Gatehouse
confirms with the user first.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
import requests

from tests.e2e.oauth_support import query_of
from tests.e2e.spa_support import AppServer, bundle, refresh_refused, spa_modules
from tests.support import GatehouseServer

PASSWORD = "Oidc-Client-Pass-1!"
SCOPE = "openid email profile"

# The app: a UserManager configured from the settings its page carries, and window functions the test calls.
# The silent-renew page (/silent, in the library's hidden iframe) hands its URL to the parent at once.
APP_JS = """
import { User, UserManager } from "oidc-client-ts";

const settings = window.APP_SETTINGS;
const origin = window.location.origin;
const manager = new UserManager({
  authority: settings.authority,
  client_id: settings.clientId,
  redirect_uri: `${origin}/callback`,
  post_logout_redirect_uri: `${origin}/signed-out`,
  silent_redirect_uri: `${origin}/silent`,
  scope: settings.scope,
  response_type: "code",
  loadUserInfo: true,
  automaticSilentRenew: false,
  silentRequestTimeoutInSeconds: settings.silentTimeout,
});

const plain = (error) => ({ name: error?.name ?? null, message: String(error?.message ?? error),
                            error: error?.error ?? null });
async function answer(call) {
  try {
    return { ok: true, result: await call() };
  } catch (error) {
    return { ok: false, ...plain(error) };
  }
}
const summary = (user) => user && {
  profile: user.profile, id_token: user.id_token, access_token: user.access_token,
  refresh_token: user.refresh_token ?? null, scope: user.scope, expired: user.expired,
};

if (window.location.pathname === "/silent") {
  manager.signinSilentCallback();
}
window.app = {
  // These navigate away: a refusal before that is kept in `started`.
  signIn(args) { window.app.started = answer(() => manager.signinRedirect(args)); },
  signOut(args) { window.app.started = answer(() => manager.signoutRedirect(args)); },
  callback: () => answer(async () => summary(await manager.signinRedirectCallback())),
  signedOut: () => answer(async () => {
    const response = await manager.signoutRedirectCallback();
    return { userState: response.userState ?? null, error: response.error ?? null };
  }),
  user: () => answer(async () => summary(await manager.getUser())),
  silent: () => answer(async () => summary(await manager.signinSilent())),
  revoke: () => answer(() => manager.revokeTokens()),
  forget: () => answer(() => manager.removeUser()),
  // The user as stored before, put back: the library holds what it held then (a revoked refresh token).
  restore: (stored) => answer(() => manager.storeUser(User.fromStorageString(stored))),
  stored: () => sessionStorage.getItem(`oidc.user:${settings.authority}:${settings.clientId}`),
  // What signinRedirect keeps for its callback (localStorage: state id, PKCE verifier, nonce).
  pending: () => Object.entries(localStorage).filter(([key]) => key.startsWith("oidc."))
                   .map(([, value]) => JSON.parse(value)),
};
"""

# The nonce kept for the pending sign-in, replaced (as if the callback answered another request than its own).
REPLACE_NONCE = """(nonce) => Object.entries(localStorage).filter(([key]) => key.startsWith("oidc."))
  .forEach(([key, value]) => localStorage.setItem(key, JSON.stringify({ ...JSON.parse(value), nonce })))"""

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>OIDC app</title>
<script>window.APP_SETTINGS = {settings};</script><script type="module" src="/app.js"></script>
</head><body><h1>The app</h1></body></html>"""


@dataclass
class Rp:
    pool_id: str
    client_id: str
    issuer: str


@pytest.fixture(scope="module", autouse=True)
def modules() -> pathlib.Path:
    """Chromium, node, oidc-client-ts and esbuild, looked for before any server starts (skips the module)."""
    return spa_modules("oidc-client-ts")


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """Gatehouse on plain http (oidc-client-ts takes an http authority)."""
    server = GatehouseServer(tmp_path_factory.mktemp("gatehouse") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, modules: pathlib.Path) -> Iterator[AppServer]:
    """The app, bundled once for the module."""
    server = AppServer(PAGE, bundle(APP_JS, tmp_path_factory.mktemp("app"), modules))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def rp(idp: Any, gatehouse: GatehouseServer, app: AppServer) -> Rp:
    """A pool and a public app client as a user configures one for an SPA: code flow, the app's callback and
    sign-out pages as CallbackURLs and LogoutURLs."""
    pool_id = idp.create_user_pool(PoolName="oidc-client-ts")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="spa",
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=SCOPE.split(),
        CallbackURLs=[f"{origin}/{path}" for origin in (app.url, app.other_url) for path in ("callback", "silent")],
        LogoutURLs=[f"{app.url}/signed-out", f"{app.other_url}/signed-out"],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]
    issuer = f"{gatehouse.url}/{pool_id}"
    app.settings = {"authority": issuer, "clientId": client_id, "scope": SCOPE, "silentTimeout": 5}
    return Rp(pool_id, client_id, issuer)


def make_user(idp: Any, rp: Rp, username: str) -> None:
    idp.admin_create_user(
        UserPoolId=rp.pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@oidc.example"},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "name", "Value": username.title()},
        ],
    )
    idp.admin_set_user_password(UserPoolId=rp.pool_id, Username=username, Password=PASSWORD, Permanent=True)


@dataclass
class Exchange:
    method: str
    url: str
    status: int
    origin: str | None


class Tab:
    """One page of the app at ``origin``, and what it did: every navigation of its frames (redirects and the
    library's hidden iframe included) and every answered fetch to Gatehouse."""

    def __init__(self, context: Any, app: AppServer, rp: Rp, origin: str | None = None) -> None:
        self.page = context.new_page()
        self.origin = origin or app.url
        self.rp = rp
        self.navigations: list[str] = []
        self.fetches: list[Any] = []  # Playwright responses
        self.page.on("request", self._request)
        self.page.on("response", self._answered)

    def _request(self, request: Any) -> None:
        if request.is_navigation_request():
            self.navigations.append(request.url)

    def _answered(self, response: Any) -> None:
        if response.request.resource_type == "fetch" and response.url.startswith(self.rp.issuer):
            self.fetches.append(response)

    def open(self, path: str = "/") -> None:
        self.page.goto(f"{self.origin}{path}")
        self.page.wait_for_function("() => window.app !== undefined")

    def call(self, name: str, argument: Any = None) -> Any:
        result = self.page.evaluate(f"(argument) => window.app.{name}(argument)", argument)
        assert result["ok"] is True, (name, result)
        return result["result"]

    def refused(self, name: str, argument: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate(f"(argument) => window.app.{name}(argument)", argument)
        assert result["ok"] is False, (name, result)
        return result

    def start_sign_in(self, args: dict[str, Any] | None = None) -> dict[str, str]:
        """signinRedirect: the page leaves for the discovery document's authorization endpoint; its query."""
        endpoint = f"{self.rp.issuer}/oauth2/authorize"
        with self.page.expect_request(lambda r: r.url.startswith(endpoint) and r.is_navigation_request()) as sent:
            self.page.evaluate("(args) => window.app.signIn(args)", args or {})
        return query_of(sent.value.url)

    def sign_in_on_the_form(self, username: str) -> dict[str, str]:
        """The hosted sign-in page, then the app's callback page; the callback's query."""
        self.page.wait_for_url(f"{self.rp.issuer}/login?**")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{self.origin}/callback?**")
        self.page.wait_for_function("() => window.app !== undefined")
        return query_of(self.page.url)

    def sign_in(self, username: str) -> dict[str, Any]:
        """A whole redirect sign-in with a nonce; the user the library keeps."""
        self.start_sign_in({"nonce": base64.urlsafe_b64encode(os.urandom(18)).decode()})
        self.sign_in_on_the_form(username)
        user: dict[str, Any] = self.call("callback")
        return user

    def sign_out(self, args: dict[str, Any] | None = None) -> None:
        """signoutRedirect: the page leaves for the end_session_endpoint (kept in :attr:`logout`)."""
        endpoint = f"{self.rp.issuer}/logout?"
        with self.page.expect_request(lambda r: r.url.startswith(endpoint) and r.is_navigation_request()) as sent:
            self.page.evaluate("(args) => window.app.signOut(args)", args or {})
        self.logout = sent.value.url

    def signed_out(self) -> dict[str, Any]:
        """Back on the app's post_logout_redirect_uri: signoutRedirectCallback's answer."""
        self.page.wait_for_url(f"{self.origin}/signed-out?**")
        self.page.wait_for_function("() => window.app !== undefined")
        result: dict[str, Any] = self.call("signedOut")
        return result

    def fetched(self, path: str, method: str = "GET") -> list[Exchange]:
        """The fetches of ``path`` the app's pages made (the Origin header as the browser sent it)."""
        url = f"{self.rp.issuer}{path}"
        return [
            Exchange(r.request.method, r.url, r.status, r.request.header_value("origin"))
            for r in self.fetches
            if r.request.method == method and r.url.split("?")[0] == url
        ]


def verified_id_token(gatehouse: GatehouseServer, rp: Rp, token: str, access_token: str) -> dict[str, Any]:
    """What the library leaves to its app (OpenID Connect Core §3.1.3.7): the ID token's signature against the
    discovery document's JWKS, its issuer and audience, and ``at_hash`` (§3.1.3.8) where present."""
    discovery = requests.get(f"{rp.issuer}/.well-known/openid-configuration", timeout=10).json()
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token).key
    claims = dict(jwt.decode(token, key, algorithms=["RS256"], audience=rp.client_id, issuer=rp.issuer))
    if "at_hash" in claims:
        digest = hashlib.sha256(access_token.encode()).digest()
        assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert claims["token_use"] == "id"
    return claims


def test_sign_in_refresh_revoke_and_sign_out(
    browser: Any, app: AppServer, rp: Rp, idp: Any, public_idp: Any, gatehouse: GatehouseServer
) -> None:
    make_user(idp, rp, "ada")
    context = browser.new_context()
    try:
        tab = Tab(context, app, rp)
        tab.open()
        nonce = "n-" + base64.urlsafe_b64encode(os.urandom(18)).decode()
        asked = tab.start_sign_in({"nonce": nonce})
        # The library read the discovery document (cross-origin) and built the request from it.
        assert [e.status for e in tab.fetched("/.well-known/openid-configuration")] == [200]
        assert asked["client_id"] == rp.client_id and asked["redirect_uri"] == f"{app.url}/callback"
        assert (asked["response_type"], asked["scope"], asked["nonce"]) == ("code", SCOPE, nonce)
        assert asked["code_challenge_method"] == "S256" and asked["state"]
        back = tab.sign_in_on_the_form("ada")
        assert back["state"] == asked["state"] and back["iss"] == rp.issuer and back["code"]

        user = tab.call("callback")
        # The code redeemed from the app's origin, and userInfo called with the access token (preflighted).
        [redeemed] = tab.fetched("/oauth2/token", "POST")
        assert (redeemed.status, redeemed.origin) == (200, app.url)
        [info] = tab.fetched("/oauth2/userInfo")
        assert (info.status, info.origin) == (200, app.url)
        claims = verified_id_token(gatehouse, rp, user["id_token"], user["access_token"])
        assert claims["nonce"] == nonce and claims["cognito:username"] == "ada"
        profile = user["profile"]
        assert profile["sub"] == claims["sub"] and profile["email"] == "ada@oidc.example"
        assert profile["name"] == "Ada" and profile["email_verified"] in (True, "true")
        assert user["refresh_token"] and not user["expired"]
        assert tab.call("user")["profile"]["sub"] == claims["sub"]  # kept by the library for the tab

        # signinSilent with a refresh token: the refresh_token grant, cross-origin, then userInfo again.
        refreshed = tab.call("silent")
        assert [e.status for e in tab.fetched("/oauth2/token", "POST")] == [200, 200]
        assert [e.status for e in tab.fetched("/oauth2/userInfo")] == [200, 200]
        assert refreshed["access_token"] != user["access_token"]
        again = verified_id_token(gatehouse, rp, refreshed["id_token"], refreshed["access_token"])
        assert again["sub"] == claims["sub"] and again["auth_time"] == claims["auth_time"]
        assert refreshed["profile"]["sub"] == claims["sub"]
        assert not [u for u in tab.navigations if u.startswith(f"{rp.issuer}/oauth2/authorize?")][1:]
        refresh_token = refreshed["refresh_token"]
        assert refresh_token and not refresh_refused(public_idp, rp.client_id, refresh_token)

        # revokeTokens: RFC 7009 at the revocation_endpoint, the access token and the refresh token.
        before = tab.page.evaluate("() => window.app.stored()")
        tab.call("revoke")
        assert [e.status for e in tab.fetched("/oauth2/revoke", "POST")] == [200, 200]
        assert tab.call("user")["refresh_token"] is None
        assert refresh_refused(public_idp, rp.client_id, refresh_token)
        grant = {"grant_type": "refresh_token", "client_id": rp.client_id, "refresh_token": refresh_token}
        answer = requests.post(f"{rp.issuer}/oauth2/token", data=grant, timeout=10)
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
        bearer = {"Authorization": f"Bearer {refreshed['access_token']}"}
        assert requests.get(f"{rp.issuer}/oauth2/userInfo", headers=bearer, timeout=10).status_code == 401
        # The library, holding the revoked refresh token again, is refused too, and reads why (CORS on errors).
        tab.call("restore", before)
        refusal = tab.refused("silent")
        assert (refusal["name"], refusal["error"]) == ("ErrorResponse", "invalid_grant")
        assert tab.fetched("/oauth2/token", "POST")[-1].status == 400

        # signoutRedirect: the end_session_endpoint with id_token_hint (the library sends client_id only without
        # one), post_logout_redirect_uri and, as the app asks for its own data back, state. The hint names the
        # session's user: Gatehouse ends it at once and sends the browser back with the state.
        tab.sign_out({"state": {"page": "/orders"}})
        sent = query_of(tab.logout)
        assert set(sent) == {"id_token_hint", "post_logout_redirect_uri", "state"}
        assert sent["id_token_hint"] == refreshed["id_token"]
        assert sent["post_logout_redirect_uri"] == f"{app.url}/signed-out"
        assert tab.signed_out() == {"userState": {"page": "/orders"}, "error": None}  # its state matched
        assert query_of(tab.page.url) == {"state": sent["state"]}
        assert tab.call("user") is None
        assert not [c for c in context.cookies(gatehouse.url) if c["name"].startswith("gatehouse_sso")]

        # The session really ended: the next sign-in asks for the password.
        tab.start_sign_in()
        tab.page.wait_for_url(f"{rp.issuer}/login?**")
        assert tab.page.get_by_role("heading", name="Sign in").is_visible()
    finally:
        context.close()


def test_a_tampered_state_or_nonce_is_refused(browser: Any, app: AppServer, rp: Rp, idp: Any) -> None:
    make_user(idp, rp, "bea")
    context = browser.new_context()
    try:
        tab = Tab(context, app, rp)
        tab.open()
        asked = tab.start_sign_in()
        back = tab.sign_in_on_the_form("bea")
        [pending] = tab.page.evaluate("() => window.app.pending()")
        assert pending["id"] == asked["state"]
        tampered = {**back, "state": f"{back['state']}x"}
        tab.page.goto(f"{app.url}/callback?{urlencode(tampered)}")
        tab.page.wait_for_function("() => window.app !== undefined")
        refusal = tab.refused("callback")
        assert refusal["message"] == "No matching state found in storage"
        assert tab.call("user") is None
        assert not tab.fetched("/oauth2/token", "POST")
        # The code was never presented: with the verifier the library kept, it still redeems once.
        redeemed = requests.post(
            f"{rp.issuer}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "client_id": rp.client_id,
                "code": back["code"],
                "redirect_uri": f"{app.url}/callback",
                "code_verifier": pending["code_verifier"],
            },
            timeout=10,
        )
        assert redeemed.status_code == 200, redeemed.text

        # The ID token's nonce is the one Gatehouse was sent (signed in by the session now: no form); one the
        # library did not keep for this request is refused after the code exchange, and nothing is kept.
        tab.start_sign_in({"nonce": "sent-with-the-request"})
        tab.page.wait_for_url(f"{app.url}/callback?**")
        tab.page.wait_for_function("() => window.app !== undefined")
        tab.page.evaluate(REPLACE_NONCE, "another-request")
        refusal = tab.refused("callback")
        assert refusal["message"] == "nonce in id_token does not match nonce in client storage"
        assert tab.fetched("/oauth2/token", "POST")[-1].status == 200
        assert tab.call("user") is None
    finally:
        context.close()


def test_silent_sign_in_in_an_iframe_and_sign_out_without_an_id_token(
    browser: Any, app: AppServer, rp: Rp, idp: Any
) -> None:
    """``signinSilent`` without a refresh token: a hidden iframe of the app navigated to the authorization
    endpoint with ``prompt=none`` (OpenID Connect Core §3.1.2.6), answered by a redirect to the app's silent
    page, never by a page: the hosted pages forbid framing (``frame-ancestors 'none'``), a redirect renders
    nothing. The session cookie is SameSite=Lax: a frame of an app of Gatehouse's own site carries it and is
    signed in; a frame of another site does not, and gets ``login_required`` at once (no timeout). Then
    ``signoutRedirect`` with no ID token to send."""
    make_user(idp, rp, "cy")
    context = browser.new_context()
    try:
        same_site = Tab(context, app, rp, app.other_url)
        same_site.open()
        signed_in = same_site.sign_in("cy")
        same_site.call("forget")
        user = same_site.call("silent")
        assert user["profile"]["sub"] == signed_in["profile"]["sub"] and user["access_token"]
        [*_, silent, answer] = same_site.navigations
        asked = query_of(silent)
        assert silent.startswith(f"{rp.issuer}/oauth2/authorize?") and asked["prompt"] == "none"
        assert answer.startswith(f"{app.other_url}/silent?") and query_of(answer)["state"] == asked["state"]
        assert "code" in query_of(answer)

        tab = Tab(context, app, rp)
        tab.open()
        refusal = tab.refused("silent")
        assert (refusal["name"], refusal["error"]) == ("ErrorResponse", "login_required")
        [*_, silent, answer] = tab.navigations
        asked = query_of(silent)
        assert asked["prompt"] == "none" and asked["redirect_uri"] == f"{app.url}/silent"
        assert answer.startswith(f"{app.url}/silent?") and query_of(answer)["error"] == "login_required"
        assert tab.call("user") is None

        # Signing out without an ID token to show (the library sends client_id instead): nothing proves the
        # request comes from the signed-in user's application, so Gatehouse asks first (RP-Initiated Logout
        # 1.0 §2), and the answer goes on to the post_logout_redirect_uri with the state.
        tab.sign_out({"state": "bye"})
        sent = query_of(tab.logout)
        assert set(sent) == {"client_id", "post_logout_redirect_uri", "state"} and sent["client_id"] == rp.client_id
        tab.page.wait_for_url(f"{rp.issuer}/logout?**")
        assert tab.page.get_by_role("heading", name="Sign out?").is_visible()
        tab.page.get_by_role("button", name="Sign out").click()
        assert tab.signed_out() == {"userState": "bye", "error": None}
        # The hosted UI's session ended for the other app too: a silent sign-in by the iframe is refused (its
        # refresh token lives on, as a Cognito refresh token does after /logout), and the next sign-in asks.
        same_site.call("forget")
        refusal = same_site.refused("silent")
        assert (refusal["name"], refusal["error"]) == ("ErrorResponse", "login_required")
        tab.start_sign_in()
        tab.page.wait_for_url(f"{rp.issuer}/login?**")
        assert tab.page.get_by_role("heading", name="Sign in").is_visible()
    finally:
        context.close()
