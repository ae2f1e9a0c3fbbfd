"""Identities of identity pools: logins checked, linked and unlinked, OpenID tokens, developer identities.

Follows the Amazon Cognito Federated Identities API reference (GetId, GetOpenIdToken,
GetOpenIdTokenForDeveloperIdentity, GetCredentialsForIdentity, UnlinkIdentity, Lookup/Merge/Unlink developer
identities) and the developer guide's "Identity pools authentication flow".

* A login is a provider's name and a token (or, for the pool's developer provider in signed calls, a
  developer user identifier). Every token is verified here before it counts: a Gatehouse user pool's ID
  token in-process with that pool's keys (signature, issuer, ``aud`` = a configured ClientId and no other
  ``azp``, expiry, and when ServerSideTokenCheck is set that its sign-in was not revoked); one of the identity
  service's own OpenID tokens (login ``cognito-identity.amazonaws.com``, as developer-authenticated
  identities use it) against the identity issuer's keys.
* A login (provider, subject) belongs to at most one identity of a pool, so the same login always finds
  the same identity; several logins may share one identity. A login linked to another identity is a
  ResourceConflictException.
* An identity that has logins is reached only with one of them (knowing an identity id is not enough); a
  guest identity only while the pool allows unauthenticated identities. One whose last login was unlinked is
  inaccessible, to every call (GetOpenIdTokenForDeveloperIdentity naming it too).
* New logins given to GetOpenIdToken or GetCredentialsForIdentity are linked last, once nothing else can refuse
  the call; UnlinkIdentity links nothing, and leaves developer user identifiers to UnlinkDeveloperIdentity.
* OpenID tokens are RS256 JWTs from the identity issuer ``{public_url}/identity`` (discovery and JWKS under
  ``/identity/.well-known/``), shaped like Cognito's: ``aud`` = identity pool id, ``sub`` = identity id,
  ``amr`` = ``["authenticated", <provider>, <provider>:...:<subject>, ...]`` or ``["unauthenticated"]``, a
  Gatehouse user pool named as the identity pool lists it (IdentityPoolService.shown_name).
"""

from __future__ import annotations

import binascii
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from gateway.errors import (
    DeveloperUserAlreadyRegisteredException,
    ExternalServiceException,
    GatehouseError,
    InternalErrorException,
    InvalidIdentityPoolConfigurationException,
    InvalidParameterException,
    NotAuthorizedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from gateway.ids import random_uuid
from gateway.services.change_stamp import IDENTITIES, KEYS, ChangeStamps
from gateway.services.identity_pools import (
    IdentityPoolService,
    IdentityPoolView,
    RoleChoice,
    choose_role,
    oidc_provider_host,
)
from gateway.services.short_cache import ShortCache
from gateway.services.social_logins import SocialLogins
from gateway.services.tokens import SigningKeys, TokenService, b64url_decode, sign_jwt
from gateway.storage.base import (
    AlreadyExists,
    IdentityLogin,
    IdentityRecord,
    NotFound,
    SigningKeyRecord,
    Store,
)

log = structlog.get_logger("gateway.identities")

KEY_SET = "cognito-identity"
# The Logins key under which one of our own OpenID tokens proves an identity (as on AWS).
COGNITO_IDENTITY_LOGIN = "cognito-identity.amazonaws.com"
# GetOpenIdToken's tokens live 10 minutes; GetOpenIdTokenForDeveloperIdentity's 15 unless TokenDuration says.
OPEN_ID_TOKEN_SECONDS = 600
DEVELOPER_TOKEN_SECONDS = 900
# The longest login token taken (the model's IdentityProviderToken): anything longer is refused before it is
# parsed. A user pool's ID token for a user in many groups runs to tens of KB.
MAX_LOGIN_TOKEN_CHARS = 50000
# "The number of linked logins is limited to 20" (MergeDeveloperIdentities).
MAX_LINKED_LOGINS = 20
# How long a process reuses an identity it read (as long as it reuses identity pools).
IDENTITY_CACHE_SECONDS = 2.0
POOL_ARN_CLAIM = "https://cognito-identity.amazonaws.com/identity-pool-arn"
TAGS_CLAIM = "https://aws.amazon.com/tags"
UNSUPPORTED_PROVIDER = "Token is not from a supported provider of this identity pool."
CLASSIC_FLOW_DISABLED = "Basic (classic) flow is not enabled, please use enhanced flow."
CLASSIC_FLOW_WITH_ROLE_MAPPINGS = "Basic (classic) flow is not supported with RoleMappings, please use enhanced flow."
LOGINS_DO_NOT_MATCH = "Logins don't match. Please include at least one valid login for this identity or identity pool."


class IssuerKeyStore:
    """The Store's issuer key sets, as SigningKeys reads and writes a pool's keys."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def add_signing_key(self, key: SigningKeyRecord) -> None:
        await self._store.add_issuer_signing_key(key)

    async def list_signing_keys(self, pool_id: str) -> list[SigningKeyRecord]:
        return await self._store.list_issuer_signing_keys(pool_id)

    async def delete_signing_key(self, pool_id: str, kid: str) -> None:
        await self._store.delete_issuer_signing_key(pool_id, kid)


@dataclass(frozen=True)
class VerifiedLogin:
    """A login whose token checked out.

    ``provider``/``subject``: what is linked to the identity. ``mapping_keys``: the RoleMappings keys that
    apply to it. ``amr``: the entries it adds to an OpenID token's ``amr``. ``proves``: for one of our own
    OpenID tokens, the identity it was issued to (such a login is not linked, it only authenticates).
    """

    provider: str
    subject: str
    claims: Mapping[str, Any] = field(default_factory=dict)
    mapping_keys: tuple[str, ...] = ()
    amr: tuple[str, ...] = ()
    proves: str | None = None
    developer: bool = False
    # A SAML login: the roles its assertion offers (the pool's roles and mappings do not apply to it).
    saml_roles: tuple[str, ...] | None = None
    # What is linked to the identity: made once, since every call tests it against the identity's logins
    # (and a checked user pool login is reused while its token lives).
    login: IdentityLogin = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "login", IdentityLogin(self.provider, self.subject))


@dataclass(frozen=True)
class CredentialsGrant:
    """What GetCredentialsForIdentity decided before credentials are minted: the identity, the role, and what
    an OpenID token of the identity issuer for it would tell STS's trust policy check (``sub`` is the
    identity, ``aud`` the pool, ``amr`` the logins' entries, the tags its session tags). No such token is
    made: it would only be handed from one service to the next in this process, and only those condition
    keys are what the role's trust policy is evaluated against."""

    identity_id: str
    pool: IdentityPoolView
    role: RoleChoice
    authenticated: bool
    amr: tuple[str, ...]
    principal_tags: dict[str, str]


@dataclass(frozen=True)
class UserPoolProvider:
    """What an identity pool's configuration says about one Logins key that names a Gatehouse user pool: worked
    out once per read of the pool's configuration (a new read is a new view), not on every login.

    ``clients``: each ClientId of the pool's CognitoIdentityProviders entries for that user pool (under either
    of its names) and whether any of its entries asks for ServerSideTokenCheck; ``mapping_keys``: the RoleMappings
    keys a login through that client matches (``<either name>:<ClientId>``); ``shown``: the name the login's
    ``amr`` entries give the user pool (IdentityPoolService.shown_name), ``canonical`` the one it is linked under."""

    user_pool_id: str
    issuer: str
    canonical: str
    shown: str
    names: tuple[str, ...]
    clients: Mapping[object, bool]
    mapping_keys: Mapping[object, tuple[str, ...]]


# How many (identity pool, Logins key) pairs a process keeps worked out (the keys are the caller's to choose).
PROVIDER_PLANS = 1024


# Checks a token from a registered IAM OIDC provider; answers the provider's name as IAM keys it (the issuer
# without the scheme) and the verified claims, or raises NotAuthorizedException / ExternalServiceException.
ExternalVerify = Callable[[str], Awaitable[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class SamlLogin:
    """A verified SAML Response of an IAM SAML provider: its subject (NameID) and the roles its Role attribute
    pairs with that provider."""

    subject: str
    roles: tuple[str, ...]
    claims: dict[str, Any] = field(default_factory=dict)


# Checks a base64 SAML Response for an IAM SAML provider ARN, or raises NotAuthorizedException.
SamlVerify = Callable[[str, str], Awaitable[SamlLogin]]


class CredentialsIssuer(Protocol):
    """Mints temporary credentials for a grant: STS's AssumeRoleWithWebIdentity with the grant's token, after
    the role's trust policy admits it. Answers the Credentials shape (AccessKeyId, SecretKey, SessionToken,
    Expiration)."""

    async def credentials_for(self, grant: CredentialsGrant) -> dict[str, Any]: ...


def _unverified_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    parts = token.split(".")
    if len(parts) != 3 or len(token) > MAX_LOGIN_TOKEN_CHARS:
        raise NotAuthorizedException("Invalid login token. Not a valid OpenId Connect identity token.")
    try:
        # Strict base64url (RFC 7515 §2): one token has one spelling, as the user pools' tokens do.
        header = orjson.loads(b64url_decode(parts[0]))
        claims = orjson.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise NotAuthorizedException("Invalid login token. Not a valid OpenId Connect identity token.") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise NotAuthorizedException("Invalid login token. Not a valid OpenId Connect identity token.")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


class IdentityService:
    """Identities, their logins and the identity issuer's OpenID tokens."""

    def __init__(
        self,
        store: Store,
        pools: IdentityPoolService,
        user_pool_tokens: TokenService,
        keys: SigningKeys,
        issuer: str,
        *,
        social: SocialLogins | None = None,
    ) -> None:
        self._store = store
        self.pools = pools
        self._user_pool_tokens = user_pool_tokens
        self.keys = keys
        self.issuer = issuer.rstrip("/")
        # The identity issuer without the scheme: a second name for COGNITO_IDENTITY_LOGIN.
        self.login_name = self.issuer.split("://", 1)[-1]
        # Set once the server can mint temporary credentials (the STS service).
        self.credentials: CredentialsIssuer | None = None
        # Set once IAM OIDC providers can be checked (STS's web identity verifier).
        self.external: ExternalVerify | None = None
        # Set once IAM SAML providers' Responses can be checked.
        self.saml: SamlVerify | None = None
        self.social = social
        # GetId and GetCredentialsForIdentity read the identity on every call: each process keeps what it read
        # for IDENTITY_CACHE_SECONDS (by id, and the id by login), as identity pools are kept. Every write
        # made here drops both; one made by another process is seen once the entry is that old.
        # Both follow the store's identities stamp (gateway/services/change_stamp.py): an identity deleted,
        # unlinked or merged by any process sharing the store is read again at once (see _changed).
        self.stamps = ChangeStamps()
        self._identities: ShortCache[str, IdentityRecord] = ShortCache(
            IDENTITY_CACHE_SECONDS, stamps=self.stamps, slot=IDENTITIES
        )
        self._by_login: ShortCache[tuple[str, str, str], str] = ShortCache(
            IDENTITY_CACHE_SECONDS, stamps=self.stamps, slot=IDENTITIES
        )
        # An app sends the same Logins to GetId and then GetCredentialsForIdentity: a user pool login checked
        # against a pool's configuration is remembered (with that configuration, for as long as the pool is
        # cached) until the token expires. Revocation (ServerSideTokenCheck) is checked on every call. It follows
        # the signing keys' stamp: a key retired because it leaked (or a deleted user pool's) vouches for no
        # remembered login either, in any process.
        self._user_pool_logins: ShortCache[tuple[str, str, str], tuple[IdentityPoolView, VerifiedLogin, int, bool]]
        self._user_pool_logins = ShortCache(IDENTITY_CACHE_SECONDS, stamps=self.stamps, slot=KEYS)
        # Per (identity pool, Logins key): the view it was worked out from, and the user pool provider it names
        # (None: the key names no Gatehouse user pool). Used while that view is the pool's current one.
        self._providers: dict[tuple[str, str], tuple[IdentityPoolView, UserPoolProvider | None]] = {}

    def use_stamps(self, stamps: ChangeStamps) -> None:
        """Share ``stamps`` with the other processes of the store (set by the container)."""
        self.stamps = stamps
        self._identities = ShortCache(IDENTITY_CACHE_SECONDS, stamps=stamps, slot=IDENTITIES)
        self._by_login = ShortCache(IDENTITY_CACHE_SECONDS, stamps=stamps, slot=IDENTITIES)
        self._user_pool_logins = ShortCache(IDENTITY_CACHE_SECONDS, stamps=stamps, slot=KEYS)

    def _forget(self) -> None:
        """Drop the cached identities (after any identity write of this process)."""
        self._identities.clear()
        self._by_login.clear()

    def _changed(self) -> None:
        """After a write that takes logins or identities away, or links a login (a guest then is one no longer),
        reached the store: every process reads again."""
        self.stamps.bump(IDENTITIES)
        self._forget()

    # --- the identity issuer -------------------------------------------------------------------------------

    async def jwks(self) -> dict[str, Any]:
        # Read fresh: with several processes, the first uses of the issuer may each have made a key.
        return await self.keys.jwks(KEY_SET, uses=("id",), fresh=True)

    async def mint(
        self,
        pool: IdentityPoolView,
        identity_id: str,
        amr: Sequence[str],
        seconds: int,
        principal_tags: Mapping[str, str] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Sign an OpenID token for an identity."""
        key = await self.keys.active_key(KEY_SET, "id")
        claims = self.open_id_claims(pool, identity_id, amr, seconds, principal_tags)
        return sign_jwt(key, claims), claims

    def open_id_claims(
        self,
        pool: IdentityPoolView,
        identity_id: str,
        amr: Sequence[str],
        seconds: int,
        principal_tags: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The claims of an OpenID token for an identity (what :meth:`mint` signs)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": identity_id,
            "aud": pool.id,
            "amr": list(amr),
            "iss": self.issuer,
            POOL_ARN_CLAIM: self.pools.arn(pool.id),
            "exp": now + seconds,
            "iat": now,
            "jti": random_uuid(),
        }
        if principal_tags:
            # Session tags as AssumeRoleWithWebIdentity reads them from a web identity token.
            claims[TAGS_CLAIM] = {"principal_tags": {k: [v] for k, v in principal_tags.items()}}
        return claims

    async def verify_open_id_token(self, token: str, *, pool_id: str | None = None) -> dict[str, Any]:
        """Check one of our OpenID tokens (signature, issuer, expiry, and audience when ``pool_id`` is given)
        and return its claims. What STS calls for AssumeRoleWithWebIdentity with such a token."""
        header, claims, signing_input, signature = _unverified_jwt(token)
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str) or claims.get("iss") != self.issuer:
            raise NotAuthorizedException("Invalid login token. Issuer doesn't match providerName")
        key = await self.keys.key_for(KEY_SET, kid)
        if key is None:
            raise NotAuthorizedException("Invalid login token. Token signature invalid.")
        try:
            key.public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise NotAuthorizedException("Invalid login token. Token signature invalid.") from exc
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp <= time.time():
            raise NotAuthorizedException("Invalid login token. Token expired.")
        if pool_id is not None and claims.get("aud") != pool_id:
            raise NotAuthorizedException("Invalid login token. Incorrect token audience.")
        if not isinstance(claims.get("sub"), str):
            raise NotAuthorizedException("Invalid login token. Not a valid OpenId Connect identity token.")
        return claims

    async def classic_flow_allowed(self, pool_id: str) -> bool:
        """Whether STS may exchange this pool's OpenID tokens itself (the basic, "classic" flow)."""
        try:
            return (await self.pools.get(pool_id)).allow_classic_flow
        except ResourceNotFoundException:
            return False

    # --- logins --------------------------------------------------------------------------------------------

    async def verify_logins(
        self, pool: IdentityPoolView, logins: Mapping[str, str], *, developer: bool = False
    ) -> list[VerifiedLogin]:
        """Verify every login; ``developer``: the call is signed, so the pool's developer provider may name a
        developer user identifier instead of a token."""
        verified = []
        for key in sorted(logins):
            token = logins[key]
            try:
                if not developer:
                    provider = self._user_pool_provider(pool, key)
                    if provider is not None:
                        # A user pool login: the remembered check first (no await when it needs no revocation
                        # check), else the full one.
                        known = self._checked_user_pool_login(pool, key, token)
                        if known is not None and not known[1]:
                            verified.append(known[0])
                        else:
                            verified.append(await self._verify_user_pool_login(pool, key, provider, token, known))
                        continue
                verified.append(await self._verify_login(pool, key, token, developer=developer))
            except (NotAuthorizedException, ExternalServiceException) as exc:
                log.info("identity.login_refused", pool=pool.id, provider=key, reason=exc.message)
                raise
        return verified

    def _known_logins(self, pool: IdentityPoolView, logins: Mapping[str, str]) -> list[VerifiedLogin] | None:
        """What :meth:`verify_logins` answers for an unsigned call when every login is a user pool login whose
        remembered check needs no revocation check (no await: an app's GetCredentialsForIdentity right after
        its GetId), else None."""
        verified = []
        for key in sorted(logins):
            if self._user_pool_provider(pool, key) is None:
                return None
            known = self._checked_user_pool_login(pool, key, logins[key])
            if known is None or known[1]:
                return None
            verified.append(known[0])
        return verified

    async def _verify_login(self, pool: IdentityPoolView, key: str, token: str, *, developer: bool) -> VerifiedLogin:
        if developer and pool.developer_provider and key == pool.developer_provider:
            return VerifiedLogin(
                provider=key,
                subject=token,
                mapping_keys=(key,),
                amr=(key, f"{key}:{pool.id}:{token}"),
                developer=True,
            )
        if key in (COGNITO_IDENTITY_LOGIN, self.login_name):
            claims = await self.verify_open_id_token(token, pool_id=pool.id)
            amr = tuple(str(a) for a in claims.get("amr") or () if a != "authenticated")
            if "authenticated" not in (claims.get("amr") or ()):
                raise NotAuthorizedException("Invalid login token. The token is not an authenticated identity's.")
            return VerifiedLogin(provider=key, subject=claims["sub"], claims=claims, amr=amr, proves=claims["sub"])
        provider = self._user_pool_provider(pool, key)
        if provider is not None:
            return await self._verify_user_pool_login(
                pool, key, provider, token, self._checked_user_pool_login(pool, key, token)
            )
        app_ids = pool.supported_logins.get(key)
        if app_ids is not None and self.social is not None and self.social.supports(key):
            social = await self.social.verify(key, token, app_ids)
            return VerifiedLogin(
                provider=key,
                subject=social.subject,
                claims=social.claims,
                mapping_keys=(key,),
                amr=(key, f"{key}:{social.subject}"),
            )
        if key in pool.saml_provider_arns and self.saml is not None:
            saml = await self.saml(key, token)
            return VerifiedLogin(
                provider=key,
                subject=saml.subject,
                claims=saml.claims,
                amr=(key, f"{key}:{saml.subject}"),
                saml_roles=saml.roles,
            )
        if key in {oidc_provider_host(arn) for arn in pool.oidc_provider_arns} and self.external is not None:
            return await self._verify_external_login(key, token)
        raise NotAuthorizedException(UNSUPPORTED_PROVIDER)

    async def _verify_external_login(self, key: str, token: str) -> VerifiedLogin:
        """A token of a registered IAM OIDC provider (OpenIdConnectProviderARNs): checked against the
        provider's JWKS, its ``aud`` one of the provider's client ids."""
        assert self.external is not None
        name, claims = await self.external(token)
        if name != key:
            raise NotAuthorizedException("Invalid login token. Issuer doesn't match providerName")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise NotAuthorizedException("Invalid login token. Not a valid OpenId Connect identity token.")
        return VerifiedLogin(provider=key, subject=sub, claims=claims, mapping_keys=(key,), amr=(key, f"{key}:{sub}"))

    def _user_pool_provider(self, pool: IdentityPoolView, key: str) -> UserPoolProvider | None:
        """The Gatehouse user pool a Logins key names and what this view of the pool's configuration says
        about it, or None when the key names no user pool; worked out once per view of the pool."""
        plan_key = (pool.id, key)
        found = self._providers.get(plan_key)
        if found is not None and found[0] is pool:
            return found[1]
        names = self.pools.names
        user_pool_id = names.user_pool_of(key)
        provider: UserPoolProvider | None = None
        if user_pool_id is not None:
            clients: dict[object, bool] = {}
            for entry in pool.cognito_providers:
                if names.user_pool_of(str(entry.get("ProviderName"))) == user_pool_id:
                    # The same pool and client may be listed twice (under both its names): a check that either
                    # entry asks for is made.
                    client = entry.get("ClientId")
                    clients[client] = clients.get(client, False) or bool(entry.get("ServerSideTokenCheck"))
            both_names = names.user_pool_names(user_pool_id)
            provider = UserPoolProvider(
                user_pool_id=user_pool_id,
                issuer=self._user_pool_tokens.issuer(user_pool_id),
                canonical=names.user_pool_name(user_pool_id),
                shown=self.pools.shown_name(pool, key, key),
                names=both_names,
                clients=clients,
                mapping_keys={client: tuple(f"{name}:{client}" for name in both_names) for client in clients},
            )
        if len(self._providers) >= PROVIDER_PLANS:
            self._providers.clear()
        self._providers[plan_key] = (pool, provider)
        return provider

    def _checked_user_pool_login(
        self, pool: IdentityPoolView, key: str, token: str
    ) -> tuple[VerifiedLogin, bool] | None:
        """The remembered check of this token against this pool's configuration while the token lives, with
        whether it asks for ServerSideTokenCheck; None (and forgotten) once stale."""
        cache_key = (pool.id, key, token)
        known = self._user_pool_logins.get(cache_key)
        if known is None:
            return None
        checked_with, login, expires, server_side_check = known
        if checked_with is pool and expires > time.time():
            return login, server_side_check
        self._user_pool_logins.drop(cache_key)
        return None

    async def _verify_user_pool_login(
        self,
        pool: IdentityPoolView,
        key: str,
        provider: UserPoolProvider,
        token: str,
        known: tuple[VerifiedLogin, bool] | None,
    ) -> VerifiedLogin:
        """A user pool login: ``known``, the remembered check (:meth:`_checked_user_pool_login`), with its
        revocation check when the pool asks for one; else the full check, then remembered."""
        if known is not None:
            login, server_side_check = known
            if server_side_check:
                await self._check_not_revoked(login.claims)
            return login
        stamp = self._user_pool_logins.stamp()
        login, server_side_check = await self._check_user_pool_login(provider, token)
        expiry = login.claims.get("exp")
        if isinstance(expiry, int):
            self._user_pool_logins.put((pool.id, key, token), (pool, login, expiry, server_side_check), stamp)
        return login

    async def _check_user_pool_login(self, provider: UserPoolProvider, token: str) -> tuple[VerifiedLogin, bool]:
        """A user pool's ID token checked in full; answers the login and whether the pool's entry for its
        client asks for ServerSideTokenCheck (already done here)."""
        if not provider.clients:
            raise NotAuthorizedException(UNSUPPORTED_PROVIDER)
        issuer = provider.issuer
        try:
            claims = await self._user_pool_tokens.verify_jwt(token, pool_id=provider.user_pool_id)
        except NotAuthorizedException as exc:
            # Which check failed, in the order Cognito reports them: the token's form, its issuer, its expiry,
            # else its signature. (Parsed again only on this failure path.)
            _, unverified, _, _ = _unverified_jwt(token)
            if unverified.get("iss") != issuer:
                raise NotAuthorizedException("Invalid login token. Issuer doesn't match providerName") from exc
            if "expired" in exc.message:
                raise NotAuthorizedException("Invalid login token. Token expired.") from exc
            raise NotAuthorizedException("Invalid login token. Token signature invalid.") from exc
        if claims.get("iss") != issuer:
            raise NotAuthorizedException("Invalid login token. Issuer doesn't match providerName")
        if claims.get("token_use") != "id":
            raise NotAuthorizedException("Invalid login token. Not a valid OpenId Connect identity token.")
        audience = claims.get("aud")
        try:
            server_side_check = provider.clients.get(audience)
        except TypeError:  # an unhashable aud (a list, an object) is no ClientId
            server_side_check = None
        azp = claims.get("azp")
        if server_side_check is None or (azp is not None and azp != audience):
            # OpenID Connect Core §2: an ``azp`` other than ``aud`` names the party the token was issued to; the
            # token is that party's, not the configured client's (Cognito's own ID tokens carry no ``azp``: only
            # one derived for another audience by token exchange does).
            raise NotAuthorizedException("Invalid login token. Incorrect token audience.")
        sub = claims.get("sub")
        if not isinstance(sub, str):
            raise NotAuthorizedException("Invalid login token. Not a valid OpenId Connect identity token.")
        if server_side_check:
            await self._check_not_revoked(claims)
        shown = provider.shown
        login = VerifiedLogin(
            provider=provider.canonical,
            subject=sub,
            claims=claims,
            mapping_keys=provider.mapping_keys[audience],
            amr=(shown, f"{shown}:CognitoSignIn:{sub}"),
        )
        return login, server_side_check

    async def _check_not_revoked(self, claims: Mapping[str, Any]) -> None:
        """ServerSideTokenCheck: the sign-in the token came from is still live, and so is its user."""
        origin = claims.get("origin_jti")
        found = await self._store.get_token_family_with_user(origin) if isinstance(origin, str) else None
        if found is None or found[0].revoked:
            raise NotAuthorizedException("Invalid login token. Token has been revoked.")
        user = found[1]
        if user is None or not user.enabled or user.sub != claims.get("sub"):
            raise NotAuthorizedException("Invalid login token. Token has been revoked.")
        if user.tokens_valid_after and int(claims.get("iat", 0)) < int(user.tokens_valid_after):
            raise NotAuthorizedException("Invalid login token. Token has been revoked.")

    def principal_tags(self, pool: IdentityPoolView, verified: Sequence[VerifiedLogin]) -> dict[str, str]:
        """Session tags from the pool's attribute map for the provider signed in with ("Using attributes for
        access control"): the defaults map ``username`` to ``sub`` and ``client`` to ``aud``."""
        tags: dict[str, str] = {}
        if not pool.settings.get("PrincipalTagAttributeMaps"):
            return tags  # no provider has a map: none of its defaults apply either
        for login in verified:
            if login.developer or login.proves is not None:
                continue
            entry = self.pools.principal_tag_map(pool, login.provider)
            mapping: dict[str, str] = {}
            if entry.get("UseDefaults"):
                mapping.update({"username": "sub", "client": "aud"})
            mapping.update(entry.get("PrincipalTags") or {})
            for tag, claim in mapping.items():
                value = login.claims.get(claim)
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    tags[tag] = str(value)
        return tags

    # --- identities ----------------------------------------------------------------------------------------

    def _new(self, pool: IdentityPoolView, logins: Sequence[VerifiedLogin]) -> IdentityRecord:
        now = time.time()
        return IdentityRecord(
            pool_id=pool.id,
            id=f"{pool.region}:{uuid.uuid4()}",
            created_at=now,
            updated_at=now,
            logins=[login.login for login in logins],
        )

    def _cached_identity(self, identity_id: str) -> tuple[IdentityPoolView, IdentityRecord] | None:
        """The identity and its pool when this process's short-lived caches have both (no await), else None:
        then :meth:`identity` reads them."""
        record = self._identities.get(identity_id)
        if record is None:
            return None
        pool = self.pools.cached(record.pool_id)
        return (pool, record) if pool is not None else None

    async def identity(self, identity_id: str, *, cached: bool = False) -> tuple[IdentityPoolView, IdentityRecord]:
        """The identity and its pool; ``cached``: the identity from this process's short-lived cache."""
        record = self._identities.get(identity_id) if cached else None
        if record is not None:
            pool = self.pools.cached(record.pool_id)
            if pool is not None:
                return pool, record
            try:
                return await self.pools.get(record.pool_id), record
            except ResourceNotFoundException:
                self._forget()  # the pool is gone: read again, so the answer names what is missing
        stamp = self._identities.stamp()
        record = await self._store.get_identity(identity_id)
        if record is None:
            raise ResourceNotFoundException(f"Identity '{identity_id}' not found.")
        self._identities.put(identity_id, record, stamp)
        return await self.pools.get(record.pool_id), record

    async def _linked(self, pool: IdentityPoolView, logins: Sequence[VerifiedLogin]) -> IdentityRecord | None:
        """The enabled identity every one of these logins is already linked to, found with reads only (a
        returning user's GetId, the common case), or None: then :meth:`_resolve` decides in a write
        transaction (a new login, logins of several identities, or a race with another writer)."""
        found: IdentityRecord | None = None
        for login in logins:
            record = self._cached_by_login(pool.id, login.login) or await self._find_by_login(pool.id, login.login)
            if record is None or record.disabled or (found is not None and record.id != found.id):
                return None
            found = record
        return found

    def _cached_by_login(self, pool_id: str, login: IdentityLogin) -> IdentityRecord | None:
        """The identity a login is linked to, if the short-lived cache has it (no await), else None."""
        identity_id = self._by_login.get((pool_id, login.provider, login.subject))
        if identity_id is not None:
            record = self._identities.get(identity_id)
            if record is not None and record.pool_id == pool_id and login in record.logins:
                return record
        return None

    async def _find_by_login(self, pool_id: str, login: IdentityLogin) -> IdentityRecord | None:
        """The identity a login is linked to, through the short-lived cache."""
        record = self._cached_by_login(pool_id, login)
        if record is not None:
            return record
        stamp = self._identities.stamp()  # the IDENTITIES slot, which both caches follow
        record = await self._store.find_identity_by_login(pool_id, login)
        if record is not None:
            self._identities.put(record.id, record, stamp)
            self._by_login.put((pool_id, login.provider, login.subject), record.id, stamp)
        return record

    @staticmethod
    def _one_user_per_provider(pool: IdentityPoolView, logins: Sequence[IdentityLogin]) -> None:
        """An identity holds one user of each provider (the developer provider aside, whose several user
        identifiers one identity may have): logins of two users of one provider -- e.g. a user pool's under its
        two names -- are a conflict, as MergeDeveloperIdentities answers for them."""
        developer = pool.developer_provider
        seen: dict[str, str] = {}
        for login in logins:
            if login.provider != developer and seen.setdefault(login.provider, login.subject) != login.subject:
                raise ResourceConflictException(
                    f"The logins name two users of {login.provider}: an identity has one user of each provider."
                )

    async def _owners_allow(self, pool: IdentityPoolView, logins: Sequence[VerifiedLogin]) -> None:
        """Before several logins are resolved together: with each other, and with the identity one of them is
        linked to already, they name one user of each provider (:meth:`_one_user_per_provider`)."""
        if len(logins) < 2:
            return
        mine = [v.login for v in logins]
        self._one_user_per_provider(pool, mine)
        for login in mine:
            owner = await self._find_by_login(pool.id, login)
            if owner is not None:
                self._one_user_per_provider(pool, [*owner.logins, *mine])

    async def _resolve(self, pool: IdentityPoolView, logins: Sequence[VerifiedLogin]) -> IdentityRecord:
        await self._owners_allow(pool, logins)
        self._forget()
        try:
            return await self._store.resolve_identity(self._new(pool, logins))
        except AlreadyExists as exc:
            raise ResourceConflictException("Logins belong to different identities.") from exc
        except NotFound as exc:
            raise ResourceNotFoundException(f"IdentityPool '{pool.id}' not found.") from exc

    def _check_new_logins(self, pool: IdentityPoolView, identity: IdentityRecord, new: Sequence[IdentityLogin]) -> None:
        """What linking ``new`` to the identity must respect, checked without a write."""
        self._one_user_per_provider(pool, [*identity.logins, *new])
        if len(identity.logins) + len(new) > MAX_LINKED_LOGINS:
            raise InvalidParameterException(f"An identity can have at most {MAX_LINKED_LOGINS} linked logins.")

    async def _check_link(
        self, pool: IdentityPoolView, identity: IdentityRecord, logins: Sequence[VerifiedLogin]
    ) -> None:
        """Before a call that links ``logins`` does anything else: they may be linked to the identity (as
        :meth:`_link` will find when it writes, unless another writer came in between)."""
        new = [v.login for v in logins if v.login not in identity.logins]
        self._check_new_logins(pool, identity, new)
        for login in new:
            owner = await self._find_by_login(pool.id, login)
            if owner is not None and owner.id != identity.id:
                log.info("identity.link_conflict", pool=pool.id, identity=identity.id, providers=[login.provider])
                raise ResourceConflictException("The login is already linked to another identity.")

    async def _link(
        self, pool: IdentityPoolView, identity: IdentityRecord, logins: Sequence[VerifiedLogin]
    ) -> IdentityRecord:
        new = [v.login for v in logins if v.login not in identity.logins]
        if not new:
            return identity
        self._check_new_logins(pool, identity, new)
        self._forget()
        try:
            linked = await self._store.link_logins(pool.id, identity.id, new, time.time())
        except AlreadyExists as exc:
            log.info(
                "identity.link_conflict", pool=pool.id, identity=identity.id, providers=[v.provider for v in logins]
            )
            if await self._developer_user_taken(pool, identity, logins):
                raise DeveloperUserAlreadyRegisteredException(
                    "The developer user identifier is already registered with another identity."
                ) from exc
            raise ResourceConflictException("The login is already linked to another identity.") from exc
        except NotFound as exc:
            raise ResourceNotFoundException(f"Identity '{identity.id}' not found.") from exc
        # A guest identity given its first login is authenticated from now on ("Access to Identity ... is
        # forbidden" without one): no process may keep answering from its cached guest copy.
        self._changed()
        return linked

    async def _link_last(self, pool: IdentityPoolView, identity_id: str, logins: Sequence[VerifiedLogin]) -> None:
        """Link the new logins of a call that is otherwise done, to the identity as it is now: read afresh, since
        the call began with what may be a cached copy, and another call may have linked a login of the same
        provider, or unlinked the last one (an inaccessible identity is not reopened), in between."""
        record = await self._store.get_identity(identity_id)
        if record is None:
            raise ResourceNotFoundException(f"Identity '{identity_id}' not found.")
        if record.disabled:
            log.info("identity.access_refused", pool=pool.id, identity=identity_id, reason="inaccessible")
            raise NotAuthorizedException(f"Access to Identity '{identity_id}' is forbidden.")
        await self._link(pool, record, logins)

    async def _developer_user_taken(
        self, pool: IdentityPoolView, identity: IdentityRecord, logins: Sequence[VerifiedLogin]
    ) -> bool:
        """After a refused link: whether a developer user identifier among ``logins`` is another identity's
        (DeveloperUserAlreadyRegisteredException) rather than a public login (ResourceConflictException)."""
        for v in logins:
            if v.developer:
                owner = await self._store.find_identity_by_login(pool.id, v.login)
                if owner is not None and owner.id != identity.id:
                    return True
        return False

    async def get_id(self, pool_id: str, logins: Mapping[str, str]) -> str:
        """GetId: the identity of these logins (made on first sight), or a new guest identity."""
        pool = self.pools.cached(pool_id) or await self.pools.get(pool_id)
        verified = await self.verify_logins(pool, logins)
        if not verified:
            if not pool.allow_unauthenticated:
                log.info("identity.guest_refused", pool=pool.id)
                raise NotAuthorizedException("Unauthenticated access is not supported for this identity pool.")
            identity = await self._resolve(pool, [])
        elif len(verified) == 1 and verified[0].proves is None:
            # One login, of a provider (the common case): its identity, found with reads only when linked.
            identity = await self._linked(pool, verified) or await self._resolve(pool, verified)
        else:
            proven = {v.proves for v in verified if v.proves is not None}
            linkable = [v for v in verified if v.proves is None]
            if len(proven) > 1:
                raise NotAuthorizedException(LOGINS_DO_NOT_MATCH)
            if proven:
                identity = (await self.identity(proven.pop()))[1]
                if identity.disabled:
                    # Its last login was unlinked: inaccessible (UnlinkIdentity), even to its earlier tokens.
                    raise NotAuthorizedException(f"Access to Identity '{identity.id}' is forbidden.")
                identity = await self._link(pool, identity, linkable)
            else:
                identity = await self._linked(pool, linkable) or await self._resolve(pool, linkable)
        # log.bind().info is what log.info resolves to through structlog's lazy proxy, without the failed
        # attribute look-up on the way (this runs for every GetId).
        log.bind().info(
            "identity.resolved", pool=pool.id, identity=identity.id, providers=[v.provider for v in verified]
        )
        return identity.id

    async def authenticate(
        self, identity_id: str, logins: Mapping[str, str], *, cached: bool = True
    ) -> tuple[IdentityPoolView, IdentityRecord, list[VerifiedLogin], Sequence[VerifiedLogin]]:
        """What GetOpenIdToken and GetCredentialsForIdentity share: the identity, reached with one of its
        logins, or as a guest; and the new logins to link to it once the call succeeds (:meth:`_link`): they
        are checked here (one user per provider, the limit, not another identity's) but written by the caller
        last, so that a call refused later -- at the role, the trust policy -- leaves the store as it was.
        ``cached``: the identity may come from this process's short-lived cache (a writer that acts on its
        logins reads it fresh)."""
        found = self._cached_identity(identity_id) if cached else None
        pool, identity = found if found is not None else await self.identity(identity_id, cached=cached)
        remembered = self._known_logins(pool, logins)
        verified = remembered if remembered is not None else await self.verify_logins(pool, logins)

        def refuse(message: str) -> NotAuthorizedException:
            log.info("identity.access_refused", pool=pool.id, identity=identity_id, reason=message)
            return NotAuthorizedException(message)

        if not verified:
            if identity.logins or identity.disabled:
                raise refuse(f"Access to Identity '{identity_id}' is forbidden.")
            if not pool.allow_unauthenticated:
                raise refuse("Unauthenticated access is not supported for this identity pool.")
            return pool, identity, [], ()
        if identity.disabled:
            raise refuse(f"Access to Identity '{identity_id}' is forbidden.")
        # One pass (this runs on every GetCredentialsForIdentity): a login proving another identity is refused;
        # the others are linked to this one, or are to be.
        linked = identity.logins
        linkable: list[VerifiedLogin] = []
        unlinked = False
        known = False
        for v in verified:
            if v.proves is None:
                linkable.append(v)
                if v.login in linked:
                    known = True
                else:
                    unlinked = True
            elif v.proves != identity.id:
                raise refuse(LOGINS_DO_NOT_MATCH)
            else:
                known = True
        # Knowing an identity id is not enough: an identity with logins is reached only with one of them.
        if linked and not known:
            raise refuse(LOGINS_DO_NOT_MATCH)
        if unlinked:
            await self._check_link(pool, identity, linkable)
            return pool, identity, verified, linkable
        return pool, identity, verified, ()

    @staticmethod
    def amr(verified: Sequence[VerifiedLogin]) -> list[str]:
        if not verified:
            return ["unauthenticated"]
        entries = ["authenticated"]
        for login in verified:
            entries += [a for a in login.amr if a not in entries]
        return entries

    async def get_open_id_token(self, identity_id: str, logins: Mapping[str, str]) -> tuple[str, str]:
        """GetOpenIdToken, the first step of the basic (classic) flow: only for a pool that enables that flow
        (AllowClassicFlow) and has no RoleMappings, as Cognito answers ("Identity pools authentication flow":
        role-based access control works in the enhanced flow only). Checked before the logins, so a refused
        call links nothing."""
        found = self._cached_identity(identity_id)
        pool, _ = found if found is not None else await self.identity(identity_id, cached=True)
        if not pool.allow_classic_flow:
            raise InvalidParameterException(CLASSIC_FLOW_DISABLED)
        if pool.role_mappings:
            raise InvalidParameterException(CLASSIC_FLOW_WITH_ROLE_MAPPINGS)
        pool, identity, verified, new = await self.authenticate(identity_id, logins)
        tags = self.principal_tags(pool, verified)
        token, _ = await self.mint(pool, identity.id, self.amr(verified), OPEN_ID_TOKEN_SECONDS, tags)
        if new:
            await self._link_last(pool, identity.id, new)
        return identity.id, token

    async def get_open_id_token_for_developer_identity(
        self,
        pool_id: str,
        identity_id: str | None,
        logins: Mapping[str, str],
        principal_tags: Mapping[str, str] | None,
        duration: int | None,
    ) -> tuple[str, str]:
        pool = await self.pools.get(pool_id)
        if not pool.developer_provider:
            raise InvalidParameterException("The identity pool has no DeveloperProviderName.")
        verified = await self.verify_logins(pool, logins, developer=True)
        if not verified:
            raise InvalidParameterException("Logins must name at least one login.")
        if any(v.proves is not None for v in verified):
            raise NotAuthorizedException(UNSUPPORTED_PROVIDER)
        if identity_id is not None:
            identity_pool, identity = await self.identity(identity_id)
            if identity_pool.id != pool.id:
                raise ResourceNotFoundException(f"Identity '{identity_id}' not found.")
            if identity.disabled:
                # Its last login was unlinked: "this identity becomes inaccessible" (UnlinkIdentity,
                # UnlinkDeveloperIdentity), to the developer's calls as to an app's; its logins make a new one.
                log.info("identity.access_refused", pool=pool.id, identity=identity.id, reason="inaccessible")
                raise NotAuthorizedException(f"Access to Identity '{identity.id}' is forbidden.")
            identity = await self._link(pool, identity, verified)
        else:
            await self._owners_allow(pool, verified)
            self._forget()
            try:
                identity = await self._store.resolve_identity(self._new(pool, verified))
            except AlreadyExists as exc:
                raise ResourceConflictException("Logins belong to different identities.") from exc
        tags = {**self.principal_tags(pool, verified), **(principal_tags or {})}
        token, _ = await self.mint(pool, identity.id, self.amr(verified), duration or DEVELOPER_TOKEN_SECONDS, tags)
        log.info("identity.developer_token_issued", pool=pool.id, identity=identity.id)
        return identity.id, token

    async def grant(
        self, identity_id: str, logins: Mapping[str, str], custom_role_arn: str | None
    ) -> tuple[CredentialsGrant, IdentityRecord, Sequence[VerifiedLogin]]:
        """GetCredentialsForIdentity up to the role: authenticate, choose the role, and gather what the OpenID
        token that STS would exchange for the role's credentials would say (see CredentialsGrant). Answers
        too the identity and the new logins to link to it once the credentials are minted."""
        pool, identity, verified, new = await self.authenticate(identity_id, logins)
        saml: VerifiedLogin | None = None
        mapped: list[VerifiedLogin] = []
        proving = False
        for v in verified:
            if saml is None and v.saml_roles is not None:
                saml = v
            if v.mapping_keys:
                mapped.append(v)
            elif v.proves is not None:
                proving = True
        if saml is not None:
            role = self._saml_role(pool, identity, saml, custom_role_arn)
            tags = self.principal_tags(pool, verified)
            return CredentialsGrant(identity.id, pool, role, True, tuple(self.amr(verified)), tags), identity, new
        # The login whose provider's RoleMappings entry decides (the first that has one), judged by its own
        # token's claims: another provider's token must never answer for it ("Role-based access control").
        deciding = mapped[0] if mapped else None
        if len(mapped) > 1:
            mappings = pool.settings.get("RoleMappings") or {}
            deciding = next((v for v in mapped if any(k in mappings for k in v.mapping_keys)), deciding)
        mapping_keys = deciding.mapping_keys if deciding is not None else ()
        claims: Mapping[str, Any] = deciding.claims if deciding is not None else {}
        if proving:
            # A login proving the identity with one of our own OpenID tokens: its ``amr`` names the providers
            # it was issued for, but not their claims. Their RoleMappings entry still decides when no other
            # login's does (no rule matches, so AmbiguousRoleResolution does): else the token would side-step
            # a mapping that denies.
            mappings = pool.settings.get("RoleMappings") or {}
            if not any(key in mappings for key in mapping_keys):
                proof_keys = self._mapping_keys_of_proofs(pool, verified)
                if proof_keys:
                    mapping_keys, claims = proof_keys, {}
        try:
            role = choose_role(
                pool,
                authenticated=bool(verified),
                mapping_keys=mapping_keys,
                claims=claims,
                custom_role_arn=custom_role_arn,
            )
        except GatehouseError as exc:
            log.info("identity.role_refused", pool=pool.id, identity=identity.id, reason=exc.message)
            raise
        tags = self.principal_tags(pool, verified)
        if proving:
            tags.update(self._carried_tags(verified))
        grant = CredentialsGrant(identity.id, pool, role, bool(verified), tuple(self.amr(verified)), tags)
        return grant, identity, new

    @staticmethod
    def _carried_tags(verified: Sequence[VerifiedLogin]) -> dict[str, str]:
        """The principal tags in the OpenID tokens that prove the identity (GetOpenIdTokenForDeveloperIdentity's
        PrincipalTags, "attribute mappings for custom providers"): the session carries them, as STS would
        carry them from the same token in the basic flow."""
        tags: dict[str, str] = {}
        for login in verified:
            if login.proves is None:
                continue
            carried = login.claims.get(TAGS_CLAIM)
            principal = carried.get("principal_tags") if isinstance(carried, dict) else None
            if isinstance(principal, dict):
                for key, values in principal.items():
                    if isinstance(values, list) and len(values) == 1 and isinstance(values[0], str):
                        tags[str(key)] = values[0]
        return tags

    def _mapping_keys_of_proofs(self, pool: IdentityPoolView, verified: Sequence[VerifiedLogin]) -> tuple[str, ...]:
        """The pool's RoleMappings keys for the providers named in the ``amr`` of the logins that prove the
        identity with an OpenID token (``<user pool name>:<ClientId>`` keys by their user pool)."""
        mappings: Mapping[str, Any] = pool.settings.get("RoleMappings") or {}
        if not mappings:
            return ()
        names = self.pools.names
        # Either name of a user pool (the token's ``amr`` has the one the pool listed it under when it was issued).
        providers = set()
        for entry in (a for v in verified if v.proves is not None for a in v.amr):
            user_pool_id = names.user_pool_of(entry)
            providers.add(names.user_pool_name(user_pool_id) if user_pool_id else entry)
        keys = []
        for key in mappings:
            user_pool_id = names.user_pool_of(key.rpartition(":")[0])
            if (names.user_pool_name(user_pool_id) if user_pool_id else key) in providers:
                keys.append(key)
        return tuple(keys)

    @staticmethod
    def _saml_role(
        pool: IdentityPoolView, identity: IdentityRecord, login: VerifiedLogin, custom_role_arn: str | None
    ) -> RoleChoice:
        """A SAML login's role comes from its assertion: the CustomRoleArn among the roles it offers, or its
        only role ("CustomRoleArn ... when multiple roles were received ... for example, a SAML-based identity
        provider", GetCredentialsForIdentity)."""
        roles = login.saml_roles or ()
        if custom_role_arn is not None:
            if custom_role_arn not in roles:
                log.info("identity.role_refused", pool=pool.id, identity=identity.id, reason="not in the assertion")
                raise NotAuthorizedException(f"Access to Role '{custom_role_arn}' is forbidden.")
            return RoleChoice(custom_role_arn, login.provider)
        if len(roles) == 1:
            return RoleChoice(roles[0], login.provider)
        if not roles:
            raise InvalidIdentityPoolConfigurationException("The SAML assertion offers no role for this provider.")
        raise InvalidParameterException("The SAML assertion offers several roles: choose one with CustomRoleArn.")

    async def credentials_for_identity(
        self, identity_id: str, logins: Mapping[str, str], custom_role_arn: str | None
    ) -> tuple[str, dict[str, Any]]:
        """GetCredentialsForIdentity: the grant, exchanged for the role's temporary credentials."""
        grant, identity, new = await self.grant(identity_id, logins, custom_role_arn)
        if self.credentials is None:
            raise InternalErrorException("Temporary credentials are not available on this server.")
        labels = {"pool": grant.pool.id, "identity": grant.identity_id, "role": grant.role.role_arn}
        try:
            credentials = await self.credentials.credentials_for(grant)
        except GatehouseError as exc:
            log.info("identity.credentials_refused", reason=exc.type_name, **labels)
            raise
        if new:
            # Last: a call refused at the role or the trust policy links nothing ("Supplying multiple logins
            # creates an implicit link" -- of a call that succeeds); a link refused now discards the credentials.
            await self._link_last(grant.pool, identity.id, new)
        log.bind().info("identity.credentials_issued", authenticated=grant.authenticated, **labels)  # as in get_id
        return grant.identity_id, credentials

    async def unlink_identity(self, identity_id: str, logins: Mapping[str, str], remove: Sequence[str]) -> None:
        """UnlinkIdentity: the caller proves the identity with its logins; the named providers' logins go.
        Removing the last login leaves the identity disabled (unreachable), as in Cognito. A developer provider
        is not named here: its user identifiers are the developer's (UnlinkDeveloperIdentity, signed)."""
        pool, identity, verified, _ = await self.authenticate(identity_id, logins, cached=False)
        # The Logins authorise the call, they link nothing: one of them must be linked to the identity (or prove
        # it with its OpenID token) -- a guest identity, which has none, is not unlinked by a stranger's login.
        if not any(v.proves == identity.id or v.login in identity.logins for v in verified):
            log.info("identity.access_refused", pool=pool.id, identity=identity.id, reason=LOGINS_DO_NOT_MATCH)
            raise NotAuthorizedException(LOGINS_DO_NOT_MATCH)
        names = set()
        for name in remove:
            user_pool_id = self.pools.names.user_pool_of(name)
            names.add(self.pools.names.user_pool_name(user_pool_id) if user_pool_id else name)
        developer = pool.developer_provider
        if developer is not None and developer in names:
            # A developer user identifier is the developer's to unlink (UnlinkDeveloperIdentity, a signed call),
            # never an app's with the logins it holds.
            log.info("identity.access_refused", pool=pool.id, identity=identity.id, reason="developer login")
            raise NotAuthorizedException(
                f"Logins of the developer provider '{developer}' are unlinked with UnlinkDeveloperIdentity."
            )
        gone = [login for login in identity.logins if login.provider in names]
        if not gone:
            return  # nothing of the identity's is named: nothing changes
        self._forget()
        await self._store.unlink_logins(pool.id, identity.id, gone, time.time())
        self._changed()
        log.info("identity.unlinked", pool=pool.id, identity=identity.id, providers=sorted(names))

    # --- administration --------------------------------------------------------------------------------------

    def description(self, identity: IdentityRecord, pool: IdentityPoolView | None = None) -> dict[str, Any]:
        """DescribeIdentity's answer (and ListIdentities' entries): the linked logins' providers named as the
        pool's configuration names them (IdentityPoolService.shown_name); ``pool``: the identity's pool, else
        this process's cached view of it (read just before by the caller), else the names as recorded."""
        pool = pool or self.pools.cached(identity.pool_id)
        recorded = dict.fromkeys(login.provider for login in identity.logins)
        providers = list(dict.fromkeys(self.pools.shown_name(pool, p) if pool else p for p in recorded))
        return {
            "IdentityId": identity.id,
            "Logins": providers,
            "CreationDate": identity.created_at,
            "LastModifiedDate": identity.updated_at,
        }

    async def list_identities(
        self, pool_id: str, after: str | None, limit: int, *, hide_disabled: bool
    ) -> tuple[list[IdentityRecord], str | None]:
        await self.pools.get(pool_id)
        page = await self._store.list_identities(pool_id, after, limit, hide_disabled=hide_disabled)
        return page.items, page.next_token

    async def delete(self, identity_ids: Sequence[str]) -> list[str]:
        self._forget()
        deleted = await self._store.delete_identities(list(identity_ids))
        self._changed()
        return deleted

    async def _developer_pool(self, pool_id: str, provider: str | None = None) -> tuple[IdentityPoolView, str]:
        pool = await self.pools.get(pool_id)
        developer = pool.developer_provider
        if not developer:
            raise ResourceNotFoundException("The identity pool has no DeveloperProviderName.")
        if provider is not None and provider != developer:
            raise ResourceNotFoundException(f"DeveloperProviderName '{provider}' is not this identity pool's.")
        return pool, developer

    async def lookup_developer_identity(
        self, pool_id: str, identity_id: str | None, user: str | None
    ) -> tuple[str, list[str]]:
        """LookupDeveloperIdentity: an identity and its developer user identifiers, found by either."""
        pool, developer = await self._developer_pool(pool_id)
        if identity_id is None and user is None:
            raise InvalidParameterException("Either IdentityId or DeveloperUserIdentifier must be given.")
        identity: IdentityRecord | None
        if user is not None:
            identity = await self._store.find_identity_by_login(pool.id, IdentityLogin(developer, user))
            if identity is None:
                raise ResourceNotFoundException("The developer user identifier is not registered.")
            if identity_id is not None and identity.id != identity_id:
                raise ResourceConflictException("The developer user identifier belongs to another identity.")
        else:
            assert identity_id is not None
            identity_pool, identity = await self.identity(identity_id)
            if identity_pool.id != pool.id:
                raise ResourceNotFoundException(f"Identity '{identity_id}' not found.")
        return identity.id, [login.subject for login in identity.logins if login.provider == developer]

    async def merge_developer_identities(self, pool_id: str, provider: str, source: str, destination: str) -> str:
        """MergeDeveloperIdentities: the source user's identity's logins move to the destination user's
        identity; a public provider linked to both as different users is a conflict."""
        pool, developer = await self._developer_pool(pool_id, provider)
        target = await self._store.find_identity_by_login(pool.id, IdentityLogin(developer, destination))
        origin = await self._store.find_identity_by_login(pool.id, IdentityLogin(developer, source))
        if target is None or origin is None:
            raise ResourceNotFoundException("The developer user identifier is not registered.")
        if origin.id == target.id:
            return target.id
        target_providers = {login.provider: login.subject for login in target.logins if login.provider != developer}
        for login in origin.logins:
            if login.provider in target_providers and target_providers[login.provider] != login.subject:
                raise ResourceConflictException(
                    f"Both users are linked to {login.provider} as different users and cannot be merged."
                )
        if len({*target.logins, *origin.logins}) > MAX_LINKED_LOGINS:
            raise InvalidParameterException(f"An identity can have at most {MAX_LINKED_LOGINS} linked logins.")
        self._forget()
        try:
            merged = await self._store.move_logins(pool.id, list(origin.logins), target.id, time.time())
        except NotFound as exc:
            raise ResourceNotFoundException("The destination identity no longer exists.") from exc
        self._changed()
        log.info("identity.merged", pool=pool.id, source=origin.id, destination=merged.id)
        return merged.id

    async def unlink_developer_identity(self, identity_id: str, pool_id: str, provider: str, user: str) -> None:
        pool, developer = await self._developer_pool(pool_id, provider)
        identity_pool, identity = await self.identity(identity_id)
        login = IdentityLogin(developer, user)
        if identity_pool.id != pool.id or login not in identity.logins:
            raise ResourceNotFoundException("The developer user identifier is not linked to this identity.")
        self._forget()
        await self._store.unlink_logins(pool.id, identity.id, [login], time.time())
        self._changed()
