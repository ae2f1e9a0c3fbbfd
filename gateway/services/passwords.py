"""Password hashing, password policy and temporary passwords.

Hashing is Argon2id (RFC 9106), encoded in the PHC string format that argon2-cffi reads and writes
(``$argon2id$v=19$m=...,t=...,p=...$salt$hash``), so parameters travel with every hash and can be
raised later: :meth:`PasswordHasher.needs_rehash` tells the sign-in path to re-hash on the next
successful login. The default cost is the OWASP Password Storage Cheat Sheet minimum for Argon2id
(19 MiB of memory, 2 iterations, 1 lane); RFC 9106 §4 recommends more where the hardware allows it.
Salt and tag sizes are RFC 9106's: a 128-bit random salt and a 256-bit tag.

Argon2 is deliberately slow, so every hash and verify runs in an executor: the event loop that serves
every other request must never wait for it (argon2-cffi releases the GIL while hashing).

The policy check implements Cognito's ``PasswordPolicyType`` with Cognito's own error messages; see the
Cognito developer guide, "Adding user pool password requirements".
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import InvalidPasswordException

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "Argon2Params",
    "PasswordHasher",
    "check_password_policy",
    "generate_temporary_password",
]

# Cognito's PasswordType: at most 256 characters, whatever MinimumLength says.
MAX_PASSWORD_LENGTH: Final = 256
_DEFAULT_MIN_LENGTH: Final = 8
_TEMP_PASSWORD_MIN_LENGTH: Final = 12
# RFC 9106 §3.1: a 128-bit salt is sufficient for all applications; §4: a 256-bit tag.
_SALT_LEN: Final = 16
_HASH_LEN: Final = 32

_UPPER: Final = frozenset(string.ascii_uppercase)
_LOWER: Final = frozenset(string.ascii_lowercase)
_DIGITS: Final = frozenset(string.digits)
# Cognito's documented symbol set; the space counts too (leading and trailing spaces are refused
# separately, so any space that reaches the symbol check is an inner one).
_SYMBOLS: Final = frozenset("^$*.[]{}()?\"!@#%&/\\,><':;|_~`=+- ")

# Generated passwords are mailed, texted and read aloud, often through HTML templates. Drawing symbols
# only from this subset of Cognito's set avoids characters a template or a mail client might eat or
# mangle (< > & quotes backslash backtick) and the space, which users do not see and do not type.
_GENERATED_SYMBOLS: Final = "^$*.[]{}()?!@#%/,:;|_~=+-"
_POLICY_PREFIX: Final = "Password did not conform with policy: "


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost parameters. Defaults: the OWASP Password Storage Cheat Sheet minimum."""

    memory_kib: int = 19456
    time_cost: int = 2
    parallelism: int = 1


class PasswordHasher:
    """Argon2id hashing that never blocks the event loop."""

    def __init__(
        self,
        params: Argon2Params = Argon2Params(),  # frozen, so one shared default instance is safe
        executor: concurrent.futures.Executor | None = None,
    ) -> None:
        self.params = params
        self._executor = executor
        self._hasher = argon2.PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=_HASH_LEN,
            salt_len=_SALT_LEN,
            type=argon2.Type.ID,
        )
        # The decoy for unknown users. Argon2's cost depends only on the parameters in the encoded
        # string, never on whether the stored tag is right, so a random tag under our current
        # parameters costs exactly what a real verify costs, and building it costs nothing at start-up.
        self._dummy_hash = (
            f"$argon2id$v={argon2.low_level.ARGON2_VERSION}"
            f"$m={params.memory_kib},t={params.time_cost},p={params.parallelism}"
            f"${_b64_nopad(secrets.token_bytes(_SALT_LEN))}${_b64_nopad(secrets.token_bytes(_HASH_LEN))}"
        )
        # A hash made with exactly our parameters, salt and tag sizes (what argon2's check_needs_rehash
        # compares), recognised by its text without parsing it: every sign-in asks.
        self._current = re.compile(
            re.escape(
                f"$argon2id$v={argon2.low_level.ARGON2_VERSION}"
                f"$m={params.memory_kib},t={params.time_cost},p={params.parallelism}$"
            )
            + f"[A-Za-z0-9+/]{{{_b64_length(_SALT_LEN)}}}\\$[A-Za-z0-9+/]{{{_b64_length(_HASH_LEN)}}}"
        )

    async def hash(self, password: str) -> str:
        """An Argon2id PHC string for ``password`` with a fresh random salt."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._hasher.hash, password)

    async def verify(self, encoded: str, password: str) -> bool:
        """Whether ``password`` matches ``encoded``; ``False`` (never an exception) on a mismatch or a
        malformed hash, so a corrupt row reads as a failed sign-in rather than a 500."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._verify_sync, encoded, password)

    def needs_rehash(self, encoded: str) -> bool:
        """Whether ``encoded`` was made with other parameters than ours (or is not a hash we can read)."""
        if self._current.fullmatch(encoded):
            return False
        try:
            return self._hasher.check_needs_rehash(encoded)
        except (InvalidHashError, ValueError):
            return True

    async def dummy_verify(self, password: str) -> None:
        """Spend the time of one real verify, for a user that does not exist.

        Without it, "no such user" answers in microseconds and "wrong password" in tens of
        milliseconds, and the difference enumerates accounts (OWASP Authentication Cheat Sheet,
        "Authentication Responses").
        """
        await self.verify(self._dummy_hash, password)

    def _verify_sync(self, encoded: str, password: str) -> bool:
        try:
            return self._hasher.verify(encoded, password)
        except VerificationError:
            # Includes VerifyMismatchError, the ordinary wrong password.
            return False
        except ValueError:
            # InvalidHashError, and UnicodeError from a hash or password that cannot be encoded.
            return False


def _b64_length(size: int) -> int:
    """How many characters unpadded base64 takes for ``size`` bytes."""
    return (size * 4 + 2) // 3


def _b64_nopad(raw: bytes) -> str:
    # The PHC string format uses standard base64 without padding.
    return base64.b64encode(raw).rstrip(b"=").decode("ascii")


def _policy_error(reason: str) -> InvalidPasswordException:
    return InvalidPasswordException(_POLICY_PREFIX + reason)


def _policy_values(policy: Mapping[str, Any] | None) -> tuple[int, bool, bool, bool, bool]:
    if policy is None:
        # Cognito's default policy for a pool created without one.
        return _DEFAULT_MIN_LENGTH, True, True, True, True
    # A pool that sets a policy gets False for every flag it leaves out, as Cognito does.
    min_length = policy.get("MinimumLength")
    return (
        int(min_length) if min_length is not None else _DEFAULT_MIN_LENGTH,
        bool(policy.get("RequireUppercase", False)),
        bool(policy.get("RequireLowercase", False)),
        bool(policy.get("RequireNumbers", False)),
        bool(policy.get("RequireSymbols", False)),
    )


def check_password_policy(password: str, policy: Mapping[str, Any] | None) -> None:
    """Raise :class:`InvalidPasswordException` if ``password`` breaks ``policy`` (Cognito's
    ``PasswordPolicyType``; ``None`` means Cognito's default policy).

    Limits that hold whatever the policy says come first (length 256, no leading or trailing
    whitespace, valid Unicode); then Cognito's checks in Cognito's order, reporting the first failure.
    """
    min_length, need_upper, need_lower, need_digit, need_symbol = _policy_values(policy)

    if len(password) > MAX_PASSWORD_LENGTH:
        raise _policy_error(f"Password must not be longer than {MAX_PASSWORD_LENGTH} characters")
    if password != password.strip():
        raise _policy_error("Password must not have leading or trailing whitespace")
    try:
        # Lone surrogates survive json.loads but not UTF-8; refuse them here rather than fail later
        # inside the hasher or the SRP verifier derivation.
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise _policy_error("Password contains invalid characters") from None

    chars = frozenset(password)
    if len(password) < min_length:
        raise _policy_error("Password not long enough")
    if need_upper and not chars & _UPPER:
        raise _policy_error("Password must have uppercase characters")
    if need_lower and not chars & _LOWER:
        raise _policy_error("Password must have lowercase characters")
    if need_digit and not chars & _DIGITS:
        raise _policy_error("Password must have numeric characters")
    if need_symbol and not chars & _SYMBOLS:
        raise _policy_error("Password must have symbol characters")


def password_requirements(policy: Mapping[str, Any] | None) -> tuple[int, bool, bool, bool, bool]:
    """What :func:`check_password_policy` asks of a password under ``policy``: (minimum length, uppercase,
    lowercase, number, symbol required)."""
    return _policy_values(policy)


def generate_temporary_password(policy: Mapping[str, Any] | None) -> str:
    """A random password that satisfies ``policy``, ``max(12, MinimumLength)`` characters long.

    It always holds an uppercase letter, a lowercase letter, a digit and a symbol, whatever the policy
    requires, so it stays valid if the pool's policy is tightened before the user signs in.
    """
    min_length = _policy_values(policy)[0]
    length = min(max(_TEMP_PASSWORD_MIN_LENGTH, min_length), MAX_PASSWORD_LENGTH)
    classes = (string.ascii_uppercase, string.ascii_lowercase, string.digits, _GENERATED_SYMBOLS)
    alphabet = "".join(classes)
    chars = [secrets.choice(cls) for cls in classes]
    chars += [secrets.choice(alphabet) for _ in range(length - len(chars))]
    # Shuffle so the guaranteed characters are not always the first four (which would cut entropy
    # and give the password a recognisable shape).
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)
