"""The hosted sign-in page driving the challenge engine over HTTP: a temporary password (NEW_PASSWORD_REQUIRED),
TOTP (SOFTWARE_TOKEN_MFA, with a wrong code first), an unconfirmed user sent to /confirm, a disabled user,
and single sign-on surviving neither a global sign-out nor the user being disabled."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pyotp
import pytest
import requests

from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, OAuthPool, make_pool, make_user, pkce_pair, query_of
from tests.support import GatehouseServer, code_in


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    return make_pool(idp, gatehouse.url, "challenges")


def _start(browser: Browser, pool: OAuthPool) -> Any:
    _, challenge = pkce_pair()
    url = browser.authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256")
    return browser.follow(browser.get(url))


def test_temporary_password_must_be_changed(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    idp.admin_create_user(
        UserPoolId=pool.pool_id,
        Username="gina",
        TemporaryPassword="Temp-Passw0rd!",
        UserAttributes=[{"Name": "email", "Value": "gina@example.com"}],
        MessageAction="SUPPRESS",
    )
    browser = Browser(gatehouse.url)
    page = browser.submit(_start(browser, pool), {"username": "gina", "password": "Temp-Passw0rd!"})
    assert page.status_code == 200 and "Change your password" in page.text
    weak = browser.submit(page, {"new_password": "short"})
    assert weak.status_code == 400 and 'role="alert"' in weak.text and "Traceback" not in weak.text
    done = browser.submit(weak, {"new_password": "Ginas-New-Passw0rd!"})
    assert done.status_code == 303 and "code" in query_of(done.headers["Location"])
    assert idp.admin_get_user(UserPoolId=pool.pool_id, Username="gina")["UserStatus"] == "CONFIRMED"


def test_totp_challenge_with_a_wrong_code_first(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    mfa_pool = make_pool(idp, gatehouse.url, "challenges-mfa")
    idp.set_user_pool_mfa_config(
        UserPoolId=mfa_pool.pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    make_user(idp, mfa_pool.pool_id, "hank")
    # An access token with the admin scope, from the hosted UI itself (the confidential client has it).
    browser = Browser(gatehouse.url)
    signed_in = browser.sign_in(
        browser.authorize_url(mfa_pool.secret_id, scope="openid aws.cognito.signin.user.admin"), "hank"
    )
    code = query_of(signed_in.headers["Location"])["code"]
    access = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=(mfa_pool.secret_id, mfa_pool.secret),
        timeout=10,
    ).json()["access_token"]
    public = gatehouse.client(signed=False)
    secret = public.associate_software_token(AccessToken=access)["SecretCode"]
    totp = pyotp.TOTP(secret)
    public.verify_software_token(AccessToken=access, UserCode=totp.now())
    public.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})
    browser = Browser(gatehouse.url)  # a new browser: no single sign-on session
    page = browser.submit(_start(browser, mfa_pool), {"username": "hank", "password": PASSWORD})
    assert page.status_code == 200 and "authentication code" in page.text
    wrong = browser.submit(page, {"code": "000000" if totp.now() != "000000" else "111111"})
    assert wrong.status_code == 400 and 'role="alert"' in wrong.text
    # The step VerifySoftwareToken used cannot sign in again; the next one (within the window) can.
    done = browser.submit(wrong, {"code": totp.at(time.time() + 30)})
    assert done.status_code == 303 and "code" in query_of(done.headers["Location"]), done.text


def test_unconfirmed_user_is_sent_to_confirm(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    public = gatehouse.client(signed=False)
    public.sign_up(
        ClientId=pool.public_id,
        Username="ivy",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "ivy@example.com"}],
    )
    browser = Browser(gatehouse.url)
    page = browser.submit(_start(browser, pool), {"username": "ivy", "password": PASSWORD})
    assert page.status_code == 303 and "/confirm?" in page.headers["Location"]
    confirm = browser.follow(page)
    assert confirm.status_code == 200 and "Confirm your account" in confirm.text
    wrong = browser.submit(confirm, {"username": "ivy", "code": "123456", "action": "confirm"})
    assert wrong.status_code == 400 and 'role="alert"' in wrong.text
    assert idp.admin_get_user(UserPoolId=pool.pool_id, Username="ivy")["UserStatus"] == "UNCONFIRMED"


def test_sso_ends_with_global_sign_out_and_disabling(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    make_user(idp, pool.pool_id, "jack")
    browser = Browser(gatehouse.url)
    first = browser.submit(_start(browser, pool), {"username": "jack", "password": PASSWORD})
    assert first.status_code == 303
    silent = browser.authorize_url(pool.secret_id, prompt="none")
    assert "code=" in browser.get(silent).headers["Location"]
    time.sleep(1.1)  # tokens_valid_after has one-second resolution
    idp.admin_user_global_sign_out(UserPoolId=pool.pool_id, Username="jack")
    assert query_of(browser.get(silent).headers["Location"])["error"] == "login_required"
    again = browser.submit(_start(browser, pool), {"username": "jack", "password": PASSWORD})
    assert again.status_code == 303
    idp.admin_disable_user(UserPoolId=pool.pool_id, Username="jack")
    assert query_of(browser.get(silent).headers["Location"])["error"] == "login_required"
    disabled = browser.submit(_start(browser, pool), {"username": "jack", "password": PASSWORD})
    assert disabled.status_code == 400 and "User is disabled." in disabled.text


def test_sign_up_asks_for_the_pools_required_attributes(gatehouse: GatehouseServer, idp: Any, mail: Any) -> None:
    """A pool that signs in with the email address and requires a name: the form asks for exactly those."""
    pool_id = idp.create_user_pool(
        PoolName="signup-attributes",
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        Schema=[
            {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
            {"Name": "name", "AttributeDataType": "String", "Required": True, "Mutable": True},
        ],
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="signup",
        GenerateSecret=True,  # the hosted pages compute SECRET_HASH themselves
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=["https://app.example.com/callback"],
    )["UserPoolClient"]["ClientId"]
    browser = Browser(gatehouse.url)
    login = browser.follow(browser.get(browser.authorize_url(client_id)))
    link = re.search(r'<a href="([^"]+)">Sign up</a>', login.text)
    assert link is not None
    signup = browser.get(html.unescape(link.group(1)))
    assert signup.status_code == 200 and ">Email</label>" in signup.text and ">Name</label>" in signup.text
    assert 'name="attr:email"' not in signup.text  # the email is the username here
    missing = browser.submit(signup, {"username": "mona@example.com", "password": PASSWORD, "attr:name": ""})
    assert missing.status_code == 400 and 'role="alert"' in missing.text
    assert 'value="mona@example.com"' in missing.text  # what was typed is kept, the password is not
    assert PASSWORD not in missing.text
    created = browser.submit(missing, {"username": "mona@example.com", "password": PASSWORD, "attr:name": "Mona"})
    assert created.status_code == 303 and "/confirm?" in created.headers["Location"]
    confirm = browser.follow(created)
    resent = browser.submit(confirm, {"username": "mona@example.com", "code": "", "action": "resend"})
    assert resent.status_code == 200 and "new code" in resent.text
    code = code_in(mail.wait_for("mona@example.com", count=2))
    done = browser.submit(resent, {"username": "mona@example.com", "code": code, "action": "confirm"})
    assert done.status_code == 303 and "done=confirmed" in done.headers["Location"]
    signed_in = browser.submit(browser.follow(done), {"username": "mona@example.com", "password": PASSWORD})
    assert signed_in.status_code == 303 and "code=" in signed_in.headers["Location"]
    user = idp.list_users(UserPoolId=pool_id)["Users"][0]
    assert {a["Name"]: a["Value"] for a in user["Attributes"]}["name"] == "Mona"
