"""Turn topic records into table rows. Pure: no Kafka, no ClickHouse.

``TABLES`` maps each stored topic to its table and a row builder. A record that cannot
become a row raises ``RowError``; the sink dead-letters it with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

from pulseline.schemas import EventKind
from pulseline.topics import INGEST, PROJECT_COUNTS, TopicSpec

KINDS = frozenset(k.value for k in EventKind)


class RowError(ValueError):
    """This record can never become a row (the reason is the message)."""


@dataclass(frozen=True)
class Source:
    topic: str
    partition: int
    offset: int


RowBuilder = Callable[[dict[str, Any], Source], list[Any]]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    build: RowBuilder


def _ts(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise RowError(f"{field} must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RowError(f"{field} is not an ISO-8601 timestamp: {value[:40]!r}") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _kind(value: Any) -> str:
    if value not in KINDS:
        raise RowError(f"unknown kind {value!r}")
    return str(value)


def _uint(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RowError(f"{field} must be a non-negative integer")
    return value


def _event_row(doc: dict[str, Any], src: Source) -> list[Any]:
    try:
        event_id = UUID(str(doc["event_id"]))
    except (KeyError, ValueError):
        raise RowError("event_id is missing or not a UUID") from None
    attributes = doc.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise RowError("attributes must be an object")
    return [
        _uint(doc.get("project_id"), "project_id"),
        _kind(doc.get("kind")),
        _ts(doc.get("timestamp"), "timestamp"),
        event_id,
        _ts(doc.get("received_at"), "received_at"),
        _str(doc.get("distinct_id")),
        _str(doc.get("session_id")),
        _str(doc.get("release")),
        _str(doc.get("environment")),
        orjson.dumps(attributes).decode(),
        src.topic,
        src.partition,
        src.offset,
    ]


def _count_row(doc: dict[str, Any], _src: Source) -> list[Any]:
    return [
        _uint(doc.get("project_id"), "project_id"),
        _kind(doc.get("kind")),
        _ts(doc.get("minute"), "minute"),
        _uint(doc.get("count"), "count"),
    ]


EVENTS = Table(
    "events",
    (
        "project_id",
        "kind",
        "timestamp",
        "event_id",
        "received_at",
        "distinct_id",
        "session_id",
        "release",
        "environment",
        "attributes",
        "_topic",
        "_partition",
        "_offset",
    ),
    _event_row,
)
COUNTS = Table("project_counts", ("project_id", "kind", "minute", "count"), _count_row)

TABLES: dict[TopicSpec, Table] = {
    **{spec: EVENTS for spec in INGEST.values()},
    PROJECT_COUNTS: COUNTS,
}


def decode(table: Table, value: bytes | None, src: Source) -> list[Any]:
    if value is None:
        raise RowError("empty record")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise RowError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RowError("record is not a JSON object")
    return table.build(doc, src)
