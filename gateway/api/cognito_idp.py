"""The Cognito user pools API (``AWSCognitoIdentityProviderService.*``): thin handlers over the services.

Each handler reads its request members (already checked against botocore's model), calls a service, and
returns the response shape the model names. Errors are raised, never rendered here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.api.awsjson import Call, Handler, JsonService
from gateway.api.model import ServiceModel
from gateway.api.paging import page_key, page_offset, page_token
from gateway.errors import (
    GatehouseError,
    InvalidParameterException,
    NotAuthorizedException,
    OperationNotEnabledException,
    ResourceNotFoundException,
    UnauthorizedException,
    UserNotFoundException,
)
from gateway.services.auth import AuthContext
from gateway.services.container import Services
from gateway.services.groups import group_type
from gateway.services.log_delivery import log_delivery_configuration, set_log_delivery
from gateway.services.mfa_legacy import mfa_options
from gateway.services.passwordless import passwordless_sign_up, sign_up_session
from gateway.services.pools import ClientView, PoolView
from gateway.services.risk import check_context_data_propagation
from gateway.services.token_exchange import ExchangeRequest
from gateway.services.tokens import VerifiedAccessToken
from gateway.services.user_import import csv_header
from gateway.services.users import attributes_dict, attributes_list
from gateway.services.webauthn import PasskeyService
from gateway.storage.base import UserRecord

OPERATIONS: dict[str, Handler] = {}


def operation(handler: Handler) -> Handler:
    OPERATIONS[handler.__name__] = handler
    return handler


def cognito_idp_service() -> JsonService:
    return JsonService(
        model=ServiceModel.load("cognito-idp"),
        operations=OPERATIONS,
        wire="cognito-idp",
        signing_name="cognito-idp",
        session_resources=_session_resources,
        resource_tags=_resource_tags,
        passed_roles=_passed_roles,
        passed_to="cognito-identity.amazonaws.com",
    )


async def _session_resources(services: Services, operation: str, params: Mapping[str, Any]) -> list[str]:
    """The ARN a call signed with temporary credentials acts on, for its policy check (the Service Authorization
    Reference's resource types for Cognito user pools): the user pool it names, or the resource a tag operation
    names, or the pool of the app client it names; else "*" (CreateUserPool, ListUserPools, a domain's
    operations)."""
    pool_id = params.get("UserPoolId")
    if isinstance(pool_id, str):
        return [services.pools.arn(pool_id)]
    arn = params.get("ResourceArn")
    if isinstance(arn, str):
        return [arn]
    client_id = params.get("ClientId")
    if isinstance(client_id, str):
        try:
            return [services.pools.arn((await services.pools.find_client(client_id)).pool_id)]
        except GatehouseError:
            pass  # no such client: the call itself says so, if the session may make it at all
    return ["*"]


def _passed_roles(operation: str, params: Mapping[str, Any]) -> list[str]:
    """The role a group is given (CreateGroup, UpdateGroup): identity pools hand it to the group's members."""
    role = params.get("RoleArn") if operation in ("CreateGroup", "UpdateGroup") else None
    return [role] if isinstance(role, str) else []


async def _resource_tags(services: Services, arn: str) -> Mapping[str, str]:
    """The tags of the user pool an ARN names, for aws:ResourceTag/<key>; none for an ARN that names none."""
    pool_id = arn.rpartition(":userpool/")[2]
    if not pool_id or arn != services.pools.arn(pool_id):
        return {}
    try:
        pool = await services.pools.get_pool(pool_id)
    except GatehouseError:
        return {}  # no such pool: the call itself says so
    return dict(pool.settings.get("UserPoolTags") or {})


# --- helpers -----------------------------------------------------------------------------------------------


async def pool_of(call: Call) -> PoolView:
    return await call.services.pools.get_pool(call.params["UserPoolId"])


async def client_of(call: Call) -> tuple[PoolView, ClientView]:
    """The client a public operation names, and its pool."""
    client = await call.services.pools.find_client(call.params["ClientId"])
    pool = await call.services.pools.get_pool(client.pool_id)
    return pool, client


async def admin_user(call: Call) -> tuple[PoolView, UserRecord]:
    pool = await pool_of(call)
    return pool, await call.services.users.get(pool, call.params["Username"])


async def token_user(call: Call) -> tuple[PoolView, UserRecord, VerifiedAccessToken]:
    """The user an access token speaks for, after every check (signature, expiry, revocation, user state)."""
    token = await call.services.tokens.verify_access_token(call.params["AccessToken"])
    pool = await call.services.pools.get_pool(token.pool_id)
    user = token.user
    if user is None or user.sub != token.sub:
        raise NotAuthorizedException("User does not exist.")
    if not user.enabled:
        raise NotAuthorizedException("User is disabled.")
    if user.tokens_valid_after and token.claims.get("iat", 0) < int(user.tokens_valid_after):
        raise NotAuthorizedException("Access Token has been revoked")
    return pool, user, token


def limit_of(call: Call, key: str, default: int, maximum: int) -> int:
    value = call.params.get(key)
    if value is None or value == 0:
        # QueryLimitType allows 0: answered as no limit given (the default page), never as an empty page.
        return default
    return max(1, min(int(value), maximum))


def mfa_members(user: UserRecord) -> dict[str, Any]:
    """MFA settings as GetUser/AdminGetUser report them (filled in by the sign-in security services)."""
    result: dict[str, Any] = {}
    mfa = user.settings.get("mfa") or {}
    if mfa.get("preferred"):
        result["PreferredMfaSetting"] = mfa["preferred"]
    if mfa.get("enabled"):
        result["UserMFASettingList"] = list(mfa["enabled"])
    return result


# --- pools ---------------------------------------------------------------------------------------------------


@operation
async def CreateUserPool(call: Call) -> dict[str, Any]:
    pool = await call.services.pools.create_pool(call.params["PoolName"], call.params)
    # The first signing key is made now, so concurrent first sign-ins (in several processes) find one key.
    await call.services.tokens.keys.rotate(pool.id)
    return {"UserPool": await call.services.pools.pool_type(pool)}


@operation
async def DescribeUserPool(call: Call) -> dict[str, Any]:
    described = await call.services.pools.describe_pool(call.params["UserPoolId"])
    for record in await call.services.store.list_pool_domains(call.params["UserPoolId"]):
        described["CustomDomain" if "." in record.domain else "Domain"] = record.domain
    return {"UserPool": described}


@operation
async def UpdateUserPool(call: Call) -> dict[str, Any]:
    await call.services.pools.update_pool(call.params["UserPoolId"], call.params)
    return {}


@operation
async def DeleteUserPool(call: Call) -> dict[str, Any]:
    await call.services.pools.delete_pool(call.params["UserPoolId"])
    call.services.tokens.keys.forget(call.params["UserPoolId"])
    return {}


@operation
async def ListUserPools(call: Call) -> dict[str, Any]:
    limit = limit_of(call, "MaxResults", 60, 60)
    pools, next_token = await call.services.pools.list_pools(page_key(call, call.params.get("NextToken")), limit)
    result: dict[str, Any] = {
        "UserPools": [
            {
                "Id": p.id,
                "Name": p.name,
                "LambdaConfig": p.settings.get("LambdaConfig", {}),
                "Status": "Enabled",
                "CreationDate": p.created_at,
                "LastModifiedDate": p.updated_at,
            }
            for p in pools
        ]
    }
    if next_token:
        result["NextToken"] = page_token(call, next_token)
    return result


@operation
async def AddCustomAttributes(call: Call) -> dict[str, Any]:
    await call.services.pools.add_custom_attributes(call.params["UserPoolId"], call.params["CustomAttributes"])
    return {}


@operation
async def TagResource(call: Call) -> dict[str, Any]:
    pool_id = _pool_id_from_arn(call, call.params["ResourceArn"])
    await call.services.pools.set_tags(pool_id, call.params.get("Tags") or {})
    return {}


@operation
async def UntagResource(call: Call) -> dict[str, Any]:
    pool_id = _pool_id_from_arn(call, call.params["ResourceArn"])
    await call.services.pools.set_tags(pool_id, None, remove=list(call.params.get("TagKeys") or []))
    return {}


@operation
async def ListTagsForResource(call: Call) -> dict[str, Any]:
    pool = await call.services.pools.get_pool(_pool_id_from_arn(call, call.params["ResourceArn"]))
    return {"Tags": dict(pool.settings.get("UserPoolTags") or {})}


@operation
async def GetUserPoolMfaConfig(call: Call) -> dict[str, Any]:
    return call.services.pools.mfa_config(await pool_of(call))


@operation
async def SetUserPoolMfaConfig(call: Call) -> dict[str, Any]:
    pools = call.services.pools
    return pools.mfa_config(await pools.set_mfa_config(call.params["UserPoolId"], call.params))


def _pool_id_from_arn(call: Call, arn: str) -> str:
    prefix, _, pool_id = arn.rpartition(":userpool/")
    if not prefix.startswith("arn:") or not pool_id:
        raise InvalidParameterException("Invalid ResourceArn.")
    if arn != call.services.pools.arn(pool_id):
        # Another account's, partition's or service's resource is not one of these pools, whatever its id.
        raise ResourceNotFoundException(f"User pool {pool_id} does not exist.")
    return pool_id


# --- clients ---------------------------------------------------------------------------------------------------


@operation
async def CreateUserPoolClient(call: Call) -> dict[str, Any]:
    pools = call.services.pools
    await call.services.domains.check_client_oauth_settings(
        call.params["UserPoolId"],
        call.params,
        bool(call.params.get("GenerateSecret") or call.params.get("ClientSecret")),
    )
    check_context_data_propagation(
        call.params, bool(call.params.get("GenerateSecret") or call.params.get("ClientSecret"))
    )
    client = await pools.create_client(call.params["UserPoolId"], call.params["ClientName"], call.params)
    return {"UserPoolClient": pools.client_type(client)}


@operation
async def DescribeUserPoolClient(call: Call) -> dict[str, Any]:
    pools = call.services.pools
    client = await pools.get_client(call.params["UserPoolId"], call.params["ClientId"])
    return {"UserPoolClient": pools.client_type(client)}


@operation
async def UpdateUserPoolClient(call: Call) -> dict[str, Any]:
    pools = call.services.pools
    existing = await pools.get_client(call.params["UserPoolId"], call.params["ClientId"])
    await call.services.domains.check_client_oauth_settings(
        call.params["UserPoolId"], call.params, existing.secret is not None
    )
    check_context_data_propagation(call.params, existing.secret is not None)
    client = await pools.update_client(call.params["UserPoolId"], call.params["ClientId"], call.params)
    return {"UserPoolClient": pools.client_type(client)}


@operation
async def DeleteUserPoolClient(call: Call) -> dict[str, Any]:
    await call.services.pools.delete_client(call.params["UserPoolId"], call.params["ClientId"])
    return {}


@operation
async def ListUserPoolClients(call: Call) -> dict[str, Any]:
    limit = limit_of(call, "MaxResults", 60, 60)
    clients, next_token = await call.services.pools.list_clients(
        call.params["UserPoolId"], page_key(call, call.params.get("NextToken"), call.params["UserPoolId"]), limit
    )
    result: dict[str, Any] = {
        "UserPoolClients": [{"ClientId": c.id, "UserPoolId": c.pool_id, "ClientName": c.name} for c in clients]
    }
    if next_token:
        result["NextToken"] = page_token(call, next_token, call.params["UserPoolId"])
    return result


# --- client secrets (rotation) -----------------------------------------------------------------------------------
# A confidential client holds up to two active secrets; any of them authenticates it everywhere (SECRET_HASH,
# the OAuth endpoints, RevokeToken, GetTokensFromRefreshToken, GetClientToken), and a deleted one nowhere, at
# once. DescribeUserPoolClient's ClientSecret stays the oldest active secret.


@operation
async def AddUserPoolClientSecret(call: Call) -> dict[str, Any]:
    descriptor = await call.services.pools.add_client_secret(
        call.params["UserPoolId"], call.params["ClientId"], call.params.get("ClientSecret")
    )
    return {"ClientSecretDescriptor": descriptor}


@operation
async def ListUserPoolClientSecrets(call: Call) -> dict[str, Any]:
    # "The response does not include pagination tokens as there are only 2 secrets at any given time".
    secrets = await call.services.pools.list_client_secrets(call.params["UserPoolId"], call.params["ClientId"])
    return {"ClientSecrets": secrets}


@operation
async def DeleteUserPoolClientSecret(call: Call) -> dict[str, Any]:
    await call.services.pools.delete_client_secret(
        call.params["UserPoolId"], call.params["ClientId"], call.params["ClientSecretId"]
    )
    return {}


# --- users: public -----------------------------------------------------------------------------------------------


@operation
async def SignUp(call: Call) -> dict[str, Any]:
    pool, client = await client_of(call)
    password = call.params.get("Password") or None
    if password is None and not passwordless_sign_up(pool):
        raise InvalidParameterException("Password is required: passwordless sign-up is not enabled for this user pool.")
    user, delivery = await call.services.users.sign_up(
        pool,
        client,
        username=call.params["Username"],
        password=password,
        attributes=attributes_dict(call.params.get("UserAttributes")),
        secret_hash_value=call.params.get("SecretHash"),
        client_metadata=call.params.get("ClientMetadata"),
        validation_data=attributes_dict(call.params.get("ValidationData")),
    )
    result: dict[str, Any] = {"UserConfirmed": user.status == "CONFIRMED", "UserSub": user.sub}
    if delivery is not None:
        result["CodeDeliveryDetails"] = delivery.to_json()
    return result


@operation
async def ConfirmSignUp(call: Call) -> dict[str, Any]:
    pool, client = await client_of(call)
    user, verified = await call.services.users.confirm_sign_up(
        pool,
        client,
        username=call.params["Username"],
        code=call.params["ConfirmationCode"],
        secret_hash_value=call.params.get("SecretHash"),
        force_alias_creation=bool(call.params.get("ForceAliasCreation")),
        client_metadata=call.params.get("ClientMetadata"),
    )
    session = await sign_up_session(call.services.auth, _auth_context(call, pool, client, admin=False), user, verified)
    return {"Session": session} if session else {}


@operation
async def ResendConfirmationCode(call: Call) -> dict[str, Any]:
    pool, client = await client_of(call)
    delivery = await call.services.users.resend_confirmation_code(
        pool, client, call.params["Username"], call.params.get("SecretHash"), call.params.get("ClientMetadata")
    )
    return {"CodeDeliveryDetails": delivery.to_json()} if delivery else {}


@operation
async def ForgotPassword(call: Call) -> dict[str, Any]:
    pool, client = await client_of(call)
    delivery = await call.services.users.forgot_password(
        pool, client, call.params["Username"], call.params.get("SecretHash"), call.params.get("ClientMetadata")
    )
    return {"CodeDeliveryDetails": delivery.to_json()}


@operation
async def ConfirmForgotPassword(call: Call) -> dict[str, Any]:
    pool, client = await client_of(call)
    await call.services.users.confirm_forgot_password(
        pool,
        client,
        username=call.params["Username"],
        code=call.params["ConfirmationCode"],
        password=call.params["Password"],
        secret_hash_value=call.params.get("SecretHash"),
        client_metadata=call.params.get("ClientMetadata"),
    )
    return {}


@operation
async def GetUser(call: Call) -> dict[str, Any]:
    _, user, token = await token_user(call)
    # Cached: no store read (a client ID metadata document client: its cached document).
    client = await call.services.oauth.find_client(token.client_id, token.pool_id)
    return {
        "Username": user.username,
        "UserAttributes": attributes_list(call.services.users.readable_attributes(user, client)),
        **mfa_members(user),
        **mfa_options(user),
    }


@operation
async def UpdateUserAttributes(call: Call) -> dict[str, Any]:
    pool, user, token = await token_user(call)
    client = await call.services.oauth.find_client(token.client_id, token.pool_id)
    deliveries = await call.services.users.update_attributes(
        pool,
        user,
        attributes_dict(call.params["UserAttributes"]),
        admin=False,
        client=client,
        client_metadata=call.params.get("ClientMetadata"),
    )
    return {"CodeDeliveryDetailsList": [d.to_json() for d in deliveries]}


@operation
async def DeleteUserAttributes(call: Call) -> dict[str, Any]:
    pool, user, token = await token_user(call)
    client = await call.services.oauth.find_client(token.client_id, token.pool_id)
    await call.services.users.delete_attributes(
        pool, user, call.params["UserAttributeNames"], admin=False, client=client
    )
    return {}


@operation
async def DeleteUser(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    await call.services.users.delete(pool, user)
    return {}


@operation
async def ChangePassword(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    await call.services.users.change_password(
        pool, user, call.params.get("PreviousPassword") or None, call.params["ProposedPassword"]
    )
    return {}


@operation
async def GetUserAttributeVerificationCode(call: Call) -> dict[str, Any]:
    pool, user, token = await token_user(call)
    delivery = await call.services.users.send_attribute_code(
        pool,
        user,
        call.params["AttributeName"],
        client_id=token.client_id,
        client_metadata=call.params.get("ClientMetadata"),
    )
    return {"CodeDeliveryDetails": delivery.to_json()}


@operation
async def VerifyUserAttribute(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    await call.services.users.verify_attribute(pool, user, call.params["AttributeName"], call.params["Code"])
    return {}


@operation
async def GlobalSignOut(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    await call.services.users.global_sign_out(pool, user)
    return {}


def _token_or_session(call: Call) -> str | None:
    """The Session of an MFA_SETUP challenge, or None when the call is authorised by its AccessToken."""
    access, session = call.params.get("AccessToken"), call.params.get("Session")
    if bool(access) == bool(session):
        raise InvalidParameterException("Either AccessToken or Session is required, but not both.")
    return str(session) if session else None


@operation
async def AssociateSoftwareToken(call: Call) -> dict[str, Any]:
    session = _token_or_session(call)
    if session is not None:
        secret, next_session = await call.services.auth.associate_in_setup(session)
        return {"SecretCode": secret, "Session": next_session}
    pool, user, _ = await token_user(call)
    return {"SecretCode": await call.services.auth.mfa.associate(pool, user)}


@operation
async def VerifySoftwareToken(call: Call) -> dict[str, Any]:
    session = _token_or_session(call)
    code, device = str(call.params["UserCode"]), call.params.get("FriendlyDeviceName")
    if session is not None:
        next_session = await call.services.auth.verify_in_setup(session, code, device)
        return {"Status": "SUCCESS", "Session": next_session}
    pool, user, _ = await token_user(call)
    await call.services.auth.mfa.verify(pool, user, code, device, enable=False)
    return {"Status": "SUCCESS"}


@operation
async def SetUserMFAPreference(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    await call.services.auth.mfa.set_preference(pool, user, call.params)
    return {}


@operation
async def RevokeToken(call: Call) -> dict[str, Any]:
    try:
        _, client = await client_of(call)
    except ResourceNotFoundException:
        # RevokeToken's errors (service model) have no ResourceNotFoundException either, and Cognito documents
        # no other answer for an unknown ClientId: it is a bad client credential like a wrong secret, and the
        # same answer for both tells no caller which client IDs exist.
        raise UnauthorizedException("Invalid client or secret") from None
    if client.secret is not None and not client.secret_matches(call.params.get("ClientSecret")):
        # RevokeToken's errors (service model) have no NotAuthorizedException: a bad client credential is
        # UnauthorizedException, as Cognito answers ("Invalid client or secret"). Any active secret is good.
        raise UnauthorizedException("Invalid client or secret")
    await call.services.auth.revoke(client, call.params["Token"])
    return {}


# --- log export (gateway/services/log_delivery.py) ---------------------------------------------------------------


@operation
async def GetLogDeliveryConfiguration(call: Call) -> dict[str, Any]:
    return {"LogDeliveryConfiguration": log_delivery_configuration(await pool_of(call))}


@operation
async def SetLogDeliveryConfiguration(call: Call) -> dict[str, Any]:
    pool = await set_log_delivery(call.services.pools, call.params["UserPoolId"], call.params["LogConfigurations"])
    return {"LogDeliveryConfiguration": log_delivery_configuration(pool)}


# --- user sessions (gateway/services/sessions.py) ----------------------------------------------------------------


@operation
async def GetUserPoolSessionConfiguration(call: Call) -> dict[str, Any]:
    return call.services.sessions.pool_config(await pool_of(call))


@operation
async def SetUserPoolSessionConfiguration(call: Call) -> dict[str, Any]:
    sessions = call.services.sessions
    pool = await sessions.set_pool_config(
        call.params["UserPoolId"], call.params["UserSessionTracking"], call.params["TokenSession"]["MaxPerUser"]
    )
    return sessions.pool_config(pool)


@operation
async def GetUserPoolClientSessionConfiguration(call: Call) -> dict[str, Any]:
    return await call.services.sessions.client_config(call.params["UserPoolId"], call.params["ClientId"])


@operation
async def SetUserPoolClientSessionConfiguration(call: Call) -> dict[str, Any]:
    return await call.services.sessions.set_client_config(
        call.params["UserPoolId"], call.params["ClientId"], call.params["SSOSession"]["MaxValidityMinutes"]
    )


async def _list_sessions(call: Call, pool: PoolView, user: UserRecord, current_origin: str | None) -> dict[str, Any]:
    # A token pages one user's list (the user's sub binds it: not another's, nor a same-named successor's).
    listed = (pool.id, user.sub)
    sessions, following = await call.services.sessions.list_sessions(
        pool,
        user,
        current_origin=current_origin,
        offset=page_offset(call, call.params.get("NextToken"), *listed),
    )
    result: dict[str, Any] = {"Sessions": sessions}
    if following is not None:
        result["NextToken"] = page_token(call, str(following), *listed)
    return result


@operation
async def ListUserSessions(call: Call) -> dict[str, Any]:
    pool, user, token = await token_user(call)
    return await _list_sessions(call, pool, user, token.origin_jti)


@operation
async def AdminListUserSessions(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    # "This value is always false for the AdminListUserSessions operation, which doesn't take an access token."
    return await _list_sessions(call, pool, user, None)


@operation
async def RevokeUserSession(call: Call) -> dict[str, Any]:
    pool, user, token = await token_user(call)
    await call.services.sessions.revoke(
        pool,
        user,
        call.params["SessionId"],
        linked=call.params.get("RevokeAssociatedSessions") == "LINKED",
        current_origin=token.origin_jti,
    )
    return {}


@operation
async def AdminRevokeUserSession(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.sessions.revoke(
        pool,
        user,
        call.params["SessionId"],
        linked=call.params.get("RevokeAssociatedSessions") == "LINKED",
        current_origin=None,
    )
    return {}


# --- users: admin ------------------------------------------------------------------------------------------------


@operation
async def AdminCreateUser(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    user = await call.services.users.admin_create_user(
        pool,
        username=call.params["Username"],
        attributes=attributes_dict(call.params.get("UserAttributes")),
        temporary_password=call.params.get("TemporaryPassword"),
        message_action=call.params.get("MessageAction"),
        delivery_mediums=list(call.params.get("DesiredDeliveryMediums") or []),
        force_alias_creation=bool(call.params.get("ForceAliasCreation")),
        client_metadata=call.params.get("ClientMetadata"),
        validation_data=attributes_dict(call.params.get("ValidationData")),
    )
    return {"User": call.services.users.user_type(user)}


@operation
async def AdminGetUser(call: Call) -> dict[str, Any]:
    _, user = await admin_user(call)
    users = call.services.users
    return {
        "Username": user.username,
        "UserAttributes": attributes_list(users.all_attributes(user)),
        "UserCreateDate": user.created_at,
        "UserLastModifiedDate": user.updated_at,
        "Enabled": user.enabled,
        "UserStatus": user.status,
        **mfa_members(user),
        **mfa_options(user),
    }


@operation
async def AdminSetUserMFAPreference(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.auth.mfa.set_preference(pool, user, call.params)
    return {}


@operation
async def AdminDeleteUser(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.users.delete(pool, user)
    return {}


@operation
async def AdminUpdateUserAttributes(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.users.update_attributes(
        pool,
        user,
        attributes_dict(call.params["UserAttributes"]),
        admin=True,
        client_metadata=call.params.get("ClientMetadata"),
    )
    return {}


@operation
async def AdminDeleteUserAttributes(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.users.delete_attributes(pool, user, call.params["UserAttributeNames"], admin=True)
    return {}


@operation
async def AdminEnableUser(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.users.set_enabled(pool, user, True)
    return {}


@operation
async def AdminDisableUser(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.users.set_enabled(pool, user, False)
    return {}


@operation
async def AdminConfirmSignUp(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    await call.services.users.admin_confirm_sign_up(
        pool, call.params["Username"], client_metadata=call.params.get("ClientMetadata")
    )
    return {}


@operation
async def AdminSetUserPassword(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.users.set_password(
        pool, user, call.params["Password"], permanent=bool(call.params.get("Permanent", False)), by_admin=True
    )
    return {}


@operation
async def AdminResetUserPassword(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.users.admin_reset_password(pool, user, call.params.get("ClientMetadata"))
    return {}


@operation
async def AdminUserGlobalSignOut(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.users.global_sign_out(pool, user)
    return {}


@operation
async def ListUsers(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    to_get = call.params.get("AttributesToGet")
    if to_get:
        call.services.users.check_attribute_names(pool, to_get)
    listed = (pool.id, call.params.get("Filter") or "")  # a token pages one pool's users under one filter
    users, next_token = await call.services.users.list_users(
        pool,
        filter_expr=call.params.get("Filter") or None,
        limit=limit_of(call, "Limit", 60, 60),
        next_token=page_key(call, call.params.get("PaginationToken"), *listed),
    )
    result: dict[str, Any] = {"Users": [call.services.users.user_type(u, attributes_to_get=to_get) for u in users]}
    if next_token:
        result["PaginationToken"] = page_token(call, next_token, *listed)
    return result


# --- groups ----------------------------------------------------------------------------------------------------


@operation
async def CreateGroup(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    group = await call.services.groups.create(
        pool,
        call.params["GroupName"],
        description=call.params.get("Description"),
        role_arn=call.params.get("RoleArn"),
        precedence=call.params.get("Precedence"),
    )
    return {"Group": group_type(group)}


@operation
async def GetGroup(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    return {"Group": group_type(await call.services.groups.get(pool, call.params["GroupName"]))}


@operation
async def UpdateGroup(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    changes: dict[str, Any] = {k: call.params[k] for k in ("Description", "RoleArn", "Precedence") if k in call.params}
    return {"Group": group_type(await call.services.groups.update(pool, call.params["GroupName"], changes))}


@operation
async def DeleteGroup(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    await call.services.groups.delete(pool, call.params["GroupName"])
    return {}


@operation
async def ListGroups(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    groups, next_token = await call.services.groups.list_page(
        pool, page_key(call, call.params.get("NextToken"), pool.id), limit_of(call, "Limit", 60, 60)
    )
    result: dict[str, Any] = {"Groups": [group_type(g) for g in groups]}
    if next_token:
        result["NextToken"] = page_token(call, next_token, pool.id)
    return result


@operation
async def AdminAddUserToGroup(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.groups.add_user(pool, user, call.params["GroupName"])
    return {}


@operation
async def AdminRemoveUserFromGroup(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.groups.remove_user(pool, user, call.params["GroupName"])
    return {}


@operation
async def AdminListGroupsForUser(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    # In name order by code point (whatever order a backend keeps), which the token's position refers to.
    groups = sorted(await call.services.groups.for_user(pool, user), key=lambda g: g.name)
    limit = limit_of(call, "Limit", 60, 60)
    # The token holds the last group name listed, not an offset: a membership ended or begun between pages
    # then neither skips nor repeats a group ("the next set of items after the current list").
    listed = (pool.id, user.username_key, "after-name")
    after = page_key(call, call.params.get("NextToken"), *listed)
    if after is not None:
        groups = [g for g in groups if g.name > after]
    page = groups[:limit]
    result: dict[str, Any] = {"Groups": [group_type(g) for g in page]}
    if len(groups) > limit:
        result["NextToken"] = page_token(call, page[-1].name, *listed)
    return result


@operation
async def ListUsersInGroup(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    listed = (pool.id, call.params["GroupName"])
    users, next_token = await call.services.groups.members(
        pool,
        call.params["GroupName"],
        page_key(call, call.params.get("NextToken"), *listed),
        limit_of(call, "Limit", 60, 60),
    )
    result: dict[str, Any] = {"Users": [call.services.users.user_type(u) for u in users]}
    if next_token:
        result["NextToken"] = page_token(call, next_token, *listed)
    return result


# --- sign-in -----------------------------------------------------------------------------------------------------


def _auth_context(call: Call, pool: PoolView, client: ClientView, *, admin: bool) -> AuthContext:
    return AuthContext(
        pool=pool,
        client=client,
        admin=admin,
        client_metadata=call.params.get("ClientMetadata") or {},
        source_ip=call.source_ip,
        user_agent=call.user_agent,
        context_data=call.params.get("ContextData") if admin else call.params.get("UserContextData"),
        session=call.params.get("Session") or None,
    )


@operation
async def InitiateAuth(call: Call) -> dict[str, Any]:
    pool, client = await client_of(call)
    ctx = _auth_context(call, pool, client, admin=False)
    result = await call.services.auth.initiate(ctx, call.params["AuthFlow"], call.params.get("AuthParameters") or {})
    return result.to_json()


@operation
async def AdminInitiateAuth(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    client = await call.services.pools.get_client(pool.id, call.params["ClientId"])
    ctx = _auth_context(call, pool, client, admin=True)
    result = await call.services.auth.initiate(ctx, call.params["AuthFlow"], call.params.get("AuthParameters") or {})
    return result.to_json()


@operation
async def RespondToAuthChallenge(call: Call) -> dict[str, Any]:
    pool, client = await client_of(call)
    ctx = _auth_context(call, pool, client, admin=False)
    result = await call.services.auth.respond(
        ctx, call.params["ChallengeName"], call.params.get("ChallengeResponses") or {}, call.params.get("Session")
    )
    return result.to_json()


@operation
async def AdminRespondToAuthChallenge(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    client = await call.services.pools.get_client(pool.id, call.params["ClientId"])
    ctx = _auth_context(call, pool, client, admin=True)
    result = await call.services.auth.respond(
        ctx, call.params["ChallengeName"], call.params.get("ChallengeResponses") or {}, call.params.get("Session")
    )
    return result.to_json()


@operation
async def GetTokensFromRefreshToken(call: Call) -> dict[str, Any]:
    pool, client = await client_of(call)
    if client.secret is not None and not client.secret_matches(call.params.get("ClientSecret")):
        raise NotAuthorizedException("Unable to verify secret hash for client " + client.id)
    ctx = _auth_context(call, pool, client, admin=False)
    result = await call.services.auth.refresh_screened(
        ctx, call.params["RefreshToken"], device_key=call.params.get("DeviceKey")
    )
    body = result.to_json()
    body.pop("ChallengeParameters", None)
    return body


@operation
async def GetClientToken(call: Call) -> dict[str, Any]:
    """Machine-to-machine access tokens through the API: the token /oauth2/token's client_credentials grant
    issues the same client; its ClientMetadata goes to a version 3 pre token generation function."""
    token, seconds = await call.services.oauth.get_client_token(
        call.params["ClientId"], call.params["Secret"], call.params.get("Scopes"), call.params.get("ClientMetadata")
    )
    return {"ClientAuthenticationResult": {"AccessToken": token, "ExpiresIn": seconds, "TokenType": "Bearer"}}


@operation
async def GetDerivedToken(call: Call) -> dict[str, Any]:
    """OAuth 2.0 Token Exchange (RFC 8693) on the API (gateway/services/token_exchange.py): signed with IAM
    credentials, or unsigned with the client's id and, for a client with a secret, ClientSecret."""
    params = call.params
    exchange = call.services.oauth.exchange
    pool, client = await exchange.api_client(
        params["ClientId"], params.get("ClientSecret"), signed=call.identity is not None
    )
    audiences, resources = params.get("Audiences") or [], params.get("Resources") or []
    derived = await exchange.exchange(
        pool,
        client,
        ExchangeRequest(
            subject_token=params["SubjectToken"],
            subject_token_type=params["SubjectTokenType"],
            actor_token=params.get("ActorToken"),
            actor_token_type=params.get("ActorTokenType"),
            scopes=tuple(params["Scopes"]) if params.get("Scopes") else None,
            audience=audiences[0] if audiences else None,
            resource=resources[0] if resources else None,
            requested_token_type=params.get("RequestedTokenType") or "ACCESS_TOKEN",
            subject_provider=params.get("SubjectTokenProviderName"),
            actor_provider=params.get("ActorTokenProviderName"),
        ),
    )
    return {
        "IssuedToken": derived.token,
        "IssuedTokenType": derived.token_type,
        # RFC 8693 §2.2.1: N_A when the issued token is not an access token.
        "TokenType": "Bearer" if derived.token_type == "ACCESS_TOKEN" else "N_A",
        "ExpiresIn": derived.expires_in,
        "Scopes": list(derived.scopes),
    }


# --- hosted UI domains and resource servers (gateway/services/domains.py) -------------------------------------


async def _domain_answer(call: Call, domain: str) -> dict[str, Any]:
    """What CreateUserPoolDomain and UpdateUserPoolDomain answer: the domain's CloudFront name."""
    domains = call.services.domains
    record = await domains.describe_domain(domain)
    assert record is not None
    settings = call.services.settings
    described = domains.domain_description(record, settings.region, settings.account_id)
    return {
        "CloudFrontDomain": described["CloudFrontDistribution"],
        "ManagedLoginVersion": described["ManagedLoginVersion"],
    }


@operation
async def CreateUserPoolDomain(call: Call) -> dict[str, Any]:
    domain, pool_id = call.params["Domain"], call.params["UserPoolId"]
    await call.services.domains.create_domain(
        pool_id, domain, call.params.get("CustomDomainConfig"), call.params.get("ManagedLoginVersion")
    )
    return await _domain_answer(call, domain)


@operation
async def DescribeUserPoolDomain(call: Call) -> dict[str, Any]:
    domains = call.services.domains
    record = await domains.describe_domain(call.params["Domain"])
    if record is None:
        # Cognito answers an unknown domain with an empty description rather than an error.
        return {"DomainDescription": {}}
    settings = call.services.settings
    return {"DomainDescription": domains.domain_description(record, settings.region, settings.account_id)}


@operation
async def UpdateUserPoolDomain(call: Call) -> dict[str, Any]:
    domain, pool_id = call.params["Domain"], call.params["UserPoolId"]
    await call.services.domains.update_domain(
        pool_id, domain, call.params.get("CustomDomainConfig"), call.params.get("ManagedLoginVersion")
    )
    return await _domain_answer(call, domain)


@operation
async def DeleteUserPoolDomain(call: Call) -> dict[str, Any]:
    await call.services.domains.delete_domain(call.params["UserPoolId"], call.params["Domain"])
    return {}


@operation
async def CreateResourceServer(call: Call) -> dict[str, Any]:
    domains = call.services.domains
    record = await domains.create_resource_server(
        call.params["UserPoolId"], call.params["Identifier"], call.params["Name"], call.params.get("Scopes")
    )
    return {"ResourceServer": domains.server_type(record)}


@operation
async def DescribeResourceServer(call: Call) -> dict[str, Any]:
    domains = call.services.domains
    record = await domains.get_resource_server(call.params["UserPoolId"], call.params["Identifier"])
    return {"ResourceServer": domains.server_type(record)}


@operation
async def UpdateResourceServer(call: Call) -> dict[str, Any]:
    domains = call.services.domains
    record = await domains.update_resource_server(
        call.params["UserPoolId"], call.params["Identifier"], call.params["Name"], call.params.get("Scopes")
    )
    return {"ResourceServer": domains.server_type(record)}


@operation
async def DeleteResourceServer(call: Call) -> dict[str, Any]:
    await call.services.domains.delete_resource_server(call.params["UserPoolId"], call.params["Identifier"])
    return {}


@operation
async def ListResourceServers(call: Call) -> dict[str, Any]:
    domains = call.services.domains
    limit = limit_of(call, "MaxResults", 50, 50)
    servers, next_token = await domains.list_resource_servers(
        call.params["UserPoolId"], page_key(call, call.params.get("NextToken"), call.params["UserPoolId"]), limit
    )
    result: dict[str, Any] = {"ResourceServers": [domains.server_type(s) for s in servers]}
    if next_token:
        result["NextToken"] = page_token(call, next_token, call.params["UserPoolId"])
    return result


@operation
async def SetUICustomization(call: Call) -> dict[str, Any]:
    domains = call.services.domains
    pool_id, client_id = call.params["UserPoolId"], call.params.get("ClientId")
    record = await domains.set_ui_customization(
        pool_id, client_id, call.params.get("CSS"), call.params.get("ImageFile")
    )
    base = call.services.settings.issuer_base
    return {"UICustomization": domains.ui_customization_type(record, pool_id, client_id, base)}


@operation
async def GetUICustomization(call: Call) -> dict[str, Any]:
    domains = call.services.domains
    pool_id, client_id = call.params["UserPoolId"], call.params.get("ClientId")
    if client_id:
        # As SetUICustomization: a client that is not the pool's is not found (the pool's own customization
        # is not answered under its name).
        await call.services.pools.get_client(pool_id, client_id)
    record = await domains.get_ui_customization(pool_id, client_id)
    base = call.services.settings.issuer_base
    return {"UICustomization": domains.ui_customization_type(record, pool_id, client_id, base)}


# --- passkeys (WebAuthn) -----------------------------------------------------------------------------------------


def _passkeys(call: Call) -> PasskeyService:
    passwordless = call.services.auth.passwordless
    if passwordless is None:
        raise InvalidParameterException("Passkeys are not available.")
    return passwordless.passkeys


@operation
async def StartWebAuthnRegistration(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    return {"CredentialCreationOptions": await _passkeys(call).start_registration(pool, user)}


@operation
async def CompleteWebAuthnRegistration(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    await _passkeys(call).complete_registration(pool, user, call.params["Credential"])
    return {}


@operation
async def ListWebAuthnCredentials(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    passkeys = _passkeys(call)
    credentials = await passkeys.list_credentials(pool, user)
    limit = limit_of(call, "MaxResults", 20, 20)
    start = page_offset(call, call.params.get("NextToken"), pool.id, user.username_key)
    result: dict[str, Any] = {"Credentials": [passkeys.description(c) for c in credentials[start : start + limit]]}
    if start + limit < len(credentials):
        result["NextToken"] = page_token(call, str(start + limit), pool.id, user.username_key)
    return result


# --- threat protection -------------------------------------------------------------------------------------


@operation
async def SetRiskConfiguration(call: Call) -> dict[str, Any]:
    risk = call.services.risk
    configuration = await risk.set_configuration(call.params["UserPoolId"], call.params.get("ClientId"), call.params)
    return {"RiskConfiguration": configuration}


@operation
async def DescribeRiskConfiguration(call: Call) -> dict[str, Any]:
    risk = call.services.risk
    return {
        "RiskConfiguration": await risk.describe_configuration(call.params["UserPoolId"], call.params.get("ClientId"))
    }


@operation
async def AdminListUserAuthEvents(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    events, next_token = await call.services.risk.list_events(
        pool,
        user,
        page_key(call, call.params.get("NextToken"), pool.id, user.username_key),
        limit_of(call, "MaxResults", 60, 60),
    )
    result: dict[str, Any] = {"AuthEvents": events}
    if next_token:
        result["NextToken"] = page_token(call, next_token, pool.id, user.username_key)
    return result


@operation
async def DeleteWebAuthnCredential(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    await _passkeys(call).delete_credential(pool, user, call.params["CredentialId"])
    return {}


# --- devices -------------------------------------------------------------------------------------------------


async def _device_page(call: Call, pool: PoolView, user: UserRecord) -> dict[str, Any]:
    """ListDevices / AdminListDevices: a page of the user's remembered devices."""
    devices = call.services.auth.devices
    found, next_key = await devices.list_page(
        pool,
        user,
        page_key(call, call.params.get("PaginationToken"), pool.id, user.username_key),
        limit_of(call, "Limit", 60, 60),
    )
    result: dict[str, Any] = {"Devices": [devices.device_type(d) for d in found]}
    if next_key:
        result["PaginationToken"] = page_token(call, next_key, pool.id, user.username_key)
    return result


async def _device(call: Call, pool: PoolView, user: UserRecord) -> dict[str, Any]:
    """GetDevice / AdminGetDevice."""
    devices = call.services.auth.devices
    return {"Device": devices.device_type(await devices.get(pool, user, call.params["DeviceKey"]))}


async def _set_device_status(call: Call, pool: PoolView, user: UserRecord) -> dict[str, Any]:
    """UpdateDeviceStatus / AdminUpdateDeviceStatus."""
    devices = call.services.auth.devices
    await devices.set_status(pool, user, call.params["DeviceKey"], call.params.get("DeviceRememberedStatus"))
    return {}


async def _auth_factors(call: Call, pool: PoolView, user: UserRecord) -> dict[str, Any]:
    """GetUserAuthFactors / AdminGetUserAuthFactors."""
    passwordless = call.services.auth.passwordless
    factors = await passwordless.configured_factors(pool, user) if passwordless is not None else []
    return {"Username": user.username, "ConfiguredUserAuthFactors": factors, **mfa_members(user)}


async def _device_token_user(call: Call) -> tuple[PoolView, UserRecord, VerifiedAccessToken]:
    """The user of a device operation authorised by its access token (optional in the model of some)."""
    if not call.params.get("AccessToken"):
        raise InvalidParameterException("AccessToken is required.")
    return await token_user(call)


@operation
async def ConfirmDevice(call: Call) -> dict[str, Any]:
    pool, user, token = await token_user(call)
    necessary = await call.services.auth.devices.confirm(
        pool,
        user,
        token_device_key=token.claims.get("device_key"),
        device_key=call.params["DeviceKey"],
        verifier_config=call.params.get("DeviceSecretVerifierConfig"),
        name=call.params.get("DeviceName"),
        source_ip=call.source_ip,
    )
    return {"UserConfirmationNecessary": necessary}


@operation
async def UpdateDeviceStatus(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    return await _set_device_status(call, pool, user)


@operation
async def GetUserAuthFactors(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    return await _auth_factors(call, pool, user)


@operation
async def GetDevice(call: Call) -> dict[str, Any]:
    pool, user, _ = await _device_token_user(call)
    return await _device(call, pool, user)


@operation
async def ListDevices(call: Call) -> dict[str, Any]:
    pool, user, _ = await token_user(call)
    return await _device_page(call, pool, user)


@operation
async def ForgetDevice(call: Call) -> dict[str, Any]:
    pool, user, _ = await _device_token_user(call)
    await call.services.auth.devices.forget(pool, user, call.params["DeviceKey"])
    return {}


async def _device_admin_user(call: Call) -> tuple[PoolView, UserRecord]:
    """The named user of AdminGetDevice / AdminListDevices, whose errors (service model) have no
    UserNotFoundException: an unknown user is a ResourceNotFoundException there."""
    try:
        return await admin_user(call)
    except UserNotFoundException as exc:
        raise ResourceNotFoundException("User does not exist.") from exc


@operation
async def AdminGetDevice(call: Call) -> dict[str, Any]:
    pool, user = await _device_admin_user(call)
    return await _device(call, pool, user)


@operation
async def AdminListDevices(call: Call) -> dict[str, Any]:
    pool, user = await _device_admin_user(call)
    return await _device_page(call, pool, user)


@operation
async def AdminForgetDevice(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.auth.devices.forget(pool, user, call.params["DeviceKey"])
    return {}


@operation
async def AdminUpdateAuthEventFeedback(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.risk.set_feedback(pool, user, call.params["EventId"], call.params["FeedbackValue"], token=None)
    return {}


@operation
async def AdminUpdateDeviceStatus(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    return await _set_device_status(call, pool, user)


@operation
async def UpdateAuthEventFeedback(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    user = await call.services.users.find(pool, call.params["Username"])
    await call.services.risk.set_feedback(
        pool, user, call.params["EventId"], call.params["FeedbackValue"], token=call.params["FeedbackToken"]
    )
    return {}


# The identity-provider operations live in their own module and register themselves in OPERATIONS.
from gateway.api import identity_providers as _identity_providers  # noqa: E402, F401
from gateway.api import legacy_mfa as _legacy_mfa  # noqa: E402, F401


@operation
async def AdminGetUserAuthFactors(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    return await _auth_factors(call, pool, user)


@operation
async def AdminDeleteSoftwareToken(call: Call) -> dict[str, Any]:
    pool, user = await admin_user(call)
    await call.services.auth.mfa.delete_software_token(pool, user)
    return {}


# --- user import jobs ----------------------------------------------------------------------------------------


@operation
async def GetCSVHeader(call: Call) -> dict[str, Any]:
    pool = await pool_of(call)
    return {"UserPoolId": pool.id, "CSVHeader": csv_header(pool)}


@operation
async def CreateUserImportJob(call: Call) -> dict[str, Any]:
    imports = call.services.imports
    job = await imports.create_job(
        call.params["UserPoolId"],
        call.params["JobName"],
        call.params["CloudWatchLogsRoleArn"],
        call.params.get("PasswordHashingAlgorithm"),
    )
    return {"UserImportJob": imports.job_type(job)}


@operation
async def StartUserImportJob(call: Call) -> dict[str, Any]:
    imports = call.services.imports
    job = await imports.start_job(call.params["UserPoolId"], call.params["JobId"])
    return {"UserImportJob": imports.job_type(job)}


@operation
async def StopUserImportJob(call: Call) -> dict[str, Any]:
    imports = call.services.imports
    job = await imports.stop_job(call.params["UserPoolId"], call.params["JobId"])
    return {"UserImportJob": imports.job_type(job)}


@operation
async def DescribeUserImportJob(call: Call) -> dict[str, Any]:
    imports = call.services.imports
    job = await imports.get_job(call.params["UserPoolId"], call.params["JobId"])
    return {"UserImportJob": imports.job_type(job)}


@operation
async def ListUserImportJobs(call: Call) -> dict[str, Any]:
    imports = call.services.imports
    pool_id = call.params["UserPoolId"]
    page = await imports.list_jobs(
        pool_id, page_key(call, call.params.get("PaginationToken"), pool_id), call.params["MaxResults"]
    )
    result: dict[str, Any] = {"UserImportJobs": [imports.job_type(job) for job in page.items]}
    if page.next_token:
        result["PaginationToken"] = page_token(call, page.next_token, pool_id)
    return result


# --- point-in-time recovery and replicas ---------------------------------------------------------------------
#
# Not Gatehouse's: it keeps no history of its store to recover from, and one store (SQLite, or a PostgreSQL
# database several servers share) serves every pool. Each operation finds its pool first (ResourceNotFoundException,
# as every pool operation does), then answers OperationNotEnabledException, an error its model lists, saying what
# to use instead, rather than UnknownOperationException.

_NO_RECOVERY = (
    "Point-in-time recovery is not available in Gatehouse: back the store up with `gatehouse backup` (PostgreSQL: "
    "pg_dump) and restore it by serving the copy."
)
_NO_REPLICAS = (
    "User pool replicas are not available in Gatehouse: run several servers on one PostgreSQL database "
    "(GATEHOUSE_DATABASE_URL) to serve a pool from more than one place."
)


def _not_enabled(name: str, message: str) -> None:
    async def refuse(call: Call) -> dict[str, Any]:
        await pool_of(call)
        raise OperationNotEnabledException(message)

    refuse.__name__ = refuse.__qualname__ = name
    operation(refuse)


for _name in ("Initiate", "Start", "Describe", "Cancel"):
    _not_enabled(f"{_name}PointInTimeRecovery", _NO_RECOVERY)
_not_enabled("ListPointInTimeRecoveries", _NO_RECOVERY)
for _name in ("Create", "Update", "Delete"):
    _not_enabled(f"{_name}UserPoolReplica", _NO_REPLICAS)
_not_enabled("ListUserPoolReplicas", _NO_REPLICAS)


# The managed login branding and terms documents operations live in their own modules and register themselves
# in OPERATIONS.
from gateway.api import branding as _branding  # noqa: E402, F401

# The client ID metadata document (CIMD) operations too.
from gateway.api import cimd as _cimd  # noqa: E402, F401
from gateway.api import terms as _terms  # noqa: E402, F401
