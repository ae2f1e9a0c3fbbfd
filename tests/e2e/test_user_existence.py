"""PreventUserExistenceErrors=ENABLED leaves nothing to tell an unknown user from a known one: the same answer
and about the same time for a wrong password (USER_PASSWORD_AUTH and ADMIN_USER_PASSWORD_AUTH: an unknown
name costs one Argon2 verify against a decoy hash at the same parameters), ForgotPassword and
ResendConfirmationCode (a simulated delivery), ConfirmForgotPassword and ConfirmSignUp (a wrong code, and the
password policy judged first either way). Timings are compared by their medians, with a generous ratio: the
point is that an unknown name is not answered in microseconds while a known one takes an Argon2 verify."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support import GatehouseServer

PASSWORD = "Known-password-1"
WRONG = "Wrong-password-2"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"]
# The median of one kind of attempt may be at most this many times the other's, or differ by at most SLACK:
# on a shared machine a few milliseconds of store writes swing both ways, while what would tell users apart
# (an Argon2 verification, ~20 ms; an SMTP round trip) stays well above it.
RATIO = 2.5
SLACK = 0.008
SAMPLES = 12


@pytest.fixture(scope="module")
def gatehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """A server of its own, delivering to its outbox: the timings measure Gatehouse, not an SMTP server."""
    data_dir: Path = tmp_path_factory.mktemp("existence") / "data"
    server = GatehouseServer(data_dir, production_argon2=True)  # the timings are of production-cost hashes
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pool(idp: Any) -> tuple[str, str]:
    pool_id = idp.create_user_pool(PoolName="existence", AutoVerifiedAttributes=["email"])["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool_id, ClientName="app", ExplicitAuthFlows=FLOWS, PreventUserExistenceErrors="ENABLED"
    )
    return pool_id, client["UserPoolClient"]["ClientId"]


def answer(call: Callable[[], Any]) -> tuple[str, str] | dict[str, Any]:
    """The error (code, message) of a call, or its answer without the request metadata."""
    try:
        result = dict(call())
    except ClientError as error:
        return str(error.response["Error"]["Code"]), str(error.response["Error"]["Message"])
    result.pop("ResponseMetadata", None)
    return result


def median_seconds(known: Callable[[int], Any], unknown: Callable[[int], Any]) -> tuple[float, float]:
    """Median durations of the two kinds of call, taken alternately, so that whatever else the machine is
    doing meanwhile weighs on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for n in range(SAMPLES):
        for kind, call in enumerate((known, unknown)):
            started = time.perf_counter()
            answer(lambda n=n, call=call: call(n))
            times[kind].append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def assert_similar(known: float, unknown: float) -> None:
    close = abs(known - unknown) <= SLACK
    assert close or known / RATIO <= unknown <= known * RATIO, (
        f"known {known * 1000:.1f} ms, unknown {unknown * 1000:.1f} ms"
    )


def known_users(idp: Any, pool_id: str, prefix: str, count: int) -> list[str]:
    names = [f"{prefix}-{n}" for n in range(count)]
    for name in names:
        idp.admin_create_user(
            UserPoolId=pool_id,
            Username=name,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": f"{name}@example.com"},
                {"Name": "email_verified", "Value": "true"},
            ],
        )
        idp.admin_set_user_password(UserPoolId=pool_id, Username=name, Password=PASSWORD, Permanent=True)
    return names


def test_password_sign_in_answers_and_times_alike(idp: Any, public_idp: Any, pool: tuple[str, str]) -> None:
    pool_id, client_id = pool
    # Three wrong passwords per user at most: the lockout (from the fifth) would answer differently.
    users = known_users(idp, pool_id, "signin", SAMPLES // 3)

    def public(username: str) -> Callable[[], Any]:
        return lambda: public_idp.initiate_auth(
            ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters={"USERNAME": username, "PASSWORD": WRONG}
        )

    def admin(username: str) -> Callable[[], Any]:
        return lambda: idp.admin_initiate_auth(
            UserPoolId=pool_id,
            ClientId=client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": WRONG},
        )

    incorrect = ("NotAuthorizedException", "Incorrect username or password.")
    assert answer(public(users[0])) == answer(public("nobody-at-all")) == incorrect
    assert answer(admin(users[0])) == answer(admin("nobody-at-all")) == incorrect
    for flow in (public, admin):
        for name in users:  # back to a clean count before timing
            idp.admin_set_user_password(UserPoolId=pool_id, Username=name, Password=PASSWORD, Permanent=True)
        known, unknown = median_seconds(
            lambda n, flow=flow: flow(users[n % len(users)])(), lambda n, flow=flow: flow(f"ghost-{n}")()
        )
        # An Argon2 verify takes milliseconds: an unanswered hash would show as a far smaller median.
        assert_similar(known, unknown)


def test_forgot_password_answers_and_times_alike(public_idp: Any, idp: Any, pool: tuple[str, str]) -> None:
    pool_id, client_id = pool
    users = known_users(idp, pool_id, "forgot", 2)
    known_answer = answer(lambda: public_idp.forgot_password(ClientId=client_id, Username=users[0]))
    unknown_answer = answer(lambda: public_idp.forgot_password(ClientId=client_id, Username="ghost"))
    assert isinstance(known_answer, dict) and isinstance(unknown_answer, dict)
    for details in (known_answer["CodeDeliveryDetails"], unknown_answer["CodeDeliveryDetails"]):
        assert (details["DeliveryMedium"], details["AttributeName"]) == ("EMAIL", "email")
        assert "***@" in details["Destination"]
    known, unknown = median_seconds(
        lambda n: public_idp.forgot_password(ClientId=client_id, Username=users[n % 2]),
        lambda n: public_idp.forgot_password(ClientId=client_id, Username=f"ghost-{n}"),
    )
    assert_similar(known, unknown)


def test_confirm_forgot_password_answers_and_times_alike(public_idp: Any, idp: Any, pool: tuple[str, str]) -> None:
    pool_id, client_id = pool
    (user,) = known_users(idp, pool_id, "confirm", 1)
    public_idp.forgot_password(ClientId=client_id, Username=user)

    def confirm(username: str, password: str = "New-password-3") -> Callable[[], Any]:
        return lambda: public_idp.confirm_forgot_password(
            ClientId=client_id, Username=username, ConfirmationCode="000000", Password=password
        )

    assert answer(confirm(user))[0] == answer(confirm("ghost"))[0] == "CodeMismatchException"
    # A password the policy refuses is refused for both, before the code is looked at.
    weak = answer(confirm("ghost", "short"))
    assert weak == answer(confirm(user, "short"))
    assert weak[0] == "InvalidPasswordException"
    # Timed on a user whose code is gone (five wrong codes burn it): the same answer every time.
    known, unknown = median_seconds(lambda n: confirm(user, "short")(), lambda n: confirm(f"ghost-{n}", "short")())
    assert_similar(known, unknown)


def test_resend_and_confirm_sign_up_answer_alike(public_idp: Any, pool: tuple[str, str]) -> None:
    _, client_id = pool
    public_idp.sign_up(
        ClientId=client_id,
        Username="pending",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "pending@example.com"}],
    )
    known = answer(lambda: public_idp.resend_confirmation_code(ClientId=client_id, Username="pending"))
    unknown = answer(lambda: public_idp.resend_confirmation_code(ClientId=client_id, Username="ghost"))
    assert isinstance(known, dict) and isinstance(unknown, dict)
    assert known["CodeDeliveryDetails"].keys() == unknown["CodeDeliveryDetails"].keys()
    assert known["CodeDeliveryDetails"]["DeliveryMedium"] == unknown["CodeDeliveryDetails"]["DeliveryMedium"] == "EMAIL"
    wrong_known = answer(
        lambda: public_idp.confirm_sign_up(ClientId=client_id, Username="pending", ConfirmationCode="000000")
    )
    wrong_unknown = answer(
        lambda: public_idp.confirm_sign_up(ClientId=client_id, Username="ghost", ConfirmationCode="000000")
    )
    assert wrong_known == wrong_unknown
    assert wrong_known[0] == "CodeMismatchException"
