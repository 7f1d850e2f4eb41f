"""SQL of the derived-table reads. Pure: each function returns ``(sql, parameters)``.

Every query is scoped to one project by a bound ``{project:UInt32}``. Versioned tables are
read with FINAL, so a replayed or superseded version never shows; append-only logs use
``LIMIT 1 BY`` their identity. Lists page by keyset: ``Page`` turns the last row's sort
key into an opaque cursor, and the next query continues strictly after it.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from storage.queries import BadCursor, utc

Sql = tuple[str, dict[str, Any]]
TS = "DateTime64(3, 'UTC')"


@dataclass(frozen=True)
class Page:
    """Keyset paging over ``keys`` (column, ClickHouse type), all descending."""

    keys: tuple[tuple[str, str], ...]
    limit: int

    def clause(self, cursor: str | None) -> tuple[str, dict[str, Any]]:
        """An ``AND (...) < (...)`` condition after the cursor (``""`` without one)."""
        if cursor is None:
            return "", {}
        values = self.decode(cursor)
        columns = ", ".join(c for c, _ in self.keys)
        slots = ", ".join(f"{{k{i}:{t}}}" for i, (_, t) in enumerate(self.keys))
        return f" AND ({columns}) < ({slots})", {f"k{i}": v for i, v in enumerate(values)}

    def order(self) -> str:
        return ", ".join(f"{c} DESC" for c, _ in self.keys) + " LIMIT {limit:UInt32}"

    def next_cursor(self, rows: list[dict[str, Any]]) -> str | None:
        if len(rows) < self.limit:
            return None
        last = rows[-1]
        values = [_plain(last[c]) for c, _ in self.keys]
        return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")

    def decode(self, text: str) -> list[Any]:
        try:
            values = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if not isinstance(values, list) or len(values) != len(self.keys):
                raise ValueError
            return [_typed(v, t) for v, (_, t) in zip(values, self.keys, strict=True)]
        except Exception:
            raise BadCursor("cursor is not valid; pass next_cursor from a previous page") from None


def _plain(value: Any) -> Any:
    return utc(value).isoformat() if isinstance(value, datetime) else value


def _typed(value: Any, ch_type: str) -> Any:
    if ch_type.startswith("DateTime"):
        return utc(datetime.fromisoformat(value))
    if ch_type.startswith("UInt"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError
        return value
    if not isinstance(value, str):
        raise ValueError
    return value


def _scoped(project_id: int, page: Page, cursor: str | None) -> tuple[str, dict[str, Any]]:
    after, params = page.clause(cursor)
    return after, {"project": project_id, "limit": page.limit, **params}


ISSUE_SORTS = {
    "last_seen": (("last_seen", TS), ("fingerprint", "String")),
    "count": (("count", "UInt64"), ("fingerprint", "String")),
}


def issues(db: str, project_id: int, page: Page, cursor: str | None, status: str | None) -> Sql:
    after, params = _scoped(project_id, page, cursor)
    where = "project_id = {project:UInt32}"
    if status is not None:
        where += " AND status = {status:String}"
        params["status"] = status
    return f"SELECT * FROM {db}.issues FINAL WHERE {where}{after} ORDER BY {page.order()}", params


def issue(db: str, project_id: int, fingerprint: str) -> Sql:
    return (
        f"SELECT * FROM {db}.issues FINAL "
        "WHERE project_id = {project:UInt32} AND fingerprint = {fp:String} LIMIT 1",
        {"project": project_id, "fp": fingerprint},
    )


def latest_error_of(db: str, project_id: int, fingerprint: str) -> Sql:
    return (
        f"SELECT event_id FROM {db}.error_groups "
        "WHERE project_id = {project:UInt32} AND fingerprint = {fp:String} "
        "ORDER BY timestamp DESC, event_id DESC LIMIT 1",
        {"project": project_id, "fp": fingerprint},
    )


INCIDENT_PAGE = (("updated_at", TS), ("id", "String"))


def incidents(
    db: str,
    project_id: int,
    page: Page,
    cursor: str | None,
    state: str | None,
    kind: str | None,
) -> Sql:
    after, params = _scoped(project_id, page, cursor)
    where = "project_id = {project:UInt32}"
    for column, value in (("state", state), ("kind", kind)):
        if value is not None:
            where += f" AND {column} = {{{column}:String}}"
            params[column] = value
    sql = f"SELECT * FROM {db}.incidents FINAL WHERE {where}{after} ORDER BY {page.order()}"
    return sql, params


def incident(db: str, project_id: int, incident_id: str) -> Sql:
    return (
        f"SELECT * FROM {db}.incidents FINAL "
        "WHERE project_id = {project:UInt32} AND id = {id:String} LIMIT 1",
        {"project": project_id, "id": incident_id},
    )


MONITOR_PAGE = (("monitor_id", "String"),)
_MONITOR_COLUMNS = (
    "s.monitor_id AS monitor_id, s.monitor_slug AS slug, m.name AS name, "
    "m.schedule AS schedule, m.paused AS paused, s.state AS state, "
    "s.last_ping_at AS last_ping_at, s.next_expected_at AS next_expected_at"
)


def _monitors_from(db: str) -> str:
    return (
        f"FROM {db}.monitor_states AS s FINAL LEFT JOIN "
        f"(SELECT monitor_id, name, schedule, paused FROM {db}.dim_monitors "
        "WHERE project_id = {project:UInt32}) AS m ON m.monitor_id = s.monitor_id "
        "WHERE s.project_id = {project:UInt32}"
    )


def monitors(db: str, project_id: int, page: Page, cursor: str | None, state: str | None) -> Sql:
    after, params = _scoped(project_id, page, cursor)
    where = ""
    if state is not None:
        where = " AND s.state = {state:String}"
        params["state"] = state
    after = after.replace("(monitor_id)", "(s.monitor_id)")
    order = page.order().replace("monitor_id", "s.monitor_id")
    sql = f"SELECT {_MONITOR_COLUMNS} {_monitors_from(db)}{where}{after} ORDER BY {order}"
    return sql, params


def monitor(db: str, project_id: int, monitor_id: str) -> Sql:
    return (
        f"SELECT {_MONITOR_COLUMNS} {_monitors_from(db)} AND s.monitor_id = {{id:String}} LIMIT 1",
        {"project": project_id, "id": monitor_id},
    )


RUN_PAGE = (("at", TS), ("run_id", "String"))


def runs(db: str, project_id: int, monitor_id: str, page: Page, cursor: str | None) -> Sql:
    after, params = _scoped(project_id, page, cursor)
    params["id"] = monitor_id
    return (
        "SELECT run_id, status, at, started_at, finished_at, duration_ms, exit_code, "
        f"output_size, output_tail FROM {db}.runs FINAL "
        "WHERE project_id = {project:UInt32} AND monitor_id = {id:String}"
        f"{after} ORDER BY {page.order()}",
        params,
    )


HEALTH_WINDOWS = (7, 30, 90)
PERCENTILES = (0.5, 0.95, 0.99)


def run_health(db: str, project_id: int, monitor_id: str, now: datetime) -> Sql:
    """Per window: ok and finished runs; in 7 days failures and lost runs; 30-day durations."""
    params: dict[str, Any] = {"project": project_id, "id": monitor_id}
    columns = []
    for days in HEALTH_WINDOWS:
        params[f"d{days}"] = utc(now - timedelta(days=days))
        columns += [
            f"countIf(status = 'ok' AND at >= {{d{days}:{TS}}}) AS ok_{days}",
            f"countIf(status != 'running' AND at >= {{d{days}:{TS}}}) AS done_{days}",
        ]
    levels = ", ".join(str(q) for q in PERCENTILES)
    columns += [
        f"countIf(status = 'fail' AND at >= {{d7:{TS}}}) AS failed_7",
        f"countIf(status = 'lost' AND at >= {{d7:{TS}}}) AS lost_7",
        f"quantilesIf({levels})(assumeNotNull(duration_ms), "
        f"duration_ms IS NOT NULL AND at >= {{d30:{TS}}}) AS durations",
    ]
    return (
        f"SELECT {', '.join(columns)} FROM {db}.runs FINAL "
        "WHERE project_id = {project:UInt32} AND monitor_id = {id:String} "
        f"AND at >= {{d90:{TS}}}",
        params,
    )


def monitor_incidents(db: str, project_id: int, monitor_id: str, now: datetime) -> Sql:
    """Missed and late incidents of one monitor opened in the last 7 days."""
    return (
        "SELECT countIf(kind = 'monitor_missed') AS missed, "
        "countIf(kind = 'monitor_late') AS late "
        f"FROM {db}.incidents FINAL WHERE project_id = {{project:UInt32}} "
        "AND monitor_id = {id:String} "
        f"AND opened_at >= {{d7:{TS}}}",
        {"project": project_id, "id": monitor_id, "d7": utc(now - timedelta(days=7))},
    )


SESSION_PAGE = (("last_seen", TS), ("session_id", "String"))


def sessions(
    db: str, project_id: int, page: Page, cursor: str | None, since: datetime, until: datetime
) -> Sql:
    after, params = _scoped(project_id, page, cursor)
    params.update(since=utc(since), until=utc(until))
    return (
        f"SELECT * FROM {db}.sessions FINAL WHERE project_id = {{project:UInt32}} "
        f"AND last_seen >= {{since:{TS}}} AND last_seen < {{until:{TS}}}"
        f"{after} ORDER BY {page.order()}",
        params,
    )


DELIVERY_PAGE = (("at", TS), ("delivery_id", "String"), ("attempt", "UInt16"))


def deliveries(
    db: str,
    project_id: int,
    page: Page,
    cursor: str | None,
    since: datetime,
    until: datetime,
    incident_id: str | None,
) -> Sql:
    match = None if incident_id is None else ("incident_id", incident_id)
    scope = (project_id, page, cursor, since, until)
    return _log_page(db, "deliveries", "delivery_id, attempt, status", scope, match)


ANOMALY_PAGE = (("at", TS), ("series", "String"), ("rule", "String"), ("event_id", "String"))


def anomalies(
    db: str,
    project_id: int,
    page: Page,
    cursor: str | None,
    since: datetime,
    until: datetime,
    family: str | None,
) -> Sql:
    match = None if family is None else ("family", family)
    scope = (project_id, page, cursor, since, until)
    return _log_page(db, "anomalies", "at, series, rule, event_id", scope, match)


def _log_page(
    db: str,
    table: str,
    identity: str,
    scope: tuple[int, Page, str | None, datetime, datetime],
    match: tuple[str, str] | None,
) -> Sql:
    """A page of an append-only log table in ``[since, until)``, optionally where one
    String column equals a value, each row once (``LIMIT 1 BY`` its identity)."""
    project_id, page, cursor, since, until = scope
    after, params = _scoped(project_id, page, cursor)
    params.update(since=utc(since), until=utc(until))
    where = ""
    if match is not None:
        where = f" AND {match[0]} = {{match:String}}"
        params["match"] = match[1]
    order = page.order().replace(" LIMIT", f" LIMIT 1 BY {identity} LIMIT")
    return (
        f"SELECT * FROM {db}.{table} WHERE project_id = {{project:UInt32}} "
        f"AND at >= {{since:{TS}}} AND at < {{until:{TS}}}{where}{after} ORDER BY {order}",
        params,
    )


def finite(value: float) -> float | None:
    """A float JSON can carry: NaN (an empty quantile) and infinities become None."""
    return value if math.isfinite(value) else None
