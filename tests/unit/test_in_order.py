import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from stream_processors.in_order import InOrder
from stream_processors.logic.in_order import Lane, Verdict, step

T, S, D = Verdict.TAKE, Verdict.SEEK, Verdict.DROP


@pytest.mark.parametrize(
    ("lane", "offset", "start", "verdict", "after"),
    [
        (Lane(), 7, None, T, Lane(8)),
        (Lane(), 7, 7, T, Lane(8)),
        (Lane(), 5, 7, T, Lane(6)),
        (Lane(), 9, 7, S, Lane(7, seeking=True)),
        (Lane(8), 8, None, T, Lane(9)),
        (Lane(8), 3, None, T, Lane(4)),
        (Lane(8), 12, None, S, Lane(8, seeking=True)),
        (Lane(8, seeking=True), 13, None, D, Lane(8, seeking=True)),
        (Lane(8, seeking=True), 8, None, T, Lane(9)),
        (Lane(8), 12, 0, S, Lane(8, seeking=True)),
    ],
    ids=[
        "new-lane-no-commit",
        "new-lane-at-commit",
        "new-lane-before-commit",
        "new-lane-past-commit",
        "in-order",
        "redelivery",
        "jump",
        "while-seeking",
        "seek-arrives",
        "lane-beats-start",
    ],
)
def test_step(lane: Lane, offset: int, start: int | None, verdict: Verdict, after: Lane) -> None:
    assert step(lane, offset, start) == (verdict, after)


def test_a_jump_is_sought_back_and_each_offset_taken_once_in_order() -> None:
    # What Faust did after a rebalance: 103..110 dropped from the queue, 111.. handed on.
    handed = [101, 102, 111, 112, 113, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113]
    lane, taken, seeks = Lane(101), [], 0
    for offset in handed:
        verdict, lane = step(lane, offset, None)
        seeks += verdict is S
        if verdict is T:
            taken.append(offset)
    assert taken == list(range(101, 114))
    assert seeks == 1


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
    committed: dict[TP, int]
    earliest: int = 0
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    _read_offset: dict[TP, int] = field(default_factory=dict)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest for tp in tps}

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.extend(partitions.items())
        self._read_offset.update(partitions)


class Signal:
    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, fn: Any) -> Any:
        self.receivers.append(fn)
        return fn


class App:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.on_partitions_assigned = Signal()


def test_the_gate_seeks_drops_without_acking_and_starts_afresh_after_a_rebalance() -> None:
    tp = TP("ingest.event", 3)
    consumer = Consumer({tp: 103})
    app = App(consumer)

    async def committed(tp: TP) -> int | None:
        return consumer.committed.get(tp)

    gate = InOrder(app, "route", committed)  # type: ignore[arg-type]

    async def run(offsets: list[int]) -> list[tuple[int, bool, bool]]:
        out = []
        for offset in offsets:
            event = Event(Message(tp, offset))
            out.append((offset, await gate.admit(event), event.message.acked))
        return out

    first = asyncio.run(run([111, 112, 103, 104]))
    assert first == [(111, False, True), (112, False, True), (103, True, False), (104, True, False)]
    assert consumer.seeks == [(tp, 103)]
    for receiver in app.on_partitions_assigned.receivers:
        receiver(app, set())
    consumer.committed[tp] = 300
    assert asyncio.run(run([300])) == [(300, True, False)]


def test_a_log_that_starts_past_the_expected_offset_is_taken_from_its_start() -> None:
    tp = TP("ingest.event", 0)
    consumer = Consumer({}, earliest=50)

    async def committed(tp: TP) -> int | None:
        return 10

    gate = InOrder(App(consumer), "route", committed)  # type: ignore[arg-type]
    event = Event(Message(tp, 50))
    assert asyncio.run(gate.admit(event)) is True
    assert consumer.seeks == []


def test_a_seek_never_honoured_is_given_up_after_a_while_rather_than_stall() -> None:
    tp = TP("by_series", 0)
    consumer = Consumer({tp: 0})

    async def committed(tp: TP) -> int | None:
        return consumer.committed.get(tp)

    gate = InOrder(App(consumer), "fold", committed)  # type: ignore[arg-type]

    async def admit(offset: int) -> bool:
        return await gate.admit(Event(Message(tp, offset)))

    assert asyncio.run(admit(8)) is False  # sought back to 0
    assert asyncio.run(admit(9)) is False  # still waiting for 0
    gate.sought_at[tp] -= 10  # the seek is older than GIVE_UP_S; 0 never came
    assert asyncio.run(admit(9)) is True
    assert asyncio.run(admit(10)) is True
    assert consumer.seeks == [(tp, 0)]


def test_without_a_commit_a_new_lane_takes_the_first_record() -> None:
    tp = TP("ingest.metric", 1)
    consumer = Consumer({})

    async def committed(tp: TP) -> int | None:
        return None

    gate = InOrder(App(consumer), "route", committed)  # type: ignore[arg-type]
    assert asyncio.run(gate.admit(Event(Message(tp, 8)))) is True
    assert consumer.seeks == []


def test_a_seek_the_fetch_loop_read_past_is_made_again() -> None:
    tp = TP("ingest.event", 4)
    consumer = Consumer({tp: 167})

    async def committed(tp: TP) -> int | None:
        return consumer.committed.get(tp)

    gate = InOrder(App(consumer), "route", committed)  # type: ignore[arg-type]

    async def admit(offset: int) -> bool:
        return await gate.admit(Event(Message(tp, offset)))

    assert asyncio.run(admit(216)) is False
    assert asyncio.run(admit(217)) is False  # Faust's read offset is still the sought 167
    consumer._read_offset[tp] = 230  # the fetch loop went on handing records fetched before
    assert asyncio.run(admit(218)) is False
    assert consumer.seeks == [(tp, 167), (tp, 167)]
    assert asyncio.run(admit(167)) is True
