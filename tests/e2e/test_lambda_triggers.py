"""User pool Lambda triggers, end to end: a pool's LambdaConfig names functions of a Lambda service (a real HTTP
stand-in that checks every call's SigV4 signature, tests/fakes/lambda_service.py), and boto3 and the hosted UI
drive the workflows that invoke them. Each test checks the event a function received (Cognito's trigger event
shapes) and what its answer did: a refusal, a customised token, a confirmation that stands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.federation_support import Flow, corp_details
from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, make_pool, make_user, query_of
from tests.fakes.lambda_service import FakeLambda, RawResponse
from tests.fakes.oauth import FakeOIDC
from tests.support import GatehouseServer, MailServer, code_in


@pytest.fixture(scope="module")
def gatehouse(
    tmp_path_factory: pytest.TempPathFactory, mail: MailServer, functions: FakeLambda
) -> Iterator[GatehouseServer]:
    """Triggers invoked at the fake Lambda service, with credentials it knows, mail to the module's SMTP server."""
    config = f"""version: 1
server:
  smtp:
    host: 127.0.0.1
    port: {mail.port}
{functions.server_config()}pools: []
"""
    server = GatehouseServer(tmp_path_factory.mktemp("gatehouse") / "data", config=config)
    server.start()
    yield server
    server.stop()


def _pool(idp: Any, name: str, lambda_config: dict[str, Any], **settings: Any) -> str:
    pool_id: str = idp.create_user_pool(PoolName=name, LambdaConfig=lambda_config, **settings)["UserPool"]["Id"]
    return pool_id


def _client(idp: Any, pool_id: str, **settings: Any) -> str:
    settings.setdefault(
        "ExplicitAuthFlows", ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"]
    )
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", **settings)["UserPoolClient"]
    client_id: str = client["ClientId"]
    return client_id


def _user(idp: Any, pool_id: str, username: str, **attributes: str) -> None:
    given = {"email": f"{username}@example.com", "email_verified": "true", **attributes}
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[{"Name": k, "Value": v} for k, v in given.items()],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def _sign_in(public_idp: Any, client_id: str, username: str, **extra: Any) -> dict[str, Any]:
    answer = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": extra.pop("password", PASSWORD)},
        **extra,
    )
    result: dict[str, Any] = answer["AuthenticationResult"]
    return result


def _claims(gatehouse: GatehouseServer, pool_id: str, token: str) -> dict[str, Any]:
    """The token's claims, its signature checked against the pool's published keys."""
    keys = jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")
    key = keys.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False})
    return claims


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


# --- PreSignUp --------------------------------------------------------------------------------------------


def test_pre_sign_up_flags_that_are_not_booleans_are_refused(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    answers: dict[str, Any] = {}

    def pre_sign_up(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"].update(answers)
        return event

    arn = functions.add("pre-sign-up-flags", pre_sign_up)
    pool_id = _pool(idp, "presignupflags", {"PreSignUp": arn})
    client_id = _client(idp, pool_id)
    for flags in ({"autoConfirmUser": "true"}, {"autoVerifyEmail": 1}, {"autoVerifyPhone": {"x": 1}}):
        answers.clear()
        answers.update(flags)
        with pytest.raises(ClientError) as refused:
            public_idp.sign_up(ClientId=client_id, Username="sam", Password=PASSWORD)
        assert _error(refused) == ("InvalidLambdaResponseException", "Unrecognizable lambda output")
    assert idp.list_users(UserPoolId=pool_id)["Users"] == []
    answers.clear()
    answers.update({"autoConfirmUser": None, "autoVerifyEmail": False})  # null is no: the user is not confirmed
    assert public_idp.sign_up(ClientId=client_id, Username="sam", Password=PASSWORD)["UserConfirmed"] is False


def test_a_function_error_document_nested_beyond_reading(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    """The Lambda API's FunctionError with a body no JSON reader takes: the function failed, the text is shown."""

    def failing(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("[" * 5000)

    arn = functions.add("pre-sign-up-deep-error", failing)
    pool_id = _pool(idp, "presignupdeep", {"PreSignUp": arn})
    client_id = _client(idp, pool_id)
    with pytest.raises(ClientError) as refused:
        public_idp.sign_up(ClientId=client_id, Username="tom", Password=PASSWORD)
    code, message = _error(refused)
    assert code == "UserLambdaValidationException" and message.startswith("PreSignUp failed with error [[[")


def test_pre_sign_up_function_confirms_and_refuses(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    def pre_sign_up(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        if not event["request"]["userAttributes"]["email"].endswith("@corp.example"):
            raise ValueError("Only corp.example may sign up")
        event["response"]["autoConfirmUser"] = True
        event["response"]["autoVerifyEmail"] = True
        return event

    arn = functions.add("pre-sign-up", pre_sign_up)
    pool_id = _pool(idp, "presignup", {"PreSignUp": arn})
    client_id = _client(idp, pool_id)

    with pytest.raises(ClientError) as refused:
        public_idp.sign_up(
            ClientId=client_id,
            Username="mallory",
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": "mallory@elsewhere.example"}],
        )
    assert _error(refused) == (
        "UserLambdaValidationException",
        "PreSignUp failed with error Only corp.example may sign up.",
    )
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.admin_get_user(UserPoolId=pool_id, Username="mallory")

    answer = public_idp.sign_up(
        ClientId=client_id,
        Username="carol",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "carol@corp.example"}],
        ValidationData=[{"Name": "invite", "Value": "A-123"}],
        ClientMetadata={"source": "test"},
    )
    assert answer["UserConfirmed"] is True
    user = idp.admin_get_user(UserPoolId=pool_id, Username="carol")
    assert user["UserStatus"] == "CONFIRMED"
    assert {"Name": "email_verified", "Value": "true"} in user["UserAttributes"]

    event = functions.events("pre-sign-up")[-1]
    assert event["triggerSource"] == "PreSignUp_SignUp"
    assert event["userPoolId"] == pool_id and event["userName"] == "carol" and event["region"] == "us-east-1"
    assert event["callerContext"]["clientId"] == client_id
    # The attributes given (docs/triggers.md): the user does not exist yet, so no sub and no status.
    assert event["request"]["userAttributes"] == {"email": "carol@corp.example"}
    assert event["request"]["validationData"] == {"invite": "A-123"}
    assert event["request"]["clientMetadata"] == {"source": "test"}
    assert all(call.signature_valid for call in functions.invocations if call.function_name == "pre-sign-up")

    # Prometheus: each invocation by pool, trigger and outcome, and its duration by trigger.
    metrics = requests.get(f"{gatehouse.url}/metrics", timeout=10).text
    counted = {
        line.split("outcome=", 1)[1].split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("gatehouse_trigger_invocations_total{") and f'pool="{pool_id}"' in line
    }
    assert counted == {"function_error": 1.0, "answered": 1.0}, metrics
    assert 'gatehouse_trigger_duration_seconds_count{trigger="PreSignUp"}' in metrics


# --- PostConfirmation -------------------------------------------------------------------------------------


def test_post_confirmation_runs_after_the_confirmation_which_stands_when_it_fails(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    failing = {"now": False}

    def post_confirmation(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        if failing["now"]:
            raise RuntimeError("welcome mail service down")
        return event

    arn = functions.add("post-confirmation", post_confirmation)
    pool_id = _pool(idp, "postconfirm", {"PostConfirmation": arn}, AutoVerifiedAttributes=["email"])
    client_id = _client(idp, pool_id)

    public_idp.sign_up(
        ClientId=client_id,
        Username="dave",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "dave@example.com"}],
    )
    assert functions.events("post-confirmation") == []  # not at sign-up: at confirmation
    public_idp.confirm_sign_up(
        ClientId=client_id,
        Username="dave",
        ConfirmationCode=code_in(mail.wait_for("dave@example.com")),
        ClientMetadata={"campaign": "spring"},
    )
    event = functions.events("post-confirmation")[-1]
    assert event["triggerSource"] == "PostConfirmation_ConfirmSignUp"
    assert event["callerContext"]["clientId"] == client_id
    attributes = event["request"]["userAttributes"]
    assert attributes["cognito:user_status"] == "CONFIRMED" and attributes["email_verified"] == "true"
    assert attributes["sub"] and attributes["email"] == "dave@example.com"
    assert event["request"]["clientMetadata"] == {"campaign": "spring"}

    # A function that raises fails the call; the confirmation it was told of is stored already.
    public_idp.sign_up(
        ClientId=client_id,
        Username="erin",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "erin@example.com"}],
    )
    failing["now"] = True
    with pytest.raises(ClientError) as failed:
        idp.admin_confirm_sign_up(UserPoolId=pool_id, Username="erin")
    assert _error(failed) == (
        "UserLambdaValidationException",
        "PostConfirmation failed with error welcome mail service down.",
    )
    assert idp.admin_get_user(UserPoolId=pool_id, Username="erin")["UserStatus"] == "CONFIRMED"
    assert functions.events("post-confirmation")[-1]["callerContext"]["clientId"] == "CLIENT_ID_NOT_APPLICABLE"

    # ConfirmForgotPassword is the other source.
    failing["now"] = False
    public_idp.forgot_password(ClientId=client_id, Username="dave")
    code = code_in(mail.wait_for("dave@example.com", count=2))
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="dave", ConfirmationCode=code, Password="Another-Passw0rd!"
    )
    assert functions.events("post-confirmation")[-1]["triggerSource"] == "PostConfirmation_ConfirmForgotPassword"
    _sign_in(public_idp, client_id, "dave", password="Another-Passw0rd!")


# --- PreAuthentication and PostAuthentication -------------------------------------------------------------


def test_pre_authentication_refuses_before_the_password_is_checked(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    def pre_authentication(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        if event["request"]["userAttributes"].get("custom:blocked") == "yes":
            raise PermissionError("This account is on hold")
        return event

    arn = functions.add("pre-authentication", pre_authentication)
    pool_id = _pool(
        idp,
        "preauth",
        {"PreAuthentication": arn},
        Schema=[{"Name": "blocked", "AttributeDataType": "String", "Mutable": True}],
    )
    client_id = _client(idp, pool_id, PreventUserExistenceErrors="ENABLED")
    _user(idp, pool_id, "frank")
    _user(idp, pool_id, "grace", **{"custom:blocked": "yes"})

    tokens = _sign_in(public_idp, client_id, "frank", ClientMetadata={"app": "mobile"})
    assert tokens["AccessToken"]
    event = functions.events("pre-authentication")[-1]
    assert event["triggerSource"] == "PreAuthentication_Authentication"
    assert event["userName"] == "frank" and event["callerContext"]["clientId"] == client_id
    assert event["request"]["validationData"] == {"app": "mobile"}  # InitiateAuth's ClientMetadata
    assert event["request"]["userAttributes"]["cognito:user_status"] == "CONFIRMED"
    assert "userNotFound" not in event["request"]

    for password in (PASSWORD, "Wrong-Passw0rd!"):  # the function decides before the password is looked at
        with pytest.raises(ClientError) as refused:
            _sign_in(public_idp, client_id, "grace", password=password)
        assert _error(refused) == (
            "UserLambdaValidationException",
            "PreAuthentication failed with error This account is on hold.",
        )

    # Under PreventUserExistenceErrors an unknown name reaches the function too, marked as such.
    with pytest.raises(public_idp.exceptions.NotAuthorizedException):
        _sign_in(public_idp, client_id, "nobody")
    unknown = functions.events("pre-authentication")[-1]
    assert unknown["userName"] == "nobody" and unknown["request"]["userNotFound"] is True

    # Choice-based sign-in (USER_AUTH) asks it before any factor is offered.
    choosing = _client(idp, pool_id, ExplicitAuthFlows=["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])
    with pytest.raises(ClientError) as chosen:
        public_idp.initiate_auth(
            ClientId=choosing,
            AuthFlow="USER_AUTH",
            AuthParameters={"USERNAME": "grace", "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": PASSWORD},
        )
    assert _error(chosen) == (
        "UserLambdaValidationException",
        "PreAuthentication failed with error This account is on hold.",
    )

    # SRP sign-in asks the function at its first step.
    before = len(functions.events("pre-authentication"))
    with pytest.raises(ClientError) as srp_refused:
        public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="USER_SRP_AUTH", AuthParameters={"USERNAME": "grace", "SRP_A": "a" * 768}
        )
    assert _error(srp_refused)[0] == "UserLambdaValidationException"
    assert len(functions.events("pre-authentication")) == before + 1


def test_post_authentication_runs_before_the_tokens_and_can_withhold_them(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    refuse = {"now": False}

    def post_authentication(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        if refuse["now"]:
            raise RuntimeError("audit log unavailable")
        return event

    arn = functions.add("post-authentication", post_authentication)
    pool_id = _pool(idp, "postauth", {"PostAuthentication": arn})
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "heidi")

    tokens = _sign_in(public_idp, client_id, "heidi", ClientMetadata={"from": "initiate"})
    event = functions.events("post-authentication")[-1]
    assert event["triggerSource"] == "PostAuthentication_Authentication"
    # InitiateAuth's ClientMetadata is for PreSignUp, PreAuthentication and UserMigration only.
    assert event["request"]["clientMetadata"] == {}
    assert event["request"]["newDeviceUsed"] is False
    assert event["request"]["userAttributes"]["email"] == "heidi@example.com"

    # A refresh is no sign-in: the function is not asked.
    count = len(functions.events("post-authentication"))
    public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]}
    )
    assert len(functions.events("post-authentication")) == count

    refuse["now"] = True
    with pytest.raises(ClientError) as refused:
        _sign_in(public_idp, client_id, "heidi")
    assert _error(refused) == (
        "UserLambdaValidationException",
        "PostAuthentication failed with error audit log unavailable.",
    )


# --- PreTokenGeneration -----------------------------------------------------------------------------------


def test_pre_token_generation_v1_customises_the_id_token(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    def pre_token(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["claimsOverrideDetails"] = {
            "claimsToAddOrOverride": {"tenant": "acme", "email": "shown@example.com", "sub": "forged", "iss": "x"},
            "claimsToSuppress": ["name", "exp"],
            "groupOverrideDetails": {
                "groupsToOverride": ["editors"],
                "iamRolesToOverride": ["arn:aws:iam::000000000000:role/Editor"],
                "preferredRole": "arn:aws:iam::000000000000:role/Editor",
            },
        }
        return event

    arn = functions.add("pre-token-v1", pre_token)
    pool_id = _pool(idp, "pretoken1", {"PreTokenGeneration": arn})
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"]
    assert described["PreTokenGenerationConfig"] == {"LambdaVersion": "V1_0", "LambdaArn": arn}
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "ivan", name="Ivan")
    idp.create_group(UserPoolId=pool_id, GroupName="readers")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="ivan", GroupName="readers")

    tokens = _sign_in(public_idp, client_id, "ivan")
    id_claims = _claims(gatehouse, pool_id, tokens["IdToken"])
    access = _claims(gatehouse, pool_id, tokens["AccessToken"])
    assert id_claims["tenant"] == "acme" and id_claims["email"] == "shown@example.com"
    assert "name" not in id_claims
    # Claims the token's meaning rests on are Cognito's, whatever the function said.
    user_sub = idp.admin_get_user(UserPoolId=pool_id, Username="ivan")["UserAttributes"]
    assert id_claims["sub"] == next(a["Value"] for a in user_sub if a["Name"] == "sub")
    assert id_claims["iss"] == f"{gatehouse.url}/{pool_id}" and id_claims["exp"] > time.time()
    assert id_claims["cognito:groups"] == ["editors"] and access["cognito:groups"] == ["editors"]
    assert id_claims["cognito:preferred_role"] == "arn:aws:iam::000000000000:role/Editor"
    assert "tenant" not in access  # a version 1 function changes the access token's groups only

    event = functions.events("pre-token-v1")[-1]
    assert event["version"] == "1" and event["triggerSource"] == "TokenGeneration_Authentication"
    assert event["request"]["groupConfiguration"] == {
        "groupsToOverride": ["readers"],
        "iamRolesToOverride": [],
        "preferredRole": None,
    }
    assert "scopes" not in event["request"]

    public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="REFRESH_TOKEN_AUTH", AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]}
    )
    assert functions.events("pre-token-v1")[-1]["triggerSource"] == "TokenGeneration_RefreshTokens"


def test_pre_token_generation_v2_customises_both_tokens_and_scopes(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    def pre_token(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["claimsAndScopeOverrideDetails"] = {
            "idTokenGeneration": {"claimsToAddOrOverride": {"plan": {"tier": "gold", "seats": 5}}},
            "accessTokenGeneration": {
                "claimsToAddOrOverride": {
                    "roles": ["admin", "billing"],
                    "client_id": "forged",
                    "aud": "forged",
                    "scope": "aws.cognito.signin.user.admin smuggled",  # scopes change only by the scope lists
                },
                "scopesToAdd": ["orders/read"],
                "scopesToSuppress": ["aws.cognito.signin.user.admin"],
            },
            "groupOverrideDetails": None,  # null: the groups are suppressed
        }
        return event

    arn = functions.add("pre-token-v2", pre_token)
    pool_id = _pool(idp, "pretoken2", {"PreTokenGenerationConfig": {"LambdaVersion": "V2_0", "LambdaArn": arn}})
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"]["PreTokenGeneration"] == arn
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "judy")
    idp.create_group(UserPoolId=pool_id, GroupName="staff")
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username="judy", GroupName="staff")

    tokens = _sign_in(public_idp, client_id, "judy")
    id_claims = _claims(gatehouse, pool_id, tokens["IdToken"])
    access = _claims(gatehouse, pool_id, tokens["AccessToken"])
    assert id_claims["plan"] == {"tier": "gold", "seats": 5}
    assert access["roles"] == ["admin", "billing"]
    assert access["scope"] == "orders/read"
    assert access["client_id"] == client_id and "aud" not in access
    assert "cognito:groups" not in id_claims and "cognito:groups" not in access
    event = functions.events("pre-token-v2")[-1]
    assert event["version"] == "2" and event["request"]["scopes"] == ["aws.cognito.signin.user.admin"]

    # Without the admin scope the access token no longer reaches the user's own operations.
    with pytest.raises(public_idp.exceptions.NotAuthorizedException):
        public_idp.get_user(AccessToken=tokens["AccessToken"])


def test_pre_token_generation_at_the_hosted_ui_code_exchange(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda
) -> None:
    def pre_token(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"]["claimsOverrideDetails"] = {"claimsToAddOrOverride": {"source": event["triggerSource"]}}
        return event

    arn = functions.add("pre-token-hosted", pre_token)
    pool = make_pool(idp, gatehouse.url, "pretokenhosted", LambdaConfig={"PreTokenGeneration": arn})
    make_user(idp, pool.pool_id, "kate")
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id, scope="openid email"), "kate")
    assert back.status_code == 303, back.text
    code = query_of(back.headers["Location"])["code"]
    answer = requests.post(
        f"{gatehouse.url}/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=(pool.secret_id, pool.secret),
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    assert _claims(gatehouse, pool.pool_id, answer.json()["id_token"])["source"] == "TokenGeneration_HostedAuth"
    # One event for the one set of tokens the application got (the sign-in page's own are never signed for it).
    sources = [e["triggerSource"] for e in functions.events("pre-token-hosted")]
    assert sources == ["TokenGeneration_HostedAuth"]


# --- failures of the function itself -----------------------------------------------------------------------


def test_unreachable_unknown_and_malformed_functions(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    answers: dict[str, Any] = {"value": RawResponse(b"this is not JSON")}
    arn = functions.add("pre-auth-odd", lambda event, context: answers["value"])
    pool_id = _pool(idp, "failures", {"PreAuthentication": arn})
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "leo")

    for answer in (RawResponse(b"this is not JSON"), ["a", "list"], {"response": "text"}):
        answers["value"] = answer
        with pytest.raises(ClientError) as malformed:
            _sign_in(public_idp, client_id, "leo")
        assert _error(malformed) == ("InvalidLambdaResponseException", "Unrecognizable lambda output")

    # JSON no token can carry (NaN; an integer beyond 64 bits; nesting deeper than a token is written with),
    # from a pre token generation function: refused as output, never a server error.
    token_answers: dict[str, Any] = {}

    def odd_claims(event: dict[str, Any], context: dict[str, Any]) -> Any:
        return token_answers["value"]

    token_arn = functions.add("pre-token-odd", odd_claims)
    token_pool = _pool(
        idp, "oddclaims", {"PreTokenGenerationConfig": {"LambdaVersion": "V2_0", "LambdaArn": token_arn}}
    )
    token_client = _client(idp, token_pool)
    _user(idp, token_pool, "lena")
    deep: Any = "bottom"
    for _ in range(300):
        deep = [deep]
    for value in (
        RawResponse(
            b'{"response": {"claimsAndScopeOverrideDetails": '
            b'{"idTokenGeneration": {"claimsToAddOrOverride": {"x": NaN}}}}}'
        ),
        {
            "response": {
                "claimsAndScopeOverrideDetails": {"idTokenGeneration": {"claimsToAddOrOverride": {"big": 2**70}}}
            }
        },
        {
            "response": {
                "claimsAndScopeOverrideDetails": {"accessTokenGeneration": {"claimsToAddOrOverride": {"deep": deep}}}
            }
        },
        RawResponse(b'{"response": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ):
        token_answers["value"] = value
        with pytest.raises(ClientError) as unusable:
            _sign_in(public_idp, token_client, "lena")
        assert _error(unusable) == ("InvalidLambdaResponseException", "Unrecognizable lambda output")

    functions.remove("pre-auth-odd")
    with pytest.raises(ClientError) as unknown:
        _sign_in(public_idp, client_id, "leo")
    assert _error(unknown) == (
        "UnexpectedLambdaException",
        "PreAuthentication invocation failed due to error ResourceNotFoundException.",
    )

    # A function in another region is signed for that region, which this Lambda service does not serve.
    other = _pool(idp, "elsewhere", {"PreAuthentication": arn.replace("us-east-1", "eu-west-1")})
    other_client = _client(idp, other)
    _user(idp, other, "mia")
    with pytest.raises(ClientError) as forged:
        _sign_in(public_idp, other_client, "mia")
    assert _error(forged)[0] == "UnexpectedLambdaException"
    assert not functions.invocations[-1].signature_valid


def test_a_function_that_does_not_answer_in_five_seconds(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    def slow(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        time.sleep(6.5)
        return event

    arn = functions.add("slow", slow)
    pool_id = _pool(idp, "slow", {"PostAuthentication": arn})
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "nina")
    started = time.monotonic()
    with pytest.raises(ClientError) as timed_out:
        _sign_in(public_idp, client_id, "nina")
    assert _error(timed_out) == (
        "UnexpectedLambdaException",
        "PostAuthentication invocation failed due to error Socket timeout while invoking Lambda function.",
    )
    assert 4.5 < time.monotonic() - started < 6.5
    time.sleep(2.5)  # the function's own run ends (the fake records a call once its handler returns)
    assert len(functions.events("slow")) == 1  # not retried


# --- LambdaConfig ---------------------------------------------------------------------------------------------


def test_lambda_config_is_checked(idp: Any, functions: FakeLambda) -> None:
    arn = functions.arn("checked")
    other = functions.arn("other")
    with pytest.raises(ClientError) as unsupported:
        _pool(idp, "unsupported", {"CustomEmailSender": {"LambdaVersion": "V1_0", "LambdaArn": arn}})
    assert _error(unsupported)[0] == "InvalidParameterException"
    assert "CustomEmailSender" in _error(unsupported)[1]
    with pytest.raises(idp.exceptions.InvalidParameterException):
        _pool(
            idp,
            "mismatch",
            {"PreTokenGeneration": arn, "PreTokenGenerationConfig": {"LambdaVersion": "V1_0", "LambdaArn": other}},
        )
    with pytest.raises(ClientError) as lite:
        _pool(
            idp,
            "lite",
            {"PreTokenGenerationConfig": {"LambdaVersion": "V2_0", "LambdaArn": arn}},
            UserPoolTier="LITE",
        )
    assert _error(lite)[0] == "FeatureUnavailableInTierException"
    pool_id = _pool(idp, "plain", {})
    with pytest.raises(ClientError) as downgrade:
        idp.update_user_pool(
            UserPoolId=pool_id,
            UserPoolTier="LITE",
            LambdaConfig={"PreTokenGenerationConfig": {"LambdaVersion": "V3_0", "LambdaArn": arn}},
        )
    assert _error(downgrade)[0] == "FeatureUnavailableInTierException"
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["LambdaConfig"] == {}


# --- UserMigration ----------------------------------------------------------------------------------------

LEGACY_PASSWORD = "legacy"  # the old system's password: the pool's policy does not apply to a migration


def _legacy_directory(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """An old user directory: two known users, one of whom must reset their password."""
    known = {"olivia": "olivia@legacy.example", "peter": "peter@legacy.example"}
    name = event["userName"]
    if name not in known:
        raise LookupError("User not found")
    if event["triggerSource"] == "UserMigration_Authentication" and event["request"]["password"] != LEGACY_PASSWORD:
        raise PermissionError("Bad password")
    event["response"]["userAttributes"] = {"email": known[name], "email_verified": "true", "name": name.title()}
    event["response"]["messageAction"] = "SUPPRESS"
    if name == "peter":
        event["response"]["finalUserStatus"] = "RESET_REQUIRED"
    return event


def test_user_migration_at_sign_in(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    arn = functions.add("migrate", _legacy_directory)
    pool_id = _pool(idp, "migrate", {"UserMigration": arn})
    client_id = _client(idp, pool_id)

    with pytest.raises(public_idp.exceptions.UserNotFoundException):  # the function does not know the password
        _sign_in(public_idp, client_id, "olivia", password="wrong")
    with pytest.raises(idp.exceptions.UserNotFoundException):
        idp.admin_get_user(UserPoolId=pool_id, Username="olivia")

    tokens = _sign_in(public_idp, client_id, "olivia", password=LEGACY_PASSWORD, ClientMetadata={"via": "app"})
    assert _claims(gatehouse, pool_id, tokens["IdToken"])["email"] == "olivia@legacy.example"
    event = functions.events("migrate")[-1]
    assert event["triggerSource"] == "UserMigration_Authentication" and event["userName"] == "olivia"
    assert event["request"]["password"] == LEGACY_PASSWORD
    assert event["request"]["validationData"] == {"via": "app"}
    user = idp.admin_get_user(UserPoolId=pool_id, Username="olivia")
    assert user["UserStatus"] == "CONFIRMED"
    assert {"Name": "name", "Value": "Olivia"} in user["UserAttributes"]

    # Migrated once: the next sign-in is the pool's own, and the function is not asked again.
    count = len(functions.events("migrate"))
    _sign_in(public_idp, client_id, "olivia", password=LEGACY_PASSWORD)
    assert len(functions.events("migrate")) == count

    # RESET_REQUIRED: the user is created, and must reset the password first.
    with pytest.raises(public_idp.exceptions.PasswordResetRequiredException):
        _sign_in(public_idp, client_id, "peter", password=LEGACY_PASSWORD)
    assert idp.admin_get_user(UserPoolId=pool_id, Username="peter")["UserStatus"] == "RESET_REQUIRED"

    with pytest.raises(public_idp.exceptions.UserNotFoundException):
        _sign_in(public_idp, client_id, "stranger", password=LEGACY_PASSWORD)


def test_user_migration_at_forgot_password(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda, mail: MailServer
) -> None:
    arn = functions.add("migrate-reset", _legacy_directory)
    pool_id = _pool(idp, "migratereset", {"UserMigration": arn}, AutoVerifiedAttributes=["email"])
    client_id = _client(idp, pool_id)

    delivery = public_idp.forgot_password(ClientId=client_id, Username="olivia")["CodeDeliveryDetails"]
    assert delivery["DeliveryMedium"] == "EMAIL"
    event = functions.events("migrate-reset")[-1]
    assert event["triggerSource"] == "UserMigration_ForgotPassword" and "password" not in event["request"]
    assert idp.admin_get_user(UserPoolId=pool_id, Username="olivia")["UserStatus"] == "RESET_REQUIRED"
    code = code_in(mail.wait_for("olivia@legacy.example"))
    public_idp.confirm_forgot_password(
        ClientId=client_id, Username="olivia", ConfirmationCode=code, Password="New-Passw0rd-1!"
    )
    assert _sign_in(public_idp, client_id, "olivia", password="New-Passw0rd-1!")["AccessToken"]

    with pytest.raises(public_idp.exceptions.UserNotFoundException):
        public_idp.forgot_password(ClientId=client_id, Username="stranger")


def test_user_migration_answers_that_are_refused(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    answers: dict[str, Any] = {}

    def migrate(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"].update(answers)
        return event

    arn = functions.add("migrate-odd", migrate)
    pool_id = _pool(idp, "migrateodd", {"UserMigration": arn})
    client_id = _client(idp, pool_id)
    for answer in (
        {},  # no userAttributes
        {"userAttributes": {"email": 42}},
        {"userAttributes": {"email": "q@example.com"}, "finalUserStatus": "UNCONFIRMED"},
    ):
        answers.clear()
        answers.update(answer)
        with pytest.raises(ClientError) as refused:
            _sign_in(public_idp, client_id, "quinn", password=LEGACY_PASSWORD)
        assert _error(refused) == ("InvalidLambdaResponseException", "Unrecognizable lambda output")
    # An attribute the pool does not have is the pool's own refusal; nothing is created either way.
    answers.clear()
    answers.update({"userAttributes": {"custom:nope": "x"}})
    with pytest.raises(idp.exceptions.InvalidParameterException):
        _sign_in(public_idp, client_id, "quinn", password=LEGACY_PASSWORD)
    assert idp.list_users(UserPoolId=pool_id)["Users"] == []


def test_pre_token_generation_v3_customises_client_credentials_tokens(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda
) -> None:
    refuse = {"now": False}

    def pre_token(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        if refuse["now"]:
            raise RuntimeError("tenant suspended")
        event["response"]["claimsAndScopeOverrideDetails"] = {
            "accessTokenGeneration": {
                "claimsToAddOrOverride": {"tenant": event["request"]["clientMetadata"].get("tenant", "none")},
                "scopesToSuppress": ["orders/write"],
            },
            "groupOverrideDetails": {"groupsToOverride": ["ignored-for-a-client"]},
        }
        return event

    arn = functions.add("pre-token-v3", pre_token)
    pool_id = _pool(idp, "pretoken3", {"PreTokenGenerationConfig": {"LambdaVersion": "V3_0", "LambdaArn": arn}})
    idp.create_resource_server(
        UserPoolId=pool_id,
        Identifier="orders",
        Name="Orders",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "r"}, {"ScopeName": "write", "ScopeDescription": "w"}],
    )
    machine = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="machine",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=["orders/read", "orders/write"],
    )["UserPoolClient"]
    answer = requests.post(
        f"{gatehouse.url}/{pool_id}/oauth2/token",
        data={"grant_type": "client_credentials", "aws_client_metadata": '{"tenant": "acme"}'},
        auth=(machine["ClientId"], machine["ClientSecret"]),
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    access = _claims(gatehouse, pool_id, answer.json()["access_token"])
    assert access["tenant"] == "acme" and access["scope"] == "orders/read"
    assert access["client_id"] == machine["ClientId"] and "cognito:groups" not in access
    event = functions.events("pre-token-v3")[-1]
    assert event["version"] == "3" and event["triggerSource"] == "TokenGeneration_ClientCredentials"
    assert event["request"]["scopes"] == ["orders/read", "orders/write"]
    assert event["callerContext"]["clientId"] == machine["ClientId"]

    # GetClientToken is the same grant on the API, its ClientMetadata the function's.
    api_client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="api-machine",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_CLIENT_TOKEN_AUTH"],
        AllowedOAuthScopes=["orders/read", "orders/write"],
    )["UserPoolClient"]
    issued = gatehouse.client(signed=False).get_client_token(
        ClientId=api_client["ClientId"], Secret=api_client["ClientSecret"], ClientMetadata={"tenant": "globex"}
    )
    api_access = _claims(gatehouse, pool_id, issued["ClientAuthenticationResult"]["AccessToken"])
    assert api_access["tenant"] == "globex" and api_access["scope"] == "orders/read"

    for metadata in ("[1, 2]", "[" * 100_000):
        bad = requests.post(
            f"{gatehouse.url}/{pool_id}/oauth2/token",
            data={"grant_type": "client_credentials", "aws_client_metadata": metadata},
            auth=(machine["ClientId"], machine["ClientSecret"]),
            timeout=20,
        )
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"

    refuse["now"] = True
    refused = requests.post(
        f"{gatehouse.url}/{pool_id}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(machine["ClientId"], machine["ClientSecret"]),
        timeout=20,
    )
    assert refused.status_code == 400, refused.text
    assert refused.json() == {
        "error": "invalid_request",
        "error_description": "PreTokenGeneration failed with error tenant suspended.",
    }


# --- federated sign-in -------------------------------------------------------------------------------------


def test_federated_sign_ins_run_the_confirmation_then_the_authentication_triggers(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda
) -> None:
    refuse = {"now": False}

    def record(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        if refuse["now"] and event["triggerSource"] == "PreAuthentication_Authentication":
            raise PermissionError("Federated sign-in paused")
        return event

    arns = {name: functions.add(f"fed-{name}", record) for name in ("confirm", "pre-auth", "post-auth", "token")}
    pool = make_pool(
        idp,
        gatehouse.url,
        "federated",
        LambdaConfig={
            "PostConfirmation": arns["confirm"],
            "PreAuthentication": arns["pre-auth"],
            "PostAuthentication": arns["post-auth"],
            "PreTokenGeneration": arns["token"],
        },
    )
    with FakeOIDC(client_id="corp-client", client_secret="corp-secret") as corp:
        idp.create_identity_provider(
            UserPoolId=pool.pool_id,
            ProviderName="Corp",
            ProviderType="OIDC",
            ProviderDetails=corp_details(corp),
            AttributeMapping={"email": "email"},
        )
        idp.update_user_pool_client(
            UserPoolId=pool.pool_id,
            ClientId=pool.public_id,
            AllowedOAuthFlowsUserPoolClient=True,
            AllowedOAuthFlows=["code"],
            AllowedOAuthScopes=["openid", "email"],
            CallbackURLs=[CALLBACK],
            SupportedIdentityProviders=["Corp"],
        )
        corp.user = {"sub": "emp-1", "email": "emp1@corp.example"}

        def sign_in() -> dict[str, str]:
            flow = Flow(gatehouse, pool.public_id)
            response = flow.run(flow.authorize_url(identity_provider="Corp", scope="openid email"))
            assert response.status_code == 303, response.text
            answer = query_of(response.headers["Location"])
            if "code" in answer:
                flow.tokens(answer["code"])
            return answer

        assert "code" in sign_in()  # the first: the profile is made, and confirmed

        def sources(name: str) -> list[str]:
            return [e["triggerSource"] for e in functions.events(f"fed-{name}")]

        assert sources("confirm") == ["PostConfirmation_ConfirmSignUp"]
        assert sources("pre-auth") == [] and sources("post-auth") == []
        assert sources("token") == ["TokenGeneration_HostedAuth"]
        confirmed = functions.events("fed-confirm")[0]
        assert confirmed["userName"] == "Corp_emp-1" and confirmed["callerContext"]["clientId"] == pool.public_id
        assert confirmed["request"]["userAttributes"]["cognito:user_status"] == "EXTERNAL_PROVIDER"

        assert "code" in sign_in()  # the second: an authentication
        assert sources("confirm") == ["PostConfirmation_ConfirmSignUp"]
        assert sources("pre-auth") == ["PreAuthentication_Authentication"]
        assert sources("post-auth") == ["PostAuthentication_Authentication"]

        refuse["now"] = True
        refused = sign_in()
        assert refused["error_description"] == "PreAuthentication failed with error Federated sign-in paused."
        assert "code" not in refused


def test_the_hosted_sign_in_page_shows_a_function_s_refusal(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda
) -> None:
    def pre_authentication(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        raise PermissionError("Sign-in closed for maintenance <until noon>")

    arn = functions.add("hosted-pre-auth", pre_authentication)
    pool = make_pool(idp, gatehouse.url, "hostedrefusal", LambdaConfig={"PreAuthentication": arn})
    make_user(idp, pool.pool_id, "rita")
    browser = Browser(gatehouse.url)
    page = browser.sign_in(browser.authorize_url(pool.secret_id, scope="openid"), "rita")
    assert page.status_code == 400
    assert "PreAuthentication failed with error Sign-in closed for maintenance &lt;until noon&gt;." in page.text
    assert functions.events("hosted-pre-auth")[-1]["callerContext"]["clientId"] == pool.secret_id


def test_user_migration_from_the_hosted_sign_in_page(
    gatehouse: GatehouseServer, idp: Any, functions: FakeLambda
) -> None:
    arn = functions.add("migrate-hosted", _legacy_directory)
    pool = make_pool(idp, gatehouse.url, "migratehosted", LambdaConfig={"UserMigration": arn})
    browser = Browser(gatehouse.url)
    back = browser.sign_in(browser.authorize_url(pool.secret_id, scope="openid email"), "olivia", LEGACY_PASSWORD)
    assert back.status_code == 303 and "code=" in back.headers["Location"], back.text
    assert idp.admin_get_user(UserPoolId=pool.pool_id, Username="olivia")["UserStatus"] == "CONFIRMED"
    assert functions.events("migrate-hosted")[-1]["callerContext"]["clientId"] == pool.secret_id
