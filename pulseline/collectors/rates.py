"""Counters to per-second rates between two polls.

The first poll of a key only sets its baseline. A counter that went down was reset
(``pg_stat_reset``, a restart, an evicted statement): that poll gives no rate for it and
becomes the new baseline, rather than a negative rate or a guess at what happened.
A key carries whatever identifies one life of its counter (``stats_reset``), so a reset
that the counter has already outgrown is not read as growth.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def counter_rate(before: float, after: float, seconds: float) -> float | None:
    """Increase per second, or ``None`` when it cannot be known."""
    if seconds <= 0 or after < before:
        return None
    return (after - before) / seconds


class RateTracker(Generic[K]):
    """Remembers the last value of each key; keys absent from a poll are forgotten."""

    def __init__(self) -> None:
        self._last: dict[K, tuple[float, float]] = {}

    def update(self, values: Mapping[K, float], at: float) -> dict[K, float]:
        """Rates of the keys also seen in the previous poll; ``at`` is monotonic seconds."""
        rates: dict[K, float] = {}
        for key, value in values.items():
            previous = self._last.get(key)
            if previous is None:
                continue
            rate = counter_rate(previous[0], value, at - previous[1])
            if rate is not None:
                rates[key] = rate
        self._last = {key: (value, at) for key, value in values.items()}
        return rates
