"""The Kafka hand-off's bounds, without a broker: nothing listening, or a silent listener."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from ingest_gateway.errors import KafkaUnavailable
from ingest_gateway.producer import KafkaProducer, ListProducer
from pulseline.settings import GatewaySettings
from tests.kafka_fixture import free_port

pytestmark = pytest.mark.anyio

RECORDS = [("t.ingest.event", b"1:a", b"{}")]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings_for(port: int) -> GatewaySettings:
    return GatewaySettings.from_env(
        {},
        kafka_bootstrap=f"127.0.0.1:{port}",
        kafka_request_timeout_s=0.5,
        produce_timeout_s=0.5,
    )


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers, like a hung broker."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_start_fails_fast_when_nothing_listens() -> None:
    producer = KafkaProducer(settings_for(free_port()))

    with pytest.raises(KafkaUnavailable, match="cannot reach Kafka"):
        await producer.start()
    await producer.stop()


async def test_start_is_bounded_when_the_broker_never_answers(silent_port: int) -> None:
    producer = KafkaProducer(settings_for(silent_port))
    started = time.monotonic()

    with pytest.raises(KafkaUnavailable):
        await producer.start()

    assert time.monotonic() - started < 3
    await producer.stop()


async def test_a_send_is_bounded_by_the_produce_timeout(silent_port: int) -> None:
    producer = KafkaProducer(settings_for(silent_port))
    started = time.monotonic()

    with pytest.raises(KafkaUnavailable):
        await producer.send_batch(RECORDS)

    assert time.monotonic() - started < 1.5
    assert not await producer.ready()
    await producer.stop()


async def test_an_empty_batch_needs_no_kafka() -> None:
    await KafkaProducer(settings_for(free_port())).send_batch([])


async def test_the_list_producer_keeps_records_until_told_to_fail() -> None:
    producer = ListProducer()
    await producer.start()
    await producer.send_batch(RECORDS)

    producer.failing = True

    with pytest.raises(KafkaUnavailable):
        await producer.send_batch(RECORDS)
    assert producer.records == RECORDS
