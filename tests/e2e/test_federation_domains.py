"""Federated sign-in on a pool domain, over HTTP: a sign-in started on a custom domain or a prefix domain sends
the upstream back to that domain (Cognito's ``https://<your domain>/oauth2/idpresponse`` and
``https://<your domain>/saml2/idpresponse``), where the browser cookie is, and the code exchange sends the same
redirect URI; a callback carried to another host is refused. Gatehouse's own host keeps ``{public_url}``.

Gatehouse runs behind an https public URL; the test browser reaches every host it serves (its own and the
pools' domains) through a stand-in TLS front: https URLs of those hosts go to the server over plain HTTP with
the URL's host as Host, so cookies are kept per host, Secure and ``__Host-`` included, as a browser keeps them.
"""

from __future__ import annotations

import base64
import html
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import jwt
import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter

from tests.e2e.federation_support import corp_details, usernames
from tests.e2e.oauth_support import CALLBACK, LOGOUT, pkce_pair, query_of
from tests.fakes.oauth import FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.providers.conftest import form_fields
from tests.support import GatehouseServer

OWN = "id.gatehouse.test"
CUSTOM = "sso.corp-login.test"
PREFIX = "acme-login"
PREFIX_HOST = f"{PREFIX}.auth.us-east-1.amazoncognito.com"
OTHER = "login.other-pool.test"
HOSTS = (OWN, CUSTOM, PREFIX_HOST, OTHER)


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    data_dir: Path = tmp_path_factory.mktemp("gatehouse") / "data"
    server = GatehouseServer(data_dir, extra_args=["--public-url", f"https://{OWN}"])
    server.start()
    yield server
    server.stop()


class _TlsFront(HTTPAdapter):
    """https://<a host Gatehouse serves>/... sent to the test server over plain HTTP, Host the URL's host."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._server = urllib3.HTTPConnectionPool("127.0.0.1", port)

    def get_connection_with_tls_context(self, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        return self._server

    def add_headers(self, request: Any, **kwargs: Any) -> None:
        request.headers["Host"] = urlsplit(request.url).netloc


class Browser:
    """A browser without scripts: follows redirects (relative ones too) and submits auto-posting forms."""

    def __init__(self, gatehouse: GatehouseServer, client_id: str) -> None:
        self.client_id = client_id
        self.http = requests.Session()
        front = _TlsFront(gatehouse.port)
        for host in HOSTS:
            self.http.mount(f"https://{host}/", front)
        self.verifier, self.challenge = pkce_pair()

    def authorize_url(self, host: str, **extra: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid email",
            "state": "app-state",
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return f"https://{host}/oauth2/authorize?{urlencode(params)}"

    def run(self, url: str, *, stop_at: str | None = None) -> requests.Response:
        """Follow the round trip until it leaves for the client's redirect URI, reaches a URL starting with
        ``stop_at`` (returned unfollowed), or stops on a page."""
        response = self.http.get(url, allow_redirects=False)
        for _ in range(12):
            if response.is_redirect:
                location = urljoin(response.url, response.headers["Location"])
                if location.startswith(CALLBACK) or (stop_at is not None and location.startswith(stop_at)):
                    return response
                response = self.http.get(location, allow_redirects=False)
                continue
            fields = form_fields(response.text)
            action = re.search(r'action="([^"]+)"', response.text)
            if response.status_code != 200 or not fields or action is None:
                return response
            target = urljoin(response.url, html.unescape(action.group(1)))
            response = self.http.post(target, data=fields, allow_redirects=False)
        raise AssertionError("too many steps")

    def claims(self, host: str, pool_id: str, response: requests.Response) -> dict[str, Any]:
        """Redeem the code the round trip ended with at ``host``; the ID token's verified claims."""
        assert response.status_code in (302, 303), response.text
        answer = query_of(response.headers["Location"])
        assert answer["state"] == "app-state" and "code" in answer, answer
        reply = self.http.post(
            f"https://{host}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "client_id": self.client_id,
                "code": answer["code"],
                "redirect_uri": CALLBACK,
                "code_verifier": self.verifier,
            },
        )
        assert reply.status_code == 200, reply.text
        token = reply.json()["id_token"]
        keys = jwt.PyJWKSet.from_dict(self.http.get(f"https://{OWN}/{pool_id}/.well-known/jwks.json").json())
        key = next(k for k in keys.keys if k.key_id == jwt.get_unverified_header(token)["kid"])
        return dict(
            jwt.decode(token, key.key, algorithms=["RS256"], audience=self.client_id, issuer=f"https://{OWN}/{pool_id}")
        )


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        server.user = {"sub": "emp-7", "email": "emp7@corp.example"}
        yield server


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    pool = str(idp.create_user_pool(PoolName="federated-domains")["UserPool"]["Id"])
    idp.create_user_pool_domain(
        UserPoolId=pool, Domain=CUSTOM, CustomDomainConfig={"CertificateArn": "arn:aws:acm:us-east-1:0:certificate/1"}
    )
    other = str(idp.create_user_pool(PoolName="another-pool")["UserPool"]["Id"])
    idp.create_user_pool_domain(
        UserPoolId=other, Domain=OTHER, CustomDomainConfig={"CertificateArn": "arn:aws:acm:us-east-1:0:certificate/2"}
    )
    return pool


@pytest.fixture(scope="module")
def prefix_pool_id(idp: Any) -> str:
    pool = str(idp.create_user_pool(PoolName="federated-prefix-domain")["UserPool"]["Id"])
    idp.create_user_pool_domain(UserPoolId=pool, Domain=PREFIX)
    return pool


def _client(idp: Any, pool_id: str, providers: list[str]) -> str:
    created = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="spa",
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["COGNITO", *providers],
    )
    return str(created["UserPoolClient"]["ClientId"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, corp: FakeOIDC) -> str:
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="Corp", ProviderType="OIDC", ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email"}, IdpIdentifiers=["corp.example"],
    )  # fmt: skip
    return _client(idp, pool_id, ["Corp"])


@pytest.fixture(scope="module")
def saml_idp(idp: Any, prefix_pool_id: str) -> Iterator[FakeSamlIdP]:
    """pysaml2's IdP configured, as Cognito has you configure it, with the prefix domain's ACS URL."""
    certificate = idp.get_signing_certificate(UserPoolId=prefix_pool_id)["Certificate"]
    with FakeSamlIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{prefix_pool_id}",
        acs_url=f"https://{PREFIX_HOST}/saml2/idpresponse",
        sp_cert_pem=f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n",
    ) as server:
        yield server


@pytest.fixture(scope="module")
def saml_client_id(idp: Any, prefix_pool_id: str, saml_idp: FakeSamlIdP) -> str:
    idp.create_identity_provider(
        UserPoolId=prefix_pool_id, ProviderName="CorpSAML", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256",
                         "IDPInit": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    return _client(idp, prefix_pool_id, ["CorpSAML"])


def test_oidc_sign_in_on_a_custom_domain(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    """The upstream is sent back to the custom domain, and the code exchange names the same redirect URI."""
    browser = Browser(gatehouse, client_id)
    done = browser.run(browser.authorize_url(CUSTOM, identity_provider="Corp"))
    sent = corp.authorize_requests[-1]
    assert sent["redirect_uri"] == f"https://{CUSTOM}/oauth2/idpresponse"
    claims = browser.claims(CUSTOM, pool_id, done)
    assert claims["cognito:username"] == "Corp_emp-7" and claims["email"] == "emp7@corp.example"
    assert corp.token_requests[-1]["redirect_uri"] == f"https://{CUSTOM}/oauth2/idpresponse"


def test_saml_sign_in_on_a_prefix_domain(
    gatehouse: GatehouseServer, prefix_pool_id: str, saml_client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """The AuthnRequest names the prefix domain's ACS URL, and a Response whose Destination and Recipient are
    that URL, posted there, signs the user in."""
    browser = Browser(gatehouse, saml_client_id)
    done = browser.run(browser.authorize_url(PREFIX_HOST, identity_provider="CorpSAML"))
    assert saml_idp.authn_requests[-1]["acs"] == f"https://{PREFIX_HOST}/saml2/idpresponse"
    claims = browser.claims(PREFIX_HOST, prefix_pool_id, done)
    assert claims["cognito:username"] == "CorpSAML_ann@corp.example"


def test_idp_initiated_saml_on_a_prefix_domain(
    gatehouse: GatehouseServer, prefix_pool_id: str, saml_client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """An unsolicited Response posted to the domain's ACS, naming that ACS, is taken there."""
    browser = Browser(gatehouse, saml_client_id)
    relay = urlencode(
        {"response_type": "code", "client_id": saml_client_id, "redirect_uri": CALLBACK,
         "identity_provider": "CorpSAML", "scope": "openid email", "state": "app-state",
         "code_challenge": browser.challenge, "code_challenge_method": "S256"}
    )  # fmt: skip
    posted = browser.http.post(
        f"https://{PREFIX_HOST}/saml2/idpresponse",
        data={"SAMLResponse": saml_idp.response(None), "RelayState": relay},
        allow_redirects=False,
    )
    assert browser.claims(PREFIX_HOST, prefix_pool_id, posted)["cognito:username"] == "CorpSAML_ann@corp.example"


def test_own_host_keeps_the_public_url(
    gatehouse: GatehouseServer, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    """Started on Gatehouse's own host, the sign-in comes back to ``{public_url}/oauth2/idpresponse``."""
    browser = Browser(gatehouse, client_id)
    done = browser.run(browser.authorize_url(OWN, identity_provider="Corp"))
    assert corp.authorize_requests[-1]["redirect_uri"] == f"https://{OWN}/oauth2/idpresponse"
    assert browser.claims(OWN, pool_id, done)["cognito:username"] == "Corp_emp-7"


@pytest.mark.parametrize(("started", "returned"), [(CUSTOM, OWN), (CUSTOM, OTHER), (OWN, CUSTOM)])
def test_a_callback_on_another_host_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC, started: str, returned: str
) -> None:
    """The upstream's answer carried to another host than the sign-in started on, even with the browser cookie
    the starting host set, signs nobody in."""
    corp.user = {"sub": f"moved-{returned}", "email": "moved@corp.example"}
    try:
        before = usernames(idp, pool_id)
        browser = Browser(gatehouse, client_id)
        callback = f"https://{started}/oauth2/idpresponse"
        upstream = browser.run(browser.authorize_url(started, identity_provider="Corp"), stop_at=callback)
        location = upstream.headers["Location"]
        assert location.startswith(callback + "?"), location
        cookie = browser.http.cookies.get("__Host-gatehouse_federation", domain=started)
        assert cookie
        moved = browser.http.get(
            location.replace(f"https://{started}/", f"https://{returned}/", 1),
            headers={"Cookie": f"__Host-gatehouse_federation={cookie}"},
            allow_redirects=False,
        )
        assert moved.status_code == 400 and "started on another domain" in moved.text, moved.text
        assert usernames(idp, pool_id) == before
    finally:
        corp.user = {"sub": "emp-7", "email": "emp7@corp.example"}


def _login_page(browser: Browser) -> requests.Response:
    sent = browser.run(browser.authorize_url(CUSTOM), stop_at=f"https://{CUSTOM}/login?")
    page = browser.http.get(urljoin(sent.url, sent.headers["Location"]))
    assert page.status_code == 200 and urlsplit(page.url).netloc == CUSTOM, page.text
    return page


def test_login_page_buttons_and_email_routing_stay_on_the_domain(
    gatehouse: GatehouseServer, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    """The hosted sign-in page on the domain: its provider button, and its corporate email form, sign in
    through the domain."""
    browser = Browser(gatehouse, client_id)
    page = _login_page(browser)
    button = re.search(r'href="(/oauth2/authorize\?[^"]*identity_provider=Corp[^"]*)"', page.text)
    assert button is not None, page.text
    done = browser.run(urljoin(page.url, html.unescape(button.group(1))))
    assert corp.authorize_requests[-1]["redirect_uri"] == f"https://{CUSTOM}/oauth2/idpresponse"
    assert browser.claims(CUSTOM, pool_id, done)["cognito:username"] == "Corp_emp-7"

    browser = Browser(gatehouse, client_id)
    page = _login_page(browser)
    rid = query_of(page.url)["rid"]
    chosen = browser.run(f"https://{CUSTOM}/login/sso?{urlencode({'rid': rid, 'email': 'emp7@Corp.Example'})}")
    assert corp.authorize_requests[-1]["redirect_uri"] == f"https://{CUSTOM}/oauth2/idpresponse"
    assert browser.claims(CUSTOM, pool_id, chosen)["cognito:username"] == "Corp_emp-7"


@pytest.mark.parametrize("host", ["acme-login.attacker.example", "acme-login.attacker.example:31337", "acme-login"])
def test_a_prefix_under_another_name_never_names_the_acs(
    gatehouse: GatehouseServer, saml_client_id: str, host: str
) -> None:
    """Prefix routing takes the first label whatever follows it, but the ACS a signed AuthnRequest names (where
    an IdP that trusts it sends the user's assertion) is only ever a name Gatehouse serves the domain under:
    ``<prefix>.<public host>`` or Cognito's ``<prefix>.auth.<region>.amazoncognito.com``, never the request's."""
    _, challenge = pkce_pair()
    query = {"response_type": "code", "client_id": saml_client_id, "redirect_uri": CALLBACK,
             "identity_provider": "CorpSAML", "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    started = requests.get(
        f"{gatehouse.url}/oauth2/authorize?{urlencode(query)}",
        headers={"Host": host},
        allow_redirects=False,
        timeout=10,
    )
    assert started.status_code in (302, 303), started.text
    saml_request = query_of(started.headers["Location"])["SAMLRequest"]
    xml = zlib.decompress(base64.b64decode(saml_request), -15).decode()
    acs = re.search(r'AssertionConsumerServiceURL="([^"]+)"', xml)
    assert acs is not None and "attacker" not in acs.group(1) and acs.group(1).startswith(f"https://{OWN}/"), xml


@pytest.fixture(scope="module")
def slo_client_id(idp: Any, prefix_pool_id: str, saml_idp: FakeSamlIdP) -> str:
    """A provider of the same IdP with single logout (IDPSignout), and a client with a sign-out URL."""
    idp.create_identity_provider(
        UserPoolId=prefix_pool_id, ProviderName="CorpSLO", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256",
                         "IDPSignout": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    created = idp.create_user_pool_client(
        UserPoolId=prefix_pool_id, ClientName="slo", AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"], AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK],
        LogoutURLs=[LOGOUT], SupportedIdentityProviders=["CorpSLO"],
    )  # fmt: skip
    return str(created["UserPoolClient"]["ClientId"])


def _signed_in_on_the_prefix_domain(gatehouse: GatehouseServer, slo_client_id: str) -> Browser:
    browser = Browser(gatehouse, slo_client_id)
    done = browser.run(browser.authorize_url(PREFIX_HOST, identity_provider="CorpSLO"))
    assert "code" in query_of(done.headers["Location"]), done.text
    assert _has_session(browser)
    return browser


def _has_session(browser: Browser) -> bool:
    """Whether the domain's hosted UI still knows the browser: a new authorization is answered at once."""
    answer = browser.http.get(browser.authorize_url(PREFIX_HOST), allow_redirects=False)
    return answer.headers.get("Location", "").startswith(CALLBACK)


def test_idp_initiated_single_logout_on_a_prefix_domain(
    gatehouse: GatehouseServer, slo_client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """The IdP, configured with the domain's ACS, sends its LogoutRequest to the domain's ``/saml2/logout``
    (its Destination): the session the browser holds there ends, and the IdP gets its signed answer."""
    browser = _signed_in_on_the_prefix_domain(gatehouse, slo_client_id)
    request_url = saml_idp.logout_request_url("ann@corp.example", None)
    assert request_url.startswith(f"https://{PREFIX_HOST}/saml2/logout?")
    answer = browser.http.get(request_url, allow_redirects=False)
    assert answer.status_code == 302, answer.text
    assert answer.headers["Location"].startswith(f"{saml_idp.url}/slo?")
    assert not _has_session(browser)


def test_sp_initiated_single_logout_on_a_prefix_domain(
    gatehouse: GatehouseServer, slo_client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """``/logout`` on the domain: the IdP's LogoutResponse comes back to the domain's ``/saml2/logout`` (its
    Destination), and the browser goes on to the app's sign-out URL."""
    browser = _signed_in_on_the_prefix_domain(gatehouse, slo_client_id)
    query = urlencode({"client_id": slo_client_id, "logout_uri": LOGOUT})
    to_idp = browser.http.get(f"https://{PREFIX_HOST}/logout?{query}", allow_redirects=False)
    assert to_idp.status_code == 302 and to_idp.headers["Location"].startswith(f"{saml_idp.url}/slo?")
    back = requests.get(to_idp.headers["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302 and back.headers["Location"].startswith(f"https://{PREFIX_HOST}/saml2/logout?")
    done = browser.http.get(back.headers["Location"], allow_redirects=False)
    assert done.status_code == 302 and done.headers["Location"] == LOGOUT, done.text
    assert not _has_session(browser)
