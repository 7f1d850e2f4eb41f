"""A cron monitor's health score. Pure: the read API counts, this module scores.

Start at 100; in the last 7 days take 5 per failed run, 10 per missed run and 3 per late
run, and give 2 per on-time success; clamp to 0..100. The counts come from the runs and
incidents tables (see ``storage.derived_queries.health_counts``).
"""

from __future__ import annotations

from dataclasses import dataclass

START = 100
PER_FAILURE = -5
PER_MISSED = -10
PER_LATE = -3
PER_ON_TIME_SUCCESS = 2


@dataclass(frozen=True)
class HealthCounts:
    """What happened to one monitor in the scoring window (7 days)."""

    failures: int = 0
    missed: int = 0
    late: int = 0
    on_time_successes: int = 0

    def __post_init__(self) -> None:
        for name in ("failures", "missed", "late", "on_time_successes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


def health_score(counts: HealthCounts) -> int:
    """The score in 0..100 for these counts."""
    raw = (
        START
        + PER_FAILURE * counts.failures
        + PER_MISSED * counts.missed
        + PER_LATE * counts.late
        + PER_ON_TIME_SUCCESS * counts.on_time_successes
    )
    return max(0, min(100, raw))
