"""Per-project counts: fold the router's count deltas into a table, emit snapshots.

by_project (``CountDelta`` per counter and source partition, keyed by project) ──count──►
table ──timer──► derived.project_counts. Keying by project keeps each project's counters
on one partition, co-partitioned with the table's changelog. Each counter remembers the
last offset it applied per source partition (``logic.replay_guard``), so deltas a crashed
router sends again are not counted twice.

Snapshots leave on a timer, so a counter changed just before its partition moved (or the
worker died) may not have been sent yet. After every table recovery the worker sends again
each counter it holds that changed within ``RESEND_S``; readers keep the largest count.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import faust
import orjson

from pulseline.schemas import CountDelta
from pulseline.settings import ProcessorSettings
from pulseline.topics import PROJECT_COUNTS, PROJECT_COUNTS_BY_PROJECT, PROJECT_COUNTS_CHANGELOG
from stream_processors.deadletter import DeadLetters
from stream_processors.in_order import InOrder
from stream_processors.logic.counts import CountKey, snapshot
from stream_processors.logic.replay_guard import fresh
from stream_processors.tables import changelogged_table

STAGE = "count_by_project"
RESEND_S = 600.0
WRITER = f"{socket.gethostname()}:{os.getpid()}"  # who wrote a changelog value, for forensics


def install(app: faust.App, settings: ProcessorSettings, dead: DeadLetters) -> None:
    prefix = settings.topic_prefix
    by_project = app.topic(
        PROJECT_COUNTS_BY_PROJECT.physical(prefix),
        partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    out = app.topic(PROJECT_COUNTS.physical(prefix), key_serializer="raw", value_serializer="raw")
    counts = changelogged_table(app, settings, "project_counts", PROJECT_COUNTS_CHANGELOG, None)
    dirty: set[str] = set()

    @app.agent(by_project, name=STAGE)
    async def count(stream: Any) -> None:
        in_order = InOrder(app, STAGE)
        async for event in in_order.events(stream):
            try:
                routed = CountDelta.model_validate_json(event.value)
                key = CountKey.decode(routed.key).encode()
                entry = counts.get(key) or {"n": 0, "marks": {}}
                kept, marks = fresh(entry["marks"], routed.source, routed.offsets)
                if not kept:
                    continue
                counts[key] = {
                    "n": entry["n"] + len(kept),
                    "marks": marks,
                    "at": time.time(),
                    "by": WRITER,
                }
            except Exception as exc:
                await dead.send(event, STAGE, f"{type(exc).__name__}: {exc}")
                continue
            dirty.add(key)

    @counts.on_recover
    async def resend_recent() -> None:
        since = time.time() - RESEND_S
        dirty.update(k for k, entry in counts.items() if entry.get("at", 0.0) > since)

    @app.timer(settings.processors_emit_interval_s, name="emit_project_counts")  # type: ignore[untyped-decorator]
    async def emit() -> None:
        changed = list(dirty)
        dirty.clear()
        for encoded in changed:
            entry = counts.get(encoded)
            if entry is None:  # its partition moved on; the new owner sends it
                continue
            key = CountKey.decode(encoded)
            await out.send(
                key=str(key.project_id).encode(),
                value=orjson.dumps(snapshot(key, int(entry["n"]))),
            )
