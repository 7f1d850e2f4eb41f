"""Counters become rates between polls: a baseline first, never a negative rate."""

from __future__ import annotations

import pytest

from pulseline.collectors.rates import RateTracker, counter_rate


@pytest.mark.parametrize(
    ("before", "after", "seconds", "rate"),
    [
        (100, 150, 10, 5.0),
        (100, 100, 10, 0.0),
        (0, 1, 0.5, 2.0),
        (150, 100, 10, None),  # reset
        (150, 0, 10, None),  # reset to zero
        (100, 150, 0, None),  # no time passed
        (100, 150, -1, None),  # clock went back
    ],
)
def test_counter_rate(before: float, after: float, seconds: float, rate: float | None) -> None:
    assert counter_rate(before, after, seconds) == rate


def test_the_first_poll_is_the_baseline_and_later_polls_give_rates() -> None:
    tracker: RateTracker[str] = RateTracker()
    assert tracker.update({"a": 10, "b": 5}, at=100.0) == {}
    assert tracker.update({"a": 30, "b": 5}, at=110.0) == {"a": 2.0, "b": 0.0}
    assert tracker.update({"a": 60, "b": 25}, at=120.0) == {"a": 3.0, "b": 2.0}


def test_a_reset_gives_no_rate_and_becomes_the_new_baseline() -> None:
    tracker: RateTracker[str] = RateTracker()
    tracker.update({"a": 1000}, at=0.0)
    assert tracker.update({"a": 40}, at=10.0) == {}
    assert tracker.update({"a": 90}, at=20.0) == {"a": 5.0}


def test_a_key_that_disappears_starts_again_from_a_baseline() -> None:
    tracker: RateTracker[str] = RateTracker()
    tracker.update({"a": 10, "b": 10}, at=0.0)
    assert tracker.update({"a": 20}, at=10.0) == {"a": 1.0}
    assert tracker.update({"a": 30, "b": 500}, at=20.0) == {"a": 1.0}
    assert tracker.update({"a": 30, "b": 600}, at=30.0) == {"a": 0.0, "b": 10.0}


def test_a_new_life_of_a_counter_is_a_new_key() -> None:
    """With stats_reset in the key, a reset the counter outgrew is not read as growth."""
    tracker: RateTracker[tuple[str, str]] = RateTracker()
    tracker.update({("db", "2026-01-01"): 100}, at=0.0)
    assert tracker.update({("db", "2026-01-02"): 500}, at=10.0) == {}
    assert tracker.update({("db", "2026-01-02"): 600}, at=20.0) == {("db", "2026-01-02"): 10.0}
