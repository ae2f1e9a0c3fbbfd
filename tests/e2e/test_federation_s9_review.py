"""Federation edge cases, end to end over HTTP against fake upstreams (pysaml2's IdP, signed OIDC tokens).

* AdminDisableProviderForUser unlinks a SAML / OIDC identity linked by an attribute once it has signed in, by
  ``Cognito_Subject`` and its subject, as Cognito's API reference tells administrators to.
* In a pool whose user names are case insensitive, a federated user is ``<provider>_<subject>`` in lower case
  (the ``identities`` attribute keeps the subject as written); a case-sensitive pool keeps the name as written.
* The hosted sign-in page's corporate email finds an IdpIdentifier registered with capitals (RFC 4343).
* ``COGNITO`` (in any case) cannot name an identity provider: it is the pool's own directory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.federation_support import Flow, corp_details, saml_idp_for, usernames, verified_id_token
from tests.e2e.oauth_support import CALLBACK, query_of
from tests.fakes.oauth import FakeGoogle, FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        server.user = {"sub": "emp-1", "email": "emp@corp.example", "email_verified": True}
        yield server


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="federation-s9")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[FakeSamlIdP]:
    with saml_idp_for(gatehouse, idp, pool_id) as server:
        yield server


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, google: FakeGoogle, corp: FakeOIDC, saml_idp: FakeSamlIdP) -> str:
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Google", ProviderType="Google",
        ProviderDetails=google.provider_details(), AttributeMapping={"email": "email", "name": "name"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC", ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email", "email_verified": "email_verified"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Portal", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO", "Google", "Corp", "Portal"],
    )  # fmt: skip
    return str(client["UserPoolClient"]["ClientId"])


def sign_in(gatehouse: GatehouseServer, client_id: str, provider: str) -> dict[str, str]:
    """One federated round trip; the query the client's redirect URI receives."""
    response = Flow(gatehouse, client_id).run(Flow(gatehouse, client_id).authorize_url(identity_provider=provider))
    assert response.status_code in (302, 303), response.text
    assert response.headers["Location"].startswith(CALLBACK)
    return query_of(response.headers["Location"])


def attributes(idp: Any, pool_id: str, username: str) -> dict[str, str]:
    user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}


def native(idp: Any, pool_id: str, username: str) -> None:
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")


def link(idp: Any, pool_id: str, username: str, provider: str, attribute: str, value: str) -> None:
    idp.admin_link_provider_for_user(
        UserPoolId=pool_id,
        DestinationUser={"ProviderName": "Cognito", "ProviderAttributeValue": username},
        SourceUser={"ProviderName": provider, "ProviderAttributeName": attribute, "ProviderAttributeValue": value},
    )


def test_a_saml_identity_linked_by_email_is_unlinked_by_its_subject_once_signed_in(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    native(idp, pool_id, "saml-dora")
    link(idp, pool_id, "saml-dora", "Portal", "email", "dora@corp.example")
    saml_idp.user = {"name_id": "dora-subject", "attributes": {"email": ["dora@corp.example"]}}
    assert "code" in sign_in(gatehouse, client_id, "Portal")
    identities = attributes(idp, pool_id, "saml-dora")["identities"]
    assert '"userId":"dora-subject"' in identities
    # "If the user has already signed in, the ProviderAttributeName must be Cognito_Subject and
    # ProviderAttributeValue must be the subject of the SAML assertion" (AdminDisableProviderForUser).
    idp.admin_disable_provider_for_user(
        UserPoolId=pool_id,
        User={"ProviderName": "Portal", "ProviderAttributeName": "Cognito_Subject",
              "ProviderAttributeValue": "dora-subject"},
    )  # fmt: skip
    assert "identities" not in attributes(idp, pool_id, "saml-dora")
    # The link is gone: the next sign-in makes a user of its own rather than landing on saml-dora.
    assert "code" in sign_in(gatehouse, client_id, "Portal")
    assert "Portal_dora-subject" in usernames(idp, pool_id)


def test_a_case_insensitive_pool_names_federated_users_in_lower_case(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    # Cognito ("Mapping IdP attributes to profiles and tokens"): in a user pool whose usernames are case
    # insensitive, the whole <ProviderName>_<subject> user name is lower case, provider name included.
    created = idp.create_user_pool(PoolName="federation-s9-folded", UsernameConfiguration={"CaseSensitive": False})
    folded = str(created["UserPool"]["Id"])
    idp.create_identity_provider(
        UserPoolId=folded, ProviderName="Corp", ProviderType="OIDC", ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    client = idp.create_user_pool_client(
        UserPoolId=folded, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["Corp"],
    )["UserPoolClient"]["ClientId"]  # fmt: skip
    corp.user = {"sub": "Emp-MixedCase-7", "email": "mixed@corp.example"}
    flow = Flow(gatehouse, client)
    answer = flow.run(flow.authorize_url(identity_provider="Corp"))
    tokens = flow.tokens(query_of(answer.headers["Location"])["code"])
    claims = verified_id_token(gatehouse, folded, client, tokens["id_token"])
    assert claims["cognito:username"] == "corp_emp-mixedcase-7"
    assert usernames(idp, folded) == {"corp_emp-mixedcase-7"}
    # The identity keeps the subject as the IdP wrote it; the next sign-in finds the same user.
    assert [i["userId"] for i in claims["identities"]] == ["Emp-MixedCase-7"]
    assert "code" in sign_in(gatehouse, client, "Corp")
    assert usernames(idp, folded) == {"corp_emp-mixedcase-7"}
    # A case-sensitive pool (the API's default) keeps the name as written.
    corp.user = {"sub": "Emp-MixedCase-8", "email": "mixed8@corp.example"}
    assert "code" in sign_in(gatehouse, client_id, "Corp")
    assert "Corp_Emp-MixedCase-8" in usernames(idp, pool_id)


def test_a_corporate_email_finds_an_identifier_written_in_capitals(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str
) -> None:
    # Domain names are case-insensitive (RFC 4343): an identifier registered as "S9Corp.Example" is the domain
    # of "ann@s9corp.example" on the sign-in page's corporate email form, as "ann@S9CORP.example" is.
    idp.update_identity_provider(UserPoolId=pool_id, ProviderName="Corp", IdpIdentifiers=["S9Corp.Example"])
    flow = Flow(gatehouse, client_id)
    first = flow.http.get(flow.authorize_url(), allow_redirects=False)
    rid = query_of(gatehouse.url + first.headers["Location"])["rid"]
    for email in ("ann@s9corp.example", "ann@S9CORP.EXAMPLE"):
        chosen = flow.http.get(f"{gatehouse.url}/login/sso", params={"rid": rid, "email": email}, allow_redirects=False)
        assert chosen.status_code == 302, (email, chosen.text[:300])
        assert query_of(gatehouse.url + chosen.headers["Location"])["identity_provider"] == "Corp"
    refused = flow.http.get(
        f"{gatehouse.url}/login/sso", params={"rid": rid, "email": "ann@other.example"}, allow_redirects=False
    )
    assert refused.status_code == 400


@pytest.mark.parametrize("name", ["COGNITO", "cognito", "Cognito"])
def test_a_provider_cannot_be_named_after_the_pools_own_directory(
    idp: Any, pool_id: str, corp: FakeOIDC, name: str
) -> None:
    # SupportedIdentityProviders' "COGNITO" is the pool's own directory: an OIDC or SAML provider of that name
    # could never be chosen (identity_provider=COGNITO is the sign-in page) nor told apart from it.
    with pytest.raises(idp.exceptions.InvalidParameterException):
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName=name, ProviderType="OIDC", ProviderDetails=corp_details(corp)
        )
    assert name not in {p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=pool_id)["Providers"]}


def test_the_identities_issuer_is_the_saml_idp_and_null_for_oidc_and_social_providers(
    gatehouse: GatehouseServer,
    idp: Any,
    pool_id: str,
    client_id: str,
    google: FakeGoogle,
    corp: FakeOIDC,
    saml_idp: FakeSamlIdP,
) -> None:
    # As Cognito writes the identities attribute: "issuer":null for Google, Apple, Facebook, Amazon and OIDC
    # providers; a SAML IdP's entity ID for SAML.
    google.user = {**google.user, "sub": "iss-g-1", "email": "issg@gmail.example"}
    corp.user = {"sub": "iss-c-1", "email": "issc@corp.example"}
    saml_idp.user = {"name_id": "iss-s-1", "attributes": {"email": ["iss@corp.example"]}}
    expected = {"Google_iss-g-1": None, "Corp_iss-c-1": None, "Portal_iss-s-1": saml_idp.entity_id}
    for provider in ("Google", "Corp", "Portal"):
        assert "code" in sign_in(gatehouse, client_id, provider)
    for username, issuer in expected.items():
        (entry,) = json.loads(attributes(idp, pool_id, username)["identities"])
        assert entry["issuer"] == issuer, username
