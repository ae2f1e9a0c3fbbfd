"""How codes reach people, end to end: SMS through the operator's webhook, SMTP that is down, the local outbox,
and email changes held until the new address is verified (UserAttributeUpdateSettings).

Every Gatehouse here is a real `gatehouse serve` process; the SMS gateway is a real aiohttp app in this process,
the mail server a real aiosmtpd server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from tests.support import GatehouseServer, MailServer, code_in, free_port, unreachable_smtp_config

PASSWORD = "Correct-horse-1"
USER_AUTH_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def six_digits(text: str) -> str:
    match = re.search(r"\b(\d{6})\b", text)
    assert match, text
    return match.group(1)


def sign_in(public_idp: Any, client_id: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    response = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": password}
    )
    return dict(response)


def sign_in_error(public_idp: Any, client_id: str, username: str, password: str = PASSWORD) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        sign_in(public_idp, client_id, username, password)
    return error_of(exc)


def attributes_of(response: dict[str, Any]) -> dict[str, str]:
    items = response.get("UserAttributes") or response.get("Attributes") or []
    return {a["Name"]: a["Value"] for a in items}


def new_client(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=USER_AUTH_FLOWS, PreventUserExistenceErrors="ENABLED"
    )
    return str(client["UserPoolClient"]["ClientId"])


# --- a real SMS gateway ---------------------------------------------------------------------------------


class SmsGateway:
    """An aiohttp app on a loopback port, in its own thread and event loop, recording every POSTed message.

    ``fail_with`` set to an HTTP status makes it refuse messages with that status (and record nothing)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/sms"
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.fail_with: int | None = None
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sms-gateway", daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if self.fail_with is not None:
            return web.json_response({"error": "unavailable"}, status=self.fail_with)
        body = await request.json()
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._cond:
            self.received.append((headers, body))
            self._cond.notify_all()
        return web.json_response({"status": "queued"})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/sms", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def messages_to(self, phone: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self._cond:
            return [(h, b) for h, b in self.received if b.get("to") == phone]

    def wait_for(self, phone: str, *, count: int = 1, timeout: float = 10.0) -> tuple[dict[str, str], dict[str, Any]]:
        """The ``count``-th message POSTed for ``phone``: its request headers and JSON body."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [(h, b) for h, b in self.received if b.get("to") == phone]
                if len(found) >= count:
                    return found[count - 1]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no SMS #{count} for {phone} within {timeout}s")
                self._cond.wait(remaining)


@pytest.fixture(scope="module")
def sms_server(tmp_path_factory: pytest.TempPathFactory, sms_gateway: SmsGateway) -> Iterator[GatehouseServer]:
    config = f"""version: 1
server:
  sms_webhook:
    url: {sms_gateway.url}
    headers:
      Authorization: Bearer x
    timeout: 5
pools: []
"""
    server = GatehouseServer(tmp_path_factory.mktemp("sms") / "data", config=config)
    server.start()
    yield server
    server.stop()


def test_sms_codes_go_through_the_webhook(sms_server: GatehouseServer, sms_gateway: SmsGateway) -> None:
    idp, public_idp = sms_server.client(), sms_server.client(signed=False)
    pool_id = idp.create_user_pool(
        PoolName="phones", UsernameAttributes=["phone_number"], AutoVerifiedAttributes=["phone_number"]
    )["UserPool"]["Id"]
    client_id = new_client(idp, pool_id)
    phone = "+15555550100"

    signed_up = public_idp.sign_up(ClientId=client_id, Username=phone, Password=PASSWORD)
    assert signed_up["UserConfirmed"] is False
    details = signed_up["CodeDeliveryDetails"]
    assert details["DeliveryMedium"] == "SMS" and details["AttributeName"] == "phone_number"
    assert details["Destination"].endswith("0100") and "*" in details["Destination"]
    assert "5555550" not in details["Destination"]  # masked: only the last four digits show

    headers, body = sms_gateway.wait_for(phone)
    assert headers["authorization"] == "Bearer x"
    assert headers["content-type"].startswith("application/json")
    assert body["to"] == phone
    code = six_digits(body["message"])

    public_idp.confirm_sign_up(ClientId=client_id, Username=phone, ConfirmationCode=code)
    user = idp.admin_get_user(UserPoolId=pool_id, Username=phone)
    assert user["UserStatus"] == "CONFIRMED"
    attributes = attributes_of(user)
    assert attributes["phone_number"] == phone and attributes["phone_number_verified"] == "true"
    assert "AuthenticationResult" in sign_in(public_idp, client_id, phone)

    # The only verified contact is the phone, so the reset code goes there.
    forgot = public_idp.forgot_password(ClientId=client_id, Username=phone)
    assert forgot["CodeDeliveryDetails"] == {
        "DeliveryMedium": "SMS",
        "AttributeName": "phone_number",
        "Destination": details["Destination"],
    }
    headers, body = sms_gateway.wait_for(phone, count=2)
    assert headers["authorization"] == "Bearer x" and body["to"] == phone
    reset_code = six_digits(body["message"])
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username=phone, ConfirmationCode=reset_code, Password="Battery-staple-2"
    )
    assert "AuthenticationResult" in sign_in(public_idp, client_id, phone, "Battery-staple-2")
    assert sign_in_error(public_idp, client_id, phone)[0] == "NotAuthorizedException"
    assert len(sms_gateway.messages_to(phone)) == 2


def test_sms_gateway_refusing_rolls_the_sign_up_back(sms_server: GatehouseServer, sms_gateway: SmsGateway) -> None:
    idp, public_idp = sms_server.client(), sms_server.client(signed=False)
    pool_id = idp.create_user_pool(
        PoolName="phones-down", UsernameAttributes=["phone_number"], AutoVerifiedAttributes=["phone_number"]
    )["UserPool"]["Id"]
    client_id = new_client(idp, pool_id)
    phone = "+15555550199"
    sms_gateway.fail_with = 503
    try:
        for _ in range(2):  # a retry meets the same failure, not UsernameExistsException
            with pytest.raises(ClientError) as exc:
                public_idp.sign_up(ClientId=client_id, Username=phone, Password=PASSWORD)
            assert error_of(exc)[0] == "CodeDeliveryFailureException"
    finally:
        sms_gateway.fail_with = None
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username=phone)
    assert error_of(exc)[0] == "UserNotFoundException"

    # Once the gateway is back, the same sign-up goes through.
    public_idp.sign_up(ClientId=client_id, Username=phone, Password=PASSWORD)
    _, body = sms_gateway.wait_for(phone)
    public_idp.confirm_sign_up(ClientId=client_id, Username=phone, ConfirmationCode=six_digits(body["message"]))
    assert idp.admin_get_user(UserPoolId=pool_id, Username=phone)["UserStatus"] == "CONFIRMED"


# --- SMTP that cannot be reached --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unreachable_smtp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("smtp-down") / "data", config=unreachable_smtp_config())
    server.start()
    yield server
    server.stop()


def test_sign_up_whose_code_cannot_be_mailed_leaves_no_user(unreachable_smtp_server: GatehouseServer) -> None:
    idp, public_idp = unreachable_smtp_server.client(), unreachable_smtp_server.client(signed=False)
    pool_id = idp.create_user_pool(PoolName="smtp-down", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    client_id = new_client(idp, pool_id)

    for _ in range(2):  # the retry fails the same way: the first attempt left nothing behind
        with pytest.raises(ClientError) as exc:
            public_idp.sign_up(
                ClientId=client_id,
                Username="bob",
                Password=PASSWORD,
                UserAttributes=[{"Name": "email", "Value": "bob@example.com"}],
            )
        code, message = error_of(exc)
        assert code == "CodeDeliveryFailureException"
        assert "127.0.0.1" not in message and "refused" not in message.lower()  # no server details leak
        with pytest.raises(ClientError) as exc:
            idp.admin_get_user(UserPoolId=pool_id, Username="bob")
        assert error_of(exc)[0] == "UserNotFoundException"
    assert idp.list_users(UserPoolId=pool_id)["Users"] == []


def test_invitation_that_cannot_be_mailed_leaves_no_user(unreachable_smtp_server: GatehouseServer) -> None:
    idp = unreachable_smtp_server.client()
    pool_id = idp.create_user_pool(
        PoolName="smtp-down-invites", UsernameAttributes=["email"], AutoVerifiedAttributes=["email"]
    )["UserPool"]["Id"]
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            idp.admin_create_user(
                UserPoolId=pool_id,
                Username="carol@example.com",
                UserAttributes=[{"Name": "email", "Value": "carol@example.com"}],
                DesiredDeliveryMediums=["EMAIL"],
            )
        assert error_of(exc)[0] == "CodeDeliveryFailureException"
        with pytest.raises(ClientError) as exc:
            idp.admin_get_user(UserPoolId=pool_id, Username="carol@example.com")
        assert error_of(exc)[0] == "UserNotFoundException"
    assert idp.list_users(UserPoolId=pool_id)["Users"] == []
    # Nor is the email address still taken: the same user can be created without a message.
    created = idp.admin_create_user(
        UserPoolId=pool_id,
        Username="carol@example.com",
        UserAttributes=[{"Name": "email", "Value": "carol@example.com"}],
        MessageAction="SUPPRESS",
    )
    assert created["User"]["UserStatus"] == "FORCE_CHANGE_PASSWORD"


# --- the outbox -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def outbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("outbox") / "data")  # the embedded default: no SMTP, no SMS
    server.start()
    yield server
    server.stop()


def outbox_lines(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_without_smtp_codes_go_to_a_private_outbox(outbox_server: GatehouseServer) -> None:
    idp, public_idp = outbox_server.client(), outbox_server.client(signed=False)
    outbox = outbox_server.data_dir / "outbox.jsonl"
    email_pool = idp.create_user_pool(
        PoolName="outbox", UsernameAttributes=["email"], AutoVerifiedAttributes=["email"]
    )["UserPool"]["Id"]
    email_client = new_client(idp, email_pool)
    public_idp.sign_up(ClientId=email_client, Username="dana@example.com", Password=PASSWORD)

    assert stat.S_IMODE(os.stat(outbox).st_mode) == 0o600
    [mail] = [m for m in outbox_lines(outbox_server.data_dir) if m["to"] == "dana@example.com"]
    assert mail["kind"] == "email" and mail["subject"]
    public_idp.confirm_sign_up(
        ClientId=email_client, Username="dana@example.com", ConfirmationCode=six_digits(mail["text"])
    )
    assert "AuthenticationResult" in sign_in(public_idp, email_client, "dana@example.com")

    # SMS goes to the same file when no webhook is configured.
    phone_pool = idp.create_user_pool(
        PoolName="outbox-sms", UsernameAttributes=["phone_number"], AutoVerifiedAttributes=["phone_number"]
    )["UserPool"]["Id"]
    phone_client = new_client(idp, phone_pool)
    public_idp.sign_up(ClientId=phone_client, Username="+15555550142", Password=PASSWORD)
    [sms] = [m for m in outbox_lines(outbox_server.data_dir) if m["to"] == "+15555550142"]
    assert sms["kind"] == "sms" and sms["subject"] is None
    public_idp.confirm_sign_up(ClientId=phone_client, Username="+15555550142", ConfirmationCode=six_digits(sms["text"]))
    assert idp.admin_get_user(UserPoolId=phone_pool, Username="+15555550142")["UserStatus"] == "CONFIRMED"
    assert stat.S_IMODE(os.stat(outbox).st_mode) == 0o600
    for line in outbox_lines(outbox_server.data_dir):
        assert set(line) >= {"kind", "to", "subject", "text", "time"}


# --- UserAttributeUpdateSettings: a new email waits for its verification ------------------------------


def alias_pool(idp: Any, name: str, *, hold_email: bool) -> tuple[str, str]:
    extra: dict[str, Any] = {}
    if hold_email:
        extra["UserAttributeUpdateSettings"] = {"AttributesRequireVerificationBeforeUpdate": ["email"]}
    pool_id = str(
        idp.create_user_pool(PoolName=name, AliasAttributes=["email"], AutoVerifiedAttributes=["email"], **extra)[
            "UserPool"
        ]["Id"]
    )
    return pool_id, new_client(idp, pool_id)


def confirmed_user(idp: Any, pool_id: str, username: str, email: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def test_email_change_is_held_until_the_new_address_is_verified(
    gatehouse: GatehouseServer, mail: MailServer, idp: Any, public_idp: Any
) -> None:
    pool_id, client_id = alias_pool(idp, "held-email", hold_email=True)
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["UserAttributeUpdateSettings"] == {"AttributesRequireVerificationBeforeUpdate": ["email"]}
    confirmed_user(idp, pool_id, "erin", "erin.old@example.com")
    access = sign_in(public_idp, client_id, "erin.old@example.com")["AuthenticationResult"]["AccessToken"]

    updated = public_idp.update_user_attributes(
        AccessToken=access, UserAttributes=[{"Name": "email", "Value": "erin.new@example.com"}]
    )
    assert updated["CodeDeliveryDetailsList"] == [
        {"Destination": "e***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    ]
    code = code_in(mail.wait_for("erin.new@example.com"))
    assert mail.messages_to("erin.old@example.com") == []

    # Until verified, the old address stays: in GetUser, AdminGetUser, and as the sign-in alias.
    for view in (public_idp.get_user(AccessToken=access), idp.admin_get_user(UserPoolId=pool_id, Username="erin")):
        attributes = attributes_of(view)
        assert attributes["email"] == "erin.old@example.com" and attributes["email_verified"] == "true"
    assert "AuthenticationResult" in sign_in(public_idp, client_id, "erin.old@example.com")
    assert sign_in_error(public_idp, client_id, "erin.new@example.com")[0] == "NotAuthorizedException"

    with pytest.raises(ClientError) as exc:
        public_idp.verify_user_attribute(
            AccessToken=access, AttributeName="email", Code="000000" if code != "000000" else "111111"
        )
    assert error_of(exc)[0] == "CodeMismatchException"
    assert attributes_of(public_idp.get_user(AccessToken=access))["email"] == "erin.old@example.com"

    public_idp.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="erin"))
    assert attributes["email"] == "erin.new@example.com" and attributes["email_verified"] == "true"
    assert attributes_of(public_idp.get_user(AccessToken=access))["email"] == "erin.new@example.com"
    tokens = sign_in(public_idp, client_id, "erin.new@example.com")["AuthenticationResult"]
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "erin"
    assert sign_in_error(public_idp, client_id, "erin.old@example.com")[0] == "NotAuthorizedException"
    # The old address is free again for someone else.
    confirmed_user(idp, pool_id, "frank", "erin.old@example.com")
    assert "AuthenticationResult" in sign_in(public_idp, client_id, "erin.old@example.com")


def test_admin_can_set_a_held_email_verified_in_the_same_call(
    gatehouse: GatehouseServer, mail: MailServer, idp: Any, public_idp: Any
) -> None:
    pool_id, client_id = alias_pool(idp, "held-email-admin", hold_email=True)
    confirmed_user(idp, pool_id, "gina", "gina.old@example.com")
    idp.admin_update_user_attributes(
        UserPoolId=pool_id,
        Username="gina",
        UserAttributes=[
            {"Name": "email", "Value": "gina.new@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="gina"))
    assert attributes["email"] == "gina.new@example.com" and attributes["email_verified"] == "true"
    assert "AuthenticationResult" in sign_in(public_idp, client_id, "gina.new@example.com")
    assert sign_in_error(public_idp, client_id, "gina.old@example.com")[0] == "NotAuthorizedException"
    time.sleep(0.3)  # a message would have arrived by now
    assert mail.messages_to("gina.new@example.com") == []  # set verified by the admin: nothing to verify


def test_without_the_setting_an_email_change_applies_at_once_unverified(
    gatehouse: GatehouseServer, mail: MailServer, idp: Any, public_idp: Any
) -> None:
    pool_id, client_id = alias_pool(idp, "immediate-email", hold_email=False)
    confirmed_user(idp, pool_id, "hank", "hank.old@example.com")
    access = sign_in(public_idp, client_id, "hank.old@example.com")["AuthenticationResult"]["AccessToken"]

    updated = public_idp.update_user_attributes(
        AccessToken=access, UserAttributes=[{"Name": "email", "Value": "hank.new@example.com"}]
    )
    assert updated["CodeDeliveryDetailsList"] == [
        {"Destination": "h***@e***", "DeliveryMedium": "EMAIL", "AttributeName": "email"}
    ]
    attributes = attributes_of(public_idp.get_user(AccessToken=access))
    assert attributes["email"] == "hank.new@example.com" and attributes["email_verified"] == "false"
    # An unverified email is no alias, and the old one is gone: only the username signs in now.
    assert sign_in_error(public_idp, client_id, "hank.old@example.com")[0] == "NotAuthorizedException"
    assert sign_in_error(public_idp, client_id, "hank.new@example.com")[0] == "NotAuthorizedException"
    assert "AuthenticationResult" in sign_in(public_idp, client_id, "hank")

    code = code_in(mail.wait_for("hank.new@example.com"))
    public_idp.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
    attributes = attributes_of(public_idp.get_user(AccessToken=access))
    assert attributes["email"] == "hank.new@example.com" and attributes["email_verified"] == "true"
    assert "AuthenticationResult" in sign_in(public_idp, client_id, "hank.new@example.com")


def test_deleting_an_email_also_drops_its_change_waiting_for_verification(
    gatehouse: GatehouseServer, mail: MailServer, idp: Any, public_idp: Any
) -> None:
    """The code sent for a held change must not bring back an address deleted since."""
    pool_id, client_id = alias_pool(idp, "held-email-deleted", hold_email=True)
    confirmed_user(idp, pool_id, "hal", "hal.old@example.com")
    access = sign_in(public_idp, client_id, "hal.old@example.com")["AuthenticationResult"]["AccessToken"]
    public_idp.update_user_attributes(
        AccessToken=access, UserAttributes=[{"Name": "email", "Value": "hal.new@example.com"}]
    )
    code = code_in(mail.wait_for("hal.new@example.com"))
    idp.admin_delete_user_attributes(UserPoolId=pool_id, Username="hal", UserAttributeNames=["email"])
    with pytest.raises(ClientError) as exc:
        public_idp.verify_user_attribute(AccessToken=access, AttributeName="email", Code=code)
    assert error_of(exc)[0] == "CodeMismatchException"
    attributes = attributes_of(idp.admin_get_user(UserPoolId=pool_id, Username="hal"))
    assert "email" not in attributes and "email_verified" not in attributes
    assert sign_in_error(public_idp, client_id, "hal.new@example.com")[0] == "NotAuthorizedException"
