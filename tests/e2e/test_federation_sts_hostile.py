"""Hostile and standards cases of federation, STS and passthrough roles, against a real Gatehouse.

* Session tags: keys beginning with ``aws:`` are AWS's own (IAM User Guide, "Rules for tagging in IAM and AWS
  STS"); refused wherever the tags come from (AssumeRole's Tags, a web identity token's ``principal_tags``, a
  SAML assertion's ``PrincipalTag:*``, a developer identity's PrincipalTags), as are keys differing only in case
  and tags beyond STS's limits, each with a message naming the limit.
* AssumeRoleWithSAML: a SessionDuration that is no ASCII number is ignored, never an internal error.
* Passthrough roles forward the session's transitive tag keys to AWS STS (AssumeRole TransitiveTagKeys).
* An IdP-initiated SAML LogoutRequest reaching a browser without a session is still answered with a signed
  LogoutResponse (SAML Profiles §4.4.4.2), whether it reaches the pool's path or the global endpoint.
* A multi-valued OIDC claim is mapped as Cognito writes it (its JSON text), so values with commas survive.
* ``login_hint`` reaches an OIDC IdP's authorization request (Cognito's authorize endpoint), not a SAML IdP's.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import aiohttp
import pytest
import requests
from aiohttp import web
from botocore.exceptions import ClientError
from saml2 import BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.time_util import in_a_while
from saml2.xmldsig import SIG_RSA_SHA256

from tests.e2e.aws_support import ACCOUNT, aws_client, identity_trust, moto_server
from tests.e2e.federation_support import Flow, corp_details, saml_idp_for
from tests.e2e.oauth_support import CALLBACK, LOGOUT, query_of
from tests.fakes.oauth import FakeOIDC
from tests.fakes.saml import FakeSamlIdP, slo_of
from tests.fakes.server import ThreadedApp
from tests.oidc_fake import FakeOidcProvider
from tests.saml_idp_fake import FakeAwsSamlIdP, aws_attributes
from tests.support import REGION, GatehouseServer

TAGS_CLAIM = "https://aws.amazon.com/tags"
MOTO_ACCOUNT = "123456789012"
MOTO_KEY = "AKIAGATEHOUSEMOTO01"
MOTO_SECRET = "moto-secret-key"
ROOT = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


# --- one Gatehouse for the module, with moto's server as the AWS STS of passthrough roles -------------------------


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


class RecordingProxy(ThreadedApp):
    """AWS STS as Gatehouse sees it: moto's server, behind a proxy that keeps each request's form, since moto
    accepts session tags but keeps none of them to be looked at."""

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream
        self.requests: list[dict[str, str]] = []

    def build(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.forward)
        return app

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(dict(parse_qsl(body.decode(), keep_blank_values=True)))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(request.method, self.upstream + request.path_qs, data=body, headers=headers) as answer,
        ):
            return web.Response(status=answer.status, body=await answer.read(), content_type=answer.content_type)


@pytest.fixture(scope="module")
def aws_sts(moto_url: str) -> Iterator[RecordingProxy]:
    with RecordingProxy(moto_url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, aws_sts: RecordingProxy) -> Iterator[GatehouseServer]:
    config = f"""version: 1
iam:
  aws:
    sts_endpoint_url: {aws_sts.url}
    region: {REGION}
    access_key_id: {MOTO_KEY}
    secret_access_key: "${{MOTO_SECRET}}"
"""
    data_dir: Path = tmp_path_factory.mktemp("federation-sts") / "data"
    server = GatehouseServer(data_dir, config=config, extra_env={"MOTO_SECRET": MOTO_SECRET})
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def iam(gatehouse: GatehouseServer) -> Any:
    return gatehouse.client("iam")


@pytest.fixture(scope="module")
def sts(gatehouse: GatehouseServer) -> Any:
    return gatehouse.client("sts", signed=False)


@pytest.fixture(scope="module")
def oidc() -> Iterator[FakeOidcProvider]:
    provider = FakeOidcProvider()
    provider.start()
    yield provider
    provider.stop()


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"].get("Message", ""),
    )


def trust(principal: dict[str, Any], actions: list[str], condition: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": actions}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


# --- session tags: the aws: prefix and STS's limits -------------------------------------------------------------


def test_assume_role_refuses_tag_keys_with_the_aws_prefix(iam: Any, gatehouse: GatehouseServer) -> None:
    role = iam.create_role(
        RoleName="tag-prefix", AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole", "sts:TagSession"])
    )
    admin_sts = gatehouse.client("sts")
    for key in ("aws:team", "AWS:team", "Aws:PrincipalTag"):
        with pytest.raises(ClientError) as refused:
            admin_sts.assume_role(
                RoleArn=role["Role"]["Arn"], RoleSessionName="s1", Tags=[{"Key": key, "Value": "red"}]
            )
        code, status, message = error_of(refused)
        assert (code, status) == ("InvalidParameterValue", 400), key
        assert "aws:" in message, message
    # The same tag under a key of its own is fine.
    answer = admin_sts.assume_role(
        RoleArn=role["Role"]["Arn"], RoleSessionName="s1", Tags=[{"Key": "team", "Value": "red"}]
    )
    assert answer["Credentials"]["AccessKeyId"].startswith("ASIA")


@pytest.fixture(scope="module")
def web_role(iam: Any, oidc: FakeOidcProvider) -> str:
    iam.create_open_id_connect_provider(Url=oidc.issuer, ClientIDList=["ext-app"], ThumbprintList=["0" * 40])
    federated = {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc.name}"}
    condition = {"StringEquals": {f"{oidc.name}:aud": "ext-app"}}
    return str(
        iam.create_role(
            RoleName="web-tags",
            AssumeRolePolicyDocument=trust(federated, ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"], condition),
        )["Role"]["Arn"]
    )


def test_web_identity_token_tags_with_the_aws_prefix_are_refused(
    sts: Any, oidc: FakeOidcProvider, web_role: str
) -> None:
    for tags in ({"aws:team": ["red"]}, {"team": ["red"], "AWS:SourceIdentity": ["x"]}):
        token = oidc.token(**{TAGS_CLAIM: {"principal_tags": tags}})
        with pytest.raises(ClientError) as refused:
            sts.assume_role_with_web_identity(RoleArn=web_role, RoleSessionName="web", WebIdentityToken=token)
        code, status, message = error_of(refused)
        assert (code, status) == ("InvalidParameterValue", 400), tags
        assert "aws:" in message
    fine = oidc.token(**{TAGS_CLAIM: {"principal_tags": {"team": ["red"]}}})
    assert sts.assume_role_with_web_identity(RoleArn=web_role, RoleSessionName="web", WebIdentityToken=fine)


def test_web_identity_tags_beyond_the_limits_name_the_limit(sts: Any, oidc: FakeOidcProvider, web_role: str) -> None:
    cases = [
        ({f"t{i}": ["v"] for i in range(51)}, "50"),
        ({"k" * 129: ["v"]}, "128"),
        ({"team": ["v" * 257]}, "256"),
    ]
    for tags, limit in cases:
        token = oidc.token(**{TAGS_CLAIM: {"principal_tags": tags}})
        with pytest.raises(ClientError) as refused:
            sts.assume_role_with_web_identity(RoleArn=web_role, RoleSessionName="web", WebIdentityToken=token)
        code, status, message = error_of(refused)
        assert (code, status) == ("ValidationError", 400)
        assert f"less than or equal to {limit}" in message, message


@pytest.fixture(scope="module")
def saml_setup(iam: Any) -> dict[str, Any]:
    idp = FakeAwsSamlIdP()
    provider_arn = iam.create_saml_provider(Name="corp", SAMLMetadataDocument=idp.metadata_xml())["SAMLProviderArn"]
    role_arn = iam.create_role(
        RoleName="saml",
        AssumeRolePolicyDocument=trust({"Federated": provider_arn}, ["sts:AssumeRoleWithSAML", "sts:TagSession"]),
    )["Role"]["Arn"]
    return {"idp": idp, "provider_arn": provider_arn, "role_arn": role_arn}


def test_saml_principal_tags_with_the_aws_prefix_or_beyond_the_limits_are_refused(
    sts: Any, saml_setup: dict[str, Any]
) -> None:
    idp: FakeAwsSamlIdP = saml_setup["idp"]
    role_arn, provider_arn = saml_setup["role_arn"], saml_setup["provider_arn"]
    bad = idp.response(aws_attributes(role_arn, provider_arn, **{"PrincipalTag:aws:team": ["red"]}))
    with pytest.raises(ClientError) as refused:
        sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=bad)
    code, status, message = error_of(refused)
    assert (code, status) == ("InvalidParameterValue", 400)
    assert "aws:" in message
    long_key = idp.response(aws_attributes(role_arn, provider_arn, **{f"PrincipalTag:{'k' * 129}": ["red"]}))
    with pytest.raises(ClientError) as too_long:
        sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=long_key)
    assert error_of(too_long)[:2] == ("ValidationError", 400)
    assert "less than or equal to 128" in error_of(too_long)[2]
    fine = idp.response(aws_attributes(role_arn, provider_arn, **{"PrincipalTag:team": ["red"]}))
    assert sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=fine)


# --- passthrough roles: transitive tags stay transitive at AWS ---------------------------------------------------


def test_passthrough_forwards_transitive_tag_keys(
    gatehouse: GatehouseServer,
    iam: Any,
    sts: Any,
    oidc: FakeOidcProvider,
    web_role: str,
    aws_sts: RecordingProxy,
    moto_url: str,
) -> None:
    """A web identity token's ``transitive_tag_keys`` (and AssumeRole's TransitiveTagKeys) mark session tags that
    pass on in a role chain; a passthrough role's session lives at AWS, so AWS STS must be told which they are."""
    aws_iam = aws_client("iam", moto_url, MOTO_KEY, MOTO_SECRET)
    aws_trust = trust({"AWS": f"arn:aws:iam::{MOTO_ACCOUNT}:root"}, ["sts:AssumeRole", "sts:TagSession"])
    aws_role = aws_iam.create_role(RoleName="real", AssumeRolePolicyDocument=aws_trust)["Role"]["Arn"]
    federated = {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc.name}"}
    role_arn = iam.create_role(
        RoleName="passthrough",
        AssumeRolePolicyDocument=trust(federated, ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]),
        Tags=[{"Key": "gatehouse:aws-role-arn", "Value": aws_role}],
    )["Role"]["Arn"]
    claim = {TAGS_CLAIM: {"principal_tags": {"team": ["red"], "cost": ["c1"]}, "transitive_tag_keys": ["team"]}}
    before = len(aws_sts.requests)
    answer = sts.assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName="chain", WebIdentityToken=oidc.token(**claim)
    )
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/real/chain"
    sent = [r for r in aws_sts.requests[before:] if r.get("Action") == "AssumeRole"]
    assert len(sent) == 1
    tags = {sent[0][f"Tags.member.{i}.Key"]: sent[0][f"Tags.member.{i}.Value"] for i in (1, 2)}
    assert tags == {"team": "red", "cost": "c1"}
    assert [v for k, v in sent[0].items() if k.startswith("TransitiveTagKeys.member.")] == ["team"]

    # AssumeRole with the admin credentials: its TransitiveTagKeys reach AWS as they were asked for.
    iam.update_assume_role_policy(
        RoleName="passthrough", PolicyDocument=trust(ROOT, ["sts:AssumeRole", "sts:TagSession"])
    )
    before = len(aws_sts.requests)
    gatehouse.client("sts").assume_role(
        RoleArn=role_arn,
        RoleSessionName="admin",
        Tags=[{"Key": "project", "Value": "p9"}, {"Key": "cost", "Value": "c2"}],
        TransitiveTagKeys=["project"],
    )
    sent = [r for r in aws_sts.requests[before:] if r.get("Action") == "AssumeRole"]
    assert [v for k, v in sent[0].items() if k.startswith("TransitiveTagKeys.member.")] == ["project"]
    # Without transitive tags, none are named.
    before = len(aws_sts.requests)
    gatehouse.client("sts").assume_role(
        RoleArn=role_arn, RoleSessionName="plain", Tags=[{"Key": "cost", "Value": "c3"}]
    )
    sent = [r for r in aws_sts.requests[before:] if r.get("Action") == "AssumeRole"]
    assert sent and not any(k.startswith("TransitiveTagKeys") for k in sent[0])


# --- federation: login_hint and multi-valued OIDC claims --------------------------------------------------------


@pytest.fixture(scope="module")
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC() as server:
        yield server


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    schema = [{"Name": "groups", "AttributeDataType": "String", "Mutable": True}]
    return str(idp.create_user_pool(PoolName="federation", Schema=schema)["UserPool"]["Id"])


@pytest.fixture(scope="module")
def saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[FakeSamlIdP]:
    with saml_idp_for(gatehouse, idp, pool_id) as server:
        yield server


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, corp: FakeOIDC, saml_idp: FakeSamlIdP) -> str:
    idp.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Corp",
        ProviderType="OIDC",
        ProviderDetails=corp_details(corp),
        AttributeMapping={"email": "email", "custom:groups": "groups"},
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
            ClientName="app",
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email", "profile"],
            CallbackURLs=[CALLBACK],
            LogoutURLs=[LOGOUT],
            SupportedIdentityProviders=["COGNITO", "Corp", "CorpSAML"],
        )["UserPoolClient"]["ClientId"]
    )


def user_attributes(idp: Any, pool_id: str, username: str) -> dict[str, str]:
    user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}


def test_login_hint_reaches_an_oidc_idp_and_not_a_saml_idp(
    gatehouse: GatehouseServer, client_id: str, corp: FakeOIDC, saml_idp: FakeSamlIdP
) -> None:
    """Cognito's authorize endpoint: with ``login_hint``, "when your authorization request invokes a redirect to
    OIDC IdPs or Google, Amazon Cognito adds a login_hint parameter to the request to that third-party
    authorizer"; SAML IdPs get none."""
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="Corp", login_hint="ann@corp.example"))
    assert response.status_code == 303 and "code" in query_of(response.headers["Location"]), response.text
    assert corp.authorize_requests[-1]["login_hint"] == "ann@corp.example"
    # A button of the hosted sign-in page leads to the same IdP request, hint included.
    page = Flow(gatehouse, client_id)
    login = page.http.get(page.authorize_url(login_hint="bea@corp.example"))
    assert login.status_code == 200
    button = next(
        url.replace("&amp;", "&")
        for url in re.findall(r'href="([^"]+)"', login.text)
        if "identity_provider=Corp&" in url.replace("&amp;", "&") or url.endswith("identity_provider=Corp")
    )
    page.run(urljoin(gatehouse.url, button))
    assert corp.authorize_requests[-1]["login_hint"] == "bea@corp.example"
    # Without one, none is sent.
    flow = Flow(gatehouse, client_id)
    flow.run(flow.authorize_url(identity_provider="Corp"))
    assert "login_hint" not in corp.authorize_requests[-1]
    # SAML: the AuthnRequest goes out without it.
    saml = Flow(gatehouse, client_id)
    first = saml.http.get(
        saml.authorize_url(identity_provider="CorpSAML", login_hint="ann@corp.example"), allow_redirects=False
    )
    assert first.status_code == 302 and first.headers["Location"].startswith(saml_idp.url)
    assert "login_hint" not in first.headers["Location"]


def test_a_multi_valued_oidc_claim_is_mapped_as_its_json_text(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, corp: FakeOIDC
) -> None:
    """A JSON array claim is mapped as its JSON text, so that a group whose name holds a comma (an LDAP
    distinguished name) is still one group for the application reading the attribute."""
    groups = ["cn=admins,ou=corp", "engineering"]
    corp.user = {"sub": "multi-1", "email": "multi@corp.example", "email_verified": True, "groups": groups}
    try:
        flow = Flow(gatehouse, client_id)
        response = flow.run(flow.authorize_url(identity_provider="Corp"))
        assert response.status_code == 303, response.text
    finally:
        corp.user = {"sub": "1001", "email": "ann@example.com", "email_verified": True, "name": "Ann"}
    stored = user_attributes(idp, pool_id, "Corp_multi-1")["custom:groups"]
    assert json.loads(stored) == groups


# --- SAML single logout: an IdP-initiated LogoutRequest at a browser without a session --------------------------


def logout_request_url(saml_idp: FakeSamlIdP, name_id: str, *, qualifier: str | None, sign: bool = True) -> str:
    """An IdP-initiated LogoutRequest (HTTP-Redirect) whose NameID names the SP it belongs to (SPNameQualifier,
    SAML Core §2.2.2), or none."""
    _, request = saml_idp.server.create_logout_request(
        slo_of(saml_idp.acs_url),
        saml_idp.sp_entity_id,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=name_id, sp_name_qualifier=qualifier),
        sign=False,
        expire=in_a_while(minutes=5),
    )
    info = saml_idp.server.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(request),
        slo_of(saml_idp.acs_url),
        "idp-relay",
        sign=sign,
        sigalg=SIG_RSA_SHA256 if sign else None,
    )
    return str(dict(info["headers"])["Location"])


def logout_response_of(location: str) -> str:
    """The XML of the LogoutResponse an HTTP-Redirect URL carries."""
    return zlib.decompress(base64.b64decode(query_of(location)["SAMLResponse"]), -15).decode()


def _on(url: str, base: str) -> str:
    """The same URL (path and query) on another base: the pool's own path."""
    parts = urlsplit(url)
    return f"{base}?{parts.query}"


def test_idp_initiated_logout_without_a_session_is_answered(
    gatehouse: GatehouseServer, pool_id: str, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """SAML Profiles §4.4.4.2: the session participant answers a LogoutRequest with a LogoutResponse, signed
    (§4.4.3.4), whether or not this browser still has a session: the IdP is waiting for it to continue its own
    logout with the next participant. An error page would leave the user stranded at the SP."""
    entity = f"urn:amazon:cognito:sp:{pool_id}"
    browser = requests.Session()  # no cookies: never signed in here, or the session ended already
    response = browser.get(logout_request_url(saml_idp, "ann@corp.example", qualifier=entity), allow_redirects=False)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(f"{saml_idp.url}/slo?") and "Signature=" in location
    assert query_of(location)["RelayState"] == "idp-relay"
    xml = logout_response_of(location)
    assert "urn:oasis:names:tc:SAML:2.0:status:Success" in xml and "InResponseTo=" in xml

    # Addressed to the pool's own path, a NameID without a qualifier is answered too; and at the global
    # endpoint (what the pool's SP metadata names), the IdP is found by its entity ID among every pool's.
    plain = logout_request_url(saml_idp, "bea@corp.example", qualifier=None)
    answered = browser.get(_on(plain, f"{gatehouse.url}/{pool_id}/saml2/logout"), allow_redirects=False)
    assert answered.status_code == 302 and answered.headers["Location"].startswith(f"{saml_idp.url}/slo?")
    anywhere = browser.get(logout_request_url(saml_idp, "dee@corp.example", qualifier=None), allow_redirects=False)
    assert anywhere.status_code == 302 and anywhere.headers["Location"].startswith(f"{saml_idp.url}/slo?")

    # What nobody can verify is not answered: unsigned, tampered, replayed, from an IdP no pool has, or naming
    # a pool that has no such IdP.
    with FakeSamlIdP(sp_entity_id=entity, acs_url=saml_idp.acs_url, sp_cert_pem=saml_idp.sp_cert_pem) as stranger:
        unknown = logout_request_url(stranger, "ann@corp.example", qualifier=None)
    refusals = [
        logout_request_url(saml_idp, "ann@corp.example", qualifier=entity, sign=False),
        logout_request_url(saml_idp, "ann@corp.example", qualifier=entity).replace("Signature=", "Signature=AA", 1),
        unknown,
        logout_request_url(saml_idp, "ann@corp.example", qualifier="urn:amazon:cognito:sp:us-east-1_nothing"),
    ]
    replayed = logout_request_url(saml_idp, "cy@corp.example", qualifier=entity)
    assert browser.get(replayed, allow_redirects=False).status_code == 302
    refusals.append(replayed)
    for url in refusals:
        refused = browser.get(url, allow_redirects=False)
        assert refused.status_code == 400 and "text/html" in refused.headers["Content-Type"], url
        assert "Location" not in refused.headers and "Traceback" not in refused.text
    # A pool path that is no pool: a page, not an error of the server.
    missing = browser.get(_on(plain, f"{gatehouse.url}/us-east-1_nothing/saml2/logout"), allow_redirects=False)
    assert missing.status_code in (400, 404) and "Traceback" not in missing.text


def test_idp_initiated_logout_still_ends_a_session_it_names(
    gatehouse: GatehouseServer, client_id: str, saml_idp: FakeSamlIdP
) -> None:
    """With a session from that IdP the request ends it, as before (the answer is the same signed Success)."""
    flow = Flow(gatehouse, client_id)
    response = flow.run(flow.authorize_url(identity_provider="CorpSAML", scope="openid email"))
    assert response.status_code == 303, response.text

    def has_session() -> bool:
        answer = flow.http.get(flow.authorize_url(scope="openid email"), allow_redirects=False)
        return answer.headers.get("Location", "").startswith(CALLBACK)

    assert has_session()
    ended = flow.http.get(saml_idp.logout_request_url("ann@corp.example", None), allow_redirects=False)
    assert ended.status_code == 302 and "SAMLResponse=" in ended.headers["Location"]
    assert not has_session()


def test_session_tag_keys_differing_only_in_case_are_refused(
    sts: Any, oidc: FakeOidcProvider, web_role: str, saml_setup: dict[str, Any]
) -> None:
    """Tag keys are case-insensitive ("you cannot have separate Department and department tag keys"): a token or
    an assertion naming both would give one principal tag two values."""
    token = oidc.token(**{TAGS_CLAIM: {"principal_tags": {"Team": ["red"], "team": ["blue"]}}})
    with pytest.raises(ClientError) as from_token:
        sts.assume_role_with_web_identity(RoleArn=web_role, RoleSessionName="web", WebIdentityToken=token)
    assert error_of(from_token)[:2] == ("InvalidParameterValue", 400)
    assert "case insensitive" in error_of(from_token)[2]
    idp: FakeAwsSamlIdP = saml_setup["idp"]
    role_arn, provider_arn = saml_setup["role_arn"], saml_setup["provider_arn"]
    both = {"PrincipalTag:Team": ["red"], "PrincipalTag:team": ["blue"]}
    assertion = idp.response(aws_attributes(role_arn, provider_arn, **both))
    with pytest.raises(ClientError) as from_assertion:
        sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=assertion)
    assert error_of(from_assertion)[:2] == ("InvalidParameterValue", 400)


def test_saml_session_duration_that_is_no_number_is_not_a_server_error(
    gatehouse: GatehouseServer, sts: Any, saml_setup: dict[str, Any]
) -> None:
    """SessionDuration is a whole number of seconds; a value of other digits (superscripts, Arabic-Indic) or of
    thousands of them is no duration at all -- never an internal error -- and leaves the assertion unused."""
    idp: FakeAwsSamlIdP = saml_setup["idp"]
    role_arn, provider_arn = saml_setup["role_arn"], saml_setup["provider_arn"]
    for value in ("\u00b3\u2076\u2070\u2070", "\u0663\u0666\u0660\u0660", "9" * 5000):
        assertion = idp.response(aws_attributes(role_arn, provider_arn, SessionDuration=[value]))
        try:
            answer = sts.assume_role_with_saml(RoleArn=role_arn, PrincipalArn=provider_arn, SAMLAssertion=assertion)
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] < 500, exc.response
        else:
            # Taken as no SessionDuration: the default hour.
            lasts = answer["Credentials"]["Expiration"].timestamp() - time.time()
            assert 3500 < lasts <= 3600, value
    assert "Traceback" not in gatehouse.log_text()


def test_developer_principal_tags_with_the_aws_prefix(gatehouse: GatehouseServer, iam: Any, sts: Any) -> None:
    """GetOpenIdTokenForDeveloperIdentity's PrincipalTags become session tags: one keyed ``aws:...`` is refused
    by STS in the basic flow (InvalidParameterValue) and, in the enhanced flow, GetCredentialsForIdentity gives
    Cognito's answer to an STS refusal -- never an error type cognito-identity does not have."""
    ci = gatehouse.client("cognito-identity")
    public_ci = gatehouse.client("cognito-identity", signed=False)
    developer = "login.hostile.app"
    pool_id = ci.create_identity_pool(
        IdentityPoolName="developer tags",
        AllowUnauthenticatedIdentities=False,
        AllowClassicFlow=True,
        DeveloperProviderName=developer,
    )["IdentityPoolId"]
    role_arn = iam.create_role(
        RoleName="developer-tags", AssumeRolePolicyDocument=identity_trust(pool_id, developer, tag_session=True)
    )["Role"]["Arn"]
    ci.set_identity_pool_roles(IdentityPoolId=pool_id, Roles={"authenticated": role_arn})
    tagged = ci.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={developer: "dev-1"}, PrincipalTags={"aws:dept": "ops"}
    )
    with pytest.raises(ClientError) as enhanced:
        public_ci.get_credentials_for_identity(
            IdentityId=tagged["IdentityId"], Logins={"cognito-identity.amazonaws.com": tagged["Token"]}
        )
    assert error_of(enhanced)[:2] == ("InvalidIdentityPoolConfigurationException", 400)
    with pytest.raises(ClientError) as basic:
        sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="dev", WebIdentityToken=tagged["Token"])
    assert error_of(basic)[:2] == ("InvalidParameterValue", 400)


def test_packed_policy_size_is_reported_for_session_tags(
    gatehouse: GatehouseServer, iam: Any, sts: Any, oidc: FakeOidcProvider, web_role: str
) -> None:
    """STS's PackedPolicySize: "the packed size of the session policies and session tags combined passed in the
    request" -- answered when only tags are passed too, and growing with them."""
    role = iam.create_role(
        RoleName="packed", AssumeRolePolicyDocument=trust(ROOT, ["sts:AssumeRole", "sts:TagSession"])
    )["Role"]["Arn"]
    admin_sts = gatehouse.client("sts")
    plain = admin_sts.assume_role(RoleArn=role, RoleSessionName="plain")
    assert "PackedPolicySize" not in plain
    few = admin_sts.assume_role(RoleArn=role, RoleSessionName="few", Tags=[{"Key": "team", "Value": "red"}])
    many_tags = [{"Key": f"k{i:02d}{secrets.token_hex(30)}", "Value": secrets.token_hex(50)} for i in range(20)]
    many = admin_sts.assume_role(RoleArn=role, RoleSessionName="many", Tags=many_tags)
    assert 1 <= few["PackedPolicySize"] < many["PackedPolicySize"] <= 100
    token = oidc.token(**{TAGS_CLAIM: {"principal_tags": {"team": ["red"]}}})
    web = sts.assume_role_with_web_identity(RoleArn=web_role, RoleSessionName="web", WebIdentityToken=token)
    assert 1 <= web["PackedPolicySize"] <= 100
    # Too many for the packed limit: the refusal says by how much ("the error message indicates by percentage
    # how close the policies and tags combined come to the upper size limit").
    widest = [{"Key": secrets.token_hex(64), "Value": secrets.token_hex(128)} for _ in range(50)]
    with pytest.raises(ClientError) as too_big:
        admin_sts.assume_role(RoleArn=role, RoleSessionName="widest", Tags=widest)
    code, status, message = error_of(too_big)
    assert (code, status) == ("PackedPolicyTooLarge", 400)
    percent = re.search(r"(\d+)% of the upper size limit", message)
    assert percent is not None and int(percent.group(1)) > 100, message
