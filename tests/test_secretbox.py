"""SecretBox: AES-256-GCM sealing of small secrets at rest."""

from __future__ import annotations

import base64

import pytest

from gateway.secretbox import SecretBox, SecretBoxError


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(SecretBox.generate_key())


def test_generate_key_is_32_random_bytes() -> None:
    k1, k2 = SecretBox.generate_key(), SecretBox.generate_key()
    assert len(k1) == 32
    assert k1 != k2


@pytest.mark.parametrize("key", [b"", b"x" * 16, b"x" * 31, b"x" * 33, b"x" * 64])
def test_key_must_be_32_bytes(key: bytes) -> None:
    with pytest.raises(ValueError):
        SecretBox(key)


def test_key_must_be_bytes() -> None:
    with pytest.raises(ValueError):
        SecretBox("x" * 32)  # type: ignore[arg-type]


def test_repr_hides_key() -> None:
    key = b"K" * 32
    assert "KKKK" not in repr(SecretBox(key))


@pytest.mark.parametrize("plaintext", [b"", b"a", b"JBSWY3DPEHPK3PXP", bytes(range(256)) * 4])
def test_round_trip(box: SecretBox, plaintext: bytes) -> None:
    sealed = box.seal(plaintext)
    assert isinstance(sealed, str)
    assert box.open(sealed) == plaintext


def test_round_trip_with_aad(box: SecretBox) -> None:
    sealed = box.seal(b"totp-seed", aad=b"user:42:totp")
    assert box.open(sealed, aad=b"user:42:totp") == b"totp-seed"


def test_format_is_urlsafe_unpadded_version_nonce_ciphertext_tag(box: SecretBox) -> None:
    plaintext = b"hello world"
    sealed = box.seal(plaintext)
    assert "=" not in sealed and "+" not in sealed and "/" not in sealed
    raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    assert raw[0] == 1
    assert len(raw) == 1 + 12 + len(plaintext) + 16
    assert plaintext not in raw


def test_each_seal_uses_a_fresh_nonce(box: SecretBox) -> None:
    sealed = {box.seal(b"same") for _ in range(50)}
    assert len(sealed) == 50


def test_wrong_aad_is_rejected(box: SecretBox) -> None:
    sealed = box.seal(b"secret", aad=b"user:1")
    with pytest.raises(SecretBoxError):
        box.open(sealed, aad=b"user:2")
    with pytest.raises(SecretBoxError):
        box.open(sealed)


def test_missing_aad_is_rejected(box: SecretBox) -> None:
    sealed = box.seal(b"secret")
    with pytest.raises(SecretBoxError):
        box.open(sealed, aad=b"anything")


def test_wrong_key_is_rejected(box: SecretBox) -> None:
    sealed = box.seal(b"secret")
    with pytest.raises(SecretBoxError):
        SecretBox(SecretBox.generate_key()).open(sealed)


def _flip(sealed: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_every_tampered_byte_is_rejected(box: SecretBox) -> None:
    sealed = box.seal(b"0123456789")
    raw_len = 1 + 12 + 10 + 16
    for index in range(raw_len):
        with pytest.raises(SecretBoxError):
            box.open(_flip(sealed, index))


def test_truncated_and_extended_are_rejected(box: SecretBox) -> None:
    sealed = box.seal(b"0123456789")
    raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    for bad in (raw[:-1], raw[:29], raw + b"\x00"):
        with pytest.raises(SecretBoxError):
            box.open(base64.urlsafe_b64encode(bad).rstrip(b"=").decode())


def test_unknown_version_is_rejected(box: SecretBox) -> None:
    sealed = box.seal(b"x")
    raw = bytearray(base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4)))
    raw[0] = 2
    with pytest.raises(SecretBoxError):
        box.open(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode())


@pytest.mark.parametrize(
    "garbage",
    ["", "A", "AAAA", "not base64!", "====", "a b c d", "é" * 40, "+" * 60, "/" * 60, "A" * 41, "A" * 80],
)
def test_garbage_is_rejected(box: SecretBox, garbage: str) -> None:
    with pytest.raises(SecretBoxError):
        box.open(garbage)


def test_padded_or_non_canonical_alphabet_is_rejected(box: SecretBox) -> None:
    sealed = box.seal(b"x" * 7)
    with pytest.raises(SecretBoxError):
        box.open(sealed + "=" * (-len(sealed) % 4 or 4))
    with pytest.raises(SecretBoxError):
        box.open(sealed.replace("-", "+").replace("_", "/") + "\n")


@pytest.mark.parametrize("length", [2, 3])  # sealed lengths leaving 4 and 2 unused bits in the last character
def test_non_canonical_last_character_is_rejected(box: SecretBox, length: int) -> None:
    # Decoding ignores the last character's unused low bits: each other value of them is another text for
    # the same bytes, and must not open (a session token must not change and still authenticate).
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    plaintext = b"x" * length
    sealed = box.seal(plaintext)
    assert len(sealed) % 4 in (2, 3)
    unused_bits = 4 if len(sealed) % 4 == 2 else 2
    last = alphabet.index(sealed[-1])
    for low in range(1, 2**unused_bits):
        variant = sealed[:-1] + alphabet[last ^ low]
        assert base64.urlsafe_b64decode(variant + "=" * (-len(variant) % 4)) == base64.urlsafe_b64decode(
            sealed + "=" * (-len(sealed) % 4)
        )
        with pytest.raises(SecretBoxError):
            box.open(variant)
    assert box.open(sealed) == plaintext


def test_length_one_mod_four_is_rejected(box: SecretBox) -> None:
    sealed = box.seal(b"x")  # 30 bytes: a multiple of 3, so a length multiple of 4
    assert len(sealed) % 4 == 0
    with pytest.raises(SecretBoxError):
        box.open(sealed + "A")


def test_secretbox_error_is_a_value_error() -> None:
    assert issubclass(SecretBoxError, ValueError)
