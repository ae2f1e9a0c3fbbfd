"""The Cognito identity pools API (``AWSCognitoIdentityService.*``): thin handlers over the services.

Requests are checked against botocore's ``cognito-identity`` model before a handler runs, and the model
decides which operations need a SigV4 signature: GetId, GetOpenIdToken, GetCredentialsForIdentity and
UnlinkIdentity are unsigned (``authtype: none``), as an app calls them; the rest are admin operations, signed with
the admin keys or with temporary credentials whose role allows them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from gateway.api.awsjson import Call, Handler, JsonService
from gateway.api.model import ServiceModel
from gateway.api.paging import page_key, page_offset, page_token
from gateway.errors import GatehouseError
from gateway.services.container import Services
from gateway.services.identity_pools import IdentityPoolView

OPERATIONS: dict[str, Handler] = {}


def operation(handler: Handler) -> Handler:
    OPERATIONS[handler.__name__] = handler
    return handler


def cognito_identity_service() -> JsonService:
    return JsonService(
        model=ServiceModel.load("cognito-identity"),
        operations=OPERATIONS,
        wire="cognito-identity",
        signing_name="cognito-identity",
        session_resources=_session_resources,
        resource_tags=_resource_tags,
        passed_roles=_passed_roles,
        passed_to="cognito-identity.amazonaws.com",
    )


async def _session_resources(services: Services, operation: str, params: Mapping[str, Any]) -> list[str]:
    """The ARNs a call signed with temporary credentials acts on, for its policy check: the identity pool it
    names, the resource a tag operation names, or the pools of the identities it names (DescribeIdentity,
    DeleteIdentities: each must be allowed); else "*" (CreateIdentityPool, ListIdentityPools)."""
    pool_id = params.get("IdentityPoolId")
    if isinstance(pool_id, str):
        return [services.identity_pools.arn(pool_id)]
    arn = params.get("ResourceArn")
    if isinstance(arn, str):
        return [arn]
    named = params.get("IdentityIdsToDelete")
    identity_ids = named if isinstance(named, list) else [params.get("IdentityId")]
    pools: set[str] = set()
    for identity_id in identity_ids[:60]:  # (the model's most: 60)
        if isinstance(identity_id, str):
            with contextlib.suppress(GatehouseError):  # unknown: nothing of it to allow or refuse
                pools.add((await services.identities.identity(identity_id))[0].id)
    return [services.identity_pools.arn(pool) for pool in sorted(pools)] or ["*"]


def _passed_roles(operation: str, params: Mapping[str, Any]) -> list[str]:
    """The roles SetIdentityPoolRoles gives the pool: its default roles and every rule's RoleARN."""
    if operation != "SetIdentityPoolRoles":
        return []
    roles = params.get("Roles")
    found = [arn for arn in roles.values() if isinstance(arn, str)] if isinstance(roles, dict) else []
    mappings = params.get("RoleMappings")
    # Read before the input is validated: any member may be of any JSON type here.
    for mapping in mappings.values() if isinstance(mappings, dict) else ():
        config = mapping.get("RulesConfiguration") if isinstance(mapping, dict) else None
        rules = config.get("Rules") if isinstance(config, dict) else None
        for rule in rules if isinstance(rules, list) else ():
            if isinstance(rule, dict) and isinstance(rule.get("RoleARN"), str):
                found.append(rule["RoleARN"])
    return sorted(set(found))


async def _resource_tags(services: Services, arn: str) -> Mapping[str, str]:
    """The tags of the identity pool an ARN names, for aws:ResourceTag/<key>; none for an ARN that names none."""
    try:
        return (await services.identity_pools.get(services.identity_pools.pool_id_from_arn(arn))).tags
    except GatehouseError:
        return {}  # no such pool: the call itself says so


def _limit(call: Call) -> int:
    return int(call.params["MaxResults"])


def _logins(call: Call) -> dict[str, str]:
    return dict(call.params.get("Logins") or {})


# --- identity pools ----------------------------------------------------------------------------------------


@operation
async def CreateIdentityPool(call: Call) -> dict[str, Any]:
    return (await call.services.identity_pools.create(call.params)).identity_pool_type()


@operation
async def DescribeIdentityPool(call: Call) -> dict[str, Any]:
    return (await call.services.identity_pools.get(call.params["IdentityPoolId"])).identity_pool_type()


@operation
async def UpdateIdentityPool(call: Call) -> dict[str, Any]:
    return (await call.services.identity_pools.update(call.params)).identity_pool_type()


@operation
async def DeleteIdentityPool(call: Call) -> dict[str, Any]:
    await call.services.identity_pools.delete(call.params["IdentityPoolId"])
    return {}


@operation
async def ListIdentityPools(call: Call) -> dict[str, Any]:
    pools, next_key = await call.services.identity_pools.list_pools(
        page_key(call, call.params.get("NextToken")), _limit(call)
    )
    result: dict[str, Any] = {"IdentityPools": [{"IdentityPoolId": p.id, "IdentityPoolName": p.name} for p in pools]}
    if next_key is not None:
        result["NextToken"] = page_token(call, next_key)
    return result


@operation
async def SetIdentityPoolRoles(call: Call) -> dict[str, Any]:
    await call.services.identity_pools.set_roles(
        call.params["IdentityPoolId"], call.params["Roles"], call.params.get("RoleMappings")
    )
    return {}


@operation
async def GetIdentityPoolRoles(call: Call) -> dict[str, Any]:
    pool: IdentityPoolView = await call.services.identity_pools.get(call.params["IdentityPoolId"])
    result: dict[str, Any] = {"IdentityPoolId": pool.id, "Roles": pool.roles}
    if pool.role_mappings:
        result["RoleMappings"] = pool.role_mappings
    return result


@operation
async def SetPrincipalTagAttributeMap(call: Call) -> dict[str, Any]:
    pool_id, provider = call.params["IdentityPoolId"], call.params["IdentityProviderName"]
    entry = await call.services.identity_pools.set_principal_tags(
        pool_id, provider, call.params.get("UseDefaults"), call.params.get("PrincipalTags")
    )
    return {"IdentityPoolId": pool_id, "IdentityProviderName": provider, **entry}


@operation
async def GetPrincipalTagAttributeMap(call: Call) -> dict[str, Any]:
    pool_id, provider = call.params["IdentityPoolId"], call.params["IdentityProviderName"]
    entry = await call.services.identity_pools.get_principal_tags(pool_id, provider)
    return {"IdentityPoolId": pool_id, "IdentityProviderName": provider, **entry}


@operation
async def TagResource(call: Call) -> dict[str, Any]:
    await call.services.identity_pools.tag(call.params["ResourceArn"], call.params["Tags"])
    return {}


@operation
async def UntagResource(call: Call) -> dict[str, Any]:
    await call.services.identity_pools.untag(call.params["ResourceArn"], call.params["TagKeys"])
    return {}


@operation
async def ListTagsForResource(call: Call) -> dict[str, Any]:
    return {"Tags": await call.services.identity_pools.tags_of(call.params["ResourceArn"])}


# --- identities ----------------------------------------------------------------------------------------------


@operation
async def DescribeIdentity(call: Call) -> dict[str, Any]:
    pool, identity = await call.services.identities.identity(call.params["IdentityId"])
    return call.services.identities.description(identity, pool)


@operation
async def ListIdentities(call: Call) -> dict[str, Any]:
    identities = call.services.identities
    pool_id = call.params["IdentityPoolId"]
    hide_disabled = bool(call.params.get("HideDisabled"))
    listed = (pool_id, str(hide_disabled))  # a token pages one pool's identities, with or without the disabled
    items, next_key = await identities.list_identities(
        pool_id,
        page_key(call, call.params.get("NextToken"), *listed),
        _limit(call),
        hide_disabled=hide_disabled,
    )
    result: dict[str, Any] = {
        "IdentityPoolId": pool_id,
        "Identities": [identities.description(identity) for identity in items],
    }
    if next_key is not None:
        result["NextToken"] = page_token(call, next_key, *listed)
    return result


@operation
async def DeleteIdentities(call: Call) -> dict[str, Any]:
    await call.services.identities.delete(call.params["IdentityIdsToDelete"])
    return {"UnprocessedIdentityIds": []}


@operation
async def GetId(call: Call) -> dict[str, Any]:
    identity_id = await call.services.identities.get_id(call.params["IdentityPoolId"], _logins(call))
    return {"IdentityId": identity_id}


@operation
async def GetOpenIdToken(call: Call) -> dict[str, Any]:
    identity_id, token = await call.services.identities.get_open_id_token(call.params["IdentityId"], _logins(call))
    return {"IdentityId": identity_id, "Token": token}


@operation
async def GetOpenIdTokenForDeveloperIdentity(call: Call) -> dict[str, Any]:
    identity_id, token = await call.services.identities.get_open_id_token_for_developer_identity(
        call.params["IdentityPoolId"],
        call.params.get("IdentityId"),
        _logins(call),
        call.params.get("PrincipalTags"),
        call.params.get("TokenDuration"),
    )
    return {"IdentityId": identity_id, "Token": token}


@operation
async def GetCredentialsForIdentity(call: Call) -> dict[str, Any]:
    identity_id, credentials = await call.services.identities.credentials_for_identity(
        call.params["IdentityId"], _logins(call), call.params.get("CustomRoleArn")
    )
    return {"IdentityId": identity_id, "Credentials": credentials}


@operation
async def UnlinkIdentity(call: Call) -> dict[str, Any]:
    await call.services.identities.unlink_identity(
        call.params["IdentityId"], _logins(call), call.params["LoginsToRemove"]
    )
    return {}


@operation
async def LookupDeveloperIdentity(call: Call) -> dict[str, Any]:
    identity_id, users = await call.services.identities.lookup_developer_identity(
        call.params["IdentityPoolId"], call.params.get("IdentityId"), call.params.get("DeveloperUserIdentifier")
    )
    listed = (call.params["IdentityPoolId"], identity_id)  # a token pages one identity's developer user ids
    start = page_offset(call, call.params.get("NextToken"), *listed)
    limit = int(call.params.get("MaxResults") or 60)
    result: dict[str, Any] = {"IdentityId": identity_id, "DeveloperUserIdentifierList": users[start : start + limit]}
    if start + limit < len(users):
        result["NextToken"] = page_token(call, str(start + limit), *listed)
    return result


@operation
async def MergeDeveloperIdentities(call: Call) -> dict[str, Any]:
    identity_id = await call.services.identities.merge_developer_identities(
        call.params["IdentityPoolId"],
        call.params["DeveloperProviderName"],
        call.params["SourceUserIdentifier"],
        call.params["DestinationUserIdentifier"],
    )
    return {"IdentityId": identity_id}


@operation
async def UnlinkDeveloperIdentity(call: Call) -> dict[str, Any]:
    await call.services.identities.unlink_developer_identity(
        call.params["IdentityId"],
        call.params["IdentityPoolId"],
        call.params["DeveloperProviderName"],
        call.params["DeveloperUserIdentifier"],
    )
    return {}
