"""Incidents: one model for every kind of problem, and the topics that carry them.

Detectors (monitor, issue and anomaly agents) send ``IncidentSignal``s keyed by dedup key to
``processors.incident_signals``; the incidents agent keeps the book (one open incident per
dedup key) and writes every transition as an ``Incident`` to ``derived.incidents``, which
alerting and storage read.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pulseline.topic_spec import DAY_MS, Role, TopicSpec


class IncidentKind(StrEnum):
    MONITOR_MISSED = "monitor_missed"
    MONITOR_LATE = "monitor_late"
    MONITOR_FAILED = "monitor_failed"
    DURATION_ANOMALY = "duration_anomaly"
    OUTPUT_SIZE_ANOMALY = "output_size_anomaly"
    ERROR_SPIKE = "error_spike"
    NEW_ISSUE = "new_issue"
    REGRESSION = "regression"
    SLOW_ENDPOINT = "slow_endpoint"
    CHANNEL_DISABLED = "channel_disabled"


class Severity(StrEnum):
    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class IncidentState(StrEnum):
    OPEN = "open"
    ACKED = "acked"
    RESOLVED = "resolved"


class Incident(BaseModel):
    """v1 value on the derived incidents topic; keyed by ``dedup_key``."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    id: str
    project_id: int
    kind: IncidentKind
    severity: Severity
    state: IncidentState
    dedup_key: str
    title: str
    explanation: str
    links: dict[str, str]
    monitor_id: str | None = None  # routing: rules and maintenance windows by monitor
    tags: list[str] = Field(default_factory=list)  # routing: rules by tag
    occurrences: int = 1
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    resolve_reason: str | None = None
    version: int

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class IncidentSignal(BaseModel):
    """v1: a detector's wish to open, resolve or ack the incident behind ``dedup_key``."""

    schema_version: Literal[1] = 1
    action: Literal["open", "resolve", "ack"]
    dedup_key: str
    at: datetime
    project_id: int | None = None
    kind: IncidentKind | None = None
    severity: Severity | None = None
    title: str = ""
    explanation: str = ""
    links: dict[str, str] = Field(default_factory=dict)
    monitor_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    reason: str = ""


INCIDENTS = TopicSpec(
    "derived.incidents",
    Role.DERIVED,
    "dedup_key",
    Incident,
    retention_ms=90 * DAY_MS,
    doc="every incident transition (opened, updated, acked, resolved), newest version wins",
)
INCIDENT_SIGNALS = TopicSpec(
    "processors.incident_signals",
    Role.INTERNAL,
    "dedup_key",
    IncidentSignal,
    doc="open/resolve/ack wishes from the detectors and the read API, keyed for the book",
)
INCIDENT_BOOK_CHANGELOG = TopicSpec(
    "pulseline-processors-incident_book-changelog",
    Role.INTERNAL,
    "dedup_key",
    Incident,
    retention_ms=None,
    compacted=True,
    doc="Faust changelog of the open incidents by dedup key",
)

TOPICS: tuple[TopicSpec, ...] = (INCIDENTS, INCIDENT_SIGNALS, INCIDENT_BOOK_CHANGELOG)
