"""Sessions: fold each visitor's pageviews and events into sessions; sweep idle ones.

session_hits (from the router, keyed project:visitor) ─┬─► sessions ──► table,
sweep ticks (one per partition, from a timer) ──────────┘               derived.sessions

The visitor is the ``distinct_id``, else the client ``session_id``. Faust lets a table be
written only while handling a record of the same partition, so the timer does not sweep:
it sends a tick to every partition every emit interval, and the agent sweeps that
partition's due sessions when the tick arrives.

Finding due sessions costs no table scan: one ``DueIndex`` per partition holds each key's
next deadline (when its open session idles out, or when a swept state may be forgotten,
``FORGET_AFTER`` after the sweep). The indexes live in memory; after a start or a
rebalance the next tick rebuilds them once from the table, whose entries remember their
partition. Sweeping uses the wall clock at the tick, so replaying old events closes
their sessions at the next tick; a later event then opens a new one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from pulseline.records.sessions import (
    SESSION_HITS,
    SESSION_SWEEP_TICKS,
    SESSIONS,
    SESSIONS_CHANGELOG,
    SessionRow,
    SessionTableEntry,
    SweepTick,
)
from pulseline.schemas import Event
from pulseline.settings import ProcessorSettings
from stream_processors.deadletter import DeadLetters
from stream_processors.in_order import InOrder
from stream_processors.logic import sessions as visits
from stream_processors.logic.due_index import DueIndex
from stream_processors.tables import changelogged_table

FORGET_AFTER = timedelta(hours=1)
"""How long a swept state stays, so a redelivered or late event is still recognised."""


def deadline(entry: SessionTableEntry) -> datetime:
    """When the entry next needs the sweep: to close it, or (closed) to forget it."""
    if entry.closed_at is not None:
        return entry.closed_at + FORGET_AFTER
    return visits.closes_at(visits.Session.from_dict(entry.state))


def install(app: faust.App, settings: ProcessorSettings, dead: DeadLetters) -> None:
    prefix = settings.topic_prefix

    def topic(*names: str, **extra: Any) -> Any:
        return app.topic(*names, key_serializer="raw", value_serializer="raw", **extra)

    ticks_name = SESSION_SWEEP_TICKS.physical(prefix)
    sources = topic(SESSION_HITS.physical(prefix), ticks_name)
    ticks = topic(ticks_name, partitions=settings.partitions)
    out = topic(SESSIONS.physical(prefix))
    table = changelogged_table(app, settings, "sessions", SESSIONS_CHANGELOG, None)
    indexes: defaultdict[int, DueIndex] = defaultdict(DueIndex)
    stale = [True]

    @app.on_partitions_assigned.connect
    def _reassigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        stale[0] = True

    def rebuild() -> None:
        indexes.clear()
        for key, raw in table.items():
            entry = SessionTableEntry.model_validate(raw)
            indexes[entry.partition].schedule(key, deadline(entry))
        stale[0] = False

    async def store(key: str, entry: SessionTableEntry, rows: list[visits.SessionRow]) -> None:
        table[key] = entry.model_dump(mode="json")
        indexes[entry.partition].schedule(key, deadline(entry))
        for row in rows:
            record = SessionRow.model_validate(row.to_dict())
            await out.send(key=key.encode(), value=record.model_dump_json().encode())

    async def on_hit(message: Any) -> None:
        hit = visits.Hit.from_event(Event.model_validate_json(message.value))
        key = f"{hit.project_id}:{hit.visitor}"
        raw = table.get(key)
        state = (
            None
            if raw is None
            else visits.Session.from_dict(SessionTableEntry.model_validate(raw).state)
        )
        session, rows = visits.step(state, hit, datetime.now(UTC))
        if rows:
            entry = SessionTableEntry(partition=message.partition, state=session.to_dict())
            await store(key, entry, rows)

    async def on_tick(message: Any) -> None:
        if stale[0]:
            rebuild()
        now = SweepTick.model_validate_json(message.value).at
        for key in indexes[message.partition].pop_due(now):
            raw = table.get(key)
            if raw is None:
                continue
            entry = SessionTableEntry.model_validate(raw)
            if entry.closed_at is not None:
                del table[key]
                continue
            session, rows = visits.sweep(visits.Session.from_dict(entry.state), now)
            if not rows:
                indexes[message.partition].schedule(key, deadline(entry))
                continue
            closed_at = now if session.closed else None
            updated = SessionTableEntry(
                partition=entry.partition, closed_at=closed_at, state=session.to_dict()
            )
            await store(key, updated, rows)

    @app.agent(sources, name="sessions")
    async def sessionize(stream: Any) -> None:
        in_order = InOrder(app, "sessions")
        async for event in in_order.events(stream):
            try:
                if event.message.topic == ticks_name:
                    await on_tick(event.message)
                else:
                    await on_hit(event.message)
            except Exception as exc:
                await dead.send(event, "sessions", f"{type(exc).__name__}: {exc}")

    @app.timer(settings.processors_emit_interval_s, name="session_sweep_ticks")  # type: ignore[untyped-decorator]
    async def tick() -> None:
        value = SweepTick(at=datetime.now(UTC)).model_dump_json().encode()
        for partition in range(settings.partitions):
            await ticks.send(key=str(partition).encode(), value=value, partition=partition)
