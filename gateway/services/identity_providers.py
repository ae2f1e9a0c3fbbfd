"""A pool's external identity providers: CreateIdentityProvider ... GetIdentityProviderByIdentifier.

Behaviour follows the Cognito API reference of each operation and the ProviderDetails table of
CreateIdentityProvider: each ProviderType's connector checks its keys and fills in the computed ones
(authorize_url, token_url, attributes_url, jwks_uri, ...), every one of which may be overridden. Social
providers are named after their type (``Google``, ``Facebook``, ``SignInWithApple``, ``LoginWithAmazon``);
AttributeMapping always maps ``username`` to the provider's subject claim (Cognito adds it when absent).

Secrets in ProviderDetails (client secrets, Apple's private key) are sealed at rest with the server's secret
box, bound to their pool, provider and key; Apple's private key is never described back.

Claim -> group rules (Gatehouse's own) live with the provider, in the record's ``settings``: each rule reads an
upstream claim or SAML attribute, matches it (equals / contains / starts-with / regex) and names a pool group.
The config file sets them (``group_rules:``); the Cognito API sets and shows them as the Gatehouse-specific
ProviderDetails key ``gatehouse_group_rules`` (a JSON list), so an unmodified SDK can manage them. Likewise
``gatehouse_link_by_verified_email`` ("true" / "false", the config file's ``link_by_verified_email``) turns on the
built-in PreSignUp policy that links a first federated sign-in to the native user with the same verified email.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import regex

from gateway.errors import (
    ConcurrentModificationException,
    DuplicateProviderException,
    InvalidParameterException,
    ResourceNotFoundException,
)
from gateway.secretbox import SecretBox
from gateway.services.pools import PoolService, PoolView
from gateway.storage.base import AlreadyExists, IdentityProviderRecord, NotFound, Store, VersionConflict
from providers.base import ProviderConfigError
from providers.registry import connector_class

SOCIAL_TYPES = frozenset({"Google", "Facebook", "SignInWithApple", "LoginWithAmazon"})
MATCH_TYPES = ("equals", "contains", "starts-with", "regex")
REGEX_TIMEOUT_SECONDS = 0.05
# What every regex of one sign-in's rules may take together: an upstream decides how many values a claim has
# (hundreds of SAML AttributeValues), and the rules run on the event loop.
REGEX_BUDGET_SECONDS = 0.25
MAX_GROUP_RULES = 100
# Cognito's reserved name of the pool itself as a "provider" (AdminDisableProviderForUser).
COGNITO_PROVIDER = "Cognito"
# Gatehouse's own ProviderDetails keys: kept in the record's settings, never given to a connector.
GATEHOUSE_DETAIL_PREFIX = "gatehouse_"
GROUP_RULES_DETAIL = "gatehouse_group_rules"
LINK_BY_EMAIL_DETAIL = "gatehouse_link_by_verified_email"


def _aad(pool_id: str, name: str, key: str) -> bytes:
    return f"idp:{pool_id}:{name}:{key}".encode()


def _without_empty(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings without Gatehouse provider settings that are off (no rules, no linking)."""
    return {k: v for k, v in settings.items() if v or k not in ("group_rules", "link_by_verified_email")}


def check_group_rules(rules: Any) -> list[dict[str, str]]:
    """Validate claim -> group rules: ``[{"claim", "match", "value", "group"}]``; raises InvalidParameterException."""
    if not isinstance(rules, list) or len(rules) > MAX_GROUP_RULES:
        raise InvalidParameterException(f"Group rules must be a list of at most {MAX_GROUP_RULES} rules.")
    checked = []
    for index, rule in enumerate(rules):
        if not isinstance(rule, Mapping) or set(rule) - {"claim", "match", "value", "group"}:
            raise InvalidParameterException(f"Group rule {index} must have claim, match, value and group only.")
        claim, match, value, group = (rule.get(k) for k in ("claim", "match", "value", "group"))
        if not all(isinstance(x, str) and x for x in (claim, value, group)):
            raise InvalidParameterException(f"Group rule {index} needs non-empty claim, value and group.")
        if len(str(claim)) > 256 or len(str(value)) > 1024 or len(str(group)) > 128:
            raise InvalidParameterException(
                f"Group rule {index}: claim, value and group may be at most 256, 1024 and 128 characters long."
            )
        match = match or "equals"
        if match not in MATCH_TYPES:
            raise InvalidParameterException(f"Group rule {index}: match must be one of {', '.join(MATCH_TYPES)}.")
        if match == "regex":
            try:
                regex.compile(str(value))
            except regex.error as exc:
                raise InvalidParameterException(f"Group rule {index}: value is not a valid regex ({exc}).") from exc
        checked.append({"claim": str(claim), "match": str(match), "value": str(value), "group": str(group)})
    return checked


class RegexBudget:
    """The time left to one evaluation of a provider's rules for its regexes (:data:`REGEX_BUDGET_SECONDS`)."""

    def __init__(self, seconds: float = REGEX_BUDGET_SECONDS) -> None:
        self._deadline = time.monotonic() + seconds

    def limit(self) -> float:
        """The time the next regex may take: the per-value limit, or less when the budget is nearly spent."""
        return min(REGEX_TIMEOUT_SECONDS, self._deadline - time.monotonic())


def rule_matches(rule: Mapping[str, str], claims: Mapping[str, Any], budget: RegexBudget | None = None) -> bool:
    """Whether any value of the rule's claim matches (a claim may be a string, a list, a bool or a number). A
    regex is given at most REGEX_TIMEOUT_SECONDS per value, and no more than what is left of ``budget``."""
    raw = claims.get(rule["claim"])
    values = raw if isinstance(raw, list) else [raw]
    wanted, match = rule["value"], rule["match"]
    budget = budget or RegexBudget()
    for value in values:
        if value is None or isinstance(value, dict):
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if match == "equals" and text == wanted:
            return True
        if match == "contains" and wanted in text:
            return True
        if match == "starts-with" and text.startswith(wanted):
            return True
        if match == "regex":
            limit = budget.limit()
            if limit <= 0:
                return False  # the budget is spent: what is left does not match, as a timed-out pattern does not
            try:
                if regex.search(wanted, text, timeout=limit):
                    return True
            except TimeoutError:
                continue  # a pathological pattern never stalls a sign-in; it simply does not match
    return False


class IdentityProviderService:
    def __init__(self, store: Store, pools: PoolService, box: SecretBox) -> None:
        self._store = store
        self._pools = pools
        self._box = box

    # --- validation --------------------------------------------------------------------------------------

    @staticmethod
    def _check_name(name: str, provider_type: str) -> None:
        if provider_type in SOCIAL_TYPES and name != provider_type:
            raise InvalidParameterException(f"ProviderName for {provider_type} must be {provider_type}.")
        # "COGNITO" names the pool's own directory in a client's SupportedIdentityProviders (and "Cognito" the
        # native user in AdminLinkProviderForUser / AdminDisableProviderForUser): a provider of that name, in any
        # case, could never be told apart from it.
        reserved = name in SOCIAL_TYPES or name.casefold() == COGNITO_PROVIDER.casefold()
        if provider_type not in SOCIAL_TYPES and reserved:
            raise InvalidParameterException(f"ProviderName {name} is reserved.")

    @staticmethod
    def _complete_details(provider_type: str, details: Mapping[str, str]) -> dict[str, str]:
        try:
            cls = connector_class(provider_type)
        except ProviderConfigError as exc:
            raise InvalidParameterException(str(exc)) from exc
        try:
            return cls.complete_details(details)
        except ProviderConfigError as exc:
            raise InvalidParameterException(str(exc)) from exc

    @staticmethod
    def _check_mapping(pool: PoolView, provider_type: str, mapping: Mapping[str, str]) -> dict[str, str]:
        known = {entry["Name"] for entry in pool.schema} | {"username"}
        checked: dict[str, str] = {}
        for attribute, claim in mapping.items():
            if attribute == "sub":
                raise InvalidParameterException("sub cannot be mapped; it is the pool's own identifier.")
            if attribute not in known:
                raise InvalidParameterException(f"Attribute {attribute} does not exist in the user pool schema.")
            if not isinstance(claim, str) or not claim:
                raise InvalidParameterException(f"AttributeMapping of {attribute} must name an upstream attribute.")
            checked[attribute] = claim
        # Cognito maps the user name to the provider's subject unless told otherwise.
        checked.setdefault("username", connector_class(provider_type).subject_claim)
        return checked

    @staticmethod
    def _check_identifiers(identifiers: Sequence[str]) -> list[str]:
        if len(set(identifiers)) != len(identifiers):
            raise InvalidParameterException("Duplicate identifier in IdpIdentifiers.")
        return list(identifiers)

    async def _gatehouse_settings(
        self, pool: PoolView, details: Mapping[str, str]
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Split Gatehouse's own ``gatehouse_*`` keys off ProviderDetails and check them: the rest goes to the
        connector, these to the record's settings. Groups named by rules must exist in the pool."""
        cognito = {k: v for k, v in details.items() if not k.startswith(GATEHOUSE_DETAIL_PREFIX)}
        settings: dict[str, Any] = {}
        for key, value in details.items():
            if not key.startswith(GATEHOUSE_DETAIL_PREFIX):
                continue
            if key == GROUP_RULES_DETAIL:
                settings["group_rules"] = await self._api_group_rules(pool, value)
            elif key == LINK_BY_EMAIL_DETAIL:
                if value not in ("true", "false"):
                    raise InvalidParameterException(f"ProviderDetails {LINK_BY_EMAIL_DETAIL} must be true or false.")
                settings["link_by_verified_email"] = value == "true"
            else:
                known = f"{GROUP_RULES_DETAIL}, {LINK_BY_EMAIL_DETAIL}"
                raise InvalidParameterException(f"Unknown Gatehouse ProviderDetails key {key} (known: {known}).")
        return cognito, settings

    async def _api_group_rules(self, pool: PoolView, value: str) -> list[dict[str, str]]:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidParameterException(
                f"ProviderDetails {GROUP_RULES_DETAIL} must be a JSON list of rules ({exc.msg} at {exc.pos})."
            ) from exc
        rules = check_group_rules(parsed)
        for index, rule in enumerate(rules):
            if await self._store.get_group(pool.id, rule["group"]) is None:
                raise InvalidParameterException(
                    f"Group rule {index}: group {rule['group']} does not exist in the user pool."
                )
        return rules

    @staticmethod
    def _check_link_by_email(pool: PoolView, settings: Mapping[str, Any]) -> None:
        # Only where emails are unique (a sign-in name) is "the native user with this email" one user.
        signs_in_with_email = "email" in (*pool.username_attributes, *pool.alias_attributes)
        if settings.get("link_by_verified_email") and not signs_in_with_email:
            raise InvalidParameterException(
                "Linking by verified email needs a user pool that signs in with email "
                "(UsernameAttributes or AliasAttributes holding email)."
            )

    @staticmethod
    def gatehouse_details(record: IdentityProviderRecord) -> dict[str, str]:
        """The record's Gatehouse settings as the ``gatehouse_*`` ProviderDetails keys they are set with."""
        shown: dict[str, str] = {}
        rules = record.settings.get("group_rules")
        if rules:
            shown[GROUP_RULES_DETAIL] = json.dumps(rules, separators=(",", ":"))
        if record.settings.get("link_by_verified_email"):
            shown[LINK_BY_EMAIL_DETAIL] = "true"
        return shown

    # --- sealing -----------------------------------------------------------------------------------------

    def _seal(self, pool_id: str, name: str, provider_type: str, details: Mapping[str, str]) -> dict[str, str]:
        secret_keys = connector_class(provider_type).secret_keys
        return {
            key: self._box.seal(value.encode(), aad=_aad(pool_id, name, key)) if key in secret_keys else value
            for key, value in details.items()
        }

    def details(self, record: IdentityProviderRecord) -> dict[str, str]:
        """ProviderDetails in the clear (for connectors; never logged)."""
        secret_keys = connector_class(record.provider_type).secret_keys
        return {
            key: self._box.open(value, aad=_aad(record.pool_id, record.name, key)).decode()
            if key in secret_keys
            else value
            for key, value in record.details.items()
        }

    # --- operations --------------------------------------------------------------------------------------

    async def get(self, pool_id: str, name: str) -> IdentityProviderRecord:
        await self._pools.get_pool(pool_id)
        record = await self._store.get_identity_provider(pool_id, name)
        if record is None:
            raise ResourceNotFoundException(f"Identity provider {name} does not exist.")
        return record

    async def create(
        self,
        pool_id: str,
        name: str,
        provider_type: str,
        details: Mapping[str, str],
        attribute_mapping: Mapping[str, str] | None = None,
        idp_identifiers: Sequence[str] | None = None,
        *,
        group_rules: Any = None,
        link_by_verified_email: bool | None = None,
    ) -> IdentityProviderRecord:
        """CreateIdentityProvider. ``group_rules`` / ``link_by_verified_email`` come from the config file; the API
        gives the same as ``gatehouse_*`` ProviderDetails keys (whose groups must exist in the pool)."""
        pool = await self._pools.get_pool(pool_id)
        self._check_name(name, provider_type)
        details, settings = await self._gatehouse_settings(pool, details)
        if group_rules:
            settings["group_rules"] = check_group_rules(group_rules)
        if link_by_verified_email is not None:
            settings["link_by_verified_email"] = link_by_verified_email
        self._check_link_by_email(pool, settings)
        completed = self._complete_details(provider_type, details)
        mapping = self._check_mapping(pool, provider_type, attribute_mapping or {})
        identifiers = self._check_identifiers(idp_identifiers or [])
        now = time.time()
        record = IdentityProviderRecord(
            pool_id=pool_id,
            name=name,
            provider_type=provider_type,
            details=self._seal(pool_id, name, provider_type, completed),
            attribute_mapping=mapping,
            idp_identifiers=identifiers,
            created_at=now,
            updated_at=now,
            settings=_without_empty(settings),
        )
        try:
            await self._store.create_identity_provider(record)
        except AlreadyExists as exc:
            if exc.key == "identifier":
                raise InvalidParameterException("Duplicate identifier in the user pool.") from exc
            raise DuplicateProviderException(
                f"A provider with the name {name} already exists in this user pool."
            ) from exc
        except NotFound as exc:
            raise ResourceNotFoundException(f"User pool {pool_id} does not exist.") from exc
        return record

    async def update(
        self,
        pool_id: str,
        name: str,
        details: Mapping[str, str] | None = None,
        attribute_mapping: Mapping[str, str] | None = None,
        idp_identifiers: Sequence[str] | None = None,
        *,
        group_rules: Any = None,
        link_by_verified_email: bool | None = None,
    ) -> IdentityProviderRecord:
        """UpdateIdentityProvider: given ProviderDetails keys replace the stored ones (keys left out keep their
        values, so a describe-then-update round trip keeps Apple's undescribed private key); computed keys are
        worked out again. The ``gatehouse_*`` keys replace the settings they carry (``"[]"`` clears the rules)."""
        pool = await self._pools.get_pool(pool_id)
        settings: dict[str, Any] = {}
        if details is not None:
            details, settings = await self._gatehouse_settings(pool, details)
        if group_rules is not None:
            settings["group_rules"] = check_group_rules(group_rules)
        if link_by_verified_email is not None:
            settings["link_by_verified_email"] = link_by_verified_email
        self._check_link_by_email(pool, settings)
        for _ in range(5):
            record = await self.get(pool_id, name)
            changed = replace(record, updated_at=time.time())
            if details is not None:
                current = self.details(record)
                if record.provider_type == "SAML" and ({"MetadataFile", "MetadataURL"} & set(details)):
                    for key in ("MetadataFile", "MetadataURL", "SSORedirectBindingURI", "SSOPostBindingURI"):
                        current.pop(key, None)
                    for key in ("SLORedirectBindingURI", "SLOPostBindingURI"):
                        current.pop(key, None)
                completed = self._complete_details(record.provider_type, {**current, **details})
                changed.details = self._seal(pool_id, name, record.provider_type, completed)
            if attribute_mapping is not None:
                changed.attribute_mapping = self._check_mapping(pool, record.provider_type, attribute_mapping)
            if idp_identifiers is not None:
                changed.idp_identifiers = self._check_identifiers(idp_identifiers)
            if settings:
                changed.settings = _without_empty({**changed.settings, **settings})
            try:
                return await self._store.update_identity_provider(changed)
            except AlreadyExists as exc:
                raise InvalidParameterException("Duplicate identifier in the user pool.") from exc
            except VersionConflict:
                continue
            except NotFound as exc:
                raise ResourceNotFoundException(f"Identity provider {name} does not exist.") from exc
        raise ConcurrentModificationException()

    async def delete(self, pool_id: str, name: str) -> None:
        """DeleteIdentityProvider: "After you delete an IdP, users can no longer sign in to your user pool through
        that IdP". Cognito documents nothing about app clients that still list it; a name left in a client's
        SupportedIdentityProviders would be a dead button on the hosted sign-in page, a client that UpdateUserPoolClient
        refuses to save unchanged ("The provider ... does not exist"), and a sign-in path for a provider created
        later under the same name with other settings. So the name leaves every client of the pool with it, which
        also keeps a delete-and-create of the provider (infrastructure tools replace it so) from failing."""
        await self._pools.get_pool(pool_id)
        if not await self._store.delete_identity_provider(pool_id, name):
            raise ResourceNotFoundException(f"Identity provider {name} does not exist.")
        await self._pools.drop_identity_provider(pool_id, name)

    async def list_page(
        self, pool_id: str, after: str | None, limit: int
    ) -> tuple[list[IdentityProviderRecord], str | None]:
        await self._pools.get_pool(pool_id)
        page = await self._store.list_identity_providers(pool_id, after, limit)
        return page.items, page.next_token

    async def by_identifier(self, pool_id: str, identifier: str) -> IdentityProviderRecord:
        await self._pools.get_pool(pool_id)
        record = await self._store.get_identity_provider_by_identifier(pool_id, identifier)
        if record is None:
            raise ResourceNotFoundException(f"Identity provider with identifier {identifier} does not exist.")
        return record

    # --- wire shapes -------------------------------------------------------------------------------------

    def provider_type(
        self, record: IdentityProviderRecord, *, extra_details: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Cognito's IdentityProviderType."""
        hidden = connector_class(record.provider_type).hidden_keys
        details = {k: v for k, v in self.details(record).items() if k not in hidden}
        details.update(self.gatehouse_details(record))
        details.update(extra_details or {})
        return {
            "UserPoolId": record.pool_id,
            "ProviderName": record.name,
            "ProviderType": record.provider_type,
            "ProviderDetails": details,
            "AttributeMapping": dict(record.attribute_mapping),
            "IdpIdentifiers": list(record.idp_identifiers),
            "LastModifiedDate": record.updated_at,
            "CreationDate": record.created_at,
        }

    @staticmethod
    def description(record: IdentityProviderRecord) -> dict[str, Any]:
        """Cognito's ProviderDescription (ListIdentityProviders)."""
        return {
            "ProviderName": record.name,
            "ProviderType": record.provider_type,
            "LastModifiedDate": record.updated_at,
            "CreationDate": record.created_at,
        }
