"""Running statistics: against numpy recomputation, merges of random splits, JSON form."""

from __future__ import annotations

import json
import math
from functools import reduce

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream_processors.logic.welford import Stats, from_batch, merge

REL = 1e-9


def folded(values: np.ndarray) -> Stats:
    return reduce(Stats.add, values.tolist(), Stats())


def close(actual: float, expected: float) -> bool:
    return math.isclose(actual, expected, rel_tol=REL, abs_tol=0.0)


SERIES = {
    "standard normal": lambda rng: rng.normal(0.0, 1.0, 5000),
    "durations in ms": lambda rng: rng.lognormal(6.0, 1.0, 5000),
    "offset 1e9 plus unit noise": lambda rng: 1e9 + rng.normal(0.0, 1.0, 5000),
    "offset 1e9 plus noise of 100": lambda rng: 1e9 + rng.normal(0.0, 100.0, 5000),
    "drifting from 1e9 to 1e9 + 1e5": lambda rng: (
        np.linspace(1e9, 1e9 + 1e5, 5000) + rng.normal(0.0, 1.0, 5000)
    ),
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(SERIES))
def test_one_value_at_a_time_matches_numpy(name: str, seed: int) -> None:
    values = SERIES[name](np.random.default_rng(seed))
    stats = folded(values)
    assert stats.count == values.size
    assert close(stats.mean, float(np.mean(values)))
    assert close(stats.variance, float(np.var(values, ddof=0)))
    assert close(stats.sample_variance, float(np.var(values, ddof=1)))
    assert (stats.min, stats.max) == (values.min(), values.max())


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(SERIES))
def test_a_batch_matches_numpy(name: str, seed: int) -> None:
    values = SERIES[name](np.random.default_rng(seed))
    stats = from_batch(values)
    assert close(stats.variance, float(np.var(values, ddof=0)))
    assert close(stats.sample_variance, float(np.var(values, ddof=1)))
    assert close(stats.std, float(np.std(values, ddof=1)))


def test_the_naive_formula_fails_where_welford_does_not() -> None:
    values = 1e9 + np.random.default_rng(7).normal(0.0, 1.0, 5000)
    naive = float(np.mean(values * values) - np.mean(values) ** 2)
    exact = float(np.var(values))
    assert not close(naive, exact)
    assert close(folded(values).variance, exact)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(0, 400), max_size=12),
    offset=st.sampled_from([0.0, 1e3, 1e9]),
)
def test_merging_any_split_equals_the_whole(seed: int, cuts: list[int], offset: float) -> None:
    values = offset + np.random.default_rng(seed).normal(0.0, 10.0, 400)
    parts = np.split(values, sorted(cuts))
    merged = reduce(merge, (from_batch(part) for part in parts), Stats())
    whole = from_batch(values)
    assert merged.count == whole.count
    assert close(merged.mean, whole.mean)
    assert close(merged.m2, whole.m2)
    assert (merged.min, merged.max) == (whole.min, whole.max)


def test_merging_a_batch_equals_adding_its_values_one_by_one() -> None:
    rng = np.random.default_rng(11)
    head, tail = rng.lognormal(3, 1, 100), rng.lognormal(3, 1, 50)
    one_by_one = reduce(Stats.add, tail.tolist(), from_batch(head))
    at_once = merge(from_batch(head), from_batch(tail))
    assert close(at_once.mean, one_by_one.mean)
    assert close(at_once.m2, one_by_one.m2)


@pytest.mark.parametrize(
    ("stats", "variance", "sample_variance"),
    [
        (Stats(), 0.0, 0.0),
        (Stats().add(5.0), 0.0, 0.0),
        (Stats().add(1.0).add(3.0), 1.0, 2.0),
    ],
)
def test_small_series_have_defined_variances(
    stats: Stats, variance: float, sample_variance: float
) -> None:
    assert (stats.variance, stats.sample_variance) == (variance, sample_variance)


@pytest.mark.parametrize(
    "stats", [Stats(), Stats().add(2.5), from_batch(np.array([1.0, -4.0, 1e9]))]
)
def test_the_dict_form_is_strict_json_and_round_trips(stats: Stats) -> None:
    text = json.dumps(stats.to_dict(), allow_nan=False)
    assert Stats.from_dict(json.loads(text)) == stats


def test_a_malformed_document_is_refused() -> None:
    with pytest.raises(ValueError, match="Stats"):
        Stats.from_dict({"count": 3, "origin": 1.0})
