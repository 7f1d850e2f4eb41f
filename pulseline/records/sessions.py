"""Sessions: one visitor's visit, rebuilt from pageviews and custom events.

The router passes ``ingest.pageview`` and ``ingest.event`` on to ``SESSION_HITS`` keyed
``project_id:visitor``, where the visitor is the ``distinct_id``, else the client
``session_id`` (the gateway keyed such an event by its event id, so it scattered). The
sessions agent keeps each visitor's state in a table under that key, co-partitioned with
the hits.

``SESSION_SWEEP_TICKS`` carries one tick per partition and interval: a table can only be
written while handling a record of its partition, so the idle-session sweep runs on ticks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pulseline.schemas import Event
from pulseline.topic_spec import DAY_MS, Role, TopicSpec


class SessionRow(BaseModel):
    """v1: one version of a session; the highest ``version`` wins, ``closed`` marks the last."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = 1
    session_id: str
    project_id: int
    distinct_id: str
    started_at: datetime
    last_seen: datetime
    entry_page: str | None
    exit_page: str | None
    pageviews: int
    events: int
    duration_s: float
    bounce: bool
    referrer: str | None
    utm_source: str | None
    browser: str | None
    os: str | None
    device_type: str | None
    version: int
    closed: bool

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SessionTableEntry(BaseModel):
    """v1 value of the session table: the source partition and ``Session.to_dict()``.

    The partition lets a restarted worker rebuild its per-partition sweep index from the
    table alone; ``closed_at`` (wall clock) says when a swept state may be forgotten.
    """

    schema_version: Literal[1] = 1
    partition: int
    closed_at: datetime | None = None
    state: dict[str, Any]


class SweepTick(BaseModel):
    """v1: "sweep this partition as of ``at``"; sent to each partition by a timer."""

    schema_version: Literal[1] = 1
    at: datetime


SESSIONS = TopicSpec(
    "derived.sessions",
    Role.DERIVED,
    "project_id:distinct_id",
    SessionRow,
    retention_ms=30 * DAY_MS,
    doc="every version of a session (open, then closed); newest version wins",
)
SESSION_HITS = TopicSpec(
    "pulseline-processors-session_hits-repartition",
    Role.INTERNAL,
    "project_id:visitor",
    Event,
    retention_ms=DAY_MS,
    doc="pageviews and events keyed by visitor (distinct_id, else client session_id)",
)
SESSION_SWEEP_TICKS = TopicSpec(
    "pulseline-processors-session_sweep-ticks",
    Role.INTERNAL,
    "partition",
    SweepTick,
    retention_ms=3600 * 1000,
    doc="timer ticks, one per partition, that drive the idle-session sweep",
)
SESSIONS_CHANGELOG = TopicSpec(
    "pulseline-processors-sessions-changelog",
    Role.INTERNAL,
    "project_id:distinct_id",
    SessionTableEntry,
    retention_ms=None,
    compacted=True,
    doc="Faust changelog of the per-visitor session table",
)

TOPICS: tuple[TopicSpec, ...] = (
    SESSIONS,
    SESSION_HITS,
    SESSION_SWEEP_TICKS,
    SESSIONS_CHANGELOG,
)
