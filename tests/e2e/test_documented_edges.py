"""Documented behaviours, each checked against a real server as a Cognito client or a browser meets it.

- ``identities`` (the federated identities the ID token's claim is made of) is written by federation alone:
  AdminUpdateUserAttributes, AdminDeleteUserAttributes and AdminCreateUser refuse it as Cognito does ("Cannot
  modify the non-mutable attribute identities"), and AdminLinkProviderForUser still sets it.
- RevokeToken names an unknown ClientId: UnauthorizedException "Invalid client or secret" (RevokeToken's errors
  in the service model have no ResourceNotFoundException), and a token of another client is refused.
- ResendConfirmationCode of a disabled user sends nothing: "User is disabled.", or under
  PreventUserExistenceErrors the simulated delivery an unknown user gets.
- SetUICustomization needs a domain: "There has to be an existing domain associated with this user pool".
- DeleteIdentityProvider takes the provider out of the clients that listed it; the hosted sign-in page and
  ``/oauth2/authorize`` then neither offer nor reach it.
- userInfo answers a token without the ``openid`` scope as Cognito documents its refusals: 401 invalid_token.
- Every answer names the server ``Gatehouse``, without the Python and aiohttp versions.
- The hosted page's logo says whose it is (``alt``).
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, Browser, pkce_pair
from tests.support import GatehouseServer, MailServer, user_attributes

PASSWORD = "Documented-Pass1"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
GOOGLE = {
    "client_id": "123.apps.googleusercontent.com",
    "client_secret": "g-secret",
    "authorize_scopes": "email profile openid",
}
OAUTH = {
    "AllowedOAuthFlowsUserPoolClient": True,
    "AllowedOAuthFlows": ["code"],
    "AllowedOAuthScopes": ["openid", "email"],
    "CallbackURLs": [CALLBACK],
}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def new_user(idp: Any, pool_id: str, username: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def sign_in(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    return dict(
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )["AuthenticationResult"]
    )  # fmt: skip


def authorize_url(browser: Browser, client_id: str, **params: str) -> str:
    """An authorization request of a public client (PKCE, as Gatehouse requires of one)."""
    _, challenge = pkce_pair()
    return browser.authorize_url(
        client_id, scope="openid", code_challenge=challenge, code_challenge_method="S256", **params
    )


def png() -> bytes:
    """A 1x1 PNG (boto3 sends SetUICustomization's ImageFile in base64)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    raw += chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
    return raw


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="documented")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    created = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return str(created["UserPoolClient"]["ClientId"])


# --- identities: federation's alone ----------------------------------------------------------------------------


def test_an_administrator_cannot_write_identities(idp: Any, pool_id: str) -> None:
    """Cognito refuses a write of ``identities`` from anyone ("Cannot modify the non-mutable attribute
    identities"): the attribute is the ID token's ``identities`` claim, which applications read as proof that
    the user signed in through an IdP. Gatehouse refused a user's own write but let AdminUpdateUserAttributes,
    AdminDeleteUserAttributes and AdminCreateUser forge or erase it; now all three are refused and change nothing."""
    new_user(idp, pool_id, "ida")
    forged = json.dumps(
        [{"userId": "1", "providerName": "Google", "providerType": "Google", "primary": "true", "dateCreated": "1"}]
    )
    message = ("InvalidParameterException", "Cannot modify the non-mutable attribute identities")
    with pytest.raises(ClientError) as exc:
        idp.admin_update_user_attributes(
            UserPoolId=pool_id, Username="ida", UserAttributes=[{"Name": "identities", "Value": forged}]
        )
    assert error_of(exc) == message
    assert "identities" not in user_attributes(idp, pool_id, "ida")
    with pytest.raises(ClientError) as exc:
        idp.admin_create_user(
            UserPoolId=pool_id, Username="ivo", MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "identities", "Value": forged}],
        )  # fmt: skip
    assert error_of(exc) == message
    with pytest.raises(ClientError) as exc:
        idp.admin_get_user(UserPoolId=pool_id, Username="ivo")
    assert error_of(exc)[0] == "UserNotFoundException"

    # Federation still writes it (AdminLinkProviderForUser), and an administrator cannot erase it either.
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Google", ProviderType="Google", ProviderDetails=GOOGLE,
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    idp.admin_link_provider_for_user(
        UserPoolId=pool_id,
        DestinationUser={"ProviderName": "Cognito", "ProviderAttributeValue": "ida"},
        SourceUser={
            "ProviderName": "Google",
            "ProviderAttributeName": "Cognito_Subject",
            "ProviderAttributeValue": "g-1",
        },
    )
    linked = json.loads(user_attributes(idp, pool_id, "ida")["identities"])
    assert [(e["providerName"], e["userId"]) for e in linked] == [("Google", "g-1")]
    for attempt in (
        lambda: idp.admin_delete_user_attributes(UserPoolId=pool_id, Username="ida", UserAttributeNames=["identities"]),
        lambda: idp.admin_update_user_attributes(
            UserPoolId=pool_id, Username="ida", UserAttributes=[{"Name": "identities", "Value": ""}]
        ),
    ):
        with pytest.raises(ClientError) as exc:
            attempt()
        assert error_of(exc) == message
    assert json.loads(user_attributes(idp, pool_id, "ida")["identities"]) == linked
    # Other attributes are written as before.
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username="ida", UserAttributes=[{"Name": "name", "Value": "Ida"}]
    )
    assert user_attributes(idp, pool_id, "ida")["name"] == "Ida"


# --- RevokeToken -------------------------------------------------------------------------------------------------


def test_revoke_token_with_an_unknown_client_is_unauthorized(
    idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    """RevokeToken's errors (the service model) are UnauthorizedException, InvalidParameterException,
    UnsupportedOperationException, UnsupportedTokenTypeException ... and no ResourceNotFoundException: Cognito
    answers a bad client credential "Invalid client or secret" (UnauthorizedException). An unknown ClientId is one,
    and answering it like a wrong secret tells no caller which client IDs exist. Gatehouse answered
    ResourceNotFoundException "User pool client ... does not exist."."""
    new_user(idp, pool_id, "rex")
    refresh = sign_in(public_idp, client_id, "rex")["RefreshToken"]
    with pytest.raises(ClientError) as exc:
        public_idp.revoke_token(Token=refresh, ClientId="unknownclient0000000000000")
    assert error_of(exc) == ("UnauthorizedException", "Invalid client or secret")

    # A token of another client (of the same pool) is refused, and stays good.
    other = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=FLOWS)
    with pytest.raises(ClientError) as exc:
        public_idp.revoke_token(Token=refresh, ClientId=other["UserPoolClient"]["ClientId"])
    assert error_of(exc)[0] == "UnauthorizedException"
    refreshed = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": refresh}
    )
    assert refreshed["AuthenticationResult"]["AccessToken"]
    public_idp.revoke_token(Token=refresh, ClientId=client_id)  # its own client revokes it


# --- ResendConfirmationCode of a disabled user -------------------------------------------------------------------


@pytest.mark.parametrize("prevent", ["LEGACY", "ENABLED"])
def test_a_disabled_user_is_sent_no_confirmation_code(
    idp: Any, public_idp: Any, mail: MailServer, prevent: str
) -> None:
    """A user an administrator disabled (AdminDisableUser) before they confirmed their sign-up got a fresh code on
    every ResendConfirmationCode. Now nothing is sent: "User is disabled." (NotAuthorizedException, Cognito's
    answer to a disabled user, as ForgotPassword gives it), or under PreventUserExistenceErrors the simulated
    delivery an unknown name gets, so the answer tells nothing about the account."""
    pool = idp.create_user_pool(PoolName=f"resend-{prevent}", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="app", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors=prevent
    )["UserPoolClient"]["ClientId"]
    address = f"dora-{prevent.lower()}@example.com"
    public_idp.sign_up(
        ClientId=client, Username="dora", Password=PASSWORD, UserAttributes=[{"Name": "email", "Value": address}]
    )
    mail.wait_for(address)
    idp.admin_disable_user(UserPoolId=pool, Username="dora")
    if prevent == "LEGACY":
        with pytest.raises(ClientError) as exc:
            public_idp.resend_confirmation_code(ClientId=client, Username="dora")
        assert error_of(exc) == ("NotAuthorizedException", "User is disabled.")
    else:
        answer = public_idp.resend_confirmation_code(ClientId=client, Username="dora")["CodeDeliveryDetails"]
        unknown = public_idp.resend_confirmation_code(ClientId=client, Username="nobody")["CodeDeliveryDetails"]
        assert answer["DeliveryMedium"] == unknown["DeliveryMedium"] == "EMAIL"
        assert answer["AttributeName"] == unknown["AttributeName"] == "email"
    time.sleep(1.0)  # a code sent in the background would have arrived by now
    assert len(mail.messages_to(address)) == 1
    # Enabled again, the user gets a code as before.
    idp.admin_enable_user(UserPoolId=pool, Username="dora")
    delivery = public_idp.resend_confirmation_code(ClientId=client, Username="dora")["CodeDeliveryDetails"]
    assert delivery["DeliveryMedium"] == "EMAIL"
    mail.wait_for(address, count=2)


# --- SetUICustomization needs a domain ---------------------------------------------------------------------------


def test_ui_customization_needs_a_domain(idp: Any) -> None:
    """SetUICustomization: "Your user pool must have a domain"; without one Cognito answers InvalidParameterException
    "There has to be an existing domain associated with this user pool". Gatehouse stored the customization.
    GetUICustomization still answers the pool's (empty) customization."""
    pool = idp.create_user_pool(PoolName="ui-no-domain")["UserPool"]["Id"]
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="app")["UserPoolClient"]["ClientId"]
    css = ".banner-customizable { padding: 2px; }"
    for scope in ({}, {"ClientId": client}):
        with pytest.raises(ClientError) as exc:
            idp.set_ui_customization(UserPoolId=pool, CSS=css, **scope)
        assert error_of(exc) == (
            "InvalidParameterException",
            "There has to be an existing domain associated with this user pool",
        )
        answer = idp.get_ui_customization(UserPoolId=pool, **scope)["UICustomization"]
        assert "CSS" not in answer and "CSSVersion" not in answer
    idp.create_user_pool_domain(UserPoolId=pool, Domain="documented-ui")
    assert idp.set_ui_customization(UserPoolId=pool, CSS=css)["UICustomization"]["CSS"] == css
    assert idp.get_ui_customization(UserPoolId=pool, ClientId=client)["UICustomization"]["CSS"] == css


# --- DeleteIdentityProvider and the clients that list it ---------------------------------------------------------


def test_a_deleted_provider_leaves_its_clients_and_the_sign_in_page(gatehouse: GatehouseServer, idp: Any) -> None:
    """DeleteIdentityProvider: "After you delete an IdP, users can no longer sign in to your user pool through that
    IdP". Gatehouse left the name in the clients' SupportedIdentityProviders: the hosted sign-in page still offered
    "Sign in with Google", DescribeUserPoolClient still listed it, and an UpdateUserPoolClient sending the described
    settings back (as infrastructure tools do) was refused for naming a provider that does not exist. Now the name
    leaves every client with it; the page offers only what is left, and ``/oauth2/authorize`` never sends a browser to
    the deleted provider."""
    pool = idp.create_user_pool(PoolName="idp-delete")["UserPool"]["Id"]
    idp.create_identity_provider(
        UserPoolId=pool, ProviderName="Google", ProviderType="Google", ProviderDetails=GOOGLE,
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    both = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="both", SupportedIdentityProviders=["COGNITO", "Google"], **OAUTH
    )["UserPoolClient"]["ClientId"]
    only = idp.create_user_pool_client(
        UserPoolId=pool, ClientName="only", SupportedIdentityProviders=["Google"], **OAUTH
    )["UserPoolClient"]["ClientId"]
    browser = Browser(gatehouse.url)
    page = browser.follow(browser.get(authorize_url(browser, both)))
    assert page.status_code == 200 and "Sign in with Google" in page.text
    leaving = browser.get(authorize_url(browser, both, identity_provider="Google"))
    assert leaving.status_code == 302 and leaving.headers["Location"].startswith("https://accounts.google.com/")

    idp.delete_identity_provider(UserPoolId=pool, ProviderName="Google")

    described = idp.describe_user_pool_client(UserPoolId=pool, ClientId=both)["UserPoolClient"]
    assert described["SupportedIdentityProviders"] == ["COGNITO"]
    only_described = idp.describe_user_pool_client(UserPoolId=pool, ClientId=only)["UserPoolClient"]
    assert only_described["SupportedIdentityProviders"] == []
    # The described settings go back unchanged.
    idp.update_user_pool_client(
        UserPoolId=pool, ClientId=both, ClientName="both",
        SupportedIdentityProviders=described["SupportedIdentityProviders"], **OAUTH,
    )  # fmt: skip
    page = browser.follow(browser.get(authorize_url(browser, both)))
    assert page.status_code == 200 and "Sign in" in page.text and "Google" not in page.text
    for client in (both, only):
        refused = browser.get(authorize_url(browser, client, identity_provider="Google"))
        # An error sent back to the registered callback (RFC 6749 §4.1.2.1), never a redirect to the IdP.
        assert refused.status_code == 302, refused.text
        assert refused.headers["Location"].startswith(CALLBACK + "?error=invalid_request&"), refused.headers
    # A client left with no way in says so, instead of a page with a dead button.
    page = browser.follow(browser.get(authorize_url(browser, only)))
    assert page.status_code == 400 and "Google" not in page.text
    assert "does not allow signing in with a username and password" in page.text


# --- userInfo without the openid scope ---------------------------------------------------------------------------


def test_userinfo_refuses_a_token_without_openid_as_an_invalid_token(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    """Cognito's userInfo endpoint: "The openid scope must be one of the access token claims"; access tokens of
    the user pools API (InitiateAuth) "don't contain any scopes", so "the userInfo endpoint doesn't accept these
    access tokens". Its documented refusals are 400 invalid_request and 401 invalid_token (with a WWW-Authenticate
    header naming the error); Gatehouse answered 403 insufficient_scope, which no Cognito client expects."""
    new_user(idp, pool_id, "uma")
    token = sign_in(public_idp, client_id, "uma")["AccessToken"]
    answer = requests.get(
        f"{gatehouse.url}/{pool_id}/oauth2/userInfo", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_token"
    assert answer.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


# --- the Server header -------------------------------------------------------------------------------------------


def test_every_answer_names_the_server_without_versions(gatehouse: GatehouseServer, pool_id: str) -> None:
    """aiohttp's default ``Server: Python/3.x aiohttp/3.x`` told a scanner which published flaws to try (RFC 9110
    §10.2.4: no "needlessly fine-grained detail"). Every answer of the application now says ``Gatehouse``: its
    routes, a 404 and a 405, the AWS wires' errors, the OAuth endpoints' and the hosted pages' errors."""
    url = gatehouse.url
    answers = [
        requests.get(f"{url}/health", timeout=10),
        requests.get(f"{url}/no/such/page", timeout=10),
        requests.put(f"{url}/health", timeout=10),
        requests.get(f"{url}/{pool_id}/.well-known/jwks.json", timeout=10),
        requests.post(
            url,
            data=b"{}",
            timeout=10,
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "AWSCognitoIdentityProviderService.Nope",
            },
        ),
        requests.post(f"{url}/oauth2/token", data={"grant_type": "nope"}, timeout=10),
        requests.get(f"{url}/oauth2/authorize?client_id=nope", timeout=10, allow_redirects=False),
    ]
    for answer in answers:
        assert answer.headers["Server"] == "Gatehouse", (answer.request.method, answer.url, answer.status_code)


# --- the logo's text alternative ---------------------------------------------------------------------------------


def test_the_logo_names_the_application_it_stands_for(gatehouse: GatehouseServer, idp: Any) -> None:
    """The hosted page's logo is the one thing on it that names the application (no text does): an empty ``alt``
    made it decorative, and a screen reader user never learned whose sign-in page it was (WCAG 1.1.1). The alt is
    the app client's name and "logo"."""
    pool = idp.create_user_pool(PoolName="logo-alt")["UserPool"]["Id"]
    idp.create_user_pool_domain(UserPoolId=pool, Domain="documented-logo")
    client = idp.create_user_pool_client(UserPoolId=pool, ClientName="Acme Portal", **OAUTH)["UserPoolClient"][
        "ClientId"
    ]
    idp.set_ui_customization(UserPoolId=pool, ClientId=client, ImageFile=png())
    browser = Browser(gatehouse.url)
    page = browser.follow(browser.get(authorize_url(browser, client)))
    assert page.status_code == 200, page.text
    assert 'alt="Acme Portal logo"' in page.text, page.text
