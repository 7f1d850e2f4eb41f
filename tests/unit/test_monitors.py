from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pulseline.control.entities import MaintenanceWindow, Monitor, Schedule
from stream_processors.logic.incidents import IncidentKind, IncidentRequest, ResolveRequest
from stream_processors.logic.monitors import (
    MAX_OPEN_RUNS,
    CheckIn,
    MonitorState,
    Output,
    RunRecord,
    Status,
    dedup_key,
    next_check_at,
    on_check_in,
    on_tick,
)

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


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


def _ping(status: str, minutes: float, **extra: Any) -> CheckIn:
    return CheckIn(status=status, at=_at(minutes), **extra)  # type: ignore[arg-type]


def _run(
    state: MonitorState, monitor: Monitor, script: list[Any]
) -> tuple[MonitorState, list[Output]]:
    """Play check-ins and ("tick", minutes) steps in order, collecting every output."""
    outputs: list[Output] = []
    for step in script:
        if isinstance(step, CheckIn):
            state, out = on_check_in(state, step, monitor, step.at)
        else:
            state, out = on_tick(state, monitor, _at(step[1]))
        outputs += out
    return state, outputs


def _opened(outputs: list[Output]) -> list[IncidentKind]:
    return [o.kind for o in outputs if isinstance(o, IncidentRequest)]


def _resolved(outputs: list[Output]) -> list[str]:
    return [o.dedup_key for o in outputs if isinstance(o, ResolveRequest)]


def _runs(outputs: list[Output]) -> list[RunRecord]:
    return [o for o in outputs if isinstance(o, RunRecord)]


@pytest.mark.parametrize(
    ("script", "status", "opened"),
    [
        ([_ping("ok", 0)], Status.UP, []),
        ([_ping("fail", 0)], Status.DOWN, [IncidentKind.MONITOR_FAILED]),
        ([_ping("ok", 0, exit_code=3)], Status.DOWN, [IncidentKind.MONITOR_FAILED]),
        ([_ping("ok", 0, exit_code=0)], Status.UP, []),
        ([_ping("log", 0)], Status.NEW, []),
        ([_ping("ok", 0), _ping("log", 5), ("tick", 11.9)], Status.UP, []),
        ([_ping("ok", 0), ("tick", 11.9)], Status.UP, []),
        ([_ping("ok", 0), ("tick", 12)], Status.DOWN, [IncidentKind.MONITOR_MISSED]),
        (
            [_ping("ok", 0), ("tick", 12), ("tick", 13), ("tick", 60)],
            Status.DOWN,
            [IncidentKind.MONITOR_MISSED],
        ),
        ([_ping("fail", 0), ("tick", 30)], Status.DOWN, [IncidentKind.MONITOR_FAILED]),
        ([("tick", 10_000)], Status.NEW, []),
        ([_ping("start", 0), ("tick", 10_000)], Status.NEW, []),
    ],
)
def test_check_ins_and_ticks_move_the_monitor_between_states(
    script: list[Any], status: Status, opened: list[IncidentKind]
) -> None:
    state, outputs = _run(MonitorState(), _monitor(), script)
    assert state.status is status
    assert _opened(outputs) == opened


def test_a_log_ping_does_not_move_the_deadline() -> None:
    monitor = _monitor()
    state, _ = _run(MonitorState(), monitor, [_ping("ok", 0), _ping("log", 10)])
    assert state.last_ping == _at(0)
    assert next_check_at(state, monitor, _at(10)) == _at(12)


@pytest.mark.parametrize("finish", [_ping("ok", 20), _ping("ok", 20, exit_code=0)])
def test_an_ok_after_a_miss_recovers_and_resolves_the_incident(finish: CheckIn) -> None:
    monitor = _monitor()
    state, outputs = _run(MonitorState(), monitor, [_ping("ok", 0), ("tick", 12), finish])
    assert state.status is Status.UP
    assert _resolved(outputs) == [dedup_key(monitor, IncidentKind.MONITOR_MISSED)]
    assert state.alerted == frozenset()


def test_a_fail_after_a_miss_swaps_the_missed_incident_for_a_failed_one() -> None:
    monitor = _monitor()
    state, outputs = _run(
        MonitorState(), monitor, [_ping("ok", 0), ("tick", 12), _ping("fail", 20)]
    )
    assert state.status is Status.DOWN
    assert _resolved(outputs) == [dedup_key(monitor, IncidentKind.MONITOR_MISSED)]
    assert _opened(outputs) == [IncidentKind.MONITOR_MISSED, IncidentKind.MONITOR_FAILED]
    _, after = on_check_in(state, _ping("ok", 30), monitor, _at(30))
    assert _resolved(after) == [dedup_key(monitor, IncidentKind.MONITOR_FAILED)]


def test_a_run_started_and_not_finished_within_the_max_runtime_is_late_once() -> None:
    monitor = _monitor(max_runtime_s=300)
    script = [_ping("ok", 0), _ping("start", 1, run_id="r1"), ("tick", 5.9)]
    state, outputs = _run(MonitorState(), monitor, script)
    assert state.status is Status.UP and _opened(outputs) == []
    state, outputs = _run(state, monitor, [("tick", 6), ("tick", 7)])
    assert state.status is Status.LATE
    assert _opened(outputs) == [IncidentKind.MONITOR_LATE]
    state, outputs = on_check_in(state, _ping("ok", 8, run_id="r1"), monitor, _at(8))
    assert state.status is Status.UP
    assert _resolved(outputs) == [dedup_key(monitor, IncidentKind.MONITOR_LATE)]
    assert _runs(outputs)[0].duration_ms == 7 * 60_000


def test_interleaved_runs_pair_by_run_id() -> None:
    script = [
        _ping("start", 0, run_id="a"),
        _ping("start", 1, run_id="b"),
        _ping("ok", 3, run_id="a"),
        _ping("fail", 5, run_id="b", exit_code=2, output_size=40),
    ]
    state, outputs = _run(MonitorState(), _monitor(), script)
    runs = [(r.run_id, r.started_at, r.duration_ms, r.status, r.exit_code) for r in _runs(outputs)]
    assert runs == [("a", _at(0), 180_000, "ok", None), ("b", _at(1), 240_000, "fail", 2)]
    assert _runs(outputs)[1].output_size == 40
    assert state.open_runs == ()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        # without run ids the finish pairs with the latest open start
        ([_ping("start", 0), _ping("start", 2), _ping("ok", 3)], (_at(2), 60_000)),
        # a sent duration wins over the measured one
        ([_ping("start", 0), _ping("ok", 3, duration_ms=1_500)], (_at(0), 1_500)),
        # an unpaired finish with a duration is dated back by it
        ([_ping("ok", 3, duration_ms=60_000)], (_at(2), 60_000)),
        ([_ping("ok", 3)], (None, None)),
        ([_ping("start", 0, run_id="x"), _ping("ok", 3, run_id="y")], (None, None)),
    ],
)
def test_durations_come_from_the_paired_start_or_the_check_in(
    script: list[Any], expected: tuple[datetime | None, int | None]
) -> None:
    _, outputs = _run(MonitorState(), _monitor(), script)
    last = _runs(outputs)[-1]
    assert (last.started_at, last.duration_ms) == expected


def test_runs_without_any_id_get_a_stable_derived_one() -> None:
    _, first = _run(MonitorState(), _monitor(), [_ping("ok", 3)])
    _, again = _run(MonitorState(), _monitor(), [_ping("ok", 3)])
    assert _runs(first)[0].run_id == _runs(again)[0].run_id


def test_open_runs_are_bounded_and_the_oldest_is_reported_lost() -> None:
    script = [_ping("start", i, run_id=f"r{i}") for i in range(MAX_OPEN_RUNS + 1)]
    state, outputs = _run(MonitorState(), _monitor(), script)
    assert len(state.open_runs) == MAX_OPEN_RUNS
    assert [(r.run_id, r.status) for r in _runs(outputs)] == [("r0", "lost")]


def test_a_duplicate_start_is_ignored() -> None:
    script = [_ping("start", 0, run_id="a"), _ping("start", 0, run_id="a")]
    state, _ = _run(MonitorState(), _monitor(), script)
    assert len(state.open_runs) == 1


def test_ticks_ignore_a_paused_monitor() -> None:
    monitor = _monitor(paused=True, max_runtime_s=60)
    state, _ = _run(MonitorState(status=Status.UP, last_ping=_at(0)), monitor, [])
    state, outputs = _run(state, monitor, [_ping("start", 1), ("tick", 100), ("tick", 1000)])
    assert state.status is Status.PAUSED and outputs == []
    assert next_check_at(state, monitor, _at(1000)) is None


def test_a_ping_resumes_a_paused_monitor_until_the_control_plane_unpauses_it() -> None:
    paused = _monitor(paused=True)
    state, _ = on_tick(MonitorState(status=Status.UP, last_ping=_at(0)), paused, _at(1))
    assert state.status is Status.PAUSED
    state, _ = on_check_in(state, _ping("ok", 50), paused, _at(50))
    assert state.status is Status.UP
    state, outputs = on_tick(state, paused, _at(62))
    assert state.status is Status.DOWN and _opened(outputs) == [IncidentKind.MONITOR_MISSED]
    unpaused = _monitor()
    state, _ = on_tick(state, unpaused, _at(63))
    assert state.status is Status.DOWN
    state, _ = on_tick(state, paused, _at(64))
    assert state.status is Status.PAUSED


def test_unpausing_puts_the_monitor_back_to_new() -> None:
    state, _ = on_tick(
        MonitorState(status=Status.UP, last_ping=_at(0)), _monitor(paused=True), _at(1)
    )
    state, outputs = on_tick(state, _monitor(), _at(1000))
    assert state.status is Status.NEW and outputs == []


def test_a_maintenance_window_suppresses_incidents_but_not_the_state() -> None:
    window = MaintenanceWindow(start=_at(10), end=_at(30))
    monitor = _monitor(maintenance=[window])
    state, outputs = _run(MonitorState(), monitor, [_ping("ok", 0), ("tick", 12), ("tick", 20)])
    assert state.status is Status.DOWN and _opened(outputs) == []
    assert next_check_at(state, monitor, _at(20)) == _at(30)
    state, outputs = _run(state, monitor, [("tick", 30), ("tick", 31)])
    assert _opened(outputs) == [IncidentKind.MONITOR_MISSED]


def test_a_recovery_inside_the_window_drops_the_suppressed_incident() -> None:
    monitor = _monitor(maintenance=[MaintenanceWindow(start=_at(10), end=_at(30))])
    script = [_ping("ok", 0), ("tick", 12), _ping("ok", 20), ("tick", 30)]
    state, outputs = _run(MonitorState(), monitor, script)
    assert state.status is Status.UP
    assert _opened(outputs) == [] and _resolved(outputs) == []


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (MonitorState(), None),
        (MonitorState(status=Status.UP, last_ping=_at(0)), _at(12)),
        (MonitorState(status=Status.DOWN, last_ping=_at(0)), None),
    ],
)
def test_the_next_check_is_the_deadline_while_up(
    state: MonitorState, expected: datetime | None
) -> None:
    assert next_check_at(state, _monitor(), _at(0)) == expected


def test_a_check_in_is_read_from_an_event_by_its_received_time() -> None:
    event = {
        "timestamp": "2026-05-01T11:00:00+00:00",
        "received_at": "2026-05-01T12:00:00+00:00",
        "attributes": {"monitor": "backup", "status": "fail", "exit_code": 1, "run_id": "r"},
    }
    check_in = CheckIn.from_event(event)
    assert check_in == CheckIn(status="fail", at=T0, run_id="r", exit_code=1)
    assert check_in.failed
