"""``POST /api/<project>/envelope/`` and ``/api/<project>/store/``: Sentry SDKs report here.

``event``, ``transaction`` and ``check_in`` items become ``error``, ``transaction`` and
``check_in`` events, stamped and handed to Kafka like native ones; every other item
(sessions, client reports, attachments, unknown types) is accepted and only counted.
The answer, 200 ``{"id": "<event id hex>"}``, comes once Kafka acked. Errors keep the
gateway's body shape; every answer carries CORS headers so browser SDKs can read it.
Over the project's rate or monthly quota the answer is Relay's: 429 with ``Retry-After``
and ``X-Sentry-Rate-Limits``, so SDKs back off (and drop rather than queue).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter
from prometheus_client import Counter
from starlette.requests import Request
from starlette.responses import Response

from ingest_gateway.auth import Grant
from ingest_gateway.client import ClientInfo, TrustedProxies, request_client
from ingest_gateway.errors import (
    BadRequest,
    GatewayError,
    KafkaUnavailable,
    PayloadTooLarge,
    RateLimited,
    error_body,
)
from ingest_gateway.handoff import admit, hand_off
from ingest_gateway.inflate import Decoder
from ingest_gateway.limits import Gate
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.producer import Producer
from ingest_gateway.responses import json_response
from ingest_gateway.sentry.auth import check_key, find_key, parse_project
from ingest_gateway.sentry.envelope import EnvelopeError, Item, parse_envelope
from ingest_gateway.sentry.mapping import (
    check_in_event,
    error_event,
    event_uuid,
    transaction_event,
)
from ingest_gateway.stamp import Stamper
from pulseline.keys import KeyRing
from pulseline.settings import GatewaySettings

# Item types counted under their own label; anything else is "other" (bounded series).
KNOWN_ITEMS = frozenset(
    {
        "event",
        "transaction",
        "check_in",
        "session",
        "sessions",
        "client_report",
        "attachment",
        "user_report",
        "feedback",
        "profile",
        "profile_chunk",
        "replay_event",
        "replay_recording",
        "replay_video",
        "span",
        "log",
        "otel_log",
        "statsd",
        "metric_buckets",
        "trace_metric",
    }
)
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "x-sentry-error, x-sentry-rate-limits, retry-after",
}
PREFLIGHT_HEADERS = (
    "x-sentry-auth, x-requested-with, origin, accept, content-type, content-encoding,"
    " authorization, sentry-trace, baggage"
)

Handler = Callable[[str, Request], Awaitable[Response]]


def map_item(item: Item, fallback_id: Any) -> dict[str, Any] | None:
    """The EventIn dict of an event-bearing item; None for items that are only counted.

    Raises ``ValueError`` when the payload of an event-bearing item is not a JSON object.
    """
    if item.type not in ("event", "transaction", "check_in"):
        return None
    payload = orjson.loads(item.payload)
    if not isinstance(payload, dict):
        raise ValueError(f"the {item.type} item is not a JSON object")
    if item.type == "check_in":
        return check_in_event(payload)
    if item.type == "transaction":
        return transaction_event(payload, fallback_id)
    return error_event(payload, fallback_id)


def _answer_error(exc: GatewayError, retry_after_s: int) -> Response:
    # Header values must be Latin-1; the detail may quote a client's non-ASCII input.
    detail = exc.detail.encode("ascii", "backslashreplace").decode()
    headers = {**CORS, "X-Sentry-Error": detail}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
        headers["X-Sentry-Rate-Limits"] = exc.sentry_header()
        return json_response(exc.body(), exc.status, headers)
    if isinstance(exc, KafkaUnavailable):
        headers["Retry-After"] = str(retry_after_s)
    return json_response(error_body(exc.code, exc.detail), exc.status, headers)


def sentry_router(
    settings: GatewaySettings,
    keyring: KeyRing,
    producer: Producer,
    metrics: GatewayMetrics,
    gate: Gate | None = None,
) -> APIRouter:
    """``gate`` is shared by every door of an app; without one, the router makes its own."""
    limits = gate or Gate.from_settings(settings, None)
    proxies = TrustedProxies.parse(settings.trusted_proxies)
    stamper = Stamper.from_settings(settings)
    limit = settings.max_request_bytes
    items_seen = Counter(
        "pulseline_gateway_sentry_items",
        "Sentry envelope items received, by item type (unlisted types count as 'other')",
        ["type"],
        registry=metrics.registry,
    )
    router = APIRouter()

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge("body_too_large", f"the body is over the limit of {limit} bytes")
        decoder = Decoder(request.headers.get("content-encoding", "identity"), limit)
        parts: list[bytes] = []
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge(
                    "body_too_large", f"the body is over the limit of {limit} bytes"
                )
            parts.append(decoder.feed(chunk))
        decoder.finish()
        metrics.bytes_in.inc(received)
        return b"".join(parts)

    async def produce(
        events: list[dict[str, Any]], grant: Grant, rejected: list[str], client: ClientInfo
    ) -> str:
        """Stamp, charge the limits and send; the id of the first produced event (hex)."""
        now = datetime.now(UTC)
        stamped = stamper.stamp(events, grant.project_id, now, client=client)
        metrics.count_rejected((r.kind, r.code) for r in stamped.rejected)
        rejected.extend(r.reason for r in stamped.rejected)
        if not stamped.records:
            if rejected:
                raise BadRequest("invalid_event", "; ".join(rejected)[:1000])
            return ""
        admit(limits, metrics, grant.project_id, stamped, now)
        await hand_off(producer, metrics, stamped)
        return uuid.UUID(stamped.event_ids[0]).hex

    async def envelope(project_id: str, request: Request) -> Response:
        project = parse_project(project_id)
        raw_key = find_key(request.headers, request.query_params)
        grant = check_key(raw_key, keyring, project) if raw_key else None
        body = await read_body(request)
        try:
            parsed = parse_envelope(body)
        except EnvelopeError as exc:
            raise BadRequest("invalid_envelope", str(exc)) from None
        if grant is None:
            grant = check_key(find_key({}, {}, parsed.headers.get("dsn")), keyring, project)
        header_id = event_uuid(parsed.headers.get("event_id"))
        events: list[dict[str, Any]] = []
        rejected: list[str] = []
        for item in parsed.items:
            items_seen.labels(item.type if item.type in KNOWN_ITEMS else "other").inc()
            try:
                mapped = map_item(item, header_id)
            except ValueError as exc:  # orjson's decode error is a ValueError
                metrics.count_rejected([(item.type, "invalid")])
                rejected.append(f"{item.type} item: {exc}")
                continue
            if mapped is not None:
                events.append(mapped)
        produced = await produce(events, grant, rejected, request_client(request, proxies))
        return json_response({"id": header_id.hex if header_id else produced or None}, 200, CORS)

    async def store(project_id: str, request: Request) -> Response:
        project = parse_project(project_id)
        grant = check_key(find_key(request.headers, request.query_params), keyring, project)
        body = await read_body(request)
        try:
            payload = orjson.loads(_legacy_body(body, limit))
        except orjson.JSONDecodeError as exc:
            raise BadRequest("malformed_json", f"the event is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise BadRequest("invalid_body", "the event must be a JSON object")
        mapped = (transaction_event if payload.get("type") == "transaction" else error_event)(
            payload
        )
        produced = await produce([mapped], grant, [], request_client(request, proxies))
        return json_response({"id": produced}, 200, CORS)

    def guarded(handler: Handler) -> Handler:
        async def answer(project_id: str, request: Request) -> Response:
            try:
                return await handler(project_id, request)
            except GatewayError as exc:
                return _answer_error(exc, settings.retry_after_s)

        return answer

    async def preflight(request: Request) -> Response:
        asked = request.headers.get("access-control-request-headers")
        headers = {
            **CORS,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": asked or PREFLIGHT_HEADERS,
            "Access-Control-Max-Age": "3600",
        }
        return Response(status_code=200, headers=headers)

    for name, handler in (("envelope", envelope), ("store", store)):
        for path in (f"/api/{{project_id}}/{name}/", f"/api/{{project_id}}/{name}"):
            router.add_api_route(
                path, guarded(handler), methods=["POST"], include_in_schema=path.endswith("/")
            )
            router.add_api_route(path, preflight, methods=["OPTIONS"], include_in_schema=False)
    return router


def _legacy_body(body: bytes, limit: int) -> bytes:
    """Old SDKs post ``base64(zlib(json))`` to store; anything else is taken as JSON."""
    if body.lstrip()[:1] in (b"{", b"[", b""):
        return body
    try:
        packed = base64.b64decode(body, validate=False)
    except (binascii.Error, ValueError):
        return body
    decoder = Decoder("deflate", limit)
    try:
        inflated = decoder.feed(packed)
        decoder.finish()
    except BadRequest:
        return body  # not zlib either: let the JSON parser name the problem
    return inflated
