"""Row builders of the derived topics: a valid record becomes its row, a bad one says why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import pytest

from storage.rows import (
    ANOMALIES,
    DELIVERIES,
    DERIVED,
    ERROR_GROUPS,
    INCIDENTS,
    ISSUES,
    MONITOR_STATES,
    RUNS,
    SESSIONS,
    STATS_SNAPSHOTS,
    TABLES,
    RowError,
    Source,
    Table,
    decode,
)

SRC = Source("derived.x", 0, 7)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
EID = "0b6f2a57-3f5a-4d1e-9a43-2c2f1f4d8e01"

VALID: dict[str, dict[str, Any]] = {
    "incidents": {
        "id": "inc-1",
        "project_id": 1,
        "kind": "monitor_missed",
        "severity": "error",
        "state": "open",
        "dedup_key": "1:monitor_missed:m1",
        "title": "nightly missed its check-in",
        "explanation": "none arrived",
        "links": {"monitor_id": "m1"},
        "opened_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:01:00Z",
        "version": 3,
    },
    "runs": {
        "project_id": 1,
        "monitor_id": "m1",
        "monitor_slug": "nightly",
        "run_id": "r1",
        "started_at": None,
        "finished_at": "2026-01-01T00:01:00Z",
        "duration_ms": 60000,
        "status": "fail",
        "exit_code": -9,
        "output_tail": "x" * 2000,
        "version": 2,
    },
    "monitor_states": {
        "project_id": 1,
        "monitor_id": "m1",
        "monitor_slug": "nightly",
        "state": "down",
        "last_ping_at": "2026-01-01T00:00:00Z",
        "next_expected_at": None,
        "version": 5,
    },
    "deliveries": {
        "delivery_id": "d1",
        "incident_id": "inc-1",
        "incident_version": 3,
        "state": "open",
        "dedup_key": "k",
        "project_id": 1,
        "channel_id": "c1",
        "channel_type": "slack",
        "attempt": 2,
        "status": "retrying",
        "http_status": 503,
        "at": "2026-01-01T00:00:00Z",
        "next_attempt_at": "2026-01-01T00:01:00Z",
        "incident": {},
    },
    "issues": {
        "project_id": 1,
        "fingerprint": "fp1",
        "title": "KeyError: 'x'",
        "culprit": None,
        "level": "error",
        "status": "unresolved",
        "first_seen": "2026-01-01T00:00:00Z",
        "last_seen": "2026-01-01T00:01:00Z",
        "count": 4,
        "users": 2,
        "first_release": "1.0",
        "last_release": None,
        "rule": None,
        "version": 4,
    },
    "error_groups": {
        "event_id": EID,
        "project_id": 1,
        "fingerprint": "fp1",
        "timestamp": "2026-01-01T00:00:00Z",
        "rule": "stack",
    },
    "sessions": {
        "session_id": "s1",
        "project_id": 1,
        "distinct_id": "u1",
        "started_at": "2026-01-01T00:00:00Z",
        "last_seen": "2026-01-01T00:01:00Z",
        "entry_page": "/",
        "exit_page": None,
        "pageviews": 1,
        "events": 0,
        "duration_s": 60.0,
        "bounce": True,
        "referrer": None,
        "utm_source": None,
        "browser": "Firefox",
        "os": None,
        "device_type": None,
        "version": 1,
        "closed": False,
    },
    "stats_snapshots": {
        "project_id": 1,
        "family": "check_in",
        "name": "duration",
        "count": 3,
        "mean": 2.0,
        "variance": 0.5,
        "stddev": 0.7,
        "min": 1.0,
        "max": None,
        "p50": 2.0,
        "p95": None,
        "at": "2026-01-01T00:00:00Z",
        "version": 3,
    },
    "anomalies": {
        "project_id": 1,
        "series": "1|check_in.duration|nightly",
        "rule": "duration",
        "value": 90.0,
        "score": 4.2,
        "explanation": "4.2 sigma above the mean",
        "at": "2026-01-01T00:00:00Z",
        "event_id": EID,
    },
}

EXPECTED: list[tuple[Table, dict[str, Any]]] = [
    (
        INCIDENTS,
        {
            "kind": "monitor_missed",
            "links": '{"monitor_id":"m1"}',
            "monitor_id": "m1",
            "tags": [],
            "occurrences": 1,
            "updated_at": T1,
            "resolved_at": None,
            "resolve_reason": "",
            "version": 3,
        },
    ),
    (
        RUNS,
        {
            "at": T1,
            "started_at": None,
            "exit_code": -9,
            "output_size": None,
            "output_tail": "x" * 1024,
            "status": "fail",
        },
    ),
    (MONITOR_STATES, {"state": "down", "last_ping_at": T0, "next_expected_at": None}),
    (
        DELIVERIES,
        {
            "status": "retrying",
            "kind": "transition",
            "http_status": 503,
            "latency_ms": None,
            "error": "",
            "next_attempt_at": T1,
        },
    ),
    (
        ISSUES,
        {
            "culprit": "",
            "first_release": "1.0",
            "last_release": "",
            "rule": "",
            "last_seen": T1,
            "count": 4,
        },
    ),
    (ERROR_GROUPS, {"event_id": UUID(EID), "timestamp": T0, "rule": "stack"}),
    (
        SESSIONS,
        {
            "exit_page": "",
            "bounce": True,
            "closed": False,
            "browser": "Firefox",
            "os": "",
            "duration_s": 60.0,
        },
    ),
    (STATS_SNAPSHOTS, {"family": "check_in", "max": None, "p50": 2.0, "at": T0, "version": 3}),
    (ANOMALIES, {"family": "check_in.duration", "name": "nightly", "score": 4.2, "at": T0}),
]


def raw(table: Table, **over: Any) -> bytes:
    doc = {**VALID[table.name], **over}
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


@pytest.mark.parametrize(("table", "expected"), EXPECTED, ids=[t.name for t, _ in EXPECTED])
def test_a_valid_record_becomes_its_row_in_column_order(
    table: Table, expected: dict[str, Any]
) -> None:
    row = decode(table, raw(table), SRC)
    values = dict(zip(table.columns, row, strict=True))
    assert values["project_id"] == 1
    assert {k: values[k] for k in expected} == expected


def as_dict(table: Table, value: bytes) -> dict[str, Any]:
    return dict(zip(table.columns, decode(table, value, SRC), strict=True))


def test_an_incident_names_its_monitor_from_the_field_before_the_links() -> None:
    over = {"links": {"monitor_id": "old"}, "monitor_id": "m2", "tags": ["db", "nightly"]}
    values = as_dict(INCIDENTS, raw(INCIDENTS, **over))
    assert (values["monitor_id"], values["tags"]) == ("m2", ["db", "nightly"])
    plain = as_dict(INCIDENTS, raw(INCIDENTS, links={}))
    assert plain["monitor_id"] == ""


BAD: list[tuple[Table, dict[str, Any], str]] = [
    (INCIDENTS, {"kind": "meteor"}, "kind"),
    (INCIDENTS, {"opened_at": "soon"}, "opened_at"),
    (INCIDENTS, {"version": -1}, "version"),
    (INCIDENTS, {"id": ...}, "id"),
    (RUNS, {"status": "maybe"}, "status"),
    (RUNS, {"started_at": None, "finished_at": None}, "started_at"),
    (RUNS, {"duration_ms": -5}, "duration_ms"),
    (MONITOR_STATES, {"state": "sleepy"}, "state"),
    (MONITOR_STATES, {"project_id": -2}, "project_id"),
    (DELIVERIES, {"status": "lost"}, "status"),
    (DELIVERIES, {"attempt": "two"}, "attempt"),
    (ISSUES, {"status": "wontfix"}, "status"),
    (ISSUES, {"count": -1}, "count"),
    (ERROR_GROUPS, {"event_id": "nope"}, "event_id"),
    (SESSIONS, {"pageviews": "many"}, "pageviews"),
    (SESSIONS, {"started_at": ...}, "started_at"),
    (STATS_SNAPSHOTS, {"count": -1}, "count"),
    (STATS_SNAPSHOTS, {"mean": "big"}, "mean"),
    (ANOMALIES, {"series": "nightly"}, "series"),
    (ANOMALIES, {"series": "2|check_in.duration|nightly"}, "series"),
    (ANOMALIES, {"value": None}, "value"),
]


@pytest.mark.parametrize(("table", "over", "field"), BAD, ids=[f"{t.name}-{f}" for t, _, f in BAD])
def test_a_bad_record_raises_a_row_error_naming_the_field(
    table: Table, over: dict[str, Any], field: str
) -> None:
    with pytest.raises(RowError, match=field):
        decode(table, raw(table, **over), SRC)


@pytest.mark.parametrize("table", list(DERIVED.values()), ids=lambda t: t.name)
def test_an_empty_derived_record_is_an_error_not_a_delete(table: Table) -> None:
    with pytest.raises(RowError, match="empty"):
        decode(table, None, SRC)


def test_every_derived_topic_is_stored_in_its_own_table() -> None:
    names = [t.name for t in DERIVED.values()]
    assert len(set(names)) == len(names) == 9
    assert all(TABLES[spec] is table for spec, table in DERIVED.items())
    assert {spec.name for spec in DERIVED} == {
        "derived.incidents",
        "derived.runs",
        "derived.monitor_states",
        "alerting.deliveries",
        "derived.issues",
        "derived.error_groups",
        "derived.sessions",
        "derived.stats",
        "derived.anomalies",
    }
