"""The sink survives a rebalance that revokes partitions while a flush is awaiting."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import TopicPartition

from pulseline.settings import StorageSettings
from storage.batch import Batch
from storage.metrics import StorageMetrics
from storage.sink import Sink

pytestmark = pytest.mark.anyio

TOPIC = "t.ingest.event"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RevokingConsumer:
    """Holds two partitions until ``commit`` runs, as a rebalance would take one away."""

    def __init__(self) -> None:
        self.assigned = {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)}
        self.committed: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)
        self.assigned.discard(TopicPartition(TOPIC, 1))

    def highwater(self, tp: TopicPartition) -> int:
        assert tp in self.assigned, "Partition is not assigned"
        return 10


class Producer:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send_and_wait(self, topic: str, **kwargs: Any) -> None:
        self.sent.append((topic, kwargs))


async def test_flush_records_lag_only_for_partitions_still_assigned() -> None:
    sink = Sink(StorageSettings.from_env({}), engine=None, metrics=StorageMetrics())  # type: ignore[arg-type]
    consumer, producer = RevokingConsumer(), Producer()
    sink.consumer, sink.producer = consumer, producer  # type: ignore[assignment]
    batch = Batch()
    batch.add_dead(TOPIC, 0, 4, None, b"x", "invalid row: test")
    batch.add_dead(TOPIC, 1, 7, None, b"y", "invalid row: test")

    await sink.flush(batch)

    assert consumer.committed == {TopicPartition(TOPIC, 0): 5, TopicPartition(TOPIC, 1): 8}
    assert len(producer.sent) == 2
    lag = sink.metrics.registry.get_sample_value(
        "pulseline_sink_consumer_lag", {"topic": TOPIC, "partition": "0"}
    )
    assert lag == 5
    revoked = sink.metrics.registry.get_sample_value(
        "pulseline_sink_consumer_lag", {"topic": TOPIC, "partition": "1"}
    )
    assert revoked is None
