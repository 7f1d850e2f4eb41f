"""The send queue's policy: bounded in events and bytes, dropping the oldest when full. Pure.

Not thread-safe: the client guards it with its lock. Every entry gets a sequence number
when it is put, so ``flush`` can wait for "everything put before now" by number.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    at: float
    data: bytes


class DropOldest:
    def __init__(self, max_events: int, max_bytes: int) -> None:
        if max_events < 1 or max_bytes < 1:
            raise ValueError("the queue needs room for at least one event and one byte")
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.dropped = 0
        self._items: deque[Entry] = deque()
        self._bytes = 0
        self._next_seq = 1

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def last_seq(self) -> int:
        """The number of the newest entry ever put (0 before the first)."""
        return self._next_seq - 1

    def first_seq(self) -> int | None:
        return self._items[0].seq if self._items else None

    def oldest_at(self) -> float | None:
        return self._items[0].at if self._items else None

    def put(self, data: bytes, at: float) -> int:
        """Append ``data``; returns how many entries were dropped to make room.

        An entry larger than the whole byte budget is dropped itself (and counted)."""
        entry = Entry(self._next_seq, at, data)
        self._next_seq += 1
        if len(data) > self.max_bytes:
            self.dropped += 1
            return 1
        dropped = 0
        while self._items and (
            len(self._items) >= self.max_events or self._bytes + len(data) > self.max_bytes
        ):
            self._bytes -= len(self._items.popleft().data)
            dropped += 1
        self._items.append(entry)
        self._bytes += len(data)
        self.dropped += dropped
        return dropped

    def take(self, max_events: int, max_bytes: int) -> list[Entry]:
        """The oldest entries, at most ``max_events`` whose JSON array fits ``max_bytes``;
        at least one, however large."""
        out: list[Entry] = []
        size = 1  # "[" + each entry with its "," or "]"
        while self._items and len(out) < max_events:
            nxt = len(self._items[0].data) + 1
            if out and size + nxt > max_bytes:
                break
            entry = self._items.popleft()
            self._bytes -= len(entry.data)
            size += nxt
            out.append(entry)
        return out

    def clear(self) -> int:
        n = len(self._items)
        self._items.clear()
        self._bytes = 0
        return n
