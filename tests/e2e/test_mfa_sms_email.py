"""SMS and email MFA through boto3 against a real server: the pool's SmsMfaConfiguration and
EmailMfaConfiguration, users' SMSMfaSettings / EmailMfaSettings, the SMS_MFA and EMAIL_OTP challenges with codes
delivered for real (SMS to the server's outbox file, email to an aiosmtpd server), SELECT_MFA_TYPE, required
(ON) and optional MFA, and hostile answers: wrong, replayed, expired, concurrent and another user's.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
import time
from typing import Any

import pyotp
import pytest
from botocore.exceptions import ClientError

from tests.e2e.mfa_support import confirmed_user, outbox_sms, sms_code
from tests.support import GatehouseServer, MailServer, body_text

PASSWORD = "Sms-mfa-password-1"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
SMS_CONFIG = {"SmsAuthenticationMessage": "Your Gatehouse sign-in code is {####}"}
EMAIL_CONFIG = {"Subject": "Sign-in code", "Message": "Use {####} to sign in."}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def make_pool(idp: Any, name: str, mode: str, **factors: Any) -> tuple[str, str]:
    pool_id = str(idp.create_user_pool(PoolName=name)["UserPool"]["Id"])
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration=mode, **factors)
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str, **attributes: str) -> None:
    confirmed_user(idp, pool_id, username, PASSWORD, **attributes)


def sign_in(public_idp: Any, client_id: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    return dict(
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    )


def answer(public_idp: Any, client_id: str, name: str, session: str, username: str, **responses: str) -> dict[str, Any]:
    return dict(
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName=name,
            Session=session,
            ChallengeResponses={"USERNAME": username, **responses},
        )
    )


def tokens_of(result: dict[str, Any]) -> dict[str, Any]:
    assert "ChallengeName" not in result, result
    tokens = dict(result["AuthenticationResult"])
    assert tokens["AccessToken"] and tokens["IdToken"]
    return tokens


def email_code(mail: MailServer, address: str, count: int) -> str:
    match = re.search(r"\b(\d{6})\b", body_text(mail.wait_for(address, count=count)))
    assert match
    return match.group(1)


def not_the(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def database(server: GatehouseServer) -> sqlite3.Connection:
    path = server.data_dir / "gatehouse.db"
    return sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=10)


def mfa_view(idp: Any, pool_id: str, username: str) -> tuple[list[str] | None, str | None]:
    user = idp.admin_get_user(UserPoolId=pool_id, Username=username)
    return user.get("UserMFASettingList"), user.get("PreferredMfaSetting")


# --- the pool's configuration --------------------------------------------------------------------------------


def test_pool_sms_and_email_config_round_trip(idp: Any) -> None:
    pool_id = str(idp.create_user_pool(PoolName="sms-config")["UserPool"]["Id"])
    fresh = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    assert "SmsMfaConfiguration" not in fresh and "EmailMfaConfiguration" not in fresh

    # Required MFA with SMS as the only factor is a valid configuration.
    answer_ = idp.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration="ON", SmsMfaConfiguration=SMS_CONFIG)
    assert answer_["SmsMfaConfiguration"] == SMS_CONFIG and answer_["MfaConfiguration"] == "ON"
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, EmailMfaConfiguration=EMAIL_CONFIG)
    got = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    assert got["SmsMfaConfiguration"] == SMS_CONFIG and got["EmailMfaConfiguration"] == EMAIL_CONFIG
    assert got["SoftwareTokenMfaConfiguration"] == {"Enabled": False}
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert "SmsMfaConfiguration" not in described and "EmailMfaConfiguration" not in described
    # UpdateUserPool keeps the factor configuration (the SMS message is the pool's SmsAuthenticationMessage: one
    # setting, which UpdateUserPool resets to its default when left out, as it does every member).
    idp.update_user_pool(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SmsAuthenticationMessage=SMS_CONFIG["SmsAuthenticationMessage"]
    )
    assert idp.get_user_pool_mfa_config(UserPoolId=pool_id)["EmailMfaConfiguration"] == EMAIL_CONFIG

    # An empty configuration turns a factor off; the last factor can't go while MFA is required.
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, EmailMfaConfiguration={})
    assert "EmailMfaConfiguration" not in idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    idp.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration="ON")
    with pytest.raises(ClientError) as last:
        idp.set_user_pool_mfa_config(UserPoolId=pool_id, SmsMfaConfiguration={})
    assert error_of(last)[0] == "InvalidParameterException"
    assert idp.get_user_pool_mfa_config(UserPoolId=pool_id)["SmsMfaConfiguration"] == SMS_CONFIG

    # A template without the {####} placeholder does not match the model's pattern.
    with pytest.raises(ClientError) as no_code:
        idp.set_user_pool_mfa_config(UserPoolId=pool_id, SmsMfaConfiguration={"SmsAuthenticationMessage": "no code"})
    assert error_of(no_code)[0] == "InvalidParameterException"


def test_preferences_need_the_factor_and_somewhere_to_send_it(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "sms-prefs", "OPTIONAL", SmsMfaConfiguration=SMS_CONFIG)
    make_user(idp, pool_id, "nophone", email="nophone@example.com")
    with pytest.raises(ClientError) as no_phone:
        idp.admin_set_user_mfa_preference(
            UserPoolId=pool_id, Username="nophone", SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
        )
    assert error_of(no_phone) == (
        "InvalidParameterException",
        "User does not have delivery config set to turn on SMS_MFA",
    )
    # Email MFA is not configured in this pool.
    with pytest.raises(ClientError) as no_email_mfa:
        idp.admin_set_user_mfa_preference(UserPoolId=pool_id, Username="nophone", EmailMfaSettings={"Enabled": True})
    assert error_of(no_email_mfa)[0] == "InvalidParameterException"
    assert mfa_view(idp, pool_id, "nophone") == (None, None)
    tokens_of(sign_in(public_idp, client_id, "nophone"))

    make_user(idp, pool_id, "phoebe", phone_number="+15555550111")
    access = tokens_of(sign_in(public_idp, client_id, "phoebe"))["AccessToken"]
    # Two preferred factors at once, or preferred while turned off, are refused.
    with pytest.raises(ClientError) as both:
        public_idp.set_user_mfa_preference(
            AccessToken=access,
            SMSMfaSettings={"Enabled": True, "PreferredMfa": True},
            SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
        )
    assert error_of(both)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as off_preferred:
        public_idp.set_user_mfa_preference(AccessToken=access, SMSMfaSettings={"Enabled": False, "PreferredMfa": True})
    assert error_of(off_preferred)[0] == "InvalidParameterException"
    assert mfa_view(idp, pool_id, "phoebe") == (None, None)

    public_idp.set_user_mfa_preference(AccessToken=access, SMSMfaSettings={"Enabled": True, "PreferredMfa": True})
    me = public_idp.get_user(AccessToken=access)
    assert me["UserMFASettingList"] == ["SMS_MFA"] and me["PreferredMfaSetting"] == "SMS_MFA"
    assert mfa_view(idp, pool_id, "phoebe") == (["SMS_MFA"], "SMS_MFA")
    public_idp.set_user_mfa_preference(AccessToken=access, SMSMfaSettings={"Enabled": False})
    assert mfa_view(idp, pool_id, "phoebe") == (None, None)
    tokens_of(sign_in(public_idp, client_id, "phoebe"))


# --- SMS_MFA ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sms_pool(idp: Any) -> tuple[str, str]:
    return make_pool(idp, "sms-optional", "OPTIONAL", SmsMfaConfiguration=SMS_CONFIG)


def sms_user(idp: Any, pool_id: str, username: str, phone: str) -> None:
    make_user(idp, pool_id, username, phone_number=phone)
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username=username, SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
    )


def test_sms_mfa_sign_in(gatehouse: GatehouseServer, idp: Any, public_idp: Any, sms_pool: tuple[str, str]) -> None:
    pool_id, client_id = sms_pool
    phone = "+15555550100"
    sms_user(idp, pool_id, "sam", phone)
    assert mfa_view(idp, pool_id, "sam") == (["SMS_MFA"], "SMS_MFA")

    challenge = sign_in(public_idp, client_id, "sam")
    assert challenge["ChallengeName"] == "SMS_MFA" and "AuthenticationResult" not in challenge
    assert challenge["ChallengeParameters"] == {
        "CODE_DELIVERY_DELIVERY_MEDIUM": "SMS",
        "CODE_DELIVERY_DESTINATION": "+*******0100",
    }
    text = outbox_sms(gatehouse, phone)[0]
    assert text.startswith("Your Gatehouse sign-in code is ")
    code = sms_code(gatehouse, phone, 1)
    session = challenge["Session"]

    # A wrong code: CodeMismatchException, and the session still takes the right one.
    with pytest.raises(ClientError) as wrong:
        answer(public_idp, client_id, "SMS_MFA", session, "sam", SMS_MFA_CODE=not_the(code))
    assert error_of(wrong)[0] == "CodeMismatchException"
    with pytest.raises(ClientError) as garbage:
        answer(public_idp, client_id, "SMS_MFA", session, "sam", SMS_MFA_CODE="12ab56")
    assert error_of(garbage)[0] == "CodeMismatchException"
    tokens = tokens_of(answer(public_idp, client_id, "SMS_MFA", session, "sam", SMS_MFA_CODE=code))
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["PreferredMfaSetting"] == "SMS_MFA"

    # Replayed: the session is spent, and the code does not answer a new sign-in (which sent its own code).
    with pytest.raises(ClientError) as replay:
        answer(public_idp, client_id, "SMS_MFA", session, "sam", SMS_MFA_CODE=code)
    assert error_of(replay)[0] == "NotAuthorizedException"
    again = sign_in(public_idp, client_id, "sam")
    second = sms_code(gatehouse, phone, 2)
    if second != code:
        with pytest.raises(ClientError) as old_code:
            answer(public_idp, client_id, "SMS_MFA", again["Session"], "sam", SMS_MFA_CODE=code)
        assert error_of(old_code)[0] == "CodeMismatchException"
    tokens_of(answer(public_idp, client_id, "SMS_MFA", again["Session"], "sam", SMS_MFA_CODE=second))

    # The admin flow is challenged the same way.
    admin = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "sam", "PASSWORD": PASSWORD},
    )
    assert admin["ChallengeName"] == "SMS_MFA"
    done = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="SMS_MFA",
        Session=admin["Session"],
        ChallengeResponses={"USERNAME": "sam", "SMS_MFA_CODE": sms_code(gatehouse, phone, 3)},
    )
    tokens_of(done)


def test_ten_concurrent_right_answers_sign_in_once(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, sms_pool: tuple[str, str]
) -> None:
    pool_id, client_id = sms_pool
    phone = "+15555550102"
    sms_user(idp, pool_id, "racer", phone)
    session = sign_in(public_idp, client_id, "racer")["Session"]
    code = sms_code(gatehouse, phone, 1)
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(10)

    def submit() -> None:
        barrier.wait()
        try:
            tokens_of(answer(public_idp, client_id, "SMS_MFA", session, "racer", SMS_MFA_CODE=code))
            outcome = "tokens"
        except ClientError as exc:
            outcome = str(exc.response["Error"]["Code"])
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["NotAuthorizedException"] * 9 + ["tokens"], outcomes


def test_an_expired_code_is_refused(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, sms_pool: tuple[str, str]
) -> None:
    pool_id, client_id = sms_pool
    phone = "+15555550103"
    sms_user(idp, pool_id, "late", phone)
    session = sign_in(public_idp, client_id, "late")["Session"]
    code = sms_code(gatehouse, phone, 1)
    # Three minutes pass for the code (its expiry is moved into the past, in the server's own database).
    with database(gatehouse) as db:
        changed = db.execute(
            "UPDATE auth_sessions SET state = json_set(state, '$.code_expires_at', ?) WHERE session_hash = ?",
            (time.time() - 1, hashlib.sha256(session.encode()).hexdigest()),
        ).rowcount
    db.close()
    assert changed == 1
    with pytest.raises(ClientError) as expired:
        answer(public_idp, client_id, "SMS_MFA", session, "late", SMS_MFA_CODE=code)
    assert error_of(expired)[0] == "ExpiredCodeException"
    # The challenge is over: the session is gone.
    with pytest.raises(ClientError) as gone:
        answer(public_idp, client_id, "SMS_MFA", session, "late", SMS_MFA_CODE=code)
    assert error_of(gone)[0] == "NotAuthorizedException"


def test_another_users_session_or_code(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, sms_pool: tuple[str, str]
) -> None:
    pool_id, client_id = sms_pool
    sms_user(idp, pool_id, "alice", "+15555550104")
    sms_user(idp, pool_id, "bob", "+15555550105")
    alice_session = sign_in(public_idp, client_id, "alice")["Session"]
    bob_session = sign_in(public_idp, client_id, "bob")["Session"]
    alice_code = sms_code(gatehouse, "+15555550104", 1)
    bob_code = sms_code(gatehouse, "+15555550105", 1)
    # Bob answering Alice's challenge with his own name is refused, and that ends her challenge.
    with pytest.raises(ClientError) as other_name:
        answer(public_idp, client_id, "SMS_MFA", alice_session, "bob", SMS_MFA_CODE=bob_code)
    assert error_of(other_name)[0] == "NotAuthorizedException"
    # Bob's code does not answer Alice's challenge.
    if bob_code != alice_code:
        with pytest.raises(ClientError) as other_code:
            answer(public_idp, client_id, "SMS_MFA", bob_session, "bob", SMS_MFA_CODE=alice_code)
        assert error_of(other_code)[0] == "CodeMismatchException"
    tokens = tokens_of(answer(public_idp, client_id, "SMS_MFA", bob_session, "bob", SMS_MFA_CODE=bob_code))
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "bob"
    # A challenge name that does not match the session's is refused.
    alice_again = sign_in(public_idp, client_id, "alice")["Session"]
    with pytest.raises(ClientError) as wrong_name:
        answer(public_idp, client_id, "EMAIL_OTP", alice_again, "alice", EMAIL_OTP_CODE="123456")
    assert error_of(wrong_name)[0] == "InvalidParameterException"
    # An answer without the code is malformed; the challenge stays open for the real answer.
    alice_third = sign_in(public_idp, client_id, "alice")["Session"]
    with pytest.raises(ClientError) as missing:
        answer(public_idp, client_id, "SMS_MFA", alice_third, "alice")
    assert error_of(missing)[0] == "InvalidParameterException"
    third_code = sms_code(gatehouse, "+15555550104", 3)
    tokens_of(answer(public_idp, client_id, "SMS_MFA", alice_third, "alice", SMS_MFA_CODE=third_code))


def test_wrong_codes_count_towards_the_lockout(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, sms_pool: tuple[str, str]
) -> None:
    pool_id, client_id = sms_pool
    phone = "+15555550106"
    sms_user(idp, pool_id, "guesser", phone)
    session = sign_in(public_idp, client_id, "guesser")["Session"]
    code = sms_code(gatehouse, phone, 1)
    for _ in range(5):
        with pytest.raises(ClientError) as wrong:
            answer(public_idp, client_id, "SMS_MFA", session, "guesser", SMS_MFA_CODE=not_the(code))
        assert error_of(wrong)[0] == "CodeMismatchException"
    # Five failed attempts: the next sign-in is refused during the lockout, right password or not.
    with pytest.raises(ClientError) as locked:
        sign_in(public_idp, client_id, "guesser")
    assert error_of(locked) == ("NotAuthorizedException", "Password attempts exceeded")
    # After five wrong answers the challenge itself is gone.
    with pytest.raises(ClientError) as spent:
        answer(public_idp, client_id, "SMS_MFA", session, "guesser", SMS_MFA_CODE=code)
    assert error_of(spent)[0] == "NotAuthorizedException"


# --- EMAIL_OTP ---------------------------------------------------------------------------------------------------


def test_email_otp_sign_in(mail: MailServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "email-mfa", "OPTIONAL", EmailMfaConfiguration=EMAIL_CONFIG)
    make_user(idp, pool_id, "erin", email="erin@example.com")
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username="erin", EmailMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    assert mfa_view(idp, pool_id, "erin") == (["EMAIL_OTP"], "EMAIL_OTP")
    challenge = sign_in(public_idp, client_id, "erin")
    assert challenge["ChallengeName"] == "EMAIL_OTP"
    assert challenge["ChallengeParameters"] == {
        "CODE_DELIVERY_DELIVERY_MEDIUM": "EMAIL",
        "CODE_DELIVERY_DESTINATION": "e***@e***",
    }
    message = mail.wait_for("erin@example.com")
    assert message["Subject"] == "Sign-in code" and body_text(message).startswith("Use ")
    code = email_code(mail, "erin@example.com", 1)
    with pytest.raises(ClientError) as wrong:
        answer(public_idp, client_id, "EMAIL_OTP", challenge["Session"], "erin", EMAIL_OTP_CODE=not_the(code))
    assert error_of(wrong)[0] == "CodeMismatchException"
    # The SMS answer member does not answer an email challenge.
    with pytest.raises(ClientError) as other_member:
        answer(public_idp, client_id, "EMAIL_OTP", challenge["Session"], "erin", SMS_MFA_CODE=code)
    assert error_of(other_member)[0] == "InvalidParameterException"
    tokens_of(answer(public_idp, client_id, "EMAIL_OTP", challenge["Session"], "erin", EMAIL_OTP_CODE=code))


# --- several factors: SELECT_MFA_TYPE; required MFA -------------------------------------------------------------


def test_select_mfa_type(gatehouse: GatehouseServer, mail: MailServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(
        idp,
        "mfa-choose",
        "OPTIONAL",
        SmsMfaConfiguration=SMS_CONFIG,
        EmailMfaConfiguration=EMAIL_CONFIG,
        SoftwareTokenMfaConfiguration={"Enabled": True},
    )
    phone, address = "+15555550120", "chris@example.com"
    make_user(idp, pool_id, "chris", phone_number=phone, email=address)
    access = tokens_of(sign_in(public_idp, client_id, "chris"))["AccessToken"]
    secret = public_idp.associate_software_token(AccessToken=access)["SecretCode"]
    step = int(time.time() // 30)
    public_idp.verify_software_token(AccessToken=access, UserCode=pyotp.TOTP(secret).generate_otp(step))
    public_idp.set_user_mfa_preference(
        AccessToken=access,
        SMSMfaSettings={"Enabled": True},
        SoftwareTokenMfaSettings={"Enabled": True},
        EmailMfaSettings={"Enabled": True},
    )
    assert mfa_view(idp, pool_id, "chris") == (["SMS_MFA", "SOFTWARE_TOKEN_MFA", "EMAIL_OTP"], None)

    first = sign_in(public_idp, client_id, "chris")
    assert first["ChallengeName"] == "SELECT_MFA_TYPE"
    assert first["ChallengeParameters"] == {
        "MFAS_CAN_CHOOSE": '["SMS_MFA","SOFTWARE_TOKEN_MFA","EMAIL_OTP"]',
        "USER_ID_FOR_SRP": "chris",
    }
    assert outbox_sms(gatehouse, phone) == [] and mail.messages_to(address) == []  # nothing sent before a choice
    with pytest.raises(ClientError) as bad_answer:
        answer(public_idp, client_id, "SELECT_MFA_TYPE", first["Session"], "chris", ANSWER="WEB_AUTHN")
    assert error_of(bad_answer)[0] == "InvalidParameterException"
    chosen = answer(public_idp, client_id, "SELECT_MFA_TYPE", first["Session"], "chris", ANSWER="EMAIL_OTP")
    assert chosen["ChallengeName"] == "EMAIL_OTP"
    assert chosen["ChallengeParameters"]["CODE_DELIVERY_DELIVERY_MEDIUM"] == "EMAIL"
    code = email_code(mail, address, 1)
    tokens_of(answer(public_idp, client_id, "EMAIL_OTP", chosen["Session"], "chris", EMAIL_OTP_CODE=code))

    second = sign_in(public_idp, client_id, "chris")
    totp = answer(public_idp, client_id, "SELECT_MFA_TYPE", second["Session"], "chris", ANSWER="SOFTWARE_TOKEN_MFA")
    assert totp["ChallengeName"] == "SOFTWARE_TOKEN_MFA" and totp["ChallengeParameters"] == {}
    tokens_of(
        answer(
            public_idp,
            client_id,
            "SOFTWARE_TOKEN_MFA",
            totp["Session"],
            "chris",
            SOFTWARE_TOKEN_MFA_CODE=pyotp.TOTP(secret).generate_otp(step + 1),
        )
    )

    third = sign_in(public_idp, client_id, "chris")
    sms = answer(public_idp, client_id, "SELECT_MFA_TYPE", third["Session"], "chris", ANSWER="SMS_MFA")
    assert sms["ChallengeName"] == "SMS_MFA"
    tokens_of(
        answer(public_idp, client_id, "SMS_MFA", sms["Session"], "chris", SMS_MFA_CODE=sms_code(gatehouse, phone, 1))
    )

    # A preferred factor is asked for without a choice.
    public_idp.set_user_mfa_preference(AccessToken=access, EmailMfaSettings={"Enabled": True, "PreferredMfa": True})
    assert sign_in(public_idp, client_id, "chris")["ChallengeName"] == "EMAIL_OTP"


def test_required_mfa_sends_a_code_to_users_without_a_preference(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    pool_id, client_id = make_pool(idp, "sms-required", "ON", SmsMfaConfiguration=SMS_CONFIG)
    phone = "+15555550130"
    make_user(idp, pool_id, "rosa", phone_number=phone)
    challenge = sign_in(public_idp, client_id, "rosa")
    assert challenge["ChallengeName"] == "SMS_MFA"
    tokens_of(
        answer(
            public_idp, client_id, "SMS_MFA", challenge["Session"], "rosa", SMS_MFA_CODE=sms_code(gatehouse, phone, 1)
        )
    )
    # While MFA is required SMS can't be turned off.
    with pytest.raises(ClientError) as off:
        idp.admin_set_user_mfa_preference(UserPoolId=pool_id, Username="rosa", SMSMfaSettings={"Enabled": False})
    assert error_of(off)[0] == "InvalidParameterException"
    # A user with no phone is asked to set SMS MFA up (Cognito: add a phone_number, then sign in again;
    # tests/e2e/test_mfa_setup.py).
    make_user(idp, pool_id, "nophone")
    setup = sign_in(public_idp, client_id, "nophone")
    assert setup["ChallengeName"] == "MFA_SETUP"
    assert setup["ChallengeParameters"]["MFAS_CAN_SETUP"] == '["SMS_MFA"]'


def test_optional_mfa_without_a_factor_turned_on_signs_in(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, sms_pool: tuple[str, str]
) -> None:
    pool_id, client_id = sms_pool
    make_user(idp, pool_id, "casual", phone_number="+15555550140")
    tokens_of(sign_in(public_idp, client_id, "casual"))
    assert outbox_sms(gatehouse, "+15555550140") == []
    # A wrong password never sends a code.
    sms_user(idp, pool_id, "careful", "+15555550141")
    with pytest.raises(ClientError) as wrong:
        sign_in(public_idp, client_id, "careful", "Wrong-password-1")
    assert error_of(wrong)[0] == "NotAuthorizedException"
    assert outbox_sms(gatehouse, "+15555550141") == []
