"""AWS Amplify JS v6 in a single-page app signing in through Gatehouse's hosted UI, in Debian's Chromium.

The app (a page of ``http://localhost:<port>``, Amplify bundled by esbuild, nothing of it changed) is configured
as for Cognito with a custom domain: ``loginWith.oauth.domain`` is the pool's custom domain, from which Amplify
builds ``https://<domain>/oauth2/authorize``, ``/oauth2/token`` and ``/logout``, and ``userPoolEndpoint`` is
Gatehouse's public URL. Both host names reach Gatehouse through a TLS-terminating front on loopback, as a
deployment's proxy would (Chromium maps the names to it and trusts its certificate by its key), so no request is
intercepted: the browser follows every redirect itself and enforces CORS on every cross-origin call, preflights
included. Covered: ``signInWithRedirect`` to the hosted sign-in page (username and password), the callback with
the code, state and issuer, Amplify's PKCE code exchange from the app's origin, ``fetchAuthSession`` tokens
checked against the pool's JWKS (issuer, audience, token use, the scopes asked for) and refreshed with their
scopes, ``getCurrentUser`` and ``fetchUserAttributes`` with the hosted UI's access token; the hosted UI's cookies
Secure, HttpOnly, SameSite=Lax and ``__Host-`` on https; a second app in the same browser signed in by the
session alone, with no form; ``signOut`` revoking the refresh token and going through ``/logout`` back to
``redirectSignOut``, after which a silent sign-in gets ``login_required`` and a new sign-in asks for the
password; and the same journey with the public URL itself as Amplify's domain, the app's custom state coming
back as sent. Hostile: a callback with a forged state (Amplify refuses it and never presents the code), a used
code presented again (refused, and the tokens of its first redemption revoked), and a redirect URL the client
never registered (Gatehouse's error page, no redirect).
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import json
import pathlib
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.oauth_support import pkce_pair, query_of
from tests.e2e.spa_support import AppServer, bundle, refresh_refused, spa_modules
from tests.fakes.certs import key_and_cert
from tests.support import GatehouseServer

PUBLIC_HOST = "auth.example.test"  # Gatehouse's public URL: the tokens' issuer and the user pool API
DOMAIN = "login.example.test"  # the pool's custom domain: Amplify's oauth.domain
PUBLIC = f"https://{PUBLIC_HOST}"
PASSWORD = "Redirect-Pass-1!"
SCOPES = ["openid", "email", "profile", "aws.cognito.signin.user.admin"]
CERTIFICATE = {"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/amplify-redirect"}

# The app: Amplify configured from the settings its page carries, and a few window functions the test calls.
APP_JS = """
import { Amplify } from "aws-amplify";
import { fetchAuthSession, fetchUserAttributes, getCurrentUser, signInWithRedirect, signOut } from "aws-amplify/auth";
import { Hub } from "aws-amplify/utils";

const settings = window.APP_SETTINGS;
// OAuth settings the test changed (configure below) hold for the tab's later pages too, as a build's would.
const changed = JSON.parse(sessionStorage.getItem("oauth") ?? "{}");
const events = [];
const plain = (error) => ({ name: error?.name ?? null, message: String(error?.message ?? error) });
Hub.listen("auth", ({ payload }) => {
  const error = payload.data?.error ? plain(payload.data.error) : null;
  events.push({ event: payload.event, error, ...(payload.event === "customOAuthState" ? { data: payload.data } : {}) });
});

function configure(oauth = changed) {
  const origin = window.location.origin;
  sessionStorage.setItem("oauth", JSON.stringify(oauth));
  Amplify.configure({
    Auth: {
      Cognito: {
        userPoolId: settings.userPoolId,
        userPoolClientId: settings.userPoolClientId,
        userPoolEndpoint: settings.userPoolEndpoint,
        loginWith: {
          oauth: {
            domain: settings.domain,
            scopes: settings.scopes,
            redirectSignIn: [`${origin}/`],
            redirectSignOut: [`${origin}/signed-out`],
            responseType: "code",
            ...oauth,
          },
        },
      },
    },
  });
}

async function answer(call) {
  try {
    return { ok: true, result: await call() };
  } catch (error) {
    return { ok: false, ...plain(error) };
  }
}

configure();
window.app = {
  events,
  configure,
  // Both navigate away: the test waits for the next page; a refusal before that is kept in `started`.
  signIn(options) { window.app.started = answer(() => signInWithRedirect(options)); },
  signOut() { window.app.started = answer(() => signOut()); },
  session: (options) => answer(async () => {
    const { tokens, userSub } = await fetchAuthSession(options);
    return { idToken: tokens?.idToken?.toString() ?? null, accessToken: tokens?.accessToken?.toString() ?? null,
             userSub: userSub ?? null };
  }),
  user: () => answer(getCurrentUser),
  attributes: () => answer(fetchUserAttributes),
  // Where Amplify keeps the refresh token (localStorage), for the test to check its revocation with boto3.
  refreshToken: () => Object.entries(localStorage).find(([key]) => key.endsWith(".refreshToken"))?.[1] ?? null,
};
"""

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Amplify app</title>
<script>window.APP_SETTINGS = {settings};</script><script type="module" src="/app.js"></script>
</head><body><h1>The app</h1></body></html>"""

# The Hub event that ends a redirect sign-in, one way or the other.
DONE = "() => window.app && window.app.events.find((e) => e.event.startsWith('signInWithRedirect'))"


class TlsFront:
    """A TLS-terminating front on loopback, as a deployment's proxy is: each connection's bytes, decrypted, go
    unchanged (Host header and all) to Gatehouse's plain HTTP port. Its certificate is self-signed for
    ``hosts``; :attr:`spki` is what Chromium is told to trust it by."""

    def __init__(self, upstream_port: int, hosts: list[str], directory: pathlib.Path) -> None:
        self.upstream_port = upstream_port
        key_pem, cert_pem = key_and_cert(hosts[0], valid_until=datetime.timedelta(days=1), hosts=hosts)
        cert_path, key_path = directory / "front-cert.pem", directory / "front-key.pem"
        cert_path.write_text(cert_pem)
        key_path.write_text(key_pem)
        public_key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
        spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.spki = base64.b64encode(hashlib.sha256(spki).digest()).decode()
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert_path, key_path)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> None:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=self._context), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@dataclass
class Spa:
    pool_id: str
    client_id: str


@pytest.fixture(scope="module", autouse=True)
def modules() -> pathlib.Path:
    """Chromium, node, aws-amplify and esbuild, looked for before any server starts (skips the module)."""
    return spa_modules("aws-amplify")


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """Gatehouse behind its https public URL."""
    data_dir = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(data_dir, extra_args=["--public-url", PUBLIC])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def front(gatehouse: GatehouseServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFront]:
    server = TlsFront(gatehouse.port, [PUBLIC_HOST, DOMAIN], tmp_path_factory.mktemp("front"))
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
def browser(front: TlsFront) -> Iterator[Any]:
    """Debian's Chromium, resolving both of Gatehouse's host names to the front and trusting its key."""
    from tests.browser import launch_chromium

    hosts = ", ".join(f"MAP {host}:443 127.0.0.1:{front.port}" for host in (PUBLIC_HOST, DOMAIN))
    flags = [f"--host-resolver-rules={hosts}", f"--ignore-certificate-errors-spki-list={front.spki}"]
    with launch_chromium(flags) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def spa(idp: Any, app: AppServer) -> Spa:
    """A pool with a custom domain and a public app client for both of the app's origins."""
    pool_id = idp.create_user_pool(PoolName="amplify-redirect")["UserPool"]["Id"]
    idp.create_user_pool_domain(UserPoolId=pool_id, Domain=DOMAIN, CustomDomainConfig=CERTIFICATE)
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="spa",
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=SCOPES,
        CallbackURLs=[f"{app.url}/", f"{app.other_url}/"],
        LogoutURLs=[f"{app.url}/signed-out", f"{app.other_url}/signed-out"],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]
    app.settings = {
        "userPoolId": pool_id,
        "userPoolClientId": client_id,
        "userPoolEndpoint": PUBLIC,
        "domain": DOMAIN,
        "scopes": SCOPES,
    }
    return Spa(pool_id, client_id)


def make_user(idp: Any, pool_id: str, username: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@amplify.example"},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


class Tab:
    """One page of the app at ``origin``, and the navigations of its browser context (every address the
    browser went to, in order, redirects included)."""

    def __init__(self, context: Any, origin: str, navigations: list[str], host: str = DOMAIN) -> None:
        self.page = context.new_page()
        self.origin = origin
        self.navigations = navigations
        self.host = host  # Amplify's oauth.domain

    def open(self, path: str = "/") -> None:
        self.page.goto(f"{self.origin}{path}")
        self.page.wait_for_function("() => window.app !== undefined")

    def call(self, name: str, argument: Any = None) -> Any:
        answer = self.page.evaluate(f"(argument) => window.app.{name}(argument)", argument)
        assert answer["ok"] is True, (name, answer)
        return answer["result"]

    def start_sign_in(self, options: dict[str, Any] | None = None) -> None:
        """Amplify's signInWithRedirect: the page leaves for the hosted UI's authorization endpoint."""
        with self.page.expect_request(lambda r: r.url.startswith(f"https://{self.host}/oauth2/authorize")) as sent:
            self.page.evaluate("(options) => window.app.signIn(options)", options)
        self.authorize = sent.value.url

    def sign_in_on_the_form(self, username: str, password: str = PASSWORD) -> None:
        self.page.wait_for_url(f"https://{self.host}/login?**")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()

    def finished(self) -> dict[str, Any]:
        """The Hub event that ended the redirect sign-in, once the app is back."""
        self.page.wait_for_url(f"{self.origin}/**")
        event: dict[str, Any] = self.page.wait_for_function(DONE).json_value()
        return event

    def callbacks(self) -> list[str]:
        return [u for u in self.navigations if u.startswith(f"{self.origin}/?")]


def navigations_of(context: Any) -> list[str]:
    found: list[str] = []
    context.on("request", lambda request: found.append(request.url) if request.is_navigation_request() else None)
    return found


def verified(gatehouse: GatehouseServer, spa: Spa, token: str, token_use: str) -> dict[str, Any]:
    """The token's claims, its signature checked against the pool's JWKS and its issuer the public URL's."""
    keys = jwt.PyJWKClient(f"{gatehouse.url}/{spa.pool_id}/.well-known/jwks.json")
    claims = dict(
        jwt.decode(
            token,
            keys.get_signing_key_from_jwt(token).key,
            algorithms=["RS256"],
            audience=spa.client_id if token_use == "id" else None,
            issuer=f"{PUBLIC}/{spa.pool_id}",
            options={"verify_aud": token_use == "id"},
        )
    )
    assert claims["token_use"] == token_use
    return claims


def test_sign_in_with_redirect_single_sign_on_and_sign_out(
    browser: Any, app: AppServer, spa: Spa, idp: Any, public_idp: Any, gatehouse: GatehouseServer
) -> None:
    make_user(idp, spa.pool_id, "ada")
    context = browser.new_context()
    navigations = navigations_of(context)
    try:
        tab = Tab(context, app.url, navigations)
        tab.open()
        tab.start_sign_in()
        asked = query_of(tab.authorize)
        assert asked["redirect_uri"] == f"{app.url}/" and asked["client_id"] == spa.client_id
        assert asked["code_challenge_method"] == "S256" and set(asked["scope"].split()) == set(SCOPES)
        tab.page.wait_for_url(f"https://{DOMAIN}/login?**")  # Gatehouse's redirect, on the pool's domain
        assert tab.page.get_by_role("heading", name="Sign in").is_visible()
        csrf = {c["name"]: c for c in context.cookies(f"https://{DOMAIN}")}["__Host-gatehouse_csrf"]
        assert (csrf["secure"], csrf["httpOnly"], csrf["sameSite"], csrf["path"]) == (True, True, "Lax", "/")
        tab.sign_in_on_the_form("ada")
        assert tab.finished() == {"event": "signInWithRedirect", "error": None}

        # The callback Amplify redeemed: its state, and the issuer of RFC 9207.
        [callback] = tab.callbacks()
        back = query_of(callback)
        assert back["state"] == asked["state"] and back["iss"] == f"{PUBLIC}/{spa.pool_id}" and back["code"]
        session = tab.call("session")
        id_claims = verified(gatehouse, spa, session["idToken"], "id")
        access = verified(gatehouse, spa, session["accessToken"], "access")
        assert id_claims["cognito:username"] == "ada" and id_claims["email"] == "ada@amplify.example"
        assert access["client_id"] == spa.client_id and access["username"] == "ada"
        assert set(access["scope"].split()) == set(SCOPES)
        assert session["userSub"] == id_claims["sub"] == access["sub"]
        user = tab.call("user")
        assert (user["username"], user["userId"]) == ("ada", id_claims["sub"])
        # The access token carries aws.cognito.signin.user.admin: GetUser, a preflighted cross-origin call.
        assert tab.call("attributes")["email"] == "ada@amplify.example"
        # Amplify refreshes with InitiateAuth (REFRESH_TOKEN_AUTH): the hosted UI's scopes stay with the tokens.
        refreshed = tab.call("session", {"forceRefresh": True})
        assert refreshed["accessToken"] != session["accessToken"]
        again = verified(gatehouse, spa, refreshed["accessToken"], "access")
        assert set(again["scope"].split()) == set(SCOPES) and again["origin_jti"] == access["origin_jti"]
        assert verified(gatehouse, spa, refreshed["idToken"], "id")["sub"] == id_claims["sub"]
        sso_name = f"__Host-gatehouse_sso_{spa.pool_id}"
        sso = {c["name"]: c for c in context.cookies(f"https://{DOMAIN}")}[sso_name]
        assert (sso["secure"], sso["httpOnly"], sso["sameSite"], sso["domain"]) == (True, True, "Lax", DOMAIN)

        # Another app in the same browser: the hosted UI's session signs the user in, with no form.
        other = Tab(context, app.other_url, navigations)
        other.open()
        seen = len(navigations)
        other.start_sign_in()
        assert other.finished() == {"event": "signInWithRedirect", "error": None}
        assert not [u for u in navigations[seen:] if u.startswith(f"https://{DOMAIN}/login")]
        other_access = verified(gatehouse, spa, other.call("session")["accessToken"], "access")
        assert other_access["sub"] == access["sub"] and other_access["auth_time"] == access["auth_time"]
        assert other_access["origin_jti"] != access["origin_jti"]

        # Sign-out: the refresh token revoked (RevokeToken), then /logout and back to redirectSignOut.
        refresh_token = tab.page.evaluate("() => window.app.refreshToken()")
        assert refresh_token and not refresh_refused(public_idp, spa.client_id, refresh_token)
        seen = len(navigations)
        tab.page.evaluate("() => window.app.signOut()")
        tab.page.wait_for_url(f"{app.url}/signed-out")
        [logout] = [u for u in navigations[seen:] if u.startswith(f"https://{DOMAIN}/logout")]
        assert query_of(logout) == {"client_id": spa.client_id, "logout_uri": f"{app.url}/signed-out"}
        assert refresh_refused(public_idp, spa.client_id, refresh_token)
        # The audit trail has the session's end, as it has its start.
        logged = [json.loads(line) for line in gatehouse.log_text().splitlines() if line.startswith("{")]
        ended = [e for e in logged if e["event"] == "hosted_ui.signed_out" and e.get("sub") == access["sub"]]
        assert [(e["pool"], e["logger"], bool(e.get("request_id"))) for e in ended] == [
            (spa.pool_id, "gateway.oauth", True)
        ]
        assert sso_name not in {c["name"] for c in context.cookies(f"https://{DOMAIN}")}
        tab.page.wait_for_function("() => window.app !== undefined")
        assert tab.call("session")["idToken"] is None

        # The session really ended: a silent sign-in (prompt=none) comes back with login_required (OpenID
        # Connect Core §3.1.2.6), and the next sign-in asks for the password again.
        tab.start_sign_in({"options": {"prompt": "NONE"}})
        event = tab.finished()
        assert event["event"] == "signInWithRedirect_failure" and event["error"]["name"] == "OAuthSignInException"
        silent = query_of(tab.callbacks()[-1])
        assert (silent["error"], silent["state"]) == ("login_required", query_of(tab.authorize)["state"])
        assert tab.call("session")["idToken"] is None
        tab.start_sign_in()
        tab.page.wait_for_url(f"https://{DOMAIN}/login?**")
        assert tab.page.get_by_role("heading", name="Sign in").is_visible()
    finally:
        context.close()


def test_forged_state_and_a_replayed_code_are_refused(
    browser: Any, app: AppServer, spa: Spa, idp: Any, public_idp: Any, gatehouse: GatehouseServer
) -> None:
    make_user(idp, spa.pool_id, "bea")
    make_user(idp, spa.pool_id, "mallory")
    # Mallory's own code for the app, from her own browser: the bait of a login CSRF.
    verifier, challenge = pkce_pair()
    attacker = browser.new_context()
    try:
        page = attacker.new_page()
        query = {
            "client_id": spa.client_id,
            "response_type": "code",
            "redirect_uri": f"{app.url}/",
            "scope": "openid",
            "state": "mallory",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        page.goto(f"https://{DOMAIN}/oauth2/authorize?{urlencode(query)}")
        with page.expect_request(lambda request: request.url.startswith(f"{app.url}/?")) as bait:
            page.get_by_label("Username").fill("mallory")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
        mallory_code = query_of(bait.value.url)["code"]
    finally:
        attacker.close()

    context = browser.new_context()
    navigations = navigations_of(context)
    try:
        tab = Tab(context, app.url, navigations)
        tab.open()
        tab.start_sign_in()
        tab.page.wait_for_url(f"https://{DOMAIN}/login?**")
        state = query_of(tab.authorize)["state"]
        # Bea's sign-in is under way when a page sends her browser to the app with Mallory's code.
        tab.page.goto(f"{app.url}/?{urlencode({'code': mallory_code, 'state': f'{state}x'})}")
        event = tab.finished()
        assert event["event"] == "signInWithRedirect_failure"
        assert event["error"]["message"] == "An error occurred while validating the state."
        assert tab.call("session")["idToken"] is None
        # Amplify never presented the code: Mallory can still redeem it herself.
        redeemed = requests.post(
            f"{gatehouse.url}/{spa.pool_id}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "client_id": spa.client_id,
                "code": mallory_code,
                "redirect_uri": f"{app.url}/",
                "code_verifier": verifier,
            },
            timeout=10,
        )
        assert redeemed.status_code == 200, redeemed.text

        # Bea signs in; her code, once redeemed, shows up again (a history entry, a log, a Referer) in another
        # app's callback with that app's own state.
        tab.start_sign_in()
        tab.sign_in_on_the_form("bea")
        assert tab.finished()["event"] == "signInWithRedirect"
        callback = tab.callbacks()[-1]
        used_code = query_of(callback)["code"]
        refresh_token = tab.page.evaluate("() => window.app.refreshToken()")
        assert not refresh_refused(public_idp, spa.client_id, refresh_token)
        other = Tab(context, app.other_url, navigations)
        other.open()
        other.start_sign_in({"options": {"prompt": "LOGIN"}})  # the form again, despite the session
        other.page.wait_for_url(f"https://{DOMAIN}/login?**")
        other_state = query_of(other.authorize)["state"]
        other.page.goto(f"{app.other_url}/?{urlencode({'code': used_code, 'state': other_state})}")
        event = other.finished()
        assert event["event"] == "signInWithRedirect_failure" and event["error"]["message"] == "invalid_grant"
        assert other.call("session")["idToken"] is None
        # RFC 9700 §4.2.4: a code used twice revokes what its first redemption issued.
        assert refresh_refused(public_idp, spa.client_id, refresh_token)
    finally:
        context.close()


def test_a_redirect_url_the_client_never_registered_gets_an_error_page(browser: Any, app: AppServer, spa: Spa) -> None:
    context = browser.new_context()
    navigations = navigations_of(context)
    try:
        tab = Tab(context, app.url, navigations)
        tab.open("/elsewhere/")
        tab.page.evaluate("() => window.app.configure({redirectSignIn: [`${location.origin}/elsewhere/`]})")
        with tab.page.expect_response(lambda r: r.url.startswith(f"https://{DOMAIN}/oauth2/authorize")) as answer:
            tab.page.evaluate("() => window.app.signIn()")
        assert answer.value.status == 400
        tab.page.wait_for_url(f"https://{DOMAIN}/oauth2/authorize?**")  # the browser stays on Gatehouse's page
        assert tab.page.get_by_role("heading", name="Something went wrong").is_visible()
        assert "redirect_uri is not registered" in tab.page.get_by_role("alert").inner_text()
        assert not [u for u in navigations if u.startswith(f"{app.url}/elsewhere/?")]
    finally:
        context.close()


def test_the_public_url_as_amplifys_domain(
    browser: Any, app: AppServer, spa: Spa, idp: Any, public_idp: Any, gatehouse: GatehouseServer
) -> None:
    """A pool without a domain of its own: Amplify's domain is Gatehouse's public URL, where the authorization
    endpoint finds the pool by the client and every redirect stays on that origin."""
    make_user(idp, spa.pool_id, "cy")
    context = browser.new_context()
    navigations = navigations_of(context)
    try:
        tab = Tab(context, app.url, navigations, host=PUBLIC_HOST)
        tab.open()
        tab.page.evaluate(f"() => window.app.configure({{domain: '{PUBLIC_HOST}'}})")
        tab.start_sign_in({"customState": "/orders?page=2&sort=new"})
        tab.sign_in_on_the_form("cy")
        assert tab.finished() == {"event": "signInWithRedirect", "error": None}
        # The state came back as it was sent, with the app's own part in it.
        custom = tab.page.evaluate("() => window.app.events.find((e) => e.event === 'customOAuthState')")
        assert custom == {"event": "customOAuthState", "error": None, "data": "/orders?page=2&sort=new"}
        session = tab.call("session")
        assert verified(gatehouse, spa, session["idToken"], "id")["cognito:username"] == "cy"
        cookies = {c["name"]: c for c in context.cookies(PUBLIC)}
        assert cookies[f"__Host-gatehouse_sso_{spa.pool_id}"]["secure"] is True
        assert not context.cookies(f"https://{DOMAIN}")  # nothing of the pool's domain was visited
        refresh_token = tab.page.evaluate("() => window.app.refreshToken()")

        seen = len(navigations)
        tab.page.evaluate("() => window.app.signOut()")
        tab.page.wait_for_url(f"{app.url}/signed-out")
        assert [u for u in navigations[seen:] if u.startswith(f"{PUBLIC}/logout?")]
        assert refresh_refused(public_idp, spa.client_id, refresh_token)
        assert f"__Host-gatehouse_sso_{spa.pool_id}" not in {c["name"] for c in context.cookies(PUBLIC)}
        visited = {u.split("?")[0] for u in navigations if not u.startswith(app.url)}
        assert visited == {f"{PUBLIC}/oauth2/authorize", f"{PUBLIC}/login", f"{PUBLIC}/logout"}
    finally:
        context.close()
