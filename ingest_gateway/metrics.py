"""Prometheus metrics of one gateway app, in a registry of its own (not the global one).

Every event that reaches validation is counted once: accepted by kind, or rejected
by kind and reason (``invalid``, ``not_object``, ``too_large``, ``kafka_unavailable``,
``rate_limited``, ``quota_exceeded``).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PRODUCE_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "pulseline_gateway_requests",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.accepted = Counter(
            "pulseline_gateway_events_accepted",
            "Events acked by Kafka, by kind",
            ["kind"],
            registry=r,
        )
        self.rejected = Counter(
            "pulseline_gateway_events_rejected",
            "Events refused, by kind and reason",
            ["kind", "reason"],
            registry=r,
        )
        self.produce_seconds = Histogram(
            "pulseline_gateway_produce_seconds",
            "Time from handing a request's records to Kafka until the last ack (or failure)",
            buckets=PRODUCE_BUCKETS,
            registry=r,
        )
        self.bytes_in = Counter(
            "pulseline_gateway_request_bytes", "Request body bytes read", registry=r
        )

    def count_accepted(self, kinds: Iterable[str]) -> None:
        for kind, n in Tally(kinds).items():
            self.accepted.labels(kind).inc(n)

    def count_rejected(self, pairs: Iterable[tuple[str, str]]) -> None:
        for (kind, reason), n in Tally(pairs).items():
            self.rejected.labels(kind, reason).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class CountRequests:
    """ASGI middleware counting answered requests by route template and status."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            # The template, not the raw path, so a scan of random URLs adds no series;
            # "other" is a 404 or a route FastAPI does not report (/docs, /openapi.json).
            label = getattr(route, "path", None) or "other"
            self.metrics.requests.labels(label, str(status)).inc()
