"""Tunable limits of the anomaly rules, with the issue's defaults. Pure: no Faust.

A project or monitor overrides some of them with ``with_overrides({"name": value})``;
values may be numbers or numeric strings (as typed on a command line). An unknown name, a
value of the wrong type or out of range raises ``ValueError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    """Limits of every rule; durations are in seconds, values fed to the rules in ms."""

    min_samples: int = 10
    """Runs seen before the duration rules judge anything (the first ones never alert)."""
    median_factor: float = 1.5
    """Duration rule, first clause: value above this many medians ..."""
    z_score: float = 3.0
    """... and this many sigma above the mean."""
    sigma_factor: float = 3.0
    """Duration rule, second clause on its own: value above mean + this many sigma."""
    sigma_floor: float = 0.01
    """sigma is taken as at least this fraction of the mean, so a constant series has a scale."""
    robust_z: float = 3.5
    """Robust rule: modified z-score limit (Iglewicz and Hoaglin)."""
    robust_window: int = 200
    """Robust rule: how many recent runs the median and MAD are taken over."""
    size_drop: float = 0.7
    """Output size: alert when this fraction or more below the mean of the recent runs."""
    size_window: int = 7
    """Output size: how many recent runs the mean is taken over (all must be present)."""
    window_s: float = 300.0
    """Error-rate and slow-window rules: length of a window."""
    error_min_count: int = 10
    """Error rate: a window needs at least this many errors to alert ..."""
    error_factor: float = 3.0
    """... and more than this many times the baseline (mean count of past windows)."""
    error_baseline_windows: int = 12
    """Error rate: how many past windows make the baseline."""
    slow_request_s: float = 5.0
    """Slow requests: a single request over this alerts."""
    slow_mean_s: float = 5.0
    """Slow requests: a window whose mean is over this alerts."""
    resolve_after: int = 1
    """Auto-resolve: an anomaly incident resolves after this many normal judgments in a row
    by the rule that opened it (runs for duration and output size, closed windows for the
    error-rate and slow-endpoint rules); see ``logic.recovery``."""

    def with_overrides(self, overrides: Mapping[str, object]) -> Thresholds:
        """A copy with ``overrides`` applied; raises ``ValueError`` naming a bad key."""
        fields = {f.name: f.type for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for name, raw in overrides.items():
            kind = fields.get(name)
            if kind is None:
                known = ", ".join(sorted(fields))
                raise ValueError(f"unknown threshold {name!r} (known: {known})")
            changes[name] = _coerce(name, raw, integer=kind in ("int", int))
        return dataclasses.replace(self, **changes)


FRACTIONS = frozenset({"size_drop", "sigma_floor"})


def _coerce(name: str, raw: object, *, integer: bool) -> int | float:
    wanted = "an integer" if integer else "a number"
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"threshold {name!r} must be {wanted}, got {raw!r}")
    try:
        value: int | float = int(raw) if integer else float(raw)
    except ValueError:
        raise ValueError(f"threshold {name!r} must be {wanted}, got {raw!r}") from None
    if integer and isinstance(raw, float) and not raw.is_integer():
        raise ValueError(f"threshold {name!r} must be {wanted}, got {raw!r}")
    if not 0 < value < math.inf:
        raise ValueError(f"threshold {name!r} must be positive and finite, got {raw!r}")
    if name in FRACTIONS and value >= 1:
        raise ValueError(f"threshold {name!r} must be below 1, got {raw!r}")
    return value
