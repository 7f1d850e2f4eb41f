"""``/healthz`` (the process answers), ``/readyz`` (control plane loaded, Kafka answers),
and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from ingest_gateway.errors import error_body
from ingest_gateway.metrics import GatewayMetrics
from ingest_gateway.producer import Producer
from ingest_gateway.responses import json_response
from pulseline.control.store import ControlStore


def probes_router(
    producer: Producer, metrics: GatewayMetrics, control: ControlStore | None = None
) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @router.get("/readyz")
    async def readyz() -> Response:
        if control is not None and not control.loaded:
            return json_response(error_body("control_plane_loading", "keys not loaded yet"), 503)
        if await producer.ready():
            return json_response({"status": "ready"})
        return json_response(error_body("kafka_unavailable", "Kafka does not answer"), 503)

    @router.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    return router
