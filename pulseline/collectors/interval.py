"""``--interval`` values: ``10s``, ``1m``, ``1h`` or plain seconds (``30``, ``2.5``)."""

from __future__ import annotations

import re

MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 24 * 3600.0
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$", re.IGNORECASE)


def parse_interval(text: str) -> float:
    """Seconds; ``ValueError`` with a message fit for the command line."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; use e.g. 10s, 1m, 1h or plain seconds")
    seconds = float(match[1]) * _UNITS[(match[2] or "s").lower()]
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise ValueError(f"{text!r} is out of range; use {MIN_INTERVAL_S:g}s to 24h")
    return seconds


def format_interval(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and (seconds / size).is_integer():
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
