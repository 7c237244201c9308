"""Short-lived notes the handlers keep between calls, so unchanged work costs no API call.

Every note is a hint with a shelf life: it reads as absent once older than its
map's `Notes.ttl`, so whatever it saves is done again at least that often (and
after a restart, when every note is gone). Notes of objects that are gone are
never asked for again; they are dropped once the map grows past `Notes.limit`,
so the memory stays bounded however many objects come and go.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Notes"]

V = TypeVar("V")


class Notes(Generic[V]):
    """Values by key, each with the time it was noted; older than `ttl` seconds reads as absent."""

    def __init__(
        self, ttl: float, *, limit: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.limit = limit
        self._clock = clock
        self._notes: dict[Hashable, tuple[V, float]] = {}
        self._pruned = -math.inf

    def get(self, key: Hashable) -> V | None:
        """The value noted for `key` less than `ttl` seconds ago, else None."""
        found = self._notes.get(key)
        if found is None or self._clock() - found[1] >= self.ttl:
            return None
        return found[0]

    def put(self, key: Hashable, value: V) -> None:
        """Note `value` for `key` as of now.

        Over the limit, expired notes are dropped first, at most once a `ttl`: a map
        of live notes over the limit is not scanned on every write.
        """
        now = self._clock()
        if len(self._notes) >= self.limit and now - self._pruned >= self.ttl:
            self._pruned = now
            for stale in [k for k, (_, at) in self._notes.items() if now - at >= self.ttl]:
                del self._notes[stale]
        self._notes[key] = (value, now)

    def forget(self, key: Hashable) -> None:
        """Drop the note for `key`, if any."""
        self._notes.pop(key, None)

    def __len__(self) -> int:
        return len(self._notes)
