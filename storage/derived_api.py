"""Read endpoints over the derived tables: issues, incidents, monitors, sessions, alerts.

(No ``from __future__ import annotations``: FastAPI resolves ``Annotated`` at definition.)

Every endpoint reads only the calling key's project; an id of another project answers 404
exactly like an unknown one. Lists are newest (or largest) first, at most
``api_max_page_size`` rows a page, and continue with ``cursor=<next_cursor>``.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Path, Query

from pulseline.records.incidents import IncidentKind, IncidentState
from pulseline.records.issues import IssueStatus
from pulseline.records.monitors import MonitorStatus
from storage import derived_queries as q
from storage import export, queries
from storage.client import Engine
from storage.health import HealthCounts, health_score
from storage.read_common import ApiError, ProjectKey, time_range

Clock = Callable[[], datetime]


def _example(body: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": body}}}}


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON: times in UTC ``Z``, UUIDs as text, NaN as null."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            v = queries.utc(v).isoformat().replace("+00:00", "Z")
        elif isinstance(v, UUID):
            v = str(v)
        elif isinstance(v, float):
            v = q.finite(v)
        out[k] = v
    return out


def _incident_json(row: dict[str, Any]) -> dict[str, Any]:
    out = jsonable(row)
    out["links"] = orjson.loads(row["links"]) if row["links"] else {}
    out["resolve_reason"] = row["resolve_reason"] or None
    return out


ISSUE = {
    "fingerprint": "9f1c2e",
    "title": "KeyError: 'user'",
    "status": "unresolved",
    "level": "error",
    "count": 42,
    "users": 7,
    "first_seen": "2026-01-01T00:00:00Z",
    "last_seen": "2026-01-02T10:00:00Z",
}
INCIDENT = {
    "id": "inc_01",
    "kind": "monitor_missed",
    "severity": "error",
    "state": "open",
    "title": "nightly-backup missed its check-in",
    "links": {"monitor_id": "mon_1"},
    "opened_at": "2026-01-02T03:05:00Z",
    "updated_at": "2026-01-02T03:05:00Z",
    "version": 1,
}
MONITOR = {
    "monitor_id": "mon_1",
    "slug": "nightly-backup",
    "name": "Nightly backup",
    "schedule": "0 3 * * *",
    "paused": False,
    "state": "up",
    "last_ping_at": "2026-01-02T03:01:12Z",
    "next_expected_at": "2026-01-03T03:00:00Z",
}


def derived_router(
    engine: Engine,
    reader: Callable[..., ProjectKey],
    max_page: int,
    clock: Clock = lambda: datetime.now(UTC),
) -> APIRouter:
    """The derived-table endpoints, authorised by ``reader`` (the read API's dependency)."""
    router = APIRouter()
    db = engine.database
    Reader = Annotated[ProjectKey, Depends(reader)]
    Limit = Annotated[int, Query(ge=1, le=max_page, description="rows per page")]
    Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of a page")]
    Id = Annotated[str, Path(min_length=1, max_length=200)]

    async def page(
        keys: tuple[tuple[str, str], ...],
        limit: int,
        build: Callable[[q.Page], q.Sql],
        to_json: Callable[[dict[str, Any]], dict[str, Any]] = jsonable,
    ) -> dict[str, Any]:
        paging = q.Page(keys, limit)
        try:
            sql, params = build(paging)
        except queries.BadCursor as exc:
            raise ApiError(400, "invalid_cursor", str(exc)) from None
        rows = await engine.rows(sql, params)
        return {"data": [to_json(r) for r in rows], "next_cursor": paging.next_cursor(rows)}

    Format = Annotated[
        export.ExportFormat | None, Query(description="stream every page as csv or ndjson")
    ]

    def exported(
        fmt: export.ExportFormat,
        name: str,
        keys: tuple[tuple[str, str], ...],
        build: Callable[[q.Page, str | None], q.Sql],
        to_json: Callable[[dict[str, Any]], dict[str, Any]] = jsonable,
    ) -> Any:
        async def read(after: str | None) -> tuple[list[dict[str, Any]], str | None]:
            paging = q.Page(keys, max_page)
            rows = await engine.rows(*build(paging, after))
            return [to_json(r) for r in rows], paging.next_cursor(rows)

        return export.response(fmt, name, read)

    async def one(sql: q.Sql, what: str) -> dict[str, Any]:
        rows = await engine.rows(*sql)
        if not rows:
            raise ApiError(404, "not_found", f"no {what} in this project")
        return rows[0]

    @router.get(
        "/v1/issues",
        summary="List issues (errors grouped by fingerprint), by last seen or by count",
        responses=_example({"data": [ISSUE], "next_cursor": None}),
    )
    async def list_issues(
        key: Reader,
        status: IssueStatus | None = None,
        sort: Literal["last_seen", "count"] = "last_seen",
        limit: Limit = 50,
        cursor: Cursor = None,
        format: Format = None,
    ) -> Any:
        if format is not None:
            return exported(
                format,
                "issues",
                q.ISSUE_SORTS[sort],
                lambda p, c: q.issues(db, key.project_id, p, c, status),
            )
        return await page(
            q.ISSUE_SORTS[sort],
            limit,
            lambda p: q.issues(db, key.project_id, p, cursor, status),
        )

    @router.get(
        "/v1/issues/{fingerprint}",
        summary="One issue, with its latest error event (null if not stored)",
        responses=_example({**ISSUE, "latest_event": {"event_id": "0b6f…", "kind": "error"}}),
    )
    async def get_issue(key: Reader, fingerprint: Id) -> dict[str, Any]:
        row = await one(q.issue(db, key.project_id, fingerprint), f"issue {fingerprint}")
        out = jsonable(row)
        out["latest_event"] = None
        link = await engine.rows(*q.latest_error_of(db, key.project_id, fingerprint))
        if link:
            events = await engine.rows(
                *queries.event_by_id(db, key.project_id, link[0]["event_id"])
            )
            out["latest_event"] = queries.event_json(events[0]) if events else None
        return out

    @router.get(
        "/v1/incidents",
        summary="List incidents, most recently updated first",
        responses=_example({"data": [INCIDENT], "next_cursor": None}),
    )
    async def list_incidents(
        key: Reader,
        state: IncidentState | None = None,
        kind: IncidentKind | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
        format: Format = None,
    ) -> Any:
        s, k = (state.value if state else None), (kind.value if kind else None)
        if format is not None:
            return exported(
                format,
                "incidents",
                q.INCIDENT_PAGE,
                lambda p, c: q.incidents(db, key.project_id, p, c, s, k),
                _incident_json,
            )
        return await page(
            q.INCIDENT_PAGE,
            limit,
            lambda p: q.incidents(db, key.project_id, p, cursor, s, k),
            _incident_json,
        )

    @router.get(
        "/v1/incidents/{incident_id}",
        summary="One incident in its newest version",
        responses=_example(INCIDENT),
    )
    async def get_incident(key: Reader, incident_id: Id) -> dict[str, Any]:
        row = await one(q.incident(db, key.project_id, incident_id), f"incident {incident_id}")
        return _incident_json(row)

    @router.get(
        "/v1/monitors",
        summary="List cron monitors with their state, last ping and next expected ping",
        responses=_example({"data": [MONITOR], "next_cursor": None}),
    )
    async def list_monitors(
        key: Reader, state: MonitorStatus | None = None, limit: Limit = 50, cursor: Cursor = None
    ) -> dict[str, Any]:
        return await page(
            q.MONITOR_PAGE, limit, lambda p: q.monitors(db, key.project_id, p, cursor, state)
        )

    async def known_monitor(key: ProjectKey, monitor_id: str) -> dict[str, Any]:
        return await one(q.monitor(db, key.project_id, monitor_id), f"monitor {monitor_id}")

    @router.get(
        "/v1/monitors/{monitor_id}/runs",
        summary="A monitor's runs, newest first: status, duration, exit code, output tail",
        responses=_example(
            {
                "data": [
                    {
                        "run_id": "r_9",
                        "status": "fail",
                        "at": "2026-01-02T03:00:00Z",
                        "started_at": "2026-01-02T03:00:00Z",
                        "finished_at": "2026-01-02T03:01:12Z",
                        "duration_ms": 72000,
                        "exit_code": 2,
                        "output_size": 5120,
                        "output_tail": "rsync: connection refused",
                    }
                ],
                "next_cursor": None,
            }
        ),
    )
    async def list_runs(
        key: Reader, monitor_id: Id, limit: Limit = 50, cursor: Cursor = None
    ) -> dict[str, Any]:
        await known_monitor(key, monitor_id)
        return await page(
            q.RUN_PAGE, limit, lambda p: q.runs(db, key.project_id, monitor_id, p, cursor)
        )

    @router.get(
        "/v1/monitors/{monitor_id}/health",
        summary="Uptime over 7/30/90 days, run-duration percentiles and the health score",
        description=(
            "Uptime is ok runs over finished runs (null without runs). The score starts at "
            "100; over 7 days: -5 per failed run, -10 per missed check-in (monitor_missed "
            "incident or lost run), -3 per late run (monitor_late incident), +2 per on-time "
            "success (ok runs minus late ones); clamped to 0..100."
        ),
        responses=_example(
            {
                "monitor_id": "mon_1",
                "uptime_pct": {"7d": 100.0, "30d": 96.7, "90d": 98.9},
                "duration_ms": {"p50": 61000.0, "p95": 70100.0, "p99": 72000.0},
                "counts_7d": {"failures": 0, "missed": 0, "late": 0, "on_time_successes": 7},
                "health_score": 100,
            }
        ),
    )
    async def monitor_health(key: Reader, monitor_id: Id) -> dict[str, Any]:
        await known_monitor(key, monitor_id)
        now = clock()
        runs = (await engine.rows(*q.run_health(db, key.project_id, monitor_id, now)))[0]
        alerts = (await engine.rows(*q.monitor_incidents(db, key.project_id, monitor_id, now)))[0]
        late = int(alerts["late"])
        counts = HealthCounts(
            failures=int(runs["failed_7"]),
            missed=int(alerts["missed"]) + int(runs["lost_7"]),
            late=late,
            on_time_successes=max(0, int(runs["ok_7"]) - late),
        )
        uptime = {
            f"{d}d": round(100 * runs[f"ok_{d}"] / runs[f"done_{d}"], 2)
            if runs[f"done_{d}"]
            else None
            for d in q.HEALTH_WINDOWS
        }
        levels = [f"p{round(p * 100)}" for p in q.PERCENTILES]
        durations = [q.finite(float(v)) for v in runs["durations"]] or [None] * len(levels)
        return {
            "monitor_id": monitor_id,
            "uptime_pct": uptime,
            "duration_ms": dict(zip(levels, durations, strict=True)),
            "counts_7d": vars(counts),
            "health_score": health_score(counts),
        }

    @router.get(
        "/v1/sessions",
        summary="Recent sessions (visits), most recently active first",
        responses=_example(
            {
                "data": [
                    {
                        "session_id": "s_1",
                        "distinct_id": "u_1",
                        "started_at": "2026-01-02T10:00:00Z",
                        "last_seen": "2026-01-02T10:04:10Z",
                        "pageviews": 3,
                        "duration_s": 250.0,
                        "bounce": False,
                        "closed": True,
                    }
                ],
                "next_cursor": None,
            }
        ),
    )
    async def list_sessions(
        key: Reader,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        start, end = time_range(since, until, timedelta(days=1))
        return await page(
            q.SESSION_PAGE,
            limit,
            lambda p: q.sessions(db, key.project_id, p, cursor, start, end),
        )

    @router.get(
        "/v1/alerts/deliveries",
        summary="The alert delivery log: every attempt to notify a channel, newest first",
        responses=_example(
            {
                "data": [
                    {
                        "delivery_id": "msg_1",
                        "attempt": 1,
                        "status": "delivered",
                        "incident_id": "inc_01",
                        "channel_id": "ch_1",
                        "channel_type": "slack",
                        "http_status": 200,
                        "at": "2026-01-02T03:05:01Z",
                    }
                ],
                "next_cursor": None,
            }
        ),
    )
    async def list_deliveries(
        key: Reader,
        incident_id: Annotated[str | None, Query(max_length=200)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        start, end = time_range(since, until, timedelta(days=7))
        return await page(
            q.DELIVERY_PAGE,
            limit,
            lambda p: q.deliveries(db, key.project_id, p, cursor, start, end, incident_id),
        )

    @router.get(
        "/v1/anomalies",
        summary="Values the anomaly rules flagged, newest first, with why",
        responses=_example(
            {
                "data": [
                    {
                        "series": "1|check_in.duration|nightly-backup",
                        "family": "check_in.duration",
                        "name": "nightly-backup",
                        "rule": "duration",
                        "value": 540000.0,
                        "score": 6.1,
                        "explanation": "6.1 standard deviations above the mean",
                        "at": "2026-01-02T03:09:00Z",
                    }
                ],
                "next_cursor": None,
            }
        ),
    )
    async def list_anomalies(
        key: Reader,
        family: Annotated[str | None, Query(max_length=100)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> dict[str, Any]:
        start, end = time_range(since, until, timedelta(days=7))
        return await page(
            q.ANOMALY_PAGE,
            limit,
            lambda p: q.anomalies(db, key.project_id, p, cursor, start, end, family),
        )

    return router
