"""How verification codes and invitations reach people: email and SMS.

Cognito sends a code by email or SMS for sign-up confirmation, attribute verification and forgotten
passwords, and an invitation with a temporary password for ``AdminCreateUser``. Gatehouse does the same
through two small protocols, :class:`EmailSender` and :class:`SmsSender`, with three implementations:

- :class:`SmtpEmailSender` — real SMTP (aiosmtplib), a ``multipart/alternative`` message when HTML is given.
- :class:`WebhookSmsSender` — POSTs ``{"to": ..., "message": ...}`` to the operator's SMS gateway.
- :class:`OutboxSender` — both protocols at once: one JSON line per message in a local file, so a developer
  (or a test) can read the codes without any mail or SMS infrastructure.

Every delivery failure surfaces as :class:`~gateway.errors.CodeDeliveryFailureException`, the error Cognito
answers when it cannot deliver a code; the underlying error is logged (``message.delivery_failed``) but
never shown to the client. Templates use Cognito's placeholders (``{####}`` and ``{username}``, see the
``VerificationMessageTemplate`` and ``InviteMessageTemplate`` shapes), filled by :func:`render_template`; a
sign-up confirmation may carry a link instead (``{##Verify Email##}``, ``DefaultEmailOption``
``CONFIRM_WITH_LINK``) to the hosted pages' ``/confirmUser``.
"""

from __future__ import annotations

import asyncio
import email.policy
import html as html_lib
import json
import os
import re
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import AddressHeader
from email.message import EmailMessage as MimeMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Any, NoReturn, Protocol, runtime_checkable

import aiohttp
import aiosmtplib
from yarl import URL

from gateway.errors import CodeDeliveryFailureException, GatehouseError, InvalidParameterException
from gateway.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class EmailMessage:
    """One email to one recipient."""

    to: str
    sender: str  # the From address, e.g. "Gatehouse <no-reply@example.com>"
    subject: str
    text: str
    html: str | None = None
    reply_to: str | None = None  # EmailConfigurationType.ReplyToEmailAddress


@dataclass(frozen=True)
class SmsMessage:
    """One text message to one phone."""

    to: str  # E.164, e.g. "+15555550100" (Cognito's phone_number attribute format)
    text: str


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise :class:`CodeDeliveryFailureException`."""
        ...


class SmsSender(Protocol):
    async def send(self, message: SmsMessage) -> None:
        """Deliver ``message`` or raise :class:`CodeDeliveryFailureException`."""
        ...


@runtime_checkable
class _Closeable(Protocol):
    async def close(self) -> None: ...


# --- templates ----------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{####\}|\{username\}")
_CODE = "{####}"
_LINK_OPEN, _LINK_CLOSE = "{##", "##}"


def _link_placeholders(template: str) -> list[tuple[str, bool]]:
    """The template cut at its link placeholders (``{##title##}``; never the code's ``{####}``): its pieces in
    order, each with whether it is a link's title. Each ``{##`` is closed by the first ``##}`` after it, the
    title being anything between (EmailVerificationMessageByLinkType allows braces and any length); one scan,
    however many openings are never closed."""
    pieces: list[tuple[str, bool]] = []
    done = position = 0
    while (start := template.find(_LINK_OPEN, position)) >= 0:
        if template.startswith(_CODE, start):
            position = start + len(_CODE)
            continue
        end = template.find(_LINK_CLOSE, start + len(_LINK_OPEN))
        if end < 0:
            break
        pieces.append((template[done:start], False))
        pieces.append((template[start + len(_LINK_OPEN) : end], True))
        done = position = end + len(_LINK_CLOSE)
    pieces.append((template[done:], False))
    return pieces


def render_template(
    template: str,
    *,
    code: str | None = None,
    username: str | None = None,
    link: str | None = None,
    escape: bool = False,
) -> str:
    """Fill Cognito's placeholders: ``{####}`` with ``code``, ``{username}`` with ``username`` and a link
    placeholder ``{##Verify Email##}`` (EmailMessageByLink: "A verification link titled Verify Your Email
    replaces this placeholder", Customizing email verification messages) with ``link`` under its title.

    A placeholder whose value is not given is left as it is. ``escape=True`` is for the HTML part of an email:
    the values are HTML-escaped (usernames may contain ``<`` and ``&``) and a link becomes an anchor; in the
    text part a link is its title followed by the URL. Placeholders are found in the template only, never in
    the values filled in: a username that itself contains ``{####}`` or ``{##x##}`` is never filled.
    """
    values: dict[str, str] = {}
    if code is not None:
        values["{####}"] = code
    if username is not None:
        values["{username}"] = username

    def substitute(match: re.Match[str]) -> str:
        value = values.get(match.group(0))
        if value is None:
            return match.group(0)
        return html_lib.escape(value) if escape else value

    if link is None:
        return _PLACEHOLDER.sub(substitute, template)
    out: list[str] = []
    for piece, is_title in _link_placeholders(template):
        if not is_title:
            out.append(_PLACEHOLDER.sub(substitute, piece))
        elif escape:
            # The title is the template's own words (the pool administrator's HTML); the URL is escaped.
            out.append(f'<a href="{html_lib.escape(link)}">{piece}</a>')
        else:
            out.append(f"{piece}: {link}")
    return "".join(out)


def email_parts(template: str, *, code: str, username: str, link: str | None = None) -> tuple[str, str]:
    """The text and the HTML part of an email from a Cognito message template. The template is the pool
    administrator's HTML; the values filled in are not: a username chosen at SignUp (UsernameType allows
    ``<``, ``>``, ``"``, ``=`` and ``/``) must not become markup in a mail sent from the pool's address."""
    return (
        render_template(template, code=code, username=username, link=link),
        render_template(template, code=code, username=username, link=link, escape=True),
    )


def one_line(subject: str) -> str:
    """A subject as one header line: every run of line breaks becomes one space. Cognito's subject types
    (EmailVerificationSubjectType, pattern ``[\\p{L}...\\s]+``) allow CR and LF; written as they are they
    would either start a new header (RFC 5322 section 2.2, header injection) or, refused by the email
    package, fail every delivery of the pool."""
    return _LINE_BREAKS.sub(" ", subject).strip()


_LINE_BREAKS = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+\s*")


def check_email_settings(settings: Mapping[str, object]) -> None:
    """CreateUserPool/UpdateUserPool: refuse what Gatehouse could only send wrongly.

    ``EmailConfiguration.From`` is "the sender's email address or the sender's name with their email
    address" (EmailConfigurationType) and ``ReplyToEmailAddress`` "the destination to which the receiver of
    the email should reply": each one address, on one header line (:func:`check_address_header`), as is the
    address a ``SourceArn`` identity names when it is the sender (no From).
    """
    config = settings.get("EmailConfiguration")
    if isinstance(config, Mapping):
        check_address_header(config.get("From"), "EmailConfiguration.From")
        check_address_header(config.get("ReplyToEmailAddress"), "EmailConfiguration.ReplyToEmailAddress")
        identity = str(config.get("SourceArn") or "").rpartition("/")[2]
        if not config.get("From") and "@" in identity:
            # Without From, an address identity ("identity/me@example.com") is the sender; ArnType's pattern
            # allows "identity/a@@b" too.
            try:
                check_address_header(identity, "EmailConfiguration.SourceArn")
            except InvalidParameterException as exc:
                raise InvalidParameterException("EmailConfiguration.SourceArn names no usable email address.") from exc


def check_address_header(value: object, member: str) -> None:
    """Refuse (InvalidParameterException) a sender or reply-to address that is not one address, optionally
    named, which the email package writes as a clean ``From``/``Reply-To`` header. Nothing (``None`` or empty)
    is left to the caller's default.

    The pool's or risk configuration's words go into every message sent for it: a value the email package
    parses only with defects (``a@b..c``), or not at all (``Support <a@[b>`` raises inside CPython's header
    parser), would otherwise fail every delivery, long after the setting was accepted. A non-ASCII local part
    is no defect here: RFC 6532 allows it, and the SMTP server is asked for SMTPUTF8 (RFC 6531) to send it.
    """
    if not value:
        return
    text = str(value)
    refused = InvalidParameterException(f"{member} must be one email address, optionally named.")
    if _LINE_BREAKS.search(text):
        raise refused  # a second header line (RFC 5322 section 2.2)
    try:
        header = _HEADER_POLICY.header_factory("Reply-To", text)
        header.fold(policy=_HEADER_POLICY)
    except Exception as exc:  # the parser's own failures are not only ValueError (IndexError, AttributeError)
        raise refused from exc
    defects = [defect for defect in header.defects if not isinstance(defect, NonASCIILocalPartDefect)]
    if not isinstance(header, AddressHeader):  # what the registry makes of Reply-To: never otherwise
        raise refused
    if defects or len(header.addresses) != 1 or len(header.groups) != 1 or header.groups[0].display_name is not None:
        raise refused  # one address, not a list or a group ("Team: a@example.com;")
    address = header.addresses[0]
    if not address.username or not address.domain or address.addr_spec.count("@") != 1:
        raise refused


# The policy SMTP delivery writes messages with (aiosmtplib's, for an EmailMessage without SMTPUTF8).
_HEADER_POLICY = email.policy.SMTP


# --- SMTP ---------------------------------------------------------------------------------------------


class SmtpEmailSender:
    """Sends email through an SMTP server with aiosmtplib.

    ``use_tls`` is implicit TLS (SMTPS, usually port 465); ``start_tls`` upgrades a plain connection:
    ``None`` upgrades when the server offers STARTTLS, ``True`` requires it, ``False`` never does.
    ``timeout`` bounds each step of the SMTP conversation, in seconds.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self._password = password  # private, and this class has no repr that could show it
        self.use_tls = use_tls
        self.start_tls = start_tls
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        try:
            mime = _to_mime(message)
            # Written out once here as the SMTP client will write it, so that a header the email package cannot
            # fold fails now, before any connection, rather than halfway through the conversation.
            mime.as_bytes(policy=_HEADER_POLICY)
        except Exception as exc:
            # The email package refuses CR/LF in headers (header injection) and malformed addresses with
            # ValueError, but its header parser also fails on some addresses with other errors (IndexError,
            # AttributeError): a message that cannot be built is a failed delivery, never an internal error.
            _delivery_failed("email", message.to, exc, reason="invalid_message")
        try:
            await aiosmtplib.send(
                mime,
                # The envelope names the one recipient: left to aiosmtplib, it is every address the To header
                # parses into, and a value like "postmaster,victim@example.com" is two.
                recipients=[message.to],
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self._password,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            # OSError covers refused connections and TimeoutError; aiosmtplib's errors carry the server's
            # reply, never the password, but the client still sees only Cognito's generic error.
            _delivery_failed("email", message.to, exc, reason="smtp", host=self.host, port=self.port)
        except ValueError as exc:
            # aiosmtplib's own check of the envelope: a sender it cannot name in MAIL FROM ("a@@b", from a
            # SourceArn) or no sender address at all.
            _delivery_failed("email", message.to, exc, reason="invalid_message", host=self.host, port=self.port)
        log.info("message.sent", medium="email", to=message.to, host=self.host, port=self.port)


def _to_mime(message: EmailMessage) -> MimeMessage:
    if getaddresses([message.to]) != [("", message.to)]:
        # One plain addr-spec (RFC 5322 section 3.4.1) or nothing: the To header must name exactly the mailbox
        # the code is for, not a list, a display name or a comment.
        raise ValueError("the recipient is not one plain email address")
    mime = MimeMessage()
    mime["From"] = message.sender
    mime["To"] = message.to
    mime["Subject"] = one_line(message.subject)
    if message.reply_to:
        # "The destination to which the receiver of the email should reply" (EmailConfigurationType).
        mime["Reply-To"] = message.reply_to
    mime["Date"] = formatdate(usegmt=True)
    # An explicit domain: make_msgid() would otherwise call socket.getfqdn(), a blocking DNS lookup.
    domain = parseaddr(message.sender)[1].rpartition("@")[2] or "gatehouse.invalid"
    mime["Message-ID"] = make_msgid(domain=domain)
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")  # makes it multipart/alternative
    return mime


# --- local outbox -------------------------------------------------------------------------------------


class OutboxSender:
    """Writes every message as one JSON line to a file instead of sending it (both protocols).

    Each line has ``kind`` (``email`` or ``sms``), ``to``, ``subject`` (``null`` for SMS), ``text`` and
    ``time`` (ISO 8601, UTC). Meant for local development and tests: ``tail -f <data-dir>/outbox.jsonl``.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # One writer at a time, so concurrent sends never interleave partial lines.
        self._lock = asyncio.Lock()

    async def send(self, message: EmailMessage | SmsMessage) -> None:
        if isinstance(message, EmailMessage):
            kind, subject = "email", message.subject
        else:
            kind, subject = "sms", None
        record = {
            "kind": kind,
            "to": message.to,
            "subject": subject,
            "text": message.text,
            "time": datetime.now(UTC).isoformat(),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        try:
            async with self._lock:
                await asyncio.to_thread(self._append, line)
        except OSError as exc:
            _delivery_failed(kind, message.to, exc, reason="outbox", path=str(self.path))
        # The recipient and where to look, but not the text: a code in a shared log is a leaked code.
        log.info("message.outbox", medium=kind, to=message.to, path=str(self.path))

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # 0o600: the file holds live verification codes and temporary passwords.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        # O_CREAT's mode applies only to a new file: one made before (by hand, or by a release that did not
        # restrict it) is made private before the next code goes into it.
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as file:
            file.write(line)


def announce_outbox(path: Path, media: list[str], *, smtp_configured: bool) -> None:
    """Say at start-up which messages go to the outbox file instead of a person. With SMTP configured the server
    is likely a real deployment whose SMS (phone verification, SMS MFA codes) still land in a local file until
    ``server.sms_webhook`` is set: a warning, since that file then holds live codes."""
    if not media:
        return
    if smtp_configured:
        log.warning("message.outbox_in_use", media=media, path=str(path), hint="set server.sms_webhook")
    else:
        log.info("message.outbox_in_use", media=media, path=str(path))


# --- SMS via webhook ----------------------------------------------------------------------------------


class WebhookSmsSender:
    """Sends SMS by POSTing ``{"to": ..., "message": ...}`` as JSON to an operator's gateway.

    ``headers`` are added to every request (an API key, say) and are never logged. Any answer other than
    2xx, a refused connection or a timeout (``timeout`` seconds for the whole request) is a delivery
    failure. The HTTP session is created on first use, inside the running loop; :meth:`close` ends it.
    """

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self._headers = dict(headers or {})
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        # What logs may show of the URL: no credentials, no query string (tokens often live there).
        self._log_url = str(URL(url).with_user(None).with_query(None).with_fragment(None))

    async def send(self, message: SmsMessage) -> None:
        if self._session is None:
            # No await between the check and the assignment, so concurrent sends share one session.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        payload = {"to": message.to, "message": message.text}
        try:
            # Not followed: a redirect would take the code (a 307 re-sends the body) and the operator's headers
            # (aiohttp drops only Authorization across origins, not an API key) wherever it points. A 3xx is a
            # failed delivery, as any answer but 2xx.
            async with self._session.post(
                self.url, json=payload, headers=self._headers, allow_redirects=False
            ) as response:
                status = response.status
                await response.read()  # drain, so the connection can go back to the pool
        except Exception as exc:  # unreachable, refused, timed out, or a request aiohttp will not make
            # (credentials both in the URL and in an Authorization header): a failed delivery, never a 500.
            _delivery_failed("sms", message.to, exc, reason="webhook", url=self._log_url)
        if not 200 <= status < 300:
            _delivery_failed("sms", message.to, None, reason="webhook_status", url=self._log_url, status=status)
        log.info("message.sent", medium="sms", to=message.to, url=self._log_url, status=status)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


# --- the pair the services use ------------------------------------------------------------------------


# How long stopping waits for messages still being sent in the background (an SMTP send times out after 10 s).
DRAIN_SECONDS = 10.0


class Messenger:
    """The email and SMS senders a running Gatehouse uses; :meth:`close` releases what they hold.

    :meth:`later` sends without the caller waiting: where an answer must not take longer for a user who exists
    than for one who does not (PreventUserExistenceErrors), the time a mail server takes to accept a message
    would otherwise tell them apart. A failure is logged (``message.delivery_failed``), never answered."""

    def __init__(self, email: EmailSender, sms: SmsSender) -> None:
        self.email = email
        self.sms = sms
        self._pending: set[asyncio.Task[None]] = set()

    def later(self, sending: Coroutine[Any, Any, None]) -> None:
        """Run ``sending`` (a coroutine that sends) in the background; :meth:`close` waits for it."""
        task = asyncio.get_running_loop().create_task(_logged(sending))
        self._pending.add(task)  # a task only weakly referenced by the loop could be collected mid-send
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        if self._pending:
            # Messages on their way are sent before the senders close, within a bound.
            _, late = await asyncio.wait(set(self._pending), timeout=DRAIN_SECONDS)
            for task in late:
                task.cancel()
        closed: list[object] = []
        for sender in (self.email, self.sms):
            # The same object may serve both (an OutboxSender); close it once.
            if isinstance(sender, _Closeable) and not any(sender is seen for seen in closed):
                closed.append(sender)
                await sender.close()


async def _logged(sending: Coroutine[Any, Any, None]) -> None:
    try:
        await sending
    except CodeDeliveryFailureException:
        pass  # logged where it happened, with the reason
    except GatehouseError as exc:
        # A message refused before it went (the pool's CustomMessage function failed, or answered what cannot be
        # sent): logged by the trigger; here only that nothing went, never to the caller, who was answered.
        log.info("message.background_refused", error=exc.__class__.__name__)
    except Exception:
        log.exception("message.background_failed")


def _delivery_failed(medium: str, to: str, exc: BaseException | None, *, reason: str, **fields: object) -> NoReturn:
    """Log what really went wrong, then raise the one error the client is shown."""
    if exc is not None:
        fields["error_type"] = type(exc).__name__
        fields["error"] = _without_url_secrets(str(exc))
    log.warning("message.delivery_failed", medium=medium, to=to, reason=reason, **fields)
    raise CodeDeliveryFailureException() from exc


# A URL's user-info and query string, wherever an error's text quotes a URL (aiohttp's ClientResponseError does:
# "url='https://sms.example/send?api_key=...'").
_URL_SECRETS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?:[^/@\s'\"]*@)?(?P<rest>[^\s'\"?#]*)[^\s'\"]*")


def _without_url_secrets(text: str) -> str:
    """``text`` with every URL in it cut to its scheme, host and path: what the log's ``url`` field shows too."""
    return _URL_SECRETS.sub(r"\g<scheme>\g<rest>", text)
