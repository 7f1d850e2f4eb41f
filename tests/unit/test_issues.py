import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from stream_processors.logic.fingerprint import Grouping, group
from stream_processors.logic.incidents import IncidentRequest, ResolveRequest
from stream_processors.logic.issues import (
    RECENT_IDS,
    EventFacts,
    Issue,
    Transition,
    ignore,
    resolve,
    step,
    unresolve,
)

Command = Callable[[Issue, datetime], tuple[Issue, list[Transition]]]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GROUPING = Grouping(
    hash="ab" * 16,
    components=("TypeError", "app.js:handleClick"),
    rule="stacktrace",
    title="TypeError: Cannot read properties of undefined",
    culprit="app.js in handleClick",
)


def facts(
    n: int,
    at: datetime = T0,
    *,
    user: str | None = None,
    release: str | None = "1.4.2",
    level: str = "error",
    received: datetime | None = None,
) -> EventFacts:
    return EventFacts(
        event_id=f"e{n}",
        project_id=7,
        grouping=GROUPING,
        level=level,
        timestamp=at,
        received_at=received or at,
        release=release,
        user_key=user,
    )


def fold(*events: EventFacts) -> Issue:
    state: Issue | None = None
    for event in events:
        state, _ = step(state, event, event.received_at)
    assert state is not None
    return state


def test_the_first_event_opens_a_new_issue_with_an_incident_request() -> None:
    issue, transitions = step(None, facts(1, user="ada"), T0)
    assert [t.kind for t in transitions] == ["new"]
    incident = transitions[0].request
    assert isinstance(incident, IncidentRequest)
    assert incident.kind == "new_issue"
    assert incident.dedup_key == f"issue:7:{'ab' * 16}"
    assert incident.severity == "error"
    assert incident.explanation == (
        "New issue: TypeError: Cannot read properties of undefined "
        "in app.js in handleClick (release 1.4.2)"
    )
    assert (issue.count, issue.status, issue.first_release) == (1, "unresolved", "1.4.2")


def test_later_events_are_seen_again_without_an_incident() -> None:
    first = fold(facts(1))
    issue, transitions = step(first, facts(2, T0 + timedelta(minutes=1)), T0)
    assert [(t.kind, t.request) for t in transitions] == [("seen_again", None)]
    assert issue.count == 2
    assert issue.last_seen == T0 + timedelta(minutes=1)
    assert first.count == 1


def test_a_redelivered_event_is_not_counted_twice() -> None:
    issue = fold(facts(1), facts(2))
    again, transitions = step(issue, facts(2), T0)
    assert again.count == 2
    assert transitions == []


def test_the_redelivery_window_is_bounded() -> None:
    issue = fold(*(facts(n) for n in range(RECENT_IDS + 1)))
    assert len(issue.recent_ids) == RECENT_IDS
    again, _ = step(issue, facts(0), T0)
    assert again.count == RECENT_IDS + 2


def test_an_event_after_resolve_regresses_the_issue() -> None:
    issue, _ = resolve(fold(facts(1)), T0 + timedelta(hours=1))
    later = T0 + timedelta(hours=2)
    issue, transitions = step(issue, facts(2, later, release="1.4.3", level="fatal"), later)
    assert [t.kind for t in transitions] == ["regressed"]
    incident = transitions[0].request
    assert isinstance(incident, IncidentRequest)
    assert incident.kind == "regression"
    assert incident.severity == "critical"
    assert incident.explanation.startswith("Regression: TypeError")
    assert incident.explanation.endswith("(release 1.4.3)")
    assert issue.status == "unresolved"
    assert (issue.first_release, issue.last_release) == ("1.4.2", "1.4.3")
    assert issue.times_seen_since_resolve == 1


@pytest.mark.parametrize(
    ("happened", "arrived"),
    [
        (T0 + timedelta(minutes=30), T0 + timedelta(hours=2)),
        (T0 + timedelta(hours=2), T0 + timedelta(minutes=30)),
        (T0 + timedelta(hours=1), T0 + timedelta(hours=1)),
    ],
)
def test_an_event_not_both_after_the_resolve_does_not_regress(
    happened: datetime, arrived: datetime
) -> None:
    issue, _ = resolve(fold(facts(1)), T0 + timedelta(hours=1))
    issue, transitions = step(issue, facts(2, happened, received=arrived), arrived)
    assert [t.kind for t in transitions] == ["seen_again"]
    assert issue.status == "resolved"
    assert issue.count == 2


def test_an_ignored_issue_counts_but_never_regresses() -> None:
    issue, transitions = ignore(fold(facts(1)), T0)
    assert [t.kind for t in transitions] == ["ignored"]
    later = T0 + timedelta(days=1)
    issue, transitions = step(issue, facts(2, later), later)
    assert [t.kind for t in transitions] == ["seen_again"]
    assert (issue.status, issue.count) == ("ignored", 2)


@pytest.mark.parametrize(
    ("command", "reason"), [(resolve, "issue resolved"), (ignore, "issue ignored")]
)
def test_resolving_or_ignoring_closes_the_incident(command: Command, reason: str) -> None:
    _, transitions = command(fold(facts(1)), T0)
    assert transitions[0].request == ResolveRequest(f"issue:7:{'ab' * 16}", reason)


def test_commands_that_change_nothing_emit_nothing() -> None:
    issue, _ = resolve(fold(facts(1)), T0)
    again, transitions = resolve(issue, T0 + timedelta(hours=1))
    assert transitions == []
    assert again.resolved_at == T0


def test_unresolve_reopens_without_an_incident() -> None:
    issue, _ = resolve(fold(facts(1)), T0)
    issue, transitions = unresolve(issue, T0 + timedelta(minutes=5))
    assert [(t.kind, t.request) for t in transitions] == [("unresolved", None)]
    assert issue.status == "unresolved"


def test_resolving_restarts_times_seen_since_resolve() -> None:
    issue = fold(facts(1), facts(2), facts(3))
    assert issue.times_seen_since_resolve == 3
    issue, _ = resolve(issue, T0 + timedelta(hours=1))
    assert issue.times_seen_since_resolve == 0


def test_affected_users_are_counted_distinctly() -> None:
    users = ["ada", "bob", "ada", None, "cy", "bob"]
    issue = fold(*(facts(n, user=u) for n, u in enumerate(users)))
    assert issue.users.count() == 3
    assert issue.count == 6


def test_last_seen_never_goes_backwards() -> None:
    issue = fold(facts(1, T0 + timedelta(hours=1)), facts(2, T0))
    assert (issue.first_seen, issue.last_seen) == (T0, T0 + timedelta(hours=1))


def test_an_issue_round_trips_through_json() -> None:
    issue, _ = resolve(fold(facts(1, user="ada"), facts(2, user="bob")), T0)
    back = Issue.from_dict(json.loads(json.dumps(issue.to_dict())))
    assert back == issue


def test_facts_come_from_an_event_envelope() -> None:
    event = SimpleNamespace(
        event_id="0b3a4c5d-1e2f-4a5b-8c9d-0e1f2a3b4c5d",
        project_id=3,
        timestamp=T0,
        received_at=T0,
        release="2.0",
        distinct_id="anon-1",
        client_ip="10.0.0.1",
        attributes={"message": "boom", "level": "warning", "user": {"email": "a@b.c"}},
    )
    got = EventFacts.from_event(event, group(event.attributes))
    assert (got.level, got.user_key, got.release) == ("warning", "a@b.c", "2.0")
    bare = SimpleNamespace(**{**vars(event), "attributes": {"message": "boom"}})
    assert EventFacts.from_event(bare, group(bare.attributes)).user_key == "anon-1"
