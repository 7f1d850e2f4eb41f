"""SQL of the read API. Every query is scoped to one project by a bound parameter."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

EVENT_COLUMNS = (
    "event_id, project_id, kind, timestamp, received_at, distinct_id, session_id, "
    "release, environment, attributes"
)


class BadCursor(ValueError):
    """The pagination cursor was not one this API issued."""


@dataclass(frozen=True)
class Cursor:
    timestamp: datetime
    event_id: UUID

    def encode(self) -> str:
        raw = orjson.dumps([self.timestamp.isoformat(), str(self.event_id)])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            ts, eid = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            return cls(datetime.fromisoformat(ts), UUID(eid))
        except Exception:
            raise BadCursor("cursor is not valid; pass next_cursor from a previous page") from None


@dataclass(frozen=True)
class EventQuery:
    project_id: int
    since: datetime
    until: datetime
    limit: int
    kind: str | None = None
    cursor: Cursor | None = None

    def sql(self, db: str) -> tuple[str, dict[str, Any]]:
        where = [
            "project_id = {project:UInt32}",
            "timestamp >= {since:DateTime64(3, 'UTC')}",
            "timestamp < {until:DateTime64(3, 'UTC')}",
        ]
        params: dict[str, Any] = {
            "project": self.project_id,
            "since": utc(self.since),
            "until": utc(self.until),
            "limit": self.limit,
        }
        if self.kind is not None:
            where.append("kind = {kind:String}")
            params["kind"] = self.kind
        if self.cursor is not None:
            where.append("(timestamp, event_id) < ({c_ts:DateTime64(3, 'UTC')}, {c_id:UUID})")
            params["c_ts"] = utc(self.cursor.timestamp)
            params["c_id"] = self.cursor.event_id
        # FINAL collapses replayed rows; LIMIT 1 BY covers a client retry stamped twice.
        sql = (
            f"SELECT {EVENT_COLUMNS} FROM {db}.events FINAL WHERE {' AND '.join(where)} "
            "ORDER BY timestamp DESC, event_id DESC LIMIT 1 BY event_id LIMIT {limit:UInt32}"
        )
        return sql, params


def event_by_id(db: str, project_id: int, event_id: UUID) -> tuple[str, dict[str, Any]]:
    """One row, so no FINAL: of the copies a replay or a client retry stored, the one the
    list shows (the latest timestamp, then the last inserted, as FINAL keeps). The bloom
    index on ``event_id`` (migration 0008) narrows the read to the granules that may hold it."""
    return (
        f"SELECT {EVENT_COLUMNS} FROM {db}.events "
        "WHERE project_id = {project:UInt32} AND event_id = {id:UUID} "
        "ORDER BY timestamp DESC, _inserted_at DESC LIMIT 1",
        {"project": project_id, "id": event_id},
    )


def counts(
    db: str, project_id: int, since: datetime, until: datetime
) -> tuple[str, dict[str, Any]]:
    return (
        f"SELECT minute, kind, max(count) AS count FROM {db}.project_counts "
        "WHERE project_id = {project:UInt32} AND minute >= {since:DateTime('UTC')} "
        "AND minute < {until:DateTime('UTC')} GROUP BY minute, kind ORDER BY minute, kind",
        {
            "project": project_id,
            "since": utc(since).replace(microsecond=0),
            "until": utc(until).replace(microsecond=0),
        },
    )


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["event_id"] = str(row["event_id"])
    for field in ("timestamp", "received_at"):
        out[field] = utc(row[field]).isoformat().replace("+00:00", "Z")
    out["attributes"] = orjson.loads(row["attributes"]) if row["attributes"] else {}
    for field in ("distinct_id", "session_id", "release", "environment"):
        out[field] = row[field] or None
    return out
