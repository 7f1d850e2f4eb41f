"""Prometheus metrics and probes of one Faust worker, on ``PULSELINE_PROCESSORS_WEB_*``.

``GET /metrics`` serves the default registry (the dead-letter counter of ``deadletter.py``
lives there too); ``/healthz`` answers while the worker's event loop is not stuck, and
``/readyz`` once the worker has started and its loop ticks. The server is a stdlib HTTP
server on a thread, so a blocked event loop still answers, and says so.

What is measured, without touching the agents: a sensor sees every event enter and leave
an agent's stream (events per agent, time per event, the last offset handled), and a
timer turns the offsets into lag per partition and counts the assigned partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.sensors import Sensor
from mode import Service
from prometheus_client import Counter, Gauge, Histogram

from pulseline.probe_server import Health, MetricsServer
from pulseline.settings import ProcessorSettings

log = logging.getLogger("pulseline.processors")

EVENTS = Counter("pulseline_processor_events_total", "Events handled, by agent", ["agent"])
EVENT_SECONDS = Histogram(
    "pulseline_processor_event_seconds",
    "Time an agent spends on one event",
    ["agent"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
)
LAG = Gauge(
    "pulseline_processor_consumer_lag",
    "Records behind the partition end, for partitions this worker holds",
    ["topic", "partition"],
)
ASSIGNED = Gauge(
    "pulseline_processor_assigned_partitions", "Source partitions this worker holds", ["topic"]
)
REBALANCES = Counter("pulseline_processor_rebalances_total", "Rebalances this worker went through")


class AgentSensor(Sensor):
    """Counts and times events per agent; remembers the next offset per partition."""

    def __init__(self, agent_of_topic: Mapping[str, str]) -> None:
        super().__init__()
        self.agent_of_topic = dict(agent_of_topic)
        self.next_offset: dict[Any, int] = {}
        # Label lookups cost more than the increments; resolve them once per topic.
        self._per_topic = {
            topic: (EVENTS.labels(agent), EVENT_SECONDS.labels(agent))
            for topic, agent in self.agent_of_topic.items()
        }
        self._other = (EVENTS.labels("other"), EVENT_SECONDS.labels("other"))

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> dict[str, float]:
        return {"in": time.perf_counter()}

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: dict[str, Any] | None = None
    ) -> None:
        count, seconds = self._per_topic.get(tp.topic, self._other)
        count.inc()
        if state is not None:
            seconds.observe(time.perf_counter() - state["in"])
        self.next_offset[tp] = offset + 1

    def on_rebalance_end(self, app: Any, state: Any) -> None:
        REBALANCES.inc()


@dataclass
class LagTracker:
    """Turns high-water marks and handled offsets into the lag and assignment gauges."""

    shown: set[tuple[str, int]] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)

    def update(
        self, ends: Mapping[tuple[str, int], int | None], handled: Mapping[tuple[str, int], int]
    ) -> None:
        per_topic: dict[str, int] = {}
        for (topic, partition), end in ends.items():
            per_topic[topic] = per_topic.get(topic, 0) + 1
            done = handled.get((topic, partition))
            if end is None or done is None:
                continue
            LAG.labels(topic, str(partition)).set(max(end - done, 0))
            self.shown.add((topic, partition))
        for gone in self.shown - set(ends):
            with contextlib.suppress(KeyError):
                LAG.remove(gone[0], str(gone[1]))
            self.shown.discard(gone)
        self.topics |= set(per_topic)
        for topic in self.topics:
            ASSIGNED.labels(topic).set(per_topic.get(topic, 0))


def install(app: faust.App, settings: ProcessorSettings) -> None:
    """Measure every agent already declared on ``app`` and serve the endpoint with it."""
    readers: dict[str, list[str]] = {}
    for agent in app.agents.values():
        for topic in agent.channel.topics:
            readers.setdefault(topic, []).append(agent.name)
    shared = {topic: names for topic, names in readers.items() if len(names) > 1}
    if shared:
        # Faust would hang a rebalance on such a topic (see agents/route.py).
        raise RuntimeError(f"one agent per topic, but several read {shared}")
    agent_of_topic = {topic: names[0] for topic, names in readers.items()}
    sensor = AgentSensor(agent_of_topic)
    app.sensors.add(sensor)
    health = Health()
    tracker = LagTracker()
    server = MetricsServer(settings.processors_web_host, settings.processors_web_port, health)

    @app.timer(1.0, name="observe_worker")  # type: ignore[untyped-decorator]
    async def observe() -> None:
        health.beat(time.monotonic())
        consumer = app.consumer
        held = {tp for tp in consumer.assignment() if tp.topic in agent_of_topic}
        for tp in set(sensor.next_offset) - held:
            del sensor.next_offset[tp]
        tracker.update(
            {(tp.topic, tp.partition): _highwater(consumer, tp) for tp in held},
            {(tp.topic, tp.partition): offset for tp, offset in sensor.next_offset.items()},
        )

    @app.service
    class Endpoint(Service):
        async def on_start(self) -> None:
            server.start()

        async def on_stop(self) -> None:
            await asyncio.to_thread(server.stop)


def _highwater(consumer: Any, tp: Any) -> int | None:
    try:
        end = consumer.highwater(tp)
    except Exception:  # not fetched yet, or revoked meanwhile
        return None
    return int(end) if end is not None else None
