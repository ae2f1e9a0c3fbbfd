"""Cognito's managed login branding operations on the JSON wire: thin handlers over the branding service.

CreateManagedLoginBranding, DescribeManagedLoginBranding, DescribeManagedLoginBrandingByClient,
UpdateManagedLoginBranding and DeleteManagedLoginBranding, registered in the same operation table as the rest
of the user pools API.
"""

from __future__ import annotations

from typing import Any

from gateway.api.awsjson import Call
from gateway.api.cognito_idp import operation
from gateway.errors import InvalidParameterException


def _required(call: Call, name: str) -> str:
    """UpdateManagedLoginBranding's model marks no member required, yet a style must be named."""
    value = call.params.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidParameterException(f"{name} is required.")
    return value


@operation
async def CreateManagedLoginBranding(call: Call) -> dict[str, Any]:
    branding = call.services.branding
    record = await branding.create(call.params["UserPoolId"], call.params["ClientId"], call.params)
    return {"ManagedLoginBranding": branding.branding_type(record)}


@operation
async def DescribeManagedLoginBranding(call: Call) -> dict[str, Any]:
    branding = call.services.branding
    record = await branding.get(call.params["UserPoolId"], call.params["ManagedLoginBrandingId"])
    return {"ManagedLoginBranding": branding.branding_type(record)}


@operation
async def DescribeManagedLoginBrandingByClient(call: Call) -> dict[str, Any]:
    branding = call.services.branding
    record = await branding.get_by_client(call.params["UserPoolId"], call.params["ClientId"])
    return {"ManagedLoginBranding": branding.branding_type(record)}


@operation
async def UpdateManagedLoginBranding(call: Call) -> dict[str, Any]:
    branding = call.services.branding
    pool_id, branding_id = _required(call, "UserPoolId"), _required(call, "ManagedLoginBrandingId")
    record = await branding.update(pool_id, branding_id, call.params)
    return {"ManagedLoginBranding": branding.branding_type(record)}


@operation
async def DeleteManagedLoginBranding(call: Call) -> dict[str, Any]:
    await call.services.branding.delete(call.params["UserPoolId"], call.params["ManagedLoginBrandingId"])
    return {}
