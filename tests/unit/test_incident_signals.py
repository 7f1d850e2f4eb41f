from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from alerting.incident import Incident as AlertIncident
from pulseline.records.incidents import IncidentKind, IncidentSignal, IncidentState, Severity
from stream_processors.incident_signals import JsonIncidents, apply_signal, signal_of
from stream_processors.logic.incidents import IncidentBook, IncidentRequest

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _signal(action: str, minutes: float = 0, **extra: Any) -> IncidentSignal:
    fields: dict[str, Any] = {"action": action, "dedup_key": "7:monitor_failed:monitor:m1"}
    if action == "open":
        fields |= {
            "project_id": 7,
            "kind": IncidentKind.MONITOR_FAILED,
            "severity": Severity.ERROR,
            "title": "Backup reported a failure",
        }
    return IncidentSignal(at=T0 + timedelta(minutes=minutes), **(fields | extra))


def test_signals_open_ack_and_resolve_an_incident_kept_as_json() -> None:
    raw: dict[str, Any] = {}
    book = IncidentBook(JsonIncidents(raw))
    opened = apply_signal(book, _signal("open"))
    assert opened is not None
    assert raw == {opened.dedup_key: orjson.loads(orjson.dumps(opened.to_json()))}
    acked = apply_signal(book, _signal("ack", 1))
    resolved = apply_signal(book, _signal("resolve", 2, reason="recovered"))
    assert acked is not None and resolved is not None
    assert [opened.state, acked.state, resolved.state] == [
        IncidentState.OPEN,
        IncidentState.ACKED,
        IncidentState.RESOLVED,
    ]
    assert opened.id == acked.id == resolved.id
    assert resolved.resolved_at == T0 + timedelta(minutes=2)
    assert resolved.resolve_reason == "recovered"
    assert raw == {}


def test_a_repeated_open_counts_an_occurrence_of_the_stored_incident() -> None:
    book = IncidentBook(JsonIncidents({}))
    apply_signal(book, _signal("open"))
    again = apply_signal(book, _signal("open", 1))
    assert again is not None and again.occurrences == 2


def test_a_resolve_without_a_reason_says_resolved() -> None:
    book = IncidentBook(JsonIncidents({}))
    apply_signal(book, _signal("open"))
    resolved = apply_signal(book, _signal("resolve", 1))
    assert resolved is not None and resolved.resolve_reason == "resolved"


@pytest.mark.parametrize("missing", ["project_id", "kind", "severity"])
def test_an_open_signal_without_its_incident_fields_is_refused(missing: str) -> None:
    book = IncidentBook(JsonIncidents({}))
    with pytest.raises(ValueError, match="needs"):
        apply_signal(book, _signal("open", 0, **{missing: None}))


def test_an_incident_keeps_the_monitor_and_tags_alerting_routes_on() -> None:
    request = IncidentRequest(
        3,
        IncidentKind.MONITOR_MISSED,
        Severity.CRITICAL,
        "monitor:m1:missed",
        "Nightly missed",
        "no ping",
        monitor_id="m1",
        tags=("db", "nightly"),
    )
    signal = signal_of(request, T0)
    incident = apply_signal(IncidentBook(), signal)
    assert incident is not None
    assert (incident.monitor_id, incident.tags) == ("m1", ["db", "nightly"])
    routed = AlertIncident.from_json(incident.to_json())
    assert (routed.monitor_id, routed.tags) == ("m1", ("db", "nightly"))
