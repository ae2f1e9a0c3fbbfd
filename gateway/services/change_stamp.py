"""Change stamps: how the processes that share a store learn at once that a cached setting changed.

Each process keeps the pools, app clients, identity pools, IAM roles and threat-protection settings it
read for a couple of seconds, and signing keys for the key cache time (they are read by every call and
change rarely). Some changes must hold everywhere at once: a deleted app client must not sign anyone in,
narrowed auth flows or a removed callback URL must not be honoured, an identity pool's new roles must be the
ones handed out, a key retired because it leaked (``gatehouse keys rotate --now --retire-old``) must neither
vouch for tokens nor sign. A writer therefore stamps the change in a small memory-mapped file beside the
database, after the store has committed it, and every reader compares the stamp it cached an entry under with
the current one: a plain memory read (about a hundred nanoseconds), no store round trip on the hot paths.

Every process that opens the same database maps the same file (``gatehouse serve --workers N`` and the
``gatehouse`` commands alike), so a change is seen by all of them at once. A stamp is a fresh random
64-bit value, never a counter: two writers racing cannot leave it where a reader saw it before, and a torn
read only makes a reader read the store again. Servers on other machines share a PostgreSQL store instead:
each bump is also published to them (``publish``, the store's NOTIFY) and each received one bumps the local
stamps (``receive``), a few milliseconds later.

Users have slots of their own (:func:`user_slot`, a hash of pool and username key): the SQLite store bumps a
user's slot after committing any change to the user, to one of the user's token families or to the user's
groups, so a process can keep a session's family, user and groups in memory and still refuse a revoked token, a
disabled user or a changed attribute or group at once, in every process (``SqliteStore.get_token_family_with_user``,
``list_groups_for_user``). Several users share a slot;
a change to one only makes the others be read again.
"""

from __future__ import annotations

import mmap
import os
import secrets
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Final

__all__ = ["IDENTITIES", "KEYS", "SETTINGS", "SLOT_COUNT", "USER_SLOTS", "ChangeStamps", "user_slot"]

# Slots of the stamp file: what changed. Identities change with every new sign-in to an identity pool and
# must not make every process drop its pools, so they have a slot of their own; signing keys change with a
# rotation or a deleted pool, and reading them again costs more than a pool, so they have theirs.
SETTINGS: Final = 0
IDENTITIES: Final = 1
KEYS: Final = 2
# The settings slots: what a server that lost touch with the others marks changed (the PostgreSQL store).
SLOT_COUNT: Final = 3
# The users' slots follow them. 16,384 of them: a 128 KiB file, and a user write makes ~1/16,384 of the cached
# sessions be read again.
USER_SLOTS: Final = 16384
_SLOTS: Final = SLOT_COUNT + USER_SLOTS
_SIZE: Final = 8 * _SLOTS
_SLOT = struct.Struct("<Q")


def user_slot(pool_id: str, username_key: str) -> int:
    """The slot of one user: the same in every process (CRC-32, not Python's per-process salted ``hash``)."""
    return SLOT_COUNT + zlib.crc32(f"{pool_id}/{username_key}".encode()) % USER_SLOTS


class ChangeStamps:
    """The stamps of one store: shared through ``path`` when given, else this process's own."""

    def __init__(self, path: Path | None = None) -> None:
        self._map: mmap.mmap | bytearray
        # The value of each slot this process last read, and what to call when a read finds it changed: the
        # store's reads of one turn of the event loop share a snapshot, which may have begun before the change
        # it stamps was committed; a record read from it and cached under the new stamp would stay stale.
        self._seen = [0] * _SLOTS
        self.on_news: Callable[[], None] | None = None
        # Told of every bump, to pass it on to servers on other machines (the PostgreSQL store's NOTIFY); what
        # they pass back comes in through :meth:`receive`.
        self.publish: Callable[[int], None] | None = None
        if path is None:
            self._map = bytearray(_SIZE)
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _SIZE:
                # Grows the file with zero bytes; a process that raced here did the same, nothing is lost.
                os.ftruncate(fd, _SIZE)
            self._map = mmap.mmap(fd, _SIZE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)  # the mapping keeps the file

    @classmethod
    def beside(cls, database: str | os.PathLike[str]) -> ChangeStamps:
        """The stamps shared by every process that opens ``database`` (a file path; else process-local)."""
        text = os.fspath(database)
        if not text or text == ":memory:" or text.startswith("file:"):
            return cls()
        return cls(Path(text + "-stamps"))

    def read(self, slot: int = SETTINGS) -> int:
        """The current stamp of ``slot``: read it before reading the store, cache the record under it. A stamp
        this process has not seen before first calls ``on_news`` (the store ends its read snapshot, so the read
        that follows sees the change)."""
        return self.read_news(slot)[0]

    def read_news(self, slot: int) -> tuple[int, bool]:
        """:meth:`read`, and whether the stamp was news to this process: then ``on_news`` ended the store's
        read snapshot, and a record read from it before this call may predate the change; read it again."""
        value = int(_SLOT.unpack_from(self._map, slot * 8)[0])
        news = value != self._seen[slot]
        if news:
            self._seen[slot] = value
            if self.on_news is not None:
                self.on_news()
        return value, news

    def bump(self, slot: int = SETTINGS) -> None:
        """Record a change of ``slot``, after the store committed it (then no reader can cache the old record
        under the new stamp)."""
        _SLOT.pack_into(self._map, slot * 8, secrets.randbits(64))
        if self.publish is not None:
            self.publish(slot)

    def receive(self, slot: int) -> None:
        """Record a change of ``slot`` another server made (and published): as :meth:`bump`, not passed on."""
        if 0 <= slot < _SLOTS:
            _SLOT.pack_into(self._map, slot * 8, secrets.randbits(64))
