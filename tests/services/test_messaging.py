"""Messaging: real SMTP (aiosmtpd), a real webhook (aiohttp server), the outbox file, templates."""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from gateway.errors import CodeDeliveryFailureException, InvalidParameterException
from gateway.services.messaging import (
    EmailMessage,
    Messenger,
    OutboxSender,
    SmsMessage,
    SmtpEmailSender,
    WebhookSmsSender,
    check_address_header,
    one_line,
    render_template,
)


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- SMTP ---------------------------------------------------------------------------------------------


@dataclass
class CollectingHandler:
    """aiosmtpd handler that keeps every envelope it is given."""

    envelopes: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[CollectingHandler, int]]:
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def code_email(**overrides: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "to": "alice@example.com",
        "sender": "Gatehouse <no-reply@example.com>",
        "subject": "Your verification code",
        "text": render_template("Your code is {####}", code="492817"),
    }
    fields.update(overrides)
    return EmailMessage(**fields)


def parts_by_type(message: Message) -> dict[str, str]:
    parts: dict[str, str] = {}
    for part in message.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            parts[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return parts


async def test_smtp_delivers_text_email(smtp_server: tuple[CollectingHandler, int]) -> None:
    handler, port = smtp_server
    sender = SmtpEmailSender("127.0.0.1", port, timeout=5)

    await sender.send(code_email())

    assert len(handler.envelopes) == 1
    envelope = handler.envelopes[0]
    assert envelope.mail_from == "no-reply@example.com"
    assert envelope.rcpt_tos == ["alice@example.com"]
    received = email.message_from_bytes(envelope.content)
    assert received["From"] == "Gatehouse <no-reply@example.com>"
    assert received["To"] == "alice@example.com"
    assert received["Subject"] == "Your verification code"
    assert received["Message-ID"].endswith("@example.com>")
    assert received.get_content_type() == "text/plain"
    assert "Your code is 492817" in parts_by_type(received)["text/plain"]


async def test_smtp_sends_multipart_alternative_when_html_given(
    smtp_server: tuple[CollectingHandler, int],
) -> None:
    handler, port = smtp_server
    html = render_template("<p>Hello {username}, your code is <b>{####}</b></p>", code="1234", username="a<b")

    await SmtpEmailSender("127.0.0.1", port, timeout=5).send(code_email(html=html))

    received = email.message_from_bytes(handler.envelopes[0].content)
    assert received.get_content_type() == "multipart/alternative"
    parts = parts_by_type(received)
    assert "Your code is 492817" in parts["text/plain"]
    assert "<b>1234</b>" in parts["text/html"]


async def test_smtp_closed_port_is_code_delivery_failure() -> None:
    sender = SmtpEmailSender("127.0.0.1", free_port(), timeout=5)

    with structlog.testing.capture_logs() as logs, pytest.raises(CodeDeliveryFailureException) as caught:
        await sender.send(code_email())

    assert caught.value.to_json() == {
        "__type": "CodeDeliveryFailureException",
        "message": "Unable to deliver the verification code.",
    }
    failures = [entry for entry in logs if entry["event"] == "message.delivery_failed"]
    assert len(failures) == 1
    assert failures[0]["medium"] == "email"
    assert failures[0]["to"] == "alice@example.com"
    assert failures[0]["reason"] == "smtp"
    assert failures[0]["error_type"] == "SMTPConnectError"


async def test_smtp_refused_login_never_shows_the_password() -> None:
    def refuse(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)

    port = free_port()
    # auth_require_tls=False: the test server has no certificate, and AUTH must still be offered.
    controller = Controller(
        CollectingHandler(), hostname="127.0.0.1", port=port, authenticator=refuse, auth_require_tls=False
    )
    controller.start()
    try:
        sender = SmtpEmailSender("127.0.0.1", port, username="mailer", password="hunter2-secret", timeout=5)
        with structlog.testing.capture_logs() as logs, pytest.raises(CodeDeliveryFailureException) as caught:
            await sender.send(code_email())
    finally:
        controller.stop()

    assert "hunter2-secret" not in str(caught.value)
    assert "hunter2-secret" not in repr(logs)
    assert "hunter2-secret" not in repr(sender)
    assert [entry["error_type"] for entry in logs if entry["event"] == "message.delivery_failed"] == [
        "SMTPAuthenticationError"
    ]


async def test_smtp_header_injection_is_refused_before_connecting() -> None:
    # Nothing listens on the port: the message must fail while it is being built, before any connection.
    sender = SmtpEmailSender("127.0.0.1", free_port(), timeout=5)

    with structlog.testing.capture_logs() as logs, pytest.raises(CodeDeliveryFailureException):
        await sender.send(code_email(to="alice@example.com\r\nBcc: victim@example.com"))
    with structlog.testing.capture_logs() as logs_list, pytest.raises(CodeDeliveryFailureException):
        await sender.send(code_email(to="postmaster,victim@example.com"))  # two recipients, not one

    failed = [entry["reason"] for entry in logs + logs_list if entry["event"] == "message.delivery_failed"]
    assert failed == ["invalid_message", "invalid_message"]


@pytest.mark.parametrize(
    "overrides",
    [
        # CPython's header parser raises AttributeError on an unclosed domain literal, IndexError on "a@".
        {"sender": "Support <a@[b>"},
        {"sender": "a@"},
        {"reply_to": "a@[b"},
    ],
)
async def test_smtp_a_header_the_email_package_cannot_build_is_a_delivery_failure(overrides: dict[str, str]) -> None:
    # Nothing listens on the port: the message fails while it is being built, as a delivery failure.
    sender = SmtpEmailSender("127.0.0.1", free_port(), timeout=5)

    with structlog.testing.capture_logs() as logs, pytest.raises(CodeDeliveryFailureException):
        await sender.send(code_email(**overrides))

    failed = [entry for entry in logs if entry["event"] == "message.delivery_failed"]
    assert [entry["reason"] for entry in failed] == ["invalid_message"]


async def test_smtp_a_sender_the_envelope_cannot_name_is_a_delivery_failure(
    smtp_server: tuple[CollectingHandler, int],
) -> None:
    # "a@@b" builds a From header but no MAIL FROM: the SMTP client refuses it once connected.
    handler, port = smtp_server
    sender = SmtpEmailSender("127.0.0.1", port, timeout=5)

    with structlog.testing.capture_logs() as logs, pytest.raises(CodeDeliveryFailureException):
        await sender.send(code_email(sender="a@@b"))

    failed = [entry for entry in logs if entry["event"] == "message.delivery_failed"]
    assert [entry["reason"] for entry in failed] == ["invalid_message"]
    assert handler.envelopes == []


@pytest.mark.parametrize(
    "value",
    [
        "Support <a@[b>",
        "a@[b",
        "a@",
        "@example.com",
        "a@b..c",
        "example.com",
        "Me <>",
        "me@example.com, victim@example.com",
        "Team: me@example.com;",
        "Me <me@example.com> trailing",
        "Me <me@example.com>\r\nBcc: victim@example.com",
        "me@exa\x00mple.com",
    ],
)
def test_check_address_header_refuses_what_cannot_be_one_clean_header(value: str) -> None:
    with pytest.raises(InvalidParameterException) as caught:
        check_address_header(value, "EmailConfiguration.From")
    assert "EmailConfiguration.From" in caught.value.message


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "me@example.com",
        "Me <me@example.com>",
        '"Me, Myself" <me@example.com>',
        "Exämple App <app@example.com>",
        "ü@example.com",  # RFC 6532: sent with SMTPUTF8
        "Me <me@[192.0.2.1]>",
    ],
)
def test_check_address_header_accepts_one_address_optionally_named(value: str | None) -> None:
    check_address_header(value, "EmailConfiguration.From")


def test_a_subject_with_line_breaks_becomes_one_header_line() -> None:
    # Cognito's subject types allow \s: the line breaks are folded, never written into the header block.
    assert one_line("Hi\r\nBcc: victim@example.com\n\n X") == "Hi Bcc: victim@example.com X"
    assert one_line("Plain subject") == "Plain subject"


# --- outbox -------------------------------------------------------------------------------------------


async def test_outbox_writes_one_json_line_per_message(tmp_path: Path) -> None:
    path = tmp_path / "data" / "outbox.jsonl"
    outbox = OutboxSender(path)

    with structlog.testing.capture_logs() as logs:
        await outbox.send(code_email())
        await outbox.send(SmsMessage(to="+15555550100", text="Your code is 777111"))

    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["kind"], r["to"], r["subject"], r["text"]) for r in records] == [
        ("email", "alice@example.com", "Your verification code", "Your code is 492817"),
        ("sms", "+15555550100", None, "Your code is 777111"),
    ]
    assert all(r["time"].endswith("+00:00") for r in records)
    assert path.stat().st_mode & 0o777 == 0o600
    outbox_events = [entry for entry in logs if entry["event"] == "message.outbox"]
    assert [(e["medium"], e["to"]) for e in outbox_events] == [
        ("email", "alice@example.com"),
        ("sms", "+15555550100"),
    ]
    assert "777111" not in repr(logs)  # codes go to the file, not the log


async def test_outbox_concurrent_sends_never_interleave(tmp_path: Path) -> None:
    outbox = OutboxSender(tmp_path / "outbox.jsonl")
    long_text = "x" * 100_000

    await asyncio.gather(*(outbox.send(SmsMessage(to=f"+1555555{i:04d}", text=long_text)) for i in range(20)))

    records = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert sorted(r["to"] for r in records) == [f"+1555555{i:04d}" for i in range(20)]
    assert all(r["text"] == long_text for r in records)


async def test_outbox_unwritable_path_is_code_delivery_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    outbox = OutboxSender(blocker / "outbox.jsonl")

    with pytest.raises(CodeDeliveryFailureException):
        await outbox.send(SmsMessage(to="+15555550100", text="123456"))


# --- SMS webhook --------------------------------------------------------------------------------------


@dataclass
class FakeSmsGateway:
    """A real aiohttp server on loopback that records what it receives and answers ``status``."""

    status: int = 200
    delay: float = 0.0
    received: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    url: str = ""
    # Set at teardown, so a handler still "slow" after the client gave up does not hold the server open.
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.json(), dict(request.headers)))
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), self.delay)
        return web.json_response({"ok": self.status < 300}, status=self.status)


@pytest.fixture
async def sms_gateway() -> AsyncIterator[FakeSmsGateway]:
    gateway = FakeSmsGateway()
    app = web.Application()
    app.router.add_post("/sms", gateway.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # port 0: the OS picks a free one, no race
    await site.start()
    host, port = runner.addresses[0][:2]
    gateway.url = f"http://{host}:{port}/sms?token=abc"
    try:
        yield gateway
    finally:
        gateway.released.set()
        await runner.cleanup()


async def test_webhook_posts_json_with_extra_headers(sms_gateway: FakeSmsGateway) -> None:
    sender = WebhookSmsSender(sms_gateway.url, headers={"X-Api-Key": "k-123"}, timeout=5)
    try:
        await sender.send(SmsMessage(to="+15555550100", text="Your code is 246810"))
        await sender.send(SmsMessage(to="+15555550101", text="Your code is 135790"))
    finally:
        await sender.close()

    assert [body for body, _ in sms_gateway.received] == [
        {"to": "+15555550100", "message": "Your code is 246810"},
        {"to": "+15555550101", "message": "Your code is 135790"},
    ]
    headers = sms_gateway.received[0][1]
    assert headers["X-Api-Key"] == "k-123"
    assert headers["Content-Type"].startswith("application/json")


async def test_webhook_500_is_code_delivery_failure(sms_gateway: FakeSmsGateway) -> None:
    sms_gateway.status = 500
    sender = WebhookSmsSender(sms_gateway.url, headers={"X-Api-Key": "k-123"}, timeout=5)
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(CodeDeliveryFailureException):
            await sender.send(SmsMessage(to="+15555550100", text="Your code is 246810"))
    finally:
        await sender.close()

    assert len(sms_gateway.received) == 1
    failure = next(entry for entry in logs if entry["event"] == "message.delivery_failed")
    assert failure["status"] == 500
    assert failure["reason"] == "webhook_status"
    # The query string (where gateways put tokens) and the headers stay out of the log.
    assert failure["url"].endswith("/sms")
    assert "abc" not in repr(logs)
    assert "k-123" not in repr(logs)


async def test_webhook_request_aiohttp_will_not_make_is_code_delivery_failure(sms_gateway: FakeSmsGateway) -> None:
    # Credentials in the URL and an Authorization header too: aiohttp refuses to build the request (a ValueError,
    # no ClientError). `config check` refuses the pair; a sender given it anyway fails the delivery, no 500.
    with_credentials = sms_gateway.url.replace("http://", "http://hook:pass@", 1)
    sender = WebhookSmsSender(with_credentials, headers={"Authorization": "Bearer t-456"}, timeout=5)
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(CodeDeliveryFailureException):
            await sender.send(SmsMessage(to="+15555550100", text="Your code is 135790"))
    finally:
        await sender.close()

    assert sms_gateway.received == []
    failure = next(entry for entry in logs if entry["event"] == "message.delivery_failed")
    assert failure["reason"] == "webhook"
    assert "pass" not in failure["url"] and "t-456" not in repr(logs)


async def test_webhook_timeout_is_code_delivery_failure(sms_gateway: FakeSmsGateway) -> None:
    sms_gateway.delay = 2.0
    sender = WebhookSmsSender(sms_gateway.url, timeout=0.2)
    try:
        with pytest.raises(CodeDeliveryFailureException):
            await sender.send(SmsMessage(to="+15555550100", text="123456"))
    finally:
        await sender.close()

    assert len(sms_gateway.received) == 1  # it did arrive; the answer came too late


async def test_webhook_refused_connection_is_code_delivery_failure() -> None:
    sender = WebhookSmsSender(f"http://127.0.0.1:{free_port()}/sms", timeout=5)
    try:
        with pytest.raises(CodeDeliveryFailureException) as caught:
            await sender.send(SmsMessage(to="+15555550100", text="123456"))
    finally:
        await sender.close()

    assert caught.value.type_name == "CodeDeliveryFailureException"


# --- Messenger ----------------------------------------------------------------------------------------


async def test_messenger_closes_the_webhook_session_once(tmp_path: Path, sms_gateway: FakeSmsGateway) -> None:
    sms = WebhookSmsSender(sms_gateway.url, timeout=5)
    messenger = Messenger(email=OutboxSender(tmp_path / "outbox.jsonl"), sms=sms)
    await messenger.sms.send(SmsMessage(to="+15555550100", text="1"))
    session = sms._session
    assert session is not None

    await messenger.close()
    await messenger.close()  # idempotent

    assert session.closed
    assert sms._session is None


async def test_messenger_accepts_one_outbox_for_both(tmp_path: Path) -> None:
    outbox = OutboxSender(tmp_path / "outbox.jsonl")
    messenger = Messenger(email=outbox, sms=outbox)

    await messenger.close()  # OutboxSender has no close(); nothing to do, nothing raised

    assert messenger.email is outbox
    assert messenger.sms is outbox


# --- templates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "kwargs", "expected"),
    [
        ("Your verification code is {####}.", {"code": "123456"}, "Your verification code is 123456."),
        (
            "Your username is {username} and temporary password is {####}.",
            {"code": "Tmp!pass1", "username": "alice"},
            "Your username is alice and temporary password is Tmp!pass1.",
        ),
        ("{####} then {####}", {"code": "42"}, "42 then 42"),
        ("Hello {username}, code {####}", {"username": "bob"}, "Hello bob, code {####}"),
        ("Hello {username}, code {####}", {}, "Hello {username}, code {####}"),
        ("No placeholders.", {"code": "1", "username": "u"}, "No placeholders."),
        # One pass: a username containing a placeholder is inserted literally, never filled in.
        ("{username}: {####}", {"code": "999", "username": "{####}"}, "{####}: 999"),
    ],
)
def test_render_template(template: str, kwargs: dict[str, str], expected: str) -> None:
    rendered = render_template(template, code=kwargs.get("code"), username=kwargs.get("username"))

    assert rendered == expected


def test_render_template_escapes_values_for_html() -> None:
    rendered = render_template("<p>{username}: {####}</p>", code="1&2", username="<script>", escape=True)

    assert rendered == "<p>&lt;script&gt;: 1&amp;2</p>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # aiohttp's ClientResponseError (TooManyRedirects and its kin) quotes the URL it last asked.
        (
            "0, message='', url='https://sms.example/send?api_key=k-123'",
            "0, message='', url='https://sms.example/send'",
        ),
        ("https://user:pw@sms.example:8443/a/b?x=1#f and more", "https://sms.example:8443/a/b and more"),
        ("Cannot connect to host sms.example:443 ssl:default", "Cannot connect to host sms.example:443 ssl:default"),
    ],
)
def test_delivery_errors_are_logged_without_url_credentials_or_query(text: str, expected: str) -> None:
    from gateway.services.messaging import _without_url_secrets

    assert _without_url_secrets(text) == expected
