"""``/oauth2/revoke`` of an access token that a token exchange issued (RFC 8693 over RFC 7009).

An exchanged token keeps the family of the subject token it came from, a family of another client's
sign-in. RFC 7009 §2.1 lets a client revoke only tokens issued to it: the exchanging client's revocation of
its own exchanged token is answered 200 and never revokes the user's tokens of the other client (its refresh
token goes on working); the client that the family belongs to still revokes it with its own access token."""

from __future__ import annotations

from typing import Any

import requests

from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, query_of
from tests.support import GatehouseServer

ACCESS_URN = "urn:ietf:params:oauth:token-type:access_token"
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"


def _clients(idp: Any) -> tuple[str, tuple[str, str], tuple[str, str]]:
    """A pool with alice, the user's app (code flow) and a service that exchanges her tokens."""
    pool_id = str(idp.create_user_pool(PoolName="revoke-exchanged")["UserPool"]["Id"])
    code_flow = {
        "AllowedOAuthFlowsUserPoolClient": True, "AllowedOAuthFlows": ["code"], "CallbackURLs": [CALLBACK],
        "SupportedIdentityProviders": ["COGNITO"], "AllowedOAuthScopes": ["openid", "email"], "GenerateSecret": True,
    }  # fmt: skip
    web = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="web", **code_flow)["UserPoolClient"]
    flows = ["ALLOW_TOKEN_EXCHANGE_IMPERSONATION"]
    exchanger = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="exchanger", ExplicitAuthFlows=flows, **code_flow
    )["UserPoolClient"]
    idp.admin_create_user(
        UserPoolId=pool_id, Username="alice", MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "alice@example.com"}, {"Name": "email_verified", "Value": "true"}],
    )  # fmt: skip
    idp.admin_set_user_password(UserPoolId=pool_id, Username="alice", Password=PASSWORD, Permanent=True)
    return (
        pool_id,
        (web["ClientId"], web["ClientSecret"]),
        (exchanger["ClientId"], exchanger["ClientSecret"]),
    )


def _post(gatehouse: GatehouseServer, path: str, auth: tuple[str, str], **form: str) -> requests.Response:
    return requests.post(f"{gatehouse.url}{path}", data=form, auth=auth, timeout=10)


def test_revoking_an_exchanged_token_leaves_the_other_clients_tokens(gatehouse: GatehouseServer, idp: Any) -> None:
    _, web, exchanger = _clients(idp)
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(web[0], scope="openid email"), "alice")
    code = query_of(back.headers["Location"])["code"]
    tokens = _post(
        gatehouse, "/oauth2/token", web, grant_type="authorization_code", code=code, redirect_uri=CALLBACK
    ).json()
    exchanged = _post(
        gatehouse, "/oauth2/token", exchanger,
        grant_type=GRANT, subject_token=tokens["access_token"], subject_token_type=ACCESS_URN,
    )  # fmt: skip
    assert exchanged.status_code == 200, exchanged.text
    revoked = _post(gatehouse, "/oauth2/revoke", exchanger, token=exchanged.json()["access_token"])
    assert revoked.status_code == 200, revoked.text
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = _post(gatehouse, "/oauth2/token", web, **refresh)
    assert refreshed.status_code == 200, refreshed.text
    # The web app's own access token still revokes its family.
    assert _post(gatehouse, "/oauth2/revoke", web, token=tokens["access_token"]).status_code == 200
    refused = _post(gatehouse, "/oauth2/token", web, **refresh)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
