"""Temporary credentials for identity pool identities, through Gatehouse's IAM and STS services.

* Enhanced flow (GetCredentialsForIdentity): once the identity is authenticated and its role chosen
  (:meth:`gateway.services.identities.IdentityService.grant`), the role's trust policy is evaluated as STS's
  AssumeRoleWithWebIdentity evaluates it for the identity's OpenID token -- federated principal
  ``cognito-identity.amazonaws.com``, condition keys ``cognito-identity.amazonaws.com:aud`` (the identity
  pool id), ``:sub`` (the identity id) and ``:amr`` -- and one-hour credentials are minted for the session
  ``CognitoIdentityCredentials``, as Cognito does. A role that does not exist or does not trust the pool is
  Cognito's InvalidIdentityPoolConfigurationException.
* Basic ("classic") flow: the identity issuer is registered with STS's web identity verifier, so
  AssumeRoleWithWebIdentity accepts an OpenID token from GetOpenIdToken -- only for identity pools with
  AllowClassicFlow, as Cognito's "Identity pools authentication flow" describes.
* Logins from IAM OIDC providers (OpenIdConnectProviderARNs): checked by STS's web identity verifier, and an
  identity pool may name only providers registered in IAM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from gateway.errors import (
    ExpiredTokenException,
    ExternalServiceException,
    GatehouseError,
    IDPCommunicationErrorException,
    InvalidIdentityPoolConfigurationException,
    InvalidIdentityTokenException,
    InvalidParameterValueException,
    NotAuthorizedException,
    PackedPolicyTooLargeException,
    ValidationError,
)
from gateway.services.credentials import CredentialService
from gateway.services.iam import COGNITO_IDENTITY_PROVIDER, IamService, Role, WebIdentity
from gateway.services.identities import CredentialsGrant, IdentityService, SamlLogin
from gateway.services.saml_federation import SamlVerifier
from gateway.services.web_identity import WebIdentityVerifier

SESSION_NAME: Final = "CognitoIdentityCredentials"
SESSION_SECONDS: Final = 3600
# The condition keys (lower-cased) of a GetCredentialsForIdentity trust check whose values every identity of a
# pool that signed in the same way shares: the pool (aud) and the sign-in's kind (amr).
POOL_WIDE_KEYS: Final = frozenset({f"{COGNITO_IDENTITY_PROVIDER}:aud", f"{COGNITO_IDENTITY_PROVIDER}:amr"})
# How many (role, pool, amr) verdicts a process keeps.
TRUST_VERDICTS: Final = 1024


class PoolTrust:
    """Trust checks of identity pool credentials, remembered where they cannot differ between identities or
    over time: a trust policy that reads no condition key but ``aud`` and ``amr`` (as the Cognito console writes
    it) gives one verdict for a role ARN, a pool and a sign-in kind, whoever the identity and whenever the call.
    The verdict is kept with the parsed policy it came from, so a changed trust policy is evaluated afresh; a
    policy that reads anything else (``sub``, the time, tags ...) and a check with session tags are evaluated
    every time."""

    def __init__(self, size: int = TRUST_VERDICTS) -> None:
        self._size = size
        self._verdicts: dict[tuple[str, str, tuple[str, ...]], tuple[object, bool]] = {}

    def allows(
        self,
        role: Role,
        pool_id: str,
        amr: tuple[str, ...],
        tags: Mapping[str, str],
        decide: Callable[[], bool],
    ) -> bool:
        """``decide()`` (the full trust check of this call), or its remembered verdict when it cannot differ."""
        policy = role.trust_policy
        if tags or not policy.context_keys_read <= POOL_WIDE_KEYS:
            return decide()
        key = (role.arn, pool_id, amr)
        known = self._verdicts.get(key)
        if known is not None and known[0] is policy:
            return known[1]
        allowed = decide()
        if len(self._verdicts) >= self._size:
            self._verdicts.clear()
        self._verdicts[key] = (policy, allowed)
        return allowed


class IdentityCredentials:
    """The :class:`~gateway.services.identities.CredentialsIssuer` backed by IAM roles and STS sessions."""

    def __init__(self, iam: IamService, credentials: CredentialService, identities: IdentityService) -> None:
        self._iam = iam
        self._credentials = credentials
        self._identities = identities
        self._web_identity: WebIdentityVerifier | None = None
        self._saml: SamlVerifier | None = None
        self._trust = PoolTrust()

    def install(self, web_identity: WebIdentityVerifier, saml: SamlVerifier | None = None) -> None:
        """Make GetCredentialsForIdentity mint credentials, let identity pools take logins from IAM OIDC
        providers, and let STS take the identity issuer's tokens."""
        self._web_identity = web_identity
        self._saml = saml
        self._identities.credentials = self
        self._identities.external = self.verify_external
        self._identities.pools.provider_exists = self.provider_exists
        self._identities.saml = self.verify_saml
        web_identity.register_issuer(self._identities.issuer, self.verify_classic, provider=COGNITO_IDENTITY_PROVIDER)

    async def provider_exists(self, arn: str) -> bool:
        """Whether an IAM OIDC or SAML provider ARN names a registered provider."""
        if ":saml-provider/" in arn:
            return await self._iam.find_saml_provider(arn) is not None
        try:
            await self._iam.get_oidc_provider(arn)
        except GatehouseError:  # NoSuchEntity, or an ARN of another account
            return False
        return True

    async def verify_saml(self, provider_arn: str, saml_response: str) -> SamlLogin:
        """A login with a SAML Response of an IAM SAML provider, checked as AssumeRoleWithSAML checks it
        (signature against the provider's metadata, audience, recipient, lifetime). Unlike STS it is not
        one-use: an app sends the same Logins to GetId and then GetCredentialsForIdentity."""
        if self._saml is None:
            raise NotAuthorizedException("Token is not from a supported provider of this identity pool.")
        provider = await self._iam.find_saml_provider(provider_arn)
        if provider is None:
            raise NotAuthorizedException("Invalid login token. The SAML provider does not exist.")
        try:
            assertion = await self._saml.verify(provider.name, provider.updated_at, provider.metadata, saml_response)
        except ExpiredTokenException as exc:
            raise NotAuthorizedException("Invalid login token. Token expired.") from exc
        except InvalidIdentityTokenException as exc:
            raise NotAuthorizedException(f"Invalid login token. {exc.message}") from exc
        roles = tuple(role for role, provider_of in assertion.role_pairs() if provider_of == provider_arn)
        claims = {
            "sub": assertion.subject,
            "iss": assertion.issuer,
            **{k: v[0] for k, v in assertion.attributes.items() if v},
        }
        return SamlLogin(assertion.subject, roles, claims)

    async def verify_external(self, token: str) -> tuple[str, dict[str, Any]]:
        """A login token from an IAM OIDC provider, checked as STS checks web identity tokens (the provider's
        JWKS, ``aud`` among its client ids, expiry); STS's errors become Cognito's."""
        if self._web_identity is None:
            raise NotAuthorizedException("Token is not from a supported provider of this identity pool.")
        try:
            verified = await self._web_identity.verify(token)
        except ExpiredTokenException as exc:
            raise NotAuthorizedException("Invalid login token. Token expired.") from exc
        except IDPCommunicationErrorException as exc:
            raise ExternalServiceException("The identity provider could not be reached to check the token.") from exc
        except (InvalidIdentityTokenException, NotAuthorizedException) as exc:
            raise NotAuthorizedException(f"Invalid login token. {exc.message}") from exc
        return verified.identity.provider, verified.claims

    async def credentials_for(self, grant: CredentialsGrant) -> dict[str, Any]:
        role = self._iam.cached_role_by_arn(grant.role.role_arn) or await self._iam.find_role_by_arn(
            grant.role.role_arn, cached=True
        )
        if role is None:
            raise InvalidIdentityPoolConfigurationException()
        identity = WebIdentity(
            provider=COGNITO_IDENTITY_PROVIDER,
            subject=grant.identity_id,
            audience=(grant.pool.id,),
            amr=grant.amr,
        )
        # The identity's condition keys, made once: what the trust policy is evaluated against, and what the
        # session carries for later policy checks.
        keys = identity.context_keys(self._iam.account_id)
        tags = grant.principal_tags
        if not self._trust.allows(
            role,
            grant.pool.id,
            grant.amr,
            tags,
            lambda: self._iam.trust_allows(role, identity, request_tags=tags or None, identity_keys=keys),
        ):
            raise InvalidIdentityPoolConfigurationException()
        try:
            minted = await self._credentials.mint(
                role,
                session_name=SESSION_NAME,
                identity_id=grant.identity_id,
                principal_tags=grant.principal_tags,
                duration_seconds=min(SESSION_SECONDS, role.max_session_duration),
                federation_keys=keys,
                guest="unauthenticated" in grant.amr,
            )
        except (ValidationError, PackedPolicyTooLargeException, InvalidParameterValueException) as exc:
            # Session tags (from the pool's attribute map or a developer's PrincipalTags) beyond STS's limits or
            # with keys STS refuses: Cognito's answer when "STS returned an error response to the request to
            # assume the role" (GetCredentialsForIdentity).
            raise InvalidIdentityPoolConfigurationException(exc.message) from exc
        return {
            "AccessKeyId": minted.access_key_id,
            "SecretKey": minted.secret_access_key,
            "SessionToken": minted.session_token,
            "Expiration": minted.expiration.timestamp(),
        }

    async def verify_classic(self, token: str) -> dict[str, Any]:
        """STS's check of an identity pool OpenID token (the basic flow): valid, and from a pool that allows
        the basic flow. Raises STS's errors (InvalidIdentityToken, ExpiredTokenException)."""
        try:
            claims = await self._identities.verify_open_id_token(token)
        except NotAuthorizedException as exc:
            if "expired" in exc.message:
                raise ExpiredTokenException("Token expired.") from exc
            raise InvalidIdentityTokenException(exc.message) from exc
        if not await self._identities.classic_flow_allowed(str(claims.get("aud"))):
            raise InvalidIdentityTokenException("Basic (classic) flow is not enabled for this identity pool.")
        return claims
