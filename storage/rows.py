"""Turn topic records into table rows. Pure: no Kafka, no ClickHouse.

``TABLES`` maps each stored topic to its table and a row builder. A record that cannot
become a row raises ``RowError``; the sink dead-letters it with that reason.

Rows of ``events``, the hot table, hold wire values rather than Python objects: the
event id as its canonical text and times as DateTime64(3) ticks (milliseconds since
the epoch, floored). ``Table.wire_types`` names the types they are sent as, and
ClickHouse converts them into the columns' own types on insert.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

import orjson
from pydantic import BaseModel, ValidationError

from pulseline.control.entities import EntityType
from pulseline.records import alerts, incidents, issues, monitors, sessions, stats
from pulseline.schemas import EventKind
from pulseline.topics import CONTROL, INGEST, PROJECT_COUNTS, TopicSpec

KINDS = frozenset(k.value for k in EventKind)


class RowError(ValueError):
    """This record can never become a row (the reason is the message)."""


class Source(NamedTuple):
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
    wire_types: tuple[str, ...] | None = None  # None: the columns' own types, asked of the server


def _ts(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise RowError(f"{field} must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RowError(f"{field} is not an ISO-8601 timestamp: {value[:40]!r}") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


def _ms(value: Any, field: str) -> int:
    """``_ts`` as DateTime64(3) ticks."""
    if not isinstance(value, str):
        raise RowError(f"{field} must be an ISO-8601 string")
    try:
        return _ticks(value)
    except ValueError:
        raise RowError(f"{field} is not an ISO-8601 timestamp: {value[:40]!r}") from None


@lru_cache(maxsize=4096)  # the events of one request share their received_at
def _ticks(text: str) -> int:
    """Milliseconds since the epoch, floored as clickhouse-connect floors a datetime; a
    zone-less time is UTC."""
    parsed = datetime.fromisoformat(text)
    since = parsed - (_EPOCH if parsed.tzinfo else _NAIVE_EPOCH)
    return since.days * 86_400_000 + since.seconds * 1000 + since.microseconds // 1000


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid_text(value: Any) -> str:
    """The canonical text of what ``UUID(str(value))`` accepts (the gateway's ids already are)."""
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise RowError("event_id is missing or not a UUID") from None


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _kind(value: Any) -> str:
    if not isinstance(value, str) or value not in KINDS:  # a list or object is unhashable
        raise RowError(f"unknown kind {value!r}")
    return str(value)


UINT16_MAX = 2**16 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


def _uint(value: Any, field: str, top: int = UINT64_MAX) -> int:
    """A value its UInt column takes: one out of range would fail the whole batch's insert
    on every retry and stall the sink, so it is refused here and dead-lettered alone."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise RowError(f"{field} must be an integer from 0 to {top}")
    return value


def _event_row(doc: dict[str, Any] | None, src: Source) -> list[Any]:
    if doc is None:
        raise RowError("empty record")
    get = doc.get
    event_id = _uuid_text(get("event_id"))
    attributes = get("attributes") or {}
    if not isinstance(attributes, dict):
        raise RowError("attributes must be an object")
    project_id = get("project_id")
    if type(project_id) is not int or not 0 <= project_id <= UINT32_MAX:
        project_id = _uint(project_id, "project_id", UINT32_MAX)
    kind = get("kind")
    if type(kind) is not str or kind not in KINDS:
        raise RowError(f"unknown kind {kind!r}")
    timestamp = _ms(get("timestamp"), "timestamp")
    received_at = _ms(get("received_at"), "received_at")
    # Spelled out, not looped: this runs once per event.
    distinct_id, session_id = get("distinct_id"), get("session_id")
    release, environment = get("release"), get("environment")
    client_ip, user_agent = get("client_ip"), get("user_agent")
    return [
        project_id,
        kind,
        timestamp,
        event_id,
        received_at,
        distinct_id if type(distinct_id) is str else _str(distinct_id),
        session_id if type(session_id) is str else _str(session_id),
        release if type(release) is str else _str(release),
        environment if type(environment) is str else _str(environment),
        client_ip if type(client_ip) is str else _str(client_ip),
        user_agent if type(user_agent) is str else _str(user_agent),
        orjson.dumps(attributes).decode(),
        src.topic,
        src.partition,
        src.offset,
    ]


def _count_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    if doc is None:
        raise RowError("empty record")
    return [
        _uint(doc.get("project_id"), "project_id", UINT32_MAX),
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
    wire_types=(
        "UInt32",
        "String",
        "DateTime64(3, 'UTC')",
        "String",
        "DateTime64(3, 'UTC')",
        *["String"] * 7,
        "String",
        "UInt16",
        "UInt64",
    ),
)
COUNTS = Table("project_counts", ("project_id", "kind", "minute", "count"), _count_row)

CONTROL_ENTITIES = Table(
    "control_entities",
    ("type", "id", "project_id", "name", "slug", "data", "version", "is_deleted"),
    _control_row,
    tombstones=True,
)


M = TypeVar("M", bound=BaseModel)


def _valid(model: type[M], doc: dict[str, Any] | None) -> M:
    """The record as its topic's schema reads it; the first problem names its field."""
    if doc is None:
        raise RowError("empty record")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "record"
        raise RowError(f"{field}: {first['msg']}") from None


def _at(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _opt_at(value: datetime | None) -> datetime | None:
    return None if value is None else _at(value)


def _incident_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    r = _valid(incidents.Incident, doc)
    return [
        _uint(r.project_id, "project_id", UINT32_MAX),
        r.id,
        r.kind.value,
        r.severity.value,
        r.state.value,
        r.dedup_key,
        r.title,
        r.explanation,
        orjson.dumps(r.links).decode(),
        r.monitor_id or r.links.get("monitor_id", ""),
        list(r.tags),
        _uint(r.occurrences, "occurrences", UINT32_MAX),
        _at(r.opened_at),
        _at(r.updated_at),
        _opt_at(r.resolved_at),
        _str(r.resolve_reason),
        _uint(r.version, "version"),
    ]


def _run_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    r = _valid(monitors.RunRecord, doc)
    at = r.started_at or r.finished_at
    if at is None:
        raise RowError("started_at: a run needs started_at or finished_at")
    return [
        _uint(r.project_id, "project_id", UINT32_MAX),
        r.monitor_id,
        r.monitor_slug,
        r.run_id,
        _at(at),
        _opt_at(r.started_at),
        _opt_at(r.finished_at),
        None if r.duration_ms is None else _uint(r.duration_ms, "duration_ms"),
        r.status,
        r.exit_code,
        None if r.output_size is None else _uint(r.output_size, "output_size"),
        _str(r.output_tail)[-monitors.OUTPUT_TAIL_CHARS :],
        _uint(r.version, "version"),
    ]


def _monitor_state_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    r = _valid(monitors.MonitorStateRow, doc)
    return [
        _uint(r.project_id, "project_id", UINT32_MAX),
        r.monitor_id,
        r.monitor_slug,
        r.state,
        _opt_at(r.last_ping_at),
        _opt_at(r.next_expected_at),
        _uint(r.version, "version"),
    ]


def _delivery_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    r = _valid(alerts.Delivery, doc)
    return [
        _uint(r.project_id, "project_id", UINT32_MAX),
        _at(r.at),
        r.delivery_id,
        _uint(r.attempt, "attempt", UINT16_MAX),
        r.kind,
        r.incident_id,
        _uint(r.incident_version, "incident_version"),
        r.state,
        r.dedup_key,
        r.channel_id,
        r.channel_type,
        r.status.value,
        None if r.http_status is None else _uint(r.http_status, "http_status", UINT16_MAX),
        r.latency_ms,
        r.error,
        _opt_at(r.next_attempt_at),
    ]


def _issue_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    r = _valid(issues.IssueRow, doc)
    return [
        _uint(r.project_id, "project_id", UINT32_MAX),
        r.fingerprint,
        r.title,
        _str(r.culprit),
        r.level,
        r.status,
        _at(r.first_seen),
        _at(r.last_seen),
        _uint(r.count, "count"),
        _uint(r.users, "users"),
        _str(r.first_release),
        _str(r.last_release),
        _str(r.rule),
        _uint(r.version, "version"),
    ]


def _error_group_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    r = _valid(issues.ErrorGrouped, doc)
    try:
        event_id = UUID(r.event_id)
    except ValueError:
        raise RowError("event_id: not a UUID") from None
    return [
        _uint(r.project_id, "project_id", UINT32_MAX),
        r.fingerprint,
        _at(r.timestamp),
        event_id,
        r.rule,
    ]


def _session_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    r = _valid(sessions.SessionRow, doc)
    return [
        _uint(r.project_id, "project_id", UINT32_MAX),
        r.session_id,
        r.distinct_id,
        _at(r.started_at),
        _at(r.last_seen),
        _str(r.entry_page),
        _str(r.exit_page),
        _uint(r.pageviews, "pageviews", UINT32_MAX),
        _uint(r.events, "events", UINT32_MAX),
        r.duration_s,
        r.bounce,
        _str(r.referrer),
        _str(r.utm_source),
        _str(r.browser),
        _str(r.os),
        _str(r.device_type),
        r.closed,
        _uint(r.version, "version"),
    ]


def _stats_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    r = _valid(stats.StatsSnapshot, doc)
    return [
        _uint(r.project_id, "project_id", UINT32_MAX),
        r.family,
        r.name,
        r.count,
        r.mean,
        r.variance,
        r.stddev,
        r.min,
        r.max,
        r.p50,
        r.p95,
        _at(r.at),
        _uint(r.version, "version"),
    ]


def _anomaly_row(doc: dict[str, Any] | None, _src: Source) -> list[Any]:
    r = _valid(stats.Anomaly, doc)
    parts = r.series.split("|", 2)
    if len(parts) != 3 or parts[0] != str(r.project_id):
        raise RowError(f"series: expected '<project_id>|<family>|<name>', got {r.series[:60]!r}")
    return [
        _uint(r.project_id, "project_id", UINT32_MAX),
        _at(r.at),
        r.series,
        parts[1],
        parts[2],
        r.rule,
        r.value,
        r.score,
        r.explanation,
        r.event_id,
    ]


INCIDENTS = Table(
    "incidents",
    (
        "project_id",
        "id",
        "kind",
        "severity",
        "state",
        "dedup_key",
        "title",
        "explanation",
        "links",
        "monitor_id",
        "tags",
        "occurrences",
        "opened_at",
        "updated_at",
        "resolved_at",
        "resolve_reason",
        "version",
    ),
    _incident_row,
)
RUNS = Table(
    "runs",
    (
        "project_id",
        "monitor_id",
        "monitor_slug",
        "run_id",
        "at",
        "started_at",
        "finished_at",
        "duration_ms",
        "status",
        "exit_code",
        "output_size",
        "output_tail",
        "version",
    ),
    _run_row,
)
MONITOR_STATES = Table(
    "monitor_states",
    (
        "project_id",
        "monitor_id",
        "monitor_slug",
        "state",
        "last_ping_at",
        "next_expected_at",
        "version",
    ),
    _monitor_state_row,
)
DELIVERIES = Table(
    "deliveries",
    (
        "project_id",
        "at",
        "delivery_id",
        "attempt",
        "kind",
        "incident_id",
        "incident_version",
        "state",
        "dedup_key",
        "channel_id",
        "channel_type",
        "status",
        "http_status",
        "latency_ms",
        "error",
        "next_attempt_at",
    ),
    _delivery_row,
)
ISSUES = Table(
    "issues",
    (
        "project_id",
        "fingerprint",
        "title",
        "culprit",
        "level",
        "status",
        "first_seen",
        "last_seen",
        "count",
        "users",
        "first_release",
        "last_release",
        "rule",
        "version",
    ),
    _issue_row,
)
ERROR_GROUPS = Table(
    "error_groups",
    ("project_id", "fingerprint", "timestamp", "event_id", "rule"),
    _error_group_row,
)
SESSIONS = Table(
    "sessions",
    (
        "project_id",
        "session_id",
        "distinct_id",
        "started_at",
        "last_seen",
        "entry_page",
        "exit_page",
        "pageviews",
        "events",
        "duration_s",
        "bounce",
        "referrer",
        "utm_source",
        "browser",
        "os",
        "device_type",
        "closed",
        "version",
    ),
    _session_row,
)
STATS_SNAPSHOTS = Table(
    "stats_snapshots",
    (
        "project_id",
        "family",
        "name",
        "count",
        "mean",
        "variance",
        "stddev",
        "min",
        "max",
        "p50",
        "p95",
        "at",
        "version",
    ),
    _stats_row,
)
ANOMALIES = Table(
    "anomalies",
    (
        "project_id",
        "at",
        "series",
        "family",
        "name",
        "rule",
        "value",
        "score",
        "explanation",
        "event_id",
    ),
    _anomaly_row,
)

DERIVED: dict[TopicSpec, Table] = {
    incidents.INCIDENTS: INCIDENTS,
    monitors.RUNS: RUNS,
    monitors.MONITOR_STATES: MONITOR_STATES,
    alerts.DELIVERIES: DELIVERIES,
    issues.ISSUES: ISSUES,
    issues.ERROR_GROUPS: ERROR_GROUPS,
    sessions.SESSIONS: SESSIONS,
    stats.STATS: STATS_SNAPSHOTS,
    stats.ANOMALIES: ANOMALIES,
}

TABLES: dict[TopicSpec, Table] = {
    CONTROL: CONTROL_ENTITIES,
    **{spec: EVENTS for spec in INGEST.values()},
    PROJECT_COUNTS: COUNTS,
    **DERIVED,
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
