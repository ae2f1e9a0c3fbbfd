"""OAuth 2.0 Token Exchange (RFC 8693): GetDerivedToken through boto3 and the token-exchange grant of
/oauth2/token over HTTP, against a real server.

The spec is botocore's GetDerivedToken model and Cognito's "Exchanging tokens for downstream services": the
issued token is narrowed in scope ("the intersection of these requested scopes, the scopes of your SubjectToken,
and the scopes that are allowed for the requesting app client"), bound to one audience or resource server, carries
an ``act`` claim naming the actor when an ActorToken is given (RFC 8693 §4.1), and needs the client's
ALLOW_TOKEN_EXCHANGE_IMPERSONATION / _DELEGATION flow. Issued tokens are checked with PyJWT against the pool's
JWKS, never with Gatehouse's own code.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests
from botocore.exceptions import ClientError
from jwt.algorithms import RSAAlgorithm

from gateway.secretbox import SecretBox
from tests.e2e.oauth_support import CALLBACK, Browser, query_of
from tests.support import GatehouseServer

PASSWORD = "Correct-Horse-9"
API = "https://api.example.com"
READ, WRITE = f"{API}/read", f"{API}/write"
ADMIN = "aws.cognito.signin.user.admin"
GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_URN = "urn:ietf:params:oauth:token-type:access_token"
ID_URN = "urn:ietf:params:oauth:token-type:id_token"
EXCHANGE_FLOWS = ["ALLOW_TOKEN_EXCHANGE_IMPERSONATION", "ALLOW_TOKEN_EXCHANGE_DELEGATION"]
DOWNSTREAM = "https://downstream.example.com"


@dataclass
class Setup:
    pool_id: str
    web_id: str  # the user's app: code flow, every scope
    web_secret: str
    exchanger_id: str  # the service that exchanges: both exchange flows, openid email READ
    exchanger_secret: str
    service_id: str  # a machine client whose own token is an actor token
    service_secret: str
    public_id: str  # a public client: signs users in through the API and impersonates them
    user_sub: str


# --- fixtures ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    server = GatehouseServer(tmp_path_factory.mktemp("token-exchange") / "data")
    server.start()
    yield server
    server.stop()


def make_user(idp: Any, pool_id: str, username: str) -> str:
    created = idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return str(next(a["Value"] for a in created["User"]["Attributes"] if a["Name"] == "sub"))


@pytest.fixture(scope="module")
def setup(idp: Any) -> Setup:
    pool_id = idp.create_user_pool(PoolName="exchange")["UserPool"]["Id"]
    idp.create_resource_server(
        UserPoolId=pool_id,
        Identifier=API,
        Name="api",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "R"}, {"ScopeName": "write", "ScopeDescription": "W"}],
    )
    code_flow = {
        "AllowedOAuthFlowsUserPoolClient": True,
        "AllowedOAuthFlows": ["code"],
        "CallbackURLs": [CALLBACK],
        "SupportedIdentityProviders": ["COGNITO"],
    }
    web = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        AllowedOAuthScopes=["openid", "email", "profile", ADMIN, READ, WRITE],
        **code_flow,
    )["UserPoolClient"]
    exchanger = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="exchanger",
        GenerateSecret=True,
        ExplicitAuthFlows=EXCHANGE_FLOWS,
        AllowedOAuthScopes=["openid", "email", READ],
        **code_flow,
    )["UserPoolClient"]
    service = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="service",
        GenerateSecret=True,
        # A machine client may hold the client token flow and the exchange flows together.
        ExplicitAuthFlows=["ALLOW_CLIENT_TOKEN_AUTH", "ALLOW_TOKEN_EXCHANGE_DELEGATION"],
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=[READ],
    )["UserPoolClient"]
    public = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="public",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", EXCHANGE_FLOWS[0]],
    )["UserPoolClient"]
    sub = make_user(idp, pool_id, "alice")
    make_user(idp, pool_id, "agent")
    return Setup(
        pool_id,
        web["ClientId"],
        web["ClientSecret"],
        exchanger["ClientId"],
        exchanger["ClientSecret"],
        service["ClientId"],
        service["ClientSecret"],
        public["ClientId"],
        sub,
    )


def oauth_tokens(gatehouse: GatehouseServer, s: Setup, username: str, scope: str) -> dict[str, Any]:
    """The user's tokens from the web client's code flow through the hosted login page."""
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(s.web_id, scope=scope), username)
    code = query_of(back.headers["Location"])["code"]
    answer = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=(s.web_id, s.web_secret),
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


ALL_SCOPES = f"openid email profile {ADMIN} {READ} {WRITE}"


@pytest.fixture(scope="module")
def alice(gatehouse: GatehouseServer, setup: Setup) -> dict[str, Any]:
    return oauth_tokens(gatehouse, setup, "alice", ALL_SCOPES)


def api_sign_in(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    answer = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD}
    )
    return dict(answer["AuthenticationResult"])


def verified(gatehouse: GatehouseServer, pool_id: str, token: str, audience: str | None = None) -> dict[str, Any]:
    """The token's claims as an independent verifier sees them: PyJWT against the pool's published JWKS."""
    issuer = f"{gatehouse.url}/{pool_id}"
    key = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json").get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        issuer=issuer,
        audience=audience,
        options={"verify_aud": audience is not None, "require": ["exp", "iat", "jti"]},
    )
    assert isinstance(claims, dict)
    return claims


def refused(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        call(**kwargs)
    return str(exc.value.response["Error"]["Code"]), str(exc.value.response["Error"]["Message"])


def derive(public_idp: Any, s: Setup, subject: str, **kwargs: Any) -> dict[str, Any]:
    """GetDerivedToken by the exchanger, unsigned, with its secret."""
    return dict(public_idp.get_derived_token(**_params(s, subject, **kwargs)))


def exchange_form(gatehouse: GatehouseServer, s: Setup, **form: str) -> requests.Response:
    return requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": GRANT, **form},
        auth=(s.exchanger_id, s.exchanger_secret),
        timeout=10,
    )


def forged(gatehouse: GatehouseServer, pool_id: str, claims: dict[str, Any], token_use: str = "access") -> str:
    """A token signed with the pool's own active key, as the server would sign it, with the claims given (an
    expired one, say): read from the server's data dir, opened with its secret key."""
    box = SecretBox(bytes.fromhex((gatehouse.data_dir / "secret.key").read_text().strip()))
    with sqlite3.connect(gatehouse.data_dir / "gatehouse.db") as db:
        kid, sealed = db.execute(
            "SELECT kid, private_jwk FROM signing_keys WHERE pool_id = ? AND token_use = ? AND active = 1",
            (pool_id, token_use),
        ).fetchone()
    private = RSAAlgorithm.from_jwk(box.open(sealed, aad=kid.encode()).decode())
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


# --- the happy paths ---------------------------------------------------------------------------------------


def test_the_token_exchange_flows_are_explicit_auth_flows(idp: Any, setup: Setup) -> None:
    described = idp.describe_user_pool_client(UserPoolId=setup.pool_id, ClientId=setup.exchanger_id)
    assert described["UserPoolClient"]["ExplicitAuthFlows"] == EXCHANGE_FLOWS
    code, message = refused(
        idp.create_user_pool_client,
        UserPoolId=setup.pool_id,
        ClientName="m2m",
        ExplicitAuthFlows=["ALLOW_CLIENT_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH"],
        GenerateSecret=True,
    )
    assert code == "InvalidParameterException" and "mutually exclusive" in message


def test_impersonation(gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]) -> None:
    subject = verified(gatehouse, setup.pool_id, alice["access_token"])
    before = int(time.time())
    answer = derive(public_idp, setup, alice["access_token"], Audiences=[DOWNSTREAM])
    assert answer["IssuedTokenType"] == "ACCESS_TOKEN" and answer["TokenType"] == "Bearer"
    # Requested nothing: the subject token's scopes the exchanger is allowed, in the subject token's order.
    assert answer["Scopes"] == ["openid", "email", READ]
    assert 3590 <= answer["ExpiresIn"] <= 3600
    claims = verified(gatehouse, setup.pool_id, answer["IssuedToken"], audience=DOWNSTREAM)
    assert claims["token_use"] == "access" and claims["client_id"] == setup.exchanger_id
    assert claims["sub"] == setup.user_sub and claims["username"] == "alice"
    assert claims["scope"] == f"openid email {READ}" and claims["aud"] == DOWNSTREAM
    assert "act" not in claims  # "the issued token appears as if the user acted directly"
    assert claims["origin_jti"] == subject["origin_jti"] and claims["jti"] != subject["jti"]
    assert claims["auth_time"] == subject["auth_time"]
    assert before <= claims["iat"] and claims["exp"] - claims["iat"] == answer["ExpiresIn"]
    assert claims["exp"] <= subject["exp"]  # never outlives the subject token


def test_delegation_with_a_client_token_as_actor(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    actor = public_idp.get_client_token(ClientId=setup.service_id, Secret=setup.service_secret)
    actor_token = actor["ClientAuthenticationResult"]["AccessToken"]
    answer = derive(
        public_idp, setup, alice["access_token"], ActorToken=actor_token, ActorTokenType="ACCESS_TOKEN", Scopes=[READ]
    )
    claims = verified(gatehouse, setup.pool_id, answer["IssuedToken"])
    assert answer["Scopes"] == [READ] and claims["scope"] == READ
    # RFC 8693 §4.1: the actor, by its subject; here a machine client, whose sub is its client id.
    assert claims["act"] == {"sub": setup.service_id, "client_id": setup.service_id}
    assert claims["sub"] == setup.user_sub and claims["client_id"] == setup.exchanger_id and "aud" not in claims


def test_delegation_chains_nest_act_and_impersonation_keeps_it(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    agent = api_sign_in(public_idp, setup.public_id, "agent")
    agent_sub = verified(gatehouse, setup.pool_id, agent["AccessToken"])["sub"]
    first = derive(public_idp, setup, alice["access_token"], ActorToken=agent["IdToken"], ActorTokenType="ID_TOKEN")
    first_claims = verified(gatehouse, setup.pool_id, first["IssuedToken"])
    assert first_claims["act"] == {"sub": agent_sub, "client_id": setup.public_id}
    service = public_idp.get_client_token(ClientId=setup.service_id, Secret=setup.service_secret)
    second = public_idp.get_derived_token(
        ClientId=setup.service_id,
        ClientSecret=setup.service_secret,
        SubjectToken=first["IssuedToken"],
        SubjectTokenType="ACCESS_TOKEN",
        ActorToken=service["ClientAuthenticationResult"]["AccessToken"],
        ActorTokenType="ACCESS_TOKEN",
    )
    second_claims = verified(gatehouse, setup.pool_id, second["IssuedToken"])
    # The latest actor outermost, the earlier ones nested (RFC 8693 §4.1).
    assert second_claims["act"] == {
        "sub": setup.service_id,
        "client_id": setup.service_id,
        "act": {"sub": agent_sub, "client_id": setup.public_id},
    }
    assert second["Scopes"] == [READ]  # the service client is allowed READ only
    third = derive(public_idp, setup, first["IssuedToken"])
    assert verified(gatehouse, setup.pool_id, third["IssuedToken"])["act"] == first_claims["act"]


def test_id_token_requested_and_id_token_subject(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    answer = derive(public_idp, setup, alice["id_token"], SubjectTokenType="ID_TOKEN", RequestedTokenType="ID_TOKEN")
    assert answer["IssuedTokenType"] == "ID_TOKEN" and answer["TokenType"] == "N_A"
    claims = verified(gatehouse, setup.pool_id, answer["IssuedToken"], audience=setup.exchanger_id)
    assert claims["token_use"] == "id" and claims["sub"] == setup.user_sub
    assert claims["cognito:username"] == "alice" and claims["email"] == "alice@example.com"
    # The scopes granted (the sign-in's the exchanger is allowed), which a sign-in's ID token does not carry.
    assert claims["scope"] == f"openid email {READ}" and "azp" not in claims
    targeted = derive(public_idp, setup, alice["access_token"], RequestedTokenType="ID_TOKEN", Audiences=[DOWNSTREAM])
    claims = verified(gatehouse, setup.pool_id, targeted["IssuedToken"], audience=DOWNSTREAM)
    assert claims["azp"] == setup.exchanger_id


def test_signed_admin_call_needs_no_secret(
    idp: Any, gatehouse: GatehouseServer, setup: Setup, alice: dict[str, Any]
) -> None:
    answer = idp.get_derived_token(
        ClientId=setup.exchanger_id, SubjectToken=alice["access_token"], SubjectTokenType="ACCESS_TOKEN"
    )
    assert verified(gatehouse, setup.pool_id, answer["IssuedToken"])["client_id"] == setup.exchanger_id
    bad = gatehouse.client(secret="not-the-admin-secret")
    code, _ = refused(
        bad.get_derived_token,
        ClientId=setup.exchanger_id,
        SubjectToken=alice["access_token"],
        SubjectTokenType="ACCESS_TOKEN",
    )
    assert code == "InvalidSignatureException"


# --- scopes and targets ------------------------------------------------------------------------------------


def test_scope_narrowing_and_no_escalation(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    assert derive(public_idp, setup, alice["access_token"], Scopes=[READ])["Scopes"] == [READ]
    # WRITE is the subject token's but not the exchanger's; ADMIN neither's to give.
    assert derive(public_idp, setup, alice["access_token"], Scopes=[WRITE, READ, ADMIN])["Scopes"] == [READ]
    code, message = refused(public_idp.get_derived_token, **_params(setup, alice["access_token"], Scopes=[WRITE]))
    assert code == "InvalidParameterException" and "None of the requested scopes" in message
    # A subject token narrowed to openid: READ (the client's) cannot be added back.
    narrow = oauth_tokens(gatehouse, setup, "alice", "openid")
    code, _ = refused(public_idp.get_derived_token, **_params(setup, narrow["access_token"], Scopes=[READ]))
    assert code == "InvalidParameterException"
    # email needs openid, as at the authorize endpoint.
    assert derive(public_idp, setup, alice["access_token"], Scopes=["email", READ])["Scopes"] == [READ]


def _params(s: Setup, subject: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "ClientId": s.exchanger_id,
        "ClientSecret": s.exchanger_secret,
        "SubjectToken": subject,
        "SubjectTokenType": "ACCESS_TOKEN",
        **kwargs,
    }


def test_audience_versus_resource(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    answer = derive(public_idp, setup, alice["access_token"], Resources=[API])
    assert verified(gatehouse, setup.pool_id, answer["IssuedToken"], audience=API)["aud"] == API
    code, message = refused(
        public_idp.get_derived_token, **_params(setup, alice["access_token"], Resources=["https://nowhere.example"])
    )
    assert code == "InvalidParameterException" and "not a resource server" in message
    code, message = refused(
        public_idp.get_derived_token, **_params(setup, alice["access_token"], Resources=[API], Audiences=[DOWNSTREAM])
    )
    assert code == "InvalidParameterException" and "both" in message
    code, _ = refused(
        public_idp.get_derived_token, **_params(setup, alice["access_token"], Audiences=[DOWNSTREAM, "other"])
    )
    assert code == "InvalidParameterException"  # at most one (AudienceListType)


# --- refusals ----------------------------------------------------------------------------------------------


def test_bad_subject_tokens(
    idp: Any, gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    access = alice["access_token"]
    claims = verified(gatehouse, setup.pool_id, access)
    expired = forged(gatehouse, setup.pool_id, {**claims, "exp": int(time.time()) - 5, "iat": int(time.time()) - 60})
    code, message = refused(public_idp.get_derived_token, **_params(setup, expired))
    assert (code, message) == ("NotAuthorizedException", "The subject token has expired.")
    head, _, signature = access.split(".")
    tampered = ".".join(
        [head, jwt.utils.base64url_encode(json.dumps({**claims, "scope": WRITE}).encode()).decode(), signature]
    )
    assert refused(public_idp.get_derived_token, **_params(setup, tampered)) == (
        "NotAuthorizedException",
        "The subject token is not valid.",
    )
    # An empty token fails the model's pattern (GetDerivedTokenTokenModelType) before it is read.
    assert refused(public_idp.get_derived_token, **_params(setup, ""))[0] == "InvalidParameterException"
    for garbage in ("not-a-jwt", "a.b.c", "e30.e30.e30", "x" * 20000):
        assert refused(public_idp.get_derived_token, **_params(setup, garbage))[0] == "NotAuthorizedException"
    # An ID token presented as an access token, and the other way round.
    assert refused(public_idp.get_derived_token, **_params(setup, alice["id_token"]))[1] == (
        "The subject token is not an access token."
    )
    assert refused(public_idp.get_derived_token, **_params(setup, access, SubjectTokenType="ID_TOKEN"))[1] == (
        "The subject token is not an ID token."
    )
    # Another pool's token, however valid there.
    other = idp.create_user_pool(PoolName="other")["UserPool"]["Id"]
    other_client = idp.create_user_pool_client(
        UserPoolId=other, ClientName="c", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    make_user(idp, other, "mallory")
    foreign = api_sign_in(public_idp, other_client, "mallory")["AccessToken"]
    assert refused(public_idp.get_derived_token, **_params(setup, foreign)) == (
        "NotAuthorizedException",
        "The subject token is not valid.",
    )
    # A client's own token is no user's.
    own = public_idp.get_client_token(ClientId=setup.service_id, Secret=setup.service_secret)
    code, message = refused(
        public_idp.get_derived_token, **_params(setup, own["ClientAuthenticationResult"]["AccessToken"])
    )
    assert code == "NotAuthorizedException" and "not a user's token" in message
    # SAML 2.0 and third-party tokens are not exchanged here.
    code, message = refused(public_idp.get_derived_token, **_params(setup, access, SubjectTokenType="SAML2"))
    assert code == "InvalidParameterException" and "SAML" in message
    code, _ = refused(public_idp.get_derived_token, **_params(setup, access, SubjectTokenProviderName="Google"))
    assert code == "InvalidParameterException"
    code, message = refused(public_idp.get_derived_token, **_params(setup, access, ActorToken=access))
    assert code == "InvalidParameterException" and "ActorTokenType is required" in message


def test_revoked_subject_and_derived_tokens(
    idp: Any, gatehouse: GatehouseServer, public_idp: Any, setup: Setup
) -> None:
    tokens = oauth_tokens(gatehouse, setup, "alice", ALL_SCOPES)
    derived = derive(public_idp, setup, tokens["access_token"])["IssuedToken"]
    public_idp.revoke_token(Token=tokens["refresh_token"], ClientId=setup.web_id, ClientSecret=setup.web_secret)
    assert refused(public_idp.get_derived_token, **_params(setup, tokens["access_token"])) == (
        "NotAuthorizedException",
        "The subject token has been revoked.",
    )
    # The derived token went with the family it came from: a delegated token of it is refused too.
    assert refused(public_idp.get_derived_token, **_params(setup, derived))[1] == "The subject token has been revoked."


def test_global_sign_out_revokes_derived_tokens(
    gatehouse: GatehouseServer, public_idp: Any, idp: Any, setup: Setup
) -> None:
    make_user(idp, setup.pool_id, "bob")
    tokens = api_sign_in(public_idp, setup.public_id, "bob")
    answer = public_idp.get_derived_token(
        ClientId=setup.public_id, SubjectToken=tokens["AccessToken"], SubjectTokenType="ACCESS_TOKEN"
    )
    # A client that signs users in through the API may pass on the admin scope: GetUser takes the token.
    assert answer["Scopes"] == [ADMIN]
    derived = answer["IssuedToken"]
    assert public_idp.get_user(AccessToken=derived)["Username"] == "bob"
    public_idp.global_sign_out(AccessToken=tokens["AccessToken"])
    code, message = refused(public_idp.get_user, AccessToken=derived)
    assert code == "NotAuthorizedException" and "revoked" in message
    # The public client may not delegate (it has the impersonation flow only).
    code, message = refused(
        public_idp.get_derived_token,
        ClientId=setup.public_id,
        SubjectToken=tokens["AccessToken"],
        SubjectTokenType="ACCESS_TOKEN",
        ActorToken=tokens["AccessToken"],
        ActorTokenType="ACCESS_TOKEN",
    )
    assert (code, message) == (
        "InvalidParameterException",
        "ALLOW_TOKEN_EXCHANGE_DELEGATION flow not enabled for this client",
    )


def test_client_without_the_flow(public_idp: Any, setup: Setup, alice: dict[str, Any]) -> None:
    code, message = refused(
        public_idp.get_derived_token,
        ClientId=setup.web_id,
        ClientSecret=setup.web_secret,
        SubjectToken=alice["access_token"],
        SubjectTokenType="ACCESS_TOKEN",
    )
    assert (code, message) == (
        "InvalidParameterException",
        "ALLOW_TOKEN_EXCHANGE_IMPERSONATION flow not enabled for this client",
    )


def test_client_secrets(idp: Any, public_idp: Any, setup: Setup, alice: dict[str, Any]) -> None:
    access = alice["access_token"]
    missing = {k: v for k, v in _params(setup, access).items() if k != "ClientSecret"}
    assert refused(public_idp.get_derived_token, **missing) == (
        "NotAuthorizedException",
        f"Unable to verify secret for client {setup.exchanger_id}",
    )
    assert refused(public_idp.get_derived_token, **_params(setup, access, ClientSecret="w" * 51))[0] == (
        "NotAuthorizedException"
    )
    code, _ = refused(public_idp.get_derived_token, **_params(setup, access, ClientId="nosuchclient"))
    assert code == "ResourceNotFoundException"
    # A rotation: the second secret works; deleted, the first no longer does.
    added = idp.add_user_pool_client_secret(UserPoolId=setup.pool_id, ClientId=setup.exchanger_id)
    second = added["ClientSecretDescriptor"]["ClientSecretValue"]
    assert public_idp.get_derived_token(**_params(setup, access, ClientSecret=second))["IssuedToken"]
    listed = idp.list_user_pool_client_secrets(UserPoolId=setup.pool_id, ClientId=setup.exchanger_id)
    first_id = listed["ClientSecrets"][0]["ClientSecretId"]
    idp.delete_user_pool_client_secret(UserPoolId=setup.pool_id, ClientId=setup.exchanger_id, ClientSecretId=first_id)
    assert refused(public_idp.get_derived_token, **_params(setup, access))[0] == "NotAuthorizedException"
    setup.exchanger_secret = second


# --- the token endpoint ------------------------------------------------------------------------------------


def test_discovery_lists_the_grant(gatehouse: GatehouseServer, setup: Setup) -> None:
    document = requests.get(f"{gatehouse.url}/{setup.pool_id}/.well-known/openid-configuration", timeout=10).json()
    assert GRANT in document["grant_types_supported"]


def test_token_endpoint_exchange(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    agent = api_sign_in(public_idp, setup.public_id, "agent")
    answer = exchange_form(
        gatehouse,
        setup,
        subject_token=alice["access_token"],
        subject_token_type=ACCESS_URN,
        actor_token=agent["AccessToken"],
        actor_token_type=ACCESS_URN,
        scope=f"openid {READ} {WRITE}",
        audience=DOWNSTREAM,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["issued_token_type"] == ACCESS_URN and body["token_type"] == "Bearer"
    assert body["scope"] == f"openid {READ}" and "refresh_token" not in body and body["expires_in"] > 3500
    claims = verified(gatehouse, setup.pool_id, body["access_token"], audience=DOWNSTREAM)
    assert claims["act"]["client_id"] == setup.public_id and claims["client_id"] == setup.exchanger_id
    id_answer = exchange_form(
        gatehouse, setup, subject_token=alice["id_token"], subject_token_type=ID_URN, requested_token_type=ID_URN
    ).json()
    assert id_answer["issued_token_type"] == ID_URN and id_answer["token_type"] == "N_A"
    assert (
        verified(gatehouse, setup.pool_id, id_answer["access_token"], audience=setup.exchanger_id)["token_use"] == "id"
    )


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({}, 400, "invalid_request"),
        ({"subject_token": "abc"}, 400, "invalid_request"),
        ({"subject_token": "x.y.z", "subject_token_type": ACCESS_URN}, 400, "invalid_request"),
        ({"subject_token_type": "urn:example:unknown"}, 400, "invalid_request"),
        (
            {"subject_token_type": ACCESS_URN, "requested_token_type": "urn:ietf:params:oauth:token-type:saml2"},
            400,
            "invalid_request",
        ),
        ({"subject_token_type": ACCESS_URN, "resource": "https://nowhere.example"}, 400, "invalid_target"),
        ({"subject_token_type": ACCESS_URN, "resource": API, "audience": DOWNSTREAM}, 400, "invalid_target"),
        ({"subject_token_type": ACCESS_URN, "audience": "has space"}, 400, "invalid_target"),
        ({"subject_token_type": ACCESS_URN, "scope": WRITE}, 400, "invalid_scope"),
        ({"subject_token_type": ACCESS_URN, "actor_token_type": ACCESS_URN}, 400, "invalid_request"),
    ],
)
def test_token_endpoint_errors(
    gatehouse: GatehouseServer, setup: Setup, alice: dict[str, Any], form: dict[str, str], status: int, error: str
) -> None:
    if "subject_token_type" in form and "subject_token" not in form:
        form = {"subject_token": alice["access_token"], **form}
    answer = exchange_form(gatehouse, setup, **form)
    assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text


def test_token_endpoint_repeated_targets_and_clients(
    gatehouse: GatehouseServer, setup: Setup, alice: dict[str, Any]
) -> None:
    form = [
        ("grant_type", GRANT),
        ("subject_token", alice["access_token"]),
        ("subject_token_type", ACCESS_URN),
        ("audience", "a"),
        ("audience", "b"),
    ]
    answer = requests.post(
        f"{gatehouse.url}/oauth2/token", data=form, auth=(setup.exchanger_id, setup.exchanger_secret), timeout=10
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_target")
    wrong = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": GRANT, "subject_token": alice["access_token"], "subject_token_type": ACCESS_URN},
        auth=(setup.exchanger_id, "wrong-secret"),
        timeout=10,
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    no_flow = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": GRANT, "subject_token": alice["access_token"], "subject_token_type": ACCESS_URN},
        auth=(setup.web_id, setup.web_secret),
        timeout=10,
    )
    assert (no_flow.status_code, no_flow.json()["error"]) == (400, "unauthorized_client")


def test_update_user_pool_client_grants_and_takes_the_flow(
    idp: Any, gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    client = idp.create_user_pool_client(
        UserPoolId=setup.pool_id, ClientName="later", ExplicitAuthFlows=["ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]
    params = {"ClientId": client["ClientId"], "SubjectToken": alice["access_token"], "SubjectTokenType": "ACCESS_TOKEN"}
    assert refused(public_idp.get_derived_token, **params)[0] == "InvalidParameterException"
    idp.update_user_pool_client(
        UserPoolId=setup.pool_id,
        ClientId=client["ClientId"],
        ExplicitAuthFlows=["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_TOKEN_EXCHANGE_IMPERSONATION"],
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        CallbackURLs=[CALLBACK],
        AllowedOAuthScopes=["openid", WRITE],
    )
    answer = public_idp.get_derived_token(**params)
    # The admin scope too: the client signs users in through the API (ALLOW_REFRESH_TOKEN_AUTH).
    assert answer["Scopes"] == ["openid", ADMIN, WRITE]
    assert verified(gatehouse, setup.pool_id, answer["IssuedToken"])["client_id"] == client["ClientId"]
    idp.update_user_pool_client(
        UserPoolId=setup.pool_id, ClientId=client["ClientId"], ExplicitAuthFlows=["ALLOW_REFRESH_TOKEN_AUTH"]
    )
    assert refused(public_idp.get_derived_token, **params)[1] == (
        "ALLOW_TOKEN_EXCHANGE_IMPERSONATION flow not enabled for this client"
    )


def test_a_request_with_a_broken_signature_is_refused_not_taken_as_unsigned(
    gatehouse: GatehouseServer, setup: Setup, alice: dict[str, Any]
) -> None:
    body = json.dumps(
        {
            "ClientId": setup.exchanger_id,
            "ClientSecret": setup.exchanger_secret,
            "SubjectToken": alice["access_token"],
            "SubjectTokenType": "ACCESS_TOKEN",
        }
    )
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSCognitoIdentityProviderService.GetDerivedToken",
    }
    assert requests.post(gatehouse.url, data=body, headers=headers, timeout=10).status_code == 200
    for authorization in ("Bearer x", "AWS4-HMAC-SHA256 Credential=nobody/20260101/us-east-1/cognito-idp/aws4_request"):
        answer = requests.post(
            gatehouse.url, data=body, headers={**headers, "Authorization": authorization}, timeout=10
        )
        assert 400 <= answer.status_code < 500 and "__type" in answer.json()


def test_a_lite_pool_has_no_token_exchange(idp: Any, gatehouse: GatehouseServer, public_idp: Any) -> None:
    """The developer guide: token exchange "is a feature of user pools" in the Essentials and Plus plans."""
    pool_id = idp.create_user_pool(PoolName="lite", UserPoolTier="LITE")["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="c", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", *EXCHANGE_FLOWS]
    )["UserPoolClient"]["ClientId"]
    make_user(idp, pool_id, "lee")
    token = api_sign_in(public_idp, client_id, "lee")["AccessToken"]
    code, message = refused(
        public_idp.get_derived_token, ClientId=client_id, SubjectToken=token, SubjectTokenType="ACCESS_TOKEN"
    )
    assert code == "OperationNotEnabledException" and "Essentials or Plus" in message
    answer = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": GRANT, "client_id": client_id, "subject_token": token, "subject_token_type": ACCESS_URN},
        timeout=10,
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "unauthorized_client")


# --- what a derived token stands for -----------------------------------------------------------------------


def test_another_app_clients_id_is_refused_as_audience(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    # A token bound to the web client's id would pass as the web client's own (an identity pool trusts it by aud).
    for kind in ("ID_TOKEN", "ACCESS_TOKEN"):
        code, message = refused(
            public_idp.get_derived_token,
            **_params(setup, alice["access_token"], RequestedTokenType=kind, Audiences=[setup.web_id]),
        )
        assert code == "InvalidParameterException" and "another app client" in message
    answer = exchange_form(
        gatehouse,
        setup,
        subject_token=alice["access_token"],
        subject_token_type=ACCESS_URN,
        requested_token_type=ID_URN,
        audience=setup.web_id,
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_target"), answer.text
    # The requesting client's own id is its audience anyway.
    own = derive(
        public_idp, setup, alice["access_token"], RequestedTokenType="ID_TOKEN", Audiences=[setup.exchanger_id]
    )
    assert verified(gatehouse, setup.pool_id, own["IssuedToken"], audience=setup.exchanger_id)["sub"] == setup.user_sub


def test_an_identity_pool_refuses_an_id_token_issued_to_another_party(
    gatehouse: GatehouseServer, setup: Setup, alice: dict[str, Any]
) -> None:
    region = setup.pool_id.split("_")[0]
    provider = f"cognito-idp.{region}.amazonaws.com/{setup.pool_id}"
    identity = gatehouse.client("cognito-identity")
    identity_pool = identity.create_identity_pool(
        IdentityPoolName="web",
        AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": provider, "ClientId": setup.web_id, "ServerSideTokenCheck": True}],
    )["IdentityPoolId"]
    public_identity = gatehouse.client("cognito-identity", signed=False)
    assert public_identity.get_id(IdentityPoolId=identity_pool, Logins={provider: alice["id_token"]})["IdentityId"]
    # The same ID token, but issued to the exchanger for the web client's audience (its azp, OpenID Connect Core
    # §2): the exchanger's token, not the web client's. (Such a token is signed by the pool, as one derived
    # before the audience was refused would be.)
    claims = {**verified(gatehouse, setup.pool_id, alice["id_token"]), "azp": setup.exchanger_id}
    issued_to_another = forged(gatehouse, setup.pool_id, claims, token_use="id")
    assert refused(public_identity.get_id, IdentityPoolId=identity_pool, Logins={provider: issued_to_another}) == (
        "NotAuthorizedException",
        "Invalid login token. Incorrect token audience.",
    )


def test_a_derived_id_token_keeps_the_scopes_it_was_narrowed_to(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    narrowed = derive(
        public_idp,
        setup,
        alice["access_token"],
        Scopes=["openid"],
        RequestedTokenType="ID_TOKEN",
        Audiences=[DOWNSTREAM],
    )
    assert narrowed["Scopes"] == ["openid"]
    assert verified(gatehouse, setup.pool_id, narrowed["IssuedToken"], audience=DOWNSTREAM)["scope"] == "openid"
    # Exchanged again, it gives back only what it was issued with, never the sign-in's other scopes.
    assert derive(public_idp, setup, narrowed["IssuedToken"], SubjectTokenType="ID_TOKEN")["Scopes"] == ["openid"]
    code, message = refused(
        public_idp.get_derived_token,
        **_params(setup, narrowed["IssuedToken"], SubjectTokenType="ID_TOKEN", Scopes=[READ]),
    )
    assert code == "InvalidParameterException" and "None of the requested scopes" in message


def test_an_id_token_from_a_narrowed_refresh_keeps_its_narrower_scopes(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup
) -> None:
    signed_in = oauth_tokens(gatehouse, setup, "alice", ALL_SCOPES)

    def refreshed(**scope: str) -> dict[str, Any]:
        answer = requests.post(
            f"{gatehouse.url}/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": signed_in["refresh_token"], **scope},
            auth=(setup.web_id, setup.web_secret),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    # A refresh with the sign-in's scopes: an ID token like the sign-in's, naming none (it stands for them all).
    assert "scope" not in verified(gatehouse, setup.pool_id, refreshed()["id_token"], audience=setup.web_id)
    # RFC 6749 §6: narrowed to openid. Its ID token names that, so an exchange of it is held to it.
    narrowed = refreshed(scope="openid")["id_token"]
    assert verified(gatehouse, setup.pool_id, narrowed, audience=setup.web_id)["scope"] == "openid"
    assert derive(public_idp, setup, narrowed, SubjectTokenType="ID_TOKEN")["Scopes"] == ["openid"]
    code, message = refused(
        public_idp.get_derived_token, **_params(setup, narrowed, SubjectTokenType="ID_TOKEN", Scopes=[READ])
    )
    assert code == "InvalidParameterException" and "None of the requested scopes" in message


def test_an_id_token_actor_is_named_by_the_client_it_was_issued_to(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    agent = api_sign_in(public_idp, setup.public_id, "agent")
    agent_sub = verified(gatehouse, setup.pool_id, agent["AccessToken"])["sub"]
    # The public client's ID token for an audience it chose: its aud names no client that acts.
    actor = public_idp.get_derived_token(
        ClientId=setup.public_id,
        SubjectToken=agent["AccessToken"],
        SubjectTokenType="ACCESS_TOKEN",
        RequestedTokenType="ID_TOKEN",
        Audiences=["chosen-by-the-holder"],
    )["IssuedToken"]
    answer = derive(public_idp, setup, alice["access_token"], ActorToken=actor, ActorTokenType="ID_TOKEN")
    act = verified(gatehouse, setup.pool_id, answer["IssuedToken"])["act"]
    assert act == {"sub": agent_sub, "client_id": setup.public_id}


def test_derived_tokens_end_with_the_app_client_they_were_issued_to(
    idp: Any, gatehouse: GatehouseServer, public_idp: Any, setup: Setup
) -> None:
    tokens = oauth_tokens(gatehouse, setup, "alice", ALL_SCOPES)
    gone = idp.create_user_pool_client(
        UserPoolId=setup.pool_id,
        ClientName="gone",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", *EXCHANGE_FLOWS],
        AllowedOAuthScopes=["openid", "email", READ],
    )["UserPoolClient"]
    by_gone = {"ClientId": gone["ClientId"], "ClientSecret": gone["ClientSecret"], "SubjectTokenType": "ACCESS_TOKEN"}
    access = public_idp.get_derived_token(SubjectToken=tokens["access_token"], **by_gone)
    assert ADMIN in access["Scopes"]
    id_token = public_idp.get_derived_token(
        SubjectToken=tokens["access_token"], RequestedTokenType="ID_TOKEN", **by_gone
    )["IssuedToken"]
    assert public_idp.get_user(AccessToken=access["IssuedToken"])["Username"] == "alice"
    derive(public_idp, setup, id_token, SubjectTokenType="ID_TOKEN")
    idp.delete_user_pool_client(UserPoolId=setup.pool_id, ClientId=gone["ClientId"])
    # The sign-in (the web client's) lives on; the tokens issued to the deleted client do not.
    assert public_idp.get_user(AccessToken=tokens["access_token"])["Username"] == "alice"
    assert refused(public_idp.get_user, AccessToken=access["IssuedToken"]) == (
        "NotAuthorizedException",
        "Access Token has been revoked",
    )
    answer = requests.get(
        f"{gatehouse.url}/oauth2/userInfo", headers={"Authorization": f"Bearer {access['IssuedToken']}"}, timeout=10
    )
    assert answer.status_code == 401
    for subject, kind in ((access["IssuedToken"], "ACCESS_TOKEN"), (id_token, "ID_TOKEN")):
        assert refused(public_idp.get_derived_token, **_params(setup, subject, SubjectTokenType=kind)) == (
            "NotAuthorizedException",
            "The subject token has been revoked.",
        )


def test_an_id_token_only_for_scopes_that_read_the_user(
    gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    """An ID token carries the user's attributes: it is issued only when the scopes granted already let the
    token's holder read them (openid for userInfo, the admin scope for GetUser; OpenID Connect Core §3.1.2.1: no
    openid, no ID token). The service client may have READ alone: an ID token would hand it alice's email."""
    service = public_idp.get_client_token(ClientId=setup.service_id, Secret=setup.service_secret)
    params = {
        "ClientId": setup.service_id,
        "ClientSecret": setup.service_secret,
        "SubjectToken": alice["access_token"],
        "SubjectTokenType": "ACCESS_TOKEN",
        "ActorToken": service["ClientAuthenticationResult"]["AccessToken"],
        "ActorTokenType": "ACCESS_TOKEN",
    }
    code, message = refused(public_idp.get_derived_token, **params, RequestedTokenType="ID_TOKEN")
    assert code == "InvalidParameterException" and "openid" in message
    # An access token with READ is the service's to have.
    assert public_idp.get_derived_token(**params)["Scopes"] == [READ]
    # At the token endpoint: invalid_scope.
    answer = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={
            "grant_type": GRANT,
            "subject_token": alice["access_token"],
            "subject_token_type": ACCESS_URN,
            "actor_token": params["ActorToken"],
            "actor_token_type": ACCESS_URN,
            "requested_token_type": ID_URN,
        },
        auth=(setup.service_id, setup.service_secret),
        timeout=10,
    )
    assert (answer.status_code, answer.json().get("error")) == (400, "invalid_scope"), answer.text
    # The exchanger, whose scopes include openid, gets its ID token as before; asked for READ alone, it does not.
    assert derive(public_idp, setup, alice["access_token"], RequestedTokenType="ID_TOKEN")["Scopes"][0] == "openid"
    code, _ = refused(
        public_idp.get_derived_token,
        **_params(setup, alice["access_token"], RequestedTokenType="ID_TOKEN", Scopes=[READ]),
    )
    assert code == "InvalidParameterException"


def test_a_resource_server_target_needs_one_of_its_scopes(
    idp: Any, gatehouse: GatehouseServer, public_idp: Any, setup: Setup, alice: dict[str, Any]
) -> None:
    """A token bound to a resource server (its identifier as ``aud``) carries at least one of that server's scopes:
    a client allowed none of them never gets a token its API would take as meant for it (RFC 8693 §2.2.2:
    invalid_target, a target the server is unwilling to issue for). An audience that is a resource server's
    identifier is that resource server."""
    other_api = "https://payroll.example.com"
    idp.create_resource_server(
        UserPoolId=setup.pool_id,
        Identifier=other_api,
        Name="payroll",
        Scopes=[{"ScopeName": "pay", "ScopeDescription": "P"}],
    )
    for target in ({"Resources": [other_api]}, {"Audiences": [other_api]}):
        code, message = refused(public_idp.get_derived_token, **_params(setup, alice["access_token"], **target))
        assert code == "InvalidParameterException" and other_api in message, message
    answer = exchange_form(
        gatehouse, setup, subject_token=alice["access_token"], subject_token_type=ACCESS_URN, resource=other_api
    )
    assert (answer.status_code, answer.json().get("error")) == (400, "invalid_target"), answer.text
    # The exchanger's own resource server, with its scope: bound to it, as before; narrowed to openid alone, not.
    bound = derive(public_idp, setup, alice["access_token"], Audiences=[API])
    assert verified(gatehouse, setup.pool_id, bound["IssuedToken"], audience=API)["scope"] == f"openid email {READ}"
    code, _ = refused(
        public_idp.get_derived_token, **_params(setup, alice["access_token"], Resources=[API], Scopes=["openid"])
    )
    assert code == "InvalidParameterException"
