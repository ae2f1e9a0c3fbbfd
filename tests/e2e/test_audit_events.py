"""The audit trail ties each HTTP request's events together: every event logged while Gatehouse serves an
/oauth2/*, hosted-UI, federation or /gatehouse/verify request carries that request's ``request_id``, which the
response names in ``x-amz-cognito-request-id`` (the AWS wires keep theirs in ``x-amzn-RequestId``), and every
event names the logger that wrote it (``logger``).

A support engineer given the id a browser saw finds exactly that request's events, and no other request's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode, urljoin

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.e2e.aws_support import ACCOUNT
from tests.e2e.federation_support import corp_details
from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, OAuthPool, make_pool, make_user, pkce_pair, query_of
from tests.fakes.oauth import FakeOIDC
from tests.support import GatehouseServer

HEADER = "x-amz-cognito-request-id"
REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
Event = dict[str, Any]


def parse(log: str) -> list[Event]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


class Watch:
    """Sends one request and returns the response with the events the server logged while serving it."""

    def __init__(self, server: GatehouseServer) -> None:
        self.server = server
        self.seen: list[str] = []  # every request id a response named, in order

    def __call__(self, send: Callable[[], requests.Response]) -> tuple[requests.Response, list[Event]]:
        start = len(self.server.log_text())
        response = send()
        logged = parse(self.server.log_text()[start:])
        if HEADER in response.headers:
            self.seen.append(response.headers[HEADER])
        return response, logged


def one_request(response: requests.Response, logged: list[Event], *expected: str) -> str:
    """Every event logged for ``response`` carries the id its header names and a logger; the expected events
    are among them. The id."""
    request_id = response.headers.get(HEADER, "")
    assert REQUEST_ID.fullmatch(request_id), dict(response.headers)
    names = [event["event"] for event in logged]
    assert set(expected) <= set(names), names
    assert [e for e in logged if e.get("request_id") != request_id] == [], request_id
    assert [e for e in logged if not str(e.get("logger", "")).startswith("gateway.")] == []
    assert all("operation" not in e for e in logged)  # only the AWS wires name an operation
    return request_id


@pytest.fixture(scope="module")
def watch(gatehouse: GatehouseServer) -> Watch:
    return Watch(gatehouse)


@pytest.fixture(scope="module")
def pool(idp: Any, gatehouse: GatehouseServer) -> OAuthPool:
    pool = make_pool(idp, gatehouse.url, "audited")
    make_user(idp, pool.pool_id, "ann")
    return pool


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        server.user = {"sub": "emp-5", "email": "emp5@corp.example", "email_verified": True}
        yield server


@pytest.fixture(scope="module")
def federated_client(idp: Any, pool: OAuthPool, corp: FakeOIDC) -> str:
    idp.create_identity_provider(
        UserPoolId=pool.pool_id, ProviderName="Corp", ProviderType="OIDC",
        ProviderDetails=corp_details(corp), AttributeMapping={"email": "email"},
    )  # fmt: skip
    client: str = idp.create_user_pool_client(
        UserPoolId=pool.pool_id, ClientName="federated", AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["Corp"],
    )["UserPoolClient"]["ClientId"]  # fmt: skip
    return client


def login_page(browser: Browser, watch: Watch, pool: OAuthPool) -> tuple[requests.Response, str]:
    """The authorize step and the hosted login page, each its own request with its own id."""
    url = browser.authorize_url(pool.secret_id, scope="openid email", state="s-1")
    redirect, logged = watch(lambda: browser.get(url))
    assert redirect.status_code in (302, 303), redirect.text
    authorize_id = one_request(redirect, logged)
    page, logged = watch(lambda: browser.get(redirect.headers["Location"]))
    assert page.status_code == 200 and "Sign in" in page.text
    assert one_request(page, logged) != authorize_id
    return page, authorize_id


# --- the hosted sign-in and the code exchange -------------------------------------------------------------------


def test_hosted_sign_in_and_code_exchange_each_name_their_request(
    gatehouse: GatehouseServer, watch: Watch, pool: OAuthPool
) -> None:
    browser = Browser(gatehouse.url)
    page, _ = login_page(browser, watch, pool)
    signed_in, logged = watch(lambda: browser.submit(page, {"username": "ann", "password": PASSWORD}))
    assert signed_in.status_code in (302, 303) and signed_in.headers["Location"].startswith(CALLBACK)
    sign_in_id = one_request(signed_in, logged, "hosted_ui.signed_in", "oauth.code_issued")
    by_logger = {e["event"]: e["logger"] for e in logged}
    assert by_logger["hosted_ui.signed_in"] == "gateway.ui" and by_logger["oauth.code_issued"] == "gateway.oauth"

    code = query_of(signed_in.headers["Location"])["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    auth = (pool.secret_id, pool.secret)
    tokens, logged = watch(lambda: requests.post(f"{gatehouse.url}/oauth2/token", data=form, auth=auth, timeout=10))
    assert tokens.status_code == 200 and "access_token" in tokens.json()
    exchange_id = one_request(tokens, logged, "oauth.code_redeemed")
    assert exchange_id != sign_in_id

    # Hostile: the same code again. Refused, and the refusal is its own request's, with its own id.
    replay, logged = watch(lambda: requests.post(f"{gatehouse.url}/oauth2/token", data=form, auth=auth, timeout=10))
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert one_request(replay, logged, "oauth.code_replayed") not in (exchange_id, sign_in_id)


def test_token_endpoint_client_refusals_and_refreshes_are_audited(
    gatehouse: GatehouseServer, watch: Watch, pool: OAuthPool
) -> None:
    """A wrong client secret at /oauth2/token is an authentication decision like a wrong password: logged (the
    client named, never the secret); so are a refresh and its refusal."""
    browser = Browser(gatehouse.url)
    page, _ = login_page(browser, watch, pool)
    code = query_of(browser.submit(page, {"username": "ann", "password": PASSWORD}).headers["Location"])["code"]
    token_url = f"{gatehouse.url}/oauth2/token"
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    refresh_token = requests.post(token_url, data=form, auth=(pool.secret_id, pool.secret), timeout=10).json()[
        "refresh_token"
    ]
    guess = "Guessed-secret-value-0123456789"
    refresh = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    refused, logged = watch(lambda: requests.post(token_url, data=refresh, auth=(pool.secret_id, guess), timeout=10))
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    one_request(refused, logged, "oauth.client_refused")
    (event,) = [e for e in logged if e["event"] == "oauth.client_refused"]
    assert (event["client"], event["grant_type"]) == (pool.secret_id, "refresh_token")
    assert guess not in json.dumps(logged) and refresh_token not in json.dumps(logged)

    refreshed, logged = watch(
        lambda: requests.post(token_url, data=refresh, auth=(pool.secret_id, pool.secret), timeout=10)
    )
    assert refreshed.status_code == 200
    one_request(refreshed, logged, "oauth.refreshed")
    garbage = {"grant_type": "refresh_token", "refresh_token": "not-a-refresh-token"}
    bad, logged = watch(lambda: requests.post(token_url, data=garbage, auth=(pool.secret_id, pool.secret), timeout=10))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    one_request(bad, logged, "oauth.refresh_refused")


def test_failed_hosted_sign_in_is_logged_under_its_request(
    gatehouse: GatehouseServer, watch: Watch, pool: OAuthPool
) -> None:
    browser = Browser(gatehouse.url)
    page, _ = login_page(browser, watch, pool)
    refused, logged = watch(lambda: browser.submit(page, {"username": "ann", "password": "Wrong-Horse-1"}))
    assert refused.status_code in (200, 400) and "Location" not in refused.headers
    one_request(refused, logged, "sign_in.failed")
    (failed,) = [e for e in logged if e["event"] == "sign_in.failed"]
    assert failed["logger"] == "gateway.auth" and "Wrong-Horse-1" not in json.dumps(logged)


def test_every_request_gets_its_own_id(watch: Watch) -> None:
    # Runs after the flows above (pytest keeps file order): every id a response named was new.
    assert len(watch.seen) >= 8
    assert len(set(watch.seen)) == len(watch.seen)


# --- federation ---------------------------------------------------------------------------------------------------


def test_federated_sign_in_events_name_their_requests(
    gatehouse: GatehouseServer, watch: Watch, federated_client: str
) -> None:
    http = requests.Session()
    query = {"response_type": "code", "client_id": federated_client, "redirect_uri": CALLBACK}
    query |= {"scope": "openid email", "identity_provider": "Corp", "state": "s-2"}
    query |= {"code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    begin, logged = watch(
        lambda: http.get(f"{gatehouse.url}/oauth2/authorize?{urlencode(query)}", allow_redirects=False, timeout=10)
    )
    assert begin.status_code in (302, 303), begin.text
    begin_id = one_request(begin, logged, "federation.begin")
    assert {e["logger"] for e in logged if e["event"] == "federation.begin"} == {"gateway.federation"}
    # The upstream's own redirect back (not Gatehouse's: no id of ours on it).
    upstream = http.get(begin.headers["Location"], allow_redirects=False, timeout=10)
    assert upstream.status_code in (302, 303) and HEADER not in upstream.headers
    callback = urljoin(gatehouse.url, upstream.headers["Location"])
    assert "/oauth2/idpresponse" in callback

    # Hostile first: the callback with its state altered is refused, logged under that request.
    forged = re.sub(r"state=[^&]+", "state=forged-state", callback)
    refused, logged = watch(lambda: http.get(forged, allow_redirects=False, timeout=10))
    assert refused.status_code < 500
    refused_id = one_request(refused, logged, "federation.callback_refused")
    assert {e["logger"] for e in logged} == {"gateway.oauth.federation"}

    done, logged = watch(lambda: http.get(callback, allow_redirects=False, timeout=10))
    assert done.status_code in (302, 303) and done.headers["Location"].startswith(CALLBACK), done.text
    assert "code" in query_of(done.headers["Location"])
    done_id = one_request(done, logged, "federation.signed_in", "oauth.code_issued")
    assert len({begin_id, refused_id, done_id}) == 3


# --- /gatehouse/verify ----------------------------------------------------------------------------------------


def trust_root() -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture(scope="module")
def temporary_credentials(gatehouse: GatehouseServer) -> dict[str, Any]:
    iam = gatehouse.client("iam")
    arn = iam.create_role(RoleName="audited-reader", AssumeRolePolicyDocument=trust_root())["Role"]["Arn"]
    credentials: dict[str, Any] = gatehouse.client("sts").assume_role(RoleArn=arn, RoleSessionName="s1")["Credentials"]
    return credentials


def verify(gatehouse: GatehouseServer, creds: dict[str, Any], *, secret: str | None = None) -> requests.Response:
    url = "https://files.example/bucket/key"
    signed = AWSRequest(method="GET", url=url, data=b"")
    key = Credentials(creds["AccessKeyId"], secret or creds["SecretAccessKey"], creds["SessionToken"])
    SigV4Auth(key, "s3", "us-east-1").add_auth(signed)
    headers = {"Host": "files.example", **dict(signed.headers.items())}
    question: dict[str, Any] = {"method": "GET", "url": url, "headers": headers, "body": "", "action": "s3:GetObject"}
    return requests.post(f"{gatehouse.url}/gatehouse/verify", json=question, timeout=10)


def test_verify_answers_and_refusals_are_logged_under_their_request(
    gatehouse: GatehouseServer, watch: Watch, temporary_credentials: dict[str, Any]
) -> None:
    answered, logged = watch(lambda: verify(gatehouse, temporary_credentials))
    assert answered.status_code == 200 and answered.json()["Allowed"] is False  # the role has no policy
    one_request(answered, logged, "verify.answered")
    (event,) = [e for e in logged if e["event"] == "verify.answered"]
    assert event["logger"] == "gateway.verify" and event["allowed"] is False
    assert event["access_key_id"] == temporary_credentials["AccessKeyId"]
    assert temporary_credentials["SecretAccessKey"] not in json.dumps(logged)
    assert temporary_credentials["SessionToken"][:40] not in json.dumps(logged)

    # Hostile: signed with the wrong secret, and a question that is not JSON.
    forged, logged = watch(lambda: verify(gatehouse, temporary_credentials, secret="x" * 40))
    assert forged.status_code == 403 and forged.json()["__type"] == "SignatureDoesNotMatch"
    one_request(forged, logged, "verify.refused")
    garbage, logged = watch(lambda: requests.post(f"{gatehouse.url}/gatehouse/verify", data=b"{not json", timeout=10))
    assert garbage.status_code == 400 and garbage.json()["__type"] == "SerializationException"
    one_request(garbage, logged, "verify.refused")


# --- what the middleware leaves alone, and what it covers -------------------------------------------------------


def test_aws_wires_keep_their_own_id_and_operation(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, watch: Watch
) -> None:
    client_id = idp.create_user_pool_client(
        UserPoolId=pool.pool_id, ClientName="api", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    public = gatehouse.client("cognito-idp", signed=False)
    start = len(gatehouse.log_text())
    with pytest.raises(ClientError) as refused:
        public.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "ann", "PASSWORD": "Wrong-Horse-2"},
        )
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
    metadata = refused.value.response["ResponseMetadata"]
    assert HEADER not in metadata["HTTPHeaders"]  # one id per request: the wire's
    logged = parse(gatehouse.log_text()[start:])
    failed = [e for e in logged if e["event"] == "sign_in.failed"]
    assert [(e["request_id"], e["operation"], e["logger"]) for e in failed] == [
        (metadata["RequestId"], "InitiateAuth", "gateway.auth")
    ]


def test_endpoints_without_events_still_name_their_request(gatehouse: GatehouseServer, watch: Watch) -> None:
    jwks, logged = watch(lambda: requests.get(f"{gatehouse.url}/us-east-1_nopool/.well-known/jwks.json", timeout=10))
    assert jwks.status_code in (400, 404)
    one_request(jwks, logged)
    # A path no route serves is answered by aiohttp's router alone: no handler ran, nothing was logged.
    missing, logged = watch(lambda: requests.get(f"{gatehouse.url}/no/such/page", timeout=10))
    assert missing.status_code == 404 and logged == []


def test_a_request_id_the_caller_sends_is_not_taken(
    gatehouse: GatehouseServer, watch: Watch, federated_client: str
) -> None:
    # Hostile: a caller naming its own id (another request's, say) would mix its events into that request's.
    seen = watch.seen[0]
    query = {"response_type": "code", "client_id": federated_client, "redirect_uri": CALLBACK, "scope": "openid"}
    query |= {"identity_provider": "Corp", "code_challenge": pkce_pair()[1], "code_challenge_method": "S256"}
    url = f"{gatehouse.url}/oauth2/authorize?{urlencode(query)}"
    sent, logged = watch(lambda: requests.get(url, headers={HEADER: seen}, allow_redirects=False, timeout=10))
    assert sent.status_code in (302, 303)
    assert one_request(sent, logged, "federation.begin") != seen
