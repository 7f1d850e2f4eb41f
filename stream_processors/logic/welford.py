"""Running statistics of one series (count, mean, variance, min, max). Pure: no Faust.

``Stats`` is immutable: ``add`` folds in one value (Welford's update), ``from_batch``
summarises a numpy array in one pass of vectorised arithmetic, and ``merge`` combines two
summaries with Chan et al.'s pairwise formula, so a batch is merged in once rather than
value by value. The result matches a recomputation over all values (``np.var`` with
``ddof=0`` for ``variance``, ``ddof=1`` for ``sample_variance``) to rounding error, also
for values with a large offset (``1e9`` plus small noise) where the naive
``E[x²] - E[x]²`` formula loses every digit.

``to_dict``/``from_dict`` give a JSON-safe form for the changelog: an empty ``Stats``
has ``min``/``max`` written as ``None`` rather than infinities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of the values seen so far; ``m2`` is the sum of squared deviations.

    The mean is kept as ``origin + offset`` where ``origin`` is the first value: the
    updates then work on small numbers, which keeps the variance exact to ~1e-12 even
    for values of 1e9 with unit noise (a plain Welford update loses ~1e-8 there).
    """

    count: int = 0
    origin: float = 0.0
    offset: float = 0.0
    m2: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    @property
    def mean(self) -> float:
        return self.origin + self.offset

    def add(self, value: float) -> Stats:
        """The summary with ``value`` folded in (Welford's update)."""
        origin = value if self.count == 0 else self.origin
        shifted = value - origin
        count = self.count + 1
        delta = shifted - self.offset
        offset = self.offset + delta / count
        return Stats(
            count,
            origin,
            offset,
            self.m2 + delta * (shifted - offset),
            value if value < self.min else self.min,
            value if value > self.max else self.max,
        )

    @property
    def variance(self) -> float:
        """Population variance (``ddof=0``); 0.0 when empty."""
        return self.m2 / self.count if self.count else 0.0

    @property
    def sample_variance(self) -> float:
        """Sample variance (``ddof=1``); 0.0 with fewer than two values."""
        return self.m2 / (self.count - 1) if self.count > 1 else 0.0

    @property
    def std(self) -> float:
        """Sample standard deviation (``ddof=1``), the sigma the anomaly rules use."""
        return math.sqrt(self.sample_variance)

    def to_dict(self) -> dict[str, Any]:
        empty = self.count == 0
        return {
            "count": self.count,
            "origin": self.origin,
            "offset": self.offset,
            "m2": self.m2,
            "min": None if empty else self.min,
            "max": None if empty else self.max,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        """Inverse of ``to_dict``; raises ``ValueError`` on a malformed document."""
        try:
            count = int(data["count"])
            if count == 0:
                return cls()
            return cls(
                count,
                float(data["origin"]),
                float(data["offset"]),
                float(data["m2"]),
                float(data["min"]),
                float(data["max"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a Stats document: {exc!r}") from None


def merge(a: Stats, b: Stats) -> Stats:
    """The summary of both series (Chan, Golub and LeVeque's pairwise combination)."""
    if a.count == 0:
        return b
    if b.count == 0:
        return a
    count = a.count + b.count
    delta = (b.origin - a.origin) + b.offset - a.offset
    return Stats(
        count,
        a.origin,
        a.offset + delta * b.count / count,
        a.m2 + b.m2 + delta * delta * a.count * b.count / count,
        min(a.min, b.min),
        max(a.max, b.max),
    )


def from_batch(values: npt.NDArray[np.floating[Any]]) -> Stats:
    """The summary of ``values`` (one-dimensional), computed with numpy in two passes."""
    if values.size == 0:
        return Stats()
    origin = float(values[0])
    shifted = values - origin
    offset = float(np.mean(shifted))
    deviations = shifted - offset
    return Stats(
        int(values.size),
        origin,
        offset,
        float(np.dot(deviations, deviations)),
        float(np.min(values)),
        float(np.max(values)),
    )
