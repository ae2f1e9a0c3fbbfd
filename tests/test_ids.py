"""Identifiers: the token ids every token carries are random version-4 UUIDs in their canonical text."""

from __future__ import annotations

import base64
import os
import string
import threading
import uuid

from gateway.ids import new_jti, new_opaque_token, random_bytes


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


def test_random_bytes_are_never_handed_out_twice_across_threads() -> None:
    taken: list[bytes] = []

    def take() -> None:
        for _ in range(2000):
            taken.append(random_bytes(16))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 16000 and len(set(taken)) == 16000
    assert {len(chunk) for chunk in taken} == {16}
    assert len(random_bytes(10_000)) == 10_000  # more than one buffer's worth at once


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    random_bytes(1)  # the parent has bytes buffered now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bytes, to the parent
        os.close(read)
        os.write(write, random_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != random_bytes(32)


def test_opaque_tokens_are_url_safe_base64_of_their_bytes() -> None:
    token = new_opaque_token(32)
    assert len(token) == 43 and set(token) <= set(string.ascii_letters + string.digits + "-_")
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert len({new_opaque_token(32) for _ in range(1000)}) == 1000
