"""Throughput of the stats + anomaly path in ONE worker (a bench, not a test).

``run(events, bootstrap)`` creates a private topic prefix on the broker, produces
``events`` pre-built events (half transactions over 20 routes, half metrics over 10
names), then starts one worker subprocess (``python -m stream_processors``, every agent
installed, as deployed) and reads ``derived.stats``. The worker consumes from the first
snapshot on: throughput is ``events / (at of the snapshot that completes the counts -
at of the first snapshot)``, both stamped by the worker, so start-up and group joining
are not counted; the figure is optimistic by at most one emit interval (0.25 s).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pulseline.records.stats import STATS
from pulseline.schemas import EventKind
from pulseline.settings import CommonSettings
from pulseline.topic_admin import create_topics
from pulseline.topics import INGEST

EMIT_INTERVAL_S = 0.25
TIMEOUT_S = 300.0
WORKER = [sys.executable, "-m", "stream_processors"]


def build_events(events: int) -> list[tuple[str, bytes, bytes]]:
    """``events`` (kind, key, value) records, alternating transactions and metrics."""
    rng = np.random.default_rng(0)
    durations = rng.lognormal(4.5, 0.6, events).tolist()
    now = datetime.now(UTC).isoformat()
    built = []
    for i, value in enumerate(durations):
        kind = "transaction" if i % 2 == 0 else "metric"
        name = f"/route/{i % 20}" if kind == "transaction" else f"gauge.{i % 10}"
        attrs = {"name": name, "duration_ms": value} if kind == "transaction" else {}
        attrs = attrs or {"name": name, "value": value}
        doc = {
            "schema_version": 1,
            "event_id": str(uuid.UUID(int=i)),
            "project_id": 1,
            "kind": kind,
            "timestamp": now,
            "received_at": now,
            "attributes": attrs,
        }
        built.append((kind, f"1:{i}".encode(), orjson.dumps(doc)))
    return built


async def _produce(bootstrap: str, prefix: str, records: list[tuple[str, bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    try:
        topics = {kind: INGEST[EventKind(kind)].physical(prefix) for kind, _, _ in records[:2]}
        for start in range(0, len(records), 5000):
            chunk = records[start : start + 5000]
            sent = [await producer.send(topics[k], value, key=key) for k, key, value in chunk]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _watch(
    bootstrap: str, topic: str, events: int, proc: subprocess.Popen[bytes]
) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    latest: dict[bytes, int] = {}
    first: float | None = None
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    doc = orjson.loads(record.value)
                    at = datetime.fromisoformat(doc["at"]).timestamp()
                    first = at if first is None else min(first, at)
                    latest[record.key] = max(latest.get(record.key, 0), doc["count"])
                    if sum(latest.values()) >= events:
                        elapsed = at - first
                        return {
                            "events": events,
                            "seconds": round(elapsed, 3),
                            "events_per_s": round(events / max(elapsed, EMIT_INTERVAL_S)),
                        }
    finally:
        await consumer.stop()
    raise RuntimeError(f"only {sum(latest.values())} of {events} events were counted")


def run(events: int, bootstrap: str, partitions: int = 2) -> dict[str, Any]:
    """Measure events/s of one worker's stats path over ``events`` events on ``bootstrap``."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    with tempfile.TemporaryDirectory() as data:
        env = {
            "PULSELINE_KAFKA_BOOTSTRAP": bootstrap,
            "PULSELINE_TOPIC_PREFIX": prefix,
            "PULSELINE_PARTITIONS": str(partitions),
            "PULSELINE_DATA_DIR": data,
            "PULSELINE_PROCESSORS_EMIT_INTERVAL_S": str(EMIT_INTERVAL_S),
            "PULSELINE_LOG_LEVEL": "WARNING",
        }
        asyncio.run(create_topics(CommonSettings.from_env(env)))
        asyncio.run(_produce(bootstrap, prefix, build_events(events)))
        proc = subprocess.Popen(
            WORKER,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            result = asyncio.run(_watch(bootstrap, STATS.physical(prefix), events, proc))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {**result, "partitions": partitions, "target_events_per_s": 30_000}


if __name__ == "__main__":
    print(run(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000, sys.argv[1]))
