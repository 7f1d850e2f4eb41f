import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition

from stream_processors.in_order import InOrder, group_start
from stream_processors.logic.in_order import Lane, Step, Verdict, step, unfound

T, F = Verdict.TAKE, Verdict.FILL


@pytest.mark.parametrize(
    ("lane", "offset", "start", "expected"),
    [
        (Lane(), 7, None, Step(T, Lane(8))),
        (Lane(), 7, 7, Step(T, Lane(8))),
        (Lane(), 5, 7, Step(T, Lane(6))),
        (Lane(), 9, 7, Step(F, Lane(10), range(7, 9))),
        (Lane(8), 8, None, Step(T, Lane(9))),
        (Lane(8), 3, None, Step(T, Lane(4))),
        (Lane(8), 12, None, Step(F, Lane(13), range(8, 12))),
        (Lane(8), 12, 0, Step(F, Lane(13), range(8, 12))),
        (Lane(8), 9, None, Step(F, Lane(10), range(8, 9))),
    ],
    ids=[
        "new-lane-no-commit",
        "new-lane-at-commit",
        "new-lane-before-commit",
        "new-lane-past-commit",
        "in-order",
        "redelivery",
        "jump",
        "lane-beats-start",
        "one-missing",
    ],
)
def test_step(lane: Lane, offset: int, start: int | None, expected: Step) -> None:
    assert step(lane, offset, start) == expected


@pytest.mark.parametrize(
    ("missing", "found", "runs"),
    [
        (range(5, 10), [5, 6, 7, 8, 9], []),
        (range(5, 10), [], [range(5, 10)]),
        (range(5, 10), [7, 8, 9], [range(5, 7)]),
        (range(5, 10), [5, 9], [range(6, 9)]),
        (range(5, 10), [6, 8], [range(5, 6), range(7, 8), range(9, 10)]),
    ],
)
def test_unfound(missing: range, found: list[int], runs: list[range]) -> None:
    assert unfound(missing, found) == runs


def test_a_jump_is_filled_and_each_offset_taken_once_in_order() -> None:
    # What Faust did after a rebalance: 103..110 dropped from the queue, 111.. handed on.
    lane, taken = Lane(101), []
    for offset in [101, 102, 111, 112, 113]:
        decided = step(lane, offset, None)
        lane = decided.lane
        taken += [*decided.missing, offset]
    assert taken == list(range(101, 114))


@dataclass
class TP:
    topic: str
    partition: int

    def __hash__(self) -> int:
        return hash((self.topic, self.partition))


@dataclass
class Message:
    tp: TP
    offset: int
    acked: bool = False


@dataclass
class Event:
    message: Message


@dataclass
class Consumer:
    acked: list[int] = field(default_factory=list)

    def ack(self, message: Any) -> bool:
        message.acked = True
        self.acked.append(message.offset)
        return True


class Signal:
    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, fn: Any) -> Any:
        self.receivers.append(fn)
        return fn


class App:
    def __init__(self) -> None:
        self.consumer = Consumer()
        self.on_partitions_assigned = Signal()


class Log:
    """A partition's records from ``first`` on; fetches are recorded."""

    def __init__(self, first: int = 0) -> None:
        self.first = first
        self.fetches: list[range] = []

    async def fetch(self, tp: TP, missing: range) -> list[Message]:
        self.fetches.append(missing)
        return [Message(tp, o) for o in missing if o >= self.first]


def gate_for(committed: dict[TP, int], log: Log) -> tuple[InOrder, App]:
    app = App()

    async def group_committed(tp: TP) -> int | None:
        return committed.get(tp)

    return InOrder(app, "route", group_committed, log.fetch), app  # type: ignore[arg-type]


def offsets(events: list[Any]) -> list[int]:
    return [e.message.offset for e in events]


def test_a_gap_is_fetched_and_handed_on_first_and_acked_only_after_its_record() -> None:
    tp = TP("ingest.event", 3)
    log = Log()
    gate, app = gate_for({tp: 103}, log)

    async def run() -> None:
        first = Event(Message(tp, 103))
        assert offsets(await gate.admit(first)) == [103]
        later = Event(Message(tp, 107))
        assert offsets(await gate.admit(later)) == [104, 105, 106, 107]
        assert log.fetches == [range(104, 107)]
        gate.settle()
        assert app.consumer.acked == []  # the agent has not finished with 107 yet
        later.message.acked = True  # its stream acks 107
        assert offsets(await gate.admit(Event(Message(tp, 108)))) == [108]
        assert app.consumer.acked == [104, 105, 106]
        gate.settle()
        assert app.consumer.acked == [104, 105, 106]

    asyncio.run(run())


def test_a_new_lane_starts_from_the_commit_and_afresh_after_a_rebalance() -> None:
    tp = TP("ingest.event", 3)
    committed = {tp: 100}
    log = Log()
    gate, app = gate_for(committed, log)
    assert offsets(asyncio.run(gate.admit(Event(Message(tp, 102))))) == [100, 101, 102]
    for receiver in app.on_partitions_assigned.receivers:
        receiver(app, {tp})
    committed[tp] = 300
    assert offsets(asyncio.run(gate.admit(Event(Message(tp, 300))))) == [300]
    assert log.fetches == [range(100, 102)]


def test_records_gone_by_retention_are_counted_and_the_rest_handed_on() -> None:
    tp = TP("ingest.event", 0)
    log = Log(first=50)
    gate, _ = gate_for({tp: 10}, log)
    assert offsets(asyncio.run(gate.admit(Event(Message(tp, 52))))) == [50, 51, 52]


def test_a_failed_fetch_hands_on_the_record_in_hand() -> None:
    tp = TP("by_series", 0)
    app = App()

    async def committed(tp: TP) -> int | None:
        return 0

    async def broken(tp: TP, missing: range) -> list[Message]:
        raise TimeoutError

    gate = InOrder(app, "fold", committed, broken)  # type: ignore[arg-type]
    assert offsets(asyncio.run(gate.admit(Event(Message(tp, 8))))) == [8]
    assert offsets(asyncio.run(gate.admit(Event(Message(tp, 9))))) == [9]


def test_when_the_start_cannot_be_known_a_new_lane_takes_the_first_record() -> None:
    tp = TP("ingest.metric", 1)
    log = Log()
    gate, _ = gate_for({}, log)
    assert offsets(asyncio.run(gate.admit(Event(Message(tp, 8))))) == [8]
    assert log.fetches == []


def test_a_record_of_a_partition_revoked_from_this_worker_is_dropped_unacked() -> None:
    kept, moved = TP("ingest.event", 0), TP("ingest.event", 1)
    log = Log()
    gate, app = gate_for({kept: 5, moved: 5}, log)
    for receiver in app.on_partitions_assigned.receivers:
        receiver(app, {kept})
    stale = Event(Message(moved, 9))
    assert asyncio.run(gate.admit(stale)) == []
    assert stale.message.acked  # so its stream's ack does not reach Faust's acked offsets
    assert app.consumer.acked == []
    assert offsets(asyncio.run(gate.admit(Event(Message(kept, 5))))) == [5]
    assert log.fetches == []


class Stream:
    def __init__(self, events: list[Event]) -> None:
        self.handed = events

    async def events(self) -> Any:
        for event in self.handed:
            yield event


def test_an_agent_reads_the_stream_and_its_batches_with_the_gaps_filled() -> None:
    tp = TP("ingest.event", 2)
    log = Log()
    gate, _ = gate_for({tp: 10}, log)

    async def read(stream: Stream) -> list[int]:
        return [event.message.offset async for event in gate.events(stream)]

    handed = [Event(Message(tp, o)) for o in (10, 13, 14)]
    assert asyncio.run(read(Stream(handed))) == [10, 11, 12, 13, 14]
    batch = [Event(Message(tp, o)) for o in (15, 17)]
    assert offsets(asyncio.run(gate.admitted(batch))) == [15, 16, 17]
    assert log.fetches == [range(11, 13), range(16, 17)]


class Client:
    def __init__(self, committed: int | None, start: int) -> None:
        self.committed_offset, self.start = committed, start

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offset

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.start for tp in tps}


class ConsumerThread:
    def __init__(self, client: Client) -> None:
        self.client = client

    def _ensure_consumer(self) -> Client:
        return self.client

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return await fun(*args)


@pytest.mark.parametrize(
    ("committed", "start", "expected"),
    [(120, 40, 120), (None, 40, 40), (None, 0, 0), (0, 40, 0)],
    ids=["committed", "never-committed-log-start", "never-committed-empty-start", "commit-0"],
)
def test_a_lane_starts_at_the_commit_or_else_at_the_logs_start(
    committed: int | None, start: int, expected: int
) -> None:
    app = App()
    app.consumer._thread = ConsumerThread(Client(committed, start))  # type: ignore[attr-defined]
    assert asyncio.run(group_start(app, TP("by_project", 2))) == expected  # type: ignore[arg-type]
