"""The config file's ``identity_pools:`` section: identity pools with fixed ids, their logins and roles.

::

    identity_pools:
      - id: us-east-1:6f1c8a2e-0b7d-4c55-9d3e-2a4b5c6d7e8f   # fixed, so apps keep their configured pool id
        name: example identities
        allow_unauthenticated: true          # guests (GetId without logins)
        allow_classic_flow: false            # STS may take the pool's OpenID tokens itself
        developer_provider_name: login.example.app
        cognito_identity_providers:          # Gatehouse user pools whose ID tokens are logins
          - {user_pool: us-east-1_Example01, client_id: exampleapp000000000000001, server_side_token_check: true}
        supported_login_providers: {accounts.google.com: example-app.apps.googleusercontent.com}
        openid_connect_provider_arns: ["arn:aws:iam::000000000000:oidc-provider/login.example.com/realms/example"]
        saml_provider_arns: ["arn:aws:iam::000000000000:saml-provider/corp"]
        roles: {authenticated: "arn:aws:iam::000000000000:role/ExampleReaders"}
        role_mappings:                       # Cognito's RoleMapping, verbatim (PascalCase)
          "cognito-idp.us-east-1.amazonaws.com/us-east-1_Example01:exampleapp000000000000001":
            {Type: Token, AmbiguousRoleResolution: AuthenticatedRole}
        principal_tags:                      # SetPrincipalTagAttributeMap per login provider
          "cognito-idp.us-east-1.amazonaws.com/us-east-1_Example01": {use_defaults: true, tags: {dept: custom:dept}}
        tags: {team: example}

A user pool provider is written as the user pool's id and an app client id; it is kept under AWS's name for
the pool (``cognito-idp.<region>.amazonaws.com/<poolId>``), which Gatehouse's pools answer to and which does
not change with the public URL. Each pool's CreateIdentityPool and SetIdentityPoolRoles requests are checked
against botocore's model when the file is loaded, so a bad value is reported with its key path before
anything is applied. At every start the store is made to match: a declared pool is created with its id or
updated to the file's settings (its developer provider name cannot change, as in Cognito); its roles, role
mappings and principal tag maps are set when the file names them. Pools the file does not name are left alone.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.api.model import ServiceModel
from gateway.errors import GatehouseError, ResourceConflictException, ResourceNotFoundException
from gateway.services.container import Services
from gateway.services.identity_pools import aws_user_pool_name

__all__ = ["IdentityPoolConfig", "apply_identity_pool_config"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CognitoProviderConfig(_Model):
    """A Gatehouse user pool whose ID tokens, issued to this app client, are logins of the identity pool."""

    user_pool: str = Field(pattern=r"^[\w-]+_[0-9a-zA-Z]+$", description="The user pool's id.")
    client_id: str = Field(pattern=r"^[\w_]+$", max_length=128, description="The app client the tokens are for.")
    server_side_token_check: bool = Field(False, description="Refuse tokens of signed-out sessions.")


class PrincipalTagsConfig(_Model):
    use_defaults: bool = Field(False, description="username = sub, client = aud.")
    tags: dict[str, str] = Field(default_factory=dict, description="Session tag -> token claim.")


class IdentityPoolConfig(_Model):
    """An identity pool with a fixed id (Cognito's CreateIdentityPool members, in snake_case)."""

    id: str = Field(pattern=r"^[\w-]+:[0-9a-f-]+$", max_length=55, description="Fixed, as apps are configured with it.")
    name: str = Field(min_length=1, max_length=128, pattern=r"^[\w\s+=,.@-]+$")
    allow_unauthenticated: bool = Field(False, description="Guests (identities without logins).")
    allow_classic_flow: bool = Field(False, description="STS may exchange the pool's OpenID tokens itself.")
    developer_provider_name: str | None = Field(None, description="Fixed once set.")
    cognito_identity_providers: list[CognitoProviderConfig] = Field(default_factory=list)
    supported_login_providers: dict[str, str] = Field(default_factory=dict, description="Provider -> app id.")
    openid_connect_provider_arns: list[str] = Field(default_factory=list, description="Registered IAM providers.")
    saml_provider_arns: list[str] = Field(default_factory=list, description="Registered IAM SAML providers.")
    roles: dict[str, str] | None = Field(None, description="authenticated / unauthenticated -> role ARN.")
    role_mappings: dict[str, dict[str, Any]] | None = Field(None, description="Cognito's RoleMapping, verbatim.")
    principal_tags: dict[str, PrincipalTagsConfig] = Field(default_factory=dict)
    tags: dict[str, str] | None = None

    def region(self) -> str:
        return self.id.partition(":")[0]

    def create_request(self) -> dict[str, Any]:
        """The CreateIdentityPool request this entry stands for."""
        request: dict[str, Any] = {
            "IdentityPoolName": self.name,
            "AllowUnauthenticatedIdentities": self.allow_unauthenticated,
            "AllowClassicFlow": self.allow_classic_flow,
            "SupportedLoginProviders": dict(self.supported_login_providers),
            "OpenIdConnectProviderARNs": list(self.openid_connect_provider_arns),
            "SamlProviderARNs": list(self.saml_provider_arns),
            "CognitoIdentityProviders": [
                {
                    "ProviderName": aws_user_pool_name(p.user_pool),
                    "ClientId": p.client_id,
                    "ServerSideTokenCheck": p.server_side_token_check,
                }
                for p in self.cognito_identity_providers
            ],
        }
        if self.developer_provider_name is not None:
            request["DeveloperProviderName"] = self.developer_provider_name
        if self.tags is not None:
            request["IdentityPoolTags"] = dict(self.tags)
        return request

    def roles_request(self) -> dict[str, Any] | None:
        if self.roles is None and self.role_mappings is None:
            return None
        request: dict[str, Any] = {"IdentityPoolId": self.id, "Roles": dict(self.roles or {})}
        if self.role_mappings is not None:
            request["RoleMappings"] = self.role_mappings
        return request

    @model_validator(mode="after")
    def _valid_requests(self) -> IdentityPoolConfig:
        """The requests must pass botocore's model, as the API would check them."""
        model = ServiceModel.load("cognito-identity")
        try:
            model.validate_input("CreateIdentityPool", self.create_request())
            roles = self.roles_request()
            if roles is not None:
                model.validate_input("SetIdentityPoolRoles", roles)
        except GatehouseError as exc:
            raise ValueError(f"expected what Cognito accepts ({exc.message})") from exc
        return self


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return any(current.get(key) != value for key, value in wanted.items())


async def apply_identity_pool_config(services: Services, configs: list[IdentityPoolConfig]) -> list[tuple[str, str]]:
    """Make the store hold the declared identity pools; returns (key path, problem) for each failure."""
    problems: list[tuple[str, str]] = []
    pools = services.identity_pools
    for index, config in enumerate(configs):
        where = f"identity_pools[{index}]"
        request = config.create_request()
        try:
            try:
                current = (await pools.get(config.id)).identity_pool_type()
            except ResourceNotFoundException:
                try:
                    await pools.create(request, pool_id=config.id)
                except ResourceConflictException:  # another worker process created it first
                    await pools.update({"IdentityPoolId": config.id, **request})
            else:
                if _differs(current, request):
                    await pools.update({"IdentityPoolId": config.id, **request})
            roles = config.roles_request()
            if roles is not None:
                await pools.set_roles(config.id, roles["Roles"], roles.get("RoleMappings"))
            for provider, entry in config.principal_tags.items():
                await pools.set_principal_tags(config.id, provider, entry.use_defaults, entry.tags)
        except GatehouseError as exc:
            problems.append((where, f"{exc.type_name}: {exc.message}"))
    return problems
