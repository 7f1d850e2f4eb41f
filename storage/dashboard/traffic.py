"""The numbers of the web analytics screen, from builder rows. Pure: no I/O.

Top metrics compare a window with the one just before it; the chart is one point per
bucket with empty buckets as zero; markers are the incidents opened and the anomalies
flagged inside the window; a funnel says how many visitors each step lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage import analytics_queries as aq
from storage.dashboard.period import buckets, floor
from storage.queries import utc

Row = dict[str, Any]


@dataclass(frozen=True)
class Totals:
    """A window's top metrics; None where the data cannot say (no session, no filter)."""

    pageviews: int | None
    visitors: int | None
    sessions: int | None
    bounce_rate: float | None
    avg_duration_s: float | None


def totals(series: list[Row], visitors: int) -> Totals:
    """Sum merged series points; bounce rate and duration are weighted by sessions.

    ``visitors`` comes from elsewhere: distinct visitors do not add up across buckets.
    """
    sessions = sum(int(p["sessions"]) for p in series)
    timed = [p for p in series if p["sessions"] and p["bounce_rate"] is not None]
    weight = sum(int(p["sessions"]) for p in timed)

    def weighted(name: str) -> float | None:
        if not weight:
            return None
        return sum(float(p[name]) * int(p["sessions"]) for p in timed) / weight

    return Totals(
        pageviews=sum(int(p["pageviews"]) for p in series),
        visitors=visitors,
        sessions=sessions,
        bounce_rate=weighted("bounce_rate"),
        avg_duration_s=weighted("avg_duration_s"),
    )


# name, label, whether a rise is good
METRICS = (
    ("pageviews", "Page views", True),
    ("visitors", "Unique visitors", True),
    ("sessions", "Sessions", True),
    ("bounce_rate", "Bounce rate", False),
    ("avg_duration_s", "Avg. visit duration", True),
)


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    value: str
    change: str
    tone: str  # "good", "bad" or "" (no change, or nothing to compare with)


def duration(seconds: float) -> str:
    """``"45 s"``, ``"3 min 5 s"``, ``"5 min"``, ``"1 h 2 min"``: the two largest units."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    big, small = (s // 60, s % 60) if s < 3600 else (s // 3600, s % 3600 // 60)
    units = ("min", "s") if s < 3600 else ("h", "min")
    return f"{big} {units[0]}" + (f" {small} {units[1]}" if small else "")


def shown(name: str, value: float | None) -> str:
    if value is None:
        return "—"
    if name == "bounce_rate":
        return f"{value:.1f}%"
    if name == "avg_duration_s":
        return duration(value)
    return f"{int(value):,}"


def change(name: str, current: float | None, previous: float | None, words: str) -> tuple[str, str]:
    """``("+12% vs previous 24 h", tone)``; bounce rate moves in percentage points."""
    higher_is_good = next(good for n, _, good in METRICS if n == name)
    if current is None:
        return "", ""
    if name == "bounce_rate":
        if previous is None:
            return f"no visits in previous {words}", ""
        delta = current - previous
        text = f"{delta:+.1f} pp vs previous {words}"
        moved = round(delta, 1) != 0
    else:
        if not previous:
            return f"none in previous {words}", ""
        delta = 100 * (current - previous) / previous
        moved = round(delta) != 0
        text = f"{delta:+.0f}% vs previous {words}" if moved else f"±0% vs previous {words}"
    if not moved:
        return text, ""
    return text, "good" if (delta > 0) == higher_is_good else "bad"


def metrics(current: Totals, previous: Totals, words: str) -> list[Metric]:
    out = []
    for name, label, _ in METRICS:
        now, before = getattr(current, name), getattr(previous, name)
        text, tone = change(name, now, before, words)
        out.append(Metric(name, label, shown(name, now), text, tone))
    return out


def chart(points: list[Row], start: datetime, end: datetime, interval: aq.Interval) -> Row:
    """Columns for uPlot: ``x`` (epoch seconds) and one list per series, gaps as 0."""
    by_bucket = {floor(p["bucket"], interval): p for p in points}
    xs = buckets(start, end, interval)
    out: Row = {"x": [int(b.timestamp()) for b in xs]}
    for name in ("pageviews", "visitors", "sessions"):
        out[name] = [int(by_bucket[b][name]) if b in by_bucket else 0 for b in xs]
    return out


@dataclass(frozen=True)
class Marker:
    at: datetime
    kind: str  # "incident" or "anomaly"
    label: str
    href: str | None


def markers(
    incidents: list[Row], anomalies: list[Row], start: datetime, end: datetime
) -> list[Marker]:
    """Incidents opened and anomalies flagged in ``[start, end)``, oldest first."""
    lo, hi = utc(start), utc(end)
    found = [
        Marker(utc(i["opened_at"]), "incident", str(i["title"]), f"/dashboard/incidents/{i['id']}")
        for i in incidents
        if lo <= utc(i["opened_at"]) < hi
    ]
    found += [
        Marker(utc(a["at"]), "anomaly", f"{a['family']} · {a['name']}: {a['explanation']}", None)
        for a in anomalies
        if lo <= utc(a["at"]) < hi
    ]
    return sorted(found, key=lambda m: m.at)


def drop_offs(steps: list[Row]) -> list[Row]:
    """``funnel_steps`` rows plus, from step 2 on, visitors lost since the previous step."""
    out = []
    for i, step in enumerate(steps):
        before = steps[i - 1]["visitors"] if i else None
        lost = before - step["visitors"] if before is not None else None
        lost_pct = round(100 * lost / before, 1) if lost is not None and before else None
        out.append({**step, "lost": lost, "lost_pct": lost_pct})
    return out
