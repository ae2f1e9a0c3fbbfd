"""OAuth 2.0 Token Exchange (RFC 8693) as Amazon Cognito offers it: GetDerivedToken on the user pools API and the
``urn:ietf:params:oauth:grant-type:token-exchange`` grant of ``/oauth2/token`` share this one service.

Cognito's developer guide ("Exchanging tokens for downstream services"): a service that received a user's token
presents it as the *subject token* and gets a new *issued token*, "narrowed in scope and bound to the audience of a
specific downstream service", with no refresh token. With an *actor token* (delegation) "the issued token carries
an ``act`` claim that identifies the intermediary"; without one (impersonation) "the issued token appears as if
the user acted directly". The requesting app client needs ``ALLOW_TOKEN_EXCHANGE_DELEGATION`` or
``ALLOW_TOKEN_EXCHANGE_IMPERSONATION`` respectively. Scopes are "the intersection of these requested scopes, the
scopes of your SubjectToken, and the scopes that are allowed for the requesting app client".

What Gatehouse decides where Cognito's documentation is silent (docs/oauth.md says the same):

* Subject and actor tokens are this pool's own ID and access tokens, verified as GetUser verifies an access
  token (signature, expiry, ``token_use``, the token family and the user's sessions not revoked, the user still
  there and enabled). SAML 2.0 assertions and third-party tokens (``SubjectTokenProviderName``) are refused.
* The subject must be a user's token; an actor token may also be a client's own (client_credentials) token.
* The ``act`` claim is RFC 8693 §4.1's: ``{"sub": <actor's sub>, "client_id": <actor's client>}``, with the
  subject token's own ``act`` nested inside it (the chain of earlier actors). Impersonation keeps the subject
  token's ``act``: exchanging a delegated token never erases who acted.
* The issued token keeps the subject token's ``origin_jti`` (its token family), so GlobalSignOut, RevokeToken
  of the user's refresh token and AdminUserGlobalSignOut revoke it with the tokens it came from. It never
  outlives the subject token (``exp`` is the sooner of the client's token validity and the subject's ``exp``),
  so a chain of exchanges cannot stretch a session.
* A pool of the Lite feature plan answers OperationNotEnabledException (the guide: token exchange is a feature
  of the Essentials and Plus plans).
* ``aws.cognito.signin.user.admin`` counts as allowed for a client that signs users in through the API (any
  explicit auth flow other than the token exchange and client token flows), as InitiateAuth grants it there.
* The audience may be anything but another app client of the pool (invalid_target), a client ID metadata
  document client's URL included: a token bound to that client's id would pass as its own. A derived ID token
  names its client in ``azp`` when the audience is another, and that client (not the audience) is the one an
  ID-token actor's ``act`` names.
* A token bound to a resource server of the pool (a resource, or an audience that is its identifier) carries
  one of its scopes at least (invalid_target): a client allowed none of them gets no token that server would
  take as meant for it.
* An ID token is issued only when the scopes granted include ``openid`` or the admin scope: it carries the
  user's attributes, which no other scope lets its holder read.
* A derived ID token carries the scopes granted in ``scope`` (a sign-in's ID token has none, and stands for its
  sign-in's scopes), so exchanging it again cannot widen them.
* A token derived for a client ends when that client is deleted (DeleteUserPoolClient revokes only the token
  families its sign-ins started): GetUser and a further exchange refuse it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import structlog

from gateway.errors import (
    ExchangeFlowError,
    ExchangeNotInTierError,
    ExchangeRequestError,
    ExchangeScopeError,
    ExchangeTokenError,
    InvalidTargetError,
    NotAuthorizedException,
    ResourceNotFoundException,
)
from gateway.ids import new_jti
from gateway.services.auth import AuthContext, AuthService
from gateway.services.cimd import compile_pattern, is_metadata_url
from gateway.services.live_scopes import live_scopes
from gateway.services.pools import (
    CLIENT_TOKEN_FLOW,
    DELEGATION_FLOW,
    IMPERSONATION_FLOW,
    TOKEN_EXCHANGE_FLOWS,
    ClientView,
    PoolService,
    PoolView,
)
from gateway.services.tokens import ADMIN_SCOPE, TokenService, address_claim, identities_claim, sign_jwt
from gateway.storage.base import Store, UserRecord

log = structlog.get_logger("gateway.token_exchange")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
# RFC 8693 §3: token type identifiers, by the names GetDerivedToken's TokenTypeIdentifierType gives them.
TOKEN_TYPE_URNS = {
    "ACCESS_TOKEN": "urn:ietf:params:oauth:token-type:access_token",
    "ID_TOKEN": "urn:ietf:params:oauth:token-type:id_token",
    "SAML2": "urn:ietf:params:oauth:token-type:saml2",
}
TOKEN_TYPES_BY_URN = {urn: name for name, urn in TOKEN_TYPE_URNS.items()}
_TOKEN_USE = {"ACCESS_TOKEN": "access", "ID_TOKEN": "id"}
# GetDerivedToken's AudienceType and ResourceServerIdentifierType (the token endpoint checks its parameters the
# same way).
TARGET_PATTERN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]{1,256}")
_WITH_OPENID = ("email", "phone", "profile")


@dataclass(frozen=True)
class ExchangeRequest:
    """One exchange, in GetDerivedToken's terms (the token endpoint maps RFC 8693 §2.1's parameters onto it)."""

    subject_token: str
    subject_token_type: str
    actor_token: str | None = None
    actor_token_type: str | None = None
    scopes: tuple[str, ...] | None = None
    audience: str | None = None
    resource: str | None = None
    requested_token_type: str = "ACCESS_TOKEN"
    subject_provider: str | None = None
    actor_provider: str | None = None


@dataclass(frozen=True)
class DerivedToken:
    token: str
    token_type: str  # ACCESS_TOKEN or ID_TOKEN
    expires_in: int
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class _Subject:
    claims: dict[str, Any]
    user: UserRecord
    origin_jti: str
    scopes: tuple[str, ...]


class TokenExchangeService:
    """Verifies subject and actor tokens and signs the derived token, for either wire."""

    def __init__(self, store: Store, pools: PoolService, auth: AuthService, tokens: TokenService) -> None:
        self._store = store
        self._pools = pools
        self._auth = auth
        self._tokens = tokens

    async def api_client(self, client_id: str, secret: str | None, *, signed: bool) -> tuple[PoolView, ClientView]:
        """GetDerivedToken's caller: "you must have IAM credentials, or you must present the requesting app
        client's ClientId and, if the client has a secret, ClientSecret". A secret given is checked either way
        (any active secret of a rotation; a deleted one no longer is one)."""
        client = await self._pools.find_client(client_id)
        pool = await self._pools.get_pool(client.pool_id)
        needs_secret = bool(secret) or (client.secret is not None and not signed)
        if needs_secret and (client.secret is None or not client.secret_matches(secret)):
            log.info("token_exchange.refused", pool=pool.id, client=client.id, reason="secret")
            raise NotAuthorizedException(f"Unable to verify secret for client {client.id}")
        return pool, client

    async def exchange(self, pool: PoolView, client: ClientView, request: ExchangeRequest) -> DerivedToken:
        """Issue the derived token of ``request`` to ``client`` (already authenticated by the wire)."""
        if pool.settings.get("UserPoolTier", "ESSENTIALS") == "LITE":
            raise ExchangeNotInTierError(
                "Token exchange requires the Essentials or Plus feature plan: the user pool's UserPoolTier is LITE."
            )
        delegation = request.actor_token is not None
        flow = DELEGATION_FLOW if delegation else IMPERSONATION_FLOW
        if flow not in client.explicit_auth_flows:
            log.info("token_exchange.refused", pool=pool.id, client=client.id, reason="flow", flow=flow)
            raise ExchangeFlowError(f"{flow} flow not enabled for this client")
        self._check_request(request)
        try:
            subject = await self._subject(pool, request.subject_token, request.subject_token_type)
            act = await self._actor(pool, request) if delegation else None
        except ExchangeTokenError as exc:
            log.info("token_exchange.refused", pool=pool.id, client=client.id, reason="token", message=exc.message)
            raise
        if isinstance(subject.claims.get("act"), dict):
            # RFC 8693 §4.1: "nested act claims serve as a history trail"; impersonation keeps the trail as it is.
            act = {**act, "act": subject.claims["act"]} if act is not None else subject.claims["act"]
        audience = await self._audience(pool, client, request)
        scopes = await self._scopes(pool, client, subject, request)
        await self._check_target_scopes(pool, audience, scopes)
        derived = await self._sign(pool, client, subject, request.requested_token_type, scopes, audience, act)
        log.info(
            "token_exchange.issued",
            pool=pool.id,
            client=client.id,
            username=subject.user.username,
            mode="delegation" if delegation else "impersonation",
            actor=act.get("sub") if act is not None and delegation else None,
            token_use=_TOKEN_USE[derived.token_type],
            scopes=list(scopes),
            audience=audience,
        )
        return derived

    # --- checks ----------------------------------------------------------------------------------------

    @staticmethod
    def _check_request(request: ExchangeRequest) -> None:
        if request.actor_token is not None and not request.actor_token_type:
            raise ExchangeRequestError("ActorTokenType is required when you provide an ActorToken.")
        if request.actor_token is None and request.actor_token_type:
            # RFC 8693 §2.1: actor_token_type "MUST NOT be included otherwise".
            raise ExchangeRequestError("ActorTokenType is given without an ActorToken.")
        if (
            request.subject_provider
            or request.actor_provider
            or "SAML2"
            in (
                request.subject_token_type,
                request.actor_token_type,
            )
        ):
            raise ExchangeRequestError(
                "Only this user pool's own ID and access tokens can be exchanged: SAML 2.0 assertions and tokens "
                "of third-party identity providers are not supported."
            )
        for kind in (request.subject_token_type, request.actor_token_type or "ACCESS_TOKEN"):
            if kind not in _TOKEN_USE:
                raise ExchangeRequestError(f"Unsupported token type: {kind}")
        if request.requested_token_type not in _TOKEN_USE:
            raise ExchangeRequestError(f"Unsupported requested token type: {request.requested_token_type}")
        if request.audience is not None and request.resource is not None:
            raise InvalidTargetError("You can't request both Audiences and Resources.")
        for target in (request.audience, request.resource):
            if target is not None and not TARGET_PATTERN.fullmatch(target):
                raise InvalidTargetError("An audience or resource must be 1 to 256 printable characters.")

    async def _verified(self, pool: PoolView, token: str, token_type: str, what: str) -> dict[str, Any]:
        """Signature (a key of this pool), expiry and ``token_use``."""
        if not token:
            raise ExchangeTokenError(f"The {what} token is not valid.")
        try:
            claims = await self._tokens.verify_jwt(token, pool_id=pool.id)
        except NotAuthorizedException as exc:
            expired = "expired" in exc.message
            raise ExchangeTokenError(f"The {what} token {'has expired' if expired else 'is not valid'}.") from exc
        if claims.get("token_use") != _TOKEN_USE[token_type]:
            raise ExchangeTokenError(
                f"The {what} token is not an {'access' if token_type == 'ACCESS_TOKEN' else 'ID'} token."
            )
        return claims

    async def _user_of(
        self, pool: PoolView, claims: dict[str, Any], what: str
    ) -> tuple[UserRecord, str, list[str] | None]:
        """As GetUser checks an access token: its family and the user's sessions not revoked, the user still
        there (the same one: a user made again under the name has another sub) and enabled, and a derived
        token's app client (another than its family's) not deleted."""
        origin = claims.get("origin_jti")
        if not isinstance(origin, str):
            raise ExchangeTokenError(f"The {what} token is not a user's token.")
        found = await self._store.get_token_family_with_user(origin)
        if found is None or found[0].revoked or found[0].pool_id != pool.id:
            raise ExchangeTokenError(f"The {what} token has been revoked.")
        family, user = found
        if claims.get("token_use") == "id":
            issued_to = claims.get("azp") or claims.get("aud")
        else:
            issued_to = claims.get("client_id")
        if issued_to != family.client_id and not await self._tokens.client_exists(pool.id, str(issued_to)):
            raise ExchangeTokenError(f"The {what} token has been revoked.")
        if user is None or user.sub != claims.get("sub"):
            raise ExchangeTokenError(f"The user of the {what} token does not exist.")
        if not user.enabled:
            raise ExchangeTokenError(f"The user of the {what} token is disabled.")
        iat = claims.get("iat")
        if user.tokens_valid_after and (not isinstance(iat, int) or iat < int(user.tokens_valid_after)):
            raise ExchangeTokenError(f"The {what} token has been revoked.")
        return user, origin, family.scopes

    async def _subject(self, pool: PoolView, token: str, token_type: str) -> _Subject:
        claims = await self._verified(pool, token, token_type, "subject")
        user, origin, family_scopes = await self._user_of(pool, claims, "subject")
        if token_type == "ACCESS_TOKEN":
            scopes = tuple(str(claims.get("scope", "")).split())
        elif isinstance(claims.get("scope"), str):
            # A derived ID token names the scopes it was issued with: exchanging it never widens them again.
            scopes = tuple(claims["scope"].split())
        else:
            # A sign-in's ID token names no scopes: those of the sign-in (the API's: the admin scope).
            scopes = tuple(family_scopes) if family_scopes is not None else (ADMIN_SCOPE,)
        return _Subject(claims=claims, user=user, origin_jti=origin, scopes=scopes)

    async def _actor(self, pool: PoolView, request: ExchangeRequest) -> dict[str, Any]:
        """RFC 8693 §4.1's ``act`` claim for the actor token: who acts (its ``sub``) and through which client."""
        assert request.actor_token is not None and request.actor_token_type is not None
        claims = await self._verified(pool, request.actor_token, request.actor_token_type, "actor")
        if request.actor_token_type == "ID_TOKEN":
            # The client an ID token was issued to: its ``azp`` when it has one (a derived ID token bound to
            # another audience), else its ``aud``; never an audience its holder chose.
            client_id = claims.get("azp") or claims.get("aud")
        else:
            client_id = claims.get("client_id")
        if "origin_jti" in claims:
            await self._user_of(pool, claims, "actor")
        else:
            # A client's own token (client_credentials, GetClientToken): its client must still be this pool's.
            try:
                actor_client = await self._pools.find_client(str(client_id))
            except ResourceNotFoundException as exc:
                raise ExchangeTokenError("The actor token's app client does not exist.") from exc
            if actor_client.pool_id != pool.id:
                raise ExchangeTokenError("The actor token is not valid.")
        return {"sub": str(claims.get("sub", "")), "client_id": str(client_id)}

    async def _audience(self, pool: PoolView, client: ClientView, request: ExchangeRequest) -> str | None:
        """The issued token's ``aud``: a resource server of this pool, or any audience but another app client of
        this pool (or a URL a CIMD policy of the pool admits: a document client's id). A token bound to another
        client's id would pass as that client's own (an identity pool or a relying party that trusts the client
        by ``aud``): RFC 8693 §2.2.2 lets the server refuse a target it is unwilling to issue for
        (invalid_target)."""
        if request.resource is not None:
            if await self._pools.resource_scope_names(pool.id, request.resource) is None:
                raise InvalidTargetError(f"Resource {request.resource} is not a resource server of this user pool.")
            return request.resource
        if request.audience is not None and request.audience != client.id:
            try:
                other = await self._pools.find_client(request.audience)
            except ResourceNotFoundException:
                other = None
            if (other is not None and other.pool_id == pool.id) or await self._document_client(pool, request.audience):
                raise InvalidTargetError(
                    f"Audience {request.audience} is another app client of this user pool: a token can be issued "
                    "for the requesting app client's own audience only."
                )
        return request.audience

    async def _check_target_scopes(self, pool: PoolView, audience: str | None, scopes: tuple[str, ...]) -> None:
        """A token bound to a resource server of the pool (``Resources``, or an audience that is its identifier)
        carries one of its scopes at least: else a client allowed none of them would hold a token that server
        takes as meant for it by ``aud`` (RFC 8693 §2.2.2: invalid_target)."""
        if audience is None:
            return
        names = await self._pools.resource_scope_names(pool.id, audience)
        if names is not None and not any(f"{audience}/{name}" in scopes for name in names):
            raise InvalidTargetError(
                f"No scope of resource server {audience} can be granted: a token for it needs one of its scopes "
                "that is in the subject token and allowed for the app client."
            )

    async def _document_client(self, pool: PoolView, audience: str) -> bool:
        """Whether ``audience`` is a client ID metadata document client's id in this pool: a URL one of its CIMD
        policies admits (whether or not its document was ever fetched; none is fetched here)."""
        if not is_metadata_url(audience):
            return False
        policies = await self._store.cimd_policies_for_matching(pool.id)
        return any(compile_pattern(p).fullmatch(audience) for policy in policies for p in policy.url_patterns)

    async def _scopes(
        self, pool: PoolView, client: ClientView, subject: _Subject, request: ExchangeRequest
    ) -> tuple[str, ...]:
        """Requested ∩ the subject token's ∩ the client's allowed (custom scopes only while their resource server
        still has them); all the subject token's the client is allowed when none are requested."""
        allowed = set(await live_scopes(self._pools, pool.id, client.settings.get("AllowedOAuthScopes") or []))
        if set(client.explicit_auth_flows) - TOKEN_EXCHANGE_FLOWS - {CLIENT_TOKEN_FLOW}:
            allowed.add(ADMIN_SCOPE)
        base = [s for s in subject.scopes if s in allowed]
        if request.scopes:
            granted = [s for s in dict.fromkeys(request.scopes) if s in base]
            if not granted:
                raise ExchangeScopeError(
                    "None of the requested scopes can be granted: a scope must be in the subject token and allowed "
                    "for the app client."
                )
        else:
            granted = base
        if "openid" not in granted:
            # As at the authorize endpoint: email, phone and profile come with openid only.
            granted = [s for s in granted if s not in _WITH_OPENID]
        if not granted and request.requested_token_type == "ACCESS_TOKEN":
            raise ExchangeScopeError("The subject token has no scope that the app client is allowed.")
        if request.requested_token_type == "ID_TOKEN" and not {"openid", ADMIN_SCOPE} & set(granted):
            # An ID token carries the user's attributes: only for scopes that already read them (userInfo's
            # openid, GetUser's admin scope). OpenID Connect Core §3.1.2.1: without openid, no ID token.
            raise ExchangeScopeError(
                "An ID token needs the openid scope (or aws.cognito.signin.user.admin) among the scopes granted."
            )
        return tuple(granted)

    # --- the issued token ------------------------------------------------------------------------------

    async def _sign(
        self,
        pool: PoolView,
        client: ClientView,
        subject: _Subject,
        token_type: str,
        scopes: tuple[str, ...],
        audience: str | None,
        act: dict[str, Any] | None,
    ) -> DerivedToken:
        now = int(time.time())
        use = _TOKEN_USE[token_type]
        lifetime = client.token_seconds("AccessToken" if use == "access" else "IdToken")
        # Never longer than the subject token: exchanging again and again cannot stretch a session.
        expiry = min(now + lifetime, int(subject.claims["exp"]))
        user = subject.user
        groups, roles, preferred = await self._auth.groups_and_roles(pool.id, user)
        claims: dict[str, Any] = {"sub": user.sub}
        if groups:
            claims["cognito:groups"] = groups
        common = {
            "iss": self._tokens.issuer(pool.id),
            "origin_jti": subject.origin_jti,
            "event_id": new_jti(),
            "token_use": use,
            "auth_time": subject.claims.get("auth_time", now),
            "exp": expiry,
            "iat": now,
            "jti": new_jti(),
        }
        if use == "access":
            claims.update(common)
            claims.update({"client_id": client.id, "scope": " ".join(scopes), "username": user.username})
            if audience is not None:
                claims["aud"] = audience
        else:
            if roles:
                claims["cognito:roles"] = roles
            if preferred:
                claims["cognito:preferred_role"] = preferred
            claims.update(self._auth.id_claims(AuthContext(pool=pool, client=client, admin=False), user))
            if isinstance(claims.get("identities"), str):
                claims["identities"] = identities_claim(claims["identities"])
            if "address" in claims:
                claims["address"] = address_claim(claims["address"])
            claims.update(common)
            # The scopes granted, which a sign-in's ID token does not carry: an exchange of this token is held
            # to them, as one of a derived access token is to its ``scope``.
            claims.update({"cognito:username": user.username, "aud": audience or client.id, "scope": " ".join(scopes)})
            if audience is not None:
                # OpenID Connect Core §2: the party the ID token was issued to, when the audience is another.
                claims["azp"] = client.id
        if act is not None:
            claims["act"] = act
        key = await self._tokens.keys.active_key(pool.id, use)
        self._auth.metrics.inc(self._auth.metrics.tokens_issued, pool=pool.id, token_use=use)
        return DerivedToken(token=sign_jwt(key, claims), token_type=token_type, expires_in=expiry - now, scopes=scopes)
