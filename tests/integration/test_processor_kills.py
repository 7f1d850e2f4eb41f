"""A processors worker killed with SIGKILL three times mid-stream: nothing lost, nothing
counted twice, and the running statistics agree with a recomputation from ClickHouse.

One worker subprocess at a time (``python -m stream_processors``) against the suite's
broker; the real sink stores the ingest and derived topics into embedded ClickHouse on a
thread of its own (``LiveSink``, background merges of the checked tables stopped, so only
the read folds copies). A producer streams metric and transaction events of three series
(values from a seeded rng, timestamps the send time, keyed by event id so both partitions
of each ingest topic carry every series) at a steady rate, pausing only while the backlog
(acked minus folded) is over ``MAX_BACKLOG``, the way traffic piles up during an outage.

Three times: once the worker has caught up what was produced before it started and folded
``KILL_AFTER`` events more, it gets SIGKILL (no commit, no flush), while the stream goes
on; a new worker starts at once. The dead member keeps its partitions until its group
session times out, so the workers run with a short session (``SESSION_TIMEOUT_S``): the
same rebalance, sooner. After the last event the snapshots must reach the totals. Then:

1. per series, ``count``/``avg``/``stddevSampStable``/``min``/``max`` over the stored
   events (``FINAL`` and ``LIMIT 1 BY event_id``, as the read API reads them) against the
   newest snapshot, on ``derived.stats`` and in ``stats_snapshots FINAL``: counts and
   extremes exact, mean and stddev within ``REL_TOL`` (see there), the median and p95 of
   the sketch within its 1% of the exact lower quantiles;
2. every produced event id is one row under ``FINAL``; the largest snapshot count ever
   sent per series is the total (no double count shows up later); ``derived.project_counts``
   (largest per key) and ``project_counts FINAL`` sum to the events sent, per kind.

Run with ``-s`` to see the ``PROCKILL`` figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pulseline.records.stats import STATS
from pulseline.schemas import EventKind
from pulseline.settings import ProcessorSettings, StorageSettings
from pulseline.topics import DEAD_LETTERS, INGEST, PROJECT_COUNTS
from storage.client import Engine
from tests.helpers import (
    consume_all,
    eventually,
    latest_project_counts,
    start_worker,
    stop_worker,
)
from tests.integration.count_forensics import count_forensics
from tests.integration.test_processors_stats import latest_snapshots
from tests.live_sink import LiveSink, live_storage

pytestmark = [
    pytest.mark.faults,
    pytest.mark.integration,
    pytest.mark.timeout(300),
]

PROJECT = 7
PER_SERIES = 4_000
SERIES = ("7|metric|queue.depth", "7|metric|cpu.load", "7|transaction|/checkout")
TOTAL = PER_SERIES * len(SERIES)
KILLS = 3
RATE = 1_000  # events per second while the backlog allows
BATCH = 100  # events per producer round trip
MAX_BACKLOG = 1_500  # the producer waits while this many acked events are not yet folded
KILL_AFTER = 1_000  # folded by a worker beyond what was produced when it started
# The killed member holds its partitions until the broker misses its heartbeats for a
# session: 60 s by default (3 kills = 3 min of waiting). Faust reads these from the env.
SESSION_TIMEOUT_S = 10
WORKER_ENV = {"BROKER_SESSION_TIMEOUT": str(SESSION_TIMEOUT_S), "BROKER_HEARTBEAT_INTERVAL": "1"}
READY_S = 90  # per worker: start, join (after the dead member's session), recover
FINAL_S = 150  # the last worker: catch up everything
SKETCH_ALPHA = 0.01  # the DDSketch's relative accuracy (logic.quantiles)

# Mean and stddev: the worker folds float64 batches (numpy two-pass per batch, shifted by
# the series' first value) and merges them with Chan's formula; ClickHouse sums for avg
# and runs Welford per block, then Chan's merge, for stddevSampStable. Neither loses more
# than a few digits even on ``queue.depth`` (1e6 +- 25). Measured against an exactly
# rounded two-pass reference (math.fsum): snapshots < 1e-15; ClickHouse 1e-13..2e-12 on
# queue.depth (Welford on the uncentred values, varying with how the inserts fell into
# parts), < 1e-14 on the others. 1e-9 leaves three orders of magnitude of room; a lost or
# doubled value shows in the exact count anyway, and one value off by its own size moves
# the stddev by ~1/(2n) ~ 1e-4 relative (the mean of queue.depth by ~1e-8). The naive
# ``stddevSamp`` (E[x^2] - E[x]^2) is not comparable: ~2e-6 off on queue.depth (printed
# as clickhouse_naive_stddev).
REL_TOL = 1e-9


def values_of(series: str, rng: np.random.Generator) -> list[float]:
    if series.endswith("queue.depth"):  # a large offset: where naive variance loses digits
        return [float(v) for v in 1e6 + rng.normal(0.0, 25.0, PER_SERIES)]
    if series.endswith("cpu.load"):  # skewed, positive, spans decades
        return [float(v) for v in rng.lognormal(0.0, 1.0, PER_SERIES)]
    # request durations in ms, under the 5 s slow-request threshold: no incident traffic
    return [float(v) for v in np.minimum(rng.gamma(2.0, 150.0, PER_SERIES), 4_500.0)]


@dataclass(frozen=True)
class Planned:
    """One event to send: its series, value and id."""

    series: str
    value: float
    event_id: str

    def doc(self) -> tuple[EventKind, bytes]:
        _, family, name = self.series.split("|", 2)
        now = datetime.now(UTC).isoformat()
        if family == "metric":
            kind, attributes = EventKind.METRIC, {"name": name, "value": self.value}
        else:
            kind, attributes = EventKind.TRANSACTION, {"route": name, "duration_ms": self.value}
        doc = {
            "schema_version": 1,
            "event_id": self.event_id,
            "project_id": PROJECT,
            "kind": kind.value,
            "timestamp": now,
            "received_at": now,
            "distinct_id": "visitor-1",
            "attributes": attributes,
        }
        return kind, orjson.dumps(doc)


def plan(seed: int = 20_240) -> tuple[list[Planned], dict[str, list[float]]]:
    rng = np.random.default_rng(seed)
    values = {series: values_of(series, rng) for series in SERIES}
    order = rng.permutation(np.repeat(np.arange(len(SERIES)), PER_SERIES))
    taken = dict.fromkeys(SERIES, 0)
    events = []
    for index in order:
        series = SERIES[int(index)]
        value = values[series][taken[series]]
        taken[series] += 1
        events.append(Planned(series, value, str(uuid.UUID(bytes=rng.bytes(16), version=4))))
    return events, values


@dataclass
class Tracker:
    """``derived.stats`` as it arrives: the snapshot with the largest count per series."""

    bootstrap: str
    topic: str
    top: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: int = 0

    def folded(self) -> int:
        return sum(int(self.top.get(s, {}).get("count", 0)) for s in SERIES)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            while True:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    for record in records:
                        self.records += 1
                        doc = orjson.loads(record.value)
                        series = record.key.decode()
                        if doc["version"] >= self.top.get(series, {"version": -1})["version"]:
                            self.top[series] = doc
        finally:
            await consumer.stop()


@dataclass
class Stream:
    """Sends the planned events at ``RATE``, holding back while the backlog is full."""

    bootstrap: str
    prefix: str
    events: list[Planned]
    tracker: Tracker
    acked: int = 0
    held_s: float = 0.0

    async def run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            while self.acked < len(self.events):
                if self.acked - self.tracker.folded() >= MAX_BACKLOG:
                    self.held_s += 0.05
                    await asyncio.sleep(0.05)
                    continue
                began = time.monotonic()
                futures = []
                for planned in self.events[self.acked : self.acked + BATCH]:
                    kind, value = planned.doc()
                    topic = INGEST[kind].physical(self.prefix)
                    key = planned.event_id.encode()
                    futures.append(await producer.send(topic, value, key=key))
                await asyncio.gather(*futures)
                self.acked += len(futures)
                await asyncio.sleep(max(0.0, len(futures) / RATE - (time.monotonic() - began)))
        finally:
            await producer.stop()


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    spawned: float
    produced_at_spawn: int
    folded_at_spawn: int
    ready_s: float | None = None
    caught_up_s: float | None = None

    def watch(self, folded: int) -> None:
        now = time.monotonic()
        if self.ready_s is None and "[^Worker]: Ready" in self.log.read_text(errors="replace"):
            self.ready_s = round(now - self.spawned, 2)
        if self.caught_up_s is None and self.produced_at_spawn and folded >= self.produced_at_spawn:
            self.caught_up_s = round(now - self.spawned, 2)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-25:])


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    """The end offset of every partition of ``topics`` as of now."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:

        async def assigned() -> bool:  # without a group, every partition is assigned
            return {tp.topic for tp in consumer.assignment()} == set(topics)

        assert await eventually(assigned, timeout_s=10, every_s=0.05)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(sorted(consumer.assignment()))
        return ends
    finally:
        await consumer.stop()


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def reference(values: list[float]) -> tuple[float, float]:
    """Mean and sample stddev, each to about one rounding (fsum, corrected two-pass)."""
    n = len(values)
    mean = math.fsum(values) / n
    deviations = [v - mean for v in values]
    m2 = math.fsum(d * d for d in deviations) - math.fsum(deviations) ** 2 / n
    return mean, math.sqrt(m2 / (n - 1))


def test_a_worker_killed_three_times_mid_stream_loses_nothing_and_counts_nothing_twice(
    storage_env: dict[str, str], tmp_path: Path
) -> None:
    began = time.monotonic()
    settings = StorageSettings.from_env(storage_env)
    unmerged = ("events", "stats_snapshots", "project_counts")
    with live_storage(settings, unmerged) as (engine, live):
        run_and_check(storage_env, settings, engine, live, tmp_path, began)


def run_and_check(
    storage_env: dict[str, str],
    settings: StorageSettings,
    engine: Engine,
    live: LiveSink,
    tmp_path: Path,
    began: float,
) -> None:
    processors = ProcessorSettings.from_env(storage_env)
    prefix, bootstrap = processors.topic_prefix, processors.bootstrap
    worker_env = {**storage_env, **WORKER_ENV}
    events, values = plan()
    sent_ids = [e.event_id for e in events]
    per_kind = Counter(e.series.split("|")[1] for e in events)
    tracker = Tracker(bootstrap, STATS.physical(prefix))
    stream = Stream(bootstrap, prefix, events, tracker)
    kills: list[dict[str, Any]] = []
    last: dict[str, Any] = {}  # the worker left running: ready and caught up with everything
    workers: list[Worker] = []

    def spawn() -> Worker:
        n = len(workers)
        worker = Worker(
            start_worker(worker_env, tmp_path / f"worker-{n}.log"),
            tmp_path / f"worker-{n}.log",
            time.monotonic(),
            stream.acked,
            tracker.folded(),
        )
        workers.append(worker)
        return worker

    async def until(worker: Worker, done: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            worker.watch(tracker.folded())
            assert worker.proc.poll() is None, f"worker {len(workers) - 1} died:\n{worker.tail()}"
            assert time.monotonic() < deadline, (
                f"{what}: folded {tracker.folded()}, produced {stream.acked}, "
                f"snapshots {tracker.top}\n{worker.tail()}"
            )
            await asyncio.sleep(0.02)
        worker.watch(tracker.folded())

    async def scenario() -> tuple[dict[str, dict[str, Any]], dict[tuple[int, str], int]]:
        tracking = asyncio.create_task(tracker.run())
        streaming = asyncio.create_task(stream.run())
        worker = spawn()
        try:
            for k in range(KILLS):
                target = worker.produced_at_spawn + KILL_AFTER
                assert target < TOTAL - BATCH, f"too few events left for kill {k + 1}"

                def mid_stream(target: int = target) -> bool:
                    # Past the target, and a producer round trip's worth not yet folded.
                    folded = tracker.folded()
                    return folded >= target and stream.acked - folded >= BATCH

                await until(worker, mid_stream, READY_S, f"kill {k + 1}")
                folded, produced = tracker.folded(), stream.acked
                worker.proc.kill()  # SIGKILL: no commit, no flush, no goodbye
                worker.proc.wait()
                kills.append(
                    {
                        "kill": k + 1,
                        "worker_ran_s": round(time.monotonic() - worker.spawned, 2),
                        "ready_s": worker.ready_s,
                        "caught_up_s": worker.caught_up_s,
                        "folded_before": worker.folded_at_spawn,
                        "folded_at_kill": folded,
                        "produced_at_kill": produced,
                    }
                )
                # Mid-stream: this worker folded some events, and not all that were there.
                assert worker.folded_at_spawn < folded < produced, kills[-1]
                worker = spawn()
            await until(worker, streaming.done, FINAL_S, "the stream's last events")
            await streaming
            # The killed members may hold partitions until their sessions time out.
            await until(
                worker,
                lambda: (
                    all(tracker.top.get(s, {}).get("count") == PER_SERIES for s in SERIES)
                    or any(tracker.top.get(s, {}).get("count", 0) > PER_SERIES for s in SERIES)
                ),
                FINAL_S,
                "the last worker catching up",
            )
            last.update(
                {
                    "worker": len(workers) - 1,
                    "ready_s": worker.ready_s,
                    "caught_up_total_s": round(time.monotonic() - worker.spawned, 2),
                    "folded_before": worker.folded_at_spawn,
                    "produced_at_spawn": worker.produced_at_spawn,
                }
            )
            await asyncio.sleep(3)  # a double count would show as a later, larger snapshot
            latest = await latest_snapshots(processors)
            counts = await latest_project_counts(bootstrap, prefix)
            deadline = time.monotonic() + 30
            while sum(counts.values()) < TOTAL and time.monotonic() < deadline:
                counts = await latest_project_counts(bootstrap, prefix)
        finally:
            stop_worker(worker.proc)
            for task in (streaming, tracking):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return latest, counts

    latest, counts = asyncio.run(scenario())
    topic_counts = {kind: counts.get((PROJECT, kind), 0) for kind in per_kind}
    ever = {s: int(tracker.top[s]["count"]) for s in SERIES}
    if topic_counts != dict(per_kind):
        forensics = asyncio.run(count_forensics(bootstrap, prefix))
    else:
        forensics = ""

    # Let the sink store everything the topics hold now (the worker has stopped).
    topics = [
        INGEST[EventKind.METRIC].physical(prefix),
        INGEST[EventKind.TRANSACTION].physical(prefix),
        STATS.physical(prefix),
        PROJECT_COUNTS.physical(prefix),
    ]
    live.ends = asyncio.run(end_offsets(bootstrap, topics))
    assert live.caught_up.wait(60), "the sink did not catch up"
    assert live.error is None, live.error
    live.stop.set()
    live.thread.join(30)

    dead = asyncio.run(
        consume_all(bootstrap, DEAD_LETTERS.physical(prefix), expect=10**6, timeout_s=2)
    )
    stored = asyncio.run(query_stored(engine, engine.database))

    figures: dict[str, Any] = {
        "events": TOTAL,
        "per_series": PER_SERIES,
        "session_timeout_s": SESSION_TIMEOUT_S,
        "kills": kills,
        "last_worker": last,
        "producer_held_s": round(stream.held_s, 1),
        "snapshot_records": tracker.records,
        "stored_rows_raw": stored["raw"],
        "stored_ids_final": len(stored["ids"]),
        "stored_snapshot_rows_raw": stored["snapshot_rows"],
        "project_counts_topic": topic_counts,
        "project_counts_table": stored["counts"],
        "dead_letters": len(dead),
        "series": {},
    }
    worst = 0.0
    for series in SERIES:
        ch, snap, row = stored["series"][series], latest[series], stored["snapshots"][series]
        ref_mean, ref_sd = reference(values[series])
        errors = {
            "mean": rel(snap["mean"], ch["mean"]),
            "stddev": rel(snap["stddev"], ch["stddev"]),
            "table_mean": rel(row["mean"], ch["mean"]),
            "table_stddev": rel(row["stddev"], ch["stddev"]),
        }
        worst = max(worst, *errors.values())
        figures["series"][series] = {
            "count": [snap["count"], ch["n"], row["count"]],
            "mean": [snap["mean"], ch["mean"], row["mean"]],
            "stddev": [snap["stddev"], ch["stddev"], row["stddev"]],
            "rel_err": {k: float(f"{v:.3g}") for k, v in errors.items()},
            "vs_exact": {
                "snapshot_mean": float(f"{rel(snap['mean'], ref_mean):.3g}"),
                "snapshot_stddev": float(f"{rel(snap['stddev'], ref_sd):.3g}"),
                "clickhouse_mean": float(f"{rel(ch['mean'], ref_mean):.3g}"),
                "clickhouse_stddev": float(f"{rel(ch['stddev'], ref_sd):.3g}"),
                "clickhouse_naive_stddev": float(f"{rel(ch['stddev_naive'], ref_sd):.3g}"),
            },
        }
    figures["max_rel_err"] = float(f"{worst:.3g}")
    figures["wall_s"] = round(time.monotonic() - began, 1)
    print(f"\nPROCKILL {json.dumps(figures)}")

    # Nothing lost, nothing stored twice: every id sent is one row under FINAL.
    assert set(stored["ids"]) == set(sent_ids)
    assert [i for i, n in stored["ids"].items() if n != 1] == []
    assert dead == []
    # Nothing counted twice or short: no snapshot ever passed the total.
    assert ever == dict.fromkeys(SERIES, PER_SERIES), ever
    for series in SERIES:
        ch, snap, row = stored["series"][series], latest[series], stored["snapshots"][series]
        assert sorted(ch["values"]) == sorted(values[series]), f"{series}: stored values differ"
        for doc in (snap, row):
            assert doc["count"] == ch["n"] == PER_SERIES, (series, doc)
            assert doc["min"] == ch["min"] and doc["max"] == ch["max"], (series, doc, ch)
            assert doc["mean"] == pytest.approx(ch["mean"], rel=REL_TOL, abs=0), series
            assert doc["stddev"] == pytest.approx(ch["stddev"], rel=REL_TOL, abs=0), series
        ordered = sorted(ch["values"])
        for q, name in ((0.5, "p50"), (0.95, "p95")):
            exact = ordered[math.floor(q * (len(ordered) - 1))]
            assert rel(snap[name], exact) <= SKETCH_ALPHA + 1e-12, (series, name, exact, snap)
    # Counted once each: the project counters hold exactly the events sent, per kind.
    assert topic_counts == dict(per_kind), f"{topic_counts} != {dict(per_kind)}\n{forensics}"
    assert stored["counts"] == dict(per_kind), stored["counts"]


async def query_stored(engine: Engine, db: str) -> dict[str, Any]:
    params = {"project": PROJECT}
    where = "WHERE project_id = {project:UInt32}"
    raw = await engine.rows(f"SELECT count() AS n FROM {db}.events {where}", params)
    ids = await engine.rows(
        f"SELECT toString(event_id) AS id, count() AS n FROM {db}.events FINAL {where} GROUP BY id",
        params,
    )
    # The value where the processors read it: attributes.value (metric) or
    # attributes.duration_ms (transaction); the series name from name or route.
    recomputed = await engine.rows(
        "SELECT series, count() AS n, avg(v) AS mean, stddevSampStable(v) AS stddev, "
        "stddevSamp(v) AS stddev_naive, min(v) AS min, max(v) AS max, groupArray(v) AS values "
        "FROM (SELECT concat(toString(project_id), '|', kind, '|', if(kind = 'metric', "
        "JSONExtractString(attributes, 'name'), JSONExtractString(attributes, 'route'))) "
        "AS series, if(kind = 'metric', JSONExtractFloat(attributes, 'value'), "
        "JSONExtractFloat(attributes, 'duration_ms')) AS v "
        f"FROM {db}.events FINAL {where} AND kind IN ('metric', 'transaction') "
        "LIMIT 1 BY event_id) GROUP BY series",
        params,
    )
    snapshots = await engine.rows(
        "SELECT concat(toString(project_id), '|', family, '|', name) AS series, count, mean, "
        f"stddev, min, max, version FROM {db}.stats_snapshots FINAL {where}",
        params,
    )
    snapshot_rows = await engine.rows(
        f"SELECT count() AS n FROM {db}.stats_snapshots {where}", params
    )
    counts = await engine.rows(
        f"SELECT kind, sum(count) AS n FROM (SELECT kind, count FROM {db}.project_counts "
        f"FINAL {where}) GROUP BY kind",
        params,
    )
    return {
        "raw": int(raw[0]["n"]),
        "ids": Counter({str(r["id"]): int(r["n"]) for r in ids}),
        "series": {str(r["series"]): r for r in recomputed},
        "snapshots": {str(r["series"]): r for r in snapshots},
        "snapshot_rows": int(snapshot_rows[0]["n"]),
        "counts": {str(r["kind"]): int(r["n"]) for r in counts},
    }
