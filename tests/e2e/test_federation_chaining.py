"""Chaining: one Gatehouse user pool is the OpenID Connect identity provider of another Gatehouse.

Pool A on server A is registered in pool B on server B as an ``OIDC`` provider by its issuer alone
(``{urlA}/{poolA}``; discovery fills in the endpoints), with a confidential client of pool A whose callback is
B's ``/oauth2/idpresponse``. A person starts at B's ``/oauth2/authorize?identity_provider=PoolA``, signs in on
A's hosted login page with A's username and password, and comes back to B, which issues its own code and tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urljoin

import pytest
import requests

from tests.e2e.federation_support import usernames, verified_id_token, without_provider_groups
from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, make_user, pkce_pair, query_of
from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def server_a(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("chain-a") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server_b(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("chain-b") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def setup(server_a: GatehouseServer, server_b: GatehouseServer) -> dict[str, Any]:
    idp_a, idp_b = server_a.client(), server_b.client()
    pool_a = idp_a.create_user_pool(PoolName="upstream-a")["UserPool"]["Id"]
    make_user(idp_a, pool_a, "alice", "alice@a.example")
    sub_a = next(a["Value"] for a in idp_a.admin_get_user(UserPoolId=pool_a, Username="alice")["UserAttributes"]
                 if a["Name"] == "sub")  # fmt: skip
    pool_b = idp_b.create_user_pool(PoolName="downstream-b")["UserPool"]["Id"]
    upstream_client = idp_a.create_user_pool_client(
        UserPoolId=pool_a, ClientName="pool-b-broker", GenerateSecret=True, AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email", "profile"],
        CallbackURLs=[f"{server_b.url}/oauth2/idpresponse"], SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]  # fmt: skip
    idp_b.create_identity_provider(
        UserPoolId=pool_b, ProviderName="PoolA", ProviderType="OIDC",
        ProviderDetails={"client_id": upstream_client["ClientId"], "client_secret": upstream_client["ClientSecret"],
                         "authorize_scopes": "openid email profile", "oidc_issuer": f"{server_a.url}/{pool_a}",
                         "attributes_request_method": "GET"},
        AttributeMapping={"email": "email", "name": "name"},
    )  # fmt: skip
    app = idp_b.create_user_pool_client(
        UserPoolId=pool_b, ClientName="app", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["PoolA"],
    )["UserPoolClient"]  # fmt: skip
    return {"pool_a": pool_a, "sub_a": sub_a, "pool_b": pool_b, "client_id": app["ClientId"], "idp_b": idp_b}


def start(server_b: GatehouseServer, client_id: str, challenge: str) -> str:
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "scope": "openid email profile",
        "state": "b-state", "code_challenge": challenge, "code_challenge_method": "S256", "identity_provider": "PoolA",
    }  # fmt: skip
    return f"{server_b.url}/oauth2/authorize?{urlencode(params)}"


def walk(http: requests.Session, response: requests.Response, stop: str) -> requests.Response:
    """Follow redirects across both servers until one leads to ``stop`` or a page is shown."""
    for _ in range(12):
        if not response.is_redirect:
            return response
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(stop):
            return response
        response = http.get(location, allow_redirects=False, timeout=10)
    raise AssertionError("too many redirects")


def test_pool_a_signs_people_in_to_pool_b(
    server_a: GatehouseServer, server_b: GatehouseServer, setup: dict[str, Any]
) -> None:
    verifier, challenge = pkce_pair()
    browser = Browser(server_a.url)
    first = browser.http.get(start(server_b, setup["client_id"], challenge), allow_redirects=False, timeout=10)
    assert first.status_code == 302 and first.headers["Location"].startswith(
        f"{server_a.url}/{setup['pool_a']}/oauth2/authorize"
    )
    login = walk(browser.http, first, CALLBACK)
    assert login.status_code == 200 and 'name="password"' in login.text, login.text
    assert login.url.startswith(server_a.url)
    back = browser.submit(login, {"username": "alice", "password": PASSWORD})
    assert back.is_redirect and back.headers["Location"].startswith(f"{server_b.url}/oauth2/idpresponse")
    done = walk(browser.http, back, CALLBACK)
    assert done.is_redirect and done.headers["Location"].startswith(CALLBACK), done.text
    answer = query_of(done.headers["Location"])
    assert answer["state"] == "b-state"
    tokens = requests.post(
        f"{server_b.url}/oauth2/token",
        data={"grant_type": "authorization_code", "client_id": setup["client_id"], "code": answer["code"],
              "redirect_uri": CALLBACK, "code_verifier": verifier},
        timeout=10,
    ).json()  # fmt: skip
    claims = verified_id_token(server_b, setup["pool_b"], setup["client_id"], tokens["id_token"])
    username = f"PoolA_{setup['sub_a']}"
    assert claims["cognito:username"] == username
    assert claims["email"] == "alice@a.example" and claims["name"] == "Name of alice"
    (identity,) = claims["identities"]
    assert identity["providerName"] == "PoolA" and identity["providerType"] == "OIDC"
    assert identity["userId"] == setup["sub_a"]
    user = setup["idp_b"].admin_get_user(UserPoolId=setup["pool_b"], Username=username)
    assert user["UserStatus"] == "EXTERNAL_PROVIDER"
    # B's userInfo answers for B's user, with A's mapped attributes.
    info = requests.get(
        f"{server_b.url}/oauth2/userInfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    ).json()
    assert info["email"] == "alice@a.example" and info["username"] == username


def test_wrong_password_at_a_makes_no_user_at_b(
    server_a: GatehouseServer, server_b: GatehouseServer, setup: dict[str, Any]
) -> None:
    before = usernames(setup["idp_b"], setup["pool_b"])
    _, challenge = pkce_pair()
    browser = Browser(server_a.url)
    login = walk(
        browser.http,
        browser.http.get(start(server_b, setup["client_id"], challenge), allow_redirects=False, timeout=10),
        CALLBACK,
    )
    refused = browser.submit(login, {"username": "alice", "password": "Wrong-Password-1"})
    assert refused.status_code in (200, 400) and "Traceback" not in refused.text
    assert not refused.is_redirect
    assert usernames(setup["idp_b"], setup["pool_b"]) == before


def test_a_client_without_bs_callback_is_refused_upstream(
    server_a: GatehouseServer, server_b: GatehouseServer, setup: dict[str, Any]
) -> None:
    """A's client must list B's idpresponse: a provider registered with a client that does not is stopped at A
    (an error page there, never a redirect to an unregistered URI)."""
    idp_a, idp_b = server_a.client(), server_b.client()
    stray = idp_a.create_user_pool_client(
        UserPoolId=setup["pool_a"], ClientName="stray", GenerateSecret=True, AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email"], CallbackURLs=["https://elsewhere.example/cb"],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]  # fmt: skip
    idp_b.create_identity_provider(
        UserPoolId=setup["pool_b"], ProviderName="PoolAStray", ProviderType="OIDC",
        ProviderDetails={"client_id": stray["ClientId"], "client_secret": stray["ClientSecret"],
                         "authorize_scopes": "openid email", "oidc_issuer": f"{server_a.url}/{setup['pool_a']}",
                         "attributes_request_method": "GET"},
    )  # fmt: skip
    idp_b.update_user_pool_client(
        UserPoolId=setup["pool_b"], ClientId=setup["client_id"], AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["PoolA", "PoolAStray"],
    )  # fmt: skip
    _, challenge = pkce_pair()
    url = start(server_b, setup["client_id"], challenge).replace(
        "identity_provider=PoolA", "identity_provider=PoolAStray"
    )
    http = requests.Session()
    page = walk(http, http.get(url, allow_redirects=False, timeout=10), CALLBACK)
    assert page.status_code == 400 and "text/html" in page.headers["Content-Type"]
    assert page.url.startswith(server_a.url) and "Traceback" not in page.text


def test_pool_a_groups_become_pool_b_groups_through_config(
    tmp_path_factory: pytest.TempPathFactory, server_a: GatehouseServer, setup: dict[str, Any]
) -> None:
    """The chained provider declared in B's config file, with a group rule on A's ``cognito:groups`` claim: a
    member of A's ``admins`` lands in B's ``upstream-admins``; after leaving it at A, the next sign-in takes the
    group away at B."""
    idp_a = server_a.client()
    idp_a.create_group(UserPoolId=setup["pool_a"], GroupName="admins")
    idp_a.admin_add_user_to_group(UserPoolId=setup["pool_a"], Username="alice", GroupName="admins")
    server_c = GatehouseServer(tmp_path_factory.mktemp("chain-c") / "data", config="version: 1\npools: []\n")
    broker = idp_a.create_user_pool_client(
        UserPoolId=setup["pool_a"], ClientName="pool-c-broker", GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[f"{server_c.url}/oauth2/idpresponse"],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]  # fmt: skip
    assert server_c.config_path is not None
    server_c.config_path.write_text(f"""\
version: 1
pools:
  - id: us-east-1_ChainC001
    name: chained
    groups: [{{name: upstream-admins}}]
    clients:
      - id: chainapp00000000000000001
        name: app
        callback_urls: ["{CALLBACK}"]
        allowed_oauth_flows: [code]
        allowed_oauth_scopes: [openid, email, profile]
        supported_identity_providers: [PoolA]
    identity_providers:
      - name: PoolA
        type: OIDC
        details: {{client_id: {broker["ClientId"]}, authorize_scopes: openid email profile,
                  oidc_issuer: "{server_a.url}/{setup["pool_a"]}", attributes_request_method: GET}}
        client_secret: "${{POOL_A_SECRET}}"
        attribute_mapping: {{email: email}}
        group_rules:
          - {{claim: "cognito:groups", match: equals, value: admins, group: upstream-admins}}
""")
    server_c.extra_env = {"POOL_A_SECRET": broker["ClientSecret"]}
    server_c.start()
    try:

        def sign_in() -> dict[str, Any]:
            verifier, challenge = pkce_pair()
            browser = Browser(server_a.url)
            url = start(server_c, "chainapp00000000000000001", challenge)
            login = walk(browser.http, browser.http.get(url, allow_redirects=False, timeout=10), CALLBACK)
            back = browser.submit(login, {"username": "alice", "password": PASSWORD})
            done = walk(browser.http, back, CALLBACK)
            code = query_of(done.headers["Location"])["code"]
            tokens = requests.post(
                f"{server_c.url}/oauth2/token",
                data={"grant_type": "authorization_code", "client_id": "chainapp00000000000000001", "code": code,
                      "redirect_uri": CALLBACK, "code_verifier": verifier},
                timeout=10,
            ).json()  # fmt: skip
            claims = verified_id_token(server_c, "us-east-1_ChainC001", "chainapp00000000000000001", tokens["id_token"])
            return without_provider_groups(claims, "us-east-1_ChainC001")

        claims = sign_in()
        assert claims["cognito:username"] == f"poola_{setup['sub_a']}"
        assert claims["cognito:groups"] == ["upstream-admins"]
        idp_a.admin_remove_user_from_group(UserPoolId=setup["pool_a"], Username="alice", GroupName="admins")
        assert "cognito:groups" not in sign_in()
    finally:
        server_c.stop()
