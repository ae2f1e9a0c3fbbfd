"""Federated sign-in end to end over HTTP: ``/oauth2/authorize?identity_provider=X`` -> the upstream (fake
Google, Sign in with Apple, a discovery-configured OIDC provider, pysaml2's IdP) -> ``/oauth2/idpresponse`` or
``/saml2/idpresponse`` -> a code at the client's redirect URI -> tokens from ``/oauth2/token``, verified against
the pool's JWKS. And the refusals: tampered state, an ID token signed by another key, the user declining
upstream, a provider the client does not support -- each answered without creating a user."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.e2e.federation_support import Flow, corp_details, saml_idp_for, usernames, verified_id_token
from tests.e2e.oauth_support import CALLBACK, query_of
from tests.fakes.oauth import FakeApple, FakeGoogle, FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        server.user = {"sub": "emp-1", "email": "emp@corp.example", "groups": ["corp-admins"]}
        yield server


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="federated-flow")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[FakeSamlIdP]:
    with saml_idp_for(gatehouse, idp, pool_id) as server:
        yield server


@pytest.fixture(scope="module")
def client_id(
    idp: Any, pool_id: str, google: FakeGoogle, apple: FakeApple, corp: FakeOIDC, saml_idp: FakeSamlIdP
) -> str:
    idp.create_group(UserPoolId=pool_id, GroupName="admins")
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Google", ProviderType="Google",
        ProviderDetails=google.provider_details(), AttributeMapping={"email": "email", "name": "name"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="SignInWithApple", ProviderType="SignInWithApple",
        ProviderDetails=apple.provider_details(), AttributeMapping={"email": "email", "given_name": "given_name"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC",
        ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email"}, IdpIdentifiers=["corp.example"],
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="CorpSAML", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256",
                         "EncryptedResponses": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    saml_idp.encrypt = True
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="spa",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO", "Google", "SignInWithApple", "Corp", "CorpSAML"],
    )
    return str(client["UserPoolClient"]["ClientId"])


def test_google_end_to_end(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="Google"))
    assert response.status_code == 303, response.text
    answer = query_of(response.headers["Location"])
    assert answer["state"] == "app-state-1" and "code" in answer
    sent = google.authorize_requests[-1]
    assert sent["redirect_uri"] == f"{gatehouse.url}/oauth2/idpresponse" and sent["client_id"] == google.client_id
    tokens = flow.tokens(answer["code"])
    claims = verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"])
    assert claims["cognito:username"] == "Google_110169484474386276334"
    assert claims["email"] == "ann@gmail.example" and claims["name"] == "Ann Example"
    (identity,) = claims["identities"]
    assert (identity["providerName"], identity["providerType"], identity["userId"]) == (
        "Google", "Google", "110169484474386276334",
    )  # fmt: skip
    user = idp.admin_get_user(UserPoolId=pool_id, Username="Google_110169484474386276334")
    assert user["UserStatus"] == "EXTERNAL_PROVIDER"
    info = userinfo(gatehouse, tokens["access_token"])
    assert info["sub"] == claims["sub"] and info["email"] == "ann@gmail.example"


def test_apple_form_post_end_to_end(gatehouse: GatehouseServer, pool_id: str, client_id: str, apple: FakeApple) -> None:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="SignInWithApple"))
    assert response.status_code == 303, response.text
    tokens = flow.tokens(query_of(response.headers["Location"])["code"])
    claims = verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"])
    assert claims["cognito:username"] == "SignInWithApple_001234.abcdef.0987"
    assert claims["given_name"] == "Ann"  # from the first-login user JSON
    assert apple.client_secrets[-1]["header"]["alg"] == "ES256"


def test_oidc_by_idp_identifier_with_discovery(gatehouse: GatehouseServer, pool_id: str, client_id: str) -> None:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(idp_identifier="corp.example"))
    assert response.status_code == 303, response.text
    claims = verified_id_token(
        gatehouse, pool_id, client_id, flow.tokens(query_of(response.headers["Location"])["code"])["id_token"]
    )
    assert claims["cognito:username"] == "Corp_emp-1" and claims["email"] == "emp@corp.example"


def test_saml_end_to_end_with_encrypted_assertions(
    gatehouse: GatehouseServer, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="CorpSAML"))
    assert response.status_code == 303, response.text
    seen = saml_idp.authn_requests[-1]
    assert seen["signed"] and seen["issuer"] == f"urn:amazon:cognito:sp:{pool_id}"
    tokens = flow.tokens(query_of(response.headers["Location"])["code"])
    claims = verified_id_token(gatehouse, pool_id, client_id, tokens["id_token"])
    assert claims["cognito:username"] == "CorpSAML_ann@corp.example" and claims["email"] == "ann@corp.example"
    info = userinfo(gatehouse, tokens["access_token"])
    assert info["username"] == "CorpSAML_ann@corp.example" and info["email"] == "ann@corp.example"


def test_tampered_state_gets_a_page_and_no_user(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    before = usernames(idp, pool_id)
    google.user = {**google.user, "sub": "tamper-1"}
    flow = Flow(gatehouse, client_id)
    response = flow.run(
        flow.authorize_url(identity_provider="Google"), tamper=lambda url: url.replace("state=", "state=x")
    )
    assert response.status_code == 400 and "text/html" in response.headers["Content-Type"]
    assert "Traceback" not in response.text
    assert usernames(idp, pool_id) == before


def test_id_token_signed_by_another_key_is_an_error_redirect(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    before = usernames(idp, pool_id)
    google.user = {**google.user, "sub": "forged-1"}
    google.id_token_mode = "other_key"
    try:
        flow = Flow(gatehouse, client_id)
        response = flow.run(flow.authorize_url(identity_provider="Google"))
    finally:
        google.id_token_mode = None
    assert response.status_code == 303
    answer = query_of(response.headers["Location"])
    assert answer["error"] == "invalid_request" and answer["state"] == "app-state-1" and "code" not in answer
    assert usernames(idp, pool_id) == before


def test_declined_upstream_is_access_denied(gatehouse: GatehouseServer, client_id: str, google: FakeGoogle) -> None:
    flow = Flow(gatehouse, client_id)
    first = flow.http.get(flow.authorize_url(identity_provider="Google"), allow_redirects=False)
    state = query_of(first.headers["Location"])["state"]
    response = flow.http.get(
        f"{gatehouse.url}/oauth2/idpresponse?{urlencode({'error': 'access_denied', 'state': state})}",
        allow_redirects=False,
    )
    assert response.status_code == 303
    assert query_of(response.headers["Location"])["error"] == "access_denied"


def test_unsupported_or_unknown_provider_is_refused(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> None:
    other = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="cognito-only", AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]  # fmt: skip
    flow = Flow(gatehouse, other)
    for extra in ({"identity_provider": "Google"}, {"identity_provider": "Nobody"}, {"idp_identifier": "nope.example"}):
        response = flow.http.get(flow.authorize_url(**extra), allow_redirects=False)
        assert response.status_code == 302
        answer = query_of(response.headers["Location"])
        assert response.headers["Location"].startswith(CALLBACK) and answer["error"] == "invalid_request"


def test_callback_in_another_browser_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    """Login CSRF: the attacker starts a sign-in with their own upstream account and has the victim's browser
    complete the callback. The callback is bound to the browser that started it."""
    before = usernames(idp, pool_id)
    google.user = {**google.user, "sub": "attacker-1"}
    attacker = Flow(gatehouse, client_id)
    first = attacker.http.get(attacker.authorize_url(identity_provider="Google"), allow_redirects=False)
    assert "gatehouse_federation" in first.cookies
    upstream = attacker.http.get(first.headers["Location"], allow_redirects=False)
    callback = upstream.headers["Location"]
    victim = requests.Session()
    response = victim.get(callback, allow_redirects=False)
    assert response.status_code == 400 and "another browser" in response.text
    assert not any(c.name.startswith("gatehouse_sso") for c in victim.cookies)
    assert usernames(idp, pool_id) == before


def test_hosted_login_page_offers_the_clients_providers(
    gatehouse: GatehouseServer, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    import html as html_lib
    import re

    google.user = {**google.user, "sub": "110169484474386276334"}
    flow = Flow(gatehouse, client_id)
    first = flow.http.get(flow.authorize_url(), allow_redirects=False)
    page = flow.http.get(gatehouse.url + first.headers["Location"], allow_redirects=False)
    assert page.status_code == 200 and 'name="password"' in page.text
    links = {
        name: html_lib.unescape(url)
        for url, name in re.findall(
            r'<a class="idpButton-customizable" href="([^"]+)">Sign in with ([^<]+)</a>', page.text
        )
    }
    assert set(links) == {"Google", "Apple", "Corp", "CorpSAML"}
    assert query_of(links["Apple"])["identity_provider"] == "SignInWithApple"
    assert query_of(links["Google"])["code_challenge"] == flow.challenge
    response = flow.run(gatehouse.url + links["Google"])
    assert response.status_code == 303
    answer = query_of(response.headers["Location"])
    assert answer["state"] == "app-state-1"
    claims = verified_id_token(gatehouse, pool_id, client_id, flow.tokens(answer["code"])["id_token"])
    assert claims["cognito:username"] == "Google_110169484474386276334"


def test_idp_initiated_saml(gatehouse: GatehouseServer, idp: Any, pool_id: str, saml_idp: FakeSamlIdP) -> None:
    """The IdP posts an unsolicited Response with the authorization parameters in RelayState: accepted only for
    a provider with IDPInit, and only once."""
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="CorpPortal", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "IDPInit": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="portal-app", GenerateSecret=True, AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["CorpPortal", "CorpSAML"],
    )["UserPoolClient"]  # fmt: skip
    saml_idp.user = {**saml_idp.user, "name_id": "portal-user@corp.example"}

    def post(provider: str, saml_response: str) -> requests.Response:
        relay = urlencode(
            {"response_type": "code", "client_id": client["ClientId"], "redirect_uri": CALLBACK,
             "identity_provider": provider, "scope": "openid email"}
        )  # fmt: skip
        return requests.post(
            f"{gatehouse.url}/saml2/idpresponse",
            data={"SAMLResponse": saml_response, "RelayState": relay},
            allow_redirects=False,
        )

    unsolicited = saml_idp.response(None)
    response = post("CorpPortal", unsolicited)
    assert response.status_code == 303, response.text
    code = query_of(response.headers["Location"])["code"]
    tokens = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=(client["ClientId"], client["ClientSecret"]),
    ).json()
    claims = verified_id_token(gatehouse, pool_id, client["ClientId"], tokens["id_token"])
    assert claims["cognito:username"] == "CorpPortal_portal-user@corp.example"
    # The same assertion again is a replay.
    replay = post("CorpPortal", unsolicited)
    assert replay.status_code == 303 and query_of(replay.headers["Location"])["error"] == "invalid_request"
    # A provider without IDPInit refuses unsolicited responses, and no user is made.
    saml_idp.user = {**saml_idp.user, "name_id": "nobody@corp.example"}
    before = usernames(idp, pool_id)
    refused = post("CorpSAML", saml_idp.response(None, encrypt=True))
    assert refused.status_code == 303 and query_of(refused.headers["Location"])["error"] == "invalid_request"
    assert usernames(idp, pool_id) == before
    saml_idp.user = {**saml_idp.user, "name_id": "ann@corp.example"}


def test_corporate_email_on_the_sign_in_page_picks_the_provider_by_its_domain(
    gatehouse: GatehouseServer, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    """Cognito's managed login: an email whose domain is one of a provider's IdpIdentifiers goes to that
    provider; any other is told so on the page, and nothing leaves for an upstream."""
    import html as html_lib
    import re

    flow = Flow(gatehouse, client_id)
    first = flow.http.get(flow.authorize_url(), allow_redirects=False)
    page = flow.http.get(gatehouse.url + first.headers["Location"], allow_redirects=False)
    form = re.search(r'<form method="get" action="([^"]+)" class="corporate"', page.text)
    assert form is not None and 'name="email" type="email"' in page.text
    rid = query_of(gatehouse.url + first.headers["Location"])["rid"]
    sso = gatehouse.url + html_lib.unescape(form.group(1))

    sent_before = len(corp.authorize_requests)
    for email in ("emp@other.example", "no-at-sign", "@corp.example", "x@" + "a" * 300, ""):
        refused = flow.http.get(sso, params={"rid": rid, "email": email}, allow_redirects=False)
        assert refused.status_code == 400 and "Location" not in refused.headers, email
        assert "Single sign-on is not set up for that email address" in refused.text
    hostile = flow.http.get(sso, params={"rid": rid, "email": 'emp@other.example"><script>'}, allow_redirects=False)
    assert hostile.status_code == 400 and "&lt;script&gt;" in hostile.text and '"><script>' not in hostile.text
    assert len(corp.authorize_requests) == sent_before

    chosen = flow.http.get(sso, params={"rid": rid, "email": "Emp@CORP.example"}, allow_redirects=False)
    assert chosen.status_code == 302
    assert query_of(gatehouse.url + chosen.headers["Location"])["identity_provider"] == "Corp"
    response = flow.run(gatehouse.url + chosen.headers["Location"])
    assert response.status_code == 303, response.text
    answer = query_of(response.headers["Location"])
    assert answer["state"] == "app-state-1"
    claims = verified_id_token(gatehouse, pool_id, client_id, flow.tokens(answer["code"])["id_token"])
    assert claims["cognito:username"] == "Corp_emp-1"

    gone = flow.http.get(sso, params={"rid": "not-a-request", "email": "emp@corp.example"}, allow_redirects=False)
    assert gone.status_code in (400, 404) and "expired" in gone.text


def userinfo(gatehouse: GatehouseServer, access_token: str) -> dict[str, Any]:
    reply = requests.get(
        f"{gatehouse.url}/oauth2/userInfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())
