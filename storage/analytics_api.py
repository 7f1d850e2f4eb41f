"""Analytics endpoints: web traffic, funnels, retention, performance and metric series.

(No ``from __future__ import annotations``: FastAPI resolves ``Annotated`` at definition.)

Every query reads only the calling key's project, over at most ``MAX_RANGE`` (400 days)
and ``MAX_BUCKETS`` points, and ClickHouse stops it after ``max_execution_time``; a query
stopped that way answers 422 ``query_too_expensive`` (narrow the range), never 5xx.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from storage import analytics_queries as aq
from storage import analytics_shape as shape
from storage.client import Engine
from storage.derived_api import jsonable
from storage.read_common import ApiError, ProjectKey, time_range

Clock = Callable[[], datetime]


def _example(body: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": body}}}}


def analytics_router(
    engine: Engine,
    reader: Callable[..., ProjectKey],
    max_page: int,
    clock: Clock = lambda: datetime.now(UTC),
) -> APIRouter:
    """The analytics endpoints, authorised by ``reader`` (the read API's dependency)."""
    router = APIRouter(prefix="/v1/analytics", tags=["analytics"])
    db = engine.database
    Reader = Annotated[ProjectKey, Depends(reader)]
    Since = Annotated[datetime | None, Query(description="start (ISO-8601); default 1 day ago")]
    Until = Annotated[datetime | None, Query(description="end, exclusive; default now")]
    Top = Annotated[int, Query(ge=1, le=min(max_page, 1000), description="rows")]
    Step = Annotated[aq.Interval, Query(description="bucket width")]

    async def rows(sql: aq.Sql) -> list[dict[str, Any]]:
        try:
            return await engine.rows(*sql, settings=aq.QUERY_SETTINGS)
        except Exception as exc:
            if shape.timed_out(exc):
                raise ApiError(422, "query_too_expensive", "narrow the time range") from None
            raise

    def span(
        since: datetime | None, until: datetime | None, interval: aq.Interval | None = None
    ) -> tuple[datetime, datetime]:
        start, end = time_range(since, until, timedelta(days=1))
        if interval is not None:
            try:
                aq.check_buckets(interval, start, end)
            except aq.BadAnalyticsQuery as exc:
                raise ApiError(400, "too_many_buckets", str(exc)) from None
        return start, end

    @router.get(
        "/web/series",
        summary="Page views, unique visitors, sessions, bounce rate and duration per interval",
        responses=_example(
            {
                "interval": "hour",
                "data": [
                    {
                        "bucket": "2026-01-02T10:00:00Z",
                        "pageviews": 120,
                        "visitors": 40,
                        "sessions": 45,
                        "bounce_rate": 35.5,
                        "avg_duration_s": 81.2,
                    }
                ],
            }
        ),
    )
    async def web_series(
        key: Reader, interval: Step = "hour", since: Since = None, until: Until = None
    ) -> dict[str, Any]:
        start, end = span(since, until, interval)
        p = key.project_id
        views = await rows(aq.pageview_series(db, p, start, end, interval))
        visits = await rows(aq.session_series(db, p, start, end, interval))
        data = [jsonable(point) for point in shape.merge_series(views, visits)]
        return {"interval": interval, "data": data}

    @router.get(
        "/web/breakdown",
        summary="Top pages, referrers, UTM values (by page views) or browsers, OS, devices",
        responses=_example(
            {"by": "page", "data": [{"value": "/pricing", "pageviews": 80, "visitors": 31}]}
        ),
    )
    async def web_breakdown(
        key: Reader,
        by: aq.Dimension = "page",
        since: Since = None,
        until: Until = None,
        limit: Top = 20,
    ) -> dict[str, Any]:
        start, end = span(since, until)
        data = await rows(aq.breakdown(db, key.project_id, start, end, by, limit))
        return {"by": by, "data": [jsonable(r) for r in data]}

    @router.get(
        "/web/funnel",
        summary="Ordered funnel (windowFunnel): visitors reaching each step within a window",
        description="A step starting with '/' is a page path; any other is a custom event name.",
        responses=_example(
            {
                "window_s": 3600,
                "steps": [
                    {"step": "/pricing", "visitors": 100, "conversion_pct": 100.0},
                    {"step": "signup", "visitors": 12, "conversion_pct": 12.0},
                ],
            }
        ),
    )
    async def web_funnel(
        key: Reader,
        steps: Annotated[list[str], Query(min_length=2, max_length=aq.MAX_FUNNEL_STEPS)],
        window_s: Annotated[int, Query(ge=1, le=30 * 86400)] = 3600,
        since: Since = None,
        until: Until = None,
    ) -> dict[str, Any]:
        if any(not 1 <= len(s) <= 500 for s in steps):
            raise ApiError(400, "invalid_parameters", "each step is 1 to 500 characters")
        start, end = span(since, until)
        found = await rows(aq.funnel(db, key.project_id, start, end, steps, window_s))
        levels = shape.funnel_levels(found)
        return {"window_s": window_s, "steps": aq.funnel_steps(steps, levels)}

    @router.get(
        "/web/retention",
        summary="Weekly retention cohorts: visitors by first week, and who came back",
        responses=_example(
            {
                "data": [
                    {"cohort": "2026-01-05", "size": 50, "weeks": [50, 12, 7]},
                ]
            }
        ),
    )
    async def web_retention(key: Reader, since: Since = None, until: Until = None) -> Any:
        start, end = time_range(since, until, timedelta(weeks=8))
        return {"data": shape.cohorts(await rows(aq.retention(db, key.project_id, start, end)))}

    @router.get(
        "/web/live",
        summary="Visitors seen in the last five minutes",
        responses=_example({"visitors": 7, "window_s": 300}),
    )
    async def web_live(key: Reader) -> dict[str, Any]:
        found = await rows(aq.live_visitors(db, key.project_id, clock()))
        return {"visitors": int(found[0]["visitors"]), "window_s": 300}

    @router.get(
        "/performance/vitals",
        summary="Web vitals (LCP, INP, CLS, FCP, TTFB) at p75 per page",
        responses=_example(
            {"data": [{"page": "/", "vital": "LCP", "p75": 2300.0, "samples": 510}]}
        ),
    )
    async def vitals(
        key: Reader, since: Since = None, until: Until = None, limit: Top = 100
    ) -> dict[str, Any]:
        start, end = span(since, until)
        data = await rows(aq.web_vitals(db, key.project_id, start, end, limit))
        return {"data": [jsonable(r) for r in data]}

    route_example = {
        "data": [
            {
                "route": "GET /api/orders",
                "requests": 600,
                "throughput_rpm": 0.4167,
                "error_rate_pct": 1.5,
                "latency_ms": {"p50": 40.0, "p95": 210.0, "p99": 480.0},
            }
        ]
    }

    async def route_rows(
        key: ProjectKey,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        order: Literal["requests", "p95"],
    ) -> dict[str, Any]:
        start, end = span(since, until)
        data = await rows(aq.routes(db, key.project_id, start, end, limit, order))
        return {"data": [aq.route_json(r, start, end) for r in data]}

    @router.get(
        "/performance/routes",
        summary="Per route: p50/p95/p99 latency, throughput (per minute) and error rate",
        responses=_example(route_example),
    )
    async def perf_routes(
        key: Reader, since: Since = None, until: Until = None, limit: Top = 50
    ) -> dict[str, Any]:
        return await route_rows(key, since, until, limit, "requests")

    @router.get(
        "/performance/slowest",
        summary="The slowest routes by p95 latency",
        responses=_example(route_example),
    )
    async def perf_slowest(
        key: Reader, since: Since = None, until: Until = None, limit: Top = 10
    ) -> dict[str, Any]:
        return await route_rows(key, since, until, limit, "p95")

    @router.get(
        "/metrics/series",
        summary="One metric per interval: count, avg, min, max and p50/p95/p99",
        responses=_example(
            {
                "name": "queue.depth",
                "interval": "minute",
                "data": [
                    {
                        "bucket": "2026-01-02T10:00:00Z",
                        "count": 6,
                        "avg": 12.5,
                        "min": 3.0,
                        "max": 30.0,
                        "p50": 10.0,
                        "p95": 28.0,
                        "p99": 29.6,
                    }
                ],
            }
        ),
    )
    async def metric_series(
        key: Reader,
        name: Annotated[str, Query(min_length=1, max_length=200)],
        interval: Step = "minute",
        since: Since = None,
        until: Until = None,
    ) -> dict[str, Any]:
        start, end = span(since, until, interval)
        found = await rows(aq.metric_series(db, key.project_id, start, end, interval, name))
        data = []
        for r in found:
            p50, p95, p99 = r.pop("q")
            data.append(jsonable({**r, "p50": p50, "p95": p95, "p99": p99}))
        return {"name": name, "interval": interval, "data": data}

    return router
