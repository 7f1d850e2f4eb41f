"""Per-project counts: route ingest events by project, count them, emit snapshots.

ingest.* ──route──► by_project (re-keyed by project) ──count──► table ──timer──►
derived.project_counts. Re-keying keeps each project's counters on one partition, so the
table and its changelog stay co-partitioned with the stream that updates them. The route
stage sends a small ``CountDelta`` per event rather than the whole event.
"""

from __future__ import annotations

from typing import Any

import faust
import orjson

from pulseline.settings import ProcessorSettings
from pulseline.topics import (
    INGEST,
    PROJECT_COUNTS,
    PROJECT_COUNTS_BY_PROJECT,
    PROJECT_COUNTS_CHANGELOG,
)
from stream_processors.deadletter import DeadLetters
from stream_processors.logic.counts import CountKey, count_key, delta, snapshot
from stream_processors.tables import changelogged_table


def install(app: faust.App, settings: ProcessorSettings, dead: DeadLetters) -> None:
    prefix = settings.topic_prefix
    ingest = app.topic(
        *(spec.physical(prefix) for spec in INGEST.values()),
        key_serializer="raw",
        value_serializer="raw",
    )
    by_project = app.topic(
        PROJECT_COUNTS_BY_PROJECT.physical(prefix),
        partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    out = app.topic(PROJECT_COUNTS.physical(prefix), key_serializer="raw", value_serializer="raw")
    counts = changelogged_table(app, settings, "project_counts", PROJECT_COUNTS_CHANGELOG, int)
    dirty: set[str] = set()

    @app.agent(ingest, name="route_by_project")
    async def route(stream: Any) -> None:
        # One event at a time: with take() a rebalance either waited forever for the
        # buffered events (wait_empty) or, without that wait, lost them (scale-out test).
        async for event in stream.events():
            try:
                key = count_key(orjson.loads(event.value))
            except Exception as exc:
                await dead.send(event, "route_by_project", f"{type(exc).__name__}: {exc}")
                continue
            await by_project.send(
                key=str(key.project_id).encode(), value=orjson.dumps(delta(key, 1))
            )

    @app.agent(by_project, name="count_by_project")
    async def count(stream: Any) -> None:
        async for event in stream.events():
            try:
                doc = orjson.loads(event.value)
                key = CountKey.decode(doc["key"]).encode()
                n = doc["n"]
                if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                    raise ValueError(f"n must be a positive integer, got {n!r}")
                counts[key] += n
            except Exception as exc:
                await dead.send(event, "count_by_project", f"{type(exc).__name__}: {exc}")
                continue
            dirty.add(key)

    @app.timer(settings.processors_emit_interval_s, name="emit_project_counts")  # type: ignore[untyped-decorator]
    async def emit() -> None:
        changed = list(dirty)
        dirty.clear()
        for encoded in changed:
            key = CountKey.decode(encoded)
            await out.send(
                key=str(key.project_id).encode(),
                value=orjson.dumps(snapshot(key, int(counts[encoded]))),
            )
