"""The one interface every upstream identity provider implements, and the ``Identity`` each returns.

Two capabilities, as Dex names them: a :class:`RedirectConnector` speaks OAuth 2.0 / OpenID Connect (build the
authorization redirect, RFC 6749 §4.1.1; handle the callback and exchange the code, §4.1.3), a
:class:`SamlConnector` speaks SAML 2.0 Web Browser SSO (an AuthnRequest out, a verified Response in; SAML
Profiles §4.1). The gateway's broker only ever sees these interfaces and :class:`Identity`; it never branches on
which provider it talks to. Connectors are built from a pool's ProviderDetails (Cognito's keys) by
``providers.registry``.

A connector refuses anything it cannot prove with :class:`UpstreamError`; its ``reason`` is a short machine
token for the audit log, never shown with upstream detail to the end user.
"""

from __future__ import annotations

import abc
import asyncio
import math
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeVar

import aiohttp

__all__ = [
    "Connector",
    "ConnectorContext",
    "Identity",
    "ProviderConfigError",
    "RedirectConnector",
    "SamlConnector",
    "SamlRequest",
    "UpstreamError",
]

T = TypeVar("T")

# Upstream answers larger than this are refused: token and userinfo responses are a few kilobytes.
MAX_UPSTREAM_BYTES = 1 << 20
UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=15)


def seconds_setting(name: str, default: float) -> float:
    """A number of seconds from the environment variable ``name``, else ``default``. Read when the module is
    imported, which must not fail: a value that is not a finite number of seconds from 0 up gives ``default``
    here, and ``gatehouse`` refuses it before it serves (gateway/cli.py, one line and exit status 1)."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        return default
    return seconds if 0 <= seconds < math.inf else default  # also refuses nan


# Upstream metadata (SAML MetadataURL, OIDC discovery) is read again this often: Cognito's guide ("Adding SAML
# identity providers to a user pool") recommends MetadataURL so that the metadata is refreshed automatically,
# every 6 hours or before it expires. A fetch that fails or returns unusable metadata keeps the old metadata.
METADATA_REFRESH_SECONDS = seconds_setting("GATEHOUSE_METADATA_REFRESH_SECONDS", 6 * 3600.0)
# A response that does not verify with the known keys (the IdP may have rolled its certificate) makes the
# metadata be read again at once -- but at most this often per provider and process, so that forged responses
# cannot make Gatehouse hammer the IdP.
METADATA_RETRY_SECONDS = seconds_setting("GATEHOUSE_METADATA_RETRY_SECONDS", 300.0)


class UpstreamError(Exception):
    """The upstream IdP's answer was refused (bad signature, wrong audience, replay, error response ...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ProviderConfigError(ValueError):
    """ProviderDetails that cannot work: a missing or malformed key. The message names the key."""


def _frozen(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(claims))


@dataclass(frozen=True)
class Identity:
    """Who the upstream IdP says signed in, normalised.

    ``subject`` is the upstream's stable id for the user (OIDC ``sub``, Facebook ``id``, Amazon ``user_id``,
    SAML NameID); ``issuer`` is the OIDC issuer or SAML entity id (None for plain OAuth 2.0 providers).
    ``claims`` are the raw upstream claims (ID token, userinfo / profile, SAML attributes, multi-valued ones as
    lists) that AttributeMapping and group rules read.
    """

    provider: str
    provider_type: str
    issuer: str | None
    subject: str
    email: str | None = None
    email_verified: bool | None = None
    name: str | None = None
    groups: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    # Claims no signature covers (Sign in with Apple's first-login ``user`` form field): they may fill in a new
    # user's attributes, never change an existing user's -- anyone can post them again with any value.
    unsigned_claims: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.subject:
            raise UpstreamError("no_subject", "the upstream identity has no subject")
        if not isinstance(self.claims, MappingProxyType):
            object.__setattr__(self, "claims", _frozen(self.claims))


@dataclass(frozen=True)
class ConnectorContext:
    """What a connector may use: one shared HTTP client, an executor for blocking work (xmlsec1, RSA), a
    one-use marker against replays (the store's, so every process shares it), and our SAML SP's key pair."""

    http: aiohttp.ClientSession
    executor: Executor | None
    mark_once: Callable[[str, float], Awaitable[bool]]
    sp_entity_id: str = "urn:gatehouse:sp"
    sp_key_pem: str | None = None
    sp_cert_pem: str | None = None

    async def run_blocking(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func`` off the event loop (pysaml2's xmlsec1 subprocesses, signature checks)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)


class Connector(abc.ABC):
    """What every connector has: its name in the pool, its type, and its ProviderDetails."""

    provider_type: ClassVar[str]
    # The upstream claim Cognito maps to the user name ("username" in AttributeMapping).
    subject_claim: ClassVar[str] = "sub"

    def __init__(
        self, name: str, details: Mapping[str, str], context: ConnectorContext, *, wanted_claims: Sequence[str] = ()
    ) -> None:
        self.name = name
        self.details = dict(details)
        self.context = context
        # The upstream claims AttributeMapping reads (providers that list fields to fetch ask for these).
        self.wanted_claims = tuple(wanted_claims)

    @classmethod
    @abc.abstractmethod
    def complete_details(cls, details: Mapping[str, str]) -> dict[str, str]:
        """Check ProviderDetails as CreateIdentityProvider does and fill in the computed keys (authorize_url,
        token_url, ...) Cognito adds. Raises :class:`ProviderConfigError`."""

    # Keys whose values are secrets: sealed at rest; ``hidden`` ones are never described back.
    secret_keys: ClassVar[frozenset[str]] = frozenset({"client_secret"})
    hidden_keys: ClassVar[frozenset[str]] = frozenset()


class RedirectConnector(Connector):
    """OAuth 2.0 / OpenID Connect: the browser goes to ``authorization_url`` and comes back with a code."""

    # "query" or "form_post" (OAuth 2.0 Form Post Response Mode): how the callback carries its parameters.
    response_mode: ClassVar[Literal["query", "form_post"]] = "query"

    @abc.abstractmethod
    async def authorization_url(self, *, state: str, nonce: str, code_challenge: str, redirect_uri: str) -> str:
        """The upstream authorization request (RFC 6749 §4.1.1, PKCE S256 per RFC 7636 §4.3, OIDC ``nonce``)."""

    @abc.abstractmethod
    async def complete(
        self, params: Mapping[str, str], *, nonce: str, code_verifier: str, redirect_uri: str
    ) -> Identity:
        """Handle the callback's parameters (the state was checked by the caller): exchange the code, verify
        what comes back, return the identity. Raises :class:`UpstreamError`."""


@dataclass(frozen=True)
class SamlRequest:
    """An AuthnRequest ready to send: with the HTTP-Redirect binding ``url`` carries it; with HTTP-POST the
    browser posts ``form`` to ``url``."""

    request_id: str
    binding: Literal["redirect", "post"]
    url: str
    form: Mapping[str, str] = field(default_factory=dict)


class SamlConnector(Connector):
    """SAML 2.0 Web Browser SSO, SP side."""

    subject_claim: ClassVar[str] = "NameID"
    secret_keys: ClassVar[frozenset[str]] = frozenset()

    @abc.abstractmethod
    async def authn_request(self, *, relay_state: str, acs_url: str, force_authn: bool = False) -> SamlRequest:
        """A (signed, when so configured) AuthnRequest for the IdP's SSO service; ``force_authn``: with
        ``ForceAuthn="true"`` (SAML Core §3.4.1: the IdP must authenticate the user anew)."""

    @abc.abstractmethod
    async def complete(self, saml_response: str, *, expected_request_id: str | None, acs_url: str) -> Identity:
        """Verify a ``SAMLResponse`` (signature, Destination, Audience, Recipient, InResponseTo, conditions,
        replay) and return its identity. ``expected_request_id`` is None only for IdP-initiated sign-in, which
        the caller allows only when IDPInit is on. Raises :class:`UpstreamError`."""

    @abc.abstractmethod
    async def sp_metadata(self, *, acs_url: str) -> str:
        """Our SP metadata for this provider, to register at the IdP."""
