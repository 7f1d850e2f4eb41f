import json

import pytest

from stream_processors.logic.hll import HyperLogLog


@pytest.mark.parametrize("n", [0, 1, 5, 50, 1_000, 20_000])
def test_the_count_is_within_four_standard_errors(n: int) -> None:
    sketch = HyperLogLog()
    for i in range(n):
        sketch.add(f"user-{i}")
    assert abs(sketch.count() - n) <= max(1, 4 * 0.0325 * n)


def test_small_counts_are_exact() -> None:
    sketch = HyperLogLog()
    for name in ["ada", "bob", "cy", "dee", "eve"]:
        sketch.add(name)
    assert sketch.count() == 5


def test_adding_the_same_value_again_changes_nothing() -> None:
    sketch = HyperLogLog()
    assert sketch.add("ada") is True
    assert sketch.add("ada") is False
    assert sketch.count() == 1


def test_merging_counts_the_union() -> None:
    left, right = HyperLogLog(), HyperLogLog()
    for i in range(300):
        left.add(f"u{i}")
    for i in range(200, 500):
        right.add(f"u{i}")
    left.merge(right)
    assert abs(left.count() - 500) <= 4 * 0.0325 * 500


def test_sketches_of_different_precision_do_not_merge() -> None:
    with pytest.raises(ValueError, match="p=12"):
        HyperLogLog(p=10).merge(HyperLogLog(p=12))


def test_a_sketch_round_trips_through_json_and_stays_small() -> None:
    sketch = HyperLogLog()
    for i in range(10):
        sketch.add(f"u{i}")
    text = json.dumps(sketch.to_dict())
    assert len(text) < 200
    back = HyperLogLog.from_dict(json.loads(text))
    assert back == sketch
    assert back.count() == 10


@pytest.mark.parametrize("p", [3, 17])
def test_precision_outside_the_supported_range_is_refused(p: int) -> None:
    with pytest.raises(ValueError, match="p must be"):
        HyperLogLog(p=p)
