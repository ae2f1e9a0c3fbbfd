"""A SAML Response carries one assertion (SAML Profiles §4.1.4.2: the bearer assertion the user signs in with):
one with several is refused, over real HTTP, both at the ACS and by STS AssumeRoleWithSAML.

The attack these guard against: an attacker holds two assertions the IdP signed for him, and a victim's
(already used) one. Encrypting costs him nothing -- the pool's certificate is public (GetSigningCertificate) --
so he posts his plain assertion with the other two encrypted. Each assertion is genuine and checked; a Response
mixing them (the first one's checks and attributes, another one's NameID and a single replay marker) would sign
him in as the victim. Refused before any of it is read, the Response signs in nobody and changes nobody."""

from __future__ import annotations

import base64
import json
import re
import tempfile
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from botocore.exceptions import ClientError
from saml2.sigver import get_pem_wrapped_unwrapped, pre_encryption_part

from tests.e2e.federation_support import Flow, saml_idp_for
from tests.e2e.oauth_support import CALLBACK, query_of
from tests.fakes.saml import FakeSamlIdP
from tests.saml_idp_fake import FakeAwsSamlIdP, aws_attributes
from tests.support import GatehouseServer

VICTIM = "victim@corp.example"
ATTACKER = "mallory@corp.example"
# How pysaml2's IdP writes a Response: the SAML assertion namespace as ns1, declared on the Response.
_NAMESPACES = (
    'xmlns:ns1="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:ns2="http://www.w3.org/2000/09/xmldsig#" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
# An EncryptedAssertion nobody can decrypt: pysaml2 counts it, skips it, and checks the plain assertions alone.
_UNDECRYPTABLE = (
    '<ns1:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" '
    'Type="http://www.w3.org/2001/04/xmlenc#Element"><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue>'
    "</xenc:CipherData></xenc:EncryptedData></ns1:EncryptedAssertion>"
)


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="saml-multi-assertion")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def saml_idp(gatehouse: GatehouseServer, idp: Any, pool_id: str) -> Iterator[FakeSamlIdP]:
    with saml_idp_for(gatehouse, idp, pool_id) as server:
        yield server


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str, saml_idp: FakeSamlIdP) -> str:
    # Corp: default settings (plain and encrypted assertions both accepted, no IdP-initiated sign-in); CorpInit: the
    # same IdP, IdP-initiated sign-in allowed.
    for name, details in (("Corp", {}), ("CorpInit", {"IDPInit": "true"})):
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName=name, ProviderType="SAML",
            ProviderDetails={"MetadataFile": saml_idp.metadata_xml(), **details}, AttributeMapping={"email": "email"},
        )  # fmt: skip
    return str(
        idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName="app", AllowedOAuthFlowsUserPoolClient=True, AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email"], CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=["Corp", "CorpInit"],
        )["UserPoolClient"]["ClientId"]
    )  # fmt: skip


def started(gatehouse: GatehouseServer, client_id: str) -> tuple[Flow, str, str]:
    """A sign-in sent to the IdP: the browser, our AuthnRequest's ID and the RelayState."""
    flow = Flow(gatehouse, client_id)
    response = flow.http.get(flow.authorize_url(identity_provider="Corp", scope="openid email"), allow_redirects=False)
    assert response.status_code == 302, response.text
    query = dict(parse_qsl(urlsplit(response.headers["Location"]).query))
    request = zlib.decompress(base64.b64decode(query["SAMLRequest"]), -zlib.MAX_WBITS).decode()
    match = re.search(r'\sID="([^"]+)"', request)
    assert match is not None
    return flow, match.group(1), query["RelayState"]


def posted(gatehouse: GatehouseServer, flow: Flow, xml: str, relay_state: str) -> str | None:
    """Post a Response to the ACS; the signed-in user's name, or None when it was refused."""
    response = flow.http.post(
        f"{gatehouse.url}/saml2/idpresponse",
        data={"SAMLResponse": base64.b64encode(xml.encode()).decode(), "RelayState": relay_state},
        allow_redirects=False,
    )
    assert "Traceback" not in response.text
    code = query_of(response.headers.get("Location", "")).get("code")
    if response.status_code not in (302, 303) or not code:
        return None
    claims = json.loads(base64.urlsafe_b64decode(flow.tokens(code)["id_token"].split(".")[1] + "=="))
    return str(claims["cognito:username"])


def plain(response_xml: str) -> str:
    """The signed Assertion element of a Response pysaml2's IdP wrote."""
    match = re.search(r"<ns1:Assertion .*?</ns1:Assertion>", response_xml, re.S)
    assert match is not None
    return match.group(0)


def encrypted(saml_idp: FakeSamlIdP, *responses: str) -> str:
    """The signed assertions of ``responses`` in one EncryptedAssertion for the pool, as anyone can make one: the
    pool's public certificate is all it takes (no key of the IdP is used). One assertion is encrypted as IdPs do
    it (the element); several together as the EncryptedAssertion's content."""
    assertions = "".join(
        plain(xml).replace("<ns1:Assertion ", f"<ns1:Assertion {_NAMESPACES} ", 1) for xml in responses
    )
    wrapper = (
        '<?xml version="1.0"?><ns0:Response xmlns:ns0="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:ns1="urn:oasis:names:tc:SAML:2.0:assertion" ID="_wrapper" Version="2.0" '
        f'IssueInstant="2020-01-01T00:00:00Z"><ns1:EncryptedAssertion>{assertions}</ns1:EncryptedAssertion>'
        "</ns0:Response>"
    )
    if len(responses) == 1:
        text = str(saml_idp.server._encrypt_assertion(saml_idp.sp_cert_pem, None, wrapper))
    else:
        wrapped, unwrapped = get_pem_wrapped_unwrapped(saml_idp.sp_cert_pem)
        template = pre_encryption_part(encrypt_cert=unwrapped)
        template.type = "http://www.w3.org/2001/04/xmlenc#Content"
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as certificate:
            certificate.write(wrapped)
            certificate.flush()
            text = str(
                saml_idp.server.sec.encrypt_assertion(
                    wrapper, certificate.name, template, node_xpath="//*[local-name()='EncryptedAssertion']"
                )
            )
    match = re.search(r"<ns1:EncryptedAssertion>.*?</ns1:EncryptedAssertion>", text, re.S)
    assert match is not None
    return match.group(0)


def with_assertions(response_xml: str, *extra: str) -> str:
    """The Response with more top-level assertion elements after its own."""
    return response_xml.replace("</ns1:Assertion>", "</ns1:Assertion>" + "".join(extra), 1)


def email_of(idp: Any, pool_id: str, username: str) -> str:
    attributes = idp.admin_get_user(UserPoolId=pool_id, Username=username)["UserAttributes"]
    return str(next(a["Value"] for a in attributes if a["Name"] == "email"))


def as_user(saml_idp: FakeSamlIdP, request_id: str, user: str) -> str:
    return saml_idp.response_xml(request_id, name_id=user, attributes={"email": [user]})


@pytest.fixture(scope="module")
def victims_response(gatehouse: GatehouseServer, client_id: str, saml_idp: FakeSamlIdP) -> str:
    """The victim's own sign-in, whose posted Response the attacker later gets hold of (its assertion used)."""
    flow, request_id, relay_state = started(gatehouse, client_id)
    xml = as_user(saml_idp, request_id, VICTIM)
    assert posted(gatehouse, flow, xml, relay_state) == f"Corp_{VICTIM}"
    # Posted again, alone, it is a replay.
    again, request_id, relay_state = started(gatehouse, client_id)
    assert posted(gatehouse, again, xml, relay_state) is None
    return xml


@pytest.mark.parametrize("own_assertions", [2, 1], ids=["two-of-his-own", "his-own-twice"])
def test_a_used_assertion_of_another_user_rides_along_encrypted(
    gatehouse: GatehouseServer,
    idp: Any,
    pool_id: str,
    client_id: str,
    saml_idp: FakeSamlIdP,
    victims_response: str,
    own_assertions: int,
) -> None:
    flow, request_id, relay_state = started(gatehouse, client_id)
    mine = as_user(saml_idp, request_id, ATTACKER)
    second = as_user(saml_idp, request_id, ATTACKER) if own_assertions == 2 else mine
    forged = with_assertions(mine, encrypted(saml_idp, second), encrypted(saml_idp, victims_response))
    log_start = len(gatehouse.log_text())
    assert posted(gatehouse, flow, forged, relay_state) is None
    assert '"reason":"saml_assertion_count"' in gatehouse.log_text()[log_start:]
    assert email_of(idp, pool_id, f"Corp_{VICTIM}") == VICTIM
    # An assertion of his own, alone, is good: what was refused is the Response holding several.
    flow, request_id, relay_state = started(gatehouse, client_id)
    assert posted(gatehouse, flow, as_user(saml_idp, request_id, ATTACKER), relay_state) == f"Corp_{ATTACKER}"


def test_idp_initiated_response_with_several_assertions_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP, victims_response: str
) -> None:
    flow = Flow(gatehouse, client_id)
    relay_state = urlencode(
        {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK, "identity_provider": "CorpInit",
         "scope": "openid email", "code_challenge": flow.challenge, "code_challenge_method": "S256"}
    )  # fmt: skip
    mine = as_user(saml_idp, None, ATTACKER)
    forged = with_assertions(
        mine, encrypted(saml_idp, as_user(saml_idp, None, ATTACKER)), encrypted(saml_idp, victims_response)
    )
    log_start = len(gatehouse.log_text())
    assert posted(gatehouse, flow, forged, relay_state) is None
    assert '"reason":"saml_assertion_count"' in gatehouse.log_text()[log_start:]
    assert email_of(idp, pool_id, f"Corp_{VICTIM}") == VICTIM
    # His own unsolicited assertion, alone, is good.
    assert posted(gatehouse, flow, mine, relay_state) == f"CorpInit_{ATTACKER}"


def test_one_encrypted_assertion_holding_several_is_refused(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, saml_idp: FakeSamlIdP, victims_response: str
) -> None:
    flow, request_id, relay_state = started(gatehouse, client_id)
    mine = as_user(saml_idp, request_id, ATTACKER)
    # A single EncryptedAssertion on the wire, two assertions once decrypted.
    forged = mine.replace(plain(mine), encrypted(saml_idp, mine, victims_response), 1)
    log_start = len(gatehouse.log_text())
    assert posted(gatehouse, flow, forged, relay_state) is None
    assert '"reason":"saml_assertion_count"' in gatehouse.log_text()[log_start:]
    assert email_of(idp, pool_id, f"Corp_{VICTIM}") == VICTIM


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(lambda victim: [victim], id="two-plain"),
        pytest.param(lambda victim: [victim, _UNDECRYPTABLE], id="two-plain-and-an-encrypted-one"),
    ],
)
def test_several_plain_signed_assertions_are_refused(
    gatehouse: GatehouseServer, client_id: str, saml_idp: FakeSamlIdP, extra: Any
) -> None:
    flow, request_id, relay_state = started(gatehouse, client_id)
    # Both assertions signed by the IdP for this very request: still one too many.
    mine = as_user(saml_idp, request_id, ATTACKER)
    victim = plain(as_user(saml_idp, request_id, VICTIM))
    log_start = len(gatehouse.log_text())
    assert posted(gatehouse, flow, with_assertions(mine, *extra(victim)), relay_state) is None
    assert '"reason":"saml_assertion_count"' in gatehouse.log_text()[log_start:]


# --- STS AssumeRoleWithSAML --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_idp() -> FakeAwsSamlIdP:
    return FakeAwsSamlIdP()


@pytest.fixture(scope="module")
def role(gatehouse: GatehouseServer, aws_idp: FakeAwsSamlIdP) -> dict[str, str]:
    iam = gatehouse.client("iam")
    provider_arn = iam.create_saml_provider(Name="corp-multi", SAMLMetadataDocument=aws_idp.metadata_xml())[
        "SAMLProviderArn"
    ]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Federated": provider_arn}, "Action": "sts:AssumeRoleWithSAML"}
        ],
    }
    role_arn = iam.create_role(RoleName="corp-multi", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    return {"provider_arn": provider_arn, "role_arn": role_arn}


def aws_response_xml(aws_idp: FakeAwsSamlIdP, role: dict[str, str], subject: str) -> str:
    attributes = aws_attributes(role["role_arn"], role["provider_arn"], session=subject.split("@")[0])
    return base64.b64decode(aws_idp.response(attributes, subject=subject)).decode()


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(lambda victim: [victim], id="two-plain"),
        pytest.param(lambda victim: [victim, _UNDECRYPTABLE], id="two-plain-and-an-encrypted-one"),
    ],
)
def test_assume_role_with_saml_refuses_several_assertions(
    sts: Any, aws_idp: FakeAwsSamlIdP, role: dict[str, str], extra: Any
) -> None:
    mine = aws_response_xml(aws_idp, role, ATTACKER)
    victim = plain(aws_response_xml(aws_idp, role, VICTIM))
    forged = base64.b64encode(with_assertions(mine, *extra(victim)).encode()).decode()
    with pytest.raises(ClientError) as refused:
        sts.assume_role_with_saml(RoleArn=role["role_arn"], PrincipalArn=role["provider_arn"], SAMLAssertion=forged)
    assert refused.value.response["Error"]["Code"] == "InvalidIdentityToken"
    assert "exactly one assertion" in refused.value.response["Error"]["Message"]
    # The attacker's own Response, alone, is good (and names him).
    alone = base64.b64encode(mine.encode()).decode()
    answer = sts.assume_role_with_saml(RoleArn=role["role_arn"], PrincipalArn=role["provider_arn"], SAMLAssertion=alone)
    assert answer["Subject"] == ATTACKER
