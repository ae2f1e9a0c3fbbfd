"""The config file's ``iam:`` section: IAM roles (trust policy, inline policies) and OIDC providers, declared.

::

    iam:
      oidc_providers:
        - url: https://login.example.com/realm      # the issuer (``iss``) of the provider's tokens
          client_ids: [my-app]                      # accepted ``aud`` values
          jwks_url: https://login.example.com/keys  # optional: where its keys are (default: its discovery doc)
      saml_providers:                               # for AssumeRoleWithSAML
        - name: corp
          metadata: "${CORP_IDP_METADATA}"          # the IdP's metadata XML
      roles:
        - name: app-users
          path: /                                   # optional
          max_session_duration: 3600                # optional, 3600..43200
          trust_policy: {Version: "2012-10-17", Statement: [...]}   # a mapping, or a JSON string
          policies:                                 # inline policies by name
            read-home: {Version: "2012-10-17", Statement: [...]}
          tags: {team: media}

Policy variables (``${aws:username}``) are written ``$${aws:username}`` in the file, since ``${NAME}`` there is
an environment variable.

At every start the store is made to match: declared roles are created or updated (a declared role's inline
policies are exactly the file's), declared providers created or updated. Roles and providers the file does
not name are left alone (they may come from the IAM API). Policy documents are checked when the file is
loaded, so a malformed one is reported with its key path before anything is applied.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError

from gateway.errors import EntityAlreadyExistsException, GatehouseError, NoSuchEntityException
from gateway.services.aws_passthrough import AwsStsPassthrough
from gateway.services.container import Services
from gateway.services.iam import (
    MAX_INLINE_POLICY_BYTES_PER_ROLE,
    MAX_TRUST_POLICY_CHARS,
    IamService,
    policy_size,
)
from gateway.services.policy import PolicyError, check_trust_policy, parse_policy
from gateway.settings import Secret

__all__ = ["IamConfig", "OidcProviderConfig", "RoleConfig", "apply_iam_config"]


def _json_value(value: object) -> object:
    """What ``json.dumps`` makes of a YAML value JSON has no type for: an unquoted date (``Version: 2012-10-17``
    is one in YAML) is the text it was written as; a timestamp or ``!!binary`` is refused."""
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.datetime):
        found = f"an unquoted timestamp ({value.isoformat()}; quote it)"
    else:
        found = "binary data (!!binary)" if isinstance(value, bytes) else f"a {type(value).__name__}"
    # The config file's own error type, so that the message is reported as written.
    raise PydanticCustomError("gatehouse_config", "{summary}",
                              {"summary": f"expected a policy of JSON values, not {found}"})  # fmt: skip


def _as_json_text(value: Any) -> Any:
    """A policy written as a YAML mapping becomes its JSON text; a string is taken as JSON text already."""
    if isinstance(value, dict):
        try:
            return json.dumps(value, default=_json_value)
        except TypeError:  # a key JSON cannot have (a date, a list)
            raise PydanticCustomError("gatehouse_config", "{summary}",
                                      {"summary": "expected a policy whose keys are text"}) from None  # fmt: skip
    return value


def _check(resource_policy: bool) -> Any:
    """A policy's check; ``resource_policy``: a role's trust policy, checked as IAM checks one."""

    def check(text: str) -> str:
        try:
            policy = parse_policy(text, resource_policy=resource_policy)
            if resource_policy:
                check_trust_policy(policy)
        except PolicyError as exc:
            raise ValueError(f"expected a valid policy document ({exc})") from exc
        return text

    return check


def _within_trust_quota(text: str) -> str:
    if policy_size(text) > MAX_TRUST_POLICY_CHARS:
        raise ValueError(
            f"expected a trust policy within IAM's quota of {MAX_TRUST_POLICY_CHARS} characters "
            "(white space not counted)"
        )
    return text


# A policy as the file holds it: a mapping or its JSON text (the schema says so; the model keeps the text).
_PolicyInput = dict[str, Any] | str
TrustPolicy = Annotated[
    str,
    BeforeValidator(_as_json_text, json_schema_input_type=_PolicyInput),
    AfterValidator(_check(True)),
    AfterValidator(_within_trust_quota),
]
IdentityPolicy = Annotated[
    str, BeforeValidator(_as_json_text, json_schema_input_type=_PolicyInput), AfterValidator(_check(False))
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OidcProviderConfig(_Model):
    """An IAM OpenID Connect provider whose tokens AssumeRoleWithWebIdentity accepts."""

    url: str = Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$", description="The issuer URL (the tokens' iss).")
    client_ids: list[str] = Field(min_length=1, max_length=100, description="Accepted aud values.")
    thumbprints: list[str] = Field(default_factory=list, max_length=5)
    jwks_url: str | None = Field(
        None, pattern=r"^https?://\S+$", description="Where the provider's JWKS is (default: its discovery document)."
    )


class RoleConfig(_Model):
    """An IAM role: who may assume it (trust policy) and what its sessions may do (inline policies)."""

    name: str = Field(pattern=r"^[\w+=,.@-]{1,64}$")
    path: str = Field("/", pattern=r"^/([\x21-\x7e]*/)?$")
    description: str | None = Field(None, max_length=1000)
    max_session_duration: int = Field(3600, ge=3600, le=43200, description="Seconds.")
    trust_policy: TrustPolicy = Field(description="The assume-role policy: a mapping or a JSON string.")
    policies: dict[str, IdentityPolicy] = Field(default_factory=dict, description="Inline policies by name.")
    tags: dict[str, str] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _inline_policies_within_quota(self) -> RoleConfig:
        # IAM's quota on a role's inline policies together (what PutRolePolicy would refuse when applied).
        if sum(policy_size(text) for text in self.policies.values()) > MAX_INLINE_POLICY_BYTES_PER_ROLE:
            raise ValueError(
                f"expected inline policies within IAM's quota of {MAX_INLINE_POLICY_BYTES_PER_ROLE} characters "
                "together (white space not counted)"
            )
        return self


class AwsConfig(_Model):
    """Where passthrough roles (tagged gatehouse:aws-role-arn) get real AWS credentials."""

    sts_endpoint_url: str = Field(
        "https://sts.amazonaws.com", pattern=r"^https?://\S+$", description="The AWS STS endpoint."
    )
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    access_key_id: str = Field(pattern=r"^[A-Z0-9]{16,128}$", description="AWS credentials Gatehouse calls STS with.")
    secret_access_key: SecretStr = Field(description='Use "${ENV_VAR}", never a literal.')


class SamlProviderConfig(_Model):
    """An IAM SAML provider whose signed assertions AssumeRoleWithSAML accepts."""

    name: str = Field(pattern=r"^[\w._-]{1,128}$")
    metadata: str = Field(min_length=1000, description="The IdP's SAML 2.0 metadata document (XML).")


class IamConfig(_Model):
    """IAM roles and OIDC providers for Gatehouse's STS and identity pools."""

    oidc_providers: list[OidcProviderConfig] = Field(default_factory=list)
    saml_providers: list[SamlProviderConfig] = Field(default_factory=list)
    roles: list[RoleConfig] = Field(default_factory=list)
    aws: AwsConfig | None = Field(None, description="AWS STS for passthrough roles.")


async def apply_iam_config(services: Services, config: IamConfig) -> list[tuple[str, str]]:
    """Make the store hold the declared providers and roles; returns (key path, problem) for each failure."""
    problems: list[tuple[str, str]] = []
    iam = services.iam
    if config.aws is not None:
        services.credentials.passthrough = AwsStsPassthrough(
            config.aws.sts_endpoint_url,
            config.aws.region,
            config.aws.access_key_id,
            Secret(config.aws.secret_access_key.get_secret_value()),
        )
    for index, provider in enumerate(config.oidc_providers):
        try:
            await _apply_provider(iam, provider)
        except GatehouseError as exc:
            problems.append((f"iam.oidc_providers[{index}]", f"{exc.type_name}: {exc.message}"))
    for index, saml in enumerate(config.saml_providers):
        try:
            await _apply_saml_provider(iam, saml)
        except GatehouseError as exc:
            problems.append((f"iam.saml_providers[{index}]", f"{exc.type_name}: {exc.message}"))
    for index, role in enumerate(config.roles):
        try:
            await _apply_role(iam, role)
        except GatehouseError as exc:
            problems.append((f"iam.roles[{index}]", f"{exc.type_name}: {exc.message}"))
    return problems


# Several worker processes apply the file at once: a create that loses the race becomes an update, and a
# removal someone else already made is not a failure.


async def _apply_provider(iam: IamService, provider: OidcProviderConfig) -> None:
    for _ in range(2):
        try:
            await iam.put_oidc_provider(
                provider.url,
                client_ids=provider.client_ids,
                thumbprints=provider.thumbprints,
                jwks_url=provider.jwks_url,
            )
            return
        except EntityAlreadyExistsException:
            continue  # created meanwhile by another process: the second round updates it


async def _apply_saml_provider(iam: IamService, saml: SamlProviderConfig) -> None:
    arn = iam.saml_provider_arn(saml.name)
    existing = await iam.find_saml_provider(arn)
    if existing is None:
        try:
            await iam.create_saml_provider(saml.name, saml.metadata)
            return
        except EntityAlreadyExistsException:
            existing = await iam.get_saml_provider(arn)
    if existing.metadata != saml.metadata:
        await iam.update_saml_provider(arn, saml.metadata)


async def _apply_role(iam: IamService, role: RoleConfig) -> None:
    existing = await iam.find_role(role.name)
    if existing is None:
        with contextlib.suppress(EntityAlreadyExistsException):
            await iam.create_role(
                role.name,
                role.trust_policy,
                path=role.path,
                description=role.description,
                max_session_duration=role.max_session_duration,
                tags=role.tags,
            )
        existing = await iam.get_role(role.name)
    if (
        existing.assume_role_policy != role.trust_policy
        or existing.description != role.description
        or existing.max_session_duration != role.max_session_duration
        or existing.tags != role.tags
    ):
        existing = await iam.update_role(
            role.name,
            assume_role_policy=role.trust_policy,
            description=role.description,
            max_session_duration=role.max_session_duration,
            tags=role.tags,
        )
    # Policies the file dropped go first: the role's inline policies must fit IAM's size quota together at
    # every step, so one replaced by another is never counted twice.
    for name in set(existing.policy_documents) - set(role.policies):
        with contextlib.suppress(NoSuchEntityException):
            await iam.delete_role_policy(role.name, name)
    for name, document in role.policies.items():
        if existing.policy_documents.get(name) != document:
            await iam.put_role_policy(role.name, name, document)
