"""What each process of ``gatehouse serve --workers 2`` keeps in memory, and when a change stops being served.

Each process keeps signing keys (for the key cache time, 60 s by default), pools, clients, identity pools and
IAM roles (a couple of seconds, made stale at once by the change stamps beside the database: see
gateway/services/change_stamp.py). A change that decides who is let in must hold in every process at once:
a leaked key retired with ``gatehouse keys rotate --now --retire-old`` must not keep vouching for the tokens
it signed, nor sign new ones, for another minute.

Every test holds one kept-alive connection to each process (tests/e2e/test_worker_consistency.py's ``Worker``),
lets both processes cache the old state, makes the change, and at once uses the old state through both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.federation_support import Flow, corp_details
from tests.e2e.oauth_support import CALLBACK, Browser, pkce_pair, query_of
from tests.e2e.test_worker_consistency import (
    IDENTITY,
    IDP,
    PASSWORD,
    Worker,
    _credentials,
    _credentials_everywhere,
    _identity_setup,
    _sign_in,
    _user_pool,
)
from tests.fakes.oauth import FakeOIDC
from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, GatehouseServer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("cache") / "data", workers=2)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def workers(cluster: GatehouseServer) -> Iterator[list[Worker]]:
    """A connection to each of the two processes."""
    by_pid: dict[int, Worker] = {}
    others: list[Worker] = []
    for _ in range(64):
        worker = Worker(cluster)
        if worker.pid in by_pid:
            others.append(worker)
        else:
            by_pid[worker.pid] = worker
        if len(by_pid) == 2:
            break
    for extra in others:
        extra.connection.close()
    assert len(by_pid) == 2, "the kernel kept every connection on one process"
    yield list(by_pid.values())
    for worker in by_pid.values():
        worker.connection.close()


def _rotate(cluster: GatehouseServer, *args: str) -> subprocess.CompletedProcess[str]:
    """``gatehouse keys rotate`` with the server's data dir and environment (the default key cache, 60 s)."""
    environ = {
        **os.environ,
        "GATEHOUSE_ADMIN_ACCESS_KEY_ID": ADMIN_KEY_ID,
        "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": ADMIN_SECRET,
    }
    command = [sys.executable, "-m", "gateway.cli", "keys", "rotate", "--data-dir", str(cluster.data_dir), *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60, check=False)


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _get_user(worker: Worker, access_token: str) -> tuple[int, dict[str, Any]]:
    return worker.call(IDP, "GetUser", {"AccessToken": access_token})


# --- signing keys ------------------------------------------------------------------------------------------


def test_retired_keys_stop_vouching_and_signing_at_once_in_every_process(
    cluster: GatehouseServer, workers: list[Worker]
) -> None:
    """``keys rotate --now --retire-old`` is for a key that leaked: whoever holds it can sign any token. Both
    processes had verified (and remembered) a token it signed and signed with it; right after the rotation
    neither may accept that token nor hand out new tokens signed with the deleted key."""
    _, client_id = _user_pool(cluster, "leaked-key")
    status, answer = _sign_in(workers[0], client_id)
    assert status == 200, answer
    leaked = answer["AuthenticationResult"]
    old_kids = {_kid(leaked["IdToken"]), _kid(leaked["AccessToken"])}
    for worker in workers:
        status, answer = _get_user(worker, leaked["AccessToken"])
        assert status == 200, answer
        status, answer = _sign_in(worker, client_id)
        assert status == 200 and _kid(answer["AuthenticationResult"]["AccessToken"]) in old_kids, answer

    pool_id = jwt.decode(leaked["AccessToken"], options={"verify_signature": False})["iss"].rsplit("/", 1)[1]
    rotated = _rotate(cluster, "--now", "--retire-old", pool_id)
    assert rotated.returncode == 0, rotated.stderr

    for worker in workers:
        status, answer = _get_user(worker, leaked["AccessToken"])
        assert (status, answer.get("__type")) == (400, "NotAuthorizedException"), (worker.pid, answer)
        status, answer = _sign_in(worker, client_id)
        assert status == 200, answer
        fresh = answer["AuthenticationResult"]
        assert not {_kid(fresh["IdToken"]), _kid(fresh["AccessToken"])} & old_kids, worker.pid
        status, answer = _get_user(worker, fresh["AccessToken"])
        assert status == 200, answer
    # Every process publishes the new keys and no longer the retired ones.
    for worker in workers:
        status, _, body = worker.request("GET", f"/{pool_id}/.well-known/jwks.json")
        published = {key["kid"] for key in json.loads(body)["keys"]}
        assert status == 200 and not published & old_kids, worker.pid


def _assume_with_open_id_token(worker: Worker, role_arn: str, token: str) -> tuple[int, str]:
    """STS AssumeRoleWithWebIdentity (the identity pools' basic flow), unsigned, through one process."""
    body = urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": role_arn,
            "RoleSessionName": "guest",
            "WebIdentityToken": token,
        }
    ).encode()
    status, _, answer = worker.request("POST", "/", body, {"Content-Type": "application/x-www-form-urlencoded"})
    return status, answer.decode()


def test_retired_identity_issuer_keys_stop_at_once_in_every_process(
    cluster: GatehouseServer, workers: list[Worker]
) -> None:
    """The identity pools' OpenID tokens have a key set of their own (``keys rotate identity``): retired with
    ``--now --retire-old``, STS refuses their tokens and no process signs with it any more."""
    ci = cluster.client("cognito-identity")
    pool_id = ci.create_identity_pool(
        IdentityPoolName="retired issuer", AllowUnauthenticatedIdentities=True, AllowClassicFlow=True
    )["IdentityPoolId"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {"cognito-identity.amazonaws.com:aud": pool_id}},
            }
        ],
    }
    role_arn = cluster.client("iam").create_role(RoleName="retired-issuer", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    status, answer = workers[0].call(IDENTITY, "GetId", {"IdentityPoolId": pool_id})
    assert status == 200, answer
    identity_id = answer["IdentityId"]
    leaked = ""
    for worker in workers:
        status, answer = worker.call(IDENTITY, "GetOpenIdToken", {"IdentityId": identity_id})
        assert status == 200, answer
        leaked = leaked or answer["Token"]
        status, text = _assume_with_open_id_token(worker, role_arn, leaked)
        assert status == 200, text
    old_kid = _kid(leaked)

    rotated = _rotate(cluster, "--now", "--retire-old", "identity")
    assert rotated.returncode == 0, rotated.stderr

    for worker in workers:
        status, text = _assume_with_open_id_token(worker, role_arn, leaked)
        assert status == 400 and "InvalidIdentityToken" in text, (worker.pid, status, text)
        status, answer = worker.call(IDENTITY, "GetOpenIdToken", {"IdentityId": identity_id})
        assert status == 200 and _kid(answer["Token"]) != old_kid, (worker.pid, answer)
        status, text = _assume_with_open_id_token(worker, role_arn, answer["Token"])
        assert status == 200, text


def test_identity_pools_refuse_a_retired_keys_id_token_at_once(cluster: GatehouseServer, workers: list[Worker]) -> None:
    """An identity pool remembers a user pool ID token it checked (GetId then GetCredentialsForIdentity send the
    same one): once its user pool's key is retired because it leaked, the remembered check must not outlive it."""
    setup = _identity_setup(cluster, "retired-user-pool-key")
    pool_id = next(iter(setup["logins"])).rsplit("/", 1)[1]
    _credentials_everywhere(workers, setup)
    rotated = _rotate(cluster, "--now", "--retire-old", pool_id)
    assert rotated.returncode == 0, rotated.stderr
    for worker in workers:
        status, answer = _credentials(worker, setup)
        assert (status, answer.get("__type")) == (400, "NotAuthorizedException"), (worker.pid, answer)


# --- identities --------------------------------------------------------------------------------------------


def test_an_identity_that_became_authenticated_is_no_guest_in_any_process(
    cluster: GatehouseServer, workers: list[Worker]
) -> None:
    """A guest identity that a sign-in has linked a login to is authenticated from then on: Cognito answers
    "Access to Identity ... is forbidden" to a call for it without that login. Both processes had the guest
    identity cached when the login was linked through one of them."""
    setup = _identity_setup(cluster, "guest-then-signed-in")
    ci = cluster.client("cognito-identity")
    iam = cluster.client("iam")
    guest_role = iam.create_role(
        RoleName="guest-then-signed-in-guest",
        AssumeRolePolicyDocument=json.dumps(setup["trust"]).replace("authenticated", "unauthenticated"),
    )["Role"]["Arn"]
    pool = ci.describe_identity_pool(IdentityPoolId=setup["identity_pool"])
    pool["AllowUnauthenticatedIdentities"] = True
    pool.pop("ResponseMetadata")
    ci.update_identity_pool(**pool)
    roles = ci.get_identity_pool_roles(IdentityPoolId=setup["identity_pool"])["Roles"]
    ci.set_identity_pool_roles(IdentityPoolId=setup["identity_pool"], Roles={**roles, "unauthenticated": guest_role})

    status, answer = workers[0].call(IDENTITY, "GetId", {"IdentityPoolId": setup["identity_pool"]})
    assert status == 200, answer
    identity_id = answer["IdentityId"]
    for worker in workers:
        status, answer = worker.call(IDENTITY, "GetCredentialsForIdentity", {"IdentityId": identity_id})
        assert status == 200 and answer["Credentials"]["AccessKeyId"], answer
    # The guest signs in: the login is linked to the identity, through the first process.
    status, answer = workers[0].call(
        IDENTITY, "GetCredentialsForIdentity", {"IdentityId": identity_id, "Logins": setup["logins"]}
    )
    assert status == 200 and answer["IdentityId"] == identity_id, answer

    for worker in workers:
        status, answer = worker.call(IDENTITY, "GetCredentialsForIdentity", {"IdentityId": identity_id})
        assert (status, answer.get("__type")) == (400, "NotAuthorizedException"), (worker.pid, answer)
    assert ci.describe_identity(IdentityId=identity_id)["Logins"] == list(setup["logins"])


# --- OAuth scopes --------------------------------------------------------------------------------------------

ADMIN_SCOPE = "aws.cognito.signin.user.admin"


def _oauth_client(cluster: GatehouseServer, name: str) -> tuple[str, str, dict[str, Any]]:
    oauth: dict[str, Any] = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid", "email", ADMIN_SCOPE],
        "CallbackURLs": [CALLBACK],
        "SupportedIdentityProviders": ["COGNITO"],
    }
    pool_id, client_id = _user_pool(cluster, name, **oauth)
    return pool_id, client_id, oauth


def _redeem(cluster: GatehouseServer, client_id: str, code: str, verifier: str) -> dict[str, Any]:
    response = requests.post(
        f"{cluster.url}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def _scopes(access_token: str) -> set[str]:
    return set(jwt.decode(access_token, options={"verify_signature": False})["scope"].split())


@pytest.mark.parametrize("removed_while", ["the sign-in page is open", "the code is unredeemed"])
def test_a_scope_taken_from_the_client_is_in_no_later_token(cluster: GatehouseServer, removed_while: str) -> None:
    """UpdateUserPoolClient takes a scope away (here the one that lets a token call the user's own API
    operations): a sign-in page opened before (a stored request lives an hour) or a code issued before (it
    lives minutes) must not give a token carrying it, as neither may a removed callback URL or flow."""
    pool_id, client_id, oauth = _oauth_client(cluster, "scope-removed")
    browser = Browser(cluster.url)
    verifier, challenge = pkce_pair()
    url = browser.authorize_url(
        client_id, scope=f"openid email {ADMIN_SCOPE}", code_challenge=challenge, code_challenge_method="S256"
    )
    page = browser.follow(browser.get(url))
    assert page.status_code == 200 and "Sign in" in page.text
    narrowed = {**oauth, "AllowedOAuthScopes": ["openid", "email"]}
    if removed_while == "the sign-in page is open":
        cluster.client().update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, **narrowed)
    answer = browser.submit(page, {"username": "alice", "password": PASSWORD})
    assert answer.status_code in (302, 303) and answer.headers["Location"].startswith(CALLBACK), answer.text
    code = query_of(answer.headers["Location"])["code"]
    if removed_while == "the code is unredeemed":
        cluster.client().update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, **narrowed)
    tokens = _redeem(cluster, client_id, code, verifier)
    assert _scopes(tokens["access_token"]) == {"openid", "email"}
    with pytest.raises(ClientError) as refused:
        cluster.client(signed=False).get_user(AccessToken=tokens["access_token"])
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"


# --- identity providers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        yield server


def test_a_provider_taken_from_the_client_mid_sign_in_signs_no_one_in(cluster: GatehouseServer, corp: FakeOIDC) -> None:
    """UpdateUserPoolClient takes an identity provider out of the client's SupportedIdentityProviders while a
    user is at that provider signing in: coming back, the user gets no code for the client (as a new sign-in
    through that provider gets none)."""
    idp = cluster.client()
    pool_id = idp.create_user_pool(PoolName="provider-removed")["UserPool"]["Id"]
    idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Corp",
        ProviderType="OIDC",
        ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email"},
    )
    oauth: dict[str, Any] = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid", "email", "profile"],
        "CallbackURLs": [CALLBACK],
        "SupportedIdentityProviders": ["COGNITO", "Corp"],
    }
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="spa", **oauth)["UserPoolClient"]["ClientId"]
    corp.user = {"sub": "mid-flight-1", "email": "mid@example.com"}
    # Through the provider before the change: a code.
    flow = Flow(cluster, client_id)
    answer = flow.run(flow.authorize_url(identity_provider="Corp"))
    assert answer.status_code in (302, 303) and "code" in query_of(answer.headers["Location"]), answer.text

    def removed_while_at_the_provider(location: str) -> str:
        idp.update_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id, **{**oauth, "SupportedIdentityProviders": ["COGNITO"]}
        )
        return location

    flow = Flow(cluster, client_id)
    answer = flow.run(flow.authorize_url(identity_provider="Corp"), tamper=removed_while_at_the_provider)
    assert not (answer.is_redirect and "code=" in answer.headers["Location"]), answer.headers["Location"]
    assert answer.status_code < 500 and "Traceback" not in answer.text
    # A new sign-in through the provider is refused too.
    flow = Flow(cluster, client_id)
    answer = flow.run(flow.authorize_url(identity_provider="Corp"))
    assert not (answer.is_redirect and "code=" in answer.headers["Location"]), answer.headers.get("Location")
