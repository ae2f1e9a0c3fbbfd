"""The IAM wire: roles, inline role policies and OpenID Connect providers over the AWS query protocol.

Each handler turns a checked input (botocore's ``iam`` model) into a call on
:class:`~gateway.services.iam.IamService` and its answer into the operation's output shape; errors are the
shared tree's IAM classes, rendered by :mod:`gateway.api.awsquery`. Policy documents are answered
URL-encoded, as IAM does (botocore's ``json_decode_policies`` decodes them for boto3 users).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from gateway.api.awsquery import GLOBAL_REGION, QueryCall, QueryHandler, QueryService
from gateway.errors import GatehouseError, InvalidInputException, NoSuchEntityException
from gateway.services.container import Services
from gateway.services.iam import DUPLICATE_TAG_KEYS_IGNORING_CASE, Role, oidc_provider_arn, provider_url

# IAM's answer to a tag key given twice in one request.
DUPLICATE_TAG_KEYS = "Duplicate tag keys found."


def _document(text: str) -> str:
    return quote(text, safe="")


def _tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def _tag_map(params: Mapping[str, Any], *, keys_ignore_case: bool = False) -> dict[str, str]:
    """The request's ``Tags`` by key. A key given twice is refused (InvalidInput), as IAM refuses it, rather than
    all but one of its values silently dropped; for a role (``keys_ignore_case``) also two keys that differ only
    in case, which are one key of its tags ("Rules for tagging in IAM and AWS STS")."""
    tags: dict[str, str] = {}
    seen: set[str] = set()
    for tag in params.get("Tags", []):
        key = str(tag["Key"])
        folded = key.lower() if keys_ignore_case else key
        if folded in seen:
            raise InvalidInputException(DUPLICATE_TAG_KEYS_IGNORING_CASE if keys_ignore_case else DUPLICATE_TAG_KEYS)
        seen.add(folded)
        tags[key] = str(tag.get("Value", ""))
    return tags


def _with_tags(result: dict[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
    """An output shape with its ``Tags`` member, which IAM leaves out when there are none."""
    if tags:
        result["Tags"] = _tags(tags)
    return result


def _marked(result: dict[str, Any], marker: str | None) -> dict[str, Any]:
    """A list output with IAM's pagination members: ``IsTruncated`` and, when it is, ``Marker``."""
    result["IsTruncated"] = marker is not None
    if marker is not None:
        result["Marker"] = marker
    return result


def _role(role: Role, *, full: bool = True) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.role_id,
        "Arn": role.arn,
        "CreateDate": role.created_at,
        "AssumeRolePolicyDocument": _document(role.assume_role_policy),
        "MaxSessionDuration": role.max_session_duration,
    }
    if role.description is not None:
        shape["Description"] = role.description
    _with_tags(shape, role.tags)
    if full:
        shape["RoleLastUsed"] = {}
    return shape


async def create_role(call: QueryCall) -> dict[str, Any]:
    p = call.params
    boundary = p.get("PermissionsBoundary")
    if boundary is not None:
        # A permissions boundary names a managed policy, and Gatehouse has none: refused as IAM refuses a boundary
        # policy that does not exist, rather than the role created without the limit its creator asked for.
        raise NoSuchEntityException(f"Scope ARN: {boundary} does not exist or is not attachable.")
    role = await call.services.iam.create_role(
        p["RoleName"],
        p["AssumeRolePolicyDocument"],
        path=p.get("Path", "/"),
        description=p.get("Description"),
        max_session_duration=p.get("MaxSessionDuration", 3600),
        tags=_tag_map(p, keys_ignore_case=True),
    )
    return {"Role": _role(role, full=False)}


async def get_role(call: QueryCall) -> dict[str, Any]:
    return {"Role": _role(await call.services.iam.get_role(call.params["RoleName"]))}


async def list_roles(call: QueryCall) -> dict[str, Any]:
    p = call.params
    roles, marker = await call.services.iam.list_roles(
        path_prefix=p.get("PathPrefix", "/"), marker=p.get("Marker"), max_items=p.get("MaxItems", 100)
    )
    return _marked({"Roles": [_role(r, full=False) for r in roles]}, marker)


async def delete_role(call: QueryCall) -> dict[str, Any]:
    await call.services.iam.delete_role(call.params["RoleName"])
    return {}


async def put_role_policy(call: QueryCall) -> dict[str, Any]:
    p = call.params
    await call.services.iam.put_role_policy(p["RoleName"], p["PolicyName"], p["PolicyDocument"])
    return {}


async def get_role_policy(call: QueryCall) -> dict[str, Any]:
    p = call.params
    role, document = await call.services.iam.get_role_policy(p["RoleName"], p["PolicyName"])
    return {"RoleName": role.name, "PolicyName": p["PolicyName"], "PolicyDocument": _document(document)}


async def delete_role_policy(call: QueryCall) -> dict[str, Any]:
    await call.services.iam.delete_role_policy(call.params["RoleName"], call.params["PolicyName"])
    return {}


async def list_role_policies(call: QueryCall) -> dict[str, Any]:
    p = call.params
    names, marker = await call.services.iam.list_role_policies(
        p["RoleName"], marker=p.get("Marker"), max_items=p.get("MaxItems", 100)
    )
    return _marked({"PolicyNames": names}, marker)


async def create_oidc_provider(call: QueryCall) -> dict[str, Any]:
    p = call.params
    tags = _tag_map(p)
    arn = await call.services.iam.create_oidc_provider(
        p["Url"], client_ids=p.get("ClientIDList", []), thumbprints=p.get("ThumbprintList", []), tags=tags
    )
    return _with_tags({"OpenIDConnectProviderArn": arn}, tags)


async def get_oidc_provider(call: QueryCall) -> dict[str, Any]:
    record = await call.services.iam.get_oidc_provider(call.params["OpenIDConnectProviderArn"])
    result: dict[str, Any] = {
        "Url": record.url,
        "ClientIDList": record.client_ids,
        "ThumbprintList": record.thumbprints,
        "CreateDate": record.created_at,
    }
    return _with_tags(result, record.tags)


async def list_oidc_providers(call: QueryCall) -> dict[str, Any]:
    return {"OpenIDConnectProviderList": [{"Arn": arn} for arn in await call.services.iam.list_oidc_providers()]}


async def delete_oidc_provider(call: QueryCall) -> dict[str, Any]:
    await call.services.iam.delete_oidc_provider(call.params["OpenIDConnectProviderArn"])
    return {}


async def update_assume_role_policy(call: QueryCall) -> dict[str, Any]:
    p = call.params
    await call.services.iam.update_role(p["RoleName"], assume_role_policy=p["PolicyDocument"])
    return {}


async def update_role(call: QueryCall) -> dict[str, Any]:
    p = call.params
    await call.services.iam.update_role(
        p["RoleName"], description=p.get("Description"), max_session_duration=p.get("MaxSessionDuration")
    )
    return {}


async def tag_role(call: QueryCall) -> dict[str, Any]:
    await call.services.iam.tag_role(call.params["RoleName"], _tag_map(call.params, keys_ignore_case=True))
    return {}


async def untag_role(call: QueryCall) -> dict[str, Any]:
    await call.services.iam.untag_role(call.params["RoleName"], call.params["TagKeys"])
    return {}


async def list_role_tags(call: QueryCall) -> dict[str, Any]:
    p = call.params
    role = await call.services.iam.get_role(p["RoleName"])
    keys = sorted(key for key in role.tags if p.get("Marker") is None or key > p["Marker"])
    page = keys[: p.get("MaxItems", 100)]
    return _marked(
        {"Tags": [{"Key": k, "Value": role.tags[k]} for k in page]}, page[-1] if len(keys) > len(page) else None
    )


async def add_client_id(call: QueryCall) -> dict[str, Any]:
    p = call.params
    await call.services.iam.change_oidc_provider(p["OpenIDConnectProviderArn"], add_client_id=p["ClientID"])
    return {}


async def remove_client_id(call: QueryCall) -> dict[str, Any]:
    p = call.params
    await call.services.iam.change_oidc_provider(p["OpenIDConnectProviderArn"], remove_client_id=p["ClientID"])
    return {}


async def update_thumbprints(call: QueryCall) -> dict[str, Any]:
    p = call.params
    await call.services.iam.change_oidc_provider(p["OpenIDConnectProviderArn"], thumbprints=p["ThumbprintList"])
    return {}


async def tag_oidc_provider(call: QueryCall) -> dict[str, Any]:
    p = call.params
    await call.services.iam.change_oidc_provider(p["OpenIDConnectProviderArn"], tags=_tag_map(p))
    return {}


async def create_saml_provider(call: QueryCall) -> dict[str, Any]:
    p = call.params
    tags = _tag_map(p)
    arn = await call.services.iam.create_saml_provider(p["Name"], p["SAMLMetadataDocument"], tags=tags)
    return _with_tags({"SAMLProviderArn": arn}, tags)


async def get_saml_provider(call: QueryCall) -> dict[str, Any]:
    record = await call.services.iam.get_saml_provider(call.params["SAMLProviderArn"])
    return _with_tags({"SAMLMetadataDocument": record.metadata, "CreateDate": record.created_at}, record.tags)


async def list_saml_providers(call: QueryCall) -> dict[str, Any]:
    iam = call.services.iam
    return {
        "SAMLProviderList": [
            {"Arn": iam.saml_provider_arn(r.name), "CreateDate": r.created_at} for r in await iam.list_saml_providers()
        ]
    }


async def update_saml_provider(call: QueryCall) -> dict[str, Any]:
    p = call.params
    if "SAMLMetadataDocument" not in p:
        raise InvalidInputException("SAMLMetadataDocument is required: it is the only change Gatehouse supports.")
    return {
        "SAMLProviderArn": await call.services.iam.update_saml_provider(p["SAMLProviderArn"], p["SAMLMetadataDocument"])
    }


async def delete_saml_provider(call: QueryCall) -> dict[str, Any]:
    await call.services.iam.delete_saml_provider(call.params["SAMLProviderArn"])
    return {}


OPERATIONS: dict[str, QueryHandler] = {
    "CreateRole": create_role,
    "GetRole": get_role,
    "ListRoles": list_roles,
    "DeleteRole": delete_role,
    "PutRolePolicy": put_role_policy,
    "GetRolePolicy": get_role_policy,
    "DeleteRolePolicy": delete_role_policy,
    "ListRolePolicies": list_role_policies,
    "CreateOpenIDConnectProvider": create_oidc_provider,
    "GetOpenIDConnectProvider": get_oidc_provider,
    "ListOpenIDConnectProviders": list_oidc_providers,
    "DeleteOpenIDConnectProvider": delete_oidc_provider,
    "UpdateAssumeRolePolicy": update_assume_role_policy,
    "UpdateRole": update_role,
    "TagRole": tag_role,
    "UntagRole": untag_role,
    "ListRoleTags": list_role_tags,
    "AddClientIDToOpenIDConnectProvider": add_client_id,
    "RemoveClientIDFromOpenIDConnectProvider": remove_client_id,
    "UpdateOpenIDConnectProviderThumbprint": update_thumbprints,
    "TagOpenIDConnectProvider": tag_oidc_provider,
    "CreateSAMLProvider": create_saml_provider,
    "GetSAMLProvider": get_saml_provider,
    "ListSAMLProviders": list_saml_providers,
    "UpdateSAMLProvider": update_saml_provider,
    "DeleteSAMLProvider": delete_saml_provider,
}


async def _resource(services: Services, operation: str, params: Mapping[str, Any]) -> str:
    """The ARN an IAM call acts on, for a session's policy check (IAM's resource types per action)."""
    if "RoleName" in params:
        # An existing role's ARN carries its path; a role being created has the path it asks for.
        role = await services.iam.find_role(str(params["RoleName"]))
        if role is not None:
            return role.arn
        return services.iam.role_arn(str(params["RoleName"]), str(params.get("Path", "/")))
    if "OpenIDConnectProviderArn" in params:
        return str(params["OpenIDConnectProviderArn"])
    if "SAMLProviderArn" in params:
        return str(params["SAMLProviderArn"])
    # A provider being created: the ARN it will have, so that a Deny naming it applies (not "*", which no
    # provider-specific pattern matches).
    if operation == "CreateOpenIDConnectProvider":
        return oidc_provider_arn(services.iam.account_id, provider_url(str(params["Url"])))
    if operation == "CreateSAMLProvider":
        return services.iam.saml_provider_arn(str(params["Name"]))
    return "*"


async def _resource_tags(services: Services, arn: str) -> Mapping[str, str]:
    """The tags of the role or provider an ARN names (aws:ResourceTag/<key>); none for one that does not exist
    (yet: CreateRole's, whose tags are the request's)."""
    if ":role/" in arn:
        role = await services.iam.find_role_by_arn(arn)
        return role.tags if role is not None else {}
    try:
        if ":oidc-provider/" in arn:
            return (await services.iam.get_oidc_provider(arn)).tags
        if ":saml-provider/" in arn:
            return (await services.iam.get_saml_provider(arn)).tags
    except GatehouseError:
        pass  # none: the call itself says so
    return {}


def iam_service() -> QueryService:
    # IAM is global: AWS SDKs sign its calls for us-east-1 whatever their configured region.
    return QueryService(
        name="iam",
        operations=OPERATIONS,
        session_resource=_resource,
        resource_tags=_resource_tags,
        global_region=GLOBAL_REGION,
    )
