"""Cognito's identity-provider operations on the JSON wire: thin handlers over the federation services.

CreateIdentityProvider, DescribeIdentityProvider, UpdateIdentityProvider, DeleteIdentityProvider,
ListIdentityProviders, GetIdentityProviderByIdentifier, AdminLinkProviderForUser, AdminDisableProviderForUser
and GetSigningCertificate, registered in the same operation table as the rest of the user pools API.
"""

from __future__ import annotations

from typing import Any

from gateway.api.awsjson import Call
from gateway.api.cognito_idp import limit_of, operation
from gateway.api.paging import page_key, page_token
from gateway.storage.base import IdentityProviderRecord


async def _described(call: Call, record: IdentityProviderRecord) -> dict[str, Any]:
    extra: dict[str, str] = {}
    if record.provider_type == "SAML" and record.details.get("EncryptedResponses") == "true":
        # Cognito shows the certificate IdPs encrypt assertions to.
        extra["ActiveEncryptionCertificate"] = await call.services.federation.signing_certificate(record.pool_id)
    return {"IdentityProvider": call.services.identity_providers.provider_type(record, extra_details=extra)}


@operation
async def CreateIdentityProvider(call: Call) -> dict[str, Any]:
    p = call.params
    record = await call.services.identity_providers.create(
        p["UserPoolId"],
        p["ProviderName"],
        p["ProviderType"],
        p["ProviderDetails"],
        p.get("AttributeMapping"),
        p.get("IdpIdentifiers"),
    )
    return await _described(call, record)


@operation
async def DescribeIdentityProvider(call: Call) -> dict[str, Any]:
    record = await call.services.identity_providers.get(call.params["UserPoolId"], call.params["ProviderName"])
    return await _described(call, record)


@operation
async def UpdateIdentityProvider(call: Call) -> dict[str, Any]:
    p = call.params
    record = await call.services.identity_providers.update(
        p["UserPoolId"], p["ProviderName"], p.get("ProviderDetails"), p.get("AttributeMapping"), p.get("IdpIdentifiers")
    )
    return await _described(call, record)


@operation
async def DeleteIdentityProvider(call: Call) -> dict[str, Any]:
    await call.services.identity_providers.delete(call.params["UserPoolId"], call.params["ProviderName"])
    return {}


@operation
async def ListIdentityProviders(call: Call) -> dict[str, Any]:
    limit = limit_of(call, "MaxResults", 60, 60)
    records, next_key = await call.services.identity_providers.list_page(
        call.params["UserPoolId"], page_key(call, call.params.get("NextToken"), call.params["UserPoolId"]), limit
    )
    result: dict[str, Any] = {"Providers": [call.services.identity_providers.description(r) for r in records]}
    if next_key is not None:
        result["NextToken"] = page_token(call, next_key, call.params["UserPoolId"])
    return result


@operation
async def GetIdentityProviderByIdentifier(call: Call) -> dict[str, Any]:
    record = await call.services.identity_providers.by_identifier(
        call.params["UserPoolId"], call.params["IdpIdentifier"]
    )
    return await _described(call, record)


@operation
async def AdminLinkProviderForUser(call: Call) -> dict[str, Any]:
    p = call.params
    await call.services.federation.link(p["UserPoolId"], p["DestinationUser"], p["SourceUser"])
    return {}


@operation
async def AdminDisableProviderForUser(call: Call) -> dict[str, Any]:
    await call.services.federation.disable(call.params["UserPoolId"], call.params["User"])
    return {}


@operation
async def GetSigningCertificate(call: Call) -> dict[str, Any]:
    return {"Certificate": await call.services.federation.signing_certificate(call.params["UserPoolId"])}
