"""Cron monitors: one row per run, one row per monitor state, and the topics carrying them.

The router forwards ``ingest.check_in`` to ``CHECK_INS_BY_MONITOR`` under the same key
(``project_id:slug``); the monitors agent reads that and keeps each monitor's state in a
table under the key, co-partitioned with it. Its outputs are keyed by ``project_id:monitor_id``:
the id survives a slug rename, and one monitor's rows stay in order on one partition.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pulseline.schemas import Event
from pulseline.topic_spec import DAY_MS, Role, TopicSpec

RunStatus = Literal["ok", "fail", "lost", "running"]
MonitorStatus = Literal["new", "up", "late", "down", "paused"]

OUTPUT_TAIL_CHARS = 1024
"""How much of a run's output (its end) a run row keeps."""


class RunRecord(BaseModel):
    """v1: one row per run; a ``running`` row is replaced by its finish (higher ``version``)."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    project_id: int
    monitor_id: str
    monitor_slug: str
    run_id: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    status: RunStatus
    exit_code: int | None = None
    output_size: int | None = None
    output_tail: str | None = None
    version: int

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class MonitorStateRow(BaseModel):
    """v1: a monitor's state after a change; the highest ``version`` is the current one."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    project_id: int
    monitor_id: str
    monitor_slug: str
    state: MonitorStatus
    last_ping_at: datetime | None
    next_expected_at: datetime | None
    version: int

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class MonitorTableEntry(BaseModel):
    """v1 value of the monitor-state table (and its changelog)."""

    schema_version: Literal[1] = 1
    monitor_id: str
    partition: int
    state: dict[str, Any]


RUNS = TopicSpec(
    "derived.runs",
    Role.DERIVED,
    "project_id:monitor_id",
    RunRecord,
    retention_ms=30 * DAY_MS,
    doc="cron runs: running on start, then ok/fail/lost; newest version per run_id wins",
)
MONITOR_STATES = TopicSpec(
    "derived.monitor_states",
    Role.DERIVED,
    "project_id:monitor_id",
    MonitorStateRow,
    retention_ms=30 * DAY_MS,
    doc="every change of a monitor's state (new/up/late/down/paused)",
)
MONITOR_STATES_CHANGELOG = TopicSpec(
    "pulseline-processors-monitor_states-changelog",
    Role.INTERNAL,
    "project_id:monitor slug",
    MonitorTableEntry,
    retention_ms=None,
    compacted=True,
    doc="Faust changelog of the per-monitor state table (same key as its check-ins)",
)

CHECK_INS_BY_MONITOR = TopicSpec(
    "pulseline-processors-check_ins-repartition",
    Role.INTERNAL,
    "project_id:monitor slug",
    Event,
    retention_ms=DAY_MS,
    doc="ingest.check_in as the router passes it on, for the monitors agent alone",
)

TOPICS: tuple[TopicSpec, ...] = (
    RUNS,
    MONITOR_STATES,
    CHECK_INS_BY_MONITOR,
    MONITOR_STATES_CHANGELOG,
)
