"""Issues: error events grouped by fingerprint, and the topics that carry them.

``ingest.error`` is keyed ``project_id:event_id``, so the issues agent first re-keys each
error by ``project_id:fingerprint`` through ``ERRORS_BY_FINGERPRINT``; the issue table,
its changelog and ``ISSUE_COMMANDS`` share that key and partition count, so an issue's
events and the read API's commands for it meet on one partition, in order. Commands must
be produced with Kafka's default (murmur2) partitioner, as the repartition topic is.

Per error the agent writes an ``ErrorGrouped`` link (event -> issue) for storage to join,
and per change an ``IssueRow``; the highest ``version`` of an issue is its current row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pulseline.schemas import Event
from pulseline.topic_spec import DAY_MS, Role, TopicSpec

IssueStatus = Literal["unresolved", "resolved", "ignored"]


def issue_key(project_id: int, fingerprint: str) -> bytes:
    """The partition key shared by every issue topic: ``project_id:fingerprint``."""
    return f"{project_id}:{fingerprint}".encode()


class IssueRow(BaseModel):
    """v1: an issue after a change; ``users`` is a HyperLogLog estimate (about 3%)."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    project_id: int
    fingerprint: str
    title: str
    culprit: str | None
    level: str
    status: IssueStatus
    first_seen: datetime
    last_seen: datetime
    count: int
    users: int
    first_release: str | None
    last_release: str | None
    rule: str | None
    version: int

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ErrorGrouped(BaseModel):
    """v1: which issue one error event belongs to (written once per distinct event)."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    event_id: str
    project_id: int
    fingerprint: str
    timestamp: datetime
    rule: str

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class IssueCommand(BaseModel):
    """v1: a person's decision about an issue; ``at`` is when it was taken."""

    schema_version: Literal[1] = 1
    action: Literal["resolve", "ignore", "unresolve"]
    project_id: int
    fingerprint: str
    at: datetime


class IssueTableEntry(BaseModel):
    """v1 value of the issue table (and its changelog): ``logic.issues.Issue.to_dict()``."""

    schema_version: Literal[1] = 1
    state: dict[str, Any]


ISSUES = TopicSpec(
    "derived.issues",
    Role.DERIVED,
    "project_id:fingerprint",
    IssueRow,
    retention_ms=90 * DAY_MS,
    doc="every change of an issue (count, status, users); newest version wins",
)
ERROR_GROUPS = TopicSpec(
    "derived.error_groups",
    Role.DERIVED,
    "project_id:fingerprint",
    ErrorGrouped,
    retention_ms=30 * DAY_MS,
    doc="error event id -> issue fingerprint, for joining events to their issue",
)
ISSUE_COMMANDS = TopicSpec(
    "processors.issue_commands",
    Role.INTERNAL,
    "project_id:fingerprint",
    IssueCommand,
    doc="resolve/ignore/unresolve from the read API; murmur2-partitioned like the repartition",
)
ERRORS_BY_FINGERPRINT = TopicSpec(
    "pulseline-processors-errors_by_fingerprint-repartition",
    Role.INTERNAL,
    "project_id:fingerprint",
    Event,
    retention_ms=DAY_MS,
    doc="ingest.error re-keyed by fingerprint for the issues agent",
)
ISSUES_CHANGELOG = TopicSpec(
    "pulseline-processors-issues-changelog",
    Role.INTERNAL,
    "project_id:fingerprint",
    IssueTableEntry,
    retention_ms=None,
    compacted=True,
    doc="Faust changelog of the issue table",
)

TOPICS: tuple[TopicSpec, ...] = (
    ISSUES,
    ERROR_GROUPS,
    ISSUE_COMMANDS,
    ERRORS_BY_FINGERPRINT,
    ISSUES_CHANGELOG,
)
