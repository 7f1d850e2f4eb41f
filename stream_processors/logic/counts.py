"""Per-project event counts by family and minute. Pure: no Faust.

``count_key`` says which counter an event bumps; the agent keeps the counters in a
Faust table (with a changelog) and emits changed keys as ``snapshot`` records on a timer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pulseline.schemas import EventKind

KINDS = frozenset(k.value for k in EventKind)


class BadEvent(ValueError):
    """The event lacks what counting needs; the agent dead-letters it with this reason."""


@dataclass(frozen=True, order=True)
class CountKey:
    project_id: int
    kind: str
    minute: datetime

    def encode(self) -> str:
        return f"{self.project_id}|{self.kind}|{self.minute.isoformat()}"

    @classmethod
    def decode(cls, text: str) -> CountKey:
        project, kind, minute = text.split("|", 2)
        return cls(int(project), kind, datetime.fromisoformat(minute))


def count_key(doc: dict[str, Any]) -> CountKey:
    project = doc.get("project_id")
    if not isinstance(project, int) or isinstance(project, bool) or project < 0:
        raise BadEvent("project_id must be a non-negative integer")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise BadEvent(f"unknown kind {kind!r}")
    raw_ts = doc.get("timestamp")
    try:
        ts = datetime.fromisoformat(str(raw_ts))
    except ValueError:
        raise BadEvent(f"timestamp is not ISO-8601: {str(raw_ts)[:40]!r}") from None
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    return CountKey(project, str(kind), ts.replace(second=0, microsecond=0))


def snapshot(key: CountKey, count: int) -> dict[str, Any]:
    """The ``derived.project_counts`` v1 record for one key."""
    return {
        "schema_version": 1,
        "project_id": key.project_id,
        "kind": key.kind,
        "minute": key.minute.isoformat(),
        "count": count,
    }


def delta(key: str, source: str, offsets: list[int]) -> dict[str, Any]:
    """The v1 ``CountDelta`` the router sends: the events at ``offsets`` of ``source``."""
    return {"schema_version": 1, "key": key, "source": source, "offsets": offsets}
