"""Small helpers for integration tests: produce, consume and wait, against real Kafka."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pulseline.ports import free_port


def stamped(kind: str = "event", project_id: int = 1, **over: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    doc: dict[str, Any] = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "project_id": project_id,
        "kind": kind,
        "timestamp": now,
        "received_at": now,
        "distinct_id": "visitor-1",
        "attributes": {},
    }
    doc.update(over)
    return doc


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=b"1") for v in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(
    bootstrap: str, topic: str, *, expect: int, timeout_s: float = 20
) -> list[Any]:
    """Read ``topic`` from the start until ``expect`` records arrived (or time runs out)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for items in batch.values():
                records.extend(items)
    finally:
        await consumer.stop()
    return records


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 20, every_s: float = 0.2
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every_s)
    return await check()


def dumps(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """A real processors worker (``python -m stream_processors``), logging to ``log_path``."""
    settings = {
        "PULSELINE_PROCESSORS_EMIT_INTERVAL_S": "0.3",
        "PULSELINE_PROCESSORS_WEB_PORT": str(free_port()),
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "stream_processors"],
            env={**os.environ, **env, **settings},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving(app: Any, start_timeout_s: float = 30) -> Iterator[int]:
    """``app`` under uvicorn on a free 127.0.0.1 port, in a thread; yields the port."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, f"uvicorn did not start in {start_timeout_s:g}s"
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def latest_project_counts(bootstrap: str, prefix: str) -> dict[tuple[int, str], int]:
    """Events counted per (project, kind) on derived.project_counts: the largest count sent
    per counter (project, kind, minute), summed over the minutes."""
    from pulseline.topics import PROJECT_COUNTS

    latest: dict[tuple[int, str, str], int] = {}
    for record in await consume_all(
        bootstrap, PROJECT_COUNTS.physical(prefix), expect=10**6, timeout_s=1.5
    ):
        doc = orjson.loads(record.value)
        key = (doc["project_id"], doc["kind"], doc["minute"])
        latest[key] = max(latest.get(key, 0), doc["count"])
    totals: dict[tuple[int, str], int] = {}
    for (project, kind, _), count in latest.items():
        totals[(project, kind)] = totals.get((project, kind), 0) + count
    return totals
