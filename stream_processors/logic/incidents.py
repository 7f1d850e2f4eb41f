"""One incident model for every kind of problem, and the book that deduplicates them. Pure.

An incident is identified by its ``dedup_key`` while open: opening the same key again
updates the open incident (``occurrences`` + 1) instead of creating another. Once resolved,
the key is free and the next open starts a new incident with a new id.

Lifecycle (each arrow emits one ``Incident`` record on the derived incidents topic)::

    open ──ack──▶ acked
      │             │
      └──resolve────┴──▶ resolved

``version`` grows with every record of an incident (microseconds of ``updated_at``, bumped
past the previous version) so a ClickHouse ReplacingMergeTree keeps the latest record.
"""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime

from pulseline.records.incidents import Incident, IncidentKind, IncidentState, Severity

__all__ = [
    "Incident",
    "IncidentBook",
    "IncidentKind",
    "IncidentRequest",
    "IncidentState",
    "ResolveRequest",
    "Severity",
]

_NAMESPACE = uuid.UUID("5d1a3e8c-2b7f-4c6e-9a41-0f3c8d2e7b90")


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True)
class IncidentRequest:
    """A detector's wish to open (or re-signal) the incident for ``dedup_key``."""

    project_id: int
    kind: IncidentKind
    severity: Severity
    dedup_key: str
    title: str
    explanation: str
    links: dict[str, str] = field(default_factory=dict)
    monitor_id: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolveRequest:
    """A detector's report that the problem behind ``dedup_key`` is gone."""

    dedup_key: str
    reason: str


def incident_id(dedup_key: str, opened_at: datetime) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{dedup_key}|{opened_at.isoformat()}"))


def _version(now: datetime, previous: int = 0) -> int:
    return max(previous + 1, int(now.timestamp() * 1_000_000))


class IncidentBook:
    """Open and acked incidents by dedup key; resolved ones leave the book.

    ``store`` may be any mutable mapping (a dict in tests, a changelogged table in the
    agent). Every method returns the record to emit, or ``None`` when nothing changed.
    """

    def __init__(self, store: MutableMapping[str, Incident] | None = None) -> None:
        self.store: MutableMapping[str, Incident] = {} if store is None else store

    def get(self, dedup_key: str) -> Incident | None:
        return self.store.get(dedup_key)

    def open(self, request: IncidentRequest, now: datetime) -> Incident:
        current = self.store.get(request.dedup_key)
        if current is None:
            incident = Incident(
                id=incident_id(request.dedup_key, now),
                project_id=request.project_id,
                kind=request.kind,
                severity=request.severity,
                state=IncidentState.OPEN,
                dedup_key=request.dedup_key,
                title=request.title,
                explanation=request.explanation,
                links=dict(request.links),
                monitor_id=request.monitor_id,
                tags=list(request.tags),
                opened_at=now,
                updated_at=now,
                version=_version(now),
            )
        else:
            severity = max(current.severity, request.severity, key=_RANK.__getitem__)
            incident = current.model_copy(
                update={
                    "severity": severity,
                    "title": request.title,
                    "explanation": request.explanation,
                    "links": {**current.links, **request.links},
                    "occurrences": current.occurrences + 1,
                    "updated_at": now,
                    "version": _version(now, current.version),
                }
            )
        self.store[request.dedup_key] = incident
        return incident

    def ack(self, dedup_key: str, now: datetime) -> Incident | None:
        current = self.store.get(dedup_key)
        if current is None or current.state is not IncidentState.OPEN:
            return None
        incident = current.model_copy(
            update={
                "state": IncidentState.ACKED,
                "updated_at": now,
                "version": _version(now, current.version),
            }
        )
        self.store[dedup_key] = incident
        return incident

    def resolve(self, dedup_key: str, now: datetime, reason: str) -> Incident | None:
        current = self.store.pop(dedup_key, None)
        if current is None:
            return None
        return current.model_copy(
            update={
                "state": IncidentState.RESOLVED,
                "updated_at": now,
                "resolved_at": now,
                "resolve_reason": reason,
                "version": _version(now, current.version),
            }
        )

    def apply(self, request: IncidentRequest | ResolveRequest, now: datetime) -> Incident | None:
        """Apply a detector's output: open for a request, resolve for a resolve request."""
        if isinstance(request, IncidentRequest):
            return self.open(request, now)
        return self.resolve(request.dedup_key, now, request.reason)
