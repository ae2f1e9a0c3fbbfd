"""What Gatehouse writes down, and who can read it: the log at debug level (where libraries talk too), the log
on error paths, log lines built from what callers choose, /metrics label sets an unauthenticated caller could
grow, and the outbox.

OWASP's Logging Cheat Sheet ("Data to exclude": passwords, session identifiers, access tokens, encryption keys)
and Cognito's CloudTrail records (which never hold passwords, codes or tokens) are the bar for the log;
Prometheus' "Instrumentation: use labels with care" for /metrics.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets as secrets_module
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.aws_support import aws_client, identity_trust
from tests.e2e.federation_support import Flow, corp_details
from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, make_pool, make_user, query_of
from tests.fakes.oauth import FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.fakes.server import ThreadedApp
from tests.support import ADMIN_SECRET, GatehouseServer, MailServer, code_in

UPSTREAM_SECRET = "upstream-client-secret-7Qx9"


def debug_config(mail: MailServer) -> str:
    return f"""version: 1
server:
  log:
    level: debug
  smtp:
    host: 127.0.0.1
    port: {mail.port}
pools: []
"""


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, mail: MailServer) -> Iterator[GatehouseServer]:
    """This module's server logs at debug level: the most that an operator chasing a problem would switch on."""
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(data_dir, config=debug_config(mail))
    server.start()
    yield server
    server.stop()


def events(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def leaked(log: str, secrets: dict[str, str]) -> list[str]:
    assert all(len(value) >= 8 for value in secrets.values()), secrets  # long enough never to match by chance
    return [name for name, value in secrets.items() if value in log]


# --- federation at debug level -------------------------------------------------------------------------------


class RecordingSamlIdP(FakeSamlIdP):
    """pysaml2's IdP, remembering every SAMLResponse it hands the browser."""

    sent: list[str]

    def response(self, in_response_to: str | None, **options: Any) -> str:
        text = super().response(in_response_to, **options)
        self.sent = [*getattr(self, "sent", []), text]
        return text


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC(client_secret=UPSTREAM_SECRET) as server:
        server.user = {"sub": "emp-77", "email": "emp77@corp.example", "email_verified": True}
        yield server


@pytest.fixture(scope="module")
def federated(gatehouse: GatehouseServer, idp: Any, corp: FakeOIDC) -> Iterator[tuple[str, str, RecordingSamlIdP]]:
    pool_id = idp.create_user_pool(PoolName="observed-federation")["UserPool"]["Id"]
    certificate = idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"]
    with RecordingSamlIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{pool_id}",
        acs_url=f"{gatehouse.url}/saml2/idpresponse",
        sp_cert_pem=f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n",
    ) as saml:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="CorpSAML", ProviderType="SAML",
            ProviderDetails={"MetadataURL": f"{saml.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256"},
            AttributeMapping={"email": "email"},
        )  # fmt: skip
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC",
            ProviderDetails=corp_details(corp), AttributeMapping={"email": "email"},
        )  # fmt: skip
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="federated", AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=["CorpSAML", "Corp"],
        )["UserPoolClient"]["ClientId"]  # fmt: skip
        yield pool_id, client_id, saml


def signature_values(saml_response: str) -> list[str]:
    xml = base64.b64decode(saml_response).decode()
    return [value.replace("\n", "")[:40] for value in re.findall(r"SignatureValue>([^<]+)<", xml)]


def test_saml_assertion_never_reaches_the_log_even_at_debug(
    gatehouse: GatehouseServer, federated: tuple[str, str, RecordingSamlIdP]
) -> None:
    # pysaml2 logs the whole Response at debug level ("xmlstr: ...") and the NameID at info: a bearer assertion
    # (and who it names) in the log. Gatehouse's own events say which provider signed whom in, by username.
    _, client_id, saml = federated
    saml.user = {**saml.user, "name_id": "saml-nameid-4417@corp.example"}
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="CorpSAML"))
    assert response.status_code == 303, response.text
    tokens = flow.tokens(query_of(response.headers["Location"])["code"])
    log = gatehouse.log_text()
    (sent,) = saml.sent
    secrets = {"SAMLResponse": sent[:60], "id token": tokens["id_token"].rsplit(".", 1)[1][:40]}
    secrets.update({f"SignatureValue {i}": value for i, value in enumerate(signature_values(sent))})
    assert len(secrets) >= 3
    assert leaked(log, secrets) == []
    assert "AttributeStatement" not in log and "saml:Assertion" not in log
    assert "NameID>" not in log  # the subject as pysaml2 logs it; the username (CorpSAML_<NameID>) is fine
    assert any(e.get("event") == "federation.signed_in" and e.get("provider") == "CorpSAML" for e in events(log))


def test_oidc_upstream_tokens_never_reach_the_log_even_at_debug(
    gatehouse: GatehouseServer, federated: tuple[str, str, RecordingSamlIdP], corp: FakeOIDC
) -> None:
    _, client_id, _ = federated
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="Corp"))
    assert response.status_code == 303, response.text
    code = query_of(response.headers["Location"])["code"]
    tokens = flow.tokens(code)
    log = gatehouse.log_text()
    (upstream_code,) = [r["code"] for r in corp.token_requests]
    (upstream_access,) = corp.access_tokens
    secrets = {
        "upstream code": upstream_code,
        "upstream access token": upstream_access,
        "upstream client secret": UPSTREAM_SECRET,
        "code": code,
        "PKCE verifier": flow.verifier,
        "refresh token": tokens["refresh_token"][:60],
        "access token signature": tokens["access_token"].rsplit(".", 1)[1][:40],
    }
    assert leaked(log, secrets) == []
    assert any(e.get("event") == "federation.signed_in" and e.get("provider") == "Corp" for e in events(log))


def saml_post(flow: Flow, change: Any) -> tuple[str, Any]:
    """Start a SAML sign-in, let ``change`` rewrite the IdP's SAMLResponse, post it to the ACS; the response
    sent and Gatehouse's answer."""
    from tests.providers.conftest import form_fields

    page = flow.http.get(flow.authorize_url(identity_provider="CorpSAML"), allow_redirects=True)
    fields = form_fields(page.text)
    sent = change(fields["SAMLResponse"])
    answer = flow.http.post(
        f"{flow.gatehouse.url}/saml2/idpresponse", data={**fields, "SAMLResponse": sent}, allow_redirects=False
    )
    return sent, answer


def test_refused_saml_responses_are_not_written_down(
    gatehouse: GatehouseServer, federated: tuple[str, str, RecordingSamlIdP]
) -> None:
    # pysaml2 logs a Response it cannot verify at error level ("Failed to verify signature on <the assertion>")
    # with a traceback; Gatehouse logs its own refusal with a reason instead.
    from tests.saml_idp_fake import tamper

    _, client_id, _ = federated
    start = len(gatehouse.log_text())
    forged, answer = saml_post(Flow(gatehouse, client_id), lambda r: tamper(r, "ann@corp.example", "eve@corp.example"))
    # Refusals go back to the app as an OAuth error (RFC 6749 4.1.2.1); the success as a code.
    assert "error=invalid_request" in answer.headers["Location"]
    valid, first = saml_post(Flow(gatehouse, client_id), lambda r: r)
    assert "code" in query_of(first.headers["Location"])
    _, second = saml_post(Flow(gatehouse, client_id), lambda _: valid)
    assert "error=invalid_request" in second.headers["Location"]
    log = gatehouse.log_text()[start:]
    secrets = {f"forged {i}": v for i, v in enumerate(signature_values(forged))}
    secrets.update({f"valid {i}": v for i, v in enumerate(signature_values(valid))})
    secrets["valid response"] = valid[:60]
    assert leaked(log, secrets) == []
    assert "eve@corp.example" not in log and "Traceback" not in log
    refusals = [e for e in events(log) if e.get("event") == "federation.refused"]
    # The forged one, and the valid one posted again (answering another flow's AuthnRequest).
    assert [e["reason"] for e in refusals] == ["saml_invalid", "saml_invalid"]
    assert not [e for e in events(log) if e.get("level") == "error"]


# --- requests aiohttp cannot parse ----------------------------------------------------------------------------


def raw_exchange(server: GatehouseServer, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request)
        return connection.recv(200)


# Past the server's limit on one header line or the request line (64 KiB of token and 8 KiB more: cli.py).
LONG_BASIC = b"Y2xpZW50OnNlY3JldA" * 4200
PADDING = b"A" * 75000


@pytest.mark.parametrize(
    ("request_bytes", "secret"),
    [
        # A real token with one stray byte after it: aiohttp quotes the whole header line in its error.
        (b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok-SECRET-1-abcdef\x01\r\n\r\n", "tok-SECRET-1"),
        (b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + LONG_BASIC + b"\r\n\r\n", "Y2xpZW50OnNl"),
        # A request line too long, its query string holding a code.
        (b"GET /oauth2/authorize?code=code-SECRET-3-abc" + PADDING + b" HTTP/1.1\r\nHost: x\r\n\r\n", "code-SECRET-3"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nCookie: cookie-SECRET-4-abc\r\nX: \x00\r\n\r\n", "cookie-SECRET-4"),
    ],
    ids=["authorization-bad-byte", "authorization-too-long", "request-line-too-long", "cookie-then-bad-header"],
)
def test_unparsable_requests_are_logged_without_the_bytes_they_carry(
    gatehouse: GatehouseServer, request_bytes: bytes, secret: str
) -> None:
    start = len(gatehouse.log_text())
    assert raw_exchange(gatehouse, request_bytes).startswith(b"HTTP/1.0 400 ")
    log = gatehouse.log_text()[start:]
    assert secret not in log
    (warning,) = [e for e in events(log) if e.get("logger") == "aiohttp.server"]
    assert warning["level"] == "warning" and warning["event"].startswith("Error handling request from 127.0.0.1: 400 ")


# --- native sign-in, admin calls and temporary credentials at debug level ------------------------------------


def secret_hash(username: str, client_id: str, client_secret: str) -> str:
    digest = hmac.new(client_secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def capture_signatures(client: Any) -> list[str]:
    """The SigV4 signatures of every request ``client`` sends (its Authorization header's last part)."""
    seen: list[str] = []

    def record(request: Any, **_: Any) -> None:
        header = request.headers.get("Authorization")
        if header:
            seen.append(header.decode() if isinstance(header, bytes) else header)

    client.meta.events.register("before-send", record)
    return seen


def test_debug_log_holds_no_password_code_token_hash_or_signature(
    gatehouse: GatehouseServer, mail: MailServer, idp: Any, public_idp: Any, ci: Any, iam: Any
) -> None:
    admin_signatures = capture_signatures(idp)
    pool_id = idp.create_user_pool(PoolName="observed-native", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    app = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="native", GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]  # fmt: skip
    client_id, client_secret = app["ClientId"], app["ClientSecret"]
    user, email = "observed-user", "observed-user@example.com"
    password, wrong, temporary, chosen = "Pw-Observed-1111", "Pw-Wrong-2222xx", "Pw-Temporary-3333", "Pw-Chosen-4444x"
    digest = secret_hash(user, client_id, client_secret)
    public_idp.sign_up(
        ClientId=client_id, SecretHash=digest, Username=user, Password=password,
        UserAttributes=[{"Name": "email", "Value": email}],
    )  # fmt: skip
    code = code_in(mail.wait_for(email))
    with pytest.raises(ClientError):
        public_idp.confirm_sign_up(ClientId=client_id, SecretHash=digest, Username=user, ConfirmationCode="000000")
    public_idp.confirm_sign_up(ClientId=client_id, SecretHash=digest, Username=user, ConfirmationCode=code)
    with pytest.raises(ClientError):
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user, "PASSWORD": wrong, "SECRET_HASH": digest},
        )  # fmt: skip
    tokens = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user, "PASSWORD": password, "SECRET_HASH": digest},
    )["AuthenticationResult"]  # fmt: skip
    # An invited user: the temporary password, then the NEW_PASSWORD_REQUIRED answer with a wrong session first.
    invited, invited_email = "invited-user", "invited-user@example.com"
    idp.admin_create_user(
        UserPoolId=pool_id, Username=invited, TemporaryPassword=temporary,
        UserAttributes=[{"Name": "email", "Value": invited_email}, {"Name": "email_verified", "Value": "true"}],
    )  # fmt: skip
    invited_digest = secret_hash(invited, client_id, client_secret)
    challenge = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": invited, "PASSWORD": temporary, "SECRET_HASH": invited_digest},
    )  # fmt: skip
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(ClientError):
        public_idp.respond_to_auth_challenge(
            ClientId=client_id, ChallengeName="NEW_PASSWORD_REQUIRED", Session=challenge["Session"][::-1],
            ChallengeResponses={"USERNAME": invited, "NEW_PASSWORD": chosen, "SECRET_HASH": invited_digest},
        )  # fmt: skip
    public_idp.respond_to_auth_challenge(
        ClientId=client_id, ChallengeName="NEW_PASSWORD_REQUIRED", Session=challenge["Session"],
        ChallengeResponses={"USERNAME": invited, "NEW_PASSWORD": chosen, "SECRET_HASH": invited_digest},
    )  # fmt: skip
    # A refresh, then a password reset by emailed code: a wrong code first, then the right one.
    refreshed = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH",
        AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"], "SECRET_HASH": digest},
    )["AuthenticationResult"]  # fmt: skip
    public_idp.forgot_password(ClientId=client_id, SecretHash=digest, Username=user)
    reset_code = code_in(mail.wait_for(email, count=2))
    reset_password, refused_password = "Pw-Reset-5555xx", "Pw-Refused-6666x"
    with pytest.raises(ClientError):
        public_idp.confirm_forgot_password(
            ClientId=client_id, SecretHash=digest, Username=user, Password=refused_password,
            ConfirmationCode="000000" if reset_code != "000000" else "111111",
        )  # fmt: skip
    public_idp.confirm_forgot_password(
        ClientId=client_id, SecretHash=digest, Username=user, Password=reset_password, ConfirmationCode=reset_code
    )
    # A refresh token, then the same one revoked and refused.
    public_idp.revoke_token(Token=tokens["RefreshToken"], ClientId=client_id, ClientSecret=client_secret)
    with pytest.raises(ClientError):
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"], "SECRET_HASH": digest},
        )  # fmt: skip
    # An admin call signed with a wrong secret key.
    forger = gatehouse.client(secret="wrong-admin-secret-key-0000")
    forged_signatures = capture_signatures(forger)
    with pytest.raises(ClientError):
        forger.list_user_pools(MaxResults=5)
    # Temporary credentials of an identity pool's guest, used to sign an STS call (SigV4 with a session token).
    identity_pool = ci.create_identity_pool(IdentityPoolName="observed", AllowUnauthenticatedIdentities=True)
    identity_pool_id = identity_pool["IdentityPoolId"]
    role = iam.create_role(
        RoleName="observed-guest", AssumeRolePolicyDocument=identity_trust(identity_pool_id, "unauthenticated")
    )["Role"]["Arn"]  # fmt: skip
    ci.set_identity_pool_roles(IdentityPoolId=identity_pool_id, Roles={"unauthenticated": role})
    public_ci = gatehouse.client("cognito-identity", signed=False)
    guest = public_ci.get_id(IdentityPoolId=identity_pool_id)["IdentityId"]
    credentials = public_ci.get_credentials_for_identity(IdentityId=guest)["Credentials"]
    sts = aws_client(
        "sts", gatehouse.url, credentials["AccessKeyId"], credentials["SecretKey"], credentials["SessionToken"]
    )
    sts_signatures = capture_signatures(sts)
    assert sts.get_caller_identity()["Arn"].endswith("/observed-guest/CognitoIdentityCredentials")

    log = gatehouse.log_text()
    with sqlite3.connect(gatehouse.data_dir / "gatehouse.db") as db:
        hashes = [row[0] for row in db.execute("SELECT password_hash FROM users WHERE pool_id = ?", (pool_id,))]
    assert len(hashes) == 2
    secrets = {
        "password": password, "wrong password": wrong, "temporary password": temporary, "chosen password": chosen,
        "sign-up code": f'"{code}"', "client secret": client_secret, "secret hash": digest,
        "session": challenge["Session"][:60], "refresh token": tokens["RefreshToken"][:60],
        "access token signature": tokens["AccessToken"].rsplit(".", 1)[1][:40],
        "admin secret key": ADMIN_SECRET, "temporary secret key": credentials["SecretKey"],
        "session token": credentials["SessionToken"][:60],
        "reset code": f'"{reset_code}"', "reset password": reset_password, "refused password": refused_password,
        "refreshed access token signature": refreshed["AccessToken"].rsplit(".", 1)[1][:40],
        "refreshed id token signature": refreshed["IdToken"].rsplit(".", 1)[1][:40],
    }  # fmt: skip
    secrets.update({f"password hash {i}": value.rsplit("$", 1)[1] for i, value in enumerate(hashes)})
    for name, signatures in (("admin", admin_signatures), ("forged", forged_signatures), ("sts", sts_signatures)):
        assert signatures, name
        secrets.update({f"{name} signature {i}": s.rsplit("Signature=", 1)[1] for i, s in enumerate(signatures)})
    assert leaked(log, secrets) == []


# --- values callers choose, in the log ------------------------------------------------------------------------

HOSTILE_PROVIDER = 'evil\x1b]0;owned\x07\x1b[2J\n2026-01-01T00:00:00Z [error    ] forged", "level": "error'


# No space, quote or newline: structlog's console renderer then writes the value as it is, not as its repr.
TERMINAL_ESCAPES = "evil\x1b]0;owned\x07\x1b[2J\x9b31m"


def refuse_hostile_login(server: GatehouseServer, provider: str = HOSTILE_PROVIDER) -> None:
    """GetId with a Logins key the caller made up: Gatehouse logs the refusal naming that provider."""
    pool = server.client("cognito-identity").create_identity_pool(
        IdentityPoolName="hostile", AllowUnauthenticatedIdentities=True
    )
    with pytest.raises(ClientError) as refused:
        server.client("cognito-identity", signed=False).get_id(
            IdentityPoolId=pool["IdentityPoolId"], Logins={provider: "token"}
        )
    assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"


def test_json_lines_keep_hostile_values_inside_one_field(gatehouse: GatehouseServer) -> None:
    start = len(gatehouse.log_text())
    refuse_hostile_login(gatehouse)
    log = gatehouse.log_text()[start:]
    assert "\x1b" not in log and all(line.startswith("{") for line in log.splitlines())
    (refusal,) = [e for e in events(log) if e.get("event") == "identity.login_refused"]
    assert refusal["provider"] == HOSTILE_PROVIDER and refusal["level"] == "info"


def test_console_lines_escape_control_characters(tmp_path: Path) -> None:
    # GATEHOUSE_LOG_FORMAT=console is for a terminal: an escape sequence there would retitle or clear it, and a
    # newline would start a line that looks like Gatehouse's own.
    server = GatehouseServer(tmp_path / "data", extra_env={"GATEHOUSE_LOG_FORMAT": "console"})
    server.start()
    try:
        refuse_hostile_login(server)
        refuse_hostile_login(server, TERMINAL_ESCAPES)
        raw = server.log_text()
    finally:
        server.stop()
    assert "\x1b" not in raw and "\x07" not in raw and "\x9b" not in raw
    quoted, bare = [line for line in raw.splitlines() if "identity.login_refused" in line]
    assert "x1b]0;owned" in quoted  # escaped (and quoted: the value has spaces)
    assert "provider=evil\\x1b]0;owned\\x07\\x1b[2J\\x9b31m " in bare
    assert not [line for line in raw.splitlines() if line.startswith("2026-01-01T00:00:00Z")]


# --- /metrics ------------------------------------------------------------------------------------------------


def scrape(server: GatehouseServer) -> str:
    reply = requests.get(f"{server.url}/metrics", timeout=10)
    assert reply.status_code == 200
    return reply.text


def test_metric_labels_hold_nothing_a_caller_made_up(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    # Every label value a caller could choose (an operation, an action, a flow, a client or pool id, a path, a
    # grant type) is one of a known set, or "unknown": else each made-up value is a new time series, and an
    # unauthenticated caller grows /metrics and the server's memory without bound.
    pool_id = idp.create_user_pool(PoolName="observed-metrics")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="metered", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]  # fmt: skip
    made_up = [f"madeup{i}x{secrets_module.token_hex(4)}" for i in range(8)]
    json_headers = {"Content-Type": "application/x-amz-json-1.1"}
    for value in made_up:
        for target in (f"AWSCognitoIdentityProviderService.{value}", f"{value}.InitiateAuth"):
            requests.post(f"{gatehouse.url}/", headers={**json_headers, "X-Amz-Target": target}, data="{}")
        requests.post(f"{gatehouse.url}/", data={"Action": value, "Version": "2011-06-15"})
        requests.post(f"{gatehouse.url}/", data={"Action": value, "Version": value})
        for client, flow in ((value, "USER_PASSWORD_AUTH"), (client_id, value), (client_id, "USER_PASSWORD_AUTH")):
            with pytest.raises(ClientError):
                public_idp.initiate_auth(
                    ClientId=client, AuthFlow=flow, AuthParameters={"USERNAME": value, "PASSWORD": "Pw-Madeup-1234"}
                )
        with pytest.raises(ClientError):
            public_idp.respond_to_auth_challenge(
                ClientId=client_id, ChallengeName="SMS_MFA", Session=value * 3, ChallengeResponses={"USERNAME": value}
            )
        with pytest.raises(ClientError):
            public_idp.sign_up(ClientId=value, Username=value, Password="Pw-Madeup-1234")
        with pytest.raises(ClientError):
            public_idp.forgot_password(ClientId=value, Username=value)
        requests.get(f"{gatehouse.url}/{value}/.well-known/jwks.json")
        requests.get(f"{gatehouse.url}/oauth2/{value}")
        requests.post(f"{gatehouse.url}/oauth2/token", data={"grant_type": value, "client_id": value})
        requests.get(f"{gatehouse.url}/oauth2/authorize", params={"client_id": value, "response_type": "code"})
    exposition = scrape(gatehouse)
    assert [value for value in made_up if value in exposition] == []
    assert 'operation="unknown"' in exposition  # the made-up operations, counted under one label
    assert f'client="{client_id}"' in exposition  # a real client's failed sign-ins are counted by client


def test_metrics_show_no_secret(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="observed-scrape")["UserPool"]["Id"]
    app = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="scraped", GenerateSecret=True, ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]  # fmt: skip
    idp.admin_create_user(UserPoolId=pool_id, Username="scraped-user", MessageAction="SUPPRESS",
                          TemporaryPassword="Pw-Scraped-Temp-1")  # fmt: skip
    idp.admin_set_user_password(UserPoolId=pool_id, Username="scraped-user", Password="Pw-Scraped-5555", Permanent=True)
    tokens = public_idp.initiate_auth(
        ClientId=app["ClientId"], AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "scraped-user", "PASSWORD": "Pw-Scraped-5555",
                        "SECRET_HASH": secret_hash("scraped-user", app["ClientId"], app["ClientSecret"])},
    )["AuthenticationResult"]  # fmt: skip
    exposition = scrape(gatehouse)
    # Pool and app-client ids are there (as in Cognito's CloudWatch dimensions); secrets, users and tokens not.
    assert f'pool="{pool_id}"' in exposition and f'client="{app["ClientId"]}"' in exposition
    for value in (app["ClientSecret"], "scraped-user", "Pw-Scraped", tokens["AccessToken"].rsplit(".", 1)[1][:40]):
        assert value not in exposition


# --- where codes go: the SMS webhook and the outbox ------------------------------------------------------------

WEBHOOK_KEY = "webhook-api-key-Zt81"
WEBHOOK_QUERY_TOKEN = "webhook-query-token-Q27v"


class Recorder(ThreadedApp):
    """An HTTP server that records every request; ``redirect_to`` makes it answer each with a 307 there."""

    def __init__(self, redirect_to: str | None = None) -> None:
        super().__init__()
        self.redirect_to = redirect_to
        self.received: list[tuple[dict[str, str], str]] = []

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.text()))
        if self.redirect_to is not None:
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        return web.json_response({"ok": True})


def test_sms_webhook_is_not_followed_elsewhere_nor_its_key_logged(tmp_path: Path) -> None:
    # A webhook that answers with a redirect (moved, or taken over) must not get the code and the operator's API
    # key sent on to wherever it points: aiohttp drops Authorization on a cross-origin redirect, but not an API
    # key in another header, and a 307 re-sends the body with the code. Nor may the error logged show the URL's
    # query string, which the log's "url" field leaves out on purpose.
    with Recorder() as elsewhere, Recorder(redirect_to=f"{elsewhere.url}/collect") as webhook:
        config = f"""version: 1
server:
  sms_webhook:
    url: {webhook.url}/sms?token={WEBHOOK_QUERY_TOKEN}
    headers:
      X-Api-Key: {WEBHOOK_KEY}
    timeout: 5
pools: []
"""
        server = GatehouseServer(tmp_path / "data", config=config)
        server.start()
        try:
            idp, public = server.client(), server.client(signed=False)
            pool_id = idp.create_user_pool(
                PoolName="webhook", UsernameAttributes=["phone_number"], AutoVerifiedAttributes=["phone_number"]
            )["UserPool"]["Id"]
            client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="phones")["UserPoolClient"][
                "ClientId"
            ]
            with pytest.raises(ClientError) as failed:
                public.sign_up(ClientId=client_id, Username="+15555550142", Password="Pw-Webhook-1234")
            assert failed.value.response["Error"]["Code"] == "CodeDeliveryFailureException"
            log = server.log_text()
        finally:
            server.stop()
    ((headers, body),) = webhook.received
    assert headers["X-Api-Key"] == WEBHOOK_KEY and "+15555550142" in body
    assert elsewhere.received == []
    assert WEBHOOK_KEY not in log and WEBHOOK_QUERY_TOKEN not in log
    (failure,) = [e for e in events(log) if e.get("event") == "message.delivery_failed"]
    assert failure["url"] == f"{webhook.url}/sms" and failure["status"] == 307


def test_outbox_is_private_even_when_it_was_there_before(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    # This server has SMTP but no SMS webhook: SMS codes go to the outbox, which it says at start.
    outbox = gatehouse.data_dir / "outbox.jsonl"
    if not outbox.exists():
        outbox.touch()
    outbox.chmod(0o644)  # made by hand (or by an older release) readable to every local user
    pool_id = idp.create_user_pool(
        PoolName="observed-outbox", UsernameAttributes=["phone_number"], AutoVerifiedAttributes=["phone_number"]
    )["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="phones")["UserPoolClient"]["ClientId"]
    public_idp.sign_up(ClientId=client_id, Username="+15555550177", Password="Pw-Outbox-12345")
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [line["to"] for line in lines if line["kind"] == "sms"] == ["+15555550177"]
    assert [line for line in lines if line["kind"] == "email"] == []  # email goes through SMTP only
    assert oct(outbox.stat().st_mode & 0o777) == "0o600"
    log = gatehouse.log_text()
    (notice,) = [e for e in events(log) if e.get("event") == "message.outbox_in_use"]
    assert notice["level"] == "warning" and notice["media"] == ["sms"] and notice["path"] == str(outbox)
    code = re.search(r"\b\d{6}\b", lines[-1]["text"])
    assert code is not None and f'"{code.group(0)}"' not in log  # the outbox holds the code, the log not


def test_hosted_sign_in_and_token_endpoint_leave_no_secret_in_the_log(gatehouse: GatehouseServer, idp: Any) -> None:
    pool = make_pool(idp, gatehouse.url, "observed-hosted")
    make_user(idp, pool.pool_id, "hosted-user")
    browser = Browser(gatehouse.url)
    start = len(gatehouse.log_text())
    wrong = browser.sign_in(browser.authorize_url(pool.secret_id, scope="openid"), "hosted-user", "Pw-Wrong-Hosted-9")
    assert wrong.status_code == 400 and "Sign in" in wrong.text  # the page again, with an error
    back = browser.sign_in(browser.authorize_url(pool.secret_id, scope="openid"), "hosted-user")
    code = query_of(back.headers["Location"])["code"]
    basic = base64.b64encode(f"{pool.secret_id}:{pool.secret}".encode()).decode()
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    tokens = browser.post("/oauth2/token", exchange, headers={"Authorization": f"Basic {basic}"}).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": pool.secret_id}
    refreshed = browser.post("/oauth2/token", refresh, headers={"Authorization": f"Basic {basic}"}).json()
    assert "refresh_token" in refreshed, refreshed
    # The code again: refused, and what it gave is revoked (RFC 9700 4.2.1).
    replayed = browser.post("/oauth2/token", exchange, headers={"Authorization": f"Basic {basic}"})
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    wrong_secret = base64.b64encode(f"{pool.secret_id}:not-the-secret-0000".encode()).decode()
    refused = browser.post("/oauth2/token", refresh, headers={"Authorization": f"Basic {wrong_secret}"})
    assert refused.status_code == 401
    log = gatehouse.log_text()[start:]
    secrets = {
        "password": PASSWORD, "wrong password": "Pw-Wrong-Hosted-9", "code": code, "client secret": pool.secret,
        "basic credentials": basic, "refresh token": tokens["refresh_token"][:60],
        "new refresh token": refreshed["refresh_token"][:60],
        "id token signature": tokens["id_token"].rsplit(".", 1)[1][:40],
    }  # fmt: skip
    session_cookies = [c.value for c in browser.http.cookies if len(c.value) >= 16]
    assert session_cookies
    secrets.update({f"cookie {i}": value[:40] for i, value in enumerate(session_cookies)})
    assert leaked(log, secrets) == []
    assert any(e.get("event") == "oauth.code_redeemed" for e in events(log))


def test_json_lines_cannot_be_split_by_unicode_line_separators(gatehouse: GatehouseServer) -> None:
    # RoleArn allows U+0085 and U+2028 (botocore's arnType pattern); orjson escapes only C0, and Python's
    # str.splitlines() -- as log tooling (these tests included) reads lines -- splits at both: an event cut in
    # pieces that are not JSON, which stops a reader that parses every line (its audit trail ends there).
    forged = '{"event":"sign_in.step","outcome":"tokens","username":"admin","level":"info"}'
    role = f"arn:aws:iam::000000000000:role/x\u2028{forged}\u0085{forged}\u2029{forged}"
    sts = gatehouse.client("sts", signed=False)
    start = len(gatehouse.log_text())
    with pytest.raises(ClientError):
        sts.assume_role_with_web_identity(RoleArn=role, RoleSessionName="forger", WebIdentityToken="not-a-jwt" * 3)
    log = gatehouse.log_text()[start:]
    lines = [line for line in log.splitlines() if line.strip()]
    assert all(line.startswith("{") and line.endswith("}") for line in lines), lines
    (rejected,) = [e for e in map(json.loads, lines) if e["event"] == "sts.web_identity_rejected"]
    assert rejected["role"] == role  # the value itself is kept, escaped
    assert not [e for e in map(json.loads, lines) if e.get("username") == "admin"]


def api_calls(exposition: str, wire: str, outcome: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "gatehouse_api_calls_total" and sample.labels == {
                "wire": wire, "operation": "unknown", "outcome": outcome,
            }:  # fmt: skip
                return float(sample.value)
    return 0.0


def test_calls_refused_before_their_service_runs_have_a_request_id_and_are_counted(gatehouse: GatehouseServer) -> None:
    # A body that is not what its Content-Encoding says, or a target naming no service: AWS answers every call with
    # a request id (botocore's ResponseMetadata.RequestId), and /metrics counts API calls by outcome.
    json_headers = {"Content-Type": "application/x-amz-json-1.1"}
    before = scrape(gatehouse)
    answers = [
        requests.post(
            f"{gatehouse.url}/",
            headers={
                **json_headers,
                "X-Amz-Target": "AWSCognitoIdentityProviderService.GetUser",
                "Content-Encoding": "gzip",
            },
            data=b"not gzip",
            timeout=10,
        ),
        requests.post(
            f"{gatehouse.url}/",
            headers={**json_headers, "X-Amz-Target": "NoSuchService.GetUser"},
            data="{}",
            timeout=10,
        ),
    ]
    assert [(a.status_code, a.json()["__type"]) for a in answers] == [
        (400, "SerializationException"),
        (400, "UnknownOperationException"),
    ]
    ids = [a.headers["x-amzn-RequestId"] for a in answers]
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", i) for i in ids), ids
    assert ids[0] != ids[1]
    after = scrape(gatehouse)
    for wire, outcome in (("cognito-idp", "SerializationException"), ("unknown", "UnknownOperationException")):
        assert api_calls(after, wire, outcome) == api_calls(before, wire, outcome) + 1
