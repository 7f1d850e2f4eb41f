from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from alerting.incident import Incident

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def incident_json(**overrides: Any) -> dict[str, Any]:
    """A valid producer-side incident transition; tests override what they exercise."""
    base: dict[str, Any] = {
        "id": "inc-1",
        "project_id": 7,
        "kind": "monitor_down",
        "severity": "critical",
        "state": "open",
        "dedup_key": "monitor_down:mon-1",
        "title": "Backup job is late",
        "explanation": "No ping for 15 minutes (grace 5 min).",
        "links": {"Monitor": "https://pulse.example/monitors/mon-1"},
        "opened_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
        "version": 1,
        "occurrences": 1,
    }
    return {**base, **overrides}


def incident(**overrides: Any) -> Incident:
    return Incident.from_json(incident_json(**overrides))


def test_it_reads_the_producer_fields() -> None:
    parsed = incident(state="acked", version=3, occurrences=4)
    assert (parsed.state, parsed.version, parsed.occurrences) == ("acked", 3, 4)
    assert parsed.opened_at == T0
    assert parsed.links == {"Monitor": "https://pulse.example/monitors/mon-1"}
    assert parsed.monitor_id is None and parsed.tags == ()


def test_it_round_trips_through_json() -> None:
    original = incident(monitor_id="mon-1", tags=["db", "prod"])
    assert Incident.from_json(original.to_json()) == original


@pytest.mark.parametrize(
    ("state", "event_type"),
    [
        ("open", "incident.opened"),
        ("acked", "incident.acknowledged"),
        ("resolved", "incident.resolved"),
    ],
)
def test_each_state_names_its_event_type(state: str, event_type: str) -> None:
    assert incident(state=state).event_type == event_type


def test_it_rejects_an_unknown_state() -> None:
    with pytest.raises(ValueError, match="state"):
        incident(state="closed")


def test_it_names_a_missing_field() -> None:
    data = incident_json()
    del data["dedup_key"]
    with pytest.raises(ValueError, match="dedup_key"):
        Incident.from_json(data)


def test_it_is_immutable() -> None:
    with pytest.raises(AttributeError):
        incident().state = "resolved"  # type: ignore[misc]
