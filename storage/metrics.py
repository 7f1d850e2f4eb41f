"""Prometheus metrics of the storage process (sink and read API), on its own registry."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class StorageMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.rows = Counter("pulseline_sink_rows_total", "Rows inserted", ["table"], registry=r)
        self.dead_letters = Counter(
            "pulseline_sink_dead_letters_total",
            "Records dead-lettered by the sink",
            ["reason"],
            registry=r,
        )
        self.insert_seconds = Histogram(
            "pulseline_sink_insert_seconds", "ClickHouse insert latency", ["table"], registry=r
        )
        self.insert_failures = Counter(
            "pulseline_sink_insert_failures_total",
            "Failed insert attempts (retried)",
            ["table"],
            registry=r,
        )
        self.lag = Gauge(
            "pulseline_sink_consumer_lag",
            "Records behind the partition end",
            ["topic", "partition"],
            registry=r,
        )
        self.requests = Counter(
            "pulseline_api_requests_total", "Read API requests", ["route", "status"], registry=r
        )
