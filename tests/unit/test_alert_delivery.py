from __future__ import annotations

import random
from datetime import timedelta

import pytest

from alerting.delivery import (
    SCHEDULE_S,
    FailureStreak,
    Outcome,
    classify,
    delivery_id,
    group_digests,
    next_reminder,
    retry_delay,
)
from alerting.incident import Incident
from tests.unit.test_alert_incident import T0, incident


def test_the_same_transition_and_channel_always_get_the_same_delivery_id() -> None:
    assert delivery_id(incident(), "c1") == delivery_id(incident(), "c1")


@pytest.mark.parametrize(
    ("other", "channel"),
    [({"version": 2}, "c1"), ({"id": "inc-2"}, "c1"), ({}, "c2")],
    ids=["next version", "other incident", "other channel"],
)
def test_a_different_transition_or_channel_gets_another_delivery_id(
    other: dict[str, object], channel: str
) -> None:
    assert delivery_id(incident(**other), channel) != delivery_id(incident(), "c1")


def test_the_schedule_gives_up_within_a_day() -> None:
    assert sum(SCHEDULE_S) < 24 * 3600
    assert list(SCHEDULE_S) == sorted(SCHEDULE_S)


@pytest.mark.parametrize("attempt", range(1, len(SCHEDULE_S) + 1))
def test_each_retry_waits_a_jittered_time_up_to_its_cap(attempt: int) -> None:
    rng = random.Random(attempt)
    delays = [retry_delay(attempt, rng) for _ in range(200)]
    cap = SCHEDULE_S[attempt - 1]
    assert all(d is not None and 0 <= d <= cap for d in delays)
    assert max(d for d in delays if d is not None) > cap / 2


@pytest.mark.parametrize("attempt", [0, len(SCHEDULE_S) + 1])
def test_outside_the_schedule_there_is_no_retry(attempt: int) -> None:
    assert retry_delay(attempt, random.Random(0)) is None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.OK),
        (204, Outcome.OK),
        (301, Outcome.FAILED),
        (302, Outcome.FAILED),
        (400, Outcome.FAILED),
        (401, Outcome.FAILED),
        (404, Outcome.FAILED),
        (408, Outcome.RETRY),
        (410, Outcome.DISABLE),
        (429, Outcome.RETRY),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
        (None, Outcome.RETRY),
    ],
)
def test_each_http_status_has_one_outcome(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_a_failure_streak_alerts_once_at_the_threshold_and_resets_on_success() -> None:
    streak = FailureStreak(threshold=3)
    seen = []
    for failed in [True, True, True, True, False, True]:
        streak = streak.record(failed)
        seen.append((streak.count, streak.should_alert, streak.just_crossed))
    assert seen == [
        (1, False, False),
        (2, False, False),
        (3, True, True),
        (4, True, False),
        (0, False, False),
        (1, False, False),
    ]


def test_a_burst_within_the_window_becomes_one_digest_per_channel() -> None:
    def at(minutes: int, state: str = "open") -> Incident:
        when = (T0 + timedelta(minutes=minutes)).isoformat()
        return incident(id=f"i{minutes}", updated_at=when, state=state)

    routed = [
        ("a", at(0)),
        ("a", at(3, "resolved")),
        ("b", at(1)),
        ("a", at(4)),
        ("a", at(5)),
        ("a", at(12)),
    ]
    digests = group_digests(routed, window=timedelta(minutes=5))
    summary = [(d.channel_id, [i.id for i in d.incidents], d.counts()) for d in digests]
    assert summary == [
        ("a", ["i0", "i3", "i4"], {"incident.opened": 2, "incident.resolved": 1}),
        ("a", ["i5"], {"incident.opened": 1}),
        ("a", ["i12"], {"incident.opened": 1}),
        ("b", ["i1"], {"incident.opened": 1}),
    ]


@pytest.mark.parametrize(
    ("minutes_open", "next_at_min"),
    [(0, 60), (30, 60), (60, 120), (61, 120), (-5, 60)],
)
def test_reminders_come_every_interval_after_opening(minutes_open: int, next_at_min: int) -> None:
    now = T0 + timedelta(minutes=minutes_open)
    assert next_reminder(incident(), timedelta(hours=1), now) == T0 + timedelta(minutes=next_at_min)


@pytest.mark.parametrize("state", ["acked", "resolved"])
def test_there_are_no_reminders_once_acked_or_resolved(state: str) -> None:
    assert next_reminder(incident(state=state), timedelta(hours=1), T0) is None
