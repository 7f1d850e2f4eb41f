"""Prometheus metrics of the alert runner, on its own registry and its own ``/metrics`` port."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from pulseline.probe_server import Health, MetricsServer

log = logging.getLogger("pulseline.alerting")

SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass
class AlertingMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.deliveries = Counter(
            "pulseline_alert_deliveries_total",
            "Delivery attempts, by channel type and resulting status",
            ["channel_type", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "pulseline_alert_attempt_seconds",
            "Duration of one delivery attempt",
            ["channel_type"],
            buckets=SECONDS,
            registry=r,
        )
        self.first_attempt = Histogram(
            "pulseline_alert_first_attempt_seconds",
            "From the incident transition (updated_at) to its first delivery attempt",
            buckets=SECONDS,
            registry=r,
        )
        self.held_back = Counter(
            "pulseline_alert_held_back_total",
            "Transitions not notified to a channel, by reason (flapping)",
            ["reason"],
            registry=r,
        )
        self.digested = Counter(
            "pulseline_alert_digested_total",
            "Transitions sent inside a digest rather than alone, by channel type",
            ["channel_type"],
            registry=r,
        )
        self.rejected = Counter(
            "pulseline_alert_incidents_rejected_total",
            "Incident records that could not be read, by reason",
            ["reason"],
            registry=r,
        )

    def serve(self, host: str, port: int, health: Health) -> MetricsServer | None:
        """``/metrics``, ``/healthz``, ``/readyz``; none for port 0; a taken port logs a warning."""
        if port == 0:
            return None
        server = MetricsServer(host, port, health, self.registry)
        return server if server.start() else None
