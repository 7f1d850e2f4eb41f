"""Issue lifecycle as a pure fold: one ``Issue`` per (project, fingerprint). No Faust.

``step(state, facts, now)`` folds one grouped error event into its issue and returns the
transitions it caused: ``new`` (first event), ``seen_again`` or ``regressed``. A
resolved issue regresses only when the event both happened and arrived after
``resolved_at`` (so a late, old event or a replay does not reopen it). Ignored issues
keep counting but never regress. ``resolve``, ``ignore`` and ``unresolve`` are commands.

``new`` and ``regressed`` carry an ``IncidentRequest`` deduplicated by
``issue:<project>:<fingerprint>``; ``resolved`` and ``ignored`` carry the matching
``ResolveRequest`` so the incident closes with the issue. Redelivery: the issue remembers its last
``RECENT_IDS`` (64) event ids; an id seen among them changes nothing. A redelivery
older than that window is counted again, an accepted, bounded error.

Every change bumps ``version`` by one, so the newest row of an issue wins downstream;
``rule`` is the grouping rule of the issue's first event.

Affected users are a HyperLogLog (about 3% error), keyed by the first of the user id,
e-mail, ``distinct_id`` or client IP the event carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, cast

from stream_processors.logic.fingerprint import Grouping
from stream_processors.logic.hll import HyperLogLog
from stream_processors.logic.incidents import (
    IncidentKind,
    IncidentRequest,
    ResolveRequest,
    Severity,
)

Status = Literal["unresolved", "resolved", "ignored"]
TransitionKind = Literal["new", "seen_again", "regressed", "resolved", "ignored", "unresolved"]
RECENT_IDS = 64
SEVERITY = {"fatal": Severity.CRITICAL, "error": Severity.ERROR, "warning": Severity.WARNING}


@dataclass(frozen=True)
class EventFacts:
    """What the lifecycle needs from one ``error`` event and its grouping."""

    event_id: str
    project_id: int
    grouping: Grouping
    level: str
    timestamp: datetime
    received_at: datetime
    release: str | None = None
    user_key: str | None = None

    @classmethod
    def from_event(cls, event: Any, grouping: Grouping) -> EventFacts:
        """Facts from an ``Event`` v1 (anything with its attribute names)."""
        attrs: dict[str, Any] = event.attributes
        user = attrs.get("user")
        user = user if isinstance(user, dict) else {}
        key = user.get("id") or user.get("email") or event.distinct_id or event.client_ip
        return cls(
            event_id=str(event.event_id),
            project_id=int(event.project_id),
            grouping=grouping,
            level=str(attrs.get("level") or "error"),
            timestamp=event.timestamp,
            received_at=event.received_at,
            release=event.release,
            user_key=None if key is None else str(key),
        )


@dataclass(frozen=True)
class Transition:
    kind: TransitionKind
    at: datetime
    request: IncidentRequest | ResolveRequest | None = None


@dataclass
class Issue:
    fingerprint: str
    project_id: int
    title: str
    culprit: str | None
    level: str
    first_seen: datetime
    last_seen: datetime
    status: Status = "unresolved"
    count: int = 0
    users: HyperLogLog = field(default_factory=HyperLogLog)
    first_release: str | None = None
    last_release: str | None = None
    times_seen_since_resolve: int = 0
    resolved_at: datetime | None = None
    status_changed_at: datetime | None = None
    recent_ids: list[str] = field(default_factory=list)
    rule: str | None = None
    version: int = 0

    @property
    def dedup_key(self) -> str:
        return f"issue:{self.project_id}:{self.fingerprint}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form ``from_dict`` reads back (the changelog value)."""
        return {
            "fingerprint": self.fingerprint,
            "project_id": self.project_id,
            "title": self.title,
            "culprit": self.culprit,
            "level": self.level,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "status": self.status,
            "count": self.count,
            "users": self.users.to_dict(),
            "first_release": self.first_release,
            "last_release": self.last_release,
            "times_seen_since_resolve": self.times_seen_since_resolve,
            "resolved_at": _iso(self.resolved_at),
            "status_changed_at": _iso(self.status_changed_at),
            "recent_ids": list(self.recent_ids),
            "rule": self.rule,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Issue:
        return cls(
            fingerprint=str(data["fingerprint"]),
            project_id=int(data["project_id"]),
            title=str(data["title"]),
            culprit=data.get("culprit"),
            level=str(data["level"]),
            first_seen=datetime.fromisoformat(data["first_seen"]),
            last_seen=datetime.fromisoformat(data["last_seen"]),
            status=cast(Status, data["status"]),
            count=int(data["count"]),
            users=HyperLogLog.from_dict(data["users"]),
            first_release=data.get("first_release"),
            last_release=data.get("last_release"),
            times_seen_since_resolve=int(data["times_seen_since_resolve"]),
            resolved_at=_parse(data.get("resolved_at")),
            status_changed_at=_parse(data.get("status_changed_at")),
            recent_ids=[str(x) for x in data.get("recent_ids") or []],
            rule=data.get("rule"),
            version=int(data.get("version") or 0),
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _incident(issue: Issue, kind: IncidentKind) -> IncidentRequest:
    where = f" in {issue.culprit}" if issue.culprit else ""
    release = f" (release {issue.last_release})" if issue.last_release else ""
    label = "New issue" if kind == IncidentKind.NEW_ISSUE else "Regression"
    return IncidentRequest(
        project_id=issue.project_id,
        kind=kind,
        severity=SEVERITY.get(issue.level, Severity.INFO),
        dedup_key=issue.dedup_key,
        title=issue.title,
        explanation=f"{label}: {issue.title}{where}{release}",
    )


def _count(issue: Issue, facts: EventFacts) -> None:
    issue.count += 1
    issue.times_seen_since_resolve += 1
    issue.last_seen = max(issue.last_seen, facts.timestamp)
    issue.first_seen = min(issue.first_seen, facts.timestamp)
    if facts.release:
        issue.last_release = facts.release
        issue.first_release = issue.first_release or facts.release
    if facts.user_key:
        issue.users.add(facts.user_key)
    issue.recent_ids = [*issue.recent_ids, facts.event_id][-RECENT_IDS:]
    issue.version += 1


def step(state: Issue | None, facts: EventFacts, now: datetime) -> tuple[Issue, list[Transition]]:
    """Fold one event into its issue. ``state`` is not modified; a new ``Issue`` is returned."""
    if state is None:
        issue = Issue(
            fingerprint=facts.grouping.hash,
            project_id=facts.project_id,
            title=facts.grouping.title,
            culprit=facts.grouping.culprit,
            level=facts.level,
            first_seen=facts.timestamp,
            last_seen=facts.timestamp,
            status_changed_at=now,
            rule=facts.grouping.rule,
        )
        _count(issue, facts)
        return issue, [Transition("new", now, _incident(issue, IncidentKind.NEW_ISSUE))]
    if facts.event_id in state.recent_ids:
        return state, []
    issue = replace(state, users=HyperLogLog.from_dict(state.users.to_dict()))
    _count(issue, facts)
    resolved_at = state.resolved_at
    happened_after = (
        resolved_at is not None and min(facts.timestamp, facts.received_at) > resolved_at
    )
    if state.status == "resolved" and happened_after:
        issue.status, issue.status_changed_at, issue.level = "unresolved", now, facts.level
        issue.times_seen_since_resolve = 1
        return issue, [Transition("regressed", now, _incident(issue, IncidentKind.REGRESSION))]
    return issue, [Transition("seen_again", now)]


def _command(
    state: Issue, status: Status, kind: TransitionKind, now: datetime
) -> tuple[Issue, list[Transition]]:
    if state.status == status:
        return state, []
    issue = replace(state, status=status, status_changed_at=now, version=state.version + 1)
    if status == "resolved":
        issue.resolved_at, issue.times_seen_since_resolve = now, 0
    closing = None
    if status != "unresolved":
        closing = ResolveRequest(dedup_key=state.dedup_key, reason=f"issue {status}")
    return issue, [Transition(kind, now, closing)]


def resolve(state: Issue, now: datetime) -> tuple[Issue, list[Transition]]:
    """Mark resolved at ``now``; a later event regresses it. No-op when already resolved."""
    return _command(state, "resolved", "resolved", now)


def ignore(state: Issue, now: datetime) -> tuple[Issue, list[Transition]]:
    """Silence the issue: events still count but raise no incidents."""
    return _command(state, "ignored", "ignored", now)


def unresolve(state: Issue, now: datetime) -> tuple[Issue, list[Transition]]:
    """Back to unresolved, from resolved or ignored, without an incident."""
    return _command(state, "unresolved", "unresolved", now)
