"""One mapping from the incident's free-form severity to four levels every channel shares."""

from __future__ import annotations

from typing import Literal

Level = Literal["critical", "error", "warning", "info"]

_ALIASES: dict[str, Level] = {
    "critical": "critical",
    "fatal": "critical",
    "page": "critical",
    "error": "error",
    "high": "error",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
}


def level(severity: str) -> Level:
    """Unknown or low severities are ``info``."""
    return _ALIASES.get(severity.strip().lower(), "info")


COLOURS: dict[Level, int] = {
    "critical": 0xD32F2F,
    "error": 0xF57C00,
    "warning": 0xFBC02D,
    "info": 0x1976D2,
}
RESOLVED_COLOUR = 0x388E3C
