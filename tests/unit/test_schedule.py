import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pulseline.control.entities import Monitor, Schedule
from stream_processors.logic.schedule import deadline, next_expected


def _schedule(**fields: Any) -> Schedule:
    return Schedule.model_validate(fields)


BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NIGHTLY_BERLIN = _schedule(cron="30 2 * * *", tz="Europe/Berlin")
NIGHTLY_NEW_YORK = _schedule(cron="30 2 * * *", tz="America/New_York")


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "last_ping", "expected"),
    [
        (_schedule(period_s=3600), _utc(2026, 1, 1, 10, 5), _utc(2026, 1, 1, 11, 5)),
        (_schedule(cron="*/15 * * * *"), _utc(2026, 1, 1, 10, 5), _utc(2026, 1, 1, 10, 15)),
        (_schedule(cron="*/15 * * * *"), _utc(2026, 1, 1, 10, 15), _utc(2026, 1, 1, 10, 30)),
        (_schedule(cron="0 9 * * *", tz="Europe/Berlin"), _utc(2026, 1, 1, 9), _utc(2026, 1, 2, 8)),
        (_schedule(cron="0 9 * * *", tz="Europe/Berlin"), _utc(2026, 7, 1, 9), _utc(2026, 7, 2, 7)),
        (_schedule(period_s=60), datetime(2026, 1, 1, 10), _utc(2026, 1, 1, 10, 1)),
    ],
)
def test_the_next_ping_is_expected_per_period_or_cron_in_the_zone(
    schedule: Schedule, last_ping: datetime, expected: datetime
) -> None:
    assert next_expected(schedule, last_ping) == expected


@pytest.mark.parametrize(
    ("schedule", "zone", "last_ping", "expected"),
    [
        # spring forward: 02:30 does not exist, the run is expected just after the gap
        (
            NIGHTLY_BERLIN,
            BERLIN,
            datetime(2026, 3, 28, 12, tzinfo=BERLIN),
            datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN),
        ),
        (
            NIGHTLY_BERLIN,
            BERLIN,
            datetime(2026, 3, 29, 3, 10, tzinfo=BERLIN),
            datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN),
        ),
        (
            NIGHTLY_BERLIN,
            BERLIN,
            datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN),
            datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN),
        ),
        (
            NIGHTLY_NEW_YORK,
            NEW_YORK,
            datetime(2026, 3, 7, 12, tzinfo=NEW_YORK),
            datetime(2026, 3, 8, 3, 30, tzinfo=NEW_YORK),
        ),
        # fall back: 02:30 happens twice, the run is expected once, at the first one
        (
            NIGHTLY_BERLIN,
            BERLIN,
            datetime(2026, 10, 24, 12, tzinfo=BERLIN),
            datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0),
        ),
        (
            NIGHTLY_BERLIN,
            BERLIN,
            datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0),
            datetime(2026, 10, 26, 2, 30, tzinfo=BERLIN),
        ),
        (
            NIGHTLY_BERLIN,
            BERLIN,
            datetime(2026, 10, 25, 2, 10, tzinfo=BERLIN, fold=1),
            datetime(2026, 10, 26, 2, 30, tzinfo=BERLIN),
        ),
        (
            NIGHTLY_NEW_YORK,
            NEW_YORK,
            datetime(2026, 10, 31, 12, tzinfo=NEW_YORK),
            datetime(2026, 11, 1, 2, 30, tzinfo=NEW_YORK),
        ),
        (
            NIGHTLY_NEW_YORK,
            NEW_YORK,
            datetime(2026, 11, 1, 2, 30, tzinfo=NEW_YORK),
            datetime(2026, 11, 2, 2, 30, tzinfo=NEW_YORK),
        ),
    ],
)
def test_a_nightly_cron_is_expected_once_per_day_across_daylight_saving_changes(
    schedule: Schedule, zone: ZoneInfo, last_ping: datetime, expected: datetime
) -> None:
    # compare in UTC: Python never calls an ambiguous local time equal to another zone's
    got = next_expected(schedule, last_ping)
    assert got == expected.astimezone(UTC)
    assert got.astimezone(zone).replace(tzinfo=None) == expected.replace(tzinfo=None)


def test_a_week_of_nightly_runs_over_the_autumn_change_has_seven_runs_one_hour_apart_once() -> None:
    moment = datetime(2026, 10, 22, 12, tzinfo=BERLIN)
    runs = []
    for _ in range(7):
        moment = next_expected(NIGHTLY_BERLIN, moment)
        runs.append(moment)
    gaps = {(b - a).total_seconds() / 3600 for a, b in itertools.pairwise(runs)}
    assert gaps == {24.0, 25.0}
    assert [r.astimezone(BERLIN).hour for r in runs] == [2] * 7


@pytest.mark.parametrize(
    ("last_ping", "expected_hours_utc"),
    [
        # hourly over the spring gap: 01:00 CET, then 03:00 CEST (02:00 is 03:00)
        (datetime(2026, 3, 29, 0, 30, tzinfo=BERLIN), [0, 1, 2]),
        # hourly over the repeated hour: 02:00 is matched once, at its first occurrence
        (datetime(2026, 10, 25, 1, 30, tzinfo=BERLIN), [0, 2, 3]),
    ],
)
def test_an_hourly_cron_never_expects_the_same_instant_twice(
    last_ping: datetime, expected_hours_utc: list[int]
) -> None:
    schedule = _schedule(cron="0 * * * *", tz="Europe/Berlin")
    hours = []
    moment = last_ping
    for _ in range(3):
        moment = next_expected(schedule, moment)
        hours.append(moment.hour)
    assert hours == expected_hours_utc


def test_the_deadline_adds_the_grace_to_the_expected_time() -> None:
    monitor = Monitor.model_validate(
        {
            "id": "m1",
            "project_id": 1,
            "name": "Backup",
            "slug": "backup",
            "schedule": _schedule(period_s=600),
            "grace_s": 120,
        }
    )
    assert deadline(monitor, _utc(2026, 1, 1, 10)) == _utc(2026, 1, 1, 10, 12)
