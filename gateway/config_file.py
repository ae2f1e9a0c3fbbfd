"""The broker's config file: server settings, user pools, app clients, groups and seed users, in YAML.

A file looks like this (``config/gatehouse.example.yaml`` documents every key, ``config/schema.json`` is
its JSON Schema for editors)::

    version: 1                      # the format version; the only one so far
    server:                         # optional: what `gatehouse serve` runs with (the command line wins)
      port: 9229
      admin: {access_key_id: GATEHOUSEADMIN01, secret_access_key: "${GATEHOUSE_ADMIN_SECRET}"}
    pools:
      - id: us-east-1_Example01     # fixed, so the tokens' issuer survives a restart with a new database
        name: example
        username_attributes: [email]
        clients:
          - {id: webapp, name: web, secret: "${WEB_CLIENT_SECRET}", explicit_auth_flows: [ALLOW_USER_SRP_AUTH]}
        groups:
          - {name: admins, precedence: 0, role_arn: "arn:aws:iam::000000000000:role/Admins"}
        users:
          - {username: admin@example.com, password: "${ADMIN_PASSWORD:-ChangeMe-123!}", groups: [admins]}

Keys are Cognito's CreateUserPool / CreateUserPoolClient members in snake_case; a ``cognito:`` mapping on a
pool or a client passes further members verbatim (in Cognito's PascalCase). Every string may use
``${NAME}`` (the environment variable, an error if unset) or ``${NAME:-default}`` (the default when unset or
empty, as in the shell); ``$${`` writes a literal ``${``. Unknown keys are errors, so a typo never goes
unnoticed, and every problem of a file is reported at once, one line each, as
``<file>: <key path>: <what was expected>, got <value>`` -- secrets (client secrets, passwords, the admin
key, SMTP password, webhook headers) are never shown.

:func:`apply_config` makes the store match the file at every start: pools, clients and groups are created
with their fixed ids or updated to the file's settings; seed users are created once and their passwords are
never overwritten afterwards (the user may have changed theirs). A client's ``terms`` and a pool's
``cimd_policies``, when given, are the only ones the client or pool keeps (created with the file's names and
ids, changed in place, the others deleted); ``session_tracking`` and a client's ``sso_session_max_minutes``
are set when they differ. It is idempotent and safe when several
worker processes run it at once: a create that loses a race becomes an update.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import functools
import ipaddress
import os
import re
import types
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Self, TypeAlias, Union, cast, get_args, get_origin
from urllib.parse import urlsplit

import botocore.loaders
import structlog
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.api.model import ServiceModel
from gateway.config_front_door import FrontDoorConfig, origin_host
from gateway.config_iam import IamConfig, apply_iam_config
from gateway.config_identity_pools import IdentityPoolConfig, apply_identity_pool_config
from gateway.config_sign_in import (
    CodeSendLimitsConfig,
    DevicesConfig,
    MfaConfig,
    SignInConfig,
    ThreatProtectionConfig,
    apply_sign_in_security,
    code_send_limit_settings,
    sign_in_request_members,
)
from gateway.errors import (
    AliasExistsException,
    DuplicateProviderException,
    GatehouseError,
    GroupExistsException,
    InvalidParameterException,
    InvalidPasswordException,
    ResourceNotFoundException,
    TermsExistsException,
    UsernameExistsException,
)
from gateway.services.cimd import DEFAULT_CACHE_SECONDS, MAX_CACHE_SECONDS, MIN_CACHE_SECONDS, check_pattern
from gateway.services.container import Services
from gateway.services.custom_sender import KmsSettings
from gateway.services.log_delivery import log_delivery_configuration, set_log_delivery
from gateway.services.messaging import check_address_header
from gateway.services.passwords import Argon2Params, check_password_policy
from gateway.services.pools import (
    CLIENT_SESSION_SETTINGS,
    DEFAULT_PASSWORD_POLICY,
    LOG_DELIVERY_SETTING,
    POOL_SESSION_SETTING,
    ClientView,
    PoolService,
    PoolView,
    secret_was_deleted,
)
from gateway.services.ratelimit import RateLimitSettings
from gateway.services.schema import STANDARD_ATTRIBUTES, build_schema, validate_attribute_values
from gateway.services.sessions import DEFAULT_MAX_PER_USER
from gateway.services.triggers import LambdaSettings
from gateway.services.user_import import is_username
from gateway.services.users import FORCE_CHANGE_PASSWORD
from gateway.settings import Secret, Settings, SmsWebhookSettings, SmtpSettings, postgres_url_problem
from gateway.storage.base import AlreadyExists, ClientRecord, PoolRecord, Store

__all__ = [
    "ConfigError",
    "GatehouseConfig",
    "Problem",
    "apply_config",
    "config_json_schema",
    "load_config",
    "server_settings",
]

log = structlog.get_logger("gateway.config")

Loc: TypeAlias = tuple[str | int, ...]


# --- errors -------------------------------------------------------------------------------------------


class Problem(NamedTuple):
    """One thing wrong with a config file: where (a key path, or a line and column) and what."""

    where: str
    message: str


class ConfigError(Exception):
    """A config file that cannot be used; ``str()`` is one ``<file>: <where>: <message>`` line per problem."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(
            f"{self.source}: {p.where}: {p.message}" if p.where else f"{self.source}: {p.message}"
            for p in self.problems
        )


class _Issue(NamedTuple):
    """A problem found by a validator, at ``loc`` below the validated model; ``value`` is what was found."""

    loc: Loc
    expected: str
    value: object = None
    show_value: bool = True


def _invalid(issues: Sequence[_Issue]) -> PydanticCustomError:
    """The error a validator raises to report several problems, each at its own key path."""
    summary = "; ".join(issue.expected for issue in issues)
    return PydanticCustomError("gatehouse_config", "{summary}", {"summary": summary, "issues": list(issues)})


def _expected(message: str) -> PydanticCustomError:
    """The error a field validator raises: ``message`` says what was expected (the value is added)."""
    return PydanticCustomError("gatehouse_config", "{summary}", {"summary": message})


# --- value types ----------------------------------------------------------------------------------------

_POOL_ID_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}_[0-9A-Za-z]+$"
_CLIENT_ID_PATTERN = r"^[\w+]{1,128}$"
_DURATION_PATTERN = r"^\s*[0-9]+\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?|d|days?)\s*$"
_REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$"
_ACCOUNT_PATTERN = r"^[0-9]{12}$"
_ACCESS_KEY_PATTERN = r"^[A-Za-z0-9]{4,128}$"
_URL_PATTERN = r"^https?://[^\s/?#]+([/?#]\S*)?$"
_NO_SPACE_PATTERN = r"^\S+$"
_EMAIL_SENDER_PATTERN = r"^[^@]+@[^@\s>]+>?$"
_ROLE_ARN_PATTERN = r"^arn:[\w-]+:iam::[0-9]{12}:role/[\w+=,.@/-]+$"
_FUNCTION_ARN_PATTERN = r"^arn:[\w-]+:lambda:[a-z0-9-]+:[0-9]{12}:function:[\w-]{1,64}(:[\w$-]{1,128})?$"
_HANDLER_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$"
_CUSTOM_NAME_PATTERN = r"^(custom:)?[\w-]{1,20}$"
_NAME_PATTERN = r"^[\w\s+=,.@-]+$"  # Cognito's UserPoolNameType and ClientNameType

# What a value that does not match a pattern should have looked like.
_PATTERN_HINTS = {
    _POOL_ID_PATTERN: "expected a user pool id of the form <region>_<letters and digits>, e.g. us-east-1_Example01",
    _CLIENT_ID_PATTERN: "expected an app client id of 1 to 128 letters, digits, '_' or '+'",
    _DURATION_PATTERN: "expected a duration with a unit, e.g. '60 minutes', '1h', '30d', '300s'",
    _REGION_PATTERN: "expected an AWS region name, e.g. us-east-1",
    _ACCOUNT_PATTERN: "expected 12 digits in quotes, e.g. '000000000000'",
    _ACCESS_KEY_PATTERN: "expected an access key id of 4 to 128 letters and digits",
    _URL_PATTERN: "expected an http:// or https:// URL",
    _NO_SPACE_PATTERN: "expected a name without spaces",
    _EMAIL_SENDER_PATTERN: "expected an email address, optionally with a name: 'Example <no-reply@example.com>'",
    _ROLE_ARN_PATTERN: "expected an IAM role ARN, e.g. arn:aws:iam::000000000000:role/Admins",
    _FUNCTION_ARN_PATTERN: "expected a Lambda function ARN, e.g. arn:aws:lambda:us-east-1:000000000000:function:name",
    _HANDLER_PATTERN: "expected a Python handler as package.module:function",
    _CUSTOM_NAME_PATTERN: "expected a custom attribute name of 1 to 20 letters, digits, '_' or '-'",
    _NAME_PATTERN: "expected a name of letters, digits, spaces and + = , . @ _ -",
}

_UNIT_NAMES = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_UNIT_SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def _duration(text: str) -> tuple[int, str]:
    """``"90 minutes"`` -> ``(90, "minutes")`` (Cognito's token validity and its unit)."""
    match = re.fullmatch(r"\s*([0-9]+)\s*([a-z]+)\s*", text)
    assert match is not None  # the field's pattern was checked first
    unit = match.group(2)
    return int(match.group(1)), _UNIT_NAMES.get(unit[0], "minutes")


def _duration_between(low: int, high: int, limits: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        amount, unit = _duration(value)
        if not low <= amount * _UNIT_SECONDS[unit] <= high:
            raise _expected(f"expected a duration between {limits}")
        return value

    return check


def _digits_in_quotes(value: object) -> object:
    # YAML reads unquoted digits as a number (and a leading zero as octal), which loses an account id's zeros.
    if isinstance(value, int) and not isinstance(value, bool):
        raise _expected("expected 12 digits in quotes, e.g. '000000000000' (YAML reads unquoted digits as a number)")
    return value


def _on_off(value: object) -> object:
    # YAML 1.1 reads an unquoted OFF/ON as false/true.
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return value


def _attribute_text(value: object) -> object:
    # Cognito's attribute values are strings; let `email_verified: true` and `custom:level: 3` through.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


AttributeValue = Annotated[
    str,
    BeforeValidator(_attribute_text),
    WithJsonSchema({"type": ["string", "boolean", "number"]}),
]
NonEmptySecret = Annotated[SecretStr, Field(min_length=1)]


# An app client's secret, as long as the API's (ClientSecretType: 24 to 64 characters): a short one is guessable.
# Any characters but white space, as files written before the check may hold (the API's own are [\w+]).
def _no_white_space(secret: SecretStr) -> SecretStr:
    if any(c.isspace() for c in secret.get_secret_value()):
        raise _expected("expected a secret without white space")
    return secret


ClientSecret = Annotated[SecretStr, Field(min_length=24, max_length=64), AfterValidator(_no_white_space)]


def _one_address(value: str) -> str:
    """A sender or reply-to address the pool's messages can carry: the API's own check (CreateUserPool), so
    ``config check`` refuses what ``serve`` could not apply."""
    try:
        check_address_header(value, "address")
    except InvalidParameterException:
        raise _expected(_PATTERN_HINTS[_EMAIL_SENDER_PATTERN]) from None
    return value


EmailAddress = Annotated[str, Field(pattern=_EMAIL_SENDER_PATTERN), AfterValidator(_one_address)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- the server: section ---------------------------------------------------------------------------------


class AdminCredentialsConfig(_Model):
    """The key pair that signs (SigV4) admin calls such as AdminCreateUser."""

    access_key_id: str = Field(pattern=_ACCESS_KEY_PATTERN, description="The access key id admin callers use.")
    secret_access_key: NonEmptySecret = Field(description="The secret key; use ${ENV_VAR}, never a literal.")


# Upper bounds of the Argon2id cost (also of the GATEHOUSE_ARGON2_* variables). argon2 takes 32-bit numbers, and
# refuses larger ones at every hash, not at start; far below that, a hash would take minutes or all the memory.
ARGON2_MAX_MEMORY_KIB = 4 * 1024 * 1024  # 4 GiB
ARGON2_MAX_TIME_COST = 1000
ARGON2_MAX_PARALLELISM = 64


class Argon2Config(_Model):
    """Argon2id cost of password hashes (default: OWASP's minimum, 19456 KiB, 2 passes, 1 lane)."""

    memory_kib: int | None = Field(
        None, ge=8, le=ARGON2_MAX_MEMORY_KIB, description="Memory per hash in KiB (at least 8 per lane)."
    )
    time_cost: int | None = Field(None, ge=1, le=ARGON2_MAX_TIME_COST, description="Passes over the memory.")
    parallelism: int | None = Field(None, ge=1, le=ARGON2_MAX_PARALLELISM, description="Lanes.")

    @model_validator(mode="after")
    def _enough_memory_per_lane(self) -> Argon2Config:
        # RFC 9106 §3.1: m >= 8p, as GATEHOUSE_ARGON2_MEMORY_KIB is checked; else every hash would fail.
        defaults = Argon2Params()
        memory = self.memory_kib if self.memory_kib is not None else defaults.memory_kib
        lanes = self.parallelism if self.parallelism is not None else defaults.parallelism
        if memory < 8 * lanes:
            issue = _Issue(("memory_kib",), f"expected at least 8 KiB per lane ({8 * lanes} for parallelism {lanes})",
                           memory)  # fmt: skip
            raise _invalid([issue])
        return self


class SmtpConfig(_Model):
    """Send email (codes, invitations) through this SMTP server; without it they go to the data dir's outbox."""

    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535, description="Default 25.")
    username: str | None = None
    password: NonEmptySecret | None = None
    use_tls: bool | None = Field(None, description="Implicit TLS (SMTPS, usually port 465).")
    start_tls: bool | None = Field(None, description="STARTTLS after connecting (usually port 587); not with use_tls.")
    timeout: float | None = Field(None, gt=0, description="Seconds.")

    @model_validator(mode="after")
    def _one_kind_of_tls(self) -> SmtpConfig:
        if self.use_tls and self.start_tls:  # every send would fail (aiosmtplib refuses the pair)
            issue = _Issue(("start_tls",), "expected use_tls or start_tls, not both (implicit TLS already encrypts "
                           "the connection STARTTLS would upgrade)", True)  # fmt: skip
            raise _invalid([issue])
        return self


class SmsWebhookConfig(_Model):
    """Send SMS by POSTing {"to": ..., "message": ...} to this URL."""

    url: str = Field(pattern=_URL_PATTERN)
    headers: dict[str, SecretStr] | None = Field(None, description="Extra request headers (e.g. Authorization).")
    timeout: float | None = Field(None, gt=0, description="Seconds.")

    @model_validator(mode="after")
    def _one_kind_of_credentials(self) -> SmsWebhookConfig:
        if any(name.lower() == "authorization" for name in self.headers or {}) and "@" in urlsplit(self.url).netloc:
            # aiohttp refuses to send such a request: every SMS would fail.
            issue = _Issue(
                ("url",), "expected credentials in the url or an Authorization header, not both", show_value=False
            )
            raise _invalid([issue])
        return self


_HandlerSpec = Annotated[str, StringConstraints(pattern=_HANDLER_PATTERN)]


class _AwsCredentialsConfig(_Model):
    """An AWS API's key pair: both, or neither (then the AWS credentials of the environment)."""

    access_key_id: str | None = Field(None, pattern=_ACCESS_KEY_PATTERN)
    secret_access_key: NonEmptySecret | None = Field(None, description='Use "${ENV_VAR}", never a literal.')

    @model_validator(mode="after")
    def _both_credentials(self) -> Self:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            issue = _Issue(
                ("access_key_id",), "expected access_key_id and secret_access_key together", show_value=False
            )
            raise _invalid([issue])
        return self


class KmsConfig(_AwsCredentialsConfig):
    """Where the codes given to user pools' custom sender triggers are encrypted under the pool's KMS key
    (LambdaConfig.KMSKeyID): the AWS KMS API of this endpoint (AWS itself by default, or anything that speaks that
    API), signed with these credentials (by default the AWS credentials of the environment)."""

    endpoint_url: str | None = Field(
        None, pattern=_URL_PATTERN, description="The KMS API endpoint (default: AWS's, for the key's region)."
    )
    region: str | None = Field(None, pattern=_REGION_PATTERN, description="Default: the key ARN's region.")


class LambdaInvokeConfig(_AwsCredentialsConfig):
    """Where user pools' Lambda triggers (LambdaConfig) are invoked: the AWS Lambda Invoke API of this endpoint
    (AWS itself by default, or anything that speaks that API), signed with these credentials (by default the
    AWS credentials of the environment)."""

    endpoint_url: str | None = Field(
        None, pattern=_URL_PATTERN, description="The Lambda API endpoint (default: AWS's, for the function's region)."
    )
    region: str | None = Field(None, pattern=_REGION_PATTERN, description="Default: the function ARN's region.")
    max_concurrency: int | None = Field(None, ge=1, le=1024, description="Invocations at once per process (32).")
    functions: dict[Annotated[str, StringConstraints(pattern=_FUNCTION_ARN_PATTERN)], _HandlerSpec] | None = Field(
        None,
        description='Function ARNs run as Python handlers in Gatehouse\'s process: {ARN: "package.module:handler"}.',
    )


class LogConfig(_Model):
    level: Literal["debug", "info", "warning", "error", "critical"] | None = None
    format: Literal["json", "console"] | None = Field(None, description="json lines (default) or console.")


class TokenBucketConfig(_Model):
    """One token bucket: ``rate`` calls a second on average, up to ``burst`` at once; rate 0 turns it off."""

    rate: float | None = Field(None, ge=0, description="Tokens added a second (0: no limit).")
    burst: int | None = Field(None, ge=1, description="Most tokens the bucket holds.")


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise _expected("expected an IP address or CIDR range, e.g. 10.0.0.0/8") from None
    return value


class RateLimitsConfig(_Model):
    """Limits on unsigned Cognito calls (InitiateAuth, SignUp, ForgotPassword, ...), answered past them with
    TooManyRequestsException. Counted in each process's memory: N workers allow up to N times these."""

    per_client: TokenBucketConfig | None = Field(None, description="Per app client (default 200/s, burst 2000).")
    per_address: TokenBucketConfig | None = Field(None, description="Per source address (default 100/s, burst 1000).")
    trusted_proxies: list[Annotated[str, AfterValidator(_cidr)]] | None = Field(
        None,
        description="CIDRs of reverse proxies whose X-Forwarded-For is believed; otherwise the peer address counts.",
    )


def issuer_url_problem(value: str) -> str | None:
    """What keeps ``value`` from being the token issuers' base URL, or None. An issuer is a URL with a scheme,
    a host, optionally a port and a path, and no query or fragment (OpenID Connect Discovery 1.0 §3, RFC 8414
    §2); credentials in it would be in every token and discovery document."""
    from urllib.parse import urlsplit

    if re.fullmatch(_URL_PATTERN, value) is None:
        return "expected an http:// or https:// URL"
    try:
        parts = urlsplit(value)
    except ValueError:  # "Invalid IPv6 URL": a "[" without its "]", or what is between them not an IPv6 address
        return "expected a host name, an IPv4 address or an IPv6 address in brackets"
    try:
        parts.port  # noqa: B018  # raises ValueError when it is not a port number
    except ValueError:
        return "expected a port number from 0 to 65535 after the host"
    if parts.query or parts.fragment or "?" in value or "#" in value:
        return "expected no query (?) or fragment (#): the URL starts every token's issuer (iss)"
    if "@" in parts.netloc:
        return "expected no user name or password: the URL is in every token's issuer (iss)"
    return None


def _issuer_url(value: str) -> str:
    problem = issuer_url_problem(value)
    if problem is not None:
        raise _expected(problem)
    return value


def _postgres_url(url: SecretStr) -> SecretStr:
    problem = postgres_url_problem(url.get_secret_value())
    if problem is not None:
        raise _expected(problem)
    return url


class ServerConfig(_Model):
    """What `gatehouse serve` runs with. Command-line options and GATEHOUSE_ADMIN_* variables win over these."""

    host: str | None = Field(None, min_length=1, description="Address to listen on (default 127.0.0.1).")
    port: int | None = Field(None, ge=0, le=65535, description="Port to listen on (default 9229).")
    public_url: Annotated[str, Field(pattern=_URL_PATTERN), AfterValidator(_issuer_url)] | None = Field(
        None, description="The URL clients reach Gatehouse at; token issuers start with it."
    )
    workers: int | None = Field(None, ge=1, le=256, description="Processes sharing the port.")
    region: str | None = Field(None, pattern=_REGION_PATTERN, description="The region in ARNs (default us-east-1).")
    account_id: Annotated[str | None, BeforeValidator(_digits_in_quotes)] = Field(
        None, pattern=_ACCOUNT_PATTERN, description="The account id in ARNs, quoted (default '000000000000')."
    )
    data_dir: Path | None = Field(None, description="Database, keys and outbox (relative to the working directory).")
    database: Path | None = Field(None, description="The SQLite file (default <data_dir>/gatehouse.db).")
    database_url: Annotated[SecretStr, AfterValidator(_postgres_url)] | None = Field(
        None,
        description='A PostgreSQL database several servers share, instead of the SQLite file: "${DATABASE_URL}".',
    )
    database_pool_size: int | None = Field(
        None, ge=1, le=1000, description="The most connections each process keeps to the PostgreSQL database (10)."
    )
    max_body_bytes: int | None = Field(None, ge=1024, description="Largest request body accepted.")
    admin: AdminCredentialsConfig | None = None
    argon2: Argon2Config | None = None
    smtp: SmtpConfig | None = None
    sms_webhook: SmsWebhookConfig | None = None
    lambda_invoke: LambdaInvokeConfig | None = Field(
        None, alias="lambda", description="Where user pools' Lambda triggers are invoked."
    )
    kms: KmsConfig | None = Field(None, description="Where custom sender triggers' codes are encrypted.")
    default_email_sender: EmailAddress | None = Field(None, description="From address of pools that set no email.from.")
    log: LogConfig | None = None
    rate_limits: RateLimitsConfig | None = None
    code_send_limits: CodeSendLimitsConfig | None = None


# --- pools ----------------------------------------------------------------------------------------------


class PasswordPolicyConfig(_Model):
    """Cognito's PasswordPolicyType. A key left out keeps the value of Cognito's default policy (every
    character class required, 8 characters) -- not the API's false for a member missing from a partial
    PasswordPolicy: writing `minimum_length: 12` must not quietly drop the other requirements."""

    minimum_length: int | None = Field(None, ge=6, le=99)
    require_uppercase: bool | None = None
    require_lowercase: bool | None = None
    require_numbers: bool | None = None
    require_symbols: bool | None = None
    password_history_size: int | None = Field(None, ge=0, le=24)
    temporary_password_validity_days: int | None = Field(None, ge=0, le=365)

    def cognito(self) -> dict[str, Any]:
        names = {
            "minimum_length": "MinimumLength", "require_uppercase": "RequireUppercase",
            "require_lowercase": "RequireLowercase", "require_numbers": "RequireNumbers",
            "require_symbols": "RequireSymbols", "password_history_size": "PasswordHistorySize",
            "temporary_password_validity_days": "TemporaryPasswordValidityDays",
        }  # fmt: skip
        given = {names[k]: v for k, v in self.model_dump().items() if v is not None}
        return {**DEFAULT_PASSWORD_POLICY, **given}


class CustomAttributeConfig(_Model):
    """A custom attribute (``custom:<name>`` in tokens and the API). Cognito fixes it once the pool exists."""

    name: str = Field(pattern=_CUSTOM_NAME_PATTERN, description="Without or with the custom: prefix.")
    type: Literal["String", "Number", "DateTime", "Boolean"] = "String"
    mutable: bool = True
    developer_only: bool = False
    min_length: int | None = Field(None, ge=0, le=2048, description="String only.")
    max_length: int | None = Field(None, ge=0, le=2048, description="String only.")
    min_value: int | None = Field(None, description="Number only.")
    max_value: int | None = Field(None, description="Number only.")

    @property
    def full_name(self) -> str:
        return self.name if self.name.startswith("custom:") else f"custom:{self.name}"

    def issues(self) -> list[_Issue]:
        issues = []
        for key in ("min_length", "max_length"):
            if getattr(self, key) is not None and self.type != "String":
                issues.append(_Issue((key,), "expected only on a String attribute", getattr(self, key)))
        for key in ("min_value", "max_value"):
            if getattr(self, key) is not None and self.type != "Number":
                issues.append(_Issue((key,), "expected only on a Number attribute", getattr(self, key)))
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            issues.append(_Issue(("max_length",), f"expected at least min_length ({self.min_length})", self.max_length))
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            issues.append(_Issue(("max_value",), f"expected at least min_value ({self.min_value})", self.max_value))
        return issues

    def cognito(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Name": self.name.removeprefix("custom:"),
            "AttributeDataType": self.type,
            "Mutable": self.mutable,
            "DeveloperOnlyAttribute": self.developer_only,
        }
        if self.type == "String" and (self.min_length is not None or self.max_length is not None):
            entry["StringAttributeConstraints"] = {
                k: str(v) for k, v in (("MinLength", self.min_length), ("MaxLength", self.max_length)) if v is not None
            }
        if self.type == "Number" and (self.min_value is not None or self.max_value is not None):
            entry["NumberAttributeConstraints"] = {
                k: str(v) for k, v in (("MinValue", self.min_value), ("MaxValue", self.max_value)) if v is not None
            }
        return entry


def _needs(*placeholders: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        missing = [p for p in placeholders if p not in value]
        if missing:
            raise _expected("expected a message containing " + " and ".join(missing))
        return value

    return check


CodeMessage = Annotated[str, AfterValidator(_needs("{####}"))]
InviteMessage = Annotated[str, AfterValidator(_needs("{username}", "{####}"))]


class VerificationMessageConfig(_Model):
    """The message with a sign-up or attribute verification code; {####} is the code."""

    email_subject: str | None = Field(None, min_length=1, max_length=140)
    email_message: CodeMessage | None = Field(None, min_length=6, max_length=20000, description="Must contain {####}.")
    sms_message: CodeMessage | None = Field(None, min_length=6, max_length=140, description="Must contain {####}.")


class InviteMessageConfig(_Model):
    """The invitation AdminCreateUser sends; {username} is the user name and {####} the temporary password."""

    email_subject: str | None = Field(None, min_length=1, max_length=140)
    email_message: InviteMessage | None = Field(None, min_length=6, max_length=20000)
    sms_message: InviteMessage | None = Field(None, min_length=6, max_length=140)


class AdminCreateUserSettings(_Model):
    allow_admin_create_user_only: bool = Field(False, description="Refuse self sign-up (SignUp).")
    invite: InviteMessageConfig | None = None


class EmailSettings(_Model):
    from_: EmailAddress = Field(alias="from", description="The sender of the pool's email.")
    reply_to: EmailAddress | None = None


class RefreshTokenRotationConfig(_Model):
    enabled: bool = Field(description="Issue a new refresh token with every refresh and invalidate the old one.")
    retry_grace_period_seconds: int = Field(0, ge=0, le=60, description="How long the old token still works.")


_AUTH_FLOWS = Literal[
    "ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_CUSTOM_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_AUTH", "ALLOW_CLIENT_TOKEN_AUTH", "ADMIN_NO_SRP_AUTH",
    "CUSTOM_AUTH_FLOW_ONLY", "USER_PASSWORD_AUTH", "ALLOW_TOKEN_EXCHANGE_IMPERSONATION",
    "ALLOW_TOKEN_EXCHANGE_DELEGATION",
]  # fmt: skip
_LEGACY_FLOWS = frozenset({"ADMIN_NO_SRP_AUTH", "CUSTOM_AUTH_FLOW_ONLY", "USER_PASSWORD_AUTH"})
# GetDerivedToken's flows: they sign no user in, so ALLOW_CLIENT_TOKEN_AUTH may go with them.
_EXCHANGE_FLOWS = frozenset({"ALLOW_TOKEN_EXCHANGE_IMPERSONATION", "ALLOW_TOKEN_EXCHANGE_DELEGATION"})

# Cognito's limits on token lifetimes (the developer guide's quotas page).
ShortTokenValidity = Annotated[
    str, Field(pattern=_DURATION_PATTERN), AfterValidator(_duration_between(300, 86400, "5 minutes and 1 day"))
]
RefreshTokenValidity = Annotated[
    str,
    Field(pattern=_DURATION_PATTERN),
    AfterValidator(_duration_between(3600, 3650 * 86400, "60 minutes and 3650 days")),
]

_CLIENT_RESERVED = {
    "UserPoolId": "the pool's id",
    "ClientName": "name:",
    "ClientSecret": "secret:",
    "GenerateSecret": "secret:",
}
_POOL_RESERVED = {"PoolName": "name:"}


TermsLanguage = Literal[
    "cognito:default", "cognito:english", "cognito:dutch", "cognito:french", "cognito:spanish", "cognito:german",
    "cognito:bahasa-indonesia", "cognito:italian", "cognito:japanese", "cognito:korean",
    "cognito:portuguese-brazil", "cognito:chinese-simplified", "cognito:chinese-traditional",
]  # fmt: skip
TermsName = Literal["terms-of-use", "privacy-policy"]
TermsLink = Annotated[str, Field(pattern=_URL_PATTERN, max_length=1024)]


_CIMD_POLICY_ID_PATTERN = r"^[a-z0-9]+$"  # CIMDPolicyIdType
# CacheDurationType's range (one day to one year), as the CIMD service takes it.
CacheDuration = Annotated[
    str,
    Field(pattern=_DURATION_PATTERN),
    AfterValidator(_duration_between(MIN_CACHE_SECONDS, MAX_CACHE_SECONDS, "1 day and 1 year")),
]


class CimdPolicyConfig(_Model):
    """A client ID metadata document policy (CreateCIMDPolicy): external public clients whose client_id is
    an https URL matching one of ``url_patterns`` sign in with the settings of the app client ``client``."""

    id: str = Field(
        min_length=1, max_length=64, pattern=_CIMD_POLICY_ID_PATTERN,
        description="The policy's fixed id (lowercase letters and digits); unique across the file's pools.",
    )  # fmt: skip
    name: str = Field(min_length=1, max_length=32, description="The policy's name (PolicyName).")
    client: str = Field(pattern=_CLIENT_ID_PATTERN, description="The id of an app client declared in this pool.")
    url_patterns: list[str] = Field(
        min_length=1,
        max_length=5,
        description="One to five https URL patterns; a * stands for the whole first host label or within a "
        "path segment, e.g. https://*.example.com/clients/*.json.",
    )
    cache_duration: CacheDuration | None = Field(
        None, description="How long a fetched document is kept when it sets no max-age, 1 day to 1 year "
        "(e.g. '7d'; default 1 day).",
    )  # fmt: skip

    @property
    def cache_seconds(self) -> int:
        if self.cache_duration is None:
            return DEFAULT_CACHE_SECONDS
        amount, unit = _duration(self.cache_duration)
        return amount * _UNIT_SECONDS[unit]

    def cognito_request(self) -> dict[str, Any]:
        """The CreateCIMDPolicy / UpdateCIMDPolicy members (without the pool's id)."""
        return {"ClientId": self.client, "PolicyName": self.name, "URLPatterns": list(self.url_patterns),
                "CacheDuration": self.cache_seconds}  # fmt: skip

    def issues(self) -> list[_Issue]:
        """The checks CreateCIMDPolicy makes: the service model's constraints on the name and each pattern,
        and the CIMD service's own on a pattern's form (https, a path, * only where it may stand)."""
        issues: list[_Issue] = []
        model = ServiceModel.load("cognito-idp")
        base = {"UserPoolId": "us-east-1_Check", "ClientId": "check", "PolicyName": "check",
                "URLPatterns": ["https://example.com/check"]}  # fmt: skip
        try:
            model.validate_input("CreateCIMDPolicy", {**base, "PolicyName": self.name})
        except GatehouseError as exc:
            issues.append(_Issue(("name",), f"expected a valid PolicyName ({_constraint(exc.message)})", self.name))
        for index, pattern in enumerate(self.url_patterns):
            try:
                check_pattern(pattern)
                model.validate_input("CreateCIMDPolicy", {**base, "URLPatterns": [pattern]})
            except GatehouseError as exc:
                issues.append(_Issue(("url_patterns", index), f"expected a URL pattern ({_constraint(exc.message)})",
                                     pattern))  # fmt: skip
        issues.extend(_duplicates(self.url_patterns, ("url_patterns",), str))
        return issues


def _constraint(message: str) -> str:
    """A wire validation message without its "1 validation error detected: Value '...' at 'x' failed to
    satisfy constraint:" preamble (the value is shown once, by the problem line)."""
    return message.split("failed to satisfy constraint: ", 1)[-1].rstrip(".")


class SessionTrackingConfig(_Model):
    """SetUserPoolSessionConfiguration: whether the pool tracks users' sessions (ListUserSessions,
    RevokeUserSession) and how many token sessions a user may hold."""

    enabled: bool = Field(description="Track sessions (UserSessionTracking ENABLED).")
    max_token_sessions_per_user: int = Field(
        DEFAULT_MAX_PER_USER, ge=1, le=100,
        description="Token sessions a user may hold (1 to 100, default 20); a sign-in beyond it revokes the "
        "least recently used.",
    )  # fmt: skip


class LogDeliveryConfig(_Model):
    """SetLogDeliveryConfiguration: where the pool's exported logs go (gateway/services/log_delivery.py)."""

    user_notification: str | None = Field(
        None,
        pattern=r"^arn:[\w-]+:logs:",
        description="The CloudWatch Logs log group ARN of undelivered-message errors (userNotification, ERROR).",
    )
    user_activity: str | None = Field(
        None, pattern=r"^arn:[\w-]+:(logs|firehose|s3):",
        description="The log group, Firehose stream or S3 bucket ARN of threat-protection auth events "
        "(userAuthEvents, INFO; Plus plan).",
    )  # fmt: skip

    def configurations(self) -> list[dict[str, Any]]:
        """LogConfigurations as SetLogDeliveryConfiguration takes them."""
        wanted: list[dict[str, Any]] = []
        if self.user_notification is not None:
            wanted.append({"EventSource": "userNotification", "LogLevel": "ERROR",
                           "CloudWatchLogsConfiguration": {"LogGroupArn": self.user_notification}})  # fmt: skip
        if self.user_activity is not None:
            service = self.user_activity.split(":")[2]
            member, arn = {
                "logs": ("CloudWatchLogsConfiguration", "LogGroupArn"),
                "firehose": ("FirehoseConfiguration", "StreamArn"),
                "s3": ("S3Configuration", "BucketArn"),
            }[service]
            wanted.append({"EventSource": "userAuthEvents", "LogLevel": "INFO", member: {arn: self.user_activity}})
        return wanted


class ClientConfig(_Model):
    """An app client (Cognito's CreateUserPoolClient) with a fixed id."""

    id: str = Field(pattern=_CLIENT_ID_PATTERN, description="The client id apps are configured with; fixed.")
    name: str = Field(min_length=1, max_length=128, pattern=_NAME_PATTERN)
    secret: ClientSecret | None = Field(
        None, description='Makes a confidential client (24 to 64 characters, no spaces); use "${ENV_VAR}".'
    )
    explicit_auth_flows: list[_AUTH_FLOWS] | None = None
    access_token_validity: ShortTokenValidity | None = Field(
        None, description="How long access tokens live, 5 minutes to 1 day (e.g. '1h'; default 60 minutes)."
    )
    id_token_validity: ShortTokenValidity | None = Field(
        None, description="How long ID tokens live, 5 minutes to 1 day (default 60 minutes)."
    )
    refresh_token_validity: RefreshTokenValidity | None = Field(
        None, description="How long refresh tokens live, 60 minutes to 3650 days (e.g. '30d'; the default)."
    )
    read_attributes: list[str] | None = None
    write_attributes: list[str] | None = None
    # The file's own default (the API's is LEGACY): don't reveal which users exist unless asked to.
    prevent_user_existence_errors: bool = Field(True, description="Default true (ENABLED; false is LEGACY).")
    enable_token_revocation: bool | None = None
    refresh_token_rotation: RefreshTokenRotationConfig | None = None
    auth_session_validity: int | None = Field(None, ge=3, le=15, description="Minutes a sign-in session lasts.")
    callback_urls: list[str] | None = None
    logout_urls: list[str] | None = None
    default_redirect_uri: str | None = None
    allowed_oauth_flows: list[Literal["code", "implicit", "client_credentials"]] | None = None
    allowed_oauth_scopes: list[str] | None = None
    supported_identity_providers: list[str] | None = None
    sso_session_max_minutes: int | None = Field(
        None, ge=0, le=129600,
        description="Minutes after a fresh sign-in the client reuses the hosted UI's SSO session "
        "(SetUserPoolClientSessionConfiguration; 0 to 129600, default 60). Needs the pool's session_tracking.",
    )  # fmt: skip
    terms: dict[TermsName, dict[TermsLanguage, TermsLink]] | None = Field(
        None,
        description="The client's terms documents (CreateTerms), linked from its sign-up page once both exist: "
        "terms-of-use and privacy-policy, each a map of language (cognito:default, cognito:english ...) to a URL. "
        "When given, these are the client's only documents.",
    )
    cognito: dict[str, Any] = Field(
        default_factory=dict, description="Further CreateUserPoolClient members, verbatim (PascalCase)."
    )

    def issues(self) -> list[_Issue]:
        issues: list[_Issue] = []
        flows = self.explicit_auth_flows or []
        if any(f in _LEGACY_FLOWS for f in flows) and any(f.startswith("ALLOW_") for f in flows):
            issues.append(_Issue(("explicit_auth_flows",), "expected either only ALLOW_ flows or none of them", flows))
        if "ALLOW_CLIENT_TOKEN_AUTH" in flows:
            # GetClientToken: "mutually exclusive with user authentication flows", and for a client with a secret.
            if set(flows) - _EXCHANGE_FLOWS != {"ALLOW_CLIENT_TOKEN_AUTH"}:
                issues.append(
                    _Issue(
                        ("explicit_auth_flows",),
                        "expected ALLOW_CLIENT_TOKEN_AUTH alone (no user flows)",
                        flows,
                    )
                )
            if self.secret is None:
                issues.append(
                    _Issue(("secret",), "expected a secret: the ALLOW_CLIENT_TOKEN_AUTH flow needs one", None, False)
                )
        oauth = self.allowed_oauth_flows or []
        if "client_credentials" in oauth and self.secret is None:
            issues.append(_Issue(("secret",), "expected a secret: the client_credentials flow needs one", None, False))
        if "client_credentials" in oauth and ({"code", "implicit"} & set(oauth)):
            issues.append(_Issue(("allowed_oauth_flows",), "expected client_credentials alone", oauth))
        if {"code", "implicit"} & set(oauth) and not self.callback_urls:
            issues.append(
                _Issue(("callback_urls",), "expected at least one URL for the code/implicit flows", None, False)
            )
        if self.default_redirect_uri is not None and self.default_redirect_uri not in (self.callback_urls or []):
            issues.append(_Issue(("default_redirect_uri",), "expected one of callback_urls", self.default_redirect_uri))
        for key in ("callback_urls", "logout_urls"):
            for index, url in enumerate(getattr(self, key) or []):
                if not re.match(_URL_PATTERN, url) and not re.match(r"^[a-z][a-z0-9+.-]*://\S+$", url):
                    issues.append(_Issue((key, index), "expected a URL", url))
        issues.extend(self._lifetime_issues())
        issues.extend(_escape_hatch_issues(self.cognito, "CreateUserPoolClient", _CLIENT_RESERVED))
        issues.extend(_cognito_request_issues(self))
        return issues

    def _lifetime_issues(self) -> list[_Issue]:
        """ID and access tokens cannot outlive the refresh token (Cognito refuses the client otherwise)."""

        def seconds(value: str | None, default: int) -> int:
            if value is None:
                return default
            amount, unit = _duration(value)
            return amount * _UNIT_SECONDS[unit]

        refresh = seconds(self.refresh_token_validity, 30 * 86400)
        return [
            _Issue((key,), "expected at most refresh_token_validity", getattr(self, key))
            for key in ("access_token_validity", "id_token_validity")
            if seconds(getattr(self, key), 3600) > refresh
        ]

    def cognito_request(self) -> dict[str, Any]:
        """The CreateUserPoolClient / UpdateUserPoolClient members this client declares (never its secret)."""
        request: dict[str, Any] = {"ClientName": self.name}
        units: dict[str, str] = {}
        for key, member, token in (
            ("access_token_validity", "AccessTokenValidity", "AccessToken"),
            ("id_token_validity", "IdTokenValidity", "IdToken"),
            ("refresh_token_validity", "RefreshTokenValidity", "RefreshToken"),
        ):
            value = getattr(self, key)
            if value is not None:
                request[member], units[token] = _duration(value)
        if units:
            request["TokenValidityUnits"] = units
        simple = {
            "explicit_auth_flows": "ExplicitAuthFlows", "read_attributes": "ReadAttributes",
            "write_attributes": "WriteAttributes", "enable_token_revocation": "EnableTokenRevocation",
            "auth_session_validity": "AuthSessionValidity", "callback_urls": "CallbackURLs",
            "logout_urls": "LogoutURLs", "default_redirect_uri": "DefaultRedirectURI",
            "allowed_oauth_flows": "AllowedOAuthFlows", "allowed_oauth_scopes": "AllowedOAuthScopes",
            "supported_identity_providers": "SupportedIdentityProviders",
        }  # fmt: skip
        for key, member in simple.items():
            value = getattr(self, key)
            if value is not None:
                request[member] = copy.deepcopy(value)
        if self.allowed_oauth_flows:
            request["AllowedOAuthFlowsUserPoolClient"] = True
        request["PreventUserExistenceErrors"] = "ENABLED" if self.prevent_user_existence_errors else "LEGACY"
        if self.refresh_token_rotation is not None:
            request["RefreshTokenRotation"] = {
                "Feature": "ENABLED" if self.refresh_token_rotation.enabled else "DISABLED",
                "RetryGracePeriodSeconds": self.refresh_token_rotation.retry_grace_period_seconds,
            }
        return _merge_escape_hatch(request, self.cognito)


def _group_name(value: str) -> str:
    # Cognito's GroupNameType, as CreateGroup checks it: a name with a control or format character would be
    # created from the file and could never be named in an API call.
    try:
        ServiceModel.load("cognito-idp").validate_input(
            "CreateGroup", {"UserPoolId": "us-east-1_Check", "GroupName": value}
        )
    except InvalidParameterException:
        raise _expected(
            "expected a group name of letters, marks, symbols, digits and punctuation (no spaces, control or format "
            "characters)"
        ) from None
    return value


class GroupConfig(_Model):
    """A group; members get it in cognito:groups and, by precedence, its role in cognito:preferred_role."""

    name: Annotated[str, AfterValidator(_group_name)] = Field(min_length=1, max_length=128, pattern=_NO_SPACE_PATTERN)
    description: str | None = Field(None, max_length=2048)
    role_arn: str | None = Field(None, pattern=_ROLE_ARN_PATTERN)
    precedence: int | None = Field(None, ge=0, description="Lower wins when a user's groups have roles.")


def _provider_name(value: str) -> str:
    # Cognito's ProviderNameTypeV2, as CreateIdentityProvider checks it: no underscore after the second
    # character, so that a profile's name <ProviderName>_<subject> tells its provider apart (Acme and Acme_x).
    request = {"UserPoolId": "us-east-1_Check", "ProviderName": value, "ProviderType": "OIDC", "ProviderDetails": {}}
    try:
        ServiceModel.load("cognito-idp").validate_input("CreateIdentityProvider", request)
    except InvalidParameterException:
        raise _expected(
            "expected a provider name as Cognito takes it (no underscore after its second character, no spaces)"
        ) from None
    return value


def _username(value: str) -> str:
    # Cognito's UsernameType, as AdminCreateUser checks it: a name with a control character (NUL, BEL) would
    # be created from the file and could never be named in an API call again.
    if not is_username("us-east-1_Check", value):
        raise _expected("expected a user name of letters, marks, digits, symbols and punctuation (no control or "
                        "format characters)")  # fmt: skip
    return value


class UserConfig(_Model):
    """A seed user, created once: later starts never overwrite its password or attributes."""

    username: Annotated[str, AfterValidator(_username)] = Field(
        min_length=1, max_length=128, pattern=_NO_SPACE_PATTERN,
        description="In a pool with username_attributes, the email address or phone number.",
    )  # fmt: skip
    password: NonEmptySecret | None = Field(
        None, description='Use "${ENV_VAR}" or "${ENV_VAR:-default}". Without one the user must reset it.'
    )
    temporary: bool = Field(False, description="true: must change the password at first sign-in.")
    attributes: dict[str, AttributeValue] = Field(default_factory=dict, description="e.g. email, email_verified.")
    groups: list[str] = Field(default_factory=list, description="Names of groups declared in this pool.")
    enabled: bool = Field(True, description="Enforced at every start when written in the file.")


class GroupRuleConfig(_Model):
    """A claim -> group rule: users whose upstream claim (or SAML attribute) matches are in ``group``; users
    whose claim no longer matches are taken out of it at their next sign-in."""

    claim: str = Field(min_length=1, max_length=256, description="An upstream claim or SAML attribute name.")
    match: Literal["equals", "contains", "starts-with", "regex"] = "equals"
    value: str = Field(min_length=1, max_length=1024)
    group: str = Field(min_length=1, max_length=128, description="A group declared in this pool.")


class PoolHooksConfig(_Model):
    """Python callables run at Cognito's trigger points (gateway/services/hooks.py), loaded from the config file
    only, in every process. Each takes ``(event, context)`` with Cognito's event and may be ``async``."""

    pre_sign_up: str | None = Field(
        None,
        pattern=_HANDLER_PATTERN,
        description='PreSignUp, as "package.module:function"; raising refuses the sign-up.',
    )


class IdentityProviderConfig(_Model):
    """An external IdP of the pool (Cognito's CreateIdentityProvider). ``details`` holds Cognito's
    ProviderDetails keys verbatim, except the secrets, which have their own keys here."""

    name: Annotated[str, AfterValidator(_provider_name)] = Field(
        min_length=1, max_length=32, pattern=r"^[^_\s][^\s]*$",
        description="Social providers are named after their type (Google, Facebook, ...).",
    )  # fmt: skip
    type: Literal["Google", "Facebook", "SignInWithApple", "LoginWithAmazon", "OIDC", "SAML"]
    details: dict[str, str] = Field(
        default_factory=dict, description="ProviderDetails: client_id, authorize_scopes, oidc_issuer, MetadataURL ..."
    )
    client_secret: NonEmptySecret | None = Field(None, description='Use "${ENV_VAR}".')
    private_key: NonEmptySecret | None = Field(None, description="Sign in with Apple's .p8 key; use ${ENV_VAR}.")
    attribute_mapping: dict[str, str] = Field(default_factory=dict, description="Pool attribute: upstream claim.")
    idp_identifiers: list[str] = Field(default_factory=list, max_length=50)
    group_rules: list[GroupRuleConfig] = Field(default_factory=list)
    link_by_verified_email: bool = Field(
        False,
        description="A first sign-in whose upstream email is verified lands on the native user with that verified "
        "email (the pool must sign in with email).",
    )

    def provider_details(self) -> dict[str, str]:
        details = dict(self.details)
        for key in ("client_secret", "private_key"):
            secret = getattr(self, key)
            if secret is not None:
                details[key] = secret.get_secret_value()
        return details

    def issues(self, groups: Sequence[str], known: set[str] | None) -> list[_Issue]:
        from gateway.services.identity_providers import SOCIAL_TYPES, check_group_rules
        from providers.base import ProviderConfigError
        from providers.registry import connector_class

        issues: list[_Issue] = []
        if self.type in SOCIAL_TYPES and self.name != self.type:
            issues.append(_Issue(("name",), f"expected {self.type} (the name of a {self.type} provider)", self.name))
        for key in ("client_secret", "private_key"):
            if key in self.details:
                issues.append(_Issue(("details", key), f"expected {key} as its own key (a secret), not in details",
                                     None, False))  # fmt: skip
        for key in self.details:
            if key.startswith("gatehouse_"):
                expected = "expected group_rules / link_by_verified_email as their own keys (gatehouse_* is the API's)"
                issues.append(_Issue(("details", key), expected, None, False))
        if not issues:
            try:
                connector_class(self.type).complete_details(self.provider_details())
            except ProviderConfigError as exc:
                issues.append(_Issue(("details",), f"expected valid ProviderDetails ({exc})", None, False))
        try:
            check_group_rules([rule.model_dump() for rule in self.group_rules])
        except InvalidParameterException as exc:
            issues.append(_Issue(("group_rules",), f"expected valid group rules ({exc.message})", None, False))
        for index, rule in enumerate(self.group_rules):
            if rule.group not in groups:
                declared = ", ".join(repr(g) for g in groups) or "none declared"
                issues.append(_Issue(("group_rules", index, "group"),
                                     f"expected a group declared in this pool ({declared})", rule.group))  # fmt: skip
        for name in self.attribute_mapping:
            if known is not None and name != "username" and name not in known:
                issues.append(_Issue(("attribute_mapping", name), _attribute_hint(known), name))
        issues.extend(_duplicates(self.idp_identifiers, ("idp_identifiers",), str))
        return issues


class PoolConfig(_Model):
    """A user pool with a fixed id, its clients, groups and seed users."""

    id: str = Field(max_length=55, pattern=_POOL_ID_PATTERN, description="Fixed, so the token issuer is stable.")
    name: str = Field(min_length=1, max_length=128, pattern=_NAME_PATTERN)
    password_policy: PasswordPolicyConfig | None = None
    username_attributes: list[Literal["email", "phone_number"]] | None = Field(
        None, description="Sign in with these instead of a user name (fixed once the pool exists)."
    )
    alias_attributes: list[Literal["email", "phone_number", "preferred_username"]] | None = Field(
        None, description="Also sign in with these (fixed once the pool exists)."
    )
    # The file's own default (the API's is true): AWS recommends case-insensitive user names, and the file's
    # meaning must not change with the API's default.
    username_case_sensitive: bool = Field(False, description="Default false (fixed once the pool exists).")
    auto_verified_attributes: list[Literal["email", "phone_number"]] | None = None
    mfa_configuration: Annotated[Literal["OFF", "ON", "OPTIONAL"], BeforeValidator(_on_off)] | None = None
    deletion_protection: bool | None = None
    schema_: list[CustomAttributeConfig] | None = Field(
        None, alias="schema", description="Custom attributes; new ones are added, existing ones cannot change."
    )
    verification_message: VerificationMessageConfig | None = None
    admin_create_user: AdminCreateUserSettings | None = None
    email: EmailSettings | None = None
    account_recovery: list[Literal["verified_email", "verified_phone_number", "admin_only"]] | None = Field(
        None, description="Where forgot-password codes go, in order of preference."
    )
    tags: dict[str, str] | None = None
    cognito: dict[str, Any] = Field(default_factory=dict, description="Further CreateUserPool members, verbatim.")
    clients: list[ClientConfig] = Field(default_factory=list)
    groups: list[GroupConfig] = Field(default_factory=list)
    users: list[UserConfig] = Field(default_factory=list)
    identity_providers: list[IdentityProviderConfig] = Field(
        default_factory=list, description="External IdPs (Google, Facebook, Apple, Amazon, OIDC, SAML)."
    )
    # Sign-in security (gateway/config_sign_in.py).
    mfa: MfaConfig | None = Field(None, description="MFA mode and factors (software token, SMS, email).")
    devices: DevicesConfig | None = Field(None, description="Device tracking (DeviceConfiguration).")
    sign_in: SignInConfig | None = Field(None, description="First factors of USER_AUTH sign-in, and passkeys.")
    threat_protection: ThreatProtectionConfig | None = Field(
        None, description="Threat protection (AdvancedSecurityMode) and the pool's risk configuration."
    )
    hooks: PoolHooksConfig | None = Field(None, description="Python hooks called at Cognito's trigger points.")
    session_tracking: SessionTrackingConfig | None = Field(
        None, description="Session tracking (SetUserPoolSessionConfiguration); left as it is when not given."
    )
    log_delivery: LogDeliveryConfig | None = Field(
        None,
        description="Log export (SetLogDeliveryConfiguration); when given, the pool's whole configuration (an empty "
        "mapping removes it); left as it is when not given.",
    )
    cimd_policies: list[CimdPolicyConfig] | None = Field(
        None,
        description="Client ID metadata document policies (CreateCIMDPolicy) with fixed ids. When given, these "
        "are the pool's only policies (others are deleted); when not given, the pool's are left as they are.",
    )

    def issues(self) -> list[_Issue]:
        issues: list[_Issue] = []
        if self.mfa is not None and self.mfa_configuration is not None:
            issues.append(_Issue(("mfa_configuration",), "expected mfa or mfa_configuration, not both",
                                 self.mfa_configuration))  # fmt: skip
        if self.mfa is not None and self.mfa.sms is not None and "SmsAuthenticationMessage" in self.cognito:
            # One setting with SMS MFA's wording (SmsMfaConfiguration.SmsAuthenticationMessage), which mfa.sms sets.
            issues.append(_Issue(("cognito", "SmsAuthenticationMessage"), "expected mfa.sms.message instead of this "
                                 "member", self.cognito["SmsAuthenticationMessage"]))  # fmt: skip
        if self.username_attributes and self.alias_attributes:
            issues.append(
                _Issue(("alias_attributes",), "expected username_attributes or alias_attributes, not both",
                       self.alias_attributes)
            )  # fmt: skip
        recovery = self.account_recovery or []
        if "admin_only" in recovery and len(recovery) > 1:
            issues.append(_Issue(("account_recovery",), "expected admin_only alone", recovery))
        for key in ("username_attributes", "alias_attributes", "auto_verified_attributes", "account_recovery"):
            issues.extend(_duplicates(getattr(self, key) or [], (key,), str))
        issues.extend(_duplicates(self.schema_ or [], ("schema",), lambda a: a.full_name, "name"))
        issues.extend(_duplicates(self.clients, ("clients",), lambda c: c.id, "id"))
        issues.extend(_duplicates(self.groups, ("groups",), lambda g: g.name, "name"))
        fold: Callable[[str], str] = (lambda name: name) if self.username_case_sensitive else str.lower
        issues.extend(_duplicates(self.users, ("users",), lambda u: fold(u.username), "username"))
        issues.extend(_escape_hatch_issues(self.cognito, "CreateUserPool", _POOL_RESERVED))
        request_issues = _cognito_request_issues(self)
        issues.extend(request_issues)
        # The checks below read the request's Schema and Policies; one that failed the service model's checks
        # (a cognito: Schema that is not a list of attributes, say) is reported once, above, and not read.
        request_valid = not request_issues
        for index, attribute in enumerate(self.schema_ or []):
            issues.extend(i._replace(loc=("schema", index, *i.loc)) for i in attribute.issues())
        for index, client in enumerate(self.clients):
            issues.extend(i._replace(loc=("clients", index, *i.loc)) for i in client.issues())
        schema: list[dict[str, Any]] | None = None
        if request_valid:
            try:
                schema = build_schema(self.cognito_request().get("Schema"))
            except InvalidParameterException as exc:
                issues.append(_Issue(("cognito", "Schema"), f"expected a valid Schema ({exc.message})", None, False))
        known = {str(a["Name"]) for a in schema or []}
        for index, client in enumerate(self.clients):
            for key in ("read_attributes", "write_attributes"):
                for position, name in enumerate(getattr(client, key) or []):
                    if schema is not None and name not in known:
                        issues.append(_Issue(("clients", index, key, position), _attribute_hint(known), name))
        groups = [g.name for g in self.groups]
        # As the pool will have it (None: Cognito's default policy; a partial one from the cognito: escape hatch
        # is read as the API reads it, which check_password_policy does too).
        policy = (self.cognito_request().get("Policies") or {}).get("PasswordPolicy") if request_valid else None
        for index, user in enumerate(self.users):
            here: Loc = ("users", index)
            for position, group in enumerate(user.groups):
                if group not in groups:
                    declared = ", ".join(repr(g) for g in groups) or "none declared"
                    issues.append(
                        _Issue(
                            (*here, "groups", position), f"expected a group declared in this pool ({declared})", group
                        )
                    )
            issues.extend(_duplicates(user.groups, (*here, "groups"), str))
            issues.extend(self._username_issues(user, here))
            if user.password is not None and request_valid:
                try:
                    check_password_policy(user.password.get_secret_value(), policy)
                except InvalidPasswordException as exc:
                    reason = exc.message.removeprefix("Password did not conform with policy: ")
                    issues.append(
                        _Issue((*here, "password"), f"expected a password that meets the pool's policy ({reason})")
                    )
            if schema is not None:
                for name, value in user.attributes.items():
                    if name not in known:
                        issues.append(_Issue((*here, "attributes", name), _attribute_hint(known), value, False))
                        continue
                    try:
                        validate_attribute_values(schema, {name: value}, creating=True, admin=True)
                    except InvalidParameterException as exc:
                        issues.append(
                            _Issue((*here, "attributes", name), f"expected a valid value ({exc.message})", value)
                        )
        issues.extend(_duplicates(self.identity_providers, ("identity_providers",), lambda p: p.name, "name"))
        providers = ["COGNITO", *(p.name for p in self.identity_providers)]
        for index, client in enumerate(self.clients):
            for position, name in enumerate(client.supported_identity_providers or []):
                if name not in providers:
                    expected = "expected COGNITO or an identity provider declared in this pool"
                    issues.append(_Issue(("clients", index, "supported_identity_providers", position), expected, name))
        for index, provider in enumerate(self.identity_providers):
            found = provider.issues(groups, known if schema is not None else None)
            issues.extend(i._replace(loc=("identity_providers", index, *i.loc)) for i in found)
            signs_in_with_email = "email" in [*(self.username_attributes or []), *(self.alias_attributes or [])]
            if provider.link_by_verified_email and not signs_in_with_email:
                issues.append(_Issue(("identity_providers", index, "link_by_verified_email"),
                                     "expected a pool that signs in with email (username_attributes or "
                                     "alias_attributes holding email)", True))  # fmt: skip
        issues.extend(self._session_issues())
        issues.extend(self._cimd_issues())
        return issues

    def _session_issues(self) -> list[_Issue]:
        issues: list[_Issue] = []
        tracking = self.session_tracking is not None and self.session_tracking.enabled
        for index, client in enumerate(self.clients):
            if client.sso_session_max_minutes is not None and not tracking:
                # SetUserPoolClientSessionConfiguration refuses a pool that does not track sessions.
                expected = ("expected the pool's session_tracking with enabled: true (a client's SSO session "
                            "setting needs session tracking)")  # fmt: skip
                where: Loc = ("clients", index, "sso_session_max_minutes")
                issues.append(_Issue(where, expected, client.sso_session_max_minutes))
        tier = self.cognito.get("UserPoolTier")
        if self.session_tracking is not None and tier == "LITE":
            issues.append(_Issue(("session_tracking",), "expected a pool in the ESSENTIALS or PLUS tier (session "
                                 "management is not in LITE)", None, False))  # fmt: skip
        return issues

    def _cimd_issues(self) -> list[_Issue]:
        policies = self.cimd_policies or []
        issues = _duplicates(policies, ("cimd_policies",), lambda p: p.id, "id")
        clients = [c.id for c in self.clients]
        for index, policy in enumerate(policies):
            issues.extend(i._replace(loc=("cimd_policies", index, *i.loc)) for i in policy.issues())
            if policy.client not in clients:
                declared = ", ".join(repr(c) for c in clients) or "none declared"
                expected = f"expected a client declared in this pool ({declared})"
                issues.append(_Issue(("cimd_policies", index, "client"), expected, policy.client))
        return issues

    def _username_issues(self, user: UserConfig, here: Loc) -> list[_Issue]:
        name = user.username
        if self.username_attributes:
            email_ok = "email" in self.username_attributes and "@" in name
            phone_ok = "phone_number" in self.username_attributes and name.startswith("+")
            if not (email_ok or phone_ok):
                wanted = " or ".join("an email address" if a == "email" else "a phone number (+E.164)"
                                     for a in self.username_attributes)  # fmt: skip
                return [_Issue((*here, "username"), f"expected {wanted} (the pool's username_attributes)", name)]
        elif "@" in name and "email" in (self.alias_attributes or []):
            return [_Issue((*here, "username"), "expected a user name that is not an email address (email is an alias)",
                           name)]  # fmt: skip
        return []

    def cognito_request(self) -> dict[str, Any]:
        """The CreateUserPool members this pool declares (``PoolName`` included)."""
        request: dict[str, Any] = {"PoolName": self.name}
        if self.password_policy is not None:
            request["Policies"] = {"PasswordPolicy": self.password_policy.cognito()}
        for key, member in (
            ("username_attributes", "UsernameAttributes"), ("alias_attributes", "AliasAttributes"),
            ("auto_verified_attributes", "AutoVerifiedAttributes"), ("mfa_configuration", "MfaConfiguration"),
            ("tags", "UserPoolTags"),
        ):  # fmt: skip
            value = getattr(self, key)
            if value is not None:
                request[member] = copy.deepcopy(value)
        request["UsernameConfiguration"] = {"CaseSensitive": self.username_case_sensitive}
        if self.deletion_protection is not None:
            request["DeletionProtection"] = "ACTIVE" if self.deletion_protection else "INACTIVE"
        if self.schema_ is not None:
            request["Schema"] = [attribute.cognito() for attribute in self.schema_]
        if self.verification_message is not None:
            template: dict[str, Any] = {"DefaultEmailOption": "CONFIRM_WITH_CODE"}
            message = self.verification_message
            for value, member in ((message.email_subject, "EmailSubject"), (message.email_message, "EmailMessage"),
                                  (message.sms_message, "SmsMessage")):  # fmt: skip
                if value is not None:
                    template[member] = value
            request["VerificationMessageTemplate"] = template
        if self.admin_create_user is not None:
            admin: dict[str, Any] = {"AllowAdminCreateUserOnly": self.admin_create_user.allow_admin_create_user_only}
            invite = self.admin_create_user.invite
            if invite is not None:
                admin["InviteMessageTemplate"] = {
                    member: value
                    for value, member in ((invite.email_subject, "EmailSubject"),
                                          (invite.email_message, "EmailMessage"), (invite.sms_message, "SMSMessage"))
                    if value is not None
                }  # fmt: skip
            request["AdminCreateUserConfig"] = admin
        if self.email is not None:
            email: dict[str, Any] = {"EmailSendingAccount": "DEVELOPER", "From": self.email.from_}
            if self.email.reply_to is not None:
                email["ReplyToEmailAddress"] = self.email.reply_to
            request["EmailConfiguration"] = email
        if self.account_recovery is not None:
            request["AccountRecoverySetting"] = {
                "RecoveryMechanisms": [{"Name": name, "Priority": i} for i, name in enumerate(self.account_recovery, 1)]
            }
        for member, value in sign_in_request_members(self.mfa, self.devices, self.sign_in,
                                                     self.threat_protection).items():  # fmt: skip
            if isinstance(value, dict) and isinstance(request.get(member), dict):
                request[member] = {**request[member], **value}
            else:
                request[member] = value
        return _merge_escape_hatch(request, self.cognito)


class GatehouseConfig(_Model):
    """A Gatehouse config file."""

    model_config = ConfigDict(extra="forbid", title="Gatehouse config file")

    version: Literal[1] = Field(description="The config format version.")
    server: ServerConfig | None = None
    pools: list[PoolConfig] = Field(default_factory=list)
    iam: IamConfig | None = Field(None, description="IAM roles and OIDC providers (STS, identity pools).")
    identity_pools: list[IdentityPoolConfig] = Field(
        default_factory=list, description="Identity pools (Cognito Federated Identities) with fixed ids."
    )
    front_door: FrontDoorConfig | None = Field(
        None, description="Apps that sign their users in through a user pool (docs/front-door.md)."
    )

    _source: str = PrivateAttr(default="<config>")

    @property
    def source(self) -> str:
        """The file this config was read from (for error messages)."""
        return self._source

    @model_validator(mode="after")
    def _consistent(self) -> GatehouseConfig:
        """Checks across keys, all in one pass once every value has the right type, so that they are all
        reported at once (a failing check in a nested model would keep its parent's from running)."""
        issues = _duplicates(self.pools, ("pools",), lambda p: p.id, "id")
        issues.extend(_duplicates(self.identity_pools, ("identity_pools",), lambda p: p.id, "id"))
        if self.iam is not None:
            # As IAM names them: role names in any case are one role ("Role names are not distinguished by case"),
            # and an OIDC provider is its issuer URL without the scheme (its ARN).
            issues.extend(_duplicates(self.iam.roles, ("iam", "roles"), lambda r: r.name.lower(), "name"))
            issuer = lambda o: o.url.split("://", 1)[-1].rstrip("/")  # noqa: E731
            issues.extend(_duplicates(self.iam.oidc_providers, ("iam", "oidc_providers"), issuer, "url"))
            issues.extend(_duplicates(self.iam.saml_providers, ("iam", "saml_providers"), lambda o: o.name, "name"))
        for index, pool in enumerate(self.pools):
            issues.extend(i._replace(loc=("pools", index, *i.loc)) for i in pool.issues())
        seen: dict[str, Loc] = {}
        for p, pool in enumerate(self.pools):
            for c, client in enumerate(pool.clients):
                if client.id in seen and seen[client.id][1] != p:
                    first = _format_loc(seen[client.id])
                    issues.append(
                        _Issue(("pools", p, "clients", c, "id"), f"expected an id not used by {first}", client.id)
                    )
                seen.setdefault(client.id, ("pools", p, "clients", c))
        # A CIMD policy's id is unique across every pool of the store, not only within its pool.
        policy_seen: dict[str, Loc] = {}
        for p, pool in enumerate(self.pools):
            for c, policy in enumerate(pool.cimd_policies or []):
                if policy.id in policy_seen and policy_seen[policy.id][1] != p:
                    first = _format_loc(policy_seen[policy.id])
                    issues.append(
                        _Issue(("pools", p, "cimd_policies", c, "id"), f"expected an id not used by {first}", policy.id)
                    )
                policy_seen.setdefault(policy.id, ("pools", p, "cimd_policies", c))
        issues.extend(self._front_door_issues())
        if issues:
            raise _invalid(issues)
        return self

    def _front_door_issues(self) -> list[_Issue]:
        """Each front-door app's name and host its own, its client (when the file declares it) set up for the
        front door's sign-in, and no upstream on Gatehouse's own host (every request there would go to it)."""
        if self.front_door is None:
            return []
        apps = self.front_door.apps
        loc: Loc = ("front_door", "apps")
        issues = _duplicates(apps, loc, lambda a: a.name, "name")
        issues.extend(_duplicates(apps, loc, lambda a: urlsplit(a.url).netloc, "url"))
        pools = {pool.id: pool for pool in self.pools}
        public_url = self.server.public_url if self.server is not None else None
        for index, app in enumerate(apps):
            at = (*loc, index)
            if public_url and app.upstream and origin_host(public_url) == urlsplit(app.url).netloc:
                issues.append(_Issue((*at, "url"), "expected a host other than server.public_url's", app.url))
            pool = pools.get(app.user_pool)
            if pool is None:
                continue  # a pool made through the API: checked at the first sign-in
            client = next((c for c in pool.clients if c.id == app.client_id), None)
            if client is None:
                issues.append(_Issue((*at, "client_id"), f"expected a client of pool {pool.id}", app.client_id))
                continue
            missing = []
            if "code" not in (client.allowed_oauth_flows or []):
                missing.append("allowed_oauth_flows: [code]")
            if "openid" not in (client.allowed_oauth_scopes or []):
                missing.append("the openid scope")
            if app.callback_url not in (client.callback_urls or []):
                missing.append(f"the callback URL {app.callback_url}")
            if missing:
                message = f"expected a client with {', '.join(missing)}"
                issues.append(_Issue((*at, "client_id"), message, app.client_id))
        return issues


def _duplicates(items: Sequence[Any], loc: Loc, key: Callable[[Any], str], field: str | None = None) -> list[_Issue]:
    seen: dict[str, int] = {}
    issues = []
    for index, item in enumerate(items):
        value = key(item)
        if value in seen:
            where = (*loc, index, field) if field else (*loc, index)
            issues.append(
                _Issue(where, f"expected a value not already given by {_format_loc((*loc, seen[value]))}", value)
            )
        seen.setdefault(value, index)
    return issues


def _attribute_hint(known: set[str]) -> str:
    custom = sorted(name for name in known if name.startswith("custom:"))
    extra = f" or one of this pool's custom attributes ({', '.join(custom)})" if custom else " (no custom attributes)"
    return "expected a standard attribute" + extra


# --- the cognito: escape hatch -------------------------------------------------------------------------


class _EscapeHatchConflict(Exception):
    def __init__(self, loc: Loc) -> None:
        super().__init__(loc)
        self.loc = loc


@functools.cache
def _request_members(operation: str) -> frozenset[str]:
    """The input members of a cognito-idp operation, from the service model botocore ships."""
    raw = botocore.loaders.Loader().load_service_model("cognito-idp", "service-2")
    shape = raw["operations"][operation]["input"]["shape"]
    return frozenset(str(name) for name in raw["shapes"][shape]["members"])


def _escape_hatch_issues(extra: Mapping[str, Any], operation: str, reserved: Mapping[str, str]) -> list[_Issue]:
    """Unknown, reserved and conflicting members of a ``cognito:`` mapping."""
    issues: list[_Issue] = []
    members = _request_members(operation)
    for key in extra:
        if key in reserved:
            issues.append(_Issue(("cognito", key), f"expected {reserved[key]} instead of this member", None, False))
        elif key not in members:
            close = difflib.get_close_matches(str(key), sorted(members), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            issues.append(_Issue(("cognito", key), f"unknown {operation} member{hint}", None, False))
    return issues


def _merge_escape_hatch(request: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(request)

    def merge(target: dict[str, Any], source: Mapping[str, Any], loc: Loc) -> None:
        for key, value in source.items():
            if key in target and isinstance(target[key], dict) and isinstance(value, dict):
                merge(target[key], value, (*loc, key))
            elif key in target:
                raise _EscapeHatchConflict((*loc, key))
            else:
                target[key] = copy.deepcopy(value)

    merge(merged, extra, ("cognito",))
    return merged


def _cognito_request_issues(model: PoolConfig | ClientConfig) -> list[_Issue]:
    """Check the whole Cognito request a pool or client makes against the AWS service model's constraints."""
    try:
        request = model.cognito_request()
    except _EscapeHatchConflict as conflict:
        return [_Issue(conflict.loc, "expected a member the file does not already set with its own keys; set it once",
                       None, False)]  # fmt: skip
    if isinstance(model, PoolConfig):
        operation = "CreateUserPool"
    else:
        operation = "CreateUserPoolClient"
        request = {**request, "UserPoolId": "us-east-1_Check"}
    try:
        ServiceModel.load("cognito-idp").validate_input(operation, request)
    except GatehouseError as exc:
        return [_Issue(("cognito",) if model.cognito else (), f"expected a valid {operation} request ({exc.message})",
                       None, False)]  # fmt: skip
    return []


# --- loading ---------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader, except that a key given twice in one mapping is an error, not a silent
    overwrite (the second ``clients:`` of a pool would otherwise replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            # A list or mapping as a key ("? [a, b]") names no setting; refuse it here, before hashing it.
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, "expected a plain key (text or number), got a list or mapping", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> GatehouseConfig:
    """Read, substitute ``${ENV}`` references in, and validate a config file; raise ConfigError listing every
    problem. ``environ`` defaults to ``os.environ``."""
    source = str(path)
    try:
        with Path(path).open("rb") as file:
            raw_bytes = file.read(MAX_CONFIG_BYTES + 1)
        if len(raw_bytes) > MAX_CONFIG_BYTES:
            raise ConfigError(source, [Problem("", f"expected a file of at most {MAX_CONFIG_BYTES} bytes")])
        text = raw_bytes.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(source, [Problem("", f"cannot read the file: {reason}")]) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only, like yaml.safe_load
        size_problem = _expanded_size_problem(data)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(source, [_yaml_problem(exc)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [Problem("", f"invalid YAML: {exc}")]) from None
    except RecursionError:
        raise ConfigError(source, [Problem("", "invalid YAML: nested too deeply")]) from None
    if size_problem is not None:
        raise ConfigError(source, [Problem("", size_problem)])
    if not isinstance(data, dict):
        got = "an empty file" if data is None else _show(data, secret=False)
        raise ConfigError(source, [Problem("", f"expected a mapping with at least 'version: 1', got {got}")])
    located: list[tuple[Loc, Problem]] = []
    raw = data
    data = _substitute(data, (), os.environ if environ is None else environ, located)
    unencodable = _unencodable_text(data)
    if unencodable:
        # Validated, such a string would break the error's own rendering, or the server when it stores it.
        located += unencodable
        located.sort(key=lambda item: _file_order(raw, item[0]))
        raise ConfigError(source, [problem for _, problem in located])
    unresolved = {loc for loc, _ in located}
    try:
        config = GatehouseConfig.model_validate(data)
    except ValidationError as exc:
        # A value whose ${...} could not be resolved is reported as that, not as whatever it fails next.
        located += [(loc, problem) for loc, problem in _problems(exc) if loc not in unresolved]
    if located:
        located.sort(key=lambda item: _file_order(raw, item[0]))
        raise ConfigError(source, [problem for _, problem in located])
    config._source = source
    return config


# Far beyond any real deployment's file (thousands of seeded users fit in a few hundred kilobytes).
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# Values once YAML aliases are expanded: a few lines of anchors each repeating the one before can stand for
# billions of values ("billion laughs"), which every later walk over the data would take forever to visit.
MAX_CONFIG_VALUES = 1_000_000


class _AliasCycle(Exception):
    pass


def _expanded_size_problem(data: Any) -> str | None:
    """Why ``data`` (as YAML built it, aliases shared) is refused, or None: a mapping or list that contains
    itself through an alias, or more than MAX_CONFIG_VALUES values when expanded. Linear in the distinct
    values: each shared one is sized once."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(value: Any) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        key = id(value)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            raise _AliasCycle
        visiting.add(key)
        children = value.values() if isinstance(value, dict) else value
        total = 1 + sum(size(child) for child in children)
        visiting.discard(key)
        sizes[key] = total
        return total

    try:
        total = size(data)
    except _AliasCycle:
        return "invalid YAML: an alias (*name) refers to a mapping or list that contains it"
    if total > MAX_CONFIG_VALUES:
        return f"expected at most {MAX_CONFIG_VALUES} values once YAML aliases are expanded, got {total}"
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unencodable_text(data: Any) -> list[tuple[Loc, Problem]]:
    """Each key or string value that is not valid Unicode: a lone surrogate from a YAML ``"\\ud800"`` escape,
    or an environment value's undecodable byte (Python keeps it as one) brought in by ``${NAME}``."""
    problems: list[tuple[Loc, Problem]] = []
    seen: set[int] = set()
    text = "valid Unicode text (no lone surrogate such as \\ud800, no undecodable byte from an environment variable)"

    def walk(value: Any, loc: Loc) -> None:
        if isinstance(value, dict | list):
            if id(value) in seen:  # an alias: reported where its anchor is
                return
            seen.add(id(value))
        if isinstance(value, dict):
            for key, child in value.items():
                here = (*loc, key if isinstance(key, str) else str(key))
                if isinstance(key, str) and not _encodable(key):
                    problems.append((here, Problem(_format_loc(here), "expected a key of " + text)))
                else:
                    walk(child, here)
        elif isinstance(value, list):
            for index, child in enumerate(value):
                walk(child, (*loc, index))
        elif isinstance(value, str) and not _encodable(value):
            problems.append((loc, Problem(_format_loc(loc), "expected " + text)))

    walk(data, ())
    return problems


def _yaml_problem(exc: yaml.MarkedYAMLError) -> Problem:
    # Only the problem and where it is: the snippet of the line yaml would print could hold a secret.
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    message = f"invalid YAML: {exc.problem or exc.context or 'syntax error'}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return Problem(where, message)


_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_NAME_AND_DEFAULT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def _substitute(
    value: Any,
    loc: Loc,
    environ: Mapping[str, str],
    problems: list[tuple[Loc, Problem]],
    done: dict[int, Any] | None = None,
) -> Any:
    """``value`` with every ``${NAME}`` / ``${NAME:-default}`` in its strings replaced (keys stay as written).

    ``done``: what each mapping, list and string already met became, by identity. A YAML alias (``*name``) is
    the very object its anchor made: substituted once and shared again, as the file shares it, so that ten
    thousand aliases of a long string cost one copy, not ten thousand (the size check counted them once each).
    A problem in it is reported where it first appears."""
    if done is None:
        done = {}
    if isinstance(value, dict | list | str) and id(value) in done:
        return done[id(value)]
    result: Any
    if isinstance(value, dict):
        result = {k: _substitute(v, (*loc, k if isinstance(k, str) else str(k)), environ, problems, done)
                  for k, v in value.items()}  # fmt: skip
    elif isinstance(value, list):
        result = [_substitute(v, (*loc, i), environ, problems, done) for i, v in enumerate(value)]
    else:
        result = _substitute_text(value, loc, environ, problems)
    if isinstance(value, dict | list | str):
        done[id(value)] = result
    return result


def _substitute_text(value: Any, loc: Loc, environ: Mapping[str, str], problems: list[tuple[Loc, Problem]]) -> Any:
    if not isinstance(value, str) or "${" not in value:
        return value
    found: list[str] = []

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        body = match.group(1)
        parsed = _NAME_AND_DEFAULT.fullmatch(body) if body is not None else None
        if parsed is None:
            found.append("expected ${NAME} or ${NAME:-default}, NAME being letters, digits and _ (write $${ for "
                         "a literal ${)")  # fmt: skip
            return token
        name, default = parsed.group(1), parsed.group(2)
        if default is not None and "${" in default:
            # ${A:-${B}} would end at the first "}": its default is not read as a reference, and the value
            # would be wrong without a word. Refused instead.
            found.append(f"expected a default without ${{...}} in ${{{name}:-default}} (references do not nest)")
            return token
        current = environ.get(name)
        if default is not None and not current:
            return default
        if current is None:
            found.append(f"expected environment variable {name} to be set (or a default: ${{{name}:-default}})")
            return token
        return current

    result = _REFERENCE.sub(replace, value)
    if found:
        where = _format_loc(loc)
        # The value as written holds ${...} references, not secrets; still, a secret's may hold literal text.
        got = "" if _target(loc).holds_secrets else f", got {_show(value, secret=False)}"
        problems.extend((loc, Problem(where, message + got)) for message in found)
    return result


# --- turning pydantic's errors into problems ---------------------------------------------------------------


class _Target(NamedTuple):
    """What the model expects at a key path: its type (None when unknown), whether the value there is a
    secret, and whether it is a mapping or list with secrets somewhere inside."""

    annotation: Any
    secret: bool
    holds_secrets: bool


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_field(model: type[BaseModel], key: str) -> Any:
    """The type of the field a file's key names (its alias when it has one, else its name)."""
    for name, field in model.model_fields.items():
        if key == (field.alias or name):
            return field.annotation
    return None


def _target(loc: Loc) -> _Target:
    annotation: Any = GatehouseConfig
    for step in loc:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if _is_model(annotation) and isinstance(step, str):
            annotation = _model_field(annotation, step)
        elif origin is list and isinstance(step, int):
            annotation = get_args(annotation)[0]
        elif origin is dict and isinstance(step, str):
            annotation = get_args(annotation)[1]
        else:
            annotation = None
        if annotation is None:
            return _Target(None, False, False)
    annotation = _unwrap(annotation)
    return _Target(annotation, annotation is SecretStr, _holds_secret(annotation))


def _holds_secret(annotation: Any) -> bool:
    annotation = _unwrap(annotation)
    if annotation is SecretStr:
        return True
    if _is_model(annotation):
        return any(_holds_secret(field.annotation) for field in annotation.model_fields.values())
    return any(_holds_secret(arg) for arg in get_args(annotation))


def _show(value: object, *, secret: bool, holds_secrets: bool = False) -> str:
    """A value for an error message, never a secret: a secret is not shown, a mapping only by its keys, and
    a list or a plain value given where secrets belong only by its kind."""
    if secret or isinstance(value, SecretStr):
        return "a secret (not shown)"
    if isinstance(value, dict):
        keys = ", ".join(repr(k) for k in list(value)[:6]) + (", ..." if len(value) > 6 else "")
        return f"a mapping with keys {keys}" if value else "an empty mapping"
    if isinstance(value, list) and (holds_secrets or any(isinstance(item, dict | list) for item in value)):
        return f"a list of {len(value)} items"
    if holds_secrets and value is not None:
        kind = {str: "string", bool: "boolean", int: "number", float: "number"}.get(type(value), "value")
        return f"a {kind} (not shown: secrets belong here)"
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _show_at(loc: Loc, value: object) -> str:
    target = _target(loc)
    return _show(value, secret=target.secret, holds_secrets=target.holds_secrets)


_IDENTIFIER = re.compile(r"^[A-Za-z_][\w:-]*$")


def _format_loc(loc: Sequence[str | int]) -> str:
    """``("pools", 0, "clients", 1, "id")`` -> ``pools[0].clients[1].id``."""
    out = ""
    for step in loc:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _IDENTIFIER.match(step):
            out += f".{step}" if out else step
        else:
            out += f"[{step!r}]"
    return out


def _expectation(error: Mapping[str, Any]) -> str:
    kind = str(error["type"])
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    simple = {
        "string_type": "expected a string",
        "int_type": "expected a whole number", "int_parsing": "expected a whole number",
        "int_from_float": "expected a whole number",
        "float_type": "expected a number", "float_parsing": "expected a number",
        "bool_type": "expected true or false", "bool_parsing": "expected true or false",
        "list_type": "expected a list",
        "dict_type": "expected a mapping (key: value lines)", "model_type": "expected a mapping (key: value lines)",
        "model_attributes_type": "expected a mapping (key: value lines)",
        "path_type": "expected a path", "missing": "expected this required key",
    }  # fmt: skip
    if kind in simple:
        return simple[kind]
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        return f"expected one of {expected}" if " or " in expected else f"expected {expected}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        return _PATTERN_HINTS.get(pattern, f"expected a string matching {pattern}")
    limits = {
        "string_too_short": "expected at least {min_length} character(s)",
        "string_too_long": "expected at most {max_length} characters",
        "too_short": "expected at least {min_length} item(s)",
        "too_long": "expected at most {max_length} items",
        "greater_than_equal": "expected a number >= {ge}",
        "greater_than": "expected a number > {gt}",
        "less_than_equal": "expected a number <= {le}",
        "less_than": "expected a number < {lt}",
    }
    if kind in limits:
        return limits[kind].format(**ctx)
    if kind == "gatehouse_config":
        return str(ctx.get("summary", error["msg"]))
    message = str(error["msg"])
    return "expected " + message.removeprefix("Input should be ") if message.startswith("Input should be ") else message


def _file_order(data: Any, loc: Loc) -> tuple[int, ...]:
    """Where ``loc`` is in the file as read, to report problems top to bottom (a missing key after its
    siblings)."""
    position: list[int] = []
    for step in loc:
        if isinstance(data, dict):
            keys = [k if isinstance(k, str) else str(k) for k in data]
            index = keys.index(step) if step in keys else len(keys)
            data = list(data.values())[index] if index < len(keys) else None
        elif isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data):
            index, data = step, data[step]
        else:
            index, data = 1 << 30, None
        position.append(index)
    return tuple(position)


def _problems(exc: ValidationError) -> list[tuple[Loc, Problem]]:
    problems: list[tuple[Loc, Problem]] = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        kind = error["type"]
        ctx = error.get("ctx") or {}
        if kind == "gatehouse_config" and "issues" in ctx:
            for issue in ctx["issues"]:
                here = (*loc, *issue.loc)
                message = issue.expected
                if issue.show_value:
                    message += f", got {_show_at(here, issue.value)}"
                problems.append((here, Problem(_format_loc(here), message)))
        elif kind == "extra_forbidden":
            problems.append((loc, Problem(_format_loc(loc), _unknown_key(loc))))
        elif kind == "missing":
            problems.append((loc, Problem(_format_loc(loc), "required key is missing")))
        elif kind == "too_short" and ctx.get("min_length") == 1 and _target(loc).secret:
            # pydantic words a SecretStr's length as a list's ("at least 1 item(s)").
            problems.append((loc, Problem(_format_loc(loc), "expected a secret that is not empty, got an empty one")))
        elif kind in ("too_short", "too_long") and _target(loc).secret:
            # The same for a longer bound (a client secret's 24 to 64): a secret's length is in characters.
            bound = f"at least {ctx.get('min_length')}" if kind == "too_short" else f"at most {ctx.get('max_length')}"
            got = _show_at(loc, error.get("input"))
            problems.append((loc, Problem(_format_loc(loc), f"expected {bound} characters, got {got}")))
        else:
            got = _show_at(loc, error.get("input"))
            problems.append((loc, Problem(_format_loc(loc), f"{_expectation(error)}, got {got}")))
    return problems


def _unknown_key(loc: Loc) -> str:
    parent = _target(loc[:-1]).annotation
    if not _is_model(parent):
        return "unknown key"
    allowed = [field.alias or name for name, field in parent.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean {close[0]!r}?)"
    return "unknown key; expected one of " + ", ".join(allowed)


# --- server settings and the JSON Schema --------------------------------------------------------------------


def _aws_endpoint(config: KmsConfig | LambdaInvokeConfig) -> dict[str, Any]:
    """An AWS API section's endpoint, region and key pair, as the settings hold them."""
    secret = config.secret_access_key
    return {
        "endpoint_url": config.endpoint_url,
        "region": config.region,
        "access_key_id": config.access_key_id,
        "secret_access_key": Secret(secret.get_secret_value()) if secret is not None else None,
    }


def server_settings(config: GatehouseConfig, base: Settings) -> Settings:
    """``base`` with the file's ``server:`` section applied (keys the file leaves out keep ``base``'s value)."""
    server = config.server
    changes: dict[str, Any] = {}
    if config.front_door is not None:
        changes["front_door"] = tuple(app.to_app() for app in config.front_door.apps)
    if server is None:
        return dataclasses.replace(base, **changes) if changes else base
    for name in ("host", "port", "public_url", "workers", "region", "account_id", "max_body_bytes",
                 "default_email_sender", "database_pool_size"):  # fmt: skip
        value = getattr(server, name)
        if value is not None:
            changes[name] = value
    if server.data_dir is not None:
        changes["data_dir"] = server.data_dir
    if server.database is not None:
        changes["database_path"] = server.database
    if server.database_url is not None:
        changes["database_url"] = Secret(server.database_url.get_secret_value())
    if server.admin is not None:
        changes["admin_access_key_id"] = server.admin.access_key_id
        changes["admin_secret_access_key"] = Secret(server.admin.secret_access_key.get_secret_value())
    if server.argon2 is not None:
        given = {k: v for k, v in server.argon2.model_dump().items() if v is not None}
        changes["argon2"] = dataclasses.replace(base.argon2, **given)
    if server.smtp is not None:
        smtp = server.smtp
        given = {k: v for k, v in smtp.model_dump(exclude={"password"}).items() if v is not None}
        if smtp.password is not None:
            given["password"] = Secret(smtp.password.get_secret_value())
        changes["smtp"] = SmtpSettings(**given)
    if server.sms_webhook is not None:
        hook = server.sms_webhook
        headers = {k: v.get_secret_value() for k, v in (hook.headers or {}).items()}
        changes["sms_webhook"] = SmsWebhookSettings(
            url=hook.url, headers=headers, **({"timeout": hook.timeout} if hook.timeout is not None else {})
        )
    if server.lambda_invoke is not None:
        invoke = server.lambda_invoke
        endpoint = _aws_endpoint(invoke)
        if invoke.max_concurrency is not None:
            endpoint["max_concurrency"] = invoke.max_concurrency
        changes["lambda_invoke"] = LambdaSettings(**endpoint)
    if server.kms is not None:
        changes["kms"] = KmsSettings(**_aws_endpoint(server.kms))
    if server.log is not None:
        if server.log.level is not None:
            changes["log_level"] = server.log.level
        if server.log.format is not None:
            changes["log_json"] = server.log.format == "json"
    if server.rate_limits is not None:
        changes["rate_limits"] = _rate_limit_settings(server.rate_limits, base.rate_limits)
    if server.code_send_limits is not None:
        changes["code_send_limits"] = code_send_limit_settings(server.code_send_limits, base.code_send_limits)
    return dataclasses.replace(base, **changes)


def _rate_limit_settings(config: RateLimitsConfig, base: RateLimitSettings) -> RateLimitSettings:
    changes: dict[str, Any] = {}
    for kind in ("client", "address"):
        bucket: TokenBucketConfig | None = getattr(config, f"per_{kind}")
        if bucket is not None and bucket.rate is not None:
            changes[f"per_{kind}_rate"] = bucket.rate
        if bucket is not None and bucket.burst is not None:
            changes[f"per_{kind}_burst"] = bucket.burst
    if config.trusted_proxies is not None:
        changes["trusted_proxies"] = tuple(config.trusted_proxies)
    return dataclasses.replace(base, **changes)


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the file (``config/schema.json``), for editors' completion and checking: what the file
    may hold before its ``${NAME}`` references are substituted (JSON Schema 2020-12)."""
    schema = _with_references(GatehouseConfig.model_json_schema())
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# A string with a ${NAME} reference in it (not only the $${ escape): load_config substitutes it before the value
# is checked, so it may stand for a number, a boolean or a string of any form ("${SMTP_PORT:-587}").
_REFERENCE_SCHEMA: dict[str, Any] = {"type": "string", "pattern": r"(^|[^$])\$\{"}
# The keywords that constrain a scalar, moved into an anyOf branch beside _REFERENCE_SCHEMA; the others (title,
# description, default) stay on the property.
_SCALAR_KEYWORDS = ("type", "enum", "const", "pattern", "format", "minLength", "maxLength", "minimum", "maximum",
                    "exclusiveMinimum", "exclusiveMaximum", "multipleOf")  # fmt: skip
_SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})
_STRING_CONSTRAINTS = frozenset({"enum", "const", "pattern", "format", "minLength", "maxLength"})


def _with_references(schema: Any) -> Any:
    """``schema`` (a JSON Schema node) where every scalar that a plain string would not satisfy (a number, a
    boolean, an enum, a string with a pattern or a length) also takes a string holding a ``${...}`` reference."""
    if not isinstance(schema, dict):
        return schema
    node = dict(schema)
    for key in ("properties", "patternProperties", "$defs"):
        if isinstance(node.get(key), dict):
            node[key] = {name: _with_references(sub) for name, sub in node[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _with_references(node[key])
    if isinstance(node.get("prefixItems"), list):
        node["prefixItems"] = [_with_references(sub) for sub in node["prefixItems"]]
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            node[key] = _alternatives_with_references([_with_references(sub) for sub in node[key]])
    if _refuses_references(node):
        scalar = {key: node.pop(key) for key in _SCALAR_KEYWORDS if key in node}
        node["anyOf"] = [scalar, _REFERENCE_SCHEMA]
    return node


def _alternatives_with_references(alternatives: list[Any]) -> list[Any]:
    """An anyOf's alternatives with those that took a reference merged back: the reference once, at the end."""
    merged: list[Any] = []
    referenced = False
    for alternative in alternatives:
        wrapped = isinstance(alternative, dict) and alternative.keys() == {"anyOf"}
        if wrapped and _REFERENCE_SCHEMA in alternative["anyOf"]:
            merged += [sub for sub in alternative["anyOf"] if sub != _REFERENCE_SCHEMA]
            referenced = True
        else:
            merged.append(alternative)
    return [*merged, _REFERENCE_SCHEMA] if referenced else merged


def _refuses_references(node: dict[str, Any]) -> bool:
    """Whether a node constrains a scalar so that a string with a reference in it would not satisfy it."""
    kind = node.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()
    if not kinds and not ("enum" in node or "const" in node):
        return False  # an object, a $ref or an anyOf: its parts are handled on their own
    if not kinds <= _SCALAR_TYPES:
        return False  # an object or an array (or null among the types): substitution never makes one
    return "string" not in kinds or bool(_STRING_CONSTRAINTS & node.keys())


# --- applying a config to the store -------------------------------------------------------------------------


class _DryRunStore:
    """Just enough of a Store for PoolService.create_pool / create_client to compute, without writing, the
    settings a pool or client made from a request would have -- so apply_config can tell whether an update
    would change anything, with Cognito's defaults filled in exactly as the service fills them."""

    def __init__(self, pool: PoolRecord | None = None) -> None:
        self._pool = pool

    async def create_pool(self, pool: PoolRecord) -> None:
        return None

    async def get_pool(self, pool_id: str) -> PoolRecord | None:
        return self._pool

    async def create_client(self, client: ClientRecord) -> None:
        return None


# Members Cognito fixes when a pool is created (UpdateUserPool does not take them), by the key that sets them.
_MFA_ONLY_SETTINGS = ("SoftwareTokenMfaConfiguration", "SmsMfaConfiguration", "EmailMfaConfiguration",
                      "WebAuthnConfiguration")  # fmt: skip
_IMMUTABLE = {
    "UsernameAttributes": "username_attributes",
    "AliasAttributes": "alias_attributes",
    "UsernameConfiguration": "username_case_sensitive",
}


def _as_written(value: Any) -> str:
    """A fixed pool setting as the file writes it: ``{"CaseSensitive": True}`` -> ``true``."""
    if isinstance(value, dict) and set(value) == {"CaseSensitive"}:
        value = value["CaseSensitive"]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value else "none"


def _same(a: Any, b: Any) -> bool:
    """Equal, taking a missing member as an empty one and lists as sets (["email", "phone_number"])."""
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))
    return (a or None) == (b or None)


class _Failure(Exception):
    """An item could not be applied; already described in ``problems``."""


class _Applier:
    def __init__(self, services: Services, problems: list[Problem]) -> None:
        self.services = services
        self.problems = problems
        self._dry_run = PoolService(
            cast(Store, _DryRunStore()), region=services.settings.region, account_id=services.settings.account_id
        )

    def fail(self, loc: Loc, what: str, exc: GatehouseError | None = None, **fields: Any) -> None:
        message = what if exc is None else f"{what}: {exc.type_name}: {exc.message}"
        log.error("config.apply_failed", item=_format_loc(loc), error=exc.type_name if exc else None,
                  message=message, **fields)  # fmt: skip
        self.problems.append(Problem(_format_loc(loc), message))

    def lambda_functions(self, functions: Mapping[str, str], loc: Loc) -> None:
        """The function ARNs this process runs as Python handlers (gateway/services/triggers.py LocalFunctions),
        imported now: a handler that cannot be imported is a config error, not a failed sign-in later."""
        from gateway.services.triggers import LocalFunctions, load_handler

        handlers = {}
        for arn, spec in functions.items():
            try:
                handlers[arn] = load_handler(spec)
            except ValueError as exc:
                self.fail((*loc, arn), f"could not load the handler {spec}: {exc}")
        previous = self.services.triggers.local
        self.services.triggers.local = LocalFunctions(
            handlers, max_concurrency=self.services.settings.lambda_invoke.max_concurrency
        )
        if previous is not None:  # (the file applied again, as tests do: the old handlers' threads go)
            previous.close_now()

    async def pool(self, config: PoolConfig, loc: Loc) -> None:
        try:
            pool = await self._pool(config, config.cognito_request(), loc)
        except _Failure:
            return
        except GatehouseError as exc:
            self.fail(loc, f"could not apply user pool {config.id}", exc, pool=config.id)
            return
        sign_in_security = apply_sign_in_security(self.services, pool, config.mfa, config.sign_in,
                                                  config.threat_protection)  # fmt: skip
        await self._guard(sign_in_security, loc, "the sign-in security of user pool " + config.id)
        # Providers first: a client's supported_identity_providers must name existing ones.
        for index, provider in enumerate(config.identity_providers):
            here = (*loc, "identity_providers", index)
            await self._guard(self._identity_provider(pool, provider), here, f"identity provider {provider.name!r}")
        self._hooks(pool, config, loc)
        if config.log_delivery is not None:
            where = (*loc, "log_delivery")
            await self._guard(self._log_delivery(pool.id, config.log_delivery), where, "log delivery")
        if config.session_tracking is not None:
            # Before the clients: their SSO session settings need the pool to track sessions.
            where = (*loc, "session_tracking")
            await self._guard(self._session_tracking(pool.id, config.session_tracking), where, "session tracking")
        for index, client in enumerate(config.clients):
            here = (*loc, "clients", index)
            await self._guard(self._client(pool, client, here), here, f"app client {client.id!r}")
            if client.terms is not None:
                where = (*here, "terms")
                await self._guard(self._terms(pool, client.id, client.terms), where, f"the terms of {client.id!r}")
            if client.sso_session_max_minutes is not None:
                where = (*here, "sso_session_max_minutes")
                await self._guard(self._client_session(pool.id, client.id, client.sso_session_max_minutes), where,
                                  f"the SSO session setting of {client.id!r}")  # fmt: skip
        if config.cimd_policies is not None:
            # After the clients: a policy names one.
            await self._cimd_policies(pool, config.cimd_policies, (*loc, "cimd_policies"))
        for index, group in enumerate(config.groups):
            await self._guard(self._group(pool, group), (*loc, "groups", index), f"group {group.name!r}")
        for index, user in enumerate(config.users):
            here = (*loc, "users", index)
            await self._guard(self._user(pool, user), here, f"user {user.username!r}")

    async def _guard(self, step: Awaitable[None], loc: Loc, what: str) -> None:
        """Run one item's step; a failure is reported and the next item still gets its turn."""
        try:
            await step
        except _Failure:
            pass
        except GatehouseError as exc:
            self.fail(loc, f"could not apply {what}", exc)

    # pools

    async def _pool(self, config: PoolConfig, request: dict[str, Any], loc: Loc) -> PoolView:
        pools = self.services.pools
        try:
            pool = await pools.get_pool(config.id)
        except ResourceNotFoundException:
            try:
                created = await pools.create_pool(config.name, request, pool_id=config.id)
                log.info("config.pool_created", pool=config.id)
                return created
            except InvalidParameterException:
                # Either the request is wrong, or another process created the pool since we looked; then it
                # is updated like any existing pool.
                if await self.services.store.get_pool(config.id) is None:
                    raise
                pool = await pools.get_pool(config.id)
        desired = (await self._dry_run.create_pool(config.name, request, pool_id=config.id)).settings
        immutable_ok = True
        for member, key in _IMMUTABLE.items():
            if not _same(desired.get(member), pool.settings.get(member)):
                immutable_ok = False
                self.fail(
                    (*loc, key),
                    f"cannot change once the pool exists (Cognito fixes it at creation): the pool has "
                    f"{_as_written(pool.settings.get(member))}, the file asks for {_as_written(desired.get(member))}",
                    pool=config.id,
                )  # fmt: skip
        pool = await self._ensure_schema(pool, desired, request, loc)
        # SetUserPoolMfaConfig's settings are applied on their own (config_sign_in), not by UpdateUserPool, and
        # with them the SMS authentication message (mfa.sms.message), which the pool reports as its own
        # SmsAuthenticationMessage too. Nor are the session settings (SetUserPoolSessionConfiguration's, applied on
        # their own; UpdateUserPool keeps them): a pool that tracks sessions would otherwise be rewritten at every
        # start.
        skip = {"SchemaAttributes", *_IMMUTABLE, *_MFA_ONLY_SETTINGS, "SmsAuthenticationMessage", POOL_SESSION_SETTING,
                CLIENT_SESSION_SETTINGS, LOG_DELIVERY_SETTING}  # fmt: skip
        if "UserPoolTier" not in request:
            skip.add("UserPoolTier")  # UpdateUserPool keeps the pool's tier when the request names none

        def comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in settings.items() if k not in skip}

        if pool.name != config.name or comparable(desired) != comparable(pool.settings):
            await pools.update_pool(config.id, request, factors_follow=True)  # SetUserPoolMfaConfig's, applied next
            pool = await pools.get_pool(config.id)
            log.info("config.pool_updated", pool=config.id)
        if not immutable_ok:
            raise _Failure()
        return pool

    async def _ensure_schema(
        self, pool: PoolView, desired: Mapping[str, Any], request: Mapping[str, Any], loc: Loc
    ) -> PoolView:
        current = {str(a["Name"]): a for a in pool.schema}
        wanted = {str(a["Name"]): a for a in desired.get("SchemaAttributes") or []}
        requested = {
            (str(a.get("Name", "")) if str(a.get("Name", "")) in STANDARD_ATTRIBUTES
             else "custom:" + str(a.get("Name", "")).removeprefix("custom:")): (i, a)
            for i, a in enumerate(request.get("Schema") or [])
        }  # fmt: skip
        additions = []
        changed = False
        for name, entry in wanted.items():
            index, raw = requested.get(name, (None, None))
            if name not in current:
                additions.append(raw)
            elif current[name] != entry:
                changed = True
                where = (*loc, "schema", index) if index is not None else (*loc, "schema")
                self.fail(where, f"cannot change attribute {name} once the pool exists (Cognito fixes its "
                          "type and constraints at creation)", pool=pool.id)  # fmt: skip
        for name in current.keys() - wanted.keys():
            log.warning("config.attribute_not_in_file", pool=pool.id, attribute=name)
        if additions:
            await self.services.pools.add_custom_attributes(pool.id, [a for a in additions if a is not None])
            log.info("config.attributes_added", pool=pool.id, attributes=sorted(wanted.keys() - current.keys()))
            pool = await self.services.pools.get_pool(pool.id)
        if changed:
            raise _Failure()
        return pool

    # clients

    async def _client(self, pool: PoolView, config: ClientConfig, loc: Loc) -> None:
        pools = self.services.pools
        request = config.cognito_request()
        secret = config.secret.get_secret_value() if config.secret is not None else None
        current = await self._find_client(pool, config, loc)
        if current is None:
            create = {**request, "ClientSecret": secret} if secret is not None else request
            try:
                await pools.create_client(pool.id, config.name, create, client_id=config.id)
                log.info("config.client_created", pool=pool.id, client=config.id)
                return
            except AlreadyExists:
                current = await self._find_client(pool, config, loc)  # created by another process meanwhile
                if current is None:
                    raise _Failure() from None
        dry_run = PoolService(cast(Store, _DryRunStore(pool.record)), region="", account_id="")
        # With the secret, as the client was made: what a client may be configured with depends on having one.
        desired = await dry_run.create_client(
            pool.id,
            config.name,
            {**request, "ClientSecret": secret} if secret is not None else request,
            client_id=config.id,
        )
        if desired.record.name != current.record.name or desired.settings != current.settings:
            await pools.update_client(pool.id, config.id, request)
            log.info("config.client_updated", pool=pool.id, client=config.id)
        if secret is None and current.secret is not None:
            self.fail(
                (*loc, "secret"),
                "expected the client's secret: the client has one, and Cognito cannot make a client with a secret "
                "public (delete the client to recreate it without one)",
                pool=pool.id, client=config.id,
            )  # fmt: skip
            raise _Failure()
        if secret is not None and not current.secret_matches(secret):
            if secret_was_deleted(current.record, secret):
                # Deleted through DeleteUserPoolClientSecret since (a rotation through the API, perhaps because it
                # leaked): the unchanged file must not make it the client's only secret again, dropping the
                # rotated one. The file needs the client's new secret.
                log.warning(
                    "config.client_secret_deleted",
                    pool=pool.id,
                    client=config.id,
                    detail="the file's secret was deleted through the API: left out; put an active secret in the file",
                )
                return
            # A secret that is still active (a rotation through the API under way) is left alone; any other
            # replaces every secret the client has.
            await self._set_client_secret(pool.id, config.id, secret)
            log.info("config.client_secret_updated", pool=pool.id, client=config.id)

    async def _find_client(self, pool: PoolView, config: ClientConfig, loc: Loc) -> ClientView | None:
        try:
            return await self.services.pools.get_client(pool.id, config.id)
        except ResourceNotFoundException:
            other = await self.services.store.get_client(config.id)
            if other is None:
                return None
            if other.pool_id == pool.id:
                return ClientView(other)  # created by another process since we looked
            self.fail((*loc, "id"), f"expected a client id not used elsewhere: {config.id!r} is a client of pool "
                      f"{other.pool_id}", pool=pool.id, client=config.id)  # fmt: skip
            raise _Failure() from None

    async def _set_client_secret(self, pool_id: str, client_id: str, secret: str) -> None:
        await self.services.pools.set_client_secret(pool_id, client_id, secret)

    async def _terms(
        self, pool: PoolView, client_id: str, declared: Mapping[TermsName, Mapping[TermsLanguage, str]]
    ) -> None:
        """Make the client's terms documents the declared ones: create, change links, delete the others."""
        terms = self.services.terms
        current = {record.name: record for record in await self.services.store.list_client_terms(pool.id, client_id)}
        for name, links in declared.items():
            existing = current.pop(name, None)
            if existing is None:
                request = {"TermsName": name, "TermsSource": "LINK", "Enforcement": "NONE", "Links": dict(links)}
                try:
                    await terms.create(pool.id, client_id, request)
                    log.info("config.terms_created", pool=pool.id, client=client_id, name=name)
                    continue
                except TermsExistsException:  # made by another process meanwhile
                    existing = await terms.get_by_client(pool.id, client_id, name)
            if existing.links != dict(links):
                await terms.update(pool.id, existing.terms_id, {"Links": dict(links)})
                log.info("config.terms_updated", pool=pool.id, client=client_id, name=name)
        for leftover in current.values():
            with contextlib.suppress(ResourceNotFoundException):
                await terms.delete(pool.id, leftover.terms_id)
                log.info("config.terms_deleted", pool=pool.id, client=client_id, name=leftover.name)

    # log export

    async def _log_delivery(self, pool_id: str, config: LogDeliveryConfig) -> None:
        """SetLogDeliveryConfiguration, when the pool's differs from the file's."""
        pools = self.services.pools
        wanted = config.configurations()
        current = log_delivery_configuration(await pools.get_pool(pool_id, fresh=True))["LogConfigurations"]
        if current != wanted:
            await set_log_delivery(pools, pool_id, wanted)
            log.info("config.log_delivery_updated", pool=pool_id)

    # sessions

    async def _session_tracking(self, pool_id: str, config: SessionTrackingConfig) -> None:
        """SetUserPoolSessionConfiguration, when the pool's differs from the file's."""
        sessions = self.services.sessions
        current = sessions.pool_config(await self.services.pools.get_pool(pool_id, fresh=True))
        tracking = "ENABLED" if config.enabled else "DISABLED"
        wanted = {"UserSessionTracking": tracking, "TokenSession": {"MaxPerUser": config.max_token_sessions_per_user}}
        if {k: current[k] for k in wanted} != wanted:
            await sessions.set_pool_config(pool_id, tracking, config.max_token_sessions_per_user)
            log.info("config.session_tracking_updated", pool=pool_id, tracking=tracking)

    async def _client_session(self, pool_id: str, client_id: str, minutes: int) -> None:
        """SetUserPoolClientSessionConfiguration, when the client's differs from the file's."""
        sessions = self.services.sessions
        current = await sessions.client_config(pool_id, client_id)
        if current["SSOSession"]["MaxValidityMinutes"] != minutes:
            await sessions.set_client_config(pool_id, client_id, minutes)
            log.info("config.client_session_updated", pool=pool_id, client=client_id, minutes=minutes)

    # CIMD policies

    async def _cimd_policies(self, pool: PoolView, declared: Sequence[CimdPolicyConfig], loc: Loc) -> None:
        """Make the pool's CIMD policies the declared ones: create them with their fixed ids, update those that
        differ in place, delete the others."""
        current = {p.policy_id: p for p in await self.services.store.cimd_policies_for_matching(pool.id)}
        for index, policy in enumerate(declared):
            current.pop(policy.id, None)
            here = (*loc, index)
            await self._guard(self._cimd_policy(pool, policy, here), here, f"CIMD policy {policy.id!r}")
        for leftover in current.values():
            with contextlib.suppress(ResourceNotFoundException):  # deleted by another process meanwhile
                await self.services.cimd.delete(pool.id, leftover.policy_id)
                log.info("config.cimd_policy_deleted", pool=pool.id, policy=leftover.policy_id)

    async def _cimd_policy(self, pool: PoolView, config: CimdPolicyConfig, loc: Loc) -> None:
        cimd = self.services.cimd
        request = config.cognito_request()
        existing = await self.services.store.get_cimd_policy(pool.id, config.id)
        if existing is None:
            try:
                await cimd.create(pool.id, request, policy_id=config.id)
                log.info("config.cimd_policy_created", pool=pool.id, policy=config.id)
                return
            except AlreadyExists:
                existing = await self.services.store.get_cimd_policy(pool.id, config.id)  # made by another process
                if existing is None:
                    self.fail((*loc, "id"), f"expected a CIMD policy id not used elsewhere: {config.id!r} is a policy "
                              "of another user pool", pool=pool.id, policy=config.id)  # fmt: skip
                    raise _Failure() from None
        if (existing.client_id, existing.name, existing.cache_seconds, list(existing.url_patterns)) != (
            config.client, config.name, config.cache_seconds, list(config.url_patterns)
        ):  # fmt: skip
            await cimd.update(pool.id, config.id, request)
            log.info("config.cimd_policy_updated", pool=pool.id, policy=config.id)

    # groups

    async def _group(self, pool: PoolView, config: GroupConfig) -> None:
        groups = self.services.groups
        try:
            group = await groups.get(pool, config.name)
        except ResourceNotFoundException:
            try:
                await groups.create(pool, config.name, description=config.description, role_arn=config.role_arn,
                                    precedence=config.precedence)  # fmt: skip
                log.info("config.group_created", pool=pool.id, group=config.name)
                return
            except GroupExistsException:
                group = await groups.get(pool, config.name)
        if (group.description, group.role_arn, group.precedence) != (
            config.description,
            config.role_arn,
            config.precedence,
        ):
            await groups.update(pool, config.name, {"Description": config.description, "RoleArn": config.role_arn,
                                                    "Precedence": config.precedence})  # fmt: skip
            log.info("config.group_updated", pool=pool.id, group=config.name)

    # users

    async def _user(self, pool: PoolView, config: UserConfig) -> None:
        users = self.services.users
        password = config.password.get_secret_value() if config.password is not None else None
        permanent = password is not None and not config.temporary
        user = await users.find(pool, config.username)
        created = False
        if user is None:
            try:
                user = await users.admin_create_user(
                    pool, username=config.username, attributes=dict(config.attributes), temporary_password=password,
                    message_action="SUPPRESS", delivery_mediums=[], force_alias_creation=False,
                    run_hooks=False,  # the file's own users are not sign-ups
                )  # fmt: skip
                created = True
                log.info("config.user_created", pool=pool.id, username=user.username)
            except (UsernameExistsException, AliasExistsException) as exc:
                user = await users.find(pool, config.username)  # created by another process meanwhile?
                if user is None:
                    raise exc from None
        # A new user, or one whose creation was cut short before this step, is still on the file's password
        # (checked, so that a temporary password an admin has set since is left alone), meant to be permanent.
        if (
            password is not None
            and permanent
            and user.status == FORCE_CHANGE_PASSWORD
            and (created or (user.password_hash and await self.services.hasher.verify(user.password_hash, password)))
        ):
            user = await users.set_password(pool, user, password, permanent=True, check_history=False)
        if (created or "enabled" in config.model_fields_set) and user.enabled != config.enabled:
            await users.set_enabled(pool, user, config.enabled)
        for group in config.groups:
            await self.services.groups.add_user(pool, user, group)

    # hooks

    def _hooks(self, pool: PoolView, config: PoolConfig, loc: Loc) -> None:
        """Load the pool's configured hooks into this process's registry (the file's replace any before)."""
        from gateway.services.hooks import PreSignUpHook, load_callable

        found: list[PreSignUpHook] = []
        spec = config.hooks.pre_sign_up if config.hooks is not None else None
        if spec is not None:
            try:
                found.append(load_callable(spec))
            except ValueError as exc:
                self.fail((*loc, "hooks", "pre_sign_up"), f"could not load the hook {spec}: {exc}", pool=pool.id)
        self.services.hooks.set_pool_pre_sign_up(pool.id, found)

    # identity providers

    async def _identity_provider(self, pool: PoolView, config: IdentityProviderConfig) -> None:
        """Create the provider, or update it to the file's settings when they differ."""
        idps = self.services.identity_providers
        rules = [rule.model_dump() for rule in config.group_rules]
        try:
            record = await idps.get(pool.id, config.name)
        except ResourceNotFoundException:
            try:
                await idps.create(pool.id, config.name, config.type, config.provider_details(),
                                  config.attribute_mapping, config.idp_identifiers, group_rules=rules,
                                  link_by_verified_email=config.link_by_verified_email)  # fmt: skip
                log.info("config.identity_provider_created", pool=pool.id, provider=config.name)
                return
            except DuplicateProviderException:
                record = await idps.get(pool.id, config.name)
        if record.provider_type != config.type:
            raise InvalidParameterException(f"provider {config.name} exists with type {record.provider_type}")
        wanted = {**config.attribute_mapping}
        wanted.setdefault("username", record.attribute_mapping.get("username", ""))
        stored = idps.details(record)
        if (
            any(stored.get(k) != v for k, v in config.provider_details().items())
            or record.attribute_mapping != wanted
            or record.idp_identifiers != config.idp_identifiers
            or (record.settings.get("group_rules") or []) != rules
            or bool(record.settings.get("link_by_verified_email")) != config.link_by_verified_email
        ):
            await idps.update(pool.id, config.name, config.provider_details(), config.attribute_mapping,
                              config.idp_identifiers, group_rules=rules,
                              link_by_verified_email=config.link_by_verified_email)  # fmt: skip
            log.info("config.identity_provider_updated", pool=pool.id, provider=config.name)


def handler_problems(config: GatehouseConfig) -> list[Problem]:
    """Import the Python handlers the file names (``server.lambda.functions``, the pools' ``hooks``) as a start
    would, for ``gatehouse config check``: what cannot be imported is a problem of the file, found before it is
    served."""
    from gateway.services.triggers import load_handler

    named: list[tuple[Loc, str]] = []
    invoke = config.server.lambda_invoke if config.server is not None else None
    for arn, spec in (invoke.functions or {}).items() if invoke is not None else ():
        named.append((("server", "lambda", "functions", arn), spec))
    for index, pool in enumerate(config.pools):
        if pool.hooks is not None and pool.hooks.pre_sign_up is not None:
            named.append((("pools", index, "hooks", "pre_sign_up"), pool.hooks.pre_sign_up))
    problems = []
    for loc, spec in named:
        try:
            load_handler(spec)
        except ValueError as exc:
            problems.append(Problem(_format_loc(loc), f"could not load the handler {spec}: {exc}"))
    return problems


async def apply_config(services: Services, config: GatehouseConfig) -> None:
    """Make the store hold the file's pools, clients, groups and seed users.

    Idempotent (a second run writes nothing) and safe to run from several processes at once. Every item that
    cannot be applied is logged and reported; the others are still applied. Raises ConfigError at the end if
    any failed."""
    problems: list[Problem] = []
    applier = _Applier(services, problems)
    invoke = config.server.lambda_invoke if config.server is not None else None
    if invoke is not None and invoke.functions:
        applier.lambda_functions(invoke.functions, ("server", "lambda", "functions"))
    for index, pool in enumerate(config.pools):
        await applier.pool(pool, ("pools", index))
    if config.iam is not None:
        problems.extend(Problem(where, message) for where, message in await apply_iam_config(services, config.iam))
    # After user pools and IAM: identity pools name their clients and roles.
    found = await apply_identity_pool_config(services, config.identity_pools)
    problems.extend(Problem(where, message) for where, message in found)
    if problems:
        raise ConfigError(config.source, problems)
    log.info("config.applied", source=config.source, pools=len(config.pools))
