"""Federated sign-in in a real browser (Debian's Chromium through Playwright): on the hosted ``/login`` page a
person clicks "Sign in with Google", the fake Google answers, and the browser lands on the app's callback with a
code the test redeems for tokens; and a SAML sign-in where pysaml2's IdP answers with its auto-submitting
HTTP-POST form, which the browser posts to ``/saml2/idpresponse`` by itself (scripts on)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from aiohttp import web

from tests.e2e.federation_support import corp_details, saml_idp_for, usernames, verified_id_token
from tests.e2e.oauth_support import pkce_pair, query_of
from tests.fakes.oauth import FakeAmazon, FakeApple, FakeFacebook, FakeGoogle, FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.fakes.server import ThreadedApp
from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def app() -> Iterator[App]:
    with App() as server:
        yield server


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="federation-browser")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[FakeSamlIdP]:
    with saml_idp_for(gatehouse, idp, pool_id, encrypt=True) as server:
        yield server


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, google: FakeGoogle, saml_idp: FakeSamlIdP, app: App) -> str:
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Google", ProviderType="Google", ProviderDetails=google.provider_details(),
        AttributeMapping={"email": "email", "name": "name"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="CorpSAML", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256",
                         "EncryptedResponses": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    return str(
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="browser-app", AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[app.callback],
            SupportedIdentityProviders=["COGNITO", "Google", "CorpSAML"],
        )["UserPoolClient"]["ClientId"]
    )  # fmt: skip


class App(ThreadedApp):
    """The app at its redirect URI, a real HTTP server: what the browser brings back is answered and kept.
    (Playwright does not route requests reached through a redirect chain, so the app cannot be a route.)"""

    def __init__(self) -> None:
        super().__init__()
        self.callback = f"{self.url}/callback"
        self.callbacks: list[str] = []

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/callback", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.callbacks.append(str(request.url))
        return web.Response(text="<h1>Back at the app</h1>", content_type="text/html")


def authorize_url(gatehouse: GatehouseServer, app: App, client_id: str, challenge: str, **extra: str) -> str:
    query = {
        "client_id": client_id, "response_type": "code", "redirect_uri": app.callback, "scope": "openid email profile",
        "state": "browser-state", "code_challenge": challenge, "code_challenge_method": "S256", **extra,
    }  # fmt: skip
    return f"{gatehouse.url}/oauth2/authorize?{urlencode(query)}"


def redeem(gatehouse: GatehouseServer, app: App, client_id: str, callback: str, verifier: str) -> dict[str, Any]:
    answer = query_of(callback)
    assert answer["state"] == "browser-state", callback
    reply = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "client_id": client_id, "code": answer["code"],
              "redirect_uri": app.callback, "code_verifier": verifier},
        timeout=10,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def reach_the_app(
    browser: Any, app: App, url: str, act: Callable[[Any], None], *, landed: Callable[[Any], None] | None = None
) -> str:
    """Open ``url`` in a fresh browser context, let ``act`` work the page (click a provider, fill a form) until
    the browser reaches the app's callback, then let ``landed`` look at the page there; the callback URL."""
    seen = len(app.callbacks)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url)
        with page.expect_request(lambda request: request.url.startswith(app.callback), timeout=20000):
            act(page)
        page.wait_for_load_state()
        # The browser has sent the request; on a loaded machine the app's own thread may not have answered it
        # yet, and closing the context would cancel it.
        deadline = time.monotonic() + 10
        while len(app.callbacks) == seen and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        if landed is not None:
            landed(page)
    finally:
        context.close()
    assert len(app.callbacks) == seen + 1
    return str(app.callbacks[-1])


def test_sign_in_with_google_button(
    gatehouse: GatehouseServer, idp: Any, browser: Any, app: App, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    verifier, challenge = pkce_pair()

    def click_google(page: Any) -> None:
        assert "/login" in page.url and page.locator('input[name="password"]').count() == 1
        page.click("text=Sign in with Google")

    def back_at_the_app(page: Any) -> None:
        assert page.locator("h1").inner_text() == "Back at the app"

    url = authorize_url(gatehouse, app, client_id, challenge)
    callback = reach_the_app(browser, app, url, click_google, landed=back_at_the_app)
    assert google.authorize_requests[-1]["redirect_uri"] == f"{gatehouse.url}/oauth2/idpresponse"
    tokens = redeem(gatehouse, app, client_id, callback, verifier)
    claims = verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"])
    assert claims["cognito:username"] == "Google_110169484474386276334" and claims["email"] == "ann@gmail.example"
    assert claims["identities"][0]["providerName"] == "Google"


def test_saml_sign_in_in_the_browser(
    gatehouse: GatehouseServer, browser: Any, app: App, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    verifier, challenge = pkce_pair()
    # The IdP's page posts the Response by itself (onload): the browser ends at the app.
    url = authorize_url(gatehouse, app, client_id, challenge)
    callback = reach_the_app(browser, app, url, lambda page: page.click("text=Sign in with CorpSAML"))
    assert saml_idp.authn_requests[-1]["signed"]
    tokens = redeem(gatehouse, app, client_id, callback, verifier)
    claims = verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"])
    assert claims["cognito:username"] == "CorpSAML_ann@corp.example" and claims["email"] == "ann@corp.example"


def test_declining_at_google_brings_the_browser_back_with_an_error(
    gatehouse: GatehouseServer, idp: Any, browser: Any, app: App, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    """A person who declines at the upstream lands on the app with ``error=access_denied``, and no user is
    made."""
    before = usernames(idp, pool_id)
    _, challenge = pkce_pair()
    google.decline = True
    try:
        url = authorize_url(gatehouse, app, client_id, challenge)
        callback = reach_the_app(browser, app, url, lambda page: page.click("text=Sign in with Google"))
    finally:
        google.decline = False
    answer = query_of(callback)
    assert answer["error"] == "access_denied" and "code" not in answer and answer["state"] == "browser-state"
    assert usernames(idp, pool_id) == before


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        server.user = {"sub": "emp-1", "email": "emp@corp.example"}
        yield server


@pytest.fixture(scope="module")
def every_type_client_id(
    idp: Any,
    pool_id: str,
    client_id: str,
    app: App,
    apple: FakeApple,
    facebook: FakeFacebook,
    amazon: FakeAmazon,
    corp: FakeOIDC,
) -> str:
    """A client of the same pool offering the other provider types (Google and SAML have their own tests)."""
    for name, kind, details in (
        ("SignInWithApple", "SignInWithApple", apple.provider_details()),
        ("Facebook", "Facebook", facebook.provider_details()),
        ("LoginWithAmazon", "LoginWithAmazon", amazon.provider_details()),
    ):
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName=name, ProviderType=kind, ProviderDetails=details,
            AttributeMapping={"email": "email"},
        )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC", ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email"}, IdpIdentifiers=["corp.example"],
    )  # fmt: skip
    return str(
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="every-type", AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[app.callback],
            SupportedIdentityProviders=["COGNITO", "SignInWithApple", "Facebook", "LoginWithAmazon", "Corp"],
        )["UserPoolClient"]["ClientId"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("provider", "username"),
    [
        ("SignInWithApple", "SignInWithApple_001234.abcdef.0987"),
        ("Facebook", "Facebook_10158000000000001"),
        ("LoginWithAmazon", "LoginWithAmazon_amzn1.account.AFAKE0000000000000000000000"),
        ("Corp", "Corp_emp-1"),
    ],
)
def test_each_provider_type_in_the_browser_then_userinfo(
    gatehouse: GatehouseServer,
    browser: Any,
    app: App,
    pool_id: str,
    every_type_client_id: str,
    provider: str,
    username: str,
) -> None:
    """authorize -> hosted page -> upstream -> callback -> tokens -> userInfo for Apple (its form_post back,
    submitted by the browser), Facebook, Amazon, and an OIDC provider reached by a corporate email."""
    verifier, challenge = pkce_pair()

    def sign_in_upstream(page: Any) -> None:
        if provider == "Corp":
            page.fill("#sso-email", "emp@corp.example")
            page.click("text=Sign in with your corporate email")
        else:
            label = {"SignInWithApple": "Apple", "LoginWithAmazon": "Amazon"}.get(provider, provider)
            page.click(f"text=Sign in with {label}")

    url = authorize_url(gatehouse, app, every_type_client_id, challenge)
    tokens = redeem(gatehouse, app, every_type_client_id, reach_the_app(browser, app, url, sign_in_upstream), verifier)
    claims = verified_id_token(gatehouse, pool_id, every_type_client_id, tokens["id_token"])
    assert claims["cognito:username"] == username and claims["identities"][0]["providerName"] == provider
    reply = requests.get(
        f"{gatehouse.url}/oauth2/userInfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    info = reply.json()
    assert info["sub"] == claims["sub"] and info["username"] == username and info["email"] == claims["email"]
