"""The router: the one agent that reads the ingest topics.

ingest.* ──route──┬─► by_project      CountDelta per counter and source partition
                  ├─► stats_by_series SeriesPoints per series and source partition
                  ├─► errors_by_fingerprint   each error, keyed project:fingerprint
                  ├─► session_hits            pageviews and events, keyed project:visitor
                  └─► check_ins_by_monitor    check-ins, under their ingest key

Why one reader: Faust hands each message of a topic to every agent reading it and
commits it only when all of them acked it. On a rebalance it empties the agents' queues,
so a message one agent had started and another still had queued is never fully acked,
and the revoke waits for it forever (a worker joining hung this way). With one reader per
topic that cannot happen, and each event is decoded once instead of once per agent.

The router reads in batches (``take_events``) and sends one record per counter and per
series per batch, named by source partition and offsets, so the folds can skip what a
crashed worker routes a second time (``logic.replay_guard``). The stages' failures stay
apart: an event a stage cannot use is dead-lettered under that stage's name
(``route_by_project``, ``route_by_series``, ``group_errors``) and still reaches the others.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import faust
import orjson

from pulseline.records.issues import ERRORS_BY_FINGERPRINT, issue_key
from pulseline.records.monitors import CHECK_INS_BY_MONITOR
from pulseline.records.sessions import SESSION_HITS
from pulseline.records.stats import STATS_BY_SERIES
from pulseline.settings import ProcessorSettings
from pulseline.topics import INGEST, PROJECT_COUNTS_BY_PROJECT
from stream_processors.deadletter import DeadLetters
from stream_processors.in_order import InOrder
from stream_processors.logic.counts import count_key, delta
from stream_processors.logic.fingerprint import group
from stream_processors.logic.replay_guard import source_id
from stream_processors.logic.series import event_time, points

STAGE = "route"
BATCH = 2000
WITHIN_S = 0.25
VISITS = ("pageview", "event")


class Batch:
    """What one routed batch sends: counters and series per source partition."""

    def __init__(self) -> None:
        self.counts: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
        self.series: dict[tuple[str, str], tuple[list[float], list[float], list[str], list[int]]]
        self.series = {}

    def point(
        self, series: str, source: str, value: float, at: float, eid: str, offset: int
    ) -> None:
        values, ats, ids, offsets = self.series.setdefault((series, source), ([], [], [], []))
        values.append(value)
        ats.append(at)
        ids.append(eid)
        offsets.append(offset)


def install(app: faust.App, settings: ProcessorSettings, dead: DeadLetters) -> None:
    prefix = settings.topic_prefix

    def topic(name: str) -> Any:
        return app.topic(
            name, partitions=settings.partitions, key_serializer="raw", value_serializer="raw"
        )

    ingest = app.topic(
        *(spec.physical(prefix) for spec in INGEST.values()),
        key_serializer="raw",
        value_serializer="raw",
    )
    by_project = topic(PROJECT_COUNTS_BY_PROJECT.physical(prefix))
    by_series = topic(STATS_BY_SERIES.physical(prefix))
    by_fingerprint = topic(ERRORS_BY_FINGERPRINT.physical(prefix))
    hits = topic(SESSION_HITS.physical(prefix))
    check_ins = topic(CHECK_INS_BY_MONITOR.physical(prefix))

    async def one(event: Any, batch: Batch) -> None:
        message = event.message
        source, offset = source_id(message.topic, message.partition), message.offset
        try:
            doc = orjson.loads(message.value)
            if not isinstance(doc, dict):
                raise ValueError(f"an event is a JSON object, got {type(doc).__name__}")
        except Exception as exc:
            await dead.send(event, STAGE, f"{type(exc).__name__}: {exc}")
            return
        try:
            batch.counts[(count_key(doc).encode(), source)].append(offset)
        except Exception as exc:
            await dead.send(event, "route_by_project", f"{type(exc).__name__}: {exc}")
        try:
            found = points(doc)
            at = event_time(doc) if found else 0.0
            eid = str(doc["event_id"]) if found else ""
        except Exception as exc:
            await dead.send(event, "route_by_series", f"{type(exc).__name__}: {exc}")
        else:
            for series, value in found:
                batch.point(series.encode(), source, value, at, eid, offset)
        kind = doc.get("kind")
        if kind == "error":
            try:
                fingerprint = group(doc.get("attributes") or {}).hash
            except Exception as exc:
                await dead.send(event, "group_errors", f"{type(exc).__name__}: {exc}")
            else:
                await by_fingerprint.send(
                    key=issue_key(doc["project_id"], fingerprint), value=message.value
                )
        elif kind in VISITS:
            visitor = doc.get("distinct_id") or doc.get("session_id") or doc.get("event_id")
            await hits.send(key=f"{doc.get('project_id')}:{visitor}".encode(), value=message.value)
        elif kind == "check_in":
            await check_ins.send(key=message.key, value=message.value)

    @app.agent(ingest, name=STAGE)
    async def route(stream: Any) -> None:
        in_order = InOrder(app, STAGE)
        async for events in stream.take_events(BATCH, within=WITHIN_S):
            batch = Batch()
            for event in await in_order.admitted(events):
                await one(event, batch)
            for (counter, source), offsets in batch.counts.items():
                project = counter.split("|", 1)[0]
                value = orjson.dumps(delta(counter, source, offsets))
                await by_project.send(key=project.encode(), value=value)
            for (series, source), (values, ats, ids, offsets) in batch.series.items():
                routed = {
                    "series": series,
                    "source": source,
                    "values": values,
                    "ats": ats,
                    "event_ids": ids,
                    "offsets": offsets,
                }
                await by_series.send(key=series.encode(), value=orjson.dumps(routed))
