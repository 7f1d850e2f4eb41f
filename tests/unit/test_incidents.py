from datetime import UTC, datetime, timedelta

import pytest

from stream_processors.logic.incidents import (
    Incident,
    IncidentBook,
    IncidentKind,
    IncidentRequest,
    IncidentState,
    ResolveRequest,
    Severity,
    incident_id,
)

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


def _request(
    key: str = "1:error_spike:api", severity: Severity = Severity.WARNING
) -> IncidentRequest:
    return IncidentRequest(
        project_id=1,
        kind=IncidentKind.ERROR_SPIKE,
        severity=severity,
        dedup_key=key,
        title="Errors spiked",
        explanation="40 errors in a minute, 5 expected.",
        links={"issue": "abc"},
    )


def test_opening_a_new_key_creates_an_open_incident_with_a_deterministic_id() -> None:
    incident = IncidentBook().open(_request(), T0)
    assert incident.state is IncidentState.OPEN
    assert incident.id == incident_id("1:error_spike:api", T0)
    assert incident.occurrences == 1
    assert (incident.opened_at, incident.updated_at, incident.resolved_at) == (T0, T0, None)


def test_opening_an_open_key_again_counts_an_occurrence_instead_of_a_new_incident() -> None:
    book = IncidentBook()
    first = book.open(_request(), T0)
    second = book.open(_request(severity=Severity.ERROR), T0 + timedelta(minutes=1))
    third = book.open(_request(severity=Severity.INFO), T0 + timedelta(minutes=2))
    assert third.id == second.id == first.id
    assert third.occurrences == 3
    assert third.severity is Severity.ERROR
    assert third.opened_at == T0
    assert first.version < second.version < third.version


def test_distinct_keys_open_distinct_incidents() -> None:
    book = IncidentBook()
    a = book.open(_request("k1"), T0)
    b = book.open(_request("k2"), T0)
    assert a.id != b.id
    assert set(book.store) == {"k1", "k2"}


def test_an_acked_incident_then_resolves_and_leaves_the_book() -> None:
    book = IncidentBook()
    opened = book.open(_request(), T0)
    acked = book.ack(opened.dedup_key, T0 + timedelta(minutes=1))
    assert acked is not None and acked.state is IncidentState.ACKED
    reopened = book.open(_request(), T0 + timedelta(minutes=2))
    assert reopened.state is IncidentState.ACKED and reopened.occurrences == 2
    resolved = book.resolve(opened.dedup_key, T0 + timedelta(minutes=3), "recovered")
    assert resolved is not None
    assert resolved.state is IncidentState.RESOLVED
    assert resolved.resolved_at == T0 + timedelta(minutes=3)
    assert resolved.resolve_reason == "recovered"
    assert opened.version < acked.version < reopened.version < resolved.version
    assert book.get(opened.dedup_key) is None


def test_opening_after_a_resolve_starts_a_new_incident() -> None:
    book = IncidentBook()
    first = book.open(_request(), T0)
    book.resolve(first.dedup_key, T0 + timedelta(minutes=1), "recovered")
    second = book.open(_request(), T0 + timedelta(minutes=5))
    assert second.id != first.id and second.occurrences == 1


@pytest.mark.parametrize("action", ["resolve", "ack"])
def test_resolving_or_acking_an_unknown_key_is_a_no_op(action: str) -> None:
    book = IncidentBook()
    book.open(_request("known"), T0)
    if action == "resolve":
        assert book.resolve("unknown", T0, "recovered") is None
    else:
        assert book.ack("unknown", T0) is None
    assert list(book.store) == ["known"]


def test_acking_twice_emits_only_once() -> None:
    book = IncidentBook()
    book.open(_request(), T0)
    assert book.ack("1:error_spike:api", T0) is not None
    assert book.ack("1:error_spike:api", T0) is None


def test_apply_opens_requests_and_resolves_resolve_requests() -> None:
    book = IncidentBook()
    assert book.apply(_request("k"), T0) is not None
    resolved = book.apply(ResolveRequest("k", "recovered"), T0)
    assert resolved is not None and resolved.state is IncidentState.RESOLVED
    assert book.apply(ResolveRequest("k", "recovered"), T0) is None


def test_an_incident_record_round_trips_through_json() -> None:
    incident = IncidentBook().open(_request(), T0)
    doc = incident.to_json()
    assert doc["schema_version"] == 1
    assert doc["kind"] == "error_spike" and doc["state"] == "open"
    assert Incident.model_validate(doc) == incident


def test_every_incident_kind_is_named_as_agreed() -> None:
    assert {k.value for k in IncidentKind} == {
        "monitor_missed",
        "monitor_late",
        "monitor_failed",
        "duration_anomaly",
        "output_size_anomaly",
        "error_spike",
        "new_issue",
        "regression",
        "slow_endpoint",
        "channel_disabled",
    }
