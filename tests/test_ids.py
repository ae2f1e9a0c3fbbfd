"""Identifiers: the token ids every token carries are random version-4 UUIDs in their canonical text."""

from __future__ import annotations

import base64
import string
import uuid

from gateway.ids import new_jti, new_opaque_token


def test_new_jti_is_a_canonical_random_uuid() -> None:
    seen = set()
    for _ in range(2000):
        jti = new_jti()
        parsed = uuid.UUID(jti)
        # The canonical form (lower-case, dashed) that str(uuid.uuid4()) writes, with the version and variant set.
        assert str(parsed) == jti
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(jti)
    assert len(seen) == 2000  # 122 random bits: a repeat would mean the randomness is broken


def test_opaque_tokens_are_url_safe_base64_of_their_bytes() -> None:
    token = new_opaque_token(32)
    assert len(token) == 43 and set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert len({new_opaque_token(32) for _ in range(1000)}) == 1000
