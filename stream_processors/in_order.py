"""Every agent's records, one partition at a time and in offset order (``logic.in_order``).

A dropped record must not count as handled, or Faust would commit past it before it comes
again: marking its message acked first keeps its offset out of Faust's acked list (which
alone decides what is committed) and out of the set a rebalance waits for. The seek goes
through the worker's consumer, so the records from the expected offset on are fetched anew.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import faust
from aiokafka import TopicPartition
from prometheus_client import Counter

from stream_processors.logic.in_order import Lane, Verdict, step

log = logging.getLogger("pulseline.processors")

NEW = Lane()
GIVE_UP_S = 3.0
OUT_OF_ORDER = Counter(
    "pulseline_processor_out_of_order_total",
    "Records an agent was handed past the offset it expected; the partition was sought back",
    ["stage"],
)
GAVE_UP = Counter(
    "pulseline_processor_gaps_given_up_total",
    "Seeks back that Faust never honoured; the agent went on and the records between are lost",
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
        self.sought_at: dict[Any, float] = {}
        app.on_partitions_assigned.connect(self._reassigned)

    def _reassigned(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        self.lanes.clear()
        self.sought_at.clear()

    async def admit(self, event: Any) -> bool:
        """True: handle the event. False: it was dropped and will be delivered again."""
        message = event.message
        tp = message.tp
        lane = self.lanes.get(tp, NEW)
        if lane.expect == message.offset:  # the usual case, as step() would; kept cheap
            self.lanes[tp] = Lane(message.offset + 1)
            return True
        start = None if lane.expect is not None else await self._start(tp)
        verdict, lane = step(lane, message.offset, start)
        if verdict is Verdict.DROP and time.monotonic() - self.sought_at.get(tp, 0.0) > GIVE_UP_S:
            # The seek did not take (Faust's fetcher can ignore it): a stuck partition is
            # worse than the gap, so take what comes, and say so.
            GAVE_UP.labels(self.stage).inc()
            log.error(
                "%s: %s[%s] never re-delivered offset %s; going on from %s (records between lost)",
                self.stage,
                tp.topic,
                tp.partition,
                lane.expect,
                message.offset,
            )
            verdict, lane = Verdict.TAKE, Lane(message.offset + 1)
        if verdict is Verdict.SEEK or (verdict is Verdict.DROP and self._read_past(tp, lane)):
            verdict, lane = await self._seek_back(tp, message.offset, lane)
        self.lanes[tp] = lane
        if verdict is Verdict.TAKE:
            return True
        message.acked = True
        return False

    def _read_past(self, tp: Any, lane: Lane) -> bool:
        """Whether Faust's fetch loop, still handing on records fetched before the seek, has
        moved its read offset past the one sought: it would then drop the refetched records
        as already read, so the seek must be made again."""
        read = self.app.consumer._read_offset.get(tp)  # type: ignore[attr-defined]
        return read is not None and lane.expect is not None and read > lane.expect

    async def _seek_back(self, tp: Any, offset: int, lane: Lane) -> tuple[Verdict, Lane]:
        assert lane.expect is not None
        try:
            earliest = await self._earliest(tp)
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
            await self.app.consumer.seek_wait({tp: lane.expect})
            self.sought_at[tp] = time.monotonic()
        except Exception as exc:  # revoked meanwhile: the next assignment starts afresh
            log.warning("%s: cannot seek %s[%s]: %r", self.stage, tp.topic, tp.partition, exc)
            self.sought_at[tp] = time.monotonic()
            return Verdict.SEEK, lane
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
        """Where a new lane begins: the group's commit. Without one the lane takes what comes
        first (a new group starts at the log's start anyway)."""
        try:
            return await self.committed(tp)
        except Exception as exc:  # revoked meanwhile: take what comes; the lane resets
            log.warning("%s: no start for %s[%s]: %r", self.stage, tp.topic, tp.partition, exc)
            return None

    async def _earliest(self, tp: Any) -> int | None:
        earliest = (await self.app.consumer.earliest_offsets(tp)).get(tp)
        return None if earliest is None else int(earliest)


async def group_committed(app: faust.App, tp: Any) -> int | None:
    """The group's committed offset, asked of Kafka: Faust's own copy is filled in only
    after the stream partitions are resumed, so the first records can come before it."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    client = thread._ensure_consumer()
    offset = await thread.call_thread(client.committed, TopicPartition(tp.topic, tp.partition))
    return None if offset is None else int(offset)
