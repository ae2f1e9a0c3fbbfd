"""PreventUserExistenceErrors=ENABLED against a real, slow mail server: ForgotPassword and ResendConfirmationCode
answer a user who exists as fast as an unknown name (whose answer sends nothing), so the time a mail server
takes to accept a message tells no one which names exist. The code is still delivered, after the answer. A
client that does not hide user existence is answered once the mail server took the message, so a delivery
failure can still be its answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import GatehouseServer, MailServer, code_in, smtp_config

# The mail server takes this long to accept each message: far above what a store write costs.
SMTP_DELAY = 1.5
PASSWORD = "Known-password-1"


@pytest.fixture(scope="module")
def mail() -> Iterator[MailServer]:
    server = MailServer(delay=SMTP_DELAY)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("existence-smtp") / "data"
    server = GatehouseServer(data_dir, config=smtp_config(mail))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(idp: Any) -> dict[str, str]:
    pool_id = idp.create_user_pool(PoolName="existence-smtp", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]

    def client(prevent: str) -> str:
        created = idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=prevent,
            PreventUserExistenceErrors=prevent,
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )
        return str(created["UserPoolClient"]["ClientId"])

    return {"pool_id": pool_id, "hiding": client("ENABLED"), "legacy": client("LEGACY")}


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def confirmed_user(idp: Any, pool_id: str, name: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=name,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": f"{name}@example.com"}, {"Name": "email_verified", "Value": "true"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=name, Password=PASSWORD, Permanent=True)


def test_forgot_password_answers_a_known_user_without_waiting_for_the_mail_server(
    idp: Any, public_idp: Any, mail: MailServer, pool: dict[str, str]
) -> None:
    confirmed_user(idp, pool["pool_id"], "kim")
    known_time, known = timed(lambda: public_idp.forgot_password(ClientId=pool["hiding"], Username="kim"))
    unknown_time, unknown = timed(lambda: public_idp.forgot_password(ClientId=pool["hiding"], Username="nobody"))
    assert known["CodeDeliveryDetails"]["DeliveryMedium"] == unknown["CodeDeliveryDetails"]["DeliveryMedium"]
    assert known_time < SMTP_DELAY / 2, known_time
    assert unknown_time < SMTP_DELAY / 2, unknown_time
    # Sent all the same, after the answer: the code in it resets the password.
    code = code_in(mail.wait_for("kim@example.com", timeout=SMTP_DELAY + 10))
    public_idp.confirm_forgot_password(
        ClientId=pool["hiding"], Username="kim", ConfirmationCode=code, Password="Reset-password-2"
    )
    signed_in = public_idp.initiate_auth(
        ClientId=pool["hiding"],
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "kim", "PASSWORD": "Reset-password-2"},
    )
    assert signed_in["AuthenticationResult"]["AccessToken"]


def test_resend_confirmation_code_answers_a_known_user_without_waiting_for_the_mail_server(
    public_idp: Any, mail: MailServer, pool: dict[str, str]
) -> None:
    public_idp.sign_up(
        ClientId=pool["legacy"],
        Username="lee",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "lee@example.com"}],
    )
    mail.wait_for("lee@example.com", timeout=SMTP_DELAY + 10)
    known_time, known = timed(lambda: public_idp.resend_confirmation_code(ClientId=pool["hiding"], Username="lee"))
    unknown_time, _ = timed(lambda: public_idp.resend_confirmation_code(ClientId=pool["hiding"], Username="nemo"))
    assert known["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    assert known_time < SMTP_DELAY / 2, known_time
    assert unknown_time < SMTP_DELAY / 2, unknown_time
    second = code_in(mail.wait_for("lee@example.com", count=2, timeout=SMTP_DELAY + 10))
    public_idp.confirm_sign_up(ClientId=pool["hiding"], Username="lee", ConfirmationCode=second)


def test_a_client_that_does_not_hide_users_is_answered_once_the_mail_is_accepted(
    idp: Any, public_idp: Any, mail: MailServer, pool: dict[str, str]
) -> None:
    confirmed_user(idp, pool["pool_id"], "max")
    elapsed, _ = timed(lambda: public_idp.forgot_password(ClientId=pool["legacy"], Username="max"))
    assert elapsed >= SMTP_DELAY
    assert mail.messages_to("max@example.com")
