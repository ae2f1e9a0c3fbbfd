"""Every MFA challenge on the hosted /login page, over HTTP and in Chromium: SMS_MFA (the code read from the
server's SMS outbox), EMAIL_OTP as a second factor (the code from the aiosmtpd server), SELECT_MFA_TYPE
choosing TOTP; wrong codes, bogus choices, another user's session and a spent challenge each give a
person-friendly message (the same form, or the login page), never a stack trace."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
import requests

from tests.e2e.mfa_support import confirmed_user, outbox_sms, sms_code
from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, OAuthPool, make_pool, pkce_pair, query_of
from tests.e2e.test_mfa_sms_email import EMAIL_CONFIG, SMS_CONFIG, email_code, not_the
from tests.support import GatehouseServer, MailServer

ALERT = 'role="alert"'
VIEWPORT = {"width": 420, "height": 780}


def _user(idp: Any, pool_id: str, username: str, **attributes: str) -> None:
    confirmed_user(idp, pool_id, username, PASSWORD, **attributes)


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    made = make_pool(idp, gatehouse.url, "hosted-mfa")
    idp.set_user_pool_mfa_config(
        UserPoolId=made.pool_id,
        MfaConfiguration="OPTIONAL",
        SmsMfaConfiguration=SMS_CONFIG,
        EmailMfaConfiguration=EMAIL_CONFIG,
        SoftwareTokenMfaConfiguration={"Enabled": True},
    )
    return made


def _login(browser: Browser, pool: OAuthPool, username: str) -> requests.Response:
    """Authorize (confidential client) and post the password: the first challenge page."""
    page = browser.follow(browser.get(browser.authorize_url(pool.secret_id, scope="openid email")))
    assert page.status_code == 200 and "Sign in" in page.text
    return browser.submit(page, {"username": username, "password": PASSWORD})


def _browser_login(context: Any, gatehouse: GatehouseServer, pool: OAuthPool, challenge: str, username: str) -> Any:
    """In a real browser: authorize (public client, PKCE) and sign in with the password; the page that follows."""
    page = context.new_page()
    page.goto(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/authorize?client_id={pool.public_id}&response_type=code"
        f"&redirect_uri={CALLBACK}&scope=openid+email&state=browser-state&code_challenge={challenge}"
        "&code_challenge_method=S256"
    )
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    return page


def _redeem(gatehouse: GatehouseServer, pool: OAuthPool, done: requests.Response) -> dict[str, Any]:
    assert done.status_code == 303 and done.headers["Location"].startswith(CALLBACK), done.text
    tokens = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": query_of(done.headers["Location"])["code"]}
        | {"redirect_uri": CALLBACK},
        auth=(pool.secret_id, pool.secret),
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    result: dict[str, Any] = tokens.json()
    return result


def _clean(page: requests.Response) -> None:
    assert "Traceback" not in page.text and "Exception" not in page.text


def test_sms_mfa_with_a_wrong_code_first(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    phone = "+15555550171"
    _user(idp, pool.pool_id, "sam", phone_number=phone, email="sam@example.com")
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool.pool_id, Username="sam", SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    browser = Browser(gatehouse.url)
    page = _login(browser, pool, "sam")
    assert page.status_code == 200 and "Enter the code we texted you" in page.text
    assert "+*******0171" in page.text and 'autocomplete="one-time-code"' in page.text
    code = sms_code(gatehouse, phone, 1)
    wrong = browser.submit(page, {"code": not_the(code)})
    assert wrong.status_code == 400 and ALERT in wrong.text and "That code is not right" in wrong.text
    assert "Enter the code we texted you" in wrong.text and "+*******0171" in wrong.text  # the same form
    _clean(wrong)
    assert Browser.form_fields(wrong)["challenge"] == "SMS_MFA"
    done = browser.submit(wrong, {"code": code})
    tokens = _redeem(gatehouse, pool, done)
    assert tokens["id_token"] and tokens["refresh_token"]
    # The answered request cannot be answered again (the page, and its challenge, are spent).
    again = browser.submit(wrong, {"code": code})
    assert again.status_code == 400 and ALERT in again.text and "This sign-in page has expired" in again.text
    _clean(again)
    assert len(outbox_sms(gatehouse, phone)) == 1


def test_email_mfa(gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: OAuthPool) -> None:
    _user(idp, pool.pool_id, "emma", email="emma@example.com", email_verified="true")
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool.pool_id, Username="emma", EmailMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    browser = Browser(gatehouse.url)
    page = _login(browser, pool, "emma")
    assert page.status_code == 200 and "Enter the code we emailed you" in page.text and "e***@e***" in page.text
    code = email_code(mail, "emma@example.com", 1)
    empty = browser.submit(page, {"code": ""})
    assert empty.status_code == 400 and ALERT in empty.text and "Enter the code we emailed you" in empty.text
    _clean(empty)
    wrong = browser.submit(empty, {"code": "not-a-code"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.text
    _clean(wrong)
    _redeem(gatehouse, pool, browser.submit(wrong, {"code": code}))


def test_select_mfa_type_choosing_totp(gatehouse: GatehouseServer, idp: Any, mail: MailServer, pool: OAuthPool) -> None:
    phone = "+15555550172"
    _user(idp, pool.pool_id, "tara", phone_number=phone, email="tara@example.com", email_verified="true")
    # Enrol TOTP with an access token from the hosted UI itself (no MFA yet), then turn SMS on too.
    browser = Browser(gatehouse.url)
    signed_in = browser.sign_in(
        browser.authorize_url(pool.secret_id, scope="openid aws.cognito.signin.user.admin"), "tara"
    )
    access = _redeem(gatehouse, pool, signed_in)["access_token"]
    public = gatehouse.client(signed=False)
    secret = public.associate_software_token(AccessToken=access)["SecretCode"]
    totp = pyotp.TOTP(secret)
    step = int(time.time() // 30)
    public.verify_software_token(AccessToken=access, UserCode=totp.generate_otp(step))
    public.set_user_mfa_preference(
        AccessToken=access, SMSMfaSettings={"Enabled": True}, SoftwareTokenMfaSettings={"Enabled": True}
    )

    browser = Browser(gatehouse.url)
    page = _login(browser, pool, "tara")
    assert page.status_code == 200 and "Choose how to verify" in page.text
    assert ">Authenticator app</button>" in page.text and ">Text message (SMS)</button>" in page.text
    bogus = browser.submit(page, {"choice": "WEB_AUTHN"})
    assert bogus.status_code == 400 and ALERT in bogus.text and "Choose one of the ways shown." in bogus.text
    assert ">Authenticator app</button>" in bogus.text  # the same choice again
    _clean(bogus)
    chosen = browser.submit(bogus, {"choice": "SOFTWARE_TOKEN_MFA"})
    assert chosen.status_code == 200 and "authenticator app" in chosen.text and 'name="code"' in chosen.text
    assert outbox_sms(gatehouse, phone) == []  # choosing TOTP sends nothing
    wrong = browser.submit(chosen, {"code": "000000" if totp.now() != "000000" else "111111"})
    assert wrong.status_code == 400 and ALERT in wrong.text
    _clean(wrong)
    done = browser.submit(wrong, {"code": totp.generate_otp(step + 1)})
    _redeem(gatehouse, pool, done)


def test_another_users_session_is_refused(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    """A challenge form posted with its username changed (another user's name) does not sign anyone in."""
    phone = "+15555550173"
    _user(idp, pool.pool_id, "uma", phone_number=phone)
    _user(idp, pool.pool_id, "victor", phone_number="+15555550174")
    for name in ("uma", "victor"):
        idp.admin_set_user_mfa_preference(
            UserPoolId=pool.pool_id, Username=name, SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
        )
    browser = Browser(gatehouse.url)
    page = _login(browser, pool, "uma")
    code = sms_code(gatehouse, phone, 1)
    swapped = browser.submit(page, {"code": code, "username": "victor"})
    assert swapped.status_code == 400 and ALERT in swapped.text and "Location" not in swapped.headers
    _clean(swapped)
    forged = browser.submit(page, {"code": code, "session": "AAAA" + Browser.form_fields(page)["session"][4:]})
    assert forged.status_code == 400 and "Location" not in forged.headers
    _clean(forged)
    no_csrf = browser.post(Browser.form_action(page), {**Browser.form_fields(page), "_csrf": "x" * 43, "code": code})
    assert no_csrf.status_code == 403
    # The tampered answers ended that challenge; a new sign-in (and its new code) works.
    spent = browser.submit(page, {"code": code})
    assert spent.status_code == 400 and "Sign in again" in spent.text and "Location" not in spent.headers
    page = browser.submit(spent, {"username": "uma", "password": PASSWORD})
    _redeem(gatehouse, pool, browser.submit(page, {"code": sms_code(gatehouse, phone, 2)}))


def test_sms_mfa_in_the_browser(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, browser: Any) -> None:
    from tests.e2e.test_oauth_browser import _App, _exchange, _shot

    phone = "+15555550175"
    _user(idp, pool.pool_id, "wendy", phone_number=phone)
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool.pool_id, Username="wendy", SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    verifier, challenge = pkce_pair()
    context = browser.new_context(viewport=VIEWPORT)
    app = _App(context)
    try:
        page = _browser_login(context, gatehouse, pool, challenge, "wendy")
        assert page.get_by_role("heading", name="Enter the code we texted you").is_visible()
        _shot(page, "sms-code")
        code = sms_code(gatehouse, phone, 1)
        page.get_by_label("Code").fill(not_the(code))
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("alert").is_visible()
        assert "That code is not right" in page.get_by_role("alert").inner_text()
        page.get_by_label("Code").fill(code)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{CALLBACK}**")
        assert len(app.callbacks) == 1
        tokens = _exchange(gatehouse, pool.pool_id, pool.public_id, app.callbacks[0], verifier)
        assert tokens["id_token"]
    finally:
        context.close()


def test_no_passkey_option_without_a_domain_to_be_the_relying_party(gatehouse: GatehouseServer, idp: Any) -> None:
    """This server's public URL is an IP address, which browsers refuse as a relying party ID: the passkey
    option is not shown (and not accepted), while the emailed code, also allowed, is."""
    made = make_pool(
        idp,
        gatehouse.url,
        "hosted-no-rp",
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "WEB_AUTHN", "EMAIL_OTP"]}},
    )
    browser = Browser(gatehouse.url)
    login = browser.follow(browser.get(browser.authorize_url(made.secret_id)))
    assert "Email me a sign-in code" in login.text and "Sign in with a passkey" not in login.text
    refused = browser.submit(login, {"username": "anyone", "method": "WEB_AUTHN"})
    assert refused.status_code == 400 and "Choose a way to sign in." in refused.text
    _clean(refused)
