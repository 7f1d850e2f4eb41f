"""The storage sink: a batch consumer of ``ingest.*``, ``derived.*`` and ``control.entities``.

It polls, decodes records into per-table row batches, flushes by size or time with
a deterministic ``insert_deduplication_token``, dead-letters rows that can never be
inserted, and commits offsets only after ClickHouse has the rows (see storage.batch).
When ClickHouse fails it stops polling and retries the identical batch with back-off.

Two switches exist for the fault tests only, both off by default (see StorageSettings):
``sink_crash_after_insert`` exits the process hard right after the Nth insert, before its
offsets are committed; ``sink_insert_deduplication=false`` inserts without the token and
with block deduplication disabled, the negative control that shows the replay's copies.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Iterable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from clickhouse_connect.driver.summary import QuerySummary

from pulseline.deadletter import DeadLetterInfo, reason_label
from pulseline.settings import StorageSettings
from pulseline.topics import DEAD_LETTERS
from storage.batch import Batch, TableBatch
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.rows import TABLES, RowError, Source, Table, decode

log = logging.getLogger("pulseline.sink")

# Exit status of the ``sink_crash_after_insert`` fault hook (EX_SOFTWARE).
CRASH_EXIT_CODE = 70


class Polled(Protocol):
    """What the sink reads of a consumed record (aiokafka's ``ConsumerRecord``)."""

    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def add_records(
    batch: Batch, table: Table, topic: str, partition: int, records: Iterable[Polled]
) -> None:
    """Records of one partition into ``batch``: each a row of ``table``, or a dead letter
    with its reason."""
    rows: list[list[Any]] = []
    offsets: list[int] = []
    for record in records:
        offset, key, value = record.offset, record.key, record.value
        try:
            rows.append(decode(table, value, Source(topic, partition, offset, key)))
        except RowError as exc:
            batch.add_dead(topic, partition, offset, key, value, f"invalid row: {exc}")
            continue
        offsets.append(offset)
    batch.add_rows(table, topic, partition, rows, offsets)


def insert_batch(engine: Engine, tb: TableBatch, settings: dict[str, Any]) -> QuerySummary:
    """Blocking: one columnar insert of ``tb`` (run it on the engine's executor)."""
    wire = tb.table.wire_types
    return engine.client.insert(
        f"{engine.database}.{tb.table.name}",
        tb.columns,
        column_names=list(tb.table.columns),
        column_type_names=None if wire is None else list(wire),
        column_oriented=True,
        settings=settings,
    )


class Sink:
    def __init__(self, settings: StorageSettings, engine: Engine, metrics: StorageMetrics) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        prefix = settings.topic_prefix
        self.tables: dict[str, Table] = {spec.physical(prefix): t for spec, t in TABLES.items()}
        self.consumer = AIOKafkaConsumer(
            *self.tables,
            bootstrap_servers=settings.bootstrap,
            group_id=settings.sink_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.sink_batch_rows,
            max_poll_interval_ms=600_000,
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=True
        )
        self.dlq_topic = DEAD_LETTERS.physical(prefix)
        self._stopping = asyncio.Event()
        self.flushed_batches = 0
        self.inserts = 0

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()

    async def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def run(self) -> None:
        """Poll, batch and flush until ``stop()``; the last batch is flushed before exit."""
        batch = Batch()
        opened = time.monotonic()
        interval_ms = int(self.settings.sink_flush_interval_s * 1000)
        while not self._stopping.is_set():
            room = self.settings.sink_batch_rows - len(batch)
            polled = await self.consumer.getmany(
                timeout_ms=min(interval_ms, 200), max_records=max(room, 1)
            )
            for tp, records in polled.items():
                add_records(batch, self.tables[tp.topic], tp.topic, tp.partition, records)
            full = len(batch) >= self.settings.sink_batch_rows
            due = time.monotonic() - opened >= self.settings.sink_flush_interval_s
            if batch.offsets and (full or due):
                await self.flush(batch)
                batch, opened = Batch(), time.monotonic()
            elif not batch.offsets:
                opened = time.monotonic()
        if batch.offsets:
            await self.flush(batch)

    async def flush(self, batch: Batch) -> None:
        for table_batch in batch.tables.values():
            await self._insert_until_done(table_batch)
        for topic, partition, offset, key, value, reason in batch.dead:
            info = DeadLetterInfo(reason, "sink", topic, partition, offset)
            await self.producer.send_and_wait(
                self.dlq_topic, value=value, key=key, headers=info.headers()
            )
            self.metrics.dead_letters.labels(reason_label(reason)).inc()
        # After a rebalance some partitions may belong to another consumer now: it re-reads
        # them from the last commit, and the rows it inserts again collapse (idempotent).
        assigned = self.consumer.assignment()
        offsets = {TopicPartition(t, p): o for (t, p), o in batch.commit_offsets().items()}
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        try:
            if offsets:
                await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            log.warning("offset commit refused after a rebalance; the rows stay (idempotent)")
        self.flushed_batches += 1
        self._record_lag(batch)

    def _insert_settings(self, tb: TableBatch) -> dict[str, Any]:
        if self.settings.sink_insert_deduplication:
            return {"insert_deduplication_token": tb.token()}
        # Negative control only: no token and no block hash check, so a replay lands twice.
        # ``deduplicate_insert`` (ClickHouse >= 26) supersedes ``insert_deduplicate``; send
        # the ones this server knows.
        off: dict[str, Any] = {"deduplicate_insert": "disable", "insert_deduplicate": 0}
        known = self.engine.client.server_settings
        return {k: v for k, v in off.items() if k in known}

    def _crash_if_asked(self, tb: TableBatch) -> None:
        """Fault hook: die like a killed process once the Nth insert is in ClickHouse."""
        if self.inserts != self.settings.sink_crash_after_insert:
            return
        log.critical(
            "fault injection: exiting after insert %d (%d rows into %s), offsets not committed",
            self.inserts,
            tb.rows,
            tb.table.name,
        )
        os._exit(CRASH_EXIT_CODE)

    async def _insert_until_done(self, tb: TableBatch) -> None:
        insert_settings = self._insert_settings(tb)
        delay = 0.2
        while True:
            started = time.perf_counter()
            try:
                await self.engine.run(insert_batch, self.engine, tb, insert_settings)
            except Exception as exc:  # any driver or engine error: keep the batch, retry
                self.metrics.insert_failures.labels(tb.table.name).inc()
                log.warning(
                    "insert into %s failed (%s); retrying in %.1fs", tb.table.name, exc, delay
                )
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.settings.sink_retry_max_s)
                continue
            self.metrics.insert_seconds.labels(tb.table.name).observe(time.perf_counter() - started)
            self.metrics.rows.labels(tb.table.name).inc(tb.rows)
            self.inserts += 1
            self._crash_if_asked(tb)
            return

    def _record_lag(self, batch: Batch) -> None:
        # Read the assignment now: a rebalance may have revoked partitions while we awaited.
        assigned = self.consumer.assignment()
        for (topic, partition), committed in batch.commit_offsets().items():
            tp = TopicPartition(topic, partition)
            if tp not in assigned:
                continue
            end = self.consumer.highwater(tp)
            if end is not None:
                self.metrics.lag.labels(topic, str(partition)).set(max(end - committed, 0))
