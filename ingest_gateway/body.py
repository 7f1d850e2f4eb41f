"""Read a request body within the limits and parse it into a list of raw events.

The size limit is enforced twice: up front from ``Content-Length`` (cheap, before a
byte is read) and again while reading, since a client may lie or stream chunked.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from ingest_gateway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

# Besides JSON: text/plain is what navigator.sendBeacon sends for a string, and
# x-www-form-urlencoded is what `curl -d` sends unless told otherwise. Either body must
# still parse as JSON; "" is a request without a Content-Type.
JSON_TYPES = frozenset({"application/json", "text/plain", "application/x-www-form-urlencoded", ""})


def check_content(request: Request) -> None:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in JSON_TYPES and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            "unsupported_media_type",
            f"Content-Type {media_type!r} is not accepted; send 'application/json'",
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedMediaType(
            "unsupported_encoding", f"Content-Encoding {encoding!r} is not accepted"
        )


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge("body_too_large", f"the body is over the limit of {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest("bad_content_length", "Content-Length is not a number") from None
        if size > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


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
