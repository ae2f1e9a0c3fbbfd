"""Message templates and email settings under hostile or unusual values: a subject with line breaks (header
injection), a From or Reply-To that is not one address, a SourceArn naming a whole domain, the link members kept
by a pool that confirms with codes, non-ASCII subjects (RFC 2047).

One real `gatehouse serve` for the module, a real aiosmtpd server collecting what it sends.
"""

from __future__ import annotations

import email.header
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import MailServer, body_text

PASSWORD = "Correct-horse-1"


def new_pool(idp: Any, **members: Any) -> tuple[str, str]:
    pool = idp.create_user_pool(PoolName="messages", AutoVerifiedAttributes=["email"], **members)
    pool_id = str(pool["UserPool"]["Id"])
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def sign_up(public_idp: Any, client_id: str, username: str, address: str) -> dict[str, Any]:
    return dict(
        public_idp.sign_up(
            ClientId=client_id,
            Username=username,
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": address}],
        )
    )


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"]), str(error["Message"])


def decoded(header: str) -> str:
    return str(email.header.make_header(email.header.decode_header(header)))


# --- Subject: line breaks ------------------------------------------------------------------------------


def test_a_subject_with_line_breaks_is_sent_on_one_line_without_injected_headers(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    # EmailVerificationSubjectType's pattern allows \s, so CR/LF pass the model: the pool is valid.
    hostile = "Welcome\r\nBcc: victim@example.com\r\nX-Evil: 1"
    _, client_id = new_pool(idp, VerificationMessageTemplate={"EmailSubject": hostile, "EmailMessage": "Code {####}"})
    response = sign_up(public_idp, client_id, "crlf", "crlf@example.com")
    assert response["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    message = mail.wait_for("crlf@example.com")
    assert decoded(message["Subject"]) == "Welcome Bcc: victim@example.com X-Evil: 1"
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "Code " in body_text(message)
    time.sleep(0.3)
    assert mail.messages_to("victim@example.com") == []


def test_the_legacy_subject_member_is_folded_too(idp: Any, public_idp: Any, mail: MailServer) -> None:
    _, client_id = new_pool(idp, EmailVerificationSubject="Line one\nLine two")
    sign_up(public_idp, client_id, "legacy-crlf", "legacy-crlf@example.com")
    assert decoded(mail.wait_for("legacy-crlf@example.com")["Subject"]) == "Line one Line two"


def test_a_non_ascii_subject_is_rfc2047_encoded(idp: Any, public_idp: Any, mail: MailServer) -> None:
    subject = "Vérifiez votre adresse — 確認"
    _, client_id = new_pool(idp, VerificationMessageTemplate={"EmailSubject": subject, "EmailMessage": "{####}"})
    sign_up(public_idp, client_id, "unicode", "unicode@example.com")
    message = mail.wait_for("unicode@example.com")
    raw = message["Subject"]
    assert raw.isascii() and "=?" in raw  # an encoded-word, not raw 8-bit bytes in a header
    assert decoded(raw) == subject


# --- EmailConfiguration.From -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sender",
    [
        "Me <me@example.com>\r\nBcc: victim@example.com",
        "me@example.com, victim@example.com",
        "example.com",
        "Me <>",
        # The email package's header parser fails on these (AttributeError, IndexError) or finds defects: every
        # message of the pool would fail, after SignUp or AdminCreateUser had stored the user.
        "Support <a@[b>",
        "a@",
        "a@b..c",
    ],
)
def test_a_from_that_is_not_one_address_is_refused_at_create_and_update(idp: Any, sender: str) -> None:
    assert_refused_at_create_and_update(idp, {"EmailSendingAccount": "DEVELOPER", "From": sender}, "From")


def assert_refused_at_create_and_update(idp: Any, config: dict[str, str], member: str) -> None:
    """``config`` is refused as an EmailConfiguration by CreateUserPool (no pool made) and UpdateUserPool (the
    pool keeps none of it), naming ``member``."""
    before = idp.list_user_pools(MaxResults=60)["UserPools"]
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName="bad-address", EmailConfiguration=config)
    code, status, message = error_of(exc)
    assert (code, status) == ("InvalidParameterException", 400)
    assert f"EmailConfiguration.{member}" in message
    assert len(idp.list_user_pools(MaxResults=60)["UserPools"]) == len(before)

    pool_id, _ = new_pool(idp)
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, EmailConfiguration=config)
    assert error_of(exc)[:2] == ("InvalidParameterException", 400)
    stored = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["EmailConfiguration"]
    assert member not in stored


# Each matches EmailAddressType's pattern (the model's check), and none is one address the email package writes.
@pytest.mark.parametrize("reply_to", ["a@[b", "a@b..c", "help@example.com,victim@example.com", "a@b@c"])
def test_a_reply_to_that_is_not_one_address_is_refused_at_create_and_update(idp: Any, reply_to: str) -> None:
    config = {"EmailSendingAccount": "DEVELOPER", "From": "app@example.com", "ReplyToEmailAddress": reply_to}
    assert_refused_at_create_and_update(idp, config, "ReplyToEmailAddress")


def test_a_named_from_and_reply_to_reach_the_mail(idp: Any, public_idp: Any, mail: MailServer) -> None:
    config = {"EmailSendingAccount": "DEVELOPER", "From": "Exämple App <app@example.com>"}
    _, client_id = new_pool(idp, EmailConfiguration=config)
    sign_up(public_idp, client_id, "named-from", "named-from@example.com")
    message = mail.wait_for("named-from@example.com")
    assert decoded(message["From"]) == "Exämple App <app@example.com>"


def test_reply_to_email_address_becomes_the_reply_to_header(idp: Any, public_idp: Any, mail: MailServer) -> None:
    config = {"EmailSendingAccount": "DEVELOPER", "From": "app@example.com", "ReplyToEmailAddress": "help@example.com"}
    _, client_id = new_pool(idp, EmailConfiguration=config)
    sign_up(public_idp, client_id, "reply-to", "reply-to@example.com")
    message = mail.wait_for("reply-to@example.com")
    assert message["Reply-To"] == "help@example.com"
    assert mail.messages_to("help@example.com") == []  # a header only, never a recipient


def test_no_reply_to_header_without_the_setting(idp: Any, public_idp: Any, mail: MailServer) -> None:
    _, client_id = new_pool(idp)
    sign_up(public_idp, client_id, "no-reply-to", "no-reply-to@example.com")
    assert mail.wait_for("no-reply-to@example.com")["Reply-To"] is None


def test_a_domain_source_arn_is_no_sender_address(idp: Any, public_idp: Any, mail: MailServer) -> None:
    # An SES domain identity: its last segment is "example.org", not an address; the server's sender is used.
    arn = "arn:aws:ses:us-east-1:123456789012:identity/example.org"
    _, client_id = new_pool(idp, EmailConfiguration={"EmailSendingAccount": "DEVELOPER", "SourceArn": arn})
    response = sign_up(public_idp, client_id, "domain-arn", "domain-arn@example.com")
    assert response["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    sender = mail.wait_for("domain-arn@example.com")["From"]
    assert "@" in sender and sender != "example.org"


def test_an_address_source_arn_is_the_sender(idp: Any, public_idp: Any, mail: MailServer) -> None:
    arn = "arn:aws:ses:us-east-1:123456789012:identity/noreply@example.org"
    _, client_id = new_pool(idp, EmailConfiguration={"EmailSendingAccount": "DEVELOPER", "SourceArn": arn})
    sign_up(public_idp, client_id, "address-arn", "address-arn@example.com")
    assert mail.wait_for("address-arn@example.com")["From"] == "noreply@example.org"


def test_an_address_source_arn_that_names_no_usable_address_is_refused(idp: Any) -> None:
    # ArnType's pattern allows "a@@b"; without From it would be every message's sender.
    arn = "arn:aws:ses:us-east-1:123456789012:identity/a@@example.org"
    config = {"EmailSendingAccount": "DEVELOPER", "SourceArn": arn}
    with pytest.raises(ClientError) as exc:
        idp.create_user_pool(PoolName="bad-arn", EmailConfiguration=config)
    code, status, message = error_of(exc)
    assert (code, status) == ("InvalidParameterException", 400) and "SourceArn" in message
    # With a From, the identity only authorizes the sending (EmailConfigurationType): it is not a header.
    idp.create_user_pool(PoolName="arn-and-from", EmailConfiguration={**config, "From": "app@example.com"})


# --- the link members ------------------------------------------------------------------------------------


def test_confirm_with_code_still_accepts_the_link_members(idp: Any) -> None:
    # The ByLink members are only stored (DescribeUserPool returns them); the code option stays usable.
    template = {"DefaultEmailOption": "CONFIRM_WITH_CODE", "EmailMessageByLink": "Click {##Verify Your Email##}"}
    pool_id, _ = new_pool(idp, VerificationMessageTemplate=template)
    stored = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["VerificationMessageTemplate"]
    assert stored["EmailMessageByLink"] == "Click {##Verify Your Email##}"


# --- the recipient -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "postmaster,victim@example.com",  # an address list: SMTP would be told two recipients
        "<victim@example.com>",
        "victim@example.com>",
        "comment(x)victim@example.com",
        '"quoted"@example.com',
        "a;victim@example.com",
    ],
)
def test_an_email_that_is_not_one_plain_address_is_refused_and_nothing_is_sent(
    idp: Any, public_idp: Any, mail: MailServer, value: str
) -> None:
    pool_id, client_id = new_pool(idp)
    with pytest.raises(ClientError) as exc:
        sign_up(public_idp, client_id, "listed", value)
    code, status, message = error_of(exc)
    assert (code, status, message) == ("InvalidParameterException", 400, "Invalid email address format.")
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username="listed")
    assert error_of(exc)[0] == "UserNotFoundException"
    time.sleep(0.2)
    assert mail.messages_to("victim@example.com") == [] and mail.messages_to("postmaster") == []


def test_a_plain_address_gets_exactly_one_envelope_recipient(idp: Any, public_idp: Any, mail: MailServer) -> None:
    _, client_id = new_pool(idp)
    sign_up(public_idp, client_id, "plain", "o'brien+tag@example.com")
    mail.wait_for("o'brien+tag@example.com")
    with mail._collector.cond:
        recipients = [rcpts for rcpts, m in mail._collector.messages if m["To"] == "o'brien+tag@example.com"]
    assert recipients == [["o'brien+tag@example.com"]]


# --- invitations -------------------------------------------------------------------------------------------


def test_a_medium_named_twice_sends_one_invitation(idp: Any, mail: MailServer) -> None:
    pool_id, _ = new_pool(idp)
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="twice",
        UserAttributes=[{"Name": "email", "Value": "twice@example.com"}],
        DesiredDeliveryMediums=["EMAIL", "EMAIL"],
    )
    mail.wait_for("twice@example.com")
    time.sleep(0.3)
    assert len(mail.messages_to("twice@example.com")) == 1
