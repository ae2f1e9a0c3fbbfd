"""Identifiers in Cognito's forms: pool ids, client ids and secrets, subs, codes."""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import string
import threading
import uuid

_ALNUM = string.ascii_letters + string.digits
_CLIENT_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_pool_id(region: str) -> str:
    """``us-east-1_AbC123xYz``: the region, an underscore and nine letters or digits, as Cognito's."""
    return f"{region}_" + "".join(secrets.choice(_ALNUM) for _ in range(9))


def new_client_id() -> str:
    """26 lower-case letters and digits, as Cognito's app client ids."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(26))


def new_client_secret() -> str:
    """51 characters of base32-like text, as Cognito's client secrets."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(51))


def new_sub() -> str:
    return str(uuid.uuid4())


class _RandomBuffer:
    """Bytes from the OS's CSPRNG (``os.urandom``, as ``uuid.uuid4`` and ``secrets`` use), drawn 4 KiB at a
    time rather than one system call per identifier: every token issued takes a jti, and under load the call
    cost more than formatting the id. Each byte is handed out once; a forked child drops what its parent
    drew (``os.register_at_fork``), so worker processes never share bytes."""

    SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0
        os.register_at_fork(after_in_child=self._discard)

    def _discard(self) -> None:
        self._buffer, self._offset = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            offset = self._offset
            if offset + count > len(self._buffer):
                self._buffer, offset = os.urandom(max(self.SIZE, count)), 0
            self._offset = offset + count
            return self._buffer[offset : offset + count]


_RANDOM = _RandomBuffer()


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the OS's CSPRNG, through the shared buffer (identifiers, not keys or nonces)."""
    return _RANDOM.take(count)


# The RFC's variant (binary 10) in the high bits of octet 8: its first hex digit, by the random digit there.
_VARIANT_DIGIT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


def random_uuid() -> str:
    """A random (version 4, RFC 9562) UUID in its text form, like ``str(uuid.uuid4())``: the version and variant
    bits are set on the hex digits that hold them."""
    text = _RANDOM.take(16).hex()
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{_VARIANT_DIGIT[text[16]]}{text[17:20]}-{text[20:]}"


def new_jti() -> str:
    """A token id: a random UUID from the shared buffer (see :func:`random_uuid`)."""
    return random_uuid()


def new_code(digits: int = 6) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(digits))


def new_opaque_token(nbytes: int = 48) -> str:
    return secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    """How opaque tokens, sessions and codes are kept: only their SHA-256 (they carry enough entropy, or
    are short-lived and attempt-limited, so a slow hash would add nothing but latency). A value from the
    wire may hold lone surrogates (aiohttp decodes a header's undecodable bytes to them): hashed as they came,
    such a value matches nothing, instead of failing to encode."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class RequestIds:
    """UUID-shaped request ids (``x-amzn-RequestId``) that cost a counter increment, not a uuid4 each.

    The first four groups are random per process, the last is a per-process counter, so ids stay unique
    across ``--workers`` processes and restarts without reading the OS's random source on every request.
    """

    def __init__(self) -> None:
        prefix = uuid.uuid4().hex
        self._prefix = f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-{prefix[16:20]}-"
        self._counter = itertools.count(int.from_bytes(secrets.token_bytes(3), "big") << 24)

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"
