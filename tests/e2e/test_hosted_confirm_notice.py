"""The hosted /confirm page after a sign-up on the hosted /signup page says what SignUp's CodeDeliveryDetails say:
the medium and the destination masked as Cognito masks it ("We have sent a code by email to a***@e***"), a text
message for a phone number, and no sent code at all where the pool verifies no attribute (an administrator
confirms those accounts). What it names comes sealed from the sign-up, never from a link's text."""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.e2e.oauth_support import PASSWORD, Browser, OAuthPool, make_pool, pkce_pair, query_of
from tests.support import GatehouseServer, MailServer, body_text, code_in

_STATUS = re.compile(r'role="status">([^<]*)<')


def _verifying_pool(gatehouse: GatehouseServer, idp: Any, attribute: str) -> OAuthPool:
    """A pool that requires ``attribute`` and sends sign-up codes to it."""
    return make_pool(
        idp,
        gatehouse.url,
        f"confirm-{attribute}",
        AutoVerifiedAttributes=[attribute],
        Schema=[{"Name": attribute, "Required": True, "Mutable": True}],
    )


@pytest.fixture(scope="module")
def email_pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    return _verifying_pool(gatehouse, idp, "email")


@pytest.fixture(scope="module")
def phone_pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    return _verifying_pool(gatehouse, idp, "phone_number")


@pytest.fixture(scope="module")
def link_pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    """Sign-up confirmation by a link in the email (CONFIRM_WITH_LINK)."""
    return make_pool(
        idp,
        gatehouse.url,
        "confirm-link",
        AutoVerifiedAttributes=["email"],
        Schema=[{"Name": "email", "Required": True, "Mutable": True}],
        VerificationMessageTemplate={"DefaultEmailOption": "CONFIRM_WITH_LINK"},
    )


@pytest.fixture(scope="module")
def plain_pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    """No AutoVerifiedAttributes: SignUp sends no code, the user stays UNCONFIRMED."""
    return make_pool(idp, gatehouse.url, "confirm-plain")


def _sign_up(
    gatehouse: GatehouseServer, pool: OAuthPool, attributes: dict[str, str]
) -> tuple[Browser, str, requests.Response]:
    """Sign up on the hosted page as a browser would; the browser, the username, and the /confirm redirect."""
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    login = browser.follow(
        browser.get(browser.authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256"))
    )
    assert login.status_code == 200, login.text
    form = browser.get(f"/{pool.pool_id}/signup?rid={query_of(login.url)['rid']}")
    assert form.status_code == 200, form.text
    username = "u" + secrets.token_hex(4)
    fields = {"username": username, "password": PASSWORD, **{f"attr:{k}": v for k, v in attributes.items()}}
    redirect = browser.submit(form, fields)
    assert redirect.status_code == 303 and "/confirm?" in redirect.headers["Location"], redirect.text
    return browser, username, redirect


def _notice(page: requests.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return _STATUS.findall(page.text)


def test_an_emailed_code_names_email_and_the_masked_address(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, email_pool: OAuthPool
) -> None:
    address = f"ann.{secrets.token_hex(3)}@example.com"
    browser, username, redirect = _sign_up(gatehouse, email_pool, {"email": address})
    # The address is not in the link the browser follows: only what the page shows, sealed.
    assert address not in redirect.headers["Location"] and "a***" not in redirect.headers["Location"]
    page = browser.get(redirect.headers["Location"])
    assert _notice(page) == ["We have sent a code by email to a***@e***. Enter it below to confirm your account."]
    assert 'name="code"' in page.text
    # The code the message carries confirms the account from that page.
    code = code_in(mail.wait_for(address))
    done = browser.submit(page, {"username": username, "code": code, "action": "confirm"})
    assert done.status_code == 303 and "done=confirmed" in done.headers["Location"]
    assert idp.admin_get_user(UserPoolId=email_pool.pool_id, Username=username)["UserStatus"] == "CONFIRMED"


def test_a_texted_code_names_a_text_message_and_the_masked_number(
    gatehouse: GatehouseServer, idp: Any, phone_pool: OAuthPool
) -> None:
    number = "+1555" + str(secrets.randbelow(10**6)).zfill(6) + "7"
    browser, username, redirect = _sign_up(gatehouse, phone_pool, {"phone_number": number})
    assert number not in redirect.headers["Location"] and number[1:] not in redirect.headers["Location"]
    page = browser.get(redirect.headers["Location"])
    masked = "+" + "*" * (len(number) - 5) + number[-4:]
    sent = f"We have sent a code by text message to {masked}. Enter it below to confirm your account."
    assert _notice(page) == [sent]
    assert "by email" not in page.text
    assert idp.admin_get_user(UserPoolId=phone_pool.pool_id, Username=username)["UserStatus"] == "UNCONFIRMED"


def test_no_verified_attribute_claims_no_code_and_offers_no_code_field(
    gatehouse: GatehouseServer, idp: Any, plain_pool: OAuthPool
) -> None:
    browser, username, redirect = _sign_up(gatehouse, plain_pool, {})
    page = browser.get(redirect.headers["Location"])
    assert _notice(page) == ["Your account has been created. An administrator must confirm it before you can sign in."]
    assert "We have sent" not in page.text and 'name="code"' not in page.text
    assert idp.admin_get_user(UserPoolId=plain_pool.pool_id, Username=username)["UserStatus"] == "UNCONFIRMED"
    # An administrator's AdminConfirmSignUp is what lets the account sign in.
    idp.admin_confirm_sign_up(UserPoolId=plain_pool.pool_id, Username=username)
    assert idp.admin_get_user(UserPoolId=plain_pool.pool_id, Username=username)["UserStatus"] == "CONFIRMED"


def test_resending_names_the_medium_it_used(
    gatehouse: GatehouseServer, mail: MailServer, email_pool: OAuthPool
) -> None:
    address = f"bo.{secrets.token_hex(3)}@example.org"
    browser, username, redirect = _sign_up(gatehouse, email_pool, {"email": address})
    page = browser.get(redirect.headers["Location"])
    mail.wait_for(address)
    again = browser.submit(page, {"username": username, "action": "resend"})
    assert _notice(again) == ["We have sent a new code by email to b***@e***. Enter it below to confirm your account."]
    mail.wait_for(address, count=2)


def test_a_mailed_link_says_to_open_it_and_the_link_confirms(
    gatehouse: GatehouseServer, idp: Any, mail: MailServer, link_pool: OAuthPool
) -> None:
    address = f"di.{secrets.token_hex(3)}@example.com"
    browser, username, redirect = _sign_up(gatehouse, link_pool, {"email": address})
    page = browser.get(redirect.headers["Location"])
    sent = "We have sent a link by email to d***@e***. Open it to confirm your account, then sign in."
    assert _notice(page) == [sent]
    assert "Send a new link" in page.text
    again = browser.submit(page, {"username": username, "action": "resend"})
    assert _notice(again) == [
        "We have sent a new link by email to d***@e***. Open it to confirm your account, then sign in."
    ]
    # Cognito's default link message: its link opens /confirmUser on the pool's path.
    message = mail.wait_for(address, count=2)
    text = body_text(message)
    assert text.startswith("Please click the link below to verify your email address. Verify Email: "), text
    link = text.split("Verify Email: ", 1)[1].split()[0]
    assert link.startswith(f"{gatehouse.url}/{link_pool.pool_id}/confirmUser?")
    assert idp.admin_get_user(UserPoolId=link_pool.pool_id, Username=username)["UserStatus"] == "UNCONFIRMED"
    assert browser.get(link).status_code == 200
    assert idp.admin_get_user(UserPoolId=link_pool.pool_id, Username=username)["UserStatus"] == "CONFIRMED"


def test_the_page_names_no_delivery_it_was_not_sealed_for(
    gatehouse: GatehouseServer, email_pool: OAuthPool, plain_pool: OAuthPool
) -> None:
    """An altered link, or one made for another username, claims no send and keeps the code form; the page's
    text never comes from the link."""
    browser, username, redirect = _sign_up(gatehouse, email_pool, {"email": f"cy.{secrets.token_hex(3)}@example.net"})
    query = query_of(redirect.headers["Location"])
    base = redirect.headers["Location"].split("?", 1)[0]
    neutral = ["Enter the confirmation code for your account, or send a new code."]
    for changed in (
        {**query, "username": "someone-else"},
        {**query, "sent": query["sent"][:-2] + ("AA" if not query["sent"].endswith("AA") else "BB")},
        {**query, "sent": '{"DeliveryMedium":"EMAIL","Destination":"<b>call us</b>"}'},
    ):
        page = browser.get(f"{base}?{urlencode(changed)}")
        assert _notice(page) == neutral and 'name="code"' in page.text and "call us" not in page.text
    # One pool's sealed answer ("nothing sent") does not carry to another request's page.
    other, other_name, other_redirect = _sign_up(gatehouse, plain_pool, {})
    moved = {**query, "sent": query_of(other_redirect.headers["Location"])["sent"]}
    assert _notice(browser.get(f"{base}?{urlencode(moved)}")) == neutral
    assert other_name != username and other is not browser
