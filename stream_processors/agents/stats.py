"""Running statistics and anomaly rules per series.

stats_by_series (one ``SeriesPoints`` per series and source partition per routed batch,
from the router) ──fold──► series_stats table; anomalies ──► derived.anomalies +
processors.incident_signals at once; snapshots of the changed series ──timer──►
derived.stats. The fold batches with ``take_events(BATCH, within=WITHIN_S)``, so an
anomaly leaves at most ~2 * WITHIN_S after its event is consumed by the router.

Table writes go through ``SeriesTable.write`` with the partition of the batch's events:
inside ``take_events`` Faust has no current event, so ``table[key] = value`` is refused
("Cannot modify table outside of agent/stream") and the changelog partition must be named.

Auto-resolve: an anomaly opens the incident of its dedup key and arms an alarm in the
series' state; the next judgment of the same rule that comes out normal (``resolve_after``
in a row) sends a resolve signal with the reason (``logic.recovery``). A series that never
fired sends none. The emit timer also closes windows: a transaction series' slow window, and
the error windows an armed error-rate alarm waits for, so a spike resolves without a further
error event.

Redelivery: each series' entry keeps, beside its state, the last source offset it applied
per source partition (``logic.replay_guard``), written in the same changelog record. Points
routed again after a crash (of the router or of this fold) are skipped, exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from pulseline.records.incidents import INCIDENT_SIGNALS, Severity
from pulseline.records.stats import (
    ANOMALIES,
    STATS,
    STATS_BY_SERIES,
    STATS_CHANGELOG,
    SeriesPoints,
)
from pulseline.settings import ProcessorSettings
from stream_processors.control_plane import control_store, loaded
from stream_processors.deadletter import DeadLetters
from stream_processors.in_order import InOrder
from stream_processors.incident_signals import signal_of
from stream_processors.logic.incidents import IncidentRequest, ResolveRequest
from stream_processors.logic.recovery import Resolved
from stream_processors.logic.replay_guard import fresh
from stream_processors.logic.series import (
    ERROR,
    INCIDENT_KINDS,
    TRANSACTION,
    Found,
    SeriesKey,
    SeriesState,
    dedup_key,
    fold_resolving,
    snapshot,
    tick_resolving,
    title,
)
from stream_processors.tables import changelogged_table
from stream_processors.threshold_book import ThresholdBook

BATCH = 2000
WITHIN_S = 0.25
STAGE = "fold_series"
RESEND_S = 600.0


class SeriesTable:
    """The Faust table of series states, with a decoded cache and explicit partitions.

    An entry is ``{"state": SeriesState.to_dict(), "marks": {source: last offset},
    "at": when written}``."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.cache: dict[str, tuple[object, SeriesState]] = {}
        self.partition_of: dict[str, int] = {}

    def state(self, key: str) -> SeriesState:
        doc = self.table.data.get(key)
        cached = self.cache.get(key)
        if cached is not None and cached[0] is doc:
            return cached[1]
        return SeriesState() if doc is None else SeriesState.from_dict(doc["state"])

    def marks(self, key: str) -> dict[str, int]:
        doc = self.table.data.get(key)
        return {} if doc is None else dict(doc["marks"])

    def write(
        self, partition: int, key: str, state: SeriesState, marks: dict[str, int] | None = None
    ) -> None:
        doc = {
            "state": state.to_dict(),
            "marks": self.marks(key) if marks is None else marks,
            "at": time.time(),
        }
        self.table.data[key] = doc
        self.table.send_changelog(partition, key, doc, "json", "json")
        self.cache[key] = (doc, state)
        self.partition_of[key] = partition


def install(app: faust.App, settings: ProcessorSettings, dead: DeadLetters) -> None:
    prefix = settings.topic_prefix
    by_series = app.topic(
        STATS_BY_SERIES.physical(prefix),
        partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    stats_out = app.topic(STATS.physical(prefix), key_serializer="raw", value_serializer="raw")
    anomalies_out = app.topic(
        ANOMALIES.physical(prefix), key_serializer="raw", value_serializer="raw"
    )
    signals = app.topic(
        INCIDENT_SIGNALS.physical(prefix), key_serializer="raw", value_serializer="raw"
    )
    table = SeriesTable(
        changelogged_table(app, settings, "series_stats", STATS_CHANGELOG, default=None)
    )
    control = control_store(app, settings)
    book = ThresholdBook(lambda: control.view)
    dirty: set[str] = set()

    async def publish(key: SeriesKey, output: Found | Resolved, event_id: str) -> None:
        if isinstance(output, Resolved):
            dedup = dedup_key(key, output.rule)
            request = ResolveRequest(dedup, output.reason)
            signal = signal_of(request, output.at, key.project_id)
            await signals.send(key=dedup.encode(), value=signal.model_dump_json().encode())
            return
        anomaly = output.anomaly
        series = key.encode()
        record = {
            "schema_version": 1,
            "project_id": key.project_id,
            "series": series,
            "rule": anomaly.rule,
            "value": anomaly.value,
            "score": anomaly.score,
            "explanation": anomaly.explanation,
            "at": anomaly.at.isoformat(),
            "event_id": event_id,
        }
        await anomalies_out.send(key=series.encode(), value=orjson.dumps(record))
        dedup = dedup_key(key, anomaly.rule)
        opening = IncidentRequest(
            project_id=key.project_id,
            kind=INCIDENT_KINDS[anomaly.rule],
            severity=Severity.WARNING,
            dedup_key=dedup,
            title=title(key, anomaly.rule),
            explanation=anomaly.explanation,
            links={"series": series, "event_id": event_id},
        )
        signal = signal_of(opening, anomaly.at)
        await signals.send(key=dedup.encode(), value=signal.model_dump_json().encode())

    @app.agent(by_series, name=STAGE)
    async def fold_series(stream: Any) -> None:
        await loaded(app)  # the thresholds come from the control plane
        in_order = InOrder(app, STAGE)
        async for events in stream.take_events(BATCH, within=WITHIN_S):
            groups: dict[str, Group] = {}
            for event in await in_order.admitted(events):
                try:
                    routed = SeriesPoints.model_validate_json(event.value)
                    SeriesKey.decode(routed.series)
                    if not len(routed.values) == len(routed.ats) == len(routed.event_ids):
                        raise ValueError("values, ats and event_ids differ in length")
                    if len(routed.offsets) != len(routed.values):
                        raise ValueError("offsets and values differ in length")
                except Exception as exc:
                    await dead.send(event, STAGE, f"{type(exc).__name__}: {exc}")
                    continue
                series = routed.series
                group = groups.get(series)
                if group is None:
                    group = groups[series] = Group(event.message.partition, table.marks(series))
                kept, group.marks = fresh(group.marks, routed.source, routed.offsets)
                group.values += [routed.values[i] for i in kept]
                group.ats += [routed.ats[i] for i in kept]
                group.ids += [routed.event_ids[i] for i in kept]
                group.members.append(event)
            outputs: list[tuple[SeriesKey, Found | Resolved, str]] = []
            for series, group in groups.items():
                if not group.values:
                    continue
                key = SeriesKey.decode(series)
                try:
                    thresholds = book.for_series(key)
                    state, found = fold_resolving(
                        key.family, table.state(series), group.values, group.ats, thresholds
                    )
                except Exception as exc:
                    for member in group.members:
                        await dead.send(member, STAGE, f"{type(exc).__name__}: {exc}")
                    continue
                table.write(group.partition, series, state, group.marks)
                dirty.add(series)
                outputs += [(key, f, group.ids[f.index]) for f in found]
            for key, output, event_id in outputs:
                await publish(key, output, event_id)

    async def after_recovery() -> None:
        # The timer writes only series of partitions this worker still owns; and a snapshot
        # not yet sent when the partition moved or the worker died goes now.
        source = by_series.get_topic_name()
        owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == source}
        table.partition_of = {k: p for k, p in table.partition_of.items() if p in owned}
        since = time.time() - RESEND_S
        dirty.update(k for k, doc in table.table.data.items() if doc.get("at", 0.0) > since)

    table.table.on_recover(after_recovery)

    @app.timer(settings.processors_emit_interval_s, name="emit_series_stats")  # type: ignore[untyped-decorator]
    async def emit() -> None:
        now = time.time()
        at = datetime.fromtimestamp(now, UTC)
        closing = [k for k, p in table.partition_of.items() if _ticks(table, k)]
        for series in closing:
            key = SeriesKey.decode(series)
            before = table.state(series)
            state, found = tick_resolving(key.family, before, now, book.for_series(key))
            if state is not before:
                table.write(table.partition_of[series], series, state)
            for one in found:
                await publish(key, one, "")
        changed = list(dirty)
        dirty.clear()
        for series in changed:
            if series not in table.table.data:  # its partition moved on; the owner sends it
                continue
            key = SeriesKey.decode(series)
            doc = snapshot(key, table.state(series), at)
            await stats_out.send(key=series.encode(), value=orjson.dumps(doc))


@dataclass
class Group:
    """One series' points in a fold batch, after the replay guard."""

    partition: int
    marks: dict[str, int]
    values: list[float] = field(default_factory=list)
    ats: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    members: list[Any] = field(default_factory=list)


def _ticks(table: SeriesTable, series: str) -> bool:
    """Whether the timer has a window to close: a transaction series' open window, or the
    window of an error series whose error-rate alarm is armed."""
    family = SeriesKey.decode(series).family
    if family == TRANSACTION:
        return table.state(series).window.window is not None
    if family == ERROR:
        state = table.state(series)
        return bool(state.recovery.alarms) and state.window.window is not None
    return False
