"""DDSketch: quantiles within the documented relative error, exact merges, JSON form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stream_processors.logic.quantiles import Sketch, merge

ALPHA = 0.01
SLACK = 1e-12  # rounding of log/pow at a bucket edge

DATA = {
    "lognormal durations": lambda rng: rng.lognormal(5.0, 1.5, 20_000),
    "uniform": lambda rng: rng.uniform(1.0, 1000.0, 20_000),
    "tiny uniform": lambda rng: rng.uniform(1e-6, 1e-3, 5_000),
    "negative and positive": lambda rng: rng.normal(0.0, 100.0, 10_000),
}


def within_alpha(estimate: float | None, exact: float) -> bool:
    return estimate is not None and abs(estimate - exact) <= (ALPHA + SLACK) * abs(exact)


@pytest.mark.parametrize("q", [0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0])
@pytest.mark.parametrize("name", sorted(DATA))
def test_quantiles_are_within_the_relative_error_bound(name: str, q: float) -> None:
    values = DATA[name](np.random.default_rng(5))
    exact = float(np.quantile(values, q, method="lower"))
    assert within_alpha(Sketch(ALPHA).add_batch(values).quantile(q), exact)


def test_a_coarser_sketch_is_outside_the_finer_bound() -> None:
    values = np.random.default_rng(5).lognormal(5.0, 1.5, 20_000)
    misses = [
        q
        for q in np.linspace(0.05, 0.95, 19)
        if not within_alpha(
            Sketch(0.2).add_batch(values).quantile(q),
            float(np.quantile(values, q, method="lower")),
        )
    ]
    assert misses


def test_adding_one_by_one_agrees_with_a_batch() -> None:
    values = np.random.default_rng(3).lognormal(2.0, 1.0, 300)
    one_by_one = Sketch()
    for value in values.tolist():
        one_by_one = one_by_one.add(value)
    batch = Sketch().add_batch(values)
    for q in (0.5, 0.95):
        assert one_by_one.quantile(q) == pytest.approx(batch.quantile(q), rel=2 * ALPHA)
    assert one_by_one.count == batch.count == 300


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merging_two_sketches_equals_sketching_both_series(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.lognormal(4, 1, 3000), rng.uniform(-50, 500, 2000)
    merged = merge(Sketch().add_batch(a), Sketch().add_batch(b))
    assert merged == Sketch().add_batch(np.concatenate([a, b]))


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([0.0, 0.0, 0.0], 0.5, 0.0),
        ([-5.0, 0.0, 5.0], 0.5, 0.0),
        ([1e-12, 2e-12, 7.0], 0.5, 0.0),
    ],
)
def test_values_near_zero_count_as_exactly_zero(
    values: list[float], q: float, expected: float
) -> None:
    assert Sketch().add_batch(np.array(values)).quantile(q) == expected


def test_negative_values_keep_the_bound_on_their_magnitude() -> None:
    values = -np.random.default_rng(9).lognormal(3, 1, 1000)
    sketch = Sketch().add_batch(values)
    for q in (0.05, 0.5, 0.95):
        assert within_alpha(sketch.quantile(q), float(np.quantile(values, q, method="lower")))


def test_an_empty_sketch_has_no_quantile() -> None:
    assert (Sketch().quantile(0.5), Sketch().median, Sketch().p95) == (None, None, None)


def test_median_and_p95_are_named_quantiles() -> None:
    sketch = Sketch().add_batch(np.arange(1.0, 101.0))
    assert (sketch.median, sketch.p95) == (sketch.quantile(0.5), sketch.quantile(0.95))
    assert within_alpha(sketch.median, 50.0) and within_alpha(sketch.p95, 95.0)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_a_quantile_outside_zero_to_one_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="quantile"):
        Sketch().add(1.0).quantile(bad)


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        Sketch().add(float("nan"))


def test_sketches_with_different_alpha_do_not_merge() -> None:
    with pytest.raises(ValueError, match="alpha"):
        merge(Sketch(0.01), Sketch(0.02))


def test_the_bucket_cap_folds_the_lowest_buckets_and_keeps_the_high_quantiles() -> None:
    values = np.geomspace(1e-3, 1e6, 5000)
    sketch = Sketch(max_buckets=100).add_batch(values)
    assert len(sketch.positive) == 100
    assert sketch.count == 5000
    assert within_alpha(sketch.quantile(0.95), float(np.quantile(values, 0.95, method="lower")))


def test_the_dict_form_is_strict_json_and_round_trips() -> None:
    sketch = Sketch().add_batch(np.array([-3.0, 0.0, 0.5, 12.0, 12.0, 1e6]))
    text = json.dumps(sketch.to_dict(), allow_nan=False)
    assert Sketch.from_dict(json.loads(text)) == sketch


def test_a_sketch_stays_small() -> None:
    values = np.random.default_rng(1).lognormal(6.0, 2.0, 100_000)
    assert len(Sketch().add_batch(values).positive) < 1000
