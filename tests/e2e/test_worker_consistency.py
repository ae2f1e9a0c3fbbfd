"""Security-relevant changes hold at once in every process of ``gatehouse serve --workers 2``.

Each process keeps the pools, app clients, identity pools and IAM roles it read for a couple of seconds. A
change made through one process must not leave the other one honouring the old setting for that long: a
deleted app client or user pool still signing users in, narrowed auth flows, a pool whose MFA became
required, a removed callback URL (an open redirect), a deleted identity pool or removed role still handing
out credentials, a trust policy that no longer allows the pool.

Every test holds one kept-alive connection to each process (the kernel keeps a connection on the process
that accepted it; which one did is read from /proc), lets both processes cache the old state, makes the
change, and at once uses the old state through both connections.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, Browser, pkce_pair
from tests.support import GatehouseServer

PASSWORD = "Workers-Pass-1"
IDP = "AWSCognitoIdentityProviderService"
IDENTITY = "AWSCognitoIdentityService"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("workers") / "data", workers=2)
    server.start()
    yield server
    server.stop()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _socket_inode(local_port: int, server_port: int) -> str | None:
    """The inode of the server side of the TCP connection from ``local_port`` (/proc/net/tcp, proc(5))."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == local_port:
                    return fields[9]
    return None


def _fd_target(fd: Path) -> str | None:
    """What an open file descriptor of another process points at; None for one it closed since the listing
    (the kept-alive connection looked for stays open, so a vanished one is never it)."""
    try:
        return os.readlink(fd)
    except FileNotFoundError:
        return None


class Worker:
    """One kept-alive connection, and the worker process that accepted it."""

    def __init__(self, server: GatehouseServer) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        status, _, _ = self.request("GET", "/health")
        assert status == 200
        assert self.connection.sock is not None
        inode = _socket_inode(self.connection.sock.getsockname()[1], server.port)
        assert server.process is not None and inode is not None
        self.pid = 0
        for pid in _children(server.process.pid):
            fds = Path(f"/proc/{pid}/fd")
            if any(_fd_target(fd) == f"socket:[{inode}]" for fd in fds.iterdir()):
                self.pid = pid
        assert self.pid

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        self.connection.request(method, path, body=body, headers=headers or {})
        response = self.connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    def call(self, target: str, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """An unsigned JSON call (the public operations), its status and body."""
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{target}.{operation}"}
        status, _, body = self.request("POST", "/", json.dumps(params).encode(), headers)
        answer = json.loads(body)
        assert isinstance(answer, dict)
        return status, answer


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


def _user_pool(cluster: GatehouseServer, name: str, **client_args: Any) -> tuple[str, str]:
    idp = cluster.client()
    pool_id = idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
    args: dict[str, Any] = {"ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}
    args.update(client_args)
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", **args)["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="alice", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="alice", Password=PASSWORD, Permanent=True)
    return pool_id, client_id


def _sign_in(worker: Worker, client_id: str) -> tuple[int, dict[str, Any]]:
    return worker.call(
        IDP,
        "InitiateAuth",
        {
            "ClientId": client_id,
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": "alice", "PASSWORD": PASSWORD},
        },
    )


def _signed_in_everywhere(workers: list[Worker], client_id: str) -> None:
    """Both processes sign alice in (and so have the pool and the client cached)."""
    for worker in workers:
        status, answer = _sign_in(worker, client_id)
        assert status == 200 and "AccessToken" in answer["AuthenticationResult"], answer


def test_both_processes_are_reached(workers: list[Worker]) -> None:
    assert len({worker.pid for worker in workers}) == 2


def test_deleted_app_client_signs_no_one_in(cluster: GatehouseServer, workers: list[Worker]) -> None:
    pool_id, client_id = _user_pool(cluster, "deleted-client")
    _signed_in_everywhere(workers, client_id)
    cluster.client().delete_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
    for worker in workers:
        status, answer = _sign_in(worker, client_id)
        assert (status, answer.get("__type")) == (400, "ResourceNotFoundException"), (worker.pid, answer)


def test_deleted_user_pool_signs_no_one_in(cluster: GatehouseServer, workers: list[Worker]) -> None:
    pool_id, client_id = _user_pool(cluster, "deleted-pool")
    _signed_in_everywhere(workers, client_id)
    cluster.client().delete_user_pool(UserPoolId=pool_id)
    for worker in workers:
        status, answer = _sign_in(worker, client_id)
        assert (status, answer.get("__type")) == (400, "ResourceNotFoundException"), (worker.pid, answer)


def test_narrowed_auth_flows_hold_at_once(cluster: GatehouseServer, workers: list[Worker]) -> None:
    pool_id, client_id = _user_pool(cluster, "narrowed-flows")
    _signed_in_everywhere(workers, client_id)
    cluster.client().update_user_pool_client(
        UserPoolId=pool_id, ClientId=client_id, ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )
    for worker in workers:
        status, answer = _sign_in(worker, client_id)
        assert (status, answer.get("__type")) == (400, "InvalidParameterException"), (worker.pid, answer)


def test_required_mfa_holds_at_once(cluster: GatehouseServer, workers: list[Worker]) -> None:
    """MfaConfiguration ON: a user with no MFA gets the MFA_SETUP challenge, never tokens."""
    pool_id, client_id = _user_pool(cluster, "mfa-on")
    _signed_in_everywhere(workers, client_id)
    cluster.client().set_user_pool_mfa_config(
        UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="ON"
    )
    for worker in workers:
        status, answer = _sign_in(worker, client_id)
        assert status == 200 and "AuthenticationResult" not in answer, (worker.pid, answer)
        assert answer["ChallengeName"] == "MFA_SETUP"


def test_disabled_user_holds_at_once(cluster: GatehouseServer, workers: list[Worker]) -> None:
    pool_id, client_id = _user_pool(cluster, "disabled-user")
    tokens = []
    for worker in workers:
        status, answer = _sign_in(worker, client_id)
        assert status == 200
        tokens.append(answer["AuthenticationResult"])
        status, user = worker.call(IDP, "GetUser", {"AccessToken": tokens[-1]["AccessToken"]})
        assert status == 200 and user["Username"] == "alice"
    cluster.client().admin_disable_user(UserPoolId=pool_id, Username="alice")
    for worker, issued in zip(workers, tokens, strict=True):
        status, answer = _sign_in(worker, client_id)
        assert (status, answer.get("__type")) == (400, "NotAuthorizedException"), (worker.pid, answer)
        status, answer = worker.call(IDP, "GetUser", {"AccessToken": issued["AccessToken"]})
        assert (status, answer.get("__type")) == (400, "NotAuthorizedException"), (worker.pid, answer)
        status, answer = worker.call(
            IDP,
            "InitiateAuth",
            {
                "ClientId": client_id,
                "AuthFlow": "REFRESH_TOKEN_AUTH",
                "AuthParameters": {"REFRESH_TOKEN": issued["RefreshToken"]},
            },
        )
        assert (status, answer.get("__type")) == (400, "NotAuthorizedException"), (worker.pid, answer)


def _authorize(worker: Worker, client_id: str) -> tuple[int, dict[str, str], bytes]:
    _, challenge = pkce_pair()
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": CALLBACK,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return worker.request("GET", f"/oauth2/authorize?{query}")


def test_removed_callback_url_is_refused_at_once(cluster: GatehouseServer, workers: list[Worker]) -> None:
    oauth = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid"],
        "CallbackURLs": [CALLBACK, "https://other.example.com/cb"],
        "SupportedIdentityProviders": ["COGNITO"],
    }
    pool_id, client_id = _user_pool(cluster, "callbacks", **oauth)
    for worker in workers:
        status, headers, _ = _authorize(worker, client_id)
        assert status == 302 and "/login" in headers["Location"], (status, headers)
    oauth["CallbackURLs"] = ["https://other.example.com/cb"]
    cluster.client().update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, **oauth)
    for worker in workers:
        status, headers, body = _authorize(worker, client_id)
        # An error page: never a redirect, neither to the removed URL nor on to the sign-in page.
        assert status == 400 and "Location" not in headers, (worker.pid, status, headers)
        assert b"Traceback" not in body


def _identity_setup(cluster: GatehouseServer, name: str) -> dict[str, Any]:
    idp = cluster.client()
    pool_id = idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.admin_create_user(UserPoolId=pool_id, Username="alice", MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username="alice", Password=PASSWORD, Permanent=True)
    token = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD},
    )["AuthenticationResult"]["IdToken"]
    key = f"127.0.0.1:{cluster.port}/{pool_id}"
    ci = cluster.client("cognito-identity")
    identity_pool = ci.create_identity_pool(
        IdentityPoolName=name.replace("-", "_"),
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": key, "ClientId": client_id}],
    )["IdentityPoolId"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": "cognito-identity.amazonaws.com"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {"cognito-identity.amazonaws.com:aud": identity_pool},
                    "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
                },
            }
        ],
    }
    role_name = f"{name}-role"
    role_arn = cluster.client("iam").create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    ci.set_identity_pool_roles(IdentityPoolId=identity_pool, Roles={"authenticated": role_arn})
    return {"identity_pool": identity_pool, "logins": {key: token}, "role_name": role_name, "trust": trust}


def _credentials(worker: Worker, setup: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    status, answer = worker.call(
        IDENTITY, "GetId", {"IdentityPoolId": setup["identity_pool"], "Logins": setup["logins"]}
    )
    if status != 200:
        return status, answer
    return worker.call(
        IDENTITY, "GetCredentialsForIdentity", {"IdentityId": answer["IdentityId"], "Logins": setup["logins"]}
    )


def _credentials_everywhere(workers: list[Worker], setup: dict[str, Any]) -> None:
    for worker in workers:
        status, answer = _credentials(worker, setup)
        assert status == 200 and answer["Credentials"]["AccessKeyId"], answer


def test_deleted_identity_pool_hands_out_nothing(cluster: GatehouseServer, workers: list[Worker]) -> None:
    setup = _identity_setup(cluster, "deleted-identity-pool")
    _credentials_everywhere(workers, setup)
    status, identity = workers[0].call(
        IDENTITY, "GetId", {"IdentityPoolId": setup["identity_pool"], "Logins": setup["logins"]}
    )
    assert status == 200
    cluster.client("cognito-identity").delete_identity_pool(IdentityPoolId=setup["identity_pool"])
    for worker in workers:
        status, answer = worker.call(
            IDENTITY,
            "GetCredentialsForIdentity",
            {"IdentityId": identity["IdentityId"], "Logins": setup["logins"]},
        )
        assert (status, answer.get("__type")) == (400, "ResourceNotFoundException"), (worker.pid, answer)
        status, answer = worker.call(
            IDENTITY, "GetId", {"IdentityPoolId": setup["identity_pool"], "Logins": setup["logins"]}
        )
        assert (status, answer.get("__type")) == (400, "ResourceNotFoundException"), (worker.pid, answer)


def test_removed_role_hands_out_nothing(cluster: GatehouseServer, workers: list[Worker]) -> None:
    setup = _identity_setup(cluster, "removed-role")
    _credentials_everywhere(workers, setup)
    cluster.client("cognito-identity").set_identity_pool_roles(IdentityPoolId=setup["identity_pool"], Roles={})
    for worker in workers:
        status, answer = _credentials(worker, setup)
        assert status == 400 and "Credentials" not in answer, (worker.pid, answer)
        assert answer.get("__type") == "InvalidIdentityPoolConfigurationException", answer


def test_narrowed_trust_policy_holds_at_once(cluster: GatehouseServer, workers: list[Worker]) -> None:
    setup = _identity_setup(cluster, "narrowed-trust")
    _credentials_everywhere(workers, setup)
    trust = setup["trust"]
    trust["Statement"][0]["Condition"]["StringEquals"]["cognito-identity.amazonaws.com:aud"] = "us-east-1:other"
    cluster.client("iam").update_assume_role_policy(RoleName=setup["role_name"], PolicyDocument=json.dumps(trust))
    for worker in workers:
        status, answer = _credentials(worker, setup)
        assert status == 400 and "Credentials" not in answer, (worker.pid, answer)
        assert answer.get("__type") == "InvalidIdentityPoolConfigurationException", answer


def test_deleted_role_hands_out_nothing(cluster: GatehouseServer, workers: list[Worker]) -> None:
    setup = _identity_setup(cluster, "deleted-role")
    _credentials_everywhere(workers, setup)
    try:
        cluster.client("iam").delete_role(RoleName=setup["role_name"])
    except ClientError as error:  # pragma: no cover - the role has no inline policy
        raise AssertionError(error.response) from error
    for worker in workers:
        status, answer = _credentials(worker, setup)
        assert status == 400 and "Credentials" not in answer, (worker.pid, answer)


def test_deleted_identity_gets_no_credentials(cluster: GatehouseServer, workers: list[Worker]) -> None:
    setup = _identity_setup(cluster, "deleted-identity")
    _credentials_everywhere(workers, setup)
    status, identity = workers[0].call(
        IDENTITY, "GetId", {"IdentityPoolId": setup["identity_pool"], "Logins": setup["logins"]}
    )
    assert status == 200
    deleted = cluster.client("cognito-identity").delete_identities(IdentityIdsToDelete=[identity["IdentityId"]])
    assert deleted["UnprocessedIdentityIds"] == []
    for worker in workers:
        status, answer = worker.call(
            IDENTITY,
            "GetCredentialsForIdentity",
            {"IdentityId": identity["IdentityId"], "Logins": setup["logins"]},
        )
        assert (status, answer.get("__type")) == (400, "ResourceNotFoundException"), (worker.pid, answer)


LEAKED = "Password1"


def test_compromised_credentials_block_holds_at_once(cluster: GatehouseServer, workers: list[Worker]) -> None:
    """Threat protection switched to blocking sign-ins with a leaked password: no process lets one through."""
    idp = cluster.client()
    pool_id = idp.create_user_pool(
        PoolName="risk-block",
        UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"},
        Policies={"PasswordPolicy": {"MinimumLength": 8}},
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.set_risk_configuration(
        UserPoolId=pool_id,
        CompromisedCredentialsRiskConfiguration={"EventFilter": ["SIGN_IN"], "Actions": {"EventAction": "NO_ACTION"}},
    )
    users = [f"user-{index}" for index in range(len(workers))]
    for username in users:
        idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=LEAKED, Permanent=True)

    def sign_in(worker: Worker, username: str) -> tuple[int, dict[str, Any]]:
        params = {"USERNAME": username, "PASSWORD": LEAKED}
        return worker.call(
            IDP, "InitiateAuth", {"ClientId": client_id, "AuthFlow": "USER_PASSWORD_AUTH", "AuthParameters": params}
        )

    for worker, username in zip(workers, users, strict=True):
        status, answer = sign_in(worker, username)
        assert status == 200 and "AuthenticationResult" in answer, answer
    idp.set_risk_configuration(
        UserPoolId=pool_id,
        CompromisedCredentialsRiskConfiguration={"EventFilter": ["SIGN_IN"], "Actions": {"EventAction": "BLOCK"}},
    )
    # One user per process: the first block resets that user's password, which would hide a stale process.
    for worker, username in zip(workers, users, strict=True):
        status, answer = sign_in(worker, username)
        assert (status, answer.get("__type")) == (400, "PasswordResetRequiredException"), (worker.pid, answer)


def _client_credentials(worker: Worker, client_id: str, secret: str) -> tuple[int, dict[str, Any]]:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = worker.request("POST", "/oauth2/token", b"grant_type=client_credentials", headers)
    answer = json.loads(body)
    assert isinstance(answer, dict)
    return status, answer


def test_token_endpoint_follows_narrowed_flows_and_deleted_client(
    cluster: GatehouseServer, workers: list[Worker]
) -> None:
    idp = cluster.client()
    pool_id = idp.create_user_pool(PoolName="machines")["UserPool"]["Id"]
    idp.create_resource_server(
        UserPoolId=pool_id,
        Identifier="https://api.example.com",
        Name="api",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "Read"}],
    )
    oauth: dict[str, Any] = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["client_credentials"],
        "AllowedOAuthScopes": ["https://api.example.com/read"],
    }
    machine = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="machine", GenerateSecret=True, **oauth)[
        "UserPoolClient"
    ]
    client_id, secret = machine["ClientId"], machine["ClientSecret"]
    for worker in workers:
        status, answer = _client_credentials(worker, client_id, secret)
        assert status == 200 and answer["access_token"], answer
    oauth.update(AllowedOAuthFlows=["code"], CallbackURLs=[CALLBACK])
    idp.update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, **oauth)
    for worker in workers:
        status, answer = _client_credentials(worker, client_id, secret)
        assert (status, answer.get("error")) == (400, "unauthorized_client"), (worker.pid, answer)
    idp.delete_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
    for worker in workers:
        status, answer = _client_credentials(worker, client_id, secret)
        assert (status, answer.get("error")) == (401, "invalid_client"), (worker.pid, answer)


def _token_scopes(answer: dict[str, Any]) -> list[str]:
    """The scopes an access token carries (its payload read as the resource server would, after verifying)."""
    payload = answer["access_token"].split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["scope"]).split()


def test_scopes_of_a_deleted_resource_server_stop_in_every_worker(
    cluster: GatehouseServer, workers: list[Worker]
) -> None:
    """Every worker keeps a resource server's scopes for a moment; deleting the server (or taking a scope out)
    through one must stop the scope at once in all (DeleteResourceServer: no more tokens with its scopes)."""
    idp = cluster.client()
    pool_id = idp.create_user_pool(PoolName="scoped-machines")["UserPool"]["Id"]
    scopes = [{"ScopeName": "read", "ScopeDescription": "Read"}, {"ScopeName": "write", "ScopeDescription": "W"}]
    idp.create_resource_server(UserPoolId=pool_id, Identifier="https://api.example.com", Name="api", Scopes=scopes)
    machine = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="machine",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["https://api.example.com/read", "https://api.example.com/write"],
    )["UserPoolClient"]
    client_id, secret = machine["ClientId"], machine["ClientSecret"]
    for worker in workers:
        status, answer = _client_credentials(worker, client_id, secret)
        assert status == 200 and sorted(_token_scopes(answer)) == [
            "https://api.example.com/read",
            "https://api.example.com/write",
        ], answer
    idp.update_resource_server(UserPoolId=pool_id, Identifier="https://api.example.com", Name="api", Scopes=scopes[:1])
    for worker in workers:
        status, answer = _client_credentials(worker, client_id, secret)
        assert status == 200 and _token_scopes(answer) == ["https://api.example.com/read"], (worker.pid, answer)
    idp.delete_resource_server(UserPoolId=pool_id, Identifier="https://api.example.com")
    for worker in workers:
        status, answer = _client_credentials(worker, client_id, secret)
        assert (status, answer.get("error")) == (400, "invalid_scope"), (worker.pid, answer)


@pytest.mark.parametrize("change", ["callback", "flow"])
def test_sign_in_page_follows_a_client_changed_while_it_is_open(cluster: GatehouseServer, change: str) -> None:
    """A stored authorization request lives for an hour: the client's callback URLs and OAuth flows as they
    are when the user signs in decide where the answer goes, not as they were when the page opened (a
    removed callback URL must not receive codes or tokens from pages opened before)."""
    response_type = "code" if change == "callback" else "token"
    oauth: dict[str, Any] = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code", "implicit"],
        "AllowedOAuthScopes": ["openid"],
        "CallbackURLs": [CALLBACK, "https://other.example.com/cb"],
        "SupportedIdentityProviders": ["COGNITO"],
    }
    pool_id, client_id = _user_pool(cluster, f"open-page-{change}", **oauth)
    browser = Browser(cluster.url)
    _, challenge = pkce_pair()
    extra = {"code_challenge": challenge, "code_challenge_method": "S256"} if response_type == "code" else {}
    page = browser.follow(
        browser.get(browser.authorize_url(client_id, response_type=response_type, scope="openid", **extra))
    )
    assert page.status_code == 200 and "Sign in" in page.text
    if change == "callback":
        oauth["CallbackURLs"] = ["https://other.example.com/cb"]
    else:
        oauth["AllowedOAuthFlows"] = ["code"]
    cluster.client().update_user_pool_client(UserPoolId=pool_id, ClientId=client_id, **oauth)
    answer = browser.submit(page, {"username": "alice", "password": PASSWORD})
    assert answer.status_code == 400 and "Location" not in answer.headers, (answer.status_code, answer.headers)
    assert "Traceback" not in answer.text
