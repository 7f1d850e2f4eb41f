"""Figures from session rows, for what no aggregate builder can narrow. Pure.

The analytics builders take no filter, and none groups sessions by entry or exit page; the
session pager (``derived_queries.sessions``) does return whole session rows. So filtered
figures and the entry/exit lists fold over the latest sessions of a window, at most a cap
of them (the screen says so when the cap is reached). A session belongs to the window its
``started_at`` falls in, as it does in ``session_series``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from storage import analytics_queries as aq
from storage.dashboard.period import floor
from storage.dashboard.traffic import Totals
from storage.queries import utc

Row = dict[str, Any]


def value(row: Row, column: str) -> str:
    """A column as filters compare it: a missing value is the empty string."""
    found = row.get(column)
    return "" if found is None else str(found)


def matching(
    rows: Iterable[Row], filters: dict[str, str], start: datetime, end: datetime
) -> list[Row]:
    """Sessions started in ``[start, end)`` whose columns equal every filter value."""
    lo, hi = utc(start), utc(end)
    return [
        r
        for r in rows
        if lo <= utc(r["started_at"]) < hi and all(value(r, c) == v for c, v in filters.items())
    ]


def totals(rows: list[Row]) -> Totals:
    """Page views (the sessions' own counts), visitors, sessions, bounce rate, duration."""
    if not rows:
        return Totals(0, 0, 0, None, None)
    n = len(rows)
    return Totals(
        pageviews=sum(int(r["pageviews"]) for r in rows),
        visitors=len({r["distinct_id"] for r in rows if r["distinct_id"]}),
        sessions=n,
        bounce_rate=100 * sum(1 for r in rows if r["bounce"]) / n,
        avg_duration_s=sum(float(r["duration_s"]) for r in rows) / n,
    )


def top(rows: list[Row], column: str, limit: int) -> list[Row]:
    """``{"value", "sessions", "visitors"}`` per value of ``column``, most sessions first."""
    sessions: dict[str, int] = defaultdict(int)
    visitors: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        key = value(r, column)
        sessions[key] += 1
        if r["distinct_id"]:
            visitors[key].add(r["distinct_id"])
    ranked = sorted(sessions, key=lambda k: (-sessions[k], k))[:limit]
    return [{"value": k, "sessions": sessions[k], "visitors": len(visitors[k])} for k in ranked]


def series(rows: list[Row], interval: aq.Interval) -> list[Row]:
    """Per bucket of ``started_at``: page views, visitors and sessions, oldest first."""
    grouped: dict[datetime, list[Row]] = defaultdict(list)
    for r in rows:
        grouped[floor(r["started_at"], interval)].append(r)
    out = []
    for bucket in sorted(grouped):
        t = totals(grouped[bucket])
        out.append(
            {
                "bucket": bucket,
                "pageviews": t.pageviews,
                "visitors": t.visitors,
                "sessions": t.sessions,
            }
        )
    return out
