"""The inbound federation Lambda trigger, end to end: a pool's ``LambdaConfig.InboundFederation`` names a function
of the fake Lambda service (tests/fakes/lambda_service.py), and a browser signs in through an OpenID Connect IdP
(tests/fakes/oauth.py) or pysaml2's SAML IdP. Each test checks the event the function received and what its
``userAttributesToMap`` did to the profile and the tokens; a refusal and a malformed answer reach the app as the
error of its redirect, and store nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.federation_support import Flow, corp_details, saml_idp_for, usernames, verified_id_token
from tests.e2e.oauth_support import CALLBACK, OAuthPool, make_pool, make_user, query_of
from tests.fakes.lambda_service import FakeLambda
from tests.fakes.oauth import FakeOIDC
from tests.support import GatehouseServer

MAPPING = {
    "email": "email",
    "email_verified": "email_verified",
    "name": "name",
    "given_name": "given_name",
    "family_name": "surname",
}

NAME_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, functions: FakeLambda) -> Iterator[GatehouseServer]:
    """Trigger functions invoked at the fake Lambda service."""
    config = f"""version: 1
server:
{functions.server_config()}pools: []
"""
    server = GatehouseServer(tmp_path_factory.mktemp("gatehouse") / "data", config=config)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def corp() -> Iterator[FakeOIDC]:
    with FakeOIDC(client_id="corp-client", client_secret="corp-secret") as server:
        server.user = {
            "sub": "emp-1",
            "email": "Emp1@Corp.Example",
            "email_verified": True,
            "name": "Emp One",
            "given_name": "Emp",
            "groups": ["eng", "ops"],
        }
        yield server


def _federated_pool(gatehouse: GatehouseServer, idp: Any, corp: FakeOIDC, name: str, **pool_args: Any) -> OAuthPool:
    pool = make_pool(idp, gatehouse.url, name, **pool_args)
    idp.create_identity_provider(
        UserPoolId=pool.pool_id,
        ProviderName="Corp",
        ProviderType="OIDC",
        ProviderDetails=corp_details(corp, authorize_scopes="openid email profile"),
        AttributeMapping=MAPPING,
    )
    idp.update_user_pool_client(
        UserPoolId=pool.pool_id,
        ClientId=pool.public_id,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", "profile"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["Corp"],
    )
    return pool


def _inbound(arn: str) -> dict[str, Any]:
    return {"InboundFederation": {"LambdaVersion": "V1_0", "LambdaArn": arn}}


def _sign_in(gatehouse: GatehouseServer, pool: OAuthPool, provider: str = "Corp") -> dict[str, Any]:
    """A sign-in through ``provider``: the app's redirect parameters, and its tokens when it got a code."""
    flow = Flow(gatehouse, pool.public_id)
    response = flow.run(flow.authorize_url(identity_provider=provider, scope="openid email profile"))
    assert response.status_code in (302, 303), response.text
    answer: dict[str, Any] = query_of(response.headers["Location"])
    if "code" in answer:
        tokens = flow.tokens(answer["code"])
        answer["id_claims"] = verified_id_token(gatehouse, pool.pool_id, pool.public_id, tokens["id_token"])
    return answer


def _attributes(idp: Any, pool_id: str, username: str) -> dict[str, str]:
    user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}


def _merged(event: dict[str, Any]) -> dict[str, str]:
    """What the guide's examples start from: the IdP's attributes, userInfo and idToken merged."""
    attributes = event["request"]["attributes"]
    return {**attributes.get("userInfo", {}), **attributes.get("idToken", {})}


def test_the_event_and_a_function_that_rewrites_and_drops_attributes(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda, corp: FakeOIDC
) -> None:
    def rewrite(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        attributes = _merged(event)
        attributes["email"] = attributes["email"].lower()
        attributes["name"] = attributes["name"] + " (Corp)"
        attributes.pop("given_name", None)  # dropped: never stored
        if "surname" not in attributes:
            attributes["surname"] = "Onesson"  # added, and mapped as the IdP's claim would be
        return {**event, "response": {"userAttributesToMap": attributes}}  # (the event received stays as it was)

    arn = functions.add("inbound-rewrite", rewrite)
    pool = _federated_pool(gatehouse, idp, corp, "inboundrewrite", LambdaConfig=_inbound(arn))
    described = idp.describe_user_pool(UserPoolId=pool.pool_id)["UserPool"]["LambdaConfig"]
    assert described == _inbound(arn)

    first = _sign_in(gatehouse, pool)
    assert "code" in first, first
    [event] = functions.events("inbound-rewrite")
    assert event["version"] == "1" and event["triggerSource"] == "InboundFederation_ExternalProvider"
    assert event["userPoolId"] == pool.pool_id and event["region"] == pool.pool_id.split("_")[0]
    assert event["userName"] == "Corp_emp-1"
    assert event["callerContext"]["clientId"] == pool.public_id
    assert event["request"]["providerName"] == "Corp" and event["request"]["providerType"] == "OIDC"
    attributes = event["request"]["attributes"]
    assert set(attributes) == {"tokenResponse", "idToken", "userInfo"}
    # No upstream token is handed out: Gatehouse keeps none once the sign-in is verified.
    assert attributes["tokenResponse"] == {}
    id_token = attributes["idToken"]
    assert id_token["sub"] == "emp-1" and id_token["iss"] == corp.issuer and id_token["aud"] == "corp-client"
    # Every value as text, as AttributeMapping would write it.
    assert id_token["email_verified"] == "true" and id_token["groups"] == '["eng","ops"]'
    assert isinstance(id_token["exp"], str) and int(id_token["exp"]) > 0
    assert attributes["userInfo"]["given_name"] == "Emp"
    assert event["response"] == {"userAttributesToMap": {}}

    profile = _attributes(idp, pool.pool_id, "Corp_emp-1")
    assert profile["email"] == "emp1@corp.example" and profile["name"] == "Emp One (Corp)"
    assert profile["family_name"] == "Onesson" and profile["email_verified"] == "true"
    assert "given_name" not in profile
    claims = first["id_claims"]
    assert claims["email"] == "emp1@corp.example" and claims["name"] == "Emp One (Corp)"
    assert "given_name" not in claims and claims["cognito:username"] == "Corp_emp-1"

    # A returning user: the function runs again, before the update.
    corp.user = {**corp.user, "name": "Emp Renamed", "given_name": "Emmy", "surname": "Other"}
    second = _sign_in(gatehouse, pool)
    assert "code" in second, second
    assert len(functions.events("inbound-rewrite")) == 2
    assert functions.events("inbound-rewrite")[1]["request"]["attributes"]["userInfo"]["surname"] == "Other"
    profile = _attributes(idp, pool.pool_id, "Corp_emp-1")
    assert profile["name"] == "Emp Renamed (Corp)"
    assert profile["family_name"] == "Other"  # passed through this time
    assert "given_name" not in profile
    assert second["id_claims"]["name"] == "Emp Renamed (Corp)"
    assert usernames(idp, pool.pool_id) == {"Corp_emp-1"}


def test_a_function_that_raises_refuses_the_sign_in_and_stores_nothing(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda, corp: FakeOIDC
) -> None:
    refuse = {"now": True}

    def gate(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        if refuse["now"]:
            raise PermissionError("Contractors sign in elsewhere")
        return event

    arn = functions.add("inbound-gate", gate)
    pool = _federated_pool(gatehouse, idp, corp, "inboundgate", LambdaConfig=_inbound(arn))
    refused = _sign_in(gatehouse, pool)
    assert refused["error_description"] == "InboundFederation failed with error Contractors sign in elsewhere."
    assert "code" not in refused and refused["state"] == "app-state-1"
    assert usernames(idp, pool.pool_id) == set()

    refuse["now"] = False
    assert "code" in _sign_in(gatehouse, pool)  # handed back unchanged: the IdP's attributes stand
    assert _attributes(idp, pool.pool_id, "Corp_emp-1")["name"] == "Emp One"

    refuse["now"] = True
    corp.user = {**corp.user, "name": "Emp Changed"}
    refused = _sign_in(gatehouse, pool)
    assert refused["error_description"] == "InboundFederation failed with error Contractors sign in elsewhere."
    assert _attributes(idp, pool.pool_id, "Corp_emp-1")["name"] == "Emp One"  # the refused update is not stored


@pytest.mark.parametrize(
    "response",
    [
        {"userAttributesToMap": "email=a@b.example"},
        {"userAttributesToMap": ["email"]},
        {"userAttributesToMap": {"email": {"value": "a@b.example"}}},
        {"userAttributesToMap": {"email": ["a@b.example"]}},
        "not an object",
    ],
)
def test_a_malformed_answer_is_an_invalid_lambda_response(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda, corp: FakeOIDC, response: Any
) -> None:
    def malformed(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"] = response
        return event

    arn = functions.add("inbound-malformed", malformed)
    pool = _federated_pool(gatehouse, idp, corp, "inboundmalformed", LambdaConfig=_inbound(arn))
    refused = _sign_in(gatehouse, pool)
    assert refused["error_description"] == "Unrecognizable lambda output"
    assert "code" not in refused
    assert usernames(idp, pool.pool_id) == set()


def test_scalars_are_taken_as_text_and_null_leaves_an_attribute_out(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda, corp: FakeOIDC
) -> None:
    def scalars(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["userAttributesToMap"] = {
            "email": "emp1@corp.example",
            "email_verified": True,
            "name": 42,
            "given_name": None,
        }
        return event

    arn = functions.add("inbound-scalars", scalars)
    pool = _federated_pool(gatehouse, idp, corp, "inboundscalars", LambdaConfig=_inbound(arn))
    assert "code" in _sign_in(gatehouse, pool)
    profile = _attributes(idp, pool.pool_id, "Corp_emp-1")
    assert profile["email_verified"] == "true" and profile["name"] == "42"
    assert "given_name" not in profile


def test_an_empty_or_unchanged_answer_is_as_if_no_function_ran(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda, corp: FakeOIDC
) -> None:
    def empty(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        return event  # userAttributesToMap stays {}

    def unchanged(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["userAttributesToMap"] = _merged(event)
        return event

    profiles = []
    for name, lambda_config in (
        ("inboundnone", {}),
        ("inboundempty", _inbound(functions.add("inbound-empty", empty))),
        ("inboundsame", _inbound(functions.add("inbound-same", unchanged))),
    ):
        pool = _federated_pool(gatehouse, idp, corp, name, LambdaConfig=lambda_config)
        answer = _sign_in(gatehouse, pool)
        assert "code" in answer, answer
        profile = _attributes(idp, pool.pool_id, "Corp_emp-1")
        profile.pop("sub")
        profile["identities"] = profile["identities"].split('"dateCreated"')[0]
        profiles.append(profile)
    assert profiles[0] == profiles[1] == profiles[2]
    assert profiles[0]["given_name"] == "Emp" and profiles[0]["email"] == "Emp1@Corp.Example"
    assert len(functions.events("inbound-empty")) == 1 and len(functions.events("inbound-same")) == 1


def test_only_version_1_0_is_taken(gatehouse: GatehouseServer, idp: Any, functions: FakeLambda) -> None:
    arn = functions.arn("inbound-version")
    with pytest.raises(ClientError) as refused:
        idp.create_user_pool(
            PoolName="inboundversion", LambdaConfig={"InboundFederation": {"LambdaVersion": "V2_0", "LambdaArn": arn}}
        )
    assert refused.value.response["Error"]["Code"] in ("InvalidParameterException", "ValidationException")
    pool_id = idp.create_user_pool(PoolName="inboundversion", LambdaConfig=_inbound(arn))["UserPool"]["Id"]
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"] == _inbound(arn)


def test_a_saml_sign_in_hands_the_assertion_s_attributes(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda
) -> None:
    def groups_to_attribute(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        saml = dict(event["request"]["attributes"]["samlResponse"])
        # The guide's example: the IdP's groups reduced to the ones the app knows, the rest passed through.
        known = {"engineering": "Developers", "corp-admins": "Administrators"}
        groups = [known[g] for g in saml.pop("groups").strip("[]").split(", ") if g in known]
        event["response"]["userAttributesToMap"] = {**saml, "app_groups": ",".join(groups)}
        return event

    arn = functions.add("inbound-saml", groups_to_attribute)
    schema = [{"Name": "groups", "AttributeDataType": "String", "Mutable": True}]
    pool = make_pool(idp, gatehouse.url, "inboundsaml", LambdaConfig=_inbound(arn), Schema=schema)
    with saml_idp_for(gatehouse, idp, pool.pool_id) as saml_idp:
        idp.create_identity_provider(
            UserPoolId=pool.pool_id,
            ProviderName="CorpSAML",
            ProviderType="SAML",
            ProviderDetails={"MetadataURL": f"{saml_idp.url}/metadata", "RequestSigningAlgorithm": "rsa-sha256"},
            AttributeMapping={"email": "email", "name": NAME_CLAIM, "custom:groups": "app_groups"},
        )
        idp.update_user_pool_client(
            UserPoolId=pool.pool_id,
            ClientId=pool.public_id,
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email", "profile"],
            CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=["CorpSAML"],
        )
        answer = _sign_in(gatehouse, pool, "CorpSAML")
        assert "code" in answer, answer
    [event] = functions.events("inbound-saml")
    assert event["request"]["providerName"] == "CorpSAML" and event["request"]["providerType"] == "SAML"
    assert set(event["request"]["attributes"]) == {"samlResponse"}
    saml = event["request"]["attributes"]["samlResponse"]
    assert saml["NameID"] == "ann@corp.example" and saml["email"] == "ann@corp.example"
    assert saml[NAME_CLAIM] == "Ann Corp"
    assert saml["groups"] == "[engineering, corp-admins]"
    assert event["userName"] == "CorpSAML_ann@corp.example"
    profile = _attributes(idp, pool.pool_id, "CorpSAML_ann@corp.example")
    assert profile["custom:groups"] == "Developers,Administrators"
    assert profile["email"] == "ann@corp.example" and profile["name"] == "Ann Corp"


def test_links_go_by_what_the_idp_said_not_by_the_function(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda, corp: FakeOIDC
) -> None:
    """AdminLinkProviderForUser on the IdP's email: a function that normalises addresses must not land another
    account of the IdP on the linked user (the link is to "a specified attribute name and value from the external
    IdP")."""

    def normalise(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        attributes = _merged(event)
        local, _, domain = attributes["email"].lower().partition("@")
        attributes["email"] = local.split("+")[0] + "@" + domain
        return {**event, "response": {"userAttributesToMap": attributes}}

    arn = functions.add("inbound-normalise", normalise)
    pool = _federated_pool(gatehouse, idp, corp, "inboundlinks", LambdaConfig=_inbound(arn))
    make_user(idp, pool.pool_id, "alice", "alice@corp.example")
    idp.admin_link_provider_for_user(
        UserPoolId=pool.pool_id,
        DestinationUser={"ProviderName": "Cognito", "ProviderAttributeValue": "alice"},
        SourceUser={
            "ProviderName": "Corp",
            "ProviderAttributeName": "email",
            "ProviderAttributeValue": "alice@corp.example",
        },
    )
    corp.user = {"sub": "mallory-1", "email": "Alice+x@Corp.Example", "email_verified": True, "name": "Mallory"}
    answer = _sign_in(gatehouse, pool)
    assert answer["id_claims"]["cognito:username"] == "Corp_mallory-1"  # a profile of its own, not alice
    assert "identities" not in _attributes(idp, pool.pool_id, "alice")

    # The IdP's own word for the linked address still lands on alice.
    corp.user = {"sub": "alice-1", "email": "alice@corp.example", "email_verified": True, "name": "Alice"}
    assert _sign_in(gatehouse, pool)["id_claims"]["cognito:username"] == "alice"
