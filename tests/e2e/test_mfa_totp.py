"""TOTP software-token MFA through boto3 against a real server: pool MFA configuration, enrolment with
AssociateSoftwareToken / VerifySoftwareToken / SetUserMFAPreference, the SOFTWARE_TOKEN_MFA challenge after
every password flow, the MFA_SETUP path of a pool that requires MFA, and one-time use of each code.

Codes are computed with pyotp from the SecretCode the server returned, at chosen 30-second steps: the server
accepts one step either side of its own, so a test that starts early enough in a step can use the previous,
the current and the next step's codes without waiting for the clock.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pyotp
import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP
from pycognito.exceptions import SoftwareTokenMFAChallengeException

PASSWORD = "Mfa-password-1"
FLOWS = [
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
]
TOTP_ON = {"Enabled": True}


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


def code_at(secret: str, step: int) -> str:
    return str(pyotp.TOTP(secret).generate_otp(step))


def wrong_code(secret: str, step: int) -> str:
    """Six digits that are no code of the steps around ``step``."""
    valid = {code_at(secret, s) for s in range(step - 2, step + 3)}
    return next(c for c in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if c not in valid)


def settled_step() -> int:
    """The current step, after waiting out the end of one: the previous step's code then stays valid for at
    least ten seconds, the current one's for forty, the next one's for seventy."""
    into = time.time() % 30
    if into > 20:
        time.sleep(30 - into + 0.2)
    return int(time.time() // 30)


def make_pool(idp: Any, name: str, mode: str | None) -> tuple[str, str]:
    pool_id = str(idp.create_user_pool(PoolName=name)["UserPool"]["Id"])
    if mode is not None:
        idp.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration=mode, SoftwareTokenMfaConfiguration=TOTP_ON)
    client = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)
    return pool_id, str(client["UserPoolClient"]["ClientId"])


def make_user(idp: Any, pool_id: str, username: str) -> None:
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)


def password_sign_in(public_idp: Any, client_id: str, username: str) -> dict[str, Any]:
    return dict(
        public_idp.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD},
        )
    )


def answer_totp(public_idp: Any, client_id: str, session: str, username: str, code: str) -> dict[str, Any]:
    return dict(
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="SOFTWARE_TOKEN_MFA",
            Session=session,
            ChallengeResponses={"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": code},
        )
    )


def enrol(public_idp: Any, access_token: str, step: int) -> str:
    """Associate and verify a software token (with the code of ``step - 1``) and turn TOTP on, preferred."""
    secret = str(public_idp.associate_software_token(AccessToken=access_token)["SecretCode"])
    verified = public_idp.verify_software_token(
        AccessToken=access_token, UserCode=code_at(secret, step - 1), FriendlyDeviceName="phone"
    )
    assert verified["Status"] == "SUCCESS" and "Session" not in verified
    public_idp.set_user_mfa_preference(
        AccessToken=access_token, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    return secret


def tokens_of(answer: dict[str, Any]) -> dict[str, Any]:
    assert "ChallengeName" not in answer, answer
    result = dict(answer["AuthenticationResult"])
    assert result["TokenType"] == "Bearer" and result["AccessToken"] and result["IdToken"]
    return result


# --- the pool's MFA configuration ----------------------------------------------------------------------------


def test_pool_mfa_config_round_trip(idp: Any) -> None:
    pool_id = str(idp.create_user_pool(PoolName="mfa-config")["UserPool"]["Id"])
    fresh = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    assert fresh["MfaConfiguration"] == "OFF"
    assert fresh["SoftwareTokenMfaConfiguration"] == {"Enabled": False}

    # Required MFA needs a factor to satisfy it.
    with pytest.raises(ClientError) as refused:
        idp.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration="ON")
    assert error_of(refused)[0] == "InvalidParameterException"
    assert idp.get_user_pool_mfa_config(UserPoolId=pool_id)["MfaConfiguration"] == "OFF"

    set_answer = idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration=TOTP_ON
    )
    assert set_answer["MfaConfiguration"] == "OPTIONAL"
    assert set_answer["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    got = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    assert (got["MfaConfiguration"], got["SoftwareTokenMfaConfiguration"]) == ("OPTIONAL", {"Enabled": True})
    described = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["MfaConfiguration"] == "OPTIONAL"
    assert "SoftwareTokenMfaConfiguration" not in described

    # With TOTP on, ON is accepted; a member left out keeps its value.
    assert idp.set_user_pool_mfa_config(UserPoolId=pool_id, MfaConfiguration="ON")["SoftwareTokenMfaConfiguration"] == {
        "Enabled": True
    }
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["MfaConfiguration"] == "ON"
    # Turning the only factor off while MFA is required is refused too.
    with pytest.raises(ClientError) as no_factor:
        idp.set_user_pool_mfa_config(UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": False})
    assert error_of(no_factor)[0] == "InvalidParameterException"

    # UpdateUserPool keeps the factor configuration it does not name.
    idp.update_user_pool(UserPoolId=pool_id, MfaConfiguration="OPTIONAL")
    after_update = idp.get_user_pool_mfa_config(UserPoolId=pool_id)
    assert (after_update["MfaConfiguration"], after_update["SoftwareTokenMfaConfiguration"]) == (
        "OPTIONAL",
        {"Enabled": True},
    )


# --- OPTIONAL: enrol, then every sign-in needs a code -----------------------------------------------------------


@pytest.fixture(scope="module")
def optional_pool(idp: Any) -> tuple[str, str]:
    return make_pool(idp, "mfa-optional", "OPTIONAL")


def test_preference_needs_a_verified_token(idp: Any, public_idp: Any, optional_pool: tuple[str, str]) -> None:
    pool_id, client_id = optional_pool
    make_user(idp, pool_id, "unverified")
    access = tokens_of(password_sign_in(public_idp, client_id, "unverified"))["AccessToken"]
    with pytest.raises(ClientError) as before_associate:
        public_idp.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True})
    assert error_of(before_associate) == ("InvalidParameterException", "User has not verified software token mfa")

    secret = public_idp.associate_software_token(AccessToken=access)["SecretCode"]
    with pytest.raises(ClientError) as associated_only:
        public_idp.set_user_mfa_preference(
            AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
        )
    assert error_of(associated_only)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as admin:
        idp.admin_set_user_mfa_preference(
            UserPoolId=pool_id, Username="unverified", SoftwareTokenMfaSettings={"Enabled": True}
        )
    assert error_of(admin)[0] == "InvalidParameterException"

    # A wrong code does not verify the token.
    step = settled_step()
    with pytest.raises(ClientError) as mismatch:
        public_idp.verify_software_token(AccessToken=access, UserCode=wrong_code(secret, step))
    assert error_of(mismatch)[0] == "EnableSoftwareTokenMFAException"
    with pytest.raises(ClientError):
        public_idp.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True})
    user = idp.admin_get_user(UserPoolId=pool_id, Username="unverified")
    assert "UserMFASettingList" not in user and "PreferredMfaSetting" not in user
    # Not enabled: the user still signs in with the password alone.
    tokens_of(password_sign_in(public_idp, client_id, "unverified"))


def test_optional_pool_enrol_and_sign_in_with_a_code(idp: Any, public_idp: Any, optional_pool: tuple[str, str]) -> None:
    pool_id, client_id = optional_pool
    make_user(idp, pool_id, "olga")
    access = tokens_of(password_sign_in(public_idp, client_id, "olga"))["AccessToken"]
    step = settled_step()
    secret = public_idp.associate_software_token(AccessToken=access)["SecretCode"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    verified = public_idp.verify_software_token(AccessToken=access, UserCode=code_at(secret, step - 1))
    assert verified["Status"] == "SUCCESS"
    # Verified but not yet turned on: nothing reported, no challenge.
    assert "UserMFASettingList" not in public_idp.get_user(AccessToken=access)
    public_idp.set_user_mfa_preference(
        AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    me = public_idp.get_user(AccessToken=access)
    assert me["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]
    assert me["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"
    admin_view = idp.admin_get_user(UserPoolId=pool_id, Username="olga")
    assert admin_view["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]
    assert admin_view["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"

    # The password alone is no longer enough.
    challenge = password_sign_in(public_idp, client_id, "olga")
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    assert challenge["ChallengeParameters"] == {}
    assert "AuthenticationResult" not in challenge and challenge["Session"]
    # A wrong code: CodeMismatchException, and the same session takes the right code afterwards.
    with pytest.raises(ClientError) as mismatch:
        answer_totp(public_idp, client_id, challenge["Session"], "olga", wrong_code(secret, step))
    assert error_of(mismatch)[0] == "CodeMismatchException"
    tokens = tokens_of(answer_totp(public_idp, client_id, challenge["Session"], "olga", code_at(secret, step)))
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["Username"] == "olga"
    # That session is spent.
    with pytest.raises(ClientError) as spent:
        answer_totp(public_idp, client_id, challenge["Session"], "olga", code_at(secret, step + 1))
    assert error_of(spent)[0] == "NotAuthorizedException"

    # The same code (same 30 s step) is refused on a new sign-in; the next step's code is accepted.
    again = password_sign_in(public_idp, client_id, "olga")
    with pytest.raises(ClientError) as replay:
        answer_totp(public_idp, client_id, again["Session"], "olga", code_at(secret, step))
    assert error_of(replay) == ("ExpiredCodeException", "Your software token has already been used once.")
    # So is an earlier step's code, still inside the clock window.
    with pytest.raises(ClientError) as older:
        answer_totp(public_idp, client_id, again["Session"], "olga", code_at(secret, step - 1))
    assert error_of(older)[0] == "ExpiredCodeException"
    tokens_of(answer_totp(public_idp, client_id, again["Session"], "olga", code_at(secret, step + 1)))

    # Turning TOTP off: the password is enough again, and GetUser says so.
    public_idp.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": False})
    me = public_idp.get_user(AccessToken=access)
    assert "UserMFASettingList" not in me and "PreferredMfaSetting" not in me
    tokens_of(password_sign_in(public_idp, client_id, "olga"))


def test_admin_and_srp_flows_are_challenged_too(idp: Any, public_idp: Any, optional_pool: tuple[str, str]) -> None:
    pool_id, client_id = optional_pool
    make_user(idp, pool_id, "sergei")
    access = tokens_of(password_sign_in(public_idp, client_id, "sergei"))["AccessToken"]
    step = settled_step()
    secret = enrol(public_idp, access, step)

    admin = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "sergei", "PASSWORD": PASSWORD},
    )
    assert admin["ChallengeName"] == "SOFTWARE_TOKEN_MFA" and admin["ChallengeParameters"] == {}
    answered = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="SOFTWARE_TOKEN_MFA",
        Session=admin["Session"],
        ChallengeResponses={"USERNAME": "sergei", "SOFTWARE_TOKEN_MFA_CODE": code_at(secret, step)},
    )
    tokens_of(answered)

    aws = AWSSRP(username="sergei", password=PASSWORD, pool_id=pool_id, client_id=client_id, client=public_idp)
    with pytest.raises(SoftwareTokenMFAChallengeException) as srp:
        aws.authenticate_user()
    challenge = srp.value.get_tokens()
    assert challenge["ChallengeName"] == "SOFTWARE_TOKEN_MFA" and challenge["ChallengeParameters"] == {}
    tokens = tokens_of(answer_totp(public_idp, client_id, challenge["Session"], "sergei", code_at(secret, step + 1)))
    assert public_idp.get_user(AccessToken=tokens["AccessToken"])["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"


def test_one_code_submitted_twice_at_once_signs_in_once(
    idp: Any, public_idp: Any, optional_pool: tuple[str, str]
) -> None:
    pool_id, client_id = optional_pool
    make_user(idp, pool_id, "racer")
    access = tokens_of(password_sign_in(public_idp, client_id, "racer"))["AccessToken"]
    step = settled_step()
    secret = enrol(public_idp, access, step)
    sessions = [password_sign_in(public_idp, client_id, "racer")["Session"] for _ in range(2)]
    code = code_at(secret, step)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(sessions))

    def submit(session: str) -> None:
        barrier.wait()
        try:
            tokens_of(answer_totp(public_idp, client_id, session, "racer", code))
            outcomes.append("tokens")
        except ClientError as exc:
            outcomes.append(str(exc.response["Error"]["Code"]))

    threads = [threading.Thread(target=submit, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ExpiredCodeException", "tokens"], outcomes


# --- ON: users without a factor set one up while signing in -----------------------------------------------------


def test_required_mfa_setup_during_sign_in(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "mfa-on", "ON")
    assert idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]["MfaConfiguration"] == "ON"
    make_user(idp, pool_id, "nina")
    step = settled_step()
    first = password_sign_in(public_idp, client_id, "nina")
    assert first["ChallengeName"] == "MFA_SETUP"
    assert first["ChallengeParameters"] == {"MFAS_CAN_SETUP": '["SOFTWARE_TOKEN_MFA"]', "USER_ID_FOR_SRP": "nina"}
    # Nothing set up yet: the challenge cannot be passed, and the session stays usable.
    with pytest.raises(ClientError) as not_yet:
        public_idp.respond_to_auth_challenge(
            ClientId=client_id,
            ChallengeName="MFA_SETUP",
            Session=first["Session"],
            ChallengeResponses={"USERNAME": "nina"},
        )
    assert error_of(not_yet)[0] == "InvalidParameterException"

    associated = public_idp.associate_software_token(Session=first["Session"])
    secret = associated["SecretCode"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret) and associated["Session"] != first["Session"]
    # The challenge's session was exchanged for the new one.
    with pytest.raises(ClientError) as old_session:
        public_idp.associate_software_token(Session=first["Session"])
    assert error_of(old_session)[0] == "NotAuthorizedException"

    with pytest.raises(ClientError) as mismatch:
        public_idp.verify_software_token(Session=associated["Session"], UserCode=wrong_code(secret, step))
    assert error_of(mismatch)[0] == "EnableSoftwareTokenMFAException"
    verified = public_idp.verify_software_token(
        Session=associated["Session"], UserCode=code_at(secret, step), FriendlyDeviceName="phone"
    )
    assert verified["Status"] == "SUCCESS" and verified["Session"]

    done = public_idp.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="MFA_SETUP",
        Session=verified["Session"],
        ChallengeResponses={"USERNAME": "nina"},
    )
    access = tokens_of(done)["AccessToken"]
    me = public_idp.get_user(AccessToken=access)
    assert me["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"] and me["PreferredMfaSetting"] == "SOFTWARE_TOKEN_MFA"

    # From now on the user is asked for a code; the one used to verify is spent.
    later = password_sign_in(public_idp, client_id, "nina")
    assert later["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    with pytest.raises(ClientError) as replay:
        answer_totp(public_idp, client_id, later["Session"], "nina", code_at(secret, step))
    assert error_of(replay)[0] == "ExpiredCodeException"
    tokens_of(answer_totp(public_idp, client_id, later["Session"], "nina", code_at(secret, step + 1)))

    # MFA is required: TOTP cannot be turned off.
    with pytest.raises(ClientError) as off:
        public_idp.set_user_mfa_preference(AccessToken=access, SoftwareTokenMfaSettings={"Enabled": False})
    assert error_of(off)[0] == "InvalidParameterException"


# --- OFF: never a challenge -----------------------------------------------------------------------------------


def test_off_pool_never_challenges(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "mfa-off", "OFF")
    make_user(idp, pool_id, "otto")
    access = tokens_of(password_sign_in(public_idp, client_id, "otto"))["AccessToken"]
    enrol(public_idp, access, settled_step())
    assert public_idp.get_user(AccessToken=access)["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"]
    # An administrator may change the preference of a user with a verified token.
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username="otto", SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": False}
    )
    otto = idp.admin_get_user(UserPoolId=pool_id, Username="otto")
    assert otto["UserMFASettingList"] == ["SOFTWARE_TOKEN_MFA"] and "PreferredMfaSetting" not in otto
    tokens_of(password_sign_in(public_idp, client_id, "otto"))
    admin = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "otto", "PASSWORD": PASSWORD},
    )
    tokens_of(admin)


def test_software_tokens_need_the_pool_to_offer_them(idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "mfa-none", None)
    make_user(idp, pool_id, "paul")
    access = tokens_of(password_sign_in(public_idp, client_id, "paul"))["AccessToken"]
    with pytest.raises(ClientError) as refused:
        public_idp.associate_software_token(AccessToken=access)
    assert error_of(refused)[0] == "SoftwareTokenMFANotFoundException"
    with pytest.raises(ClientError) as neither:
        public_idp.associate_software_token()
    assert error_of(neither)[0] == "InvalidParameterException"


def test_required_mfa_without_a_factor_is_a_pool_configuration_error(idp: Any, public_idp: Any) -> None:
    # CreateUserPool takes MfaConfiguration ON without a factor; signing in then cannot satisfy it.
    pool_id = str(idp.create_user_pool(PoolName="mfa-on-nothing", MfaConfiguration="ON")["UserPool"]["Id"])
    client_id = idp.create_user_pool_client(UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS)[
        "UserPoolClient"
    ]["ClientId"]
    make_user(idp, pool_id, "rita")
    with pytest.raises(ClientError) as refused:
        password_sign_in(public_idp, client_id, "rita")
    assert error_of(refused)[0] == "InvalidUserPoolConfigurationException"
