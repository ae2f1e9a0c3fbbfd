"""Cognito's lockout after repeated failed sign-ins, against a running Gatehouse: after five wrong passwords the
user is locked out for 1 s, doubling with each further failure; attempts during a lockout are refused with
"Password attempts exceeded" without the password being checked; a successful sign-in resets the count, and so
does an administrator setting or resetting the password. SRP, the plain password flows and wrong TOTP codes share
one count. An unknown user under PreventUserExistenceErrors is never "locked out": it always looks like a wrong
password."""

from __future__ import annotations

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyotp
import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families
from pycognito.aws_srp import AWSSRP

from tests.support import GatehouseServer

PASSWORD = "Correct-horse-battery-1"
WRONG = "Wrong-password-1"
INCORRECT = ("NotAuthorizedException", "Incorrect username or password.")
LOCKED = ("NotAuthorizedException", "Password attempts exceeded")


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error.get("Message", ""))


@pytest.fixture(scope="module")
def pool_id(idp: Any) -> str:
    return str(idp.create_user_pool(PoolName="lockout")["UserPool"]["Id"])


@pytest.fixture(scope="module")
def client_id(idp: Any, pool_id: str) -> str:
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"],
        PreventUserExistenceErrors="ENABLED",
    )
    return str(client["UserPoolClient"]["ClientId"])


def new_user(idp: Any, pool_id: str, username: str) -> str:
    idp.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
    idp.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=PASSWORD, Permanent=True)
    return username


def sign_in(public_idp: Any, client_id: str, username: str, password: str) -> dict[str, Any]:
    answer: dict[str, Any] = public_idp.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    return answer


def refused(public_idp: Any, client_id: str, username: str, password: str) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        sign_in(public_idp, client_id, username, password)
    return error_of(exc)


def srp_sign_in(public_idp: Any, pool_id: str, client_id: str, username: str, password: str) -> dict[str, Any]:
    srp = AWSSRP(username=username, password=password, pool_id=pool_id, client_id=client_id, client=public_idp)
    answer: dict[str, Any] = srp.authenticate_user()
    return answer


def srp_refused(public_idp: Any, pool_id: str, client_id: str, username: str, password: str) -> tuple[str, str]:
    with pytest.raises(ClientError) as exc:
        srp_sign_in(public_idp, pool_id, client_id, username, password)
    return error_of(exc)


def fail_five_times(public_idp: Any, client_id: str, username: str) -> float:
    """Five wrong passwords, each answered as a wrong password; returns when the fifth answer came."""
    for _ in range(5):
        assert refused(public_idp, client_id, username, WRONG) == INCORRECT
    return time.monotonic()


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def test_five_wrong_passwords_lock_out_for_one_second_and_success_resets_the_count(
    idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    user = new_user(idp, pool_id, "ann")
    locked_at = fail_five_times(public_idp, client_id, user)
    # Locked: the right password is refused without being checked, through the admin flow too.
    assert refused(public_idp, client_id, user, PASSWORD) == LOCKED
    with pytest.raises(ClientError) as exc:
        idp.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user, "PASSWORD": PASSWORD},
        )
    assert error_of(exc) == LOCKED
    assert time.monotonic() - locked_at < 1.0, "the checks above must run inside the 1 s lockout"
    # Just past the first lockout the right password works.
    sleep_until(locked_at + 1.15)
    assert sign_in(public_idp, client_id, user, PASSWORD)["AuthenticationResult"]["AccessToken"]
    # ... and has reset the count: had it not, one more failure (the sixth) would lock out for 2 s.
    assert refused(public_idp, client_id, user, WRONG) == INCORRECT
    assert sign_in(public_idp, client_id, user, PASSWORD)["AuthenticationResult"]["AccessToken"]


def test_each_further_failure_doubles_the_lockout(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    user = new_user(idp, pool_id, "bob")
    locked_at = fail_five_times(public_idp, client_id, user)
    sleep_until(locked_at + 1.15)
    # The sixth failure, after the first lockout elapsed, is a wrong password again, and locks out for 2 s.
    assert refused(public_idp, client_id, user, WRONG) == INCORRECT
    sixth_at = time.monotonic()
    sleep_until(sixth_at + 1.2)
    assert refused(public_idp, client_id, user, PASSWORD) == LOCKED
    sleep_until(sixth_at + 2.15)
    assert sign_in(public_idp, client_id, user, PASSWORD)["AuthenticationResult"]["IdToken"]


def test_concurrent_failures_are_all_counted(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    user = new_user(idp, pool_id, "hal")
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: refused(public_idp, client_id, user, WRONG), range(5)))
    locked_at = time.monotonic()
    assert answers == [INCORRECT] * 5
    # Five racing failures, each written with the version check, add up to five: locked.
    assert refused(public_idp, client_id, user, PASSWORD) == LOCKED
    assert time.monotonic() - locked_at < 1.0, "the check above must run inside the 1 s lockout"


def test_srp_sign_in_shares_the_count_and_the_lockout(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    user = new_user(idp, pool_id, "cat")
    for _ in range(3):
        assert srp_refused(public_idp, pool_id, client_id, user, WRONG) == INCORRECT
    for _ in range(2):
        assert refused(public_idp, client_id, user, WRONG) == INCORRECT
    locked_at = time.monotonic()
    assert srp_refused(public_idp, pool_id, client_id, user, PASSWORD) == LOCKED
    assert refused(public_idp, client_id, user, PASSWORD) == LOCKED
    assert time.monotonic() - locked_at < 1.0, "the checks above must run inside the 1 s lockout"
    sleep_until(locked_at + 1.15)
    tokens = srp_sign_in(public_idp, pool_id, client_id, user, PASSWORD)["AuthenticationResult"]
    assert tokens["AccessToken"] and tokens["IdToken"]


def test_srp_failures_alone_lock_out(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    user = new_user(idp, pool_id, "cid")
    for _ in range(5):
        assert srp_refused(public_idp, pool_id, client_id, user, WRONG) == INCORRECT
    assert srp_refused(public_idp, pool_id, client_id, user, PASSWORD) == LOCKED


def test_an_unknown_user_never_looks_locked_out(public_idp: Any, pool_id: str, client_id: str) -> None:
    answers = {refused(public_idp, client_id, "nobody", WRONG) for _ in range(7)}
    answers |= {srp_refused(public_idp, pool_id, client_id, "nobody", WRONG) for _ in range(6)}
    assert answers == {INCORRECT}


def test_admin_set_user_password_clears_the_lockout(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    user = new_user(idp, pool_id, "dan")
    fail_five_times(public_idp, client_id, user)
    assert refused(public_idp, client_id, user, PASSWORD) == LOCKED
    idp.admin_set_user_password(UserPoolId=pool_id, Username=user, Password=PASSWORD, Permanent=True)
    assert sign_in(public_idp, client_id, user, PASSWORD)["AuthenticationResult"]["AccessToken"]


def test_admin_reset_user_password_clears_the_lockout(idp: Any, public_idp: Any, pool_id: str, client_id: str) -> None:
    user = new_user(idp, pool_id, "eve")
    fail_five_times(public_idp, client_id, user)
    assert refused(public_idp, client_id, user, PASSWORD) == LOCKED
    idp.admin_reset_user_password(UserPoolId=pool_id, Username=user)
    # No longer locked: the password is checked again, and the reset is what now stands in the way.
    assert refused(public_idp, client_id, user, PASSWORD)[0] == "PasswordResetRequiredException"


def test_refusals_during_a_lockout_are_counted_under_their_own_reason(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool_id: str, client_id: str
) -> None:
    def failures() -> dict[str, float]:
        with urllib.request.urlopen(f"{gatehouse.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        found: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "gatehouse_sign_in_failures_total" and s.labels.get("client") == client_id:
                    reason = s.labels.get("reason", "")
                    found[reason] = found.get(reason, 0.0) + s.value
        return found

    user = new_user(idp, pool_id, "fay")
    before = failures()
    fail_five_times(public_idp, client_id, user)
    assert refused(public_idp, client_id, user, PASSWORD) == LOCKED
    after = failures()
    assert after.get("NotAuthorizedException", 0.0) - before.get("NotAuthorizedException", 0.0) == 5
    assert after.get("PasswordAttemptsExceeded", 0.0) - before.get("PasswordAttemptsExceeded", 0.0) == 1


# --- wrong MFA codes count too ---------------------------------------------------------------------------------


def code_at(secret: str, step: int) -> str:
    return str(pyotp.TOTP(secret).generate_otp(step))


def settled_step() -> int:
    """The current 30 s step, after waiting out the end of one, so that the codes of the previous, current and
    next steps all stay valid for the test's few seconds."""
    into = time.time() % 30
    if into > 20:
        time.sleep(30 - into + 0.2)
    return int(time.time() // 30)


def test_wrong_totp_codes_count_towards_the_lockout(idp: Any, public_idp: Any) -> None:
    pool_id = str(idp.create_user_pool(PoolName="lockout-mfa")["UserPool"]["Id"])
    idp.set_user_pool_mfa_config(
        UserPoolId=pool_id, MfaConfiguration="OPTIONAL", SoftwareTokenMfaConfiguration={"Enabled": True}
    )
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )
    client_id = str(client["UserPoolClient"]["ClientId"])
    user = new_user(idp, pool_id, "gus")
    step = settled_step()
    access_token = sign_in(public_idp, client_id, user, PASSWORD)["AuthenticationResult"]["AccessToken"]
    secret = str(public_idp.associate_software_token(AccessToken=access_token)["SecretCode"])
    public_idp.verify_software_token(AccessToken=access_token, UserCode=code_at(secret, step - 1))
    public_idp.set_user_mfa_preference(
        AccessToken=access_token, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    valid = {code_at(secret, s) for s in range(step - 2, step + 3)}
    wrong = next(c for c in (f"{n:06d}" for n in range(0, 1_000_000, 7919)) if c not in valid)

    def answer(session: str, code: str) -> dict[str, Any]:
        return dict(
            public_idp.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="SOFTWARE_TOKEN_MFA",
                Session=session,
                ChallengeResponses={"USERNAME": user, "SOFTWARE_TOKEN_MFA_CODE": code},
            )
        )

    session = sign_in(public_idp, client_id, user, PASSWORD)["Session"]
    for _ in range(5):
        with pytest.raises(ClientError) as exc:
            answer(session, wrong)
        assert error_of(exc) == ("CodeMismatchException", "Invalid code received for user")
    locked_at = time.monotonic()
    assert refused(public_idp, client_id, user, PASSWORD) == LOCKED
    assert time.monotonic() - locked_at < 1.0, "the check above must run inside the 1 s lockout"
    sleep_until(locked_at + 1.15)
    challenged = sign_in(public_idp, client_id, user, PASSWORD)
    assert challenged["ChallengeName"] == "SOFTWARE_TOKEN_MFA"
    assert answer(challenged["Session"], code_at(secret, step))["AuthenticationResult"]["AccessToken"]
