"""Coalesce concurrent requests' records into one Kafka batch per partition.

aiokafka's ``send()`` costs a coroutine, a partitioner call and a future per record,
which at tens of thousands of events per second is most of a core. Here a request's
records are appended straight into the open ``BatchBuilder`` of their partition, and
every ``linger_s`` the open builders are sealed together and handed to ``send_batch``
(a full builder is handed over at once). The builders sealed together form a
generation with one future: it resolves when Kafka acked every batch of the generation
and fails if any of them failed, so a request waits on one or two futures, not one per
record or partition. A failure fails the whole generation's requests (503, "may have
been stored"): never an acknowledgement for a record Kafka did not ack.

The batches go through the producer's own accumulator and sender, so acks=all, the
idempotent sequence numbers, compression and retries are aiokafka's, unchanged.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from typing import Any

Record = tuple[str, bytes, bytes]


def partition_for(key: bytes, partitions: Sequence[int]) -> int:
    """Same key, same partition; crc32 runs in C (aiokafka's murmur2 is pure Python)."""
    return partitions[zlib.crc32(key) % len(partitions)]


class _Generation:
    __slots__ = ("done", "error", "pending", "sealed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.done: asyncio.Future[None] = loop.create_future()
        # Requests that gave up (timeout, disconnect) no longer look at it.
        self.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.pending = 0
        self.sealed = False
        self.error: BaseException | None = None

    def settle_if_complete(self) -> None:
        if not self.sealed or self.pending or self.done.done():
            return
        if self.error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(self.error)


class Batcher:
    def __init__(self, producer: Any, linger_s: float) -> None:
        self._producer = producer
        self._linger_s = linger_s
        self._open: dict[tuple[str, int], Any] = {}  # (topic, partition) -> BatchBuilder
        self._generation: _Generation | None = None
        self._partitions: dict[str, tuple[int, ...]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._submitting: set[asyncio.Task[None]] = set()

    async def add(self, records: Sequence[Record]) -> asyncio.Future[None]:
        """Append the records; the future resolves once Kafka acked their batches."""
        for topic in {topic for topic, _, _ in records}:
            if topic not in self._partitions:
                found = await self._producer.partitions_for(topic)
                self._partitions[topic] = tuple(sorted(found))
        loop = asyncio.get_running_loop()
        generation = self._generation
        if generation is None:
            generation = self._generation = _Generation(loop)
            self._timer = loop.call_later(self._linger_s, self.seal_all)
        partitions, create = self._partitions, self._producer.create_batch
        for topic, key, value in records:
            tp = (topic, partition_for(key, partitions[topic]))
            builder = self._open.get(tp)
            if builder is None:
                builder = self._open[tp] = create()
            if builder.append(key=key, value=value, timestamp=None) is None:
                self._submit(tp, self._open.pop(tp), generation)
                builder = self._open[tp] = create()
                if builder.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a record of {len(value)} bytes does not fit in a batch")
        return generation.done

    def seal_all(self) -> None:
        self._timer = None
        generation, self._generation = self._generation, None
        if generation is None:
            return
        open_builders, self._open = self._open, {}
        for tp, builder in open_builders.items():
            self._submit(tp, builder, generation)
        generation.sealed = True
        generation.settle_if_complete()

    def _submit(self, tp: tuple[str, int], builder: Any, generation: _Generation) -> None:
        generation.pending += 1
        task = asyncio.create_task(self._send(tp, builder, generation))
        self._submitting.add(task)
        task.add_done_callback(self._submitting.discard)

    async def _send(self, tp: tuple[str, int], builder: Any, generation: _Generation) -> None:
        try:
            acked = await self._producer.send_batch(builder, tp[0], partition=tp[1])
            await acked
        except BaseException as exc:  # the waiting requests get it; nothing is swallowed
            generation.error = generation.error or exc
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            generation.pending -= 1
            generation.settle_if_complete()

    async def drain(self, timeout_s: float) -> None:
        """Seal what is open and wait, at most ``timeout_s``, for Kafka's acks (shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
        self.seal_all()
        if self._submitting:
            await asyncio.wait(self._submitting, timeout=timeout_s)
