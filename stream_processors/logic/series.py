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

``fold_resolving`` and ``tick_resolving`` are ``fold`` and ``tick`` plus auto-resolve: they
also return, in event order among the anomalies, a ``Resolved`` for each incident this
series opened whose rule judges it normal again (``logic.recovery``; the alarms live in
``SeriesState.recovery``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pulseline.records.incidents import IncidentKind
from stream_processors.logic import recovery
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
    window_index,
)
from stream_processors.logic.recovery import Fired, Normal, Recovery, Resolved
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


def dedup_key(key: SeriesKey, rule: str) -> str:
    """The incident dedup key of ``rule``'s anomalies in the series ``key``."""
    return f"anomaly:{key.project_id}:{rule}:{key.family}:{key.name}"


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
    """Everything kept for one series; the rules' states serialise with ``to_dict``.

    ``recovery`` (the alarms to resolve) is written only while an alarm is armed, and a
    document without it (written before auto-resolve existed) reads as no alarm."""

    duration: DurationState = field(default_factory=DurationState)
    recent: RecentState = field(default_factory=RecentState)
    window: WindowState = field(default_factory=WindowState)
    recovery: Recovery = field(default_factory=Recovery)

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "duration": self.duration.to_dict(),
            "recent": self.recent.to_dict(),
            "window": self.window.to_dict(),
        }
        if self.recovery.alarms:
            doc["recovery"] = self.recovery.to_dict()
        return doc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesState:
        raw = data.get("recovery")
        return cls(
            DurationState.from_dict(data["duration"]),
            RecentState.from_dict(data["recent"]),
            WindowState.from_dict(data["window"]),
            Recovery() if raw is None else Recovery.from_dict(raw),
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
    state, found, _ = _fold(family, state, values, times, thresholds)
    return state, found


def tick(state: SeriesState, now: float, thresholds: Thresholds) -> tuple[SeriesState, list[Found]]:
    """Close a transaction series' slow window that ``now`` is past (index -1: no event)."""
    window, anomalies = slow_tick(state.window, _at(now), thresholds)
    return replace(state, window=window), [Found(a, -1) for a in anomalies]


Item = Normal | tuple[Found, int | None]
"""A rule's normal judgment, or an anomaly with the window it fell in (window rules)."""


def fold_resolving(
    family: str,
    state: SeriesState,
    values: Sequence[float],
    times: Sequence[float],
    thresholds: Thresholds,
) -> tuple[SeriesState, list[Found | Resolved]]:
    """``fold``, with the ``Resolved`` of the series' alarms among its anomalies, in order.

    A series with no alarm armed and no anomaly in the batch (nearly all of them) costs
    nothing more than ``fold``.
    """
    after, found, trace = _fold(family, state, values, times, thresholds)
    if not found and not state.recovery.alarms:
        return after, list(found)
    items, through = _observed(family, state, after, values, times, found, trace, thresholds)
    return _resolved(after, replace(state.recovery, through=through), items, thresholds)


def tick_resolving(
    family: str, state: SeriesState, now: float, thresholds: Thresholds
) -> tuple[SeriesState, list[Found | Resolved]]:
    """The emit timer's step: close a transaction series' slow window that ``now`` is past,
    and judge the windows an armed error-rate alarm waits for, without waiting for an
    event. Returns ``state`` itself when nothing changed."""
    at = _at(now)
    through = state.recovery.through
    items: list[Item] = []
    if family == TRANSACTION:
        window, anomalies = slow_tick(state.window, at, thresholds)
        if window is state.window:
            return state, []
        normals, through = recovery.slow_closed(state.window, through, at, -1, thresholds)
        closing = state.window.window
        items += [*normals, *((Found(a, -1), closing) for a in anomalies)]
        state = replace(state, window=window)
    elif family == ERROR and "error_rate" in state.recovery.alarms:
        upto = window_index(at, thresholds)
        normals, through = recovery.error_closed(state.window, upto, through, at, -1, thresholds)
        if through == state.recovery.through:
            return state, []
        items += normals
    else:
        return state, []
    return _resolved(state, replace(state.recovery, through=through), items, thresholds)


def _resolved(
    state: SeriesState, watch: Recovery, items: Sequence[Item], thresholds: Thresholds
) -> tuple[SeriesState, list[Found | Resolved]]:
    outputs: list[Found | Resolved] = []
    for item in items:
        if isinstance(item, Normal):
            watch, resolved = recovery.step(watch, item, thresholds)
            outputs += resolved
        else:
            found, window = item
            watch, _ = recovery.step(watch, Fired(found.anomaly.rule, window), thresholds)
            outputs.append(found)
    return replace(state, recovery=watch.settled()), outputs


def _observed(
    family: str,
    before: SeriesState,
    after: SeriesState,
    values: Sequence[float],
    times: Sequence[float],
    found: list[Found],
    trace: list[Any] | None,
    thresholds: Thresholds,
) -> tuple[list[Item], int | None]:
    """The batch's anomalies and normal judgments in event order (at one value: the window
    it closes first, then its own anomalies), and the last window judged."""
    through = before.recovery.through
    at_index: dict[int, list[Found]] = {}
    for one in found:
        at_index.setdefault(one.index, []).append(one)
    items: list[Item] = []
    if family == DURATION:
        flagged = set(at_index)
        normals = recovery.duration_normals(before.duration, values, times, flagged, thresholds)
        by_index: list[tuple[int, Item]] = [(n.index, n) for n in normals]
        by_index += [(f.index, (f, None)) for f in found]
        return [item for _, item in sorted(by_index, key=lambda pair: pair[0])], through
    if trace is None:  # other families, or a quiet transaction batch: nothing judged
        return [(f, None) for f in found], through
    states = [*trace, after.recent if family == OUTPUT_SIZE else after.window]
    for i, value in enumerate(values):
        at = _at(times[i])
        if family == OUTPUT_SIZE:
            if i not in at_index:
                normal = recovery.size_normal(trace[i], value, at, i, thresholds)
                items += [] if normal is None else [normal]
            items += [(f, None) for f in at_index.get(i, [])]
            continue
        was, now = states[i], states[i + 1]
        closed = was.window is not None and now.window is not None and now.window > was.window
        if family == ERROR:
            if closed:
                normals, through = recovery.error_closed(
                    was, now.window, through, at, i, thresholds
                )
                items += normals
            items += [(f, now.window) for f in at_index.get(i, [])]
        else:
            if closed:
                normals, through = recovery.slow_closed(was, through, at, i, thresholds)
                items += normals
            items += [
                (f, was.window if f.anomaly.rule == "slow_window" else now.window)
                for f in at_index.get(i, [])
            ]
    return items, through


def _fold(
    family: str,
    state: SeriesState,
    values: Sequence[float],
    times: Sequence[float],
    thresholds: Thresholds,
) -> tuple[SeriesState, list[Found], list[Any] | None]:
    """``fold``, and the rule state before each value where the rule went one by one."""
    if family == ERROR:
        return _fold_each(state, values, times, thresholds, error_rate_step, "window")
    array = np.asarray(values, dtype=np.float64)
    if family == DURATION:
        now = _at(max(times))
        duration, anomalies = duration_step_batch(state.duration, array, now, thresholds)
        found = _located(anomalies, values, times)
        return replace(state, duration=duration), found, None
    state = replace(state, duration=_summarised(state.duration, array))
    if family == OUTPUT_SIZE:
        return _fold_each(state, values, times, thresholds, output_size_step, "recent")
    if family == TRANSACTION:
        return _fold_slow(state, array, times, thresholds)
    return state, [], None


def _summarised(state: DurationState, values: np.ndarray[Any, Any]) -> DurationState:
    return DurationState(merge(state.stats, from_batch(values)), state.sketch.add_batch(values))


def _fold_each(
    state: SeriesState,
    values: Sequence[float],
    times: Sequence[float],
    thresholds: Thresholds,
    step: Any,
    part: str,
) -> tuple[SeriesState, list[Found], list[Any]]:
    inner = getattr(state, part)
    found: list[Found] = []
    trace: list[Any] = []
    for index, (value, at) in enumerate(zip(values, times, strict=True)):
        trace.append(inner)
        inner, anomalies = step(inner, value, _at(at), thresholds)
        found += [Found(a, index) for a in anomalies]
    return replace(state, **{part: inner}), found, trace


def _fold_slow(
    state: SeriesState, values: np.ndarray[Any, Any], times: Sequence[float], thresholds: Thresholds
) -> tuple[SeriesState, list[Found], list[Any] | None]:
    """``slow_step`` over the batch; one vectorised update when nothing can alert (nor close
    a window, so there is no trace)."""
    window = state.window
    indexes = {math.floor(t / thresholds.window_s) for t in times}
    quiet = float(values.max()) <= thresholds.slow_request_s * 1000
    if quiet and len(indexes) == 1 and window.window in (None, *indexes):
        total = window.total + float(values.sum())
        merged = replace(window, window=indexes.pop(), count=window.count + values.size)
        return replace(state, window=replace(merged, total=total)), [], None
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
