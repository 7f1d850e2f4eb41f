"""Detector requests to ``IncidentSignal``s and signals to the ``IncidentBook``; keep the
book's incidents as JSON. Pure.

The incidents agent stores the book in a Faust table whose values must be JSON-able;
``JsonIncidents`` presents such a mapping as the ``MutableMapping[str, Incident]`` the book
expects.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import datetime
from typing import Any

from pulseline.records.incidents import Incident, IncidentSignal
from stream_processors.logic.incidents import IncidentBook, IncidentRequest, ResolveRequest


def signal_of(
    request: IncidentRequest | ResolveRequest, at: datetime, project_id: int | None = None
) -> IncidentSignal:
    """The signal a detector sends for ``request``; ``project_id`` labels a resolve."""
    if isinstance(request, ResolveRequest):
        return IncidentSignal(
            action="resolve",
            dedup_key=request.dedup_key,
            at=at,
            project_id=project_id,
            reason=request.reason,
        )
    return IncidentSignal(
        action="open",
        dedup_key=request.dedup_key,
        at=at,
        project_id=request.project_id,
        kind=request.kind,
        severity=request.severity,
        title=request.title,
        explanation=request.explanation,
        links=dict(request.links),
        monitor_id=request.monitor_id,
        tags=list(request.tags),
    )


class JsonIncidents(MutableMapping[str, Incident]):
    def __init__(self, raw: MutableMapping[str, Any]) -> None:
        self.raw = raw

    def __getitem__(self, key: str) -> Incident:
        return Incident.model_validate(self.raw[key])

    def __setitem__(self, key: str, value: Incident) -> None:
        self.raw[key] = value.to_json()

    def __delitem__(self, key: str) -> None:
        del self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)


def apply_signal(book: IncidentBook, signal: IncidentSignal) -> Incident | None:
    """The incident record the signal produced (``None``: nothing changed), timed by ``at``.

    Raises ``ValueError`` for an ``open`` without project, kind or severity.
    """
    if signal.action == "ack":
        return book.ack(signal.dedup_key, signal.at)
    if signal.action == "resolve":
        return book.resolve(signal.dedup_key, signal.at, signal.reason or "resolved")
    if signal.project_id is None or signal.kind is None or signal.severity is None:
        raise ValueError("an open signal needs project_id, kind and severity")
    request = IncidentRequest(
        project_id=signal.project_id,
        kind=signal.kind,
        severity=signal.severity,
        dedup_key=signal.dedup_key,
        title=signal.title,
        explanation=signal.explanation,
        links=dict(signal.links),
        monitor_id=signal.monitor_id,
        tags=tuple(signal.tags),
    )
    return book.open(request, signal.at)
