"""The custom message trigger: the pool's ``CustomMessage`` function words the codes and invitations it sends.

"Custom message Lambda trigger" (Cognito developer guide): "Amazon Cognito invokes this trigger before it sends
an email or phone verification message or a multi-factor authentication (MFA) code." The event's ``request``
has the user's attributes and the placeholders to write into the message: ``codeParameter`` (``{####}``),
``usernameParameter`` (``{username}``, "required for the admin create user flow"; null otherwise) and
``linkParameter`` (a link placeholder, for the confirmation emails that carry a link; null otherwise). Its
``response`` may set ``smsMessage``, ``emailMessage`` and ``emailSubject``; each one it leaves null keeps the
pool's own wording. The function's text takes the place of the pool's template, and its placeholders are
filled as the template's are (:func:`gateway.services.messaging.render_template`).

What Cognito refuses, with ``InvalidLambdaResponseException``:

- a part that is not text;
- a message without the code ("Must include the codeParameter value received in the request"), or, for an
  invitation, without the username ("the response from your function must include placeholder variables for
  the username and code"); a link confirmation email needs the link instead of the code;
- an email longer than 20,000 characters, an SMS (or subject) longer than 140, the limits of the pool's own
  templates (EmailVerificationMessageType, SmsVerificationMessageType, EmailVerificationSubjectType).

The API reference says a pool's email templates are "allowed only if EmailSendingAccount is DEVELOPER";
Gatehouse sends every pool's email through its own SMTP server, and takes a function's email wording (as it takes
the pool's templates) whatever the pool's EmailSendingAccount.

Cognito's own answer to a message without the code is its template validation's InvalidParameterException
("Value at 'emailBody' failed to satisfy constraint"); Gatehouse answers InvalidLambdaResponseException, the
error its models give for a function's answer that cannot be used, so that the caller is not told that its own
parameters were wrong.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import structlog

from gateway.errors import (
    InvalidLambdaResponseException,
    UnexpectedLambdaException,
    UserLambdaValidationException,
)
from gateway.services.triggers import trigger_event, user_attributes

if TYPE_CHECKING:
    from gateway.services.pools import PoolView
    from gateway.services.triggers import TriggerService
    from gateway.storage.base import UserRecord

__all__ = [
    "ADMIN_CREATE_USER",
    "AUTHENTICATION",
    "FORGOT_PASSWORD",
    "RESEND_CODE",
    "SIGN_UP",
    "TRIGGER_FAILURES",
    "UPDATE_USER_ATTRIBUTE",
    "VERIFY_USER_ATTRIBUTE",
    "CustomMessage",
    "MessageTrigger",
    "custom_message",
]

log = structlog.get_logger("gateway.custom_message")

# The trigger sources ("Custom message Lambda trigger sources").
SIGN_UP: Final = "CustomMessage_SignUp"
ADMIN_CREATE_USER: Final = "CustomMessage_AdminCreateUser"
RESEND_CODE: Final = "CustomMessage_ResendCode"
FORGOT_PASSWORD: Final = "CustomMessage_ForgotPassword"
UPDATE_USER_ATTRIBUTE: Final = "CustomMessage_UpdateUserAttribute"
VERIFY_USER_ATTRIBUTE: Final = "CustomMessage_VerifyUserAttribute"
AUTHENTICATION: Final = "CustomMessage_Authentication"

CODE_PARAMETER: Final = "{####}"
USERNAME_PARAMETER: Final = "{username}"
# A link placeholder as the pool's link template writes one (EmailMessageByLink, "{##Verify Email##}"): the words
# between the marks become the link's title.
LINK_PARAMETER: Final = "{##Click Here##}"
EMAIL_LIMIT: Final = 20_000
SMS_LIMIT: Final = 140
SUBJECT_LIMIT: Final = 140

# What a function that fails makes of the call (TriggerService.invoke), besides a response Gatehouse cannot use.
TRIGGER_FAILURES: Final = (UserLambdaValidationException, UnexpectedLambdaException, InvalidLambdaResponseException)


@dataclass(frozen=True)
class MessageTrigger:
    """Why a code is sent, as the custom message event tells it: its trigger source, and the app client and
    ``ClientMetadata`` of the call that sends it, where the call has them."""

    source: str
    client_id: str | None = None
    client_metadata: Mapping[str, str] | None = None


@dataclass(frozen=True)
class CustomMessage:
    """The function's wording, checked: each part None where the pool's own is used."""

    sms: str | None = None
    email: str | None = None
    subject: str | None = None


def _invalid(reason: str, pool: PoolView, source: str) -> InvalidLambdaResponseException:
    log.warning("custom_message.refused", pool=pool.id, trigger=source, reason=reason)
    return InvalidLambdaResponseException("Unrecognizable lambda output")


async def custom_message(
    triggers: TriggerService | None,
    pool: PoolView,
    user: UserRecord,
    trigger: MessageTrigger,
    *,
    mediums: Collection[str],
    link: bool = False,
) -> CustomMessage:
    """Ask the pool's CustomMessage function for the wording of a message about to go by ``mediums`` (EMAIL,
    SMS); ``link``: the email carries a confirmation link rather than the code. Nothing is asked, and the pool's
    wording used, when the pool has no such function. A function that fails raises TriggerService's errors
    (UserLambdaValidationException, UnexpectedLambdaException), one whose answer cannot be used
    InvalidLambdaResponseException: the message is then not sent."""
    if triggers is None or triggers.function(pool, "CustomMessage") is None:
        return CustomMessage()
    invitation = trigger.source == ADMIN_CREATE_USER
    request: dict[str, Any] = {
        "userAttributes": user_attributes(user.attributes, sub=user.sub, status=user.status),
        "codeParameter": CODE_PARAMETER,
        "usernameParameter": USERNAME_PARAMETER if invitation else None,
        "linkParameter": LINK_PARAMETER if link else None,
        "clientMetadata": dict(trigger.client_metadata or {}),
    }
    event = trigger_event(
        pool,
        trigger.source,
        user.username,
        request,
        client_id=trigger.client_id,
        response={"smsMessage": None, "emailMessage": None, "emailSubject": None},
    )
    response = await triggers.invoke(pool, "CustomMessage", event)
    sms, email, subject = (response.get(name) for name in ("smsMessage", "emailMessage", "emailSubject"))
    for part in (sms, email, subject):
        if part is not None and not isinstance(part, str):
            raise _invalid("not_text", pool, trigger.source)
    needed = [USERNAME_PARAMETER] if invitation else []
    if sms is not None and "SMS" in mediums:
        _check_message(sms, [CODE_PARAMETER, *needed], SMS_LIMIT, pool, trigger.source)
    if email is not None and "EMAIL" in mediums:
        # A link email proves the address by its link: the code need not be in it (nor is it in the pool's own
        # link template).
        _check_message(email, needed if link else [CODE_PARAMETER, *needed], EMAIL_LIMIT, pool, trigger.source)
        if link and not _has_link(email):
            raise _invalid("no_link", pool, trigger.source)
    if subject is not None and len(subject) > SUBJECT_LIMIT:
        raise _invalid("subject_too_long", pool, trigger.source)
    return CustomMessage(sms=sms, email=email, subject=subject or None)


def _check_message(text: str, placeholders: list[str], limit: int, pool: PoolView, source: str) -> None:
    if len(text) > limit:
        raise _invalid("too_long", pool, source)
    if any(placeholder not in text for placeholder in placeholders):
        raise _invalid("no_placeholder", pool, source)


def _has_link(text: str) -> bool:
    """Whether ``text`` has a link placeholder (``{##title##}``, never the code's ``{####}``)."""
    start = text.find("{##")
    while start >= 0:
        if not text.startswith(CODE_PARAMETER, start) and text.find("##}", start + 3) >= 0:
            return True
        start = text.find("{##", start + 1)
    return False
