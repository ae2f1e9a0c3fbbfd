"""One exception tree for every wire.

Each leaf names the Cognito error it is (``__type`` in the JSON protocol, see the ``errors`` of each
operation in botocore's ``cognito-idp`` service model), its HTTP status, and the OAuth 2.0 ``error`` code
(RFC 6749 §5.2) a token endpoint would answer for it. Services raise these; each wire renders them in one
place. Nothing else builds a 4xx body by hand.
"""

from __future__ import annotations

from typing import ClassVar


class GatehouseError(Exception):
    """Base of every error a client may be shown."""

    type_name: ClassVar[str] = "InternalErrorException"
    status: ClassVar[int] = 400
    oauth_error: ClassVar[str] = "invalid_request"
    default_message: ClassVar[str] = "An error occurred."

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)

    def to_json(self) -> dict[str, str]:
        """The body of the AWS JSON 1.1 protocol error: ``{"__type": ..., "message": ...}``."""
        return {"__type": self.type_name, "message": self.message}


class InternalErrorException(GatehouseError):
    """Something failed inside Gatehouse; the client can retry."""

    type_name = "InternalErrorException"
    status = 500
    oauth_error = "server_error"
    default_message = "An internal error occurred."


# --- protocol and authentication of the request itself -----------------------------------------------


class SerializationException(GatehouseError):
    """The body is not JSON, or a member has the wrong JSON type."""

    type_name = "SerializationException"


class UnknownOperationException(GatehouseError):
    """``X-Amz-Target`` names no operation of this service."""

    type_name = "UnknownOperationException"


class MissingAuthenticationTokenException(GatehouseError):
    """An admin operation arrived without a SigV4 signature."""

    type_name = "MissingAuthenticationTokenException"
    status = 403
    oauth_error = "invalid_client"
    default_message = "Missing Authentication Token"


class UnrecognizedClientException(GatehouseError):
    """The access key id in the signature is not known."""

    type_name = "UnrecognizedClientException"
    status = 403
    oauth_error = "invalid_client"
    default_message = "The security token included in the request is invalid."


class InvalidSignatureException(GatehouseError):
    """The signature does not match, or was made too long ago (5 minutes of clock skew allowed)."""

    type_name = "InvalidSignatureException"
    status = 403
    oauth_error = "invalid_client"
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )


class IncompleteSignatureException(GatehouseError):
    """The Authorization header is malformed."""

    type_name = "IncompleteSignatureException"
    status = 403
    oauth_error = "invalid_client"


class RequestEntityTooLarge(GatehouseError):
    """The body exceeds the largest request Gatehouse reads."""

    type_name = "SerializationException"
    status = 413
    default_message = "Request entity too large."


# --- Cognito's errors ---------------------------------------------------------------------------------


class InvalidParameterException(GatehouseError):
    type_name = "InvalidParameterException"


class ResourceNotFoundException(GatehouseError):
    type_name = "ResourceNotFoundException"


class CachedCIMDURLDoesNotExistException(GatehouseError):
    """UpdateClientMetadataURLState: no client metadata document is cached for the URL."""

    type_name = "CachedCIMDURLDoesNotExistException"


class NotAuthorizedException(GatehouseError):
    type_name = "NotAuthorizedException"
    oauth_error = "invalid_grant"
    default_message = "Incorrect username or password."


class UserNotFoundException(GatehouseError):
    type_name = "UserNotFoundException"
    default_message = "User does not exist."


class UsernameExistsException(GatehouseError):
    type_name = "UsernameExistsException"
    default_message = "User already exists"


class AliasExistsException(GatehouseError):
    type_name = "AliasExistsException"
    default_message = "An account with the given email already exists."


class UserNotConfirmedException(GatehouseError):
    type_name = "UserNotConfirmedException"
    default_message = "User is not confirmed."


class PasswordResetRequiredException(GatehouseError):
    type_name = "PasswordResetRequiredException"
    default_message = "Password reset required for the user"


class InvalidPasswordException(GatehouseError):
    type_name = "InvalidPasswordException"


class PasswordHistoryPolicyViolationException(GatehouseError):
    type_name = "PasswordHistoryPolicyViolationException"
    default_message = "The password can't be a previously used password."


class CodeMismatchException(GatehouseError):
    type_name = "CodeMismatchException"
    default_message = "Invalid verification code provided, please try again."


class ExpiredCodeException(GatehouseError):
    type_name = "ExpiredCodeException"
    default_message = "Invalid code provided, please request a code again."


class LimitExceededException(GatehouseError):
    type_name = "LimitExceededException"
    default_message = "Attempt limit exceeded, please try after some time."


class TooManyRequestsException(GatehouseError):
    # 400, as botocore's model (no httpStatusCode) and Cognito's API reference give it, not HTTP's 429.
    type_name = "TooManyRequestsException"
    default_message = "Too many requests."


class TooManyFailedAttemptsException(GatehouseError):
    type_name = "TooManyFailedAttemptsException"


class GroupExistsException(GatehouseError):
    type_name = "GroupExistsException"


class InvalidUserPoolConfigurationException(GatehouseError):
    type_name = "InvalidUserPoolConfigurationException"


class UserPoolTaggingException(GatehouseError):
    type_name = "UserPoolTaggingException"


class InvalidLambdaResponseException(GatehouseError):
    type_name = "InvalidLambdaResponseException"


class UnsupportedOperationException(GatehouseError):
    type_name = "UnsupportedOperationException"


class UnsupportedTokenTypeException(GatehouseError):
    type_name = "UnsupportedTokenTypeException"
    oauth_error = "unsupported_token_type"


class InvalidOAuthFlowException(GatehouseError):
    type_name = "InvalidOAuthFlowException"


class ConcurrentModificationException(GatehouseError):
    type_name = "ConcurrentModificationException"
    default_message = "The resource was changed by another request; try again."


class CodeDeliveryFailureException(GatehouseError):
    type_name = "CodeDeliveryFailureException"
    default_message = "Unable to deliver the verification code."


class InvalidEmailRoleAccessPolicyException(GatehouseError):
    type_name = "InvalidEmailRoleAccessPolicyException"


class UnsupportedUserStateException(GatehouseError):
    type_name = "UnsupportedUserStateException"


class ForbiddenException(GatehouseError):
    type_name = "ForbiddenException"
    status = 403


class RefreshTokenReuseException(GatehouseError):
    type_name = "RefreshTokenReuseException"
    oauth_error = "invalid_grant"
    default_message = "Refresh token has been reused."


class UnexpectedLambdaException(GatehouseError):
    type_name = "UnexpectedLambdaException"


class UserLambdaValidationException(GatehouseError):
    type_name = "UserLambdaValidationException"


class DuplicateProviderException(GatehouseError):
    type_name = "DuplicateProviderException"


class ScopeDoesNotExistException(GatehouseError):
    type_name = "ScopeDoesNotExistException"


class EnableSoftwareTokenMFAException(GatehouseError):
    """VerifySoftwareToken: the code does not match the secret being set up."""

    type_name = "EnableSoftwareTokenMFAException"
    default_message = "Code mismatch and fail enable Software Token MFA"


class SoftwareTokenMFANotFoundException(GatehouseError):
    type_name = "SoftwareTokenMFANotFoundException"
    default_message = "Software Token MFA has not been enabled by the userPool."


class UnauthorizedException(GatehouseError):
    type_name = "UnauthorizedException"
    status = 401


# --- IAM and STS (AWS query protocol; ``type_name`` is the error ``Code`` in botocore's iam/sts models) ---


class NoSuchEntityException(GatehouseError):
    type_name = "NoSuchEntity"
    status = 404


class EntityAlreadyExistsException(GatehouseError):
    type_name = "EntityAlreadyExists"
    status = 409


class DeleteConflictException(GatehouseError):
    type_name = "DeleteConflict"
    status = 409


class InvalidInputException(GatehouseError):
    type_name = "InvalidInput"


class IamLimitExceededException(GatehouseError):
    type_name = "LimitExceeded"
    status = 409


class MalformedPolicyDocumentException(GatehouseError):
    type_name = "MalformedPolicyDocument"


class ValidationError(GatehouseError):
    """A query-protocol input failed the model's constraints (the query wire's InvalidParameterException)."""

    type_name = "ValidationError"


class AccessDeniedException(GatehouseError):
    """STS/IAM ``AccessDenied``: the trust policy or an identity policy does not allow the call."""

    type_name = "AccessDenied"
    status = 403


class SessionAccessDeniedException(GatehouseError):
    """The AWS JSON wires' ``AccessDeniedException`` (an AWS common error, HTTP 400): a call signed with temporary
    credentials whose role's policies (and session policy) do not allow it."""

    type_name = "AccessDeniedException"


class InvalidIdentityTokenException(GatehouseError):
    type_name = "InvalidIdentityToken"


class ExpiredTokenException(GatehouseError):
    type_name = "ExpiredTokenException"


class IDPRejectedClaimException(GatehouseError):
    type_name = "IDPRejectedClaim"
    status = 403


class IDPCommunicationErrorException(GatehouseError):
    type_name = "IDPCommunicationError"


class PackedPolicyTooLargeException(GatehouseError):
    type_name = "PackedPolicyTooLarge"


class InvalidParameterValueException(GatehouseError):
    """STS's answer to session tags that contradict each other or the calling session's transitive tags."""

    type_name = "InvalidParameterValue"


class InvalidActionException(GatehouseError):
    """The query protocol's unknown ``Action``."""

    type_name = "InvalidAction"


class ServiceUnavailableException(GatehouseError):
    """An upstream service Gatehouse depends on for this call (AWS STS, for passthrough roles) is unreachable."""

    type_name = "ServiceUnavailable"
    status = 503


# --- Cognito identity pools' errors (botocore's ``cognito-identity`` model) ------------------------------


class ResourceConflictException(GatehouseError):
    """A login is already linked to another identity."""

    type_name = "ResourceConflictException"


class InvalidIdentityPoolConfigurationException(GatehouseError):
    """No role for the identity, or the role does not trust the identity pool."""

    type_name = "InvalidIdentityPoolConfigurationException"
    default_message = "Invalid identity pool configuration. Check assigned IAM roles for this pool."


class ExternalServiceException(GatehouseError):
    """A login provider could not be reached to check a token."""

    type_name = "ExternalServiceException"


class DeveloperUserAlreadyRegisteredException(GatehouseError):
    """The developer user identifier is linked to another identity."""

    type_name = "DeveloperUserAlreadyRegisteredException"


class UnsupportedIdentityProviderException(GatehouseError):
    type_name = "UnsupportedIdentityProviderException"


class OperationNotEnabledException(GatehouseError):
    type_name = "OperationNotEnabledException"


class PreconditionNotMetException(GatehouseError):
    """A precondition of the operation is not met (a user import job that cannot start or stop now)."""

    type_name = "PreconditionNotMetException"


class FeatureUnavailableInTierException(GatehouseError):
    """A feature the pool's feature plan (UserPoolTier) does not include."""

    type_name = "FeatureUnavailableInTierException"


class UpstreamIdentityError(NotAuthorizedException):
    """A federated sign-in was refused: the upstream IdP's answer, or the state it came back with, did not hold.

    ``reason`` is a short token for the audit log; the message shown to clients says nothing more specific.
    """

    oauth_error = "invalid_request"
    default_message = "The sign-in through the identity provider could not be completed."

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


# --- the OAuth 2.0 wire's own errors (RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, OpenID Connect Core §3.1.2.6) --
#
# Raised by the authorization server (gateway/services/oauth.py) and rendered by gateway/oauth as a redirect
# with ``error`` (authorization endpoint) or a JSON body (token, userInfo, revocation endpoints). Their Cognito
# ``__type`` is what the same fault would be called on the JSON wire.


class OAuthError(GatehouseError):
    """Base of the OAuth wire's errors; ``oauth_error`` is the RFC's ``error`` code."""

    type_name = "InvalidParameterException"
    oauth_error = "invalid_request"


class InvalidRequestError(OAuthError):
    """The request is missing a required parameter, includes an unsupported value or a repeated parameter."""


class InvalidClientError(OAuthError):
    """Client authentication failed (unknown client, no or wrong client authentication, several methods)."""

    type_name = "NotAuthorizedException"
    status = 401
    oauth_error = "invalid_client"


class InvalidGrantError(OAuthError):
    """The authorization code or refresh token is invalid, expired, revoked, replayed, or was issued to
    another client or redirect URI, or the PKCE verifier does not match."""

    type_name = "NotAuthorizedException"
    oauth_error = "invalid_grant"


class UnauthorizedClientError(OAuthError):
    """The client may not use this grant or response type."""

    type_name = "InvalidOAuthFlowException"
    oauth_error = "unauthorized_client"


class UnsupportedGrantTypeError(OAuthError):
    oauth_error = "unsupported_grant_type"


class UnsupportedResponseTypeError(OAuthError):
    oauth_error = "unsupported_response_type"


class InvalidScopeError(OAuthError):
    type_name = "ScopeDoesNotExistException"
    oauth_error = "invalid_scope"


class AccessDeniedError(OAuthError):
    type_name = "NotAuthorizedException"
    oauth_error = "access_denied"


class LoginRequiredError(OAuthError):
    """``prompt=none`` and nobody is signed in (OpenID Connect Core §3.1.2.6)."""

    type_name = "NotAuthorizedException"
    oauth_error = "login_required"


class InvalidTokenError(OAuthError):
    """The bearer token is missing, malformed, expired or revoked (RFC 6750 §3.1)."""

    type_name = "NotAuthorizedException"
    status = 401
    oauth_error = "invalid_token"


class RequestNotSupportedError(OAuthError):
    """OpenID Connect Core §6.1: a ``request`` object was sent, and request objects are not supported."""

    oauth_error = "request_not_supported"


class RequestUriNotSupportedError(OAuthError):
    """OpenID Connect Core §6.2: a ``request_uri`` was sent, and request URIs are not supported."""

    oauth_error = "request_uri_not_supported"


class TemporarilyUnavailableError(OAuthError):
    """RFC 6749 §4.1.2.1: the authorization server cannot handle the request now (its rate limits)."""

    oauth_error = "temporarily_unavailable"
    status = 503


class AuthorizationPageError(GatehouseError):
    """An authorization request that must not be answered by a redirect (unknown client, redirect URI not
    registered, pool mismatch, an expired sign-in page): RFC 6749 §4.1.2.1 says to inform the user and
    never redirect. Rendered as an HTML page."""

    type_name = "InvalidParameterException"
    oauth_error = "invalid_request"


# --- passkeys (WebAuthn): the errors botocore's model gives the WebAuthn operations --------------------------


class WebAuthnNotEnabledException(GatehouseError):
    """Passkeys are not a sign-in factor of this user pool (SignInPolicy.AllowedFirstAuthFactors)."""

    type_name = "WebAuthnNotEnabledException"


class WebAuthnChallengeNotFoundException(GatehouseError):
    """No registration is pending (StartWebAuthnRegistration first), or it expired or was used."""

    type_name = "WebAuthnChallengeNotFoundException"


class WebAuthnRelyingPartyMismatchException(GatehouseError):
    type_name = "WebAuthnRelyingPartyMismatchException"


class WebAuthnOriginNotAllowedException(GatehouseError):
    type_name = "WebAuthnOriginNotAllowedException"


class WebAuthnCredentialNotSupportedException(GatehouseError):
    type_name = "WebAuthnCredentialNotSupportedException"


class WebAuthnConfigurationMissingException(GatehouseError):
    """No relying party ID can be had: none configured, and the server's public URL names no domain."""

    type_name = "WebAuthnConfigurationMissingException"


class DeviceKeyExistsException(GatehouseError):
    """ConfirmDevice of a device key that is already confirmed."""

    type_name = "DeviceKeyExistsException"


class UserPoolAddOnNotEnabledException(GatehouseError):
    """Threat protection (UserPoolAddOns.AdvancedSecurityMode) is OFF for the pool."""

    type_name = "UserPoolAddOnNotEnabledException"
    default_message = "Threat protection is not enabled for this user pool."


class ManagedLoginBrandingExistsException(GatehouseError):
    """CreateManagedLoginBranding for an app client that already has a branding style."""

    type_name = "ManagedLoginBrandingExistsException"


class TermsExistsException(GatehouseError):
    """CreateTerms or UpdateTerms naming a document (terms-of-use, privacy-policy) the app client already has."""

    type_name = "TermsExistsException"


# --- OAuth 2.0 Token Exchange (RFC 8693 §2.2.2): one fault, two wires ------------------------------------------
#
# GetDerivedToken (the JSON wire) and the token-exchange grant of /oauth2/token share one service
# (gateway/services/token_exchange.py); each of these is the Cognito error GetDerivedToken's model lists and the
# ``error`` RFC 8693 names for the same fault.


class ExchangeTokenError(NotAuthorizedException):
    """The subject or actor token is invalid (malformed, tampered, expired, revoked, another pool's, of the wrong
    type). RFC 8693 §2.2.2: "If ... either the subject_token or actor_token are invalid for any reason, or are
    unacceptable based on policy, the invalid_request error code MUST be used"."""

    oauth_error = "invalid_request"


class ExchangeRequestError(InvalidParameterException):
    """The exchange request is not valid (a token type that cannot be exchanged, an actor token without its
    type): RFC 8693 §2.2.2's invalid_request."""


class InvalidTargetError(InvalidParameterException):
    """RFC 8693 §2.2.2: "The authorization server is unwilling or unable to issue a token for any target service
    indicated by the resource or audience parameters" (invalid_target)."""

    oauth_error = "invalid_target"


class ExchangeScopeError(InvalidParameterException):
    """No requested scope is both the subject token's and the client's (RFC 6749 §5.2 invalid_scope)."""

    oauth_error = "invalid_scope"


class ExchangeFlowError(InvalidParameterException):
    """The client lacks ALLOW_TOKEN_EXCHANGE_IMPERSONATION / _DELEGATION (RFC 6749 §5.2 unauthorized_client)."""

    oauth_error = "unauthorized_client"


class ExchangeNotInTierError(OperationNotEnabledException):
    """Token exchange "is a feature of user pools" in the Essentials and Plus feature plans: a Lite pool's
    GetDerivedToken is an operation not enabled for its configuration (the error its model lists for that)."""

    oauth_error = "unauthorized_client"
