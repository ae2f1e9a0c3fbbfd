"""Log export of a user pool: SetLogDeliveryConfiguration / GetLogDeliveryConfiguration, and the records.

Cognito exports two kinds of log ("Exporting logs from Amazon Cognito user pools"):

- ``userNotification``, level ``ERROR``: email and SMS messages that could not be delivered, to a CloudWatch
  Logs log group only; any feature plan.
- ``userAuthEvents``, level ``INFO``: the threat-protection user-activity events (what AdminListUserAuthEvents
  lists), to one log group, Firehose stream or S3 bucket; Plus feature plan only, and produced only while
  threat protection is on (AUDIT or ENFORCED).

A pool has at most one configuration per kind. Gatehouse keeps it in the pool's settings and writes each record,
in Cognito's export schema (``eventTimestamp``, ``eventSource``, ``logLevel``, ``message``, ``logSourceId``),
into its own JSON log as a ``pool_log.exported`` event that names the destination ARN: a log shipper
(Fluent Bit, Vector, the CloudWatch agent) routes on ``destination`` to the group, stream or bucket. Gatehouse
reaches no AWS service itself.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from gateway.errors import FeatureUnavailableInTierException, InvalidParameterException
from gateway.logging import get_logger
from gateway.services.pools import LOG_DELIVERY_SETTING, PoolService, PoolView
from gateway.storage.base import PoolRecord

log = get_logger("gateway.pool_logs")

USER_NOTIFICATION: Final = "userNotification"
USER_AUTH_EVENTS: Final = "userAuthEvents"

# Each kind's only log level, and the destinations it may go to (the LogConfigurationType member names).
_LEVELS: Final = {USER_NOTIFICATION: "ERROR", USER_AUTH_EVENTS: "INFO"}
_DESTINATIONS: Final = {
    USER_NOTIFICATION: ("CloudWatchLogsConfiguration",),
    USER_AUTH_EVENTS: ("CloudWatchLogsConfiguration", "FirehoseConfiguration", "S3Configuration"),
}
# The record's eventSource for each kind, as the export schema spells it.
_RECORD_SOURCES: Final = {USER_NOTIFICATION: "USER_NOTIFICATION", USER_AUTH_EVENTS: "USER_ACTIVITY"}

# AuthEventType's RiskDecision as the user-activity export spells it (its example: "PASS" for no risk).
_RISK_DECISIONS: Final = {"NoRisk": "PASS", "AccountTakeover": "ACCOUNT_TAKEOVER", "Block": "BLOCK"}
# Each destination's ARN member and the resource it must name: arn:<partition>:<service>:<region>:<account>:...
_ARNS: Final = {
    "CloudWatchLogsConfiguration": (
        "LogGroupArn",
        re.compile(r"arn:[\w-]+:logs:[\w-]+:\d{12}:log-group:[\w./#-]{1,512}(:\*)?"),
        "a CloudWatch Logs log group",
    ),
    "FirehoseConfiguration": (
        "StreamArn",
        re.compile(r"arn:[\w-]+:firehose:[\w-]+:\d{12}:deliverystream/[\w.-]{1,64}"),
        "a Firehose stream",
    ),
    "S3Configuration": (
        "BucketArn",
        re.compile(r"arn:[\w-]+:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
        "an S3 bucket",
    ),
}


def check_log_configurations(pool: PoolView, configurations: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The configurations SetLogDeliveryConfiguration stores, each checked against Cognito's rules: one per event
    source, that source's level, exactly one destination of a kind it may use, an ARN of that kind of resource,
    and user-activity export only on the Plus plan."""
    stored: list[dict[str, Any]] = []
    seen: set[str] = set()
    for configuration in configurations:
        source = str(configuration.get("EventSource"))
        level = configuration.get("LogLevel")
        if source in seen:
            raise InvalidParameterException(f"Only one log configuration is allowed for EventSource {source}.")
        seen.add(source)
        if level != _LEVELS[source]:
            raise InvalidParameterException(
                f"LogLevel {level} is not supported for EventSource {source}: use {_LEVELS[source]}."
            )
        given = [member for member in _ARNS if configuration.get(member) is not None]
        allowed = _DESTINATIONS[source]
        if len(given) != 1:
            raise InvalidParameterException(
                f"A log configuration for EventSource {source} needs exactly one destination: "
                + " or ".join(allowed)
                + "."
            )
        destination = given[0]
        if destination not in allowed:
            raise InvalidParameterException(
                f"EventSource {source} can be delivered only with " + " or ".join(allowed) + "."
            )
        arn_member, pattern, what = _ARNS[destination]
        arn = (configuration.get(destination) or {}).get(arn_member)
        if not isinstance(arn, str) or pattern.fullmatch(arn) is None:
            raise InvalidParameterException(f"{destination}.{arn_member} must be the ARN of {what}.")
        if source == USER_AUTH_EVENTS and pool.settings.get("UserPoolTier", "ESSENTIALS") != "PLUS":
            raise FeatureUnavailableInTierException(
                "Exporting user activity logs (userAuthEvents) requires the Plus feature plan."
            )
        stored.append({"EventSource": source, "LogLevel": level, destination: {arn_member: arn}})
    return stored


async def set_log_delivery(pools: PoolService, pool_id: str, configurations: Sequence[Mapping[str, Any]]) -> PoolView:
    """SetLogDeliveryConfiguration: the pool's configurations replaced by these (an empty list removes them)."""
    stored = check_log_configurations(await pools.get_pool(pool_id), configurations)

    def change(record: PoolRecord) -> None:
        if stored:
            record.settings[LOG_DELIVERY_SETTING] = copy.deepcopy(stored)
        else:
            record.settings.pop(LOG_DELIVERY_SETTING, None)

    await pools.change_settings(pool_id, change)
    log.info("pool_log.configured", pool=pool_id, sources=[c["EventSource"] for c in stored])
    return await pools.get_pool(pool_id)


def log_delivery_configuration(pool: PoolView) -> dict[str, Any]:
    """LogDeliveryConfigurationType: the pool's configurations, none until one is set."""
    return {"UserPoolId": pool.id, "LogConfigurations": copy.deepcopy(pool.settings.get(LOG_DELIVERY_SETTING) or [])}


def _destination(pool: PoolView, source: str) -> str | None:
    for configuration in pool.settings.get(LOG_DELIVERY_SETTING) or ():
        if configuration.get("EventSource") == source:
            for member, (arn_member, _, _) in _ARNS.items():
                if member in configuration:
                    return str(configuration[member][arn_member])
    return None


def _export(pool: PoolView, source: str, destination: str, message: Mapping[str, Any]) -> None:
    record = {
        "eventTimestamp": str(int(time.time() * 1000)),
        "eventSource": _RECORD_SOURCES[source],
        "logLevel": _LEVELS[source],
        "message": dict(message),
        "logSourceId": {"userPoolId": pool.id},
    }
    emit = log.error if source == USER_NOTIFICATION else log.info
    emit("pool_log.exported", pool=pool.id, event_source=source, destination=destination, record=record)


def export_notification_error(pool: PoolView, medium: str, purpose: str) -> None:
    """A userNotification record for a message the pool could not deliver (nothing when none is configured).
    The details name the medium and why it was sent, never the address or the code."""
    destination = _destination(pool, USER_NOTIFICATION)
    if destination is not None:
        details = f"{medium} message ({purpose}) failed to send"
        _export(pool, USER_NOTIFICATION, destination, {"details": details})


def export_user_activity(
    pool: PoolView, *, event_id: str, created_at: float, event: Mapping[str, Any], sub: str, username: str
) -> None:
    """A userAuthEvents record for a new auth event (nothing unless the pool is on the Plus plan and configured).
    Fields the event does not have are empty strings, as the export schema logs them."""
    destination = _destination(pool, USER_AUTH_EVENTS)
    if destination is None or pool.settings.get("UserPoolTier") != "PLUS":
        return
    risk = event.get("EventRisk") or {}
    context = event.get("EventContextData") or {}
    notes = event.get("Gatehouse") or {}
    feedback = event.get("EventFeedback") or {}
    message = {
        "version": "1",
        "eventId": event_id,
        "eventType": str(event.get("EventType", "SignIn")),
        "userSub": sub,
        "userName": username,
        "userPoolId": pool.id,
        "clientId": str(notes.get("client") or ""),
        "creationDate": datetime.fromtimestamp(created_at, UTC).strftime("%a %b %d %H:%M:%S UTC %Y"),
        "eventResponse": str(event.get("EventResponse", "")),
        "riskLevel": str(risk.get("RiskLevel") or ""),
        "riskDecision": _RISK_DECISIONS.get(str(risk.get("RiskDecision")), ""),
        "challenges": [
            {"challengeName": c.get("ChallengeName"), "challengeResponse": c.get("ChallengeResponse")}
            for c in event.get("ChallengeResponses") or ()
        ],
        "deviceName": str(context.get("DeviceName") or ""),
        "ipAddress": str(context.get("IpAddress") or ""),
        "idpName": "",
        "compromisedCredentialDetected": "true" if risk.get("CompromisedCredentialsDetected") else "false",
        "city": str(context.get("City") or ""),
        "country": str(context.get("Country") or ""),
        "eventFeedbackValue": str(feedback.get("FeedbackValue") or ""),
        "eventFeedbackDate": "",
        "eventFeedbackProvider": str(feedback.get("Provider") or ""),
        "hasContextData": "true" if context else "false",
    }
    _export(pool, USER_AUTH_EVENTS, destination, message)
