"""Series of numbers cut from events, and the fold of a batch of one series. Pure: no Faust.

``points(event)`` names the series an ingest event feeds and its value there (a check-in
feeds two: duration and output size). ``fold`` runs one series' batch through the rules of
its family, vectorised where the rule allows, and returns each anomaly with the event that
triggered it:

===================== ========================================= ====================
family                value                                     rules
===================== ========================================= ====================
check_in.duration     ``duration_ms`` of an ok/fail check-in     duration
check_in.output_size  ``output_size`` of an ok/fail check-in     output_size
transaction           ``duration_ms`` per route (else name)      slow_request/window
web_vital             ``value`` per vital name                   none (stats only)
metric                ``value`` per metric name                  none (stats only)
error                 1 per error event, one series per project  error_rate
===================== ========================================= ====================

Every family but ``error`` keeps running statistics and a sketch for the snapshots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pulseline.records.incidents import IncidentKind
from stream_processors.logic.anomaly import (
    Anomaly,
    DurationState,
    RecentState,
    WindowState,
    duration_step_batch,
    error_rate_step,
    output_size_step,
    slow_step,
    slow_tick,
)
from stream_processors.logic.thresholds import Thresholds
from stream_processors.logic.welford import from_batch, merge

DURATION = "check_in.duration"
OUTPUT_SIZE = "check_in.output_size"
TRANSACTION = "transaction"
WEB_VITAL = "web_vital"
METRIC = "metric"
ERROR = "error"

INCIDENT_KINDS = {
    "duration": IncidentKind.DURATION_ANOMALY,
    "output_size": IncidentKind.OUTPUT_SIZE_ANOMALY,
    "error_rate": IncidentKind.ERROR_SPIKE,
    "slow_request": IncidentKind.SLOW_ENDPOINT,
    "slow_window": IncidentKind.SLOW_ENDPOINT,
}


@dataclass(frozen=True)
class SeriesKey:
    project_id: int
    family: str
    name: str

    def encode(self) -> str:
        return f"{self.project_id}|{self.family}|{self.name}"

    @classmethod
    def decode(cls, text: str) -> SeriesKey:
        """Inverse of ``encode`` (the name may itself contain ``|``)."""
        project, family, name = text.split("|", 2)
        return cls(int(project), family, name)


def title(key: SeriesKey, rule: str) -> str:
    """The incident title for an anomaly of ``rule`` in the series ``key``."""
    if key.family == ERROR:
        return "Error spike"
    if key.family == TRANSACTION:
        return f"Slow endpoint {key.name}"
    if rule == "output_size":
        return f"Monitor {key.name} produced unusually little output"
    if key.family == DURATION:
        return f"Monitor {key.name} ran unusually long"
    return f"Anomaly ({rule}) in {key.family} {key.name}"


def points(event: dict[str, Any]) -> list[tuple[SeriesKey, float]]:
    """The series ``event`` feeds and its value in each; ``ValueError`` if malformed."""
    project = event["project_id"]
    if not isinstance(project, int) or isinstance(project, bool):
        raise ValueError(f"project_id must be an integer, got {project!r}")
    kind = event["kind"]
    attrs = event.get("attributes") or {}
    if kind == "error":
        return [(SeriesKey(project, ERROR, "errors"), 1.0)]
    if kind == "transaction":
        route = attrs.get("route") or attrs.get("name")
        return [(SeriesKey(project, TRANSACTION, _name(route)), _number(attrs, "duration_ms"))]
    if kind in ("web_vital", "metric"):
        return [(SeriesKey(project, kind, _name(attrs.get("name"))), _number(attrs, "value"))]
    if kind == "check_in" and attrs.get("status") in ("ok", "fail"):
        monitor = _name(attrs.get("monitor"))
        found = []
        if attrs.get("duration_ms") is not None:
            found.append((SeriesKey(project, DURATION, monitor), _number(attrs, "duration_ms")))
        if attrs.get("output_size") is not None:
            found.append((SeriesKey(project, OUTPUT_SIZE, monitor), _number(attrs, "output_size")))
        return found
    return []


def event_time(event: dict[str, Any]) -> float:
    """The event's ``timestamp`` in Unix seconds (a naive time is read as UTC)."""
    moment = datetime.fromisoformat(event["timestamp"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _name(raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        raise ValueError(f"series name must be a non-empty string, got {raw!r}")
    return raw


def _number(attrs: dict[str, Any], key: str) -> float:
    raw = attrs.get(key)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise ValueError(f"attributes.{key} must be a finite number, got {raw!r}")
    return float(raw)


@dataclass(frozen=True)
class SeriesState:
    """Everything kept for one series; the rules' states serialise with ``to_dict``."""

    duration: DurationState = field(default_factory=DurationState)
    recent: RecentState = field(default_factory=RecentState)
    window: WindowState = field(default_factory=WindowState)

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": self.duration.to_dict(),
            "recent": self.recent.to_dict(),
            "window": self.window.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesState:
        return cls(
            DurationState.from_dict(data["duration"]),
            RecentState.from_dict(data["recent"]),
            WindowState.from_dict(data["window"]),
        )


@dataclass(frozen=True)
class Found:
    """An anomaly and the index, within the folded batch, of the value that raised it."""

    anomaly: Anomaly
    index: int


def fold(
    family: str,
    state: SeriesState,
    values: Sequence[float],
    times: Sequence[float],
    thresholds: Thresholds,
) -> tuple[SeriesState, list[Found]]:
    """Fold one series' batch (event order; ``times`` in Unix seconds) into ``state``."""
    if family == ERROR:
        return _fold_each(state, values, times, thresholds, error_rate_step, "window")
    array = np.asarray(values, dtype=np.float64)
    if family == DURATION:
        now = _at(max(times))
        duration, anomalies = duration_step_batch(state.duration, array, now, thresholds)
        found = _located(anomalies, values, times)
        return replace(state, duration=duration), found
    state = replace(state, duration=_summarised(state.duration, array))
    if family == OUTPUT_SIZE:
        return _fold_each(state, values, times, thresholds, output_size_step, "recent")
    if family == TRANSACTION:
        return _fold_slow(state, array, times, thresholds)
    return state, []


def tick(state: SeriesState, now: float, thresholds: Thresholds) -> tuple[SeriesState, list[Found]]:
    """Close a transaction series' slow window that ``now`` is past (index -1: no event)."""
    window, anomalies = slow_tick(state.window, _at(now), thresholds)
    return replace(state, window=window), [Found(a, -1) for a in anomalies]


def _summarised(state: DurationState, values: np.ndarray[Any, Any]) -> DurationState:
    return DurationState(merge(state.stats, from_batch(values)), state.sketch.add_batch(values))


def _fold_each(
    state: SeriesState,
    values: Sequence[float],
    times: Sequence[float],
    thresholds: Thresholds,
    step: Any,
    part: str,
) -> tuple[SeriesState, list[Found]]:
    inner = getattr(state, part)
    found: list[Found] = []
    for index, (value, at) in enumerate(zip(values, times, strict=True)):
        inner, anomalies = step(inner, value, _at(at), thresholds)
        found += [Found(a, index) for a in anomalies]
    return replace(state, **{part: inner}), found


def _fold_slow(
    state: SeriesState, values: np.ndarray[Any, Any], times: Sequence[float], thresholds: Thresholds
) -> tuple[SeriesState, list[Found]]:
    """``slow_step`` over the batch; one vectorised update when nothing can alert."""
    window = state.window
    indexes = {math.floor(t / thresholds.window_s) for t in times}
    quiet = float(values.max()) <= thresholds.slow_request_s * 1000
    if quiet and len(indexes) == 1 and window.window in (None, *indexes):
        total = window.total + float(values.sum())
        merged = replace(window, window=indexes.pop(), count=window.count + values.size)
        return replace(state, window=replace(merged, total=total)), []
    return _fold_each(state, values.tolist(), times, thresholds, slow_step, "window")


def _located(
    anomalies: list[Anomaly], values: Sequence[float], times: Sequence[float]
) -> list[Found]:
    """Match the batch rule's anomalies (in order, by value) to the values that raised them."""
    found: list[Found] = []
    index = 0
    for anomaly in anomalies:
        while values[index] != anomaly.value:
            index += 1
        found.append(Found(replace(anomaly, at=_at(times[index])), index))
        index += 1
    return found


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def snapshot(key: SeriesKey, state: SeriesState, now: datetime) -> dict[str, Any]:
    """A v1 ``StatsSnapshot`` document of the series (``version`` is the count)."""
    stats, sketch = state.duration.stats, state.duration.sketch
    empty = stats.count == 0
    return {
        "schema_version": 1,
        "project_id": key.project_id,
        "family": key.family,
        "name": key.name,
        "count": stats.count,
        "mean": stats.mean,
        "variance": stats.variance,
        "stddev": stats.std,
        "min": None if empty else stats.min,
        "max": None if empty else stats.max,
        "p50": sketch.median,
        "p95": sketch.p95,
        "at": now.isoformat(),
        "version": stats.count,
    }
