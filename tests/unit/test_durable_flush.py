import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest

from stream_processors.durable_flush import App, ChangelogNotWritten, Unsent

pytestmark = pytest.mark.anyio
SEND_S = 0.3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def apps() -> AsyncIterator[list[faust.App]]:
    made: list[faust.App] = []
    yield made
    for app in made:
        await app.producer.buffer.stop()


async def _flush_three(app: faust.App) -> tuple[list[Any], list[asyncio.Future[Any]]]:
    """Put three records in the app's producer buffer and flush it, with each hand-over to
    aiokafka taking ``SEND_S``, as under a busy loop or a full accumulator (no broker is
    needed); the records handed over by the time the flush returned, and all three."""
    producer: Any = app.producer
    buffer: Any = producer.buffer
    sent: list[Any] = []

    async def hand_over(fut: asyncio.Future[Any]) -> None:
        await asyncio.sleep(SEND_S)
        sent.append(fut)
        fut.set_result(None)

    buffer._send_pending = hand_over
    await buffer.start()
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(3)]
    for fut in futures:
        producer.send_soon(fut)
    await producer.flush()
    return list(sent), futures


async def test_fausts_own_flush_returns_with_records_still_buffered(
    apps: list[faust.App],
) -> None:
    """The behaviour ``durable_flush`` exists for: if Faust fixes it, this test says so."""
    apps.append(app := faust.App("plain", broker="kafka://127.0.0.1:9"))

    sent, futures = await _flush_three(app)

    assert len(sent) < len(futures)
    await asyncio.gather(*futures)


async def test_the_durable_flush_waits_for_every_buffered_record(
    apps: list[faust.App],
) -> None:
    apps.append(app := App("durable", broker="kafka://127.0.0.1:9"))

    sent, futures = await _flush_three(app)

    assert sent == futures


async def test_a_record_that_failed_fails_every_later_flush() -> None:
    unsent = Unsent()
    loop = asyncio.get_running_loop()
    failing = loop.create_future()
    unsent.track(failing)
    failing.set_exception(OSError("broker gone"))
    await asyncio.sleep(0)

    for _ in range(2):
        with pytest.raises(ChangelogNotWritten, match="broker gone"):
            await unsent.drain()


async def test_a_record_put_after_the_flush_began_is_not_waited_for() -> None:
    unsent = Unsent()
    loop = asyncio.get_running_loop()
    before, after = loop.create_future(), loop.create_future()
    unsent.track(before)
    draining = asyncio.ensure_future(unsent.drain())
    await asyncio.sleep(0)
    unsent.track(after)
    before.set_result(None)

    await asyncio.wait_for(draining, 1.0)

    assert not after.done() and unsent.pending == {after}


async def test_a_record_never_acknowledged_fails_the_flush_after_the_timeout() -> None:
    unsent = Unsent(timeout_s=0.05)
    unsent.track(asyncio.get_running_loop().create_future())

    with pytest.raises(ChangelogNotWritten, match="1 buffered records not acknowledged"):
        await unsent.drain()


async def test_a_cancelled_record_counts_as_not_written() -> None:
    unsent = Unsent()
    fut = asyncio.get_running_loop().create_future()
    unsent.track(fut)
    fut.cancel()
    await asyncio.sleep(0)

    with pytest.raises(ChangelogNotWritten, match="cancelled"):
        await unsent.drain()
