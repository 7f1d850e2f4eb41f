"""Read a request body within the limits and parse it into a list of raw events.

The size limit is enforced twice: up front from ``Content-Length`` (cheap, before a
byte is read) and again while reading, since a client may lie or stream chunked.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from ingest_gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from ingest_gateway.inflate import ENCODINGS, Decoder

# Besides JSON: text/plain is what navigator.sendBeacon sends for a string, and
# x-www-form-urlencoded is what `curl -d` sends unless told otherwise. Either body must
# still parse as JSON; "" is a request without a Content-Type.
JSON_TYPES = frozenset({"application/json", "text/plain", "application/x-www-form-urlencoded", ""})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/json-seq"})


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


def check_content(request: Request) -> str:
    """Refuse what cannot be read; returns the Content-Encoding to inflate."""
    kind = media_type(request)
    if kind not in JSON_TYPES and kind not in NDJSON_TYPES and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            "unsupported_media_type",
            f"Content-Type {kind!r} is not accepted; send 'application/json' or "
            "'application/x-ndjson'",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ENCODINGS:
        raise UnsupportedMediaType(
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not accepted; use gzip, deflate or br",
        )
    return encoding


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge("body_too_large", f"the body is over the limit of {limit} bytes")


async def read_body(
    request: Request, limit: int, encoding: str = "identity", compressed_limit: int | None = None
) -> bytes:
    """The body, inflated while it streams in; 413 past ``limit`` (inflated) or
    ``compressed_limit`` (as sent), whichever comes first."""
    wire_limit = limit if encoding == "identity" else (compressed_limit or limit)
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest("bad_content_length", "Content-Length is not a number") from None
        if size > wire_limit:
            raise _too_large(wire_limit)
    inflater = Decoder(encoding, limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > wire_limit:
            raise _too_large(wire_limit)
        chunks.append(inflater.feed(chunk))
    inflater.finish()
    return b"".join(chunks)


def parse_ndjson(body: bytes, max_events: int) -> list[Any]:
    """One event per line; a line that is not JSON is that event's problem, not the batch's."""
    events: list[Any] = []
    for line in body.splitlines():
        if not line.strip():
            continue
        try:
            events.append(orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            events.append(NotJson(str(exc)))
    if not events:
        raise BadRequest("empty_batch", "the body holds no events")
    if len(events) > max_events:
        raise PayloadTooLarge(
            "too_many_events", f"the batch holds {len(events)} events; the limit is {max_events}"
        )
    return events


class NotJson(str):
    """An NDJSON line that did not parse; the stamper rejects it with this reason."""


def parse_events(body: bytes, max_events: int) -> list[Any]:
    """A JSON array of events, or one event object (a batch of one)."""
    if not body.strip():
        raise BadRequest("empty_body", "the body is empty; send a JSON array of events")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("malformed_json", f"the body is not valid JSON: {exc}") from None
    if isinstance(parsed, dict):
        return [parsed]
    if not isinstance(parsed, list):
        raise BadRequest(
            "invalid_body",
            f"expected a JSON array of events or one event object, got {json_type(parsed)}",
        )
    if not parsed:
        raise BadRequest("empty_batch", "the array holds no events")
    if len(parsed) > max_events:
        raise PayloadTooLarge(
            "too_many_events",
            f"the batch holds {len(parsed)} events; the limit is {max_events}",
        )
    return parsed


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
