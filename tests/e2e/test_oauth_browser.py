"""The hosted UI in a real browser (Debian's Chromium through Playwright): sign up, confirm with the code
from the real SMTP server, sign in, enrol TOTP from the QR page (pyotp computes the code), come back to the
app with a code and exchange it for tokens; and a password reset. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest
import requests

from tests.e2e.oauth_support import CALLBACK, PASSWORD, make_user, pkce_pair, query_of
from tests.support import GatehouseServer, MailServer, code_in

# The committed screenshots are refreshed with GATEHOUSE_SCREENSHOTS=docs/screenshots; otherwise they go to a
# temporary directory, so a test run leaves the checkout as it was.
SCREENSHOTS = Path(os.environ.get("GATEHOUSE_SCREENSHOTS") or tempfile.mkdtemp(prefix="gatehouse-screens-"))
VIEWPORT = {"width": 420, "height": 780}


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _pool(idp: Any, name: str, *, mfa: bool) -> tuple[str, str]:
    pool_id = idp.create_user_pool(
        PoolName=name,
        AutoVerifiedAttributes=["email"],
        Schema=[{"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True}],
    )["UserPool"]["Id"]
    if mfa:
        idp.set_user_pool_mfa_config(
            UserPoolId=pool_id, MfaConfiguration="ON", SoftwareTokenMfaConfiguration={"Enabled": True}
        )
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="browser-app",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]
    return pool_id, client_id


class _App:
    """Stands in for the app at CALLBACK: the browser's request to it is answered here and remembered."""

    def __init__(self, context: Any) -> None:
        self.callbacks: list[str] = []
        context.route(f"{CALLBACK}**", self._handle)

    def _handle(self, route: Any) -> None:
        self.callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<h1>Back at the app</h1>")


def _authorize_url(gatehouse: GatehouseServer, pool_id: str, client_id: str, challenge: str) -> str:
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": "openid email",
        "state": "browser-state",
        "nonce": "browser-nonce",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{gatehouse.url}/{pool_id}/oauth2/authorize?{urlencode(query)}"


def _exchange(gatehouse: GatehouseServer, pool_id: str, client_id: str, callback: str, verifier: str) -> Any:
    params = query_of(callback)
    assert params["state"] == "browser-state" and params["iss"] == f"{gatehouse.url}/{pool_id}"
    response = requests.post(
        f"{gatehouse.url}/{pool_id}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "code": params["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_sign_up_confirm_sign_in_with_totp_enrolment(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, browser: Any
) -> None:
    pool_id, client_id = _pool(idp, "browser-signup", mfa=True)
    verifier, challenge = pkce_pair()
    context = browser.new_context(viewport=VIEWPORT)
    app = _App(context)
    try:
        page = context.new_page()
        page.goto(_authorize_url(gatehouse, pool_id, client_id, challenge))
        assert page.get_by_role("heading", name="Sign in").is_visible()
        _shot(page, "login")
        page.get_by_role("link", name="Sign up").click()
        page.get_by_label("Username").fill("erin")
        page.get_by_label("Email").fill("erin@example.com")
        page.get_by_label("Password").fill("Erins-Passw0rd!")
        _shot(page, "signup")
        page.get_by_role("button", name="Sign up").click()
        assert page.get_by_role("heading", name="Confirm your account").is_visible()
        code = code_in(mail.wait_for("erin@example.com"))
        page.get_by_label("Confirmation code").fill("000000" if code != "000000" else "111111")
        page.get_by_role("button", name="Confirm account").click()
        assert page.get_by_role("alert").is_visible()  # a wrong code is said so, on the page
        page.get_by_label("Confirmation code").fill(code)
        page.get_by_role("button", name="Confirm account").click()
        assert page.get_by_text("Your account is confirmed").is_visible()
        page.get_by_label("Username").fill("erin")
        page.get_by_label("Password").fill("Erins-Passw0rd!")
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("heading", name="Set up an authenticator app").is_visible()
        assert page.locator("figure.qr svg").count() == 1
        _shot(page, "mfa-setup")
        secret = page.locator("#secret-key").inner_text().strip()
        page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name="Verify and sign in").click()
        page.wait_for_url(f"{CALLBACK}**")
        assert len(app.callbacks) == 1
        tokens = _exchange(gatehouse, pool_id, client_id, app.callbacks[0], verifier)
        assert tokens["id_token"] and tokens["refresh_token"]
        user = idp.admin_get_user(UserPoolId=pool_id, Username="erin")
        assert user["UserStatus"] == "CONFIRMED" and user["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"
    finally:
        context.close()


def test_password_reset_in_the_browser(gatehouse: GatehouseServer, idp: Any, mail: MailServer, browser: Any) -> None:
    pool_id, client_id = _pool(idp, "browser-reset", mfa=False)
    make_user(idp, pool_id, "frank", email="frank@example.com")
    verifier, challenge = pkce_pair()
    context = browser.new_context(viewport=VIEWPORT)
    app = _App(context)
    try:
        page = context.new_page()
        page.goto(_authorize_url(gatehouse, pool_id, client_id, challenge))
        page.get_by_label("Username").fill("frank")
        page.get_by_label("Password").fill("not-the-password-1A!")
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_text("Incorrect username or password.").is_visible()
        _shot(page, "login-error")
        page.get_by_role("link", name="Forgot your password?").click()
        page.get_by_label("Username").fill("frank")
        page.get_by_role("button", name="Send a reset code").click()
        assert page.get_by_role("heading", name="Choose a new password").is_visible()
        page.get_by_label("Code").fill(code_in(mail.wait_for("frank@example.com")))
        page.get_by_label("New password").fill("Franks-New-Passw0rd!")
        _shot(page, "reset")
        page.get_by_role("button", name="Change password").click()
        assert page.get_by_text("Your password has been changed").is_visible()
        page.get_by_label("Username").fill("frank")
        page.get_by_label("Password").fill("Franks-New-Passw0rd!")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{CALLBACK}**")
        tokens = _exchange(gatehouse, pool_id, client_id, app.callbacks[0], verifier)
        assert tokens["access_token"]
    finally:
        context.close()


@pytest.mark.parametrize("path", ["/login?rid=gone", "/oauth2/authorize?client_id=unknown"])
def test_error_pages_render_in_the_browser(gatehouse: GatehouseServer, browser: Any, path: str) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        response = page.goto(f"{gatehouse.url}{path}")
        assert response is not None and response.status == 400
        assert page.get_by_role("heading", name="Something went wrong").is_visible()
        assert page.get_by_role("alert").inner_text()
    finally:
        context.close()


# An app on another site whose sign-out button POSTs to the end_session_endpoint (RP-Initiated Logout 1.0 §2).
# Plain http, which a pool allows only for localhost: Chromium holds up a form sent from an https page to an http
# address. Another site than Gatehouse's 127.0.0.1, and answered by the browser context (no server listens).
APP_SITE = "http://localhost:9"


def test_a_cross_site_post_to_logout_ends_the_session(gatehouse: GatehouseServer, idp: Any, browser: Any) -> None:
    """A cross-site POST carries no SameSite=Lax cookie, so the logout endpoint cannot see the session it was
    sent to end (removing the browser's cookie would leave the session itself alive in the store, and a copy of
    the cookie signed in). It sends the browser back to itself as a GET, a top-level navigation that does carry
    the cookie: the session ends, and the browser comes to the app's post_logout_redirect_uri with its state."""
    pool_id, client_id = _pool(idp, "browser-post-logout", mfa=False)
    idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=client_id,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"],
        CallbackURLs=[CALLBACK],
        LogoutURLs=[f"{APP_SITE}/bye"],
        SupportedIdentityProviders=["COGNITO"],
    )
    make_user(idp, pool_id, "gail", email="gail@example.com")
    verifier, challenge = pkce_pair()
    context = browser.new_context(viewport=VIEWPORT)
    app = _App(context)
    arrivals: list[str] = []

    def app_site(route: Any) -> None:
        arrivals.append(route.request.url)
        if route.request.url.startswith(f"{APP_SITE}/bye"):
            route.fulfill(status=200, content_type="text/html", body="<h1>Signed out</h1>")
            return
        form = (
            f'<form method="post" action="{gatehouse.url}/{pool_id}/logout">'
            f'<input type="hidden" name="id_token_hint" value="{tokens["id_token"]}">'
            f'<input type="hidden" name="post_logout_redirect_uri" value="{APP_SITE}/bye">'
            '<input type="hidden" name="state" value="see-you">'
            "<button>Sign out</button></form>"
        )
        route.fulfill(status=200, content_type="text/html", body=form)

    context.route(f"{APP_SITE}/**", app_site)
    try:
        page = context.new_page()
        page.goto(_authorize_url(gatehouse, pool_id, client_id, challenge))
        page.get_by_label("Username").fill("gail")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{CALLBACK}**")
        tokens = _exchange(gatehouse, pool_id, client_id, app.callbacks[0], verifier)
        sso = [c for c in context.cookies(gatehouse.url) if c["name"].startswith("gatehouse_sso")]
        assert len(sso) == 1
        page.goto(f"{APP_SITE}/account")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{APP_SITE}/bye**")
        assert query_of(arrivals[-1]) == {"state": "see-you"}
        # Signed out: the next authorization request is shown the sign-in page, not sent back with a code.
        page.goto(_authorize_url(gatehouse, pool_id, client_id, challenge))
        assert page.get_by_role("heading", name="Sign in").is_visible()
        assert len(app.callbacks) == 1
        # And the session is over in the store, not only gone from this browser: its cookie signs nobody in.
        again = requests.get(
            _authorize_url(gatehouse, pool_id, client_id, challenge),
            cookies={sso[0]["name"]: sso[0]["value"]},
            allow_redirects=False,
            timeout=10,
        )
        assert again.status_code == 302 and "/login?rid=" in again.headers["Location"]
    finally:
        context.close()
