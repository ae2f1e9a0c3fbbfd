"""The server side of Cognito's SRP-6a sign-in (``USER_SRP_AUTH`` / ``PASSWORD_VERIFIER``).

SRP-6a is specified in RFC 5054 (with RFC 2945 before it); Cognito uses it with these choices, which the
clients fix and this module therefore copies byte for byte from amazon-cognito-identity-js
(``AuthenticationHelper.js``) and pycognito (``aws_srp.py``):

* group: the 3072-bit MODP prime of RFC 3526 §4 (also RFC 5054 Appendix A), generator g = 2;
* H = SHA-256 over the bytes of *padded hex*: a non-negative integer is written in lower-case hex,
  given a leading ``0`` if the length is odd, or ``00`` if the top bit of the first byte is set
  (the two's-complement byte form of Java's ``BigInteger.toByteArray``);
* k = H(pad(N) | pad(g));
* x = H(pad(salt) | H(poolName | username | ":" | password)), poolName being the part of the pool id
  after ``_``; v = g^x mod N;
* u = H(pad(A) | pad(B)); S = (A * v^u)^b mod N (the client gets the same S as (B - k*g^x)^(a + u*x));
* K = HKDF-SHA256 (RFC 5869) with ikm = pad(S), salt = pad(u), info = "Caldera Derived Key", 16 bytes;
* the client proves it knows K with PASSWORD_CLAIM_SIGNATURE =
  base64(HMAC-SHA256(K, poolName | username | SECRET_BLOCK bytes | TIMESTAMP)).

The username throughout is the one the server announces as ``USER_ID_FOR_SRP``: derive the verifier
with exactly that string (the pool's canonical, stored username), or no client can ever sign in.

The server never sees the password during SRP sign-in; it stores only (salt, v). As RFC 5054 §2.5.4
requires, a client value A with A % N == 0 is refused (it would force S = 0, and anyone could then
compute K without the password), and so is u == 0.

Exponentiation in a 3072-bit group is slow in pure Python (a few ms each); gmpy2 (GMP) is used when
installed, about 8x faster, and the secret exponents (x, b) go through GMP's ``mpz_powm_sec``, whose
timing does not depend on the exponent. Without gmpy2 the built-in ``pow`` is used, which is correct
but neither as fast nor constant-time. Either way this is CPU work: call it from an executor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "HAVE_GMPY2",
    "N_HEX",
    "SrpServerChallenge",
    "SrpVerifier",
    "derive_srp_verifier",
    "fake_srp_challenge",
    "fake_srp_verifier",
    "format_srp_timestamp",
    "parse_srp_timestamp",
    "start_srp",
    "verify_device_claim",
    "verify_password_claim",
]

_PowMod = Callable[[int, int, int], int]


def _py_powmod(base: int, exp: int, mod: int) -> int:
    return pow(base, exp, mod)


def _load_powmod() -> tuple[_PowMod, _PowMod, bool]:
    """(powmod for public exponents, powmod for secret exponents, whether gmpy2 is in use)."""
    try:
        import gmpy2  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return _py_powmod, _py_powmod, False

    def gmp_powmod(base: int, exp: int, mod: int) -> int:
        return int(gmpy2.powmod(base, exp, mod))

    def gmp_powmod_sec(base: int, exp: int, mod: int) -> int:
        # mpz_powm_sec wants a positive exponent and an odd modulus; N is odd, and an exponent of 0
        # (a SHA-256 output of zero) will not happen, but must not crash if it did.
        if exp <= 0:
            return pow(base, exp, mod)
        return int(gmpy2.powmod_sec(base, exp, mod))

    return gmp_powmod, gmp_powmod_sec, True


_powmod, _powmod_secret, HAVE_GMPY2 = _load_powmod()

# RFC 3526 §4, the 3072-bit MODP group; the same digits as amazon-cognito-identity-js and pycognito.
N_HEX: Final = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D"
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9"
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64"
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B"
    "F12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31"
    "43DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)
_N: Final = int(N_HEX, 16)
_G: Final = 2
_SALT_BYTES: Final = 16
_B_BITS: Final = 256
_SECRET_BLOCK_BYTES: Final = 64
_HKDF_INFO: Final = b"Caldera Derived Key"
_HKDF_LENGTH: Final = 16
# A is at most N - 1, i.e. 768 hex digits; anything much longer is refused before int() parses it.
_MAX_A_HEX_DIGITS: Final = 1024
_HEX: Final = re.compile(r"[0-9a-fA-F]+")
_FAKE_INFO: Final = b"gatehouse/srp/fake-verifier/v1"

# Fixed English names: strftime's %a and %b follow the process locale, the clients' never do.
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TIMESTAMP: Final = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) "
    r"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) {1,2}"
    r"(?P<day>\d{1,2}) (?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) UTC (?P<year>\d{4})"
)


def _pad_hex(value: int) -> str:
    """pycognito's ``pad_hex`` / the JS helper's ``padHex`` for a non-negative integer."""
    digits = f"{value:x}"
    if len(digits) % 2:
        return "0" + digits
    if digits[0] in "89abcdef":
        return "00" + digits
    return digits


def _hash_hex(hex_string: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_string)).hexdigest()


def _hash_to_int(hex_string: str) -> int:
    return int(_hash_hex(hex_string), 16)


_K: Final = _hash_to_int(_pad_hex(_N) + _pad_hex(_G))


def _pool_name(pool_id: str) -> str:
    # The clients take pool_id.split("_")[1]; so must we, even for an odd id.
    parts = pool_id.split("_")
    if len(parts) < 2 or not parts[1]:
        raise ValueError(f"not a user pool id: {pool_id!r}")
    return parts[1]


def _canonical_salt_hex(salt_hex: str) -> str:
    # The JS and Android clients parse SALT into a big integer before padding it, pycognito pads the
    # string as sent; both agree only when the salt is already in padded form, so always send that.
    return _pad_hex(int(salt_hex, 16))


def _compute_x(pool_id: str, username: str, password: str, salt_hex: str) -> int:
    identity = f"{_pool_name(pool_id)}{username}:{password}".encode()
    return _hash_to_int(_canonical_salt_hex(salt_hex) + hashlib.sha256(identity).hexdigest())


@dataclass(frozen=True)
class SrpVerifier:
    """What the server stores instead of a password for SRP: the salt and v = g^x mod N, padded hex."""

    salt_hex: str
    verifier_hex: str


@dataclass(frozen=True)
class SrpServerChallenge:
    """One PASSWORD_VERIFIER challenge. ``b_hex`` is secret and single-use: keep it in the server-side
    session (sealed, e.g. with :class:`gateway.secretbox.SecretBox`), never send it, never reuse it."""

    b_hex: str
    B_hex: str
    salt_hex: str
    secret_block: str


def derive_srp_verifier(pool_id: str, username: str, password: str) -> SrpVerifier:
    """A fresh salt and the SRP verifier for ``password``. ``username`` must be the USER_ID_FOR_SRP."""
    salt_hex = _pad_hex(int.from_bytes(secrets.token_bytes(_SALT_BYTES), "big"))
    x = _compute_x(pool_id, username, password, salt_hex)
    return SrpVerifier(salt_hex=salt_hex, verifier_hex=_pad_hex(_powmod_secret(_G, x, _N)))


def start_srp(verifier: SrpVerifier) -> SrpServerChallenge:
    """Pick the server's ephemeral b and compute B = (k*v + g^b) mod N (RFC 5054 §2.5.3)."""
    v = int(verifier.verifier_hex, 16)
    while True:
        b = secrets.randbits(_B_BITS)
        if b == 0:
            continue
        big_b = (_K * v + _powmod_secret(_G, b, _N)) % _N
        # The client refuses B % N == 0 (it would reveal nothing but end the sign-in); pick again.
        if big_b != 0:
            break
    return SrpServerChallenge(
        b_hex=_pad_hex(b),
        # Unpadded, like the SRP_A the clients send; every client parses it as a number.
        B_hex=f"{big_b:x}",
        salt_hex=_canonical_salt_hex(verifier.salt_hex),
        secret_block=base64.b64encode(secrets.token_bytes(_SECRET_BLOCK_BYTES)).decode("ascii"),
    )


def fake_srp_verifier(pool_id: str, username: str, server_secret: bytes) -> SrpVerifier:
    """A stable stand-in verifier for a user that does not exist.

    Salt and v are derived from ``server_secret`` with HKDF, so the same unknown username gets the same
    SALT on every attempt (a fresh random salt each time would reveal that the user is not real), while
    nobody without the secret can tell it from a real one. No password matches it.
    """
    # Length-prefix the pool id so that no (pool, user) pair can collide with another one; the username
    # comes straight from the request, so encode even a lone surrogate instead of failing on it.
    pool = pool_id.encode(errors="surrogatepass")
    info = _FAKE_INFO + len(pool).to_bytes(4, "big") + pool + username.encode(errors="surrogatepass")
    # 16 bytes of salt, then 64 bytes more than N so that v is uniform modulo N.
    okm = HKDF(algorithm=hashes.SHA256(), length=_SALT_BYTES + 384 + 64, salt=None, info=info).derive(server_secret)
    salt_hex = _pad_hex(int.from_bytes(okm[:_SALT_BYTES], "big"))
    v = int.from_bytes(okm[_SALT_BYTES:], "big") % _N or 1
    return SrpVerifier(salt_hex=salt_hex, verifier_hex=_pad_hex(v))


def fake_srp_challenge(pool_id: str, username: str, server_secret: bytes) -> SrpServerChallenge:
    """A PASSWORD_VERIFIER challenge for an unknown user: same salt every time, fresh random B, and the
    same work as :func:`start_srp` so it costs the same time. To make the answer step cost the same too,
    run :func:`verify_password_claim` against :func:`fake_srp_verifier` (it always returns False)."""
    return start_srp(fake_srp_verifier(pool_id, username, server_secret))


def verify_password_claim(
    *,
    pool_id: str,
    username: str,
    verifier: SrpVerifier,
    challenge: SrpServerChallenge,
    srp_a_hex: str,
    timestamp: str,
    claim_signature_b64: str,
) -> bool:
    """Whether PASSWORD_CLAIM_SIGNATURE proves the client knows the password behind ``verifier``.

    ``srp_a_hex`` is the SRP_A of the InitiateAuth request that got ``challenge``; ``username`` is the
    USER_ID_FOR_SRP that was announced. Only the signature is checked here: the caller must also make
    sure the challenge is used once and that ``timestamp`` is recent (see :func:`parse_srp_timestamp`).
    Every client-supplied malformation (bad hex, bad base64, out-of-range A) yields False.
    """
    return _verify_claim(
        group=_pool_name(pool_id),
        username=username,
        verifier=verifier,
        challenge=challenge,
        srp_a_hex=srp_a_hex,
        timestamp=timestamp,
        claim_signature_b64=claim_signature_b64,
    )


def verify_device_claim(
    *,
    device_group_key: str,
    device_key: str,
    verifier: SrpVerifier,
    challenge: SrpServerChallenge,
    srp_a_hex: str,
    timestamp: str,
    claim_signature_b64: str,
) -> bool:
    """Whether a DEVICE_PASSWORD_VERIFIER signature proves the client holds the device's secret.

    Device SRP is the same protocol with the device group key in the place of the pool name and the device key
    in the place of the username (amazon-cognito-identity-js ``getDeviceResponse``: ``new
    AuthenticationHelper(deviceGroupKey)``, x over ``deviceGroupKey | deviceKey ":" randomPassword``, the
    signature over ``deviceGroupKey | deviceKey | SECRET_BLOCK | TIMESTAMP``); ``verifier`` is what the client
    sent to ConfirmDevice."""
    return _verify_claim(
        group=device_group_key,
        username=device_key,
        verifier=verifier,
        challenge=challenge,
        srp_a_hex=srp_a_hex,
        timestamp=timestamp,
        claim_signature_b64=claim_signature_b64,
    )


def _verify_claim(
    *,
    group: str,
    username: str,
    verifier: SrpVerifier,
    challenge: SrpServerChallenge,
    srp_a_hex: str,
    timestamp: str,
    claim_signature_b64: str,
) -> bool:
    if len(srp_a_hex) > _MAX_A_HEX_DIGITS or not _HEX.fullmatch(srp_a_hex):
        return False
    big_a = int(srp_a_hex, 16)
    # RFC 5054 §2.5.4: A % N == 0 would make S = 0 whatever the password. Values at or above N are
    # never produced by a client (A = g^a mod N), so refuse them too rather than reason about them.
    if big_a % _N == 0 or big_a >= _N:
        return False
    big_b = int(challenge.B_hex, 16)
    b = int(challenge.b_hex, 16)
    v = int(verifier.verifier_hex, 16)

    u = _hash_to_int(_pad_hex(big_a) + _pad_hex(big_b))
    if u == 0:
        return False
    s = _powmod_secret(big_a * _powmod(v, u, _N) % _N, b, _N)
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=_HKDF_LENGTH,
        salt=bytes.fromhex(_pad_hex(u)),
        info=_HKDF_INFO,
    ).derive(bytes.fromhex(_pad_hex(s)))

    try:
        message = group.encode() + username.encode() + base64.b64decode(challenge.secret_block) + timestamp.encode()
        claimed = base64.b64decode(claim_signature_b64, validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return False
    expected = hmac.new(key, message, hashlib.sha256).digest()
    return hmac.compare_digest(expected, claimed)


def format_srp_timestamp(dt: datetime) -> str:
    """Cognito's TIMESTAMP form, e.g. ``Tue Nov 3 21:05:02 UTC 2026`` (day not zero-padded).

    A naive ``dt`` is taken to be UTC, as pycognito's ``utcnow()`` is.
    """
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC)
    return (
        f"{_WEEKDAYS[dt.weekday()]} {_MONTHS[dt.month - 1]} {dt.day} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} UTC {dt.year}"
    )


def parse_srp_timestamp(s: str) -> datetime | None:
    """The aware UTC datetime of a TIMESTAMP, or None if it is not in Cognito's form.

    A zero-padded day is accepted too (older clients sent one). The weekday name is checked for form
    only: the signature covers the exact string, and only the date and time matter for freshness.
    """
    match = _TIMESTAMP.fullmatch(s)
    if match is None:
        return None
    try:
        return datetime(
            int(match["year"]),
            _MONTHS.index(match["month"]) + 1,
            int(match["day"]),
            int(match["h"]),
            int(match["m"]),
            int(match["s"]),
            tzinfo=UTC,
        )
    except ValueError:
        return None
