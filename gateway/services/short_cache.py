"""A per-process cache of store reads that live a couple of seconds, for records read on every call of a hot
path and changed rarely (identities, IAM roles), as :class:`~gateway.services.pools.PoolService` keeps pools.

What this process writes it drops at once (its writers call :meth:`ShortCache.clear`); what another process
writes is seen once the entry is older than ``seconds``, or at once when the cache follows a change stamp
(gateway/services/change_stamp.py) that the writer bumps. Bounded: when full, the oldest entry goes first.

A reader of a cache that follows a stamp takes :meth:`ShortCache.stamp` before its store read and gives it
back to :meth:`ShortCache.put`: a record read before a change that was stamped meanwhile is then not kept,
even when another call of this process has already seen the new stamp (the cache's own notion of "current"
has moved on by then, so it cannot tell by itself).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

from gateway.services.change_stamp import ChangeStamps

K = TypeVar("K")
V = TypeVar("V")


class ShortCache(Generic[K, V]):
    """Entries of at most ``seconds`` age, at most ``size`` of them."""

    def __init__(self, seconds: float, size: int = 4096, *, stamps: ChangeStamps | None = None, slot: int = 0) -> None:
        self._seconds = seconds
        self._size = size
        self.stamps = stamps
        self._slot = slot
        # The stamp every entry was read under: get() empties the cache when the stamp moved, and put() keeps
        # nothing read while it moved (a record read before a change must not be kept under the new stamp).
        self._stamp = stamps.read(slot) if stamps is not None else 0
        # Ordered by insertion: popitem(last=False) drops the oldest in O(1), where popping a plain dict's
        # first key scans past every slot emptied before it (microseconds per call once the cache churns).
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def _current(self) -> bool:
        """Whether the entries are still current by the stamp (emptied when they are not)."""
        if self.stamps is None:
            return True
        stamp = self.stamps.read(self._slot)
        if stamp == self._stamp:
            return True
        self._entries.clear()
        self._stamp = stamp
        return False

    def get(self, key: K) -> V | None:
        self._current()
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] >= self._seconds:
            self._entries.pop(key, None)
            return None
        return entry[1]

    def stamp(self) -> int:
        """The stamp to read a record under: taken before the store read, given to :meth:`put`."""
        return self.stamps.read(self._slot) if self.stamps is not None else 0

    def put(self, key: K, value: V, stamp: int | None = None) -> None:
        """Keep ``value``, read from the store after :meth:`stamp` answered ``stamp`` (a cache that follows a
        stamp needs it); nothing is kept when a change was stamped since, as the record may predate it."""
        if not self._current():
            return
        if stamp is not None and stamp != self._stamp:
            return
        entries = self._entries
        if key in entries:
            del entries[key]  # a fresh entry goes to the back, so the oldest is always first
        elif len(entries) >= self._size:
            entries.popitem(last=False)
        entries[key] = (time.monotonic(), value)

    def __len__(self) -> int:
        return len(self._entries)

    def drop(self, key: K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
