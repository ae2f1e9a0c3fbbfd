"""Wire fidelity of the OAuth endpoints, the hosted UI and SAML single logout, against a real server.

* Callback and sign-out URLs outside ASCII: Cognito registers them by botocore's ``RedirectUrlType`` pattern
  (``[\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+``: letters of any script, punctuation, symbols; never a space or a control
  character). Every redirect Gatehouse sends carries such a URL as a URI (RFC 3987 §3.1), while
  ``redirect_uri`` is still compared with the registered string exactly.
* Cognito-style hosted UI links (``/login?client_id=...``) go on to the authorize endpoint on this site, with
  the path and query as sent: never another site, never a header split.
* ``prompt`` as Cognito documents it: none and login act on the hosted UI's session; login, consent and
  select_account are forwarded to the identity provider (a SAML IdP gets ``ForceAuthn`` for login).
* An IdP-initiated SAML LogoutRequest is taken once (SAML Core §3.7.3.1): a replay signs nobody out.
* The Host that names a pool's domain is parsed once, the same way for every endpoint.
"""

from __future__ import annotations

import html
import http.client
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError
from saml2 import BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.time_util import in_a_while
from saml2.xmldsig import SIG_RSA_SHA256

from tests.e2e.federation_support import Flow, corp_details, saml_idp_for
from tests.e2e.oauth_support import CALLBACK, LOGOUT, Browser, make_user, query_of
from tests.fakes.oauth import FakeOIDC
from tests.fakes.saml import FakeSamlIdP, slo_of
from tests.support import GatehouseServer

# Registered as Cognito's pattern admits: non-ASCII letters, and punctuation and symbols no URI may hold as is.
IRI_CALLBACK = 'https://app.example.com/café/"cb"<1>?lang=ü'
# Its URI (RFC 3987 §3.1); the query is re-encoded as application/x-www-form-urlencoded when parameters join it.
IRI_CALLBACK_URI = "https://app.example.com/caf%C3%A9/%22cb%22%3C1%3E?lang=%C3%BC"
IRI_LOGOUT = "https://app.example.com/déconnecté/{x}|^`"
IRI_LOGOUT_URI = "https://app.example.com/d%C3%A9connect%C3%A9/%7Bx%7D%7C%5E%60"
# What a Location header may hold (RFC 3986's characters).
_URI = re.compile(r"[!#$%&'()*+,\-./0-9:;=?@A-Z\[\]_a-z~]+")


def _raw_get(
    gatehouse: GatehouseServer, target: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """GET with the request target exactly as given (no client-side re-quoting)."""
    conn = http.client.HTTPConnection("127.0.0.1", gatehouse.port, timeout=10)
    conn.request("GET", target, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    created = str(idp.create_user_pool(PoolName="fidelity")["UserPool"]["Id"])
    make_user(idp, created, "alice")
    return created


@pytest.fixture(scope="module")
def iri_client(idp: Any, pool_id: str) -> tuple[str, str]:
    created = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="iri",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"],
        CallbackURLs=[IRI_CALLBACK, CALLBACK],
        LogoutURLs=[IRI_LOGOUT, LOGOUT],
        SupportedIdentityProviders=["COGNITO"],
    )["UserPoolClient"]
    return created["ClientId"], created["ClientSecret"]


# --- callback and sign-out URLs outside ASCII ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com/a b",
        "https://app.example.com/a\r\nSet-Cookie: injected=1",
        "https://app.example.com/a\tb",
        "https://app.example.com/\u00a0nbsp",
        "https://app.example.com/a\u2028b",
    ],
)
def test_registration_refuses_what_cognitos_pattern_refuses(
    idp: Any, pool_id: str, iri_client: tuple[str, str], url: str
) -> None:
    """RedirectUrlType admits no separator or control character: Create and Update are refused with
    InvalidParameterException (400), and the client keeps what it had."""
    client_id, _ = iri_client
    base = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": ["openid"],
        "SupportedIdentityProviders": ["COGNITO"],
    }
    attempts = [
        lambda: idp.create_user_pool_client(UserPoolId=pool_id, ClientName="bad", CallbackURLs=[url], **base),
        lambda: idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="bad", CallbackURLs=[CALLBACK], LogoutURLs=[url], **base
        ),
        lambda: idp.update_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id, CallbackURLs=[url, CALLBACK], **base
        ),
        lambda: idp.update_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id, CallbackURLs=[CALLBACK], DefaultRedirectURI=url, **base
        ),
    ]
    names_before = {c["ClientName"] for c in idp.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"]}
    for attempt in attempts:
        with pytest.raises(ClientError) as caught:
            attempt()
        error = caught.value.response
        assert error["Error"]["Code"] == "InvalidParameterException", error
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    assert described["CallbackURLs"] == [IRI_CALLBACK, CALLBACK] and described["LogoutURLs"] == [IRI_LOGOUT, LOGOUT]
    names_after = {c["ClientName"] for c in idp.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"]}
    assert names_after == names_before


def test_code_flow_to_an_iri_callback_redirects_to_its_uri(
    gatehouse: GatehouseServer, iri_client: tuple[str, str]
) -> None:
    """The code comes back to the callback's URI; the token request names the callback as registered."""
    client_id, secret = iri_client
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(client_id, redirect_uri=IRI_CALLBACK, state="s 1"), "alice")
    assert back.status_code == 303, back.text
    location = back.headers["Location"]
    assert _URI.fullmatch(location), location
    assert location.startswith(IRI_CALLBACK_URI + "&code=")
    assert query_of(location)["state"] == "s 1" and query_of(location)["lang"] == "ü"
    token_url = f"{gatehouse.url}/oauth2/token"
    form = {"grant_type": "authorization_code", "code": query_of(location)["code"], "redirect_uri": IRI_CALLBACK}
    tokens = requests.post(token_url, data=form, auth=(client_id, secret), timeout=10)
    assert tokens.status_code == 200 and "access_token" in tokens.json(), tokens.text
    # Single sign-on, and an answer in the fragment: the same URI, the fragment after its query.
    silent = browser.get(browser.authorize_url(client_id, redirect_uri=IRI_CALLBACK, response_mode="fragment"))
    assert silent.status_code == 302 and _URI.fullmatch(silent.headers["Location"])
    assert silent.headers["Location"].startswith(IRI_CALLBACK_URI + "#code=")
    # The URI form is not what was registered: exact comparison (RFC 9700 §4.1.3) at both endpoints.
    again = browser.get(browser.authorize_url(client_id, redirect_uri=IRI_CALLBACK, prompt="none"))
    code = query_of(again.headers["Location"])["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": IRI_CALLBACK_URI}
    refused = requests.post(token_url, data=form, auth=(client_id, secret), timeout=10)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    page = browser.get(browser.authorize_url(client_id, redirect_uri=IRI_CALLBACK_URI))
    assert page.status_code == 400 and "Location" not in page.headers


def test_error_redirects_to_an_iri_callback_are_uris(gatehouse: GatehouseServer, iri_client: tuple[str, str]) -> None:
    client_id, _ = iri_client
    browser = Browser(gatehouse.url)
    for params in ({"response_type": "token id_token"}, {"scope": "phone"}, {"prompt": "none"}):
        response = browser.get(browser.authorize_url(client_id, redirect_uri=IRI_CALLBACK, state="é", **params))
        assert response.status_code == 302, (params, response.text)
        location = response.headers["Location"]
        assert _URI.fullmatch(location) and location.startswith(IRI_CALLBACK_URI + "&error="), location
        assert query_of(location)["state"] == "é"


def test_logout_to_an_iri_redirects_to_its_uri(gatehouse: GatehouseServer, iri_client: tuple[str, str]) -> None:
    client_id, _ = iri_client
    logout = requests.get(
        f"{gatehouse.url}/logout?{urlencode({'client_id': client_id, 'logout_uri': IRI_LOGOUT})}",
        allow_redirects=False,
        timeout=10,
    )
    assert logout.status_code == 302 and logout.headers["Location"] == IRI_LOGOUT_URI
    # OpenID Connect RP-Initiated Logout: the same, with state.
    query = urlencode({"client_id": client_id, "post_logout_redirect_uri": IRI_LOGOUT, "state": "à bientôt"})
    ended = requests.get(f"{gatehouse.url}/logout?{query}", allow_redirects=False, timeout=10)
    assert ended.status_code == 302 and ended.headers["Location"] == IRI_LOGOUT_URI + "?state=%C3%A0+bient%C3%B4t"
    # Cognito's second form: back to a new sign-in at the IRI callback.
    query = urlencode({"client_id": client_id, "redirect_uri": IRI_CALLBACK, "response_type": "code"})
    relogin = requests.get(f"{gatehouse.url}/logout?{query}", allow_redirects=False, timeout=10)
    assert relogin.status_code == 302 and _URI.fullmatch(relogin.headers["Location"])
    # The URI form was not registered: a page, no redirect.
    query = urlencode({"client_id": client_id, "logout_uri": IRI_LOGOUT_URI})
    page = requests.get(f"{gatehouse.url}/logout?{query}", allow_redirects=False, timeout=10)
    assert page.status_code == 400 and "Location" not in page.headers


# --- Cognito-style hosted UI links -----------------------------------------------------------------------


@pytest.mark.parametrize("page", ["login", "signup", "forgotPassword"])
def test_cognito_style_links_stay_on_this_site(gatehouse: GatehouseServer, page: str) -> None:
    """``/{pool}/login?client_id=...`` goes on to ``/{pool}/oauth2/authorize`` with the path and query as sent:
    a pool segment of ``%2Fevil.example`` must not become ``//evil.example`` (another site), nor ``%5C`` a
    backslash browsers read as one; an escaped CR/LF must not split the header."""
    for segment in ("%2Fevil.example", "%5Cevil.example", "%2F%2Fevil.example"):
        response = _raw_get(gatehouse, f"/{segment}/{page}?client_id=abc")
        assert response.status == 302
        location = response.getheader("Location") or ""
        assert location == f"/{segment}/oauth2/authorize?client_id=abc", location
    injected = _raw_get(gatehouse, f"/{page}?client_id=abc&state=%0d%0aSet-Cookie:%20injected%3D1")
    assert injected.status == 302
    assert injected.getheader("Location") == "/oauth2/authorize?client_id=abc&state=%0d%0aSet-Cookie:%20injected%3D1"
    assert not any("injected" in value for name, value in injected.getheaders() if name.lower() == "set-cookie")
    accented = _raw_get(gatehouse, f"/{page}?client_id=abc&state=caf%C3%A9")
    assert (
        accented.status == 302 and accented.getheader("Location") == "/oauth2/authorize?client_id=abc&state=caf%C3%A9"
    )


def test_a_cognito_style_link_to_an_iri_callback_signs_in(
    gatehouse: GatehouseServer, iri_client: tuple[str, str]
) -> None:
    client_id, _ = iri_client
    browser = Browser(gatehouse.url)
    query = urlencode({"client_id": client_id, "response_type": "code", "redirect_uri": IRI_CALLBACK, "state": "x"})
    page = browser.follow(browser.get(f"/login?{query}"))
    assert page.status_code == 200 and 'name="password"' in page.text
    back = browser.submit(page, {"username": "alice", "password": "Correct-Horse-9"})
    assert back.status_code == 303 and back.headers["Location"].startswith(IRI_CALLBACK_URI + "&code=")


# --- prompt -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        server.user = {"sub": "emp-9", "email": "emp9@corp.example"}
        yield server


@pytest.fixture(scope="module")
def saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[FakeSamlIdP]:
    with saml_idp_for(gatehouse, idp, pool_id) as server:
        yield server


@pytest.fixture(scope="module")
def fed_client(idp: Any, pool_id: str, corp: FakeOIDC, saml_idp: FakeSamlIdP) -> str:
    idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Corp",
        ProviderType="OIDC",
        ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email"},
    )
    idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="CorpSAML",
        ProviderType="SAML",
        ProviderDetails={
            "MetadataURL": f"{saml_idp.url}/metadata",
            "RequestSigningAlgorithm": "rsa-sha256",
            "IDPSignout": "true",
        },
        AttributeMapping={"email": "email"},
    )
    return str(
        idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName="fed",
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email", "profile"],
            CallbackURLs=[CALLBACK],
            LogoutURLs=[LOGOUT],
            SupportedIdentityProviders=["COGNITO", "Corp", "CorpSAML"],
        )["UserPoolClient"]["ClientId"]
    )


def test_discovery_names_the_prompt_values_taken(gatehouse: GatehouseServer, pool_id: str) -> None:
    document = requests.get(f"{gatehouse.url}/{pool_id}/.well-known/openid-configuration", timeout=10).json()
    assert set(document["prompt_values_supported"]) == {"none", "login", "consent", "select_account"}


def test_consent_and_select_account_do_not_change_local_sign_in(
    gatehouse: GatehouseServer, iri_client: tuple[str, str]
) -> None:
    """Cognito: consent and select_account have no effect on local sign-in (a session answers at once);
    login asks for the password again, whatever it is combined with."""
    client_id, _ = iri_client
    browser = Browser(gatehouse.url)
    assert browser.sign_in(browser.authorize_url(client_id), "alice").status_code == 303
    for prompt in ("consent", "select_account", "consent select_account"):
        answered = browser.get(browser.authorize_url(client_id, prompt=prompt))
        assert answered.status_code == 302 and "code" in query_of(answered.headers["Location"]), prompt
    for prompt in ("login", "login consent", "select_account login"):
        asked = browser.get(browser.authorize_url(client_id, prompt=prompt))
        assert asked.status_code == 302 and "/login?rid=" in asked.headers["Location"], prompt


def _upstream_query(response: requests.Response, corp: FakeOIDC) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(corp.url), location
    return parse_qs(urlsplit(location).query)


def test_prompt_is_forwarded_to_an_oidc_provider(gatehouse: GatehouseServer, fed_client: str, corp: FakeOIDC) -> None:
    """Cognito forwards every prompt value but none to the IdP: named by identity_provider, or chosen on the
    sign-in page."""
    flow = Flow(gatehouse, fed_client)
    for prompt in ("login", "consent", "select_account", "login consent"):
        started = flow.http.get(flow.authorize_url(identity_provider="Corp", prompt=prompt), allow_redirects=False)
        assert _upstream_query(started, corp)["prompt"] == [prompt]
    plain = flow.http.get(flow.authorize_url(identity_provider="Corp"), allow_redirects=False)
    assert "prompt" not in _upstream_query(plain, corp)
    # From the sign-in page's button: the request's prompt goes along.
    page = Browser(gatehouse.url)
    login = page.follow(page.get(flow.authorize_url(prompt="select_account login")))
    assert login.status_code == 200
    links = [html.unescape(href) for href in re.findall(r'href="([^"]+)"', login.text)]
    buttons = [link for link in links if query_of(link).get("identity_provider") == "Corp"]
    assert len(buttons) == 1, login.text
    button = buttons[0]
    assert query_of(button)["prompt"] == "select_account login"
    started = page.get(button)
    assert _upstream_query(started, corp)["prompt"] == ["select_account login"]
    # The whole round trip still completes with a forwarded prompt.
    done = Flow(gatehouse, fed_client).run(flow.authorize_url(identity_provider="Corp", prompt="login"))
    assert done.status_code == 303 and "code" in query_of(done.headers["Location"]), done.text


def test_prompt_login_asks_a_saml_idp_to_force_authentication(
    gatehouse: GatehouseServer, fed_client: str, saml_idp: FakeSamlIdP
) -> None:
    """SAML has no prompt: login becomes ForceAuthn="true" (SAML Core §3.4.1); other values ask nothing."""
    for prompt, forced in (("login", "true"), ("consent", None), (None, None)):
        flow = Flow(gatehouse, fed_client)
        extra = {"identity_provider": "CorpSAML", **({"prompt": prompt} if prompt else {})}
        done = flow.run(flow.authorize_url(**extra))
        assert done.status_code == 303 and "code" in query_of(done.headers["Location"]), done.text
        assert saml_idp.authn_requests[-1]["force_authn"] == forced, prompt


# --- SAML: an IdP-initiated LogoutRequest is taken once --------------------------------------------------


def _logout_request(
    saml_idp: FakeSamlIdP, name_id: str, *, not_on_or_after: bool = True, issue_instant: str | None = None
) -> str:
    """A LogoutRequest from the IdP (HTTP-Redirect, query-signed), optionally without NotOnOrAfter or with an
    IssueInstant of our choosing."""
    destination = slo_of(saml_idp.acs_url)
    _, request = saml_idp.server.create_logout_request(
        destination,
        saml_idp.sp_entity_id,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id),
        sign=False,
        expire=in_a_while(minutes=5) if not_on_or_after else None,
    )
    if issue_instant is not None:
        request.issue_instant = issue_instant
    info = saml_idp.server.apply_binding(
        BINDING_HTTP_REDIRECT, str(request), destination, "idp-relay", sign=True, sigalg=SIG_RSA_SHA256
    )
    return str(dict(info["headers"])["Location"])


def _saml_signed_in(gatehouse: GatehouseServer, client_id: str, flow: Flow | None = None) -> Flow:
    flow = flow or Flow(gatehouse, client_id)
    done = flow.run(flow.authorize_url(identity_provider="CorpSAML"))
    assert done.status_code == 303 and "code" in query_of(done.headers["Location"]), done.text
    assert _has_session(flow)
    return flow


def _has_session(flow: Flow) -> bool:
    response = flow.http.get(flow.authorize_url(prompt="none"), allow_redirects=False)
    return "code" in query_of(response.headers.get("Location", ""))


@pytest.mark.parametrize("not_on_or_after", [True, False])
def test_an_idp_logout_request_is_taken_once(
    gatehouse: GatehouseServer, fed_client: str, saml_idp: FakeSamlIdP, not_on_or_after: bool
) -> None:
    flow = _saml_signed_in(gatehouse, fed_client)
    url = _logout_request(saml_idp, "ann@corp.example", not_on_or_after=not_on_or_after)
    first = flow.http.get(url, allow_redirects=False)
    assert first.status_code == 302 and first.headers["Location"].startswith(f"{saml_idp.url}/slo?")
    assert not _has_session(flow)
    # Signed in again; the same LogoutRequest once more signs nobody out.
    _saml_signed_in(gatehouse, fed_client, flow)
    log_start = len(gatehouse.log_text())
    replay = flow.http.get(url, allow_redirects=False)
    assert replay.status_code == 400 and "text/html" in replay.headers["Content-Type"], replay.text
    assert "Location" not in replay.headers and "Traceback" not in replay.text
    assert _has_session(flow)
    assert '"reason":"saml_replay"' in gatehouse.log_text()[log_start:]
    # A fresh request from the IdP still works.
    fresh = flow.http.get(_logout_request(saml_idp, "ann@corp.example"), allow_redirects=False)
    assert fresh.status_code == 302 and not _has_session(flow)


def test_an_old_idp_logout_request_is_refused(
    gatehouse: GatehouseServer, fed_client: str, saml_idp: FakeSamlIdP
) -> None:
    """Its ID is remembered only for a bounded time, so a request issued longer ago than that is refused even
    though its NotOnOrAfter is still ahead; so is one issued in the future."""
    flow = _saml_signed_in(gatehouse, fed_client)
    for offset in (-3600, 3600):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset))
        log_start = len(gatehouse.log_text())
        url = _logout_request(saml_idp, "ann@corp.example", issue_instant=stamp)
        refused = flow.http.get(url, allow_redirects=False)
        assert refused.status_code == 400 and "Location" not in refused.headers, offset
        assert '"reason":"saml_expired"' in gatehouse.log_text()[log_start:]
        assert _has_session(flow)


# --- one host parser --------------------------------------------------------------------------------------


def test_a_custom_domain_is_one_pool_whatever_form_the_host_takes(
    gatehouse: GatehouseServer, idp: Any, iri_client: tuple[str, str]
) -> None:
    """A pool's custom domain answers only for its own clients at every endpoint, also when the Host names it
    with a final dot or in capitals (the same name, RFC 1034 §3.1); the server's own address names no pool."""
    other = idp.create_user_pool(PoolName="fidelity-other")["UserPool"]["Id"]
    idp.create_user_pool_domain(
        UserPoolId=other,
        Domain="login.fidelity-other.example",
        CustomDomainConfig={"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/9"},
    )
    client_id, secret = iri_client
    query = urlencode({"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK})
    for host in ("login.fidelity-other.example", "login.fidelity-other.example.", "LOGIN.Fidelity-Other.example:443"):
        page = _raw_get(gatehouse, f"/oauth2/authorize?{query}", headers={"Host": host})
        assert page.status == 400 and page.getheader("Location") is None, host
        token = requests.post(
            f"{gatehouse.url}/oauth2/token",
            data={"grant_type": "authorization_code", "code": "x", "redirect_uri": CALLBACK},
            auth=(client_id, secret),
            headers={"Host": host},
            timeout=10,
        )
        assert token.status_code == 401 and token.json()["error"] == "invalid_client", (host, token.text)
    for host in (f"127.0.0.1:{gatehouse.port}", f"localhost:{gatehouse.port}"):
        own = _raw_get(gatehouse, f"/oauth2/authorize?{query}", headers={"Host": host})
        assert own.status == 302 and "/login?rid=" in (own.getheader("Location") or ""), host


# --- form bodies that are not the form they claim to be --------------------------------------------------

_HOSTILE_BODIES = [
    (b'--x\r\nContent-Disposition: form-data; name="SAMLRequest"\r\n\r\nabc', "multipart/form-data; boundary=x"),
    (b"--x\r\nbroken", "multipart/form-data"),
    (b"\xff\xfe=\xff", "application/x-www-form-urlencoded; charset=utf-8"),
    (b"SAMLRequest=abc&grant_type=x&token=y", "application/x-www-form-urlencoded; charset=no-such-codec"),
]


@pytest.mark.parametrize(
    "path",
    [
        "/saml2/logout",
        "/saml2/idpresponse",
        "/oauth2/idpresponse",
        "/oauth2/authorize",
        "/oauth2/token",
        "/oauth2/revoke",
        "/login?rid=abc",
        "/gatehouse/feedback",
    ],
)
def test_malformed_form_bodies_get_an_answer_not_a_500(gatehouse: GatehouseServer, path: str) -> None:
    """A truncated multipart body, bytes outside the declared charset, or a charset no codec has: the endpoint
    answers as for a form without its parameters (an HTML page, or RFC 6749 §5.2's JSON), never a 500."""
    for body, content_type in _HOSTILE_BODIES:
        response = requests.post(
            f"{gatehouse.url}{path}",
            data=body,
            headers={"Content-Type": content_type},
            allow_redirects=False,
            timeout=10,
        )
        assert 400 <= response.status_code < 500, (path, content_type, response.status_code, response.text[:200])
        assert "Traceback" not in response.text
        if path in ("/oauth2/token", "/oauth2/revoke"):
            assert response.json()["error"] in ("invalid_request", "invalid_client"), response.text
        else:
            assert "text/html" in response.headers["Content-Type"], (path, response.headers)
