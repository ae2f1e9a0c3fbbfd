"""A pool's hosted-UI domains, its resource servers, and the OAuth settings of its app clients.

CreateUserPoolDomain / DescribeUserPoolDomain / UpdateUserPoolDomain / DeleteUserPoolDomain: a prefix domain
(``myapp``, which Cognito serves as ``myapp.auth.<region>.amazoncognito.com``) or a custom domain
(``auth.example.com``, with a CustomDomainConfig). Gatehouse serves one port: a request whose Host is a
custom domain, or whose first host label is a prefix domain, is served for that domain's pool; without one,
the pool comes from the path (``/{UserPoolId}/oauth2/...``) or from the client_id.

CreateResourceServer / DescribeResourceServer / UpdateResourceServer / ListResourceServers /
DeleteResourceServer: custom scopes, granted as ``{Identifier}/{ScopeName}``.

:func:`check_client_oauth_settings` applies Cognito's rules to an app client's OAuth members.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from gateway.errors import (
    InvalidOAuthFlowException,
    InvalidParameterException,
    ResourceNotFoundException,
    ScopeDoesNotExistException,
)
from gateway.services.pools import CACHE_SECONDS, PoolService
from gateway.services.short_cache import ShortCache
from gateway.services.tokens import ADMIN_SCOPE
from gateway.services.ui_css import check_css
from gateway.storage.base import (
    AlreadyExists,
    DomainRecord,
    NotFound,
    ResourceServerRecord,
    Store,
    UICustomizationRecord,
)

STANDARD_SCOPES = ("openid", "email", "phone", "profile", ADMIN_SCOPE)
OAUTH_FLOWS = ("code", "implicit", "client_credentials")
# Cognito's patterns (service model): a prefix is lower-case letters, digits and hyphens.
_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?$")
_CUSTOM = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SCOPE_NAME = re.compile(r"^[\x21\x23-\x2E\x30-\x5B\x5D-\x7E]+$")
_RESERVED_PREFIX_WORDS = ("aws", "amazon", "cognito")
# SetUICustomization's logo: at most 100 KB ("Customizing hosted UI (classic) branding").
MAX_LOGO_BYTES = 100 * 1024
# How many clients' UI customizations a process keeps for its hosted pages at most (the oldest read goes first).
PAGE_CACHE_SIZE = 4096
# The classes Cognito's hosted UI lets CSS style ("Customizing the classic hosted UI"); the hosted pages carry
# them, and SetUICustomization refuses CSS that styles anything else.
CUSTOMIZABLE_CLASSES = frozenset(
    {
        "background-customizable",
        "banner-customizable",
        "errorMessage-customizable",
        "idpButton-customizable",
        "idpButton-customizable:hover",
        "idpDescription-customizable",
        "inputField-customizable",
        "inputField-customizable:focus",
        "label-customizable",
        "legalText-customizable",
        "logo-customizable",
        "redirect-customizable",
        "socialButton-customizable",
        "submitButton-customizable",
        "submitButton-customizable:hover",
        "textDescription-customizable",
    }
)
ALL_CLIENTS = "ALL"


def is_custom_domain(domain: str) -> bool:
    return "." in domain


# RFC 9110 §4.2.1, §4.2.2: the port a URI of each scheme means when it names none.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(host: str, default_port: int | None) -> str:
    """A Host (RFC 9110 §7.2: uri-host, then an optional port) spelt one way: lower-cased (RFC 9110 §4.2.3),
    without the final dot of a fully qualified name (RFC 1034 §3.1: the same name) and without an empty or
    the scheme's default port (RFC 9110 §4.2.3, RFC 3986 §6.2.3: the same origin)."""
    host = host.lower()
    if host.startswith("["):  # an IPv6 literal: its colons are not a port's
        name, bracket, port = host.partition("]")
        name += bracket
        port = port.removeprefix(":")
    elif ":" in host:
        name, _, port = host.rpartition(":")
    else:
        name, port = host, ""
    name = name.removesuffix(".")
    if not port or (port.isascii() and port.isdigit() and int(port) == default_port):
        return name
    return f"{name}:{port}"


# URI schemes no redirect may use (the browser's own: scripts, inline documents, local files).
_SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "data", "blob", "file", "about", "filesystem"})


def check_redirect_uri(uri: str, member: str) -> None:
    """Cognito's rules for CallbackURLs, LogoutURLs and DefaultRedirectURI: an absolute URI without a
    fragment, HTTPS unless it is http://localhost (app schemes such as myapp:// are allowed)."""
    parts = urlsplit(uri)
    if not parts.scheme or (parts.scheme in ("http", "https") and not parts.netloc):
        raise InvalidParameterException(f"{member} must be absolute URIs: {uri}")
    if parts.fragment or "#" in uri:
        raise InvalidParameterException(f"{member} must not include a fragment: {uri}")
    if parts.scheme in _SCRIPT_SCHEMES:
        # A browser runs or reads these itself rather than handing them to an application: a code or token
        # "redirected" there would be an injection into this origin's or a blank page (RFC 9700 §4.1).
        raise InvalidParameterException(f"{member} must not use the {parts.scheme} scheme: {uri}")
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "[::1]", "::1"):
        raise InvalidParameterException(f"{member} must use HTTPS unless the host is localhost: {uri}")
    if len(uri) > 1024:
        raise InvalidParameterException(f"{member} members must be at most 1024 characters.")


def _managed_login_version(version: int | None, default: int) -> int:
    """ManagedLoginVersion: 1 (hosted UI, classic) or 2 (managed login), CreateUserPoolDomain's two versions."""
    if version is None:
        return default
    if version not in (1, 2):
        raise InvalidParameterException("ManagedLoginVersion must be 1 or 2.")
    return int(version)


class DomainService:
    """Domains and resource servers of the pools."""

    def __init__(self, store: Store, pools: PoolService, *, issuer_base: str | None = None) -> None:
        self.store = store
        self.pools = pools
        # The server's own Host (the issuer's host and port): it serves every pool, so it names none. Compared
        # in one spelling (see _authority): the public URL's scheme tells which port a Host may leave out.
        self._default_port: int | None = None
        self._own_host: str | None = None
        # Where a custom domain's DNS must point (Cognito answers its CloudFront distribution): this server.
        self._serving_host: str | None = None
        # The public URL's own port, when it names one (":9229"): a pool domain's URLs that Gatehouse hands out
        # are on it.
        self._public_port = ""
        self._issuer_base = (issuer_base or "").rstrip("/")
        self._scheme = "https"
        if issuer_base:
            public = urlsplit(issuer_base)
            self._serving_host = public.hostname
            self._scheme = public.scheme.lower()
            self._default_port = _DEFAULT_PORTS.get(public.scheme.lower())
            self._own_host = _authority(public.netloc, self._default_port)
            if public.port is not None and public.port != self._default_port:
                self._public_port = f":{public.port}"
        # The hosted pages read a client's UI customization on every render and it changes rarely: each
        # process keeps what it read for CACHE_SECONDS, as PoolService keeps pools and clients (a change made
        # here is seen here at once; one made by another process within CACHE_SECONDS). It only styles a page.
        # Bounded, as an entry per client ever shown would otherwise outlive its client and pool (the value is a
        # 1-tuple: "no customization" is an answer worth keeping too).
        self._page_customizations: ShortCache[tuple[str, str], tuple[UICustomizationRecord | None]] = ShortCache(
            CACHE_SECONDS, PAGE_CACHE_SIZE
        )

    # --- domains -----------------------------------------------------------------------------------------

    async def create_domain(
        self, pool_id: str, domain: str, custom: Mapping[str, Any] | None, version: int | None = None
    ) -> None:
        """CreateUserPoolDomain. ``version`` is the ManagedLoginVersion asked for (1, the classic hosted UI, when
        none is): Gatehouse serves the same pages either way, and reports the version as it was set."""
        await self.pools.get_pool(pool_id)
        login_version = _managed_login_version(version, 1)
        if custom:
            if not _CUSTOM.match(domain):
                raise InvalidParameterException(f"Invalid custom domain: {domain}")
            if not custom.get("CertificateArn"):
                raise InvalidParameterException("CustomDomainConfig.CertificateArn is required.")
        else:
            if not _PREFIX.match(domain):
                raise InvalidParameterException(
                    "Domain prefix can contain only lower-case letters, numbers, and hyphens."
                )
            if any(word in domain for word in _RESERVED_PREFIX_WORDS):
                raise InvalidParameterException("Domain prefix cannot contain reserved word: aws, amazon, cognito")
        existing = await self.store.list_pool_domains(pool_id)
        if any(is_custom_domain(d.domain) == bool(custom) for d in existing):
            raise InvalidParameterException(
                f"User pool {pool_id} already has a {'custom ' if custom else ''}domain configured."
            )
        settings: dict[str, Any] = {"CustomDomainConfig": dict(custom)} if custom else {}
        settings["ManagedLoginVersion"] = login_version
        try:
            await self.store.create_domain(DomainRecord(domain, pool_id, settings, time.time()))
        except AlreadyExists as exc:
            raise InvalidParameterException("Domain already associated with another user pool.") from exc

    async def _owned(self, pool_id: str, domain: str) -> DomainRecord:
        record = await self.store.get_domain(domain)
        if record is None or record.pool_id != pool_id:
            raise InvalidParameterException(f"No such domain or user pool exists: {domain}")
        return record

    def domain_description(self, record: DomainRecord, region: str, account_id: str) -> dict[str, Any]:
        """DomainDescriptionType, as DescribeUserPoolDomain answers."""
        custom = is_custom_domain(record.domain)
        description: dict[str, Any] = {
            "UserPoolId": record.pool_id,
            "AWSAccountId": account_id,
            "Domain": record.domain,
            # No S3Bucket: the member is optional, and Gatehouse keeps no bucket (S3BucketType is 3 to 1024
            # characters). A custom domain's CloudFrontDistribution is the host serving it, where its DNS points.
            "CloudFrontDistribution": (
                (self._serving_host or record.domain) if custom else f"{record.domain}.auth.{region}.amazoncognito.com"
            ),
            "Version": "20240101",
            "Status": "ACTIVE",
            "ManagedLoginVersion": int(record.settings.get("ManagedLoginVersion", 1)),
        }
        if custom:
            description["CustomDomainConfig"] = record.settings.get("CustomDomainConfig") or {}
        return description

    async def describe_domain(self, domain: str) -> DomainRecord | None:
        """DescribeUserPoolDomain's record; None for a domain no pool has. A value that is neither a prefix nor
        a host name (DomainType's pattern, with the custom domains the member also names) is refused: it can
        name no domain, and an empty description would say it merely has no pool."""
        if not (_PREFIX.match(domain) or _CUSTOM.match(domain)):
            raise InvalidParameterException(f"Invalid domain: {domain}")
        return await self.store.get_domain(domain)

    async def update_domain(
        self, pool_id: str, domain: str, custom: Mapping[str, Any] | None, version: int | None = None
    ) -> None:
        """UpdateUserPoolDomain: a new certificate for a custom domain and/or a new ManagedLoginVersion (kept when
        not given)."""
        record = await self._owned(pool_id, domain)
        if version is not None:
            record.settings = {**record.settings, "ManagedLoginVersion": _managed_login_version(version, 1)}
        if custom:
            if not is_custom_domain(domain):
                raise InvalidParameterException("CustomDomainConfig applies to custom domains only.")
            if not custom.get("CertificateArn"):
                raise InvalidParameterException("CustomDomainConfig.CertificateArn is required.")
            record.settings = {**record.settings, "CustomDomainConfig": dict(custom)}
        try:
            await self.store.update_domain(record)
        except NotFound as exc:
            raise InvalidParameterException(f"No such domain or user pool exists: {domain}") from exc

    async def delete_domain(self, pool_id: str, domain: str) -> None:
        await self._owned(pool_id, domain)
        await self.store.delete_domain(domain)

    def domain_name(self, host: str | None) -> str | None:
        """The name a Host header (RFC 9110 §7.2: host, then an optional port) gives that could be a pool's
        domain, lower-cased and without a final dot; None for no Host, the server's own (also with its default
        port or a final dot), an IP address, localhost or anything that is not a DNS name (a domain is always
        one: a Host of other bytes, however hostile, names no pool), which are never a pool's domain (so they
        cost no store read)."""
        if not host:
            return None
        host = _authority(host, self._default_port)
        if host == self._own_host or host.startswith("["):
            return None  # the server itself (however its Host is spelt), or an IPv6 literal
        name = host.rpartition(":")[0] if ":" in host else host
        if not name or name == "localhost" or name.replace(".", "").isdigit():
            return None
        if not (_PREFIX.fullmatch(name) or _CUSTOM.fullmatch(name)):
            return None
        return name

    async def served_domain(self, host: str | None, region: str) -> str | None:
        """The pool domain a request's host names, as Gatehouse names it in URLs it hands to others (an upstream
        identity provider's redirect URI and SAML ACS): a custom domain by its registered name; a prefix domain
        as ``<prefix>.<the public URL's host>`` or Cognito's ``<prefix>.auth.<region>.amazoncognito.com``, only
        when the host is one of those (prefix routing takes any suffix, and a URL an IdP sends the user's
        assertion to must never be one the request chose); with the public URL's port. None on Gatehouse's own
        host, or when the host names no pool domain in one of those forms."""
        name = self.domain_name(host)
        if name is None:
            return None
        record = await self.store.get_domain(name)
        if record is not None and is_custom_domain(record.domain):
            return f"{record.domain}{self._public_port}"
        prefix, _, suffix = name.partition(".")
        record = await self.store.get_domain(prefix) if suffix else None
        if record is None or is_custom_domain(record.domain):
            return None
        if suffix not in (self._serving_host, f"auth.{region}.amazoncognito.com"):
            return None
        return f"{name}{self._public_port}"

    async def page_base(self, pool_id: str) -> str:
        """Where a link in a message (a sign-up confirmation link) opens the pool's hosted pages: its custom
        domain when it has one, the name its users know (with the public URL's scheme and port); else the
        pool's path under the public URL (``/{UserPoolId}``), which Gatehouse serves for every pool and which
        needs no DNS name of its own, as a prefix domain does."""
        for record in await self.store.list_pool_domains(pool_id):
            if is_custom_domain(record.domain):
                return f"{self._scheme}://{record.domain}{self._public_port}"
        return f"{self._issuer_base}/{pool_id}"

    async def pool_for_host(self, host: str | None) -> str | None:
        """The pool a Host header names: a custom domain exactly, or a prefix domain as its first label; None
        when it names none (see :meth:`domain_name`: then without a store read). Every endpoint that answers
        for a pool's domain asks here."""
        name = self.domain_name(host)
        if name is None:
            return None
        record = await self.store.get_domain(name)
        if record is None and "." in name:
            record = await self.store.get_domain(name.split(".", 1)[0])
            if record is not None and is_custom_domain(record.domain):
                record = None
        return record.pool_id if record is not None else None

    # --- resource servers --------------------------------------------------------------------------------

    @staticmethod
    def _check_scopes(scopes: Any) -> list[dict[str, str]]:
        result: list[dict[str, str]] = []
        seen: set[str] = set()
        for scope in scopes or []:
            name = str(scope.get("ScopeName", ""))
            if not _SCOPE_NAME.match(name) or len(name) > 256:
                raise InvalidParameterException(f"Invalid ScopeName: {name}")
            if name in seen:
                raise InvalidParameterException(f"Duplicate ScopeName: {name}")
            seen.add(name)
            result.append({"ScopeName": name, "ScopeDescription": str(scope.get("ScopeDescription", ""))})
        if len(result) > 100:
            raise InvalidParameterException("A resource server can have at most 100 scopes.")
        return result

    @staticmethod
    def server_type(record: ResourceServerRecord) -> dict[str, Any]:
        return {
            "UserPoolId": record.pool_id,
            "Identifier": record.identifier,
            "Name": record.name,
            "Scopes": list(record.scopes),
        }

    async def create_resource_server(
        self, pool_id: str, identifier: str, name: str, scopes: Any
    ) -> ResourceServerRecord:
        await self.pools.get_pool(pool_id)
        now = time.time()
        record = ResourceServerRecord(pool_id, identifier, name, self._check_scopes(scopes), now, now)
        try:
            await self.store.create_resource_server(record)
        except AlreadyExists as exc:
            raise InvalidParameterException(f"{identifier} already exists in pool {pool_id}.") from exc
        self.pools.resource_servers_changed(pool_id, identifier)
        return record

    async def get_resource_server(self, pool_id: str, identifier: str) -> ResourceServerRecord:
        await self.pools.get_pool(pool_id)
        record = await self.store.get_resource_server(pool_id, identifier)
        if record is None:
            raise ResourceNotFoundException(f"{identifier} does not exist in pool {pool_id}.")
        return record

    async def update_resource_server(
        self, pool_id: str, identifier: str, name: str, scopes: Any
    ) -> ResourceServerRecord:
        record = await self.get_resource_server(pool_id, identifier)
        record.name, record.scopes, record.updated_at = name, self._check_scopes(scopes), time.time()
        try:
            await self.store.update_resource_server(record)
        except NotFound as exc:
            raise ResourceNotFoundException(f"{identifier} does not exist in pool {pool_id}.") from exc
        self.pools.resource_servers_changed(pool_id, identifier)
        return record

    async def delete_resource_server(self, pool_id: str, identifier: str) -> None:
        await self.get_resource_server(pool_id, identifier)
        await self.store.delete_resource_server(pool_id, identifier)
        self.pools.resource_servers_changed(pool_id, identifier)

    async def list_resource_servers(
        self, pool_id: str, after: str | None, limit: int
    ) -> tuple[list[ResourceServerRecord], str | None]:
        await self.pools.get_pool(pool_id)
        page = await self.store.list_resource_servers(pool_id, after, limit)
        return page.items, page.next_token

    async def custom_scopes(self, pool_id: str) -> set[str]:
        scopes: set[str] = set()
        after: str | None = None
        while True:
            page = await self.store.list_resource_servers(pool_id, after, 50)
            for server in page.items:
                scopes.update(f"{server.identifier}/{s['ScopeName']}" for s in server.scopes)
            if page.next_token is None:
                return scopes
            after = page.next_token

    # --- app clients' OAuth members ----------------------------------------------------------------------

    async def check_client_oauth_settings(self, pool_id: str, request: Mapping[str, Any], has_secret: bool) -> None:
        """Cognito's validation of CreateUserPoolClient / UpdateUserPoolClient's OAuth members."""
        flows = list(request.get("AllowedOAuthFlows") or [])
        scopes = list(request.get("AllowedOAuthScopes") or [])
        callbacks = list(request.get("CallbackURLs") or [])
        for flow in flows:
            if flow not in OAUTH_FLOWS:
                raise InvalidParameterException(f"Invalid AllowedOAuthFlows value: {flow}")
        for uri in callbacks:
            check_redirect_uri(str(uri), "CallbackURLs")
        for uri in request.get("LogoutURLs") or []:
            check_redirect_uri(str(uri), "LogoutURLs")
        default = request.get("DefaultRedirectURI")
        if default:
            check_redirect_uri(str(default), "DefaultRedirectURI")
            if default not in callbacks:
                raise InvalidParameterException("DefaultRedirectURI must be one of the CallbackURLs.")
        custom = [s for s in scopes if s not in STANDARD_SCOPES]
        if custom:
            known = await self.custom_scopes(pool_id)
            for scope in custom:
                if scope not in known:
                    raise ScopeDoesNotExistException(f"Invalid scope requested: {scope}")
        for provider in request.get("SupportedIdentityProviders") or []:
            if not isinstance(provider, str) or not provider:
                raise InvalidParameterException("Invalid SupportedIdentityProviders value.")
            # Cognito: every provider but COGNITO must be one of the pool's identity providers.
            if provider != "COGNITO" and await self.store.get_identity_provider(pool_id, provider) is None:
                raise InvalidParameterException(f"The provider {provider} does not exist for User Pool {pool_id}")
        if not request.get("AllowedOAuthFlowsUserPoolClient"):
            return
        if not flows:
            raise InvalidOAuthFlowException(
                "AllowedOAuthFlows must be set when AllowedOAuthFlowsUserPoolClient is true."
            )
        if not scopes:
            raise InvalidOAuthFlowException(
                "AllowedOAuthScopes must be set when AllowedOAuthFlowsUserPoolClient is true."
            )
        if "client_credentials" in flows:
            if not has_secret:
                raise InvalidOAuthFlowException(
                    "client_credentials flow can not be selected if client does not have a client secret."
                )
            if len(flows) > 1:
                raise InvalidOAuthFlowException(
                    "client_credentials flow can not be selected with code or implicit flows."
                )
            if not custom or len(custom) != len(scopes):
                raise InvalidOAuthFlowException("client_credentials flow can only be used with custom scopes.")
        elif not callbacks:
            raise InvalidParameterException("CallbackURLs must be set for the code and implicit flows.")

    # --- hosted UI customization -------------------------------------------------------------------------

    @staticmethod
    def _image_type(data: bytes) -> str:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "image/png"
        if data.startswith(b"\xff\xd8\xff"):
            return "image/jpeg"
        raise InvalidParameterException("The image must be a PNG or JPEG file.")

    async def set_ui_customization(
        self, pool_id: str, client_id: str | None, css: str | None, image_b64: str | None
    ) -> UICustomizationRecord | None:
        """SetUICustomization for the pool (no client) or one client; neither CSS nor image clears it. "Your user
        pool must have a domain" (SetUICustomization): without one Cognito answers InvalidParameterException "There
        has to be an existing domain associated with this user pool"."""
        await self.pools.get_pool(pool_id)
        if not await self.store.list_pool_domains(pool_id):
            raise InvalidParameterException("There has to be an existing domain associated with this user pool")
        scope = client_id or ALL_CLIENTS
        if client_id:
            await self.pools.get_client(pool_id, client_id)
        if not css and not image_b64:
            await self.store.delete_ui_customization(pool_id, scope)
            self._page_customizations.clear()
            return None
        if css:
            # Only Cognito's customizable classes, and nothing that reaches outside the stylesheet
            # (gateway/services/ui_css.py). Parsing one as large as the model allows (128 KiB) takes ~0.1 s: in
            # a thread, so the event loop goes on serving meanwhile.
            await asyncio.to_thread(check_css, css, CUSTOMIZABLE_CLASSES)
        image_type = None
        if image_b64:
            try:
                image = base64.b64decode(image_b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidParameterException("ImageFile is not valid base64.") from exc
            if len(image) > MAX_LOGO_BYTES:
                # "Customizing hosted UI (classic) branding": the logo file may be at most 100 KB (the model's
                # blob allows 128 KiB).
                raise InvalidParameterException("The logo image must be no larger than 100 KB.")
            image_type = self._image_type(image)
        now = time.time()
        existing = await self.store.get_ui_customization(pool_id, scope)
        record = UICustomizationRecord(
            pool_id, scope, css or None, image_b64 or None, image_type, existing.created_at if existing else now, now
        )
        await self.store.put_ui_customization(record)
        self._page_customizations.clear()
        return record

    async def get_ui_customization(self, pool_id: str, client_id: str | None) -> UICustomizationRecord | None:
        """What applies to a client: its own customization, else the pool's."""
        await self.pools.get_pool(pool_id)
        if client_id:
            own = await self.store.get_ui_customization(pool_id, client_id)
            if own is not None:
                return own
        return await self.store.get_ui_customization(pool_id, ALL_CLIENTS)

    async def page_customization(self, pool_id: str, client_id: str) -> UICustomizationRecord | None:
        """:meth:`get_ui_customization` for a hosted page, from this process's short-lived cache."""
        cached = self._page_customizations.get((pool_id, client_id))
        if cached is not None:
            return cached[0]
        record = await self.get_ui_customization(pool_id, client_id)
        self._page_customizations.put((pool_id, client_id), (record,))
        return record

    @staticmethod
    def ui_customization_type(
        record: UICustomizationRecord | None, pool_id: str, client_id: str | None, base_url: str
    ) -> dict[str, Any]:
        result: dict[str, Any] = {"UserPoolId": pool_id, "ClientId": client_id or ALL_CLIENTS}
        if record is None:
            return result
        result.update(
            {
                "CSSVersion": str(int(record.updated_at * 1000)),
                "CreationDate": record.created_at,
                "LastModifiedDate": record.updated_at,
            }
        )
        if record.css:
            result["CSS"] = record.css
        if record.image:
            result["ImageUrl"] = f"{base_url}/ui/{pool_id}/{record.client_id}/logo"
        return result
