"""Scrub secrets and card numbers from an event's attributes before it leaves the gateway.

Done at the gateway so that neither Kafka nor ClickHouse ever holds them. Like Sentry's
default data scrubber:

- the value of any key whose name contains (case-insensitive) one of ``SENSITIVE_KEYS``
  or a configured extra name becomes ``FILTERED``, whatever its type (a whole dict or
  list under ``cookies`` goes);
- a ``[name, value]`` pair whose name is sensitive (Sentry's list form of
  ``request.headers``) keeps its name and loses its value;
- a Luhn-valid run of 13 to 19 digits, optionally split by single spaces or dashes,
  standing as a word of its own inside any string value becomes ``FILTERED``; the rest
  of the string stays.

Containers nested deeper than ``MAX_DEPTH`` are replaced by ``FILTERED``: what cannot
be inspected is not passed on. Top-level event fields (``distinct_id`` ...) are not
attributes and are left alone. The input is never mutated: an unchanged container is
returned as is, a changed one is copied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

FILTERED = "[Filtered]"
SENSITIVE_KEYS = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "credit_card",
    "card_number",
)
MAX_DEPTH = 16
_MIN_CARD_CHARS = 13
# Bounded by non-word characters on both sides, so the digit runs inside a UUID or a hex
# id (``81a92859-8519-4046-87f0-…``) are not taken for a card number.
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?!\w|-\w)")
# Cheap rejection before the card pattern: no run of four digits, no card number.
_FOUR_DIGITS = re.compile(r"\d{4}")


def luhn_valid(digits: str) -> bool:
    """``digits`` holds only 0-9."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_or_same(match: re.Match[str]) -> str:
    digits = match.group().replace(" ", "").replace("-", "")
    return FILTERED if luhn_valid(digits) else match.group()


def scrub_text(text: str) -> str:
    """``text`` with every card-like number replaced; the same object when none is found."""
    if len(text) < _MIN_CARD_CHARS or _FOUR_DIGITS.search(text) is None:
        return text
    return _CARD.sub(_card_or_same, text)


class Scrubber:
    """Callable on an attributes dict; ``enabled=False`` makes it the identity."""

    def __init__(self, extra_fields: Iterable[str] = (), enabled: bool = True) -> None:
        names = [*SENSITIVE_KEYS, *(f.strip().lower() for f in extra_fields if f.strip())]
        pattern = re.compile("|".join(re.escape(name) for name in names), re.IGNORECASE)
        self.enabled = enabled
        # Key names repeat across events; the cache is bounded since they come from clients.
        self._sensitive = lru_cache(maxsize=4096)(lambda key: pattern.search(key) is not None)

    @classmethod
    def from_settings(cls, scrub_pii: bool, scrub_extra_fields: str) -> Scrubber:
        return cls(scrub_extra_fields.split(","), enabled=scrub_pii)

    def __call__(self, attributes: dict[str, Any]) -> dict[str, Any]:
        if not self.enabled:
            return attributes
        out = self._dict(attributes, 0)
        return out if isinstance(out, dict) else {}  # depth 0 is within the bound

    def is_sensitive(self, key: str) -> bool:
        return bool(self._sensitive(key))

    def _value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return value if len(value) < _MIN_CARD_CHARS else scrub_text(value)
        if isinstance(value, dict):
            return self._dict(value, depth + 1)
        if isinstance(value, list):
            return self._list(value, depth + 1)
        return value

    def _dict(self, value: dict[str, Any], depth: int) -> Any:
        if depth > MAX_DEPTH:
            return FILTERED
        out: dict[str, Any] | None = None
        for key, item in value.items():
            new = FILTERED if self._sensitive(key) else self._value(item, depth)
            if new is not item:
                if out is None:
                    out = dict(value)
                out[key] = new
        return value if out is None else out

    def _list(self, value: list[Any], depth: int) -> Any:
        if depth > MAX_DEPTH:
            return FILTERED
        if len(value) == 2 and isinstance(value[0], str) and self._sensitive(value[0]):
            return value if value[1] == FILTERED else [value[0], FILTERED]
        out: list[Any] | None = None
        for index, item in enumerate(value):
            new = self._value(item, depth)
            if new is not item:
                if out is None:
                    out = list(value)
                out[index] = new
        return value if out is None else out
