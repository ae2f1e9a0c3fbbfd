"""The hosted UI and OAuth endpoints at their edges: bodies past the server's limit answered in the endpoint's
own kind (a page for a browser, JSON for a client), never aiohttp's plain text; a state too long to come back
refused on a page rather than echoed into a redirect of megabytes; identity provider metadata that would send
the browser to a javascript: URL refused at configuration and at refresh; SetUICustomization's logo limit and
a stylesheet that cannot make the browser call Gatehouse's own endpoints."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from aiohttp import web
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, LOGOUT, Browser, OAuthPool, make_pool, make_user, query_of
from tests.fakes.oauth import FakeOIDC
from tests.fakes.saml import FakeSamlIdP
from tests.support import GatehouseServer

_ALERT = re.compile(r'role="alert"[^>]*>([^<]*)<')
_TOO_LARGE = "That form is too large to send. Go back, shorten what you entered, and try again."
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_HOSTILE = "javascript:document.title='ran:'+document.domain"


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "hosted")
    idp.create_user_pool_domain(UserPoolId=created.pool_id, Domain="hosted-ui")  # for SetUICustomization
    make_user(idp, created.pool_id, "alice")
    return created


def _post(gatehouse: GatehouseServer, path: str, body: str, **kwargs: Any) -> requests.Response:
    return requests.post(gatehouse.url + path, data=body, headers=_FORM, allow_redirects=False, timeout=30, **kwargs)


def _assert_page(answer: requests.Response, status: int) -> list[str]:
    """The hosted error page with its headers; the alert texts shown."""
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"
    assert "Location" not in answer.headers
    return _ALERT.findall(answer.text)


# --- Bodies past the limit --------------------------------------------------------------------------------------

_BIG = "a=" + "x" * 1_100_000  # past the default 1 MiB body limit
_MANY = "&".join(f"f{i}=" for i in range(1500))  # past the 1000 fields aiohttp reads, however small


@pytest.mark.parametrize("body", [_BIG, _MANY], ids=["big", "many-fields"])
@pytest.mark.parametrize(
    "path",
    [
        "/gatehouse/feedback",
        "/oauth2/authorize",
        "/{pool}/oauth2/authorize",
        "/oauth2/idpresponse",
        "/saml2/idpresponse",
        "/saml2/logout",
        "/{pool}/saml2/logout",
    ],
)
def test_a_browser_form_past_the_limit_gets_the_error_page(
    gatehouse: GatehouseServer, pool: OAuthPool, path: str, body: str
) -> None:
    answer = _post(gatehouse, path.format(pool=pool.pool_id), body)
    assert _assert_page(answer, 413) == [_TOO_LARGE]
    assert "Maximum" not in answer.text  # not aiohttp's words


@pytest.mark.parametrize("body", [_BIG, _MANY], ids=["big", "many-fields"])
@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/revoke", "/{pool}/oauth2/token"])
def test_a_token_or_revocation_body_past_the_limit_gets_a_json_error(
    gatehouse: GatehouseServer, pool: OAuthPool, path: str, body: str
) -> None:
    answer = _post(gatehouse, path.format(pool=pool.pool_id), body, auth=(pool.secret_id, pool.secret))
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/json" and answer.headers["Cache-Control"] == "no-store"
    assert answer.json() == {"error": "invalid_request", "error_description": "The request body is too large."}


def test_the_sign_in_still_works_after_an_oversized_form(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    """The refusal leaves nothing behind: the same client signs in and gets a code at once afterwards."""
    assert _post(gatehouse, "/oauth2/authorize", _BIG).status_code == 413
    browser = Browser(gatehouse.url)
    answer = browser.sign_in(browser.authorize_url(pool.secret_id, state="after"), "alice")
    assert answer.status_code == 303
    assert query_of(answer.headers["Location"])["state"] == "after"


# --- The state -------------------------------------------------------------------------------------------------


def _authorize(pool: OAuthPool, **params: str) -> dict[str, str]:
    return {"client_id": pool.secret_id, "response_type": "code", "redirect_uri": CALLBACK, **params}


@pytest.mark.parametrize(
    "state",
    ["s" * 900_000, "s" * 2049, "\u20ac" * 683],  # 683 euro signs: 2049 bytes of UTF-8
    ids=["megabyte", "one-byte-over", "multibyte-over"],
)
def test_a_state_too_long_to_echo_is_refused_on_a_page(gatehouse: GatehouseServer, pool: OAuthPool, state: str) -> None:
    """A refused request goes back to the client with its state (RFC 6749 §4.1.2.1); a state of megabytes in
    a Location breaks browsers and proxies (the client's http.client cannot even read the header), so such a
    request is refused before any redirect -- here with an invalid scope that would otherwise be redirected."""
    answer = _post(gatehouse, "/oauth2/authorize", urlencode(_authorize(pool, state=state, scope="bogus")))
    assert _assert_page(answer, 400) == ["The state parameter is too long (at most 2048 bytes)."]
    if len(state) < 4000:  # a GET carries it too (aiohttp's 8 KiB request line bounds a query)
        got = requests.get(
            gatehouse.url + "/oauth2/authorize?" + urlencode(_authorize(pool, state=state)),
            allow_redirects=False,
            timeout=10,
        )
        assert _assert_page(got, 400) == ["The state parameter is too long (at most 2048 bytes)."]


def test_a_state_at_the_limit_comes_back_whole(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    state = "s" * 2048
    refused = _post(gatehouse, "/oauth2/authorize", urlencode(_authorize(pool, state=state, scope="bogus")))
    assert refused.status_code == 302
    assert query_of(refused.headers["Location"]) == {
        "error": "invalid_scope",
        "error_description": "None of the requested scopes is allowed for this client.",
        "state": state,
        "iss": pool.issuer,
    }
    browser = Browser(gatehouse.url)
    signed_in = browser.sign_in(browser.authorize_url(pool.secret_id, state=state), "alice")
    assert signed_in.status_code == 303 and query_of(signed_in.headers["Location"])["state"] == state


def test_a_long_echoed_response_type_does_not_fill_the_redirect(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    answer = _post(gatehouse, "/oauth2/authorize", urlencode(_authorize(pool, response_type="t" * 900_000)))
    assert answer.status_code == 302 and len(answer.headers["Location"]) < 1024
    error = query_of(answer.headers["Location"])
    assert error["error"] == "unsupported_response_type"
    assert (
        error["error_description"].startswith("Unsupported response_type: ttt")
        and len(error["error_description"]) == 512
    )


def test_a_post_logout_state_too_long_is_refused_on_a_page(gatehouse: GatehouseServer, pool: OAuthPool) -> None:
    query = {"client_id": pool.secret_id, "post_logout_redirect_uri": LOGOUT, "state": "s" * 3000}
    answer = requests.get(gatehouse.url + "/logout?" + urlencode(query), allow_redirects=False, timeout=10)
    assert _assert_page(answer, 400) == ["The state parameter is too long (at most 2048 bytes)."]
    query["state"] = "kept"
    answer = requests.get(gatehouse.url + "/logout?" + urlencode(query), allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"] == f"{LOGOUT}?state=kept"


# --- Identity provider metadata naming a script ------------------------------------------------------------


@pytest.fixture(scope="module")
def saml_pool(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="hosted-saml")["UserPool"]["Id"])


def _saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> FakeSamlIdP:
    certificate = idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"]
    return FakeSamlIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{pool_id}",
        acs_url=f"{gatehouse.url}/saml2/idpresponse",
        sp_cert_pem=f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n",
    )


def _hostile(metadata: str, endpoint: str) -> str:
    hostile = re.sub(rf'Location="[^"]*/{endpoint}"', f'Location="{_HOSTILE}"', metadata)
    assert hostile != metadata
    return hostile


@pytest.mark.parametrize(
    "endpoint",
    ["sso/post", "sso/redirect", "slo"],
    ids=["sso-post", "sso-redirect", "slo"],
)
def test_saml_metadata_naming_a_script_is_refused(
    gatehouse: GatehouseServer, idp: Any, saml_pool: str, endpoint: str
) -> None:
    with _saml_idp(gatehouse, idp, saml_pool) as fake:
        metadata = fake.metadata_xml()
    name = f"Saml{endpoint.replace('/', '')}"
    with pytest.raises(ClientError) as created:
        idp.create_identity_provider(
            UserPoolId=saml_pool, ProviderName=name, ProviderType="SAML",
            ProviderDetails={"MetadataFile": _hostile(metadata, endpoint)}, AttributeMapping={"email": "email"},
        )  # fmt: skip
    assert created.value.response["Error"]["Code"] == "InvalidParameterException"
    assert created.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "absolute http(s) URL" in created.value.response["Error"]["Message"]
    names = [p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=saml_pool)["Providers"]]
    assert name not in names
    # Nor can a good provider be updated to it; it keeps its metadata.
    idp.create_identity_provider(
        UserPoolId=saml_pool, ProviderName=name, ProviderType="SAML",
        ProviderDetails={"MetadataFile": metadata}, AttributeMapping={"email": "email"},
    )  # fmt: skip
    with pytest.raises(ClientError) as updated:
        idp.update_identity_provider(
            UserPoolId=saml_pool, ProviderName=name, ProviderDetails={"MetadataFile": _hostile(metadata, endpoint)}
        )
    assert updated.value.response["Error"]["Code"] == "InvalidParameterException"
    kept = idp.describe_identity_provider(UserPoolId=saml_pool, ProviderName=name)["IdentityProvider"]
    assert kept["ProviderDetails"]["MetadataFile"] == metadata
    assert not any(v.startswith("javascript:") for v in kept["ProviderDetails"].values())
    idp.delete_identity_provider(UserPoolId=saml_pool, ProviderName=name)


class _HostileMetadataIdP(FakeSamlIdP):
    """An IdP whose published metadata names a javascript: URL as its HTTP-POST sign-in endpoint."""

    async def metadata(self, request: web.Request) -> web.Response:
        return web.Response(text=_hostile(self.metadata_xml(), "sso/post"), content_type="application/xml")


def _client_for(idp: Any, pool_id: str, provider: str) -> str:
    return str(
        idp.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=f"app-{provider}",
            GenerateSecret=True,
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid"],
            CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=[provider],
        )["UserPoolClient"]["ClientId"]
    )


def test_saml_metadata_url_naming_a_script_never_reaches_the_browser(
    gatehouse: GatehouseServer, idp: Any, saml_pool: str
) -> None:
    """Metadata read from MetadataURL passes the same check: a sign-in through that IdP goes back to the client
    as an error, and no page posts to (or redirect names) the javascript: URL."""
    certificate = idp.get_signing_certificate(UserPoolId=saml_pool)["Certificate"]
    with _HostileMetadataIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{saml_pool}",
        acs_url=f"{gatehouse.url}/saml2/idpresponse",
        sp_cert_pem=f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n",
        post_only=True,
    ) as fake:
        idp.create_identity_provider(
            UserPoolId=saml_pool, ProviderName="HostileUrl", ProviderType="SAML",
            ProviderDetails={"MetadataURL": f"{fake.url}/metadata"}, AttributeMapping={"email": "email"},
        )  # fmt: skip
        client_id = _client_for(idp, saml_pool, "HostileUrl")
        query = {"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK}
        answer = requests.get(
            gatehouse.url + "/oauth2/authorize?" + urlencode({**query, "identity_provider": "HostileUrl"}),
            allow_redirects=False,
            timeout=10,
        )
    assert "javascript:" not in answer.text and "javascript:" not in answer.headers.get("Location", "")
    assert answer.status_code == 302 and answer.headers["Location"].startswith(CALLBACK)
    assert query_of(answer.headers["Location"])["error"] in (
        "server_error",
        "temporarily_unavailable",
        "invalid_request",
    )


class _HostileDiscovery(FakeOIDC):
    """An OpenID provider whose discovery document names a javascript: authorization endpoint."""

    async def discovery(self, request: web.Request) -> web.Response:
        answer = await super().discovery(request)
        assert answer.text is not None
        return web.Response(text=answer.text.replace(f'"{self.url}/authorize"', f'"{_HOSTILE}"'))


@pytest.fixture(scope="module")
def hostile_oidc() -> Iterator[_HostileDiscovery]:
    with _HostileDiscovery() as server:
        yield server


def test_a_discovered_script_endpoint_is_never_a_redirect(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, hostile_oidc: _HostileDiscovery
) -> None:
    idp.create_identity_provider(
        UserPoolId=pool.pool_id, ProviderName="HostileOidc", ProviderType="OIDC",
        ProviderDetails={
            "client_id": hostile_oidc.client_id, "client_secret": hostile_oidc.client_secret,
            "authorize_scopes": "openid email", "oidc_issuer": hostile_oidc.issuer, "attributes_request_method": "GET",
        },
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    client_id = _client_for(idp, pool.pool_id, "HostileOidc")
    query = {"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, "state": "st"}
    answer = requests.get(
        gatehouse.url + "/oauth2/authorize?" + urlencode({**query, "identity_provider": "HostileOidc"}),
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302 and answer.headers["Location"].startswith(CALLBACK), answer.headers
    assert query_of(answer.headers["Location"])["state"] == "st"
    assert "error" in query_of(answer.headers["Location"])


# --- SetUICustomization -----------------------------------------------------------------------------------------

_PNG = b"\x89PNG\r\n\x1a\n"


def _stored(idp: Any, pool: OAuthPool) -> dict[str, Any]:
    return dict(idp.get_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id)["UICustomization"])


def test_a_logo_over_100_kb_is_refused(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    """ "Customizing hosted UI (classic) branding": the logo may be at most 100 KB (the model's blob allows
    128 KiB)."""
    kept = _PNG + b"\0" * 1000
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id, ImageFile=kept)
    with pytest.raises(ClientError) as refused:
        idp.set_ui_customization(
            UserPoolId=pool.pool_id, ClientId=pool.secret_id, ImageFile=_PNG + b"\0" * (100 * 1024 - len(_PNG) + 1)
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    served = requests.get(_stored(idp, pool)["ImageUrl"], timeout=10)
    assert served.status_code == 200 and served.content == kept
    at_limit = _PNG + b"\0" * (100 * 1024 - len(_PNG))
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id, ImageFile=at_limit)
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id)


_FETCHING_CSS = {
    "logout": ".background-customizable { background-image: url(/logout?client_id=x&logout_uri=y) }",
    "quoted": '.banner-customizable { background: url( "/oauth2/authorize?prompt=none" ) }',
    "pool-path": ".logo-customizable { cursor: url('/us-east-1_abc/logout'), auto }",
    "absolute": ".banner-customizable { background-image: url(https://evil.example/pixel.png) }",
    "escaped-name": ".banner-customizable { background-image: u\\72l(/logout) }",
    "upper-case": ".banner-customizable { background-image: URL(/logout) }",
    "image-set": '.banner-customizable { background-image: image-set("/logout" 1x) }',
    "webkit-image-set": '.banner-customizable { background-image: -webkit-image-set("/logout" 1x) }',
    "src": '.banner-customizable { background-image: src("/logout") }',
    "cross-fade": '.banner-customizable { background-image: cross-fade("/logout", "/logout", 50%) }',
    # The fetch hidden from a check that took the quoted "/*" for a comment's opening.
    "after-quoted-comment": (
        '.banner-customizable { content: "/*"; background-image: url(/logout?client_id=x&logout_uri=y); content: "*/" }'
    ),
}


@pytest.mark.parametrize("css", list(_FETCHING_CSS.values()), ids=list(_FETCHING_CSS))
def test_css_that_fetches_an_address_is_refused(idp: Any, pool: OAuthPool, css: str) -> None:
    """The pages' CSP admits images of Gatehouse's own origin, whose URLs are its endpoints: a stylesheet
    with url(/logout) would sign out everyone who opens the sign-in page. Only data: images are taken."""
    kept = ".submitButton-customizable { background-color: #0a7d32; }"
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id, CSS=kept)
    with pytest.raises(ClientError) as refused:
        idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id, CSS=css)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert _stored(idp, pool)["CSS"] == kept
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id)


def test_css_with_a_data_image_is_taken(idp: Any, pool: OAuthPool) -> None:
    css = ".background-customizable { background-image: url('data:image/png;base64,iVBORw0KGgo=') }"
    assert (
        idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id, CSS=css)["UICustomization"]["CSS"]
        == css
    )
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id)


def test_a_stored_stylesheet_that_fetches_is_not_served(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    """A stylesheet stored before SetUICustomization refused url()s of addresses (written to the store as an
    older release would have taken it) is not served: the browser never GETs /logout for it."""
    css = ".banner-customizable { color: #123456; }"
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.public_id, CSS=css)
    url = f"{gatehouse.url}/ui/{pool.pool_id}/{pool.public_id}/custom.css"
    served = requests.get(url, timeout=10)
    assert served.status_code == 200 and served.text == css
    hostile = ".banner-customizable { background-image: url(/logout?client_id=x&logout_uri=y) }"
    db = sqlite3.connect(f"file:{gatehouse.data_dir / 'gatehouse.db'}?mode=rw", uri=True, timeout=10)
    try:
        with db:
            db.execute(
                "UPDATE ui_customizations SET css = ? WHERE pool_id = ? AND client_id = ?",
                (hostile, pool.pool_id, pool.public_id),
            )
    finally:
        db.close()
    refused = requests.get(url, timeout=10)
    assert refused.status_code == 404 and "logout" not in refused.text
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.public_id)


@pytest.mark.parametrize(
    ("provider_type", "details"),
    [
        ("SAML", {"MetadataURL": "https://[idp.example/metadata"}),
        ("OIDC", {"client_id": "c", "client_secret": "s", "authorize_scopes": "openid", "oidc_issuer": "https://[x"}),
        (
            "OIDC",
            {
                "client_id": "c",
                "client_secret": "s",
                "authorize_scopes": "openid",
                "oidc_issuer": "https://idp.example",
                "authorize_url": "https://[x/authorize",
                "token_url": "https://idp.example/token",
                "jwks_uri": "https://idp.example/jwks",
                "attributes_url": "https://idp.example/userinfo",
                "attributes_request_method": "GET",
            },
        ),
    ],
    ids=["saml-metadata-url", "oidc-issuer", "oidc-authorize-url"],
)
def test_an_unparseable_provider_url_is_refused_not_a_500(
    idp: Any, saml_pool: str, provider_type: str, details: dict[str, str]
) -> None:
    """An address Python's URL parser cannot split (an unclosed IPv6 bracket) is refused as any other address
    that is not an absolute http(s) URL, not a 500."""
    with pytest.raises(ClientError) as refused:
        idp.create_identity_provider(
            UserPoolId=saml_pool, ProviderName="Unparseable", ProviderType=provider_type, ProviderDetails=details
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    names = [p["ProviderName"] for p in idp.list_identity_providers(UserPoolId=saml_pool)["Providers"]]
    assert "Unparseable" not in names


# --- Methods an endpoint does not take ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        # OPTIONS: the CORS preflight of a browser app (gateway/oauth/cors.py).
        ("GET", "/oauth2/token", "OPTIONS, POST"),
        ("PUT", "/{pool}/oauth2/token", "OPTIONS, POST"),
        ("GET", "/oauth2/revoke", "OPTIONS, POST"),
        ("DELETE", "/oauth2/userInfo", "GET, HEAD, OPTIONS, POST"),
    ],
)
def test_a_json_endpoint_answers_another_method_in_json(
    gatehouse: GatehouseServer, pool: OAuthPool, method: str, path: str, allow: str
) -> None:
    answer = requests.request(method, gatehouse.url + path.format(pool=pool.pool_id), timeout=10)
    assert answer.status_code == 405 and answer.headers["Allow"] == allow  # RFC 9110 §15.5.6
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {
        "error": "invalid_request",
        "error_description": "This endpoint does not take that method.",
    }


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/oauth2/authorize", "GET, HEAD, POST"),
        ("DELETE", "/{pool}/oauth2/authorize", "GET, HEAD, POST"),
        ("PUT", "/logout", "GET, HEAD, POST"),
        ("GET", "/saml2/idpresponse", "POST"),
        ("PATCH", "/oauth2/idpresponse", "GET, HEAD, POST"),
        ("PUT", "/saml2/logout", "GET, HEAD, POST"),
        ("PUT", "/{pool}/login", "GET, HEAD, POST"),
        ("GET", "/login/challenge", "POST"),
        ("DELETE", "/signup", "GET, HEAD, POST"),
        ("PUT", "/gatehouse/feedback", "GET, HEAD, POST"),
    ],
)
def test_a_browser_endpoint_answers_another_method_with_the_page(
    gatehouse: GatehouseServer, pool: OAuthPool, method: str, path: str, allow: str
) -> None:
    answer = requests.request(method, gatehouse.url + path.format(pool=pool.pool_id), timeout=10)
    assert _assert_page(answer, 405) == [
        "This page cannot be opened that way. Go back to the application and try again."
    ]
    assert answer.headers["Allow"] == allow


def test_saml_endpoint_keys_come_from_the_metadata_only(gatehouse: GatehouseServer, idp: Any, saml_pool: str) -> None:
    """SSORedirectBindingURI and its kin are what the metadata names (Describe shows them): one given in
    ProviderDetails is not stored, so no javascript: URL is described back to a console that links it."""
    certificate = idp.get_signing_certificate(UserPoolId=saml_pool)["Certificate"]
    with FakeSamlIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{saml_pool}",
        acs_url=f"{gatehouse.url}/saml2/idpresponse",
        sp_cert_pem=f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n",
        post_only=True,
    ) as fake:
        metadata = fake.metadata_xml()
        sso_post = f"{fake.url}/sso/post"
    given = {"SSORedirectBindingURI": _HOSTILE, "SLOPostBindingURI": _HOSTILE}
    idp.create_identity_provider(
        UserPoolId=saml_pool, ProviderName="GivenKeys", ProviderType="SAML",
        ProviderDetails={"MetadataFile": metadata, **given}, AttributeMapping={"email": "email"},
    )  # fmt: skip
    idp.update_identity_provider(UserPoolId=saml_pool, ProviderName="GivenKeys", ProviderDetails=given)
    details = idp.describe_identity_provider(UserPoolId=saml_pool, ProviderName="GivenKeys")["IdentityProvider"][
        "ProviderDetails"
    ]
    assert details["SSOPostBindingURI"] == sso_post
    assert "SSORedirectBindingURI" not in details  # the metadata names no redirect endpoint
    assert not any(str(v).startswith("javascript:") for v in details.values())
    idp.delete_identity_provider(UserPoolId=saml_pool, ProviderName="GivenKeys")
