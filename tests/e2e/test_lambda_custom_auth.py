"""Custom authentication (CUSTOM_AUTH, CUSTOM_CHALLENGE), end to end: a pool's DefineAuthChallenge,
CreateAuthChallenge and VerifyAuthChallengeResponse functions live in a Lambda service stand-in that checks every
call's SigV4 signature (tests/fakes/lambda_service.py), and boto3 signs in through them. Each test checks what the
client is answered and the events the functions received (Cognito's shapes for these triggers)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP

from tests.e2e.oauth_support import PASSWORD
from tests.fakes.lambda_service import FakeLambda, RawResponse
from tests.support import GatehouseServer

QUIZ = [("What is 6 x 7?", "42"), ("Capital of France?", "Paris")]

Handler = Callable[[dict[str, Any], dict[str, Any]], Any]


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory, functions: FakeLambda) -> Iterator[GatehouseServer]:
    """Triggers invoked at the fake Lambda service, with credentials it knows."""
    config = f"""version: 1
server:
{functions.server_config()}pools: []
"""
    server = GatehouseServer(tmp_path_factory.mktemp("gatehouse") / "data", config=config)
    server.start()
    yield server
    server.stop()


# --- the functions ---------------------------------------------------------------------------------------------


def quiz_define(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Two questions in turn; three wrong answers in all fail the sign-in; both right: tokens."""
    session = event["request"]["session"]
    right = sum(1 for r in session if r["challengeResult"])
    wrong = len(session) - right
    if wrong >= 3:
        event["response"].update(issueTokens=False, failAuthentication=True)
    elif right >= len(QUIZ):
        event["response"].update(issueTokens=True, failAuthentication=False)
    else:
        event["response"].update(challengeName="CUSTOM_CHALLENGE", issueTokens=False, failAuthentication=False)
    return event


def quiz_create(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    right = sum(1 for r in event["request"]["session"] if r["challengeResult"])
    question, answer = QUIZ[right]
    event["response"]["publicChallengeParameters"] = {"question": question}
    event["response"]["privateChallengeParameters"] = {"answer": answer}
    event["response"]["challengeMetadata"] = f"QUESTION-{right + 1}"
    return event


def quiz_verify(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    request = event["request"]
    event["response"]["answerCorrect"] = request["challengeAnswer"] == request["privateChallengeParameters"]["answer"]
    return event


# --- helpers ----------------------------------------------------------------------------------------------------


def _pool(
    idp: Any,
    functions: FakeLambda,
    name: str,
    *,
    define: Handler | None = quiz_define,
    create: Handler = quiz_create,
    verify: Handler = quiz_verify,
    extra: dict[str, str] | None = None,
    **settings: Any,
) -> str:
    """A pool whose challenge triggers are these handlers, registered as ``<name>-define`` and so on."""
    config = {
        "CreateAuthChallenge": functions.add(f"{name}-create", create),
        "VerifyAuthChallengeResponse": functions.add(f"{name}-verify", verify),
        **(extra or {}),
    }
    if define is not None:
        config["DefineAuthChallenge"] = functions.add(f"{name}-define", define)
    pool_id: str = idp.create_user_pool(PoolName=name, LambdaConfig=config, **settings)["UserPool"]["Id"]
    return pool_id


def _client(idp: Any, pool_id: str, **settings: Any) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        **settings,
    )["UserPoolClient"]
    client_id: str = client["ClientId"]
    return client_id


def _user(idp: Any, pool_id: str, username: str) -> None:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def _start(public_idp: Any, client_id: str, username: str, **parameters: str) -> dict[str, Any]:
    answer: dict[str, Any] = public_idp.initiate_auth(
        ClientId=client_id, AuthFlow="CUSTOM_AUTH", AuthParameters={"USERNAME": username, **parameters}
    )
    return answer


def _answer(public_idp: Any, client_id: str, step: dict[str, Any], username: str, answer: str) -> dict[str, Any]:
    result: dict[str, Any] = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="CUSTOM_CHALLENGE",
        Session=step["Session"],
        ChallengeResponses={"USERNAME": username, "ANSWER": answer},
        ClientMetadata={"app": "quiz"},
    )
    return result


def _claims(gatehouse: GatehouseServer, pool_id: str, token: str) -> dict[str, Any]:
    """The token's claims, its signature checked against the pool's published keys."""
    keys = jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")
    key = keys.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(token, key.key, algorithms=["RS256"], options={"verify_aud": False})
    return claims


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


# --- the flow ---------------------------------------------------------------------------------------------------


def test_two_round_quiz_issues_verifiable_tokens_and_each_session_answers_once(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    pool_id = _pool(idp, functions, "quiz")
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "alice")

    first = _start(public_idp, client_id, "alice")
    assert first["ChallengeName"] == "CUSTOM_CHALLENGE"
    # The public parameters and the name to answer with; never the private ones.
    assert first["ChallengeParameters"] == {"question": "What is 6 x 7?", "USERNAME": "alice"}
    second = _answer(public_idp, client_id, first, "alice", "42")
    assert second["ChallengeName"] == "CUSTOM_CHALLENGE"
    assert second["ChallengeParameters"] == {"question": "Capital of France?", "USERNAME": "alice"}
    assert second["Session"] != first["Session"]

    # An answered Session is spent: it answers nothing more.
    with pytest.raises(ClientError) as spent:
        _answer(public_idp, client_id, first, "alice", "42")
    assert _error(spent)[0] == "NotAuthorizedException"

    done = _answer(public_idp, client_id, second, "alice", "Paris")
    result = done["AuthenticationResult"]
    claims = _claims(gatehouse, pool_id, result["IdToken"])
    assert claims["cognito:username"] == "alice" and claims["email"] == "alice@example.com"
    assert claims["token_use"] == "id" and claims["aud"] == client_id
    access = _claims(gatehouse, pool_id, result["AccessToken"])
    assert access["username"] == "alice" and access["client_id"] == client_id
    assert public_idp.get_user(AccessToken=result["AccessToken"])["Username"] == "alice"
    with pytest.raises(ClientError) as spent:
        _answer(public_idp, client_id, second, "alice", "Paris")
    assert _error(spent)[0] == "NotAuthorizedException"

    # What each function was told.
    defines = functions.events("quiz-define")
    assert [e["request"]["session"] for e in defines] == [
        [],
        [{"challengeName": "CUSTOM_CHALLENGE", "challengeResult": True, "challengeMetadata": "QUESTION-1"}],
        [
            {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": True, "challengeMetadata": "QUESTION-1"},
            {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": True, "challengeMetadata": "QUESTION-2"},
        ],
    ]
    for event in defines:
        assert event["triggerSource"] == "DefineAuthChallenge_Authentication"
        assert event["userPoolId"] == pool_id and event["userName"] == "alice"
        assert event["callerContext"]["clientId"] == client_id
        attributes = event["request"]["userAttributes"]
        assert attributes["email"] == "alice@example.com" and attributes["cognito:user_status"] == "CONFIRMED"
        assert attributes["sub"] == claims["sub"]
        assert "userNotFound" not in event["request"]  # only where the client prevents user existence errors
    # InitiateAuth's ClientMetadata is not passed to these triggers; a challenge answer's is.
    assert [e["request"]["clientMetadata"] for e in defines] == [{}, {"app": "quiz"}, {"app": "quiz"}]
    creates = functions.events("quiz-create")
    assert [e["triggerSource"] for e in creates] == ["CreateAuthChallenge_Authentication"] * 2
    assert [e["request"]["challengeName"] for e in creates] == ["CUSTOM_CHALLENGE"] * 2
    assert [len(e["request"]["session"]) for e in creates] == [0, 1]
    verifies = functions.events("quiz-verify")
    assert [e["triggerSource"] for e in verifies] == ["VerifyAuthChallengeResponse_Authentication"] * 2
    assert [e["request"]["privateChallengeParameters"] for e in verifies] == [{"answer": "42"}, {"answer": "Paris"}]
    assert [e["request"]["challengeAnswer"] for e in verifies] == ["42", "Paris"]
    assert verifies[0]["request"]["clientMetadata"] == {"app": "quiz"}
    assert verifies[0]["request"]["userAttributes"]["email"] == "alice@example.com"
    # The private parameters reach the verify function only.
    assert all("privateChallengeParameters" not in e["request"] for e in defines + creates)
    assert all(call.signature_valid for call in functions.invocations if (call.function_name or "").startswith("quiz-"))


def test_wrong_answers_are_retried_until_define_fails_the_sign_in(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    pool_id = _pool(idp, functions, "retry")
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "bob")

    # A wrong answer is no error: the function decides, and asks again.
    step = _start(public_idp, client_id, "bob")
    step = _answer(public_idp, client_id, step, "bob", "41")
    assert step["ChallengeName"] == "CUSTOM_CHALLENGE"
    assert step["ChallengeParameters"]["question"] == "What is 6 x 7?"
    step = _answer(public_idp, client_id, step, "bob", "42")
    step = _answer(public_idp, client_id, step, "bob", "Paris")
    assert "AccessToken" in step["AuthenticationResult"]
    assert functions.events("retry-define")[-1]["request"]["session"] == [
        {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": False, "challengeMetadata": "QUESTION-1"},
        {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": True, "challengeMetadata": "QUESTION-1"},
        {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": True, "challengeMetadata": "QUESTION-2"},
    ]

    # Three wrong answers: the define function fails the sign-in.
    step = _start(public_idp, client_id, "bob")
    for wrong in ("1", "2"):
        step = _answer(public_idp, client_id, step, "bob", wrong)
        assert step["ChallengeName"] == "CUSTOM_CHALLENGE"
    with pytest.raises(ClientError) as failed:
        _answer(public_idp, client_id, step, "bob", "3")
    assert _error(failed) == ("NotAuthorizedException", "Incorrect username or password.")
    with pytest.raises(ClientError) as spent:
        _answer(public_idp, client_id, step, "bob", "42")
    assert _error(spent)[0] == "NotAuthorizedException"
    assert [r["challengeResult"] for r in functions.events("retry-define")[-1]["request"]["session"]] == [False] * 3


def test_admin_flow_and_its_session_kept_from_the_public_api(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    pool_id = _pool(idp, functions, "admin")
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "carol")
    step = idp.admin_initiate_auth(
        UserPoolId=pool_id, ClientId=client_id, AuthFlow="CUSTOM_AUTH", AuthParameters={"USERNAME": "carol"}
    )
    assert step["ChallengeParameters"] == {"question": "What is 6 x 7?", "USERNAME": "carol"}
    with pytest.raises(ClientError) as public:
        _answer(public_idp, client_id, step, "carol", "42")
    assert _error(public)[0] == "NotAuthorizedException"
    step = idp.admin_initiate_auth(
        UserPoolId=pool_id, ClientId=client_id, AuthFlow="CUSTOM_AUTH", AuthParameters={"USERNAME": "carol"}
    )
    for answer in ("42", "Paris"):
        step = idp.admin_respond_to_auth_challenge(
            UserPoolId=pool_id,
            ClientId=client_id,
            ChallengeName="CUSTOM_CHALLENGE",
            Session=step["Session"],
            ChallengeResponses={"USERNAME": "carol", "ANSWER": answer},
        )
    assert _claims(gatehouse, pool_id, step["AuthenticationResult"]["IdToken"])["cognito:username"] == "carol"


# --- configuration, users -------------------------------------------------------------------------------------


def test_pool_without_define_function_or_client_without_the_flow(
    idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    pool_id = _pool(idp, functions, "nodefine", define=None)
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "dan")
    for username in ("dan", "nobody"):
        with pytest.raises(ClientError) as refused:
            _start(public_idp, client_id, username)
        assert _error(refused) == (
            "InvalidParameterException",
            "Custom auth lambda trigger is not configured for the user pool.",
        )
    assert functions.events("nodefine-create") == []

    pool_id = _pool(idp, functions, "noflow")
    strict = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="strict", ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    with pytest.raises(ClientError) as refused:
        _start(public_idp, strict, "dan")
    assert _error(refused) == ("InvalidParameterException", "Auth flow not enabled for this client")
    assert functions.events("noflow-define") == []


def test_unknown_user_with_and_without_prevent_user_existence_errors(
    idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    def always_issue(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        if event["request"]["session"]:
            event["response"].update(issueTokens=True, failAuthentication=False)
        else:
            event["response"].update(challengeName="CUSTOM_CHALLENGE", issueTokens=False, failAuthentication=False)
        return event

    pool_id = _pool(idp, functions, "ghost", define=always_issue)
    legacy = _client(idp, pool_id)
    with pytest.raises(ClientError) as unknown:
        _start(public_idp, legacy, "ghost")
    assert _error(unknown) == ("UserNotFoundException", "User does not exist.")
    assert functions.events("ghost-define") == []

    prevent = _client(idp, pool_id, PreventUserExistenceErrors="ENABLED")
    step = _start(public_idp, prevent, "ghost")
    assert step["ChallengeName"] == "CUSTOM_CHALLENGE"
    assert step["ChallengeParameters"] == {"question": "What is 6 x 7?", "USERNAME": "ghost"}
    define = functions.events("ghost-define")[-1]
    assert define["userName"] == "ghost"
    assert define["request"]["userNotFound"] is True and define["request"]["userAttributes"] == {}
    assert functions.events("ghost-create")[-1]["request"]["userNotFound"] is True
    # The function accepts the answer and asks for tokens: an unknown name never gets any.
    with pytest.raises(ClientError) as refused:
        _answer(public_idp, prevent, step, "ghost", "42")
    assert _error(refused) == ("NotAuthorizedException", "Incorrect username or password.")
    verify = functions.events("ghost-verify")[-1]
    assert verify["request"]["userNotFound"] is True and verify["request"]["challengeAnswer"] == "42"

    # A real user of that client is told userNotFound: false, and signs in.
    _user(idp, pool_id, "erin")
    step = _start(public_idp, prevent, "erin")
    assert functions.events("ghost-define")[-1]["request"]["userNotFound"] is False
    assert "AccessToken" in _answer(public_idp, prevent, step, "erin", "42")["AuthenticationResult"]


def test_disabled_user_and_refusing_pre_authentication_stop_before_any_challenge(
    idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    def pre_authentication(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        if event["userName"] == "mallory":
            raise ValueError("Not today")
        return event

    pool_id = _pool(
        idp, functions, "gate", extra={"PreAuthentication": functions.add("gate-pre-auth", pre_authentication)}
    )
    client_id = _client(idp, pool_id)
    for name in ("frank", "mallory"):
        _user(idp, pool_id, name)
    idp.admin_disable_user(UserPoolId=pool_id, Username="frank")
    with pytest.raises(ClientError) as disabled:
        _start(public_idp, client_id, "frank")
    assert _error(disabled) == ("NotAuthorizedException", "User is disabled.")
    with pytest.raises(ClientError) as refused:
        _start(public_idp, client_id, "mallory")
    assert _error(refused) == ("UserLambdaValidationException", "PreAuthentication failed with error Not today.")
    assert functions.events("gate-define") == [] and functions.events("gate-create") == []
    assert [e["userName"] for e in functions.events("gate-pre-auth")] == ["frank", "mallory"]

    # Disabled between the challenge and the answer: no tokens.
    idp.admin_enable_user(UserPoolId=pool_id, Username="frank")
    step = _start(public_idp, client_id, "frank")
    step = _answer(public_idp, client_id, step, "frank", "42")
    idp.admin_disable_user(UserPoolId=pool_id, Username="frank")
    with pytest.raises(ClientError) as disabled:
        _answer(public_idp, client_id, step, "frank", "Paris")
    assert _error(disabled) == ("NotAuthorizedException", "User is disabled.")

    # Where the client hides who exists, a disabled user is taken through the challenges as an unknown name is:
    # the same first step (no "User is disabled." before anything is proven), and never tokens.
    hiding = _client(idp, pool_id, PreventUserExistenceErrors="ENABLED")
    first = {name: _start(public_idp, hiding, name) for name in ("frank", "nobody-here")}
    assert {step["ChallengeName"] for step in first.values()} == {"CUSTOM_CHALLENGE"}
    assert first["frank"]["ChallengeParameters"].keys() == first["nobody-here"]["ChallengeParameters"].keys()
    assert functions.events("gate-define")[-2]["request"]["userNotFound"] is True
    step = _answer(public_idp, hiding, first["frank"], "frank", "42")
    with pytest.raises(ClientError) as hidden:
        _answer(public_idp, hiding, step, "frank", "Paris")
    assert _error(hidden) == ("NotAuthorizedException", "Incorrect username or password.")


def srp_then_quiz_define(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """The developer guide's pattern: SRP_A -> PASSWORD_VERIFIER -> the quiz."""
    session = event["request"]["session"]
    if len(session) == 1 and session[0]["challengeName"] == "SRP_A":
        event["response"].update(challengeName="PASSWORD_VERIFIER", issueTokens=False, failAuthentication=False)
        return event
    if len(session) >= 2 and session[1]["challengeName"] == "PASSWORD_VERIFIER" and session[1]["challengeResult"]:
        event["request"]["session"] = session[2:]  # the quiz counts its own answers
        quiz_define(event, context)
        event["request"]["session"] = session
        return event
    event["response"].update(issueTokens=False, failAuthentication=True)
    return event


def srp_then_quiz_create(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    session = event["request"]["session"]
    event["request"]["session"] = [r for r in session if r["challengeName"] == "CUSTOM_CHALLENGE"]
    quiz_create(event, context)
    event["request"]["session"] = session
    return event


def test_custom_auth_with_srp_proves_the_password_first(idp: Any, public_idp: Any, functions: FakeLambda) -> None:
    """CUSTOM_WITH_SRP, as amazon-cognito-identity-js and Amplify send it: CHALLENGE_NAME=SRP_A and SRP_A."""
    pool_id = _pool(idp, functions, "srpstart", define=srp_then_quiz_define, create=srp_then_quiz_create)
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "gina")

    srp = AWSSRP(username="gina", password=PASSWORD, pool_id=pool_id, client_id=client_id, client=public_idp)
    parameters = srp.get_auth_params()
    step = _start(public_idp, client_id, "gina", CHALLENGE_NAME="SRP_A", SRP_A=parameters["SRP_A"])
    assert step["ChallengeName"] == "PASSWORD_VERIFIER"
    assert functions.events("srpstart-define")[-1]["request"]["session"] == [
        {"challengeName": "SRP_A", "challengeResult": True, "challengeMetadata": None}
    ]
    step = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="PASSWORD_VERIFIER",
        Session=step["Session"],
        ChallengeResponses=srp.process_challenge(step["ChallengeParameters"], parameters),
    )
    assert step["ChallengeName"] == "CUSTOM_CHALLENGE"
    session = functions.events("srpstart-define")[-1]["request"]["session"]
    assert [r["challengeName"] for r in session] == ["SRP_A", "PASSWORD_VERIFIER"]
    assert session[1]["challengeResult"] is True
    step = _answer(public_idp, client_id, step, "gina", "42")
    step = _answer(public_idp, client_id, step, "gina", "Paris")
    assert step["AuthenticationResult"]["AccessToken"]

    # A wrong password ends the sign-in at once, as USER_SRP_AUTH does; the define function is not asked again.
    wrong = AWSSRP(
        username="gina", password="Not-the-Passw0rd", pool_id=pool_id, client_id=client_id, client=public_idp
    )
    parameters = wrong.get_auth_params()
    step = _start(public_idp, client_id, "gina", CHALLENGE_NAME="SRP_A", SRP_A=parameters["SRP_A"])
    asked = len(functions.events("srpstart-define"))
    with pytest.raises(ClientError) as refused:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="PASSWORD_VERIFIER",
            Session=step["Session"],
            ChallengeResponses=wrong.process_challenge(step["ChallengeParameters"], parameters),
        )
    assert _error(refused) == ("NotAuthorizedException", "Incorrect username or password.")
    assert len(functions.events("srpstart-define")) == asked

    # SRP_A must be given with it; any other CHALLENGE_NAME is refused; naming the custom challenge is as naming none.
    for extra in ({"CHALLENGE_NAME": "SRP_A"}, {"CHALLENGE_NAME": "SMS_MFA"}):
        with pytest.raises(public_idp.exceptions.InvalidParameterException):
            _start(public_idp, client_id, "gina", **extra)
    plain = _pool(idp, functions, "customplain")
    plain_client = _client(idp, plain)
    _user(idp, plain, "gus")
    assert _start(public_idp, plain_client, "gus", CHALLENGE_NAME="CUSTOM_CHALLENGE")["ChallengeName"] == (
        "CUSTOM_CHALLENGE"
    )


def test_issue_tokens_in_a_pool_that_requires_mfa_goes_on_to_mfa(
    idp: Any, public_idp: Any, functions: FakeLambda
) -> None:
    pool_id = _pool(idp, functions, "mfa")
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="ON"
    )
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "hank")
    step = _start(public_idp, client_id, "hank")
    step = _answer(public_idp, client_id, step, "hank", "42")
    step = _answer(public_idp, client_id, step, "hank", "Paris")
    assert "AuthenticationResult" not in step
    assert step["ChallengeName"] == "MFA_SETUP" and step["Session"]


# --- what the functions answer -----------------------------------------------------------------------------------


def test_malformed_function_output_is_invalid_lambda_response(idp: Any, public_idp: Any, functions: FakeLambda) -> None:
    answers: dict[str, Any] = {"define": None, "create": None, "verify": None}

    def define(event: dict[str, Any], context: dict[str, Any]) -> Any:
        if answers["define"] is not None and event["request"]["session"]:
            return answers["define"]
        return quiz_define(event, context)

    def create(event: dict[str, Any], context: dict[str, Any]) -> Any:
        return answers["create"] if answers["create"] is not None else quiz_create(event, context)

    def verify(event: dict[str, Any], context: dict[str, Any]) -> Any:
        return answers["verify"] if answers["verify"] is not None else quiz_verify(event, context)

    pool_id = _pool(idp, functions, "malformed", define=define, create=create, verify=verify)
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "ivy")
    cases = [
        ("define", {"response": {"issueTokens": "yes"}}),
        ("define", {"response": {"challengeName": 7}}),
        ("define", {"response": {}}),  # decides nothing
        ("define", {"response": {"challengeName": "SMS_MFA"}}),  # not one a custom sign-in can issue
        ("create", {"response": {"publicChallengeParameters": ["a"]}}),
        ("create", {"response": {"privateChallengeParameters": {"answer": 42}}}),
        ("create", {"response": {"challengeMetadata": {"a": "b"}}}),
        ("verify", {"response": {"answerCorrect": "true"}}),
        ("verify", RawResponse(b"this is not JSON")),
    ]
    for member, answer in cases:
        answers.update(define=None, create=None, verify=None)
        if member == "create":
            answers["create"] = answer
            with pytest.raises(ClientError) as invalid:
                _start(public_idp, client_id, "ivy")
        else:
            step = _start(public_idp, client_id, "ivy")
            answers[member] = answer
            with pytest.raises(ClientError) as invalid:
                _answer(public_idp, client_id, step, "ivy", "42")
        assert _error(invalid) == ("InvalidLambdaResponseException", "Unrecognizable lambda output"), answer


def test_a_sign_in_is_bounded_in_custom_challenges(idp: Any, public_idp: Any, functions: FakeLambda) -> None:
    def never_decides(event: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        event["response"].update(challengeName="CUSTOM_CHALLENGE", issueTokens=False, failAuthentication=False)
        return event

    pool_id = _pool(idp, functions, "endless", define=never_decides)
    client_id = _client(idp, pool_id)
    _user(idp, pool_id, "jack")
    step = _start(public_idp, client_id, "jack")
    for _ in range(7):
        step = _answer(public_idp, client_id, step, "jack", "42")
        assert step["ChallengeName"] == "CUSTOM_CHALLENGE"
    with pytest.raises(ClientError) as bounded:
        _answer(public_idp, client_id, step, "jack", "42")
    assert _error(bounded) == ("NotAuthorizedException", "Incorrect username or password.")
    assert len(functions.events("endless-create")) == 8


def test_client_with_secret_needs_secret_hash_at_each_step(idp: Any, public_idp: Any, functions: FakeLambda) -> None:
    pool_id = _pool(idp, functions, "secret")
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="web", GenerateSecret=True, ExplicitAuthFlows=["ALLOW_CUSTOM_AUTH"]
    )["UserPoolClient"]
    client_id, secret = client["ClientId"], client["ClientSecret"]
    _user(idp, pool_id, "kim")

    def secret_hash(username: str) -> str:
        digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    with pytest.raises(ClientError) as missing:
        _start(public_idp, client_id, "kim")
    assert _error(missing)[0] == "NotAuthorizedException"
    assert functions.events("secret-define") == []
    step = _start(public_idp, client_id, "kim", SECRET_HASH=secret_hash("kim"))
    with pytest.raises(ClientError) as missing:
        _answer(public_idp, client_id, step, "kim", "42")
    assert _error(missing) == (
        "NotAuthorizedException",
        f"Client {client_id} is configured with secret but SECRET_HASH was not received",
    )
    assert functions.events("secret-verify") == []
    step = _start(public_idp, client_id, "kim", SECRET_HASH=secret_hash("kim"))
    for answer in ("42", "Paris"):
        step = public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="CUSTOM_CHALLENGE",
            Session=step["Session"],
            ChallengeResponses={"USERNAME": "kim", "ANSWER": answer, "SECRET_HASH": secret_hash("kim")},
        )
    assert "AccessToken" in step["AuthenticationResult"]
