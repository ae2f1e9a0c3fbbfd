"""Hostile and edge cases of federated sign-in, end to end over HTTP against fake upstreams.

* A disabled user (an EXTERNAL_PROVIDER profile, or a native user an identity is linked to) is refused, and the
  refused sign-in changes nothing in the store (not its attributes, not its ``identities``).
* A mapped attribute that the pool's schema makes immutable is not overwritten by a later sign-in: Cognito
  "throws an error when it attempts to update" it (SchemaAttributeType.Mutable).
* An ID token whose ``azp`` names another client is refused (OpenID Connect Core 1.0 §3.1.3.7 step 5), even
  with a single audience; an authorization response whose ``iss`` is another issuer is refused (RFC 9207).
* A changed upstream email does not inherit the old address's verification; Sign in with Apple's unsigned
  first-login name never changes an existing user.
* Odd token endpoint answers (HTML 500, oversized, not an object, no access token, an error) are OAuth error
  redirects, never a 500, and make no user.
* SAML: a comment inside the NameID does not truncate it (CVE-2017-11427 class); a bearer confirmation without
  NotOnOrAfter is refused (Profiles §4.1.4.2); a hanging metadata URL is given up on in bounded time; an
  IdP-initiated RelayState cannot redirect off the client's callback URLs; hundreds of attribute values cannot
  stretch a regex group rule's time limit; signature wrapping (the signed assertion in Extensions or in its
  signature's Object, a forgery sharing its ID, a signed Response's assertion swapped) signs no one in.
* Deleting a user drops the links to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
import requests
from aiohttp import web

from tests.e2e.federation_support import Flow, corp_details, federated_sign_in, saml_idp_for, usernames
from tests.e2e.oauth_support import CALLBACK, pkce_pair, query_of
from tests.fakes.oauth import FakeApple, FakeGoogle, FakeOIDC
from tests.fakes.saml import FakeSamlIdP, decode, encode
from tests.fakes.server import ThreadedApp
from tests.support import GatehouseServer, user_attributes


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        server.user = {"sub": "emp-1", "email": "emp@corp.example", "email_verified": True, "tenant": "blue"}
        yield server


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    schema = [{"Name": "tenant", "AttributeDataType": "String", "Mutable": False}]
    return str(idp.create_user_pool(PoolName="federation-hostile", Schema=schema)["UserPool"]["Id"])


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
        AttributeMapping={"email": "email", "custom:tenant": "tenant"},
    )  # fmt: skip
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Portal", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "IDPInit": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO", "Google", "Corp", "Portal"],
    )  # fmt: skip
    return str(client["UserPoolClient"]["ClientId"])


def test_a_disabled_federated_user_is_refused_and_left_unchanged(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    google.user = {**google.user, "sub": "disabled-ext-1", "name": "Ann Before"}
    assert "code" in federated_sign_in(gatehouse, client_id, "Google")
    username = "Google_disabled-ext-1"
    idp.admin_disable_user(UserPoolId=pool_id, Username=username)
    before = user_attributes(idp, pool_id, username)
    google.user = {**google.user, "name": "Mallory After"}
    answer = federated_sign_in(gatehouse, client_id, "Google")
    assert "code" not in answer and answer["error"]
    assert user_attributes(idp, pool_id, username) == before


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
    before = user_attributes(idp, pool_id, "native-ann")
    users_before = usernames(idp, pool_id)
    google.user = {**google.user, "sub": "linked-1"}
    answer = federated_sign_in(gatehouse, client_id, "Google")
    assert "code" not in answer and answer["error"]
    assert user_attributes(idp, pool_id, "native-ann") == before
    assert usernames(idp, pool_id) == users_before


def test_an_immutable_mapped_attribute_is_not_overwritten(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    corp.user = {**corp.user, "sub": "tenant-1", "tenant": "blue"}
    assert "code" in federated_sign_in(gatehouse, client_id, "Corp")
    username = "Corp_tenant-1"
    assert user_attributes(idp, pool_id, username)["custom:tenant"] == "blue"
    # The same value again: nothing to update, the sign-in goes through.
    assert "code" in federated_sign_in(gatehouse, client_id, "Corp")
    corp.user = {**corp.user, "email": "moved@corp.example", "tenant": "red"}
    before = user_attributes(idp, pool_id, username)
    answer = federated_sign_in(gatehouse, client_id, "Corp")
    assert "code" not in answer and answer["error"]
    assert user_attributes(idp, pool_id, username) == before
    assert before["custom:tenant"] == "blue"


def test_an_id_token_authorized_for_another_client_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    users_before = usernames(idp, pool_id)
    corp.user = {"sub": "azp-1", "email": "azp@corp.example", "tenant": "blue", "azp": "another-client"}
    answer = federated_sign_in(gatehouse, client_id, "Corp")
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert usernames(idp, pool_id) == users_before
    # Its own client id as azp is fine.
    corp.user = {**corp.user, "azp": corp.client_id}
    assert "code" in federated_sign_in(gatehouse, client_id, "Corp")


def test_a_changed_upstream_email_does_not_inherit_the_old_verification(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    # Google's mapping here holds email but not email_verified: "by default, mapped email addresses are
    # unverified" (Cognito, "Mapping IdP attributes to profiles and tokens").
    google.user = {**google.user, "sub": "moving-1", "email": "first@gmail.example", "name": "Mo"}
    assert "code" in federated_sign_in(gatehouse, client_id, "Google")
    username = "Google_moving-1"
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username=username, UserAttributes=[{"Name": "email_verified", "Value": "true"}]
    )
    # The same address again keeps the verification it has.
    assert "code" in federated_sign_in(gatehouse, client_id, "Google")
    assert user_attributes(idp, pool_id, username)["email_verified"] == "true"
    google.user = {**google.user, "email": "victim@example.com"}
    assert "code" in federated_sign_in(gatehouse, client_id, "Google")
    after = user_attributes(idp, pool_id, username)
    assert after["email"] == "victim@example.com"
    assert after.get("email_verified", "false") == "false"


def post_unsolicited(gatehouse: GatehouseServer, client_id: str, saml_response: str) -> dict[str, str]:
    """An IdP-initiated Response to the ACS, authorization parameters in RelayState; the client's answer."""
    relay = urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
         "identity_provider": "Portal", "scope": "openid email",
         "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    )  # fmt: skip
    response = requests.post(
        f"{gatehouse.url}/saml2/idpresponse",
        data={"SAMLResponse": saml_response, "RelayState": relay},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 303, response.text
    return query_of(response.headers["Location"])


def test_a_comment_inside_the_name_id_does_not_truncate_it(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """CVE-2017-11427 class: exclusive C14N drops comments, so the signature still verifies over
    ``user@evil.example.com``; a parser reading only the first text node would see ``user@evil.example``."""
    xml = saml_idp.response_xml(None, name_id="user@evil.example.com")
    commented = xml.replace("user@evil.example.com<", "user@evil.example<!---->.com<", 1)
    assert commented != xml
    answer = post_unsolicited(gatehouse, client_id, encode(commented))
    assert "code" in answer, answer
    names = usernames(idp, pool_id)
    assert "Portal_user@evil.example.com" in names and "Portal_user@evil.example" not in names


def test_a_bearer_confirmation_without_not_on_or_after_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """SAML Profiles §4.1.4.2: the bearer SubjectConfirmationData MUST carry NotOnOrAfter (it bounds the
    delivery window, and so how long the assertion id must be remembered against replay)."""
    before = usernames(idp, pool_id)
    xml = saml_idp.response_xml(None, name_id="timeless@corp.example", bearer_lifetime=0, conditions_expiry=False)
    assert "NotOnOrAfter" not in decode(encode(xml))
    answer = post_unsolicited(gatehouse, client_id, encode(xml))
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert usernames(idp, pool_id) == before


def test_an_authorization_response_from_another_issuer_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    """RFC 9207 §2.4 (mix-up defence, RFC 9700 §4.4): an ``iss`` in the authorization response must be the
    issuer the request went to; the code is then never sent to that provider's token endpoint."""
    users_before = usernames(idp, pool_id)
    corp.user = {"sub": "mixup-1", "email": "mixup@corp.example", "tenant": "blue"}
    exchanges = len(corp.token_requests)
    flow = Flow(gatehouse, client_id)
    response = flow.run(
        flow.authorize_url(identity_provider="Corp"), tamper=lambda url: url + "&iss=https%3A%2F%2Fevil.example"
    )
    assert response.status_code == 303, response.text
    answer = query_of(response.headers["Location"])
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert len(corp.token_requests) == exchanges
    assert usernames(idp, pool_id) == users_before
    # The provider's own issuer in the response is fine.
    flow = Flow(gatehouse, client_id)
    own = flow.run(
        flow.authorize_url(identity_provider="Corp"), tamper=lambda url: url + "&" + urlencode({"iss": corp.issuer})
    )
    assert "code" in query_of(own.headers["Location"])


class SlowMetadata(ThreadedApp):
    """A SAML metadata URL that answers only when released (or after a minute)."""

    def build(self) -> web.Application:
        app = web.Application()
        self.released = asyncio.Event()

        async def metadata(request: web.Request) -> web.Response:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), 60)
            return web.Response(text="<late/>")

        app.router.add_get("/metadata", metadata)
        return app

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self.released.set)


def test_a_metadata_url_that_hangs_is_given_up_on(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str
) -> None:
    """An IdP's metadata URL is read with the same bounded time as every other upstream request: a hanging
    one answers the authorization request with an error instead of holding it (and a connection) for minutes."""
    with SlowMetadata() as slow:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Slow", ProviderType="SAML",
            ProviderDetails={"MetadataURL": f"{slow.url}/metadata"},
        )  # fmt: skip
        idp.update_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id, AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email", "profile"], CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=["COGNITO", "Google", "Corp", "Portal", "Slow"],
        )  # fmt: skip
        flow = Flow(gatehouse, client_id)
        started = time.monotonic()
        response = flow.http.get(flow.authorize_url(identity_provider="Slow"), allow_redirects=False, timeout=60)
        took = time.monotonic() - started
        slow.release()
    assert took < 30
    assert response.status_code in (302, 303), response.text
    answer = query_of(response.headers["Location"])
    assert "code" not in answer and answer["error"]


def test_an_idp_initiated_relay_state_cannot_redirect_elsewhere(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """The RelayState of an unsolicited Response is an authorization request like any other: its redirect_uri
    must be one of the client's callback URLs, or the browser gets a page, never a redirect to it."""
    before = usernames(idp, pool_id)
    relay = urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": "https://evil.example/steal",
         "identity_provider": "Portal", "scope": "openid email",
         "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    )  # fmt: skip
    response = requests.post(
        f"{gatehouse.url}/saml2/idpresponse",
        data={"SAMLResponse": saml_idp.response(None, name_id="relay@corp.example"), "RelayState": relay},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 400 and "text/html" in response.headers["Content-Type"]
    assert "evil.example" not in response.headers.get("Location", "")
    assert usernames(idp, pool_id) == before


def test_an_identity_linked_to_a_deleted_user_does_not_follow_its_username(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, google: FakeGoogle
) -> None:
    """Deleting a user drops the links to it: a new user given the same name later does not receive the
    upstream identity once linked to the old one."""
    idp.admin_create_user(UserPoolId=pool_id, Username="reused-name", MessageAction="SUPPRESS")
    idp.admin_link_provider_for_user(
        UserPoolId=pool_id,
        DestinationUser={"ProviderName": "Cognito", "ProviderAttributeValue": "reused-name"},
        SourceUser={
            "ProviderName": "Google", "ProviderAttributeName": "Cognito_Subject",
            "ProviderAttributeValue": "orphan-1",
        },
    )  # fmt: skip
    idp.admin_delete_user(UserPoolId=pool_id, Username="reused-name")
    idp.admin_create_user(UserPoolId=pool_id, Username="reused-name", MessageAction="SUPPRESS")
    google.user = {**google.user, "sub": "orphan-1", "email": "orphan@gmail.example"}
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="Google"))
    code = query_of(response.headers["Location"])["code"]
    assert flow.tokens(code)["id_token"]
    assert "Google_orphan-1" in usernames(idp, pool_id)
    assert "identities" not in user_attributes(idp, pool_id, "reused-name")


class OddTokenEndpoint(FakeOIDC):
    """An OIDC provider whose token endpoint answers as ``mode`` says instead of with tokens."""

    mode = "html500"

    async def token(self, request: web.Request) -> web.Response:
        await request.post()
        if self.mode == "html500":
            return web.Response(status=500, text="<html><body>Internal error</body></html>", content_type="text/html")
        if self.mode == "huge":
            return web.Response(text='{"access_token": "' + "a" * (2 << 20) + '"}', content_type="application/json")
        if self.mode == "list":
            return web.json_response([{"access_token": "x"}])
        if self.mode == "no_access_token":
            return web.json_response({"token_type": "Bearer", "id_token": "x.y.z"})
        if self.mode == "not_a_jwt":
            return web.json_response({"access_token": "x", "token_type": "Bearer", "id_token": {"alg": "none"}})
        return web.json_response({"error": "invalid_grant", "error_description": "<script>x</script>"}, status=400)


@pytest.mark.parametrize("mode", ["html500", "huge", "list", "no_access_token", "not_a_jwt", "error"])
def test_odd_token_endpoint_answers_are_error_redirects(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, mode: str
) -> None:
    with OddTokenEndpoint() as odd:
        odd.mode = mode
        name = f"Odd{mode.replace('_', '')}"[:32]
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName=name, ProviderType="OIDC", ProviderDetails=corp_details(odd),
            AttributeMapping={"email": "email"},
        )  # fmt: skip
        client = idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName=f"odd-{mode}", AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=[name],
        )["UserPoolClient"]  # fmt: skip
        before = usernames(idp, pool_id)
        flow = Flow(gatehouse, client["ClientId"])
        response = flow.run(flow.authorize_url(identity_provider=name, scope="openid email"))
    assert response.status_code == 303, response.text
    answer = query_of(response.headers["Location"])
    assert "code" not in answer and answer["error"] == "invalid_request"
    assert "<script>" not in answer.get("error_description", "")
    assert usernames(idp, pool_id) == before


class RenamingApple(FakeApple):
    """Sign in with Apple whose first-login ``user`` field carries ``first_name``, and which sends it again on
    every sign-in when ``resend`` (as a forged form_post could)."""

    first_name = "Ann"
    resend = False

    def answer(self, redirect_uri: str, values: dict[str, str]) -> web.StreamResponse:
        if self.resend:
            self.first_login_names.discard(self.user["sub"])
        response = super().answer(redirect_uri, values)
        assert isinstance(response, web.Response) and isinstance(response.text, str)
        response.text = response.text.replace("&quot;Ann&quot;", f"&quot;{self.first_name}&quot;")
        return response


@pytest.fixture(scope="module")
def renaming_apple() -> Iterator[RenamingApple]:
    with RenamingApple() as server:
        yield server


def test_apples_unsigned_first_login_name_never_overwrites_a_user(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, renaming_apple: RenamingApple
) -> None:
    """Apple sends the name (an unsigned form field) on the first authorization only; posted again later, with
    whatever value, it must not change the user the first sign-in made."""
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="SignInWithApple", ProviderType="SignInWithApple",
        ProviderDetails=renaming_apple.provider_details(),
        AttributeMapping={"email": "email", "given_name": "given_name"},
    )  # fmt: skip
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="apple-app", AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["SignInWithApple"],
    )["UserPoolClient"]  # fmt: skip

    def apple_sign_in() -> dict[str, str]:
        flow = Flow(gatehouse, client["ClientId"])
        response = flow.run(flow.authorize_url(identity_provider="SignInWithApple", scope="openid email"))
        assert response.status_code == 303, response.text
        return query_of(response.headers["Location"])

    assert "code" in apple_sign_in()
    username = f"SignInWithApple_{renaming_apple.user['sub']}"
    assert user_attributes(idp, pool_id, username)["given_name"] == "Ann"
    renaming_apple.first_name, renaming_apple.resend = "Mallory", True
    renaming_apple.user = {**renaming_apple.user, "email": "new@privaterelay.example"}
    assert "code" in apple_sign_in()
    after = user_attributes(idp, pool_id, username)
    assert after["given_name"] == "Ann"
    # What the signed ID token says still updates the user.
    assert after["email"] == "new@privaterelay.example"


def test_a_profile_answers_only_for_the_identity_it_was_made_for(
    gatehouse: GatehouseServer, idp: Any, corp: FakeOIDC
) -> None:
    """A profile's name ``<Provider>_<subject>`` is not proof of who it belongs to: in a case-insensitive pool
    providers ``Corp`` and ``CORP`` make the same name from one subject, and an administrator can make a user of
    that name. Only the identity the profile was made for (its ``identities``) signs in as it: another is
    refused, and the profile is left as it was."""
    pool = idp.create_user_pool(PoolName="profiles", UsernameConfiguration={"CaseSensitive": False})["UserPool"]["Id"]
    with FakeOIDC() as other:
        for name, upstream in (("Corp", corp), ("CORP", other)):
            idp.create_identity_provider(
                UserPoolId=pool, ProviderName=name, ProviderType="OIDC", ProviderDetails=corp_details(upstream),
                AttributeMapping={"email": "email"},
            )  # fmt: skip
        client = idp.create_user_pool_client(
            UserPoolId=pool, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=["Corp", "CORP"],
        )["UserPoolClient"]["ClientId"]  # fmt: skip
        corp.user = {"sub": "1001", "email": "victim@corp.example", "email_verified": True}
        assert "code" in federated_sign_in(gatehouse, client, "Corp")
        before = user_attributes(idp, pool, "corp_1001")
        other.user = {"sub": "1001", "email": "mallory@evil.example", "email_verified": True}
        refused = federated_sign_in(gatehouse, client, "CORP")
        assert "code" not in refused and refused["error"] == "invalid_request"
        assert user_attributes(idp, pool, "corp_1001") == before
        # A user an administrator named as a profile would be is no profile either.
        idp.admin_create_user(UserPoolId=pool, Username="corp_native-7", MessageAction="SUPPRESS")
        corp.user = {"sub": "native-7", "email": "mallory@evil.example", "email_verified": True}
        refused = federated_sign_in(gatehouse, client, "Corp")
        assert "code" not in refused and refused["error"] == "invalid_request"
        assert "email" not in user_attributes(idp, pool, "corp_native-7")
        # The identity the profile was made for still signs in.
        corp.user = {"sub": "1001", "email": "victim@corp.example", "email_verified": True}
        assert "code" in federated_sign_in(gatehouse, client, "Corp")
    assert usernames(idp, pool) == {"corp_1001", "corp_native-7"}


def test_an_assertion_answering_a_request_is_not_taken_unsolicited(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """An assertion whose signed SubjectConfirmationData answers a request (InResponseTo) belongs to that
    request's sign-in; with the Response's own (unsigned) InResponseTo cut off it is not an unsolicited one."""
    relay = urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "identity_provider": "Portal",
         "scope": "openid email", "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    )  # fmt: skip
    before = usernames(idp, pool_id)

    def post(xml: str) -> requests.Response:
        return requests.post(
            f"{gatehouse.url}/saml2/idpresponse",
            data={"SAMLResponse": encode(xml), "RelayState": relay},
            allow_redirects=False,
            timeout=30,
        )

    stripped = saml_idp.response_xml(
        "_a-request-of-another-browser",
        name_id="answered@corp.example",
        edit=lambda response, assertion: setattr(response, "in_response_to", None),
    )
    # Only the signed assertion's SubjectConfirmationData still names the request.
    assert stripped.count('InResponseTo="_a-request-of-another-browser"') == 1
    refused = post(stripped)
    assert "code=" not in refused.headers.get("Location", ""), refused.text
    assert usernames(idp, pool_id) == before
    # The same IdP's unsolicited assertion (no InResponseTo anywhere) signs in.
    genuine = post(saml_idp.response_xml(None, name_id="unsolicited@corp.example"))
    assert "code=" in genuine.headers.get("Location", ""), genuine.text


def test_a_mapping_may_write_only_what_the_app_client_may(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    """ "If your app client does not have write access to a mapped attribute, Amazon Cognito throws an error when
    it tries to update the attribute" (UserPoolClientType.WriteAttributes): the sign-in is refused and nothing
    is stored; a client that may write every mapped attribute signs the same identity in."""

    def client(writable: list[str]) -> str:
        return str(
            idp.create_user_pool_client(
                UserPoolId=pool_id, ClientName="spa", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
                AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK], SupportedIdentityProviders=["Corp"],
                WriteAttributes=writable,
            )["UserPoolClient"]["ClientId"]
        )  # fmt: skip

    corp.user = {"sub": "writer-1", "email": "writer@corp.example", "email_verified": True, "tenant": "red"}
    before = usernames(idp, pool_id)
    refused = federated_sign_in(gatehouse, client(["email"]), "Corp")  # custom:tenant is mapped too
    assert "code" not in refused and refused["error"] == "invalid_request"
    assert usernames(idp, pool_id) == before
    assert "code" in federated_sign_in(gatehouse, client(["email", "custom:tenant"]), "Corp")
    assert user_attributes(idp, pool_id, "Corp_writer-1")["custom:tenant"] == "red"


def test_many_attribute_values_cannot_stretch_a_regex_group_rule(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """A group rule's regex runs under a time limit (docs/federation.md) -- for the sign-in as a whole, not per
    value: an assertion listing hundreds of values that each make the pattern backtrack does not hold the
    sign-in (nor the server, whose loop runs the rules) for values x limit. It signs in, matching nothing."""
    idp.create_group(UserPoolId=pool_id, GroupName="backtrackers")
    rule = {"claim": "groups", "match": "regex", "value": "^(a|aa)+$", "group": "backtrackers"}
    idp.update_identity_provider(
        UserPoolId=pool_id, ProviderName="Portal", ProviderDetails={"gatehouse_group_rules": json.dumps([rule])}
    )
    relay = urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "identity_provider": "Portal",
         "scope": "openid email", "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    )  # fmt: skip
    values = ["a" * 40 + "b"] * 300
    try:
        started = time.monotonic()
        response = requests.post(
            f"{gatehouse.url}/saml2/idpresponse",
            data={
                "SAMLResponse": saml_idp.response(
                    None, name_id="many@corp.example", attributes={"email": ["many@corp.example"], "groups": values}
                ),
                "RelayState": relay,
            },
            allow_redirects=False,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    finally:
        idp.update_identity_provider(
            UserPoolId=pool_id, ProviderName="Portal", ProviderDetails={"gatehouse_group_rules": "[]"}
        )
    assert "code=" in response.headers.get("Location", ""), response.text
    assert elapsed < 5, elapsed
    groups = idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="Portal_many@corp.example")["Groups"]
    assert "backtrackers" not in [g["GroupName"] for g in groups]


_SIGNATURE = re.compile(r"<([\w.-]+):Signature\b.*?</\1:Signature>", re.DOTALL)


def _wrapped(saml_idp: FakeSamlIdP, shape: str) -> str:
    """A genuine Response of xsw@corp.example rearranged (signature wrapping) so that an unsigned assertion of
    boss@corp.example is what a careless reader would take, while the signed original still verifies."""
    xml = saml_idp.response_xml(None, name_id="xsw@corp.example", sign_response=shape == "response-signed")
    genuine = re.search(r"<([\w.-]+):Assertion .*</\1:Assertion>", xml, re.DOTALL)
    protocol = re.search(r"<([\w.-]+):Response\b", xml)
    assert genuine and protocol
    original, ns = genuine.group(0), protocol.group(1)
    signature = _SIGNATURE.search(original)
    assert signature
    original_id = re.search(r' ID="([^"]+)"', original)
    assert original_id
    forged = _SIGNATURE.sub("", original).replace("xsw@corp.example", "boss@corp.example")
    if shape == "none":
        return xml

    def after_issuer(document: str, extra: str) -> str:  # the Response's Issuer, where Extensions may follow
        return re.sub(r"(</[\w.-]+:Issuer>)", lambda m: m.group(1) + extra, document, count=1)

    if shape == "original-in-extensions":
        evil = xml.replace(original, forged.replace(original_id.group(1), "_forged"))
        return after_issuer(evil, f"<{ns}:Extensions>{original}</{ns}:Extensions>")
    if shape == "duplicate-id":  # the forgery keeps the original's ID and a copy of its signature
        copied = original.replace("xsw@corp.example", "boss@corp.example")
        return after_issuer(xml.replace(original, copied), f"<{ns}:Extensions>{original}</{ns}:Extensions>")
    if shape == "original-in-signature-object":
        ds = re.match(r"<([\w.-]+):", signature.group(0))
        assert ds
        holder = signature.group(0).replace(
            f"</{ds.group(1)}:Signature>",
            f"<{ds.group(1)}:Object>{original}</{ds.group(1)}:Object></{ds.group(1)}:Signature>",
        )
        return xml.replace(original, original.replace(signature.group(0), holder).replace(
            "xsw@corp.example</", "boss@corp.example</", 1
        ))  # fmt: skip
    assert shape == "response-signed"  # a signed Response whose signed assertion is swapped for an unsigned one
    return xml.replace(original, forged)


@pytest.mark.parametrize(
    "shape", ["original-in-extensions", "duplicate-id", "original-in-signature-object", "response-signed"]
)
def test_signature_wrapping_signs_no_one_in(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP, shape: str
) -> None:
    """XML signature wrapping through the ACS: the signed assertion hidden in Extensions or in its own
    signature's Object, a forgery sharing its ID, a signed Response with its assertion swapped -- refused, and
    neither the forged user nor the genuine one is made."""
    before = usernames(idp, pool_id)
    wrapped = _wrapped(saml_idp, shape)
    ElementTree.fromstring(wrapped)  # well-formed: refused for what it says, not for how it is written
    answer = post_unsolicited(gatehouse, client_id, encode(wrapped))
    assert "code" not in answer and answer["error"] == "invalid_request", answer
    assert usernames(idp, pool_id) == before
    # The same Response left as the IdP signed it signs its own user in.
    assert "code" in post_unsolicited(gatehouse, client_id, encode(_wrapped(saml_idp, "none")))
    assert usernames(idp, pool_id) - before == {"Portal_xsw@corp.example"} - before
