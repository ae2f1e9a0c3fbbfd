"""Log export of a user pool (SetLogDeliveryConfiguration / GetLogDeliveryConfiguration) through boto3, and the
records a running Gatehouse writes for it: a message that could not be delivered (``userNotification``, here
because the configured SMTP server is down) and a threat-protection auth event (``userAuthEvents``, Plus plan).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.support import GatehouseServer, unreachable_smtp_config

PASSWORD = "Correct-horse-1"
LOG_GROUP = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/gatehouse-notifications"
STREAM = "arn:aws:firehose:us-east-1:123456789012:deliverystream/gatehouse-activity"
BUCKET = "arn:aws:s3:::gatehouse-activity-logs"


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def notification(arn: str = LOG_GROUP, level: str = "ERROR") -> dict[str, Any]:
    return {"EventSource": "userNotification", "LogLevel": level, "CloudWatchLogsConfiguration": {"LogGroupArn": arn}}


def exported(server: GatehouseServer, pool_id: str, *, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The ``pool_log.exported`` events of the pool in the server's log, once there are ``count`` of them (a
    code sent in the background fails a moment after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        events = [
            event
            for event in (json.loads(line) for line in server.log_text().splitlines() if line.startswith("{"))
            if event.get("event") == "pool_log.exported" and event.get("pool") == pool_id
        ]
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("log-delivery") / "data", config=unreachable_smtp_config())
    server.start()
    yield server
    server.stop()


def test_configuration_round_trip(gatehouse: GatehouseServer) -> None:
    idp = gatehouse.client()
    pool_id = idp.create_user_pool(PoolName="logs-round-trip")["UserPool"]["Id"]
    assert idp.get_log_delivery_configuration(UserPoolId=pool_id)["LogDeliveryConfiguration"] == {
        "UserPoolId": pool_id,
        "LogConfigurations": [],
    }

    answer = idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[notification()])
    expected = {"UserPoolId": pool_id, "LogConfigurations": [notification()]}
    assert answer["LogDeliveryConfiguration"] == expected
    assert idp.get_log_delivery_configuration(UserPoolId=pool_id)["LogDeliveryConfiguration"] == expected

    # Not a member of UserPoolType, and UpdateUserPool (which resets what it is not given) keeps it.
    assert "LogDeliveryConfiguration" not in idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    idp.update_user_pool(UserPoolId=pool_id, AutoVerifiedAttributes=["email"])
    assert idp.get_log_delivery_configuration(UserPoolId=pool_id)["LogDeliveryConfiguration"] == expected

    # An empty list removes it.
    idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[])
    assert idp.get_log_delivery_configuration(UserPoolId=pool_id)["LogDeliveryConfiguration"]["LogConfigurations"] == []


def test_plus_pool_takes_both_kinds(gatehouse: GatehouseServer) -> None:
    idp = gatehouse.client()
    pool_id = idp.create_user_pool(PoolName="logs-plus", UserPoolTier="PLUS")["UserPool"]["Id"]
    for destination in (
        {"FirehoseConfiguration": {"StreamArn": STREAM}},
        {"S3Configuration": {"BucketArn": BUCKET}},
        {"CloudWatchLogsConfiguration": {"LogGroupArn": LOG_GROUP}},
    ):
        activity = {"EventSource": "userAuthEvents", "LogLevel": "INFO", **destination}
        answer = idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[notification(), activity])
        assert answer["LogDeliveryConfiguration"]["LogConfigurations"] == [notification(), activity]


@pytest.mark.parametrize(
    ("configurations", "expected"),
    [
        ([notification(level="INFO")], "LogLevel INFO is not supported for EventSource userNotification"),
        (
            [{"EventSource": "userNotification", "LogLevel": "ERROR", "S3Configuration": {"BucketArn": BUCKET}}],
            "userNotification can be delivered only with CloudWatchLogsConfiguration",
        ),
        ([{"EventSource": "userNotification", "LogLevel": "ERROR"}], "needs exactly one destination"),
        (
            [{**notification(), "FirehoseConfiguration": {"StreamArn": STREAM}}],
            "needs exactly one destination",
        ),
        ([notification(), notification()], "Only one log configuration is allowed for EventSource userNotification"),
        ([notification(arn=STREAM)], "LogGroupArn must be the ARN of a CloudWatch Logs log group"),
        (
            [
                {
                    "EventSource": "userAuthEvents",
                    "LogLevel": "INFO",
                    "S3Configuration": {"BucketArn": "arn:aws:s3:::Not_A_Bucket"},
                }
            ],
            "BucketArn must be the ARN of an S3 bucket",
        ),
    ],
)
def test_what_cognito_refuses_is_refused_and_changes_nothing(
    gatehouse: GatehouseServer, configurations: list[dict[str, Any]], expected: str
) -> None:
    idp = gatehouse.client()
    pool_id = idp.create_user_pool(PoolName="logs-refused", UserPoolTier="PLUS")["UserPool"]["Id"]
    idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[notification()])
    with pytest.raises(ClientError) as exc:
        idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=configurations)
    code, message = error_of(exc)
    assert code == "InvalidParameterException"
    assert expected in message
    assert idp.get_log_delivery_configuration(UserPoolId=pool_id)["LogDeliveryConfiguration"]["LogConfigurations"] == [
        notification()
    ]


def test_user_activity_export_needs_the_plus_plan(gatehouse: GatehouseServer) -> None:
    idp = gatehouse.client()
    pool_id = idp.create_user_pool(PoolName="logs-essentials")["UserPool"]["Id"]
    activity = {"EventSource": "userAuthEvents", "LogLevel": "INFO", "FirehoseConfiguration": {"StreamArn": STREAM}}
    with pytest.raises(ClientError) as exc:
        idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[activity])
    assert error_of(exc)[0] == "FeatureUnavailableInTierException"
    assert idp.get_log_delivery_configuration(UserPoolId=pool_id)["LogDeliveryConfiguration"]["LogConfigurations"] == []


def test_unknown_pool_and_unsigned_calls(gatehouse: GatehouseServer) -> None:
    idp = gatehouse.client()
    for call in (
        lambda: idp.get_log_delivery_configuration(UserPoolId="us-east-1_Nowhere00"),
        lambda: idp.set_log_delivery_configuration(UserPoolId="us-east-1_Nowhere00", LogConfigurations=[]),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc)[0] == "ResourceNotFoundException"
    pool_id = idp.create_user_pool(PoolName="logs-unsigned")["UserPool"]["Id"]
    for operation in ("GetLogDeliveryConfiguration", "SetLogDeliveryConfiguration"):
        unsigned = requests.post(
            gatehouse.url,
            data=json.dumps({"UserPoolId": pool_id, "LogConfigurations": [notification()]}),
            headers={
                "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
                "Content-Type": "application/x-amz-json-1.1",
            },
            timeout=10,
        )
        assert unsigned.status_code in (400, 403)
        assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"
    assert idp.get_log_delivery_configuration(UserPoolId=pool_id)["LogDeliveryConfiguration"]["LogConfigurations"] == []


def test_undelivered_code_is_exported_as_a_user_notification(gatehouse: GatehouseServer) -> None:
    idp, public_idp = gatehouse.client(), gatehouse.client(signed=False)
    pool_id = idp.create_user_pool(PoolName="logs-notify", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
    quiet_pool = idp.create_user_pool(PoolName="logs-quiet", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    quiet_client = idp.create_user_pool_client(UserPoolId=quiet_pool, ClientName="app")["UserPoolClient"]["ClientId"]
    idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[notification()])

    for client in (client_id, quiet_client):
        with pytest.raises(ClientError) as exc:
            public_idp.sign_up(
                ClientId=client,
                Username="dora",
                Password=PASSWORD,
                UserAttributes=[{"Name": "email", "Value": "dora@example.com"}],
            )
        assert error_of(exc)[0] == "CodeDeliveryFailureException"

    (event,) = exported(gatehouse, pool_id)
    assert event["level"] == "error"
    assert event["event_source"] == "userNotification"
    assert event["destination"] == LOG_GROUP
    record = event["record"]
    assert record["eventSource"] == "USER_NOTIFICATION"
    assert record["logLevel"] == "ERROR"
    assert record["logSourceId"] == {"userPoolId": pool_id}
    assert abs(int(record["eventTimestamp"]) / 1000 - time.time()) < 60
    assert record["message"]["details"].startswith("Email message")
    assert "dora@example.com" not in json.dumps(event)  # the export names no address
    # The pool without a configuration exports nothing.
    assert exported(gatehouse, quiet_pool, timeout=0) == []


def test_auth_events_are_exported_as_user_activity(gatehouse: GatehouseServer) -> None:
    idp, public_idp = gatehouse.client(), gatehouse.client(signed=False)
    pool_id = idp.create_user_pool(
        PoolName="logs-activity", UserPoolTier="PLUS", UserPoolAddOns={"AdvancedSecurityMode": "AUDIT"}
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    activity = {"EventSource": "userAuthEvents", "LogLevel": "INFO", "FirehoseConfiguration": {"StreamArn": STREAM}}
    idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[activity])
    idp.admin_create_user(UserPoolId=pool_id, Username="erin", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="erin", Password=PASSWORD, Permanent=True)
    sub = next(
        a["Value"]
        for a in idp.admin_get_user(UserPoolId=pool_id, Username="erin")["UserAttributes"]
        if a["Name"] == "sub"
    )

    public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "erin", "PASSWORD": PASSWORD}
    )

    # AdminSetUserPassword's password change is an auth event too, exported first.
    events = exported(gatehouse, pool_id, count=2)
    assert [e["record"]["message"]["eventType"] for e in events] == ["PasswordChange", "SignIn"]
    event = events[1]
    assert event["level"] == "info"
    assert event["destination"] == STREAM
    record = event["record"]
    assert record["eventSource"] == "USER_ACTIVITY"
    assert record["logLevel"] == "INFO"
    message = record["message"]
    listed = idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="erin")["AuthEvents"][0]  # newest first
    assert message["eventId"] == listed["EventId"]
    assert message["eventType"] == "SignIn"
    assert message["eventResponse"] == listed["EventResponse"] == "Pass"
    assert (message["userSub"], message["userName"], message["userPoolId"]) == (sub, "erin", pool_id)
    assert message["clientId"] == client_id
    assert message["challenges"] == [{"challengeName": "Password", "challengeResponse": "Success"}]
    assert message["compromisedCredentialDetected"] == "false"
    assert listed["EventRisk"]["RiskDecision"] == "NoRisk" and message["riskDecision"] == "PASS"

    # With the export removed, the next sign-in is recorded but not exported.
    idp.set_log_delivery_configuration(UserPoolId=pool_id, LogConfigurations=[])
    public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "erin", "PASSWORD": PASSWORD}
    )
    assert len(idp.admin_list_user_auth_events(UserPoolId=pool_id, Username="erin")["AuthEvents"]) == 3
    assert len(exported(gatehouse, pool_id, timeout=0)) == 2
