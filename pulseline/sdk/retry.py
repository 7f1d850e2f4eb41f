"""What to do with the gateway's answer, and how long to wait before trying again. Pure.

The gateway (``ingest_gateway/errors.py``) says 202 when every acceptable event is on
Kafka, 400-415 when the request itself is wrong (retrying it fails the same way), and
429 or 503 with ``Retry-After`` when it may work later. A request that got no answer
(connection refused, timeout) may work later too.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


def classify(status: int | None) -> Outcome:
    """``None`` is a request that got no answer at all."""
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.SENT
    if status == 429 or status >= 500:
        return Outcome.RETRY
    return Outcome.REJECTED


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` of seconds or an HTTP date; ``now`` is Unix time.

    ``None`` when absent or unreadable; a date in the past is 0."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: attempt ``n`` (0-based) waits between half and all of
    ``min(cap, base * 2**n)``. The floor of half keeps retries from bunching at zero; the
    random half spreads many clients apart after the gateway comes back."""

    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 300.0

    def backoff(self, attempt: int, rand: Callable[[], float]) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 62))
        return ceiling / 2 + rand() * ceiling / 2

    def delay(
        self,
        status: int | None,
        retry_after: str | None,
        attempt: int,
        rand: Callable[[], float],
        now: float,
    ) -> float:
        """How long to wait before attempt ``attempt + 1``; ``Retry-After`` wins on 429 and 503,
        up to ``max_retry_after`` (a quota that resets next month should not pin a thread)."""
        if status in (429, 503):
            asked = parse_retry_after(retry_after, now)
            if asked is not None:
                return min(asked, self.max_retry_after)
        return self.backoff(attempt, rand)
