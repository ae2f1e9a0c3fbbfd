"""The config file's sign-in security keys (mfa, devices, sign_in, threat_protection) and
server.code_send_limits: what they load to, the errors for wrong values, and applying them to a real store,
idempotently."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config_file import GatehouseConfig, apply_config, load_config, server_settings
from gateway.services.code_limits import CodeSendLimitSettings
from gateway.services.container import Services
from gateway.settings import Settings
from tests.test_config_file import Write, _services, errors_of

POOL = """\
version: 1
pools:
  - id: us-east-1_Secure01
    name: secure
"""

FULL = (
    POOL
    + """\
    mfa:
      mode: ON
      software_token: true
      sms: {message: "Your code is {####}"}
      email: true
    devices:
      challenge_required_on_new_device: true
      remembered_on_user_prompt: true
    sign_in:
      first_factors: [PASSWORD, EMAIL_OTP, WEB_AUTHN]
      passkeys: {relying_party_id: auth.example.com, user_verification: required}
    threat_protection:
      mode: ENFORCED
      risk:
        CompromisedCredentialsRiskConfiguration:
          Actions: {EventAction: BLOCK}
        AccountTakeoverRiskConfiguration:
          Actions:
            HighAction: {EventAction: BLOCK, Notify: false}
        RiskExceptionConfiguration:
          SkippedIPRangeList: [10.0.0.0/8]
"""
)


@pytest.fixture
def write(tmp_path: Path) -> Write:
    def write(text: str, name: str = "gatehouse.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def load(write: Write, text: str) -> GatehouseConfig:
    return load_config(write(text), environ={})


# --- loading ---------------------------------------------------------------------------------------------


def test_the_keys_become_the_pools_cognito_request(write: Write) -> None:
    pool = load(write, FULL).pools[0]
    request = pool.cognito_request()
    assert request["MfaConfiguration"] == "ON"
    assert request["DeviceConfiguration"] == {
        "ChallengeRequiredOnNewDevice": True,
        "DeviceOnlyRememberedOnUserPrompt": True,
    }
    assert request["Policies"]["SignInPolicy"] == {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP", "WEB_AUTHN"]}
    assert request["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert pool.mfa is not None
    mfa = pool.mfa.request()
    assert mfa["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    assert mfa["SmsMfaConfiguration"] == {"SmsAuthenticationMessage": "Your code is {####}"}
    assert "{####}" in mfa["EmailMfaConfiguration"]["Message"] and mfa["EmailMfaConfiguration"]["Subject"]


def test_password_policy_and_sign_in_policy_share_policies(write: Write) -> None:
    text = POOL + "    password_policy: {minimum_length: 12}\n    sign_in: {first_factors: [PASSWORD, SMS_OTP]}\n"
    policies = load(write, text).pools[0].cognito_request()["Policies"]
    assert policies["PasswordPolicy"]["MinimumLength"] == 12
    assert policies["SignInPolicy"] == {"AllowedFirstAuthFactors": ["PASSWORD", "SMS_OTP"]}


def test_unquoted_on_and_off_are_modes(write: Write) -> None:
    pool = load(write, POOL + "    mfa: {mode: OFF}\n    threat_protection: {mode: OFF}\n").pools[0]
    assert pool.cognito_request()["MfaConfiguration"] == "OFF"
    assert pool.cognito_request()["UserPoolAddOns"] == {"AdvancedSecurityMode": "OFF"}


@pytest.mark.parametrize(
    ("extra", "where", "expected"),
    [
        ("    mfa: {mode: ON}\n", "pools[0].mfa", "at least one factor"),
        ("    mfa: {mode: SOMETIMES, software_token: true}\n", "pools[0].mfa.mode", "OFF"),
        ("    mfa: {mode: OPTIONAL, sms: {message: no code here}}\n", "pools[0].mfa.sms.message", "{####}"),
        ("    mfa: {mode: OPTIONAL, email: {message: no code}}\n", "pools[0].mfa.email.message", "{####}"),
        ("    mfa: {mode: OPTIONAL, software_token: yes-please}\n", "pools[0].mfa.software_token", ""),
        ("    mfa: {mode: OPTIONAL, totp: true}\n", "pools[0].mfa.totp", "unknown key"),
        (
            "    mfa_configuration: OPTIONAL\n    mfa: {mode: OPTIONAL, software_token: true}\n",
            "pools[0].mfa_configuration",
            "mfa or mfa_configuration",
        ),
        ("    sign_in: {first_factors: [PASSWORD, MAGIC_LINK]}\n", "pools[0].sign_in.first_factors[1]", "EMAIL_OTP"),
        ("    sign_in: {first_factors: [PASSWORD, PASSWORD]}\n", "pools[0].sign_in.first_factors", "once"),
        ("    sign_in: {first_factors: []}\n", "pools[0].sign_in.first_factors", ""),
        ("    sign_in: {passkeys: {relying_party_id: 'https://x/'}}\n", "pools[0].sign_in.passkeys", "domain"),
        (
            "    sign_in: {passkeys: {user_verification: always}}\n",
            "pools[0].sign_in.passkeys.user_verification",
            "required",
        ),
        ("    devices: {remember: true}\n", "pools[0].devices.remember", "unknown key"),
        (
            "    mfa: {mode: OPTIONAL, sms: true}\n    cognito: {SmsAuthenticationMessage: 'B {####}'}\n",
            "pools[0].cognito.SmsAuthenticationMessage",
            "mfa.sms.message",
        ),
        ("    threat_protection: {mode: FULL}\n", "pools[0].threat_protection.mode", "ENFORCED"),
        (
            "    threat_protection: {mode: AUDIT, risk: {UserPoolId: x}}\n",
            "pools[0].threat_protection.risk",
            "UserPoolId",
        ),
        (
            "    threat_protection:\n      mode: AUDIT\n      risk:\n        RiskExceptionConfiguration:\n"
            "          BlockedIPRangeList: [not-an-ip]\n",
            "pools[0].threat_protection.risk",
            "risk configuration",
        ),
        (
            "    threat_protection:\n      mode: AUDIT\n      risk:\n        CompromisedCredentialsRiskConfiguration:\n"
            "          Actions: {EventAction: EXPLODE}\n",
            "pools[0].threat_protection.risk",
            "risk configuration",
        ),
        (
            "    threat_protection:\n      mode: AUDIT\n      risk:\n        AccountTakeoverRiskConfiguration:\n"
            "          Actions: {}\n",
            "pools[0].threat_protection.risk",
            "risk configuration",
        ),
    ],
)
def test_wrong_values_are_named_with_their_key(
    write: Write,
    extra: str,
    where: str,
    expected: str,
) -> None:
    message = str(errors_of(write(POOL + extra)))
    assert f"{where}:" in message, message
    assert expected in message, message


def test_code_send_limits(write: Write) -> None:
    text = "version: 1\nserver:\n  code_send_limits: {max_codes: 3, window_seconds: 60}\n"
    settings = server_settings(load(write, text), Settings())
    assert settings.code_send_limits == CodeSendLimitSettings(max_codes=3, window_seconds=60.0)
    off = server_settings(load(write, "version: 1\nserver:\n  code_send_limits: {max_codes: 0}\n"), Settings())
    assert off.code_send_limits == CodeSendLimitSettings(max_codes=0, window_seconds=900.0)
    assert Settings().code_send_limits == CodeSendLimitSettings(max_codes=5, window_seconds=900.0)
    for bad, where in (("{max_codes: -1}", "max_codes"), ("{window_seconds: 0}", "window_seconds"),
                       ("{max: 3}", "max")):  # fmt: skip
        message = str(errors_of(write(f"version: 1\nserver:\n  code_send_limits: {bad}\n")))
        assert f"server.code_send_limits.{where}:" in message, message


# --- applying ----------------------------------------------------------------------------------------------


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    services = await _services(tmp_path)
    yield services
    await services.messenger.close()
    await services.store.close()


async def _state(services: Services) -> dict[str, Any]:
    pool_id = "us-east-1_Secure01"
    return {
        "pool": await services.store.get_pool(pool_id),
        "risk": await services.store.get_risk_configuration(pool_id, None),
    }


async def test_apply_sets_everything_and_a_second_apply_writes_nothing(services: Services, write: Write) -> None:
    await apply_config(services, load(write, FULL))
    pool = await services.pools.get_pool("us-east-1_Secure01", fresh=True)
    assert pool.mfa_configuration == "ON"
    assert pool.software_token_mfa_enabled and pool.sms_mfa_enabled and pool.email_mfa_enabled
    config = services.pools.mfa_config(pool)
    assert config["SmsMfaConfiguration"]["SmsAuthenticationMessage"] == "Your code is {####}"
    assert config["WebAuthnConfiguration"]["RelyingPartyId"] == "auth.example.com"
    assert config["WebAuthnConfiguration"]["UserVerification"] == "required"
    described = await services.pools.describe_pool(pool.id)
    assert described["DeviceConfiguration"]["ChallengeRequiredOnNewDevice"] is True
    assert described["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert described["Policies"]["SignInPolicy"]["AllowedFirstAuthFactors"] == ["PASSWORD", "EMAIL_OTP", "WEB_AUTHN"]
    risk = await services.risk.describe_configuration(pool.id, None)
    assert risk["AccountTakeoverRiskConfiguration"]["Actions"]["HighAction"]["EventAction"] == "BLOCK"
    assert risk["RiskExceptionConfiguration"]["SkippedIPRangeList"] == ["10.0.0.0/8"]

    before = await _state(services)
    await apply_config(services, load(write, FULL))  # as at a restart
    assert await _state(services) == before


async def test_a_changed_file_changes_the_pool_and_owns_its_factors(services: Services, write: Write) -> None:
    await apply_config(services, load(write, FULL))
    lighter = POOL + "    mfa: {mode: OPTIONAL, software_token: true}\n    threat_protection: {mode: AUDIT}\n"
    await apply_config(services, load(write, lighter))
    pool = await services.pools.get_pool("us-east-1_Secure01", fresh=True)
    assert pool.mfa_configuration == "OPTIONAL"
    assert pool.software_token_mfa_enabled
    assert not pool.sms_mfa_enabled and not pool.email_mfa_enabled  # left out of the file: off
    described = await services.pools.describe_pool(pool.id)
    assert described["UserPoolAddOns"] == {"AdvancedSecurityMode": "AUDIT"}
    assert "DeviceConfiguration" not in described  # as UpdateUserPool does for a member left out
    # The risk configuration the file no longer names is left as it was (it may come from the API).
    assert (await services.store.get_risk_configuration(pool.id, None)) is not None


async def test_factors_set_through_the_api_are_left_alone_when_the_file_says_nothing(
    services: Services,
    write: Write,
) -> None:
    """A file without ``mfa`` owns the mode (a CreateUserPool member, OFF by default) but not the factors."""
    await apply_config(services, load(write, POOL))
    await services.pools.set_mfa_config(
        "us-east-1_Secure01",
        {"SoftwareTokenMfaConfiguration": {"Enabled": True}, "EmailMfaConfiguration": {"Message": "{####}"}},
    )
    before = await _state(services)
    await apply_config(services, load(write, POOL))
    assert await _state(services) == before  # nothing written
    pool = await services.pools.get_pool("us-east-1_Secure01", fresh=True)
    assert pool.software_token_mfa_enabled and pool.email_mfa_enabled
