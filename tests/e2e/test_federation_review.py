"""Hostile and edge cases of federated sign-in, end to end over HTTP against fake upstreams.

* A disabled user (an EXTERNAL_PROVIDER profile, or a native user an identity is linked to) is refused, and the
  refused sign-in changes nothing in the store (not its attributes, not its ``identities``).
* A mapped attribute that the pool's schema makes immutable is not overwritten by a later sign-in: Cognito
  "throws an error when it attempts to update" it (SchemaAttributeType.Mutable).
* An ID token whose ``azp`` names another client is refused (OpenID Connect Core 1.0 §3.1.3.7 step 5), even
  with a single audience.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.federation_support import Flow, corp_details, usernames
from tests.e2e.oauth_support import CALLBACK, query_of
from tests.fakes.oauth import FakeGoogle, FakeOIDC
from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        server.user = {"sub": "emp-1", "email": "emp@corp.example", "email_verified": True, "tenant": "blue"}
        yield server


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    schema = [{"Name": "tenant", "AttributeDataType": "String", "Mutable": False}]
    return str(idp.create_user_pool(PoolName="federation-review", Schema=schema)["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, google: FakeGoogle, corp: FakeOIDC) -> str:
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Google", ProviderType="Google",
        ProviderDetails=google.provider_details(), AttributeMapping={"email": "email", "name": "name"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC", ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email", "custom:tenant": "tenant"},
    )  # fmt: skip
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO", "Google", "Corp"],
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


def test_a_disabled_federated_user_is_refused_and_left_unchanged(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    google.user = {**google.user, "sub": "disabled-ext-1", "name": "Ann Before"}
    assert "code" in sign_in(gatehouse, client_id, "Google")
    username = "Google_disabled-ext-1"
    idp.admin_disable_user(UserPoolId=pool_id, Username=username)
    before = attributes(idp, pool_id, username)
    google.user = {**google.user, "name": "Mallory After"}
    answer = sign_in(gatehouse, client_id, "Google")
    assert "code" not in answer and answer["error"]
    assert attributes(idp, pool_id, username) == before


def test_a_disabled_linked_native_user_is_refused_and_left_unchanged(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    idp.admin_create_user(UserPoolId=pool_id, Username="native-ann", MessageAction="SUPPRESS")
    idp.admin_link_provider_for_user(
        UserPoolId=pool_id,
        DestinationUser={"ProviderName": "Cognito", "ProviderAttributeValue": "native-ann"},
        SourceUser={
            "ProviderName": "Google", "ProviderAttributeName": "Cognito_Subject",
            "ProviderAttributeValue": "linked-1",
        },
    )  # fmt: skip
    idp.admin_disable_user(UserPoolId=pool_id, Username="native-ann")
    before = attributes(idp, pool_id, "native-ann")
    users_before = usernames(idp, pool_id)
    google.user = {**google.user, "sub": "linked-1"}
    answer = sign_in(gatehouse, client_id, "Google")
    assert "code" not in answer and answer["error"]
    assert attributes(idp, pool_id, "native-ann") == before
    assert usernames(idp, pool_id) == users_before


def test_an_immutable_mapped_attribute_is_not_overwritten(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    corp.user = {**corp.user, "sub": "tenant-1", "tenant": "blue"}
    assert "code" in sign_in(gatehouse, client_id, "Corp")
    username = "Corp_tenant-1"
    assert attributes(idp, pool_id, username)["custom:tenant"] == "blue"
    # The same value again: nothing to update, the sign-in goes through.
    assert "code" in sign_in(gatehouse, client_id, "Corp")
    corp.user = {**corp.user, "email": "moved@corp.example", "tenant": "red"}
    before = attributes(idp, pool_id, username)
    answer = sign_in(gatehouse, client_id, "Corp")
    assert "code" not in answer and answer["error"]
    assert attributes(idp, pool_id, username) == before
    assert before["custom:tenant"] == "blue"


def test_an_id_token_authorized_for_another_client_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    users_before = usernames(idp, pool_id)
    corp.user = {"sub": "azp-1", "email": "azp@corp.example", "tenant": "blue", "azp": "another-client"}
    answer = sign_in(gatehouse, client_id, "Corp")
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert usernames(idp, pool_id) == users_before
    # Its own client id as azp is fine.
    corp.user = {**corp.user, "azp": corp.client_id}
    assert "code" in sign_in(gatehouse, client_id, "Corp")
