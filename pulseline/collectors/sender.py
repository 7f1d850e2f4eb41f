"""Send metric events to the gateway's ``POST /v1/events``, in batches, with retries.

429 and 503 are retried after the gateway's ``Retry-After`` (seconds or an HTTP date);
other 5xx answers and network errors after an exponential back-off. A wait longer than
``max_wait_s`` (a monthly quota's Retry-After can be days) drops the batch instead of
stalling the poll loop. Other 4xx answers are permanent and drop the batch; 401 also
raises ``Unauthorized``, since no later batch would fare better.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from pulseline.collectors.events import batches
from pulseline.sdk.retry import Backoff, parse_retry_after

EVENTS_PATH = "/v1/events"
# The gateway takes up to 10,000 events a batch (PULSELINE_MAX_BATCH_EVENTS); smaller
# batches keep each request quick and a retry cheap.
DEFAULT_BATCH = 500
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF = Backoff(base=0.5, cap=30.0)


class Unauthorized(Exception):
    """The gateway refused the ingest key (401); the message is the gateway's detail."""


@dataclass
class SendReport:
    accepted: int = 0
    rejected: list[str] = field(default_factory=list)
    dropped: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.dropped == 0


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("error") or body)[:200]
    return str(body)[:200]


class IngestSender:
    """Posts JSON arrays of events with ``Authorization: Bearer <ingest key>``."""

    def __init__(
        self,
        url: str,
        ingest_key: str,
        *,
        batch_size: int = DEFAULT_BATCH,
        max_attempts: int = 5,
        max_wait_s: float = 60.0,
        timeout_s: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.endpoint = url.rstrip("/") + EVENTS_PATH
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.max_wait_s = max_wait_s
        self._client = httpx.Client(
            timeout=timeout_s,
            transport=transport,
            headers={"Authorization": f"Bearer {ingest_key}", "User-Agent": "pulseline-collect"},
        )
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock

    def close(self) -> None:
        self._client.close()

    def send(self, events: Sequence[dict[str, Any]]) -> SendReport:
        report = SendReport()
        for batch in batches(events, self.batch_size):
            self._send_batch(batch, report)
        return report

    def _send_batch(self, batch: Sequence[dict[str, Any]], report: SendReport) -> None:
        body = list(batch)
        for attempt in range(1, self.max_attempts + 1):
            wait: float | None
            try:
                response = self._client.post(self.endpoint, json=body)
            except httpx.TransportError as exc:
                problem = f"gateway unreachable ({type(exc).__name__})"
                wait = BACKOFF.backoff(attempt - 1, self._jitter)
            else:
                answer = _json_object(response)
                # A 400 that lists "rejected" is a batch of invalid events, answered in full.
                if response.status_code < 300 or "rejected" in answer:
                    _count(answer, len(body), report)
                    return
                problem = f"gateway answered {response.status_code}: {_detail(response)}"
                if response.status_code == 401:
                    raise Unauthorized(_detail(response))
                if response.status_code not in RETRY_STATUSES:
                    break
                asked = parse_retry_after(
                    response.headers.get("retry-after"), self._clock().timestamp()
                )
                wait = asked if asked is not None else BACKOFF.backoff(attempt - 1, self._jitter)
            if attempt == self.max_attempts:
                break
            if wait > self.max_wait_s:
                problem += f"; it asks to wait {wait:.0f}s, longer than {self.max_wait_s:.0f}s"
                break
            self._sleep(wait)
        report.dropped += len(body)
        report.problems.append(f"{problem}; dropped {len(body)} events")


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _count(answer: dict[str, Any], sent: int, report: SendReport) -> None:
    rejected = answer.get("rejected") or []
    reasons = [str(r.get("reason", r)) if isinstance(r, dict) else str(r) for r in rejected]
    report.rejected += reasons
    accepted = answer.get("accepted")
    report.accepted += accepted if isinstance(accepted, int) else sent - len(reasons)
