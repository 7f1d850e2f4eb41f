"""Throughput of the storage sink into embedded ClickHouse (a bench, not a test).

``run(rows, bootstrap)`` produces ``rows`` stamped events (every family, shaped as the
gateway writes them, zstd-compressed) to the ingest topics of a private prefix, then
starts one ``Sink`` on a fresh chdb directory and lets it drain that backlog. The
figures, so the bottleneck shows:

- ``end_to_end``: rows / (first polled record -> last offset commit), the sink as deployed;
- ``poll_only``: the sink's consumer reading the same backlog, nothing else;
- ``decode_only``: the same records decoded into batches in this process, no Kafka;
- ``insert_only``: those batches inserted (same call, same token) into a second database,
  with ``engine_seconds``, the part the engine itself reports (the rest is the driver's
  Python); the engine's rate is a ceiling no sink change can pass.

Each step also gives the CPU seconds of this process (every thread), steadier than the
wall clock on a busy machine; the load average before and after says how busy it was.
It raises unless ``count()`` and ``uniqExact(event_id)`` of ``events`` both equal ``rows``.
``python -m storage.bench_sink [ROWS [OUT.json]]`` starts a private broker and prints the JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from pulseline.schemas import EventKind
from pulseline.settings import StorageSettings
from pulseline.topic_admin import create_topics
from pulseline.topics import INGEST
from storage.batch import Batch
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.rows import TABLES
from storage.sink import Sink, add_records, insert_batch

TARGET_ROWS_PER_S = 150_000
TIMEOUT_S = 150.0
REQUEST_EVENTS = 100
Record = tuple[str, bytes, bytes]  # (topic, key, value)

_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "pageview": {"url": "https://shop.example/p/42?utm_source=news", "title": "Product"},
    "event": {"name": "click", "properties": {"selector": "button.buy", "text": "Buy"}},
    "transaction": {"name": "GET /api/items", "method": "GET", "status": "ok", "duration_ms": 0},
    "web_vital": {"name": "LCP", "value": 0, "rating": "good", "path": "/p/42"},
    "metric": {"name": "pg.connections", "value": 0, "type": "gauge", "tags": {"db": "main"}},
    "error": {
        "message": "boom",
        "level": "error",
        "exception": [
            {
                "type": "ValueError",
                "value": "bad input",
                "stacktrace": {
                    "frames": [
                        {"filename": "app.py", "function": "handle", "lineno": 10, "in_app": True}
                    ]
                },
            }
        ],
    },
    "check_in": {"monitor": "nightly", "status": "ok", "duration_ms": 0, "output_size": 1024},
}
_NUMERIC = {"transaction": "duration_ms", "web_vital": "value", "metric": "value"}
_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"
_PLUS_TWO = timezone(timedelta(hours=2))


def rate(rows: int, seconds: float) -> float:
    """Rows per second, rounded; a span too short to measure counts as one millisecond."""
    return round(rows / max(seconds, 1e-3), 1)


def build_records(rows: int, prefix: str, seed: int = 0) -> list[Record]:
    """``rows`` events as the gateway stamps them: the families take turns, and each
    request of ``REQUEST_EVENTS`` shares its ``received_at``, as one request's events do."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 2**63, size=(rows, 2), dtype=np.int64).tolist()
    values = rng.lognormal(4.5, 0.6, rows).round(2).tolist()
    kinds = list(_ATTRIBUTES)
    topics = {k: INGEST[EventKind(k)].physical(prefix) for k in kinds}
    start = datetime.now(UTC) - timedelta(hours=2)
    out: list[Record] = []
    for i in range(rows):
        kind = kinds[i % len(kinds)]
        attributes = dict(_ATTRIBUTES[kind])
        if kind in _NUMERIC:
            attributes[_NUMERIC[kind]] = values[i]
        received = start + timedelta(milliseconds=(i // REQUEST_EVENTS) * 700)
        sent = (received - timedelta(milliseconds=i % 900)).replace(microsecond=0)
        sent += timedelta(milliseconds=i % 1000)  # a browser's clock: milliseconds
        # Most clients send their own time, in UTC or now and then in their zone.
        zoned = sent.astimezone(_PLUS_TWO)
        timestamp = received if i % 10 == 0 else zoned if i % 10 == 1 else sent
        event_id = str(uuid.UUID(int=(ids[i][0] << 64 | ids[i][1]) & (2**128 - 1), version=4))
        visitor = f"v-{i % 5000}"
        doc = {
            "schema_version": 1,
            "event_id": event_id,
            "project_id": 1 + i % 3,
            "kind": kind,
            "timestamp": timestamp,
            "received_at": received,
            "distinct_id": visitor,
            "session_id": f"s-{i % 20000}" if kind in ("pageview", "event") else None,
            "release": "web@1.4.2",
            "environment": "production",
            "client_ip": f"203.0.113.{i % 250}",
            "user_agent": _AGENT,
            "attributes": attributes,
        }
        key = f"{doc['project_id']}:{event_id if kind == 'error' else visitor}".encode()
        out.append((topics[kind], key, orjson.dumps(doc, option=orjson.OPT_UTC_Z)))
    return out


async def _produce(bootstrap: str, records: list[Record]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type="zstd",
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        for start in range(0, len(records), 10_000):
            sent = [await producer.send(t, v, key=k) for t, k, v in records[start : start + 10_000]]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


class _Watch:
    """When the sink first got records, when its commits covered every row, and how long
    it waited on ``getmany`` in between."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.committed: dict[TopicPartition, int] = {}
        self.first: float | None = None
        self.last: float | None = None
        self.polling = 0.0
        self.done = asyncio.Event()

    def poll(self, getmany: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            polled = await getmany(*args, **kwargs)
            if self.first is not None and self.last is None:
                self.polling += time.perf_counter() - started
            if polled and self.first is None:
                self.first = time.perf_counter()
            return polled

        return timed

    def commit(self, commit: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def timed(offsets: dict[TopicPartition, int]) -> None:
            await commit(offsets)
            self.committed.update(offsets)
            if sum(self.committed.values()) >= self.rows:
                self.last = time.perf_counter()
                self.done.set()

        return timed


async def _drain(settings: StorageSettings, engine: Engine, rows: int) -> dict[str, Any]:
    sink = Sink(settings, engine, StorageMetrics())
    watch = _Watch(rows)
    setattr(sink.consumer, "getmany", watch.poll(sink.consumer.getmany))  # noqa: B010
    setattr(sink.consumer, "commit", watch.commit(sink.consumer.commit))  # noqa: B010
    await sink.start()
    cpu = _cpu_seconds()
    task = asyncio.create_task(sink.run())
    try:
        await asyncio.wait_for(watch.done.wait(), TIMEOUT_S)
    finally:
        await sink.stop()
        await task
        await sink.close()
    if watch.first is None or watch.last is None:
        raise RuntimeError("the sink never committed every row")
    seconds = watch.last - watch.first
    insert_s = sink.metrics.insert_seconds.labels("events")._sum.get()
    return {
        "rows_per_s": rate(rows, seconds),
        "seconds": round(seconds, 3),
        "inserts": sink.inserts,
        "insert_seconds": round(insert_s, 3),
        "waiting_on_kafka_seconds": round(watch.polling, 3),
        "process_cpu_seconds": round(_cpu_seconds() - cpu, 3),
    }


def _cpu_seconds() -> float:
    """CPU time of this process, every thread (the embedded engine's too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _poll_only(settings: StorageSettings, engine: Engine, rows: int) -> dict[str, Any]:
    """The sink's consumer alone, from the start of the backlog under a group of its own."""
    group = settings.sink_group + "-poll"
    consumer = Sink(settings.model_copy(update={"sink_group": group}), engine, StorageMetrics())
    await consumer.consumer.start()
    seen, first = 0, None
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while seen < rows and time.monotonic() < deadline:
            polled = await consumer.consumer.getmany(
                timeout_ms=200, max_records=settings.sink_batch_rows
            )
            if polled and first is None:
                first = time.perf_counter()
            seen += sum(len(records) for records in polled.values())
    finally:
        await consumer.close()
    if seen < rows or first is None:
        raise RuntimeError(f"polled only {seen} of {rows} records")
    seconds = time.perf_counter() - first
    return {"rows_per_s": rate(rows, seconds), "seconds": round(seconds, 3)}


class _Polled(NamedTuple):
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class _Step:
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def figures(self, rows: int) -> dict[str, Any]:
        return {
            "rows_per_s": rate(rows, self.seconds),
            "seconds": round(self.seconds, 3),
            "process_cpu_seconds": round(self.cpu_seconds, 3),
        }


def _decode_then_insert(
    engine: Engine, records: list[Record], prefix: str, batch_rows: int
) -> tuple[_Step, _Step, float]:
    """What the sink does with each ``batch_rows`` records, without Kafka and one step at a
    time: decoding, inserting, and the seconds the engine itself reports for the inserts."""
    tables = {spec.physical(prefix): table for spec, table in TABLES.items()}
    decoding, inserting, engine_s = _Step(), _Step(), 0.0
    for start in range(0, len(records), batch_rows):
        polled: dict[str, list[_Polled]] = {}
        for offset, (topic, key, value) in enumerate(records[start : start + batch_rows], start):
            polled.setdefault(topic, []).append(_Polled(offset, key, value))
        batch = Batch()
        started, cpu = time.perf_counter(), _cpu_seconds()
        for topic, chunk in polled.items():
            add_records(batch, tables[topic], topic, 0, chunk)
        decoding.seconds += time.perf_counter() - started
        decoding.cpu_seconds += _cpu_seconds() - cpu
        started, cpu = time.perf_counter(), _cpu_seconds()
        for tb in batch.tables.values():
            summary = insert_batch(engine, tb, {"insert_deduplication_token": tb.token()})
            engine_s += int(summary.summary.get("elapsed_ns", 0)) / 1e9
        inserting.seconds += time.perf_counter() - started
        inserting.cpu_seconds += _cpu_seconds() - cpu
    return decoding, inserting, engine_s


def _check(engine: Engine, rows: int) -> None:
    count, unique = engine.call(
        engine.client.query, f"SELECT count(), uniqExact(event_id) FROM {engine.database}.events"
    ).result_rows[0]
    if count != rows or unique != rows:
        raise RuntimeError(
            f"{engine.database}.events holds {count} rows, {unique} ids; sent {rows}"
        )


def run(rows: int, bootstrap: str) -> dict[str, Any]:
    """Measure the sink draining ``rows`` events from ``bootstrap`` into a fresh chdb."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="pulseline-sinkbench-") as data:
        env = {
            "PULSELINE_KAFKA_BOOTSTRAP": bootstrap,
            "PULSELINE_TOPIC_PREFIX": prefix,
            "PULSELINE_DATA_DIR": data,
            "PULSELINE_CLICKHOUSE_URL": f"chdb://{data}/clickhouse",
            "PULSELINE_CLICKHOUSE_DATABASE": "bench",
            "PULSELINE_SINK_GROUP": f"{prefix}sink",
        }
        settings = StorageSettings.from_env(env)
        asyncio.run(create_topics(settings))
        records = build_records(rows, prefix)
        started = time.perf_counter()
        asyncio.run(_produce(bootstrap, records))
        produce_s = time.perf_counter() - started

        engine = Engine.open(settings)
        try:
            migrate(engine)
            end_to_end = asyncio.run(_drain(settings, engine, rows))
            _check(engine, rows)
            poll_only = asyncio.run(_poll_only(settings, engine, rows))

            solo = Engine(engine.client, embedded=True, database="bench_insert")
            migrate(solo)
            decoding, inserting, engine_s = _decode_then_insert(
                solo, records, prefix, settings.sink_batch_rows
            )
            _check(solo, rows)
        finally:
            engine.close()
    return {
        "rows": rows,
        "batch_rows": settings.sink_batch_rows,
        "partitions": settings.partitions,
        "bytes_per_row": round(sum(len(v) for _, _, v in records) / rows, 1),
        "end_to_end": end_to_end,
        "poll_only": poll_only,
        "decode_only": decoding.figures(rows),
        "insert_only": {
            **inserting.figures(rows),
            "engine_seconds": round(engine_s, 3),
            "engine_rows_per_s": rate(rows, engine_s),
        },
        "produce_seconds": round(produce_s, 3),
        "cpus": os.cpu_count(),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "target_rows_per_s": TARGET_ROWS_PER_S,
    }


def main(argv: list[str]) -> int:
    from pulseline.bench_gateway import private_kafka

    rows = int(argv[0]) if argv else 500_000
    with private_kafka("pulseline-sinkbench-") as env:
        bootstrap = StorageSettings.from_env(env).bootstrap
        figures = run(rows, bootstrap)
    text = json.dumps(figures, indent=2)
    print(text)
    if len(argv) > 1:
        Path(argv[1]).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
