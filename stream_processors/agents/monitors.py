"""Cron monitors: check-ins and a 1 s clock through the state machine of ``logic.monitors``.

check_ins_by_monitor (from the router, keyed ``project_id:slug``) ──on_check_in──►
monitor_states table ──► derived.runs, derived.monitor_states, processors.incident_signals.
The table uses the source's key, and Faust writes each change to the changelog partition
of the event that caused it, so table and source stay co-partitioned. The value remembers
that partition, which the clock needs (it writes outside any event).

The clock (``monitor_due_ticks``, every ``TICK_S``) does not scan the table: a ``DueIndex``
holds each monitor's next decision time (``next_check_at``) and the tick pops only what is
due, so a missed run is seen at most ~``TICK_S`` after its deadline. The index is local,
not stored: it is rebuilt from the table's local contents, keeping only keys of the
check-in partitions this worker holds, (a) after every table recovery (start, rebalance:
the ``on_recover`` callback marks it stale) and (b) when the control plane changed, so a new
schedule, a pause or an unpause takes effect; monitors whose definition changed are
evaluated at the next tick. A popped key whose partition is no longer held is skipped.

Monitor definitions come from the worker's ``ControlStore``. A check-in for a monitor the
control plane does not know is dead-lettered with reason ``unknown monitor``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from pulseline.control.entities import EntityType, Monitor
from pulseline.records.incidents import INCIDENT_SIGNALS
from pulseline.records.monitors import (
    CHECK_INS_BY_MONITOR,
    MONITOR_STATES,
    MONITOR_STATES_CHANGELOG,
    RUNS,
    MonitorTableEntry,
)
from pulseline.settings import ProcessorSettings
from stream_processors import monitor_records as rows
from stream_processors.control_plane import control_store, loaded
from stream_processors.deadletter import DeadLetters
from stream_processors.in_order import InOrder
from stream_processors.incident_signals import signal_of
from stream_processors.logic import monitors as sm
from stream_processors.logic.due_index import DueIndex
from stream_processors.tables import changelogged_table

STAGE = "monitor_check_ins"
TICK_S = 1.0


@dataclass
class Clock:
    """The worker-local due index and what it was built from."""

    index: DueIndex = field(default_factory=DueIndex)
    stale: bool = True
    control_offset: int = -2
    seen: dict[str, Monitor] = field(default_factory=dict)


def install(app: faust.App, settings: ProcessorSettings, dead: DeadLetters) -> None:
    prefix = settings.topic_prefix
    source = CHECK_INS_BY_MONITOR.physical(prefix)
    check_ins = app.topic(
        source, partitions=settings.partitions, key_serializer="raw", value_serializer="raw"
    )
    runs = app.topic(RUNS.physical(prefix), key_serializer="raw", value_serializer="raw")
    states = app.topic(
        MONITOR_STATES.physical(prefix), key_serializer="raw", value_serializer="raw"
    )
    signals = app.topic(
        INCIDENT_SIGNALS.physical(prefix), key_serializer="raw", value_serializer="raw"
    )
    table = changelogged_table(app, settings, "monitor_states", MONITOR_STATES_CHANGELOG, None)
    control = control_store(app, settings)
    clock = Clock()

    async def emit(
        monitor: Monitor,
        before: sm.MonitorState,
        after: sm.MonitorState,
        outputs: list[sm.Output],
        now: datetime,
        extra_runs: tuple[Any, ...] = (),
        tail: str | None = None,
    ) -> None:
        monitor_key = f"{monitor.project_id}:{monitor.id}".encode()
        for run in extra_runs:
            await runs.send(key=monitor_key, value=orjson.dumps(run.to_json()))
        for output in outputs:
            if isinstance(output, sm.RunRecord):
                run = rows.run_row(output, monitor, now, tail if output.status != "lost" else None)
                await runs.send(key=monitor_key, value=orjson.dumps(run.to_json()))
            else:
                sig = signal_of(output, now)
                await signals.send(
                    key=sig.dedup_key.encode(), value=orjson.dumps(sig.model_dump(mode="json"))
                )
        if (before.status, before.last_ping) != (after.status, after.last_ping):
            row = rows.state_row(after, monitor, now)
            await states.send(key=monitor_key, value=orjson.dumps(row.to_json()))

    def owned_partitions() -> set[int]:
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == source}

    @table.on_recover
    async def on_recover() -> None:
        clock.stale = True

    @app.agent(check_ins, name=STAGE)
    async def follow_check_ins(stream: Any) -> None:
        await loaded(app)
        in_order = InOrder(app, STAGE)
        async for event in in_order.events(stream):
            try:
                doc = orjson.loads(event.value)
                project_id = int(doc["project_id"])
                attributes = doc.get("attributes") or {}
                key = f"{project_id}:{attributes['monitor']}"
                entry = table.get(key)
                known = None if entry is None else entry["monitor_id"]
                monitor = rows.find_monitor(control.view, project_id, attributes, known)
                if monitor is None:
                    await dead.send(event, STAGE, "unknown monitor")
                    continue
                check_in = sm.CheckIn.from_event(doc)
                now = datetime.now(UTC)
                before = (
                    sm.MonitorState() if entry is None else rows.state_from_dict(entry["state"])
                )
                after, outputs = sm.on_check_in(before, check_in, monitor, now)
                table[key] = MonitorTableEntry(
                    monitor_id=monitor.id,
                    partition=event.message.partition,
                    state=rows.state_to_dict(after),
                ).model_dump()
                clock.index.schedule(key, sm.next_check_at(after, monitor, now))
                clock.seen[key] = monitor
                started = check_in.status == "start" and after.open_runs != before.open_runs
                running = (rows.running_row(check_in, monitor, now),) if started else ()
                await emit(
                    monitor, before, after, outputs, now, running, rows.output_tail(attributes)
                )
            except Exception as exc:
                await dead.send(event, STAGE, f"{type(exc).__name__}: {exc}")

    def rebuild(now: datetime) -> None:
        owned = owned_partitions()
        due: list[tuple[str, datetime | None]] = []
        seen: dict[str, Monitor] = {}
        for key, entry in list(table.items()):
            monitor = control.view.get(EntityType.MONITOR, entry["monitor_id"])
            if entry["partition"] not in owned or not isinstance(monitor, Monitor):
                continue
            seen[key] = monitor
            if clock.seen.get(key) not in (None, monitor):
                due.append((key, now))  # the definition changed: re-evaluate it now
                continue
            state = rows.state_from_dict(entry["state"])
            due.append((key, sm.next_check_at(state, monitor, now)))
        clock.index, clock.seen, clock.stale = DueIndex.from_states(due), seen, False
        clock.control_offset = control.view.offset

    @app.timer(TICK_S, name="monitor_due_ticks")  # type: ignore[untyped-decorator]
    async def tick() -> None:
        if not control.loaded or app.rebalancing or app.in_recovery:
            return  # the table is being rebuilt; on_recover marks the index stale
        now = datetime.now(UTC)
        if clock.stale or clock.control_offset != control.view.offset:
            rebuild(now)
        owned = owned_partitions()
        for key in clock.index.pop_due(now):
            entry = table.get(key)
            if entry is None or entry["partition"] not in owned:
                continue
            monitor = control.view.get(EntityType.MONITOR, entry["monitor_id"])
            if not isinstance(monitor, Monitor):
                continue
            before = rows.state_from_dict(entry["state"])
            after, outputs = sm.on_tick(before, monitor, now)
            if after != before:
                value = {**entry, "state": rows.state_to_dict(after)}
                # Outside an event Faust cannot pick the changelog partition: name it.
                table.data[key] = value
                table.send_changelog(entry["partition"], key, value)
            clock.index.schedule(key, sm.next_check_at(after, monitor, now))
            await emit(monitor, before, after, outputs, now)
