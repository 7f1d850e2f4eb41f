"""Pure delivery semantics: ids, retry schedule, attempt outcomes, flapping, digests, reminders.

Retry schedule (seconds before attempt n+1, each drawn with full jitter from ``[0, cap]``):
5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, then give up; the caps add up to
about 15 h 43 min, so a delivery is abandoned within 24 h of its first attempt.

Outcomes of one HTTP attempt: 2xx ``ok``; 3xx ``failed`` (redirects are never followed);
410 ``disable`` (stop using the channel and open a ``channel_disabled`` incident); 408, 425,
429, 5xx, timeouts and connection errors ``retry``; any other 4xx ``failed`` for good.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from alerting.incident import Incident

NAMESPACE = uuid.UUID("6f1c2a52-6d0b-4c43-9a57-6b8c1f1e2d30")
SCHEDULE_S: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)
RETRYABLE_4XX = frozenset({408, 425, 429})


def delivery_id(incident: Incident, channel_id: str) -> str:
    """Stable per (transition, channel): a redelivered duplicate carries the same webhook-id."""
    return "msg_" + uuid.uuid5(NAMESPACE, f"{incident.id}:{incident.version}:{channel_id}").hex


def retry_delay(
    attempt: int, rng: random.Random, schedule: Sequence[float] = SCHEDULE_S
) -> float | None:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), ``None``: give up."""
    if attempt < 1 or attempt > len(schedule):
        return None
    return rng.uniform(0, schedule[attempt - 1])


class Outcome(StrEnum):
    OK = "ok"
    RETRY = "retry"
    FAILED = "failed"
    DISABLE = "disable"


def classify(status: int | None) -> Outcome:
    """The outcome of an attempt; ``None`` means a timeout or connection error."""
    if status is None or status >= 500 or status in RETRYABLE_4XX:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.OK
    if status == 410:
        return Outcome.DISABLE
    return Outcome.FAILED


@dataclass(frozen=True)
class FailureStreak:
    """Consecutive failures of a monitor; alert only once ``threshold`` is reached."""

    threshold: int
    count: int = 0

    def record(self, failed: bool) -> FailureStreak:
        return FailureStreak(self.threshold, self.count + 1 if failed else 0)

    @property
    def should_alert(self) -> bool:
        return self.count >= self.threshold

    @property
    def just_crossed(self) -> bool:
        """True only on the failure that reaches the threshold, so one streak alerts once."""
        return self.count == self.threshold


@dataclass(frozen=True)
class Digest:
    channel_id: str
    window_start: datetime
    incidents: tuple[Incident, ...]

    @property
    def project_id(self) -> int:
        return self.incidents[0].project_id

    def counts(self) -> dict[str, int]:
        """Transitions per event type, e.g. ``{"incident.opened": 3}``."""
        return _tally(i.event_type for i in self.incidents)

    def kinds(self) -> dict[str, int]:
        return _tally(i.kind for i in self.incidents)

    def severities(self) -> dict[str, int]:
        return _tally(i.severity for i in self.incidents)


def _tally(values: Iterable[str]) -> dict[str, int]:
    """Counts in first-seen order."""
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out


def group_digests(routed: Iterable[tuple[str, Incident]], window: timedelta) -> list[Digest]:
    """Group (channel id, transition) pairs into bursts: a burst starts at a transition's
    ``updated_at`` and takes every later one for the same channel within ``window``."""
    by_channel: dict[str, list[Incident]] = {}
    for channel_id, incident in routed:
        by_channel.setdefault(channel_id, []).append(incident)
    digests: list[Digest] = []
    for channel_id, incidents in by_channel.items():
        incidents.sort(key=lambda i: i.updated_at)
        burst: list[Incident] = []
        for incident in incidents:
            if burst and incident.updated_at - burst[0].updated_at >= window:
                digests.append(Digest(channel_id, burst[0].updated_at, tuple(burst)))
                burst = []
            burst.append(incident)
        if burst:
            digests.append(Digest(channel_id, burst[0].updated_at, tuple(burst)))
    return digests


def next_reminder(incident: Incident, every: timedelta, now: datetime) -> datetime | None:
    """When to remind again about a still-open incident: the next multiple of ``every`` after
    ``opened_at`` that is later than ``now``; ``None`` once acked or resolved."""
    if incident.state != "open" or every <= timedelta(0):
        return None
    elapsed = max(now - incident.opened_at, timedelta(0))
    return incident.opened_at + every * (elapsed // every + 1)
