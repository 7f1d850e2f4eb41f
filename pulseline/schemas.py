"""Versioned event schemas: the contract between the gateway, processors and storage.

``EventIn`` is what a client sends; ``Event`` (v1) is what travels on ``ingest.*``
topics once the gateway has stamped it. Derived records carry their own versions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pulseline.families import EventKind as EventKind
from pulseline.families import normalise

_Short = Field(default=None, max_length=200)


class EventIn(BaseModel):
    """One event as a client sends it; unknown top-level fields are refused by name.

    ``attributes`` is checked against the family of ``kind`` (``pulseline.families``)
    and replaced by its normalised form; a bad one is reported as ``attributes.<key>``.
    """

    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    event_id: UUID | None = None
    timestamp: datetime | None = None
    distinct_id: str | None = _Short
    session_id: str | None = _Short
    release: str | None = _Short
    environment: str | None = _Short
    attributes: dict[str, Any] = Field(default_factory=dict, validate_default=True)

    @field_validator("attributes")
    @classmethod
    def _family(cls, attributes: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        # A bad kind is already reported by name; there is no family to check against.
        return attributes if kind is None else normalise(kind, attributes)


class Event(BaseModel):
    """v1 envelope of a stamped event on an ``ingest.*`` topic."""

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = 1
    event_id: UUID
    project_id: int
    kind: EventKind
    timestamp: datetime
    received_at: datetime
    distinct_id: str | None = None
    session_id: str | None = None
    release: str | None = None
    environment: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class ProjectCount(BaseModel):
    """v1: events counted per project, family and minute; a newer count replaces an older."""

    schema_version: Literal[1] = 1
    project_id: int
    kind: EventKind
    minute: datetime
    count: int = Field(ge=0)


class CountDelta(BaseModel):
    """v1: events of one source partition for the counter ``key`` (``project|kind|minute``).

    One per counter and source partition per routed batch; ``offsets`` (ascending) name
    the events, so a batch routed again after a crash is not counted twice."""

    schema_version: Literal[1] = 1
    key: str
    source: str = Field(description="topic:partition the events were read from")
    offsets: list[int] = Field(min_length=1)


class CountTableEntry(BaseModel):
    """v1 value of the counts table (and its changelog): the count and, per source
    partition, the last offset counted (see ``stream_processors.logic.replay_guard``)."""

    n: int = Field(ge=0)
    marks: dict[str, int]
    at: float = Field(description="when it last changed, Unix seconds (wall clock)")
    by: str = Field("", description="host:pid of the worker that wrote it (forensics)")


class DeadLetter(BaseModel):
    """v1: the raw bytes of what could not be handled; headers say why and where from."""

    schema_version: Literal[1] = 1
    payload: bytes
