"""The small pieces between the pure issue/session folds and their Faust agents."""

from datetime import UTC, datetime, timedelta

import pytest

from pulseline.records.issues import IssueRow
from pulseline.records.sessions import SessionRow, SessionTableEntry
from stream_processors.agents.issues import issue_row
from stream_processors.agents.sessions import FORGET_AFTER, deadline
from stream_processors.incident_signals import signal_of
from stream_processors.logic.fingerprint import group
from stream_processors.logic.incidents import ResolveRequest
from stream_processors.logic.issues import EventFacts, Issue, resolve, step
from stream_processors.logic.sessions import Hit, Session, closes_at
from stream_processors.logic.sessions import step as session_step

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GROUPING = group({"exception": [{"type": "OrderError", "value": "order 12 not found"}]})


def facts(n: int, user: str) -> EventFacts:
    return EventFacts(f"e{n}", 7, GROUPING, "error", T0, T0, release="1.0", user_key=user)


def session(started: datetime, last: datetime) -> Session:
    return Session("s1", 7, "ada", started_at=started, last_seen=last)


def test_every_issue_change_bumps_the_version_and_a_repeat_does_not() -> None:
    issue, _ = step(None, facts(1, "ada"), T0)
    issue, _ = step(issue, facts(2, "bob"), T0)
    repeat, transitions = step(issue, facts(2, "bob"), T0)
    resolved, _ = resolve(issue, T0)
    assert (issue.version, repeat.version, transitions, resolved.version) == (2, 2, [], 3)


def test_an_issue_keeps_the_rule_of_its_first_event_through_json() -> None:
    issue, _ = step(None, facts(1, "ada"), T0)
    assert Issue.from_dict(issue.to_dict()).rule == "exception_message"


def test_an_issue_row_carries_the_user_estimate_and_version() -> None:
    issue, _ = step(None, facts(1, "ada"), T0)
    issue, _ = step(issue, facts(2, "bob"), T0)
    row = issue_row(issue)
    assert isinstance(row, IssueRow)
    assert (row.count, row.users, row.version, row.rule) == (2, 2, 2, "exception_message")
    assert row.title == "OrderError: order 12 not found"


def test_a_new_issue_becomes_an_open_signal_with_its_kind_and_severity() -> None:
    _, transitions = step(None, facts(1, "ada"), T0)
    assert transitions[0].request is not None
    wish = signal_of(transitions[0].request, T0, 7)
    assert (wish.action, wish.kind, wish.severity, wish.project_id) == (
        "open",
        "new_issue",
        "error",
        7,
    )
    assert wish.dedup_key == f"issue:7:{GROUPING.hash}"


def test_a_resolve_request_becomes_a_resolve_signal_with_its_reason() -> None:
    wish = signal_of(ResolveRequest("issue:7:abc", "issue resolved"), T0, 7)
    assert (wish.action, wish.dedup_key, wish.reason, wish.kind) == (
        "resolve",
        "issue:7:abc",
        "issue resolved",
        None,
    )


@pytest.mark.parametrize(
    ("started", "last", "closes"),
    [
        (T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=35)),
        (T0, T0 + timedelta(hours=23, minutes=50), T0 + timedelta(hours=24)),
    ],
    ids=["idle_timeout_first", "max_length_first"],
)
def test_an_open_session_closes_at_its_idle_or_length_limit(
    started: datetime, last: datetime, closes: datetime
) -> None:
    assert closes_at(session(started, last)) == closes
    entry = SessionTableEntry(partition=1, state=session(started, last).to_dict())
    assert deadline(entry) == closes


def test_a_swept_session_is_forgotten_an_hour_after_the_sweep() -> None:
    swept = T0 + timedelta(hours=2)
    entry = SessionTableEntry(partition=0, closed_at=swept, state=session(T0, T0).to_dict())
    assert deadline(entry) == swept + FORGET_AFTER == T0 + timedelta(hours=3)


def test_the_logic_row_fits_the_session_record() -> None:
    hit = Hit("e1", 7, "ada", "pageview", T0, url="https://shop.example/pricing?x=1")
    _, rows = session_step(None, hit, T0)
    record = SessionRow.model_validate(rows[0].to_dict())
    assert (record.entry_page, record.pageviews, record.bounce, record.closed) == (
        "/pricing",
        1,
        True,
        False,
    )
