"""Property-based fuzzing of Gatehouse's HTTP surfaces other than the Cognito JSON wire, over real HTTP.

The OAuth 2.0 endpoints, the hosted pages, the upstream identity providers' callbacks, the identity issuer's
discovery, the credential verifier and the AWS query wire (IAM, STS) each get requests built from the names
their handlers read, filled with real values (a registered client, its callback, a real authorization request
id, a CSRF token from a real page, real tokens), hostile text (huge, control characters, NUL, CRLF, Unicode,
HTML and script, traversal, other schemes), wrong encodings and random bytes, sent as query strings, form bodies
and headers (Authorization, Cookie, Host). Whatever arrives, the answer must be a deliberate one: below 500,
never a stack trace, and the server log must hold no unhandled error. A bystander user must still sign in
through the hosted pages afterwards, with the same client settings as before.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, OAuthPool, make_pool, make_user, pkce_pair, query_of
from tests.support import GatehouseServer

BYSTANDER: Final = "bystander"
EXAMPLES: Final = 40

# What each handler reads (the names its code looks up), so generated requests reach past the first check.
OAUTH_NAMES: Final = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "identity_provider",
    "idp_identifier",
    "login_hint",
    "response_mode",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "token",
    "token_type_hint",
    "logout_uri",
    # RFC 8693's token exchange parameters.
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "audience",
    "resource",
)
PAGE_NAMES: Final = (
    "rid",
    "_csrf",
    "username",
    "password",
    "new_password",
    "code",
    "email",
    "name",
    "phone_number",
    "session",
    "answer",
    "client_id",
    "redirect_uri",
    "response_type",
    "lang",
)
CALLBACK_NAMES: Final = (
    "state",
    "code",
    "error",
    "error_description",
    "id_token",
    "user",
    "SAMLResponse",
    "RelayState",
)
QUERY_NAMES: Final = (
    "Action",
    "Version",
    "RoleArn",
    "RoleName",
    "RoleSessionName",
    "WebIdentityToken",
    "DurationSeconds",
    "Policy",
    "PolicyName",
    "PolicyDocument",
    "AssumeRolePolicyDocument",
    "Url",
    "ClientIDList.member.1",
    "ThumbprintList.member.1",
    "SAMLAssertion",
    "PrincipalArn",
    "Tags.member.1.Key",
    "Tags.member.1.Value",
    "Marker",
    "MaxItems",
)
ACTIONS: Final = (
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "GetCallerIdentity",
    "AssumeRole",
    "CreateRole",
    "GetRole",
    "ListRoles",
    "PutRolePolicy",
    "CreateOpenIDConnectProvider",
    "NoSuchAction",
)
HOSTILE: Final = (
    "",
    " ",
    "\x00",
    "%00",
    "\r\nSet-Cookie: injected=1",
    "../../etc/passwd",
    "javascript:alert(1)",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "https://evil.example.com/callback",
    "https://app.example.com/callback/../../evil",
    "https://app.example.com.evil.example.com/callback",
    "HTTPS://APP.EXAMPLE.COM/callback",
    "https://app.example.com/callback?x=1",
    "https://app.example.com/callback#frag",
    "plain",
    "S256",
    "none",
    "login",
    "openid email profile aws.cognito.signin.user.admin unknown/scope",
    "-1",
    "1e400",
    "99999999999999999999999",
    "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "\u202eevil",
    "a" * 5000,
    "é" * 3000,
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
)


@dataclass
class Fixture:
    server: GatehouseServer
    pool: OAuthPool
    request_id: str
    csrf: str
    cookies: str
    access_token: str
    id_token: str
    refresh_token: str
    client_before: dict[str, Any]


@pytest.fixture(scope="module")
def world(gatehouse: GatehouseServer, idp: Any) -> Fixture:
    pool = make_pool(idp, gatehouse.url, "fuzz-http")
    make_user(idp, pool.pool_id, BYSTANDER)
    make_user(idp, pool.pool_id, "fuzzed")
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    start = browser.get(
        browser.authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256", state="s")
    )
    assert start.status_code == 302, start.text
    request_id = query_of(start.headers["Location"])["rid"]
    page = browser.get(start.headers["Location"])
    csrf = Browser.form_fields(page).get("_csrf", "")
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies)
    # Tokens the way a web app gets them: the code flow through the hosted page, in another browser.
    app = Browser(gatehouse.url)
    verifier, challenge = pkce_pair()
    back = app.sign_in(
        app.authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256", scope="openid"),
        "fuzzed",
    )
    code = query_of(back.headers["Location"])["code"]
    exchanged = app.post(
        "/oauth2/token",
        {
            "grant_type": "authorization_code",
            "client_id": pool.public_id,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
    )
    assert exchanged.status_code == 200, exchanged.text
    result = {
        "AccessToken": exchanged.json()["access_token"],
        "IdToken": exchanged.json()["id_token"],
        "RefreshToken": exchanged.json()["refresh_token"],
    }
    before = idp.describe_user_pool_client(UserPoolId=pool.pool_id, ClientId=pool.secret_id)["UserPoolClient"]
    return Fixture(
        gatehouse,
        pool,
        request_id,
        csrf,
        cookies,
        result["AccessToken"],
        result["IdToken"],
        result["RefreshToken"],
        before,
    )


@pytest.fixture(scope="module")
def http() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=30))
    yield manager
    manager.clear()


def values(world: Fixture) -> st.SearchStrategy[str]:
    real = [
        world.pool.public_id,
        world.pool.secret_id,
        world.pool.secret,
        world.pool.pool_id,
        CALLBACK,
        world.request_id,
        world.csrf,
        world.access_token,
        world.id_token,
        world.refresh_token,
        BYSTANDER,
        PASSWORD,
        "code",
        "token",
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "urn:ietf:params:oauth:token-type:access_token",
        "urn:ietf:params:oauth:token-type:id_token",
        "urn:ietf:params:oauth:token-type:saml2",
        "openid",
        "COGNITO",
        "Google",
    ]
    return st.one_of(
        st.sampled_from(real),
        st.sampled_from(HOSTILE),
        st.text(max_size=64),
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), min_size=1, max_size=16),
    )


def params(names: tuple[str, ...], world: Fixture) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Pairs, so names may repeat (RFC 6749 says a repeated parameter is an error, not a crash)."""
    name = st.one_of(st.sampled_from(names), st.text(min_size=1, max_size=12))
    return st.lists(st.tuples(name, values(world)), max_size=12)


def headers(world: Fixture) -> st.SearchStrategy[dict[str, str]]:
    basic = base64.b64encode(f"{world.pool.secret_id}:{world.pool.secret}".encode()).decode()
    authorization = st.sampled_from(
        [
            f"Basic {basic}",
            "Basic !!!not-base64",
            f"Basic {base64.b64encode(b'only-an-id').decode()}",
            f"Bearer {world.access_token}",
            f"Bearer {world.id_token}",
            "Bearer ",
            "Negotiate abc",
            "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=00",
        ]
    )
    cookie = st.sampled_from([world.cookies, "gatehouse_sso_x=garbage", f"gatehouse_sso_{world.pool.pool_id}=AAAA", ""])
    host = st.sampled_from(["myapp.auth.us-east-1.amazoncognito.com", "evil.example.com", "[::1]", "a" * 300])
    return st.fixed_dictionaries(
        {},
        optional={"Authorization": authorization, "Cookie": cookie, "Host": host, "Origin": st.sampled_from(HOSTILE)},
    )


def _safe_headers(raw: dict[str, str]) -> dict[str, str]:
    # urllib3 itself refuses header values with CR/LF or NUL; those are covered as parameter values instead.
    return {k: v for k, v in raw.items() if not re.search(r"[\r\n\x00]", v) and v.isascii()}


def check(world: Fixture, answer: urllib3.BaseHTTPResponse, what: str) -> None:
    body = answer.data.decode("utf-8", "replace")
    assert answer.status < 500, f"{what}: {answer.status} {body[:500]}"
    assert "Traceback" not in body and 'File "' not in body, f"{what}: {body[:500]}"
    location = answer.headers.get("Location", "")
    assert "\r" not in location and "\n" not in location, f"{what}: {location!r}"
    assert "injected" not in answer.headers.get("Set-Cookie", ""), what


def send(
    http: urllib3.PoolManager,
    world: Fixture,
    method: str,
    path: str,
    pairs: list[tuple[str, str]],
    extra: dict[str, str],
    *,
    as_form: bool,
) -> None:
    encoded = urlencode([(k, v) for k, v in pairs], encoding="utf-8", errors="surrogatepass")
    url = f"{world.server.url}{path}"
    head = _safe_headers(extra)
    if method == "GET" or not as_form:
        answer = http.request(method, f"{url}?{encoded}", headers=head, redirect=False)
    else:
        head["Content-Type"] = "application/x-www-form-urlencoded"
        answer = http.request(method, url, body=encoded.encode("utf-8", "surrogatepass"), headers=head, redirect=False)
    check(world, answer, f"{method} {path} {pairs!r} {head!r}")


FUZZ_SETTINGS: Final = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

OAUTH_ROUTES: Final = (
    ("GET", "/oauth2/authorize"),
    ("POST", "/oauth2/authorize"),
    ("POST", "/oauth2/token"),
    ("GET", "/oauth2/userInfo"),
    ("POST", "/oauth2/userInfo"),
    ("POST", "/oauth2/revoke"),
    ("GET", "/logout"),
    ("POST", "/logout"),
)
PAGE_ROUTES: Final = (
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/login/challenge"),
    ("GET", "/signup"),
    ("POST", "/signup"),
    ("GET", "/confirm"),
    ("POST", "/confirm"),
    ("GET", "/forgotPassword"),
    ("POST", "/forgotPassword"),
    ("GET", "/confirmForgotPassword"),
    ("POST", "/confirmForgotPassword"),
)
CALLBACK_ROUTES: Final = (
    ("GET", "/oauth2/idpresponse"),
    ("POST", "/oauth2/idpresponse"),
    ("POST", "/saml2/idpresponse"),
)


@pytest.mark.parametrize(("method", "path"), OAUTH_ROUTES)
@pytest.mark.parametrize("prefixed", [False, True], ids=["bare", "pool-path"])
def test_oauth_endpoints(world: Fixture, http: urllib3.PoolManager, method: str, path: str, prefixed: bool) -> None:
    prefix = f"/{world.pool.pool_id}" if prefixed else ""

    @FUZZ_SETTINGS
    @given(pairs=params(OAUTH_NAMES, world), extra=headers(world), as_form=st.booleans())
    def run(pairs: list[tuple[str, str]], extra: dict[str, str], as_form: bool) -> None:
        send(http, world, method, prefix + path, pairs, extra, as_form=as_form)

    run()


@pytest.mark.parametrize(("method", "path"), PAGE_ROUTES)
def test_hosted_pages(world: Fixture, http: urllib3.PoolManager, method: str, path: str) -> None:
    @FUZZ_SETTINGS
    @given(pairs=params(PAGE_NAMES, world), extra=headers(world), as_form=st.booleans())
    def run(pairs: list[tuple[str, str]], extra: dict[str, str], as_form: bool) -> None:
        send(http, world, method, path, pairs, extra, as_form=as_form)

    run()


@pytest.mark.parametrize(("method", "path"), CALLBACK_ROUTES)
def test_identity_provider_callbacks(world: Fixture, http: urllib3.PoolManager, method: str, path: str) -> None:
    @FUZZ_SETTINGS
    @given(pairs=params(CALLBACK_NAMES, world), extra=headers(world), as_form=st.booleans())
    def run(pairs: list[tuple[str, str]], extra: dict[str, str], as_form: bool) -> None:
        send(http, world, method, path, pairs, extra, as_form=as_form)

    run()


def test_aws_query_wire(world: Fixture, http: urllib3.PoolManager) -> None:
    """IAM and STS on POST /: random actions and parameters, unsigned or with a broken signature."""

    @FUZZ_SETTINGS
    @given(
        action=st.one_of(st.sampled_from(ACTIONS), st.text(max_size=20)),
        pairs=params(QUERY_NAMES, world),
        extra=headers(world),
    )
    def run(action: str, pairs: list[tuple[str, str]], extra: dict[str, str]) -> None:
        send(http, world, "POST", "/", [("Action", action), ("Version", "2011-06-15"), *pairs], extra, as_form=True)

    run()


@FUZZ_SETTINGS
@given(
    body=st.binary(max_size=2048),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "application/json", "text/plain", "multipart/form-data; boundary=x", ""]
    ),
)
def test_raw_bodies_everywhere(world: Fixture, http: urllib3.PoolManager, body: bytes, content_type: str) -> None:
    for _, path in [r for r in (*OAUTH_ROUTES, *PAGE_ROUTES, *CALLBACK_ROUTES) if r[0] == "POST"]:
        head = {"Content-Type": content_type} if content_type else {}
        answer = http.request("POST", f"{world.server.url}{path}", body=body, headers=head, redirect=False)
        check(world, answer, f"POST {path} raw {body[:80]!r} {content_type}")
    for path in ("/", "/gatehouse/verify"):
        answer = http.request(
            "POST", f"{world.server.url}{path}", body=body, headers={"Content-Type": content_type}, redirect=False
        )
        check(world, answer, f"POST {path} raw {body[:80]!r}")


def test_oversized_bodies_are_refused_cleanly(world: Fixture, http: urllib3.PoolManager) -> None:
    big = b"a=" + b"x" * (3 * 1024 * 1024)
    for path in ("/oauth2/token", "/login", "/saml2/idpresponse", "/"):
        answer = http.request(
            "POST",
            f"{world.server.url}{path}",
            body=big,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            redirect=False,
        )
        check(world, answer, f"POST {path} 3 MiB")
        assert answer.status in (400, 413), (path, answer.status)


def test_afterwards_the_bystander_signs_in_and_nothing_changed(world: Fixture, idp: Any) -> None:
    browser = Browser(world.server.url)
    verifier, challenge = pkce_pair()
    back = browser.sign_in(
        browser.authorize_url(world.pool.public_id, code_challenge=challenge, code_challenge_method="S256"), BYSTANDER
    )
    assert back.status_code in (302, 303) and back.headers["Location"].startswith(CALLBACK)
    code = query_of(back.headers["Location"])["code"]
    tokens = browser.post(
        "/oauth2/token",
        {
            "grant_type": "authorization_code",
            "client_id": world.pool.public_id,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200 and tokens.json()["id_token"]
    after = idp.describe_user_pool_client(UserPoolId=world.pool.pool_id, ClientId=world.pool.secret_id)
    assert after["UserPoolClient"] == world.client_before
    log = world.server.log_text().splitlines()
    assert [line for line in log if '"level": "error"' in line or '"level":"error"' in line] == []
    assert [line for line in log if "Traceback" in line or "unhandled" in line] == []
