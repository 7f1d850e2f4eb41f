"""Which monitors are due, found through a heap keyed by due time instead of a full scan.

Each key has at most one live due time. Rescheduling or removing a key does not search the
heap: it bumps the key's sequence number, and heap entries with an old number are skipped
(and counted) when they surface. The heap is rebuilt once stale entries outnumber live ones,
so its size stays within twice the number of scheduled keys (plus one).

``pop_due(now)`` returns keys due at or before ``now``, earliest first, and unschedules them:
the caller evaluates each and schedules it again with its next due time. After a restart,
``from_states`` rebuilds the index from the stored monitor states' next due times; keys that
fell due while the processor was down come out of the first ``pop_due``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from datetime import datetime


class DueIndex:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int, str]] = []
        self._live: dict[str, tuple[datetime, int]] = {}
        self._seq = itertools.count()
        self.touched = 0
        """Heap entries examined by ``pop_due`` (live or stale): the cost of finding due keys."""

    @classmethod
    def from_states(cls, due_times: Iterable[tuple[str, datetime | None]]) -> DueIndex:
        """An index of every key with a due time; keys with ``None`` are not scheduled."""
        index = cls()
        for key, due_at in due_times:
            index.schedule(key, due_at)
        return index

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def due_at(self, key: str) -> datetime | None:
        entry = self._live.get(key)
        return None if entry is None else entry[0]

    def schedule(self, key: str, due_at: datetime | None) -> None:
        """Set (or replace) the due time of ``key``; ``None`` removes it."""
        if due_at is None:
            self.remove(key)
            return
        seq = next(self._seq)
        self._live[key] = (due_at, seq)
        heapq.heappush(self._heap, (due_at, seq, key))
        self._compact()

    def remove(self, key: str) -> None:
        self._live.pop(key, None)
        self._compact()

    def next_due(self) -> datetime | None:
        """The earliest live due time, dropping stale entries from the top of the heap."""
        while self._heap and not self._is_live(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> list[str]:
        due: list[str] = []
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            self.touched += 1
            if self._is_live(entry):
                del self._live[entry[2]]
                due.append(entry[2])
        return due

    def _is_live(self, entry: tuple[datetime, int, str]) -> bool:
        live = self._live.get(entry[2])
        return live is not None and live[1] == entry[1]

    def _compact(self) -> None:
        if len(self._heap) > 2 * len(self._live) + 1:
            self._heap = [(due_at, seq, key) for key, (due_at, seq) in self._live.items()]
            heapq.heapify(self._heap)
