"""Cognito's client ID metadata document (CIMD) operations on the JSON wire: thin handlers over the CIMD service.

CreateCIMDPolicy, DescribeCIMDPolicy, UpdateCIMDPolicy, DeleteCIMDPolicy, ListCIMDPolicies,
ListClientMetadataURLs and UpdateClientMetadataURLState, registered in the same operation table as the rest of
the user pools API (shapes and errors per botocore's model; both lists paginate with NextToken/MaxResults).
"""

from __future__ import annotations

from typing import Any

from gateway.api.awsjson import Call
from gateway.api.cognito_idp import limit_of, operation
from gateway.api.paging import page_key, page_token


@operation
async def CreateCIMDPolicy(call: Call) -> dict[str, Any]:
    cimd = call.services.cimd
    record = await cimd.create(call.params["UserPoolId"], call.params)
    return {"CIMDPolicy": await cimd.policy_type(record)}


@operation
async def DescribeCIMDPolicy(call: Call) -> dict[str, Any]:
    cimd = call.services.cimd
    record = await cimd.get(call.params["UserPoolId"], call.params["CIMDPolicyId"])
    return {"CIMDPolicy": await cimd.policy_type(record)}


@operation
async def UpdateCIMDPolicy(call: Call) -> dict[str, Any]:
    cimd = call.services.cimd
    record = await cimd.update(call.params["UserPoolId"], call.params["CIMDPolicyId"], call.params)
    return {"CIMDPolicy": await cimd.policy_type(record)}


@operation
async def DeleteCIMDPolicy(call: Call) -> dict[str, Any]:
    await call.services.cimd.delete(call.params["UserPoolId"], call.params["CIMDPolicyId"])
    return {}


@operation
async def ListCIMDPolicies(call: Call) -> dict[str, Any]:
    cimd = call.services.cimd
    pool_id = call.params["UserPoolId"]
    limit = limit_of(call, "MaxResults", 60, 60)
    policies, after = await cimd.list_policies(pool_id, page_key(call, call.params.get("NextToken"), pool_id), limit)
    result: dict[str, Any] = {"CIMDPolicies": [await cimd.policy_type(p, summary=True) for p in policies]}
    if after:
        result["NextToken"] = page_token(call, after, pool_id)
    return result


@operation
async def ListClientMetadataURLs(call: Call) -> dict[str, Any]:
    pool_id, policy_id = call.params["UserPoolId"], call.params["CIMDPolicyId"]
    limit = limit_of(call, "MaxResults", 60, 60)
    after = page_key(call, call.params.get("NextToken"), pool_id, policy_id)
    documents, next_key = await call.services.cimd.list_urls(pool_id, policy_id, after, limit)
    result: dict[str, Any] = {
        "ClientMetadataURLs": [
            {"URL": d.url, "CachedDate": d.cached_at, "ExpirationDate": d.expires_at} for d in documents
        ]
    }
    if next_key:
        result["NextToken"] = page_token(call, next_key, pool_id, policy_id)
    return result


@operation
async def UpdateClientMetadataURLState(call: Call) -> dict[str, Any]:
    params = call.params
    await call.services.cimd.update_url_state(
        params["UserPoolId"], params["CIMDPolicyId"], params["URL"], params["Action"]
    )
    return {}
