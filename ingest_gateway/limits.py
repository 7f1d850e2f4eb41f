"""How much a project may send: events per second and a monthly quota, from its tier.

A request costs one token per valid event in it (a batch of 100 costs 100; events
refused as invalid cost nothing, so the quota counts what is stored) and is admitted
whole or refused whole with 429:

- **Rate**: a token bucket per project, filled at ``events_per_second`` and holding
  ``burst_s`` seconds of it (default 2 s: a project on 50 events/s may send 100 at
  once). A request bigger than the whole bucket is admitted when the bucket is full
  and leaves it in debt, so a large batch is slowed to the rate rather than never
  fitting. Refused: ``RateLimited`` with ``Retry-After`` = seconds until the request
  would fit, rounded up, at least 1.
- **Quota**: events admitted per project in the calendar month (UTC). Refused once
  the month's count plus the request would pass ``monthly_quota``: ``QuotaExceeded``
  with ``Retry-After`` until the next month starts.

API keys carry no limit of their own (``ApiKeyRecord`` has none), so every key of a
project draws on the project's bucket; a per-key limit would need a field there first.

Each project's state is its own small object, touched in O(1) without a lock or an
await: one tenant's burst cannot slow another's requests.

Limitations, on purpose: the counts live in this gateway process. With N replicas
behind a load balancer (``PULSELINE_GATEWAY_REPLICAS``, default 1) each replica
enforces rate / N and quota / N, which is right when the balancer spreads a project's
traffic evenly. A restart forgets the month's count, so after one a project may send
up to a further quota share that month. Exact accounting needs a shared counter.

``Limiter`` is pure (``now`` is passed in). ``allowances`` is the thin shell that reads
a project's ``TierLimits`` from the control plane.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ingest_gateway.errors import QuotaExceeded, RateLimited

if TYPE_CHECKING:
    from pulseline.control.service import Store
    from pulseline.settings import GatewaySettings

# Float error must not turn an exact 2.0 s wait into a Retry-After of 3.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Allowance:
    """A project's limits for the whole deployment; None means no limit."""

    events_per_second: float | None = None
    monthly_quota: int | None = None


UNLIMITED = Allowance()
AllowanceOf = Callable[[int], Allowance]


class TokenBucket:
    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate, self.capacity, self.tokens, self.updated = rate, capacity, capacity, now

    def take(self, cost: float, now: float) -> float:
        """Take ``cost`` tokens and return 0, or take none and return the seconds to wait."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = max(self.updated, now)
        need = min(cost, self.capacity)
        if self.tokens + _EPSILON >= need:
            self.tokens -= cost
            return 0.0
        return (need - self.tokens) / self.rate

    def resize(self, rate: float, capacity: float) -> None:
        """A tier change applies at once; tokens already earned are kept up to the new size."""
        self.rate, self.capacity = rate, capacity
        self.tokens = min(self.tokens, capacity)


@dataclass(slots=True)
class MonthCount:
    month: tuple[int, int]
    used: int = 0


def next_month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    if now.month == 12:
        return datetime(now.year + 1, 1, 1, tzinfo=UTC)
    return datetime(now.year, now.month + 1, 1, tzinfo=UTC)


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds - _EPSILON))


class Limiter:
    """Per-project token buckets and monthly counts of one gateway replica."""

    def __init__(self, burst_s: float = 2.0, replicas: int = 1) -> None:
        if burst_s <= 0 or replicas < 1:
            raise ValueError("burst_s must be positive and replicas at least 1")
        self.burst_s = burst_s
        self.replicas = replicas
        self._buckets: dict[int, TokenBucket] = {}
        self._months: dict[int, MonthCount] = {}

    def charge(self, project_id: int, allowance: Allowance, events: int, now: datetime) -> None:
        """Admit ``events`` for the project, or raise ``QuotaExceeded`` / ``RateLimited``."""
        now = now.astimezone(UTC)
        month = (now.year, now.month)
        count = self._months.get(project_id)
        if count is None or count.month != month:
            count = self._months[project_id] = MonthCount(month)
        if allowance.monthly_quota is not None:
            share = max(1, allowance.monthly_quota // self.replicas)
            if count.used + events > share:
                wait = (next_month_start(now) - now).total_seconds()
                raise QuotaExceeded(
                    _whole_seconds(wait),
                    detail=f"project {project_id} used its monthly quota of"
                    f" {allowance.monthly_quota} events; it renews when the next month"
                    " starts (UTC)",
                )
        if allowance.events_per_second is not None:
            wait = self._bucket(project_id, allowance.events_per_second, now).take(
                events, now.timestamp()
            )
            if wait > 0:
                seconds = _whole_seconds(wait)
                raise RateLimited(
                    seconds,
                    detail=f"project {project_id} is over its rate limit of"
                    f" {allowance.events_per_second:g} events/s; retry in {seconds}s",
                )
        count.used += events

    def used(self, project_id: int, now: datetime) -> int:
        """Events admitted for the project in ``now``'s month by this replica."""
        now = now.astimezone(UTC)
        count = self._months.get(project_id)
        return count.used if count is not None and count.month == (now.year, now.month) else 0

    def _bucket(self, project_id: int, events_per_second: float, now: datetime) -> TokenBucket:
        rate = events_per_second / self.replicas
        capacity = max(1.0, rate * self.burst_s)
        bucket = self._buckets.get(project_id)
        if bucket is None:
            bucket = self._buckets[project_id] = TokenBucket(rate, capacity, now.timestamp())
        elif bucket.rate != rate or bucket.capacity != capacity:
            bucket.resize(rate, capacity)
        return bucket


class Gate:
    """What the doors call: look up the project's allowance, then charge the limiter."""

    def __init__(self, limiter: Limiter, allowance_of: AllowanceOf, enabled: bool = True) -> None:
        self.limiter, self.allowance_of, self.enabled = limiter, allowance_of, enabled

    def check(self, project_id: int, events: int, now: datetime) -> None:
        if self.enabled and events > 0:
            self.limiter.charge(project_id, self.allowance_of(project_id), events, now)

    @classmethod
    def from_settings(cls, settings: GatewaySettings, control: Store | None) -> Gate:
        limiter = Limiter(
            settings.rate_limit_burst_s, settings.gateway_replicas * settings.gateway_workers
        )
        return cls(limiter, allowances(settings, control), settings.rate_limits_enabled)


def allowances(settings: GatewaySettings, control: Store | None) -> AllowanceOf:
    """A project's tier limits (with its overrides) from the control plane's view.

    Without a control plane (tests, a static key ring), or for a project it does not
    know, the settings' defaults apply: ``PULSELINE_DEFAULT_EVENTS_PER_SECOND`` and
    ``PULSELINE_DEFAULT_MONTHLY_QUOTA``, both unset (no limit) unless configured, since
    such a gateway has no tier to enforce.
    """
    fallback = Allowance(settings.default_events_per_second, settings.default_monthly_quota)

    def allowance_of(project_id: int) -> Allowance:
        project = control.view.project(project_id) if control is not None else None
        if project is None:
            return fallback
        limits = project.limits()
        return Allowance(limits.events_per_second, limits.monthly_quota)

    return allowance_of
