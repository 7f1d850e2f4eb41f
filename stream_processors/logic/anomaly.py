"""Anomaly rules over one series each. Pure: no Faust; ``now`` is passed in.

Every rule family is a fold ``step(state, value, now, thresholds) -> (state, anomalies)``
over immutable state that serialises with ``to_dict``/``from_dict`` for a changelog:

- ``duration_step`` (values in ms): alert when ``value > median_factor * median`` and
  ``z > z_score``, or ``value > mean + sigma_factor * sigma``. sigma is the sample standard
  deviation, floored at ``sigma_floor * mean``; the median comes from a DDSketch (+/-1%).
  A value is judged against the statistics *before* it is added, and nothing is judged
  until ``min_samples`` values have been seen. ``duration_step_batch`` is the fast path.
- ``robust_step`` (ms): the same idea with the median and MAD of the last
  ``robust_window`` values: ``value > median_factor * median`` and modified z-score
  ``0.6745 (x - median) / MAD > robust_z`` (Iglewicz and Hoaglin). Outliers barely move a
  median or a MAD, so a burst of slow runs neither masks the next one nor, with the median
  clause, lets a small heavy-tail excursion alert.
- ``output_size_step`` (bytes): alert when the value is more than ``size_drop`` below the
  mean of the last ``size_window`` runs.
- ``error_rate_step`` (value = errors at ``now``): alert once per window when its count is
  at least ``error_min_count`` and above ``error_factor *`` the baseline, the mean count of
  the previous ``error_baseline_windows`` windows (empty windows count as 0).
- ``slow_step`` (ms): alert on a single request over ``slow_request_s``, and on a closed
  window whose mean is over ``slow_mean_s``; a window closes at the first value of a later
  window or at ``slow_tick``.

Each ``Anomaly`` carries a ``score`` that grows with how anomalous it is (a z-score, a drop
fraction, a ratio to a baseline or limit) and a sentence saying why. The conditions are also
exposed (``size_mean``/``size_drop``, ``error_spike``, ``window_mean``) so that
``logic.recovery`` resolves an incident by the very rule that opened it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from stream_processors.logic import explain
from stream_processors.logic.quantiles import Sketch
from stream_processors.logic.thresholds import Thresholds
from stream_processors.logic.welford import Stats, from_batch, merge

MAD_TO_Z = 0.6745
SIGMA = "\N{GREEK SMALL LETTER SIGMA}"
TIMES = "\N{MULTIPLICATION SIGN}"
MEAN_AD_TO_MAD = 1.253314  # Iglewicz and Hoaglin's fallback scale when the MAD is 0

Values = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Anomaly:
    rule: str
    value: float
    score: float
    explanation: str
    at: datetime


@dataclass(frozen=True)
class DurationState:
    stats: Stats = field(default_factory=Stats)
    sketch: Sketch = field(default_factory=Sketch)

    def to_dict(self) -> dict[str, Any]:
        return {"stats": self.stats.to_dict(), "sketch": self.sketch.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DurationState:
        return cls(Stats.from_dict(data["stats"]), Sketch.from_dict(data["sketch"]))


def duration_step(
    state: DurationState, value: float, now: datetime, thresholds: Thresholds
) -> tuple[DurationState, list[Anomaly]]:
    """Judge ``value`` against ``state``, then add it."""
    found = _judge_duration(state, value, now, thresholds)
    return DurationState(state.stats.add(value), state.sketch.add(value)), found


def duration_step_batch(
    state: DurationState, values: Values, now: datetime, thresholds: Thresholds
) -> tuple[DurationState, list[Anomaly]]:
    """``duration_step`` over ``values`` in order, vectorised.

    Each value is judged against the mean and sigma of everything before it, exactly as the
    sequential fold would (up to rounding). One approximation: the median is the one of
    the state before the batch, since a sketch cannot be queried per prefix cheaply; the
    median moves little within a batch once ``min_samples`` runs are known. Values before
    ``min_samples`` is reached go through ``duration_step`` one by one.
    """
    values = np.asarray(values, dtype=np.float64)
    found: list[Anomaly] = []
    warmup = max(0, min(thresholds.min_samples - state.stats.count, values.size))
    for value in values[:warmup].tolist():
        state, more = duration_step(state, value, now, thresholds)
        found += more
    rest = values[warmup:]
    if rest.size == 0:
        return state, found
    found += _judge_batch(state, rest, now, thresholds)
    stats = merge(state.stats, from_batch(rest))
    return DurationState(stats, state.sketch.add_batch(rest)), found


def _judge_duration(
    state: DurationState, value: float, now: datetime, thresholds: Thresholds
) -> list[Anomaly]:
    stats = state.stats
    median = state.sketch.median
    if stats.count < thresholds.min_samples or median is None:
        return []
    sigma = max(stats.std, thresholds.sigma_floor * abs(stats.mean))
    if sigma <= 0:
        return []
    z = (value - stats.mean) / sigma
    if not _is_slow(value, z, median, thresholds):
        return []
    return [_duration_anomaly(value, z, stats.mean, median, stats.count, now)]


def _judge_batch(
    state: DurationState, values: Values, now: datetime, thresholds: Thresholds
) -> list[Anomaly]:
    median = state.sketch.median
    if median is None:
        return []
    mean0, n0 = state.stats.mean, state.stats.count
    shifted = values - mean0
    before = np.arange(values.size)
    sum1 = np.concatenate(([0.0], np.cumsum(shifted)[:-1]))
    sum2 = np.concatenate(([0.0], np.cumsum(shifted * shifted)[:-1]))
    counts = n0 + before
    means = mean0 + sum1 / counts
    m2 = np.maximum(state.stats.m2 + sum2 - sum1 * sum1 / counts, 0.0)
    sample_var = m2 / np.maximum(counts - 1, 1)
    sigmas = np.maximum(np.sqrt(sample_var), thresholds.sigma_floor * np.abs(means))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sigmas > 0, (values - means) / sigmas, 0.0)
    slow = (z > thresholds.sigma_factor) | (
        (values > thresholds.median_factor * median) & (z > thresholds.z_score)
    )
    return [
        _duration_anomaly(
            float(values[i]), float(z[i]), float(means[i]), median, int(counts[i]), now
        )
        for i in np.flatnonzero(slow).tolist()
    ]


def _is_slow(value: float, z: float, median: float, thresholds: Thresholds) -> bool:
    above_median = value > thresholds.median_factor * median and z > thresholds.z_score
    return above_median or z > thresholds.sigma_factor


def _duration_anomaly(
    value: float, z: float, mean: float, median: float, n: int, now: datetime
) -> Anomaly:
    d = explain.duration
    text = f"took {d(value)}, {z:.1f}{SIGMA} above the mean {d(mean)} (median {d(median)}, n={n})"
    return Anomaly("duration", value, z, text, now)


@dataclass(frozen=True)
class RecentState:
    """The most recent values of a series, oldest first (robust and output-size rules)."""

    recent: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"recent": list(self.recent)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecentState:
        return cls(tuple(float(v) for v in data["recent"]))

    def pushed(self, value: float, keep: int) -> RecentState:
        return RecentState((*self.recent, value)[-keep:])


def robust_step(
    state: RecentState, value: float, now: datetime, thresholds: Thresholds
) -> tuple[RecentState, list[Anomaly]]:
    """Judge ``value`` against the median and MAD of the recent values, then keep it."""
    found = _judge_robust(state.recent, value, now, thresholds)
    return state.pushed(value, thresholds.robust_window), found


def _judge_robust(
    recent: tuple[float, ...], value: float, now: datetime, thresholds: Thresholds
) -> list[Anomaly]:
    if len(recent) < thresholds.min_samples:
        return []
    window = np.array(recent)
    median = float(np.median(window))
    deviations = np.abs(window - median)
    mad = float(np.median(deviations))
    scale = mad / MAD_TO_Z if mad > 0 else MEAN_AD_TO_MAD * float(np.mean(deviations))
    scale = max(scale, thresholds.sigma_floor * abs(median))
    if scale <= 0:
        return []
    z = (value - median) / scale
    if not (value > thresholds.median_factor * median and z > thresholds.robust_z):
        return []
    d = explain.duration
    text = (
        f"took {d(value)}, modified z {z:.1f} above the median {d(median)} "
        f"(MAD {d(mad)}, n={len(recent)})"
    )
    return [Anomaly("robust_duration", value, z, text, now)]


def output_size_step(
    state: RecentState, value: float, now: datetime, thresholds: Thresholds
) -> tuple[RecentState, list[Anomaly]]:
    """Judge a run's output size against the mean of the previous ``size_window`` runs."""
    found: list[Anomaly] = []
    window = thresholds.size_window
    mean = size_mean(state, thresholds)
    if mean is not None:
        drop = size_drop(value, mean)
        if drop > thresholds.size_drop:
            text = (
                f"output {explain.size(value)}, {drop:.0%} below the mean "
                f"{explain.size(mean)} of the last {window} runs"
            )
            found.append(Anomaly("output_size", value, drop, text, now))
    return state.pushed(value, window), found


def size_mean(state: RecentState, thresholds: Thresholds) -> float | None:
    """The mean a run's output is judged against; ``None`` (not judged) until
    ``size_window`` runs are known."""
    window = thresholds.size_window
    if len(state.recent) < window:
        return None
    return sum(state.recent[-window:]) / window


def size_drop(value: float, mean: float) -> float:
    """How far ``value`` is below ``mean``, as a fraction of it (0 when the mean is 0)."""
    return 1.0 - value / mean if mean > 0 else 0.0


@dataclass(frozen=True)
class WindowState:
    """The open window (its index since the epoch) and what it has counted so far."""

    window: int | None = None
    count: int = 0
    total: float = 0.0
    alerted: bool = False
    past: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "count": self.count,
            "total": self.total,
            "alerted": self.alerted,
            "past": list(self.past),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowState:
        window = data["window"]
        return cls(
            None if window is None else int(window),
            int(data["count"]),
            float(data["total"]),
            bool(data["alerted"]),
            tuple(int(c) for c in data["past"]),
        )


def error_rate_step(
    state: WindowState, value: float, now: datetime, thresholds: Thresholds
) -> tuple[WindowState, list[Anomaly]]:
    """Count ``value`` errors at ``now``; alert the first time the window turns a spike.

    A late value (``now`` in an earlier window) counts in the open window.
    """
    index = window_index(now, thresholds)
    if state.window is None:
        state = WindowState(window=index)
    elif index > state.window:
        skipped = min(index - state.window - 1, thresholds.error_baseline_windows)
        past = (*state.past, state.count, *(0,) * skipped)
        state = WindowState(window=index, past=past[-thresholds.error_baseline_windows :])
    count = state.count + int(value)
    state = replace(state, count=count)
    spike, baseline = error_spike(state, thresholds)
    if state.alerted or not spike:
        return state, []
    ratio = count / max(baseline, 1.0)
    text = (
        f"{count} errors in the {_minutes(thresholds)} window, {ratio:.1f}{TIMES} the baseline "
        f"{baseline:.1f} (mean of the {len(state.past)} windows before)"
    )
    return replace(state, alerted=True), [Anomaly("error_rate", count, ratio, text, now)]


def error_spike(state: WindowState, thresholds: Thresholds) -> tuple[bool, float]:
    """Whether the window's count so far is a spike, and the baseline it is judged against."""
    baseline = sum(state.past) / len(state.past) if state.past else 0.0
    count = state.count
    spike = count >= thresholds.error_min_count and count > thresholds.error_factor * baseline
    return spike, baseline


def slow_step(
    state: WindowState, value: float, now: datetime, thresholds: Thresholds
) -> tuple[WindowState, list[Anomaly]]:
    """Alert on one slow request (ms) and on a slow window that this value closes."""
    state, found = slow_tick(state, now, thresholds)
    limit = thresholds.slow_request_s * 1000
    if value > limit:
        text = f"took {explain.duration(value)}, over the {explain.duration(limit)} limit"
        found.append(Anomaly("slow_request", value, value / limit, text, now))
    index = window_index(now, thresholds)
    window = index if state.window is None else max(state.window, index)
    return replace(state, window=window, count=state.count + 1, total=state.total + value), found


def slow_tick(
    state: WindowState, now: datetime, thresholds: Thresholds
) -> tuple[WindowState, list[Anomaly]]:
    """Close the open window if ``now`` is past it, alerting when its mean was slow."""
    if state.window is None or window_index(now, thresholds) <= state.window:
        return state, []
    closed, found = WindowState(), []
    limit = thresholds.slow_mean_s * 1000
    mean = window_mean(state)
    if mean > limit:
        text = (
            f"mean {explain.duration(mean)} over {state.count} requests in the "
            f"{window_name(state.window, thresholds)}, "
            f"over the {explain.duration(limit)} limit"
        )
        found.append(Anomaly("slow_window", mean, mean / limit, text, now))
    return closed, found


def window_mean(state: WindowState) -> float:
    """The mean value of the window (the slow-window rule's quantity); 0 when empty."""
    return state.total / state.count if state.count else 0.0


def window_index(now: datetime, thresholds: Thresholds) -> int:
    """The index since the epoch of the ``window_s`` window holding ``now``."""
    return math.floor(now.timestamp() / thresholds.window_s)


def window_name(index: int, thresholds: Thresholds) -> str:
    """``5 min window from 12:05`` for the window of ``index``."""
    start = datetime.fromtimestamp(index * thresholds.window_s, UTC)
    return f"{_minutes(thresholds)} window from {start:%H:%M}"


def _minutes(thresholds: Thresholds) -> str:
    return f"{thresholds.window_s / 60:g} min"
