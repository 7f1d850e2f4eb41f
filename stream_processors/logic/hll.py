"""A small HyperLogLog: an approximate distinct count in a fixed, JSON-friendly state.

With ``p`` index bits the sketch keeps ``2**p`` one-byte registers and counts with a
standard error of about ``1.04 / sqrt(2**p)``; the default ``p = 10`` keeps 1 KiB of
registers (about 3.3% error) and serialises to far less, because empty registers
compress away. Small counts use linear counting, so a handful of users is exact in
practice. Values are hashed with 64-bit BLAKE2b, so no large-range correction is needed.
"""

from __future__ import annotations

import base64
import hashlib
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

DEFAULT_P = 10
MIN_P, MAX_P = 4, 16


def _alpha(m: int) -> float:
    if m == 16:
        return 0.673
    if m == 32:
        return 0.697
    if m == 64:
        return 0.709
    return 0.7213 / (1 + 1.079 / m)


@dataclass
class HyperLogLog:
    """Distinct-count sketch. ``add`` is idempotent per value; ``merge`` is a union."""

    p: int = DEFAULT_P
    registers: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        if not MIN_P <= self.p <= MAX_P:
            raise ValueError(f"p must be between {MIN_P} and {MAX_P}, got {self.p}")
        if not self.registers:
            self.registers = bytearray(1 << self.p)
        elif len(self.registers) != 1 << self.p:
            raise ValueError(f"expected {1 << self.p} registers, got {len(self.registers)}")

    def add(self, value: str) -> bool:
        """Count ``value``; returns whether the sketch changed."""
        digest = hashlib.blake2b(value.encode(), digest_size=8).digest()
        h = int.from_bytes(digest, "big")
        index = h >> (64 - self.p)
        rest = h & ((1 << (64 - self.p)) - 1)
        rank = (64 - self.p) - rest.bit_length() + 1
        if rank > self.registers[index]:
            self.registers[index] = rank
            return True
        return False

    def count(self) -> int:
        """The estimated number of distinct values added."""
        m = len(self.registers)
        estimate = _alpha(m) * m * m / sum(2.0**-r for r in self.registers)
        zeros = self.registers.count(0)
        if estimate <= 2.5 * m and zeros:
            estimate = m * math.log(m / zeros)
        return round(estimate)

    def merge(self, other: HyperLogLog) -> None:
        """Fold ``other`` into this sketch (same ``p`` only)."""
        if other.p != self.p:
            raise ValueError(f"cannot merge p={other.p} into p={self.p}")
        self.registers = bytearray(map(max, self.registers, other.registers))

    def to_dict(self) -> dict[str, Any]:
        packed = base64.b64encode(zlib.compress(bytes(self.registers), 9)).decode()
        return {"p": self.p, "registers": packed}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HyperLogLog:
        raw = zlib.decompress(base64.b64decode(str(data["registers"])))
        return cls(p=int(data["p"]), registers=bytearray(raw))
