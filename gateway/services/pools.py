"""User pools and their app clients: Cognito's CreateUserPool ... DeleteUserPoolClient.

A pool's and a client's settings are kept in Cognito's own shape (UserPoolType, UserPoolClientType), so
Describe answers are the stored settings plus the computed members.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hmac
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.errors import (
    ConcurrentModificationException,
    FeatureUnavailableInTierException,
    GatehouseError,
    InternalErrorException,
    InvalidParameterException,
    LimitExceededException,
    ResourceNotFoundException,
    TooManyRequestsException,
)
from gateway.ids import new_client_id, new_client_secret, new_pool_id, sha256_hex
from gateway.services.change_stamp import ChangeStamps
from gateway.services.custom_sender import KMS_KEY_ARN
from gateway.services.messaging import check_email_settings
from gateway.services.schema import add_custom_attributes, build_schema, required_attributes
from gateway.services.views import RecordView
from gateway.services.webauthn import webauthn_configuration, webauthn_settings
from gateway.storage.base import AlreadyExists, ClientRecord, NotFound, PoolRecord, Store, VersionConflict

log = structlog.get_logger("gateway.pools")

# Members of CreateUserPool kept verbatim in the pool's settings.
_POOL_SETTINGS = (
    "Policies",
    "DeletionProtection",
    "LambdaConfig",
    "AutoVerifiedAttributes",
    "AliasAttributes",
    "UsernameAttributes",
    "SmsVerificationMessage",
    "EmailVerificationMessage",
    "EmailVerificationSubject",
    "VerificationMessageTemplate",
    "SmsAuthenticationMessage",
    "MfaConfiguration",
    "UserAttributeUpdateSettings",
    "DeviceConfiguration",
    "EmailConfiguration",
    "SmsConfiguration",
    "UserPoolTags",
    "AdminCreateUserConfig",
    "UserPoolAddOns",
    "UsernameConfiguration",
    "AccountRecoverySetting",
    "UserPoolTier",
    "IssuerConfiguration",
    "KeyConfiguration",
    "DcrConfiguration",
    "AcrConfiguration",
)
# UpdateUserPool may not change these (Cognito fixes them at creation).
_IMMUTABLE_POOL_SETTINGS = ("AliasAttributes", "UsernameAttributes", "UsernameConfiguration")
# Members for features Gatehouse does not have, taken (and described back) only with the values that say so
# (_check_fixed_features): the pool's tokens come from its own issuer on this server, ``<issuer base>/<pool
# id>``, as the ORIGINAL issuer serves each pool from one place (the UPDATED one is hosted in several regions);
# no KMS key of the caller's protects its data (AWS_OWNED_KEY without a KmsKeyArn); no app client registers
# itself (DcrConfiguration EnableStatus Disabled); tokens carry no ``acr`` claim to rename (an empty
# AcrConfiguration). UpdateUserPool keeps them when left out (DcrConfiguration: "If you omit this parameter,
# Amazon Cognito keeps the existing configuration").
_FIXED_FEATURE_SETTINGS = ("IssuerConfiguration", "KeyConfiguration", "DcrConfiguration", "AcrConfiguration")

_CLIENT_SETTINGS = (
    "RefreshTokenValidity",
    "AccessTokenValidity",
    "IdTokenValidity",
    "TokenValidityUnits",
    "ReadAttributes",
    "WriteAttributes",
    "ExplicitAuthFlows",
    "SupportedIdentityProviders",
    "CallbackURLs",
    "LogoutURLs",
    "DefaultRedirectURI",
    "AllowedOAuthFlows",
    "AllowedOAuthScopes",
    "AllowedOAuthFlowsUserPoolClient",
    "AnalyticsConfiguration",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "EnablePropagateAdditionalUserContextData",
    "AuthSessionValidity",
    "RefreshTokenRotation",
)

# Cognito's policy for a pool created (or updated) without Policies.PasswordPolicy.
DEFAULT_PASSWORD_POLICY: dict[str, Any] = {
    "MinimumLength": 8,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
    "TemporaryPasswordValidityDays": 7,
}
# A PasswordPolicy given in part: the API's defaults for the members left out (booleans false).
_PARTIAL_PASSWORD_POLICY: dict[str, Any] = {
    "MinimumLength": 8,
    "RequireUppercase": False,
    "RequireLowercase": False,
    "RequireNumbers": False,
    "RequireSymbols": False,
    "TemporaryPasswordValidityDays": 7,
}
# How long a process trusts the pool and client settings it read (see PoolService).
CACHE_SECONDS = 2.0
# The explicit auth flow of GetClientToken (machine-to-machine access tokens through the API).
CLIENT_TOKEN_FLOW = "ALLOW_CLIENT_TOKEN_AUTH"
# The explicit auth flows of GetDerivedToken (OAuth 2.0 Token Exchange, RFC 8693): exchanging a user's token
# without an actor token (impersonation) and with one (delegation).
IMPERSONATION_FLOW = "ALLOW_TOKEN_EXCHANGE_IMPERSONATION"
DELEGATION_FLOW = "ALLOW_TOKEN_EXCHANGE_DELEGATION"
TOKEN_EXCHANGE_FLOWS = frozenset({IMPERSONATION_FLOW, DELEGATION_FLOW})
DEFAULT_EXPLICIT_AUTH_FLOWS = ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_CUSTOM_AUTH"]
# Pool settings that SetUserPoolMfaConfig owns and UserPoolType does not report (DescribeUserPool leaves them out).
_MFA_ONLY_SETTINGS = (
    "SoftwareTokenMfaConfiguration",
    "SmsMfaConfiguration",
    "EmailMfaConfiguration",
    "WebAuthnConfiguration",
)
MFA_CONFIGURATIONS = ("OFF", "ON", "OPTIONAL")
# Pool settings that SetUserPoolSessionConfiguration and SetUserPoolClientSessionConfiguration own
# (gateway/services/sessions.py): UserPoolType does not report them and UpdateUserPool keeps them.
POOL_SESSION_SETTING = "UserSessionConfiguration"
CLIENT_SESSION_SETTINGS = "ClientSessionConfigurations"
_SESSION_SETTINGS = (POOL_SESSION_SETTING, CLIENT_SESSION_SETTINGS)
# SetLogDeliveryConfiguration's LogConfigurations (gateway/services/log_delivery.py): not a UserPoolType member.
LOG_DELIVERY_SETTING = "LogDeliveryConfiguration"
# Settings of their own Set* operations: DescribeUserPool does not show them, UpdateUserPool keeps them.
_OWN_OPERATION_SETTINGS = (*_MFA_ONLY_SETTINGS, *_SESSION_SETTINGS, LOG_DELIVERY_SETTING)


def full_password_policy(policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """A PasswordPolicyType with every member filled in as Cognito's API does: none given, Cognito's
    default policy; given in part, the members left out take the API's defaults (Require* false,
    MinimumLength 8, TemporaryPasswordValidityDays 7)."""
    if policy is None:
        return dict(DEFAULT_PASSWORD_POLICY)
    return {**_PARTIAL_PASSWORD_POLICY, **policy}


_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# (default value, default unit, minimum seconds, maximum seconds) per token, from Cognito's quotas.
_TOKEN_LIMITS = {
    "AccessToken": (60, "minutes", 5 * 60, 86400),
    "IdToken": (60, "minutes", 5 * 60, 86400),
    "RefreshToken": (30, "days", 60 * 60, 3650 * 86400),
}
# The unit of a validity value sent without one (TokenValidityUnitsType).
_API_UNITS = {"AccessToken": "hours", "IdToken": "hours", "RefreshToken": "days"}
_SETTINGS_KEY = {
    "AccessToken": "AccessTokenValidity",
    "IdToken": "IdTokenValidity",
    "RefreshToken": "RefreshTokenValidity",
}


@dataclass(frozen=True)
class PoolView(RecordView[PoolRecord]):
    """What services read of a pool, with Cognito's defaults filled in."""

    @property
    def password_policy(self) -> dict[str, Any]:
        return full_password_policy((self.settings.get("Policies") or {}).get("PasswordPolicy"))

    @property
    def schema(self) -> list[dict[str, Any]]:
        return list(self.settings.get("SchemaAttributes") or [])

    @property
    def username_attributes(self) -> list[str]:
        return list(self.settings.get("UsernameAttributes") or [])

    @property
    def alias_attributes(self) -> list[str]:
        return list(self.settings.get("AliasAttributes") or [])

    @property
    def case_sensitive(self) -> bool:
        return bool((self.settings.get("UsernameConfiguration") or {}).get("CaseSensitive", True))

    @property
    def auto_verified(self) -> list[str]:
        return list(self.settings.get("AutoVerifiedAttributes") or [])

    @property
    def admin_create_user_config(self) -> dict[str, Any]:
        return dict(self.settings.get("AdminCreateUserConfig") or {})

    @property
    def mfa_configuration(self) -> str:
        """OFF, ON (every user signs in with a second factor) or OPTIONAL (those who turned one on)."""
        return str(self.settings.get("MfaConfiguration") or "OFF")

    @property
    def software_token_mfa_enabled(self) -> bool:
        return bool((self.settings.get("SoftwareTokenMfaConfiguration") or {}).get("Enabled"))

    @property
    def sms_mfa_enabled(self) -> bool:
        """SMS MFA is offered once SetUserPoolMfaConfig gave an SmsMfaConfiguration."""
        return isinstance(self.settings.get("SmsMfaConfiguration"), dict)

    @property
    def sms_authentication_message(self) -> str | None:
        """The wording of the SMS that carries a sign-in code, SMS MFA's and SMS_OTP's alike ("the SMS message
        that your user pool sends to users in SMS OTP and MFA authentication", CreateUserPool); None for the
        default. One setting, kept in step under both of its names (:func:`_set_sms_message`); should a pool
        hold two, SmsMfaConfiguration's is the one read."""
        factor = self.settings.get("SmsMfaConfiguration")
        message = factor.get("SmsAuthenticationMessage") if isinstance(factor, dict) else None
        return str(message or self.settings.get("SmsAuthenticationMessage") or "") or None

    @property
    def email_mfa_enabled(self) -> bool:
        """Email MFA (EMAIL_OTP) is offered once SetUserPoolMfaConfig gave an EmailMfaConfiguration."""
        return isinstance(self.settings.get("EmailMfaConfiguration"), dict)

    @property
    def device_configuration(self) -> dict[str, Any] | None:
        """The pool's DeviceConfiguration; device tracking is on when it names any member, as in Cognito."""
        config = self.settings.get("DeviceConfiguration")
        return dict(config) if isinstance(config, dict) and config else None

    def username_key(self, username: str) -> str:
        return username if self.case_sensitive else username.lower()


@dataclass(frozen=True)
class ClientView:
    record: ClientRecord

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def pool_id(self) -> str:
        return self.record.pool_id

    @property
    def secret(self) -> str | None:
        """The client's first active secret (None: a public client); see :attr:`secrets` for every one."""
        return self.record.secret

    @functools.cached_property
    def secrets(self) -> tuple[str, ...]:
        """Every active secret: up to two during a rotation (AddUserPoolClientSecret), any of which
        authenticates the client."""
        return tuple(str(s["value"]) for s in client_secrets(self.record))

    def secret_matches(self, given: str | None) -> bool:
        """Whether ``given`` is one of the client's active secrets, each compared in constant time."""
        if not given:
            return False
        encoded = given.encode()
        matched = False
        for secret in self.secrets:
            # No early exit: the time taken does not tell which secret (if any) matched.
            matched |= hmac.compare_digest(encoded, secret.encode())
        return matched

    @property
    def settings(self) -> dict[str, Any]:
        return self.record.settings

    @property
    def explicit_auth_flows(self) -> list[str]:
        return list(self.settings.get("ExplicitAuthFlows") or DEFAULT_EXPLICIT_AUTH_FLOWS)

    @property
    def prevent_user_existence_errors(self) -> bool:
        return bool(self.settings.get("PreventUserExistenceErrors", "LEGACY") == "ENABLED")

    @property
    def token_revocation_enabled(self) -> bool:
        return bool(self.settings.get("EnableTokenRevocation", True))

    @functools.cached_property
    def rotation(self) -> tuple[bool, int]:
        rotation = self.settings.get("RefreshTokenRotation") or {}
        return rotation.get("Feature") == "ENABLED", int(rotation.get("RetryGracePeriodSeconds", 0))

    @property
    def auth_session_seconds(self) -> int:
        return int(self.settings.get("AuthSessionValidity", 3)) * 60

    def token_seconds(self, token: str) -> int:
        # Worked out once per token and view: a cached view serves every sign-in of its client.
        known = self._token_seconds
        seconds = known.get(token)
        if seconds is None:
            seconds = known[token] = token_lifetime(self.settings, token)
        return seconds

    @functools.cached_property
    def _token_seconds(self) -> dict[str, int]:
        return {}

    @functools.cached_property
    def auth_flows(self) -> tuple[frozenset[str], bool]:
        """The ExplicitAuthFlows as a set, and whether they are the legacy names only (no ALLOW_ value)."""
        flows = frozenset(self.explicit_auth_flows)
        return flows, not any(f.startswith("ALLOW_") for f in flows)


# AddUserPoolClientSecret: "Supports up to 2 active secrets per app client".
MAX_CLIENT_SECRETS = 2


def original_secret_id(client_id: str, created_at: float) -> str:
    """ClientSecretIdType: "<client-id>--<epoch-create-time>" (milliseconds here)."""
    return f"{client_id}--{int(created_at * 1000)}"


# How many deleted secrets a client remembers (see deleted_secret_marks).
MAX_DELETED_SECRET_MARKS = 20


def client_secrets(record: ClientRecord) -> list[dict[str, Any]]:
    """A client's active secrets, oldest first, as ``{"id", "value", "created"}``: the rotated list when there
    is one, else the secret the client was made with (its id from the client's creation time)."""
    if record.secrets is not None:
        return [s for s in record.secrets if "value" in s]
    if record.secret is None:
        return []
    first = {"id": original_secret_id(record.id, record.created_at), "value": record.secret}
    return [{**first, "created": record.created_at}]


def deleted_secret_marks(record: ClientRecord) -> list[dict[str, Any]]:
    """What the client remembers of the secrets DeleteUserPoolClientSecret deleted: ``{"id", "deleted"}``, the
    SHA-256 of each value (never the value), kept after the active ones in ``record.secrets``. The config file
    reads them, so that a secret deleted through the API is not brought back by the file's next apply."""
    return [s for s in record.secrets or [] if "deleted" in s]


def secret_was_deleted(record: ClientRecord, secret: str) -> bool:
    """Whether ``secret`` is one DeleteUserPoolClientSecret deleted from this client."""
    digest = sha256_hex(secret)
    return any(hmac.compare_digest(str(m["deleted"]), digest) for m in deleted_secret_marks(record))


def token_lifetime(settings: Mapping[str, Any], token: str) -> int:
    """Seconds a client's ``token`` (AccessToken, IdToken, RefreshToken) lasts. A unit names the unit "for the
    value that you set" (TokenValidityUnitsType): with no value set the lifetime is Cognito's default (an hour,
    30 days) whatever the unit -- Terraform's ``token_validity_units`` block sends units alone."""
    default, default_unit, _, _ = _TOKEN_LIMITS[token]
    value = settings.get(_SETTINGS_KEY[token])
    if value is None:
        return default * _UNIT_SECONDS[default_unit]
    unit = (settings.get("TokenValidityUnits") or {}).get(token, default_unit)
    return int(value) * _UNIT_SECONDS[unit]


def _check_token_validity(settings: Mapping[str, Any]) -> None:
    """Each lifetime within Cognito's range, and the ID and access tokens no longer-lived than the refresh token
    ("Cannot be greater than refresh token expiration", the app client's token expiration settings): tokens
    that outlive every way of renewing them would be handed out past the end of the session they stand for."""
    lifetimes: dict[str, int] = {}
    for token, (_, _, low, high) in _TOKEN_LIMITS.items():
        seconds = lifetimes[token] = token_lifetime(settings, token)
        if not low <= seconds <= high:
            raise InvalidParameterException(
                f"{_SETTINGS_KEY[token]} must be between {low // 60} minutes and {high // 86400} days."
                if token == "RefreshToken"
                else f"{_SETTINGS_KEY[token]} must be between 5 minutes and 1 day."
            )
    for token in ("AccessToken", "IdToken"):
        if lifetimes[token] > lifetimes["RefreshToken"]:
            raise InvalidParameterException(f"{_SETTINGS_KEY[token]} cannot be greater than RefreshTokenValidity.")


def _check_write_attributes(pool: PoolView, writable: list[str] | None, action: str) -> None:
    """A client's own WriteAttributes list (none given: every standard attribute is writable) must let a user
    give every required attribute -- else nobody could sign up through the client -- and cannot name ``sub``,
    which nobody writes. Cognito refuses either with "Invalid write attributes specified while creating (or
    updating) a client" (UserPoolClientType.WriteAttributes; SchemaAttributeType.Required)."""
    if not writable:
        return
    given = set(writable)
    if "sub" in given or not set(required_attributes(pool.schema)) <= given:
        raise InvalidParameterException(f"Invalid write attributes specified while {action} a client")


MAX_TAGS = 50  # TagResource: "A user pool can have as many as 50 tags."


def check_tags(tags: Mapping[str, str] | None, total: int | None = None) -> None:
    """A pool's tags as AWS tagging allows them: the ``aws:`` prefix is reserved for AWS's own tags (AWS
    Tagging Best Practices: "You can't edit or delete tag keys or values with this prefix"), and a pool holds
    at most 50 tags (``total``: the count after the change; the given tags' own count when None)."""
    for key in tags or {}:
        if key.lower().startswith("aws:"):
            raise InvalidParameterException(f"Tag keys may not begin with aws: (reserved for AWS use): {key}")
    if (total if total is not None else len(tags or {})) > MAX_TAGS:
        raise InvalidParameterException(f"A user pool can have at most {MAX_TAGS} tags.")


def _check_pool_settings(settings: Mapping[str, Any]) -> None:
    check_tags(settings.get("UserPoolTags"))
    _check_fixed_features(settings)
    if settings.get("AliasAttributes") and settings.get("UsernameAttributes"):
        raise InvalidParameterException(
            "Only one of the aliasAttributes or usernameAttributes can be set in a User Pool."
        )
    for alias in settings.get("AliasAttributes") or []:
        if alias not in ("email", "phone_number", "preferred_username"):
            raise InvalidParameterException(f"Invalid alias attribute: {alias}")
    for attr in settings.get("UsernameAttributes") or []:
        if attr not in ("email", "phone_number"):
            raise InvalidParameterException(f"Invalid username attribute: {attr}")
    held = (settings.get("UserAttributeUpdateSettings") or {}).get("AttributesRequireVerificationBeforeUpdate") or []
    if not set(held) <= set(settings.get("AutoVerifiedAttributes") or []):
        # Cognito's words: a change can wait for verification only where a code is sent for it.
        raise InvalidParameterException(
            "All attributes in AttributesRequireVerificationBeforeUpdate must exist in AutoVerifiedAttributes"
        )
    mechanisms = [
        str(m.get("Name")) for m in (settings.get("AccountRecoverySetting") or {}).get("RecoveryMechanisms") or []
    ]
    if "admin_only" in mechanisms and len(mechanisms) > 1:
        # "The admin_only option prevents self-service account recovery" (RecoveryOptionType): beside a verified
        # email or phone it would be a second choice that ForgotPassword falls back to.
        raise InvalidParameterException("The admin_only recovery option cannot be combined with another option.")
    _check_sign_in_policy(settings)
    _check_invitation(settings)
    _check_verification_template(settings)
    check_email_settings(settings)
    policy = (settings.get("Policies") or {}).get("PasswordPolicy") or {}
    if "MinimumLength" in policy and not 6 <= int(policy["MinimumLength"]) <= 99:
        raise InvalidParameterException("Password minimum length must be between 6 and 99.")
    if policy.get("TemporaryPasswordValidityDays") == 0:
        # PasswordPolicyType: "If you submit a value of 0, Amazon Cognito treats it as a null value and sets
        # TemporaryPasswordValidityDays to its default value."
        policy["TemporaryPasswordValidityDays"] = DEFAULT_PASSWORD_POLICY["TemporaryPasswordValidityDays"]


def _check_invitation(settings: Mapping[str, Any]) -> None:
    """An invitation tells the new user the name to sign in with and the temporary password: "Your custom
    message must contain the {username} and {####} placeholders" (customizing user invitation messages). The
    model's patterns for EmailMessage and SMSMessage (EmailInviteMessageType, SmsInviteMessageType) require
    neither, as Cognito lets a pool whose users have no password leave {####} out (AdminCreateUserConfigType);
    every user AdminCreateUser makes here has a temporary password, so both are checked, as the config file
    does."""
    template = (settings.get("AdminCreateUserConfig") or {}).get("InviteMessageTemplate") or {}
    for member in ("EmailMessage", "SMSMessage"):
        message = template.get(member)
        if message is not None and not ("{username}" in str(message) and "{####}" in str(message)):
            raise InvalidParameterException(
                f"InviteMessageTemplate.{member} must contain the {{username}} and {{####}} placeholders."
            )


def _check_verification_template(settings: Mapping[str, Any]) -> None:
    """VerificationMessageTemplate carries the email message of its DefaultEmailOption only: "For
    CONFIRM_WITH_LINK, specify an EmailMessageByLink and leave EmailMessage blank. For CONFIRM_WITH_CODE, specify
    an EmailMessage and leave EmailMessageByLink blank. When you supply both parameters with either choice,
    Amazon Cognito returns an error" (CreateUserPool, UpdateUserPool: VerificationMessageTemplate)."""
    template = settings.get("VerificationMessageTemplate") or {}
    if template.get("EmailMessage") and template.get("EmailMessageByLink"):
        raise InvalidParameterException(
            "VerificationMessageTemplate takes EmailMessage (CONFIRM_WITH_CODE) or EmailMessageByLink "
            "(CONFIRM_WITH_LINK), not both."
        )


def _check_required_aliases(settings: Mapping[str, Any]) -> None:
    """A preferred_username alias cannot be required: "If you select preferred_username as an alias, your user
    can provide the value only when they confirm an account. They can't provide the value during registration"
    ("User pool attributes"), so a pool requiring it at sign-up could sign nobody up."""
    if "preferred_username" in (settings.get("AliasAttributes") or []) and "preferred_username" in (
        required_attributes(settings.get("SchemaAttributes") or [])
    ):
        raise InvalidParameterException("The preferred_username attribute cannot be both required and an alias.")


def _check_sign_in_policy(settings: Mapping[str, Any]) -> None:
    """SignInPolicy.AllowedFirstAuthFactors: PASSWORD is always one of them (choice-based sign-in adds factors
    beside the password, it does not take the password away: users without a passkey or a verified channel
    could not sign in), each factor once, and never SOFTWARE_TOKEN ("not currently supported as a first auth
    factor. Do not include this value", SignInPolicyType)."""
    factors = ((settings.get("Policies") or {}).get("SignInPolicy") or {}).get("AllowedFirstAuthFactors")
    if factors is None:
        return
    if "SOFTWARE_TOKEN" in factors:
        raise InvalidParameterException("SOFTWARE_TOKEN is not supported as a first auth factor.")
    if len(set(factors)) != len(factors):
        raise InvalidParameterException("AllowedFirstAuthFactors cannot name a factor twice.")
    if "PASSWORD" not in factors:
        raise InvalidParameterException("AllowedFirstAuthFactors must include PASSWORD.")


# LambdaConfig members whose triggers Gatehouse runs (gateway/services/triggers.py); the others are refused rather
# than kept and described as if their functions were called.
_RUN_TRIGGERS = frozenset(
    {
        "PreSignUp",
        "PostConfirmation",
        "PreAuthentication",
        "PostAuthentication",
        "PreTokenGeneration",
        "CustomMessage",
        "UserMigration",
        "DefineAuthChallenge",
        "CreateAuthChallenge",
        "VerifyAuthChallengeResponse",
        # An InboundFederationLambdaType, whose LambdaVersion the service model holds to V1_0.
        "InboundFederation",
        # The custom senders (gateway/services/custom_sender.py), and the KMS key their codes are encrypted under.
        "CustomEmailSender",
        "CustomSMSSender",
        "KMSKeyID",
    }
)


def _check_lambda_config(settings: dict[str, Any]) -> None:
    """LambdaConfig: only triggers Gatehouse runs; PreTokenGeneration and PreTokenGenerationConfig name one function
    ("If you also set an ARN in PreTokenGeneration, its value must be identical"), and both are kept, as Cognito
    describes them; event versions 2 and 3 need the Essentials or Plus plan."""
    config = settings.get("LambdaConfig")
    if not config:
        return
    unsupported = sorted(
        k for k, v in config.items() if v and k not in _RUN_TRIGGERS and k != "PreTokenGenerationConfig"
    )
    if unsupported:
        raise InvalidParameterException(
            f"LambdaConfig: Gatehouse does not run the {', '.join(unsupported)} trigger"
            f"{'s' if len(unsupported) > 1 else ''} yet; leave {'them' if len(unsupported) > 1 else 'it'} out."
        )
    _check_custom_senders(config)
    versioned = config.get("PreTokenGenerationConfig")
    legacy = config.get("PreTokenGeneration")
    if versioned:
        if legacy and legacy != versioned.get("LambdaArn"):
            raise InvalidParameterException(
                "PreTokenGeneration and PreTokenGenerationConfig.LambdaArn must be the same function."
            )
        version = versioned.get("LambdaVersion")
        if version in ("V2_0", "V3_0") and settings.get("UserPoolTier", "ESSENTIALS") == "LITE":
            raise FeatureUnavailableInTierException(
                f"Pre token generation event version {version} is not available in the LITE feature plan."
            )
        config["PreTokenGeneration"] = versioned.get("LambdaArn")
    elif legacy:
        config["PreTokenGenerationConfig"] = {"LambdaVersion": "V1_0", "LambdaArn": legacy}


def _check_custom_senders(config: Mapping[str, Any]) -> None:
    """A custom sender needs the KMS key its codes are encrypted under ("KMSKeyID: The ARN of an KMS key. Amazon
    Cognito uses the key to encrypt codes and temporary passwords sent to custom sender Lambda triggers"), as a key
    ARN; its event version is V1_0, the only one there is."""
    senders = [name for name in ("CustomEmailSender", "CustomSMSSender") if config.get(name)]
    key = config.get("KMSKeyID")
    if key and not KMS_KEY_ARN.match(str(key)):
        raise InvalidParameterException("KMSKeyID must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>).")
    if senders and not key:
        raise InvalidParameterException(f"{senders[0]} needs a KMSKeyID to encrypt the codes it is sent.")
    for name in senders:
        if config[name].get("LambdaVersion") != "V1_0":
            raise InvalidParameterException(f"{name}.LambdaVersion must be V1_0.")


def _check_fixed_features(settings: Mapping[str, Any]) -> None:
    """IssuerConfiguration, KeyConfiguration, DcrConfiguration and AcrConfiguration are taken only with the
    values that describe what Gatehouse does (see _FIXED_FEATURE_SETTINGS); any other is refused rather than
    kept and described as if it were in effect."""
    issuer = settings.get("IssuerConfiguration") or {}
    if issuer.get("Type", "ORIGINAL") != "ORIGINAL":
        raise InvalidParameterException(
            f"IssuerConfiguration Type {issuer['Type']} is not supported by Gatehouse: each user pool's tokens are "
            "issued by the pool's own issuer on this server (ORIGINAL)."
        )
    key = settings.get("KeyConfiguration") or {}
    if key.get("KeyType", "AWS_OWNED_KEY") != "AWS_OWNED_KEY" or key.get("KmsKeyArn"):
        raise InvalidParameterException(
            "KeyConfiguration with a KMS key of your own is not supported by Gatehouse: use KeyType AWS_OWNED_KEY "
            "without a KmsKeyArn."
        )
    dcr = settings.get("DcrConfiguration")
    # "An omitted EnableStatus turns dynamic client registration on" (UpdateUserPool).
    if dcr is not None and dcr.get("EnableStatus", "Enabled") != "Disabled":
        raise InvalidParameterException(
            "DcrConfiguration: dynamic client registration is not supported by Gatehouse; set EnableStatus to "
            "Disabled or leave DcrConfiguration out."
        )
    if settings.get("AcrConfiguration"):
        raise InvalidParameterException(
            "AcrConfiguration: custom ACR level names are not supported by Gatehouse, whose tokens carry no acr "
            "claim; send an empty AcrConfiguration or leave it out."
        )


def _check_plan_change(before: Mapping[str, Any], after: dict[str, Any]) -> None:
    """UpdateUserPool may move the pool to another feature plan (UserPoolTier) only when the settings it keeps
    from their own operations are available in that plan: session tracking (not in Lite) and the export of user
    activity logs (Plus only). Otherwise FeatureUnavailableInTierException, naming the setting to turn off
    first, as the operation that made it would refuse it in the new plan. The plan's rules are those of the
    operations that own the settings (gateway/services/sessions.py, gateway/services/log_delivery.py)."""
    tier = str(after.get("UserPoolTier", "ESSENTIALS"))
    if tier == before.get("UserPoolTier", "ESSENTIALS"):
        return
    # Imported here: both modules import this one.
    from gateway.services.log_delivery import check_log_configurations
    from gateway.services.sessions import SessionService

    pool = PoolView(PoolRecord(id="", name="", settings=after, created_at=0.0, updated_at=0.0))
    try:
        if SessionService.tracking(pool):
            SessionService.check_tier(pool)
    except FeatureUnavailableInTierException as exc:
        raise FeatureUnavailableInTierException(
            f"{exc.message} The user pool tracks user sessions: turn session tracking off with "
            f"SetUserPoolSessionConfiguration before changing UserPoolTier to {tier}."
        ) from exc
    try:
        check_log_configurations(pool, after.get(LOG_DELIVERY_SETTING) or [])
    except FeatureUnavailableInTierException as exc:
        raise FeatureUnavailableInTierException(
            f"{exc.message} Remove the user pool's userAuthEvents log configuration with "
            f"SetLogDeliveryConfiguration before changing UserPoolTier to {tier}."
        ) from exc


def _sms_factor_from_request(settings: dict[str, Any], request: Mapping[str, Any]) -> None:
    """CreateUserPool or UpdateUserPool with MfaConfiguration ON or OPTIONAL and an SmsConfiguration turns SMS
    MFA on, as Cognito did before SetUserPoolMfaConfig existed (GetUserPoolMfaConfig then names the factor)."""
    sms = request.get("SmsConfiguration")
    if settings.get("MfaConfiguration", "OFF") == "OFF" or not isinstance(sms, Mapping):
        return
    if not isinstance(settings.get("SmsMfaConfiguration"), dict):
        factor: dict[str, Any] = {"SmsConfiguration": copy.deepcopy(dict(sms))}
        if request.get("SmsAuthenticationMessage"):
            factor["SmsAuthenticationMessage"] = request["SmsAuthenticationMessage"]
        settings["SmsMfaConfiguration"] = factor


def _set_sms_message(settings: dict[str, Any], message: object) -> None:
    """Make ``message`` (None: the default) the pool's SMS authentication message under both of its names:
    UserPoolType's SmsAuthenticationMessage, which CreateUserPool and UpdateUserPool write, and SmsMfaConfiguration's,
    which SetUserPoolMfaConfig writes, are one setting in Cognito, so DescribeUserPool and GetUserPoolMfaConfig
    report the same wording, the one sent (PoolView.sms_authentication_message)."""
    factor = settings.get("SmsMfaConfiguration")
    for holder in (settings, factor) if isinstance(factor, dict) else (settings,):
        if message:
            holder["SmsAuthenticationMessage"] = message
        else:
            holder.pop("SmsAuthenticationMessage", None)


def _check_mfa_factors(settings: dict[str, Any]) -> None:
    """UpdateUserPool with MfaConfiguration ON or OPTIONAL needs a factor to offer: SMS when the request gives an
    SmsConfiguration, or those SetUserPoolMfaConfig enabled. Cognito refuses the rest: "SMS configuration and
    Auto verification for phone_number are required when MFA is required/optional"."""
    if settings.get("MfaConfiguration", "OFF") == "OFF":
        return
    view = PoolView(PoolRecord(id="", name="", settings=settings, created_at=0.0, updated_at=0.0))
    if not (view.software_token_mfa_enabled or view.sms_mfa_enabled or view.email_mfa_enabled):
        raise InvalidParameterException(
            "SMS configuration and Auto verification for phone_number are required when MFA is required/optional"
        )


# A read-modify-write of a pool or a client that loses the store's version check reads the record again and
# retries: each loss means another write to the same record went through, so concurrent writers (the admin API,
# the config file, every worker) all get theirs in turn. Between tries a random pause under a ceiling that doubles
# with each loss ("full jitter"), so that writers in several processes drift apart instead of reading and losing
# in step; past WRITE_SECONDS of losses the call gives up.
WRITE_SECONDS = 10.0
_FIRST_PAUSE = 0.002
_LONGEST_PAUSE = 0.05
_POOL_BUSY = "The user pool is being changed by other requests at this moment; try again."
_CLIENT_BUSY = "The app client is being changed by other requests at this moment; try again."


def write_pauses(seconds: float = WRITE_SECONDS) -> Iterator[float]:
    """The pause before each try of a versioned read-modify-write: none before the first, then a random one
    under a ceiling that doubles with each lost try, until ``seconds`` have passed (the caller then gives up)."""
    deadline = time.monotonic() + seconds
    ceiling = _FIRST_PAUSE
    yield 0.0
    while time.monotonic() < deadline:
        yield random.uniform(0.0, ceiling)
        ceiling = min(2 * ceiling, _LONGEST_PAUSE)


class PoolService:
    """Pools and app clients."""

    def __init__(self, store: Store, *, region: str, account_id: str) -> None:
        self._store = store
        self._region = region
        self._account_id = account_id
        # Pools and clients are read by every call and change rarely: each process keeps what it read for a
        # moment. A change made here is seen here at once; one made by another process within CACHE_SECONDS.
        # Entries carry the change stamp read before the store read: a change made by any process that shares
        # the store (gateway/services/change_stamp.py) makes them stale at once, not after CACHE_SECONDS.
        self.stamps = ChangeStamps()
        self._pools: dict[str, tuple[float, int, PoolView]] = {}
        self._clients: dict[str, tuple[float, int, ClientView]] = {}
        # The scope names of each resource server, as the token paths check them (gateway/services/live_scopes.py):
        # kept like pools, under the change stamp that every resource-server write bumps (None: no such server).
        self._scope_names: dict[tuple[str, str], tuple[float, int, frozenset[str] | None]] = {}

    async def resource_scope_names(self, pool_id: str, identifier: str) -> frozenset[str] | None:
        """The scope names resource server ``identifier`` of the pool lists now; None when it does not exist."""
        now = time.monotonic()
        stamp = self.stamps.read()
        key = (pool_id, identifier)
        cached = self._scope_names.get(key)
        if cached is not None and cached[1] == stamp and now - cached[0] < CACHE_SECONDS:
            return cached[2]
        server = await self._store.get_resource_server(pool_id, identifier)
        names = frozenset(s["ScopeName"] for s in server.scopes) if server is not None else None
        if len(self._scope_names) >= 4096:
            self._scope_names.clear()  # bounded: identifiers are the caller's to choose
        self._scope_names[key] = (now, stamp, names)
        return names

    def resource_servers_changed(self, pool_id: str, identifier: str) -> None:
        """After a resource server's write has committed: every process reads its scopes again."""
        self.stamps.bump()
        self._scope_names.pop((pool_id, identifier), None)

    def arn(self, pool_id: str) -> str:
        return f"arn:aws:cognito-idp:{self._region}:{self._account_id}:userpool/{pool_id}"

    # --- pools ----------------------------------------------------------------------------------------

    async def create_pool(self, name: str, request: Mapping[str, Any], *, pool_id: str | None = None) -> PoolView:
        settings: dict[str, Any] = {k: copy.deepcopy(request[k]) for k in _POOL_SETTINGS if k in request}
        _check_pool_settings(settings)
        _check_lambda_config(settings)
        settings["SchemaAttributes"] = build_schema(request.get("Schema"))
        _check_required_aliases(settings)
        policies = settings.setdefault("Policies", {})
        policies["PasswordPolicy"] = full_password_policy(policies.get("PasswordPolicy"))
        policies.setdefault("SignInPolicy", {"AllowedFirstAuthFactors": ["PASSWORD"]})
        settings.setdefault("MfaConfiguration", "OFF")
        # Without a factor MFA ON is still accepted here: SetUserPoolMfaConfig names the factors next (the config
        # file creates pools so); until then sign-in answers InvalidUserPoolConfigurationException.
        _sms_factor_from_request(settings, request)
        _set_sms_message(settings, settings.get("SmsAuthenticationMessage"))
        settings.setdefault("DeletionProtection", "INACTIVE")
        settings.setdefault("UsernameConfiguration", {"CaseSensitive": True})
        settings.setdefault(
            "AdminCreateUserConfig", {"AllowAdminCreateUserOnly": False, "UnusedAccountValidityDays": 7}
        )
        settings.setdefault("EmailConfiguration", {"EmailSendingAccount": "COGNITO_DEFAULT"})
        settings.setdefault("VerificationMessageTemplate", {"DefaultEmailOption": "CONFIRM_WITH_CODE"})
        settings.setdefault("UserPoolTier", "ESSENTIALS")
        settings.setdefault("LambdaConfig", {})
        now = time.time()
        for _ in range(5):
            record = PoolRecord(
                id=pool_id or new_pool_id(self._region), name=name, settings=settings, created_at=now, updated_at=now
            )
            try:
                await self._store.create_pool(record)
                return PoolView(record)
            except AlreadyExists as exc:
                if pool_id is not None:
                    raise InvalidParameterException(f"User pool {pool_id} already exists.") from exc
        # Five random ids taken in a row: no concurrent write to retry (nor an error CreateUserPool's model lists
        # for one), something is wrong with the ids.
        raise InternalErrorException("No free user pool id was found.")

    async def get_pool(self, pool_id: str, *, fresh: bool = False) -> PoolView:
        """The pool, from this process's short-lived cache unless ``fresh`` (what a writer must read: it
        changes the record it gets)."""
        now = time.monotonic()
        stamp = self.stamps.read()
        cached = self._pools.get(pool_id)
        if not fresh and cached is not None and cached[1] == stamp and now - cached[0] < CACHE_SECONDS:
            return cached[2]
        record = await self._store.get_pool(pool_id)
        if record is None:
            self._pools.pop(pool_id, None)
            raise ResourceNotFoundException(f"User pool {pool_id} does not exist.")
        if not fresh:
            self._pools[pool_id] = (now, stamp, PoolView(copy.deepcopy(record)))
        return PoolView(record)

    def _forget(self, pool_id: str | None = None, client_id: str | None = None) -> None:
        """After a write has committed: drop it here, and make every other process's copy stale."""
        self.stamps.bump()
        if pool_id is not None:
            self._pools.pop(pool_id, None)
        if client_id is not None:
            self._clients.pop(client_id, None)

    async def describe_pool(self, pool_id: str) -> dict[str, Any]:
        pool = await self.get_pool(pool_id)
        return await self.pool_type(pool)

    async def pool_type(self, pool: PoolView) -> dict[str, Any]:
        """The UserPoolType of a pool."""
        record = pool.record
        described: dict[str, Any] = copy.deepcopy(record.settings)
        for key in _OWN_OPERATION_SETTINGS:
            described.pop(key, None)
        described.pop("SmsAuthenticationMessage", None)
        if pool.sms_authentication_message is not None:
            described["SmsAuthenticationMessage"] = pool.sms_authentication_message
        described.update(
            {
                "Id": record.id,
                "Name": record.name,
                "Arn": self.arn(record.id),
                "Status": "Enabled",
                "CreationDate": record.created_at,
                "LastModifiedDate": record.updated_at,
                "EstimatedNumberOfUsers": await self._store.count_users(record.id),
            }
        )
        return described

    async def _change_pool(
        self,
        pool_id: str,
        change: Callable[[PoolRecord], None],
        *,
        busy: type[GatehouseError] = TooManyRequestsException,
    ) -> None:
        """Read-modify-write of a pool under the store's version check: ``change`` applies to the pool as stored,
        and is written only if no other write landed since it was read; otherwise it is read, changed and written
        again (:func:`write_pauses`). Only when other writes keep winning for WRITE_SECONDS, ``busy``:
        TooManyRequestsException, which every pool-changing operation's model lists, or
        ConcurrentModificationException for the operations whose model lists that."""
        for pause in write_pauses():
            if pause:
                await asyncio.sleep(pause)
            record = (await self.get_pool(pool_id, fresh=True)).record
            change(record)
            record.updated_at = time.time()
            try:
                await self._store.update_pool(record)
            except VersionConflict:
                continue
            except NotFound:  # deleted (DeleteUserPool) while this call ran
                raise ResourceNotFoundException(f"User pool {pool_id} does not exist.") from None
            # Only once the write has committed: every process reads the pool again.
            self._forget(pool_id)
            return
        raise busy(_POOL_BUSY)

    async def change_settings(self, pool_id: str, change: Callable[[PoolRecord], None]) -> None:
        """A Set* operation's change of the pool's settings (read, changed, written under the version check)."""
        await self._change_pool(pool_id, change)

    async def update_pool(self, pool_id: str, request: Mapping[str, Any], *, factors_follow: bool = False) -> None:
        """UpdateUserPool: members not given return to their defaults, as Cognito documents. ``factors_follow``:
        the caller (the config file) sets the MFA factors right after, so MFA ON needs none yet."""

        def change(record: PoolRecord) -> None:
            keep = {
                k: record.settings[k]
                for k in ("SchemaAttributes", *_IMMUTABLE_POOL_SETTINGS, *_OWN_OPERATION_SETTINGS)
                if k in record.settings
            }
            left_out = [k for k in _FIXED_FEATURE_SETTINGS if k in record.settings and k not in request]
            keep.update({k: record.settings[k] for k in left_out})
            # UpdateUserPool has no members for the settings fixed at creation: one sent anyway is ignored (as
            # AWS ignores unknown members), never written -- it would change how existing users are named.
            given = [k for k in _POOL_SETTINGS if k in request and k not in _IMMUTABLE_POOL_SETTINGS]
            new_settings: dict[str, Any] = {k: copy.deepcopy(request[k]) for k in given}
            new_settings.update(keep)
            policies = new_settings.setdefault("Policies", {})
            policies["PasswordPolicy"] = full_password_policy(policies.get("PasswordPolicy"))
            policies.setdefault("SignInPolicy", {"AllowedFirstAuthFactors": ["PASSWORD"]})
            if "UserPoolTier" in record.settings:
                new_settings.setdefault("UserPoolTier", record.settings["UserPoolTier"])
            new_settings.setdefault("MfaConfiguration", "OFF")
            new_settings.setdefault("DeletionProtection", "INACTIVE")
            new_settings.setdefault(
                "AdminCreateUserConfig", {"AllowAdminCreateUserOnly": False, "UnusedAccountValidityDays": 7}
            )
            new_settings.setdefault("EmailConfiguration", {"EmailSendingAccount": "COGNITO_DEFAULT"})
            new_settings.setdefault("VerificationMessageTemplate", {"DefaultEmailOption": "CONFIRM_WITH_CODE"})
            new_settings.setdefault("LambdaConfig", {})
            _check_pool_settings(new_settings)
            _check_lambda_config(new_settings)
            _sms_factor_from_request(new_settings, request)
            # UpdateUserPool's SmsAuthenticationMessage (or its default, when left out) is SMS MFA's wording too.
            _set_sms_message(new_settings, new_settings.get("SmsAuthenticationMessage"))
            if not factors_follow:
                _check_mfa_factors(new_settings)
            # Against the pool as stored, in the write that changes the plan: a setting turned on meanwhile is
            # either seen here or makes this write lose the version check and run again.
            _check_plan_change(record.settings, new_settings)
            record.settings = new_settings
            if request.get("PoolName"):
                record.name = str(request["PoolName"])

        await self._change_pool(pool_id, change, busy=ConcurrentModificationException)

    @staticmethod
    def mfa_config(pool: PoolView) -> dict[str, Any]:
        """GetUserPoolMfaConfig's answer (and SetUserPoolMfaConfig's): the mode and each factor's configuration."""
        config: dict[str, Any] = {
            "MfaConfiguration": pool.mfa_configuration,
            "SoftwareTokenMfaConfiguration": {"Enabled": pool.software_token_mfa_enabled},
            "WebAuthnConfiguration": webauthn_settings(pool),
        }
        for member in ("SmsMfaConfiguration", "EmailMfaConfiguration"):
            if isinstance(pool.settings.get(member), dict):
                config[member] = copy.deepcopy(pool.settings[member])
        if "SmsMfaConfiguration" in config:
            # The wording DescribeUserPool reports too, and the one sent.
            config["SmsMfaConfiguration"].pop("SmsAuthenticationMessage", None)
            if pool.sms_authentication_message is not None:
                config["SmsMfaConfiguration"]["SmsAuthenticationMessage"] = pool.sms_authentication_message
        return config

    async def set_mfa_config(self, pool_id: str, request: Mapping[str, Any]) -> PoolView:
        """SetUserPoolMfaConfig. Members left out keep their current value; an SmsMfaConfiguration or
        EmailMfaConfiguration turns that factor on, and an empty one (``{}``) turns it off. WebAuthnConfiguration
        sets the passkeys' relying party ID and user verification (gateway/services/webauthn.py)."""
        factors = {m: request[m] for m in ("SmsMfaConfiguration", "EmailMfaConfiguration") if m in request}
        mode = request.get("MfaConfiguration")
        if mode is not None and mode not in MFA_CONFIGURATIONS:
            raise InvalidParameterException(f"Invalid MfaConfiguration: {mode}")
        software = request.get("SoftwareTokenMfaConfiguration")
        webauthn = request.get("WebAuthnConfiguration")
        passkeys = webauthn_configuration(webauthn) if webauthn is not None else None

        def change(record: PoolRecord) -> None:
            if mode is not None:
                record.settings["MfaConfiguration"] = mode
            if software is not None:
                record.settings["SoftwareTokenMfaConfiguration"] = {"Enabled": bool(software.get("Enabled"))}
            if passkeys is not None:
                record.settings["WebAuthnConfiguration"] = passkeys
            for member, factor in factors.items():
                if factor:
                    record.settings[member] = copy.deepcopy(dict(factor))
                    if member == "SmsMfaConfiguration":
                        # Left out, the default wording: "If this parameter isn't provided, your user pool sends
                        # a default message" (SmsMfaConfigType), for DescribeUserPool's member too.
                        _set_sms_message(record.settings, factor.get("SmsAuthenticationMessage"))
                else:
                    record.settings.pop(member, None)
            view = PoolView(record)
            if view.mfa_configuration != "OFF" and not (
                view.software_token_mfa_enabled or view.sms_mfa_enabled or view.email_mfa_enabled
            ):
                # Cognito refuses required MFA with no factor to satisfy it, and optional MFA with none to turn on
                # ("can't disable all MFAs with a required or optional configuration").
                raise InvalidParameterException(
                    "Invalid MFA configuration given, can't turn on MFA without any enabled MFA factor."
                    if view.mfa_configuration == "ON"
                    else "Invalid MFA configuration given, can't disable all MFAs with a required or optional "
                    "configuration."
                )

        await self._change_pool(pool_id, change, busy=ConcurrentModificationException)
        return await self.get_pool(pool_id, fresh=True)

    async def add_custom_attributes(self, pool_id: str, attributes: list[Mapping[str, Any]]) -> None:
        def change(record: PoolRecord) -> None:
            record.settings["SchemaAttributes"] = add_custom_attributes(PoolView(record).schema, attributes)

        await self._change_pool(pool_id, change)

    async def delete_pool(self, pool_id: str) -> None:
        pool = await self.get_pool(pool_id)
        if pool.settings.get("DeletionProtection") == "ACTIVE":
            raise InvalidParameterException(
                "The user pool cannot be deleted because deletion protection is activated. "
                "Deletion protection must be inactivated first."
            )
        if await self._store.list_pool_domains(pool_id):
            # Cognito's guard: a pool whose hosted UI is served on a domain is not deleted from under it; the
            # domain (prefix or custom) goes first, by DeleteUserPoolDomain.
            raise InvalidParameterException(
                "User pool cannot be deleted. It has a domain configured that should be deleted first."
            )
        await self._store.delete_pool(pool_id)
        self._forget(pool_id)

    async def list_pools(self, next_token: str | None, limit: int) -> tuple[list[PoolRecord], str | None]:
        page = await self._store.list_pools(next_token, limit)
        return page.items, page.next_token

    async def set_tags(self, pool_id: str, tags: Mapping[str, str] | None, remove: list[str] | None = None) -> None:
        def change(record: PoolRecord) -> None:
            current = dict(record.settings.get("UserPoolTags") or {})
            current.update(tags or {})
            for key in remove or []:
                current.pop(key, None)
            check_tags(tags, len(current))
            record.settings["UserPoolTags"] = current

        await self._change_pool(pool_id, change)

    # --- clients --------------------------------------------------------------------------------------

    async def create_client(
        self, pool_id: str, name: str, request: Mapping[str, Any], *, client_id: str | None = None
    ) -> ClientView:
        pool = await self.get_pool(pool_id)
        if request.get("ClientSecret") and request.get("GenerateSecret"):
            # CreateUserPoolClient.ClientSecret: "You cannot specify both GenerateSecret as true and provide a
            # ClientSecret value."
            raise InvalidParameterException("Cannot specify both GenerateSecret as true and a ClientSecret value.")
        confidential = bool(request.get("ClientSecret") or request.get("GenerateSecret"))
        settings = self._client_settings(pool, request, confidential=confidential)
        secret = None
        if request.get("ClientSecret"):
            secret = str(request["ClientSecret"])
        elif request.get("GenerateSecret"):
            secret = new_client_secret()
        now = time.time()
        record = ClientRecord(
            pool_id=pool_id,
            id=client_id or new_client_id(),
            name=name,
            secret=secret,
            settings=settings,
            created_at=now,
            updated_at=now,
        )
        await self._store.create_client(record)
        return ClientView(record)

    def _client_settings(
        self, pool: PoolView, request: Mapping[str, Any], action: str = "creating", *, confidential: bool
    ) -> dict[str, Any]:
        """A client's stored settings from a Create/UpdateUserPoolClient request, checked. ``confidential``:
        whether the client has (or is made with) a secret."""
        settings: dict[str, Any] = {k: copy.deepcopy(request[k]) for k in _CLIENT_SETTINGS if k in request}
        if settings.get("RefreshTokenValidity") == 0:
            # "You can't set RefreshTokenValidity to 0. If you do, Amazon Cognito overrides the value with the
            # default value of 30 days" (CreateUserPoolClient): the default value in its default unit.
            del settings["RefreshTokenValidity"]
            if isinstance(settings.get("TokenValidityUnits"), dict):
                settings["TokenValidityUnits"].pop("RefreshToken", None)
        given_units = settings.get("TokenValidityUnits")
        units = settings["TokenValidityUnits"] = dict(given_units) if isinstance(given_units, dict) else {}
        for token, key in _SETTINGS_KEY.items():
            if key in settings:
                # "The default time unit for AccessTokenValidity in an API request is hours" (IdTokenValidity
                # too; days for RefreshTokenValidity): a value sent without its unit is read in that unit. A
                # value left out is the default lifetime, one hour (30 days), whatever its unit.
                units.setdefault(token, _API_UNITS[token])
        _check_token_validity(settings)
        for token, key in _SETTINGS_KEY.items():
            if token not in units:
                # Neither value nor unit given: the default lifetime, described in its default unit (60 minutes,
                # 30 days). A unit given alone stays as given, with no value: the default lifetime too.
                default, default_unit, _, _ = _TOKEN_LIMITS[token]
                settings[key], units[token] = default, default_unit
        if not settings.get("ExplicitAuthFlows"):
            # "If you don't specify a value for ExplicitAuthFlows, your app client supports ALLOW_REFRESH_TOKEN_AUTH,
            # ALLOW_USER_SRP_AUTH, and ALLOW_CUSTOM_AUTH": an empty list specifies none either, and the client
            # signs in with those three, so it is described with them.
            settings["ExplicitAuthFlows"] = list(DEFAULT_EXPLICIT_AUTH_FLOWS)
        settings.setdefault("PreventUserExistenceErrors", "LEGACY")
        settings.setdefault("EnableTokenRevocation", True)
        settings.setdefault("EnablePropagateAdditionalUserContextData", False)
        settings.setdefault("AuthSessionValidity", 3)
        settings.setdefault("AllowedOAuthFlowsUserPoolClient", False)
        if not 3 <= int(settings["AuthSessionValidity"]) <= 15:
            raise InvalidParameterException("AuthSessionValidity must be between 3 and 15 minutes.")
        known = {a["Name"] for a in pool.schema}
        for key in ("ReadAttributes", "WriteAttributes"):
            for attr in settings.get(key) or []:
                if attr not in known:
                    raise InvalidParameterException(f"Invalid {key}: attribute {attr} does not exist in the schema.")
        _check_write_attributes(pool, settings.get("WriteAttributes"), action)
        for flow in settings["ExplicitAuthFlows"]:
            if flow not in _KNOWN_FLOWS:
                raise InvalidParameterException(f"Invalid ExplicitAuthFlows value: {flow}")
        legacy = {"ADMIN_NO_SRP_AUTH", "CUSTOM_AUTH_FLOW_ONLY", "USER_PASSWORD_AUTH"}
        flows = set(settings["ExplicitAuthFlows"])
        if CLIENT_TOKEN_FLOW in flows:
            # GetClientToken: "The ALLOW_CLIENT_TOKEN_AUTH flow is mutually exclusive with user authentication
            # flows. It must be the only authentication flow that you configure for the app client", and "you
            # must configure the app client with a client secret".
            # The token exchange flows sign no user in: a machine client may hold both (its own token from
            # GetClientToken as the actor token of a delegation).
            if flows - TOKEN_EXCHANGE_FLOWS - {CLIENT_TOKEN_FLOW}:
                raise InvalidParameterException(
                    "ALLOW_CLIENT_TOKEN_AUTH is mutually exclusive with user authentication flows: it must be the "
                    "only explicit auth flow of the app client."
                )
            if not confidential:
                raise InvalidParameterException("ALLOW_CLIENT_TOKEN_AUTH requires an app client with a client secret.")
        if flows & legacy and any(f.startswith("ALLOW_") for f in flows):
            raise InvalidParameterException(
                "Explicit auth flows can be either all of ALLOW_ prefixed values or none of them."
            )
        return settings

    async def get_client(self, pool_id: str, client_id: str, *, fresh: bool = False) -> ClientView:
        client = await self.find_client(client_id, fresh=fresh)
        if client.pool_id != pool_id:
            raise ResourceNotFoundException(f"User pool client {client_id} does not exist.")
        return client

    async def find_client(self, client_id: str, *, fresh: bool = False) -> ClientView:
        """Public operations name only the client; the pool follows from it."""
        now = time.monotonic()
        stamp = self.stamps.read()
        cached = self._clients.get(client_id)
        if not fresh and cached is not None and cached[1] == stamp and now - cached[0] < CACHE_SECONDS:
            return cached[2]
        record = await self._store.get_client(client_id)
        if record is None:
            self._clients.pop(client_id, None)
            raise ResourceNotFoundException(f"User pool client {client_id} does not exist.")
        if not fresh:
            self._clients[client_id] = (now, stamp, ClientView(copy.deepcopy(record)))
        return ClientView(record)

    def client_type(self, client: ClientView) -> dict[str, Any]:
        record = client.record
        described: dict[str, Any] = copy.deepcopy(record.settings)
        described.update(
            {
                "UserPoolId": record.pool_id,
                "ClientName": record.name,
                "ClientId": record.id,
                "CreationDate": record.created_at,
                "LastModifiedDate": record.updated_at,
            }
        )
        if record.secret:
            described["ClientSecret"] = record.secret
        return described

    async def update_client(self, pool_id: str, client_id: str, request: Mapping[str, Any]) -> ClientView:
        """UpdateUserPoolClient, retried as a pool's writes are (:meth:`_change_pool`); its model lists
        ConcurrentModificationException for the writes that keep losing."""
        for pause in write_pauses():
            if pause:
                await asyncio.sleep(pause)
            pool = await self.get_pool(pool_id)
            client = await self.get_client(pool_id, client_id, fresh=True)
            record = client.record
            record.settings = self._client_settings(pool, request, "updating", confidential=record.secret is not None)
            if request.get("ClientName"):
                record.name = str(request["ClientName"])
            record.updated_at = time.time()
            try:
                updated = ClientView(await self._store.update_client(record))
                self._forget(client_id=client_id)
                return updated
            except VersionConflict:
                continue
        raise ConcurrentModificationException(_CLIENT_BUSY)

    async def set_client_secret(self, pool_id: str, client_id: str, secret: str) -> None:
        """Replace a client's secrets with one (the config file's secret rotation)."""

        def change(record: ClientRecord) -> None:
            now = time.time()
            record.secret = secret
            marks = deleted_secret_marks(record)
            record.secrets = [{"id": original_secret_id(record.id, now), "value": secret, "created": now}, *marks]

        await self._change_client(pool_id, client_id, change)

    async def _change_client(self, pool_id: str, client_id: str, change: Callable[[ClientRecord], None]) -> None:
        """Apply ``change`` to the stored client and write it back, again on a concurrent write (the row's
        version), so that checks made by ``change`` hold against what is stored. Retried as a pool's writes are
        (:meth:`_change_pool`); TooManyRequestsException, which the client secret operations' models list, only
        when other writes keep winning."""
        for pause in write_pauses():
            if pause:
                await asyncio.sleep(pause)
            client = await self.get_client(pool_id, client_id, fresh=True)
            record = client.record
            change(record)
            record.updated_at = time.time()
            try:
                await self._store.update_client(record)
            except VersionConflict:
                continue
            # Every process drops its copy at once (change stamps): a deleted secret stops working everywhere.
            self._forget(client_id=client_id)
            return
        raise TooManyRequestsException(_CLIENT_BUSY)

    async def list_client_secrets(self, pool_id: str, client_id: str) -> list[dict[str, Any]]:
        """ListUserPoolClientSecrets: the active secrets' ids and creation dates, never their values."""
        client = await self.get_client(pool_id, client_id, fresh=True)
        _require_confidential(client)
        return [_secret_descriptor(s) for s in client_secrets(client.record)]

    async def add_client_secret(self, pool_id: str, client_id: str, value: str | None) -> dict[str, Any]:
        """AddUserPoolClientSecret: a second active secret, ``value`` or generated. The answer carries the
        value only when Gatehouse generated it ("The ClientSecretValue is only returned when Amazon Cognito
        generates the secret")."""
        client = await self.get_client(pool_id, client_id)
        _require_confidential(client)
        secret = value if value is not None else new_client_secret()
        added: dict[str, Any] = {}

        def change(record: ClientRecord) -> None:
            current = [dict(s) for s in client_secrets(record)]
            if not current:
                raise InvalidParameterException(_PUBLIC_CLIENT_MESSAGE.format(client_id=record.id))
            if len(current) >= MAX_CLIENT_SECRETS:
                raise LimitExceededException(
                    f"The app client already has the maximum of {MAX_CLIENT_SECRETS} client secrets. "
                    "Delete one before adding another."
                )
            if any(hmac.compare_digest(str(s["value"]).encode(), secret.encode()) for s in current):
                raise InvalidParameterException("The client secret is already an active secret of the app client.")
            now = time.time()
            millis = int(now * 1000)
            taken = {str(s["id"]) for s in current}
            while f"{record.id}--{millis}" in taken:
                millis += 1  # two secrets made in one millisecond still get ids of their own
            added.clear()
            added.update({"id": f"{record.id}--{millis}", "value": secret, "created": now})
            record.secrets = [*current, dict(added), *deleted_secret_marks(record)]
            record.secret = str(record.secrets[0]["value"])

        await self._change_client(pool_id, client_id, change)
        # Audit: which secret came and went, never its value.
        log.info("client_secret.added", pool=pool_id, client=client_id, secret_id=added["id"], generated=value is None)
        descriptor = _secret_descriptor(added)
        if value is None:
            descriptor["ClientSecretValue"] = secret
        return descriptor

    async def delete_client_secret(self, pool_id: str, client_id: str, secret_id: str) -> None:
        """DeleteUserPoolClientSecret: the secret stops authenticating the client at once, in every process.
        ("You cannot delete the last remaining secret for an app client.")"""
        client = await self.get_client(pool_id, client_id)
        _require_confidential(client)

        def change(record: ClientRecord) -> None:
            current = [dict(s) for s in client_secrets(record)]
            remaining = [s for s in current if s["id"] != secret_id]
            if len(remaining) == len(current):
                raise ResourceNotFoundException(f"Client secret {secret_id} does not exist.")
            if not remaining:
                raise InvalidParameterException("The last remaining client secret of an app client cannot be deleted.")
            gone = next(s for s in current if s["id"] == secret_id)
            marks = [*deleted_secret_marks(record), {"id": secret_id, "deleted": sha256_hex(str(gone["value"]))}]
            record.secrets = [*remaining, *marks[-MAX_DELETED_SECRET_MARKS:]]
            record.secret = str(remaining[0]["value"])

        await self._change_client(pool_id, client_id, change)
        log.info("client_secret.deleted", pool=pool_id, client=client_id, secret_id=secret_id)

    async def drop_identity_provider(self, pool_id: str, name: str) -> None:
        """Take a deleted identity provider's name out of every client's SupportedIdentityProviders."""
        after: str | None = None
        while True:
            page = await self._store.list_clients(pool_id, after, 60)
            for record in page.items:
                if name in (record.settings.get("SupportedIdentityProviders") or []):
                    await self._drop_client_provider(pool_id, record.id, name)
            if not page.next_token:
                return
            after = page.next_token

    async def _drop_client_provider(self, pool_id: str, client_id: str, name: str) -> None:
        for pause in write_pauses():
            if pause:
                await asyncio.sleep(pause)
            try:
                record = (await self.get_client(pool_id, client_id, fresh=True)).record
            except ResourceNotFoundException:
                return  # deleted meanwhile
            supported = record.settings.get("SupportedIdentityProviders") or []
            if name not in supported:
                return
            record.settings = {**record.settings, "SupportedIdentityProviders": [p for p in supported if p != name]}
            record.updated_at = time.time()
            try:
                await self._store.update_client(record)
                self._forget(client_id=client_id)
                return
            except VersionConflict:
                continue
            except NotFound:
                return
        raise ConcurrentModificationException(_CLIENT_BUSY)

    async def delete_client(self, pool_id: str, client_id: str) -> None:
        await self.get_client(pool_id, client_id)
        await self._store.delete_client(pool_id, client_id)
        self._forget(client_id=client_id)

    async def list_clients(
        self, pool_id: str, next_token: str | None, limit: int
    ) -> tuple[list[ClientRecord], str | None]:
        await self.get_pool(pool_id)
        page = await self._store.list_clients(pool_id, next_token, limit)
        return page.items, page.next_token


_PUBLIC_CLIENT_MESSAGE = "Client {client_id} has no client secret: secrets are managed for confidential clients only."


def _require_confidential(client: ClientView) -> None:
    """The secret operations are for "an existing confidential user pool app client" (AddUserPoolClientSecret):
    a public client has no secret to rotate, and cannot be given one (Cognito fixes that at creation)."""
    if client.secret is None:
        raise InvalidParameterException(_PUBLIC_CLIENT_MESSAGE.format(client_id=client.id))


def _secret_descriptor(secret: Mapping[str, Any]) -> dict[str, Any]:
    """ClientSecretDescriptorType without the value, which is shown once, when Gatehouse generates it."""
    return {"ClientSecretId": str(secret["id"]), "ClientSecretCreateDate": float(secret["created"])}


_KNOWN_FLOWS = {
    "ADMIN_NO_SRP_AUTH",
    "CUSTOM_AUTH_FLOW_ONLY",
    "USER_PASSWORD_AUTH",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_CUSTOM_AUTH",
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
    "ALLOW_USER_AUTH",
    "ALLOW_CLIENT_TOKEN_AUTH",
    "ALLOW_TOKEN_EXCHANGE_IMPERSONATION",
    "ALLOW_TOKEN_EXCHANGE_DELEGATION",
}
