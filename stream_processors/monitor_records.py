"""Between the monitor state machine and Kafka: table values, output rows, incident signals.

Pure (no faust): the agents in ``agents/monitors.py`` call these. A ``MonitorState`` is
stored as a JSON-able dict; outputs of ``logic.monitors`` become the v1 records of
``pulseline.records.monitors`` and ``IncidentSignal``s. ``version`` is microseconds of the
processing time, so the newest row of a run or a monitor wins in a ReplacingMergeTree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pulseline.control.entities import EntityType, Monitor
from pulseline.control.view import ControlView
from pulseline.records.monitors import OUTPUT_TAIL_CHARS, MonitorStateRow, RunRecord
from stream_processors.logic import monitors as sm
from stream_processors.logic.incidents import IncidentKind
from stream_processors.logic.schedule import as_utc, next_expected


def version(now: datetime) -> int:
    return int(now.timestamp() * 1_000_000)


def _time(text: Any) -> datetime | None:
    return None if text is None else as_utc(datetime.fromisoformat(str(text)))


def state_to_dict(state: sm.MonitorState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "last_ping": None if state.last_ping is None else state.last_ping.isoformat(),
        "open_runs": [
            {"run_id": r.run_id, "started_at": r.started_at.isoformat(), "late": r.late}
            for r in state.open_runs
        ],
        "alerted": sorted(k.value for k in state.alerted),
        "pending": sorted(k.value for k in state.pending),
        "resumed": state.resumed,
    }


def state_from_dict(doc: dict[str, Any]) -> sm.MonitorState:
    runs = tuple(
        sm.OpenRun(r["run_id"], as_utc(datetime.fromisoformat(r["started_at"])), bool(r["late"]))
        for r in doc.get("open_runs", [])
    )
    return sm.MonitorState(
        status=sm.Status(doc.get("status", "new")),
        last_ping=_time(doc.get("last_ping")),
        open_runs=runs,
        alerted=frozenset(IncidentKind(k) for k in doc.get("alerted", [])),
        pending=frozenset(IncidentKind(k) for k in doc.get("pending", [])),
        resumed=bool(doc.get("resumed", False)),
    )


def output_tail(attributes: dict[str, Any]) -> str | None:
    output = attributes.get("output")
    return None if output is None else str(output)[-OUTPUT_TAIL_CHARS:]


def run_row(
    record: sm.RunRecord, monitor: Monitor, now: datetime, tail: str | None = None
) -> RunRecord:
    return RunRecord(
        project_id=record.project_id,
        monitor_id=record.monitor_id,
        monitor_slug=monitor.slug,
        run_id=record.run_id,
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_ms=record.duration_ms,
        status=record.status,
        exit_code=record.exit_code,
        output_size=record.output_size,
        output_tail=tail,
        version=version(now),
    )


def running_row(check_in: sm.CheckIn, monitor: Monitor, now: datetime) -> RunRecord:
    """The row of a run that has just started (its finish replaces it)."""
    started_at = as_utc(check_in.at)
    return RunRecord(
        project_id=monitor.project_id,
        monitor_id=monitor.id,
        monitor_slug=monitor.slug,
        run_id=check_in.run_id or sm.derived_run_id(monitor, started_at),
        started_at=started_at,
        finished_at=None,
        duration_ms=None,
        status="running",
        version=version(now),
    )


def state_row(state: sm.MonitorState, monitor: Monitor, now: datetime) -> MonitorStateRow:
    expected = None if state.last_ping is None else next_expected(monitor.schedule, state.last_ping)
    return MonitorStateRow(
        project_id=monitor.project_id,
        monitor_id=monitor.id,
        monitor_slug=monitor.slug,
        state=state.status.value,
        last_ping_at=state.last_ping,
        next_expected_at=expected,
        version=version(now),
    )


def find_monitor(
    view: ControlView, project_id: int, attributes: dict[str, Any], known_id: str | None
) -> Monitor | None:
    """The check-in's monitor: by ``monitor_id`` if sent, else the table's id, else slug."""
    slug = attributes["monitor"]
    wanted = attributes.get("monitor_id") or known_id
    found = view.get(EntityType.MONITOR, wanted) if wanted else None
    if isinstance(found, Monitor) and (found.slug, found.project_id) == (slug, project_id):
        return found
    found = view.by_slug(EntityType.MONITOR, slug, project_id)
    return found if isinstance(found, Monitor) else None
