"""Threat protection (Cognito's advanced security) through boto3 against a real server: SetRiskConfiguration /
DescribeRiskConfiguration and their validation, auth events recorded for sign-ins with their risk level and
reasons (AdminListUserAuthEvents, paging, AdminUpdateAuthEventFeedback, UpdateAuthEventFeedback with the token
from the notification email), blocked IP ranges, account-takeover actions (MFA_REQUIRED answered with TOTP,
BLOCK), and compromised passwords at sign-up, password change and sign-in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from typing import Any

import pyotp
import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer, MailServer, body_text, code_in

PASSWORD = "Risk-password-9x"
FLOWS = [
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
]
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Safari/604.1"
HOME_IP, AWAY_IP = "198.51.100.20", "192.0.2.77"
SECURITY = ("NotAuthorizedException", "Unable to login because of security reasons.")
COMPROMISED = ("InvalidPasswordException", "Provided password cannot be used for security reasons.")
# In zxcvbn's list of the most common leaked passwords (compared without case).
LEAKED = "Password1"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def context(ip: str, agent: str, **extra_headers: str) -> dict[str, Any]:
    headers = [{"headerName": "User-Agent", "headerValue": agent}]
    headers += [{"headerName": k.replace("_", "-"), "headerValue": v} for k, v in extra_headers.items()]
    return {"IpAddress": ip, "ServerName": "app.example.com", "ServerPath": "/login", "HttpHeaders": headers}


def make_pool(idp: Any, mode: str, *, totp: bool = False, relaxed: bool = False) -> tuple[str, str]:
    request: dict[str, Any] = {
        "PoolName": f"risk-{uuid.uuid4().hex[:8]}",
        "UserPoolAddOns": {"AdvancedSecurityMode": mode},
    }
    if relaxed:
        request["Policies"] = {"PasswordPolicy": {"MinimumLength": 8}}
    pool_id = str(idp.create_user_pool(**request)["UserPool"]["Id"])
    if totp:
        idp.set_user_pool_mfa_config(
            UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
        )
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str, password: str = PASSWORD, email: str | None = None) -> None:
    attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}] if email else []
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS", UserAttributes=attributes)
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)


def block_compromised(idp: Any, pool_id: str, event: str) -> None:
    """Threat protection blocks compromised passwords at ``event`` (SIGN_IN, PASSWORD_CHANGE, SIGN_UP)."""
    idp.set_risk_configuration(
        UserPoolId=pool_id,
        CompromisedCredentialsRiskConfiguration={"EventFilter": [event], "Actions": {"EventAction": "BLOCK"}},
    )


def admin_sign_in(
    idp: Any, pool_id: str, client_id: str, username: str, ip: str, agent: str, password: str = PASSWORD, **headers: str
) -> dict[str, Any]:
    return dict(
        idp.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
            ContextData=context(ip, agent, **headers),
        )
    )


def raw_events(idp: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """AdminListUserAuthEvents' raw JSON: it carries EventRisk.RiskReasons, which boto3's parser drops."""
    captured: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        captured.append(http_response.content)

    idp.meta.events.register("after-call.cognito-idp.AdminListUserAuthEvents", keep)
    try:
        idp.admin_list_user_auth_events(**kwargs)
    finally:
        idp.meta.events.unregister("after-call.cognito-idp.AdminListUserAuthEvents", keep)
    return list(json.loads(captured[0])["AuthEvents"])


def sign_ins(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["EventType"] == "SignIn"]


def settled_step() -> int:
    into = time.time() % 30
    if into > 20:
        time.sleep(30 - into + 0.2)
    return int(time.time() // 30)


# --- configuration ------------------------------------------------------------------------------------------

TAKEOVER: dict[str, Any] = {
    "NotifyConfiguration": {
        "SourceArn": "arn:aws:ses:us-east-1:000000000000:identity/security@example.com",
        "From": "Security <security@example.com>",
        "BlockEmail": {"Subject": "Blocked sign-in", "TextBody": "We blocked a sign-in from {ip-address}."},
        "MfaEmail": {"Subject": "Sign-in checked", "TextBody": "A sign-in needed your code: {ip-address}."},
        "NoActionEmail": {
            "Subject": "New sign-in",
            "TextBody": "Hi {username}, a sign-in from {ip-address} ({device-name}). Event {event-id}, "
            "feedback token {feedback-token}.",
        },
    },
    "Actions": {
        "LowAction": {"Notify": False, "EventAction": "NO_ACTION"},
        "MediumAction": {"Notify": True, "EventAction": "MFA_IF_CONFIGURED"},
        "HighAction": {"Notify": True, "EventAction": "BLOCK"},
    },
}


def test_risk_configuration_round_trip_per_pool_and_client(idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "ENFORCED")
    other_client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="other")["UserPoolClient"]["ClientId"]
    empty = idp.describe_risk_configuration(UserPoolId=pool_id)["RiskConfiguration"]
    assert empty == {"UserPoolId": pool_id}

    pool_level = {
        "CompromisedCredentialsRiskConfiguration": {
            "EventFilter": ["SIGN_IN", "SIGN_UP"],
            "Actions": {"EventAction": "BLOCK"},
        },
        "AccountTakeoverRiskConfiguration": TAKEOVER,
        "RiskExceptionConfiguration": {"BlockedIPRangeList": ["203.0.113.0/24"], "SkippedIPRangeList": ["10.0.0.0/8"]},
    }
    answer = idp.set_risk_configuration(UserPoolId=pool_id, **pool_level)["RiskConfiguration"]
    described = idp.describe_risk_configuration(UserPoolId=pool_id)["RiskConfiguration"]
    for member, value in pool_level.items():
        assert answer[member] == value
        assert described[member] == value
    assert described["UserPoolId"] == pool_id and "ClientId" not in described
    assert abs(described["LastModifiedDate"].timestamp() - time.time()) < 60

    # A client-level configuration overrides the pool's for that client only.
    client_level = {"CompromisedCredentialsRiskConfiguration": {"Actions": {"EventAction": "NO_ACTION"}}}
    idp.set_risk_configuration(UserPoolId=pool_id, ClientId=client_id, **client_level)
    for_client = idp.describe_risk_configuration(UserPoolId=pool_id, ClientId=client_id)["RiskConfiguration"]
    assert for_client["ClientId"] == client_id
    assert (
        for_client["CompromisedCredentialsRiskConfiguration"] == client_level["CompromisedCredentialsRiskConfiguration"]
    )
    assert "AccountTakeoverRiskConfiguration" not in for_client
    for_other = idp.describe_risk_configuration(UserPoolId=pool_id, ClientId=other_client)["RiskConfiguration"]
    assert for_other["ClientId"] == other_client
    assert for_other["AccountTakeoverRiskConfiguration"] == TAKEOVER

    # Setting no member clears the client's override: the pool's applies again.
    idp.set_risk_configuration(UserPoolId=pool_id, ClientId=client_id)
    cleared = idp.describe_risk_configuration(UserPoolId=pool_id, ClientId=client_id)["RiskConfiguration"]
    assert cleared["AccountTakeoverRiskConfiguration"] == TAKEOVER


@pytest.mark.parametrize(
    ("request_members", "expected"),
    [
        ({"RiskExceptionConfiguration": {"BlockedIPRangeList": ["203.0.113.0/33"]}}, "BlockedIPRangeList"),
        ({"RiskExceptionConfiguration": {"SkippedIPRangeList": ["not-an-address"]}}, "SkippedIPRangeList"),
        ({"RiskExceptionConfiguration": {"SkippedIPRangeList": ["10.0.0.0/255.0.0.0"]}}, "SkippedIPRangeList"),
        ({"RiskExceptionConfiguration": {"BlockedIPRangeList": ["10.0.0.0/0.255.255.255"]}}, "BlockedIPRangeList"),
        (
            {
                "AccountTakeoverRiskConfiguration": {
                    "Actions": {"HighAction": {"Notify": True, "EventAction": "BLOCK"}},
                }
            },
            "NotifyConfiguration is required",
        ),
        (
            {
                "AccountTakeoverRiskConfiguration": {
                    "NotifyConfiguration": {"SourceArn": "arn:aws:ses:us-east-1:000000000000:identity/a@example.com"},
                    "Actions": {"HighAction": {"Notify": True, "EventAction": "BLOCK"}},
                }
            },
            "BlockEmail",
        ),
        ({"AccountTakeoverRiskConfiguration": {"Actions": {}}}, "at least one action"),
        # A sender or reply-to the email package cannot write as one clean header: every notifying sign-in would
        # fail to build its email (CPython's header parser raises on an unclosed domain literal).
        *(
            (
                {
                    "AccountTakeoverRiskConfiguration": {
                        **TAKEOVER,
                        "NotifyConfiguration": {**TAKEOVER["NotifyConfiguration"], member: value},
                    }
                },
                f"NotifyConfiguration.{member}",
            )
            for member, value in (
                ("From", "Security <a@[b>"),
                ("From", "security@"),
                ("From", "security@example.com, victim@example.com"),
                ("ReplyTo", "a@[b"),
                ("ReplyTo", "Help <help@example..com>"),
            )
        ),
        (
            {"CompromisedCredentialsRiskConfiguration": {"EventFilter": [], "Actions": {"EventAction": "BLOCK"}}},
            "EventFilter",
        ),
    ],
)
def test_invalid_risk_configurations_are_refused_and_change_nothing(
    idp: Any, request_members: dict[str, Any], expected: str
) -> None:
    pool_id, _ = make_pool(idp, "AUDIT")
    before = {"RiskExceptionConfiguration": {"BlockedIPRangeList": ["192.0.2.0/24"]}}
    idp.set_risk_configuration(UserPoolId=pool_id, **before)
    with pytest.raises(ClientError) as error:
        idp.set_risk_configuration(UserPoolId=pool_id, **request_members)
    code, message = error_of(error)
    assert code == "InvalidParameterException" and expected in message
    after = idp.describe_risk_configuration(UserPoolId=pool_id)["RiskConfiguration"]
    assert after["RiskExceptionConfiguration"] == before["RiskExceptionConfiguration"]
    assert "AccountTakeoverRiskConfiguration" not in after


def test_risk_configuration_of_unknown_pool_or_client_and_bad_enums(idp: Any, gatehouse: GatehouseServer) -> None:
    pool_id, _ = make_pool(idp, "AUDIT")
    with pytest.raises(ClientError) as error:
        idp.describe_risk_configuration(UserPoolId="us-east-1_Nope12345")
    assert error_of(error)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        idp.set_risk_configuration(UserPoolId=pool_id, ClientId="nosuchclient")
    assert error_of(error)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        idp.set_risk_configuration(
            UserPoolId=pool_id, CompromisedCredentialsRiskConfiguration={"Actions": {"EventAction": "MAYBE"}}
        )
    assert error_of(error)[0] == "InvalidParameterException"
    # The operations are admin operations: unsigned callers are refused.
    with pytest.raises(ClientError) as error:
        gatehouse.client(signed=False).describe_risk_configuration(UserPoolId=pool_id)
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# --- auth events ----------------------------------------------------------------------------------------------


def test_auth_events_record_sign_ins_with_risk_reasons_and_feedback(idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "AUDIT")
    make_user(idp, pool_id, "erin")
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "erin", HOME_IP, FIREFOX)
    with pytest.raises(ClientError) as wrong:
        admin_sign_in(idp, pool_id, client_id, "erin", HOME_IP, FIREFOX, password="Wrong-password-1")
    assert error_of(wrong)[0] == "NotAuthorizedException"
    # New device and new network: High, but AUDIT only records.
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "erin", AWAY_IP, SAFARI)

    events = raw_events(idp, UserPoolId=pool_id, Username="erin")
    # Newest first; the oldest is the administrator setting the password.
    assert [(e["EventType"], e["EventResponse"]) for e in events] == [
        ("SignIn", "Pass"),
        ("SignIn", "Fail"),
        ("SignIn", "Pass"),
        ("PasswordChange", "Pass"),
    ]
    latest, failed, first, password_set = events
    assert latest["EventRisk"]["RiskLevel"] == "High"
    assert latest["EventRisk"]["RiskDecision"] == "AccountTakeover"
    assert any("new device" in r for r in latest["EventRisk"]["RiskReasons"])
    assert any("new network (192.0.2.0/24)" in r for r in latest["EventRisk"]["RiskReasons"])
    assert latest["EventContextData"]["IpAddress"] == AWAY_IP
    assert latest["EventContextData"]["DeviceName"] == SAFARI
    assert first["EventRisk"] == {
        "RiskDecision": "NoRisk",
        "RiskLevel": "Low",
        "CompromisedCredentialsDetected": False,
        "RiskReasons": [],
    }
    assert failed["ChallengeResponses"] == [{"ChallengeName": "Password", "ChallengeResponse": "Failure"}]
    assert first["ChallengeResponses"] == [{"ChallengeName": "Password", "ChallengeResponse": "Success"}]
    assert latest["EventId"] > failed["EventId"] > first["EventId"]

    # Paging: newest first, two at a time.
    page = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="erin", MaxResults=2)
    assert [e["EventId"] for e in page["AuthEvents"]] == [latest["EventId"], failed["EventId"]]
    rest = idp.admin_list_user_auth_events(
        UserPoolId=pool_id, Username="erin", MaxResults=2, NextToken=page["NextToken"]
    )
    assert [e["EventId"] for e in rest["AuthEvents"]] == [first["EventId"], password_set["EventId"]]
    assert "NextToken" not in rest

    # The administrator marks the risky sign-in as not the user's: that device and network stay untrusted.
    idp.admin_update_auth_event_feedback(
        UserPoolId=pool_id, Username="erin", EventId=latest["EventId"], FeedbackValue="Invalid"
    )
    marked = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="erin", MaxResults=1)["AuthEvents"][0]
    assert marked["EventFeedback"]["FeedbackValue"] == "Invalid"
    assert marked["EventFeedback"]["Provider"] == "ADMIN"
    admin_sign_in(idp, pool_id, client_id, "erin", AWAY_IP, SAFARI)
    again = raw_events(idp, UserPoolId=pool_id, Username="erin")[0]
    assert again["EventRisk"]["RiskLevel"] == "High"

    # Feedback Valid on it makes the device and network the user's own.
    idp.admin_update_auth_event_feedback(
        UserPoolId=pool_id, Username="erin", EventId=again["EventId"], FeedbackValue="Valid"
    )
    admin_sign_in(idp, pool_id, client_id, "erin", AWAY_IP, SAFARI)
    trusted = raw_events(idp, UserPoolId=pool_id, Username="erin")[0]
    assert trusted["EventRisk"]["RiskLevel"] == "Low", trusted


def test_auth_event_errors(idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "AUDIT")
    make_user(idp, pool_id, "frank")
    admin_sign_in(idp, pool_id, client_id, "frank", HOME_IP, FIREFOX)
    with pytest.raises(ClientError) as error:
        idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="ghost")
    assert error_of(error)[0] == "UserNotFoundException"
    with pytest.raises(ClientError) as error:
        idp.admin_update_auth_event_feedback(
            UserPoolId=pool_id, Username="frank", EventId="not-an-event", FeedbackValue="Valid"
        )
    assert error_of(error)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        idp.admin_update_auth_event_feedback(UserPoolId=pool_id, Username="frank", EventId="x", FeedbackValue="Perhaps")
    assert error_of(error)[0] == "InvalidParameterException"

    # Another user's event cannot be given feedback through this user.
    make_user(idp, pool_id, "grace")
    admin_sign_in(idp, pool_id, client_id, "grace", HOME_IP, FIREFOX)
    graces = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="grace")["AuthEvents"][0]["EventId"]
    with pytest.raises(ClientError) as error:
        idp.admin_update_auth_event_feedback(
            UserPoolId=pool_id, Username="frank", EventId=graces, FeedbackValue="Valid"
        )
    assert error_of(error)[0] == "ResourceNotFoundException"
    assert "EventFeedback" not in idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="grace")["AuthEvents"][0]

    # A pool without threat protection has no events to list.
    off_pool, off_client = make_pool(idp, "OFF")
    make_user(idp, off_pool, "henry")
    admin_sign_in(idp, off_pool, off_client, "henry", HOME_IP, FIREFOX)
    with pytest.raises(ClientError) as error:
        idp.admin_list_user_auth_events(UserPoolId=off_pool, Username="henry")
    assert error_of(error)[0] == "UserPoolAddOnNotEnabledException"


def test_notification_email_carries_the_feedback_token(idp: Any, public_idp: Any, mail: MailServer) -> None:
    pool_id, client_id = make_pool(idp, "ENFORCED")
    takeover = json.loads(json.dumps(TAKEOVER))
    takeover["Actions"]["LowAction"] = {"Notify": True, "EventAction": "NO_ACTION"}
    takeover["NotifyConfiguration"]["ReplyTo"] = "help@example.com"
    idp.set_risk_configuration(UserPoolId=pool_id, AccountTakeoverRiskConfiguration=takeover)
    make_user(idp, pool_id, "ivan", email="ivan@example.com")
    admin_sign_in(idp, pool_id, client_id, "ivan", HOME_IP, FIREFOX)
    message = mail.wait_for("ivan@example.com")
    assert message["Subject"] == "New sign-in"
    assert "Security <security@example.com>" in message["From"]
    assert message["Reply-To"] == "help@example.com"
    text = body_text(message)
    assert f"a sign-in from {HOME_IP} ({FIREFOX})" in text
    match = re.search(r"Event (\S+), feedback token (\S+)\.", text)
    assert match is not None
    event_id, token = match.groups()
    assert idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="ivan")["AuthEvents"][0]["EventId"] == event_id

    with pytest.raises(ClientError) as error:
        public_idp.update_auth_event_feedback(
            UserPoolId=pool_id, Username="ivan", EventId=event_id, FeedbackToken=token + "x", FeedbackValue="Invalid"
        )
    assert error_of(error)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as error:
        public_idp.update_auth_event_feedback(
            UserPoolId=pool_id, Username="nobody", EventId=event_id, FeedbackToken=token, FeedbackValue="Invalid"
        )
    assert error_of(error)[0] == "NotAuthorizedException"
    assert "EventFeedback" not in idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="ivan")["AuthEvents"][0]

    public_idp.update_auth_event_feedback(
        UserPoolId=pool_id, Username="ivan", EventId=event_id, FeedbackToken=token, FeedbackValue="Invalid"
    )
    feedback = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="ivan")["AuthEvents"][0]["EventFeedback"]
    assert (feedback["FeedbackValue"], feedback["Provider"]) == ("Invalid", "USER")


# --- IP ranges and account-takeover actions -----------------------------------------------------------------


def test_blocked_ip_range_is_refused_in_enforced_mode(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "ENFORCED")
    idp.set_risk_configuration(
        UserPoolId=pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": ["203.0.113.0/24", "2001:db8::/32"]}
    )
    make_user(idp, pool_id, "judy")
    for ip in ("203.0.113.5", "2001:db8::1"):
        with pytest.raises(ClientError) as error:
            admin_sign_in(idp, pool_id, client_id, "judy", ip, FIREFOX)
        assert error_of(error) == SECURITY
    # Even the right password does not help, and nothing else changed: the user signs in from elsewhere.
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "judy", HOME_IP, FIREFOX)
    events = sign_ins(idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="judy")["AuthEvents"])
    assert [(e["EventResponse"], e["EventRisk"]["RiskDecision"]) for e in events] == [
        ("Pass", "NoRisk"),
        ("Fail", "Block"),
        ("Fail", "Block"),
    ]
    assert events[1]["EventContextData"]["IpAddress"] == "2001:db8::1"
    # A public client's UserContextData.IpAddress is not believed unless the client propagates context data.
    answer = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "judy", "PASSWORD": PASSWORD},
        UserContextData={"IpAddress": "203.0.113.5"},
    )
    assert "AuthenticationResult" in answer
    # Only a client with a secret may propagate it (botocore's model): the app's server, which alone can sign.
    server_app = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="server",
        GenerateSecret=True,
        ExplicitAuthFlows=FLOWS,
        EnablePropagateAdditionalUserContextData=True,
    )["UserPoolClient"]
    signature = hmac.new(
        server_app["ClientSecret"].encode(), ("judy" + server_app["ClientId"]).encode(), hashlib.sha256
    ).digest()
    with pytest.raises(ClientError) as error:
        public_idp.initiate_auth(
            ClientId=server_app["ClientId"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={
                "USERNAME": "judy",
                "PASSWORD": PASSWORD,
                "SECRET_HASH": base64.b64encode(signature).decode(),
            },
            UserContextData={"IpAddress": "203.0.113.5"},
        )
    assert error_of(error) == SECURITY


def test_a_blocked_range_refuses_refreshes_through_either_operation(idp: Any, public_idp: Any) -> None:
    """BlockedIPRangeList "always blocks authentication requests": a refresh token held from before the block is
    refused from a blocked address through REFRESH_TOKEN_AUTH and GetTokensFromRefreshToken alike."""
    pool_id, client_id = make_pool(idp, "ENFORCED")
    make_user(idp, pool_id, "lena")
    login = {"USERNAME": "lena", "PASSWORD": PASSWORD}
    tokens = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=login)
    refresh_token = tokens["AuthenticationResult"]["RefreshToken"]
    assert public_idp.get_tokens_from_refresh_token(ClientId=client_id, RefreshToken=refresh_token)
    # This test's own address (the loopback, as IPv4 or IPv6) becomes a blocked one.
    idp.set_risk_configuration(
        UserPoolId=pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": ["127.0.0.0/8", "::1/128"]}
    )
    with pytest.raises(ClientError) as error:
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh_token}
        )
    assert error_of(error) == SECURITY
    with pytest.raises(ClientError) as error:
        public_idp.get_tokens_from_refresh_token(ClientId=client_id, RefreshToken=refresh_token)
    assert error_of(error) == SECURITY


def test_audit_mode_records_a_blocked_range_without_refusing(idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "AUDIT")
    idp.set_risk_configuration(
        UserPoolId=pool_id, RiskExceptionConfiguration={"BlockedIPRangeList": ["203.0.113.0/24"]}
    )
    make_user(idp, pool_id, "kate")
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "kate", "203.0.113.5", FIREFOX)
    (event,) = sign_ins(raw_events(idp, UserPoolId=pool_id, Username="kate"))
    assert (event["EventResponse"], event["EventRisk"]["RiskDecision"]) == ("Pass", "Block")
    assert event["EventRisk"]["RiskReasons"][0] == "address in BlockedIPRangeList"


def test_skipped_ip_range_is_never_scored(idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "ENFORCED")
    idp.set_risk_configuration(
        UserPoolId=pool_id,
        AccountTakeoverRiskConfiguration={"Actions": {"HighAction": {"Notify": False, "EventAction": "BLOCK"}}},
        RiskExceptionConfiguration={"SkippedIPRangeList": ["192.0.2.0/24"]},
    )
    make_user(idp, pool_id, "leo")
    admin_sign_in(idp, pool_id, client_id, "leo", HOME_IP, FIREFOX)
    # New device and network, but from a skipped range: not scored, not blocked.
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "leo", AWAY_IP, SAFARI)
    # The same from an unskipped range is High and blocked.
    with pytest.raises(ClientError) as error:
        admin_sign_in(idp, pool_id, client_id, "leo", "203.0.113.50", SAFARI + " (other)")
    assert error_of(error) == SECURITY


def test_high_risk_requires_totp_and_blocks_users_without_it(idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "ENFORCED", totp=True)
    idp.set_risk_configuration(
        UserPoolId=pool_id,
        AccountTakeoverRiskConfiguration={
            "Actions": {
                "LowAction": {"Notify": False, "EventAction": "NO_ACTION"},
                "MediumAction": {"Notify": False, "EventAction": "MFA_IF_CONFIGURED"},
                "HighAction": {"Notify": False, "EventAction": "MFA_REQUIRED"},
            }
        },
    )
    make_user(idp, pool_id, "mia")
    tokens = admin_sign_in(idp, pool_id, client_id, "mia", HOME_IP, FIREFOX)["AuthenticationResult"]
    # A verified software token that is not turned on as MFA: the pool would never ask for it by itself.
    secret = idp.associate_software_token(AccessToken=tokens["AccessToken"])["SecretCode"]
    step = settled_step()
    idp.verify_software_token(AccessToken=tokens["AccessToken"], UserCode=pyotp.TOTP(secret).generate_otp(step - 1))
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "mia", HOME_IP, FIREFOX)

    challenge = admin_sign_in(idp, pool_id, client_id, "mia", AWAY_IP, SAFARI)
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    with pytest.raises(ClientError) as error:
        idp.admin_respond_to_auth_challenge(
            UserPoolId=pool_id,
            ClientId=client_id,
            ChallengeName="SOFTWARE_TOKEN_MFA",
            Session=challenge["Session"],
            ChallengeResponses={
                "USERNAME": "mia",
                "SOFTWARE_TOKEN_MFA_CODE": "000000" if pyotp.TOTP(secret).generate_otp(step) != "000000" else "111111",
            },
        )
    assert error_of(error)[0] == "CodeMismatchException"
    challenge = admin_sign_in(idp, pool_id, client_id, "mia", AWAY_IP, SAFARI)
    answer = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="SOFTWARE_TOKEN_MFA",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "mia", "SOFTWARE_TOKEN_MFA_CODE": pyotp.TOTP(secret).generate_otp(step)},
    )
    assert "AccessToken" in answer["AuthenticationResult"]
    events = raw_events(idp, UserPoolId=pool_id, Username="mia")
    passed, retried_failed = events[0], events[1]
    assert passed["EventResponse"] == "Pass"
    assert passed["EventRisk"]["RiskLevel"] == "High"
    assert passed["ChallengeResponses"] == [
        {"ChallengeName": "Password", "ChallengeResponse": "Success"},
        {"ChallengeName": "Mfa", "ChallengeResponse": "Success"},
    ]
    assert retried_failed["EventResponse"] == "Fail"
    assert retried_failed["ChallengeResponses"][-1] == {"ChallengeName": "Mfa", "ChallengeResponse": "Failure"}
    # Back home: Low, no challenge.
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "mia", HOME_IP, FIREFOX)

    # A user without a second factor cannot pass MFA_REQUIRED: the risky sign-in is refused.
    make_user(idp, pool_id, "noah")
    admin_sign_in(idp, pool_id, client_id, "noah", HOME_IP, FIREFOX)
    with pytest.raises(ClientError) as error:
        admin_sign_in(idp, pool_id, client_id, "noah", AWAY_IP, SAFARI)
    assert error_of(error) == SECURITY
    # Medium (only a new network) with MFA_IF_CONFIGURED lets a user without TOTP in.
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "noah", AWAY_IP, FIREFOX)


def test_impossible_travel_is_high_risk(idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "ENFORCED")
    idp.set_risk_configuration(
        UserPoolId=pool_id,
        AccountTakeoverRiskConfiguration={"Actions": {"HighAction": {"Notify": False, "EventAction": "BLOCK"}}},
    )
    make_user(idp, pool_id, "olga")
    paris = {"CloudFront-Viewer-Latitude": "48.8566", "CloudFront-Viewer-Longitude": "2.3522"}
    sydney = {"CloudFront-Viewer-Latitude": "-33.8688", "CloudFront-Viewer-Longitude": "151.2093"}
    assert "AuthenticationResult" in admin_sign_in(
        idp, pool_id, client_id, "olga", HOME_IP, FIREFOX, **{k.replace("-", "_"): v for k, v in paris.items()}
    )
    with pytest.raises(ClientError) as error:
        admin_sign_in(
            idp, pool_id, client_id, "olga", HOME_IP, FIREFOX, **{k.replace("-", "_"): v for k, v in sydney.items()}
        )
    assert error_of(error) == SECURITY
    reasons = raw_events(idp, UserPoolId=pool_id, Username="olga")[0]["EventRisk"]["RiskReasons"]
    assert any(r.startswith("impossible travel (169") for r in reasons), reasons


# --- compromised credentials ---------------------------------------------------------------------------------


def test_compromised_password_refused_at_sign_up_and_allowed_with_no_action(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "ENFORCED", relaxed=True)
    block_compromised(idp, pool_id, "SIGN_UP")
    with pytest.raises(ClientError) as error:
        public_idp.sign_up(ClientId=client_id, Username="pat", Password=LEAKED)
    assert error_of(error) == COMPROMISED
    assert idp.list_users(UserPoolId=pool_id)["Users"] == []
    # A password nobody leaked is fine.
    public_idp.sign_up(ClientId=client_id, Username="pat", Password="Zebra-orbit-lantern-42")

    idp.set_risk_configuration(
        UserPoolId=pool_id,
        CompromisedCredentialsRiskConfiguration={"EventFilter": ["SIGN_UP"], "Actions": {"EventAction": "NO_ACTION"}},
    )
    public_idp.sign_up(ClientId=client_id, Username="quinn", Password=LEAKED)
    event = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="quinn")["AuthEvents"][0]
    assert event["EventType"] == "SignUp"
    assert event["EventRisk"]["CompromisedCredentialsDetected"] is True
    clean = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="pat")["AuthEvents"][0]
    assert clean["EventRisk"]["CompromisedCredentialsDetected"] is False


def test_forgot_password_and_password_change_are_recorded(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "AUDIT")
    make_user(idp, pool_id, "uma", email="uma@example.com")
    public_idp.forgot_password(ClientId=client_id, Username="uma")
    with pytest.raises(ClientError):  # no user, no event
        public_idp.forgot_password(ClientId=client_id, Username="nobody-here")
    events = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="uma")["AuthEvents"]
    assert [(e["EventType"], e["EventResponse"]) for e in events] == [
        ("ForgotPassword", "Pass"),
        ("PasswordChange", "Pass"),
    ]


def test_compromised_password_at_password_change_and_sign_in(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "ENFORCED", relaxed=True)
    block_compromised(idp, pool_id, "PASSWORD_CHANGE")
    make_user(idp, pool_id, "rita")
    with pytest.raises(ClientError) as error:
        idp.admin_set_user_password(UserPoolId=pool_id, Username="rita", Password=LEAKED, Permanent=True)
    assert error_of(error) == COMPROMISED
    # The old password still works: nothing was changed.
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "rita", HOME_IP, FIREFOX)

    # Detection off for password changes: the leaked password can be set, then sign-in checks catch it.
    block_compromised(idp, pool_id, "SIGN_IN")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="rita", Password=LEAKED, Permanent=True)
    with pytest.raises(ClientError) as error:
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "rita", "PASSWORD": LEAKED}
        )
    assert error_of(error)[0] == "PasswordResetRequiredException"
    assert idp.admin_get_user(UserPoolId=pool_id, Username="rita")["UserStatus"] == "RESET_REQUIRED"
    blocked = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="rita")["AuthEvents"][0]
    assert blocked["EventResponse"] == "Fail"
    assert blocked["EventRisk"]["CompromisedCredentialsDetected"] is True
    # A wrong password is still just a wrong password.
    with pytest.raises(ClientError) as error:
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "rita", "PASSWORD": "Not-the-password-7"},
        )
    assert error_of(error) == ("NotAuthorizedException", "Incorrect username or password.")


def test_compromised_password_refused_at_confirm_forgot_password_leaves_the_code(
    idp: Any, public_idp: Any, mail: MailServer
) -> None:
    """A new password refused as compromised leaves the reset code usable, as one the policy refuses does: the
    user is not made to ask for another code (and spend the pool's send limit) for choosing badly."""
    pool_id, client_id = make_pool(idp, "ENFORCED", relaxed=True)
    block_compromised(idp, pool_id, "PASSWORD_CHANGE")
    make_user(idp, pool_id, "sara", email="sara@example.com")
    public_idp.forgot_password(ClientId=client_id, Username="sara")
    code = code_in(mail.wait_for("sara@example.com"))
    with pytest.raises(ClientError) as error:
        public_idp.confirm_forgot_password(ClientId=client_id, Username="sara", ConfirmationCode=code, Password=LEAKED)
    assert error_of(error) == COMPROMISED
    assert "AuthenticationResult" in admin_sign_in(idp, pool_id, client_id, "sara", HOME_IP, FIREFOX)
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="sara", ConfirmationCode=code, Password="Zebra-orbit-lantern-42"
    )
    events = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="sara")["AuthEvents"]
    changes = [e["EventResponse"] for e in events if e["EventType"] == "PasswordChange"]
    assert changes.count("Fail") == 1 and changes.count("Pass") >= 1
