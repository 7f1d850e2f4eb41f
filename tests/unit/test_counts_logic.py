from datetime import UTC, datetime

import pytest

from stream_processors.logic.counts import BadEvent, CountKey, count_key, snapshot


@pytest.mark.parametrize(
    ("doc", "minute"),
    [
        (
            {"project_id": 3, "kind": "error", "timestamp": "2026-01-02T03:04:05.678+00:00"},
            datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        ),
        (
            {"project_id": 3, "kind": "error", "timestamp": "2026-01-02T05:04:59+02:00"},
            datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        ),
        (
            {"project_id": 3, "kind": "error", "timestamp": "2026-01-02T03:04:00"},
            datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        ),
    ],
)
def test_events_count_in_their_utc_minute(doc: dict[str, object], minute: datetime) -> None:
    assert count_key(doc) == CountKey(3, "error", minute)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"kind": "error", "timestamp": "2026-01-01T00:00:00"}, "project_id"),
        ({"project_id": True, "kind": "error", "timestamp": "2026-01-01T00:00:00"}, "project_id"),
        ({"project_id": 1, "kind": "nope", "timestamp": "2026-01-01T00:00:00"}, "kind"),
        ({"project_id": 1, "kind": "error", "timestamp": "yesterday"}, "timestamp"),
        ({"project_id": 1, "kind": "error"}, "timestamp"),
    ],
)
def test_bad_events_are_refused_with_a_reason(doc: dict[str, object], reason: str) -> None:
    with pytest.raises(BadEvent, match=reason):
        count_key(doc)


def test_keys_round_trip_through_their_text_form() -> None:
    key = CountKey(7, "pageview", datetime(2026, 5, 6, 7, 8, tzinfo=UTC))
    assert CountKey.decode(key.encode()) == key


def test_a_snapshot_is_a_v1_project_count() -> None:
    key = CountKey(7, "pageview", datetime(2026, 5, 6, 7, 8, tzinfo=UTC))
    assert snapshot(key, 12) == {
        "schema_version": 1,
        "project_id": 7,
        "kind": "pageview",
        "minute": "2026-05-06T07:08:00+00:00",
        "count": 12,
    }
