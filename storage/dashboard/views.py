"""What the pages show, computed from query rows. Pure: no I/O, ``now`` is passed in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pulseline.control.entities import Monitor
from storage.queries import utc
from stream_processors.logic.schedule import next_expected

STATES = {
    "down": ("✖", "Down"),
    "late": ("!", "Late"),
    "up": ("✔", "Up"),
    "new": ("•", "New, no ping yet"),
    "paused": ("‖", "Paused"),
}
PINNED = ("down", "late")


def state_label(state: str) -> tuple[str, str]:
    """An icon and the words for a monitor state (the icon is never the only signal)."""
    return STATES.get(state, ("?", state.capitalize() or "Unknown"))


def ago(moment: datetime | None, now: datetime) -> str:
    """``"3 min ago"``, ``"in 2 h"``, ``"never"``: coarse on purpose, for scanning lists."""
    if moment is None:
        return "never"
    seconds = (utc(now) - utc(moment)).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            text = f"{int(seconds // size)} {unit}"
            break
    else:
        text = f"{int(seconds)} s"
    return f"in {text}" if future else f"{text} ago"


def pinned_first(monitors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Down and late monitors first, then the rest; each group by name, so a monitor going
    from late to down keeps its row."""

    def key(m: dict[str, Any]) -> tuple[int, str, str]:
        name = str(m.get("name") or m.get("slug") or "")
        return (0 if m["state"] in PINNED else 1, name.lower(), str(m["monitor_id"]))

    return sorted(monitors, key=key)


@dataclass(frozen=True)
class Health:
    """The overview's health strip."""

    open_incidents: int
    monitors: dict[str, int]
    unresolved_issues: int
    new_issues: int
    more: bool

    @property
    def down(self) -> int:
        """What the favicon and title count, as Healthchecks does: monitors that are down."""
        return self.monitors.get("down", 0)


def health(
    monitors: list[dict[str, Any]],
    open_incidents: list[dict[str, Any]],
    unresolved: list[dict[str, Any]],
    now: datetime,
    page_limit: int,
) -> Health:
    """Counts for the strip; ``more`` says a list was cut at ``page_limit`` (show "N+")."""
    states = Counter(m["state"] for m in monitors)
    day_ago = utc(now) - timedelta(days=1)
    return Health(
        open_incidents=len(open_incidents),
        monitors={s: states.get(s, 0) for s in ("up", "late", "down", "new", "paused")},
        unresolved_issues=len(unresolved),
        new_issues=sum(1 for i in unresolved if utc(i["first_seen"]) >= day_ago),
        more=any(len(rows) >= page_limit for rows in (monitors, open_incidents, unresolved)),
    )


def favicon(down: int) -> str:
    """An SVG data URL: a green dot, or a red one with the number of things down."""
    if down <= 0:
        body = "<circle cx='8' cy='8' r='7' fill='%2322a06b'/>"
    else:
        label = str(down) if down < 10 else "9+"
        body = (
            "<circle cx='8' cy='8' r='7' fill='%23d93a3a'/>"
            "<text x='8' y='12' font-size='10' font-family='sans-serif' text-anchor='middle' "
            f"fill='white'>{label}</text>"
        )
    svg = f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>{body}</svg>"
    return f"data:image/svg+xml,{svg}"


@dataclass(frozen=True)
class Mark:
    """One incident on the 24-hour timeline, ``left``/``width`` in percent of the window."""

    row: dict[str, Any]
    left: float
    width: float


def timeline(incidents: list[dict[str, Any]], now: datetime, hours: int = 24) -> list[Mark]:
    """Incidents overlapping the last ``hours``, oldest first; still-open ones run to now."""
    end = utc(now)
    start = end - timedelta(hours=hours)
    span = (end - start).total_seconds()
    marks = []
    for row in incidents:
        opened = utc(row["opened_at"])
        closed = utc(row["resolved_at"]) if row.get("resolved_at") else end
        if closed < start or opened > end:
            continue
        left = max(0.0, (opened - start).total_seconds() / span * 100)
        right = min(100.0, (closed - start).total_seconds() / span * 100)
        marks.append(Mark(row, round(left, 2), round(max(right - left, 0.5), 2)))
    return sorted(marks, key=lambda m: m.left)


def run_strip(runs: list[dict[str, Any]], size: int = 30) -> list[dict[str, Any]]:
    """The last ``size`` runs, oldest first (runs arrive newest first)."""
    return list(reversed(runs[:size]))


def in_zone(moment: datetime | None, tz: str) -> str:
    """``2026-01-02 04:00 CET``; an unknown zone falls back to UTC."""
    if moment is None:
        return "—"
    try:
        zone = ZoneInfo(tz)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    return utc(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def next_runs(monitor: Monitor, now: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` expected pings after ``now`` (UTC; show them in the monitor's zone)."""
    out: list[datetime] = []
    moment = utc(now)
    for _ in range(count):
        moment = next_expected(monitor.schedule, moment)
        out.append(moment)
    return out


def frames(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    """Stack frames of a Sentry-style event, innermost first; [] when it carries none."""
    exception = attributes.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else exception
    found: list[dict[str, Any]] = []
    for value in values if isinstance(values, list) else []:
        stack = value.get("stacktrace") if isinstance(value, dict) else None
        raw = stack.get("frames") if isinstance(stack, dict) else None
        found += [f for f in raw or [] if isinstance(f, dict)]
    return list(reversed(found))


def as_dict(value: Any) -> dict[str, Any]:
    """``tags`` given as a mapping or as ``[[key, value], ...]`` pairs, as a mapping."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(p[0]): p[1] for p in value if isinstance(p, list | tuple) and len(p) == 2}
    return {}
