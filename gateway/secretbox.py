"""Authenticated encryption of small secrets at rest (TOTP seeds, SRP server secrets, upstream IdP tokens).

The construction is AES-256-GCM (NIST SP 800-38D) as exposed by ``cryptography``'s ``AESGCM``; it follows
the OWASP Cryptographic Storage Cheat Sheet: an AEAD mode, a 256-bit key kept outside the data it
protects, and a fresh random 96-bit nonce per message.

Wire format (url-safe base64 without ``=`` padding, so a sealed value fits in a URL, a cookie or a
TEXT column unchanged)::

    version (1 byte, 0x01) | nonce (12 bytes) | ciphertext | GCM tag (16 bytes)

The version byte exists so keys or algorithms can be rotated later without guessing what an old row
holds; it is also fed to GCM as associated data, so it cannot be altered without detection.

The caller's ``aad`` binds a ciphertext to its context (for example ``b"user:<sub>:totp"``): a sealed
value copied into another row or column then fails to open instead of silently decrypting there.

Random 96-bit nonces are safe for up to 2**32 messages under one key (SP 800-38D §8.3); rotate the key
long before a single deployment gets anywhere near that.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["SecretBox", "SecretBoxError"]

_VERSION: Final = b"\x01"
_KEY_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_MIN_SEALED_BYTES: Final = len(_VERSION) + _NONCE_BYTES + _TAG_BYTES
# urlsafe_b64decode silently skips characters outside its alphabet; checking first keeps to the one
# alphabet and rejects garbage (whitespace, '+', '/', '=') instead of half-reading it.
_URLSAFE_B64: Final = re.compile(r"[A-Za-z0-9_-]*")


class SecretBoxError(ValueError):
    """A sealed value could not be opened: tampered, truncated, not ours, wrong key or wrong aad.

    Deliberately one error for every cause, so nothing about the failure leaks to a caller or an attacker.
    """


class SecretBox:
    """Seal and open small secrets with one AES-256-GCM key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != _KEY_BYTES:
            raise ValueError(f"SecretBox key must be exactly {_KEY_BYTES} bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        # Never show key material, even in a traceback or a debug log.
        return "SecretBox(<key hidden>)"

    @classmethod
    def generate_key(cls) -> bytes:
        """A fresh 256-bit key from the OS CSPRNG."""
        return secrets.token_bytes(_KEY_BYTES)

    def seal(self, plaintext: bytes, *, aad: bytes = b"") -> str:
        """Encrypt and authenticate ``plaintext``; ``aad`` is authenticated but not stored."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        body = self._aead.encrypt(nonce, plaintext, _VERSION + aad)
        raw = _VERSION + nonce + body
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def open(self, sealed: str, *, aad: bytes = b"") -> bytes:
        """Decrypt a value made by :meth:`seal` with the same key and ``aad``.

        Raises :class:`SecretBoxError` if it was altered, is malformed, or the key or ``aad`` differ.
        """
        # One text per value: a length of 1 mod 4 encodes no whole byte, and the last character's unused
        # low bits must be zero (RFC 4648 §3.5, "canonical encoding"). Decoding ignores those bits, so
        # without the re-encoding check several texts would open to the same value, and a sealed value
        # (a session token) could be changed without failing to open.
        if not isinstance(sealed, str) or not _URLSAFE_B64.fullmatch(sealed) or len(sealed) % 4 == 1:
            raise SecretBoxError("sealed value is not url-safe base64")
        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        except (binascii.Error, ValueError) as exc:
            raise SecretBoxError("sealed value is not url-safe base64") from exc
        if base64.urlsafe_b64encode(raw).rstrip(b"=") != sealed.encode("ascii"):
            raise SecretBoxError("sealed value is not canonical url-safe base64")
        if len(raw) < _MIN_SEALED_BYTES:
            raise SecretBoxError("sealed value is too short")
        if raw[:1] != _VERSION:
            raise SecretBoxError("sealed value has an unknown version")
        nonce = raw[1 : 1 + _NONCE_BYTES]
        body = raw[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, _VERSION + aad)
        except InvalidTag as exc:
            raise SecretBoxError("sealed value failed authentication") from exc
