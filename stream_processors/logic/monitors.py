"""The monitor state machine: check-ins and clock ticks in, run records and incidents out.

Pure: ``now`` is passed in and state is an immutable value the agent stores per monitor.

States: ``new`` (no ok/fail ping yet; never goes down), ``up``, ``late`` (a run is past
``max_runtime_s``), ``down`` (missed the deadline, or the last run failed) and ``paused``.

- ``start`` opens a run (keyed by ``run_id``; the last 16 open runs are kept, older ones are
  emitted as ``lost`` run records). It does not move the deadline: only finishes do.
- ``ok`` and ``fail`` finish the run with the same ``run_id`` or, without one, the latest
  open run; the duration is ``duration_ms`` if sent, else finish minus start. ``fail``, or
  any non-zero ``exit_code``, makes the monitor ``down`` and opens ``monitor_failed``; ``ok``
  makes it ``up`` and resolves every incident it had open (recovery).
- ``log`` changes nothing (as in Healthchecks).
- A tick at or after the deadline (see ``schedule.deadline``) turns ``up``/``late`` into
  ``down`` with one ``monitor_missed`` incident; a monitor already down opens no second one.
  A tick past ``started_at + max_runtime_s`` of an open run makes the monitor ``late`` once.
- Paused: ``monitor.paused`` makes ticks do nothing. As in Healthchecks, an ok/fail ping
  resumes the monitor until the control plane unpauses it; a later unpause puts it back to
  ``new``. (Pausing again needs an unpause in between to be seen: the entity has no
  ``paused_at``.)
- Maintenance windows: the state still changes, but incidents are not emitted during a
  window; they stay pending and are opened by the first tick after the window if the
  problem is still there, or dropped on recovery.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pulseline.control.entities import Monitor
from stream_processors.logic.incidents import (
    IncidentKind,
    IncidentRequest,
    ResolveRequest,
    Severity,
)
from stream_processors.logic.schedule import as_utc, deadline

MAX_OPEN_RUNS = 16
_RUN_NAMESPACE = uuid.UUID("0b6f4f7e-7d0a-4d3c-8f0e-6a2b9c1d4e55")


class Status(StrEnum):
    NEW = "new"
    UP = "up"
    LATE = "late"
    DOWN = "down"
    PAUSED = "paused"


CheckInStatus = Literal["start", "ok", "fail", "log"]


@dataclass(frozen=True)
class CheckIn:
    status: CheckInStatus
    at: datetime
    run_id: str | None = None
    exit_code: int | None = None
    duration_ms: int | None = None
    output_size: int | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> CheckIn:
        """From an Event v1 dict; timed by ``received_at`` (our clock), else ``timestamp``."""
        attrs = event.get("attributes") or {}
        at = datetime.fromisoformat(str(event.get("received_at") or event["timestamp"]))
        return cls(
            status=attrs["status"],
            at=as_utc(at),
            run_id=attrs.get("run_id"),
            exit_code=attrs.get("exit_code"),
            duration_ms=attrs.get("duration_ms"),
            output_size=attrs.get("output_size"),
        )

    @property
    def failed(self) -> bool:
        return self.status == "fail" or (self.exit_code is not None and self.exit_code != 0)


@dataclass(frozen=True)
class OpenRun:
    run_id: str | None
    started_at: datetime
    late: bool = False


@dataclass(frozen=True)
class MonitorState:
    status: Status = Status.NEW
    last_ping: datetime | None = None
    open_runs: tuple[OpenRun, ...] = ()
    alerted: frozenset[IncidentKind] = frozenset()
    pending: frozenset[IncidentKind] = frozenset()
    resumed: bool = False


@dataclass(frozen=True)
class RunRecord:
    """One finished (or lost) run, for the ClickHouse runs table."""

    project_id: int
    monitor_id: str
    run_id: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    status: Literal["ok", "fail", "lost"]
    exit_code: int | None
    output_size: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "monitor_id": self.monitor_id,
            "run_id": self.run_id,
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "duration_ms": self.duration_ms,
            "status": self.status,
            "exit_code": self.exit_code,
            "output_size": self.output_size,
        }


Output = RunRecord | IncidentRequest | ResolveRequest

_SEVERITY = {
    IncidentKind.MONITOR_MISSED: Severity.ERROR,
    IncidentKind.MONITOR_FAILED: Severity.ERROR,
    IncidentKind.MONITOR_LATE: Severity.WARNING,
}
_TITLE = {
    IncidentKind.MONITOR_MISSED: "{name} missed its check-in",
    IncidentKind.MONITOR_FAILED: "{name} reported a failure",
    IncidentKind.MONITOR_LATE: "{name} is running longer than {max_runtime_s}s",
}


def dedup_key(monitor: Monitor, kind: IncidentKind) -> str:
    return f"{monitor.project_id}:{kind.value}:monitor:{monitor.id}"


def in_maintenance(monitor: Monitor, now: datetime) -> bool:
    return any(as_utc(w.start) <= now < as_utc(w.end) for w in monitor.maintenance)


def is_paused(state: MonitorState, monitor: Monitor) -> bool:
    return monitor.paused and not state.resumed


def next_check_at(state: MonitorState, monitor: Monitor, now: datetime) -> datetime | None:
    """When ``on_tick`` next has something to decide after ``now`` (for the due index).

    ``None``: nothing until a check-in or a change of the monitor.
    """
    if is_paused(state, monitor):
        return None
    moments: list[datetime] = []
    if state.status in (Status.UP, Status.LATE) and state.last_ping is not None:
        moments.append(deadline(monitor, state.last_ping))
    if monitor.max_runtime_s is not None:
        limit = timedelta(seconds=monitor.max_runtime_s)
        moments += [r.started_at + limit for r in state.open_runs if not r.late]
    if state.pending:
        moments += [as_utc(w.end) for w in monitor.maintenance if as_utc(w.end) > now]
    return min(moments, default=None)


def on_check_in(
    state: MonitorState, check_in: CheckIn, monitor: Monitor, now: datetime
) -> tuple[MonitorState, list[Output]]:
    """Apply one check-in received at ``now`` (``check_in.at`` times the run)."""
    state = _follow_pause(state, monitor)
    if check_in.status == "log":
        return state, []
    if check_in.status == "start":
        return _start(state, check_in, monitor)
    if state.status is Status.PAUSED:
        state = replace(state, resumed=monitor.paused)
    return _finish(state, check_in, monitor, now)


def on_tick(
    state: MonitorState, monitor: Monitor, now: datetime
) -> tuple[MonitorState, list[Output]]:
    """Decide what the passing of time to ``now`` changed."""
    state = _follow_pause(state, monitor)
    if state.status is Status.PAUSED:
        return state, []
    raised: set[IncidentKind] = set()
    runs = _flag_late(state.open_runs, monitor, now)
    if runs != state.open_runs:
        state = replace(state, open_runs=runs)
        if state.status in (Status.NEW, Status.UP):
            state = replace(state, status=Status.LATE)
            raised.add(IncidentKind.MONITOR_LATE)
    missed = state.last_ping is not None and now >= deadline(monitor, state.last_ping)
    if missed and state.status in (Status.UP, Status.LATE):
        state = replace(state, status=Status.DOWN)
        raised.add(IncidentKind.MONITOR_MISSED)
    return _raise(state, raised, monitor, now)


def _flag_late(runs: tuple[OpenRun, ...], monitor: Monitor, now: datetime) -> tuple[OpenRun, ...]:
    if monitor.max_runtime_s is None:
        return runs
    limit = timedelta(seconds=monitor.max_runtime_s)
    return tuple(replace(r, late=r.late or now >= r.started_at + limit) for r in runs)


def _follow_pause(state: MonitorState, monitor: Monitor) -> MonitorState:
    if not monitor.paused:
        if state.status is Status.PAUSED:
            return MonitorState(open_runs=state.open_runs, alerted=state.alerted)
        return replace(state, resumed=False) if state.resumed else state
    if state.resumed or state.status is Status.PAUSED:
        return state
    return replace(state, status=Status.PAUSED, pending=frozenset())


def _start(
    state: MonitorState, check_in: CheckIn, monitor: Monitor
) -> tuple[MonitorState, list[Output]]:
    if check_in.run_id is not None and any(r.run_id == check_in.run_id for r in state.open_runs):
        return state, []
    runs = (*state.open_runs, OpenRun(check_in.run_id, as_utc(check_in.at)))
    lost = runs[:-MAX_OPEN_RUNS]
    outputs: list[Output] = [_lost(monitor, run) for run in lost]
    return replace(state, open_runs=runs[-MAX_OPEN_RUNS:]), outputs


def _finish(
    state: MonitorState, check_in: CheckIn, monitor: Monitor, now: datetime
) -> tuple[MonitorState, list[Output]]:
    finished_at = as_utc(check_in.at)
    run = _pair(state.open_runs, check_in.run_id)
    runs = tuple(r for r in state.open_runs if r is not run)
    started_at = run.started_at if run is not None else None
    duration = check_in.duration_ms
    if duration is None and started_at is not None:
        duration = max(0, int((finished_at - started_at).total_seconds() * 1000))
    if started_at is None and duration is not None:
        started_at = finished_at - timedelta(milliseconds=duration)
    run_id = check_in.run_id or (run.run_id if run is not None else None)
    record = RunRecord(
        project_id=monitor.project_id,
        monitor_id=monitor.id,
        run_id=run_id or derived_run_id(monitor, started_at or finished_at),
        started_at=started_at,
        finished_at=finished_at,
        duration_ms=duration,
        status="fail" if check_in.failed else "ok",
        exit_code=check_in.exit_code,
        output_size=check_in.output_size,
    )
    last_ping = finished_at if state.last_ping is None else max(state.last_ping, finished_at)
    status = Status.DOWN if check_in.failed else Status.UP
    resolved = state.alerted - {IncidentKind.MONITOR_FAILED} if check_in.failed else state.alerted
    outputs: list[Output] = [record]
    outputs += [
        ResolveRequest(dedup_key(monitor, kind), "failed" if check_in.failed else "recovered")
        for kind in sorted(resolved)
    ]
    state = replace(
        state,
        status=status,
        last_ping=last_ping,
        open_runs=runs,
        alerted=state.alerted - resolved,
        pending=frozenset(),
    )
    raised = {IncidentKind.MONITOR_FAILED} if check_in.failed else set()
    state, opened = _raise(state, raised, monitor, now)
    return state, outputs + opened


def _pair(runs: tuple[OpenRun, ...], run_id: str | None) -> OpenRun | None:
    if run_id is None:
        return runs[-1] if runs else None
    return next((r for r in reversed(runs) if r.run_id == run_id), None)


def _raise(
    state: MonitorState, kinds: set[IncidentKind], monitor: Monitor, now: datetime
) -> tuple[MonitorState, list[Output]]:
    """Open incidents for ``kinds`` and any pending ones, unless in a maintenance window."""
    wanted = (state.pending - state.alerted) | kinds
    if not wanted:
        return state, []
    if in_maintenance(monitor, now):
        return replace(state, pending=frozenset(wanted)), []
    outputs: list[Output] = [_request(monitor, kind) for kind in sorted(wanted)]
    return replace(state, alerted=state.alerted | wanted, pending=frozenset()), outputs


def _request(monitor: Monitor, kind: IncidentKind) -> IncidentRequest:
    title = _TITLE[kind].format(name=monitor.name, max_runtime_s=monitor.max_runtime_s)
    return IncidentRequest(
        project_id=monitor.project_id,
        kind=kind,
        severity=_SEVERITY[kind],
        dedup_key=dedup_key(monitor, kind),
        title=title,
        explanation=_explain(monitor, kind),
        links={"monitor": monitor.slug, "monitor_id": monitor.id},
        monitor_id=monitor.id,
        tags=tuple(monitor.tags),
    )


def _explain(monitor: Monitor, kind: IncidentKind) -> str:
    if kind is IncidentKind.MONITOR_MISSED:
        s = monitor.schedule
        every = f"every {s.period_s}s" if s.period_s else f"at '{s.cron}' ({s.tz})"
        return f"Expected a ping {every}, with {monitor.grace_s}s grace; none arrived."
    if kind is IncidentKind.MONITOR_LATE:
        return f"A run started and did not finish within {monitor.max_runtime_s}s."
    return "The last run reported failure (status fail or a non-zero exit code)."


def _lost(monitor: Monitor, run: OpenRun) -> RunRecord:
    return RunRecord(
        project_id=monitor.project_id,
        monitor_id=monitor.id,
        run_id=run.run_id or derived_run_id(monitor, run.started_at),
        started_at=run.started_at,
        finished_at=None,
        duration_ms=None,
        status="lost",
        exit_code=None,
        output_size=None,
    )


def derived_run_id(monitor: Monitor, at: datetime) -> str:
    return str(uuid.uuid5(_RUN_NAMESPACE, f"{monitor.id}|{at.isoformat()}"))
