"""Running statistics and anomaly rules per series.

ingest.{transaction,web_vital,metric,check_in,error} ──route──► stats_by_series (one
``SeriesPoints`` record per series per routed batch) ──fold──► series_stats table;
anomalies ──► derived.anomalies + processors.incident_signals at once; snapshots of the
changed series ──timer──► derived.stats. Both stages batch with ``take_events(BATCH,
within=WITHIN_S)``, so an anomaly leaves at most ~2 * WITHIN_S after its event is consumed;
one record per series per batch keeps the producer from sending a request per event.

Table writes go through ``SeriesTable.write`` with the partition of the batch's events:
inside ``take_events`` Faust has no current event, so ``table[key] = value`` is refused
("Cannot modify table outside of agent/stream") and the changelog partition must be named.

Redelivery: the table also keeps ``offset|<partition>``, the last applied offset of each
partition of the repartition topic, written to the same changelog partition in the same
batch as the states. After a crash the table is restored with both, and records at or
below the mark are skipped, so a batch replayed from the last commit is never counted
twice. A duplicate *produced* by a replayed route (same event, new offset) is not caught.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import faust
import orjson

from pulseline.records.incidents import INCIDENT_SIGNALS, IncidentSignal, Severity
from pulseline.records.stats import ANOMALIES, STATS, STATS_BY_SERIES, STATS_CHANGELOG
from pulseline.schemas import EventKind
from pulseline.settings import ProcessorSettings
from pulseline.topics import INGEST
from stream_processors.deadletter import DeadLetters
from stream_processors.logic.series import (
    INCIDENT_KINDS,
    TRANSACTION,
    Found,
    SeriesKey,
    SeriesState,
    event_time,
    fold,
    points,
    snapshot,
    tick,
    title,
)
from stream_processors.logic.thresholds import Thresholds
from stream_processors.tables import changelogged_table

BATCH = 2000
WITHIN_S = 0.25
SOURCES = (
    EventKind.TRANSACTION,
    EventKind.WEB_VITAL,
    EventKind.METRIC,
    EventKind.CHECK_IN,
    EventKind.ERROR,
)


class SeriesTable:
    """The Faust table of series states, with a decoded cache and explicit partitions."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.cache: dict[str, tuple[object, SeriesState]] = {}
        self.partition_of: dict[str, int] = {}

    def state(self, key: str) -> SeriesState:
        doc = self.table.data.get(key)
        cached = self.cache.get(key)
        if cached is not None and cached[0] is doc:
            return cached[1]
        return SeriesState() if doc is None else SeriesState.from_dict(doc)

    def write(self, partition: int, key: str, state: SeriesState) -> None:
        doc = state.to_dict()
        self.put(partition, key, doc)
        self.cache[key] = (doc, state)
        self.partition_of[key] = partition

    def mark(self, partition: int) -> int:
        return int(self.table.data.get(f"offset|{partition}", -1))

    def put(self, partition: int, key: str, value: Any) -> None:
        self.table.data[key] = value
        self.table.send_changelog(partition, key, value, "json", "json")


def install(app: faust.App, settings: ProcessorSettings, dead: DeadLetters) -> None:
    prefix = settings.topic_prefix
    ingest = app.topic(
        *(INGEST[kind].physical(prefix) for kind in SOURCES),
        key_serializer="raw",
        value_serializer="raw",
    )
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
    thresholds = Thresholds()  # TODO(lead): per-monitor overrides need the monitors ControlStore
    dirty: set[str] = set()

    @app.agent(ingest, name="route_by_series")
    async def route(stream: Any) -> None:
        async for events in stream.take_events(BATCH, within=WITHIN_S):
            batches: dict[str, tuple[list[float], list[float], list[str]]] = {}
            for event in events:
                try:
                    doc = orjson.loads(event.value)
                    found = points(doc)
                    at = event_time(doc) if found else 0.0
                    event_id = str(doc["event_id"])
                except Exception as exc:
                    await dead.send(event, "route_by_series", f"{type(exc).__name__}: {exc}")
                    continue
                for key, value in found:
                    batch = batches.setdefault(key.encode(), ([], [], []))
                    batch[0].append(value)
                    batch[1].append(at)
                    batch[2].append(event_id)
            for series, (values, ats, ids) in batches.items():
                routed = {"series": series, "values": values, "ats": ats, "event_ids": ids}
                await by_series.send(key=series.encode(), value=orjson.dumps(routed))

    async def publish(key: SeriesKey, found: Found, event_id: str) -> None:
        anomaly = found.anomaly
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
        dedup = f"anomaly:{key.project_id}:{anomaly.rule}:{key.family}:{key.name}"
        signal = IncidentSignal(
            action="open",
            dedup_key=dedup,
            at=anomaly.at,
            project_id=key.project_id,
            kind=INCIDENT_KINDS[anomaly.rule],
            severity=Severity.WARNING,
            title=title(key, anomaly.rule),
            explanation=anomaly.explanation,
            links={"series": series, "event_id": event_id},
        )
        await signals.send(key=dedup.encode(), value=signal.model_dump_json().encode())

    @app.agent(by_series, name="fold_series")
    async def fold_series(stream: Any) -> None:
        async for events in stream.take_events(BATCH, within=WITHIN_S):
            groups: dict[str, tuple[int, list[float], list[float], list[str], list[Any]]] = {}
            marks: dict[int, int] = {}
            for event in events:
                message = event.message
                partition, offset = message.partition, message.offset
                if partition not in marks:
                    marks[partition] = table.mark(partition)
                if offset <= marks[partition]:
                    continue
                marks[partition] = offset
                try:
                    routed = orjson.loads(event.value)
                    series = routed["series"]
                    SeriesKey.decode(series)
                    values = [float(v) for v in routed["values"]]
                    ats = [float(a) for a in routed["ats"]]
                    ids = [str(i) for i in routed["event_ids"]]
                    if not len(values) == len(ats) == len(ids):
                        raise ValueError("values, ats and event_ids differ in length")
                except Exception as exc:
                    await dead.send(event, "fold_series", f"{type(exc).__name__}: {exc}")
                    continue
                group = groups.setdefault(series, (partition, [], [], [], []))
                group[1].extend(values)
                group[2].extend(ats)
                group[3].extend(ids)
                group[4].append(event)
            outputs: list[tuple[SeriesKey, Found, str]] = []
            for series, (partition, values, times, ids, members) in groups.items():
                key = SeriesKey.decode(series)
                try:
                    state, found = fold(key.family, table.state(series), values, times, thresholds)
                except Exception as exc:
                    for member in members:
                        await dead.send(member, "fold_series", f"{type(exc).__name__}: {exc}")
                    continue
                table.write(partition, series, state)
                dirty.add(series)
                outputs += [(key, f, ids[f.index]) for f in found]
            for partition, offset in marks.items():
                table.put(partition, f"offset|{partition}", offset)
            for key, found_one, event_id in outputs:
                await publish(key, found_one, event_id)

    @app.timer(settings.processors_emit_interval_s, name="emit_series_stats")  # type: ignore[untyped-decorator]
    async def emit() -> None:
        now = time.time()
        at = datetime.fromtimestamp(now, UTC)
        closing = [k for k, p in table.partition_of.items() if _window_open(table, k)]
        for series in closing:
            key = SeriesKey.decode(series)
            state, found = tick(table.state(series), now, thresholds)
            if state.window != table.state(series).window:
                table.write(table.partition_of[series], series, state)
            for one in found:
                await publish(key, one, "")
        changed = list(dirty)
        dirty.clear()
        for series in changed:
            key = SeriesKey.decode(series)
            doc = snapshot(key, table.state(series), at)
            await stats_out.send(key=series.encode(), value=orjson.dumps(doc))


def _window_open(table: SeriesTable, series: str) -> bool:
    if SeriesKey.decode(series).family != TRANSACTION:
        return False
    return table.state(series).window.window is not None
