"""The pure parts of threat protection and rate limiting: the risk score and its reasons, context data, event
ids, configuration checks, the breached-passwords corpus, token buckets and the source address."""

from __future__ import annotations

import ipaddress
import time

import pytest

from gateway.errors import InvalidParameterException
from gateway.services.breached import BreachedPasswords
from gateway.services.ratelimit import TokenBuckets, source_address
from gateway.services.risk import (
    HIGH,
    LOW,
    MEDIUM,
    SignInFacts,
    assess,
    facts_from_context,
    new_event_id,
    validate_risk_configuration,
)
from gateway.storage.base import AuthEventRecord

NOW = 1_800_000_000.0


def event(
    response: str = "Pass",
    *,
    at: float = NOW - 86400,
    device: str = "d1",
    network: str = "198.51.100.0/24",
    feedback: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> AuthEventRecord:
    body = {
        "EventType": "SignIn",
        "EventResponse": response,
        "Gatehouse": {"device": device, "network": network, "lat": lat, "lon": lon},
    }
    if feedback:
        body["EventFeedback"] = {"FeedbackValue": feedback}
    return AuthEventRecord("us-east-1_X", "u", new_event_id(at), at, body)


HOME = SignInFacts(ip="198.51.100.7", network="198.51.100.0/24", device="d1", device_name="Firefox")


def test_first_sign_in_has_nothing_to_compare_with() -> None:
    away = SignInFacts(ip="192.0.2.1", network="192.0.2.0/24", device="d2")
    assert assess(away, [], NOW).level == LOW


def test_known_device_and_network_are_low_and_new_ones_add_up() -> None:
    history = [event()]
    assert assess(HOME, history, NOW) == assess(HOME, history, NOW)
    assert assess(HOME, history, NOW).level == LOW
    new_network = SignInFacts(ip="192.0.2.1", network="192.0.2.0/24", device="d1")
    medium = assess(new_network, history, NOW)
    assert (medium.level, medium.reasons) == (MEDIUM, ("new network (192.0.2.0/24)",))
    both = assess(SignInFacts(ip="192.0.2.1", network="192.0.2.0/24", device="d2", device_name="curl"), history, NOW)
    assert both.level == HIGH
    assert both.reasons == ("new device (curl)", "new network (192.0.2.0/24)")


def test_failed_and_disowned_sign_ins_teach_nothing_and_feedback_valid_does() -> None:
    away = SignInFacts(ip="192.0.2.1", network="192.0.2.0/24", device="d2")
    history = [event(), event("Fail", device="d2", network="192.0.2.0/24")]
    assert assess(away, history, NOW).level == HIGH
    disowned = [event(), event(device="d2", network="192.0.2.0/24", feedback="Invalid")]
    assert assess(away, disowned, NOW).level == HIGH
    confirmed = [event(), event("Fail", device="d2", network="192.0.2.0/24", feedback="Valid")]
    assert assess(away, confirmed, NOW).level == LOW


def test_failure_velocity_counts_recent_failures_only() -> None:
    old = [event("Fail", at=NOW - 3600) for _ in range(20)]
    assert assess(HOME, [event(), *old], NOW).level == LOW
    recent = [event("Fail", at=NOW - 60) for _ in range(3)]
    assessment = assess(HOME, [event(), *recent], NOW)
    assert (assessment.level, assessment.reasons) == (MEDIUM, ("3 failed attempts in the last 15 minutes",))
    many = [event("Fail", at=NOW - 60) for _ in range(10)]
    assert assess(HOME, [event(), *many], NOW).level == HIGH


def test_impossible_travel_needs_distance_and_speed() -> None:
    paris = event(at=NOW - 1800, lat=48.8566, lon=2.3522)
    in_sydney = SignInFacts(**{**HOME.__dict__, "latitude": -33.87, "longitude": 151.21})
    travel = assess(in_sydney, [paris], NOW)
    assert travel.level == HIGH and travel.reasons[0].startswith("impossible travel (169")
    # A day later the same trip is possible; a short hop is never impossible.
    assert assess(in_sydney, [event(at=NOW - 86400, lat=48.8566, lon=2.3522)], NOW).level == LOW
    in_versailles = SignInFacts(**{**HOME.__dict__, "latitude": 48.80, "longitude": 2.13})
    assert assess(in_versailles, [paris], NOW).level == LOW


def test_facts_from_context_data() -> None:
    facts = facts_from_context(
        {
            "IpAddress": "ignored",
            "HttpHeaders": [
                {"headerName": "User-Agent", "headerValue": "Firefox"},
                {"headerName": "CloudFront-Viewer-Latitude", "headerValue": "48.85"},
                {"headerName": "CloudFront-Viewer-Longitude", "headerValue": "2.35"},
                {"headerName": "CloudFront-Viewer-Country", "headerValue": "FR"},
                {"headerName": "CloudFront-Viewer-City", "headerValue": "Paris"},
            ],
        },
        "2001:db8:1:2::5",
    )
    assert (facts.ip, facts.network, facts.device_name) == ("2001:db8:1:2::5", "2001:db8:1::/48", "Firefox")
    assert (facts.latitude, facts.longitude) == (48.85, 2.35)
    assert facts.context_json() == {
        "IpAddress": "2001:db8:1:2::5",
        "DeviceName": "Firefox",
        "City": "Paris",
        "Country": "FR",
    }
    # Hostile values: a bad address and an out-of-range or non-finite location are dropped, not trusted.
    odd = facts_from_context(
        {
            "HttpHeaders": [
                {"headerName": "CloudFront-Viewer-Latitude", "headerValue": "nan"},
                {"headerName": "CloudFront-Viewer-Longitude", "headerValue": "500"},
                {"headerValue": "no name"},
            ],
            "EncodedData": "opaque",
        },
        "not-an-ip",
    )
    assert (odd.network, odd.latitude, odd.longitude) == (None, None, None)
    assert odd.device is not None and odd.device_name and odd.device_name.startswith("Device ")


def test_event_ids_are_uuid7_and_sort_by_time() -> None:
    ids = [new_event_id(NOW + n) for n in range(5)]
    assert ids == sorted(ids)
    assert all(i[14] == "7" and i[19] in "89ab" for i in ids)
    assert len({new_event_id(NOW) for _ in range(100)}) == 100


@pytest.mark.parametrize(
    "request_members",
    [
        {"RiskExceptionConfiguration": {"BlockedIPRangeList": ["300.1.1.1/8"]}},
        {"AccountTakeoverRiskConfiguration": {"Actions": {"LowAction": {"Notify": True, "EventAction": "NO_ACTION"}}}},
        {"CompromisedCredentialsRiskConfiguration": {"EventFilter": [], "Actions": {"EventAction": "BLOCK"}}},
    ],
)
def test_invalid_configurations(request_members: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterException):
        validate_risk_configuration(request_members)


def test_valid_configuration_keeps_only_its_members() -> None:
    config = validate_risk_configuration(
        {
            "UserPoolId": "us-east-1_X",
            "CompromisedCredentialsRiskConfiguration": {
                "EventFilter": ["SIGN_IN", "SIGN_IN"],
                "Actions": {"EventAction": "BLOCK"},
            },
        }
    )
    assert config == {
        "CompromisedCredentialsRiskConfiguration": {"EventFilter": ["SIGN_IN"], "Actions": {"EventAction": "BLOCK"}}
    }


async def test_breached_corpus_is_loaded_once_and_ignores_case() -> None:
    corpus = BreachedPasswords()
    assert await corpus.is_compromised("Password1")
    assert await corpus.is_compromised("123456")
    assert not await corpus.is_compromised("Zebra-orbit-lantern-42")
    assert len(corpus) >= 10_000
    started = time.perf_counter()
    for _ in range(1000):
        await corpus.is_compromised("qwerty")
    assert time.perf_counter() - started < 0.5  # a set look-up, not a scan


def test_token_bucket_burst_refill_and_bound() -> None:
    now = [0.0]
    buckets = TokenBuckets(2.0, 3, max_buckets=2, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert [buckets.take("a") for _ in range(2)] == [True, False]
    now[0] += 100  # never more than the burst
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]
    # At most two keys kept: a third drops the least recently used, which then starts full again.
    assert buckets.take("b") and buckets.take("c")
    assert [buckets.take("a") for _ in range(3)] == [True, True, True]


def test_source_address_believes_forwarded_for_only_from_trusted_proxies() -> None:
    trusted = (ipaddress.ip_network("10.0.0.0/8"),)
    assert source_address("203.0.113.1", "198.51.100.1", trusted) == "203.0.113.1"
    assert source_address("10.1.2.3", "198.51.100.1", trusted) == "198.51.100.1"
    assert source_address("10.1.2.3", "1.1.1.1, 198.51.100.1, 10.9.9.9", trusted) == "198.51.100.1"
    assert source_address("10.1.2.3", "10.5.5.5", trusted) == "10.1.2.3"
    assert source_address("10.1.2.3", "garbage", trusted) == "10.1.2.3"
    assert source_address("10.1.2.3", "198.51.100.1", ()) == "10.1.2.3"
