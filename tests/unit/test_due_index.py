from datetime import UTC, datetime, timedelta

import pytest

from stream_processors.logic.due_index import DueIndex

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("steps", "now", "due"),
    [
        ([("a", 5), ("b", 1), ("c", 3)], 3, ["b", "c"]),
        ([("a", 5), ("b", 1)], 0, []),
        ([("a", 1), ("a", 10)], 5, []),
        ([("a", 10), ("a", 1)], 5, ["a"]),
        ([("a", 1), ("a", None)], 5, []),
        ([("a", 1), ("a", None), ("a", 2)], 5, ["a"]),
        ([("a", 2), ("b", 2)], 2, ["a", "b"]),
    ],
)
def test_pop_due_returns_exactly_the_keys_due_by_now_earliest_first(
    steps: list[tuple[str, int | None]], now: int, due: list[str]
) -> None:
    index = DueIndex()
    for key, minutes in steps:
        index.schedule(key, None if minutes is None else _at(minutes))
    assert index.pop_due(_at(now)) == due


def test_popped_keys_are_unscheduled_until_scheduled_again() -> None:
    index = DueIndex()
    index.schedule("a", _at(1))
    assert index.pop_due(_at(1)) == ["a"]
    assert "a" not in index and index.pop_due(_at(100)) == []
    index.schedule("a", _at(101))
    assert index.pop_due(_at(101)) == ["a"]


def test_removing_a_key_keeps_the_others() -> None:
    index = DueIndex()
    index.schedule("a", _at(1))
    index.schedule("b", _at(2))
    index.remove("a")
    index.remove("never-scheduled")
    assert len(index) == 1 and index.next_due() == _at(2)
    assert index.pop_due(_at(5)) == ["b"]


def test_only_the_due_monitors_are_touched_among_many() -> None:
    index = DueIndex()
    for i in range(10_000):
        index.schedule(f"m{i}", _at(60 + i))
    for i in range(3):
        index.schedule(f"early{i}", _at(i))
    assert index.pop_due(_at(10)) == ["early0", "early1", "early2"]
    assert index.touched == 3


def test_rescheduled_entries_cost_one_touch_each_when_they_surface() -> None:
    index = DueIndex()
    for i in range(1_000):
        index.schedule(f"m{i}", _at(1_000))
    index.schedule("m0", _at(1))
    index.schedule("m0", _at(2))
    assert index.pop_due(_at(5)) == ["m0"]
    assert index.touched == 2


def test_the_heap_stays_bounded_under_endless_rescheduling() -> None:
    index = DueIndex()
    for minute in range(10_000):
        index.schedule("a", _at(minute))
        index.schedule("b", _at(minute))
    assert len(index._heap) <= 2 * len(index) + 1
    assert index.pop_due(_at(20_000)) == ["a", "b"]


def test_an_index_rebuilt_from_states_resumes_with_what_fell_due_meanwhile() -> None:
    states = {"a": _at(1), "b": _at(30), "paused": None, "c": _at(5)}
    index = DueIndex.from_states(states.items())
    assert len(index) == 3 and "paused" not in index
    assert index.pop_due(_at(10)) == ["a", "c"]
    assert index.due_at("b") == _at(30)
