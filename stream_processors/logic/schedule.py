"""When a monitor's next ping is expected and when it counts as missed. Pure: no clock.

A period schedule expects the next ping ``period_s`` after the last one. A cron schedule
expects it at the first cron time strictly after the last ping, where cron fields are read
as wall-clock time in the monitor's IANA zone. Either way the monitor is down from
``deadline = next_expected + grace_s`` on (``now >= deadline``).

Daylight-saving changes, chosen deliberately (croniter 5 with zoneinfo gets both wrong: it
puts the day after the autumn change at 03:30 instead of 02:30):

- Spring forward: a wall time in the gap (02:30 in Europe/Berlin on the last Sunday of
  March) is shifted forward by the gap, so "30 2 * * *" is expected at 03:30 local that day.
  This is how Debian/Vixie cron run fixed-time jobs whose time was skipped: once, just after.
- Fall back: a wall time that happens twice (02:30 on the last Sunday of October) matches
  once, at its first occurrence (CEST). A ping during the repeated hour does not create a
  second expectation at 02:30 CET; the next one is 02:30 the following day.

Returned datetimes are timezone-aware UTC. Naive inputs are read as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from pulseline.control.entities import Monitor, Schedule

# Longer than any daylight-saving jump in the tz database (the largest is two hours).
_MAX_JUMP = timedelta(hours=3)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def next_expected(schedule: Schedule, last_ping: datetime) -> datetime:
    """The first instant strictly after ``last_ping`` at which a ping is expected."""
    last = as_utc(last_ping)
    if schedule.period_s is not None:
        return last + timedelta(seconds=schedule.period_s)
    if schedule.cron is None:
        raise ValueError("a schedule needs period_s or cron")
    return _next_cron(schedule.cron, ZoneInfo(schedule.tz), last)


def deadline(monitor: Monitor, last_ping: datetime) -> datetime:
    """The instant from which the monitor is down if no ping came after ``last_ping``."""
    return next_expected(monitor.schedule, last_ping) + timedelta(seconds=monitor.grace_s)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    # fold=0 maps a gap time forward by the gap and a repeated time to its first occurrence.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _is_gap(wall: datetime, zone: ZoneInfo) -> bool:
    return _instant(wall, zone).astimezone(zone).replace(tzinfo=None) != wall


def _next_cron(expression: str, zone: ZoneInfo, after: datetime) -> datetime:
    """Iterate cron matches on naive wall-clock times and map each to an instant.

    The mapping is monotonic except for gap times, which land up to one jump later; so start
    early enough to see gap times that land after ``after`` and stop at the first non-gap
    match past it (no later match can map to an earlier instant).
    """
    wall_now = after.astimezone(zone).replace(tzinfo=None)
    earlier_offset = (after - _MAX_JUMP).astimezone(zone).utcoffset() or timedelta(0)
    start = min(wall_now, (after + earlier_offset).replace(tzinfo=None))
    matches = croniter(expression, start - timedelta(seconds=1))
    best: datetime | None = None
    while True:
        wall: datetime = matches.get_next(datetime)
        moment = _instant(wall, zone)
        if moment <= after:
            continue
        best = moment if best is None else min(best, moment)
        if not _is_gap(wall, zone):
            return best
