"""The time window of the analytics and performance screens. Pure: ``now`` is passed in.

A window is a preset length ending now (24 h by default), the same length just before it
(what "vs previous" compares with), a bucket interval the length allows, and the IANA zone
the page shows times in. Buckets themselves are UTC minutes, hours or days: the query
builders truncate in UTC, so a "day" starts at midnight UTC whatever the zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import get_args
from zoneinfo import ZoneInfo

from storage import analytics_queries as aq
from storage.queries import utc

PRESETS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
WORDS = {"24h": "24 h", "7d": "7 days", "30d": "30 days"}
DEFAULT_PRESET = "24h"
DEFAULT_INTERVAL: dict[str, aq.Interval] = {"24h": "hour", "7d": "day", "30d": "day"}
INTERVALS: tuple[aq.Interval, ...] = get_args(aq.Interval)
STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class Period:
    preset: str
    interval: aq.Interval
    tz: str
    start: datetime
    end: datetime
    notice: str | None = None

    @property
    def words(self) -> str:
        """``"24 h"``, as in "+12% vs previous 24 h"."""
        return WORDS[self.preset]

    @property
    def previous(self) -> tuple[datetime, datetime]:
        """The window of the same length ending where this one starts."""
        return self.start - (self.end - self.start), self.start

    @property
    def intervals(self) -> list[aq.Interval]:
        return allowed_intervals(self.end - self.start)


def allowed_intervals(length: timedelta) -> list[aq.Interval]:
    """Intervals giving at least two buckets and no more than the builders accept."""
    allowed = []
    for interval in INTERVALS:
        if length / STEP[interval] < 2:
            continue
        try:
            aq.check_buckets(interval, datetime.min, datetime.min + length)
        except aq.BadAnalyticsQuery:
            continue
        allowed.append(interval)
    return allowed


def zone(name: str | None) -> tuple[str, str | None]:
    """A valid IANA zone name, else ``"UTC"`` and a notice saying why."""
    if not name:
        return "UTC", None
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return "UTC", f"Unknown time zone {name!r}; showing UTC."
    return name, None


def period(preset: str | None, interval: str | None, tz: str | None, now: datetime) -> Period:
    """The window a request asks for; unknown values fall back to the defaults."""
    chosen = preset if preset in PRESETS else DEFAULT_PRESET
    end = utc(now)
    start = end - PRESETS[chosen]
    allowed = allowed_intervals(end - start)
    step = next((i for i in allowed if i == interval), DEFAULT_INTERVAL[chosen])
    shown, notice = zone(tz)
    return Period(chosen, step, shown, start, end, notice)


def floor(moment: datetime, interval: aq.Interval) -> datetime:
    """The start of the UTC bucket holding ``moment`` (as ``toStartOf...`` computes it)."""
    moment = utc(moment).replace(second=0, microsecond=0)
    if interval in ("hour", "day"):
        moment = moment.replace(minute=0)
    if interval == "day":
        moment = moment.replace(hour=0)
    return moment


def buckets(start: datetime, end: datetime, interval: aq.Interval) -> list[datetime]:
    """Every bucket start from the one holding ``start`` up to ``end`` (exclusive)."""
    out, moment = [], floor(start, interval)
    while moment < utc(end):
        out.append(moment)
        moment += STEP[interval]
    return out
