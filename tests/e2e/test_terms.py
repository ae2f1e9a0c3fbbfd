"""Terms documents over the wire with boto3: CreateTerms, DescribeTerms, DescribeTermsByClient, ListTerms
(pagination), UpdateTerms and DeleteTerms; Cognito's errors (TermsExistsException, unknown pool, client or id,
links that are no http(s) URL); documents go with their client; and the hosted sign-up page of the client
linking both documents, in English or the default language, only once both exist."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import OAuthPool, make_pool, signup_page, terms_links
from tests.support import GatehouseServer

MISSING_ID = "0f0e0d0c-0b0a-4909-8807-060504030201"
TERMS = "https://example.com/terms"
PRIVACY = "https://example.com/privacy"


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    return make_pool(idp, gatehouse.url, "terms")


def _code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def _client(idp: Any, pool_id: str, name: str = "app") -> str:
    return str(
        idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=name,
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid"],
            CallbackURLs=["https://app.example.com/callback"],
            SupportedIdentityProviders=["COGNITO"],
        )["UserPoolClient"]["ClientId"]
    )


def _create(idp: Any, pool_id: str, client_id: str, name: str, links: dict[str, str]) -> dict[str, Any]:
    return dict(
        idp.create_terms(
            UserPoolId=pool_id,
            ClientId=client_id,
            TermsName=name,
            TermsSource="LINK",
            Enforcement="NONE",
            Links=links,
        )["Terms"]
    )


def test_lifecycle(idp: Any, pool: OAuthPool) -> None:
    created = _create(idp, pool.pool_id, pool.public_id, "terms-of-use", {"cognito:default": TERMS})
    uuid.UUID(created["TermsId"], version=4)
    assert created["UserPoolId"] == pool.pool_id and created["ClientId"] == pool.public_id
    assert (created["TermsName"], created["TermsSource"], created["Enforcement"]) == ("terms-of-use", "LINK", "NONE")
    assert created["Links"] == {"cognito:default": TERMS}
    assert isinstance(created["CreationDate"], datetime) and created["CreationDate"] == created["LastModifiedDate"]

    described = idp.describe_terms(UserPoolId=pool.pool_id, TermsId=created["TermsId"])["Terms"]
    assert described == created
    by_client = idp.describe_terms_by_client(
        UserPoolId=pool.pool_id, ClientId=pool.public_id, TermsName="terms-of-use"
    )["Terms"]
    assert by_client == created

    with pytest.raises(ClientError) as raised:
        _create(idp, pool.pool_id, pool.public_id, "terms-of-use", {"cognito:english": TERMS})
    assert _code(raised) == "TermsExistsException"

    privacy = _create(idp, pool.pool_id, pool.public_id, "privacy-policy", {"cognito:english": PRIVACY})
    # Renaming onto the other document's name is refused, and changes nothing.
    with pytest.raises(ClientError) as raised:
        idp.update_terms(UserPoolId=pool.pool_id, TermsId=privacy["TermsId"], TermsName="terms-of-use")
    assert _code(raised) == "TermsExistsException"
    assert idp.describe_terms(UserPoolId=pool.pool_id, TermsId=privacy["TermsId"])["Terms"] == privacy

    # Links given replace the map; what a request leaves out is kept.
    updated = idp.update_terms(
        UserPoolId=pool.pool_id,
        TermsId=privacy["TermsId"],
        Links={"cognito:french": "https://example.com/fr/privacy", "cognito:default": PRIVACY},
    )["Terms"]
    assert updated["Links"] == {"cognito:french": "https://example.com/fr/privacy", "cognito:default": PRIVACY}
    assert updated["TermsName"] == "privacy-policy" and updated["CreationDate"] == privacy["CreationDate"]
    assert updated["LastModifiedDate"] >= privacy["LastModifiedDate"]
    assert idp.describe_terms(UserPoolId=pool.pool_id, TermsId=privacy["TermsId"])["Terms"] == updated

    idp.delete_terms(UserPoolId=pool.pool_id, TermsId=privacy["TermsId"])
    with pytest.raises(ClientError) as raised:
        idp.describe_terms(UserPoolId=pool.pool_id, TermsId=privacy["TermsId"])
    assert _code(raised) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as raised:
        idp.delete_terms(UserPoolId=pool.pool_id, TermsId=privacy["TermsId"])
    assert _code(raised) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as raised:
        idp.describe_terms_by_client(UserPoolId=pool.pool_id, ClientId=pool.public_id, TermsName="privacy-policy")
    assert _code(raised) == "ResourceNotFoundException"
    idp.delete_terms(UserPoolId=pool.pool_id, TermsId=created["TermsId"])


def test_list_pages_through_the_pool(idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="terms-list")["UserPool"]["Id"]
    made = set()
    for index in range(3):
        client_id = _client(idp, pool_id, f"app-{index}")
        for name in ("terms-of-use", "privacy-policy"):
            made.add(_create(idp, pool_id, client_id, name, {"cognito:default": TERMS})["TermsId"])
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        answer = idp.list_terms(UserPoolId=pool_id, MaxResults=4, **({"NextToken": token} if token else {}))
        pages += 1
        for entry in answer["Terms"]:
            assert set(entry) == {"TermsId", "TermsName", "Enforcement", "CreationDate", "LastModifiedDate"}
            seen.append(entry["TermsId"])
        token = answer.get("NextToken")
        if token is None:
            break
    assert pages == 2 and len(seen) == 6 and set(seen) == made
    # A token is good only for the list that handed it out.
    other = idp.create_user_pool(PoolName="terms-other")["UserPool"]["Id"]
    first = idp.list_terms(UserPoolId=pool_id, MaxResults=1)
    with pytest.raises(ClientError) as raised:
        idp.list_terms(UserPoolId=other, MaxResults=1, NextToken=first["NextToken"])
    assert _code(raised) == "InvalidParameterException"
    assert idp.list_terms(UserPoolId=other)["Terms"] == []


def test_refusals(idp: Any, pool: OAuthPool) -> None:
    def refused(call: Any, **params: Any) -> str:
        with pytest.raises(ClientError) as raised:
            call(**params)
        return _code(raised)

    base = {
        "UserPoolId": pool.pool_id,
        "ClientId": pool.secret_id,
        "TermsName": "terms-of-use",
        "TermsSource": "LINK",
        "Enforcement": "NONE",
    }
    assert refused(idp.create_terms, **{**base, "UserPoolId": "us-east-1_Missing0"}) == "ResourceNotFoundException"
    assert refused(idp.create_terms, **{**base, "ClientId": "nosuchclient"}) == "ResourceNotFoundException"
    # The links are shown as links: only absolute http(s) URLs.
    for link in ("javascript:alert(1)", "data:text/html,hi", "/relative/terms", "https://"):
        assert refused(idp.create_terms, **base, Links={"cognito:default": link}) == "InvalidParameterException"
    # A LINK document is its links: none at all is refused (an empty map is the model's own refusal).
    assert refused(idp.create_terms, **base) == "InvalidParameterException"
    assert refused(idp.create_terms, **base, Links={}) == "InvalidParameterException"
    # The model's own checks: a language that is none of Cognito's, a name or source that is none.
    assert refused(idp.create_terms, **base, Links={"en": TERMS}) == "InvalidParameterException"
    assert refused(idp.create_terms, **{**base, "TermsName": "cookies"}) == "InvalidParameterException"
    assert refused(idp.describe_terms, UserPoolId=pool.pool_id, TermsId=MISSING_ID) == "ResourceNotFoundException"
    assert refused(idp.update_terms, UserPoolId=pool.pool_id, TermsId=MISSING_ID) == "ResourceNotFoundException"
    assert refused(idp.describe_terms, UserPoolId=pool.pool_id, TermsId="not-a-uuid") == "InvalidParameterException"
    # Nothing was made by any of these.
    assert not [t for t in idp.list_terms(UserPoolId=pool.pool_id)["Terms"] if t["TermsName"] == "terms-of-use"]
    # A bad update leaves the document as it was.
    made = _create(idp, pool.pool_id, pool.secret_id, "terms-of-use", {"cognito:default": TERMS})
    bad = {"cognito:default": "javascript:alert(1)"}
    assert refused(idp.update_terms, UserPoolId=pool.pool_id, TermsId=made["TermsId"], Links=bad) == (
        "InvalidParameterException"
    )
    assert idp.describe_terms(UserPoolId=pool.pool_id, TermsId=made["TermsId"])["Terms"] == made
    # Another pool cannot see it.
    other = idp.create_user_pool(PoolName="terms-stranger")["UserPool"]["Id"]
    assert refused(idp.describe_terms, UserPoolId=other, TermsId=made["TermsId"]) == "ResourceNotFoundException"
    assert refused(idp.delete_terms, UserPoolId=other, TermsId=made["TermsId"]) == "ResourceNotFoundException"
    idp.delete_terms(UserPoolId=pool.pool_id, TermsId=made["TermsId"])


def test_documents_go_with_their_client(idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="terms-client-gone")["UserPool"]["Id"]
    client_id = _client(idp, pool_id)
    made = _create(idp, pool_id, client_id, "terms-of-use", {"cognito:default": TERMS})
    idp.delete_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
    with pytest.raises(ClientError) as raised:
        idp.describe_terms(UserPoolId=pool_id, TermsId=made["TermsId"])
    assert _code(raised) == "ResourceNotFoundException"
    assert idp.list_terms(UserPoolId=pool_id)["Terms"] == []


def test_sign_up_page_links_both_documents(gatehouse: GatehouseServer, idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="terms-page")["UserPool"]["Id"]
    client_id = _client(idp, pool_id)
    other_client = _client(idp, pool_id, "other")
    assert terms_links(signup_page(gatehouse, pool_id, client_id)) == {}

    terms = _create(idp, pool_id, client_id, "terms-of-use", {"cognito:default": TERMS})
    # One document alone is not shown: Cognito shows them once both exist.
    assert terms_links(signup_page(gatehouse, pool_id, client_id)) == {}
    _create(
        idp,
        pool_id,
        client_id,
        "privacy-policy",
        {"cognito:english": PRIVACY, "cognito:default": "https://example.com/default-privacy"},
    )
    page = signup_page(gatehouse, pool_id, client_id)
    # The page is in English: the English link first, else the default one.
    assert terms_links(page) == {"Terms of use": TERMS, "Privacy policy": PRIVACY}
    assert "By signing up, you agree to the" in page
    # Another client of the pool shows nothing of this client's.
    assert terms_links(signup_page(gatehouse, pool_id, other_client)) == {}

    # A document with links in no language the page shows (only French) is not shown.
    idp.update_terms(UserPoolId=pool_id, TermsId=terms["TermsId"], Links={"cognito:french": TERMS + "/fr"})
    assert terms_links(signup_page(gatehouse, pool_id, client_id)) == {}
    # A link with characters that mean something in HTML is shown as the same URL, escaped.
    tricky = 'https://example.com/terms?a=1&b="2"'
    idp.update_terms(UserPoolId=pool_id, TermsId=terms["TermsId"], Links={"cognito:english": tricky})
    page = signup_page(gatehouse, pool_id, client_id)
    assert terms_links(page)["Terms of use"] == tricky
    assert '"2"' not in page.split("By signing up", 1)[1].split("</p>", 1)[0]
    idp.delete_terms(UserPoolId=pool_id, TermsId=terms["TermsId"])
    assert terms_links(signup_page(gatehouse, pool_id, client_id)) == {}
