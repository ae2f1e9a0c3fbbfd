"""Sign-up confirmation by link (VerificationMessageTemplate.DefaultEmailOption CONFIRM_WITH_LINK): SignUp and
ResendConfirmationCode mail EmailMessageByLink with ``{##...##}`` made a link to the hosted pages'
``/confirmUser?client_id=...&user_name=...&confirmation_code=...`` (Customizing email verification messages);
opening it confirms the account as ConfirmSignUp does. Attribute updates and password resets keep the code
template. The link is refused, with a page and nothing changed, when any of its values is wrong.

One real `gatehouse serve` for the module, a real aiosmtpd server collecting what it sends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tests.support import GatehouseServer, MailServer, body_text, code_in

PASSWORD = "Correct-horse-1"
LINK_TEMPLATE = {
    "DefaultEmailOption": "CONFIRM_WITH_LINK",
    "EmailSubjectByLink": "Welcome aboard",
    "EmailMessageByLink": "<p>Hello {username},</p><p>{##Verify Your Email##}</p>",
}
_HREF = re.compile(r'<a href="([^"]+)">Verify Your Email</a>')


def _secret_hash(client_id: str, secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _html(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no HTML part")


def _link(message: Message) -> str:
    match = _HREF.search(_html(message))
    assert match, _html(message)
    return match.group(1).replace("&amp;", "&")


class LinkPool:
    def __init__(self, idp: Any, name: str, *, secret: bool = False, **members: Any) -> None:
        self.idp = idp
        pool = idp.create_user_pool(
            PoolName=name, AutoVerifiedAttributes=["email"], VerificationMessageTemplate=LINK_TEMPLATE, **members
        )
        self.pool_id = str(pool["UserPool"]["Id"])
        client = idp.create_user_pool_client(
            UserPoolId=self.pool_id,
            ClientName="app",
            GenerateSecret=secret,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]
        self.client_id = str(client["ClientId"])
        self.secret = client.get("ClientSecret")

    def hashed(self, username: str) -> dict[str, str]:
        return {"SecretHash": _secret_hash(self.client_id, self.secret, username)} if self.secret else {}

    def sign_up(self, public_idp: Any, username: str, address: str) -> dict[str, Any]:
        return dict(
            public_idp.sign_up(
                ClientId=self.client_id,
                Username=username,
                Password=PASSWORD,
                UserAttributes=[{"Name": "email", "Value": address}],
                **self.hashed(username),
            )
        )

    def auth_hash(self, username: str) -> dict[str, str]:
        return {"SECRET_HASH": self.hashed(username)["SecretHash"]} if self.secret else {}

    def status(self, username: str) -> str:
        return str(self.idp.admin_get_user(UserPoolId=self.pool_id, Username=username)["UserStatus"])


@pytest.fixture(scope="module")
def link_pool(idp: Any) -> LinkPool:
    return LinkPool(idp, "link", secret=True)


def _address() -> str:
    return f"link.{secrets.token_hex(4)}@example.com"


def test_sign_up_mails_a_link_that_confirms_the_account(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, mail: MailServer, link_pool: LinkPool
) -> None:
    username, address = "ann" + secrets.token_hex(3), _address()
    answer = link_pool.sign_up(public_idp, username, address)
    assert answer["UserConfirmed"] is False
    assert answer["CodeDeliveryDetails"] == {
        "Destination": "l***@e***",
        "DeliveryMedium": "EMAIL",
        "AttributeName": "email",
    }
    message = mail.wait_for(address)
    assert message["Subject"] == "Welcome aboard"
    link = _link(message)
    # The pool's path under the server's public URL, with Cognito's three query parameters.
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == gatehouse.url
    assert parts.path == f"/{link_pool.pool_id}/confirmUser"
    query = parse_qs(parts.query)
    assert query["client_id"] == [link_pool.client_id] and query["user_name"] == [username]
    assert re.fullmatch(r"\d{6}", query["confirmation_code"][0])
    assert f"Hello {username}," in _html(message)
    # The text part names the link too, and carries no markup the template did not have.
    assert f"Verify Your Email: {link}" in body_text(message)

    page = requests.get(link, timeout=10)
    assert page.status_code == 200, page.text
    assert "Your registration has been confirmed!" in page.text
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    user = idp.admin_get_user(UserPoolId=link_pool.pool_id, Username=username)
    assert user["UserStatus"] == "CONFIRMED"
    assert {"Name": "email_verified", "Value": "true"} in user["UserAttributes"]
    # Confirmed means signed in with the password.
    tokens = public_idp.initiate_auth(
        ClientId=link_pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={
            "USERNAME": username,
            "PASSWORD": PASSWORD,
            "SECRET_HASH": link_pool.hashed(username)["SecretHash"],
        },
    )
    assert tokens["AuthenticationResult"]["AccessToken"]

    # A used link is a page saying so, as ConfirmSignUp would.
    again = requests.get(link, timeout=10)
    assert again.status_code == 400
    assert "User cannot be confirmed. Current status is CONFIRMED" in again.text


def test_the_link_carries_the_code_confirm_sign_up_takes(
    public_idp: Any, mail: MailServer, link_pool: LinkPool
) -> None:
    username, address = "bo" + secrets.token_hex(3), _address()
    link_pool.sign_up(public_idp, username, address)
    code = parse_qs(urlsplit(_link(mail.wait_for(address))).query)["confirmation_code"][0]
    public_idp.confirm_sign_up(
        ClientId=link_pool.client_id, Username=username, ConfirmationCode=code, **link_pool.hashed(username)
    )
    assert link_pool.status(username) == "CONFIRMED"


def test_resending_mails_a_new_link_and_the_old_one_stops_working(
    public_idp: Any, mail: MailServer, link_pool: LinkPool
) -> None:
    username, address = "cy" + secrets.token_hex(3), _address()
    link_pool.sign_up(public_idp, username, address)
    first = _link(mail.wait_for(address))
    resent = public_idp.resend_confirmation_code(
        ClientId=link_pool.client_id, Username=username, **link_pool.hashed(username)
    )
    assert resent["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    second = _link(mail.wait_for(address, count=2))
    assert second != first
    old = requests.get(first, timeout=10)
    assert old.status_code == 400 and "confirmed!" not in old.text
    assert link_pool.status(username) == "UNCONFIRMED"
    assert requests.get(second, timeout=10).status_code == 200
    assert link_pool.status(username) == "CONFIRMED"


def test_a_link_with_any_value_wrong_is_refused_and_changes_nothing(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, mail: MailServer, link_pool: LinkPool
) -> None:
    username, address = "di" + secrets.token_hex(3), _address()
    link_pool.sign_up(public_idp, username, address)
    link = _link(mail.wait_for(address))
    parts = urlsplit(link)
    values = {k: v[0] for k, v in parse_qs(parts.query).items()}
    wrong_code = str((int(values["confirmation_code"]) + 1) % 1_000_000).zfill(6)
    other = LinkPool(idp, "other-link")
    path = parts.path
    for target in (
        f"{path}?" + urlencode({**values, "confirmation_code": wrong_code}),
        f"{path}?" + urlencode({**values, "client_id": other.client_id}),  # another pool's client
        f"{path}?" + urlencode({**values, "client_id": "a" * 26}),  # no such client
        f"{path}?" + urlencode({**values, "user_name": "nobody-" + secrets.token_hex(3)}),
        f"{path}?" + urlencode({k: v for k, v in values.items() if k != "confirmation_code"}),
        f"{path}?{parts.query}&client_id={values['client_id']}",  # a value given twice
        f"{path}?" + urlencode({**values, "confirmation_code": "x" * 5000}),
        f"/{other.pool_id}/confirmUser?{parts.query}",  # the link on another pool's path
        f"/us-east-1_Nonexistent/confirmUser?{parts.query}",
    ):
        page = requests.get(gatehouse.url + target, timeout=10)
        assert page.status_code in (400, 404), (target, page.status_code)
        assert "text/html" in page.headers["Content-Type"], target
        assert "confirmed!" not in page.text and "Traceback" not in page.text, target
        assert link_pool.status(username) == "UNCONFIRMED", target
    # The link itself still works afterwards (one wrong code is not the end of it), also with the final slash
    # Cognito's own links have.
    done = requests.get(f"{gatehouse.url}{path}/?{parts.query}", timeout=10)
    assert done.status_code == 200, done.text
    assert link_pool.status(username) == "CONFIRMED"


def test_attribute_and_password_messages_keep_the_code_template(
    idp: Any, public_idp: Any, mail: MailServer, link_pool: LinkPool
) -> None:
    username, address = "ed" + secrets.token_hex(3), _address()
    link_pool.sign_up(public_idp, username, address)
    assert requests.get(_link(mail.wait_for(address)), timeout=10).status_code == 200
    public_idp.forgot_password(ClientId=link_pool.client_id, Username=username, **link_pool.hashed(username))
    reset = mail.wait_for(address, count=2)
    assert "confirmUser" not in body_text(reset) and body_text(reset).startswith("Your verification code is ")
    code_in(reset)
    new_address = _address()
    idp.admin_update_user_attributes(
        UserPoolId=link_pool.pool_id, Username=username, UserAttributes=[{"Name": "email", "Value": new_address}]
    )
    changed = mail.wait_for(new_address)
    assert "confirmUser" not in body_text(changed) and body_text(changed).startswith("Your verification code is ")


def test_a_pool_with_a_custom_domain_links_to_it(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, mail: MailServer
) -> None:
    pool = LinkPool(idp, "link-domain")
    domain = f"auth-{secrets.token_hex(3)}.example.test"
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
    idp.create_user_pool_domain(UserPoolId=pool.pool_id, Domain=domain, CustomDomainConfig={"CertificateArn": cert})
    username, address = "fa" + secrets.token_hex(3), _address()
    pool.sign_up(public_idp, username, address)
    parts = urlsplit(_link(mail.wait_for(address)))
    assert parts.netloc == f"{domain}:{gatehouse.port}" and parts.path == "/confirmUser"
    # Served by its Host, as the domain's DNS name would reach this server.
    page = requests.get(f"{gatehouse.url}/confirmUser?{parts.query}", headers={"Host": parts.netloc}, timeout=10)
    assert page.status_code == 200, page.text
    assert pool.status(username) == "CONFIRMED"


def test_a_code_pool_still_mails_codes(idp: Any, public_idp: Any, mail: MailServer) -> None:
    created = idp.create_user_pool(
        PoolName="code",
        AutoVerifiedAttributes=["email"],
        VerificationMessageTemplate={"DefaultEmailOption": "CONFIRM_WITH_CODE", "EmailSubjectByLink": "Welcome aboard"},
    )
    pool_id = created["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
    address = _address()
    public_idp.sign_up(
        ClientId=client_id, Username="gi", Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": address}]
    )
    message = mail.wait_for(address)
    assert (
        message["Subject"] == "Your verification code"
        and "confirmUser" not in _html(message)
        and body_text(message).startswith("Your verification code is ")
    )


def test_any_link_title_the_model_allows_becomes_the_link(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """EmailVerificationMessageByLinkType allows braces and any length in the title."""
    title = "Verify {now} " + "V" * 300
    pool = LinkPool(idp, "link-title")
    idp.update_user_pool(
        UserPoolId=pool.pool_id,
        AutoVerifiedAttributes=["email"],
        VerificationMessageTemplate={
            "DefaultEmailOption": "CONFIRM_WITH_LINK",
            "EmailMessageByLink": f"{{##{title}##}}",
        },
    )
    username, address = "ti" + secrets.token_hex(3), _address()
    pool.sign_up(public_idp, username, address)
    html = _html(mail.wait_for(address))
    assert f">{title}</a>" in html and "{##" not in html


def test_a_head_request_does_not_use_the_link(public_idp: Any, mail: MailServer, link_pool: LinkPool) -> None:
    username, address = "he" + secrets.token_hex(3), _address()
    link_pool.sign_up(public_idp, username, address)
    link = _link(mail.wait_for(address))
    assert requests.head(link, timeout=10).status_code == 405
    assert link_pool.status(username) == "UNCONFIRMED"
    assert requests.get(link, timeout=10).status_code == 200
