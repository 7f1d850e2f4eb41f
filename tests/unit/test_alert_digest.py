"""Digest jobs: stable ids, one record per member, resumed after a restart, known to the ledger."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from alerting.delivery import Digest, Outcome, delivery_id
from alerting.digest import DigestJob, digest_id, digest_of, member_id, record_digest, regroup
from alerting.incident import Incident
from alerting.jobs import Job, record
from alerting.ledger import Ledger, reminder_id
from alerting.send import Attempt
from pulseline.control.entities import Channel
from pulseline.records.alerts import Delivery, DeliveryStatus
from tests.unit.test_alert_incident import T0, incident

HOOK = Channel(id="ch", project_id=7, name="hook", slug="hook", type="webhook")


def member(n: int, **overrides: Any) -> Incident:
    when = (T0 + timedelta(seconds=n)).isoformat()
    return incident(id=f"i{n}", dedup_key=f"k{n}", updated_at=when, **overrides)


MEMBERS = (member(0), member(1, severity="warning"), member(2, state="resolved"))


def burst(*incidents: Incident) -> DigestJob:
    chosen = incidents or MEMBERS
    return DigestJob.of(Digest(HOOK.id, chosen[0].updated_at, chosen), HOOK)


def attempt(job: DigestJob, outcome: Outcome, status: int | None) -> list[Delivery]:
    return record_digest(job, Attempt(outcome, status, "why"), 9.0, T0, random.Random(3))


def test_a_digest_id_depends_on_its_members_not_their_order() -> None:
    assert digest_id("ch", MEMBERS) == digest_id("ch", reversed(MEMBERS))
    assert digest_id("ch", MEMBERS).startswith("msg_")


@pytest.mark.parametrize(
    ("channel", "members"),
    [
        ("other", MEMBERS),
        ("ch", MEMBERS[:2]),
        ("ch", (*MEMBERS[:2], member(2, state="resolved", version=9))),
    ],
    ids=["another channel", "fewer members", "a member's newer version"],
)
def test_another_channel_or_burst_gets_another_digest_id(
    channel: str, members: tuple[Incident, ...]
) -> None:
    assert digest_id(channel, members) != digest_id("ch", MEMBERS)


ID_CASES = [
    ("a digest member", member_id("msg_abc", MEMBERS[0], "ch"), "msg_abc"),
    ("a single delivery", delivery_id(MEMBERS[0], "ch"), None),
    ("a reminder", reminder_id(MEMBERS[0], "ch", 2), None),
]


@pytest.mark.parametrize(
    ("record_id", "digest"), [c[1:] for c in ID_CASES], ids=[c[0] for c in ID_CASES]
)
def test_a_member_record_names_its_digest(record_id: str, digest: str | None) -> None:
    assert digest_of(record_id) == digest


def test_each_member_gets_its_own_record_sharing_the_attempt_outcome() -> None:
    job = burst()
    done = attempt(job, Outcome.RETRY, 503)
    assert [d.incident_id for d in done] == ["i0", "i1", "i2"]
    assert [d.state for d in done] == ["open", "open", "resolved"]
    assert len({d.delivery_id for d in done}) == 3
    assert {digest_of(d.delivery_id) for d in done} == {job.delivery_id}
    assert {(d.status, d.http_status, d.attempt) for d in done} == {("retrying", 503, 1)}
    assert len({d.next_attempt_at for d in done}) == 1


def test_a_waiting_digest_resumes_from_its_records_with_the_same_id() -> None:
    job = burst()
    done = attempt(job, Outcome.RETRY, 500)
    back = [Delivery.model_validate_json(d.model_dump_json()) for d in reversed(done)]
    resumed = DigestJob.resume(back, HOOK)
    assert resumed.delivery_id == job.delivery_id
    assert resumed.attempt == 2
    assert resumed.digest.incidents == MEMBERS
    assert [m.delivery_id for m in resumed.members()] == [d.delivery_id for d in done]


def test_resuming_a_single_delivery_as_a_digest_is_refused() -> None:
    single = record(
        Job(MEMBERS[0], HOOK, delivery_id(MEMBERS[0], HOOK.id)),
        Attempt(Outcome.RETRY, 500, "x"),
        1.0,
        T0,
        random.Random(1),
    )
    with pytest.raises(ValueError, match="not a digest member"):
        DigestJob.resume([single], HOOK)


def test_waiting_records_regroup_into_singles_and_whole_digests() -> None:
    first = attempt(burst(), Outcome.RETRY, 500)
    second = attempt(burst(member(5), member(6)), Outcome.RETRY, 500)
    single = record(
        Job(member(9), HOOK, delivery_id(member(9), HOOK.id)),
        Attempt(Outcome.RETRY, 500, "x"),
        1.0,
        T0,
        random.Random(1),
    )
    units = regroup([first[0], single, second[0], *first[1:], second[1]])
    assert [[d.incident_id for d in unit] for unit in units] == [
        ["i0", "i1", "i2"],
        ["i9"],
        ["i5", "i6"],
    ]


def test_the_ledger_counts_each_member_as_handled_and_resumes_the_digest() -> None:
    ledger = Ledger()
    for done in attempt(burst(), Outcome.RETRY, 500):
        ledger.apply(done)
    assert all(ledger.was_handled(m, HOOK.id) for m in MEMBERS)
    assert ledger.open_handled(MEMBERS[0], HOOK.id)
    assert not ledger.was_handled(member(0, state="resolved"), HOOK.id)
    (unit,) = regroup(ledger.pending())
    assert len(unit) == 3
    for done in record_digest(
        DigestJob.resume(unit, HOOK), Attempt(Outcome.OK, 200, "OK"), 1.0, T0, random.Random(1)
    ):
        ledger.apply(done)
    assert ledger.pending() == []
    assert all(r.status is DeliveryStatus.DELIVERED for r in ledger.latest.values())


def test_a_digest_counts_members_by_event_type_kind_and_severity() -> None:
    digest = burst(*MEMBERS, member(3, kind="new_issue")).digest
    assert digest.counts() == {"incident.opened": 3, "incident.resolved": 1}
    assert digest.kinds() == {"monitor_down": 3, "new_issue": 1}
    assert digest.severities() == {"critical": 3, "warning": 1}
    assert digest.project_id == 7
