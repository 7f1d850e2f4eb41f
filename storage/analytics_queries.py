"""SQL of the analytics reads (web, performance, metrics). Pure: each returns ``(sql, params)``.

Every query is scoped by a bound ``{project:UInt32}`` and a ``[since, until)`` range, and
reads a family table (``pageviews``, ``web_vitals``, ``transactions``, ``metrics``) with
FINAL (a replayed row is counted once; funnels and retention skip it, as a copy of a row
cannot change them) or ``sessions`` with FINAL (the newest version of a visit). Family
tables hold the attributes these queries read as typed columns (migration 0005), so no
query parses JSON.
``check_buckets`` bounds how many points a series may have; ``QUERY_SETTINGS`` bounds how
long ClickHouse may work on one query.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from storage.queries import utc

Sql = tuple[str, dict[str, Any]]
Interval = Literal["minute", "hour", "day"]

QUERY_SETTINGS: dict[str, Any] = {"max_execution_time": 10}
MAX_BUCKETS = 1500
MAX_FUNNEL_STEPS = 10
LIVE_WINDOW = timedelta(minutes=5)
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_BUCKET = {"minute": "toStartOfMinute", "hour": "toStartOfHour", "day": "toStartOfDay"}

# Columns of `pageviews`, named as the dimensions are.
EVENT_DIMENSIONS = frozenset({"page", "referrer", "utm_source", "utm_medium", "utm_campaign"})
SESSION_DIMENSIONS = {"browser": "browser", "os": "os", "device": "device_type"}
Dimension = Literal[
    "page", "referrer", "utm_source", "utm_medium", "utm_campaign", "browser", "os", "device"
]


class BadAnalyticsQuery(ValueError):
    """The parameters ask for something this API will not compute (the reason is the text)."""


def check_buckets(interval: Interval, since: datetime, until: datetime) -> None:
    """Refuse a series of more than ``MAX_BUCKETS`` points."""
    if (until - since) / _STEP[interval] > MAX_BUCKETS:
        raise BadAnalyticsQuery(
            f"at most {MAX_BUCKETS} {interval}s per series; use a coarser interval"
        )


def _range(project_id: int, since: datetime, until: datetime) -> dict[str, Any]:
    return {"project": project_id, "since": utc(since), "until": utc(until)}


Family = Literal["pageviews", "web_vitals", "transactions", "metrics"]
_IN_RANGE = (
    "project_id = {project:UInt32} "
    "AND timestamp >= {since:DateTime64(3, 'UTC')} AND timestamp < {until:DateTime64(3, 'UTC')}"
)


def _family(db: str, table: Family, kinds: tuple[str, ...] = (), final: bool = True) -> str:
    """FROM + WHERE over one project's rows of a family table in the range (no trailing AND);
    ``kinds`` narrows ``pageviews`` to page views or custom events. ``final=False`` only for
    aggregates a copy of a row cannot change (sets, min, funnel levels): FINAL costs time."""
    where = _IN_RANGE
    if kinds:
        names = ", ".join(f"'{k}'" for k in kinds)  # kinds are constants of this module
        where += f" AND kind IN ({names})"
    return f"FROM {db}.{table}{' FINAL' if final else ''} WHERE {where}"


def _whole(since: datetime, until: datetime, step: timedelta) -> tuple[datetime, datetime]:
    """The whole ``step`` buckets inside ``[since, until)``, as ``[lo, hi)`` (``lo == hi``
    when there are none): a rollup answers for them, the family table for the rest."""
    epoch = datetime(1970, 1, 1, tzinfo=since.tzinfo)
    lo = since + (-(since - epoch) % step)
    hi = until - (until - epoch) % step
    return lo, max(lo, hi)


def _rolled(project_id: int, since: datetime, until: datetime, step: timedelta) -> dict[str, Any]:
    lo, hi = _whole(since, until, step)
    return {**_range(project_id, since, until), "lo": utc(lo), "hi": utc(hi)}


def _in_whole(column: str) -> str:
    return f"{column} >= {{lo:DateTime64(3, 'UTC')}} AND {column} < {{hi:DateTime64(3, 'UTC')}}"


# Visitors of a row of `pageviews` outside the rollup's whole buckets (a state, so it
# merges with the rollup's), and the rollup's own rows inside them.
_EDGE_VISITORS = f"uniqCombined64StateIf(distinct_id, NOT ({_in_whole('timestamp')})) AS v"


def _pageviews(
    db: str, project_id: int, since: datetime, until: datetime, bucket: str | None
) -> Sql:
    """``pageviews`` (exact) and ``visitors`` per ``bucket`` (a function of time such as
    ``toStartOfHour``; None: one row for the range). Visitors merge the ``pageviews_1m``
    rollup's sets for whole minutes and ``pageviews`` for the ends (within about 1%)."""
    key, group = (f"{bucket}({{}}) AS bucket, ", "GROUP BY bucket") if bucket else ("", "")
    return (
        f"SELECT {'bucket, ' if bucket else ''}sum(n) AS pageviews, "
        "uniqCombined64Merge(v) AS visitors FROM ("
        f"SELECT {key.format('timestamp')}count() AS n, {_EDGE_VISITORS} "
        f"{_family(db, 'pageviews', ('pageview',))} {group} UNION ALL "
        f"SELECT {key.format('minute')}0 AS n, visitors AS v FROM {db}.pageviews_1m "
        f"WHERE project_id = {{project:UInt32}} AND {_in_whole('minute')}"
        f") {group}{' ORDER BY bucket' if bucket else ''}",
        _rolled(project_id, since, until, _STEP["minute"]),
    )


def pageview_series(
    db: str, project_id: int, since: datetime, until: datetime, interval: Interval
) -> Sql:
    """Per bucket: ``pageviews`` and ``visitors`` (see ``_pageviews``)."""
    return _pageviews(db, project_id, since, until, _BUCKET[interval])


def pageview_totals(db: str, project_id: int, since: datetime, until: datetime) -> Sql:
    """``pageviews`` and ``visitors`` of the whole range (one row)."""
    return _pageviews(db, project_id, since, until, None)


def session_series(
    db: str, project_id: int, since: datetime, until: datetime, interval: Interval
) -> Sql:
    """Per bucket of ``started_at``: ``sessions``, ``bounce_rate`` (%), ``avg_duration_s``."""
    return (
        f"SELECT {_BUCKET[interval]}(started_at) AS bucket, count() AS sessions, "
        "100 * avg(bounce) AS bounce_rate, avg(duration_s) AS avg_duration_s "
        f"FROM {db}.sessions FINAL WHERE project_id = {{project:UInt32}} "
        "AND started_at >= {since:DateTime64(3, 'UTC')} "
        "AND started_at < {until:DateTime64(3, 'UTC')} GROUP BY bucket ORDER BY bucket",
        _range(project_id, since, until),
    )


def breakdown(
    db: str, project_id: int, since: datetime, until: datetime, by: Dimension, limit: int
) -> Sql:
    """Top ``limit`` values of ``by``: page views and visitors (or sessions for devices).
    Page views are exact; visitors of page dimensions come from the hourly rollup's sets
    for whole hours (within about 1%), of devices from ``sessions`` (exact)."""
    params = {**_range(project_id, since, until), "limit": limit}
    if by in EVENT_DIMENSIONS:
        return (
            "SELECT value, sum(n) AS pageviews, uniqCombined64Merge(v) AS visitors FROM ("
            f"SELECT {by} AS value, count() AS n, {_EDGE_VISITORS} "
            f"{_family(db, 'pageviews', ('pageview',))} GROUP BY value UNION ALL "
            f"SELECT value, 0 AS n, visitors AS v FROM {db}.pageview_dimensions_1h "
            "WHERE project_id = {project:UInt32} AND dimension = {dimension:String} "
            f"AND {_in_whole('hour')}"
            ") GROUP BY value ORDER BY pageviews DESC, value LIMIT {limit:UInt32}",
            {**_rolled(project_id, since, until, _STEP["hour"]), "limit": limit, "dimension": by},
        )
    return (
        f"SELECT {SESSION_DIMENSIONS[by]} AS value, count() AS sessions, "
        f"uniqExact(distinct_id) AS visitors FROM {db}.sessions FINAL "
        "WHERE project_id = {project:UInt32} AND started_at >= {since:DateTime64(3, 'UTC')} "
        "AND started_at < {until:DateTime64(3, 'UTC')} "
        "GROUP BY value ORDER BY sessions DESC, value LIMIT {limit:UInt32}",
        params,
    )


def funnel(
    db: str,
    project_id: int,
    since: datetime,
    until: datetime,
    steps: list[str],
    window_s: int,
) -> Sql:
    """How many visitors reached each depth of ``steps`` in order within ``window_s``.

    A step starting with ``/`` is a page path (a page view of it); any other is the name
    of a custom ``event``. Rows are ``(level, visitors)`` over the visitors with a row
    matching some step; level 0 is "matched a later step, never the first"."""
    if not 2 <= len(steps) <= MAX_FUNNEL_STEPS:
        raise BadAnalyticsQuery(f"a funnel has 2 to {MAX_FUNNEL_STEPS} steps")
    params: dict[str, Any] = {**_range(project_id, since, until), "window": window_s}
    conditions = []
    for i, step in enumerate(steps):
        params[f"s{i}"] = step
        if step.startswith("/"):
            conditions.append(f"kind = 'pageview' AND page = {{s{i}:String}}")
        else:
            conditions.append(f"kind = 'event' AND name = {{s{i}:String}}")
    levels = ", ".join(f"({c})" for c in conditions)
    # Only rows matching a step move a funnel, so the others are not read into it.
    matching = " OR ".join(f"({c})" for c in conditions)
    return (
        "SELECT level, count() AS visitors FROM ("
        "SELECT distinct_id, windowFunnel({window:UInt64})(toDateTime(timestamp), "
        f"{levels}) AS level {_family(db, 'pageviews', final=False)} AND distinct_id != '' "
        f"AND ({matching}) GROUP BY distinct_id) GROUP BY level ORDER BY level",
        params,
    )


def funnel_steps(steps: list[str], levels: dict[int, int]) -> list[dict[str, Any]]:
    """Visitors per step (those whose funnel level reached it) and conversion from step 1."""
    reached = [sum(n for level, n in levels.items() if level > i) for i in range(len(steps))]
    first = reached[0]
    return [
        {
            "step": step,
            "visitors": n,
            "conversion_pct": round(100 * n / first, 2) if first else None,
        }
        for step, n in zip(steps, reached, strict=True)
    ]


def retention(db: str, project_id: int, since: datetime, until: datetime) -> Sql:
    """Weekly cohorts: visitors by the Monday of their first page view or event in range,
    and how many of them came back ``week`` weeks later. Rows ``(cohort, week, visitors)``.
    """
    return (
        "SELECT cohort, intDiv(dateDiff('day', cohort, active), 7) AS week, "
        "count() AS visitors FROM ("
        "SELECT distinct_id, min(monday) AS cohort, groupUniqArray(monday) AS weeks FROM ("
        "SELECT distinct_id, toMonday(timestamp) AS monday "
        f"{_family(db, 'pageviews', final=False)} AND distinct_id != '') GROUP BY distinct_id"
        ") ARRAY JOIN weeks AS active GROUP BY cohort, week ORDER BY cohort, week",
        _range(project_id, since, until),
    )


def live_visitors(db: str, project_id: int, now: datetime) -> Sql:
    """Distinct visitors with a page view, event or web vital in the last five minutes."""
    return (
        "SELECT uniqExact(distinct_id) AS visitors FROM ("
        f"SELECT distinct_id {_family(db, 'pageviews')} AND distinct_id != '' UNION ALL "
        f"SELECT distinct_id {_family(db, 'web_vitals')} AND distinct_id != '')",
        _range(project_id, now - LIVE_WINDOW, now + timedelta(seconds=1)),
    )


def web_vitals(db: str, project_id: int, since: datetime, until: datetime, limit: int) -> Sql:
    """p75 of each web vital per page (the Core Web Vitals threshold statistic)."""
    return (
        "SELECT page, name AS vital, quantile(0.75)(value) AS p75, count() AS samples "
        f"{_family(db, 'web_vitals')} GROUP BY page, vital "
        "ORDER BY samples DESC, page, vital LIMIT {limit:UInt32}",
        {**_range(project_id, since, until), "limit": limit},
    )


def routes(
    db: str,
    project_id: int,
    since: datetime,
    until: datetime,
    limit: int,
    order: Literal["requests", "p95"],
) -> Sql:
    """Per route: requests, latency p50/p95/p99 (ms) and failed requests; busiest or slowest
    first. Throughput and error rate are derived from these by ``route_json``.
    """
    return (
        "SELECT route, count() AS requests, countIf(failed) AS failed, "
        "quantiles(0.5, 0.95, 0.99)(duration_ms) AS latency "
        f"{_family(db, 'transactions')} GROUP BY route "
        f"ORDER BY {'requests' if order == 'requests' else 'latency[2]'} DESC, route "
        "LIMIT {limit:UInt32}",
        {**_range(project_id, since, until), "limit": limit},
    )


def route_json(row: dict[str, Any], since: datetime, until: datetime) -> dict[str, Any]:
    """A ``routes`` row with requests per minute and the error rate in percent."""
    minutes = (until - since).total_seconds() / 60
    requests, failed = int(row["requests"]), int(row["failed"])
    p50, p95, p99 = (float(v) for v in row["latency"])
    return {
        "route": row["route"],
        "requests": requests,
        "throughput_rpm": round(requests / minutes, 4),
        "error_rate_pct": round(100 * failed / requests, 2) if requests else None,
        "latency_ms": {"p50": p50, "p95": p95, "p99": p99},
    }


def metric_series(
    db: str, project_id: int, since: datetime, until: datetime, interval: Interval, name: str
) -> Sql:
    """Per bucket of one metric ``name``: count, avg, min, max, p50/p95/p99 of ``value``."""
    return (
        f"SELECT {_BUCKET[interval]}(timestamp) AS bucket, count() AS count, "
        "avg(value) AS avg, min(value) AS min, max(value) AS max, "
        f"quantiles(0.5, 0.95, 0.99)(value) AS q {_family(db, 'metrics')} "
        "AND name = {name:String} GROUP BY bucket ORDER BY bucket",
        {**_range(project_id, since, until), "name": name},
    )
