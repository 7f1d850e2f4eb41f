"""The real sink on a thread of its own, storing into the embedded engine while a fault
test's stream runs; ``live_storage`` opens the engine around it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from aiokafka import TopicPartition

from pulseline.settings import StorageSettings
from storage.client import Engine
from storage.metrics import StorageMetrics
from storage.migrate import migrate
from storage.sink import Sink


class LiveSink:
    """Stores while the stream runs: a batch and its retried copy then land in different
    inserts, so only ``FINAL`` can fold them."""

    def __init__(self, settings: StorageSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.ends: dict[TopicPartition, int] | None = None  # set once the stream is over
        self.caught_up = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sink", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
            self.caught_up.set()  # wake the waiter; it checks ``error``

    async def _main(self) -> None:
        sink = Sink(self.settings, self.engine, StorageMetrics())
        await sink.start()
        task = asyncio.create_task(sink.run())
        try:
            while not self.stop.is_set():
                ends = self.ends
                if ends is not None and not self.caught_up.is_set():
                    # The sink commits a partition's offsets only after ClickHouse has the rows.
                    committed = [await sink.consumer.committed(tp) or 0 for tp in ends]
                    if all(c >= end for c, end in zip(committed, ends.values(), strict=True)):
                        self.caught_up.set()
                await asyncio.sleep(0.2)
        finally:
            await sink.stop()
            await task
            await sink.close()


@contextmanager
def live_storage(
    settings: StorageSettings, unmerged: Sequence[str] = ("events",)
) -> Iterator[tuple[Engine, LiveSink]]:
    """A migrated engine with merges stopped on ``unmerged`` (so only the read, FINAL, may
    fold copies) and a running ``LiveSink``; stopped and closed after, and a sink that
    failed fails the test."""
    engine = Engine.open(settings)
    migrate(engine)
    for table in unmerged:
        engine.call(engine.client.command, f"SYSTEM STOP MERGES {engine.database}.{table}")
    live = LiveSink(settings, engine)
    live.thread.start()
    try:
        yield engine, live
    finally:
        live.stop.set()
        live.thread.join(30)
        engine.close()
    assert live.error is None, live.error
