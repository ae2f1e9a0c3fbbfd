"""IAM roles, their inline policies, IAM OpenID Connect providers, and trust-policy checks.

What the IAM wire (``gateway/api/iam.py``), the config file, STS and identity pools share. Behaviour follows
the IAM API Reference (CreateRole, GetRole, ListRoles, DeleteRole, PutRolePolicy, GetRolePolicy,
DeleteRolePolicy, ListRolePolicies, CreateOpenIDConnectProvider and friends) and the IAM User Guide
("IAM identifiers": ARNs ``arn:aws:iam::<account>:role/<path><name>`` and unique ids ``AROA...``; "Role trust
policies"; "Available keys for AWS web identity federation").

For other services (identity pools, STS) the entry points are:

* :meth:`IamService.find_role_by_arn` / :meth:`IamService.get_role` -- look up a role (``None`` / NoSuchEntity);
* :meth:`IamService.trust_allows` -- does the role's trust policy let this web identity assume it? The
  identity is a :class:`WebIdentity`: its provider (``cognito-identity.amazonaws.com`` or an OIDC issuer's
  ``host/path``), ``sub``, ``aud`` and ``amr``; they become the condition keys ``<provider>:sub``,
  ``<provider>:aud`` and ``<provider>:amr`` exactly as AWS names them, and the principal is
  ``{"Federated": "cognito-identity.amazonaws.com"}`` or the provider's ARN
  ``arn:aws:iam::<account>:oidc-provider/<host/path>``.
"""

from __future__ import annotations

import functools
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import structlog

from gateway.errors import (
    DeleteConflictException,
    EntityAlreadyExistsException,
    IamLimitExceededException,
    InvalidInputException,
    MalformedPolicyDocumentException,
    NoSuchEntityException,
)
from gateway.ids import random_bytes
from gateway.services.change_stamp import ChangeStamps
from gateway.services.policy import (
    ContextValue,
    Decision,
    Policy,
    PolicyError,
    Request,
    check_trust_policy,
    parse_policy,
)
from gateway.services.saml_federation import check_metadata
from gateway.services.short_cache import ShortCache
from gateway.storage.base import AlreadyExists, NotFound, OidcProviderRecord, RoleRecord, SamlProviderRecord, Store

__all__ = [
    "COGNITO_IDENTITY_PROVIDER",
    "IamService",
    "Role",
    "WebIdentity",
    "parsed_policy",
]

log = structlog.get_logger("gateway.iam")

COGNITO_IDENTITY_PROVIDER: Final = "cognito-identity.amazonaws.com"
# Providers AWS trusts without an IAM OIDC provider; their principal is the name itself, not an ARN.
WELL_KNOWN_PROVIDERS: Final = frozenset(
    {COGNITO_IDENTITY_PROVIDER, "accounts.google.com", "graph.facebook.com", "www.amazon.com"}
)
ASSUME_ROLE_WITH_WEB_IDENTITY: Final = "sts:AssumeRoleWithWebIdentity"
TAG_SESSION: Final = "sts:TagSession"
SET_SOURCE_IDENTITY: Final = "sts:SetSourceIdentity"
SOURCE_IDENTITY_KEY: Final = "sts:SourceIdentity"
# A source identity's form (STS API Reference, SourceIdentity: 2 to 64 of these ASCII characters; so never the
# reserved "aws:" prefix, which has a colon).
SOURCE_IDENTITY_PATTERN: Final = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
DEFAULT_MAX_SESSION_SECONDS: Final = 3600
# IAM quotas (IAM User Guide, "IAM and AWS STS quotas").
MAX_INLINE_POLICY_BYTES_PER_ROLE: Final = 10240
# The default quota of a role trust policy's length (ACLSizePerRole).
MAX_TRUST_POLICY_CHARS: Final = 2048
# Tags per role, OIDC provider or SAML provider (also tagListType's max in the IAM model).
MAX_TAGS: Final = 50
# IAM's answer to tag keys that are the same but for case in one role's request (roles' keys ignore case).
DUPLICATE_TAG_KEYS_IGNORING_CASE: Final = "Duplicate tag keys found. Please note that Tag keys are case insensitive."
MAX_OIDC_CLIENT_IDS: Final = 100
MAX_OIDC_THUMBPRINTS: Final = 5
_ID_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# Byte value -> the letter its low 5 bits choose (bytes.translate's table).
_ID_TABLE: Final = bytes(ord(_ID_ALPHABET[value & 31]) for value in range(256))
# How long a role read for GetCredentialsForIdentity is reused (as long as user and identity pools are).
ROLE_CACHE_SECONDS: Final = 2.0


_clock: list[Any] = [-1, ("", "")]


def _current_time() -> tuple[str, str]:
    """``aws:CurrentTime`` (ISO 8601, UTC) and ``aws:EpochTime``, formatted once per second."""
    now = int(time.time())
    if _clock[0] != now:
        _clock[0], _clock[1] = now, (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), str(now))
    current: tuple[str, str] = _clock[1]
    return current


def new_unique_id(prefix: str) -> str:
    """An IAM unique id: a four-letter type prefix (``AROA`` role, ``ASIA`` temporary key) and 17 characters
    of base32 (85 random bits)."""
    # 17 random bytes (from the OS CSPRNG), each mapped by its low 5 bits to one of the 32 letters (256 is a
    # multiple of 32, so every letter is equally likely): 85 uniform random bits, as 17 secrets.choice calls
    # would give, at a fraction of their cost (and of base64.b32encode's, which is written in Python).
    return prefix + random_bytes(17).translate(_ID_TABLE).decode("ascii")


@functools.lru_cache(maxsize=2048)
def parsed_policy(text: str, resource_policy: bool = False) -> Policy:
    """Parse a stored policy document once per process (documents were checked when they were stored)."""
    return parse_policy(text, resource_policy=resource_policy)


_TRUSTS_NO_ONE: Final = parse_policy(
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*"}]}',
    resource_policy=True,
)


def check_policy(text: str, *, resource_policy: bool = False) -> Policy:
    """Parse a policy document given by a caller; MalformedPolicyDocument if it is not valid."""
    try:
        return parsed_policy(text, resource_policy)
    except PolicyError as exc:
        raise MalformedPolicyDocumentException(str(exc)) from exc


def check_role_trust_policy(text: str) -> Policy:
    """Parse a role's trust policy given by a caller: a valid resource-based policy that IAM accepts as a
    trust policy (:func:`gateway.services.policy.check_trust_policy`); MalformedPolicyDocument if not."""
    policy = check_policy(text, resource_policy=True)
    try:
        check_trust_policy(policy)
    except PolicyError as exc:
        raise MalformedPolicyDocumentException(str(exc)) from exc
    return policy


@dataclass(frozen=True)
class Role:
    """An IAM role as services use it: its ARN, trust policy and inline policies, parsed."""

    name: str
    role_id: str
    path: str
    arn: str
    assume_role_policy: str
    description: str | None
    max_session_duration: int
    tags: dict[str, str]
    created_at: float
    policy_documents: dict[str, str] = field(default_factory=dict)

    @property
    def trust_policy(self) -> Policy:
        try:
            return parsed_policy(self.assume_role_policy, True)
        except PolicyError:
            # Stored before a stricter check (NotPrincipal with Allow is now refused): never evaluated as written;
            # the role trusts no one until its trust policy is rewritten.
            log.warning("iam.trust_policy_unreadable", role=self.name)
            return _TRUSTS_NO_ONE

    @property
    def policies(self) -> tuple[Policy, ...]:
        """The inline (identity) policies, parsed."""
        return tuple(parsed_policy(text) for _, text in sorted(self.policy_documents.items()))


@dataclass(frozen=True)
class WebIdentity:
    """A verified web identity (an OpenID token's claims) as a trust policy sees it.

    ``provider`` is ``cognito-identity.amazonaws.com`` for identity-pool tokens, otherwise the issuer URL
    without its scheme (``host/path``), as IAM names an OIDC provider. ``extra`` adds more
    ``<provider>:<key>`` condition keys (e.g. ``email`` for accounts.google.com, ``oaud``).
    """

    provider: str
    subject: str
    audience: tuple[str, ...]
    amr: tuple[str, ...] = ()
    extra: Mapping[str, ContextValue] = field(default_factory=dict)

    def federated_principal(self, account_id: str) -> str:
        if self.provider in WELL_KNOWN_PROVIDERS:
            return self.provider
        return oidc_provider_arn(account_id, self.provider)

    def context_keys(self, account_id: str) -> dict[str, ContextValue]:
        """The condition keys AWS sets for a web identity ("Available keys for AWS web identity federation")."""
        keys: dict[str, ContextValue] = {
            f"{self.provider}:sub": self.subject,
            "aws:FederatedProvider": self.federated_principal(account_id),
        }
        if self.audience:
            keys[f"{self.provider}:aud"] = self.audience[0] if len(self.audience) == 1 else list(self.audience)
        if self.amr:
            keys[f"{self.provider}:amr"] = list(self.amr)
        for name, value in self.extra.items():
            keys[f"{self.provider}:{name}"] = value
        return keys


def oidc_provider_arn(account_id: str, url: str) -> str:
    return f"arn:aws:iam::{account_id}:oidc-provider/{url}"


def provider_url(issuer: str) -> str:
    """An issuer URL as IAM keys an OIDC provider: without ``https://`` and without a trailing ``/``."""
    parts = urlsplit(issuer if "://" in issuer else f"https://{issuer}")
    return (parts.netloc + parts.path).rstrip("/")


def _role(record: RoleRecord, account_id: str) -> Role:
    return Role(
        name=record.name,
        role_id=record.role_id,
        path=record.path,
        arn=f"arn:aws:iam::{account_id}:role{record.path}{record.name}",
        assume_role_policy=record.assume_role_policy,
        description=record.description,
        max_session_duration=record.max_session_duration,
        tags=dict(record.tags),
        created_at=record.created_at,
        policy_documents=dict(record.policies),
    )


def policy_size(document: str) -> int:
    """A policy's size against IAM's quotas: "IAM doesn't count white space when calculating the size of a
    policy against these quotas" (IAM User Guide, "IAM and AWS STS quotas")."""
    return len(document) - sum(document.count(space) for space in " \t\n\r")


def _check_trust_size(document: str) -> None:
    if policy_size(document) > MAX_TRUST_POLICY_CHARS:
        raise IamLimitExceededException(f"Cannot exceed quota for ACLSizePerRole: {MAX_TRUST_POLICY_CHARS}")


def _check_tags(
    tags: Mapping[str, str],
    held: Mapping[str, str] | None = None,
    *,
    quota: str = "TagsPerRole",
    keys_ignore_case: bool = True,
) -> None:
    """An IAM resource's tags, after a tag write, within IAM's quota of 50 per resource (the quota ``quota`` names
    in the LimitExceeded message), and no new key (one not in ``held``, the resource's tags already) with AWS's
    reserved prefix or, where keys ignore case (``keys_ignore_case``: roles), the same as another key but for
    case: a key stored before a check came can still be removed."""
    if len(tags) > MAX_TAGS:
        raise IamLimitExceededException(f"Cannot exceed quota for {quota}: {MAX_TAGS}.")
    folded = Counter(key.lower() for key in tags) if keys_ignore_case else Counter[str]()
    for key in tags.keys() - (held or {}).keys():
        # "Rules for tagging in IAM and AWS STS": the aws: prefix, in any case, is AWS's own. A role's tags become
        # its sessions' aws:PrincipalTag/<key>, where session tags are refused the same prefix.
        if key[:4].lower() == "aws:":
            raise InvalidInputException(f"Tag key {key} is not valid: tag keys beginning with aws: are reserved.")
        if folded[key.lower()] > 1:
            raise InvalidInputException(DUPLICATE_TAG_KEYS_IGNORING_CASE)


def _retagged(held: Mapping[str, str], tags: Mapping[str, str]) -> dict[str, str]:
    """A role's tags after TagRole: a role's tag keys ignore case, their case preserved ("Rules for tagging in
    IAM and AWS STS": adding department=hr to a role tagged Department=finance replaces that tag)."""
    replaced = {key.lower() for key in tags}
    return {**{key: value for key, value in held.items() if key.lower() not in replaced}, **tags}


def _check_provider_tags(
    tags: Mapping[str, str], held: Mapping[str, str] | None = None, *, quota: str = "TagsPerOpenIdConnectProvider"
) -> None:
    """An OIDC or SAML provider's tags: as a role's (:func:`_check_tags`), but their keys keep case apart
    ("Rules for tagging in IAM and AWS STS": tag keys of identity providers are case sensitive)."""
    _check_tags(tags, held, quota=quota, keys_ignore_case=False)


class IamService:
    """Roles and OIDC providers of Gatehouse's one account (``settings.account_id``)."""

    def __init__(self, store: Store, *, account_id: str) -> None:
        self._store = store
        self.account_id = account_id
        # GetCredentialsForIdentity reads its role on every call: find_role_by_arn(cached=True) keeps what it
        # read for CACHE_SECONDS (the trust policy is still evaluated on every call). Role writes here drop it.
        # The cache follows the store's change stamp (gateway/services/change_stamp.py): a role changed or
        # deleted by any process sharing the store is read again at once. Role writes bump it (_changed).
        self.stamps = ChangeStamps()
        self._roles: ShortCache[str, Role] = ShortCache(ROLE_CACHE_SECONDS, stamps=self.stamps)

    def use_stamps(self, stamps: ChangeStamps) -> None:
        """Share ``stamps`` with the other processes of the store (set by the container)."""
        self.stamps = stamps
        self._roles = ShortCache(ROLE_CACHE_SECONDS, stamps=stamps)

    def _changed(self) -> None:
        """After a role write reached the store: every process reads the role again."""
        self.stamps.bump()
        self._roles.clear()

    # --- roles ------------------------------------------------------------------------------------------

    def role_arn(self, name: str, path: str = "/") -> str:
        return f"arn:aws:iam::{self.account_id}:role{path}{name}"

    async def create_role(
        self,
        name: str,
        assume_role_policy: str,
        *,
        path: str = "/",
        description: str | None = None,
        max_session_duration: int = DEFAULT_MAX_SESSION_SECONDS,
        tags: Mapping[str, str] | None = None,
    ) -> Role:
        """IAM CreateRole. Raises EntityAlreadyExists, MalformedPolicyDocument, LimitExceeded."""
        check_role_trust_policy(assume_role_policy)
        _check_trust_size(assume_role_policy)
        _check_tags(tags or {})
        record = RoleRecord(
            name=name,
            name_key=name.lower(),
            role_id=new_unique_id("AROA"),
            path=path,
            assume_role_policy=assume_role_policy,
            description=description,
            max_session_duration=max_session_duration,
            tags=dict(tags or {}),
            created_at=time.time(),
        )
        self._roles.clear()
        try:
            await self._store.create_role(record)
        except AlreadyExists as exc:
            raise EntityAlreadyExistsException(f"Role with name {name} already exists.") from exc
        log.info("iam.role_created", role=name, role_id=record.role_id)
        return _role(record, self.account_id)

    async def update_role(
        self,
        name: str,
        *,
        assume_role_policy: str | None = None,
        description: str | None = None,
        max_session_duration: int | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Role:
        """Change a role's own fields (UpdateAssumeRolePolicy, UpdateRole, a re-applied config file)."""
        role = await self.get_role(name)
        if assume_role_policy is not None:
            check_role_trust_policy(assume_role_policy)
            _check_trust_size(assume_role_policy)
        if tags is not None:
            _check_tags(tags, role.tags)
        record = RoleRecord(
            name=role.name,
            name_key=role.name.lower(),
            role_id=role.role_id,
            path=role.path,
            assume_role_policy=assume_role_policy if assume_role_policy is not None else role.assume_role_policy,
            description=description if description is not None else role.description,
            max_session_duration=max_session_duration or role.max_session_duration,
            tags=dict(tags) if tags is not None else role.tags,
            created_at=role.created_at,
        )
        self._roles.clear()
        try:
            await self._store.update_role(record)
        except NotFound as exc:
            raise _no_role(name) from exc
        self._changed()
        return await self.get_role(name)

    async def tag_role(self, name: str, tags: Mapping[str, str]) -> None:
        """IAM TagRole: add or overwrite tags (a key overwrites one that differs from it only in case)."""
        role = await self.get_role(name)
        await self.update_role(name, tags=_retagged(role.tags, tags))

    async def untag_role(self, name: str, keys: Sequence[str]) -> None:
        """IAM UntagRole: remove tags by key, whatever its case (keys not present are ignored, as in IAM)."""
        role = await self.get_role(name)
        removed = {key.lower() for key in keys}
        await self.update_role(name, tags={k: v for k, v in role.tags.items() if k.lower() not in removed})

    async def find_role(self, name: str, *, cached: bool = False) -> Role | None:
        """The role, or ``None``; ``cached``: from this process's short-lived cache (see ``__init__``)."""
        key = name.lower()
        if cached:
            role = self._roles.get(key)
            if role is not None:
                return role
        stamp = self._roles.stamp()
        record = await self._store.get_role(key)
        if record is None:
            return None
        role = _role(record, self.account_id)
        self._roles.put(key, role, stamp)
        return role

    async def get_role(self, name: str) -> Role:
        """IAM GetRole; NoSuchEntity if there is no such role."""
        role = await self.find_role(name)
        if role is None:
            raise _no_role(name)
        return role

    async def find_role_by_arn(self, arn: str, *, cached: bool = False) -> Role | None:
        """The role an ARN names, or ``None`` (another account, a wrong path, or no such role)."""
        prefix = f"arn:aws:iam::{self.account_id}:role/"
        if not arn.startswith(prefix):
            return None
        path_and_name = "/" + arn[len(prefix) :]
        path, _, name = path_and_name.rpartition("/")
        role = await self.find_role(name, cached=cached) if name else None
        if role is None or role.path != path + "/" or role.name != name:
            return None
        return role

    def cached_role_by_arn(self, arn: str) -> Role | None:
        """The role an ARN names if this process's short-lived cache has it, else ``None`` (then
        :meth:`find_role_by_arn` decides): a hot path's first look, with no await. The cache is keyed by the
        role's name, so the ARN must name that role exactly."""
        role = self._roles.get(arn.rpartition("/")[2].lower())
        return role if role is not None and role.arn == arn else None

    async def list_roles(
        self, *, path_prefix: str = "/", marker: str | None = None, max_items: int = 100
    ) -> tuple[list[Role], str | None]:
        """IAM ListRoles: roles whose path starts with ``path_prefix``, in name order; returns the next marker,
        only when a further role matches (IsTruncated: "whether there are more items to return")."""
        found: list[tuple[str, Role]] = []
        after = marker
        while len(found) <= max_items:  # one more than a page: whether another matching role follows
            page = await self._store.list_roles(after, max_items + 1)
            found += [(r.name_key, _role(r, self.account_id)) for r in page.items if r.path.startswith(path_prefix)]
            if page.next_token is None:
                break
            after = page.next_token
        roles = [role for _, role in found[:max_items]]
        return roles, found[max_items - 1][0] if len(found) > max_items else None

    async def delete_role(self, name: str) -> None:
        """IAM DeleteRole: a role with inline policies cannot be deleted (DeleteConflict), as in IAM."""
        role = await self.get_role(name)
        if role.policy_documents:
            raise DeleteConflictException("Cannot delete entity, must delete policies first.")
        self._roles.clear()
        deleted = await self._store.delete_role(name.lower())
        self._changed()
        if not deleted:
            raise _no_role(name)
        # Every session of the role is refused from now on (credentials carry the role's unique id).
        log.info("iam.role_deleted", role=role.name, role_id=role.role_id)

    async def put_role_policy(self, role_name: str, policy_name: str, document: str) -> None:
        """IAM PutRolePolicy (create or replace an inline policy)."""
        check_policy(document)
        role = await self.get_role(role_name)
        others = sum(policy_size(text) for key, text in role.policy_documents.items() if key != policy_name)
        if others + policy_size(document) > MAX_INLINE_POLICY_BYTES_PER_ROLE:
            raise IamLimitExceededException(
                f"Maximum policy size of {MAX_INLINE_POLICY_BYTES_PER_ROLE} bytes exceeded for role {role.name}"
            )
        self._roles.clear()
        try:
            await self._store.put_role_policy(role.name.lower(), policy_name, document)
        except NotFound as exc:
            raise _no_role(role_name) from exc
        self._changed()
        log.info("iam.role_policy_put", role=role.name, policy=policy_name)

    async def get_role_policy(self, role_name: str, policy_name: str) -> tuple[Role, str]:
        role = await self.get_role(role_name)
        document = role.policy_documents.get(policy_name)
        if document is None:
            raise NoSuchEntityException(f"The role policy with name {policy_name} cannot be found.")
        return role, document

    async def delete_role_policy(self, role_name: str, policy_name: str) -> None:
        await self.get_role(role_name)
        self._roles.clear()
        deleted = await self._store.delete_role_policy(role_name.lower(), policy_name)
        self._changed()
        if not deleted:
            raise NoSuchEntityException(f"The role policy with name {policy_name} cannot be found.")
        log.info("iam.role_policy_deleted", role=role_name, policy=policy_name)

    async def list_role_policies(
        self, role_name: str, *, marker: str | None = None, max_items: int = 100
    ) -> tuple[list[str], str | None]:
        role = await self.get_role(role_name)
        names = sorted(name for name in role.policy_documents if marker is None or name > marker)
        page = names[:max_items]
        return page, page[-1] if len(names) > max_items else None

    # --- trust ------------------------------------------------------------------------------------------

    def trust_allows(
        self,
        role: Role,
        identity: WebIdentity,
        *,
        action: str = ASSUME_ROLE_WITH_WEB_IDENTITY,
        request_tags: Mapping[str, str] | None = None,
        extra_context: Mapping[str, ContextValue] | None = None,
        identity_keys: Mapping[str, ContextValue] | None = None,
        source_identity: str | None = None,
    ) -> bool:
        """Whether the role's trust policy allows ``identity`` to assume it (and, with session tags, to tag the
        session: ``sts:TagSession``, as AWS requires for tags passed in a web identity token; with a source
        identity, to set it: ``sts:SetSourceIdentity``).
        ``identity_keys``: ``identity.context_keys(account_id)`` when the caller has made them already."""
        context: dict[str, ContextValue] = dict(extra_context or {})
        context.update(identity_keys if identity_keys is not None else identity.context_keys(self.account_id))
        context["aws:CurrentTime"], context["aws:EpochTime"] = _current_time()
        principal = {"Federated": [identity.federated_principal(self.account_id)]}
        return _trust_decides(role, action, context, principal, request_tags, source_identity)

    def trust_decision_principals(
        self,
        role: Role,
        principals: Sequence[str],
        *,
        action: str = "sts:AssumeRole",
        request_tags: Mapping[str, str] | None = None,
        principal_arn: str | None = None,
        source_identity: str | None = None,
        extra_context: Mapping[str, ContextValue] | None = None,
    ) -> Decision:
        """The trust policy's verdict on an AWS principal (``arn:aws:iam::<account>:root``, an assumed-role
        ARN...) assuming the role (``Principal: {"AWS": ...}``), tagging the session if tags are passed: ALLOW
        when it allows it, DENY when a statement explicitly denies it to any of ``principals`` (pass every name
        one caller goes by -- a role session, its role, its account -- for an explicit deny of any of them to win:
        IAM User Guide, "Policy evaluation logic"), else NOT_APPLICABLE. ``principal_arn`` is the caller's ARN
        for ``aws:PrincipalArn`` (default: the first of ``principals``); ``extra_context``: the request's own
        keys (``sts:ExternalId``, ``sts:RoleSessionName``)."""
        context: dict[str, ContextValue] = dict(extra_context or {})
        context.update(
            {
                "aws:CurrentTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "aws:EpochTime": str(int(time.time())),
                "aws:PrincipalAccount": self.account_id,
            }
        )
        if principal_arn is not None or principals:
            context["aws:PrincipalArn"] = principal_arn or principals[0]
        return _trust_decision(role, action, context, {"AWS": list(principals)}, request_tags, source_identity)

    # --- OIDC providers ---------------------------------------------------------------------------------

    async def create_oidc_provider(
        self,
        url: str,
        *,
        client_ids: Sequence[str] = (),
        thumbprints: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        jwks_url: str | None = None,
    ) -> str:
        """IAM CreateOpenIDConnectProvider; returns the provider's ARN.

        AWS insists on ``https://``; Gatehouse also takes ``http://`` issuers (a local IdP in development or
        CI), and ``jwks_url`` (a Gatehouse extension, from the config file) names where the provider's keys are
        fetched instead of its discovery document."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
            raise InvalidInputException("Invalid Open ID Connect Provider URL")
        if len(client_ids) > MAX_OIDC_CLIENT_IDS:
            raise IamLimitExceededException("Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100")
        if len(thumbprints) > MAX_OIDC_THUMBPRINTS:
            raise IamLimitExceededException("Cannot exceed quota for ThumbprintsPerOpenIdConnectProvider: 5")
        _check_provider_tags(tags or {})
        key = provider_url(url)
        record = OidcProviderRecord(
            url=key,
            issuer_url=url.rstrip("/"),
            client_ids=list(dict.fromkeys(client_ids)),
            thumbprints=list(thumbprints),
            tags=dict(tags or {}),
            created_at=time.time(),
            jwks_url=jwks_url,
        )
        try:
            await self._store.create_oidc_provider(record)
        except AlreadyExists as exc:
            raise EntityAlreadyExistsException(f"Provider with url {url} already exists.") from exc
        return oidc_provider_arn(self.account_id, key)

    async def put_oidc_provider(
        self, url: str, *, client_ids: Sequence[str], thumbprints: Sequence[str] = (), jwks_url: str | None = None
    ) -> str:
        """Create or replace a provider (the config file's declarative form)."""
        existing = await self._store.get_oidc_provider(provider_url(url))
        if existing is None:
            return await self.create_oidc_provider(
                url, client_ids=client_ids, thumbprints=thumbprints, jwks_url=jwks_url
            )
        existing.client_ids = list(dict.fromkeys(client_ids))
        existing.thumbprints = list(thumbprints)
        existing.jwks_url = jwks_url
        existing.issuer_url = url.rstrip("/")
        await self._store.update_oidc_provider(existing)
        return oidc_provider_arn(self.account_id, existing.url)

    async def change_oidc_provider(
        self,
        arn: str,
        *,
        add_client_id: str | None = None,
        remove_client_id: str | None = None,
        thumbprints: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """AddClientIDToOpenIDConnectProvider, RemoveClientIDFromOpenIDConnectProvider (absent ids are ignored),
        UpdateOpenIDConnectProviderThumbprint and TagOpenIDConnectProvider."""
        record = await self.get_oidc_provider(arn)
        if add_client_id is not None and add_client_id not in record.client_ids:
            if len(record.client_ids) >= MAX_OIDC_CLIENT_IDS:
                raise IamLimitExceededException("Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100")
            record.client_ids.append(add_client_id)
        if remove_client_id is not None:
            record.client_ids = [c for c in record.client_ids if c != remove_client_id]
        if thumbprints is not None:
            if len(thumbprints) > MAX_OIDC_THUMBPRINTS:
                raise IamLimitExceededException("Cannot exceed quota for ThumbprintsPerOpenIdConnectProvider: 5")
            record.thumbprints = list(thumbprints)
        if tags is not None:
            # "If you exceed the allowed maximum number of tags, the entire request fails" (TagOpenIDConnectProvider).
            merged = {**record.tags, **tags}
            _check_provider_tags(merged, record.tags)
            record.tags = merged
        try:
            await self._store.update_oidc_provider(record)
        except NotFound as exc:
            raise NoSuchEntityException(f"OpenIDConnect Provider not found for arn {arn}") from exc

    def _provider_key(self, arn: str) -> str:
        prefix = f"arn:aws:iam::{self.account_id}:oidc-provider/"
        if not arn.startswith(prefix):
            raise InvalidInputException(f"Invalid ARN: {arn}")
        return arn[len(prefix) :]

    async def get_oidc_provider(self, arn: str) -> OidcProviderRecord:
        record = await self._store.get_oidc_provider(self._provider_key(arn))
        if record is None:
            raise NoSuchEntityException(f"OpenIDConnect Provider not found for arn {arn}")
        return record

    async def find_oidc_provider(self, issuer: str) -> OidcProviderRecord | None:
        """The registered provider for a token's ``iss``, or ``None``."""
        return await self._store.get_oidc_provider(provider_url(issuer))

    async def list_oidc_providers(self) -> list[str]:
        return [oidc_provider_arn(self.account_id, r.url) for r in await self._store.list_oidc_providers()]

    async def delete_oidc_provider(self, arn: str) -> None:
        if not await self._store.delete_oidc_provider(self._provider_key(arn)):
            raise NoSuchEntityException(f"OpenIDConnect Provider not found for arn {arn}")

    # --- SAML providers ---------------------------------------------------------------------------------

    def saml_provider_arn(self, name: str) -> str:
        return f"arn:aws:iam::{self.account_id}:saml-provider/{name}"

    def _saml_name(self, arn: str) -> str:
        prefix = f"arn:aws:iam::{self.account_id}:saml-provider/"
        if not arn.startswith(prefix) or not arn[len(prefix) :]:
            raise InvalidInputException(f"Invalid ARN: {arn}")
        return arn[len(prefix) :]

    async def create_saml_provider(self, name: str, metadata: str, *, tags: Mapping[str, str] | None = None) -> str:
        """IAM CreateSAMLProvider: the metadata must describe an IdP with a signing certificate."""
        check_metadata(metadata)
        _check_provider_tags(tags or {}, quota="TagsPerSamlProvider")
        now = time.time()
        record = SamlProviderRecord(name=name, metadata=metadata, tags=dict(tags or {}), created_at=now, updated_at=now)
        try:
            await self._store.create_saml_provider(record)
        except AlreadyExists as exc:
            raise EntityAlreadyExistsException(f"SAMLProvider {name} already exists.") from exc
        log.info("iam.saml_provider_created", provider=name)
        return self.saml_provider_arn(name)

    async def get_saml_provider(self, arn: str) -> SamlProviderRecord:
        record = await self.find_saml_provider(arn)
        if record is None:
            raise NoSuchEntityException(f"Manifest not found for arn {arn}")
        return record

    async def find_saml_provider(self, arn: str) -> SamlProviderRecord | None:
        prefix = f"arn:aws:iam::{self.account_id}:saml-provider/"
        if not arn.startswith(prefix):
            return None
        return await self._store.get_saml_provider(arn[len(prefix) :])

    async def update_saml_provider(self, arn: str, metadata: str) -> str:
        record = await self.get_saml_provider(arn)
        check_metadata(metadata)
        record.metadata = metadata
        record.updated_at = time.time()
        try:
            await self._store.update_saml_provider(record)
        except NotFound as exc:
            raise NoSuchEntityException(f"Manifest not found for arn {arn}") from exc
        return arn

    async def list_saml_providers(self) -> list[SamlProviderRecord]:
        return await self._store.list_saml_providers()

    async def delete_saml_provider(self, arn: str) -> None:
        if not await self._store.delete_saml_provider(self._saml_name(arn)):
            raise NoSuchEntityException(f"Manifest not found for arn {arn}")

    def trust_allows_federated(
        self,
        role: Role,
        federated_principal: str,
        context_keys: Mapping[str, ContextValue],
        *,
        action: str,
        request_tags: Mapping[str, str] | None = None,
        source_identity: str | None = None,
    ) -> bool:
        """The trust check of any federated principal (a SAML provider's ARN, for AssumeRoleWithSAML)."""
        context: dict[str, ContextValue] = dict(context_keys)
        context["aws:CurrentTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        context["aws:EpochTime"] = str(int(time.time()))
        context["aws:FederatedProvider"] = federated_principal
        return _trust_decides(
            role, action, context, {"Federated": [federated_principal]}, request_tags, source_identity
        )


def _trust_decides(
    role: Role,
    action: str,
    context: dict[str, ContextValue],
    principal: dict[str, list[str]],
    request_tags: Mapping[str, str] | None,
    source_identity: str | None = None,
) -> bool:
    """Whether the role's trust policy allows ``action`` for ``principal`` in ``context`` and, when session
    tags are passed, ``sts:TagSession`` for them too (as AWS requires); the tags become ``aws:RequestTag/*``
    and ``aws:TagKeys`` of the context. A session with a source identity also needs ``sts:SetSourceIdentity``
    (IAM User Guide, "Monitor and control actions taken with assumed roles"), the value being
    ``sts:SourceIdentity`` in the context."""
    return _trust_decision(role, action, context, principal, request_tags, source_identity) is Decision.ALLOW


def _trust_decision(
    role: Role,
    action: str,
    context: dict[str, ContextValue],
    principal: dict[str, list[str]],
    request_tags: Mapping[str, str] | None,
    source_identity: str | None = None,
) -> Decision:
    """The trust policy's verdict on the assumption (see :func:`_trust_decides`): DENY when a statement denies
    any of its actions, ALLOW when statements allow them all, else NOT_APPLICABLE."""
    for key, value in (request_tags or {}).items():
        context[f"aws:RequestTag/{key}"] = value
    if request_tags:
        context["aws:TagKeys"] = list(request_tags)
    if source_identity is not None:
        context[SOURCE_IDENTITY_KEY] = source_identity
    trust = role.trust_policy
    actions = [action]
    if request_tags:
        actions.append(TAG_SESSION)
    if source_identity is not None:
        actions.append(SET_SOURCE_IDENTITY)
    verdicts = [
        trust.evaluate(Request(action=asked, resource=role.arn, context=context, principal=principal))
        for asked in actions
    ]
    if Decision.DENY in verdicts:
        return Decision.DENY
    return Decision.ALLOW if all(verdict is Decision.ALLOW for verdict in verdicts) else Decision.NOT_APPLICABLE


def _no_role(name: str) -> NoSuchEntityException:
    return NoSuchEntityException(f"The role with name {name} cannot be found.")
