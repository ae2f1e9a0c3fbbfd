"""The AWS SDK for JavaScript in a web page: amazon-cognito-identity-js, loaded by a page of another origin in
Debian's Chromium, signs in with SRP, reads the user and refreshes against Gatehouse, as a single-page app does
against Cognito. The browser enforces CORS (the Fetch standard): every call is cross-origin, every call with
``X-Amz-Target`` needs a preflight, and an error the SDK cannot read (no ``Access-Control-Allow-Origin`` on
it) would reach the app as a network failure instead of its ``__type``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.e2e.mfa_support import cognito_js_modules
from tests.support import GatehouseServer, free_port

PASSWORD = "Browser-Pass-1!"

PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>app</title>
<script src="/sdk.js"></script></head><body>app</body></html>"""

# Runs in the page: the SDK's own calls, each answered to the test as plain data.
SIGN_IN = """async ({endpoint, poolId, clientId, username, password}) => {
  const sdk = window.AmazonCognitoIdentity;
  const pool = new sdk.CognitoUserPool({UserPoolId: poolId, ClientId: clientId, endpoint});
  const user = new sdk.CognitoUser({Username: username, Pool: pool});
  const details = new sdk.AuthenticationDetails({Username: username, Password: password});
  const signIn = () => new Promise((resolve) => user.authenticateUser(details, {
    onSuccess: (session) => resolve({ok: true, session}),
    onFailure: (err) => resolve({ok: false, code: err.code || null, message: String(err.message)}),
  }));
  const first = await signIn();
  if (!first.ok) return {signIn: first};
  const attributes = await new Promise((resolve) => user.getUserAttributes((err, list) =>
    resolve(err ? {error: err.code || String(err)} : {list: list.map((a) => [a.getName(), a.getValue()])})));
  const refreshed = await new Promise((resolve) => user.refreshSession(first.session.getRefreshToken(),
    (err, session) => resolve(err ? {error: err.code || String(err)}
                                  : {access: session.getAccessToken().getJwtToken()})));
  const wrong = new sdk.CognitoUser({Username: username, Pool: pool});
  const refused = await new Promise((resolve) => wrong.authenticateUser(
    new sdk.AuthenticationDetails({Username: username, Password: password + "x"}),
    {onSuccess: () => resolve({ok: true}), onFailure: (err) => resolve({ok: false, code: err.code || null})}));
  return {
    signIn: {ok: true, access: first.session.getAccessToken().getJwtToken()},
    attributes, refreshed, refused,
  };
}"""


class _AppOrigin:
    """A second origin on loopback serving the app's page and the SDK's browser bundle."""

    def __init__(self, sdk: bytes) -> None:
        page, bundle = PAGE, sdk

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body, kind = (bundle, "text/javascript") if self.path == "/sdk.js" else (page, "text/html")
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _AppOrigin:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def app_origin() -> Iterator[_AppOrigin]:
    bundle = cognito_js_modules() / "amazon-cognito-identity-js" / "dist" / "amazon-cognito-identity.min.js"
    with _AppOrigin(bundle.read_bytes()) as origin:
        yield origin


@pytest.fixture(scope="module")
def pool(idp: Any) -> dict[str, str]:
    pool_id = idp.create_user_pool(PoolName="browser-sdk")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="spa",
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username="ana",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "ana@example.com"}, {"Name": "email_verified", "Value": "true"}],
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username="ana", Password=PASSWORD, Permanent=True)
    return {"pool_id": pool_id, "client_id": client_id}


def test_the_sdk_in_a_page_of_another_origin_signs_in_reads_the_user_and_refreshes(
    gatehouse: GatehouseServer, pool: dict[str, str], app_origin: _AppOrigin, browser: Any
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(app_origin.url + "/")
        assert page.evaluate("typeof window.AmazonCognitoIdentity") == "object"
        result = page.evaluate(
            SIGN_IN,
            {
                "endpoint": gatehouse.url + "/",
                "poolId": pool["pool_id"],
                "clientId": pool["client_id"],
                "username": "ana",
                "password": PASSWORD,
            },
        )
    finally:
        context.close()
    assert result["signIn"]["ok"], result
    assert ["email", "ana@example.com"] in result["attributes"]["list"], result["attributes"]
    assert result["refreshed"]["access"].count(".") == 2, result["refreshed"]
    # The refusal's type reached the app: the error answer is readable cross-origin too.
    assert result["refused"] == {"ok": False, "code": "NotAuthorizedException"}


def test_the_preflight_allows_what_the_sdks_send_and_every_answer_allows_any_origin(
    gatehouse: GatehouseServer, pool: dict[str, str]
) -> None:
    asked = "content-type,x-amz-target,x-amz-user-agent,amz-sdk-invocation-id,amz-sdk-request"
    preflight = requests.options(
        gatehouse.url + "/",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert set(asked.split(",")) <= {h.strip() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    # The user pool wire, the identity pool wire (errors included) and the query protocol (STS) alike.
    calls = [
        ("AWSCognitoIdentityProviderService.GetUser", {"AccessToken": "x"}),
        ("AWSCognitoIdentityService.GetId", {"IdentityPoolId": "us-east-1:00000000-0000-0000-0000-000000000000"}),
    ]
    for target, body in calls:
        answer = requests.post(
            gatehouse.url + "/",
            data=json.dumps(body),
            headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1", "Origin": "https://a.b"},
            timeout=10,
        )
        assert answer.status_code == 400 and answer.headers["Access-Control-Allow-Origin"] == "*", target
        exposed = {h.strip().lower() for h in answer.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"x-amzn-requestid", "x-amzn-errortype"} <= exposed
    sts = requests.post(
        gatehouse.url + "/",
        data={"Action": "GetCallerIdentity", "Version": "2011-06-15"},
        headers={"Origin": "https://a.b"},
        timeout=10,
    )
    assert sts.status_code in (400, 403) and sts.headers["Access-Control-Allow-Origin"] == "*"
