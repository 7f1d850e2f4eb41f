"""Materialise ``control.entities`` into a ``ControlView`` and write changes to it.

``start`` reads the topic from the beginning to its current end before returning, so a
started store holds the whole configuration; a background task then tails the topic.
``put``/``delete`` return only once this store's own view has applied the write
(read-your-writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from pulseline.control.entities import ControlRecord, Entity, EntityType, record_key, type_of
from pulseline.control.view import ControlView
from pulseline.settings import CommonSettings
from pulseline.topics import CONTROL

log = logging.getLogger("pulseline.control")


class ControlStoreError(Exception):
    """The control topic could not be read or written in time."""


class ControlStore:
    def __init__(self, settings: CommonSettings, view: ControlView | None = None) -> None:
        self.settings = settings
        self.topic = CONTROL.physical(settings.topic_prefix)
        self.view = view or ControlView()
        self.loaded = False
        self._tp = TopicPartition(self.topic, 0)
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._tail: asyncio.Task[None] | None = None
        self._applied = asyncio.Condition()

    async def start(self, timeout_s: float = 30.0) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            request_timeout_ms=int(self.settings.kafka_request_timeout_s * 1000),
        )
        try:
            async with asyncio.timeout(timeout_s):
                await consumer.start()
                consumer.assign([self._tp])
                await consumer.seek_to_beginning(self._tp)
                end = (await consumer.end_offsets([self._tp]))[self._tp]
                while await consumer.position(self._tp) < end:
                    await self._apply_batch(consumer, 200)
        except (TimeoutError, KafkaError) as exc:
            await consumer.stop()
            why = f"in {timeout_s:g}s" if isinstance(exc, TimeoutError) else f"({exc})"
            raise ControlStoreError(
                f"could not read {self.topic} from {self.settings.bootstrap} {why}"
            ) from None
        self._consumer = consumer
        self.loaded = True
        self._tail = asyncio.create_task(self._follow(), name="control-tail")

    async def _apply_batch(self, consumer: AIOKafkaConsumer, wait_ms: int) -> None:
        batch = await consumer.getmany(self._tp, timeout_ms=wait_ms)
        records = batch.get(self._tp, [])
        if not records:
            return
        async with self._applied:
            for record in records:
                self.view.apply(record.key or b"", record.value, record.offset)
            self._applied.notify_all()

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                await self._apply_batch(self._consumer, 100)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading %s failed; retrying", self.topic)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._tail is not None:
            self._tail.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tail
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()

    async def _writer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.settings.bootstrap, acks="all", enable_idempotence=True
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def put(self, entity: Entity, timeout_s: float = 10.0) -> None:
        kind = type_of(entity)
        record = ControlRecord(
            type=kind,
            id=str(entity.id),
            data=entity.model_dump(mode="json"),
            updated_at=datetime.now(UTC),
        )
        await self._write(
            record_key(kind, entity.id), orjson.dumps(record.model_dump(mode="json")), timeout_s
        )

    async def delete(self, kind: EntityType, entity_id: str | int, timeout_s: float = 10.0) -> None:
        await self._write(record_key(kind, entity_id), None, timeout_s)

    async def _write(self, key: str, value: bytes | None, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                producer = await self._writer()
                meta = await producer.send_and_wait(
                    self.topic, key=key.encode(), value=value, partition=0
                )
                async with self._applied:
                    await self._applied.wait_for(lambda: self.view.offset >= meta.offset)
        except TimeoutError:
            raise ControlStoreError(
                f"the write of {key} was not confirmed in {timeout_s:g}s"
            ) from None
