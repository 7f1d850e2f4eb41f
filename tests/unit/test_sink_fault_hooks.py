"""The sink's two fault-test switches: off by default, and doing exactly what they say."""

from __future__ import annotations

import os
from typing import Any

import pytest
from aiokafka import TopicPartition

from pulseline.settings import ConfigError, StorageSettings
from storage.batch import Batch
from storage.metrics import StorageMetrics
from storage.rows import EVENTS, Source, decode
from storage.sink import CRASH_EXIT_CODE, Sink
from tests.helpers import dumps, stamped

pytestmark = pytest.mark.anyio

TOPIC = "t.ingest.event"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Client:
    def __init__(self, known: set[str]) -> None:
        self.server_settings = dict.fromkeys(known)
        self.inserts: list[dict[str, Any]] = []

    def insert(self, table: str, columns: list[list[Any]], **kwargs: Any) -> None:
        self.inserts.append(kwargs["settings"])


BOTH = frozenset({"deduplicate_insert", "insert_deduplicate"})


class FakeEngine:
    database = "db"

    def __init__(self, known: frozenset[str] | set[str] = BOTH) -> None:
        self.client = Client(set(known))

    async def run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


class Consumer:
    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, 0)}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)

    def highwater(self, tp: TopicPartition) -> int:
        return 100


class Crashed(Exception):
    pass


def make_sink(env: dict[str, str], engine: FakeEngine) -> tuple[Sink, Consumer]:
    sink = Sink(StorageSettings.from_env(env), engine, StorageMetrics())  # type: ignore[arg-type]
    consumer = Consumer()
    sink.consumer = consumer
    return sink, consumer


def batch(first: int, rows: int = 3) -> Batch:
    b = Batch()
    for offset in range(first, first + rows):
        row = decode(EVENTS, dumps(stamped()), Source(TOPIC, 0, offset))
        b.add_row(EVENTS, TOPIC, 0, offset, row)
    return b


def test_both_switches_are_off_by_default() -> None:
    settings = StorageSettings.from_env({})
    assert settings.sink_insert_deduplication is True
    assert settings.sink_crash_after_insert == 0


def test_a_negative_crash_count_is_refused() -> None:
    with pytest.raises(ConfigError, match="PULSELINE_SINK_CRASH_AFTER_INSERT"):
        StorageSettings.from_env({"PULSELINE_SINK_CRASH_AFTER_INSERT": "-1"})


async def test_by_default_each_insert_carries_its_batch_token() -> None:
    engine = FakeEngine()
    sink, consumer = make_sink({}, engine)
    b = batch(0)
    await sink.flush(b)
    assert engine.client.inserts == [{"insert_deduplication_token": b.tables["events"].token()}]
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 3}]


@pytest.mark.parametrize(
    ("known", "expected"),
    [
        (
            {"deduplicate_insert", "insert_deduplicate"},
            {"deduplicate_insert": "disable", "insert_deduplicate": 0},
        ),
        ({"insert_deduplicate"}, {"insert_deduplicate": 0}),  # a server before 26.x
    ],
)
async def test_with_deduplication_off_no_token_is_sent_and_block_dedup_is_disabled(
    known: set[str], expected: dict[str, Any]
) -> None:
    engine = FakeEngine(known)
    sink, _ = make_sink({"PULSELINE_SINK_INSERT_DEDUPLICATION": "false"}, engine)
    await sink.flush(batch(0))
    assert engine.client.inserts == [expected]


async def test_the_crash_hook_exits_after_the_nth_insert_before_its_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codes: list[int] = []

    def exit_hard(code: int) -> None:
        codes.append(code)
        raise Crashed

    monkeypatch.setattr(os, "_exit", exit_hard)  # the module storage.sink calls
    engine = FakeEngine()
    sink, consumer = make_sink({"PULSELINE_SINK_CRASH_AFTER_INSERT": "2"}, engine)
    await sink.flush(batch(0))
    assert codes == [] and len(consumer.commits) == 1
    with pytest.raises(Crashed):
        await sink.flush(batch(3))
    assert codes == [CRASH_EXIT_CODE]
    assert len(engine.client.inserts) == 2  # the second batch is in ClickHouse ...
    assert consumer.commits == [{TopicPartition(TOPIC, 0): 3}]  # ... its offsets are not


async def test_without_the_crash_hook_the_sink_never_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "_exit", lambda code: pytest.fail(f"exited {code}"))
    sink, consumer = make_sink({}, FakeEngine())
    for first in range(0, 30, 3):
        await sink.flush(batch(first))
    assert len(consumer.commits) == 10
