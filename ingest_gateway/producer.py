"""The Kafka hand-off: send a request's records and return once Kafka acked all of them.

``KafkaProducer`` wraps one idempotent ``AIOKafkaProducer`` (acks=all, zstd). A batch
either completes (every record acked) or raises ``KafkaUnavailable`` within
``produce_timeout_s``: the wait never hangs on a dead broker. While the broker is
down the client keeps its batches and reconnects by itself when it returns. After a
Kafka error that is not a plain timeout the client may be wedged for good (an
idempotent producer whose sequence numbers have a gap answers every later batch
with OutOfOrderSequenceNumber), so it is retired and the next send starts a fresh one.

``ListProducer`` is the in-memory twin for tests of the HTTP shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerClosed
from aiokafka.protocol.metadata import MetadataRequest

from ingest_gateway.batcher import Batcher
from ingest_gateway.errors import KafkaUnavailable
from ingest_gateway.stamp import Record
from pulseline.settings import GatewaySettings

log = logging.getLogger(__name__)

# Room for the record key and batch framing on top of the largest accepted value.
_REQUEST_OVERHEAD_BYTES = 64 * 1024
# aiokafka keeps one request in flight per broker: large batches carry the throughput.
_MAX_BATCH_BYTES = 512 * 1024
_READY_TIMEOUT_S = 2.0
_ABANDON_STEP_S = 5.0


class Producer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Flush what is pending (bounded in time) and close."""

    async def send_batch(self, records: Sequence[Record]) -> None:
        """Return when Kafka acked every record; else raise ``KafkaUnavailable``."""

    async def ready(self) -> bool:
        """Whether Kafka answers right now (a cheap metadata round trip)."""


class ListProducer:
    """Keeps sent records in ``records``; set ``failing`` to make sends raise."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.failing = False
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_batch(self, records: Sequence[Record]) -> None:
        if self.failing:
            raise KafkaUnavailable("the list producer is set to fail")
        self.records.extend(records)

    async def ready(self) -> bool:
        return self.started and not self.stopped and not self.failing


class KafkaProducer:
    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._timeout_s = settings.produce_timeout_s
        self._producer: Any = None  # AIOKafkaProducer; aiokafka ships no type hints
        self._batcher: Batcher | None = None
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Connect; fails (``KafkaUnavailable``) when the broker cannot be reached."""
        limit = self._settings.kafka_request_timeout_s + self._timeout_s
        try:
            async with asyncio.timeout(limit):
                await self._current()
        except TimeoutError:
            raise KafkaUnavailable(
                f"Kafka at {self._settings.bootstrap} did not answer within {limit:g}s"
            ) from None

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if self._batcher is not None:
            await self._batcher.drain(self._timeout_s)
        if producer is not None:
            await _close(producer, self._timeout_s)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def send_batch(self, records: Sequence[Record]) -> None:
        if not records:
            return
        futures: list[asyncio.Future[None]] = []
        producer: Any = None
        try:
            async with asyncio.timeout(self._timeout_s):
                producer, batcher = await self._current()
                futures = [await batcher.add(records)]
                # Not gather: on timeout it would cancel futures other requests share.
                await asyncio.wait(futures)
        except BaseException as exc:
            if isinstance(exc, TimeoutError | KafkaTimeoutError):
                self._watch_late(futures, producer)
                raise KafkaUnavailable(
                    f"Kafka did not acknowledge {len(records)} records within {self._timeout_s:g}s"
                ) from None
            if isinstance(exc, KafkaError):
                self._retire(producer, exc)
                raise KafkaUnavailable(f"Kafka refused the records: {exc!r}") from exc
            raise
        errors = [f.exception() for f in futures]  # retrieving them all keeps asyncio quiet
        failed = next((e for e in errors if e is not None), None)
        if failed is not None:
            self._retire(producer, failed)
            raise KafkaUnavailable(f"Kafka refused the records: {failed!r}") from failed

    async def ready(self) -> bool:
        try:
            async with asyncio.timeout(_READY_TIMEOUT_S):
                producer, _ = await self._current()
                node = producer.client.get_random_node()
                if node is None:
                    return False
                # An empty topic list asks for brokers only: cheap on any cluster.
                await producer.client.send(node, MetadataRequest([]))
        except (TimeoutError, KafkaError, KafkaUnavailable) as exc:
            log.debug("Kafka is not ready: %r", exc)
            return False
        return True

    async def _current(self) -> tuple[Any, Batcher]:
        """The live client and its batcher, starting new ones when there are none."""
        if self._producer is not None and self._batcher is not None:
            return self._producer, self._batcher
        async with self._lock:
            if self._producer is None or self._batcher is None:
                self._producer = await self._connect()
                self._batcher = Batcher(self._producer, self._settings.produce_linger_s)
            return self._producer, self._batcher

    async def _connect(self) -> Any:
        s = self._settings
        producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap,
            client_id="pulseline-gateway",
            acks="all",
            enable_idempotence=True,
            compression_type="zstd",
            linger_ms=0,  # the Batcher lingers before it hands a batch over
            max_batch_size=_MAX_BATCH_BYTES,
            max_request_size=s.max_event_bytes + _REQUEST_OVERHEAD_BYTES,
            request_timeout_ms=int(s.kafka_request_timeout_s * 1000),
        )
        try:
            await producer.start()
        except BaseException as exc:
            await _close(producer, 1.0)
            if isinstance(exc, KafkaError | OSError):
                raise KafkaUnavailable(f"cannot reach Kafka at {s.bootstrap}: {exc!r}") from exc
            raise
        log.info("Kafka producer connected to %s", s.bootstrap)
        return producer

    def _watch_late(self, futures: list[asyncio.Future[Any]], producer: Any) -> None:
        """Retire the client if records of a timed-out request fail later on.

        aiokafka fails a batch whose partition had no leader for ``request_timeout_ms``
        (a broker in controlled shutdown) after giving it a sequence number, so the
        client would answer every later batch with OutOfOrderSequenceNumber.
        """

        def on_done(future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and isinstance(future.exception(), KafkaError):
                self._retire(producer, future.exception() or KafkaError())

        for future in futures:
            if not future.done():
                future.add_done_callback(on_done)

    def _retire(self, producer: Any, error: BaseException) -> None:
        """Drop a client that failed with a Kafka error; the next send makes a new one."""
        if producer is None or producer is not self._producer:
            return
        log.warning("retiring the Kafka producer after %r; the next send starts a new one", error)
        self._producer = self._batcher = None
        task = asyncio.create_task(_close(producer, self._timeout_s))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)


async def _close(producer: Any, flush_timeout_s: float) -> None:
    """Stop a client, flushing for at most ``flush_timeout_s``, then abandon the rest.

    An idempotent aiokafka producer retries its batches forever, so ``stop()`` alone
    never returns while the broker is down. Records still pending belong to requests
    already answered 503; the clients retry them.
    """
    stopping = asyncio.ensure_future(producer.stop())
    done, _ = await asyncio.wait([stopping], timeout=flush_timeout_s)
    if done:
        with contextlib.suppress(Exception):
            stopping.result()
        return
    log.warning("Kafka producer did not flush within %gs; abandoning it", flush_timeout_s)
    # No public API gives up on pending batches. Stop the sender first (failing batches
    # under a running sender crashes it), then fail what is left so stop() can finish.
    sender_task = producer._sender.sender_task
    if sender_task is not None:
        sender_task.cancel()
        await asyncio.wait([sender_task], timeout=_ABANDON_STEP_S)
    accumulator = producer._message_accumulator
    # A batch the cancelled sender put back for a retry has left the pending set; failing
    # it runs a callback that removes it again: a KeyError on the loop (CI saw it).
    accumulator._pending_batches = _DiscardingSet(accumulator._pending_batches)
    for queue in accumulator._batches.values():
        for batch in queue:
            batch.drain_ready()  # else failing it leaves a drain waiter nobody retrieves
    accumulator.fail_all(ProducerClosed())
    done, _ = await asyncio.wait([stopping], timeout=_ABANDON_STEP_S)
    if done:
        with contextlib.suppress(Exception):
            stopping.result()
    else:
        stopping.cancel()


class _DiscardingSet(set[Any]):
    """The accumulator's pending batches, where removing one already gone is a no-op."""

    def remove(self, element: Any) -> None:
        self.discard(element)
