"""A worker's memory of signed OCSP responses, bounded in entries and in bytes.

Written here rather than taken from cachetools: reads come from the event loop and must not
lock or reorder anything (a plain dict read is atomic under the GIL), while cachetools' LRU
reorders on every read and leaves locking to its user.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")

# What a dict slot, the key's tuple or bytes object and the value's object cost beyond the
# bytes counted, roughly: so that many tiny entries are bounded too.
ENTRY_OVERHEAD = 200


class ResponseMemory(Generic[Key, Value]):
    """At most `max_entries` values and `max_bytes` of them; the one stored longest ago goes
    first. Storing a key again makes it the newest."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._values: dict[Key, tuple[Value, int]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Key) -> Value | None:
        """The value stored for `key`, else None (never blocks)."""
        entry = self._values.get(key)
        return None if entry is None else entry[0]

    def put(self, key: Key, value: Value, size: int) -> None:
        """Store `value`, which costs `size` bytes, forgetting the oldest beyond the bounds."""
        cost = size + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return
        with self._lock:
            previous = self._values.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            while self._values and (
                len(self._values) >= self.max_entries or self._bytes + cost > self.max_bytes
            ):
                # Dicts keep insertion order: the first was stored longest ago.
                oldest = next(iter(self._values))
                self._bytes -= self._values.pop(oldest)[1]
            self._values[key] = (value, cost)
            self._bytes += cost

    def __len__(self) -> int:
        return len(self._values)

    @property
    def bytes(self) -> int:
        """What the stored values cost, as counted by `put`."""
        return self._bytes
