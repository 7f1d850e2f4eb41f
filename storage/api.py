"""The read API: project-scoped reads over what the sink stored.

(No ``from __future__ import annotations`` here: FastAPI resolves the closure-local
``Annotated`` aliases at definition time.)

Errors map to HTTP in one place (``_error``): ``ApiError`` carries its status; bad
parameters are 4xx, never 5xx.
"""

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest

from pulseline.keys import KeyRing, Scope
from pulseline.logs import RequestIds
from pulseline.schemas import EventKind
from pulseline.settings import StorageSettings
from storage import export, queries
from storage.actions_api import Publisher, TableLookup, actions_router
from storage.analytics_api import analytics_router
from storage.client import Engine
from storage.dashboard.routes import dashboard_router
from storage.derived_api import derived_router
from storage.live_api import live_router
from storage.metrics import StorageMetrics
from storage.read_common import ApiError, ProjectKey, time_range


def _error(
    status: int, code: str, detail: Any, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status, headers=headers)


def create_app(
    settings: StorageSettings,
    engine: Engine,
    keyring: KeyRing,
    metrics: StorageMetrics,
    admin: APIRouter | None = None,
    publisher: Publisher | None = None,
) -> FastAPI:
    app = FastAPI(title="Pulseline read API", version="1")
    db = engine.database

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error(exc.status, exc.code, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"][1:]), "problem": e["msg"]}
            for e in exc.errors()
        ]
        return _error(400, "invalid_parameters", problems)

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.requests.labels(path, str(response.status_code)).inc()
        return response

    def reader(request: Request) -> ProjectKey:
        header = request.headers.get("authorization", "")
        raw = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if not raw:
            raise ApiError(401, "missing_key", "send a read key as 'Authorization: Bearer <key>'")
        key = keyring.lookup(raw)
        if key is None:
            raise ApiError(401, "invalid_key", "the key is unknown or revoked")
        if key.scope not in (Scope.READ, Scope.ADMIN):
            raise ApiError(403, "wrong_scope", f"a {key.scope} key cannot read; use a read key")
        if key.project_id is None:
            raise ApiError(403, "no_project", "this admin key spans projects; use a read key")
        return ProjectKey(key.project_id, key.scope)

    Reader = Annotated[ProjectKey, Depends(reader)]
    app.include_router(derived_router(engine, reader, settings.api_max_page_size))
    app.include_router(analytics_router(engine, reader, settings.api_max_page_size))
    app.include_router(
        actions_router(reader, TableLookup(engine), publisher, settings.topic_prefix)
    )
    app.include_router(live_router(settings, reader))
    app.include_router(dashboard_router(engine, keyring))

    def events_pages(
        project_id: int,
        start: datetime,
        end: datetime,
        kind: EventKind | None,
        first: queries.Cursor | None,
    ) -> export.PageReader:
        """Pages of events for an export, from ``first`` on (cursors are ``Cursor`` text)."""
        size = settings.api_max_page_size

        async def read(after: str | None) -> tuple[list[dict[str, Any]], str | None]:
            at = queries.Cursor.decode(after) if after else first
            query = queries.EventQuery(
                project_id, start, end, size, kind.value if kind else None, at
            )
            rows = await engine.rows(*query.sql(db))
            more = len(rows) == size
            last = queries.Cursor(rows[-1]["timestamp"], rows[-1]["event_id"]) if more else None
            return [queries.event_json(r) for r in rows], last.encode() if last else None

        return read

    @app.get("/v1/events", summary="List stored events, newest first (keyset pagination)")
    async def list_events(
        key: Reader,
        kind: EventKind | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=settings.api_max_page_size)] = 100,
        cursor: str | None = None,
        format: export.ExportFormat | None = None,
    ) -> Any:
        start, end = time_range(since, until, timedelta(days=7))
        try:
            after = queries.Cursor.decode(cursor) if cursor else None
        except queries.BadCursor as exc:
            raise ApiError(400, "invalid_cursor", str(exc)) from None
        if format is not None:
            return export.response(
                format, "events", events_pages(key.project_id, start, end, kind, after)
            )
        query = queries.EventQuery(
            key.project_id, start, end, limit, kind.value if kind else None, after
        )
        sql, params = query.sql(db)
        rows = await engine.rows(sql, params)
        data = [queries.event_json(r) for r in rows]
        next_cursor = None
        if len(rows) == limit:
            last = rows[-1]
            next_cursor = queries.Cursor(last["timestamp"], last["event_id"]).encode()
        return {"data": data, "next_cursor": next_cursor}

    @app.get("/v1/events/{event_id}", summary="One stored event")
    async def get_event(key: Reader, event_id: UUID) -> dict[str, Any]:
        rows = await engine.rows(*queries.event_by_id(db, key.project_id, event_id))
        if not rows:
            raise ApiError(404, "not_found", f"no event {event_id} in this project")
        return queries.event_json(rows[0])

    @app.get("/v1/stats/counts", summary="Events per minute and family (from the processors)")
    async def get_counts(
        key: Reader, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, Any]:
        start, end = time_range(since, until, timedelta(hours=1))
        rows = await engine.rows(*queries.counts(db, key.project_id, start, end))
        return {
            "data": [
                {
                    "minute": queries.utc(r["minute"]).isoformat().replace("+00:00", "Z"),
                    "kind": r["kind"],
                    "count": int(r["count"]),
                }
                for r in rows
            ]
        }

    if admin is not None:
        app.include_router(admin)
    app.add_middleware(RequestIds)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        try:
            await engine.rows("SELECT 1 AS ok")
        except Exception as exc:
            return _error(503, "clickhouse_unavailable", str(exc)[:300])
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(
            generate_latest(metrics.registry).decode(), media_type="text/plain; version=0.0.4"
        )

    return app
