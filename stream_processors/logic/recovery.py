"""Auto-resolve of anomaly incidents: an alarm clears when its rule is false again. Pure.

Every anomaly a series raises opens (or re-signals) the incident of its dedup key and arms
an ``Alarm`` for that rule in the series' ``Recovery`` state. From then on each judgment of
the same rule that comes out normal counts; ``resolve_after`` of them in a row (default 1)
give a ``Resolved`` carrying a human reason, and the alarm is dropped. A rule that has not
fired in the series resolves nothing, so a healthy series sends no resolve signals.

A normal judgment is the alert rule's own condition (``anomaly.py``) coming out false:

================ ============================================================================
rule             normal judgment
================ ============================================================================
``duration``     a run judged (``min_samples`` runs known before it) and not flagged; the
                 reason gives it with the mean and count it was judged against
``output_size``  a run judged (``size_window`` runs known) not more than ``size_drop`` below
                 the mean of the last ``size_window`` runs
``error_rate``   a closed window, later than the one that fired, whose count is not a spike
                 against its baseline; an empty window (0 errors) is one
``slow_window``  a closed window, later than the slow one, with a mean of at most
                 ``slow_mean_s``
``slow_request`` a closed window, later than the one holding the last slow request, with a
                 mean of at most ``slow_mean_s`` (and so, being later, no request over
                 ``slow_request_s``: a new one would have fired and moved the alarm on)
================ ============================================================================

The step is ``step(state, observation, thresholds) -> (state, resolved)`` over ``Fired``
(an anomaly of the rule, in a window for the window rules) and ``Normal`` observations, in
event order. The helpers below turn a rule's states into ``Normal`` observations;
``series.fold_resolving`` and ``series.tick_resolving`` call them.

Windows are judged once: ``Recovery.through`` is the last window already judged, so a window
closed by the emit timer and closed again when a late event reopened it, or judged by the
timer before the next error rolled the window, does not count twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from stream_processors.logic import explain
from stream_processors.logic.anomaly import (
    DurationState,
    RecentState,
    WindowState,
    error_spike,
    size_drop,
    size_mean,
    window_mean,
    window_name,
)
from stream_processors.logic.thresholds import Thresholds


@dataclass(frozen=True)
class Alarm:
    """A rule that fired in the series and has not resolved yet."""

    normal: int = 0
    """Normal judgments in a row since it last fired."""
    since: int | None = None
    """Window rules: the window it last fired in; only later windows can count as normal."""


@dataclass(frozen=True)
class Recovery:
    """The series' armed alarms by rule, and the last closed window judged."""

    alarms: dict[str, Alarm] = field(default_factory=dict)
    through: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alarms": {
                rule: {"normal": alarm.normal, "since": alarm.since}
                for rule, alarm in sorted(self.alarms.items())
            },
            "through": self.through,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recovery:
        alarms = {
            str(rule): Alarm(int(raw["normal"]), _window(raw.get("since")))
            for rule, raw in data["alarms"].items()
        }
        return cls(alarms, _window(data.get("through")))

    def settled(self) -> Recovery:
        """This state, or the empty one when no alarm is left (nothing to remember)."""
        return self if self.alarms else Recovery()


@dataclass(frozen=True)
class Fired:
    """The rule raised an anomaly (``window``: the window it fell in, for the window rules)."""

    rule: str
    window: int | None = None


@dataclass(frozen=True)
class Normal:
    """The rule judged a run (or a closed ``window``) normal; ``index`` in the batch, -1: timer."""

    rule: str
    reason: str
    at: datetime
    index: int
    window: int | None = None


@dataclass(frozen=True)
class Resolved:
    """The incident the rule opened in this series is over, for ``reason``."""

    rule: str
    reason: str
    at: datetime
    index: int


def step(
    state: Recovery, observation: Fired | Normal, thresholds: Thresholds
) -> tuple[Recovery, list[Resolved]]:
    """Arm the alarm of a ``Fired`` rule; count a ``Normal`` one and resolve at the limit."""
    alarms = dict(state.alarms)
    rule = observation.rule
    alarm = alarms.get(rule)
    if isinstance(observation, Fired):
        since = observation.window
        if alarm is not None and alarm.since is not None and (since is None or alarm.since > since):
            since = alarm.since  # a late anomaly in an earlier window does not move it back
        alarms[rule] = Alarm(0, since)
        return replace(state, alarms=alarms), []
    if alarm is None:
        return state, []
    since = alarm.since
    if observation.window is not None and since is not None and observation.window <= since:
        return state, []
    normal = alarm.normal + 1
    if normal < thresholds.resolve_after:
        alarms[rule] = replace(alarm, normal=normal)
        return replace(state, alarms=alarms), []
    del alarms[rule]
    reason = observation.reason
    if thresholds.resolve_after > 1:
        unit = "runs" if observation.window is None else "windows"
        reason = f"{reason}; {normal} normal {unit} in a row"
    return replace(state, alarms=alarms), [
        Resolved(rule, reason, observation.at, observation.index)
    ]


def duration_normals(
    before: DurationState,
    values: Sequence[float],
    times: Sequence[float],
    flagged: set[int],
    thresholds: Thresholds,
) -> list[Normal]:
    """The runs of a batch the duration rule judged and did not flag, each with the mean and
    count of the runs before it (the statistics it was judged against)."""
    n0 = before.stats.count
    first = max(0, thresholds.min_samples - n0)
    if first >= len(values):
        return []
    array = np.asarray(values, dtype=np.float64)
    mean0 = before.stats.mean
    sums = np.concatenate(([0.0], np.cumsum(array - mean0)[:-1]))
    d = explain.duration
    normals = []
    for i in range(first, len(values)):
        if i in flagged:
            continue
        n = n0 + i
        mean = mean0 + float(sums[i]) / n
        reason = f"back to normal: took {d(values[i])} (mean {d(mean)}, n={n})"
        normals.append(Normal("duration", reason, _at(times[i]), i))
    return normals


def size_normal(
    before: RecentState, value: float, at: datetime, index: int, thresholds: Thresholds
) -> Normal | None:
    """The output-size rule's judgment of ``value`` if it was judged and is not a drop."""
    mean = size_mean(before, thresholds)
    if mean is None or size_drop(value, mean) > thresholds.size_drop:
        return None
    reason = (
        f"back to normal: output {explain.size(value)} (mean {explain.size(mean)} "
        f"of the last {thresholds.size_window} runs)"
    )
    return Normal("output_size", reason, at, index)


def error_closed(
    state: WindowState,
    upto: int,
    through: int | None,
    at: datetime,
    index: int,
    thresholds: Thresholds,
) -> tuple[list[Normal], int | None]:
    """Judge the error windows that are over once window ``upto`` has begun: ``state``'s own
    (by its count and baseline) and the empty ones after it (at most ``resolve_after`` of
    them, enough to resolve), skipping those up to ``through``; and the new ``through``."""
    if state.window is None or upto <= state.window:
        return [], through
    start = state.window if through is None else max(state.window, through + 1)
    normals: list[Normal] = []
    if start == state.window:
        spike, baseline = error_spike(state, thresholds)
        if not spike:
            count = state.count
            errors = "error" if count == 1 else "errors"
            reason = (
                f"back to normal: {count} {errors} in the "
                f"{window_name(state.window, thresholds)} (baseline {baseline:.1f})"
            )
            normals.append(Normal("error_rate", reason, at, index, state.window))
        start += 1
    for window in range(start, min(upto, start + thresholds.resolve_after)):
        reason = f"back to normal: no errors in the {window_name(window, thresholds)}"
        normals.append(Normal("error_rate", reason, at, index, window))
    return normals, upto - 1 if through is None else max(through, upto - 1)


def slow_closed(
    state: WindowState,
    through: int | None,
    at: datetime,
    index: int,
    thresholds: Thresholds,
) -> tuple[list[Normal], int | None]:
    """Judge ``state``'s transaction window, which has just closed, for both slow rules
    (unless it was judged already, up to ``through``); and the new ``through``."""
    window = state.window
    if window is None or (through is not None and window <= through):
        return [], through
    mean = window_mean(state)
    if mean > thresholds.slow_mean_s * 1000:
        return [], window
    d = explain.duration
    name = window_name(window, thresholds)
    requests = f"{state.count} request{'' if state.count == 1 else 's'}"
    limit = d(thresholds.slow_request_s * 1000)
    return [
        Normal(
            "slow_window",
            f"back to normal: mean {d(mean)} over {requests} in the {name}",
            at,
            index,
            window,
        ),
        Normal(
            "slow_request",
            f"back to normal: {requests} in the {name}, none over {limit} (mean {d(mean)})",
            at,
            index,
            window,
        ),
    ], window


def _window(raw: Any) -> int | None:
    return None if raw is None else int(raw)


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
