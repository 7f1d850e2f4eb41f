"""The Batcher: records land in their partition's batch; a request's future settles only
when every batch of its generation is acked, and fails when any of them fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder

from ingest_gateway.batcher import Batcher, partition_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Producer:
    """Hands out small batches and keeps every submitted one with its ack future."""

    def __init__(self, batch_size: int = 16 * 1024) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[str, int, BatchBuilder, asyncio.Future[None]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[None]:
        acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, batch, acked))
        return acked


def records(n: int, topic: str = "t", size: int = 10) -> list[tuple[str, bytes, bytes]]:
    return [(topic, f"k{i}".encode(), b"x" * size) for i in range(n)]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_records_go_to_the_partition_of_their_key() -> None:
    producer = Producer()
    batcher = Batcher(producer, linger_s=0.001)
    await batcher.add(records(30))
    await asyncio.sleep(0.01)
    counted = {(topic, p): batch.record_count() for topic, p, batch, _ in producer.sent}
    expected: dict[tuple[str, int], int] = {}
    for topic, key, _ in records(30):
        tp = (topic, partition_for(key, (0, 1, 2)))
        expected[tp] = expected.get(tp, 0) + 1
    assert counted == expected


async def test_a_request_is_done_only_when_every_batch_of_its_generation_is_acked() -> None:
    producer = Producer()
    batcher = Batcher(producer, linger_s=0.001)
    first = await batcher.add(records(10, "a"))
    second = await batcher.add(records(10, "b"))
    assert first is second  # one linger window, one generation
    await asyncio.sleep(0.01)
    assert len(producer.sent) >= 2
    for _, _, _, acked in producer.sent[:-1]:
        acked.set_result(None)
    await settle()
    assert not first.done()
    producer.sent[-1][3].set_result(None)
    await settle()
    assert first.done() and first.exception() is None


async def test_one_failed_batch_fails_the_whole_generation() -> None:
    producer = Producer()
    batcher = Batcher(producer, linger_s=0.001)
    done = await batcher.add(records(10, "a") + records(10, "b"))
    await asyncio.sleep(0.01)
    producer.sent[0][3].set_exception(RuntimeError("broker said no"))
    for _, _, _, acked in producer.sent[1:]:
        acked.set_result(None)
    await settle()
    assert isinstance(done.exception(), RuntimeError)


async def test_a_full_batch_is_handed_over_before_the_linger_ends() -> None:
    producer = Producer(batch_size=512)
    batcher = Batcher(producer, linger_s=60)
    done = await batcher.add([("t", b"same", b"y" * 100) for _ in range(20)])
    await settle()
    assert producer.sent, "a full batch must not wait for the linger"
    assert not done.done()
    await batcher.drain(timeout_s=0.01)
    assert sum(batch.record_count() for _, _, batch, _ in producer.sent) == 20
