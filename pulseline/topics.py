"""The closed registry of Kafka topics: name, partitions, partition key, schema, retention.

Every topic the pipeline touches is declared here, Faust's changelog and repartition
topics included, because the broker never auto-creates topics. ``topic_prefix``
namespaces a whole deployment (tests give each run its own).

Partitioning: the gateway, the only writer of ``ingest.*``, picks a record's partition as
``crc32(key) % partitions`` (``ingest_gateway.batcher``); agents whose tables are keyed like
their ingest topic rely on that staying stable. Every other topic is written by Faust or
aiokafka with Kafka's default murmur2 partitioner, so a service that writes to a topic an
agent consumes together with a table (issue commands, incident signals) must use the default.
"""

from __future__ import annotations

from pulseline.control.entities import ControlRecord
from pulseline.records import alerts, incidents, issues, monitors, sessions, stats
from pulseline.schemas import (
    CountDelta,
    CountTableEntry,
    DeadLetter,
    Event,
    EventKind,
    ProjectCount,
)
from pulseline.topic_spec import DAY_MS, Role, TopicSpec

__all__ = ["DAY_MS", "REGISTRY", "Role", "TopicSpec", "by_name", "ingest_topic"]


def _ingest(kind: EventKind, key: str) -> TopicSpec:
    return TopicSpec(f"ingest.{kind.value}", Role.INGEST, key, Event, doc=f"stamped {kind} events")


INGEST: dict[EventKind, TopicSpec] = {
    EventKind.ERROR: _ingest(EventKind.ERROR, "project_id:event_id"),
    EventKind.TRANSACTION: _ingest(EventKind.TRANSACTION, "project_id:event_id"),
    EventKind.PAGEVIEW: _ingest(EventKind.PAGEVIEW, "project_id:distinct_id"),
    EventKind.EVENT: _ingest(EventKind.EVENT, "project_id:distinct_id"),
    EventKind.WEB_VITAL: _ingest(EventKind.WEB_VITAL, "project_id:distinct_id"),
    EventKind.CHECK_IN: _ingest(EventKind.CHECK_IN, "project_id:attributes.monitor"),
    EventKind.METRIC: _ingest(EventKind.METRIC, "project_id:attributes.name"),
}

PROJECT_COUNTS = TopicSpec(
    "derived.project_counts",
    Role.DERIVED,
    "project_id",
    ProjectCount,
    doc="events per project, family and minute",
)
PROJECT_COUNTS_BY_PROJECT = TopicSpec(
    "pulseline-processors-by_project-repartition",
    Role.INTERNAL,
    "project_id",
    CountDelta,
    retention_ms=DAY_MS,
    doc="per-batch count deltas re-keyed by project for the counting agent",
)
PROJECT_COUNTS_CHANGELOG = TopicSpec(
    "pulseline-processors-project_counts-changelog",
    Role.INTERNAL,
    "project_id|kind|minute",
    CountTableEntry,
    retention_ms=None,
    compacted=True,
    doc="Faust changelog of the per-project counts table",
)
DEAD_LETTERS = TopicSpec(
    "dlq.events",
    Role.DEAD_LETTER,
    "source key",
    DeadLetter,
    retention_ms=30 * DAY_MS,
    doc="what a stage could not handle; headers: error, stage, source topic/partition/offset",
)

CONTROL = TopicSpec(
    "control.entities",
    Role.CONTROL,
    "<type>:<id>",
    ControlRecord,
    retention_ms=None,
    compacted=True,
    doc="projects, keys, monitors, channels, rules; one partition keeps writes in order",
    partitions=1,
)

REGISTRY: tuple[TopicSpec, ...] = (
    CONTROL,
    *INGEST.values(),
    PROJECT_COUNTS,
    PROJECT_COUNTS_BY_PROJECT,
    PROJECT_COUNTS_CHANGELOG,
    DEAD_LETTERS,
    # Each derived record module declares its topics next to its schemas.
    *incidents.TOPICS,
    *issues.TOPICS,
    *sessions.TOPICS,
    *monitors.TOPICS,
    *stats.TOPICS,
    *alerts.TOPICS,
)


def ingest_topic(kind: EventKind) -> TopicSpec:
    return INGEST[kind]


def by_name(name: str) -> TopicSpec:
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown topic {name!r}: every topic must be declared in pulseline.topics")
