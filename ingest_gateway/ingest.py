"""``POST /v1/events``: authenticate, read, stamp, hand to Kafka, answer after the acks.

The batch is accepted partially: valid events go to Kafka, the others come back in
``rejected`` with their index and reason. The answer is 202 only once Kafka acked
every produced record; 400 (same shape) when no event was valid; 429 (whole batch,
``Retry-After``) when its valid events would pass the project's rate or monthly quota.
Every event is stamped with the sender's IP and user agent (``ingest_gateway.client``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from ingest_gateway.auth import authenticate
from ingest_gateway.body import (
    NDJSON_TYPES,
    check_content,
    media_type,
    parse_events,
    parse_ndjson,
    read_body,
)
from ingest_gateway.client import TrustedProxies, request_client
from ingest_gateway.handoff import admit, hand_off
from ingest_gateway.limits import Gate
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.producer import Producer
from ingest_gateway.responses import json_response
from ingest_gateway.stamp import Stamper
from pulseline.keys import KeyRing
from pulseline.settings import GatewaySettings

# The handler reads the body itself (limits, partial acceptance), so FastAPI cannot
# infer it; this documents it for /docs.
OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"type": "object"}},
                "example": [
                    {"kind": "pageview", "distinct_id": "visitor-1", "attributes": {"url": "/"}},
                    {"kind": "error", "attributes": {"message": "boom"}},
                ],
            }
        },
    }
}


def ingest_router(
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
    router = APIRouter()

    @router.post("/v1/events", status_code=202, openapi_extra=OPENAPI_BODY)
    async def ingest_events(request: Request) -> Response:
        key = authenticate(request, keyring)
        encoding = check_content(request)
        body = await read_body(
            request, settings.max_request_bytes, encoding, settings.max_compressed_bytes
        )
        metrics.bytes_in.inc(len(body))
        if media_type(request) in NDJSON_TYPES:
            items = parse_ndjson(body, settings.max_batch_events)
        else:
            items = parse_events(body, settings.max_batch_events)
        now = datetime.now(UTC)
        client = request_client(request, proxies)
        stamped = stamper.stamp(items, key.project_id, now, client=client)
        metrics.count_rejected((r.kind, r.code) for r in stamped.rejected)
        answer = {
            "accepted": len(stamped.records),
            "event_ids": stamped.event_ids,
            "rejected": [r.as_json() for r in stamped.rejected],
        }
        if not stamped.records:
            return json_response(answer, 400)
        admit(limits, metrics, key.project_id, stamped, now)
        await hand_off(producer, metrics, stamped)
        return json_response(answer, 202)

    return router
