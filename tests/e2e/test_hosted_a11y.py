"""Every hosted page checked for accessibility and for phones: axe-core (the npm package, WCAG 2.1 A and AA
rules) runs in Chromium on each page a person can meet -- sign-in (plain, branded, with federated and
passwordless buttons), sign-up, confirmation, password reset, each challenge page (new password, authenticator
set-up with its QR code, codes, choices, passkey), error, signed-out and feedback pages, and each form with an
error shown -- in the light and the dark colour scheme. At a 360x640 phone viewport no page needs scrolling
sideways, and every field has a label and the ``autocomplete``/``inputmode`` a phone's keyboard and a password
manager need. An error is announced (``role="alert"``) and tied to the form's fields (``aria-describedby``).

The pages are fetched as a browser without scripts would (tests/e2e/oauth_support.py's Browser), then served
to Chromium at an address of Gatehouse's own origin, so their stylesheets, logos and scripts come from the
real server."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest
import requests

from tests.e2e.mfa_support import cognito_js_modules, confirmed_user
from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, pkce_pair, query_of
from tests.e2e.test_mfa_sms_email import EMAIL_CONFIG, SMS_CONFIG
from tests.e2e.test_passkeys import CREATE, add_authenticator, origin_of
from tests.fakes.saml import FakeSamlIdP
from tests.support import GatehouseServer, MailServer, smtp_config

PHONE = {"width": 360, "height": 640}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SHOWN = "/__a11y__/"  # where the fetched pages are served to Chromium, on Gatehouse's origin

# What each field a person fills in must say to a phone's keyboard and a password manager, by field name:
# (autocomplete, inputmode or None for "the input type's own keyboard").
FIELDS = {
    "code": ("one-time-code", "numeric"),
    "new_password": ("new-password", None),
    "attr:email": ("email", None),
    "attr:phone_number": ("tel", None),
    "attr:name": ("name", None),
    "email": ("email", None),
}

# The script that looks at a page as a phone shows it: sideways overflow, and each visible field's attributes.
LOOK = """() => {
  const fields = [...document.querySelectorAll('input:not([type=hidden])')].map((e) => ({
    name: e.name, type: e.type, autocomplete: e.getAttribute('autocomplete'),
    inputmode: e.getAttribute('inputmode'), autocapitalize: e.getAttribute('autocapitalize'),
    label: e.labels && e.labels.length ? e.labels[0].textContent : '',
    describedby: (e.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean),
    descriptions: (e.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean)
      .map((id) => (document.getElementById(id) || {textContent: ''}).textContent).join(' '),
    invalid: e.getAttribute('aria-invalid'),
  }));
  const alerts = [...document.querySelectorAll('[role=alert]')].map((e) => ({id: e.id, text: e.textContent}));
  const viewport = document.querySelector('meta[name=viewport]');
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, fields, alerts,
          viewport: viewport ? viewport.content : ''};
}"""


# WCAG 1.4.12's spacing, applied over the page's own styles; the page's width with it (the style is removed).
SPACED = """() => {
  const style = document.createElement('style');
  style.textContent = '* { line-height: 1.5 !important; letter-spacing: .12em !important;'
    + ' word-spacing: .16em !important; } p { margin-bottom: 2em !important; }';
  document.head.appendChild(style);
  const width = document.documentElement.scrollWidth;
  style.remove();
  return width;
}"""


# WCAG 1.4.11 (non-text contrast), which axe leaves to people: a text field is seen by its border, which needs
# 3:1 against what is around it. The contrast of each visible field's border with the nearest background.
BORDERS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92
    : ((v + 0.055) / 1.055) ** 2.4; }).reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const behind = (e) => { for (let n = e.parentElement; n; n = n.parentElement) {
    const c = rgb(getComputedStyle(n).backgroundColor); if (c.length === 3 || c[3] > 0) return c; }
    return [255, 255, 255]; };
  return [...document.querySelectorAll('input:not([type=hidden])')].map((e) => {
    const a = lum(rgb(getComputedStyle(e).borderTopColor)), b = lum(behind(e));
    return [e.name, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)];
  });
}"""


def _png() -> bytes:
    """A 64x16 PNG (a logo)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\x24\x57\xc5" * 64 for _ in range(16))
    header = struct.pack(">IIBBBBB", 64, 16, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# A client's stylesheet (SetUICustomization) as written for Cognito's pages, which are light: light backgrounds,
# readable on them.
BRANDING_CSS = """
.banner-customizable { padding: 25px 0px 25px 0px; background-color: #f0f0f0; }
.background-customizable { background-color: #fff; }
.label-customizable { font-weight: 400; }
.submitButton-customizable { font-weight: bold; height: 40px; color: #fff; background-color: #1b5e20; }
.inputField-customizable { color: #333; background-color: #fff; border: 1px solid #767676; }
"""


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    """This module's Gatehouse, reached as http://localhost:<port>: a secure context, so the passkey pages
    are offered."""
    data_dir: Path = tmp_path_factory.mktemp("hosted-a11y") / "data"
    server = GatehouseServer(data_dir, config=smtp_config(mail))
    server.extra_args = ["--public-url", origin_of(server)]
    server.start()
    yield server
    server.stop()


class Auditor:
    """One Chromium tab at a phone's size, which checks pages and gathers what is wrong with them."""

    def __init__(self, context: Any, origin: str) -> None:
        self.context = context
        self.origin = origin
        self.page = context.new_page()
        self.html: dict[str, str] = {}
        self.axe = (cognito_js_modules() / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
        context.route(f"{origin}{SHOWN}**", self._serve)
        self.problems: list[str] = []

    def _serve(self, route: Any) -> None:
        name = route.request.url.rsplit("/", 1)[1]
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=self.html[name])

    def check(self, name: str, shown: requests.Response, *, error: bool = False) -> None:
        """Check a page the server sent: axe in both colour schemes, the phone layout, the fields, and (with
        ``error``) that the error is announced and tied to the fields."""
        assert shown.headers["Content-Type"].startswith("text/html"), (name, shown.status_code)
        self.html[name] = shown.text
        self.page.goto(f"{self.origin}{SHOWN}{name}")
        self.page.wait_for_load_state("load")
        if not self.page.evaluate("() => !!window.axe"):
            self.page.add_script_tag(content=self.axe)
        for scheme in ("light", "dark"):
            self.page.emulate_media(color_scheme=scheme)
            found = self.page.evaluate(
                "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations"
                ".map((v) => ({id: v.id, help: v.help, targets: v.nodes.map((n) => n.target.join(' '))}))",
                AXE_TAGS,
            )
            for field, ratio in self.page.evaluate(BORDERS):
                if ratio < 3:
                    self.problems.append(
                        f"{name} [{scheme}]: field {field}'s border has contrast {ratio:.2f}:1, not 3:1"
                    )
            for violation in found:
                self.problems.append(
                    f"{name} [{scheme}]: {violation['id']} ({violation['help']}) at {violation['targets']}"
                )
        self.page.emulate_media(color_scheme="light")
        looked = self.page.evaluate(LOOK)
        if "user-scalable=no" in looked["viewport"] or "maximum-scale" in looked["viewport"]:
            self.problems.append(f"{name}: the viewport forbids zooming ({looked['viewport']})")
        if "width=device-width" not in looked["viewport"]:
            self.problems.append(f"{name}: no viewport meta tag (a phone shows the page at desktop width, zoomed out)")
        if looked["scrollWidth"] > looked["innerWidth"]:
            self.problems.append(f"{name}: scrolls sideways at 360px ({looked['scrollWidth']}px wide)")
        for field in looked["fields"]:
            self._field(name, field)
        # WCAG 1.4.10 (reflow): 320 CSS pixels wide, as a 1280px screen zoomed to 400%.
        self.page.set_viewport_size({"width": 320, "height": 640})
        narrow = self.page.evaluate("() => document.documentElement.scrollWidth")
        if narrow > 320:
            self.problems.append(f"{name}: scrolls sideways at 320px ({narrow}px wide)")
        # WCAG 1.4.12 (text spacing): a reader's wider letter, word and line spacing loses nothing either.
        spaced = self.page.evaluate(SPACED)
        if spaced > 320:
            self.problems.append(f"{name}: scrolls sideways at 320px with wider text spacing ({spaced}px wide)")
        self.page.set_viewport_size(PHONE)
        alerts = looked["alerts"]
        if error:
            # A form's error comes with a new page, where a screen reader reads the title first (an alert
            # already on the page as it loads is not announced by every screen reader).
            if not self.page.title().startswith("Error: "):
                self.problems.append(f"{name}: the title {self.page.title()!r} does not say there is an error")
            if not alerts or not alerts[0]["id"]:
                self.problems.append(f"{name}: the error is not announced with role=alert and an id")
            else:
                for field in looked["fields"]:
                    if alerts[0]["id"] not in field["describedby"]:
                        self.problems.append(f"{name}: field {field['name']} is not described by the error")

    def _field(self, name: str, field: dict[str, Any]) -> None:
        where = f"{name}: field {field['name']}"
        if not field["label"].strip():
            self.problems.append(f"{where} has no label")
        if not field["autocomplete"]:
            self.problems.append(f"{where} has no autocomplete")
        expected = FIELDS.get(field["name"])
        if expected is not None:
            complete, mode = expected
            if field["autocomplete"] != complete:
                self.problems.append(f"{where}: autocomplete={field['autocomplete']!r}, not {complete!r}")
            if mode is not None and field["inputmode"] != mode:
                self.problems.append(f"{where}: inputmode={field['inputmode']!r}, not {mode!r}")
        if field["name"] == "username" and field["type"] == "text" and field["autocapitalize"] != "none":
            # A phone capitalises the first letter of a text field unless told not to: "Alice" for "alice".
            self.problems.append(f"{where}: autocapitalize={field['autocapitalize']!r}, not 'none'")
        # What a new password or a formatted value must be is told before it is typed (WCAG 3.3.2).
        if field["autocomplete"] == "new-password" and "At least" not in field["descriptions"]:
            self.problems.append(f"{where}: a new password without the pool's rules described")
        if field["autocomplete"] == "tel" and "+" not in field["descriptions"]:
            self.problems.append(f"{where}: a phone number without its format described")
        if field["type"] == "password" and field["autocomplete"] not in ("current-password", "new-password"):
            self.problems.append(f"{where}: a password without current-password or new-password")
        if field["type"] == "email" and field["autocomplete"] not in ("email", "username"):
            self.problems.append(f"{where}: an email field with autocomplete={field['autocomplete']!r}")

    def expect(self, name: str, shown: requests.Response, field: str, complete: str, kind: str) -> None:
        """A field of a page the server sent has this autocomplete and type (checked in the HTML)."""
        self.html[name] = shown.text
        self.page.goto(f"{self.origin}{SHOWN}{name}")
        got = self.page.evaluate(
            "(n) => { const e = document.querySelector(`input[name='${n}']`);"
            " return e && [e.getAttribute('autocomplete'), e.type]; }",
            field,
        )
        if got != [complete, kind]:
            self.problems.append(f"{name}: field {field} is {got}, not {[complete, kind]}")

    def done(self) -> None:
        problems, self.problems = self.problems, []
        assert not problems, "accessibility problems:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def auditor(browser: Any, gatehouse: GatehouseServer) -> Iterator[Auditor]:
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    try:
        yield Auditor(context, origin_of(gatehouse))
    finally:
        context.close()


def _client(idp: Any, pool_id: str, **extra: Any) -> str:
    settings = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid", "email", "aws.cognito.signin.user.admin"],
        "CallbackURLs": [CALLBACK],
        "SupportedIdentityProviders": ["COGNITO"],
        **extra,
    }
    return str(
        idp.create_user_pool_client(UserPoolId=pool_id, ClientName="web", **settings)["UserPoolClient"]["ClientId"]
    )


def _login(gatehouse: GatehouseServer, pool_id: str, client_id: str) -> tuple[Browser, requests.Response]:
    """A browser at the pool's sign-in page (public client, PKCE)."""
    browser = Browser(origin_of(gatehouse))
    _, challenge = pkce_pair()
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": CALLBACK,
        "scope": "openid email aws.cognito.signin.user.admin",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page = browser.follow(browser.get(f"/{pool_id}/oauth2/authorize?{urlencode(query)}"))
    assert page.status_code == 200 and "<h1>Sign in</h1>" in page.text, page.text
    return browser, page


def _wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def test_sign_in_pages(gatehouse: GatehouseServer, idp: Any, google: Any, auditor: Auditor) -> None:
    pool_id = idp.create_user_pool(
        PoolName="a11y-sign-in", Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}}
    )["UserPool"]["Id"]
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Google", ProviderType="Google", ProviderDetails=google.provider_details(),
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Corporate-Directory-Sign-In-Long", ProviderType="OIDC",
        ProviderDetails={"client_id": "c", "client_secret": "s", "authorize_scopes": "openid",
                         "oidc_issuer": google.url, "attributes_request_method": "GET"},
        IdpIdentifiers=["example.org"],
    )  # fmt: skip
    plain = _client(idp, pool_id)
    federated = _client(
        idp, pool_id, SupportedIdentityProviders=["COGNITO", "Google", "Corporate-Directory-Sign-In-Long"]
    )
    confirmed_user(idp, pool_id, "alice", PASSWORD, email="alice@example.com", email_verified="true")

    browser, page = _login(gatehouse, pool_id, plain)
    auditor.check("login", page)
    auditor.expect("login", page, "username", "username", "text")
    auditor.expect("login", page, "password", "current-password", "password")
    auditor.check("login-empty", browser.submit(page, {"username": "", "password": ""}), error=True)
    auditor.check("login-wrong", browser.submit(page, {"username": "alice", "password": "Wrong-pass-1"}), error=True)
    auditor.check("login-no-user", browser.submit(page, {"username": "", "method": "EMAIL_OTP"}), error=True)

    browser, page = _login(gatehouse, pool_id, federated)
    auditor.check("login-federated", page)
    sso = browser.get(
        f"/{pool_id}/login/sso?" + urlencode({"rid": query_of(page.url)["rid"], "email": "x@nowhere.test"})
    )
    auditor.check("login-sso-unknown", sso, error=True)

    # A client's branding: a logo and a stylesheet of its own.
    css = BRANDING_CSS
    idp.create_user_pool_domain(UserPoolId=pool_id, Domain="a11y-branded")  # SetUICustomization needs one
    idp.set_ui_customization(UserPoolId=pool_id, ClientId=plain, CSS=css, ImageFile=_png())
    browser, page = _login(gatehouse, pool_id, plain)
    assert "/logo?" in page.text and "/custom.css?" in page.text
    auditor.check("login-branded", page)
    auditor.check("login-branded-error", browser.submit(page, {"username": "", "password": ""}), error=True)
    auditor.done()


def test_sign_up_and_confirm(gatehouse: GatehouseServer, idp: Any, auditor: Auditor) -> None:
    schema = [
        {"Name": name, "AttributeDataType": "String", "Required": True, "Mutable": True}
        for name in ("email", "phone_number", "name")
    ]
    pool_id = idp.create_user_pool(PoolName="a11y-sign-up", AutoVerifiedAttributes=["email"], Schema=schema)[
        "UserPool"
    ]["Id"]
    client_id = _client(idp, pool_id)
    # With the client's terms documents, which the sign-up page links.
    for name, link in (("terms-of-use", "https://example.com/terms"), ("privacy-policy", "https://example.com/p")):
        idp.create_terms(
            UserPoolId=pool_id,
            ClientId=client_id,
            TermsName=name,
            TermsSource="LINK",
            Enforcement="NONE",
            Links={"cognito:default": link},
        )
    browser, login = _login(gatehouse, pool_id, client_id)
    rid = query_of(login.url)["rid"]
    signup = browser.get(f"/{pool_id}/signup?rid={rid}")
    assert 'href="https://example.com/terms"' in signup.text and 'href="https://example.com/p"' in signup.text
    auditor.check("signup", signup)
    assert "At least 8 characters, with an uppercase letter, a lowercase letter, a number and a symbol." in signup.text
    auditor.expect("signup", signup, "username", "username", "text")
    auditor.expect("signup", signup, "password", "new-password", "password")
    auditor.expect("signup", signup, "attr:phone_number", "tel", "tel")
    bad = browser.submit(signup, {"username": "bad name", "password": "x", "attr:email": "e@example.com"})
    auditor.check("signup-error", bad, error=True)
    weak = {"username": "ulla", "password": "short", "attr:email": "ulla@example.com"}
    auditor.check("signup-weak", browser.submit(signup, weak | {"attr:phone_number": "+15555550100"}), error=True)
    made = browser.submit(
        signup,
        weak | {"password": PASSWORD, "attr:phone_number": "+15555550100", "attr:name": "Ulla"},
    )
    assert made.status_code == 303 and "/confirm?" in made.headers["Location"], made.text
    confirm = browser.get(made.headers["Location"])
    auditor.check("confirm", confirm)
    auditor.expect("confirm", confirm, "code", "one-time-code", "text")
    auditor.check("confirm-wrong", browser.submit(confirm, {"username": "ulla", "code": "000000"}), error=True)
    auditor.check("confirm-empty", browser.submit(confirm, {"username": "", "code": ""}), error=True)

    # A pool whose usernames are email addresses: the username field is an email field.
    by_email = idp.create_user_pool(PoolName="a11y-email", UsernameAttributes=["email"])["UserPool"]["Id"]
    browser, login = _login(gatehouse, by_email, _client(idp, by_email))
    auditor.check("login-by-email", login)
    auditor.expect("login-by-email", login, "username", "username", "email")
    signup = browser.get(f"/{by_email}/signup?rid={query_of(login.url)['rid']}")
    auditor.check("signup-by-email", signup)
    auditor.expect("signup-by-email", signup, "username", "username", "email")
    forgot = browser.get(f"/{by_email}/forgotPassword?rid={query_of(login.url)['rid']}")
    auditor.expect("forgot-by-email", forgot, "username", "username", "email")
    by_phone = idp.create_user_pool(PoolName="a11y-phone", UsernameAttributes=["phone_number"])["UserPool"]["Id"]
    browser, login = _login(gatehouse, by_phone, _client(idp, by_phone))
    auditor.expect("login-by-phone", login, "username", "username", "tel")
    auditor.done()


def test_password_reset(gatehouse: GatehouseServer, idp: Any, auditor: Auditor) -> None:
    policy = {"PasswordPolicy": {"MinimumLength": 12, "RequireNumbers": True}}
    pool_id = idp.create_user_pool(PoolName="a11y-reset", AutoVerifiedAttributes=["email"], Policies=policy)[
        "UserPool"
    ]["Id"]
    client_id = _client(idp, pool_id)
    confirmed_user(idp, pool_id, "rolf", PASSWORD, email="rolf@example.com", email_verified="true")
    browser, login = _login(gatehouse, pool_id, client_id)
    rid = query_of(login.url)["rid"]
    forgot = browser.get(f"/{pool_id}/forgotPassword?rid={rid}")
    auditor.check("forgot", forgot)
    auditor.check("forgot-error", browser.submit(forgot, {"username": ""}), error=True)
    sent = browser.submit(forgot, {"username": "rolf"})
    assert sent.status_code == 303, sent.text
    reset = browser.get(sent.headers["Location"])
    auditor.check("reset", reset)
    assert "At least 12 characters, with a number." in reset.text  # the pool's own policy
    auditor.expect("reset", reset, "code", "one-time-code", "text")
    auditor.expect("reset", reset, "password", "new-password", "password")
    auditor.check("reset-wrong", browser.submit(reset, {"code": "000000", "password": "New-Passw0rd!"}), error=True)
    auditor.check("reset-empty", browser.submit(reset, {"code": "", "password": ""}), error=True)
    auditor.done()


def test_challenge_pages(gatehouse: GatehouseServer, idp: Any, auditor: Auditor) -> None:
    schema = [{"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True}]
    pool_id = idp.create_user_pool(PoolName="a11y-mfa", Schema=schema)["UserPool"]["Id"]
    client_id = _client(idp, pool_id)

    # NEW_PASSWORD_REQUIRED, with a required attribute to give.
    idp.admin_create_user(
        UserPoolId=pool_id, Username="nina", TemporaryPassword="Temp-Passw0rd!", MessageAction="SUPPRESS"
    )
    browser, login = _login(gatehouse, pool_id, client_id)
    new_password = browser.submit(login, {"username": "nina", "password": "Temp-Passw0rd!"})
    assert "Change your password" in new_password.text, new_password.text
    auditor.check("new-password", new_password)
    auditor.check(
        "new-password-weak", browser.submit(new_password, {"new_password": "short", "attr:name": "N"}), error=True
    )

    # MFA required with an authenticator app or email: the choice, the QR code, the email address form.
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="ON",
        SoftwareTokenMfaConfiguration={"Enabled": True},
        SmsMfaConfiguration=SMS_CONFIG,
        EmailMfaConfiguration=EMAIL_CONFIG,
    )
    confirmed_user(idp, pool_id, "tomas", PASSWORD, name="Tomas")
    browser, login = _login(gatehouse, pool_id, client_id)
    choose = browser.submit(login, {"username": "tomas", "password": PASSWORD})
    assert "Add a second step" in choose.text, choose.text
    auditor.check("mfa-setup-choose", choose)
    auditor.check("mfa-setup-choose-error", browser.submit(choose, {"choice": "SMS_MFA"}), error=True)
    email_setup = browser.submit(choose, {"choice": "EMAIL_OTP"})
    auditor.check("mfa-setup-email", email_setup)
    auditor.check("mfa-setup-email-error", browser.submit(email_setup, {"email": "not an address"}), error=True)
    qr = browser.submit(choose, {"choice": "SOFTWARE_TOKEN_MFA"})
    assert "<svg" in qr.text, qr.text
    auditor.check("mfa-setup-totp", qr)
    secret = Browser.form_fields(qr)["secret"]
    # The key is there as text, for a person who cannot scan the code.
    assert auditor.page.get_by_text(secret, exact=True).is_visible()
    assert auditor.page.get_by_role("img", name="QR code").count() == 1
    wrong = browser.submit(qr, {"code": _wrong(pyotp.TOTP(secret).now())})
    auditor.check("mfa-setup-totp-wrong", wrong, error=True)
    done = browser.submit(wrong, {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 303 and done.headers["Location"].startswith(CALLBACK), done.text

    # SOFTWARE_TOKEN_MFA, SMS_MFA and SELECT_MFA_TYPE for a user with both.
    idp.admin_update_user_attributes(
        UserPoolId=pool_id,
        Username="tomas",
        UserAttributes=[
            {"Name": "phone_number", "Value": "+15555550177"},
            {"Name": "phone_number_verified", "Value": "true"},
            {"Name": "email", "Value": "tomas@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id,
        Username="tomas",
        SMSMfaSettings={"Enabled": True, "PreferredMfa": False},
        SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": False},
    )
    browser, login = _login(gatehouse, pool_id, client_id)
    select = browser.submit(login, {"username": "tomas", "password": PASSWORD})
    assert "Choose how to verify" in select.text, select.text
    auditor.check("select-mfa", select)
    totp = browser.submit(select, {"choice": "SOFTWARE_TOKEN_MFA"})
    auditor.check("totp", totp)
    auditor.check("totp-wrong", browser.submit(totp, {"code": _wrong(pyotp.TOTP(secret).now())}), error=True)
    browser, login = _login(gatehouse, pool_id, client_id)  # a choice spends the challenge's session
    select = browser.submit(login, {"username": "tomas", "password": PASSWORD})
    sms = browser.submit(select, {"choice": "SMS_MFA"})
    assert 'name="code"' in sms.text and "text message" in sms.text, sms.text
    auditor.check("sms", sms)
    auditor.check("sms-wrong", browser.submit(sms, {"code": "12"}), error=True)

    # EMAIL_OTP as the second factor.
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id,
        Username="tomas",
        SMSMfaSettings={"Enabled": True, "PreferredMfa": False},
        SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": False},
        EmailMfaSettings={"Enabled": True, "PreferredMfa": True},
    )
    browser, login = _login(gatehouse, pool_id, client_id)
    email = browser.submit(login, {"username": "tomas", "password": PASSWORD})
    assert 'name="code"' in email.text, email.text
    auditor.check("email-otp", email)
    auditor.check("email-otp-wrong", browser.submit(email, {"code": "12"}), error=True)
    auditor.done()


def test_passwordless_pages(gatehouse: GatehouseServer, idp: Any, public_idp: Any, auditor: Auditor) -> None:
    pool_id = idp.create_user_pool(
        PoolName="a11y-passwordless",
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "WEB_AUTHN", "EMAIL_OTP"]}},
    )["UserPool"]["Id"]
    client_id = _client(idp, pool_id)
    api = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="api", ExplicitAuthFlows=["ALLOW_USER_AUTH"])
    confirmed_user(idp, pool_id, "pia", PASSWORD, email="pia@example.com", email_verified="true")
    browser, login = _login(gatehouse, pool_id, client_id)
    auditor.check("login-passwordless", login)
    code = browser.submit(login, {"username": "pia", "method": "EMAIL_OTP"})
    assert 'name="code"' in code.text, code.text
    auditor.check("email-first-factor", code)
    auditor.check("email-first-factor-wrong", browser.submit(code, {"code": "1"}), error=True)
    none = browser.submit(login, {"username": "pia", "method": "WEB_AUTHN"})
    auditor.check("passkey-none", none, error=True)

    # A passkey, made with Chromium's virtual authenticator, for the passkey page.
    page = auditor.context.new_page()
    try:
        page.goto(f"{origin_of(gatehouse)}/health")
        add_authenticator(auditor.context, page)
        signed_in = public_idp.initiate_auth(
            ClientId=api["UserPoolClient"]["ClientId"],
            AuthFlow="USER_AUTH",
            AuthParameters={"USERNAME": "pia", "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": PASSWORD},
        )
        access = signed_in["AuthenticationResult"]["AccessToken"]
        options = public_idp.start_web_authn_registration(AccessToken=access)["CredentialCreationOptions"]
        credential = page.evaluate(CREATE, options)
        public_idp.complete_web_authn_registration(AccessToken=access, Credential=credential)
    finally:
        page.close()
    passkey = browser.submit(login, {"username": "pia", "method": "WEB_AUTHN"})
    assert "Sign in with a passkey" in passkey.text and json.loads(Browser.form_fields(passkey)["options"])
    # The page's script is kept from starting the ceremony: the page as it waits is what is checked.
    auditor.context.route("**/static/passkey.js", lambda route: route.abort())
    try:
        auditor.check("passkey", passkey)
    finally:
        auditor.context.unroute("**/static/passkey.js")
    auditor.done()


def test_error_signed_out_and_feedback_pages(gatehouse: GatehouseServer, idp: Any, auditor: Auditor) -> None:
    pool_id = idp.create_user_pool(PoolName="a11y-pages")["UserPool"]["Id"]
    client_id = _client(idp, pool_id)
    origin = origin_of(gatehouse)
    auditor.check("error", requests.get(f"{origin}/{pool_id}/login?rid=gone", timeout=10))
    auditor.check("signed-out", requests.get(f"{origin}/{pool_id}/logout?client_id={client_id}", timeout=10))
    link = {
        "pool": pool_id,
        "user": "a-person-with-a-very-long-username-that-has-no-spaces-at-all-" + "x" * 60,
        "event": "0123456789abcdef",
        "token": "t" * 40,
        "answer": "valid",
    }
    auditor.check("feedback", requests.get(f"{origin}/gatehouse/feedback?{urlencode(link)}", timeout=10))
    auditor.check("feedback-invalid", requests.get(f"{origin}/gatehouse/feedback?pool=x", timeout=10))
    auditor.done()


def test_confirmation_link_pages(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, mail: MailServer, auditor: Auditor
) -> None:
    """The page a sign-up confirmation link opens (CONFIRM_WITH_LINK), confirmed and refused."""
    pool_id = idp.create_user_pool(
        PoolName="a11y-link",
        AutoVerifiedAttributes=["email"],
        VerificationMessageTemplate={"DefaultEmailOption": "CONFIRM_WITH_LINK"},
    )["UserPool"]["Id"]
    client_id = _client(idp, pool_id)
    public_idp.sign_up(
        ClientId=client_id,
        Username="linda",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "linda@example.com"}],
    )
    text = mail.wait_for("linda@example.com").get_payload()[0].get_payload(decode=True).decode()
    link = text.split("Verify Email: ", 1)[1].split()[0]
    auditor.check("confirm-user", requests.get(link, timeout=10))
    auditor.check("confirm-user-used", requests.get(link, timeout=10))  # error.html, checked as "error" is
    auditor.done()


def test_saml_post_page(gatehouse: GatehouseServer, idp: Any, auditor: Auditor) -> None:
    """The page that posts a SAML AuthnRequest to an IdP with only the HTTP-POST binding (its form is sent by
    the page's onload; the IdP's answer here is a 204, which leaves the page in place to be checked)."""
    pool_id = idp.create_user_pool(PoolName="a11y-saml")["UserPool"]["Id"]
    certificate = idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"]
    with FakeSamlIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{pool_id}",
        acs_url=f"{gatehouse.url}/saml2/idpresponse",
        sp_cert_pem=f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n",
        post_only=True,
    ) as fake:
        metadata = fake.metadata_xml()
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="PostOnly", ProviderType="SAML",
        ProviderDetails={"MetadataFile": metadata}, AttributeMapping={"email": "email"},
    )  # fmt: skip
    client_id = _client(idp, pool_id, SupportedIdentityProviders=["PostOnly"])
    _, challenge = pkce_pair()
    query = {"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, "identity_provider": "PostOnly"}
    query |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    shown = requests.get(f"{origin_of(gatehouse)}/{pool_id}/oauth2/authorize?{urlencode(query)}", timeout=10)
    assert shown.status_code == 200 and "<form" in shown.text, shown.text
    auditor.context.route("**/sso/post", lambda route: route.fulfill(status=204))
    try:
        auditor.check("saml-post", shown)
    finally:
        auditor.context.unroute("**/sso/post")
    auditor.done()
