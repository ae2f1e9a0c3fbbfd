"""Choice-based sign-in (InitiateAuth USER_AUTH) against a running Gatehouse, driven by boto3: each first factor
(PASSWORD, PASSWORD_SRP with pycognito's client-side SRP, EMAIL_OTP read from a real SMTP server, SMS_OTP read
from the local outbox), SELECT_CHALLENGE, the pool's SignInPolicy and the client's ALLOW_USER_AUTH, and the
hostile cases: wrong, replayed and expired codes, another user's session, factors the pool does not allow."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP

from tests.support import GatehouseServer, MailServer, body_text

PASSWORD = "Correct-horse-battery-1"
ALL_FACTORS = ["PASSWORD", "EMAIL_OTP", "SMS_OTP", "WEB_AUTHN"]
CHOICE_FLOWS = ["ALLOW_USER_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


# --- helpers ---------------------------------------------------------------------------------------------


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def new_pool(idp: Any, name: str, factors: list[str], **extra: Any) -> str:
    pool = idp.create_user_pool(PoolName=name, Policies={"SignInPolicy": {"AllowedFirstAuthFactors": factors}}, **extra)
    return str(pool["UserPool"]["Id"])


def new_client(idp: Any, pool_id: str, *, flows: list[str] | None = None, prevent: bool = True) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=flows or CHOICE_FLOWS,
        PreventUserExistenceErrors="ENABLED" if prevent else "LEGACY",
    )
    return str(client["UserPoolClient"]["ClientId"])


def make_user(
    idp: Any, pool_id: str, username: str, *, email: str | None = None, phone: str | None = None, verified: bool = True
) -> None:
    attributes = []
    if email:
        attributes += [{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": str(verified).lower()}]
    if phone:
        attributes += [
            {"Name": "phone_number", "Value": phone},
            {"Name": "phone_number_verified", "Value": str(verified).lower()},
        ]
    idp.admin_create_user(UserPoolId=pool_id, Username=username, UserAttributes=attributes, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def user_auth(public_idp: Any, client_id: str, **parameters: str) -> dict[str, Any]:
    return dict(public_idp.initiate_auth(ClientId=client_id, AuthFlow="USER_AUTH", AuthParameters=parameters))


def respond(public_idp: Any, client_id: str, name: str, session: str, **responses: str) -> dict[str, Any]:
    return dict(
        public_idp.respond_to_auth_challenge(
            ClientId=client_id, ChallengeName=name, Session=session, ChallengeResponses=responses
        )
    )


def signed_in_as(public_idp: Any, answer: dict[str, Any]) -> str:
    """The username behind the tokens of ``answer`` (proving they are real, live tokens)."""
    tokens = answer["AuthenticationResult"]
    assert tokens["RefreshToken"] and tokens["IdToken"]
    return str(public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"])


def eight_digits(text: str) -> str:
    match = re.search(r"\b(\d{8})\b", text)
    assert match, text
    return match.group(1)


def emailed_code(mail: MailServer, address: str, count: int) -> str:
    return eight_digits(body_text(mail.wait_for(address, count=count)))


def outbox(server: GatehouseServer) -> list[dict[str, Any]]:
    path = server.data_dir / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def texted_code(server: GatehouseServer, phone: str, count: int) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        texts = [m for m in outbox(server) if m["to"] == phone]
        if len(texts) >= count:
            return eight_digits(texts[count - 1]["text"])
        time.sleep(0.05)
    raise AssertionError(f"no SMS #{count} for {phone}")


def database(server: GatehouseServer) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{server.data_dir / 'gatehouse.db'}?mode=rw", uri=True, timeout=10)


def user_row(server: GatehouseServer, pool_id: str, username: str) -> tuple[Any, ...]:
    with database(server) as db:
        row = db.execute("SELECT * FROM users WHERE pool_id = ? AND username = ?", (pool_id, username)).fetchone()
    db.close()
    assert row is not None
    return tuple(row)


# --- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return new_pool(idp, "choice", ALL_FACTORS)


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    return new_client(idp, pool_id)


# --- the pool's and the client's settings ----------------------------------------------------------------


def test_sign_in_policy_and_webauthn_settings_round_trip(idp: Any) -> None:
    pool_id = new_pool(idp, "policy", ["PASSWORD", "EMAIL_OTP"])
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["Policies"]["SignInPolicy"] == {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}
    assert "WebAuthnConfiguration" not in described

    idp.update_user_pool(UserPoolId=pool_id, Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ALL_FACTORS}})
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["Policies"]["SignInPolicy"]["AllowedFirstAuthFactors"] == ALL_FACTORS

    assert idp.get_user_pool_mfa_config(UserPoolId=pool_id)["WebAuthnConfiguration"] == {
        "UserVerification": "preferred",
        "FactorConfiguration": "SINGLE_FACTOR",
    }
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        WebAuthnConfiguration={"RelyingPartyId": "login.example.com", "UserVerification": "required"},
    )
    expected = {"RelyingPartyId": "login.example.com", "UserVerification": "required"}
    config = idp.get_user_pool_mfa_config(UserPoolId=pool_id)["WebAuthnConfiguration"]
    assert {k: config[k] for k in expected} == expected
    # UpdateUserPool leaves the MFA configuration alone.
    idp.update_user_pool(UserPoolId=pool_id, Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD"]}})
    assert idp.get_user_pool_mfa_config(UserPoolId=pool_id)["WebAuthnConfiguration"]["RelyingPartyId"] == (
        "login.example.com"
    )

    for bad in ("https://login.example.com", "login.example.com:443", "-bad-.example.com"):
        with pytest.raises(ClientError) as exc:
            idp.set_user_pool_mfa_config(UserPoolId=pool_id, WebAuthnConfiguration={"RelyingPartyId": bad})
        assert error_of(exc)[0] == "InvalidParameterException"
    assert idp.get_user_pool_mfa_config(UserPoolId=pool_id)["WebAuthnConfiguration"]["RelyingPartyId"] == (
        "login.example.com"
    )
    with pytest.raises(ClientError) as exc:
        idp.update_user_pool(UserPoolId=pool_id, Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["KNOCK"]}})
    assert error_of(exc)[0] == "InvalidParameterException"


def test_user_auth_needs_allow_user_auth_on_the_client(idp: Any, public_idp: Any, pool_id: str) -> None:
    make_user(idp, pool_id, "no-choice", email="no-choice@example.com")
    legacy = new_client(idp, pool_id, flows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])
    with pytest.raises(ClientError) as exc:
        user_auth(public_idp, legacy, USERNAME="no-choice", PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD)
    assert error_of(exc) == ("InvalidParameterException", "Auth flow not enabled for this client")
    # ... while the flows the client does allow keep working.
    answer = public_idp.initiate_auth(
        ClientId=legacy, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": "no-choice", "PASSWORD": PASSWORD}
    )
    assert signed_in_as(public_idp, answer) == "no-choice"


def test_malformed_requests_are_refused(public_idp: Any, client_id: str) -> None:
    with pytest.raises(ClientError) as exc:
        user_auth(public_idp, client_id, USERNAME="anyone", PREFERRED_CHALLENGE="CARRIER_PIGEON")
    assert error_of(exc) == ("InvalidParameterException", "Invalid PREFERRED_CHALLENGE: CARRIER_PIGEON")
    with pytest.raises(ClientError) as exc:
        user_auth(public_idp, client_id, PREFERRED_CHALLENGE="PASSWORD")
    assert error_of(exc) == ("InvalidParameterException", "Missing required parameter USERNAME")
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "SELECT_CHALLENGE", "not-a-session-" * 8, USERNAME="x", ANSWER="PASSWORD")
    assert error_of(exc)[0] == "NotAuthorizedException"


# --- SELECT_CHALLENGE and PASSWORD ---------------------------------------------------------------------------


def test_select_challenge_lists_the_factors_the_user_has(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "erin", email="erin@example.com")
    make_user(idp, pool_id, "fay", email="fay@example.com", phone="+15555550101")
    make_user(idp, pool_id, "gus", email="gus@example.com", phone="+15555550102", verified=False)

    offered = {name: user_auth(public_idp, client_id, USERNAME=name) for name in ("erin", "fay", "gus")}
    for answer in offered.values():
        assert answer["ChallengeName"] == "SELECT_CHALLENGE" and answer["Session"]
    assert offered["erin"]["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP", "EMAIL_OTP"]
    assert offered["fay"]["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP", "EMAIL_OTP", "SMS_OTP"]
    # Codes are never sent to an address or number the user has not verified.
    assert offered["gus"]["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP"]

    fay = user_auth(public_idp, client_id, USERNAME="fay", PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD)
    factors = public_idp.get_user_auth_factors(AccessToken=fay["AuthenticationResult"]["AccessToken"])
    assert factors["Username"] == "fay"
    assert factors["ConfiguredUserAuthFactors"] == ["PASSWORD", "EMAIL_OTP", "SMS_OTP"]

    answer = respond(
        public_idp,
        client_id,
        "SELECT_CHALLENGE",
        offered["erin"]["Session"],
        USERNAME="erin",
        ANSWER="PASSWORD",
        PASSWORD=PASSWORD,
    )
    assert signed_in_as(public_idp, answer) == "erin"
    # The session answered once.
    with pytest.raises(ClientError) as exc:
        respond(
            public_idp,
            client_id,
            "SELECT_CHALLENGE",
            offered["erin"]["Session"],
            USERNAME="erin",
            ANSWER="PASSWORD",
            PASSWORD=PASSWORD,
        )
    assert error_of(exc)[0] == "NotAuthorizedException"

    # A wrong password through SELECT_CHALLENGE is a wrong password.
    with pytest.raises(ClientError) as exc:
        respond(
            public_idp,
            client_id,
            "SELECT_CHALLENGE",
            offered["fay"]["Session"],
            USERNAME="fay",
            ANSWER="PASSWORD",
            PASSWORD="Wrong-password-9",
        )
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")

    # A choice that was not offered is refused, and sends nothing.
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "SELECT_CHALLENGE", offered["gus"]["Session"], USERNAME="gus", ANSWER="SMS_OTP")
    assert error_of(exc) == ("InvalidParameterException", "SMS_OTP is not an available challenge for this user.")
    assert not [m for m in outbox(gatehouse) if m["to"] == "+15555550102"]


def test_preferred_password_signs_in_at_once(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    make_user(idp, pool_id, "hana", email="hana@example.com")
    answer = user_auth(public_idp, client_id, USERNAME="hana", PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD)
    assert "ChallengeName" not in answer
    assert signed_in_as(public_idp, answer) == "hana"
    # The admin API takes the same flow.
    admin = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="USER_AUTH",
        AuthParameters={"USERNAME": "hana", "PREFERRED_CHALLENGE": "PASSWORD", "PASSWORD": PASSWORD},
    )
    assert signed_in_as(public_idp, admin) == "hana"
    with pytest.raises(ClientError) as exc:
        user_auth(public_idp, client_id, USERNAME="hana", PREFERRED_CHALLENGE="PASSWORD", PASSWORD="Nope-nope-123")
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")


def test_password_srp_with_pycognito(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    make_user(idp, pool_id, "ivan", email="ivan@example.com")
    aws = AWSSRP(username="ivan", password=PASSWORD, pool_id=pool_id, client_id=client_id, client=public_idp)
    parameters = aws.get_auth_params()

    # Preferred at once ...
    answer = user_auth(public_idp, client_id, PREFERRED_CHALLENGE="PASSWORD_SRP", **parameters)
    assert answer["ChallengeName"] == "PASSWORD_VERIFIER"
    proof = aws.process_challenge(answer["ChallengeParameters"], parameters)
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", Session=answer["Session"], ChallengeResponses=proof
    )
    assert signed_in_as(public_idp, done) == "ivan"

    # ... or chosen from SELECT_CHALLENGE.
    aws = AWSSRP(username="ivan", password=PASSWORD, pool_id=pool_id, client_id=client_id, client=public_idp)
    parameters = aws.get_auth_params()
    select = user_auth(public_idp, client_id, USERNAME="ivan")
    answer = respond(public_idp, client_id, "SELECT_CHALLENGE", select["Session"], ANSWER="PASSWORD_SRP", **parameters)
    assert answer["ChallengeName"] == "PASSWORD_VERIFIER"
    proof = aws.process_challenge(answer["ChallengeParameters"], parameters)
    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id, ChallengeName="PASSWORD_VERIFIER", Session=answer["Session"], ChallengeResponses=proof
    )
    assert signed_in_as(public_idp, done) == "ivan"

    # The wrong password's proof fails.
    wrong = AWSSRP(
        username="ivan", password="Not-the-password-1", pool_id=pool_id, client_id=client_id, client=public_idp
    )
    parameters = wrong.get_auth_params()
    answer = user_auth(public_idp, client_id, PREFERRED_CHALLENGE="PASSWORD_SRP", **parameters)
    with pytest.raises(ClientError) as exc:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="PASSWORD_VERIFIER",
            Session=answer["Session"],
            ChallengeResponses=wrong.process_challenge(answer["ChallengeParameters"], parameters),
        )
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")


# --- one-time codes ------------------------------------------------------------------------------------------


def test_email_otp_signs_in_once(idp: Any, public_idp: Any, mail: MailServer, pool_id: str, client_id: str) -> None:
    make_user(idp, pool_id, "jade", email="jade@example.com")
    answer = user_auth(public_idp, client_id, USERNAME="jade", PREFERRED_CHALLENGE="EMAIL_OTP")
    assert answer["ChallengeName"] == "EMAIL_OTP"
    assert answer["ChallengeParameters"] == {
        "CODE_DELIVERY_DELIVERY_MEDIUM": "EMAIL",
        "CODE_DELIVERY_DESTINATION": "j***@e***",
    }
    code = emailed_code(mail, "jade@example.com", 1)

    wrong = "00000000" if code != "00000000" else "11111111"
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "EMAIL_OTP", answer["Session"], USERNAME="jade", EMAIL_OTP_CODE=wrong)
    assert error_of(exc) == ("CodeMismatchException", "Invalid code received for user")
    # A wrong code leaves the challenge open for the right one.
    done = respond(public_idp, client_id, "EMAIL_OTP", answer["Session"], USERNAME="jade", EMAIL_OTP_CODE=code)
    assert signed_in_as(public_idp, done) == "jade"

    # Replayed: the session is spent ...
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "EMAIL_OTP", answer["Session"], USERNAME="jade", EMAIL_OTP_CODE=code)
    assert error_of(exc)[0] == "NotAuthorizedException"
    # ... and in a new challenge the old code is worth nothing (a new one was sent).
    again = user_auth(public_idp, client_id, USERNAME="jade", PREFERRED_CHALLENGE="EMAIL_OTP")
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "EMAIL_OTP", again["Session"], USERNAME="jade", EMAIL_OTP_CODE=code)
    assert error_of(exc)[0] == "CodeMismatchException"
    fresh = emailed_code(mail, "jade@example.com", 2)
    done = respond(public_idp, client_id, "EMAIL_OTP", again["Session"], USERNAME="jade", EMAIL_OTP_CODE=fresh)
    assert signed_in_as(public_idp, done) == "jade"


def test_sms_otp_chosen_from_select_challenge(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "kai", email="kai@example.com", phone="+15555550103")
    select = user_auth(public_idp, client_id, USERNAME="kai")
    assert "SMS_OTP" in select["AvailableChallenges"]
    answer = respond(public_idp, client_id, "SELECT_CHALLENGE", select["Session"], USERNAME="kai", ANSWER="SMS_OTP")
    assert answer["ChallengeName"] == "SMS_OTP"
    assert answer["ChallengeParameters"] == {
        "CODE_DELIVERY_DELIVERY_MEDIUM": "SMS",
        "CODE_DELIVERY_DESTINATION": "+*******0103",
    }
    code = texted_code(gatehouse, "+15555550103", 1)
    done = respond(public_idp, client_id, "SMS_OTP", answer["Session"], USERNAME="kai", SMS_OTP_CODE=code)
    assert signed_in_as(public_idp, done) == "kai"
    # An EMAIL_OTP answer does not fit an SMS_OTP session.
    again = user_auth(public_idp, client_id, USERNAME="kai", PREFERRED_CHALLENGE="SMS_OTP")
    code = texted_code(gatehouse, "+15555550103", 2)
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "EMAIL_OTP", again["Session"], USERNAME="kai", EMAIL_OTP_CODE=code)
    assert error_of(exc)[0] == "InvalidParameterException"


def test_an_expired_code_is_refused(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, mail: MailServer, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "lena", email="lena@example.com")
    answer = user_auth(public_idp, client_id, USERNAME="lena", PREFERRED_CHALLENGE="EMAIL_OTP")
    code = emailed_code(mail, "lena@example.com", 1)
    # The code was sent long ago: its expiry is in the past (the stored code is only a keyed hash).
    with database(gatehouse) as db:
        rows = db.execute(
            "SELECT code_hash FROM codes WHERE pool_id = ? AND username_key = 'lena' AND purpose = 'sign_in:EMAIL_OTP'",
            (pool_id,),
        ).fetchall()
        assert len(rows) == 1 and code not in rows[0][0]
        cursor = db.execute(
            "UPDATE codes SET expires_at = ? WHERE pool_id = ? AND username_key = 'lena'", (time.time() - 1, pool_id)
        )
        assert cursor.rowcount == 1
    db.close()
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "EMAIL_OTP", answer["Session"], USERNAME="lena", EMAIL_OTP_CODE=code)
    assert error_of(exc) == ("ExpiredCodeException", "The code has expired.")
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "EMAIL_OTP", answer["Session"], USERNAME="lena", EMAIL_OTP_CODE=code)
    assert error_of(exc)[0] == "ExpiredCodeException"


def test_another_users_session_is_refused(
    idp: Any, public_idp: Any, mail: MailServer, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "mia", email="mia@example.com")
    make_user(idp, pool_id, "ned", email="ned@example.com")
    mia = user_auth(public_idp, client_id, USERNAME="mia", PREFERRED_CHALLENGE="EMAIL_OTP")
    ned = user_auth(public_idp, client_id, USERNAME="ned", PREFERRED_CHALLENGE="EMAIL_OTP")
    mia_code, ned_code = emailed_code(mail, "mia@example.com", 1), emailed_code(mail, "ned@example.com", 1)

    # Ned answers Mia's challenge in his own name, with his own code: refused, and it spends Mia's session.
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "EMAIL_OTP", mia["Session"], USERNAME="ned", EMAIL_OTP_CODE=ned_code)
    assert error_of(exc) == ("NotAuthorizedException", "Invalid session for the user.")
    # Mia's code does not open Ned's session either.
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "EMAIL_OTP", ned["Session"], USERNAME="ned", EMAIL_OTP_CODE=mia_code)
    assert error_of(exc)[0] == "CodeMismatchException"
    # Another app client cannot answer for this one.
    other_client = new_client(idp, pool_id)
    with pytest.raises(ClientError) as exc:
        respond(public_idp, other_client, "EMAIL_OTP", ned["Session"], USERNAME="ned", EMAIL_OTP_CODE=ned_code)
    assert error_of(exc) == ("NotAuthorizedException", "Invalid session for the user.")


def test_wrong_codes_count_towards_the_lockout(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, mail: MailServer, pool_id: str, client_id: str
) -> None:
    make_user(idp, pool_id, "olga", email="olga@example.com")
    answer = user_auth(public_idp, client_id, USERNAME="olga", PREFERRED_CHALLENGE="EMAIL_OTP")
    code = emailed_code(mail, "olga@example.com", 1)
    wrong = str((int(code) + 1) % 10**8).zfill(8)
    session = answer["Session"]
    for _ in range(4):
        with pytest.raises(ClientError) as exc:
            respond(public_idp, client_id, "EMAIL_OTP", session, USERNAME="olga", EMAIL_OTP_CODE=wrong)
        assert error_of(exc)[0] == "CodeMismatchException"
    other = user_auth(public_idp, client_id, USERNAME="olga", PREFERRED_CHALLENGE="EMAIL_OTP")
    with pytest.raises(ClientError) as exc:
        respond(public_idp, client_id, "EMAIL_OTP", other["Session"], USERNAME="olga", EMAIL_OTP_CODE=wrong)
    assert error_of(exc)[0] == "CodeMismatchException"
    # Five failures: locked out, even with the right password.
    with pytest.raises(ClientError) as exc:
        user_auth(public_idp, client_id, USERNAME="olga", PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD)
    assert error_of(exc) == ("NotAuthorizedException", "Password attempts exceeded")
    lockout = json.loads(user_row(gatehouse, pool_id, "olga")[16])["lockout"]
    assert lockout["failures"] == 5
    # While locked out, no further code is sent.
    with pytest.raises(ClientError) as exc:
        user_auth(public_idp, client_id, USERNAME="olga", PREFERRED_CHALLENGE="EMAIL_OTP")
    assert error_of(exc) == ("NotAuthorizedException", "Password attempts exceeded")
    time.sleep(0.3)
    assert len(mail.messages_to("olga@example.com")) == 2


def test_factors_the_pool_does_not_allow_are_not_offered(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, mail: MailServer
) -> None:
    pool_id = new_pool(idp, "password-only", ["PASSWORD"])
    client_id = new_client(idp, pool_id)
    make_user(idp, pool_id, "pia", email="pia@example.com", phone="+15555550104")
    answer = user_auth(public_idp, client_id, USERNAME="pia", PREFERRED_CHALLENGE="EMAIL_OTP")
    assert answer["ChallengeName"] == "SELECT_CHALLENGE"
    assert answer["AvailableChallenges"] == ["PASSWORD", "PASSWORD_SRP"]
    for choice in ("EMAIL_OTP", "SMS_OTP", "WEB_AUTHN"):
        select = user_auth(public_idp, client_id, USERNAME="pia")
        with pytest.raises(ClientError) as exc:
            respond(public_idp, client_id, "SELECT_CHALLENGE", select["Session"], USERNAME="pia", ANSWER=choice)
        assert error_of(exc) == ("InvalidParameterException", f"{choice} is not an available challenge for this user.")
    time.sleep(0.3)
    assert mail.messages_to("pia@example.com") == []
    assert [m for m in outbox(gatehouse) if m["to"] == "+15555550104"] == []


def test_unknown_users(idp: Any, public_idp: Any, mail: MailServer, pool_id: str, client_id: str) -> None:
    # With PreventUserExistenceErrors: a selection of the pool's factors is offered (the same at every try; see
    # tests/e2e/test_unknown_user_decoys.py), and every answer fails.
    select = user_auth(public_idp, client_id, USERNAME="nobody")
    assert select["ChallengeName"] == "SELECT_CHALLENGE"
    assert select["AvailableChallenges"][:2] == ["PASSWORD", "PASSWORD_SRP"]
    assert set(select["AvailableChallenges"]) <= {"PASSWORD", "PASSWORD_SRP", "EMAIL_OTP", "SMS_OTP", "WEB_AUTHN"}
    with pytest.raises(ClientError) as exc:
        respond(
            public_idp,
            client_id,
            "SELECT_CHALLENGE",
            select["Session"],
            USERNAME="nobody",
            ANSWER="PASSWORD",
            PASSWORD=PASSWORD,
        )
    assert error_of(exc) == ("NotAuthorizedException", "Incorrect username or password.")
    otp = user_auth(public_idp, client_id, USERNAME="nobody@example.com", PREFERRED_CHALLENGE="EMAIL_OTP")
    assert otp["ChallengeName"] == "EMAIL_OTP"
    destination = otp["ChallengeParameters"]["CODE_DELIVERY_DESTINATION"]
    # Masked as a user signing in with that address would see it.
    assert destination == "n***@e***"
    again = user_auth(public_idp, client_id, USERNAME="nobody@example.com", PREFERRED_CHALLENGE="EMAIL_OTP")
    assert again["ChallengeParameters"]["CODE_DELIVERY_DESTINATION"] == destination
    texter = next(
        name
        for name in (f"nobody{i}" for i in range(40))
        if "SMS_OTP" in user_auth(public_idp, client_id, USERNAME=name)["AvailableChallenges"]
    )
    texted = user_auth(public_idp, client_id, USERNAME=texter, PREFERRED_CHALLENGE="SMS_OTP")
    assert re.fullmatch(r"\+\*{7}\d{4}", texted["ChallengeParameters"]["CODE_DELIVERY_DESTINATION"])
    with pytest.raises(ClientError) as exc:
        respond(
            public_idp, client_id, "EMAIL_OTP", otp["Session"], USERNAME="nobody@example.com", EMAIL_OTP_CODE="12345678"
        )
    assert error_of(exc)[0] == "CodeMismatchException"
    time.sleep(0.3)
    assert mail.messages_to("nobody@example.com") == []

    # Without it: UserNotFoundException.
    legacy = new_client(idp, pool_id, prevent=False)
    with pytest.raises(ClientError) as exc:
        user_auth(public_idp, legacy, USERNAME="nobody")
    assert error_of(exc) == ("UserNotFoundException", "User does not exist.")


def test_a_real_and_an_unknown_address_get_the_same_answers(idp: Any, public_idp: Any, mail: MailServer) -> None:
    """Under PreventUserExistenceErrors a code challenge tells no user from an unknown address: the masked
    destination is the address's own, and a challenge a newer one replaced refuses even the code it sent as a
    wrong code, as an unknown address's challenge refuses every code."""
    by_address = new_pool(idp, "by-address", ["PASSWORD", "EMAIL_OTP"], UsernameAttributes=["email"])
    client = new_client(idp, by_address)
    make_user(idp, by_address, "rhea@example.com", email="rhea@example.com")
    answers: dict[str, tuple[str, str]] = {}
    for address in ("rhea@example.com", "rhys@example.com"):  # a user's address, and nobody's
        first = user_auth(public_idp, client, USERNAME=address, PREFERRED_CHALLENGE="EMAIL_OTP")
        user_auth(public_idp, client, USERNAME=address, PREFERRED_CHALLENGE="EMAIL_OTP")  # replaces its code
        code = emailed_code(mail, address, 1) if address.startswith("rhea") else "12345678"
        with pytest.raises(ClientError) as exc:
            respond(public_idp, client, "EMAIL_OTP", first["Session"], USERNAME=address, EMAIL_OTP_CODE=code)
        answers[address] = (first["ChallengeParameters"]["CODE_DELIVERY_DESTINATION"], error_of(exc)[0])
    assert answers["rhea@example.com"] == ("r***@e***", "CodeMismatchException")
    assert answers["rhys@example.com"] == answers["rhea@example.com"]


def test_passkeys_need_a_domain_as_relying_party(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    """This module's server is reached at 127.0.0.1: an address is no relying party ID, so a domain must be set."""
    make_user(idp, pool_id, "rhea", email="rhea@example.com")
    access = user_auth(public_idp, client_id, USERNAME="rhea", PREFERRED_CHALLENGE="PASSWORD", PASSWORD=PASSWORD)[
        "AuthenticationResult"
    ]["AccessToken"]
    with pytest.raises(ClientError) as exc:
        public_idp.start_web_authn_registration(AccessToken=access)
    assert error_of(exc)[0] == "WebAuthnConfigurationMissingException"
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, WebAuthnConfiguration={"RelyingPartyId": "example.com"})
    try:
        options = public_idp.start_web_authn_registration(AccessToken=access)["CredentialCreationOptions"]
        assert options["rp"]["id"] == "example.com"
        assert options["user"]["name"] == "rhea"
    finally:
        idp.set_user_pool_mfa_config(UserPoolId=pool_id, WebAuthnConfiguration={})


def test_passwordless_sign_up_then_sign_in_with_an_emailed_code(idp: Any, public_idp: Any, mail: MailServer) -> None:
    # Cognito keeps PASSWORD among the first factors; a user who signed up without one is offered the others.
    pool_id = new_pool(
        idp,
        "passwordless-sign-up",
        ["PASSWORD", "EMAIL_OTP"],
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
    )
    client_id = new_client(idp, pool_id)
    signed_up = public_idp.sign_up(ClientId=client_id, Username="sol@example.com")
    assert signed_up["UserConfirmed"] is False
    user = idp.admin_get_user(UserPoolId=pool_id, Username="sol@example.com")
    assert user["UserStatus"] == "UNCONFIRMED"
    confirmation = re.search(r"\b(\d{6})\b", body_text(mail.wait_for("sol@example.com", count=1)))
    assert confirmation
    public_idp.confirm_sign_up(ClientId=client_id, Username="sol@example.com", ConfirmationCode=confirmation.group(1))

    select = user_auth(public_idp, client_id, USERNAME="sol@example.com")
    assert select["AvailableChallenges"] == ["EMAIL_OTP"]
    answer = respond(
        public_idp, client_id, "SELECT_CHALLENGE", select["Session"], USERNAME="sol@example.com", ANSWER="EMAIL_OTP"
    )
    code = emailed_code(mail, "sol@example.com", 2)
    done = respond(
        public_idp, client_id, "EMAIL_OTP", answer["Session"], USERNAME="sol@example.com", EMAIL_OTP_CODE=code
    )
    assert signed_in_as(public_idp, done) == user["Username"]
    # No password exists: even where the pool allows passwords, none is offered to this user.
    idp.update_user_pool(
        UserPoolId=pool_id,
        AutoVerifiedAttributes=["email"],
        Policies={"SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]}},
    )
    select = user_auth(public_idp, client_id, USERNAME="sol@example.com", PREFERRED_CHALLENGE="PASSWORD", PASSWORD="x")
    assert (select["ChallengeName"], select["AvailableChallenges"]) == ("SELECT_CHALLENGE", ["EMAIL_OTP"])
    with pytest.raises(ClientError) as exc:
        respond(
            public_idp,
            client_id,
            "SELECT_CHALLENGE",
            select["Session"],
            USERNAME="sol@example.com",
            ANSWER="PASSWORD",
            PASSWORD=PASSWORD,
        )
    assert error_of(exc) == ("InvalidParameterException", "PASSWORD is not an available challenge for this user.")

    # A pool that signs in with passwords only still wants one at sign-up.
    password_pool = new_pool(idp, "password-sign-up", ["PASSWORD"], UsernameAttributes=["email"])
    password_client = new_client(idp, password_pool)
    with pytest.raises(ClientError) as exc:
        public_idp.sign_up(ClientId=password_client, Username="tam@example.com")
    assert error_of(exc) == (
        "InvalidParameterException",
        "Password is required: passwordless sign-up is not enabled for this user pool.",
    )
    assert idp.list_users(UserPoolId=password_pool)["Users"] == []
