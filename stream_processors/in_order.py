"""Every agent's records, one partition at a time and in offset order (``logic.in_order``).

When Faust hands an agent a record past the one it expects, the records in between are
fetched with a plain consumer of our own (Faust's fetcher has read past them and would not
deliver them again) and handed to the agent first. Faust never saw those records, so they
are acknowledged to it here, once the record that revealed the gap has been acknowledged
by its stream: only then has the agent finished with all of them, and only acknowledged
offsets let Faust commit past the gap.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types.tuples import Message
from prometheus_client import Counter

from pulseline.settings import ProcessorSettings
from stream_processors.logic.in_order import Lane, Verdict, step, unfound

log = logging.getLogger("pulseline.processors")

NEW = Lane()
FETCH_TIMEOUT_S = 10.0
GAPS = Counter(
    "pulseline_processor_out_of_order_total",
    "Records an agent was handed past the offset it expected (a gap Faust left)",
    ["stage"],
)
REFETCHED = Counter(
    "pulseline_processor_refetched_total",
    "Records of such gaps fetched again and handed to the agent before the later record",
    ["stage"],
)
STALE = Counter(
    "pulseline_processor_stale_records_total",
    "Records of partitions revoked from this worker, handed on after the rebalance; dropped",
    ["stage"],
)
GAVE_UP = Counter(
    "pulseline_processor_gaps_given_up_total",
    "Records of a gap that could not be fetched again (gone by retention, or timed out)",
    ["stage"],
)

Fetch = Callable[[Any, range], Awaitable[list[Any]]]


@dataclass(frozen=True)
class Refetched:
    """A record fetched again, shaped like the Faust event agents read."""

    message: Message

    @property
    def key(self) -> bytes | None:
        return self.message.key

    @property
    def value(self) -> bytes | None:
        return self.message.value


class Refetcher:
    """One plain consumer per worker, outside any group: it reads given offsets only."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.consumer: AIOKafkaConsumer | None = None
        self.lock = asyncio.Lock()

    async def fetch(self, tp: Any, missing: range) -> list[Message]:
        async with self.lock:
            if self.consumer is None:
                consumer = AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    group_id=None,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                )
                await consumer.start()
                self.consumer = consumer
            return await asyncio.wait_for(self._read(self.consumer, tp, missing), FETCH_TIMEOUT_S)

    async def _read(self, consumer: AIOKafkaConsumer, tp: Any, missing: range) -> list[Message]:
        ktp = TopicPartition(tp.topic, tp.partition)
        consumer.assign([ktp])
        consumer.seek(ktp, missing.start)
        out: list[Message] = []
        while await consumer.position(ktp) < missing.stop:
            batch = await consumer.getmany(ktp, timeout_ms=500, max_records=len(missing))
            out += [message(tp, r) for r in batch.get(ktp, []) if r.offset in missing]
        return out

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None


def message(tp: Any, record: Any) -> Message:
    return Message(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp / 1000.0,
        record.timestamp_type,
        record.headers,
        record.key,
        record.value,
        record.checksum,
        record.serialized_key_size,
        record.serialized_value_size,
        tp=tp,
    )


_REFETCHERS: weakref.WeakKeyDictionary[Any, Refetcher] = weakref.WeakKeyDictionary()
_GATES: weakref.WeakSet[InOrder] = weakref.WeakSet()


def install(app: faust.App, settings: ProcessorSettings) -> None:
    refetcher = _REFETCHERS[app] = Refetcher(settings.bootstrap)

    @app.timer(1.0, name="in_order_settle")  # type: ignore[untyped-decorator]
    async def settle() -> None:
        for gate in list(_GATES):
            if gate.app is app:
                gate.settle()

    async def close(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        await refetcher.stop()

    app.on_before_shutdown.connect(close)


class InOrder:
    def __init__(
        self,
        app: faust.App,
        stage: str,
        committed: Callable[[Any], Awaitable[int | None]] | None = None,
        fetch: Fetch | None = None,
    ) -> None:
        self.app = app
        self.stage = stage
        self.committed = committed or partial(group_start, app)
        self.fetch = fetch or _REFETCHERS[app].fetch
        self.lanes: dict[Any, Lane] = {}
        self.pending: list[tuple[Any, list[Message]]] = []
        self.owned: frozenset[Any] | None = None
        app.on_partitions_assigned.connect(self._reassigned)
        _GATES.add(self)

    def _reassigned(self, sender: Any, /, *args: Any, **kwargs: Any) -> None:
        self.owned = frozenset(args[0]) if args else None
        self.lanes.clear()
        self.pending.clear()

    async def events(self, stream: Any) -> AsyncIterator[Any]:
        """The stream's events in order; Faust acks a handed event once the agent asks for
        the next, so after the records of its gap have been handled too."""
        async for handed in stream.events():
            for event in await self.admit(handed):
                yield event

    async def admitted(self, handed: Sequence[Any]) -> list[Any]:
        """A batch (``take_events``) in order, with the records of any gap in it."""
        return [event for one in handed for event in await self.admit(one)]

    async def admit(self, event: Any) -> list[Any]:
        """The events to handle, in order: the records of a gap before it first, then it."""
        if self.pending:
            self.settle()
        message = event.message
        tp = message.tp
        if self.owned is not None and tp not in self.owned:
            # Fetched before the rebalance: the partition's new owner takes it from the
            # group's commit. Marked acked so it stays out of Faust's acked offsets, which
            # would decide a later commit should the partition come back.
            STALE.labels(self.stage).inc()
            message.acked = True
            return []
        lane = self.lanes.get(tp, NEW)
        if lane.expect == message.offset:  # the usual case, as step() would; kept cheap
            self.lanes[tp] = Lane(message.offset + 1)
            return [event]
        start = None if lane.expect is not None else await self._start(tp)
        decided = step(lane, message.offset, start)
        self.lanes[tp] = decided.lane
        if decided.verdict is Verdict.TAKE:
            return [event]
        found = await self._fill(tp, decided.missing)
        if found:
            self.pending.append((message, found))
        return [*(Refetched(m) for m in found), event]

    def settle(self) -> None:
        """Acknowledge to Faust the refetched records whose gap's record it has acked."""
        waiting = []
        for trigger, found in self.pending:
            if trigger.acked:
                for m in found:
                    self.app.consumer.ack(m)
            else:
                waiting.append((trigger, found))
        self.pending = waiting

    async def _fill(self, tp: Any, missing: range) -> list[Message]:
        GAPS.labels(self.stage).inc()
        began = time.monotonic()
        try:
            found = await self.fetch(tp, missing)
        except Exception as exc:
            log.error(
                "%s: cannot fetch %s[%s] %s: %r",
                self.stage,
                tp.topic,
                tp.partition,
                _span(missing),
                exc,
            )
            found = []
        lost = unfound(missing, [m.offset for m in found])
        REFETCHED.labels(self.stage).inc(len(found))
        if lost:
            GAVE_UP.labels(self.stage).inc(sum(len(r) for r in lost))
            log.error(
                "%s: %s[%s] offsets %s could not be fetched again",
                self.stage,
                tp.topic,
                tp.partition,
                ", ".join(_span(r) for r in lost),
            )
        log.warning(
            "%s: %s[%s] skipped %s; fetched %d records again in %.0f ms",
            self.stage,
            tp.topic,
            tp.partition,
            _span(missing),
            len(found),
            (time.monotonic() - began) * 1000,
        )
        return found

    async def _start(self, tp: Any) -> int | None:
        """Where a new lane begins: the group's commit, or the log's start for a partition
        the group never committed. When that cannot be asked, the lane takes what comes."""
        try:
            return await self.committed(tp)
        except Exception as exc:  # revoked meanwhile: take what comes; the lane resets
            log.warning("%s: no start for %s[%s]: %r", self.stage, tp.topic, tp.partition, exc)
            return None


def _span(r: range) -> str:
    return f"{r.start}..{r.stop - 1}"


async def group_start(app: faust.App, tp: Any) -> int:
    """Where the group resumes ``tp``, asked of Kafka: its committed offset or, if it never
    committed one, the log's start (``auto_offset_reset=earliest``). Faust's own copy is
    filled in only after the stream partitions are resumed, so the first records can come
    before it; and a partition new to the group can be handed first a record past its
    start (a join/leave run lost the first deltas of every source this way), so "no commit"
    must not mean "take what comes"."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    client = thread._ensure_consumer()
    ktp = TopicPartition(tp.topic, tp.partition)
    offset = await thread.call_thread(client.committed, ktp)
    if offset is not None:
        return int(offset)
    starts = await thread.call_thread(client.beginning_offsets, [ktp])
    return int(starts[ktp])
