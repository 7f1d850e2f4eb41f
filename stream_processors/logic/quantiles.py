"""Streaming quantiles (median, p95) with a DDSketch. Pure: no Faust, no library.

A value ``x > 0`` is counted in bucket ``i = ceil(log_gamma(x))`` with
``gamma = (1 + alpha) / (1 - alpha)``; the bucket stands for ``2 * gamma^i / (gamma + 1)``,
which lies within relative error ``alpha`` of every value in ``(gamma^(i-1), gamma^i]``.
So ``quantile(q)`` returns a value within relative error ``alpha`` (1% for the default
``alpha = 0.01``) of the exact lower quantile, i.e. of the sorted value at
index ``floor(q * (n - 1))`` (``np.quantile(..., method="lower")``).

Negative values go to a mirror store keyed by ``|x|`` and carry the same relative-error
bound on their magnitude. Values with ``|x| < MIN_POSITIVE`` (including 0) are counted as
exactly zero: the estimate for a quantile that falls there is ``0.0``.

The bucket count is capped (``max_buckets``, 2048 by default, enough for 1 ms to ~6e17 ms
at alpha = 1%): beyond it the lowest buckets are folded together, which only coarsens
quantiles that fall in that lowest range (they are merged into one bucket); the median and
p95 keep the bound unless they fall there.

A sketch is immutable; ``add``/``add_batch``/``merge`` return new sketches. Merging is
exact: a sketch of two series equals the merge of their sketches. ``to_dict`` is JSON-safe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_ALPHA = 0.01
MIN_POSITIVE = 1e-9
MAX_BUCKETS = 2048


@dataclass(frozen=True)
class Sketch:
    """Bucket counts of a DDSketch; ``positive``/``negative`` map bucket index to count."""

    alpha: float = DEFAULT_ALPHA
    positive: Mapping[int, int] = field(default_factory=dict)
    negative: Mapping[int, int] = field(default_factory=dict)
    zero: int = 0
    max_buckets: int = MAX_BUCKETS

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")

    @property
    def gamma(self) -> float:
        return (1.0 + self.alpha) / (1.0 - self.alpha)

    @property
    def count(self) -> int:
        return self.zero + sum(self.positive.values()) + sum(self.negative.values())

    def add(self, value: float) -> Sketch:
        """The sketch with one more ``value`` (NaN is refused)."""
        if math.isnan(value):
            raise ValueError("a sketch cannot hold NaN")
        if abs(value) < MIN_POSITIVE:
            return replace(self, zero=self.zero + 1)
        index = math.ceil(math.log(abs(value)) / math.log(self.gamma))
        one = {index: 1}
        if value > 0:
            return self._with(_summed(self.positive, one), dict(self.negative), self.zero)
        return self._with(dict(self.positive), _summed(self.negative, one), self.zero)

    def add_batch(self, values: npt.NDArray[np.floating[Any]]) -> Sketch:
        """The sketch with every element of ``values`` added (vectorised; NaN is refused)."""
        if np.isnan(values).any():
            raise ValueError("a sketch cannot hold NaN")
        magnitude = np.abs(values)
        small = magnitude < MIN_POSITIVE
        positive = _bucket_counts(values[(values > 0) & ~small], self.gamma)
        negative = _bucket_counts(-values[(values < 0) & ~small], self.gamma)
        return self._with(
            _summed(self.positive, positive),
            _summed(self.negative, negative),
            self.zero + int(small.sum()),
        )

    def quantile(self, q: float) -> float | None:
        """Estimate of the ``q``-quantile (0 <= q <= 1); ``None`` when the sketch is empty."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], got {q}")
        total = self.count
        if total == 0:
            return None
        rank = math.floor(q * (total - 1))
        seen = 0
        for index in sorted(self.negative, reverse=True):
            seen += self.negative[index]
            if seen > rank:
                return -self._value(index)
        seen += self.zero
        if seen > rank:
            return 0.0
        for index in sorted(self.positive):
            seen += self.positive[index]
            if seen > rank:
                return self._value(index)
        raise RuntimeError(f"rank {rank} beyond {total} counted values")

    @property
    def median(self) -> float | None:
        return self.quantile(0.5)

    @property
    def p95(self) -> float | None:
        return self.quantile(0.95)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "max_buckets": self.max_buckets,
            "zero": self.zero,
            "positive": {str(k): v for k, v in sorted(self.positive.items())},
            "negative": {str(k): v for k, v in sorted(self.negative.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sketch:
        """Inverse of ``to_dict``; raises ``ValueError`` on a malformed document."""
        try:
            return cls(
                float(data["alpha"]),
                {int(k): int(v) for k, v in data["positive"].items()},
                {int(k): int(v) for k, v in data["negative"].items()},
                int(data["zero"]),
                int(data["max_buckets"]),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a Sketch document: {exc!r}") from None

    def _value(self, index: int) -> float:
        gamma = self.gamma
        return 2.0 * gamma**index / (gamma + 1.0)

    def _with(self, positive: dict[int, int], negative: dict[int, int], zero: int) -> Sketch:
        return Sketch(
            self.alpha,
            _capped(positive, self.max_buckets),
            _capped(negative, self.max_buckets),
            zero,
            self.max_buckets,
        )


def merge(a: Sketch, b: Sketch) -> Sketch:
    """The sketch of both series; both must share ``alpha``."""
    if a.alpha != b.alpha:
        raise ValueError(f"cannot merge sketches with alpha {a.alpha} and {b.alpha}")
    return a._with(
        _summed(a.positive, b.positive), _summed(a.negative, b.negative), a.zero + b.zero
    )


def _bucket_counts(values: npt.NDArray[np.floating[Any]], gamma: float) -> dict[int, int]:
    if values.size == 0:
        return {}
    indexes = np.ceil(np.log(values) / math.log(gamma)).astype(np.int64)
    keys, counts = np.unique(indexes, return_counts=True)
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def _summed(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    total = dict(a)
    for key, count in b.items():
        total[key] = total.get(key, 0) + count
    return total


def _capped(buckets: dict[int, int], limit: int) -> dict[int, int]:
    """Fold the lowest buckets into the lowest kept one so at most ``limit`` remain."""
    if len(buckets) <= limit:
        return buckets
    keys = sorted(buckets)
    folded = keys[: len(keys) - limit + 1]
    kept = {key: buckets[key] for key in keys[len(folded) :]}
    kept[folded[-1]] = sum(buckets[key] for key in folded)
    return kept
