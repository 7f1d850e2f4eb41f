"""Every agent's records, one partition at a time and in offset order (``logic.in_order``).

A dropped record must not count as handled, or Faust would commit past it before it comes
again: marking its message acked first keeps its offset out of Faust's acked list (which
alone decides what is committed) and out of the set a rebalance waits for. The seek goes
through the worker's consumer, so the records from the expected offset on are fetched anew.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import faust
from aiokafka import TopicPartition
from prometheus_client import Counter

from stream_processors.logic.in_order import Lane, Verdict, step

log = logging.getLogger("pulseline.processors")

OUT_OF_ORDER = Counter(
    "pulseline_processor_out_of_order_total",
    "Records an agent was handed past the offset it expected; the partition was sought back",
    ["stage"],
)


class InOrder:
    def __init__(
        self,
        app: faust.App,
        stage: str,
        committed: Callable[[Any], Awaitable[int | None]] | None = None,
    ) -> None:
        self.app = app
        self.stage = stage
        self.committed = committed or partial(group_committed, app)
        self.lanes: dict[Any, Lane] = {}
        app.on_partitions_assigned.connect(self._reassigned)

    def _reassigned(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        self.lanes.clear()

    async def admit(self, event: Any) -> bool:
        """True: handle the event. False: it was dropped and will be delivered again."""
        message = event.message
        tp = message.tp
        lane = self.lanes.get(tp, Lane())
        start = None if lane.expect is not None else await self._start(tp)
        verdict, lane = step(lane, message.offset, start)
        if verdict is Verdict.SEEK:
            verdict, lane = await self._seek_back(tp, message.offset, lane)
        self.lanes[tp] = lane
        if verdict is Verdict.TAKE:
            return True
        message.acked = True
        return False

    async def _seek_back(self, tp: Any, offset: int, lane: Lane) -> tuple[Verdict, Lane]:
        consumer = self.app.consumer
        assert lane.expect is not None
        try:
            earliest = (await consumer.earliest_offsets(tp)).get(tp)
            if earliest is not None and earliest > lane.expect:
                log.warning(
                    "%s: %s[%s] starts at %s now, past the expected %s (retention)",
                    self.stage,
                    tp.topic,
                    tp.partition,
                    earliest,
                    lane.expect,
                )
                return Verdict.TAKE, Lane(offset + 1)
            # In the consumer's own thread: a seek from here raced its fetcher (KeyError).
            await consumer.seek_wait({tp: lane.expect})
        except Exception as exc:  # revoked meanwhile: the next assignment starts afresh
            log.warning("%s: cannot seek %s[%s]: %r", self.stage, tp.topic, tp.partition, exc)
        OUT_OF_ORDER.labels(self.stage).inc()
        log.warning(
            "%s: %s[%s] handed offset %s while expecting %s; sought back",
            self.stage,
            tp.topic,
            tp.partition,
            offset,
            lane.expect,
        )
        return Verdict.SEEK, lane

    async def _start(self, tp: Any) -> int | None:
        try:
            committed = await self.committed(tp)
            if committed is not None:
                return committed
            earliest = (await self.app.consumer.earliest_offsets(tp)).get(tp)
        except Exception as exc:  # revoked meanwhile: take what comes; the lane resets
            log.warning("%s: no start for %s[%s]: %r", self.stage, tp.topic, tp.partition, exc)
            return None
        return None if earliest is None else int(earliest)


async def group_committed(app: faust.App, tp: Any) -> int | None:
    """The group's committed offset, asked of Kafka: Faust's own copy is filled in only
    after the stream partitions are resumed, so the first records can come before it."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    client = thread._ensure_consumer()
    offset = await thread.call_thread(client.committed, TopicPartition(tp.topic, tp.partition))
    return None if offset is None else int(offset)
