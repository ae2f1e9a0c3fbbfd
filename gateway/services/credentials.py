"""Temporary credentials: minted by Gatehouse's STS (and identity pools), verified by anything they are sent to.

Interface (what other services call)::

    creds = await services.credentials.mint(
        role,                          # a Role (IamService.get_role / find_role_by_arn) or a role ARN
        session_name="CognitoIdentityCredentials",
        identity_id="us-east-1:1234...",   # identity-pool identity id (or None)
        source_identity=None,          # STS SourceIdentity (or None)
        principal_tags={"team": "a"},  # session tags: aws:PrincipalTag/<key> in policies
        transitive_tag_keys=("team",), # the tags a chained session (AssumeRole with these credentials) inherits
        session_policy=None,           # a policy JSON text; the session may do only what it AND the role allow
        duration_seconds=3600,         # 900 .. role.max_session_duration (ValidationError otherwise)
        web_identity=WebIdentity(...), # the verified token's provider/sub/aud/amr: condition keys later
    )
    creds.access_key_id        # "ASIA" + 16 characters
    creds.secret_access_key    # 40 characters
    creds.session_token        # sealed, self-contained (see below)
    creds.expiration           # aware UTC datetime
    creds.assumed_role_arn     # arn:aws:sts::<account>:assumed-role/<role name>/<session name>
    creds.assumed_role_id      # <role id AROA...>:<session name>

    ctx = await services.credentials.verify_request(method, url, headers, body)   # -> CallerContext
    services.credentials.is_allowed(ctx, "s3:GetObject", "arn:aws:s3:::bucket/key", {"aws:SourceIp": ip})

For identity pools: GetCredentialsForIdentity builds the identity's
``WebIdentity(provider=COGNITO_IDENTITY_PROVIDER, subject=<identity id>, audience=(<identity pool id>,),
amr=("authenticated", <login provider>) or ("unauthenticated",))``, checks
``services.iam.trust_allows(role, web_identity)`` (AccessDenied if not) and calls ``mint``. So that STS's
AssumeRoleWithWebIdentity accepts the pool's GetOpenIdToken tokens, their issuer registers once at start:
``services.web_identity.register_issuer(issuer, verify, provider=COGNITO_IDENTITY_PROVIDER)``, where ``verify``
is an ``async (token) -> claims`` raising InvalidIdentityTokenException / ExpiredTokenException.

A role tagged ``gatehouse:aws-role-arn`` is a passthrough role: ``mint`` returns credentials from a real AWS
STS (:mod:`gateway.services.aws_passthrough`) for the AWS role the tag names.

A role's trust policy is checked with :meth:`gateway.services.iam.IamService.trust_allows` before minting;
``mint`` itself does not check trust (identity pools and STS each decide who may assume what).

Design (the session token carries everything; verification needs one store read):

* The access key id is ``ASIA`` + 80 random bits in base32, as AWS's temporary keys look.
* The secret access key is never stored: it is ``base64(HMAC-SHA256(K_secret, access_key_id))[:40]``, so
  Gatehouse recomputes it from the key id alone (K_secret is derived from the data dir's secret key).
* The session token is an AES-256-GCM sealed box (:mod:`gateway.secretbox`, key K_token derived from the
  same secret) of the session's claims: role ARN and unique id, session name, identity id, source identity,
  session tags and which of them are transitive, session policy, web-identity condition keys, issue and
  expiry times. A session's principal tags are its session tags over its role's IAM tags. The access key id is
  the box's associated data, so a token cannot be paired with another key id; any change to the token fails
  authentication.
* Verifying a request: open the token (no I/O), recompute the secret, check the SigV4 signature
  (:mod:`gateway.api.sigv4`), check expiry, then read the role once: a deleted role -- or a role deleted and
  created again under the same name, which gets a new unique id -- refuses the credentials, as AWS does.
* Permissions (:meth:`CredentialService.is_allowed`): the role's inline policies, intersected with the
  session policy when there is one; an explicit deny wins (:mod:`gateway.services.policy`).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import time
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import unquote_plus, urlsplit

import orjson

from gateway.api.sigv4 import SignedRequest, SigV4Identity, verify_sigv4
from gateway.errors import (
    GatehouseError,
    InvalidParameterValueException,
    PackedPolicyTooLargeException,
    ServiceUnavailableException,
    UnrecognizedClientException,
    ValidationError,
)
from gateway.secretbox import SecretBox, SecretBoxError
from gateway.services.aws_passthrough import AWS_ROLE_TAG, AwsStsPassthrough
from gateway.services.iam import IamService, Role, WebIdentity, check_policy, new_unique_id, parsed_policy
from gateway.services.policy import ContextValue, Policy, Request, grant_stands
from gateway.services.policy import is_allowed as evaluate_allowed

__all__ = [
    "CallerContext",
    "CredentialService",
    "ExpiredSecurityToken",
    "TemporaryCredentials",
    "security_token",
]

MIN_DURATION_SECONDS: Final = 900
# Session tag limits (IAM User Guide, "Passing session tags in AWS STS": up to 50 tags, keys of at most 128 and
# values of at most 256 characters).
MAX_SESSION_TAGS: Final = 50
MAX_TAG_KEY_CHARS: Final = 128
MAX_TAG_VALUE_CHARS: Final = 256
# The longest session token verification accepts (it must also fit in one HTTP header line): a session whose
# token would be longer is refused when minted (PackedPolicyTooLarge) rather than handed out unusable.
MAX_SESSION_TOKEN_CHARS: Final = 8192
# A session policy's packed size limit (AWS: 2,048 characters of plain text policy).
MAX_SESSION_POLICY_CHARS: Final = 2048
_TOKEN_VERSION: Final = 1


class ExpiredSecurityToken(GatehouseError):
    """A request signed with temporary credentials that have expired (AWS's ``ExpiredToken``)."""

    type_name = "ExpiredToken"
    status = 403
    default_message = "The security token included in the request is expired"


@dataclass(frozen=True)
class TemporaryCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
    assumed_role_arn: str
    assumed_role_id: str
    # Session policy size as a percentage of the allowed maximum (STS PackedPolicySize).
    packed_policy_size: int | None = None


@dataclass(frozen=True)
class CallerContext:
    """Who signed a request with temporary credentials, and what their session carries."""

    access_key_id: str
    account_id: str
    role_arn: str
    role_name: str
    role_id: str
    session_name: str
    assumed_role_arn: str
    user_id: str  # AROA...:session name (aws:userid)
    identity_id: str | None
    source_identity: str | None
    principal_tags: dict[str, str]
    issued_at: datetime
    expiration: datetime
    web_identity_keys: dict[str, ContextValue]
    session_policy: Policy | None
    role_policies: tuple[Policy, ...]
    region: str = ""
    service: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Keys of principal_tags that pass on to a chained session (STS AssumeRole TransitiveTagKeys).
    transitive_tag_keys: tuple[str, ...] = ()
    # A guest's session: an identity pool's unauthenticated identity (the enhanced flow). Whatever its role allows,
    # it may not make Gatehouse's own signed calls (user pool and identity pool administration, IAM, role
    # chaining): on AWS, Cognito scopes such sessions down to a short list of services, none of these.
    guest: bool = False

    def transitive_tags(self) -> dict[str, str]:
        """The session tags a role assumed with these credentials inherits (IAM User Guide, "Chaining roles
        with session tags")."""
        return {key: self.principal_tags[key] for key in self.transitive_tag_keys if key in self.principal_tags}

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (the verify endpoint's answer)."""
        return {
            "Account": self.account_id,
            "Arn": self.assumed_role_arn,
            "UserId": self.user_id,
            "RoleArn": self.role_arn,
            "RoleSessionName": self.session_name,
            "IdentityId": self.identity_id,
            "SourceIdentity": self.source_identity,
            "PrincipalTags": self.principal_tags,
            "AccessKeyId": self.access_key_id,
            "IssuedAt": self.issued_at.isoformat().replace("+00:00", "Z"),
            "Expiration": self.expiration.isoformat().replace("+00:00", "Z"),
            "Region": self.region,
            "Service": self.service,
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class CredentialService:
    """Mints and verifies temporary credentials for IAM roles."""

    def __init__(self, iam: IamService, key: bytes, *, account_id: str, max_skew_seconds: float = 300.0) -> None:
        self._iam = iam
        # Two sub-keys of one secret, so neither serves two purposes (HMAC-SHA256 as a PRF, RFC 2104).
        self._secret_key = hmac.new(key, b"gatehouse sts secret access keys", hashlib.sha256).digest()
        # HMAC-SHA256 keyed once: each secret copies this keyed state instead of keying anew (and looking up
        # the digest by name), about half the cost of hmac.digest.
        self._secret_mac = hmac.new(self._secret_key, digestmod=hashlib.sha256)
        self._box = SecretBox(hmac.new(key, b"gatehouse sts session tokens", hashlib.sha256).digest())
        self.account_id = account_id
        self._max_skew_seconds = max_skew_seconds
        # Set from the config file's iam.aws: where passthrough roles get their credentials.
        self.passthrough: AwsStsPassthrough | None = None

    # --- minting ----------------------------------------------------------------------------------------

    def secret_for(self, access_key_id: str) -> str:
        """The secret access key of a temporary access key id (recomputed, never stored)."""
        mac = self._secret_mac.copy()
        mac.update(access_key_id.encode("utf-8", "surrogateescape"))
        return _b64(mac.digest())[:40]

    async def mint(
        self,
        role: Role | str,
        *,
        session_name: str,
        identity_id: str | None = None,
        source_identity: str | None = None,
        principal_tags: Mapping[str, str] | None = None,
        session_policy: str | None = None,
        duration_seconds: int = 3600,
        web_identity: WebIdentity | None = None,
        federation_keys: Mapping[str, ContextValue] | None = None,
        transitive_tag_keys: Sequence[str] = (),
        guest: bool = False,
    ) -> TemporaryCredentials:
        """Temporary credentials for ``role``; ``guest``: for an identity pool's unauthenticated identity (see
        CallerContext.guest). Raises ValidationError for an unknown role ARN,
        ValidationError for a duration outside 900..MaxSessionDuration, MalformedPolicyDocument and
        PackedPolicyTooLarge for a bad session policy."""
        if isinstance(role, str):
            found = await self._iam.find_role_by_arn(role)
            if found is None:
                raise ValidationError(f"Role {role} does not exist.")
            role = found
        packed = self.check_request(role, duration_seconds, session_policy, principal_tags)
        aws_role_arn = role.tags.get(AWS_ROLE_TAG)
        if aws_role_arn is not None:
            return await self._from_aws(
                aws_role_arn,
                session_name,
                duration_seconds,
                session_policy,
                principal_tags,
                source_identity,
                [key for key in transitive_tag_keys if principal_tags and key in principal_tags],
            )
        now = int(time.time())
        expires = now + duration_seconds
        access_key_id = new_unique_id("ASIA")[:20]
        claims: dict[str, Any] = {
            "v": _TOKEN_VERSION,
            "arn": role.arn,
            "rid": role.role_id,
            "sn": session_name,
            "iat": now,
            "exp": expires,
        }
        if identity_id is not None:
            claims["iid"] = identity_id
        if source_identity is not None:
            claims["src"] = source_identity
        if principal_tags:
            claims["tags"] = dict(principal_tags)
            transitive = [key for key in transitive_tag_keys if key in principal_tags]
            if transitive:
                claims["tt"] = transitive
        if session_policy is not None:
            claims["pol"] = session_policy
        if guest:
            claims["g"] = 1
        federation: dict[str, ContextValue] = dict(federation_keys or {})
        if web_identity is not None:
            federation.update(web_identity.context_keys(self.account_id))
        if federation:
            # The federated identity's condition keys (<provider>:sub, SAML:sub ...), for later policy checks.
            claims["wi"] = federation
        plaintext = _compress(orjson.dumps(claims))
        token = self._box.seal(plaintext, aad=access_key_id.encode("ascii"))
        # How much of the session token's limit the session uses: STS's packed size of "the session policies and
        # session tags combined", which a refusal states as a percentage ("Passing session tags in AWS STS").
        used = -(-100 * len(token) // MAX_SESSION_TOKEN_CHARS)
        if len(token) > MAX_SESSION_TOKEN_CHARS:
            raise PackedPolicyTooLargeException(
                "Packed size of session policy and session tags combined is larger than the maximum allowed: "
                f"{used}% of the upper size limit."
            )
        if principal_tags:
            # STS reports PackedPolicySize for session tags too, not only for a session policy.
            packed = max(packed or 1, used)
        return TemporaryCredentials(
            access_key_id=access_key_id,
            secret_access_key=self.secret_for(access_key_id),
            session_token=token,
            expiration=datetime.fromtimestamp(expires, UTC),
            assumed_role_arn=self._assumed_role_arn(role.name, session_name),
            assumed_role_id=f"{role.role_id}:{session_name}",
            packed_policy_size=packed,
        )

    def check_request(
        self,
        role: Role,
        duration_seconds: int,
        session_policy: str | None,
        principal_tags: Mapping[str, str] | None = None,
    ) -> int | None:
        """What :meth:`mint` checks before minting, for a caller that must know before it commits to the call
        (AssumeRoleWithSAML uses its assertion up only for a call that will succeed). Raises ValidationError for
        a duration outside 900..MaxSessionDuration or session tags beyond STS's limits, MalformedPolicyDocument
        and PackedPolicyTooLarge for a bad session policy; answers the session policy's PackedPolicySize (None
        without one)."""
        if principal_tags:
            _check_session_tags(principal_tags)
        if duration_seconds < MIN_DURATION_SECONDS:
            raise ValidationError(
                f"1 validation error detected: Value '{duration_seconds}' at 'durationSeconds' failed to satisfy "
                f"constraint: Member must have value greater than or equal to {MIN_DURATION_SECONDS}"
            )
        if duration_seconds > role.max_session_duration:
            raise ValidationError("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
        packed: int | None = None
        if session_policy is not None:
            if len(session_policy) > MAX_SESSION_POLICY_CHARS:
                raise PackedPolicyTooLargeException(
                    "Packed size of session policy is larger than the maximum allowed "
                    f"({MAX_SESSION_POLICY_CHARS} characters): "
                    f"{-(-100 * len(session_policy) // MAX_SESSION_POLICY_CHARS)}% of the upper size limit."
                )
            check_policy(session_policy)
            packed = max(1, round(100 * len(session_policy) / MAX_SESSION_POLICY_CHARS))
        return packed

    async def _from_aws(
        self,
        aws_role_arn: str,
        session_name: str,
        duration_seconds: int,
        session_policy: str | None,
        principal_tags: Mapping[str, str] | None,
        source_identity: str | None,
        transitive_tag_keys: Sequence[str] = (),
    ) -> TemporaryCredentials:
        """A passthrough role (tagged ``gatehouse:aws-role-arn``): AWS STS mints the credentials. The session's
        transitive tags stay transitive there, so that a role chain inside AWS carries them as a chain here would
        (IAM User Guide, "Chaining roles with session tags")."""
        if self.passthrough is None:
            raise ServiceUnavailableException(
                "This role stands for an AWS role, but no AWS STS endpoint is configured (config file iam.aws)."
            )
        aws = await self.passthrough.assume_role(
            aws_role_arn,
            session_name=session_name,
            duration_seconds=duration_seconds,
            session_policy=session_policy,
            tags=principal_tags or {},
            source_identity=source_identity,
            transitive_tag_keys=transitive_tag_keys,
        )
        return TemporaryCredentials(
            access_key_id=aws.access_key_id,
            secret_access_key=aws.secret_access_key,
            session_token=aws.session_token,
            expiration=aws.expiration,
            assumed_role_arn=aws.assumed_role_arn,
            assumed_role_id=aws.assumed_role_id,
            packed_policy_size=aws.packed_policy_size,
        )

    def _assumed_role_arn(self, role_name: str, session_name: str) -> str:
        return f"arn:aws:sts::{self.account_id}:assumed-role/{role_name}/{session_name}"

    # --- verifying --------------------------------------------------------------------------------------

    def open_session_token(self, access_key_id: str, session_token: str) -> dict[str, Any]:
        """The claims sealed in a session token for this key id; UnrecognizedClient if it is not one of ours,
        was altered, or belongs to another key id."""
        if not access_key_id.startswith("ASIA") or len(session_token) > MAX_SESSION_TOKEN_CHARS:
            raise UnrecognizedClientException()
        try:
            raw = self._box.open(session_token, aad=access_key_id.encode("utf-8", "surrogateescape"))
            claims = orjson.loads(zlib.decompress(raw))
        except (SecretBoxError, zlib.error, orjson.JSONDecodeError) as exc:
            raise UnrecognizedClientException() from exc
        if not isinstance(claims, dict) or claims.get("v") != _TOKEN_VERSION:
            raise UnrecognizedClientException()
        return claims

    async def verify_signed(
        self,
        request: SignedRequest,
        *,
        expected_service: str | None = None,
        now: float | None = None,
        regions: Collection[str] | None = None,
    ) -> CallerContext:
        """Check a request signed with temporary credentials (SigV4 + X-Amz-Security-Token) and say who it is.
        ``regions``: the regions its credential scope may name (Gatehouse's own APIs); any when ``None``.

        Raises MissingAuthenticationToken / IncompleteSignature / InvalidSignature (bad or absent
        signature), UnrecognizedClient (no, altered or foreign session token; role deleted), ExpiredToken."""
        opened: dict[str, dict[str, Any]] = {}
        token_of: dict[str, str | None] = {"token": security_token(request)}

        def lookup(access_key_id: str) -> str | None:
            token = token_of["token"]
            if token is None:
                return None
            opened["claims"] = self.open_session_token(access_key_id, token)
            return self.secret_for(access_key_id)

        moment = datetime.fromtimestamp(now, UTC) if now is not None else None
        identity = verify_sigv4(
            request,
            lookup,
            now=moment,
            max_skew=timedelta(seconds=self._max_skew_seconds),
            expected_service=expected_service,
            regions=regions,
        )
        claims = opened["claims"]
        return await self._context(identity, claims, now if now is not None else time.time())

    async def verify_request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        expected_service: str | None = None,
    ) -> CallerContext:
        """:meth:`verify_signed` for a request given as method, full URL (as sent), headers and body."""
        parts = urlsplit(url)
        request = SignedRequest(
            method=method,
            path=parts.path or "/",
            query_string=parts.query,
            headers=headers,
            body=body,
        )
        return await self.verify_signed(request, expected_service=expected_service)

    async def _context(self, identity: SigV4Identity, claims: dict[str, Any], now: float) -> CallerContext:
        expires = float(claims["exp"])
        if now >= expires:
            raise ExpiredSecurityToken()
        role = await self._iam.find_role_by_arn(str(claims["arn"]))
        if role is None or role.role_id != claims.get("rid"):
            # Deleted (or deleted and re-created): AWS refuses the credentials as invalid.
            raise UnrecognizedClientException()
        policy_text = claims.get("pol")
        session_name = str(claims["sn"])
        return CallerContext(
            access_key_id=identity.access_key_id,
            account_id=self.account_id,
            role_arn=role.arn,
            role_name=role.name,
            role_id=role.role_id,
            session_name=session_name,
            assumed_role_arn=self._assumed_role_arn(role.name, session_name),
            user_id=f"{role.role_id}:{session_name}",
            identity_id=claims.get("iid"),
            source_identity=claims.get("src"),
            principal_tags=_principal_tags(role.tags, claims.get("tags")),
            issued_at=datetime.fromtimestamp(float(claims["iat"]), UTC),
            expiration=datetime.fromtimestamp(expires, UTC),
            web_identity_keys=dict(claims.get("wi") or {}),
            session_policy=parsed_policy(policy_text) if isinstance(policy_text, str) else None,
            role_policies=role.policies,
            region=identity.region,
            service=identity.service,
            transitive_tag_keys=tuple(claims.get("tt") or ()),
            guest=claims.get("g") == 1,
        )

    # --- authorising ------------------------------------------------------------------------------------

    def request_context(
        self, ctx: CallerContext, context: Mapping[str, ContextValue] | None = None
    ) -> dict[str, ContextValue]:
        """The condition keys of a request by this caller: what the caller passes (``aws:SourceIp``, resource
        keys...) overlaid with what only Gatehouse may say (principal, session and web-identity keys)."""
        keys: dict[str, ContextValue] = {}
        for name, value in (context or {}).items():
            # The caller describes the request, never the principal.
            if _describes_principal(name.lower()):
                continue
            keys[name] = value
        now = int(time.time())
        keys.update(ctx.web_identity_keys)
        keys.update(
            {
                "aws:PrincipalArn": ctx.role_arn,
                "aws:PrincipalAccount": ctx.account_id,
                "aws:PrincipalType": "AssumedRole",
                "aws:userid": ctx.user_id,
                "aws:TokenIssueTime": _iso(int(ctx.issued_at.timestamp())),
                "aws:CurrentTime": _iso(now),
                "aws:EpochTime": str(now),
                "aws:MultiFactorAuthPresent": "false",
            }
        )
        if ctx.source_identity is not None:
            keys["aws:SourceIdentity"] = ctx.source_identity
        if ctx.principal_tags:
            keys["aws:PrincipalTagKeys"] = list(ctx.principal_tags)
        for tag, value in ctx.principal_tags.items():
            keys[f"aws:PrincipalTag/{tag}"] = value
        return keys

    def is_allowed(
        self,
        ctx: CallerContext,
        action: str,
        resource: str = "*",
        context: Mapping[str, ContextValue] | None = None,
    ) -> bool:
        """May this caller perform ``action`` on ``resource``? The role's inline policies, intersected with the
        session policy if the session has one; an explicit deny anywhere refuses."""
        request = Request(action=action, resource=resource, context=self.request_context(ctx, context))
        session: Sequence[Policy] | None = (ctx.session_policy,) if ctx.session_policy is not None else None
        return evaluate_allowed(ctx.role_policies, request, session)

    def resource_grant_stands(
        self,
        ctx: CallerContext,
        action: str,
        resource: str,
        context: Mapping[str, ContextValue] | None = None,
        *,
        session_named: bool,
    ) -> bool:
        """A resource-based policy (a role's trust policy) that names this caller -- its session ARN
        (``session_named``) or its role's ARN -- allows ``action``: does the grant survive the caller's own
        policies? See :func:`gateway.services.policy.grant_stands`."""
        request = Request(action=action, resource=resource, context=self.request_context(ctx, context))
        session: Sequence[Policy] | None = (ctx.session_policy,) if ctx.session_policy is not None else None
        return grant_stands(ctx.role_policies, request, session, session_named=session_named)


# Condition keys (lower-cased) that describe the principal or its session, never the request: only the session
# may say them ("AWS global condition context keys": properties of the principal and of the role session).
_PRINCIPAL_KEY_PREFIXES: Final = (
    "aws:principal",
    "aws:userid",
    "aws:username",
    "aws:federatedprovider",
    "aws:sourceidentity",
    "aws:tokenissuetime",
    "aws:multifactorauth",
    "aws:assumedroot",
    "saml:",
)
# A federated identity's keys are "<provider>:<claim>", the provider a host name (accounts.google.com,
# cognito-identity.amazonaws.com) or an issuer URL without its scheme (host:port/path, or host/path where the
# host has neither dot nor port, as on a container network); a service's own keys ("s3:prefix",
# "s3:ExistingObjectTag/<key>") start with a bare service prefix, no dot or slash before their first colon.
_FEDERATED_KEY: Final = re.compile(r"[^:/]*\.[^:/]*[:/]|[^:/]+:\d+[/:]|[^:]*/")


def _check_session_tags(tags: Mapping[str, str]) -> None:
    """Session tags within STS's limits, wherever they come from (a request, a SAML assertion, a web identity
    token, an identity pool's attribute map). The messages are those of STS's constraint checks (STS API
    Reference, Tag: at most 50 tags, keys of 1 to 128 and values of at most 256 characters); a key beginning with
    ``aws:`` is refused as AWS refuses it ("Rules for tagging in IAM and AWS STS": the prefix is AWS's own)."""
    if len(tags) > MAX_SESSION_TAGS:
        raise ValidationError(
            f"1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length "
            f"less than or equal to {MAX_SESSION_TAGS} ({len(tags)} session tags were passed)"
        )
    for number, (key, value) in enumerate(tags.items(), start=1):
        if not 1 <= len(key) <= MAX_TAG_KEY_CHARS:
            bound = "greater than or equal to 1" if not key else f"less than or equal to {MAX_TAG_KEY_CHARS}"
            raise ValidationError(
                f"1 validation error detected: Value '{key[:MAX_TAG_KEY_CHARS]}...' at 'tags.{number}.member.key' "
                f"failed to satisfy constraint: Member must have length {bound}"
            )
        if len(value) > MAX_TAG_VALUE_CHARS:
            raise ValidationError(
                f"1 validation error detected: Value at 'tags.{number}.member.value' (session tag {key}) failed to "
                f"satisfy constraint: Member must have length less than or equal to {MAX_TAG_VALUE_CHARS}"
            )
        if key[:4].lower() == "aws:":
            raise InvalidParameterValueException(
                f"Session tag key {key} is not valid: tag keys beginning with aws: are reserved for AWS use."
            )
    if len({key.lower() for key in tags}) != len(tags):
        # "Tag key-value pairs are not case sensitive": Team and team would be one tag with two values.
        raise InvalidParameterValueException(
            "Duplicate tag keys found. Please note that Tag keys are case insensitive."
        )


def _principal_tags(role_tags: Mapping[str, str], session_tags: Mapping[str, str] | None) -> dict[str, str]:
    """A session's principal tags: its role's IAM tags, overridden by its session tags (incoming transitive tags
    included) of the same key in any case (IAM User Guide, "Passing session tags in AWS STS")."""
    tags = dict(session_tags or {})
    if not role_tags:
        return tags
    overridden = {key.lower() for key in tags}
    merged = {key: value for key, value in role_tags.items() if key.lower() not in overridden}
    merged.update(tags)
    return merged


# The claims of a web identity's keys ("Available keys for AWS web identity federation"): with any prefix they
# describe the principal, also where the provider is a bare host name ("keycloak:sub", on a container network),
# which reads like a service prefix.
_WEB_IDENTITY_CLAIMS: Final = frozenset({"sub", "aud", "oaud", "amr", "azp", "email", "id", "user_id", "app_id"})


def _describes_principal(lowered: str) -> bool:
    """Whether a caller-given condition key (lower-cased) is one only the session may set."""
    if lowered.startswith(_PRINCIPAL_KEY_PREFIXES):
        return True
    if lowered.startswith("aws:"):
        return False
    return _FEDERATED_KEY.match(lowered) is not None or lowered.partition(":")[2] in _WEB_IDENTITY_CLAIMS


@functools.lru_cache(maxsize=64)
def _iso(epoch: int) -> str:
    """ISO 8601 UTC to the second (aws:CurrentTime), formatted once per second rather than per request."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def security_token(request: SignedRequest) -> str | None:
    """X-Amz-Security-Token, from a header or (presigned) the query."""
    for name, value in request.headers.items():
        if name.lower() == "x-amz-security-token":
            return value
    for component in request.query_string.split("&"):
        name, _, value = component.partition("=")
        if unquote_plus(name) == "X-Amz-Security-Token":  # the query as sent: its names may be percent-encoded
            return unquote_plus(value)
    return None


def _compress(data: bytes) -> bytes:
    """zlib (RFC 1950) at level 9 with a 4 KiB window and a small hash table: a session token's claims are a
    few hundred bytes, so the output is as small as with the defaults, while setting up the default 32 KiB
    window and 128 KiB of hash chains cost about ten times as much as compressing. ``zlib.decompress``
    reads the window size from the stream's header."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 12, 4)
    return compressor.compress(data) + compressor.flush()
