"""Passwordless sign-in on the hosted /login page: "Sign in with a passkey" (Chromium's virtual authenticator,
the page's own script calling navigator.credentials.get with the WEB_AUTHN challenge's options) and "Email me
a sign-in code" (EMAIL_OTP as the first factor), offered only when the pool's
SignInPolicy.AllowedFirstAuthFactors allows them; forged, empty and unknown passkeys are refused politely.

WebAuthn needs a secure context: this module's Gatehouse has the public URL http://localhost:<port>, and the
browser goes to localhost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.e2e.mfa_support import outbox_sms
from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, pkce_pair, query_of
from tests.e2e.test_oauth_browser import _App, _shot
from tests.e2e.test_passkeys import CREATE, add_authenticator, origin_of
from tests.support import GatehouseServer, MailServer, body_text, smtp_config

ALERT = 'role="alert"'
VIEWPORT = {"width": 420, "height": 780}
API_FLOWS = ["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    """This module's Gatehouse, reached as http://localhost:<port> (a secure context for WebAuthn)."""
    data_dir: Path = tmp_path_factory.mktemp("hosted-passkeys") / "data"
    server = GatehouseServer(data_dir, config=smtp_config(mail))
    server.extra_args = ["--public-url", origin_of(server)]
    server.start()
    yield server
    server.stop()


class Pool:
    def __init__(self, idp: Any, name: str, factors: list[str]) -> None:
        self.id = str(
            idp.create_user_pool(PoolName=name, Policies={"SignInPolicy": {"AllowedFirstAuthFactors": factors}})[
                "UserPool"
            ]["Id"]
        )
        self.api_client = str(
            idp.create_user_pool_client(UserPoolId=self.id, ClientName="api", ExplicitAuthFlows=API_FLOWS)[
                "UserPoolClient"
            ]["ClientId"]
        )
        self.client = str(
            idp.create_user_pool_client(
                UserPoolId=self.id,
                ClientName="web",
                AllowedOAuthFlowsUserPoolClient=True,
                AllowedOAuthFlows=["code"],
                AllowedOAuthScopes=["openid", "email"],
                CallbackURLs=[CALLBACK],
                SupportedIdentityProviders=["COGNITO"],
            )["UserPoolClient"]["ClientId"]
        )


@pytest.fixture(scope="module")
def pool(idp: Any) -> Pool:
    return Pool(idp, "hosted-passkeys", ["PASSWORD", "WEB_AUTHN", "EMAIL_OTP"])


def _user(idp: Any, pool: Pool, username: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool.id,
        Username=username,
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool.id, Username=username, Password=PASSWORD, Permanent=True)


def _authorize_url(gatehouse: GatehouseServer, pool: Pool, challenge: str) -> str:
    query = {
        "client_id": pool.client,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": "openid email",
        "state": "passkey-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{origin_of(gatehouse)}/{pool.id}/oauth2/authorize?{urlencode(query)}"


def _exchange(gatehouse: GatehouseServer, pool: Pool, callback: str, verifier: str) -> dict[str, Any]:
    params = query_of(callback)
    assert params["state"] == "passkey-state" and "code" in params
    response = requests.post(
        f"{gatehouse.url}/{pool.id}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": pool.client,
            "code": params["code"],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _login_page(gatehouse: GatehouseServer, pool: Pool) -> tuple[Browser, requests.Response]:
    browser = Browser(origin_of(gatehouse))
    _, challenge = pkce_pair()
    page = browser.follow(browser.get(_authorize_url(gatehouse, pool, challenge)))
    assert page.status_code == 200 and "Sign in" in page.text
    return browser, page


def code_in(message: Any) -> str:
    """The one-time code (eight digits for a passwordless sign-in) in an email."""
    match = re.search(r"\b(\d{6,8})\b", body_text(message))
    assert match, body_text(message)
    return match.group(1)


def _clean(page: requests.Response) -> None:
    assert "Traceback" not in page.text and "Exception" not in page.text


@pytest.fixture
def device(browser: Any, gatehouse: GatehouseServer) -> Iterator[tuple[Any, Any, Any]]:
    """A tab with a virtual platform authenticator (with user verification), and the app at CALLBACK."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        app = _App(context)
        page = context.new_page()
        response = page.goto(f"{origin_of(gatehouse)}/health")
        assert response is not None and response.status == 200
        yield app, page, add_authenticator(context, page)
    finally:
        context.close()


def _register(public_idp: Any, pool: Pool, page: Any, username: str) -> None:
    signed_in = public_idp.initiate_auth(
        ClientId=pool.api_client,
        AuthFlow="USER_AUTH",
        AuthParameters={"USERNAME": username, "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": PASSWORD},
    )
    access = signed_in["AuthenticationResult"]["AccessToken"]
    options = public_idp.start_web_authn_registration(AccessToken=access)["CredentialCreationOptions"]
    credential = page.evaluate(CREATE, options)
    public_idp.complete_web_authn_registration(AccessToken=access, Credential=credential)


def test_sign_in_with_a_passkey_on_the_hosted_page(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool: Pool, device: tuple[Any, Any, Any]
) -> None:
    _, page, (cdp, authenticator) = device
    _user(idp, pool, "pia")
    _register(public_idp, pool, page, "pia")
    verifier, challenge = pkce_pair()
    page.goto(_authorize_url(gatehouse, pool, challenge))
    passkey_button = page.get_by_role("button", name="Sign in with a passkey")
    assert passkey_button.is_visible()
    assert page.get_by_role("button", name="Email me a sign-in code").is_visible()
    page.get_by_label("Username").fill("pia")
    _shot(page, "login-passkey")
    # The page's script runs the ceremony at once (the virtual authenticator consents) and posts the answer;
    # the browser is then sent to the app. (Playwright routes do not see a redirect made by a scripted form
    # submission, so the request itself is watched for.)
    with (
        page.expect_request(lambda r: r.url.startswith(CALLBACK)) as back,
        page.expect_response(lambda r: r.request.method == "POST" and "/login?" in r.url) as shown,
    ):
        passkey_button.click()
    csp = shown.value.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    tokens = _exchange(gatehouse, pool, back.value.url, verifier)
    id_claims = json.loads(_b64(tokens["id_token"].split(".")[1]))
    assert id_claims["cognito:username"] == "pia"
    used = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(used) == 1 and used[0]["signCount"] >= 1  # the passkey signed the hosted page's challenge


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_passkey_page_over_http_refuses_forged_answers(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool: Pool, device: tuple[Any, Any, Any]
) -> None:
    _, page, _ = device
    _user(idp, pool, "quinn")
    _register(public_idp, pool, page, "quinn")
    browser, login = _login_page(gatehouse, pool)
    assert "script-src" not in login.headers["Content-Security-Policy"]  # the login page runs no script
    passkey = browser.submit(login, {"username": "quinn", "method": "WEB_AUTHN"})
    assert passkey.status_code == 200 and "Sign in with a passkey" in passkey.text
    assert f'<script src="/{pool.id}/static/passkey.js"></script>' in passkey.text and "<script>" not in passkey.text
    assert "script-src 'self'" in passkey.headers["Content-Security-Policy"]
    options = json.loads(Browser.form_fields(passkey)["options"])
    assert options["rpId"] == "localhost" and options["allowCredentials"]
    script = browser.get(f"/{pool.id}/static/passkey.js")
    assert script.status_code == 200 and "navigator.credentials.get" in script.text
    assert script.headers["Content-Type"].startswith("text/javascript")
    # No credential (the script did not run): back to the login page.
    empty = browser.submit(passkey, {"credential": ""})
    assert empty.status_code == 400 and ALERT in empty.text and 'name="password"' in empty.text
    _clean(empty)
    # A forged assertion is refused, and that challenge is gone.
    forged_credential = json.dumps({"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}})
    passkey = browser.submit(login, {"username": "quinn", "method": "WEB_AUTHN"})
    forged = browser.submit(passkey, {"credential": forged_credential})
    assert forged.status_code == 400 and "Your passkey could not be verified" in forged.text
    assert "Location" not in forged.headers
    _clean(forged)
    garbage = browser.submit(passkey, {"credential": "{not json"})
    assert garbage.status_code == 400 and "Location" not in garbage.headers
    _clean(garbage)


def test_passkey_option_needs_a_passkey_and_the_pools_permission(
    gatehouse: GatehouseServer, idp: Any, pool: Pool
) -> None:
    _user(idp, pool, "rita")  # no passkey
    browser, login = _login_page(gatehouse, pool)
    none = browser.submit(login, {"username": "rita", "method": "WEB_AUTHN"})
    assert none.status_code == 400 and "There is no passkey for this account here" in none.text
    _clean(none)
    nobody = browser.submit(login, {"username": "nobody-here", "method": "WEB_AUTHN"})
    assert nobody.status_code in (200, 400) and "Location" not in nobody.headers
    _clean(nobody)
    empty = browser.submit(login, {"username": "", "method": "WEB_AUTHN"})
    assert empty.status_code == 400 and "Enter your username" in empty.text

    password_only = Pool(idp, "hosted-password-only", ["PASSWORD"])
    _user(idp, password_only, "rita")
    browser, login = _login_page(gatehouse, password_only)
    assert "Sign in with a passkey" not in login.text and "Email me a sign-in code" not in login.text
    refused = browser.submit(login, {"username": "rita", "method": "WEB_AUTHN"})
    assert refused.status_code == 400 and "Choose a way to sign in." in refused.text
    other = browser.submit(login, {"username": "rita", "method": "CUSTOM_CHALLENGE"})
    assert other.status_code == 400 and "Choose a way to sign in." in other.text


def test_email_code_as_the_first_factor(gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: Pool) -> None:
    _user(idp, pool, "sven")
    browser, login = _login_page(gatehouse, pool)
    page = browser.submit(login, {"username": "sven", "method": "EMAIL_OTP"})
    assert page.status_code == 200 and "Enter the code we emailed you" in page.text and "s***@e***" in page.text
    code = code_in(mail.wait_for("sven@example.com"))
    wrong = browser.submit(page, {"code": "1" * len(code) if code != "1" * len(code) else "2" * len(code)})
    assert wrong.status_code == 400 and "That code is not right" in wrong.text
    assert "Enter the code we emailed you" in wrong.text
    _clean(wrong)
    done = browser.submit(wrong, {"code": code})
    assert done.status_code == 303 and done.headers["Location"].startswith(CALLBACK), done.text
    assert "code" in query_of(done.headers["Location"])


def test_email_code_page_in_the_browser(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: Pool, browser: Any
) -> None:
    _user(idp, pool, "tove")
    context = browser.new_context(viewport=VIEWPORT)
    app = _App(context)
    try:
        page = context.new_page()
        verifier, challenge = pkce_pair()
        page.goto(_authorize_url(gatehouse, pool, challenge))
        page.get_by_label("Username").fill("tove")
        page.get_by_role("button", name="Email me a sign-in code").click()
        assert page.get_by_role("heading", name="Enter the code we emailed you").is_visible()
        code = code_in(mail.wait_for("tove@example.com"))
        page.get_by_label("Code").fill(code)
        _shot(page, "email-code")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{CALLBACK}**")
        _exchange(gatehouse, pool, app.callbacks[0], verifier)
    finally:
        context.close()


def test_texted_code_as_the_first_factor(gatehouse: GatehouseServer, idp: Any) -> None:
    sms_pool = Pool(idp, "hosted-sms-otp", ["PASSWORD", "SMS_OTP"])
    phone = "+15555550190"
    idp.admin_create_user(
        UserPoolId=sms_pool.id,
        Username="ulla",
        UserAttributes=[
            {"Name": "phone_number", "Value": phone},
            {"Name": "phone_number_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=sms_pool.id, Username="ulla", Password=PASSWORD, Permanent=True)
    browser, login = _login_page(gatehouse, sms_pool)
    assert "Text me a sign-in code" in login.text and "Sign in with a passkey" not in login.text
    page = browser.submit(login, {"username": "ulla", "method": "SMS_OTP"})
    assert page.status_code == 200 and "Enter the code we texted you" in page.text, page.text
    texts = outbox_sms(gatehouse, phone)
    assert len(texts) == 1
    match = re.search(r"\b(\d{6,8})\b", texts[0])
    assert match
    wrong = browser.submit(page, {"code": "0" * len(match.group(1))})
    assert wrong.status_code == 400 and "That code is not right" in wrong.text
    _clean(wrong)
    done = browser.submit(wrong, {"code": match.group(1)})
    assert done.status_code == 303 and done.headers["Location"].startswith(CALLBACK), done.text
