"""Argon2id hashing, Cognito's password policy and temporary passwords."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import pytest

from gateway.errors import InvalidPasswordException
from gateway.services.passwords import (
    Argon2Params,
    PasswordHasher,
    check_password_policy,
    generate_temporary_password,
)

FAST = Argon2Params(memory_kib=1024, time_cost=1, parallelism=1)
PREFIX = "Password did not conform with policy: "

T = TypeVar("T")


@pytest.fixture
def hasher() -> PasswordHasher:
    return PasswordHasher(FAST)


# --- hashing -------------------------------------------------------------------------------------


async def test_hash_and_verify(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("correct horse battery staple")
    assert encoded.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert await hasher.verify(encoded, "correct horse battery staple") is True
    assert await hasher.verify(encoded, "correct horse battery stapler") is False
    assert await hasher.verify(encoded, "") is False


async def test_hash_is_salted(hasher: PasswordHasher) -> None:
    assert await hasher.hash("same") != await hasher.hash("same")


async def test_unicode_password(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("pässwörd ✓ 密码")
    assert await hasher.verify(encoded, "pässwörd ✓ 密码")
    assert not await hasher.verify(encoded, "passwort ✓ 密码")


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "not a hash",
        "$argon2id$v=19$m=1024,t=1,p=1$",
        "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$",
        "$argon2id$v=19$m=1024,t=1,p=1$!!!!$!!!!",
        "$2b$12$abcdefghijklmnopqrstuuJbZ1qvVhZP6Y0lH9Q0c6uE2jYb5Gm6y",  # bcrypt
        "$argon2id$v=19$m=1024,t=1,p=1$ä$ö",
    ],
)
async def test_verify_malformed_hash_is_false(hasher: PasswordHasher, encoded: str) -> None:
    assert await hasher.verify(encoded, "whatever") is False


async def test_verify_reads_other_parameters(hasher: PasswordHasher) -> None:
    other = PasswordHasher(Argon2Params(memory_kib=2048, time_cost=2, parallelism=2))
    encoded = await other.hash("pw")
    assert await hasher.verify(encoded, "pw")


async def test_needs_rehash(hasher: PasswordHasher) -> None:
    encoded = await hasher.hash("pw")
    assert hasher.needs_rehash(encoded) is False
    assert PasswordHasher(FAST).needs_rehash(encoded) is False
    assert PasswordHasher(Argon2Params(memory_kib=2048, time_cost=1)).needs_rehash(encoded) is True
    assert PasswordHasher(Argon2Params(memory_kib=1024, time_cost=2)).needs_rehash(encoded) is True
    assert PasswordHasher(Argon2Params(memory_kib=1024, time_cost=1, parallelism=2)).needs_rehash(encoded)
    assert PasswordHasher().needs_rehash(encoded) is True


def test_needs_rehash_on_garbage(hasher: PasswordHasher) -> None:
    assert hasher.needs_rehash("garbage") is True
    assert hasher.needs_rehash("") is True


def test_needs_rehash_agrees_with_argon2_on_other_salt_and_tag_sizes(hasher: PasswordHasher) -> None:
    """The text check of a current hash (no parsing) answers as argon2's check_needs_rehash: our parameters
    with another salt or tag size, a stray character or a cut-off tag all need a rehash."""
    current = hasher._hasher.hash("pw")
    salt_and_tag = current.rsplit("$", 2)
    prefix = current[: len(current) - len(salt_and_tag[1]) - len(salt_and_tag[2]) - 1]
    cases = {
        current: False,
        prefix + salt_and_tag[1] + "$" + salt_and_tag[2][:-1]: True,  # a 31-byte tag
        prefix + salt_and_tag[1] + "A$" + salt_and_tag[2]: True,  # a 17-byte salt
        prefix + salt_and_tag[1] + "$" + salt_and_tag[2] + "AAAA": True,  # a 35-byte tag
        current + "\n": True,
        current.replace("$argon2id$", "$argon2i$"): True,
        current.replace("v=19", "v=16"): True,
    }
    for encoded, expected in cases.items():
        assert hasher.needs_rehash(encoded) is expected, encoded
        try:
            assert hasher._hasher.check_needs_rehash(encoded) is expected, encoded
        except ValueError:
            assert expected  # argon2 cannot read it at all: a rehash (on the next sign-in) is the answer too


async def test_default_params_are_owasp_minimum() -> None:
    assert Argon2Params() == Argon2Params(memory_kib=19456, time_cost=2, parallelism=1)
    hasher = PasswordHasher()
    encoded = await hasher.hash("Sup3r-secret")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await hasher.verify(encoded, "Sup3r-secret")
    assert not await hasher.verify(encoded, "Sup3r-secreT")
    assert hasher.needs_rehash(encoded) is False


class _RecordingExecutor(concurrent.futures.ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls = 0
        self.threads: set[int] = set()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        self.calls += 1

        def run() -> T:
            self.threads.add(threading.get_ident())
            return fn(*args, **kwargs)

        return super().submit(run)


@pytest.fixture
def executor() -> Iterator[_RecordingExecutor]:
    ex = _RecordingExecutor()
    yield ex
    ex.shutdown(wait=True)


async def test_work_runs_in_the_given_executor_off_the_loop_thread(executor: _RecordingExecutor) -> None:
    hasher = PasswordHasher(FAST, executor=executor)
    encoded = await hasher.hash("pw")
    assert await hasher.verify(encoded, "pw")
    await hasher.dummy_verify("pw")
    assert executor.calls == 3
    assert threading.get_ident() not in executor.threads


async def test_dummy_verify_costs_a_real_verify(hasher: PasswordHasher) -> None:
    # The decoy is a well-formed hash under the hasher's current parameters, so verifying against it
    # runs the full Argon2 computation (and fails) instead of bailing out early on a parse error.
    dummy: str = hasher._dummy_hash
    assert dummy.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert hasher.needs_rehash(dummy) is False
    assert await hasher.verify(dummy, "anything") is False
    await hasher.dummy_verify("anything")


# --- policy --------------------------------------------------------------------------------------


def _reason(password: str, policy: Mapping[str, Any] | None) -> str:
    with pytest.raises(InvalidPasswordException) as info:
        check_password_policy(password, policy)
    assert info.value.message.startswith(PREFIX)
    assert info.value.type_name == "InvalidPasswordException"
    return info.value.message.removeprefix(PREFIX)


ALL = {
    "MinimumLength": 8,
    "RequireUppercase": True,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
}


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Ab1!", "Password not long enough"),
        ("abcdefg1!", "Password must have uppercase characters"),
        ("ABCDEFG1!", "Password must have lowercase characters"),
        ("Abcdefgh!", "Password must have numeric characters"),
        ("Abcdefgh1", "Password must have symbol characters"),
    ],
)
@pytest.mark.parametrize("policy", [None, ALL])
def test_each_policy_message(password: str, message: str, policy: Mapping[str, Any] | None) -> None:
    assert _reason(password, policy) == message


def test_checks_are_ordered_first_failure_wins() -> None:
    assert _reason("a", None) == "Password not long enough"
    assert _reason("aaaaaaaa", None) == "Password must have uppercase characters"
    assert _reason("AAAAAAAA", None) == "Password must have lowercase characters"
    assert _reason("AAAAaaaa", None) == "Password must have numeric characters"


@pytest.mark.parametrize("password", ["Abcdef1!", "Passw0rd!", "Zz9^zzzz", "Aa1 aaaa", "Aa1" + "~" * 253])
def test_default_policy_accepts(password: str) -> None:
    check_password_policy(password, None)


@pytest.mark.parametrize("symbol", list("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+-"))
def test_every_cognito_symbol_counts(symbol: str) -> None:
    check_password_policy(f"Abcdef1{symbol}", None)


def test_inner_space_is_a_symbol() -> None:
    check_password_policy("Abc def1", None)


@pytest.mark.parametrize("password", ["Abcdef1é", "Abcdef1€", "Abcdef1\t2"])
def test_other_characters_are_not_symbols(password: str) -> None:
    assert _reason(password, None) == "Password must have symbol characters"


def test_letters_must_be_basic_latin() -> None:
    assert _reason("ÄÖÜabcd1!", None) == "Password must have uppercase characters"
    assert _reason("ABCDäöü1!", None) == "Password must have lowercase characters"
    assert _reason("Abcdefg٣!", None) == "Password must have numeric characters"  # Arabic-Indic three


@pytest.mark.parametrize("password", [" Abcdef1!", "Abcdef1! ", "\tAbcdef1!", "Abcdef1!\n", " "])
def test_leading_or_trailing_whitespace_is_refused(password: str) -> None:
    assert "leading or trailing whitespace" in _reason(password, {})


def test_max_length_256() -> None:
    check_password_policy("Aa1!" + "x" * 252, None)
    assert "256" in _reason("Aa1!" + "x" * 253, None)
    assert "256" in _reason("x" * 257, {})


def test_lone_surrogate_is_refused() -> None:
    assert "invalid characters" in _reason("Abcdef1!\ud800", None)


def test_explicit_policy_missing_flags_are_false() -> None:
    check_password_policy("aaaaaaaa", {"MinimumLength": 8})
    check_password_policy("aaaaaaaa", {})
    assert _reason("aaaaaaa", {}) == "Password not long enough"


def test_minimum_length_is_honoured() -> None:
    policy = {"MinimumLength": 12}
    assert _reason("a" * 11, policy) == "Password not long enough"
    check_password_policy("a" * 12, policy)
    check_password_policy("a" * 6, {"MinimumLength": 6})
    check_password_policy("a" * 8, {"MinimumLength": None})


def test_only_requested_classes_are_required() -> None:
    check_password_policy("abcdefgh", {"RequireLowercase": True})
    check_password_policy("12345678", {"RequireNumbers": True})
    check_password_policy("!!!!!!!!", {"RequireSymbols": True})
    check_password_policy("ABCDEFGH", {"RequireUppercase": True})
    assert _reason("abcdefgh", {"RequireNumbers": True}) == "Password must have numeric characters"


# --- temporary passwords -------------------------------------------------------------------------


POLICIES: list[Mapping[str, Any] | None] = [
    None,
    ALL,
    {},
    {"MinimumLength": 6},
    {"MinimumLength": 16, "RequireSymbols": True},
    {"MinimumLength": 99, **{k: v for k, v in ALL.items() if k != "MinimumLength"}},
    {"RequireUppercase": True, "RequireNumbers": True},
    {"MinimumLength": 8, "RequireUppercase": False, "RequireLowercase": False},
]


@pytest.mark.parametrize("policy", POLICIES)
def test_generated_passwords_satisfy_policy(policy: Mapping[str, Any] | None) -> None:
    min_length = (policy or {}).get("MinimumLength") or 8
    for _ in range(100):
        password = generate_temporary_password(policy)
        assert len(password) == max(12, min_length)
        check_password_policy(password, policy)
        # Valid under the strictest policy of the same length too.
        check_password_policy(password, {**ALL, "MinimumLength": len(password)})


def test_generated_passwords_avoid_template_hostile_characters() -> None:
    seen = set()
    for _ in range(200):
        seen |= set(generate_temporary_password(None))
    assert not seen & set(" <>&\"'`\\")


def test_generated_passwords_are_random() -> None:
    assert len({generate_temporary_password(None) for _ in range(100)}) == 100
