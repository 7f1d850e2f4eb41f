"""The dashboard's reads: the read API's query builders, run on the shared ``Engine``.

No SQL is written here; every statement comes from ``storage.queries`` or
``storage.derived_queries`` and so is scoped to one project the same way the API is.
Lists are cut at ``limit`` rows (the pages say "N+" when a list is full).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson

from storage import derived_queries as q
from storage import queries
from storage.client import Engine

LIMIT = 200


class Reads:
    def __init__(self, engine: Engine, limit: int = LIMIT) -> None:
        self.engine, self.db, self.limit = engine, engine.database, limit

    async def one(self, sql: q.Sql) -> dict[str, Any] | None:
        rows = await self.engine.rows(*sql)
        return rows[0] if rows else None

    async def monitors(self, project_id: int) -> list[dict[str, Any]]:
        page = q.Page(q.MONITOR_PAGE, self.limit)
        return await self.engine.rows(*q.monitors(self.db, project_id, page, None, None))

    async def runs(self, project_id: int, monitor_id: str, count: int = 30) -> list[dict[str, Any]]:
        page = q.Page(q.RUN_PAGE, count)
        return await self.engine.rows(*q.runs(self.db, project_id, monitor_id, page, None))

    async def incidents(self, project_id: int, state: str | None) -> list[dict[str, Any]]:
        page = q.Page(q.INCIDENT_PAGE, self.limit)
        rows = await self.engine.rows(*q.incidents(self.db, project_id, page, None, state, None))
        return [_incident(r) for r in rows]

    async def incident(self, project_id: int, incident_id: str) -> dict[str, Any] | None:
        row = await self.one(q.incident(self.db, project_id, incident_id))
        return _incident(row) if row else None

    async def issues(
        self, project_id: int, status: str, sort: str, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        page = q.Page(q.ISSUE_SORTS[sort], self.limit)
        try:
            sql = q.issues(self.db, project_id, page, cursor, status)
        except queries.BadCursor:
            sql = q.issues(self.db, project_id, page, None, status)
        rows = await self.engine.rows(*sql)
        return rows, page.next_cursor(rows)

    async def latest_event(self, project_id: int, fingerprint: str) -> dict[str, Any] | None:
        link = await self.one(q.latest_error_of(self.db, project_id, fingerprint))
        if link is None:
            return None
        row = await self.one(queries.event_by_id(self.db, project_id, link["event_id"]))
        return queries.event_json(row) if row else None

    async def anomalies(
        self, project_id: int, since: datetime, until: datetime
    ) -> list[dict[str, Any]]:
        page = q.Page(q.ANOMALY_PAGE, self.limit)
        sql = q.anomalies(self.db, project_id, page, None, since, until, None)
        return await self.engine.rows(*sql)

    async def deliveries(
        self, project_id: int, incident_id: str, now: datetime
    ) -> list[dict[str, Any]]:
        page = q.Page(q.DELIVERY_PAGE, self.limit)
        since = now - timedelta(days=90)
        sql = q.deliveries(self.db, project_id, page, None, since, now, incident_id)
        return await self.engine.rows(*sql)

    @staticmethod
    def story(incident: dict[str, Any], deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One timeline for an incident: opened, every delivery attempt, acked, resolved."""
        events = [{"at": incident["opened_at"], "what": "Opened", "detail": incident["title"]}]
        for d in deliveries:
            detail = f"{d['channel_type']} {d['channel_id']}: attempt {d['attempt']}"
            events.append({"at": d["at"], "what": f"Alert {d['status']}", "detail": detail})
        for field, what in (("acked_at", "Acknowledged"), ("resolved_at", "Resolved")):
            if incident.get(field):
                reason = incident.get("resolve_reason") if field == "resolved_at" else ""
                events.append({"at": incident[field], "what": what, "detail": reason or ""})
        return sorted(events, key=lambda e: queries.utc(e["at"]))


def _incident(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["links"] = orjson.loads(row["links"]) if row.get("links") else {}
    return out
