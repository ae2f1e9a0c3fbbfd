"""The hostile answers each sign-in challenge must refuse, where the challenge's own tests leave them out:
EMAIL_OTP (as a second factor), SELECT_MFA_TYPE and the device proof (DEVICE_SRP_AUTH, then
DEVICE_PASSWORD_VERIFIER), each answered wrongly, replayed, after it expired, out of order, and with another
user's session. Every refusal is the error botocore's model names (NotAuthorizedException for a session that
is gone, expired or another's; InvalidParameterException for a challenge name the session was not issued for;
CodeMismatchException / ExpiredCodeException for codes), and none signs anyone in or sends anything.
SMS_MFA's are in tests/e2e/test_mfa_sms_email.py; MFA_SETUP's in tests/e2e/test_mfa_setup.py.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pycognito.aws_srp import AWSSRP, long_to_hex

from tests.e2e import test_devices as devices
from tests.e2e.mfa_support import outbox_sms
from tests.e2e.test_mfa_sms_email import (
    EMAIL_CONFIG,
    SMS_CONFIG,
    answer,
    database,
    email_code,
    error_of,
    make_pool,
    make_user,
    not_the,
    sign_in,
    tokens_of,
)
from tests.support import GatehouseServer, MailServer


def _age(server: GatehouseServer, session: str, *, code: bool = False) -> None:
    """Time passes for a challenge: its session (or only its code) expires, in the server's own database."""
    session_hash = hashlib.sha256(session.encode()).hexdigest()
    with database(server) as db:
        if code:
            sql = "UPDATE auth_sessions SET state = json_set(state, '$.code_expires_at', ?) WHERE session_hash = ?"
        else:
            sql = "UPDATE auth_sessions SET expires_at = ? WHERE session_hash = ?"
        changed = db.execute(sql, (time.time() - 1, session_hash)).rowcount
    db.close()
    assert changed == 1


def _refused(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as refused:
        call()
    return error_of(refused)


# --- EMAIL_OTP as a second factor --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def email_pool(idp: Any) -> tuple[str, str]:
    pool_id, client_id = make_pool(idp, "neg-email", "OPTIONAL", EmailMfaConfiguration=EMAIL_CONFIG)
    for name in ("amy", "ben", "cal", "dan"):
        make_user(idp, pool_id, name, email=f"{name}@example.com")
        idp.admin_set_user_mfa_preference(
            UserPoolId=pool_id, Username=name, EmailMfaSettings={"Enabled": True, "PreferredMfa": True}
        )
    return pool_id, client_id


def test_email_otp_replayed(mail: MailServer, public_idp: Any, email_pool: tuple[str, str]) -> None:
    _, client_id = email_pool
    first = sign_in(public_idp, client_id, "amy")
    code = email_code(mail, "amy@example.com", 1)
    tokens_of(answer(public_idp, client_id, "EMAIL_OTP", first["Session"], "amy", EMAIL_OTP_CODE=code))
    replay = _refused(lambda: answer(public_idp, client_id, "EMAIL_OTP", first["Session"], "amy", EMAIL_OTP_CODE=code))
    assert replay[0] == "NotAuthorizedException"
    # Nor does the code answer the next sign-in, which sent its own.
    second = sign_in(public_idp, client_id, "amy")
    fresh = email_code(mail, "amy@example.com", 2)
    if fresh != code:
        old = _refused(
            lambda: answer(public_idp, client_id, "EMAIL_OTP", second["Session"], "amy", EMAIL_OTP_CODE=code)
        )
        assert old[0] == "CodeMismatchException"
    tokens_of(answer(public_idp, client_id, "EMAIL_OTP", second["Session"], "amy", EMAIL_OTP_CODE=fresh))


def test_email_otp_expired(
    gatehouse: GatehouseServer, mail: MailServer, public_idp: Any, email_pool: tuple[str, str]
) -> None:
    _, client_id = email_pool
    # The code's five minutes pass: ExpiredCodeException, and the challenge is over.
    first = sign_in(public_idp, client_id, "ben")
    code = email_code(mail, "ben@example.com", 1)
    _age(gatehouse, first["Session"], code=True)
    expired = _refused(lambda: answer(public_idp, client_id, "EMAIL_OTP", first["Session"], "ben", EMAIL_OTP_CODE=code))
    assert expired[0] == "ExpiredCodeException"
    gone = _refused(lambda: answer(public_idp, client_id, "EMAIL_OTP", first["Session"], "ben", EMAIL_OTP_CODE=code))
    assert gone[0] == "NotAuthorizedException"
    # The session's own lifetime (AuthSessionValidity) passes: the right code is refused as a spent session.
    second = sign_in(public_idp, client_id, "ben")
    fresh = email_code(mail, "ben@example.com", 2)
    _age(gatehouse, second["Session"])
    late = _refused(lambda: answer(public_idp, client_id, "EMAIL_OTP", second["Session"], "ben", EMAIL_OTP_CODE=fresh))
    assert late == ("NotAuthorizedException", "Invalid session for the user, session is expired.")


def test_email_otp_another_users_session_and_out_of_order(
    mail: MailServer, public_idp: Any, email_pool: tuple[str, str]
) -> None:
    _, client_id = email_pool
    cal = sign_in(public_idp, client_id, "cal")
    dan = sign_in(public_idp, client_id, "dan")
    cal_code = email_code(mail, "cal@example.com", 1)
    dan_code = email_code(mail, "dan@example.com", 1)
    # Dan answering Cal's challenge under his own name, with his own code: refused, and Cal's challenge ends.
    swapped = _refused(
        lambda: answer(public_idp, client_id, "EMAIL_OTP", cal["Session"], "dan", EMAIL_OTP_CODE=dan_code)
    )
    assert swapped[0] == "NotAuthorizedException"
    ended = _refused(lambda: answer(public_idp, client_id, "EMAIL_OTP", cal["Session"], "cal", EMAIL_OTP_CODE=cal_code))
    assert ended[0] == "NotAuthorizedException"
    # Cal's code on Dan's challenge (under Dan's name) is just a wrong code.
    if cal_code != dan_code:
        crossed = _refused(
            lambda: answer(public_idp, client_id, "EMAIL_OTP", dan["Session"], "dan", EMAIL_OTP_CODE=cal_code)
        )
        assert crossed[0] == "CodeMismatchException"
    # Out of order: the session was issued for EMAIL_OTP, not SMS_MFA or SOFTWARE_TOKEN_MFA; answering it as
    # another challenge is refused, checks nothing, and leaves the session to the answer it is for.
    wrong_name = _refused(
        lambda: answer(public_idp, client_id, "SMS_MFA", dan["Session"], "dan", SMS_MFA_CODE=dan_code)
    )
    assert wrong_name[0] == "InvalidParameterException"
    done = answer(public_idp, client_id, "EMAIL_OTP", dan["Session"], "dan", EMAIL_OTP_CODE=dan_code)
    assert done["AuthenticationResult"]["AccessToken"]
    # Once answered, the session is gone.
    after = _refused(lambda: answer(public_idp, client_id, "EMAIL_OTP", dan["Session"], "dan", EMAIL_OTP_CODE=dan_code))
    assert after[0] == "NotAuthorizedException"
    # A made-up session.
    made_up = _refused(lambda: answer(public_idp, client_id, "EMAIL_OTP", "A" * 200, "dan", EMAIL_OTP_CODE=dan_code))
    assert made_up[0] == "NotAuthorizedException"


# --- SELECT_MFA_TYPE ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def choice_pool(idp: Any, public_idp: Any) -> tuple[str, str]:
    """Users with SMS and email MFA both on and neither preferred: each sign-in asks SELECT_MFA_TYPE."""
    pool_id, client_id = make_pool(
        idp, "neg-select", "OPTIONAL", SmsMfaConfiguration=SMS_CONFIG, EmailMfaConfiguration=EMAIL_CONFIG
    )
    for index, name in enumerate(("eve", "fay", "gus")):
        make_user(idp, pool_id, name, email=f"{name}@example.com", phone_number=f"+1555555031{index}")
        idp.admin_set_user_mfa_preference(
            UserPoolId=pool_id, Username=name, EmailMfaSettings={"Enabled": True}, SMSMfaSettings={"Enabled": True}
        )
    return pool_id, client_id


def test_select_mfa_type_replayed_and_expired(
    gatehouse: GatehouseServer, mail: MailServer, public_idp: Any, choice_pool: tuple[str, str]
) -> None:
    _, client_id = choice_pool
    first = sign_in(public_idp, client_id, "eve")
    assert first["ChallengeName"] == "SELECT_MFA_TYPE"
    chosen = answer(public_idp, client_id, "SELECT_MFA_TYPE", first["Session"], "eve", ANSWER="EMAIL_OTP")
    assert chosen["ChallengeName"] == "EMAIL_OTP"
    # The choice is made: choosing again with the same session (another factor, or the same) is refused,
    # and sends nothing more.
    for factor in ("SMS_MFA", "EMAIL_OTP"):
        again = _refused(
            lambda f=factor: answer(public_idp, client_id, "SELECT_MFA_TYPE", first["Session"], "eve", ANSWER=f)
        )
        assert again[0] == "NotAuthorizedException"
    assert outbox_sms(gatehouse, "+15555550310") == [] and len(mail.messages_to("eve@example.com")) == 1
    tokens_of(
        answer(
            public_idp,
            client_id,
            "EMAIL_OTP",
            chosen["Session"],
            "eve",
            EMAIL_OTP_CODE=email_code(mail, "eve@example.com", 1),
        )
    )
    # An expired choice: refused, nothing sent.
    second = sign_in(public_idp, client_id, "eve")
    _age(gatehouse, second["Session"])
    late = _refused(
        lambda: answer(public_idp, client_id, "SELECT_MFA_TYPE", second["Session"], "eve", ANSWER="SMS_MFA")
    )
    assert late == ("NotAuthorizedException", "Invalid session for the user, session is expired.")
    assert outbox_sms(gatehouse, "+15555550310") == []


def test_select_mfa_type_another_user_out_of_order_and_wrong(
    gatehouse: GatehouseServer, mail: MailServer, public_idp: Any, choice_pool: tuple[str, str]
) -> None:
    _, client_id = choice_pool
    fay = sign_in(public_idp, client_id, "fay")
    # Gus choosing on Fay's session: refused, nothing sent to either, and her choice is over.
    swapped = _refused(
        lambda: answer(public_idp, client_id, "SELECT_MFA_TYPE", fay["Session"], "gus", ANSWER="SMS_MFA")
    )
    assert swapped[0] == "NotAuthorizedException"
    assert outbox_sms(gatehouse, "+15555550311") == [] and outbox_sms(gatehouse, "+15555550312") == []
    assert mail.messages_to("gus@example.com") == [] and mail.messages_to("fay@example.com") == []
    ended = _refused(lambda: answer(public_idp, client_id, "SELECT_MFA_TYPE", fay["Session"], "fay", ANSWER="SMS_MFA"))
    assert ended[0] == "NotAuthorizedException"

    # Out of order: answering the choice with a code, as if it were already SMS_MFA.
    gus = sign_in(public_idp, client_id, "gus")
    early = _refused(lambda: answer(public_idp, client_id, "SMS_MFA", gus["Session"], "gus", SMS_MFA_CODE="123456"))
    assert early[0] == "InvalidParameterException"
    assert outbox_sms(gatehouse, "+15555550312") == []

    # Wrong: a factor not offered (TOTP is off in this pool), an empty answer, a made-up one. The session
    # stays usable for the real choice.
    gus = sign_in(public_idp, client_id, "gus")
    for bad in ("SOFTWARE_TOKEN_MFA", "sms_mfa", "SMS_MFA,EMAIL_OTP"):
        wrong = _refused(
            lambda b=bad: answer(public_idp, client_id, "SELECT_MFA_TYPE", gus["Session"], "gus", ANSWER=b)
        )
        assert wrong[0] == "InvalidParameterException", bad
    empty = _refused(lambda: answer(public_idp, client_id, "SELECT_MFA_TYPE", gus["Session"], "gus"))
    assert empty[0] == "InvalidParameterException"
    chosen = answer(public_idp, client_id, "SELECT_MFA_TYPE", gus["Session"], "gus", ANSWER="EMAIL_OTP")
    code = email_code(mail, "gus@example.com", 1)
    wrong_code = _refused(
        lambda: answer(public_idp, client_id, "EMAIL_OTP", chosen["Session"], "gus", EMAIL_OTP_CODE=not_the(code))
    )
    assert wrong_code[0] == "CodeMismatchException"
    tokens_of(answer(public_idp, client_id, "EMAIL_OTP", chosen["Session"], "gus", EMAIL_OTP_CODE=code))


# --- the device proof: DEVICE_SRP_AUTH, then DEVICE_PASSWORD_VERIFIER ----------------------------------------------


@pytest.fixture(scope="module")
def device_pool(gatehouse: GatehouseServer, idp: Any, public_idp: Any) -> dict[str, Any]:
    """Two users, each with a remembered device that skips MFA."""
    pool_id, client_id = devices.make_pool(idp, "neg-devices", devices.OPT_IN)
    known: dict[str, Any] = {"pool_id": pool_id, "client_id": client_id}
    for name, phone in (("hal", "+15555550320"), ("ida", "+15555550321")):
        devices.make_user(idp, pool_id, name, phone)
        step = devices.password_sign_in(public_idp, client_id, name)
        signed_in = devices.answer_sms(gatehouse, public_idp, client_id, step, name, phone)
        device, _ = devices.confirm(public_idp, signed_in)
        public_idp.update_device_status(
            AccessToken=signed_in["AuthenticationResult"]["AccessToken"],
            DeviceKey=device.key,
            DeviceRememberedStatus="remembered",
        )
        known[name] = device
    return known


def _srp(pool: dict[str, Any], public_idp: Any, name: str) -> AWSSRP:
    return devices.device_srp(public_idp, pool["pool_id"], pool["client_id"], name, pool[name])


def _device_step(public_idp: Any, pool: dict[str, Any], name: str) -> dict[str, Any]:
    step = devices.password_sign_in(public_idp, pool["client_id"], name, pool[name].key)
    assert step["ChallengeName"] == "DEVICE_SRP_AUTH", step
    return step


def _srp_auth(public_idp: Any, pool: dict[str, Any], session: str, name: str, srp: AWSSRP) -> dict[str, Any]:
    return dict(devices.send_srp_a(public_idp, pool["client_id"], session, name, pool[name], srp))


def _verify(public_idp: Any, pool: dict[str, Any], session: str, proof: dict[str, str]) -> dict[str, Any]:
    return dict(
        public_idp.respond_to_auth_challenge(
            ClientId=pool["client_id"],
            ChallengeName="DEVICE_PASSWORD_VERIFIER",
            Session=session,
            ChallengeResponses=proof,
        )
    )


def test_device_challenges_replayed_and_expired(
    gatehouse: GatehouseServer, public_idp: Any, device_pool: dict[str, Any]
) -> None:
    pool = device_pool
    # DEVICE_SRP_AUTH answered twice: the second is refused.
    step = _device_step(public_idp, pool, "hal")
    srp = _srp(pool, public_idp, "hal")
    verifier = _srp_auth(public_idp, pool, step["Session"], "hal", srp)
    assert verifier["ChallengeName"] == "DEVICE_PASSWORD_VERIFIER"
    again = _refused(lambda: _srp_auth(public_idp, pool, step["Session"], "hal", _srp(pool, public_idp, "hal")))
    assert again[0] == "NotAuthorizedException"
    tokens_of(
        _verify(public_idp, pool, verifier["Session"], srp.process_device_challenge(verifier["ChallengeParameters"]))
    )

    # DEVICE_SRP_AUTH after its session expired.
    step = _device_step(public_idp, pool, "hal")
    _age(gatehouse, step["Session"])
    late = _refused(lambda: _srp_auth(public_idp, pool, step["Session"], "hal", _srp(pool, public_idp, "hal")))
    assert late == ("NotAuthorizedException", "Invalid session for the user, session is expired.")

    # DEVICE_PASSWORD_VERIFIER after its session expired: the right proof is refused.
    step = _device_step(public_idp, pool, "hal")
    srp = _srp(pool, public_idp, "hal")
    verifier = _srp_auth(public_idp, pool, step["Session"], "hal", srp)
    proof = srp.process_device_challenge(verifier["ChallengeParameters"])
    _age(gatehouse, verifier["Session"])
    expired = _refused(lambda: _verify(public_idp, pool, verifier["Session"], proof))
    assert expired[0] == "NotAuthorizedException"

    # A proof signed with a TIMESTAMP far from now is refused like a wrong one, and ends the challenge.
    step = _device_step(public_idp, pool, "hal")
    srp = _srp(pool, public_idp, "hal")
    verifier = _srp_auth(public_idp, pool, step["Session"], "hal", srp)
    proof = srp.process_device_challenge(verifier["ChallengeParameters"])
    stale = {**proof, "TIMESTAMP": "Mon Jan 1 00:00:00 UTC 2024"}
    assert _refused(lambda: _verify(public_idp, pool, verifier["Session"], stale))[0] == "NotAuthorizedException"


def test_device_challenges_out_of_order(public_idp: Any, device_pool: dict[str, Any]) -> None:
    pool = device_pool
    # The proof sent on the DEVICE_SRP_AUTH session, before any SRP_B was given out.
    step = _device_step(public_idp, pool, "hal")
    early = _refused(
        lambda: _verify(
            public_idp,
            pool,
            step["Session"],
            {
                "USERNAME": "hal",
                "DEVICE_KEY": pool["hal"].key,
                "PASSWORD_CLAIM_SECRET_BLOCK": "AAAA",
                "PASSWORD_CLAIM_SIGNATURE": "AAAA",
                "TIMESTAMP": "Mon Jan 1 00:00:00 UTC 2024",
            },
        )
    )
    assert early[0] == "InvalidParameterException"
    # SRP_A sent again on the DEVICE_PASSWORD_VERIFIER session.
    step = _device_step(public_idp, pool, "hal")
    verifier = _srp_auth(public_idp, pool, step["Session"], "hal", _srp(pool, public_idp, "hal"))
    backwards = _refused(lambda: _srp_auth(public_idp, pool, verifier["Session"], "hal", _srp(pool, public_idp, "hal")))
    assert backwards[0] == "InvalidParameterException"
    # A device challenge answered on a password-step session that never asked for one (an MFA challenge).
    mfa = devices.password_sign_in(public_idp, pool["client_id"], "hal")
    assert mfa["ChallengeName"] == "SMS_MFA"
    skipped = _refused(lambda: _srp_auth(public_idp, pool, mfa["Session"], "hal", _srp(pool, public_idp, "hal")))
    assert skipped[0] == "InvalidParameterException"


def test_device_challenges_with_another_users_session(public_idp: Any, device_pool: dict[str, Any]) -> None:
    pool = device_pool
    # Ida answering Hal's DEVICE_SRP_AUTH with her own name and device.
    hal = _device_step(public_idp, pool, "hal")
    swapped = _refused(lambda: _srp_auth(public_idp, pool, hal["Session"], "ida", _srp(pool, public_idp, "ida")))
    assert swapped[0] == "NotAuthorizedException"
    # Hal's name with Ida's device key on Hal's session.
    hal = _device_step(public_idp, pool, "hal")
    ida_srp = _srp(pool, public_idp, "ida")
    other_key = _refused(
        lambda: public_idp.respond_to_auth_challenge(
            ClientId=pool["client_id"],
            ChallengeName="DEVICE_SRP_AUTH",
            Session=hal["Session"],
            ChallengeResponses={
                "USERNAME": "hal",
                "DEVICE_KEY": pool["ida"].key,
                "SRP_A": long_to_hex(ida_srp.large_a_value),
            },
        )
    )
    assert other_key[0] == "NotAuthorizedException"
    # Ida's proof (made for her own DEVICE_PASSWORD_VERIFIER) sent on Hal's: refused.
    hal = _device_step(public_idp, pool, "hal")
    hal_verifier = _srp_auth(public_idp, pool, hal["Session"], "hal", _srp(pool, public_idp, "hal"))
    ida = _device_step(public_idp, pool, "ida")
    ida_srp = _srp(pool, public_idp, "ida")
    ida_verifier = _srp_auth(public_idp, pool, ida["Session"], "ida", ida_srp)
    ida_proof = ida_srp.process_device_challenge(ida_verifier["ChallengeParameters"])
    crossed = _refused(lambda: _verify(public_idp, pool, hal_verifier["Session"], ida_proof))
    assert crossed[0] == "NotAuthorizedException"
    # Ida's own sign-in is untouched by all that.
    tokens_of(_verify(public_idp, pool, ida_verifier["Session"], ida_proof))


def test_totp_code_is_no_answer_to_other_challenges(mail: MailServer, idp: Any, public_idp: Any) -> None:
    """A SOFTWARE_TOKEN_MFA answer sent on an EMAIL_OTP session (out of order) does not sign in."""
    pool_id, client_id = make_pool(
        idp,
        "neg-mixed",
        "OPTIONAL",
        EmailMfaConfiguration=EMAIL_CONFIG,
        SoftwareTokenMfaConfiguration={"Enabled": True},
    )
    make_user(idp, pool_id, "jon", email="jon@example.com")
    idp.admin_set_user_mfa_preference(
        UserPoolId=pool_id, Username="jon", EmailMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    step = sign_in(public_idp, client_id, "jon")
    assert step["ChallengeName"] == "EMAIL_OTP"
    code = email_code(mail, "jon@example.com", 1)
    as_totp = _refused(
        lambda: answer(
            public_idp, client_id, "SOFTWARE_TOKEN_MFA", step["Session"], "jon", SOFTWARE_TOKEN_MFA_CODE=code
        )
    )
    assert as_totp[0] == "InvalidParameterException"
