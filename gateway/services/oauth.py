"""The OAuth 2.0 authorization server and OpenID Provider behind ``/oauth2/*``, ``/logout`` and the hosted UI.

Modelled on Cognito's user pool endpoints (authorize, token, userInfo, revoke, logout) and held to RFC 6749
(OAuth 2.0), RFC 7636 (PKCE: S256 only), RFC 7009 (revocation), RFC 9207 (``iss`` in every authorization
response), RFC 9700 (security BCP: exact redirect URIs, single-use codes whose replay revokes what they
issued, PKCE for public clients) and OpenID Connect Core 1.0 (nonce, at_hash, auth_time, prompt, userinfo).

The small interface the hosted UI and the federation broker use:

* :meth:`OAuthService.start_authorization` checks an authorization request and stores it (a single-use
  :class:`AuthorizationRequest`, found again with :meth:`OAuthService.load_request` by its id);
* :meth:`OAuthService.issue_authorization_code` (request, user, auth_time, amr) -> the redirect URL that
  carries the code (or, for a client that enabled the implicit flow, the tokens) back to the client;
* :meth:`OAuthService.error_redirect` (request, error) -> the redirect URL carrying an OAuth error;
* :meth:`OAuthService.start_sso` / :meth:`OAuthService.sso_session` / :meth:`OAuthService.end_sso`: the
  hosted UI's single sign-on session, so a second client of the pool signs in without a password.

Stored records (``Store.put_oauth_record``): kind ``authorize`` (the request, keyed by the SHA-256 of its
id) and ``sso`` (keyed by the SHA-256 of the cookie); ``grant`` records (the scopes behind a token family)
are only read, for families started before the family kept its scopes itself.

Authorization codes are not stored: a code is its authorization request's bindings sealed with AES-256-GCM
(:meth:`OAuthService._seal_code`), so issuing one writes nothing. A code names the token family its
redemption starts, and starting that family (``Store.start_code_family``) is what uses the code up: the
family's key is the single-use marker, across every worker process. A failed redemption burns a code with a
used-code marker (``Store.burn_code``), which a later redemption finds.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import parse_qsl, quote_plus, unquote_plus, urlsplit, urlunsplit

import orjson
import structlog

from gateway.errors import (
    AuthorizationPageError,
    GatehouseError,
    InvalidClientError,
    InvalidGrantError,
    InvalidParameterException,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTokenError,
    NotAuthorizedException,
    OAuthError,
    RequestNotSupportedError,
    RequestUriNotSupportedError,
    ResourceNotFoundException,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    UnsupportedResponseTypeError,
    UnsupportedTokenTypeException,
)
from gateway.ids import new_jti, new_opaque_token, sha256_hex
from gateway.secretbox import SecretBox, SecretBoxError
from gateway.services.auth import AuthContext, AuthService
from gateway.services.cimd import (
    CIMD_SETTING,
    CimdService,
    ClientMetadataError,
    app_client_id,
    is_metadata_url,
    log_url,
)
from gateway.services.federation import federated_provider
from gateway.services.live_scopes import has_custom, live_scopes
from gateway.services.pools import CLIENT_TOKEN_FLOW, ClientView, PoolService, PoolView
from gateway.services.short_cache import ShortCache
from gateway.services.token_exchange import GRANT_TYPE as EXCHANGE_GRANT_TYPE
from gateway.services.token_exchange import (
    TOKEN_TYPE_URNS,
    TOKEN_TYPES_BY_URN,
    ExchangeRequest,
    TokenExchangeService,
)
from gateway.services.tokens import (
    ADMIN_SCOPE,
    MAX_TOKEN_CHARS,
    IssuedTokens,
    TokenService,
    address_claim,
    b64url_decode,
    sign_jwt,
)
from gateway.services.triggers import TOKEN_GENERATION_CLIENT_CREDENTIALS, TOKEN_GENERATION_HOSTED, user_attributes
from gateway.storage.base import (
    GroupRecord,
    NotFound,
    OAuthRecord,
    RefreshTokenRecord,
    Store,
    TokenFamilyRecord,
    UsedCodeRecord,
    UserRecord,
)
from gateway.uris import iri_to_uri

log = structlog.get_logger("gateway.oauth")

REQUEST_KIND = "authorize"
# How long a process believes a stored authorization request is still there without reading the store again.
LIVE_REQUEST_SECONDS = 1.0
CODE_AAD = b"gatehouse authorization code"
# A sealed code is ~570 characters; its nonce (up to 2,048) and scopes are in it, so the longest are ~6,000.
MAX_CODE_LENGTH = 12_000
# The longest state an authorization request may carry, in UTF-8 bytes: Cognito documents none; this one keeps
# every redirect that echoes it (percent-encoded, at most three times as long) within what proxies pass.
MAX_STATE_BYTES = 2048
SSO_KIND = "sso"
GRANT_KIND = "grant"

STANDARD_SCOPES = ("openid", "email", "phone", "profile", ADMIN_SCOPE)
# How long a browser may take to sign in after /oauth2/authorize (the hosted pages carry the request's id).
REQUEST_SECONDS = 3600
# Cognito's managed login session cookie lasts one hour.
SSO_SECONDS = 3600
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) is 43 characters; §4.1: a verifier is 43-128 unreserved chars.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
_PROMPTS = {"none", "login", "consent", "select_account"}
# OpenID Connect Core §5.4: the claims each standard scope asks for.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "profile": (
        "name",
        "family_name",
        "given_name",
        "middle_name",
        "nickname",
        "preferred_username",
        "profile",
        "picture",
        "website",
        "gender",
        "birthdate",
        "zoneinfo",
        "locale",
        "updated_at",
        "address",
    ),
}


# The scopes that narrow what userInfo answers; a token with none of them gets every readable attribute.
_CLAIM_SCOPES = frozenset(SCOPE_CLAIMS)


def releases_claim(scopes: Sequence[str], claim: str) -> bool:
    """Whether userInfo answers ``claim`` (a readable attribute) to an access token with ``scopes``, as Cognito
    documents its userInfo endpoint: ``openid`` without email, phone or profile releases every attribute the
    app client can read; otherwise each of those scopes releases its claims (OpenID Connect Core §5.4) and
    ``profile`` custom attributes too. The reserved ``aws.cognito.signin.user.admin`` scope adds nothing."""
    granted = _CLAIM_SCOPES.intersection(scopes)
    if not granted:
        return True
    if claim.startswith("custom:"):
        return "profile" in granted
    return any(claim in SCOPE_CLAIMS[scope] for scope in granted)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request (RFC 6749 §4.1.1), stored until a user signs in for it."""

    id: str
    pool_id: str
    client_id: str
    redirect_uri: str
    response_type: str
    scopes: tuple[str, ...]
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    identity_provider: str | None = None
    idp_identifier: str | None = None
    login_hint: str | None = None
    created_at: float = field(default_factory=time.time)
    # OAuth 2.0 Multiple Response Type Encoding Practices §2.1: "query" or "fragment" when the client asked.
    response_mode: str | None = None
    # No redirect_uri was sent: ``redirect_uri`` is the client's DefaultRedirectURI, and the token request need
    # not name it (RFC 6749 §4.1.3). False for a request stored before this was kept: it must then.
    default_redirect: bool = False

    @property
    def fragment(self) -> bool:
        """Implicit-flow responses travel in the fragment (RFC 6749 §4.2.2), and any response whose client
        asked for ``response_mode=fragment``."""
        return self.response_type == "token" or self.response_mode == "fragment"

    def to_data(self) -> dict[str, Any]:
        return {
            "redirect_uri": self.redirect_uri,
            "response_type": self.response_type,
            "scopes": list(self.scopes),
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "code_challenge_method": self.code_challenge_method,
            "prompt": list(self.prompt),
            "max_age": self.max_age,
            "identity_provider": self.identity_provider,
            "idp_identifier": self.idp_identifier,
            "login_hint": self.login_hint,
            "created_at": self.created_at,
            "response_mode": self.response_mode,
            "default_redirect": self.default_redirect,
        }

    @classmethod
    def from_record(cls, request_id: str, record: OAuthRecord) -> AuthorizationRequest:
        d = record.data
        return cls(
            id=request_id,
            pool_id=record.pool_id,
            client_id=record.client_id,
            redirect_uri=str(d["redirect_uri"]),
            response_type=str(d["response_type"]),
            scopes=tuple(d["scopes"]),
            state=d.get("state"),
            nonce=d.get("nonce"),
            code_challenge=d.get("code_challenge"),
            code_challenge_method=d.get("code_challenge_method"),
            prompt=tuple(d.get("prompt") or ()),
            max_age=d.get("max_age"),
            identity_provider=d.get("identity_provider"),
            idp_identifier=d.get("idp_identifier"),
            login_hint=d.get("login_hint"),
            created_at=float(d.get("created_at") or 0),
            response_mode=d.get("response_mode"),
            default_redirect=bool(d.get("default_redirect")),
        )


@dataclass(frozen=True)
class SsoSession:
    """Who is signed in to the hosted UI of a pool in this browser."""

    pool_id: str
    user: UserRecord
    auth_time: int
    amr: tuple[str, ...]
    # For a federated sign-in that single logout may end upstream: the provider and whom it named (SAML's
    # NameID and SessionIndex), as kept by start_sso.
    upstream: dict[str, Any] | None = None
    # Who signed the user in: "COGNITO" (the hosted pages) or the identity provider's name; None for a
    # session started before this was kept.
    provider: str | None = None
    # The SHA-256 of the session's cookie (its record's key): the token sessions it starts name it as their
    # origin (gateway/services/sessions.py).
    key_hash: str | None = None


class AuthorizationRedirectError(Exception):
    """An OAuth error to send back to the client's (verified) redirect URI."""

    def __init__(self, request: AuthorizationRequest, error: GatehouseError) -> None:
        super().__init__(error.message)
        self.request = request
        self.error = error


def add_parameters(uri: str, parameters: Mapping[str, str | None], *, fragment: bool = False) -> str:
    """``uri`` with ``parameters`` added to its query (kept as registered, RFC 6749 §3.1.2) or fragment.

    The same URL as ``urlunsplit`` builds from ``urlsplit(uri)`` with the query (or fragment) ``urlencode``d:
    the registered URI is split once (see :func:`_split_uri`) and a value needing no escape is not escaped."""
    values = [(k, v) for k, v in parameters.items() if v is not None]
    base, pairs, query, old_fragment = _split_uri(uri)
    if fragment:
        tail = _urlencode(values)
        return base + ("?" + query if query else "") + ("#" + tail if tail else "")
    encoded = _urlencode([*pairs, *values] if pairs else values)
    return base + ("?" + encoded if encoded else "") + ("#" + old_fragment if old_fragment else "")


@functools.lru_cache(maxsize=256)
def _split_uri(uri: str) -> tuple[str, tuple[tuple[str, str], ...], str, str]:
    """A redirect URI (a registered one: few per client) as :func:`add_parameters` extends it: everything before
    its query, its query's pairs and text, and its fragment."""
    parts = urlsplit(uri)
    # A registered URI may be an IRI (Cognito's pattern admits any letter): the Location carries it as a URI.
    base = iri_to_uri(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
    query, fragment = iri_to_uri(parts.query), iri_to_uri(parts.fragment)
    return base, tuple(parse_qsl(parts.query, keep_blank_values=True)), query, fragment


# What quote_plus leaves as it is (RFC 3986 §2.3's unreserved characters).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _escape(text: str) -> str:
    return text if _UNRESERVED.fullmatch(text) else quote_plus(text)


def _urlencode(pairs: Sequence[tuple[str, str]]) -> str:
    """``urlencode(pairs)`` (application/x-www-form-urlencoded) for text pairs; a code, a token or a key that
    needs no escape (most do not) is not run through ``quote_plus``."""
    return "&".join(f"{_escape(k)}={_escape(v)}" for k, v in pairs)


def s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def _basic_client_id(header: str | None) -> str:
    """The client id an Authorization: Basic header names, for the log ("" when it names none)."""
    try:
        credentials = parse_basic_credentials(header)
    except InvalidClientError:
        return ""
    return credentials[0] if credentials is not None else ""


def parse_basic_credentials(header: str | None) -> tuple[str, str] | None:
    """client_secret_basic (RFC 6749 §2.3.1): id and secret, each form-urlencoded, in HTTP Basic."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidClientError("Malformed Basic credentials.") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClientError("Malformed Basic credentials.")
    return unquote_plus(client_id), unquote_plus(secret)


class OAuthService:
    """The authorization server of every pool."""

    def __init__(
        self,
        store: Store,
        pools: PoolService,
        auth: AuthService,
        tokens: TokenService,
        *,
        code_seconds: float = 300.0,
        code_key: bytes | None = None,
        cimd: CimdService | None = None,
    ) -> None:
        self.store = store
        # External clients whose client_id is an https URL (client ID metadata documents).
        self.cimd = cimd
        self.pools = pools
        self.auth = auth
        self.tokens = tokens
        # RFC 8693 token exchange: the token-exchange grant here, GetDerivedToken on the API.
        self.exchange = TokenExchangeService(store, pools, auth, tokens)
        self.code_seconds = code_seconds
        # Seals authorization codes; every worker process derives the same key from the data directory's.
        # Without one (a throwaway test service) codes are good only in this process.
        self._code_box = SecretBox(code_key or SecretBox.generate_key())
        # Stored authorization requests this process has seen in the store, by id: their expiry, for a
        # second (see load_request). Dropped here when this process uses one up.
        self._live_requests: ShortCache[str, float] = ShortCache(LIVE_REQUEST_SECONDS)

    # --- clients -----------------------------------------------------------------------------------------

    async def client(self, client_id: str | None, *, pool_id: str | None = None) -> tuple[PoolView, ClientView]:
        """The client an authorization request or a hosted page names; a page error when unknown, or when
        the request came in through another pool's domain or path. An https URL names a client ID metadata
        document client (gateway/services/cimd.py): admitted only by a CIMD policy of the pool."""
        if client_id and is_metadata_url(client_id) and self.cimd is not None:
            try:
                view = await self.cimd.client_view(client_id, pool_id)
                return await self.pools.get_pool(view.pool_id), view
            except ClientMetadataError as exc:
                log.warning("oauth.cimd_refused", pool=pool_id, client=log_url(client_id), reason=exc.message)
                raise AuthorizationPageError(f"{exc.public} ({exc.oauth_error})") from exc
            except ResourceNotFoundException as exc:
                raise AuthorizationPageError("The client_id is not known. (invalid_client)") from exc
        if not client_id or len(client_id) > 128:
            raise AuthorizationPageError("The request is missing a valid client_id.")
        try:
            client = await self.pools.find_client(client_id)
            pool = await self.pools.get_pool(client.pool_id)
        except ResourceNotFoundException as exc:
            raise AuthorizationPageError("The client_id is not known.") from exc
        if pool_id is not None and pool.id != pool_id:
            raise AuthorizationPageError("The client_id is not a client of this user pool.")
        return pool, client

    @staticmethod
    def allowed_scopes(client: ClientView) -> list[str]:
        return list(client.settings.get("AllowedOAuthScopes") or [])

    @classmethod
    def still_granted(cls, client: ClientView, scopes: Sequence[str]) -> tuple[str, ...]:
        """The scopes of an earlier request or code that the client is still allowed: UpdateUserPoolClient may
        have taken some away since, and a token issued now must not carry them (RFC 6749 §3.3 lets the
        server grant less than was asked). email, phone and profile need openid, as at the authorize
        endpoint."""
        allowed = set(cls.allowed_scopes(client))
        kept = [s for s in scopes if s in allowed]
        if "openid" not in kept:
            kept = [s for s in kept if s not in ("email", "phone", "profile")]
        return tuple(kept)

    @staticmethod
    def allowed_flows(client: ClientView) -> list[str]:
        if not client.settings.get("AllowedOAuthFlowsUserPoolClient"):
            return []
        return list(client.settings.get("AllowedOAuthFlows") or [])

    # --- the authorization endpoint ------------------------------------------------------------------------

    async def start_authorization(
        self,
        query: Mapping[str, str],
        *,
        repeated: Sequence[str] = (),
        pool_id: str | None = None,
        save: bool = True,
    ) -> AuthorizationRequest:
        """Check an authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1) and store it.

        Until the client and its redirect URI are proven the answer is an :class:`AuthorizationPageError`
        (never a redirect); after that, an :class:`AuthorizationRedirectError`. ``repeated`` names the
        parameters that came more than once. ``save=False`` checks only: the caller answers the request at
        once (a live single sign-on session) or stores it with :meth:`save_request` when a page needs it."""
        pool, client = await self.client(query.get("client_id"), pool_id=pool_id)
        redirect_uri = query.get("redirect_uri") or ""
        callbacks = list(client.settings.get("CallbackURLs") or [])
        if "redirect_uri" in repeated or "client_id" in repeated:
            raise AuthorizationPageError("The client_id and redirect_uri parameters may be given only once.")
        default_redirect = not redirect_uri
        if default_redirect:
            default = client.settings.get("DefaultRedirectURI")
            if not default:
                raise AuthorizationPageError("The request is missing redirect_uri.")
            redirect_uri = str(default)
        # Exact string comparison (RFC 9700 §4.1.3): no prefix, case or path games.
        if redirect_uri not in callbacks:
            raise AuthorizationPageError("The redirect_uri is not registered for this client.")
        response_type = query.get("response_type") or ""
        state = query.get("state")
        if state is not None and len(state.encode("utf-8", "surrogatepass")) > MAX_STATE_BYTES:
            # Every answer carries the state back (RFC 6749 §4.1.2, §4.1.2.1), in a Location that browsers and
            # proxies refuse past a few kilobytes: a request whose state cannot come back is refused here, on
            # a page, and never redirected (a POSTed state could otherwise fill megabytes of a header).
            raise AuthorizationPageError(f"The state parameter is too long (at most {MAX_STATE_BYTES} bytes).")
        # Discovery's response_modes_supported: query and fragment are honoured (an error too goes back the
        # way asked for); another mode (form_post) is ignored, as Cognito ignores it.
        response_mode = query.get("response_mode") if query.get("response_mode") in ("query", "fragment") else None

        def refuse(error: GatehouseError) -> AuthorizationRedirectError:
            # What the error redirect needs of the request (made only for a refusal).
            request = AuthorizationRequest(
                id=new_opaque_token(24),
                pool_id=pool.id,
                client_id=client.id,
                redirect_uri=redirect_uri,
                response_type=response_type,
                scopes=(),
                state=state,
                # Tokens are never put in a query, not even a refusal meant for the implicit flow.
                response_mode=response_mode if response_type != "token" else None,
            )
            return AuthorizationRedirectError(request, error)

        if repeated:
            raise refuse(InvalidRequestError(f"Parameter {repeated[0]} was given more than once."))
        # OpenID Connect Core §6.1, §6.2: request objects are not supported (as discovery says), and one sent
        # is refused rather than ignored, for the client may rely on what it asks for there.
        if "request" in query:
            raise refuse(RequestNotSupportedError("The request parameter is not supported."))
        if "request_uri" in query:
            raise refuse(RequestUriNotSupportedError("The request_uri parameter is not supported."))
        flows = self.allowed_flows(client)
        if not response_type:
            raise refuse(InvalidRequestError("response_type is required."))
        if response_type not in ("code", "token"):
            raise refuse(UnsupportedResponseTypeError(f"Unsupported response_type: {response_type}"))
        if response_type == "token" and response_mode == "query":
            # Multiple Response Type Encoding Practices §2.1: tokens never travel in the query (they would leak
            # through logs and Referer).
            raise refuse(InvalidRequestError("response_mode=query cannot be used with response_type=token."))
        needed = "code" if response_type == "code" else "implicit"
        if needed not in flows:
            raise refuse(UnauthorizedClientError(f"The client is not allowed the {needed} flow."))
        allowed = self.allowed_scopes(client)
        if query.get("scope") is None:
            scopes = [s for s in allowed if s in STANDARD_SCOPES or "/" in s]
        else:
            requested = list(dict.fromkeys(query["scope"].split()))
            scopes = [s for s in requested if s in allowed]
        # A scope of a resource server deleted (or cut from its list) since the client was allowed it.
        scopes = await live_scopes(self.pools, pool.id, scopes)
        if not scopes:
            raise refuse(InvalidScopeError("None of the requested scopes is allowed for this client."))
        if any(s in scopes for s in ("email", "phone", "profile")) and "openid" not in scopes:
            # Cognito: the email, phone and profile scopes need openid.
            scopes = [s for s in scopes if s not in ("email", "phone", "profile")]
            if not scopes:
                raise refuse(InvalidScopeError("The email, phone and profile scopes need the openid scope."))
        challenge = query.get("code_challenge")
        method = query.get("code_challenge_method")
        if response_type == "code":
            if method is not None and method != "S256":
                raise refuse(InvalidRequestError("code_challenge_method must be S256."))
            if challenge is not None:
                if method is None:
                    # RFC 7636 §4.3 would default to "plain", which is refused (RFC 9700 §2.1.1).
                    raise refuse(InvalidRequestError("code_challenge_method must be S256."))
                if not _S256_CHALLENGE.fullmatch(challenge):
                    raise refuse(InvalidRequestError("code_challenge is not a valid S256 challenge."))
            elif method is not None:
                raise refuse(InvalidRequestError("code_challenge is required with code_challenge_method."))
            elif client.secret is None:
                raise refuse(InvalidRequestError("PKCE (code_challenge with S256) is required for public clients."))
        prompt = tuple((query.get("prompt") or "").split())
        if any(p not in _PROMPTS for p in prompt) or ("none" in prompt and len(prompt) > 1):
            raise refuse(InvalidRequestError("Unsupported prompt value."))
        max_age: int | None = None
        if query.get("max_age") is not None:
            text = query["max_age"]
            if not (text.isascii() and text.isdigit() and len(text) <= 9):
                raise refuse(InvalidRequestError("max_age must be a whole number of seconds."))
            max_age = int(text)
        nonce = query.get("nonce")
        for name, value in (("nonce", nonce), ("login_hint", query.get("login_hint"))):
            if value is not None and len(value) > 2048:
                raise refuse(InvalidRequestError(f"{name} is too long."))
        provider = query.get("identity_provider")
        idp_identifier = query.get("idp_identifier")
        if (provider and provider != "COGNITO") or idp_identifier:
            # Federation: the endpoint sends the browser to this upstream IdP, and its callback
            # (/oauth2/idpresponse, /saml2/idpresponse) finishes with issue_authorization_code.
            try:
                provider = await federated_provider(self.store, pool.id, client.settings, provider, idp_identifier)
            except GatehouseError as exc:
                raise refuse(InvalidRequestError(exc.message)) from exc
        request = AuthorizationRequest(
            id=new_opaque_token(24),
            pool_id=pool.id,
            client_id=client.id,
            redirect_uri=redirect_uri,
            response_type=response_type,
            scopes=tuple(scopes),
            state=state,
            nonce=nonce,
            code_challenge=challenge,
            code_challenge_method=method,
            prompt=prompt,
            max_age=max_age,
            identity_provider=provider,
            idp_identifier=idp_identifier,
            login_hint=query.get("login_hint"),
            response_mode=response_mode,
            default_redirect=default_redirect,
        )
        if save:
            await self.save_request(request)
        return request

    async def save_request(self, request: AuthorizationRequest) -> None:
        """Store a checked request for the pages that answer it later (single use, REQUEST_SECONDS)."""
        await self.store.put_oauth_record(
            OAuthRecord(
                kind=REQUEST_KIND,
                key_hash=sha256_hex(request.id),
                pool_id=request.pool_id,
                client_id=request.client_id,
                username_key="",
                data=request.to_data(),
                expires_at=time.time() + REQUEST_SECONDS,
            )
        )

    async def load_request(
        self, request_id: str | None, *, known: AuthorizationRequest | None = None
    ) -> AuthorizationRequest:
        """The stored authorization request a hosted page carries; a page error when it is gone.

        ``known``: the request as the caller read it before (the hosted sign-in page's GET). A stored request
        never changes, so when it is the one asked for, only whether it is still stored and unexpired is
        checked -- and a store read that found it is believed for LIVE_REQUEST_SECONDS: a request used up in
        this process is forgotten at once, one used up by another worker may still show its form for up to
        that second, whose POST then fails (using a request up is what counts, in :meth:`issue_authorization_code`)."""
        if not request_id or len(request_id) > 128:
            raise AuthorizationPageError("This sign-in page has expired. Go back to the application and try again.")
        if known is not None and known.id == request_id:
            expires_at = self._live_requests.get(request_id)
            if expires_at is None:
                expires_at = await self.store.oauth_record_expiry(REQUEST_KIND, sha256_hex(request_id))
                if expires_at is not None:
                    self._live_requests.put(request_id, expires_at)
            if expires_at is None or expires_at <= time.time():
                raise AuthorizationPageError("This sign-in page has expired. Go back to the application and try again.")
            return known
        record = await self.store.get_oauth_record(REQUEST_KIND, sha256_hex(request_id))
        if record is None or record.expires_at <= time.time():
            raise AuthorizationPageError("This sign-in page has expired. Go back to the application and try again.")
        return AuthorizationRequest.from_record(request_id, record)

    async def _still_allowed(self, request: AuthorizationRequest, provider: str) -> tuple[str, ...]:
        """A stored request is answered only while its client still registers its redirect URI and allows its
        flow (RFC 6749 §3.1.2.2, §4.1.2.1; RFC 9700 §4.1) and the way the user signed in (``provider``: an
        identity provider's name, or COGNITO for the hosted pages): it may have been made up to
        REQUEST_SECONDS ago, and a callback URL removed since must receive nothing, as a provider taken out
        of SupportedIdentityProviders signs no one in to the client. A page error, never a redirect. Answers
        the request's scopes that the client is still allowed (:meth:`still_granted`)."""
        _, client = await self.client(request.client_id, pool_id=request.pool_id)
        supported = client.settings.get("SupportedIdentityProviders")
        if provider not in (supported if supported is not None else ["COGNITO"]):
            raise AuthorizationPageError(f"The client no longer supports signing in with {provider}.")
        if request.redirect_uri not in (client.settings.get("CallbackURLs") or []):
            raise AuthorizationPageError("The redirect_uri is no longer registered for this client.")
        needed = "code" if request.response_type == "code" else "implicit"
        if needed not in self.allowed_flows(client):
            raise AuthorizationPageError(f"The client is no longer allowed the {needed} flow.")
        scopes = self.still_granted(client, request.scopes)
        if not scopes:
            raise AuthorizationPageError("The client is no longer allowed any of the requested scopes.")
        return scopes

    async def discard_request(self, request: AuthorizationRequest) -> None:
        """Drop a request that was answered without a code (an error sent back to the client)."""
        self._live_requests.drop(request.id)
        await self.store.take_oauth_record(REQUEST_KIND, sha256_hex(request.id))

    def issuer(self, pool_id: str) -> str:
        return self.tokens.issuer(pool_id)

    def error_redirect(self, request: AuthorizationRequest, error: GatehouseError) -> str:
        """The redirect carrying an OAuth error to the client (RFC 6749 §4.1.2.1), with ``iss`` (RFC 9207)."""
        return add_parameters(
            request.redirect_uri,
            {
                "error": error.oauth_error,
                "error_description": error_description(error.message),
                "state": request.state,
                "iss": self.issuer(request.pool_id),
            },
            fragment=request.fragment,
        )

    def needs_login(self, request: AuthorizationRequest, session: SsoSession | None) -> bool:
        """Whether the user must sign in again for this request despite (or for want of) a session."""
        if session is None or session.pool_id != request.pool_id or "login" in request.prompt:
            return True
        return request.max_age is not None and session.auth_time + request.max_age < time.time()

    async def sso_reuse_allowed(self, request: AuthorizationRequest, session: SsoSession) -> bool:
        """Whether the request's client may silently reuse the session: its SSO MaxValidityMinutes
        (SetUserPoolClientSessionConfiguration; 60, the life of the session, unless set) since the user's last
        fresh sign-in, when the pool tracks sessions. 0: the client always signs the user in again."""
        sessions = self.auth.sessions
        if sessions is None:
            return True
        pool = await self.pools.get_pool(request.pool_id)
        client_id = request.client_id
        if is_metadata_url(client_id):
            # A metadata document client reuses sessions as its policy's app client may: an app client that
            # always signs users in again (0) must not lend silent sign-ins to every URL its policy admits.
            _, client = await self.client(client_id, pool_id=request.pool_id)
            client_id = app_client_id(client)
        minutes = sessions.client_sso_minutes(pool, client_id)
        return minutes > 0 and session.auth_time + minutes * 60 >= time.time()

    def hint_names_another_user(self, pool_id: str, hint: str | None, session: SsoSession) -> bool:
        """OpenID Connect Core §3.1.2.1 ``id_token_hint``: the client expects the user its ID token names, so
        a session of anyone else does not answer the request (``prompt=none``: login_required; otherwise the
        sign-in page). The hint only ever takes a silent sign-in away, never grants one, so its signature and
        expiry need no check (an expired ID token is the usual hint of a silent renewal); one that is not an
        ID token of this pool is no hint and is ignored."""
        if not hint or len(hint) > MAX_TOKEN_CHARS:
            return False
        subject = _hinted_subject(hint, self.issuer(pool_id))
        return subject is not None and not hmac.compare_digest(subject, session.user.sub)

    async def session_fits_client(self, request: AuthorizationRequest, session: SsoSession) -> bool:
        """Whether the session was signed in through a provider the request's client supports (its
        SupportedIdentityProviders; none listed: the hosted pages only, as the sign-in page offers): a session
        from the pool's own sign-in never signs in to a client that admits only an identity provider, nor one
        from a provider to a client that does not list it."""
        if session.provider is None:
            return True  # started before sessions kept their provider (they last SSO_SECONDS at most)
        _, client = await self.client(request.client_id, pool_id=request.pool_id)
        supported = client.settings.get("SupportedIdentityProviders")
        return session.provider in (supported if supported is not None else ["COGNITO"])

    async def issue_authorization_code(
        self,
        request: AuthorizationRequest,
        user: UserRecord,
        auth_time: int,
        amr: Sequence[str] = ("pwd",),
        *,
        stored: bool = True,
        provider: str = "COGNITO",
        sso_key: str | None = None,
    ) -> str:
        """Answer ``request`` for ``user``, signed in at ``auth_time`` by the methods ``amr`` (RFC 8176)
        through ``provider`` (an identity provider's name; COGNITO: the hosted pages): the redirect URL
        carrying a code (RFC 6749 §4.1.2) or, for the implicit flow, the tokens (§4.2.2).

        A stored request is used up here (single use), whoever calls first. ``stored=False``: the request
        was checked by this same call of the authorization endpoint and never stored, so there is nothing
        to use up (and no one else can hold its id). ``sso_key``: the hosted-UI session (its record's key) the
        sign-in is answered from, which the token session the code starts names as its origin."""
        scopes = tuple(request.scopes)
        if stored:
            scopes = await self._still_allowed(request, provider)
            self._live_requests.drop(request.id)
            record = await self.store.take_oauth_record(REQUEST_KIND, sha256_hex(request.id))
            if record is None or record.expires_at <= time.time():
                raise AuthorizationPageError("This sign-in page has expired. Go back to the application and try again.")
        iss = self.issuer(request.pool_id)
        if request.response_type == "token":
            pool, client = await self.client(request.client_id, pool_id=request.pool_id)
            tokens = await self._issue_user_tokens(
                pool, client, user, scopes=scopes, auth_time=auth_time, nonce=request.nonce, refresh=False
            )
            log.info("oauth.implicit_issued", pool=pool.id, client=client.id, username=user.username)
            return add_parameters(
                request.redirect_uri,
                {
                    "access_token": tokens.access_token,
                    "id_token": tokens.id_token if "openid" in scopes else None,
                    "token_type": "Bearer",
                    "expires_in": str(tokens.expires_in),
                    # RFC 6749 §4.2.2: REQUIRED where fewer scopes were granted than asked for; always given, as
                    # the token endpoint gives it (_token_response), so that a client never has to compare.
                    "scope": " ".join(scopes),
                    "state": request.state,
                    "iss": iss,
                },
                fragment=True,
            )
        code = self._seal_code(
            {
                "p": request.pool_id,
                "c": request.client_id,
                "u": user.username_key,
                "s": user.sub,
                # The redirect URI's hash: the token request must send the same URI, and the code stays short.
                "r": _uri_hash(request.redirect_uri),
                # Set only when the authorization request sent none (a code without it: one was sent).
                **({"rd": True} if request.default_redirect else {}),
                "sc": list(scopes),
                "n": request.nonce,
                "cc": request.code_challenge,
                "at": int(auth_time),
                "amr": list(amr),
                # The token family the redemption will start, named now so a replay can revoke it.
                "j": new_jti(),
                # The SSO session it came through (a token session's OriginSessionId).
                "o": sso_key,
                "e": time.time() + self.code_seconds,
            }
        )
        log.info("oauth.code_issued", pool=request.pool_id, client=request.client_id, username=user.username)
        return add_parameters(
            request.redirect_uri, {"code": code, "state": request.state, "iss": iss}, fragment=request.fragment
        )

    # --- single sign-on ----------------------------------------------------------------------------------

    async def start_sso(
        self,
        pool_id: str,
        user: UserRecord,
        auth_time: int,
        amr: Sequence[str],
        *,
        upstream: Mapping[str, Any] | None = None,
        provider: str = "COGNITO",
        client_id: str | None = None,
        user_agent: str | None = None,
        ip: str | None = None,
    ) -> str:
        """A new hosted-UI session for ``user``, signed in through ``provider`` (the hosted pages, or an
        identity provider's name); returns the cookie value (only its hash is kept). ``client_id``,
        ``user_agent``, ``ip``: the client the sign-in was for and where it came from, which the session's
        description reports (ListUserSessions) when the pool tracks sessions."""
        token = new_opaque_token(32)
        # The user's sub as well as the username: a user deleted and another created with the same username
        # is someone else, whom this session must not sign in.
        data: dict[str, Any] = {
            "auth_time": int(auth_time),
            "amr": list(amr),
            "created_at": time.time(),
            "sub": user.sub,
            "provider": provider,
        }
        if upstream:
            data["upstream"] = dict(upstream)
        if client_id:
            data["client_id"] = client_id
        sessions = self.auth.sessions
        if sessions is not None:
            pool = await self.pools.get_pool(pool_id)
            if sessions.tracking(pool):
                facts = sessions.facts(user_agent, ip)
                if facts.device_type:
                    data["device_type"] = facts.device_type
                if facts.ip:
                    data["ip"] = facts.ip
        await self.store.put_oauth_record(
            OAuthRecord(
                kind=SSO_KIND,
                key_hash=sha256_hex(token),
                pool_id=pool_id,
                client_id="",
                username_key=user.username_key,
                data=data,
                expires_at=time.time() + SSO_SECONDS,
            )
        )
        return token

    async def sso_session(self, pool_id: str, token: str | None) -> SsoSession | None:
        """The session behind a cookie, if it is live, of this pool, and its user may still sign in (not
        disabled, deleted, or signed out everywhere since)."""
        if not token or len(token) > 256:
            return None
        found = await self.store.get_oauth_record_with_user(SSO_KIND, sha256_hex(token))
        if found is None:
            return None
        record, user = found
        if record.pool_id != pool_id or record.expires_at <= time.time():
            return None
        # Federated users (EXTERNAL_PROVIDER) keep their hosted-UI session like the pool's own.
        if user is None or not user.enabled or user.status not in ("CONFIRMED", "EXTERNAL_PROVIDER"):
            return None
        # Sessions started before the sub was kept have none (they last SSO_SECONDS at most).
        if record.data.get("sub", user.sub) != user.sub:
            return None
        if user.tokens_valid_after and float(record.data.get("created_at", 0)) < user.tokens_valid_after:
            return None
        upstream = record.data.get("upstream")
        return SsoSession(
            pool_id,
            user,
            int(record.data["auth_time"]),
            tuple(record.data.get("amr") or ()),
            upstream=dict(upstream) if isinstance(upstream, dict) else None,
            provider=record.data.get("provider"),
            key_hash=record.key_hash,
        )

    async def end_sso(self, token: str | None) -> None:
        """End the hosted-UI session behind a cookie (the logout endpoint, a SAML IdP's single logout). The
        audit trail says so, as it said when the session began (``hosted_ui.signed_in``); a cookie that names
        no session ends nothing and logs nothing."""
        if token and len(token) <= 256:
            ended = await self.store.take_oauth_record(SSO_KIND, sha256_hex(token))
            if ended is not None:
                log.info("hosted_ui.signed_out", pool=ended.pool_id, sub=ended.data.get("sub"))

    # --- tokens ------------------------------------------------------------------------------------------

    async def _issue_user_tokens(
        self,
        pool: PoolView,
        client: ClientView,
        user: UserRecord,
        *,
        scopes: Sequence[str],
        auth_time: int,
        nonce: str | None,
        refresh: bool,
        family_id: str | None = None,
        family_stored: bool = False,
        groups: list[GroupRecord] | None = None,
    ) -> IssuedTokens:
        """Sign the tokens of a grant. ``family_stored``: the caller already stored the family ``family_id``
        with its scopes and refresh token (:meth:`_code_grant`), so only the signing is left. ``groups``: the
        user's groups when the caller read them with the user."""
        ctx = AuthContext(pool=pool, client=client, admin=False)
        group_names, roles, preferred = await self.auth.groups_and_roles(pool.id, user, groups)
        customization = None
        triggers = self.auth.triggers
        if triggers is not None and triggers.function(pool, "PreTokenGeneration") is not None:
            try:
                customization = await triggers.pre_token_generation(
                    pool,
                    TOKEN_GENERATION_HOSTED,
                    client_id=client.id,
                    username=user.username,
                    attributes=user_attributes(user.attributes, sub=user.sub, status=user.status),
                    groups=group_names,
                    roles=roles,
                    preferred_role=preferred,
                    scopes=scopes,
                )
            except GatehouseError:
                if family_stored and family_id is not None:
                    # The code's family and refresh token are stored, and no token of it reaches the client.
                    await self.store.revoke_token_family(family_id)
                raise
        id_claims = self.auth.id_claims(ctx, user)
        if nonce is not None:
            id_claims["nonce"] = nonce
        family = family_id or new_jti()
        refresh_seconds = client.token_seconds("RefreshToken") if refresh else None
        tokens = await self.tokens.issue(
            pool_id=pool.id,
            client_id=client.id,
            app_client_id=app_client_id(client),
            username=user.username,
            username_key=user.username_key,
            sub=user.sub,
            id_claims=id_claims,
            groups=group_names,
            roles=roles,
            preferred_role=preferred,
            auth_time=auth_time,
            access_seconds=client.token_seconds("AccessToken"),
            id_seconds=client.token_seconds("IdToken"),
            refresh_seconds=refresh_seconds,
            scopes=tuple(scopes),
            # With the family stored, issue() signs only (no second family, no refresh token of its own).
            origin_jti=family if family_stored else None,
            new_family_id=family,
            at_hash=True,
            family_scopes=scopes,
            customization=customization,
        )
        id_count, access_count, refresh_count = self.auth.metrics.token_counters(pool.id)
        access_count.inc()
        id_count.inc()
        if tokens.refresh_token:
            refresh_count.inc()
        return tokens

    async def authenticate_client(
        self, form: Mapping[str, str], authorization: str | None, *, pool_id: str | None = None
    ) -> tuple[PoolView, ClientView]:
        """Client authentication at the token and revocation endpoints (RFC 6749 §2.3): client_secret_basic
        or client_secret_post for confidential clients (never both), the client_id alone for public ones.
        ``pool_id``: the pool whose endpoint was called (its path or domain); another pool's client fails."""
        basic = parse_basic_credentials(authorization)
        if basic is not None and ("client_secret" in form):
            raise InvalidRequestError("Use one client authentication method only.")
        if basic is not None:
            client_id, secret = basic
            if form.get("client_id") and form["client_id"] != client_id:
                raise InvalidClientError("client_id does not match the client authentication.")
        else:
            client_id, secret = form.get("client_id") or "", form.get("client_secret") or ""
        if not client_id:
            raise InvalidClientError("Client authentication is required.")
        try:
            client = await self.find_client(client_id, pool_id)
            pool = await self.pools.get_pool(client.pool_id)
        except ResourceNotFoundException as exc:
            raise InvalidClientError("Client authentication failed.") from exc
        if pool_id is not None and pool.id != pool_id:
            raise InvalidClientError("Client authentication failed.")
        if client.secret is not None:
            # Any active secret (two during a rotation); a deleted one is no longer among them.
            if not client.secret_matches(secret):
                raise InvalidClientError("Client authentication failed.")
        elif secret:
            raise InvalidClientError("Client authentication failed.")
        return pool, client

    async def find_client(self, client_id: str, pool_id: str | None) -> ClientView:
        """The client a token-endpoint, revocation or token-bearing call names: an app client by its id, or a
        client ID metadata document client by its URL (ResourceNotFoundException when either is unknown or
        refused)."""
        if is_metadata_url(client_id) and self.cimd is not None:
            try:
                return await self.cimd.client_view(client_id, pool_id)
            except ClientMetadataError as exc:
                log.warning("oauth.cimd_refused", pool=pool_id, client=log_url(client_id), reason=exc.message)
                raise ResourceNotFoundException(exc.public) from exc
        return await self.pools.find_client(client_id)

    async def token(
        self,
        form: Mapping[str, str],
        authorization: str | None,
        *,
        pool_id: str | None = None,
        user_agent: str | None = None,
        source_ip: str | None = None,
    ) -> dict[str, Any]:
        """The token endpoint (RFC 6749 §3.2): the response body for one grant. ``pool_id``: the pool whose
        endpoint was called, when the path or domain names one; ``user_agent``, ``source_ip``: where the request
        came from (a user session's device and address)."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidRequestError("grant_type is required.")
        try:
            pool, client = await self.authenticate_client(form, authorization, pool_id=pool_id)
        except InvalidClientError as exc:
            # An authentication decision like any sign-in's: a guessed client secret leaves a trace.
            named = form.get("client_id") or _basic_client_id(authorization)
            log.info(
                "oauth.client_refused",
                pool=pool_id,
                client=log_url(named) if is_metadata_url(named) else named[:128],
                grant_type=grant_type[:64],
                reason=exc.message,
                source_ip=source_ip,
            )
            raise
        if grant_type == "authorization_code":
            return await self._code_grant(pool, client, form, user_agent, source_ip)
        if grant_type == "refresh_token":
            try:
                answer = await self._refresh_grant(pool, client, form, user_agent, source_ip)
            except OAuthError as exc:
                log.info("oauth.refresh_refused", pool=pool.id, client=client.id, error=exc.oauth_error,
                         reason=exc.message)  # fmt: skip
                raise
            log.info("oauth.refreshed", pool=pool.id, client=client.id, scope=answer.get("scope"))
            return answer
        if grant_type == "client_credentials":
            return await self._client_credentials_grant(pool, client, form)
        if grant_type == EXCHANGE_GRANT_TYPE:
            return await self._token_exchange_grant(pool, client, form)
        raise UnsupportedGrantTypeError(f"Unsupported grant_type: {grant_type}")

    async def _code_grant(
        self,
        pool: PoolView,
        client: ClientView,
        form: Mapping[str, str],
        user_agent: str | None = None,
        source_ip: str | None = None,
    ) -> dict[str, Any]:
        """RFC 6749 §4.1.3 with RFC 7636 §4.6. A code is redeemed once; redeeming it again revokes the
        tokens the first redemption issued (RFC 6749 §4.1.2, RFC 9700 §4.2.4); a wrong redirect_uri or
        code_verifier from the code's own client uses it up too (see :meth:`_burn_code`), a missing redirect_uri
        that the authorization request sent does not (invalid_request)."""
        if "code" not in self.allowed_flows(client):
            raise UnauthorizedClientError("The client is not allowed the code flow.")
        code = form.get("code")
        if not code or len(code) > MAX_CODE_LENGTH:
            raise InvalidRequestError("code is required.")
        data = self._open_code(code)
        if data is None or data["p"] != pool.id:
            raise InvalidGrantError("Invalid authorization code.")
        key = sha256_hex(code)
        expires_at = float(data["e"])
        # The token family the code's redemption starts (named when the code was issued).
        family = str(data["j"])
        # Each refusal first looks for the code's earlier use: a used code presented again, by anyone,
        # revokes what its redemption issued.
        if data["c"] != client.id:
            await self._refuse_code(
                pool, client, key, family, InvalidGrantError("The authorization code was issued to another client.")
            )
        if expires_at <= time.time():
            await self._refuse_code(pool, client, key, family, InvalidGrantError("The authorization code has expired."))
        if form.get("redirect_uri") is None and not data.get("rd"):
            # RFC 6749 §4.1.3: required, since the authorization request included it. A missing parameter is
            # invalid_request and does not use the code up: it guesses nothing (every binding is checked only
            # once redirect_uri is sent, and a wrong one burns the code).
            await self._refuse_code(
                pool,
                client,
                key,
                family,
                InvalidRequestError("redirect_uri is required: the authorization request included it."),
            )
        refusal = _binding_refusal(form, data)
        if refusal is not None:
            await self._burn_code(pool, client, key, family, expires_at, refusal)
        found = await self.store.get_user_with_groups(pool.id, str(data["u"]))
        user, groups = found if found is not None else (None, [])
        # A code handed out before the user was signed out everywhere, or had the password reset, belongs to a
        # sign-in that has been ended since (as the hosted UI's session is: see sso_session).
        ended = bool(
            user
            and (
                user.tokens_valid_after > expires_at - self.code_seconds
                or user.status not in ("CONFIRMED", "EXTERNAL_PROVIDER")
            )
        )
        if user is None or user.sub != data["s"] or not user.enabled or ended:
            await self._refuse_code(
                pool,
                client,
                key,
                family,
                InvalidGrantError("The user of the authorization code can no longer sign in."),
            )
        # A scope the client was allowed when the code was issued and is no longer grants nothing now.
        scopes = self.still_granted(client, data["sc"])
        if not scopes:
            await self._refuse_code(
                pool, client, key, family, InvalidGrantError("The client is no longer allowed the code's scopes.")
            )
        if has_custom(scopes):
            # A resource server deleted (or a scope it dropped) since the code was issued grants nothing now.
            scopes = tuple(await live_scopes(self.pools, pool.id, scopes))
        auth_time = int(data["at"])
        # The code is used up by starting the family its tokens belong to, in one transaction: the family's
        # key is the code's single-use marker, so a replay either wins the code (and this redemption fails)
        # or finds the family and revokes it.
        now = time.time()
        access_seconds = client.token_seconds("AccessToken")
        lifetime = max(access_seconds, client.token_seconds("IdToken"))
        refresh_token: str | None = None
        refresh: RefreshTokenRecord | None = None
        # RFC 6749 §5.1: a refresh token is OPTIONAL; a client that may not use the refresh grant gets none.
        # Its family is still started: it is the code's single-use marker, and what its access tokens'
        # revocation is checked against (GetUser, userInfo).
        if _refresh_grant_allowed(client):
            refresh_seconds = client.token_seconds("RefreshToken")
            lifetime = max(lifetime, refresh_seconds)
            refresh_token = new_opaque_token()
            refresh = RefreshTokenRecord(
                token_hash=sha256_hex(refresh_token),
                origin_jti=family,
                pool_id=pool.id,
                client_id=client.id,
                username_key=user.username_key,
                created_at=float(int(now)),
                expires_at=float(int(now) + refresh_seconds),
            )
        sessions = self.auth.sessions
        facts = None
        if sessions is not None and sessions.tracking(pool):
            # A new token session: where it came from (room is made for it once it exists, below).
            facts = sessions.facts(user_agent, source_ip)
        try:
            first = await self.store.start_code_family(
                key,
                TokenFamilyRecord(
                    origin_jti=family,
                    pool_id=pool.id,
                    client_id=client.id,
                    username_key=user.username_key,
                    auth_time=float(auth_time),
                    created_at=float(int(now)),
                    # Never purged while its code is still good: as the code's marker it must outlive the code.
                    expires_at=float(max(int(now) + lifetime, math.ceil(expires_at))),
                    scopes=list(scopes),
                    device_type=facts.device_type if facts else None,
                    last_ip=facts.ip if facts else None,
                    sso_key_hash=str(data["o"]) if data.get("o") else None,
                ),
                refresh,
                app_client_id=app_client_id(client),
            )
        except NotFound as exc:  # the client (or its pool) was deleted since it authenticated: no tokens
            raise InvalidClientError("The client no longer exists.") from exc
        if not first:
            await self._refuse_code(pool, client, key, family, InvalidGrantError("Invalid authorization code."))
        if sessions is not None and facts is not None:
            # Within MaxPerUser, the new session spared.
            await sessions.make_room(pool, user.username_key, family)
        tokens = await self._issue_user_tokens(
            pool,
            client,
            user,
            scopes=scopes,
            auth_time=auth_time,
            nonce=data["n"],
            refresh=refresh_token is not None,
            family_id=family,
            family_stored=True,
            groups=groups,
        )
        log.info("oauth.code_redeemed", pool=pool.id, client=client.id, username=user.username, origin_jti=family)
        # The refresh token stored with the family above, if any.
        return self._token_response(tokens, scopes, refresh_token)

    async def _burn_code(
        self, pool: PoolView, client: ClientView, key: str, family: str, expires_at: float, refusal: str
    ) -> NoReturn:
        """A redemption by the code's own client failed its bindings (redirect_uri, PKCE): the code is used
        up, so a stolen code cannot be tried again with guessed verifiers (RFC 9700 §2.1.1 and §4.8, OAuth 2.1
        §4.1.3). No tokens were issued for it, so there is nothing to revoke; a redemption that wins a race
        with this one keeps its tokens.

        Who can burn a code: only a caller that passed client authentication as the client the code was
        issued to (a confidential client's secret; a public client's id, which anyone holding the code can
        send, but anyone holding a public client's code could already race the client to redeem it, so
        burning gives a thief nothing new and takes away further guesses). Another client's attempt, even in
        the same pool, and an unknown pool never burn it (checked before this is reached), so no other
        application can deny the user's sign-in by presenting codes it should never have had."""
        # The marker goes in first: a redemption committed after it finds it and stores nothing, and one
        # committed before it left its family, which the check below finds (the code was used: a replay).
        marked = await self.store.burn_code(UsedCodeRecord(key, None, expires_at))
        if marked and await self.store.get_token_family(family) is None:
            log.warning("oauth.code_burned", pool=pool.id, client=client.id, reason=refusal)
            raise InvalidGrantError(refusal)
        await self._refuse_code(pool, client, key, family, InvalidGrantError(refusal))

    async def _refuse_code(
        self, pool: PoolView, client: ClientView, key: str, family: str, error: OAuthError
    ) -> NoReturn:
        """Refuse a token request for the code ``key`` (whose redemption starts the token family ``family``)
        with ``error``; but when the code was used before, the refusal says so and the token family its
        redemption started is revoked (RFC 9700 §4.2.4)."""
        origin: str | None = family
        if await self.store.get_token_family(family) is None:
            # Not redeemed by start_code_family; a marker says it was burnt (or, from an earlier release, redeemed).
            used = await self.store.get_used_code(key)
            if used is None:
                raise error
            origin = used.origin_jti
        revoked = await self.store.revoke_token_family(origin) if origin else False
        log.warning("oauth.code_replayed", pool=pool.id, client=client.id, revoked=revoked, origin_jti=origin)
        raise InvalidGrantError("The authorization code has already been used.")

    def _seal_code(self, payload: dict[str, Any]) -> str:
        """An authorization code that carries its own bindings, sealed (AES-256-GCM) so that only this server
        reads it and nobody can alter it; random, so no two codes are alike."""
        return self._code_box.seal(orjson.dumps(payload), aad=CODE_AAD)

    def _open_code(self, code: str) -> dict[str, Any] | None:
        """What :meth:`_seal_code` sealed, or None for anything else (tampered, foreign, garbage)."""
        try:
            data = orjson.loads(self._code_box.open(code, aad=CODE_AAD))
        except (SecretBoxError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def _token_response(
        tokens: IssuedTokens, scopes: Sequence[str] | None, refresh_token: str | None = None
    ) -> dict[str, Any]:
        """The token response (RFC 6749 §5.1); ``refresh_token`` when the caller made it rather than
        ``tokens``. ``scope`` names the scopes granted: REQUIRED where they differ from those asked for (RFC 6749
        §3.3: the server may grant fewer), and always given, so that a client never has to compare."""
        body: dict[str, Any] = {"access_token": tokens.access_token}
        if scopes is None or "openid" in scopes:
            body["id_token"] = tokens.id_token
        refresh_token = refresh_token or tokens.refresh_token
        if refresh_token:
            body["refresh_token"] = refresh_token
        body["token_type"] = "Bearer"
        body["expires_in"] = tokens.expires_in
        if scopes is not None:
            body["scope"] = " ".join(scopes)
        return body

    async def _refresh_grant(
        self,
        pool: PoolView,
        client: ClientView,
        form: Mapping[str, str],
        user_agent: str | None = None,
        source_ip: str | None = None,
    ) -> dict[str, Any]:
        """RFC 6749 §6 through the sign-in engine's refresh (rotation per the client's setting); the
        access token keeps the scopes of the original grant."""
        if not _refresh_grant_allowed(client):
            raise UnauthorizedClientError("The client is not allowed the refresh_token grant.")
        token = form.get("refresh_token")
        if not token:
            raise InvalidRequestError("refresh_token is required.")
        if len(token) > 4096:
            raise InvalidGrantError("Invalid refresh token.")
        stored = await self.store.get_refresh_token(sha256_hex(token))
        scopes: tuple[str, ...] | None = None
        if stored is not None:
            family = await self.store.get_token_family(stored.origin_jti)
            if family is not None and family.scopes is not None:
                scopes = tuple(family.scopes)
            else:
                # A family started before its scopes were kept with it has them in a grant record.
                grant = await self.store.get_oauth_record(GRANT_KIND, stored.origin_jti)
                if grant is not None:
                    scopes = tuple(grant.data.get("scopes") or ())
        if form.get("scope") is not None and scopes is not None:
            # RFC 6749 §6: a narrower scope may be asked for, never a wider one.
            asked = tuple(dict.fromkeys(form["scope"].split()))
            if not asked or any(s not in scopes for s in asked):
                raise InvalidScopeError("The requested scope exceeds the original grant.")
            if len(await live_scopes(self.pools, pool.id, asked)) != len(asked):
                raise InvalidScopeError("A requested scope's resource server no longer has it.")
            if "openid" not in asked:
                # As at the authorization endpoint: email, phone and profile come with openid only (an access
                # token with email alone would be refused by userInfo).
                asked = tuple(s for s in asked if s not in ("email", "phone", "profile"))
                if not asked:
                    raise InvalidScopeError("The email, phone and profile scopes need the openid scope.")
            scopes = asked
        ctx = AuthContext(pool=pool, client=client, admin=False, source_ip=source_ip, user_agent=user_agent)
        try:
            result = await self.auth.refresh_screened(ctx, token, scopes=scopes)
        except NotAuthorizedException as exc:
            raise InvalidGrantError(exc.message) from exc
        except GatehouseError as exc:
            if exc.oauth_error == "invalid_grant":
                raise InvalidGrantError(exc.message) from exc
            raise
        assert result.tokens is not None
        return self._token_response(result.tokens, scopes)

    async def _client_credentials_grant(
        self, pool: PoolView, client: ClientView, form: Mapping[str, str]
    ) -> dict[str, Any]:
        """RFC 6749 §4.4: an access token for the client itself, with resource-server scopes only."""
        if client.secret is None or "client_credentials" not in self.allowed_flows(client):
            raise UnauthorizedClientError("The client is not allowed the client_credentials flow.")
        custom = await self.client_token_scopes(pool, client)
        if form.get("scope") is None:
            scopes = custom
        else:
            asked = list(dict.fromkeys(form["scope"].split()))
            if any(s not in custom for s in asked):
                raise InvalidScopeError("A requested scope is not allowed for this client.")
            scopes = asked
        if not scopes:
            raise InvalidScopeError("The client has no scopes for the client_credentials flow.")
        metadata = _client_metadata(form.get("aws_client_metadata"))
        token, seconds = await self.issue_client_token(
            pool, client, scopes, via="oauth.client_credentials", client_metadata=metadata
        )
        # scope: the client's own when it asked for none (RFC 6749 §5.1: REQUIRED where it differs from the ask).
        return {"access_token": token, "token_type": "Bearer", "expires_in": seconds, "scope": " ".join(scopes)}

    async def _token_exchange_grant(
        self, pool: PoolView, client: ClientView, form: Mapping[str, str]
    ) -> dict[str, Any]:
        """RFC 8693 §2.1 on Cognito's token endpoint ("through the Token endpoint with a token-exchange grant"):
        the same exchange as GetDerivedToken (gateway/services/token_exchange.py), answered as §2.2.1 says."""
        subject_token = form.get("subject_token")
        subject_type = form.get("subject_token_type")
        if not subject_token or not subject_type:
            raise InvalidRequestError("subject_token and subject_token_type are required.")
        kinds = [subject_type, form.get("actor_token_type") or TOKEN_TYPE_URNS["ACCESS_TOKEN"]]
        requested = form.get("requested_token_type") or TOKEN_TYPE_URNS["ACCESS_TOKEN"]
        for urn in (*kinds, requested):
            if urn not in TOKEN_TYPES_BY_URN:
                raise InvalidRequestError(f"Unsupported token type: {urn}")
        if TOKEN_TYPES_BY_URN[requested] == "SAML2":
            raise InvalidRequestError("Unsupported requested_token_type: a SAML assertion cannot be issued.")
        actor_type = form.get("actor_token_type")
        scope = form.get("scope")
        derived = await self.exchange.exchange(
            pool,
            client,
            ExchangeRequest(
                subject_token=subject_token,
                subject_token_type=TOKEN_TYPES_BY_URN[subject_type],
                actor_token=form.get("actor_token"),
                actor_token_type=TOKEN_TYPES_BY_URN[actor_type] if actor_type else None,
                scopes=tuple(scope.split()) if scope is not None else None,
                audience=form.get("audience"),
                resource=form.get("resource"),
                requested_token_type=TOKEN_TYPES_BY_URN[requested],
            ),
        )
        body: dict[str, Any] = {
            # RFC 8693 §2.2.1: the issued token is in access_token "even if it is not an OAuth access token".
            "access_token": derived.token,
            "issued_token_type": TOKEN_TYPE_URNS[derived.token_type],
            "token_type": "Bearer" if derived.token_type == "ACCESS_TOKEN" else "N_A",
            "expires_in": derived.expires_in,
        }
        if derived.scopes:
            body["scope"] = " ".join(derived.scopes)
        return body

    async def client_token_scopes(self, pool: PoolView, client: ClientView) -> list[str]:
        """The scopes a client may have in an access token of its own (the client_credentials grant and
        GetClientToken): its AllowedOAuthScopes of resource servers that still define them."""
        custom = [s for s in self.allowed_scopes(client) if "/" in s]
        # DeleteResourceServer: no more tokens with the scopes of a deleted server (or a scope it dropped).
        return await live_scopes(self.pools, pool.id, custom)

    async def issue_client_token(
        self,
        pool: PoolView,
        client: ClientView,
        scopes: Sequence[str],
        *,
        via: str,
        client_metadata: Mapping[str, str] | None = None,
    ) -> tuple[str, int]:
        """An access token for the client itself (no user), and its lifetime in seconds: the one token the
        client_credentials grant (RFC 6749 §4.4) and GetClientToken both issue. ``via``: the audit event. A pool
        whose pre token generation function takes version 3 events is asked first
        (TokenGeneration_ClientCredentials: "Your user pool only sends this event when your event version is
        V3_0"), with the grant's ``aws_client_metadata``."""
        customization = None
        triggers = self.auth.triggers
        if (
            triggers is not None
            and triggers.function(pool, "PreTokenGeneration") is not None
            and triggers.pre_token_version(pool) == "3"
        ):
            customization = await triggers.pre_token_generation(
                pool,
                TOKEN_GENERATION_CLIENT_CREDENTIALS,
                client_id=client.id,
                username=None,
                attributes={},
                groups=(),
                roles=(),
                preferred_role=None,
                scopes=scopes,
                client_metadata=client_metadata,
            )
        now = int(time.time())
        seconds = client.token_seconds("AccessToken")
        key = await self.tokens.keys.active_key(pool.id, "access")
        claims = {
            "sub": client.id,
            "token_use": "access",
            "scope": " ".join(scopes),
            "auth_time": now,
            "iss": self.issuer(pool.id),
            "exp": now + seconds,
            "iat": now,
            "version": 2,
            "jti": new_jti(),
            "client_id": client.id,
        }
        if customization is not None:
            customization.groups_replaced = False  # a client has no groups
            customization.apply_access(claims, client.id)
        self.auth.metrics.inc(self.auth.metrics.tokens_issued, pool=pool.id, token_use="access")
        log.info(via, pool=pool.id, client=client.id, scopes=list(scopes))
        return sign_jwt(key, claims), seconds

    async def get_client_token(
        self,
        client_id: str,
        secret: str,
        scopes: Sequence[str] | None,
        client_metadata: Mapping[str, str] | None = None,
    ) -> tuple[str, int]:
        """GetClientToken: the client_credentials grant on the Cognito API, for a client with a secret and the
        ALLOW_CLIENT_TOKEN_AUTH flow. "If you don't specify any scopes, Amazon Cognito authorizes the scopes
        that are configured for the app client"; each one asked for must be one of them. ``client_metadata``:
        for a version 3 pre token generation function, as the grant's ``aws_client_metadata`` is."""
        client = await self.pools.find_client(client_id)
        pool = await self.pools.get_pool(client.pool_id)
        # The secret first: whether a client may get tokens is told only to those who hold its secret.
        if client.secret is None or not client.secret_matches(secret):
            log.info("client_token.refused", pool=pool.id, client=client.id, reason="secret")
            raise NotAuthorizedException(f"Unable to verify secret for client {client.id}")
        if CLIENT_TOKEN_FLOW not in client.explicit_auth_flows:
            log.info("client_token.refused", pool=pool.id, client=client.id, reason="flow")
            raise InvalidParameterException("ALLOW_CLIENT_TOKEN_AUTH flow not enabled for this client")
        allowed = await self.client_token_scopes(pool, client)
        if scopes:
            asked = list(dict.fromkeys(scopes))
            for scope in asked:
                if scope not in allowed:
                    raise InvalidParameterException(f"Invalid scope requested: {scope}")
        else:
            asked = allowed
        if not asked:
            raise InvalidParameterException("The app client has no resource server scopes to authorize.")
        return await self.issue_client_token(
            pool, client, asked, via="client_token.issued", client_metadata=client_metadata
        )

    # --- userInfo ----------------------------------------------------------------------------------------

    async def userinfo(self, access_token: str | None, *, pool_id: str | None = None) -> dict[str, Any]:
        """OpenID Connect Core §5.3: the claims the access token's scopes release. ``pool_id``: the pool whose
        endpoint was called (its path or domain); a token of another pool is not one of its tokens."""
        if not access_token:
            raise InvalidTokenError("A bearer access token is required.")
        try:
            verified = await self.tokens.verify_access_token(access_token, required_scope=None)
        except NotAuthorizedException as exc:
            raise InvalidTokenError(exc.message) from exc
        if pool_id is not None and verified.pool_id != pool_id:
            raise InvalidTokenError("Invalid Access Token")
        if "openid" not in verified.scopes:
            # Cognito's userInfo endpoint: "The openid scope must be one of the access token claims", and the
            # endpoint "doesn't accept" tokens without it; its documented refusals are invalid_request (400) and
            # invalid_token (401) only, so such a token is an invalid one here (not RFC 6750's 403
            # insufficient_scope, which a client written against Cognito does not expect).
            raise InvalidTokenError("Access token does not contain openid scope")
        user = verified.user
        if user is None or user.sub != verified.sub or not user.enabled:
            raise InvalidTokenError("The user of the access token can no longer sign in.")
        if user.tokens_valid_after and int(verified.claims.get("iat", 0)) < int(user.tokens_valid_after):
            raise InvalidTokenError("Access Token has been revoked")
        try:
            pool = await self.pools.get_pool(verified.pool_id)
            client = await self.find_client(verified.client_id, pool.id)
        except ResourceNotFoundException as exc:
            raise InvalidTokenError("The client of the access token no longer exists.") from exc
        attributes = self.auth.id_claims(AuthContext(pool=pool, client=client, admin=False), user)
        claims: dict[str, Any] = {"sub": user.sub}
        claims.update({k: v for k, v in attributes.items() if releases_claim(verified.scopes, k)})
        if "address" in claims:
            claims["address"] = address_claim(claims["address"])
        claims["username"] = user.username
        return claims

    # --- revocation --------------------------------------------------------------------------------------

    async def revoke(self, form: Mapping[str, str], authorization: str | None, *, pool_id: str | None = None) -> None:
        """RFC 7009 §2.1: revoke a refresh token (and with it the tokens of its family). An unknown or
        invalid token is not an error (§2.2); a token of another client is refused, and an ID token is
        ``unsupported_token_type`` (§2.2.1). An access token revokes
        its family only when the family is the client's own: a token exchanged from another client's token
        is left alone (answered 200). ``pool_id``: the pool whose endpoint was called, when the path or domain
        names one."""
        token = form.get("token")
        if not token:
            raise InvalidRequestError("token is required.")
        _, client = await self.authenticate_client(form, authorization, pool_id=pool_id)
        if not client.token_revocation_enabled:
            # Cognito's revocation endpoint: invalid_request "if the feature is disabled for the app client".
            raise InvalidRequestError("Token revocation is not enabled for this client.")
        # token_type_hint is not needed: the token's form tells which it is, and a hint, even one naming a
        # type this server does not know, never stops the search (RFC 7009 §2.1).
        if token.count(".") == 2:
            # An access token: revoke its family if it is ours, valid, and this client's (RFC 7009 §2).
            try:
                claims = await self.tokens.verify_jwt(token)
            except NotAuthorizedException:
                return
            if claims.get("token_use") != "access":
                # An ID token is no credential to revoke: it is handed to parties that must not end the user's
                # sessions (a public client's is authenticated by its aud alone). RFC 7009 §2.2.1 names the
                # answer, as the RevokeToken API refuses it (UnsupportedTokenTypeException); nothing is revoked.
                raise UnsupportedTokenTypeException("Only refresh tokens and access tokens can be revoked.")
            if claims.get("client_id") != client.id:
                raise UnauthorizedClientError("The token was not issued to this client.")
            origin = claims.get("origin_jti")
            if not isinstance(origin, str):
                return
            family = await self.store.get_token_family(origin)
            if family is None or family.client_id != client.id:
                # A token another client's sign-in led to (a token exchange keeps the subject token's family):
                # revoking that family would revoke tokens not issued to this client, which RFC 7009 §2.1
                # does not allow, and one access token cannot be revoked alone; answered 200 as §2.2 allows.
                log.info("oauth.revoke_skipped", pool=client.pool_id, client=client.id, origin_jti=origin)
                return
            await self.store.revoke_token_family(origin)
            log.info("oauth.revoked", pool=client.pool_id, client=client.id, origin_jti=origin)
            return
        if len(token) > 4096:
            return
        record = await self.store.get_refresh_token(sha256_hex(token))
        if record is None:
            return
        if record.client_id != client.id:
            raise UnauthorizedClientError("The token was not issued to this client.")
        await self.store.revoke_token_family(record.origin_jti)
        log.info("oauth.revoked", pool=client.pool_id, client=client.id, origin_jti=record.origin_jti)

    # --- logout ------------------------------------------------------------------------------------------

    async def logout_target(
        self, query: Mapping[str, str], *, pool_id: str | None = None
    ) -> tuple[PoolView, str | None]:
        """Where ``/logout`` sends the browser once the session is gone (Cognito's two forms): ``logout_uri``
        registered in LogoutURLs, or ``redirect_uri`` (registered in CallbackURLs) with ``response_type``,
        which starts a new sign-in. Anything else is refused with a page, never redirected. The parameters of
        OpenID Connect RP-Initiated Logout 1.0 are taken too (discovery names this endpoint as the
        ``end_session_endpoint``): see :meth:`_end_session_target`; there ``post_logout_redirect_uri`` is
        optional (§2), and a request naming its client by ``id_token_hint`` and nowhere to go next has the
        target None: the session ends and a page says so (§3)."""
        if end_session_request(query):
            uri = query.get("post_logout_redirect_uri")
            if uri is not None:
                return await self._end_session_target(query, uri, pool_id=pool_id)
            pool, _ = await self._end_session_client(query, pool_id=pool_id)
            return pool, None
        pool, client = await self.client(query.get("client_id"), pool_id=pool_id)
        logout_uri = query.get("logout_uri")
        if logout_uri is not None:
            if logout_uri not in (client.settings.get("LogoutURLs") or []):
                raise AuthorizationPageError("The logout_uri is not registered for this client.")
            return pool, iri_to_uri(logout_uri)
        redirect_uri = query.get("redirect_uri")
        if redirect_uri is not None and query.get("response_type"):
            if redirect_uri not in (client.settings.get("CallbackURLs") or []):
                raise AuthorizationPageError("The redirect_uri is not registered for this client.")
            return pool, "authorize"
        raise AuthorizationPageError("The request needs logout_uri, or redirect_uri and response_type.")

    async def _end_session_target(
        self, query: Mapping[str, str], uri: str, *, pool_id: str | None = None
    ) -> tuple[PoolView, str]:
        """OpenID Connect RP-Initiated Logout 1.0 §2-§3: ``post_logout_redirect_uri`` (one of the client's
        LogoutURLs, exactly), the client of :meth:`_end_session_client`, and ``state`` passed back. Anything
        else is refused with a page, never redirected."""
        pool, client = await self._end_session_client(query, pool_id=pool_id)
        if uri not in (client.settings.get("LogoutURLs") or []):
            raise AuthorizationPageError("The post_logout_redirect_uri is not registered for this client.")
        state = query.get("state")
        if state is not None and len(state.encode("utf-8", "surrogatepass")) > MAX_STATE_BYTES:
            raise AuthorizationPageError(f"The state parameter is too long (at most {MAX_STATE_BYTES} bytes).")
        return pool, add_parameters(uri, {"state": state})

    async def _end_session_client(
        self, query: Mapping[str, str], *, pool_id: str | None = None
    ) -> tuple[PoolView, ClientView]:
        """The client an RP-Initiated Logout request names: by ``client_id`` or by the ``aud`` of
        ``id_token_hint`` (when sent, an ID token of this server whatever else names the client, as §2 has the
        OP validate it was the issuer; when both are sent they must agree). A page error otherwise."""
        client_id = query.get("client_id") or None
        hint = query.get("id_token_hint")
        audience: str | None = None
        if hint:
            claims: dict[str, Any] | None
            try:
                # RP-Initiated Logout 1.0 §2: an ID token past its exp still names its client (relying parties
                # keep the one they got at sign-in and send it at logout, hours later).
                claims = (
                    await self.tokens.verify_jwt(hint, pool_id=pool_id, expired_ok=True)
                    if len(hint) <= MAX_TOKEN_CHARS
                    else None
                )
            except NotAuthorizedException:
                claims = None
            if claims is not None and claims.get("token_use") == "id" and isinstance(claims.get("aud"), str):
                audience = str(claims["aud"])
            else:
                # A hint that is not an ID token of ours is refused even beside a client_id: ignored, it would
                # let any client_id stand where the hint names another client.
                raise AuthorizationPageError("The id_token_hint is not a valid ID token of this user pool.")
        if client_id is not None and audience is not None and audience != client_id:
            raise AuthorizationPageError("The id_token_hint was not issued to this client_id.")
        return await self.client(client_id or audience, pool_id=pool_id)


# RFC 6749 §4.1.2.1 and §5.2: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E ).
_NOT_IN_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")
# The longest error_description sent: enough for every message of ours.
_MAX_DESCRIPTION = 512


def error_description(message: str) -> str:
    """``message`` as an ``error_description`` may carry it (RFC 6749 §4.1.2.1, §5.2): a character outside
    the allowed set (a quote, a backslash, a control or non-ASCII character, as an echoed parameter may hold)
    becomes ``?``."""
    if len(message) > _MAX_DESCRIPTION:
        # A message may echo a parameter as sent (an unsupported response_type): never megabytes of it.
        message = message[: _MAX_DESCRIPTION - 3] + "..."
    return _NOT_IN_DESCRIPTION.sub("?", message) or "?"


def end_session_request(query: Mapping[str, str]) -> bool:
    """Whether a ``/logout`` request is OpenID Connect RP-Initiated Logout 1.0's (§2: a
    ``post_logout_redirect_uri``, or an ``id_token_hint`` alone) rather than one of Cognito's two forms
    (``logout_uri``; ``redirect_uri`` with ``response_type``)."""
    if query.get("logout_uri") is not None:
        return False
    if query.get("post_logout_redirect_uri") is not None:
        return True
    return bool(query.get("id_token_hint")) and query.get("redirect_uri") is None


def _hinted_subject(hint: str, issuer: str) -> str | None:
    """The ``sub`` of an ``id_token_hint`` (a compact JWS) issued by ``issuer`` as an ID token, unverified;
    None for anything else."""
    parts = hint.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = orjson.loads(b64url_decode(parts[1]))
    except ValueError:  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        return None
    if not isinstance(claims, dict) or claims.get("iss") != issuer or claims.get("token_use") != "id":
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) else None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


@functools.lru_cache(maxsize=256)
def _uri_hash(uri: str) -> str:
    """The SHA-256 of a redirect URI, base64url: what a sealed code keeps of it (exact match, RFC 9700 §4.1)."""
    return base64.urlsafe_b64encode(hashlib.sha256(uri.encode("utf-8", "surrogatepass")).digest()).rstrip(b"=").decode()


def _client_metadata(value: str | None) -> dict[str, str]:
    """The client_credentials grant's ``aws_client_metadata``: a JSON object of strings (Cognito's "Client
    metadata" for machine-to-machine grants), for the pre token generation function."""
    if value is None:
        return {}
    try:
        found = json.loads(value)
    except (ValueError, RecursionError):
        found = None
    if not isinstance(found, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        raise InvalidRequestError("aws_client_metadata must be a JSON object of strings.")
    return found


def _refresh_grant_allowed(client: ClientView) -> bool:
    """Whether ``client`` may use the refresh grant (RFC 6749 §6). A metadata document client may only when its
    document's ``grant_types`` lists ``refresh_token``; app clients are not limited here."""
    cimd = client.settings.get(CIMD_SETTING)
    return cimd is None or bool(cimd.get("RefreshToken"))


def _binding_refusal(form: Mapping[str, str], data: Mapping[str, Any]) -> str | None:
    """Why a token request does not match its code's authorization request (RFC 6749 §4.1.3: the same
    redirect_uri, which may be left out only when the authorization request left it out too; RFC 7636 §4.6: a
    code_verifier whose S256 is the code_challenge; RFC 9700 §2.1.1: no code_verifier for a code issued without
    a code_challenge, a PKCE downgrade), or None when it does."""
    redirect_uri = form.get("redirect_uri")
    if redirect_uri is None:
        if not data.get("rd"):
            return "redirect_uri does not match the authorization request."
    elif not hmac.compare_digest(_uri_hash(redirect_uri), str(data["r"])):
        return "redirect_uri does not match the authorization request."
    verifier = form.get("code_verifier")
    challenge = data["cc"]
    if challenge is not None:
        if not verifier or not _VERIFIER.fullmatch(verifier):
            return "A valid code_verifier is required."
        if not hmac.compare_digest(s256(verifier), str(challenge)):
            return "code_verifier does not match the code_challenge."
    elif verifier is not None:
        return "No code_challenge was sent with the authorization request."
    return None
