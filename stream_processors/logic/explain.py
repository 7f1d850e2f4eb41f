"""Human units for anomaly explanations: durations from milliseconds, sizes from bytes."""

from __future__ import annotations


def duration(ms: float) -> str:
    """``850 ms`` below a second, ``42.0 s`` below ten minutes, then ``12.5 min``/``1.5 h``."""
    if abs(ms) < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if abs(seconds) < 600:
        return f"{seconds:.1f} s"
    if abs(seconds) < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def size(octets: float) -> str:
    """``512 B``, ``1.4 kB``, ``3.2 MB``, ``1.0 GB`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(octets) >= scale:
            return f"{octets / scale:.1f} {unit}"
    return f"{octets:.0f} B"
