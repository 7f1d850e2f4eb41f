"""What to send next and how an attempt is written down. Pure: ``now`` and ``rng`` come in.

A ``Job`` is one attempt to make; ``record`` turns its result into the ``Delivery`` that
goes on ``alerting.deliveries``: 2xx delivered; retryable and schedule left: retrying with
``next_attempt_at``; schedule used up: failed; 410: disabled; anything else: failed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from alerting.delivery import Outcome, retry_delay
from alerting.incident import Incident
from alerting.send import Attempt
from pulseline.control.entities import Channel
from pulseline.records.alerts import Delivery, DeliveryStatus

STATUS = {
    Outcome.OK: DeliveryStatus.DELIVERED,
    Outcome.FAILED: DeliveryStatus.FAILED,
    Outcome.DISABLE: DeliveryStatus.DISABLED,
}


@dataclass(frozen=True)
class Job:
    incident: Incident
    channel: Channel
    delivery_id: str
    attempt: int = 1
    kind: Literal["transition", "reminder"] = "transition"

    @classmethod
    def resume(cls, pending: Delivery, channel: Channel) -> Job:
        """The next attempt after a ``retrying`` record."""
        return cls(
            Incident.from_json(pending.incident),
            channel,
            pending.delivery_id,
            pending.attempt + 1,
            pending.kind,
        )


@dataclass(frozen=True)
class Verdict:
    status: DeliveryStatus
    next_attempt_at: datetime | None
    error: str


def judge(attempt: int, result: Attempt, now: datetime, rng: random.Random) -> Verdict:
    """What attempt number ``attempt`` came to, and when to try again if at all."""
    status = STATUS.get(result.outcome, DeliveryStatus.RETRYING)
    error = "" if status is DeliveryStatus.DELIVERED else result.detail
    if status is not DeliveryStatus.RETRYING:
        return Verdict(status, None, error)
    delay = retry_delay(attempt, rng)
    if delay is None:
        return Verdict(DeliveryStatus.FAILED, None, f"gave up after {attempt} attempts: {error}")
    return Verdict(status, now + timedelta(seconds=delay), error)


def written(
    job: Job, verdict: Verdict, result: Attempt, latency_ms: float | None, now: datetime
) -> Delivery:
    incident = job.incident
    return Delivery(
        delivery_id=job.delivery_id,
        kind=job.kind,
        incident_id=incident.id,
        incident_version=incident.version,
        state=incident.state,
        dedup_key=incident.dedup_key,
        project_id=incident.project_id,
        channel_id=job.channel.id,
        channel_type=job.channel.type,
        attempt=job.attempt,
        status=verdict.status,
        http_status=result.status,
        latency_ms=latency_ms,
        error=verdict.error,
        at=now,
        next_attempt_at=verdict.next_attempt_at,
        incident=incident.to_json(),
    )


def record(
    job: Job, result: Attempt, latency_ms: float | None, now: datetime, rng: random.Random
) -> Delivery:
    return written(job, judge(job.attempt, result, now, rng), result, latency_ms, now)
