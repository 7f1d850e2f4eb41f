"""Fault tests of the sink: a crash between the insert and the commit, and poison records.

Each test prints one line starting with ``FAULTS`` with its figures (run with ``-s``).

Crash tests (``python -m storage`` as a subprocess, its own chdb directory):

* 4,000 events on one partition, batches of exactly 500 rows (every flush is a full one:
  the flush interval is 60 s), and ``PULSELINE_SINK_CRASH_AFTER_INSERT=3``: the process
  exits hard (``os._exit``, nothing cleaned up, as after ``kill -9``) right after its third
  insert, before that batch's offsets are committed. A fresh process in the same consumer
  group re-reads offsets 1,000-1,499 and inserts them again, then the rest.
* Background merges of ``events`` are held off (``max_bytes_to_merge_at_max_space_in_pool
  = 1``, set before the sink starts), otherwise the ReplacingMergeTree collapses copies
  within a second and a raw read could not tell whether the replay wrote them twice.
* *visible* is what the read API shows: ``storage.queries.EventQuery``'s SQL (``FINAL`` and
  ``LIMIT 1 BY event_id``). *physical* is the same SQL with ``FINAL`` and ``LIMIT 1 BY``
  removed: every stored copy, as a reader without deduplication sees it.
* chdb locks its directory per process, so the test reads only while no sink runs, in a
  short reader subprocess (``python -c`` calling ``chdb_main`` below).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pulseline.deadletter import DeadLetterInfo
from pulseline.ports import free_port
from pulseline.schemas import EventKind
from pulseline.settings import StorageSettings
from pulseline.topics import DEAD_LETTERS, INGEST
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.queries import EventQuery
from storage.sink import CRASH_EXIT_CODE, Sink
from tests.helpers import dumps, stamped

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 4_000
BATCH = 500
CRASH_AFTER = 3
HOLD_MERGES = "ALTER TABLE {db}.events MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 1"


# --- reading and preparing the crash tests' chdb directory (runs in a subprocess) ------


def read_api_sql(db: str, *, dedup: bool) -> tuple[str, dict[str, Any]]:
    """The read API's event list for project 1; without ``dedup``, FINAL and LIMIT 1 BY cut."""
    now = datetime.now(UTC)
    sql, params = EventQuery(1, now - timedelta(hours=6), now + timedelta(hours=6), 100_000).sql(db)
    if dedup:
        return sql, params
    naive = sql.replace(" FINAL ", " ").replace("LIMIT 1 BY event_id ", "")
    assert naive.count("FINAL") == 0 and "LIMIT 1 BY" not in naive, sql  # the SQL changed
    return naive, params


def chdb_main() -> None:
    """``prepare <dir>``: migrate and hold merges; ``read <dir>``: print visible and physical."""
    mode, path = sys.argv[1], sys.argv[2]
    settings = StorageSettings.from_env({"PULSELINE_CLICKHOUSE_URL": f"chdb://{path}"})
    engine = Engine.open(settings)
    db = engine.database
    out: dict[str, Any] = {}
    if mode == "prepare":
        migrate(engine)
        engine.call(engine.client.command, HOLD_MERGES.format(db=db))
        out["create"] = engine.call(engine.client.command, f"SHOW CREATE TABLE {db}.events")
    else:
        for name, dedup in (("visible", True), ("physical", False)):
            sql, params = read_api_sql(db, dedup=dedup)
            rows = engine.call(engine.client.query, sql, parameters=params).result_rows
            out[name] = [str(r[0]) for r in rows]
    engine.close()
    print(json.dumps(out))


def chdb(mode: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tests.integration.test_sink_faults import chdb_main; chdb_main()",
            mode,
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- Kafka helpers ---------------------------------------------------------------------


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        await admin.close()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.3)
    return await check()


async def read_to_end(bootstrap: str, topic: str, partitions: int) -> list[Any]:
    """Every record of ``topic`` up to its end offsets now (none left out, none waited for)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "the dead-letter topic could not be read"
            for items in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(
                    r for r in items if r.offset < ends[TopicPartition(topic, r.partition)]
                )
        return records
    finally:
        await consumer.stop()


# --- (a) crash between the ClickHouse insert and the offset commit ---------------------


def start_storage(
    env: dict[str, str], log: Path, **extra: str
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "storage"],
            env={**os.environ, **env, "PULSELINE_API_PORT": str(port), **extra},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def rows_metric(port: int) -> int:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    match = re.search(r'^pulseline_sink_rows_total\{table="events"\} (\S+)$', text, re.M)
    assert match is not None, text[-2000:]
    return int(float(match.group(1)))


def copies(ids: list[str]) -> int:
    """Copies beyond the first (the accounting checker's definition of duplicates)."""
    return len(ids) - len(set(ids))


def crash_and_replay(env: dict[str, str], tmp_path: Path, *, dedup: bool) -> dict[str, Any]:
    started = time.monotonic()
    path = tmp_path / "clickhouse"
    prepared = chdb("prepare", path)
    assert "max_bytes_to_merge_at_max_space_in_pool = 1" in prepared["create"]
    storage_env = {
        **env,
        "PULSELINE_CLICKHOUSE_URL": f"chdb://{path}",
        "PULSELINE_SINK_BATCH_ROWS": str(BATCH),
        "PULSELINE_SINK_FLUSH_INTERVAL_S": "60",
        "PULSELINE_SINK_INSERT_DEDUPLICATION": "true" if dedup else "false",
    }
    settings = StorageSettings.from_env(storage_env)
    topic = INGEST[EventKind.EVENT].physical(settings.topic_prefix)
    tp = TopicPartition(topic, 0)
    group = settings.sink_group
    docs = [stamped() for _ in range(EVENTS)]
    sent = {d["event_id"] for d in docs}

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            futures = [await producer.send(topic, dumps(d), partition=0) for d in docs]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(produce())
    log = tmp_path / "storage.log"

    # 1. The sink dies right after its third insert, before committing that batch.
    phase = time.monotonic()
    first, _ = start_storage(storage_env, log, PULSELINE_SINK_CRASH_AFTER_INSERT=str(CRASH_AFTER))
    try:
        exit_code = first.wait(timeout=60)
    finally:
        stop(first)
    text = log.read_text(errors="replace")
    assert exit_code == CRASH_EXIT_CODE, text[-3000:]
    assert f"exiting after insert {CRASH_AFTER} ({BATCH} rows into events)" in text
    to_crash_s = time.monotonic() - phase
    at_crash_committed = asyncio.run(committed(settings.bootstrap, group)).get(tp, 0)
    at_crash = chdb("read", path)
    # ClickHouse has the third batch, Kafka does not know it was consumed.
    assert len(at_crash["physical"]) == CRASH_AFTER * BATCH
    assert at_crash_committed == (CRASH_AFTER - 1) * BATCH

    # 2. A fresh sink in the same group re-reads from the last commit and catches up.
    phase = time.monotonic()
    second, port = start_storage(storage_env, log)
    try:

        async def caught_up() -> bool:
            assert second.poll() is None, log.read_text(errors="replace")[-3000:]
            return (await committed(settings.bootstrap, group)).get(tp, 0) == EVENTS

        assert asyncio.run(wait_for(caught_up, 60)), log.read_text(errors="replace")[-3000:]
        replay_inserted = rows_metric(port)
        catch_up_s = time.monotonic() - phase
    finally:
        second_exit = stop(second)
    assert second_exit == 0, log.read_text(errors="replace")[-3000:]
    after = chdb("read", path)
    visible, physical = after["visible"], after["physical"]
    figures = {
        "dedup": "on" if dedup else "off",
        "events": EVENTS,
        "batch": BATCH,
        "exit": exit_code,
        "at_crash_rows": len(at_crash["physical"]),
        "at_crash_committed": at_crash_committed,
        "replay_inserted": replay_inserted,
        "reinserted": replay_inserted + len(at_crash["physical"]) - EVENTS,
        "visible": len(visible),
        "visible_duplicates": copies(visible),
        "physical": len(physical),
        "physical_duplicates": copies(physical),
        "lost": len(sent - set(visible)),
        "phantoms": len(set(visible) - sent),
        "to_crash_s": round(to_crash_s, 1),
        "catch_up_s": round(catch_up_s, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    print("\nFAULTS sink-crash " + " ".join(f"{k}={v}" for k, v in figures.items()))
    # The replay really happened: the fresh sink inserted the uncommitted batch again.
    assert figures["reinserted"] == BATCH
    assert figures["lost"] == 0 and figures["phantoms"] == 0
    return figures


@pytest.mark.timeout(120)
def test_a_sink_killed_between_insert_and_commit_shows_no_duplicate(
    env: dict[str, str], tmp_path: Path
) -> None:
    """(a) Deduplication on (the default): visible duplicates = 0.

    The re-read batch has the same offsets, so the same ``insert_deduplication_token``:
    ClickHouse drops the second insert and even the raw table holds each event once.
    """
    figures = crash_and_replay(env, tmp_path, dedup=True)
    assert figures["visible_duplicates"] == 0
    assert figures["visible"] == EVENTS
    assert figures["physical_duplicates"] == 0, "the insert token did not drop the replay"


@pytest.mark.timeout(120)
def test_negative_control_without_deduplication_the_replay_shows_duplicates(
    env: dict[str, str], tmp_path: Path
) -> None:
    """(a), negative control: the same crash with deduplication off finds the copies.

    Off means both layers that hide a replay: the sink inserts without the token and with
    block deduplication disabled (``PULSELINE_SINK_INSERT_DEDUPLICATION=false``), and the
    count is taken by a reader without deduplication (the read API's SQL minus FINAL and
    LIMIT 1 BY), with the same ``copies`` function as the main test. It must find the 500
    re-inserted rows; a count of 0 here would mean the main test could not see duplicates.
    The read API itself still shows none: FINAL alone hides them.
    """
    figures = crash_and_replay(env, tmp_path, dedup=False)
    assert figures["physical_duplicates"] > 0, "the test cannot see duplicates"
    assert figures["physical_duplicates"] == BATCH
    assert figures["physical"] == EVENTS + BATCH
    assert figures["visible_duplicates"] == 0 and figures["visible"] == EVENTS


# --- (b) 0.1 % poison records ----------------------------------------------------------

GOOD = 10_000
GOOD_KINDS = (EventKind.EVENT, EventKind.PAGEVIEW, EventKind.ERROR)


def poison() -> list[tuple[bytes | None, str]]:
    """Ten records the sink can never store, each with the reason it must give."""

    def event(**over: Any) -> bytes:
        return dumps(stamped(**over))

    no_id = stamped()
    del no_id["event_id"]
    return [
        (b"\xffnot json", "invalid row: not JSON"),
        (b"", "invalid row: not JSON"),
        (b"[1, 2, 3]", "invalid row: record is not a JSON object"),
        (None, "invalid row: empty record"),
        (dumps(no_id), "invalid row: event_id is missing or not a UUID"),
        (event(event_id="not-a-uuid"), "invalid row: event_id is missing or not a UUID"),
        (event(kind="bogus"), "invalid row: unknown kind 'bogus'"),
        (event(project_id=-1), "invalid row: project_id must be an integer from 0 to 4294967295"),
        (event(timestamp="yesterday"), "invalid row: timestamp is not an ISO-8601 timestamp"),
        (event(attributes="x"), "invalid row: attributes must be an object"),
    ]


@pytest.mark.timeout(120)
def test_poison_records_are_dead_lettered_and_no_good_event_is_lost(
    storage_env: dict[str, str],
) -> None:
    """(b) 10,000 good events and 10 poison records (0.1 %) over three ingest topics and
    both partitions: exactly 10 dead letters, each the record unchanged with its source
    position and reason; exactly the 10,000 good events stored, each once."""
    started = time.monotonic()
    settings = StorageSettings.from_env(storage_env)
    engine = Engine.open(settings)
    migrate(engine)
    prefix = settings.topic_prefix
    topics = [INGEST[k].physical(prefix) for k in GOOD_KINDS]
    dlq = DEAD_LETTERS.physical(prefix)
    docs = [stamped(kind=GOOD_KINDS[i % 3].value, distinct_id=f"v{i}") for i in range(GOOD)]
    sent = {d["event_id"] for d in docs}
    bad = poison()
    # Spread the poison through the stream: one after every 1,000 good events.
    plan: list[tuple[str, bytes | None, str | None]] = []
    for i, doc in enumerate(docs):
        plan.append((INGEST[EventKind(doc["kind"])].physical(prefix), dumps(doc), None))
        if i % 1000 == 500:
            value, reason = bad[i // 1000]
            plan.append((topics[i // 1000 % 3], value, reason))

    async def scenario() -> dict[str, Any]:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            futures = [
                await producer.send(t, v, key=f"k{n}".encode()) for n, (t, v, _) in enumerate(plan)
            ]
            metas = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        injected = {
            (t, m.partition, m.offset): (v, reason)
            for (t, v, reason), m in zip(plan, metas, strict=True)
            if reason is not None
        }
        ends: dict[TopicPartition, int] = {}
        for (t, _, _), m in zip(plan, metas, strict=True):
            tp = TopicPartition(t, m.partition)
            ends[tp] = max(ends.get(tp, 0), m.offset + 1)

        sink = Sink(settings, engine, StorageMetrics())
        await sink.start()
        task = asyncio.create_task(sink.run())
        try:

            async def all_committed() -> bool:
                for tp, end in ends.items():
                    if (await sink.consumer.committed(tp) or 0) < end:
                        return False
                return True

            assert await wait_for(all_committed, 60), "the sink did not commit everything"
        finally:
            await sink.stop()
            await task
            await sink.close()

        dead = await read_to_end(settings.bootstrap, dlq, settings.partitions)
        results: dict[str, list[str]] = {}
        for name, dedup in (("visible", True), ("physical", False)):
            sql, params = read_api_sql(engine.database, dedup=dedup)
            results[name] = [str(r["event_id"]) for r in await engine.rows(sql, params)]
        return {"injected": injected, "dead": dead, **results}

    try:
        out = asyncio.run(scenario())
    finally:
        engine.close()
    injected, dead = out["injected"], out["dead"]
    visible, physical = out["visible"], out["physical"]
    got = {}
    for record in dead:
        info = DeadLetterInfo.from_headers(record.headers)
        got[(info.topic, info.partition, info.offset)] = (record.value, info.reason, info.stage)
    figures = {
        "good_sent": GOOD,
        "poison_injected": len(injected),
        "dead_letters": len(dead),
        "stored_visible": len(visible),
        "stored_physical": len(physical),
        "lost": len(sent - set(visible)),
        "duplicates": copies(visible),
        "physical_duplicates": copies(physical),
        "phantoms": len(set(visible) - sent),
        "reasons": dict(Counter(r.split(":")[1].strip() for _, r in injected.values())),
        "seconds": round(time.monotonic() - started, 1),
    }
    print("\nFAULTS sink-poison " + " ".join(f"{k}={v}" for k, v in figures.items()))
    assert len(injected) == 10 and len(plan) == GOOD + 10
    assert len(dead) == len(injected) == len(got)
    assert set(got) == set(injected)
    for position, (value, reason) in injected.items():
        got_value, got_reason, stage = got[position]
        assert (got_value, stage) == (value, "sink"), position
        assert got_reason.startswith(reason), (position, got_reason)
    assert figures["lost"] == 0 and figures["phantoms"] == 0
    assert len(visible) == GOOD and figures["duplicates"] == 0
    assert len(physical) == GOOD
