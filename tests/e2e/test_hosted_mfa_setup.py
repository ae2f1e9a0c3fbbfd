"""MFA set-up on the hosted /login pages, over HTTP and in Chromium, for a pool that requires MFA: choosing
between an authenticator app and email, the email address form, the code emailed to it (read from the
aiosmtpd server), and the next sign-in asking for that email code. Hostile and mistaken posts (a bogus choice,
a malformed address, a wrong code, another user's name, no CSRF token) each get a person-friendly page, never
a stack trace, and set nothing up.
"""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from tests.e2e.mfa_support import outbox_sms
from tests.e2e.oauth_support import CALLBACK, Browser, OAuthPool, make_pool, pkce_pair
from tests.e2e.test_hosted_mfa import ALERT, VIEWPORT, _browser_login, _clean, _login, _redeem, _user
from tests.e2e.test_mfa_sms_email import EMAIL_CONFIG, SMS_CONFIG, email_code, not_the
from tests.support import GatehouseServer, MailServer


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    made = make_pool(idp, gatehouse.url, "hosted-mfa-setup")
    idp.set_user_pool_mfa_config(
        UserPoolId=made.pool_id,
        MfaConfiguration="ON",
        EmailMfaConfiguration=EMAIL_CONFIG,
        SoftwareTokenMfaConfiguration={"Enabled": True},
    )
    return made


def _mfa(idp: Any, pool_id: str, username: str) -> tuple[list[str] | None, str | None]:
    user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
    return user.get("UserMFASettingList"), user.get("PreferredMfaSetting")


def _email_of(idp: Any, pool_id: str, username: str) -> tuple[str | None, str | None]:
    user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    return attributes.get("email"), attributes.get("email_verified")


def test_choosing_email_and_setting_it_up(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: OAuthPool
) -> None:
    _user(idp, pool.pool_id, "hana")
    browser = Browser(gatehouse.url)
    choose = _login(browser, pool, "hana")
    assert choose.status_code == 200 and "Add a second step to your sign-in" in choose.text
    assert ">Use an authenticator app</button>" in choose.text and ">Get codes by email</button>" in choose.text
    assert "figure" not in choose.text  # no QR code (and no secret) before the app is chosen
    _clean(choose)
    bogus = browser.submit(choose, {"choice": "SMS_MFA"})
    assert bogus.status_code == 400 and ALERT in bogus.text and "Choose one of the ways shown." in bogus.text
    assert ">Get codes by email</button>" in bogus.text
    _clean(bogus)

    form = browser.submit(bogus, {"choice": "EMAIL_OTP"})
    assert form.status_code == 200 and "Get sign-in codes by email" in form.text
    assert 'type="email" autocomplete="email"' in form.text and '<label class="label-customizable"' in form.text
    malformed = browser.submit(form, {"email": "not-an-address"})
    assert (
        malformed.status_code == 400 and ALERT in malformed.text and "Invalid email address format." in malformed.text
    )
    assert "Get sign-in codes by email" in malformed.text  # the same form again
    _clean(malformed)
    assert mail.messages_to("not-an-address") == []

    address = "hana@example.com"
    code_page = browser.submit(malformed, {"email": address})
    assert code_page.status_code == 200 and "Enter the code we emailed you" in code_page.text
    assert "h***@e***" in code_page.text
    code = email_code(mail, address, 1)
    assert _mfa(idp, pool.pool_id, "hana") == (None, None) and _email_of(idp, pool.pool_id, "hana") == (None, None)
    wrong = browser.submit(code_page, {"code": not_the(code)})
    assert wrong.status_code == 400 and "That code is not right" in wrong.text
    _clean(wrong)
    assert _email_of(idp, pool.pool_id, "hana") == (None, None)
    tokens = _redeem(gatehouse, pool, browser.submit(wrong, {"code": code}))
    assert tokens["id_token"]
    assert _mfa(idp, pool.pool_id, "hana") == (["EMAIL_OTP"], "EMAIL_OTP")
    assert _email_of(idp, pool.pool_id, "hana") == (address, "true")

    # The next sign-in asks for an emailed code straight away.
    again = _login(Browser(gatehouse.url), pool, "hana")
    assert again.status_code == 200 and "Enter the code we emailed you" in again.text
    assert "Add a second step" not in again.text


def test_choosing_the_authenticator_app(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: OAuthPool
) -> None:
    _user(idp, pool.pool_id, "ivan")
    browser = Browser(gatehouse.url)
    choose = _login(browser, pool, "ivan")
    app = browser.submit(choose, {"choice": "SOFTWARE_TOKEN_MFA"})
    assert app.status_code == 200 and "Set up an authenticator app" in app.text and "<svg" in app.text
    secret = Browser.form_fields(app)["secret"]
    _redeem(gatehouse, pool, browser.submit(app, {"code": pyotp.TOTP(secret).now()}))
    assert _mfa(idp, pool.pool_id, "ivan") == (["SOFTWARE_TOKEN_MFA"], "SOFTWARE_TOKEN_MFA")
    assert mail.messages_to("ivan@example.com") == []


def test_tampered_setup_posts(gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: OAuthPool) -> None:
    _user(idp, pool.pool_id, "jill")
    _user(idp, pool.pool_id, "karl")
    browser = Browser(gatehouse.url)
    form = browser.submit(_login(browser, pool, "jill"), {"choice": "EMAIL_OTP"})
    no_csrf = browser.post(
        Browser.form_action(form), {**Browser.form_fields(form), "_csrf": "x" * 43, "email": "a@b.co"}
    )
    assert no_csrf.status_code == 403
    # Karl's name on Jill's form: nothing is sent, the sign-in starts over.
    swapped = browser.submit(form, {"email": "karl@example.com", "username": "karl"})
    assert swapped.status_code == 400 and ALERT in swapped.text and "Location" not in swapped.headers
    _clean(swapped)
    assert mail.messages_to("karl@example.com") == [] and mail.messages_to("a@b.co") == []
    spent = browser.submit(form, {"email": "jill@example.com"})
    assert spent.status_code == 400 and "Sign in again" in spent.text
    assert mail.messages_to("jill@example.com") == []
    assert _mfa(idp, pool.pool_id, "jill") == (None, None) and _mfa(idp, pool.pool_id, "karl") == (None, None)


def test_email_only_and_sms_only_pools(gatehouse: GatehouseServer, idp: Any, mail: MailServer) -> None:
    email_only = make_pool(idp, gatehouse.url, "hosted-setup-email-only")
    idp.set_user_pool_mfa_config(
        UserPoolId=email_only.pool_id, MfaConfiguration="ON", EmailMfaConfiguration=EMAIL_CONFIG
    )
    _user(idp, email_only.pool_id, "lena")
    browser = Browser(gatehouse.url)
    form = _login(browser, email_only, "lena")
    assert (
        form.status_code == 200 and "Get sign-in codes by email" in form.text and "Add a second step" not in form.text
    )
    code_page = browser.submit(form, {"email": "lena@example.com"})
    assert "Enter the code we emailed you" in code_page.text
    _redeem(gatehouse, email_only, browser.submit(code_page, {"code": email_code(mail, "lena@example.com", 1)}))

    sms_only = make_pool(idp, gatehouse.url, "hosted-setup-sms-only")
    idp.set_user_pool_mfa_config(UserPoolId=sms_only.pool_id, MfaConfiguration="ON", SmsMfaConfiguration=SMS_CONFIG)
    _user(idp, sms_only.pool_id, "milo")
    told = _login(Browser(gatehouse.url), sms_only, "milo")
    assert told.status_code == 400 and ALERT in told.text and "needs a phone number" in told.text
    assert 'name="password"' in told.text  # back on the login page
    _clean(told)
    assert outbox_sms(gatehouse, "") == []


def test_email_setup_in_the_browser(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: OAuthPool, browser: Any
) -> None:
    from tests.e2e.test_oauth_browser import _App, _exchange, _shot

    _user(idp, pool.pool_id, "nora")
    verifier, challenge = pkce_pair()
    context = browser.new_context(viewport=VIEWPORT)
    app = _App(context)
    try:
        page = _browser_login(context, gatehouse, pool, challenge, "nora")
        assert page.get_by_role("heading", name="Add a second step to your sign-in").is_visible()
        _shot(page, "mfa-setup-choose")
        page.get_by_role("button", name="Get codes by email").click()
        assert page.get_by_role("heading", name="Get sign-in codes by email").is_visible()
        page.get_by_label("Email address").fill("nora@example.com")
        _shot(page, "mfa-setup-email")
        page.get_by_role("button", name="Send code").click()
        assert page.get_by_role("heading", name="Enter the code we emailed you").is_visible()
        page.get_by_label("Code").fill(email_code(mail, "nora@example.com", 1))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{CALLBACK}**")
        assert len(app.callbacks) == 1
        tokens = _exchange(gatehouse, pool.pool_id, pool.public_id, app.callbacks[0], verifier)
        assert tokens["id_token"]
        assert _mfa(idp, pool.pool_id, "nora") == (["EMAIL_OTP"], "EMAIL_OTP")
    finally:
        context.close()
