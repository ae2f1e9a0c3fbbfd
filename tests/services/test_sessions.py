"""The user sessions service's pure parts: a session's DeviceType from a User-Agent, and its derived ids."""

from __future__ import annotations

import re

import pytest

from gateway.services.sessions import SessionService, describe_device

SESSION_ID = re.compile(r"^(tkn|sso)[a-z0-9]{25}$")


@pytest.mark.parametrize(
    ("agent", "device"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
            "Chrome on Windows",
        ),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36 Edg/120.0", "Edge on Windows"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "Firefox on Linux"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1", "Safari on iOS"),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        ("Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 lang/python#3.11.7", "Boto3 on Linux"),
        ("aws-sdk-js/3.500.0 os/macOS#14.0 lang/js md/browser#Chrome_120", "aws-sdk-js on macOS"),
        ("curl/8.5.0", "curl"),
        ("Mozilla/5.0", "unknown"),
        ("   ", None),
        (None, None),
    ],
)
def test_device_of_a_user_agent(agent: str | None, device: str | None) -> None:
    assert describe_device(agent) == device


def test_a_very_long_user_agent_is_described_briefly() -> None:
    described = describe_device("x" * 100_000 + " Windows")
    assert described is not None and len(described) <= 1024


def test_session_ids_are_stable_opaque_and_keyed() -> None:
    one = SessionService(None, None, b"k" * 32)  # type: ignore[arg-type]
    other = SessionService(None, None, b"o" * 32)  # type: ignore[arg-type]
    origin = "5f0c2f6e-origin-jti"
    token_id = one.token_session_id(origin)
    assert SESSION_ID.match(token_id) and token_id.startswith("tkn")
    assert token_id == one.token_session_id(origin)
    assert token_id != other.token_session_id(origin)
    assert origin not in token_id
    sso_id = one.sso_session_id("ab" * 32)
    assert SESSION_ID.match(sso_id) and sso_id.startswith("sso")
    # The same value names different sessions as a token session and as an SSO session.
    assert one.sso_session_id(origin)[3:] != token_id[3:]
