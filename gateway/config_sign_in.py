"""The config file's sign-in security keys of a pool, and the server's limit on one-time codes sent.

::

    server:
      code_send_limits:          # per user: SMS and email codes (gateway/services/code_limits.py)
        max_codes: 5             # 0 turns the limit off
        window_seconds: 900
    pools:
      - id: us-east-1_Example01
        mfa:
          mode: OPTIONAL         # OFF | ON | OPTIONAL (Cognito's MfaConfiguration)
          software_token: true   # authenticator apps (TOTP)
          sms: true              # or {message: "Your code is {####}"}
          email:                 # or true
            subject: Your sign-in code
            message: Use {####} to sign in.
        devices:                 # DeviceConfiguration (device tracking)
          challenge_required_on_new_device: true
          remembered_on_user_prompt: true
        sign_in:
          first_factors: [PASSWORD, EMAIL_OTP, WEB_AUTHN]   # SignInPolicy.AllowedFirstAuthFactors
          passkeys:              # WebAuthnConfiguration
            relying_party_id: auth.example.com
            user_verification: required
        threat_protection:
          mode: ENFORCED         # UserPoolAddOns.AdvancedSecurityMode: OFF | AUDIT | ENFORCED
          risk:                  # SetRiskConfiguration's members, as the API takes them
            AccountTakeoverRiskConfiguration:
              Actions: {HighAction: {EventAction: BLOCK, Notify: false}}

``mfa.mode``, ``devices``, ``sign_in.first_factors`` and ``threat_protection.mode`` are CreateUserPool /
UpdateUserPool members and go into the pool's request with the rest of the pool. The factors and passkeys are
SetUserPoolMfaConfig's, and ``risk`` is SetRiskConfiguration's (for the pool, no client): those are applied
after the pool, and only when the store holds something else, so a second start writes nothing. A declared
``mfa`` owns the pool's factors: a factor it leaves out is turned off. Everything is checked when the file is
loaded, against Cognito's rules (a message needs ``{####}``; MFA that is ON needs a factor; the risk
configuration against botocore's model and threat protection's own checks).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from gateway.errors import GatehouseError
from gateway.services.code_limits import CodeSendLimitSettings
from gateway.services.mfa_codes import DEFAULT_EMAIL_MESSAGE, DEFAULT_EMAIL_SUBJECT, DEFAULT_SMS_MESSAGE
from gateway.services.pools import PoolView
from gateway.services.risk import validate_risk_configuration
from gateway.services.webauthn import webauthn_configuration

if TYPE_CHECKING:
    from gateway.services.container import Services

__all__ = [
    "CodeSendLimitsConfig",
    "DevicesConfig",
    "MfaConfig",
    "SignInConfig",
    "ThreatProtectionConfig",
    "apply_sign_in_security",
    "code_send_limit_settings",
    "sign_in_request_members",
]

FIRST_FACTORS = ("PASSWORD", "EMAIL_OTP", "SMS_OTP", "WEB_AUTHN")


def _expected(message: str) -> PydanticCustomError:
    # The config loader's error kind: its message says what was expected, and the loader adds the key path.
    return PydanticCustomError("gatehouse_config", "{summary}", {"summary": message})


def _on_off(value: object) -> object:
    # YAML 1.1 reads an unquoted OFF/ON as false/true.
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return value


def _with_code(value: str) -> str:
    if "{####}" not in value:
        raise _expected("expected a message containing {####} (where the code goes)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeSendLimitsConfig(_Model):
    """At most ``max_codes`` SMS and email codes sent to one user per ``window_seconds`` (sign-up and attribute
    verification, forgotten passwords, passwordless and MFA sign-in codes), counted in the store so the limit
    holds across workers. Past it Cognito's LimitExceededException (TooManyRequestsException on sign-in)."""

    max_codes: int | None = Field(None, ge=0, le=10_000, description="Default 5; 0 turns the limit off.")
    window_seconds: int | None = Field(None, ge=1, le=7 * 86400, description="Default 900 (15 minutes).")


def code_send_limit_settings(config: CodeSendLimitsConfig, base: CodeSendLimitSettings) -> CodeSendLimitSettings:
    changes: dict[str, Any] = {}
    if config.max_codes is not None:
        changes["max_codes"] = config.max_codes
    if config.window_seconds is not None:
        changes["window_seconds"] = float(config.window_seconds)
    return CodeSendLimitSettings(**{**base.__dict__, **changes})


class SmsFactorConfig(_Model):
    message: Annotated[str, Field(min_length=6, max_length=140)] | None = Field(
        None, description="SmsAuthenticationMessage; {####} is the code."
    )

    @field_validator("message")
    @classmethod
    def _has_code(cls, value: str | None) -> str | None:
        return value if value is None else _with_code(value)


class EmailFactorConfig(_Model):
    subject: Annotated[str, Field(min_length=1, max_length=140)] | None = None
    message: Annotated[str, Field(min_length=6, max_length=20_000)] | None = Field(
        None, description="The email's body; {####} is the code."
    )

    @field_validator("message")
    @classmethod
    def _has_code(cls, value: str | None) -> str | None:
        return value if value is None else _with_code(value)


def _factor(value: object) -> object:
    # `sms: true` turns the factor on with the default wording; `sms: false` leaves it off.
    if value is True:
        return {}
    if value is False:
        return None
    return value


class MfaConfig(_Model):
    """The pool's MFA: Cognito's MfaConfiguration and SetUserPoolMfaConfig's factors."""

    mode: Annotated[Literal["OFF", "ON", "OPTIONAL"], BeforeValidator(_on_off)] = Field(
        description="OFF, ON (every user) or OPTIONAL (users who turn a factor on)."
    )
    software_token: bool = Field(False, description="Authenticator apps (TOTP, SOFTWARE_TOKEN_MFA).")
    # The schema states what the file may hold (true, false or the mapping), not what _factor makes of it.
    sms: Annotated[
        SmsFactorConfig | None, BeforeValidator(_factor, json_schema_input_type=SmsFactorConfig | bool | None)
    ] = Field(None, description="SMS codes (SMS_MFA): true, or the message.")
    email: Annotated[
        EmailFactorConfig | None, BeforeValidator(_factor, json_schema_input_type=EmailFactorConfig | bool | None)
    ] = Field(None, description="Email codes (EMAIL_OTP): true, or the subject and message.")

    @model_validator(mode="after")
    def _a_factor_when_on(self) -> MfaConfig:
        if self.mode != "OFF" and not (self.software_token or self.sms or self.email):
            # Cognito refuses required MFA that no factor can satisfy, and optional MFA with no factor to turn on.
            raise _expected(f"expected at least one factor (software_token, sms or email) when mode is {self.mode}")
        return self

    def request(self) -> dict[str, Any]:
        """SetUserPoolMfaConfig's members (an empty factor configuration turns that factor off)."""
        sms: dict[str, Any] = {}
        if self.sms is not None:
            sms = {"SmsAuthenticationMessage": self.sms.message or DEFAULT_SMS_MESSAGE}
        email: dict[str, Any] = {}
        if self.email is not None:
            email = {
                "Subject": self.email.subject or DEFAULT_EMAIL_SUBJECT,
                "Message": self.email.message or DEFAULT_EMAIL_MESSAGE,
            }
        return {
            "MfaConfiguration": self.mode,
            "SoftwareTokenMfaConfiguration": {"Enabled": self.software_token},
            "SmsMfaConfiguration": sms,
            "EmailMfaConfiguration": email,
        }


class DevicesConfig(_Model):
    """Device tracking (Cognito's DeviceConfiguration)."""

    challenge_required_on_new_device: bool = Field(
        False, description="A new device must pass MFA before it is remembered."
    )
    remembered_on_user_prompt: bool = Field(
        False, description="Devices are remembered only when the user says so (UpdateDeviceStatus)."
    )

    def cognito(self) -> dict[str, Any]:
        return {
            "ChallengeRequiredOnNewDevice": self.challenge_required_on_new_device,
            "DeviceOnlyRememberedOnUserPrompt": self.remembered_on_user_prompt,
        }


class PasskeysConfig(_Model):
    """Passkeys (Cognito's WebAuthnConfiguration)."""

    relying_party_id: str | None = Field(None, description="The domain passkeys belong to (default: the host).")
    user_verification: Literal["required", "preferred"] | None = None
    factor_configuration: Literal["SINGLE_FACTOR", "MULTI_FACTOR_WITH_USER_VERIFICATION"] | None = None

    def cognito(self) -> dict[str, Any]:
        request = {
            member: value
            for member, value in (
                ("RelyingPartyId", self.relying_party_id),
                ("UserVerification", self.user_verification),
                ("FactorConfiguration", self.factor_configuration),
            )
            if value is not None
        }
        return request

    @model_validator(mode="after")
    def _valid(self) -> PasskeysConfig:
        try:
            webauthn_configuration(self.cognito())
        except GatehouseError as exc:
            raise _expected(f"expected a valid passkey configuration ({exc.message})") from None
        return self


class SignInConfig(_Model):
    """Which first factors USER_AUTH sign-in offers, and passkeys."""

    first_factors: list[Literal["PASSWORD", "EMAIL_OTP", "SMS_OTP", "WEB_AUTHN"]] | None = Field(
        None, min_length=1, description="SignInPolicy.AllowedFirstAuthFactors (default [PASSWORD])."
    )
    passkeys: PasskeysConfig | None = None

    @field_validator("first_factors")
    @classmethod
    def _once_each(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise _expected("expected each factor once")
        if value is not None and "PASSWORD" not in value:
            # Cognito keeps the password a first factor (AllowedFirstAuthFactors must include PASSWORD).
            raise _expected("expected PASSWORD among the factors")
        return value


class ThreatProtectionConfig(_Model):
    """Threat protection (UserPoolAddOns.AdvancedSecurityMode) and the pool's risk configuration."""

    mode: Annotated[Literal["OFF", "AUDIT", "ENFORCED"], BeforeValidator(_on_off)] = Field(
        description="OFF, AUDIT (assess and record) or ENFORCED (also act)."
    )
    risk: dict[str, Any] | None = Field(
        None,
        description="SetRiskConfiguration's members for the pool (CompromisedCredentialsRiskConfiguration, "
        "AccountTakeoverRiskConfiguration, RiskExceptionConfiguration), as the API takes them.",
    )

    @field_validator("risk")
    @classmethod
    def _valid_risk(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        # Imported here: the API model is loaded lazily, and this module is imported by the settings' loader.
        from gateway.api.model import ServiceModel

        unknown = sorted(set(value) - {"CompromisedCredentialsRiskConfiguration", "AccountTakeoverRiskConfiguration",
                                       "RiskExceptionConfiguration"})  # fmt: skip
        if unknown:
            raise _expected(f"expected only SetRiskConfiguration's configuration members, not {', '.join(unknown)}")
        try:
            ServiceModel.load("cognito-idp").validate_input(
                "SetRiskConfiguration", {"UserPoolId": "us-east-1_Check", **copy.deepcopy(value)}
            )
            validate_risk_configuration(value)
        except GatehouseError as exc:
            raise _expected(f"expected a valid risk configuration ({exc.message})") from None
        return value


def sign_in_request_members(
    mfa: MfaConfig | None,
    devices: DevicesConfig | None,
    sign_in: SignInConfig | None,
    threat_protection: ThreatProtectionConfig | None,
) -> dict[str, Any]:
    """The CreateUserPool / UpdateUserPool members these keys set."""
    request: dict[str, Any] = {}
    if mfa is not None:
        request["MfaConfiguration"] = mfa.mode
    if devices is not None:
        request["DeviceConfiguration"] = devices.cognito()
    if sign_in is not None and sign_in.first_factors is not None:
        request["Policies"] = {"SignInPolicy": {"AllowedFirstAuthFactors": list(sign_in.first_factors)}}
    if threat_protection is not None:
        request["UserPoolAddOns"] = {"AdvancedSecurityMode": threat_protection.mode}
    return request


def _differs(pool: PoolView, request: Mapping[str, Any]) -> bool:
    """Whether SetUserPoolMfaConfig with ``request`` would change what the pool holds."""
    settings = pool.settings
    for member, value in request.items():
        if member == "MfaConfiguration":
            if pool.mfa_configuration != value:
                return True
        elif member == "SoftwareTokenMfaConfiguration":
            if pool.software_token_mfa_enabled != bool(value.get("Enabled")):
                return True
        elif member == "WebAuthnConfiguration":
            if (settings.get(member) or {}) != webauthn_configuration(value):
                return True
        elif (settings.get(member) or {}) != value:
            return True
    return False


async def apply_sign_in_security(
    services: Services,
    pool: PoolView,
    mfa: MfaConfig | None,
    sign_in: SignInConfig | None,
    threat_protection: ThreatProtectionConfig | None,
) -> None:
    """Make the pool's MFA factors, passkey configuration and risk configuration those of the file (when it
    declares them); nothing is written when the store already holds them."""
    request: dict[str, Any] = mfa.request() if mfa is not None else {}
    if sign_in is not None and sign_in.passkeys is not None:
        request["WebAuthnConfiguration"] = sign_in.passkeys.cognito()
    if request and _differs(pool, request):
        await services.pools.set_mfa_config(pool.id, request)
    if threat_protection is not None and threat_protection.risk is not None:
        wanted = validate_risk_configuration(threat_protection.risk)
        stored = await services.store.get_risk_configuration(pool.id, None)
        if stored is None or stored.config != wanted:
            await services.risk.set_configuration(pool.id, None, threat_protection.risk)
