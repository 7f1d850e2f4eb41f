"""The gateway's pure core: raw events in, records and rejections out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest

from ingest_gateway.stamp import MAX_KEY_CHARS, Stamper, key_field
from pulseline.schemas import Event, EventKind
from pulseline.settings import GatewaySettings
from pulseline.topics import INGEST

NOW = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
FIXED_ID = UUID("00000000-0000-4000-8000-000000000001")
CLIENT_ID = "6f1c1e52-3c55-4c7b-9d43-2b1c3f1e9a10"


def stamp(*items: Any, max_event_bytes: int = 1 << 20) -> Any:
    return Stamper("p.", max_event_bytes).stamp(list(items), 7, NOW, new_id=lambda: FIXED_ID)


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "event", "attributes": {"name": "signup", "properties": {"plan": None}}},
        {
            "kind": "error",
            "event_id": CLIENT_ID,
            "timestamp": "2024-05-01T12:00:00Z",
            "attributes": {"message": "boom"},
        },
        {
            "kind": "pageview",
            "timestamp": "2024-05-01T12:00:00.5-03:30",
            "distinct_id": "u",
            "attributes": {"url": "/"},
        },
        {
            "kind": "transaction",
            "timestamp": 1714564800,
            "release": "1.2",
            "environment": "prod",
            "attributes": {"name": "GET /", "duration_ms": 12.5},
        },
        {
            "kind": "web_vital",
            "session_id": "s",
            "attributes": {"name": "LCP", "value": 1.25, "tags": ["a", None]},
        },
        {"kind": "check_in", "attributes": {"monitor": "nightly", "status": "ok", "n": 10**15}},
        {"kind": "metric", "attributes": {"name": "cpu", "value": 0.5, "type": "gauge"}},
    ],
)
def test_the_value_is_the_v1_envelope_byte_for_byte(raw: dict[str, Any]) -> None:
    ((topic, _, value),) = stamp(raw).records

    event = Event.model_validate(
        {
            **raw,
            "event_id": raw.get("event_id", FIXED_ID),
            "project_id": 7,
            "timestamp": raw.get("timestamp", NOW),
            "received_at": NOW,
        }
    )
    assert value == orjson.dumps(event.model_dump(mode="json"))
    assert topic == f"p.ingest.{raw['kind']}"


def test_a_naive_client_time_is_taken_as_utc() -> None:
    ((_, _, value),) = stamp(
        {"kind": "event", "timestamp": "2024-05-01T12:00:00", "attributes": {"name": "signup"}}
    ).records

    assert orjson.loads(value)["timestamp"] == "2024-05-01T12:00:00Z"


def test_received_at_is_now_in_utc_even_when_now_has_another_zone() -> None:
    from datetime import timedelta, timezone

    local_now = NOW.astimezone(timezone(timedelta(hours=2)))
    out = Stamper("", 1 << 20).stamp(
        [{"kind": "event", "attributes": {"name": "signup"}}], 1, local_now
    )

    assert orjson.loads(out.records[0][2])["received_at"] == "2025-03-04T05:06:07.890123Z"


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"kind": "pageview", "distinct_id": "u1", "attributes": {"url": "/"}}, "7:u1"),
        ({"kind": "pageview", "attributes": {"url": "/"}}, f"7:{FIXED_ID}"),
        ({"kind": "event", "distinct_id": "u2", "attributes": {"name": "signup"}}, "7:u2"),
        (
            {"kind": "web_vital", "distinct_id": "u3", "attributes": {"name": "INP", "value": 8}},
            "7:u3",
        ),
        ({"kind": "error", "distinct_id": "u4", "attributes": {"message": "m"}}, f"7:{FIXED_ID}"),
        (
            {
                "kind": "transaction",
                "event_id": CLIENT_ID,
                "attributes": {"name": "t", "duration_ms": 1},
            },
            f"7:{CLIENT_ID}",
        ),
        ({"kind": "check_in", "attributes": {"monitor": "nightly", "status": "ok"}}, "7:nightly"),
        ({"kind": "metric", "attributes": {"name": "cpu", "value": 1}}, "7:cpu"),
    ],
)
def test_the_key_is_the_field_the_topic_registry_names(raw: dict[str, Any], key: str) -> None:
    ((_, produced_key, _),) = stamp(raw).records

    assert produced_key == key.encode()


def test_a_long_key_field_is_cut_so_the_record_stays_bounded() -> None:
    raw = {"kind": "check_in", "attributes": {"monitor": "m" * MAX_KEY_CHARS, "status": "ok"}}

    ((_, key, _),) = stamp(raw).records

    assert key == b"7:" + b"m" * MAX_KEY_CHARS


def test_every_ingest_topic_has_a_key_the_stamper_understands() -> None:
    for kind in EventKind:
        key_field(INGEST[kind].key)


def test_an_unknown_key_spec_fails_loudly() -> None:
    with pytest.raises(ValueError, match="project_id:nope"):
        key_field("project_id:nope")


def test_each_raw_event_ends_accepted_or_rejected_in_order() -> None:
    out = stamp(
        {"kind": "event", "attributes": {"name": "signup"}},
        ["not", "an", "object"],
        {"kind": "event", "distinct_id": "x" * 201, "attributes": {"name": "signup"}},
        {"kind": "metric", "unknown": 1, "attributes": "no"},
        {"kind": "event", "event_id": CLIENT_ID, "attributes": {"name": "signup"}},
    )

    assert out.event_ids == [str(FIXED_ID), CLIENT_ID]
    assert out.kinds == ["event", "event"]
    assert [(r.index, r.code, r.kind) for r in out.rejected] == [
        (1, "not_object", "unknown"),
        (2, "invalid", "event"),
        (3, "invalid", "metric"),
    ]
    assert out.rejected[0].reason == "expected a JSON object, got an array"
    assert out.rejected[1].reason.startswith("distinct_id: String should have at most 200")
    assert "attributes:" in out.rejected[2].reason
    assert "unknown: Extra inputs are not permitted" in out.rejected[2].reason


def test_a_reason_lists_at_most_three_problems() -> None:
    raw = {"kind": "nope", "a": 1, "b": 2, "c": 3, "d": 4}

    (rejection,) = stamp(raw).rejected

    assert rejection.reason.count(":") == 3
    assert rejection.reason.endswith("and 2 more")


def test_an_event_over_the_limit_once_stamped_is_rejected() -> None:
    small = {"kind": "event", "attributes": {"name": "s"}}
    big = {"kind": "event", "attributes": {"name": "s", "pad": "x" * 400}}

    out = stamp(small, big, max_event_bytes=400)

    assert len(out.records) == 1
    (rejection,) = out.rejected
    assert (rejection.index, rejection.code, rejection.kind) == (1, "too_large", "event")
    assert "the limit is 400" in rejection.reason


@pytest.mark.parametrize(
    ("offset", "accepted", "reason"),
    [
        (timedelta(minutes=59), True, None),
        (timedelta(hours=2), False, "2.0 h in the future"),
        (-timedelta(days=364), True, None),
        (-timedelta(days=366), False, "retention window of 365 days"),
    ],
)
def test_timestamps_outside_the_window_are_rejected_with_a_reason(
    offset: timedelta, accepted: bool, reason: str | None
) -> None:
    ts = (NOW + offset).isoformat()
    out = Stamper("", 1 << 20).stamp(
        [{"kind": "event", "timestamp": ts, "attributes": {"name": "signup"}}], 1, NOW
    )
    assert (len(out.records) == 1) is accepted
    if reason is not None:
        assert reason in out.rejected[0].reason and out.rejected[0].code == "bad_timestamp"


def test_every_door_gets_the_configured_age_limit_and_scrubber() -> None:
    settings = GatewaySettings.from_env({}, max_event_age_days=7)
    stamper = Stamper.from_settings(settings)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    old = {
        "kind": "metric",
        "timestamp": "2026-04-23T00:00:00Z",
        "attributes": {"name": "m", "value": 1},
    }
    secret = {"kind": "event", "attributes": {"name": "e", "properties": {"password": "hunter2"}}}
    out = stamper.stamp([old, secret], 1, now)
    assert [r.index for r in out.rejected] == [0]
    assert "7 days" in out.rejected[0].reason
    assert b"hunter2" not in out.records[0][2]
