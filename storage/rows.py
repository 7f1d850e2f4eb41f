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

from pulseline.control.entities import EntityType
from pulseline.schemas import EventKind
from pulseline.topics import CONTROL, INGEST, PROJECT_COUNTS, TopicSpec

KINDS = frozenset(k.value for k in EventKind)


class RowError(ValueError):
    """This record can never become a row (the reason is the message)."""


@dataclass(frozen=True)
class Source:
    topic: str
    partition: int
    offset: int
    key: bytes | None = None


RowBuilder = Callable[[dict[str, Any] | None, Source], list[Any]]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    build: RowBuilder
    tombstones: bool = False  # a record without a value is a delete, not an error


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


def _event_row(doc: dict[str, Any] | None, src: Source) -> list[Any]:
    if doc is None:
        raise RowError("empty record")
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
        _str(doc.get("client_ip")),
        _str(doc.get("user_agent")),
        orjson.dumps(attributes).decode(),
        src.topic,
        src.partition,
        src.offset,
    ]


def _count_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    if doc is None:
        raise RowError("empty record")
    return [
        _uint(doc.get("project_id"), "project_id"),
        _kind(doc.get("kind")),
        _ts(doc.get("minute"), "minute"),
        _uint(doc.get("count"), "count"),
    ]


# Never mirrored: key hashes, and channel settings that carry credentials (webhook URLs).
_SECRET_FIELDS = {"api_key": {"hash"}, "channel": {"config", "secret"}}
_CONTROL_TYPES = frozenset(t.value for t in EntityType)


def _control_row(doc: dict[str, Any] | None, src: Source) -> list[Any]:
    kind, _, entity_id = (src.key or b"").decode(errors="replace").partition(":")
    if kind not in _CONTROL_TYPES or not entity_id:
        raise RowError(f"control key must be '<type>:<id>', got {src.key!r}")
    if doc is None:
        return [kind, entity_id, None, "", "", "{}", src.offset, 1]
    data = doc.get("data")
    if not isinstance(data, dict):
        raise RowError("control record has no data object")
    public = {k: v for k, v in data.items() if k not in _SECRET_FIELDS.get(kind, set())}
    project = data.get("id") if kind == "project" else data.get("project_id")
    project_id = project if isinstance(project, int) and not isinstance(project, bool) else None
    return [
        kind,
        entity_id,
        project_id,
        _str(data.get("name")),
        _str(data.get("slug")),
        orjson.dumps(public).decode(),
        src.offset,
        0,
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
        "client_ip",
        "user_agent",
        "attributes",
        "_topic",
        "_partition",
        "_offset",
    ),
    _event_row,
)
COUNTS = Table("project_counts", ("project_id", "kind", "minute", "count"), _count_row)

CONTROL_ENTITIES = Table(
    "control_entities",
    ("type", "id", "project_id", "name", "slug", "data", "version", "is_deleted"),
    _control_row,
    tombstones=True,
)

TABLES: dict[TopicSpec, Table] = {
    CONTROL: CONTROL_ENTITIES,
    **{spec: EVENTS for spec in INGEST.values()},
    PROJECT_COUNTS: COUNTS,
}


def decode(table: Table, value: bytes | None, src: Source) -> list[Any]:
    if value is None:
        if table.tombstones:
            return table.build(None, src)
        raise RowError("empty record")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise RowError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RowError("record is not a JSON object")
    return table.build(doc, src)
