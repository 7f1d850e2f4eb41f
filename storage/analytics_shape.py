"""What the read API and the dashboard both make of analytics rows. Pure: no I/O.

The SQL lives in ``storage.analytics_queries``; these functions only reshape its rows, so
``/v1/analytics/...`` and ``/dashboard/analytics`` cannot disagree about a number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

TIMEOUT_CODE = "159"  # ClickHouse TIMEOUT_EXCEEDED


def timed_out(exc: Exception) -> bool:
    """Whether ClickHouse stopped the query at ``max_execution_time`` (narrow the range)."""
    text = str(exc)
    return TIMEOUT_CODE in text or "TIMEOUT_EXCEEDED" in text


def merge_series(views: list[dict[str, Any]], visits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``pageview_series`` and ``session_series`` rows as one point per bucket, oldest first.

    A bucket missing from one side counts 0 page views, visitors and sessions; its bounce
    rate and average duration are None (no session started in it).
    """
    merged: dict[datetime, dict[str, Any]] = {}
    empty = {"pageviews": 0, "visitors": 0, "sessions": 0}
    for r in views + visits:
        point = merged.setdefault(r["bucket"], {"bucket": r["bucket"], **empty})
        point.update({k: v for k, v in r.items() if k != "bucket"})
    points = [merged[b] for b in sorted(merged)]
    for point in points:
        point.setdefault("bounce_rate", None)
        point.setdefault("avg_duration_s", None)
    return points


def cohorts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``retention`` rows as ``{"cohort", "size", "weeks"}``; ``size`` is week 0.

    Every visitor belongs to exactly one cohort (the week of their first page view or
    event in the range), so the sizes add up to the distinct visitors of the range.
    """
    found: dict[str, dict[str, Any]] = {}
    for r in rows:
        name = r["cohort"].isoformat()
        cohort = found.setdefault(name, {"cohort": name, "size": 0, "weeks": []})
        week, n = int(r["week"]), int(r["visitors"])
        cohort["weeks"] += [0] * (week + 1 - len(cohort["weeks"]))
        cohort["weeks"][week] = n
        if week == 0:
            cohort["size"] = n
    return list(found.values())


def funnel_levels(rows: list[dict[str, Any]]) -> dict[int, int]:
    """``funnel`` rows as ``{level: visitors}`` (the input of ``funnel_steps``)."""
    return {int(r["level"]): int(r["visitors"]) for r in rows}
