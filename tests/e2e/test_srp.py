"""Sign-in with SRP (USER_SRP_AUTH, then PASSWORD_VERIFIER) against a running Gatehouse, driven by the real
clients: pycognito's ``AWSSRP`` over boto3, and amazon-cognito-identity-js's ``CognitoUser.authenticateUser``
run by node. The server never sees a password; each client proves it knows the one behind the verifier
stored when the password was set."""

from __future__ import annotations

import pathlib
import re
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families
from pycognito.aws_srp import AWSSRP, N_HEX
from pycognito.exceptions import ForceChangePasswordException

from tests.e2e.mfa_support import run_node
from tests.support import GatehouseServer

PASSWORD = "Correct-horse-battery-1"
NEW_PASSWORD = "Brand-new-password-22"
TEMPORARY = "Temporary-pass-333"
CHALLENGE_KEYS = {"SALT", "SECRET_BLOCK", "SRP_B", "USERNAME", "USER_ID_FOR_SRP"}
SRP_FLOWS = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --- helpers ---------------------------------------------------------------------------------------------


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def srp(
    client: Any, pool_id: str, client_id: str, username: str, password: str, *, secret: str | None = None
) -> AWSSRP:
    return AWSSRP(
        username=username,
        password=password,
        pool_id=pool_id,
        client_id=client_id,
        client=client,
        client_secret=secret,
    )


def verified_id_claims(gatehouse: GatehouseServer, pool_id: str, client_id: str, id_token: str) -> dict[str, Any]:
    keys = jwt.PyJWKClient(f"{gatehouse.url}/{pool_id}/.well-known/jwks.json")
    claims: dict[str, Any] = jwt.decode(
        id_token,
        keys.get_signing_key_from_jwt(id_token).key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=f"{gatehouse.url}/{pool_id}",
    )
    assert claims["token_use"] == "id"
    return claims


def make_user(idp: Any, pool_id: str, username: str, *, email: str | None = None, permanent: bool = True) -> None:
    attributes = [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}] if email else []
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        UserAttributes=attributes,
        TemporaryPassword=TEMPORARY,
        MessageAction="SUPPRESS",
    )
    if permanent:
        idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def start(public_idp: Any, client_id: str, aws: AWSSRP) -> tuple[dict[str, Any], dict[str, str]]:
    """InitiateAuth as pycognito does it; the challenge and the request's AuthParameters."""
    parameters = aws.get_auth_params()
    answer = public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=parameters)
    assert answer["ChallengeName"] == "PASSWORD_VERIFIER"
    return answer, parameters


class StaleSRP(AWSSRP):  # type: ignore[misc]
    """pycognito, with a clock ten minutes slow."""

    @staticmethod
    def get_cognito_formatted_timestamp(input_datetime: datetime) -> str:
        return str(AWSSRP.get_cognito_formatted_timestamp(input_datetime - timedelta(minutes=10)))


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    pool = idp.create_user_pool(PoolName="srp", AliasAttributes=["email"], AutoVerifiedAttributes=["email"])
    return str(pool["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", ExplicitAuthFlows=SRP_FLOWS, PreventUserExistenceErrors="ENABLED"
    )
    return str(client["UserPoolClient"]["ClientId"])


@pytest.fixture(scope="module")
def legacy_client_id(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="legacy", ExplicitAuthFlows=SRP_FLOWS, PreventUserExistenceErrors="LEGACY"
    )
    return str(client["UserPoolClient"]["ClientId"])


@pytest.fixture(scope="module")
def user(idp: Any, pool_id: str) -> str:
    make_user(idp, pool_id, "sam", email="sam@example.com")
    return "sam"


# --- pycognito -------------------------------------------------------------------------------------------


def test_pycognito_signs_in_and_the_id_token_verifies(
    gatehouse: GatehouseServer, public_idp: Any, pool_id: str, client_id: str, user: str
) -> None:
    began = time.perf_counter()
    tokens = srp(public_idp, pool_id, client_id, user, PASSWORD).authenticate_user()
    elapsed = time.perf_counter() - began
    result = tokens["AuthenticationResult"]
    claims = verified_id_claims(gatehouse, pool_id, client_id, result["IdToken"])
    assert claims["cognito:username"] == "sam" and claims["email"] == "sam@example.com"
    assert result["TokenType"] == "Bearer" and result["RefreshToken"]
    assert public_idp.get_user(AccessToken=result["AccessToken"])["Username"] == "sam"
    assert elapsed < 5, elapsed  # two round trips and a few 3072-bit exponentiations


def test_srp_tokens_carry_the_users_groups_and_roles(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, client_id: str, user: str
) -> None:
    role = "arn:aws:iam::123456789012:role/srp-readers"
    idp.create_group(UserPoolId=pool_id, GroupName="srp-readers", RoleArn=role, Precedence=1)
    idp.admin_add_user_to_group(UserPoolId=pool_id, Username=user, GroupName="srp-readers")
    try:
        result = srp(public_idp, pool_id, client_id, user, PASSWORD).authenticate_user()["AuthenticationResult"]
        claims = verified_id_claims(gatehouse, pool_id, client_id, result["IdToken"])
        assert claims["cognito:groups"] == ["srp-readers"] and claims["cognito:preferred_role"] == role
    finally:
        idp.admin_remove_user_from_group(UserPoolId=pool_id, Username=user, GroupName="srp-readers")


def test_the_challenge_has_cognitos_shape(public_idp: Any, pool_id: str, client_id: str, user: str) -> None:
    answer, _ = start(public_idp, client_id, srp(public_idp, pool_id, client_id, "SAM@example.com", PASSWORD))
    parameters = answer["ChallengeParameters"]
    assert set(parameters) == CHALLENGE_KEYS
    assert parameters["USERNAME"] == parameters["USER_ID_FOR_SRP"] == "sam"  # the internal name, not the alias
    assert re.fullmatch(r"[0-9a-f]+", parameters["SALT"]) and re.fullmatch(r"[0-9a-f]+", parameters["SRP_B"])
    assert int(parameters["SRP_B"], 16) % int(N_HEX, 16) != 0
    again, _ = start(public_idp, client_id, srp(public_idp, pool_id, client_id, user, PASSWORD))
    assert again["ChallengeParameters"]["SALT"] == parameters["SALT"]  # the salt of the stored verifier
    assert again["ChallengeParameters"]["SRP_B"] != parameters["SRP_B"]
    assert again["ChallengeParameters"]["SECRET_BLOCK"] != parameters["SECRET_BLOCK"]


def test_a_wrong_password_is_refused(public_idp: Any, pool_id: str, client_id: str, user: str) -> None:
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, client_id, user, "Wrong-password-1").authenticate_user()
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")


def test_sign_in_with_the_email_alias(
    gatehouse: GatehouseServer, public_idp: Any, pool_id: str, client_id: str, user: str
) -> None:
    tokens = srp(public_idp, pool_id, client_id, "sam@example.com", PASSWORD).authenticate_user()
    claims = verified_id_claims(gatehouse, pool_id, client_id, tokens["AuthenticationResult"]["IdToken"])
    assert claims["cognito:username"] == "sam"


def test_a_client_with_a_secret(gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, user: str) -> None:
    created = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="server", ExplicitAuthFlows=SRP_FLOWS, GenerateSecret=True
    )["UserPoolClient"]
    client_id, secret = created["ClientId"], created["ClientSecret"]
    for name in (user, "sam@example.com"):
        tokens = srp(public_idp, pool_id, client_id, name, PASSWORD, secret=secret).authenticate_user()
        verified_id_claims(gatehouse, pool_id, client_id, tokens["AuthenticationResult"]["IdToken"])
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, client_id, user, PASSWORD).authenticate_user()
    assert error_of(exc)[0] == "NotAuthorizedException"
    assert "SECRET_HASH was not received" in error_of(exc)[1]
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, client_id, user, PASSWORD, secret=secret + "x").authenticate_user()
    assert error_of(exc) == ("NotAuthorizedException", f"Unable to verify secret hash for client {client_id}")


def test_force_change_password_user_gets_new_password_required(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "fran", permanent=False)
    with pytest.raises(ForceChangePasswordException):
        srp(public_idp, pool_id, client_id, "fran", TEMPORARY).authenticate_user()
    with pytest.raises(ClientError) as exc:  # the temporary password is still proven first
        srp(public_idp, pool_id, client_id, "fran", "Not-the-temporary-1").authenticate_user()
    assert error_of(exc)[0] == "NotAuthorizedException"

    aws = srp(public_idp, pool_id, client_id, "fran", TEMPORARY)
    answer, parameters = start(public_idp, client_id, aws)
    responses = aws.process_challenge(answer["ChallengeParameters"], parameters)
    challenge = public_idp.respond_to_auth_challenge(
        ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert challenge["ChallengeParameters"]["USER_ID_FOR_SRP"] == "fran"
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": "fran", "NEW_PASSWORD": NEW_PASSWORD},
    )
    verified_id_claims(gatehouse, pool_id, client_id, done["AuthenticationResult"]["IdToken"])
    assert idp.admin_get_user(UserPoolId=pool_id, Username="fran")["UserStatus"] == "CONFIRMED"
    # The new password set a new verifier: SRP works with it, and no longer with the temporary one.
    srp(public_idp, pool_id, client_id, "fran", NEW_PASSWORD).authenticate_user()
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, client_id, "fran", TEMPORARY).authenticate_user()
    assert error_of(exc)[0] == "NotAuthorizedException"


def test_pycognito_completes_new_password_required(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "gail", permanent=False)
    done = srp(public_idp, pool_id, client_id, "gail", TEMPORARY).set_new_password_challenge(NEW_PASSWORD)
    verified_id_claims(gatehouse, pool_id, client_id, done["AuthenticationResult"]["IdToken"])


def test_unknown_user_gets_a_decoy_challenge_then_the_wrong_password_answer(
    public_idp: Any, pool_id: str, client_id: str, user: str
) -> None:
    first, _ = start(public_idp, client_id, srp(public_idp, pool_id, client_id, "nobody", PASSWORD))
    second, _ = start(public_idp, client_id, srp(public_idp, pool_id, client_id, "nobody", PASSWORD))
    other, _ = start(public_idp, client_id, srp(public_idp, pool_id, client_id, "nobody-else", PASSWORD))
    for answer in (first, second, other):
        assert set(answer["ChallengeParameters"]) == CHALLENGE_KEYS
    assert first["ChallengeParameters"]["SALT"] == second["ChallengeParameters"]["SALT"]
    assert first["ChallengeParameters"]["SALT"] != other["ChallengeParameters"]["SALT"]
    assert first["ChallengeParameters"]["SRP_B"] != second["ChallengeParameters"]["SRP_B"]
    assert first["ChallengeParameters"]["USER_ID_FOR_SRP"] == "nobody"
    answers = []
    for name, password in (("nobody", PASSWORD), (user, "Wrong-password-1")):
        with pytest.raises(ClientError) as exc:
            srp(public_idp, pool_id, client_id, name, password).authenticate_user()
        answers.append(error_of(exc))
    assert answers[0] == answers[1] == ("NotAuthorizedException", "Incorrect username or password.")


def test_unknown_user_under_legacy_is_told_at_once(
    public_idp: Any, pool_id: str, legacy_client_id: str, user: str
) -> None:
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, legacy_client_id, "nobody", PASSWORD).authenticate_user()
    assert error_of(exc)[0] == "UserNotFoundException"
    assert exc.value.operation_name == "InitiateAuth"
    srp(public_idp, pool_id, legacy_client_id, user, PASSWORD).authenticate_user()


def test_an_answer_is_accepted_once(public_idp: Any, pool_id: str, client_id: str, user: str) -> None:
    aws = srp(public_idp, pool_id, client_id, user, PASSWORD)
    answer, parameters = start(public_idp, client_id, aws)
    responses = aws.process_challenge(answer["ChallengeParameters"], parameters)
    tokens = public_idp.respond_to_auth_challenge(
        ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses
    )
    assert tokens["AuthenticationResult"]["IdToken"]
    for session in ({}, {"Session": answer["Session"]}):
        with pytest.raises(ClientError) as exc:
            public_idp.respond_to_auth_challenge(
                ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses, **session
            )
        assert error_of(exc)[0] == "NotAuthorizedException"


def test_the_session_works_as_sent_too(public_idp: Any, pool_id: str, client_id: str, user: str) -> None:
    """The JS clients send the Session back along with the SECRET_BLOCK; both name the same challenge."""
    aws = srp(public_idp, pool_id, client_id, user, PASSWORD)
    answer, parameters = start(public_idp, client_id, aws)
    responses = aws.process_challenge(answer["ChallengeParameters"], parameters)
    tokens = public_idp.respond_to_auth_challenge(
        ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses, Session=answer["Session"]
    )
    assert tokens["AuthenticationResult"]["IdToken"]


def test_a_wrong_answer_ends_the_challenge(public_idp: Any, pool_id: str, client_id: str, user: str) -> None:
    wrong = srp(public_idp, pool_id, client_id, user, "Wrong-password-1")
    answer, parameters = start(public_idp, client_id, wrong)
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="PASSWORD_VERIFIER",
            ChallengeResponses=wrong.process_challenge(answer["ChallengeParameters"], parameters),
        )
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")
    # The right password, with the same A and the same challenge: too late, the challenge is spent.
    right = srp(public_idp, pool_id, client_id, user, PASSWORD)
    right.small_a_value, right.large_a_value = wrong.small_a_value, wrong.large_a_value
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="PASSWORD_VERIFIER",
            ChallengeResponses=right.process_challenge(answer["ChallengeParameters"], parameters),
        )
    assert error_of(exc)[0] == "NotAuthorizedException"
    assert "session" in error_of(exc)[1].lower()


def test_malformed_answers_are_counted(public_idp: Any, pool_id: str, client_id: str, user: str) -> None:
    aws = srp(public_idp, pool_id, client_id, user, PASSWORD)
    answer, parameters = start(public_idp, client_id, aws)
    responses = aws.process_challenge(answer["ChallengeParameters"], parameters)
    incomplete = {k: v for k, v in responses.items() if k != "TIMESTAMP"}
    # A malformed answer leaves the challenge open, for a few tries only.
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=incomplete
        )
    assert error_of(exc) == ("InvalidParameterException", "Missing required parameter TIMESTAMP")
    tokens = public_idp.respond_to_auth_challenge(
        ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses
    )
    assert tokens["AuthenticationResult"]["IdToken"]

    answer, parameters = start(public_idp, client_id, aws)
    responses = aws.process_challenge(answer["ChallengeParameters"], parameters)
    incomplete = {k: v for k, v in responses.items() if k != "TIMESTAMP"}
    codes = []
    for _ in range(6):
        with pytest.raises(ClientError) as exc:
            public_idp.respond_to_auth_challenge(
                ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=incomplete
            )
        codes.append(error_of(exc)[0])
    assert codes == ["InvalidParameterException"] * 5 + ["NotAuthorizedException"]
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses
        )
    assert error_of(exc)[0] == "NotAuthorizedException"


def test_a_stale_or_reshaped_timestamp_is_refused(public_idp: Any, pool_id: str, client_id: str, user: str) -> None:
    with pytest.raises(ClientError) as exc:
        StaleSRP(
            username=user, password=PASSWORD, pool_id=pool_id, client_id=client_id, client=public_idp
        ).authenticate_user()
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")
    # Only Cognito's exact form is taken (the one both clients send): not a reshaped one, even if signed.
    reshapes: list[Callable[[str], str]] = [lambda t: t.replace(" UTC", "  UTC"), lambda t: "Xyz" + t[3:]]
    for reshape in reshapes:
        aws = srp(public_idp, pool_id, client_id, user, PASSWORD)
        answer, parameters = start(public_idp, client_id, aws)
        responses = aws.process_challenge(answer["ChallengeParameters"], parameters)
        responses["TIMESTAMP"] = reshape(responses["TIMESTAMP"])
        with pytest.raises(ClientError) as exc:
            public_idp.respond_to_auth_challenge(
                ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses
            )
        assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")


def test_an_answer_for_another_user_or_block_is_refused(
    idp: Any, public_idp: Any, pool_id: str, client_id: str, user: str
) -> None:
    make_user(idp, pool_id, "hal")
    for field in ("USERNAME", "PASSWORD_CLAIM_SECRET_BLOCK"):
        aws = srp(public_idp, pool_id, client_id, user, PASSWORD)
        answer, parameters = start(public_idp, client_id, aws)
        responses = aws.process_challenge(answer["ChallengeParameters"], parameters)
        other, _ = start(public_idp, client_id, srp(public_idp, pool_id, client_id, "hal", PASSWORD))
        changed = {"USERNAME": "hal", "PASSWORD_CLAIM_SECRET_BLOCK": other["ChallengeParameters"]["SECRET_BLOCK"]}
        with pytest.raises(ClientError) as exc:
            public_idp.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="PASSWORD_VERIFIER",
                ChallengeResponses={**responses, field: changed[field]},
                Session=answer["Session"],
            )
        assert error_of(exc)[0] == "NotAuthorizedException"


def test_a_client_without_srp_is_refused(idp: Any, public_idp: Any, pool_id: str, user: str) -> None:
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="password-only", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, client_id, user, PASSWORD).authenticate_user()
    assert error_of(exc)[0] == "InvalidParameterException"


def test_a_bad_srp_a_is_refused(public_idp: Any, pool_id: str, client_id: str, user: str) -> None:
    for name in (user, "nobody"):
        for srp_a in ("0", "00", N_HEX, format(2 * int(N_HEX, 16), "x"), "xyz", "1" * 5000):
            with pytest.raises(ClientError) as exc:
                public_idp.initiate_auth(
                    ClientId=client_id, AuthFlow="USER_SRP_AUTH", AuthParameters={"USERNAME": name, "SRP_A": srp_a}
                )
            assert error_of(exc)[0] == "InvalidParameterException", (name, srp_a[:10])
    with pytest.raises(ClientError) as exc:
        public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_SRP_AUTH", AuthParameters={"USERNAME": user})
    assert error_of(exc) == ("InvalidParameterException", "Missing required parameter SRP_A")


def test_disabled_and_unconfirmed_users_fail_after_the_password(
    idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "dora")
    idp.admin_disable_user(UserPoolId=pool_id, Username="dora")
    aws = srp(public_idp, pool_id, client_id, "dora", PASSWORD)
    start(public_idp, client_id, aws)  # no hint at the first step
    with pytest.raises(ClientError) as exc:
        aws.authenticate_user()
    assert error_of(exc) == ("NotAuthorizedException", "User is disabled.")
    assert exc.value.operation_name == "RespondToAuthChallenge"
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, client_id, "dora", "Wrong-password-1").authenticate_user()
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")

    public_idp.sign_up(ClientId=client_id, Username="uma", Password=PASSWORD)
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, client_id, "uma", PASSWORD).authenticate_user()
    assert error_of(exc)[0] == "UserNotConfirmedException"
    assert exc.value.operation_name == "RespondToAuthChallenge"
    # Once the proof has been checked the challenge is over, whatever the outcome: no second try with it.
    aws = srp(public_idp, pool_id, client_id, "uma", PASSWORD)
    answer, parameters = start(public_idp, client_id, aws)
    responses = aws.process_challenge(answer["ChallengeParameters"], parameters)
    outcomes = []
    for _ in range(2):
        with pytest.raises(ClientError) as exc:
            public_idp.respond_to_auth_challenge(
                ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", ChallengeResponses=responses
            )
        outcomes.append(error_of(exc)[0])
    assert outcomes == ["UserNotConfirmedException", "NotAuthorizedException"]
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, client_id, "uma", "Wrong-password-1").authenticate_user()
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")


def test_admin_initiate_auth_with_srp(
    gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str, user: str
) -> None:
    aws = srp(idp, pool_id, client_id, user, PASSWORD)
    parameters = aws.get_auth_params()
    answer = idp.admin_initiate_auth(
        UserPoolId=pool_id, ClientId=client_id, AuthFlow="USER_SRP_AUTH", AuthParameters=parameters
    )
    assert answer["ChallengeName"] == "PASSWORD_VERIFIER"
    tokens = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="PASSWORD_VERIFIER",
        ChallengeResponses=aws.process_challenge(answer["ChallengeParameters"], parameters),
    )
    verified_id_claims(gatehouse, pool_id, client_id, tokens["AuthenticationResult"]["IdToken"])


def test_email_username_pool_announces_the_uuid(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> None:
    pool_id = idp.create_user_pool(PoolName="srp-email", UsernameAttributes=["email"])["UserPool"]["Id"]
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="spa", ExplicitAuthFlows=SRP_FLOWS, PreventUserExistenceErrors="ENABLED"
    )["UserPoolClient"]["ClientId"]
    make_user(idp, pool_id, "eve@example.com")
    name = idp.admin_get_user(UserPoolId=pool_id, Username="eve@example.com")["Username"]
    aws = srp(public_idp, pool_id, client_id, "eve@example.com", PASSWORD)
    answer, _ = start(public_idp, client_id, aws)
    assert answer["ChallengeParameters"]["USER_ID_FOR_SRP"] == name and UUID.fullmatch(name)
    tokens = srp(public_idp, pool_id, client_id, "eve@example.com", PASSWORD).authenticate_user()
    claims = verified_id_claims(gatehouse, pool_id, client_id, tokens["AuthenticationResult"]["IdToken"])
    assert claims["cognito:username"] == name and claims["email"] == "eve@example.com"
    # An unknown email is announced under a UUID too, the same one each time.
    decoys = [
        start(public_idp, client_id, srp(public_idp, pool_id, client_id, "who@example.com", PASSWORD))[0]
        for _ in range(2)
    ]
    ids = {d["ChallengeParameters"]["USER_ID_FOR_SRP"] for d in decoys}
    assert len(ids) == 1 and UUID.fullmatch(ids.pop() or "")
    with pytest.raises(ClientError) as exc:
        srp(public_idp, pool_id, client_id, "who@example.com", PASSWORD).authenticate_user()
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")


def test_metrics_count_both_steps(
    gatehouse: GatehouseServer, public_idp: Any, pool_id: str, client_id: str, user: str
) -> None:
    def counts() -> dict[tuple[str, str, str], float]:
        with urllib.request.urlopen(f"{gatehouse.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        found: dict[tuple[str, str, str], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.labels.get("client") == client_id and s.name.startswith("gatehouse_sign_in_"):
                    key = (s.name, s.labels.get("flow", ""), s.labels.get("reason", ""))
                    found[key] = found.get(key, 0.0) + s.value
        return found

    before = counts()
    srp(public_idp, pool_id, client_id, user, PASSWORD).authenticate_user()
    with pytest.raises(ClientError):
        srp(public_idp, pool_id, client_id, user, "Wrong-password-1").authenticate_user()
    after = counts()

    def delta(name: str, flow: str, reason: str = "") -> float:
        return after.get((name, flow, reason), 0.0) - before.get((name, flow, reason), 0.0)

    assert delta("gatehouse_sign_in_attempts_total", "USER_SRP_AUTH") == 2
    # Each answer to the challenge is an attempt of its own, so successes and failures add up to attempts.
    assert delta("gatehouse_sign_in_attempts_total", "challenge:PASSWORD_VERIFIER") == 2
    assert delta("gatehouse_sign_in_successes_total", "challenge:PASSWORD_VERIFIER") == 1
    assert delta("gatehouse_sign_in_failures_total", "challenge:PASSWORD_VERIFIER", "NotAuthorizedException") == 1


# --- amazon-cognito-identity-js ----------------------------------------------------------------------------

_JS_SIGN_IN = r"""
const AmazonCognitoIdentity = require('amazon-cognito-identity-js');
const p = JSON.parse(process.argv[2]);
const pool = new AmazonCognitoIdentity.CognitoUserPool({
  UserPoolId: p.poolId, ClientId: p.clientId, endpoint: p.endpoint,
});
const user = new AmazonCognitoIdentity.CognitoUser({ Username: p.username, Pool: pool });
const done = (result) => { process.stdout.write(JSON.stringify(result)); };
const callbacks = {
  onSuccess: (session) => done({ ok: true, idToken: session.getIdToken().getJwtToken(),
    username: user.getUsername() }),
  onFailure: (err) => done({ ok: false, code: err.code, name: err.name, message: err.message }),
  newPasswordRequired: (userAttributes, requiredAttributes) => {
    if (!p.newPassword) return done({ ok: false, code: 'newPasswordRequired' });
    user.completeNewPasswordChallenge(p.newPassword, {}, callbacks);
  },
};
user.authenticateUser(
  new AmazonCognitoIdentity.AuthenticationDetails({ Username: p.username, Password: p.password }), callbacks);
"""


def run_js(tmp_path: pathlib.Path, **request: str) -> dict[str, Any]:
    return run_node(tmp_path, _JS_SIGN_IN, request, name="sign_in.js")


def test_amazon_cognito_identity_js_signs_in(
    tmp_path: pathlib.Path, gatehouse: GatehouseServer, pool_id: str, client_id: str, user: str
) -> None:
    for name in (user, "sam@example.com"):
        result = run_js(
            tmp_path, endpoint=gatehouse.url, poolId=pool_id, clientId=client_id, username=name, password=PASSWORD
        )
        assert result["ok"] is True, result
        claims = verified_id_claims(gatehouse, pool_id, client_id, result["idToken"])
        assert claims["cognito:username"] == "sam" and result["username"] == "sam"


def test_amazon_cognito_identity_js_wrong_password_and_unknown_user(
    tmp_path: pathlib.Path, gatehouse: GatehouseServer, pool_id: str, client_id: str, user: str
) -> None:
    for name, password in ((user, "Wrong-password-1"), ("nobody", PASSWORD)):
        result = run_js(
            tmp_path, endpoint=gatehouse.url, poolId=pool_id, clientId=client_id, username=name, password=password
        )
        assert result == {
            "ok": False,
            "code": "NotAuthorizedException",
            "name": "NotAuthorizedException",
            "message": "Incorrect username or password.",
        }


def test_amazon_cognito_identity_js_new_password_required(
    tmp_path: pathlib.Path, gatehouse: GatehouseServer, idp: Any, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "jo", permanent=False)
    request = {"endpoint": gatehouse.url, "poolId": pool_id, "clientId": client_id, "username": "jo"}
    result = run_js(tmp_path, **request, password=TEMPORARY, newPassword=NEW_PASSWORD)
    assert result["ok"] is True, result
    verified_id_claims(gatehouse, pool_id, client_id, result["idToken"])
    assert run_js(tmp_path, **request, password=NEW_PASSWORD)["ok"] is True
