"""Parse a Sentry envelope: a header line, then items of an item header and a payload.

The format (as Sentry's Relay reads it)::

    {"event_id": "...", "dsn": "..."}\n          envelope header: one JSON object
    {"type": "event", "length": 41}\n            item header: JSON object with a "type"
    <exactly 41 bytes>\n                           payload; the newline is optional at EOF
    {"type": "attachment"}\n                     without "length" the payload runs
    <bytes up to the next newline or EOF>          to the next newline (or the end)

Every malformation raises ``EnvelopeError`` (and nothing else), whatever the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


class EnvelopeError(ValueError):
    """The body is not a well-formed envelope; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Item:
    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        value = self.headers["type"]
        assert isinstance(value, str)  # checked by the parser
        return value


@dataclass(frozen=True, slots=True)
class Envelope:
    headers: dict[str, Any]
    items: list[Item] = field(default_factory=list)


def _object(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"the {what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"the {what} must be a JSON object")
    return value


def _line(data: bytes, start: int) -> tuple[bytes, int]:
    """The bytes from ``start`` to the next newline (excluded) and where the next line starts."""
    end = data.find(b"\n", start)
    if end < 0:
        return data[start:], len(data)
    return data[start:end], end + 1


def parse_envelope(data: bytes) -> Envelope:
    if not data.strip():
        raise EnvelopeError("the envelope is empty")
    line, offset = _line(data, 0)
    envelope = Envelope(_object(line, "envelope header"))
    index = 0
    while offset < len(data):
        line, offset = _line(data, offset)
        if not line.strip():
            continue  # blank lines between items (Relay skips them too) or at the end
        headers = _object(line, f"header of item {index}")
        kind = headers.get("type")
        if not isinstance(kind, str) or not kind:
            raise EnvelopeError(f"item {index} has no 'type' in its header")
        length = headers.get("length")
        if length is None:
            payload, offset = _line(data, offset)
        else:
            if isinstance(length, bool) or not isinstance(length, int) or length < 0:
                raise EnvelopeError(f"item {index}: 'length' must be a non-negative integer")
            end = offset + length
            if end > len(data):
                raise EnvelopeError(
                    f"item {index} declares {length} bytes but only {len(data) - offset} follow"
                )
            payload = data[offset:end]
            if end < len(data) and data[end : end + 1] != b"\n":
                raise EnvelopeError(f"item {index}: expected a newline after its payload")
            offset = end + 1
        envelope.items.append(Item(headers, payload))
        index += 1
    return envelope
