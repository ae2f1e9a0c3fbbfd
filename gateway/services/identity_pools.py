"""Identity pools (Cognito Federated Identities): their configuration, roles, role mappings and tags.

CreateIdentityPool ... DeleteIdentityPool, SetIdentityPoolRoles / GetIdentityPoolRoles,
SetPrincipalTagAttributeMap / GetPrincipalTagAttributeMap and TagResource / UntagResource /
ListTagsForResource, as the Amazon Cognito Federated Identities API reference describes them; and role
resolution ("Role-based access control" in the Cognito developer guide): which IAM role an identity's
credentials are for, from the pool's roles and the role mapping of the provider the identity signed in with.

Login provider names. AWS names a user pool in Logins and CognitoIdentityProviders by its issuer without the
scheme, ``cognito-idp.<region>.amazonaws.com/<poolId>``; a Gatehouse user pool's issuer is
``{public_url}/<poolId>``, so its name is ``<host[:port]>/<poolId>``. Both forms are accepted for a Gatehouse
pool (SDKs such as Amplify build the AWS form themselves); identities record the Gatehouse form, so a user is
one identity whichever name a login uses, but are shown (OpenID tokens' ``amr``, DescribeIdentity) with the name
the identity pool lists the user pool under, as a role's trust policy written for AWS expects.
"""

from __future__ import annotations

import copy
import functools
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import (
    ConcurrentModificationException,
    InvalidIdentityPoolConfigurationException,
    InvalidParameterException,
    NotAuthorizedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from gateway.services.change_stamp import ChangeStamps
from gateway.services.pools import CACHE_SECONDS, PoolService
from gateway.services.views import RecordView
from gateway.storage.base import AlreadyExists, IdentityPoolRecord, Store, VersionConflict

# The public providers SupportedLoginProviders may name (the API reference's list).
SOCIAL_PROVIDERS = frozenset(
    {
        "graph.facebook.com",
        "accounts.google.com",
        "www.amazon.com",
        "appleid.apple.com",
        "api.twitter.com",
        "www.digits.com",
    }
)
# The Logins key of the identity service's own OpenID tokens (gateway/services/identities.py).
_COGNITO_IDENTITY_LOGIN = "cognito-identity.amazonaws.com"
# Members of CreateIdentityPool kept as given.
_POOL_MEMBERS = (
    "AllowUnauthenticatedIdentities",
    "AllowClassicFlow",
    "SupportedLoginProviders",
    "DeveloperProviderName",
    "OpenIdConnectProviderARNs",
    "CognitoIdentityProviders",
    "SamlProviderARNs",
    "IdentityPoolTags",
)
ROLE_ARN = re.compile(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_OIDC_PROVIDER_ARN = re.compile(r"arn:aws:iam::\d{12}:oidc-provider/(\S+)")
_SAML_PROVIDER_ARN = re.compile(r"arn:aws:iam::\d{12}:saml-provider/[\w+=,.@-]+")
_AWS_USER_POOL_HOST = re.compile(r"cognito-idp\.([a-z0-9-]+)\.amazonaws\.com")
_USER_POOL_ID = re.compile(r"[\w-]+_[0-9a-zA-Z]+")
_POOL_ARN = re.compile(r"arn:aws:cognito-identity:([a-z0-9-]+):(\d+):identitypool/(\S+)")
MAX_ROLE_MAPPINGS = 10
MAX_COGNITO_PROVIDERS = 50


@functools.lru_cache(maxsize=1024)
def _user_pool_of(user_pool_host: str, name: str) -> str | None:
    """LoginNames.user_pool_of, remembered: every GetId and GetCredentialsForIdentity asks it of the same few
    provider names several times (two regular expressions each)."""
    host, _, pool_id = name.rpartition("/")
    if not _USER_POOL_ID.fullmatch(pool_id):
        return None
    if host == user_pool_host:
        return pool_id
    # AWS's name holds the pool's own region (its issuer, https://cognito-idp.<region>.amazonaws.com/<poolId>,
    # with <poolId> = <region>_<id>): the name of another region names no pool.
    aws = _AWS_USER_POOL_HOST.fullmatch(host)
    if aws is not None and aws[1] == pool_id.rpartition("_")[0]:
        return pool_id
    return None


def aws_user_pool_name(pool_id: str) -> str:
    """AWS's name of a user pool as a login provider: its issuer without the scheme, in the pool's own region
    (a user pool id is ``<region>_<id>``)."""
    return f"cognito-idp.{pool_id.rpartition('_')[0]}.amazonaws.com/{pool_id}"


def new_identity_pool_id(region: str) -> str:
    """``us-east-1:<uuid>``, as Cognito's identity pool ids."""
    return f"{region}:{uuid.uuid4()}"


# Rules of one identity provider's role mapping, at most (Cognito's quota; the wire's list allows 400).
MAX_MAPPING_RULES = 25


@dataclass(frozen=True)
class LoginNames:
    """How login providers are named on this server."""

    user_pool_host: str  # the user pools' issuer without the scheme, e.g. ``127.0.0.1:9229``

    def user_pool_of(self, name: str) -> str | None:
        """The user pool id a provider name refers to (Gatehouse's form or AWS's), or None."""
        return _user_pool_of(self.user_pool_host, name)

    def user_pool_name(self, pool_id: str) -> str:
        """The canonical name of a Gatehouse user pool as a login provider."""
        return f"{self.user_pool_host}/{pool_id}"

    def user_pool_names(self, pool_id: str) -> tuple[str, str]:
        """Both names a Gatehouse user pool answers to."""
        return self.user_pool_name(pool_id), aws_user_pool_name(pool_id)


@dataclass(frozen=True)
class IdentityPoolView(RecordView[IdentityPoolRecord]):
    """What services read of an identity pool."""

    @property
    def region(self) -> str:
        return self.id.partition(":")[0]

    @property
    def allow_unauthenticated(self) -> bool:
        return bool(self.settings.get("AllowUnauthenticatedIdentities"))

    @property
    def allow_classic_flow(self) -> bool:
        return bool(self.settings.get("AllowClassicFlow"))

    @property
    def developer_provider(self) -> str | None:
        name = self.settings.get("DeveloperProviderName")
        return str(name) if name else None

    @property
    def cognito_providers(self) -> list[dict[str, Any]]:
        return list(self.settings.get("CognitoIdentityProviders") or [])

    @property
    def supported_logins(self) -> dict[str, str]:
        return dict(self.settings.get("SupportedLoginProviders") or {})

    @property
    def oidc_provider_arns(self) -> list[str]:
        return list(self.settings.get("OpenIdConnectProviderARNs") or [])

    @property
    def saml_provider_arns(self) -> list[str]:
        return list(self.settings.get("SamlProviderARNs") or [])

    @property
    def roles(self) -> dict[str, str]:
        return dict(self.settings.get("Roles") or {})

    @property
    def role_mappings(self) -> dict[str, dict[str, Any]]:
        return dict(self.settings.get("RoleMappings") or {})

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.settings.get("IdentityPoolTags") or {})

    def identity_pool_type(self) -> dict[str, Any]:
        """The IdentityPool shape: the members as set, lists and maps present even when empty (as Cognito)."""
        result: dict[str, Any] = {
            "IdentityPoolId": self.id,
            "IdentityPoolName": self.name,
            "AllowUnauthenticatedIdentities": self.allow_unauthenticated,
            "AllowClassicFlow": self.allow_classic_flow,
            "SupportedLoginProviders": self.supported_logins,
            "OpenIdConnectProviderARNs": self.oidc_provider_arns,
            "CognitoIdentityProviders": self.cognito_providers,
            "SamlProviderARNs": self.saml_provider_arns,
            "IdentityPoolTags": self.tags,
        }
        if self.developer_provider:
            result["DeveloperProviderName"] = self.developer_provider
        return result


def oidc_provider_host(arn: str) -> str | None:
    """The issuer (without ``https://``) an IAM OIDC provider ARN names: what Logins keys it by."""
    match = _OIDC_PROVIDER_ARN.fullmatch(arn)
    return match[1] if match else None


class IdentityPoolService:
    """Identity pools' configuration, kept in the store in the IdentityPool shape."""

    def __init__(
        self, store: Store, user_pools: PoolService, names: LoginNames, *, region: str, account_id: str
    ) -> None:
        self._store = store
        self._user_pools = user_pools
        self.names = names
        self.region = region
        self.account_id = account_id
        # Set once IAM is there: whether an IAM OIDC or SAML provider ARN names a registered provider.
        self.provider_exists: Callable[[str], Awaitable[bool]] | None = None
        # GetId and GetCredentialsForIdentity read the pool on every call and it changes rarely: each process
        # keeps what it read for CACHE_SECONDS, as PoolService does for user pools. A change made here is
        # seen here at once; one made by another process within CACHE_SECONDS. Writers read fresh.
        # Entries carry the change stamp read before the store read (gateway/services/change_stamp.py): a
        # change made by any process sharing the store makes them stale at once.
        self.stamps = ChangeStamps()
        self._cache: dict[str, tuple[float, int, IdentityPoolView]] = {}

    def arn(self, pool_id: str) -> str:
        return f"arn:aws:cognito-identity:{self.region}:{self.account_id}:identitypool/{pool_id}"

    # --- CRUD ----------------------------------------------------------------------------------------

    async def create(self, params: Mapping[str, Any], *, pool_id: str | None = None) -> IdentityPoolView:
        """CreateIdentityPool; ``pool_id``: a fixed id (the config file's), ResourceConflictException if taken."""
        settings = {key: copy.deepcopy(params[key]) for key in _POOL_MEMBERS if key in params}
        await self._check(settings)
        now = time.time()
        record = IdentityPoolRecord(
            id=pool_id or new_identity_pool_id(self.region),
            name=str(params["IdentityPoolName"]),
            settings=settings,
            created_at=now,
            updated_at=now,
        )
        try:
            await self._store.create_identity_pool(record)
        except AlreadyExists as exc:
            raise ResourceConflictException(f"IdentityPool '{record.id}' already exists.") from exc
        return IdentityPoolView(record)

    def cached(self, pool_id: str) -> IdentityPoolView | None:
        """The pool from this process's short-lived cache, or None (then :meth:`get` reads it): what a hot
        path tries first, with no await."""
        cached = self._cache.get(pool_id)
        if cached is not None and cached[1] == self.stamps.read() and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[2]
        return None

    async def get(self, pool_id: str, *, fresh: bool = False) -> IdentityPoolView:
        """The pool, from this process's short-lived cache unless ``fresh`` (what a writer must read)."""
        if not fresh:
            view = self.cached(pool_id)
            if view is not None:
                return view
        now = time.monotonic()
        stamp = self.stamps.read()
        record = await self._store.get_identity_pool(pool_id)
        if record is None:
            self._cache.pop(pool_id, None)
            raise ResourceNotFoundException(f"IdentityPool '{pool_id}' not found.")
        view = IdentityPoolView(record)
        self._cache[pool_id] = (now, stamp, view)
        return view

    async def update(self, params: Mapping[str, Any]) -> IdentityPoolView:
        """UpdateIdentityPool replaces the pool's configuration with the one given (members left out are
        cleared, as in Cognito), except that a developer provider name, once set, cannot change."""

        def change(record: IdentityPoolRecord) -> None:
            old_developer = record.settings.get("DeveloperProviderName")
            new_developer = params.get("DeveloperProviderName")
            if old_developer and new_developer != old_developer:
                raise InvalidParameterException("Cannot modify the DeveloperProviderName once it has been set.")
            # Roles and maps have operations of their own; tags left out are kept (TagResource owns them too).
            owned = ("Roles", "RoleMappings", "PrincipalTagAttributeMaps", "IdentityPoolTags")
            kept = {key: record.settings[key] for key in owned if record.settings.get(key) and key not in params}
            record.settings = {key: copy.deepcopy(params[key]) for key in _POOL_MEMBERS if key in params}
            record.settings.update(kept)
            record.name = str(params["IdentityPoolName"])

        return await self._modify(params["IdentityPoolId"], change, check=True)

    async def delete(self, pool_id: str) -> None:
        self._cache.pop(pool_id, None)
        deleted = await self._store.delete_identity_pool(pool_id)
        self.stamps.bump()
        if not deleted:
            raise ResourceNotFoundException(f"IdentityPool '{pool_id}' not found.")

    async def list_pools(self, after: str | None, limit: int) -> tuple[list[IdentityPoolView], str | None]:
        page = await self._store.list_identity_pools(after, limit)
        return [IdentityPoolView(record) for record in page.items], page.next_token

    # --- roles -----------------------------------------------------------------------------------------

    async def set_roles(
        self, pool_id: str, roles: Mapping[str, str], mappings: Mapping[str, Mapping[str, Any]] | None
    ) -> None:
        for arn in roles.values():
            if not ROLE_ARN.fullmatch(arn):
                raise NotAuthorizedException(f"Access to Role '{arn}' is forbidden.")
        checked = {key: self._check_mapping(mapping) for key, mapping in (mappings or {}).items()}

        def change(record: IdentityPoolRecord) -> None:
            view = IdentityPoolView(record)
            for key in checked:
                if not self._is_mapping_key(view, key):
                    raise InvalidParameterException(
                        f"Role mapping key '{key}' is not a login provider of this identity pool."
                    )
            record.settings["Roles"] = dict(roles)
            record.settings["RoleMappings"] = checked

        await self._modify(pool_id, change)

    def _check_mapping(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        kind = mapping["Type"]
        if "AmbiguousRoleResolution" not in mapping:
            raise InvalidParameterException("AmbiguousRoleResolution must be set for a role mapping.")
        if kind == "Rules":
            rules = (mapping.get("RulesConfiguration") or {}).get("Rules")
            if not rules:
                raise InvalidParameterException("RulesConfiguration is required for role mappings of type Rules.")
            if len(rules) > MAX_MAPPING_RULES:
                # "You can specify up to 25 rules per identity provider" (RulesConfigurationType.Rules).
                raise InvalidParameterException(f"A role mapping can have at most {MAX_MAPPING_RULES} rules.")
            for rule in rules:
                if not ROLE_ARN.fullmatch(rule["RoleARN"]):
                    raise NotAuthorizedException(f"Access to Role '{rule['RoleARN']}' is forbidden.")
        elif mapping.get("RulesConfiguration"):
            raise InvalidParameterException("RulesConfiguration is only allowed for role mappings of type Rules.")
        return copy.deepcopy(dict(mapping))

    def _is_mapping_key(self, pool: IdentityPoolView, key: str) -> bool:
        """A RoleMappings key names a login provider of the pool: ``<ProviderName>:<ClientId>`` for a user
        pool, the provider's name otherwise."""
        for provider in pool.cognito_providers:
            name, client = str(provider.get("ProviderName", "")), str(provider.get("ClientId", ""))
            pool_id = self.names.user_pool_of(name)
            names = self.names.user_pool_names(pool_id) if pool_id else (name,)
            if key in {f"{n}:{client}" for n in names}:
                return True
        hosts = {oidc_provider_host(arn) for arn in pool.oidc_provider_arns}
        return key in pool.supported_logins or key in hosts

    # --- principal tags --------------------------------------------------------------------------------

    async def set_principal_tags(
        self, pool_id: str, provider: str, use_defaults: bool | None, tags: Mapping[str, str] | None
    ) -> dict[str, Any]:
        entry = {"UseDefaults": bool(use_defaults), "PrincipalTags": dict(tags or {})}

        def change(record: IdentityPoolRecord) -> None:
            if not self.is_login_provider(IdentityPoolView(record), provider):
                raise InvalidParameterException(f"'{provider}' is not a login provider of this identity pool.")
            maps = dict(record.settings.get("PrincipalTagAttributeMaps") or {})
            maps[provider] = entry
            record.settings["PrincipalTagAttributeMaps"] = maps

        await self._modify(pool_id, change)
        return entry

    async def get_principal_tags(self, pool_id: str, provider: str) -> dict[str, Any]:
        pool = await self.get(pool_id)
        if not self.is_login_provider(pool, provider):
            raise ResourceNotFoundException(f"'{provider}' is not a login provider of this identity pool.")
        return self.principal_tag_map(pool, provider)

    def principal_tag_map(self, pool: IdentityPoolView, provider: str) -> dict[str, Any]:
        maps = pool.settings.get("PrincipalTagAttributeMaps") or {}
        for name in self._provider_names(provider):
            if name in maps:
                return dict(maps[name])
        return {"UseDefaults": False, "PrincipalTags": {}}

    def shown_name(self, pool: IdentityPoolView, provider: str, used: str | None = None) -> str:
        """A login provider's name as the pool's configuration gives it, which is how an OpenID token's ``amr``
        (and the ``cognito-identity.amazonaws.com:amr`` of a role's trust policy) and DescribeIdentity name it.
        A Gatehouse user pool is recorded under its canonical name, whichever name its logins use (one user,
        one identity); it is shown as ``used`` (the name a login gave) when the pool lists it under that name,
        else as the pool's first CognitoIdentityProviders entry for it names it, else canonically. Any other
        provider's name is shown as it is."""
        user_pool_id = self.names.user_pool_of(provider)
        if user_pool_id is None:
            return provider
        listed = [str(p.get("ProviderName")) for p in pool.cognito_providers]
        listed = [name for name in listed if self.names.user_pool_of(name) == user_pool_id]
        if used is not None and used in listed:
            return used
        return listed[0] if listed else self.names.user_pool_name(user_pool_id)

    def _provider_names(self, provider: str) -> tuple[str, ...]:
        pool_id = self.names.user_pool_of(provider)
        return self.names.user_pool_names(pool_id) if pool_id else (provider,)

    def is_login_provider(self, pool: IdentityPoolView, provider: str) -> bool:
        names = set(self._provider_names(provider))
        configured = {str(p.get("ProviderName", "")) for p in pool.cognito_providers}
        configured |= set(pool.supported_logins) | {oidc_provider_host(a) or "" for a in pool.oidc_provider_arns}
        configured |= set(pool.saml_provider_arns)
        expanded = {n for name in configured if name for n in self._provider_names(name)}
        return bool(names & expanded)

    # --- tags --------------------------------------------------------------------------------------------

    def pool_id_from_arn(self, arn: str) -> str:
        match = _POOL_ARN.fullmatch(arn)
        if match is None:
            raise InvalidParameterException(f"Invalid ResourceArn: {arn}")
        if arn != self.arn(match[3]):
            # Another account's, region's or partition's pool is not one of these, whatever its id.
            raise ResourceNotFoundException(f"IdentityPool '{match[3]}' not found.")
        return match[3]

    async def tag(self, arn: str, tags: Mapping[str, str]) -> None:
        def change(record: IdentityPoolRecord) -> None:
            merged = {**(record.settings.get("IdentityPoolTags") or {}), **tags}
            if len(merged) > 50:
                raise InvalidParameterException("An identity pool can have at most 50 tags.")
            record.settings["IdentityPoolTags"] = merged

        await self._modify(self.pool_id_from_arn(arn), change)

    async def untag(self, arn: str, keys: Sequence[str]) -> None:
        def change(record: IdentityPoolRecord) -> None:
            tags = dict(record.settings.get("IdentityPoolTags") or {})
            for key in keys:
                tags.pop(key, None)
            record.settings["IdentityPoolTags"] = tags

        await self._modify(self.pool_id_from_arn(arn), change)

    async def tags_of(self, arn: str) -> dict[str, str]:
        return (await self.get(self.pool_id_from_arn(arn))).tags

    # --- checks and the read-modify-write ------------------------------------------------------------------

    async def _check(self, settings: Mapping[str, Any]) -> None:
        for key in settings.get("SupportedLoginProviders") or {}:
            if key not in SOCIAL_PROVIDERS:
                raise InvalidParameterException(f"Invalid login provider: {key}")
        providers = settings.get("CognitoIdentityProviders") or []
        if len(providers) > MAX_COGNITO_PROVIDERS:
            raise InvalidParameterException("Too many Cognito identity providers.")
        for provider in providers:
            name, client_id = provider.get("ProviderName"), provider.get("ClientId")
            if not name or not client_id:
                raise InvalidParameterException("A Cognito identity provider needs a ProviderName and a ClientId.")
            pool_id = self.names.user_pool_of(name)
            if pool_id is None:
                raise InvalidParameterException(f"Invalid Cognito Identity Provider: {name}")
            try:
                client = await self._user_pools.get_client(pool_id, client_id)
            except ResourceNotFoundException as exc:
                raise InvalidParameterException(f"Invalid Cognito Identity Provider: {name}:{client_id}") from exc
            if client.pool_id != pool_id:
                raise InvalidParameterException(f"Invalid Cognito Identity Provider: {name}:{client_id}")
        exists = self.provider_exists
        for arn in settings.get("OpenIdConnectProviderARNs") or []:
            if oidc_provider_host(arn) is None or (exists is not None and not await exists(arn)):
                raise InvalidParameterException(f"Invalid OpenIdConnectProviderARN: {arn}")
        for arn in settings.get("SamlProviderARNs") or []:
            if not _SAML_PROVIDER_ARN.fullmatch(arn) or (exists is not None and not await exists(arn)):
                raise InvalidParameterException(f"Invalid SamlProviderARN: {arn}")
        if len(settings.get("IdentityPoolTags") or {}) > 50:
            raise InvalidParameterException("An identity pool can have at most 50 tags.")
        developer = settings.get("DeveloperProviderName")
        if developer:
            # Identities key a login by (provider name, subject): the developer provider sharing a login provider's
            # name would share its users too (a developer user identifier equal to that provider's subject).
            hosts = {oidc_provider_host(arn) for arn in settings.get("OpenIdConnectProviderARNs") or []}
            if developer in SOCIAL_PROVIDERS or developer == _COGNITO_IDENTITY_LOGIN or developer in hosts:
                raise InvalidParameterException(
                    f"DeveloperProviderName '{developer}' is the name of a login provider; choose another."
                )

    async def _modify(
        self, pool_id: str, change: Callable[[IdentityPoolRecord], None], *, check: bool = False
    ) -> IdentityPoolView:
        """Read, change, write if nobody wrote in between; retried a few times, then reported."""
        for _ in range(5):
            current = await self.get(pool_id, fresh=True)
            record = copy.deepcopy(current.record)
            change(record)
            if check:
                await self._check(record.settings)
            record.updated_at = time.time()
            try:
                view = IdentityPoolView(await self._store.update_identity_pool(record))
            except VersionConflict:
                continue
            self.stamps.bump()
            # Not cached: a write another process committed (and stamped) before this one resumed would leave
            # this older view under the newer stamp. The next read takes the store's.
            self._cache.pop(pool_id, None)
            return view
        raise ConcurrentModificationException()


# --- role resolution -----------------------------------------------------------------------------------


def _claim_values(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [("true" if v else "false") if isinstance(v, bool) else str(v) for v in items]


def rule_matches(rule: Mapping[str, Any], claims: Mapping[str, Any]) -> bool:
    """One MappingRule against a token's claims. A list claim (``cognito:groups``) matches when one of its
    values does; NotEqual when none equals. A claim the token lacks matches no rule."""
    values = _claim_values(claims.get(rule["Claim"]))
    if not values:
        return False
    wanted = str(rule["Value"])
    match rule["MatchType"]:
        case "Equals":
            return wanted in values
        case "NotEqual":
            return wanted not in values
        case "StartsWith":
            return any(v.startswith(wanted) for v in values)
        case "Contains":
            return any(wanted in v for v in values)
    return False


@dataclass(frozen=True)
class RoleChoice:
    """The role chosen for credentials, and the role mapping key that chose it (None: the pool's default)."""

    role_arn: str
    mapping_key: str | None = None


def choose_role(
    pool: IdentityPoolView,
    *,
    authenticated: bool,
    mapping_keys: Sequence[str] = (),
    claims: Mapping[str, Any] | None = None,
    custom_role_arn: str | None = None,
) -> RoleChoice:
    """Which role an identity's credentials are for ("Role-based access control", Cognito developer guide).

    A guest gets the pool's unauthenticated role. A signed-in identity gets, from the role mapping of the
    provider it signed in with: for ``Token``, the CustomRoleArn when the token's ``cognito:roles`` lists it,
    else ``cognito:preferred_role``; for ``Rules``, the CustomRoleArn when a rule that matches gives it, else
    the first rule that matches ("Using rules to assign roles to users"). When the mapping decides
    nothing, AmbiguousRoleResolution gives the authenticated role or denies. Without a mapping: the pool's
    authenticated role. A CustomRoleArn that the chosen way does not allow is refused.
    """
    if not authenticated:
        role = pool.roles.get("unauthenticated")
        if not role:
            raise InvalidIdentityPoolConfigurationException()
        if custom_role_arn and custom_role_arn != role:
            raise NotAuthorizedException(f"Access to Role '{custom_role_arn}' is forbidden.")
        return RoleChoice(role)
    claims = claims or {}
    # Read, never changed here: the settings themselves rather than the views' defensive copies.
    mappings: Mapping[str, Any] = pool.settings.get("RoleMappings") or {}
    for key in mapping_keys:
        mapping = mappings.get(key)
        if mapping is None:
            continue
        chosen: str | None = None
        if mapping["Type"] == "Token":
            roles = _claim_values(claims.get("cognito:roles"))
            if custom_role_arn:
                if custom_role_arn not in roles:
                    raise NotAuthorizedException(f"Access to Role '{custom_role_arn}' is forbidden.")
                return RoleChoice(custom_role_arn, key)
            preferred = claims.get("cognito:preferred_role")
            chosen = str(preferred) if preferred else None
        else:
            matched = [
                str(rule["RoleARN"])
                for rule in (mapping.get("RulesConfiguration") or {}).get("Rules") or []
                if rule_matches(rule, claims)
            ]
            # The first matching rule's role, unless CustomRoleArn names another matching rule's: the roles of
            # every matching rule are the "multiple roles received" that CustomRoleArn chooses among.
            if custom_role_arn and custom_role_arn in matched:
                return RoleChoice(custom_role_arn, key)
            chosen = matched[0] if matched else None
        if chosen is None:
            if mapping.get("AmbiguousRoleResolution") != "AuthenticatedRole":
                raise NotAuthorizedException(f"The ambiguous role mapping rules for: {key} denied this request.")
            chosen = (pool.settings.get("Roles") or {}).get("authenticated")
            if not chosen:
                raise InvalidIdentityPoolConfigurationException()
        if custom_role_arn and custom_role_arn != chosen:
            raise NotAuthorizedException(f"Access to Role '{custom_role_arn}' is forbidden.")
        return RoleChoice(chosen, key)
    role = (pool.settings.get("Roles") or {}).get("authenticated")
    if not role:
        raise InvalidIdentityPoolConfigurationException()
    if custom_role_arn and custom_role_arn != role:
        raise NotAuthorizedException(f"Access to Role '{custom_role_arn}' is forbidden.")
    return RoleChoice(role)
