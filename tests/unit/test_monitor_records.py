from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from pulseline.control.entities import ControlRecord, Monitor, Schedule, record_key, type_of
from pulseline.control.view import ControlView
from pulseline.records.monitors import OUTPUT_TAIL_CHARS, MonitorStateRow, RunRecord
from stream_processors import monitor_records as rows
from stream_processors.incident_signals import signal_of
from stream_processors.logic import monitors as sm
from stream_processors.logic.incidents import (
    IncidentKind,
    IncidentRequest,
    ResolveRequest,
    Severity,
)

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _monitor(**changes: Any) -> Monitor:
    fields: dict[str, Any] = {
        "id": "m1",
        "project_id": 7,
        "name": "Backup",
        "slug": "backup",
        "schedule": Schedule(period_s=600),
        "grace_s": 120,
    }
    return Monitor(**(fields | changes))


STATES = [
    sm.MonitorState(),
    sm.MonitorState(status=sm.Status.UP, last_ping=T0),
    sm.MonitorState(
        status=sm.Status.LATE,
        last_ping=T0,
        open_runs=(sm.OpenRun("r1", T0, late=True), sm.OpenRun(None, T0 + timedelta(seconds=5))),
        alerted=frozenset({IncidentKind.MONITOR_LATE, IncidentKind.MONITOR_FAILED}),
        pending=frozenset({IncidentKind.MONITOR_MISSED}),
    ),
    sm.MonitorState(status=sm.Status.PAUSED, resumed=True),
]


@pytest.mark.parametrize("state", STATES)
def test_a_monitor_state_survives_the_table_as_json(state: sm.MonitorState) -> None:
    stored = orjson.loads(orjson.dumps(rows.state_to_dict(state)))
    assert rows.state_from_dict(stored) == state


def test_a_started_run_without_id_gets_the_same_id_as_its_finish() -> None:
    monitor = _monitor()
    start = sm.CheckIn(status="start", at=T0)
    state, _ = sm.on_check_in(sm.MonitorState(), start, monitor, T0)
    finish = sm.CheckIn(status="ok", at=T0 + timedelta(seconds=2))
    _, outputs = sm.on_check_in(state, finish, monitor, finish.at)
    record = next(o for o in outputs if isinstance(o, sm.RunRecord))
    running = rows.running_row(start, monitor, T0)
    done = rows.run_row(record, monitor, finish.at)
    assert (running.status, done.status) == ("running", "ok")
    assert running.run_id == done.run_id
    assert done.duration_ms == 2000 and done.monitor_slug == "backup"
    assert done.version > running.version


def test_a_run_row_keeps_only_the_tail_of_the_output() -> None:
    output = "x" * 10 + "y" * OUTPUT_TAIL_CHARS
    assert rows.output_tail({"output": output}) == "y" * OUTPUT_TAIL_CHARS
    assert rows.output_tail({}) is None


def test_a_state_row_says_when_the_next_ping_is_expected() -> None:
    row = rows.state_row(sm.MonitorState(sm.Status.UP, last_ping=T0), _monitor(), T0)
    assert MonitorStateRow.model_validate_json(orjson.dumps(row.to_json())) == row
    assert (row.state, row.next_expected_at) == ("up", T0 + timedelta(seconds=600))
    assert rows.state_row(sm.MonitorState(), _monitor(), T0).next_expected_at is None


def test_run_rows_round_trip_through_json() -> None:
    row = rows.running_row(sm.CheckIn(status="start", at=T0, run_id="r9"), _monitor(), T0)
    assert RunRecord.model_validate_json(orjson.dumps(row.to_json())) == row


def test_detector_outputs_become_incident_signals() -> None:
    request = IncidentRequest(7, IncidentKind.MONITOR_FAILED, Severity.ERROR, "k", "t", "e")
    opened = signal_of(request, T0)
    resolved = signal_of(ResolveRequest("k", "recovered"), T0)
    assert (opened.action, opened.kind, opened.project_id, opened.at) == (
        "open",
        IncidentKind.MONITOR_FAILED,
        7,
        T0,
    )
    assert (resolved.action, resolved.dedup_key, resolved.reason) == ("resolve", "k", "recovered")


def _view(*monitors: Monitor) -> ControlView:
    view = ControlView()
    for offset, monitor in enumerate(monitors):
        kind = type_of(monitor)
        record = ControlRecord(
            type=kind, id=monitor.id, data=monitor.model_dump(mode="json"), updated_at=T0
        )
        view.apply(
            record_key(kind, monitor.id).encode(),
            orjson.dumps(record.model_dump(mode="json")),
            offset,
        )
    return view


@pytest.mark.parametrize(
    ("project_id", "attributes", "known", "expected"),
    [
        (7, {"monitor": "backup"}, None, "m1"),
        (7, {"monitor": "backup", "monitor_id": "m1"}, None, "m1"),
        (7, {"monitor": "backup"}, "m1", "m1"),
        (7, {"monitor": "backup"}, "gone", "m1"),
        (8, {"monitor": "backup"}, None, "m2"),
        (8, {"monitor": "backup", "monitor_id": "m1"}, None, "m2"),
        (9, {"monitor": "backup"}, None, None),
        (7, {"monitor": "ghost"}, None, None),
    ],
)
def test_a_check_in_finds_its_monitor_within_its_own_project(
    project_id: int, attributes: dict[str, Any], known: str | None, expected: str | None
) -> None:
    view = _view(_monitor(), _monitor(id="m2", project_id=8))
    found = rows.find_monitor(view, project_id, attributes, known)
    assert (found.id if found else None) == expected
