"""Cognito's terms documents operations on the JSON wire: thin handlers over the terms service.

CreateTerms, DescribeTerms, DescribeTermsByClient, ListTerms, UpdateTerms and DeleteTerms, registered in the
same operation table as the rest of the user pools API.
"""

from __future__ import annotations

from typing import Any

from gateway.api.awsjson import Call
from gateway.api.cognito_idp import limit_of, operation
from gateway.api.paging import page_key, page_token

# ListTermsRequestMaxResultsInteger: 1..60.
LIST_LIMIT = 60


@operation
async def CreateTerms(call: Call) -> dict[str, Any]:
    terms = call.services.terms
    record = await terms.create(call.params["UserPoolId"], call.params["ClientId"], call.params)
    return {"Terms": terms.terms_type(record)}


@operation
async def DescribeTerms(call: Call) -> dict[str, Any]:
    terms = call.services.terms
    record = await terms.get(call.params["UserPoolId"], call.params["TermsId"])
    return {"Terms": terms.terms_type(record)}


@operation
async def DescribeTermsByClient(call: Call) -> dict[str, Any]:
    terms = call.services.terms
    record = await terms.get_by_client(call.params["UserPoolId"], call.params["ClientId"], call.params["TermsName"])
    return {"Terms": terms.terms_type(record)}


@operation
async def ListTerms(call: Call) -> dict[str, Any]:
    terms = call.services.terms
    pool_id = call.params["UserPoolId"]
    limit = limit_of(call, "MaxResults", LIST_LIMIT, LIST_LIMIT)
    after = page_key(call, call.params.get("NextToken"), pool_id)
    # One more than asked: a next page is promised only when there is one.
    records = await terms.list(pool_id, after, limit + 1)
    result: dict[str, Any] = {"Terms": [terms.description_type(r) for r in records[:limit]]}
    if len(records) > limit:
        result["NextToken"] = page_token(call, records[limit - 1].terms_id, pool_id)
    return result


@operation
async def UpdateTerms(call: Call) -> dict[str, Any]:
    terms = call.services.terms
    record = await terms.update(call.params["UserPoolId"], call.params["TermsId"], call.params)
    return {"Terms": terms.terms_type(record)}


@operation
async def DeleteTerms(call: Call) -> dict[str, Any]:
    await call.services.terms.delete(call.params["UserPoolId"], call.params["TermsId"])
    return {}
