"""The incident transition the alert runner consumes: one immutable record per state change.

``version`` increases with every transition of the same incident, so ``(id, version)`` names a
transition exactly once. ``monitor_id`` and ``tags`` are optional extras used for routing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

State = Literal["open", "acked", "resolved"]
STATES: tuple[State, ...] = ("open", "acked", "resolved")
EVENT_TYPES: dict[State, str] = {
    "open": "incident.opened",
    "acked": "incident.acknowledged",
    "resolved": "incident.resolved",
}


@dataclass(frozen=True)
class Incident:
    id: str
    project_id: int
    kind: str
    severity: str
    state: State
    dedup_key: str
    title: str
    explanation: str
    links: Mapping[str, str]
    opened_at: datetime
    updated_at: datetime
    version: int
    occurrences: int
    monitor_id: str | None = None
    tags: tuple[str, ...] = field(default=())

    @property
    def event_type(self) -> str:
        """``incident.opened``, ``incident.acknowledged`` or ``incident.resolved``."""
        return EVENT_TYPES[self.state]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Incident:
        """Parse a decoded JSON object; raises ``ValueError`` naming the bad field."""
        state = data.get("state")
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        try:
            return cls(
                id=str(data["id"]),
                project_id=int(data["project_id"]),
                kind=str(data["kind"]),
                severity=str(data["severity"]),
                state=cast(State, state),
                dedup_key=str(data["dedup_key"]),
                title=str(data["title"]),
                explanation=str(data.get("explanation") or ""),
                links={str(k): str(v) for k, v in (data.get("links") or {}).items()},
                opened_at=datetime.fromisoformat(data["opened_at"]),
                updated_at=datetime.fromisoformat(data["updated_at"]),
                version=int(data["version"]),
                occurrences=int(data.get("occurrences", 1)),
                monitor_id=None if data.get("monitor_id") is None else str(data["monitor_id"]),
                tags=tuple(str(t) for t in data.get("tags") or ()),
            )
        except KeyError as missing:
            raise ValueError(f"incident is missing field {missing.args[0]!r}") from None

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready form ``from_json`` reads back."""
        return {
            "id": self.id,
            "project_id": self.project_id,
            "kind": self.kind,
            "severity": self.severity,
            "state": self.state,
            "dedup_key": self.dedup_key,
            "title": self.title,
            "explanation": self.explanation,
            "links": dict(self.links),
            "opened_at": self.opened_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
            "occurrences": self.occurrences,
            "monitor_id": self.monitor_id,
            "tags": list(self.tags),
        }
