"""Client ID metadata documents (CIMD) end to end: the CIMD policy operations through boto3, and external
public clients whose client_id is an https URL signing users in through the hosted pages.

The metadata documents are served by a real aiohttp app over real TLS on 127.0.0.1, with a throwaway CA made
here with ``cryptography``; Gatehouse trusts it through ``SSL_CERT_FILE`` (its outbound aiohttp client uses
Python's default verify paths), exactly as an operator would point it at a private CA."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
import requests
from aiohttp import web
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from gateway.services.cimd import public_address
from tests.e2e.oauth_support import (
    CALLBACK,
    PASSWORD,
    Browser,
    OAuthPool,
    make_pool,
    make_user,
    pkce_pair,
    query_of,
)
from tests.fakes.server import ThreadedApp
from tests.support import GatehouseServer

# --- a throwaway CA and a document server over TLS -----------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _make_tls(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) files: a CA and a certificate it issued for 127.0.0.1."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Gatehouse test CA"))
        .issuer_name(_name("Gatehouse test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server-key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca_path, cert_path, key_path


class DocumentServer(ThreadedApp):
    """Client metadata documents at ``/clients/{name}`` (and ``/other/{name}``), over https; counts requests."""

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__()
        self.url = f"https://127.0.0.1:{self.port}"
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        # path -> (status, headers, body)
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: Counter[str] = Counter()
        # path -> seconds to wait before answering (a slow document host)
        self.delays: dict[str, float] = {}
        self._lock = threading.Lock()

    def serve(self, path: str, body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> str:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        self.routes[path] = (status, {"Content-Type": "application/json", **(headers or {})}, raw)
        return self.url + path

    def document(self, path: str, **overrides: Any) -> str:
        """Serve a good public-client document for ``path`` (with ``overrides``); its URL."""
        url = self.url + path
        document: dict[str, Any] = {
            "client_id": url,
            "client_name": "MCP <b>tool</b>",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            **overrides,
        }
        return self.serve(path, {k: v for k, v in document.items() if v is not None})

    def build(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            with self._lock:
                self.hits[request.path] += 1
            if request.path in self.delays:
                await asyncio.sleep(self.delays[request.path])
            found = self.routes.get(request.path)
            if found is None:
                return web.Response(status=404)
            status, headers, body = found
            return web.Response(status=status, headers=headers, body=body)

        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        return app

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.build(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self._context).start()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return _make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def docs(tls: tuple[Path, Path, Path]) -> Iterator[DocumentServer]:
    server = DocumentServer(tls[1], tls[2])
    server.start()
    yield server
    server.stop()


# The documents are served on 127.0.0.1, which Gatehouse refuses to fetch from unless told otherwise.
_DOCUMENTS_ON_LOOPBACK: dict[str, str | None] = {"GATEHOUSE_CIMD_PRIVATE_ADDRESSES": "1", "SSL_CERT_DIR": None}


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, tls: tuple[Path, Path, Path]) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    # The server's outbound TLS trusts the test CA (and only it) through OpenSSL's default verify paths.
    server = GatehouseServer(data_dir, extra_env=_DOCUMENTS_ON_LOOPBACK | {"SSL_CERT_FILE": str(tls[0])})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "cimd")
    make_user(idp, created.pool_id, "alice")
    return created


@pytest.fixture(scope="module")
def policy(idp: Any, pool: OAuthPool, docs: DocumentServer) -> dict[str, Any]:
    created: dict[str, Any] = idp.create_cimd_policy(
        UserPoolId=pool.pool_id,
        ClientId=pool.public_id,
        PolicyName="mcp clients",
        URLPatterns=[f"{docs.url}/clients/*"],
    )["CIMDPolicy"]
    return created


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def _authorize(gatehouse: GatehouseServer, pool: OAuthPool, client_id: str, **params: str) -> requests.Response:
    query = {"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, "scope": "openid", **params}
    return requests.get(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/authorize", params=query, allow_redirects=False, timeout=15
    )


# --- the policy operations -------------------------------------------------------------------------------------


def test_policy_crud_and_pagination(idp: Any, pool: OAuthPool) -> None:
    created = idp.create_cimd_policy(
        UserPoolId=pool.pool_id,
        ClientId=pool.public_id,
        PolicyName="crud",
        URLPatterns=["https://*.tools.example.com/client.json", "https://mcp.example.org/clients/*"],
    )["CIMDPolicy"]
    policy_id = created["CIMDPolicyId"]
    assert created["UserPoolId"] == pool.pool_id and created["ClientId"] == pool.public_id
    assert created["CacheDuration"] == 86400  # Cognito's default: one day
    assert created["PolicyName"] == "crud" and len(created["URLPatterns"]) == 2
    assert policy_id.isalnum() and policy_id == policy_id.lower()
    described = idp.describe_cimd_policy(UserPoolId=pool.pool_id, CIMDPolicyId=policy_id)["CIMDPolicy"]
    assert described["URLPatterns"] == created["URLPatterns"]
    # PolicyName and CacheDuration left out are kept; URLPatterns and ClientId replace.
    updated = idp.update_cimd_policy(
        UserPoolId=pool.pool_id,
        CIMDPolicyId=policy_id,
        ClientId=pool.public_id,
        CacheDuration=172800,
        URLPatterns=["https://mcp.example.org/clients/*"],
    )["CIMDPolicy"]
    assert updated["PolicyName"] == "crud" and updated["CacheDuration"] == 172800
    assert updated["URLPatterns"] == ["https://mcp.example.org/clients/*"]
    updated = idp.update_cimd_policy(
        UserPoolId=pool.pool_id,
        CIMDPolicyId=policy_id,
        ClientId=pool.public_id,
        PolicyName="renamed",
        URLPatterns=["https://mcp.example.org/clients/*"],
    )["CIMDPolicy"]
    assert updated["PolicyName"] == "renamed" and updated["CacheDuration"] == 172800
    # Listing pages through every policy, two at a time.
    others = [
        idp.create_cimd_policy(
            UserPoolId=pool.pool_id,
            ClientId=pool.public_id,
            PolicyName=f"page {i}",
            URLPatterns=[f"https://page{i}.example.com/c/*"],
        )["CIMDPolicy"]["CIMDPolicyId"]
        for i in range(3)
    ]
    first = idp.list_cimd_policies(UserPoolId=pool.pool_id, MaxResults=2)
    assert len(first["CIMDPolicies"]) == 2 and "NextToken" in first
    seen = [p["CIMDPolicyId"] for p in first["CIMDPolicies"]]
    token = first["NextToken"]
    while token:
        page = idp.list_cimd_policies(UserPoolId=pool.pool_id, MaxResults=2, NextToken=token)
        seen += [p["CIMDPolicyId"] for p in page["CIMDPolicies"]]
        token = page.get("NextToken")
    assert set(others) | {policy_id} <= set(seen) and len(seen) == len(set(seen))
    paginated = [
        p["CIMDPolicyId"]
        for page in idp.get_paginator("list_cimd_policies").paginate(
            UserPoolId=pool.pool_id, PaginationConfig={"PageSize": 1}
        )
        for p in page["CIMDPolicies"]
    ]
    assert sorted(paginated) == sorted(seen)
    summary = first["CIMDPolicies"][0]
    assert {"CIMDPolicyId", "PolicyName", "ClientId", "CacheDuration", "CreationDate"} <= set(summary)
    with pytest.raises(ClientError) as bad_token:
        idp.list_cimd_policies(UserPoolId=pool.pool_id, NextToken="not-a-token")
    assert _error(bad_token)[0] == "InvalidParameterException"
    for victim in [policy_id, *others]:
        idp.delete_cimd_policy(UserPoolId=pool.pool_id, CIMDPolicyId=victim)
    with pytest.raises(ClientError) as gone:
        idp.describe_cimd_policy(UserPoolId=pool.pool_id, CIMDPolicyId=policy_id)
    assert _error(gone)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as gone_again:
        idp.delete_cimd_policy(UserPoolId=pool.pool_id, CIMDPolicyId=policy_id)
    assert _error(gone_again)[0] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"URLPatterns": []}, "InvalidParameterException"),
        ({"URLPatterns": [f"https://a{i}.example.com/c/*" for i in range(6)]}, "InvalidParameterException"),
        ({"URLPatterns": ["http://plain.example.com/c/*"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://user@example.com/c/*"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://*/client.json"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://*.com/client.json"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://a.*.example.com/c"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://example.com"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://example.com/a/../b"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://Example.com/upper"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://example.com/c?id=*"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://example.com/c#*"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://example.com/a/..;/b"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://example.com/a/%2e%2e/b"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://example.com:99999/c"]}, "InvalidParameterException"),
        ({"URLPatterns": ["https://example.com:0/c"]}, "InvalidParameterException"),
        ({"CacheDuration": 3600}, "InvalidParameterException"),
        ({"CacheDuration": 31556953}, "InvalidParameterException"),
        ({"PolicyName": ""}, "InvalidParameterException"),
        ({"ClientId": "nosuchclient1234"}, "ResourceNotFoundException"),
        ({"UserPoolId": "us-east-1_nosuchpool"}, "ResourceNotFoundException"),
    ],
)
def test_create_refuses_bad_input(idp: Any, pool: OAuthPool, changes: dict[str, Any], error: str) -> None:
    before = idp.list_cimd_policies(UserPoolId=pool.pool_id)["CIMDPolicies"]
    request = {
        "UserPoolId": pool.pool_id,
        "ClientId": pool.public_id,
        "PolicyName": "bad",
        "URLPatterns": ["https://ok.example.com/c/*"],
        **changes,
    }
    # botocore's own client-side checks would stop some of these before the wire; send them as given.
    raw = _raw_call(idp, "CreateCIMDPolicy", request)
    assert raw.status_code == 400, raw.text
    assert raw.json()["__type"] == error
    assert idp.list_cimd_policies(UserPoolId=pool.pool_id)["CIMDPolicies"] == before


def _raw_call(idp: Any, operation: str, body: dict[str, Any]) -> requests.Response:
    """A signed call that skips botocore's parameter validation (a client of another SDK may send anything)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    url = idp.meta.endpoint_url + "/"
    request = AWSRequest(
        method="POST",
        url=url,
        data=orjson.dumps(body),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"AWSCognitoIdentityProviderService.{operation}",
        },
    )
    credentials = idp._request_signer._credentials
    SigV4Auth(credentials, "cognito-idp", idp.meta.region_name).add_auth(request)
    return requests.post(url, data=request.body, headers=dict(request.headers), timeout=15)


def test_url_state_of_an_uncached_url(idp: Any, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer) -> None:
    with pytest.raises(ClientError) as excinfo:
        idp.update_client_metadata_url_state(
            UserPoolId=pool.pool_id,
            CIMDPolicyId=policy["CIMDPolicyId"],
            URL=f"{docs.url}/clients/never-seen",
            Action="INVALIDATE",
        )
    assert _error(excinfo)[0] == "CachedCIMDURLDoesNotExistException"
    with pytest.raises(ClientError) as unknown:
        idp.list_client_metadata_urls(UserPoolId=pool.pool_id, CIMDPolicyId="nosuchpolicy")
    assert _error(unknown)[0] == "ResourceNotFoundException"


# --- the code flow with a metadata document client ----------------------------------------------------------


def _sign_in_code(gatehouse: GatehouseServer, pool: OAuthPool, client_id: str, challenge: str) -> tuple[str, str]:
    """Through the hosted login page as alice: (code, Location of the redirect back)."""
    browser = Browser(gatehouse.url)
    url = browser.authorize_url(
        client_id,
        prefix=f"/{pool.pool_id}",
        scope="openid email",
        state="s1",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    back = browser.sign_in(url, "alice")
    assert back.status_code in (302, 303), back.text
    location = back.headers["Location"]
    assert location.startswith(CALLBACK + "?"), location
    return query_of(location)["code"], location


def _token(gatehouse: GatehouseServer, pool: OAuthPool, form: dict[str, str]) -> requests.Response:
    return requests.post(f"{gatehouse.url}/{pool.pool_id}/oauth2/token", data=form, timeout=15)


def _code_form(client_id: str, code: str, verifier: str) -> dict[str, str]:
    """The code exchange's form for the document client ``client_id``, redirected to CALLBACK."""
    return {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }


def test_code_flow_with_pkce(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/clients/good", scope="openid email")
    verifier, challenge = pkce_pair()
    code, location = _sign_in_code(gatehouse, pool, url, challenge)
    assert query_of(location)["state"] == "s1"
    tokens = _token(
        gatehouse,
        pool,
        {
            "grant_type": "authorization_code",
            "client_id": url,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    discovery = requests.get(f"{pool.issuer}/.well-known/openid-configuration", timeout=10).json()
    jwks = jwt.PyJWKClient(discovery["jwks_uri"])
    id_claims = jwt.decode(
        body["id_token"],
        jwks.get_signing_key_from_jwt(body["id_token"]).key,
        algorithms=["RS256"],
        audience=url,
        issuer=pool.issuer,
    )
    assert id_claims["cognito:username"] == "alice" and id_claims["email"] == "alice@example.com"
    access = jwt.decode(
        body["access_token"],
        jwks.get_signing_key_from_jwt(body["access_token"]).key,
        algorithms=["RS256"],
        issuer=pool.issuer,
    )
    assert access["client_id"] == url and set(access["scope"].split()) == {"openid", "email"}
    info = requests.get(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/userInfo",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert info.status_code == 200 and info.json()["username"] == "alice"
    # The document lists refresh_token: the refresh grant works (a public client: no secret).
    refreshed = _token(
        gatehouse, pool, {"grant_type": "refresh_token", "client_id": url, "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert jwt.decode(refreshed.json()["access_token"], options={"verify_signature": False})["client_id"] == url
    # The code was redeemed: a second try fails.
    again = _token(
        gatehouse,
        pool,
        {
            "grant_type": "authorization_code",
            "client_id": url,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # Revocation: the client is public, so its URL alone authenticates it (RFC 7009 §2.1).
    revoked = requests.post(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/revoke",
        data={"token": refreshed.json().get("refresh_token", body["refresh_token"]), "client_id": url},
        timeout=10,
    )
    assert revoked.status_code == 200, revoked.text
    after = _token(
        gatehouse, pool, {"grant_type": "refresh_token", "client_id": url, "refresh_token": body["refresh_token"]}
    )
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    # One fetch for the whole flow (authorize, login page, token, refresh): the cache answered the rest.
    assert docs.hits["/clients/good"] == 1
    listed = idp.list_client_metadata_urls(UserPoolId=pool.pool_id, CIMDPolicyId=policy["CIMDPolicyId"])
    entry = next(u for u in listed["ClientMetadataURLs"] if u["URL"] == url)
    lifetime = entry["ExpirationDate"] - entry["CachedDate"]
    assert abs(lifetime.total_seconds() - 86400) < 5
    # The sign-in is counted under the policy's app client: a metadata URL, of the caller's choosing, never
    # becomes a metric label (they would grow without bound).
    text = requests.get(f"{gatehouse.url}/metrics", timeout=10).text
    clients = {
        sample.labels["client"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("gatehouse_sign_in_") and sample.labels.get("pool") == pool.pool_id
    }
    assert pool.public_id in clients and not any("://" in client for client in clients), clients


def test_no_refresh_token_for_a_document_without_the_refresh_grant(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    """A document whose grant_types omit refresh_token gets no refresh token from the code exchange (RFC 6749
    §5.1 makes it optional; the client could not use it), while its access token still works and is still
    revocable: the token family exists without a refresh token."""
    url = docs.document("/clients/no-refresh", grant_types=["authorization_code"])
    verifier, challenge = pkce_pair()
    code, _ = _sign_in_code(gatehouse, pool, url, challenge)
    form = _code_form(url, code, verifier)
    tokens = _token(gatehouse, pool, form)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert "refresh_token" not in body
    assert body["access_token"] and body["id_token"] and body["token_type"] == "Bearer"
    # The code is still used up by the exchange.
    again = _token(gatehouse, pool, form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    def user_info() -> requests.Response:
        return requests.get(
            f"{gatehouse.url}/{pool.pool_id}/oauth2/userInfo",
            headers={"Authorization": f"Bearer {body['access_token']}"},
            timeout=10,
        )

    # The replay revoked the family (RFC 9700 §4.2.4): a fresh sign-in shows the access token working, then revoked.
    assert user_info().status_code == 401
    code, _ = _sign_in_code(gatehouse, pool, url, challenge)
    body = _token(gatehouse, pool, {**form, "code": code}).json()
    assert "refresh_token" not in body
    assert user_info().status_code == 200 and user_info().json()["username"] == "alice"
    revoked = requests.post(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/revoke",
        data={"token": body["access_token"], "client_id": url},
        timeout=10,
    )
    assert revoked.status_code == 200, revoked.text
    assert user_info().status_code == 401


def test_invalidate_then_refetch(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/clients/invalidated")
    _, challenge = pkce_pair()
    assert _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256").status_code == 302
    assert _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256").status_code == 302
    assert docs.hits["/clients/invalidated"] == 1
    idp.update_client_metadata_url_state(
        UserPoolId=pool.pool_id, CIMDPolicyId=policy["CIMDPolicyId"], URL=url, Action="INVALIDATE"
    )
    urls = idp.list_client_metadata_urls(UserPoolId=pool.pool_id, CIMDPolicyId=policy["CIMDPolicyId"])
    assert url not in [u["URL"] for u in urls["ClientMetadataURLs"]]
    assert _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256").status_code == 302
    assert docs.hits["/clients/invalidated"] == 2
    # REFRESH fetches at once; a long max-age (between a day and a year) sets the expiry.
    docs.serve(
        "/clients/invalidated",
        {"client_id": url, "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"},
        headers={"Cache-Control": "public, max-age=172800"},
    )
    idp.update_client_metadata_url_state(
        UserPoolId=pool.pool_id, CIMDPolicyId=policy["CIMDPolicyId"], URL=url, Action="REFRESH"
    )
    assert docs.hits["/clients/invalidated"] == 3
    urls = idp.list_client_metadata_urls(UserPoolId=pool.pool_id, CIMDPolicyId=policy["CIMDPolicyId"], MaxResults=60)
    entry = next(u for u in urls["ClientMetadataURLs"] if u["URL"] == url)
    assert abs((entry["ExpirationDate"] - entry["CachedDate"]).total_seconds() - 172800) < 5


def test_list_urls_paginates(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    _, challenge = pkce_pair()
    for i in range(3):
        url = docs.document(f"/clients/paged{i}")
        response = _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256")
        assert response.status_code == 302
    seen = [
        u["URL"]
        for page in idp.get_paginator("list_client_metadata_urls").paginate(
            UserPoolId=pool.pool_id, CIMDPolicyId=policy["CIMDPolicyId"], PaginationConfig={"PageSize": 1}
        )
        for u in page["ClientMetadataURLs"]
    ]
    assert {f"{docs.url}/clients/paged{i}" for i in range(3)} <= set(seen) and len(seen) == len(set(seen))


# --- refusals ------------------------------------------------------------------------------------------------


def _refused_page(response: requests.Response, error: str) -> None:
    """An error page (never a redirect: the client and its redirect URI are not proven) naming the error."""
    assert response.status_code == 400, (response.status_code, response.headers.get("Location"))
    assert "Location" not in response.headers
    assert error in response.text


def test_url_matching_no_policy(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/other/unlisted")
    _refused_page(_authorize(gatehouse, pool, url), "invalid_client")
    assert docs.hits["/other/unlisted"] == 0  # never fetched
    token = _token(gatehouse, pool, {"grant_type": "authorization_code", "client_id": url, "code": "x"})
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"


def test_document_client_id_must_be_its_url(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/clients/mismatch", client_id=f"{docs.url}/clients/someone-else")
    _refused_page(_authorize(gatehouse, pool, url), "invalid_client")


def test_redirect_uri_not_in_document(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/clients/redirects", redirect_uris=["https://tool.example.net/cb"])
    _, challenge = pkce_pair()
    # The app client registers CALLBACK, but the document does not: no redirect there.
    response = _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256")
    _refused_page(response, "redirect_uri")
    ok = _authorize(
        gatehouse,
        pool,
        url,
        redirect_uri="https://tool.example.net/cb",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert ok.status_code == 302 and "/login?" in ok.headers["Location"]


def test_confidential_document_refused(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    for name, overrides in (
        ("basic", {"token_endpoint_auth_method": "client_secret_basic"}),
        ("jwt", {"token_endpoint_auth_method": "private_key_jwt"}),
        ("secret", {"client_secret": "s3cret"}),
    ):
        url = docs.document(f"/clients/confidential-{name}", **overrides)
        _refused_page(_authorize(gatehouse, pool, url), "invalid_client")


def test_pkce_required(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/clients/nopkce")
    response = _authorize(gatehouse, pool, url)
    # The redirect URI is proven by the document: the error goes back to it.
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["error"] == "invalid_request"


def test_grant_types_intersect(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    _, challenge = pkce_pair()
    implicit = docs.document("/clients/implicit-only", grant_types=["implicit"], response_types=["token"])
    response = _authorize(gatehouse, pool, implicit, code_challenge=challenge, code_challenge_method="S256")
    assert response.status_code == 302
    assert query_of(response.headers["Location"])["error"] == "unauthorized_client"
    # The app client allows no implicit flow either.
    response = _authorize(gatehouse, pool, implicit, response_type="token")
    assert response.status_code == 302 and "unauthorized_client" in response.headers["Location"]


def test_client_credentials_refused(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/clients/machine", grant_types=["client_credentials"])
    response = _token(gatehouse, pool, {"grant_type": "client_credentials", "client_id": url})
    assert response.status_code == 400 and response.json()["error"] == "unauthorized_client"
    with_secret = _token(
        gatehouse, pool, {"grant_type": "client_credentials", "client_id": url, "client_secret": "guess"}
    )
    assert with_secret.status_code == 401 and with_secret.json()["error"] == "invalid_client"


EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_URN = "urn:ietf:params:oauth:token-type:access_token"


def test_token_exchange_only_when_the_document_lists_the_grant(
    idp: Any, public_idp: Any, gatehouse: GatehouseServer, pool: OAuthPool, docs: DocumentServer
) -> None:
    """RFC 8693's grant at the token endpoint: a document client has the app client's token exchange flows only
    when its grant_types list the token-exchange grant, as for every other grant (the document is a
    registration too). A confidential app client's flows never serve, unasked, a public client that holds no
    secret; and the admin scope, which the API's sign-ins grant, is never the document client's to pass on."""
    app = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="exchanging app",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_TOKEN_EXCHANGE_IMPERSONATION"],
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        CallbackURLs=[CALLBACK],
        AllowedOAuthScopes=["openid", "email"],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]
    signer = idp.create_user_pool_client(
        UserPoolId=pool.pool_id, ClientName="api sign-in", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    idp.create_cimd_policy(
        UserPoolId=pool.pool_id, ClientId=app["ClientId"], PolicyName="exchangers", URLPatterns=[f"{docs.url}/x/*"]
    )
    subject = public_idp.initiate_auth(
        ClientId=signer, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["AccessToken"]

    def exchange(url: str) -> requests.Response:
        form = {
            "grant_type": EXCHANGE_GRANT,
            "client_id": url,
            "subject_token": subject,
            "subject_token_type": ACCESS_URN,
        }
        return _token(gatehouse, pool, form)

    unasked = exchange(docs.document("/x/code-only"))
    assert (unasked.status_code, unasked.json().get("error")) == (400, "unauthorized_client"), unasked.text
    asked = exchange(docs.document("/x/exchanger", grant_types=["authorization_code", EXCHANGE_GRANT]))
    # Listed: the exchange runs, but alice's API sign-in had only the admin scope, which is not the document
    # client's (its scopes are the app client's AllowedOAuthScopes).
    assert (asked.status_code, asked.json().get("error")) == (400, "invalid_scope"), asked.text
    # The app client itself, with its secret, may exchange the same token and pass the admin scope on.
    own = requests.post(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/token",
        data={"grant_type": EXCHANGE_GRANT, "subject_token": subject, "subject_token_type": ACCESS_URN},
        auth=(app["ClientId"], app["ClientSecret"]),
        timeout=15,
    )
    assert own.status_code == 200 and own.json()["scope"] == "aws.cognito.signin.user.admin", own.text


def test_a_document_clients_url_is_refused_as_an_exchange_audience(
    idp: Any, public_idp: Any, gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    """A token exchange may not bind a token to another client of the pool, and a URL a CIMD policy of the pool
    admits is one: an ID token whose aud is that URL would pass as the document client's own (OpenID Connect
    Core §3.1.3.7 has it check aud; azp only SHOULD be checked). Refused without fetching the document."""
    app = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="audience chooser",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_TOKEN_EXCHANGE_IMPERSONATION"],
    )["UserPoolClient"]
    signer = idp.create_user_pool_client(
        UserPoolId=pool.pool_id, ClientName="api sign-in 2", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    subject = public_idp.initiate_auth(
        ClientId=signer, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "alice", "PASSWORD": PASSWORD}
    )["AuthenticationResult"]["AccessToken"]
    params = {
        "ClientId": app["ClientId"],
        "ClientSecret": app["ClientSecret"],
        "SubjectToken": subject,
        "SubjectTokenType": "ACCESS_TOKEN",
        "RequestedTokenType": "ID_TOKEN",
    }
    victim = f"{docs.url}/clients/never-fetched-victim"
    with pytest.raises(ClientError) as refused:
        public_idp.get_derived_token(**params, Audiences=[victim])
    assert _error(refused)[0] == "InvalidParameterException" and "another app client" in _error(refused)[1]
    form = {
        "grant_type": EXCHANGE_GRANT,
        "subject_token": subject,
        "subject_token_type": ACCESS_URN,
        "requested_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "audience": victim,
    }
    answer = requests.post(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/token",
        data=form,
        auth=(app["ClientId"], app["ClientSecret"]),
        timeout=15,
    )
    assert (answer.status_code, answer.json().get("error")) == (400, "invalid_target"), answer.text
    assert docs.hits["/clients/never-fetched-victim"] == 0
    # A URL no policy of the pool admits is only a name for the downstream service.
    elsewhere = public_idp.get_derived_token(**params, Audiences=["https://downstream.example.com/api"])
    claims = jwt.decode(elsewhere["IssuedToken"], options={"verify_signature": False})
    assert claims["aud"] == "https://downstream.example.com/api" and claims["azp"] == app["ClientId"]


def test_too_large_document(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.url + "/clients/huge"
    docs.serve(
        "/clients/huge",
        {"client_id": url, "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none", "pad": "x" * 6000},
    )
    _refused_page(_authorize(gatehouse, pool, url), "invalid_client")


def test_redirect_not_followed(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    target = docs.document("/clients/redirect-target")
    url = docs.serve("/clients/redirecting", b"", status=302, headers={"Location": target})
    _refused_page(_authorize(gatehouse, pool, url), "invalid_client")
    assert docs.hits["/clients/redirecting"] == 1 and docs.hits["/clients/redirect-target"] == 0


def test_not_json_and_errors(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    for path, body, status in (
        ("/clients/not-json", b"<html>hi</html>", 200),
        ("/clients/array", b"[1, 2]", 200),
        ("/clients/server-error", b"{}", 500),
        ("/clients/missing", None, 0),
    ):
        url = docs.url + path
        if body is not None:
            docs.serve(path, body, status=status)
        _refused_page(_authorize(gatehouse, pool, url), "invalid_client")
    # A failed fetch is not repeated at once for the same URL.
    before = docs.hits["/clients/not-json"]
    _refused_page(_authorize(gatehouse, pool, docs.url + "/clients/not-json"), "invalid_client")
    assert docs.hits["/clients/not-json"] == before


def test_app_client_deleted(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, docs: DocumentServer) -> None:
    client = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="doomed",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]
    policy = idp.create_cimd_policy(
        UserPoolId=pool.pool_id,
        ClientId=client["ClientId"],
        PolicyName="doomed",
        URLPatterns=[f"{docs.url}/doomed/*"],
    )["CIMDPolicy"]
    url = docs.document("/doomed/tool")
    _, challenge = pkce_pair()
    assert _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256").status_code == 302
    idp.delete_user_pool_client(UserPoolId=pool.pool_id, ClientId=client["ClientId"])
    time.sleep(2.1)  # the pool service's short client cache
    _refused_page(
        _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256"), "invalid_client"
    )
    # The policy outlives its app client, without a ClientId (as Cognito documents).
    described = idp.describe_cimd_policy(UserPoolId=pool.pool_id, CIMDPolicyId=policy["CIMDPolicyId"])["CIMDPolicy"]
    assert "ClientId" not in described


@pytest.mark.parametrize(
    "client_id",
    [
        "https://",
        "https:///clients/x",
        "https://127.0.0.1:1/clients/../x",
        "https://user:pw@127.0.0.1/clients/x",
        "https://127.0.0.1/clients/x#frag",
        "https://127.0.0.1:99999/clients/x",
        "https://[::1/clients/x",
        "https://127.0.0.1/clients/\u00e9",
        "https://127.0.0.1/clients/x y",
        "https://127.0.0.1/" + "a" * 5000,
        "https://127.0.0.1/clients/%00",
    ],
)
def test_malformed_client_ids_never_500(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], client_id: str
) -> None:
    for prefix in (f"/{pool.pool_id}", ""):
        response = requests.get(
            f"{gatehouse.url}{prefix}/oauth2/authorize",
            params={"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK},
            allow_redirects=False,
            timeout=15,
        )
        assert response.status_code == 400, response.text
        assert "Location" not in response.headers
        for grant in ("authorization_code", "refresh_token", "client_credentials"):
            token = requests.post(
                f"{gatehouse.url}{prefix}/oauth2/token",
                data={"grant_type": grant, "client_id": client_id, "code": "x", "refresh_token": "y"},
                timeout=15,
            )
            assert token.status_code in (400, 401), token.text
            assert token.json()["error"] in ("invalid_client", "invalid_request")


def test_discovery_says_metadata_documents_are_supported(pool: OAuthPool) -> None:
    discovery = requests.get(f"{pool.issuer}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["client_id_metadata_document_supported"] is True


def test_concurrent_first_requests_share_one_fetch(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/clients/slow")
    docs.delays["/clients/slow"] = 1.0
    _, challenge = pkce_pair()
    with ThreadPoolExecutor(8) as executor:
        answers = list(
            executor.map(
                lambda _: _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256"),
                range(8),
            )
        )
    assert [a.status_code for a in answers] == [302] * 8
    assert docs.hits["/clients/slow"] == 1


def test_without_a_pool_in_the_path(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    """On the server's own host the pool is the one whose policy admits the URL (one pool only)."""
    url = docs.document("/clients/hostless")
    verifier, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    back = browser.sign_in(
        browser.authorize_url(url, scope="openid", code_challenge=challenge, code_challenge_method="S256"), "alice"
    )
    code = query_of(back.headers["Location"])["code"]
    tokens = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": url,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        timeout=15,
    )
    assert tokens.status_code == 200, tokens.text
    claims = jwt.decode(tokens.json()["id_token"], options={"verify_signature": False})
    assert claims["aud"] == url and claims["iss"] == pool.issuer


def test_encoded_dot_segments_refused(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    before = sum(docs.hits.values())
    for tail in ("%2e%2e", "%2E%2e", "a%2fb", "a%5Cb"):
        _refused_page(_authorize(gatehouse, pool, f"{docs.url}/clients/{tail}"), "invalid_request")
    assert sum(docs.hits.values()) == before  # nothing fetched


def test_user_pool_api_with_a_metadata_client_token(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool: OAuthPool, docs: DocumentServer
) -> None:
    """An access token of a metadata document client with aws.cognito.signin.user.admin works with GetUser."""
    client = idp.create_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientName="admin-scoped",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "aws.cognito.signin.user.admin"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]
    idp.create_cimd_policy(
        UserPoolId=pool.pool_id, ClientId=client["ClientId"], PolicyName="admin", URLPatterns=[f"{docs.url}/admin/*"]
    )
    url = docs.document("/admin/tool")
    verifier, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    back = browser.sign_in(
        browser.authorize_url(
            url,
            prefix=f"/{pool.pool_id}",
            scope="openid aws.cognito.signin.user.admin",
            code_challenge=challenge,
            code_challenge_method="S256",
        ),
        "alice",
    )
    code = query_of(back.headers["Location"])["code"]
    form = _code_form(url, code, verifier)
    tokens = _token(gatehouse, pool, form)
    assert tokens.status_code == 200, tokens.text
    user = public_idp.get_user(AccessToken=tokens.json()["access_token"])
    assert user["Username"] == "alice"
    assert {"Name": "email", "Value": "alice@example.com"} in user["UserAttributes"]


def _tool_sign_in(gatehouse: GatehouseServer, pool_id: str, url: str, username: str, scope: str) -> dict[str, Any]:
    """Tokens of ``username`` for the metadata document client ``url``: code + PKCE through the hosted pages."""
    verifier, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    back = browser.sign_in(
        browser.authorize_url(
            url, prefix=f"/{pool_id}", scope=scope, code_challenge=challenge, code_challenge_method="S256"
        ),
        username,
    )
    form = {
        "grant_type": "authorization_code",
        "client_id": url,
        "code": query_of(back.headers["Location"])["code"],
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    answer = requests.post(f"{gatehouse.url}/{pool_id}/oauth2/token", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    tokens: dict[str, Any] = answer.json()
    return tokens


def test_deleting_the_app_client_revokes_its_metadata_clients_tokens(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool: OAuthPool, docs: DocumentServer
) -> None:
    """A metadata document client's family is named by its URL; deleting the app client its policy signed it in
    under revokes it all the same, and leaves other clients' tokens alone."""
    scopes = ["openid", "aws.cognito.signin.user.admin"]
    clients = [
        idp.create_user_pool_client(
            UserPoolId=pool.pool_id,
            ClientName=name,
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=scopes,
            CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=["COGNITO"],
        )["UserPoolClient"]["ClientId"]
        for name in ("revoked-with-tools", "kept-with-tools")
    ]
    tokens = []
    for app_client, folder in zip(clients, ("gone", "kept"), strict=True):
        idp.create_cimd_policy(
            UserPoolId=pool.pool_id, ClientId=app_client, PolicyName=folder, URLPatterns=[f"{docs.url}/{folder}/*"]
        )
        url = docs.document(f"/{folder}/tool")
        tokens.append(_tool_sign_in(gatehouse, pool.pool_id, url, "alice", " ".join(scopes))["access_token"])
    gone, kept = tokens
    assert public_idp.get_user(AccessToken=gone)["Username"] == "alice"

    idp.delete_user_pool_client(UserPoolId=pool.pool_id, ClientId=clients[0])
    with pytest.raises(ClientError) as excinfo:
        public_idp.get_user(AccessToken=gone)
    assert _error(excinfo) == ("NotAuthorizedException", "Access Token has been revoked")
    with pytest.raises(ClientError) as excinfo:
        public_idp.update_user_attributes(AccessToken=gone, UserAttributes=[{"Name": "name", "Value": "Mallory"}])
    assert _error(excinfo)[0] == "NotAuthorizedException"
    refused = requests.get(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/userInfo", headers={"Authorization": f"Bearer {gone}"}, timeout=10
    )
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    # The other policy's client, and the user's attributes, are as they were.
    user = public_idp.get_user(AccessToken=kept)
    assert {"Name": "name", "Value": "Mallory"} not in user["UserAttributes"]
    kept_info = requests.get(
        f"{gatehouse.url}/{pool.pool_id}/oauth2/userInfo", headers={"Authorization": f"Bearer {kept}"}, timeout=10
    )
    assert kept_info.status_code == 200, kept_info.text


def test_a_metadata_clients_sessions_are_listed_and_revocable(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, docs: DocumentServer
) -> None:
    """With session tracking on, a user sees the session of an external tool by its URL, and can end it."""
    tracked = make_pool(idp, gatehouse.url, "cimd-sessions")
    idp.set_user_pool_session_configuration(
        UserPoolId=tracked.pool_id, UserSessionTracking="ENABLED", TokenSession={"MaxPerUser": 20}
    )
    make_user(idp, tracked.pool_id, "dora")
    scope = "openid aws.cognito.signin.user.admin"
    app_client = idp.create_user_pool_client(
        UserPoolId=tracked.pool_id,
        ClientName="tools",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=scope.split(),
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]["ClientId"]
    idp.create_cimd_policy(
        UserPoolId=tracked.pool_id, ClientId=app_client, PolicyName="tools", URLPatterns=[f"{docs.url}/sessions/*"]
    )
    first, second = docs.document("/sessions/one"), docs.document("/sessions/two")
    own = _tool_sign_in(gatehouse, tracked.pool_id, first, "dora", scope)["access_token"]
    other = _tool_sign_in(gatehouse, tracked.pool_id, second, "dora", scope)["access_token"]

    listed = public_idp.list_user_sessions(AccessToken=own)["Sessions"]
    assert sorted((s["SessionType"], s["ClientId"]) for s in listed if s["SessionType"] == "TOKEN") == [
        ("TOKEN", first),
        ("TOKEN", second),
    ]
    as_admin = idp.admin_list_user_sessions(UserPoolId=tracked.pool_id, Username="dora")["Sessions"]
    assert {s["ClientId"] for s in as_admin if s["SessionType"] == "TOKEN"} == {first, second}
    target = next(s["SessionId"] for s in listed if s["SessionType"] == "TOKEN" and s["ClientId"] == second)
    public_idp.revoke_user_session(AccessToken=own, SessionId=target)
    with pytest.raises(ClientError) as excinfo:
        public_idp.get_user(AccessToken=other)
    assert _error(excinfo) == ("NotAuthorizedException", "Access Token has been revoked")
    assert public_idp.get_user(AccessToken=own)["Username"] == "dora"
    remaining = public_idp.list_user_sessions(AccessToken=own)["Sessions"]
    assert [s["ClientId"] for s in remaining if s["SessionType"] == "TOKEN"] == [first]


def test_workers_share_the_cache(
    tmp_path_factory: pytest.TempPathFactory, tls: tuple[Path, Path, Path], docs: DocumentServer
) -> None:
    """With several worker processes the document is fetched once: the cache is in the store they share."""
    data_dir: Path = tmp_path_factory.mktemp("gatehouse-workers") / "data"
    server = GatehouseServer(data_dir, workers=2, extra_env=_DOCUMENTS_ON_LOOPBACK | {"SSL_CERT_FILE": str(tls[0])})
    server.start()
    try:
        admin = server.client()
        shared = make_pool(admin, server.url, "cimd-workers")
        admin.create_cimd_policy(
            UserPoolId=shared.pool_id,
            ClientId=shared.public_id,
            PolicyName="workers",
            URLPatterns=[f"{docs.url}/workers/*"],
        )
        url = docs.document("/workers/tool")
        _, challenge = pkce_pair()
        for _ in range(8):
            response = requests.get(
                f"{server.url}/{shared.pool_id}/oauth2/authorize",
                params={
                    "client_id": url,
                    "response_type": "code",
                    "redirect_uri": CALLBACK,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
                allow_redirects=False,
                timeout=15,
            )
            assert response.status_code == 302, response.text
            # A new connection each time, so the kernel may hand it to either worker.
        assert docs.hits["/workers/tool"] == 1
    finally:
        server.stop()


def test_hosted_sign_up_and_reset_pages(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    """The hosted sign-up and forgot-password forms work for a metadata document client (checked as the API
    operations of its app client)."""
    url = docs.document("/clients/pages")
    _, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    login = browser.follow(
        browser.get(
            browser.authorize_url(
                url, prefix=f"/{pool.pool_id}", code_challenge=challenge, code_challenge_method="S256"
            )
        )
    )
    assert login.status_code == 200, login.text
    rid = query_of(login.url)["rid"]
    signup = browser.get(f"/{pool.pool_id}/signup?rid={rid}")
    assert signup.status_code == 200
    answer = browser.submit(
        signup, {"username": "dora", "password": "Correct-Horse-9", "attr:email": "dora@example.com"}
    )
    assert answer.status_code in (200, 302, 303), answer.text
    assert idp.admin_get_user(UserPoolId=pool.pool_id, Username="dora")["UserStatus"] == "UNCONFIRMED"
    forgot = browser.get(f"/{pool.pool_id}/forgotPassword?rid={rid}")
    assert forgot.status_code == 200
    answer = browser.submit(forgot, {"username": "alice"})
    assert answer.status_code in (200, 302, 303), answer.text


def test_pages_show_the_app_clients_customization(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    # SetUICustomization needs a domain of the pool, as Cognito's does.
    idp.create_user_pool_domain(UserPoolId=pool.pool_id, Domain="cimd-styled-pages")
    idp.set_ui_customization(
        UserPoolId=pool.pool_id, ClientId=pool.public_id, CSS=".banner-customizable { background-color: #123456 }"
    )
    url = docs.document("/clients/styled")
    _, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    login = browser.follow(
        browser.get(
            browser.authorize_url(
                url, prefix=f"/{pool.pool_id}", code_challenge=challenge, code_challenge_method="S256"
            )
        )
    )
    assert login.status_code == 200
    assert f"/ui/{pool.pool_id}/{pool.public_id}/custom.css" in login.text
    # The document's client_name is not shown: the hosted pages name no client, an app client or not.
    assert "MCP" not in login.text


def test_compressed_document_refused(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    """A gzip body is never inflated (a small bomb would pass a size cap counted after inflating)."""
    url = docs.url + "/clients/gzipped"
    document = {"client_id": url, "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none"}
    docs.serve("/clients/gzipped", gzip.compress(orjson.dumps(document)), headers={"Content-Encoding": "gzip"})
    _refused_page(_authorize(gatehouse, pool, url), "invalid_client")


def test_slow_document_times_out(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/clients/too-slow")
    docs.delays["/clients/too-slow"] = 8.0
    started = time.monotonic()
    _refused_page(_authorize(gatehouse, pool, url), "invalid_client")
    assert time.monotonic() - started < 7.5  # the fetch's 5 s limit, not the document host's pace


def test_refresh_that_fails_keeps_the_cached_document(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    url = docs.document("/clients/flaky")
    _, challenge = pkce_pair()
    assert _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256").status_code == 302
    docs.serve("/clients/flaky", b"oops", status=503)
    with pytest.raises(ClientError) as excinfo:
        idp.update_client_metadata_url_state(
            UserPoolId=pool.pool_id, CIMDPolicyId=policy["CIMDPolicyId"], URL=url, Action="REFRESH"
        )
    assert _error(excinfo)[0] == "InvalidParameterException" and "HTTP 503" in _error(excinfo)[1]
    # The document cached before still admits the client.
    assert _authorize(gatehouse, pool, url, code_challenge=challenge, code_challenge_method="S256").status_code == 302


# --- attacks ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("script", {"redirect_uris": ["javascript:alert(document.domain)//"]}),
        ("data", {"redirect_uris": ["data:text/html,<script>alert(1)</script>"]}),
        ("cleartext", {"redirect_uris": ["http://tool.example.net/cb"]}),
        ("fragment", {"redirect_uris": ["https://tool.example.net/cb#x"]}),
        ("relative", {"redirect_uris": ["/cb"]}),
        ("logout", {"redirect_uris": [CALLBACK], "post_logout_redirect_uris": ["javascript:alert(1)"]}),
    ],
)
def test_document_redirect_uris_follow_the_callback_url_rules(
    gatehouse: GatehouseServer,
    pool: OAuthPool,
    policy: dict[str, Any],
    docs: DocumentServer,
    name: str,
    overrides: dict[str, Any],
) -> None:
    """A document's redirect URIs obey the rules an app client's CallbackURLs and LogoutURLs do (RFC 9700
    §4.1): no script or inline-document scheme, no fragment, https unless the host is localhost, absolute."""
    url = docs.document(f"/clients/redirect-{name}", **overrides)
    _, challenge = pkce_pair()
    redirect_uri = overrides["redirect_uris"][0]
    response = _authorize(
        gatehouse, pool, url, redirect_uri=redirect_uri, code_challenge=challenge, code_challenge_method="S256"
    )
    _refused_page(response, "invalid_client")
    # http://localhost stays allowed, as for app clients.
    local = docs.document(f"/clients/redirect-{name}-local", redirect_uris=["http://localhost:8080/cb"])
    ok = _authorize(
        gatehouse,
        pool,
        local,
        redirect_uri="http://localhost:8080/cb",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    assert ok.status_code == 302 and "/login?" in ok.headers["Location"]


def test_dot_segments_with_parameters_refused(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    """``..;`` is a dot segment to servlet containers (path parameters): never fetched."""
    before = sum(docs.hits.values())
    for tail in ("..;", "..;x", ".;", "..%3b"):
        _refused_page(_authorize(gatehouse, pool, f"{docs.url}/clients/{tail}"), "invalid_request")
    assert sum(docs.hits.values()) == before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fetch_errors_do_not_describe_the_network(gatehouse: GatehouseServer, idp: Any, docs: DocumentServer) -> None:
    """Why a fetch failed (no listener, TLS, an HTTP status) is logged, never shown to the caller: the page
    would otherwise probe, for anyone, what answers on the hosts a pattern admits."""
    other = make_pool(idp, gatehouse.url, "cimd-net")
    port = _closed_port()
    idp.create_cimd_policy(
        UserPoolId=other.pool_id,
        ClientId=other.public_id,
        PolicyName="net",
        URLPatterns=[f"https://127.0.0.1:{port}/clients/*", f"{docs.url}/net/*"],
    )
    _, challenge = pkce_pair()
    closed = _authorize(
        gatehouse, other, f"https://127.0.0.1:{port}/clients/x", code_challenge=challenge, code_challenge_method="S256"
    )
    missing = _authorize(
        gatehouse, other, f"{docs.url}/net/missing", code_challenge=challenge, code_challenge_method="S256"
    )
    # Asked again at once, each is answered from the remembered failure (no second fetch): told no more.
    closed_again = _authorize(
        gatehouse, other, f"https://127.0.0.1:{port}/clients/x", code_challenge=challenge, code_challenge_method="S256"
    )
    missing_again = _authorize(
        gatehouse, other, f"{docs.url}/net/missing", code_challenge=challenge, code_challenge_method="S256"
    )
    for response in (closed, missing, closed_again, missing_again):
        _refused_page(response, "invalid_client")
        assert "The client metadata document could not be fetched." in response.text
        for detail in ("Connector", "Error)", "HTTP 404", "refused"):
            assert detail not in response.text, response.text


def test_concurrent_fetches_are_bounded(
    gatehouse: GatehouseServer, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    """A flood of first requests for distinct URLs does not become as many fetches at once: past the bound a
    request is refused at once (temporarily_unavailable, not remembered as a failed fetch), so a slow document
    host ties up neither the server nor the URLs it could not fetch."""
    count = 48
    paths = [f"/clients/flood{i}" for i in range(count)]
    urls = [docs.document(path) for path in paths]
    for path in paths:
        docs.delays[path] = 4.0  # long enough for every request to arrive while the first fetches wait
    _, challenge = pkce_pair()
    started = time.monotonic()
    with ThreadPoolExecutor(count) as executor:
        answers = list(
            executor.map(
                lambda u: _authorize(gatehouse, pool, u, code_challenge=challenge, code_challenge_method="S256"),
                urls,
            )
        )
    assert time.monotonic() - started < 15
    fetched = sum(docs.hits[path] for path in paths)
    refused = [u for u, a in zip(urls, answers, strict=True) if a.status_code != 302]
    assert fetched < count and len(refused) == count - fetched, (fetched, len(refused))
    for answer in answers:
        if answer.status_code != 302:
            _refused_page(answer, "temporarily_unavailable")
    # A URL refused for the bound is fetched on its next request (no failure was remembered for it).
    for path in paths:
        docs.delays.pop(path)
    again = _authorize(gatehouse, pool, refused[0], code_challenge=challenge, code_challenge_method="S256")
    assert again.status_code == 302, again.text


def test_single_sign_on_follows_the_app_clients_session_setting(
    gatehouse: GatehouseServer, idp: Any, docs: DocumentServer
) -> None:
    """A metadata document client reuses a hosted UI session as its app client may (SSOSession
    MaxValidityMinutes): an app client that always signs users in again does not lend silent sign-ins."""
    strict = make_pool(idp, gatehouse.url, "cimd-sso")
    make_user(idp, strict.pool_id, "erin")
    idp.create_cimd_policy(
        UserPoolId=strict.pool_id, ClientId=strict.public_id, PolicyName="sso", URLPatterns=[f"{docs.url}/sso/*"]
    )
    idp.set_user_pool_session_configuration(
        UserPoolId=strict.pool_id, UserSessionTracking="ENABLED", TokenSession={"MaxPerUser": 20}
    )
    idp.set_user_pool_client_session_configuration(
        UserPoolId=strict.pool_id, ClientId=strict.public_id, SSOSession={"MaxValidityMinutes": 0}
    )
    _, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    prefix = f"/{strict.pool_id}"
    back = browser.sign_in(
        browser.authorize_url(
            strict.secret_id,
            prefix=prefix,
            scope="openid",
            code_challenge=challenge,
            code_challenge_method="S256",
        ),
        "erin",
    )
    assert "code" in query_of(back.headers["Location"])
    url = docs.document("/sso/tool")
    for client_id in (strict.public_id, url):
        silent = browser.get(
            browser.authorize_url(
                client_id,
                prefix=prefix,
                scope="openid",
                prompt="none",
                code_challenge=challenge,
                code_challenge_method="S256",
            )
        )
        assert silent.status_code == 302, silent.text
        assert query_of(silent.headers["Location"]).get("error") == "login_required", (client_id, silent.headers)


def test_sign_up_page_shows_the_app_clients_terms(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    """The hosted pages look as they do for the app client: its terms of use and privacy policy too."""
    for name, link in (("terms-of-use", "https://example.com/cimd-terms"), ("privacy-policy", "https://example.com/p")):
        idp.create_terms(
            UserPoolId=pool.pool_id,
            ClientId=pool.public_id,
            TermsName=name,
            TermsSource="LINK",
            Enforcement="NONE",
            Links={"cognito:default": link},
        )
    url = docs.document("/clients/terms")
    _, challenge = pkce_pair()
    browser = Browser(gatehouse.url)
    login = browser.follow(
        browser.get(
            browser.authorize_url(
                url, prefix=f"/{pool.pool_id}", code_challenge=challenge, code_challenge_method="S256"
            )
        )
    )
    assert login.status_code == 200, login.text
    signup = browser.get(f"/{pool.pool_id}/signup?rid={query_of(login.url)['rid']}")
    assert signup.status_code == 200
    assert "https://example.com/cimd-terms" in signup.text


def test_sign_in_follows_the_app_clients_risk_configuration(
    gatehouse: GatehouseServer, idp: Any, docs: DocumentServer
) -> None:
    """Threat protection configured for the app client (SetRiskConfiguration with its ClientId) applies to the
    metadata document clients its policy admits: a blocked address is blocked for them too."""
    guarded = make_pool(idp, gatehouse.url, "cimd-risk", UserPoolAddOns={"AdvancedSecurityMode": "ENFORCED"})
    make_user(idp, guarded.pool_id, "frank")
    idp.create_cimd_policy(
        UserPoolId=guarded.pool_id, ClientId=guarded.public_id, PolicyName="risk", URLPatterns=[f"{docs.url}/risk/*"]
    )
    idp.set_risk_configuration(
        UserPoolId=guarded.pool_id,
        ClientId=guarded.public_id,
        RiskExceptionConfiguration={"BlockedIPRangeList": ["127.0.0.0/8"]},
    )
    url = docs.document("/risk/tool")
    _, challenge = pkce_pair()
    for client_id in (guarded.public_id, url):
        browser = Browser(gatehouse.url)
        back = browser.sign_in(
            browser.authorize_url(
                client_id,
                prefix=f"/{guarded.pool_id}",
                scope="openid",
                code_challenge=challenge,
                code_challenge_method="S256",
            ),
            "frank",
        )
        assert "code=" not in back.headers.get("Location", ""), (client_id, back.status_code)
    # The pool-wide configuration (none here) is not what a metadata document client is held to.
    assert (
        idp.describe_risk_configuration(UserPoolId=guarded.pool_id)["RiskConfiguration"].get(
            "RiskExceptionConfiguration"
        )
        is None
    )


def test_codes_and_tokens_stay_with_their_client(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool: OAuthPool, policy: dict[str, Any], docs: DocumentServer
) -> None:
    """The attacks tests/e2e/test_oauth_attacks.py makes on app clients, made on metadata document clients: a
    code, a refresh token or an access token of one client is no use to another -- the policy's app client,
    another URL of the same policy, or the URL spelled another way."""
    mine = docs.document("/clients/victim")
    theirs = docs.document("/clients/attacker")
    verifier, challenge = pkce_pair()

    def redeem(client_id: str, code: str, **auth: str) -> requests.Response:
        form = {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        }
        return _token(gatehouse, pool, {**form, **auth})

    code, _ = _sign_in_code(gatehouse, pool, mine, challenge)
    for other, auth in (
        (theirs, {}),
        (pool.public_id, {}),
        (pool.secret_id, {"client_secret": pool.secret}),
        (mine.replace("https://", "HTTPS://"), {}),
        (mine.replace("127.0.0.1", "127.0.0.1.", 1), {}),
        (mine + "/", {}),
    ):
        stolen = redeem(other, code, **auth)
        assert stolen.status_code in (400, 401), (other, stolen.text)
        assert stolen.json()["error"] in ("invalid_grant", "invalid_client"), (other, stolen.text)
    # None of those burnt the code: its own client still redeems it.
    tokens = redeem(mine, code)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    # An app client's code is no use to a metadata document client either.
    app_code, _ = _sign_in_code(gatehouse, pool, pool.public_id, challenge)
    assert redeem(mine, app_code).json()["error"] == "invalid_grant"

    # The refresh token: not another client's, at the token endpoint or through the API.
    for other, auth in ((theirs, {}), (pool.public_id, {}), (pool.secret_id, {"client_secret": pool.secret})):
        refreshed = _token(
            gatehouse,
            pool,
            {"grant_type": "refresh_token", "client_id": other, "refresh_token": body["refresh_token"], **auth},
        )
        assert refreshed.status_code in (400, 401) and refreshed.json()["error"] in ("invalid_grant", "invalid_client")
    with pytest.raises(ClientError) as excinfo:
        public_idp.initiate_auth(
            ClientId=pool.public_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": body["refresh_token"]},
        )
    assert _error(excinfo)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as excinfo:
        public_idp.get_tokens_from_refresh_token(RefreshToken=body["refresh_token"], ClientId=pool.public_id)
    assert _error(excinfo)[0] == "NotAuthorizedException"

    # Revocation by another client: refused, and the token still works.
    for other, auth in ((theirs, {}), (pool.public_id, {})):
        for token in (body["refresh_token"], body["access_token"]):
            revoked = requests.post(
                f"{gatehouse.url}/{pool.pool_id}/oauth2/revoke",
                data={"token": token, "client_id": other, **auth},
                timeout=10,
            )
            assert revoked.status_code in (400, 401), (other, revoked.text)
    with pytest.raises(ClientError) as excinfo:
        public_idp.revoke_token(Token=body["refresh_token"], ClientId=pool.public_id)
    assert _error(excinfo)[0] in ("UnauthorizedException", "UnsupportedTokenTypeException", "NotAuthorizedException")
    refreshed = _token(
        gatehouse, pool, {"grant_type": "refresh_token", "client_id": mine, "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text


# --- where documents are fetched from -------------------------------------------------------------------------


def _fetch_outcomes(server: GatehouseServer) -> dict[str, float]:
    """gatehouse_cimd_document_fetches_total by outcome."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gatehouse_cimd_document_fetches_total"
    }


def test_documents_on_private_addresses_are_never_fetched(
    tmp_path: Path, tls: tuple[Path, Path, Path], docs: DocumentServer
) -> None:
    """Without GATEHOUSE_CIMD_PRIVATE_ADDRESSES a client_id URL whose host is a loopback address, or a name
    that resolves only to one, is refused without a connection, even when a policy admits it (SSRF): the
    caller sees the usual refusal page, the metrics say why."""
    server = GatehouseServer(tmp_path / "data", extra_env={"SSL_CERT_FILE": str(tls[0]), "SSL_CERT_DIR": None})
    server.start()
    try:
        idp = server.client()
        guarded = make_pool(idp, server.url, "cimd-guarded")
        port = docs.url.rsplit(":", 1)[1]
        idp.create_cimd_policy(
            UserPoolId=guarded.pool_id,
            ClientId=guarded.public_id,
            PolicyName="loopback",
            URLPatterns=[f"{docs.url}/guarded/*", f"https://localhost:{port}/guarded/*"],
        )
        by_address = docs.document("/guarded/by-address")
        by_name = f"https://localhost:{port}/guarded/by-name"
        for url in (by_address, by_name):
            _refused_page(_authorize(server, guarded, url), "invalid_client")
        assert docs.hits["/guarded/by-address"] == 0 and docs.hits["/guarded/by-name"] == 0
        assert _fetch_outcomes(server).get("refused_address") == 2.0
        log = server.log_text()
        assert "is not a public address" in log and "has no public address" in log
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud instance metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("ff02::1", False),
        ("example.com", False),
        # IPv6 forms that carry an IPv4 address to its host are judged as that address.
        ("2002:808:808::1", True),  # 6to4 of 8.8.8.8
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b:1::808:808", False),  # NAT64's local-use prefix
        ("::7f00:1", False),  # IPv4-compatible 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
    ],
)
def test_public_address(address: str, public: bool) -> None:
    assert public_address(address) is public


def test_a_bad_private_addresses_setting_is_refused(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEHOUSE_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--data-dir", str(tmp_path), "--port", "0"],
        capture_output=True, text=True, timeout=20, check=False,
        env={**environ, "GATEHOUSE_CIMD_PRIVATE_ADDRESSES": "sometimes"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "GATEHOUSE_CIMD_PRIVATE_ADDRESSES" in output and "Traceback" not in output, output
