"""The STS wire (AWS query protocol): AssumeRoleWithWebIdentity, AssumeRoleWithSAML, AssumeRole, GetCallerIdentity.

Behaviour follows the STS API Reference. AssumeRoleWithWebIdentity is unsigned, as in AWS: the web identity
token is the credential. It is validated (:mod:`gateway.services.web_identity`), the role's trust policy is
evaluated against the token's claims as AWS does (``<provider>:aud``, ``:sub``, ``:amr``; principal
``Federated``), and temporary credentials are minted (:mod:`gateway.services.credentials`). A role that does
not exist and a trust policy that does not allow the caller are the same ``AccessDenied``, so the answer
does not reveal which roles exist.

AssumeRoleWithSAML (unsigned too) takes a signed SAML Response meant for AWS from an IdP registered as an IAM
SAML provider (:mod:`gateway.services.saml_federation`); the Role attribute must name the (role, provider)
pair asked for, the trust policy sees ``SAML:aud``, ``SAML:iss``, ``SAML:sub`` ..., and an assertion is
exchanged once.

AssumeRole is signed: by the admin credentials (the account's root, principal ``arn:aws:iam::<account>:root``)
or by a role session (role chaining, principal the assumed-role ARN); the trust policy decides.

Session tags (AssumeRole's Tags, a web identity token's ``https://aws.amazon.com/tags`` claim, a SAML
assertion's ``PrincipalTag:*`` attributes) need ``sts:TagSession`` in the trust policy too. Those marked
transitive (TransitiveTagKeys) pass on to every session chained from the session, which needs
``sts:TagSession`` for them in turn and may not override them (IAM User Guide, "Passing session tags in AWS
STS", "Chaining roles with session tags").
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any, Final

import structlog

from gateway.api.awsjson import request_keys
from gateway.api.awsquery import GLOBAL_REGION, QueryCall, QueryHandler, QueryService
from gateway.errors import (
    AccessDeniedException,
    GatehouseError,
    InvalidIdentityTokenException,
    InvalidParameterValueException,
    ValidationError,
)
from gateway.services.credentials import TemporaryCredentials
from gateway.services.iam import SET_SOURCE_IDENTITY, SOURCE_IDENTITY_KEY, SOURCE_IDENTITY_PATTERN, TAG_SESSION, Role
from gateway.services.policy import Decision
from gateway.services.saml_federation import (
    SESSION_DURATION_ATTRIBUTE,
    SESSION_NAME_ATTRIBUTE,
    SOURCE_IDENTITY_ATTRIBUTE,
    saml_context_keys,
)

log = structlog.get_logger("gateway.sts")

# RoleSessionName's constraint in the STS model (2 to 64 of these characters); a Java pattern, so \w is ASCII.
SESSION_NAME_PATTERN: Final = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
# IAM User Guide, "Role chaining": the longest session a role session may get by assuming another role.
ROLE_CHAINING_MAX_SECONDS: Final = 3600
SESSION_NAME_KEY: Final = "sts:RoleSessionName"
# The SAML SessionDuration attribute: whole seconds, in ASCII digits (str.isdigit also takes superscripts and other
# scripts' digits, which int() refuses); STS allows at most 43200, so a longer string is no duration.
SESSION_DURATION_PATTERN: Final = re.compile(r"[0-9]{1,9}")


def _credentials(creds: TemporaryCredentials) -> dict[str, Any]:
    return {
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": creds.expiration,
    }


def _no_managed_policies(params: dict[str, Any]) -> None:
    if params.get("PolicyArns"):
        # Gatehouse has inline role policies and session policies, but no managed policies to name.
        raise ValidationError("Managed session policies (PolicyArns) are not supported; pass Policy instead.")


def _denied(action: str) -> AccessDeniedException:
    return AccessDeniedException(f"Not authorized to perform {action}")


async def assume_role_with_web_identity(call: QueryCall) -> dict[str, Any]:
    p = call.params
    services = call.services
    _no_managed_policies(p)
    try:
        verified = await services.web_identity.verify(p["WebIdentityToken"])
    except GatehouseError as exc:
        log.info("sts.web_identity_rejected", role=p["RoleArn"], error=exc.type_name, detail=exc.message)
        raise
    _check_source_identity(verified.source_identity)
    role: Role | None = await services.iam.find_role_by_arn(p["RoleArn"])
    if role is None or not services.iam.trust_allows(
        role,
        verified.identity,
        request_tags=verified.principal_tags,
        extra_context={**_source_context(call), SESSION_NAME_KEY: p["RoleSessionName"]},
        source_identity=verified.source_identity,
    ):
        log.info(
            "sts.assume_role_denied",
            role=p["RoleArn"],
            provider=verified.identity.provider,
            subject=verified.identity.subject,
            reason="no such role" if role is None else "trust policy",
        )
        raise _denied("sts:AssumeRoleWithWebIdentity")
    creds = await services.credentials.mint(
        role,
        session_name=p["RoleSessionName"],
        identity_id=verified.identity.subject,
        source_identity=verified.source_identity,
        principal_tags=verified.principal_tags,
        session_policy=p.get("Policy"),
        duration_seconds=p.get("DurationSeconds", 3600),
        web_identity=verified.identity,
        transitive_tag_keys=_transitive_in(verified.principal_tags, verified.transitive_tag_keys),
    )
    log.info(
        "sts.assumed_role",
        role=role.arn,
        session=p["RoleSessionName"],
        provider=verified.identity.provider,
        subject=verified.identity.subject,
        access_key_id=creds.access_key_id,
        expires=int(creds.expiration.timestamp()),
    )
    result: dict[str, Any] = {
        "Credentials": _credentials(creds),
        "SubjectFromWebIdentityToken": verified.identity.subject,
        "AssumedRoleUser": {"AssumedRoleId": creds.assumed_role_id, "Arn": creds.assumed_role_arn},
        "Provider": verified.issuer,
        "Audience": verified.identity.audience[0],
    }
    if creds.packed_policy_size is not None:
        result["PackedPolicySize"] = creds.packed_policy_size
    if verified.source_identity is not None:
        result["SourceIdentity"] = verified.source_identity
    return result


async def assume_role_with_saml(call: QueryCall) -> dict[str, Any]:
    """STS AssumeRoleWithSAML: a signed SAML Response from an IdP registered as an IAM SAML provider."""
    p = call.params
    services = call.services
    _no_managed_policies(p)
    provider = await services.iam.find_saml_provider(p["PrincipalArn"])
    if provider is None:
        log.info("sts.saml_rejected", provider=p["PrincipalArn"], error="no such provider")
        raise InvalidIdentityTokenException(f"SAML provider {p['PrincipalArn']} does not exist in this account.")
    try:
        assertion = await services.saml.verify(
            provider.name, provider.updated_at, provider.metadata, p["SAMLAssertion"]
        )
        session_name = assertion.single(SESSION_NAME_ATTRIBUTE)
        if session_name is None or not SESSION_NAME_PATTERN.fullmatch(session_name):
            raise InvalidIdentityTokenException("The SAML assertion has no valid RoleSessionName attribute.")
        source_identity = assertion.single(SOURCE_IDENTITY_ATTRIBUTE)
        _check_source_identity(source_identity)
    except GatehouseError as exc:
        log.info("sts.saml_rejected", provider=p["PrincipalArn"], error=exc.type_name, detail=exc.message)
        raise
    keys = saml_context_keys(assertion, account_id=services.iam.account_id, provider_name=provider.name)
    # The session name and the caller's address are the request's, not the session's.
    trust_keys = {**keys, **_source_context(call), SESSION_NAME_KEY: session_name}
    tags = assertion.principal_tags()
    role = await services.iam.find_role_by_arn(p["RoleArn"])
    allowed = (
        role is not None
        and (p["RoleArn"], p["PrincipalArn"]) in assertion.role_pairs()
        and services.iam.trust_allows_federated(
            role,
            p["PrincipalArn"],
            trust_keys,
            action="sts:AssumeRoleWithSAML",
            request_tags=tags,
            source_identity=source_identity,
        )
    )
    if role is None or not allowed:
        log.info("sts.assume_role_denied", role=p["RoleArn"], provider=p["PrincipalArn"], subject=assertion.subject)
        raise _denied("sts:AssumeRoleWithSAML")
    duration = int(p.get("DurationSeconds", 3600))
    asserted = assertion.single(SESSION_DURATION_ATTRIBUTE)
    if asserted is not None and SESSION_DURATION_PATTERN.fullmatch(asserted):
        # The IdP's SessionDuration and the caller's DurationSeconds: the shorter one applies.
        duration = min(duration, int(asserted)) if "DurationSeconds" in p else int(asserted)
    # Everything that could still refuse the call is checked before the assertion is used up, so that a refused
    # call (by its holder or by someone who captured it) leaves it usable by a call that is right.
    services.credentials.check_request(role, duration, p.get("Policy"), tags)
    # One exchange per assertion: a captured Response cannot be used again (the marker outlives it).
    key = hashlib.sha256(f"{assertion.issuer}\n{assertion.assertion_id}".encode()).hexdigest()
    if not await services.store.use_saml_assertion(key, assertion.not_on_or_after + 60, time.time()):
        log.info("sts.saml_rejected", provider=p["PrincipalArn"], error="InvalidIdentityToken", detail="replayed")
        raise InvalidIdentityTokenException("The SAML assertion has already been used.")
    creds = await services.credentials.mint(
        role,
        session_name=session_name,
        identity_id=assertion.subject,
        source_identity=source_identity,
        principal_tags=tags,
        session_policy=p.get("Policy"),
        duration_seconds=duration,
        federation_keys=keys,
        transitive_tag_keys=_transitive_in(tags, assertion.transitive_tag_keys()),
    )
    log.info(
        "sts.assumed_role",
        role=role.arn,
        session=session_name,
        provider=p["PrincipalArn"],
        subject=assertion.subject,
        access_key_id=creds.access_key_id,
        expires=int(creds.expiration.timestamp()),
    )
    result: dict[str, Any] = {
        "Credentials": _credentials(creds),
        "AssumedRoleUser": {"AssumedRoleId": creds.assumed_role_id, "Arn": creds.assumed_role_arn},
        "Subject": assertion.subject,
        "SubjectType": assertion.subject_type,
        "Issuer": assertion.issuer,
        "Audience": keys["SAML:aud"],
        "NameQualifier": keys["SAML:namequalifier"],
    }
    if creds.packed_policy_size is not None:
        result["PackedPolicySize"] = creds.packed_policy_size
    if source_identity is not None:
        result["SourceIdentity"] = source_identity
    return result


def _check_source_identity(value: str | None) -> None:
    """A source identity from an IdP (SAML attribute, web identity token claim) of the form STS allows."""
    if value is not None and not SOURCE_IDENTITY_PATTERN.fullmatch(value):
        raise InvalidIdentityTokenException(
            "The source identity must be 2 to 64 letters, digits or characters of _+=,.@- (and not begin with aws:)."
        )


def _source_context(call: QueryCall) -> dict[str, Any]:
    return {"aws:SourceIp": call.source_ip} if call.source_ip else {}


async def assume_role(call: QueryCall) -> dict[str, Any]:
    p = call.params
    services = call.services
    _no_managed_policies(p)
    account = services.iam.account_id
    root = [f"arn:aws:iam::{account}:root", account]
    requested = {str(t["Key"]): str(t["Value"]) for t in p.get("Tags", [])}
    caller = call.caller
    if caller is not None and caller.guest:
        # A guest's session may not chain to a role that escapes its scope-down (CredentialService's guest).
        raise AccessDeniedException(
            f"User: {caller.assumed_role_arn} is not authorized to perform: sts:AssumeRole on resource: "
            f"{p['RoleArn']} because no session policy allows the sts:AssumeRole action"
        )
    transitive_keys = _request_transitive_keys(p.get("Tags", []), p.get("TransitiveTagKeys", []))
    # A chained session inherits the calling session's transitive tags, which the request may not override,
    # and passes them on in turn (STS API Reference, AssumeRole Tags and TransitiveTagKeys).
    inherited = caller.transitive_tags() if caller is not None else {}
    if {key.lower() for key in inherited} & {key.lower() for key in requested}:
        raise InvalidParameterValueException(
            "One of the specified transitive tag keys can't be set because it conflicts with a transitive tag key "
            "from the calling session."
        )
    tags = {**inherited, **requested}
    transitive_keys = [*inherited, *transitive_keys]
    # A source identity, once set, stays with every chained session (AWS: it cannot be changed).
    source_identity = (caller.source_identity if caller is not None else None) or p.get("SourceIdentity")
    # The request's own keys a trust policy may test (IAM User Guide, "IAM and AWS STS condition context keys").
    trust_keys: dict[str, Any] = {**_source_context(call), SESSION_NAME_KEY: p["RoleSessionName"]}
    if p.get("ExternalId") is not None:
        trust_keys["sts:ExternalId"] = p["ExternalId"]
    if p.get("TransitiveTagKeys"):
        trust_keys["sts:TransitiveTagKeys"] = list(p["TransitiveTagKeys"])
    if caller is not None:
        # The calling session's tags (role and session tags) are the principal's: a trust policy may test them.
        trust_keys.update({f"aws:PrincipalTag/{key}": value for key, value in caller.principal_tags.items()})
    role = await services.iam.find_role_by_arn(p["RoleArn"])

    def decide(role: Role, tags: dict[str, str]) -> bool:
        if caller is None:
            # The admin credentials are the account's root.
            decision = services.iam.trust_decision_principals(
                role, root, request_tags=tags, source_identity=source_identity, extra_context=trust_keys
            )
            return decision is Decision.ALLOW
        # Role chaining (IAM User Guide, "Policy evaluation logic", "Session policies"): a trust policy naming
        # the session or its role grants the call without the session's own policies allowing it, but an
        # explicit Deny in them still refuses it, and a session policy still limits it unless the trust policy
        # named the session itself. One naming only the account needs the session's own policies to allow
        # sts:AssumeRole on the target role (and sts:TagSession for session tags).
        # The session's own policies see the call's address and Region, as any of its calls does.
        own_keys = request_keys(caller, call.source_ip)
        tag_keys = {**own_keys, **_tag_keys(tags)}

        def trusts_as(principals: list[str]) -> Decision:
            # aws:PrincipalArn of a role session is its role's ARN ("AWS global condition context keys"), as in
            # the session's own policy checks (CredentialService.request_context).
            return services.iam.trust_decision_principals(
                role,
                principals,
                request_tags=tags,
                principal_arn=caller.role_arn,
                source_identity=source_identity,
                extra_context=trust_keys,
            )

        def trusts(principals: list[str]) -> bool:
            return trusts_as(principals) is Decision.ALLOW

        # One caller is its session, its role and its account at once: a Deny naming any of them refuses the
        # call, whichever of them an Allow names.
        if trusts_as([caller.assumed_role_arn, caller.role_arn, *root]) is Decision.DENY:
            return False
        credentials = services.credentials
        session_named = trusts([caller.assumed_role_arn])
        if session_named or trusts([caller.role_arn]):

            def stands(action: str, keys: dict[str, Any]) -> bool:
                return credentials.resource_grant_stands(caller, action, role.arn, keys, session_named=session_named)

            allowed = stands("sts:AssumeRole", own_keys) and (not tags or stands(TAG_SESSION, tag_keys))
        else:
            allowed = (
                trusts(root)
                and credentials.is_allowed(caller, "sts:AssumeRole", role.arn, own_keys)
                and (not tags or credentials.is_allowed(caller, TAG_SESSION, role.arn, tag_keys))
            )
        if allowed and source_identity is not None:
            # In a role chain the session's own policy must allow setting the source identity too.
            allowed = services.credentials.is_allowed(
                caller, SET_SOURCE_IDENTITY, role.arn, {**own_keys, SOURCE_IDENTITY_KEY: source_identity}
            )
        return allowed

    if role is None or not decide(role, tags):
        who = caller.assumed_role_arn if caller is not None else f"arn:aws:iam::{account}:root"
        # AWS names the action refused: sts:TagSession when the role could be assumed without the tags.
        action = "sts:TagSession" if role is not None and tags and decide(role, {}) else "sts:AssumeRole"
        log.info("sts.assume_role_denied", role=p["RoleArn"], caller=who, reason="trust policy", action=action)
        raise AccessDeniedException(f"User: {who} is not authorized to perform: {action} on resource: {p['RoleArn']}")
    duration = p.get("DurationSeconds", 3600)
    if caller is not None and duration > ROLE_CHAINING_MAX_SECONDS:
        # IAM User Guide, "Role chaining": a session assumed with a role session's credentials lasts at most one
        # hour, whatever the role's MaxSessionDuration.
        raise ValidationError(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
        )
    creds = await services.credentials.mint(
        role,
        session_name=p["RoleSessionName"],
        identity_id=caller.identity_id if caller is not None else None,
        source_identity=source_identity,
        principal_tags=tags,
        session_policy=p.get("Policy"),
        duration_seconds=duration,
        transitive_tag_keys=transitive_keys,
    )
    log.info(
        "sts.assumed_role",
        role=role.arn,
        session=p["RoleSessionName"],
        caller=caller.assumed_role_arn if caller is not None else root[0],
        access_key_id=creds.access_key_id,
        expires=int(creds.expiration.timestamp()),
    )
    result: dict[str, Any] = {
        "Credentials": _credentials(creds),
        "AssumedRoleUser": {"AssumedRoleId": creds.assumed_role_id, "Arn": creds.assumed_role_arn},
    }
    if creds.packed_policy_size is not None:
        result["PackedPolicySize"] = creds.packed_policy_size
    if source_identity is not None:
        result["SourceIdentity"] = source_identity
    return result


def _request_transitive_keys(tags: list[dict[str, Any]], transitive: list[str]) -> list[str]:
    """AssumeRole's Tags and TransitiveTagKeys checked against each other (tag keys are case-insensitive: "you
    cannot have separate Department and department tag keys"); answers the transitive keys as the tags spell
    them."""
    spelled: dict[str, str] = {}
    for tag in tags:
        key = str(tag["Key"])
        if key.lower() in spelled:
            raise InvalidParameterValueException(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        spelled[key.lower()] = key
    keys: list[str] = []
    for name in transitive:
        found = spelled.get(str(name).lower())
        if found is None:
            raise InvalidParameterValueException(
                "The specified transitive tag key must be included in the requested tags."
            )
        if found not in keys:
            keys.append(found)
    return keys


def _tag_keys(tags: dict[str, str]) -> dict[str, Any]:
    """The request's session tags as condition keys (aws:RequestTag/<key>, aws:TagKeys)."""
    keys: dict[str, Any] = {f"aws:RequestTag/{key}": value for key, value in tags.items()}
    keys["aws:TagKeys"] = list(tags)
    return keys


def _transitive_in(tags: dict[str, str], keys: Any) -> list[str]:
    """The keys of ``tags`` an IdP marked transitive (its TransitiveTagKeys, matched without regard to case)."""
    wanted = {str(key).lower() for key in keys}
    return [key for key in tags if key.lower() in wanted]


async def get_caller_identity(call: QueryCall) -> dict[str, Any]:
    account = call.services.iam.account_id
    if call.caller is not None:
        return {"UserId": call.caller.user_id, "Account": account, "Arn": call.caller.assumed_role_arn}
    return {"UserId": call.admin_key_id or "", "Account": account, "Arn": f"arn:aws:iam::{account}:root"}


OPERATIONS: dict[str, QueryHandler] = {
    "AssumeRoleWithWebIdentity": assume_role_with_web_identity,
    "AssumeRoleWithSAML": assume_role_with_saml,
    "AssumeRole": assume_role,
    "GetCallerIdentity": get_caller_identity,
}


def sts_service() -> QueryService:
    # No permission is needed to ask who you are; AssumeRole is decided by the target role's trust policy.
    # STS's global endpoint is signed for us-east-1, a regional one for its region.
    return QueryService(
        name="sts",
        operations=OPERATIONS,
        open_to_sessions=frozenset({"GetCallerIdentity", "AssumeRole"}),
        global_region=GLOBAL_REGION,
    )
