"""The end of a job's output: a bounded ring of bytes, and the redacted body sent with the
finishing ping. Pure.

The ring keeps ``capture + margin`` bytes. When output was dropped, the first line of the
ring may hold the end of a secret whose start is gone, which no rule can recognise; so the
body starts after the first newline of the margin (or after the whole margin when it has
none), is redacted, and only then cut to its last ``limit`` bytes.
"""

from __future__ import annotations

from pulseline.producers.redact import Redactor

DEFAULT_CAPTURE_BYTES = 32 * 1024
MIN_MARGIN_BYTES = 1024


class Tail:
    """The last ``capacity`` bytes written to it, and how many were written in all."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity must be >= 0")
        self.capacity = capacity
        self.total = 0
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._buffer += chunk
        # Trim only when twice over, so a stream of small chunks is not copied each time.
        if len(self._buffer) > 2 * self.capacity:
            del self._buffer[: len(self._buffer) - self.capacity]

    @property
    def dropped(self) -> int:
        return self.total - len(self.kept())

    def kept(self) -> bytes:
        if self.capacity == 0:
            return b""
        return bytes(self._buffer[-self.capacity :])


def margin_for(redactor: Redactor) -> int:
    """Longer than any secret value, so a cut one falls wholly inside it."""
    return max(MIN_MARGIN_BYTES, redactor.longest_bytes)


def last_bytes(data: bytes, limit: int) -> bytes:
    """The last ``limit`` bytes, starting on a UTF-8 character boundary when the cut is
    inside one (so the server does not show a replacement character first)."""
    if limit <= 0:
        return b""
    if len(data) <= limit:
        return data
    cut = data[-limit:]
    skip = 0
    while skip < min(3, len(cut)) and 0x80 <= cut[skip] <= 0xBF:
        skip += 1
    return cut[skip:]


def body(tail: Tail, redactor: Redactor, limit: int, margin: int) -> bytes:
    """The redacted end of ``tail``, at most ``limit`` bytes."""
    data = tail.kept()
    if tail.dropped:
        newline = data.find(b"\n", 0, margin)
        data = data[newline + 1 :] if newline >= 0 else data[margin:]
    return last_bytes(redactor.redact_bytes(data), limit)
