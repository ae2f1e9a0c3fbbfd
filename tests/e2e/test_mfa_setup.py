"""MFA_SETUP beyond an authenticator app, through boto3 against a real server: MFAS_CAN_SETUP lists every factor
the pool enables; a user without an address sets email MFA up by answering with EMAIL, gets a code by real
SMTP (aiosmtpd), answers the EMAIL_OTP challenge that follows, and is asked for EMAIL_OTP from then on. SMS
set-up follows Cognito's documented path (add a phone number, sign in again). Hostile answers: wrong, replayed
and expired codes, another user's session, a method the pool does not enable, malformed and taken addresses,
and nothing is stored for the user until the code is right.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pyotp
import pytest
from botocore.exceptions import ClientError

from tests.e2e.mfa_support import outbox_sms, sms_code
from tests.e2e.test_mfa_sms_email import (
    EMAIL_CONFIG,
    SMS_CONFIG,
    answer,
    database,
    email_code,
    error_of,
    make_pool,
    make_user,
    mfa_view,
    not_the,
    sign_in,
    tokens_of,
)
from tests.support import GatehouseServer, MailServer, user_attributes

TOTP = {"Enabled": True}
NOT_OFFERED = "is not enabled for this user pool."


def setup_email(public_idp: Any, client_id: str, session: str, username: str, address: str) -> dict[str, Any]:
    return answer(public_idp, client_id, "MFA_SETUP", session, username, EMAIL=address)


@pytest.fixture(scope="module")
def email_pool(idp: Any) -> tuple[str, str]:
    """MFA required; an authenticator app or email."""
    return make_pool(idp, "setup-email", "ON", EmailMfaConfiguration=EMAIL_CONFIG, SoftwareTokenMfaConfiguration=TOTP)


def test_email_mfa_is_set_up_while_signing_in(mail: MailServer, idp: Any, public_idp: Any, email_pool: Any) -> None:
    pool_id, client_id = email_pool
    make_user(idp, pool_id, "uma")
    first = sign_in(public_idp, client_id, "uma")
    assert first["ChallengeName"] == "MFA_SETUP"
    assert first["ChallengeParameters"] == {
        "MFAS_CAN_SETUP": '["SOFTWARE_TOKEN_MFA","EMAIL_OTP"]',
        "USER_ID_FOR_SRP": "uma",
    }
    address = "uma@example.com"
    sent = setup_email(public_idp, client_id, first["Session"], "uma", address)
    assert sent["ChallengeName"] == "EMAIL_OTP" and sent["Session"] != first["Session"]
    assert sent["ChallengeParameters"] == {
        "CODE_DELIVERY_DELIVERY_MEDIUM": "EMAIL",
        "CODE_DELIVERY_DESTINATION": "u***@e***",
    }
    code = email_code(mail, address, 1)
    # Nothing is stored for the user before the code comes back.
    assert "email" not in user_attributes(idp, pool_id, "uma")
    assert mfa_view(idp, pool_id, "uma") == (None, None)
    # The MFA_SETUP session was exchanged for the EMAIL_OTP one.
    with pytest.raises(ClientError) as old:
        setup_email(public_idp, client_id, first["Session"], "uma", address)
    assert error_of(old)[0] == "NotAuthorizedException"

    # A wrong code: refused, nothing stored, and the session takes the right one.
    with pytest.raises(ClientError) as wrong:
        answer(public_idp, client_id, "EMAIL_OTP", sent["Session"], "uma", EMAIL_OTP_CODE=not_the(code))
    assert error_of(wrong)[0] == "CodeMismatchException"
    assert "email" not in user_attributes(idp, pool_id, "uma")
    tokens = tokens_of(answer(public_idp, client_id, "EMAIL_OTP", sent["Session"], "uma", EMAIL_OTP_CODE=code))
    me = public_idp.get_user(AccessToken=tokens["AccessToken"])
    assert me["UserMFASettingList"] == ["EMAIL_OTP"] and me["PreferredMfaSetting"] == "EMAIL_OTP"
    stored = user_attributes(idp, pool_id, "uma")
    assert stored["email"] == address and stored["email_verified"] == "true"

    # Replayed: the session is spent.
    with pytest.raises(ClientError) as replay:
        answer(public_idp, client_id, "EMAIL_OTP", sent["Session"], "uma", EMAIL_OTP_CODE=code)
    assert error_of(replay)[0] == "NotAuthorizedException"

    # From now on the sign-in asks for EMAIL_OTP, with a new code; the set-up code does not answer it.
    later = sign_in(public_idp, client_id, "uma")
    assert later["ChallengeName"] == "EMAIL_OTP"
    second = email_code(mail, address, 2)
    if second != code:
        with pytest.raises(ClientError) as old_code:
            answer(public_idp, client_id, "EMAIL_OTP", later["Session"], "uma", EMAIL_OTP_CODE=code)
        assert error_of(old_code)[0] == "CodeMismatchException"
    tokens_of(answer(public_idp, client_id, "EMAIL_OTP", later["Session"], "uma", EMAIL_OTP_CODE=second))
    # MFA is required: email MFA cannot be turned off now.
    with pytest.raises(ClientError) as off:
        public_idp.set_user_mfa_preference(AccessToken=tokens["AccessToken"], EmailMfaSettings={"Enabled": False})
    assert error_of(off)[0] == "InvalidParameterException"


def test_an_expired_setup_code_ends_the_setup(
    mail: MailServer, gatehouse: GatehouseServer, idp: Any, public_idp: Any, email_pool: Any
) -> None:
    pool_id, client_id = email_pool
    make_user(idp, pool_id, "ezra")
    first = sign_in(public_idp, client_id, "ezra")
    address = "ezra@example.com"
    sent = setup_email(public_idp, client_id, first["Session"], "ezra", address)
    code = email_code(mail, address, 1)
    # The code's five minutes pass (its expiry is moved into the past, in the server's own database).
    with database(gatehouse) as db:
        changed = db.execute(
            "UPDATE auth_sessions SET state = json_set(state, '$.code_expires_at', ?) WHERE session_hash = ?",
            (time.time() - 1, hashlib.sha256(sent["Session"].encode()).hexdigest()),
        ).rowcount
    db.close()
    assert changed == 1
    with pytest.raises(ClientError) as expired:
        answer(public_idp, client_id, "EMAIL_OTP", sent["Session"], "ezra", EMAIL_OTP_CODE=code)
    assert error_of(expired)[0] == "ExpiredCodeException"
    with pytest.raises(ClientError) as gone:
        answer(public_idp, client_id, "EMAIL_OTP", sent["Session"], "ezra", EMAIL_OTP_CODE=code)
    assert error_of(gone)[0] == "NotAuthorizedException"
    # Nothing was set up: the next sign-in asks for MFA_SETUP again.
    assert "email" not in user_attributes(idp, pool_id, "ezra")
    assert mfa_view(idp, pool_id, "ezra") == (None, None)
    assert sign_in(public_idp, client_id, "ezra")["ChallengeName"] == "MFA_SETUP"


def test_another_users_session_cannot_set_up_email(
    mail: MailServer, idp: Any, public_idp: Any, email_pool: Any
) -> None:
    pool_id, client_id = email_pool
    make_user(idp, pool_id, "vera")
    make_user(idp, pool_id, "walt")
    vera = sign_in(public_idp, client_id, "vera")
    walt = sign_in(public_idp, client_id, "walt")
    # Walt answering Vera's MFA_SETUP with his own name: refused, no mail sent, and her session is over.
    with pytest.raises(ClientError) as other_name:
        setup_email(public_idp, client_id, vera["Session"], "walt", "walt@example.com")
    assert error_of(other_name)[0] == "NotAuthorizedException"
    assert mail.messages_to("walt@example.com") == []
    with pytest.raises(ClientError) as over:
        setup_email(public_idp, client_id, vera["Session"], "vera", "vera@example.com")
    assert error_of(over)[0] == "NotAuthorizedException"
    # Walt's own EMAIL_OTP session answered under Vera's name: refused, and nothing stored for either.
    sent = setup_email(public_idp, client_id, walt["Session"], "walt", "walt@example.com")
    code = email_code(mail, "walt@example.com", 1)
    with pytest.raises(ClientError) as swapped:
        answer(public_idp, client_id, "EMAIL_OTP", sent["Session"], "vera", EMAIL_OTP_CODE=code)
    assert error_of(swapped)[0] == "NotAuthorizedException"
    assert "email" not in user_attributes(idp, pool_id, "walt") and "email" not in user_attributes(idp, pool_id, "vera")
    # A session of another client is refused too.
    other_client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    walt_again = sign_in(public_idp, client_id, "walt")
    with pytest.raises(ClientError) as cross_client:
        setup_email(public_idp, other_client, walt_again["Session"], "walt", "walt@example.com")
    assert error_of(cross_client)[0] == "NotAuthorizedException"


def test_bad_addresses_are_refused_before_any_mail(mail: MailServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(
        idp, "setup-malformed", "ON", EmailMfaConfiguration=EMAIL_CONFIG, SoftwareTokenMfaConfiguration=TOTP
    )
    make_user(idp, pool_id, "xena")
    first = sign_in(public_idp, client_id, "xena")
    session = first["Session"]
    for address in ("not-an-address", "a@", " ", "x" * 300 + "@example.com"):
        with pytest.raises(ClientError) as malformed:
            setup_email(public_idp, client_id, session, "xena", address)
        assert error_of(malformed)[0] == "InvalidParameterException", address
    assert mfa_view(idp, pool_id, "xena") == (None, None)
    # The session survives a malformed answer (a few tries, as a wrong code's does) and still works.
    sent = setup_email(public_idp, client_id, session, "xena", "xena@example.com")
    assert sent["ChallengeName"] == "EMAIL_OTP"


def test_a_taken_alias_address_is_refused(mail: MailServer, idp: Any, public_idp: Any) -> None:
    pool_id = str(idp.create_user_pool(PoolName="setup-alias", AliasAttributes=["email"])["UserPool"]["Id"])
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="ON",
        EmailMfaConfiguration=EMAIL_CONFIG,
        SoftwareTokenMfaConfiguration=TOTP,
    )
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    make_user(idp, pool_id, "owner", email="shared@example.com", email_verified="true")
    make_user(idp, pool_id, "yuri")
    first = sign_in(public_idp, client_id, "yuri")
    assert first["ChallengeName"] == "MFA_SETUP"
    with pytest.raises(ClientError) as taken:
        setup_email(public_idp, client_id, first["Session"], "yuri", "Shared@example.com")
    assert error_of(taken)[0] == "AliasExistsException"
    assert mail.messages_to("shared@example.com") == [] and mail.messages_to("Shared@example.com") == []
    # Another address works, and becomes Yuri's sign-in alias once proven.
    sent = setup_email(public_idp, client_id, first["Session"], "yuri", "yuri@example.com")
    code = email_code(mail, "yuri@example.com", 1)
    tokens_of(answer(public_idp, client_id, "EMAIL_OTP", sent["Session"], "yuri", EMAIL_OTP_CODE=code))
    by_alias = sign_in(public_idp, client_id, "yuri@example.com")
    assert by_alias["ChallengeName"] == "EMAIL_OTP"


def test_a_method_the_pool_does_not_enable(mail: MailServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "setup-totp-only", "ON", SoftwareTokenMfaConfiguration=TOTP)
    make_user(idp, pool_id, "zoe")
    first = sign_in(public_idp, client_id, "zoe")
    assert first["ChallengeParameters"]["MFAS_CAN_SETUP"] == '["SOFTWARE_TOKEN_MFA"]'
    with pytest.raises(ClientError) as email:
        setup_email(public_idp, client_id, first["Session"], "zoe", "zoe@example.com")
    assert error_of(email) == ("InvalidParameterException", "EMAIL_OTP is not enabled for this user pool.")
    with pytest.raises(ClientError) as sms:
        answer(public_idp, client_id, "MFA_SETUP", first["Session"], "zoe", PHONE_NUMBER="+15555550199")
    assert error_of(sms) == ("InvalidParameterException", "SMS_MFA is not enabled for this user pool.")
    assert mail.messages_to("zoe@example.com") == []
    assert mfa_view(idp, pool_id, "zoe") == (None, None)
    # The authenticator app still can be set up with the same session.
    associated = public_idp.associate_software_token(Session=first["Session"])
    step = int(time.time() // 30)
    verified = public_idp.verify_software_token(
        Session=associated["Session"], UserCode=pyotp.TOTP(associated["SecretCode"]).generate_otp(step)
    )
    tokens_of(answer(public_idp, client_id, "MFA_SETUP", verified["Session"], "zoe"))
    assert mfa_view(idp, pool_id, "zoe") == (["SOFTWARE_TOKEN_MFA"], "SOFTWARE_TOKEN_MFA")


def test_email_only_pool_offers_email_setup(mail: MailServer, idp: Any, public_idp: Any) -> None:
    pool_id, client_id = make_pool(idp, "setup-email-only", "ON", EmailMfaConfiguration=EMAIL_CONFIG)
    make_user(idp, pool_id, "abe")
    first = sign_in(public_idp, client_id, "abe")
    assert first["ChallengeName"] == "MFA_SETUP"
    assert first["ChallengeParameters"]["MFAS_CAN_SETUP"] == '["EMAIL_OTP"]'
    # Answering as for an authenticator app names what to do instead.
    with pytest.raises(ClientError) as no_totp:
        answer(public_idp, client_id, "MFA_SETUP", first["Session"], "abe")
    assert error_of(no_totp)[0] == "InvalidParameterException" and "EMAIL" in error_of(no_totp)[1]
    with pytest.raises(ClientError) as no_app:
        public_idp.associate_software_token(Session=first["Session"])
    assert error_of(no_app)[0] == "SoftwareTokenMFANotFoundException"
    # The admin API sets it up the same way.
    admin = idp.admin_initiate_auth(
        UserPoolId=pool_id,
        ClientId=client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "abe", "PASSWORD": "Sms-mfa-password-1"},
    )
    assert admin["ChallengeName"] == "MFA_SETUP"
    sent = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="MFA_SETUP",
        Session=admin["Session"],
        ChallengeResponses={"USERNAME": "abe", "EMAIL": "abe@example.com"},
    )
    assert sent["ChallengeName"] == "EMAIL_OTP"
    done = idp.admin_respond_to_auth_challenge(
        UserPoolId=pool_id,
        ClientId=client_id,
        ChallengeName="EMAIL_OTP",
        Session=sent["Session"],
        ChallengeResponses={"USERNAME": "abe", "EMAIL_OTP_CODE": email_code(mail, "abe@example.com", 1)},
    )
    tokens_of(done)
    assert mfa_view(idp, pool_id, "abe") == (["EMAIL_OTP"], "EMAIL_OTP")


def test_sms_setup_is_adding_a_phone_and_signing_in_again(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any
) -> None:
    """Cognito: "To set up SMS or email MFA, collect a phone_number or email attribute for the user. Then
    restart the authentication flow." """
    pool_id, client_id = make_pool(idp, "setup-sms", "ON", SmsMfaConfiguration=SMS_CONFIG)
    make_user(idp, pool_id, "bea")
    first = sign_in(public_idp, client_id, "bea")
    assert first["ChallengeName"] == "MFA_SETUP"
    assert first["ChallengeParameters"]["MFAS_CAN_SETUP"] == '["SMS_MFA"]'
    phone = "+15555550177"
    with pytest.raises(ClientError) as in_challenge:
        answer(public_idp, client_id, "MFA_SETUP", first["Session"], "bea", PHONE_NUMBER=phone)
    assert error_of(in_challenge)[0] == "InvalidParameterException" and "phone_number" in error_of(in_challenge)[1]
    with pytest.raises(ClientError) as no_email:
        setup_email(public_idp, client_id, first["Session"], "bea", "bea@example.com")
    assert error_of(no_email)[0] == "InvalidParameterException"
    assert outbox_sms(gatehouse, phone) == []
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username="bea", UserAttributes=[{"Name": "phone_number", "Value": phone}]
    )
    again = sign_in(public_idp, client_id, "bea")
    assert again["ChallengeName"] == "SMS_MFA"
    tokens_of(
        answer(public_idp, client_id, "SMS_MFA", again["Session"], "bea", SMS_MFA_CODE=sms_code(gatehouse, phone, 1))
    )


def test_an_address_the_user_already_has(mail: MailServer, idp: Any, public_idp: Any, email_pool: Any) -> None:
    """Only the user's own address may be named once they have one (here an administrator adds it while the
    set-up is open): a password alone must not move the second factor to another mailbox."""
    pool_id, client_id = email_pool
    make_user(idp, pool_id, "cora")
    first = sign_in(public_idp, client_id, "cora")
    assert first["ChallengeName"] == "MFA_SETUP"
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username="cora", UserAttributes=[{"Name": "email", "Value": "cora@example.com"}]
    )
    with pytest.raises(ClientError) as elsewhere:
        setup_email(public_idp, client_id, first["Session"], "cora", "attacker@example.net")
    assert error_of(elsewhere)[0] == "InvalidParameterException"
    assert mail.messages_to("attacker@example.net") == []
    sent = setup_email(public_idp, client_id, first["Session"], "cora", "CORA@example.com")
    tokens_of(
        answer(
            public_idp,
            client_id,
            "EMAIL_OTP",
            sent["Session"],
            "cora",
            EMAIL_OTP_CODE=email_code(mail, "CORA@example.com", 1),
        )
    )
    assert mfa_view(idp, pool_id, "cora") == (["EMAIL_OTP"], "EMAIL_OTP")
    assert user_attributes(idp, pool_id, "cora")["email_verified"] == "true"


def test_an_address_changed_while_the_code_was_out(
    mail: MailServer, idp: Any, public_idp: Any, email_pool: Any
) -> None:
    pool_id, client_id = email_pool
    make_user(idp, pool_id, "dina")
    first = sign_in(public_idp, client_id, "dina")
    sent = setup_email(public_idp, client_id, first["Session"], "dina", "dina@example.com")
    code = email_code(mail, "dina@example.com", 1)
    idp.admin_update_user_attributes(
        UserPoolId=pool_id, Username="dina", UserAttributes=[{"Name": "email", "Value": "dina@work.example"}]
    )
    with pytest.raises(ClientError) as moved:
        answer(public_idp, client_id, "EMAIL_OTP", sent["Session"], "dina", EMAIL_OTP_CODE=code)
    assert error_of(moved)[0] == "NotAuthorizedException"
    assert user_attributes(idp, pool_id, "dina")["email"] == "dina@work.example"
    assert mfa_view(idp, pool_id, "dina") == (None, None)


def test_an_authenticator_app_is_not_turned_on_in_a_pool_that_no_longer_offers_it(idp: Any, public_idp: Any) -> None:
    """A user who verified an authenticator app while the pool offered it cannot turn it on once the pool stopped
    offering it: reported as the preferred factor, it would never be asked for. SMS and email are refused alike."""
    pool_id, client_id = make_pool(idp, "totp-withdrawn", "OPTIONAL", SoftwareTokenMfaConfiguration=TOTP)
    make_user(idp, pool_id, "uma")
    access = tokens_of(sign_in(public_idp, client_id, "uma"))["AccessToken"]
    secret = public_idp.associate_software_token(AccessToken=access)["SecretCode"]
    public_idp.verify_software_token(AccessToken=access, UserCode=pyotp.TOTP(secret).now())
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        MfaConfiguration="OPTIONAL",
        SoftwareTokenMfaConfiguration={"Enabled": False},
        EmailMfaConfiguration=EMAIL_CONFIG,
    )
    before = mfa_view(idp, pool_id, "uma")
    for call in (
        lambda: public_idp.set_user_mfa_preference(
            AccessToken=access, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
        ),
        lambda: idp.admin_set_user_mfa_preference(
            UserPoolId=pool_id, Username="uma", SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
        ),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        assert error_of(refused) == ("InvalidParameterException", f"SOFTWARE_TOKEN_MFA {NOT_OFFERED}")
    assert mfa_view(idp, pool_id, "uma") == before
    tokens_of(sign_in(public_idp, client_id, "uma"))  # and no factor is asked for
