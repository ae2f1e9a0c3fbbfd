"""A Host header or a cookie of bytes that are not UTF-8 (aiohttp decodes them to lone surrogates) is hostile
input like any other: the OAuth endpoints and the hosted pages treat such a Host as naming no pool and such a
cookie as absent, and never answer 500."""

from __future__ import annotations

import http.client
import socket
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.e2e.oauth_support import CALLBACK, LOGOUT, Browser, OAuthPool, make_pool, pkce_pair
from tests.support import GatehouseServer

BAD = b"\xff\xfe\xc3("  # not UTF-8


class _Reply:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw


def _send(gatehouse: GatehouseServer, method: str, target: str, headers: list[bytes], body: bytes = b"") -> Any:
    """One request written on a socket as it is given (no client library would send these bytes); the parsed
    response."""
    parts = urlsplit(gatehouse.url)
    head = [f"{method} {target} HTTP/1.1".encode(), *headers, b"Connection: close"]
    if body or method == "POST":
        if not any(header.lower().startswith(b"content-type:") for header in headers):
            head.append(b"Content-Type: application/x-www-form-urlencoded")
        head.append(b"Content-Length: %d" % len(body))
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk

    class _Source:
        def makefile(self, *_: Any, **__: Any) -> Any:
            import io

            return io.BytesIO(raw)

    response = http.client.HTTPResponse(_Source())  # type: ignore[arg-type]
    response.begin()
    response.body = response.read()  # type: ignore[attr-defined]
    return response


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    return make_pool(idp, gatehouse.url, "undecodable")


def _authorize_query(pool: OAuthPool) -> str:
    _, challenge = pkce_pair()
    return urlencode(
        {
            "client_id": pool.public_id, "response_type": "code", "redirect_uri": CALLBACK,
            "code_challenge": challenge, "code_challenge_method": "S256",
        }
    )  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/oauth2/authorize?{query}"),
        ("POST", "/oauth2/token"),
        ("POST", "/oauth2/revoke"),
        ("GET", "/oauth2/userInfo"),
        ("GET", "/logout?client_id={client}&logout_uri=" + LOGOUT),
    ],
)
def test_a_host_of_undecodable_bytes_names_no_pool(
    gatehouse: GatehouseServer, pool: OAuthPool, method: str, path: str
) -> None:
    target = path.format(query=_authorize_query(pool), client=pool.public_id)
    body = urlencode({"grant_type": "client_credentials", "token": "x"}).encode() if method == "POST" else b""
    reply = _send(gatehouse, method, target, [b"Host: " + BAD + b".example.com"], body)
    assert reply.status < 500, reply.body
    # The same request on the server's own host is answered as the server's: a Host of such bytes is
    # answered exactly as one that names no pool.
    plain = _send(gatehouse, method, target, [b"Host: nobody.example.com"], body)
    assert (reply.status, reply.body[:200]) == (plain.status, plain.body[:200])


def test_an_sso_cookie_of_undecodable_bytes_is_no_session(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    host = urlsplit(gatehouse.url).netloc.encode()
    cookie = b"Cookie: gatehouse_sso_" + pool.pool_id.encode() + b"=" + BAD
    authorize = _send(gatehouse, "GET", f"/oauth2/authorize?{_authorize_query(pool)}", [b"Host: " + host, cookie])
    # No session: the browser is sent to sign in.
    assert authorize.status == 302 and "/login?" in authorize.getheader("Location"), authorize.body
    logout = _send(
        gatehouse, "GET", f"/logout?client_id={pool.public_id}&logout_uri={LOGOUT}", [b"Host: " + host, cookie]
    )
    assert logout.status == 302 and logout.getheader("Location") == LOGOUT, logout.body


def test_a_csrf_cookie_of_undecodable_bytes_is_replaced(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    browser = Browser(gatehouse.url)
    authorize = browser.get(f"/oauth2/authorize?{_authorize_query(pool)}")
    login = authorize.headers["Location"]
    host = urlsplit(gatehouse.url).netloc.encode()
    cookie = b"Cookie: gatehouse_csrf=" + BAD * 8
    page = _send(gatehouse, "GET", urlsplit(login)._replace(scheme="", netloc="").geturl(), [b"Host: " + host, cookie])
    assert page.status == 200, page.body
    # A new token is set, and the bad cookie is not echoed into the page.
    assert any(value.startswith("gatehouse_csrf=") for value in page.headers.get_all("Set-Cookie") or [])
    assert BAD not in page.body
    form = urlencode({"_csrf": "x" * 30, "username": "nobody", "password": "Passw0rd!"}).encode()
    posted = _send(
        gatehouse, "POST", urlsplit(login)._replace(scheme="", netloc="").geturl(), [b"Host: " + host, cookie], form
    )
    assert posted.status == 403 and b"<html" in posted.body.lower(), posted.body


_TARGET = b"X-Amz-Target: AWSCognitoIdentityProviderService."
_AUTH = (
    b"Authorization: AWS4-HMAC-SHA256 Credential=AKIDGATEHOUSETEST/%s/%s/%s/aws4_request, SignedHeaders=host, "
    b"Signature=abc"
)


@pytest.mark.parametrize(
    ("headers", "content_type", "answer"),
    [
        ([_TARGET + b"Describe\xe9UserPool"], "application/x-amz-json-1.1", b'"__type":"UnknownOperationException"'),
        ([b"X-Amz-Target: AWSCognitoIdentityService.Get\xe9Id"], "application/x-amz-json-1.1", b'"__type":'),
        (
            [_TARGET + b"DescribeUserPool", _AUTH % (b"20260101", b"us-east-\xe9", b"cognito-idp"),
             b"X-Amz-Date: 20260101T000000Z"],
            "application/x-amz-json-1.1", b'"__type":',
        ),
        (
            [_TARGET + b"DescribeUserPool", _AUTH % (b"2026\xe901", b"us-east-1", b"cognito-idp"),
             b"X-Amz-Date: 2026\xe9"],
            "application/x-amz-json-1.1", b'"__type":',
        ),
        (
            [_AUTH % (b"2026\xe901", b"us-east-\xe9", b"iam"), b"X-Amz-Date: 2026\xe9"],
            "application/x-www-form-urlencoded", b"<ErrorResponse",
        ),
    ],
)  # fmt: skip
def test_aws_wire_headers_of_undecodable_bytes_are_a_400(
    gatehouse: GatehouseServer, headers: list[bytes], content_type: str, answer: bytes
) -> None:
    """An error message that quotes the caller's header (an unknown operation, a credential scope) quotes its
    undecodable bytes as U+FFFD: the answer is the wire's own error, never a 500."""
    host = urlsplit(gatehouse.url).netloc.encode()
    body = b"Action=ListRoles&Version=2010-05-08" if "form" in content_type else b"{}"
    reply = _send(gatehouse, "POST", "/", [b"Host: " + host, b"Content-Type: " + content_type.encode(), *headers], body)
    assert 400 <= reply.status < 500 and answer in reply.body.replace(b" ", b""), (reply.status, reply.body)
