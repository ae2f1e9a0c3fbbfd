"""The Cognito operations behind the OAuth provider, through boto3: app clients' OAuth members and their
validation, user pool domains (and routing by Host), resource servers and their custom scopes."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, Browser, make_user, pkce_pair, query_of
from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="oauth-settings")["UserPool"]["Id"])


def _error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def test_client_oauth_members_are_stored_and_described(idp: Any, pool_id: str) -> None:
    created = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"],
        CallbackURLs=[CALLBACK, "http://localhost:3000/cb", "myapp://callback"],
        LogoutURLs=["https://app.example.com/bye"],
        DefaultRedirectURI=CALLBACK,
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=created["ClientId"])["UserPoolClient"]
    for member, value in {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid", "email"],
        "CallbackURLs": [CALLBACK, "http://localhost:3000/cb", "myapp://callback"],
        "LogoutURLs": ["https://app.example.com/bye"],
        "DefaultRedirectURI": CALLBACK,
        "SupportedIdentityProviders": ["COGNITO"],
    }.items():
        assert described[member] == value, member
    updated = idp.update_user_pool_client(
        UserPoolId=pool_id,
        ClientId=created["ClientId"],
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code", "implicit"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
    )["UserPoolClient"]
    assert updated["AllowedOAuthFlows"] == ["code", "implicit"] and "LogoutURLs" not in updated


@pytest.mark.parametrize(
    ("members", "code", "fragment"),
    [
        ({"CallbackURLs": ["http://app.example.com/cb"]}, "InvalidParameterException", "HTTPS"),
        ({"CallbackURLs": ["https://app.example.com/cb#x"]}, "InvalidParameterException", "fragment"),
        ({"CallbackURLs": ["app.example.com/cb"]}, "InvalidParameterException", "absolute"),
        ({"LogoutURLs": ["http://evil.example/"]}, "InvalidParameterException", "HTTPS"),
        ({"DefaultRedirectURI": "https://other.example/cb"}, "InvalidParameterException", "CallbackURLs"),
        ({"AllowedOAuthFlows": ["password"]}, "InvalidParameterException", "AllowedOAuthFlows"),
        ({"AllowedOAuthFlows": []}, "InvalidOAuthFlowException", "AllowedOAuthFlows"),
        ({"AllowedOAuthScopes": []}, "InvalidOAuthFlowException", "AllowedOAuthScopes"),
        ({"AllowedOAuthFlows": ["client_credentials"]}, "InvalidOAuthFlowException", "client secret"),
        ({"AllowedOAuthScopes": ["openid", "https://api.unknown/read"]}, "ScopeDoesNotExistException", "scope"),
        ({"CallbackURLs": []}, "InvalidParameterException", "CallbackURLs"),
    ],
)
def test_client_oauth_validation(idp: Any, pool_id: str, members: dict[str, Any], code: str, fragment: str) -> None:
    request = {
        "UserPoolId": pool_id,
        "ClientName": "bad",
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid"],
        "CallbackURLs": [CALLBACK],
        **members,
    }
    before = len(idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"])
    with pytest.raises(ClientError) as raised:
        idp.create_user_pool_client(**request)
    got_code, message = _error(raised)
    assert got_code == code and fragment.lower() in message.lower()
    assert len(idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]) == before


def test_resource_servers_crud(idp: Any, pool_id: str) -> None:
    scopes = [{"ScopeName": "read", "ScopeDescription": "Read things"}]
    created = idp.create_resource_server(UserPoolId=pool_id, Identifier="https://api.one", Name="one", Scopes=scopes)
    assert created["ResourceServer"] == {
        "UserPoolId": pool_id,
        "Identifier": "https://api.one",
        "Name": "one",
        "Scopes": scopes,
    }
    with pytest.raises(ClientError) as duplicate:
        idp.create_resource_server(UserPoolId=pool_id, Identifier="https://api.one", Name="again")
    assert _error(duplicate)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as bad_scope:
        idp.create_resource_server(
            UserPoolId=pool_id,
            Identifier="https://api.bad",
            Name="bad",
            Scopes=[{"ScopeName": "a b", "ScopeDescription": "x"}],
        )
    assert _error(bad_scope)[0] == "InvalidParameterException"
    idp.create_resource_server(UserPoolId=pool_id, Identifier="https://api.two", Name="two")
    listed = idp.list_resource_servers(UserPoolId=pool_id, MaxResults=1)
    assert [s["Identifier"] for s in listed["ResourceServers"]] == ["https://api.one"]
    rest = idp.list_resource_servers(UserPoolId=pool_id, MaxResults=1, NextToken=listed["NextToken"])
    assert [s["Identifier"] for s in rest["ResourceServers"]] == ["https://api.two"] and "NextToken" not in rest
    updated = idp.update_resource_server(
        UserPoolId=pool_id,
        Identifier="https://api.one",
        Name="one v2",
        Scopes=[*scopes, {"ScopeName": "write", "ScopeDescription": "Write"}],
    )["ResourceServer"]
    assert updated["Name"] == "one v2" and len(updated["Scopes"]) == 2
    described = idp.describe_resource_server(UserPoolId=pool_id, Identifier="https://api.one")["ResourceServer"]
    assert described == updated
    # The custom scope can now be given to a client.
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="machine",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["https://api.one/write"],
    )["UserPoolClient"]
    assert client["AllowedOAuthScopes"] == ["https://api.one/write"]
    idp.delete_resource_server(UserPoolId=pool_id, Identifier="https://api.two")
    with pytest.raises(ClientError) as gone:
        idp.describe_resource_server(UserPoolId=pool_id, Identifier="https://api.two")
    assert _error(gone)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as no_pool:
        idp.list_resource_servers(UserPoolId="us-east-1_Missing99", MaxResults=5)
    assert _error(no_pool)[0] == "ResourceNotFoundException"


def test_domains_crud(idp: Any, pool_id: str) -> None:
    created = idp.create_user_pool_domain(UserPoolId=pool_id, Domain="settings-test")
    assert created["CloudFrontDomain"] == "settings-test.auth.us-east-1.amazoncognito.com"
    described = idp.describe_user_pool_domain(Domain="settings-test")["DomainDescription"]
    assert described["UserPoolId"] == pool_id and described["Status"] == "ACTIVE"
    other = idp.create_user_pool(PoolName="other")["UserPool"]["Id"]
    with pytest.raises(ClientError) as taken:
        idp.create_user_pool_domain(UserPoolId=other, Domain="settings-test")
    assert _error(taken)[0] == "InvalidParameterException"
    for bad in ("Upper", "has_underscore", "-dash", "my-cognito-app"):
        with pytest.raises(ClientError) as invalid:
            idp.create_user_pool_domain(UserPoolId=other, Domain=bad)
        assert _error(invalid)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as second:
        idp.create_user_pool_domain(UserPoolId=pool_id, Domain="settings-test-2")
    assert _error(second)[0] == "InvalidParameterException"
    custom = idp.create_user_pool_domain(
        UserPoolId=pool_id,
        Domain="auth.example.com",
        CustomDomainConfig={"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/1"},
    )
    # Where the custom domain's DNS must point: this server's host (Cognito answers its CloudFront distribution).
    assert custom["CloudFrontDomain"] == "127.0.0.1"
    described = idp.describe_user_pool_domain(Domain="auth.example.com")["DomainDescription"]
    assert described["CloudFrontDistribution"] == "127.0.0.1" and "S3Bucket" not in described
    idp.update_user_pool_domain(
        UserPoolId=pool_id,
        Domain="auth.example.com",
        CustomDomainConfig={"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/2"},
    )
    assert idp.describe_user_pool_domain(Domain="auth.example.com")["DomainDescription"]["CustomDomainConfig"] == {
        "CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/2"
    }
    with pytest.raises(ClientError) as not_owner:
        idp.delete_user_pool_domain(UserPoolId=other, Domain="auth.example.com")
    assert _error(not_owner)[0] == "InvalidParameterException"
    idp.delete_user_pool_domain(UserPoolId=pool_id, Domain="auth.example.com")
    assert idp.describe_user_pool_domain(Domain="auth.example.com")["DomainDescription"] == {}


def test_requests_are_routed_by_host_domain(gatehouse: GatehouseServer, idp: Any) -> None:
    """A pool's domain in the Host header serves that pool; another pool's client is refused there."""
    first = idp.create_user_pool(PoolName="routed-a")["UserPool"]["Id"]
    second = idp.create_user_pool(PoolName="routed-b")["UserPool"]["Id"]
    idp.create_user_pool_domain(UserPoolId=first, Domain="routed-a")
    idp.create_user_pool_domain(
        UserPoolId=second,
        Domain="login.routed-b.example",
        CustomDomainConfig={"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/3"},
    )
    common = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid"],
        "CallbackURLs": [CALLBACK],
    }
    client_a = idp.create_user_pool_client(UserPoolId=first, ClientName="a", **common)["UserPoolClient"]["ClientId"]
    make_user(idp, first, "dora")
    _, challenge = pkce_pair()
    query = urlencode(
        {
            "client_id": client_a,
            "response_type": "code",
            "redirect_uri": CALLBACK,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    url = f"{gatehouse.url}/oauth2/authorize?{query}"
    on_own = requests.get(url, headers={"Host": "routed-a.auth.us-east-1.amazoncognito.com"}, allow_redirects=False)
    assert on_own.status_code == 302 and "/login?rid=" in on_own.headers["Location"]
    on_other = requests.get(url, headers={"Host": "login.routed-b.example"}, allow_redirects=False)
    assert on_other.status_code == 400 and "Location" not in on_other.headers
    # And by path, as the discovery document names it.
    browser = Browser(gatehouse.url)
    back = browser.sign_in(
        browser.authorize_url(client_a, prefix=f"/{first}", code_challenge=challenge, code_challenge_method="S256"),
        "dora",
    )
    assert back.status_code == 303 and "code" in query_of(back.headers["Location"])
    wrong_path = browser.get(browser.authorize_url(client_a, prefix=f"/{second}"))
    assert wrong_path.status_code == 400


def _png() -> bytes:
    import io

    import segno

    buffer = io.BytesIO()
    segno.make("logo").save(buffer, kind="png", scale=2)
    return buffer.getvalue()


def test_ui_customization_is_applied_to_the_hosted_pages(gatehouse: GatehouseServer, idp: Any) -> None:
    pool = idp.create_user_pool(PoolName="custom-ui")["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool,
        ClientName="c",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
    )["UserPoolClient"]["ClientId"]
    idp.create_user_pool_domain(UserPoolId=pool, Domain="custom-ui-pages")  # SetUICustomization needs one
    css = ".submitButton-customizable { background-color: #0a7d32; }\n.banner-customizable { padding: 2px; }"
    logo = _png()
    set_answer = idp.set_ui_customization(UserPoolId=pool, CSS=css, ImageFile=logo)["UICustomization"]
    assert set_answer["CSS"] == css and set_answer["ClientId"] == "ALL" and set_answer["ImageUrl"]
    got = idp.get_ui_customization(UserPoolId=pool, ClientId=client)["UICustomization"]
    assert got["CSS"] == css  # the pool's applies to a client without its own
    for bad_css in (".evil { color: red }", "@import url(https://evil.example/x.css);", "</style><script>"):
        with pytest.raises(ClientError) as refused:
            idp.set_ui_customization(UserPoolId=pool, ClientId=client, CSS=bad_css)
        assert _error(refused)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as not_image:
        idp.set_ui_customization(UserPoolId=pool, ImageFile=b"GIF89a not allowed")
    assert _error(not_image)[0] == "InvalidParameterException"

    _, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    page = browser.follow(
        browser.get(browser.authorize_url(client, code_challenge=challenge, code_challenge_method="S256"))
    )
    assert page.status_code == 200 and "custom.css" in page.text and 'class="logo logo-customizable"' in page.text
    css_url = page.text.split('<link rel="stylesheet" href="')[2].split('"')[0].replace("&amp;", "&")
    served = browser.get(css_url)
    assert served.status_code == 200 and served.text == css and served.headers["Content-Type"].startswith("text/css")
    logo_url = page.text.split('class="logo logo-customizable" src="')[1].split('"')[0].replace("&amp;", "&")
    image = browser.get(logo_url)
    assert image.status_code == 200 and image.content == logo and image.headers["Content-Type"] == "image/png"

    # A client's own customization wins over the pool's; clearing it brings the pool's back.
    idp.set_ui_customization(UserPoolId=pool, ClientId=client, CSS=".label-customizable { font-weight: 400; }")
    own = idp.get_ui_customization(UserPoolId=pool, ClientId=client)["UICustomization"]
    assert own["ClientId"] == client and "label-customizable" in own["CSS"] and "ImageUrl" not in own
    idp.set_ui_customization(UserPoolId=pool, ClientId=client)
    assert idp.get_ui_customization(UserPoolId=pool, ClientId=client)["UICustomization"]["CSS"] == css
