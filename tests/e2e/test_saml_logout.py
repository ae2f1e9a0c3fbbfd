"""SAML single logout with pysaml2's IdP (SAML Profiles §4.4, HTTP-Redirect binding).

For a user signed in through a SAML provider with ``IDPSignout: true``, ``/logout`` ends the hosted-UI session
and sends the browser to the IdP with a signed LogoutRequest (NameID and SessionIndex of the sign-in); the IdP's
signed LogoutResponse comes back to ``/saml2/logout`` and the browser goes on to the app's ``logout_uri``. An
IdP-initiated LogoutRequest at ``/saml2/logout`` ends the session it names. Refused: tampered, replayed,
unsigned or failed messages -- an HTML page, and nothing signed out that should not be."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from tests.e2e.federation_support import Flow, saml_idp_for
from tests.e2e.oauth_support import CALLBACK, LOGOUT, query_of
from tests.fakes.saml import FakeSamlIdP, sp_metadata
from tests.providers.conftest import form_fields
from tests.support import GatehouseServer


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="saml-logout")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[FakeSamlIdP]:
    with saml_idp_for(gatehouse, idp, pool_id) as server:
        yield server


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, saml_idp: FakeSamlIdP) -> str:
    for name, signout in (("CorpSLO", "true"), ("CorpLocal", "false")):
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName=name, ProviderType="SAML",
            ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256",
                             "IDPSignout": signout},
            AttributeMapping={"email": "email"},
        )  # fmt: skip
    return str(
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="app", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK], LogoutURLs=[LOGOUT],
            SupportedIdentityProviders=["CorpSLO", "CorpLocal"],
        )["UserPoolClient"]["ClientId"]
    )  # fmt: skip


def signed_in(gatehouse: GatehouseServer, client_id: str, provider: str = "CorpSLO") -> Flow:
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider=provider, scope="openid email"))
    assert response.status_code == 303 and "code" in query_of(response.headers["Location"]), response.text
    assert has_session(flow)
    return flow


def has_session(flow: Flow) -> bool:
    """Whether the hosted UI still knows this browser: a new authorization is answered at once (single
    sign-on) instead of showing the login page."""
    response = flow.http.get(flow.authorize_url(scope="openid email"), allow_redirects=False)
    return response.headers.get("Location", "").startswith(CALLBACK)


def logout(gatehouse: GatehouseServer, flow: Flow, client_id: str) -> requests.Response:
    query = urlencode({"client_id": client_id, "logout_uri": LOGOUT})
    return flow.http.get(f"{gatehouse.url}/logout?{query}", allow_redirects=False)


def test_logout_signs_out_at_the_idp_and_then_returns_to_the_app(
    gatehouse: GatehouseServer, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    flow = signed_in(gatehouse, client_id)
    first = logout(gatehouse, flow, client_id)
    assert first.status_code == 302 and first.headers["Location"].startswith(f"{saml_idp.url}/slo?")
    assert not has_session(flow)  # ended here before the IdP is even asked
    at_idp = flow.http.get(first.headers["Location"], allow_redirects=False)
    assert at_idp.status_code == 302, at_idp.text
    seen = saml_idp.logout_requests[-1]
    assert seen["signed"] and seen["name_id"] == "ann@corp.example" and seen["session_index"]
    assert seen["issuer"] == saml_idp.sp_entity_id
    back = at_idp.headers["Location"]
    assert back.startswith(f"{gatehouse.url}/saml2/logout?") and "SAMLResponse=" in back
    done = flow.http.get(back, allow_redirects=False)
    assert done.status_code == 302 and done.headers["Location"] == LOGOUT
    # The same LogoutResponse again: its pending request is gone.
    replay = flow.http.get(back, allow_redirects=False)
    assert replay.status_code == 400 and "text/html" in replay.headers["Content-Type"]
    assert "Traceback" not in replay.text


def _posted_logout(gatehouse: GatehouseServer, client_id: str, saml_idp: FakeSamlIdP) -> tuple[Flow, dict[str, str]]:
    """Sign in, /logout, and the fields of the IdP's auto-posting LogoutResponse form."""
    saml_idp.logout_binding = "post"
    try:
        flow = signed_in(gatehouse, client_id)
        page = flow.http.get(logout(gatehouse, flow, client_id).headers["Location"], allow_redirects=False)
    finally:
        saml_idp.logout_binding = "redirect"
    fields = form_fields(page.text)
    assert set(fields) == {"SAMLResponse", "RelayState"}
    return flow, fields


def test_logout_response_by_http_post(gatehouse: GatehouseServer, client_id: str, saml_idp: FakeSamlIdP) -> None:
    """Cognito asks IdPs to send the LogoutResponse by HTTP-POST: an XML-signed message in an auto-posted
    form. Accepted; the message altered after signing, or with its signature cut out, is refused."""
    flow, fields = _posted_logout(gatehouse, client_id, saml_idp)
    done = flow.http.post(f"{gatehouse.url}/saml2/logout", data=fields, allow_redirects=False)
    assert done.status_code == 303 and done.headers["Location"] == LOGOUT

    def altered(xml: str) -> str:
        return xml.replace("status:Success", "status:Success ", 1)

    def unsigned(xml: str) -> str:
        stripped = re.sub(r"<(\w+:)?Signature[ >].*?</(\w+:)?Signature>", "", xml, flags=re.S)
        assert "Signature>" not in stripped
        return stripped

    for mangle, reason in ((altered, "saml_logout_signature"), (unsigned, "saml_logout_unsigned")):
        flow, fields = _posted_logout(gatehouse, client_id, saml_idp)
        xml = base64.b64decode(fields["SAMLResponse"]).decode()
        assert "status:Success" in xml and "Signature>" in xml
        fields["SAMLResponse"] = base64.b64encode(mangle(xml).encode()).decode()
        log_start = len(gatehouse.log_text())
        refused = flow.http.post(f"{gatehouse.url}/saml2/logout", data=fields, allow_redirects=False)
        assert refused.status_code == 400 and "Location" not in refused.headers
        assert f'"reason":"{reason}"' in gatehouse.log_text()[log_start:]


def test_without_idp_signout_logout_stays_local(
    gatehouse: GatehouseServer, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    before = len(saml_idp.logout_requests)
    flow = signed_in(gatehouse, client_id, "CorpLocal")
    response = logout(gatehouse, flow, client_id)
    assert response.status_code == 302 and response.headers["Location"] == LOGOUT
    assert not has_session(flow) and len(saml_idp.logout_requests) == before


def _tamper_signature(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = query["Signature"]
    query["Signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _without(url: str, *names: str) -> str:
    parts = urlsplit(url)
    query = {k: v for k, v in parse_qsl(parts.query) if k not in names}
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def test_forged_or_failed_logout_responses_are_refused(
    gatehouse: GatehouseServer, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    for mangle in (_tamper_signature, lambda url: _without(url, "Signature", "SigAlg")):
        flow = signed_in(gatehouse, client_id)
        at_idp = flow.http.get(logout(gatehouse, flow, client_id).headers["Location"], allow_redirects=False)
        refused = flow.http.get(mangle(at_idp.headers["Location"]), allow_redirects=False)
        assert refused.status_code == 400 and "text/html" in refused.headers["Content-Type"]
        assert "Location" not in refused.headers and "Traceback" not in refused.text
    saml_idp.logout_status = "urn:oasis:names:tc:SAML:2.0:status:Responder"
    try:
        flow = signed_in(gatehouse, client_id)
        at_idp = flow.http.get(logout(gatehouse, flow, client_id).headers["Location"], allow_redirects=False)
        failed = flow.http.get(at_idp.headers["Location"], allow_redirects=False)
    finally:
        saml_idp.logout_status = None
    assert failed.status_code == 400 and "sign-out" in failed.text


def test_idp_initiated_logout_ends_the_session(
    gatehouse: GatehouseServer, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    flow = signed_in(gatehouse, client_id)
    # Unsigned, or about someone else, or another IdP session: this browser stays signed in.
    unsigned = flow.http.get(saml_idp.logout_request_url("ann@corp.example", None, sign=False), allow_redirects=False)
    assert unsigned.status_code == 400 and "text/html" in unsigned.headers["Content-Type"]
    tampered = flow.http.get(
        _tamper_signature(saml_idp.logout_request_url("ann@corp.example", None)), allow_redirects=False
    )
    assert tampered.status_code == 400
    other = flow.http.get(saml_idp.logout_request_url("bob@corp.example", None), allow_redirects=False)
    assert other.status_code == 302 and other.headers["Location"].startswith(f"{saml_idp.url}/slo?")
    elsewhere = flow.http.get(
        saml_idp.logout_request_url("ann@corp.example", "_no_such_session"), allow_redirects=False
    )
    assert elsewhere.status_code == 302
    assert has_session(flow)
    # The real thing: signed by the IdP, naming this user; answered with a signed LogoutResponse.
    response = flow.http.get(saml_idp.logout_request_url("ann@corp.example", None), allow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{saml_idp.url}/slo?") and "SAMLResponse=" in location and "Signature=" in location
    assert query_of(location)["RelayState"] == "idp-relay"
    assert not has_session(flow)


def test_saml2_logout_without_a_message_is_a_page(gatehouse: GatehouseServer) -> None:
    for query in ("", "?SAMLResponse=x&RelayState=nothing", "?SAMLRequest=%%%"):
        response = requests.get(f"{gatehouse.url}/saml2/logout{query}", allow_redirects=False, timeout=10)
        assert response.status_code == 400 and "text/html" in response.headers["Content-Type"], query
        assert "Traceback" not in response.text


def test_idp_initiated_logout_request_is_taken_once_across_pools(
    gatehouse: GatehouseServer, idp: Any, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """Two pools trusting the same IdP: a LogoutRequest one of them has taken is refused by the other when
    replayed (SAML Core §3.7.3.1), and the session it would end there stays."""
    other_pool = str(idp.create_user_pool(PoolName="saml-logout-other")["UserPool"]["Id"])
    idp.create_identity_provider(
        UserPoolId=other_pool, ProviderName="CorpSLO", ProviderType="SAML",
        ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256",
                         "IDPSignout": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    other_client = str(
        idp.create_user_pool_client(
            UserPoolId=other_pool, ClientName="app", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK], LogoutURLs=[LOGOUT],
            SupportedIdentityProviders=["CorpSLO"],
        )["UserPoolClient"]["ClientId"]
    )  # fmt: skip
    certificate = idp.get_signing_certificate(UserPoolId=other_pool)["Certificate"]
    other_entity_id = f"urn:amazon:cognito:sp:{other_pool}"
    pem = f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n"
    saml_idp.server.metadata.load("inline", sp_metadata(other_entity_id, saml_idp.acs_url, pem))
    flow = signed_in(gatehouse, client_id)
    request_url = saml_idp.logout_request_url("ann@corp.example", None)
    taken = flow.http.get(request_url, allow_redirects=False)
    assert taken.status_code == 302 and not has_session(flow)
    own_entity_id, saml_idp.sp_entity_id = saml_idp.sp_entity_id, other_entity_id
    try:
        elsewhere = signed_in(gatehouse, other_client)
    finally:
        saml_idp.sp_entity_id = own_entity_id
    replay = elsewhere.http.get(request_url, allow_redirects=False)
    assert replay.status_code == 400 and "text/html" in replay.headers["Content-Type"]
    assert "Location" not in replay.headers and "Traceback" not in replay.text
    assert has_session(elsewhere)
    # Without a session of this IdP in the browser, the replay is refused all the same.
    assert requests.get(request_url, allow_redirects=False, timeout=10).status_code == 400


def test_idp_initiated_logout_ends_a_session_whose_response_named_no_issuer(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """A Response that is not itself signed may leave out its Issuer (SAML Core §3.2.2, Profiles §4.1.4.2):
    the IdP is the signed assertion's Issuer, and the session remembers it, so the IdP's LogoutRequest still
    ends the session (and the user's identities name the IdP)."""

    def without_issuer(response: Any, assertion: Any) -> None:
        response.issuer = None

    saml_idp.response_options = {"edit": without_issuer}
    try:
        flow = signed_in(gatehouse, client_id)
    finally:
        saml_idp.response_options = {}
    identities = next(
        a["Value"]
        for a in idp.admin_get_user(UserPoolId=pool_id, Username="CorpSLO_ann@corp.example")["UserAttributes"]
        if a["Name"] == "identities"
    )
    assert saml_idp.entity_id in identities
    response = flow.http.get(saml_idp.logout_request_url("ann@corp.example", None), allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"].startswith(f"{saml_idp.url}/slo?")
    assert not has_session(flow)


def test_idp_initiated_logout_is_answered_by_post_when_the_idp_takes_only_post(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, saml_idp: FakeSamlIdP
) -> None:
    """An IdP whose SingleLogoutService takes HTTP-POST only (SAML Profiles §4.4.3.5 allows either binding):
    its LogoutRequest still ends the session, and the signed LogoutResponse is posted back to it by a page --
    never a server error with the session left open."""
    redirect_slo = f'Binding="{BINDING_HTTP_REDIRECT}" Location="{saml_idp.url}/slo"'
    metadata = saml_idp.metadata_xml()
    assert redirect_slo in metadata
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="CorpPostSLO", ProviderType="SAML",
        ProviderDetails={"MetadataFile": metadata.replace(redirect_slo, redirect_slo.replace("Redirect", "POST")),
                         "RequestSigningAlgorithm": "rsa-sha256", "IDPSignout": "true"},
        AttributeMapping={"email": "email"},
    )  # fmt: skip
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="post-slo", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK], SupportedIdentityProviders=["CorpPostSLO"],
    )["UserPoolClient"]  # fmt: skip
    flow = signed_in(gatehouse, str(client["ClientId"]), "CorpPostSLO")
    page = flow.http.get(saml_idp.logout_request_url("ann@corp.example", None), allow_redirects=False)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"], page.text
    assert not has_session(flow)
    assert re.search(r'<form method="post" action="([^"]+)"', page.text)[1] == f"{saml_idp.url}/slo"  # type: ignore[index]
    fields = form_fields(page.text)
    assert fields["RelayState"] == "idp-relay"
    answer = base64.b64decode(fields["SAMLResponse"]).decode()
    assert "Signature" in answer and "urn:oasis:names:tc:SAML:2.0:status:Success" in answer
    parsed = saml_idp.server.parse_logout_request_response(fields["SAMLResponse"], BINDING_HTTP_POST)
    assert parsed is not None and parsed.response.signature is not None
