"""Device SRP (DEVICE_PASSWORD_VERIFIER) against pycognito's client side: the verifier ConfirmDevice receives
(``generate_hash_device``), the server's challenge, and the client's proof with the device secret."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from pycognito.aws_srp import AWSSRP, generate_hash_device  # type: ignore[import-untyped]

from gateway.services.srp import SrpVerifier, format_srp_timestamp, start_srp, verify_device_claim

GROUP = "-a1B2c3D4e"
DEVICE = "us-east-1_2b7f6c1e-8d8a-4f0e-9c55-0123456789ab"


def registered() -> tuple[str, SrpVerifier]:
    """The device secret, and the verifier the server keeps from ConfirmDevice."""
    password, config = generate_hash_device(GROUP, DEVICE)
    return password, SrpVerifier(
        salt_hex=base64.b64decode(config["Salt"]).hex(),
        verifier_hex=base64.b64decode(config["PasswordVerifier"]).hex(),
    )


def answer(password: str, verifier: SrpVerifier, *, group: str = GROUP) -> tuple[dict[str, Any], Any, str]:
    client = AWSSRP(
        username="dev",
        password="unused",
        pool_id="us-east-1_Pool12345",
        client_id="c",
        client=object(),
        device_key=DEVICE,
        device_group_key=group,
        device_password=password,
    )
    challenge = start_srp(verifier)
    responses = client.process_device_challenge(
        {
            "USERNAME": "dev",
            "SALT": challenge.salt_hex,
            "SRP_B": challenge.B_hex,
            "SECRET_BLOCK": challenge.secret_block,
        }
    )
    return responses, challenge, f"{client.large_a_value:x}"


def check(responses: dict[str, Any], challenge: Any, srp_a: str, verifier: SrpVerifier) -> bool:
    return verify_device_claim(
        device_group_key=GROUP,
        device_key=DEVICE,
        verifier=verifier,
        challenge=challenge,
        srp_a_hex=srp_a,
        timestamp=responses["TIMESTAMP"],
        claim_signature_b64=responses["PASSWORD_CLAIM_SIGNATURE"],
    )


def test_the_device_secret_proves_the_device() -> None:
    password, verifier = registered()
    responses, challenge, srp_a = answer(password, verifier)
    assert responses["DEVICE_KEY"] == DEVICE
    assert check(responses, challenge, srp_a, verifier) is True


def test_another_secret_group_or_timestamp_does_not() -> None:
    password, verifier = registered()
    responses, challenge, srp_a = answer("some other secret", verifier)
    assert check(responses, challenge, srp_a, verifier) is False
    responses, challenge, srp_a = answer(password, verifier, group="-zzzzzzzzz")
    assert check(responses, challenge, srp_a, verifier) is False
    responses, challenge, srp_a = answer(password, verifier)
    other_time = format_srp_timestamp(datetime(2001, 1, 1, tzinfo=UTC))
    assert check({**responses, "TIMESTAMP": other_time}, challenge, srp_a, verifier) is False
    # A different device's verifier (another registration) does not accept this device's proof.
    _, other_verifier = registered()
    assert check(responses, challenge, srp_a, other_verifier) is False
