"""The runner's pure core: how attempts are written down and what the ledger remembers."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from alerting.delivery import Outcome, delivery_id
from alerting.jobs import Job, record
from alerting.ledger import Ledger, reminder_id
from alerting.send import Attempt
from pulseline.control.entities import Channel
from pulseline.records.alerts import Delivery, DeliveryStatus
from tests.unit.test_alert_incident import T0, incident

HOOK = Channel(id="ch", project_id=7, name="hook", slug="hook", type="webhook")
OPEN = incident()
HOUR = timedelta(hours=1)


def job(attempt: int = 1, **overrides: Any) -> Job:
    inc = incident(**overrides) if overrides else OPEN
    return Job(inc, HOOK, delivery_id(inc, HOOK.id), attempt)


def attempt_record(outcome: Outcome, status: int | None = None, **kw: Any) -> Delivery:
    at = kw.pop("at", T0)
    return record(job(**kw), Attempt(outcome, status, "why"), 12.0, at, random.Random(1))


RECORD_CASES = [
    ("a 2xx is delivered", Outcome.OK, 200, 1, DeliveryStatus.DELIVERED, False),
    ("a 5xx on the first attempt is retried", Outcome.RETRY, 500, 1, DeliveryStatus.RETRYING, True),
    ("a retryable failure past the schedule fails", Outcome.RETRY, 503, 10, "failed", False),
    ("a 404 fails for good", Outcome.FAILED, 404, 1, DeliveryStatus.FAILED, False),
    ("a 410 disables", Outcome.DISABLE, 410, 1, DeliveryStatus.DISABLED, False),
]


@pytest.mark.parametrize(
    ("outcome", "status", "attempt", "expected", "has_next"),
    [c[1:] for c in RECORD_CASES],
    ids=[c[0] for c in RECORD_CASES],
)
def test_an_attempt_is_recorded_with_its_status(
    outcome: Outcome, status: int, attempt: int, expected: str, has_next: bool
) -> None:
    done = attempt_record(outcome, status, attempt=attempt)
    assert done.status == expected
    assert (done.next_attempt_at is not None) == has_next
    assert (done.delivery_id, done.attempt, done.http_status) == (
        job().delivery_id,
        attempt,
        status,
    )


def test_a_retry_is_due_within_the_first_cap_of_the_schedule() -> None:
    done = attempt_record(Outcome.RETRY, 500)
    assert done.next_attempt_at is not None
    assert T0 <= done.next_attempt_at <= T0 + timedelta(seconds=5)


def test_a_record_survives_the_topic_and_resumes_as_the_next_attempt() -> None:
    done = attempt_record(Outcome.RETRY, 500)
    back = Delivery.model_validate_json(done.model_dump_json())
    resumed = Job.resume(back, HOOK)
    assert (resumed.incident, resumed.delivery_id, resumed.attempt) == (OPEN, done.delivery_id, 2)


def test_the_latest_attempt_decides_whether_a_delivery_is_finished() -> None:
    ledger = Ledger()
    retrying = attempt_record(Outcome.RETRY, 500)
    ledger.apply(retrying)
    assert ledger.pending() == [retrying]
    assert not ledger.is_finished(retrying.delivery_id)
    ledger.apply(attempt_record(Outcome.OK, 200, attempt=2))
    ledger.apply(retrying)  # replayed out of order: an older attempt never wins
    assert ledger.pending() == []
    assert ledger.is_finished(retrying.delivery_id)


HANDLED_CASES = [
    ("the same transition again", {}, True),
    ("an occurrences bump in the same state", {"version": 2, "occurrences": 5}, True),
    ("a new state of the same incident", {"version": 2, "state": "resolved"}, False),
    ("another incident", {"id": "inc-2"}, False),
]


@pytest.mark.parametrize(
    ("overrides", "handled"), [c[1:] for c in HANDLED_CASES], ids=[c[0] for c in HANDLED_CASES]
)
def test_each_state_of_an_incident_is_notified_once_per_channel(
    overrides: dict[str, Any], handled: bool
) -> None:
    ledger = Ledger()
    ledger.apply(attempt_record(Outcome.OK, 200))
    assert ledger.was_handled(incident(**overrides), HOOK.id) is handled


REMINDER_CASES = [
    ("not before the interval has passed", T0 + HOUR - timedelta(seconds=1), {}, 0),
    ("once the interval has passed", T0 + HOUR, {}, 1),
    ("never once the incident is resolved", T0 + 2 * HOUR, {"state": "resolved"}, 0),
]


@pytest.mark.parametrize(
    ("now", "newer", "count"), [c[1:] for c in REMINDER_CASES], ids=[c[0] for c in REMINDER_CASES]
)
def test_open_incidents_are_reminded_every_interval(
    now: Any, newer: dict[str, Any], count: int
) -> None:
    ledger = Ledger()
    ledger.apply(attempt_record(Outcome.OK, 200))
    if newer:
        ledger.observe(incident(version=2, **newer))
    due = ledger.due_reminders(HOUR, now)
    assert len(due) == count
    if due:
        assert due[0].delivery_id == reminder_id(OPEN, HOOK.id, 1)


def test_a_sent_reminder_restarts_the_interval_and_numbers_the_next_one() -> None:
    ledger = Ledger()
    ledger.apply(attempt_record(Outcome.OK, 200))
    (first,) = ledger.due_reminders(HOUR, T0 + HOUR)
    sent = record(
        Job(OPEN, HOOK, first.delivery_id, kind="reminder"),
        Attempt(Outcome.FAILED, 400, "bad"),
        1.0,
        T0 + HOUR,
        random.Random(1),
    )
    ledger.apply(sent)
    assert ledger.due_reminders(HOUR, T0 + 2 * HOUR - timedelta(seconds=1)) == []
    (second,) = ledger.due_reminders(HOUR, T0 + 2 * HOUR)
    assert second.number == 2


def test_reminders_are_off_for_a_zero_interval() -> None:
    ledger = Ledger()
    ledger.apply(attempt_record(Outcome.OK, 200))
    assert ledger.due_reminders(timedelta(0), T0 + 100 * HOUR) == []
