"""Client ID metadata documents (CIMD): external public OAuth clients whose client_id is an https URL.

Follows Amazon Cognito's "Client ID metadata documents (CIMD)" and draft-ietf-oauth-client-id-metadata-document.
A CIMD policy of a pool (CreateCIMDPolicy) maps one to five https URL patterns to exactly one existing app
client. A client that presents, as its ``client_id``, a URL matching a pattern is admitted: its metadata
document is fetched from that very URL and used as its registration, on top of the app client's settings.

* Only a URL that matches an admin's pattern is ever fetched (this is a server-side fetch of a caller-chosen
  URL): https only, no userinfo, no fragment, no query, no dot segments (draft §3), a path; redirects are not
  followed, the answer is capped at :data:`MAX_DOCUMENT_BYTES` (the draft suggests 5 KB) and the fetch at
  :data:`FETCH_TIMEOUT_SECONDS`.
* The document must be a JSON object whose ``client_id`` is the URL exactly (draft §4.1), with
  ``redirect_uris``; a public client only (``token_endpoint_auth_method`` ``none``; no ``client_secret``).
* A grant is allowed only when both the app client and the document allow it; ``client_credentials`` never.
  The token-exchange grant (RFC 8693) needs the app client's exchange flow and the grant in ``grant_types``.
  The client's scopes are the app client's, narrowed to the document's ``scope`` when it has one; its
  redirect URIs are the document's (exact match); identity providers and token validity are the app
  client's.
* A document is cached in the store per policy and URL, for the document's ``Cache-Control: max-age`` when
  it lies between one day and one year, else for the policy's CacheDuration, so every worker process shares
  it and ListClientMetadataURLs lists it. Concurrent first requests in a process share one fetch, and a
  failed fetch is not retried for :data:`FAILURE_SECONDS`.

Tokens of a CIMD client name the URL as their ``client_id`` (access token) and ``aud`` (ID token): it is the
client's identifier, the one it sends to the token endpoint and checks in its ID token (OpenID Connect Core
§3.1.3.7).
"""

from __future__ import annotations

import asyncio
import copy
import functools
import ipaddress
import re
import secrets
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import orjson
import structlog
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from gateway.errors import (
    CachedCIMDURLDoesNotExistException,
    InvalidParameterException,
    ResourceNotFoundException,
)
from gateway.metrics import Metrics
from gateway.services.domains import check_redirect_uri
from gateway.services.pools import TOKEN_EXCHANGE_FLOWS, ClientView, PoolService
from gateway.services.short_cache import ShortCache
from gateway.storage.base import CimdDocumentRecord, CimdPolicyRecord, ClientRecord, NotFound, Store

log = structlog.get_logger("gateway.cimd")

# CacheDurationType's range in botocore's model; Cognito's default is one day.
MIN_CACHE_SECONDS = 86_400
MAX_CACHE_SECONDS = 31_556_952
DEFAULT_CACHE_SECONDS = MIN_CACHE_SECONDS
# draft-ietf-oauth-client-id-metadata-document §6.6 suggests 5 kilobytes.
MAX_DOCUMENT_BYTES = 5 * 1024
FETCH_TIMEOUT_SECONDS = 5.0
# A URL whose fetch failed is not fetched again by this process for this long (a flood of requests naming a
# broken document must not become a flood of fetches).
FAILURE_SECONDS = 10.0
# Fetches one process runs at once: a flood of first requests for distinct URLs (a wildcard admits many) is
# refused past it at once, rather than queueing for the connector until the fetch's time is up -- which
# would hold every request open, and remember a legitimate URL fetched meanwhile as failed.
MAX_CONCURRENT_FETCHES = 32
# Settings key of a CIMD client's view: what it was made of (see client_view).
CIMD_SETTING = "GatehouseCIMD"
# The shared-secret and key methods a public CIMD client must not name (Cognito: public clients only).
_PUBLIC_METHOD = "none"
_MAX_REDIRECT_URIS = 100
# RFC 8693 §2.1's grant type, as a document's grant_types names it.
_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
# A document client's ExplicitAuthFlows when it may not exchange tokens: it signs no one in through the API (its
# client_id is no ClientIdType), and an empty list would stand for the API's default flows.
_NO_API_FLOWS = ["ALLOW_REFRESH_TOKEN_AUTH"]
# CIMDPolicyIdType: what a caller-chosen (the config file's) policy id may be.
_POLICY_ID = re.compile(r"[a-z0-9]{1,64}")


# The outcomes of a document fetch, as the gatehouse_cimd_document_fetches counter labels them: a small fixed
# set (never the URL, which is the caller's to choose).
FETCHED = "fetched"
REFUSED_REDIRECT = "refused_redirect"
REFUSED_ADDRESS = "refused_address"
REFUSED_STATUS = "refused_status"
REFUSED_SIZE = "refused_size"
REFUSED_ENCODING = "refused_encoding"
FAILED = "failed"  # no answer: connection, TLS or timeout
NOT_JSON = "refused_not_json"
INVALID_DOCUMENT = "refused_document"
POLICY_DELETED = "policy_deleted"
FETCH_OUTCOMES = (FETCHED, REFUSED_REDIRECT, REFUSED_STATUS, REFUSED_SIZE, REFUSED_ENCODING, FAILED, NOT_JSON,
                  INVALID_DOCUMENT, POLICY_DELETED)  # fmt: skip


class ClientMetadataError(Exception):
    """A CIMD client is refused. ``oauth_error`` is the OAuth error to answer with (RFC 6749 §4.1.2.1, §5.2);
    ``message`` is logged (and told to administrators); ``public``, when given, is what the caller is told
    instead (why a fetch failed would tell anyone what answers on the hosts a pattern admits); ``outcome`` is
    the fetch outcome it stands for (one of FETCH_OUTCOMES)."""

    def __init__(
        self, oauth_error: str, message: str, outcome: str = INVALID_DOCUMENT, *, public: str | None = None
    ) -> None:
        super().__init__(message)
        self.oauth_error = oauth_error
        self.message = message
        self.outcome = outcome
        self.public = public if public is not None else message


_NOT_FETCHED = "The client metadata document could not be fetched."


def _ip_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address, or None for a name. An IPv6 zone ("fe80::1%eth0") names no host."""
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None


# IPv6 prefixes whose last 32 bits are an IPv4 address that a translator or relay on the path reaches:
# NAT64's well-known prefix (RFC 6052 §2.1) and the deprecated IPv4-compatible addresses (RFC 4291 §2.5.5.1).
_IPV4_IN_LOW_BITS = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))
# NAT64's local-use prefix (RFC 8215): whatever it embeds, it is not a global address.
_LOCAL_USE_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the forms that carry one to an IPv4 host:
    IPv4-mapped (``::ffff:10.0.0.1``), 6to4 (``2002:0a00:0001::``, RFC 3056), NAT64 and IPv4-compatible.
    Teredo (2001::/32) needs no unwrapping: the whole prefix is not global."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _IPV4_IN_LOW_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def public_address(address: str) -> bool:
    """Whether a document may be fetched from ``address``: a global unicast address, not a private, loopback,
    link-local, shared (100.64.0.0/10), reserved, multicast or unspecified one (the IANA special-purpose
    registries, as :mod:`ipaddress` knows them). An IPv6 address that carries an IPv4 one to its host (mapped,
    6to4, NAT64, IPv4-compatible) is judged as that IPv4 address: ``2002:7f00:1::`` reaches 127.0.0.1 through a
    6to4 relay, and :mod:`ipaddress` calls it global."""
    ip = _ip_address(address)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_USE_NAT64:
            return False
        ip = _embedded_ipv4(ip) or ip
    return ip.is_global and not ip.is_multicast


class _PrivateAddressError(OSError):
    """Every address a document's host resolved to is one Gatehouse does not fetch from."""


class _PublicAddressResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses (:func:`public_address`).

    The check is made on the addresses the connection is then made to, so a host whose name resolves to a
    public address when checked and a private one when fetched (DNS rebinding) gains nothing: there is no second
    look-up."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        public = [entry for entry in found if public_address(entry["host"])]
        if not public:
            raise _PrivateAddressError(f"{host} has no public address")
        return public

    async def close(self) -> None:
        await self._resolver.close()


def _refused_address(exc: BaseException) -> bool:
    """Whether a failed fetch failed because its host has only addresses that are not fetched from."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _PrivateAddressError) or isinstance(getattr(seen, "os_error", None), _PrivateAddressError):
            return True
        seen = seen.__cause__
    return False


def _fetch_failed(message: str, outcome: str) -> ClientMetadataError:
    """A fetch that failed before a document came back: ``message`` is logged, the caller told only that."""
    return ClientMetadataError("invalid_client", message, outcome, public=_NOT_FETCHED)


def log_url(url: str) -> str:
    """A caller-chosen URL as logged: cut short, so a huge client_id does not flood the log."""
    return url if len(url) <= 300 else url[:300] + "..."


def app_client_id(client: ClientView) -> str:
    """The app client behind a client: itself, or for a CIMD client the policy's app client (whose per-client
    page customization and branding its hosted pages show, and whose id the API's forms take)."""
    cimd = client.settings.get(CIMD_SETTING)
    return str(cimd["AppClientId"]) if isinstance(cimd, dict) else client.id


def is_metadata_url(client_id: str | None) -> bool:
    """Whether a client_id names a metadata document (an https URL) rather than an app client (whose ids are
    ``[\\w+]+``: never a URL)."""
    return bool(client_id) and str(client_id).startswith("https://")


# --- URL patterns and URLs --------------------------------------------------------------------------------

# What a pattern's * stands for: in the host, one or more characters of host labels (never a port, userinfo
# or path); in the path, one or more characters of one path segment (never a query or fragment).
_HOST_STAR = r"[a-z0-9-]+(?:\.[a-z0-9-]+)*"
_PATH_STAR = r"[^/?#\\\s]+"
_ENCODED_SEPARATOR = re.compile(r"%(?:2e|2f|5c)", re.IGNORECASE)
_HOST = re.compile(r"(?:\*\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*(?::[0-9]{1,5})?")


def _is_dot_segment(segment: str) -> bool:
    """``.`` or ``..``, also percent-encoded, or with parameters: a segment's ``;...`` is no part of it to
    servlet containers, to which ``..;x`` is a ``..``."""
    return unquote(segment).partition(";")[0] in (".", "..")


def check_pattern(pattern: str) -> str:
    """A URLPatternType value as Cognito describes it: an https URL with a host and a path, which may use the
    ``*`` wildcard (in the host, only as its whole first label: ``https://*.example.com/...``; in the path,
    within segments). No userinfo, query, fragment or dot segments (draft §3)."""
    if not isinstance(pattern, str) or not pattern.startswith("https://"):
        raise InvalidParameterException("A URL pattern must start with https://.")
    rest = pattern[len("https://") :]
    host, slash, path = rest.partition("/")
    if not slash:
        raise InvalidParameterException(f"The URL pattern {pattern} has no path.")
    if "@" in host:
        raise InvalidParameterException(f"The URL pattern {pattern} must not contain user information.")
    if not _HOST.fullmatch(host) or "*" in host[1:]:
        raise InvalidParameterException(
            f"The URL pattern {pattern} has an invalid host: a * may only stand for the whole first label."
        )
    port = host.partition(":")[2]
    if port and not 0 < int(port) <= 65535:
        # A port no URL can have (RFC 3986 §3.2.3 leaves it unbounded; TCP does not): the pattern admits nothing.
        raise InvalidParameterException(f"The URL pattern {pattern} has an invalid port.")
    if host.startswith("*.") and host.count(".") < 2:
        raise InvalidParameterException(f"The URL pattern {pattern} must name a domain below a wildcard.")
    if _ENCODED_SEPARATOR.search(path) or any(_is_dot_segment(segment) for segment in path.split("/")):
        # What url_refusal refuses in a client_id: a pattern spelling it would admit no URL at all.
        raise InvalidParameterException(f"The URL pattern {pattern} must not contain . or .. segments.")
    if "**" in path:
        raise InvalidParameterException(f"The URL pattern {pattern} has a repeated wildcard.")
    return pattern


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression a checked pattern stands for (see :func:`check_pattern` and ``_HOST_STAR``)."""
    host, _, path = pattern[len("https://") :].partition("/")
    host_re = re.escape(host).replace(r"\*", _HOST_STAR)
    path_re = re.escape(path).replace(r"\*", _PATH_STAR)
    return re.compile(f"https://{host_re}/{path_re}")


def url_refusal(url: str) -> str | None:
    """Why ``url`` cannot be a client_id (draft §3), or None: https, a host, a path, no userinfo, no
    fragment, no dot segments, no whitespace or backslash; at most 256 characters (MetadataURLType)."""
    if len(url) > 256 or len(url) < 12:
        return "The client_id URL must be 12 to 256 characters long."
    if any(c.isspace() or c == "\\" or ord(c) < 0x21 or ord(c) > 0x7E for c in url):
        return "The client_id URL contains characters that are not allowed."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "The client_id URL is not a valid URL."
    if parts.scheme != "https" or not parts.hostname:
        return "The client_id URL must be an https URL with a host."
    if "@" in parts.netloc:
        return "The client_id URL must not contain user information."
    if "#" in url:
        return "The client_id URL must not contain a fragment."
    if port == 0:
        return "The client_id URL has an invalid port."
    if not parts.path or parts.path == "/":
        return "The client_id URL must have a path."
    if any(_is_dot_segment(segment) for segment in parts.path.split("/")):
        return "The client_id URL must not contain . or .. path segments."
    if _ENCODED_SEPARATOR.search(parts.path):
        # An encoded dot or slash is a dot segment or a separator to some HTTP stacks and not to others: the
        # URL fetched could then differ from the one the pattern admitted.
        return "The client_id URL must not encode a dot, a slash or a backslash in its path."
    return None


# --- documents -------------------------------------------------------------------------------------------


def _string_list(document: Mapping[str, Any], name: str, default: Sequence[str]) -> list[str]:
    value = document.get(name, None)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ClientMetadataError("invalid_client", f"The client metadata document's {name} must be a list of strings.")
    return list(value)


def check_document(url: str, document: object) -> dict[str, Any]:
    """The metadata document's checks (draft §4, Cognito: public clients only). Returns it as given."""
    if not isinstance(document, dict):
        raise ClientMetadataError("invalid_client", "The client metadata document is not a JSON object.")
    if document.get("client_id") != url:
        # draft §4.1: simple string comparison with the URL it was fetched from.
        raise ClientMetadataError("invalid_client", "The client metadata document's client_id is not its URL.")
    redirect_uris = _string_list(document, "redirect_uris", ())
    if not redirect_uris or len(redirect_uris) > _MAX_REDIRECT_URIS:
        raise ClientMetadataError("invalid_client", "The client metadata document has no redirect_uris.")
    for name in ("redirect_uris", "post_logout_redirect_uris"):
        # The rules of an app client's CallbackURLs and LogoutURLs (RFC 9700 §4.1): a document is a
        # registration too, and one written by whoever holds a URL the patterns admit.
        for uri in _string_list(document, name, ())[:_MAX_REDIRECT_URIS]:
            try:
                check_redirect_uri(uri, f"The client metadata document's {name}")
            except InvalidParameterException as exc:
                raise ClientMetadataError("invalid_client", exc.message) from exc
            except ValueError as exc:  # urlsplit: a malformed IPv6 host
                raise ClientMetadataError(
                    "invalid_client", f"The client metadata document's {name} are not URIs."
                ) from exc
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise ClientMetadataError("invalid_client", "A client metadata document must not carry a client_secret.")
    method = document.get("token_endpoint_auth_method", _PUBLIC_METHOD)
    if method != _PUBLIC_METHOD:
        raise ClientMetadataError(
            "invalid_client", "Client metadata document clients are public: token_endpoint_auth_method must be none."
        )
    _string_list(document, "grant_types", ())
    _string_list(document, "response_types", ())
    _string_list(document, "post_logout_redirect_uris", ())
    for name in ("scope", "client_name"):
        if name in document and not isinstance(document[name], str):
            raise ClientMetadataError("invalid_client", f"The client metadata document's {name} must be a string.")
    return document


def cache_seconds(cache_control: str | None, policy_seconds: int) -> int:
    """How long to keep a document: its Cache-Control max-age when between one day and one year (Cognito's
    CacheDuration documentation), else the policy's CacheDuration. ``no-store`` or ``no-cache`` set no max-age
    of their own, so the policy's duration applies."""
    if cache_control:
        for directive in cache_control.split(","):
            name, _, value = directive.strip().partition("=")
            if name.strip().lower() == "max-age":
                value = value.strip().strip('"')
                if value.isascii() and value.isdigit() and len(value) <= 10:
                    seconds = int(value)
                    if MIN_CACHE_SECONDS <= seconds <= MAX_CACHE_SECONDS:
                        return seconds
    return policy_seconds


@dataclass(frozen=True)
class _Fetched:
    document: dict[str, Any]
    cache_control: str | None


class CimdService:
    """CIMD policies of every pool, and the metadata documents of the clients they admit."""

    def __init__(
        self,
        store: Store,
        pools: PoolService,
        *,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        max_bytes: int = MAX_DOCUMENT_BYTES,
        max_fetches: int = MAX_CONCURRENT_FETCHES,
        ssl_context: ssl.SSLContext | None = None,
        metrics: Metrics | None = None,
        private_addresses: bool = False,
    ) -> None:
        self.store = store
        self._fetches = (metrics or Metrics()).counter(
            "gatehouse_cimd_document_fetches",
            "Client metadata document fetches, by outcome: fetched, or why the document was refused or not "
            "received (refused_address, refused_redirect, refused_status, refused_size, refused_encoding, "
            "refused_not_json, refused_document, failed, policy_deleted).",
            ["outcome"],
        )
        self.pools = pools
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_fetches = max_fetches
        self._ssl = ssl_context
        # Documents on private, loopback and link-local addresses: refused unless the deployment allows them
        # (GATEHOUSE_CIMD_PRIVATE_ADDRESSES, for documents served on localhost while developing). A client_id is
        # the caller's to choose, and a pattern's wildcard host admits names whoever owns them can point anywhere,
        # so without this an authorization request could make Gatehouse reach into its own network (SSRF).
        self.private_addresses = private_addresses
        self._http: aiohttp.ClientSession | None = None
        # Fetches in flight in this process, by (policy, URL): a second request for the same document waits
        # for the first one's fetch instead of starting its own.
        self._inflight: dict[tuple[str, str], asyncio.Future[CimdDocumentRecord]] = {}
        # URLs whose fetch failed lately, with the error to answer with.
        self._failures: ShortCache[tuple[str, str], ClientMetadataError] = ShortCache(FAILURE_SECONDS)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- policies (the cognito-idp operations) ---------------------------------------------------------------

    @staticmethod
    def _patterns(value: object) -> list[str]:
        if not isinstance(value, list) or not 1 <= len(value) <= 5:
            raise InvalidParameterException("URLPatterns must hold one to five URL patterns.")
        patterns = [check_pattern(p) for p in value]
        if len(set(patterns)) != len(patterns):
            raise InvalidParameterException("URLPatterns has the same pattern more than once.")
        return patterns

    async def _app_client(self, pool_id: str, client_id: str) -> None:
        await self.pools.get_client(pool_id, client_id)

    async def create(
        self, pool_id: str, request: Mapping[str, Any], *, policy_id: str | None = None
    ) -> CimdPolicyRecord:
        """CreateCIMDPolicy. ``policy_id`` is the config file's fixed id (CIMDPolicyIdType, ``^[a-z0-9]+$``);
        the API's policies get a random one. A fixed id that is taken raises the store's AlreadyExists."""
        await self.pools.get_pool(pool_id)
        if policy_id is not None and not _POLICY_ID.fullmatch(policy_id):
            raise InvalidParameterException("A CIMD policy id must be 1 to 64 lowercase letters and digits.")
        patterns = self._patterns(request.get("URLPatterns"))
        await self._app_client(pool_id, str(request["ClientId"]))
        now = time.time()
        record = CimdPolicyRecord(
            pool_id=pool_id,
            policy_id=policy_id if policy_id is not None else secrets.token_hex(16),
            client_id=str(request["ClientId"]),
            name=str(request["PolicyName"]),
            cache_seconds=int(request.get("CacheDuration") or DEFAULT_CACHE_SECONDS),
            url_patterns=patterns,
            created_at=now,
            updated_at=now,
        )
        try:
            await self.store.create_cimd_policy(record)
        except NotFound as exc:
            raise ResourceNotFoundException(f"User pool {pool_id} does not exist.") from exc
        log.info("cimd.policy_created", pool=pool_id, policy=record.policy_id, client=record.client_id)
        return record

    async def get(self, pool_id: str, policy_id: str) -> CimdPolicyRecord:
        await self.pools.get_pool(pool_id)
        record = await self.store.get_cimd_policy(pool_id, policy_id)
        if record is None:
            raise ResourceNotFoundException(f"CIMD policy {policy_id} does not exist.")
        return record

    async def update(self, pool_id: str, policy_id: str, request: Mapping[str, Any]) -> CimdPolicyRecord:
        """UpdateCIMDPolicy: ClientId and URLPatterns replace; PolicyName and CacheDuration, when left out, stay."""
        record = await self.get(pool_id, policy_id)
        patterns = self._patterns(request.get("URLPatterns"))
        await self._app_client(pool_id, str(request["ClientId"]))
        changed_patterns = patterns != record.url_patterns
        record.client_id = str(request["ClientId"])
        record.url_patterns = patterns
        if request.get("PolicyName") is not None:
            record.name = str(request["PolicyName"])
        if request.get("CacheDuration") is not None:
            record.cache_seconds = int(request["CacheDuration"])
        record.updated_at = time.time()
        written = await self.store.update_cimd_policy(record)
        if written is None:
            raise ResourceNotFoundException(f"CIMD policy {policy_id} does not exist.")
        if changed_patterns:
            # Documents of URLs the new patterns may no longer admit are not kept on their behalf.
            await self.store.delete_cimd_documents(policy_id)
        log.info("cimd.policy_updated", pool=pool_id, policy=policy_id, client=written.client_id)
        return written

    async def delete(self, pool_id: str, policy_id: str) -> None:
        await self.pools.get_pool(pool_id)
        if not await self.store.delete_cimd_policy(pool_id, policy_id):
            raise ResourceNotFoundException(f"CIMD policy {policy_id} does not exist.")
        log.info("cimd.policy_deleted", pool=pool_id, policy=policy_id)

    async def list_policies(
        self, pool_id: str, after: str | None, limit: int
    ) -> tuple[list[CimdPolicyRecord], str | None]:
        await self.pools.get_pool(pool_id)
        page = await self.store.list_cimd_policies(pool_id, after, limit)
        return page.items, page.next_token

    async def list_urls(
        self, pool_id: str, policy_id: str, after: str | None, limit: int
    ) -> tuple[list[CimdDocumentRecord], str | None]:
        await self.get(pool_id, policy_id)
        page = await self.store.list_cimd_documents(policy_id, after, limit)
        return page.items, page.next_token

    async def update_url_state(self, pool_id: str, policy_id: str, url: str, action: str) -> None:
        """UpdateClientMetadataURLState: REFRESH fetches the cached URL's document again now (a failed fetch
        leaves the cached one); INVALIDATE drops it, so the next sign-in fetches it again."""
        policy = await self.get(pool_id, policy_id)
        if await self.store.get_cimd_document(policy_id, url) is None:
            raise CachedCIMDURLDoesNotExistException(f"No client metadata document is cached for {url}.")
        if action == "INVALIDATE":
            await self.store.delete_cimd_documents(policy_id, url)
            self._failures.drop((policy_id, url))
            log.info("cimd.url_invalidated", pool=pool_id, policy=policy_id, url=url)
            return
        try:
            await self._fetch_and_store(policy, url)
        except ClientMetadataError as exc:
            raise InvalidParameterException(
                f"The client metadata document could not be refreshed: {exc.message}"
            ) from exc
        self._failures.drop((policy_id, url))
        log.info("cimd.url_refreshed", pool=pool_id, policy=policy_id, url=url)

    async def policy_type(self, record: CimdPolicyRecord, *, summary: bool = False) -> dict[str, Any]:
        """CIMDPolicyType (CIMDPolicySummaryType with ``summary``). ClientId is left out once the app client
        is gone, as Cognito documents."""
        result: dict[str, Any] = {"CIMDPolicyId": record.policy_id, "PolicyName": record.name}
        if not summary:
            result["UserPoolId"] = record.pool_id
            result["URLPatterns"] = list(record.url_patterns)
        try:
            await self.pools.get_client(record.pool_id, record.client_id)
            result["ClientId"] = record.client_id
        except ResourceNotFoundException:
            pass
        result["CacheDuration"] = record.cache_seconds
        result["CreationDate"] = record.created_at
        result["LastModifiedDate"] = record.updated_at
        return result

    # --- clients (the OAuth endpoints) -----------------------------------------------------------------------

    async def policy_for(self, url: str, pool_id: str | None) -> CimdPolicyRecord:
        """The policy whose patterns admit ``url``: of the pool named, or of the only pool with one."""
        refusal = url_refusal(url)
        if refusal is not None:
            raise ClientMetadataError("invalid_request", refusal)
        matching = [
            policy
            for policy in await self.store.cimd_policies_for_matching(pool_id)
            if any(compile_pattern(p).fullmatch(url) for p in policy.url_patterns)
        ]
        if not matching:
            raise ClientMetadataError("invalid_client", "The client_id URL matches no CIMD policy of this user pool.")
        if len({p.pool_id for p in matching}) > 1:
            raise ClientMetadataError(
                "invalid_client", "The client_id URL belongs to more than one user pool: use the pool's own endpoint."
            )
        return matching[0]

    async def client_view(self, url: str, pool_id: str | None) -> ClientView:
        """The client a metadata document URL names, as an app client view: the policy's app client with the
        document laid over it (see the module docstring). Fetches the document when none is cached."""
        policy = await self.policy_for(url, pool_id)
        try:
            app_client = await self.pools.get_client(policy.pool_id, policy.client_id)
        except ResourceNotFoundException as exc:
            raise ClientMetadataError("invalid_client", "The CIMD policy's app client no longer exists.") from exc
        cached = await self.store.get_cimd_document(policy.policy_id, url)
        if cached is None or cached.expires_at <= time.time():
            cached = await self._fetch_once(policy, url)
        return client_view(app_client, policy, cached)

    async def _fetch_once(self, policy: CimdPolicyRecord, url: str) -> CimdDocumentRecord:
        key = (policy.policy_id, url)
        failed = self._failures.get(key)
        if failed is not None:
            raise ClientMetadataError(failed.oauth_error, failed.message, failed.outcome, public=failed.public)
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        if len(self._inflight) >= self.max_fetches:
            # Not remembered as a failure: the URL is fetched on its next request once there is room.
            log.warning("cimd.fetches_bounded", pool=policy.pool_id, policy=policy.policy_id, url=url)
            raise ClientMetadataError(
                "temporarily_unavailable", "Too many client metadata documents are being fetched: try again later."
            )
        future: asyncio.Future[CimdDocumentRecord] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            record = await self._fetch_and_store(policy, url)
        except ClientMetadataError as exc:
            self._failures.put(key, exc)
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited future logs nothing
            raise
        except BaseException as exc:
            future.set_exception(
                ClientMetadataError("invalid_client", "The client metadata document could not be fetched.")
            )
            future.exception()
            raise exc
        else:
            future.set_result(record)
            return record
        finally:
            self._inflight.pop(key, None)

    async def _fetch_and_store(self, policy: CimdPolicyRecord, url: str) -> CimdDocumentRecord:
        started = time.monotonic()
        try:
            fetched = await self._fetch(url)
            document = check_document(url, fetched.document)
        except ClientMetadataError as exc:
            self._fetches.labels(outcome=exc.outcome).inc()
            log.warning(
                "cimd.fetch_failed",
                pool=policy.pool_id,
                policy=policy.policy_id,
                url=url,
                reason=exc.message,
                seconds=round(time.monotonic() - started, 3),
            )
            raise
        now = time.time()
        seconds = cache_seconds(fetched.cache_control, policy.cache_seconds)
        record = CimdDocumentRecord(policy.policy_id, url, document, now, now + seconds)
        try:
            await self.store.put_cimd_document(record)
        except NotFound as exc:
            self._fetches.labels(outcome=POLICY_DELETED).inc()
            raise ClientMetadataError("invalid_client", "The CIMD policy no longer exists.", POLICY_DELETED) from exc
        self._fetches.labels(outcome=FETCHED).inc()
        log.info(
            "cimd.fetched",
            pool=policy.pool_id,
            policy=policy.policy_id,
            url=url,
            cache_seconds=seconds,
            seconds=round(time.monotonic() - started, 3),
        )
        return record

    async def _fetch(self, url: str) -> _Fetched:
        """GET the document: no redirects followed, at most ``max_bytes`` read, within ``timeout``."""
        if not self.private_addresses:
            host = urlsplit(url).hostname or ""
            if _ip_address(host) is not None and not public_address(host):
                # aiohttp connects to an address in the URL without asking the resolver.
                raise _fetch_failed("The client metadata document URL's host is not a public address.", REFUSED_ADDRESS)
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(
                    ssl=self._ssl if self._ssl is not None else True,
                    limit=50,
                    resolver=None if self.private_addresses else _PublicAddressResolver(),
                ),
                # Cookies from one document's host are never sent to another's.
                cookie_jar=aiohttp.DummyCookieJar(),
                # The size cap counts the bytes received: a compressed body (a few KB inflating to gigabytes)
                # is never inflated, but refused (identity is all that is asked for).
                auto_decompress=False,
            )
        try:
            # encoded=True: the very URL that matched the pattern, not a requoted or normalised one.
            async with self._http.get(
                URL(url, encoded=True),
                allow_redirects=False,
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
            ) as response:
                if 300 <= response.status < 400:
                    raise _fetch_failed("The client metadata document URL redirects (not followed).", REFUSED_REDIRECT)
                if response.status != 200:
                    raise _fetch_failed(
                        f"The client metadata document URL answered HTTP {response.status}.", REFUSED_STATUS
                    )
                if response.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
                    raise ClientMetadataError(
                        "invalid_client", "The client metadata document is content-encoded.", REFUSED_ENCODING
                    )
                if response.content_length is not None and response.content_length > self.max_bytes:
                    raise ClientMetadataError(
                        "invalid_client", "The client metadata document is too large.", REFUSED_SIZE
                    )
                body = await response.content.read(self.max_bytes + 1)
                while len(body) <= self.max_bytes:
                    more = await response.content.read(self.max_bytes + 1 - len(body))
                    if not more:
                        break
                    body += more
                if len(body) > self.max_bytes:
                    raise ClientMetadataError(
                        "invalid_client", "The client metadata document is too large.", REFUSED_SIZE
                    )
                cache_control = response.headers.get("Cache-Control")
        except (aiohttp.ClientError, TimeoutError, ValueError, ssl.SSLError) as exc:
            if _refused_address(exc):
                raise _fetch_failed(
                    "The client metadata document URL's host has no public address.", REFUSED_ADDRESS
                ) from exc
            raise _fetch_failed(
                f"The client metadata document could not be fetched ({type(exc).__name__}).", FAILED
            ) from exc
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ClientMetadataError("invalid_client", "The client metadata document is not JSON.", NOT_JSON) from exc
        return _Fetched(document, cache_control)


def client_view(app_client: ClientView, policy: CimdPolicyRecord, cached: CimdDocumentRecord) -> ClientView:
    """A CIMD client as an app client: the app client's settings (identity providers, token validity,
    attributes, revocation) with the document's registration laid over them. Flows and scopes are the
    intersection of both; the redirect URIs are the document's; there is no secret (public client)."""
    document = cached.document
    settings = copy.deepcopy(app_client.settings)
    grant_types = set(_string_list(document, "grant_types", ("authorization_code",)))
    response_types = set(_string_list(document, "response_types", ("code",)))
    app_flows = (
        set(settings.get("AllowedOAuthFlows") or []) if settings.get("AllowedOAuthFlowsUserPoolClient") else set()
    )
    flows = []
    if "code" in app_flows and "authorization_code" in grant_types and "code" in response_types:
        flows.append("code")
    if "implicit" in app_flows and "implicit" in grant_types and "token" in response_types:
        flows.append("implicit")
    settings["AllowedOAuthFlows"] = flows
    settings["AllowedOAuthFlowsUserPoolClient"] = bool(flows)
    # The token-exchange grant like every other: the app client's exchange flows only when the document lists
    # the grant. Its other flows are API sign-ins, never a document client's, and would grant it the admin scope.
    exchange = [f for f in settings.get("ExplicitAuthFlows") or [] if f in TOKEN_EXCHANGE_FLOWS]
    settings["ExplicitAuthFlows"] = (exchange if _EXCHANGE_GRANT in grant_types else []) or list(_NO_API_FLOWS)
    scopes = list(settings.get("AllowedOAuthScopes") or [])
    if isinstance(document.get("scope"), str):
        wanted = set(str(document["scope"]).split())
        scopes = [s for s in scopes if s in wanted]
    settings["AllowedOAuthScopes"] = scopes
    settings["CallbackURLs"] = _string_list(document, "redirect_uris", ())
    settings.pop("DefaultRedirectURI", None)
    settings["LogoutURLs"] = _string_list(document, "post_logout_redirect_uris", ())
    settings[CIMD_SETTING] = {
        "PolicyId": policy.policy_id,
        "AppClientId": app_client.id,
        "RefreshToken": "refresh_token" in grant_types,
    }
    name = document.get("client_name")
    record = ClientRecord(
        pool_id=app_client.pool_id,
        id=cached.url,
        name=name if isinstance(name, str) and name else app_client.record.name,
        secret=None,
        settings=settings,
        created_at=app_client.record.created_at,
        updated_at=max(app_client.record.updated_at, cached.cached_at),
    )
    return ClientView(record)
