"""Threat protection's emailed feedback links over HTTP against a real server: the notification email's
{one-click-link-valid} / {one-click-link-invalid} open /gatehouse/feedback, whose GET records nothing (mail
scanners fetch links), and whose form POST records the answer as UpdateAuthEventFeedback does. Hostile uses --
no CSRF token, a wrong token, another user, a malformed link -- get the same error page and change nothing.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.e2e.test_risk import FIREFOX, HOME_IP, TAKEOVER, admin_sign_in, make_pool, make_user
from tests.support import GatehouseServer, MailServer, body_text

INVALID = "This link is not valid."


class Browser:
    """urllib with a cookie jar: enough of a browser for a form with a CSRF cookie."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, url: str, form: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(urllib.request.Request(url, data=data), timeout=10) as response:
                return response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()


def hidden_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))


def feedback_of(idp: Any, pool_id: str, username: str) -> Any:
    return idp.admin_list_user_auth_events(UserPoolId=pool_id, Username=username)["AuthEvents"][0].get("EventFeedback")


@pytest.fixture(scope="module")
def notified(idp: Any, mail: MailServer, gatehouse: GatehouseServer) -> tuple[str, str, str]:
    """A pool that notifies every sign-in, a user signed in once; the email's two links."""
    pool_id, client_id = make_pool(idp, "ENFORCED")
    takeover = json.loads(json.dumps(TAKEOVER))
    takeover["Actions"]["LowAction"] = {"Notify": True, "EventAction": "NO_ACTION"}
    takeover["NotifyConfiguration"]["NoActionEmail"] = {
        "Subject": "New sign-in",
        "TextBody": "Was it you? Yes: {one-click-link-valid} No: {one-click-link-invalid} .",
    }
    idp.set_risk_configuration(UserPoolId=pool_id, AccountTakeoverRiskConfiguration=takeover)
    make_user(idp, pool_id, "olga", email="olga@example.com")
    make_user(idp, pool_id, "pavel", email="pavel@example.com")
    admin_sign_in(idp, pool_id, client_id, "olga", HOME_IP, FIREFOX)
    admin_sign_in(idp, pool_id, client_id, "pavel", HOME_IP, FIREFOX)
    text = body_text(mail.wait_for("olga@example.com"))
    match = re.search(r"Yes: (\S+) No: (\S+) \.", text)
    assert match is not None, text
    valid, invalid = match.groups()
    assert valid.startswith(f"{gatehouse.url}/gatehouse/feedback?") and "answer=valid" in valid
    assert invalid.startswith(f"{gatehouse.url}/gatehouse/feedback?") and "answer=invalid" in invalid
    return pool_id, valid, invalid


def test_opening_the_link_records_nothing(idp: Any, notified: tuple[str, str, str]) -> None:
    pool_id, valid, _ = notified
    status, headers, page = Browser().request(valid)
    assert status == 200
    assert "Was this you?" in page and "olga" in page
    assert (
        "script-src" not in headers["Content-Security-Policy"]
        and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    )
    assert feedback_of(idp, pool_id, "olga") is None


def test_a_post_without_the_pages_csrf_token_is_refused(idp: Any, notified: tuple[str, str, str]) -> None:
    pool_id, _, invalid = notified
    browser = Browser()
    _, _, page = browser.request(invalid)
    fields = hidden_fields(page)
    fields.pop("_csrf")
    status, _, page = browser.request(invalid.split("?")[0], {**fields, "answer": "invalid"})
    assert status == 403 and "expired" in page
    assert feedback_of(idp, pool_id, "olga") is None


@pytest.mark.parametrize(
    "change",
    [
        {"token": "not-the-token"},
        {"user": "pavel"},  # another user's event with this token
        {"user": "nobody"},
        {"event": "0190a1b2-0000-7000-8000-000000000000"},
        {"pool": "us-east-1_Nowhere1"},
    ],
)
def test_a_tampered_answer_is_refused_alike(idp: Any, notified: tuple[str, str, str], change: dict[str, str]) -> None:
    pool_id, _, invalid = notified
    browser = Browser()
    _, _, page = browser.request(invalid)
    fields = {**hidden_fields(page), "answer": "invalid", **change}
    status, _, page = browser.request(invalid.split("?")[0], fields)
    assert status == 400 and INVALID in page
    assert "Traceback" not in page
    assert feedback_of(idp, pool_id, "olga") is None
    assert feedback_of(idp, pool_id, "pavel") is None


@pytest.mark.parametrize(
    "query",
    ["", "pool=x&user=olga&event=1&token=t&answer=valid", "answer=maybe", "pool=us-east-1_A&user=&event=1&token=t"],
)
def test_a_malformed_link_is_the_error_page(gatehouse: GatehouseServer, query: str) -> None:
    status, headers, page = Browser().request(f"{gatehouse.url}/gatehouse/feedback?{query}")
    assert status == 400 and INVALID in page
    assert headers["Content-Type"].startswith("text/html")


def test_the_users_answer_is_recorded(idp: Any, notified: tuple[str, str, str]) -> None:
    pool_id, _, invalid = notified
    browser = Browser()
    _, _, page = browser.request(invalid)
    status, _, page = browser.request(invalid.split("?")[0], {**hidden_fields(page), "answer": "invalid"})
    assert status == 200 and "marked as not yours" in page
    feedback = feedback_of(idp, pool_id, "olga")
    assert (feedback["FeedbackValue"], feedback["Provider"]) == ("Invalid", "USER")
    assert feedback_of(idp, pool_id, "pavel") is None
    assert "<form" not in page  # the thank-you page asks nothing more
    # The user may change their mind: the link opens the question again.
    _, _, again = browser.request(invalid)
    status, _, page = browser.request(invalid.split("?")[0], {**hidden_fields(again), "answer": "valid"})
    assert status == 200 and "marked as yours" in page
    assert feedback_of(idp, pool_id, "olga")["FeedbackValue"] == "Valid"
