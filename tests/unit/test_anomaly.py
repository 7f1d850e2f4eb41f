"""Anomaly rules: one table per family, the robust rule's benefit, the batch fast path."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
import pytest

from stream_processors.logic import explain
from stream_processors.logic.anomaly import (
    Anomaly,
    DurationState,
    RecentState,
    WindowState,
    duration_step,
    duration_step_batch,
    error_rate_step,
    output_size_step,
    robust_step,
    slow_step,
    slow_tick,
)
from stream_processors.logic.quantiles import Sketch
from stream_processors.logic.thresholds import Thresholds
from stream_processors.logic.welford import Stats

DEFAULT = Thresholds()
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = TypeVar("S")
Step = Callable[[S, float, datetime, Thresholds], tuple[S, list[Anomaly]]]


def run(
    step: Step[S], state: S, values: Sequence[float], thresholds: Thresholds = DEFAULT
) -> tuple[S, list[list[Anomaly]]]:
    """Fold ``values`` one a minute from T0; the anomalies raised at each step."""
    raised = []
    for i, value in enumerate(values):
        state, found = step(state, value, T0 + timedelta(minutes=i), thresholds)
        raised.append(found)
    return state, raised


def last_alerts(step: Step[S], state: S, values: Sequence[float]) -> list[Anomaly]:
    return run(step, state, values)[1][-1]


STEADY = [1000.0, 1010.0, 990.0, 1005.0, 995.0, 1000.0, 1020.0, 980.0, 1000.0, 1000.0]


def test_the_first_ten_runs_never_alert() -> None:
    wild = [1.0, 1e3, 1e6, 5.0, 1e7, 2.0, 1e8, 3.0, 1e9, 4.0]
    _, raised = run(duration_step, DurationState(), wild)
    assert raised == [[]] * 10
    assert last_alerts(duration_step, DurationState(), [*STEADY, 1e6]) != []


@pytest.mark.parametrize(
    ("history", "value", "alerts"),
    [
        pytest.param(STEADY[:9], 1e6, False, id="nine_runs_are_not_enough"),
        pytest.param(STEADY, 1e6, True, id="a_run_far_above_ten_steady_ones_alerts"),
        pytest.param(STEADY, 1030.0, False, id="a_run_within_the_noise_does_not"),
        pytest.param(STEADY, 1060.0, True, id="a_run_over_mean_plus_three_sigma_alerts"),
        pytest.param(STEADY, 10.0, False, id="a_fast_run_never_alerts"),
        pytest.param([1000.0] * 20, 1020.0, False, id="a_constant_series_tolerates_2pct"),
        pytest.param([1000.0] * 20, 1040.0, True, id="a_constant_series_flags_4pct"),
    ],
)
def test_duration_rule(history: list[float], value: float, alerts: bool) -> None:
    assert bool(last_alerts(duration_step, DurationState(), [*history, value])) is alerts


def test_the_median_clause_alone_needs_its_z_score() -> None:
    above_median_only = Thresholds(sigma_factor=100.0)
    history = STEADY * 3
    ok_z = run(duration_step, DurationState(), [*history, 1600.0], above_median_only)[1][-1]
    low_z = run(duration_step, DurationState(), [*history, 1400.0], above_median_only)[1][-1]
    assert (len(ok_z), len(low_z)) == (1, 0)


def test_a_value_is_judged_against_the_stats_before_it_is_added() -> None:
    state, _ = run(duration_step, DurationState(), STEADY)
    _, found = duration_step(state, 5000.0, T0, DEFAULT)
    assert found[0].score == pytest.approx((5000.0 - state.stats.mean) / state.stats.std)


def test_the_explanation_reads_like_a_sentence() -> None:
    sigma = 8794.0
    state = DurationState(
        Stats(57, 12100.0, 0.0, sigma * sigma * 56, 9000.0, 20000.0),
        Sketch().add_batch(np.full(57, 11800.0)),
    )
    [found] = duration_step(state, 42000.0, T0, DEFAULT)[1]
    assert found.explanation == "took 42.0 s, 3.4σ above the mean 12.1 s (median 11.7 s, n=57)"  # noqa: RUF001
    assert (found.rule, found.at) == ("duration", T0)


def test_the_score_grows_with_the_anomaly() -> None:
    state, _ = run(duration_step, DurationState(), STEADY)
    scores = [duration_step(state, v, T0, DEFAULT)[1][0].score for v in (2000.0, 4000.0, 8e3)]
    assert scores == sorted(scores) and len(set(scores)) == 3


@pytest.mark.parametrize(
    ("ms", "text"),
    [(850.0, "850 ms"), (42000.0, "42.0 s"), (1.5e6, "25.0 min"), (9e6, "2.5 h")],
)
def test_durations_are_written_in_sensible_units(ms: float, text: str) -> None:
    assert explain.duration(ms) == text


@pytest.mark.parametrize(
    ("octets", "text"), [(512.0, "512 B"), (1400.0, "1.4 kB"), (3.2e6, "3.2 MB"), (1e9, "1.0 GB")]
)
def test_sizes_are_written_in_sensible_units(octets: float, text: str) -> None:
    assert explain.size(octets) == text


@pytest.mark.parametrize(
    ("history", "value", "alerts"),
    [
        pytest.param(STEADY[:9], 1e6, False, id="nine_runs_are_not_enough"),
        pytest.param(STEADY, 1e6, True, id="a_run_far_above_the_median_alerts"),
        pytest.param(STEADY, 1400.0, False, id="a_run_below_one_and_a_half_medians_does_not"),
        pytest.param([1000.0] * 20, 1600.0, True, id="a_zero_mad_series_still_has_a_scale"),
        pytest.param([*STEADY, 1e6, 1e6], 1e6, True, id="earlier_outliers_do_not_mask_it"),
    ],
)
def test_robust_rule(history: list[float], value: float, alerts: bool) -> None:
    assert bool(last_alerts(robust_step, RecentState(), [*history, value])) is alerts


def test_earlier_outliers_mask_the_mean_and_sigma_rule() -> None:
    assert last_alerts(duration_step, DurationState(), [*STEADY, 1e6, 1e6, 1e6]) == []


def alarms(step: Step[S], state: S, values: np.ndarray) -> set[int]:
    _, raised = run(step, state, values.tolist())
    return {i for i, found in enumerate(raised) if found}


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_the_robust_rule_keeps_real_anomalies_with_fewer_false_alarms(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = 10_000.0 + 300.0 * rng.standard_t(3, 1500)  # heavy-tailed noise around 10 s
    injected = set(rng.choice(np.arange(50, 1500), 6, replace=False).tolist())
    values[list(injected)] *= rng.uniform(2.5, 4.0, 6)
    plain = alarms(duration_step, DurationState(), values)
    robust = alarms(robust_step, RecentState(), values)
    assert injected <= robust
    assert len(robust - injected) < len(plain - injected)


@pytest.mark.parametrize(
    ("history", "value", "alerts"),
    [
        pytest.param([1000.0] * 6, 10.0, False, id="six_runs_are_not_enough"),
        pytest.param([1000.0] * 7, 290.0, True, id="a_71pct_drop_alerts"),
        pytest.param([1000.0] * 7, 310.0, False, id="a_69pct_drop_does_not"),
        pytest.param([1e5] * 3 + [1000.0] * 7, 290.0, True, id="only_the_last_seven_count"),
        pytest.param([0.0] * 7, 0.0, False, id="nothing_after_nothing_is_no_drop"),
    ],
)
def test_output_size_rule(history: list[float], value: float, alerts: bool) -> None:
    assert bool(last_alerts(output_size_step, RecentState(), [*history, value])) is alerts


def test_an_output_drop_explains_itself_and_scores_the_drop() -> None:
    [found] = last_alerts(output_size_step, RecentState(), [1000.0] * 7 + [290.0])
    assert found.explanation == "output 290 B, 71% below the mean 1.0 kB of the last 7 runs"
    assert found.score == pytest.approx(0.71)


def errors(per_window: Sequence[int], thresholds: Thresholds = DEFAULT) -> list[list[Anomaly]]:
    """One error event at a time, ``per_window[i]`` of them in the i-th 5-minute window."""
    state, raised = WindowState(), []
    for window, count in enumerate(per_window):
        for k in range(count):
            at = T0 + timedelta(seconds=300 * window + k)
            state, found = error_rate_step(state, 1, at, thresholds)
            raised.append(found)
    return raised


@pytest.mark.parametrize(
    ("per_window", "alerts"),
    [
        pytest.param([9], 0, id="nine_errors_are_below_the_minimum"),
        pytest.param([10], 1, id="ten_errors_without_history_alert"),
        pytest.param([30], 1, id="a_window_alerts_only_once"),
        pytest.param([5] * 12 + [15], 0, id="three_times_the_baseline_is_not_above_it"),
        pytest.param([5] * 12 + [16], 1, id="above_three_times_the_baseline_alerts"),
        pytest.param([5] * 12 + [0] * 12 + [10], 1, id="empty_windows_lower_the_baseline"),
        pytest.param([20] + [0] * 5 + [20], 2, id="each_window_may_alert"),
    ],
)
def test_error_rate_rule(per_window: list[int], alerts: int) -> None:
    assert sum(len(found) for found in errors(per_window)) == alerts


def test_an_error_spike_explains_itself() -> None:
    [found] = next(f for f in errors([5] * 12 + [16]) if f)
    assert found.explanation == (
        "16 errors in the 5 min window, 3.2× the baseline 5.0 (mean of the 12 windows before)"  # noqa: RUF001
    )
    assert found.score == pytest.approx(3.2)


def test_a_gap_between_errors_is_counted_as_empty_windows() -> None:
    state, _ = error_rate_step(WindowState(), 4, T0, DEFAULT)
    state, _ = error_rate_step(state, 1, T0 + timedelta(minutes=16), DEFAULT)
    assert state.past == (4, 0, 0)


@pytest.mark.parametrize(
    ("values_ms", "rules"),
    [
        pytest.param([5000.0], [], id="five_seconds_is_not_over_the_limit"),
        pytest.param([5001.0], ["slow_request"], id="a_single_request_over_five_seconds"),
        pytest.param([100.0, 7000.0, 9000.0], ["slow_request", "slow_request"], id="each"),
    ],
)
def test_slow_single_requests(values_ms: list[float], rules: list[str]) -> None:
    _, raised = run(slow_step, WindowState(), values_ms)
    assert [a.rule for found in raised for a in found] == rules


def slow_window(values_ms: list[float]) -> list[Anomaly]:
    """Values in the window at T0, then one fast request in the next window."""
    state = WindowState()
    for value in values_ms:
        state, _ = slow_step(state, value, T0, DEFAULT)
    return [a for a in slow_step(state, 1.0, T0 + timedelta(minutes=5), DEFAULT)[1]]


@pytest.mark.parametrize(
    ("values_ms", "alerts"),
    [
        pytest.param([4000.0, 4900.0], False, id="a_window_with_a_mean_under_five_seconds"),
        pytest.param([4000.0, 6100.0], True, id="a_window_with_a_mean_over_five_seconds"),
    ],
)
def test_slow_windows(values_ms: list[float], alerts: bool) -> None:
    assert [a.rule for a in slow_window(values_ms)] == (["slow_window"] if alerts else [])


def test_a_slow_window_explains_itself() -> None:
    [found] = slow_window([4000.0, 6100.0])
    assert found.explanation == (
        "mean 5.0 s over 2 requests in the 5 min window from 12:00, over the 5.0 s limit"
    )


def test_a_tick_closes_a_slow_window_without_a_new_request() -> None:
    state, _ = slow_step(WindowState(), 8000.0, T0, DEFAULT)
    assert slow_tick(state, T0 + timedelta(minutes=1), DEFAULT)[1] == []
    state, found = slow_tick(state, T0 + timedelta(minutes=5), DEFAULT)
    assert [a.rule for a in found] == ["slow_window"]
    assert state == WindowState()


def test_states_round_trip_through_json() -> None:
    duration, _ = run(duration_step, DurationState(), STEADY)
    recent, _ = run(robust_step, RecentState(), STEADY)
    window, _ = error_rate_step(WindowState(), 3, T0, DEFAULT)
    for state in (duration, recent, window):
        text = json.dumps(state.to_dict(), allow_nan=False)
        assert type(state).from_dict(json.loads(text)) == state


def anomalous_series(seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(7.0, 0.3, size)
    spikes = rng.choice(size, size // 50, replace=False)
    values[spikes] *= 6.0
    return values


@pytest.mark.parametrize("batch", [1, 7, 250, 1000])
def test_the_batch_path_agrees_with_the_one_by_one_fold(batch: int) -> None:
    values = anomalous_series(seed=batch, size=2000)
    one_by_one, slow = run(duration_step, DurationState(), values.tolist())
    state: DurationState = DurationState()
    batched: list[Anomaly] = []
    for start in range(0, values.size, batch):
        state, found = duration_step_batch(state, values[start : start + batch], T0, DEFAULT)
        batched += found
    expected = [a for found in slow for a in found]
    assert [a.value for a in batched] == [a.value for a in expected]
    assert [a.score for a in batched] == pytest.approx([a.score for a in expected], rel=1e-9)
    assert state.stats.count == one_by_one.stats.count
    assert state.stats.mean == pytest.approx(one_by_one.stats.mean, rel=1e-12)
    assert state.sketch.quantile(0.5) == pytest.approx(one_by_one.sketch.quantile(0.5))
    assert len(expected) > 10


def test_a_batch_from_an_empty_state_still_waits_for_ten_runs() -> None:
    _, found = duration_step_batch(DurationState(), np.array([*STEADY, 1e6]), T0, DEFAULT)
    assert [a.value for a in found] == [1e6]
    _, found = duration_step_batch(DurationState(), np.array([1.0, 1e6, 1e9]), T0, DEFAULT)
    assert found == []


@pytest.mark.parametrize(
    ("overrides", "changed"),
    [
        ({"min_samples": 20}, {"min_samples": 20}),
        ({"min_samples": "20", "z_score": "2.5"}, {"min_samples": 20, "z_score": 2.5}),
        ({"size_drop": 0.5, "slow_request_s": 2}, {"size_drop": 0.5, "slow_request_s": 2.0}),
    ],
)
def test_thresholds_take_overrides(overrides: dict[str, Any], changed: dict[str, Any]) -> None:
    updated = DEFAULT.with_overrides(overrides)
    for name, value in changed.items():
        assert getattr(updated, name) == value
        assert type(getattr(updated, name)) is type(getattr(DEFAULT, name))
    assert DEFAULT.with_overrides({}) == DEFAULT


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_sample": 20}, "unknown threshold 'min_sample'"),
        ({"min_samples": 2.5}, "'min_samples' must be an integer"),
        ({"min_samples": True}, "'min_samples' must be an integer"),
        ({"z_score": "high"}, "'z_score' must be a number"),
        ({"z_score": [3]}, "'z_score' must be a number"),
        ({"z_score": 0}, "'z_score' must be positive"),
        ({"z_score": "nan"}, "'z_score' must be positive"),
        ({"size_drop": 1.2}, "'size_drop' must be below 1"),
    ],
)
def test_bad_overrides_are_refused_naming_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DEFAULT.with_overrides(overrides)
