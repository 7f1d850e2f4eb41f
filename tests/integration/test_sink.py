"""The sink against real Kafka and the real ClickHouse engine (chdb)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from pulseline.deadletter import DeadLetterInfo
from pulseline.schemas import EventKind
from pulseline.settings import StorageSettings
from pulseline.topics import DEAD_LETTERS, INGEST
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.queries import EventQuery
from storage.sink import Sink
from tests.helpers import consume_all, dumps, eventually, produce, stamped

pytestmark = pytest.mark.integration


async def run_sink_until(settings: StorageSettings, engine: Engine, done: object) -> Sink:
    sink = Sink(settings, engine, StorageMetrics())
    await sink.start()
    task = asyncio.create_task(sink.run())
    try:
        assert await eventually(done, timeout_s=30), "the sink did not finish in time"  # type: ignore[arg-type]
    finally:
        await sink.stop()
        await task
        await sink.close()
    return sink


async def visible_ids(engine: Engine, project: int = 1) -> list[str]:
    now = datetime.now(UTC)
    sql, params = EventQuery(project, now - timedelta(hours=1), now + timedelta(hours=1), 1000).sql(
        engine.database
    )
    return [str(r["event_id"]) for r in await engine.rows(sql, params)]


def test_it_stores_every_event_once_and_dead_letters_the_rest(storage_env: dict[str, str]) -> None:
    settings = StorageSettings.from_env(storage_env)
    engine = Engine.open(settings)
    migrate(engine)
    topic = INGEST[EventKind.EVENT].physical(settings.topic_prefix)
    docs = [stamped() for _ in range(300)]
    values = [dumps(d) for d in docs[:150]] + [b"\xffpoison"] + [dumps(d) for d in docs[150:]]

    async def scenario() -> None:
        await produce(settings.bootstrap, topic, values)

        async def stored_all() -> bool:
            return len(await visible_ids(engine)) == 300

        await run_sink_until(settings, engine, stored_all)
        assert sorted(await visible_ids(engine)) == sorted(d["event_id"] for d in docs)

        dead = await consume_all(
            settings.bootstrap, DEAD_LETTERS.physical(settings.topic_prefix), expect=1, timeout_s=10
        )
        assert [d.value for d in dead] == [b"\xffpoison"]
        info = DeadLetterInfo.from_headers(dead[0].headers)
        assert (info.stage, info.topic, info.offset) == ("sink", topic, 150)
        assert info.reason.startswith("invalid row: not JSON")

        # Replay the same offsets from the start under a new group: nothing shows twice.
        replay = StorageSettings.from_env(
            {**storage_env, "PULSELINE_SINK_GROUP": settings.sink_group + "-replay"}
        )
        sink = Sink(replay, engine, StorageMetrics())
        await sink.start()
        task = asyncio.create_task(sink.run())
        await asyncio.sleep(3)
        await sink.stop()
        await task
        await sink.close()
        assert sink.flushed_batches >= 1
        ids = await visible_ids(engine)
        assert len(ids) == len(set(ids)) == 300

    asyncio.run(scenario())
    engine.close()


def test_offsets_are_committed_only_after_clickhouse_has_the_rows(
    storage_env: dict[str, str],
) -> None:
    """With ClickHouse failing, the sink retries and commits nothing; then it catches up."""
    settings = StorageSettings.from_env(storage_env)
    engine = Engine.open(settings)
    migrate(engine)
    topic = INGEST[EventKind.ERROR].physical(settings.topic_prefix)
    docs = [stamped(kind="error") for _ in range(50)]
    real_db = engine.database
    engine.database = "no_such_database"  # every insert fails like an unavailable server

    async def committed(sink: Sink) -> int:
        from aiokafka import TopicPartition

        total = 0
        for p in range(settings.partitions):
            offset = await sink.consumer.committed(TopicPartition(topic, p))
            total += offset or 0
        return total

    async def scenario() -> None:
        await produce(settings.bootstrap, topic, [dumps(d) for d in docs])
        metrics = StorageMetrics()
        sink = Sink(settings, engine, metrics)
        await sink.start()
        task = asyncio.create_task(sink.run())
        await eventually(lambda: _gt0(metrics), timeout_s=15)
        assert await committed(sink) == 0
        engine.database = real_db  # ClickHouse is back

        async def all_visible() -> bool:
            return len(await visible_ids(engine)) == 50

        assert await eventually(all_visible, timeout_s=30)
        assert await eventually(lambda: _equals(committed(sink), 50), timeout_s=10)
        await sink.stop()
        await task
        await sink.close()

    asyncio.run(scenario())
    engine.close()


async def _gt0(metrics: StorageMetrics) -> bool:
    return metrics.insert_failures.labels("events")._value.get() > 0


async def _equals(value: object, expected: int) -> bool:
    return await value == expected  # type: ignore[misc]
