"""The monitor health score: 100, -5 per failure, -10 per miss, -3 per late, +2 per success."""

from __future__ import annotations

import pytest

from storage.health import HealthCounts, health_score


@pytest.mark.parametrize(
    ("counts", "score"),
    [
        (HealthCounts(), 100),
        (HealthCounts(failures=1), 95),
        (HealthCounts(missed=1), 90),
        (HealthCounts(late=1), 97),
        (HealthCounts(failures=2, missed=1, late=1), 77),
        (HealthCounts(failures=4, on_time_successes=3), 86),
        (HealthCounts(missed=3, on_time_successes=10), 90),
        (HealthCounts(on_time_successes=50), 100),
        (HealthCounts(missed=11), 0),
        (HealthCounts(failures=30, on_time_successes=20), 0),
        (HealthCounts(failures=19, on_time_successes=0), 5),
    ],
)
def test_the_score_follows_the_formula_and_stays_between_0_and_100(
    counts: HealthCounts, score: int
) -> None:
    assert health_score(counts) == score


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="late"):
        HealthCounts(late=-1)
